/* SPDX-License-Identifier: MIT */
/* api_auth.c: login, logout, me, first-owner setup, API tokens, audit. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "pincer.h"

static void	 name_key(const char *, char *, size_t);
static bool	 throttled(struct http_req *, const char *);
static json_t	*scopes_json(unsigned);

static const char kind_names[][10] = { "none", "session", "token",
	"external", "local", "sandbox" };

/* POST /api/v1/auth/login {"username","password"} */
void
api_login(struct http_req *r)
{
	json_t		*b = api_body_object(r), *out;
	const char	*name, *pw;
	char		 key[160];
	struct user	 u;
	bool		 found, good = false, weaker = false;
	char		*err = NULL;

	if (b == NULL)
		return;
	name = json_string_value(json_object_get(b, "username"));
	pw = json_string_value(json_object_get(b, "password"));
	if (name == NULL || pw == NULL || strlen(name) > 128 ||
	    strlen(pw) > 1024) {
		http_error(r, 400, "bad_request", "send {\"username\": …, "
		    "\"password\": …}");
		goto out;
	}
	name_key(name, key, sizeof(key));
	if (throttled(r, key))
		goto out;
	/* Same work, same answer, whether or not the user exists. */
	found = users_find(name, &u) == 0;
	if (found && *u.hash != '\0')
		good = users_verify_password(u.hash, pw, &weaker);
	else
		users_dummy_verify(pw);
	if (!good || u.disabled) {
		throttle_fail("ip", http_req_ip(r));
		throttle_fail("user", key);
		audit_add(name, http_req_ip(r), "login_failed", "", "");
		http_error(r, 401, "invalid_credentials", "wrong user name or "
		    "password");
		goto out;
	}
	throttle_clear("ip", http_req_ip(r));
	throttle_clear("user", key);
	if (weaker && users_set_password(u.name, pw, &err) == 0)
		log_info("password rehashed with stronger parameters", "%s",
		    u.name);
	free(err);
	users_touch_login(u.id);
	audit_add(u.name, http_req_ip(r), "login", "", "");
	if (auth_session_issue(r, &u, NULL) == -1) {
		http_error(r, 500, "internal", "cannot issue a session");
		goto out;
	}
	out = json_pack("{s:s,s:s,s:s}", "user", u.name, "role",
	    users_role_name(u.role), "csrf_token", http_req_csrf(r));
	http_reply_json(r, 200, out);
out:
	json_decref(b);
}

/* POST /api/v1/auth/logout */
void
api_logout(struct http_req *r)
{
	struct identity	*id = http_req_identity(r);

	if (id->kind == ID_SESSION && auth_session_revoke(id) == -1) {
		http_error(r, 500, "internal", "cannot revoke the session");
		return;
	}
	audit_add(id->user, http_req_ip(r), "logout", "", "");
	auth_session_clear(r);
	http_json(r, 200, "{\"status\":\"logged_out\"}");
}

/* GET /api/v1/me */
void
api_me(struct http_req *r)
{
	struct identity	*id = http_req_identity(r);
	json_t		*o;
	char		 csrf[64];

	/* The identity was read from the database for this request. */
	o = json_pack("{s:s,s:s,s:s,s:s,s:o}", "name", id->user, "email",
	    id->email, "role", users_role_name(id->role), "auth",
	    kind_names[id->kind], "scopes", scopes_json(id->scopes));
	if (id->kind == ID_SESSION) {
		auth_csrf_token(id->sid, csrf, sizeof(csrf));
		json_object_set_new(o, "csrf_token", json_string(csrf));
	}
	if (id->kind == ID_TOKEN)
		json_object_set_new(o, "token_id", json_string(id->token_id));
	http_reply_json(r, 200, o);
}

/* POST /api/v1/auth/setup {"code","username","password","email"} */
void
api_setup(struct http_req *r)
{
	json_t		*b;
	const char	*code, *name, *pw, *email;
	struct user	 u;
	char		*err = NULL;

	if (users_count(false) != 0) {
		http_error(r, 409, "already_set_up", "the owner exists; log in");
		return;
	}
	if (throttled(r, "setup") || (b = api_body_object(r)) == NULL)
		return;
	code = json_string_value(json_object_get(b, "code"));
	name = json_string_value(json_object_get(b, "username"));
	pw = json_string_value(json_object_get(b, "password"));
	email = json_string_value(json_object_get(b, "email"));
	if (code == NULL || name == NULL || pw == NULL) {
		http_error(r, 400, "bad_request", "send {\"code\", "
		    "\"username\", \"password\"}");
	} else if (auth_setup_code_use(code) == -1) {
		throttle_fail("ip", http_req_ip(r));
		audit_add(name, http_req_ip(r), "setup_failed", "", "bad code");
		http_error(r, 401, "invalid_setup_code", "the setup code is "
		    "wrong, used or expired (restart pincerd for a new one)");
	} else if (users_add(name, email, ROLE_OWNER, pw, &err) == -1) {
		/* The code was spent; make a new one for the next try. */
		auth_setup_code_announce();
		http_error(r, 400, "bad_user", "%s; a new setup code is in the "
		    "log", err);
	} else if (users_find(name, &u) == 0 &&
	    auth_session_issue(r, &u, NULL) == 0) {
		audit_add(name, http_req_ip(r), "setup", name, "owner created");
		http_reply_json(r, 201, json_pack("{s:s,s:s,s:s}", "user",
		    u.name, "role", "owner", "csrf_token", http_req_csrf(r)));
	} else
		http_error(r, 500, "internal", "cannot create the session");
	free(err);
	json_decref(b);
}

/* GET /api/v1/tokens: one's own; with the admin scope, everyone's. */
void
api_tokens_list(struct http_req *r)
{
	struct identity	*id = http_req_identity(r);

	http_reply_json(r, 200, json_pack("{s:o}", "tokens", tokens_list(
	    id->scopes & SCOPE_ADMIN ? 0 : id->user_id)));
}

/* POST /api/v1/tokens {"name","scopes":"llm,read","ttl_s"} */
void
api_tokens_create(struct http_req *r)
{
	struct identity	*id = http_req_identity(r);
	json_t		*b = api_body_object(r), *ttlv;
	const char	*name, *scopes;
	json_int_t	 ttl;
	unsigned	 want;
	char		 tid[32], *tok, *err = NULL;

	if (b == NULL)
		return;
	name = json_string_value(json_object_get(b, "name"));
	scopes = json_string_value(json_object_get(b, "scopes"));
	ttlv = json_object_get(b, "ttl_s");
	ttl = json_integer_value(ttlv);
	/* Absent or 0: never expires. Anything but a sane integer: 400. */
	if (name == NULL || scopes == NULL || auth_scopes_check(scopes) == -1
	    || (ttlv != NULL && !json_is_integer(ttlv)) || ttl < 0 ||
	    ttl > 3650LL * 86400 || strlen(name) > 128) {
		http_error(r, 400, "bad_request", "send {\"name\", \"scopes\": "
		    "\"read,llm,sandbox,admin\" (some of), \"ttl_s\": seconds "
		    "up to 10 years, or 0 for none}");
		goto out;
	}
	want = auth_scopes_parse(scopes);
	/* No credential mints one stronger than itself. */
	if ((want & id->scopes) != want) {
		http_error(r, 403, "forbidden", "a token cannot have scopes "
		    "its maker lacks");
		goto out;
	}
	if ((tok = tokens_create(id->user_id, name, want, (long)ttl, tid,
	    sizeof(tid), &err)) == NULL) {
		http_error(r, 500, "internal", "%s", err ? err : "no token");
		goto out;
	}
	audit_add(id->user, http_req_ip(r), "token_create", tid, scopes);
	http_reply_json(r, 201, json_pack("{s:s,s:s,s:s}", "id", tid, "token",
	    tok, "note", "shown once: store it now"));
	explicit_bzero(tok, strlen(tok));
	free(tok);
out:
	free(err);
	json_decref(b);
}

/* DELETE /api/v1/tokens/{id} */
void
api_tokens_revoke(struct http_req *r)
{
	struct identity	*id = http_req_identity(r);
	const char	*tid = http_req_param(r);

	if (tokens_revoke(tid, id->scopes & SCOPE_ADMIN ? 0 : id->user_id) ==
	    -1) {
		http_error(r, 404, "not_found", "no such live token");
		return;
	}
	audit_add(id->user, http_req_ip(r), "token_revoke", tid, "");
	http_json(r, 200, "{\"status\":\"revoked\"}");
}

/*
 * GET /api/v1/audit?before=ID&limit=N&actor=NAME&action=PREFIX
 * &since=TIME&until=TIME
 */
void
api_audit(struct http_req *r)
{
	const char		*b = http_req_query(r, "before");
	const char		*l = http_req_query(r, "limit");
	struct audit_query	 q = { .actor = http_req_query(r, "actor"),
				    .action = http_req_query(r, "action"),
				    .since = http_req_query(r, "since"),
				    .until = http_req_query(r, "until") };
	long long		 next;
	long			 limit = l != NULL ? strtol(l, NULL, 10) : 50;
	json_t			*page, *o;

	q.before = b != NULL ? strtoll(b, NULL, 10) : 0;
	if (limit < 1 || limit > 500 || q.before < 0) {
		http_error(r, 400, "bad_request", "limit is 1 to 500, before "
		    "an entry id");
		return;
	}
	if ((q.since != NULL && *q.since && !audit_time_valid(q.since)) ||
	    (q.until != NULL && *q.until && !audit_time_valid(q.until))) {
		http_error(r, 400, "bad_time", "since and until are UTC "
		    "times like 2026-12-03 or 2026-12-03T06:30:00Z");
		return;
	}
	q.limit = (int)limit;
	page = audit_page(&q, &next);
	o = json_pack("{s:o}", "entries", page);
	json_object_set_new(o, "next_before", next ? json_integer(next) :
	    json_null());
	http_reply_json(r, 200, o);
}

/* The request's body as a JSON object, or NULL after answering 400. */
json_t *
api_body_object(struct http_req *r)
{
	const char	*p;
	size_t		 n;
	json_t		*j;
	json_error_t	 e;

	http_req_body(r, &p, &n);
	j = json_loadb(p, n, JSON_REJECT_DUPLICATES, &e);
	if (j == NULL || !json_is_object(j)) {
		http_error(r, 400, "bad_json", "the body must be a JSON object"
		    "%s%s", j == NULL ? ": " : "", j == NULL ? e.text : "");
		json_decref(j);
		return NULL;
	}
	return j;
}

/* The wait never says whether the name exists: both keys count. */
static bool
throttled(struct http_req *r, const char *name)
{
	long	 w1 = throttle_wait("ip", http_req_ip(r));
	long	 w2 = throttle_wait("user", name);
	long	 w = w1 > w2 ? w1 : w2;
	char	 msg[80];

	if (w == 0)
		return false;
	snprintf(msg, sizeof(msg), "too many failed attempts; wait %ld s", w);
	http_retry_later(r, w, "too_many_attempts", msg);
	return true;
}

/* Names are matched without case: so is the per-name throttle. */
static void
name_key(const char *name, char *out, size_t outsz)
{
	size_t	 i;

	for (i = 0; name[i] != '\0' && i + 1 < outsz; i++)
		out[i] = (char)tolower((unsigned char)name[i]);
	out[i] = '\0';
}

static json_t *
scopes_json(unsigned m)
{
	static const char *const names[] = { "read", "llm", "sandbox",
		"admin", "chat", "browser" };
	json_t	*a = json_array();
	size_t	 i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (m & (1u << i))
			json_array_append_new(a, json_string(names[i]));
	return a;
}
