/* SPDX-License-Identifier: MIT */
/*
 * snapshot.c: sandbox snapshots (README, Snapshots): take, list, get,
 * delete, restore into the same or a new sandbox, fork into several;
 * retention; an automatic snapshot when a sandbox goes to sleep.
 *
 * Packing, unpacking and the object store all block, so none of it runs
 * on a loop thread: a handler checks the request, parks it
 * (http_suspend) and queues a job; one of two threads of this file runs
 * it (snap_run.c does the work) and resumes the request, which is
 * answered on its loop thread.
 *
 * A sandbox is asleep while its folder is packed or replaced: a running
 * one is put to sleep (its processes end, as with stop) and started
 * again as soon as its folder is packed, before the upload. Freezing its
 * cgroup instead would keep its processes, but a frozen program may be
 * half way through writing a file, and a snapshot of that is not one it
 * can start from; the freezer also differs between cgroup v1 and v2.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "pincer.h"
#include "snapshot.h"

#define WORKERS		2
#define QUEUE_MAX	64
#define SWEEP_MS	(3600 * 1000)	/* how often max_age_days is applied */

static void	*worker(void *);
static void	 on_resume(struct http_req *, void *);
static void	 on_done(void *);
static void	 on_sleep(const char *);
static void	 submit(struct http_req *, struct job *);
static struct job *job_new(enum job_kind, struct http_req *);
static void	 job_unref(struct job *);
static json_t	*body_of(struct http_req *);
static bool	 id_of(struct http_req *, char *);

static pthread_mutex_t	 lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 wake = PTHREAD_COND_INITIALIZER;
static struct job	*queue, **queue_tail = &queue;	/* lock */
static size_t		 queued;			/* lock */
static struct job	*busy[WORKERS];			/* lock */
static bool		 quit;				/* lock */
static pthread_t	 threads[WORKERS];
static int		 nthreads;
static struct snap_ctx	 ctx = { .rootfd = -1 };
static char		 off_why[OS_ERR];

int
snapshot_start(const struct config *c)
{
	char	 path[PATH_MAX];
	int	 i;

	snprintf(ctx.state, sizeof(ctx.state), "%s", c->state_dir);
	snprintf(path, sizeof(path), "%s/sandboxes", c->state_dir);
	if ((ctx.rootfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) ==
	    -1) {
		log_error("cannot open the sandboxes folder", "%s: %s", path,
		    strerror(errno));
		return -1;
	}
	snap_run_sweep(&ctx);
	/* pincerd's store (daemon.c opens it; one that is set up but
	 * cannot open stops the start). */
	if ((ctx.os = objstore_shared()) == NULL) {
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
		snap_run_fail(j, 503, "stopping", "pincerd is stopping");
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
	ctx.os = NULL;	/* daemon.c's to close */
	if (ctx.rootfd != -1)
		close(ctx.rootfd);
	ctx.rootfd = -1;
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
	    json_array_size(names) < 1 ||
	    json_array_size(names) > SNAP_FORK_MAX :
	    prefix == NULL || count < 1 || count > SNAP_FORK_MAX) {
		http_error(r, 400, "bad_request", "send {\"names\": [NAME, "
		    "...]} or {\"count\": N, \"prefix\": NAME}, 1 to %d "
		    "sandboxes", SNAP_FORK_MAX);
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
	uint64_t		 next_sweep = now_ms() + 60000;
	char			 err[OS_ERR];

	pthread_setname_np(pthread_self(), "snapshot");
	pthread_mutex_lock(&lock);
	for (;;) {
		while (queue == NULL && !quit) {
			/* The first thread also applies max_age_days to
			 * every sandbox's snapshots, destroyed ones too. */
			c = config_current();
			if (me == 0 && c->snap_max_age_days > 0 &&
			    now_ms() >= next_sweep) {
				next_sweep = now_ms() + SWEEP_MS;
				pthread_mutex_unlock(&lock);
				if (snap_store_expire(ctx.os, NULL, 0,
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
		snap_run(&ctx, j);
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


/* Parked first: a thread may take the job and finish it at once. */
static void
submit(struct http_req *r, struct job *j)
{
	bool	 full;

	if (ctx.os == NULL) {
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
		snap_run_fail(j, 503, "busy", "%s", quit ? "pincerd is "
		    "stopping" : "too many snapshot jobs are waiting; try "
		    "again later");
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




