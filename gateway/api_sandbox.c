/* SPDX-License-Identifier: MIT */
/*
 * api_sandbox.c: /api/v1/sandboxes: create, list, inspect, stop and
 * destroy sandboxes, and everything below /api/v1/sandboxes/{name}/
 * forwarded to the sandbox's pincer-init (docs/sandbox-api.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <microhttpd.h>

#include "pincer.h"

#define PREFIX	"/api/v1/sandboxes/"

struct query {
	struct buf	*out;
	bool		 bad;
};

static bool	 name_of(struct http_req *, char *, size_t);
static bool	 existing(struct http_req *, char *, size_t);
static void	 reply_err(struct http_req *, enum sbx_err);
static enum MHD_Result add_arg(void *, enum MHD_ValueKind, const char *,
		    const char *);
static const char *actor(struct http_req *);

/* POST /api/v1/sandboxes {"name"}: create (if new) and start it. */
void
api_sandbox_create(struct http_req *r)
{
	const char	*body, *name;
	size_t		 len;
	json_t		*in, *info;
	json_error_t	 je;
	struct sbx_ref	 ref;
	enum sbx_err	 e;
	bool		 created;

	http_req_body(r, &body, &len);
	if ((in = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je)) ==
	    NULL) {
		http_error(r, 400, "bad_json", "the body is not JSON: %s",
		    je.text);
		return;
	}
	if (!json_is_object(in) ||
	    (name = json_string_value(json_object_get(in, "name"))) == NULL) {
		json_decref(in);
		http_error(r, 400, "bad_request", "send {\"name\": \"...\"}");
		return;
	}
	if (sbx_refusal() != NULL) {
		json_decref(in);
		http_error(r, 503, "sandbox_unavailable", "sandboxes cannot "
		    "run on this host: %s", sbx_refusal());
		return;
	}
	if ((e = sbx_create(name, actor(r), &created)) != SBX_OK) {
		json_decref(in);
		reply_err(r, e);
		return;
	}
	if (created)
		audit_add(actor(r), http_req_ip(r), "sandbox.create", name,
		    NULL);
	/* Get-or-start: it is running when this answers. */
	if ((e = sbx_acquire(name, &ref)) == SBX_OK)
		sbx_release(&ref);
	info = sbx_info(name);
	json_decref(in);
	if (e != SBX_OK && info != NULL)
		json_object_set_new(info, "error", json_string(
		    sbx_strerror(e)));
	http_reply_json(r, e != SBX_OK ? sbx_http_status(e) : created ? 201 :
	    200, info);
}

void
api_sandbox_list(struct http_req *r)
{
	http_reply_json(r, 200, json_pack("{s:o, s:I, s:I}", "sandboxes",
	    sbx_list(), "max_running",
	    (json_int_t)config_current()->sbx_max_running, "idle_sleep_s",
	    (json_int_t)config_current()->sbx_idle_s));
}

void
api_sandbox_get(struct http_req *r)
{
	char	 name[SBX_NAME_MAX + 1];
	json_t	*info;

	if (!name_of(r, name, sizeof(name)))
		return;
	if ((info = sbx_info(name)) == NULL) {
		reply_err(r, SBX_NOT_FOUND);
		return;
	}
	http_reply_json(r, 200, info);
}

/* DELETE: its processes end and its folder (workspace, data) goes. */
void
api_sandbox_destroy(struct http_req *r)
{
	char		 name[SBX_NAME_MAX + 1];
	enum sbx_err	 e;

	if (!name_of(r, name, sizeof(name)))
		return;
	if ((e = sbx_destroy(name)) != SBX_OK) {
		reply_err(r, e);
		return;
	}
	audit_add(actor(r), http_req_ip(r), "sandbox.destroy", name, NULL);
	http_reply_json(r, 200, json_pack("{s:s, s:b}", "name", name,
	    "destroyed", 1));
}

/* POST …/stop: to sleep now; the next request wakes it. */
void
api_sandbox_stop(struct http_req *r)
{
	char		 name[SBX_NAME_MAX + 1];
	enum sbx_err	 e;

	if (!name_of(r, name, sizeof(name)))
		return;
	if ((e = sbx_stop(name)) != SBX_OK) {
		reply_err(r, e);
		return;
	}
	audit_add(actor(r), http_req_ip(r), "sandbox.stop", name, NULL);
	http_reply_json(r, 200, sbx_info(name));
}

/* GET …/sync: where its /data stands; POST: sync it now, then that. */
void
api_sandbox_sync(struct http_req *r)
{
	char		 name[SBX_NAME_MAX + 1], err[256];
	json_t		*o;

	if (!existing(r, name, sizeof(name)))
		return;
	if (strcmp(http_req_method(r), "POST") != 0)
		o = objstore_sync_status(name);
	else if ((o = objstore_sync_now(name, err, sizeof(err))) == NULL) {
		http_error(r, 409, "sync_off", "%s", err);
		return;
	} else
		audit_add(actor(r), http_req_ip(r), "sandbox.sync", name,
		    NULL);
	json_object_set_new(o, "name", json_string(name));
	http_reply_json(r, 200, o);
}

/* The {name} of the path, of a sandbox that exists; else answered. */
static bool
existing(struct http_req *r, char *name, size_t namesz)
{
	json_t	*info;

	if (!name_of(r, name, namesz))
		return false;
	if ((info = sbx_info(name)) == NULL) {
		reply_err(r, SBX_NOT_FOUND);
		return false;
	}
	json_decref(info);
	return true;
}

/*
 * GET|PUT /api/v1/sandboxes/{name}/egress: the sandbox's egress policy,
 * and the definition it has; PUT {"policy": NAME} switches it from the
 * next request on, {"policy": null} goes back to egress.policy.
 */
void
api_sandbox_egress(struct http_req *r)
{
	char		 name[SBX_NAME_MAX + 1], err[200];
	const char	*body, *pol = NULL;
	size_t		 len;
	json_t		*in, *v;
	json_error_t	 je;

	if (!existing(r, name, sizeof(name)))
		return;
	if (!strcmp(http_req_method(r), "PUT")) {
		http_req_body(r, &body, &len);
		if ((in = json_loadb(body, len, JSON_REJECT_DUPLICATES,
		    &je)) == NULL) {
			http_error(r, 400, "bad_json", "the body is not JSON: "
			    "%s", je.text);
			return;
		}
		v = json_object_get(in, "policy");
		if (!json_is_object(in) || v == NULL ||
		    (!json_is_null(v) && (pol = json_string_value(v)) ==
		    NULL)) {
			json_decref(in);
			http_error(r, 400, "bad_request", "send {\"policy\": "
			    "\"NAME\"} (a name in egress.policies) or "
			    "{\"policy\": null}");
			return;
		}
		if (egress_conf_set(name, pol, err, sizeof(err)) == -1) {
			json_decref(in);
			http_error(r, 400, "unknown_policy", "%s", err);
			return;
		}
		audit_add(actor(r), http_req_ip(r), "sandbox.egress", name,
		    pol != NULL ? pol : "(default)");
		json_decref(in);
	}
	if ((v = egress_conf_get(name)) == NULL) {
		http_error(r, 500, "internal", "out of memory");
		return;
	}
	json_object_set_new(v, "name", json_string(name));
	http_reply_json(r, 200, v);
}

/*
 * Everything else under {name}/ goes to pincer-init as it came: the path
 * after the name, the query, the body. Paths and query values arrive
 * percent-decoded and leave encoded again, so a file name holding '%',
 * '?' or a space reaches the sandbox intact.
 */
void
api_sandbox_forward(struct http_req *r)
{
	char		 name[SBX_NAME_MAX + 1];
	const char	*rest;
	struct buf	 path, query;
	struct query	 q = { .out = &query };
	struct sbx_ref	 ref;
	enum sbx_err	 e;

	if (!name_of(r, name, sizeof(name)))
		return;
	rest = http_req_path(r) + strlen(PREFIX) + strlen(name);
	buf_init(&path, 8192);
	buf_init(&query, 8192);
	MHD_get_connection_values(http_req_conn(r), MHD_GET_ARGUMENT_KIND,
	    add_arg, &q);
	if (strstr(rest, "%00") != NULL) {
		http_error(r, 400, "bad_path", "a path may not hold NUL");
		goto out;
	}
	if (url_encode(&path, rest, "/") == -1 || q.bad) {
		http_error(r, 414, "uri_too_long", "the path or query is "
		    "too long");
		goto out;
	}
	if ((e = sbx_acquire(name, &ref)) != SBX_OK) {
		reply_err(r, e);
		goto out;
	}
	relay_forward(r, &ref, path.data, query.data);
out:
	buf_free(&path);
	buf_free(&query);
}

/* The {name} segment; answers 404 itself for one that cannot exist. */
static bool
name_of(struct http_req *r, char *out, size_t outsz)
{
	const char	*p = http_req_param(r);
	size_t		 n = p != NULL ? strcspn(p, "/") : 0;

	if (n == 0 || n >= outsz) {
		reply_err(r, SBX_NOT_FOUND);
		return false;
	}
	memcpy(out, p, n);
	out[n] = '\0';
	if (!sbx_name_valid(out)) {
		reply_err(r, SBX_NOT_FOUND);
		return false;
	}
	return true;
}

static void
reply_err(struct http_req *r, enum sbx_err e)
{
	static const char *const codes[] = {
		[SBX_OK] = "ok", [SBX_NOT_FOUND] = "not_found",
		[SBX_BAD_NAME] = "bad_name", [SBX_EXISTS] = "exists",
		[SBX_LIMIT] = "sandbox_limit", [SBX_FAILED] = "sandbox_failed",
		[SBX_UNAVAILABLE] = "sandbox_unavailable",
		[SBX_BUSY] = "sandbox_busy",
	};

	if (e == SBX_LIMIT || e == SBX_BUSY)
		http_retry_later(r, 1, codes[e], sbx_strerror(e));
	else
		http_error(r, sbx_http_status(e), codes[e], "%s",
		    sbx_strerror(e));
}

/* RFC 3986 unreserved bytes pass; so do those in keep. */
int
url_encode(struct buf *b, const char *s, const char *keep)
{
	static const char hex[] = "0123456789ABCDEF";
	char		 e[3];

	for (; *s; s++) {
		unsigned char	 c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("-._~", c) != NULL ||
		    (keep != NULL && strchr(keep, c) != NULL)) {
			if (buf_append(b, s, 1) == -1)
				return -1;
			continue;
		}
		e[0] = '%';
		e[1] = hex[c >> 4];
		e[2] = hex[c & 15];
		if (buf_append(b, e, 3) == -1)
			return -1;
	}
	return 0;
}

static enum MHD_Result
add_arg(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
	struct query	*q = cls;

	(void)kind;
	if ((q->out->len > 0 && buf_append(q->out, "&", 1) == -1) ||
	    url_encode(q->out, k, NULL) == -1 ||
	    (v != NULL && (buf_append(q->out, "=", 1) == -1 ||
	    url_encode(q->out, v, NULL) == -1)))
		q->bad = true;
	return MHD_YES;
}

static const char *
actor(struct http_req *r)
{
	struct identity	*id = http_req_identity(r);

	return id->user[0] != '\0' ? id->user : "unknown";
}
