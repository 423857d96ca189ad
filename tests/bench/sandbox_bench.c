/* SPDX-License-Identifier: MIT */
/*
 * sandbox_bench.c: figures for tests/bench/sandbox.sh. It drives
 * pincer-sandbox (with pincer-init as PID 1) and bubblewrap directly, and
 * the control API over the Unix socket, timing with CLOCK_MONOTONIC:
 *
 *   sandbox_bench create N     create -> first output of `echo hi`
 *   sandbox_bench warm N       exec round trips on one running sandbox,
 *                              then pincer-init's memory
 *   sandbox_bench many N       N sandboxes started at once, each answering
 *                              one exec
 *   sandbox_bench api HOST PORT NAME N   exec round trips through
 *                              pincerd (token in PINCER_TOKEN)
 *   sandbox_bench apicreate HOST PORT N   a new sandbox through pincerd,
 *                              then its first exec
 *
 * Env: SANDBOX_BIN, INIT_BIN. Prints figures; asserts nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EXEC_BODY	"{\"cmd\":[\"/bin/sh\",\"-c\",\"echo hi\"]}"

struct box {
	char	 dir[256];
	pid_t	 pid;
	int	 ctl;		/* connection to control.sock */
	double	 t0;
	double	 took;
	char	 in[4096];
	size_t	 inlen;
};

static const char *sandbox_bin, *init_bin;
static char	 tmpdir[] = "/tmp/pincer-bench-XXXXXX";

static double
now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int
cmp(const void *a, const void *b)
{
	double	 x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
report(const char *what, double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	printf("%-44s p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms  (%d runs)\n",
	    what, v[n / 2], v[(int)(n * 0.99)], v[n - 1], n);
}

/* A listening control.sock in the box's run/, as pincerd makes it. */
static int
listen_in(struct box *b)
{
	struct sockaddr_un	 sun = { .sun_family = AF_UNIX };
	int			 fd;
	char			 run[300];

	snprintf(run, sizeof(run), "%s/run", b->dir);
	mkdir(b->dir, 0700);
	mkdir(run, 0755);
	if ((size_t)snprintf(sun.sun_path, sizeof(sun.sun_path),
	    "%s/control.sock", run) >= sizeof(sun.sun_path))
		exit(1);
	unlink(sun.sun_path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    chmod(sun.sun_path, 0666) == -1 || listen(fd, 64) == -1) {
		perror("control.sock");
		exit(1);
	}
	return fd;
}

static int
connect_ctl(const struct box *b)
{
	struct sockaddr_un	 sun = { .sun_family = AF_UNIX };
	int			 fd;

	if ((size_t)snprintf(sun.sun_path, sizeof(sun.sun_path),
	    "%s/run/control.sock", b->dir) >= sizeof(sun.sun_path))
		exit(1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		perror("connect control.sock");
		exit(1);
	}
	return fd;
}

/* Launch the sandbox with pincer-init as PID 1 on fd 3. */
static void
launch(struct box *b, char **cmd)
{
	char	*argv[32];
	int	 n = 0, lfd = listen_in(b), i;

	argv[n++] = (char *)sandbox_bin;
	argv[n++] = "--dir";
	argv[n++] = b->dir;
	argv[n++] = "--init";
	argv[n++] = (char *)init_bin;
	argv[n++] = "--keep-fd";
	argv[n++] = "3";
	argv[n++] = "--";
	argv[n++] = "--control-fd";
	argv[n++] = "3";
	for (i = 0; cmd != NULL && cmd[i] != NULL; i++)
		argv[n++] = cmd[i];
	argv[n] = NULL;
	if ((b->pid = fork()) == 0) {
		dup2(lfd, 3);
		fcntl(3, F_SETFD, 0);
		execv(sandbox_bin, argv);
		_exit(127);
	}
	close(lfd);
}

static void
send_exec(int fd)
{
	char	 req[512];
	int	 n;

	n = snprintf(req, sizeof(req), "POST /exec HTTP/1.1\r\nHost: s\r\n"
	    "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
	    strlen(EXEC_BODY), EXEC_BODY);
	if (write(fd, req, (size_t)n) != n) {
		perror("write");
		exit(1);
	}
}

/* Read the whole answer (pincer-init closes after it); 1 if "hi" came. */
static int
read_answer(int fd, char *buf, size_t max)
{
	size_t	 len = 0;
	ssize_t	 n;

	while (len < max - 1 && (n = read(fd, buf + len, max - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	return strstr(buf, "\"stdout\":\"hi\\n\"") != NULL;
}

static void
stop(struct box *b)
{
	kill(b->pid, SIGTERM);
	waitpid(b->pid, NULL, 0);
}

/* Run argv with stdout on a pipe; ms until "hi" arrives, then reap. */
static double
first_output(char **argv)
{
	int	 p[2];
	char	 buf[64];
	double	 t0 = now(), t = -1;
	pid_t	 pid;
	ssize_t	 n;

	if (pipe(p) == -1)
		exit(1);
	if ((pid = fork()) == 0) {
		dup2(p[1], 1);
		close(p[0]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	if ((n = read(p[0], buf, sizeof(buf) - 1)) > 0 &&
	    (buf[n] = '\0', strstr(buf, "hi") != NULL))
		t = now() - t0;
	close(p[0]);
	waitpid(pid, NULL, 0);
	return t;
}

static void
bench_create(int runs)
{
	double		*v = calloc((size_t)runs, sizeof(double));
	struct box	 b = { 0 };
	char		 ans[4096], dir[300];
	char		*sb[] = { (char *)sandbox_bin, "--dir", dir, "--init",
			    (char *)init_bin, "--", "--no-forward", "--",
			    "/bin/sh", "-c", "echo hi", NULL };
	char		*bw[] = { "/usr/bin/bwrap", "--unshare-all",
			    "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin",
			    "/bin", "--symlink", "usr/lib", "/lib", "--symlink",
			    "usr/lib64", "/lib64", "--proc", "/proc", "--dev",
			    "/dev", "--tmpfs", "/tmp", "--cap-drop", "ALL",
			    "--die-with-parent", "--new-session", "/bin/sh",
			    "-c", "echo hi", NULL };
	int		 i, fd;

	snprintf(dir, sizeof(dir), "%s/cmd", tmpdir);
	for (i = 0; i < runs; i++)
		v[i] = first_output(sb);
	report("pincer-sandbox + pincer-init, echo as PID 1's child", v,
	    runs);
	snprintf(b.dir, sizeof(b.dir), "%s/api", tmpdir);
	for (i = 0; i < runs; i++) {
		double	 t0 = now();

		launch(&b, NULL);
		fd = connect_ctl(&b);
		send_exec(fd);
		if (!read_answer(fd, ans, sizeof(ans))) {
			fprintf(stderr, "unexpected answer: %s\n", ans);
			exit(1);
		}
		v[i] = now() - t0;
		close(fd);
		stop(&b);
	}
	report("pincer-sandbox + pincer-init, POST /exec", v, runs);
	if (access(bw[0], X_OK) == 0) {
		for (i = 0; i < runs; i++)
			v[i] = first_output(bw);
		report("bwrap (same namespaces, /usr ro)", v, runs);
	} else
		printf("bwrap is not installed (apt-get install bubblewrap)\n");
	free(v);
}

/* pincer-init's pid on the host: the launcher's one child. */
static void
init_memory(pid_t launcher)
{
	char	 path[64], line[256];
	FILE	*f;
	long	 child = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", launcher,
	    launcher);
	if ((f = fopen(path, "r")) == NULL || fscanf(f, "%ld", &child) != 1)
		return;
	fclose(f);
	snprintf(path, sizeof(path), "/proc/%ld/status", child);
	if ((f = fopen(path, "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
		if (!strncmp(line, "VmRSS", 5) || !strncmp(line, "RssAnon", 7)
		    || !strncmp(line, "RssFile", 7))
			printf("pincer-init %s", line);
	fclose(f);
}

static void
bench_warm(int runs)
{
	double		*v = calloc((size_t)runs, sizeof(double));
	struct box	 b = { 0 };
	char		 ans[4096];
	int		 i, fd;

	snprintf(b.dir, sizeof(b.dir), "%s/warm", tmpdir);
	launch(&b, NULL);
	for (i = -20; i < runs; i++) {		/* 20 to warm up */
		double	 t0 = now();

		fd = connect_ctl(&b);
		send_exec(fd);
		if (!read_answer(fd, ans, sizeof(ans))) {
			fprintf(stderr, "unexpected answer: %s\n", ans);
			exit(1);
		}
		close(fd);
		if (i >= 0)
			v[i] = now() - t0;
	}
	report("warm exec round trip, control.sock", v, runs);
	init_memory(b.pid);
	stop(&b);
	free(v);
}

static void
bench_many(int n)
{
	struct box	*b = calloc((size_t)n, sizeof(*b));
	struct pollfd	*pfd = calloc((size_t)n, sizeof(*pfd));
	double		*v = calloc((size_t)n, sizeof(double)), t0 = now();
	int		 i, left = n;
	ssize_t		 r;

	for (i = 0; i < n; i++) {
		snprintf(b[i].dir, sizeof(b[i].dir), "%s/many%d", tmpdir, i);
		b[i].t0 = now();
		launch(&b[i], NULL);
		b[i].ctl = connect_ctl(&b[i]);
		send_exec(b[i].ctl);
		pfd[i].fd = b[i].ctl;
		pfd[i].events = POLLIN;
	}
	while (left > 0 && poll(pfd, (nfds_t)n, 30000) > 0)
		for (i = 0; i < n; i++) {
			if (pfd[i].fd < 0 || !pfd[i].revents)
				continue;
			r = read(pfd[i].fd, b[i].in + b[i].inlen,
			    sizeof(b[i].in) - 1 - b[i].inlen);
			if (r > 0) {
				b[i].inlen += (size_t)r;
				continue;
			}
			b[i].in[b[i].inlen] = '\0';
			if (strstr(b[i].in, "\"stdout\":\"hi\\n\"") == NULL)
				fprintf(stderr, "sandbox %d: %s\n", i, b[i].in);
			v[i] = now() - b[i].t0;
			close(pfd[i].fd);
			pfd[i].fd = -1;
			left--;
		}
	printf("%d sandboxes at once: all answered in %.1f ms", n,
	    now() - t0);
	printf(" (%d did not)\n", left);
	report("  each: start -> exec answered", v, n);
	for (i = 0; i < n; i++)
		kill(b[i].pid, SIGTERM);
	for (i = 0; i < n; i++)
		waitpid(b[i].pid, NULL, 0);
	free(b);
	free(pfd);
	free(v);
}

/* One request on a keep-alive connection to pincerd; the answer in ans. */
static void
http(int fd, const char *host, const char *method, const char *path,
    const char *body, char *ans, size_t anssz)
{
	const char	*tok = getenv("PINCER_TOKEN");
	char		 req[1024], *cl, *end;
	size_t		 len = 0;
	ssize_t		 r;
	int		 n;

	n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: %s\r\n"
	    "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
	    "Content-Length: %zu\r\n\r\n%s", method, path, host, tok,
	    strlen(body), body);
	if (write(fd, req, (size_t)n) != n)
		exit(1);
	for (;;) {
		r = read(fd, ans + len, anssz - 1 - len);
		if (r <= 0)
			exit(1);
		len += (size_t)r;
		ans[len] = '\0';
		if ((end = strstr(ans, "\r\n\r\n")) != NULL &&
		    (cl = strcasestr(ans, "Content-Length:")) != NULL &&
		    len >= (size_t)(end + 4 - ans) + strtoul(cl + 15, NULL, 10))
			return;
	}
}

static int
dial(const char *host, const char *port)
{
	struct addrinfo	 hints = { .ai_socktype = SOCK_STREAM }, *ai;
	int		 fd;

	if (getenv("PINCER_TOKEN") == NULL ||
	    getaddrinfo(host, port, &hints, &ai) != 0 ||
	    (fd = socket(ai->ai_family, SOCK_STREAM, 0)) == -1 ||
	    connect(fd, ai->ai_addr, ai->ai_addrlen) == -1) {
		fprintf(stderr, "api: cannot connect (PINCER_TOKEN set?)\n");
		exit(1);
	}
	freeaddrinfo(ai);
	return fd;
}

/* Through pincerd: one keep-alive connection, a token, a real route. */
static void
bench_api(const char *host, const char *port, const char *name, int runs)
{
	double		*v = calloc((size_t)runs, sizeof(double));
	char		 path[256], ans[8192];
	int		 fd = dial(host, port), i;

	snprintf(path, sizeof(path), "/api/v1/sandboxes/%s/exec", name);
	for (i = -20; i < runs; i++) {
		double	 t0 = now();

		http(fd, host, "POST", path, EXEC_BODY, ans, sizeof(ans));
		if (strstr(ans, "\"stdout\":\"hi\\n\"") == NULL) {
			fprintf(stderr, "unexpected answer: %s\n", ans);
			exit(1);
		}
		if (i >= 0)
			v[i] = now() - t0;
	}
	report("warm exec round trip, through pincerd (TCP)", v, runs);
	close(fd);
	free(v);
}

/*
 * Through pincerd, a new sandbox each time: POST /api/v1/sandboxes (a row
 * in the store, the launcher) then its first exec. Destroyed after,
 * untimed.
 */
static void
bench_api_create(const char *host, const char *port, int runs)
{
	double		*v = calloc((size_t)runs, sizeof(double));
	char		 path[256], body[128], ans[8192];
	int		 fd = dial(host, port), i;

	for (i = 0; i < runs; i++) {
		double	 t0 = now();

		snprintf(body, sizeof(body), "{\"name\":\"c%d\"}", i);
		http(fd, host, "POST", "/api/v1/sandboxes", body, ans,
		    sizeof(ans));
		snprintf(path, sizeof(path), "/api/v1/sandboxes/c%d/exec", i);
		http(fd, host, "POST", path, EXEC_BODY, ans, sizeof(ans));
		if (strstr(ans, "\"stdout\":\"hi\\n\"") == NULL) {
			fprintf(stderr, "unexpected answer: %s\n", ans);
			exit(1);
		}
		v[i] = now() - t0;
		snprintf(path, sizeof(path), "/api/v1/sandboxes/c%d", i);
		http(fd, host, "DELETE", path, "", ans, sizeof(ans));
	}
	report("through pincerd: POST /sandboxes + first exec", v, runs);
	close(fd);
	free(v);
}

int
main(int argc, char **argv)
{
	int	 runs = argc > 2 ? atoi(argv[argc - 1]) : 200;
	char	 cmd[400];

	sandbox_bin = getenv("SANDBOX_BIN");
	init_bin = getenv("INIT_BIN");
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2 || runs < 1 || (strncmp(argv[1], "api", 3) &&
	    (sandbox_bin == NULL || init_bin == NULL))) {
		fprintf(stderr, "usage: SANDBOX_BIN=… INIT_BIN=… sandbox_bench "
		    "create|warm|many N | api HOST PORT NAME N | "
		    "apicreate HOST PORT N\n");
		return 2;
	}
	if (!strcmp(argv[1], "api") && argc == 6) {
		bench_api(argv[2], argv[3], argv[4], runs);
		return 0;
	}
	if (!strcmp(argv[1], "apicreate") && argc == 5) {
		bench_api_create(argv[2], argv[3], runs);
		return 0;
	}
	if (mkdtemp(tmpdir) == NULL)
		return 1;
	if (!strcmp(argv[1], "create"))
		bench_create(runs);
	else if (!strcmp(argv[1], "warm"))
		bench_warm(runs);
	else if (!strcmp(argv[1], "many"))
		bench_many(runs);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : 1;
}
