/* SPDX-License-Identifier: MIT */
/*
 * init_spawn.c: starting commands. A command from the API is a JSON
 * spec (cmd, cwd, env); every command runs in a process group of its own
 * with fds 0-2 only and the base environment under its own, and an API
 * command's output comes back on pipes that the loop reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init.h"

#define MAX_ARGS	4096

static int	spec_cwd(struct conn *, json_t *, struct spawn_spec *);
static int	spec_env(struct conn *, json_t *, struct spawn_spec *);
static void	spawn_base_env(char ***);
static char	**merge_env(char *const []);
static void	spawn_child(char *const [], const char *, char *const [],
		    const int [3]) __attribute__((noreturn));

/*
 * A Debian root shell's; nothing of the launcher's reaches a command.
 * The way out is the egress proxy on 127.0.0.1:3128 (the sandbox has no
 * other route); the gateway's own ports on loopback are reached direct.
 * The proxy intercepts TLS to some hosts with this run's own CA, which
 * the system bundle holds (rootfs.c); the variables below point the
 * programs that keep their own bundle (Python requests, Node, git, a
 * curl built without the system one) at it too; Node reads the proxy
 * variables only with NODE_USE_ENV_PROXY (the versions that know it).
 * All of it is public: no secret ever goes into a sandbox's environment.
 */
#define CA_BUNDLE	"/etc/ssl/certs/ca-certificates.crt"
static const char *const base_env[] = {
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/root", "LANG=C.UTF-8",
	"HTTP_PROXY=http://127.0.0.1:3128", "HTTPS_PROXY=http://127.0.0.1:3128",
	"http_proxy=http://127.0.0.1:3128", "https_proxy=http://127.0.0.1:3128",
	"NO_PROXY=localhost,127.0.0.1,::1", "no_proxy=localhost,127.0.0.1,::1",
	"SSL_CERT_FILE=" CA_BUNDLE, "REQUESTS_CA_BUNDLE=" CA_BUNDLE,
	"CURL_CA_BUNDLE=" CA_BUNDLE, "GIT_SSL_CAINFO=" CA_BUNDLE,
	"NODE_EXTRA_CA_CERTS=/run/pincer/egress-ca.pem",
	"NODE_USE_ENV_PROXY=1",
	NULL
};

pid_t
spawn_cmd(char *const argv[], const char *cwd, char *const env[],
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

/*
 * In the child: a session of its own with the PTY as its controlling
 * terminal (setsid, TIOCSCTTY), so job control and ^C work and a hang-up
 * reaches it; then only fds 0-2, default signals, and the shell.
 */
void
spawn_shell(int slave)
{
	static const char *const bash[] = { "/bin/bash", "-l", NULL };
	static const char *const sh[] = { "/bin/sh", NULL };
	const char *const	*argv;
	char			**base, **env;
	const char		*cwd = "/";
	struct stat		 st;
	sigset_t		 none;
	size_t			 n = 0;

	if (setsid() == -1 || ioctl(slave, TIOCSCTTY, 0) == -1 ||
	    dup2(slave, 0) == -1 || dup2(slave, 1) == -1 ||
	    dup2(slave, 2) == -1)
		_exit(126);
	(void)syscall(SYS_close_range, 3U, ~0U, 0U);
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	argv = access(bash[0], X_OK) == 0 ? bash : sh;
	spawn_base_env(&base);
	while (base != NULL && base[n] != NULL)
		n++;
	if ((env = calloc(n + 3, sizeof(*env))) == NULL)
		_exit(126);
	if (n > 0)
		memcpy(env, base, n * sizeof(*env));
	env[n] = "TERM=xterm-256color";
	env[n + 1] = argv == bash ? "SHELL=/bin/bash" : "SHELL=/bin/sh";
	if (stat("/workspace", &st) == 0 && S_ISDIR(st.st_mode))
		cwd = "/workspace";
	if (chdir(cwd) == -1)
		(void)chdir("/");
	execve(argv[0], (char *const *)argv, env);
	dprintf(2, "pincer-init: %s: %s\r\n", argv[0], strerror(errno));
	_exit(127);
}

/*
 * cmd (an array of strings), cwd and env, into sp. Takes body; -1 after
 * answering.
 */
int
spawn_spec(struct conn *c, json_t *body, struct spawn_spec *sp)
{
	json_t	*cmd, *v;
	size_t	 i, n;

	memset(sp, 0, sizeof(*sp));
	sp->body = body;
	cmd = json_object_get(body, "cmd");
	if (!json_is_array(cmd) || (n = json_array_size(cmd)) == 0 ||
	    n > MAX_ARGS)
		goto bad_cmd;
	if ((sp->argv = calloc(n + 1, sizeof(*sp->argv))) == NULL) {
		http_error(c, 500, "internal", "out of memory");
		goto fail;
	}
	json_array_foreach(cmd, i, v) {
		if (!json_is_string(v))
			goto bad_cmd;
		sp->argv[i] = json_string_value(v);
	}
	if (spec_cwd(c, json_object_get(body, "cwd"), sp) == -1 ||
	    spec_env(c, json_object_get(body, "env"), sp) == -1)
		goto fail;
	return 0;
bad_cmd:
	http_error(c, 400, "bad_request", "cmd: a non-empty array of strings");
fail:
	spawn_spec_free(sp);
	return -1;
}

void
spawn_spec_free(struct spawn_spec *sp)
{
	free(sp->argv);
	free(sp->env);
	json_decref(sp->body);
	memset(sp, 0, sizeof(*sp));
}

/*
 * Starts sp with stdout and stderr on pipes that fn reads, for an exec
 * or a proc (owner). Our ends are non-blocking; the command's are not.
 */
pid_t
spawn_piped(struct spawn_spec *sp, int in, struct spawn_src src[2], void *owner,
    loop_fn fn)
{
	int	 fds[2][2] = { { -1, -1 }, { -1, -1 } }, i, saved;
	pid_t	 pid;

	for (i = 0; i < 2; i++)
		if (pipe2(fds[i], O_CLOEXEC) == -1 ||
		    fcntl(fds[i][0], F_SETFL, O_NONBLOCK) == -1)
			goto fail;
	if ((pid = spawn_cmd((char *const *)sp->argv, sp->cwd, sp->env, in,
	    fds[0][1], fds[1][1])) == -1)
		goto fail;
	for (i = 0; i < 2; i++) {
		close(fds[i][1]);
		src[i].owner = owner;
		src[i].idx = i;
		src[i].fd = fds[i][0];
		if (loop_add(src[i].fd, EPOLLIN, fn, &src[i]) == -1) {
			close(src[i].fd);
			src[i].fd = -1;
		}
	}
	return pid;
fail:
	saved = errno;
	for (i = 0; i < 4; i++)
		if (fds[i / 2][i % 2] != -1)
			close(fds[i / 2][i % 2]);
	errno = saved;
	return -1;
}

void
spawn_src_close(struct spawn_src *s)
{
	if (s->fd == -1)
		return;
	loop_del(s->fd);
	close(s->fd);
	s->fd = -1;
}

/* --- helpers ---------------------------------------------------------- */

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

static void
spawn_base_env(char ***out)
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

/* A folder; by default /workspace when it exists, else pincer-init's. */
static int
spec_cwd(struct conn *c, json_t *cwd, struct spawn_spec *sp)
{
	struct stat	 st;

	if (cwd == NULL) {
		if (stat("/workspace", &st) == 0 && S_ISDIR(st.st_mode))
			sp->cwd = "/workspace";
		return 0;
	}
	if (!json_is_string(cwd) || json_string_value(cwd)[0] == '\0') {
		http_error(c, 400, "bad_request", "cwd: a path");
		return -1;
	}
	sp->cwd = json_string_value(cwd);
	if (stat(sp->cwd, &st) == -1) {
		http_error(c, 400, "bad_request", "cwd %s: %s", sp->cwd,
		    strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		http_error(c, 400, "bad_request", "cwd %s: not a folder",
		    sp->cwd);
		return -1;
	}
	return 0;
}

/* An object of strings into "K=V", one block: pointers, then strings. */
static int
spec_env(struct conn *c, json_t *env, struct spawn_spec *sp)
{
	const char	*k;
	json_t		*v;
	size_t		 i = 0, size = 0;
	char		*p;
	int		 n;

	if (env != NULL && (!json_is_object(env) || json_object_size(env) >
	    MAX_ARGS))
		goto bad;
	json_object_foreach(env, k, v) {
		if (!json_is_string(v) || *k == '\0' || strchr(k, '=') != NULL)
			goto bad;
		size += strlen(k) + json_string_length(v) + 2;
	}
	if ((sp->env = malloc((json_object_size(env) + 1) * sizeof(char *) +
	    size)) == NULL) {
		http_error(c, 500, "internal", "out of memory");
		return -1;
	}
	p = (char *)(sp->env + json_object_size(env) + 1);
	json_object_foreach(env, k, v) {
		sp->env[i++] = p;
		n = snprintf(p, size, "%s=%s", k, json_string_value(v));
		p += n + 1;
		size -= (size_t)n + 1;
	}
	sp->env[i] = NULL;
	return 0;
bad:
	http_error(c, 400, "bad_request", "env: an object of strings, names "
	    "without '='");
	return -1;
}
