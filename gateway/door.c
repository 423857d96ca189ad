/* SPDX-License-Identifier: MIT */
/*
 * door.c: the front door. One listening socket; a thread accepts, peeks at
 * the head of the first request, and hands the socket untouched to
 * libwebsockets (a WebSocket upgrade on a WebSocket route) or to
 * libmicrohttpd (everything else). Neither library can take a connection the
 * other has begun, so the choice is made before either reads a byte.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "pincer.h"

enum door_tag { TAG_PENDING, TAG_LISTENER };

/* A connection whose head has not arrived yet, or that is being closed. */
struct pending {
	enum door_tag		 tag;	/* first: epoll data says what it is */
	int			 fd;
	struct sockaddr_storage	 addr;
	socklen_t		 alen;
	uint64_t		 deadline;	/* ms, CLOCK_MONOTONIC */
	bool			 closing;	/* answered; draining input */
	struct pending		*prev;
	struct pending		*next;
};

/*
 * A Unix listening socket: pincerd.sock, and each running sandbox's
 * gateway.sock. Their connections take the same path as TCP ones; who
 * they are is decided later from the socket that accepted them.
 */
struct listener {
	enum door_tag		 tag;
	int			 fd;
	bool			 gone;	/* door_unix_remove: door closes */
	struct listener		*next;
};

#define LINGER_MS	2000	/* time an answered peer has to read it */
#define MAX_EVENTS	64

static void	*door_main(void *);
static void	 door_accept(void);
static void	 door_accept_unix(struct listener *);
static void	 door_reap_listeners(void);
static void	 door_readable(struct pending *);
static void	 door_route(struct pending *, const struct head *);
static void	 door_egress(struct pending *);
static void	 door_egress_fd(struct pending *, size_t);
static int	 tcp_client(int);
static void	 door_expire(void);
static int	 door_timeout(void);
static void	 pending_add(int, const struct sockaddr_storage *, socklen_t);
static void	 pending_unlink(struct pending *);
static void	 pending_close(struct pending *);
static void	 pending_reject(struct pending *, int, const char *,
		    const char *);

static int		 listen_fd = -1;
static int		 ep = -1;
static int		 wake_fd = -1;
static pthread_t	 door_thread;
static bool		 door_running;
static bool		 stop_accepting;	/* atomic */
static bool		 stopping;		/* atomic */
static long		 open_conns;		/* atomic */
static long		 nclosing;		/* door thread only */
static struct pending	*plist;			/* door thread only */
static char		 peekbuf[65536 + 1];	/* door thread only */
static pthread_mutex_t	 lis_lock = PTHREAD_MUTEX_INITIALIZER;
static struct listener	*listeners;		/* lis_lock */

int
door_start(const struct config *c, char *bound, size_t boundsz)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	struct epoll_event	 ev;
	int			 one = 1, zero = 0;

	if (net_parse_listen(c->listen, &ss, &len) == -1) {
		log_error("bad listen address", "%s", c->listen);
		return -1;
	}
	listen_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (listen_fd == -1)
		goto fail;
	setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* [::] takes IPv4 too: one listener for both families. */
	if (ss.ss_family == AF_INET6)
		setsockopt(listen_fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero,
		    sizeof(zero));
	if (bind(listen_fd, (struct sockaddr *)&ss, len) == -1 ||
	    listen(listen_fd, 1024) == -1)
		goto fail;
	len = sizeof(ss);
	getsockname(listen_fd, (struct sockaddr *)&ss, &len);
	net_sockaddr_str((struct sockaddr *)&ss, bound, boundsz);

	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    (wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		goto fail;
	ev.events = EPOLLIN;
	ev.data.ptr = &listen_fd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev) == -1)
		goto fail;
	ev.data.ptr = &wake_fd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, wake_fd, &ev) == -1)
		goto fail;
	if (pthread_create(&door_thread, NULL, door_main, NULL) != 0)
		goto fail;
	door_running = true;
	return 0;
fail:
	log_error("cannot listen", "%s: %s", c->listen, strerror(errno));
	if (listen_fd != -1)
		close(listen_fd);
	if (ep != -1)
		close(ep);
	if (wake_fd != -1)
		close(wake_fd);
	listen_fd = ep = wake_fd = -1;
	return -1;
}

/* SIGTERM: refuse new connections at once; the ones we have go on. */
void
door_stop_accepting(void)
{
	uint64_t	 one = 1;
	ssize_t		 w;

	__atomic_store_n(&stop_accepting, true, __ATOMIC_RELEASE);
	if (wake_fd != -1) {
		w = write(wake_fd, &one, sizeof(one));
		(void)w;
	}
}

void
door_stop(void)
{
	uint64_t	 one = 1;
	ssize_t		 w;

	if (!door_running)
		return;
	__atomic_store_n(&stopping, true, __ATOMIC_RELEASE);
	w = write(wake_fd, &one, sizeof(one));
	(void)w;
	pthread_join(door_thread, NULL);
	door_running = false;
	while (plist != NULL)
		pending_close(plist);
	pthread_mutex_lock(&lis_lock);
	while (listeners != NULL) {
		struct listener	*l = listeners;

		listeners = l->next;
		close(l->fd);
		free(l);
	}
	pthread_mutex_unlock(&lis_lock);
	if (listen_fd != -1)
		close(listen_fd);
	close(ep);
	close(wake_fd);
	listen_fd = ep = wake_fd = -1;
}

/* Called by whichever library owned a connection when it closes it. */
void
door_conn_closed(void)
{
	__atomic_sub_fetch(&open_conns, 1, __ATOMIC_RELAXED);
}

/*
 * A connection accepted elsewhere (a browser context's proxy port) and
 * handed to a library that calls door_conn_closed() when it ends:
 * counted as the door counts its own, in the room sandboxes have
 * beyond the TCP limit. -1: no room, and not counted.
 */
int
door_conn_opened(void)
{
	if (__atomic_add_fetch(&open_conns, 1, __ATOMIC_RELAXED) >
	    config_current()->max_connections * 2) {
		door_conn_closed();
		return -1;
	}
	return 0;
}

long
door_open_connections(void)
{
	return __atomic_load_n(&open_conns, __ATOMIC_RELAXED);
}

/*
 * Take a listening Unix socket (non-blocking); the door owns it from here
 * and closes it after door_unix_remove.
 */
int
door_unix_add(int fd)
{
	struct epoll_event	 ev;
	struct listener		*l;

	if (ep == -1 || (l = calloc(1, sizeof(*l))) == NULL)
		return -1;
	l->tag = TAG_LISTENER;
	l->fd = fd;
	pthread_mutex_lock(&lis_lock);
	l->next = listeners;
	listeners = l;
	ev.events = EPOLLIN;
	ev.data.ptr = l;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
		listeners = l->next;
		pthread_mutex_unlock(&lis_lock);
		free(l);
		return -1;
	}
	pthread_mutex_unlock(&lis_lock);
	return 0;
}

/*
 * Stop accepting on fd. The door thread closes it: an event for it may
 * be in the batch that thread is working through.
 */
void
door_unix_remove(int fd)
{
	struct listener	*l;
	uint64_t	 one = 1;
	ssize_t		 w;

	pthread_mutex_lock(&lis_lock);
	for (l = listeners; l != NULL; l = l->next)
		if (l->fd == fd && !l->gone) {
			l->gone = true;
			epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
			break;
		}
	pthread_mutex_unlock(&lis_lock);
	if (wake_fd != -1) {
		w = write(wake_fd, &one, sizeof(one));
		(void)w;
	}
}

/*
 * Answer a connection no library owns yet, with the same JSON error body
 * the handlers use. The answer is small, so a non-blocking send fits it in
 * the socket buffer of any live peer.
 */
int
door_reject(int fd, const char *rid, int status, const char *code,
    const char *msg)
{
	struct buf	 body, out;
	ssize_t		 w;
	int		 rc = 0;

	buf_init(&body, 4096);
	buf_init(&out, 8192);
	http_error_body(&body, code, msg);
	buf_printf(&out, "HTTP/1.1 %d %s\r\nContent-Type: application/json"
	    "\r\nContent-Length: %zu\r\nConnection: close\r\n"
	    "X-Request-Id: %s\r\n%s\r\n", status, http_status_text(status),
	    body.len, rid, status == 429 ? "Retry-After: 1\r\n" : "");
	buf_append(&out, body.data, body.len);
	w = send(fd, out.data, out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (w != (ssize_t)out.len)
		rc = -1;
	buf_free(&body);
	buf_free(&out);
	metrics_request(ROUTE_IDX_NONE, status, 0);
	return rc;
}

static void *
door_main(void *arg)
{
	struct epoll_event	 evs[MAX_EVENTS];
	uint64_t		 v;
	ssize_t			 r;
	int			 n, i;

	while (!__atomic_load_n(&stopping, __ATOMIC_ACQUIRE)) {
		n = epoll_wait(ep, evs, MAX_EVENTS, door_timeout());
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr == &listen_fd)
				door_accept();
			else if (evs[i].data.ptr == &wake_fd)
				r = read(wake_fd, &v, sizeof(v)), (void)r;
			else if (*(enum door_tag *)evs[i].data.ptr ==
			    TAG_LISTENER)
				door_accept_unix(evs[i].data.ptr);
			else
				door_readable(evs[i].data.ptr);
		}
		door_reap_listeners();
		if (__atomic_load_n(&stop_accepting, __ATOMIC_ACQUIRE) &&
		    listen_fd != -1) {
			epoll_ctl(ep, EPOLL_CTL_DEL, listen_fd, NULL);
			close(listen_fd);
			listen_fd = -1;
		}
		door_expire();
	}
	return NULL;
}

static void
door_accept(void)
{
	const struct config	*c = config_current();
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	int			 fd, one = 1;

	for (;;) {
		len = sizeof(ss);
		fd = accept4(listen_fd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN)
				log_warn("accept failed", "%s",
				    strerror(errno));
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (__atomic_add_fetch(&open_conns, 1, __ATOMIC_RELAXED) >
		    c->max_connections) {
			/*
			 * Over the limit, still answer: a lingering close
			 * costs one fd for two seconds, and past twice the
			 * limit even that stops.
			 */
			if (nclosing > c->max_connections) {
				close(fd);
				door_conn_closed();
				continue;
			}
			pending_add(fd, &ss, len);
			pending_reject(plist, 503, "too_many_connections",
			    "the gateway has too many open connections; "
			    "try again shortly");
			continue;
		}
		pending_add(fd, &ss, len);
	}
}

/*
 * The peer of a Unix connection has no address worth keeping; the
 * address kept is the listener's path (getsockname), which is what says
 * who the caller is.
 */
static void
door_accept_unix(struct listener *l)
{
	const struct config	*c = config_current();
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	int			 fd;

	while ((fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK |
	    SOCK_CLOEXEC)) != -1) {
		len = sizeof(ss);
		memset(&ss, 0, sizeof(ss));
		if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1) {
			close(fd);
			continue;
		}
		/* Sandboxes get room of their own beyond the TCP limit. */
		if (__atomic_add_fetch(&open_conns, 1, __ATOMIC_RELAXED) >
		    c->max_connections * 2) {
			close(fd);
			door_conn_closed();
			continue;
		}
		pending_add(fd, &ss, len);
	}
}

static void
door_reap_listeners(void)
{
	struct listener	**lp, *l;

	pthread_mutex_lock(&lis_lock);
	for (lp = &listeners; (l = *lp) != NULL; )
		if (l->gone) {
			*lp = l->next;
			close(l->fd);
			free(l);
		} else
			lp = &l->next;
	pthread_mutex_unlock(&lis_lock);
}

static void
door_readable(struct pending *p)
{
	const struct config	*c = config_current();
	struct head		 h;
	size_t			 max = (size_t)c->max_header_bytes;
	ssize_t			 n;

	if (p->closing) {
		while ((n = recv(p->fd, peekbuf, sizeof(peekbuf), 0)) > 0)
			;
		if (n == 0 || errno != EAGAIN)
			pending_close(p);
		return;
	}
	n = recv(p->fd, peekbuf, max + 1, MSG_PEEK);
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
		pending_close(p);
		return;
	}
	if (n == -1)
		return;
	switch (head_parse(peekbuf, (size_t)n, &h)) {
	case HEAD_INCOMPLETE:
		if ((size_t)n > max)
			pending_reject(p, 431, "header_too_large",
			    "the request head is larger than "
			    "http.max_header_bytes");
		return;
	case HEAD_BAD:
		pending_reject(p, 400, "bad_request",
		    "the request is not valid HTTP/1.1");
		return;
	case HEAD_OK:
		if (p->addr.ss_family == AF_UNIX && egress_wants(&h))
			door_egress(p);
		else if (p->addr.ss_family == AF_UNIX &&
		    !strcmp(h.method, EGRESS_FD_METHOD))
			door_egress_fd(p, h.head_len);
		else if (h.head_len > max)
			pending_reject(p, 431, "header_too_large",
			    "the request head is larger than "
			    "http.max_header_bytes");
		else if (h.length_bad)
			pending_reject(p, 400, "bad_request", "Content-Length "
			    "must be one decimal number");
		else if (h.has_length && h.content_length >
		    (unsigned long long)route_body_max(h.method, h.path))
			pending_reject(p, 413, "body_too_large", "the request "
			    "body is larger than http.max_body_bytes");
		else
			door_route(p, &h);
		return;
	}
}

/* A sandbox's proxy request (its 127.0.0.1:3128): egress.c's. */
static void
door_egress(struct pending *p)
{
	struct identity	 id;
	int		 fd = p->fd;

	if (auth_socket_identity(fd, &id) != 1 || id.kind != ID_SANDBOX) {
		pending_reject(p, 400, "bad_request", "proxy requests are "
		    "served to sandboxes only");
		return;
	}
	epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
	pending_unlink(p);
	free(p);
	if (egress_adopt(fd, id.user) == -1) {
		close(fd);
		door_conn_closed();
	}
}

/*
 * pincer-init hands over the socket of a client of the sandbox's
 * 127.0.0.1:3128 (SCM_RIGHTS, with a head of EGRESS_FD_METHOD) instead
 * of relaying it: a hop and two copies fewer on every byte that goes out.
 * The sandbox is known by this Unix socket, as for a relayed request; a
 * process there could pass any socket of its own, so only a connected
 * TCP one is taken, and it is served exactly as the relayed one would
 * be. It takes over the Unix connection's place in the count.
 */
static void
door_egress_fd(struct pending *p, size_t hlen)
{
	union {
		struct cmsghdr	 h;
		char		 b[CMSG_SPACE(4 * sizeof(int))];
	}			 cm;
	struct identity		 id;
	struct cmsghdr		*c;
	struct msghdr		 mh;
	struct iovec		 iov;
	size_t			 i, n;
	int			 fd = -1, f, ufd = p->fd;

	if (hlen > sizeof(peekbuf) || auth_socket_identity(ufd, &id) != 1 ||
	    id.kind != ID_SANDBOX) {
		pending_reject(p, 400, "bad_request", "a socket is handed "
		    "over by pincer-init only");
		return;
	}
	iov = (struct iovec){ .iov_base = peekbuf, .iov_len = hlen };
	mh = (struct msghdr){ .msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = cm.b, .msg_controllen = sizeof(cm.b) };
	if (recvmsg(ufd, &mh, MSG_CMSG_CLOEXEC) != (ssize_t)hlen) {
		pending_close(p);
		return;
	}
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(f));
			if (fd == -1)
				fd = f;
			else
				close(f);
		}
	}
	if (tcp_client(fd) == -1) {
		if (fd != -1)
			close(fd);
		pending_close(p);
		return;
	}
	epoll_ctl(ep, EPOLL_CTL_DEL, ufd, NULL);
	pending_unlink(p);
	free(p);
	close(ufd);
	if (egress_adopt(fd, id.user) == -1) {
		close(fd);
		door_conn_closed();
	}
}

/* A connected TCP socket, or -1. */
static int
tcp_client(int fd)
{
	socklen_t	 len = sizeof(int);
	int		 v;

	if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len) == -1 ||
	    (v != AF_INET && v != AF_INET6))
		return -1;
	len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) == -1 ||
	    v != SOCK_STREAM)
		return -1;
	len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) == -1 ||
	    v != 0)
		return -1;
	return 0;
}

/* The head is complete: give the socket away, untouched. */
static void
door_route(struct pending *p, const struct head *h)
{
	const struct config	*c = config_current();
	struct ipaddr		 ip;
	int			 fd = p->fd;
	long			 wait;

	if (h->upgrade_websocket && route_find_ws(h->path) != NULL) {
		net_client_ip((struct sockaddr *)&p->addr, h->forwarded_for,
		    &ip);
		/* Unix callers are known by their socket, not rate-limited
		 * by address. */
		wait = c->rate_limit_rps > 0 && p->addr.ss_family != AF_UNIX ?
		    ratelimit_take(&ip,
		    c->rate_limit_rps, c->rate_limit_burst) : 0;
		if (wait > 0) {
			pending_reject(p, 429, "rate_limited",
			    "too many requests from this address");
			return;
		}
		epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
		pending_unlink(p);
		free(p);
		if (ws_adopt(fd) == -1) {
			close(fd);
			door_conn_closed();
		}
		return;
	}
	epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
	pending_unlink(p);
	/* From here the socket is http.c's, refused or not. */
	if (http_adopt(fd, (struct sockaddr *)&p->addr, p->alen) == -1)
		door_conn_closed();
	free(p);
}

static void
door_expire(void)
{
	struct pending	*p, *next;
	uint64_t	 now = now_ms();

	for (p = plist; p != NULL; p = next) {
		next = p->next;
		if (p->deadline > now)
			continue;
		if (p->closing)
			pending_close(p);
		else
			pending_reject(p, 408, "request_timeout",
			    "the request head did not arrive within "
			    "http.header_timeout_s");
	}
}

static int
door_timeout(void)
{
	struct pending	*p;
	uint64_t	 now = now_ms(), first = UINT64_MAX;

	for (p = plist; p != NULL; p = p->next)
		if (p->deadline < first)
			first = p->deadline;
	if (first == UINT64_MAX)
		return -1;
	return first <= now ? 0 : (int)(first - now);
}

static void
pending_add(int fd, const struct sockaddr_storage *ss, socklen_t len)
{
	const struct config	*c = config_current();
	struct epoll_event	 ev;
	struct pending		*p;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		close(fd);
		door_conn_closed();
		return;
	}
	p->fd = fd;
	p->addr = *ss;
	p->alen = len;
	p->deadline = now_ms() + (uint64_t)c->header_timeout_s * 1000;
	/*
	 * Edge-triggered: a peek leaves the bytes in the socket, so a
	 * level-triggered wait would wake at once, forever. Each new segment
	 * raises a new edge.
	 */
	ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
	ev.data.ptr = p;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
		free(p);
		close(fd);
		door_conn_closed();
		return;
	}
	p->next = plist;
	if (plist != NULL)
		plist->prev = p;
	plist = p;
}

static void
pending_unlink(struct pending *p)
{
	if (p->closing)
		nclosing--;
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		plist = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
}

static void
pending_close(struct pending *p)
{
	pending_unlink(p);
	close(p->fd);
	door_conn_closed();
	free(p);
}

/*
 * Answer, then close gracefully: shut our side, and read and discard what
 * the peer still sends until it closes or the linger time is up. Closing
 * with unread input would reset the connection, and the peer could lose
 * the answer before reading it.
 */
static void
pending_reject(struct pending *p, int status, const char *code,
    const char *msg)
{
	struct logline	 l;
	char		 ip[80], rid[17];

	/* The id the client is given is the one in the log line. */
	http_request_id(rid);
	if (log_begin(&l, LOG_INFO, "connection refused")) {
		net_sockaddr_str((struct sockaddr *)&p->addr, ip, sizeof(ip));
		log_str(&l, "rid", rid);
		log_int(&l, "status", status);
		log_str(&l, "code", code);
		log_str(&l, "peer", ip);
		log_end(&l);
	}
	door_reject(p->fd, rid, status, code, msg);
	shutdown(p->fd, SHUT_WR);
	p->closing = true;
	nclosing++;
	p->deadline = now_ms() + LINGER_MS;
	door_readable(p);
}
