/* SPDX-License-Identifier: MIT */
/* audit.c: who did what, from where, when: logins, tokens, users, config. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "pincer.h"

void
audit_add(const char *actor, const char *ip, const char *action,
    const char *target, const char *detail)
{
	static const char sql[] = "INSERT INTO audit (actor, ip, action, "
	    "target, detail) VALUES (?, ?, ?, ?, ?)";
	sqlite3_stmt	*st = store_stmt(sql);
	struct logline	 l;

	if (log_begin(&l, LOG_INFO, "audit")) {
		log_str(&l, "action", action);
		log_str(&l, "actor", actor);
		log_str(&l, "ip", ip);
		log_str(&l, "target", target);
		log_end(&l);
	}
	if (st == NULL)
		return;
	sqlite3_bind_text(st, 1, actor != NULL ? actor : "-", -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ip != NULL ? ip : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, target != NULL ? target : "", -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(st, 5, detail != NULL ? detail : "", -1,
	    SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		log_warn("cannot write the audit log", "%s",
		    sqlite3_errmsg(store_db()));
	sqlite3_reset(st);
}

/*
 * Newest first, q->limit entries older than q->before (0: from the
 * newest) that pass the filters: actor (any case), action (a prefix, so
 * "user_" finds every user change), since (inclusive) and until
 * (exclusive), ISO 8601 UTC times compared as text like the ts column.
 * *next is the id to ask for the following page, 0 at the end.
 */
json_t *
audit_page(const struct audit_query *q, long long *next)
{
	static const char sql[] = "SELECT id, ts, actor, ip, action, target, "
	    "detail FROM audit WHERE (?1 = 0 OR id < ?1) AND "
	    "(?3 = '' OR actor = ?3 COLLATE NOCASE) AND "
	    "(?4 = '' OR substr(action, 1, length(?4)) = ?4) AND "
	    "(?5 = '' OR ts >= ?5) AND (?6 = '' OR ts < ?6) "
	    "ORDER BY id DESC LIMIT ?2";
	sqlite3_stmt	*st = store_stmt(sql);
	json_t		*a = json_array();
	long long	 last = 0;
	int		 n = 0;

	*next = 0;
	if (st == NULL)
		return a;
	/* One row more than asked says whether a next page exists. */
	sqlite3_bind_int64(st, 1, q->before);
	sqlite3_bind_int(st, 2, q->limit + 1);
	sqlite3_bind_text(st, 3, q->actor ? q->actor : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, q->action ? q->action : "", -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(st, 5, q->since ? q->since : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, q->until ? q->until : "", -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (n == q->limit) {
			*next = last;
			break;
		}
		last = sqlite3_column_int64(st, 0);
		json_array_append_new(a, json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,"
		    "s:s}", "id", (json_int_t)last,
		    "ts", sqlite3_column_text(st, 1),
		    "actor", sqlite3_column_text(st, 2),
		    "ip", sqlite3_column_text(st, 3),
		    "action", sqlite3_column_text(st, 4),
		    "target", sqlite3_column_text(st, 5),
		    "detail", sqlite3_column_text(st, 6)));
		n++;
	}
	sqlite3_reset(st);
	return a;
}

/*
 * A time for the filters: a UTC date, or a date and time with "T", ending
 * in "Z" when it has a time ("2026-12-03", "2026-12-03T06:30:00.000Z"):
 * what the ts column holds, so text order is time order.
 */
bool
audit_time_valid(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	size_t		 i, n = strlen(s);

	if (n != 10 && (n < 17 || n > sizeof(shape) - 1 || s[n - 1] != 'Z'))
		return false;
	for (i = 0; i < n; i++) {
		if (i == n - 1 && n > 10)
			break;
		if (shape[i] == 'd' ? !isdigit((unsigned char)s[i]) :
		    s[i] != shape[i])
			return false;
	}
	return true;
}
