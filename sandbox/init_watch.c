/* SPDX-License-Identifier: MIT */
/*
 * init_watch.c: GET /watch, the changes under a folder as SSE. Each
 * stream owns one inotify instance in the loop; a recursive stream walks
 * the tree at start and follows folders as they come and go.
 */
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "init.h"

#define WATCH_MAX	8192		/* inotify watches (folders) a stream */
#define WATCH_PATS	32		/* globs of each kind */
#define WATCH_HIGH	(512 * 1024)	/* queued SSE bytes: stop reading */
#define WATCH_BUF	(64 * 1024)	/* one read of inotify events */
#define WATCH_READS	8		/* reads per wake-up, then the loop */
#define WATCH_RECENT	8		/* modify events coalesced per burst */

/*
 * "modify" is IN_CLOSE_WRITE, not IN_MODIFY. IN_MODIFY fires on every
 * write(2), thousands for one large copy, and each tells of a file that
 * is still half written; IN_CLOSE_WRITE fires once per writer, when the
 * bytes are whole, which is what a client reloading a file wants. What
 * it misses: a writer that keeps the file open (a log) is told of when it
 * closes, and writes through mmap not at all.
 */
#define WATCH_MASK	(IN_CREATE | IN_CLOSE_WRITE | IN_DELETE | \
	IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | \
	IN_ONLYDIR | IN_EXCL_UNLINK)

struct wstream {
	struct conn	*c;
	int		 ifd;		/* the inotify instance, in the loop */
	char		 root[PATH_MAX];	/* no trailing '/' but "/" */
	bool		 recursive;
	char		*incl[WATCH_PATS];	/* owned */
	char		*excl[WATCH_PATS];	/* owned */
	size_t		 nincl, nexcl;
	struct wpath_tab tab;		/* folders by wd */
	bool		 ready;		/* the ready event went out */
	bool		 full;		/* WATCH_MAX or the kernel limit hit */
	bool		 full_told;
	bool		 paused;	/* not reading: the client is behind */
	bool		 overflow;	/* events were lost: say so on drain */
	bool		 ended;
	char		*buf;		/* WATCH_BUF, owned */
	size_t		 off, len;	/* events read, not yet handled */
	char		*recent[WATCH_RECENT];	/* owned; see watch_modify */
	size_t		 nrecent;
};

static int	watch_args(struct conn *, struct wstream *);
static int	watch_globs(struct conn *, const char *, char **, size_t *);
static int	watch_root(struct conn *, struct wstream *, const char *);
static void	watch_free(struct wstream *);
static void	watch_closed(struct conn *, void *);
static void	watch_drained(struct conn *, void *);
static void	watch_io(void *, uint32_t);
static void	watch_run(struct wstream *);
static void	watch_event(struct wstream *, const struct inotify_event *);
static void	watch_modify(struct wstream *, const char *);
static void	watch_emit(struct wstream *, const char *, const char *,
		    bool);
static void	watch_end(struct wstream *, const char *);
static void	watch_tell_full(struct wstream *);
static bool	watch_wanted(const struct wstream *, const char *);
static bool	watch_excluded(const struct wstream *, const char *);
static int	watch_path(const struct wstream *, const char *, char *);
static void	watch_tree(struct wstream *, const char *, bool);
static void	watch_scan(struct wstream *, struct wpath_queue *,
		    const char *, bool);
static int	watch_add(struct wstream *, const char *);
static void	watch_drop(struct wstream *, const char *);

void
watch_handle(struct conn *c, const struct req *r)
{
	struct wstream	*s;

	(void)r;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		http_error(c, 500, "internal", "out of memory");
		return;
	}
	s->c = c;
	s->ifd = -1;
	if (watch_args(c, s) == -1)
		goto fail;
	if ((s->buf = malloc(WATCH_BUF)) == NULL ||
	    (s->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1) {
		http_error(c, 500, "internal", "inotify: %s", strerror(errno));
		goto fail;
	}
	if (watch_root(c, s, s->root) == -1)
		goto fail;
	if (loop_add(s->ifd, EPOLLIN, watch_io, s) == -1) {
		http_error(c, 500, "internal", "loop: %s", strerror(errno));
		goto fail;
	}
	sse_start(c);
	conn_on_close(c, watch_closed, s);
	conn_on_drain(c, watch_drained, s);
	/* Every folder is watched before "ready": nothing after it is lost. */
	if (s->recursive)
		watch_tree(s, "", false);
	s->ready = true;
	sse_event(c, "ready", json_pack("{s:o,s:I}", "path",
	    text_jstr(s->root, strlen(s->root)), "watches",
	    (json_int_t)s->tab.count));
	watch_tell_full(s);
	return;
fail:
	watch_free(s);
}

/* --- the request -------------------------------------------------------- */

static int
watch_args(struct conn *c, struct wstream *s)
{
	const char	*path, *rec;
	size_t		 len;

	if ((path = req_query(c, "path", 0)) == NULL)
		path = "/workspace";
	len = strlen(path);
	if (path[0] != '/' || len >= sizeof(s->root)) {
		http_error(c, 400, "bad_request", "path: an absolute path");
		return -1;
	}
	memcpy(s->root, path, len + 1);
	while (len > 1 && s->root[len - 1] == '/')
		s->root[--len] = '\0';
	rec = req_query(c, "recursive", 0);
	if (rec == NULL || !strcmp(rec, "1") || !strcmp(rec, "true"))
		s->recursive = true;
	else if (strcmp(rec, "0") != 0 && strcmp(rec, "false") != 0) {
		http_error(c, 400, "bad_request", "recursive: 0 or 1");
		return -1;
	}
	if (watch_globs(c, "include", s->incl, &s->nincl) == -1 ||
	    watch_globs(c, "exclude", s->excl, &s->nexcl) == -1)
		return -1;
	return 0;
}

static int
watch_globs(struct conn *c, const char *name, char **v, size_t *n)
{
	const char	*g;

	while ((g = req_query(c, name, (int)*n)) != NULL) {
		if (*n == WATCH_PATS || *g == '\0' || strlen(g) >= PATH_MAX) {
			http_error(c, 400, "bad_request", "%s: at most %d "
			    "globs, none empty", name, WATCH_PATS);
			return -1;
		}
		if ((v[*n] = strdup(g)) == NULL) {
			http_error(c, 500, "internal", "out of memory");
			return -1;
		}
		(*n)++;
	}
	return 0;
}

/* The root may be a symlink (to a folder): the client named it. */
static int
watch_root(struct conn *c, struct wstream *s, const char *path)
{
	struct stat	 st;
	int		 wd;

	if (stat(path, &st) == -1) {
		if (errno == ENOENT || errno == ENOTDIR)
			http_error(c, 404, "not_found", "%s: no such folder",
			    path);
		else
			http_error(c, 400, "bad_request", "%s: %s", path,
			    strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		http_error(c, 400, "bad_request", "%s: not a folder", path);
		return -1;
	}
	if ((wd = inotify_add_watch(s->ifd, path, WATCH_MASK)) == -1 ||
	    wpath_put(&s->tab, wd, "") == -1) {
		http_error(c, 500, "internal", "watch %s: %s", path,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* Closing the inotify instance drops every watch it holds. */
static void
watch_free(struct wstream *s)
{
	size_t	 i;

	if (s->ifd != -1) {
		loop_del(s->ifd);
		close(s->ifd);
	}
	for (i = 0; i < s->nincl; i++)
		free(s->incl[i]);
	for (i = 0; i < s->nexcl; i++)
		free(s->excl[i]);
	for (i = 0; i < s->nrecent; i++)
		free(s->recent[i]);
	wpath_clear(&s->tab);
	free(s->buf);
	free(s);
}

static void
watch_closed(struct conn *c, void *arg)
{
	(void)c;
	watch_free(arg);
}

/* The client caught up: tell it what was lost, then read on. */
static void
watch_drained(struct conn *c, void *arg)
{
	struct wstream	*s = arg;

	(void)c;
	if (s->ended || !s->paused)
		return;
	if (s->overflow && sse_event(s->c, "overflow",
	    json_object()) == 0)
		s->overflow = false;
	s->paused = false;
	if (loop_add(s->ifd, EPOLLIN, watch_io, s) == -1) {
		watch_end(s, "the loop is full");
		return;
	}
	watch_run(s);
}

/* --- events ------------------------------------------------------------- */

static void
watch_io(void *arg, uint32_t events)
{
	(void)events;
	watch_run(arg);
}

/*
 * Hands out what was read, then reads more. Behind a slow client it stops
 * where it is and leaves the inotify fd out of the loop: the kernel keeps
 * queueing (up to fs.inotify.max_queued_events), and past that says
 * IN_Q_OVERFLOW, which the client gets as an "overflow" event. So the
 * queue here never grows beyond WATCH_HIGH and one event.
 */
static void
watch_run(struct wstream *s)
{
	const struct inotify_event	*ev;
	ssize_t				 n;
	size_t				 i;
	int				 reads = 0;

	for (;;) {
		while (s->off < s->len) {
			if (conn_backlog(s->c) > WATCH_HIGH) {
				s->paused = true;
				loop_del(s->ifd);
				return;
			}
			ev = (const void *)(s->buf + s->off);
			if (s->len - s->off < sizeof(*ev) || ev->len >
			    s->len - s->off - sizeof(*ev)) {
				watch_end(s, "inotify: a short event");
				return;
			}
			s->off += sizeof(*ev) + ev->len;
			watch_event(s, ev);
			if (s->ended)
				return;
		}
		if (reads++ == WATCH_READS)
			return;
		n = read(s->ifd, s->buf, WATCH_BUF);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			watch_end(s, "inotify: read failed");
			return;
		}
		s->off = 0;
		s->len = (size_t)n;
		for (i = 0; i < s->nrecent; i++)
			free(s->recent[i]);
		s->nrecent = 0;
	}
}

static void
watch_event(struct wstream *s, const struct inotify_event *ev)
{
	struct wpath_ent	*e;
	char			 rel[PATH_MAX];
	bool			 dir = (ev->mask & IN_ISDIR) != 0;

	if (ev->mask & IN_Q_OVERFLOW) {
		if (sse_event(s->c, "overflow", json_object()) == -1)
			s->overflow = true;
		return;
	}
	if ((e = wpath_find(&s->tab, ev->wd)) == NULL)
		return;			/* a watch dropped since */
	if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
		/* Below the root, the parent's event told of it already. */
		if (e->rel[0] == '\0')
			watch_end(s, "the folder was removed or moved");
		else if (ev->mask & IN_IGNORED)
			wpath_del(&s->tab, ev->wd);
		return;
	}
	if (ev->len == 0 || wpath_join(rel, e->rel, ev->name) == -1)
		return;
	if (ev->mask & IN_CREATE) {
		watch_emit(s, "create", rel, dir);
		if (dir && s->recursive && !watch_excluded(s, rel))
			watch_tree(s, rel, true);
	} else if (ev->mask & IN_CLOSE_WRITE)
		watch_modify(s, rel);
	else if (ev->mask & IN_DELETE) {
		watch_emit(s, "delete", rel, dir);
		if (dir)
			watch_drop(s, rel);
	} else if (ev->mask & IN_MOVED_FROM) {
		watch_emit(s, "move_from", rel, dir);
		if (dir)
			watch_drop(s, rel);
	} else if (ev->mask & IN_MOVED_TO) {
		watch_emit(s, "move_to", rel, dir);
		if (dir && s->recursive && !watch_excluded(s, rel))
			watch_tree(s, rel, false);
	}
}

/*
 * A burst of writes (a build, a formatter over many files) closes the
 * same file many times in one read of events. The kernel merges only
 * identical events back to back; here a file already told of as
 * modified in this read is not told again unless some other kind of
 * event came between. What the client gets is one "modify" per file per
 * burst, in first-change order.
 */
static void
watch_modify(struct wstream *s, const char *rel)
{
	size_t	 i;

	for (i = 0; i < s->nrecent; i++)
		if (!strcmp(s->recent[i], rel))
			return;
	if (s->nrecent < WATCH_RECENT &&
	    (s->recent[s->nrecent] = strdup(rel)) != NULL)
		s->nrecent++;
	watch_emit(s, "modify", rel, false);
}

/* A change event, if the filters let it through and the client keeps up. */
static void
watch_emit(struct wstream *s, const char *type, const char *rel, bool dir)
{
	char	 full[PATH_MAX];
	size_t	 i;

	if (strcmp(type, "modify") != 0) {
		for (i = 0; i < s->nrecent; i++)
			free(s->recent[i]);
		s->nrecent = 0;
	}
	if (!watch_wanted(s, rel) || watch_path(s, rel, full) == -1)
		return;
	if (conn_backlog(s->c) > WATCH_HIGH) {
		s->overflow = true;
		return;
	}
	if (sse_event(s->c, "change", json_pack("{s:s,s:o,s:b}", "type",
	    type, "path", text_jstr(full, strlen(full)), "is_dir", dir)) == -1)
		s->overflow = true;
}

/* An "error" event, then the stream ends; the close frees it. */
static void
watch_end(struct wstream *s, const char *why)
{
	if (s->ended)
		return;
	s->ended = true;
	loop_del(s->ifd);
	sse_event(s->c, "error", json_pack("{s:s}", "message", why));
	conn_end(s->c);
}

static void
watch_tell_full(struct wstream *s)
{
	if (!s->full || s->full_told || !s->ready)
		return;
	s->full_told = true;
	sse_event(s->c, "error", json_pack("{s:s,s:i}", "message",
	    "too many folders: the deeper ones are not watched", "watches",
	    WATCH_MAX));
}

/* --- filters ------------------------------------------------------------ */

/* Spec: some include (or none given) matches, and no exclude does. */
static bool
watch_wanted(const struct wstream *s, const char *rel)
{
	if (s->nincl > 0 && !wpath_match(s->incl, s->nincl, rel))
		return false;
	return !watch_excluded(s, rel);
}

static bool
watch_excluded(const struct wstream *s, const char *rel)
{
	return s->nexcl > 0 && wpath_match(s->excl, s->nexcl, rel);
}

/* --- paths -------------------------------------------------------------- */

/* The full path of rel into out (PATH_MAX); -1 when too long. */
static int
watch_path(const struct wstream *s, const char *rel, char *out)
{
	int	 n;

	if (rel[0] == '\0')
		n = snprintf(out, PATH_MAX, "%s", s->root);
	else
		n = snprintf(out, PATH_MAX, "%s/%s",
		    strcmp(s->root, "/") ? s->root : "", rel);
	return n < 0 || n >= PATH_MAX ? -1 : 0;
}

/* --- the tree ----------------------------------------------------------- */

/*
 * Watches top and every folder below, breadth first, each watch added
 * before its folder is read so that nothing made meanwhile is missed.
 * With synth (a folder just made), what is already inside is told as
 * "create": it came after the client's ready. It may then be told twice,
 * by the scan and by the new watch; a client must take "create" as "is
 * there now". Bounded: no more folders are queued than can be watched.
 */
static void
watch_tree(struct wstream *s, const char *top, bool synth)
{
	struct wpath_queue	 q;
	char			*rel;

	memset(&q, 0, sizeof(q));
	if (top[0] != '\0' && watch_add(s, top) == -1)
		goto done;
	if (wpath_push(&q, top) == -1)
		goto done;
	while (q.head < q.n) {
		rel = q.v[q.head];
		q.v[q.head++] = NULL;
		watch_scan(s, &q, rel, synth);
		free(rel);
	}
done:
	while (q.head < q.n)
		free(q.v[q.head++]);
	free(q.v);
	watch_tell_full(s);
}

static void
watch_scan(struct wstream *s, struct wpath_queue *q, const char *rel,
    bool synth)
{
	struct dirent	*de;
	struct stat	 st;
	char		 full[PATH_MAX], sub[PATH_MAX];
	DIR		*d;
	bool		 dir;
	int		 fd;

	if (watch_path(s, rel, full) == -1 || (fd = open(full, O_RDONLY |
	    O_DIRECTORY | O_CLOEXEC | (rel[0] ? O_NOFOLLOW : 0))) == -1)
		return;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    wpath_join(sub, rel, de->d_name) == -1 ||
		    watch_excluded(s, sub))
			continue;
		dir = de->d_type == DT_DIR;
		if (de->d_type == DT_UNKNOWN && fstatat(fd, de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) == 0)
			dir = S_ISDIR(st.st_mode);
		if (synth)
			watch_emit(s, "create", sub, dir);
		if (dir && watch_add(s, sub) == 0 && wpath_push(q, sub) == -1)
			break;
	}
	closedir(d);
}

/* A folder below the root: never through a symlink (IN_DONT_FOLLOW). */
static int
watch_add(struct wstream *s, const char *rel)
{
	char	 full[PATH_MAX];
	int	 wd;

	if (s->tab.count >= WATCH_MAX) {
		s->full = true;
		return -1;
	}
	if (watch_path(s, rel, full) == -1)
		return -1;
	if ((wd = inotify_add_watch(s->ifd, full, WATCH_MASK |
	    IN_DONT_FOLLOW)) == -1) {
		/* ENOSPC: the kernel's fs.inotify.max_user_watches. */
		if (errno == ENOSPC)
			s->full = true;
		return -1;
	}
	if (wpath_put(&s->tab, wd, rel) == -1) {
		(void)inotify_rm_watch(s->ifd, wd);
		return -1;
	}
	return 0;
}

/*
 * A folder deleted or moved away: its watch and those below go. One
 * moved within the tree comes back under its new name with IN_MOVED_TO.
 */
static void
watch_drop(struct wstream *s, const char *rel)
{
	struct wpath_ent	*e;
	size_t			 i, n = 0, len = strlen(rel);
	int			*wds;

	if ((wds = calloc(s->tab.count + 1, sizeof(*wds))) == NULL)
		return;
	for (i = 0; i < s->tab.cap; i++) {
		e = &s->tab.ent[i];
		if (e->wd == 0 || strncmp(e->rel, rel, len) ||
		    (e->rel[len] != '\0' && e->rel[len] != '/'))
			continue;
		wds[n++] = e->wd;
	}
	for (i = 0; i < n; i++) {
		(void)inotify_rm_watch(s->ifd, wds[i]);
		wpath_del(&s->tab, wds[i]);
	}
	free(wds);
}
