/* SPDX-License-Identifier: MIT */
/*
 * backup_sched.c: pincerd's backup thread. It sleeps until the next backup
 * is due, backup.interval_h after the newest one in the store (so a
 * restart does not reset the clock, and a gateway that was down for longer
 * makes one soon after it starts), makes it, and sleeps again. The
 * interval is read at every wake, so SIGHUP changes it within a minute.
 * The API's requests (api_backup.c) are jobs run on the same thread, so
 * no HTTP thread waits on the object store and two backups never race.
 * It uses pincerd's shared object store, which daemon.c closes only after
 * backup_stop.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pincer.h"

#define FIRST_DELAY_S	60	/* after start: let pincerd settle first */
#define RETRY_S		3600	/* after a failure (or the interval, if
				   shorter): not a tight loop, not a day */
#define RECHECK_S	60	/* the longest sleep: config changes apply */

static void	*loop(void *);
static long	 interval(const struct config *);
static long long newest(void);
static bool	 run(long, struct backup_job *);
static void	 run_list(struct backup_job *);
static struct backup_job *take(void);
static bool	 sleep_until(long long);

static pthread_mutex_t	 mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 cv;
static pthread_t	 thr;
static bool		 started;	/* under mu, from here down */
static bool		 stopping;
static bool		 busy;		/* a backup is running */
static struct backup_job *jobs;		/* oldest first */

int
backup_start(const struct config *c)
{
	pthread_condattr_t	 a;
	int			 e;

	if (objstore_shared() == NULL) {
		log_info("scheduled backups are off", "objstore.backend is "
		    "off");
		return 0;
	}
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&cv, &a);
	pthread_condattr_destroy(&a);
	stopping = false;
	backup_cancel(false);
	if ((e = pthread_create(&thr, NULL, loop, NULL)) != 0) {
		log_error("cannot start the backup thread", "%s", strerror(e));
		pthread_cond_destroy(&cv);
		return -1;
	}
	pthread_mutex_lock(&mu);
	started = true;
	pthread_mutex_unlock(&mu);
	return 0;
}

/*
 * A backup still being copied stops before its upload; one uploading is
 * let finish (its manifest is what makes it count, and a cut upload
 * would only leave a leftover to clear). Jobs still queued are told.
 */
void
backup_stop(void)
{
	struct backup_job	*j;

	pthread_mutex_lock(&mu);
	if (!started) {
		pthread_mutex_unlock(&mu);
		return;
	}
	stopping = true;
	pthread_cond_signal(&cv);
	if (busy)
		log_info("waiting for the backup under way", NULL);
	pthread_mutex_unlock(&mu);
	backup_cancel(true);
	pthread_join(thr, NULL);
	pthread_mutex_lock(&mu);
	started = false;
	pthread_mutex_unlock(&mu);
	while ((j = take()) != NULL) {
		j->rc = BACKUP_OFF;
		snprintf(j->err, sizeof(j->err), "pincerd is stopping");
		j->done(j);
	}
	pthread_cond_destroy(&cv);
}

int
backup_submit(struct backup_job *j)
{
	struct backup_job	**p;

	j->next = NULL;
	j->backups = NULL;
	pthread_mutex_lock(&mu);
	if (!started || stopping) {
		pthread_mutex_unlock(&mu);
		j->rc = BACKUP_OFF;
		snprintf(j->err, sizeof(j->err), "%s", started ? "pincerd is "
		    "stopping" : "backups are off (objstore.backend is off)");
		return -1;
	}
	for (p = &jobs; *p != NULL; p = &(*p)->next)
		;
	*p = j;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
	return 0;
}

static void *
loop(void *arg)
{
	struct backup_job	*j;
	long long		 start = (long long)time(NULL), last = -1;
	long long		 due, now;
	long			 iv, first, retry;

	for (;;) {
		iv = interval(config_current());
		retry = iv > 0 && iv < RETRY_S ? iv : RETRY_S;
		if ((j = take()) != NULL) {
			if (j->list)
				run_list(j);
			else if (run(retry, j))
				last = (long long)time(NULL);
			j->done(j);
			continue;
		}
		if (iv > 0 && last < 0)
			last = newest();
		now = (long long)time(NULL);
		first = iv < FIRST_DELAY_S ? iv : FIRST_DELAY_S;
		due = iv == 0 ? LLONG_MAX : last + iv;
		if (iv > 0 && due < start + first)
			due = start + first;
		if (iv == 0 || now < due) {
			if (!sleep_until(due))
				break;
			continue;
		}
		/* A failure is tried again after retry, not iv. */
		last = run(retry, NULL) ? (long long)time(NULL) :
		    (long long)time(NULL) - iv + retry;
	}
	return NULL;
}

static long
interval(const struct config *c)
{
	return c->backup_interval_s > 0 ? c->backup_interval_s :
	    c->backup_interval_h * 3600;
}

/* The newest backup's time; 0 when there is none or the store fails. */
static long long
newest(void)
{
	const struct backup_entry	*b;
	struct backup_entry		*e = NULL;
	char				 err[BACKUP_ERR];
	long long			 t = 0;
	size_t				 n;

	if (backup_scan(objstore_shared(), &e, &n, err) == -1) {
		log_warn("cannot find the last backup", "%s", err);
		return 0;
	}
	if ((b = backup_latest(e, n)) != NULL)
		t = backup_id_ms(b->id) / 1000;
	free(e);
	return t;
}

/* A backup, scheduled (j NULL) or asked for; its log line either way. */
static bool
run(long retry_s, struct backup_job *j)
{
	struct backup_info	 bi;
	struct logline		 l;
	char			 err[BACKUP_ERR];
	bool			 stop;
	int			 rc;

	pthread_mutex_lock(&mu);
	busy = true;
	pthread_mutex_unlock(&mu);
	rc = backup_now(config_current(), objstore_shared(), &bi, err);
	pthread_mutex_lock(&mu);
	stop = stopping;
	busy = false;
	pthread_mutex_unlock(&mu);
	if (rc == 0 && log_begin(&l, LOG_INFO, "backup made")) {
		log_str(&l, "id", bi.id);
		log_int(&l, "size", bi.size);
		log_int(&l, "ms", bi.ms);
		log_int(&l, "removed", (long long)bi.removed);
		log_str(&l, "by", j != NULL ? "api" : "schedule");
		log_end(&l);
	} else if (rc != 0 && stop)
		log_info("backup abandoned", "pincerd is stopping");
	else if (rc != 0 && j == NULL)
		log_warn("backup failed", "%s; the next try is in %ld s", err,
		    retry_s);
	else if (rc != 0)
		log_warn("backup failed", "%s (asked for through the API)",
		    err);
	if (j != NULL) {
		j->rc = rc;
		j->info = bi;
		memcpy(j->err, err, sizeof(j->err));
	}
	return rc == 0;
}

static void
run_list(struct backup_job *j)
{
	j->backups = backup_list_json(objstore_shared(), &j->incomplete,
	    j->err);
	j->rc = j->backups != NULL ? 0 : -1;
}

static struct backup_job *
take(void)
{
	struct backup_job	*j;

	pthread_mutex_lock(&mu);
	if ((j = jobs) != NULL)
		jobs = j->next;
	pthread_mutex_unlock(&mu);
	return j;
}

/* false: pincerd is stopping. A job queued ends the sleep. */
static bool
sleep_until(long long due)
{
	struct timespec	 ts;
	long long	 wait = due - (long long)time(NULL);
	bool		 go;

	if (wait > RECHECK_S)
		wait = RECHECK_S;
	pthread_mutex_lock(&mu);
	if (!stopping && jobs == NULL && wait > 0) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)wait;
		pthread_cond_timedwait(&cv, &mu, &ts);
	}
	go = !stopping;
	pthread_mutex_unlock(&mu);
	return go;
}
