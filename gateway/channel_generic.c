/* SPDX-License-Identifier: MIT */
/*
 * channel_generic.c: a signed webhook, for whatever can POST JSON (Home
 * Assistant, IFTTT, a Matrix bridge, a mail-to-webhook service). In:
 * POST /hooks/generic/NAME with {"text", "id"?, "sender"?,
 * "conversation"?, "files"?: [{"name", "base64"}]} and a header
 * (default X-Pincer-Signature) holding "sha256=" and the hex
 * HMAC-SHA256 of the raw body keyed with the hook's secret. Out: the
 * reply POSTed as JSON to callback_url, signed the same way, so the
 * receiver can tell it came from us.
 *
 * Only the secret's holder can send, so the hook's messages count as the
 * owner's (dm_policy "open" unless set). A body without an "id" is
 * known by its hash: a replayed request is a duplicate, not a new turn.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "pincer.h"

#define HEADER_DEFAULT	"X-Pincer-Signature"

struct generic {
	char	*callback;	/* owned */
	char	*header;	/* owned */
};

static int	 g_init(struct channel *, const json_t *, char *, size_t);
static void	 g_free(struct channel *);
static int	 g_verify(struct channel *, struct http_req *, char *, size_t);
static int	 g_parse(struct channel *, struct http_req *,
		    struct chan_batch *, char *, size_t);
static enum chan_status g_send_text(struct channel *,
		    const struct chan_out *, const char *,
		    struct chan_result *);
static enum chan_status g_send_file(struct channel *,
		    const struct chan_out *, const struct chan_file *,
		    struct chan_result *);
static json_t	*files_in(const json_t *);
static int	 g_fetch(struct channel *, const json_t *, struct buf *,
		    char *, size_t);
static enum chan_status g_post(struct channel *, const struct chan_out *,
		    json_t *, struct chan_result *);

const struct channel_ops channel_generic_ops = {
	.kind = "generic",
	.max_text = 100000,
	.init = g_init,
	.free = g_free,
	.verify = g_verify,
	.parse = g_parse,
	.send_text = g_send_text,
	.send_file = g_send_file,
	.fetch = g_fetch,
	.default_policy = "open",
	.hook_by_name = true,
};

static int
g_init(struct channel *ch, const json_t *c, char *err, size_t errsz)
{
	struct generic	*g;
	const char	*cb = json_string_value(json_object_get(c,
			    "callback_url"));
	const char	*h = json_string_value(json_object_get(c, "header"));

	if (!json_is_string(json_object_get(c, "secret"))) {
		snprintf(err, errsz, "secret: the name of the hook's secret "
		    "(pincer secret set NAME)");
		return -1;
	}
	if (cb == NULL || (strncmp(cb, "https://", 8) != 0 &&
	    strncmp(cb, "http://", 7) != 0)) {
		snprintf(err, errsz, "callback_url: the http(s) URL replies "
		    "are POSTed to");
		return -1;
	}
	if ((g = calloc(1, sizeof(*g))) == NULL)
		return -1;
	g->callback = strdup(cb);
	g->header = strdup(h != NULL ? h : HEADER_DEFAULT);
	channel_set_data(ch, g);
	return 0;
}

static void
g_free(struct channel *ch)
{
	struct generic	*g = channel_data(ch);

	if (g == NULL)
		return;
	free(g->callback);
	free(g->header);
	free(g);
}

/* "sha256=" + hex HMAC-SHA256(secret, raw body), compared in constant
 * time. */
static int
g_verify(struct channel *ch, struct http_req *req, char *why, size_t whysz)
{
	struct generic	*g = channel_data(ch);
	const char	*secret = channel_secret(ch, "secret");
	const char	*sig = http_req_header(req, g->header);
	const char	*body;
	char		 mac[65];
	size_t		 len;

	if (strcmp(http_req_method(req), "POST") != 0) {
		snprintf(why, whysz, "only POST is taken here");
		return -1;
	}
	if (secret == NULL) {
		snprintf(why, whysz, "the hook's secret is not set (pincer "
		    "secret set)");
		return -1;
	}
	if (sig == NULL || strncmp(sig, "sha256=", 7) != 0) {
		snprintf(why, whysz, "%s: \"sha256=<hex HMAC-SHA256 of the "
		    "body>\" is missing", g->header);
		return -1;
	}
	http_req_body(req, &body, &len);
	chan_hmac_hex(secret, strlen(secret), body != NULL ? body : "", len,
	    mac);
	if (!chan_hex_equal(sig + 7, mac)) {
		snprintf(why, whysz, "%s does not match the body", g->header);
		return -1;
	}
	return 0;
}

static int
g_parse(struct channel *ch, struct http_req *req, struct chan_batch *b,
    char *why, size_t whysz)
{
	struct chan_msg		*m = &b->msgs[0];
	const char		*body, *text, *id, *sender, *conv;
	unsigned char		 h[SHA256_DIGEST_LENGTH];
	size_t			 len, i;
	json_t			*j;

	(void)ch;
	http_req_body(req, &body, &len);
	j = json_loadb(body != NULL ? body : "", len, 0, NULL);
	if ((text = json_string_value(json_object_get(j, "text"))) == NULL ||
	    text[0] == '\0') {
		snprintf(why, whysz, "the body must be a JSON object with a "
		    "\"text\"");
		json_decref(j);
		return -1;
	}
	id = json_string_value(json_object_get(j, "id"));
	sender = json_string_value(json_object_get(j, "sender"));
	conv = json_string_value(json_object_get(j, "conversation"));
	if (id != NULL)
		snprintf(m->event_id, sizeof(m->event_id), "%.120s", id);
	else {
		SHA256((const unsigned char *)body, len, h);
		for (i = 0; i < 16; i++)
			snprintf(m->event_id + 2 * i, 3, "%02x", h[i]);
	}
	snprintf(m->sender, sizeof(m->sender), "%.120s", sender != NULL ?
	    sender : "hook");
	snprintf(m->chat, sizeof(m->chat), "%.120s", conv != NULL ? conv :
	    "default");
	snprintf(m->ref, sizeof(m->ref), "%s", m->event_id);
	m->text = strdup(text);
	m->direct = true;
	if (json_is_array(json_object_get(j, "files")))
		m->attachments = files_in(json_object_get(j, "files"));
	b->n = 1;
	json_decref(j);
	return m->text != NULL ? 0 : -1;
}

static enum chan_status
g_send_text(struct channel *ch, const struct chan_out *o, const char *text,
    struct chan_result *res)
{
	return g_post(ch, o, json_pack("{s:s, s:s, s:s, s:s, s:i, s:s}", "hook",
	    channel_name(ch), "conversation", o->chat, "in_reply_to",
	    o->ref, "id", "", "part", o->part, "text", text), res);
}

static enum chan_status
g_send_file(struct channel *ch, const struct chan_out *o,
    const struct chan_file *f, struct chan_result *res)
{
	json_t	*j;
	char	*b64;
	size_t	 n;

	/* Standard base64 of the bytes, for any JSON receiver to decode. */
	if ((b64 = malloc(f->len / 3 * 4 + 8)) == NULL)
		return CHAN_RETRY;
	n = (size_t)EVP_EncodeBlock((unsigned char *)b64,
	    (const unsigned char *)f->data, (int)f->len);
	b64[n] = '\0';
	j = json_pack("{s:s, s:s, s:s, s:s, s:i, s:{s:s, s:s, s:s, s:s}}",
	    "hook", channel_name(ch), "conversation", o->chat,
	    "in_reply_to", o->ref, "id", "", "part", o->part, "file", "name",
	    f->name, "mime", f->mime, "caption", f->caption, "base64", b64);
	free(b64);
	return g_post(ch, o, j, res);
}

/* "files": [{"name", "base64"}]: kept in the inbox as they came. */
static json_t *
files_in(const json_t *files)
{
	json_t		*a = json_array();
	const json_t	*f;
	size_t		 i;

	json_array_foreach(files, i, f)
		if (i < 8 && json_is_string(json_object_get(f, "base64")))
			json_array_append_new(a, json_pack("{s:O?, s:O}",
			    "name", json_object_get(f, "name"), "base64",
			    json_object_get(f, "base64")));
	return a;
}

static int
g_fetch(struct channel *ch, const json_t *att, struct buf *out, char *why,
    size_t whysz)
{
	const char	*b = json_string_value(json_object_get(att, "base64"));
	char		*raw;
	ssize_t		 n;

	(void)ch;
	if (b == NULL || (raw = malloc(strlen(b) / 4 * 3 + 4)) == NULL) {
		snprintf(why, whysz, "no base64 data");
		return -1;
	}
	if ((n = b64_decode(b, strlen(b), raw)) < 0) {
		snprintf(why, whysz, "its base64 is not valid");
		free(raw);
		return -1;
	}
	buf_append(out, raw, (size_t)n);
	free(raw);
	return 0;
}

/* The reply, signed like the hook's requests; its id says which reply
 * and part it is, so the receiver can drop a repeat. */
static enum chan_status
g_post(struct channel *ch, const struct chan_out *o, json_t *j,
    struct chan_result *res)
{
	struct generic		*g = channel_data(ch);
	const char		*secret = channel_secret(ch, "secret");
	struct chan_http	 h;
	enum chan_status	 s;
	char			 mac[65], sig[128], id[64], *body;
	const char		*hdrs[3];
	json_t			*ans;

	if (j == NULL)
		return CHAN_FAILED;
	snprintf(id, sizeof(id), "%lld-%d", o->outbox_id, o->part);
	json_object_set_new(j, "id", json_string(id));
	body = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (body == NULL || secret == NULL) {
		free(body);
		snprintf(res->error, sizeof(res->error), "the hook's secret "
		    "is not set");
		return CHAN_RETRY;
	}
	chan_hmac_hex(secret, strlen(secret), body, strlen(body), mac);
	snprintf(sig, sizeof(sig), "%s: sha256=%s", g->header, mac);
	hdrs[0] = "Content-Type: application/json";
	hdrs[1] = sig;
	hdrs[2] = NULL;
	memset(&h, 0, sizeof(h));
	h.url = g->callback;
	h.headers = hdrs;
	h.body = body;
	h.len = strlen(body);
	chan_http_do(&h);
	if ((s = chan_http_status(&h, res)) == CHAN_SENT &&
	    (ans = chan_http_json(&h)) != NULL) {
		snprintf(res->message_id, sizeof(res->message_id), "%s",
		    json_string_value(json_object_get(ans, "id")) != NULL ?
		    json_string_value(json_object_get(ans, "id")) : "");
		json_decref(ans);
	}
	chan_http_free(&h);
	free(body);
	return s;
}
