/* SPDX-License-Identifier: MIT */
/*
 * chan_out.c: replies leave the outbox. Each channel has one delivery
 * thread; it takes the oldest pending reply of each conversation (so a
 * conversation's replies arrive in order), sends it part by part through
 * the kind's ops, and records each part the platform took at once. So a
 * restart sends what is left and never a recorded part again; the one
 * window for a duplicate is a crash between the platform's answer and
 * that record (README, Channels: delivery). A platform that says "slow
 * down" (429, Retry-After) pauses the whole channel for as long as it
 * asked; other failures back off per reply, and a reply that cannot be
 * sent (the platform refuses it) is marked failed with the reason.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "pincer.h"

#define IDLE_MS		1000	/* look again (a CLI may have added rows) */
#define MAX_ATTEMPTS	12	/* about an hour and a half of backoff */
#define BACKOFF_MS	1000
#define BACKOFF_MAX_MS	(10 * 60 * 1000)
#define PARTS_MAX	64	/* a reply longer than this many parts is cut */
#define FILE_MAX	(50L << 20)
#define PLACEHOLDER	"\xe2\x80\xa6"	/* U+2026, "…" */

/* A turn running in one of this channel's conversations. */
struct chan_work {
	char		 conv[512];
	char		 chat[CHAN_ID_MAX];
	char		 thread[CHAN_ID_MAX];
	char		 ref[CHAN_ID_MAX];
	bool		 on;		/* false: to be told it ended */
	long long	 next_ms;	/* when to say it again */
	struct chan_work *next;
};

/* One pending reply. */
struct reply {
	long long	 id;
	char		 conv[512];
	char		 chat[CHAN_ID_MAX];
	char		 thread[CHAN_ID_MAX];
	char		 ref[CHAN_ID_MAX];
	char		 event_id[CHAN_ID_MAX + 64];
	char		 sandbox[SBX_NAME_MAX + 1];
	char		*text;		/* owned */
	json_t		*files;		/* owned */
	int		 parts_sent;
	int		 attempts;
};

static void	*deliver_loop(void *);
static void	 placeholder(struct channel *, const struct chan_out *);
static enum chan_status first_part(struct channel *,
		    const struct chan_out *, const char *,
		    struct chan_result *);
static void	 working(struct channel *, long long now);
static long long next_reply(struct channel *, struct reply *);
static void	 deliver(struct channel *, struct reply *);
static int	 send_file(struct channel *, const struct chan_out *,
		    const struct reply *, const json_t *,
		    struct chan_result *, enum chan_status *);
static int	 read_sandbox_file(const char *sandbox, const char *path,
		    struct buf *, char *, size_t);
static void	 safe_name(const char *, size_t, char *, size_t);
static int	 write_sandbox_file(const char *, const char *,
		    const struct buf *, char *, size_t);
static int	 record_part(long long id, int parts, const char *msgid);
static void	 record_end(long long id, const char *state, const char *err);
static int	 record_retry(long long id, int attempts, long long next,
		    const char *err);
static size_t	 split(const char *, size_t max, size_t *offs, size_t *lens,
		    size_t n);
static const char *mime_of(const char *name);
static long long wall_ms(void);

int
chan_out_start(struct channel *ch)
{
	pthread_mutex_init(&ch->out_lock, NULL);
	pthread_cond_init(&ch->out_wake, NULL);
	ch->out_quit = false;
	if (pthread_create(&ch->out_thread, NULL, deliver_loop, ch) != 0)
		return -1;
	ch->out_running = true;
	return 0;
}

void
chan_out_stop(struct channel *ch)
{
	struct chan_work	*w;

	if (!ch->out_running)
		return;
	pthread_mutex_lock(&ch->out_lock);
	ch->out_quit = true;
	pthread_cond_signal(&ch->out_wake);
	pthread_mutex_unlock(&ch->out_lock);
	pthread_join(ch->out_thread, NULL);
	ch->out_running = false;
	while ((w = ch->work) != NULL) {
		ch->work = w->next;
		free(w);
	}
	pthread_cond_destroy(&ch->out_wake);
	pthread_mutex_destroy(&ch->out_lock);
}

/* dispatch.c: a reply is in the outbox; every delivery thread looks. */
void
channel_notify(void)
{
	size_t		 i;
	struct channel	*ch;

	for (i = 0; (ch = channel_at(i)) != NULL; i++) {
		pthread_mutex_lock(&ch->out_lock);
		pthread_cond_signal(&ch->out_wake);
		pthread_mutex_unlock(&ch->out_lock);
	}
}

/* dispatch.c: a turn began or ended in a conversation (typing, …). */
void
channel_turn(const char *conv, bool start)
{
	struct channel		*ch;
	struct chan_work	*w, **wp;
	sqlite3_stmt		*st;
	char			 name[64];

	snprintf(name, sizeof(name), "%.*s", (int)strcspn(conv, ":"), conv);
	if ((ch = channel_by_name(name)) == NULL ||
	    (ch->ops->working == NULL && !ch->progress_msg))
		return;
	pthread_mutex_lock(&ch->out_lock);
	for (wp = &ch->work; (w = *wp) != NULL; wp = &w->next)
		if (!strcmp(w->conv, conv))
			break;
	if (w == NULL && start && (w = calloc(1, sizeof(*w))) != NULL) {
		snprintf(w->conv, sizeof(w->conv), "%s", conv);
		*wp = w;
	}
	if (w != NULL) {
		w->on = start;
		w->next_ms = 0;
	}
	pthread_mutex_unlock(&ch->out_lock);
	if (w == NULL || !start ||
	    (st = store_stmt("SELECT c.peer, c.thread, i.ref FROM "
	    "conversations c LEFT JOIN inbox i ON i.id = (SELECT max(id) "
	    "FROM inbox WHERE conversation = c.id) WHERE c.id = ?")) == NULL)
		return;
	sqlite3_bind_text(st, 1, conv, -1, SQLITE_STATIC);
	pthread_mutex_lock(&ch->out_lock);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(w->chat, sizeof(w->chat), "%s",
		    sqlite3_column_text(st, 0));
		snprintf(w->thread, sizeof(w->thread), "%s",
		    sqlite3_column_text(st, 1));
		snprintf(w->ref, sizeof(w->ref), "%s",
		    sqlite3_column_text(st, 2) ? (const char *)
		    sqlite3_column_text(st, 2) : "");
	}
	pthread_cond_signal(&ch->out_wake);
	pthread_mutex_unlock(&ch->out_lock);
	sqlite3_reset(st);
}

static void *
deliver_loop(void *arg)
{
	struct channel	*ch = arg;
	struct reply	 r;
	struct timespec	 ts;
	long long	 now, due, wake_at;

	/* A part's record lost to a power cut: sent again (the window). */
	store_lazy_commits();
	pthread_mutex_lock(&ch->out_lock);
	while (!ch->out_quit) {
		pthread_mutex_unlock(&ch->out_lock);
		now = wall_ms();
		working(ch, now);
		wake_at = now + IDLE_MS;
		memset(&r, 0, sizeof(r));
		if (now >= ch->pause_until &&
		    (due = next_reply(ch, &r)) != -1) {
			if (due <= now) {
				deliver(ch, &r);
				wake_at = now;
			} else if (due < wake_at)
				wake_at = due;
		} else if (ch->pause_until > now && ch->pause_until < wake_at)
			wake_at = ch->pause_until;
		free(r.text);
		json_decref(r.files);
		pthread_mutex_lock(&ch->out_lock);
		if (ch->out_quit || wake_at <= wall_ms())
			continue;
		for (struct chan_work *w = ch->work; w != NULL; w = w->next)
			if (w->next_ms < wake_at)
				wake_at = w->next_ms > now ? w->next_ms : now;
		ts.tv_sec = (time_t)(wake_at / 1000);
		ts.tv_nsec = (long)(wake_at % 1000) * 1000000;
		pthread_cond_timedwait(&ch->out_wake, &ch->out_lock, &ts);
	}
	pthread_mutex_unlock(&ch->out_lock);
	return NULL;
}

/* Typing and reactions: said when due, and once more when it ends. */
static void
working(struct channel *ch, long long now)
{
	struct chan_work	*w, **wp, cur;
	struct chan_out		 o;

	for (;;) {
		pthread_mutex_lock(&ch->out_lock);
		for (wp = &ch->work; (w = *wp) != NULL; wp = &w->next)
			if (w->next_ms <= now && (w->chat[0] != '\0' ||
			    !w->on))
				break;
		if (w == NULL) {
			pthread_mutex_unlock(&ch->out_lock);
			return;
		}
		cur = *w;
		if (!w->on) {
			*wp = w->next;
			free(w);
		} else
			w->next_ms = ch->ops->working_every_ms > 0 ? now +
			    ch->ops->working_every_ms : (long long)1 << 62;
		pthread_mutex_unlock(&ch->out_lock);
		if (cur.chat[0] == '\0')
			continue;
		memset(&o, 0, sizeof(o));
		o.conversation = cur.conv;
		o.chat = cur.chat;
		o.thread = cur.thread;
		o.ref = cur.ref;
		o.event_id = "";
		if (cur.on && ch->progress_msg)
			placeholder(ch, &o);
		if (ch->ops->working != NULL)
			ch->ops->working(ch, &o, cur.on);
	}
}

/*
 * "progress": "message": a message says the agent is at work, and the
 * reply's first part replaces it (ops->update). Its id is kept in the
 * store, so a turn run again after a restart reuses it.
 */
static void
placeholder(struct channel *ch, const struct chan_out *o)
{
	struct chan_result	 res;
	char			 key[600], id[CHAN_ID_MAX];

	snprintf(key, sizeof(key), "placeholder:%s", o->conversation);
	if (channel_state_get(ch, key, id, sizeof(id)) == 0)
		return;
	memset(&res, 0, sizeof(res));
	if (ch->ops->send_text(ch, o, PLACEHOLDER, &res) == CHAN_SENT &&
	    res.message_id[0] != '\0')
		channel_state_set(ch, key, res.message_id);
}

/* The reply's first part, over the placeholder if there is one. */
static enum chan_status
first_part(struct channel *ch, const struct chan_out *o, const char *text,
    struct chan_result *res)
{
	enum chan_status	 s;
	char			 key[600], id[CHAN_ID_MAX];

	snprintf(key, sizeof(key), "placeholder:%s", o->conversation);
	if (!ch->progress_msg || channel_state_get(ch, key, id,
	    sizeof(id)) == -1)
		return ch->ops->send_text(ch, o, text, res);
	s = ch->ops->update(ch, o, id, text, res);
	if (s == CHAN_FAILED) {
		/* Gone (deleted, too old to edit): a message of its own. */
		memset(res, 0, sizeof(*res));
		s = ch->ops->send_text(ch, o, text, res);
	} else if (s == CHAN_SENT && res->message_id[0] == '\0')
		snprintf(res->message_id, sizeof(res->message_id), "%s", id);
	if (s == CHAN_SENT)
		channel_state_del(ch, key);
	return s;
}

/* The oldest pending reply of a conversation of this channel: when it
 * is due, or -1 for none. */
static long long
next_reply(struct channel *ch, struct reply *r)
{
	sqlite3_stmt	*st;
	long long	 due = -1;

	if ((st = store_stmt("SELECT o.id, o.conversation, c.peer, "
	    "c.thread, coalesce(o.ref, i.ref, ''), coalesce(i.event_id, ''), "
	    "c.sandbox, o.text, o.attachments, o.parts_sent, o.attempts, "
	    "o.next_ms FROM outbox o JOIN conversations c ON c.id = "
	    "o.conversation LEFT JOIN inbox i ON i.id = o.inbox_id WHERE "
	    "o.state = 'pending' AND c.channel = ?1 AND NOT EXISTS (SELECT 1 "
	    "FROM outbox p WHERE p.state = 'pending' AND p.conversation = "
	    "o.conversation AND p.id < o.id) ORDER BY o.next_ms, o.id "
	    "LIMIT 1")) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, ch->name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		r->id = sqlite3_column_int64(st, 0);
		snprintf(r->conv, sizeof(r->conv), "%s",
		    sqlite3_column_text(st, 1));
		snprintf(r->chat, sizeof(r->chat), "%s",
		    sqlite3_column_text(st, 2));
		snprintf(r->thread, sizeof(r->thread), "%s",
		    sqlite3_column_text(st, 3));
		snprintf(r->ref, sizeof(r->ref), "%s",
		    sqlite3_column_text(st, 4));
		/* The kind's own id: what follows "NAME:". */
		snprintf(r->event_id, sizeof(r->event_id), "%s",
		    (const char *)sqlite3_column_text(st, 5) +
		    (strncmp((const char *)sqlite3_column_text(st, 5),
		    ch->name, strlen(ch->name)) == 0 ? strlen(ch->name) + 1 :
		    0));
		snprintf(r->sandbox, sizeof(r->sandbox), "%s",
		    sqlite3_column_text(st, 6));
		r->text = strdup((const char *)sqlite3_column_text(st, 7));
		r->files = json_loads((const char *)sqlite3_column_text(st, 8),
		    0, NULL);
		r->parts_sent = sqlite3_column_int(st, 9);
		r->attempts = sqlite3_column_int(st, 10);
		due = sqlite3_column_int64(st, 11);
	}
	sqlite3_reset(st);
	if (due != -1 && r->text == NULL)
		due = -1;
	return due;
}

/*
 * The reply's steps are its text's parts, then its files; parts_sent
 * counts the steps done. Each is recorded as soon as it is done.
 */
static void
deliver(struct channel *ch, struct reply *r)
{
	size_t			 offs[PARTS_MAX], lens[PARTS_MAX], n, i;
	struct chan_out		 o;
	struct chan_result	 res;
	enum chan_status	 s = CHAN_SENT;
	char			*part, why[320];
	long long		 wait;

	n = split(r->text, ch->ops->max_text, offs, lens, PARTS_MAX);
	memset(&o, 0, sizeof(o));
	o.conversation = r->conv;
	o.chat = r->chat;
	o.thread = r->thread;
	o.ref = r->ref;
	o.event_id = r->event_id;
	o.outbox_id = r->id;
	for (i = (size_t)r->parts_sent; i < n + json_array_size(r->files) &&
	    s == CHAN_SENT; i++) {
		memset(&res, 0, sizeof(res));
		o.part = (int)i;
		if (i < n) {
			if ((part = strndup(r->text + offs[i], lens[i])) ==
			    NULL)
				return;
			s = i == 0 ? first_part(ch, &o, part, &res) :
			    ch->ops->send_text(ch, &o, part, &res);
			free(part);
		} else if (send_file(ch, &o, r, json_array_get(r->files, i -
		    n), &res, &s) == -1)
			s = CHAN_SENT;	/* unreadable: told, and passed */
		if (s == CHAN_SENT && record_part(r->id, (int)i + 1,
		    res.message_id) == -1)
			return;
	}
	if (s == CHAN_SENT) {
		channel_health(ch, CHAN_UP, NULL);
		/* No text to put over the placeholder: it says so. */
		if (n == 0 && (size_t)r->parts_sent == 0 && ch->progress_msg)
			first_part(ch, &o, "(done)", &res);
		record_end(r->id, "sent", NULL);
		return;
	}
	if (s == CHAN_FAILED || r->attempts + 1 >= MAX_ATTEMPTS) {
		log_warn("a reply could not be delivered", "channel=%s "
		    "conversation=%s error=%s", ch->name, r->conv, res.error);
		snprintf(why, sizeof(why), "a reply could not be delivered: "
		    "%s", res.error);
		channel_health(ch, CHAN_FAILURE, why);
		record_end(r->id, "failed", res.error);
		return;
	}
	wait = (long long)BACKOFF_MS << (r->attempts < 10 ? r->attempts : 10);
	if (wait > BACKOFF_MAX_MS)
		wait = BACKOFF_MAX_MS;
	wait = wait / 2 + rand() % (wait / 2 + 1);	/* jitter */
	if (res.retry_after_ms > 0) {
		/* The platform's limit is the channel's, not this reply's. */
		wait = res.retry_after_ms;
		ch->pause_until = wall_ms() + wait;
	}
	log_info("a reply will be sent again", "channel=%s conversation=%s "
	    "in_ms=%lld error=%s", ch->name, r->conv, wait, res.error);
	snprintf(why, sizeof(why), "a reply is waiting to be sent again: %s",
	    res.error);
	channel_health(ch, CHAN_FAILURE, why);
	/* Not recorded: the wait is kept in memory, not tried at once. */
	if (record_retry(r->id, r->attempts + 1, wall_ms() + wait,
	    res.error) == -1)
		ch->pause_until = wall_ms() + wait;
}

/* One file of the reply, read from the conversation's sandbox. -1: it
 * cannot be read (the chat is told so instead). */
static int
send_file(struct channel *ch, const struct chan_out *o, const struct reply *r,
    const json_t *f, struct chan_result *res, enum chan_status *s)
{
	struct chan_file	 cf;
	struct buf		 data;
	const char		*path = json_string_value(json_object_get(f,
				    "path"));
	const char		*name = json_string_value(json_object_get(f,
				    "name"));
	const char		*cap = json_string_value(json_object_get(f,
				    "caption"));
	char			 why[256], note[512];

	if (path == NULL)
		return -1;
	if (name == NULL)
		name = strrchr(path, '/') != NULL ? strrchr(path, '/') + 1 :
		    path;
	buf_init(&data, FILE_MAX);
	if (ch->ops->send_file == NULL) {
		snprintf(why, sizeof(why), "this channel cannot send files");
		goto fail;
	}
	if (read_sandbox_file(r->sandbox, path, &data, why, sizeof(why)) ==
	    -1)
		goto fail;
	memset(&cf, 0, sizeof(cf));
	cf.name = name;
	cf.mime = mime_of(name);
	cf.caption = cap != NULL ? cap : "";
	cf.data = data.data != NULL ? data.data : "";
	cf.len = data.len;
	*s = ch->ops->send_file(ch, o, &cf, res);
	buf_free(&data);
	return 0;
fail:
	buf_free(&data);
	log_warn("a reply's file was not sent", "channel=%s path=%s why=%s",
	    ch->name, path, why);
	snprintf(note, sizeof(note), "(The file %s could not be sent: %s.)",
	    name, why);
	*s = ch->ops->send_text(ch, o, note, res);
	return *s == CHAN_SENT ? 0 : -2;
}

/* GET /files/PATH on the sandbox's control socket (docs/sandbox-api.md). */
static int
read_sandbox_file(const char *sandbox, const char *path, struct buf *out,
    char *why, size_t whysz)
{
	struct sbx_ref	 ref;
	struct buf	 rq, in;
	char		 chunk[16384], *p;
	ssize_t		 n;
	int		 fd, status = 0, rc = -1;

	if (sbx_acquire(sandbox, &ref) != SBX_OK) {
		snprintf(why, whysz, "its sandbox is not available");
		return -1;
	}
	buf_init(&rq, 8192);
	buf_init(&in, FILE_MAX + 65536);
	buf_puts(&rq, "GET /files");
	url_encode(&rq, path, "/");
	buf_puts(&rq, " HTTP/1.1\r\nHost: sandbox\r\nConnection: close\r\n"
	    "\r\n");
	if ((fd = relay_connect(ref.control)) == -1) {
		snprintf(why, whysz, "cannot reach its sandbox");
		goto out;
	}
	if (send(fd, rq.data, rq.len, MSG_NOSIGNAL) == (ssize_t)rq.len)
		while ((n = recv(fd, chunk, sizeof(chunk), 0)) > 0 ||
		    (n == -1 && errno == EINTR))
			if (n > 0 && buf_append(&in, chunk, (size_t)n) == -1)
				break;
	close(fd);
	if (in.data == NULL || (p = strstr(in.data, "\r\n\r\n")) == NULL) {
		snprintf(why, whysz, "its sandbox did not answer");
		goto out;
	}
	status = atoi(in.data + 9);
	if (status != 200) {
		snprintf(why, whysz, "%s", status == 404 ? "no such file" :
		    "its sandbox refused to read it");
		goto out;
	}
	/* pincer-init answers Content-Length and Connection: close. */
	rc = buf_append(out, p + 4, in.len - (size_t)(p + 4 - in.data));
	if (rc == -1)
		snprintf(why, whysz, "it is too large");
out:
	sbx_release(&ref);
	buf_free(&rq);
	buf_free(&in);
	return rc;
}

/*
 * A turn's inbound attachments: each fetched from the platform by its
 * kind (which holds the token) and written to /workspace/inbox/ in the
 * sandbox; the agent reads a line per file after the messages' text.
 */
void
channel_attach(const char *conv, const char *control, const json_t *atts,
    char **text)
{
	struct channel	*ch;
	struct buf	 data, t;
	const json_t	*a;
	char		 name[64], path[160], why[256];
	size_t		 i;

	snprintf(name, sizeof(name), "%.*s", (int)strcspn(conv, ":"), conv);
	if ((ch = channel_by_name(name)) == NULL)
		return;
	buf_init(&t, (size_t)64 << 20);
	buf_puts(&t, *text);
	json_array_foreach(atts, i, a) {
		safe_name(json_string_value(json_object_get(a, "name")), i,
		    name, sizeof(name));
		snprintf(path, sizeof(path), "/workspace/inbox/%lld-%s",
		    wall_ms(), name);
		buf_init(&data, FILE_MAX);
		why[0] = '\0';
		if (ch->ops->fetch == NULL)
			snprintf(why, sizeof(why), "this channel cannot fetch "
			    "files");
		else if (ch->ops->fetch(ch, a, &data, why, sizeof(why)) == 0)
			write_sandbox_file(control, path, &data, why,
			    sizeof(why));
		else if (why[0] == '\0')
			snprintf(why, sizeof(why), "the platform did not give "
			    "it");
		if (why[0] == '\0')
			buf_printf(&t, "\n[a file came with the message: %s "
			    "(%zu bytes)]", path, data.len);
		else {
			buf_printf(&t, "\n[a file came with the message, %s, "
			    "but could not be fetched: %s]", name, why);
			log_warn("an attachment was not fetched", "channel=%s "
			    "why=%s", ch->name, why);
		}
		buf_free(&data);
	}
	if (t.data != NULL) {
		free(*text);
		*text = buf_steal(&t);
	}
	buf_free(&t);
}

/* A file name of the platform's, made safe for a path. */
static void
safe_name(const char *s, size_t i, char *out, size_t outsz)
{
	size_t	 n = 0;

	for (; s != NULL && *s != '\0' && n + 1 < outsz; s++, n++)
		out[n] = (isalnum((unsigned char)*s) || *s == '-' ||
		    *s == '_' || (*s == '.' && n > 0)) ? *s : '_';
	out[n] = '\0';
	if (n == 0)
		snprintf(out, outsz, "file-%zu", i);
}

/* PUT /files/PATH on a sandbox's control socket. */
static int
write_sandbox_file(const char *control, const char *path,
    const struct buf *data, char *why, size_t whysz)
{
	struct buf	 rq;
	char		 ans[512];
	ssize_t		 n;
	int		 fd, rc = -1;

	buf_init(&rq, 8192);
	buf_puts(&rq, "PUT /files");
	url_encode(&rq, path, "/");
	buf_printf(&rq, " HTTP/1.1\r\nHost: sandbox\r\nContent-Length: "
	    "%zu\r\nConnection: close\r\n\r\n", data->len);
	if ((fd = relay_connect(control)) == -1) {
		snprintf(why, whysz, "cannot reach the sandbox");
		buf_free(&rq);
		return -1;
	}
	if (send(fd, rq.data, rq.len, MSG_NOSIGNAL) == (ssize_t)rq.len &&
	    (data->len == 0 || send(fd, data->data, data->len,
	    MSG_NOSIGNAL) == (ssize_t)data->len) &&
	    (n = recv(fd, ans, sizeof(ans) - 1, 0)) > 12) {
		ans[n] = '\0';
		rc = atoi(ans + 9) == 201 ? 0 : -1;
	}
	close(fd);
	buf_free(&rq);
	if (rc == -1)
		snprintf(why, whysz, "the sandbox did not take it");
	return rc;
}

static int
record_part(long long id, int parts, const char *msgid)
{
	sqlite3_stmt	*st;
	int		 rc;

	if ((st = store_stmt("UPDATE outbox SET parts_sent = ?, platform_id "
	    "= coalesce(platform_id, nullif(?, '')) WHERE id = ?")) == NULL)
		return -1;
	sqlite3_bind_int(st, 1, parts);
	sqlite3_bind_text(st, 2, msgid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, id);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_reset(st);
	if (rc == -1)
		log_error("cannot record a sent part", "outbox=%lld %s", id,
		    sqlite3_errmsg(store_db()));
	return rc;
}

static void
record_end(long long id, const char *state, const char *err)
{
	sqlite3_stmt	*st;

	if ((st = store_stmt("UPDATE outbox SET state = ?, error = ?, "
	    "delivered_ms = CASE ? WHEN 'sent' THEN ? END WHERE id = ?")) ==
	    NULL)
		return;
	sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, err, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, wall_ms());
	sqlite3_bind_int64(st, 5, id);
	if (sqlite3_step(st) != SQLITE_DONE)
		log_error("cannot record a delivery", "outbox=%lld %s", id,
		    sqlite3_errmsg(store_db()));
	sqlite3_reset(st);
}

static int
record_retry(long long id, int attempts, long long next, const char *err)
{
	sqlite3_stmt	*st;
	int		 rc;

	if ((st = store_stmt("UPDATE outbox SET attempts = ?, next_ms = ?, "
	    "error = ? WHERE id = ?")) == NULL)
		return -1;
	sqlite3_bind_int(st, 1, attempts);
	sqlite3_bind_int64(st, 2, next);
	sqlite3_bind_text(st, 3, err, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, id);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_reset(st);
	if (rc == -1)
		log_error("cannot record a delivery's retry", "outbox=%lld %s",
		    id, sqlite3_errmsg(store_db()));
	return rc;
}

/* Bytes of the first max characters of s (UTF-8), at most len. */
static size_t
chars_to_bytes(const char *s, size_t len, size_t max)
{
	size_t	 i, chars = 0;

	for (i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80 && chars++ == max)
			return i;
	return len;
}

/*
 * The text cut into parts of at most max characters: at a paragraph if
 * one ends in the second half of the part, else a line, else a space,
 * else at a character's boundary. Returns the number of parts.
 */
static size_t
split(const char *s, size_t max, size_t *offs, size_t *lens, size_t n)
{
	size_t	 len = strlen(s), at = 0, k = 0, cut, j;
	const char *const seps[] = { "\n\n", "\n", " " };

	if (max == 0)
		max = 4000;
	while (at < len && k < n) {
		while (at < len && (s[at] == '\n' || s[at] == ' '))
			at++;
		if (at == len)
			break;
		cut = chars_to_bytes(s + at, len - at, max);
		if (at + cut < len)
			for (j = 0; j < 3; j++) {
				const char	*p = s + at + cut, *q = NULL;

				for (; p > s + at + cut / 2; p--)
					if (!strncmp(p, seps[j],
					    strlen(seps[j]))) {
						q = p;
						break;
					}
				if (q != NULL) {
					cut = (size_t)(q - (s + at));
					break;
				}
			}
		offs[k] = at;
		lens[k++] = cut;
		at += cut;
	}
	return k;
}

static const char *
mime_of(const char *name)
{
	static const char *const map[][2] = {
		{ ".png", "image/png" }, { ".jpg", "image/jpeg" },
		{ ".jpeg", "image/jpeg" }, { ".gif", "image/gif" },
		{ ".webp", "image/webp" }, { ".pdf", "application/pdf" },
		{ ".txt", "text/plain" }, { ".md", "text/markdown" },
		{ ".csv", "text/csv" }, { ".json", "application/json" },
		{ ".html", "text/html" }, { ".zip", "application/zip" },
		{ ".mp3", "audio/mpeg" }, { ".ogg", "audio/ogg" },
		{ ".mp4", "video/mp4" },
	};
	const char	*dot = strrchr(name, '.');
	size_t		 i;

	for (i = 0; dot != NULL && i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcasecmp(dot, map[i][0]))
			return map[i][1];
	return "application/octet-stream";
}

static long long
wall_ms(void)
{
	return now_wall_ms();
}
