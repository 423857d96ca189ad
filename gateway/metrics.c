/* SPDX-License-Identifier: MIT */
/* metrics.c: counters kept with atomics, rendered as Prometheus text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pincer.h"

static const int codes[] = { 101, 200, 201, 204, 301, 304, 400, 401, 403, 404,
	405, 408, 413, 426, 429, 431, 500, 502, 503, 504 };
#define NCODES	(sizeof(codes) / sizeof(codes[0]))
/* Seconds; the low end resolves a fast local route. */
static const double bounds[] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
#define NBOUNDS	(sizeof(bounds) / sizeof(bounds[0]))

struct route_metrics {
	uint64_t	 by_code[NCODES + 1];	/* last: any other code */
	uint64_t	 other_code;		/* the last "other" seen */
	uint64_t	 hist[NBOUNDS + 1];
	uint64_t	 sum_ns;
	uint64_t	 count;
};

static const char *route_label(size_t);
static void	render_route(struct buf *, size_t);

static struct route_metrics	*rm;
static size_t			 nrm;
static double			 started;

int
metrics_init(size_t routes)
{
	struct timespec	 ts;

	nrm = routes + 2;	/* + static files, + unmatched */
	if ((rm = calloc(nrm, sizeof(*rm))) == NULL)
		return -1;
	clock_gettime(CLOCK_REALTIME, &ts);
	started = (double)ts.tv_sec + ts.tv_nsec / 1e9;
	return 0;
}

void
metrics_free(void)
{
	free(rm);
	rm = NULL;
}

void
metrics_request(size_t idx, int status, double secs)
{
	struct route_metrics	*m;
	size_t			 i;

	if (rm == NULL || idx >= nrm)
		return;
	m = &rm[idx];
	for (i = 0; i < NCODES && codes[i] != status; i++)
		;
	if (i == NCODES)
		__atomic_store_n(&m->other_code, (uint64_t)status,
		    __ATOMIC_RELAXED);
	__atomic_add_fetch(&m->by_code[i], 1, __ATOMIC_RELAXED);
	for (i = 0; i < NBOUNDS && secs > bounds[i]; i++)
		;
	__atomic_add_fetch(&m->hist[i], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&m->sum_ns, (uint64_t)(secs * 1e9),
	    __ATOMIC_RELAXED);
	__atomic_add_fetch(&m->count, 1, __ATOMIC_RELAXED);
}

long
metrics_rss_bytes(void)
{
	FILE	*f;
	long	 size = 0, rss = 0;

	if ((f = fopen("/proc/self/statm", "re")) == NULL)
		return 0;
	if (fscanf(f, "%ld %ld", &size, &rss) != 2)
		rss = 0;
	fclose(f);
	return rss * sysconf(_SC_PAGESIZE);
}

void
metrics_render(struct buf *b)
{
	size_t	 i;

	buf_puts(b, "# HELP pincer_http_requests_total HTTP requests "
	    "answered, by route and status.\n"
	    "# TYPE pincer_http_requests_total counter\n");
	for (i = 0; i < nrm; i++) {
		size_t	 c;

		for (c = 0; c <= NCODES; c++) {
			uint64_t n = __atomic_load_n(&rm[i].by_code[c],
			    __ATOMIC_RELAXED);

			if (n == 0)
				continue;
			buf_printf(b, "pincer_http_requests_total{route=\"%s\","
			    "status=\"%d\"} %llu\n", route_label(i),
			    c < NCODES ? codes[c] : (int)rm[i].other_code,
			    (unsigned long long)n);
		}
	}
	buf_puts(b, "# HELP pincer_http_request_duration_seconds Time from "
	    "the complete request head to the end of the answer.\n"
	    "# TYPE pincer_http_request_duration_seconds histogram\n");
	for (i = 0; i < nrm; i++)
		render_route(b, i);
	buf_printf(b, "# HELP pincer_http_open_connections Open client "
	    "connections, HTTP and WebSocket.\n"
	    "# TYPE pincer_http_open_connections gauge\n"
	    "pincer_http_open_connections %ld\n"
	    "# HELP pincer_http_requests_in_flight Requests being handled.\n"
	    "# TYPE pincer_http_requests_in_flight gauge\n"
	    "pincer_http_requests_in_flight %ld\n"
	    "# HELP pincer_ws_sessions Open WebSocket sessions.\n"
	    "# TYPE pincer_ws_sessions gauge\n"
	    "pincer_ws_sessions %ld\n"
	    "# HELP process_resident_memory_bytes Resident memory size in "
	    "bytes.\n"
	    "# TYPE process_resident_memory_bytes gauge\n"
	    "process_resident_memory_bytes %ld\n"
	    "# HELP process_start_time_seconds Start time of the process "
	    "since the Unix epoch in seconds.\n"
	    "# TYPE process_start_time_seconds gauge\n"
	    "process_start_time_seconds %.3f\n"
	    "# HELP pincer_build_info The running version.\n"
	    "# TYPE pincer_build_info gauge\n"
	    "pincer_build_info{version=\"%s\"} 1\n",
	    door_open_connections(), http_in_flight(), ws_sessions(),
	    metrics_rss_bytes(), started, pincer_version);
	usage_metrics(b);
	egress_metrics(b);
	egress_log_metrics(b);
}

static void
render_route(struct buf *b, size_t i)
{
	uint64_t	 cum = 0, count;
	size_t		 k;

	count = __atomic_load_n(&rm[i].count, __ATOMIC_RELAXED);
	if (count == 0)
		return;
	for (k = 0; k < NBOUNDS; k++) {
		cum += __atomic_load_n(&rm[i].hist[k], __ATOMIC_RELAXED);
		buf_printf(b, "pincer_http_request_duration_seconds_bucket"
		    "{route=\"%s\",le=\"%g\"} %llu\n", route_label(i),
		    bounds[k], (unsigned long long)cum);
	}
	cum += __atomic_load_n(&rm[i].hist[NBOUNDS], __ATOMIC_RELAXED);
	/* Counters move while we read: keep +Inf and _count equal. */
	buf_printf(b, "pincer_http_request_duration_seconds_bucket"
	    "{route=\"%s\",le=\"+Inf\"} %llu\n"
	    "pincer_http_request_duration_seconds_sum{route=\"%s\"} %.9f\n"
	    "pincer_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
	    route_label(i), (unsigned long long)cum, route_label(i),
	    (double)__atomic_load_n(&rm[i].sum_ns, __ATOMIC_RELAXED) / 1e9,
	    route_label(i), (unsigned long long)cum);
}

static const char *
route_label(size_t i)
{
	if (i < route_count())
		return route_at(i)->name;
	return i == route_count() ? "static" : "none";
}
