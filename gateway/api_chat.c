/* SPDX-License-Identifier: MIT */
/*
 * api_chat.c: the API chat channel. POST /api/v1/chat puts a message in
 * the inbox and answers a Server-Sent Events stream of the turn that
 * answers it (its text as it comes, its tool calls, then the reply or
 * the error); the conversations and their messages can be read back,
 * and a running turn stopped.
 * A client that goes away loses nothing: the turn goes on and its reply
 * is in the conversation's messages.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>
#include <sqlite3.h>

#include "pincer.h"

#define TEXT_MAX	(64 * 1024)
#define NAME_CHARS	"abcdefghijklmnopqrstuvwxyz" \
			"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"

/* One client's stream: filled by a dispatcher worker, read by libmicrohttpd. */
struct chat {
	struct MHD_Connection	*conn;
	struct dispatch_sub	*sub;
	struct buf		 out;
	size_t			 off;
	bool			 done;		/* the end is in */
	bool			 parked;
	bool			 gone;		/* response freed */
};

static pthread_mutex_t	 chat_lock = PTHREAD_MUTEX_INITIALIZER;

static void	 on_event(void *, const char *json, bool last);
static ssize_t	 reader(void *, uint64_t, char *, size_t);
static void	 reader_free(void *);
static void	 sse_event(struct buf *, const char *type, const char *json);
static bool	 may_read(struct http_req *, const char *conv);

void
api_chat(struct http_req *r)
{
	const struct identity	*id = http_req_identity(r);
	const char		*body, *name, *text;
	size_t			 len;
	json_t			*in, *att, *first;
	json_error_t		 je;
	char			 conv[256], why[256], *s;
	struct dispatch_msg	 m;
	struct MHD_Response	*resp;
	struct chat		*ch;
	long long		 msg;

	http_req_body(r, &body, &len);
	if ((in = json_loadb(body, len, 0, &je)) == NULL ||
	    !json_is_object(in)) {
		http_error(r, 400, "bad_json", "the body is not a JSON "
		    "object%s%s", in == NULL ? ": " : "", in == NULL ?
		    je.text : "");
		json_decref(in);
		return;
	}
	name = json_string_value(json_object_get(in, "conversation"));
	text = json_string_value(json_object_get(in, "text"));
	att = json_object_get(in, "attachments");
	if (name == NULL)
		name = "main";
	if (*name == '\0' || strlen(name) > 64 ||
	    strspn(name, NAME_CHARS) != strlen(name)) {
		http_error(r, 400, "bad_request", "\"conversation\" is a "
		    "name of 1 to 64 letters, digits, '.', '_' or '-'");
		json_decref(in);
		return;
	}
	if (text == NULL || *text == '\0' || strlen(text) > TEXT_MAX ||
	    (att != NULL && !json_is_array(att))) {
		http_error(r, 400, "bad_request", "send {\"text\": "
		    "\"...\"} (up to %d bytes), with \"conversation\" and "
		    "\"attachments\" "
		    "(an array) if you like", TEXT_MAX);
		json_decref(in);
		return;
	}
	if ((ch = calloc(1, sizeof(*ch))) == NULL) {
		json_decref(in);
		http_error(r, 500, "internal", "out of memory");
		return;
	}
	buf_init(&ch->out, (size_t)64 << 20);
	ch->conn = http_req_conn(r);
	snprintf(conv, sizeof(conv), "api:%s:%s", id->user, name);
	memset(&m, 0, sizeof(m));
	m.conversation = conv;
	m.channel = "api";
	m.peer = id->user;
	m.owner = id->user;
	m.sender = id->user;
	m.text = text;
	m.attachments = att;
	/* Not under chat_lock: the dispatcher calls on_event under its own
	 * lock, which would be the other order. */
	if ((msg = dispatch_submit(&m, on_event, ch, &ch->sub, why,
	    sizeof(why))) == -1) {
		json_decref(in);
		buf_free(&ch->out);
		free(ch);
		http_error(r, 503, "unavailable", "%s", why);
		return;
	}
	first = json_pack("{s:s, s:I, s:s}", "type", "accepted", "message_id",
	    (json_int_t)msg, "conversation", conv);
	s = json_dumps(first, JSON_COMPACT);
	json_decref(first);
	/* The stream's first event; any of the turn's that came first (a
	 * quick turn) stay after it. */
	pthread_mutex_lock(&chat_lock);
	{
		struct buf	 head;

		buf_init(&head, (size_t)64 << 20);
		sse_event(&head, "accepted", s);
		buf_append(&head, ch->out.data, ch->out.len);
		buf_free(&ch->out);
		ch->out = head;
	}
	pthread_mutex_unlock(&chat_lock);
	free(s);
	json_decref(in);
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096,
	    reader, ch, reader_free);
	if (resp == NULL) {
		reader_free(ch);
		http_error(r, 500, "internal", "out of memory");
		return;
	}
	MHD_add_response_header(resp, "Content-Type",
	    "text/event-stream; charset=utf-8");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	http_reply(r, 200, resp);
}

/* A dispatcher worker (its lock held): one event of the turn. */
static void
on_event(void *arg, const char *json, bool last)
{
	struct chat	*ch = arg;
	json_t		*j = json_loads(json, 0, NULL);
	const char	*type = json_string_value(json_object_get(j, "type"));

	pthread_mutex_lock(&chat_lock);
	if (!ch->gone) {
		sse_event(&ch->out, type != NULL ? type : "event", json);
		if (last) {
			ch->done = true;
			ch->sub = NULL;	/* the dispatcher lets go */
		}
		if (ch->parked) {
			ch->parked = false;
			http_conn_resume(ch->conn);
		}
	}
	pthread_mutex_unlock(&chat_lock);
	json_decref(j);
}

static ssize_t
reader(void *arg, uint64_t pos, char *dst, size_t max)
{
	struct chat	*ch = arg;
	size_t		 n;

	pthread_mutex_lock(&chat_lock);
	if (ch->out.len > ch->off) {
		n = ch->out.len - ch->off < max ? ch->out.len - ch->off : max;
		memcpy(dst, ch->out.data + ch->off, n);
		ch->off += n;
		if (ch->off == ch->out.len)
			ch->off = ch->out.len = 0;
		pthread_mutex_unlock(&chat_lock);
		return (ssize_t)n;
	}
	if (ch->done) {
		pthread_mutex_unlock(&chat_lock);
		return MHD_CONTENT_READER_END_OF_STREAM;
	}
	ch->parked = true;
	MHD_suspend_connection(ch->conn);
	pthread_mutex_unlock(&chat_lock);
	return 0;
}

/* The stream is over, or its client went: the message's turn goes on. */
static void
reader_free(void *arg)
{
	struct chat		*ch = arg;
	struct dispatch_sub	*sub;

	pthread_mutex_lock(&chat_lock);
	ch->gone = true;
	sub = ch->sub;
	ch->sub = NULL;
	pthread_mutex_unlock(&chat_lock);
	dispatch_unsubscribe(sub);
	buf_free(&ch->out);
	free(ch);
}

static void
sse_event(struct buf *b, const char *type, const char *json)
{
	buf_printf(b, "event: %s\ndata: %s\n\n", type, json);
}

/* GET /api/v1/conversations: the caller's (everyone's for an admin). */
void
api_conversations(struct http_req *r)
{
	const struct identity	*id = http_req_identity(r);
	sqlite3_stmt		*st;
	json_t			*a = json_array();
	bool			 all = id->role >= ROLE_ADMIN &&
				    http_req_query(r, "all") != NULL;

	st = store_stmt("SELECT c.id, c.channel, c.peer, c.owner, c.sandbox, "
	    "c.created_ms, c.updated_ms, (SELECT count(*) FROM inbox i "
	    "WHERE i.conversation = c.id), (SELECT count(*) FROM inbox i "
	    "WHERE i.conversation = c.id AND i.state IN ('queued', "
	    "'running')) FROM conversations c WHERE ? OR c.owner = ? "
	    "ORDER BY c.updated_ms DESC LIMIT 500");
	if (st == NULL) {
		json_decref(a);
		http_error(r, 500, "internal", "the store failed");
		return;
	}
	sqlite3_bind_int(st, 1, all);
	sqlite3_bind_text(st, 2, id->user, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:s, "
		    "s:I, s:I, s:I, s:I}",
		    "id", sqlite3_column_text(st, 0),
		    "channel", sqlite3_column_text(st, 1),
		    "peer", sqlite3_column_text(st, 2),
		    "owner", sqlite3_column_text(st, 3),
		    "sandbox", sqlite3_column_text(st, 4),
		    "created_ms", (json_int_t)sqlite3_column_int64(st, 5),
		    "updated_ms", (json_int_t)sqlite3_column_int64(st, 6),
		    "messages", (json_int_t)sqlite3_column_int64(st, 7),
		    "pending", (json_int_t)sqlite3_column_int64(st, 8)));
	sqlite3_reset(st);
	http_reply_json(r, 200, json_pack("{s:o}", "conversations", a));
}

/* GET /api/v1/conversations/{id}/messages: in order, both ways. */
void
api_conversation_messages(struct http_req *r)
{
	const char	*p = http_req_param(r);
	size_t		 n = p != NULL ? strcspn(p, "/") : 0;
	char		 conv[256];
	sqlite3_stmt	*st;
	json_t		*a;

	/* The {id} segment runs to the next '/'. */
	snprintf(conv, sizeof(conv), "%.*s", (int)(n < sizeof(conv) ? n : 0),
	    p != NULL ? p : "");
	if (!may_read(r, conv))
		return;
	st = store_stmt("SELECT 'user', id, sender, text, state, received_ms, "
	    "NULL, NULL, NULL FROM inbox WHERE conversation = ?1 UNION ALL "
	    "SELECT kind, id, 'agent', text, NULL, created_ms, inbox_id, "
	    "attachments, tools FROM outbox WHERE conversation = ?1 "
	    "ORDER BY 6, 1 DESC");
	if (st == NULL) {
		http_error(r, 500, "internal", "the store failed");
		return;
	}
	a = json_array();
	sqlite3_bind_text(st, 1, conv, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char	*role = (const char *)
				    sqlite3_column_text(st, 0);
		json_t		*m = json_pack("{s:s, s:I, s:s, s:s, "
				    "s:I}",
				    "role", !strcmp(role, "user") ? "user" :
				    "agent", "id",
				    (json_int_t)sqlite3_column_int64(st, 1),
				    "from", sqlite3_column_text(st, 2),
				    "text", sqlite3_column_text(st, 3),
				    "time_ms",
				    (json_int_t)sqlite3_column_int64(st, 5));

		if (!strcmp(role, "user"))
			json_object_set_new(m, "state", json_string(
			    (const char *)sqlite3_column_text(st, 4)));
		else {
			json_object_set_new(m, "kind", json_string(role));
			json_object_set_new(m, "in_reply_to", json_integer(
			    sqlite3_column_int64(st, 6)));
			json_object_set_new(m, "attachments", json_loads(
			    (const char *)sqlite3_column_text(st, 7), 0,
			    NULL));
			/* The turn's tool calls, as the stream showed them. */
			json_object_set_new(m, "tools", json_loads(
			    (const char *)sqlite3_column_text(st, 8), 0,
			    NULL));
		}
		json_array_append_new(a, m);
	}
	sqlite3_reset(st);
	http_reply_json(r, 200, json_pack("{s:s, s:o}", "conversation", conv,
	    "messages", a));
}

/*
 * GET /api/v1/conversations/{id}/attachments/{reply}/{n}: the n-th file a
 * reply named, read from the conversation's sandbox (pincer-init's files
 * API, through the relay). Only files a reply named can be read this way.
 */
void
api_conversation_attachment(struct http_req *r)
{
	const char	*p = http_req_param(r), *rest, *path;
	size_t		 n = p != NULL ? strcspn(p, "/") : 0;
	char		 conv[256], sandbox[SBX_NAME_MAX + 1], *end;
	long long	 reply;
	long		 k;
	sqlite3_stmt	*st;
	json_t		*att = NULL;
	struct sbx_ref	 ref;
	struct buf	 url;

	snprintf(conv, sizeof(conv), "%.*s", (int)(n < sizeof(conv) ? n : 0),
	    p != NULL ? p : "");
	if (!may_read(r, conv))
		return;
	rest = p + n + strlen("/attachments/");
	reply = strtoll(rest, &end, 10);
	k = *end == '/' ? strtol(end + 1, &end, 10) : -1;
	if (*end != '\0' || k < 0 || (st = store_stmt("SELECT o.attachments, "
	    "c.sandbox FROM outbox o JOIN conversations c ON c.id = "
	    "o.conversation WHERE o.id = ? AND o.conversation = ?")) == NULL) {
		http_error(r, 404, "not_found", "no such attachment");
		return;
	}
	sandbox[0] = '\0';
	sqlite3_bind_int64(st, 1, reply);
	sqlite3_bind_text(st, 2, conv, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		att = json_loads((const char *)sqlite3_column_text(st, 0), 0,
		    NULL);
		snprintf(sandbox, sizeof(sandbox), "%s",
		    sqlite3_column_text(st, 1));
	}
	sqlite3_reset(st);
	path = json_string_value(json_object_get(json_array_get(att,
	    (size_t)k), "path"));
	if (path == NULL || *path != '/') {
		json_decref(att);
		http_error(r, 404, "not_found", "no such attachment");
		return;
	}
	buf_init(&url, 8192);
	buf_puts(&url, "/files");
	if (url_encode(&url, path, "/") == -1 ||
	    sbx_acquire(sandbox, &ref) != SBX_OK) {
		json_decref(att);
		buf_free(&url);
		http_error(r, 503, "unavailable", "the conversation's sandbox "
		    "cannot be reached");
		return;
	}
	json_decref(att);
	relay_forward(r, &ref, url.data, "");
	buf_free(&url);
}

/*
 * POST /api/v1/conversations/{id}/stop: the running turn's agent is
 * ended and its messages answered "Stopped by NAME" (done: nothing runs
 * them again, not even after a restart); its stream ends with that.
 */
void
api_conversation_stop(struct http_req *r)
{
	const struct identity	*id = http_req_identity(r);
	const char		*p = http_req_param(r);
	size_t			 n = p != NULL ? strcspn(p, "/") : 0;
	char			 conv[256];
	sqlite3_stmt		*st;
	json_t			*ids = json_array();

	snprintf(conv, sizeof(conv), "%.*s", (int)(n < sizeof(conv) ? n : 0),
	    p != NULL ? p : "");
	if (!may_read(r, conv)) {
		json_decref(ids);
		return;
	}
	if ((st = store_stmt("SELECT id FROM inbox WHERE conversation = ? "
	    "AND state = 'running' ORDER BY id")) == NULL) {
		json_decref(ids);
		http_error(r, 500, "internal", "the store failed");
		return;
	}
	sqlite3_bind_text(st, 1, conv, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(ids, json_integer(
		    sqlite3_column_int64(st, 0)));
	sqlite3_reset(st);
	if (json_array_size(ids) == 0 || dispatch_cancel(conv, id->user) ==
	    -1) {
		json_decref(ids);
		http_error(r, 409, "nothing_running", "no turn is running in "
		    "this conversation (it may have just ended)");
		return;
	}
	audit_add(id->user, http_req_ip(r), "chat.stop", conv, NULL);
	http_reply_json(r, 200, json_pack("{s:s, s:s, s:o}", "status",
	    "stopping", "conversation", conv, "messages", ids));
}

/* The conversation exists and is the caller's, or the caller is an admin;
 * otherwise 404 (whether it exists is not told). */
static bool
may_read(struct http_req *r, const char *conv)
{
	const struct identity	*id = http_req_identity(r);
	sqlite3_stmt		*st;
	bool			 ok = false;

	if ((st = store_stmt("SELECT owner FROM conversations WHERE id = ?")) !=
	    NULL) {
		sqlite3_bind_text(st, 1, conv, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			ok = id->role >= ROLE_ADMIN || !strcmp((const char *)
			    sqlite3_column_text(st, 0), id->user);
		sqlite3_reset(st);
	}
	if (!ok)
		http_error(r, 404, "not_found", "no such conversation");
	return ok;
}
