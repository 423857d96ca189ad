/* SPDX-License-Identifier: MIT */
/*
 * test_egress_http.c: the HTTP/1.1 heads of an intercepted tunnel
 * (egress_http.c): framing, the smuggling cases refused, and the head
 * sent on with an inject rule's headers and query, secrets filled in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "pincer.h"
#include "egress.h"
#include "tap.h"

#define H(s)	(s), strlen(s)

static int	 framing(const char *, bool, long long *);
static size_t	 hello(const char *, unsigned char *, size_t);
static void	 test_sni(void);
static char	*rewrite(const char *, const char *, const char *, int *,
		    char *, size_t);

int
main(void)
{
	char		 dir[] = "/tmp/pincer-test-egress-http.XXXXXX";
	char		 db[128], method[16], why[300], *path, *out, *err;
	const char	*v;
	long long	 n;
	size_t		 vl;
	int		 rc;

	if (mkdtemp(dir) == NULL) {
		printf("Bail out! mkdtemp failed\n");
		return 1;
	}
	log_setup(LOG_ERROR, LOG_LOGFMT);
	snprintf(db, sizeof(db), "%s/pincer.db", dir);
	ok(store_open(db, 1000, &err) == 0 && secrets_init(dir) == 0,
	    "the store and secrets open");
	ok(secrets_set("gh", "ghp_SECRET123", 13, &err) == 0 &&
	    secrets_set("q", "a b&c", 5, &err) == 0 &&
	    secrets_set("nl", "x\r\nEvil: 1", 10, &err) == 0,
	    "three secrets are set");

	/* The request line. */
	ok(eh_request_line(H("GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n"),
	    method, sizeof(method), &path) == 0 && !strcmp(method, "GET") &&
	    !strcmp(path, "/a?b=c"), "a request line: method and target");
	free(path);
	ok(eh_request_line(H("OPTIONS * HTTP/1.1\r\n\r\n"), method,
	    sizeof(method), &path) == 0 && !strcmp(path, "*"),
	    "OPTIONS * is an origin-form target too");
	free(path);
	ok(eh_request_line(H("GET http://h/ HTTP/1.1\r\n\r\n"), method,
	    sizeof(method), &path) == -1, "an absolute target in a tunnel "
	    "is refused");
	ok(eh_request_line(H("get / HTTP/1.1\r\n\r\n"), method,
	    sizeof(method), &path) == -1, "a lower-case method is refused");
	ok(eh_request_line(H("GET / HTTP/2\r\n\r\n"), method,
	    sizeof(method), &path) == -1, "HTTP/2 in a line is refused");
	ok(eh_request_line(H("GET /\n HTTP/1.1\r\n\r\n"), method,
	    sizeof(method), &path) == -1, "a bare LF in the target is refused");
	ok(eh_request_line(H("AVERYLONGMETHODNAMEX / HTTP/1.1\r\n\r\n"),
	    method, sizeof(method), &path) == -1, "a too long method");
	is_int(eh_status(H("HTTP/1.1 204 No Content\r\n\r\n")), 204,
	    "a status line");
	is_int(eh_status(H("HTTP/1.1 2x4 No\r\n\r\n")), -1, "a bad status");

	/* Headers. */
	v = eh_header(H("GET / HTTP/1.1\r\nX-A:  one \r\nx-a: two\r\n\r\n"),
	    "X-A", &vl);
	ok(v != NULL && vl == 3 && !strncmp(v, "one", 3),
	    "the first header of a name, any case, spaces trimmed");
	ok(eh_header(H("GET / HTTP/1.1\r\nX-AB: 1\r\n\r\n"), "X-A", &vl) ==
	    NULL, "a longer name is another header");
	ok(eh_has_token(H("GET / HTTP/1.1\r\nConnection: keep-alive, "
	    "Upgrade\r\n\r\n"), "Connection", "upgrade"), "a token in a list");
	ok(!eh_has_token(H("GET / HTTP/1.1\r\nConnection: closed\r\n\r\n"),
	    "Connection", "close"), "a token is a whole item");

	/* Framing. */
	is_int(framing("GET / HTTP/1.1\r\n\r\n", true, &n), EF_NONE,
	    "a request without a length has no body");
	is_int(framing("POST / HTTP/1.1\r\nContent-Length: 12\r\n\r\n", true,
	    &n), EF_LEN, "Content-Length frames a body");
	is_int(n, 12, "of that many bytes");
	is_int(framing("POST / HTTP/1.1\r\nContent-Length: 5\r\n"
	    "Content-Length: 5\r\n\r\n", true, &n), EF_LEN,
	    "the same length twice is one length");
	is_int(framing("POST / HTTP/1.1\r\nContent-Length: 5\r\n"
	    "Content-Length: 6\r\n\r\n", true, &n), -1,
	    "two lengths that differ are refused");
	is_int(framing("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n",
	    true, &n), -1, "a length list is refused");
	is_int(framing("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
	    true, &n), -1, "a negative length is refused");
	is_int(framing("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	    "\r\n", true, &n), EF_CHUNKED, "chunked");
	is_int(framing("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	    "Content-Length: 3\r\n\r\n", true, &n), -1,
	    "a request with both framings is refused (smuggling)");
	is_int(framing("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
	    true, &n), -1, "a request coding not ending in chunked");
	is_int(framing("HTTP/1.1 200 OK\r\n\r\n", false, &n), EF_CLOSE,
	    "a response without a length ends when the host closes");
	is_int(framing("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false,
	    &n), EF_NONE, "a zero length response has no body");
	is_int(framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
	    "Content-Length: 9\r\n\r\n", false, &n), EF_CHUNKED,
	    "a response with both: chunked wins (RFC 9112 §6.3)");

	/* The head sent on. */
	out = rewrite("GET /x HTTP/1.1\r\nHost: h\r\nauthorization: mine\r\n"
	    "Expect: 100-continue\r\nProxy-Connection: keep-alive\r\n\r\n",
	    "{\"Authorization\": \"Bearer ${secret:gh}\"}", NULL, &rc, why,
	    sizeof(why));
	ok(rc == 0 && out != NULL, "an inject rewrite");
	ok(out != NULL && !strcmp(out, "GET /x HTTP/1.1\r\nHost: h\r\n"
	    "Authorization: Bearer ghp_SECRET123\r\n\r\n"), "the sandbox's "
	    "header of the same name (any case) is replaced, Expect and "
	    "Proxy-Connection dropped");
	free(out);
	out = rewrite("GET /s?a=1&token=mine&%74oken=x&b HTTP/1.1\r\n\r\n",
	    NULL, "{\"token\": \"${secret:q}\", \"k\": \"v 1\"}", &rc, why,
	    sizeof(why));
	ok(out != NULL && !strcmp(out, "GET /s?a=1&b&token=a%20b%26c&k=v%201 "
	    "HTTP/1.1\r\n\r\n"), "query parameters of the names are "
	    "replaced (escaped names too), values percent-encoded");
	free(out);
	out = rewrite("GET / HTTP/1.1\r\n\r\n", "{\"X\": \"${secret:none}\"}",
	    NULL, &rc, why, sizeof(why));
	ok(rc == -1 && strstr(why, "\"none\"") != NULL &&
	    strstr(why, "not set") != NULL, "a secret not set: refused, "
	    "named: %s", why);
	free(out);
	out = rewrite("GET / HTTP/1.1\r\n\r\n", "{\"X\": \"${secret:nl}\"}",
	    NULL, &rc, why, sizeof(why));
	ok(rc == -1 && strstr(why, "line break") != NULL &&
	    strstr(why, "Evil") == NULL, "a secret with a line break cannot "
	    "split a header, and is not shown: %s", why);
	free(out);
	out = rewrite("POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\n", NULL,
	    NULL, &rc, why, sizeof(why));
	ok(out != NULL && !strcmp(out, "POST /p HTTP/1.1\r\nContent-Length: "
	    "3\r\n\r\n"), "an allowed request goes on as it was");
	free(out);

	test_sni();
	store_close();
	snprintf(db, sizeof(db), "rm -rf %s", dir);
	if (system(db) != 0)
		printf("# could not remove %s\n", dir);
	return done_testing();
}

static int
framing(const char *head, bool request, long long *n)
{
	return eh_framing(head, strlen(head), request, n);
}

/* The rewritten head as a string, or NULL (*rc -1, why). */
static char *
rewrite(const char *head, const char *hdrs, const char *query, int *rc,
    char *why, size_t whysz)
{
	struct buf	 b;
	json_t		*h = hdrs ? json_loads(hdrs, 0, NULL) : NULL;
	json_t		*q = query ? json_loads(query, 0, NULL) : NULL;
	char		 method[16], *path = NULL, *s = NULL;

	why[0] = '\0';
	buf_init(&b, 1 << 20);
	*rc = eh_request_line(head, strlen(head), method, sizeof(method),
	    &path);
	if (*rc == 0)
		*rc = eh_rewrite(&b, head, strlen(head), method, path, h, q,
		    why, whysz);
	if (*rc == 0)
		s = strndup(b.data, b.len);
	free(path);
	buf_free(&b);
	json_decref(h);
	json_decref(q);
	return s;
}

/* The ClientHellos of OpenSSL itself, whole and cut. */
static void
test_sni(void)
{
	unsigned char	 b[16384], x[16384];
	char		 name[256];
	size_t		 n;

	n = hello("api.example.com", b, sizeof(b));
	ok(n > 100, "a ClientHello made by OpenSSL (%zu bytes)", n);
	is_int(eg_sni(b, n, name, sizeof(name)), 1, "it names a host");
	is_str(name, "api.example.com", "… the one asked for");
	is_int(eg_sni(b, n / 2, name, sizeof(name)), -2,
	    "half of it: more bytes are needed");
	is_int(eg_sni(b, 3, name, sizeof(name)), -2, "three bytes: more");
	is_int(eg_sni(b, n, name, 8), -1, "a name longer than the room");
	n = hello(NULL, b, sizeof(b));
	is_int(eg_sni(b, n, name, sizeof(name)), 0,
	    "a ClientHello without a name");
	is_int(eg_sni((const unsigned char *)"GET / HTTP/1.1\r\n", 16, name,
	    sizeof(name)), -1, "HTTP through a tunnel is not TLS");
	n = hello("a.example", b, sizeof(b));
	memcpy(x, b, n);
	x[8] = 0xff;	/* the handshake's length, past the record's */
	is_int(eg_sni(x, n, name, sizeof(name)), -1, "a length that lies");
}

/* A ClientHello for host (NULL: no server name), as OpenSSL sends it. */
static size_t
hello(const char *host, unsigned char *out, size_t outsz)
{
	SSL_CTX	*ctx = SSL_CTX_new(TLS_client_method());
	SSL	*ssl = SSL_new(ctx);
	BIO	*rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	int	 n;

	SSL_set_bio(ssl, rb, wb);
	if (host != NULL)
		SSL_set_tlsext_host_name(ssl, host);
	(void)SSL_connect(ssl);
	n = BIO_read(wb, out, (int)outsz);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return n > 0 ? (size_t)n : 0;
}
