/* SPDX-License-Identifier: MIT */
/*
 * snap_unpack.c: a snapshot's archive written out as a sandbox's
 * writable state, then swapped in for the sandbox's own.
 *
 * The archive may come from a store someone else can write to, so each
 * entry is checked before anything is made of it: a path under upper/,
 * workspace/ or data/ with no "..", "." or empty part; one of the types
 * a snapshot holds (folder, file, hard link, symlink, whiteout, FIFO).
 * It is then created with *at() calls in a fresh staging folder, each
 * parent opened one part at a time with O_NOFOLLOW, so no symlink in the
 * archive (or planted since) can send a write outside that folder. This
 * is what ARCHIVE_EXTRACT_SECURE_SYMLINKS and _SECURE_NODOTDOT promise,
 * done without libarchive's disk writer, whose paths are relative to the
 * working directory that every thread of pincerd shares. Owners are the
 * archive's inner ids moved into the target sandbox's range.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "pincer.h"

#define DIRS_MAX	(1 << 22)	/* folders in one archive */

/* A folder's mode and time, set once everything in it is made. */
struct dirfix {
	char		*path;		/* owned */
	mode_t		 mode;
	struct timespec	 mtime;
};

struct unpack {
	struct archive		*a;
	int			 stage;
	const struct snap_ids	*ids;
	const bool		*cancel;
	struct snap_stats	*stats;
	char			 parent[SNAP_PATH_MAX];	/* pfd's path */
	int			 pfd;			/* -1: none open */
	struct dirfix		*dirs;			/* owned */
	size_t			 ndirs, capdirs;
	char			*err;
	size_t			 errsz;
	bool			 damaged;	/* the archive, not the host */
};

static int	 entry(struct unpack *, struct archive_entry *);
static int	 make(struct unpack *, struct archive_entry *, const char *,
		    int, const char *);
static int	 make_file(struct unpack *, struct archive_entry *,
		    const char *, int, const char *);
static int	 make_dir(struct unpack *, struct archive_entry *,
		    const char *, int, const char *);
static int	 make_link(struct unpack *, const char *, const char *, int,
		    const char *);
static int	 set_xattrs(struct unpack *, struct archive_entry *, int,
		    const char *);
static int	 owner_at(struct unpack *, struct archive_entry *, int,
		    const char *, int);
static int	 fix_dirs(struct unpack *);
static int	 parent_of(struct unpack *, const char *);
static int	 open_under(int, const char *);
static bool	 clean_path(const char *, char *, size_t);
static long long host_id(const struct snap_ids *, long long, bool);
static int	 say(struct unpack *, const char *, ...) PINCER_PRINTF(2, 3);
static int	 bad(struct unpack *, const char *, ...) PINCER_PRINTF(2, 3);

/*
 * Write the archive read from in under stage (an empty folder): SNAP_OK,
 * SNAP_DAMAGED (the archive is wrong) or SNAP_FAILED (the host is). On
 * any error, stage holds part of it: the caller removes it.
 */
int
snap_unpack(int in, int stage, const struct snap_ids *ids,
    const bool *cancel, struct snap_stats *stats, char *err, size_t errsz)
{
	static const bool	 never;
	struct unpack		 u;
	struct archive_entry	*e;
	size_t			 i;
	int			 r, rc = SNAP_FAILED;

	memset(&u, 0, sizeof(u));
	memset(stats, 0, sizeof(*stats));
	u.stage = stage;
	u.ids = ids;
	u.cancel = cancel != NULL ? cancel : &never;
	u.stats = stats;
	u.pfd = -1;
	u.err = err;
	u.errsz = errsz;
	err[0] = '\0';
	/* Only what snap_pack writes is read: tar (pax) in zstd. */
	if ((u.a = archive_read_new()) == NULL ||
	    archive_read_support_filter_zstd(u.a) != ARCHIVE_OK ||
	    archive_read_support_format_tar(u.a) != ARCHIVE_OK ||
	    archive_read_open_fd(u.a, in, 1 << 16) != ARCHIVE_OK) {
		bad(&u, "the archive cannot be read: %s", u.a != NULL ?
		    archive_error_string(u.a) : "out of memory");
		goto out;
	}
	while ((r = archive_read_next_header(u.a, &e)) != ARCHIVE_EOF) {
		if (r < ARCHIVE_WARN) {
			bad(&u, "the archive is damaged: %s",
			    archive_error_string(u.a));
			goto out;
		}
		if (__atomic_load_n(u.cancel, __ATOMIC_RELAXED)) {
			say(&u, "cancelled");
			goto out;
		}
		if (entry(&u, e) == -1)
			goto out;
	}
	if (fix_dirs(&u) == -1)
		goto out;
	/* A part the sandbox never had is made empty. */
	for (i = 0; snap_parts[i] != NULL; i++)
		if (mkdirat(stage, snap_parts[i], 0700) == 0 &&
		    ids->count > 1 && fchownat(stage, snap_parts[i], ids->uid,
		    ids->gid, AT_SYMLINK_NOFOLLOW) == -1) {
			say(&u, "%s: %s", snap_parts[i], strerror(errno));
			goto out;
		}
	rc = SNAP_OK;
out:
	if (rc != SNAP_OK && u.damaged)
		rc = SNAP_DAMAGED;
	if (u.a != NULL)
		archive_read_free(u.a);
	if (u.pfd != -1)
		close(u.pfd);
	for (i = 0; i < u.ndirs; i++)
		free(u.dirs[i].path);
	free(u.dirs);
	return rc;
}

/*
 * The staged parts become the sandbox's: each is exchanged with the one
 * in place (RENAME_EXCHANGE), so a failure half way is undone part by
 * part, and the old state ends up in the staging folder, which the
 * caller then removes. The overlay's work folder goes as well: it
 * belonged to the old upper layer (the launcher makes a new one).
 */
int
snap_swap(int root, const char *name, const char *stage,
    const struct snap_ids *ids, char *err, size_t errsz)
{
	enum { NONE, SWAPPED, MOVED }	 done[8] = { NONE };
	int				 sfd = -1, dfd = -1, i, rc = -1;
	const char			*p;

	if (mkdirat(root, name, 0700) == 0 && ids->count > 1 &&
	    fchownat(root, name, ids->uid, ids->gid, AT_SYMLINK_NOFOLLOW) ==
	    -1) {
		snprintf(err, errsz, "%s: %s", name, strerror(errno));
		return -1;
	}
	if ((dfd = open_under(root, name)) == -1 ||
	    (sfd = open_under(root, stage)) == -1) {
		snprintf(err, errsz, "%s: %s", dfd == -1 ? name : stage,
		    strerror(errno));
		goto out;
	}
	for (i = 0; (p = snap_parts[i]) != NULL; i++) {
		if (renameat2(sfd, p, dfd, p, RENAME_EXCHANGE) == 0)
			done[i] = SWAPPED;
		else if (errno == ENOENT && renameat(sfd, p, dfd, p) == 0)
			done[i] = MOVED;
		else {
			snprintf(err, errsz, "%s/%s: %s", name, p,
			    strerror(errno));
			goto undo;
		}
	}
	if (renameat(dfd, "work", sfd, "work") == -1 && errno != ENOENT)
		log_warn("the overlay's old work folder stays", "name=%s %s",
		    name, strerror(errno));
	rc = 0;
	goto out;
undo:
	while (--i >= 0) {
		p = snap_parts[i];
		if ((done[i] == SWAPPED && renameat2(sfd, p, dfd, p,
		    RENAME_EXCHANGE) == -1) || (done[i] == MOVED &&
		    renameat(dfd, p, sfd, p) == -1))
			log_error("a restore could not be undone", "name=%s "
			    "part=%s %s", name, p, strerror(errno));
	}
out:
	if (sfd != -1)
		close(sfd);
	if (dfd != -1)
		close(dfd);
	return rc;
}

static int
entry(struct unpack *u, struct archive_entry *e)
{
	const char	*path = archive_entry_pathname(e);
	char		 rel[SNAP_PATH_MAX], *slash;
	const char	*leaf;
	int		 pfd;

	if (path == NULL || !clean_path(path, rel, sizeof(rel)))
		return bad(u, "the archive holds a path outside a sandbox's "
		    "state: \"%.100s\"", path != NULL ? path : "");
	if ((slash = strrchr(rel, '/')) == NULL) {
		/* A part itself: a folder, made at the top. */
		if (archive_entry_filetype(e) != AE_IFDIR)
			return bad(u, "the archive's %s is not a folder", rel);
		pfd = u->stage;
		leaf = rel;
	} else {
		*slash = '\0';
		/* A parent that is a symlink, a file or missing is the
		 * archive's doing; no other error is. */
		if ((pfd = parent_of(u, rel)) == -1)
			return (errno == ELOOP || errno == ENOTDIR ||
			    errno == ENOENT ? bad : say)(u, "%s/%s: its "
			    "folder: %s", rel, slash + 1, strerror(errno));
		*slash = '/';
		leaf = slash + 1;
	}
	return make(u, e, rel, pfd, leaf);
}

static int
make(struct unpack *u, struct archive_entry *e, const char *rel, int pfd,
    const char *leaf)
{
	const char	*target;
	mode_t		 mode = archive_entry_perm(e) & 07777;

	if ((target = archive_entry_hardlink(e)) != NULL)
		return make_link(u, rel, target, pfd, leaf);
	/* The archive's last word on a path wins, as in tar; a folder
	 * stays (its entries may follow). */
	if (archive_entry_filetype(e) != AE_IFDIR &&
	    unlinkat(pfd, leaf, 0) == -1 && errno != ENOENT)
		return (errno == EISDIR ? bad : say)(u, "%s: %s", rel,
		    strerror(errno));
	switch (archive_entry_filetype(e)) {
	case AE_IFDIR:
		return make_dir(u, e, rel, pfd, leaf);
	case AE_IFREG:
		return make_file(u, e, rel, pfd, leaf);
	case AE_IFLNK:
		if ((target = archive_entry_symlink(e)) == NULL ||
		    symlinkat(target, pfd, leaf) == -1)
			return say(u, "%s: %s", rel, target == NULL ?
			    "a link without a target" : strerror(errno));
		break;
	case AE_IFCHR:
		/* An overlay whiteout (0/0); no other device. */
		if (archive_entry_rdev(e) != 0)
			return bad(u, "%s: the archive holds a device, which "
			    "a snapshot never has", rel);
		if (mknodat(pfd, leaf, S_IFCHR | mode, makedev(0, 0)) == -1)
			return say(u, "%s: %s", rel, strerror(errno));
		break;
	case AE_IFIFO:
		if (mkfifoat(pfd, leaf, 0600) == -1)
			return say(u, "%s: %s", rel, strerror(errno));
		break;
	default:
		return bad(u, "%s: the archive holds a kind of file a "
		    "snapshot never has", rel);
	}
	u->stats->files++;
	return owner_at(u, e, pfd, leaf, AT_SYMLINK_NOFOLLOW);
}

static int
make_file(struct unpack *u, struct archive_entry *e, const char *rel,
    int pfd, const char *leaf)
{
	const void	*data;
	size_t		 n;
	la_int64_t	 off;
	struct timespec	 ts[2];
	ssize_t		 w;
	int		 fd, r, rc = -1;

	if ((fd = openat(pfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1)
		return say(u, "%s: %s", rel, strerror(errno));
	while ((r = archive_read_data_block(u->a, &data, &n, &off)) !=
	    ARCHIVE_EOF) {
		if (r < ARCHIVE_WARN) {
			bad(u, "the archive is damaged: %s: %s", rel,
			    archive_error_string(u->a));
			goto out;
		}
		if (__atomic_load_n(u->cancel, __ATOMIC_RELAXED)) {
			say(u, "cancelled");
			goto out;
		}
		for (; n > 0; n -= (size_t)w, off += w,
		    data = (const char *)data + w)
			if ((w = pwrite(fd, data, n, off)) <= 0) {
				say(u, "%s: %s", rel, w < 0 ?
				    strerror(errno) : "short write");
				goto out;
			}
	}
	/* A sparse file's hole at the end, and an empty file. */
	if (archive_entry_size_is_set(e) &&
	    ftruncate(fd, archive_entry_size(e)) == -1) {
		say(u, "%s: %s", rel, strerror(errno));
		goto out;
	}
	/* Owner first: chown clears the set-id bits chmod then sets. */
	ts[0].tv_sec = ts[1].tv_sec = archive_entry_mtime(e);
	ts[0].tv_nsec = ts[1].tv_nsec = archive_entry_mtime_nsec(e);
	if ((u->ids->count > 1 && fchown(fd, (uid_t)host_id(u->ids,
	    archive_entry_uid(e), true), (gid_t)host_id(u->ids,
	    archive_entry_gid(e), false)) == -1) ||
	    fchmod(fd, archive_entry_perm(e) & 07777) == -1 ||
	    set_xattrs(u, e, fd, rel) == -1 || futimens(fd, ts) == -1) {
		if (u->err[0] == '\0')
			say(u, "%s: %s", rel, strerror(errno));
		goto out;
	}
	u->stats->files++;
	u->stats->bytes += archive_entry_size(e);
	rc = 0;
out:
	close(fd);
	return rc;
}

static int
make_dir(struct unpack *u, struct archive_entry *e, const char *rel,
    int pfd, const char *leaf)
{
	struct dirfix	*d;
	struct stat	 st;
	int		 fd, rc;

	/* 0700 while it fills; its own mode is set at the end. */
	if (mkdirat(pfd, leaf, 0700) == -1) {
		if (errno != EEXIST)
			return say(u, "%s: %s", rel, strerror(errno));
		if (fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
		    !S_ISDIR(st.st_mode))
			return bad(u, "%s: the archive makes it a folder and "
			    "something else", rel);
	}
	if (u->ndirs == u->capdirs) {
		if (u->capdirs >= DIRS_MAX)
			return bad(u, "the archive holds more than %d "
			    "folders", DIRS_MAX);
		u->capdirs = u->capdirs ? u->capdirs * 2 : 256;
		if ((d = realloc(u->dirs, u->capdirs * sizeof(*d))) == NULL)
			return say(u, "out of memory");
		u->dirs = d;
	}
	d = &u->dirs[u->ndirs];
	if ((d->path = strdup(rel)) == NULL)
		return say(u, "out of memory");
	d->mode = archive_entry_perm(e) & 07777;
	d->mtime.tv_sec = archive_entry_mtime(e);
	d->mtime.tv_nsec = archive_entry_mtime_nsec(e);
	u->ndirs++;
	u->stats->files++;
	if ((fd = openat(pfd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return say(u, "%s: %s", rel, strerror(errno));
	rc = set_xattrs(u, e, fd, rel);
	close(fd);
	return rc == -1 ? -1 : owner_at(u, e, pfd, leaf, AT_SYMLINK_NOFOLLOW);
}

/* A hard link to a file made before, both inside the staging folder. */
static int
make_link(struct unpack *u, const char *rel, const char *target, int pfd,
    const char *leaf)
{
	char	 t[SNAP_PATH_MAX], *slash;
	int	 tfd, rc;

	if (!clean_path(target, t, sizeof(t)) ||
	    (slash = strrchr(t, '/')) == NULL)
		return bad(u, "%s: the archive links it to \"%.100s\", "
		    "outside a sandbox's state", rel, target);
	*slash = '\0';
	if ((tfd = open_under(u->stage, t)) == -1)
		return (errno == ELOOP || errno == ENOTDIR || errno == ENOENT ?
		    bad : say)(u, "%s: its link's folder: %s", rel,
		    strerror(errno));
	if (unlinkat(pfd, leaf, 0) == -1 && errno != ENOENT)
		rc = -1;
	else
		rc = linkat(tfd, slash + 1, pfd, leaf, 0);
	/* Linked to nothing, or to a folder: the archive's doing. */
	if (rc == -1)
		(errno == ENOENT || errno == EPERM || errno == EISDIR ? bad :
		    say)(u, "%s: %s", rel, strerror(errno));
	else
		u->stats->files++;
	close(tfd);
	return rc;
}

static int
set_xattrs(struct unpack *u, struct archive_entry *e, int fd,
    const char *rel)
{
	const char	*name;
	const void	*val;
	size_t		 n;

	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &name, &val, &n) == ARCHIVE_OK) {
		if (!snap_xattr_kept(name))
			continue;
		if (fsetxattr(fd, name, val, n, 0) == 0)
			continue;
		/* trusted.* needs root; a file system may have none. */
		if (errno != EPERM && errno != ENOTSUP)
			return say(u, "%s: %s: %s", rel, name,
			    strerror(errno));
		u->stats->skipped++;
	}
	return 0;
}

/* Owner (root: in the target's range), mode and time of leaf. */
static int
owner_at(struct unpack *u, struct archive_entry *e, int pfd,
    const char *leaf, int flags)
{
	struct timespec	 ts[2];
	int		 type = archive_entry_filetype(e);

	ts[0].tv_sec = ts[1].tv_sec = archive_entry_mtime(e);
	ts[0].tv_nsec = ts[1].tv_nsec = archive_entry_mtime_nsec(e);
	if (u->ids->count > 1 && fchownat(pfd, leaf, (uid_t)host_id(u->ids,
	    archive_entry_uid(e), true), (gid_t)host_id(u->ids,
	    archive_entry_gid(e), false), flags) == -1)
		return say(u, "%s: owner: %s", leaf, strerror(errno));
	/* A symlink has no mode of its own; a folder's waits. fchmodat
	 * follows links, but this one was just made here as no link. */
	if (type != AE_IFLNK && type != AE_IFDIR && fchmodat(pfd, leaf,
	    archive_entry_perm(e) & 07777, 0) == -1)
		return say(u, "%s: mode: %s", leaf, strerror(errno));
	if (type != AE_IFDIR && utimensat(pfd, leaf, ts, flags) == -1)
		return say(u, "%s: time: %s", leaf, strerror(errno));
	return 0;
}

/* Deepest first: a folder's time is set after its entries are made. */
static int
fix_dirs(struct unpack *u)
{
	struct timespec	 ts[2];
	size_t		 i = u->ndirs;
	int		 fd;

	while (i-- > 0) {
		if ((fd = open_under(u->stage, u->dirs[i].path)) == -1)
			return say(u, "%s: %s", u->dirs[i].path,
			    strerror(errno));
		ts[0] = ts[1] = u->dirs[i].mtime;
		if (fchmod(fd, u->dirs[i].mode) == -1 ||
		    futimens(fd, ts) == -1) {
			close(fd);
			return say(u, "%s: %s", u->dirs[i].path,
			    strerror(errno));
		}
		close(fd);
	}
	return 0;
}

/* The folder rel under the staging folder; kept open for the next. */
static int
parent_of(struct unpack *u, const char *rel)
{
	if (u->pfd != -1 && !strcmp(u->parent, rel))
		return u->pfd;
	if (u->pfd != -1)
		close(u->pfd);
	u->pfd = open_under(u->stage, rel);
	snprintf(u->parent, sizeof(u->parent), "%s", u->pfd != -1 ? rel :
	    "");
	return u->pfd;
}

/* Folder rel under dfd, one part at a time, following no symlink. */
static int
open_under(int dfd, const char *rel)
{
	char	 part[NAME_MAX + 1];
	size_t	 n;
	int	 fd, next;

	if ((fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	while (*rel != '\0') {
		if ((n = strcspn(rel, "/")) == 0 || n > NAME_MAX) {
			close(fd);
			errno = EINVAL;
			return -1;
		}
		memcpy(part, rel, n);
		part[n] = '\0';
		next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		close(fd);
		if ((fd = next) == -1)
			return -1;
		rel += n + (rel[n] == '/');
	}
	return fd;
}

/*
 * An archive path made relative and safe: under one of the parts, with
 * no empty, "." or ".." part; a folder's trailing '/' dropped.
 */
static bool
clean_path(const char *in, char *out, size_t outsz)
{
	const char	*seg, *end;
	size_t		 n = strlen(in), i;
	bool		 part = false;

	if (n > 0 && in[n - 1] == '/')
		n--;
	if (n == 0 || n >= outsz || in[0] == '/')
		return false;
	memcpy(out, in, n);
	out[n] = '\0';
	for (seg = out;; seg = end + 1) {
		end = strchr(seg, '/');
		n = end != NULL ? (size_t)(end - seg) : strlen(seg);
		if (n == 0 || (n == 1 && seg[0] == '.') ||
		    (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return false;
		if (end == NULL)
			break;
	}
	n = strcspn(out, "/");
	for (i = 0; snap_parts[i] != NULL && !part; i++)
		part = strlen(snap_parts[i]) == n &&
		    !strncmp(out, snap_parts[i], n);
	return part;
}

/* An inner id in the target's range; beyond it, its "nobody". */
static long long
host_id(const struct snap_ids *ids, long long in, bool uid)
{
	if (in < 0 || in >= ids->count)
		in = ids->count > SNAP_NOBODY ? SNAP_NOBODY : 0;
	return (uid ? ids->uid : ids->gid) + in;
}

static int
say(struct unpack *u, const char *f, ...)
{
	va_list	 ap;

	va_start(ap, f);
	vsnprintf(u->err, u->errsz, f, ap);
	va_end(ap);
	return -1;
}

/* What the archive holds is wrong (SNAP_DAMAGED), not the host. */
static int
bad(struct unpack *u, const char *f, ...)
{
	va_list	 ap;

	va_start(ap, f);
	vsnprintf(u->err, u->errsz, f, ap);
	va_end(ap);
	u->damaged = true;
	return -1;
}
