/* SPDX-License-Identifier: MIT */
/*
 * launch.c: the host side of a sandbox for sbx.c: starting its launcher,
 * binding its sockets, checking what the host offers, reading its cgroup,
 * and removing its folder without following what the sandbox planted.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pincer.h"

static void	child(int, int, const char *, char **, char **)
		    __attribute__((noreturn));
static void	fmt(char *, size_t, const char *, ...) PINCER_PRINTF(3, 4);

/*
 * Start pincer-sandbox for one sandbox, with pincer-init as its PID 1 and
 * the listening control socket as fd 3. Its stdout, stderr and status
 * lines come back on *out (non-blocking). Everything the child needs is
 * prepared before fork: between fork and exec a threaded process may
 * make only async-signal-safe calls.
 */
pid_t
launch_spawn(const struct launch_spec *ls, int *out, char *err, size_t errsz)
{
	const struct config	*c = config_current();
	char			 launcher[PATH_MAX], init[PATH_MAX];
	char			 agent[PATH_MAX], real_agent[PATH_MAX];
	char			 real_skills[PATH_MAX];
	char			 uid[32], tmp[32], mem[32], pids[32], cpu[32];
	char			 quota[32];
	char			*argv[48];
	char			*envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
				    NULL };
	int			 p[2], n = 0;
	pid_t			 pid;

	launch_exe_path(c->sbx_launcher, "pincer-sandbox", launcher,
	    sizeof(launcher));
	launch_exe_path(c->sbx_init, "pincer-init", init, sizeof(init));
	snprintf(uid, sizeof(uid), "%lld", ls->uid_base);
	snprintf(tmp, sizeof(tmp), "%ld", c->sbx_tmp_mb);
	snprintf(mem, sizeof(mem), "%ld", c->sbx_memory_mb);
	snprintf(pids, sizeof(pids), "%ld", c->sbx_pids_max);
	snprintf(cpu, sizeof(cpu), "%ld", c->sbx_cpu_weight);
	snprintf(quota, sizeof(quota), "%ld", c->sbx_cpu_quota);
	argv[n++] = "pincer-sandbox";
	argv[n++] = "--dir";		argv[n++] = (char *)ls->dir;
	argv[n++] = "--hostname";	argv[n++] = (char *)ls->name;
	argv[n++] = "--uid-base";	argv[n++] = uid;
	argv[n++] = "--tmp-mb";		argv[n++] = tmp;
	argv[n++] = "--memory-mb";	argv[n++] = mem;
	argv[n++] = "--pids-max";	argv[n++] = pids;
	argv[n++] = "--cpu-weight";	argv[n++] = cpu;
	argv[n++] = "--cpu-quota";	argv[n++] = quota;
	argv[n++] = "--cgroup";		argv[n++] = (char *)ls->cgroup;
	argv[n++] = "--status-fd";	argv[n++] = "4";
	if (c->sbx_rootfs[0] != '\0') {
		argv[n++] = "--rootfs";
		argv[n++] = c->sbx_rootfs;
	}
	/* The agent runtime and the bundled skills, read-only under
	 * /opt/pincer (the launcher skips a missing one). */
	launch_exe_path(c->agent_runtime, "pincer-agent", agent,
	    sizeof(agent));
	/* Canonical paths: the launcher takes no "..", and one missing
	 * here is left out rather than failing every sandbox. */
	if (agent[0] != '\0' && realpath(agent, real_agent) != NULL) {
		argv[n++] = "--tool";	argv[n++] = real_agent;
	}
	if (c->agent_skills_dir[0] != '\0' &&
	    realpath(c->agent_skills_dir, real_skills) != NULL) {
		argv[n++] = "--tool";	argv[n++] = real_skills;
	}
	argv[n++] = "--init";		argv[n++] = init;
	argv[n++] = "--keep-fd";	argv[n++] = "3";
	argv[n++] = "--";
	argv[n++] = "--control-fd";	argv[n++] = "3";
	argv[n] = NULL;
	if (pipe2(p, O_CLOEXEC) == -1) {
		fmt(err, errsz, "pipe: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) == -1) {
		fmt(err, errsz, "fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0)
		child(ls->control_fd, p[1], launcher, argv, envp);
	close(p[1]);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	*out = p[0];
	return pid;
}

/* Between fork and exec: async-signal-safe calls only. */
static void
child(int ctl, int out, const char *launcher, char **argv, char **envp)
{
	sigset_t	 none;

	/* Ends with pincerd: a sandbox never outlives its gateway. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	/* pincerd blocks its signals for sigwait and ignores SIGPIPE; both
	 * would pass into the sandbox through exec. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	if (dup2(ctl, 3) == -1 || dup2(out, 4) == -1 || dup2(out, 2) == -1 ||
	    dup2(out, 1) == -1)
		_exit(125);
	close(0);
	if (open("/dev/null", O_RDONLY) != 0)
		_exit(125);
	syscall(SYS_close_range, 5U, ~0U, 0);
	execve(launcher, argv, envp);
	_exit(127);
}

/*
 * Bind a listening socket in the sandbox's run/ folder. A Unix socket
 * path holds 107 bytes; a longer one is reached through /proc/self/fd of
 * an open run/ folder, and the string bound is what identifies it.
 */
int
launch_bind(const char *dir, const char *file, int *run_fd, char *bound,
    size_t boundsz, char *err, size_t errsz)
{
	struct sockaddr_un	 sun;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if ((size_t)snprintf(sun.sun_path, sizeof(sun.sun_path),
	    "%s/run/%s", dir, file) >= sizeof(sun.sun_path)) {
		char	 run[PATH_MAX];

		if ((size_t)snprintf(run, sizeof(run), "%s/run", dir) >=
		    sizeof(run)) {
			fmt(err, errsz, "%s: the path is too long", dir);
			return -1;
		}
		if (*run_fd == -1 && (*run_fd = open(run, O_PATH |
		    O_DIRECTORY | O_CLOEXEC)) == -1) {
			fmt(err, errsz, "%s: %s", run, strerror(errno));
			return -1;
		}
		snprintf(sun.sun_path, sizeof(sun.sun_path),
		    "/proc/self/fd/%d/%s", *run_fd, file);
	}
	unlink(sun.sun_path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1) {
		fmt(err, errsz, "socket: %s", strerror(errno));
		return -1;
	}
	/* The sandbox's root (another host uid) connects to both. The
	 * state folder (0700) keeps everyone else out. */
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    chmod(sun.sun_path, 0666) == -1 || listen(fd, 256) == -1) {
		fmt(err, errsz, "%s: %s", sun.sun_path, strerror(errno));
		close(fd);
		return -1;
	}
	snprintf(bound, boundsz, "%s", sun.sun_path);
	return fd;
}

/*
 * What a sandbox needs from the host: user, pid, mount and net
 * namespaces, and seccomp; the two programs. Without them pincerd
 * refuses to start sandboxes (and says why) rather than run one with
 * less isolation than promised.
 */
const char *
launch_probe(const struct config *c)
{
	static char	 why[512];
	char		 path[PATH_MAX];
	pid_t		 pid;
	int		 st;

	launch_exe_path(c->sbx_launcher, "pincer-sandbox", path, sizeof(path));
	if (access(path, X_OK) == -1) {
		fmt(why, sizeof(why), "the launcher %s: %s (set "
		    "sandbox.launcher)", path, strerror(errno));
		return why;
	}
	launch_exe_path(c->sbx_init, "pincer-init", path, sizeof(path));
	if (access(path, R_OK) == -1) {
		fmt(why, sizeof(why), "pincer-init %s: %s (set "
		    "sandbox.init)", path, strerror(errno));
		return why;
	}
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == -1 && errno == EINVAL)
		return "the kernel has no seccomp (CONFIG_SECCOMP_FILTER)";
	pid = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | CLONE_NEWNS |
	    CLONE_NEWPID | CLONE_NEWNET | SIGCHLD, NULL, NULL, NULL, 0);
	if (pid == 0)
		_exit(0);
	if (pid == -1) {
		snprintf(why, sizeof(why), "cannot create user, pid, mount "
		    "and net namespaces: %s (on Debian: sysctl "
		    "kernel.unprivileged_userns_clone=1 and "
		    "user.max_user_namespaces > 0; see pincer doctor)",
		    strerror(errno));
		return why;
	}
	waitpid(pid, &st, 0);
	return NULL;
}

/* Empty config: the named program next to this executable. */
void
launch_exe_path(const char *conf, const char *prog, char *out, size_t outsz)
{
	char	 self[PATH_MAX], *slash;
	ssize_t	 n;

	if (conf != NULL && *conf != '\0') {
		snprintf(out, outsz, "%s", conf);
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = '\0';
	if ((slash = strrchr(self, '/')) != NULL)
		*slash = '\0';
	if ((size_t)snprintf(out, outsz, "%s/%s", self, prog) >= outsz)
		out[0] = '\0';
}

/*
 * Remove name under dfd, never following a symlink: the tree was written
 * by the sandbox and may hold links to anywhere. Folders it made
 * unreadable are opened up first (as a normal user pincerd owns them).
 */
int
launch_rm_tree(int dfd, const char *name)
{
	struct stat	 st;
	DIR		*d;
	struct dirent	*e;
	int		 fd, rc = 0;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return -1;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dfd, name, 0);
	if ((fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1 && errno == EACCES &&
	    fchmodat(dfd, name, 0700, 0) == 0)
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
	if (fd == -1 || (d = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		return -1;
	}
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    launch_rm_tree(dirfd(d), e->d_name) == -1 && errno != ENOENT)
			rc = -1;
	closedir(d);
	if (rc == 0 && unlinkat(dfd, name, AT_REMOVEDIR) == -1)
		rc = -1;
	return rc;
}

/* Memory and pids from the sandbox's cgroup, v2 or v1. */
void
launch_cgroup_stats(const char *cg, json_t *o)
{
	static const char *const files[][2] = {
		{ "memory_bytes", "memory.current" },
		{ "pids", "pids.current" },
	};
	char		 path[PATH_MAX], v[32];
	size_t		 i;
	ssize_t		 n;
	int		 fd;

	for (i = 0; i < 2; i++) {
		/* v2: one group; v1: one per controller. */
		snprintf(path, sizeof(path), "/sys/fs/cgroup/pincer/%s/%s", cg,
		    files[i][1]);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
			snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/pincer/"
			    "%s/%s", i == 0 ? "memory" : "pids", cg, i == 0 ?
			    "memory.usage_in_bytes" : "pids.current");
			fd = open(path, O_RDONLY | O_CLOEXEC);
		}
		if (fd == -1)
			continue;
		n = read(fd, v, sizeof(v) - 1);
		close(fd);
		if (n <= 0)
			continue;
		v[n] = '\0';
		json_object_set_new(o, files[i][0],
		    json_integer(strtoll(v, NULL, 10)));
	}
}

/* snprintf that may cut a message short, on purpose. */
static void
fmt(char *out, size_t outsz, const char *f, ...)
{
	va_list	 ap;

	va_start(ap, f);
	vsnprintf(out, outsz, f, ap);
	va_end(ap);
}
