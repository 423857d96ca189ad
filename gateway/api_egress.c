/* SPDX-License-Identifier: MIT */
/*
 * api_egress.c: GET /api/v1/egress/log, the egress proxy's requests as
 * egress_log.c stored them, newest first, a page at a time (as the audit
 * log is paged: before an id).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "pincer.h"

#define LIMIT_DEF	100
#define LIMIT_MAX	1000
#define HOST_MAX	255

struct filter {
	long long	 before, limit;
	const char	*sandbox;	/* NULL: any */
	char		 host[HOST_MAX + 1];	/* "": any */
	const char	*action;	/* NULL: any */
};

static int	 parse_filter(struct http_req *, struct filter *);
static int	 num_param(struct http_req *, const char *, long long max,
		    long long *);
static json_t	*read_page(const struct filter *, long long *next);
static json_t	*row_json(sqlite3_stmt *);

/* The columns of an entry, in the SELECT's order. */
enum col_kind { C_INT, C_STR, C_BOOL };
static const struct {
	const char	*name;
	enum col_kind	 kind;
} cols[] = {
	{ "id", C_INT }, { "time", C_STR }, { "sandbox", C_STR },
	{ "policy", C_STR }, { "method", C_STR }, { "host", C_STR },
	{ "port", C_INT }, { "path", C_STR }, { "action", C_STR },
	{ "rule", C_INT }, { "status", C_INT }, { "bytes_up", C_INT },
	{ "bytes_down", C_INT }, { "ms", C_INT },
	{ "intercepted", C_BOOL },
};

/* GET /api/v1/egress/log?sandbox=&host=&action=&limit=&before= */
void
api_egress_log(struct http_req *r)
{
	struct filter	 f;
	json_t		*page, *o;
	long long	 next;

	if (parse_filter(r, &f) == -1) {
		http_error(r, 400, "bad_request", "limit is 1 to %d, before an "
		    "entry id, action allow, inject, deny or error, sandbox a "
		    "sandbox's name, host a host name", LIMIT_MAX);
		return;
	}
	/* What the proxy queued before this request is in the answer. */
	egress_log_flush();
	if ((page = read_page(&f, &next)) == NULL) {
		http_error(r, 500, "internal", "the store failed");
		return;
	}
	o = json_pack("{s:o}", "entries", page);
	json_object_set_new(o, "next_before", next != 0 ?
	    json_integer(next) : json_null());
	http_reply_json(r, 200, o);
}

static int
parse_filter(struct http_req *r, struct filter *f)
{
	const char	*h = http_req_query(r, "host");
	size_t		 i;

	memset(f, 0, sizeof(*f));
	f->limit = LIMIT_DEF;
	if (num_param(r, "limit", LIMIT_MAX, &f->limit) == -1 ||
	    num_param(r, "before", INT64_MAX, &f->before) == -1)
		return -1;
	/* An empty field (a form left blank) filters nothing. */
	f->sandbox = http_req_query(r, "sandbox");
	if (f->sandbox != NULL && *f->sandbox == '\0')
		f->sandbox = NULL;
	if (f->sandbox != NULL && strlen(f->sandbox) > SBX_NAME_MAX)
		return -1;
	f->action = http_req_query(r, "action");
	if (f->action != NULL && *f->action == '\0')
		f->action = NULL;
	if (f->action != NULL && strcmp(f->action, "allow") &&
	    strcmp(f->action, "inject") && strcmp(f->action, "deny") &&
	    strcmp(f->action, "error"))
		return -1;
	/* Hosts are stored in lower case. */
	if (h != NULL && strlen(h) > HOST_MAX)
		return -1;
	for (i = 0; h != NULL && h[i] != '\0'; i++)
		f->host[i] = h[i] >= 'A' && h[i] <= 'Z' ? h[i] + 'a' - 'A' :
		    h[i];
	f->host[i] = '\0';
	return 0;
}

/* Absent: *out stays. Digits only, 1 to max. */
static int
num_param(struct http_req *r, const char *name, long long max,
    long long *out)
{
	const char	*s = http_req_query(r, name);
	char		*end;
	long long	 v;

	if (s == NULL)
		return 0;
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end != '\0' || errno != 0 || v < 1 || v > max)
		return -1;
	*out = v;
	return 0;
}

/*
 * One row more than asked says whether a next page exists; *next is the
 * before= of that page, 0 at the end. The statement is made for the
 * filters given (each has its index) and not cached: an admin's page is
 * rare, and the per-thread statement cache is small.
 */
static json_t *
read_page(const struct filter *f, long long *next)
{
	sqlite3_stmt	*st = NULL;
	json_t		*a;
	long long	 last = 0, n = 0;
	char		 sql[640];
	int		 rc;

	*next = 0;
	snprintf(sql, sizeof(sql), "SELECT id, strftime('%%Y-%%m-%%dT"
	    "%%H:%%M:%%fZ', ts_ms / 1000.0, 'unixepoch'), sandbox, policy, "
	    "method, host, port, path, action, rule, status, bytes_up, "
	    "bytes_down, ms, intercepted FROM egress_log WHERE id < ?1%s%s%s "
	    "ORDER BY id DESC LIMIT ?5",
	    f->sandbox != NULL ? " AND sandbox = ?2" : "",
	    f->host[0] != '\0' ? " AND host = ?3" : "",
	    f->action != NULL ? " AND action = ?4" : "");
	if (store_db() == NULL || sqlite3_prepare_v2(store_db(), sql, -1, &st,
	    NULL) != SQLITE_OK) {
		log_error("cannot read the egress log", "%s", store_db() !=
		    NULL ? sqlite3_errmsg(store_db()) : "no database");
		return NULL;
	}
	sqlite3_bind_int64(st, 1, f->before > 0 ? f->before : INT64_MAX);
	sqlite3_bind_text(st, 2, f->sandbox, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, f->host, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, f->action, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, f->limit + 1);
	a = json_array();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == f->limit) {
			*next = last;
			break;
		}
		last = sqlite3_column_int64(st, 0);
		json_array_append_new(a, row_json(st));
		n++;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		log_error("cannot read the egress log", "%s",
		    sqlite3_errmsg(store_db()));
		json_decref(a);
		a = NULL;
	}
	sqlite3_finalize(st);
	return a;
}

/* NULL columns are JSON nulls (a CONNECT has no path). */
static json_t *
row_json(sqlite3_stmt *st)
{
	json_t		*o = json_object(), *v;
	const char	*s;
	size_t		 i;

	for (i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
		if (sqlite3_column_type(st, (int)i) == SQLITE_NULL)
			v = json_null();
		else if (cols[i].kind == C_INT)
			v = json_integer(sqlite3_column_int64(st, (int)i));
		else if (cols[i].kind == C_BOOL)
			v = json_boolean(sqlite3_column_int(st, (int)i));
		else {
			s = (const char *)sqlite3_column_text(st, (int)i);
			/* Rows are ASCII; an odd one still answers. */
			if ((v = json_string(s != NULL ? s : "")) == NULL)
				v = json_null();
		}
		json_object_set_new(o, cols[i].name, v);
	}
	return o;
}
