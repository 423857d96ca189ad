/* SPDX-License-Identifier: MIT */
/*
 * log_ring.c: the last warnings and errors of the log, kept in memory so
 * the admin UI can show what went wrong without a shell on the host
 * (GET /api/v1/system/errors). Each entry is the line exactly as it was
 * written to stderr: the log never holds a secret, so neither does this,
 * and nothing here adds text of its own. Read back, a line is split into
 * its time, level, message and other fields.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pincer.h"

#define RING_MAX	100
#define LINE_MAX_	(sizeof(((struct logline *)0)->text))

struct entry {
	char	 text[LINE_MAX_];
	size_t	 len;
	bool	 json;
};

static json_t	*entry_json(const struct entry *);
static json_t	*logfmt_parse(const char *, size_t);
static size_t	 logfmt_value(const char *, size_t, struct buf *);

static pthread_mutex_t	 ring_lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry	 ring[RING_MAX];
static size_t		 ring_next;	/* where the next line goes */
static unsigned long long ring_total;	/* lines since the start */

/* log.c, after the line is written: a copy, without its newline. */
void
log_ring_add(const char *text, size_t len, bool json)
{
	struct entry	*e;

	while (len > 0 && text[len - 1] == '\n')
		len--;
	if (len >= LINE_MAX_)
		len = LINE_MAX_ - 1;
	pthread_mutex_lock(&ring_lock);
	e = &ring[ring_next];
	memcpy(e->text, text, len);
	e->text[len] = '\0';
	e->len = len;
	e->json = json;
	ring_next = (ring_next + 1) % RING_MAX;
	ring_total++;
	pthread_mutex_unlock(&ring_lock);
}

/*
 * Newest first, at most limit (1 to RING_MAX): [{time, level, msg,
 * fields}]. *total: every warning and error since the start. The lines
 * are copied under the lock and parsed after it, so a thread that logs
 * never waits for a reader's parsing.
 */
json_t *
log_ring_list(int limit, unsigned long long *total)
{
	struct entry	*copy;
	json_t		*a = json_array(), *o;
	size_t		 i, n, at;

	if (limit < 1 || limit > RING_MAX)
		limit = RING_MAX;
	if ((copy = malloc(sizeof(*copy) * (size_t)limit)) == NULL)
		return a;
	pthread_mutex_lock(&ring_lock);
	n = ring_total < (unsigned long long)limit ? (size_t)ring_total :
	    (size_t)limit;
	for (i = 0, at = ring_next; i < n; i++) {
		at = (at + RING_MAX - 1) % RING_MAX;
		copy[i] = ring[at];
	}
	if (total != NULL)
		*total = ring_total;
	pthread_mutex_unlock(&ring_lock);
	for (i = 0; i < n; i++)
		if ((o = entry_json(&copy[i])) != NULL)
			json_array_append_new(a, o);
	explicit_bzero(copy, sizeof(*copy) * (size_t)limit);
	free(copy);
	return a;
}

/* GET /api/v1/system/errors?limit=N (admin) */
void
api_system_errors(struct http_req *r)
{
	const char		*s = http_req_query(r, "limit");
	char			*end;
	long			 limit = RING_MAX;
	unsigned long long	 total = 0;
	json_t			*o, *list;

	if (s != NULL) {
		limit = strtol(s, &end, 10);
		if (*s == '\0' || *end != '\0' || limit < 1 ||
		    limit > RING_MAX) {
			http_error(r, 400, "bad_request", "limit is a number "
			    "from 1 to %d", RING_MAX);
			return;
		}
	}
	list = log_ring_list((int)limit, &total);
	o = json_pack("{s:o, s:I, s:i}", "errors", list, "total",
	    (json_int_t)total, "kept", RING_MAX);
	http_reply_json(r, 200, o);
}

/* {time, level, msg, fields}: the line's own keys, whatever its format. */
static json_t *
entry_json(const struct entry *e)
{
	json_t	*f, *o;

	f = e->json ? json_loadb(e->text, e->len, 0, NULL) :
	    logfmt_parse(e->text, e->len);
	if (!json_is_object(f)) {
		json_decref(f);
		f = json_pack("{s:s}", "line", "(unreadable)");
	}
	o = json_pack("{s:O?, s:O?, s:O?}", "time", json_object_get(f, "ts"),
	    "level", json_object_get(f, "level"), "msg",
	    json_object_get(f, "msg"));
	json_object_del(f, "ts");
	json_object_del(f, "level");
	json_object_del(f, "msg");
	json_object_set_new(o, "fields", f);
	return o;
}

/* key=value key="quoted value" …, as log.c writes them. */
static json_t *
logfmt_parse(const char *s, size_t len)
{
	json_t		*o = json_object();
	struct buf	 key, val;
	size_t		 i = 0, k;

	buf_init(&key, LINE_MAX_);
	buf_init(&val, LINE_MAX_);
	while (i < len) {
		while (i < len && s[i] == ' ')
			i++;
		for (k = i; i < len && s[i] != '=' && s[i] != ' '; i++)
			;
		if (i == k)
			break;
		buf_reset(&key);
		buf_append(&key, s + k, i - k);
		buf_reset(&val);
		if (i < len && s[i] == '=')
			i += 1 + logfmt_value(s + i + 1, len - i - 1, &val);
		json_object_set_new(o, key.data, json_string(val.data !=
		    NULL ? val.data : ""));
	}
	buf_free(&key);
	buf_free(&val);
	return o;
}

/*
 * One value into out; answers the bytes it took. log.c escapes \" \\ \n
 * and control bytes as \u00XX; \xHH (a byte that is not UTF-8) is left
 * as written, so the value stays valid UTF-8 for JSON.
 */
static size_t
logfmt_value(const char *s, size_t len, struct buf *out)
{
	size_t	 i;
	char	 c;

	if (len == 0 || s[0] != '"') {
		for (i = 0; i < len && s[i] != ' '; i++)
			;
		buf_append(out, s, i);
		buf_append(out, "", 0);
		return i;
	}
	for (i = 1; i < len && s[i] != '"'; i++) {
		c = s[i];
		if (c == '\\' && i + 1 < len) {
			c = s[++i];
			if (c == 'n')
				c = '\n';
			else if (c == 'u' && i + 4 < len) {
				c = (char)strtol((char[]){ s[i + 3], s[i + 4],
				    '\0' }, NULL, 16);
				i += 4;
			} else if (c == 'x') {
				buf_append(out, "\\", 1);
			}
		}
		buf_append(out, &c, 1);
	}
	buf_append(out, "", 0);
	return i < len ? i + 1 : i;
}
