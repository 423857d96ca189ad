/* SPDX-License-Identifier: MIT */
/*
 * llm_bench.c: the LLM proxy benchmark's two ends, in C so that neither
 * is what gets measured on a 2-core machine.
 *
 *   llm_bench upstream PORTFILE
 *	a fake OpenAI-compatible provider on 127.0.0.1:0: POST
 *	/v1/chat/completions answers a small chat.completion, or with
 *	"stream":true an SSE stream (role, 8 content chunks, finish, usage,
 *	[DONE]); with the header x-bench-hold the stream sends its first
 *	event and stays open until the client goes.
 *   llm_bench load URL RATE SECONDS CONNS [HEADER]...
 *	open-loop load at RATE requests/s (each request has a scheduled
 *	time; latency counts from it, so a stall is not hidden: no
 *	coordinated omission), CONNS keep-alive connections; prints
 *	percentiles in microseconds.
 *   llm_bench ttfb URL N [HEADER]...
 *	N streamed requests one after another: time to the first event.
 *   llm_bench streams URL N SECONDS [HEADER]...
 *	N held streams open at once, for SECONDS.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define BUFSZ	65536

struct conn {
	int		 fd;
	char		 in[BUFSZ];
	size_t		 inlen;
	bool		 busy;
	bool		 stream;	/* upstream: answering a stream */
	double		 sched;		/* load: the request's scheduled time */
	double		 sent;
	bool		 first;		/* ttfb/streams: first event seen */
};

static const char	 reply[] = "{\"id\":\"chatcmpl-bench\",\"object\":"
	"\"chat.completion\",\"created\":1700000000,\"model\":\"bench-model\","
	"\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
	"\"content\":\"echo: hello\"},\"finish_reason\":\"stop\"}],\"usage\":"
	"{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}";
static const char	 chunk_fmt[] = "data: {\"id\":\"chatcmpl-bench\","
	"\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
	"\"model\":\"bench-model\",\"choices\":[{\"index\":0,\"delta\":%s,"
	"\"finish_reason\":%s}]}\n\n";
static const char	*body_plain = "{\"model\":\"bench-model\",\"messages\":"
	"[{\"role\":\"user\",\"content\":\"hello\"}]}";
static const char	*body_stream = "{\"model\":\"bench-model\",\"stream\":"
	"true,\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}";




/* One SSE event as one HTTP chunk. */
static int
send_chunk(int fd, const char *delta, const char *finish)
{
	char	 ev[1024], out[1100];
	int	 n;

	n = snprintf(ev, sizeof(ev), chunk_fmt, delta, finish);
	n = snprintf(out, sizeof(out), "%x\r\n%s\r\n", n, ev);
	return write_all(fd, out, (size_t)n);
}

static int
send_stream(int fd, bool hold)
{
	static const char	 head[] = "HTTP/1.1 200 OK\r\nContent-Type: "
	    "text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
	static const char	 usage[] = "data: {\"id\":\"chatcmpl-bench\","
	    "\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":"
	    "{\"prompt_tokens\":3,\"completion_tokens\":8,\"total_tokens\":"
	    "11}}\n\n";
	char			 buf[256];
	int			 i, n;

	if (write_all(fd, head, sizeof(head) - 1) == -1 ||
	    send_chunk(fd, "{\"role\":\"assistant\",\"content\":\"\"}",
	    "null") == -1)
		return -1;
	if (hold)
		return 0;
	for (i = 0; i < 8; i++)
		if (send_chunk(fd, "{\"content\":\" word\"}", "null") == -1)
			return -1;
	if (send_chunk(fd, "{}", "\"stop\"") == -1)
		return -1;
	n = snprintf(buf, sizeof(buf), "%zx\r\n%s\r\n", sizeof(usage) - 1,
	    usage);
	if (write_all(fd, buf, (size_t)n) == -1)
		return -1;
	return write_all(fd, "e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n", 25);
}

/* The fake provider: answers every complete request on a connection. */
static void
serve_input(struct conn *c)
{
	char		*end, *cl, hdr[256];
	size_t		 hl, bl, total;
	bool		 stream, hold;
	int		 n;

	for (;;) {
		c->in[c->inlen] = '\0';
		if ((end = strstr(c->in, "\r\n\r\n")) == NULL)
			return;
		hl = (size_t)(end - c->in) + 4;
		cl = strcasestr(c->in, "content-length:");
		bl = cl != NULL && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
		total = hl + bl;
		if (c->inlen < total)
			return;
		stream = memmem(c->in + hl, bl, "\"stream\":true", 13) != NULL;
		hold = strcasestr(c->in, "x-bench-hold") != NULL &&
		    strcasestr(c->in, "x-bench-hold") < end;
		if (stream) {
			if (send_stream(c->fd, hold) == -1 || hold) {
				c->inlen = 0;
				return;
			}
		} else {
			n = snprintf(hdr, sizeof(hdr), "HTTP/1.1 200 OK\r\n"
			    "Content-Type: application/json\r\nContent-Length: "
			    "%zu\r\n\r\n", sizeof(reply) - 1);
			if (write_all(c->fd, hdr, (size_t)n) == -1 ||
			    write_all(c->fd, reply, sizeof(reply) - 1) == -1)
				return;
		}
		memmove(c->in, c->in + total, c->inlen - total);
		c->inlen -= total;
	}
}

static int __attribute__((noreturn))
upstream(const char *portfile)
{
	struct sockaddr_in	 sa = { .sin_family = AF_INET };
	struct epoll_event	 ev, evs[256];
	socklen_t		 sl = sizeof(sa);
	struct conn		*c;
	FILE			*f;
	int			 lfd, ep, fd, n, i, one = 1;
	ssize_t			 r;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) == -1 ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    listen(lfd, 4096) == -1 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl) == -1)
		die("listen");
	if ((f = fopen(portfile, "w")) == NULL)
		die(portfile);
	fprintf(f, "%d\n", ntohs(sa.sin_port));
	fclose(f);
	ep = epoll_create1(0);
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (;;) {
		n = epoll_wait(ep, evs, 256, -1);
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL) {
				while ((fd = accept4(lfd, NULL, NULL,
				    SOCK_NONBLOCK)) != -1) {
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY,
					    &one, sizeof(one));
					c = calloc(1, sizeof(*c));
					c->fd = fd;
					ev.events = EPOLLIN;
					ev.data.ptr = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			c = evs[i].data.ptr;
			r = recv(c->fd, c->in + c->inlen, BUFSZ - 1 - c->inlen,
			    0);
			if (r <= 0) {
				if (r < 0 && errno == EAGAIN)
					continue;
				close(c->fd);
				free(c);
				continue;
			}
			c->inlen += (size_t)r;
			serve_input(c);
		}
	}
}

/* --- the client side ---------------------------------------------------- */

static char	 host[64], path[256], extra[4096];
static int	 port;

static void
parse_url(const char *url)
{
	if (sscanf(url, "http://%63[^:]:%d%255s", host, &port, path) != 3)
		die("URL must be http://HOST:PORT/PATH");
}

static void
add_headers(int argc, char **argv, int from)
{
	size_t	 n = 0;
	int	 i;

	for (i = from; i < argc; i++)
		n += (size_t)snprintf(extra + n, sizeof(extra) - n, "%s\r\n",
		    argv[i]);
}

static int
dial(void)
{
	struct sockaddr_in	 sa = { .sin_family = AF_INET };
	int			 fd, one = 1;

	sa.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, host, &sa.sin_addr);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		die("connect");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

static int
send_req(struct conn *c, bool stream)
{
	char		 req[8192];
	const char	*body = stream ? body_stream : body_plain;
	int		 n;

	n = snprintf(req, sizeof(req), "POST %s HTTP/1.1\r\nHost: %s:%d\r\n"
	    "Content-Type: application/json\r\nContent-Length: %zu\r\n%s\r\n"
	    "%s", path, host, port, strlen(body), extra, body);
	c->busy = true;
	c->inlen = 0;
	c->first = false;
	c->sent = now();
	return write_all(c->fd, req, (size_t)n);
}

/* 1: a whole answer is in (status in *status); 0: not yet. */
static int
answer_done(struct conn *c, int *status)
{
	char		*end, *cl, *p;
	size_t		 hl, sz;

	c->in[c->inlen] = '\0';
	if ((end = strstr(c->in, "\r\n\r\n")) == NULL)
		return 0;
	hl = (size_t)(end - c->in) + 4;
	*status = atoi(c->in + 9);
	cl = strcasestr(c->in, "content-length:");
	if (cl != NULL && cl < end)
		return c->inlen >= hl + strtoul(cl + 15, NULL, 10);
	/* Chunked: walk the chunk sizes. */
	for (p = c->in + hl; p < c->in + c->inlen; ) {
		sz = strtoul(p, &end, 16);
		if ((end = strstr(p, "\r\n")) == NULL)
			return 0;
		if (sz == 0)
			return strstr(end, "\r\n\r\n") == end ||
			    strstr(end + 2, "\r\n") != NULL;
		p = end + 2 + sz + 2;
	}
	return 0;
}


static void
report(const char *what, double *lat, size_t n, double secs, long errors)
{
	qsort(lat, n, sizeof(*lat), cmp);
	if (n == 0) {
		printf("%s: no answers (errors %ld)\n", what, errors);
		return;
	}
	printf("%s: n=%zu rate=%.0f/s p50=%.0fus p90=%.0fus p99=%.0fus "
	    "p99.9=%.0fus max=%.0fus errors=%ld\n", what, n, n / secs,
	    lat[n / 2] * 1e6, lat[n * 90 / 100] * 1e6, lat[n * 99 / 100] * 1e6,
	    lat[n * 999 / 1000] * 1e6, lat[n - 1] * 1e6, errors);
}

static int
load(double rate, double secs, int nconn)
{
	struct conn		*cs = calloc((size_t)nconn, sizeof(*cs));
	struct epoll_event	 ev, evs[256];
	size_t			 total = (size_t)(rate * secs), issued = 0;
	size_t			 done = 0, cap = total + 16;
	double			*lat = calloc(cap, sizeof(double));
	double			*queue = calloc(cap, sizeof(double));
	size_t			 qh = 0, qt = 0;
	double			 t0, t, next;
	long			 errors = 0;
	int			 ep = epoll_create1(0), i, n, st, wait;
	ssize_t			 r;

	for (i = 0; i < nconn; i++) {
		cs[i].fd = dial();
		ev.events = EPOLLIN;
		ev.data.ptr = &cs[i];
		epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
	}
	t0 = now();
	/* A server that cannot keep up is given twice the time, then the
	 * rest counts as unanswered (errors), not waited for. */
	while (done < total && now() - t0 < secs * 2 + 1) {
		t = now();
		while (issued < total && t0 + issued / rate <= t)
			queue[qt++] = t0 + issued++ / rate;
		for (i = 0; i < nconn && qh < qt; i++)
			if (!cs[i].busy) {
				cs[i].sched = queue[qh++];
				if (send_req(&cs[i], false) == -1)
					die("send");
			}
		next = issued < total ? t0 + issued / rate : t + 0.01;
		wait = next > t ? (int)((next - t) * 1000) : 0;
		n = epoll_wait(ep, evs, 256, qh < qt ? 0 : wait);
		for (i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			r = recv(c->fd, c->in + c->inlen, BUFSZ - 1 -
			    c->inlen, 0);
			if (r <= 0) {
				if (r < 0 && errno == EAGAIN)
					continue;
				die("a connection closed");
			}
			c->inlen += (size_t)r;
			if (answer_done(c, &st)) {
				if (st < 200 || st > 299)
					errors++;
				lat[done++] = now() - c->sched;
				c->busy = false;
				c->inlen = 0;
			}
		}
	}
	errors += (long)(total - done);
	report("latency", lat, done, now() - t0, errors);
	return 0;
}

/* Sequential streams: time to the first event of each. */
static int
ttfb(int count)
{
	struct conn	 c = { 0 };
	double		*lat = calloc((size_t)count, sizeof(double));
	int		 i, st;
	ssize_t		 r;
	char		*body;

	c.fd = dial();
	fcntl(c.fd, F_SETFL, 0);
	for (i = 0; i < count; i++) {
		send_req(&c, true);
		c.first = false;
		for (;;) {
			r = recv(c.fd, c.in + c.inlen, BUFSZ - 1 - c.inlen, 0);
			if (r <= 0)
				die("recv");
			c.inlen += (size_t)r;
			c.in[c.inlen] = '\0';
			body = strstr(c.in, "\r\n\r\n");
			if (!c.first && body != NULL && strstr(body, "data:")) {
				lat[i] = now() - c.sent;
				c.first = true;
			}
			if (answer_done(&c, &st))
				break;
		}
	}
	report("ttfb", lat, (size_t)count, 1, 0);
	return 0;
}

/* N held streams: wait for each first event, then hold them. */
static int
streams(int count, int secs)
{
	struct conn	*cs = calloc((size_t)count, sizeof(*cs));
	int		 i, open = 0;
	ssize_t		 r;
	double		 t0 = now();

	for (i = 0; i < count; i++) {
		cs[i].fd = dial();
		send_req(&cs[i], true);
	}
	while (open < count && now() - t0 < 30) {
		for (i = 0; i < count; i++) {
			if (cs[i].first)
				continue;
			r = recv(cs[i].fd, cs[i].in + cs[i].inlen, BUFSZ - 1 -
			    cs[i].inlen, 0);
			if (r > 0) {
				cs[i].inlen += (size_t)r;
				cs[i].in[cs[i].inlen] = '\0';
				if (strstr(cs[i].in, "data:") != NULL) {
					cs[i].first = true;
					open++;
				}
			}
		}
		usleep(1000);
	}
	printf("streams: %d of %d open\n", open, count);
	fflush(stdout);
	sleep((unsigned)secs);
	return open == count ? 0 : 1;
}

/*
 * turns: COUNT messages to an agent (POST /api/v1/chat), one after
 * another, each in conversation PREFIX-i; the latency of each is from
 * the request to its reply event.
 */
static int
turns(int count, const char *prefix)
{
	double		*lat = calloc((size_t)count, sizeof(double));
	char		 req[8192], body[512], in[65536];
	size_t		 inlen;
	ssize_t		 r;
	long		 errors = 0;
	double		 t0, total = now();
	int		 i, fd, n;

	for (i = 0; i < count; i++) {
		snprintf(body, sizeof(body), "{\"conversation\":\"%s-%d\","
		    "\"text\":\"hello\"}", prefix, i);
		n = snprintf(req, sizeof(req), "POST %s HTTP/1.1\r\nHost: "
		    "%s:%d\r\nContent-Type: application/json\r\n"
		    "Content-Length: %zu\r\nConnection: close\r\n%s\r\n%s",
		    path, host, port, strlen(body), extra, body);
		t0 = now();
		fd = dial();
		fcntl(fd, F_SETFL, 0);
		if (write_all(fd, req, (size_t)n) == -1)
			die("send");
		inlen = 0;
		lat[i] = -1;
		while ((r = recv(fd, in + inlen, sizeof(in) - 1 - inlen, 0)) >
		    0) {
			inlen += (size_t)r;
			in[inlen] = '\0';
			if (lat[i] < 0 && strstr(in, "event: reply\n"))
				lat[i] = now() - t0;
			if (strstr(in, "event: error\n"))
				break;
			if (inlen > sizeof(in) - 4096)
				inlen = 0;	/* only the ends matter */
		}
		close(fd);
		if (lat[i] < 0) {
			errors++;
			lat[i] = now() - t0;
		}
	}
	report("turns", lat, (size_t)count, now() - total, errors);
	return errors > 0;
}

int
main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 3 && !strcmp(argv[1], "upstream"))
		return upstream(argv[2]);
	if (argc >= 6 && !strcmp(argv[1], "load")) {
		parse_url(argv[2]);
		add_headers(argc, argv, 6);
		return load(atof(argv[3]), atof(argv[4]), atoi(argv[5]));
	}
	if (argc >= 4 && !strcmp(argv[1], "ttfb")) {
		parse_url(argv[2]);
		add_headers(argc, argv, 4);
		return ttfb(atoi(argv[3]));
	}
	if (argc >= 5 && !strcmp(argv[1], "streams")) {
		parse_url(argv[2]);
		add_headers(argc, argv, 5);
		return streams(atoi(argv[3]), atoi(argv[4]));
	}
	if (argc >= 5 && !strcmp(argv[1], "turns")) {
		parse_url(argv[2]);
		add_headers(argc, argv, 5);
		return turns(atoi(argv[3]), argv[4]);
	}
	fprintf(stderr, "usage: llm_bench upstream PORTFILE | load URL RATE "
	    "SECONDS CONNS [HEADER]... | ttfb URL N [HEADER]... | streams "
	    "URL N SECONDS [HEADER]... | turns URL N PREFIX [HEADER]...\n");
	return 2;
}
