/* SPDX-License-Identifier: MIT */
/*
 * egress_ca.c: each running sandbox's own certificate authority, which
 * signs the leaf certificates pincerd presents when it intercepts the
 * sandbox's TLS (hosts with an inject rule, egress_tls.c). A CA is made
 * when its sandbox starts and forgotten when it stops: its private key
 * lives in this file's memory only (never on disk, never in the sandbox,
 * never shared by two sandboxes), so a sandbox can trust it without
 * anything else trusting it. The sandbox gets the certificate only:
 * run/egress-ca.pem, and run/ca-certificates.crt (the system bundle with
 * the CA appended), which pincer-sandbox mounts over the sandbox's
 * /etc/ssl/certs/ca-certificates.crt.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pincer.h"
#include "egress.h"

#define SYSTEM_BUNDLE	"/etc/ssl/certs/ca-certificates.crt"
/*
 * A run is short and re-issues its CA at each start; 30 days bound what
 * a CA certificate copied out of a sandbox is worth. Leaves live a week
 * (well under Chromium's 398-day limit), never past their CA, and are
 * minted again when less than a day is left.
 */
#define CA_DAYS		30
#define LEAF_DAYS	7
#define LEAF_RENEW_S	(24 * 3600)
#define HOST_MAX	253		/* a DNS name's longest text */
#define CN_MAX		64		/* X.520 ub-common-name */

struct leaf {
	char		 host[HOST_MAX + 1];	/* normalised; "" when free */
	SSL_CTX		*ctx;		/* one reference is ours */
	time_t		 expires;
	uint64_t	 used;		/* tick of the last use, for LRU */
};

struct ca {
	char		 box[SBX_NAME_MAX + 1];
	uint64_t	 gen;		/* tells a CA from its successor */
	EVP_PKEY	*key;		/* owned; in this memory only */
	EVP_PKEY	*leaf_key;	/* owned; every leaf shares it */
	X509		*cert;		/* owned */
	time_t		 expires;
	struct leaf	 leaves[EGRESS_CA_MAX_LEAVES];
	struct ca	*next;
};

/* What minting a leaf needs, held by reference outside the lock. */
struct mint {
	X509		*ca_cert;
	EVP_PKEY	*ca_key, *leaf_key;
	time_t		 ca_expires;
	uint64_t	 gen;
};

static struct ca *ca_new(const char *, char *, size_t);
static void	 ca_free(struct ca *);
static struct ca *find(const char *);
static struct ca *unlink_ca(const char *);
static struct leaf *leaf_find(struct ca *, const char *);
static SSL_CTX	*leaf_put(struct ca *, const char *, SSL_CTX *, time_t);
static SSL_CTX	*mint(const struct mint *, const char *, bool, time_t *,
		    char *, size_t);
static X509	*leaf_cert(const struct mint *, const char *, bool, time_t);
static int	 cert_base(X509 *, const char *, time_t);
static int	 add_ext(X509 *, X509 *, int, const char *);
static int	 add_san(X509 *, const char *, bool);
static int	 alpn_select(SSL *, const unsigned char **, unsigned char *,
		    const unsigned char *, unsigned int, void *);
static int	 host_norm(const char *, char *, size_t, bool *);
static int	 write_files(const char *, X509 *, char *, size_t);
static int	 put_file(const char *, const char *, const char *,
		    const char *, size_t, char *, size_t);
static int	 copy_file(int, const char *);
static int	 write_all(int, const void *, size_t);
static void	 ssl_err(char *, size_t, const char *);

static pthread_mutex_t	 lock = PTHREAD_MUTEX_INITIALIZER;
static struct ca	*cas;		/* lock */
static uint64_t		 gens, ticks;	/* lock */

int
egress_ca_issue(const char *box, const char *rundir, char *err, size_t errsz)
{
	struct ca	*ca;

	/* The old CA goes first: its files are about to be replaced. */
	egress_ca_forget(box);
	if (strlen(box) > SBX_NAME_MAX) {
		snprintf(err, errsz, "egress CA: sandbox name too long");
		return -1;
	}
	if ((ca = ca_new(box, err, errsz)) == NULL)
		return -1;
	if (write_files(rundir, ca->cert, err, errsz) == -1) {
		ca_free(ca);
		return -1;
	}
	pthread_mutex_lock(&lock);
	ca_free(unlink_ca(box));	/* an issue of the same box meanwhile */
	ca->gen = ++gens;
	ca->next = cas;
	cas = ca;
	pthread_mutex_unlock(&lock);
	return 0;
}

void
egress_ca_forget(const char *box)
{
	struct ca	*ca;

	pthread_mutex_lock(&lock);
	ca = unlink_ca(box);
	pthread_mutex_unlock(&lock);
	ca_free(ca);
}

/*
 * A cached leaf costs a lookup; a new one a signature, made outside the
 * lock with references to the CA's key and certificate, then kept unless
 * the CA was replaced or forgotten meanwhile.
 */
SSL_CTX *
egress_ca_server_ctx(const char *box, const char *host, char *err,
    size_t errsz)
{
	struct ca	*ca;
	struct leaf	*l;
	struct mint	 m;
	SSL_CTX		*ctx = NULL;
	char		 name[HOST_MAX + 1];
	bool		 ip;
	time_t		 expires;

	if (host_norm(host, name, sizeof(name), &ip) == -1) {
		snprintf(err, errsz, "egress CA: not a host name or address");
		return NULL;
	}
	pthread_mutex_lock(&lock);
	if ((ca = find(box)) == NULL) {
		pthread_mutex_unlock(&lock);
		snprintf(err, errsz, "egress CA: sandbox %s has none (it is "
		    "not running)", box);
		return NULL;
	}
	if ((l = leaf_find(ca, name)) != NULL) {
		l->used = ++ticks;
		ctx = l->ctx;
		SSL_CTX_up_ref(ctx);
		pthread_mutex_unlock(&lock);
		return ctx;
	}
	m = (struct mint){ .ca_cert = ca->cert, .ca_key = ca->key,
	    .leaf_key = ca->leaf_key, .ca_expires = ca->expires,
	    .gen = ca->gen };
	X509_up_ref(m.ca_cert);
	EVP_PKEY_up_ref(m.ca_key);
	EVP_PKEY_up_ref(m.leaf_key);
	pthread_mutex_unlock(&lock);

	ctx = mint(&m, name, ip, &expires, err, errsz);
	X509_free(m.ca_cert);
	EVP_PKEY_free(m.ca_key);
	EVP_PKEY_free(m.leaf_key);
	if (ctx == NULL)
		return NULL;
	pthread_mutex_lock(&lock);
	if ((ca = find(box)) == NULL || ca->gen != m.gen) {
		pthread_mutex_unlock(&lock);
		SSL_CTX_free(ctx);
		snprintf(err, errsz, "egress CA: sandbox %s stopped meanwhile",
		    box);
		return NULL;
	}
	ctx = leaf_put(ca, name, ctx, expires);
	SSL_CTX_up_ref(ctx);
	pthread_mutex_unlock(&lock);
	return ctx;
}

void
egress_ca_shutdown(void)
{
	struct ca	*ca;

	pthread_mutex_lock(&lock);
	while ((ca = cas) != NULL) {
		cas = ca->next;
		ca_free(ca);
	}
	pthread_mutex_unlock(&lock);
}

size_t
egress_ca_cached(const char *box)
{
	struct ca	*ca;
	size_t		 i, n = 0;

	pthread_mutex_lock(&lock);
	if ((ca = find(box)) != NULL)
		for (i = 0; i < EGRESS_CA_MAX_LEAVES; i++)
			if (ca->leaves[i].ctx != NULL)
				n++;
	pthread_mutex_unlock(&lock);
	return n;
}

/*
 * EC P-256 keys: fast to make and to sign with, accepted everywhere.
 * The CA: basicConstraints CA:TRUE, pathlen:0 (it signs leaves only),
 * keyUsage keyCertSign and cRLSign (RFC 5280 §4.2.1.3, §4.2.1.9).
 */
static struct ca *
ca_new(const char *box, char *err, size_t errsz)
{
	struct ca	*ca;
	char		 cn[CN_MAX + 1];
	time_t		 now = time(NULL);

	if ((ca = calloc(1, sizeof(*ca))) == NULL) {
		snprintf(err, errsz, "egress CA: out of memory");
		return NULL;
	}
	snprintf(ca->box, sizeof(ca->box), "%s", box);
	/* Cut to ub-common-name: OpenSSL refuses a longer CN. */
	snprintf(cn, sizeof(cn), "pincer egress CA for sandbox %s", box);
	ca->expires = now + (time_t)CA_DAYS * 86400;
	if ((ca->key = EVP_EC_gen("P-256")) == NULL ||
	    (ca->leaf_key = EVP_EC_gen("P-256")) == NULL ||
	    (ca->cert = X509_new()) == NULL ||
	    cert_base(ca->cert, cn, ca->expires) == -1 ||
	    X509_set_issuer_name(ca->cert,
	    X509_get_subject_name(ca->cert)) != 1 ||
	    X509_set_pubkey(ca->cert, ca->key) != 1 ||
	    add_ext(ca->cert, ca->cert, NID_basic_constraints,
	    "critical,CA:TRUE,pathlen:0") == -1 ||
	    add_ext(ca->cert, ca->cert, NID_key_usage,
	    "critical,keyCertSign,cRLSign") == -1 ||
	    add_ext(ca->cert, ca->cert, NID_subject_key_identifier,
	    "hash") == -1 ||
	    X509_sign(ca->cert, ca->key, EVP_sha256()) <= 0) {
		ssl_err(err, errsz, "egress CA: cannot make the CA");
		ca_free(ca);
		return NULL;
	}
	return ca;
}

static void
ca_free(struct ca *ca)
{
	size_t	 i;

	if (ca == NULL)
		return;
	for (i = 0; i < EGRESS_CA_MAX_LEAVES; i++)
		SSL_CTX_free(ca->leaves[i].ctx);
	X509_free(ca->cert);
	/* EVP_PKEY_free clears the private scalar before freeing it. */
	EVP_PKEY_free(ca->key);
	EVP_PKEY_free(ca->leaf_key);
	free(ca);
}

/* Lock held. */
static struct ca *
find(const char *box)
{
	struct ca	*ca;

	for (ca = cas; ca != NULL; ca = ca->next)
		if (!strcmp(ca->box, box))
			return ca;
	return NULL;
}

/* Lock held: box's CA out of the list, for the caller to free. */
static struct ca *
unlink_ca(const char *box)
{
	struct ca	**cp, *ca;

	for (cp = &cas; (ca = *cp) != NULL; cp = &ca->next)
		if (!strcmp(ca->box, box)) {
			*cp = ca->next;
			return ca;
		}
	return NULL;
}

/* Lock held: host's leaf, unless it is close to expiring. */
static struct leaf *
leaf_find(struct ca *ca, const char *host)
{
	size_t	 i;

	for (i = 0; i < EGRESS_CA_MAX_LEAVES; i++)
		if (ca->leaves[i].ctx != NULL &&
		    !strcmp(ca->leaves[i].host, host))
			break;
	if (i == EGRESS_CA_MAX_LEAVES ||
	    ca->leaves[i].expires - time(NULL) < LEAF_RENEW_S)
		return NULL;
	return &ca->leaves[i];
}

/*
 * Lock held: keep ctx (taking the caller's reference) for host, in its
 * old slot, a free one, or the least recently used one. If another
 * thread kept a fresh one meanwhile, that one is used and ctx freed.
 * Returns the kept context (the cache's reference: the caller adds its
 * own).
 */
static SSL_CTX *
leaf_put(struct ca *ca, const char *host, SSL_CTX *ctx, time_t expires)
{
	struct leaf	*l, *slot = NULL;
	size_t		 i;

	if ((l = leaf_find(ca, host)) != NULL) {
		SSL_CTX_free(ctx);
		l->used = ++ticks;
		return l->ctx;
	}
	for (i = 0; i < EGRESS_CA_MAX_LEAVES; i++) {
		l = &ca->leaves[i];
		if (l->ctx != NULL && !strcmp(l->host, host)) {
			slot = l;	/* an expiring one: replaced */
			break;
		}
		if (slot == NULL || (slot->ctx != NULL &&
		    (l->ctx == NULL || l->used < slot->used)))
			slot = l;
	}
	SSL_CTX_free(slot->ctx);
	snprintf(slot->host, sizeof(slot->host), "%s", host);
	slot->ctx = ctx;
	slot->expires = expires;
	slot->used = ++ticks;
	return ctx;
}

/*
 * The server side of one intercepted host: the leaf, then the CA (the
 * chain a client needs), TLS 1.2 or later, and ALPN limited to
 * http/1.1, which is all egress_tls.c speaks. No server session cache:
 * 256 contexts per sandbox would each keep one; tickets still resume.
 */
static SSL_CTX *
mint(const struct mint *m, const char *host, bool ip, time_t *expires,
    char *err, size_t errsz)
{
	SSL_CTX		*ctx = NULL;
	X509		*leaf;

	*expires = time(NULL) + (time_t)LEAF_DAYS * 86400;
	if (*expires > m->ca_expires)
		*expires = m->ca_expires;
	if ((leaf = leaf_cert(m, host, ip, *expires)) == NULL ||
	    (ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_use_certificate(ctx, leaf) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, m->leaf_key) != 1 ||
	    SSL_CTX_add1_chain_cert(ctx, m->ca_cert) != 1 ||
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
 * A leaf as the CA/Browser Forum baseline wants one: the name in
 * subjectAltName (Chromium reads nothing else), CA:FALSE,
 * digitalSignature (ECDHE signing) and serverAuth only.
 */
static X509 *
leaf_cert(const struct mint *m, const char *host, bool ip, time_t expires)
{
	X509	*x;
	char	 cn[CN_MAX + 1];

	snprintf(cn, sizeof(cn), "%.*s", CN_MAX, host);
	if ((x = X509_new()) == NULL ||
	    cert_base(x, cn, expires) == -1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(m->ca_cert)) != 1 ||
	    X509_set_pubkey(x, m->leaf_key) != 1 ||
	    add_san(x, host, ip) == -1 ||
	    add_ext(x, m->ca_cert, NID_basic_constraints, "CA:FALSE") == -1 ||
	    add_ext(x, m->ca_cert, NID_key_usage,
	    "critical,digitalSignature") == -1 ||
	    add_ext(x, m->ca_cert, NID_ext_key_usage, "serverAuth") == -1 ||
	    add_ext(x, m->ca_cert, NID_authority_key_identifier,
	    "keyid:always") == -1 ||
	    X509_sign(x, m->ca_key, EVP_sha256()) <= 0) {
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

/*
 * The cache key and the certificate's name: an IP literal (brackets
 * allowed around IPv6) in its canonical text, or a DNS name in lower
 * case without its trailing dot, of letters, digits, '-' and '_' in
 * labels of 1 to 63. Never a wildcard: a leaf names one host.
 */
static int
host_norm(const char *in, char *out, size_t outsz, bool *ip)
{
	unsigned char	 a[16];
	char		 tmp[HOST_MAX + 2];
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
	if (n == 0 || n > HOST_MAX || n >= outsz)
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

static int
write_files(const char *rundir, X509 *cert, char *err, size_t errsz)
{
	BIO	*b;
	char	*pem;
	long	 len;
	int	 rc = -1;

	if ((b = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_X509(b, cert) != 1 ||
	    (len = BIO_get_mem_data(b, &pem)) <= 0) {
		ssl_err(err, errsz, "egress CA: cannot encode the CA");
		goto done;
	}
	if (put_file(rundir, "egress-ca.pem", NULL, pem, (size_t)len, err,
	    errsz) == 0 && put_file(rundir, "ca-certificates.crt",
	    SYSTEM_BUNDLE, pem, (size_t)len, err, errsz) == 0)
		rc = 0;
done:
	BIO_free(b);
	return rc;
}

/*
 * dir/name: prefix's bytes (if that file exists), then data; written
 * beside and renamed, so a sandbox starting never reads half a bundle.
 */
static int
put_file(const char *dir, const char *name, const char *prefix,
    const char *data, size_t len, char *err, size_t errsz)
{
	char	 path[PATH_MAX], tmp[PATH_MAX];
	int	 fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    sizeof(path) || (size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.tmp",
	    dir, name) >= sizeof(tmp)) {
		snprintf(err, errsz, "egress CA: %s: the path is too long",
		    dir);
		return -1;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0644)) == -1)
		goto fail;
	/* Whatever pincerd's umask, every user in the sandbox reads it. */
	if (fchmod(fd, 0644) == -1 ||
	    (prefix != NULL && copy_file(fd, prefix) == -1) ||
	    write_all(fd, data, len) == -1) {
		close(fd);
		goto fail;
	}
	if (close(fd) == -1 || rename(tmp, path) == -1)
		goto fail;
	return 0;
fail:
	snprintf(err, errsz, "egress CA: %s: %s", path, strerror(errno));
	unlink(tmp);
	return -1;
}

/* src's bytes to fd, ending in a newline; a missing src is nothing. */
static int
copy_file(int fd, const char *src)
{
	char	 buf[16384];
	ssize_t	 n;
	int	 in, saved;
	char	 last = '\n';

	if ((in = open(src, O_RDONLY | O_CLOEXEC)) == -1)
		return errno == ENOENT ? 0 : -1;
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		if (write_all(fd, buf, (size_t)n) == -1)
			break;
		last = buf[n - 1];
	}
	saved = errno;
	close(in);
	errno = saved;
	if (n != 0)
		return -1;
	return last == '\n' ? 0 : write_all(fd, "\n", 1);
}

static int
write_all(int fd, const void *p, size_t len)
{
	const char	*c = p;
	ssize_t		 n;

	while (len > 0) {
		if ((n = write(fd, c, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += n;
		len -= (size_t)n;
	}
	return 0;
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
