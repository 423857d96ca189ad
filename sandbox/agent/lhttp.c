/* SPDX-License-Identifier: MIT */
/*
 * lhttp.c: one HTTP/1.1 POST to the sandbox's own LLM port and its
 * answer, passed on as it arrives (de-chunked). The far end is always
 * pincerd's proxy on loopback (plain HTTP, no redirects, no TLS), so
 * this is a few hundred lines instead of libcurl and its dozen shared
 * libraries in every turn's memory.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

#define HEAD_MAX	16384

struct conn {
	int		 fd;
	time_t		 deadline;
	char		 buf[8192];
	size_t		 off, len;	/* unread bytes in buf */
};

static int	 dial(const char *host, const char *port, char *, size_t);
static int	 send_all(struct conn *, const char *, size_t, char *,
		    size_t);
static ssize_t	 fill(struct conn *, char *, size_t);
static int	 read_line(struct conn *, char *, size_t, char *, size_t);
static int	 body_length(struct conn *, long long, lhttp_body_fn, void *,
		    char *, size_t);
static int	 body_chunked(struct conn *, lhttp_body_fn, void *, char *,
		    size_t);

int
lhttp_post(const char *url, const char *body, size_t len, long timeout_s,
    int *status, char *ctype, size_t ctypesz, lhttp_body_fn fn, void *arg,
    char *why, size_t whysz)
{
	struct conn	 c = { .fd = -1 };
	char		 host[256], port[16] = "80", line[HEAD_MAX], *p;
	const char	*path, *h = url + 7;
	long long	 clen = -1;
	bool		 chunked = false;
	int		 rc = -1;
	size_t		 n;
	struct buf	 req;

	*status = 0;
	if (ctypesz > 0)
		*ctype = '\0';
	if (strncmp(url, "http://", 7) != 0) {
		snprintf(why, whysz, "the LLM URL must be http:// (%s)", url);
		return -1;
	}
	path = strchr(h, '/');
	n = path != NULL ? (size_t)(path - h) : strlen(h);
	if (n == 0 || n >= sizeof(host)) {
		snprintf(why, whysz, "bad LLM URL %s", url);
		return -1;
	}
	memcpy(host, h, n);
	host[n] = '\0';
	if ((p = strrchr(host, ':')) != NULL) {
		*p = '\0';
		snprintf(port, sizeof(port), "%s", p + 1);
	}
	if (path == NULL)
		path = "/";
	c.deadline = time(NULL) + timeout_s;
	if ((c.fd = dial(host, port, why, whysz)) == -1)
		return -1;
	buf_init(&req, (size_t)1 << 30);
	buf_printf(&req, "POST %s HTTP/1.1\r\nHost: %s:%s\r\n"
	    "Content-Type: application/json\r\nAccept: text/event-stream, "
	    "application/json\r\nContent-Length: %zu\r\nConnection: close"
	    "\r\n\r\n", path, host, port, len);
	if (send_all(&c, req.data, req.len, why, whysz) == -1 ||
	    send_all(&c, body, len, why, whysz) == -1)
		goto out;
	if (read_line(&c, line, sizeof(line), why, whysz) == -1)
		goto out;
	if (strncmp(line, "HTTP/1.", 7) != 0 || strlen(line) < 12) {
		snprintf(why, whysz, "not an HTTP answer from %s", url);
		goto out;
	}
	*status = atoi(line + 9);
	for (;;) {
		if (read_line(&c, line, sizeof(line), why, whysz) == -1)
			goto out;
		if (*line == '\0')
			break;
		if ((p = strchr(line, ':')) == NULL)
			continue;
		*p++ = '\0';
		p += strspn(p, " \t");
		if (!strcasecmp(line, "content-length"))
			clen = strtoll(p, NULL, 10);
		else if (!strcasecmp(line, "transfer-encoding") &&
		    strcasestr(p, "chunked") != NULL)
			chunked = true;
		else if (!strcasecmp(line, "content-type") && ctypesz > 0)
			snprintf(ctype, ctypesz, "%s", p);
	}
	rc = chunked ? body_chunked(&c, fn, arg, why, whysz) :
	    body_length(&c, clen, fn, arg, why, whysz);
out:
	buf_free(&req);
	close(c.fd);
	return rc;
}

/*
 * The proxy is on loopback: an address, or "localhost". No name lookup
 * (a static binary would need the host's NSS libraries for one).
 */
static int
dial(const char *host, const char *port, char *why, size_t whysz)
{
	struct sockaddr_in	 a4 = { .sin_family = AF_INET };
	struct sockaddr_in6	 a6 = { .sin6_family = AF_INET6 };
	struct sockaddr		*sa;
	socklen_t		 len;
	char			 h[256];
	long			 p = strtol(port, NULL, 10);
	int			 fd;

	snprintf(h, sizeof(h), "%s", !strcmp(host, "localhost") ?
	    "127.0.0.1" : host);
	if (h[0] == '[') {		/* [::1] */
		memmove(h, h + 1, strlen(h));
		h[strcspn(h, "]")] = '\0';
	}
	if (p <= 0 || p > 65535) {
		snprintf(why, whysz, "bad port in the LLM URL: %s", port);
		return -1;
	}
	if (inet_pton(AF_INET, h, &a4.sin_addr) == 1) {
		a4.sin_port = htons((uint16_t)p);
		sa = (struct sockaddr *)&a4;
		len = sizeof(a4);
	} else if (inet_pton(AF_INET6, h, &a6.sin6_addr) == 1) {
		a6.sin6_port = htons((uint16_t)p);
		sa = (struct sockaddr *)&a6;
		len = sizeof(a6);
	} else {
		snprintf(why, whysz, "the LLM URL's host must be an IP address "
		    "or localhost (%s)", host);
		return -1;
	}
	if ((fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) ==
	    -1 || connect(fd, sa, len) == -1) {
		snprintf(why, whysz, "cannot reach the LLM proxy at %s:%s: %s",
		    host, port, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	return fd;
}

/* Wait for the socket, within the call's deadline. */
static int
wait_for(struct conn *c, short ev, char *why, size_t whysz)
{
	struct pollfd	 p = { .fd = c->fd, .events = ev };
	long		 left;
	int		 n;

	for (;;) {
		left = (long)(c->deadline - time(NULL));
		if (left <= 0) {
			snprintf(why, whysz, "the LLM call timed out");
			return -1;
		}
		n = poll(&p, 1, (int)(left > 1000 ? 1000000 : left * 1000));
		if (n > 0)
			return 0;
		if (n == -1 && errno != EINTR) {
			snprintf(why, whysz, "poll: %s", strerror(errno));
			return -1;
		}
	}
}

static int
send_all(struct conn *c, const char *p, size_t n, char *why, size_t whysz)
{
	ssize_t	 w;

	while (n > 0) {
		if (wait_for(c, POLLOUT, why, whysz) == -1)
			return -1;
		if ((w = send(c->fd, p, n, MSG_NOSIGNAL)) == -1) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			snprintf(why, whysz, "sending to the LLM proxy: %s",
			    strerror(errno));
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Up to max buffered or fresh bytes; 0 at the end, -1 on error. */
static ssize_t
fill(struct conn *c, char *why, size_t whysz)
{
	ssize_t	 r;

	if (c->len > 0)
		return (ssize_t)c->len;
	c->off = 0;
	for (;;) {
		if (wait_for(c, POLLIN, why, whysz) == -1)
			return -1;
		r = recv(c->fd, c->buf, sizeof(c->buf), 0);
		if (r >= 0) {
			c->len = (size_t)r;
			return r;
		}
		if (errno != EINTR && errno != EAGAIN) {
			snprintf(why, whysz, "reading from the LLM proxy: %s",
			    strerror(errno));
			return -1;
		}
	}
}

/* One line, CRLF or LF, without its end. */
static int
read_line(struct conn *c, char *out, size_t outsz, char *why, size_t whysz)
{
	size_t	 n = 0;
	ssize_t	 r;
	char	 ch;

	for (;;) {
		if ((r = fill(c, why, whysz)) <= 0) {
			if (r == 0)
				snprintf(why, whysz, "the LLM proxy closed the "
				    "connection early");
			return -1;
		}
		ch = c->buf[c->off++];
		c->len--;
		if (ch == '\n')
			break;
		if (n + 1 >= outsz) {
			snprintf(why, whysz, "an over-long line from the LLM "
			    "proxy");
			return -1;
		}
		out[n++] = ch;
	}
	if (n > 0 && out[n - 1] == '\r')
		n--;
	out[n] = '\0';
	return 0;
}

/* A body of clen bytes, or up to the close when clen is -1. */
static int
body_length(struct conn *c, long long clen, lhttp_body_fn fn, void *arg,
    char *why, size_t whysz)
{
	ssize_t	 r;
	size_t	 n;

	while (clen != 0) {
		if ((r = fill(c, why, whysz)) == -1)
			return -1;
		if (r == 0) {
			if (clen < 0)
				return 0;
			snprintf(why, whysz, "the LLM proxy's answer was cut");
			return -1;
		}
		n = c->len;
		if (clen > 0 && (long long)n > clen)
			n = (size_t)clen;
		if (fn(arg, c->buf + c->off, n) != 0) {
			snprintf(why, whysz, "the answer could not be read");
			return -1;
		}
		c->off += n;
		c->len -= n;
		if (clen > 0)
			clen -= (long long)n;
	}
	return 0;
}

static int
body_chunked(struct conn *c, lhttp_body_fn fn, void *arg, char *why,
    size_t whysz)
{
	char		 line[128];
	long long	 size;

	for (;;) {
		if (read_line(c, line, sizeof(line), why, whysz) == -1)
			return -1;
		size = strtoll(line, NULL, 16);
		if (size < 0) {
			snprintf(why, whysz, "a bad chunk from the LLM proxy");
			return -1;
		}
		if (size == 0)
			return 0;	/* trailers are not read: the end */
		if (body_length(c, size, fn, arg, why, whysz) == -1 ||
		    read_line(c, line, sizeof(line), why, whysz) == -1)
			return -1;
	}
}
