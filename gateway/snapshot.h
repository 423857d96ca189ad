/* SPDX-License-Identifier: MIT */
/*
 * snapshot.h: what snapshot.c (the requests, the queue, the threads) and
 * snap_run.c (the work of one job) share; pincer.h holds what the rest of
 * pincerd uses.
 */
#ifndef SNAPSHOT_H
#define SNAPSHOT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "pincer.h"

#define SNAP_FORMAT	"pincer-snapshot/1"	/* the manifest's "format" */
#define SNAP_FORK_MAX	32

enum job_kind { J_CREATE, J_AUTO, J_LIST, J_GET, J_DELETE, J_RESTORE,
	J_FORK };

/* A sandbox a restore or fork writes into. */
struct target {
	char	 name[SBX_NAME_MAX + 1];
	bool	 made;		/* created by this job */
	bool	 start;		/* to start once the job is done */
};

/* One request (or an automatic snapshot) and, once run, its answer. */
struct job {
	enum job_kind	 kind;
	struct http_req	*req;		/* NULL: automatic, or gone */
	char		 sandbox[SBX_NAME_MAX + 1];	/* create, list */
	char		 id[SNAP_ID_MAX + 1];		/* the others */
	struct target	*targets;	/* restore (1), fork: owned */
	size_t		 ntargets;
	bool		 create;	/* restore: into a new sandbox */
	bool		 cancel;	/* set by a wake or by stopping */
	char		 actor[72];
	char		 ip[64];
	/* The answer. */
	int		 status;
	char		 code[32];
	char		 msg[OS_ERR + 128];
	json_t		*body;		/* owned */
	int		 refs;		/* the queue or a thread; request */
	struct job	*next;
};

/* What the jobs work with, set at start. */
struct snap_ctx {
	struct objstore	*os;		/* NULL: snapshots are off */
	int		 rootfd;	/* STATE/sandboxes */
	char		 state[PATH_MAX];
};

/* snap_run.c: runs on a snapshot thread; fills the job's answer. */
void	 snap_run(const struct snap_ctx *, struct job *);
/* The job's answer is an error; returns -1. */
int	 snap_run_fail(struct job *, int status, const char *code,
	    const char *fmt, ...) PINCER_PRINTF(4, 5);
/* Staging folders of restores cut short by the end of a pincerd. */
void	 snap_run_sweep(const struct snap_ctx *);

#endif
