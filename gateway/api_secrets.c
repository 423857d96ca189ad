/* SPDX-License-Identifier: MIT */
/*
 * api_secrets.c: /api/v1/secrets, the admin UI's way to store a provider
 * key or a bot token (what `pincer secret` does at a terminal). A value
 * goes in once and never comes out: the list has names and dates, the
 * log and the audit log the name alone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "pincer.h"

static bool	 name_of(struct http_req *, char *, size_t);
static void	 no_content(struct http_req *);
static const char *actor(struct http_req *);

/* GET /api/v1/secrets */
void
api_secrets_list(struct http_req *r)
{
	http_reply_json(r, 200, json_pack("{s:o}", "secrets",
	    secrets_list()));
}

/* PUT /api/v1/secrets/{name} {"value": "…"} */
void
api_secret_put(struct http_req *r)
{
	char		 name[80], *err = NULL;
	const char	*body, *val;
	size_t		 len, vlen = 0;
	json_t		*in, *v;

	if (!name_of(r, name, sizeof(name)))
		return;
	http_req_body(r, &body, &len);
	if ((in = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL)) ==
	    NULL || !json_is_object(in)) {
		http_error(r, 400, "bad_json", "send {\"value\": \"…\"}: a JSON "
		    "object with the secret's value as a string");
		goto out;
	}
	v = json_object_get(in, "value");
	if ((val = json_string_value(v)) == NULL || (vlen =
	    json_string_length(v)) == 0) {
		http_error(r, 400, "missing_value", "\"value\" must be a "
		    "non-empty string (the key or token itself)");
		goto out;
	}
	if (vlen > SECRETS_MAX) {
		http_error(r, 400, "value_too_long", "a secret's value is at "
		    "most %d bytes", SECRETS_MAX);
		goto out;
	}
	if (secrets_set(name, val, vlen, &err) == -1) {
		http_error(r, 500, "secret_not_stored", "%s", err != NULL ?
		    err : "out of memory");
		goto out;
	}
	audit_add(actor(r), http_req_ip(r), "secret_set", name, "");
	no_content(r);
out:
	/* The value lives here and in the request's body: wiped both. */
	if ((val = json_string_value(json_object_get(in, "value"))) != NULL)
		explicit_bzero((char *)val, json_string_length(
		    json_object_get(in, "value")));
	explicit_bzero((char *)body, len);
	json_decref(in);
	free(err);
}

/* DELETE /api/v1/secrets/{name} */
void
api_secret_delete(struct http_req *r)
{
	char	 name[80];

	if (!name_of(r, name, sizeof(name)))
		return;
	if (secrets_delete(name) == -1) {
		http_error(r, 404, "not_found", "no secret is named %s", name);
		return;
	}
	audit_add(actor(r), http_req_ip(r), "secret_delete", name, "");
	no_content(r);
}

/* The name from the path, with `pincer secret set`'s rules; else 400. */
static bool
name_of(struct http_req *r, char *out, size_t outsz)
{
	const char	*p = http_req_param(r);
	size_t		 n = p != NULL ? strcspn(p, "/") : 0;

	if (n == 0 || n >= outsz || p[n] != '\0')
		goto bad;
	memcpy(out, p, n);
	out[n] = '\0';
	if (secrets_name_valid(out))
		return true;
bad:
	http_error(r, 400, "bad_name", "a secret's name is 1 to 64 of A-Z, "
	    "a-z, 0-9, '_', '.' and '-'");
	return false;
}

static void
no_content(struct http_req *r)
{
	http_reply(r, 204, MHD_create_response_from_buffer(0, (void *)"",
	    MHD_RESPMEM_PERSISTENT));
}

static const char *
actor(struct http_req *r)
{
	struct identity	*id = http_req_identity(r);

	return id->user[0] != '\0' ? id->user : "unknown";
}
