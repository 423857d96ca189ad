/* SPDX-License-Identifier: MIT */
/*
 * egress_cert.c: the certificates egress_ca.c keeps, built with OpenSSL
 * and holding no state: a sandbox's CA certificate, and for one host a
 * leaf signed by it in a server SSL_CTX. Profiles after RFC 5280 and
 * the CA/Browser Forum baseline, which Chromium, Node, Python, curl and
 * git all accept.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "egress.h"

#define CN_MAX		64		/* X.520 ub-common-name */

static X509	*leaf_cert(const struct eg_signer *, const char *, bool,
		    time_t);
static int	 cert_base(X509 *, const char *, time_t);
static int	 add_ext(X509 *, X509 *, int, const char *);
static int	 add_san(X509 *, const char *, bool);
static int	 alpn_select(SSL *, const unsigned char **, unsigned char *,
		    const unsigned char *, unsigned int, void *);
static void	 ssl_err(char *, size_t, const char *);

/*
 * The CA: basicConstraints CA:TRUE, pathlen:0 (it signs leaves only),
 * keyUsage keyCertSign and cRLSign (RFC 5280 §4.2.1.9, §4.2.1.3), a
 * subjectKeyIdentifier for its leaves' authorityKeyIdentifier.
 */
X509 *
egress_cert_ca(const char *box, EVP_PKEY *key, time_t expires, char *err,
    size_t errsz)
{
	X509	*x;
	char	 cn[CN_MAX + 1];

	/* Cut to ub-common-name: OpenSSL refuses a longer CN. */
	snprintf(cn, sizeof(cn), "pincer egress CA for sandbox %s", box);
	if ((x = X509_new()) == NULL ||
	    cert_base(x, cn, expires) == -1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(x)) != 1 ||
	    X509_set_pubkey(x, key) != 1 ||
	    add_ext(x, x, NID_basic_constraints,
	    "critical,CA:TRUE,pathlen:0") == -1 ||
	    add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") ==
	    -1 || add_ext(x, x, NID_subject_key_identifier, "hash") == -1 ||
	    X509_sign(x, key, EVP_sha256()) <= 0) {
		ssl_err(err, errsz, "egress CA: cannot make the CA");
		X509_free(x);
		return NULL;
	}
	return x;
}

/*
 * The server side of one intercepted host: the leaf, then the CA (the
 * chain a client needs), TLS 1.2 or later, and ALPN limited to
 * http/1.1, which is all egress_tls.c speaks. No server session cache:
 * 256 contexts per sandbox would each keep one; tickets still resume.
 */
SSL_CTX *
egress_cert_server(const struct eg_signer *s, const char *host, bool ip,
    time_t expires, char *err, size_t errsz)
{
	SSL_CTX		*ctx = NULL;
	X509		*leaf;

	if ((leaf = leaf_cert(s, host, ip, expires)) == NULL ||
	    (ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_use_certificate(ctx, leaf) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, s->leaf_key) != 1 ||
	    SSL_CTX_add1_chain_cert(ctx, s->ca) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		ssl_err(err, errsz, "egress CA: cannot make a certificate");
		SSL_CTX_free(ctx);
		X509_free(leaf);
		return NULL;
	}
	X509_free(leaf);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	return ctx;
}

/*
 * The cache key and the certificate's name: an IP literal (brackets
 * allowed around IPv6) in its canonical text, or a DNS name in lower
 * case without its trailing dot, of letters, digits, '-' and '_' in
 * labels of 1 to 63. Never a wildcard: a leaf names one host.
 */
int
egress_cert_host(const char *in, char *out, size_t outsz, bool *ip)
{
	unsigned char	 a[16];
	char		 tmp[EGRESS_HOST_MAX + 2];
	size_t		 n = strlen(in), i, label = 0;

	if (n == 0 || n >= sizeof(tmp))
		return -1;
	if (in[0] == '[' && in[n - 1] == ']') {
		snprintf(tmp, sizeof(tmp), "%.*s", (int)(n - 2), in + 1);
		*ip = inet_pton(AF_INET6, tmp, a) == 1;
		return *ip && inet_ntop(AF_INET6, a, out, outsz) != NULL ?
		    0 : -1;
	}
	if ((*ip = inet_pton(AF_INET, in, a) == 1))
		return inet_ntop(AF_INET, a, out, outsz) != NULL ? 0 : -1;
	if ((*ip = inet_pton(AF_INET6, in, a) == 1))
		return inet_ntop(AF_INET6, a, out, outsz) != NULL ? 0 : -1;
	if (in[n - 1] == '.')
		n--;
	if (n == 0 || n > EGRESS_HOST_MAX || n >= outsz)
		return -1;
	for (i = 0; i < n; i++) {
		out[i] = (char)tolower((unsigned char)in[i]);
		if (out[i] == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if (islower((unsigned char)out[i]) ||
		    isdigit((unsigned char)out[i]) || out[i] == '-' ||
		    out[i] == '_') {
			if (++label > 63)
				return -1;
		} else
			return -1;
	}
	out[n] = '\0';
	return label == 0 ? -1 : 0;
}

/*
 * A leaf as the CA/Browser Forum baseline wants one: the name in
 * subjectAltName (Chromium reads nothing else), CA:FALSE,
 * digitalSignature (ECDHE signing) and serverAuth only.
 */
static X509 *
leaf_cert(const struct eg_signer *s, const char *host, bool ip,
    time_t expires)
{
	X509	*x;
	char	 cn[CN_MAX + 1];

	snprintf(cn, sizeof(cn), "%.*s", CN_MAX, host);
	if ((x = X509_new()) == NULL ||
	    cert_base(x, cn, expires) == -1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(s->ca)) != 1 ||
	    X509_set_pubkey(x, s->leaf_key) != 1 ||
	    add_san(x, host, ip) == -1 ||
	    add_ext(x, s->ca, NID_basic_constraints, "CA:FALSE") == -1 ||
	    add_ext(x, s->ca, NID_key_usage,
	    "critical,digitalSignature") == -1 ||
	    add_ext(x, s->ca, NID_ext_key_usage, "serverAuth") == -1 ||
	    add_ext(x, s->ca, NID_authority_key_identifier,
	    "keyid:always") == -1 ||
	    X509_sign(x, s->ca_key, EVP_sha256()) <= 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/*
 * Version 3, a random positive 128-bit serial (RFC 5280 §4.1.2.2 wants
 * unique ones; the CA/B Forum 64 bits of randomness), valid from an hour
 * ago (a sandbox clock a little behind) to expires, subject O=pincer and
 * CN=cn.
 */
static int
cert_base(X509 *x, const char *cn, time_t expires)
{
	unsigned char	 b[16];
	BIGNUM		*bn = NULL;
	X509_NAME	*n = X509_get_subject_name(x);
	int		 rc = -1;

	if (X509_set_version(x, X509_VERSION_3) != 1 ||
	    RAND_bytes(b, sizeof(b)) != 1)
		return -1;
	b[0] = (b[0] & 0x7f) | 0x40;
	if ((bn = BN_bin2bn(b, sizeof(b), NULL)) == NULL ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), expires) == NULL ||
	    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
	    (const unsigned char *)"pincer", -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0) != 1)
		goto done;
	rc = 0;
done:
	BN_free(bn);
	return rc;
}

/* One extension in openssl's config syntax; value is ours, not a host. */
static int
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX	 v3;
	X509_EXTENSION	*ext;
	int		 rc;

	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value)) == NULL)
		return -1;
	rc = X509_add_ext(x, ext, -1) == 1 ? 0 : -1;
	X509_EXTENSION_free(ext);
	return rc;
}

/*
 * subjectAltName built as a structure, not from config text: a host
 * comes from the sandbox, and "a.com,DNS:b.com" must not become two
 * names.
 */
static int
add_san(X509 *x, const char *host, bool ip)
{
	GENERAL_NAMES		*names;
	GENERAL_NAME		*gn = NULL;
	ASN1_OCTET_STRING	*addr = NULL;
	ASN1_IA5STRING		*dns = NULL;
	int			 rc = -1;

	if ((names = sk_GENERAL_NAME_new_null()) == NULL ||
	    (gn = GENERAL_NAME_new()) == NULL)
		goto done;
	if (ip) {
		if ((addr = a2i_IPADDRESS(host)) == NULL)
			goto done;
		GENERAL_NAME_set0_value(gn, GEN_IPADD, addr);
	} else {
		if ((dns = ASN1_IA5STRING_new()) == NULL ||
		    ASN1_STRING_set(dns, host, -1) != 1) {
			ASN1_IA5STRING_free(dns);
			goto done;
		}
		GENERAL_NAME_set0_value(gn, GEN_DNS, dns);
	}
	if (sk_GENERAL_NAME_push(names, gn) <= 0)
		goto done;
	gn = NULL;
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0,
	    X509V3_ADD_DEFAULT) == 1)
		rc = 0;
done:
	GENERAL_NAME_free(gn);
	GENERAL_NAMES_free(names);
	return rc;
}

/* Only http/1.1; a client offering none of it goes on without ALPN. */
static int
alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char	 h11[] = "\x08http/1.1";
	unsigned char			*sel;

	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto(&sel, outlen, h11, sizeof(h11) - 1, in,
	    inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

/* what, and OpenSSL's first reason; its error queue is left empty. */
static void
ssl_err(char *err, size_t errsz, const char *what)
{
	char		 e[200];
	unsigned long	 code = ERR_get_error();

	if (code == 0) {
		snprintf(err, errsz, "%s", what);
		return;
	}
	ERR_error_string_n(code, e, sizeof(e));
	snprintf(err, errsz, "%s: %s", what, e);
	ERR_clear_error();
}
