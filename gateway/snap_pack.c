/* SPDX-License-Identifier: MIT */
/*
 * snap_pack.c: a sandbox's writable state (upper, workspace, data) packed
 * as one tar (pax) + zstd stream, with owners as the sandbox sees them.
 *
 * The tree was written by the sandbox, so it is walked with openat() and
 * O_NOFOLLOW from the sandbox's folder down, one folder fd at a time: a
 * symlink is stored as a symlink and never followed, and nothing a
 * sandbox planted can make pincerd read outside its folder. libarchive's
 * own disk reader is not used for that walk: it fchdir()s, and the
 * working directory belongs to every thread of pincerd (state_dir may
 * be relative).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "pincer.h"

#define DEPTH_MAX	128		/* folders within folders */
#define LINKS_MAX	(1 << 20)	/* hard-linked files remembered */
#define IO_SIZE		(1 << 17)	/* half for xattr names, half values */

struct link {
	dev_t	 dev;
	ino_t	 ino;
	char	*path;		/* owned; NULL: a free slot */
};

struct pack {
	struct archive		*a;
	struct archive_entry	*e;
	const struct snap_ids	*ids;
	const bool		*cancel;
	struct snap_stats	*stats;
	char			 path[SNAP_PATH_MAX];
	struct link		*links;		/* open addressing, owned */
	size_t			 nlinks, caplinks;
	char			*io;		/* IO_SIZE, owned */
	char			*err;
	size_t			 errsz;
};

static int	 pack_one(struct pack *, int, const char *, size_t, int);
static int	 pack_dir(struct pack *, int, const char *, const struct stat *,
		    size_t, int);
static int	 pack_file(struct pack *, int, const char *,
		    const struct stat *);
static int	 pack_link(struct pack *, int, const char *,
		    const struct stat *);
static int	 header(struct pack *);
static int	 add_xattrs(struct pack *, int);
static const char *link_seen(struct pack *, const struct stat *);
static bool	 same(int, const struct stat *);
static long long inner(long long, long long, long long);
static int	 say(struct pack *, const char *, ...) PINCER_PRINTF(2, 3);

/* What a snapshot holds, in this order; root, work and run are rebuilt
 * at each start and hold nothing to keep. */
const char *const snap_parts[] = { "upper", "workspace", "data", NULL };

/*
 * Pack the parts under dirfd (the sandbox's folder) into out. Owners are
 * stored as inner ids (host id - ids' base), so the archive can be
 * restored into any sandbox's range.
 */
int
snap_pack(int dirfd, const struct snap_ids *ids, int out, int level,
    const bool *cancel, struct snap_stats *stats, char *err, size_t errsz)
{
	static const bool	 never;
	struct pack		 p;
	char			 lvl[16];
	size_t			 i;
	int			 rc = -1;

	memset(&p, 0, sizeof(p));
	memset(stats, 0, sizeof(*stats));
	p.ids = ids;
	p.cancel = cancel != NULL ? cancel : &never;
	p.stats = stats;
	p.err = err;
	p.errsz = errsz;
	snprintf(lvl, sizeof(lvl), "%d", level);
	if ((p.a = archive_write_new()) == NULL ||
	    (p.e = archive_entry_new()) == NULL ||
	    (p.io = malloc(IO_SIZE)) == NULL) {
		say(&p, "out of memory");
		goto out;
	}
	/* Names are stored as the bytes they are (hdrcharset BINARY): a
	 * sandbox's file names need not be UTF-8, nor pincerd's locale. */
	if (archive_write_add_filter_zstd(p.a) != ARCHIVE_OK ||
	    archive_write_set_filter_option(p.a, "zstd", "compression-level",
	    lvl) != ARCHIVE_OK ||
	    archive_write_set_format_pax_restricted(p.a) != ARCHIVE_OK ||
	    archive_write_set_format_option(p.a, "pax", "hdrcharset",
	    "BINARY") != ARCHIVE_OK ||
	    archive_write_open_fd(p.a, out) != ARCHIVE_OK) {
		say(&p, "cannot start the archive: %s",
		    archive_error_string(p.a));
		goto out;
	}
	for (i = 0; snap_parts[i] != NULL; i++)
		if (pack_one(&p, dirfd, snap_parts[i], 0, 0) == -1)
			goto out;
	if (archive_write_close(p.a) != ARCHIVE_OK) {
		say(&p, "cannot finish the archive: %s",
		    archive_error_string(p.a));
		goto out;
	}
	rc = 0;
out:
	if (p.a != NULL)
		archive_write_free(p.a);
	if (p.e != NULL)
		archive_entry_free(p.e);
	for (i = 0; i < p.caplinks; i++)
		free(p.links[i].path);
	free(p.links);
	free(p.io);
	return rc;
}

/* Only these extended attributes are kept (and restored): the user's
 * own, and the overlay's mark of a folder that hides the lower one. A
 * security.* or other trusted.* one is never written back by root. */
bool
snap_xattr_kept(const char *name)
{
	return !strncmp(name, "user.", 5) ||
	    !strcmp(name, "trusted.overlay.opaque");
}

/* name in dfd; the archive path so far is p->path[0..len). */
static int
pack_one(struct pack *p, int dfd, const char *name, size_t len, int depth)
{
	struct stat	 st;
	size_t		 n;

	if (__atomic_load_n(p->cancel, __ATOMIC_RELAXED))
		return say(p, "cancelled");
	n = (size_t)snprintf(p->path + len, sizeof(p->path) - len, "%s%s",
	    len > 0 ? "/" : "", name) + len;
	if (n >= sizeof(p->path))
		return say(p, "%.80s…: a path longer than %d bytes", p->path,
		    SNAP_PATH_MAX - 1);
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1) {
		if (errno == ENOENT)	/* a part never made, or gone */
			return 0;
		return say(p, "%s: %s", p->path, strerror(errno));
	}
	archive_entry_clear(p->e);
	archive_entry_copy_pathname(p->e, p->path);
	archive_entry_set_perm(p->e, st.st_mode & 07777);
	archive_entry_set_uid(p->e, inner(st.st_uid, p->ids->uid,
	    p->ids->count));
	archive_entry_set_gid(p->e, inner(st.st_gid, p->ids->gid,
	    p->ids->count));
	archive_entry_set_mtime(p->e, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	switch (st.st_mode & S_IFMT) {
	case S_IFDIR:
		return pack_dir(p, dfd, name, &st, n, depth);
	case S_IFREG:
		return pack_file(p, dfd, name, &st);
	case S_IFLNK:
		return pack_link(p, dfd, name, &st);
	case S_IFCHR:
		/* 0/0 is an overlay whiteout: the lower file it hides must
		 * stay hidden. No other device can be made in a sandbox. */
		if (st.st_rdev != 0)
			break;
		archive_entry_set_filetype(p->e, AE_IFCHR);
		archive_entry_set_rdev(p->e, 0);
		return header(p);
	case S_IFIFO:
		archive_entry_set_filetype(p->e, AE_IFIFO);
		return header(p);
	}
	/* Sockets die with their process; tar cannot hold them. */
	p->stats->skipped++;
	return 0;
}

static int
pack_dir(struct pack *p, int dfd, const char *name, const struct stat *st,
    size_t n, int depth)
{
	DIR		*d;
	struct dirent	*de;
	int		 fd, rc = 0;

	if (depth >= DEPTH_MAX)
		return say(p, "%s: folders nested deeper than %d are not "
		    "packed", p->path, DEPTH_MAX);
	if ((fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return say(p, "%s: %s", p->path, strerror(errno));
	if (!same(fd, st)) {
		close(fd);
		return say(p, "%s: it changed while it was packed", p->path);
	}
	archive_entry_set_filetype(p->e, AE_IFDIR);
	if (add_xattrs(p, fd) == -1 || header(p) == -1 ||
	    (d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	while (rc == 0 && (errno = 0, de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		rc = pack_one(p, dirfd(d), de->d_name, n, depth + 1);
		p->path[n] = '\0';
	}
	if (rc == 0 && errno != 0)
		rc = say(p, "%s: %s", p->path, strerror(errno));
	closedir(d);
	return rc;
}

static int
pack_file(struct pack *p, int dfd, const char *name, const struct stat *st)
{
	const char	*first;
	long long	 left = st->st_size;
	ssize_t		 n;
	int		 fd, rc = -1;

	archive_entry_set_filetype(p->e, AE_IFREG);
	if (st->st_nlink > 1 && (first = link_seen(p, st)) != NULL) {
		archive_entry_copy_hardlink(p->e, first);
		archive_entry_set_size(p->e, 0);
		return header(p);
	}
	/* O_NONBLOCK: should it have become a FIFO since, open must not
	 * wait for a writer (same() then refuses it). */
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC | O_NOATIME);
	if (fd == -1 && errno == EPERM)
		fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
		    O_CLOEXEC);
	if (fd == -1)
		return say(p, "%s: %s", p->path, strerror(errno));
	if (!same(fd, st)) {
		say(p, "%s: it changed while it was packed", p->path);
		goto out;
	}
	archive_entry_set_size(p->e, st->st_size);
	if (add_xattrs(p, fd) == -1 || header(p) == -1)
		goto out;
	while (left > 0) {
		if (__atomic_load_n(p->cancel, __ATOMIC_RELAXED)) {
			say(p, "cancelled");
			goto out;
		}
		n = read(fd, p->io, left < IO_SIZE ? (size_t)left : IO_SIZE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			say(p, "%s: %s", p->path, n < 0 ? strerror(errno) :
			    "it shrank while it was packed");
			goto out;
		}
		if (archive_write_data(p->a, p->io, (size_t)n) != n) {
			say(p, "%s: %s", p->path, archive_error_string(p->a));
			goto out;
		}
		left -= n;
	}
	p->stats->bytes += st->st_size;
	rc = 0;
out:
	close(fd);
	return rc;
}

static int
pack_link(struct pack *p, int dfd, const char *name, const struct stat *st)
{
	ssize_t	 n;

	n = readlinkat(dfd, name, p->io, SNAP_PATH_MAX);
	if (n < 0)
		return say(p, "%s: %s", p->path, strerror(errno));
	if (n >= SNAP_PATH_MAX)
		return say(p, "%s: a link longer than %d bytes", p->path,
		    SNAP_PATH_MAX - 1);
	p->io[n] = '\0';
	archive_entry_set_filetype(p->e, AE_IFLNK);
	archive_entry_copy_symlink(p->e, p->io);
	return header(p);
}

static int
header(struct pack *p)
{
	/* ARCHIVE_WARN is a name it could not translate: kept as bytes. */
	if (archive_write_header(p->a, p->e) < ARCHIVE_WARN)
		return say(p, "%s: %s", p->path, archive_error_string(p->a));
	p->stats->files++;
	return 0;
}

static int
add_xattrs(struct pack *p, int fd)
{
	char		*names = p->io, *val = p->io + IO_SIZE / 2, *k;
	ssize_t		 n, v;

	if ((n = flistxattr(fd, names, IO_SIZE / 2)) == -1)
		return errno == ENOTSUP ? 0 : say(p, "%s: extended "
		    "attributes: %s", p->path, strerror(errno));
	for (k = names; k < names + n; k += strlen(k) + 1) {
		if (!snap_xattr_kept(k))
			continue;
		if ((v = fgetxattr(fd, k, val, IO_SIZE / 2)) == -1) {
			if (errno == ENODATA)
				continue;
			return say(p, "%s: %s: %s", p->path, k,
			    strerror(errno));
		}
		archive_entry_xattr_add_entry(p->e, k, val, (size_t)v);
	}
	return 0;
}

/*
 * The archive path this file was first packed under, if it is a hard
 * link of one seen before; otherwise remembered (while there is room)
 * and NULL. A full table only costs the link: the copy is still right.
 */
static const char *
link_seen(struct pack *p, const struct stat *st)
{
	struct link	*l, *old = p->links;
	size_t		 i, h, oldcap = p->caplinks;

	if (p->nlinks * 2 >= p->caplinks) {
		if (p->caplinks >= LINKS_MAX * 2)
			return NULL;
		p->caplinks = p->caplinks ? p->caplinks * 2 : 1024;
		if ((p->links = calloc(p->caplinks, sizeof(*l))) == NULL) {
			p->links = old;
			p->caplinks = oldcap;
			return NULL;
		}
		for (i = 0; i < oldcap; i++) {
			if (old[i].path == NULL)
				continue;
			h = (old[i].ino * 31 + old[i].dev) % p->caplinks;
			while (p->links[h].path != NULL)
				h = (h + 1) % p->caplinks;
			p->links[h] = old[i];
		}
		free(old);
	}
	h = (st->st_ino * 31 + st->st_dev) % p->caplinks;
	for (; (l = &p->links[h])->path != NULL; h = (h + 1) % p->caplinks)
		if (l->ino == st->st_ino && l->dev == st->st_dev)
			return l->path;
	if ((l->path = strdup(p->path)) != NULL) {
		l->dev = st->st_dev;
		l->ino = st->st_ino;
		p->nlinks++;
	}
	return NULL;
}

/* What was opened is what was looked at (nothing swapped it since). */
static bool
same(int fd, const struct stat *st)
{
	struct stat	 now;

	return fstat(fd, &now) == 0 && now.st_dev == st->st_dev &&
	    now.st_ino == st->st_ino &&
	    (now.st_mode & S_IFMT) == (st->st_mode & S_IFMT);
}

/* A host id as the sandbox sees it; outside its range, "nobody", as the
 * kernel shows an unmapped id inside. */
static long long
inner(long long host, long long base, long long count)
{
	return host >= base && host - base < count ? host - base :
	    SNAP_NOBODY;
}

static int
say(struct pack *p, const char *f, ...)
{
	va_list	 ap;

	va_start(ap, f);
	vsnprintf(p->err, p->errsz, f, ap);
	va_end(ap);
	return -1;
}
