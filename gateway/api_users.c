/* SPDX-License-Identifier: MIT */
/*
 * api_users.c: people managed over the API (the admin UI's Users page):
 * list, add, change role, disable, reset a password, delete. The rules
 * keep someone in charge: only an owner makes or changes an owner, the
 * last enabled owner stays one, and nobody locks themselves out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "pincer.h"

static bool	 owner_guard(struct http_req *, const struct user *,
		    bool promote);
static bool	 last_owner(const struct user *);

/* GET /api/v1/users */
void
api_users_list(struct http_req *r)
{
	http_reply_json(r, 200, json_pack("{s:o}", "users", users_list()));
}

/* POST /api/v1/users {"name","email","role","password"} */
void
api_users_create(struct http_req *r)
{
	struct identity	*id = http_req_identity(r);
	json_t		*b = api_body_object(r);
	const char	*name, *email, *rolestr, *pw;
	enum role	 role;
	char		*err = NULL;

	if (b == NULL)
		return;
	name = json_string_value(json_object_get(b, "name"));
	email = json_string_value(json_object_get(b, "email"));
	rolestr = json_string_value(json_object_get(b, "role"));
	pw = json_string_value(json_object_get(b, "password"));
	if (name == NULL || rolestr == NULL || pw == NULL ||
	    strlen(pw) > 1024 || (email != NULL && strlen(email) > 254)) {
		http_error(r, 400, "bad_request", "send {\"name\", \"role\": "
		    "\"member\", \"admin\" or \"owner\", \"password\" (8 or "
		    "more characters), \"email\" (optional)}");
	} else if (users_role_parse(rolestr, &role) == -1) {
		http_error(r, 400, "bad_role", "the role is member, admin or "
		    "owner");
	} else if (role == ROLE_OWNER && id->role != ROLE_OWNER) {
		http_error(r, 403, "owner_only", "only an owner may make "
		    "another owner");
	} else if (users_name_used_before(name)) {
		http_error(r, 409, "name_used", "%s", USERS_NAME_USED);
	} else if (users_add(name, email, role, pw, &err) == -1) {
		http_error(r, strstr(err, "exists") ? 409 : 400, strstr(err,
		    "exists") ? "exists" : "bad_user", "%s", err);
	} else {
		audit_add(id->user, http_req_ip(r), "user_add", name, rolestr);
		http_reply_json(r, 201, json_pack("{s:s,s:s,s:s}", "name",
		    name, "email", email ? email : "", "role", rolestr));
	}
	free(err);
	json_decref(b);
}

/*
 * PATCH /api/v1/users/{name} {"role", "disabled", "password"}: a new
 * password ends the person's sessions (their API tokens stay).
 */
void
api_users_update(struct http_req *r)
{
	struct identity	*id = http_req_identity(r);
	json_t		*b, *dis;
	const char	*rolestr, *pw;
	enum role	 role = ROLE_MEMBER;
	struct user	 u;
	char		*err = NULL;

	if (users_find(http_req_param(r), &u) == -1) {
		http_error(r, 404, "not_found", "no user of that name");
		return;
	}
	if ((b = api_body_object(r)) == NULL)
		return;
	rolestr = json_string_value(json_object_get(b, "role"));
	pw = json_string_value(json_object_get(b, "password"));
	dis = json_object_get(b, "disabled");
	/* Everything is checked before anything changes. */
	if ((rolestr == NULL && pw == NULL && dis == NULL) ||
	    (json_object_get(b, "role") && rolestr == NULL) ||
	    (json_object_get(b, "password") && pw == NULL) ||
	    (dis != NULL && !json_is_boolean(dis)) ||
	    (pw != NULL && strlen(pw) > 1024)) {
		http_error(r, 400, "bad_request", "send one or more of "
		    "{\"role\": \"member\", \"admin\" or \"owner\", "
		    "\"disabled\": true or false, \"password\": a new one}");
		goto out;
	}
	if (rolestr != NULL && users_role_parse(rolestr, &role) == -1) {
		http_error(r, 400, "bad_role", "the role is member, admin or "
		    "owner");
		goto out;
	}
	if (pw != NULL && strlen(pw) < 8) {
		http_error(r, 400, "bad_password", "a password has at least 8 "
		    "characters");
		goto out;
	}
	if (!owner_guard(r, &u, rolestr != NULL && role == ROLE_OWNER))
		goto out;
	if (json_is_true(dis) && u.id == id->user_id) {
		http_error(r, 409, "self", "you cannot disable your own "
		    "account; another admin can");
		goto out;
	}
	if (((rolestr != NULL && role != ROLE_OWNER) || json_is_true(dis)) &&
	    last_owner(&u)) {
		http_error(r, 409, "last_owner", "%s is the last owner: make "
		    "another owner first", u.name);
		goto out;
	}
	if (pw != NULL) {
		if (users_set_password(u.name, pw, &err) == -1 ||
		    users_end_sessions(u.name) == -1) {
			http_error(r, 500, "internal", "%s", err ? err :
			    "cannot end the sessions");
			goto out;
		}
		/* One's own reset keeps this session (same sid, so the
		 * page's CSRF token holds); every other one ends. */
		if (u.id == id->user_id && id->kind == ID_SESSION)
			auth_session_issue(r, &u, id->sid);
		audit_add(id->user, http_req_ip(r), "user_passwd", u.name, "");
	}
	if (rolestr != NULL && role != u.role) {
		if (users_set_role(u.name, role) == -1) {
			http_error(r, 500, "internal", "cannot change the "
			    "role");
			goto out;
		}
		audit_add(id->user, http_req_ip(r), "user_role", u.name,
		    rolestr);
	}
	if (dis != NULL && json_is_true(dis) != u.disabled) {
		if (users_set_disabled(u.name, json_is_true(dis)) == -1) {
			http_error(r, 500, "internal", "cannot change the "
			    "user");
			goto out;
		}
		audit_add(id->user, http_req_ip(r), json_is_true(dis) ?
		    "user_disable" : "user_enable", u.name, "");
	}
	users_find(u.name, &u);
	http_reply_json(r, 200, json_pack("{s:s,s:s,s:s,s:b}", "name", u.name,
	    "email", u.email, "role", users_role_name(u.role), "disabled",
	    u.disabled));
out:
	if (pw != NULL)
		explicit_bzero((char *)pw, strlen(pw));
	free(err);
	json_decref(b);
}

/* DELETE /api/v1/users/{name}: their tokens go with them. */
void
api_users_delete(struct http_req *r)
{
	struct identity	*id = http_req_identity(r);
	struct user	 u;

	if (users_find(http_req_param(r), &u) == -1) {
		http_error(r, 404, "not_found", "no user of that name");
		return;
	}
	if (!owner_guard(r, &u, false))
		return;
	if (u.id == id->user_id) {
		http_error(r, 409, "self", "you cannot delete your own "
		    "account; another admin can");
		return;
	}
	if (last_owner(&u)) {
		http_error(r, 409, "last_owner", "%s is the last owner: make "
		    "another owner first", u.name);
		return;
	}
	if (users_delete(u.name) == -1) {
		http_error(r, 500, "internal", "cannot delete the user");
		return;
	}
	audit_add(id->user, http_req_ip(r), "user_delete", u.name,
	    users_role_name(u.role));
	http_json(r, 200, "{\"status\":\"deleted\"}");
}

/*
 * An admin manages members and admins; an owner's account, and making
 * an owner, are for owners. Answers 403 itself.
 */
static bool
owner_guard(struct http_req *r, const struct user *u, bool promote)
{
	if (http_req_identity(r)->role == ROLE_OWNER ||
	    (u->role != ROLE_OWNER && !promote))
		return true;
	http_error(r, 403, "owner_only", promote ? "only an owner may make "
	    "another owner" : "only an owner may change an owner's account");
	return false;
}

/* The appliance always keeps one enabled owner: pincer's exposure rule
 * (listening beyond loopback) and recovery both depend on it. */
static bool
last_owner(const struct user *u)
{
	return u->role == ROLE_OWNER && !u->disabled && users_count(true) <= 1;
}

