/* SPDX-License-Identifier: MIT */
/*
 * egress_dial.c: the egress proxy's way to a host: the system's resolver,
 * the policy asked about each address, a connection to an address it
 * allowed (within egress.connect_timeout_s); then, for a tunnel or a
 * plain request, the bytes both ways as they come.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <jansson.h>

#include "pincer.h"
#include "egress.h"

static int	 connect_to(const struct addrinfo *, long);
static bool	 hop_header(const char *, size_t);

#define RELAY_BUF	(64 << 10)	/* per direction */

/*
 * Resolve, check each address, connect to the first one allowed that
 * answers. The address connected to is the one checked: a name that
 * resolves to a refused range, now or on a second lookup, gets nowhere.
 */
int
egress_dial(struct econn *e, struct ereq *r, struct eg_verdict *v,
    bool intercept, char *why, size_t whysz)
{
	const struct config	*c = config_current();
	struct addrinfo		 hints = { .ai_socktype = SOCK_STREAM,
				    .ai_flags = AI_NUMERICSERV }, *res, *ai;
	struct eg_req		 q = { r->host, r->port, r->method, r->path,
				    NULL };
	struct eg_verdict	 w;
	struct timeval		 tv = { .tv_sec = c->egress_idle_timeout_s };
	int			 rc, fd, allowed = 0, err = 0;

	if ((rc = getaddrinfo(r->host, r->port_s, &hints, &res)) != 0) {
		snprintf(why, whysz, "cannot resolve %s: %s", r->host,
		    gai_strerror(rc));
		egress_refuse(e, 502, "egress_resolve_failed", why, v);
		return 502;
	}
	for (ai = res; ai != NULL && e->up == -1; ai = ai->ai_next) {
		q.addr = ai->ai_addr;
		if (intercept) {
			if (egress_conf_addr_ok(e->box, r->host, r->port,
			    ai->ai_addr, &w, e->policy, sizeof(e->policy)))
				w.action = EG_ALLOW;
		} else
			egress_conf_check(e->box, &q, &w, e->policy,
			    sizeof(e->policy));
		json_decref(w.set_headers);
		json_decref(w.set_query);
		if (w.action != EG_ALLOW) {
			if (allowed == 0) {
				v->action = EG_DENY;
				v->rule = w.rule;
				memcpy(v->reason, w.reason, sizeof(v->reason));
			}
			continue;
		}
		allowed++;
		v->action = EG_ALLOW;
		v->rule = w.rule;
		if ((fd = connect_to(ai, c->egress_connect_timeout_s)) < 0) {
			err = -fd;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		setsockopt(e->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		memcpy(&e->upaddr, ai->ai_addr, ai->ai_addrlen);
		e->up = fd;
	}
	freeaddrinfo(res);
	if (e->up != -1)
		return 0;
	if (allowed == 0) {
		egress_refuse(e, 403, "egress_denied", v->reason, v);
		return 403;
	}
	snprintf(why, whysz, "cannot connect to %s port %d: %s", r->host,
	    r->port, strerror(err));
	egress_refuse(e, 502, "egress_connect_failed", why, v);
	return 502;
}

/* A connected socket, or -errno; within timeout_s. */
static int
connect_to(const struct addrinfo *ai, long timeout_s)
{
	struct pollfd	 pfd;
	socklen_t	 len = sizeof(int);
	int		 fd, soerr = 0, flags;

	if ((fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) == -1)
		return -errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == -1 &&
	    errno != EINPROGRESS) {
		soerr = errno;
		close(fd);
		return -soerr;
	}
	pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
	if (poll(&pfd, 1, (int)(timeout_s * 1000)) != 1)
		soerr = ETIMEDOUT;
	else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1)
		soerr = errno;
	if (soerr != 0) {
		close(fd);
		return -soerr;
	}
	/* Each relayed read goes out at once: no wait for an ACK. */
	flags = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &flags, sizeof(flags));
	/* The relay blocks on writes (bounded by SO_SNDTIMEO). */
	flags = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	return fd;
}

/* Is this header hop-by-hop for a proxy (RFC 9110 §7.6.1)? */
static bool
hop_header(const char *line, size_t n)
{
	static const char *const hop[] = { "connection:", "keep-alive:",
	    "proxy-connection:", "proxy-authorization:", "te:", "trailer:",
	    "upgrade:" };
	size_t	 i, k;

	for (i = 0; i < sizeof(hop) / sizeof(hop[0]); i++) {
		k = strlen(hop[i]);
		if (n >= k && !strncasecmp(line, hop[i], k))
			return true;
	}
	return false;
}

/*
 * A plain HTTP request to the host: origin form, the client's headers
 * but the hop-by-hop ones, "Connection: close"; then any body bytes
 * already read.
 */
int
egress_send_head(struct econn *e, struct ereq *r, long long *up)
{
	struct buf	 b;
	const char	*line, *eol, *end = r->buf + r->head_len - 2;
	int		 rc = -1;

	buf_init(&b, EG_HEAD_MAX + 8192);
	if (buf_printf(&b, "%s %s HTTP/1.1\r\n", r->method, r->path) == -1)
		goto out;
	line = strstr(r->buf, "\r\n") + 2;
	for (; line < end; line = eol + 2) {
		eol = strstr(line, "\r\n");
		if (!hop_header(line, (size_t)(eol - line)) &&
		    buf_append(&b, line, (size_t)(eol + 2 - line)) == -1)
			goto out;
	}
	if (buf_puts(&b, "Connection: close\r\n\r\n") == -1 ||
	    egress_write_all(e->up, b.data, b.len) == -1 ||
	    egress_write_all(e->up, r->buf + r->head_len, r->len - r->head_len) ==
	    -1)
		goto out;
	*up += (long long)(b.len + r->len - r->head_len);
	rc = 0;
out:
	buf_free(&b);
	return rc;
}

/*
 * Bytes both ways until both sides have ended (a half-close passed on)
 * or nothing moves for egress.idle_timeout_s.
 */
void
egress_relay(struct econn *e, long long *up, long long *down, int *status)
{
	const struct config	*c = config_current();
	struct pollfd		 pfd[2] = { { .fd = e->fd, .events = POLLIN },
				    { .fd = e->up, .events = POLLIN } };
	char			*buf;
	ssize_t			 n;
	int			 i, open = 2;

	if ((buf = malloc(RELAY_BUF)) == NULL)
		return;
	while (open > 0 && poll(pfd, 2, (int)(c->egress_idle_timeout_s *
	    1000)) > 0) {
		for (i = 0; i < 2; i++) {
			if (pfd[i].fd < 0 || pfd[i].revents == 0)
				continue;
			n = recv(pfd[i].fd, buf, RELAY_BUF, 0);
			/* A plain request's answer: its status, for the log. */
			if (n > 12 && i == 1 && status != NULL && *down == 0 &&
			    !memcmp(buf, "HTTP/1.", 7) && buf[8] == ' ')
				*status = atoi(buf + 9);
			if (n > 0 && egress_write_all(i ? e->fd : e->up, buf,
			    (size_t)n) == 0) {
				*(i ? down : up) += n;
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				goto out;
			/* An end: pass it on, and read that side no more. */
			shutdown(i ? e->fd : e->up, SHUT_WR);
			pfd[i].fd = -1;
			open--;
		}
	}
out:
	free(buf);
}
