/* SPDX-License-Identifier: MIT */
/*
 * hook_bench.c: the webhook benchmark's load, in C so that it is not
 * what gets measured on a 2-core machine.
 *
 *   hook_bench URL SECRET RATE SECONDS CONNS
 *	open-loop load of signed Slack events (Events API, message.im, each
 *	with its own event_id and ts, signed with v0 HMAC-SHA256 of
 *	"v0:TIMESTAMP:BODY" keyed with SECRET) at RATE requests/s over
 *	CONNS keep-alive connections. Each request has a scheduled time and
 *	its latency counts from it (no coordinated omission). Prints the
 *	percentiles of the time to the acknowledgement, in microseconds.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "bench.h"

#define BUFSZ	16384

struct conn {
	int	 fd;
	char	 in[BUFSZ];
	size_t	 inlen;
	bool	 busy;
	double	 sched;
};

static struct sockaddr_in	 addr;
static char			 host[128], path[512];
static const char		*secret;
static long			 seq;
static long			 run_id;



static void
parse_url(const char *url)
{
	const char	*p = url + strlen("http://"), *slash, *colon;

	if (strncmp(url, "http://", 7) != 0)
		die("URL must be http://");
	slash = strchr(p, '/');
	colon = strchr(p, ':');
	snprintf(host, sizeof(host), "%.*s", (int)(colon - p), p);
	snprintf(path, sizeof(path), "%s", slash);
	addr.sin_family = AF_INET;
	addr.sin_port = htons((unsigned short)atoi(colon + 1));
	inet_pton(AF_INET, host, &addr.sin_addr);
}

static int
dial(void)
{
	int	 fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;

	if (fd == -1)
		die("socket");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == -1 &&
	    errno != EINPROGRESS)
		die("connect");
	return fd;
}


/* One signed event: Slack's signing (api.slack.com/authentication/
 * verifying-requests-from-slack): v0=HMAC-SHA256("v0:ts:body"). */
static int
send_event(struct conn *c)
{
	char		 body[1024], base[1200], req[4096], sig[65];
	unsigned char	 mac[32];
	unsigned int	 maclen = 0, i;
	long		 n = ++seq, ts = (long)time(NULL);
	int		 blen, rlen;

	blen = snprintf(body, sizeof(body), "{\"token\":\"bench\","
	    "\"team_id\":\"T0BENCH\",\"api_app_id\":\"A0BENCH\",\"event\":"
	    "{\"type\":\"message\",\"channel\":\"D0BENCH\",\"channel_type\":"
	    "\"im\",\"user\":\"U0BENCH\",\"text\":\"event %ld\",\"ts\":"
	    "\"%ld.%06ld\",\"event_ts\":\"%ld.%06ld\"},\"type\":"
	    "\"event_callback\",\"event_id\":\"Ev%ld%ld\",\"event_time\":%ld,"
	    "\"authorizations\":[{\"team_id\":\"T0BENCH\",\"user_id\":"
	    "\"U0BOT\",\"is_bot\":true}]}", n, run_id, n, run_id, n, run_id,
	    n, ts);
	snprintf(base, sizeof(base), "v0:%ld:%s", ts, body);
	HMAC(EVP_sha256(), secret, (int)strlen(secret),
	    (unsigned char *)base, strlen(base), mac, &maclen);
	for (i = 0; i < maclen; i++)
		snprintf(sig + i * 2, 3, "%02x", mac[i]);
	rlen = snprintf(req, sizeof(req), "POST %s HTTP/1.1\r\nHost: %s\r\n"
	    "Content-Type: application/json\r\nX-Slack-Request-Timestamp: "
	    "%ld\r\nX-Slack-Signature: v0=%s\r\nContent-Length: %d\r\n\r\n"
	    "%s", path, host, ts, sig, blen, body);
	c->busy = true;
	c->inlen = 0;
	return write_all(c->fd, req, (size_t)rlen);
}

/* A whole answer: the head, and Content-Length bytes of body. */
static bool
answer_done(struct conn *c, int *status)
{
	char	*end, *cl;
	size_t	 need;

	c->in[c->inlen] = '\0';
	if ((end = strstr(c->in, "\r\n\r\n")) == NULL)
		return false;
	cl = strcasestr(c->in, "content-length:");
	need = (size_t)(end + 4 - c->in) + (cl != NULL && cl < end ?
	    strtoul(cl + 15, NULL, 10) : 0);
	if (c->inlen < need)
		return false;
	*status = atoi(c->in + 9);
	return true;
}


static int
load(double rate, double secs, int nconn)
{
	struct conn		*cs = calloc((size_t)nconn, sizeof(*cs));
	struct epoll_event	 ev, evs[256];
	size_t			 total = (size_t)(rate * secs), issued = 0;
	size_t			 done = 0, qh = 0, qt = 0;
	double			*lat = calloc(total + 1, sizeof(double));
	double			*queue = calloc(total + 1, sizeof(double));
	double			 t0, t, next, el;
	long			 errors = 0, closed = 0;
	unsigned		 rr = 0;
	int			 ep = epoll_create1(0), i, n, st, wait;
	ssize_t			 r;

	for (i = 0; i < nconn; i++) {
		cs[i].fd = dial();
		ev.events = EPOLLIN;
		ev.data.ptr = &cs[i];
		epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
	}
	usleep(100000);
	t0 = now();
	while (done < total && now() - t0 < secs * 2 + 5) {
		t = now();
		while (issued < total && t0 + issued / rate <= t)
			queue[qt++] = t0 + issued++ / rate;
		/* Round robin: every connection sends (the server drops one
		 * that sends no request for its header timeout). */
		for (i = 0; i < nconn && qh < qt; i++, rr++) {
			struct conn	*c = &cs[rr % nconn];

			if (!c->busy) {
				c->sched = queue[qh++];
				if (send_event(c) == -1)
					die("send");
			}
		}
		next = issued < total ? t0 + issued / rate : t + 0.01;
		wait = next > t ? (int)((next - t) * 1000) : 0;
		n = epoll_wait(ep, evs, 256, qh < qt ? 0 : wait);
		for (i = 0; i < n; i++) {
			struct conn	*c = evs[i].data.ptr;

			r = recv(c->fd, c->in + c->inlen, BUFSZ - 1 -
			    c->inlen, 0);
			if (r <= 0) {
				if (r < 0 && errno == EAGAIN)
					continue;
				/* Closed by the server: a new connection;
				 * its request counts as an error. */
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
				c->fd = dial();
				ev.events = EPOLLIN;
				ev.data.ptr = c;
				epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
				if (c->busy) {
					errors++;
					lat[done++] = now() - c->sched;
				}
				c->busy = false;
				c->inlen = 0;
				closed++;
				continue;
			}
			c->inlen += (size_t)r;
			if (answer_done(c, &st)) {
				if (st != 200 && errors++ < 3)
					fprintf(stderr, "hook_bench: %.300s\n",
					    c->in);
				lat[done++] = now() - c->sched;
				c->busy = false;
				c->inlen = 0;
			}
		}
	}
	el = now() - t0;
	errors += (long)(total - done);
	qsort(lat, done, sizeof(*lat), cmp);
	if (done == 0) {
		printf("acks: none (errors %ld)\n", errors);
		return 1;
	}
	printf("acks: n=%zu rate=%.0f/s p50=%.0fus p90=%.0fus p99=%.0fus "
	    "p99.9=%.0fus max=%.0fus errors=%ld closed=%ld\n", done,
	    done / el, lat[done / 2] * 1e6, lat[done * 90 / 100] * 1e6,
	    lat[done * 99 / 100] * 1e6, lat[done * 999 / 1000] * 1e6,
	    lat[done - 1] * 1e6, errors, closed);
	return errors > 0;
}

int
main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc != 6) {
		fprintf(stderr, "usage: hook_bench URL SECRET RATE SECONDS "
		    "CONNS\n");
		return 2;
	}
	parse_url(argv[1]);
	secret = argv[2];
	run_id = (long)getpid() % 1000;
	return load(atof(argv[3]), atof(argv[4]), atoi(argv[5]));
}
