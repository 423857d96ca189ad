/* SPDX-License-Identifier: MIT */
/* test_egress_ca.c: each sandbox's own CA and its leaves (egress_ca.c). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "egress.h"
#include "tap.h"

#define BUNDLE	"/etc/ssl/certs/ca-certificates.crt"

struct srv {
	SSL_CTX	*ctx;
	int	 fd;
	int	 ok;
};

static void	 test_files(void);
static void	 test_leaf(void);
static void	 test_ip(void);
static void	 test_cache(void);
static void	 test_bad_hosts(void);
static void	 test_handshake(void);
static void	 test_forget(void);
static void	 test_lru(void);
static void	 test_threads(void);
static void	*hammer(void *);
static char	*slurp(const char *, size_t *);
static X509	*ca_of(const char *);
static X509	*leaf_of(SSL_CTX *);
static int	 verify(X509 *, X509 *, const char *);
static int	 handshake(SSL_CTX *, X509 *, const char *, int, char *,
		    size_t);
static void	*serve(void *);
static void	 rm_dir(const char *);

static char	 dir_a[64], dir_b[64];

int
main(void)
{
	/* As in pincerd: a peer gone mid-handshake is an error, not a
	 * signal. */
	signal(SIGPIPE, SIG_IGN);
	snprintf(dir_a, sizeof(dir_a), "/tmp/test_egress_ca.XXXXXX");
	snprintf(dir_b, sizeof(dir_b), "/tmp/test_egress_ca.XXXXXX");
	if (mkdtemp(dir_a) == NULL || mkdtemp(dir_b) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_files();
	test_leaf();
	test_ip();
	test_cache();
	test_bad_hosts();
	test_handshake();
	test_lru();
	test_threads();
	test_forget();
	egress_ca_shutdown();
	rm_dir(dir_a);
	rm_dir(dir_b);
	return done_testing();
}

static void
test_files(void)
{
	char		 err[256], path[128], *bundle, *pem, *sys;
	size_t		 blen, plen, slen;
	struct stat	 st;
	X509		*ca;

	ok(egress_ca_issue("a", dir_a, err, sizeof(err)) == 0,
	    "a CA is issued for a");
	ok(egress_ca_issue("b", dir_b, err, sizeof(err)) == 0,
	    "… and one for b");
	snprintf(path, sizeof(path), "%s/egress-ca.pem", dir_a);
	ok(stat(path, &st) == 0 && (st.st_mode & 07777) == 0644,
	    "egress-ca.pem exists, mode 0644");
	snprintf(path, sizeof(path), "%s/ca-certificates.crt", dir_a);
	ok(stat(path, &st) == 0 && (st.st_mode & 07777) == 0644,
	    "ca-certificates.crt exists, mode 0644");
	ca = ca_of(dir_a);
	ok(ca != NULL && X509_check_ca(ca) == 1, "egress-ca.pem is a CA");
	if (ca != NULL) {
		char	 cn[128] = "";

		X509_NAME_get_text_by_NID(X509_get_subject_name(ca),
		    NID_commonName, cn, sizeof(cn));
		is_str(cn, "pincer egress CA for sandbox a", "… its CN");
		ok(X509_cmp_time(X509_get0_notAfter(ca), NULL) > 0 &&
		    X509_cmp_timeframe(NULL, X509_get0_notBefore(ca),
		    X509_get0_notAfter(ca)) == 0, "… valid now");
		X509_free(ca);
	}
	snprintf(path, sizeof(path), "%s/egress-ca.pem", dir_a);
	pem = slurp(path, &plen);
	snprintf(path, sizeof(path), "%s/ca-certificates.crt", dir_a);
	bundle = slurp(path, &blen);
	sys = slurp(BUNDLE, &slen);
	ok(pem != NULL && bundle != NULL && blen > plen &&
	    !memcmp(bundle + blen - plen, pem, plen),
	    "ca-certificates.crt ends with the CA");
	ok(sys != NULL && bundle != NULL && blen >= slen + plen &&
	    !memcmp(bundle, sys, slen), "… and starts with the system bundle");
	ok(pem != NULL && strstr(pem, "PRIVATE") == NULL &&
	    bundle != NULL && strstr(bundle, "PRIVATE") == NULL,
	    "no private key in either file");
	free(pem);
	free(bundle);
	free(sys);
}

static void
test_leaf(void)
{
	char		 err[256];
	SSL_CTX		*ctx;
	X509		*ca_a = ca_of(dir_a), *ca_b = ca_of(dir_b), *leaf;
	STACK_OF(X509)	*chain = NULL;

	ctx = egress_ca_server_ctx("a", "Example.COM.", err, sizeof(err));
	ok(ctx != NULL, "a server ctx for example.com");
	if (ctx == NULL || ca_a == NULL || ca_b == NULL) {
		printf("# %s\n", err);
		goto done;
	}
	leaf = leaf_of(ctx);
	ok(verify(leaf, ca_a, "example.com") == 1,
	    "its leaf verifies with a's CA (sslserver, host checked)");
	ok(verify(leaf, ca_b, "example.com") == 0,
	    "… and not with b's CA");
	ok(verify(leaf, ca_a, "other.com") == 0, "… nor for another host");
	ok(X509_check_ca(leaf) == 0, "the leaf is no CA");
	ok((X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) &&
	    (X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE) &&
	    (X509_get_extended_key_usage(leaf) & XKU_SSL_SERVER),
	    "… digitalSignature, serverAuth");
	ok(X509_get0_authority_key_id(leaf) != NULL &&
	    !ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(leaf),
	    X509_get0_subject_key_id(ca_a)), "… its AKI is the CA's SKI");
	ok(X509_cmp_time(X509_get0_notAfter(leaf),
	    &(time_t){ time(NULL) + 8 * 86400 }) < 0 &&
	    ASN1_TIME_compare(X509_get0_notAfter(leaf),
	    X509_get0_notAfter(ca_a)) < 0, "… expires in under 8 days, "
	    "before the CA");
	SSL_CTX_get0_chain_certs(ctx, &chain);
	ok(chain != NULL && sk_X509_num(chain) == 1 &&
	    !X509_cmp(sk_X509_value(chain, 0), ca_a), "the chain holds the CA");
	SSL_CTX_free(ctx);
done:
	X509_free(ca_a);
	X509_free(ca_b);
}

static void
test_ip(void)
{
	char	 err[256];
	SSL_CTX	*ctx;
	X509	*ca = ca_of(dir_a), *leaf;

	ctx = egress_ca_server_ctx("a", "127.0.0.1", err, sizeof(err));
	ok(ctx != NULL, "a server ctx for 127.0.0.1");
	if (ctx != NULL && ca != NULL) {
		leaf = leaf_of(ctx);
		ok(X509_check_ip_asc(leaf, "127.0.0.1", 0) == 1,
		    "… with an IP SAN");
		ok(X509_check_host(leaf, "127.0.0.1", 0,
		    X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL) != 1,
		    "… not a DNS one");
		ok(verify(leaf, ca, NULL) == 1, "… that verifies");
		SSL_CTX_free(ctx);
	}
	ctx = egress_ca_server_ctx("a", "[::1]", err, sizeof(err));
	ok(ctx != NULL && X509_check_ip_asc(leaf_of(ctx), "::1", 0) == 1,
	    "[::1] gets an IPv6 SAN");
	SSL_CTX_free(ctx);
	X509_free(ca);
}

static void
test_cache(void)
{
	char	 err[256];
	SSL_CTX	*c1, *c2;

	c1 = egress_ca_server_ctx("a", "example.com", err, sizeof(err));
	c2 = egress_ca_server_ctx("a", "EXAMPLE.com", err, sizeof(err));
	ok(c1 != NULL && c1 == c2 && leaf_of(c1) == leaf_of(c2),
	    "a second call gets the cached leaf");
	SSL_CTX_free(c2);
	c2 = egress_ca_server_ctx("b", "example.com", err, sizeof(err));
	ok(c2 != NULL && c2 != c1 && X509_cmp(leaf_of(c1), leaf_of(c2)),
	    "another sandbox gets its own leaf for the same host");
	SSL_CTX_free(c1);
	SSL_CTX_free(c2);
}

static void
test_bad_hosts(void)
{
	static const char *const bad[] = { "", "*.example.com",
	    "a.com,DNS:b.com", "a..b", ".a", "a b", "a/b", "[1.2.3.4]",
	    "é.com", NULL };
	char	 err[256];
	SSL_CTX	*ctx;
	int	 i, refused = 0;

	for (i = 0; bad[i] != NULL; i++) {
		if ((ctx = egress_ca_server_ctx("a", bad[i], err,
		    sizeof(err))) == NULL)
			refused++;
		else
			printf("# minted for \"%s\"\n", bad[i]);
		SSL_CTX_free(ctx);
	}
	is_int(refused, i, "no leaf for a wildcard, a list, or a bad name");
	ctx = egress_ca_server_ctx("nobody", "example.com", err, sizeof(err));
	ok(ctx == NULL && strstr(err, "nobody") != NULL,
	    "no leaf for a sandbox without a CA: %s", err);
}

/* A real handshake over a socketpair, the client in this thread. */
static void
test_handshake(void)
{
	char	 err[256], alpn[32];
	SSL_CTX	*ctx;
	X509	*ca_a = ca_of(dir_a), *ca_b = ca_of(dir_b);

	ctx = egress_ca_server_ctx("a", "api.example.com", err, sizeof(err));
	if (ctx == NULL || ca_a == NULL || ca_b == NULL) {
		ok(0, "a ctx for the handshake: %s", err);
		goto done;
	}
	ok(handshake(ctx, ca_a, "api.example.com", 0, alpn,
	    sizeof(alpn)) == 1, "a client trusting a's CA: handshake ok");
	is_str(alpn, "http/1.1", "… ALPN http/1.1 of h2 and http/1.1");
	ok(handshake(ctx, ca_b, "api.example.com", 0, alpn,
	    sizeof(alpn)) == 0, "a client trusting b's CA: refused");
	ok(handshake(ctx, ca_a, "www.example.com", 0, alpn,
	    sizeof(alpn)) == 0, "a client asking another host: refused");
	ok(handshake(ctx, ca_a, "api.example.com", TLS1_1_VERSION, alpn,
	    sizeof(alpn)) == 0, "TLS 1.1 only: refused");
	SSL_CTX_free(ctx);
done:
	X509_free(ca_a);
	X509_free(ca_b);
}

static void
test_lru(void)
{
	char	 err[256], host[64];
	SSL_CTX	*ctx, *first;
	int	 i, fails = 0;

	first = egress_ca_server_ctx("b", "h0.example", err, sizeof(err));
	for (i = 1; i < 300; i++) {
		snprintf(host, sizeof(host), "h%d.example", i);
		if ((ctx = egress_ca_server_ctx("b", host, err,
		    sizeof(err))) == NULL)
			fails++;
		SSL_CTX_free(ctx);
		/* h0 stays recently used: the LRU keeps it. */
		if ((ctx = egress_ca_server_ctx("b", "h0.example", err,
		    sizeof(err))) != first)
			fails++;
		SSL_CTX_free(ctx);
	}
	is_int(fails, 0, "300 hosts minted; h0, used between, kept");
	is_int(egress_ca_cached("b"), EGRESS_CA_MAX_LEAVES,
	    "… at most 256 cached");
	ctx = egress_ca_server_ctx("b", "h1.example", err, sizeof(err));
	ok(ctx != NULL, "an evicted host is minted again");
	SSL_CTX_free(ctx);
	SSL_CTX_free(first);
}

/*
 * Egress threads ask at once, for the same hosts and others, while the
 * sandbox restarts: every answer is a whole context or NULL with a
 * reason (AddressSanitizer checks the rest).
 */
static void
test_threads(void)
{
	pthread_t	 t[8];
	int		 bad[8] = { 0 }, i, sum = 0;
	char		 err[256];

	for (i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, hammer, &bad[i]);
	for (i = 0; i < 5; i++) {
		usleep(2000);
		egress_ca_issue("b", dir_b, err, sizeof(err));
	}
	for (i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		sum += bad[i];
	}
	is_int(sum, 0, "8 threads and 5 restarts: every answer whole");
	ok(egress_ca_cached("b") <= EGRESS_CA_MAX_LEAVES, "… the cache bound");
}

static void *
hammer(void *arg)
{
	int	*bad = arg, i;
	char	 err[256], host[32];
	SSL_CTX	*ctx;

	for (i = 0; i < 300; i++) {
		snprintf(host, sizeof(host), "t%d.example", i % 40);
		err[0] = '\0';
		ctx = egress_ca_server_ctx("b", host, err, sizeof(err));
		if (ctx == NULL ? err[0] == '\0' :
		    X509_check_host(leaf_of(ctx), host, 0, 0, NULL) != 1)
			(*bad)++;
		SSL_CTX_free(ctx);
	}
	return NULL;
}

static void
test_forget(void)
{
	char	 err[256];
	SSL_CTX	*held, *ctx;
	X509	*old, *new;

	held = egress_ca_server_ctx("a", "example.com", err, sizeof(err));
	old = ca_of(dir_a);
	egress_ca_forget("a");
	err[0] = '\0';
	ctx = egress_ca_server_ctx("a", "example.com", err, sizeof(err));
	ok(ctx == NULL && err[0] != '\0',
	    "after forget: no ctx, and why: %s", err);
	ok(held != NULL && leaf_of(held) != NULL,
	    "… a ctx held from before still works");
	SSL_CTX_free(held);
	is_int(egress_ca_cached("a"), 0, "… nothing cached");
	ok(egress_ca_issue("a", dir_a, err, sizeof(err)) == 0,
	    "a is issued again");
	new = ca_of(dir_a);
	ok(old != NULL && new != NULL && X509_cmp(old, new) != 0 &&
	    X509_get0_pubkey(new) != NULL &&
	    EVP_PKEY_eq(X509_get0_pubkey(old), X509_get0_pubkey(new)) != 1,
	    "… a different CA, with a different key");
	ctx = egress_ca_server_ctx("a", "example.com", err, sizeof(err));
	ok(ctx != NULL && verify(leaf_of(ctx), new, "example.com") == 1 &&
	    verify(leaf_of(ctx), old, "example.com") == 0,
	    "… its leaves verify with the new CA, not the old");
	SSL_CTX_free(ctx);
	X509_free(old);
	X509_free(new);
	ok(egress_ca_issue("c", "/nonexistent/dir", err, sizeof(err)) == -1 &&
	    strstr(err, "/nonexistent/dir") != NULL,
	    "an unwritable folder fails the issue: %s", err);
	ok(egress_ca_server_ctx("c", "example.com", err, sizeof(err)) == NULL,
	    "… and leaves no CA");
}

static char *
slurp(const char *path, size_t *len)
{
	FILE	*f;
	char	*buf;
	long	 n;

	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0 ||
	    (buf = malloc((size_t)n + 1)) == NULL) {
		fclose(f);
		return NULL;
	}
	*len = fread(buf, 1, (size_t)n, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

/* dir's egress-ca.pem; caller frees. */
static X509 *
ca_of(const char *dir)
{
	char	 path[128];
	FILE	*f;
	X509	*x;

	snprintf(path, sizeof(path), "%s/egress-ca.pem", dir);
	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return x;
}

static X509 *
leaf_of(SSL_CTX *ctx)
{
	return ctx != NULL ? SSL_CTX_get0_certificate(ctx) : NULL;
}

/*
 * leaf against a store of ca alone, as a TLS client would check it, in
 * OpenSSL's strict mode (Python 3.13's default: RFC 5280 to the letter).
 */
static int
verify(X509 *leaf, X509 *ca, const char *host)
{
	X509_STORE	*st = X509_STORE_new();
	X509_STORE_CTX	*c = X509_STORE_CTX_new();
	int		 rc = -1;

	if (st == NULL || c == NULL || X509_STORE_add_cert(st, ca) != 1 ||
	    X509_STORE_set_flags(st, X509_V_FLAG_X509_STRICT) != 1 ||
	    X509_STORE_CTX_init(c, st, leaf, NULL) != 1 ||
	    X509_STORE_CTX_set_purpose(c, X509_PURPOSE_SSL_SERVER) != 1)
		goto done;
	rc = X509_verify_cert(c) == 1;
	if (rc == 1 && host != NULL)
		rc = X509_check_host(leaf, host, 0, 0, NULL) == 1;
done:
	X509_STORE_CTX_free(c);
	X509_STORE_free(st);
	ERR_clear_error();
	return rc;
}

/* 1 when a client trusting ca alone, asking for host, gets through. */
static int
handshake(SSL_CTX *sctx, X509 *ca, const char *host, int maxv, char *alpn,
    size_t alpnsz)
{
	static const unsigned char	 protos[] = "\x02h2\x08http/1.1";
	SSL_CTX				*cctx;
	SSL				*ssl = NULL;
	struct srv			 srv = { .ctx = sctx };
	pthread_t			 t;
	const unsigned char		*p;
	unsigned int			 plen = 0;
	int				 sv[2], rc = -1;

	alpn[0] = '\0';
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		return -1;
	srv.fd = sv[1];
	if ((cctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), ca) != 1 ||
	    (maxv != 0 && (SSL_CTX_set_max_proto_version(cctx, maxv) != 1 ||
	    SSL_CTX_set_cipher_list(cctx, "DEFAULT:@SECLEVEL=0") != 1)) ||
	    SSL_CTX_set_alpn_protos(cctx, protos, sizeof(protos) - 1) != 0 ||
	    (ssl = SSL_new(cctx)) == NULL ||
	    pthread_create(&t, NULL, serve, &srv) != 0)
		goto done;
	SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
	SSL_set_tlsext_host_name(ssl, host);
	SSL_set1_host(ssl, host);
	SSL_set_fd(ssl, sv[0]);
	rc = SSL_connect(ssl) == 1;
	SSL_get0_alpn_selected(ssl, &p, &plen);
	if (plen > 0)
		snprintf(alpn, alpnsz, "%.*s", (int)plen, p);
	if (rc == 1)
		SSL_shutdown(ssl);
	shutdown(sv[0], SHUT_RDWR);
	pthread_join(t, NULL);
	if (rc == 1 && srv.ok != 1)
		rc = 0;
done:
	SSL_free(ssl);
	SSL_CTX_free(cctx);
	close(sv[0]);
	close(sv[1]);
	ERR_clear_error();
	return rc;
}

static void *
serve(void *arg)
{
	struct srv	*s = arg;
	SSL		*ssl;

	if ((ssl = SSL_new(s->ctx)) == NULL)
		return NULL;
	SSL_set_fd(ssl, s->fd);
	s->ok = SSL_accept(ssl) == 1;
	SSL_free(ssl);
	ERR_clear_error();
	return NULL;
}

static void
rm_dir(const char *dir)
{
	static const char *const files[] = { "egress-ca.pem",
	    "ca-certificates.crt", NULL };
	char	 path[128];
	int	 i;

	for (i = 0; files[i] != NULL; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
}
