/* SPDX-License-Identifier: MIT */
/*
 * cli_backup.c: `pincer backup now|list|restore`. now and list work with
 * pincerd running or not (a backup reads one consistent snapshot either
 * way). restore refuses while pincerd runs and holds pincerd's lock, so
 * none starts half way; it checks that the backup's secrets open with
 * this machine's key file, which no backup holds.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "pincer.h"

/* What restore found of the backup's secrets. */
struct sealed {
	int	 total;		/* secrets in the backup */
	int	 open;		/* of them, opened with the key file */
	bool	 key;		/* STATE/keys/secrets.key is there */
};

static int	 now(const struct config_overrides *);
static int	 list(const struct config_overrides *);
static int	 restore(const struct config_overrides *, const char *, bool);
static int	 restore_into(const struct config_overrides *, const char *,
		    const char *, bool);
static int	 pick(struct objstore *, const char *, char *, char *);
static void	 say_restored(const char *, const struct backup_info *,
		    const char *, const struct sealed *);
static struct objstore *open_all(const struct config_overrides *, bool *);
static void	 close_all(struct objstore *, bool);
static int	 daemon_lock(const char *);
static int	 check_secrets(const char *, const char *, const char *,
		    struct sealed *);
static bool	 secrets_refused(const char *, const char *,
		    const struct sealed *, bool);
static void	 iso_time(long long, char *, size_t);
static const char *jstr(json_t *, const char *);

static const char usage_text[] =
    "usage: pincer backup now | list | restore [ID|latest] [--force]\n"
    "now: copy pincer.db to the object store (pincerd may be running);\n"
    "list: the backups kept there, oldest first; restore: pincerd\n"
    "stopped, the backup replaces STATE/pincer.db, and the database there\n"
    "is kept as pincer.db.before-restore-TIME. --force: restore even when\n"
    "the backup's secrets do not open with STATE/keys/secrets.key.\n";

int
cli_backup(const struct config_overrides *ov, int argc, char **argv)
{
	const char	*sub = argc > 0 ? argv[0] : "", *id = NULL;
	bool		 force = false;
	int		 i;

	if (!strcmp(sub, "now") && argc == 1)
		return now(ov);
	if (!strcmp(sub, "list") && argc == 1)
		return list(ov);
	if (!strcmp(sub, "restore")) {
		for (i = 1; i < argc; i++) {
			if (!strcmp(argv[i], "--force"))
				force = true;
			else if (id == NULL && argv[i][0] != '-')
				id = argv[i];
			else
				break;
		}
		if (i == argc)
			return restore(ov, id != NULL ? id : "latest", force);
	}
	fputs(usage_text, stderr);
	return 2;
}

static int
now(const struct config_overrides *ov)
{
	const struct config	*c;
	struct objstore		*os;
	struct backup_info	 bi;
	char			 err[BACKUP_ERR];
	bool			 store;
	int			 rc = 1;

	if ((os = open_all(ov, &store)) == NULL)
		return 1;
	c = config_current();
	if (backup_now(c, os, &bi, err) == -1)
		fprintf(stderr, "pincer backup now: %s\n", err);
	else {
		printf("backup %s made: %lld bytes, schema version %d, in "
		    "%ld ms (%s)\n", bi.id, bi.size, bi.schema, bi.ms,
		    os->where);
		if (bi.removed > 0)
			printf("removed %zu older backup%s (backup.keep is "
			    "%ld)\n", bi.removed, bi.removed > 1 ? "s" : "",
			    c->backup_keep);
		if (store)
			audit_add("cli", "", "backup_now", bi.id, "");
		rc = 0;
	}
	close_all(os, store);
	config_release_all();
	return rc;
}

/* One line each, tab-separated: ID, time, size, schema, version. */
static int
list(const struct config_overrides *ov)
{
	struct objstore		*os;
	json_t			*a, *b;
	char			 err[BACKUP_ERR];
	size_t			 i, partial;
	bool			 store;
	int			 rc = 0;

	if ((os = open_all(ov, &store)) == NULL)
		return 1;
	if ((a = backup_list_json(os, &partial, err)) == NULL) {
		fprintf(stderr, "pincer backup list: %s\n", err);
		rc = 1;
	}
	json_array_foreach(a, i, b) {
		if (json_object_get(b, "error") != NULL)
			printf("%s\t?\t%lld\t(%s)\n", jstr(b, "id"),
			    (long long)json_integer_value(json_object_get(b,
			    "size")), jstr(b, "error"));
		else
			printf("%s\t%s\t%lld\tschema %lld\tpincer %s\n",
			    jstr(b, "id"), jstr(b, "created"), (long long)
			    json_integer_value(json_object_get(b, "size")),
			    (long long)json_integer_value(json_object_get(b,
			    "schema_version")), jstr(b, "pincer_version"));
	}
	if (a != NULL && partial > 0)
		fprintf(stderr, "(%zu incomplete upload%s, not listed: the "
		    "next backup clears %s)\n", partial, partial > 1 ? "s" : "",
		    partial > 1 ? "them" : "it");
	json_decref(a);
	close_all(os, store);
	config_release_all();
	return rc;
}

/* The locks first, so that nothing is opened under a running pincerd. */
static int
restore(const struct config_overrides *ov, const char *want, bool force)
{
	struct config	*c;
	char		*err = NULL, *state;
	int		 lock, rc;

	if ((c = config_load(ov, &err)) == NULL) {
		fprintf(stderr, "%s: not valid:\n%s", config_path(ov),
		    err != NULL ? err : "out of memory\n");
		free(err);
		return 1;
	}
	state = strdup(c->state_dir);
	config_free(c);
	if (state == NULL)
		return 1;
	if ((mkdir(state, 0700) == -1 && errno != EEXIST) ||
	    (lock = daemon_lock(state)) == -1) {
		if (errno != EWOULDBLOCK)
			fprintf(stderr, "pincer backup restore: %s: %s\n",
			    state, strerror(errno));
		free(state);
		return 1;
	}
	rc = restore_into(ov, state, want, force) == 0 ? 0 : 1;
	close(lock);
	free(state);
	return rc;
}

static int
restore_into(const struct config_overrides *ov, const char *state,
    const char *want, bool force)
{
	struct backup_info	 bi;
	struct objstore		*os = NULL;
	struct sealed		 s;
	char			 err[BACKUP_ERR], tmp[4200], kept[4200];
	char			 id[BACKUP_ID_MAX];
	bool			 store;
	int			 bk, rc = -1;

	if ((bk = backup_lock(state, err)) < 0) {
		fprintf(stderr, "pincer backup restore: %s\n", err);
		return -1;
	}
	if ((os = open_all(ov, &store)) == NULL)
		goto out;
	if (pick(os, want, id, err) == -1 ||
	    backup_fetch(os, state, id, &bi, tmp, sizeof(tmp), err) == -1)
		goto fail;
	/* The store in place is closed before the copy is opened as one. */
	close_all(os, store);
	os = NULL;
	if (check_secrets(state, tmp, id, &s) == -1 ||
	    secrets_refused(state, id, &s, force)) {
		unlink(tmp);
		goto out;
	}
	if (backup_install(state, tmp, kept, sizeof(kept), err) == -1) {
		unlink(tmp);
		goto fail;
	}
	say_restored(state, &bi, kept, &s);
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "pincer backup restore: %s\nnothing was changed\n",
	    err);
out:
	if (os != NULL)
		close_all(os, store);
	config_release_all();
	close(bk);
	return rc;
}

/* want: an ID, or "latest" (the newest complete backup). */
static int
pick(struct objstore *os, const char *want, char *id, char *err)
{
	const struct backup_entry	*b;
	struct backup_entry		*e;
	size_t				 n;

	snprintf(id, BACKUP_ID_MAX, "%.*s", BACKUP_ID_MAX - 1, want);
	if (strcmp(want, "latest") != 0)
		return 0;
	if (backup_scan(os, &e, &n, err) == -1)
		return -1;
	if ((b = backup_latest(e, n)) != NULL)
		snprintf(id, BACKUP_ID_MAX, "%s", b->id);
	else
		snprintf(err, BACKUP_ERR, "there is no backup in %.200s",
		    os->where);
	free(e);
	return b != NULL ? 0 : -1;
}

static void
say_restored(const char *state, const struct backup_info *bi,
    const char *kept, const struct sealed *s)
{
	char	 when[32];

	iso_time(bi->created_ms, when, sizeof(when));
	printf("restored backup %s (made %s by pincer %s, schema version %d, "
	    "%lld bytes) as %s/pincer.db\n", bi->id, when, bi->version,
	    bi->schema, bi->size, state);
	if (*kept != '\0')
		printf("the database that was there is kept as %s\n", kept);
	printf("secrets: %d in the backup, %d open with %s/keys/"
	    "secrets.key\nstart pincerd again\n", s->total, s->open, state);
}

/*
 * The config (published), the store when there is a database (an s3
 * backend's keys are secrets in it; none is made here for nothing), and
 * the object store. NULL: all of it closed again.
 */
static struct objstore *
open_all(const struct config_overrides *ov, bool *store)
{
	struct config		*c;
	struct objstore		*os;
	char			*err = NULL, db[4096], oerr[OS_ERR];

	*store = false;
	if ((c = config_load(ov, &err)) == NULL) {
		fprintf(stderr, "%s: not valid:\n%s", config_path(ov),
		    err != NULL ? err : "out of memory\n");
		free(err);
		return NULL;
	}
	config_publish(c);
	log_setup(LOG_WARN, LOG_LOGFMT);
	snprintf(db, sizeof(db), "%s/pincer.db", c->state_dir);
	*store = access(db, F_OK) == 0;
	if (*store && (store_open(db, c->busy_timeout_ms, &err) == -1 ||
	    secrets_init(c->state_dir) == -1)) {
		fprintf(stderr, "cannot open %s: %s\n", db, err != NULL ? err :
		    "the keys folder");
		free(err);
		store_close();
		config_release_all();
		return NULL;
	}
	if ((os = objstore_open(c, oerr)) == NULL) {
		fprintf(stderr, "pincer backup: %s\n", *oerr != '\0' ? oerr :
		    "objstore.backend is off, and backups go to the object "
		    "store");
		close_all(NULL, *store);
		config_release_all();
	}
	return os;
}

/*
 * The object store and the store; the config stays published. Not
 * cli_store_close: it signals the pid in pincerd.lock, which restore
 * holds itself (the pid there is an old pincerd's).
 */
static void
close_all(struct objstore *os, bool store)
{
	objstore_close(os);
	if (store) {
		secrets_shutdown();
		store_close();
	}
}

/* pincerd's own lock (daemon.c): held, so none starts meanwhile. */
static int
daemon_lock(const char *state)
{
	char	 path[4200], pid[32] = "";
	ssize_t	 n;
	int	 fd;

	snprintf(path, sizeof(path), "%s/pincerd.lock", state);
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return fd;
	if ((n = read(fd, pid, sizeof(pid) - 1)) > 0)
		pid[strcspn(pid, "\n")] = '\0';
	fprintf(stderr, "pincer backup restore: pincerd is running with %s%s"
	    "%s%s: stop it first (systemctl stop pincerd), then restore\n",
	    state, *pid != '\0' ? " (pid " : "", pid, *pid != '\0' ? ")" : "");
	close(fd);
	errno = EWOULDBLOCK;
	return -1;
}

/*
 * The copy opened as the store (migrated as pincerd would at start), and
 * every secret in it opened with this machine's key file. A missing key
 * file is not made here (secrets.c makes one on first use): it is the
 * key of the old machine that is wanted.
 */
static int
check_secrets(const char *state, const char *tmp, const char *id,
    struct sealed *s)
{
	struct buf	 v;
	json_t		*names = NULL, *one;
	char		*err = NULL, key[4200];
	size_t		 i;

	memset(s, 0, sizeof(*s));
	snprintf(key, sizeof(key), "%s/keys/secrets.key", state);
	s->key = access(key, F_OK) == 0;
	if (store_open(tmp, config_current()->busy_timeout_ms, &err) == -1 ||
	    secrets_init(state) == -1) {
		fprintf(stderr, "pincer backup restore: backup %s does not "
		    "open as pincer's store: %s\nnothing was changed\n", id,
		    err != NULL ? err : "the keys folder");
		free(err);
		store_close();
		return -1;
	}
	names = secrets_list();
	s->total = (int)json_array_size(names);
	buf_init(&v, SECRETS_MAX + 64);
	json_array_foreach(names, i, one) {
		if (!s->key)
			break;
		if (secrets_get(json_string_value(json_object_get(one,
		    "name")), &v) == 0)
			s->open++;
		explicit_bzero(v.data, v.cap);
	}
	buf_free(&v);
	json_decref(names);
	audit_add("cli", "", "backup_restore", id, "");
	secrets_shutdown();
	store_close();
	return 0;
}

/* Secrets that will not open: said plainly, and refused without --force. */
static bool
secrets_refused(const char *state, const char *id, const struct sealed *s,
    bool force)
{
	if (s->open == s->total)
		return false;
	if (!s->key)
		fprintf(stderr, "pincer backup restore: backup %s holds %d "
		    "secret%s sealed with a key file that is not here (%s/keys/"
		    "secrets.key). No backup holds the key file: copy it from "
		    "the machine the backup was made on (README, Backups), "
		    "then restore again.\n", id, s->total, s->total > 1 ? "s" :
		    "", state);
	else
		fprintf(stderr, "pincer backup restore: %d of the %d secrets "
		    "in backup %s do not open with %s/keys/secrets.key: it is "
		    "not the key file the backup was made with. Copy that one "
		    "here, then restore again.\n", s->total - s->open, s->total,
		    id, state);
	if (!force) {
		fprintf(stderr, "(or restore anyway with --force: the secrets "
		    "stay sealed, and pincer secret set NAME replaces each)\n"
		    "nothing was changed\n");
		return true;
	}
	fprintf(stderr, "--force: restoring anyway; set each secret again "
	    "with pincer secret set NAME\n");
	return false;
}

static void
iso_time(long long ms, char *out, size_t outsz)
{
	time_t		 t = (time_t)(ms / 1000);
	struct tm	 tm;

	strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
}

static const char *
jstr(json_t *o, const char *key)
{
	const char	*v = json_string_value(json_object_get(o, key));

	return v != NULL ? v : "";
}
