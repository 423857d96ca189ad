/* SPDX-License-Identifier: MIT */
/*
 * objstore_sync.c: each sandbox's /data kept in the object store (README,
 * Persistent /data). The store holds, per sandbox,
 *   data/NAME/manifest.json   every path with its entry (objstore_tree.c)
 *   data/NAME/blobs/SHA256    file contents, by hash
 * and the host keeps STATE/sandboxes/NAME/sync/state.json: the manifest as
 * last synced, the manifest's ETag then, and the scan's hash cache.
 *
 * A sync is a three-way merge of that base, the folder and the store's
 * manifest: what changed on one side only goes to the other; what changed
 * on both keeps both (the older renamed NAME.conflict-MACHINE-TIME). Blobs
 * go up before the manifest that names them, and old blobs are deleted only
 * after it: a crash at any point leaves the store's manifest whole, naming
 * blobs that exist. A sync that was cut short is noticed (the state says
 * "busy") and the next one sweeps the blobs it left behind.
 *
 * When: on inotify events, after debounce_ms of quiet (at most max_delay_ms
 * after the first); on a timer (scan_s) in case events were lost; when a
 * sandbox goes to sleep, and at shutdown, a final one; before a sleeping
 * sandbox starts, a pull when the store has a newer manifest (or this
 * machine has none: a new machine gets the data back).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pincer.h"

#define MANIFEST_MAX	(256L << 20)
#define CONFLICTS_KEPT	20
#define WATCH_MASK	(IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | \
			 IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | \
			 IN_ONLYDIR | IN_EXCL_UNLINK)

struct box {
	char		 name[SBX_NAME_MAX + 1];
	pthread_mutex_t	 run;		/* one sync at a time */
	/* The rest under mu. */
	bool		 watched;	/* running: inotify on its folder */
	bool		 armed;		/* the watches are in place */
	bool		 dirty, final, gone;
	bool		 stop_done;	/* its last try at shutdown was made */
	uint64_t	 first_dirty, last_event;
	uint64_t	 retry_at;	/* after a failure: not before */
	int		 fails;
	bool		 syncing;
	long long	 last_try, last_ok;	/* unix ms */
	char		 error[256];
	long		 pending;	/* events since the last sync */
	long		 files;
	long long	 bytes, up, down, removed, up_bytes, down_bytes;
	long		 nconflicts;
	json_t		*conflicts;	/* the latest CONFLICTS_KEPT */
	char		 etag[80];
	struct box	*next;
};

struct watch {
	int		 wd;
	struct box	*b;
	char		*rel;
};

/* What one sync does; filled by the merge, done by apply. */
struct plan {
	json_t		*next;		/* the new entries */
	json_t		*install;	/* path -> entry, to the folder */
	json_t		*remove;	/* path -> entry, from the folder */
	json_t		*renames;	/* [from, to] */
	json_t		*conflicts;	/* reports */
};

static int	 sync_box(struct box *, char *);
static void	*sync_main(void *);
static struct box *box_get(const char *, bool);
static void	 box_paths(const struct box *, char *, size_t, char *, size_t);
static json_t	*load_state(const char *);
static int	 save_state(const char *, json_t *);
static bool	 same(json_t *, json_t *);
static bool	 manifest_ok(json_t *, char *);
static void	 merge(json_t *, json_t *, json_t *, const char *,
		    struct plan *);
static int	 apply(const struct tree *, struct plan *, const char *,
		    json_t *, json_t *, char *);
static int	 upload(struct box *, const struct tree *, json_t *, json_t *,
		    json_t *, const char *, bool *, char *);
static void	 gc(struct box *, json_t *, json_t *, json_t *, bool);
static bool	 watch_tree(struct box *, const char *, int);
static int	 count_slashes(const char *);
static void	 unwatch(struct box *);
static void	 events(void);
static void	 wake(void);
static unsigned	 uid_base(const char *, const char *);

static pthread_mutex_t	 mu = PTHREAD_MUTEX_INITIALIZER;
static struct box	*boxes;
static struct watch	*watches;
static size_t		 nwatches, capwatches;
static struct objstore	*os;
static pthread_t	 thread;
static bool		 started, stopping;
static bool		 shutting;	/* sbx.c is letting go of its list */
static int		 ifd = -1, efd = -1;
static char		 root[4096];	/* STATE/sandboxes */
static char		 machine[64];
static long		 debounce_ms, max_delay_ms, scan_ms;
static long long	 max_file;

int
objstore_sync_start(const struct config *c, struct objstore *store)
{
	DIR		*d;
	struct dirent	*e;
	struct box	*b;

	os = store;
	debounce_ms = c->sync_debounce_ms;
	max_delay_ms = c->sync_max_delay_ms;
	scan_ms = c->sync_scan_s * 1000;
	max_file = (long long)c->sync_max_file_mb << 20;
	snprintf(root, sizeof(root), "%s/sandboxes", c->state_dir);
	if (gethostname(machine, sizeof(machine) - 1) == -1)
		snprintf(machine, sizeof(machine), "host");
	machine[strcspn(machine, "./ ")] = '\0';
	if (os == NULL || !c->sync_enabled) {
		log_info("/data sync is off", "why=\"%s\"", os == NULL ?
		    "objstore.backend off" : "sync.enabled false");
		os = NULL;
		return 0;
	}
	if ((ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1)
		log_warn("no inotify: /data is synced on the timer only",
		    "error=\"%s\" every_s=%ld", strerror(errno),
		    c->sync_scan_s);
	if ((efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		return -1;
	/* Whatever a crash or a stop left unsynced goes up now. */
	if ((d = opendir(root)) != NULL) {
		while ((e = readdir(d)) != NULL)
			if (sbx_name_valid(e->d_name) &&
			    (b = box_get(e->d_name, true)) != NULL) {
				b->dirty = true;
				b->first_dirty = b->last_event = 0;
			}
		closedir(d);
	}
	if (pthread_create(&thread, NULL, sync_main, NULL) != 0)
		return -1;
	started = true;
	log_info("/data sync on", "store=\"%s\"", os->where);
	return 0;
}

/* Before sbx_shutdown: the sandboxes it forgets still get their final
 * syncs (a sync otherwise skips a sandbox sbx.c does not know). */
void
objstore_sync_shutting(void)
{
	pthread_mutex_lock(&mu);
	shutting = true;
	pthread_mutex_unlock(&mu);
}

/* After the sandboxes have stopped: their final syncs, then the end. */
void
objstore_sync_stop(void)
{
	struct box	*b, *n;

	if (started) {
		pthread_mutex_lock(&mu);
		stopping = true;
		pthread_mutex_unlock(&mu);
		wake();
		pthread_join(thread, NULL);
		started = false;
	}
	for (b = boxes; b != NULL; b = n) {
		n = b->next;
		json_decref(b->conflicts);
		pthread_mutex_destroy(&b->run);
		free(b);
	}
	boxes = NULL;
	while (nwatches > 0)
		free(watches[--nwatches].rel);
	free(watches);
	watches = NULL;
	capwatches = 0;
	if (ifd != -1)
		close(ifd);
	if (efd != -1)
		close(efd);
	ifd = efd = -1;
}

static void
wake(void)
{
	uint64_t	 one = 1;

	if (efd != -1 && write(efd, &one, sizeof(one)) < 0)
		(void)0;	/* already pending */
}

/* mu held, or before the thread. */
static struct box *
box_get(const char *name, bool make)
{
	struct box	*b;

	for (b = boxes; b != NULL; b = b->next)
		if (!strcmp(b->name, name))
			return b;
	if (!make || (b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	snprintf(b->name, sizeof(b->name), "%s", name);
	pthread_mutex_init(&b->run, NULL);
	b->conflicts = json_array();
	b->next = boxes;
	boxes = b;
	return b;
}

static void
box_paths(const struct box *b, char *data, size_t datasz, char *sync,
    size_t syncsz)
{
	snprintf(data, datasz, "%s/%s/data", root, b->name);
	snprintf(sync, syncsz, "%s/%s/sync", root, b->name);
}

/* sbx.c: a sandbox started; its folder is watched from now on. */
void
objstore_sync_started(const char *name)
{
	struct box	*b;

	if (os == NULL)
		return;
	pthread_mutex_lock(&mu);
	if ((b = box_get(name, true)) != NULL)
		b->watched = true;	/* the thread adds the watches */
	pthread_mutex_unlock(&mu);
	wake();
}

/* sbx.c: a sandbox went to sleep: a final sync, now. */
void
objstore_sync_stopped(const char *name)
{
	struct box	*b;

	if (os == NULL)
		return;
	pthread_mutex_lock(&mu);
	if ((b = box_get(name, true)) != NULL) {
		b->dirty = b->final = true;
		b->watched = false;	/* unwatched after the final sync */
		b->first_dirty = b->last_event = 0;
	}
	pthread_mutex_unlock(&mu);
	wake();
}

/*
 * sbx.c, before its folder is removed: no sync runs on it until
 * objstore_sync_forgotten, after the removal (a sync of a half-removed
 * folder would take the missing files for deletions).
 */
void
objstore_sync_forget(const char *name)
{
	struct box	*b;
	char		 err[OS_ERR];

	if (os == NULL)
		return;
	pthread_mutex_lock(&mu);
	b = box_get(name, true);
	pthread_mutex_unlock(&mu);
	if (b == NULL)
		return;
	/* It is asleep: what its last moments wrote goes up first. */
	if (sync_box(b, err) == -1)
		log_warn("/data not synced before the sandbox was destroyed",
		    "sandbox=%s error=\"%s\"", name, err);
	pthread_mutex_lock(&b->run);
	pthread_mutex_lock(&mu);
	unwatch(b);
	b->watched = b->armed = b->dirty = b->final = false;
	b->gone = true;
	b->etag[0] = '\0';
	pthread_mutex_unlock(&mu);
}

void
objstore_sync_forgotten(const char *name)
{
	struct box	*b;

	if (os == NULL)
		return;
	pthread_mutex_lock(&mu);
	b = box_get(name, false);
	if (b != NULL)
		b->gone = false;	/* a sandbox of that name may come */
	pthread_mutex_unlock(&mu);
	if (b != NULL)
		pthread_mutex_unlock(&b->run);
}

/*
 * sbx.c, before a sleeping sandbox starts (never with its lock held): the
 * store's newer state comes down first. A store that cannot be reached
 * does not keep the sandbox from starting: nothing of the store's is
 * deleted by a later sync that never saw it (the merge keeps both).
 */
void
objstore_sync_wake(const char *name)
{
	struct box	*b;
	char		 err[256];

	if (os == NULL)
		return;
	pthread_mutex_lock(&mu);
	b = box_get(name, true);
	pthread_mutex_unlock(&mu);
	if (b != NULL && sync_box(b, err) == -1)
		log_warn("/data not brought up to date before start",
		    "sandbox=%s error=\"%s\"", name, err);
}

/* POST …/sync: one now, whatever the timers say; the status after. */
json_t *
objstore_sync_now(const char *name, char *err, size_t errsz)
{
	struct box	*b;
	char		 e[256];

	if (os == NULL) {
		snprintf(err, errsz, "sync is off (objstore.backend off or "
		    "sync.enabled false)");
		return NULL;
	}
	pthread_mutex_lock(&mu);
	b = box_get(name, true);
	pthread_mutex_unlock(&mu);
	if (b == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	(void)sync_box(b, e);	/* the status carries the error */
	return objstore_sync_status(name);
}

json_t *
objstore_sync_status(const char *name)
{
	struct box	*b;
	json_t		*o;
	const char	*state;

	if (os == NULL)
		return json_pack("{ss}", "state", "off");
	pthread_mutex_lock(&mu);
	if ((b = box_get(name, true)) == NULL) {
		pthread_mutex_unlock(&mu);
		return NULL;
	}
	/* An error stays in sight until a sync succeeds, changes waiting
	 * or not (a store that is down keeps them waiting). */
	state = b->syncing ? "syncing" : b->error[0] != '\0' ? "error" :
	    b->dirty ? "pending" : b->last_ok != 0 ? "synced" : "never";
	/* A copy: the reply is written after mu is let go. */
	o = json_pack("{ss ss ss sI sI sI sI sI sI sI sI sI sI sb so}",
	    "state", state, "store", os->where,
	    "error", b->error, "last_try_ms", (json_int_t)b->last_try,
	    "last_ok_ms", (json_int_t)b->last_ok,
	    "pending_changes", (json_int_t)b->pending,
	    "files", (json_int_t)b->files, "bytes", (json_int_t)b->bytes,
	    "uploaded", (json_int_t)b->up,
	    "uploaded_bytes", (json_int_t)b->up_bytes,
	    "downloaded", (json_int_t)b->down,
	    "downloaded_bytes", (json_int_t)b->down_bytes,
	    "removed", (json_int_t)b->removed, "watched", b->watched,
	    "conflicts", json_deep_copy(b->conflicts));
	json_object_set_new(o, "conflicts_total",
	    json_integer(b->nconflicts));
	pthread_mutex_unlock(&mu);
	return o;
}

static json_t *
load_state(const char *dir)
{
	char		 path[4300];
	json_t		*s;

	snprintf(path, sizeof(path), "%s/state.json", dir);
	if ((s = json_load_file(path, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
	    !json_is_object(json_object_get(s, "entries"))) {
		json_decref(s);
		return NULL;
	}
	return s;
}

/* Written beside, synced, renamed: the state is old or new, never torn. */
static int
save_state(const char *dir, json_t *s)
{
	char	 path[4300], tmp[4300];
	int	 fd;

	snprintf(path, sizeof(path), "%s/state.json", dir);
	snprintf(tmp, sizeof(tmp), "%s/state.json.tmp", dir);
	if (json_dump_file(s, tmp, JSON_COMPACT) == -1)
		return -1;
	if ((fd = open(tmp, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	if (fsync(fd) == -1) {
		close(fd);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) == -1)
		return -1;
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		(void)fsync(fd);
		close(fd);
	}
	return 0;
}

static bool
str_eq(json_t *a, json_t *b, const char *k)
{
	const char	*x = json_string_value(json_object_get(a, k));
	const char	*y = json_string_value(json_object_get(b, k));

	return (x == NULL && y == NULL) || (x != NULL && y != NULL &&
	    !strcmp(x, y));
}

static bool
int_eq(json_t *a, json_t *b, const char *k)
{
	return json_integer_value(json_object_get(a, k)) ==
	    json_integer_value(json_object_get(b, k));
}

/* The same content: what a sync moves (times alone do not count). */
static bool
same(json_t *a, json_t *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	if (json_object_get(a, "d") != NULL || json_object_get(b, "d") != NULL)
		return json_object_get(a, "d") != NULL &&
		    json_object_get(b, "d") != NULL && int_eq(a, b, "m") &&
		    int_eq(a, b, "u") && int_eq(a, b, "g");
	if (json_object_get(a, "l") != NULL || json_object_get(b, "l") != NULL)
		return str_eq(a, b, "l");
	return str_eq(a, b, "h") && int_eq(a, b, "m") && int_eq(a, b, "u") &&
	    int_eq(a, b, "g");
}

static bool
is_dir(json_t *e)
{
	return e != NULL && json_object_get(e, "d") != NULL;
}

static double
mtime(json_t *e)
{
	return (double)json_integer_value(json_object_get(e, "t")) +
	    (double)json_integer_value(json_object_get(e, "n")) / 1e9;
}

/* "a/b.txt" -> "a/b.txt.conflict-HOST-20261202-142233", free in next. */
static void
conflict_name(json_t *next, const char *path, const char *who,
    double when, char *out, size_t outsz)
{
	time_t		 t = (time_t)when;
	struct tm	 tm;
	char		 stamp[32];
	int		 i;

	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", gmtime_r(&t, &tm));
	snprintf(out, outsz, "%s.conflict-%s-%s", path, who, stamp);
	for (i = 2; json_object_get(next, out) != NULL && i < 1000; i++)
		snprintf(out, outsz, "%s.conflict-%s-%s-%d", path, who, stamp,
		    i);
}

/*
 * base B, local L, remote R (path -> entry each). Local changes are taken
 * as they are in L; remote ones become installs; both: a conflict.
 */
static void
merge(json_t *B, json_t *L, json_t *R, const char *rmachine, struct plan *p)
{
	json_t		*all, *b, *l, *r, *v;
	const char	*path;
	char		 cpath[4400];
	bool		 local_newer;

	all = json_object();
	json_object_update(all, B);
	json_object_update(all, L);
	json_object_update(all, R);
	json_object_foreach(all, path, v) {
		b = json_object_get(B, path);
		l = json_object_get(L, path);
		r = json_object_get(R, path);
		if (same(l, r)) {
			if (l != NULL)
				json_object_set(p->next, path, l);
			continue;
		}
		if (same(b, r)) {		/* changed here only */
			if (l != NULL)
				json_object_set(p->next, path, l);
			continue;
		}
		if (same(b, l)) {		/* changed there only */
			if (r != NULL) {
				json_object_set(p->next, path, r);
				json_object_set(p->install, path, r);
			} else
				json_object_set(p->remove, path, l);
			continue;
		}
		/* Both sides changed it, differently. Nothing is lost: a
		 * deletion loses to a change; two changes keep both. */
		if (is_dir(l) && is_dir(r)) {
			json_object_set(p->next, path, l);
			continue;
		}
		if (l == NULL || r == NULL) {
			json_object_set(p->next, path, l != NULL ? l : r);
			if (l == NULL)
				json_object_set(p->install, path, r);
			json_array_append_new(p->conflicts, json_pack(
			    "{ss ss}", "path", path, "kept", l != NULL ?
			    "deleted in the store, changed here: kept" :
			    "deleted here, changed in the store: restored"));
			continue;
		}
		/* The folder keeps the name; else the newer one does. */
		local_newer = is_dir(l) || (!is_dir(r) && mtime(l) >= mtime(r));
		conflict_name(p->next, path, local_newer ? rmachine : machine,
		    local_newer ? mtime(r) : mtime(l), cpath, sizeof(cpath));
		if (local_newer) {
			json_object_set(p->next, path, l);
			json_object_set(p->next, cpath, r);
			json_object_set(p->install, cpath, r);
		} else {
			json_array_append_new(p->renames, json_pack("[ss]",
			    path, cpath));
			json_object_set(p->next, cpath, l);
			json_object_set(p->next, path, r);
			json_object_set(p->install, path, r);
		}
		json_array_append_new(p->conflicts, json_pack("{ss ss ss}",
		    "path", path, "copy", cpath, "kept", "changed on both "
		    "sides: the older copy was renamed"));
	}
	json_decref(all);
}

static int
pathcmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The keys of o, sorted (parents before children). */
static const char **
sorted_keys(json_t *o, size_t *n)
{
	const char	**v, *k;
	json_t		 *x;
	size_t		  i = 0;

	*n = json_object_size(o);
	if ((v = calloc(*n + 1, sizeof(*v))) == NULL)
		return NULL;
	json_object_foreach(o, k, x)
		v[i++] = k;
	qsort(v, *n, sizeof(*v), pathcmp);
	return v;
}

#define FETCHERS	4	/* files fetched at once (a store's latency) */
#define CHUNK		32	/* files a fetcher takes at a time */

struct fetch {
	const struct tree	*t;
	json_t			*install;
	const char		**files;	/* paths, in order */
	char			(*keys)[96];	/* their cache keys, out */
	size_t			 n;
	size_t			 next;		/* atomic */
	const char		*blobs;		/* "data/NAME/blobs/" */
	long long		 bytes;		/* atomic */
	int			 failed;	/* atomic */
	char			 err[OS_ERR];
	pthread_mutex_t		 lock;
};

struct fill_arg {
	const char	*key;
	struct os_meta	 m;
	char		 err[OS_ERR];
};

static int
fill_blob(int fd, void *arg)
{
	struct fill_arg	*f = arg;

	return objstore_get(os, f->key, fd, &f->m, f->err) == OS_OK ? 0 : -1;
}

/* A worker: files by index until none is left or one failed. */
static void *
fetcher(void *arg)
{
	struct fetch	*f = arg;
	struct tree_dir	 dc = { "", -1 };
	struct fill_arg	 fa;
	char		 key[OS_KEY_MAX];
	size_t		 i;
	json_t		*e;

	/* Runs of CHUNK files in path order: a worker stays in one folder,
	 * and workers seldom wait on the same folder's lock. */
	for (i = f->n; !__atomic_load_n(&f->failed, __ATOMIC_RELAXED);) {
		if (i % CHUNK == 0 || i >= f->n)
			i = __atomic_fetch_add(&f->next, CHUNK,
			    __ATOMIC_RELAXED);
		if (i >= f->n)
			break;
		e = json_object_get(f->install, f->files[i]);
		snprintf(key, sizeof(key), "%s%s", f->blobs,
		    json_string_value(json_object_get(e, "h")));
		fa.key = key;
		fa.err[0] = '\0';
		if (tree_install_file(f->t, &dc, f->files[i], e, fill_blob, &fa,
		    f->keys[i]) == 0) {
			__atomic_add_fetch(&f->bytes, fa.m.size,
			    __ATOMIC_RELAXED);
			i++;
			continue;
		}
		pthread_mutex_lock(&f->lock);
		if (!f->failed)
			snprintf(f->err, sizeof(f->err), "%.120s: %s",
			    f->files[i], *fa.err != '\0' ? fa.err : errno ==
			    EBADMSG ? "the store's copy does not match its "
			    "hash" : strerror(errno));
		f->failed = 1;
		pthread_mutex_unlock(&f->lock);
	}
	tree_dir_close(&dc);
	return NULL;
}

/*
 * The store's side into the folder: renames of conflicts first, then
 * removals (children before parents), folders and links, then the files,
 * FETCHERS at a time, each checked against its hash. cache learns the
 * files installed.
 */
static int
apply(const struct tree *t, struct plan *p, const char *blobs,
    json_t *cache, json_t *stats, char *err)
{
	const char	**keys;
	json_t		 *e, *pair;
	size_t		  i, n, nf = 0;
	pthread_t	  th[FETCHERS];
	int		  nth = 0, rc = 0;
	long long	  removed = 0;
	struct fetch	  f = { 0 };

	json_array_foreach(p->renames, i, pair)
		if (tree_rename(t, json_string_value(json_array_get(pair, 0)),
		    json_string_value(json_array_get(pair, 1))) == -1) {
			snprintf(err, OS_ERR, "rename %.100s: %s",
			    json_string_value(json_array_get(pair, 0)),
			    strerror(errno));
			return -1;
		}
	if ((keys = sorted_keys(p->remove, &n)) == NULL)
		return -1;
	for (i = n; i-- > 0;)
		if (tree_remove(t, keys[i], is_dir(json_object_get(p->remove,
		    keys[i]))) == 0)
			removed++;
	free(keys);
	json_object_set_new(stats, "removed", json_integer(removed));
	if ((keys = sorted_keys(p->install, &n)) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		e = json_object_get(p->install, keys[i]);
		if (json_object_get(e, "h") != NULL)
			keys[nf++] = keys[i];	/* files: later */
		else if (tree_install_other(t, keys[i], e) == -1) {
			snprintf(err, OS_ERR, "%.100s: %s", keys[i],
			    strerror(errno));
			free(keys);
			return -1;
		}
	}
	f = (struct fetch){ .t = t, .install = p->install, .files = keys,
	    .n = nf, .blobs = blobs };
	pthread_mutex_init(&f.lock, NULL);
	if (nf > 0 && (f.keys = calloc(nf, sizeof(*f.keys))) == NULL)
		f.failed = 1;
	while (nf > 0 && f.keys != NULL && nth < FETCHERS &&
	    (size_t)nth < nf && pthread_create(&th[nth], NULL, fetcher, &f) ==
	    0)
		nth++;
	if (nf > 0 && nth == 0 && f.keys != NULL)
		fetcher(&f);
	while (nth > 0)
		pthread_join(th[--nth], NULL);
	pthread_mutex_destroy(&f.lock);
	if (f.failed) {
		snprintf(err, OS_ERR, "%s", *f.err != '\0' ? f.err :
		    "out of memory");
		rc = -1;
	}
	for (i = 0; rc == 0 && i < nf; i++)
		if (f.keys[i][0] != '\0')
			json_object_set_new(cache, keys[i], json_pack("[ss]",
			    f.keys[i], json_string_value(json_object_get(
			    json_object_get(p->install, keys[i]), "h"))));
	json_object_set_new(stats, "down", json_integer(rc == 0 ?
	    (json_int_t)nf : 0));
	json_object_set_new(stats, "down_bytes", json_integer(f.bytes));
	free(f.keys);
	free(keys);
	return rc;
}

/*
 * Each file of next whose blob the store lacks goes up, from a copy made
 * now into one scratch file (no file made and deleted per upload): if the
 * file changed since the scan, the copy's hash replaces the entry's, so
 * next says what is really in the store. A file gone since keeps the
 * entry the base had (its blob is there), or none; *again asks for
 * another sync soon.
 */
static int
upload(struct box *b, const struct tree *t, json_t *next, json_t *base,
    json_t *have, const char *tmpdir, bool *again, char *err)
{
	const char	*path, *sha;
	json_t		*e, *old;
	void		*it;
	char		 key[OS_KEY_MAX], nsha[65];
	long long	 size, up = 0, upb = 0;
	int		 fd, rc = 0;
	struct os_meta	 m;

	if ((fd = open(tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) == -1) {
		snprintf(err, OS_ERR, "%.160s: %s", tmpdir, strerror(errno));
		return -1;
	}
	json_object_foreach_safe(next, it, path, e) {
		if ((sha = json_string_value(json_object_get(e, "h"))) ==
		    NULL || json_object_get(have, sha) != NULL)
			continue;
		if (tree_copy_file(t, path, fd, nsha, &size) == -1) {
			if (errno != ENOENT && errno != ELOOP) {
				snprintf(err, OS_ERR, "%.100s: %s", path,
				    strerror(errno));
				rc = -1;
				break;
			}
			old = json_object_get(base, path);
			if (old != NULL && (json_object_get(old, "h") == NULL ||
			    json_object_get(have, json_string_value(
			    json_object_get(old, "h"))) != NULL))
				json_object_set(next, path, old);
			else
				json_object_del(next, path);
			*again = true;
			continue;
		}
		if (strcmp(nsha, sha) != 0) {
			json_object_set_new(e, "h", json_string(nsha));
			json_object_set_new(e, "s", json_integer(size));
			*again = true;
		}
		snprintf(key, sizeof(key), "data/%s/blobs/%s", b->name, nsha);
		if (json_object_get(have, nsha) == NULL &&
		    objstore_put_sha(os, key, fd, nsha, &m, err) != OS_OK) {
			rc = -1;
			break;
		}
		json_object_set_new(have, nsha, json_true());
		up++;
		upb += size;
	}
	close(fd);
	pthread_mutex_lock(&mu);
	b->up += up;
	b->up_bytes += upb;
	pthread_mutex_unlock(&mu);
	return rc;
}

struct sweep {
	json_t		*keep;
	struct box	*b;
	long		 n;
};

static int
sweep_one(const char *key, const struct os_meta *m, void *arg)
{
	struct sweep	*s = arg;
	const char	*sha = strrchr(key, '/');
	char		 err[OS_ERR];

	if (sha != NULL && json_object_get(s->keep, sha + 1) == NULL &&
	    objstore_delete(os, key, err) == OS_OK)
		s->n++;
	return 0;
}

/* Blobs no manifest names any more; after a cut sync, all of them. */
static void
gc(struct box *b, json_t *old1, json_t *old2, json_t *next, bool sweep)
{
	json_t		*keep = json_object(), *olds[2] = { old1, old2 }, *e;
	const char	*path, *sha;
	char		 key[OS_KEY_MAX], err[OS_ERR];
	struct sweep	 s = { keep, b, 0 };
	int		 i;

	json_object_foreach(next, path, e)
		if ((sha = json_string_value(json_object_get(e, "h"))) != NULL)
			json_object_set_new(keep, sha, json_true());
	for (i = 0; i < 2; i++)
		json_object_foreach(olds[i], path, e) {
			sha = json_string_value(json_object_get(e, "h"));
			if (sha == NULL || json_object_get(keep, sha) != NULL)
				continue;
			snprintf(key, sizeof(key), "data/%s/blobs/%s",
			    b->name, sha);
			if (objstore_delete(os, key, err) != OS_OK)
				log_warn("an old /data blob stays", "sandbox=%s "
				    "error=\"%s\"", b->name, err);
			json_object_set_new(keep, sha, json_true());
		}
	if (sweep) {
		snprintf(key, sizeof(key), "data/%s/blobs/", b->name);
		if (objstore_list(os, key, sweep_one, &s, err) != OS_OK)
			log_warn("the /data blobs were not swept", "sandbox=%s "
			    "error=\"%s\"", b->name, err);
		else if (s.n > 0)
			log_info("/data blobs of a cut sync removed",
			    "sandbox=%s count=%ld", b->name, s.n);
	}
	json_decref(keep);
}

/* The host id of the sandbox's root: its folder's owner, else its range. */
static unsigned
uid_base(const char *name, const char *data)
{
	struct stat	 st;
	long		 base;

	/* As root, the sandbox's range; its root could chown /data. */
	if (geteuid() == 0 && (base = sbx_uid_base(name)) >= 0)
		return (unsigned)base;
	if (stat(data, &st) == 0)
		return (unsigned)st.st_uid;
	return (unsigned)geteuid();
}

static void
set_error(struct box *b, const char *err)
{
	pthread_mutex_lock(&mu);
	snprintf(b->error, sizeof(b->error), "%s", err);
	pthread_mutex_unlock(&mu);
}

/*
 * A manifest from the store is checked before anything of it reaches the
 * folder: anyone who can write the bucket must not get pincerd (root) to
 * write outside it, or to give files to another range of ids.
 */
static bool
manifest_ok(json_t *entries, char *err)
{
	const char	*path, *h, *p, *e;
	json_t		*v, *u, *g;
	size_t		 n;

	json_object_foreach(entries, path, v) {
		for (p = path;; p = e + 1) {
			e = strchr(p, '/');
			n = e != NULL ? (size_t)(e - p) : strlen(p);
			if (n == 0 || n > 255 || (n == 1 && *p == '.') ||
			    (n == 2 && p[0] == '.' && p[1] == '.') ||
			    !strncmp(p, TREE_TMP, sizeof(TREE_TMP) - 1))
				goto bad;
			if (e == NULL)
				break;
		}
		u = json_object_get(v, "u");
		g = json_object_get(v, "g");
		if (!json_is_object(v) || !json_is_integer(u) ||
		    !json_is_integer(g) || json_integer_value(u) < 0 ||
		    json_integer_value(u) > 65535 || json_integer_value(g) < 0 ||
		    json_integer_value(g) > 65535)
			goto bad;
		h = json_string_value(json_object_get(v, "h"));
		if (json_object_get(v, "l") != NULL ? !json_is_string(
		    json_object_get(v, "l")) : json_object_get(v, "d") != NULL ?
		    !json_is_integer(json_object_get(v, "m")) : (h == NULL ||
		    strlen(h) != 64 || strspn(h, "0123456789abcdef") != 64 ||
		    !json_is_integer(json_object_get(v, "m")) ||
		    !json_is_integer(json_object_get(v, "s"))))
			goto bad;
	}
	return true;
bad:
	snprintf(err, OS_ERR, "the store's manifest has an entry that is not "
	    "safe or not well formed (\"%.80s\"); nothing was changed",
	    path);
	return false;
}

static int
sync_box(struct box *b, char *err)
{
	char		 data[4200], dir[4200], tmpdir[4300], mkey[OS_KEY_MAX];
	json_t		*st = NULL, *B = NULL, *L = NULL, *R = NULL, *cache = NULL;
	json_t		*rman = NULL, *have = NULL, *stats = NULL, *man;
	struct plan	 p = { 0 };
	struct tree	 t;
	struct tree_stats ts;
	struct os_meta	 m;
	struct buf	 mb;
	const char	*known, *rmachine = "other", *path, *key;
	json_t		*e;
	bool		 was_busy, changed, again = false, exists;
	int		 rc = -1, orc;
	long long	 t0 = now_wall_ms(), t1 = 0;

	*err = '\0';
	pthread_mutex_lock(&b->run);
	/* No such sandbox (any more): nothing to do, and no folder to make
	 * for it. At shutdown sbx.c has let go of its list: the final syncs
	 * go on. (sbx.c's lock is taken under run, never under mu.) */
	exists = sbx_uid_base(b->name) >= 0;
	pthread_mutex_lock(&mu);
	if (b->gone || (!exists && !shutting)) {
		b->dirty = false;
		pthread_mutex_unlock(&mu);
		pthread_mutex_unlock(&b->run);
		return 0;
	}
	b->syncing = true;
	b->dirty = false;
	b->pending = 0;
	b->first_dirty = 0;
	b->last_try = t0;
	pthread_mutex_unlock(&mu);
	buf_init(&mb, MANIFEST_MAX);
	box_paths(b, data, sizeof(data), dir, sizeof(dir));
	snprintf(tmpdir, sizeof(tmpdir), "%s", dir);
	t = (struct tree){ data, uid_base(b->name, data), geteuid() == 0,
	    max_file };
	/* The sandbox's folder may not exist yet (a first start). */
	*strrchr(dir, '/') = '\0';
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, OS_ERR, "%.200s: %s", dir, strerror(errno));
		goto out;
	}
	dir[strlen(dir)] = '/';
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, OS_ERR, "%.200s: %s", dir, strerror(errno));
		goto out;
	}
	if ((st = load_state(dir)) == NULL)
		st = json_pack("{ss so so}", "etag", "", "entries",
		    json_object(), "cache", json_object());
	/* Owned here: st's entries are replaced before gc reads B. */
	B = json_incref(json_object_get(st, "entries"));
	if ((known = json_string_value(json_object_get(st, "etag"))) == NULL)
		known = "";
	was_busy = json_is_true(json_object_get(st, "busy"));

	/* The store's side: read only when it changed since. */
	snprintf(mkey, sizeof(mkey), "data/%s/manifest.json", b->name);
	orc = objstore_head(os, mkey, &m, err);
	if (orc == OS_NOTFOUND)
		m.etag[0] = '\0';
	else if (orc != OS_OK)
		goto out;
	if (m.etag[0] == '\0' && *known != '\0') {
		/*
		 * This machine synced a manifest the store no longer has: a
		 * new bucket, path or prefix, a store not mounted, a manifest
		 * removed. Nothing is deleted for that: the folder goes up
		 * as if for the first time.
		 */
		log_warn("/data: the store has no manifest any more; all of "
		    "this folder goes up again", "sandbox=%s store=\"%s\"",
		    b->name, os->where);
		json_decref(B);
		B = json_object();
	}
	if (strcmp(m.etag, known) != 0 && m.etag[0] != '\0') {
		if ((orc = objstore_get_mem(os, mkey, &mb, &m, err)) != OS_OK)
			goto out;
		if ((rman = json_loadb(mb.data, mb.len, 0, NULL)) == NULL ||
		    !json_is_object(json_object_get(rman, "entries"))) {
			snprintf(err, OS_ERR, "%.120s in the store is not a "
			    "manifest; nothing was changed", mkey);
			goto out;
		}
		R = json_object_get(rman, "entries");
		if (!manifest_ok(R, err))
			goto out;
		rmachine = json_string_value(json_object_get(rman, "machine"));
		if (rmachine == NULL || *rmachine == '\0' || strlen(rmachine) >
		    63 || strspn(rmachine, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"
		    "KLMNOPQRSTUVWXYZ0123456789-_") != strlen(rmachine))
			rmachine = "other";
	} else if (m.etag[0] == '\0')
		R = rman = json_object();	/* nothing there yet */
	else
		R = B;

	/* This side. */
	*err = '\0';
	L = tree_scan(&t, json_object_get(st, "cache"), &cache, &ts, err,
	    OS_ERR);
	if (L == NULL)
		goto out;
	if (*err != '\0')
		log_warn("/data: not everything can be synced", "sandbox=%s "
		    "note=\"%s\"", b->name, err);
	*err = '\0';

	p.next = json_object();
	p.install = json_object();
	p.remove = json_object();
	p.renames = json_array();
	p.conflicts = json_array();
	merge(B, L, R, rmachine, &p);
	changed = json_object_size(p.install) + json_object_size(p.remove) +
	    json_array_size(p.renames) > 0 || !json_equal(p.next, R);
	if (!changed && !was_busy) {
		/* Nothing to move; the hashes learnt, and the store's
		 * manifest when it is new but the same, are kept. */
		json_object_set(st, "cache", cache);
		if (strcmp(m.etag, known) != 0) {
			json_object_set(st, "entries", p.next);
			json_object_set_new(st, "etag", json_string(m.etag));
		}
		if (ts.hashed > 0 || strcmp(m.etag, known) != 0)
			(void)save_state(dir, st);
		rc = 0;
		goto out;
	}

	/* From here a cut is noticed: "busy" until the end. */
	json_object_set_new(st, "busy", json_true());
	if (save_state(dir, st) == -1) {
		snprintf(err, OS_ERR, "%.200s/state.json: %s", dir,
		    strerror(errno));
		goto out;
	}
	stats = json_object();
	snprintf(mkey, sizeof(mkey), "data/%s/blobs/", b->name);
	if (apply(&t, &p, mkey, cache, stats, err) == -1)
		goto out;
	have = json_object();
	json_object_foreach(R, path, e)
		if (json_string_value(json_object_get(e, "h")) != NULL)
			json_object_set_new(have, json_string_value(
			    json_object_get(e, "h")), json_true());
	if (upload(b, &t, p.next, B, have, tmpdir, &again, err) == -1)
		goto out;
	/* Only came down (a restore, a pull): the store's manifest already
	 * says it all, and keeps its ETag. */
	if (m.etag[0] != '\0' && json_equal(p.next, R))
		goto put_done;
	man = json_pack("{si ss ss sI sO}", "format", 1, "sandbox", b->name,
	    "machine", machine, "updated_ms", (json_int_t)now_wall_ms(),
	    "entries", p.next);
	buf_reset(&mb);
	{
		char	*txt = json_dumps(man, JSON_COMPACT | JSON_SORT_KEYS);

		json_decref(man);
		if (txt == NULL) {
			snprintf(err, OS_ERR, "out of memory");
			goto out;
		}
		snprintf(mkey, sizeof(mkey), "data/%s/manifest.json",
		    b->name);
		orc = objstore_put_mem(os, mkey, txt, strlen(txt), &m, err);
		free(txt);
		if (orc != OS_OK)
			goto out;
	}
put_done:
	/* Files that came down are on the disk before the state says so. */
	t1 = now_wall_ms();
	if (json_object_size(p.install) > 0 && tree_flush(&t) == -1) {
		snprintf(err, OS_ERR, "%.200s: %s", data, strerror(errno));
		goto out;
	}
	t1 = now_wall_ms() - t1;
	/* The manifest is in: the state follows, then the old blobs go. */
	json_object_set(st, "entries", p.next);
	json_object_set_new(st, "etag", json_string(m.etag));
	json_object_set(st, "cache", cache);
	json_object_del(st, "busy");
	if (save_state(dir, st) == -1) {
		snprintf(err, OS_ERR, "%.200s/state.json: %s", dir,
		    strerror(errno));
		goto out;
	}
	gc(b, R, B, p.next, was_busy);
	pthread_mutex_lock(&mu);
	b->down += json_integer_value(json_object_get(stats, "down"));
	b->down_bytes += json_integer_value(json_object_get(stats,
	    "down_bytes"));
	b->removed += json_integer_value(json_object_get(stats, "removed"));
	json_array_foreach(p.conflicts, orc, e) {
		json_object_set_new(e, "at_ms", json_integer(t0));
		json_array_append(b->conflicts, e);
		b->nconflicts++;
	}
	while (json_array_size(b->conflicts) > CONFLICTS_KEPT)
		json_array_remove(b->conflicts, 0);
	pthread_mutex_unlock(&mu);
	json_array_foreach(p.conflicts, orc, e)
		log_warn("/data conflict: both copies kept", "sandbox=%s "
		    "path=\"%s\" copy=\"%s\"", b->name, json_string_value(
		    json_object_get(e, "path")), json_string_value(
		    json_object_get(e, "copy")) != NULL ? json_string_value(
		    json_object_get(e, "copy")) : "-");
	log_info("/data synced", "sandbox=%s files=%ld installed=%zu "
	    "removed=%lld ms=%lld flush_ms=%lld", b->name, ts.files,
	    json_object_size(p.install), (long long)json_integer_value(
	    json_object_get(stats, "removed")), now_wall_ms() - t0, t1);
	rc = 0;
out:
	pthread_mutex_lock(&mu);
	b->syncing = false;
	if (again) {		/* files changed while they went up */
		if (!b->dirty)
			b->first_dirty = now_ms();
		b->dirty = true;
		b->last_event = now_ms();
	}
	if (rc == 0) {
		b->error[0] = '\0';
		b->last_ok = now_wall_ms();
		if (p.next != NULL) {	/* what is in both places now */
			b->files = 0;
			b->bytes = 0;
			json_object_foreach(p.next, key, e)
				if (json_object_get(e, "h") != NULL) {
					b->files++;
					b->bytes += json_integer_value(
					    json_object_get(e, "s"));
				}
		} else if (L != NULL) {
			b->files = ts.files;
			b->bytes = ts.bytes;
		}
		snprintf(b->etag, sizeof(b->etag), "%s", json_string_value(
		    json_object_get(st, "etag")));
	}
	pthread_mutex_unlock(&mu);
	if (again)
		wake();
	if (rc != 0) {
		if (*err == '\0')
			snprintf(err, OS_ERR, "out of memory");
		set_error(b, err);
		log_warn("/data sync failed", "sandbox=%s error=\"%s\"",
		    b->name, err);
	}
	buf_free(&mb);
	json_decref(st);
	json_decref(B);
	json_decref(L);
	json_decref(cache);
	json_decref(rman);
	json_decref(have);
	json_decref(stats);
	json_decref(p.next);
	json_decref(p.install);
	json_decref(p.remove);
	json_decref(p.renames);
	json_decref(p.conflicts);
	pthread_mutex_unlock(&b->run);
	return rc;
}

/* The watches of a folder and all below it (mu held). Through an fd
 * opened without following links, so the sandbox cannot point us away. */
static bool
watch_tree(struct box *b, const char *rel, int depth)
{
	char		 data[4200], dir[4200], proc[64], sub[4400];
	struct tree	 t;
	struct watch	*w;
	DIR		*d;
	struct dirent	*e;
	size_t		 i;
	int		 fd, wd;

	if (ifd == -1 || depth > 64)	/* as deep as the scan goes */
		return true;	/* the timer does the rest */
	box_paths(b, data, sizeof(data), dir, sizeof(dir));
	t = (struct tree){ data, 0, false, 0 };
	if ((fd = tree_open_dir(&t, rel, false)) == -1)
		return false;	/* not made yet: tried again */
	/* The watch follows this link to the folder fd holds. */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if ((wd = inotify_add_watch(ifd, proc, WATCH_MASK)) == -1) {
		if (errno == ENOSPC)
			log_warn("inotify watches are used up: /data is "
			    "synced on the timer", "sandbox=%s hint=\"raise "
			    "fs.inotify.max_user_watches\"", b->name);
		close(fd);
		return true;
	}
	/* A folder moved is watched already: the same wd comes back, and
	 * its entry gets the new path rather than a second entry. */
	for (i = 0; i < nwatches; i++)
		if (watches[i].wd == wd && watches[i].b == b) {
			free(watches[i].rel);
			watches[i].rel = strdup(rel);
			break;
		}
	if (i < nwatches)
		goto walk;
	if (nwatches == capwatches) {
		capwatches = capwatches ? capwatches * 2 : 64;
		if ((w = realloc(watches, capwatches * sizeof(*w))) == NULL) {
			capwatches = nwatches;
			close(fd);
			return true;
		}
		watches = w;
	}
	watches[nwatches].wd = wd;
	watches[nwatches].b = b;
	watches[nwatches].rel = strdup(rel);
	nwatches++;
walk:
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return true;
	}
	while ((e = readdir(d)) != NULL)
		if (e->d_type == DT_DIR && strcmp(e->d_name, ".") &&
		    strcmp(e->d_name, "..") && (size_t)snprintf(sub,
		    sizeof(sub), "%s%s%s", rel, *rel != '\0' ? "/" : "",
		    e->d_name) < sizeof(sub))
			(void)watch_tree(b, sub, depth + 1);
	closedir(d);
	return true;
}

static int
count_slashes(const char *p)
{
	int	 n = 0;

	for (; *p != '\0'; p++)
		n += *p == '/';
	return n;
}

static void
unwatch(struct box *b)
{
	size_t	 i;

	for (i = 0; i < nwatches;)
		if (watches[i].b == b) {
			inotify_rm_watch(ifd, watches[i].wd);
			free(watches[i].rel);
			watches[i] = watches[--nwatches];
		} else
			i++;
}

/* Read what inotify has: the boxes are dirty, new folders watched. */
static void
events(void)
{
	char		 ev[16384] __attribute__((aligned(8))), sub[4400];
	const struct inotify_event *ie;
	struct box	*b;
	ssize_t		 n, off;
	size_t		 i;
	uint64_t	 now = now_ms();

	while ((n = read(ifd, ev, sizeof(ev))) > 0)
		for (off = 0; off < n; off += (ssize_t)sizeof(*ie) +
		    ie->len) {
			ie = (const struct inotify_event *)(ev + off);
			if (ie->mask & IN_Q_OVERFLOW) {
				for (b = boxes; b != NULL; b = b->next)
					if (b->watched) {
						b->dirty = true;
						b->last_event = now;
					}
				continue;
			}
			for (i = 0; i < nwatches; i++)
				if (watches[i].wd == ie->wd)
					break;
			if (i == nwatches)
				continue;
			b = watches[i].b;
			if (ie->mask & IN_IGNORED) {
				free(watches[i].rel);
				watches[i] = watches[--nwatches];
				continue;
			}
			if (ie->len > 0 && !strncmp(ie->name, TREE_TMP,
			    sizeof(TREE_TMP) - 1))
				continue;	/* our own temporary files */
			if (!b->dirty)
				b->first_dirty = now;
			b->dirty = true;
			b->last_event = now;
			b->pending++;
			if ((ie->mask & IN_ISDIR) && (ie->mask & (IN_CREATE |
			    IN_MOVED_TO)) && watches[i].rel != NULL &&
			    (size_t)snprintf(sub,
			    sizeof(sub), "%s%s%s", watches[i].rel,
			    *watches[i].rel != '\0' ? "/" : "", ie->name) <
			    sizeof(sub))
				(void)watch_tree(b, sub, 1 +
				    count_slashes(sub));
		}
}

/* When a dirty box is due (mu held): quiet for debounce_ms, dirty for
 * max_delay_ms, or now (a final sync, or one found at start). */
static uint64_t
due(const struct box *b)
{
	uint64_t	 a, c;

	if (b->first_dirty == 0 || b->final)
		a = 0;
	else {
		a = b->last_event + (uint64_t)debounce_ms;
		c = b->first_dirty + (uint64_t)max_delay_ms;
		a = a < c ? a : c;
	}
	return a > b->retry_at ? a : b->retry_at;
}

static void *
sync_main(void *arg)
{
	struct pollfd	 pf[2];
	struct box	*b, *pick;
	uint64_t	 now, next_scan = now_ms() + (uint64_t)scan_ms, when;
	uint64_t	 drain;
	int		 timeout, rc;
	bool		 final, stop;
	char		 err[OS_ERR];

	for (;;) {
		pthread_mutex_lock(&mu);
		now = now_ms();
		stop = stopping;
		if (now >= next_scan) {
			for (b = boxes; b != NULL; b = b->next)
				if (b->watched && !b->dirty) {
					b->dirty = true;
					b->first_dirty = b->last_event = 0;
				}
			next_scan = now + (uint64_t)scan_ms;
		}
		/* The first box due; at a stop, every dirty one. */
		pick = NULL;
		when = next_scan;
		for (b = boxes; b != NULL; b = b->next) {
			if (b->watched && !b->armed && !b->gone) {
				if ((b->armed = watch_tree(b, "", 0))) {
					/* What came before the watches. */
					if (!b->dirty)
						b->first_dirty = now;
					b->dirty = true;
					b->last_event = now;
				} else if (now + 1000 < when)
					when = now + 1000;	/* made soon */
			}
			if (!b->dirty || b->gone || (stop && b->stop_done))
				continue;
			if (stop || due(b) <= now) {
				pick = b;
				break;
			}
			if (due(b) < when)
				when = due(b);
		}
		if (pick != NULL) {
			final = pick->final;
			pick->final = false;
			pthread_mutex_unlock(&mu);
			rc = sync_box(pick, err);
			pthread_mutex_lock(&mu);
			/* A failure is tried again later, sooner at first; a
			 * stop gives each box one last try. */
			pick->stop_done = stop;
			if (rc == 0)
				pick->fails = 0, pick->retry_at = 0;
			else if (!stop) {
				pick->fails++;
				pick->dirty = true;
				pick->retry_at = now_ms() + (pick->fails < 5 ?
				    (uint64_t)2000 << pick->fails : 60000);
				if (pick->first_dirty == 0)
					pick->first_dirty = now_ms();
			}
			if (final && !pick->watched) {
				unwatch(pick);
				pick->armed = false;
			}
			pthread_mutex_unlock(&mu);
			continue;
		}
		pthread_mutex_unlock(&mu);
		if (stop)
			break;
		timeout = when > now ? (int)(when - now) : 0;
		pf[0].fd = efd;
		pf[0].events = POLLIN;
		pf[1].fd = ifd;
		pf[1].events = POLLIN;
		if (poll(pf, ifd != -1 ? 2 : 1, timeout) > 0) {
			if (pf[0].revents & POLLIN)
				(void)read(efd, &drain, sizeof(drain));
			pthread_mutex_lock(&mu);
			if (ifd != -1)
				events();
			pthread_mutex_unlock(&mu);
		}
	}
	return NULL;
}
