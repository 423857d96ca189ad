/* SPDX-License-Identifier: MIT */
/*
 * init.c: pincer-init, PID 1 of a sandbox: its options, the signals
 * (SIGCHLD, SIGTERM, SIGINT through a signalfd), the reaping of every
 * child, the stop, and the optional COMMAND run like tini. The loop is
 * init_loop.c's, the control API init_http.c's, the forwarders
 * init_fwd.c's; the protocol is docs/sandbox-api.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
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
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init.h"

#define CONTROL_SOCK	"/run/pincer/control.sock"
#define KILL_GRACE_MS	3000		/* SIGTERM, then SIGKILL */
#define MAX_WATCHES	4096

struct opts {
	const char	*control;	/* --control PATH */
	int		 control_fd;	/* --control-fd N, or -1 */
	int		 parent_fd;	/* --parent-fd N, or -1 */
	bool		 forward;
	long		 max_file_mb;
	char		**argv;		/* -- COMMAND…, or NULL */
};

struct watch {
	pid_t		 pid;
	exit_fn		 fn;
	void		*arg;
};

static void	usage(void) __attribute__((noreturn));
static void	die(const char *, ...)
		    __attribute__((noreturn, format(printf, 1, 2)));
static void	parse(int, char **, struct opts *);
static int	control_listener(const struct opts *);
static int	control_open(const char *);
static void	on_signal(void *, uint32_t);
static bool	from_inside(const struct signalfd_siginfo *);
static void	on_parent(void *, uint32_t);
static void	reap(void);
static void	stop(void);
static void	stop_hard(void *);
static void	kill_all(int);
static void	cmd_exit(void *, pid_t, int);

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
	(void)loop_now_ms();		/* the clock for uptime starts now */
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
	if (loop_init() == -1)
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
	lfd = control_listener(&o);
	http_file_limit((size_t)o.max_file_mb << 20);
	if (lfd != -1)
		conn_listen(lfd);
	if (o.parent_fd != -1 && (fcntl(o.parent_fd, F_SETFD, FD_CLOEXEC) ==
	    -1 || loop_add(o.parent_fd, EPOLLIN, on_parent, &o.parent_fd) ==
	    -1))
		die("--parent-fd %d: %s", o.parent_fd, strerror(errno));
	if (o.forward)
		fwd_start();
	if (o.argv != NULL) {
		if ((cmd_pid = spawn_cmd(o.argv, NULL, NULL, 0, 1, 2)) == -1)
			die("%s: %s", o.argv[0], strerror(errno));
		init_child_watch(cmd_pid, cmd_exit, NULL);
	}
	(void)loop_run();
	die("epoll_wait: %s", strerror(errno));
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

/* The control socket: inherited (--control-fd), made, or none (-1). */
static int
control_listener(const struct opts *o)
{
	int	 lfd;

	if (o->control_fd != -1) {
		lfd = o->control_fd;
		if (fcntl(lfd, F_SETFD, FD_CLOEXEC) == -1 ||
		    fcntl(lfd, F_SETFL, O_NONBLOCK) == -1)
			die("--control-fd %d: %s", lfd, strerror(errno));
	} else if (o->control != NULL)
		lfd = control_open(o->control);
	else
		lfd = -1;
	return lfd;
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

/* --- signals, children ------------------------------------------------ */

void
init_child_watch(pid_t pid, exit_fn fn, void *arg)
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
init_child_unwatch(pid_t pid)
{
	size_t	 i;

	for (i = 0; i < nwatches; i++)
		if (watches[i].pid == pid) {
			watches[i] = watches[--nwatches];
			return;
		}
}

/*
 * As PID 1, a stop comes from the launcher, outside the sandbox's pid
 * namespace, where the kernel shows the sender as pid 0. A process in
 * the sandbox (its root may signal PID 1 once it has a handler) does not
 * get to stop the sandbox: the gateway decides that.
 */
static bool
from_inside(const struct signalfd_siginfo *si)
{
	return getpid() == 1 && si->ssi_pid != 0;
}

static void
on_signal(void *arg, uint32_t events)
{
	struct signalfd_siginfo	 si;

	(void)events;
	while (read((int)(intptr_t)arg, &si, sizeof(si)) == sizeof(si))
		if ((si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) &&
		    !from_inside(&si))
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
	if (loop_timer_add(KILL_GRACE_MS, stop_hard, NULL) == -1)
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
	pty_kill_all(sig);
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
