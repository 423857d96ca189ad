/* SPDX-License-Identifier: MIT */
/*
 * init_plog.c: what a background process writes: the last 1 MiB of each
 * stream in a ring, and GET /processes/{id}/logs, whole or followed as
 * SSE until the process ends.
 */
#include <stdlib.h>
#include <string.h>

#include "init.h"

#define RING_MAX	(1 << 20)	/* a background process, per stream */

#ifndef LIST_FOREACH_SAFE		/* BSD's; glibc's queue.h lacks it */
#define LIST_FOREACH_SAFE(var, head, field, tvar)			\
	for ((var) = LIST_FIRST(head);					\
	    (var) != NULL && ((tvar) = LIST_NEXT(var, field), 1);	\
	    (var) = (tvar))
#endif

struct plog_follower {
	LIST_ENTRY(plog_follower) entry;
	struct proc	*p;
	struct conn	*conn;
	uint64_t	 pos[2];	/* next byte to send, per stream */
	bool		 b64, paused;
};

static void	logs_whole(struct conn *, struct proc *, bool);
static void	follow_start(struct conn *, struct proc *, bool);
static int	ring_put(struct plog_ring *, const char *, size_t);
static void	follow_pump(struct plog_follower *);
static void	follow_drained(struct conn *, void *);
static void	follow_gone(struct conn *, void *);
static void	follow_free(struct plog_follower *);

void
plog_logs(struct conn *c, struct proc *p)
{
	const char	*s = req_query(c, "stream", 0);
	bool		 b64;

	if (text_encoding(c, req_query(c, "encoding", 0), &b64) == -1)
		return;
	if (s != NULL && strcmp(s, "0") != 0 && strcmp(s, "") != 0)
		follow_start(c, p, b64);
	else
		logs_whole(c, p, b64);
}

/*
 * n more bytes of stream i (0 stdout, 1 stderr): kept in its ring and
 * sent to the followers; -1 when there is no memory to keep them.
 */
int
plog_put(struct proc *p, int i, const char *buf, size_t n)
{
	struct plog_follower	*f, *fn;

	if (ring_put(&p->ring[i], buf, n) == -1)
		return -1;
	LIST_FOREACH_SAFE(f, &p->followers, entry, fn)
		if (!f->paused)
			follow_pump(f);
	return 0;
}

/* The process has ended: followers get the rest, then the exit. */
void
plog_ended(struct proc *p)
{
	struct plog_follower	*f, *fn;

	LIST_FOREACH_SAFE(f, &p->followers, entry, fn)
		if (!f->paused)
			follow_pump(f);
}

/* The process is being forgotten: its followers' streams end. */
void
plog_drop(struct proc *p)
{
	struct plog_follower	*f;

	while ((f = LIST_FIRST(&p->followers)) != NULL) {
		conn_end(f->conn);
		follow_free(f);
	}
}

uint64_t
plog_ring_low(const struct plog_ring *r)
{
	return r->total > r->cap ? r->total - r->cap : 0;
}

void
plog_ring_copy(const struct plog_ring *r, uint64_t from, char *dst, size_t n)
{
	size_t	 at, k;

	if (n == 0)
		return;
	at = (size_t)(from % r->cap);
	k = r->cap - at < n ? r->cap - at : n;
	memcpy(dst, r->buf + at, k);
	memcpy(dst + k, r->buf, n - k);
}

/* --- helpers ---------------------------------------------------------- */

/* Both streams as far as they are kept, in one answer. */
static void
logs_whole(struct conn *c, struct proc *p, bool b64)
{
	struct plog_ring	*r;
	json_t			*j, *t[2];
	char			*buf;
	uint64_t		 low;
	size_t			 n, skip;
	int			 i;

	for (i = 0; i < 2; i++) {
		r = &p->ring[i];
		low = plog_ring_low(r);
		n = (size_t)(r->total - low);
		if ((buf = malloc(n + 1)) == NULL) {
			http_error(c, 500, "internal", "out of memory");
			json_decref(i == 1 ? t[0] : NULL);
			return;
		}
		plog_ring_copy(r, low, buf, n);
		/* Cut at the front: skip a partial UTF-8 sequence there. */
		for (skip = 0; !b64 && low > 0 && skip < 3 && skip < n &&
		    (buf[skip] & 0xc0) == 0x80; skip++)
			;
		t[i] = text_json(buf + skip, n - skip, b64);
		free(buf);
	}
	j = json_pack("{s:o,s:o,s:b}", "stdout", t[0], "stderr", t[1],
	    "truncated", plog_ring_low(&p->ring[0]) > 0 ||
	    plog_ring_low(&p->ring[1]) > 0);
	http_json(c, 200, j);
}

/* ?stream=1: what is kept, then what comes, as SSE until the end. */
static void
follow_start(struct conn *c, struct proc *p, bool b64)
{
	struct plog_follower	*f;

	if ((f = calloc(1, sizeof(*f))) == NULL) {
		http_error(c, 500, "internal", "out of memory");
		return;
	}
	f->p = p;
	f->conn = c;
	f->b64 = b64;
	f->pos[0] = plog_ring_low(&p->ring[0]);
	f->pos[1] = plog_ring_low(&p->ring[1]);
	LIST_INSERT_HEAD(&p->followers, f, entry);
	conn_on_close(c, follow_gone, f);
	sse_start(c);
	follow_pump(f);
}

static int
ring_put(struct plog_ring *r, const char *p, size_t n)
{
	size_t	 cap, at, k;
	char	*b;

	if (r->cap < RING_MAX && r->total + n > r->cap) {
		for (cap = r->cap ? r->cap : 4096; cap < r->total + n &&
		    cap < RING_MAX;)
			cap *= 2;
		if ((b = realloc(r->buf, cap)) == NULL)
			return -1;
		r->buf = b;
		r->cap = cap;	/* never wrapped yet: the bytes stay put */
	}
	if (n > r->cap) {
		p += n - r->cap;
		r->total += n - r->cap;
		n = r->cap;
	}
	at = (size_t)(r->total % r->cap);
	k = r->cap - at < n ? r->cap - at : n;
	memcpy(r->buf + at, p, k);
	memcpy(r->buf, p + k, n - k);
	r->total += n;
	return 0;
}

/*
 * Sends what the follower has not seen, a chunk an event, until the
 * queue is high; then the drain resumes it. A follower that falls more
 * than a ring behind skips what the ring lost. The process's end, once
 * all is sent, is the exit event and the end of the stream.
 */
static void
follow_pump(struct plog_follower *f)
{
	struct proc		*p = f->p;
	struct plog_ring	*r;
	char			 buf[EXEC_READ_CHUNK];
	size_t			 n, avail;
	json_t			*j;
	int			 i;

	for (i = 0; i < 2; i++) {
		r = &p->ring[i];
		if (f->pos[i] < plog_ring_low(r))
			f->pos[i] = plog_ring_low(r);
		while (f->pos[i] < r->total) {
			if (conn_backlog(f->conn) > EXEC_STREAM_HIGH) {
				f->paused = true;
				conn_on_drain(f->conn, follow_drained, f);
				return;
			}
			avail = (size_t)(r->total - f->pos[i]);
			n = avail > sizeof(buf) ? sizeof(buf) : avail;
			plog_ring_copy(r, f->pos[i], buf, n);
			/* A cut UTF-8 sequence waits for its end, if any. */
			if (!f->b64 && (n < avail || p->running))
				n -= text_utf8_hold(buf, n);
			if (n == 0)
				break;
			if (sse_event(f->conn, i == 0 ? "stdout" : "stderr",
			    json_pack("{s:o}", "data", text_json(buf, n,
			    f->b64))) == -1)
				break;
			f->pos[i] += n;
		}
	}
	if (p->running)
		return;
	j = json_pack("{s:I}", "ended_ms", (json_int_t)p->ended_ms);
	exec_exit_fields(j, p->status);
	(void)sse_event(f->conn, "exit", j);
	conn_end(f->conn);
	follow_free(f);
}

static void
follow_drained(struct conn *c, void *arg)
{
	struct plog_follower	*f = arg;

	conn_on_drain(c, NULL, NULL);
	f->paused = false;
	follow_pump(f);
}

static void
follow_gone(struct conn *c, void *arg)
{
	(void)c;
	follow_free(arg);
}

static void
follow_free(struct plog_follower *f)
{
	conn_on_close(f->conn, NULL, NULL);
	conn_on_drain(f->conn, NULL, NULL);
	LIST_REMOVE(f, entry);
	free(f);
}
