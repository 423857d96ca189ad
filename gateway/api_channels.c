/* SPDX-License-Identifier: MIT */
/*
 * api_channels.c: GET /api/v1/channels, how each configured channel is
 * doing and what its owner must paste into the platform to set it up.
 * The status is what the channel's own code saw (channel_health: a
 * socket up or down, a poll that failed, a webhook refused, a reply not
 * delivered) and what the store holds (messages in and out, queues).
 * Secrets are named and said to be set or not; a value never leaves.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "pincer.h"

/* A secret a kind reads, by its config key, and when it needs it. */
struct secret_key {
	const char	*kind;
	const char	*key;
	const char	*mode;		/* NULL: any mode; else only this */
	const char	*what;
};

static const struct secret_key secret_keys[] = {
	{ "slack", "bot_token", NULL, "the Bot User OAuth Token (xoxb-…)" },
	{ "slack", "signing_secret", "events", "the app's Signing Secret" },
	{ "slack", "app_token", "socket",
	  "the app-level token (xapp-…, scope connections:write)" },
	{ "telegram", "bot_token", NULL, "the token @BotFather gave" },
	{ "telegram", "webhook_secret", "webhook",
	  "a random string you choose, sent as setWebhook's secret_token" },
	{ "whatsapp", "access_token", NULL,
	  "a system user's permanent access token" },
	{ "whatsapp", "app_secret", NULL, "the Meta app's App Secret" },
	{ "whatsapp", "verify_token", NULL,
	  "a random string you choose, typed as the Verify token" },
	{ "discord", "bot_token", NULL, "the bot's token (Bot, Reset Token)" },
	{ "generic", "secret", NULL,
	  "the HMAC key the sender signs each request with" },
};

static json_t	*channel_json(struct channel *, const char *base);
static json_t	*idle_json(const json_t *conf);
static json_t	*saved_channels(const struct config *);
static const char *mode_of(const struct channel *);
static json_t	*hooks_json(const struct channel *, const char *mode,
		    const char *base);
static json_t	*secrets_json(const struct channel *, const char *mode);
static bool	 secret_set(const char *name);
static void	 status_json(struct channel *, json_t *, long long last);
static long long store_int(const char *sql, const char *channel);
static void	 set_time(json_t *, const char *key, long long ms);

/* GET /api/v1/channels (admin) */
void
api_channels(struct http_req *r)
{
	const struct config	*c = config_current();
	const json_t		*item;
	const char		*host = http_req_header(r, "Host"), *name;
	char			 base[512];
	json_t			*list = json_array(), *o, *file;
	size_t			 i;
	bool			 from_conf = *c->public_url != '\0';

	if (from_conf)
		snprintf(base, sizeof(base), "%s", c->public_url);
	else
		snprintf(base, sizeof(base), "%s://%s", http_req_secure(r) ?
		    "https" : "http", host != NULL ? host : "127.0.0.1");
	if (base[0] != '\0' && base[strlen(base) - 1] == '/')
		base[strlen(base) - 1] = '\0';
	for (i = 0; i < channel_count(); i++)
		json_array_append_new(list, channel_json(channel_at(i), base));
	/*
	 * In the file but not running: saved since the start. The running
	 * config keeps the channels it started with (a restart option), so
	 * the file is what says what was added.
	 */
	file = saved_channels(c);
	json_array_foreach(file, i, item) {
		name = json_string_value(json_object_get(item, "name"));
		if (name != NULL && channel_by_name(name) == NULL)
			json_array_append_new(list, idle_json(item));
	}
	json_decref(file);
	o = json_pack("{s:o, s:s, s:s}", "channels", list, "base_url", base,
	    "base_url_from", from_conf ? "public_url" : "request");
	if (!from_conf)
		json_object_set_new(o, "base_url_note", json_string(
		    "public_url is not set: these URLs use the address this "
		    "browser reached pincer at. The platform must reach the "
		    "same address over HTTPS; set public_url to say which."));
	http_reply_json(r, 200, o);
}

static json_t *
channel_json(struct channel *ch, const char *base)
{
	static const char *const policies[] = { "pairing", "allowlist",
	    "open", "disabled" };
	const char	*mode = mode_of(ch);
	json_t		*o;
	long long	 in, out;

	in = store_int("SELECT max(i.received_ms) FROM inbox i JOIN "
	    "conversations c ON c.id = i.conversation WHERE c.channel = ?",
	    ch->name);
	out = store_int("SELECT max(o.delivered_ms) FROM outbox o JOIN "
	    "conversations c ON c.id = o.conversation WHERE c.channel = ? "
	    "AND o.state = 'sent'", ch->name);
	o = json_pack("{s:s, s:s, s:s, s:b, s:s, s:I, s:I}", "name",
	    ch->name, "kind", ch->ops->kind, "mode", mode, "enabled", 1,
	    "dm_policy", policies[ch->policy], "inbox_waiting",
	    (json_int_t)store_int("SELECT count(*) FROM inbox i JOIN "
	    "conversations c ON c.id = i.conversation WHERE c.channel = ? "
	    "AND i.state IN ('queued', 'running')", ch->name),
	    "outbox_waiting", (json_int_t)store_int("SELECT count(*) FROM "
	    "outbox o JOIN conversations c ON c.id = o.conversation WHERE "
	    "c.channel = ? AND o.state = 'pending'", ch->name));
	set_time(o, "last_in", in);
	set_time(o, "last_out", out);
	status_json(ch, o, in > out ? in : out);
	json_object_set_new(o, "webhooks", hooks_json(ch, mode, base));
	json_object_set_new(o, "secrets", secrets_json(ch, mode));
	/* Not secrets: ids the guides show (Discord's invite URL). */
	json_object_set_new(o, "settings", json_pack("{s:O?, s:O?, s:O?}",
	    "application_id", json_object_get(ch->conf, "application_id"),
	    "phone_number_id", json_object_get(ch->conf, "phone_number_id"),
	    "callback_url", json_object_get(ch->conf, "callback_url")));
	return o;
}

/*
 * ok, connecting, error. A connection of its own says first; else a
 * failure newer than the last thing that worked (a signed webhook, a
 * poll, a message stored or delivered) is the status.
 */
static void
status_json(struct channel *ch, json_t *o, long long last)
{
	const char	*st, *text;
	long long	 up, err_ms;
	char		 err[sizeof(ch->err)];
	int		 conn;

	pthread_mutex_lock(&ch->health_lock);
	conn = ch->conn;
	up = ch->up_ms;
	err_ms = ch->err_ms;
	snprintf(err, sizeof(err), "%s", ch->err);
	pthread_mutex_unlock(&ch->health_lock);
	if (up > last)
		last = up;
	if (conn == CHAN_CONNECTING + 1) {
		st = "connecting";
		text = err_ms > last ? "connecting again after an error" :
		    "connecting";
	} else if (conn == CHAN_DOWN + 1 || err_ms > last) {
		st = "error";
		text = conn == CHAN_DOWN + 1 ? "not connected" :
		    "the last thing that happened was an error";
	} else {
		st = "ok";
		text = conn == CHAN_UP + 1 ? "connected" : last > 0 ?
		    "working" : "ready: nothing received yet";
	}
	json_object_set_new(o, "status", json_string(st));
	json_object_set_new(o, "status_text", json_string(text));
	if (err_ms > 0) {
		json_object_set_new(o, "last_error", json_pack("{s:s}",
		    "message", err));
		set_time(json_object_get(o, "last_error"), "time", err_ms);
	} else
		json_object_set_new(o, "last_error", json_null());
}

/* The channels of the config file as saved (a new reference). */
static json_t *
saved_channels(const struct config *c)
{
	const char	*path = daemon_config_path();
	json_t		*root, *list;

	if (path == NULL || (root = json_load_file(path, 0, NULL)) == NULL)
		return json_incref(c->channels);
	list = json_incref(json_object_get(root, "channels"));
	json_decref(root);
	return list;
}

/* A channel in the config that pincerd did not start. */
static json_t *
idle_json(const json_t *conf)
{
	const char	*kind = json_string_value(json_object_get(conf,
			    "kind"));

	return json_pack("{s:O, s:s, s:s, s:b, s:s, s:s, s:n, s:[], s:[]}",
	    "name", json_object_get(conf, "name"), "kind", kind != NULL ?
	    kind : "", "mode", "", "enabled", 0, "status", "disabled",
	    "status_text", "not running: channels start with pincerd, so "
	    "restart it to start this one", "last_error", "webhooks",
	    "secrets");
}

static const char *
mode_of(const struct channel *ch)
{
	const char	*k = ch->ops->kind;
	const char	*m = json_string_value(json_object_get(ch->conf,
			    "mode"));
	const json_t	*gw = json_object_get(ch->conf, "gateway");

	if (!strcmp(k, "slack"))
		return m != NULL && !strcmp(m, "socket") ? "socket" :
		    "webhook";
	if (!strcmp(k, "telegram"))
		return m != NULL && !strcmp(m, "polling") ? "polling" :
		    "webhook";
	if (!strcmp(k, "discord"))
		return gw == NULL || json_is_true(gw) ? "gateway" : "webhook";
	return "webhook";
}

/*
 * The URLs to paste: /hooks/KIND for the first of a kind, else (and for
 * kinds that always want it) /hooks/KIND/NAME, as channel_find_hook
 * reads them.
 */
static json_t *
hooks_json(const struct channel *ch, const char *mode, const char *base)
{
	const char	*k = ch->ops->kind, *suffix = "", *label;
	char		 url[1024];
	bool		 first = true;
	size_t		 i;

	if (!strcmp(mode, "socket") || !strcmp(mode, "polling"))
		return json_array();
	for (i = 0; i < channel_count() && channel_at(i) != ch; i++)
		if (!strcmp(channel_at(i)->ops->kind, k))
			first = false;
	if (!strcmp(k, "slack")) {
		suffix = "/events";
		label = "Event Subscriptions: Request URL";
	} else if (!strcmp(k, "discord")) {
		suffix = "/interactions";
		label = "Interactions Endpoint URL (for /ask)";
	} else if (!strcmp(k, "whatsapp"))
		label = "Callback URL";
	else if (!strcmp(k, "telegram"))
		label = "setWebhook url";
	else
		label = "the URL to POST to";
	snprintf(url, sizeof(url), "%s/hooks/%s%s%s%s", base, k,
	    first && !ch->ops->hook_by_name ? "" : "/", first &&
	    !ch->ops->hook_by_name ? "" : ch->name, suffix);
	return json_pack("[{s:s, s:s}]", "label", label, "url", url);
}

static json_t *
secrets_json(const struct channel *ch, const char *mode)
{
	json_t		*a = json_array();
	const char	*name, *m;
	size_t		 i;

	for (i = 0; i < sizeof(secret_keys) / sizeof(secret_keys[0]); i++) {
		if (strcmp(secret_keys[i].kind, ch->ops->kind) != 0)
			continue;
		m = secret_keys[i].mode;
		if (m != NULL && strcmp(m, mode) != 0 && !(!strcmp(m,
		    "events") && !strcmp(mode, "webhook")))
			continue;
		name = json_string_value(json_object_get(ch->conf,
		    secret_keys[i].key));
		json_array_append_new(a, json_pack("{s:s, s:s?, s:b, s:s}",
		    "key", secret_keys[i].key, "name", name, "set", name !=
		    NULL && secret_set(name), "what", secret_keys[i].what));
	}
	return a;
}

/* Whether the store holds it; never read, never decrypted here. */
static bool
secret_set(const char *name)
{
	sqlite3_stmt	*st;
	bool		 set = false;

	if ((st = store_stmt("SELECT 1 FROM secrets WHERE name = ?")) == NULL)
		return false;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	set = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_reset(st);
	return set;
}

static long long
store_int(const char *sql, const char *channel)
{
	sqlite3_stmt	*st;
	long long	 v = 0;

	if ((st = store_stmt(sql)) == NULL)
		return 0;
	sqlite3_bind_text(st, 1, channel, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return v;
}

/* RFC 3339 UTC, or null for never. */
static void
set_time(json_t *o, const char *key, long long ms)
{
	struct tm	 tm;
	time_t		 t = (time_t)(ms / 1000);
	char		 s[40];

	if (ms <= 0) {
		json_object_set_new(o, key, json_null());
		return;
	}
	gmtime_r(&t, &tm);
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_set_new(o, key, json_string(s));
}
