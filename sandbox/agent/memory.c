/* SPDX-License-Identifier: MIT */
/*
 * memory.c: what the agent keeps across conversations, in OpenClaw's
 * workspace layout under the data folder, so a workspace copied over
 * from OpenClaw works as it is:
 *   MEMORY.md               long-term memory, given at every turn
 *   memory/YYYY-MM-DD.md    daily notes; today's and yesterday's given
 *   USER.md SOUL.md AGENTS.md   bootstrap files, given when present
 * Each is capped in the prompt. memory_search ranks paragraphs of every
 * memory file with SQLite FTS5 (BM25); the index is brought up to date
 * from the files' times and sizes before each search.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "agent.h"

#define FILE_CAP	(16 * 1024)	/* one file in the prompt */
#define INDEX_MAX	(1L << 20)	/* a file indexed */
#define CHUNK_MAX	1500		/* a search result's text */

static const char *const bootstrap[] = { "AGENTS.md", "SOUL.md", "USER.md",
	NULL };

static void	 day_name(int days_ago, char *, size_t);
static void	 section(struct buf *, const struct agent *, const char *rel,
		    const char *title);
static int	 sync_index(const struct agent *, sqlite3 *);
static void	 index_file(sqlite3 *, const char *full, const char *rel);
static void	 put_chunk(sqlite3_stmt *, const char *, int, struct buf *);

/* The memory part of the system prompt. */
void
memory_context(const struct agent *ag, struct buf *b)
{
	char	 rel[64];
	size_t	 i;

	for (i = 0; bootstrap[i] != NULL; i++)
		section(b, ag, bootstrap[i], bootstrap[i]);
	section(b, ag, "MEMORY.md", "MEMORY.md (your long-term memory)");
	day_name(1, rel, sizeof(rel));
	section(b, ag, rel, rel);
	day_name(0, rel, sizeof(rel));
	section(b, ag, rel, rel);
	buf_printf(b, "\n\nYour memory lives in %s: MEMORY.md for what "
	    "must last, memory/YYYY-MM-DD.md for the day's notes. Nothing "
	    "else survives this conversation: write down what matters "
	    "(memory_write) and look things up (memory_search) before "
	    "saying you do not know.", ag->data_dir);
}

/* One file as a titled section, capped; nothing when it is absent. */
static void
section(struct buf *b, const struct agent *ag, const char *rel,
    const char *title)
{
	char		 path[PATH_MAX], chunk[4096];
	struct stat	 sb;
	ssize_t		 r;
	size_t		 n = 0;
	int		 fd;

	snprintf(path, sizeof(path), "%s/%s", ag->data_dir, rel);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return;
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) || sb.st_size == 0) {
		close(fd);
		return;
	}
	buf_printf(b, "\n\n## %s\n", title);
	while (n < FILE_CAP && (r = read(fd, chunk, sizeof(chunk) <
	    FILE_CAP - n ? sizeof(chunk) : FILE_CAP - n)) > 0) {
		buf_append(b, chunk, (size_t)r);
		n += (size_t)r;
	}
	close(fd);
	if (sb.st_size > FILE_CAP)
		buf_printf(b, "\n[%s is %lld bytes; the first %d are shown: "
		    "read_file %s for the rest]", rel, (long long)sb.st_size,
		    FILE_CAP, path);
}

/* memory/YYYY-MM-DD.md for today (0) or a day before, in UTC. */
static void
day_name(int days_ago, char *out, size_t outsz)
{
	time_t		 t = time(NULL) - (time_t)days_ago * 86400;
	struct tm	 tm;

	gmtime_r(&t, &tm);
	strftime(out, outsz, "memory/%Y-%m-%d.md", &tm);
}

/* Letters, digits, '_' and any byte of a UTF-8 sequence. */
static bool
word_char(unsigned char c)
{
	return isalnum(c) || c == '_' || c >= 0x80;
}

/* Appends a note to today's file (default) or to MEMORY.md. */
bool
memory_write(const struct agent *ag, json_t *args, struct buf *out)
{
	const char	*text = json_string_value(json_object_get(args,
			    "text"));
	const char	*where = json_string_value(json_object_get(args,
			    "where"));
	char		 rel[64], path[PATH_MAX], stamp[32];
	time_t		 now = time(NULL);
	struct tm	 tm;
	bool		 lt;
	FILE		*f;

	if (text == NULL || *text == '\0') {
		buf_puts(out, "error: \"text\" (the note) is required");
		return false;
	}
	lt = where != NULL && !strcmp(where, "long_term");
	if (where != NULL && !lt && strcmp(where, "daily") != 0) {
		buf_printf(out, "error: \"where\" is \"daily\" or "
		    "\"long_term\", not \"%s\"", where);
		return false;
	}
	if (lt)
		snprintf(rel, sizeof(rel), "MEMORY.md");
	else
		day_name(0, rel, sizeof(rel));
	snprintf(path, sizeof(path), "%s/memory", ag->data_dir);
	if (!lt && mkdir(path, 0755) == -1 && errno != EEXIST) {
		buf_printf(out, "error: %s: %s", path, strerror(errno));
		return false;
	}
	snprintf(path, sizeof(path), "%s/%s", ag->data_dir, rel);
	if ((f = fopen(path, "ae")) == NULL) {
		buf_printf(out, "error: %s: %s", path, strerror(errno));
		return false;
	}
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%H:%M", &tm);
	if (lt)
		fprintf(f, "\n%s\n", text);
	else
		fprintf(f, "\n- %s UTC: %s\n", stamp, text);
	if (fclose(f) != 0) {
		buf_printf(out, "error: %s: %s", path, strerror(errno));
		return false;
	}
	buf_printf(out, "noted in %s", rel);
	return true;
}

/* The memory files' paragraphs that best match the query (BM25). */
bool
memory_search(const struct agent *ag, json_t *args, struct buf *out)
{
	const char	*q = json_string_value(json_object_get(args,
			    "query"));
	json_int_t	 limit = json_integer_value(json_object_get(args,
			    "limit"));
	sqlite3		*db;
	sqlite3_stmt	*st = NULL;
	struct buf	 match;
	char		 why[PATH_MAX + 128];
	const char	*p, *s;
	int		 n = 0;

	if (q == NULL || *q == '\0') {
		buf_puts(out, "error: \"query\" is required");
		return false;
	}
	if (limit < 1 || limit > 20)
		limit = 5;
	if ((db = agent_db(ag, why, sizeof(why))) == NULL) {
		buf_printf(out, "error: %s", why);
		return false;
	}
	if (sync_index(ag, db) == -1) {
		buf_printf(out, "error: indexing memory: %s",
		    sqlite3_errmsg(db));
		sqlite3_close(db);
		return false;
	}
	/* Each word quoted (FTS5 syntax is not the model's to use), any
	 * of them matching; BM25 ranks those with more and rarer ones. */
	buf_init(&match, 4096);
	for (p = q; *p != '\0'; p = s) {
		while (*p != '\0' && !word_char((unsigned char)*p))
			p++;
		for (s = p; *s != '\0' && word_char((unsigned char)*s); s++)
			;
		if (s > p)
			buf_printf(&match, "%s\"%.*s\"", match.len ? " OR " :
			    "", (int)(s - p), p);
	}
	if (match.len == 0) {
		buf_puts(out, "error: the query has no words to search for");
		buf_free(&match);
		sqlite3_close(db);
		return false;
	}
	sqlite3_prepare_v2(db, "SELECT path, line, text FROM memory_chunks "
	    "WHERE memory_chunks MATCH ? ORDER BY bm25(memory_chunks) "
	    "LIMIT ?", -1, &st, NULL);
	sqlite3_bind_text(st, 1, match.data, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, limit);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char	*t = (const char *)sqlite3_column_text(st, 2);

		buf_printf(out, "%s%s:%d\n%.*s%s\n", n++ ? "\n" : "",
		    sqlite3_column_text(st, 0), sqlite3_column_int(st, 1),
		    CHUNK_MAX, t, strlen(t) > CHUNK_MAX ? " […]" : "");
	}
	if (n == 0)
		buf_printf(out, "nothing in memory matches \"%s\"", q);
	sqlite3_finalize(st);
	buf_free(&match);
	sqlite3_close(db);
	return true;
}

/* The memory files, relative to the data folder. */
static size_t
list_files(const struct agent *ag, char names[][64], size_t max)
{
	char		 dir[PATH_MAX];
	DIR		*d;
	struct dirent	*e;
	size_t		 n = 0, i;

	snprintf(names[n++], 64, "MEMORY.md");
	for (i = 0; bootstrap[i] != NULL && n < max; i++)
		snprintf(names[n++], 64, "%s", bootstrap[i]);
	snprintf(dir, sizeof(dir), "%s/memory", ag->data_dir);
	if ((d = opendir(dir)) == NULL)
		return n;
	while ((e = readdir(d)) != NULL && n < max) {
		size_t	 len = strlen(e->d_name);

		if (len > 3 && len < 50 && !strcmp(e->d_name + len - 3, ".md"))
			snprintf(names[n++], 64, "memory/%s", e->d_name);
	}
	closedir(d);
	return n;
}

/* Files new or changed since they were indexed are indexed again; files
 * gone leave the index. One transaction. */
static int
sync_index(const struct agent *ag, sqlite3 *db)
{
	static char	 names[4096][64];
	sqlite3_stmt	*get = NULL, *put = NULL, *all = NULL;
	struct stat	 sb;
	char		 full[PATH_MAX];
	size_t		 n, i;
	long long	 mt;
	int		 rc = -1;

	n = list_files(ag, names, sizeof(names) / sizeof(names[0]));
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	sqlite3_prepare_v2(db, "SELECT mtime_ns, size FROM memory_files "
	    "WHERE path = ?", -1, &get, NULL);
	sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO memory_files (path, "
	    "mtime_ns, size) VALUES (?, ?, ?)", -1, &put, NULL);
	for (i = 0; i < n; i++) {
		snprintf(full, sizeof(full), "%s/%s", ag->data_dir, names[i]);
		if (stat(full, &sb) == -1 || !S_ISREG(sb.st_mode))
			continue;
		mt = (long long)sb.st_mtim.tv_sec * 1000000000LL +
		    sb.st_mtim.tv_nsec;
		sqlite3_bind_text(get, 1, names[i], -1, SQLITE_STATIC);
		if (sqlite3_step(get) == SQLITE_ROW &&
		    sqlite3_column_int64(get, 0) == mt &&
		    sqlite3_column_int64(get, 1) == (long long)sb.st_size) {
			sqlite3_reset(get);
			continue;
		}
		sqlite3_reset(get);
		index_file(db, full, names[i]);
		sqlite3_bind_text(put, 1, names[i], -1, SQLITE_STATIC);
		sqlite3_bind_int64(put, 2, mt);
		sqlite3_bind_int64(put, 3, (long long)sb.st_size);
		if (sqlite3_step(put) != SQLITE_DONE)
			goto out;
		sqlite3_reset(put);
	}
	/* Files that went away. */
	sqlite3_prepare_v2(db, "SELECT path FROM memory_files", -1, &all,
	    NULL);
	while (sqlite3_step(all) == SQLITE_ROW) {
		const char	*p = (const char *)
				    sqlite3_column_text(all, 0);

		snprintf(full, sizeof(full), "%s/%s", ag->data_dir, p);
		if (access(full, F_OK) == 0)
			continue;
		index_file(db, NULL, p);
	}
	sqlite3_exec(db, "DELETE FROM memory_files WHERE path NOT IN "
	    "(SELECT DISTINCT path FROM memory_chunks)", NULL, NULL, NULL);
	rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? 0 :
	    -1;
out:
	sqlite3_finalize(get);
	sqlite3_finalize(put);
	sqlite3_finalize(all);
	if (rc == -1)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/* One paragraph into the index; the paragraph buffer is emptied. */
static void
put_chunk(sqlite3_stmt *st, const char *rel, int line, struct buf *para)
{
	sqlite3_bind_text(st, 1, rel, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, line);
	sqlite3_bind_text(st, 3, para->data, (int)para->len, SQLITE_STATIC);
	sqlite3_step(st);
	sqlite3_reset(st);
	buf_reset(para);
}

/* A file's paragraphs (blank-line separated; a heading starts one),
 * each with its first line's number. full NULL: only removed. */
static void
index_file(sqlite3 *db, const char *full, const char *rel)
{
	sqlite3_stmt	*st = NULL;
	struct buf	 text, para;
	char		 why[PATH_MAX + 128], *line, *next;
	int		 lno = 0, start = 0;

	sqlite3_prepare_v2(db, "DELETE FROM memory_chunks WHERE path = ?", -1,
	    &st, NULL);
	sqlite3_bind_text(st, 1, rel, -1, SQLITE_STATIC);
	sqlite3_step(st);
	sqlite3_finalize(st);
	if (full == NULL)
		return;
	buf_init(&text, INDEX_MAX);
	buf_init(&para, INDEX_MAX);
	if (agent_slurp(full, INDEX_MAX, &text, why, sizeof(why)) == -1 ||
	    buf_append(&text, "\n", 1) == -1) {
		buf_free(&text);
		return;
	}
	sqlite3_prepare_v2(db, "INSERT INTO memory_chunks (path, line, text) "
	    "VALUES (?, ?, ?)", -1, &st, NULL);
	for (line = text.data; line != NULL && *line != '\0'; line = next) {
		bool	 blank, heading;

		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		lno++;
		blank = line[strspn(line, " \t\r")] == '\0';
		heading = line[0] == '#';
		if ((blank || heading) && para.len > 0)
			put_chunk(st, rel, start, &para);
		if (blank)
			continue;
		if (para.len == 0)
			start = lno;
		else
			buf_append(&para, "\n", 1);
		buf_puts(&para, line);
	}
	if (para.len > 0)
		put_chunk(st, rel, start, &para);
	sqlite3_finalize(st);
	buf_free(&text);
	buf_free(&para);
}
