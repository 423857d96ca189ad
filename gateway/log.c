/* SPDX-License-Identifier: MIT */
/* log.c: one line per event on stderr, as logfmt or JSON. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pincer.h"

/* Room kept for a closing quote, the truncation mark, '}' and newline. */
#define RESERVE	48

static bool	log_raw(struct logline *, const char *, size_t);
static void	log_force(struct logline *, const char *, size_t);
static size_t	utf8_len(const unsigned char *);
static void	log_quoted(struct logline *, const char *);
static bool	log_key(struct logline *, const char *);
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
	l->truncated = false;
	l->level = level;
	l->keep = level >= LOG_WARN;
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

/* A field that does not fit is left out whole, or its value cut short. */
void
log_str(struct logline *l, const char *key, const char *val)
{
	size_t	 start = l->len;

	if (!l->on || l->truncated)
		return;
	if (!log_key(l, key)) {
		l->len = start;
		return;
	}
	log_quoted(l, val != NULL ? val : "");
}

void
log_int(struct logline *l, const char *key, long long val)
{
	char	 num[32];
	int	 n;

	size_t	 start = l->len;

	if (!l->on || l->truncated)
		return;
	n = snprintf(num, sizeof(num), "%lld", val);
	if (!log_key(l, key) || !log_raw(l, num, (size_t)n))
		l->len = start;
}

void
log_end(struct logline *l)
{
	ssize_t	 w;

	bool	 json = __atomic_load_n(&log_fmt, __ATOMIC_RELAXED) == LOG_JSON;

	if (!l->on)
		return;
	if (l->truncated)
		log_force(l, json ? ",\"truncated\":true" : " truncated=true",
		    json ? 17 : 15);
	if (json)
		log_force(l, "}", 1);
	log_force(l, "\n", 1);
	w = write(STDERR_FILENO, l->text, l->len);
	(void)w;
	if (l->keep)
		log_ring_add(l->text, l->len, json);
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

static bool
log_key(struct logline *l, const char *key)
{
	bool	 json = __atomic_load_n(&log_fmt, __ATOMIC_RELAXED) == LOG_JSON;

	if (json)
		return (l->len <= 1 || log_raw(l, ",", 1)) &&
		    log_raw(l, "\"", 1) && log_raw(l, key, strlen(key)) &&
		    log_raw(l, "\":", 2);
	return (l->len == 0 || log_raw(l, " ", 1)) &&
	    log_raw(l, key, strlen(key)) && log_raw(l, "=", 1);
}

/*
 * logfmt quotes a value only when it must (space, '=', '"', control bytes,
 * non-ASCII); JSON always quotes. Control bytes are escaped in both so that
 * a peer cannot forge a log line with an embedded newline, and bytes that
 * are not UTF-8 are escaped so that every JSON line stays valid. A value
 * that does not fit is cut between two characters, never inside one.
 */
static void
log_quoted(struct logline *l, const char *v)
{
	bool		 json = __atomic_load_n(&log_fmt, __ATOMIC_RELAXED) ==
			    LOG_JSON;
	bool		 quote = json || *v == '\0';
	const unsigned char *p;
	char		 esc[8];
	size_t		 n;

	for (p = (const unsigned char *)v; !quote && *p; p++)
		if (*p <= ' ' || *p == '=' || *p == '"' || *p == '\\' ||
		    *p >= 0x7f)
			quote = true;
	/* A bare value too long to fit is cut, quoted, like any other. */
	if (!quote && log_raw(l, v, strlen(v)))
		return;
	log_force(l, "\"", 1);
	for (p = (const unsigned char *)v; *p; p += n) {
		n = 1;
		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			if (!log_raw(l, esc, 2))
				break;
		} else if (*p == '\n') {
			if (!log_raw(l, "\\n", 2))
				break;
		} else if (*p < 0x20 || *p == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			if (!log_raw(l, esc, 6))
				break;
		} else if (*p < 0x80) {
			if (!log_raw(l, (const char *)p, 1))
				break;
		} else if ((n = utf8_len(p)) > 0) {
			if (!log_raw(l, (const char *)p, n))
				break;
		} else {
			n = 1;
			if (json)
				snprintf(esc, sizeof(esc), "\\ufffd");
			else
				snprintf(esc, sizeof(esc), "\\x%02x", *p);
			if (!log_raw(l, esc, strlen(esc)))
				break;
		}
	}
	log_force(l, "\"", 1);
}

/* The length of a valid UTF-8 sequence at p (RFC 3629 §4), or 0. */
static size_t
utf8_len(const unsigned char *p)
{
	size_t	 n, i;
	uint32_t cp;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
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

/* Append if it fits with RESERVE to spare; else mark the line truncated. */
static bool
log_raw(struct logline *l, const char *p, size_t n)
{
	if (l->len + n + RESERVE > sizeof(l->text)) {
		l->truncated = true;
		return false;
	}
	memcpy(l->text + l->len, p, n);
	l->len += n;
	return true;
}

/* Append into the reserve: closing quotes and the end of the line. */
static void
log_force(struct logline *l, const char *p, size_t n)
{
	if (l->len + n > sizeof(l->text))
		n = sizeof(l->text) - l->len;
	memcpy(l->text + l->len, p, n);
	l->len += n;
}
