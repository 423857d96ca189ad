/* SPDX-License-Identifier: MIT */
/*
 * init_files.c: /files. Read a file or list a folder, stat, write (the
 * body streamed into a temporary file, renamed over the target at the
 * end, so no reader sees half a file), mkdir -p, move, and delete; a
 * recursive delete never follows a symbolic link out of the tree, nor
 * crosses into another mount. Paths are the sandbox's, symlinks and all:
 * pincer-init runs inside the sandbox's mount namespace.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "init.h"

#define LIST_MAX	65536		/* entries in one listing */
#define DEPTH_MAX	256		/* folders deep, in a delete */

/* A PUT in progress: the body goes into tmp, renamed to path at the end. */
struct upload {
	int		 fd;
	char		*path;		/* owned */
	char		*tmp;		/* owned */
	size_t		 size;
};

struct entry {
	char		*name;		/* owned */
	struct stat	 st;
};

static void	file_get(struct conn *, const char *);
static void	file_list(struct conn *, const char *, int);
static void	file_stat(struct conn *, const char *);
static void	file_head(struct conn *, const char *);
static void	file_put(struct conn *, const char *);
static int	put_data(struct conn *, void *, const char *, size_t);
static void	put_gone(struct conn *, void *);
static void	upload_free(struct upload *, bool);
static void	file_mkdir(struct conn *, const char *);
static void	file_move(struct conn *, const char *);
static int	move_copy(const char *, const char *);
static void	file_delete(struct conn *, const char *);
static int	rm_tree(int, const char *, dev_t, int);
static int	mkdir_p(const char *);
static int	split(const char *, char *, size_t, const char **);
static json_t	*stat_json(const char *, const struct stat *);
static const char *type_name(mode_t);
static int	by_name(const void *, const void *);
static void	files_errno(struct conn *, const char *, int, bool);

void
files_handle(struct conn *c, const struct req *r)
{
	const char	*path = r->path + strlen("/files"), *op;

	if (*path == '\0')
		path = "/";
	if (strlen(path) >= PATH_MAX) {
		http_error(c, 400, "bad_request", "the path is too long");
		return;
	}
	if (!strcmp(r->method, "GET")) {
		if ((op = req_query(c, "stat", 0)) != NULL && strcmp(op, "0"))
			file_stat(c, path);
		else
			file_get(c, path);
	} else if (!strcmp(r->method, "HEAD"))
		file_head(c, path);
	else if (!strcmp(r->method, "PUT"))
		file_put(c, path);
	else if (!strcmp(r->method, "DELETE"))
		file_delete(c, path);
	else if ((op = req_query(c, "op", 0)) != NULL && !strcmp(op, "mkdir"))
		file_mkdir(c, path);
	else if (op != NULL && !strcmp(op, "move"))
		file_move(c, path);
	else
		http_error(c, 400, "bad_request", "POST needs op=mkdir or "
		    "op=move");
}

/* A file's bytes, a folder's listing; not a FIFO's or a device's. */
static void
file_get(struct conn *c, const char *path)
{
	struct stat	 st;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)) ==
	    -1) {
		files_errno(c, path, errno, false);
		return;
	}
	if (fstat(fd, &st) == -1) {
		files_errno(c, path, errno, false);
		close(fd);
	} else if (S_ISDIR(st.st_mode))
		file_list(c, path, fd);
	else if (S_ISREG(st.st_mode))
		http_reply_fd(c, 200, "application/octet-stream", fd,
		    st.st_size);
	else {
		close(fd);
		http_error(c, 422, "unprocessable", "%s is not a file or a "
		    "folder", path);
	}
}

/* Sorted by name; links as themselves (lstat), not what they point to. */
static void
file_list(struct conn *c, const char *path, int fd)
{
	struct entry	*v = NULL, *n;
	struct dirent	*de;
	DIR		*d;
	json_t		*a = NULL, *j;
	size_t		 nv = 0, cap = 0, i;

	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		files_errno(c, path, errno, false);
		return;
	}
	while ((de = readdir(d)) != NULL && nv < LIST_MAX) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (nv == cap) {
			cap = cap ? cap * 2 : 64;
			if ((n = reallocarray(v, cap, sizeof(*v))) == NULL)
				goto oom;
			v = n;
		}
		if (fstatat(dirfd(d), de->d_name, &v[nv].st,
		    AT_SYMLINK_NOFOLLOW) == -1)
			continue;	/* gone since readdir */
		if ((v[nv].name = strdup(de->d_name)) == NULL)
			goto oom;
		nv++;
	}
	/* An empty folder leaves v NULL, which qsort may not be given. */
	if (nv > 1)
		qsort(v, nv, sizeof(*v), by_name);
	if ((a = json_array()) == NULL)
		goto oom;
	for (i = 0; i < nv; i++) {
		j = stat_json(NULL, &v[i].st);
		json_object_set_new(j, "name", text_jstr(v[i].name,
		    strlen(v[i].name)));
		if (json_array_append_new(a, j) == -1)
			goto oom;
	}
	j = json_pack("{s:o,s:o}", "path", text_jstr(path, strlen(path)),
	    "entries", a);
	a = NULL;
	if (j != NULL && de != NULL)	/* stopped at LIST_MAX */
		json_object_set_new(j, "truncated", json_true());
	http_json(c, 200, j);
	goto out;
oom:
	http_error(c, 500, "internal", "out of memory");
out:
	json_decref(a);
	for (i = 0; i < nv; i++)
		free(v[i].name);
	free(v);
	closedir(d);
}

static void
file_stat(struct conn *c, const char *path)
{
	struct stat	 st;

	if (lstat(path, &st) == -1)
		files_errno(c, path, errno, false);
	else
		http_json(c, 200, stat_json(path, &st));
}

/* 200 when the name exists (a dangling link does), with a file's size. */
static void
file_head(struct conn *c, const char *path)
{
	struct stat	 st;

	if (stat(path, &st) == -1 && lstat(path, &st) == -1) {
		http_reply(c, 404, "application/json", NULL, 0);
		return;
	}
	http_reply(c, 200, S_ISREG(st.st_mode) ? "application/octet-stream" :
	    "application/json", NULL, S_ISREG(st.st_mode) ?
	    (size_t)st.st_size : 0);
}

/*
 * PUT: parents made, then a temporary file beside the target (same file
 * system, so the rename is atomic) that takes the body as it arrives.
 */
static void
file_put(struct conn *c, const char *path)
{
	static unsigned	 seq;
	struct upload	*u = NULL;
	struct stat	 st;
	char		 dir[PATH_MAX], tmp[PATH_MAX];
	const char	*base;
	mode_t		 mode = 0644;
	int		 fd = -1, i, n;

	if (split(path, dir, sizeof(dir), &base) == -1 || *base == '\0') {
		http_error(c, 400, "bad_request", "PUT needs a file's path");
		return;
	}
	if (mkdir_p(dir) == -1) {
		files_errno(c, dir, errno, true);
		return;
	}
	if (stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode)) {
			files_errno(c, path, EISDIR, true);
			return;
		}
		mode = st.st_mode & 07777;	/* a rewrite keeps its mode */
	}
	for (i = 0; i < 16 && fd == -1; i++) {
		n = snprintf(tmp, sizeof(tmp), "%s/.pincer-put.%ld.%u",
		    !strcmp(dir, "/") ? "" : dir, (long)getpid(), ++seq);
		if (n < 0 || (size_t)n >= sizeof(tmp)) {
			errno = ENAMETOOLONG;
			break;
		}
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
		    O_NOFOLLOW, 0600);
		if (fd == -1 && errno != EEXIST)
			break;
	}
	if (fd == -1) {
		files_errno(c, dir, errno, true);
		return;
	}
	if ((u = calloc(1, sizeof(*u))) == NULL) {
		close(fd);
		(void)unlink(tmp);
		http_error(c, 500, "internal", "out of memory");
		return;
	}
	u->fd = fd;
	if (fchmod(fd, mode) == -1 || (u->path = strdup(path)) == NULL ||
	    (u->tmp = strdup(tmp)) == NULL) {
		files_errno(c, path, errno, true);
		(void)unlink(tmp);
		upload_free(u, false);
		return;
	}
	conn_on_close(c, put_gone, u);
	http_body_sink(c, put_data, u);
}

static int
put_data(struct conn *c, void *arg, const char *p, size_t n)
{
	struct upload	*u = arg;
	ssize_t		 w;

	while (n > 0) {
		if ((w = write(u->fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		p += w;
		n -= (size_t)w;
		u->size += (size_t)w;
	}
	if (p != NULL)
		return 0;
	/* The end of the body: in place at once, whole. */
	if (close(u->fd) == -1) {
		u->fd = -1;
		goto fail;
	}
	u->fd = -1;
	if (rename(u->tmp, u->path) == -1)
		goto fail;
	conn_on_close(c, NULL, NULL);
	http_json(c, 201, json_pack("{s:o,s:I}", "path", text_jstr(u->path,
	    strlen(u->path)), "size", (json_int_t)u->size));
	upload_free(u, false);
	return 0;
fail:
	files_errno(c, u->path, errno, true);
	conn_on_close(c, NULL, NULL);
	upload_free(u, true);
	return -1;
}

/* The client went away before the end: nothing of it stays. */
static void
put_gone(struct conn *c, void *arg)
{
	(void)c;
	upload_free(arg, true);
}

static void
upload_free(struct upload *u, bool unlink_tmp)
{
	if (u->fd != -1)
		close(u->fd);
	if (unlink_tmp && u->tmp != NULL)
		(void)unlink(u->tmp);
	free(u->path);
	free(u->tmp);
	free(u);
}

static void
file_mkdir(struct conn *c, const char *path)
{
	if (mkdir_p(path) == -1)
		files_errno(c, path, errno, true);
	else
		http_json(c, 201, json_pack("{s:o}", "path", text_jstr(path,
		    strlen(path))));
}

/* rename(2); across file systems, a copy then an unlink (not folders). */
static void
file_move(struct conn *c, const char *path)
{
	const char	*to = req_query(c, "to", 0), *base;
	char		 dir[PATH_MAX];
	struct stat	 st;

	if (to == NULL || *to != '/' || strlen(to) >= PATH_MAX ||
	    split(to, dir, sizeof(dir), &base) == -1 || *base == '\0') {
		http_error(c, 400, "bad_request", "op=move needs to=/a/path");
		return;
	}
	if (lstat(path, &st) == -1) {
		files_errno(c, path, errno, false);
		return;
	}
	if (mkdir_p(dir) == -1) {
		files_errno(c, dir, errno, true);
		return;
	}
	if (rename(path, to) == -1 && (errno != EXDEV || S_ISDIR(st.st_mode) ||
	    move_copy(path, to) == -1)) {
		files_errno(c, to, errno, true);
		return;
	}
	http_json(c, 200, json_pack("{s:o}", "path", text_jstr(to,
	    strlen(to))));
}

/*
 * In-kernel copy where it can; copy_file_range refuses between some file
 * systems (EXDEV before Linux 5.19, EINVAL or EOPNOTSUPP on others), and
 * then the bytes go through a buffer. Returns 0 or -1 with errno.
 */
static ssize_t
copy_bytes(int in, int out)
{
	char	 buf[65536];
	ssize_t	 n, w, off;

	while ((n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0)) > 0)
		;
	if (n == 0)
		return 0;
	if (errno != EXDEV && errno != EINVAL && errno != ENOSYS &&
	    errno != EOPNOTSUPP)
		return -1;
	while ((n = read(in, buf, sizeof(buf))) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		for (off = 0; off < n; off += w)
			if ((w = write(out, buf + off, (size_t)(n - off))) ==
			    -1 && errno != EINTR)
				return -1;
			else if (w == -1)
				w = 0;
	}
	return 0;
}

/* A file or a link, copied beside to and renamed over it; then unlinked. */
static int
move_copy(const char *from, const char *to)
{
	char		 tmp[PATH_MAX], link[PATH_MAX];
	struct stat	 st;
	ssize_t		 n;
	int		 in = -1, out = -1, saved;

	if (snprintf(tmp, sizeof(tmp), "%s.pincer-move.%ld", to,
	    (long)getpid()) >= (int)sizeof(tmp))
		return errno = ENAMETOOLONG, -1;
	if (lstat(from, &st) == -1)
		return -1;
	if (S_ISLNK(st.st_mode)) {
		if ((n = readlink(from, link, sizeof(link) - 1)) == -1)
			return -1;
		link[n] = '\0';
		if (symlink(link, tmp) == -1)
			return -1;
	} else {
		if ((in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) ==
		    -1 || (out = open(tmp, O_WRONLY | O_CREAT | O_EXCL |
		    O_CLOEXEC, st.st_mode & 07777)) == -1)
			goto fail;
		n = copy_bytes(in, out);
		saved = close(out);
		out = -1;
		if (n == -1 || saved == -1)
			goto fail;
		close(in);
		in = -1;
	}
	if (rename(tmp, to) == -1)
		goto fail;
	return unlink(from);
fail:
	saved = errno;
	if (in != -1)
		close(in);
	if (out != -1)
		close(out);
	(void)unlink(tmp);
	errno = saved;
	return -1;
}

/* A file, a link (not its target), an empty folder; ?recursive=1 a tree. */
static void
file_delete(struct conn *c, const char *path)
{
	const char	*rec = req_query(c, "recursive", 0), *base;
	char		 dir[PATH_MAX];
	struct stat	 st;
	int		 pfd, rc;

	if (split(path, dir, sizeof(dir), &base) == -1 || *base == '\0' ||
	    !strcmp(base, ".") || !strcmp(base, "..")) {
		http_error(c, 400, "bad_request", "will not delete %s", path);
		return;
	}
	if (lstat(path, &st) == -1) {
		files_errno(c, path, errno, false);
		return;
	}
	if (!S_ISDIR(st.st_mode))
		rc = unlink(path);
	else if (rec == NULL || !strcmp(rec, "0"))
		rc = rmdir(path);
	else if ((pfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		rc = -1;
	else {
		rc = rm_tree(pfd, base, st.st_dev, 0);
		close(pfd);
	}
	if (rc == -1)
		files_errno(c, path, errno, true);
	else
		http_json(c, 200, json_pack("{s:o}", "path", text_jstr(path,
		    strlen(path))));
}

/*
 * Every name is opened relative to its folder's fd with O_NOFOLLOW and
 * looked at with AT_SYMLINK_NOFOLLOW: a link is removed, never entered,
 * even one swapped in for a folder while we work. Another device below
 * (a mount) stops it, as rm --one-file-system would.
 */
static int
rm_tree(int parent, const char *name, dev_t dev, int depth)
{
	struct dirent	*de;
	struct stat	 st;
	DIR		*d;
	int		 fd, rc = 0, saved;

	if (depth > DEPTH_MAX)
		return errno = ELOOP, -1;
	if ((fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return -1;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
		    -1)
			rc = errno == ENOENT ? 0 : -1;
		else if (st.st_dev != dev)
			rc = (errno = EXDEV, -1);
		else if (S_ISDIR(st.st_mode))
			rc = rm_tree(dirfd(d), de->d_name, dev, depth + 1);
		else if (unlinkat(dirfd(d), de->d_name, 0) == -1 &&
		    errno != ENOENT)
			rc = -1;
	}
	saved = errno;
	closedir(d);
	errno = saved;
	if (rc == 0 && unlinkat(parent, name, AT_REMOVEDIR) == -1)
		rc = -1;
	return rc;
}

/* Each missing folder on the way made 0755; a file in the way: ENOTDIR. */
static int
mkdir_p(const char *path)
{
	char		 buf[PATH_MAX];
	struct stat	 st;
	size_t		 i, len = strlen(path);

	if (len >= sizeof(buf))
		return errno = ENAMETOOLONG, -1;
	memcpy(buf, path, len + 1);
	for (i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		if (buf[i - 1] == '/')	/* "//" or a trailing "/" */
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0755) == -1) {
			if (errno != EEXIST || stat(buf, &st) == -1)
				return -1;
			if (!S_ISDIR(st.st_mode))
				return errno = ENOTDIR, -1;
		}
		buf[i] = path[i];
	}
	return 0;
}

/* path's folder into dir ("/" for the root), *base into path. */
static int
split(const char *path, char *dir, size_t size, const char **base)
{
	const char	*slash = strrchr(path, '/');
	size_t		 len;

	if (slash == NULL)
		return -1;
	len = slash == path ? 1 : (size_t)(slash - path);
	if (len >= size)
		return -1;
	memcpy(dir, path, len);
	dir[len] = '\0';
	*base = slash + 1;
	return 0;
}

static json_t *
stat_json(const char *path, const struct stat *st)
{
	json_t	*j;

	j = json_pack("{s:s,s:I,s:i,s:I}", "type", type_name(st->st_mode),
	    "size", (json_int_t)st->st_size, "mode",
	    (int)(st->st_mode & 07777), "mtime_ms",
	    (json_int_t)st->st_mtim.tv_sec * 1000 +
	    st->st_mtim.tv_nsec / 1000000);
	if (j != NULL && path != NULL)
		json_object_set_new(j, "path", text_jstr(path, strlen(path)));
	return j;
}

static const char *
type_name(mode_t m)
{
	if (S_ISREG(m))
		return "file";
	if (S_ISDIR(m))
		return "dir";
	if (S_ISLNK(m))
		return "symlink";
	return "other";
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->name,
	    ((const struct entry *)b)->name);
}

/* errno as the API's error; ENOTDIR is "not found" when only reading. */
static void
files_errno(struct conn *c, const char *path, int err, bool writing)
{
	int		 status = 500;
	const char	*code = "internal";

	switch (err) {
	case ENOTDIR:
		if (writing) {
			status = 409, code = "conflict";
			break;
		}
		/* FALLTHROUGH */
	case ENOENT:
		status = 404, code = "not_found";
		break;
	case EEXIST:
	case ENOTEMPTY:
	case EISDIR:
	case EBUSY:
	case EXDEV:
		status = 409, code = "conflict";
		break;
	case EACCES:
	case EPERM:
	case EROFS:
		status = 403, code = "forbidden";
		break;
	case ENAMETOOLONG:
	case ELOOP:
	case EINVAL:
		status = 400, code = "bad_request";
		break;
	case EFBIG:
		status = 413, code = "too_large";
		break;
	case ENOSPC:
	case EDQUOT:
		status = 507, code = "insufficient_storage";
		break;
	}
	http_error(c, status, code, "%s: %s", path, strerror(err));
}
