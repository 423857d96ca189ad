/* SPDX-License-Identifier: MIT */
/*
 * test_log_ring.c: the log's last warnings and errors, kept for the admin
 * UI: info is not kept, a line a caller marks is not, the newest comes
 * first, logfmt and JSON lines read back into the same fields (quotes,
 * escapes, a newline), at most 100 are kept, limit is honoured.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "pincer.h"
#include "tap.h"

static const char *
field(json_t *e, const char *k)
{
	return json_string_value(json_object_get(json_object_get(e,
	    "fields"), k));
}

static const char *
top(json_t *e, const char *k)
{
	return json_string_value(json_object_get(e, k));
}

static void
emit(enum log_level lv, const char *msg, const char *v)
{
	struct logline	 l;

	if (log_begin(&l, lv, msg)) {
		log_str(&l, "v", v);
		log_int(&l, "n", 7);
		log_end(&l);
	}
}

static void
check_format(enum log_format fmt, const char *name)
{
	unsigned long long	 total0, total;
	struct logline		 l;
	json_t			*a;

	log_setup(LOG_INFO, fmt);
	json_decref(log_ring_list(1, &total0));
	emit(LOG_INFO, "an info", "x");
	emit(LOG_WARN, "a warning", "say \"hi\"\nthen go=now");
	emit(LOG_ERROR, "an error", "plain");
	if (log_begin(&l, LOG_WARN, "private")) {
		l.keep = false;
		log_str(&l, "code", "SECRET-CODE");
		log_end(&l);
	}
	a = log_ring_list(100, &total);
	is_int((long long)(total - total0), 2,
	    "%s: two kept (info and a private line are not)", name);
	is_str(top(json_array_get(a, 0), "msg"), "an error",
	    "%s: the newest first", name);
	is_str(top(json_array_get(a, 0), "level"), "error", "%s: its level",
	    name);
	ok(top(json_array_get(a, 0), "time") != NULL &&
	    strlen(top(json_array_get(a, 0), "time")) == 24,
	    "%s: its time, RFC 3339 with milliseconds", name);
	is_str(field(json_array_get(a, 0), "v"), "plain", "%s: a bare value",
	    name);
	is_str(field(json_array_get(a, 1), "v"), "say \"hi\"\nthen go=now",
	    "%s: a quoted value with escapes reads back as it was", name);
	ok(json_object_get(json_object_get(json_array_get(a, 1), "fields"),
	    "ts") == NULL, "%s: time, level and msg are not fields", name);
	json_decref(a);
}

int
main(void)
{
	unsigned long long	 total;
	json_t			*a;
	char			 v[16];
	int			 i, null;

	/* The lines also go to stderr: away with them. */
	null = open("/dev/null", O_WRONLY);
	dup2(null, STDERR_FILENO);
	check_format(LOG_LOGFMT, "logfmt");
	check_format(LOG_JSON, "json");
	for (i = 0; i < 150; i++) {
		snprintf(v, sizeof(v), "%d", i);
		emit(LOG_WARN, "many", v);
	}
	a = log_ring_list(100, &total);
	is_int((long long)json_array_size(a), 100, "at most 100 kept");
	is_str(field(json_array_get(a, 0), "v"), "149", "… the newest first");
	is_str(field(json_array_get(a, 99), "v"), "50", "… the oldest is 50");
	ok(total >= 154, "the total counts them all");
	json_decref(a);
	a = log_ring_list(3, NULL);
	is_int((long long)json_array_size(a), 3, "limit 3: three");
	json_decref(a);
	return done_testing();
}
