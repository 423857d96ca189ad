/* SPDX-License-Identifier: MIT */
/*
 * init_pwait.c: waits on a background process. POST
 * /processes/{id}/wait answers when a log line matches or a port on
 * 127.0.0.1 listens (and, with a path, answers HTTP); a DELETE's answer
 * waits for the end.
 */
#include <errno.h>
#include <netinet/in.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "init.h"

#define WAIT_DEF	30000
#define LINE_MAX_W	(64 * 1024)	/* a longer log line is cut here */
#define PORT_RETRY_MS	100
#define PORT_TRY_MS	1000

#ifndef LIST_FOREACH_SAFE		/* BSD's; glibc's queue.h lacks it */
#define LIST_FOREACH_SAFE(var, head, field, tvar)			\
	for ((var) = LIST_FIRST(head);					\
	    (var) != NULL && ((tvar) = LIST_NEXT(var, field), 1);	\
	    (var) = (tvar))
#endif

enum wkind { W_LOG, W_PORT, W_KILL };
struct pwait {
	LIST_ENTRY(pwait) entry;
	struct proc	*p;
	struct conn	*conn;
	enum wkind	 kind;
	regex_t		 re;
	bool		 have_re;
	uint64_t	 pos[2];	/* W_LOG: the next line's start */
	int		 port;
	char		*path;		/* owned; NULL: a connect is enough */
	int		 sock;
	int		 phase;		/* 0 connecting, 1 reading */
	char		 rbuf[5];
	size_t		 rlen;
	long		 deadline, retry;
};

static int	wait_args(struct conn *, json_t *, struct pwait *,
		    json_int_t *);
static bool	wait_log(struct pwait *, bool);
static void	wait_port_try(void *);
static void	wait_port_io(void *, uint32_t);
static void	wait_port_fail(struct pwait *);
static void	wait_port_slow(void *);
static void	wait_timeout(void *);
static void	wait_done(struct pwait *, int);
static void	wait_gone(struct conn *, void *);
static void	waiter_free(struct pwait *);

void
pwait_handle(struct conn *c, const struct req *r, struct proc *p)
{
	struct pwait	*w;
	json_t		*body;
	json_int_t	 timeout = WAIT_DEF;

	if ((body = http_body_json(c, r)) == NULL)
		return;
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		json_decref(body);
		http_error(c, 500, "internal", "out of memory");
		return;
	}
	w->p = p;
	w->conn = c;
	w->sock = -1;
	if (wait_args(c, body, w, &timeout) == -1) {
		json_decref(body);
		free(w->path);
		free(w);
		return;
	}
	json_decref(body);
	LIST_INSERT_HEAD(&p->waiters, w, entry);
	conn_on_close(c, wait_gone, w);
	/* What is already kept counts; then an ended process cannot match. */
	if (w->kind == W_LOG && wait_log(w, !p->running))
		return;
	if (!p->running) {
		wait_done(w, 409);
		return;
	}
	if ((w->deadline = loop_timer_add((uint64_t)timeout, wait_timeout,
	    w)) == -1) {
		wait_done(w, 500);
		return;
	}
	if (w->kind == W_PORT)
		wait_port_try(w);
}

/* A DELETE's wait for the end; -1 after answering. */
int
pwait_exit(struct conn *c, struct proc *p)
{
	struct pwait	*w;

	if ((w = calloc(1, sizeof(*w))) == NULL) {
		http_error(c, 500, "internal", "out of memory");
		return -1;
	}
	w->p = p;
	w->conn = c;
	w->kind = W_KILL;
	w->sock = -1;
	LIST_INSERT_HEAD(&p->waiters, w, entry);
	conn_on_close(c, wait_gone, w);
	return 0;
}

/* More output: the log waits look at the new lines. */
void
pwait_output(struct proc *p)
{
	struct pwait	*w, *wn;

	LIST_FOREACH_SAFE(w, &p->waiters, entry, wn)
		if (w->kind == W_LOG)
			(void)wait_log(w, false);
}

/*
 * The process has ended and its output is in: a log wait takes a last
 * look, other waits get 409, a DELETE its answer. True after a DELETE:
 * the process is then to be forgotten.
 */
bool
pwait_ended(struct proc *p)
{
	struct pwait	*w, *wn;
	bool		 forget = false;

	LIST_FOREACH_SAFE(w, &p->waiters, entry, wn) {
		if (w->kind == W_LOG && wait_log(w, true))
			continue;
		if (w->kind == W_KILL) {
			forget = true;
			/* Stragglers of a group told to end. */
			(void)kill(-p->pid, SIGKILL);
		}
		wait_done(w, w->kind == W_KILL ? 200 : 409);
	}
	return forget;
}

/* The process is being forgotten: every wait is answered 409. */
void
pwait_drop(struct proc *p)
{
	struct pwait	*w;

	while ((w = LIST_FIRST(&p->waiters)) != NULL)
		wait_done(w, 409);
}

/* --- helpers ---------------------------------------------------------- */

/*
 * One of log (a regex), or port with an optional path; timeout_ms. Fills
 * w; -1 after answering.
 */
static int
wait_args(struct conn *c, json_t *body, struct pwait *w,
    json_int_t *timeout)
{
	json_t		*log = json_object_get(body, "log");
	json_t		*port = json_object_get(body, "port");
	json_t		*path = json_object_get(body, "path");
	json_t		*tmo = json_object_get(body, "timeout_ms");
	const char	*ps = json_string_value(path);
	char		 err[128];
	int		 rc;

	if ((log != NULL) == (port != NULL) || (log != NULL &&
	    !json_is_string(log)) || (port != NULL &&
	    (!json_is_integer(port) || json_integer_value(port) < 1 ||
	    json_integer_value(port) > 65535)) || (path != NULL &&
	    (port == NULL || ps == NULL || ps[0] != '/' || strlen(ps) > 1024 ||
	    strpbrk(ps, " \r\n\t") != NULL)) || (tmo != NULL &&
	    (!json_is_integer(tmo) || (*timeout = json_integer_value(tmo)) <
	    1 || *timeout > EXEC_TIMEOUT_MAX))) {
		http_error(c, 400, "bad_request", "one of log (a regex) or "
		    "port (1-65535, with an optional path /…); timeout_ms 1 "
		    "to %d", EXEC_TIMEOUT_MAX);
		return -1;
	}
	if (port != NULL) {
		w->kind = W_PORT;
		w->port = (int)json_integer_value(port);
		if (ps != NULL && (w->path = strdup(ps)) == NULL) {
			http_error(c, 500, "internal", "out of memory");
			return -1;
		}
		return 0;
	}
	w->kind = W_LOG;
	if ((rc = regcomp(&w->re, json_string_value(log), REG_EXTENDED |
	    REG_NOSUB)) != 0) {
		regerror(rc, &w->re, err, sizeof(err));
		http_error(c, 400, "bad_request", "log: %s", err);
		return -1;
	}
	w->have_re = true;
	w->pos[0] = plog_ring_low(&w->p->ring[0]);
	w->pos[1] = plog_ring_low(&w->p->ring[1]);
	return 0;
}

/*
 * Matches whole lines from where the waiter is; a last line without
 * its newline only at the end (final). True when it answered.
 */
static bool
wait_log(struct pwait *w, bool final)
{
	static char		 line[LINE_MAX_W + 1];
	struct plog_ring	*r;
	char			*nl;
	size_t			 n, len, used;
	int			 i;

	for (i = 0; i < 2; i++) {
		r = &w->p->ring[i];
		if (w->pos[i] < plog_ring_low(r))
			w->pos[i] = plog_ring_low(r);
		while (w->pos[i] < r->total) {
			n = r->total - w->pos[i] > LINE_MAX_W ? LINE_MAX_W :
			    (size_t)(r->total - w->pos[i]);
			plog_ring_copy(r, w->pos[i], line, n);
			if ((nl = memchr(line, '\n', n)) != NULL) {
				len = (size_t)(nl - line);
				used = len + 1;
			} else if (n == LINE_MAX_W || final)
				len = used = n;
			else
				break;
			if (len > 0 && line[len - 1] == '\r')
				len--;
			line[len] = '\0';
			w->pos[i] += used;
			if (regexec(&w->re, line, 0, NULL, 0) != 0)
				continue;
			conn_on_close(w->conn, NULL, NULL);
			http_json(w->conn, 200, json_pack("{s:b,s:o}", "ok", 1,
			    "line", text_jstr(line, len)));
			waiter_free(w);
			return true;
		}
	}
	return false;
}

/* One TCP connect to 127.0.0.1:port; a failure tries again shortly. */
static void
wait_port_try(void *arg)
{
	struct pwait		*w = arg;
	struct sockaddr_in	 sin;

	w->retry = 0;
	w->phase = 0;
	w->rlen = 0;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)w->port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((w->sock = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1) {
		wait_port_fail(w);
		return;
	}
	if ((connect(w->sock, (struct sockaddr *)&sin, sizeof(sin)) == -1 &&
	    errno != EINPROGRESS) ||
	    loop_add(w->sock, EPOLLOUT, wait_port_io, w) == -1) {
		wait_port_fail(w);
		return;
	}
	w->retry = loop_timer_add(PORT_TRY_MS, wait_port_slow, w);
}

/* Connected but silent, or no answer: this attempt has failed. */
static void
wait_port_slow(void *arg)
{
	struct pwait	*w = arg;

	w->retry = 0;
	wait_port_fail(w);
}

static void
wait_port_io(void *arg, uint32_t events)
{
	struct pwait	*w = arg;
	char		 req[1200];
	socklen_t	 len = sizeof(int);
	ssize_t		 n;
	int		 err = 0;

	if (w->phase == 0) {
		if (getsockopt(w->sock, SOL_SOCKET, SO_ERROR, &err, &len) ==
		    -1 || err != 0 || (events & EPOLLERR)) {
			wait_port_fail(w);
			return;
		}
		if (w->path == NULL) {
			wait_done(w, 200);
			return;
		}
		/* Any status will do: the server answers HTTP. */
		n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: "
		    "127.0.0.1:%d\r\nConnection: close\r\n\r\n", w->path,
		    w->port);
		if (send(w->sock, req, (size_t)n, MSG_NOSIGNAL) != n ||
		    loop_mod(w->sock, EPOLLIN, wait_port_io, w) == -1) {
			wait_port_fail(w);
			return;
		}
		w->phase = 1;
		return;
	}
	n = recv(w->sock, w->rbuf + w->rlen, sizeof(w->rbuf) - w->rlen, 0);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		wait_port_fail(w);
		return;
	}
	w->rlen += (size_t)n;
	if (memcmp(w->rbuf, "HTTP/", w->rlen) != 0)
		wait_port_fail(w);
	else if (w->rlen == sizeof(w->rbuf))
		wait_done(w, 200);
}

static void
wait_port_fail(struct pwait *w)
{
	if (w->sock != -1) {
		loop_del(w->sock);
		close(w->sock);
		w->sock = -1;
	}
	loop_timer_cancel(w->retry);
	if ((w->retry = loop_timer_add(PORT_RETRY_MS, wait_port_try, w)) == -1)
		wait_done(w, 500);
}

static void
wait_timeout(void *arg)
{
	struct pwait	*w = arg;

	w->deadline = 0;
	wait_done(w, 408);
}

/* Answers and frees the waiter: 200, 408 timeout, 409 exited, 500. */
static void
wait_done(struct pwait *w, int status)
{
	struct conn	*c = w->conn;
	json_t		*j;

	conn_on_close(c, NULL, NULL);
	if (w->kind == W_KILL && status == 200) {
		j = json_pack("{s:s,s:s}", "id", w->p->id, "status", "exited");
		exec_exit_fields(j, w->p->status);
		http_json(c, 200, j);
	} else if (status == 200)
		http_json(c, 200, json_pack("{s:b}", "ok", 1));
	else if (status == 408)
		http_error(c, 408, "timeout", "nothing within timeout_ms");
	else if (status == 409)
		http_error(c, 409, "exited", "%s ended first", w->p->id);
	else
		http_error(c, 500, "internal", "cannot wait: %s",
		    strerror(errno));
	waiter_free(w);
}

static void
wait_gone(struct conn *c, void *arg)
{
	(void)c;
	waiter_free(arg);
}

static void
waiter_free(struct pwait *w)
{
	if (w->sock != -1) {
		loop_del(w->sock);
		close(w->sock);
	}
	loop_timer_cancel(w->deadline);
	loop_timer_cancel(w->retry);
	if (w->have_re)
		regfree(&w->re);
	free(w->path);
	LIST_REMOVE(w, entry);
	free(w);
}
