/* SPDX-License-Identifier: MIT */
/*
 * history.c: a conversation's messages (chat-completions shape, one
 * JSON object a row) in $data/agent.db. A turn's messages are added in
 * one transaction at its end: a turn that dies half-way leaves the
 * history as it was, so running it again does not repeat anything.
 * Turns of other conversations may run at the same time in the same
 * sandbox: WAL mode and a busy timeout.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <sqlite3.h>

#include "agent.h"

static const char schema[] =
	"PRAGMA journal_mode=WAL;"
	"CREATE TABLE IF NOT EXISTS messages ("
	"  conversation TEXT NOT NULL,"
	"  seq INTEGER NOT NULL,"
	"  message TEXT NOT NULL,"
	"  created_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (conversation, seq));"
	"CREATE TABLE IF NOT EXISTS memory_files ("
	"  path TEXT PRIMARY KEY,"
	"  mtime_ns INTEGER NOT NULL,"
	"  size INTEGER NOT NULL);"
	"CREATE VIRTUAL TABLE IF NOT EXISTS memory_chunks USING fts5("
	"  path UNINDEXED, line UNINDEXED, text);";

/* The agent's database, its tables made if new (memory.c's too). */
sqlite3 *
agent_db(const struct agent *ag, char *why, size_t whysz)
{
	sqlite3	*db = NULL;
	char	 path[PATH_MAX];
	char	*err = NULL;

	snprintf(path, sizeof(path), "%s/agent.db", ag->data_dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
		snprintf(why, whysz, "%s: %s", path, db != NULL ?
		    sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 10000);
	if (sqlite3_exec(db, schema, NULL, NULL, &err) != SQLITE_OK) {
		snprintf(why, whysz, "%s: %s", path, err);
		sqlite3_free(err);
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

int
history_load(const struct agent *ag, json_t *messages, char *why,
    size_t whysz)
{
	sqlite3		*db;
	sqlite3_stmt	*st = NULL;
	json_t		*m;
	int		 rc;

	if ((db = agent_db(ag, why, whysz)) == NULL)
		return -1;
	sqlite3_prepare_v2(db, "SELECT message FROM messages WHERE "
	    "conversation = ? ORDER BY seq", -1, &st, NULL);
	sqlite3_bind_text(st, 1, ag->conversation, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((m = json_loads((const char *)sqlite3_column_text(st, 0),
		    0, NULL)) != NULL)
			json_array_append_new(messages, m);
	if (rc != SQLITE_DONE)
		snprintf(why, whysz, "reading the history: %s",
		    sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Rows for messages[from…], after the conversation's last; in the
 * caller's transaction. */
static int
insert_all(sqlite3 *db, const struct agent *ag, json_t *messages,
    size_t from)
{
	sqlite3_stmt	*st = NULL;
	struct timeval	 tv;
	long long	 seq = 0, ms;
	size_t		 i;
	char		*text;
	int		 rc = -1;

	gettimeofday(&tv, NULL);
	ms = (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
	sqlite3_prepare_v2(db, "SELECT coalesce(max(seq), 0) FROM messages "
	    "WHERE conversation = ?", -1, &st, NULL);
	sqlite3_bind_text(st, 1, ag->conversation, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		seq = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_prepare_v2(db, "INSERT INTO messages (conversation, seq, "
	    "message, created_ms) VALUES (?, ?, ?, ?)", -1, &st, NULL);
	for (i = from; i < json_array_size(messages); i++) {
		if ((text = json_dumps(json_array_get(messages, i),
		    JSON_COMPACT)) == NULL)
			goto out;
		sqlite3_bind_text(st, 1, ag->conversation, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, ++seq);
		sqlite3_bind_text(st, 3, text, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 4, ms);
		free(text);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto out;
		sqlite3_reset(st);
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

int
history_append(const struct agent *ag, json_t *messages, size_t from,
    char *why, size_t whysz)
{
	sqlite3	*db;
	int	 rc = -1;

	if ((db = agent_db(ag, why, whysz)) == NULL)
		return -1;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) ==
	    SQLITE_OK && insert_all(db, ag, messages, from) == 0 &&
	    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		rc = 0;
	if (rc == -1) {
		snprintf(why, whysz, "saving the history: %s",
		    sqlite3_errmsg(db));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	}
	sqlite3_close(db);
	return rc;
}

/*
 * Compaction: the conversation's history becomes the summary (a user
 * message) and messages[keep_from…], in one transaction.
 */
int
history_replace(const struct agent *ag, const char *summary,
    json_t *messages, size_t keep_from, char *why, size_t whysz)
{
	json_t	*kept = json_array();
	sqlite3	*db;
	int	 rc = -1;
	size_t	 i;

	json_array_append_new(kept, json_pack("{s:s, s:s}", "role", "user",
	    "content", summary));
	for (i = keep_from; i < json_array_size(messages); i++)
		json_array_append(kept, json_array_get(messages, i));
	if ((db = agent_db(ag, why, whysz)) == NULL) {
		json_decref(kept);
		return -1;
	}
	/* The delete and the inserts: one transaction. */
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) ==
	    SQLITE_OK) {
		sqlite3_stmt	*st = NULL;

		sqlite3_prepare_v2(db, "DELETE FROM messages WHERE "
		    "conversation = ?", -1, &st, NULL);
		sqlite3_bind_text(st, 1, ag->conversation, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_DONE &&
		    insert_all(db, ag, kept, 0) == 0 &&
		    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
			rc = 0;
		sqlite3_finalize(st);
	}
	if (rc == -1) {
		snprintf(why, whysz, "compacting the history: %s",
		    sqlite3_errmsg(db));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	}
	sqlite3_close(db);
	json_decref(kept);
	return rc;
}
