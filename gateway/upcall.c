/* SPDX-License-Identifier: MIT */
/*
 * upcall.c: outbound HTTP calls (LLM providers now; chat platforms and
 * object storage later) on one thread: a libcurl multi handle driven by
 * epoll through curl_multi_socket_action. No thread waits on a call,
 * however slow the far end; a thousand open streams are a thousand
 * sockets in one epoll set.
 *
 * Other threads hand work over with upcall_post (a queue and an
 * eventfd); the loop runs it, curl's socket events, curl's timer, the
 * posted timers and the head deadlines, in that order, each turn.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "pincer.h"

#define MAX_EVENTS	256

enum wkind { W_WAKE, W_CURL, W_HUP };

/* What an epoll entry stands for. */
struct upcall_watch {
	enum wkind	 kind;
	int		 fd;
	void		(*fn)(void *);	/* W_HUP */
	void		*arg;
	bool		 fired;
};

struct upcall {
	CURL			*easy;
	struct curl_slist	*headers;	/* owned */
	const struct upcall_ops	*ops;
	void			*arg;
	struct upcall_head	 head;
	bool			 head_seen;
	bool			 in_multi;
	bool			 added;		/* add_call ran */
	bool			 cancel;	/* cancelled before that */
	uint64_t		 deadline;	/* ms; 0: none */
	char			 err[CURL_ERROR_SIZE];
	struct upcall		*prev, *next;	/* awaiting a head */
	struct upcall		*aprev, *anext;	/* every call in the loop */
};

struct job {
	void		(*fn)(void *);
	void		*arg;
	uint64_t	 due;		/* ms */
	struct job	*next;
};

static void	*loop(void *);
static void	 run_jobs(bool);
static void	 run_deadlines(void);
static void	 check_done(void);
static void	 finish(struct upcall *, enum upcall_err, const char *);
static void	 add_call(void *);
static long	 next_wait(void);
static int	 on_socket(CURL *, curl_socket_t, int, void *, void *);
static int	 on_timer(CURLM *, long, void *);
static size_t	 on_header(char *, size_t, size_t, void *);
static size_t	 on_data(char *, size_t, size_t, void *);
static void	 parse_head_line(struct upcall *, const char *, size_t);
static long	 retry_after(const char *);
static void	 waiting_unlink(struct upcall *);

static CURLM		*multi;
static int		 ep = -1;
static struct upcall_watch wake = { .kind = W_WAKE, .fd = -1 };
static pthread_t	 thread;
static bool		 started;
static pthread_mutex_t	 lock = PTHREAD_MUTEX_INITIALIZER;
static struct job	*jobs;		/* lock; by due time */
static bool		 quit;		/* lock */
static bool		 asleep;	/* lock: the loop is in epoll_wait */
static uint64_t		 curl_due;	/* loop thread; 0: no timer */
static struct upcall	*waiting;	/* loop thread: no head yet */
static struct upcall	*all;		/* loop thread: in the multi */
static bool		 stopped;	/* the loop is gone */
static long		 nactive;	/* atomic */
/* Easy handles kept for the next call: making one costs allocations. */
#define POOL_MAX	128
static CURL		*pool[POOL_MAX];	/* lock */
static size_t		 npool;			/* lock */

int
upcall_start(void)
{
	struct epoll_event	 ev = { .events = EPOLLIN, .data.ptr = &wake };

	if ((multi = curl_multi_init()) == NULL)
		goto fail;
	curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_timer);
	/* Keep-alive connections to providers are the whole game. */
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, 1024L);
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    (wake.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1 ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, wake.fd, &ev) == -1 ||
	    pthread_create(&thread, NULL, loop, NULL) != 0)
		goto fail;
	started = true;
	return 0;
fail:
	log_error("cannot start the outbound call loop", "%s",
	    strerror(errno));
	return -1;
}

/* Every call still open is cancelled (its done runs), then the loop ends. */
void
upcall_stop(void)
{
	if (started) {
		pthread_mutex_lock(&lock);
		quit = true;
		pthread_mutex_unlock(&lock);
		upcall_post(NULL, NULL, 0);
		pthread_join(thread, NULL);
		started = false;
	}
	pthread_mutex_lock(&lock);
	stopped = true;
	pthread_mutex_unlock(&lock);
	run_jobs(true);
	while (npool > 0)
		curl_easy_cleanup(pool[--npool]);
	if (multi != NULL)
		curl_multi_cleanup(multi);
	multi = NULL;
	if (ep != -1)
		close(ep);
	if (wake.fd != -1)
		close(wake.fd);
	ep = wake.fd = -1;
}

/* Any thread. The easy handle is made here, added on the loop thread. */
struct upcall *
upcall_begin(const struct upcall_req *rq, const struct upcall_ops *ops,
    void *arg)
{
	struct upcall	*u = NULL;
	bool		 q;

	pthread_mutex_lock(&lock);
	q = quit;
	pthread_mutex_unlock(&lock);
	if (!q && (u = calloc(1, sizeof(*u))) != NULL) {
		pthread_mutex_lock(&lock);
		u->easy = npool > 0 ? pool[--npool] : NULL;
		pthread_mutex_unlock(&lock);
		if (u->easy != NULL)
			curl_easy_reset(u->easy);
		else
			u->easy = curl_easy_init();
	}
	if (q || u == NULL || u->easy == NULL) {
		free(u);
		curl_slist_free_all(rq->headers);
		return NULL;
	}
	u->ops = ops;
	u->arg = arg;
	u->headers = curl_slist_append(rq->headers, "Expect:");
	u->head.retry_after_ms = -1;
	if (rq->head_ms > 0)
		u->deadline = now_ms() + (uint64_t)rq->head_ms;
	curl_easy_setopt(u->easy, CURLOPT_URL, rq->url);
	curl_easy_setopt(u->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(u->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(u->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	/* 16 KiB by default, per call: with a thousand open streams that
	 * is memory; events are small and come a few at a time. */
	curl_easy_setopt(u->easy, CURLOPT_BUFFERSIZE, 4096L);
	curl_easy_setopt(u->easy, CURLOPT_PRIVATE, u);
	curl_easy_setopt(u->easy, CURLOPT_ERRORBUFFER, u->err);
	curl_easy_setopt(u->easy, CURLOPT_HTTPHEADER, u->headers);
	curl_easy_setopt(u->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(u->easy, CURLOPT_HEADERDATA, u);
	curl_easy_setopt(u->easy, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(u->easy, CURLOPT_WRITEDATA, u);
	if (rq->head_ms > 0)
		curl_easy_setopt(u->easy, CURLOPT_CONNECTTIMEOUT_MS,
		    rq->head_ms < 10000 ? rq->head_ms : 10000L);
	if (rq->body != NULL) {
		curl_easy_setopt(u->easy, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)rq->len);
		curl_easy_setopt(u->easy, CURLOPT_POSTFIELDS, rq->body);
	}
	__atomic_add_fetch(&nactive, 1, __ATOMIC_RELAXED);
	upcall_post(add_call, u, 0);
	return u;
}

/* Loop thread. The call's done runs now, with UPCALL_CANCELLED. */
void
upcall_cancel(struct upcall *u)
{
	if (!u->added)
		u->cancel = true;	/* add_call ends it */
	else
		finish(u, UPCALL_CANCELLED, "cancelled");
}

/* Loop thread: a paused call may deliver data again (maybe right now). */
void
upcall_resume(struct upcall *u)
{
	if (u->in_multi)
		curl_easy_pause(u->easy, CURLPAUSE_CONT);
}

/* Any thread: fn(arg) runs on the loop thread, delay_ms from now. */
void
upcall_post(void (*fn)(void *), void *arg, long delay_ms)
{
	struct job	*j, **jp;
	uint64_t	 one = 1;
	bool		 wakeit;

	if ((j = calloc(1, sizeof(*j))) == NULL) {
		log_error("cannot queue work for the call loop", "out of "
		    "memory");
		return;
	}
	j->fn = fn;
	j->arg = arg;
	j->due = now_ms() + (uint64_t)(delay_ms > 0 ? delay_ms : 0);
	pthread_mutex_lock(&lock);
	if (stopped) {
		/* No loop any more (pincerd is ending): run it here. */
		pthread_mutex_unlock(&lock);
		free(j);
		if (fn != NULL)
			fn(arg);
		return;
	}
	for (jp = &jobs; *jp != NULL && (*jp)->due <= j->due;
	    jp = &(*jp)->next)
		;
	j->next = *jp;
	*jp = j;
	/* A busy loop finds the job on its next turn: no write needed. */
	wakeit = asleep;
	asleep = false;
	pthread_mutex_unlock(&lock);
	if (wakeit && write(wake.fd, &one, sizeof(one)) == -1 &&
	    errno != EAGAIN)
		log_warn("cannot wake the call loop", "%s", strerror(errno));
}

/* Loop thread. */
struct upcall_watch *
upcall_watch(int fd, void (*fn)(void *), void *arg)
{
	struct upcall_watch	*w;
	struct epoll_event	 ev = { .events = EPOLLRDHUP };

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->kind = W_HUP;
	w->fd = fd;
	w->fn = fn;
	w->arg = arg;
	ev.data.ptr = w;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
		free(w);
		return NULL;
	}
	return w;
}

/* Loop thread; the fd stays open (the caller's). */
void
upcall_unwatch(struct upcall_watch *w)
{
	if (w == NULL)
		return;
	epoll_ctl(ep, EPOLL_CTL_DEL, w->fd, NULL);
	free(w);
}

long
upcall_active(void)
{
	return __atomic_load_n(&nactive, __ATOMIC_RELAXED);
}

static void *
loop(void *unused)
{
	struct epoll_event	 evs[MAX_EVENTS];
	struct upcall_watch	*w;
	uint64_t		 junk;
	int			 n, i, still, mask;
	bool			 stopping;

	for (;;) {
		n = epoll_wait(ep, evs, MAX_EVENTS, (int)next_wait());
		for (i = 0; i < n; i++) {
			w = evs[i].data.ptr;
			if (w->kind == W_WAKE) {
				if (read(wake.fd, &junk, sizeof(junk)) == -1 &&
				    errno != EAGAIN)
					log_warn("call loop wake", "%s",
					    strerror(errno));
			} else if (w->kind == W_HUP) {
				if (!w->fired) {
					w->fired = true;
					epoll_ctl(ep, EPOLL_CTL_DEL, w->fd,
					    NULL);
					w->fn(w->arg);
				}
			} else {
				mask = (evs[i].events & EPOLLIN ?
				    CURL_CSELECT_IN : 0) |
				    (evs[i].events & EPOLLOUT ?
				    CURL_CSELECT_OUT : 0) |
				    (evs[i].events & (EPOLLERR | EPOLLHUP) ?
				    CURL_CSELECT_ERR : 0);
				curl_multi_socket_action(multi, w->fd, mask,
				    &still);
			}
		}
		if (curl_due != 0 && now_ms() >= curl_due) {
			curl_due = 0;
			curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0,
			    &still);
		}
		check_done();
		run_deadlines();
		pthread_mutex_lock(&lock);
		stopping = quit;
		pthread_mutex_unlock(&lock);
		if (stopping) {
			/* Whatever is open ends as cancelled; waits end. */
			while (all != NULL)
				finish(all, UPCALL_CANCELLED, "pincerd is "
				    "stopping");
			run_jobs(true);
			pthread_mutex_lock(&lock);
			stopping = jobs == NULL && all == NULL;
			pthread_mutex_unlock(&lock);
			if (stopping)
				break;
			continue;
		}
		run_jobs(false);
	}
	return NULL;
}

/* The jobs that are due (all: every one), in order; a job may post more. */
static void
run_jobs(bool every)
{
	struct job	*j;
	uint64_t	 now = now_ms();

	for (;;) {
		pthread_mutex_lock(&lock);
		if ((j = jobs) == NULL || (!every && j->due > now)) {
			pthread_mutex_unlock(&lock);
			return;
		}
		jobs = j->next;
		pthread_mutex_unlock(&lock);
		if (j->fn != NULL)
			j->fn(j->arg);
		free(j);
	}
}

/* epoll's timeout: curl's timer, the next job, the next head deadline. */
static long
next_wait(void)
{
	long		 w = -1, d;
	uint64_t	 now = now_ms();
	struct upcall	*u;

	if (curl_due != 0)
		w = curl_due > now ? (long)(curl_due - now) : 0;
	pthread_mutex_lock(&lock);
	if (jobs != NULL) {
		d = jobs->due > now ? (long)(jobs->due - now) : 0;
		w = w < 0 || d < w ? d : w;
	}
	/* From here a new job must wake the loop (upcall_post). */
	asleep = true;
	pthread_mutex_unlock(&lock);
	for (u = waiting; u != NULL; u = u->next)
		if (u->deadline != 0) {
			d = u->deadline > now ? (long)(u->deadline - now) : 0;
			w = w < 0 || d < w ? d : w;
		}
	return w;
}

static void
add_call(void *arg)
{
	struct upcall	*u = arg;
	CURLMcode	 rc;

	u->added = true;
	if (u->cancel) {
		finish(u, UPCALL_CANCELLED, "cancelled");
		return;
	}
	if ((rc = curl_multi_add_handle(multi, u->easy)) != CURLM_OK) {
		finish(u, UPCALL_NET, curl_multi_strerror(rc));
		return;
	}
	u->in_multi = true;
	u->next = waiting;
	if (waiting != NULL)
		waiting->prev = u;
	waiting = u;
	u->anext = all;
	if (all != NULL)
		all->aprev = u;
	all = u;
}

/* A provider that accepts the connection and never answers is a failure
 * like any other, within the provider's timeout_ms. */
static void
run_deadlines(void)
{
	struct upcall	*u, *next;
	uint64_t	 now = now_ms();

	for (u = waiting; u != NULL; u = next) {
		next = u->next;
		if (u->deadline != 0 && now >= u->deadline)
			finish(u, UPCALL_TIMEOUT, "no answer within the "
			    "provider's timeout_ms");
	}
}

static void
check_done(void)
{
	CURLMsg		*m;
	struct upcall	*u;
	enum upcall_err	 e;
	int		 left;

	while ((m = curl_multi_info_read(multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &u);
		switch (m->data.result) {
		case CURLE_OK:
			e = UPCALL_OK;
			break;
		case CURLE_COULDNT_CONNECT:
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_RESOLVE_PROXY:
			e = UPCALL_CONNECT;
			break;
		case CURLE_OPERATION_TIMEDOUT:
			e = UPCALL_TIMEOUT;
			break;
		default:
			e = UPCALL_NET;
			break;
		}
		finish(u, e, e == UPCALL_OK ? "" : *u->err ? u->err :
		    curl_easy_strerror(m->data.result));
	}
}

static void
finish(struct upcall *u, enum upcall_err e, const char *msg)
{
	struct curl_slist	*h;

	if (u->in_multi) {
		curl_multi_remove_handle(multi, u->easy);
		if (u->aprev != NULL)
			u->aprev->anext = u->anext;
		else
			all = u->anext;
		if (u->anext != NULL)
			u->anext->aprev = u->aprev;
	}
	if (!u->head_seen)
		waiting_unlink(u);
	u->in_multi = false;
	u->ops->done(u->arg, e, msg);
	pthread_mutex_lock(&lock);
	if (npool < POOL_MAX && !quit)
		pool[npool++] = u->easy;
	else
		curl_easy_cleanup(u->easy);
	pthread_mutex_unlock(&lock);
	/* The headers hold the provider's key. */
	for (h = u->headers; h != NULL; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(u->headers);
	free(u);
	__atomic_sub_fetch(&nactive, 1, __ATOMIC_RELAXED);
}

static void
waiting_unlink(struct upcall *u)
{
	if (u->prev != NULL)
		u->prev->next = u->next;
	else if (waiting == u)
		waiting = u->next;
	if (u->next != NULL)
		u->next->prev = u->prev;
	u->prev = u->next = NULL;
}

/* curl tells which sockets to watch for what (CURLMOPT_SOCKETFUNCTION). */
static int
on_socket(CURL *easy, curl_socket_t s, int what, void *unused, void *sockp)
{
	struct upcall_watch	*w = sockp;
	struct epoll_event	 ev = { 0 };

	if (what == CURL_POLL_REMOVE) {
		if (w != NULL) {
			epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL);
			curl_multi_assign(multi, s, NULL);
			free(w);
		}
		return 0;
	}
	ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) |
	    (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	if (w == NULL) {
		if ((w = calloc(1, sizeof(*w))) == NULL)
			return -1;
		w->kind = W_CURL;
		w->fd = s;
		ev.data.ptr = w;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) == -1) {
			free(w);
			return -1;
		}
		curl_multi_assign(multi, s, w);
		return 0;
	}
	ev.data.ptr = w;
	return epoll_ctl(ep, EPOLL_CTL_MOD, s, &ev) == -1 ? -1 : 0;
}

static int
on_timer(CURLM *m, long ms, void *unused)
{
	/* 0 means now: the next turn of the loop, not a busy wait. */
	curl_due = ms < 0 ? 0 : now_ms() + (uint64_t)ms;
	if (ms == 0)
		curl_due = now_ms();
	return 0;
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
	struct upcall	*u = arg;

	n *= size;
	parse_head_line(u, p, n);
	return n;
}

/*
 * A status line starts a head (again after a 1xx); the blank line ends
 * it, and a final head (2xx and up) goes to the caller.
 */
static void
parse_head_line(struct upcall *u, const char *p, size_t n)
{
	char	 line[512], *v;

	if (n >= 5 && !strncmp(p, "HTTP/", 5)) {
		u->head.status = 0;
		u->head.content_type[0] = '\0';
		u->head.retry_after_ms = -1;
		if ((v = memchr(p, ' ', n)) != NULL)
			u->head.status = atoi(v + 1);
		return;
	}
	if (n <= 2 && (p[0] == '\r' || p[0] == '\n')) {
		if (u->head.status >= 200 && !u->head_seen) {
			u->head_seen = true;
			waiting_unlink(u);
			u->ops->head(u->arg, &u->head);
		}
		return;
	}
	snprintf(line, sizeof(line), "%.*s", (int)n, p);
	line[strcspn(line, "\r\n")] = '\0';
	if ((v = strchr(line, ':')) == NULL)
		return;
	*v++ = '\0';
	v += strspn(v, " \t");
	if (!strcasecmp(line, "content-type"))
		snprintf(u->head.content_type, sizeof(u->head.content_type),
		    "%s", v);
	else if (!strcasecmp(line, "retry-after-ms"))
		u->head.retry_after_ms = strtol(v, NULL, 10);
	else if (!strcasecmp(line, "retry-after") &&
	    u->head.retry_after_ms < 0)
		u->head.retry_after_ms = retry_after(v);
}

/* RFC 9110 §10.2.3: delay-seconds or an HTTP-date. */
static long
retry_after(const char *v)
{
	struct tm	 tm;
	char		*end;
	long		 s;
	time_t		 t;

	s = strtol(v, &end, 10);
	if (end != v && *end == '\0')
		return s < 0 ? -1 : s > 86400 ? 86400000 : s * 1000;
	memset(&tm, 0, sizeof(tm));
	if (strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm) == NULL)
		return -1;
	t = timegm(&tm) - time(NULL);
	return t < 0 ? 0 : t > 86400 ? 86400000 : (long)t * 1000;
}

static size_t
on_data(char *p, size_t size, size_t n, void *arg)
{
	struct upcall	*u = arg;

	n *= size;
	if (!u->head_seen) {	/* a head with no blank line: HTTP/0.9-ish */
		u->head_seen = true;
		waiting_unlink(u);
		u->ops->head(u->arg, &u->head);
	}
	return u->ops->data(u->arg, p, n) == 1 ? CURL_WRITEFUNC_PAUSE : n;
}
