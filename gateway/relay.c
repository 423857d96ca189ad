/* SPDX-License-Identifier: MIT */
/*
 * relay.c: a request of the public sandbox API forwarded to the sandbox's
 * pincer-init over its control.sock, and the answer streamed back.
 *
 * No thread waits on a sandbox. The handler writes the request upstream
 * and parks the client's connection (libmicrohttpd suspend). One pump
 * thread watches every upstream socket; when pincer-init's answer head
 * arrives it resumes the connection, whose handler then queues a response
 * read from a bounded buffer. When the buffer runs dry the content reader
 * parks the connection again, and the pump resumes it on more data; when
 * the buffer is full the pump stops reading upstream (back-pressure).
 *
 * A parked connection does not notice its client leaving, so the pump
 * watches the client's socket (a dup) for a hang-up and then cuts the
 * upstream, which makes pincer-init kill the command or end the stream.
 * An idle event stream also gets an SSE comment every 15 s, so that
 * proxies in between keep it open.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

#include "pincer.h"

#define RELAY_BUF	(256 * 1024)	/* per exchange, upstream to client */
#define HEAD_MAX	16384
#define KEEPALIVE_MS	15000
#define KEEPALIVE	": keepalive\n\n"

struct relay {
	struct http_req		*req;
	struct MHD_Connection	*conn;
	struct sbx_ref		 ref;		/* released at the end */
	int			 fd;		/* upstream, pump's */
	int			 client;	/* dup, watched for hang-up */
	char			*buf;		/* RELAY_BUF, owned */
	size_t			 off, len;
	bool			 head_done;
	bool			 eof;
	bool			 failed;	/* upstream broke */
	bool			 paused;	/* buffer full: not reading */
	bool			 parked;	/* connection suspended */
	bool			 done;		/* request over: pump frees */
	bool			 reader;	/* response reads from us */
	bool			 sse;
	bool			 keepalive;	/* send a comment next */
	char			 tail[2];	/* last bytes sent */
	uint64_t		 last_out;
	int			 status;
	long long		 clen;		/* -1: until close */
	char			 ctype[128];
	struct relay		*next;
};

static void	*pump(void *);
static void	 pump_read(struct relay *);
static void	 pump_client_gone(struct relay *);
static void	 pump_sweep(void);
static void	 wake(struct relay *);
static int	 parse_head(struct relay *);
static void	 on_resume(struct http_req *, void *);
static void	 on_done(void *);
static ssize_t	 reader(void *, uint64_t, char *, size_t);
static void	 reader_free(void *);
static int	 write_all(int, const void *, size_t);
static void	 relay_free(struct relay *);
static void	 poke(void);

static pthread_mutex_t	 lock = PTHREAD_MUTEX_INITIALIZER;
static struct relay	*relays;		/* lock */
static long		 nrelays;		/* lock */
static int		 ep = -1;
static int		 pokefd[2] = { -1, -1 };
static pthread_t	 thread;
static bool		 started;
static bool		 quit;			/* lock */

int
relay_start(void)
{
	struct epoll_event	 ev = { .events = EPOLLIN, .data.ptr = NULL };

	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    pipe2(pokefd, O_CLOEXEC | O_NONBLOCK) == -1 ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, pokefd[0], &ev) == -1 ||
	    pthread_create(&thread, NULL, pump, NULL) != 0) {
		log_error("cannot start the sandbox relay", "%s",
		    strerror(errno));
		return -1;
	}
	started = true;
	return 0;
}

/*
 * pincerd is stopping: every exchange (or every event stream, which
 * would never end by itself) ends now; parked connections are
 * resumed so libmicrohttpd can finish them (it must not stop with one
 * suspended).
 */
void
relay_end_all(bool streams_only)
{
	struct relay	*r;

	if (!started)
		return;
	pthread_mutex_lock(&lock);
	for (r = relays; r != NULL; r = r->next) {
		if (streams_only && !r->sse)
			continue;
		r->eof = true;
		if (!r->head_done)
			r->failed = true;
		wake(r);
	}
	pthread_mutex_unlock(&lock);
}

/* After libmicrohttpd has stopped: nothing refers to a relay any more. */
void
relay_stop(void)
{
	struct relay	*r;

	if (!started)
		return;
	pthread_mutex_lock(&lock);
	quit = true;
	for (r = relays; r != NULL; r = r->next)
		r->done = true, r->reader = false;
	pthread_mutex_unlock(&lock);
	poke();
	pthread_join(thread, NULL);
	started = false;
	close(ep);
	close(pokefd[0]);
	close(pokefd[1]);
	ep = pokefd[0] = pokefd[1] = -1;
}

long
relay_active(void)
{
	long	 n;

	pthread_mutex_lock(&lock);
	n = nrelays;
	pthread_mutex_unlock(&lock);
	return n;
}

/* Blocking connect with a deadline: a full backlog waits, briefly. */
int
relay_connect(const char *path)
{
	struct sockaddr_un	 sun;
	struct timeval		 tv = { .tv_sec = 10 };
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		int	 e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/*
 * Forward the request (method, path below the sandbox, query, body) and
 * park it. The hold on the sandbox (ref) now belongs to the relay.
 */
void
relay_forward(struct http_req *req, struct sbx_ref *ref, const char *path,
    const char *query)
{
	struct relay		*r;
	struct buf		 head;
	const char		*body, *ctype;
	const union MHD_ConnectionInfo *ci;
	struct epoll_event	 ev;
	size_t			 blen;

	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (r->buf = malloc(RELAY_BUF)) == NULL) {
		free(r);
		sbx_release(ref);
		http_error(req, 500, "internal", "out of memory");
		return;
	}
	r->req = req;
	r->conn = http_req_conn(req);
	r->ref = *ref;
	r->client = -1;
	r->clen = -1;
	if ((r->fd = relay_connect(ref->control)) == -1) {
		http_error(req, 502, "sandbox_unreachable", "the sandbox's "
		    "control socket refused the call: %s", strerror(errno));
		goto fail;
	}
	http_req_body(req, &body, &blen);
	ctype = http_req_header(req, "Content-Type");
	buf_init(&head, HEAD_MAX);
	buf_printf(&head, "%s %s%s%s HTTP/1.1\r\nHost: sandbox\r\n"
	    "Connection: close\r\nContent-Length: %zu\r\n",
	    http_req_method(req), path, query != NULL && *query ? "?" : "",
	    query != NULL ? query : "", blen);
	if (ctype != NULL && strcspn(ctype, "\r\n") == strlen(ctype))
		buf_printf(&head, "Content-Type: %s\r\n", ctype);
	if (buf_puts(&head, "\r\n") == -1 ||
	    write_all(r->fd, head.data, head.len) == -1 ||
	    write_all(r->fd, body, blen) == -1) {
		buf_free(&head);
		http_error(req, 502, "sandbox_unreachable", "the request "
		    "could not be sent to the sandbox");
		goto fail;
	}
	buf_free(&head);
	fcntl(r->fd, F_SETFL, O_NONBLOCK);
	ci = MHD_get_connection_info(r->conn,
	    MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci != NULL)
		r->client = fcntl(ci->connect_fd, F_DUPFD_CLOEXEC, 0);
	r->parked = true;
	http_suspend(req, on_resume, on_done, r);
	pthread_mutex_lock(&lock);
	r->next = relays;
	relays = r;
	nrelays++;
	ev.events = EPOLLIN | EPOLLRDHUP;
	ev.data.ptr = r;
	epoll_ctl(ep, EPOLL_CTL_ADD, r->fd, &ev);
	if (r->client != -1) {
		ev.events = EPOLLRDHUP;
		ev.data.ptr = (char *)r + 1;	/* odd: the client side */
		epoll_ctl(ep, EPOLL_CTL_ADD, r->client, &ev);
	}
	pthread_mutex_unlock(&lock);
	return;
fail:
	if (r->fd != -1)
		close(r->fd);
	sbx_release(&r->ref);
	free(r->buf);
	free(r);
}

static void *
pump(void *arg)
{
	struct epoll_event	 evs[64];
	char			 b[64];
	int			 n, i;

	(void)arg;
	for (;;) {
		n = epoll_wait(ep, evs, 64, 1000);
		pthread_mutex_lock(&lock);
		for (i = 0; i < n; i++) {
			uintptr_t p = (uintptr_t)evs[i].data.ptr;

			if (p == 0) {
				while (read(pokefd[0], b, sizeof(b)) > 0)
					;
			} else if (p & 1)
				pump_client_gone((struct relay *)(p - 1));
			else
				pump_read((struct relay *)p);
		}
		pump_sweep();
		if (quit && relays == NULL) {
			pthread_mutex_unlock(&lock);
			return NULL;
		}
		pthread_mutex_unlock(&lock);
	}
}

/* Lock held. Read what fits; the head first. */
static void
pump_read(struct relay *r)
{
	ssize_t		 n;
	struct epoll_event ev = { .events = 0, .data.ptr = r };

	if (r->done || r->eof)
		return;
	if (r->off > 0 && r->off == r->len)
		r->off = r->len = 0;
	if (r->off > 0 && r->len == RELAY_BUF) {
		memmove(r->buf, r->buf + r->off, r->len - r->off);
		r->len -= r->off;
		r->off = 0;
	}
	while (r->len < RELAY_BUF) {
		n = read(r->fd, r->buf + r->len, RELAY_BUF - r->len);
		if (n > 0) {
			r->len += (size_t)n;
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			r->eof = true;
		if (n == 0 || errno != EINTR)
			break;
	}
	/* The head may come in the same burst as the end. */
	if (!r->head_done && parse_head(r) == -1)
		r->eof = r->failed = true;
	if (r->eof && !r->head_done)
		r->failed = true;
	if (r->len == RELAY_BUF && !r->eof) {
		/* Full: stop reading until the client takes some. */
		r->paused = true;
		epoll_ctl(ep, EPOLL_CTL_MOD, r->fd, &ev);
	}
	if (r->head_done || r->eof)
		wake(r);
}

/*
 * The client hung up: cut the upstream so pincer-init cancels (kills an
 * exec, ends a watch), and let the request end.
 */
static void
pump_client_gone(struct relay *r)
{
	if (r->client != -1) {
		epoll_ctl(ep, EPOLL_CTL_DEL, r->client, NULL);
		close(r->client);
		r->client = -1;
	}
	if (r->done)
		return;
	shutdown(r->fd, SHUT_RDWR);
	r->eof = true;
	if (!r->head_done)
		r->failed = true;
	wake(r);
}

/* Lock held: free what is over; keep idle event streams alive. */
static void
pump_sweep(void)
{
	struct relay	**rp, *r;
	uint64_t	 now = now_ms();

	for (rp = &relays; (r = *rp) != NULL; ) {
		if (r->done && !r->reader) {
			*rp = r->next;
			nrelays--;
			relay_free(r);
			continue;
		}
		if (r->sse && r->parked && !r->done && r->len == r->off &&
		    now - r->last_out > KEEPALIVE_MS && r->tail[0] == '\n' &&
		    r->tail[1] == '\n') {
			r->keepalive = true;
			wake(r);
		}
		rp = &r->next;
	}
}

/* Lock held: resume the parked connection. */
static void
wake(struct relay *r)
{
	if (!r->parked || r->done)
		return;
	r->parked = false;
	http_conn_resume(r->conn);
}

/*
 * pincer-init's answer head (docs/sandbox-api.md: status, Content-Type,
 * Content-Length or a stream until close). The rest of the buffer is the
 * body. 0: not complete yet; -1: not HTTP.
 */
static int
parse_head(struct relay *r)
{
	char	 head[HEAD_MAX + 1], *end, *line, *nl, *v;
	size_t	 hl;

	/* Found in place: the body after it is binary and stays untouched. */
	if ((end = memmem(r->buf, r->len, "\r\n\r\n", 4)) == NULL)
		return r->len >= HEAD_MAX ? -1 : 0;
	hl = (size_t)(end - r->buf) + 4;
	if (hl > HEAD_MAX)
		return -1;
	memcpy(head, r->buf, hl - 4);
	head[hl - 4] = '\0';
	if (strncmp(head, "HTTP/1.", 7) != 0 || strlen(head) < 12)
		return -1;
	r->status = atoi(head + 9);
	if (r->status < 100 || r->status > 599)
		return -1;
	snprintf(r->ctype, sizeof(r->ctype), "application/octet-stream");
	for (line = strstr(head, "\r\n"); line != NULL; line = nl) {
		line += 2;
		nl = strstr(line, "\r\n");
		if (nl != NULL)
			*nl = '\0';
		if ((v = strchr(line, ':')) == NULL)
			continue;
		*v++ = '\0';
		v += strspn(v, " \t");
		if (!strcasecmp(line, "Content-Type"))
			snprintf(r->ctype, sizeof(r->ctype), "%s", v);
		else if (!strcasecmp(line, "Content-Length"))
			r->clen = strtoll(v, NULL, 10);
	}
	r->sse = strncmp(r->ctype, "text/event-stream", 17) == 0;
	r->tail[0] = r->tail[1] = '\n';
	r->off = hl;
	r->head_done = true;
	r->last_out = now_ms();
	return 1;
}

/* An HTTP thread: the head is here (or it never will be). */
static void
on_resume(struct http_req *req, void *arg)
{
	struct relay		*r = arg;
	struct MHD_Response	*resp;
	int			 status;

	pthread_mutex_lock(&lock);
	if (!r->head_done) {
		pthread_mutex_unlock(&lock);
		http_error(req, 502, "sandbox_failed", "the sandbox ended "
		    "the call without an answer");
		return;
	}
	status = r->status;
	r->reader = true;
	pthread_mutex_unlock(&lock);
	resp = MHD_create_response_from_callback(r->clen >= 0 ?
	    (uint64_t)r->clen : MHD_SIZE_UNKNOWN, 32768, reader, r,
	    reader_free);
	if (resp == NULL) {
		reader_free(r);
		http_error(req, 500, "internal", "out of memory");
		return;
	}
	MHD_add_response_header(resp, "Content-Type", r->ctype);
	if (r->sse) {
		MHD_add_response_header(resp, "Cache-Control", "no-store");
		/* nginx would buffer the stream whole without this. */
		MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	}
	http_reply(req, status, resp);
}

/*
 * The request is over, answered or not: the hold on the sandbox goes.
 * Once done is set the pump may free the relay at any moment, so the
 * hold is taken out of it first.
 */
static void
on_done(void *arg)
{
	struct relay	*r = arg;
	struct sbx_ref	 ref;

	pthread_mutex_lock(&lock);
	ref = r->ref;
	r->ref.held = false;
	if (r->fd != -1)
		shutdown(r->fd, SHUT_RDWR);
	/* The dup would keep the client's socket open after MHD's close. */
	if (r->client != -1) {
		epoll_ctl(ep, EPOLL_CTL_DEL, r->client, NULL);
		close(r->client);
		r->client = -1;
	}
	r->done = true;
	pthread_mutex_unlock(&lock);
	sbx_release(&ref);
	poke();
}

/* libmicrohttpd pulls the body; an empty buffer parks the connection. */
static ssize_t
reader(void *cls, uint64_t pos, char *out, size_t max)
{
	struct relay		*r = cls;
	struct epoll_event	 ev = { .events = EPOLLIN | EPOLLRDHUP };
	size_t			 n;

	(void)pos;
	pthread_mutex_lock(&lock);
	if (r->keepalive) {
		r->keepalive = false;
		n = strlen(KEEPALIVE) < max ? strlen(KEEPALIVE) : 0;
		memcpy(out, KEEPALIVE, n);
		r->last_out = now_ms();
		pthread_mutex_unlock(&lock);
		return (ssize_t)n;
	}
	if (r->len > r->off) {
		n = r->len - r->off < max ? r->len - r->off : max;
		memcpy(out, r->buf + r->off, n);
		r->off += n;
		r->tail[0] = n > 1 ? out[n - 2] : r->tail[1];
		r->tail[1] = out[n - 1];
		r->last_out = now_ms();
		if (r->paused) {
			r->paused = false;
			ev.data.ptr = r;
			epoll_ctl(ep, EPOLL_CTL_MOD, r->fd, &ev);
		}
		pthread_mutex_unlock(&lock);
		return (ssize_t)n;
	}
	if (r->eof || r->done) {
		pthread_mutex_unlock(&lock);
		return r->failed || (r->clen >= 0 && pos < (uint64_t)r->clen) ?
		    MHD_CONTENT_READER_END_WITH_ERROR :
		    MHD_CONTENT_READER_END_OF_STREAM;
	}
	r->parked = true;
	MHD_suspend_connection(r->conn);
	pthread_mutex_unlock(&lock);
	return 0;
}

static void
reader_free(void *cls)
{
	struct relay	*r = cls;

	pthread_mutex_lock(&lock);
	r->reader = false;
	pthread_mutex_unlock(&lock);
	poke();
}

static void
relay_free(struct relay *r)
{
	if (r->fd != -1) {
		epoll_ctl(ep, EPOLL_CTL_DEL, r->fd, NULL);
		close(r->fd);
	}
	if (r->client != -1) {
		epoll_ctl(ep, EPOLL_CTL_DEL, r->client, NULL);
		close(r->client);
	}
	free(r->buf);
	free(r);
}

static int
write_all(int fd, const void *p, size_t n)
{
	const char	*c = p;
	ssize_t		 w;

	while (n > 0) {
		w = send(fd, c, n, MSG_NOSIGNAL);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static void
poke(void)
{
	char	 c = 'p';

	if (pokefd[1] != -1 && write(pokefd[1], &c, 1) == -1 &&
	    errno != EAGAIN)
		log_warn("cannot wake the relay", "%s", strerror(errno));
}
