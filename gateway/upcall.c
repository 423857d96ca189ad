/* SPDX-License-Identifier: MIT */
/*
 * upcall.c: the worker loops. Each worker is one thread and one epoll
 * set that runs a libmicrohttpd daemon (in its external-polling mode:
 * the connections the front door gives this worker) and a libcurl multi
 * handle for outbound HTTP calls (LLM providers now; chat platforms and
 * object storage later), through curl_multi_socket_action.
 *
 * Why one thread for both: a proxied call is a request in, a call out,
 * an answer back and the answer out. On one thread none of that waits
 * for another thread to wake up: on a two-core VM a thread hand-off
 * costs more CPU than the rest of the call (see README, Performance).
 * No thread waits on a call, however slow the far end; a thousand open
 * streams are a thousand sockets in the epoll sets.
 *
 * Other threads hand work over with upcall_post (a queue and an
 * eventfd, written only when the loop sleeps). A turn runs the ready
 * sockets, the jobs that are due, curl's timer, the head deadlines,
 * then libmicrohttpd, which may start more.
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
#include <microhttpd.h>

#include "pincer.h"

#define MAX_EVENTS	256
/* Easy handles kept for the next call: making one costs allocations. */
#define POOL_MAX	128

enum wkind { W_WAKE, W_MHD, W_CURL, W_HUP };

/*
 * What an epoll entry stands for. One that is let go (unwatch, or curl
 * done with a socket) may still be in the events of this turn: it is
 * marked dead and freed when the turn ends.
 */
struct upcall_watch {
	enum wkind		 kind;
	int			 fd;
	void			(*fn)(void *);	/* W_HUP */
	void			*arg;
	bool			 fired;
	bool			 dead;
	struct upcall_watch	*gnext;		/* to be freed */
};

struct loop;

struct upcall {
	struct loop		*l;
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
	size_t			 len;		/* of the body */
	char			 err[CURL_ERROR_SIZE];
	struct upcall		*prev, *next;	/* awaiting a head */
	struct upcall		*aprev, *anext;	/* all its calls */
};

struct upcall_job {
	struct loop		*l;
	void			(*fn)(void *);
	void			*arg;
	uint64_t		 due;		/* ms */
	bool			 timed;
	struct upcall_job	*prev, *next;
};

/* A job list: the jobs for now in order, or the timed ones by due time. */
struct jlist {
	struct upcall_job	*head, *tail;
};

struct loop {
	pthread_t		 thread;
	int			 ep;
	struct upcall_watch	 wake;
	struct upcall_watch	 mhdw;
	pthread_mutex_t		 lock;
	/* lock: */
	struct jlist		 now, timed;
	bool			 quit;
	bool			 asleep;	/* in epoll_wait */
	bool			 stopped;	/* the thread is gone */
	CURL			*pool[POOL_MAX];
	size_t			 npool;
	/* atomic: */
	bool			 mhd_kick;	/* resumed elsewhere */
	struct MHD_Daemon	*mhd;		/* set once */
	/* loop thread: */
	bool			 mhd_run;
	uint64_t		 mhd_due;	/* ms; 0: none */
	CURLM			*multi;
	uint64_t		 curl_due;	/* ms; 0: no timer */
	struct upcall		*waiting;	/* no head yet */
	struct upcall		*all;		/* in the multi */
	struct upcall_watch	*grave;
};

static void	*loop_main(void *);
static void	 turn(struct loop *);
static void	 run_jobs(struct loop *, bool);
static void	 run_mhd(struct loop *);
static void	 run_deadlines(struct loop *);
static void	 check_done(struct loop *);
static void	 finish(struct upcall *, enum upcall_err, const char *);
static void	 add_call(void *);
static void	 attach(void *);
static long	 next_wait(struct loop *);
static struct upcall_job *post(struct loop *, void (*)(void *), void *,
		    long);
static void	 jlist_add(struct jlist *, struct upcall_job *);
static void	 jlist_del(struct jlist *, struct upcall_job *);
static void	 bury(struct loop *, struct upcall_watch *);
static int	 on_socket(CURL *, curl_socket_t, int, void *, void *);
static int	 on_timer(CURLM *, long, void *);
static size_t	 on_header(char *, size_t, size_t, void *);
static size_t	 on_data(char *, size_t, size_t, void *);
static void	 parse_head_line(struct upcall *, const char *, size_t);
static long	 retry_after(const char *);
static void	 waiting_unlink(struct upcall *);

static struct loop	*loops;
static int		 nloops;
static __thread struct loop *cur;	/* this thread's loop, if any */
static long		 nactive;	/* atomic */

/* n worker loops; http_start gives each its libmicrohttpd daemon. */
int
upcall_start(int n)
{
	struct epoll_event	 ev = { .events = EPOLLIN };
	struct loop		*l;
	int			 i;

	if ((loops = calloc((size_t)n, sizeof(*loops))) == NULL)
		goto fail;
	for (i = 0; i < n; i++) {
		l = &loops[i];
		l->ep = l->wake.fd = -1;
		l->wake.kind = W_WAKE;
		l->mhdw.kind = W_MHD;
		pthread_mutex_init(&l->lock, NULL);
		if ((l->multi = curl_multi_init()) == NULL)
			goto fail;
		curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
		curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
		curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, on_timer);
		curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
		/* Keep-alive connections to providers are the whole game. */
		curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, 1024L);
		ev.data.ptr = &l->wake;
		if ((l->ep = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
		    (l->wake.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) ==
		    -1 || epoll_ctl(l->ep, EPOLL_CTL_ADD, l->wake.fd, &ev) ==
		    -1 || pthread_create(&l->thread, NULL, loop_main, l) != 0)
			goto fail;
		nloops = i + 1;
	}
	return 0;
fail:
	log_error("cannot start the worker loops", "%s", strerror(errno));
	return -1;
}

/*
 * Every call still open is cancelled (its done runs), then the loops
 * end. libmicrohttpd's daemons stay (http_stop ends them); jobs posted
 * from now on run at once, on the thread that posts them.
 */
void
upcall_stop(void)
{
	struct loop	*l;
	int		 i;

	for (i = 0; i < nloops; i++) {
		l = &loops[i];
		pthread_mutex_lock(&l->lock);
		l->quit = true;
		pthread_mutex_unlock(&l->lock);
		post(l, NULL, NULL, 0);
	}
	for (i = 0; i < nloops; i++)
		pthread_join(loops[i].thread, NULL);
	for (i = 0; i < nloops; i++) {
		l = &loops[i];
		pthread_mutex_lock(&l->lock);
		l->stopped = true;
		pthread_mutex_unlock(&l->lock);
		run_jobs(l, true);
		while (l->grave != NULL) {
			struct upcall_watch *w = l->grave;

			l->grave = w->gnext;
			free(w);
		}
		while (l->npool > 0)
			curl_easy_cleanup(l->pool[--l->npool]);
		curl_multi_cleanup(l->multi);
		close(l->ep);
		close(l->wake.fd);
		l->multi = NULL;
		l->ep = l->wake.fd = -1;
	}
}

int
upcall_loops(void)
{
	return nloops;
}

/* Loop i runs daemon d: its connections, its handlers, its answers. */
void
upcall_attach(int i, struct MHD_Daemon *d)
{
	__atomic_store_n(&loops[i].mhd, d, __ATOMIC_RELEASE);
	post(&loops[i], attach, &loops[i], 0);
}

static void
attach(void *arg)
{
	struct loop			*l = arg;
	struct epoll_event		 ev = { .events = EPOLLIN };
	const union MHD_DaemonInfo	*di;

	ev.data.ptr = &l->mhdw;
	di = MHD_get_daemon_info(l->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (di == NULL || (l->mhdw.fd = di->epoll_fd) < 0 ||
	    epoll_ctl(l->ep, EPOLL_CTL_ADD, l->mhdw.fd, &ev) == -1)
		log_error("cannot watch the HTTP daemon", "%s",
		    strerror(errno));
	l->mhd_run = true;
}

/*
 * Any thread: the daemon has a resumed connection (or a new one) to
 * run. On its own loop that is a flag; from elsewhere, a wake.
 */
void
upcall_mhd_wake(struct MHD_Daemon *d)
{
	struct loop	*l = NULL;
	uint64_t	 one = 1;
	bool		 wakeit;
	int		 i;

	if (cur != NULL && cur->mhd == d) {
		cur->mhd_run = true;
		return;
	}
	for (i = 0; i < nloops && l == NULL; i++)
		if (__atomic_load_n(&loops[i].mhd, __ATOMIC_ACQUIRE) == d)
			l = &loops[i];
	if (l == NULL)
		return;
	__atomic_store_n(&l->mhd_kick, true, __ATOMIC_RELEASE);
	pthread_mutex_lock(&l->lock);
	wakeit = l->asleep;
	l->asleep = false;
	pthread_mutex_unlock(&l->lock);
	if (wakeit && write(l->wake.fd, &one, sizeof(one)) == -1 &&
	    errno != EAGAIN)
		log_warn("cannot wake a worker loop", "%s", strerror(errno));
}

/*
 * Any thread. The call runs on this thread's loop, or the first loop;
 * everything else about it must happen there (upcall_post from a
 * callback of it does).
 */
struct upcall *
upcall_begin(const struct upcall_req *rq, const struct upcall_ops *ops,
    void *arg)
{
	struct loop	*l = cur != NULL ? cur : loops;
	struct upcall	*u = NULL;
	bool		 q = true;

	if (l != NULL) {
		pthread_mutex_lock(&l->lock);
		q = l->quit || l->stopped;
		pthread_mutex_unlock(&l->lock);
	}
	if (!q && (u = calloc(1, sizeof(*u))) != NULL) {
		u->l = l;
		pthread_mutex_lock(&l->lock);
		u->easy = l->npool > 0 ? l->pool[--l->npool] : NULL;
		pthread_mutex_unlock(&l->lock);
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
	/* curl reads into a buffer of this size per call: a stream's
	 * events are small and come a few at a time, and a thousand open
	 * streams would hold 16 MiB in curl's default buffers. */
	curl_easy_setopt(u->easy, CURLOPT_BUFFERSIZE, rq->stream ? 1024L :
	    16384L);
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
	u->len = rq->body != NULL ? rq->len : 0;
	if (rq->body != NULL) {
		curl_easy_setopt(u->easy, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)rq->len);
		curl_easy_setopt(u->easy, CURLOPT_POSTFIELDS, rq->body);
	}
	__atomic_add_fetch(&nactive, 1, __ATOMIC_RELAXED);
	post(l, add_call, u, 0);
	return u;
}

/* The call's loop. Its done runs now, with UPCALL_CANCELLED. */
void
upcall_cancel(struct upcall *u)
{
	if (!u->added)
		u->cancel = true;	/* add_call ends it */
	else
		finish(u, UPCALL_CANCELLED, "cancelled");
}

/* The call's loop: a paused call may deliver data again (maybe now). */
void
upcall_resume(struct upcall *u)
{
	if (u->in_multi)
		curl_easy_pause(u->easy, CURLPAUSE_CONT);
}

/* The call's loop: has curl sent the whole request body? */
bool
upcall_sent(struct upcall *u)
{
	curl_off_t	 n = -1;

	return u->in_multi && curl_easy_getinfo(u->easy,
	    CURLINFO_SIZE_UPLOAD_T, &n) == CURLE_OK && n >= 0 &&
	    (uint64_t)n >= u->len;
}

/*
 * Any thread: fn(arg) runs on this thread's loop (the first loop from
 * elsewhere), delay_ms from now. The job can be taken back with
 * upcall_unpost, on that loop, until it has run.
 */
struct upcall_job *
upcall_post(void (*fn)(void *), void *arg, long delay_ms)
{
	return post(cur != NULL ? cur : loops, fn, arg, delay_ms);
}

/* Any thread: the same on loop i (the front door hands out this way). */
void
upcall_post_on(int i, void (*fn)(void *), void *arg)
{
	post(i >= 0 && i < nloops ? &loops[i] : NULL, fn, arg, 0);
}

/* The job's loop, before the job has run. */
void
upcall_unpost(struct upcall_job *j)
{
	struct loop	*l = j->l;

	pthread_mutex_lock(&l->lock);
	jlist_del(j->timed ? &l->timed : &l->now, j);
	pthread_mutex_unlock(&l->lock);
	free(j);
}

static struct upcall_job *
post(struct loop *l, void (*fn)(void *), void *arg, long delay_ms)
{
	struct upcall_job	*j;
	uint64_t		 one = 1;
	bool			 wakeit;

	if (l == NULL || (j = calloc(1, sizeof(*j))) == NULL) {
		if (l != NULL)
			log_error("cannot queue work for a worker loop",
			    "out of memory");
		else if (fn != NULL)
			fn(arg);	/* no loops (tools, tests) */
		return NULL;
	}
	j->l = l;
	j->fn = fn;
	j->arg = arg;
	j->timed = delay_ms > 0;
	j->due = j->timed ? now_ms() + (uint64_t)delay_ms : 0;
	pthread_mutex_lock(&l->lock);
	if (l->stopped) {
		/* No loop any more (pincerd is ending): run it here. */
		pthread_mutex_unlock(&l->lock);
		free(j);
		if (fn != NULL)
			fn(arg);
		return NULL;
	}
	jlist_add(j->timed ? &l->timed : &l->now, j);
	/* A busy loop finds the job on its next turn: no write needed. */
	wakeit = l->asleep && cur != l;
	l->asleep = false;
	pthread_mutex_unlock(&l->lock);
	if (wakeit && write(l->wake.fd, &one, sizeof(one)) == -1 &&
	    errno != EAGAIN)
		log_warn("cannot wake a worker loop", "%s", strerror(errno));
	return j;
}

/* Timed jobs mostly share one delay: they go in at the tail. */
static void
jlist_add(struct jlist *q, struct upcall_job *j)
{
	struct upcall_job	*at = q->tail;

	while (at != NULL && at->due > j->due)
		at = at->prev;
	j->prev = at;
	j->next = at != NULL ? at->next : q->head;
	if (j->next != NULL)
		j->next->prev = j;
	else
		q->tail = j;
	if (at != NULL)
		at->next = j;
	else
		q->head = j;
}

static void
jlist_del(struct jlist *q, struct upcall_job *j)
{
	if (j->prev != NULL)
		j->prev->next = j->next;
	else
		q->head = j->next;
	if (j->next != NULL)
		j->next->prev = j->prev;
	else
		q->tail = j->prev;
}

/* This thread's loop. */
struct upcall_watch *
upcall_watch(int fd, void (*fn)(void *), void *arg)
{
	struct upcall_watch	*w;
	struct epoll_event	 ev = { .events = EPOLLRDHUP };

	if (cur == NULL || (w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->kind = W_HUP;
	w->fd = fd;
	w->fn = fn;
	w->arg = arg;
	ev.data.ptr = w;
	if (epoll_ctl(cur->ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
		free(w);
		return NULL;
	}
	return w;
}

/* The watch's loop (or any thread once the loops are gone); the fd
 * stays open (the caller's). */
void
upcall_unwatch(struct upcall_watch *w)
{
	if (w == NULL)
		return;
	if (cur == NULL) {
		free(w);
		return;
	}
	if (!w->fired)
		epoll_ctl(cur->ep, EPOLL_CTL_DEL, w->fd, NULL);
	bury(cur, w);
}

static void
bury(struct loop *l, struct upcall_watch *w)
{
	w->dead = true;
	w->gnext = l->grave;
	l->grave = w;
}

long
upcall_active(void)
{
	return __atomic_load_n(&nactive, __ATOMIC_RELAXED);
}

static void *
loop_main(void *arg)
{
	struct loop		*l = arg;
	struct epoll_event	 evs[MAX_EVENTS];
	struct upcall_watch	*w;
	uint64_t		 junk;
	int			 n, i, still, mask;
	bool			 stopping;

	cur = l;
	for (;;) {
		n = epoll_wait(l->ep, evs, MAX_EVENTS, (int)next_wait(l));
		pthread_mutex_lock(&l->lock);
		l->asleep = false;
		stopping = l->quit;
		pthread_mutex_unlock(&l->lock);
		for (i = 0; i < n; i++) {
			w = evs[i].data.ptr;
			if (w->dead)
				continue;
			switch (w->kind) {
			case W_WAKE:
				if (read(w->fd, &junk, sizeof(junk)) == -1 &&
				    errno != EAGAIN)
					log_warn("worker loop wake", "%s",
					    strerror(errno));
				break;
			case W_MHD:
				l->mhd_run = true;
				break;
			case W_HUP:
				if (!w->fired) {
					w->fired = true;
					epoll_ctl(l->ep, EPOLL_CTL_DEL, w->fd,
					    NULL);
					w->fn(w->arg);
				}
				break;
			case W_CURL:
				mask = (evs[i].events & EPOLLIN ?
				    CURL_CSELECT_IN : 0) |
				    (evs[i].events & EPOLLOUT ?
				    CURL_CSELECT_OUT : 0) |
				    (evs[i].events & (EPOLLERR | EPOLLHUP) ?
				    CURL_CSELECT_ERR : 0);
				curl_multi_socket_action(l->multi, w->fd, mask,
				    &still);
				break;
			}
		}
		if (stopping) {
			/* Whatever is open ends as cancelled; the answers
			 * that makes go out if they can. */
			while (l->all != NULL)
				finish(l->all, UPCALL_CANCELLED, "pincerd is "
				    "stopping");
			run_jobs(l, true);
			if (l->mhd != NULL)
				MHD_run(l->mhd);
			pthread_mutex_lock(&l->lock);
			stopping = l->now.head == NULL &&
			    l->timed.head == NULL && l->all == NULL;
			pthread_mutex_unlock(&l->lock);
			if (stopping)
				break;
			continue;
		}
		turn(l);
	}
	cur = NULL;
	return NULL;
}

/*
 * After the sockets: jobs, curl's timer, finished calls, deadlines, then
 * libmicrohttpd. What one of them starts for now (a handler's job, a
 * resumed connection, curl's "at once" timer) runs in this turn too, not
 * after another epoll_wait: a proxied call is one wake-up each way.
 */
static void
turn(struct loop *l)
{
	struct upcall_watch	*w;
	int			 i, still;
	bool			 more;

	for (i = 0; i < 8; i++) {
		run_jobs(l, false);
		if (l->curl_due != 0 && now_ms() >= l->curl_due) {
			l->curl_due = 0;
			curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT,
			    0, &still);
		}
		check_done(l);
		run_deadlines(l);
		run_mhd(l);
		pthread_mutex_lock(&l->lock);
		more = l->now.head != NULL;
		pthread_mutex_unlock(&l->lock);
		if (!more && !l->mhd_run && (l->curl_due == 0 ||
		    now_ms() < l->curl_due))
			break;
	}
	while ((w = l->grave) != NULL) {
		l->grave = w->gnext;
		free(w);
	}
}

static void
run_mhd(struct loop *l)
{
	MHD_UNSIGNED_LONG_LONG	 t;

	if (l->mhd == NULL)
		return;
	if (__atomic_exchange_n(&l->mhd_kick, false, __ATOMIC_ACQ_REL))
		l->mhd_run = true;
	if (!l->mhd_run && (l->mhd_due == 0 || now_ms() < l->mhd_due))
		return;
	l->mhd_run = false;
	MHD_run(l->mhd);
	l->mhd_due = MHD_get_timeout(l->mhd, &t) == MHD_YES ?
	    now_ms() + (uint64_t)t : 0;
}

/* The jobs that are due (all: every one), in order; a job may post more. */
static void
run_jobs(struct loop *l, bool every)
{
	struct upcall_job	*j;
	uint64_t		 now = now_ms();

	for (;;) {
		pthread_mutex_lock(&l->lock);
		if ((j = l->now.head) != NULL)
			jlist_del(&l->now, j);
		else if ((j = l->timed.head) != NULL && (every ||
		    j->due <= now))
			jlist_del(&l->timed, j);
		else
			j = NULL;
		pthread_mutex_unlock(&l->lock);
		if (j == NULL)
			return;
		if (j->fn != NULL)
			j->fn(j->arg);
		free(j);
	}
}

/* epoll's timeout: work to do now, curl's timer, the next timed job,
 * libmicrohttpd's timeout, the next head deadline. */
static long
next_wait(struct loop *l)
{
	long		 w = -1, d;
	uint64_t	 now = now_ms(), due[2] = { l->curl_due, l->mhd_due };
	struct upcall	*u;
	size_t		 i;

	for (i = 0; i < 2; i++)
		if (due[i] != 0) {
			d = due[i] > now ? (long)(due[i] - now) : 0;
			w = w < 0 || d < w ? d : w;
		}
	for (u = l->waiting; u != NULL; u = u->next)
		if (u->deadline != 0) {
			d = u->deadline > now ? (long)(u->deadline - now) : 0;
			w = w < 0 || d < w ? d : w;
		}
	pthread_mutex_lock(&l->lock);
	if (l->timed.head != NULL) {
		d = l->timed.head->due > now ? (long)(l->timed.head->due -
		    now) : 0;
		w = w < 0 || d < w ? d : w;
	}
	/* From here a new job must wake the loop (post). */
	l->asleep = true;
	if (l->now.head != NULL || l->mhd_run || l->quit ||
	    __atomic_load_n(&l->mhd_kick, __ATOMIC_ACQUIRE))
		w = 0;
	pthread_mutex_unlock(&l->lock);
	return w;
}

static void
add_call(void *arg)
{
	struct upcall	*u = arg;
	struct loop	*l = u->l;
	CURLMcode	 rc;

	u->added = true;
	if (u->cancel) {
		finish(u, UPCALL_CANCELLED, "cancelled");
		return;
	}
	if ((rc = curl_multi_add_handle(l->multi, u->easy)) != CURLM_OK) {
		finish(u, UPCALL_NET, curl_multi_strerror(rc));
		return;
	}
	u->in_multi = true;
	u->next = l->waiting;
	if (l->waiting != NULL)
		l->waiting->prev = u;
	l->waiting = u;
	u->anext = l->all;
	if (l->all != NULL)
		l->all->aprev = u;
	l->all = u;
}

/* A provider that accepts the connection and never answers is a failure
 * like any other, within the provider's timeout_ms. */
static void
run_deadlines(struct loop *l)
{
	struct upcall	*u, *next;
	uint64_t	 now = now_ms();

	for (u = l->waiting; u != NULL; u = next) {
		next = u->next;
		if (u->deadline != 0 && now >= u->deadline)
			finish(u, UPCALL_TIMEOUT, "no answer within the "
			    "provider's timeout_ms");
	}
}

static void
check_done(struct loop *l)
{
	CURLMsg		*m;
	struct upcall	*u;
	enum upcall_err	 e;
	int		 left;

	while ((m = curl_multi_info_read(l->multi, &left)) != NULL) {
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
	struct loop		*l = u->l;
	struct curl_slist	*h;

	if (u->in_multi) {
		curl_multi_remove_handle(l->multi, u->easy);
		if (u->aprev != NULL)
			u->aprev->anext = u->anext;
		else
			l->all = u->anext;
		if (u->anext != NULL)
			u->anext->aprev = u->aprev;
	}
	if (!u->head_seen)
		waiting_unlink(u);
	u->in_multi = false;
	u->ops->done(u->arg, e, msg);
	pthread_mutex_lock(&l->lock);
	if (l->npool < POOL_MAX && !l->quit)
		l->pool[l->npool++] = u->easy;
	else
		curl_easy_cleanup(u->easy);
	pthread_mutex_unlock(&l->lock);
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
	else if (u->l->waiting == u)
		u->l->waiting = u->next;
	if (u->next != NULL)
		u->next->prev = u->prev;
	u->prev = u->next = NULL;
}

/* curl tells which sockets to watch for what (CURLMOPT_SOCKETFUNCTION). */
static int
on_socket(CURL *easy, curl_socket_t s, int what, void *lp, void *sockp)
{
	struct loop		*l = lp;
	struct upcall_watch	*w = sockp;
	struct epoll_event	 ev = { 0 };

	if (what == CURL_POLL_REMOVE) {
		if (w != NULL) {
			epoll_ctl(l->ep, EPOLL_CTL_DEL, s, NULL);
			curl_multi_assign(l->multi, s, NULL);
			bury(l, w);
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
		if (epoll_ctl(l->ep, EPOLL_CTL_ADD, s, &ev) == -1) {
			free(w);
			return -1;
		}
		curl_multi_assign(l->multi, s, w);
		return 0;
	}
	ev.data.ptr = w;
	return epoll_ctl(l->ep, EPOLL_CTL_MOD, s, &ev) == -1 ? -1 : 0;
}

static int
on_timer(CURLM *m, long ms, void *lp)
{
	struct loop	*l = lp;

	/* 0 means now: the next turn of the loop, not a busy wait. */
	l->curl_due = ms < 0 ? 0 : now_ms() + (uint64_t)ms;
	if (ms == 0)
		l->curl_due = now_ms();
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
	/* A head with no blank line: HTTP/0.9-ish. */
	if (!u->head_seen) {
		u->head_seen = true;
		waiting_unlink(u);
		u->ops->head(u->arg, &u->head);
	}
	return u->ops->data(u->arg, p, n) == 1 ? CURL_WRITEFUNC_PAUSE : n;
}
