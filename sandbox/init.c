/* SPDX-License-Identifier: MIT */
/*
 * init.c: pincer-init, PID 1 of a sandbox. It owns the one epoll loop,
 * the timers, the signals (SIGCHLD, SIGTERM, SIGINT through a signalfd),
 * the reaping of every child, the optional COMMAND run like tini, and the
 * three forwarders that relay 127.0.0.1:8080, :9222 and :3128 to the
 * gateway's socket. The control API it serves is init_http.c's; the
 * protocol is docs/sandbox-api.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "init.h"

#define CONTROL_SOCK	"/run/pincer/control.sock"
#define GATEWAY_SOCK	"/run/pincer/gateway.sock"
#define KILL_GRACE_MS	3000		/* SIGTERM, then SIGKILL */
#define MAX_FDS		65536
#define MAX_TIMERS	4096
#define MAX_WATCHES	4096
#define FWD_BUF		(64 * 1024)	/* per direction of a relay */
#define FWD_TRIES	50		/* gateway backlog full: retries */
#define FWD_RETRY_MS	100
#define ACCEPT_PAUSE_MS	100

struct opts {
	const char	*control;	/* --control PATH */
	int		 control_fd;	/* --control-fd N, or -1 */
	int		 parent_fd;	/* --parent-fd N, or -1 */
	bool		 forward;
	long		 max_file_mb;
	char		**argv;		/* -- COMMAND…, or NULL */
};

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

struct watch {
	pid_t		 pid;
	exit_fn		 fn;
	void		*arg;
};

struct pause {				/* a listener off the loop */
	int		 fd;
	loop_fn		 fn;
};

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
	int		 tries;
	long		 timer;
};

static void	usage(void) __attribute__((noreturn));
static void	die(const char *, ...)
		    __attribute__((noreturn, format(printf, 1, 2)));
static void	parse(int, char **, struct opts *);
static int	control_open(const char *);
static void	loop_run(void) __attribute__((noreturn));
static int	timers_next(void);
static void	timers_run(void);
static void	on_signal(void *, uint32_t);
static void	on_parent(void *, uint32_t);
static void	reap(void);
static void	stop(void);
static void	stop_hard(void *);
static void	kill_all(int);
static void	cmd_exit(void *, pid_t, int);
static char	**merge_env(char *const []);
static void	spawn_child(char *const [], const char *, char *const [],
		    const int [3]) __attribute__((noreturn));
static void	accept_resume(void *);
static void	fwd_start(void);
static void	fwd_accept(void *, uint32_t);
static void	relay_connect(void *);
static void	relay_io(void *, uint32_t);
static void	relay_pump(struct relay *);
static void	relay_update(struct relay *);
static void	relay_close(struct relay *);

/* A Debian root shell's; nothing of the launcher's reaches a command. */
static const char *const base_env[] = {
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/root", "LANG=C.UTF-8", NULL
};

static const int fwd_ports[] = { 8080, 9222, 3128 };

static int		 epfd = -1;
static struct slot	*slots;		/* indexed by fd */
static size_t		 nslots;
static uint32_t		 slot_gen;
static struct timer	*timers;
static size_t		 ntimers, timers_cap;
static long		 timer_ids;
static struct watch	*watches;
static size_t		 nwatches, watches_cap;
static pid_t		 cmd_pid = -1;
static bool		 stopping;

int
main(int argc, char **argv)
{
	struct opts	 o;
	sigset_t	 mask;
	int		 sfd, lfd;

	parse(argc, argv, &o);
	(void)init_now_ms();		/* the clock for uptime starts now */
	/*
	 * Big buffers (an exec's 4 MiB, a listing) come from mmap and go
	 * back when freed: glibc would otherwise raise the threshold after
	 * the first such free and keep the memory in its heap for good.
	 */
	(void)mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	/*
	 * Blocked signals are queued even for a namespace's init, which the
	 * kernel otherwise spares every signal it has no handler for.
	 */
	if (sigprocmask(SIG_BLOCK, &mask, NULL) == -1)
		die("sigprocmask: %s", strerror(errno));
	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll: %s", strerror(errno));
	if ((sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) == -1 ||
	    loop_add(sfd, EPOLLIN, on_signal, (void *)(intptr_t)sfd) == -1)
		die("signalfd: %s", strerror(errno));
	/*
	 * Run on a host (tests), orphans of our commands come back to us
	 * as they would to PID 1, so they are reaped and counted alike.
	 */
	if (getpid() != 1)
		(void)prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	if (o.control_fd != -1) {
		lfd = o.control_fd;
		if (fcntl(lfd, F_SETFD, FD_CLOEXEC) == -1 ||
		    fcntl(lfd, F_SETFL, O_NONBLOCK) == -1)
			die("--control-fd %d: %s", lfd, strerror(errno));
	} else if (o.control != NULL)
		lfd = control_open(o.control);
	else
		lfd = -1;
	http_file_limit((size_t)o.max_file_mb << 20);
	if (lfd != -1)
		http_listen(lfd);
	if (o.parent_fd != -1 && (fcntl(o.parent_fd, F_SETFD, FD_CLOEXEC) ==
	    -1 || loop_add(o.parent_fd, EPOLLIN, on_parent, &o.parent_fd) ==
	    -1))
		die("--parent-fd %d: %s", o.parent_fd, strerror(errno));
	if (o.forward)
		fwd_start();
	if (o.argv != NULL) {
		if ((cmd_pid = init_spawn(o.argv, NULL, NULL, 0, 1, 2)) == -1)
			die("%s: %s", o.argv[0], strerror(errno));
		child_watch(cmd_pid, cmd_exit, NULL);
	}
	loop_run();
}

static void
usage(void)
{
	fprintf(stderr, "usage: pincer-init [--control-fd N | --control PATH] "
	    "[--parent-fd N] [--no-forward] [--max-file-mb N] "
	    "[-- COMMAND ARG...]\n");
	exit(125);
}

static void
die(const char *fmt, ...)
{
	va_list	 ap;

	fprintf(stderr, "pincer-init: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	if (getpid() != 1)
		kill_all(SIGKILL);
	exit(125);
}

void
init_log(const char *fmt, ...)
{
	char	 line[512];
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	fprintf(stderr, "pincer-init: %s\n", line);
}

static void
parse(int argc, char **argv, struct opts *o)
{
	char	*end;
	long	 n;
	int	 i;

	memset(o, 0, sizeof(*o));
	o->control_fd = o->parent_fd = -1;
	o->forward = true;
	o->max_file_mb = 64;
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			if (argv[i + 1] != NULL)
				o->argv = argv + i + 1;
			break;
		}
		if (!strcmp(argv[i], "--no-forward")) {
			o->forward = false;
			continue;
		}
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--control")) {
			o->control = argv[++i];
			continue;
		}
		errno = 0;
		n = strtol(argv[i + 1], &end, 10);
		if (errno != 0 || *end != '\0' || end == argv[i + 1] || n < 0)
			usage();
		if (!strcmp(argv[i], "--control-fd") && n >= 3 && n < INT_MAX)
			o->control_fd = (int)n;
		else if (!strcmp(argv[i], "--parent-fd") && n >= 3 &&
		    n < INT_MAX)
			o->parent_fd = (int)n;
		else if (!strcmp(argv[i], "--max-file-mb") && n >= 1 &&
		    n <= 65536)
			o->max_file_mb = n;
		else
			usage();
		i++;
	}
	if (o->control != NULL && o->control_fd != -1)
		usage();
	/* With a command alone (like tini) there is no API to serve. */
	if (o->control == NULL && o->control_fd == -1 && o->argv == NULL)
		o->control = CONTROL_SOCK;
}

/* The control socket by path: only its owner may connect (0600). */
static int
control_open(const char *path)
{
	struct sockaddr_un	 sun;
	struct stat		 st;
	mode_t			 old;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		die("--control %s: path too long", path);
	memcpy(sun.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) == -1)
		die("socket: %s", strerror(errno));
	/* A socket left by an earlier run; never anything else. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		(void)unlink(path);
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		die("--control %s: %s", path, strerror(errno));
	umask(old);
	if (listen(fd, 64) == -1)
		die("listen: %s", strerror(errno));
	return fd;
}

/* --- the loop --------------------------------------------------------- */

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

static void
loop_run(void)
{
	struct epoll_event	 ev[64];
	struct slot		*s;
	uint32_t		 fd;
	int			 n, i;

	for (;;) {
		n = epoll_wait(epfd, ev, 64, timers_next());
		if (n == -1 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
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
init_now_ms(void)
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
init_wall_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- timers: a short array, scanned; a few hundred at most ------------ */

long
timer_add(uint64_t after_ms, timer_fn fn, void *arg)
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
	timers[ntimers].when = init_now_ms() + after_ms;
	timers[ntimers].fn = fn;
	timers[ntimers].arg = arg;
	ntimers++;
	return timer_ids;
}

void
timer_cancel(long id)
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
	uint64_t	 now = init_now_ms(), min = UINT64_MAX;
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
	uint64_t	 now = init_now_ms();
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

/* --- signals, children ------------------------------------------------ */

void
child_watch(pid_t pid, exit_fn fn, void *arg)
{
	struct watch	*n;
	size_t		 want;

	if (nwatches == watches_cap) {
		want = watches_cap == 0 ? 16 : watches_cap * 2;
		/*
		 * Out of room the child is still reaped, its owner never
		 * told: it would wait forever. Better to end it now.
		 */
		if (want > MAX_WATCHES || (n = reallocarray(watches, want,
		    sizeof(*n))) == NULL) {
			init_log("too many children; killing %ld", (long)pid);
			kill(pid, SIGKILL);
			return;
		}
		watches = n;
		watches_cap = want;
	}
	watches[nwatches].pid = pid;
	watches[nwatches].fn = fn;
	watches[nwatches].arg = arg;
	nwatches++;
}

void
child_unwatch(pid_t pid)
{
	size_t	 i;

	for (i = 0; i < nwatches; i++)
		if (watches[i].pid == pid) {
			watches[i] = watches[--nwatches];
			return;
		}
}

static void
on_signal(void *arg, uint32_t events)
{
	struct signalfd_siginfo	 si;

	(void)events;
	while (read((int)(intptr_t)arg, &si, sizeof(si)) == sizeof(si))
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			stop();
	reap();
}

/* Every child is ours to reap; the owner of a watched one is told. */
static void
reap(void)
{
	struct watch	 w;
	pid_t		 pid;
	size_t		 i;
	int		 st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (i = 0; i < nwatches; i++)
			if (watches[i].pid == pid)
				break;
		if (i == nwatches)
			continue;
		w = watches[i];
		watches[i] = watches[--nwatches];
		w.fn(w.arg, pid, st);
	}
	if (pid == -1 && errno == ECHILD && stopping)
		exit(0);
}

/*
 * The launcher's pipe: it never writes, so readable means hung up. The
 * kernel sends a namespace's init no parent-death signal; this is how
 * PID 1 learns the launcher is gone, and then nothing may live on.
 */
static void
on_parent(void *arg, uint32_t events)
{
	char	 buf[64];
	ssize_t	 n;
	int	 fd = *(int *)arg;

	n = read(fd, buf, sizeof(buf));
	if (n > 0 || (n == -1 && errno == EAGAIN))
		return;
	(void)events;
	init_log("the launcher went away");
	kill_all(SIGKILL);
	exit(137);
}

/* SIGTERM: every process gets SIGTERM, SIGKILL after 3 s, then exit 0. */
static void
stop(void)
{
	if (stopping)
		return;
	stopping = true;
	kill_all(SIGTERM);
	if (timer_add(KILL_GRACE_MS, stop_hard, NULL) == -1)
		stop_hard(NULL);
}

static void
stop_hard(void *arg)
{
	(void)arg;
	kill_all(SIGKILL);
	exit(0);
}

/*
 * As PID 1, every process of the namespace. Run on a host, where kill(-1)
 * would reach the host's processes: the process groups we started, and
 * every child (as a subreaper, orphans of ours are children too).
 */
static void
kill_all(int sig)
{
	char	 path[64], buf[8192], *p, *end;
	size_t	 i;
	ssize_t	 n;
	long	 pid;
	int	 fd;

	if (getpid() == 1) {
		(void)kill(-1, sig);
		return;
	}
	proc_kill_all(sig);
	term_kill_all(sig);
	for (i = 0; i < nwatches; i++) {
		(void)kill(-watches[i].pid, sig);
		(void)kill(watches[i].pid, sig);
	}
	(void)snprintf(path, sizeof(path), "/proc/self/task/%ld/children",
	    (long)getpid());
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	for (p = buf; (pid = strtol(p, &end, 10)) > 0; p = end) {
		(void)kill(-(pid_t)pid, sig);
		(void)kill((pid_t)pid, sig);
	}
}

/* Like tini: the command's status is ours, and nothing outlives it. */
static void
cmd_exit(void *arg, pid_t pid, int st)
{
	(void)arg;
	(void)pid;
	if (stopping)
		return;
	kill_all(SIGKILL);
	exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

/* --- spawning --------------------------------------------------------- */

pid_t
init_spawn(char *const argv[], const char *cwd, char *const env[],
    int in, int out, int err)
{
	char	**envp;
	pid_t	 pid = -1;
	int	 fds[3] = { in, out, err }, nul = -1, i, saved;

	if ((envp = merge_env(env)) == NULL)
		return -1;
	for (i = 0; i < 3; i++) {
		if (fds[i] >= 0)
			continue;
		if (nul == -1 && (nul = open("/dev/null", O_RDWR |
		    O_CLOEXEC)) == -1)
			goto done;
		fds[i] = nul;
	}
	if ((pid = fork()) == 0)
		spawn_child(argv, cwd, envp, fds);
	/* Here too, so that a kill of the group cannot come before it. */
	if (pid > 0)
		(void)setpgid(pid, pid);
done:
	saved = errno;
	free(envp);
	if (nul != -1)
		close(nul);
	errno = saved;
	return pid;
}

void
init_base_env(char ***out)
{
	char	**v, *p;
	size_t	 n, i, size = 0;

	for (n = 0; base_env[n] != NULL; n++)
		size += strlen(base_env[n]) + 1;
	/* One block, pointers then strings, so one free() releases it. */
	if ((v = malloc((n + 1) * sizeof(*v) + size)) == NULL) {
		*out = NULL;
		return;
	}
	p = (char *)(v + n + 1);
	for (i = 0; i < n; i++) {
		size = strlen(base_env[i]) + 1;
		memcpy(p, base_env[i], size);
		v[i] = p;
		p += size;
	}
	v[n] = NULL;
	*out = v;
}

/* The base environment under env's entries (same name: env wins). */
static char **
merge_env(char *const env[])
{
	char	**v;
	size_t	 n = 0, b, i, j, k;
	size_t	 klen;

	for (b = 0; base_env[b] != NULL; b++)
		;
	while (env != NULL && env[n] != NULL)
		n++;
	if ((v = calloc(b + n + 1, sizeof(*v))) == NULL)
		return NULL;
	k = 0;
	for (i = 0; i < b; i++) {
		klen = strcspn(base_env[i], "=") + 1;
		for (j = 0; j < n; j++)
			if (!strncmp(env[j], base_env[i], klen))
				break;
		if (j == n)
			v[k++] = (char *)base_env[i];
	}
	for (j = 0; j < n; j++)
		v[k++] = env[j];
	v[k] = NULL;
	return v;
}

/*
 * In the child: its own process group (a kill reaches everything it
 * starts), default signals, only fds 0-2, then exec. A failure is told
 * the way a shell tells it: the reason on stderr, status 127 or 126.
 */
static void
spawn_child(char *const argv[], const char *cwd, char *const envp[],
    const int fds[3])
{
	sigset_t	 none, ttou;
	int		 t[3], i, code;

	(void)setpgid(0, 0);
	/* Above 2 first, so that dup2 cannot clobber one with another. */
	for (i = 0; i < 3; i++)
		if ((t[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3)) == -1)
			_exit(126);
	for (i = 0; i < 3; i++)
		if (dup2(t[i], i) == -1)
			_exit(126);
	(void)syscall(SYS_close_range, 3U, ~0U, 0U);
	/* Run in the foreground of a terminal we were given, like tini. */
	if (isatty(0)) {
		sigemptyset(&ttou);
		sigaddset(&ttou, SIGTTOU);
		sigprocmask(SIG_BLOCK, &ttou, NULL);
		(void)tcsetpgrp(0, getpgrp());
	}
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (cwd != NULL && chdir(cwd) == -1) {
		dprintf(2, "pincer-init: cd %s: %s\n", cwd, strerror(errno));
		_exit(127);
	}
	/* execvp searches the PATH of environ: the command's own. */
	environ = (char **)envp;
	execvp(argv[0], argv);
	code = errno == ENOENT || errno == ENOTDIR ? 127 : 126;
	dprintf(2, "pincer-init: %s: %s\n", argv[0], strerror(errno));
	_exit(code);
}

/*
 * Out of fds, a listening socket stays readable and a level-triggered
 * loop would spin on it: off the loop for a moment, then back.
 */
void
init_accept_pause(int lfd, int err, loop_fn fn)
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
	if (timer_add(ACCEPT_PAUSE_MS, accept_resume, p) == -1) {
		accept_resume(p);
		return;
	}
	if (init_now_ms() - told >= 60000 || told == 0) {
		told = init_now_ms();
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

/* --- forwarders: 127.0.0.1:port -> the gateway's socket ---------------- */

/* A port that is taken is told and skipped; the rest goes on. */
static void
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
		}
	}
}

static void
fwd_accept(void *arg, uint32_t events)
{
	struct relay	*r;
	int		 lfd = (int)(intptr_t)arg, fd, i;

	(void)events;
	for (i = 0; i < 16; i++) {
		if ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK |
		    SOCK_CLOEXEC)) == -1) {
			init_accept_pause(lfd, errno, fwd_accept);
			return;
		}
		if ((r = calloc(1, sizeof(*r) + 2 * FWD_BUF)) == NULL) {
			close(fd);
			continue;
		}
		r->s[0].fd = fd;
		r->s[0].buf = (char *)(r + 1);
		r->s[1].buf = r->s[0].buf + FWD_BUF;
		r->s[0].r = r->s[1].r = r;
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
	if (connect(r->s[1].fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
		r->connected = true;
	else if (errno == EAGAIN && ++r->tries < FWD_TRIES) {
		if ((r->timer = timer_add(FWD_RETRY_MS, relay_connect, r)) ==
		    -1)
			goto fail;
		return;
	} else if (errno != EINPROGRESS) {
		/* Told once a minute at most: a client may retry in a loop. */
		if (init_now_ms() - told >= 60000 || told == 0) {
			told = init_now_ms();
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
	}
	(void)events;
	relay_pump(r);
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

	timer_cancel(r->timer);
	for (i = 0; i < 2; i++) {
		loop_del(r->s[i].fd);
		close(r->s[i].fd);
	}
	free(r);
}
