/* SPDX-License-Identifier: MIT */
/* test_egress_log.c: the egress request log (egress_log.c) on a real
 * store: what a row keeps of a path, the drops of a full queue while
 * the store is locked, egress.log_max_rows and retention 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "pincer.h"
#include "egress.h"
#include "tap.h"

static void
add(const char *method, const char *host, const char *path)
{
	struct eg_logrec	 r = {
		.ts_ms = now_wall_ms(), .sandbox = "box", .policy = "p",
		.method = method, .host = host, .port = 80, .path = path,
		.action = "allow", .rule = 1, .status = 200, .bytes_up = 10,
		.bytes_down = 20, .ms = 3,
	};

	egress_log_add(&r);
}

static long long
one(const char *sql)
{
	sqlite3_stmt	*st = store_stmt(sql);
	long long	 v = -1;

	if (st != NULL && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	if (st != NULL)
		sqlite3_reset(st);
	return v;
}

/* The path of the newest row, "(null)" for NULL. */
static const char *
last_path(char *out, size_t outsz)
{
	sqlite3_stmt	*st = store_stmt("SELECT path FROM egress_log "
	    "ORDER BY id DESC LIMIT 1");
	const char	*p = NULL;

	if (st != NULL && sqlite3_step(st) == SQLITE_ROW)
		p = (const char *)sqlite3_column_text(st, 0);
	snprintf(out, outsz, "%s", p != NULL ? p : "(null)");
	if (st != NULL)
		sqlite3_reset(st);
	return out;
}

static void
use_config(const char *json)
{
	struct config	*c;
	char		*err = NULL;

	c = config_parse(json, strlen(json), "test", &err);
	ok(c != NULL, "config %s%s", json, err != NULL ? err : "");
	free(err);
	if (c != NULL)
		config_publish(c);
}

static void
paths(void)
{
	char	 long_path[2048], got[1024];

	add("GET", "Example.COM", "/a/b?token=SECRETVALUE123");
	egress_log_flush();
	is_str(last_path(got, sizeof(got)), "/a/b?…", "the query is cut to "
	    "?…");
	is_int(one("SELECT count(*) FROM egress_log WHERE path LIKE "
	    "'%SECRET%'"), 0, "… and not stored");
	is_int(one("SELECT count(*) FROM egress_log WHERE host = "
	    "'example.com'"), 1, "the host is kept in lower case");
	add("GET", "h", "/frag#x");
	egress_log_flush();
	is_str(last_path(got, sizeof(got)), "/frag?…", "a fragment too");
	add("GET", "h", "/sp ace/\x01\xc3\xa9");
	egress_log_flush();
	is_str(last_path(got, sizeof(got)), "/sp%20ace/%01%C3%A9",
	    "other bytes than printable ASCII are percent-escaped");
	add("CONNECT", "h", NULL);
	egress_log_flush();
	is_str(last_path(got, sizeof(got)), "(null)", "CONNECT: no path");
	long_path[0] = '/';
	memset(long_path + 1, 'x', sizeof(long_path) - 2);
	long_path[sizeof(long_path) - 1] = '\0';
	add("GET", "h", long_path);
	egress_log_flush();
	last_path(got, sizeof(got));
	ok(strlen(got) <= 512 && strlen(got) > 500 &&
	    !strcmp(got + strlen(got) - 3, "…"), "a long path is cut to "
	    "512 bytes, ending in …");
}

/*
 * The store locked by another connection: the writer waits in its
 * batch, the queue fills, and the oldest records are dropped, never
 * the caller made to wait.
 */
static void
drops(void)
{
	struct buf	 m;
	long long	 before = one("SELECT count(*) FROM egress_log");
	sqlite3		*db;
	int		 i;

	ok(sqlite3_open(getenv("T_DB"), &db) == SQLITE_OK &&
	    sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) ==
	    SQLITE_OK, "another connection holds the write lock");
	add("GET", "h", "/first");
	usleep(600 * 1000);	/* the writer takes it and waits */
	for (i = 0; i < 4096 + 10; i++)
		add("GET", "h", "/many");
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	egress_log_flush();
	is_int(one("SELECT count(*) FROM egress_log") - before, 1 + 4096,
	    "the first record and a full queue are stored");
	buf_init(&m, 1 << 16);
	egress_log_metrics(&m);
	ok(strstr(m.data, "pincer_egress_log_dropped_total 10\n") != NULL,
	    "the 10 past the queue were dropped and counted");
	buf_free(&m);
}

int
main(void)
{
	char	 dir[] = "/tmp/pincer-test-egress-log.XXXXXX";
	char	 db[128], *err = NULL;
	int	 i;

	if (mkdtemp(dir) == NULL) {
		printf("Bail out! mkdtemp failed\n");
		return 1;
	}
	log_setup(LOG_ERROR, LOG_LOGFMT);
	snprintf(db, sizeof(db), "%s/pincer.db", dir);
	setenv("T_DB", db, 1);
	ok(store_open(db, 5000, &err) == 0, "the store opens");
	use_config("{}");
	ok(egress_log_start() == 0, "egress_log_start");
	paths();
	drops();

	use_config("{\"egress\": {\"log_max_rows\": 3}}");
	for (i = 0; i < 5; i++)
		add("GET", "h", "/m");
	egress_log_flush();
	is_int(one("SELECT count(*) FROM egress_log"), 3,
	    "egress.log_max_rows 3: 3 rows after a batch");
	use_config("{\"egress\": {\"log_retention_days\": 0}}");
	add("GET", "h", "/none");
	egress_log_flush();
	is_int(one("SELECT count(*) FROM egress_log WHERE path = '/none'"), 0,
	    "egress.log_retention_days 0: nothing is added");
	egress_log_stop();
	add("GET", "h", "/after");
	ok(1, "a record after the stop is ignored");
	store_close();
	config_release_all();
	for (i = 0; i < 3; i++) {
		snprintf(db, sizeof(db), "%s/pincer.db%s", dir,
		    i == 0 ? "" : i == 1 ? "-wal" : "-shm");
		unlink(db);
	}
	rmdir(dir);
	return done_testing();
}
