/* SPDX-License-Identifier: MIT */
/*
 * init_http.c: the control API's HTTP/1.1 (RFC 9112), one request per
 * connection: parse a bounded head, route it, take its body (buffered,
 * or piece by piece to a handler's sink), and compose the one answer.
 * The connection under it, its output queue and streams are init_conn.c's.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "init.h"

#define LINGER_BYTES	(1024 * 1024)
#define SINK_CHUNK	(32 * 1024)

struct route {
	const char	*path;
	bool		 tree;		/* also path/… */
	unsigned	 methods;
	unsigned	 sink;		/* methods whose body goes to a sink */
	void		(*fn)(struct conn *, const struct req *);
};

static int	parse_head(struct conn *, char *);
static int	parse_target(struct conn *, char *);
static int	parse_fields(struct conn *, char *);
static int	check_body(struct conn *);
static const struct route *route_find(const char *);
static void	start_body(struct conn *, const char *, size_t);
static void	feed_sink(struct conn *, const char *, size_t);
static void	dispatch(struct conn *);
static void	health(struct conn *, const struct req *);
static void	answer(struct conn *, int, const char *, char *, size_t,
		    const char *);

static const struct route routes[] = {
	{ .path = "/health", .methods = HTTP_GET | HTTP_HEAD, .fn = health },
	{ .path = "/exec", .methods = HTTP_POST, .fn = exec_handle },
	{ .path = "/processes", .tree = true,
	    .methods = HTTP_GET | HTTP_POST | HTTP_DELETE, .fn = proc_handle },
	{ .path = "/files", .tree = true,
	    .methods = HTTP_GET | HTTP_HEAD | HTTP_PUT | HTTP_POST |
	    HTTP_DELETE, .sink = HTTP_PUT, .fn = files_handle },
	{ .path = "/watch", .methods = HTTP_GET, .fn = watch_handle },
	{ .path = "/terminal", .methods = HTTP_GET, .fn = term_handle },
	{ .path = "/terminals", .tree = true,
	    .methods = HTTP_GET | HTTP_DELETE, .fn = terms_handle },
};

static const struct {
	const char	*name;
	unsigned	 bit;
} methods[] = {
	{ "GET", HTTP_GET }, { "HEAD", HTTP_HEAD }, { "POST", HTTP_POST },
	{ "PUT", HTTP_PUT }, { "DELETE", HTTP_DELETE },
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
	{ 500, "Internal Server Error" },
	{ 503, "Service Unavailable" },
	{ 507, "Insufficient Storage" },
};

static size_t	 file_max = 64 << 20;

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
	if (body == NULL && c->method != HTTP_HEAD)
		len = 0;
	if (len > 0 && c->method != HTTP_HEAD && !c->answered && !c->dead) {
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
	    "message", text_jstr(msg, strlen(msg))));
}

void
http_reply_fd(struct conn *c, int status, const char *type, int fd,
    off_t size)
{
	if (c->answered || c->dead || c->method == HTTP_HEAD)
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
http_body_sink(struct conn *c, body_fn fn, void *arg)
{
	c->sink = fn;
	c->sink_arg = arg;
}

void
http_read_head(struct conn *c)
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

void
http_read_body(struct conn *c)
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

/* The head of an answer; len -1: no Content-Length (a stream). */
void
http_head(struct conn *c, int status, const char *type, long long len,
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
	    conn_put(c, head, (size_t)n, SIZE_MAX) == -1)
		c->dead = true;
}

/* --- reading a request ------------------------------------------------- */

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
		if (c->nhdrs == HTTP_HDRS_MAX) {
			http_error(c, 431, "too_large", "over %d header fields",
			    HTTP_HDRS_MAX);
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
	if (text_pct_decode(c->path, false) == -1)
		goto bad;
	c->req.path = c->path;
	for (p = c->qbuf; *p != '\0'; p = amp) {
		if ((amp = strchr(p, '&')) != NULL)
			*amp++ = '\0';
		else
			amp = p + strlen(p);
		if (*p == '\0')
			continue;
		if (c->nparams == HTTP_PARAMS_MAX) {
			http_error(c, 431, "too_large", "over %d query "
			    "parameters", HTTP_PARAMS_MAX);
			return -1;
		}
		if ((eq = strchr(p, '=')) != NULL)
			*eq++ = '\0';
		if (text_pct_decode(p, true) == -1 || (eq != NULL &&
		    text_pct_decode(eq, true) == -1))
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
	size_t		 max;
	int		 k;

	if ((c->route = route_find(c->req.path)) == NULL) {
		http_error(c, 404, "not_found", "no such endpoint");
		return -1;
	}
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
	    (cl == NULL && c->method == HTTP_PUT)) {
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

/* The route of path: itself, or below one that is a tree; NULL: none. */
static const struct route *
route_find(const char *path)
{
	size_t	 i, len;

	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		len = strlen(routes[i].path);
		if (!strncmp(path, routes[i].path, len) && (path[len] ==
		    '\0' || (routes[i].tree && path[len] == '/')))
			return &routes[i];
	}
	return NULL;
}

/* After the head: hand over to a sink, or buffer what the body needs. */
static void
start_body(struct conn *c, const char *rest, size_t nrest)
{
	const char	*expect = req_header(c, "Expect");

	if (nrest > c->bwant)
		nrest = c->bwant;	/* one request: ignore what follows */
	if (c->method & c->route->sink) {
		c->state = CONN_BUSY;
		c->in_handler = true;
		c->route->fn(c, &c->req);
		c->in_handler = false;
		if (c->answered || c->state == CONN_GONE) {
			if (c->state == CONN_DONE)
				conn_discard(c, c->bwant - nrest);
			return;
		}
		if (c->sink == NULL) {
			http_error(c, 500, "internal", "no body taker");
			return;
		}
		c->state = CONN_BODY;
		feed_sink(c, rest, nrest);
	} else {
		if ((c->body = malloc(c->bwant + 1)) == NULL) {
			http_error(c, 500, "internal", "out of memory");
			return;
		}
		memcpy(c->body, rest, nrest);
		c->bgot = nrest;
		c->state = CONN_BODY;
		if (c->bgot == c->bwant) {
			dispatch(c);
			return;
		}
	}
	/* RFC 9110 §10.1.1: the client waits for this before the body. */
	if (!c->answered && c->bgot < c->bwant && expect != NULL &&
	    !strcasecmp(expect, "100-continue"))
		(void)conn_put(c, "HTTP/1.1 100 Continue\r\n\r\n", 25,
		    HTTP_OUT_MAX);
	conn_flush(c);
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
		conn_discard(c, c->bwant - c->bgot);
		return;
	}
	if (c->bgot < c->bwant)
		return;
	loop_timer_cancel(c->timer);
	c->timer = 0;
	c->state = CONN_BUSY;
	c->sink = NULL;
	(void)fn(c, c->sink_arg, NULL, 0);
}

static void
dispatch(struct conn *c)
{
	loop_timer_cancel(c->timer);
	c->timer = 0;
	c->body[c->bgot] = '\0';
	c->req.body = c->body;
	c->req.body_len = c->bgot;
	c->state = CONN_BUSY;
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
	    (json_int_t)loop_now_ms(), "processes", proc_count(),
	    "terminals", pty_count()));
}

/* --- answering ------------------------------------------------------- */

/* The one final answer; body (owned, may be NULL) is freed or sent. */
static void
answer(struct conn *c, int status, const char *type, char *body,
    size_t len, const char *extra)
{
	bool	 unread = c->state == CONN_HEAD || c->state == CONN_BODY;

	if (c->answered || c->dead) {
		free(body);
		return;
	}
	http_head(c, status, type, (long long)len, extra);
	c->answered = true;
	if (c->method == HTTP_HEAD) {
		free(body);
		body = NULL;
	}
	c->tail = body;
	c->tlen = body != NULL ? len : 0;
	c->toff = 0;
	c->state = CONN_DONE;
	c->sink = NULL;
	loop_timer_cancel(c->timer);
	c->timer = 0;
	/* The rest of the request may be in flight: read and drop it. */
	conn_discard(c, unread ? c->dleft : 0);
	conn_flush(c);
	conn_arm(c);
}
