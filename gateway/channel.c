/* SPDX-License-Identifier: MIT */
/*
 * channel.c: the chat channels: their config, their secrets and state,
 * and which one a hook path names. Messages come in through chan_in.c,
 * replies leave through chan_out.c, pairing lives in chan_pair.c.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>
#include <sqlite3.h>

#include "pincer.h"

#define CHANNELS_MAX	32

static const struct channel_ops *kind_ops(const char *);
static int	 build(struct channel *, const json_t *, char *, size_t);
static void	 destroy(struct channel *);

static const struct channel_ops *const kinds[] = {
	&channel_slack_ops, &channel_telegram_ops, &channel_whatsapp_ops,
	&channel_discord_ops, &channel_generic_ops,
};
static const char *const policies[] = { "pairing", "allowlist", "open",
	"disabled" };

static struct channel	*chans[CHANNELS_MAX];
static size_t		 nchans;

/* config.c: every channel is built as it would run, then dropped. */
int
channel_check(const json_t *list, char *err, size_t errsz)
{
	struct channel	 ch;
	const json_t	*c;
	size_t		 i, j;
	const char	*a, *b;

	if (list == NULL)
		return 0;
	if (!json_is_array(list)) {
		snprintf(err, errsz, "channels: must be an array");
		return -1;
	}
	json_array_foreach(list, i, c) {
		memset(&ch, 0, sizeof(ch));
		if (build(&ch, c, err, errsz) == -1) {
			destroy(&ch);
			return -1;
		}
		destroy(&ch);
		a = json_string_value(json_object_get(c, "name"));
		for (j = 0; j < i; j++) {
			b = json_string_value(json_object_get(
			    json_array_get(list, j), "name"));
			if (b != NULL && !strcmp(a, b)) {
				snprintf(err, errsz, "channels[%zu].name: "
				    "\"%s\" is used twice", i, a);
				return -1;
			}
		}
	}
	return 0;
}

int
channel_start(const struct config *c)
{
	const json_t	*item;
	struct channel	*ch;
	char		 err[512];
	size_t		 i;

	if (json_array_size(c->channels) > 0 && chan_in_start() == -1)
		return -1;
	json_array_foreach(c->channels, i, item) {
		if (nchans == CHANNELS_MAX)
			break;
		if ((ch = calloc(1, sizeof(*ch))) == NULL)
			return -1;
		if (build(ch, item, err, sizeof(err)) == -1) {
			log_error("cannot set up a channel", "%s", err);
			destroy(ch);
			free(ch);
			return -1;
		}
		if (chan_out_start(ch) == -1) {
			destroy(ch);
			free(ch);
			return -1;
		}
		chans[nchans++] = ch;
		if (ch->ops->start != NULL && ch->ops->start(ch) == -1) {
			log_error("cannot start a channel", "channel=%s",
			    ch->name);
			return -1;
		}
		log_info("channel ready", "channel=%s kind=%s dm_policy=%s",
		    ch->name, ch->ops->kind, policies[ch->policy]);
	}
	return 0;
}

void
channel_stop(void)
{
	size_t	 i;

	for (i = 0; i < nchans; i++)
		if (chans[i]->ops->stop != NULL)
			chans[i]->ops->stop(chans[i]);
	for (i = 0; i < nchans; i++) {
		chan_out_stop(chans[i]);
		destroy(chans[i]);
		free(chans[i]);
	}
	nchans = 0;
	chan_in_stop();
}

/* A channel built from its config but not started (fuzz targets). */
struct channel *
channel_build(const json_t *conf, char *err, size_t errsz)
{
	struct channel	*ch;

	if ((ch = calloc(1, sizeof(*ch))) == NULL)
		return NULL;
	if (build(ch, conf, err, errsz) == -1) {
		destroy(ch);
		free(ch);
		return NULL;
	}
	return ch;
}

void
channel_free(struct channel *ch)
{
	if (ch == NULL)
		return;
	destroy(ch);
	free(ch);
}

struct channel *
channel_by_name(const char *name)
{
	size_t	 i;

	for (i = 0; i < nchans; i++)
		if (!strcmp(chans[i]->name, name))
			return chans[i];
	return NULL;
}

size_t
channel_count(void)
{
	return nchans;
}

struct channel *
channel_at(size_t i)
{
	return i < nchans ? chans[i] : NULL;
}

const char *
channel_name(const struct channel *ch)
{
	return ch->name;
}

const char *
channel_base_url(const struct channel *ch)
{
	return ch->api_base;
}

void *
channel_data(const struct channel *ch)
{
	return ch->data;
}

void
channel_set_data(struct channel *ch, void *d)
{
	ch->data = d;
}

/*
 * A secret named by one of the channel's keys, read from the store the
 * first time it is asked for and kept (SIGHUP does not re-read it: a
 * channel changed needs a restart, as its config does). Not yet set is
 * not kept, so `pincer secret set` after the start still takes.
 */
const char *
channel_secret(const struct channel *cch, const char *key)
{
	struct channel	*ch = (struct channel *)cch;
	const char	*name = json_string_value(json_object_get(ch->conf,
			    key));
	const char	*v = NULL;
	struct buf	 b;
	size_t		 i;

	if (name == NULL)
		return NULL;
	pthread_mutex_lock(&ch->lock);
	for (i = 0; i < ch->nsecrets && v == NULL; i++)
		if (!strcmp(ch->secrets[i].key, key))
			v = ch->secrets[i].value;
	if (v == NULL && ch->nsecrets < CHAN_SECRETS_MAX) {
		buf_init(&b, SECRETS_MAX + 64);
		if (secrets_get(name, &b) == 0 && b.data != NULL) {
			snprintf(ch->secrets[ch->nsecrets].key,
			    sizeof(ch->secrets[0].key), "%s", key);
			v = ch->secrets[ch->nsecrets++].value =
			    strdup(b.data);
			explicit_bzero(b.data, b.len);
		}
		buf_free(&b);
	}
	pthread_mutex_unlock(&ch->lock);
	return v;
}

int
channel_state_get(const struct channel *ch, const char *key, char *out,
    size_t outsz)
{
	sqlite3_stmt	*st;
	int		 rc = -1;

	out[0] = '\0';
	if ((st = store_stmt("SELECT value FROM channel_state WHERE channel "
	    "= ? AND key = ?")) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, ch->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(out, outsz, "%s", sqlite3_column_text(st, 0));
		rc = 0;
	}
	sqlite3_reset(st);
	return rc;
}

int
channel_state_del(const struct channel *ch, const char *key)
{
	sqlite3_stmt	*st;
	int		 rc;

	if ((st = store_stmt("DELETE FROM channel_state WHERE channel = ? "
	    "AND key = ?")) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, ch->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_reset(st);
	return rc;
}

int
channel_state_set(const struct channel *ch, const char *key,
    const char *value)
{
	sqlite3_stmt	*st;
	int		 rc;

	if ((st = store_stmt("INSERT INTO channel_state (channel, key, "
	    "value) VALUES (?, ?, ?) ON CONFLICT (channel, key) DO UPDATE "
	    "SET value = excluded.value")) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, ch->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, value, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_reset(st);
	return rc;
}

/*
 * UP: the platform answered (a poll, a connection, a signed webhook, a
 * reply accepted); CONNECTING and DOWN: where the channel's own
 * connection stands; FAILURE: something failed without the connection
 * being lost (a webhook refused, a reply not delivered).
 */
void
channel_health(struct channel *ch, enum chan_health h, const char *why)
{
	long long	 now = now_wall_ms();

	pthread_mutex_lock(&ch->health_lock);
	if (h != CHAN_FAILURE)
		ch->conn = h == CHAN_UP && ch->conn == 0 ? 0 : (int)h + 1;
	if (h == CHAN_UP)
		ch->up_ms = now;
	if ((h == CHAN_DOWN || h == CHAN_FAILURE) && why != NULL) {
		ch->err_ms = now;
		snprintf(ch->err, sizeof(ch->err), "%s", why);
	}
	pthread_mutex_unlock(&ch->health_lock);
}

void
chan_msg_clear(struct chan_msg *m)
{
	free(m->text);
	json_decref(m->attachments);
	memset(m, 0, sizeof(*m));
}

/*
 * The channel that owns a hook path: /hooks/KIND/NAME/… names one of
 * several of a kind; /hooks/KIND/… is the first of its kind.
 */
struct channel *
channel_find_hook(const char *path)
{
	const char	*kind, *rest, *end;
	size_t		 klen, i;
	struct channel	*first = NULL;

	if (strncmp(path, "/hooks/", 7) != 0)
		return NULL;
	kind = path + 7;
	klen = strcspn(kind, "/");
	rest = kind[klen] == '/' ? kind + klen + 1 : "";
	end = rest + strcspn(rest, "/");
	for (i = 0; i < nchans; i++) {
		if (strlen(chans[i]->ops->kind) != klen ||
		    strncmp(chans[i]->ops->kind, kind, klen) != 0)
			continue;
		if (strlen(chans[i]->name) == (size_t)(end - rest) &&
		    strncmp(chans[i]->name, rest, (size_t)(end - rest)) == 0)
			return chans[i];
		if (first == NULL && !chans[i]->ops->hook_by_name)
			first = chans[i];
	}
	return first;
}

static const struct channel_ops *
kind_ops(const char *kind)
{
	size_t	 i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strcmp(kinds[i]->kind, kind))
			return kinds[i];
	return NULL;
}

static bool
name_valid(const char *s)
{
	size_t	 i;

	for (i = 0; s[i] != '\0'; i++)
		if (!islower((unsigned char)s[i]) &&
		    !isdigit((unsigned char)s[i]) && s[i] != '-' &&
		    s[i] != '_')
			return false;
	return i > 0 && i <= 32 && strcmp(s, "api") != 0;
}

/* One channel from its config object; err names the key at fault. */
static int
build(struct channel *ch, const json_t *c, char *err, size_t errsz)
{
	const char	*name, *kind, *pol, *s;
	char		 kerr[400];
	size_t		 i;

	pthread_mutex_init(&ch->lock, NULL);
	pthread_mutex_init(&ch->health_lock, NULL);
	ch->conf = json_incref((json_t *)c);
	name = json_string_value(json_object_get(c, "name"));
	kind = json_string_value(json_object_get(c, "kind"));
	if (!json_is_object(c) || name == NULL || !name_valid(name)) {
		snprintf(err, errsz, "channels: each needs a \"name\" (1-32 "
		    "of a-z 0-9 - _, not \"api\")");
		return -1;
	}
	if (kind == NULL || (ch->ops = kind_ops(kind)) == NULL) {
		snprintf(err, errsz, "channels.%s.kind: one of slack, "
		    "telegram, whatsapp, discord, generic", name);
		return -1;
	}
	ch->name = strdup(name);
	pol = json_string_value(json_object_get(c, "dm_policy"));
	for (ch->policy = -1, i = 0; i < 4; i++)
		if (!strcmp(pol != NULL ? pol : ch->ops->default_policy !=
		    NULL ? ch->ops->default_policy : "pairing", policies[i]))
			ch->policy = (int)i;
	if (ch->policy == -1) {
		snprintf(err, errsz, "channels.%s.dm_policy: one of pairing, "
		    "allowlist, open, disabled", name);
		return -1;
	}
	if ((s = json_string_value(json_object_get(c, "progress"))) != NULL &&
	    strcmp(s, "typing") != 0 && strcmp(s, "message") != 0) {
		snprintf(err, errsz, "channels.%s.progress: typing or message",
		    name);
		return -1;
	}
	ch->progress_msg = s != NULL && !strcmp(s, "message");
	if (ch->progress_msg && ch->ops->update == NULL) {
		snprintf(err, errsz, "channels.%s.progress: %s cannot edit a "
		    "message; use typing", name, kind);
		return -1;
	}
	ch->allow = json_incref(json_object_get(c, "allow"));
	if (ch->allow != NULL && !json_is_array(ch->allow)) {
		snprintf(err, errsz, "channels.%s.allow: a list of the "
		    "platform's user ids", name);
		return -1;
	}
	if ((s = json_string_value(json_object_get(c, "owner"))) != NULL)
		ch->owner = strdup(s);
	if ((s = json_string_value(json_object_get(c, "api_base"))) != NULL) {
		if (strncmp(s, "https://", 8) != 0 &&
		    strncmp(s, "http://", 7) != 0) {
			snprintf(err, errsz, "channels.%s.api_base: an http(s) "
			    "URL", name);
			return -1;
		}
		ch->api_base = strndup(s, strlen(s) - (s[strlen(s) - 1] ==
		    '/'));
	}
	if (ch->ops->init == NULL) {
		snprintf(err, errsz, "channels.%s: the %s channel is not built "
		    "in this version", name, kind);
		return -1;
	}
	kerr[0] = '\0';
	if (ch->ops->init(ch, c, kerr, sizeof(kerr)) == -1) {
		snprintf(err, errsz, "channels.%s: %s", name, kerr);
		return -1;
	}
	ch->inited = true;
	return 0;
}

static void
destroy(struct channel *ch)
{
	size_t	 i;

	if (ch->inited && ch->ops->free != NULL)
		ch->ops->free(ch);
	for (i = 0; i < ch->nsecrets; i++) {
		explicit_bzero(ch->secrets[i].value,
		    strlen(ch->secrets[i].value));
		free(ch->secrets[i].value);
	}
	json_decref(ch->conf);
	json_decref(ch->allow);
	free(ch->name);
	free(ch->owner);
	free(ch->api_base);
	pthread_mutex_destroy(&ch->lock);
	pthread_mutex_destroy(&ch->health_lock);
}

/* The pincer user a channel's conversations belong to. */
const char *
chan_owner(struct channel *ch)
{
	sqlite3_stmt	*st;

	pthread_mutex_lock(&ch->lock);
	if (ch->owner == NULL && (st = store_stmt("SELECT name FROM users "
	    "WHERE role = 'owner' AND disabled = 0 ORDER BY id LIMIT 1")) !=
	    NULL) {
		if (sqlite3_step(st) == SQLITE_ROW)
			ch->owner = strdup((const char *)
			    sqlite3_column_text(st, 0));
		sqlite3_reset(st);
	}
	pthread_mutex_unlock(&ch->lock);
	return ch->owner != NULL ? ch->owner : "owner";
}
