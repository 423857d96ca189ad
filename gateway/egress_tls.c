/* SPDX-License-Identifier: MIT */
/*
 * egress_tls.c: a CONNECT tunnel whose requests are checked one by one,
 * because an inject rule could match one of them (README, Egress).
 *
 * pincerd connects to the host (egress_dial checked the address), makes
 * its own TLS handshake with it, verifying the certificate against the
 * system's roots (and egress.upstream_ca_file) for the name asked, and
 * only then answers the CONNECT: a host that fails verification gets a
 * 502 the agent can read, not a tunnel. The sandbox's TLS is then ended
 * here with a leaf for that name signed by the sandbox's own CA
 * (egress_ca.c), which no other sandbox trusts.
 *
 * Inside, HTTP/1.1 (ALPN offers nothing else), one request at a time:
 * its head is decided by the policy with method, path and address; a
 * deny is answered here; an inject sets the rule's headers and query
 * parameters, secrets filled in, in place of any the sandbox set of the
 * same names (egress_http.c); bodies are copied as they are framed.
 * After a 101 bytes go both ways as they come (WebSocket); an event
 * stream is a body like any other, passed on as it arrives.
 *
 * Sockets are non-blocking and every wait is a poll bounded by the idle
 * timeout: a TLS read can need a write and the other way round, and a
 * record that is not application data (a session ticket) must not leave
 * the thread blocked in SSL_read while the other side has bytes to pass.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "pincer.h"
#include "egress.h"

#define IO_BUF		(64 << 10)	/* per side */
#define HANDSHAKE_MS	10000

/* One end of the tunnel, with what was read and not yet passed on. */
struct side {
	SSL		*ssl;
	int		 fd;
	char		*buf;		/* IO_BUF + 1 */
	size_t		 off, len;	/* unread: buf[off, len) */
};

struct tunnel {
	struct econn	*e;
	struct ereq	*r;		/* the CONNECT */
	struct side	 dn, up;	/* the sandbox's, the host's */
	int		 idle_ms;
	long long	 bup, bdown;	/* this request's bytes */
};

static int	 up_handshake(struct tunnel *, char *, size_t);
static int	 dn_handshake(struct tunnel *);
static void	 requests(struct tunnel *);
static int	 one_request(struct tunnel *, struct ereq *, bool *);
static int	 answer_in(struct tunnel *, struct ereq *, int, const char *,
		    const char *, int);
static int	 io_wait(struct side *, int, int);
static long	 side_read(struct side *, void *, size_t, bool, int);
static int	 side_fill(struct side *, int);
static int	 side_write(struct side *, const void *, size_t, int);
static int	 read_head(struct side *, int, size_t *);
static int	 copy_body(struct tunnel *, struct side *, struct side *,
		    int, long long, long long *);
static int	 copy_n(struct tunnel *, struct side *, struct side *,
		    long long, long long *);
static void	 both_ways(struct tunnel *);
static SSL_CTX	*client_ctx(char *, size_t);

static pthread_mutex_t	 ctx_mu = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX		*cctx;		/* ctx_mu; for the hosts */
static char		*cctx_file;	/* ctx_mu; the extra roots it has */

void
egress_tls_run(struct econn *e, struct ereq *r)
{
	struct tunnel	 t = { .e = e, .r = r, .dn.fd = e->fd,
			    .up.fd = e->up };
	char		 why[300];
	int		 status;

	t.idle_ms = (int)config_current()->egress_idle_timeout_s * 1000;
	e->intercepted = true;
	fcntl(e->fd, F_SETFL, fcntl(e->fd, F_GETFL) | O_NONBLOCK);
	fcntl(e->up, F_SETFL, fcntl(e->up, F_GETFL) | O_NONBLOCK);
	if ((t.dn.buf = malloc(IO_BUF + 1)) == NULL ||
	    (t.up.buf = malloc(IO_BUF + 1)) == NULL) {
		egress_refuse(e, 503, "egress_busy", "out of memory", NULL);
		goto out;
	}
	if ((status = up_handshake(&t, why, sizeof(why))) != 0) {
		egress_refuse(e, status, "egress_upstream_tls", why, NULL);
		egress_account(e, r, EO_ERROR, -1, status, 0, 0, 0);
		goto out;
	}
	if (side_write(&t.dn, "HTTP/1.1 200 Connection established\r\n\r\n",
	    39, t.idle_ms) == 0 && dn_handshake(&t) == 0)
		requests(&t);
out:
	/* close_notify: a body that ends with the connection is whole. */
	if (t.dn.ssl != NULL) {
		ERR_clear_error();
		SSL_shutdown(t.dn.ssl);
		SSL_free(t.dn.ssl);
	}
	if (t.up.ssl != NULL) {
		ERR_clear_error();
		SSL_shutdown(t.up.ssl);
		SSL_free(t.up.ssl);
	}
	free(t.dn.buf);
	free(t.up.buf);
	ERR_clear_error();
}

/*
 * TLS with the host, verified for the name the CONNECT asked (or its
 * address, for an IP literal). 0, or the status for the CONNECT.
 */
static int
up_handshake(struct tunnel *t, char *why, size_t whysz)
{
	SSL_CTX		*ctx;
	X509_VERIFY_PARAM *vp;
	unsigned char	 ip[16];
	bool		 literal;
	long		 vr;
	int		 rc;

	if ((ctx = client_ctx(why, whysz)) == NULL)
		return 502;
	t->up.ssl = SSL_new(ctx);
	SSL_CTX_free(ctx);
	if (t->up.ssl == NULL) {
		snprintf(why, whysz, "cannot start TLS with %s", t->r->host);
		return 502;
	}
	literal = inet_pton(AF_INET, t->r->host, ip) == 1 ||
	    inet_pton(AF_INET6, t->r->host, ip) == 1;
	vp = SSL_get0_param(t->up.ssl);
	if (!SSL_set_fd(t->up.ssl, t->up.fd) || (literal ?
	    !X509_VERIFY_PARAM_set1_ip_asc(vp, t->r->host) :
	    (!X509_VERIFY_PARAM_set1_host(vp, t->r->host, 0) ||
	    !SSL_set_tlsext_host_name(t->up.ssl, t->r->host)))) {
		snprintf(why, whysz, "cannot start TLS with %s", t->r->host);
		return 502;
	}
	SSL_set_mode(t->up.ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	for (;;) {
		ERR_clear_error();
		if ((rc = SSL_connect(t->up.ssl)) == 1)
			return 0;
		if (io_wait(&t->up, rc, HANDSHAKE_MS) == -1)
			break;
	}
	if ((vr = SSL_get_verify_result(t->up.ssl)) != X509_V_OK)
		snprintf(why, whysz, "%.100s port %d did not prove it is "
		    "%.100s: %s", t->r->host, t->r->port, t->r->host,
		    X509_verify_cert_error_string(vr));
	else
		snprintf(why, whysz, "the TLS handshake with %s port %d "
		    "failed", t->r->host, t->r->port);
	return 502;
}

/* TLS with the sandbox, as the host, with its CA's leaf. */
static int
dn_handshake(struct tunnel *t)
{
	SSL_CTX	*ctx;
	char	 err[200];
	int	 rc;

	if ((ctx = egress_ca_server_ctx(t->e->box, t->r->host, err,
	    sizeof(err))) == NULL) {
		log_error("egress: no certificate for an intercepted host",
		    "sandbox=%s host=%s: %s", t->e->box, t->r->host, err);
		return -1;
	}
	t->dn.ssl = SSL_new(ctx);
	SSL_CTX_free(ctx);
	if (t->dn.ssl == NULL || !SSL_set_fd(t->dn.ssl, t->dn.fd))
		return -1;
	SSL_set_mode(t->dn.ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_set_options(t->dn.ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
	for (;;) {
		ERR_clear_error();
		if ((rc = SSL_accept(t->dn.ssl)) == 1)
			return 0;
		if (io_wait(&t->dn, rc, HANDSHAKE_MS) == -1)
			return -1;
	}
}

/* Requests until one side ends, or one request ends the tunnel. */
static void
requests(struct tunnel *t)
{
	struct ereq	*q;
	bool		 more = true;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		return;
	memcpy(q->host, t->r->host, sizeof(q->host));
	memcpy(q->port_s, t->r->port_s, sizeof(q->port_s));
	q->port = t->r->port;
	while (more && one_request(t, q, &more) == 0) {
		free(q->path);
		q->path = NULL;
	}
	free(q->path);
	free(q);
}

/*
 * Read a request, decide, send it on (rewritten for an inject rule),
 * pass its answer back. -1: the tunnel ends.
 */
static int
one_request(struct tunnel *t, struct ereq *q, bool *more)
{
	struct eg_req		 ask = { q->host, q->port, q->method, NULL,
				    (struct sockaddr *)&t->e->upaddr };
	struct eg_verdict	 v;
	struct buf		 out;
	enum eg_outcome		 act;
	const char		*head;
	char			 why[300] = "";
	uint64_t		 t0;
	long long		 n;
	size_t			 hlen;
	int			 rc, rq, rs, status;

	if ((rc = read_head(&t->dn, t->idle_ms, &hlen)) == -2)
		return answer_in(t, NULL, 431, "header_too_large", "the "
		    "request's head is larger than 16 KiB", -1);
	if (rc != 0)
		return -1;
	t0 = now_ms();
	t->bup = t->bdown = 0;
	head = t->dn.buf + t->dn.off;
	if (eh_request_line(head, hlen, q->method, sizeof(q->method),
	    &q->path) == -1 || (rq = eh_framing(head, hlen, true, &n)) == -1)
		return answer_in(t, q->path != NULL ? q : NULL, 400,
		    "bad_request", "a request inside the tunnel is not "
		    "HTTP/1.1 this proxy can pass on (its line, or how its "
		    "body's length is given)", -1);
	ask.path = q->path;
	egress_conf_check(t->e->box, &ask, &v, t->e->policy,
	    sizeof(t->e->policy));
	if (v.action == EG_DENY)
		return answer_in(t, q, 403, "egress_denied", v.reason, v.rule);
	buf_init(&out, EG_HEAD_MAX + 2 * SECRETS_MAX);
	rc = eh_rewrite(&out, head, hlen, q->method, q->path,
	    v.action == EG_INJECT ? v.set_headers : NULL,
	    v.action == EG_INJECT ? v.set_query : NULL, why, sizeof(why));
	act = v.action == EG_INJECT ? EO_INJECT : EO_ALLOW;
	json_decref(v.set_headers);
	json_decref(v.set_query);
	if (rc == -1) {
		if (out.data != NULL)
			explicit_bzero(out.data, out.cap);
		buf_free(&out);
		return answer_in(t, q, 502, "egress_inject_failed", why,
		    v.rule);
	}
	if (eh_has_token(head, hlen, "Expect", "100-continue") &&
	    side_write(&t->dn, "HTTP/1.1 100 Continue\r\n\r\n", 25,
	    t->idle_ms) == -1)
		rc = -1;
	*more = !eh_has_token(head, hlen, "Connection", "close");
	t->dn.off += hlen;
	if (rc == 0 && side_write(&t->up, out.data, out.len, t->idle_ms) ==
	    -1)
		rc = -1;
	t->bup += (long long)out.len;
	explicit_bzero(out.data, out.cap);
	buf_free(&out);
	/* The body, then the answer's heads (1xx ones passed on). */
	if (rc == -1 || copy_body(t, &t->dn, &t->up, rq, n, &t->bup) == -1)
		goto fail;
	do {
		if (read_head(&t->up, t->idle_ms, &hlen) != 0)
			goto fail;
		head = t->up.buf + t->up.off;
		if ((status = eh_status(head, hlen)) == -1 ||
		    side_write(&t->dn, head, hlen, t->idle_ms) == -1)
			goto fail;
		t->up.off += hlen;
		t->bdown += (long long)hlen;
	} while (status >= 100 && status < 200 && status != 101);
	if (status == 101) {
		both_ways(t);
		*more = false;
	} else {
		rs = !strcmp(q->method, "HEAD") || status == 204 ||
		    status == 304 ? EF_NONE : eh_framing(head, hlen, false, &n);
		if (eh_has_token(head, hlen, "Connection", "close") ||
		    rs == EF_CLOSE || rs == -1)
			*more = false;
		if (rs == -1 || copy_body(t, &t->up, &t->dn, rs, n,
		    &t->bdown) == -1)
			*more = false;
	}
	egress_account(t->e, q, act, v.rule, status, t->bup, t->bdown,
	    now_ms() - t0);
	return 0;
fail:
	egress_account(t->e, q, EO_ERROR, v.rule, 502, t->bup, t->bdown,
	    now_ms() - t0);
	return -1;
}

/* An answer from the proxy inside the tunnel, which then ends. */
static int
answer_in(struct tunnel *t, struct ereq *q, int status, const char *code,
    const char *msg, int rule)
{
	struct buf	 b;

	buf_init(&b, 4096);
	if (egress_answer(&b, t->e, status, code, msg, rule) == 0)
		(void)side_write(&t->dn, b.data, b.len, t->idle_ms);
	egress_account(t->e, q, status == 403 ? EO_DENY : EO_ERROR, rule,
	    status, 0, (long long)b.len, 0);
	buf_free(&b);
	return -1;
}

/* Wait for what the last TLS call (rc) needs; -1: an error, a timeout. */
static int
io_wait(struct side *s, int rc, int ms)
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
static long
side_read(struct side *s, void *p, size_t n, bool wait, int ms)
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
		if (io_wait(s, rc, ms) == -1)
			return -1;
	}
}

/* More bytes into the buffer (moved to its start). >0, 0 end, -1. */
static int
side_fill(struct side *s, int ms)
{
	long	 n;

	if (s->off > 0) {
		memmove(s->buf, s->buf + s->off, s->len - s->off);
		s->len -= s->off;
		s->off = 0;
	}
	if (s->len >= IO_BUF)
		return -1;
	if ((n = side_read(s, s->buf + s->len, IO_BUF - s->len, true, ms)) >
	    0)
		s->len += (size_t)n;
	return n > 0 ? 1 : (int)n;
}

static int
side_write(struct side *s, const void *p, size_t n, int ms)
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
		} else if (io_wait(s, rc, ms) == -1)
			return -1;
	}
	return 0;
}

/* A whole head at buf + off; *hlen its bytes. -1 end or error, -2 too
 * large. */
static int
read_head(struct side *s, int ms, size_t *hlen)
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
		if ((rc = side_fill(s, ms)) <= 0)
			return -1;
	}
}

/* A body as its head frames it, from one side to the other. */
static int
copy_body(struct tunnel *t, struct side *from, struct side *to, int how,
    long long n, long long *count)
{
	char		*eol, *end;
	long long	 size;

	switch (how) {
	case EF_NONE:
		return 0;
	case EF_LEN:
		return copy_n(t, from, to, n, count);
	case EF_CLOSE:
		return copy_n(t, from, to, -1, count);
	}
	/* Chunked: each size line, its bytes and CRLF, then trailers to
	 * the blank line, all passed on as they are. */
	for (;;) {
		from->buf[from->len] = '\0';
		while ((eol = strstr(from->buf + from->off, "\r\n")) == NULL)
			if (from->len - from->off > 1024 ||
			    side_fill(from, t->idle_ms) <= 0)
				return -1;
			else
				from->buf[from->len] = '\0';
		size = strtoll(from->buf + from->off, &end, 16);
		if (end == from->buf + from->off || size < 0 ||
		    (*end != '\r' && *end != ';' && *end != ' ' &&
		    *end != '\t'))
			return -1;
		if (copy_n(t, from, to, eol + 2 - (from->buf + from->off),
		    count) == -1)
			return -1;
		if (size == 0)
			break;
		if (copy_n(t, from, to, size + 2, count) == -1)
			return -1;
	}
	for (;;) {
		from->buf[from->len] = '\0';
		while ((eol = strstr(from->buf + from->off, "\r\n")) == NULL)
			if (from->len - from->off > 8192 ||
			    side_fill(from, t->idle_ms) <= 0)
				return -1;
			else
				from->buf[from->len] = '\0';
		size = eol + 2 - (from->buf + from->off);
		if (copy_n(t, from, to, size, count) == -1)
			return -1;
		if (size == 2)
			return 0;
	}
}

/* n bytes (-1: to the end), what is buffered first. */
static int
copy_n(struct tunnel *t, struct side *from, struct side *to, long long n,
    long long *count)
{
	size_t	 k;
	long	 got;

	while (n != 0) {
		if (from->off == from->len) {
			from->off = from->len = 0;
			if ((got = side_read(from, from->buf, IO_BUF, true,
			    t->idle_ms)) <= 0)
				return n < 0 && got == 0 ? 0 : -1;
			from->len = (size_t)got;
		}
		k = from->len - from->off;
		if (n > 0 && (long long)k > n)
			k = (size_t)n;
		if (side_write(to, from->buf + from->off, k, t->idle_ms) == -1)
			return -1;
		from->off += k;
		*count += (long long)k;
		if (n > 0)
			n -= (long long)k;
	}
	return 0;
}

/* After a 101: bytes both ways as they come, until one side ends. */
static void
both_ways(struct tunnel *t)
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
				if (side_write(s[!i], s[i]->buf + s[i]->off,
				    (size_t)n, t->idle_ms) == -1)
					return;
				*count[i] += n;
				s[i]->off = s[i]->len = 0;
				moved = true;
			}
			n = side_read(s[i], s[i]->buf, IO_BUF, false, 0);
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

/* The context for hosts: the system's roots, and the configured file's. */
static SSL_CTX *
client_ctx(char *why, size_t whysz)
{
	const char	*file = config_current()->egress_upstream_ca_file;
	SSL_CTX		*ctx = NULL;

	if (file == NULL)
		file = "";
	pthread_mutex_lock(&ctx_mu);
	if (cctx != NULL && !strcmp(cctx_file, file)) {
		SSL_CTX_up_ref(cctx);
		pthread_mutex_unlock(&ctx_mu);
		return cctx;
	}
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)
	    "\x08http/1.1", 9) != 0 ||
	    !SSL_CTX_set_default_verify_paths(ctx) ||
	    (file[0] != '\0' && !SSL_CTX_load_verify_locations(ctx, file,
	    NULL))) {
		snprintf(why, whysz, "cannot load the CA certificates to "
		    "verify hosts with%s%s", file[0] ? " (egress.upstream_ca_"
		    "file " : "", file[0] ? file : "");
		if (file[0])
			snprintf(why + strlen(why), whysz - strlen(why), ")");
		SSL_CTX_free(ctx);
		pthread_mutex_unlock(&ctx_mu);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_free(cctx);
	free(cctx_file);
	cctx = ctx;
	cctx_file = strdup(file);
	if (cctx_file == NULL) {
		SSL_CTX_free(cctx);
		cctx = NULL;
		pthread_mutex_unlock(&ctx_mu);
		snprintf(why, whysz, "out of memory");
		return NULL;
	}
	SSL_CTX_up_ref(ctx);
	pthread_mutex_unlock(&ctx_mu);
	return ctx;
}

void
egress_tls_free(void)
{
	pthread_mutex_lock(&ctx_mu);
	SSL_CTX_free(cctx);
	free(cctx_file);
	cctx = NULL;
	cctx_file = NULL;
	pthread_mutex_unlock(&ctx_mu);
}
