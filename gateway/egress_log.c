/* SPDX-License-Identifier: MIT */
/*
 * egress_log.c: every request and tunnel through the egress proxy kept in
 * the store (issue 10), for GET /api/v1/egress/log (api_egress.c).
 *
 * The proxy's connection threads only queue a record in memory; a writer
 * thread inserts the queue in one transaction every WRITE_MS, as usage.c
 * does, so a request never waits on SQLite. Unlike usage.c's rows these
 * are a log, not a bill: when the queue is full (the disk far behind) its
 * oldest record is dropped rather than make a connection thread write,
 * and /metrics counts the drops. The same thread prunes: rows older than
 * egress.log_retention_days once a minute, and the oldest beyond
 * egress.log_max_rows after a batch that passed it. Both options are read
 * from the running config each time, so a reload applies them.
 *
 * No query string is ever kept: a path is cut at its '?' (a token in a
 * URL is the common way to leak one), as the log line is.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "pincer.h"
#include "egress.h"

#define QUEUE_MAX	4096
#define BATCH_MAX	256	/* rows per transaction */
#define WRITE_MS	250
#define PRUNE_MS	60000
#define FLUSH_WAIT_MS	2000
#define PATH_KEEP	512	/* bytes of a path kept, its mark included */
#define DAY_MS		86400000LL

/* A queued record owns copies: the caller's strings go when it returns. */
struct rec {
	long long	 ts_ms, bytes_up, bytes_down, ms;
	int		 port, rule, status;
	bool		 intercepted;
	char		 action[8];
	char		 sandbox[SBX_NAME_MAX + 1];
	char		 policy[64];
	char		 method[16];
	char		 host[256];
	char		 path[PATH_KEEP + 1];
};

static void	*writer(void *);
static void	 tend(long long *last_prune, uint64_t *drops_seen);
static void	 write_batch(const struct rec *, size_t);
static void	 bind_opt(struct sqlite3_stmt *, int, const char *);
static void	 prune_age(long days, long long now);
static void	 prune_rows(long max);
static long long count_rows(void);
static bool	 keeping(const struct config *);
static void	 copy_clean(char *, size_t, const char *, bool lower);
static void	 copy_path(char *, size_t, const char *);
static void	 deadline(struct timespec *, long ms);

static pthread_mutex_t	 lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 more = PTHREAD_COND_INITIALIZER;
static pthread_cond_t	 done = PTHREAD_COND_INITIALIZER;
static struct rec	*ring;		/* lock: QUEUE_MAX; NULL: stopped */
static size_t		 head, nring;	/* lock: the oldest; how many */
static uint64_t		 seq_in;	/* lock: records queued, ever */
static uint64_t		 seq_out;	/* lock: written or dropped, ever */
static int		 flushers;	/* lock: egress_log_flush waiting */
static bool		 quit;		/* lock */
static bool		 started;	/* lock */
static pthread_t	 thread;
static struct rec	*batch;		/* the writer's: BATCH_MAX */
static long long	 rows;		/* the writer's: rows in the table */
static uint64_t		 dropped, written;	/* atomic, for /metrics */

int
egress_log_start(void)
{
	struct rec	*r;

	if ((r = calloc(QUEUE_MAX, sizeof(*r))) == NULL ||
	    (batch = calloc(BATCH_MAX, sizeof(*batch))) == NULL)
		goto fail;
	pthread_mutex_lock(&lock);
	ring = r;
	head = nring = 0;
	quit = false;
	pthread_mutex_unlock(&lock);
	if (pthread_create(&thread, NULL, writer, NULL) != 0)
		goto fail;
	pthread_mutex_lock(&lock);
	started = true;
	pthread_mutex_unlock(&lock);
	return 0;
fail:
	log_error("cannot start the egress log writer", "out of memory or "
	    "threads");
	pthread_mutex_lock(&lock);
	ring = NULL;
	pthread_mutex_unlock(&lock);
	free(r);
	free(batch);
	batch = NULL;
	return -1;
}

/* After egress_stop: what the last connections queued is written. */
void
egress_log_stop(void)
{
	pthread_mutex_lock(&lock);
	if (!started) {
		pthread_mutex_unlock(&lock);
		return;
	}
	quit = true;
	pthread_cond_signal(&more);
	pthread_mutex_unlock(&lock);
	pthread_join(thread, NULL);
	pthread_mutex_lock(&lock);
	started = false;
	free(ring);
	ring = NULL;
	nring = 0;
	pthread_cond_broadcast(&done);
	pthread_mutex_unlock(&lock);
	free(batch);
	batch = NULL;
}

void
egress_log_add(const struct eg_logrec *in)
{
	struct rec	 r;

	if (!keeping(config_current()))
		return;
	/* Copied before the lock: the lock is held for one struct copy. */
	r.ts_ms = in->ts_ms;
	r.bytes_up = in->bytes_up;
	r.bytes_down = in->bytes_down;
	r.ms = in->ms;
	r.port = in->port;
	r.rule = in->rule;
	r.status = in->status;
	r.intercepted = in->intercepted;
	copy_clean(r.action, sizeof(r.action), in->action, true);
	copy_clean(r.sandbox, sizeof(r.sandbox), in->sandbox, false);
	copy_clean(r.policy, sizeof(r.policy), in->policy, false);
	copy_clean(r.method, sizeof(r.method), in->method, false);
	copy_clean(r.host, sizeof(r.host), in->host, true);
	copy_path(r.path, sizeof(r.path), in->path);
	pthread_mutex_lock(&lock);
	if (ring == NULL) {
		pthread_mutex_unlock(&lock);
		return;
	}
	if (nring == QUEUE_MAX) {
		head = (head + 1) % QUEUE_MAX;
		nring--;
		seq_out++;
		__atomic_add_fetch(&dropped, 1, __ATOMIC_RELAXED);
	}
	ring[(head + nring) % QUEUE_MAX] = r;
	nring++;
	seq_in++;
	if (nring == BATCH_MAX)
		pthread_cond_signal(&more);
	pthread_mutex_unlock(&lock);
}

/*
 * What was queued when this was called is in the table when it returns,
 * or FLUSH_WAIT_MS passed (a store that is far behind is not waited for).
 */
void
egress_log_flush(void)
{
	struct timespec	 ts;
	uint64_t	 target;

	deadline(&ts, FLUSH_WAIT_MS);
	pthread_mutex_lock(&lock);
	target = seq_in;
	flushers++;
	pthread_cond_signal(&more);
	while (started && seq_out < target &&
	    pthread_cond_timedwait(&done, &lock, &ts) == 0)
		;
	flushers--;
	pthread_mutex_unlock(&lock);
}

void
egress_log_metrics(struct buf *b)
{
	buf_printf(b, "# HELP pincer_egress_log_written_total Egress "
	    "requests written to the store's request log.\n"
	    "# TYPE pincer_egress_log_written_total counter\n"
	    "pincer_egress_log_written_total %llu\n"
	    "# HELP pincer_egress_log_dropped_total Egress requests left out "
	    "of the request log: its queue to the store was full.\n"
	    "# TYPE pincer_egress_log_dropped_total counter\n"
	    "pincer_egress_log_dropped_total %llu\n",
	    (unsigned long long)__atomic_load_n(&written, __ATOMIC_RELAXED),
	    (unsigned long long)__atomic_load_n(&dropped, __ATOMIC_RELAXED));
}

/*
 * Waits WRITE_MS for records, less when a batch is full, a flush waits
 * or pincerd stops; takes BATCH_MAX at most and writes them with the lock
 * let go. At the end it writes until the queue is empty.
 */
static void *
writer(void *unused)
{
	struct timespec	 ts;
	long long	 last_prune = 0;
	uint64_t	 drops_seen = 0;
	size_t		 n, i;
	bool		 last;

	(void)unused;
	/* A power cut may lose the last rows: a log, not a message. */
	store_lazy_commits();
	rows = count_rows();
	pthread_mutex_lock(&lock);
	for (;;) {
		deadline(&ts, WRITE_MS);
		while (!quit && nring < BATCH_MAX &&
		    !(flushers > 0 && nring > 0) &&
		    pthread_cond_timedwait(&more, &lock, &ts) == 0)
			;
		last = quit;
		n = nring < BATCH_MAX ? nring : BATCH_MAX;
		for (i = 0; i < n; i++)
			batch[i] = ring[(head + i) % QUEUE_MAX];
		/* Back to the start when empty: a writer that keeps up
		 * touches a few pages of the ring, not all of its 4 MB. */
		nring -= n;
		head = nring == 0 ? 0 : (head + n) % QUEUE_MAX;
		pthread_mutex_unlock(&lock);
		if (n > 0)
			write_batch(batch, n);
		tend(&last_prune, &drops_seen);
		pthread_mutex_lock(&lock);
		seq_out += n;
		pthread_cond_broadcast(&done);
		if (last && nring == 0)
			break;
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

/*
 * After each wake: old rows go once a minute (and at start, for what
 * aged while pincerd was down), surplus rows as soon as there are any;
 * drops since the last batch are said once, not per record.
 */
static void
tend(long long *last_prune, uint64_t *drops_seen)
{
	const struct config	*c = config_current();
	long long		 now = now_wall_ms();
	uint64_t		 d;

	if (now - *last_prune >= PRUNE_MS) {
		prune_age(c->egress_log_retention_days, now);
		rows = count_rows();
		*last_prune = now;
	}
	if (rows > c->egress_log_max_rows)
		prune_rows(c->egress_log_max_rows);
	d = __atomic_load_n(&dropped, __ATOMIC_RELAXED);
	if (d != *drops_seen) {
		log_warn("egress log queue full; records dropped", "%llu "
		    "dropped (pincer_egress_log_dropped_total)",
		    (unsigned long long)(d - *drops_seen));
		*drops_seen = d;
	}
}

/* One transaction, one commit, for up to BATCH_MAX rows. */
static void
write_batch(const struct rec *b, size_t n)
{
	static const char sql[] = "INSERT INTO egress_log (ts_ms, sandbox, "
	    "policy, method, host, port, path, action, rule, status, "
	    "bytes_up, bytes_down, ms, intercepted) VALUES (?, ?, ?, ?, ?, "
	    "?, ?, ?, ?, ?, ?, ?, ?, ?)";
	sqlite3		*db = store_db();
	sqlite3_stmt	*st;
	size_t		 i, ok = 0;

	if (db == NULL || sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) !=
	    SQLITE_OK)
		goto fail;
	if ((st = store_stmt(sql)) == NULL) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		goto fail;
	}
	for (i = 0; i < n; i++) {
		sqlite3_bind_int64(st, 1, b[i].ts_ms);
		sqlite3_bind_text(st, 2, b[i].sandbox, -1, SQLITE_STATIC);
		bind_opt(st, 3, b[i].policy);
		bind_opt(st, 4, b[i].method);
		bind_opt(st, 5, b[i].host);
		sqlite3_bind_int(st, 6, b[i].port);
		bind_opt(st, 7, b[i].path);
		sqlite3_bind_text(st, 8, b[i].action, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 9, b[i].rule);
		sqlite3_bind_int(st, 10, b[i].status);
		sqlite3_bind_int64(st, 11, b[i].bytes_up);
		sqlite3_bind_int64(st, 12, b[i].bytes_down);
		sqlite3_bind_int64(st, 13, b[i].ms);
		sqlite3_bind_int(st, 14, b[i].intercepted);
		if (sqlite3_step(st) == SQLITE_DONE)
			ok++;
		sqlite3_reset(st);
	}
	sqlite3_clear_bindings(st);
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		goto fail;
	}
	if (ok < n)
		log_warn("some egress log rows were not written", "%zu of %zu",
		    n - ok, n);
	rows += (long long)ok;
	__atomic_add_fetch(&written, ok, __ATOMIC_RELAXED);
	return;
fail:
	log_error("cannot write the egress log", "%zu rows: %s", n,
	    db != NULL ? sqlite3_errmsg(db) : "no database");
}

/* An empty string is stored as NULL: not known, or not sent. */
static void
bind_opt(sqlite3_stmt *st, int i, const char *s)
{
	if (*s == '\0')
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* Days 0 keeps nothing: every row goes. */
static void
prune_age(long days, long long now)
{
	sqlite3_stmt	*st;

	if ((st = store_stmt("DELETE FROM egress_log WHERE ts_ms < ?")) ==
	    NULL)
		return;
	sqlite3_bind_int64(st, 1, days > 0 ? now - days * DAY_MS :
	    INT64_MAX);
	if (sqlite3_step(st) != SQLITE_DONE)
		log_warn("cannot prune the egress log", "%s",
		    sqlite3_errmsg(store_db()));
	sqlite3_reset(st);
}

/* The newest max rows stay; ids grow with time, so they are the last. */
static void
prune_rows(long max)
{
	sqlite3_stmt	*st;

	if ((st = store_stmt("DELETE FROM egress_log WHERE id <= (SELECT id "
	    "FROM egress_log ORDER BY id DESC LIMIT 1 OFFSET ?)")) == NULL)
		return;
	sqlite3_bind_int64(st, 1, max);
	if (sqlite3_step(st) == SQLITE_DONE)
		rows -= sqlite3_changes(store_db());
	else
		log_warn("cannot prune the egress log", "%s",
		    sqlite3_errmsg(store_db()));
	sqlite3_reset(st);
	if (rows < 0)
		rows = 0;
}

static long long
count_rows(void)
{
	sqlite3_stmt	*st;
	long long	 n = 0;

	if ((st = store_stmt("SELECT count(*) FROM egress_log")) == NULL)
		return 0;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return n;
}

/* Either option at 0 keeps nothing, and then nothing is queued. */
static bool
keeping(const struct config *c)
{
	return c != NULL && c->egress_log_retention_days > 0 &&
	    c->egress_log_max_rows > 0;
}

/*
 * Printable ASCII only, so every row is valid UTF-8 for the API's JSON
 * and cannot carry a control character into a terminal; NULL: "".
 */
static void
copy_clean(char *out, size_t outsz, const char *in, bool lower)
{
	size_t		 o;
	unsigned char	 ch;

	for (o = 0; in != NULL && in[o] != '\0' && o + 1 < outsz; o++) {
		ch = (unsigned char)in[o];
		if (ch < 0x20 || ch >= 0x7f)
			ch = '?';
		else if (lower && ch >= 'A' && ch <= 'Z')
			ch += 'a' - 'A';
		out[o] = (char)ch;
	}
	out[o] = '\0';
}

/*
 * The path up to its query or fragment, which is replaced by "?…" (as in
 * the log line); other bytes than printable ASCII are %-escaped as a URL
 * has them; a path too long ends in "…". NULL (CONNECT): "".
 */
static void
copy_path(char *out, size_t outsz, const char *in)
{
	static const char	 hex[] = "0123456789ABCDEF";
	static const char	 cut[] = "?…";
	const unsigned char	*p = (const unsigned char *)in;
	size_t			 o = 0, room = outsz - sizeof(cut);

	for (; p != NULL && *p != '\0' && *p != '?' && *p != '#'; p++) {
		if (*p > 0x20 && *p < 0x7f) {
			if (o + 1 > room)
				break;
			out[o++] = (char)*p;
		} else {
			if (o + 3 > room)
				break;
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = '\0';
	if (p == NULL || *p == '\0')
		return;
	/* The cut marks: a query or fragment as "?…", a long path "…". */
	snprintf(out + o, outsz - o, "%s", *p == '?' || *p == '#' ? cut :
	    cut + 1);
}

static void
deadline(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_nsec += (ms % 1000) * 1000000L;
	ts->tv_sec += ms / 1000 + ts->tv_nsec / 1000000000L;
	ts->tv_nsec %= 1000000000L;
}
