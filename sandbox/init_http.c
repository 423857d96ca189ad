/* SPDX-License-Identifier: MIT */
/*
 * init_http.c: the control API's HTTP/1.1 (RFC 9112), one request per
 * connection: read a bounded head and body, route it, queue the answer
 * (buffered, a file, or an SSE stream), flush it as the socket drains,
 * close. Also the WebSocket handshake (RFC 6455 §4.2.2) with its SHA-1
 * and base64, since pincer-init links no crypto library.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "init.h"

#define MAX_CONNS	256
#define MAX_HEADERS	64
#define MAX_PARAMS	64
#define READ_MS		30000		/* head and body, from accept */
#define LINGER_MS	2000		/* reading what follows an error */
#define FLUSH_MS	60000		/* an answer's reader, stalled */
#define LINGER_BYTES	(1024 * 1024)
#define SINK_CHUNK	(32 * 1024)
#define WS_GUID		"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

enum {
	M_GET = 1, M_HEAD = 2, M_POST = 4, M_PUT = 8, M_DELETE = 16
};

enum cstate {
	C_HEAD,		/* reading the head */
	C_BODY,		/* reading the body (buffer or sink) */
	C_BUSY,		/* the handler works; the peer may only hang up */
	C_STREAM,	/* SSE */
	C_DONE,		/* answered: flush, then close */
	C_GONE		/* upgraded: the socket is someone else's */
};

struct route {
	const char	*path;
	bool		 tree;		/* also path/… */
	unsigned	 methods;
	unsigned	 sink;		/* methods whose body goes to a sink */
	void		(*fn)(struct conn *, const struct req *);
};

struct param {
	const char	*name;
	const char	*value;
};

struct conn {
	LIST_ENTRY(conn) entry;
	int		 fd;
	enum cstate	 state;
	uint32_t	 ev;		/* registered events */
	long		 timer;		/* read deadline, then linger */
	bool		 dead;		/* the socket failed: destroy */
	bool		 in_handler;
	/* The request; method, headers point into head. */
	char		*head;		/* HTTP_HEAD_MAX + 1, owned */
	size_t		 hlen;
	struct req	 req;
	unsigned	 method;
	const struct route *route;
	const char	*names[MAX_HEADERS], *values[MAX_HEADERS];
	int		 nhdrs;
	char		*path;		/* owned */
	char		*qbuf;		/* owned: decoded query pieces */
	struct param	 params[MAX_PARAMS];
	int		 nparams;
	char		*body;		/* owned, NUL-terminated */
	size_t		 bgot, bwant;
	body_fn		 sink;
	void		*sink_arg;
	bool		 discard;	/* drop what the peer still sends */
	size_t		 dleft;
	bool		 wr_shut;
	/* The answer. */
	bool		 answered;
	char		*out;		/* owned: head, SSE events */
	size_t		 ooff, olen, ocap;
	char		*tail;		/* owned: a buffered body */
	size_t		 toff, tlen;
	int		 ffd;		/* a file body, or -1 */
	off_t		 fleft;
	bool		 drain_armed;
	uint64_t	 last_write;	/* the last progress of the answer */
	conn_close_fn	 on_close;
	void		*close_arg;
	void		(*on_drain)(struct conn *, void *);
	void		*drain_arg;
};

static void	http_accept(void *, uint32_t);
static void	conn_io(void *, uint32_t);
static void	conn_settle(struct conn *);
static void	conn_arm(struct conn *);
static void	conn_destroy(struct conn *);
static void	conn_timeout(void *);
static void	read_head(struct conn *);
static void	read_body(struct conn *);
static void	read_discard(struct conn *);
static int	parse_head(struct conn *, char *);
static int	parse_target(struct conn *, char *);
static int	parse_fields(struct conn *, char *);
static int	check_body(struct conn *);
static void	start_body(struct conn *, const char *, size_t);
static void	feed_sink(struct conn *, const char *, size_t);
static void	dispatch(struct conn *);
static void	health(struct conn *, const struct req *);
static int	pct_decode(char *, bool);
static int	out_put(struct conn *, const void *, size_t, size_t);
static void	out_head(struct conn *, int, const char *, long long,
		    const char *);
static void	answer(struct conn *, int, const char *, char *, size_t,
		    const char *);
static void	conn_flush(struct conn *);
static void	start_discard(struct conn *, size_t);
static bool	conn_pending(struct conn *);
static int	hexval(int);
static size_t	utf8_len(const uint8_t *, size_t, int *);
static bool	has_token(const char *, const char *);
static void	sha1(const void *, size_t, uint8_t [20]);
static void	sha1_block(uint32_t [5], const uint8_t *);

static const struct route routes[] = {
	{ .path = "/health", .methods = M_GET | M_HEAD, .fn = health },
	{ .path = "/exec", .methods = M_POST, .fn = exec_handle },
	{ .path = "/processes", .tree = true,
	    .methods = M_GET | M_POST | M_DELETE, .fn = proc_handle },
	{ .path = "/files", .tree = true,
	    .methods = M_GET | M_HEAD | M_PUT | M_POST | M_DELETE,
	    .sink = M_PUT, .fn = files_handle },
	{ .path = "/watch", .methods = M_GET, .fn = watch_handle },
	{ .path = "/terminal", .methods = M_GET, .fn = term_handle },
	{ .path = "/terminals", .tree = true, .methods = M_GET | M_DELETE,
	    .fn = terms_handle },
};

static const struct {
	const char	*name;
	unsigned	 bit;
} methods[] = {
	{ "GET", M_GET }, { "HEAD", M_HEAD }, { "POST", M_POST },
	{ "PUT", M_PUT }, { "DELETE", M_DELETE },
};

static const struct {
	int		 status;
	const char	*reason;
} reasons[] = {
	{ 100, "Continue" }, { 101, "Switching Protocols" }, { 200, "OK" },
	{ 201, "Created" }, { 400, "Bad Request" }, { 403, "Forbidden" },
	{ 404, "Not Found" }, { 405, "Method Not Allowed" },
	{ 408, "Request Timeout" }, { 409, "Conflict" },
	{ 411, "Length Required" }, { 413, "Content Too Large" },
	{ 422, "Unprocessable Content" },
	{ 431, "Request Header Fields Too Large" },
	{ 500, "Internal Server Error" }, { 501, "Not Implemented" },
	{ 503, "Service Unavailable" },
	{ 507, "Insufficient Storage" },
};

static LIST_HEAD(, conn) conns = LIST_HEAD_INITIALIZER(conns);
static int	 nconns;
static size_t	 file_max = 64 << 20;

void
http_listen(int fd)
{
	if (loop_add(fd, EPOLLIN, http_accept, (void *)(intptr_t)fd) == -1)
		init_log("control socket: %s", strerror(errno));
}

void
http_file_limit(size_t max)
{
	file_max = max;
}

const char *
req_header(struct conn *c, const char *name)
{
	int	 i;

	for (i = 0; i < c->nhdrs; i++)
		if (!strcasecmp(c->names[i], name))
			return c->values[i];
	return NULL;
}

const char *
req_query(struct conn *c, const char *name, int nth)
{
	int	 i;

	for (i = 0; i < c->nparams; i++)
		if (!strcmp(c->params[i].name, name) && nth-- == 0)
			return c->params[i].value;
	return NULL;
}

void
http_reply(struct conn *c, int status, const char *type, const void *body,
    size_t len)
{
	char	*copy = NULL;

	/* A HEAD answer may give a length without the bytes; no other. */
	if (body == NULL && c->method != M_HEAD)
		len = 0;
	if (len > 0 && c->method != M_HEAD && !c->answered && !c->dead) {
		if ((copy = malloc(len)) == NULL) {
			http_error(c, 500, "internal", "out of memory");
			return;
		}
		memcpy(copy, body, len);
	}
	answer(c, status, type, copy, len, NULL);
}

void
http_json(struct conn *c, int status, json_t *j)
{
	char	*s;

	if (j == NULL || (s = json_dumps(j, JSON_COMPACT)) == NULL) {
		json_decref(j);
		if (status == 500)	/* do not loop on a failing error */
			answer(c, 500, "text/plain", NULL, 0, NULL);
		else
			http_error(c, 500, "internal", "out of memory");
		return;
	}
	json_decref(j);
	answer(c, status, "application/json", s, strlen(s), NULL);
}

void
http_error(struct conn *c, int status, const char *code, const char *fmt,
    ...)
{
	char	 msg[512];
	va_list	 ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	http_json(c, status, json_pack("{s:{s:s,s:o}}", "error", "code", code,
	    "message", http_jstr(msg, strlen(msg))));
}

void
http_reply_fd(struct conn *c, int status, const char *type, int fd,
    off_t size)
{
	if (c->answered || c->dead || c->method == M_HEAD)
		close(fd);
	else {
		c->ffd = fd;
		c->fleft = size;
	}
	/* No tail: the length is the file's, its bytes come from ffd. */
	answer(c, status, type, NULL, (size_t)size, NULL);
}

json_t *
http_body_json(struct conn *c, const struct req *r)
{
	json_error_t	 err;
	json_t		*j;

	if (req_header(c, "Content-Length") == NULL) {
		http_error(c, 411, "length_required",
		    "a JSON body with Content-Length is required");
		return NULL;
	}
	if ((j = json_loadb(r->body, r->body_len, 0, &err)) == NULL) {
		http_error(c, 400, "bad_request", "invalid JSON: %s (at %d)",
		    err.text, err.position);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		http_error(c, 400, "bad_request", "the body is not an object");
		return NULL;
	}
	return j;
}

void
conn_body_sink(struct conn *c, body_fn fn, void *arg)
{
	c->sink = fn;
	c->sink_arg = arg;
}

void
sse_start(struct conn *c)
{
	if (c->answered || c->dead)
		return;
	out_head(c, 200, "text/event-stream", -1,
	    "Cache-Control: no-cache\r\n");
	c->answered = true;
	c->state = C_STREAM;
	conn_flush(c);
	conn_arm(c);
}

int
sse_event(struct conn *c, const char *type, json_t *j)
{
	char	*s = NULL;
	int	 rc = -1;

	if (c->state != C_STREAM || c->dead || j == NULL)
		goto done;
	if ((s = json_dumps(j, JSON_COMPACT)) == NULL)
		goto done;
	/* One event, whole or not at all: the queue is bounded. */
	if (conn_backlog(c) + strlen(type) + strlen(s) + 16 > HTTP_OUT_MAX)
		goto done;
	if (out_put(c, "event: ", 7, HTTP_OUT_MAX) == -1 ||
	    out_put(c, type, strlen(type), HTTP_OUT_MAX) == -1 ||
	    out_put(c, "\ndata: ", 7, HTTP_OUT_MAX) == -1 ||
	    out_put(c, s, strlen(s), HTTP_OUT_MAX) == -1 ||
	    out_put(c, "\n\n", 2, HTTP_OUT_MAX) == -1)
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
	if (c->state == C_DONE || c->state == C_GONE)
		return;
	c->answered = true;
	c->state = C_DONE;
	start_discard(c, 0);
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
http_upgrade(struct conn *c)
{
	const char	*key = req_header(c, "Sec-WebSocket-Key");
	const char	*ver = req_header(c, "Sec-WebSocket-Version");
	char		 buf[96], *acc = NULL, head[256];
	uint8_t		 dig[20];
	size_t		 len;
	int		 fd, n;

	if (c->method != M_GET || !has_token(req_header(c, "Upgrade"),
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
	if ((acc = http_base64(dig, sizeof(dig), &len)) == NULL) {
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
	c->state = C_GONE;
	c->answered = true;
	c->on_close = NULL;
	if (!c->in_handler)
		conn_destroy(c);
	return fd;
}

char *
http_base64(const void *src, size_t n, size_t *len)
{
	static const char	 tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	const uint8_t		*p = src;
	char			*out, *o;
	uint32_t		 v;
	size_t			 i;

	if (n > (SIZE_MAX - 1) / 4 * 3 - 3 ||
	    (out = malloc((n + 2) / 3 * 4 + 1)) == NULL)
		return NULL;
	o = out;
	for (i = 0; i + 2 < n; i += 3) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		*o++ = tab[v >> 18];
		*o++ = tab[(v >> 12) & 63];
		*o++ = tab[(v >> 6) & 63];
		*o++ = tab[v & 63];
	}
	if (i < n) {
		v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		*o++ = tab[v >> 18];
		*o++ = tab[(v >> 12) & 63];
		*o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	*o = '\0';
	if (len != NULL)
		*len = (size_t)(o - out);
	return out;
}

/* --- connections ------------------------------------------------------- */

static void
http_accept(void *arg, uint32_t events)
{
	static const char	 busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
	    "Content-Length: 0\r\nConnection: close\r\n\r\n";
	struct conn		*c;
	int			 lfd = (int)(intptr_t)arg, fd, i;

	(void)events;
	for (i = 0; i < 16; i++) {
		if ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK |
		    SOCK_CLOEXEC)) == -1) {
			init_accept_pause(lfd, errno, http_accept);
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
		    (c->timer = timer_add(READ_MS, conn_timeout, c)) == -1 ||
		    loop_add(fd, EPOLLIN, conn_io, c) == -1) {
			timer_cancel(c->timer);
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
		if (c->state == C_HEAD)
			read_head(c);
		else if (c->state == C_BODY)
			read_body(c);
		else if (c->discard)
			read_discard(c);
	}
	/* Waiting or streaming, a hang-up is the client going away. */
	if ((events & (EPOLLRDHUP | EPOLLHUP)) && (c->state == C_BUSY ||
	    c->state == C_STREAM))
		c->dead = true;
	if (!c->dead && (events & EPOLLOUT))
		conn_flush(c);
	conn_settle(c);
}

/* After an event: callbacks, then the end or the next registration. */
static void
conn_settle(struct conn *c)
{
	if (c->state == C_GONE) {	/* upgraded: nothing of ours left */
		conn_destroy(c);
		return;
	}
	if (!c->dead && !conn_pending(c) && c->drain_armed &&
	    c->on_drain != NULL && c->state == C_STREAM) {
		c->drain_armed = false;
		c->on_drain(c, c->drain_arg);
	}
	if (c->dead) {
		conn_destroy(c);
		return;
	}
	if (c->state == C_DONE && !conn_pending(c)) {
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
conn_arm(struct conn *c)
{
	uint32_t	 ev = 0;

	switch (c->state) {
	case C_HEAD:
	case C_BODY:
		ev = EPOLLIN;
		break;
	case C_BUSY:
	case C_STREAM:
		ev = EPOLLRDHUP;
		break;
	case C_DONE:
		/* Writable at once when all is sent: that event ends it. */
		if (conn_pending(c) || !c->discard)
			ev |= EPOLLOUT;
		if (c->discard)
			ev |= EPOLLIN;
		break;
	case C_GONE:
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

static void
conn_destroy(struct conn *c)
{
	conn_close_fn	 fn = c->on_close;

	c->on_close = NULL;
	c->dead = true;
	c->answered = true;
	if (c->state != C_GONE)
		c->state = C_DONE;
	if (fn != NULL)
		fn(c, c->close_arg);
	timer_cancel(c->timer);
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
	if (c->state == C_HEAD || c->state == C_BODY) {
		http_error(c, 408, "timeout", "the request took too long");
		start_discard(c, 0);
		conn_arm(c);
		return;
	}
	if (c->state != C_DONE)
		return;
	if (c->discard) {	/* the linger is over; the answer may finish */
		start_discard(c, 0);
		conn_arm(c);
		return;
	}
	idle = init_now_ms() - c->last_write;
	if (idle < FLUSH_MS) {
		c->timer = timer_add(FLUSH_MS - idle, conn_timeout, c);
		return;
	}
	/* A reader that stopped reading; from a timer, so from the loop. */
	conn_destroy(c);
}

/* --- reading a request ------------------------------------------------- */

static void
read_head(struct conn *c)
{
	ssize_t	 n;
	size_t	 from;
	char	*end;

	n = recv(c->fd, c->head + c->hlen, HTTP_HEAD_MAX - c->hlen, 0);
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
		c->dead = true;
		return;
	}
	if (n == -1)
		return;
	from = c->hlen > 3 ? c->hlen - 3 : 0;
	c->hlen += (size_t)n;
	c->head[c->hlen] = '\0';
	end = memmem(c->head + from, c->hlen - from, "\r\n\r\n", 4);
	if (end == NULL) {
		if (c->hlen == HTTP_HEAD_MAX) {
			c->dleft = LINGER_BYTES;
			http_error(c, 431, "too_large", "the request head is "
			    "over %d bytes", HTTP_HEAD_MAX);
		}
		return;
	}
	end += 4;
	if (parse_head(c, end) == -1 || check_body(c) == -1)
		return;
	start_body(c, end, c->hlen - (size_t)(end - c->head));
}

/*
 * NUL-terminates the pieces in place; -1 after answering. end is just
 * past the blank line, so every line before it ends with CRLF.
 */
static int
parse_head(struct conn *c, char *end)
{
	char	*line, *fields, *target, *sp;
	size_t	 i;

	c->dleft = LINGER_BYTES;
	if (memchr(c->head, '\0', (size_t)(end - c->head)) != NULL)
		goto bad;
	end[-2] = '\0';
	line = c->head;
	fields = strstr(line, "\r\n");
	*fields = '\0';
	fields += 2;
	if ((target = strchr(line, ' ')) == NULL)
		goto bad;
	*target++ = '\0';
	if ((sp = strchr(target, ' ')) == NULL || (strcmp(sp + 1,
	    "HTTP/1.1") != 0 && strcmp(sp + 1, "HTTP/1.0") != 0))
		goto bad;
	*sp = '\0';
	if (*line == '\0' || strspn(line, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") !=
	    strlen(line))
		goto bad;
	c->req.method = line;
	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (!strcmp(line, methods[i].name))
			c->method = methods[i].bit;
	if (parse_fields(c, fields) == -1)
		return -1;
	return parse_target(c, target);
bad:
	http_error(c, 400, "bad_request", "malformed request head");
	return -1;
}

/* Header fields, "name: value" a line; no obsolete line folding. */
static int
parse_fields(struct conn *c, char *p)
{
	char	*eol, *colon, *v, *e;

	for (; *p != '\0'; p = eol + 2) {
		if ((eol = strstr(p, "\r\n")) == NULL)
			goto bad;
		*eol = '\0';
		colon = strchr(p, ':');
		if (colon == NULL || colon == p || strpbrk(p, "\r\n") !=
		    NULL || strcspn(p, " \t") < (size_t)(colon - p))
			goto bad;
		if (c->nhdrs == MAX_HEADERS) {
			http_error(c, 431, "too_large", "over %d header fields",
			    MAX_HEADERS);
			return -1;
		}
		*colon = '\0';
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		for (e = v + strlen(v); e > v && (e[-1] == ' ' ||
		    e[-1] == '\t'); e--)
			;
		*e = '\0';
		c->names[c->nhdrs] = p;
		c->values[c->nhdrs++] = v;
	}
	return 0;
bad:
	http_error(c, 400, "bad_request", "malformed header field");
	return -1;
}

/* The path, percent-decoded, and the query's name=value pairs. */
static int
parse_target(struct conn *c, char *target)
{
	char	*q, *p, *amp, *eq;

	if (*target != '/')
		goto bad;
	if ((q = strchr(target, '?')) != NULL)
		*q++ = '\0';
	c->req.query = q != NULL ? q : "";
	if ((c->path = strdup(target)) == NULL ||
	    (c->qbuf = strdup(c->req.query)) == NULL) {
		http_error(c, 500, "internal", "out of memory");
		return -1;
	}
	if (pct_decode(c->path, false) == -1)
		goto bad;
	c->req.path = c->path;
	for (p = c->qbuf; *p != '\0'; p = amp) {
		if ((amp = strchr(p, '&')) != NULL)
			*amp++ = '\0';
		else
			amp = p + strlen(p);
		if (*p == '\0')
			continue;
		if (c->nparams == MAX_PARAMS) {
			http_error(c, 431, "too_large", "over %d query "
			    "parameters", MAX_PARAMS);
			return -1;
		}
		if ((eq = strchr(p, '=')) != NULL)
			*eq++ = '\0';
		if (pct_decode(p, true) == -1 || (eq != NULL &&
		    pct_decode(eq, true) == -1))
			goto bad;
		c->params[c->nparams].name = p;
		c->params[c->nparams++].value = eq != NULL ? eq : "";
	}
	return 0;
bad:
	http_error(c, 400, "bad_request", "malformed or NUL in the request "
	    "target");
	return -1;
}

/*
 * The route, and what the body may be: Content-Length only (RFC 9112
 * §6.3; no chunked upload), within the route's limit.
 */
static int
check_body(struct conn *c)
{
	const char	*cl = NULL, *v;
	unsigned long long n = 0;
	size_t		 i, max;
	int		 k;

	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		size_t	 len = strlen(routes[i].path);

		if (!strncmp(c->req.path, routes[i].path, len) &&
		    (c->req.path[len] == '\0' || (routes[i].tree &&
		    c->req.path[len] == '/')))
			break;
	}
	if (i == sizeof(routes) / sizeof(routes[0])) {
		http_error(c, 404, "not_found", "no such endpoint");
		return -1;
	}
	c->route = &routes[i];
	if ((c->method & c->route->methods) == 0) {
		http_error(c, 405, "method_not_allowed", "%s is not allowed "
		    "here", c->req.method);
		return -1;
	}
	for (k = 0; k < c->nhdrs; k++) {
		if (strcasecmp(c->names[k], "Content-Length") != 0)
			continue;
		v = c->values[k];
		if (*v == '\0' || strspn(v, "0123456789") != strlen(v) ||
		    strlen(v) > 18 || (cl != NULL && strcmp(cl, v) != 0)) {
			http_error(c, 400, "bad_request",
			    "malformed Content-Length");
			return -1;
		}
		cl = v;
		n = strtoull(v, NULL, 10);
	}
	if (req_header(c, "Transfer-Encoding") != NULL ||
	    (cl == NULL && c->method == M_PUT)) {
		http_error(c, 411, "length_required",
		    "a body needs Content-Length");
		return -1;
	}
	max = (c->method & c->route->sink) ? file_max : HTTP_JSON_MAX;
	if (n > max) {
		http_error(c, 413, "too_large", "the body is over %zu bytes",
		    max);
		return -1;
	}
	c->bwant = (size_t)n;
	c->dleft = c->bwant;
	return 0;
}

/* After the head: hand over to a sink, or buffer what the body needs. */
static void
start_body(struct conn *c, const char *rest, size_t nrest)
{
	const char	*expect = req_header(c, "Expect");

	if (nrest > c->bwant)
		nrest = c->bwant;	/* one request: ignore what follows */
	if (c->method & c->route->sink) {
		c->state = C_BUSY;
		c->in_handler = true;
		c->route->fn(c, &c->req);
		c->in_handler = false;
		if (c->answered || c->state == C_GONE) {
			if (c->state == C_DONE)
				start_discard(c, c->bwant - nrest);
			return;
		}
		if (c->sink == NULL) {
			http_error(c, 500, "internal", "no body taker");
			return;
		}
		c->state = C_BODY;
		feed_sink(c, rest, nrest);
	} else {
		if ((c->body = malloc(c->bwant + 1)) == NULL) {
			http_error(c, 500, "internal", "out of memory");
			return;
		}
		memcpy(c->body, rest, nrest);
		c->bgot = nrest;
		c->state = C_BODY;
		if (c->bgot == c->bwant) {
			dispatch(c);
			return;
		}
	}
	/* RFC 9110 §10.1.1: the client waits for this before the body. */
	if (!c->answered && c->bgot < c->bwant && expect != NULL &&
	    !strcasecmp(expect, "100-continue"))
		(void)out_put(c, "HTTP/1.1 100 Continue\r\n\r\n", 25,
		    HTTP_OUT_MAX);
	conn_flush(c);
}

static void
read_body(struct conn *c)
{
	static char	 chunk[SINK_CHUNK];
	size_t		 want = c->bwant - c->bgot;
	ssize_t		 n;

	if (c->sink != NULL && want > sizeof(chunk))
		want = sizeof(chunk);
	n = recv(c->fd, c->sink != NULL ? chunk : c->body + c->bgot, want, 0);
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
		c->dead = true;
		return;
	}
	if (n == -1)
		return;
	if (c->sink != NULL) {
		feed_sink(c, chunk, (size_t)n);
		return;
	}
	c->bgot += (size_t)n;
	if (c->bgot == c->bwant)
		dispatch(c);
}

static void
feed_sink(struct conn *c, const char *p, size_t n)
{
	body_fn	 fn = c->sink;

	c->bgot += n;
	if (n > 0 && fn(c, c->sink_arg, p, n) == -1 && !c->answered)
		http_error(c, 500, "internal", "the body was refused");
	if (c->answered) {
		c->sink = NULL;
		start_discard(c, c->bwant - c->bgot);
		return;
	}
	if (c->bgot < c->bwant)
		return;
	timer_cancel(c->timer);
	c->timer = 0;
	c->state = C_BUSY;
	c->sink = NULL;
	(void)fn(c, c->sink_arg, NULL, 0);
}

static void
read_discard(struct conn *c)
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

static void
dispatch(struct conn *c)
{
	timer_cancel(c->timer);
	c->timer = 0;
	c->body[c->bgot] = '\0';
	c->req.body = c->body;
	c->req.body_len = c->bgot;
	c->state = C_BUSY;
	c->in_handler = true;
	c->route->fn(c, &c->req);
	c->in_handler = false;
}

static void
health(struct conn *c, const struct req *r)
{
	(void)r;
	http_json(c, 200, json_pack("{s:s,s:I,s:I,s:i,s:i}", "status", "ok",
	    "pid", (json_int_t)getpid(), "uptime_ms",
	    (json_int_t)init_now_ms(), "processes", proc_count(),
	    "terminals", term_count != NULL ? term_count() : 0));
}

/* In place; %00 and bad escapes fail. A query also turns '+' to ' '. */
static int
pct_decode(char *s, bool query)
{
	char	*o = s;
	int	 hi, lo;

	for (; *s != '\0'; s++) {
		if (*s == '+' && query) {
			*o++ = ' ';
			continue;
		}
		if (*s != '%') {
			*o++ = *s;
			continue;
		}
		if ((hi = hexval(s[1])) == -1 || (lo = hexval(s[2])) == -1 ||
		    (hi == 0 && lo == 0))
			return -1;
		*o++ = (char)(hi << 4 | lo);
		s += 2;
	}
	*o = '\0';
	return 0;
}

/* --- answering ------------------------------------------------------- */

static int
out_put(struct conn *c, const void *p, size_t n, size_t max)
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

/* The head of an answer; len -1: no Content-Length (a stream). */
static void
out_head(struct conn *c, int status, const char *type, long long len,
    const char *extra)
{
	const char	*reason = "Unknown";
	char		 head[512], clen[48] = "";
	size_t		 i;
	int		 n;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].status == status)
			reason = reasons[i].reason;
	if (len >= 0)
		(void)snprintf(clen, sizeof(clen), "Content-Length: %lld\r\n",
		    len);
	n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\nContent-Type: "
	    "%s\r\n%s%sConnection: close\r\n\r\n", status, reason, type, clen,
	    extra != NULL ? extra : "");
	if (n > 0 && (size_t)n < sizeof(head) &&
	    out_put(c, head, (size_t)n, SIZE_MAX) == -1)
		c->dead = true;
}

/* The one final answer; body (owned, may be NULL) is freed or sent. */
static void
answer(struct conn *c, int status, const char *type, char *body,
    size_t len, const char *extra)
{
	bool	 unread = c->state == C_HEAD || c->state == C_BODY;

	if (c->answered || c->dead) {
		free(body);
		return;
	}
	out_head(c, status, type, (long long)len, extra);
	c->answered = true;
	if (c->method == M_HEAD) {
		free(body);
		body = NULL;
	}
	c->tail = body;
	c->tlen = body != NULL ? len : 0;
	c->toff = 0;
	c->state = C_DONE;
	c->sink = NULL;
	timer_cancel(c->timer);
	c->timer = 0;
	/* The rest of the request may be in flight: read and drop it. */
	start_discard(c, unread ? c->dleft : 0);
	conn_flush(c);
	conn_arm(c);
}

/*
 * Reads and drops up to left more bytes, for LINGER_MS at most; with
 * none left, watches that the answer goes out (FLUSH_MS without
 * progress ends the connection).
 */
static void
start_discard(struct conn *c, size_t left)
{
	c->discard = left > 0;
	c->dleft = left;
	c->last_write = init_now_ms();
	timer_cancel(c->timer);
	c->timer = timer_add(c->discard ? LINGER_MS : FLUSH_MS, conn_timeout,
	    c);
	if (c->timer == -1) {
		c->timer = 0;
		c->discard = false;
	}
}

static bool
conn_pending(struct conn *c)
{
	return c->ooff < c->olen || c->tail != NULL || c->ffd != -1;
}

/* Writes what the socket takes now; never blocks, never frees c. */
static void
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
		c->last_write = init_now_ms();
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

/* --- text -------------------------------------------------------------- */

json_t *
http_jstr(const void *src, size_t n)
{
	static const char	 fffd[] = "\xef\xbf\xbd";
	const uint8_t		*p = src;
	json_t			*j;
	char			*out, *o;
	size_t			 i, len;
	int			 st;

	for (i = 0; i < n; i += len)
		if ((len = utf8_len(p + i, n - i, &st)) == 0 || st != 0)
			break;
	if (i == n)
		return json_stringn_nocheck(src, n);
	if (n > SIZE_MAX / 3 - 1 || (out = malloc(n * 3 + 1)) == NULL)
		return NULL;
	memcpy(out, src, i);
	o = out + i;
	for (; i < n; i += len) {
		len = utf8_len(p + i, n - i, &st);
		if (st == 0) {
			memcpy(o, p + i, len);
			o += len;
		} else {
			memcpy(o, fffd, 3);
			o += 3;
		}
	}
	j = json_stringn_nocheck(out, (size_t)(o - out));
	free(out);
	return j;
}

size_t
http_utf8_hold(const void *src, size_t n)
{
	const uint8_t	*p = src;
	size_t		 k;
	int		 st;

	for (k = 1; k <= 3 && k <= n; k++) {
		if (p[n - k] < 0x80)
			return 0;
		if (p[n - k] >= 0xc0) {
			(void)utf8_len(p + n - k, k, &st);
			return st == 2 ? k : 0;
		}
	}
	return 0;
}

/*
 * The UTF-8 sequence at p (Unicode 15 table 3-7). Sets *st: 0 valid,
 * 1 invalid, 2 a valid start cut off by the end of the buffer. Returns
 * the bytes it spans; an invalid run is its maximal valid prefix (at
 * least 1), which becomes one U+FFFD.
 */
static size_t
utf8_len(const uint8_t *p, size_t n, int *st)
{
	uint8_t	 lo = 0x80, hi = 0xbf;
	size_t	 len, i;

	*st = 0;
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		lo = p[0] == 0xe0 ? 0xa0 : 0x80;
		hi = p[0] == 0xed ? 0x9f : 0xbf;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		lo = p[0] == 0xf0 ? 0x90 : 0x80;
		hi = p[0] == 0xf4 ? 0x8f : 0xbf;
	} else {
		*st = 1;
		return 1;
	}
	for (i = 1; i < len; i++) {
		if (i == n) {
			*st = 2;
			return i;
		}
		if (p[i] < lo || p[i] > hi) {
			*st = 1;
			return i;
		}
		lo = 0x80;
		hi = 0xbf;
	}
	return len;
}

static int
hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
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
