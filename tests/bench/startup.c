/* SPDX-License-Identifier: MIT */
/*
 * startup.c: time from exec of pincerd to its first 200 from /readyz, as a
 * client sees it. Usage: startup PINCER CONFIG STATE PORT RUNS
 * Prints one line per run (milliseconds), then p50 and max.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double
now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* One GET /readyz; 1 if it answered 200. */
static int
ready(int port)
{
	struct sockaddr_in	 sin = { .sin_family = AF_INET };
	const char		 req[] = "GET /readyz HTTP/1.1\r\nHost: x\r\n"
				    "Connection: close\r\n\r\n";
	char			 buf[64] = "";
	int			 fd, ok = 0;
	ssize_t			 n;

	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return 0;
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    write(fd, req, sizeof(req) - 1) == (ssize_t)sizeof(req) - 1 &&
	    (n = read(fd, buf, sizeof(buf) - 1)) > 12)
		ok = strncmp(buf, "HTTP/1.1 200", 12) == 0;
	close(fd);
	return ok;
}

static int
cmp(const void *a, const void *b)
{
	double	 x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	char	 listen[64];
	double	*t, t0;
	int	 port, runs, i, st, devnull;
	pid_t	 pid;

	if (argc != 6) {
		fprintf(stderr, "usage: startup PINCER CONFIG STATE PORT RUNS\n");
		return 2;
	}
	port = atoi(argv[4]);
	runs = atoi(argv[5]);
	if ((t = calloc((size_t)runs, sizeof(*t))) == NULL)
		return 1;
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	for (i = 0; i < runs; i++) {
		t0 = now();
		if ((pid = fork()) == 0) {
			devnull = open("/dev/null", 1);
			dup2(devnull, 2);
			execl(argv[1], argv[1], "serve", "--config", argv[2],
			    "--state", argv[3], "--listen", listen, (char *)NULL);
			_exit(127);
		}
		while (!ready(port)) {
			if (waitpid(pid, &st, WNOHANG) == pid) {
				fprintf(stderr, "pincerd exited early\n");
				return 1;
			}
			usleep(200);
		}
		t[i] = now() - t0;
		kill(pid, SIGTERM);
		waitpid(pid, &st, 0);
	}
	qsort(t, (size_t)runs, sizeof(*t), cmp);
	printf("start to /readyz: p50 %.1f ms, max %.1f ms over %d runs\n",
	    t[runs / 2], t[runs - 1], runs);
	free(t);
	return 0;
}
