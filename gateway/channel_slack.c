/* SPDX-License-Identifier: MIT */
/*
 * channel_slack.c: Slack. Events come in over the Events API (a signed
 * POST to /hooks/slack/events) or, for owners without a public URL, over
 * Socket Mode (a WebSocket pincerd opens itself with the app token); both
 * carry the same event_callback body, read by one parser. Replies go out
 * through the Web API: chat.postMessage, the external upload flow for
 * files, and an "eyes" reaction on the message while its turn runs.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pincer.h"

#define SLACK_API	"https://slack.com/api"
/*
 * Slack cuts a message at 40,000 characters, far past what anyone reads
 * in one message; chat.postMessage's docs recommend at most 4,000, so
 * replies are split there. Escaping (&amp; is the longest) can make a
 * part up to five times longer, still within the hard limit.
 */
#define SLACK_TEXT_MAX	4000
/* Slack's "Verifying requests from Slack": refuse beyond 5 minutes. */
#define SKEW_MAX	(5 * 60)
#define FORM		"application/x-www-form-urlencoded"
#define JSON_UTF8	"application/json; charset=utf-8"
#define BACKOFF_MIN_MS	1000L
#define BACKOFF_MAX_MS	30000L
/* Calls on our own thread stay short: stop() joins it. */
#define OWN_TIMEOUT_MS	2000L
#define WORKING_TIMEOUT_MS 5000L
#define STOP_WAIT_MS	1500

/* One channel's state; the lock guards what two threads share. */
struct slack {
	bool			 socket;	/* Socket Mode */
	pthread_mutex_t		 lock;
	pthread_cond_t		 cond;	/* CLOCK_MONOTONIC */
	char			 bot_user[CHAN_ID_MAX]; /* "": unknown */
	pthread_t		 thread;
	bool			 thread_up;
	bool			 stopping;
	bool			 need_auth;	/* auth.test to do */
	uint64_t		 auth_at;	/* not before this */
	long			 auth_backoff;
	/* Socket Mode: our thread asks for a URL, ws.c's connects. */
	bool			 want_conn;
	uint64_t		 conn_at;
	long			 backoff;	/* next failure's delay */
	char			*url;		/* owned, for the job */
	bool			 job_queued;
	struct ws_job		 job;
	struct ws_job		 stop_job;
	bool			 stop_queued;
	struct ws_session	*cur;		/* the live connection */
	struct ws_session	*old;		/* one being replaced */
	int			 sessions;	/* on_close still owed */
};

/* One Socket Mode connection (the ws session's user data). */
struct slack_conn {
	struct channel	*ch;
	struct slack	*sl;
	bool		 replacing;	/* Slack asked for another */
};

static int	 slack_init(struct channel *, const json_t *, char *, size_t);
static void	 slack_free(struct channel *);
static int	 slack_start(struct channel *);
static void	 slack_stop(struct channel *);
static int	 slack_verify(struct channel *, struct http_req *, char *,
		    size_t);
static int	 slack_parse(struct channel *, struct http_req *,
		    struct chan_batch *, char *, size_t);
static enum chan_status slack_send_text(struct channel *,
		    const struct chan_out *, const char *,
		    struct chan_result *);
static enum chan_status slack_send_file(struct channel *,
		    const struct chan_out *, const struct chan_file *,
		    struct chan_result *);
static void	 slack_working(struct channel *, const struct chan_out *,
		    bool);
static int	 slack_fetch(struct channel *, const json_t *, struct buf *,
		    char *, size_t);

static int	 slack_callback(struct slack *, const json_t *,
		    struct chan_msg *, size_t *, char *, size_t);
static enum chan_status slack_call(struct channel *, const char *key,
		    const char *method, const char *ctype, const char *body,
		    long timeout_ms, json_t **, struct chan_result *);
static void	*slack_thread(void *);
static void	 health(struct channel *, const char *, const char *);
static void	 slack_connect_job(void *);
static void	 slack_close_job(void *);
static int	 sock_open(struct ws_session *);
static void	 sock_message(struct ws_session *, const void *, size_t,
		    bool);
static void	 sock_close(struct ws_session *, int, const char *);

const struct channel_ops channel_slack_ops = {
	.kind = "slack",
	.max_text = SLACK_TEXT_MAX,
	.init = slack_init,
	.free = slack_free,
	.start = slack_start,
	.stop = slack_stop,
	.verify = slack_verify,
	.parse = slack_parse,
	.send_text = slack_send_text,
	.send_file = slack_send_file,
	.working = slack_working,
	.working_every_ms = 0,	/* a reaction stays until removed */
	.fetch = slack_fetch,
};

static const struct ws_ops sock_ops = {
	.on_open = sock_open,
	.on_message = sock_message,
	.on_close = sock_close,
	.keepalive = true,
};

/* Web API errors worth another try (Web API docs, "Errors"). */
static const char *const transient[] = {
	"ratelimited", "internal_error", "fatal_error", "service_unavailable",
	"request_timeout", NULL,
};

static const char *
jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* A string config key: absent is fine unless required; else a string. */
static int
conf_key(const json_t *conf, const char *key, const char *why,
    char *err, size_t errsz)
{
	const json_t	*v = json_object_get(conf, key);

	if (v == NULL && why == NULL)
		return 0;
	if (json_is_string(v) && *json_string_value(v) != '\0')
		return 0;
	snprintf(err, errsz, "%s: %s", key, v == NULL ? why :
	    "a non-empty string");
	return -1;
}

static int
slack_init(struct channel *ch, const json_t *conf, char *err, size_t errsz)
{
	const char		*mode, *bot;
	struct slack		*sl;
	pthread_condattr_t	 ca;
	bool			 socket;

	mode = jstr(conf, "mode");
	if (json_object_get(conf, "mode") != NULL && (mode == NULL ||
	    (strcmp(mode, "events") != 0 && strcmp(mode, "socket") != 0))) {
		snprintf(err, errsz, "mode: \"events\" (the default) or "
		    "\"socket\"");
		return -1;
	}
	socket = mode != NULL && strcmp(mode, "socket") == 0;
	if (conf_key(conf, "bot_token", "required: the name of the secret "
	    "holding the bot token (xoxb-…)", err, errsz) == -1 ||
	    conf_key(conf, "signing_secret", socket ? NULL : "required in "
	    "events mode: the name of the secret holding the app's signing "
	    "secret", err, errsz) == -1 ||
	    conf_key(conf, "app_token", socket ? "required in socket mode: "
	    "the name of the secret holding the app-level token (xapp-…)" :
	    NULL, err, errsz) == -1 ||
	    conf_key(conf, "bot_user_id", NULL, err, errsz) == -1)
		return -1;
	bot = jstr(conf, "bot_user_id");
	if (bot != NULL && strlen(bot) >= CHAN_ID_MAX) {
		snprintf(err, errsz, "bot_user_id: too long");
		return -1;
	}
	if ((sl = calloc(1, sizeof(*sl))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	sl->socket = socket;
	pthread_mutex_init(&sl->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sl->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (bot != NULL)
		snprintf(sl->bot_user, sizeof(sl->bot_user), "%s", bot);
	sl->need_auth = bot == NULL;
	sl->auth_backoff = BACKOFF_MIN_MS;
	sl->backoff = BACKOFF_MIN_MS;
	channel_set_data(ch, sl);
	return 0;
}

static void
slack_free(struct channel *ch)
{
	struct slack	*sl = channel_data(ch);

	if (sl == NULL)
		return;
	/* A session ws.c still owes a close to keeps its pointer to sl. */
	if (sl->sessions > 0 || sl->job_queued || sl->stop_queued) {
		log_warn("slack channel state kept: its socket is still open",
		    "channel=%s", channel_name(ch));
		return;
	}
	pthread_mutex_destroy(&sl->lock);
	pthread_cond_destroy(&sl->cond);
	free(sl->url);
	free(sl);
	channel_set_data(ch, NULL);
}

/*
 * Our own thread: auth.test when the bot's user id is not configured,
 * and in Socket Mode apps.connections.open, which blocks and so must not
 * run on ws.c's service thread.
 */
static int
slack_start(struct channel *ch)
{
	struct slack	*sl = channel_data(ch);
	int		 rc;

	if (!sl->socket && !sl->need_auth)
		return 0;
	sl->stopping = false;
	sl->want_conn = sl->socket;
	if (sl->socket)
		channel_health(ch, CHAN_CONNECTING, NULL);
	sl->conn_at = sl->auth_at = now_ms();
	if ((rc = pthread_create(&sl->thread, NULL, slack_thread, ch)) != 0) {
		log_error("cannot start a thread", "channel=%s %s",
		    channel_name(ch), strerror(rc));
		return -1;
	}
	sl->thread_up = true;
	return 0;
}

static void
slack_stop(struct channel *ch)
{
	struct slack	*sl = channel_data(ch);
	struct timespec	 ts;
	bool		 post;

	pthread_mutex_lock(&sl->lock);
	sl->stopping = true;
	pthread_cond_broadcast(&sl->cond);
	pthread_mutex_unlock(&sl->lock);
	if (sl->thread_up)
		pthread_join(sl->thread, NULL);
	sl->thread_up = false;
	if (!sl->socket)
		return;
	pthread_mutex_lock(&sl->lock);
	post = sl->sessions > 0 && !sl->stop_queued;
	sl->stop_queued |= post;
	pthread_mutex_unlock(&sl->lock);
	if (post) {
		sl->stop_job.fn = slack_close_job;
		sl->stop_job.arg = sl;
		ws_post(&sl->stop_job);
	}
	/* The sessions' on_close comes from ws.c's thread: wait a little. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += STOP_WAIT_MS / 1000;
	ts.tv_nsec += (STOP_WAIT_MS % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&sl->lock);
	while (sl->sessions > 0 || sl->job_queued || sl->stop_queued)
		if (pthread_cond_timedwait(&sl->cond, &sl->lock, &ts) ==
		    ETIMEDOUT)
			break;
	pthread_mutex_unlock(&sl->lock);
}

/*
 * Slack's "Verifying requests from Slack": v0= and the hex HMAC-SHA256,
 * keyed with the signing secret, of "v0:" timestamp ":" raw body,
 * compared in constant time; a timestamp over 5 minutes away is refused
 * so a captured request cannot be replayed later.
 */
static int
slack_verify(struct channel *ch, struct http_req *r, char *why,
    size_t whysz)
{
	struct slack	*sl = channel_data(ch);
	const char	*secret, *ts, *sig, *body, *path, *seg;
	char		 mac[65], *end;
	struct buf	 b;
	size_t		 len;
	long long	 t, now = (long long)time(NULL);
	bool		 good;

	path = http_req_path(r);
	seg = strrchr(path, '/');
	if (sl->socket) {
		snprintf(why, whysz, "this channel uses Socket Mode");
		return -1;
	}
	if (strcmp(http_req_method(r), "POST") != 0 || seg == NULL ||
	    strcmp(seg, "/events") != 0) {
		snprintf(why, whysz, "Slack's events come as POST …/events");
		return -1;
	}
	if ((secret = channel_secret(ch, "signing_secret")) == NULL) {
		snprintf(why, whysz, "the signing secret is not set");
		return -1;
	}
	ts = http_req_header(r, "X-Slack-Request-Timestamp");
	sig = http_req_header(r, "X-Slack-Signature");
	if (ts == NULL || sig == NULL || strncmp(sig, "v0=", 3) != 0) {
		snprintf(why, whysz, "no v0 signature");
		return -1;
	}
	errno = 0;
	t = strtoll(ts, &end, 10);
	if (errno != 0 || end == ts || *end != '\0' || t < now - SKEW_MAX ||
	    t > now + SKEW_MAX) {
		snprintf(why, whysz, "the request timestamp is over 5 "
		    "minutes away");
		return -1;
	}
	http_req_body(r, &body, &len);
	buf_init(&b, len + 64);
	if (buf_printf(&b, "v0:%s:", ts) == -1 ||
	    buf_append(&b, body, len) == -1) {
		buf_free(&b);
		snprintf(why, whysz, "out of memory");
		return -1;
	}
	chan_hmac_hex(secret, strlen(secret), b.data, b.len, mac);
	buf_free(&b);
	good = chan_hex_equal(mac, sig + 3);
	explicit_bzero(mac, sizeof(mac));
	if (!good) {
		snprintf(why, whysz, "bad signature");
		return -1;
	}
	return 0;
}

/* Events API: url_verification is answered, an event_callback read. */
static int
slack_parse(struct channel *ch, struct http_req *r, struct chan_batch *bt,
    char *why, size_t whysz)
{
	struct slack	*sl = channel_data(ch);
	const char	*body, *type, *challenge;
	json_t		*root, *ans;
	json_error_t	 je;
	size_t		 len;
	int		 rc = 0;

	http_req_body(r, &body, &len);
	if ((root = json_loadb(body, len, 0, &je)) == NULL ||
	    !json_is_object(root) || (type = jstr(root, "type")) == NULL) {
		snprintf(why, whysz, "the body is not a Slack event");
		json_decref(root);
		return -1;
	}
	if (strcmp(type, "url_verification") == 0) {
		if ((challenge = jstr(root, "challenge")) == NULL) {
			snprintf(why, whysz, "url_verification without a "
			    "challenge");
			rc = -1;
		} else {
			ans = json_pack("{s:s}", "challenge", challenge);
			bt->status = 200;
			bt->body = ans != NULL ?
			    json_dumps(ans, JSON_COMPACT) : NULL;
			json_decref(ans);
			rc = bt->body != NULL ? 0 : -1;
		}
	} else if (strcmp(type, "event_callback") == 0) {
		rc = slack_callback(sl, root, &bt->msgs[0], &len, why, whysz);
		bt->n = len;
	}
	/* Anything else (app_rate_limited, …) is acknowledged and let be. */
	json_decref(root);
	return rc;
}

/* The bot's own user id: the event's authorizations, else ours. */
static void
bot_user(struct slack *sl, const json_t *cb, char *out, size_t outsz)
{
	const json_t	*a = json_array_get(json_object_get(cb,
			    "authorizations"), 0);
	const char	*u = jstr(a, "user_id");

	if (u != NULL) {
		snprintf(out, outsz, "%s", u);
		return;
	}
	pthread_mutex_lock(&sl->lock);
	snprintf(out, outsz, "%s", sl->bot_user);
	pthread_mutex_unlock(&sl->lock);
}

/*
 * A message's text as the owner typed it: the bot's mentions (<@U…> or
 * <@U…|name>) taken out, and the three escapes Slack puts in text
 * (Formatting, "Escaping text") undone. Caller frees.
 */
static char *
plain_text(const char *s, const char *bot, bool lead_mention)
{
	struct buf	 b;
	size_t		 blen = strlen(bot), skip;
	const char	*e;
	char		*out;

	buf_init(&b, strlen(s) + 1);
	s += strspn(s, " ");
	/* The bot's id unknown yet: an app_mention names it first. */
	if (lead_mention && blen == 0 && strncmp(s, "<@", 2) == 0 &&
	    (e = strchr(s, '>')) != NULL)
		s = e + 1;
	for (; *s != '\0'; s += skip) {
		skip = 1;
		if (blen > 0 && strncmp(s, "<@", 2) == 0 &&
		    strncmp(s + 2, bot, blen) == 0 &&
		    (s[2 + blen] == '>' || s[2 + blen] == '|') &&
		    (e = strchr(s, '>')) != NULL)
			skip = (size_t)(e - s) + 1;
		else if (strncmp(s, "&lt;", 4) == 0)
			skip = 4, buf_puts(&b, "<");
		else if (strncmp(s, "&gt;", 4) == 0)
			skip = 4, buf_puts(&b, ">");
		else if (strncmp(s, "&amp;", 5) == 0)
			skip = 5, buf_puts(&b, "&");
		else
			buf_append(&b, s, 1);
	}
	while (b.len > 0 && strchr(" \n", b.data[b.len - 1]) != NULL)
		b.data[--b.len] = '\0';
	e = b.data != NULL ? b.data : "";
	out = strdup(e + strspn(e, " "));
	buf_free(&b);
	return out;
}

/* Files in a file_share message: [{id, url, name, mime, size}]. */
static json_t *
files_of(const json_t *ev)
{
	const json_t	*files = json_object_get(ev, "files"), *f;
	json_t		*out;
	size_t		 i;

	if (!json_is_array(files) || json_array_size(files) == 0)
		return NULL;
	if ((out = json_array()) == NULL)
		return NULL;
	json_array_foreach(files, i, f) {
		/* A file over a free workspace's limit comes without a URL. */
		if (jstr(f, "url_private") == NULL || jstr(f, "id") == NULL)
			continue;
		json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:s, "
		    "s:I}", "id", jstr(f, "id"), "url", jstr(f, "url_private"),
		    "name", jstr(f, "name") ? jstr(f, "name") : "file",
		    "mime", jstr(f, "mimetype") ? jstr(f, "mimetype") :
		    "application/octet-stream",
		    "size", (json_int_t)json_integer_value(json_object_get(f,
		    "size"))));
	}
	if (json_array_size(out) == 0) {
		json_decref(out);
		return NULL;
	}
	return out;
}

/* Whether pincer answers this event at all (Events API, event types). */
static bool
wanted(const json_t *ev, const char *bot, bool *mention)
{
	const char	*type = jstr(ev, "type"), *sub = jstr(ev, "subtype");
	const char	*user = jstr(ev, "user");

	if (type == NULL)
		return false;
	*mention = strcmp(type, "app_mention") == 0;
	/* A channel's messages come as app_mention when the bot is named. */
	if (!*mention && (strcmp(type, "message") != 0 ||
	    jstr(ev, "channel_type") == NULL ||
	    strcmp(jstr(ev, "channel_type"), "im") != 0))
		return false;
	/* Edits, deletions, joins, bots: only a person's new message. */
	if (sub != NULL && strcmp(sub, "file_share") != 0 &&
	    strcmp(sub, "thread_broadcast") != 0)
		return false;
	if (json_object_get(ev, "bot_id") != NULL &&
	    !json_is_null(json_object_get(ev, "bot_id")))
		return false;
	return user != NULL && (*bot == '\0' || strcmp(user, bot) != 0);
}

/*
 * One event_callback (the Events API's body, or a Socket Mode envelope's
 * payload): at most one message (*n = 1); nothing for what pincer does
 * not answer; -1 if malformed. The event id is "<channel>:<ts>", not
 * Slack's event_id: a mention in a DM-like channel may come both as a
 * message and as an app_mention, two events for one message.
 */
static int
slack_callback(struct slack *sl, const json_t *cb, struct chan_msg *m,
    size_t *n, char *why, size_t whysz)
{
	const json_t	*ev = json_object_get(cb, "event"), *prof;
	const char	*chan, *ts, *thr, *name;
	char		 bot[CHAN_ID_MAX];
	bool		 mention;
	int		 w;

	*n = 0;
	if (!json_is_object(ev)) {
		snprintf(why, whysz, "an event_callback without an event");
		return -1;
	}
	bot_user(sl, cb, bot, sizeof(bot));
	if (!wanted(ev, bot, &mention))
		return 0;
	chan = jstr(ev, "channel");
	ts = jstr(ev, "ts");
	thr = jstr(ev, "thread_ts");
	if (chan == NULL || ts == NULL || *chan == '\0' || *ts == '\0') {
		snprintf(why, whysz, "a message without a channel or ts");
		return -1;
	}
	memset(m, 0, sizeof(*m));
	m->direct = !mention || chan[0] == 'D';
	m->mention = mention;
	w = snprintf(m->event_id, sizeof(m->event_id), "%s:%s", chan, ts);
	snprintf(m->sender, sizeof(m->sender), "%s", jstr(ev, "user"));
	snprintf(m->chat, sizeof(m->chat), "%s", chan);
	snprintf(m->ref, sizeof(m->ref), "%s", ts);
	/* A DM is one conversation (its threads apart); a channel's
	 * mention starts or continues a thread, one conversation each. */
	snprintf(m->thread, sizeof(m->thread), "%s", thr != NULL ? thr :
	    m->direct ? "" : ts);
	prof = json_object_get(ev, "user_profile");
	if ((name = jstr(prof, "display_name")) == NULL || *name == '\0')
		name = jstr(prof, "real_name");
	snprintf(m->sender_name, sizeof(m->sender_name), "%s",
	    name != NULL ? name : "");
	if (w < 0 || (size_t)w >= sizeof(m->event_id) ||
	    (m->text = plain_text(jstr(ev, "text") ? jstr(ev, "text") : "",
	    bot, mention)) == NULL) {
		snprintf(why, whysz, "a message's ids are too long");
		return -1;
	}
	m->attachments = files_of(ev);
	*n = 1;
	return 0;
}

/* "&", "<" and ">" as Slack's text wants them (Formatting, escaping):
 * the agent's words never become a <!channel> ping or a link. */
static char *
escape_text(const char *s)
{
	struct buf	 b;

	buf_init(&b, strlen(s) * 5 + 1);
	buf_puts(&b, "");
	for (; *s != '\0'; s++)
		if (*s == '&')
			buf_puts(&b, "&amp;");
		else if (*s == '<')
			buf_puts(&b, "&lt;");
		else if (*s == '>')
			buf_puts(&b, "&gt;");
		else
			buf_append(&b, s, 1);
	return buf_steal(&b);
}

static enum chan_status
slack_send_text(struct channel *ch, const struct chan_out *out,
    const char *text, struct chan_result *res)
{
	enum chan_status	 st;
	json_t			*req, *ans = NULL;
	char			*esc, *body;

	if ((esc = escape_text(text)) == NULL ||
	    (req = json_pack("{s:s, s:s}", "channel", out->chat, "text",
	    esc)) == NULL) {
		free(esc);
		snprintf(res->error, sizeof(res->error), "out of memory");
		return CHAN_RETRY;
	}
	free(esc);
	if (out->thread != NULL && *out->thread != '\0')
		json_object_set_new(req, "thread_ts", json_string(out->thread));
	body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	st = slack_call(ch, "bot_token", "chat.postMessage", JSON_UTF8, body,
	    0, &ans, res);
	free(body);
	if (st == CHAN_SENT)
		snprintf(res->message_id, sizeof(res->message_id), "%s",
		    jstr(ans, "ts") ? jstr(ans, "ts") : "");
	json_decref(ans);
	return st;
}

/* form: adds "&key=value", percent-encoded. */
static int
form_add(struct buf *b, const char *key, const char *val)
{
	if ((b->len > 0 && buf_puts(b, "&") == -1) || buf_puts(b, key) == -1 ||
	    buf_puts(b, "=") == -1)
		return -1;
	return url_encode(b, val, NULL);
}

/* The bytes to the URL files.getUploadURLExternal gave (no token: it is
 * a ticket of its own). */
static enum chan_status
upload_bytes(const char *url, const struct chan_file *f,
    struct chan_result *res)
{
	static const char *const hdrs[] = {
		"Content-Type: application/octet-stream", NULL,
	};
	struct chan_http	 h;
	enum chan_status	 st;

	memset(&h, 0, sizeof(h));
	h.method = "POST";
	h.url = url;
	h.headers = hdrs;
	h.body = f->data;
	h.len = f->len;
	h.timeout_ms = 120000;
	chan_http_do(&h);
	if ((st = chan_http_status(&h, res)) != CHAN_SENT)
		snprintf(res->error, sizeof(res->error), "the file upload: "
		    "%.200s", h.status != 0 ? http_status_text(h.status) :
		    h.error);
	chan_http_free(&h);
	return st;
}

/*
 * Slack's external upload flow (files.getUploadURLExternal): a URL and
 * a file id for the size, the bytes POSTed there, then
 * files.completeUploadExternal shares the file in the chat (in the
 * thread's parent, as its docs ask) with the caption as its comment.
 */
static enum chan_status
slack_send_file(struct channel *ch, const struct chan_out *out,
    const struct chan_file *f, struct chan_result *res)
{
	enum chan_status	 st;
	json_t			*ans = NULL, *files = NULL;
	struct buf		 b;
	char			 len[32], *fj = NULL, *url = NULL;
	char			*id = NULL;

	buf_init(&b, 64 * 1024);
	snprintf(len, sizeof(len), "%zu", f->len);
	if (form_add(&b, "filename", f->name) == -1 ||
	    form_add(&b, "length", len) == -1)
		goto oom;
	st = slack_call(ch, "bot_token", "files.getUploadURLExternal", FORM,
	    b.data, 0, &ans, res);
	if (st != CHAN_SENT)
		goto done;
	if (jstr(ans, "upload_url") == NULL || jstr(ans, "file_id") == NULL) {
		snprintf(res->error, sizeof(res->error), "files."
		    "getUploadURLExternal: no upload_url in the answer");
		st = CHAN_RETRY;
		goto done;
	}
	if ((url = strdup(jstr(ans, "upload_url"))) == NULL ||
	    (id = strdup(jstr(ans, "file_id"))) == NULL)
		goto oom;
	if ((st = upload_bytes(url, f, res)) != CHAN_SENT)
		goto done;
	buf_reset(&b);
	if ((files = json_pack("[{s:s, s:s}]", "id", id, "title",
	    f->name)) == NULL ||
	    (fj = json_dumps(files, JSON_COMPACT)) == NULL ||
	    form_add(&b, "files", fj) == -1 ||
	    form_add(&b, "channel_id", out->chat) == -1 ||
	    (out->thread != NULL && *out->thread != '\0' &&
	    form_add(&b, "thread_ts", out->thread) == -1) ||
	    (f->caption != NULL && *f->caption != '\0' &&
	    form_add(&b, "initial_comment", f->caption) == -1))
		goto oom;
	json_decref(ans);
	ans = NULL;
	st = slack_call(ch, "bot_token", "files.completeUploadExternal", FORM,
	    b.data, 0, &ans, res);
	if (st == CHAN_SENT)
		snprintf(res->message_id, sizeof(res->message_id), "%s", id);
	goto done;
oom:
	snprintf(res->error, sizeof(res->error), "out of memory");
	st = CHAN_RETRY;
done:
	json_decref(ans);
	json_decref(files);
	free(fj);
	free(url);
	free(id);
	buf_free(&b);
	return st;
}

/* An "eyes" reaction on the message being answered, while its turn runs
 * (best effort: already_reacted and no_reaction are fine). */
static void
slack_working(struct channel *ch, const struct chan_out *out, bool on)
{
	struct chan_result	 res;
	json_t			*req, *ans = NULL;
	char			*body;

	if (out->ref == NULL || *out->ref == '\0' || out->chat == NULL)
		return;
	req = json_pack("{s:s, s:s, s:s}", "channel", out->chat, "name",
	    "eyes", "timestamp", out->ref);
	body = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (body == NULL)
		return;
	memset(&res, 0, sizeof(res));
	if (slack_call(ch, "bot_token", on ? "reactions.add" :
	    "reactions.remove", JSON_UTF8, body, WORKING_TIMEOUT_MS, &ans,
	    &res) != CHAN_SENT)
		log_debug("slack reaction not set", "channel=%s %s",
		    channel_name(ch), res.error);
	json_decref(ans);
	free(body);
}

/* scheme://host[:port] of a URL, its length (0: none). */
static size_t
origin_len(const char *url)
{
	const char	*p = strstr(url, "://");

	if (p == NULL)
		return 0;
	p += 3;
	return (size_t)(p - url) + strcspn(p, "/?#");
}

/*
 * The bot token goes only to Slack: url_private on a slack.com host over
 * https, or the configured API's own origin (a test's fake).
 */
static bool
token_may_go(struct channel *ch, const char *url)
{
	const char	*base = channel_base_url(ch), *h;
	size_t		 n = origin_len(url), hl;

	if (n == 0)
		return false;
	if (base != NULL && origin_len(base) == n &&
	    strncmp(base, url, n) == 0)
		return true;
	if (strncmp(url, "https://", 8) != 0)
		return false;
	h = url + 8;
	hl = n - 8;
	if (memchr(h, '@', hl) != NULL || memchr(h, ':', hl) != NULL)
		return false;
	return (hl == 9 && strncmp(h, "slack.com", 9) == 0) ||
	    (hl > 10 && strncmp(h + hl - 10, ".slack.com", 10) == 0);
}

static int
slack_fetch(struct channel *ch, const json_t *att, struct buf *out,
    char *why, size_t whysz)
{
	const char		*url = jstr(att, "url");
	const char		*tok = channel_secret(ch, "bot_token");
	const char		*hdrs[2] = { NULL, NULL };
	struct chan_http	 h;
	char			 auth[512];
	int			 rc = -1;

	if (url == NULL || !token_may_go(ch, url)) {
		snprintf(why, whysz, "not a Slack file URL");
		return -1;
	}
	if (tok == NULL || (size_t)snprintf(auth, sizeof(auth),
	    "Authorization: Bearer %s", tok) >= sizeof(auth)) {
		snprintf(why, whysz, "the bot token is not set");
		return -1;
	}
	hdrs[0] = auth;
	memset(&h, 0, sizeof(h));
	h.method = "GET";
	h.url = url;
	h.headers = hdrs;
	h.timeout_ms = 120000;
	if (chan_http_do(&h) == -1 || h.status != 200)
		snprintf(why, whysz, "the file download: %s", h.status != 0 ?
		    http_status_text(h.status) : h.error);
	else if (buf_append(out, h.answer.data, h.answer.len) == -1)
		snprintf(why, whysz, "the file is too large");
	else
		rc = 0;
	explicit_bzero(auth, sizeof(auth));
	chan_http_free(&h);
	return rc;
}

/* The Web API's answer as a status (Web API docs, "Evaluating responses":
 * most errors are HTTP 200 with "ok": false and an error code). */
static enum chan_status
api_status(const struct chan_http *h, const char *method, json_t *ans,
    struct chan_result *res)
{
	const char	*err = jstr(ans, "error");
	enum chan_status st;
	size_t		 i;

	if (h->status != 200) {
		st = chan_http_status(h, res);
		snprintf(res->error, sizeof(res->error), "%s: HTTP %d%s%s",
		    method, h->status, err != NULL ? " " : "",
		    err != NULL ? err : "");
		if (h->status == 0)
			snprintf(res->error, sizeof(res->error), "%s: %.200s",
			    method, h->error);
		return st;
	}
	if (ans == NULL) {
		snprintf(res->error, sizeof(res->error), "%s: the answer is "
		    "not JSON", method);
		return CHAN_RETRY;
	}
	if (json_is_true(json_object_get(ans, "ok")))
		return CHAN_SENT;
	snprintf(res->error, sizeof(res->error), "%s: %s", method,
	    err != NULL ? err : "not ok");
	for (i = 0; err != NULL && transient[i] != NULL; i++)
		if (strcmp(err, transient[i]) == 0) {
			res->retry_after_ms = h->retry_after_ms > 0 ?
			    h->retry_after_ms : BACKOFF_MIN_MS;
			return CHAN_RETRY;
		}
	return CHAN_FAILED;
}

/*
 * A Web API method with the token named by key (bot_token, app_token),
 * as a Bearer header. CHAN_SENT with the answer in *ans (caller frees),
 * else how it failed in res.
 */
static enum chan_status
slack_call(struct channel *ch, const char *key, const char *method,
    const char *ctype, const char *body, long timeout_ms, json_t **ans,
    struct chan_result *res)
{
	const char		*base = channel_base_url(ch);
	const char		*tok = channel_secret(ch, key);
	const char		*hdrs[3];
	struct chan_http	 h;
	enum chan_status	 st;
	char			 url[1024], auth[512], ct[64];

	*ans = NULL;
	res->retry_after_ms = 0;
	if (tok == NULL) {
		snprintf(res->error, sizeof(res->error), "%s: the secret "
		    "named by %s is not set", method, key);
		return CHAN_RETRY;
	}
	if ((size_t)snprintf(url, sizeof(url), "%s/%s", base != NULL ? base :
	    SLACK_API, method) >= sizeof(url) ||
	    (size_t)snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
	    tok) >= sizeof(auth)) {
		snprintf(res->error, sizeof(res->error), "%s: the API URL or "
		    "the token is too long", method);
		return CHAN_FAILED;
	}
	snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
	hdrs[0] = auth;
	hdrs[1] = ct;
	hdrs[2] = NULL;
	memset(&h, 0, sizeof(h));
	h.method = "POST";
	h.url = url;
	h.headers = hdrs;
	h.body = body;
	h.len = strlen(body);
	h.timeout_ms = timeout_ms;
	chan_http_do(&h);
	explicit_bzero(auth, sizeof(auth));
	*ans = h.status != 0 ? chan_http_json(&h) : NULL;
	st = api_status(&h, method, *ans, res);
	chan_http_free(&h);
	if (st != CHAN_SENT) {
		json_decref(*ans);
		*ans = NULL;
	}
	return st;
}

/* --- our thread: auth.test and apps.connections.open ---------------- */

static long
jitter(long ms)
{
	return ms / 2 + random() % (ms / 2 + 1);
}

static long
next_backoff(long ms)
{
	return ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ms * 2;
}

/* Socket Mode: a new connection wanted after delay_ms (lock held). */
static void
want_connection(struct slack *sl, long delay_ms)
{
	sl->want_conn = true;
	sl->conn_at = now_ms() + (uint64_t)delay_ms;
	pthread_cond_broadcast(&sl->cond);
}

/* Who the bot is, so its own messages are not answered (lock free). */
static void
auth_test(struct channel *ch, struct slack *sl)
{
	struct chan_result	 res;
	enum chan_status	 st;
	json_t			*ans = NULL;
	const char		*u;

	memset(&res, 0, sizeof(res));
	st = slack_call(ch, "bot_token", "auth.test", FORM, "",
	    OWN_TIMEOUT_MS, &ans, &res);
	u = jstr(ans, "user_id");
	pthread_mutex_lock(&sl->lock);
	if (st == CHAN_SENT && u != NULL) {
		snprintf(sl->bot_user, sizeof(sl->bot_user), "%s", u);
		sl->need_auth = false;
	} else if (st == CHAN_FAILED) {
		sl->need_auth = false;
	} else {
		sl->auth_at = now_ms() + (uint64_t)jitter(sl->auth_backoff);
		sl->auth_backoff = next_backoff(sl->auth_backoff);
	}
	pthread_mutex_unlock(&sl->lock);
	if (st == CHAN_SENT)
		log_info("slack bot signed in", "channel=%s team=%s user=%s",
		    channel_name(ch), jstr(ans, "team") ? jstr(ans, "team") :
		    "", u != NULL ? u : "");
	else
		log_warn("slack auth.test failed", "channel=%s %s",
		    channel_name(ch), res.error);
	if (st != CHAN_SENT)
		health(ch, "auth.test failed (the bot token is checked with "
		    "it)", res.error);
	json_decref(ans);
}

/*
 * Socket Mode (Slack's "Using Socket Mode"): apps.connections.open with
 * the app token gives a single-use wss:// URL; ws.c's thread opens it.
 */
static void
open_connection(struct channel *ch, struct slack *sl)
{
	struct chan_result	 res;
	json_t			*ans = NULL;
	const char		*url;
	char			*dup = NULL;
	bool			 post = false;

	memset(&res, 0, sizeof(res));
	if (slack_call(ch, "app_token", "apps.connections.open", FORM, "",
	    OWN_TIMEOUT_MS, &ans, &res) == CHAN_SENT &&
	    (url = jstr(ans, "url")) != NULL)
		dup = strdup(url);
	json_decref(ans);
	pthread_mutex_lock(&sl->lock);
	if (dup != NULL && !sl->stopping) {
		free(sl->url);
		sl->url = dup;
		sl->job_queued = post = true;
		dup = NULL;
	} else if (!sl->stopping) {
		want_connection(sl, jitter(sl->backoff));
		sl->backoff = next_backoff(sl->backoff);
	}
	pthread_mutex_unlock(&sl->lock);
	free(dup);
	if (post) {
		sl->job.fn = slack_connect_job;
		sl->job.arg = ch;
		ws_post(&sl->job);
	} else if (res.error[0] != '\0') {
		log_warn("slack socket not opened", "channel=%s %s",
		    channel_name(ch), res.error);
		health(ch, "apps.connections.open failed (Socket Mode, the "
		    "app token)", res.error);
	}
}

/* For the channel's status: Socket Mode is down, or events failed. */
static void
health(struct channel *ch, const char *what, const char *why)
{
	struct slack	*sl = channel_data(ch);
	char		 text[400];

	snprintf(text, sizeof(text), "%s: %s", what, why);
	channel_health(ch, sl->socket ? CHAN_DOWN : CHAN_FAILURE, text);
}

/* Waits for the earlier of the times in its arguments (lock held). */
static void
wait_until(struct slack *sl, bool any, uint64_t at)
{
	struct timespec	 ts;
	uint64_t	 now = now_ms();

	if (!any) {
		pthread_cond_wait(&sl->cond, &sl->lock);
		return;
	}
	if (at <= now)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)((at - now) / 1000);
	ts.tv_nsec += (long)((at - now) % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&sl->cond, &sl->lock, &ts);
}

static void *
slack_thread(void *arg)
{
	struct channel	*ch = arg;
	struct slack	*sl = channel_data(ch);
	uint64_t	 at;
	bool		 any, conn;

	pthread_mutex_lock(&sl->lock);
	/* Webhooks need the thread only until auth.test has answered. */
	while (!sl->stopping && (sl->socket || sl->need_auth)) {
		conn = sl->want_conn && !sl->job_queued;
		if (sl->need_auth && now_ms() >= sl->auth_at) {
			pthread_mutex_unlock(&sl->lock);
			auth_test(ch, sl);
			pthread_mutex_lock(&sl->lock);
			continue;
		}
		if (conn && now_ms() >= sl->conn_at) {
			sl->want_conn = false;
			pthread_mutex_unlock(&sl->lock);
			open_connection(ch, sl);
			pthread_mutex_lock(&sl->lock);
			continue;
		}
		any = sl->need_auth || conn;
		at = UINT64_MAX;
		if (sl->need_auth)
			at = sl->auth_at;
		if (conn && sl->conn_at < at)
			at = sl->conn_at;
		wait_until(sl, any, at);
	}
	pthread_mutex_unlock(&sl->lock);
	return NULL;
}

/* --- ws.c's thread: the Socket Mode connection ---------------------- */

static void
slack_connect_job(void *arg)
{
	struct channel		*ch = arg;
	struct slack		*sl = channel_data(ch);
	struct slack_conn	*c = NULL;
	struct ws_session	*s = NULL, *older = NULL;
	char			*url;
	bool			 stopping;

	pthread_mutex_lock(&sl->lock);
	url = sl->url;
	sl->url = NULL;
	stopping = sl->stopping;
	pthread_mutex_unlock(&sl->lock);
	if (!stopping && url != NULL && (c = calloc(1, sizeof(*c))) != NULL) {
		c->ch = ch;
		c->sl = sl;
		if ((s = ws_connect_url(url, &sock_ops, c)) == NULL)
			free(c);
	}
	pthread_mutex_lock(&sl->lock);
	if (s != NULL) {
		/* The one it replaces is closed once this one says hello. */
		if (sl->cur != NULL) {
			older = sl->old;
			sl->old = sl->cur;
		}
		sl->cur = s;
		sl->sessions++;
		/* stop() came meanwhile and found nothing to close. */
		stopping = sl->stopping;
	} else if (!stopping) {
		want_connection(sl, jitter(sl->backoff));
		sl->backoff = next_backoff(sl->backoff);
	}
	sl->job_queued = false;
	pthread_cond_broadcast(&sl->cond);
	pthread_mutex_unlock(&sl->lock);
	if (url != NULL)
		explicit_bzero(url, strlen(url));	/* a ticket */
	free(url);
	if (s == NULL && !stopping) {
		log_warn("slack socket not connected", "channel=%s",
		    channel_name(ch));
		health(ch, "the Socket Mode connection failed", "trying "
		    "again");
	}
	if (older != NULL)
		ws_close(older, 1000, "replaced");
	if (s != NULL && stopping)
		ws_close(s, 1001, "pincerd stops");
}

static void
slack_close_job(void *arg)
{
	struct slack		*sl = arg;
	struct ws_session	*cur, *old;

	pthread_mutex_lock(&sl->lock);
	cur = sl->cur;
	old = sl->old;
	sl->stop_queued = false;
	pthread_cond_broadcast(&sl->cond);
	pthread_mutex_unlock(&sl->lock);
	if (cur != NULL)
		ws_close(cur, 1001, "pincerd stops");
	if (old != NULL)
		ws_close(old, 1001, "pincerd stops");
}

static int
sock_open(struct ws_session *s)
{
	struct slack_conn	*c = ws_user(s);

	log_debug("slack socket open", "channel=%s", channel_name(c->ch));
	return 0;
}

static void
sock_ack(struct ws_session *s, const char *envelope_id)
{
	json_t	*ack = json_pack("{s:s}", "envelope_id", envelope_id);
	char	*txt = ack != NULL ? json_dumps(ack, JSON_COMPACT) : NULL;

	if (txt != NULL)
		ws_send(s, txt, strlen(txt), false);
	free(txt);
	json_decref(ack);
}

/*
 * An events_api envelope: its payload is an event_callback. Slack sends
 * an envelope again until it is acknowledged, so the ack waits until
 * the message is in the inbox. What pincer ignores or cannot read is
 * acknowledged too (it would only come back).
 */
static void
sock_event(struct slack_conn *c, struct ws_session *s, const json_t *env)
{
	const char	*id = jstr(env, "envelope_id");
	struct chan_msg	 m;
	char		 why[256];
	size_t		 n = 0;
	int		 rc;

	if (id == NULL)
		return;
	memset(&m, 0, sizeof(m));
	rc = slack_callback(c->sl, json_object_get(env, "payload"), &m, &n,
	    why, sizeof(why));
	if (rc == -1)
		log_warn("slack event unreadable", "channel=%s %s",
		    channel_name(c->ch), why);
	if (n == 0 || channel_ingest(c->ch, &m, n) == 0)
		sock_ack(s, id);
	else
		log_warn("slack event not stored: not acknowledged",
		    "channel=%s", channel_name(c->ch));
	if (n > 0)
		chan_msg_clear(&m);
}

/* A good hello: the backoff starts over; the connection it replaces
 * goes now. */
static void
sock_hello(struct slack_conn *c, struct ws_session *s)
{
	struct slack		*sl = c->sl;
	struct ws_session	*old = NULL;

	pthread_mutex_lock(&sl->lock);
	if (sl->cur == s) {
		sl->backoff = BACKOFF_MIN_MS;
		old = sl->old;
		sl->old = NULL;
	}
	pthread_mutex_unlock(&sl->lock);
	log_info("slack socket connected", "channel=%s",
	    channel_name(c->ch));
	channel_health(c->ch, CHAN_UP, NULL);
	if (old != NULL)
		ws_close(old, 1000, "replaced");
}

static void
sock_message(struct ws_session *s, const void *p, size_t len, bool binary)
{
	struct slack_conn	*c = ws_user(s);
	struct slack		*sl = c->sl;
	json_t			*env;
	json_error_t		 je;
	const char		*type, *reason;

	if (binary || (env = json_loadb(p, len, 0, &je)) == NULL)
		return;
	type = jstr(env, "type");
	if (type == NULL)
		;
	else if (strcmp(type, "hello") == 0)
		sock_hello(c, s);
	else if (strcmp(type, "events_api") == 0)
		sock_event(c, s, env);
	else if (strcmp(type, "disconnect") == 0) {
		/* refresh_requested, warning (it goes in ~10 s) or
		 * link_disabled: open a new one, close this after. */
		reason = jstr(env, "reason");
		log_info("slack socket to be replaced", "channel=%s reason=%s",
		    channel_name(c->ch), reason != NULL ? reason : "");
		pthread_mutex_lock(&sl->lock);
		if (!c->replacing && sl->cur == s && !sl->stopping)
			want_connection(sl, 0);
		c->replacing = true;
		pthread_mutex_unlock(&sl->lock);
	} else if (jstr(env, "envelope_id") != NULL)
		/* slash_commands, interactive: not pincer's; Slack would
		 * send them again until acknowledged. */
		sock_ack(s, jstr(env, "envelope_id"));
	json_decref(env);
}

static void
sock_close(struct ws_session *s, int code, const char *reason)
{
	struct slack_conn	*c = ws_user(s);
	struct slack		*sl = c->sl;
	bool			 again = false;

	pthread_mutex_lock(&sl->lock);
	sl->sessions--;
	if (sl->old == s)
		sl->old = NULL;
	else if (sl->cur == s) {
		sl->cur = NULL;
		/* A replacement asked for is on its way already. */
		if (!c->replacing && !sl->stopping) {
			want_connection(sl, jitter(sl->backoff));
			sl->backoff = next_backoff(sl->backoff);
			again = true;
		}
	}
	pthread_cond_broadcast(&sl->cond);
	pthread_mutex_unlock(&sl->lock);
	log_info("slack socket closed", "channel=%s code=%d reason=%s%s",
	    channel_name(c->ch), code, reason != NULL ? reason : "",
	    again ? " reconnect=yes" : "");
	if (again)
		channel_health(c->ch, CHAN_CONNECTING, NULL);
	free(c);
}
