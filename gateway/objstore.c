/* SPDX-License-Identifier: MIT */
/*
 * objstore.c: the object store interface the rest of pincerd uses. It checks
 * keys, puts objstore.prefix in front of them, walks list pages, hashes what
 * goes up, and gives the backends one retry policy; the backends
 * (objstore_local.c, objstore_s3.c) only move bytes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "pincer.h"

static int	 put_checked(struct objstore *, const char *, int, long long,
		    const char *, struct os_meta *, char *);
static bool	 full_key(const struct objstore *, const char *, char *,
		    size_t, char *);

static struct objstore	*shared;

struct objstore *
objstore_open(const struct config *c, char *err)
{
	struct objstore	*os;
	int		 rc;

	*err = '\0';
	if (c->os_backend == 2)
		return NULL;
	if ((os = calloc(1, sizeof(*os))) == NULL ||
	    (os->prefix = strdup(c->os_prefix)) == NULL) {
		free(os);
		snprintf(err, OS_ERR, "out of memory");
		return NULL;
	}
	os->max_attempts = c->os_max_attempts;
	os->retry_base_ms = c->os_retry_base_ms;
	os->list_page = (size_t)c->os_list_page;
	os->part_size = (long long)c->os_part_mb << 20;
	rc = c->os_backend == 1 ? objstore_s3_init(os, c, err) :
	    objstore_local_init(os, c, err);
	if (rc != 0) {
		free(os->prefix);
		free(os);
		if (*err == '\0')
			snprintf(err, OS_ERR, "the object store did not open");
		return NULL;
	}
	return os;
}

struct objstore *
objstore_shared(void)
{
	return __atomic_load_n(&shared, __ATOMIC_ACQUIRE);
}

struct objstore *
objstore_shared_set(struct objstore *os)
{
	return __atomic_exchange_n(&shared, os, __ATOMIC_ACQ_REL);
}

void
objstore_close(struct objstore *os)
{
	if (os == NULL)
		return;
	os->ops->free(os);
	free(os->prefix);
	free(os);
}

/*
 * The rules are the strictest of the backends': a key must be a safe
 * relative path on a disk (the local backend is one) and a URL path
 * segment list S3 keeps as given.
 */
bool
objstore_key_valid(const char *key, char *err)
{
	const char	*seg, *end;
	size_t		 n;

	n = strlen(key);
	if (n == 0 || n > OS_KEY_MAX) {
		snprintf(err, OS_ERR, "a key has 1 to %d bytes", OS_KEY_MAX);
		return false;
	}
	for (seg = key;; seg = end + 1) {
		end = strchr(seg, '/');
		n = end != NULL ? (size_t)(end - seg) : strlen(seg);
		if (n == 0 || (n == 1 && seg[0] == '.') ||
		    (n == 2 && seg[0] == '.' && seg[1] == '.')) {
			snprintf(err, OS_ERR, "key \"%.80s\": empty, '.' and "
			    "'..' parts are refused", key);
			return false;
		}
		if (end == NULL)
			break;
	}
	for (; *key != '\0'; key++)
		if ((unsigned char)*key < 0x20 || *key == 0x7f) {
			snprintf(err, OS_ERR, "a key has no control "
			    "character");
			return false;
		}
	return true;
}

static bool
full_key(const struct objstore *os, const char *key, char *out,
    size_t outsz, char *err)
{
	if (!objstore_key_valid(key, err))
		return false;
	if ((size_t)snprintf(out, outsz, "%s%s", os->prefix, key) >= outsz) {
		snprintf(err, OS_ERR, "the key is too long with the prefix");
		return false;
	}
	return true;
}

int
objstore_sha256_fd(int fd, long long size, char out[65])
{
	char		*buf;
	EVP_MD_CTX	*ctx;
	long long	 off = 0;
	ssize_t		 n;
	int		 rc = -1;

	if ((buf = malloc(1 << 17)) == NULL)
		return -1;
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		goto out;
	while (off < size) {
		n = pread(fd, buf, size - off < (1 << 17) ? (size_t)(size -
		    off) : (1 << 17), off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)	/* shorter than size: it changed under us */
			goto out;
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		off += n;
	}
	rc = objstore_sha256_end(ctx, out);
out:
	EVP_MD_CTX_free(ctx);
	free(buf);
	return rc;
}

/* The digest of ctx (SHA-256) as lowercase hex; ctx is not freed. */
int
objstore_sha256_end(void *ctx, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char	 md[32];
	unsigned int	 mdlen = 0;
	int		 i;

	if (!EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen != 32)
		return -1;
	for (i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
	return 0;
}

static int
put_checked(struct objstore *os, const char *key, int fd, long long size,
    const char *sha256, struct os_meta *meta, char *err)
{
	char		 fk[OS_KEY_MAX + 160], sha[65];
	struct os_meta	 m;

	if (!full_key(os, key, fk, sizeof(fk), err))
		return OS_FAIL;
	if (sha256 == NULL) {
		if (objstore_sha256_fd(fd, size, sha) == -1) {
			snprintf(err, OS_ERR, "%s: cannot read what to put: "
			    "%s", key, errno != 0 ? strerror(errno) :
			    "it shrank while read");
			return OS_FAIL;
		}
		sha256 = sha;
	}
	return os->ops->put(os, fk, fd, size, sha256, meta != NULL ? meta :
	    &m, err);
}

int
objstore_put(struct objstore *os, const char *key, int fd,
    struct os_meta *meta, char *err)
{
	struct stat	 st;

	*err = '\0';
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, OS_ERR, "%s: only a regular file can be put",
		    key);
		return OS_FAIL;
	}
	return put_checked(os, key, fd, (long long)st.st_size, NULL, meta,
	    err);
}

int
objstore_put_sha(struct objstore *os, const char *key, int fd,
    const char *sha256, struct os_meta *meta, char *err)
{
	struct stat	 st;

	*err = '\0';
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, OS_ERR, "%s: only a regular file can be put",
		    key);
		return OS_FAIL;
	}
	return put_checked(os, key, fd, (long long)st.st_size, sha256, meta,
	    err);
}

/* Through a memory file so the backends have one path, with pread. */
int
objstore_put_mem(struct objstore *os, const char *key, const void *p,
    size_t n, struct os_meta *meta, char *err)
{
	int		 fd, rc;
	size_t		 off = 0;
	ssize_t		 w;

	*err = '\0';
	if ((fd = memfd_create("pincer-put", MFD_CLOEXEC)) == -1) {
		snprintf(err, OS_ERR, "memfd: %s", strerror(errno));
		return OS_FAIL;
	}
	while (off < n) {
		if ((w = write(fd, (const char *)p + off, n - off)) < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, OS_ERR, "memfd: %s", strerror(errno));
			close(fd);
			return OS_FAIL;
		}
		off += (size_t)w;
	}
	rc = put_checked(os, key, fd, (long long)n, NULL, meta, err);
	close(fd);
	return rc;
}

int
objstore_get(struct objstore *os, const char *key, int fd,
    struct os_meta *meta, char *err)
{
	char		 fk[OS_KEY_MAX + 160];
	struct os_meta	 m;

	*err = '\0';
	if (!full_key(os, key, fk, sizeof(fk), err))
		return OS_FAIL;
	return os->ops->get(os, fk, fd, NULL, meta != NULL ? meta : &m, err);
}

int
objstore_get_mem(struct objstore *os, const char *key, struct buf *mem,
    struct os_meta *meta, char *err)
{
	char		 fk[OS_KEY_MAX + 160];
	struct os_meta	 m;

	*err = '\0';
	if (!full_key(os, key, fk, sizeof(fk), err))
		return OS_FAIL;
	return os->ops->get(os, fk, -1, mem, meta != NULL ? meta : &m, err);
}

int
objstore_head(struct objstore *os, const char *key, struct os_meta *meta,
    char *err)
{
	char		 fk[OS_KEY_MAX + 160];

	*err = '\0';
	memset(meta, 0, sizeof(*meta));
	if (!full_key(os, key, fk, sizeof(fk), err))
		return OS_FAIL;
	return os->ops->head(os, fk, meta, err);
}

int
objstore_delete(struct objstore *os, const char *key, char *err)
{
	char		 fk[OS_KEY_MAX + 160];

	*err = '\0';
	if (!full_key(os, key, fk, sizeof(fk), err))
		return OS_FAIL;
	return os->ops->del(os, fk, err);
}

struct walk {
	size_t		  skip;		/* the prefix's length */
	int		(*each)(const char *, const struct os_meta *, void *);
	void		 *arg;
	int		  stop;
};

static int
walk_one(const char *key, const struct os_meta *m, void *arg)
{
	struct walk	*w = arg;

	if (strlen(key) <= w->skip)	/* the store gave a key outside */
		return 0;
	return w->stop = w->each(key + w->skip, m, w->arg);
}

int
objstore_list(struct objstore *os, const char *prefix,
    int (*each)(const char *, const struct os_meta *, void *), void *arg,
    char *err)
{
	char		 fp[OS_KEY_MAX + 160], after[2048], next[2048];
	struct walk	 w = { strlen(os->prefix), each, arg, 0 };
	int		 rc;

	*err = '\0';
	/* A prefix may end in '/' or be empty, unlike a key. */
	if ((size_t)snprintf(fp, sizeof(fp), "%s%s", os->prefix, prefix) >=
	    sizeof(fp) || strstr(prefix, "..") != NULL || *prefix == '/') {
		snprintf(err, OS_ERR, "prefix \"%.80s\": refused", prefix);
		return OS_FAIL;
	}
	*after = '\0';
	do {
		rc = os->ops->list(os, fp, after, os->list_page, walk_one, &w,
		    next, sizeof(next), err);
		if (rc != OS_OK)
			return rc;
		if (w.stop != 0)
			return w.stop;
		memcpy(after, next, sizeof(after));
	} while (*after != '\0');
	return OS_OK;
}

int
objstore_retry(struct objstore *os, int (*one)(void *, long *, char *),
    void *arg, char *err)
{
	long		 wait, base = os->retry_base_ms, hint;
	int		 rc, i;
	struct timespec	 ts;

	for (i = 1;; i++) {
		hint = -1;
		*err = '\0';
		rc = one(arg, &hint, err);
		if (rc != OS_RETRY || i >= os->max_attempts)
			return rc;
		wait = base << (i - 1 < 10 ? i - 1 : 10);
		wait += wait > 1 ? random() % (wait / 2 + 1) : 0;
		if (hint > wait)
			wait = hint < 60000 ? hint : 60000;
		log_debug("objstore retry", "where=\"%s\" attempt=%d "
		    "wait_ms=%ld why=\"%s\"", os->where, i, wait, err);
		ts.tv_sec = wait / 1000;
		ts.tv_nsec = wait % 1000 * 1000000L;
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
	}
}
