/* SPDX-License-Identifier: MIT */
/* audit.c: who did what, from where, when: logins, tokens, users, config. */
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
 * Newest first, limit entries older than before_id (0: from the newest).
 * *next is the id to ask for the following page, 0 at the end.
 */
json_t *
audit_page(long long before_id, int limit, long long *next)
{
	static const char sql[] = "SELECT id, ts, actor, ip, action, target, "
	    "detail FROM audit WHERE ?1 = 0 OR id < ?1 ORDER BY id DESC "
	    "LIMIT ?2";
	sqlite3_stmt	*st = store_stmt(sql);
	json_t		*a = json_array();
	long long	 last = 0;
	int		 n = 0;

	*next = 0;
	if (st == NULL)
		return a;
	/* One row more than asked says whether a next page exists. */
	sqlite3_bind_int64(st, 1, before_id);
	sqlite3_bind_int(st, 2, limit + 1);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (n == limit) {
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
