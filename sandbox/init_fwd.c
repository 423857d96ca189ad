/* SPDX-License-Identifier: MIT */
/*
 * init_fwd.c: the three forwarders, which relay 127.0.0.1:8080, :9222
 * and :3128 inside the sandbox to the gateway's Unix socket, both ways,
 * each side's input a bounded buffer and its end a half-close.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "init.h"

#define GATEWAY_SOCK	"/run/pincer/gateway.sock"
#define FWD_BUF		(64 * 1024)	/* per direction of a relay */
#define FWD_TRIES	50		/* gateway backlog full: retries */
#define FWD_RETRY_MS	100
#define EGRESS_PORT	3128
/* The head that hands a socket over (gateway/pincer.h says the same). */
#define PASS_HEAD	"X-PINCER-FD / HTTP/1.1\r\n\r\n"

/*
 * One forwarded connection: s[0] is the TCP client, s[1] the gateway's
 * Unix socket. Each side's buf holds what was read from it and is not yet
 * written to the other side; eof: it will send no more.
 */
struct relay;
struct rside {
	struct relay	*r;
	int		 fd;
	uint32_t	 ev;		/* registered events, 0: none */
	bool		 eof;
	bool		 shut;		/* the other side's write is shut */
	char		*buf;		/* FWD_BUF bytes, owned by the relay */
	size_t		 off, len;
};
struct relay {
	struct rside	 s[2];
	bool		 connected;
	bool		 pass;		/* hand s[0] over, do not relay */
	int		 tries;
	long		 timer;
};

static void	fwd_accept(void *, uint32_t);
static void	relay_connect(void *);
static void	relay_io(void *, uint32_t);
static void	relay_pump(struct relay *);
static void	relay_update(struct relay *);
static void	relay_close(struct relay *);
static void	relay_ready(struct relay *);

static int	egress_lfd = -1;	/* the listener of 127.0.0.1:3128 */

static const int fwd_ports[] = { 8080, 9222, 3128 };

/* A port that is taken is told and skipped; the rest goes on. */
void
fwd_start(void)
{
	struct sockaddr_in	 sin;
	size_t			 i;
	int			 fd, one = 1;

	for (i = 0; i < sizeof(fwd_ports) / sizeof(fwd_ports[0]); i++) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)fwd_ports[i]);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0)) == -1) {
			init_log("forwarder :%d: %s", fwd_ports[i],
			    strerror(errno));
			continue;
		}
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
		    sizeof(one));
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
		    listen(fd, 64) == -1 ||
		    loop_add(fd, EPOLLIN, fwd_accept, (void *)(intptr_t)fd) ==
		    -1) {
			init_log("forwarder 127.0.0.1:%d: %s", fwd_ports[i],
			    strerror(errno));
			close(fd);
		} else if (fwd_ports[i] == EGRESS_PORT)
			egress_lfd = fd;
	}
}

static void
fwd_accept(void *arg, uint32_t events)
{
	struct relay	*r;
	int		 lfd = (int)(intptr_t)arg, fd, i, one = 1;

	(void)events;
	for (i = 0; i < 16; i++) {
		if ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK |
		    SOCK_CLOEXEC)) == -1) {
			loop_accept_pause(lfd, errno, fwd_accept);
			return;
		}
		if ((r = calloc(1, sizeof(*r) + 2 * FWD_BUF)) == NULL) {
			close(fd);
			continue;
		}
		/* What the gateway sent in two writes must not wait for an
		 * ACK (Nagle, against the client's delayed ACK: 40 ms). */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		r->s[0].fd = fd;
		r->s[0].buf = (char *)(r + 1);
		r->s[1].buf = r->s[0].buf + FWD_BUF;
		r->s[0].r = r->s[1].r = r;
		r->pass = lfd == egress_lfd;
		if ((r->s[1].fd = socket(AF_UNIX, SOCK_STREAM |
		    SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1) {
			close(fd);
			free(r);
			continue;
		}
		relay_connect(r);
	}
}

/*
 * A Unix socket connects at once or not at all: EAGAIN means the
 * gateway's backlog is full, and the connect is tried again shortly.
 */
static void
relay_connect(void *arg)
{
	static uint64_t		 told;
	struct relay		*r = arg;
	struct sockaddr_un	 sun;

	r->timer = 0;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, GATEWAY_SOCK, sizeof(GATEWAY_SOCK));
	if (connect(r->s[1].fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		r->connected = true;
		relay_ready(r);
		return;
	}
	else if (errno == EAGAIN && ++r->tries < FWD_TRIES) {
		if ((r->timer = loop_timer_add(FWD_RETRY_MS, relay_connect,
		    r)) == -1)
			goto fail;
		return;
	} else if (errno != EINPROGRESS) {
		/* Told once a minute at most: a client may retry in a loop. */
		if (loop_now_ms() - told >= 60000 || told == 0) {
			told = loop_now_ms();
			init_log("forwarder: %s: %s", GATEWAY_SOCK,
			    strerror(errno));
		}
		goto fail;
	}
	relay_update(r);
	return;
fail:
	r->timer = 0;
	relay_close(r);
}

static void
relay_io(void *arg, uint32_t events)
{
	struct rside	*s = arg;
	struct relay	*r = s->r;
	socklen_t	 len = sizeof(int);
	int		 err = 0;

	if (!r->connected && s == &r->s[1]) {
		if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) ==
		    -1 || err != 0) {
			relay_close(r);
			return;
		}
		r->connected = true;
		relay_ready(r);
		return;
	}
	(void)events;
	relay_pump(r);
}

/*
 * Connected to the gateway. An egress client's socket is handed over
 * (the proxy then reads and writes it itself: no relay hop on the way
 * out); the others are relayed. A hand-over that fails is relayed too.
 */
static void
relay_ready(struct relay *r)
{
	union {
		struct cmsghdr	 h;
		char		 b[CMSG_SPACE(sizeof(int))];
	}		 cm;
	struct iovec	 iov = { .iov_base = (void *)PASS_HEAD,
			    .iov_len = sizeof(PASS_HEAD) - 1 };
	struct msghdr	 mh = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = cm.b, .msg_controllen =
			    sizeof(cm.b) };
	struct cmsghdr	*c;

	if (r->pass) {
		memset(cm.b, 0, sizeof(cm.b));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &r->s[0].fd, sizeof(int));
		if (sendmsg(r->s[1].fd, &mh, MSG_NOSIGNAL) ==
		    (ssize_t)iov.iov_len) {
			relay_close(r);
			return;
		}
	}
	relay_update(r);
}

/*
 * Moves what it can both ways without blocking; each side's end of
 * input becomes a half-close of the other once its buffer is written.
 */
static void
relay_pump(struct relay *r)
{
	struct rside	*s, *o;
	ssize_t		 n;
	int		 i;

	for (i = 0; i < 2; i++) {
		s = &r->s[i];
		o = &r->s[1 - i];
		if (!s->eof && s->len < FWD_BUF && (r->connected || i == 0)) {
			n = recv(s->fd, s->buf + s->len, FWD_BUF - s->len, 0);
			if (n > 0)
				s->len += (size_t)n;
			else if (n == 0)
				s->eof = true;
			else if (errno != EAGAIN && errno != EINTR)
				goto fail;
		}
		if (!r->connected)
			continue;
		if (s->off < s->len) {
			n = send(o->fd, s->buf + s->off, s->len - s->off,
			    MSG_NOSIGNAL);
			if (n > 0)
				s->off += (size_t)n;
			else if (n == -1 && errno != EAGAIN && errno != EINTR)
				goto fail;
		}
		if (s->off == s->len)
			s->off = s->len = 0;
		if (s->eof && s->len == 0 && !s->shut) {
			(void)shutdown(o->fd, SHUT_WR);
			s->shut = true;
		}
	}
	if (r->s[0].shut && r->s[1].shut)
		goto fail;
	relay_update(r);
	return;
fail:
	relay_close(r);
}

static void
relay_update(struct relay *r)
{
	struct rside	*s, *o;
	uint32_t	 ev;
	int		 i, rc = 0;

	for (i = 0; i < 2; i++) {
		s = &r->s[i];
		o = &r->s[1 - i];
		ev = 0;
		if (!s->eof && s->len < FWD_BUF && (r->connected || i == 0))
			ev |= EPOLLIN;
		if ((r->connected && o->len > o->off) ||
		    (!r->connected && i == 1 && r->timer == 0))
			ev |= EPOLLOUT;
		if (ev == s->ev)
			continue;
		/* Nothing to wait for: off epoll, or a HUP would spin. */
		if (ev == 0)
			loop_del(s->fd);
		else if (s->ev == 0)
			rc |= loop_add(s->fd, ev, relay_io, s);
		else
			rc |= loop_mod(s->fd, ev, relay_io, s);
		s->ev = ev;
	}
	if (rc != 0)
		relay_close(r);
}

static void
relay_close(struct relay *r)
{
	int	 i;

	loop_timer_cancel(r->timer);
	for (i = 0; i < 2; i++) {
		loop_del(r->s[i].fd);
		close(r->s[i].fd);
	}
	free(r);
}
