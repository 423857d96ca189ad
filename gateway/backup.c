/* SPDX-License-Identifier: MIT */
/*
 * backup.c: pincer.db copied whole into the object store (README, Backups).
 *
 * SQLite's online backup, from a read-only connection of its own, in one
 * step: in WAL mode that step reads one snapshot while pincerd goes on
 * writing, where a backup in small steps restarts at every write and may
 * never end (docs/objstore-research.md §4). The copy is checked
 * (integrity_check), uploaded as backups/db/ID.sqlite, and only then is
 * its manifest ID.json written: the manifest is what makes it a backup, so
 * an upload cut short counts for nothing and retention clears it away.
 * Secrets stay sealed in the copy; the key file is never uploaded.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "pincer.h"

#define MANIFEST_MAX	65536
#define SCAN_MAX	100000	/* IDs under backups/db/ we look at */

static int	 copy_db(const char *, const char *, long, char *);
static int	 upload(struct objstore *, const char *, struct backup_info *,
		    char *);
static int	 retain(struct objstore *, long, const char *, size_t *,
		    char *);
static void	 make_id(char *, long long *);
static void	 clear_temps(const char *);
static int	 scan_one(const char *, const struct os_meta *, void *);
static int	 entry_cmp(const void *, const void *);

/* backup_scan's rows, one per key, as the store lists them. */
struct scan {
	struct backup_entry	*v;	/* owned */
	size_t			 n;
	size_t			 cap;
};

static atomic_bool	 cancelled;

int
backup_now(const struct config *c, struct objstore *os,
    struct backup_info *bi, char *err)
{
	char		 db[4096], tmp[4200];
	struct stat	 st;
	double		 t0 = now_seconds();
	int		 lock, rc = -1;

	memset(bi, 0, sizeof(*bi));
	*err = '\0';
	snprintf(db, sizeof(db), "%s/pincer.db", c->state_dir);
	if (stat(db, &st) == -1) {
		snprintf(err, BACKUP_ERR, "%.300s: %s: nothing to back up", db,
		    strerror(errno));
		return -1;
	}
	if ((lock = backup_lock(c->state_dir, err)) < 0)
		return lock;
	clear_temps(c->state_dir);
	make_id(bi->id, &bi->created_ms);
	snprintf(bi->version, sizeof(bi->version), "%s", pincer_version);
	snprintf(tmp, sizeof(tmp), "%s/.backup-%s.sqlite", c->state_dir,
	    bi->id);
	if (copy_db(db, tmp, c->busy_timeout_ms, err) == -1 ||
	    backup_verify_file(tmp, &bi->schema, err) == -1)
		goto out;
	if (atomic_load(&cancelled)) {
		snprintf(err, BACKUP_ERR, "pincerd is stopping");
		goto out;
	}
	if (upload(os, tmp, bi, err) == -1)
		goto out;
	rc = 0;
	if (retain(os, c->backup_keep, bi->id, &bi->removed, err) == -1) {
		log_warn("old backups not removed", "%s (%s)", err, os->where);
		*err = '\0';
	}
out:
	unlink(tmp);
	close(lock);
	bi->ms = (long)((now_seconds() - t0) * 1000);
	return rc;
}

void
backup_cancel(bool on)
{
	atomic_store(&cancelled, on);
}

int
backup_scan(struct objstore *os, struct backup_entry **out, size_t *n,
    char *err)
{
	struct scan	 acc = { NULL, 0, 0 };
	char		 oerr[OS_ERR];
	size_t		 i, k;

	*out = NULL;
	*n = 0;
	if (objstore_list(os, BACKUP_PREFIX, scan_one, &acc, oerr) != OS_OK) {
		snprintf(err, BACKUP_ERR, "cannot list " BACKUP_PREFIX ": %s "
		    "(%.200s)", *oerr != '\0' ? oerr : "more than 100000 "
		    "objects, or out of memory", os->where);
		free(acc.v);
		return -1;
	}
	/* ID.json and ID.sqlite are two rows: one per ID, oldest first. */
	if (acc.n > 0)
		qsort(acc.v, acc.n, sizeof(*acc.v), entry_cmp);
	for (i = 0, k = 0; i < acc.n; i++) {
		if (k > 0 && !strcmp(acc.v[k - 1].id, acc.v[i].id)) {
			acc.v[k - 1].manifest |= acc.v[i].manifest;
			if (acc.v[i].size >= 0)
				acc.v[k - 1].size = acc.v[i].size;
		} else
			acc.v[k++] = acc.v[i];
	}
	*out = acc.v;
	*n = k;
	return 0;
}

const struct backup_entry *
backup_latest(const struct backup_entry *e, size_t n)
{
	while (n-- > 0)
		if (e[n].manifest && e[n].size >= 0)
			return &e[n];
	return NULL;
}

/*
 * The newest backup is never chosen: keep is at least 1, and keep_id (the
 * one just made) is kept even when a clock set back makes it look old.
 * A leftover newer than every complete backup may be an upload still
 * under way, so it stays.
 */
size_t
backup_prune(struct backup_entry *e, size_t n, long keep,
    const char *keep_id)
{
	size_t	 i, kept = 0, marked = 0;
	bool	 complete, seen = false;

	if (keep < 1)
		keep = 1;
	for (i = n; i-- > 0;) {
		complete = e[i].manifest && e[i].size >= 0;
		e[i].drop = false;
		if (keep_id != NULL && !strcmp(e[i].id, keep_id)) {
			kept += complete;
			seen |= complete;
			continue;
		}
		if (complete) {
			seen = true;
			e[i].drop = kept >= (size_t)keep;
			kept += !e[i].drop;
		} else
			e[i].drop = seen;
		marked += e[i].drop;
	}
	return marked;
}

json_t *
backup_list_json(struct objstore *os, size_t *incomplete, char *err)
{
	struct backup_entry	*e;
	struct backup_info	 bi;
	char			 when[32], why[BACKUP_ERR];
	size_t			 n, i;
	time_t			 t;
	struct tm		 tm;
	json_t			*a;

	*incomplete = 0;
	if (backup_scan(os, &e, &n, err) == -1)
		return NULL;
	a = json_array();
	for (i = 0; i < n && a != NULL; i++) {
		if (!e[i].manifest || e[i].size < 0) {
			(*incomplete)++;
			continue;
		}
		if (backup_manifest(os, e[i].id, &bi, why) == -1) {
			json_array_append_new(a, json_pack("{s:s, s:I, s:s}",
			    "id", e[i].id, "size", (json_int_t)e[i].size,
			    "error", why));
			continue;
		}
		t = (time_t)(bi.created_ms / 1000);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ",
		    gmtime_r(&t, &tm));
		json_array_append_new(a, json_pack("{s:s, s:s, s:I, s:s, s:i, "
		    "s:s}", "id", bi.id, "created", when, "size",
		    (json_int_t)bi.size, "sha256", bi.sha256, "schema_version",
		    bi.schema, "pincer_version", bi.version));
	}
	free(e);
	if (a == NULL)
		snprintf(err, BACKUP_ERR, "out of memory");
	return a;
}

int
backup_manifest(struct objstore *os, const char *id, struct backup_info *bi,
    char *err)
{
	char		 key[96], oerr[OS_ERR];
	const char	*sha = NULL, *ver = NULL;
	struct buf	 b;
	json_t		*j = NULL;
	json_int_t	 size = -1, created = 0;
	int		 rc = -1, schema = -1, got;

	memset(bi, 0, sizeof(*bi));
	snprintf(key, sizeof(key), BACKUP_PREFIX "%s.json", id);
	buf_init(&b, MANIFEST_MAX);
	if ((got = objstore_get_mem(os, key, &b, NULL, oerr)) != OS_OK) {
		if (got == OS_NOTFOUND)
			snprintf(err, BACKUP_ERR, "there is no backup %s in "
			    "%.200s (see pincer backup list)", id, os->where);
		else
			snprintf(err, BACKUP_ERR, "%s: %s (%.120s)", key, oerr,
			    os->where);
		goto out;
	}
	if ((j = json_loadb(b.data, b.len, 0, NULL)) == NULL ||
	    json_unpack(j, "{s:I, s:I, s:s, s:i, s:s}", "created_ms",
	    &created, "size", &size, "sha256", &sha, "schema_version",
	    &schema, "pincer_version", &ver) == -1 || size < 0 ||
	    strlen(sha) != 64) {
		snprintf(err, BACKUP_ERR, "%s: not a backup manifest", key);
		goto out;
	}
	snprintf(bi->id, sizeof(bi->id), "%s", id);
	bi->created_ms = created;
	bi->size = size;
	snprintf(bi->sha256, sizeof(bi->sha256), "%s", sha);
	bi->schema = schema;
	snprintf(bi->version, sizeof(bi->version), "%s", ver);
	rc = 0;
out:
	json_decref(j);
	buf_free(&b);
	return rc;
}

/* "20261202T031500.123Z-1a2b3c": 0 a digit, h lowercase hex. */
bool
backup_id_valid(const char *id)
{
	static const char shape[] = "00000000T000000.000Z-hhhhhh";
	size_t	 i;

	for (i = 0; shape[i] != '\0'; i++) {
		if (shape[i] == '0' ? !(id[i] >= '0' && id[i] <= '9') :
		    shape[i] == 'h' ? strchr("0123456789abcdef", id[i]) ==
		    NULL || id[i] == '\0' : id[i] != shape[i])
			return false;
	}
	return id[i] == '\0';
}

long long
backup_id_ms(const char *id)
{
	struct tm	 tm;
	int		 ms;

	if (!backup_id_valid(id))
		return -1;
	memset(&tm, 0, sizeof(tm));
	if (sscanf(id, "%4d%2d%2dT%2d%2d%2d.%3dZ", &tm.tm_year, &tm.tm_mon,
	    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (long long)timegm(&tm) * 1000 + ms;
}

/*
 * One backup or restore per state folder at a time: two would race on
 * retention and on the temporary files. Refused, not waited for, so the
 * scheduler and the CLI never queue behind each other.
 */
int
backup_lock(const char *state_dir, char *err)
{
	char	 path[4200];
	int	 fd;

	snprintf(path, sizeof(path), "%s/backup.lock", state_dir);
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1) {
		snprintf(err, BACKUP_ERR, "%.300s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		snprintf(err, BACKUP_ERR, "another backup or restore of %.300s "
		    "is running; try again when it has finished", state_dir);
		close(fd);
		return BACKUP_BUSY;
	}
	return fd;
}

int
backup_verify_file(const char *path, int *schema, char *err)
{
	sqlite3		*db = NULL;
	sqlite3_stmt	*st = NULL;
	const char	*res = NULL;
	int		 rc = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) !=
	    SQLITE_OK) {
		snprintf(err, BACKUP_ERR, "the copy does not open as a "
		    "database: %s", db != NULL ? sqlite3_errmsg(db) :
		    "out of memory");
		goto out;
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		res = (const char *)sqlite3_column_text(st, 0);
	if (res == NULL || strcmp(res, "ok") != 0) {
		snprintf(err, BACKUP_ERR, "the copy fails SQLite's integrity "
		    "check: %.200s", res != NULL ? res : sqlite3_errmsg(db));
		goto out;
	}
	if ((*schema = store_schema_version(db)) < 1) {
		snprintf(err, BACKUP_ERR, "the copy is not a pincer database "
		    "(it has no schema_version)");
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

/*
 * The whole database in one step(-1) from a read-only connection: one
 * read transaction, so one consistent snapshot. BUSY (a checkpoint
 * resetting the WAL) is retried a few times. The copy is left in
 * rollback-journal mode, one self-contained file that the sqlite3 shell
 * opens read-only as it is.
 */
static int
copy_db(const char *db, const char *tmp, long busy_ms, char *err)
{
	sqlite3		*src = NULL, *dst = NULL;
	sqlite3_backup	*b;
	int		 rc = SQLITE_ERROR, tries;

	unlink(tmp);
	if (sqlite3_open_v2(db, &src, SQLITE_OPEN_READONLY |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	    sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, BACKUP_ERR, "cannot open %s: %s", src == NULL ||
		    dst == NULL ? "the database" : "a temporary file in the "
		    "state folder", sqlite3_errmsg(dst != NULL ? dst : src));
		goto out;
	}
	sqlite3_busy_timeout(src, (int)busy_ms);
	/* A throwaway file: no journal, no sync until it is whole. */
	sqlite3_exec(dst, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF",
	    NULL, NULL, NULL);
	if ((b = sqlite3_backup_init(dst, "main", src, "main")) == NULL) {
		snprintf(err, BACKUP_ERR, "cannot start the copy: %s",
		    sqlite3_errmsg(dst));
		goto out;
	}
	for (tries = 0; tries < 50; tries++) {
		rc = sqlite3_backup_step(b, -1);
		if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
			break;
		sqlite3_sleep(100);
	}
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE) {
		snprintf(err, BACKUP_ERR, "the copy stopped: %s",
		    sqlite3_errstr(rc));
		goto out;
	}
	if (sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL,
	    NULL) != SQLITE_OK) {
		snprintf(err, BACKUP_ERR, "the copy: %s", sqlite3_errmsg(dst));
		rc = SQLITE_ERROR;
		goto out;
	}
out:
	sqlite3_close(dst);
	sqlite3_close(src);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* The copy, then its manifest: only a whole copy gets one. */
static int
upload(struct objstore *os, const char *tmp, struct backup_info *bi,
    char *err)
{
	char		 key[96], oerr[OS_ERR], when[32], *text = NULL;
	struct stat	 st;
	struct tm	 tm;
	time_t		 t = (time_t)(bi->created_ms / 1000);
	json_t		*j;
	int		 fd, rc;

	if ((fd = open(tmp, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1 || objstore_sha256_fd(fd, (long long)
	    st.st_size, bi->sha256) == -1) {
		snprintf(err, BACKUP_ERR, "cannot read the copy: %s",
		    strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	bi->size = (long long)st.st_size;
	snprintf(key, sizeof(key), BACKUP_PREFIX "%s.sqlite", bi->id);
	rc = objstore_put(os, key, fd, NULL, oerr);
	close(fd);
	if (rc != OS_OK) {
		snprintf(err, BACKUP_ERR, "upload of %s: %s (%.120s)", key,
		    oerr, os->where);
		return -1;
	}
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	j = json_pack("{s:i, s:s, s:s, s:I, s:I, s:s, s:i, s:s, s:s}",
	    "format", 1, "id", bi->id, "created", when, "created_ms",
	    (json_int_t)bi->created_ms, "size", (json_int_t)bi->size,
	    "sha256", bi->sha256, "schema_version", bi->schema,
	    "pincer_version", bi->version, "db", key);
	if (j != NULL)
		text = json_dumps(j, JSON_INDENT(2));
	json_decref(j);
	snprintf(key, sizeof(key), BACKUP_PREFIX "%s.json", bi->id);
	rc = text == NULL ? OS_FAIL : objstore_put_mem(os, key, text,
	    strlen(text), NULL, oerr);
	if (rc != OS_OK)
		snprintf(err, BACKUP_ERR, "upload of %s: %s (%.120s)", key,
		    text == NULL ? "out of memory" : oerr, os->where);
	free(text);
	return rc == OS_OK ? 0 : -1;
}

/* A manifest goes before its copy, so a backup is whole or not listed. */
static int
retain(struct objstore *os, long keep, const char *keep_id, size_t *removed,
    char *err)
{
	struct backup_entry	*e;
	char			 key[96], oerr[OS_ERR];
	size_t			 n, i;
	int			 rc = 0;

	*removed = 0;
	if (backup_scan(os, &e, &n, err) == -1)
		return -1;
	backup_prune(e, n, keep, keep_id);
	for (i = 0; i < n && rc == 0; i++) {
		if (!e[i].drop)
			continue;
		snprintf(key, sizeof(key), BACKUP_PREFIX "%s.json", e[i].id);
		if (e[i].manifest && objstore_delete(os, key, oerr) != OS_OK)
			rc = -1;
		if (rc == 0 && e[i].size >= 0) {
			snprintf(key, sizeof(key), BACKUP_PREFIX "%s.sqlite",
			    e[i].id);
			rc = objstore_delete(os, key, oerr) == OS_OK ? 0 : -1;
		}
		if (rc == -1)
			snprintf(err, BACKUP_ERR, "cannot delete %s: %s", key,
			    oerr);
		else if (e[i].manifest && e[i].size >= 0)
			(*removed)++;
	}
	free(e);
	return rc;
}

/* The time to the millisecond, so IDs sort in the order they were made. */
static void
make_id(char *id, long long *ms)
{
	struct timespec	 ts;
	struct tm	 tm;
	unsigned char	 r[3] = { 0 };
	char		 day[24];

	clock_gettime(CLOCK_REALTIME, &ts);
	*ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if (getrandom(r, sizeof(r), 0) != sizeof(r))
		r[0] = (unsigned char)getpid();
	strftime(day, sizeof(day), "%Y%m%dT%H%M%S", gmtime_r(&ts.tv_sec, &tm));
	snprintf(id, BACKUP_ID_MAX, "%.15s.%03dZ-%02x%02x%02x", day,
	    (int)(ts.tv_nsec / 1000000), r[0], r[1], r[2]);
}

/* Under backup.lock no other backup runs: any temporary file is stale. */
static void
clear_temps(const char *state_dir)
{
	DIR		*d;
	struct dirent	*de;
	int		 dfd;

	if ((d = opendir(state_dir)) == NULL)
		return;
	dfd = dirfd(d);
	while ((de = readdir(d)) != NULL)
		if ((!strncmp(de->d_name, ".backup-", 8) ||
		    !strncmp(de->d_name, ".restore-", 9)) &&
		    strstr(de->d_name, ".sqlite") != NULL)
			unlinkat(dfd, de->d_name, 0);
	closedir(d);
}

static int
scan_one(const char *key, const struct os_meta *m, void *arg)
{
	struct scan		*acc = arg;
	struct backup_entry	*e, *v;
	const char		*name = key + strlen(BACKUP_PREFIX), *dot;
	size_t			 len;

	if (strncmp(key, BACKUP_PREFIX, strlen(BACKUP_PREFIX)) != 0 ||
	    (dot = strrchr(name, '.')) == NULL ||
	    (len = (size_t)(dot - name)) >= BACKUP_ID_MAX ||
	    (strcmp(dot, ".json") && strcmp(dot, ".sqlite")))
		return 0;	/* not ours: left alone */
	if (acc->n >= SCAN_MAX)
		return OS_FAIL;
	if (acc->n == acc->cap) {
		if ((v = reallocarray(acc->v, acc->cap + 64, sizeof(*v))) ==
		    NULL)
			return OS_FAIL;
		acc->v = v;
		acc->cap += 64;
	}
	e = &acc->v[acc->n];
	memset(e, 0, sizeof(*e));
	memcpy(e->id, name, len);
	if (!backup_id_valid(e->id))
		return 0;
	e->manifest = !strcmp(dot, ".json");
	e->size = e->manifest ? -1 : m->size;
	acc->n++;
	return 0;
}

static int
entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct backup_entry *)a)->id,
	    ((const struct backup_entry *)b)->id);
}
