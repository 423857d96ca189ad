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

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

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

struct leaf {
	char		 host[EGRESS_HOST_MAX + 1];	/* normalised */
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
	struct eg_signer s;
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
static int	 write_files(const char *, X509 *, char *, size_t);
static int	 put_file(const char *, const char *, const char *,
		    const char *, size_t, char *, size_t);
static int	 copy_file(int, const char *);
static int	 write_all(int, const void *, size_t);

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
	char		 name[EGRESS_HOST_MAX + 1];
	bool		 ip;
	time_t		 expires;

	if (egress_cert_host(host, name, sizeof(name), &ip) == -1) {
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
	m = (struct mint){ .s = { .ca = ca->cert, .ca_key = ca->key,
	    .leaf_key = ca->leaf_key }, .ca_expires = ca->expires,
	    .gen = ca->gen };
	X509_up_ref(m.s.ca);
	EVP_PKEY_up_ref(m.s.ca_key);
	EVP_PKEY_up_ref(m.s.leaf_key);
	pthread_mutex_unlock(&lock);

	ctx = mint(&m, name, ip, &expires, err, errsz);
	X509_free(m.s.ca);
	EVP_PKEY_free(m.s.ca_key);
	EVP_PKEY_free(m.s.leaf_key);
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

/* EC P-256 keys: fast to make and to sign with, accepted everywhere. */
static struct ca *
ca_new(const char *box, char *err, size_t errsz)
{
	struct ca	*ca;

	if ((ca = calloc(1, sizeof(*ca))) == NULL) {
		snprintf(err, errsz, "egress CA: out of memory");
		return NULL;
	}
	snprintf(ca->box, sizeof(ca->box), "%s", box);
	ca->expires = time(NULL) + (time_t)CA_DAYS * 86400;
	if ((ca->key = EVP_EC_gen("P-256")) == NULL ||
	    (ca->leaf_key = EVP_EC_gen("P-256")) == NULL) {
		snprintf(err, errsz, "egress CA: cannot make a key");
		ERR_clear_error();
		ca_free(ca);
		return NULL;
	}
	if ((ca->cert = egress_cert_ca(box, ca->key, ca->expires, err,
	    errsz)) == NULL) {
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

/* Leaves live a week, never past their CA. */
static SSL_CTX *
mint(const struct mint *m, const char *host, bool ip, time_t *expires,
    char *err, size_t errsz)
{
	*expires = time(NULL) + (time_t)LEAF_DAYS * 86400;
	if (*expires > m->ca_expires)
		*expires = m->ca_expires;
	return egress_cert_server(&m->s, host, ip, *expires, err, errsz);
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
		snprintf(err, errsz, "egress CA: cannot encode the CA");
		ERR_clear_error();
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
