/* SPDX-License-Identifier: MIT */
/*
 * init_conn.c: the control API's connections: accept, the events and
 * deadlines of each, its bounded output queue flushed as the socket
 * drains, SSE streams, and the WebSocket handshake (RFC 6455 §4.2.2,
 * with its SHA-1, since pincer-init links no crypto library) that hands
 * the socket over. The requests on them are init_http.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "init.h"

#define MAX_CONNS	256
#define READ_MS		30000		/* head and body, from accept */
#define LINGER_MS	2000		/* reading what follows an error */
#define FLUSH_MS	60000		/* an answer's reader, stalled */
#define WS_GUID		"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static void	conn_accept(void *, uint32_t);
static void	conn_io(void *, uint32_t);
static void	conn_settle(struct conn *);
static void	conn_destroy(struct conn *);
static void	conn_timeout(void *);
static void	conn_read_discard(struct conn *);
static bool	conn_pending(struct conn *);
static bool	has_token(const char *, const char *);
static void	sha1(const void *, size_t, uint8_t [20]);
static void	sha1_block(uint32_t [5], const uint8_t *);

static LIST_HEAD(, conn) conns = LIST_HEAD_INITIALIZER(conns);
static int	 nconns;

void
conn_listen(int fd)
{
	if (loop_add(fd, EPOLLIN, conn_accept, (void *)(intptr_t)fd) == -1)
		init_log("control socket: %s", strerror(errno));
}

void
sse_start(struct conn *c)
{
	if (c->answered || c->dead)
		return;
	http_head(c, 200, "text/event-stream", -1,
	    "Cache-Control: no-cache\r\n");
	c->answered = true;
	c->state = CONN_STREAM;
	conn_flush(c);
	conn_arm(c);
}

int
sse_event(struct conn *c, const char *type, json_t *j)
{
	char	*s = NULL;
	int	 rc = -1;

	if (c->state != CONN_STREAM || c->dead || j == NULL)
		goto done;
	if ((s = json_dumps(j, JSON_COMPACT)) == NULL)
		goto done;
	/* One event, whole or not at all: the queue is bounded. */
	if (conn_backlog(c) + strlen(type) + strlen(s) + 16 > HTTP_OUT_MAX)
		goto done;
	if (conn_put(c, "event: ", 7, HTTP_OUT_MAX) == -1 ||
	    conn_put(c, type, strlen(type), HTTP_OUT_MAX) == -1 ||
	    conn_put(c, "\ndata: ", 7, HTTP_OUT_MAX) == -1 ||
	    conn_put(c, s, strlen(s), HTTP_OUT_MAX) == -1 ||
	    conn_put(c, "\n\n", 2, HTTP_OUT_MAX) == -1)
		goto done;
	rc = 0;
	conn_flush(c);
	if (conn_pending(c))
		c->drain_armed = true;
	conn_arm(c);
done:
	free(s);
	json_decref(j);
	return rc;
}

size_t
conn_backlog(struct conn *c)
{
	return c->olen - c->ooff + (c->tail != NULL ? c->tlen - c->toff : 0);
}

void
conn_on_drain(struct conn *c, void (*fn)(struct conn *, void *), void *arg)
{
	c->on_drain = fn;
	c->drain_arg = arg;
}

void
conn_end(struct conn *c)
{
	if (c->state == CONN_DONE || c->state == CONN_GONE)
		return;
	c->answered = true;
	c->state = CONN_DONE;
	conn_discard(c, 0);
	conn_arm(c);
}

void
conn_on_close(struct conn *c, conn_close_fn fn, void *arg)
{
	c->on_close = fn;
	c->close_arg = arg;
}

/*
 * RFC 6455 §4.2.1-2: a GET with Upgrade: websocket, Connection: upgrade,
 * version 13 and a 16-byte key; the answer proves the key was read.
 */
int
conn_upgrade(struct conn *c)
{
	const char	*key = req_header(c, "Sec-WebSocket-Key");
	const char	*ver = req_header(c, "Sec-WebSocket-Version");
	char		 buf[96], *acc = NULL, head[256];
	uint8_t		 dig[20];
	size_t		 len;
	int		 fd, n;

	if (c->method != HTTP_GET || !has_token(req_header(c, "Upgrade"),
	    "websocket") || !has_token(req_header(c, "Connection"),
	    "upgrade") || key == NULL || strlen(key) != 24 ||
	    strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789+/=") != 24 || strcmp(key + 22, "==") != 0) {
		http_error(c, 400, "bad_request", "a WebSocket upgrade "
		    "(RFC 6455) is required here");
		return -1;
	}
	if (ver == NULL || strcmp(ver, "13") != 0) {
		http_error(c, 400, "bad_request", "WebSocket version 13 only");
		return -1;
	}
	n = snprintf(buf, sizeof(buf), "%s%s", key, WS_GUID);
	sha1(buf, (size_t)n, dig);
	if ((acc = text_base64(dig, sizeof(dig), &len)) == NULL) {
		http_error(c, 500, "internal", "out of memory");
		return -1;
	}
	n = snprintf(head, sizeof(head), "HTTP/1.1 101 Switching Protocols\r\n"
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Accept: %s\r\n\r\n", acc);
	free(acc);
	/* A fresh socket's buffer takes these few bytes whole. */
	if (send(c->fd, head, (size_t)n, MSG_NOSIGNAL) != n) {
		c->dead = true;
		conn_arm(c);
		return -1;
	}
	fd = c->fd;
	loop_del(fd);
	c->fd = -1;
	c->state = CONN_GONE;
	c->answered = true;
	c->on_close = NULL;
	if (!c->in_handler)
		conn_destroy(c);
	return fd;
}

void
conn_arm(struct conn *c)
{
	uint32_t	 ev = 0;

	switch (c->state) {
	case CONN_HEAD:
	case CONN_BODY:
		ev = EPOLLIN;
		break;
	case CONN_BUSY:
	case CONN_STREAM:
		ev = EPOLLRDHUP;
		break;
	case CONN_DONE:
		/* Writable at once when all is sent: that event ends it. */
		if (conn_pending(c) || !c->discard)
			ev |= EPOLLOUT;
		if (c->discard)
			ev |= EPOLLIN;
		break;
	case CONN_GONE:
		return;
	}
	if (conn_pending(c) || c->dead)
		ev |= EPOLLOUT;
	if (ev == c->ev)
		return;
	if (loop_mod(c->fd, ev, conn_io, c) == -1)
		c->dead = true;
	c->ev = ev;
}

int
conn_put(struct conn *c, const void *p, size_t n, size_t max)
{
	size_t	 used = c->olen - c->ooff, cap;
	char	*b;

	if (used + n > max)
		return -1;
	if (c->ooff > 0 && c->olen + n > c->ocap) {
		memmove(c->out, c->out + c->ooff, used);
		c->olen = used;
		c->ooff = 0;
	}
	if (c->olen + n > c->ocap) {
		for (cap = c->ocap ? c->ocap : 1024; cap < c->olen + n;)
			cap *= 2;
		if ((b = realloc(c->out, cap)) == NULL)
			return -1;
		c->out = b;
		c->ocap = cap;
	}
	memcpy(c->out + c->olen, p, n);
	c->olen += n;
	return 0;
}

/*
 * Reads and drops up to left more bytes, for LINGER_MS at most; with
 * none left, watches that the answer goes out (FLUSH_MS without
 * progress ends the connection).
 */
void
conn_discard(struct conn *c, size_t left)
{
	c->discard = left > 0;
	c->dleft = left;
	c->last_write = loop_now_ms();
	loop_timer_cancel(c->timer);
	c->timer = loop_timer_add(c->discard ? LINGER_MS : FLUSH_MS,
	    conn_timeout, c);
	if (c->timer == -1) {
		c->timer = 0;
		c->discard = false;
	}
}

/* Writes what the socket takes now; never blocks, never frees c. */
void
conn_flush(struct conn *c)
{
	ssize_t	 n;

	while (!c->dead && conn_pending(c)) {
		if (c->ooff < c->olen)
			n = send(c->fd, c->out + c->ooff, c->olen - c->ooff,
			    MSG_NOSIGNAL);
		else if (c->tail != NULL)
			n = send(c->fd, c->tail + c->toff, c->tlen - c->toff,
			    MSG_NOSIGNAL);
		else
			n = sendfile(c->fd, c->ffd, NULL, c->fleft > 1 << 20 ?
			    1 << 20 : (size_t)c->fleft);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n <= 0 && !(n == 0 && c->ffd != -1 && c->fleft == 0 &&
		    c->ooff == c->olen && c->tail == NULL)) {
			/* A failed socket, or a file shorter than it said. */
			c->dead = true;
			return;
		}
		c->last_write = loop_now_ms();
		if (c->ooff < c->olen)
			c->ooff += (size_t)n;
		else if (c->tail != NULL) {
			if ((c->toff += (size_t)n) == c->tlen) {
				free(c->tail);
				c->tail = NULL;
			}
		} else
			c->fleft -= n;
		if (c->ffd != -1 && c->fleft == 0 && c->ooff == c->olen &&
		    c->tail == NULL) {
			close(c->ffd);
			c->ffd = -1;
		}
	}
}

/* --- connections ------------------------------------------------------- */

static void
conn_accept(void *arg, uint32_t events)
{
	static const char	 busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
	    "Content-Length: 0\r\nConnection: close\r\n\r\n";
	struct conn		*c;
	int			 lfd = (int)(intptr_t)arg, fd, i;

	(void)events;
	for (i = 0; i < 16; i++) {
		if ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK |
		    SOCK_CLOEXEC)) == -1) {
			loop_accept_pause(lfd, errno, conn_accept);
			return;
		}
		if (nconns >= MAX_CONNS || (c = calloc(1, sizeof(*c))) ==
		    NULL) {
			(void)send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->ffd = -1;
		if ((c->head = malloc(HTTP_HEAD_MAX + 1)) == NULL ||
		    (c->timer = loop_timer_add(READ_MS, conn_timeout, c)) ==
		    -1 ||
		    loop_add(fd, EPOLLIN, conn_io, c) == -1) {
			loop_timer_cancel(c->timer);
			free(c->head);
			free(c);
			close(fd);
			continue;
		}
		c->ev = EPOLLIN;
		LIST_INSERT_HEAD(&conns, c, entry);
		nconns++;
	}
}

static void
conn_io(void *arg, uint32_t events)
{
	struct conn	*c = arg;

	if (events & EPOLLERR)
		c->dead = true;
	if (!c->dead && (events & (EPOLLIN | EPOLLHUP))) {
		if (c->state == CONN_HEAD)
			http_read_head(c);
		else if (c->state == CONN_BODY)
			http_read_body(c);
		else if (c->discard)
			conn_read_discard(c);
	}
	/* Waiting or streaming, a hang-up is the client going away. */
	if ((events & (EPOLLRDHUP | EPOLLHUP)) && (c->state == CONN_BUSY ||
	    c->state == CONN_STREAM))
		c->dead = true;
	if (!c->dead && (events & EPOLLOUT))
		conn_flush(c);
	conn_settle(c);
}

/* After an event: callbacks, then the end or the next registration. */
static void
conn_settle(struct conn *c)
{
	if (c->state == CONN_GONE) {	/* upgraded: nothing of ours left */
		conn_destroy(c);
		return;
	}
	if (!c->dead && !conn_pending(c) && c->drain_armed &&
	    c->on_drain != NULL && c->state == CONN_STREAM) {
		c->drain_armed = false;
		c->on_drain(c, c->drain_arg);
	}
	if (c->dead) {
		conn_destroy(c);
		return;
	}
	if (c->state == CONN_DONE && !conn_pending(c)) {
		if (!c->discard) {
			conn_destroy(c);
			return;
		}
		/* Answered early: say we are done, read what is in flight. */
		if (!c->wr_shut) {
			(void)shutdown(c->fd, SHUT_WR);
			c->wr_shut = true;
		}
	}
	conn_arm(c);
}

static void
conn_destroy(struct conn *c)
{
	conn_close_fn	 fn = c->on_close;

	c->on_close = NULL;
	c->dead = true;
	c->answered = true;
	if (c->state != CONN_GONE)
		c->state = CONN_DONE;
	if (fn != NULL)
		fn(c, c->close_arg);
	loop_timer_cancel(c->timer);
	if (c->fd != -1) {
		loop_del(c->fd);
		close(c->fd);
	}
	if (c->ffd != -1)
		close(c->ffd);
	LIST_REMOVE(c, entry);
	nconns--;
	free(c->head);
	free(c->path);
	free(c->qbuf);
	free(c->body);
	free(c->out);
	free(c->tail);
	free(c);
}

static void
conn_timeout(void *arg)
{
	struct conn	*c = arg;

	uint64_t	 idle;

	c->timer = 0;
	if (c->state == CONN_HEAD || c->state == CONN_BODY) {
		http_error(c, 408, "timeout", "the request took too long");
		conn_discard(c, 0);
		conn_arm(c);
		return;
	}
	if (c->state != CONN_DONE)
		return;
	if (c->discard) {	/* the linger is over; the answer may finish */
		conn_discard(c, 0);
		conn_arm(c);
		return;
	}
	idle = loop_now_ms() - c->last_write;
	if (idle < FLUSH_MS) {
		c->timer = loop_timer_add(FLUSH_MS - idle, conn_timeout, c);
		return;
	}
	/* A reader that stopped reading; from a timer, so from the loop. */
	conn_destroy(c);
}

static void
conn_read_discard(struct conn *c)
{
	char	 buf[4096];
	ssize_t	 n;

	n = recv(c->fd, buf, sizeof(buf), 0);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0 || (size_t)n >= c->dleft) {
		c->discard = false;
		return;
	}
	c->dleft -= (size_t)n;
}

static bool
conn_pending(struct conn *c)
{
	return c->ooff < c->olen || c->tail != NULL || c->ffd != -1;
}

static bool
has_token(const char *list, const char *tok)
{
	size_t	 len = strlen(tok), n;

	while (list != NULL && *list != '\0') {
		list += strspn(list, " \t,");
		n = strcspn(list, " \t,");
		if (n == len && !strncasecmp(list, tok, len))
			return true;
		list += n;
	}
	return false;
}

/* --- SHA-1 (FIPS 180-4), for the WebSocket handshake only ------------- */

#define ROL(x, n)	((uint32_t)((x) << (n) | (x) >> (32 - (n))))

static void
sha1(const void *data, size_t len, uint8_t out[20])
{
	const uint8_t	*p = data;
	uint32_t	 h[5] = { 0x67452301, 0xefcdab89, 0x98badcfe,
	    0x10325476, 0xc3d2e1f0 };
	uint8_t		 last[128];
	uint64_t	 bits = (uint64_t)len * 8;
	size_t		 i, rest, n;

	for (i = 0; i + 64 <= len; i += 64)
		sha1_block(h, p + i);
	rest = len - i;
	memset(last, 0, sizeof(last));
	memcpy(last, p + i, rest);
	last[rest] = 0x80;
	n = rest + 1 + 8 <= 64 ? 64 : 128;
	for (i = 0; i < 8; i++)
		last[n - 1 - i] = (uint8_t)(bits >> (8 * i));
	for (i = 0; i < n; i += 64)
		sha1_block(h, last + i);
	for (i = 0; i < 20; i++)
		out[i] = (uint8_t)(h[i / 4] >> (24 - 8 * (i % 4)));
}

static void
sha1_block(uint32_t h[5], const uint8_t *p)
{
	uint32_t	 w[80], a, b, c, d, e, f, k, t;
	int		 i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		    (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (i = 16; i < 80; i++)
		w[i] = ROL(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
	for (i = 0; i < 80; i++) {
		if (i < 20)
			f = (b & c) | (~b & d), k = 0x5a827999;
		else if (i < 40)
			f = b ^ c ^ d, k = 0x6ed9eba1;
		else if (i < 60)
			f = (b & c) | (b & d) | (c & d), k = 0x8f1bbcdc;
		else
			f = b ^ c ^ d, k = 0xca62c1d6;
		t = ROL(a, 5) + f + e + k + w[i];
		e = d, d = c, c = ROL(b, 30), b = a, a = t;
	}
	h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
}
