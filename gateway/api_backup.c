/* SPDX-License-Identifier: MIT */
/*
 * api_backup.c: GET /api/v1/system/backups (the backups of pincer.db) and
 * POST (one now), for admins (README, Backups). The work is a job on the
 * backup thread (backup_sched.c); the request is parked meanwhile, so no
 * HTTP thread waits on the object store, and a backup asked for here
 * never races a scheduled one.
 */
#include <stdlib.h>
#include <string.h>

#include "pincer.h"

struct call {
	struct backup_job	 job;	/* first: job_done finds the call */
	struct http_req		*req;
};

static void	 job_done(struct backup_job *);
static void	 on_resume(struct http_req *, void *);
static void	 on_free(void *);
static void	 reply_list(struct http_req *, struct backup_job *);
static void	 reply_made(struct http_req *, struct backup_job *);

void
api_backups(struct http_req *r)
{
	struct call	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		http_error(r, 503, "no_memory", "out of memory");
		return;
	}
	c->req = r;
	c->job.list = strcmp(http_req_method(r), "POST") != 0;
	c->job.done = job_done;
	http_suspend(r, on_resume, on_free, c);
	/* Refused: rc and err are set; answered from on_resume. */
	if (backup_submit(&c->job) == -1)
		http_resume(r);
}

/* On the backup thread. */
static void
job_done(struct backup_job *j)
{
	http_resume(((struct call *)j)->req);
}

static void
on_resume(struct http_req *r, void *arg)
{
	struct call	*c = arg;

	switch (c->job.rc) {
	case 0:
		if (c->job.list)
			reply_list(r, &c->job);
		else
			reply_made(r, &c->job);
		break;
	case BACKUP_OFF:
		http_error(r, 503, "backups_unavailable", "%s", c->job.err);
		break;
	case BACKUP_BUSY:
		http_error(r, 409, "backup_running", "%s", c->job.err);
		break;
	default:
		http_error(r, 502, c->job.list ? "backup_list_failed" :
		    "backup_failed", "%s", c->job.err);
	}
}

static void
on_free(void *arg)
{
	struct call	*c = arg;

	json_decref(c->job.backups);
	free(c);
}

static void
reply_list(struct http_req *r, struct backup_job *j)
{
	http_reply_json(r, 200, json_pack("{s:O, s:I}", "backups",
	    j->backups, "incomplete", (json_int_t)j->incomplete));
}

static void
reply_made(struct http_req *r, struct backup_job *j)
{
	const struct backup_info	*b = &j->info;
	struct identity			*id = http_req_identity(r);

	audit_add(id->user[0] != '\0' ? id->user : "unknown",
	    http_req_ip(r), "backup_now", b->id, NULL);
	http_reply_json(r, 201, json_pack("{s:s, s:I, s:s, s:i, s:s, s:I, "
	    "s:I}", "id", b->id, "size", (json_int_t)b->size, "sha256",
	    b->sha256, "schema_version", b->schema, "pincer_version",
	    b->version, "ms", (json_int_t)b->ms, "removed",
	    (json_int_t)b->removed));
}
