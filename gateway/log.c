/* SPDX-License-Identifier: MIT */
/* log.c: one line per event on stderr, as logfmt or JSON. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pincer.h"

static void	log_raw(struct logline *, const char *, size_t);
static void	log_quoted(struct logline *, const char *);
static void	log_key(struct logline *, const char *);
static void	log_timestamp(char *, size_t);

static enum log_level	 log_min = LOG_INFO;
static enum log_format	 log_fmt = LOG_LOGFMT;

static const char *const level_names[] = {
	[LOG_DEBUG] = "debug",
	[LOG_INFO] = "info",
	[LOG_WARN] = "warn",
	[LOG_ERROR] = "error",
};

void
log_setup(enum log_level level, enum log_format fmt)
{
	__atomic_store_n(&log_min, level, __ATOMIC_RELAXED);
	__atomic_store_n(&log_fmt, fmt, __ATOMIC_RELAXED);
}

bool
log_enabled(enum log_level level)
{
	return level >= __atomic_load_n(&log_min, __ATOMIC_RELAXED);
}

const char *
log_level_name(enum log_level level)
{
	return level_names[level];
}

bool
log_begin(struct logline *l, enum log_level level, const char *msg)
{
	char	 when[40];

	l->len = 0;
	l->on = log_enabled(level);
	if (!l->on)
		return false;
	log_timestamp(when, sizeof(when));
	if (__atomic_load_n(&log_fmt, __ATOMIC_RELAXED) == LOG_JSON)
		log_raw(l, "{", 1);
	log_str(l, "ts", when);
	log_str(l, "level", level_names[level]);
	log_str(l, "msg", msg);
	return true;
}

void
log_str(struct logline *l, const char *key, const char *val)
{
	if (!l->on)
		return;
	log_key(l, key);
	log_quoted(l, val != NULL ? val : "");
}

void
log_int(struct logline *l, const char *key, long long val)
{
	char	 num[32];
	int	 n;

	if (!l->on)
		return;
	log_key(l, key);
	n = snprintf(num, sizeof(num), "%lld", val);
	log_raw(l, num, (size_t)n);
}

void
log_end(struct logline *l)
{
	ssize_t	 w;

	if (!l->on)
		return;
	/* Keep room for the closing brace and newline even when truncated. */
	if (l->len > sizeof(l->text) - 3)
		l->len = sizeof(l->text) - 3;
	if (__atomic_load_n(&log_fmt, __ATOMIC_RELAXED) == LOG_JSON)
		l->text[l->len++] = '}';
	l->text[l->len++] = '\n';
	w = write(STDERR_FILENO, l->text, l->len);
	(void)w;
	l->on = false;
}

void
log_msg(enum log_level level, const char *msg, const char *fmt, ...)
{
	struct logline	 l;
	char		 detail[1024];
	va_list		 ap;

	if (!log_begin(&l, level, msg))
		return;
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(detail, sizeof(detail), fmt, ap);
		va_end(ap);
		log_str(&l, "detail", detail);
	}
	log_end(&l);
}

static void
log_key(struct logline *l, const char *key)
{
	bool	 json = __atomic_load_n(&log_fmt, __ATOMIC_RELAXED) == LOG_JSON;

	if (json) {
		if (l->len > 1)		/* past the opening brace */
			log_raw(l, ",", 1);
		log_raw(l, "\"", 1);
		log_raw(l, key, strlen(key));
		log_raw(l, "\":", 2);
	} else {
		if (l->len > 0)
			log_raw(l, " ", 1);
		log_raw(l, key, strlen(key));
		log_raw(l, "=", 1);
	}
}

/*
 * logfmt quotes a value only when it must (space, '=', '"', control bytes);
 * JSON always quotes. Control bytes are escaped in both so that a peer
 * cannot forge a log line with an embedded newline.
 */
static void
log_quoted(struct logline *l, const char *v)
{
	bool		 json = __atomic_load_n(&log_fmt, __ATOMIC_RELAXED) ==
			    LOG_JSON;
	bool		 quote = json || *v == '\0';
	const unsigned char *p;
	char		 esc[8];

	for (p = (const unsigned char *)v; !quote && *p; p++)
		if (*p <= ' ' || *p == '=' || *p == '"' || *p == '\\' ||
		    *p == 0x7f)
			quote = true;
	if (!quote) {
		log_raw(l, v, strlen(v));
		return;
	}
	log_raw(l, "\"", 1);
	for (p = (const unsigned char *)v; *p; p++) {
		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			log_raw(l, esc, 2);
		} else if (*p == '\n') {
			log_raw(l, "\\n", 2);
		} else if (*p < 0x20 || *p == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			log_raw(l, esc, 6);
		} else
			log_raw(l, (const char *)p, 1);
	}
	log_raw(l, "\"", 1);
}

/*
 * RFC 3339 UTC with milliseconds. The date and time of day are formatted
 * once a second per thread: gmtime_r takes glibc's time zone lock, which
 * every request line would otherwise contend for.
 */
static void
log_timestamp(char *out, size_t outsz)
{
	static __thread time_t	 cached_sec = -1;
	static __thread char	 cached[32];
	struct timespec		 ts;
	struct tm		 tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != cached_sec) {
		gmtime_r(&ts.tv_sec, &tm);
		snprintf(cached, sizeof(cached), "%04d-%02d-%02dT%02d:%02d:%02d",
		    (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
		    tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
		    tm.tm_sec % 100);
		cached_sec = ts.tv_sec;
	}
	snprintf(out, outsz, "%s.%03ldZ", cached,
	    (long)(ts.tv_nsec / 1000000) % 1000);
}

static void
log_raw(struct logline *l, const char *p, size_t n)
{
	size_t	 room = sizeof(l->text) - l->len;

	if (n > room)
		n = room;
	memcpy(l->text + l->len, p, n);
	l->len += n;
}
