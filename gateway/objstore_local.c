/* SPDX-License-Identifier: MIT */
/*
 * objstore_local.c: the object store as a folder (the embedded default).
 * A key is a path under the folder. A put is written to a temporary file,
 * synced, and renamed into place, so a reader or a crash sees the old object
 * or the new one, never half of one. The content's SHA-256 is kept in an
 * extended attribute when the file system has them.
 *
 * One difference from S3: a key cannot be both an object and a folder
 * ("a" and "a/b"); such a put fails with a clear error. pincer's own keys
 * never do that.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "pincer.h"

#define TMP_DIR		".objstore-tmp"	/* under the root; never listed */
#define SHA_XATTR	"user.pincer.sha256"

struct local {
	char	*root;
	int	 rootfd;
};

struct keys {
	char	**v;
	size_t	  n;
	size_t	  cap;
};

static int	 l_put(struct objstore *, const char *, int, long long,
		    const char *, struct os_meta *, char *);
static int	 l_get(struct objstore *, const char *, int, struct buf *,
		    struct os_meta *, char *);
static int	 l_head(struct objstore *, const char *, struct os_meta *,
		    char *);
static int	 l_list(struct objstore *, const char *, const char *, size_t,
		    int (*)(const char *, const struct os_meta *, void *),
		    void *, char *, size_t, char *);
static int	 l_del(struct objstore *, const char *, char *);
static void	 l_free(struct objstore *);
static int	 mkparents(int, const char *, char *);
static int	 copy_fd(int, int, long long);
static void	 meta_of(int, const struct stat *, struct os_meta *);
static int	 collect(int, const char *, struct keys *);
static int	 keycmp(const void *, const void *);

static const struct objstore_ops local_ops = {
	"local", l_put, l_get, l_head, l_list, l_del, l_free,
};

int
objstore_local_init(struct objstore *os, const struct config *c, char *err)
{
	struct local	*l;
	char		 root[4096];

	if (*c->os_path != '\0')
		snprintf(root, sizeof(root), "%s", c->os_path);
	else
		snprintf(root, sizeof(root), "%s/objstore", c->state_dir);
	if (mkdir(root, 0700) == -1 && errno != EEXIST) {
		snprintf(err, OS_ERR, "objstore.path %.160s: %s", root,
		    strerror(errno));
		return -1;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL ||
	    (l->root = strdup(root)) == NULL) {
		free(l);
		snprintf(err, OS_ERR, "out of memory");
		return -1;
	}
	if ((l->rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) ==
	    -1 || (mkdirat(l->rootfd, TMP_DIR, 0700) == -1 &&
	    errno != EEXIST)) {
		snprintf(err, OS_ERR, "objstore.path %.160s: %s", root,
		    strerror(errno));
		if (l->rootfd != -1)
			close(l->rootfd);
		free(l->root);
		free(l);
		return -1;
	}
	os->ops = &local_ops;
	os->impl = l;
	snprintf(os->where, sizeof(os->where), "local %.240s", root);
	return 0;
}

static void
l_free(struct objstore *os)
{
	struct local	*l = os->impl;

	close(l->rootfd);
	free(l->root);
	free(l);
}

static bool
reserved(const char *key, char *err)
{
	if (strncmp(key, TMP_DIR, sizeof(TMP_DIR) - 1) == 0 &&
	    (key[sizeof(TMP_DIR) - 1] == '/' ||
	    key[sizeof(TMP_DIR) - 1] == '\0')) {
		snprintf(err, OS_ERR, "the key " TMP_DIR " is the local "
		    "backend's own");
		return true;
	}
	return false;
}

/* The folders above key, made as needed; a file in the way is an error. */
static int
mkparents(int rootfd, const char *key, char *err)
{
	char	 path[OS_KEY_MAX + 160], *p;

	snprintf(path, sizeof(path), "%s", key);
	for (p = strchr(path, '/'); p != NULL; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdirat(rootfd, path, 0700) == -1 && errno != EEXIST) {
			snprintf(err, OS_ERR, "%.160s: %s", path, strerror(errno));
			return -1;
		}
		*p = '/';
	}
	return 0;
}

static int
copy_fd(int from, int to, long long size)
{
	char		 buf[1 << 16];
	long long	 off = 0;
	ssize_t		 n, w, k;

	while (off < size) {
		n = pread(from, buf, size - off < (long long)sizeof(buf) ?
		    (size_t)(size - off) : sizeof(buf), off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;	/* shrank while copied */
			return -1;
		}
		for (w = 0; w < n; w += k)
			if ((k = write(to, buf + w, (size_t)(n - w))) < 0) {
				if (errno == EINTR) {
					k = 0;
					continue;
				}
				return -1;
			}
		off += n;
	}
	return 0;
}

static void
meta_of(int fd, const struct stat *st, struct os_meta *m)
{
	ssize_t	 n;

	memset(m, 0, sizeof(*m));
	m->size = (long long)st->st_size;
	m->mtime = (long long)st->st_mtim.tv_sec;
	n = fd >= 0 ? fgetxattr(fd, SHA_XATTR, m->sha256, 64) : -1;
	m->sha256[n == 64 ? 64 : 0] = '\0';
	/* A rename makes a new inode: the number changes with every put. */
	snprintf(m->etag, sizeof(m->etag), "%llx-%llx-%lx",
	    (unsigned long long)st->st_ino, (unsigned long long)st->st_size,
	    (long)st->st_mtim.tv_nsec ^ (long)st->st_mtim.tv_sec);
}

static int
l_put(struct objstore *os, const char *key, int fd, long long size,
    const char *sha256, struct os_meta *m, char *err)
{
	struct local	*l = os->impl;
	char		 tmp[64];
	struct stat	 st;
	int		 t = -1, saved;
	static unsigned	 seq;

	if (reserved(key, err) || mkparents(l->rootfd, key, err) == -1)
		return OS_FAIL;
	snprintf(tmp, sizeof(tmp), TMP_DIR "/%d.%u", (int)getpid(),
	    __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
	if ((t = openat(l->rootfd, tmp, O_WRONLY | O_CREAT | O_TRUNC |
	    O_CLOEXEC, 0600)) == -1)
		goto fail;
	if (copy_fd(fd, t, size) == -1 || fsync(t) == -1)
		goto fail;
	/* Best effort: without xattrs the object has no recorded hash. */
	(void)fsetxattr(t, SHA_XATTR, sha256, 64, 0);
	if (renameat(l->rootfd, tmp, l->rootfd, key) == -1) {
		if (errno == EISDIR || errno == ENOTDIR || errno == ENOTEMPTY) {
			snprintf(err, OS_ERR, "%s: a folder or file is in the "
			    "way (the local backend cannot hold both \"a\" "
			    "and \"a/b\")", key);
			close(t);
			unlinkat(l->rootfd, tmp, 0);
			return OS_FAIL;
		}
		goto fail;
	}
	(void)fsync(l->rootfd);
	if (fstat(t, &st) == -1)
		goto fail;
	meta_of(t, &st, m);
	close(t);
	return OS_OK;
fail:
	saved = errno;
	snprintf(err, OS_ERR, "%s: %s", key, strerror(saved));
	if (t != -1) {
		close(t);
		unlinkat(l->rootfd, tmp, 0);
	}
	return saved == ENOSPC || saved == EIO ? OS_RETRY : OS_FAIL;
}

static int
open_obj(struct local *l, const char *key, struct stat *st, char *err)
{
	int	 fd;

	if (reserved(key, err))
		return -1;
	/* Not found means not there: another failure (EMFILE, EIO) must
	 * not make a sync think the store lost its manifest. */
	fd = openat(l->rootfd, key, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1 && errno != ENOENT && errno != ENOTDIR) {
		snprintf(err, OS_ERR, "%.200s: %s", key, strerror(errno));
		return -1;
	}
	if (fd == -1 || fstat(fd, st) == -1 || !S_ISREG(st->st_mode)) {
		if (fd != -1)
			close(fd);
		*err = '\0';
		return -2;
	}
	return fd;
}

static int
l_get(struct objstore *os, const char *key, int out, struct buf *mem,
    struct os_meta *m, char *err)
{
	struct local	*l = os->impl;
	struct stat	 st, ost;
	ssize_t		 n;
	int		 fd;
	char		 b[1 << 16];

	if ((fd = open_obj(l, key, &st, err)) < 0) {
		if (fd == -2)
			snprintf(err, OS_ERR, "%s: no such object", key);
		return fd == -2 ? OS_NOTFOUND : OS_FAIL;
	}
	meta_of(fd, &st, m);
	if (out >= 0) {
		/* A new file is empty: no truncation (a journal entry on
		 * ext4 each, 10,000 in a restore). */
		if ((fstat(out, &ost) == -1 || (ost.st_size != 0 &&
		    ftruncate(out, 0) == -1)) || lseek(out, 0, SEEK_SET) == -1 ||
		    copy_fd(fd, out, (long long)st.st_size) == -1) {
			snprintf(err, OS_ERR, "%s: %s", key, strerror(errno));
			close(fd);
			return OS_FAIL;
		}
		close(fd);
		return OS_OK;
	}
	buf_reset(mem);
	while ((n = read(fd, b, sizeof(b))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || buf_append(mem, b, (size_t)n) == -1) {
			snprintf(err, OS_ERR, "%s: %s", key, n < 0 ?
			    strerror(errno) : "larger than the reader takes");
			close(fd);
			return OS_FAIL;
		}
	}
	close(fd);
	return OS_OK;
}

static int
l_head(struct objstore *os, const char *key, struct os_meta *m, char *err)
{
	struct stat	 st;
	int		 fd;

	if ((fd = open_obj(os->impl, key, &st, err)) < 0) {
		if (fd == -2)
			snprintf(err, OS_ERR, "%s: no such object", key);
		return fd == -2 ? OS_NOTFOUND : OS_FAIL;
	}
	meta_of(fd, &st, m);
	close(fd);
	return OS_OK;
}

static int
l_del(struct objstore *os, const char *key, char *err)
{
	struct local	*l = os->impl;
	char		 path[OS_KEY_MAX + 160], *p;

	if (reserved(key, err))
		return OS_FAIL;
	if (unlinkat(l->rootfd, key, 0) == -1 && errno != ENOENT) {
		snprintf(err, OS_ERR, "%s: %s", key, strerror(errno));
		return OS_FAIL;
	}
	/* Folders left empty go too, as S3 has none. */
	snprintf(path, sizeof(path), "%s", key);
	while ((p = strrchr(path, '/')) != NULL) {
		*p = '\0';
		if (unlinkat(l->rootfd, path, AT_REMOVEDIR) == -1)
			break;
	}
	return OS_OK;
}

static int
keys_add(struct keys *k, const char *key)
{
	char	**v;

	if (k->n == k->cap) {
		k->cap = k->cap ? k->cap * 2 : 256;
		if ((v = realloc(k->v, k->cap * sizeof(*v))) == NULL)
			return -1;
		k->v = v;
	}
	if ((k->v[k->n] = strdup(key)) == NULL)
		return -1;
	k->n++;
	return 0;
}

/* Every file key under folder dir ("" the root), in no order. */
static int
collect(int rootfd, const char *dir, struct keys *k)
{
	DIR		*d;
	struct dirent	*e;
	char		 path[OS_KEY_MAX + 160];
	int		 fd, rc = 0;

	/* Not dup(rootfd): a dup shares its read offset. */
	fd = openat(rootfd, *dir == '\0' ? "." : dir, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		    (*dir == '\0' && !strcmp(e->d_name, TMP_DIR)))
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s%s%s", dir,
		    *dir != '\0' ? "/" : "", e->d_name) >= sizeof(path))
			continue;
		if (e->d_type == DT_DIR)
			rc = collect(rootfd, path, k);
		else if (e->d_type == DT_REG)
			rc = keys_add(k, path);
	}
	closedir(d);
	return rc;
}

static int
keycmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The folder that holds every key under prefix is walked and sorted on
 * each page: simple, and a few milliseconds for 10,000 keys.
 */
static int
l_list(struct objstore *os, const char *prefix, const char *after,
    size_t max, int (*each)(const char *, const struct os_meta *, void *),
    void *arg, char *next, size_t nextsz, char *err)
{
	struct local	*l = os->impl;
	struct keys	 k = { NULL, 0, 0 };
	struct os_meta	 m;
	struct stat	 st;
	char		 dir[OS_KEY_MAX + 160], *p;
	size_t		 i, sent = 0, plen = strlen(prefix);
	int		 rc = OS_OK, fd;

	*next = '\0';
	snprintf(dir, sizeof(dir), "%s", prefix);
	if ((p = strrchr(dir, '/')) != NULL)
		*p = '\0';
	else
		*dir = '\0';
	if (collect(l->rootfd, dir, &k) == -1) {
		snprintf(err, OS_ERR, "list %s: %s", prefix, strerror(errno));
		rc = OS_FAIL;
		goto out;
	}
	if (k.n > 0)	/* k.v is NULL then: qsort's is nonnull */
		qsort(k.v, k.n, sizeof(*k.v), keycmp);
	for (i = 0; i < k.n; i++) {
		if (strncmp(k.v[i], prefix, plen) != 0 ||
		    (*after != '\0' && strcmp(k.v[i], after) <= 0))
			continue;
		if (sent == max) {
			snprintf(next, nextsz, "%s", k.v[i - 1]);
			break;
		}
		if ((fd = openat(l->rootfd, k.v[i], O_RDONLY | O_CLOEXEC |
		    O_NOFOLLOW)) == -1)
			continue;	/* deleted meanwhile */
		if (fstat(fd, &st) == 0) {
			meta_of(fd, &st, &m);
			sent++;
			if (each(k.v[i], &m, arg) != 0)
				i = k.n - 1;	/* the caller stops */
		}
		close(fd);
	}
out:
	for (i = 0; i < k.n; i++)
		free(k.v[i]);
	free(k.v);
	return rc;
}
