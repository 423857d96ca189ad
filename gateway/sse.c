/* SPDX-License-Identifier: MIT */
/*
 * sse.c: a Server-Sent Events stream split into events as bytes arrive
 * (WHATWG HTML, "Server-sent events", §9.2.6 interpreting an event
 * stream): lines end in CRLF, LF or CR; "event:" names the event,
 * "data:" lines are joined with LF, lines starting with ':' are
 * comments, a blank line dispatches. An event is held whole (raw bytes
 * and parsed fields) up to a hard size, since the proxy passes events on
 * byte for byte and sometimes drops one.
 */
#include <stdlib.h>
#include <string.h>

#include "pincer.h"

struct sse {
	struct buf	 raw;		/* the current event's bytes */
	struct buf	 line;		/* the current line */
	struct buf	 data;
	char		 event[128];
	bool		 has_data;
	bool		 cr;		/* a piece ended in CR: line open */
	size_t		 max;
};

static int	 end_line(struct sse *, sse_fn, void *);
static void	 field(struct sse *, const char *, size_t);
static void	 reset_event(struct sse *);

struct sse *
sse_new(size_t max_event)
{
	struct sse	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->max = max_event;
	buf_init(&s->raw, max_event);
	buf_init(&s->line, max_event);
	buf_init(&s->data, max_event);
	return s;
}

void
sse_free(struct sse *s)
{
	if (s == NULL)
		return;
	buf_free(&s->raw);
	buf_free(&s->line);
	buf_free(&s->data);
	free(s);
}

int
sse_feed(struct sse *s, const char *p, size_t n, sse_fn fn, void *arg)
{
	size_t	 i = 0, start;

	if (n == 0)
		return 0;
	/* A CR ended the last piece: a LF now belongs to that line end. */
	if (s->cr) {
		s->cr = false;
		if (p[0] == '\n') {
			if (buf_append(&s->raw, "\n", 1) == -1)
				return -1;
			i = 1;
		}
		if (end_line(s, fn, arg) == -1)
			return -1;
	}
	for (start = i; i < n; i++) {
		if (p[i] != '\r' && p[i] != '\n')
			continue;
		if (buf_append(&s->line, p + start, i - start) == -1 ||
		    buf_append(&s->raw, p + start, i - start + 1) == -1)
			return -1;
		if (p[i] == '\r') {
			if (i + 1 == n) {
				s->cr = true;	/* the next piece may start LF */
				return 0;
			}
			if (p[i + 1] == '\n') {
				if (buf_append(&s->raw, "\n", 1) == -1)
					return -1;
				i++;
			}
		}
		start = i + 1;
		if (end_line(s, fn, arg) == -1)
			return -1;
	}
	if (buf_append(&s->line, p + start, n - start) == -1 ||
	    buf_append(&s->raw, p + start, n - start) == -1)
		return -1;
	/* Between events nothing is kept: a stream waiting on a slow model
	 * holds no buffers (1,000 open streams, 2 kB each). */
	if (s->raw.len == 0 && s->line.len == 0) {
		buf_free(&s->raw);
		buf_free(&s->line);
		buf_free(&s->data);
	}
	return 0;
}

/* A complete line: a field, a comment, or the blank line that ends an
 * event. */
static int
end_line(struct sse *s, sse_fn fn, void *arg)
{
	struct sse_event	 ev;
	int			 rc = 0;

	if (s->line.len > 0) {
		if (s->line.data[0] != ':')
			field(s, s->line.data, s->line.len);
		buf_reset(&s->line);
		return 0;
	}
	/* No data lines: nothing is dispatched (comments, keep-alives). */
	if (s->has_data) {
		ev.event = s->event;
		ev.data = s->data.data != NULL ? s->data.data : "";
		ev.data_len = s->data.len;
		ev.raw = s->raw.data;
		ev.raw_len = s->raw.len;
		rc = fn(arg, &ev);
	}
	reset_event(s);
	return rc;
}

static void
field(struct sse *s, const char *l, size_t n)
{
	const char	*colon = memchr(l, ':', n);
	size_t		 nlen = colon != NULL ? (size_t)(colon - l) : n;
	const char	*v = colon != NULL ? colon + 1 : l + n;
	size_t		 vlen = (size_t)(l + n - v);

	if (vlen > 0 && *v == ' ') {
		v++;
		vlen--;
	}
	if (nlen == 5 && !memcmp(l, "event", 5)) {
		if (vlen < sizeof(s->event)) {
			memcpy(s->event, v, vlen);
			s->event[vlen] = '\0';
		}
	} else if (nlen == 4 && !memcmp(l, "data", 4)) {
		if (s->has_data)
			buf_append(&s->data, "\n", 1);
		buf_append(&s->data, v, vlen);
		s->has_data = true;
	}
}

static void
reset_event(struct sse *s)
{
	buf_reset(&s->raw);
	buf_reset(&s->data);
	s->event[0] = '\0';
	s->has_data = false;
}
