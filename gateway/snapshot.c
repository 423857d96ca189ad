/* SPDX-License-Identifier: MIT */
/*
 * snapshot.c: sandbox snapshots (README, Snapshots): take, list, get,
 * delete, restore into the same or a new sandbox, fork into several;
 * retention; an automatic snapshot when a sandbox goes to sleep.
 *
 * Packing, unpacking and the object store all block, so none of it runs
 * on a loop thread: a handler checks the request, parks it
 * (http_suspend) and queues a job; one of two threads of this file runs
 * it and resumes the request, which is answered on its loop thread.
 *
 * A sandbox is asleep while its folder is packed or replaced: a running
 * one is put to sleep (its processes end, as with stop) and started
 * again as soon as its folder is packed, before the upload. Freezing its
 * cgroup instead would keep its processes, but a frozen program may be
 * half way through writing a file, and a snapshot of that is not one it
 * can start from; the freezer also differs between cgroup v1 and v2.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "pincer.h"

#define WORKERS		2
#define QUEUE_MAX	64
#define FORK_MAX	32
#define FORMAT		"pincer-snapshot/1"
#define SWEEP_S		3600	/* how often max_age_days is applied */

enum job_kind { J_CREATE, J_AUTO, J_LIST, J_GET, J_DELETE, J_RESTORE,
	J_FORK };

struct target {
	char	 name[SBX_NAME_MAX + 1];
	bool	 made;		/* created by this job */
	bool	 start;		/* to start once the job is done */
};

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

static void	*worker(void *);
static void	 run(struct job *);
static void	 run_create(struct job *);
static void	 run_restore(struct job *);
static int	 restore_one(struct job *, struct target *, int);
static void	 run_list(struct job *);
static void	 run_get_delete(struct job *);
static void	 undo_made(struct job *);
static void	 on_resume(struct http_req *, void *);
static void	 on_done(void *);
static void	 on_sleep(const char *);
static void	 restart(void *);
static void	 submit(struct http_req *, struct job *);
static struct job *job_new(enum job_kind, struct http_req *);
static void	 job_unref(struct job *);
static int	 fail(struct job *, int, const char *, const char *, ...)
		    PINCER_PRINTF(4, 5);
static json_t	*body_of(struct http_req *);
static bool	 id_of(struct http_req *, char *);
static int	 temp_file(void);
static void	 sweep_stages(void);
static void	 ids_of(long long, struct snap_ids *);
static long long wall_ms(void);

static pthread_mutex_t	 lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 wake = PTHREAD_COND_INITIALIZER;
static struct job	*queue, **queue_tail = &queue;	/* lock */
static size_t		 queued;			/* lock */
static struct job	*busy[WORKERS];			/* lock */
static bool		 quit;				/* lock */
static pthread_t	 threads[WORKERS];
static int		 nthreads;
static struct objstore	*os;		/* NULL: snapshots are off */
static char		 off_why[OS_ERR];
static char		 state[PATH_MAX];
static int		 rootfd = -1;	/* $state/sandboxes */

int
snapshot_start(const struct config *c)
{
	char	 path[PATH_MAX];
	int	 i;

	snprintf(state, sizeof(state), "%s", c->state_dir);
	snprintf(path, sizeof(path), "%s/sandboxes", c->state_dir);
	if ((rootfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		log_error("cannot open the sandboxes folder", "%s: %s", path,
		    strerror(errno));
		return -1;
	}
	sweep_stages();
	/* pincerd's store (daemon.c opens it; one that is set up but
	 * cannot open stops the start). */
	if ((os = objstore_shared()) == NULL) {
		snprintf(off_why, sizeof(off_why), "objstore.backend is off");
		return 0;
	}
	for (i = 0; i < WORKERS; i++) {
		if (pthread_create(&threads[i], NULL, worker,
		    (void *)(long)i) != 0) {
			log_error("cannot start the snapshot threads", NULL);
			return -1;
		}
		nthreads++;
	}
	sbx_on_sleep(on_sleep);
	return 0;
}

/* Queued jobs are answered 503, running ones cancelled and waited for. */
void
snapshot_stop(void)
{
	struct job	*j;
	int		 i;

	sbx_on_sleep(NULL);
	pthread_mutex_lock(&lock);
	quit = true;
	for (i = 0; i < WORKERS; i++)
		if (busy[i] != NULL)
			__atomic_store_n(&busy[i]->cancel, true,
			    __ATOMIC_RELAXED);
	while ((j = queue) != NULL) {
		queue = j->next;
		fail(j, 503, "stopping", "pincerd is stopping");
		if (j->req != NULL)
			http_resume(j->req);
		pthread_mutex_unlock(&lock);
		job_unref(j);
		pthread_mutex_lock(&lock);
	}
	queue_tail = &queue;
	pthread_cond_broadcast(&wake);
	pthread_mutex_unlock(&lock);
	for (i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	nthreads = 0;
	os = NULL;	/* daemon.c's to close */
	if (rootfd != -1)
		close(rootfd);
	rootfd = -1;
}

/* POST /api/v1/sandboxes/{name}/snapshots */
void
api_snapshot_create(struct http_req *r)
{
	struct job	*j;
	json_t		*info;

	if ((j = job_new(J_CREATE, r)) == NULL)
		return;
	if (!sbx_path_name(http_req_path(r), j->sandbox,
	    sizeof(j->sandbox)) || (info = sbx_info(j->sandbox)) == NULL) {
		http_error(r, 404, "not_found", "no such sandbox");
		job_unref(j);
		return;
	}
	json_decref(info);
	submit(r, j);
}

/* GET /api/v1/sandboxes/{name}/snapshots, and GET /api/v1/snapshots:
 * a destroyed sandbox's snapshots are listed too. */
void
api_snapshot_list(struct http_req *r)
{
	struct job	*j;

	if ((j = job_new(J_LIST, r)) == NULL)
		return;
	if (strncmp(http_req_path(r), "/api/v1/sandboxes/", 18) == 0 &&
	    !sbx_path_name(http_req_path(r), j->sandbox,
	    sizeof(j->sandbox))) {
		http_error(r, 404, "not_found", "no such sandbox");
		job_unref(j);
		return;
	}
	submit(r, j);
}

void
api_snapshot_get(struct http_req *r)
{
	struct job	*j;

	if ((j = job_new(J_GET, r)) != NULL && id_of(r, j->id))
		submit(r, j);
	else if (j != NULL)
		job_unref(j);
}

void
api_snapshot_delete(struct http_req *r)
{
	struct job	*j;

	if ((j = job_new(J_DELETE, r)) != NULL && id_of(r, j->id))
		submit(r, j);
	else if (j != NULL)
		job_unref(j);
}

/*
 * POST /api/v1/snapshots/{id}/restore {"sandbox", "create"}: into the
 * snapshot's own sandbox by default; "create": true makes a new one
 * (409 if it exists), otherwise it must exist (404).
 */
void
api_snapshot_restore(struct http_req *r)
{
	struct job	*j;
	json_t		*in, *v;
	const char	*name;

	if ((j = job_new(J_RESTORE, r)) == NULL)
		return;
	if (!id_of(r, j->id) || (in = body_of(r)) == NULL) {
		job_unref(j);
		return;
	}
	name = json_string_value(json_object_get(in, "sandbox"));
	v = json_object_get(in, "create");
	if ((json_object_get(in, "sandbox") != NULL && name == NULL) ||
	    (v != NULL && !json_is_boolean(v)) || (name != NULL &&
	    !sbx_name_valid(name))) {
		http_error(r, 400, "bad_request", "send {\"sandbox\": NAME, "
		    "\"create\": true|false} (both optional); a name is a-z, "
		    "0-9, '-', '_', '.'");
		goto out;
	}
	if ((j->targets = calloc(1, sizeof(*j->targets))) == NULL) {
		http_error(r, 500, "no_memory", "out of memory");
		goto out;
	}
	j->ntargets = 1;
	if (name == NULL)
		snap_store_id_valid(j->id, j->targets[0].name,
		    sizeof(j->targets[0].name));
	else
		snprintf(j->targets[0].name, sizeof(j->targets[0].name), "%s",
		    name);
	j->create = json_is_true(v);
	submit(r, j);
	j = NULL;
out:
	json_decref(in);
	if (j != NULL)
		job_unref(j);
}

/*
 * POST /api/v1/snapshots/{id}/fork {"names": [...]} or {"count": N,
 * "prefix": P} (P-1 … P-N): new sandboxes, each started from the
 * snapshot; all of them or none.
 */
void
api_snapshot_fork(struct http_req *r)
{
	struct job	*j;
	json_t		*in, *names, *v;
	const char	*prefix, *s;
	json_int_t	 count;
	size_t		 i, k;
	int		 n;

	if ((j = job_new(J_FORK, r)) == NULL)
		return;
	if (!id_of(r, j->id) || (in = body_of(r)) == NULL) {
		job_unref(j);
		return;
	}
	names = json_object_get(in, "names");
	prefix = json_string_value(json_object_get(in, "prefix"));
	count = json_integer_value(json_object_get(in, "count"));
	if (names != NULL ? !json_is_array(names) ||
	    json_array_size(names) < 1 || json_array_size(names) > FORK_MAX :
	    prefix == NULL || count < 1 || count > FORK_MAX) {
		http_error(r, 400, "bad_request", "send {\"names\": [NAME, "
		    "...]} or {\"count\": N, \"prefix\": NAME}, 1 to %d "
		    "sandboxes", FORK_MAX);
		goto out;
	}
	j->ntargets = names != NULL ? json_array_size(names) : (size_t)count;
	if ((j->targets = calloc(j->ntargets, sizeof(*j->targets))) == NULL) {
		http_error(r, 500, "no_memory", "out of memory");
		goto out;
	}
	for (i = 0; i < j->ntargets; i++) {
		struct target	*t = &j->targets[i];

		if (names != NULL) {
			v = json_array_get(names, i);
			s = json_string_value(v);
			n = snprintf(t->name, sizeof(t->name), "%s",
			    s != NULL ? s : "");
		} else
			n = snprintf(t->name, sizeof(t->name), "%s-%zu",
			    prefix, i + 1);
		for (k = 0; k < i; k++)
			if (!strcmp(j->targets[k].name, t->name))
				break;
		if (!sbx_name_valid(t->name) || k < i ||
		    (size_t)n >= sizeof(t->name)) {
			http_error(r, 400, "bad_name", "\"%s\": %s", t->name,
			    k < i ? "named twice" : sbx_strerror(
			    SBX_BAD_NAME));
			goto out;
		}
	}
	j->create = true;
	submit(r, j);
	j = NULL;
out:
	json_decref(in);
	if (j != NULL)
		job_unref(j);
}

static void *
worker(void *arg)
{
	const struct config	*c;
	struct job		*j;
	struct timespec		 ts;
	long			 me = (long)arg;
	long long		 next_sweep = wall_ms() + 60000;
	char			 err[OS_ERR];

	pthread_setname_np(pthread_self(), "snapshot");
	pthread_mutex_lock(&lock);
	for (;;) {
		while (queue == NULL && !quit) {
			/* The first thread also applies max_age_days to
			 * every sandbox's snapshots, destroyed ones too. */
			c = config_current();
			if (me == 0 && c->snap_max_age_days > 0 &&
			    wall_ms() >= next_sweep) {
				next_sweep = wall_ms() + SWEEP_S * 1000LL;
				pthread_mutex_unlock(&lock);
				if (snap_store_expire(os, NULL, 0,
				    c->snap_max_age_days, NULL, err) == -1)
					log_warn("snapshot retention failed",
					    "%s", err);
				pthread_mutex_lock(&lock);
				continue;
			}
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 60;
			pthread_cond_timedwait(&wake, &lock, &ts);
		}
		if (quit)
			break;
		j = queue;
		if ((queue = j->next) == NULL)
			queue_tail = &queue;
		queued--;
		busy[me] = j;
		pthread_mutex_unlock(&lock);
		run(j);
		if (j->kind == J_AUTO && j->status >= 400)
			log_msg(j->cancel ? LOG_INFO : LOG_WARN,
			    j->cancel ? "automatic snapshot skipped" :
			    "automatic snapshot failed", "sandbox=%s %s",
			    j->sandbox, j->msg);
		pthread_mutex_lock(&lock);
		busy[me] = NULL;
		if (j->req != NULL)
			http_resume(j->req);
		pthread_mutex_unlock(&lock);
		job_unref(j);
		pthread_mutex_lock(&lock);
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

static void
run(struct job *j)
{
	switch (j->kind) {
	case J_CREATE:
	case J_AUTO:
		run_create(j);
		break;
	case J_LIST:
		run_list(j);
		break;
	case J_GET:
	case J_DELETE:
		run_get_delete(j);
		break;
	case J_RESTORE:
	case J_FORK:
		run_restore(j);
		break;
	}
}

/* Pin (stopping it if running), pack, unpin, upload, expire. */
static void
run_create(struct job *j)
{
	const struct config	*c = config_current();
	struct snap_ids		 ids;
	struct snap_stats	 st;
	long long		 slot, t0 = wall_ms();
	bool			 was_running;
	char			 err[OS_ERR], *name;
	int			 dfd = -1, fd = -1, rc, gone;
	enum sbx_err		 e;
	json_t			*m;
	struct tm		 tm;
	time_t			 now = (time_t)(t0 / 1000);
	char			 when[40];

	e = sbx_pin(j->sandbox, j->kind == J_CREATE, j->kind == J_AUTO ?
	    &j->cancel : NULL, &slot, &was_running);
	if (e != SBX_OK) {
		/* Automatic: woken (or destroyed) before it began. */
		if (j->kind == J_AUTO)
			j->cancel = true;
		fail(j, sbx_http_status(e), e == SBX_NOT_FOUND ? "not_found" :
		    "sandbox_busy", "%s", sbx_strerror(e));
		return;
	}
	ids_of(slot, &ids);
	if ((dfd = openat(rootfd, j->sandbox, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) == -1 || (fd = temp_file()) == -1) {
		rc = errno;
		sbx_unpin(j->sandbox);
		fail(j, rc == ENOENT ? 409 : 500, "snapshot_failed", "%s",
		    rc == ENOENT ? "the sandbox has never run: it has "
		    "nothing to snapshot" : strerror(rc));
		goto out;
	}
	rc = snap_pack(dfd, &ids, fd, (int)c->snap_level, &j->cancel, &st,
	    err, sizeof(err));
	sbx_unpin(j->sandbox);
	/* Started again on a loop thread: a launcher dies with the thread
	 * that forked it. (Without loops the job runs here; it frees.) */
	if (was_running && !j->cancel &&
	    (name = strdup(j->sandbox)) != NULL)
		upcall_post(restart, name, 0);
	if (rc == -1) {
		fail(j, 500, "snapshot_failed", "the sandbox could not be "
		    "packed: %s", err);
		goto out;
	}
	snap_store_new_id(j->sandbox, t0, j->id, sizeof(j->id));
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + strlen(when), sizeof(when) - strlen(when), ".%03lldZ",
	    t0 % 1000);
	m = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:I, s:I, s:I, "
	    "s:I, s:[sss], s:{s:i, s:I}, s:s}", "format", FORMAT, "id",
	    j->id, "sandbox", j->sandbox, "created", when,
	    "created_ms", (json_int_t)t0, "reason", j->kind == J_AUTO ?
	    "sleep" : "api", "by", j->actor, "files", (json_int_t)st.files,
	    "bytes", (json_int_t)st.bytes, "skipped", (json_int_t)st.skipped,
	    "pack_ms", (json_int_t)(wall_ms() - t0), "parts", snap_parts[0],
	    snap_parts[1], snap_parts[2], "ids", "base", 0, "count",
	    (json_int_t)ids.count, "pincer_version", pincer_version);
	if (m == NULL || (rc = snap_store_put(os, j->id, fd, m, err)) !=
	    OS_OK) {
		json_decref(m);
		fail(j, 502, "objstore_failed", "the snapshot could not be "
		    "stored: %s", m == NULL ? "out of memory" : err);
		goto out;
	}
	gone = snap_store_expire(os, j->sandbox, c->snap_keep,
	    c->snap_max_age_days, j->id, err);
	if (gone == -1)
		log_warn("snapshot retention failed", "sandbox=%s %s",
		    j->sandbox, err);
	json_object_set_new(m, "expired", json_integer(gone > 0 ? gone : 0));
	log_info("snapshot taken", "id=%s sandbox=%s files=%lld bytes=%lld "
	    "size=%lld ms=%lld", j->id, j->sandbox, st.files, st.bytes,
	    json_integer_value(json_object_get(m, "size")), wall_ms() - t0);
	if (j->kind == J_AUTO)
		audit_add("pincerd", NULL, "snapshot.create", j->id,
		    "on sleep");
	j->status = 201;
	j->body = m;
out:
	if (dfd != -1)
		close(dfd);
	if (fd != -1)
		close(fd);
}

/* The archive fetched and checked once, then made into each target. */
static void
run_restore(struct job *j)
{
	json_t		*m;
	char		 err[OS_ERR];
	int		 fd = -1, rc;
	size_t		 i;

	if ((m = snap_store_manifest(os, j->id, &rc, err)) == NULL) {
		fail(j, rc == OS_NOTFOUND ? 404 : 502, rc == OS_NOTFOUND ?
		    "not_found" : "objstore_failed", "%s", rc == OS_NOTFOUND ?
		    "no such snapshot" : err);
		return;
	}
	if (strcmp(json_string_value(json_object_get(m, "format")) != NULL ?
	    json_string_value(json_object_get(m, "format")) : "", FORMAT)) {
		fail(j, 422, "snapshot_damaged", "%s: not a snapshot this "
		    "pincer knows (format %s)", j->id, FORMAT);
		goto out;
	}
	if ((fd = temp_file()) == -1) {
		fail(j, 500, "snapshot_failed", "%s", strerror(errno));
		goto out;
	}
	if ((rc = snap_store_fetch(os, m, fd, err)) != SNAP_OK) {
		fail(j, rc == SNAP_DAMAGED ? 422 : rc == SNAP_STORE ? 502 :
		    500, rc == SNAP_DAMAGED ? "snapshot_damaged" :
		    "objstore_failed", "%s; nothing was restored", err);
		goto out;
	}
	for (i = 0; i < j->ntargets; i++)
		if (restore_one(j, &j->targets[i], fd) == -1) {
			undo_made(j);
			goto out;
		}
	j->status = j->kind == J_FORK || j->create ? 201 : 200;
	j->body = json_pack("{s:s, s:[], s:I}", "snapshot", j->id,
	    "sandboxes", "files", json_integer_value(json_object_get(m,
	    "files")));
out:
	if (fd != -1)
		close(fd);
	json_decref(m);
}

/*
 * Into a staging folder beside the sandboxes, then swapped in: until the
 * swap the target is untouched, whatever the archive holds.
 */
static int
restore_one(struct job *j, struct target *t, int fd)
{
	struct snap_ids		 ids;
	struct snap_stats	 st;
	char			 stage[PATH_MAX], err[OS_ERR], *base;
	long long		 slot;
	bool			 was_running, made;
	enum sbx_err		 e;
	int			 sfd, rc = SNAP_FAILED;

	if (j->create) {
		if ((e = sbx_create(t->name, j->actor, &made)) != SBX_OK ||
		    !made)
			return fail(j, e != SBX_OK ? sbx_http_status(e) : 409,
			    "exists", "%s: %s", t->name, e != SBX_OK ?
			    sbx_strerror(e) : sbx_strerror(SBX_EXISTS));
		t->made = t->start = true;
	}
	if ((e = sbx_pin(t->name, true, NULL, &slot, &was_running)) != SBX_OK)
		return fail(j, sbx_http_status(e), e == SBX_NOT_FOUND ?
		    "not_found" : "sandbox_busy", "%s: %s%s", t->name,
		    sbx_strerror(e), e == SBX_NOT_FOUND ? " (send \"create\": "
		    "true to make it)" : "");
	t->start |= was_running;
	ids_of(slot, &ids);
	if ((size_t)snprintf(stage, sizeof(stage), "%s/sandboxes/.restore-"
	    "%s-XXXXXX", state, t->name) >= sizeof(stage) ||
	    mkdtemp(stage) == NULL) {
		fail(j, 500, "restore_failed", "%s: %s", stage,
		    strerror(errno));
		goto out;
	}
	base = strrchr(stage, '/') + 1;
	if ((sfd = openat(rootfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1 || lseek(fd, 0, SEEK_SET) == -1)
		snprintf(err, sizeof(err), "%s", strerror(errno));
	else if ((rc = snap_unpack(fd, sfd, &ids, &j->cancel, &st, err,
	    sizeof(err))) == SNAP_OK && snap_swap(rootfd, t->name, base,
	    &ids, err, sizeof(err)) == -1)
		rc = SNAP_FAILED;
	if (sfd != -1)
		close(sfd);
	if (launch_rm_tree(rootfd, base) == -1 && errno != ENOENT)
		log_warn("a restore's staging folder stays", "%s: %s", stage,
		    strerror(errno));
	if (rc != SNAP_OK)
		fail(j, rc == SNAP_DAMAGED ? 422 : 500, rc == SNAP_DAMAGED ?
		    "snapshot_damaged" : "restore_failed", "%s: nothing was "
		    "restored: %s", t->name, err);
	else
		log_info("snapshot restored", "id=%s sandbox=%s files=%lld",
		    j->id, t->name, st.files);
out:
	sbx_unpin(t->name);
	return rc == SNAP_OK ? 0 : -1;
}

static void
run_list(struct job *j)
{
	char	 err[OS_ERR];
	json_t	*a;

	if ((a = snap_store_list(os, j->sandbox[0] != '\0' ? j->sandbox :
	    NULL, err)) == NULL) {
		fail(j, 502, "objstore_failed", "%s", err);
		return;
	}
	j->status = 200;
	j->body = json_pack("{s:o}", "snapshots", a);
}

static void
run_get_delete(struct job *j)
{
	char	 err[OS_ERR];
	json_t	*m;
	int	 rc;

	if ((m = snap_store_manifest(os, j->id, &rc, err)) == NULL) {
		fail(j, rc == OS_NOTFOUND ? 404 : 502, rc == OS_NOTFOUND ?
		    "not_found" : "objstore_failed", "%s", rc == OS_NOTFOUND ?
		    "no such snapshot" : err);
		return;
	}
	if (j->kind == J_DELETE) {
		json_decref(m);
		if (snap_store_delete(os, j->id, err) != OS_OK) {
			fail(j, 502, "objstore_failed", "%s", err);
			return;
		}
		m = json_pack("{s:s, s:b}", "id", j->id, "deleted", 1);
	}
	j->status = 200;
	j->body = m;
}

/* All or none: sandboxes this job made go again. */
static void
undo_made(struct job *j)
{
	size_t	 i;

	for (i = 0; i < j->ntargets; i++) {
		if (j->targets[i].made && sbx_destroy(j->targets[i].name) !=
		    SBX_OK)
			log_warn("a sandbox of a failed restore stays",
			    "name=%s", j->targets[i].name);
		j->targets[i].made = j->targets[i].start = false;
	}
}

/* On the request's loop thread: start what is to run, audit, answer. */
static void
on_resume(struct http_req *r, void *arg)
{
	struct job	*j = arg;
	struct sbx_ref	 ref;
	json_t		*info, *a;
	size_t		 i;
	static const char *const actions[] = {
		[J_CREATE] = "snapshot.create", [J_DELETE] = "snapshot.delete",
		[J_RESTORE] = "snapshot.restore", [J_FORK] = "snapshot.fork",
	};

	/* A sandbox stopped for a restore that failed runs again too. */
	for (i = 0; i < j->ntargets; i++)
		if (j->targets[i].start &&
		    sbx_acquire(j->targets[i].name, &ref) == SBX_OK)
			sbx_release(&ref);
	if (j->status >= 400) {
		if (j->status == 409 && !strcmp(j->code, "sandbox_busy"))
			http_retry_later(r, 1, j->code, j->msg);
		else
			http_error(r, j->status, j->code, "%s", j->msg);
		return;
	}
	a = json_object_get(j->body, "sandboxes");
	for (i = 0; i < j->ntargets; i++) {
		if ((info = sbx_info(j->targets[i].name)) != NULL)
			json_array_append_new(a, info);
		audit_add(j->actor, j->ip, actions[j->kind],
		    j->targets[i].name, j->id);
	}
	if (j->kind == J_CREATE || j->kind == J_DELETE)
		audit_add(j->actor, j->ip, actions[j->kind], j->id,
		    j->sandbox[0] != '\0' ? j->sandbox : NULL);
	http_reply_json(r, j->status, j->body);
	j->body = NULL;
}

static void
on_done(void *arg)
{
	struct job	*j = arg;

	pthread_mutex_lock(&lock);
	j->req = NULL;
	pthread_mutex_unlock(&lock);
	job_unref(j);
}

/* sbx.c's manager thread, its lock held: queue, never wait. */
static void
on_sleep(const char *name)
{
	struct job	*j;

	if (!config_current()->snap_on_sleep)
		return;
	pthread_mutex_lock(&lock);
	for (j = queue; j != NULL; j = j->next)
		if (j->kind == J_AUTO && !strcmp(j->sandbox, name))
			break;
	if (j == NULL && !quit && queued < QUEUE_MAX &&
	    (j = job_new(J_AUTO, NULL)) != NULL) {
		snprintf(j->sandbox, sizeof(j->sandbox), "%s", name);
		*queue_tail = j;
		queue_tail = &j->next;
		queued++;
		pthread_cond_signal(&wake);
	}
	pthread_mutex_unlock(&lock);
}

static void
restart(void *arg)
{
	struct sbx_ref	 ref;
	char		*name = arg;
	enum sbx_err	 e;

	if ((e = sbx_acquire(name, &ref)) == SBX_OK)
		sbx_release(&ref);
	else
		log_warn("a sandbox did not start again after its snapshot",
		    "name=%s %s", name, sbx_strerror(e));
	free(name);
}

/* Parked first: a thread may take the job and finish it at once. */
static void
submit(struct http_req *r, struct job *j)
{
	bool	 full;

	if (os == NULL) {
		http_error(r, 503, "snapshots_off", "snapshots need an object "
		    "store: %s", off_why);
		job_unref(j);
		return;
	}
	pthread_mutex_lock(&lock);
	j->refs++;
	pthread_mutex_unlock(&lock);
	http_suspend(r, on_resume, on_done, j);
	pthread_mutex_lock(&lock);
	if ((full = quit || queued >= QUEUE_MAX)) {
		fail(j, 503, "busy", "%s", quit ? "pincerd is stopping" :
		    "too many snapshot jobs are waiting; try again later");
		http_resume(r);
	} else {
		*queue_tail = j;
		queue_tail = &j->next;
		queued++;
		pthread_cond_signal(&wake);
	}
	pthread_mutex_unlock(&lock);
	if (full)
		job_unref(j);
}

/* One reference (the queue's, then a thread's); submit adds the
 * request's, dropped when the request ends. */
static struct job *
job_new(enum job_kind kind, struct http_req *r)
{
	struct identity	*id;
	struct job	*j;

	if ((j = calloc(1, sizeof(*j))) == NULL) {
		if (r != NULL)
			http_error(r, 500, "no_memory", "out of memory");
		return NULL;
	}
	j->kind = kind;
	j->req = r;
	j->refs = 1;
	if (r != NULL) {
		id = http_req_identity(r);
		snprintf(j->actor, sizeof(j->actor), "%s", id->user[0] !=
		    '\0' ? id->user : "unknown");
		snprintf(j->ip, sizeof(j->ip), "%s", http_req_ip(r));
	} else
		snprintf(j->actor, sizeof(j->actor), "pincerd");
	return j;
}

static void
job_unref(struct job *j)
{
	bool	 last;

	pthread_mutex_lock(&lock);
	last = --j->refs == 0;
	pthread_mutex_unlock(&lock);
	if (!last)
		return;
	json_decref(j->body);
	free(j->targets);
	free(j);
}

static int
fail(struct job *j, int status, const char *code, const char *f, ...)
{
	va_list	 ap;

	j->status = status;
	snprintf(j->code, sizeof(j->code), "%s", code);
	va_start(ap, f);
	vsnprintf(j->msg, sizeof(j->msg), f, ap);
	va_end(ap);
	return -1;
}

/* The request's JSON object; answers 400 itself. */
static json_t *
body_of(struct http_req *r)
{
	const char	*body;
	size_t		 len;
	json_t		*in;
	json_error_t	 je;

	http_req_body(r, &body, &len);
	if (len == 0)
		return json_object();
	if ((in = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je)) ==
	    NULL || !json_is_object(in)) {
		http_error(r, 400, "bad_json", "the body is not a JSON "
		    "object%s%s", in == NULL ? ": " : "", in == NULL ?
		    je.text : "");
		json_decref(in);
		return NULL;
	}
	return in;
}

/* The {id} of /api/v1/snapshots/{id}…; answers 404 itself. */
static bool
id_of(struct http_req *r, char *out)
{
	const char	*p = http_req_param(r);
	size_t		 n = p != NULL ? strcspn(p, "/") : 0;

	if (n > 0 && n <= SNAP_ID_MAX) {
		memcpy(out, p, n);
		out[n] = '\0';
		if (snap_store_id_valid(out, NULL, 0))
			return true;
	}
	http_error(r, 404, "not_found", "no such snapshot");
	return false;
}

/* Staging folders of restores cut short by the end of a pincerd. */
static void
sweep_stages(void)
{
	struct dirent	*e;
	DIR		*d;
	int		 fd;

	if ((fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1 || (d = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		return;
	}
	while ((e = readdir(d)) != NULL)
		if (!strncmp(e->d_name, ".restore-", 9)) {
			if (launch_rm_tree(rootfd, e->d_name) == -1)
				log_warn("a restore's staging folder stays",
				    "%s: %s", e->d_name, strerror(errno));
			else
				log_info("a restore's staging folder removed",
				    "%s", e->d_name);
		}
	closedir(d);
}

/* Nameless in the state folder: nothing is left if pincerd dies. */
static int
temp_file(void)
{
	char	 path[PATH_MAX];
	int	 fd;

	if ((fd = open(state, O_RDWR | O_TMPFILE | O_CLOEXEC, 0600)) != -1)
		return fd;
	if ((size_t)snprintf(path, sizeof(path), "%s/.snapshot-XXXXXX",
	    state) >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = mkostemp(path, O_CLOEXEC)) != -1)
		unlink(path);
	return fd;
}

/*
 * The host ids of a sandbox's inner 0, as pincer-sandbox maps them: as
 * root, 65536 from sandbox.uid_base + slot * 65536 when that range is
 * there to map (not in a container that maps only a few); otherwise
 * pincerd's own ids alone.
 */
static void
ids_of(long long slot, struct snap_ids *ids)
{
	long long	 base = config_current()->sbx_uid_base + slot * 65536;
	unsigned long	 in, out, n;
	bool		 mapped = false;
	FILE		*f;

	if (geteuid() == 0 && (f = fopen("/proc/self/uid_map", "re")) !=
	    NULL) {
		while (!mapped && fscanf(f, "%lu %lu %lu", &in, &out, &n) == 3)
			mapped = (unsigned long)base >= in &&
			    (unsigned long)base + 65536 <= in + n;
		fclose(f);
	}
	if (mapped) {
		ids->uid = ids->gid = base;
		ids->count = 65536;
	} else {
		ids->uid = geteuid();
		ids->gid = getegid();
		ids->count = 1;
	}
}

static long long
wall_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
