/* SPDX-License-Identifier: MIT */
/* test_usage.c: LLM call rows, budgets, the rate limit and metrics
 * (usage.c), on a real store with a clock the test turns. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "pincer.h"
#include "tap.h"

static long long	 fake_now;

static long long
fake_clock(void)
{
	return fake_now;
}

static void
call(const char *caller, long long in, long long out, double usd)
{
	struct llm_call	 c;

	memset(&c, 0, sizeof(c));
	c.ts_ms = fake_now;
	snprintf(c.caller, sizeof(c.caller), "%s", caller);
	snprintf(c.provider, sizeof(c.provider), "oa");
	snprintf(c.model, sizeof(c.model), "gpt-4o");
	c.tokens.in = in;
	c.tokens.out = out;
	c.cost_usd = usd;
	c.status = 200;
	c.latency_ms = 120;
	usage_record(&c);
}

static long long
one(const char *sql)
{
	sqlite3_stmt	*st = store_stmt(sql);
	long long	 v = -1;

	if (st != NULL && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	if (st != NULL)
		sqlite3_reset(st);
	return v;
}

static void *
hammer(void *arg)
{
	int	 i;

	for (i = 0; i < 1250; i++)
		call(arg, 1, 1, 0);
	return NULL;
}

int
main(void)
{
	char			 dir[] = "/tmp/pincer-test-usage.XXXXXX";
	char			 db[128], why[512], *err = NULL;
	struct llm_budget	 b[3];
	struct llm_conf		 lc;
	struct buf		 m;
	pthread_t		 th[4];
	long			 retry = 0;
	int			 i;
	struct timespec		 t0, t1;

	if (mkdtemp(dir) == NULL) {
		printf("Bail out! mkdtemp failed\n");
		return 1;
	}
	log_setup(LOG_ERROR, LOG_LOGFMT);
	snprintf(db, sizeof(db), "%s/pincer.db", dir);
	ok(store_open(db, 1000, &err) == 0, "the store opens");
	/* 2026-11-24 10:00 UTC */
	fake_now = 1795514400000LL;
	usage_set_clock(fake_clock);
	ok(usage_start() == 0, "usage_start");

	memset(&lc, 0, sizeof(lc));
	memset(b, 0, sizeof(b));
	b[0].caller = "all";
	b[0].period = LLM_DAY;
	b[0].tokens = 1000;
	b[1].caller = "each";
	b[1].period = LLM_MONTH;
	b[1].usd = 1.0;
	b[2].caller = "sandbox:s1";
	b[2].period = LLM_DAY;
	b[2].tokens = 100;
	lc.budgets = b;
	lc.nbudgets = 3;

	ok(usage_check(&lc, "user:a", why, sizeof(why), &retry) == USAGE_OK,
	    "nothing used: ok");
	call("user:a", 300, 100, 0.25);
	call("sandbox:s1", 60, 40, 0.01);
	usage_flush();
	is_int(one("SELECT COUNT(*) FROM llm_calls"), 2, "two rows after "
	    "a flush");
	is_int(one("SELECT in_tokens + out_tokens FROM llm_calls WHERE "
	    "caller = 'user:a'"), 400, "the tokens are in the row");
	is_int(usage_check(&lc, "sandbox:s1", why, sizeof(why), &retry),
	    USAGE_BUDGET, "sandbox:s1 used its 100 tokens of the day");
	ok(strstr(why, "daily token budget for sandbox:s1 (100 tokens)") !=
	    NULL, "the reason names the budget: %s", why);
	is_int(retry, 14 * 3600, "retry at midnight UTC: 14 h");
	is_int(usage_check(&lc, "user:a", why, sizeof(why), &retry), USAGE_OK,
	    "user:a is within every budget");
	call("user:a", 500, 100, 0.25);
	is_int(usage_check(&lc, "user:b", why, sizeof(why), &retry),
	    USAGE_BUDGET, "1000 tokens for all callers: user:b is refused "
	    "too");
	ok(strstr(why, "for all callers") != NULL, "… the 'all' budget: %s",
	    why);

	fake_now += 15 * 3600 * 1000LL;		/* the next day, 01:00 */
	is_int(usage_check(&lc, "user:b", why, sizeof(why), &retry), USAGE_OK,
	    "the next UTC day the daily budgets are fresh");
	call("user:a", 10, 10, 0.6);
	is_int(usage_check(&lc, "user:a", why, sizeof(why), &retry),
	    USAGE_BUDGET, "user:a's own monthly $1 ('each') is spent");
	ok(strstr(why, "monthly budget for user:a ($1.00)") != NULL,
	    "… named: %s", why);
	ok(retry > 86400 && retry <= 31 * 86400, "… retry at the 1st "
	    "(%ld s)", retry);

	usage_stop();
	ok(usage_start() == 0, "a restart");
	is_int(one("SELECT COUNT(*) FROM llm_calls"), 4, "every row was "
	    "written at stop");
	is_int(usage_check(&lc, "user:a", why, sizeof(why), &retry),
	    USAGE_BUDGET, "the month's spending is reloaded from the table");
	b[1].usd = 0;
	b[1].tokens = 1 << 30;
	is_int(usage_check(&lc, "user:c", why, sizeof(why), &retry), USAGE_OK,
	    "another caller is fine");

	lc.nbudgets = 0;
	lc.rate_limit_rpm = 3;
	for (i = 0; i < 3; i++)
		is_int(usage_check(&lc, "user:r", why, sizeof(why), &retry),
		    USAGE_OK, "rate 3/min: call %d passes", i + 1);
	is_int(usage_check(&lc, "user:r", why, sizeof(why), &retry),
	    USAGE_RATE, "the 4th at once is refused");
	is_int(retry, 20, "… a call frees up in 20 s");
	fake_now += 20000;
	is_int(usage_check(&lc, "user:r", why, sizeof(why), &retry), USAGE_OK,
	    "20 s later one passes again");
	lc.rate_limit_rpm = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, hammer, "user:h");
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("# usage_record: %.0f ns a call (4 threads, 5000 calls)\n",
	    ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) /
	    5000);
	usage_flush();
	is_int(one("SELECT COUNT(*) FROM llm_calls WHERE caller = 'user:h'"),
	    5000, "5000 calls from 4 threads: 5000 rows");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < 100000; i++)
		usage_check(&lc, "user:h", why, sizeof(why), &retry);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("# usage_check: %.0f ns a call\n",
	    ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) /
	    100000);

	buf_init(&m, 1 << 20);
	usage_metrics(&m);
	ok(strstr(m.data, "pincer_llm_requests_total{provider=\"oa\","
	    "status=\"200\"} 5000\n") != NULL, "metrics: requests by "
	    "provider and status (since the restart)");
	ok(strstr(m.data, "pincer_llm_tokens_total{provider=\"oa\","
	    "kind=\"input\"} 5000\n") != NULL, "metrics: input tokens");
	ok(strstr(m.data, "pincer_llm_request_duration_seconds_bucket{"
	    "provider=\"oa\",le=\"0.25\"} 5000\n") != NULL,
	    "metrics: the latency histogram");
	buf_free(&m);
	usage_stop();
	store_close();
	return done_testing();
}
