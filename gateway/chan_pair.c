/* SPDX-License-Identifier: MIT */
/*
 * chan_pair.c: who may talk on a channel. Under dm_policy "pairing" (the
 * default) a stranger's direct message is not processed: they get a
 * short code instead, and the owner approves it (`pincer pairing approve
 * CHANNEL CODE`, the API, the admin UI). Codes are 8 characters, live an
 * hour, and a channel holds at most 3 pending, so a crowd of strangers
 * cannot flood the owner (or the platform, through our replies). Every
 * decision goes to the audit log.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>
#include <sqlite3.h>

#include "pincer.h"

#define CODE_LEN	8
#define CODE_TTL_MS	(60LL * 60 * 1000)
#define PENDING_MAX	3
#define RESEND_MS	(10LL * 60 * 1000)	/* the same code, again */
#define DENY_MS		(24LL * 60 * 60 * 1000)	/* no new code for a day */

static int	 pair_reply(const char *channel, const char *owner,
		    const char *chat, const char *ref, const char *text);
static void	 new_code(char out[CODE_LEN + 1]);
static long long wall_ms(void);

/* 1: the sender was approved; 0: not (yet); -1: the store failed. */
int
chan_pair_known(struct channel *ch, const char *sender)
{
	sqlite3_stmt	*st;
	int		 rc;

	if ((st = store_stmt("SELECT state FROM channel_peers WHERE channel "
	    "= ? AND peer = ?")) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, ch->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, sender, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	rc = rc == SQLITE_ROW ? !strcmp((const char *)sqlite3_column_text(st,
	    0), "approved") : rc == SQLITE_DONE ? 0 : -1;
	sqlite3_reset(st);
	return rc;
}

/*
 * A stranger wrote: a code for them (or theirs again, at most every ten
 * minutes), sent through the outbox like any reply. What they wrote is
 * not kept. 0 when decided (even "ignored"), -1 if the store failed.
 */
int
chan_pair_request(struct channel *ch, const struct chan_msg *m)
{
	sqlite3		*db = store_db();
	sqlite3_stmt	*st;
	char		 code[CODE_LEN + 1], text[512], old[16] = "";
	long long	 now = wall_ms(), expires = 0, sent = 0;
	int		 pending = 0, rc = -1;
	bool		 fresh = false, denied = false;

	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	if ((st = store_stmt("SELECT code, expires_ms, created_ms, state "
	    "FROM channel_peers WHERE channel = ? AND peer = ? AND state IN "
	    "('pending', 'denied')")) == NULL)
		goto out;
	sqlite3_bind_text(st, 1, ch->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, m->sender, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(old, sizeof(old), "%s", sqlite3_column_text(st, 0) !=
		    NULL ? (const char *)sqlite3_column_text(st, 0) : "");
		expires = sqlite3_column_int64(st, 1);
		sent = sqlite3_column_int64(st, 2);
		denied = !strcmp((const char *)sqlite3_column_text(st, 3),
		    "denied");
	}
	sqlite3_reset(st);
	if (denied && expires > now) {
		/* Denied: no word and no code until the denial lapses; not
		 * audited either, or a persistent stranger fills the log. */
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
		return 0;
	}
	if (!denied && expires > now) {
		/* Pending: the same code, not too often. */
		snprintf(code, sizeof(code), "%s", old);
		if (now - sent < RESEND_MS) {
			/* Told already: nothing to do, nothing to audit. */
			sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
			return 0;
		}
	} else {
		if ((st = store_stmt("SELECT count(*) FROM channel_peers WHERE "
		    "channel = ? AND state = 'pending' AND expires_ms > ?")) ==
		    NULL)
			goto out;
		sqlite3_bind_text(st, 1, ch->name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, now);
		if (sqlite3_step(st) == SQLITE_ROW)
			pending = sqlite3_column_int(st, 0);
		sqlite3_reset(st);
		if (pending >= PENDING_MAX) {
			sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
			chan_pair_audit(ch, m, "pairing.ignored", "3 pairing "
			    "codes are already pending on this channel");
			return 0;
		}
		new_code(code);
		expires = now + CODE_TTL_MS;
		fresh = true;
	}
	if ((st = store_stmt("INSERT INTO channel_peers (channel, peer, name, "
	    "state, code, chat, created_ms, expires_ms) VALUES (?, ?, ?, "
	    "'pending', ?, ?, ?, ?) ON CONFLICT (channel, peer) DO UPDATE SET "
	    "name = excluded.name, state = 'pending', code = excluded.code, "
	    "chat = excluded.chat, created_ms = excluded.created_ms, "
	    "expires_ms = excluded.expires_ms")) == NULL)
		goto out;
	sqlite3_bind_text(st, 1, ch->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, m->sender, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, m->sender_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, code, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, m->chat, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, now);
	sqlite3_bind_int64(st, 7, expires);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_reset(st);
	snprintf(text, sizeof(text), "Hi! I only talk with people my owner "
	    "has approved. Your pairing code is %s (valid for an hour). "
	    "Ask my owner to run: pincer pairing approve %s %s", code,
	    ch->name, code);
	if (rc == 0)
		rc = pair_reply(ch->name, chan_owner(ch), m->chat, m->ref,
		    text);
out:
	if (rc == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) ==
	    SQLITE_OK) {
		chan_pair_audit(ch, m, fresh ? "pairing.request" :
		    "pairing.remind", code);
		channel_notify();
		return 0;
	}
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

void
chan_pair_audit(struct channel *ch, const struct chan_msg *m,
    const char *action, const char *why)
{
	char	 target[CHAN_ID_MAX + 80];

	snprintf(target, sizeof(target), "%s:%s", ch->name, m->sender);
	audit_add("channel", "", action, target, why);
	/* A code is for the owner's eyes (the audit log), not the log's. */
	log_info("channel decision", "channel=%s action=%s sender=%s%s%s",
	    ch->name, action, m->sender, strncmp(action, "pairing.", 8) ||
	    !strcmp(action, "pairing.ignored") ? " why=" : "",
	    strncmp(action, "pairing.", 8) || !strcmp(action,
	    "pairing.ignored") ? why : "");
}

/* The owner's yes: the code's sender may talk from now on. */
int
chan_pair_approve(const char *channel, const char *code, const char *by,
    char *err, size_t errsz)
{
	sqlite3		*db = store_db();
	sqlite3_stmt	*st;
	char		 peer[CHAN_ID_MAX], chat[CHAN_ID_MAX], target[256];
	int		 rc = -1;

	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	if ((st = store_stmt("SELECT peer, chat FROM channel_peers WHERE "
	    "channel = ? AND state = 'pending' AND code = upper(?) AND "
	    "expires_ms > ?")) == NULL)
		goto fail;
	sqlite3_bind_text(st, 1, channel, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, code, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, wall_ms());
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		snprintf(err, errsz, "no pending pairing code %s on channel %s "
		    "(codes last an hour: `pincer pairing list`)", code,
		    channel);
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	snprintf(peer, sizeof(peer), "%s", sqlite3_column_text(st, 0));
	snprintf(chat, sizeof(chat), "%s", sqlite3_column_text(st, 1));
	sqlite3_reset(st);
	if ((st = store_stmt("UPDATE channel_peers SET state = 'approved', "
	    "code = NULL, decided_by = ?, decided_ms = ? WHERE channel = ? "
	    "AND peer = ?")) == NULL)
		goto fail;
	sqlite3_bind_text(st, 1, by, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, wall_ms());
	sqlite3_bind_text(st, 3, channel, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, peer, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_reset(st);
	if (rc == 0)
		rc = pair_reply(channel, "", chat, NULL, "You are approved: I "
		    "will answer your messages from now on.");
	if (rc == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) ==
	    SQLITE_OK) {
		snprintf(target, sizeof(target), "%s:%s", channel, peer);
		audit_add(by, "", "pairing.approve", target, code);
		channel_notify();
		return 0;
	}
fail:
	snprintf(err, errsz, "the store failed: %s", sqlite3_errmsg(db));
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/*
 * The owner's no (-1: no such code, -2: the store failed). The stranger
 * is not told: a refusal in words would tell a spammer the bot is there
 * and invite them to try again. For a day (DENY_MS) they get no new code
 * and the owner hears nothing of them; after it they may ask again, as
 * any stranger.
 */
int
chan_pair_deny(const char *channel, const char *code, const char *by,
    char *err, size_t errsz)
{
	sqlite3		*db = store_db();
	sqlite3_stmt	*st;
	char		 target[256];
	int		 n;

	if ((st = store_stmt("UPDATE channel_peers SET state = 'denied', "
	    "code = NULL, decided_by = ?1, decided_ms = ?2, expires_ms = ?3 "
	    "WHERE channel = ?4 AND state = 'pending' AND code = upper(?5) "
	    "AND expires_ms > ?2 RETURNING peer")) == NULL)
		goto fail;
	sqlite3_bind_text(st, 1, by, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, wall_ms());
	sqlite3_bind_int64(st, 3, wall_ms() + DENY_MS);
	sqlite3_bind_text(st, 4, channel, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, code, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(target, sizeof(target), "%s:%s", channel,
		    sqlite3_column_text(st, 0));
		n = 1;
	} else
		n = 0;
	while (sqlite3_step(st) == SQLITE_ROW)
		;
	sqlite3_reset(st);
	if (n == 1) {
		audit_add(by, "", "pairing.deny", target, code);
		return 0;
	}
	snprintf(err, errsz, "no pending pairing code %s on channel %s "
	    "(codes last an hour: `pincer pairing list`)", code, channel);
	return -1;
fail:
	snprintf(err, errsz, "the store failed: %s", sqlite3_errmsg(db));
	return -2;
}

/* Pending codes (unexpired), people denied lately and approved peers;
 * channel NULL: all. */
json_t *
chan_pair_list(const char *channel)
{
	sqlite3_stmt	*st;
	json_t		*a = json_array();

	if ((st = store_stmt("SELECT channel, peer, name, state, code, "
	    "created_ms, expires_ms, decided_by FROM channel_peers WHERE "
	    "(?1 IS NULL OR channel = ?1) AND (state = 'approved' OR "
	    "expires_ms > ?2) ORDER BY channel, state DESC, created_ms")) ==
	    NULL)
		return a;
	if (channel != NULL)
		sqlite3_bind_text(st, 1, channel, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, wall_ms());
	while (sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:s?, "
		    "s:I, s:I, s:s?}", "channel", sqlite3_column_text(st, 0),
		    "peer", sqlite3_column_text(st, 1), "name",
		    sqlite3_column_text(st, 2), "state",
		    sqlite3_column_text(st, 3), "code",
		    sqlite3_column_text(st, 4), "created_ms",
		    (json_int_t)sqlite3_column_int64(st, 5), "expires_ms",
		    (json_int_t)sqlite3_column_int64(st, 6), "decided_by",
		    sqlite3_column_text(st, 7)));
	sqlite3_reset(st);
	return a;
}

/* `pincer pairing list [CHANNEL] | approve|deny CHANNEL CODE` */
int
cli_pairing(const struct config_overrides *ov, int argc, char **argv)
{
	const char	*sub = argc > 0 ? argv[0] : "";
	char		 err[512], *s;
	json_t		*list;
	int		 rc = 1;

	if (!(!strcmp(sub, "list") && argc <= 2) &&
	    !(!strcmp(sub, "approve") && argc == 3) &&
	    !(!strcmp(sub, "deny") && argc == 3)) {
		fprintf(stderr, "usage: pincer pairing list [CHANNEL] | "
		    "approve|deny CHANNEL CODE\n");
		return 2;
	}
	if (cli_store_open(ov) == -1)
		return 1;
	if (!strcmp(sub, "list")) {
		list = chan_pair_list(argc == 2 ? argv[1] : NULL);
		s = json_dumps(list, JSON_INDENT(2));
		printf("%s\n", s != NULL ? s : "[]");
		free(s);
		json_decref(list);
		rc = 0;
	} else if (!strcmp(sub, "deny")) {
		if (chan_pair_deny(argv[1], argv[2], "cli", err,
		    sizeof(err)) < 0)
			fprintf(stderr, "pincer pairing deny: %s\n", err);
		else {
			printf("denied: the sender of %s gets no new code "
			    "for a day\n", argv[2]);
			rc = 0;
		}
	} else if (chan_pair_approve(argv[1], argv[2], "cli", err,
	    sizeof(err)) == -1)
		fprintf(stderr, "pincer pairing approve: %s\n", err);
	else {
		printf("approved: the sender of %s may talk on %s\n", argv[2],
		    argv[1]);
		rc = 0;
	}
	cli_store_close();
	return rc;
}

/* GET /api/v1/pairing[?channel=NAME] */
void
api_pairing_list(struct http_req *req)
{
	json_t	*o = json_object();

	json_object_set_new(o, "peers", chan_pair_list(http_req_query(req,
	    "channel")));
	http_reply_json(req, 200, o);
}

/* POST /api/v1/pairing/{channel}/approve|deny {"code": "…"} */
static void
pairing_decide(struct http_req *req, bool approve)
{
	const char	*body, *code;
	size_t		 len;
	json_t		*j;
	char		 err[512], channel[64];
	int		 rc;

	snprintf(channel, sizeof(channel), "%.*s", (int)strcspn(
	    http_req_param(req), "/"), http_req_param(req));
	http_req_body(req, &body, &len);
	j = json_loadb(body != NULL ? body : "", len, 0, NULL);
	if ((code = json_string_value(json_object_get(j, "code"))) == NULL) {
		http_error(req, 400, "bad_request", "the body must be "
		    "{\"code\": \"…\"}");
		json_decref(j);
		return;
	}
	rc = approve ? chan_pair_approve(channel, code,
	    http_req_identity(req)->user, err, sizeof(err)) :
	    chan_pair_deny(channel, code, http_req_identity(req)->user, err,
	    sizeof(err));
	if (rc == -2)
		http_error(req, 500, "store_failed", "%s", err);
	else if (rc == -1)
		http_error(req, 404, "no_such_code", "%s", err);
	else
		http_json(req, 200, approve ? "{\"approved\":true}" :
		    "{\"denied\":true}");
	json_decref(j);
}

void
api_pairing_approve(struct http_req *req)
{
	pairing_decide(req, true);
}

void
api_pairing_deny(struct http_req *req)
{
	pairing_decide(req, false);
}

/* A message to a peer outside any turn (in the caller's transaction). */
static int
pair_reply(const char *channel, const char *owner, const char *chat,
    const char *ref, const char *text)
{
	sqlite3_stmt	*st;
	char		 conv[512];
	long long	 now = wall_ms();
	int		 rc;

	snprintf(conv, sizeof(conv), "%s:%s", channel, chat);
	if ((st = store_stmt("INSERT INTO conversations (id, channel, peer, "
	    "thread, owner, sandbox, created_ms, updated_ms) VALUES (?1, ?2, "
	    "?3, '', ?5, '', ?4, ?4) ON CONFLICT (id) DO NOTHING")) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, conv, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, channel, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, chat, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now);
	sqlite3_bind_text(st, 5, owner, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_reset(st);
	/* ref: the stranger's message, so a kind can answer it there (a
	 * Discord /ask gets its code as the interaction's response). */
	if (rc == -1 || (st = store_stmt("INSERT INTO outbox (conversation, "
	    "inbox_id, kind, text, created_ms, state, ref) VALUES (?, 0, "
	    "'notice', ?, ?, 'pending', nullif(?, ''))")) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, conv, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now);
	sqlite3_bind_text(st, 4, ref != NULL ? ref : "", -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_reset(st);
	return rc;
}

/* No 0/O, 1/I/L: a code is read aloud or typed from a phone. */
static void
new_code(char out[CODE_LEN + 1])
{
	static const char	 abc[] = "ABCDEFGHJKMNPQRSTUVWXYZ23456789";
	unsigned char		 r[CODE_LEN];
	size_t			 i;

	RAND_bytes(r, sizeof(r));
	for (i = 0; i < CODE_LEN; i++)
		out[i] = abc[r[i] % (sizeof(abc) - 1)];
	out[CODE_LEN] = '\0';
}

static long long
wall_ms(void)
{
	return now_wall_ms();
}
