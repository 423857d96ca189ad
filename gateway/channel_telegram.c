/* SPDX-License-Identifier: MIT */
/*
 * channel_telegram.c: the Telegram Bot API channel (core.telegram.org/
 * bots/api). Updates come in by webhook (the secret token header checked)
 * or by long polling with getUpdates on one thread of ours, its offset
 * kept durable; replies go out with sendMessage in HTML parse mode,
 * files with sendPhoto / sendDocument, and "typing" is shown with
 * sendChatAction while a turn runs. The bot token is in every method's
 * URL path, so no URL is ever logged or put in an error.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "pincer.h"

#define TG_API		"https://api.telegram.org"
#define TG_MAX_TEXT	4096		/* sendMessage, after entity parsing */
#define TG_MAX_CAPTION	1024
#define TG_POLL_S	25		/* getUpdates' long-poll timeout */
#define TG_ANSWER_MAX	(16L << 20)
#define TG_PHOTO_MAX	(10L << 20)	/* sendPhoto's limit */
#define TG_FETCH_MAX	(20L << 20)	/* getFile's download limit */
#define TG_URL_MAX	2048
#define BACKOFF_MIN_MS	1000L
#define BACKOFF_MAX_MS	30000L

struct tg {
	bool		 polling;	/* mode "polling": no webhook */
	char		 conf_user[64];	/* bot_username of the config */
	pthread_t	 thread;
	bool		 started;
	CURLM		*multi;		/* the thread's; stop wakes it */
	long long	 offset;	/* the thread's: next update_id */
	bool		 conflict;	/* the thread's: 409 logged */
	pthread_mutex_t	 lock;
	pthread_cond_t	 wake;
	bool		 stop;		/* lock */
	long long	 bot_id;	/* lock; 0: getMe not answered */
	char		 username[64];	/* lock; without '@'; "" unknown */
	/* lock: a text part cut short: its outbox id, part, bytes sent. */
	long long	 resume_id;
	int		 resume_part;
	size_t		 resume_at;
};

/* A file kind of a message: its key, and a name and type if it has none. */
struct tg_filekind {
	const char	*key;
	const char	*name;
	const char	*mime;
};

static int	tg_init(struct channel *, const json_t *, char *, size_t);
static void	tg_free(struct channel *);
static int	tg_start(struct channel *);
static void	tg_stop(struct channel *);
static int	tg_verify(struct channel *, struct http_req *, char *,
		    size_t);
static int	tg_parse(struct channel *, struct http_req *,
		    struct chan_batch *, char *, size_t);
static enum chan_status tg_send_text(struct channel *,
		    const struct chan_out *, const char *,
		    struct chan_result *);
static enum chan_status tg_update(struct channel *,
		    const struct chan_out *, const char *, const char *,
		    struct chan_result *);
static enum chan_status tg_send_file(struct channel *,
		    const struct chan_out *, const struct chan_file *,
		    struct chan_result *);
static void	tg_working(struct channel *, const struct chan_out *, bool);
static int	tg_fetch(struct channel *, const json_t *, struct buf *,
		    char *, size_t);

static int	update_to_msg(struct channel *, json_t *, struct chan_msg *);
static void	msg_people(const json_t *, struct chan_msg *);
static json_t	*msg_files(const json_t *);
static bool	msg_mentions(struct tg *, const json_t *, const char *,
		    const json_t *);
static bool	entity_names_bot(const json_t *, const char *, const char *,
		    long long);
static char	*strip_mention(const char *, const char *);
static void	me_get(struct tg *, long long *, char *, size_t);
static int	me_fetch(struct channel *);
static void	health(struct channel *, const char *, const char *);
static void	*poll_main(void *);
static int	poll_once(struct channel *);
static int	poll_ingest(struct channel *, json_t *);
static void	poll_conflict(struct channel *, const char *);
static int	poll_get(struct tg *, const char *, long, struct chan_http *);
static bool	stopping(struct tg *);
static void	nap(struct tg *, long);
static int	api_url(struct channel *, const char *, const char *,
		    char *, size_t, char *, size_t);
static enum chan_status api_json(struct channel *, const char *, json_t *,
		    long, struct chan_result *, json_t **);
static enum chan_status api_parts(struct channel *, const char *,
		    const struct chan_part *, size_t, struct chan_result *,
		    json_t **);
static enum chan_status api_status(const struct chan_http *,
		    struct chan_result *, json_t **);
static enum chan_status send_piece(struct channel *,
		    const struct chan_out *, const char *, size_t, bool,
		    struct chan_result *);
static size_t	text_piece(const char *);
static enum chan_status send_upload(struct channel *,
		    const struct chan_out *, const struct chan_file *, bool,
		    struct chan_result *);
static json_t	*out_target(const struct chan_out *);
static bool	out_group(const struct chan_out *);
static json_t	*chat_id_json(const char *);
static char	*html_escape(const char *, size_t);
static size_t	u16_prefix(const char *, size_t);
static const char *u16_at(const char *, long long);
static void	message_id(json_t *, struct chan_result *);
static bool	is_photo(const struct chan_file *);
static bool	word_char(char);
static size_t	on_write(char *, size_t, size_t, void *);
static const char *jstr(const json_t *, const char *);
static long long jint(const json_t *, const char *);

static const struct tg_filekind tg_filekinds[] = {
	{ "document",	"file",		"application/octet-stream" },
	{ "audio",	"audio.mp3",	"audio/mpeg" },
	{ "voice",	"voice.ogg",	"audio/ogg" },
	{ "video",	"video.mp4",	"video/mp4" },
	/* An animation (GIF) comes with a "document" too: that one is it. */
};

const struct channel_ops channel_telegram_ops = {
	.kind = "telegram",
	.max_text = TG_MAX_TEXT,
	.init = tg_init,
	.free = tg_free,
	.start = tg_start,
	.stop = tg_stop,
	.verify = tg_verify,
	.parse = tg_parse,
	.send_text = tg_send_text,
	.send_file = tg_send_file,
	.working = tg_working,
	/* Telegram shows "typing" for 5 s, or until the bot's next message. */
	.working_every_ms = 4000,
	.fetch = tg_fetch,
	.update = tg_update,
};

/* Config keys: bot_token, webhook_secret, mode, bot_username. */
static int
tg_init(struct channel *ch, const json_t *conf, char *err, size_t errsz)
{
	struct tg	*t;
	const char	*mode = jstr(conf, "mode"), *user;
	bool		 polling;

	if (jstr(conf, "bot_token") == NULL || *jstr(conf, "bot_token") == 0) {
		snprintf(err, errsz, "telegram: \"bot_token\" must name the "
		    "secret that holds the bot's token (pincer secret set)");
		return -1;
	}
	if (mode != NULL && strcmp(mode, "webhook") != 0 &&
	    strcmp(mode, "polling") != 0) {
		snprintf(err, errsz, "telegram: \"mode\" is \"webhook\" or "
		    "\"polling\"");
		return -1;
	}
	polling = mode != NULL && strcmp(mode, "polling") == 0;
	if (!polling && (jstr(conf, "webhook_secret") == NULL ||
	    *jstr(conf, "webhook_secret") == 0)) {
		snprintf(err, errsz, "telegram: \"webhook_secret\" must name "
		    "the secret given to setWebhook as secret_token (or set "
		    "\"mode\": \"polling\")");
		return -1;
	}
	user = jstr(conf, "bot_username");
	if (user != NULL && *user == '@')
		user++;
	if (user != NULL && (strlen(user) == 0 || strlen(user) > 32 ||
	    strspn(user, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789_") != strlen(user))) {
		snprintf(err, errsz, "telegram: \"bot_username\" is the bot's "
		    "@username (letters, digits, _)");
		return -1;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		snprintf(err, errsz, "telegram: out of memory");
		return -1;
	}
	t->polling = polling;
	snprintf(t->conf_user, sizeof(t->conf_user), "%s",
	    user != NULL ? user : "");
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->wake, NULL);
	channel_set_data(ch, t);
	return 0;
}

static void
tg_free(struct channel *ch)
{
	struct tg	*t = channel_data(ch);

	if (t == NULL)
		return;
	tg_stop(ch);
	pthread_cond_destroy(&t->wake);
	pthread_mutex_destroy(&t->lock);
	free(t);
	channel_set_data(ch, NULL);
}

/*
 * One thread per channel: it asks getMe who the bot is (for mentions in
 * groups; again with backoff while the API is down) and, in polling
 * mode, then runs getUpdates. The webhook needs no thread of its own.
 */
static int
tg_start(struct channel *ch)
{
	struct tg	*t = channel_data(ch);

	if (t == NULL || t->started)
		return 0;
	if ((t->multi = curl_multi_init()) == NULL)
		return -1;
	t->stop = false;
	if (pthread_create(&t->thread, NULL, poll_main, ch) != 0) {
		curl_multi_cleanup(t->multi);
		t->multi = NULL;
		return -1;
	}
	t->started = true;
	return 0;
}

/* A long poll in progress is cut at once: curl_multi_wakeup. */
static void
tg_stop(struct channel *ch)
{
	struct tg	*t = channel_data(ch);

	if (t == NULL || !t->started)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	curl_multi_wakeup(t->multi);
	pthread_cond_broadcast(&t->wake);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	curl_multi_cleanup(t->multi);
	t->multi = NULL;
	t->started = false;
}

/*
 * Telegram does not sign its webhook: setWebhook's secret_token comes
 * back in X-Telegram-Bot-Api-Secret-Token on every update (Bot API,
 * setWebhook), so that header, compared in constant time, is what tells
 * Telegram from anyone who found the URL. No secret configured: refused.
 */
static int
tg_verify(struct channel *ch, struct http_req *req, char *why, size_t whysz)
{
	struct tg	*t = channel_data(ch);
	const char	*want, *got;

	if (t->polling) {
		snprintf(why, whysz, "this Telegram channel uses long polling "
		    "(mode polling): its webhook is off");
		return -1;
	}
	want = channel_secret(ch, "webhook_secret");
	got = http_req_header(req, "X-Telegram-Bot-Api-Secret-Token");
	if (want == NULL || *want == '\0') {
		snprintf(why, whysz, "the secret named by webhook_secret is "
		    "not set");
		return -1;
	}
	if (got == NULL || !chan_hex_equal(got, want)) {
		snprintf(why, whysz, "X-Telegram-Bot-Api-Secret-Token is "
		    "missing or wrong");
		return -1;
	}
	return 0;
}

/* A webhook request carries one Update (Bot API, Update). */
static int
tg_parse(struct channel *ch, struct http_req *req, struct chan_batch *b,
    char *why, size_t whysz)
{
	json_t		*upd;
	const char	*body;
	size_t		 len;
	json_error_t	 jerr;
	int		 rc;

	if (strcmp(http_req_method(req), "POST") != 0) {
		snprintf(why, whysz, "Telegram POSTs its updates");
		return -1;
	}
	http_req_body(req, &body, &len);
	if ((upd = json_loadb(body, len, 0, &jerr)) == NULL) {
		snprintf(why, whysz, "the update is not JSON: %s", jerr.text);
		return -1;
	}
	rc = update_to_msg(ch, upd, &b->msgs[b->n]);
	json_decref(upd);
	if (rc == -1) {
		snprintf(why, whysz, "not a Telegram update (no update_id)");
		return -1;
	}
	b->n += rc;
	return 0;
}

/*
 * Telegram's 4096 counts UTF-16 code units, channel.c's parts count
 * characters: a part with characters beyond the BMP (an emoji counts
 * two) may be longer, and goes as two messages. A retry resumes after
 * the pieces already sent (one delivery thread per channel: one part
 * to remember).
 */
static enum chan_status
tg_send_text(struct channel *ch, const struct chan_out *out,
    const char *text, struct chan_result *res)
{
	struct tg		*t = channel_data(ch);
	size_t			 at = 0, len = strlen(text), n;
	size_t			 lead = strspn(text, " \t\r\n");
	enum chan_status	 st = CHAN_SENT;

	pthread_mutex_lock(&t->lock);
	if (t->resume_id == out->outbox_id && t->resume_part == out->part)
		at = t->resume_at;
	pthread_mutex_unlock(&t->lock);
	while (st == CHAN_SENT && at < len) {
		at += strspn(text + at, " \t\r\n");
		if (at == len)
			break;	/* Telegram refuses an empty text */
		n = text_piece(text + at);
		st = send_piece(ch, out, text + at, n, at == lead, res);
		if (st == CHAN_SENT)
			at += n;
	}
	pthread_mutex_lock(&t->lock);
	t->resume_id = st == CHAN_RETRY ? out->outbox_id : 0;
	t->resume_part = out->part;
	t->resume_at = at;
	pthread_mutex_unlock(&t->lock);
	return st;
}

/*
 * A picture Telegram can show (JPEG, PNG, WebP up to 10 MB) as a photo;
 * any other file, or a picture sendPhoto refuses as such
 * (PHOTO_INVALID_DIMENSIONS, IMAGE_PROCESS_FAILED …), as a document.
 */
static enum chan_status
tg_send_file(struct channel *ch, const struct chan_out *out,
    const struct chan_file *f, struct chan_result *res)
{
	enum chan_status	 st;

	if (!is_photo(f))
		return send_upload(ch, out, f, false, res);
	st = send_upload(ch, out, f, true, res);
	if (st != CHAN_FAILED || (strstr(res->error, "PHOTO") == NULL &&
	    strstr(res->error, "IMAGE") == NULL))
		return st;
	log_info("telegram: sendPhoto refused the picture; sending it as a "
	    "document", "channel=%s error=\"%s\"", channel_name(ch),
	    res->error);
	res->error[0] = '\0';
	return send_upload(ch, out, f, false, res);
}

static void
tg_working(struct channel *ch, const struct chan_out *out, bool on)
{
	struct chan_result	 res;
	json_t			*req;

	if (!on || (req = out_target(out)) == NULL)
		return;	/* "typing" ends by itself, or with the reply */
	json_object_set_new(req, "action", json_string("typing"));
	memset(&res, 0, sizeof(res));
	api_json(ch, "sendChatAction", req, 5000, &res, NULL);
	json_decref(req);
}

/* getFile, then GET {api}/file/bot<token>/<file_path> (Bot API, getFile). */
static int
tg_fetch(struct channel *ch, const json_t *att, struct buf *out, char *why,
    size_t whysz)
{
	struct chan_http	 h;
	struct chan_result	 res;
	json_t			*req, *file = NULL;
	char			 url[TG_URL_MAX];
	const char		*path;
	int			 rc = -1;

	memset(&h, 0, sizeof(h));
	memset(&res, 0, sizeof(res));
	if (jstr(att, "id") == NULL) {
		snprintf(why, whysz, "the attachment has no Telegram file id");
		return -1;
	}
	req = json_pack("{s:s}", "file_id", jstr(att, "id"));
	if (api_json(ch, "getFile", req, 0, &res, &file) != CHAN_SENT) {
		snprintf(why, whysz, "getFile: %s", res.error);
		goto done;
	}
	if (jint(file, "file_size") > TG_FETCH_MAX ||
	    (path = jstr(file, "file_path")) == NULL) {
		snprintf(why, whysz, "Telegram lets bots download files of up "
		    "to 20 MB only");
		goto done;
	}
	if (api_url(ch, "file/bot", path, url, sizeof(url), why, whysz) == -1)
		goto done;
	h.url = url;
	h.timeout_ms = 120000;
	if (chan_http_do(&h) == -1 || h.status != 200) {
		if (h.status != 0)
			snprintf(why, whysz, "the file download failed: "
			    "HTTP %d", h.status);
		else
			snprintf(why, whysz, "the file download failed: %s",
			    h.error);
		goto done;
	}
	if (buf_append(out, h.answer.data, h.answer.len) == -1) {
		snprintf(why, whysz, "the file is too large");
		goto done;
	}
	rc = 0;
done:
	explicit_bzero(url, sizeof(url));
	chan_http_free(&h);
	json_decref(req);
	json_decref(file);
	return rc;
}

/*
 * An Update to a message: 1 a message, 0 nothing for us (edits, channel
 * posts, service messages, other bots), -1 not an update at all.
 */
static int
update_to_msg(struct channel *ch, json_t *upd, struct chan_msg *msg)
{
	struct tg	*t = channel_data(ch);
	json_t		*m, *chat, *ents;
	const char	*text, *type;
	char		 user[64];
	long long	 id;

	if (!json_is_object(upd) || !json_is_integer(json_object_get(upd,
	    "update_id")))
		return -1;
	m = json_object_get(upd, "message");
	chat = json_object_get(m, "chat");
	if (!json_is_object(m) || (type = jstr(chat, "type")) == NULL ||
	    strcmp(type, "channel") == 0 ||
	    json_is_true(json_object_get(json_object_get(m, "from"),
	    "is_bot")))
		return 0;
	if ((text = jstr(m, "text")) != NULL)
		ents = json_object_get(m, "entities");
	else {
		text = jstr(m, "caption");
		ents = json_object_get(m, "caption_entities");
	}
	memset(msg, 0, sizeof(*msg));
	msg->attachments = msg_files(m);
	if ((text == NULL || *text == '\0') && msg->attachments == NULL)
		return 0;
	snprintf(msg->event_id, sizeof(msg->event_id), "%lld",
	    jint(upd, "update_id"));
	msg_people(m, msg);
	msg->direct = strcmp(type, "private") == 0;
	me_get(t, &id, user, sizeof(user));
	msg->mention = !msg->direct && msg_mentions(t, m, text, ents);
	msg->text = strip_mention(text != NULL ? text : "", user);
	if (msg->text == NULL) {
		chan_msg_clear(msg);
		return 0;
	}
	return 1;
}

/* Who wrote, where: chat, forum topic, the message's own id. */
static void
msg_people(const json_t *m, struct chan_msg *msg)
{
	const json_t	*from = json_object_get(m, "from");
	const json_t	*chat = json_object_get(m, "chat");
	const char	*first = jstr(from, "first_name");
	const char	*last = jstr(from, "last_name");

	snprintf(msg->sender, sizeof(msg->sender), "%lld", jint(from, "id"));
	if (first != NULL)
		snprintf(msg->sender_name, sizeof(msg->sender_name), "%s%s%s",
		    first, last != NULL ? " " : "", last != NULL ? last : "");
	else if (jstr(from, "username") != NULL)
		snprintf(msg->sender_name, sizeof(msg->sender_name), "@%s",
		    jstr(from, "username"));
	snprintf(msg->chat, sizeof(msg->chat), "%lld", jint(chat, "id"));
	/* A forum's topics are threads; elsewhere message_thread_id only
	 * names a reply chain, and replies stay in the chat. */
	if (json_is_true(json_object_get(chat, "is_forum")) &&
	    jint(m, "message_thread_id") != 0)
		snprintf(msg->thread, sizeof(msg->thread), "%lld",
		    jint(m, "message_thread_id"));
	snprintf(msg->ref, sizeof(msg->ref), "%lld", jint(m, "message_id"));
}

/* [{id: file_id, name, mime, size}]; a photo in its largest size. */
static json_t *
msg_files(const json_t *m)
{
	const json_t	*photo = json_object_get(m, "photo"), *f;
	json_t		*out = json_array();
	size_t		 i;

	f = json_array_get(photo, json_array_size(photo) - 1);
	if (jstr(f, "file_id") != NULL)
		json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:I}",
		    "id", jstr(f, "file_id"), "name", "photo.jpg", "mime",
		    "image/jpeg", "size", (json_int_t)jint(f, "file_size")));
	for (i = 0; i < sizeof(tg_filekinds) / sizeof(tg_filekinds[0]); i++) {
		const struct tg_filekind *k = &tg_filekinds[i];

		f = json_object_get(m, k->key);
		if (jstr(f, "file_id") == NULL)
			continue;
		json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:I}",
		    "id", jstr(f, "file_id"), "name", jstr(f, "file_name") ?
		    jstr(f, "file_name") : k->name, "mime",
		    jstr(f, "mime_type") ? jstr(f, "mime_type") : k->mime,
		    "size", (json_int_t)jint(f, "file_size")));
	}
	if (json_array_size(out) == 0) {
		json_decref(out);
		return NULL;
	}
	return out;
}

/*
 * In a group the bot is spoken to by @username (a mention entity), by a
 * command addressed to it (/cmd@username), by a text_mention of its id,
 * or by a reply to one of its messages.
 */
static bool
msg_mentions(struct tg *t, const json_t *m, const char *text,
    const json_t *ents)
{
	const json_t	*re = json_object_get(json_object_get(m,
			    "reply_to_message"), "from"), *e;
	long long	 id;
	char		 user[64];
	size_t		 i;

	me_get(t, &id, user, sizeof(user));
	if (re != NULL && json_is_true(json_object_get(re, "is_bot")) &&
	    ((id != 0 && jint(re, "id") == id) || (*user != '\0' &&
	    jstr(re, "username") != NULL &&
	    strcasecmp(jstr(re, "username"), user) == 0)))
		return true;
	if (*user == '\0' && id == 0) {
		log_warn("telegram: a group message came before getMe "
		    "answered; set bot_username to see mentions", NULL);
		return false;
	}
	json_array_foreach(ents, i, e) {
		if (text != NULL && entity_names_bot(e, text, user, id))
			return true;
	}
	return false;
}

/* Entity offsets and lengths count UTF-16 code units (Bot API,
 * MessageEntity). */
static bool
entity_names_bot(const json_t *e, const char *text, const char *user,
    long long id)
{
	const char	*type = jstr(e, "type"), *s, *end;
	size_t		 n, ulen = strlen(user);

	if (type == NULL)
		return false;
	if (strcmp(type, "text_mention") == 0)
		return id != 0 && jint(json_object_get(e, "user"), "id") == id;
	if (ulen == 0 || (strcmp(type, "mention") != 0 &&
	    strcmp(type, "bot_command") != 0))
		return false;
	s = u16_at(text, jint(e, "offset"));
	end = s != NULL ? u16_at(s, jint(e, "length")) : NULL;
	if (end == NULL || (n = (size_t)(end - s)) < ulen + 1)
		return false;
	if (strcmp(type, "mention") == 0 && n != ulen + 1)
		return false;
	/* "@username", or the tail of "/command@username". */
	return end[-(long)ulen - 1] == '@' &&
	    strncasecmp(end - ulen, user, ulen) == 0;
}

/*
 * The text without "@username" (the model needs no reminder of its
 * name): each whole occurrence goes, with one space next to it, and the
 * comma or colon after it when it opens the text ("@bot, what …").
 */
static char *
strip_mention(const char *text, const char *user)
{
	struct buf	 b;
	size_t		 ulen = strlen(user), start;
	const char	*p = text;

	buf_init(&b, strlen(text) + 1);
	if (buf_puts(&b, "") == -1)
		return NULL;
	while (ulen > 0 && *p != '\0') {
		if (*p == '@' && strncasecmp(p + 1, user, ulen) == 0 &&
		    !word_char(p[1 + ulen])) {
			p += 1 + ulen;
			if (b.len == 0 && (*p == ',' || *p == ':'))
				p++;
			if (*p == ' ' && (b.len == 0 || b.data[b.len - 1] ==
			    ' '))
				p++;
			continue;
		}
		buf_append(&b, p++, 1);
	}
	buf_puts(&b, p);
	start = strspn(b.data, " \t\r\n");
	while (b.len > start && strchr(" \t\r\n", b.data[b.len - 1]) != NULL)
		b.data[--b.len] = '\0';
	memmove(b.data, b.data + start, b.len - start + 1);
	return buf_steal(&b);
}

/* Who the bot is: getMe's answer, or bot_username until it comes. */
static void
me_get(struct tg *t, long long *id, char *user, size_t usersz)
{
	pthread_mutex_lock(&t->lock);
	*id = t->bot_id;
	snprintf(user, usersz, "%s", *t->username != '\0' ? t->username :
	    t->conf_user);
	pthread_mutex_unlock(&t->lock);
}

/* For the channel's status: polling is down; a webhook channel failed. */
static void
health(struct channel *ch, const char *what, const char *why)
{
	struct tg	*t = channel_data(ch);
	char		 text[400];

	snprintf(text, sizeof(text), "%s: %s", what, why);
	channel_health(ch, t->polling ? CHAN_DOWN : CHAN_FAILURE, text);
}

/* getMe (Bot API): the bot's id and username, also a check of the token. */
static int
me_fetch(struct channel *ch)
{
	struct tg		*t = channel_data(ch);
	struct chan_http	 h;
	struct chan_result	 res;
	char			 url[TG_URL_MAX];
	json_t			*me = NULL;
	int			 rc = -1;

	memset(&h, 0, sizeof(h));
	memset(&res, 0, sizeof(res));
	if (api_url(ch, "bot", "getMe", url, sizeof(url), res.error,
	    sizeof(res.error)) == 0 && poll_get(t, url, 10000, &h) == 0 &&
	    api_status(&h, &res, &me) == CHAN_SENT &&
	    jint(me, "id") != 0 && jstr(me, "username") != NULL) {
		pthread_mutex_lock(&t->lock);
		t->bot_id = jint(me, "id");
		snprintf(t->username, sizeof(t->username), "%s",
		    jstr(me, "username"));
		pthread_mutex_unlock(&t->lock);
		log_info("telegram: bot ready", "channel=%s bot=@%s mode=%s",
		    channel_name(ch), jstr(me, "username"), t->polling ?
		    "polling" : "webhook");
		channel_health(ch, CHAN_UP, NULL);
		rc = 0;
	} else if (!stopping(t)) {
		log_warn("telegram: getMe failed; trying again later",
		    "channel=%s error=\"%s\"", channel_name(ch),
		    h.status == 0 && *res.error == '\0' ? h.error : res.error);
		health(ch, "getMe failed (the bot token is checked with it)",
		    h.status == 0 && *res.error == '\0' ? h.error : res.error);
	}
	explicit_bzero(url, sizeof(url));
	chan_http_free(&h);
	json_decref(me);
	return rc;
}

/* The channel's thread: getMe, then (polling) getUpdates until stopped. */
static void *
poll_main(void *arg)
{
	struct channel	*ch = arg;
	struct tg	*t = channel_data(ch);
	long		 backoff = BACKOFF_MIN_MS;
	char		 v[32];
	bool		 known = false;

	if (channel_state_get(ch, "offset", v, sizeof(v)) == 0)
		t->offset = strtoll(v, NULL, 10);
	if (t->polling)
		channel_health(ch, CHAN_CONNECTING, NULL);
	while (!stopping(t)) {
		if (!known)
			known = me_fetch(ch) == 0;
		if (known && !t->polling)
			break;
		if (known && poll_once(ch) == 0) {
			backoff = BACKOFF_MIN_MS;
			continue;
		}
		nap(t, backoff);
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
		    backoff * 2;
	}
	return NULL;
}

/*
 * One getUpdates (Bot API, getUpdates): the updates are in the inbox
 * before the offset moves past them, so a crash reads them again and the
 * inbox's dedupe by update_id drops what it already has. 0: a poll
 * answered; -1: back off.
 */
static int
poll_once(struct channel *ch)
{
	struct tg		*t = channel_data(ch);
	struct chan_http	 h;
	struct chan_result	 res;
	char			 url[TG_URL_MAX], q[128];
	json_t			*list = NULL;
	enum chan_status	 st;
	int			 rc = -1;

	memset(&h, 0, sizeof(h));
	memset(&res, 0, sizeof(res));
	snprintf(q, sizeof(q), "getUpdates?offset=%lld&timeout=%d"
	    "&allowed_updates=%%5B%%22message%%22%%5D", t->offset, TG_POLL_S);
	if (api_url(ch, "bot", q, url, sizeof(url), res.error,
	    sizeof(res.error)) == -1) {
		log_error("telegram: cannot poll", "channel=%s error=\"%s\"",
		    channel_name(ch), res.error);
		return -1;
	}
	if (poll_get(t, url, (TG_POLL_S + 10) * 1000L, &h) == -1) {
		if (!stopping(t)) {
			log_warn("telegram: getUpdates failed", "channel=%s "
			    "error=\"%s\"", channel_name(ch), h.error);
			health(ch, "getUpdates failed", h.error);
		}
		goto done;
	}
	if (h.status == 409) {
		poll_conflict(ch, h.answer.data);
		health(ch, "getUpdates answered 409 Conflict", "another "
		    "process polls with this bot token, or a webhook is set "
		    "(deleteWebhook removes it)");
		goto done;
	}
	if ((st = api_status(&h, &res, &list)) != CHAN_SENT) {
		log_warn("telegram: getUpdates failed", "channel=%s "
		    "error=\"%s\"", channel_name(ch), res.error);
		health(ch, "getUpdates failed", res.error);
		goto done;
	}
	channel_health(ch, CHAN_UP, NULL);
	if (t->conflict)
		log_info("telegram: getUpdates works again; the conflict is "
		    "over", "channel=%s", channel_name(ch));
	t->conflict = false;
	rc = poll_ingest(ch, list);
done:
	explicit_bzero(url, sizeof(url));
	chan_http_free(&h);
	json_decref(list);
	return rc;
}

/* The updates of one poll into the inbox, then the offset past them. */
static int
poll_ingest(struct channel *ch, json_t *list)
{
	struct tg	*t = channel_data(ch);
	struct chan_msg	*msgs;
	json_t		*u;
	long long	 last = t->offset - 1;
	size_t		 i, n = 0;
	char		 v[32];
	int		 rc = 0;

	if (json_array_size(list) == 0)
		return 0;
	if ((msgs = calloc(json_array_size(list), sizeof(*msgs))) == NULL)
		return -1;
	json_array_foreach(list, i, u) {
		if (jint(u, "update_id") > last)
			last = jint(u, "update_id");
		if (update_to_msg(ch, u, &msgs[n]) == 1)
			n++;
	}
	if (n > 0 && (rc = channel_ingest(ch, msgs, n)) == -1)
		log_warn("telegram: updates not stored; polling them again",
		    "channel=%s", channel_name(ch));
	for (i = 0; i < n; i++)
		chan_msg_clear(&msgs[i]);
	free(msgs);
	if (rc == 0 && last >= t->offset) {
		t->offset = last + 1;
		snprintf(v, sizeof(v), "%lld", t->offset);
		if (channel_state_set(ch, "offset", v) == -1)
			log_warn("telegram: cannot store the update offset",
			    "channel=%s", channel_name(ch));
	}
	return rc;
}

/*
 * 409 from getUpdates: another process polls with this token, or a
 * webhook is set (Bot API: getUpdates does not work while one is).
 * Said once, plainly, with the fix; polling goes on with backoff.
 */
static void
poll_conflict(struct channel *ch, const char *answer)
{
	struct tg	*t = channel_data(ch);
	json_t		*j;

	if (t->conflict)
		return;
	t->conflict = true;
	j = answer != NULL ? json_loads(answer, 0, NULL) : NULL;
	log_error("telegram: getUpdates answered 409 Conflict: another bot "
	    "process is polling with this token, or a webhook is set",
	    "channel=%s telegram=\"%s\" fix=\"stop the other process that "
	    "uses this bot token, or remove the webhook with deleteWebhook "
	    "(curl https://api.telegram.org/bot<token>/deleteWebhook); "
	    "polling resumes by itself\"", channel_name(ch),
	    jstr(j, "description") != NULL ? jstr(j, "description") : "");
	json_decref(j);
}

/*
 * A GET on the channel's own curl multi handle, so that tg_stop can cut
 * a 25 s long poll at once (curl_multi_wakeup) instead of waiting it out.
 */
static int
poll_get(struct tg *t, const char *url, long timeout_ms, struct chan_http *h)
{
	CURL		*c;
	CURLMsg		*m;
	CURLcode	 rc = CURLE_OK;
	long		 status = 0;
	int		 running = 1, left;

	buf_init(&h->answer, TG_ANSWER_MAX);
	h->status = 0;
	h->retry_after_ms = -1;
	h->error[0] = '\0';
	if ((c = curl_easy_init()) == NULL) {
		snprintf(h->error, sizeof(h->error), "out of memory");
		return -1;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "pincer");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &h->answer);
	curl_multi_add_handle(t->multi, c);
	while (running > 0 && !stopping(t) &&
	    curl_multi_perform(t->multi, &running) == CURLM_OK)
		if (running > 0)
			curl_multi_poll(t->multi, NULL, 0, 1000, NULL);
	while ((m = curl_multi_info_read(t->multi, &left)) != NULL)
		if (m->msg == CURLMSG_DONE)
			rc = m->data.result;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_multi_remove_handle(t->multi, c);
	curl_easy_cleanup(c);
	if (running > 0 || rc != CURLE_OK) {
		snprintf(h->error, sizeof(h->error), "%s", running > 0 ?
		    "stopped" : curl_easy_strerror(rc));
		return -1;
	}
	h->status = (int)status;
	return 0;
}

static bool
stopping(struct tg *t)
{
	bool	 v;

	pthread_mutex_lock(&t->lock);
	v = t->stop;
	pthread_mutex_unlock(&t->lock);
	return v;
}

/* Sleep ms, or less if the channel stops. */
static void
nap(struct tg *t, long ms)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&t->lock);
	while (!t->stop && pthread_cond_timedwait(&t->wake, &t->lock, &ts) !=
	    ETIMEDOUT)
		;
	pthread_mutex_unlock(&t->lock);
}

/*
 * {api_base}/<prefix><token>/<rest>: "bot" and a method, or "file/bot"
 * and a file_path. The caller wipes url after use; err never has it.
 */
static int
api_url(struct channel *ch, const char *prefix, const char *rest, char *url,
    size_t urlsz, char *err, size_t errsz)
{
	const char	*base = channel_base_url(ch);
	const char	*token = channel_secret(ch, "bot_token");
	size_t		 blen;
	int		 n;

	if (token == NULL || *token == '\0') {
		snprintf(err, errsz, "the secret named by bot_token is not "
		    "set (pincer secret set)");
		return -1;
	}
	if (base == NULL || *base == '\0')
		base = TG_API;
	blen = strlen(base);
	while (blen > 0 && base[blen - 1] == '/')
		blen--;
	n = snprintf(url, urlsz, "%.*s/%s%s/%s", (int)blen, base, prefix,
	    token, rest);
	if (n < 0 || (size_t)n >= urlsz) {
		snprintf(err, errsz, "api_base is too long");
		return -1;
	}
	return 0;
}

/* A method called with a JSON body; *result (if asked) is its result. */
static enum chan_status
api_json(struct channel *ch, const char *method, json_t *req,
    long timeout_ms, struct chan_result *res, json_t **result)
{
	static const char *const hdrs[] = {
		"Content-Type: application/json", NULL
	};
	struct chan_http	 h;
	enum chan_status	 st;
	char			 url[TG_URL_MAX], *body;

	memset(&h, 0, sizeof(h));
	if (api_url(ch, "bot", method, url, sizeof(url), res->error,
	    sizeof(res->error)) == -1)
		return CHAN_FAILED;
	if ((body = json_dumps(req, JSON_COMPACT)) == NULL) {
		explicit_bzero(url, sizeof(url));
		snprintf(res->error, sizeof(res->error), "out of memory");
		return CHAN_RETRY;
	}
	h.url = url;
	h.headers = hdrs;
	h.body = body;
	h.len = strlen(body);
	h.timeout_ms = timeout_ms;
	chan_http_do(&h);
	st = api_status(&h, res, result);
	explicit_bzero(url, sizeof(url));
	free(body);
	chan_http_free(&h);
	return st;
}

/* A method called with multipart/form-data (a file upload). */
static enum chan_status
api_parts(struct channel *ch, const char *method,
    const struct chan_part *parts, size_t n, struct chan_result *res,
    json_t **result)
{
	struct chan_http	 h;
	enum chan_status	 st;
	char			 url[TG_URL_MAX];

	memset(&h, 0, sizeof(h));
	if (api_url(ch, "bot", method, url, sizeof(url), res->error,
	    sizeof(res->error)) == -1)
		return CHAN_FAILED;
	h.url = url;
	h.parts = parts;
	h.nparts = n;
	h.timeout_ms = 120000;
	chan_http_do(&h);
	st = api_status(&h, res, result);
	explicit_bzero(url, sizeof(url));
	chan_http_free(&h);
	return st;
}

/*
 * Bot API answers {"ok": true, "result": …} or {"ok": false,
 * "error_code", "description", "parameters": {"retry_after"}} (Bot API,
 * Making requests; ResponseParameters). 429 waits retry_after; 5xx is
 * Telegram's trouble; 400/403 (chat not found, bot blocked) will not
 * get better.
 */
static enum chan_status
api_status(const struct chan_http *h, struct chan_result *res,
    json_t **result)
{
	json_t			*j;
	long long		 code, wait;
	enum chan_status	 st;

	if (h->status == 0) {
		snprintf(res->error, sizeof(res->error), "telegram: %.200s",
		    h->error);
		return CHAN_RETRY;
	}
	if ((j = chan_http_json(h)) == NULL)
		return chan_http_status(h, res);
	if (h->status == 200 && json_is_true(json_object_get(j, "ok"))) {
		if (result != NULL)
			*result = json_incref(json_object_get(j, "result"));
		json_decref(j);
		return CHAN_SENT;
	}
	if ((code = jint(j, "error_code")) == 0)
		code = h->status;
	snprintf(res->error, sizeof(res->error), "telegram: %lld %s", code,
	    jstr(j, "description") != NULL ? jstr(j, "description") : "");
	wait = jint(json_object_get(j, "parameters"), "retry_after");
	if (code == 429) {
		res->retry_after_ms = wait > 0 ? (long)wait * 1000 :
		    h->retry_after_ms > 0 ? h->retry_after_ms : 1000;
		st = CHAN_RETRY;
	} else if (code >= 500 || h->status >= 500 || code == 408)
		st = CHAN_RETRY;
	else
		st = CHAN_FAILED;
	json_decref(j);
	return st;
}

/*
 * sendMessage in HTML parse mode: the agent's text is plain, so & < >
 * are escaped, and nothing else needs to be (Bot API, HTML style). The
 * limit counts the text after entity parsing, so a piece cut before
 * escaping holds. In a group the first piece replies to the message.
 */
static enum chan_status
send_piece(struct channel *ch, const struct chan_out *out, const char *s,
    size_t n, bool first, struct chan_result *res)
{
	json_t			*req, *result = NULL;
	char			*html;
	enum chan_status	 st;

	if ((req = out_target(out)) == NULL ||
	    (html = html_escape(s, n)) == NULL) {
		json_decref(req);
		snprintf(res->error, sizeof(res->error), "out of memory");
		return CHAN_RETRY;
	}
	json_object_set_new(req, "text", json_string(html));
	json_object_set_new(req, "parse_mode", json_string("HTML"));
	if (out_group(out) && out->part == 0 && first && *out->ref != '\0')
		json_object_set_new(req, "reply_parameters", json_pack(
		    "{s:I, s:b}", "message_id", (json_int_t)strtoll(out->ref,
		    NULL, 10), "allow_sending_without_reply", 1));
	free(html);
	st = api_json(ch, "sendMessage", req, 0, res, &result);
	json_decref(req);
	if (st == CHAN_SENT)
		message_id(result, res);
	json_decref(result);
	return st;
}

/*
 * editMessageText (Bot API, Updating messages): the placeholder of
 * "progress": "message" becomes the reply's first part. Text over the
 * limit in UTF-16 units is refused by Telegram (a 400): the core then
 * sends the part as a message of its own.
 */
static enum chan_status
tg_update(struct channel *ch, const struct chan_out *out, const char *id,
    const char *text, struct chan_result *res)
{
	json_t			*req, *result = NULL;
	char			*html;
	enum chan_status	 st;

	if ((req = json_object()) == NULL ||
	    (html = html_escape(text, strlen(text))) == NULL) {
		json_decref(req);
		snprintf(res->error, sizeof(res->error), "out of memory");
		return CHAN_RETRY;
	}
	json_object_set_new(req, "chat_id", chat_id_json(out->chat));
	json_object_set_new(req, "message_id", json_integer(strtoll(id, NULL,
	    10)));
	json_object_set_new(req, "text", json_string(html));
	json_object_set_new(req, "parse_mode", json_string("HTML"));
	free(html);
	st = api_json(ch, "editMessageText", req, 0, res, &result);
	json_decref(req);
	if (st == CHAN_SENT)
		message_id(result, res);
	json_decref(result);
	return st;
}

/* The bytes of s that fit one message: at a line or a space in its
 * second half when s is longer. */
static size_t
text_piece(const char *s)
{
	size_t	 n = u16_prefix(s, TG_MAX_TEXT), i;

	if (s[n] == '\0')
		return n;
	for (i = n; i > n / 2; i--)
		if (s[i] == '\n' || s[i] == ' ')
			return i;
	return n;
}

/* sendPhoto or sendDocument, multipart (Bot API, Sending files). */
static enum chan_status
send_upload(struct channel *ch, const struct chan_out *out,
    const struct chan_file *f, bool photo, struct chan_result *res)
{
	struct chan_part	 p[5];
	json_t			*result = NULL;
	char			*cap = NULL;
	enum chan_status	 st;
	size_t			 n = 0;

	memset(p, 0, sizeof(p));
	p[n++] = (struct chan_part){ "chat_id", out->chat, (size_t)-1,
	    NULL, NULL };
	if (*out->thread != '\0')
		p[n++] = (struct chan_part){ "message_thread_id",
		    out->thread, (size_t)-1, NULL, NULL };
	if (f->caption != NULL && *f->caption != '\0' &&
	    (cap = html_escape(f->caption, u16_prefix(f->caption,
	    TG_MAX_CAPTION))) != NULL) {
		p[n++] = (struct chan_part){ "caption", cap, (size_t)-1,
		    NULL, NULL };
		p[n++] = (struct chan_part){ "parse_mode", "HTML", (size_t)-1,
		    NULL, NULL };
	}
	p[n++] = (struct chan_part){ photo ? "photo" : "document", f->data,
	    f->len, f->name, f->mime != NULL ? f->mime :
	    "application/octet-stream" };
	st = api_parts(ch, photo ? "sendPhoto" : "sendDocument", p, n, res,
	    &result);
	if (st == CHAN_SENT)
		message_id(result, res);
	json_decref(result);
	free(cap);
	return st;
}

/* {chat_id, message_thread_id}: where every method sends. */
static json_t *
out_target(const struct chan_out *out)
{
	json_t	*req = json_object();

	if (req == NULL)
		return NULL;
	json_object_set_new(req, "chat_id", chat_id_json(out->chat));
	if (*out->thread != '\0')
		json_object_set_new(req, "message_thread_id", json_integer(
		    strtoll(out->thread, NULL, 10)));
	return req;
}

/* Groups and supergroups have negative chat ids, users positive ones. */
static bool
out_group(const struct chan_out *out)
{
	return out->chat[0] == '-';
}

/* chat_id is an Integer, or a String for @channelusername. */
static json_t *
chat_id_json(const char *s)
{
	char		*end;
	long long	 v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0)
		return json_string(s);
	return json_integer(v);
}

/* The first n bytes of s with & < > as entities (Bot API, HTML style). */
static char *
html_escape(const char *s, size_t n)
{
	struct buf	 b;
	size_t		 i;
	int		 rc;

	buf_init(&b, n * 5 + 1);
	rc = buf_puts(&b, "");
	for (i = 0; i < n && rc == 0; i++) {
		if (s[i] == '&')
			rc = buf_puts(&b, "&amp;");
		else if (s[i] == '<')
			rc = buf_puts(&b, "&lt;");
		else if (s[i] == '>')
			rc = buf_puts(&b, "&gt;");
		else
			rc = buf_append(&b, &s[i], 1);
	}
	if (rc == -1) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

/* The bytes of s's longest prefix of at most max UTF-16 code units. */
static size_t
u16_prefix(const char *s, size_t max)
{
	size_t		 at = 0, units = 0, step;
	unsigned char	 c;

	while (s[at] != '\0') {
		c = (unsigned char)s[at];
		step = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
		units += step == 4 ? 2 : 1;
		if (units > max)
			break;
		while (step-- > 0 && s[at] != '\0')
			at++;
	}
	return at;
}

/* Where s's n-th UTF-16 code unit starts; NULL past the end. */
static const char *
u16_at(const char *s, long long n)
{
	size_t	 at;

	if (n < 0 || (size_t)n > strlen(s) * 2)
		return NULL;
	at = u16_prefix(s, (size_t)n);
	if (s[at] == '\0' && (long long)strlen(s) != (long long)at)
		return NULL;
	return s + at;
}

static void
message_id(json_t *result, struct chan_result *res)
{
	snprintf(res->message_id, sizeof(res->message_id), "%lld",
	    jint(result, "message_id"));
}

/* What sendPhoto shows as a photo: jpeg, png, webp up to 10 MB (a GIF
 * would lose its animation: it goes as a document, which keeps it). */
static bool
is_photo(const struct chan_file *f)
{
	static const char *const types[] = {
		"image/jpeg", "image/png", "image/webp"
	};
	size_t	 i;

	if (f->mime == NULL || f->len > (size_t)TG_PHOTO_MAX)
		return false;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcasecmp(f->mime, types[i]) == 0)
			return true;
	return false;
}

static bool
word_char(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

static size_t
on_write(char *p, size_t sz, size_t n, void *arg)
{
	if (buf_append(arg, p, sz * n) == -1)
		return 0;	/* over TG_ANSWER_MAX: CURLE_WRITE_ERROR */
	return sz * n;
}

static const char *
jstr(const json_t *j, const char *key)
{
	return json_string_value(json_object_get(j, key));
}

static long long
jint(const json_t *j, const char *key)
{
	return json_integer_value(json_object_get(j, key));
}
