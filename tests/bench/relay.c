/* SPDX-License-Identifier: MIT */
/*
 * relay.c: the floor of any relay on this machine, for bench-cdp. It
 * accepts on a Unix socket and copies bytes both ways to 127.0.0.1:PORT
 * with one epoll thread, as pincerd's relay thread does, and nothing
 * else: no WebSocket framing, no JSON, no policy. What it adds to a round
 * trip is what two more sleeping-and-waking hops cost here; pincer's
 * bridge cannot add less unless it avoids sleeping (browser.spin_us).
 * Usage: relay SOCKET PORT [SPIN_US]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAXFD	4096

static int	 peer[MAXFD];

static int
upstream(int port)
{
	struct sockaddr_in	 sa;
	int			 t, one = 1;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((t = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    connect(t, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		perror("relay: connect");
		exit(1);
	}
	setsockopt(t, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return t;
}

static uint64_t
mono_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

int
main(int argc, char **argv)
{
	struct sockaddr_un	 su;
	struct epoll_event	 ev, evs[16];
	char			 buf[1 << 16];
	uint64_t		 spin_until = 0;
	long			 spin;
	ssize_t			 r, w, o;
	int			 l, ep, n, i, fd, c, t, port;

	if (argc < 3) {
		fprintf(stderr, "usage: relay SOCKET PORT [SPIN_US]\n");
		return 2;
	}
	port = atoi(argv[2]);
	spin = argc > 3 ? atol(argv[3]) : 0;
	memset(&su, 0, sizeof(su));
	su.sun_family = AF_UNIX;
	snprintf(su.sun_path, sizeof(su.sun_path), "%s", argv[1]);
	unlink(argv[1]);
	if ((l = socket(AF_UNIX, SOCK_STREAM, 0)) == -1 ||
	    bind(l, (struct sockaddr *)&su, sizeof(su)) == -1 ||
	    listen(l, 16) == -1 || (ep = epoll_create1(0)) == -1) {
		perror("relay");
		return 1;
	}
	ev.events = EPOLLIN;
	ev.data.fd = l;
	epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		n = epoll_wait(ep, evs, 16, spin_until > mono_us() ? 0 : -1);
		for (i = 0; i < n; i++) {
			if ((fd = evs[i].data.fd) == l) {
				if ((c = accept(l, NULL, NULL)) == -1 ||
				    c >= MAXFD || (t = upstream(port)) >= MAXFD)
					return 1;
				peer[c] = t;
				peer[t] = c;
				ev.data.fd = c;
				epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
				ev.data.fd = t;
				epoll_ctl(ep, EPOLL_CTL_ADD, t, &ev);
				continue;
			}
			if ((r = read(fd, buf, sizeof(buf))) <= 0) {
				close(peer[fd]);
				close(fd);
				continue;
			}
			for (o = 0; o < r; o += w)
				if ((w = write(peer[fd], buf + o,
				    (size_t)(r - o))) <= 0)
					break;
			if (spin > 0)
				spin_until = mono_us() + (uint64_t)spin;
		}
	}
}
