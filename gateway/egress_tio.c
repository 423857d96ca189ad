/* SPDX-License-Identifier: MIT */
/*
 * egress_tio.c: the I/O of an intercepted tunnel (egress_tls.c): TLS
 * reads and writes on non-blocking sockets, each wait a poll bounded by
 * the idle timeout; a head read whole; a body copied as its head frames
 * it; after a 101, bytes both ways as they come.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "pincer.h"
#include "egress.h"

static int	 tio_copy_n(struct tunnel *, struct side *, struct side *,
		    long long, long long *);

/* Wait for what the last TLS call (rc) needs; -1: an error, a timeout. */
int
eg_io_wait(struct side *s, int rc, int ms)
{
	struct pollfd	 pfd = { .fd = s->fd };
	int		 n;

	switch (SSL_get_error(s->ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		pfd.events = POLLIN;
		break;
	case SSL_ERROR_WANT_WRITE:
		pfd.events = POLLOUT;
		break;
	default:
		return -1;
	}
	while ((n = poll(&pfd, 1, ms)) == -1 && errno == EINTR)
		;
	return n == 1 ? 0 : -1;
}

/* Up to n bytes: >0, 0 at the end, -1 an error, -2 none yet (!wait). */
long
eg_side_read(struct side *s, void *p, size_t n, bool wait, int ms)
{
	int	 rc;

	for (;;) {
		ERR_clear_error();
		if ((rc = SSL_read(s->ssl, p, n > INT32_MAX ? INT32_MAX :
		    (int)n)) > 0)
			return rc;
		switch (SSL_get_error(s->ssl, rc)) {
		case SSL_ERROR_ZERO_RETURN:
			return 0;
		case SSL_ERROR_WANT_READ:
			if (!wait)
				return -2;
			break;
		case SSL_ERROR_WANT_WRITE:
			break;
		default:
			return -1;
		}
		if (eg_io_wait(s, rc, ms) == -1)
			return -1;
	}
}

/* More bytes into the buffer (moved to its start). >0, 0 end, -1. */
int
eg_side_fill(struct side *s, int ms)
{
	long	 n;

	if (s->off > 0) {
		memmove(s->buf, s->buf + s->off, s->len - s->off);
		s->len -= s->off;
		s->off = 0;
	}
	if (s->len >= EG_IO_BUF)
		return -1;
	if ((n = eg_side_read(s, s->buf + s->len, EG_IO_BUF - s->len, true, ms)) >
	    0)
		s->len += (size_t)n;
	return n > 0 ? 1 : (int)n;
}

int
eg_side_write(struct side *s, const void *p, size_t n, int ms)
{
	const char	*c = p;
	ssize_t		 w;
	int		 rc;

	while (n > 0) {
		if (s->ssl == NULL) {
			/* The CONNECT's answer, before TLS. */
			if ((w = send(s->fd, c, n, MSG_NOSIGNAL)) > 0) {
				c += w;
				n -= (size_t)w;
			} else if (w == -1 && errno != EAGAIN && errno != EINTR)
				return -1;
			continue;
		}
		ERR_clear_error();
		if ((rc = SSL_write(s->ssl, c, n > INT32_MAX ? INT32_MAX :
		    (int)n)) > 0) {
			c += rc;
			n -= (size_t)rc;
		} else if (eg_io_wait(s, rc, ms) == -1)
			return -1;
	}
	return 0;
}

/* A whole head at buf + off; *hlen its bytes. -1 end or error, -2 too
 * large. */
int
eg_read_head(struct side *s, int ms, size_t *hlen)
{
	char	*p;
	int	 rc;

	for (;;) {
		s->buf[s->len] = '\0';
		if ((p = strstr(s->buf + s->off, "\r\n\r\n")) != NULL) {
			*hlen = (size_t)(p + 4 - (s->buf + s->off));
			return 0;
		}
		if (s->len - s->off >= EG_HEAD_MAX)
			return -2;
		if ((rc = eg_side_fill(s, ms)) <= 0)
			return -1;
	}
}

/* A body as its head frames it, from one side to the other. */
int
eg_copy_body(struct tunnel *t, struct side *from, struct side *to, int how,
    long long n, long long *count)
{
	char		*eol, *end;
	long long	 size;

	switch (how) {
	case EF_NONE:
		return 0;
	case EF_LEN:
		return tio_copy_n(t, from, to, n, count);
	case EF_CLOSE:
		return tio_copy_n(t, from, to, -1, count);
	}
	/* Chunked: each size line, its bytes and CRLF, then trailers to
	 * the blank line, all passed on as they are. */
	for (;;) {
		from->buf[from->len] = '\0';
		while ((eol = strstr(from->buf + from->off, "\r\n")) == NULL)
			if (from->len - from->off > 1024 ||
			    eg_side_fill(from, t->idle_ms) <= 0)
				return -1;
			else
				from->buf[from->len] = '\0';
		size = strtoll(from->buf + from->off, &end, 16);
		if (end == from->buf + from->off || size < 0 ||
		    (*end != '\r' && *end != ';' && *end != ' ' &&
		    *end != '\t'))
			return -1;
		if (tio_copy_n(t, from, to, eol + 2 - (from->buf + from->off),
		    count) == -1)
			return -1;
		if (size == 0)
			break;
		if (tio_copy_n(t, from, to, size + 2, count) == -1)
			return -1;
	}
	for (;;) {
		from->buf[from->len] = '\0';
		while ((eol = strstr(from->buf + from->off, "\r\n")) == NULL)
			if (from->len - from->off > 8192 ||
			    eg_side_fill(from, t->idle_ms) <= 0)
				return -1;
			else
				from->buf[from->len] = '\0';
		size = eol + 2 - (from->buf + from->off);
		if (tio_copy_n(t, from, to, size, count) == -1)
			return -1;
		if (size == 2)
			return 0;
	}
}

/* n bytes (-1: to the end), what is buffered first. */
static int
tio_copy_n(struct tunnel *t, struct side *from, struct side *to, long long n,
    long long *count)
{
	size_t	 k;
	long	 got;

	while (n != 0) {
		if (from->off == from->len) {
			from->off = from->len = 0;
			if ((got = eg_side_read(from, from->buf, EG_IO_BUF, true,
			    t->idle_ms)) <= 0)
				return n < 0 && got == 0 ? 0 : -1;
			from->len = (size_t)got;
		}
		k = from->len - from->off;
		if (n > 0 && (long long)k > n)
			k = (size_t)n;
		if (eg_side_write(to, from->buf + from->off, k, t->idle_ms) == -1)
			return -1;
		from->off += k;
		*count += (long long)k;
		if (n > 0)
			n -= (long long)k;
	}
	return 0;
}

/* After a 101: bytes both ways as they come, until one side ends. */
void
eg_both_ways(struct tunnel *t)
{
	struct side	*s[2] = { &t->dn, &t->up };
	struct pollfd	 pfd[2] = { { .fd = t->dn.fd, .events = POLLIN },
			    { .fd = t->up.fd, .events = POLLIN } };
	long long	*count[2] = { &t->bup, &t->bdown };
	long		 n;
	bool		 moved;
	int		 i;

	for (;;) {
		moved = false;
		for (i = 0; i < 2; i++) {
			if (s[i]->off < s[i]->len) {
				n = (long)(s[i]->len - s[i]->off);
				if (eg_side_write(s[!i], s[i]->buf + s[i]->off,
				    (size_t)n, t->idle_ms) == -1)
					return;
				*count[i] += n;
				s[i]->off = s[i]->len = 0;
				moved = true;
			}
			n = eg_side_read(s[i], s[i]->buf, EG_IO_BUF, false, 0);
			if (n == 0 || n == -1) {
				ERR_clear_error();
				SSL_shutdown(s[!i]->ssl);
				return;
			}
			if (n > 0) {
				s[i]->off = 0;
				s[i]->len = (size_t)n;
				moved = true;
			}
		}
		if (!moved && poll(pfd, 2, t->idle_ms) <= 0)
			return;
	}
}
