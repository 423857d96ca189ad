/* SPDX-License-Identifier: MIT */
/*
 * init_loop.c: pincer-init's one epoll loop, its clock and its timers:
 * every file descriptor it watches is registered here with a callback,
 * and a listener out of file descriptors rests off the loop a moment.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include "init.h"

#define MAX_FDS		65536
#define MAX_TIMERS	4096
#define ACCEPT_PAUSE_MS	100

struct slot {				/* what loop_add registered on fd */
	loop_fn		 fn;
	void		*arg;
	uint32_t	 gen;		/* tells a stale event from a new fd */
};

struct timer {
	long		 id;
	uint64_t	 when;
	timer_fn	 fn;
	void		*arg;
};

struct pause {				/* a listener off the loop */
	int		 fd;
	loop_fn		 fn;
};

static int	timers_next(void);
static void	timers_run(void);
static void	accept_resume(void *);

static int		 epfd = -1;
static struct slot	*slots;		/* indexed by fd */
static size_t		 nslots;
static uint32_t		 slot_gen;
static struct timer	*timers;
static size_t		 ntimers, timers_cap;
static long		 timer_ids;

int
loop_init(void)
{
	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		return -1;
	return 0;
}

int
loop_add(int fd, uint32_t events, loop_fn fn, void *arg)
{
	struct epoll_event	 ev;
	struct slot		*n;
	size_t			 want;

	if (fd < 0 || fd >= MAX_FDS) {
		errno = EMFILE;
		return -1;
	}
	if ((size_t)fd >= nslots) {
		want = ((size_t)fd + 64) & ~(size_t)63;
		if ((n = reallocarray(slots, want, sizeof(*n))) == NULL)
			return -1;
		memset(n + nslots, 0, (want - nslots) * sizeof(*n));
		slots = n;
		nslots = want;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.u64 = (uint64_t)++slot_gen << 32 | (uint32_t)fd;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == -1)
		return -1;
	slots[fd].fn = fn;
	slots[fd].arg = arg;
	slots[fd].gen = slot_gen;
	return 0;
}

int
loop_mod(int fd, uint32_t events, loop_fn fn, void *arg)
{
	struct epoll_event	 ev;

	if (fd < 0 || (size_t)fd >= nslots || slots[fd].fn == NULL) {
		errno = ENOENT;
		return -1;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.u64 = (uint64_t)slots[fd].gen << 32 | (uint32_t)fd;
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) == -1)
		return -1;
	slots[fd].fn = fn;
	slots[fd].arg = arg;
	return 0;
}

void
loop_del(int fd)
{
	if (fd < 0 || (size_t)fd >= nslots || slots[fd].fn == NULL)
		return;
	(void)epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
	slots[fd].fn = NULL;
	slots[fd].arg = NULL;
}

int
loop_run(void)
{
	struct epoll_event	 ev[64];
	struct slot		*s;
	uint32_t		 fd;
	int			 n, i;

	for (;;) {
		n = epoll_wait(epfd, ev, 64, timers_next());
		if (n == -1 && errno != EINTR)
			return -1;
		for (i = 0; i < n; i++) {
			/* A callback may have deleted (or replaced) any fd. */
			fd = (uint32_t)ev[i].data.u64;
			if (fd >= nslots)
				continue;
			s = &slots[fd];
			if (s->fn == NULL || s->gen != ev[i].data.u64 >> 32)
				continue;
			s->fn(s->arg, ev[i].events);
		}
		timers_run();
	}
}

uint64_t
loop_now_ms(void)
{
	static uint64_t	 origin;
	struct timespec	 ts;
	uint64_t	 ms;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	if (origin == 0)
		origin = ms - 1;
	return ms - origin;		/* so 0 means "never" to callers */
}

int64_t
loop_wall_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- timers: a short array, scanned; a few hundred at most ------------ */

long
loop_timer_add(uint64_t after_ms, timer_fn fn, void *arg)
{
	struct timer	*n;
	size_t		 want;

	if (ntimers == timers_cap) {
		if (timers_cap == MAX_TIMERS)
			return -1;
		want = timers_cap == 0 ? 32 : timers_cap * 2;
		if ((n = reallocarray(timers, want, sizeof(*n))) == NULL)
			return -1;
		timers = n;
		timers_cap = want;
	}
	timers[ntimers].id = ++timer_ids;
	timers[ntimers].when = loop_now_ms() + after_ms;
	timers[ntimers].fn = fn;
	timers[ntimers].arg = arg;
	ntimers++;
	return timer_ids;
}

void
loop_timer_cancel(long id)
{
	size_t	 i;

	if (id <= 0)
		return;
	for (i = 0; i < ntimers; i++)
		if (timers[i].id == id) {
			timers[i] = timers[--ntimers];
			return;
		}
}

static int
timers_next(void)
{
	uint64_t	 now = loop_now_ms(), min = UINT64_MAX;
	size_t		 i;

	for (i = 0; i < ntimers; i++)
		if (timers[i].when < min)
			min = timers[i].when;
	if (min == UINT64_MAX)
		return -1;
	if (min <= now)
		return 0;
	return min - now > INT_MAX ? INT_MAX : (int)(min - now);
}

/*
 * Runs what is due, earliest first. Only timers that existed on entry:
 * one that re-arms itself at 0 ms waits for the next turn of the loop.
 */
static void
timers_run(void)
{
	struct timer	 t;
	uint64_t	 now = loop_now_ms();
	long		 last = timer_ids;
	size_t		 i, best;

	for (;;) {
		best = ntimers;
		for (i = 0; i < ntimers; i++)
			if (timers[i].when <= now && timers[i].id <= last &&
			    (best == ntimers || timers[i].when <
			    timers[best].when))
				best = i;
		if (best == ntimers)
			return;
		t = timers[best];
		timers[best] = timers[--ntimers];
		t.fn(t.arg);
	}
}

/* --- listeners out of file descriptors -------------------------------- */

/*
 * Out of fds, a listening socket stays readable and a level-triggered
 * loop would spin on it: off the loop for a moment, then back.
 */
void
loop_accept_pause(int lfd, int err, loop_fn fn)
{
	static uint64_t	 told;
	struct pause	*p;

	if (err != EMFILE && err != ENFILE && err != ENOBUFS &&
	    err != ENOMEM)
		return;
	if ((p = malloc(sizeof(*p))) == NULL)
		return;
	p->fd = lfd;
	p->fn = fn;
	loop_del(lfd);
	if (loop_timer_add(ACCEPT_PAUSE_MS, accept_resume, p) == -1) {
		accept_resume(p);
		return;
	}
	if (loop_now_ms() - told >= 60000 || told == 0) {
		told = loop_now_ms();
		init_log("out of file descriptors: not accepting for a "
		    "moment");
	}
}

static void
accept_resume(void *arg)
{
	struct pause	*p = arg;

	if (loop_add(p->fd, EPOLLIN, p->fn, (void *)(intptr_t)p->fd) == -1)
		init_log("listening again: %s", strerror(errno));
	free(p);
}
