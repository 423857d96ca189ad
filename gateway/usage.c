/* SPDX-License-Identifier: MIT */
/*
 * usage.c: one row per LLM call, the budgets and rate limit checked
 * before each call, per-provider metrics, and GET /api/v1/usage.
 *
 * A call is counted in memory at once (budgets see it on the next
 * request) and queued for the store; a writer thread inserts the queue
 * in one transaction every WRITE_MS, so the proxy's threads never wait
 * on SQLite. A full queue is written by the caller itself: a row is
 * never dropped. Counters are per UTC day and month, loaded from the
 * table at start, so a restart forgets nothing.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "pincer.h"

#define QUEUE_MAX	65536
#define WRITE_MS	200
#define ARENA_RESERVE	(8 << 20)	/* the writer's heap, grown at once */
#define CALLERS_MAX	4096	/* tracked at once; idle ones are reused */
#define PROVIDERS_MAX	64
#define STATUSES_MAX	16

struct tally {
	char		 caller[96];	/* "": free slot */
	long		 day, month;	/* the period the sums are for */
	long long	 day_tokens, month_tokens;
	double		 day_usd, month_usd;
	double		 bucket;	/* rate limit tokens */
	double		 bucket_at;	/* seconds */
	double		 last;		/* last seen, for reuse */
};

struct pstat {
	char		 name[64];
	int		 status[STATUSES_MAX];
	long long	 by_status[STATUSES_MAX];
	long long	 errors, in, out, cached, hits, count;
	long long	 le[12];
	double		 sum;
};

static const double bounds[12] = { 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
	30, 60, 120, INFINITY };

static void	*writer(void *);
static void	 arena_reserve(void);
static void	 write_batch(struct llm_call *, size_t);
static struct tally *tally_get(const char *, bool create);
static void	 tally_roll(struct tally *, long day, long month);
static void	 tally_add(struct tally *, long long tokens, double usd);
static struct pstat *pstat_get(const char *);
static bool	 budget_over(const struct llm_budget *, struct tally *,
		    const char *, char *, size_t, long *);
static void	 load_period(const char *, long long since, bool month);
static void	 load_caller(struct tally *);
static long	 day_of(long long ms);
static long	 month_of(long long ms);
static long long month_start_ms(long long ms);
static int	 parse_day(const char *, long long *);
static void	 add_totals(json_t *, json_t *);

static pthread_mutex_t	 lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 more = PTHREAD_COND_INITIALIZER;
static pthread_cond_t	 drained = PTHREAD_COND_INITIALIZER;
static struct llm_call	*queue;		/* lock */
static struct llm_call	*spare;		/* lock: NULL while the writer
					 * writes it */
static size_t		 nqueue;	/* lock */
static bool		 writing;	/* lock: a batch is being written */
static bool		 quit;		/* lock */
static pthread_t	 thread;
static bool		 started;
static struct tally	 all;		/* lock: every caller */
static struct tally	*tallies;	/* lock: CALLERS_MAX */
static struct pstat	 pstats[PROVIDERS_MAX + 1];	/* lock */
static size_t		 npstats;
static long long	 (*clock_ms)(void) = now_wall_ms;
static bool		 loading;	/* lock: usage_start's sums */

void
usage_set_clock(long long (*fn)(void))
{
	clock_ms = fn != NULL ? fn : now_wall_ms;
}

int
usage_start(void)
{
	long long	 now = clock_ms();

	if ((queue = calloc(QUEUE_MAX, sizeof(*queue))) == NULL ||
	    (spare = calloc(QUEUE_MAX, sizeof(*spare))) == NULL ||
	    (tallies = calloc(CALLERS_MAX, sizeof(*tallies))) == NULL)
		goto fail;
	quit = false;
	memset(&all, 0, sizeof(all));
	snprintf(all.caller, sizeof(all.caller), "all");
	memset(pstats, 0, sizeof(pstats));
	npstats = 0;
	pthread_mutex_lock(&lock);
	loading = true;
	load_period("month", month_start_ms(now), true);
	load_period("day", now - now % 86400000, false);
	loading = false;
	pthread_mutex_unlock(&lock);
	if (pthread_create(&thread, NULL, writer, NULL) != 0)
		goto fail;
	started = true;
	return 0;
fail:
	log_error("cannot start the usage writer", "out of memory or "
	    "threads");
	free(queue);
	free(spare);
	free(tallies);
	queue = spare = NULL;
	tallies = NULL;
	return -1;
}

void
usage_stop(void)
{
	if (!started)
		return;
	pthread_mutex_lock(&lock);
	quit = true;
	pthread_cond_signal(&more);
	pthread_mutex_unlock(&lock);
	pthread_join(thread, NULL);
	started = false;
	free(queue);
	free(spare);
	free(tallies);
	queue = spare = NULL;
	tallies = NULL;
	nqueue = 0;
}

/* Any thread: counted now, written within WRITE_MS. */
void
usage_record(const struct llm_call *c)
{
	long long	 tokens = c->tokens.in + c->tokens.out;
	struct tally	*t;
	struct pstat	*p;
	size_t		 i;
	double		 s = c->latency_ms / 1000.0;

	pthread_mutex_lock(&lock);
	if (queue == NULL) {
		pthread_mutex_unlock(&lock);
		return;
	}
	tally_add(&all, tokens, c->cost_usd);
	if ((t = tally_get(c->caller, true)) != NULL)
		tally_add(t, tokens, c->cost_usd);
	if ((p = pstat_get(*c->provider ? c->provider : "none")) != NULL) {
		for (i = 0; i < STATUSES_MAX && p->status[i] != 0 &&
		    p->status[i] != c->status; i++)
			;
		if (i < STATUSES_MAX) {
			p->status[i] = c->status;
			p->by_status[i]++;
		}
		p->errors += c->status >= 400 || c->status == 0;
		p->in += c->tokens.in;
		p->out += c->tokens.out;
		p->cached += c->tokens.cached;
		p->hits += c->cache_hit;
		p->count++;
		p->sum += s;
		for (i = 0; i < 12; i++)
			p->le[i] += s <= bounds[i];
	}
	if (nqueue == QUEUE_MAX) {
		/* The writer is behind: this thread writes, nothing is lost. */
		while (writing)
			pthread_cond_wait(&drained, &lock);
		write_batch(queue, nqueue);
		nqueue = 0;
	}
	queue[nqueue++] = *c;
	pthread_mutex_unlock(&lock);
}

/* Everything recorded so far is in the table when this returns. */
void
usage_flush(void)
{
	pthread_mutex_lock(&lock);
	while (started && (nqueue > 0 || writing)) {
		pthread_cond_signal(&more);
		pthread_cond_wait(&drained, &lock);
	}
	pthread_mutex_unlock(&lock);
}

static void *
writer(void *unused)
{
	struct llm_call		*batch;
	struct timespec		 ts;
	size_t			 n;
	bool			 last;

	/*
	 * The rows are bookkeeping: a batch (thousands of rows a second
	 * under load) must not take a core from the workers, which hold
	 * clients waiting. When this thread falls behind, the queue fills
	 * and the workers write themselves: nothing is lost.
	 *
	 * SCHED_IDLE rather than nice 19: a nice-19 thread, once picked,
	 * keeps the core for the scheduler's minimum slice, and a worker
	 * woken meanwhile waited for it (added p99 at 5,000 calls/s: 1.7 ms
	 * against 0.14 ms with no rows written). A SCHED_IDLE thread is
	 * preempted as soon as any other thread wakes. Either is per
	 * thread on Linux. It holds the lock the workers take only to
	 * swap the two queues.
	 */
	if (pthread_setschedparam(pthread_self(), SCHED_IDLE,
	    &(struct sched_param){ .sched_priority = 0 }) != 0 &&
	    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19) == -1)
		log_debug("usage writer keeps normal priority", "%s",
		    strerror(errno));
	arena_reserve();
	/*
	 * Each fsync of the WAL cost the workers' p99 as much as the rest
	 * of the writer together (0.4-0.7 ms at 5,000 calls/s). A power cut
	 * may lose the last seconds of rows: bookkeeping, not messages.
	 */
	store_lazy_commits();
	pthread_mutex_lock(&lock);
	for (;;) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += WRITE_MS * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		if (nqueue == 0 && !quit)
			pthread_cond_timedwait(&more, &lock, &ts);
		last = quit;
		n = nqueue;
		batch = queue;
		queue = spare;
		spare = NULL;
		nqueue = 0;
		writing = true;
		pthread_mutex_unlock(&lock);
		if (n > 0)
			write_batch(batch, n);
		pthread_mutex_lock(&lock);
		spare = batch;
		writing = false;
		pthread_cond_broadcast(&drained);
		if (last && nqueue == 0)
			break;
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

/*
 * glibc grows a thread's heap a page at a time with mprotect, which
 * takes the process's memory-map lock for writing. This thread runs at
 * the lowest priority: preempted inside that lock (SQLite's page cache
 * grows for minutes under load), it held up every worker's page fault.
 * A heap once grown is not shrunk by mprotect again (freed pages are
 * given back with madvise), so growing it once here, then freeing,
 * keeps its later growth out of the lock and costs no memory.
 */
static void
arena_reserve(void)
{
	void	*p[ARENA_RESERVE / 16384];
	size_t	 i;

	for (i = 0; i < sizeof(p) / sizeof(p[0]); i++)
		p[i] = malloc(16000);	/* under the mmap threshold */
	for (i = 0; i < sizeof(p) / sizeof(p[0]); i++)
		free(p[i]);
}

/* One transaction for the batch: thousands of rows a second cost one
 * fsync each WRITE_MS at most. */
static void
write_batch(struct llm_call *b, size_t n)
{
	sqlite3_stmt	*st;
	size_t		 i;

	if (sqlite3_exec(store_db(), "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
	    (st = store_stmt("INSERT INTO llm_calls (ts_ms, caller, route, "
	    "provider, model, in_tokens, out_tokens, cached_tokens, "
	    "latency_ms, ttft_ms, status, cache_hit, stream, cost_usd) "
	    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")) == NULL) {
		log_error("cannot record LLM calls", "%s",
		    sqlite3_errmsg(store_db()));
		return;
	}
	for (i = 0; i < n; i++) {
		sqlite3_bind_int64(st, 1, b[i].ts_ms);
		sqlite3_bind_text(st, 2, b[i].caller, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, b[i].route, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, b[i].provider, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, b[i].model, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, b[i].tokens.in);
		sqlite3_bind_int64(st, 7, b[i].tokens.out);
		sqlite3_bind_int64(st, 8, b[i].tokens.cached);
		sqlite3_bind_int64(st, 9, b[i].latency_ms);
		sqlite3_bind_int64(st, 10, b[i].ttft_ms);
		sqlite3_bind_int(st, 11, b[i].status);
		sqlite3_bind_int(st, 12, b[i].cache_hit);
		sqlite3_bind_int(st, 13, b[i].stream);
		sqlite3_bind_double(st, 14, b[i].cost_usd);
		if (sqlite3_step(st) != SQLITE_DONE)
			log_error("cannot record an LLM call", "%s",
			    sqlite3_errmsg(store_db()));
		sqlite3_reset(st);
	}
	sqlite3_clear_bindings(st);
	if (sqlite3_exec(store_db(), "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		log_error("cannot record LLM calls", "%s",
		    sqlite3_errmsg(store_db()));
}

/*
 * Before a call. The rate is a token bucket per caller (rpm a minute,
 * as many at once); the budgets are checked in their order.
 */
enum usage_verdict
usage_check(const struct llm_conf *lc, const char *caller, char *why,
    size_t whysz, long *retry_s)
{
	struct tally	*t;
	double		 now = (double)clock_ms() / 1000, rate;
	size_t		 i;

	pthread_mutex_lock(&lock);
	if (tallies == NULL || (t = tally_get(caller, true)) == NULL) {
		pthread_mutex_unlock(&lock);
		return USAGE_OK;
	}
	t->last = now;
	if (lc->rate_limit_rpm > 0) {
		rate = (double)lc->rate_limit_rpm / 60;
		t->bucket += (now - t->bucket_at) * rate;
		if (t->bucket > lc->rate_limit_rpm || t->bucket_at == 0)
			t->bucket = (double)lc->rate_limit_rpm;
		t->bucket_at = now;
		if (t->bucket < 1) {
			*retry_s = (long)ceil((1 - t->bucket) / rate);
			snprintf(why, whysz, "the rate limit of %ld LLM calls "
			    "a minute for %s is reached (llm.rate_limit_rpm); "
			    "retry in %ld s", lc->rate_limit_rpm, caller,
			    *retry_s);
			pthread_mutex_unlock(&lock);
			return USAGE_RATE;
		}
		t->bucket -= 1;
	}
	for (i = 0; i < lc->nbudgets; i++)
		if (budget_over(&lc->budgets[i], t, caller, why, whysz,
		    retry_s)) {
			pthread_mutex_unlock(&lock);
			return USAGE_BUDGET;
		}
	pthread_mutex_unlock(&lock);
	return USAGE_OK;
}

/* Lock held. */
static bool
budget_over(const struct llm_budget *b, struct tally *t, const char *caller,
    char *why, size_t whysz, long *retry_s)
{
	long long	 ms = clock_ms(), used, end;
	double		 usd;
	bool		 day = b->period == LLM_DAY;
	struct tm	 tm;
	time_t		 secs;

	if (!strcmp(b->caller, "all"))
		t = &all;
	else if (strcmp(b->caller, "each") != 0 && strcmp(b->caller, caller))
		return false;
	tally_roll(t, day_of(ms), month_of(ms));
	used = day ? t->day_tokens : t->month_tokens;
	usd = day ? t->day_usd : t->month_usd;
	if (!((b->tokens > 0 && used >= b->tokens) ||
	    (b->usd > 0 && usd >= b->usd)))
		return false;
	if (day)
		end = (ms / 86400000 + 1) * 86400000;
	else {
		secs = (time_t)(month_start_ms(ms) / 1000);
		gmtime_r(&secs, &tm);
		tm.tm_mon++;
		end = (long long)timegm(&tm) * 1000;
	}
	*retry_s = (long)((end - ms + 999) / 1000);
	if (b->tokens > 0 && used >= b->tokens)
		snprintf(why, whysz, "the %s token budget for %s (%lld tokens) "
		    "is used up: %lld used; it resets at 00:00 UTC%s",
		    day ? "daily" : "monthly", !strcmp(b->caller, "all") ?
		    "all callers" : caller, b->tokens, used, day ? "" :
		    " on the 1st");
	else
		snprintf(why, whysz, "the %s budget for %s ($%.2f) is used "
		    "up: $%.4f spent; it resets at 00:00 UTC%s", day ?
		    "daily" : "monthly", !strcmp(b->caller, "all") ?
		    "all callers" : caller, b->usd, usd, day ? "" :
		    " on the 1st");
	return true;
}

/* Lock held. The caller's tally, made (or an idle one reused) if asked. */
static struct tally *
tally_get(const char *caller, bool create)
{
	size_t		 i, h = 5381, idx, victim = 0;
	double		 oldest = INFINITY;

	for (i = 0; caller[i]; i++)
		h = h * 33 + (unsigned char)caller[i];
	for (i = 0; i < 64; i++) {
		idx = (h + i) % CALLERS_MAX;
		if (!strcmp(tallies[idx].caller, caller))
			return &tallies[idx];
		if (tallies[idx].caller[0] == '\0') {
			victim = idx;
			break;
		}
		if (tallies[idx].last < oldest) {
			oldest = tallies[idx].last;
			victim = idx;
		}
	}
	if (!create)
		return NULL;
	memset(&tallies[victim], 0, sizeof(tallies[victim]));
	snprintf(tallies[victim].caller, sizeof(tallies[victim].caller), "%s",
	    caller);
	/* Not seen since start (or pushed out): its sums from the table. */
	if (!loading)
		load_caller(&tallies[victim]);
	return &tallies[victim];
}

/* Lock held: this day's and month's sums of one caller. Rows still
 * queued are not in them; a caller is loaded once, so that is rare. */
static void
load_caller(struct tally *t)
{
	sqlite3_stmt	*st;
	long long	 ms = clock_ms(), day0 = ms - ms % 86400000;

	if ((st = store_stmt("SELECT COALESCE(SUM(in_tokens + out_tokens), "
	    "0), COALESCE(SUM(cost_usd), 0), COALESCE(SUM(CASE WHEN ts_ms >= "
	    "? THEN in_tokens + out_tokens END), 0), COALESCE(SUM(CASE WHEN "
	    "ts_ms >= ? THEN cost_usd END), 0) FROM llm_calls WHERE caller = "
	    "? AND ts_ms >= ?")) == NULL)
		return;
	sqlite3_bind_int64(st, 1, day0);
	sqlite3_bind_int64(st, 2, day0);
	sqlite3_bind_text(st, 3, t->caller, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, month_start_ms(ms));
	if (sqlite3_step(st) == SQLITE_ROW) {
		tally_roll(t, day_of(ms), month_of(ms));
		t->month_tokens = sqlite3_column_int64(st, 0);
		t->month_usd = sqlite3_column_double(st, 1);
		t->day_tokens = sqlite3_column_int64(st, 2);
		t->day_usd = sqlite3_column_double(st, 3);
	}
	sqlite3_reset(st);
}

static void
tally_roll(struct tally *t, long day, long month)
{
	if (t->day != day) {
		t->day = day;
		t->day_tokens = 0;
		t->day_usd = 0;
	}
	if (t->month != month) {
		t->month = month;
		t->month_tokens = 0;
		t->month_usd = 0;
	}
}

static void
tally_add(struct tally *t, long long tokens, double usd)
{
	long long	 ms = clock_ms();

	tally_roll(t, day_of(ms), month_of(ms));
	t->day_tokens += tokens;
	t->month_tokens += tokens;
	t->day_usd += usd;
	t->month_usd += usd;
}

/* At start: what this day and month already used, from the table. */
static void
load_period(const char *what, long long since, bool month)
{
	sqlite3_stmt	*st;
	struct tally	*t;
	long long	 ms = clock_ms();

	if ((st = store_stmt("SELECT caller, SUM(in_tokens + out_tokens), "
	    "SUM(cost_usd) FROM llm_calls WHERE ts_ms >= ? GROUP BY caller"))
	    == NULL)
		return;
	sqlite3_bind_int64(st, 1, since);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *c = (const char *)sqlite3_column_text(st, 0);

		t = tally_get(c != NULL ? c : "", true);
		tally_roll(t, day_of(ms), month_of(ms));
		tally_roll(&all, day_of(ms), month_of(ms));
		if (month) {
			t->month_tokens = sqlite3_column_int64(st, 1);
			t->month_usd = sqlite3_column_double(st, 2);
			all.month_tokens += t->month_tokens;
			all.month_usd += t->month_usd;
		} else {
			t->day_tokens = sqlite3_column_int64(st, 1);
			t->day_usd = sqlite3_column_double(st, 2);
			all.day_tokens += t->day_tokens;
			all.day_usd += t->day_usd;
		}
	}
	sqlite3_reset(st);
	(void)what;
}

/* Lock held. */
static struct pstat *
pstat_get(const char *name)
{
	size_t	 i;

	for (i = 0; i < npstats; i++)
		if (!strcmp(pstats[i].name, name))
			return &pstats[i];
	if (npstats == PROVIDERS_MAX)
		name = "other";
	for (i = 0; i < npstats; i++)
		if (!strcmp(pstats[i].name, name))
			return &pstats[i];
	snprintf(pstats[npstats].name, sizeof(pstats[npstats].name), "%s",
	    name);
	return &pstats[npstats++];
}

void
usage_metrics(struct buf *b)
{
	static const char *const kinds[] = { "input", "output", "cached" };
	struct pstat	*p;
	size_t		 i, j, k;

	pthread_mutex_lock(&lock);
	buf_puts(b, "# HELP pincer_llm_requests_total LLM calls by provider "
	    "and the status the client got.\n"
	    "# TYPE pincer_llm_requests_total counter\n");
	for (i = 0; i < npstats; i++)
		for (j = 0; j < STATUSES_MAX && pstats[i].status[j]; j++)
			buf_printf(b, "pincer_llm_requests_total{"
			    "provider=\"%s\",status=\"%d\"} %lld\n",
			    pstats[i].name,
			    pstats[i].status[j], pstats[i].by_status[j]);
	buf_puts(b, "# HELP pincer_llm_errors_total LLM calls that ended in "
	    "an error.\n# TYPE pincer_llm_errors_total counter\n");
	for (i = 0; i < npstats; i++)
		buf_printf(b, "pincer_llm_errors_total{provider=\"%s\"} %lld\n",
		    pstats[i].name, pstats[i].errors);
	buf_puts(b, "# HELP pincer_llm_tokens_total Tokens by provider and "
	    "kind.\n# TYPE pincer_llm_tokens_total counter\n");
	for (i = 0; i < npstats; i++)
		for (k = 0; k < 3; k++) {
			p = &pstats[i];
			buf_printf(b, "pincer_llm_tokens_total{provider=\"%s\","
			    "kind=\"%s\"} %lld\n", p->name, kinds[k], k == 0 ?
			    p->in : k == 1 ? p->out : p->cached);
		}
	buf_puts(b, "# HELP pincer_llm_cache_hits_total Answers from the "
	    "cache.\n# TYPE pincer_llm_cache_hits_total counter\n");
	for (i = 0; i < npstats; i++)
		buf_printf(b, "pincer_llm_cache_hits_total{provider=\"%s\"} "
		    "%lld\n", pstats[i].name, pstats[i].hits);
	buf_puts(b, "# HELP pincer_llm_request_duration_seconds From the "
	    "request to the end of the answer.\n"
	    "# TYPE pincer_llm_request_duration_seconds histogram\n");
	for (i = 0; i < npstats; i++) {
		p = &pstats[i];
		for (j = 0; j < 12; j++) {
			char	 le[16];

			snprintf(le, sizeof(le), isinf(bounds[j]) ? "+Inf" :
			    "%g", bounds[j]);
			buf_printf(b, "pincer_llm_request_duration_seconds"
			    "_bucket{provider=\"%s\",le=\"%s\"} %lld\n", p->name, le,
			    p->le[j]);
		}
		buf_printf(b, "pincer_llm_request_duration_seconds_sum"
		    "{provider=\"%s\"} %.6f\n"
		    "pincer_llm_request_duration_seconds_count"
		    "{provider=\"%s\"} %lld\n", p->name, p->sum, p->name,
		    p->count);
	}
	pthread_mutex_unlock(&lock);
}

/*
 * GET /api/v1/usage?group_by=day|model|caller|provider|route&from=&to=
 * (UTC days, inclusive; 30 days to today by default). A member sees
 * only their own calls.
 */
void
api_usage(struct http_req *r)
{
	/* Whole statements: the store caches them by their address. */
#define Q(expr) "SELECT " expr " AS k, COUNT(*), SUM(status >= 400 " \
	    "OR status = 0), SUM(in_tokens), SUM(out_tokens), " \
	    "SUM(cached_tokens), " \
	    "SUM(cost_usd), SUM(cache_hit) FROM llm_calls WHERE ts_ms >= ? " \
	    "AND ts_ms < ? AND (? OR caller = ?) GROUP BY k ORDER BY k"
	static const struct { const char *name, *sql; } groups[] = {
		{ "day", Q("strftime('%Y-%m-%d', ts_ms / 1000, 'unixepoch')") },
		{ "model", Q("model") }, { "caller", Q("caller") },
		{ "provider", Q("provider") }, { "route", Q("route") },
	};
#undef Q
	const struct identity	*id = http_req_identity(r);
	const char		*g = http_req_query(r, "group_by");
	const char		*f = http_req_query(r, "from");
	const char		*t = http_req_query(r, "to");
	long long		 now = clock_ms(), from, to;
	size_t			 i;
	char			 who[96], fs[16], ts[16];
	sqlite3_stmt		*st;
	json_t			*o, *rows, *row, *tot;
	time_t			 secs;
	struct tm		 tm;

	for (i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
		if (g == NULL ? i == 0 : !strcmp(g, groups[i].name))
			break;
	if (i == sizeof(groups) / sizeof(groups[0])) {
		http_error(r, 400, "bad_request", "group_by is day, model, "
		    "caller, provider or route");
		return;
	}
	to = now - now % 86400000;
	from = to - 29 * 86400000LL;
	if ((f != NULL && parse_day(f, &from) == -1) ||
	    (t != NULL && parse_day(t, &to) == -1) || from > to) {
		http_error(r, 400, "bad_request", "from and to are days, "
		    "YYYY-MM-DD, from not after to");
		return;
	}
	usage_flush();
	snprintf(who, sizeof(who), "user:%s", id->user);
	if ((st = store_stmt(groups[i].sql)) == NULL) {
		http_error(r, 500, "internal", "the store failed");
		return;
	}
	sqlite3_bind_int64(st, 1, from);
	sqlite3_bind_int64(st, 2, to + 86400000);
	sqlite3_bind_int(st, 3, id->role >= ROLE_ADMIN &&
	    id->kind != ID_SANDBOX);
	sqlite3_bind_text(st, 4, who, -1, SQLITE_TRANSIENT);
	rows = json_array();
	tot = json_pack("{s:i, s:i, s:i, s:i, s:i, s:f, s:i}", "requests", 0,
	    "errors", 0, "input_tokens", 0, "output_tokens", 0,
	    "cached_tokens", 0, "cost_usd", 0.0, "cache_hits", 0);
	while (sqlite3_step(st) == SQLITE_ROW) {
		row = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:f, s:I}",
		    "key", sqlite3_column_text(st, 0) ?
		    (const char *)sqlite3_column_text(st, 0) : "",
		    "requests", (json_int_t)sqlite3_column_int64(st, 1),
		    "errors", (json_int_t)sqlite3_column_int64(st, 2),
		    "input_tokens", (json_int_t)sqlite3_column_int64(st, 3),
		    "output_tokens", (json_int_t)sqlite3_column_int64(st, 4),
		    "cached_tokens", (json_int_t)sqlite3_column_int64(st, 5),
		    "cost_usd", sqlite3_column_double(st, 6),
		    "cache_hits", (json_int_t)sqlite3_column_int64(st, 7));
		json_array_append_new(rows, row);
		add_totals(tot, row);
	}
	sqlite3_reset(st);
	secs = (time_t)(from / 1000);
	gmtime_r(&secs, &tm);
	strftime(fs, sizeof(fs), "%Y-%m-%d", &tm);
	secs = (time_t)(to / 1000);
	gmtime_r(&secs, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%d", &tm);
	o = json_pack("{s:s, s:s, s:s, s:o, s:o}", "group_by",
	    groups[i].name, "from", fs, "to", ts, "rows", rows, "total", tot);
	http_reply_json(r, 200, o);
}

/* A row's sums added into the totals (the same keys). */
static void
add_totals(json_t *tot, json_t *row)
{
	const char	*k;
	json_t		*v, *t;

	json_object_foreach(row, k, v) {
		if ((t = json_object_get(tot, k)) == NULL)
			continue;
		json_object_set_new(tot, k, json_is_real(v) ?
		    json_real(json_real_value(t) + json_real_value(v)) :
		    json_integer(json_integer_value(t) +
		    json_integer_value(v)));
	}
}

static int
parse_day(const char *s, long long *ms)
{
	struct tm	 tm;
	const char	*end;

	memset(&tm, 0, sizeof(tm));
	if ((end = strptime(s, "%Y-%m-%d", &tm)) == NULL || *end != '\0')
		return -1;
	*ms = (long long)timegm(&tm) * 1000;
	return 0;
}

static long
day_of(long long ms)
{
	return (long)(ms / 86400000);
}

static long
month_of(long long ms)
{
	struct tm	 tm;
	time_t		 secs = (time_t)(ms / 1000);

	gmtime_r(&secs, &tm);
	return tm.tm_year * 12L + tm.tm_mon;
}

static long long
month_start_ms(long long ms)
{
	struct tm	 tm;
	time_t		 secs = (time_t)(ms / 1000);

	gmtime_r(&secs, &tm);
	tm.tm_mday = 1;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	return (long long)timegm(&tm) * 1000;
}
