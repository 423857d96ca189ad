/* SPDX-License-Identifier: MIT */
/* test_store.c: migrations, statement cache, per-thread connections. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "pincer.h"
#include "tap.h"

struct peek {
	sqlite3		*db;
	char		 instance_id[64];
	int		 version;
	int		 stmt_ok;
};

static char	*query_text(sqlite3 *, const char *);
static int	 query_int(sqlite3 *, const char *);
static void	*other_thread(void *);
static void	 test_fresh(const char *, char *, size_t);
static void	 test_reopen(const char *, const char *);
static void	 test_threads(const char *);
static void	 test_newer(const char *);
static void	 rm_db(const char *);

int
main(void)
{
	char	 dir[] = "/tmp/pincer-test-store.XXXXXX";
	char	 db[128], newer[128], id[64];

	if (mkdtemp(dir) == NULL) {
		printf("Bail out! mkdtemp failed\n");
		return 1;
	}
	snprintf(db, sizeof(db), "%s/pincer.db", dir);
	snprintf(newer, sizeof(newer), "%s/newer.db", dir);
	ok(!store_ready(), "not ready before store_open");
	test_fresh(db, id, sizeof(id));
	test_reopen(db, id);
	test_threads(db);
	test_newer(newer);
	rm_db(db);
	rm_db(newer);
	ok(rmdir(dir) == 0, "the test folder is left empty");
	return done_testing();
}

static void
test_fresh(const char *path, char *id, size_t idsz)
{
	sqlite3		*db;
	sqlite3_stmt	*a, *b, *c;
	char		*err = NULL, *s;
	static const char sql[] = "SELECT value FROM meta WHERE key = ?";
	char		 copy[sizeof(sql)];

	is_int(store_open(path, 1000, &err), 0, "store_open on a new file%s%s",
	    err ? ": " : "", err ? err : "");
	free(err);
	ok(access(path, F_OK) == 0, "the database file exists");
	db = store_db();
	ok(db != NULL, "this thread has a connection");
	ok(store_db() == db, "the same one each time");
	is_int(store_latest_version(), (long long)store_migrations_count,
	    "latest version is the number of migrations");
	ok(store_latest_version() >= 1, "at least one migration");
	is_int(store_schema_version(db), store_latest_version(),
	    "migrations applied up to the latest");
	is_int(query_int(db, "SELECT count(*) FROM schema_version"),
	    store_latest_version(), "one schema_version row per migration");
	s = query_text(db, "SELECT value FROM meta WHERE key = 'instance_id'");
	ok(s != NULL && strlen(s) == 32, "meta has a 32-hex instance_id (%s)",
	    s ? s : "none");
	snprintf(id, idsz, "%s", s ? s : "");
	free(s);
	s = query_text(db, "PRAGMA journal_mode");
	is_str(s, "wal", "journal_mode is WAL");
	free(s);
	is_int(query_int(db, "PRAGMA foreign_keys"), 1, "foreign keys on");
	ok(store_ready(), "store_ready after open");

	a = store_stmt(sql);
	b = store_stmt(sql);
	ok(a != NULL && a == b, "same SQL pointer, same statement");
	memcpy(copy, sql, sizeof(sql));
	c = store_stmt(copy);
	ok(c != NULL && c != a, "same text at another address: another one");
	sqlite3_bind_text(a, 1, "instance_id", -1, SQLITE_STATIC);
	ok(sqlite3_step(a) == SQLITE_ROW &&
	    !strcmp((const char *)sqlite3_column_text(a, 0), id),
	    "a cached statement runs");
	b = store_stmt(sql);
	ok(b == a && sqlite3_bind_parameter_count(b) == 1 &&
	    sqlite3_step(b) == SQLITE_DONE,
	    "it comes back reset with bindings cleared");
	sqlite3_reset(b);
	ok(store_stmt("SELECT * FROM no_such_table") == NULL,
	    "bad SQL gives NULL");
	store_close();
	ok(!store_ready(), "not ready after store_close");
}

static void
test_reopen(const char *path, const char *id)
{
	sqlite3	*db;
	char	*err = NULL, *s;
	int	 rows;

	is_int(store_open(path, 1000, &err), 0, "store_open again%s%s",
	    err ? ": " : "", err ? err : "");
	free(err);
	db = store_db();
	rows = query_int(db, "SELECT count(*) FROM schema_version");
	is_int(rows, store_latest_version(), "no migration applied twice");
	is_int(store_schema_version(db), store_latest_version(),
	    "still at the latest version");
	s = query_text(db, "SELECT value FROM meta WHERE key = 'instance_id'");
	is_str(s, id, "the same instance_id");
	free(s);
	is_int(query_int(db, "SELECT count(*) FROM meta WHERE key = "
	    "'instance_id'"), 1, "one instance_id row");
	err = NULL;
	is_int(store_migrate(db, &err), 0, "store_migrate again is a no-op");
	free(err);
	is_int(query_int(db, "SELECT count(*) FROM schema_version"), rows,
	    "and added nothing");
	ok(store_ready(), "ready after reopening");
}

static void *
other_thread(void *arg)
{
	struct peek	*p = arg;
	sqlite3_stmt	*st;
	char		*s;
	static const char sql[] = "SELECT count(*) FROM meta";

	p->db = store_db();
	if (p->db == NULL)
		return NULL;
	s = query_text(p->db, "SELECT value FROM meta WHERE key = "
	    "'from_main'");
	snprintf(p->instance_id, sizeof(p->instance_id), "%s", s ? s : "");
	free(s);
	p->version = store_schema_version(p->db);
	st = store_stmt(sql);
	p->stmt_ok = st != NULL && sqlite3_db_handle(st) == p->db &&
	    sqlite3_step(st) == SQLITE_ROW;
	if (st != NULL)
		sqlite3_reset(st);
	return NULL;
}

static void
test_threads(const char *path)
{
	struct peek	 p;
	pthread_t	 t;
	sqlite3		*db = store_db();

	memset(&p, 0, sizeof(p));
	ok(sqlite3_exec(db, "INSERT INTO meta (key, value) VALUES "
	    "('from_main', 'hello')", NULL, NULL, NULL) == SQLITE_OK,
	    "main thread writes a row");
	if (pthread_create(&t, NULL, other_thread, &p) != 0) {
		ok(0, "pthread_create");
		return;
	}
	pthread_join(t, NULL);
	ok(p.db != NULL, "the other thread has a connection");
	ok(p.db != db, "its own sqlite3*, not the main thread's");
	is_str(p.instance_id, "hello", "it sees the main thread's write");
	is_int(p.version, store_latest_version(), "and the same schema");
	ok(p.stmt_ok, "its cached statement is on its own connection");
	ok(store_db() == db, "main thread's connection unchanged");
	store_close();
}

static void
test_newer(const char *path)
{
	sqlite3	*db = NULL;
	char	*err = NULL, sql[256];
	int	 future = store_latest_version() + 5;

	ok(sqlite3_open(path, &db) == SQLITE_OK, "make a database by hand");
	snprintf(sql, sizeof(sql), "CREATE TABLE schema_version (version "
	    "INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT "
	    "NULL DEFAULT 'x') STRICT; INSERT INTO schema_version (version, "
	    "name) VALUES (%d, 'future');", future);
	ok(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK,
	    "at schema version latest + 5");
	sqlite3_close(db);

	is_int(store_open(path, 1000, &err), -1,
	    "a database from a newer pincer is refused");
	ok(err != NULL && strstr(err, "newer") != NULL,
	    "the error says newer (%s)", err ? err : "none");
	free(err);
	db = store_db();
	is_int(store_schema_version(db), future, "the database is untouched");
	is_int(query_int(db, "SELECT count(*) FROM sqlite_master WHERE name = "
	    "'meta'"), 0, "no migration ran");
	ok(!store_ready(), "not ready at the wrong version");
	store_close();
}

/* First column of the first row, as text; caller frees. */
static char *
query_text(sqlite3 *db, const char *sql)
{
	sqlite3_stmt	*st;
	char		*s = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return NULL;
	if (sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_text(st, 0) != NULL)
		s = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return s;
}

static int
query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt	*st;
	int		 v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void
rm_db(const char *path)
{
	char	 side[160];

	unlink(path);
	snprintf(side, sizeof(side), "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", path);
	unlink(side);
}
