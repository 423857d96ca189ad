/* SPDX-License-Identifier: MIT */
/* test_log.c: log lines as logfmt and JSON, read back from stderr. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "pincer.h"
#include "tap.h"

#define CAPTURE_MAX	8192

static void	capture_begin(void);
static size_t	capture_end(char *, size_t);
static int	count_char(const char *, char);
static void	emit_sample(enum log_level);
static void	test_logfmt(void);
static void	test_json(void);
static void	test_levels(void);
static void	test_timestamp(void);
static time_t	line_time(const char *);
static void	test_truncation(void);
static void	test_known_bugs(void);

static int	saved_stderr = -1;
static int	pipe_rd = -1;

int
main(void)
{
	test_logfmt();
	test_json();
	test_levels();
	test_timestamp();
	test_truncation();
	test_known_bugs();
	return done_testing();
}

/* Point stderr at a pipe; a log line is far smaller than a pipe's buffer. */
static void
capture_begin(void)
{
	int	 fds[2];

	fflush(stderr);
	if (pipe(fds) == -1 || (saved_stderr = dup(STDERR_FILENO)) == -1 ||
	    dup2(fds[1], STDERR_FILENO) == -1) {
		printf("Bail out! cannot redirect stderr\n");
		exit(1);
	}
	close(fds[1]);
	pipe_rd = fds[0];
}

/* Restore stderr and return what was written, NUL-terminated. */
static size_t
capture_end(char *out, size_t outsz)
{
	size_t	 len = 0;
	ssize_t	 n;

	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	while (len + 1 < outsz &&
	    (n = read(pipe_rd, out + len, outsz - len - 1)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	close(pipe_rd);
	return len;
}

static int
count_char(const char *s, char c)
{
	int	 n = 0;

	for (; *s; s++)
		n += *s == c;
	return n;
}

static void
emit_sample(enum log_level level)
{
	struct logline	 l;

	if (!log_begin(&l, level, "hello world"))
		return;
	log_str(&l, "path", "/a b");
	log_str(&l, "eq", "a=b");
	log_str(&l, "q", "say \"hi\"");
	log_str(&l, "bs", "c:\\dir");
	log_str(&l, "nl", "x\nlevel=error msg=forged");
	log_str(&l, "cr", "y\rz");
	log_str(&l, "ctl", "\x01\x7f");
	log_int(&l, "n", -42);
	log_str(&l, "plain", "abc");
	log_str(&l, "empty", "");
	log_str(&l, "null", NULL);
	log_end(&l);
}

static void
test_logfmt(void)
{
	char	 out[CAPTURE_MAX];
	int	 y, mo, d, h, mi, s, ms;
	char	 z;

	log_setup(LOG_INFO, LOG_LOGFMT);
	capture_begin();
	emit_sample(LOG_INFO);
	capture_end(out, sizeof(out));

	is_int(count_char(out, '\n'), 1, "logfmt: exactly one line");
	ok(strlen(out) > 0 && out[strlen(out) - 1] == '\n',
	    "logfmt: ends with a newline");
	ok(!strncmp(out, "ts=", 3), "logfmt: ts comes first");
	ok(sscanf(out, "ts=%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &y, &mo, &d, &h,
	    &mi, &s, &ms, &z) == 8 && z == 'Z' && out[27] == ' ',
	    "logfmt: ts is RFC 3339 UTC with milliseconds");
	ok(!strncmp(out + 27, " level=info msg=\"hello world\" ",
	    strlen(" level=info msg=\"hello world\" ")),
	    "logfmt: then level, then msg (quoted: it has a space)");
	ok(strstr(out, " path=\"/a b\" ") != NULL, "logfmt: space quoted");
	ok(strstr(out, " eq=\"a=b\" ") != NULL, "logfmt: '=' quoted");
	ok(strstr(out, " q=\"say \\\"hi\\\"\" ") != NULL,
	    "logfmt: '\"' quoted and escaped");
	ok(strstr(out, " bs=\"c:\\\\dir\" ") != NULL,
	    "logfmt: backslash quoted and escaped");
	ok(strstr(out, " nl=\"x\\nlevel=error msg=forged\" ") != NULL,
	    "logfmt: newline escaped, no forged line");
	ok(strstr(out, " cr=\"y\\u000dz\" ") != NULL, "logfmt: CR escaped");
	ok(strstr(out, " ctl=\"\\u0001\\u007f\" ") != NULL,
	    "logfmt: control bytes escaped");
	ok(strstr(out, " n=-42 ") != NULL, "logfmt: integers bare");
	ok(strstr(out, " plain=abc ") != NULL, "logfmt: plain value bare");
	ok(strstr(out, " empty=\"\" ") != NULL, "logfmt: empty value quoted");
	ok(strstr(out, " null=\"\"\n") != NULL, "logfmt: NULL is empty");

	capture_begin();
	log_info("started", "port %d", 8787);
	capture_end(out, sizeof(out));
	ok(strstr(out, " level=info msg=started detail=\"port 8787\"\n") !=
	    NULL, "logfmt: log_msg adds detail");
	capture_begin();
	log_warn("no detail", NULL);
	capture_end(out, sizeof(out));
	ok(strstr(out, " level=warn msg=\"no detail\"\n") != NULL,
	    "logfmt: log_msg without detail");
}

static void
test_json(void)
{
	char		 out[CAPTURE_MAX];
	json_t		*j;
	json_error_t	 e;
	const char	*lvl;

	log_setup(LOG_INFO, LOG_JSON);
	capture_begin();
	emit_sample(LOG_INFO);
	capture_end(out, sizeof(out));

	is_int(count_char(out, '\n'), 1, "json: exactly one line");
	ok(strlen(out) > 2 && !strcmp(out + strlen(out) - 2, "}\n"),
	    "json: ends with }\\n");
	ok(!strncmp(out, "{\"ts\":\"", 7), "json: ts comes first");
	ok(strstr(out, "Z\",\"level\":\"info\",\"msg\":\"hello world\",") !=
	    NULL, "json: then level, then msg");
	j = json_loads(out, 0, &e);
	ok(j != NULL && json_is_object(j), "json: the line is valid JSON%s%s",
	    j == NULL ? ": " : "", j == NULL ? e.text : "");
	if (j == NULL)
		j = json_object();
	is_str(json_string_value(json_object_get(j, "msg")), "hello world",
	    "json: msg");
	is_str(json_string_value(json_object_get(j, "path")), "/a b",
	    "json: path");
	is_str(json_string_value(json_object_get(j, "q")), "say \"hi\"",
	    "json: quotes round-trip");
	is_str(json_string_value(json_object_get(j, "bs")), "c:\\dir",
	    "json: backslash round-trips");
	is_str(json_string_value(json_object_get(j, "nl")),
	    "x\nlevel=error msg=forged", "json: newline round-trips");
	is_str(json_string_value(json_object_get(j, "ctl")), "\x01\x7f",
	    "json: control bytes round-trip");
	ok(json_is_integer(json_object_get(j, "n")) &&
	    json_integer_value(json_object_get(j, "n")) == -42,
	    "json: integer is a number");
	is_str(json_string_value(json_object_get(j, "empty")), "",
	    "json: empty string");
	is_int(json_object_size(j), 14, "json: every field present once");
	json_decref(j);

	capture_begin();
	log_error("failed", "%s", "disk \"full\"");
	capture_end(out, sizeof(out));
	j = json_loads(out, 0, &e);
	ok(j != NULL, "json: log_msg line is valid JSON");
	lvl = json_string_value(json_object_get(j, "level"));
	is_str(lvl, "error", "json: log_msg level");
	is_str(json_string_value(json_object_get(j, "detail")),
	    "disk \"full\"", "json: log_msg detail");
	json_decref(j);
	log_setup(LOG_INFO, LOG_LOGFMT);
}

static void
test_levels(void)
{
	char		 out[CAPTURE_MAX];
	struct logline	 l;
	size_t		 n;

	log_setup(LOG_INFO, LOG_LOGFMT);
	ok(!log_enabled(LOG_DEBUG), "debug is off at info");
	ok(log_enabled(LOG_INFO) && log_enabled(LOG_ERROR),
	    "info and error are on at info");
	capture_begin();
	log_debug("hidden", "x=%d", 1);
	ok(!log_begin(&l, LOG_DEBUG, "hidden"), "log_begin says no to debug");
	log_str(&l, "k", "v");
	log_end(&l);
	n = capture_end(out, sizeof(out));
	is_int(n, 0, "nothing written for debug at info");

	log_setup(LOG_ERROR, LOG_LOGFMT);
	capture_begin();
	log_warn("hidden", NULL);
	log_error("shown", NULL);
	capture_end(out, sizeof(out));
	is_int(count_char(out, '\n'), 1, "at error only the error line");
	ok(strstr(out, "msg=shown") != NULL, "and it is the error one");

	log_setup(LOG_DEBUG, LOG_LOGFMT);
	capture_begin();
	log_debug("visible", NULL);
	capture_end(out, sizeof(out));
	ok(strstr(out, " level=debug msg=visible\n") != NULL,
	    "debug shown at debug");
	is_str(log_level_name(LOG_WARN), "warn", "level name warn");
	is_str(log_level_name(LOG_DEBUG), "debug", "level name debug");
	log_setup(LOG_INFO, LOG_LOGFMT);
}

/* The ts field of a logfmt line as seconds since the epoch, or -1. */
static time_t
line_time(const char *line)
{
	struct tm	 tm;
	const char	*end;

	memset(&tm, 0, sizeof(tm));
	if (strncmp(line, "ts=", 3) != 0 ||
	    (end = strptime(line + 3, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL ||
	    strncmp(end, ".", 1) != 0)
		return -1;
	return timegm(&tm);
}

static void
test_timestamp(void)
{
	char		 out[CAPTURE_MAX];
	time_t		 before, t1, t2;
	struct timespec	 nap = { 1, 100000000L };

	log_setup(LOG_INFO, LOG_LOGFMT);
	before = time(NULL);
	capture_begin();
	log_info("tick", NULL);
	capture_end(out, sizeof(out));
	t1 = line_time(out);
	ok(t1 != -1 && t1 >= before - 1 && t1 <= time(NULL) + 1,
	    "ts is the current UTC time (%lld vs %lld)", (long long)t1,
	    (long long)before);
	/* The date is formatted once a second: it must still move on. */
	nanosleep(&nap, NULL);
	capture_begin();
	log_info("tock", NULL);
	capture_end(out, sizeof(out));
	t2 = line_time(out);
	ok(t2 >= t1 + 1 && t2 <= time(NULL) + 1,
	    "a second later, ts moved on (%lld then %lld)", (long long)t1,
	    (long long)t2);
}

static void
test_truncation(void)
{
	char		 out[CAPTURE_MAX], *big;
	struct logline	 l;
	size_t		 n;
	int		 f;

	if ((big = malloc(5001)) == NULL)
		exit(1);
	memset(big, 'x', 5000);
	big[5000] = '\0';
	for (f = LOG_LOGFMT; f <= LOG_JSON; f++) {
		const char	*name = f == LOG_JSON ? "json" : "logfmt";

		log_setup(LOG_INFO, (enum log_format)f);
		capture_begin();
		log_begin(&l, LOG_INFO, "big");
		log_str(&l, "v", big);
		log_str(&l, "after", "more");
		log_int(&l, "n", 1);
		log_end(&l);
		n = capture_end(out, sizeof(out));
		ok(n > 1000 && n <= sizeof(l.text), "%s: huge value truncated "
		    "to the line size (%zu bytes)", name, n);
		is_int(count_char(out, '\n'), 1, "%s: still one line", name);
		ok(n > 0 && out[n - 1] == '\n', "%s: ends with a newline",
		    name);
		if (f == LOG_JSON)
			ok(n > 1 && out[n - 2] == '}',
			    "json: and a closing brace");
	}

	/* Escapes expand a value; the line still has to stop. */
	memset(big, '\n', 5000);
	log_setup(LOG_INFO, LOG_LOGFMT);
	capture_begin();
	log_begin(&l, LOG_INFO, "newlines");
	log_str(&l, "v", big);
	log_end(&l);
	n = capture_end(out, sizeof(out));
	is_int(count_char(out, '\n'), 1, "5000 newlines escaped to one line");
	ok(n <= sizeof(l.text) && out[n - 1] == '\n',
	    "escaped line bounded, newline-terminated");
	free(big);
}

static void
test_known_bugs(void)
{
	char		 out[CAPTURE_MAX], *big;
	struct logline	 l;
	json_t		*j;

	/* libmicrohttpd decodes %FF in a path; the request log shows it. */
	log_setup(LOG_INFO, LOG_JSON);
	capture_begin();
	log_begin(&l, LOG_INFO, "request");
	log_str(&l, "path", "/caf\xe9\xff");
	log_end(&l);
	capture_end(out, sizeof(out));
	j = json_loads(out, 0, NULL);
	ok(j != NULL, "json: a value that is not UTF-8 still gives valid "
	    "JSON");
	json_decref(j);

	if ((big = malloc(3000)) == NULL)
		exit(1);
	memset(big, 'x', 2999);
	big[2999] = '\0';
	capture_begin();
	log_begin(&l, LOG_INFO, "big");
	log_str(&l, "v", big);
	log_end(&l);
	capture_end(out, sizeof(out));
	j = json_loads(out, 0, NULL);
	ok(j != NULL, "json: a truncated line is still valid JSON");
	json_decref(j);
	free(big);
	log_setup(LOG_INFO, LOG_LOGFMT);
}
