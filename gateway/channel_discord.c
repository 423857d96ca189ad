/* SPDX-License-Identifier: MIT */
/*
 * channel_discord.c: Discord. Messages come in over the Gateway (a
 * WebSocket: identify, heartbeat, resume) and /ask slash commands over
 * the interactions endpoint (Ed25519-signed webhooks); replies go out
 * over REST. Nothing is acknowledged on the Gateway: a message that
 * cannot be stored ends the connection, and the resume that follows has
 * Discord replay every event after the last one stored.
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/evp.h>

#include "pincer.h"

#define DC_API		"https://discord.com/api/v10"
#define DC_MAX_TEXT	2000	/* Create Message: content */
#define DC_SKEW_S	300	/* a signed request's timestamp, either way */
#define DC_URL_MAX	1024
#define DC_DMS		64	/* DM channels remembered (no reply quote) */
#define DC_QUEUE_MAX	((size_t)16 << 20)	/* frames not yet handled */
#define DC_IX_SLOTS	256	/* interaction tokens kept */
#define DC_TOKEN_CHARS	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" \
			"0123456789-_.+=~"
/*
 * Gateway Intents: GUILD_MESSAGES, DIRECT_MESSAGES and MESSAGE_CONTENT
 * (privileged: without it guild messages arrive with empty content).
 */
#define DC_INTENTS	((1 << 9) | (1 << 12) | (1 << 15))

enum dc_gw_state { GW_DOWN, GW_UP, GW_DEAD };

/* A Gateway frame (or the end of a connection) for the gateway thread. */
struct dc_frame {
	struct dc_frame	*next;
	unsigned	 gen;		/* the connection it came on */
	bool		 closed;	/* the connection ended: code */
	int		 code;
	size_t		 len;
	char		 data[];
};

/* One connection: the ws session's user pointer, freed at its close. */
struct dc_conn {
	struct discord	*d;
	unsigned	 gen;
};

/* Work for the service thread: connect, send or close (gen's session). */
struct dc_job {
	struct ws_job	 job;
	struct discord	*d;
	unsigned	 gen;
	int		 code;		/* close */
	size_t		 len;
	char		 data[];	/* connect: the URL; send: the frame */
};

struct discord {
	struct channel	*ch;
	char		 api[512];		/* no trailing slash */
	char		 gw_conf[DC_URL_MAX];	/* config gateway_url */
	char		 app_id[32];		/* config application_id */
	EVP_PKEY	*pubkey;		/* interactions; NULL none */
	bool		 gateway;
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	/* Under lock. */
	bool		 quit;
	bool		 running;
	struct dc_frame	*q_head, *q_tail;
	size_t		 q_bytes;
	bool		 q_lost;
	int		 nlive;			/* sessions not closed */
	char		 dms[DC_DMS][24];
	size_t		 ndms, dm_next;
	/* Service thread only. */
	struct ws_session *ws;
	unsigned	 ws_gen;
	pthread_t	 thread;
	/* Gateway thread only. */
	enum dc_gw_state state;
	unsigned	 gen;
	uint64_t	 t_next;		/* connect, hello or beat due */
	long		 hb_ms;			/* 0: no Hello yet */
	bool		 hb_acked;
	bool		 resuming;
	int		 attempts;
	char		 gw_url[DC_URL_MAX];	/* from GET /gateway/bot */
	char		 session[128];
	char		 resume_url[DC_URL_MAX];
	long long	 seq;			/* last stored; 0 none */
	long long	 seq_saved;
	char		 bot_id[32];
};

static int	dc_init(struct channel *, const json_t *, char *, size_t);
static void	dc_free(struct channel *);
static int	dc_start(struct channel *);
static void	dc_stop(struct channel *);
static int	dc_verify(struct channel *, struct http_req *, char *,
		    size_t);
static int	dc_parse(struct channel *, struct http_req *,
		    struct chan_batch *, char *, size_t);
static enum chan_status dc_send_text(struct channel *,
		    const struct chan_out *, const char *,
		    struct chan_result *);
static enum chan_status dc_send_file(struct channel *,
		    const struct chan_out *, const struct chan_file *,
		    struct chan_result *);
static void	dc_working(struct channel *, const struct chan_out *, bool);
static int	dc_fetch(struct channel *, const json_t *, struct buf *,
		    char *, size_t);
static void	dc_ws_message(struct ws_session *, const void *, size_t,
		    bool);
static void	dc_ws_close(struct ws_session *, int, const char *);
static void	dc_conn_end(struct dc_conn *, int, const char *);
static void	dc_gw_connect(struct discord *);
static void	dc_gw_restart(struct discord *, long delay_ms, bool resume);

const struct channel_ops channel_discord_ops = {
	.kind = "discord",
	.max_text = DC_MAX_TEXT,
	.init = dc_init,
	.free = dc_free,
	.start = dc_start,
	.stop = dc_stop,
	.verify = dc_verify,
	.parse = dc_parse,
	.send_text = dc_send_text,
	.send_file = dc_send_file,
	.working = dc_working,
	/* Trigger Typing Indicator: it shows for about 10 seconds. */
	.working_every_ms = 8000,
	.fetch = dc_fetch,
};

/* The Gateway's connections (ws.c's client sessions). */
static const struct ws_ops dc_ws_ops = {
	.on_message = dc_ws_message,
	.on_close = dc_ws_close,
};

static double
dc_rand(void)
{
	uint32_t	 r;

	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = (uint32_t)now_ms() * 2654435761u;
	return r / 4294967296.0;
}

static bool
dc_snowflake(const char *s)
{
	size_t	 i;

	for (i = 0; s[i] != '\0'; i++)
		if (!isdigit((unsigned char)s[i]) || i >= 20)
			return false;
	return i > 0;
}

static const char *
dc_str(const json_t *o, const char *key)
{
	const char	*s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "";
}

/* --- configuration ------------------------------------------------- */

static int
dc_conf_str(const json_t *conf, const char *key, char *out, size_t outsz,
    char *err, size_t errsz)
{
	const json_t	*v = json_object_get(conf, key);

	out[0] = '\0';
	if (v == NULL)
		return 0;
	if (!json_is_string(v) || (size_t)snprintf(out, outsz, "%s",
	    json_string_value(v)) >= outsz) {
		snprintf(err, errsz, "discord: \"%s\" must be a string of at "
		    "most %zu characters", key, outsz - 1);
		return -1;
	}
	return 0;
}

/* public_key: the application's Ed25519 key, 64 hex digits. */
static int
dc_conf_key(struct discord *d, const json_t *conf, char *err, size_t errsz)
{
	unsigned char	 raw[32];
	char		 hex[80];
	size_t		 i;
	unsigned	 v;

	if (dc_conf_str(conf, "public_key", hex, sizeof(hex), err,
	    errsz) == -1)
		return -1;
	if (hex[0] == '\0')
		return 0;
	for (i = 0; i < 32; i++) {
		if (strlen(hex) != 64 || !isxdigit((unsigned char)hex[2 * i])
		    || !isxdigit((unsigned char)hex[2 * i + 1]) ||
		    sscanf(hex + 2 * i, "%2x", &v) != 1)
			goto bad;
		raw[i] = (unsigned char)v;
	}
	d->pubkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw,
	    sizeof(raw));
	if (d->pubkey != NULL)
		return 0;
bad:
	snprintf(err, errsz, "discord: \"public_key\" must be the "
	    "application's public key, 64 hex digits");
	return -1;
}

/* The gateway thread's clock is monotonic, as now_ms() is. */
static struct discord *
dc_new(struct channel *ch)
{
	struct discord		*d;
	pthread_condattr_t	 a;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	d->ch = ch;
	pthread_mutex_init(&d->lock, NULL);
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&d->cond, &a);
	pthread_condattr_destroy(&a);
	channel_set_data(ch, d);
	return d;
}

static int
dc_init(struct channel *ch, const json_t *conf, char *err, size_t errsz)
{
	struct discord	*d;
	const json_t	*gw = json_object_get(conf, "gateway");
	const char	*base = channel_base_url(ch);
	size_t		 n;

	if (!json_is_string(json_object_get(conf, "bot_token"))) {
		snprintf(err, errsz, "discord: \"bot_token\" must name the "
		    "secret holding the bot's token");
		return -1;
	}
	if (gw != NULL && !json_is_boolean(gw)) {
		snprintf(err, errsz, "discord: \"gateway\" must be true or "
		    "false");
		return -1;
	}
	if ((d = dc_new(ch)) == NULL) {
		snprintf(err, errsz, "discord: out of memory");
		return -1;
	}
	d->gateway = gw == NULL || json_is_true(gw);
	if ((size_t)snprintf(d->api, sizeof(d->api), "%s", base != NULL ?
	    base : DC_API) >= sizeof(d->api)) {
		snprintf(err, errsz, "discord: \"api_base\" is too long");
		goto fail;
	}
	n = strlen(d->api);
	while (n > 0 && d->api[n - 1] == '/')
		d->api[--n] = '\0';
	if (dc_conf_str(conf, "application_id", d->app_id,
	    sizeof(d->app_id), err, errsz) == -1 ||
	    dc_conf_str(conf, "gateway_url", d->gw_conf, sizeof(d->gw_conf),
	    err, errsz) == -1 || dc_conf_key(d, conf, err, errsz) == -1)
		goto fail;
	if (d->app_id[0] != '\0' && !dc_snowflake(d->app_id)) {
		snprintf(err, errsz, "discord: \"application_id\" must be the "
		    "application's id (digits)");
		goto fail;
	}
	if (d->gw_conf[0] != '\0' && strncmp(d->gw_conf, "ws://", 5) != 0 &&
	    strncmp(d->gw_conf, "wss://", 6) != 0) {
		snprintf(err, errsz, "discord: \"gateway_url\" must be a ws:// "
		    "or wss:// URL");
		goto fail;
	}
	return 0;
fail:
	dc_free(ch);
	return -1;
}

static void
dc_free(struct channel *ch)
{
	struct discord	*d = channel_data(ch);
	struct dc_frame	*f;

	if (d == NULL)
		return;
	channel_set_data(ch, NULL);
	/* A session that never told its close still points here. */
	if (d->nlive > 0)
		return;
	while ((f = d->q_head) != NULL) {
		d->q_head = f->next;
		free(f);
	}
	EVP_PKEY_free(d->pubkey);
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

/* --- REST ------------------------------------------------------------ */

/* "Authorization: Bot TOKEN"; the caller wipes it. -1: no token. */
static int
dc_auth(struct discord *d, char *out, size_t outsz)
{
	const char	*tok = channel_secret(d->ch, "bot_token");

	if (tok == NULL || (size_t)snprintf(out, outsz,
	    "Authorization: Bot %s", tok) >= outsz)
		return -1;
	return 0;
}

/*
 * One REST call with the bot's token (or none: webhooks carry theirs in
 * the URL). The answer mapped per Discord's "HTTP Response Codes" and
 * "Rate Limits": 429 says retry_after in seconds (a float) in its JSON,
 * more precise than Retry-After; a JSON error's code is named.
 */
static enum chan_status
dc_call(struct discord *d, struct chan_http *h, bool bot,
    struct chan_result *res)
{
	char			 auth[512] = "";
	const char		*hdrs[4];
	enum chan_status	 st;
	json_t			*j;
	size_t			 n = 0;

	memset(res, 0, sizeof(*res));
	res->retry_after_ms = -1;
	if (bot && dc_auth(d, auth, sizeof(auth)) == -1) {
		snprintf(res->error, sizeof(res->error),
		    "discord: the bot_token secret is not set");
		return CHAN_FAILED;
	}
	if (bot)
		hdrs[n++] = auth;
	if (h->body != NULL)
		hdrs[n++] = "Content-Type: application/json";
	hdrs[n++] = "User-Agent: DiscordBot (https://pincer.dev, 1)";
	hdrs[n] = NULL;
	h->headers = hdrs;
	chan_http_do(h);
	explicit_bzero(auth, sizeof(auth));
	h->headers = NULL;
	st = chan_http_status(h, res);
	j = chan_http_json(h);
	if (h->status == 429 && j != NULL &&
	    json_is_number(json_object_get(j, "retry_after")))
		res->retry_after_ms = (long)ceil(1000 * json_number_value(
		    json_object_get(j, "retry_after")));
	if (st == CHAN_SENT)
		snprintf(res->message_id, sizeof(res->message_id), "%s",
		    dc_str(j, "id"));
	else if (h->status != 0 && h->status != 429)
		snprintf(res->error, sizeof(res->error),
		    "discord: HTTP %d: %.160s (code %lld)", h->status,
		    dc_str(j, "message"), json_integer_value(
		    json_object_get(j, "code")));
	json_decref(j);
	return st;
}

static bool
dc_is_dm(struct discord *d, const char *chat)
{
	bool	 dm = false;
	size_t	 i;

	pthread_mutex_lock(&d->lock);
	for (i = 0; i < d->ndms && !dm; i++)
		dm = strcmp(d->dms[i], chat) == 0;
	pthread_mutex_unlock(&d->lock);
	return dm;
}

static void
dc_note_dm(struct discord *d, const char *chat)
{
	if (dc_is_dm(d, chat) || strlen(chat) >= sizeof(d->dms[0]))
		return;
	pthread_mutex_lock(&d->lock);
	snprintf(d->dms[d->dm_next], sizeof(d->dms[0]), "%s", chat);
	d->dm_next = (d->dm_next + 1) % DC_DMS;
	if (d->ndms < DC_DMS)
		d->ndms++;
	pthread_mutex_unlock(&d->lock);
}

/*
 * An interaction's webhook token (good for 15 minutes, longer than a ref
 * holds) is kept in channel_state for the reply, in one of DC_IX_SLOTS
 * slots by its id, so the tokens kept stay bounded: "ID APP TOKEN".
 */
static void
dc_ix_key(const char *id, char *key, size_t keysz)
{
	snprintf(key, keysz, "interaction:%llu",
	    strtoull(id, NULL, 10) % DC_IX_SLOTS);
}

/* "ix:ID" → url …/webhooks/APP/TOKEN; -1: unknown or overwritten. */
static int
dc_ix_url(struct discord *d, const char *ref, char *url, size_t urlsz)
{
	char	 key[64], v[512], *app, *tok;
	int	 rc = -1;

	dc_ix_key(ref + 3, key, sizeof(key));
	if (channel_state_get(d->ch, key, v, sizeof(v)) == 0 &&
	    (app = strchr(v, ' ')) != NULL &&
	    (tok = strchr(app + 1, ' ')) != NULL) {
		*app++ = '\0';
		*tok++ = '\0';
		if (strcmp(v, ref + 3) == 0 && (size_t)snprintf(url, urlsz,
		    "%s/webhooks/%s/%s", d->api, app, tok) < urlsz)
			rc = 0;
	}
	explicit_bzero(v, sizeof(v));
	return rc;
}

/*
 * The message JSON of a reply part. nonce + enforce_nonce (Create
 * Message): Discord answers a repeat of the nonce within a few minutes
 * with the message already created, so a resend after a crash between
 * sending and recording is not posted twice. allowed_mentions parse []:
 * the model's text pings no one.
 */
static json_t *
dc_message(struct discord *d, const struct chan_out *out, const char *text,
    bool hook, const char *kind)
{
	char	 nonce[32];
	json_t	*m;

	m = json_pack("{s:s, s:{s:[]}}", "content", text,
	    "allowed_mentions", "parse");
	if (m == NULL || hook)
		return m;
	snprintf(nonce, sizeof(nonce), "%lld-%s%d", out->outbox_id, kind,
	    out->part);
	json_object_set_new(m, "nonce", json_string(nonce));
	json_object_set_new(m, "enforce_nonce", json_true());
	/* In a guild the first part quotes the message it answers. */
	if (out->ref[0] != '\0' && strncmp(out->ref, "ix:", 3) != 0 &&
	    out->part == 0 && !dc_is_dm(d, out->chat))
		json_object_set_new(m, "message_reference", json_pack(
		    "{s:s, s:b}", "message_id", out->ref,
		    "fail_if_not_exists", 0));
	return m;
}

/*
 * Where a part goes: the channel, or the interaction's webhook. Edit
 * Original Interaction Response turns the deferred "thinking…" into the
 * first text part; the rest, and files, are follow-up messages.
 */
static int
dc_target(struct discord *d, const struct chan_out *out, bool file,
    bool ix, char *url, size_t urlsz, const char **method)
{
	char	 hook[DC_URL_MAX];

	*method = "POST";
	if (ix && strncmp(out->ref, "ix:", 3) == 0 &&
	    dc_ix_url(d, out->ref, hook, sizeof(hook)) == 0) {
		if (!file && out->part == 0)
			*method = "PATCH";
		return (size_t)snprintf(url, urlsz, "%s%s", hook,
		    strcmp(*method, "PATCH") == 0 ? "/messages/@original" :
		    "") < urlsz ? 1 : -1;
	}
	if (!dc_snowflake(out->chat))
		return -1;
	return (size_t)snprintf(url, urlsz, "%s/channels/%s/messages",
	    d->api, out->chat) < urlsz ? 0 : -1;
}

/*
 * One attempt at a reply part or a file (multipart: payload_json and
 * files[0], Discord "Uploading Files"); ix: through the interaction's
 * webhook if there is one. *hooked: the webhook's HTTP status, or 0.
 */
static enum chan_status
dc_post_one(struct discord *d, const struct chan_out *out, const char *text,
    const struct chan_file *file, bool ix, struct chan_result *res,
    int *hooked)
{
	struct chan_part	 parts[2];
	struct chan_http	 h;
	char			 url[DC_URL_MAX], *body = NULL;
	const char		*method;
	enum chan_status	 st = CHAN_FAILED;
	json_t			*m;
	int			 hook;

	*hooked = 0;
	if ((hook = dc_target(d, out, file != NULL, ix, url, sizeof(url),
	    &method)) == -1) {
		snprintf(res->error, sizeof(res->error), "discord: not a "
		    "channel id: %.64s", out->chat);
		return CHAN_FAILED;
	}
	if ((m = dc_message(d, out, text, hook, file ? "f" : "")) != NULL &&
	    file != NULL)
		json_object_set_new(m, "attachments", json_pack("[{s:i, s:s}]",
		    "id", 0, "filename", file->name));
	if (m == NULL || (body = json_dumps(m, JSON_COMPACT)) == NULL) {
		snprintf(res->error, sizeof(res->error), "discord: out of "
		    "memory");
		goto done;
	}
	memset(&h, 0, sizeof(h));
	h.method = method;
	h.url = url;
	if (file != NULL) {
		parts[0] = (struct chan_part){ .name = "payload_json",
		    .data = body, .len = (size_t)-1,
		    .mime = "application/json" };
		parts[1] = (struct chan_part){ .name = "files[0]",
		    .data = file->data, .len = file->len,
		    .filename = file->name, .mime = file->mime };
		h.parts = parts;
		h.nparts = 2;
	} else {
		h.body = body;
		h.len = strlen(body);
	}
	st = dc_call(d, &h, !hook, res);
	*hooked = hook ? h.status : 0;
	chan_http_free(&h);
done:
	free(body);
	json_decref(m);
	return st;
}

/*
 * An interaction's webhook that is gone (its token lives 15 minutes:
 * 401 Invalid Webhook Token, 404 Unknown Webhook) gives way to a plain
 * message in its channel.
 */
static enum chan_status
dc_post(struct discord *d, const struct chan_out *out, const char *text,
    const struct chan_file *file, struct chan_result *res)
{
	enum chan_status	 st;
	int			 hooked;

	st = dc_post_one(d, out, text, file, true, res, &hooked);
	if (st != CHAN_FAILED || (hooked != 401 && hooked != 404))
		return st;
	log_warn("discord interaction expired", "channel=%s: the reply goes "
	    "to its channel instead", channel_name(d->ch));
	return dc_post_one(d, out, text, file, false, res, &hooked);
}

static enum chan_status
dc_send_text(struct channel *ch, const struct chan_out *out,
    const char *text, struct chan_result *res)
{
	return dc_post(channel_data(ch), out, text, NULL, res);
}

static enum chan_status
dc_send_file(struct channel *ch, const struct chan_out *out,
    const struct chan_file *file, struct chan_result *res)
{
	return dc_post(channel_data(ch), out, file->caption != NULL ?
	    file->caption : "", file, res);
}

/* Trigger Typing Indicator; an interaction shows "thinking…" itself. */
static void
dc_working(struct channel *ch, const struct chan_out *out, bool on)
{
	struct discord		*d = channel_data(ch);
	struct chan_result	 res;
	struct chan_http	 h;
	char			 url[DC_URL_MAX];

	if (!on || strncmp(out->ref, "ix:", 3) == 0 ||
	    !dc_snowflake(out->chat))
		return;
	snprintf(url, sizeof(url), "%s/channels/%s/typing", d->api,
	    out->chat);
	memset(&h, 0, sizeof(h));
	h.method = "POST";
	h.url = url;
	h.timeout_ms = 5000;
	dc_call(d, &h, true, &res);
	chan_http_free(&h);
}

/* Attachment URLs are signed CDN links: no token goes with them. */
static int
dc_fetch(struct channel *ch, const json_t *att, struct buf *out, char *why,
    size_t whysz)
{
	struct chan_http	 h;
	const char		*url = dc_str(att, "url");
	int			 rc = -1;

	(void)ch;
	if (strncmp(url, "https://", 8) != 0 &&
	    strncmp(url, "http://", 7) != 0) {
		snprintf(why, whysz, "discord: the attachment has no URL");
		return -1;
	}
	memset(&h, 0, sizeof(h));
	h.method = "GET";
	h.url = url;
	if (chan_http_do(&h) != 0 || h.status != 200)
		snprintf(why, whysz, "discord: attachment download: HTTP %d",
		    h.status);
	else if (buf_append(out, h.answer.data, h.answer.len) == -1)
		snprintf(why, whysz, "discord: the attachment is too large");
	else
		rc = 0;
	chan_http_free(&h);
	return rc;
}

/* --- interactions (Discord "Receiving and Responding") -------------- */

/*
 * Security and Authorization: Ed25519 over X-Signature-Timestamp and
 * the raw body with the application's public key. The timestamp is
 * bounded too, so a captured request cannot be replayed later.
 */
static int
dc_verify(struct channel *ch, struct http_req *req, char *why,
    size_t whysz)
{
	struct discord	*d = channel_data(ch);
	const char	*sig = http_req_header(req, "X-Signature-Ed25519");
	const char	*ts = http_req_header(req, "X-Signature-Timestamp");
	const char	*body;
	unsigned char	 raw[64];
	char		*msg = NULL, *end;
	EVP_MD_CTX	*md = NULL;
	size_t		 blen, tlen, i;
	long long	 t;
	unsigned	 v;
	int		 rc = -1;

	http_req_body(req, &body, &blen);
	if (d->pubkey == NULL) {
		snprintf(why, whysz, "no public_key is configured");
		return -1;
	}
	if (sig == NULL || ts == NULL || strlen(sig) != 128) {
		snprintf(why, whysz, "missing or malformed signature");
		return -1;
	}
	for (i = 0; i < sizeof(raw); i++) {
		if (!isxdigit((unsigned char)sig[2 * i]) ||
		    !isxdigit((unsigned char)sig[2 * i + 1]) ||
		    sscanf(sig + 2 * i, "%2x", &v) != 1) {
			snprintf(why, whysz, "malformed signature");
			return -1;
		}
		raw[i] = (unsigned char)v;
	}
	t = strtoll(ts, &end, 10);
	if ((tlen = strlen(ts)) == 0 || tlen > 20 || *end != '\0' ||
	    llabs(t - now_wall_ms() / 1000) > DC_SKEW_S) {
		snprintf(why, whysz, "stale or malformed timestamp");
		return -1;
	}
	if ((msg = malloc(tlen + blen + 1)) == NULL ||
	    (md = EVP_MD_CTX_new()) == NULL) {
		snprintf(why, whysz, "out of memory");
		goto done;
	}
	memcpy(msg, ts, tlen);
	if (blen > 0)
		memcpy(msg + tlen, body, blen);
	if (EVP_DigestVerifyInit(md, NULL, NULL, NULL, d->pubkey) == 1 &&
	    EVP_DigestVerify(md, raw, sizeof(raw), (unsigned char *)msg,
	    tlen + blen) == 1)
		rc = 0;
	else
		snprintf(why, whysz, "bad signature");
done:
	EVP_MD_CTX_free(md);
	free(msg);
	return rc;
}

/* The user behind an interaction: member.user in a guild, else user. */
static const json_t *
dc_ix_user(const json_t *ix)
{
	const json_t	*u = json_object_get(json_object_get(ix, "member"),
	    "user");

	return u != NULL ? u : json_object_get(ix, "user");
}

static void
dc_name(const json_t *user, char *out, size_t outsz)
{
	const char	*n = dc_str(user, "global_name");

	snprintf(out, outsz, "%s", n[0] != '\0' ? n : dc_str(user,
	    "username"));
}

/*
 * APPLICATION_COMMAND "/ask text:…": one message, its ref "ix:ID"; its
 * token is kept for the reply (dc_ix_url).
 */
static int
dc_ask(struct discord *d, const json_t *ix, struct chan_msg *m, char *why,
    size_t whysz)
{
	const json_t	*data = json_object_get(ix, "data"), *o;
	const char	*id = dc_str(ix, "id"), *tok = dc_str(ix, "token");
	const char	*app = d->app_id[0] != '\0' ? d->app_id :
	    dc_str(ix, "application_id"), *text = NULL, *chat;
	char		 key[64], val[512];
	size_t		 i;

	chat = dc_str(ix, "channel_id");
	if (chat[0] == '\0')
		chat = dc_str(json_object_get(ix, "channel"), "id");
	json_array_foreach(json_object_get(data, "options"), i, o)
		if (strcmp(dc_str(o, "name"), "text") == 0)
			text = json_string_value(json_object_get(o, "value"));
	/* The token goes into a URL's path: only its own characters. */
	if (!dc_snowflake(id) || !dc_snowflake(app) || !dc_snowflake(chat) ||
	    tok[0] == '\0' || tok[strspn(tok, DC_TOKEN_CHARS)] != '\0' ||
	    text == NULL || !dc_snowflake(dc_str(dc_ix_user(ix), "id"))) {
		snprintf(why, whysz, "an /ask without id, token, channel, "
		    "user or text");
		return -1;
	}
	dc_ix_key(id, key, sizeof(key));
	if ((size_t)snprintf(val, sizeof(val), "%s %s %s", id, app, tok) >=
	    sizeof(val) || channel_state_set(d->ch, key, val) == -1) {
		explicit_bzero(val, sizeof(val));
		snprintf(why, whysz, "cannot keep the interaction's token");
		return -1;
	}
	explicit_bzero(val, sizeof(val));
	snprintf(m->event_id, sizeof(m->event_id), "%s", id);
	snprintf(m->sender, sizeof(m->sender), "%s",
	    dc_str(dc_ix_user(ix), "id"));
	dc_name(dc_ix_user(ix), m->sender_name, sizeof(m->sender_name));
	snprintf(m->chat, sizeof(m->chat), "%s", chat);
	snprintf(m->ref, sizeof(m->ref), "ix:%s", id);
	m->direct = json_object_get(ix, "guild_id") == NULL;
	m->mention = true;
	return (m->text = strdup(text)) != NULL ? 0 : -1;
}

/*
 * Interaction types (Interaction Object): 1 PING is answered with a PONG
 * (type 1); 2 APPLICATION_COMMAND with type 5, a deferred answer that
 * shows "thinking…" until the reply edits it.
 */
static int
dc_parse(struct channel *ch, struct http_req *req, struct chan_batch *b,
    char *why, size_t whysz)
{
	struct discord	*d = channel_data(ch);
	const char	*body, *answer = "{\"type\":5}";
	json_t		*ix;
	size_t		 len;
	int		 rc = -1;

	http_req_body(req, &body, &len);
	if ((ix = json_loadb(body, len, 0, NULL)) == NULL ||
	    !json_is_object(ix)) {
		snprintf(why, whysz, "the body is not a JSON object");
		goto done;
	}
	switch (json_integer_value(json_object_get(ix, "type"))) {
	case 1:
		answer = "{\"type\":1}";
		break;
	case 2:
		if (strcmp(dc_str(json_object_get(ix, "data"), "name"),
		    "ask") != 0) {
			answer = "{\"type\":4,\"data\":{\"content\":"
			    "\"Only /ask is known here.\",\"flags\":64}}";
			break;
		}
		if (dc_ask(d, ix, &b->msgs[0], why, whysz) == -1) {
			chan_msg_clear(&b->msgs[0]);
			goto done;
		}
		b->n = 1;
		break;
	default:
		snprintf(why, whysz, "interaction type %lld is not handled",
		    json_integer_value(json_object_get(ix, "type")));
		goto done;
	}
	if ((b->body = strdup(answer)) != NULL) {
		b->status = 200;
		rc = 0;
	}
done:
	json_decref(ix);
	return rc;
}

/* --- the Gateway (Discord "Gateway": connection lifecycle) ---------- */
/*
 * ws.c runs the socket on its service thread, which must never wait;
 * the gateway thread here does the rest (GET /gateway/bot, storing
 * messages, the heartbeat clock) and hands frames to send or close to
 * the service thread with ws_post. Each connection has a generation:
 * frames of a connection given up are dropped unread, so after a close
 * nothing is handled twice or out of order.
 */

/* Service thread: the job's connection, if it is still the current one. */
static struct ws_session *
dc_job_ws(struct dc_job *j)
{
	return j->d->ws != NULL && j->d->ws_gen == j->gen ? j->d->ws : NULL;
}

static void
dc_job_send(void *arg)
{
	struct dc_job		*j = arg;
	struct ws_session	*s = dc_job_ws(j);

	if (s != NULL)
		ws_send(s, j->data, j->len, false);
	explicit_bzero(j->data, j->len);	/* Identify has the token */
	free(j);
}

static void
dc_job_close(void *arg)
{
	struct dc_job		*j = arg;
	struct ws_session	*s = dc_job_ws(j);

	if (s != NULL)
		ws_close(s, j->code, j->data);
	free(j);
}

static void
dc_job_connect(void *arg)
{
	struct dc_job	*j = arg;
	struct discord	*d = j->d;
	struct dc_conn	*c = calloc(1, sizeof(*c));
	struct ws_session *s;

	/* Out of memory: the Hello never comes, and its timer retries. */
	if (c != NULL) {
		c->d = d;
		c->gen = j->gen;
		pthread_mutex_lock(&d->lock);
		d->nlive++;
		pthread_mutex_unlock(&d->lock);
		if ((s = ws_connect_url(j->data, &dc_ws_ops, c)) == NULL)
			dc_conn_end(c, 1006, "cannot connect");
		else {
			d->ws = s;
			d->ws_gen = j->gen;
		}
	}
	free(j);
}

static int
dc_post_job(struct discord *d, void (*fn)(void *), int code,
    const char *data, size_t len)
{
	struct dc_job	*j;

	if ((j = malloc(sizeof(*j) + len + 1)) == NULL)
		return -1;
	j->job.fn = fn;
	j->job.arg = j;
	j->d = d;
	j->gen = d->gen;
	j->code = code;
	j->len = len;
	memcpy(j->data, data, len);
	j->data[len] = '\0';
	ws_post(&j->job);
	return 0;
}

/* Frames go to the gateway thread (the queue is bounded: see lost). */
static void
dc_enqueue(struct discord *d, struct dc_frame *f)
{
	pthread_mutex_lock(&d->lock);
	if (d->q_tail != NULL)
		d->q_tail->next = f;
	else
		d->q_head = f;
	d->q_tail = f;
	d->q_bytes += f->len;
	pthread_cond_signal(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

static struct dc_frame *
dc_frame_new(unsigned gen, const void *p, size_t n)
{
	struct dc_frame	*f = calloc(1, sizeof(*f) + n + 1);

	if (f == NULL)
		return NULL;
	f->gen = gen;
	f->len = n;
	memcpy(f->data, p, n);
	return f;
}

static void
dc_ws_message(struct ws_session *s, const void *p, size_t n, bool binary)
{
	struct dc_conn	*c = ws_user(s);
	struct discord	*d = c->d;
	struct dc_frame	*f;
	bool		 full;

	(void)binary;
	pthread_mutex_lock(&d->lock);
	full = d->q_bytes + n > DC_QUEUE_MAX;
	pthread_mutex_unlock(&d->lock);
	/*
	 * A frame that cannot be kept ends the connection (an empty
	 * frame says so): the resume replays it and all after it.
	 */
	if (full || (f = dc_frame_new(c->gen, p, n)) == NULL) {
		if ((f = dc_frame_new(c->gen, "", 0)) == NULL)
			return;
		ws_close(s, 4000, "overloaded");
	}
	dc_enqueue(d, f);
}

static void
dc_ws_close(struct ws_session *s, int code, const char *reason)
{
	struct dc_conn	*c = ws_user(s);

	if (c->d->ws == s)
		c->d->ws = NULL;
	dc_conn_end(c, code, reason);
}

/* A connection is over: the gateway thread hears it, stop waits for it. */
static void
dc_conn_end(struct dc_conn *c, int code, const char *reason)
{
	struct discord	*d = c->d;
	struct dc_frame	*f;

	if ((f = dc_frame_new(c->gen, reason, strlen(reason))) != NULL) {
		f->closed = true;
		f->code = code;
		dc_enqueue(d, f);
	}
	pthread_mutex_lock(&d->lock);
	d->nlive--;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	free(c);
}

/* --- the gateway thread ---------------------------------------------- */

static void
dc_gw_send(struct discord *d, json_t *frame)
{
	char	*s = frame != NULL ? json_dumps(frame, JSON_COMPACT) : NULL;

	json_decref(frame);
	if (s == NULL)
		return;
	dc_post_job(d, dc_job_send, 0, s, strlen(s));
	explicit_bzero(s, strlen(s));
	free(s);
}

/*
 * The session survives a restart: "SESSION SEQ BOT_ID RESUME_URL" (a
 * resume brings no READY, so the bot's id is kept with it).
 */
static void
dc_gw_save(struct discord *d)
{
	char	 v[sizeof(d->session) + sizeof(d->resume_url) + 64];

	if (d->seq == d->seq_saved && d->seq != 0)
		return;
	snprintf(v, sizeof(v), "%s %lld %s %s", d->session, d->seq,
	    d->bot_id, d->resume_url);
	if (channel_state_set(d->ch, "gateway_session", d->session[0] != '\0'
	    ? v : "") == 0)
		d->seq_saved = d->seq;
}

static void
dc_gw_load(struct discord *d)
{
	char	 v[sizeof(d->session) + sizeof(d->resume_url) + 64];
	char	*seq, *bot, *url, *end;

	d->session[0] = d->resume_url[0] = '\0';
	d->seq = d->seq_saved = 0;
	if (channel_state_get(d->ch, "gateway_session", v, sizeof(v)) != 0 ||
	    (seq = strchr(v, ' ')) == NULL ||
	    (bot = strchr(seq + 1, ' ')) == NULL ||
	    (url = strchr(bot + 1, ' ')) == NULL)
		return;
	*seq++ = *bot++ = *url++ = '\0';
	d->seq = strtoll(seq, &end, 10);
	if (*end != '\0' || d->seq < 0 || strlen(v) >= sizeof(d->session) ||
	    !dc_snowflake(bot) || strncmp(url, "ws", 2) != 0) {
		d->seq = 0;
		return;
	}
	snprintf(d->session, sizeof(d->session), "%s", v);
	snprintf(d->bot_id, sizeof(d->bot_id), "%s", bot);
	snprintf(d->resume_url, sizeof(d->resume_url), "%s", url);
	d->seq_saved = d->seq;
}

/* Exponential, capped at a minute, with jitter ("Reconnecting"). */
static long
dc_gw_backoff(struct discord *d)
{
	long	 base = 500L << (d->attempts < 7 ? d->attempts : 7);

	if (base > 60000)
		base = 60000;
	return base / 2 + (long)(dc_rand() * (double)base / 2);
}

static void
dc_gw_dead(struct discord *d, const char *why)
{
	log_error("discord gateway stopped", "channel=%s: %s",
	    channel_name(d->ch), why);
	channel_health(d->ch, CHAN_DOWN, why);
	d->state = GW_DEAD;
	d->t_next = UINT64_MAX;
}

/* Get Gateway Bot: the URL to connect to, asked once per process. */
static int
dc_gw_fetch(struct discord *d)
{
	struct chan_result	 res;
	struct chan_http	 h;
	char			 url[DC_URL_MAX];
	json_t			*j;
	int			 rc = -1;

	snprintf(url, sizeof(url), "%s/gateway/bot", d->api);
	memset(&h, 0, sizeof(h));
	h.method = "GET";
	h.url = url;
	h.timeout_ms = 3000;	/* stop() waits for this thread */
	dc_call(d, &h, true, &res);
	j = chan_http_json(&h);
	if (h.status == 0 && channel_secret(d->ch, "bot_token") == NULL)
		log_warn("discord gateway", "channel=%s: the bot_token secret "
		    "is not set (pincer secret set …)", channel_name(d->ch));
	else if (h.status == 200 && strncmp(dc_str(j, "url"), "ws", 2) == 0 &&
	    strlen(dc_str(j, "url")) < sizeof(d->gw_url)) {
		snprintf(d->gw_url, sizeof(d->gw_url), "%s", dc_str(j, "url"));
		rc = 0;
	} else if (h.status == 401)
		dc_gw_dead(d, "Discord refused the bot token (HTTP 401): "
		    "check the secret named by bot_token");
	else
		log_warn("discord gateway", "channel=%s: GET /gateway/bot: "
		    "HTTP %d %s", channel_name(d->ch), h.status,
		    h.status == 0 ? h.error : "");
	json_decref(j);
	chan_http_free(&h);
	return rc;
}

/* Resume on resume_gateway_url when there is a session, else identify. */
static void
dc_gw_connect(struct discord *d)
{
	char		 url[DC_URL_MAX + 32];
	const char	*base, *p;

	d->resuming = d->session[0] != '\0' && d->resume_url[0] != '\0';
	if (d->resuming)
		base = d->resume_url;
	else if (d->gw_conf[0] != '\0')
		base = d->gw_conf;
	else if (d->gw_url[0] != '\0' || dc_gw_fetch(d) == 0)
		base = d->gw_url;
	else {
		if (d->state != GW_DEAD) {
			d->t_next = now_ms() + dc_gw_backoff(d);
			channel_health(d->ch, CHAN_DOWN, "cannot get the "
			    "Gateway's address (GET /gateway/bot; is the "
			    "bot_token secret set?): trying again");
		}
		d->attempts++;
		return;
	}
	channel_health(d->ch, CHAN_CONNECTING, NULL);
	p = strstr(base, "://");
	snprintf(url, sizeof(url), "%s%s%s", base,
	    p != NULL && strchr(p + 3, '/') == NULL ? "/" : "",
	    strchr(base, '?') != NULL ? "" : "?v=10&encoding=json");
	d->gen++;
	d->state = GW_UP;
	d->hb_ms = 0;
	d->attempts++;
	/* The Hello is due at once; a silent server is tried again. */
	d->t_next = now_ms() + 30000;
	dc_post_job(d, dc_job_connect, 0, url, strlen(url));
}

/*
 * Give up the current connection (close 4000: Discord keeps the session
 * resumable after any code but 1000 and 1001) and connect again after
 * delay, resuming or identifying anew.
 */
static void
dc_gw_restart(struct discord *d, long delay_ms, bool resume)
{
	if (d->state == GW_UP)
		dc_post_job(d, dc_job_close, 4000, "reconnect", 9);
	d->gen++;
	d->state = GW_DOWN;
	d->hb_ms = 0;
	if (!resume) {
		d->session[0] = '\0';
		d->seq = 0;
	}
	d->t_next = now_ms() + (uint64_t)delay_ms;
}

/* Gateway Close Event Codes: some are the owner's to fix. */
static void
dc_gw_closed(struct discord *d, int code, const char *reason)
{
	char	 why[200];

	d->gen++;
	d->state = GW_DOWN;
	d->hb_ms = 0;
	switch (code) {
	case 4004:
		dc_gw_dead(d, "authentication failed (close 4004): check the "
		    "bot token in the secret named by bot_token");
		return;
	case 4013:
	case 4014:
		dc_gw_dead(d, "intents refused (close 4013/4014): enable the "
		    "Message Content intent (Developer Portal, Bot, "
		    "Privileged Gateway Intents)");
		return;
	case 4010:
	case 4011:
	case 4012:
		dc_gw_dead(d, "the Gateway refused the connection (shard or "
		    "API version)");
		return;
	case 4007:	/* invalid seq */
	case 4009:	/* session timed out */
		d->session[0] = '\0';
		d->seq = 0;
		break;
	}
	log_warn("discord gateway closed", "channel=%s code=%d (%.100s): "
	    "%s", channel_name(d->ch), code, reason, d->session[0] != '\0' ?
	    "resuming" : "identifying");
	snprintf(why, sizeof(why), "the Gateway closed (code %d %.100s): "
	    "connecting again", code, reason);
	channel_health(d->ch, CHAN_FAILURE, why);
	channel_health(d->ch, CHAN_CONNECTING, NULL);
	d->t_next = now_ms() + (uint64_t)dc_gw_backoff(d);
}

/* Hello: the heartbeat clock starts, then Identify or Resume. */
static void
dc_gw_hello(struct discord *d, const json_t *data)
{
	const char	*tok = channel_secret(d->ch, "bot_token");
	json_int_t	 ms = json_integer_value(json_object_get(data,
	    "heartbeat_interval"));

	d->hb_ms = ms >= 100 && ms <= 600000 ? (long)ms : 41250;
	d->hb_acked = true;
	/* The first beat after interval * jitter ("Sending Heartbeats"). */
	d->t_next = now_ms() + (uint64_t)(d->hb_ms * dc_rand());
	if (tok == NULL) {
		log_warn("discord gateway", "channel=%s: the bot_token secret "
		    "is not set (pincer secret set …)", channel_name(d->ch));
		dc_gw_restart(d, dc_gw_backoff(d), true);
		return;
	}
	if (d->resuming)
		dc_gw_send(d, json_pack("{s:i, s:{s:s, s:s, s:I}}", "op", 6,
		    "d", "token", tok, "session_id", d->session, "seq",
		    (json_int_t)d->seq));
	else
		dc_gw_send(d, json_pack("{s:i, s:{s:s, s:i, s:{s:s, s:s, "
		    "s:s}}}", "op", 2, "d", "token", tok, "intents",
		    DC_INTENTS, "properties", "os", "linux", "browser",
		    "pincer", "device", "pincer"));
}

static void
dc_gw_beat(struct discord *d)
{
	dc_gw_send(d, json_pack("{s:i, s:o}", "op", 1, "d", d->seq > 0 ?
	    json_integer(d->seq) : json_null()));
}

/* A zombied connection (no ack since the last beat) is given up. */
static void
dc_gw_timer(struct discord *d)
{
	if (d->state == GW_DOWN) {
		dc_gw_connect(d);
		return;
	}
	if (d->state != GW_UP)
		return;
	if (d->hb_ms == 0 || !d->hb_acked) {
		log_warn("discord gateway", "channel=%s: %s", channel_name(
		    d->ch), d->hb_ms == 0 ? "no Hello" : "no heartbeat ack");
		dc_gw_restart(d, dc_gw_backoff(d), true);
		return;
	}
	dc_gw_beat(d);
	d->hb_acked = false;
	d->t_next = now_ms() + (uint64_t)d->hb_ms;
	dc_gw_save(d);
}

/* content without the bot's own mentions, <@ID> and <@!ID>, trimmed. */
static char *
dc_strip(const char *s, const char *bot)
{
	struct buf	 b;
	size_t		 n = strlen(bot), skip;
	char		*out;

	buf_init(&b, strlen(s) + 1);
	while (*s != '\0') {
		skip = strncmp(s, "<@", 2) != 0 ? 0 : s[2] == '!' ? 3 : 2;
		if (skip > 0 && n > 0 && strncmp(s + skip, bot, n) == 0 &&
		    s[skip + n] == '>')
			s += skip + n + 1;
		else
			buf_append(&b, s++, 1);
	}
	out = buf_steal(&b);
	if (out == NULL)
		return strdup("");
	for (s = out; isspace((unsigned char)*s); s++)
		;
	memmove(out, s, strlen(s) + 1);
	for (n = strlen(out); n > 0 && isspace((unsigned char)out[n - 1]); n--)
		out[n - 1] = '\0';
	return out;
}

static json_t *
dc_attachments(const json_t *list)
{
	json_t		*out = json_array();
	const json_t	*a;
	size_t		 i;

	json_array_foreach(list, i, a)
		json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:I}",
		    "url", dc_str(a, "url"), "name", dc_str(a, "filename"),
		    "mime", dc_str(a, "content_type"), "size",
		    json_integer_value(json_object_get(a, "size"))));
	return out;
}

/*
 * MESSAGE_CREATE: 1 and m filled, or 0 to ignore (bots, the bot itself,
 * system messages; types 0 DEFAULT and 19 REPLY are people's). A DM has
 * no guild_id; in a guild the bot is mentioned or replied to.
 */
static int
dc_gw_message(struct discord *d, const json_t *o, struct chan_msg *m)
{
	const json_t	*author = json_object_get(o, "author"), *u;
	json_int_t	 type = json_integer_value(json_object_get(o, "type"));
	size_t		 i;

	if (json_is_true(json_object_get(author, "bot")) ||
	    strcmp(dc_str(author, "id"), d->bot_id) == 0 ||
	    (type != 0 && type != 19) || !dc_snowflake(dc_str(o, "id")) ||
	    !dc_snowflake(dc_str(o, "channel_id")))
		return 0;
	snprintf(m->event_id, sizeof(m->event_id), "%s", dc_str(o, "id"));
	snprintf(m->ref, sizeof(m->ref), "%s", dc_str(o, "id"));
	snprintf(m->chat, sizeof(m->chat), "%s", dc_str(o, "channel_id"));
	snprintf(m->sender, sizeof(m->sender), "%s", dc_str(author, "id"));
	dc_name(author, m->sender_name, sizeof(m->sender_name));
	m->direct = json_object_get(o, "guild_id") == NULL;
	json_array_foreach(json_object_get(o, "mentions"), i, u)
		if (strcmp(dc_str(u, "id"), d->bot_id) == 0)
			m->mention = true;
	if (strcmp(dc_str(json_object_get(json_object_get(o,
	    "referenced_message"), "author"), "id"), d->bot_id) == 0)
		m->mention = true;
	m->text = dc_strip(dc_str(o, "content"), d->bot_id);
	m->attachments = dc_attachments(json_object_get(o, "attachments"));
	if (m->text == NULL || (m->text[0] == '\0' &&
	    json_array_size(m->attachments) == 0))
		return 0;
	if (m->direct)
		dc_note_dm(d, m->chat);
	return 1;
}

/*
 * A message is stored before its seq counts as seen; one that is not
 * stored ends the connection, and the resume replays it.
 */
static int
dc_gw_ingest(struct discord *d, const json_t *o)
{
	struct chan_msg	 m;
	int		 rc = 0;

	memset(&m, 0, sizeof(m));
	if (dc_gw_message(d, o, &m) == 1 && channel_ingest(d->ch, &m, 1) ==
	    -1) {
		log_warn("discord gateway", "channel=%s: message %s not "
		    "stored; resuming to have it again", channel_name(d->ch),
		    m.event_id);
		dc_gw_restart(d, dc_gw_backoff(d), true);
		rc = -1;
	}
	chan_msg_clear(&m);
	return rc;
}

/* Dispatch (op 0): READY and RESUMED start a session, messages come. */
static void
dc_gw_dispatch(struct discord *d, const char *t, const json_t *data,
    json_int_t s)
{
	if (strcmp(t, "READY") == 0) {
		snprintf(d->session, sizeof(d->session), "%s",
		    dc_str(data, "session_id"));
		snprintf(d->resume_url, sizeof(d->resume_url), "%s",
		    dc_str(data, "resume_gateway_url"));
		snprintf(d->bot_id, sizeof(d->bot_id), "%s",
		    dc_str(json_object_get(data, "user"), "id"));
		d->attempts = 0;
		d->seq_saved = -1;	/* a new session: saved below */
		log_info("discord gateway ready", "channel=%s bot=%s",
		    channel_name(d->ch), d->bot_id);
		channel_health(d->ch, CHAN_UP, NULL);
	} else if (strcmp(t, "RESUMED") == 0) {
		d->attempts = 0;
		log_info("discord gateway resumed", "channel=%s seq=%lld",
		    channel_name(d->ch), d->seq);
		channel_health(d->ch, CHAN_UP, NULL);
	} else if (strcmp(t, "MESSAGE_CREATE") == 0 &&
	    dc_gw_ingest(d, data) == -1)
		return;
	if (s > d->seq)
		d->seq = s;
	if (strcmp(t, "READY") == 0)
		dc_gw_save(d);
}

/* Gateway Opcodes: 0 dispatch, 1 beat now, 7 reconnect, 9 invalid
 * session, 10 hello, 11 heartbeat ack. */
static void
dc_gw_frame(struct discord *d, const struct dc_frame *f)
{
	json_t		*j, *data;

	if (f->gen != d->gen || d->state != GW_UP)
		return;
	if (f->closed) {
		dc_gw_closed(d, f->code, f->data);
		return;
	}
	if (f->len == 0 || (j = json_loadb(f->data, f->len, 0, NULL)) ==
	    NULL) {
		dc_gw_restart(d, dc_gw_backoff(d), true);
		return;
	}
	data = json_object_get(j, "d");
	switch (json_integer_value(json_object_get(j, "op"))) {
	case 0:
		dc_gw_dispatch(d, dc_str(j, "t"), data, json_integer_value(
		    json_object_get(j, "s")));
		break;
	case 1:
		dc_gw_beat(d);
		break;
	case 7:
		log_info("discord gateway", "channel=%s: asked to reconnect",
		    channel_name(d->ch));
		dc_gw_restart(d, 0, true);
		break;
	case 9:
		/* d false: wait 1 to 5 seconds, then identify anew. */
		dc_gw_restart(d, json_is_true(data) ? dc_gw_backoff(d) :
		    1000 + (long)(4000 * dc_rand()), json_is_true(data));
		break;
	case 10:
		dc_gw_hello(d, data);
		break;
	case 11:
		d->hb_acked = true;
		break;
	}
	json_decref(j);
}

static void *
dc_gw_main(void *arg)
{
	struct discord	*d = arg;
	struct dc_frame	*f;
	struct timespec	 ts;
	uint64_t	 now;

	pthread_mutex_lock(&d->lock);
	while (!d->quit) {
		if ((f = d->q_head) != NULL) {
			if ((d->q_head = f->next) == NULL)
				d->q_tail = NULL;
			d->q_bytes -= f->len;
			pthread_mutex_unlock(&d->lock);
			dc_gw_frame(d, f);
			free(f);
		} else if ((now = now_ms()) >= d->t_next) {
			pthread_mutex_unlock(&d->lock);
			dc_gw_timer(d);
		} else {
			clock_gettime(CLOCK_MONOTONIC, &ts);
			now = d->t_next - now > 60000 ? 60000 : d->t_next -
			    now;
			ts.tv_sec += (time_t)(now / 1000);
			ts.tv_nsec += (long)(now % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&d->cond, &d->lock, &ts);
			continue;
		}
		pthread_mutex_lock(&d->lock);
	}
	pthread_mutex_unlock(&d->lock);
	dc_gw_save(d);
	if (d->state == GW_UP)
		dc_post_job(d, dc_job_close, 4000, "stopping", 8);
	return NULL;
}

static int
dc_start(struct channel *ch)
{
	struct discord	*d = channel_data(ch);

	if (!d->gateway)
		return 0;
	dc_gw_load(d);
	d->quit = false;
	d->state = GW_DOWN;
	d->t_next = now_ms();
	if (pthread_create(&d->thread, NULL, dc_gw_main, d) != 0) {
		log_error("discord gateway", "channel=%s: cannot start a "
		    "thread", channel_name(ch));
		return -1;
	}
	d->running = true;
	return 0;
}

/* The thread ends, then its connection (a second at most for that). */
static void
dc_stop(struct channel *ch)
{
	struct discord	*d = channel_data(ch);
	struct timespec	 ts;

	if (d == NULL || !d->running)
		return;
	pthread_mutex_lock(&d->lock);
	d->quit = true;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	pthread_join(d->thread, NULL);
	d->running = false;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += 1;
	pthread_mutex_lock(&d->lock);
	while (d->nlive > 0)
		if (pthread_cond_timedwait(&d->cond, &d->lock, &ts) != 0)
			break;
	pthread_mutex_unlock(&d->lock);
}
