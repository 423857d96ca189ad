/* SPDX-License-Identifier: MIT */
/*
 * objstore_tree.c: a sandbox's /data folder as seen from the host, for the
 * sync (objstore_sync.c). The folder belongs to the sandbox, which can put
 * a symlink anywhere in it: every path is walked one part at a time with
 * O_NOFOLLOW from a folder fd, so pincerd (often root) never follows a
 * link the sandbox made, and files it writes appear by rename.
 *
 * An entry is a small JSON object, the same in the scan, the manifest in
 * the store, and the last synced state:
 *   file   {"s": size, "m": mode, "t": mtime s, "n": mtime ns,
 *           "h": sha256, "u": uid, "g": gid}
 *   folder {"d": 1, "m", "u", "g"}
 *   link   {"l": target, "u", "g"}
 * uid and gid are the sandbox's own numbers (inside its user namespace).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "pincer.h"

#define MAX_DEPTH	64

struct scan {
	const struct tree	*t;
	json_t			*out;		/* path -> entry */
	json_t			*cache;		/* the last scan's hashes */
	json_t			*new_cache;
	struct tree_stats	*st;
	char			 err[256];
	time_t			 start;
};

static int	 scan_dir(struct scan *, int, const char *, int);
static int	 scan_file(struct scan *, int, const char *, const char *,
		    const struct stat *);
static int	 copy_hash(int, int, char[65], long long *, long long);
static int	 open_regular(int, const char *, const struct stat *);
static unsigned	 inner(const struct tree *, unsigned);
static bool	 utf8_ok(const char *);

/* JSON keys and strings must be UTF-8; other names are not synced. */
static bool
utf8_ok(const char *s)
{
	json_t	*j = json_string(s);

	json_decref(j);
	return j != NULL;
}

static unsigned
inner(const struct tree *t, unsigned id)
{
	return id >= t->base && id - t->base < 65536 ? id - t->base : 0;
}

/* The folder at rel ("" the top) opened without following a link; with
 * create, missing folders are made (owned like the sandbox's). */
int
tree_open_dir(const struct tree *t, const char *rel, bool create)
{
	char	 part[NAME_MAX + 1];
	const char *p = rel, *e;
	int	 fd, nfd;
	size_t	 n;
	bool	 made;

	fd = openat(AT_FDCWD, t->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd == -1 && errno == ENOENT && create) {
		/* Before a first start: made as pincer-sandbox would. */
		if (mkdir(t->dir, 0755) == 0 && t->chown)
			(void)chown(t->dir, t->base, t->base);
		fd = openat(AT_FDCWD, t->dir, O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd == -1)
		return -1;
	while (*p != '\0') {
		e = strchr(p, '/');
		n = e != NULL ? (size_t)(e - p) : strlen(p);
		if (n == 0 || n > NAME_MAX) {
			close(fd);
			errno = EINVAL;
			return -1;
		}
		memcpy(part, p, n);
		part[n] = '\0';
		if (!strcmp(part, ".") || !strcmp(part, "..")) {
			close(fd);
			errno = EINVAL;
			return -1;
		}
		nfd = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		if (nfd == -1 && errno == ENOENT && create) {
			made = mkdirat(fd, part, 0755) == 0;
			nfd = openat(fd, part, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
			if (made && nfd != -1 && t->chown)
				(void)fchown(nfd, t->base, t->base);
		}
		close(fd);
		if ((fd = nfd) == -1)
			return -1;
		p += n;
		if (*p == '/')
			p++;
	}
	return fd;
}

/* "a/b/c" -> the folder "a/b" and the name "c". */
void
tree_split(const char *path, char *dir, size_t dirsz, const char **name)
{
	const char	*s = strrchr(path, '/');

	if (s == NULL) {
		*dir = '\0';
		*name = path;
		return;
	}
	snprintf(dir, dirsz, "%.*s", (int)(s - path), path);
	*name = s + 1;
}

/* Reads from once (at most limit bytes), writes to once, hashing on the
 * way. A file that grows while it is read is cut where it stood: the
 * bytes read are what the hash says. */
static int
copy_hash(int from, int to, char sha[65], long long *size, long long limit)
{
	unsigned char	 b[1 << 16];
	EVP_MD_CTX	*ctx;
	ssize_t		 n, w, k;
	int		 rc = -1;

	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		goto out;
	*size = 0;
	while (*size < limit && (n = read(from, b, limit - *size <
	    (long long)sizeof(b) ? (size_t)(limit - *size) : sizeof(b))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto out;
		EVP_DigestUpdate(ctx, b, (size_t)n);
		for (w = 0; to >= 0 && w < n; w += k)
			if ((k = write(to, b + w, (size_t)(n - w))) < 0)
				goto out;
		*size += n;
	}
	rc = objstore_sha256_end(ctx, sha);
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

int
tree_sha256_fd(int fd, char sha[65])
{
	long long	 n;

	return copy_hash(fd, -1, sha, &n, LLONG_MAX);
}

/* A regular file, opened without following a link or waiting on a fifo,
 * and (with was) the one scanned: the sandbox may swap names meanwhile. */
static int
open_regular(int dfd, const char *name, const struct stat *was)
{
	struct stat	 st;
	int		 fd;

	if ((fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC)) == -1)
		return -1;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || (was != NULL &&
	    (st.st_ino != was->st_ino || st.st_dev != was->st_dev))) {
		close(fd);
		errno = ESTALE;
		return -1;
	}
	return fd;
}

/*
 * A file whose size, mtime, ctime and inode match the last scan keeps its
 * hash; another is read once. Files being written may change under us:
 * the entry then describes what was read, and the next event syncs again.
 */
static int
scan_file(struct scan *s, int dfd, const char *name, const char *path,
    const struct stat *st)
{
	json_t		*c, *e;
	char		 sha[65], key[96];
	long long	 size;
	int		 fd;

	tree_cache_key(st, key);
	c = json_object_get(s->cache, path);
	if (json_is_array(c) && !strcmp(json_string_value(json_array_get(c,
	    0)) != NULL ? json_string_value(json_array_get(c, 0)) : "", key) &&
	    json_string_length(json_array_get(c, 1)) == 64) {
		snprintf(sha, sizeof(sha), "%s", json_string_value(
		    json_array_get(c, 1)));
		size = (long long)st->st_size;
	} else {
		if ((fd = open_regular(dfd, name, st)) == -1)
			return errno == ENOENT || errno == ESTALE ? 0 : -1;
		if (copy_hash(fd, -1, sha, &size, (long long)st->st_size) ==
		    -1) {
			close(fd);
			return -1;
		}
		close(fd);
		s->st->hashed++;
		s->st->hashed_bytes += size;
	}
	/* Changed within the clock's grain of now, a later same-size write
	 * could leave the key as it is: hashed again next time. */
	if (st->st_mtim.tv_sec < s->start - 2 && st->st_ctim.tv_sec <
	    s->start - 2)
		json_object_set_new(s->new_cache, path, json_pack("[ss]", key,
		    sha));
	e = json_pack("{sI sI sI sI ss sI sI}", "s", (json_int_t)size,
	    "m", (json_int_t)(st->st_mode & 07777),
	    "t", (json_int_t)st->st_mtim.tv_sec,
	    "n", (json_int_t)st->st_mtim.tv_nsec, "h", sha,
	    "u", (json_int_t)inner(s->t, st->st_uid),
	    "g", (json_int_t)inner(s->t, st->st_gid));
	json_object_set_new(s->out, path, e);
	s->st->files++;
	s->st->bytes += size;
	return 0;
}

static int
scan_dir(struct scan *s, int dfd, const char *rel, int depth)
{
	DIR		*d;
	struct dirent	*de;
	struct stat	 st;
	char		 path[4096], target[4096];
	ssize_t		 n;
	int		 sub, rc = 0;

	if (depth > MAX_DEPTH) {
		snprintf(s->err, sizeof(s->err), "%s: folders nested deeper "
		    "than %d are not synced", rel, MAX_DEPTH);
		s->st->skipped++;
		close(dfd);
		return 0;
	}
	if ((d = fdopendir(dfd)) == NULL) {
		close(dfd);
		return -1;
	}
	for (;;) {
		errno = 0;
		if (rc != 0 || (de = readdir(d)) == NULL) {
			if (rc == 0 && errno != 0)
				rc = -1;	/* a cut listing is not the end */
			break;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!strncmp(de->d_name, TREE_TMP, sizeof(TREE_TMP) - 1)) {
			/* A pull cut by a crash left it; an hour is more
			 * than any file takes to come down. */
			if (fstatat(dirfd(d), de->d_name, &st,
			    AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode) &&
			    st.st_mtim.tv_sec < s->start - 3600)
				(void)unlinkat(dirfd(d), de->d_name, 0);
			continue;
		}
		if ((size_t)snprintf(path, sizeof(path), "%s%s%s", rel,
		    *rel != '\0' ? "/" : "", de->d_name) >= sizeof(path) ||
		    !utf8_ok(path)) {
			s->st->skipped++;	/* cannot be a JSON key */
			continue;
		}
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
		    -1) {
			if (errno != ENOENT)
				rc = -1;
			continue;
		}
		if (S_ISREG(st.st_mode) && st.st_size > s->t->max_file) {
			snprintf(s->err, sizeof(s->err), "%.120s: larger than "
			    "sync.max_file_mb, not synced", path);
			s->st->skipped++;
		} else if (S_ISREG(st.st_mode))
			rc = scan_file(s, dirfd(d), de->d_name, path, &st);
		else if (S_ISLNK(st.st_mode)) {
			n = readlinkat(dirfd(d), de->d_name, target,
			    sizeof(target) - 1);
			if (n >= 0)
				target[n] = '\0';
			if (n < 0 || !utf8_ok(target)) {
				s->st->skipped++;
				continue;
			}
			json_object_set_new(s->out, path, json_pack(
			    "{ss sI sI}", "l", target,
			    "u", (json_int_t)inner(s->t, st.st_uid),
			    "g", (json_int_t)inner(s->t, st.st_gid)));
			s->st->links++;
		} else if (S_ISDIR(st.st_mode)) {
			json_object_set_new(s->out, path, json_pack(
			    "{sb sI sI sI}", "d", 1,
			    "m", (json_int_t)(st.st_mode & 07777),
			    "u", (json_int_t)inner(s->t, st.st_uid),
			    "g", (json_int_t)inner(s->t, st.st_gid)));
			s->st->dirs++;
			sub = openat(dirfd(d), de->d_name, O_RDONLY |
			    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub != -1)
				rc = scan_dir(s, sub, path, depth + 1);
			else if (errno != ENOENT && errno != ENOTDIR &&
			    errno != ELOOP)
				rc = -1;	/* unread is not deleted */
		} else
			s->st->skipped++;	/* fifos, sockets, devices */
	}
	closedir(d);
	return rc;
}

json_t *
tree_scan(const struct tree *t, json_t *cache, json_t **new_cache,
    struct tree_stats *st, char *err, size_t errsz)
{
	struct scan	 s = { t, json_object(), cache, json_object(), st, "",
			    time(NULL) };
	int		 fd;

	memset(st, 0, sizeof(*st));
	*new_cache = NULL;
	if ((fd = tree_open_dir(t, "", false)) == -1) {
		if (errno == ENOENT) {	/* never started: nothing yet */
			*new_cache = s.new_cache;
			return s.out;
		}
		snprintf(err, errsz, "%s: %s", t->dir, strerror(errno));
		goto fail;
	}
	if (scan_dir(&s, fd, "", 0) == -1) {
		snprintf(err, errsz, "scan %s: %s", t->dir, strerror(errno));
		goto fail;
	}
	if (*s.err != '\0')
		snprintf(err, errsz, "%s", s.err);
	*new_cache = s.new_cache;
	return s.out;
fail:
	json_decref(s.out);
	json_decref(s.new_cache);
	return NULL;
}

/* The file at path copied into out (emptied first), hashed on the way:
 * what is uploaded is exactly what was hashed. */
int
tree_copy_file(const struct tree *t, const char *path, int out,
    char sha[65], long long *size)
{
	char		 dir[4096];
	const char	*name;
	struct stat	 st;
	int		 dfd, fd, rc;

	tree_split(path, dir, sizeof(dir), &name);
	if ((dfd = tree_open_dir(t, dir, false)) == -1)
		return -1;
	fd = open_regular(dfd, name, NULL);
	close(dfd);
	if (fd == -1 || fstat(fd, &st) == -1)
		return -1;
	if (st.st_size > t->max_file) {
		close(fd);
		errno = EFBIG;
		return -1;
	}
	rc = ftruncate(out, 0) == -1 || lseek(out, 0, SEEK_SET) == -1 ||
	    copy_hash(fd, out, sha, size, (long long)st.st_size) == -1 ?
	    -1 : 0;
	close(fd);
	return rc;
}

/* The process's umask, read once (umask(2) can only read by writing). */
static mode_t
umask_bits(void)
{
	static mode_t	 m = (mode_t)-1;
	mode_t		 u;

	if (__atomic_load_n(&m, __ATOMIC_RELAXED) == (mode_t)-1) {
		u = umask(077);
		umask(u);
		__atomic_store_n(&m, u, __ATOMIC_RELAXED);
	}
	return m;
}

/* What the scan compares to know a file unchanged (its hash cache). */
void
tree_cache_key(const struct stat *st, char key[96])
{
	snprintf(key, 96, "%llx.%llx.%lld.%ld.%lld.%ld",
	    (unsigned long long)st->st_ino, (unsigned long long)st->st_size,
	    (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec,
	    (long long)st->st_ctim.tv_sec, st->st_ctim.tv_nsec);
}

/* The folder of path, from the cache when it is the last one used. */
static int
dir_of(const struct tree *t, struct tree_dir *c, const char *path,
    const char **name)
{
	char	 dir[4096];

	tree_split(path, dir, sizeof(dir), name);
	if (c->fd != -1 && !strcmp(c->rel, dir))
		return c->fd;
	if (c->fd != -1)
		close(c->fd);
	c->fd = tree_open_dir(t, dir, true);
	snprintf(c->rel, sizeof(c->rel), "%s", dir);
	return c->fd;
}

void
tree_dir_close(struct tree_dir *c)
{
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
}

/*
 * A file from the store into place: fill writes it beside its place under
 * a temporary name; its hash is checked against the entry, it gets the
 * entry's mode, owner and time, and is renamed over the old one. key gets
 * its hash-cache key, so the next scan need not read it again.
 */
int
tree_install_file(const struct tree *t, struct tree_dir *c, const char *path,
    json_t *e, int (*fill)(int, void *), void *arg, char key[96])
{
	char		 tmp[64], sha[65];
	const char	*name, *want;
	struct timespec	 ts[2];
	struct stat	 st;
	mode_t		 mode;
	int		 dfd, fd = -1, saved;
	static unsigned	 seq;

	if ((dfd = dir_of(t, c, path, &name)) == -1)
		return -1;
	snprintf(tmp, sizeof(tmp), TREE_TMP "%d.%u", (int)getpid(),
	    __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
	mode = (mode_t)json_integer_value(json_object_get(e, "m")) & 07777;
	if ((fd = openat(dfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, mode & 0777)) == -1)
		return -1;
	if (fill(fd, arg) == -1)
		goto fail;
	want = json_string_value(json_object_get(e, "h"));
	if (lseek(fd, 0, SEEK_SET) == -1 || tree_sha256_fd(fd, sha) == -1)
		goto fail;
	if (want == NULL || strcmp(sha, want) != 0) {
		errno = EBADMSG;	/* the store gave other bytes */
		goto fail;
	}
	if (t->chown && fchown(fd, t->base + (unsigned)json_integer_value(
	    json_object_get(e, "u")), t->base + (unsigned)json_integer_value(
	    json_object_get(e, "g"))) == -1)
		goto fail;
	/* Made with the mode already, unless the umask took bits off (or
	 * set-id bits, which open does not give and chown clears). */
	if (((mode & ~0777) != 0 || (mode & umask_bits()) != 0) &&
	    fchmod(fd, mode) == -1)
		goto fail;
	ts[0].tv_sec = ts[1].tv_sec = (time_t)json_integer_value(
	    json_object_get(e, "t"));
	ts[0].tv_nsec = ts[1].tv_nsec = (long)json_integer_value(
	    json_object_get(e, "n"));
	if (futimens(fd, ts) == -1)
		goto fail;
	if (renameat(dfd, tmp, dfd, name) == -1) {
		/* A folder in the way (the other side made a file of it)
		 * goes only when empty; else this fails and is reported. */
		if ((errno != EISDIR && errno != ENOTEMPTY) ||
		    unlinkat(dfd, name, AT_REMOVEDIR) == -1 ||
		    renameat(dfd, tmp, dfd, name) == -1)
			goto fail;
	}
	if (fstat(fd, &st) == 0)
		tree_cache_key(&st, key);
	else
		*key = '\0';
	close(fd);
	return 0;
fail:
	saved = errno;
	close(fd);
	(void)unlinkat(dfd, tmp, 0);
	errno = saved;
	return -1;
}

/* A folder or a link as the entry says. */
int
tree_install_other(const struct tree *t, const char *path, json_t *e)
{
	char		 dir[4096], tmp[64];
	const char	*name, *target;
	struct stat	 st;
	int		 dfd, fd, rc = -1;
	unsigned	 u, g;

	tree_split(path, dir, sizeof(dir), &name);
	if ((dfd = tree_open_dir(t, dir, true)) == -1)
		return -1;
	u = t->base + (unsigned)json_integer_value(json_object_get(e, "u"));
	g = t->base + (unsigned)json_integer_value(json_object_get(e, "g"));
	if ((target = json_string_value(json_object_get(e, "l"))) != NULL) {
		snprintf(tmp, sizeof(tmp), TREE_TMP "%d.l", (int)getpid());
		(void)unlinkat(dfd, tmp, 0);
		if (symlinkat(target, dfd, tmp) == -1 || (t->chown &&
		    fchownat(dfd, tmp, u, g, AT_SYMLINK_NOFOLLOW) == -1) ||
		    renameat(dfd, tmp, dfd, name) == -1) {
			(void)unlinkat(dfd, tmp, 0);
			goto out;
		}
		rc = 0;
		goto out;
	}
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    !S_ISDIR(st.st_mode))
		(void)unlinkat(dfd, name, 0);
	if (mkdirat(dfd, name, 0700) == -1 && errno != EEXIST)
		goto out;
	/* Through an fd of the folder itself: the sandbox may swap the
	 * name for a link to a host file at any moment. */
	if ((fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		goto out;
	if ((t->chown && fchown(fd, u, g) == -1) || fchmod(fd,
	    (mode_t)json_integer_value(json_object_get(e, "m")) & 07777) ==
	    -1) {
		close(fd);
		goto out;
	}
	close(fd);
	rc = 0;
out:
	close(dfd);
	return rc;
}

/* Gone from the other side: a file or link unlinked, a folder removed
 * when it is empty (what is left in it is the sandbox's). */
int
tree_remove(const struct tree *t, const char *path, bool folder)
{
	char		 dir[4096];
	const char	*name;
	int		 dfd, rc;

	tree_split(path, dir, sizeof(dir), &name);
	if ((dfd = tree_open_dir(t, dir, false)) == -1)
		return errno == ENOENT ? 0 : -1;
	rc = unlinkat(dfd, name, folder ? AT_REMOVEDIR : 0);
	if (rc == -1 && (errno == ENOENT || (folder && errno == ENOTEMPTY)))
		rc = 0;
	close(dfd);
	return rc;
}

int
tree_rename(const struct tree *t, const char *from, const char *to)
{
	char		 d1[4096], d2[4096];
	const char	*n1, *n2;
	int		 f1, f2, rc = -1;

	tree_split(from, d1, sizeof(d1), &n1);
	tree_split(to, d2, sizeof(d2), &n2);
	if ((f1 = tree_open_dir(t, d1, false)) == -1)
		return -1;
	if ((f2 = tree_open_dir(t, d2, true)) != -1) {
		rc = renameat(f1, n1, f2, n2);
		close(f2);
	}
	close(f1);
	return rc;
}

/* What was installed is on the disk: before the state says so (a file
 * renamed into place can still be empty after a power cut on ext4). */
int
tree_flush(const struct tree *t)
{
	int	 fd, rc;

	if ((fd = tree_open_dir(t, "", false)) == -1)
		return errno == ENOENT ? 0 : -1;
	rc = syncfs(fd);
	close(fd);
	return rc;
}
