/* SPDX-License-Identifier: MIT */
/*
 * sandbox.c: pincer-sandbox, the launcher of one sandbox. It creates the
 * namespaces, builds the root file system, drops every privilege and
 * execs the sandbox's first process. Like bubblewrap it is small enough to
 * read in one sitting: it parses no JSON, opens no network connection,
 * and fails closed (die) on anything unexpected.
 *
 * The order is the same every time: clone into new user, mount, pid,
 * net, uts, ipc and cgroup namespaces; map uids; build the root on a
 * tmpfs (an overlay of the host's /usr, a filtered /etc, /proc, a minimal
 * /dev, /tmp, /workspace, /data, /run/pincer); pivot_root; drop every
 * capability; PR_SET_NO_NEW_PRIVS; seccomp; close fds; exec.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/securebits.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox.h"

struct opts {
	const char	*dir;		/* the sandbox folder, absolute */
	const char	*hostname;
	long		 uid_base;	/* as root: host uid of sandbox root */
	bool		 range;		/* uid_base's range is ours to map */
	long		 tmp_mb;
	const char	*rootfs;	/* --rootfs: lower layer, or NULL */
	int		 status_fd;
	int		 init_fd;	/* --init: PID 1's binary, or -1 */
	int		 keep[8];	/* --keep-fd: passed to the command */
	int		 nkeep;
	const char	*tools[8];	/* --tool: read-only in /opt/pincer */
	int		 ntools;
	struct limits	 limits;
	char		**argv;		/* the command */
};

static void	usage(void) __attribute__((noreturn));
static void	parse(int, char **, struct opts *);
static bool	tool_ok(const char *);
static void	open_init(struct opts *, const char *);
static bool	uids_mapped(long, long);
static int	child_main(void *);
static void	write_maps(pid_t, const struct opts *);
static void	prepare_dirs(const struct opts *);
static void	lo_up(void);
static void	drop_privileges(void);
static void	close_fds(const struct opts *);
static void	exec_init(const struct opts *) __attribute__((noreturn));
static int	reaper(pid_t) __attribute__((noreturn));
static void	on_term(int);
static void	on_alarm(int);
static void	status(int, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

static int	 sync_pipe[2];
static volatile pid_t sandbox_pid;

/*
 * What the sandbox's processes find in their environment: nothing of the
 * launcher's, whose environment may hold the gateway's settings.
 */
static char *const clean_env[] = {
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/root", "LANG=C.UTF-8", NULL
};

int
main(int argc, char **argv)
{
	struct opts	 o;
	pid_t		 pid;
	int		 st, flags;
	char		 go = 'g';

	parse(argc, argv, &o);
	prepare_dirs(&o);
	/*
	 * The sandbox's root may not search the folders above the sandbox
	 * folder (the state folder is 0700): it works from inside it, with
	 * relative paths, starting here.
	 */
	if (chdir(o.dir) == -1)
		die("%s: %s", o.dir, strerror(errno));
	if (pipe2(sync_pipe, O_CLOEXEC) == -1)
		die("pipe: %s", strerror(errno));
	flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET |
	    CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP | SIGCHLD;
	/* Like fork (the child goes on from here on a copy of the stack),
	 * with new namespaces. */
	pid = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, 0);
	if (pid == 0)
		_exit(child_main(&o));
	if (pid == -1)
		die("clone (user, mount, pid, net namespaces): %s; see "
		    "pincer doctor", strerror(errno));
	close(sync_pipe[0]);
	sandbox_pid = pid;
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	signal(SIGHUP, on_term);
	signal(SIGALRM, on_alarm);
	/* In its groups and mapped before it runs a thing of its own. */
	cgroup_enter(&o.limits, pid);
	write_maps(pid, &o);
	/* Kept open while the launcher lives: see child_main. */
	if (write(sync_pipe[1], &go, 1) != 1)
		die("cannot start the sandbox");
	status(o.status_fd, "{\"event\":\"started\",\"pid\":%ld}", (long)pid);
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR)
			die("waitpid: %s", strerror(errno));
	cgroup_leave(&o.limits);
	if (WIFEXITED(st)) {
		status(o.status_fd, "{\"event\":\"exited\",\"code\":%d}",
		    WEXITSTATUS(st));
		return WEXITSTATUS(st);
	}
	status(o.status_fd, "{\"event\":\"killed\",\"signal\":%d}",
	    WTERMSIG(st));
	return 128 + WTERMSIG(st);
}

void
die(const char *fmt, ...)
{
	va_list	 ap;

	fprintf(stderr, "pincer-sandbox: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	_exit(125);
}

static void
usage(void)
{
	fprintf(stderr, "usage: pincer-sandbox --dir DIR [--hostname NAME] "
	    "[--uid-base N] [--tmp-mb N] [--memory-mb N] [--pids-max N] "
	    "[--cpu-weight N] [--cpu-quota PCT] [--cgroup NAME]\n"
	    "    [--rootfs DIR] [--status-fd FD] [--init PATH] "
	    "[--keep-fd FD]... [--tool PATH]... -- COMMAND [ARG...]\n"
	    "With --init, PATH is PID 1 and COMMAND... are its arguments.\n"
	    "--tool binds an absolute PATH (a file or a folder) read-only at\n"
	    "/opt/pincer/NAME, NAME being its last component.\n");
	exit(125);
}

static void
parse(int argc, char **argv, struct opts *o)
{
	char	*end;
	int	 i;

	memset(o, 0, sizeof(*o));
	o->hostname = "sandbox";
	o->uid_base = 100000;
	o->tmp_mb = 64;
	o->status_fd = -1;
	o->init_fd = -1;
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			o->argv = argv + i + 1;
			break;
		}
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--dir"))
			o->dir = argv[++i];
		else if (!strcmp(argv[i], "--hostname"))
			o->hostname = argv[++i];
		else if (!strcmp(argv[i], "--uid-base"))
			o->uid_base = strtol(argv[++i], &end, 10);
		else if (!strcmp(argv[i], "--tmp-mb"))
			o->tmp_mb = strtol(argv[++i], &end, 10);
		else if (!strcmp(argv[i], "--status-fd"))
			o->status_fd = (int)strtol(argv[++i], &end, 10);
		else if (!strcmp(argv[i], "--memory-mb"))
			o->limits.memory_mb = strtol(argv[++i], &end, 10);
		else if (!strcmp(argv[i], "--pids-max"))
			o->limits.pids = strtol(argv[++i], &end, 10);
		else if (!strcmp(argv[i], "--cpu-weight"))
			o->limits.cpu_weight = strtol(argv[++i], &end, 10);
		else if (!strcmp(argv[i], "--cpu-quota"))
			o->limits.cpu_quota = strtol(argv[++i], &end, 10);
		else if (!strcmp(argv[i], "--rootfs"))
			o->rootfs = argv[++i];
		else if (!strcmp(argv[i], "--cgroup"))
			o->limits.name = argv[++i];
		else if (!strcmp(argv[i], "--init"))
			open_init(o, argv[++i]);
		else if (!strcmp(argv[i], "--tool")) {
			if (o->ntools == (int)(sizeof(o->tools) /
			    sizeof(o->tools[0])) || !tool_ok(argv[i + 1]))
				usage();
			o->tools[o->ntools++] = argv[++i];
		} else if (!strcmp(argv[i], "--keep-fd")) {
			if (o->nkeep == (int)(sizeof(o->keep) /
			    sizeof(o->keep[0])))
				usage();
			o->keep[o->nkeep] = (int)strtol(argv[++i], &end, 10);
			if (*end != '\0' || o->keep[o->nkeep] < 3 ||
			    fcntl(o->keep[o->nkeep], F_GETFD) == -1)
				usage();
			o->nkeep++;
		} else
			usage();
	}
	/* The cgroups are named after the sandbox folder, unless given. */
	if (o->limits.name == NULL && o->dir != NULL &&
	    (o->limits.name = strrchr(o->dir, '/')) != NULL)
		o->limits.name++;
	if (o->limits.memory_mb < 0 || o->limits.memory_mb > 1048576 ||
	    o->limits.pids < 0 || o->limits.pids > 4194304 ||
	    o->limits.cpu_weight < 0 || o->limits.cpu_weight > 10000 ||
	    o->limits.cpu_quota < 0 || o->limits.cpu_quota > 100000 ||
	    (o->limits.name != NULL && (*o->limits.name == '\0' ||
	    *o->limits.name == '.' || strchr(o->limits.name, '/') != NULL ||
	    strlen(o->limits.name) > 128)))
		usage();
	o->range = geteuid() == 0 && uids_mapped(o->uid_base, 65536);
	if (o->dir == NULL || o->dir[0] != '/' || o->argv == NULL ||
	    (o->argv[0] == NULL && o->init_fd == -1) || o->uid_base < 1 || o->uid_base > 4000000000L
	    || o->tmp_mb < 1 || o->tmp_mb > 65536 ||
	    strlen(o->dir) > PATH_MAX - 64)
		usage();
}

/*
 * As root, the sandbox's root is a host uid of its own range. Inside a
 * user namespace that maps only a few uids (rootless Docker or Podman)
 * the range must exist there; when it does not, the launcher does as a
 * normal user does and maps its own uid alone.
 */
static bool
uids_mapped(long first, long count)
{
	FILE		*f;
	unsigned long	 in, out, n;
	bool		 ok = false;

	if ((f = fopen("/proc/self/uid_map", "re")) == NULL)
		return true;
	while (!ok && fscanf(f, "%lu %lu %lu", &in, &out, &n) == 3)
		ok = (unsigned long)first >= in &&
		    (unsigned long)(first + count) <= in + n;
	fclose(f);
	return ok;
}

/*
 * The sandbox's root is an unprivileged host uid: as root, a range of
 * 65536 from uid_base; as a normal user, that user alone (setgroups
 * denied, as unprivileged user namespaces require).
 */
/* An absolute path whose last component is a plain name. */
static bool
tool_ok(const char *path)
{
	const char	*name = strrchr(path, '/');

	if (path[0] != '/' || name == NULL || name[1] == '\0' ||
	    strstr(path, "/../") != NULL || strlen(path) >= PATH_MAX)
		return false;
	return strspn(name + 1, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == strlen(name + 1) &&
	    strcmp(name + 1, ".") != 0 && strcmp(name + 1, "..") != 0;
}

static void
write_maps(pid_t pid, const struct opts *o)
{
	char	 path[64], map[64];
	int	 fd;
	bool	 root = o->range;

	snprintf(path, sizeof(path), "/proc/%ld/setgroups", (long)pid);
	if (!root && ((fd = open(path, O_WRONLY | O_CLOEXEC)) == -1 ||
	    write(fd, "deny", 4) != 4))
		die("cannot deny setgroups: %s", strerror(errno));
	if (!root)
		close(fd);
	snprintf(map, sizeof(map), root ? "0 %ld 65536\n" : "0 %ld 1\n",
	    root ? o->uid_base : (long)geteuid());
	snprintf(path, sizeof(path), "/proc/%ld/uid_map", (long)pid);
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) == -1 ||
	    write(fd, map, strlen(map)) != (ssize_t)strlen(map))
		die("cannot write the uid map: %s", strerror(errno));
	close(fd);
	snprintf(map, sizeof(map), root ? "0 %ld 65536\n" : "0 %ld 1\n",
	    root ? o->uid_base : (long)getegid());
	snprintf(path, sizeof(path), "/proc/%ld/gid_map", (long)pid);
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) == -1 ||
	    write(fd, map, strlen(map)) != (ssize_t)strlen(map))
		die("cannot write the gid map: %s", strerror(errno));
	close(fd);
}

/* The sandbox folder's parts, owned by the sandbox's root. */
static void
prepare_dirs(const struct opts *o)
{
	static const char *const parts[] = { "root", "upper", "work",
		"workspace", "data", "run", NULL };
	char		 path[PATH_MAX];
	size_t		 i;
	uid_t		 uid = o->range ? (uid_t)o->uid_base : geteuid();
	gid_t		 gid = o->range ? (gid_t)o->uid_base : getegid();

	if (mkdir(o->dir, 0700) == -1 && errno != EEXIST)
		die("%s: %s", o->dir, strerror(errno));
	if (lchown(o->dir, uid, gid) == -1)
		die("%s: %s", o->dir, strerror(errno));
	for (i = 0; parts[i] != NULL; i++) {
		snprintf(path, sizeof(path), "%s/%s", o->dir, parts[i]);
		if (mkdir(path, 0755) == -1 && errno != EEXIST)
			die("%s: %s", path, strerror(errno));
		if (lchown(path, uid, gid) == -1)
			die("%s: %s", path, strerror(errno));
	}
	snprintf(path, sizeof(path), "%s/upper/usr", o->dir);
	if (mkdir(path, 0755) == -1 && errno != EEXIST)
		die("%s: %s", path, strerror(errno));
	if (lchown(path, uid, gid) == -1)
		die("%s: %s", path, strerror(errno));
}

static int
child_main(void *arg)
{
	const struct opts	*o = arg;
	struct pollfd		 pfd;
	sigset_t		 chld;
	pid_t			 cmd;
	char			 c;

	/* Wait until the launcher has written the uid map. */
	close(sync_pipe[1]);
	if (read(sync_pipe[0], &c, 1) != 1)
		die("the launcher went away");
	if (setresgid(0, 0, 0) == -1 || setresuid(0, 0, 0) == -1)
		die("cannot become the sandbox's root: %s", strerror(errno));
	/*
	 * Die with the launcher. Set after the change of credentials, which
	 * clears it; the launcher holds the pipe open while it lives, so a
	 * hang-up now means it died before the signal was armed.
	 */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1)
		die("prctl: %s", strerror(errno));
	pfd.fd = sync_pipe[0];
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLHUP))
		die("the launcher went away");
	if (o->range && setgroups(0, NULL) == -1 && errno != EPERM)
		die("setgroups: %s", strerror(errno));
	if (sethostname(o->hostname, strlen(o->hostname)) == -1)
		die("sethostname: %s", strerror(errno));
	rootfs_build(o->tmp_mb, o->rootfs, o->tools, o->ntools);
	lo_up();
	/*
	 * A new session: the sandbox has no controlling terminal of the
	 * caller's to push keystrokes into (TIOCSTI, CVE-2017-5226).
	 */
	if (setsid() == -1)
		die("setsid: %s", strerror(errno));
	drop_privileges();
	if (chdir("/workspace") == -1)
		die("chdir /workspace: %s", strerror(errno));
	if (o->init_fd != -1)
		exec_init(o);
	/* SIGCHLD comes to the reaper through a signalfd: block it first,
	 * and unblock it again in the command. */
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &chld, NULL) == -1)
		die("sigprocmask: %s", strerror(errno));
	if ((cmd = fork()) == -1)
		die("fork: %s", strerror(errno));
	if (cmd == 0) {
		sigprocmask(SIG_UNBLOCK, &chld, NULL);
		close_fds(o);
		execvpe(o->argv[0], o->argv, clean_env);
		die("exec %s: %s", o->argv[0], strerror(errno));
	}
	reaper(cmd);
}

/*
 * PID 1 of the sandbox until pincer-init takes the part: reap every
 * orphan, and end with the command. The kernel ignores a parent-death
 * SIGKILL aimed at a namespace's init, so it watches the launcher's pipe
 * instead: when the launcher dies the pipe hangs up, this exits, and the
 * kernel kills everything left in the namespace.
 */
static int
reaper(pid_t cmd)
{
	struct pollfd		 pfd[2];
	struct signalfd_siginfo	 si;
	sigset_t		 chld;
	pid_t			 p;
	int			 st;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigaddset(&chld, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &chld, NULL) == -1)
		die("sigprocmask: %s", strerror(errno));
	pfd[0].fd = sync_pipe[0];
	pfd[0].events = POLLIN;
	if ((pfd[1].fd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK)) ==
	    -1)
		die("signalfd: %s", strerror(errno));
	pfd[1].events = POLLIN;
	for (;;) {
		while ((p = waitpid(-1, &st, WNOHANG)) > 0)
			if (p == cmd)
				_exit(WIFEXITED(st) ? WEXITSTATUS(st) :
				    128 + WTERMSIG(st));
		if (poll(pfd, 2, -1) == -1 && errno != EINTR)
			die("poll: %s", strerror(errno));
		if (pfd[0].revents & (POLLHUP | POLLERR))
			_exit(137);
		/* Stopped by the launcher: everything in here goes. */
		while (read(pfd[1].fd, &si, sizeof(si)) == sizeof(si))
			if (si.ssi_signo == SIGTERM) {
				kill(-1, SIGKILL);
				_exit(143);
			}
	}
}

/*
 * Stop (SIGTERM, SIGINT, SIGHUP to the launcher): PID 1 gets SIGTERM and
 * three seconds to end the sandbox cleanly, then SIGKILL, which the
 * kernel delivers to a namespace's init from outside it. The launcher
 * then removes the cgroups as after any end.
 */
static void
on_term(int sig)
{
	(void)sig;
	if (sandbox_pid > 0) {
		kill(sandbox_pid, SIGTERM);
		alarm(3);
	}
}

static void
on_alarm(int sig)
{
	(void)sig;
	if (sandbox_pid > 0)
		kill(sandbox_pid, SIGKILL);
}

/*
 * --init: PATH was opened before the sandbox was built (it need not be
 * visible inside), and becomes PID 1 itself. The launcher's pipe stays
 * open in it: its hang-up is how PID 1 learns the launcher died, since
 * the kernel sends no parent-death signal to a namespace's init.
 */
static void
exec_init(const struct opts *o)
{
	char	**argv, pfd[16];
	int	 n, i;

	for (n = 0; o->argv[n] != NULL; n++)
		;
	if ((argv = calloc((size_t)n + 4, sizeof(*argv))) == NULL)
		die("out of memory");
	snprintf(pfd, sizeof(pfd), "%d", sync_pipe[0]);
	argv[0] = "pincer-init";
	argv[1] = "--parent-fd";
	argv[2] = pfd;
	for (i = 0; i < n; i++)
		argv[3 + i] = o->argv[i];
	if (fcntl(sync_pipe[0], F_SETFD, 0) == -1)
		die("fcntl: %s", strerror(errno));
	close_fds(o);
	syscall(SYS_execveat, o->init_fd, "", argv, clean_env, AT_EMPTY_PATH);
	die("exec %s: %s", "pincer-init", strerror(errno));
}

static void
open_init(struct opts *o, const char *path)
{
	if (o->init_fd != -1)
		close(o->init_fd);
	if ((o->init_fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		die("--init %s: %s", path, strerror(errno));
}

/* Loopback is the only interface; bring it up so 127.0.0.1 works. */
static void
lo_up(void)
{
	struct ifreq	 ifr;
	int		 fd;

	if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		die("socket: %s", strerror(errno));
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == -1)
		die("lo: %s", strerror(errno));
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) == -1)
		die("lo up: %s", strerror(errno));
	close(fd);
}

/*
 * Every capability goes: the bounding set (so no exec can regain one),
 * the ambient, inheritable, permitted and effective sets; and the
 * securebits that would hand root's capabilities back on exec are locked
 * off. Then no new privileges, ever, and the seccomp filter.
 */
static void
drop_privileges(void)
{
	cap_t	 none;
	int	 c;

	for (c = 0; c <= CAP_LAST_CAP; c++)
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) == -1 && errno != EINVAL)
			die("cannot drop capability %d: %s", c,
			    strerror(errno));
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == -1)
		die("cannot clear ambient capabilities: %s", strerror(errno));
	if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED |
	    SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED |
	    SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED,
	    0, 0, 0) == -1)
		die("securebits: %s", strerror(errno));
	if ((none = cap_init()) == NULL || cap_set_proc(none) == -1)
		die("cannot drop capabilities: %s", strerror(errno));
	cap_free(none);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		die("no_new_privs: %s", strerror(errno));
	seccomp_install();
}

/*
 * Only 0, 1, 2 and the allow-listed fds (--keep-fd, and PID 1's pipe to
 * the launcher) reach the command: runc CVE-2024-21626 leaked a
 * directory fd. The status fd stays with the launcher; --init's binary
 * is close-on-exec and goes with the exec.
 */
static void
close_fds(const struct opts *o)
{
	int	 keep[12], n = 0, i, j, t, lo;

	for (i = 0; i < o->nkeep; i++) {
		if (fcntl(o->keep[i], F_SETFD, 0) == -1)
			die("--keep-fd %d: %s", o->keep[i], strerror(errno));
		keep[n++] = o->keep[i];
	}
	if (o->init_fd != -1) {
		keep[n++] = sync_pipe[0];
		keep[n++] = o->init_fd;
	}
	for (i = 1; i < n; i++)		/* a handful: insertion sort */
		for (j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
			t = keep[j];
			keep[j] = keep[j - 1];
			keep[j - 1] = t;
		}
	lo = 3;
	for (i = 0; i <= n; i++) {
		int	 hi = i < n ? keep[i] - 1 : INT_MAX;

		if (hi >= lo && syscall(SYS_close_range, (unsigned)lo,
		    (unsigned)hi, 0) == -1)
			for (t = lo; t <= hi && t < 65536; t++)
				close(t);
		if (i < n && keep[i] + 1 > lo)
			lo = keep[i] + 1;
	}
}

static void
status(int fd, const char *fmt, ...)
{
	char	 line[256];
	va_list	 ap;
	int	 n;

	if (fd < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 1)
		return;
	line[n++] = '\n';
	if (write(fd, line, (size_t)n) != n)
		return;
}

