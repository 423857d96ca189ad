/* SPDX-License-Identifier: MIT */
/*
 * backup_restore.c: a backup brought back as STATE/pincer.db. Nothing in
 * place changes until the downloaded copy has proved itself (the size and
 * SHA-256 its manifest names, SQLite's integrity check, a schema this
 * pincer knows); then the database in place is kept beside it, whole (its
 * WAL folded in first), and the copy is renamed over it in one step.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "pincer.h"

static int	 download(struct objstore *, const char *, const char *,
		    const struct backup_info *, char *);
static int	 fold_wal(const char *, char *);
static int	 keep_old(const char *, const char *, char *, size_t, char *);
static int	 unlink_quiet(const char *, const char *, char *);
static void	 sync_dir(const char *);

int
backup_fetch(struct objstore *os, const char *state_dir, const char *id,
    struct backup_info *bi, char *tmp, size_t tmpsz, char *err)
{
	char	 why[BACKUP_ERR];
	int	 schema;

	if (!backup_id_valid(id)) {
		snprintf(err, BACKUP_ERR, "\"%.60s\" is not a backup ID (see "
		    "pincer backup list)", id);
		return -1;
	}
	if (backup_manifest(os, id, bi, err) == -1)
		return -1;
	snprintf(tmp, tmpsz, "%s/.restore-%s.sqlite", state_dir, id);
	if (download(os, id, tmp, bi, err) == -1)
		goto fail;
	if (backup_verify_file(tmp, &schema, why) == -1) {
		snprintf(err, BACKUP_ERR, "backup %s is damaged: %.400s", id,
		    why);
		goto fail;
	}
	if (schema != bi->schema) {
		snprintf(err, BACKUP_ERR, "backup %s is damaged: its schema "
		    "version is %d, its manifest says %d", id, schema,
		    bi->schema);
		goto fail;
	}
	if (schema > store_latest_version()) {
		snprintf(err, BACKUP_ERR, "backup %s was made by pincer %s "
		    "(schema version %d); this pincer knows versions up to %d: "
		    "install a newer pincer first", id, bi->version, schema,
		    store_latest_version());
		goto fail;
	}
	return 0;
fail:
	unlink(tmp);
	return -1;
}

/*
 * Between the two renames there is always a pincer.db: the old one is
 * linked to its new name first, so a crash half way leaves the old
 * database or the new one in place, never none (a pincerd starting on
 * none would make an empty one).
 */
int
backup_install(const char *state_dir, const char *tmp, char *kept,
    size_t keptsz, char *err)
{
	char		 db[4096];
	struct stat	 st;

	*kept = '\0';
	snprintf(db, sizeof(db), "%s/pincer.db", state_dir);
	if (lstat(db, &st) == 0 && (fold_wal(db, err) == -1 ||
	    keep_old(state_dir, db, kept, keptsz, err) == -1))
		return -1;
	/* The old database's WAL and index are empty or stale now, and a
	 * stale WAL must never be read into the new one. */
	if (unlink_quiet(db, "-wal", err) == -1 ||
	    unlink_quiet(db, "-shm", err) == -1)
		return -1;
	if (rename(tmp, db) == -1) {
		snprintf(err, BACKUP_ERR, "cannot move the backup into place "
		    "as %.300s: %s", db, strerror(errno));
		return -1;
	}
	sync_dir(state_dir);
	return 0;
}

/* Into tmp (0600), then checked against the manifest. */
static int
download(struct objstore *os, const char *id, const char *tmp,
    const struct backup_info *bi, char *err)
{
	char		 key[96], oerr[OS_ERR], sha[65] = "";
	struct stat	 st;
	int		 fd, rc;

	unlink(tmp);
	if ((fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1) {
		snprintf(err, BACKUP_ERR, "%.300s: %s", tmp, strerror(errno));
		return -1;
	}
	snprintf(key, sizeof(key), BACKUP_PREFIX "%s.sqlite", id);
	if ((rc = objstore_get(os, key, fd, NULL, oerr)) != OS_OK) {
		snprintf(err, BACKUP_ERR, "download of %s: %s (%.120s)", key,
		    rc == OS_NOTFOUND ? "missing: the backup is incomplete" :
		    oerr, os->where);
		close(fd);
		return -1;
	}
	if (fstat(fd, &st) == -1 || objstore_sha256_fd(fd, (long long)
	    st.st_size, sha) == -1 || fsync(fd) == -1) {
		snprintf(err, BACKUP_ERR, "%.300s: %s", tmp, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	if ((long long)st.st_size != bi->size || strcmp(sha, bi->sha256)) {
		snprintf(err, BACKUP_ERR, "backup %s is damaged: %lld bytes "
		    "came back with SHA-256 %.16s..., its manifest says %lld "
		    "bytes with %.16s...", id, (long long)st.st_size, sha,
		    bi->size, bi->sha256);
		return -1;
	}
	return 0;
}

/*
 * Whatever the WAL holds goes into the database file, so the copy kept
 * is whole without it. A WAL that stays is someone else's open
 * connection: refuse rather than lose its writes.
 */
static int
fold_wal(const char *db, char *err)
{
	sqlite3		*h = NULL;
	char		 wal[4200];
	struct stat	 st;
	int		 rc;

	rc = sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(h, "PRAGMA wal_checkpoint(TRUNCATE)", NULL,
		    NULL, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, BACKUP_ERR, "the database in place (%.300s): %s",
		    db, h != NULL ? sqlite3_errmsg(h) : "out of memory");
		sqlite3_close(h);
		return -1;
	}
	sqlite3_close(h);
	snprintf(wal, sizeof(wal), "%s-wal", db);
	if (stat(wal, &st) == 0 && st.st_size > 0) {
		snprintf(err, BACKUP_ERR, "%.300s still holds writes another "
		    "program has not finished (a pincer command?): nothing "
		    "was changed; try again when it has ended", wal);
		return -1;
	}
	return 0;
}

static int
keep_old(const char *state_dir, const char *db, char *kept, size_t keptsz,
    char *err)
{
	struct timespec	 ts;
	struct tm	 tm;
	char		 stamp[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", gmtime_r(&ts.tv_sec,
	    &tm));
	snprintf(kept, keptsz, "%s/pincer.db.before-restore-%s.%03dZ",
	    state_dir, stamp, (int)(ts.tv_nsec / 1000000));
	if (link(db, kept) == 0)
		return 0;
	/* A file system without hard links: a rename, and a moment
	 * without a pincer.db (pincerd cannot start meanwhile: the CLI
	 * holds its lock). */
	if (errno != EEXIST && rename(db, kept) == 0)
		return 0;
	snprintf(err, BACKUP_ERR, "cannot keep the database in place as "
	    "%.300s: %s", kept, strerror(errno));
	*kept = '\0';
	return -1;
}

static int
unlink_quiet(const char *db, const char *suffix, char *err)
{
	char	 p[4200];

	snprintf(p, sizeof(p), "%s%s", db, suffix);
	if (unlink(p) == -1 && errno != ENOENT) {
		snprintf(err, BACKUP_ERR, "%.300s: %s", p, strerror(errno));
		return -1;
	}
	return 0;
}

static void
sync_dir(const char *dir)
{
	int	 fd;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return;
	fsync(fd);
	close(fd);
}
