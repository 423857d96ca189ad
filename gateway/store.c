/* SPDX-License-Identifier: MIT */
/*
 * store.c: SQLite in WAL mode, one connection per thread, numbered
 * migrations applied at start in one transaction, and a per-thread cache of
 * prepared statements.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "pincer.h"

#define STMT_CACHE	32

struct conn {
	sqlite3		*db;
	struct {
		const char	*sql;	/* by address: SQL text is static */
		sqlite3_stmt	*st;
	}		 cache[STMT_CACHE];
	struct conn	*next;
};

static sqlite3	*conn_open(char **);
static int	 exec1(sqlite3 *, const char *, char **);

static pthread_mutex_t	 conns_lock = PTHREAD_MUTEX_INITIALIZER;
static struct conn	*conns;		/* every thread's, for store_close */
static __thread struct conn *mine;
static char		*db_path;	/* owned */
static long		 busy_ms;

int
store_open(const char *path, long busy_timeout_ms, char **err)
{
	sqlite3	*db;

	*err = NULL;
	/*
	 * Memory statistics take one global mutex per allocation, which
	 * every request thread would contend for. They must be off before
	 * SQLite initialises, so this comes first.
	 */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	free(db_path);
	if ((db_path = strdup(path)) == NULL)
		return -1;
	busy_ms = busy_timeout_ms;
	if ((db = store_db()) == NULL) {
		if (asprintf(err, "cannot open the database %s", path) == -1)
			*err = NULL;
		return -1;
	}
	return store_migrate(db, err);
}

/*
 * This thread's commits need not reach the disk before they return
 * (synchronous=NORMAL): for threads whose writes a power cut may lose
 * because they are done again (a turn's state, a part's delivery record:
 * README, Channels). WAL keeps the order, so the next full commit of any
 * thread (an inbox write) makes them durable too.
 */
void
store_lazy_commits(void)
{
	sqlite3	*db = store_db();

	if (db != NULL)
		sqlite3_exec(db, "PRAGMA synchronous=NORMAL", NULL, NULL,
		    NULL);
}

/* This thread's connection, opened on first use. */
sqlite3 *
store_db(void)
{
	struct conn	*c;
	char		*err = NULL;

	if (mine != NULL)
		return mine->db;
	if (db_path == NULL || (c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if ((c->db = conn_open(&err)) == NULL) {
		log_error("cannot open the database", "%s: %s", db_path,
		    err != NULL ? err : "out of memory");
		free(err);
		free(c);
		return NULL;
	}
	pthread_mutex_lock(&conns_lock);
	c->next = conns;
	conns = c;
	pthread_mutex_unlock(&conns_lock);
	mine = c;
	return c->db;
}

/*
 * A statement prepared once per thread and kept; the caller steps it and
 * need not finalize. It comes back reset with its bindings cleared.
 */
sqlite3_stmt *
store_stmt(const char *sql)
{
	sqlite3		*db = store_db();
	sqlite3_stmt	*st;
	size_t		 i;

	if (db == NULL)
		return NULL;
	for (i = 0; i < STMT_CACHE && mine->cache[i].sql != NULL; i++)
		if (mine->cache[i].sql == sql) {
			st = mine->cache[i].st;
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return st;
		}
	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st,
	    NULL) != SQLITE_OK) {
		log_error("cannot prepare a statement", "%s",
		    sqlite3_errmsg(db));
		return NULL;
	}
	if (i < STMT_CACHE) {
		mine->cache[i].sql = sql;
		mine->cache[i].st = st;
	} else {
		/* A full cache is a bug in the caller's use; still work. */
		log_warn("statement cache full", NULL);
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

int
store_schema_version(sqlite3 *db)
{
	sqlite3_stmt	*st;
	int		 v = -1;

	if (sqlite3_prepare_v2(db, "SELECT coalesce(max(version), 0) FROM "
	    "schema_version", -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

int
store_latest_version(void)
{
	return (int)store_migrations_count;
}

/*
 * All pending migrations in one IMMEDIATE transaction: a crash half way
 * leaves the database as it was. A database from a newer pincer is refused
 * rather than guessed at.
 */
int
store_migrate(sqlite3 *db, char **err)
{
	static const char create[] = "CREATE TABLE IF NOT EXISTS "
	    "schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
	    "applied_at TEXT NOT NULL DEFAULT "
	    "(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))) STRICT";
	sqlite3_stmt	*ins = NULL;
	char		*msg = NULL;
	int		 cur, latest = store_latest_version(), applied = 0;
	size_t		 i;

	*err = NULL;
	if (exec1(db, "BEGIN IMMEDIATE", err) == -1)
		return -1;
	if (exec1(db, create, err) == -1)
		goto fail;
	if ((cur = store_schema_version(db)) < 0) {
		*err = strdup("cannot read schema_version");
		goto fail;
	}
	if (cur > latest) {
		if (asprintf(err, "the database is at schema version %d, newer "
		    "than this pincer knows (%d): run a newer pincer, or "
		    "restore a backup", cur, latest) == -1)
			*err = NULL;
		goto fail;
	}
	if (sqlite3_prepare_v2(db, "INSERT INTO schema_version (version, "
	    "name) VALUES (?, ?)", -1, &ins, NULL) != SQLITE_OK)
		goto fail;
	for (i = 0; i < store_migrations_count; i++) {
		const struct store_migration *m = &store_migrations[i];

		if (m->version <= cur)
			continue;
		if (sqlite3_exec(db, m->sql, NULL, NULL, &msg) != SQLITE_OK) {
			if (asprintf(err, "migration %s failed: %s", m->name,
			    msg != NULL ? msg : "?") == -1)
				*err = NULL;
			sqlite3_free(msg);
			goto fail;
		}
		sqlite3_reset(ins);
		sqlite3_bind_int(ins, 1, m->version);
		sqlite3_bind_text(ins, 2, m->name, -1, SQLITE_STATIC);
		if (sqlite3_step(ins) != SQLITE_DONE)
			goto fail;
		applied++;
	}
	sqlite3_finalize(ins);
	ins = NULL;
	if (exec1(db, "COMMIT", err) == -1)
		goto fail;
	if (applied > 0)
		log_info("database migrated", "from version %d to %d", cur,
		    latest);
	return 0;
fail:
	if (*err == NULL && asprintf(err, "%s", sqlite3_errmsg(db)) == -1)
		*err = NULL;
	sqlite3_finalize(ins);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

bool
store_ready(void)
{
	static const char sql[] = "SELECT coalesce(max(version), 0) FROM "
	    "schema_version";
	sqlite3_stmt	*st = store_stmt(sql);
	bool		 ok = false;

	if (st != NULL && sqlite3_step(st) == SQLITE_ROW)
		ok = sqlite3_column_int(st, 0) == store_latest_version();
	if (st != NULL)
		sqlite3_reset(st);
	return ok;
}

/*
 * A short-lived thread that may have used the store (an egress
 * connection's, which reads a secret) closes its connection as it ends;
 * otherwise every such thread would leave one open until exit.
 */
void
store_thread_done(void)
{
	struct conn	**pp, *c = mine;
	size_t		  i;

	if (c == NULL)
		return;
	pthread_mutex_lock(&conns_lock);
	for (pp = &conns; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	pthread_mutex_unlock(&conns_lock);
	for (i = 0; i < STMT_CACHE; i++)
		sqlite3_finalize(c->cache[i].st);
	sqlite3_close(c->db);
	free(c);
	mine = NULL;
}

/* At exit, after every thread that used the store has stopped. */
void
store_close(void)
{
	struct conn	*c, *next;
	size_t		 i;

	pthread_mutex_lock(&conns_lock);
	for (c = conns; c != NULL; c = next) {
		next = c->next;
		for (i = 0; i < STMT_CACHE; i++)
			sqlite3_finalize(c->cache[i].st);
		sqlite3_close(c->db);
		free(c);
	}
	conns = NULL;
	pthread_mutex_unlock(&conns_lock);
	mine = NULL;
	free(db_path);
	db_path = NULL;
}

static sqlite3 *
conn_open(char **err)
{
	sqlite3	*db = NULL;

	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		*err = strdup(db != NULL ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, (int)busy_ms);
	/*
	 * WAL lets readers run beside the one writer. FULL syncs the WAL at
	 * every commit: what pincer acknowledges (an inbound message, a
	 * reply sent) must survive a power cut, not only a crash.
	 */
	if (exec1(db, "PRAGMA journal_mode=WAL", err) == -1 ||
	    exec1(db, "PRAGMA synchronous=FULL", err) == -1 ||
	    exec1(db, "PRAGMA foreign_keys=ON", err) == -1) {
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

static int
exec1(sqlite3 *db, const char *sql, char **err)
{
	char	*msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	if (asprintf(err, "%s: %s", sql, msg != NULL ? msg :
	    sqlite3_errmsg(db)) == -1)
		*err = NULL;
	sqlite3_free(msg);
	return -1;
}
