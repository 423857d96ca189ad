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
 * Sockets are non-blocking and every wait (egress_tio.c) is a poll
 * bounded by the idle timeout: a TLS read can need a write and the other way round, and a
 * record that is not application data (a session ticket) must not leave
 * the thread blocked in SSL_read while the other side has bytes to pass.
 */
#include <fcntl.h>
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

#define HANDSHAKE_MS	10000

static int	 up_handshake(struct tunnel *, char *, size_t);
static int	 dn_handshake(struct tunnel *);
static void	 requests(struct tunnel *);
static int	 one_request(struct tunnel *, struct ereq *, bool *);
static int	 answer_in(struct tunnel *, struct ereq *, int, const char *,
		    const char *, int);
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
	if ((t.dn.buf = malloc(EG_IO_BUF + 1)) == NULL ||
	    (t.up.buf = malloc(EG_IO_BUF + 1)) == NULL) {
		egress_refuse(e, 503, "egress_busy", "out of memory", NULL);
		goto out;
	}
	if ((status = up_handshake(&t, why, sizeof(why))) != 0) {
		egress_refuse(e, status, "egress_upstream_tls", why, NULL);
		egress_account(e, r, EO_ERROR, -1, status, 0, 0, 0);
		goto out;
	}
	if (eg_side_write(&t.dn, "HTTP/1.1 200 Connection established\r\n\r\n",
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
		if (eg_io_wait(&t->up, rc, HANDSHAKE_MS) == -1)
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
		if (eg_io_wait(&t->dn, rc, HANDSHAKE_MS) == -1)
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

	if ((rc = eg_read_head(&t->dn, t->idle_ms, &hlen)) == -2)
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
	    eg_side_write(&t->dn, "HTTP/1.1 100 Continue\r\n\r\n", 25,
	    t->idle_ms) == -1)
		rc = -1;
	*more = !eh_has_token(head, hlen, "Connection", "close");
	t->dn.off += hlen;
	if (rc == 0 && eg_side_write(&t->up, out.data, out.len, t->idle_ms) ==
	    -1)
		rc = -1;
	t->bup += (long long)out.len;
	explicit_bzero(out.data, out.cap);
	buf_free(&out);
	/* The body, then the answer's heads (1xx ones passed on). */
	if (rc == -1 || eg_copy_body(t, &t->dn, &t->up, rq, n, &t->bup) == -1)
		goto fail;
	do {
		if (eg_read_head(&t->up, t->idle_ms, &hlen) != 0)
			goto fail;
		head = t->up.buf + t->up.off;
		if ((status = eh_status(head, hlen)) == -1 ||
		    eg_side_write(&t->dn, head, hlen, t->idle_ms) == -1)
			goto fail;
		t->up.off += hlen;
		t->bdown += (long long)hlen;
	} while (status >= 100 && status < 200 && status != 101);
	if (status == 101) {
		eg_both_ways(t);
		*more = false;
	} else {
		rs = !strcmp(q->method, "HEAD") || status == 204 ||
		    status == 304 ? EF_NONE : eh_framing(head, hlen, false, &n);
		if (eh_has_token(head, hlen, "Connection", "close") ||
		    rs == EF_CLOSE || rs == -1)
			*more = false;
		if (rs == -1 || eg_copy_body(t, &t->up, &t->dn, rs, n,
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
		(void)eg_side_write(&t->dn, b.data, b.len, t->idle_ms);
	egress_account(t->e, q, status == 403 ? EO_DENY : EO_ERROR, rule,
	    status, 0, (long long)b.len, 0);
	buf_free(&b);
	return -1;
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
