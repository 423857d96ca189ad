/* SPDX-License-Identifier: MIT */
/*
 * channel_whatsapp.c: the WhatsApp Cloud API channel. Meta calls
 * /hooks/whatsapp: a GET to verify the subscription (the hub challenge,
 * answered only with the configured verify token), then a POST per batch
 * of events signed with the app secret (X-Hub-Signature-256 over the raw
 * body). Messages come in as text or media ids; replies, read receipts
 * with the typing indicator and files go out through the Graph API
 * (POST /{phone-number-id}/messages and /media) with the access token.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pincer.h"

#define WA_BASE		"https://graph.facebook.com"
#define WA_VERSION	"v21.0"
#define WA_MAX_TEXT	4096		/* a text message's body */
#define WA_IMAGE_MAX	(5L << 20)	/* larger: sent as documents */
#define WA_DOC_MAX	(100L << 20)
#define WA_URL_MAX	1024
#define ID_CHARS	"abcdefghijklmnopqrstuvwxyz" \
			"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"

/* A channel's own settings: read-only after init (verify/parse share it). */
struct wa {
	char	phone[64];		/* phone_number_id */
	char	version[16];		/* api_version, "v21.0" */
};

static int	 wa_init(struct channel *, const json_t *, char *, size_t);
static void	 wa_free(struct channel *);
static int	 wa_verify(struct channel *, struct http_req *, char *,
		    size_t);
static int	 wa_parse(struct channel *, struct http_req *,
		    struct chan_batch *, char *, size_t);
static enum chan_status wa_send_text(struct channel *,
		    const struct chan_out *, const char *,
		    struct chan_result *);
static enum chan_status wa_send_file(struct channel *,
		    const struct chan_out *, const struct chan_file *,
		    struct chan_result *);
static void	 wa_working(struct channel *, const struct chan_out *, bool);
static int	 wa_fetch(struct channel *, const json_t *, struct buf *,
		    char *, size_t);

static int	 parse_challenge(struct channel *, struct http_req *,
		    struct chan_batch *);
static int	 parse_change(struct channel *, const json_t *,
		    struct chan_batch *, char *, size_t);
static int	 parse_message(const json_t *, const json_t *,
		    struct chan_msg *, char *, size_t);
static char	*message_text(const json_t *, const char *, json_t **);
static json_t	*media_attachment(const json_t *, const char *);
static const char *mime_ext(const char *);
static enum chan_status graph(struct channel *, struct chan_http *,
		    const char *, struct chan_result *);
static enum chan_status graph_status(const struct chan_http *,
		    struct chan_result *);
static enum chan_status post_message(struct channel *, json_t *,
		    struct chan_result *);
static int	 graph_url(struct channel *, const char *, char *, size_t);
static bool	 same_origin(struct channel *, const char *);
static char	*bearer(struct channel *);
static void	 bearer_free(char *);
static int	 conf_secret(const json_t *, const char *, char *, size_t);

const struct channel_ops channel_whatsapp_ops = {
	.kind = "whatsapp",
	.max_text = WA_MAX_TEXT,
	.init = wa_init,
	.free = wa_free,
	.verify = wa_verify,
	.parse = wa_parse,
	.send_text = wa_send_text,
	.send_file = wa_send_file,
	.working = wa_working,
	.working_every_ms = 0,	/* the indicator lasts until the reply */
	.fetch = wa_fetch,
};

/* Graph error codes worth another try: throttling (4, 80007, 130429,
 * 131056 pair rate, 131048 spam rate) and Meta's own trouble (1, 2,
 * 131016, 133004). */
static const long long	 retry_codes[] = {
	1, 2, 4, 80007, 130429, 131016, 131048, 131056, 133004,
};

static const struct {
	const char	*mime;
	const char	*ext;
} exts[] = {
	{ "image/jpeg", "jpg" }, { "image/png", "png" },
	{ "image/webp", "webp" }, { "audio/ogg", "ogg" },
	{ "audio/mpeg", "mp3" }, { "audio/aac", "aac" },
	{ "audio/amr", "amr" }, { "audio/mp4", "m4a" },
	{ "video/mp4", "mp4" }, { "video/3gpp", "3gp" },
	{ "application/pdf", "pdf" }, { "text/plain", "txt" },
};

static const char *const media_types[] = {
	"image", "document", "audio", "video", "sticker",
};

static int
wa_init(struct channel *ch, const json_t *conf, char *err, size_t errsz)
{
	static const char *const secrets[] = {
		"access_token", "app_secret", "verify_token",
	};
	struct wa	*w;
	const json_t	*v;
	const char	*s;
	size_t		 i;

	if ((w = calloc(1, sizeof(*w))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	v = json_object_get(conf, "phone_number_id");
	if (json_is_integer(v))
		snprintf(w->phone, sizeof(w->phone), "%lld",
		    (long long)json_integer_value(v));
	else if ((s = json_string_value(v)) != NULL && *s != '\0' &&
	    strlen(s) < sizeof(w->phone) && s[strspn(s, ID_CHARS)] == '\0')
		snprintf(w->phone, sizeof(w->phone), "%s", s);
	else {
		snprintf(err, errsz, "\"phone_number_id\" is required: the "
		    "id of the business phone number (digits, from the "
		    "app's WhatsApp API setup page)");
		goto fail;
	}
	for (i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
		if (conf_secret(conf, secrets[i], err, errsz) == -1)
			goto fail;
	snprintf(w->version, sizeof(w->version), "%s", WA_VERSION);
	if ((v = json_object_get(conf, "api_version")) != NULL) {
		s = json_string_value(v);
		if (s == NULL || s[0] != 'v' || s[1] == '\0' ||
		    strlen(s) >= sizeof(w->version) ||
		    s[1 + strspn(s + 1, "0123456789.")] != '\0') {
			snprintf(err, errsz, "\"api_version\" must be a Graph "
			    "API version such as \"%s\"", WA_VERSION);
			goto fail;
		}
		snprintf(w->version, sizeof(w->version), "%s", s);
	}
	channel_set_data(ch, w);
	return 0;
fail:
	free(w);
	return -1;
}

static void
wa_free(struct channel *ch)
{
	free(channel_data(ch));
	channel_set_data(ch, NULL);
}

/*
 * A GET is Meta's subscription check: it carries no event and is
 * answered by parse, which compares the verify token. A POST must carry
 * "sha256=" and the hex HMAC-SHA256 of the raw body keyed with the app
 * secret (Meta, Graph API Webhooks, "Validating Payloads"), compared in
 * constant time; without it anyone could talk to the agent.
 */
static int
wa_verify(struct channel *ch, struct http_req *req, char *why, size_t n)
{
	const char	*method = http_req_method(req), *sig, *key, *body;
	char		 want[65], got[65];
	size_t		 len, i;

	if (strcmp(method, "GET") == 0)
		return 0;
	if (strcmp(method, "POST") != 0) {
		snprintf(why, n, "only GET and POST");
		return -1;
	}
	if ((key = channel_secret(ch, "app_secret")) == NULL) {
		snprintf(why, n, "the app_secret secret is not set");
		return -1;
	}
	sig = http_req_header(req, "X-Hub-Signature-256");
	if (sig == NULL || strncmp(sig, "sha256=", 7) != 0 ||
	    strlen(sig + 7) != 64) {
		snprintf(why, n, "no X-Hub-Signature-256");
		return -1;
	}
	for (i = 0; i < 64; i++)
		got[i] = (char)((sig[7 + i] >= 'A' && sig[7 + i] <= 'F') ?
		    sig[7 + i] - 'A' + 'a' : sig[7 + i]);
	got[64] = '\0';
	http_req_body(req, &body, &len);
	chan_hmac_hex(key, strlen(key), body != NULL ? body : "", len, want);
	if (!chan_hex_equal(want, got)) {
		snprintf(why, n, "bad X-Hub-Signature-256");
		return -1;
	}
	return 0;
}

/*
 * A webhook's events (Meta, WhatsApp Cloud API, Webhooks: "messages"):
 * {"object": "whatsapp_business_account", "entry": [{"changes": [{"field":
 * "messages", "value": {metadata, contacts, messages | statuses}}]}]}.
 * Statuses (sent, delivered, read of our own replies) and changes for
 * another phone number of the same business account add nothing.
 */
static int
wa_parse(struct channel *ch, struct http_req *req, struct chan_batch *b,
    char *why, size_t n)
{
	json_t		*root = NULL, *entry, *e, *changes, *c;
	json_error_t	 je;
	const char	*body, *obj;
	size_t		 len, i, j;

	if (strcmp(http_req_method(req), "GET") == 0)
		return parse_challenge(ch, req, b);
	http_req_body(req, &body, &len);
	if (body == NULL || (root = json_loadb(body, len, 0, &je)) == NULL ||
	    !json_is_object(root)) {
		snprintf(why, n, "not a JSON object");
		json_decref(root);
		return -1;
	}
	if ((obj = json_string_value(json_object_get(root, "object"))) ==
	    NULL || !json_is_array(entry = json_object_get(root, "entry"))) {
		snprintf(why, n, "not a WhatsApp webhook (object, entry)");
		goto fail;
	}
	if (strcmp(obj, "whatsapp_business_account") != 0)
		goto done;
	json_array_foreach(entry, i, e) {
		changes = json_object_get(e, "changes");
		json_array_foreach(changes, j, c)
			if (parse_change(ch, c, b, why, n) == -1)
				goto fail;
	}
done:
	json_decref(root);
	return 0;
fail:
	for (i = 0; i < b->n; i++)
		chan_msg_clear(&b->msgs[i]);
	b->n = 0;
	json_decref(root);
	return -1;
}

/*
 * The subscription check (Meta, Graph API Webhooks, "Verification
 * Requests"): hub.mode=subscribe and hub.verify_token equal to ours →
 * hub.challenge echoed as text; anything else → 403.
 */
static int
parse_challenge(struct channel *ch, struct http_req *req,
    struct chan_batch *b)
{
	const char	*mode, *token, *challenge, *ours;

	mode = http_req_query(req, "hub.mode");
	token = http_req_query(req, "hub.verify_token");
	challenge = http_req_query(req, "hub.challenge");
	ours = channel_secret(ch, "verify_token");
	if (mode != NULL && strcmp(mode, "subscribe") == 0 && token != NULL &&
	    ours != NULL && challenge != NULL && chan_hex_equal(token, ours)) {
		b->status = 200;
		b->body = strdup(challenge);
		b->ctype = "text/plain";
	} else {
		b->status = 403;
		b->body = strdup("{\"error\":{\"code\":\"forbidden\","
		    "\"message\":\"wrong hub.mode or hub.verify_token\"}}");
	}
	return b->body == NULL ? -1 : 0;
}

static int
parse_change(struct channel *ch, const json_t *c, struct chan_batch *b,
    char *why, size_t n)
{
	const struct wa	*w = channel_data(ch);
	const json_t	*v, *msgs, *m;
	const char	*field, *phone;
	size_t		 i;

	field = json_string_value(json_object_get(c, "field"));
	if (field != NULL && strcmp(field, "messages") != 0)
		return 0;
	v = json_object_get(c, "value");
	phone = json_string_value(json_object_get(json_object_get(v,
	    "metadata"), "phone_number_id"));
	if (phone == NULL || strcmp(phone, w->phone) != 0)
		return 0;
	msgs = json_object_get(v, "messages");
	json_array_foreach(msgs, i, m) {
		if (b->n == CHAN_BATCH_MAX) {
			log_warn("whatsapp webhook over the batch limit",
			    "channel=%s dropped=%zu", channel_name(ch),
			    json_array_size(msgs) - i);
			break;
		}
		if (parse_message(m, json_object_get(v, "contacts"),
		    &b->msgs[b->n], why, n) == -1)
			return -1;
		b->n++;
	}
	return 0;
}

/* One message: from the user's WhatsApp id (wa_id), always a DM. */
static int
parse_message(const json_t *m, const json_t *contacts, struct chan_msg *o,
    char *why, size_t n)
{
	const json_t	*c;
	const char	*id, *from, *type, *name, *wa;
	size_t		 i;

	memset(o, 0, sizeof(*o));
	id = json_string_value(json_object_get(m, "id"));
	from = json_string_value(json_object_get(m, "from"));
	type = json_string_value(json_object_get(m, "type"));
	if (id == NULL || from == NULL || type == NULL || *id == '\0' ||
	    *from == '\0' || strlen(id) >= CHAN_ID_MAX ||
	    strlen(from) >= CHAN_ID_MAX) {
		snprintf(why, n, "a message without id, from or type");
		return -1;
	}
	json_array_foreach(contacts, i, c)
		if ((wa = json_string_value(json_object_get(c, "wa_id"))) !=
		    NULL && strcmp(wa, from) == 0)
			break;
	if (i == json_array_size(contacts) && i == 1)
		i = 0;	/* a single contact is the sender */
	name = json_string_value(json_object_get(json_object_get(
	    json_array_get(contacts, i), "profile"), "name"));
	snprintf(o->event_id, sizeof(o->event_id), "%s", id);
	snprintf(o->ref, sizeof(o->ref), "%s", id);
	snprintf(o->sender, sizeof(o->sender), "%s", from);
	snprintf(o->chat, sizeof(o->chat), "%s", from);
	snprintf(o->sender_name, sizeof(o->sender_name), "%s",
	    name != NULL ? name : "");
	o->direct = true;
	if ((o->text = message_text(m, type, &o->attachments)) == NULL) {
		chan_msg_clear(o);
		snprintf(why, n, "out of memory");
		return -1;
	}
	return 0;
}

/*
 * The words of a message by its type: a text's body, a media's caption
 * (the file itself as an attachment, fetched by id), the title of the
 * button or list row tapped; other kinds (location, contacts, reaction…)
 * a short note so the agent knows something came. Caller frees.
 */
static char *
message_text(const json_t *m, const char *type, json_t **att)
{
	const json_t	*it;
	const char	*s = NULL, *kind;
	char		 note[80];
	size_t		 i;

	if (strcmp(type, "text") == 0)
		s = json_string_value(json_object_get(json_object_get(m,
		    "text"), "body"));
	else if (strcmp(type, "interactive") == 0) {
		it = json_object_get(m, "interactive");
		kind = json_string_value(json_object_get(it, "type"));
		if (kind != NULL)
			s = json_string_value(json_object_get(
			    json_object_get(it, kind), "title"));
	} else if (strcmp(type, "button") == 0)
		s = json_string_value(json_object_get(json_object_get(m,
		    "button"), "text"));
	else
		for (i = 0; i < sizeof(media_types) / sizeof(media_types[0]);
		    i++)
			if (strcmp(type, media_types[i]) == 0) {
				it = json_object_get(m, type);
				if ((*att = media_attachment(it, type)) ==
				    NULL)
					return NULL;
				s = json_string_value(json_object_get(it,
				    "caption"));
				return strdup(s != NULL ? s : "");
			}
	if (s != NULL)
		return strdup(s);
	snprintf(note, sizeof(note), "[unsupported message type %.40s]",
	    type);
	return strdup(note);
}

/* [{id, mime, name, caption}]: the media id is what fetch asks Graph. */
static json_t *
media_attachment(const json_t *it, const char *type)
{
	json_t		*a, *one;
	const char	*id, *mime, *file, *caption, *slash;
	char		 name[256];

	id = json_string_value(json_object_get(it, "id"));
	mime = json_string_value(json_object_get(it, "mime_type"));
	file = json_string_value(json_object_get(it, "filename"));
	caption = json_string_value(json_object_get(it, "caption"));
	if (mime == NULL)
		mime = "application/octet-stream";
	/* A sender's file name is a name, never a path. */
	if (file != NULL && ((slash = strrchr(file, '/')) != NULL ||
	    (slash = strrchr(file, '\\')) != NULL))
		file = slash + 1;
	if (file != NULL && *file != '\0' && strcmp(file, ".") != 0 &&
	    strcmp(file, "..") != 0)
		snprintf(name, sizeof(name), "%s", file);
	else
		snprintf(name, sizeof(name), "%s.%s", type, mime_ext(mime));
	one = json_pack("{s:s, s:s, s:s}", "id", id != NULL ? id : "",
	    "mime", mime, "name", name);
	if (one != NULL && caption != NULL)
		json_object_set_new(one, "caption", json_string(caption));
	if (one == NULL || (a = json_array()) == NULL) {
		json_decref(one);
		return NULL;
	}
	json_array_append_new(a, one);
	return a;
}

/* "audio/ogg; codecs=opus" → "ogg"; unknown → "bin". */
static const char *
mime_ext(const char *mime)
{
	size_t	 i, len = strcspn(mime, "; ");

	for (i = 0; i < sizeof(exts) / sizeof(exts[0]); i++)
		if (strlen(exts[i].mime) == len &&
		    strncasecmp(mime, exts[i].mime, len) == 0)
			return exts[i].ext;
	return "bin";
}

/* Cloud API, Messages: a text message, no link preview. */
static enum chan_status
wa_send_text(struct channel *ch, const struct chan_out *out,
    const char *text, struct chan_result *res)
{
	json_t	*msg;

	msg = json_pack("{s:s, s:s, s:s, s:s, s:{s:b, s:s}}",
	    "messaging_product", "whatsapp", "recipient_type", "individual",
	    "to", out->chat, "type", "text", "text", "preview_url", 0,
	    "body", text);
	return post_message(ch, msg, res);
}

/*
 * Cloud API, Media: the file is uploaded (multipart, its id comes back),
 * then sent by id as an image (JPEG and PNG within 5 MB, what WhatsApp
 * shows inline) or as a document with its name.
 */
static enum chan_status
wa_send_file(struct channel *ch, const struct chan_out *out,
    const struct chan_file *f, struct chan_result *res)
{
	const struct wa		*w = channel_data(ch);
	const char		*mime = f->mime != NULL ? f->mime :
				    "application/octet-stream";
	struct chan_part	 parts[3] = {
		{ "messaging_product", "whatsapp", (size_t)-1, NULL, NULL },
		{ "type", mime, (size_t)-1, NULL, NULL },
		{ "file", f->data, f->len, f->name, mime },
	};
	struct chan_http	 h = { .parts = parts, .nparts = 3,
				    .timeout_ms = 120000 };
	enum chan_status	 st;
	json_t			*a = NULL, *msg, *media;
	const char		*id, *type;
	char			 path[96];

	if ((long)f->len > WA_DOC_MAX) {
		snprintf(res->error, sizeof(res->error), "whatsapp: %s is "
		    "over WhatsApp's 100 MB for a document", f->name);
		return CHAN_FAILED;
	}
	snprintf(path, sizeof(path), "%s/media", w->phone);
	if ((st = graph(ch, &h, path, res)) != CHAN_SENT)
		goto done;
	a = chan_http_json(&h);
	if ((id = json_string_value(json_object_get(a, "id"))) == NULL) {
		snprintf(res->error, sizeof(res->error), "whatsapp: the "
		    "media upload answered no id");
		st = CHAN_RETRY;
		goto done;
	}
	type = (strcmp(mime, "image/jpeg") == 0 ||
	    strcmp(mime, "image/png") == 0) && (long)f->len <= WA_IMAGE_MAX ?
	    "image" : "document";
	media = json_pack("{s:s}", "id", id);
	if (media != NULL && f->caption != NULL && *f->caption != '\0')
		json_object_set_new(media, "caption",
		    json_string(f->caption));
	if (media != NULL && strcmp(type, "document") == 0)
		json_object_set_new(media, "filename", json_string(f->name));
	msg = json_pack("{s:s, s:s, s:s, s:s, s:o}", "messaging_product",
	    "whatsapp", "recipient_type", "individual", "to", out->chat,
	    "type", type, type, media);
	st = post_message(ch, msg, res);
done:
	json_decref(a);
	chan_http_free(&h);
	return st;
}

/*
 * While the turn runs: the message is marked read and the typing
 * indicator shown (Cloud API, "Typing indicators"); WhatsApp clears it
 * when the reply arrives or after 25 seconds. Best effort.
 */
static void
wa_working(struct channel *ch, const struct chan_out *out, bool on)
{
	struct chan_result	 res;
	json_t			*msg;

	if (!on || out->ref == NULL || *out->ref == '\0')
		return;
	memset(&res, 0, sizeof(res));
	msg = json_pack("{s:s, s:s, s:s, s:{s:s}}", "messaging_product",
	    "whatsapp", "status", "read", "message_id", out->ref,
	    "typing_indicator", "type", "text");
	if (post_message(ch, msg, &res) != CHAN_SENT)
		log_debug("whatsapp typing indicator not shown",
		    "channel=%s error=\"%s\"", channel_name(ch), res.error);
}

/*
 * Cloud API, Media: GET /{media-id} gives a short-lived URL, which is
 * downloaded with the same token. The token goes only to an https URL
 * (Meta's CDN) or to the configured API's own origin.
 */
static int
wa_fetch(struct channel *ch, const json_t *att, struct buf *out, char *why,
    size_t n)
{
	struct chan_http	 h = { .method = "GET" }, d = { .method =
				    "GET", .timeout_ms = 120000 };
	struct chan_result	 res;
	const char		*id, *url, *hdrs[2] = { NULL, NULL };
	json_t			*a = NULL;
	char			*auth = NULL;
	int			 rc = -1;

	memset(&res, 0, sizeof(res));
	id = json_string_value(json_object_get(att, "id"));
	if (id == NULL || *id == '\0' || strlen(id) > 128 ||
	    id[strspn(id, ID_CHARS)] != '\0' || strchr(id, '.') != NULL) {
		snprintf(why, n, "no media id");
		return -1;
	}
	if (graph(ch, &h, id, &res) != CHAN_SENT) {
		snprintf(why, n, "%s", res.error);
		goto done;
	}
	a = chan_http_json(&h);
	url = json_string_value(json_object_get(a, "url"));
	if (url == NULL || strlen(url) >= WA_URL_MAX ||
	    (strncmp(url, "https://", 8) != 0 && !same_origin(ch, url))) {
		snprintf(why, n, "whatsapp: the media has no usable URL");
		goto done;
	}
	if ((auth = bearer(ch)) == NULL) {
		snprintf(why, n, "the access_token secret is not set");
		goto done;
	}
	hdrs[0] = auth;
	d.url = url;
	d.headers = hdrs;
	if (chan_http_do(&d) == -1 || graph_status(&d, &res) != CHAN_SENT) {
		snprintf(why, n, "whatsapp: media download: %s",
		    d.status == 0 ? d.error : res.error);
		goto done;
	}
	if (buf_append(out, d.answer.data, d.answer.len) == -1) {
		snprintf(why, n, "whatsapp: the media is too large");
		goto done;
	}
	rc = 0;
done:
	bearer_free(auth);
	json_decref(a);
	chan_http_free(&d);
	chan_http_free(&h);
	return rc;
}

/* POST /{phone-number-id}/messages; msg is taken (NULL: out of memory). */
static enum chan_status
post_message(struct channel *ch, json_t *msg, struct chan_result *res)
{
	const struct wa		*w = channel_data(ch);
	struct chan_http	 h = { 0 };
	enum chan_status	 st;
	json_t			*a;
	const char		*id;
	char			*body, path[96];

	body = msg != NULL ? json_dumps(msg, JSON_COMPACT) : NULL;
	json_decref(msg);
	if (body == NULL) {
		snprintf(res->error, sizeof(res->error), "out of memory");
		return CHAN_RETRY;
	}
	h.body = body;
	h.len = strlen(body);
	snprintf(path, sizeof(path), "%s/messages", w->phone);
	if ((st = graph(ch, &h, path, res)) == CHAN_SENT) {
		a = chan_http_json(&h);
		id = json_string_value(json_object_get(json_array_get(
		    json_object_get(a, "messages"), 0), "id"));
		snprintf(res->message_id, sizeof(res->message_id), "%s",
		    id != NULL ? id : "");
		json_decref(a);
	}
	free(body);
	chan_http_free(&h);
	return st;
}

/* One Graph API call on PATH with the access token; h->answer is set. */
static enum chan_status
graph(struct channel *ch, struct chan_http *h, const char *path,
    struct chan_result *res)
{
	const char		*hdrs[3] = { NULL, NULL, NULL };
	char			 url[WA_URL_MAX], *auth;
	enum chan_status	 st;

	if (graph_url(ch, path, url, sizeof(url)) == -1) {
		snprintf(res->error, sizeof(res->error), "whatsapp: the "
		    "api_base URL is too long");
		return CHAN_FAILED;
	}
	if ((auth = bearer(ch)) == NULL) {
		snprintf(res->error, sizeof(res->error), "whatsapp: the "
		    "access_token secret is not set");
		return CHAN_FAILED;
	}
	hdrs[0] = auth;
	if (h->body != NULL)
		hdrs[1] = "Content-Type: application/json";
	h->url = url;
	h->headers = hdrs;
	chan_http_do(h);
	st = graph_status(h, res);
	h->url = NULL;
	h->headers = NULL;
	bearer_free(auth);
	return st;
}

/*
 * Graph errors are {"error": {"message", "type", "code", "error_subcode",
 * "fbtrace_id"}} (Cloud API, Error codes). Throttling and Meta's own
 * trouble are tried again (after Retry-After when given, else the
 * delivery thread's backoff); a closed 24-hour window (131047), a bad
 * parameter (100) or token (190) will not get better.
 */
static enum chan_status
graph_status(const struct chan_http *h, struct chan_result *res)
{
	enum chan_status	 st = chan_http_status(h, res);
	json_t			*a, *e;
	const char		*msg, *what = "";
	long long		 code;
	size_t			 i;

	if (st == CHAN_SENT || h->status == 0)
		return st;
	a = chan_http_json(h);
	e = json_object_get(a, "error");
	code = json_integer_value(json_object_get(e, "code"));
	msg = json_string_value(json_object_get(e, "message"));
	for (i = 0; i < sizeof(retry_codes) / sizeof(retry_codes[0]); i++)
		if (code == retry_codes[i])
			break;
	if (i < sizeof(retry_codes) / sizeof(retry_codes[0]) ||
	    h->status == 429) {
		st = CHAN_RETRY;
		res->retry_after_ms = h->retry_after_ms > 0 ?
		    h->retry_after_ms : 0;
	}
	if (code == 131047) {
		st = CHAN_FAILED;
		what = "more than 24 hours since the person's last message "
		    "(only a template can be sent): ";
	} else if (code == 190) {
		st = CHAN_FAILED;
		what = "the access token is invalid or expired: ";
	} else if (code == 100)
		what = "a parameter was refused: ";
	if (e != NULL)
		snprintf(res->error, sizeof(res->error), "whatsapp: HTTP %d, "
		    "code %lld: %s%.160s", h->status, code, what,
		    msg != NULL ? msg : "");
	json_decref(a);
	return st;
}

static int
graph_url(struct channel *ch, const char *path, char *url, size_t n)
{
	const struct wa	*w = channel_data(ch);
	const char	*base = channel_base_url(ch);
	size_t		 len;
	int		 r;

	if (base == NULL || *base == '\0')
		base = WA_BASE;
	for (len = strlen(base); len > 0 && base[len - 1] == '/'; len--)
		;
	r = snprintf(url, n, "%.*s/%s/%s", (int)len, base, w->version, path);
	return r < 0 || (size_t)r >= n ? -1 : 0;
}

/* url is on the same scheme://host:port as the configured API. */
static bool
same_origin(struct channel *ch, const char *url)
{
	const char	*base = channel_base_url(ch), *p;
	size_t		 len;

	if (base == NULL || (p = strstr(base, "://")) == NULL)
		return false;
	len = (size_t)(p + 3 - base) + strcspn(p + 3, "/?#");
	return strncmp(url, base, len) == 0 && strchr("/?#", url[len]) !=
	    NULL;
}

/* "Authorization: Bearer TOKEN" (caller frees with bearer_free). */
static char *
bearer(struct channel *ch)
{
	const char	*tok = channel_secret(ch, "access_token");
	char		*h;
	size_t		 n;

	if (tok == NULL || *tok == '\0')
		return NULL;
	n = strlen(tok) + sizeof("Authorization: Bearer ");
	if ((h = malloc(n)) != NULL)
		snprintf(h, n, "Authorization: Bearer %s", tok);
	return h;
}

static void
bearer_free(char *h)
{
	if (h != NULL) {
		explicit_bzero(h, strlen(h));
		free(h);
	}
}

/* A config key naming a secret (`pincer secret set NAME`). */
static int
conf_secret(const json_t *conf, const char *key, char *err, size_t n)
{
	const char	*s = json_string_value(json_object_get(conf, key));

	if (s != NULL && *s != '\0')
		return 0;
	snprintf(err, n, "\"%s\" is required: the name of a secret set with "
	    "`pincer secret set NAME`", key);
	return -1;
}
