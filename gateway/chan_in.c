/* SPDX-License-Identifier: MIT */
/*
 * chan_in.c: messages from the platforms into the inbox. A platform's
 * request is answered only once what it carried is on disk (or refused
 * by policy): nothing acknowledged is lost, and the platform's own event
 * id makes its retries harmless.
 *
 * On disk means a committed SQLite transaction (WAL, synchronous=FULL:
 * an fsync). One fsync per event would cap a small server at a few
 * hundred events a second, so the writes are grouped: a webhook's
 * request is parked (no thread waits for it), its messages queue for
 * one writer thread, which stores everything queued in one transaction
 * and then answers every request of the group. Under load a group grows
 * and the cost of the fsync is shared; idle, a group is one event.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>
#include <sqlite3.h>

#include "pincer.h"

#define GROUP_MAX	512	/* jobs in one transaction */
/*
 * Checkpoints often and small: a large one makes the disk flush many
 * pages at once, and the next commit's fsync waits behind them.
 */
#define CKPT_NS		100000000L	/* 100 ms */
#define RESTART_FRAMES	1000		/* SQLite's own autocheckpoint */

/* What one message becomes. */
enum verdict { V_DROP, V_STORE, V_PAIR };

/* A request's (or a socket's) messages, waiting for the writer. */
struct job {
	struct channel		*ch;
	struct chan_msg		*msgs;
	size_t			 n;
	struct chan_batch	*batch;		/* webhooks: owned */
	struct http_req		*req;		/* NULL: a thread waits */
	unsigned char		 verdict[CHAN_BATCH_MAX];
	int			 rc;		/* 0 stored; -1 not */
	bool			 done;
	struct job		*next;
};

static void	*writer(void *);
static void	*checkpointer(void *);
static int	 on_wal(void *, sqlite3 *, const char *, int);
static void	 restart_wal(void);
static void	 write_group(struct job *);
static enum verdict decide(struct channel *, struct chan_msg *);
static void	 note(const struct channel *, const struct chan_msg *);
static int	 store(struct channel *, struct chan_msg *);
static bool	 allowed(struct channel *, const char *sender);
static void	 conv_id(const struct channel *, const struct chan_msg *,
		    char *, size_t);
static char	*group_text(const struct chan_msg *);
static void	 on_resume(struct http_req *, void *);
static void	 on_done(void *);
static void	 job_free(struct job *);
static void	 note_failure(struct channel *, const char *, const char *);

static pthread_mutex_t	 lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t	 stored = PTHREAD_COND_INITIALIZER;
static struct job	*queue, **queue_tail = &queue;
static pthread_t	 thread, ckpt_thread;
static bool		 running, ckpt_running, quit;
static pthread_cond_t	 ckpt_wake = PTHREAD_COND_INITIALIZER;
static unsigned long	 ngroups;	/* written so far */
static int		 wal_frames;	/* the writer's: the WAL's length */

int
chan_in_start(void)
{
	quit = false;
	if (pthread_create(&thread, NULL, writer, NULL) != 0)
		return -1;
	running = true;
	if (pthread_create(&ckpt_thread, NULL, checkpointer, NULL) != 0) {
		chan_in_stop();
		return -1;
	}
	ckpt_running = true;
	return 0;
}

/* After the drain: nothing is queued by a request any more. */
void
chan_in_stop(void)
{
	if (!running)
		return;
	pthread_mutex_lock(&lock);
	quit = true;
	pthread_cond_signal(&wake);
	pthread_cond_signal(&ckpt_wake);
	pthread_mutex_unlock(&lock);
	pthread_join(thread, NULL);
	running = false;
	if (ckpt_running)
		pthread_join(ckpt_thread, NULL);
	ckpt_running = false;
}

/*
 * Under a steady stream of commits a PASSIVE checkpoint never catches up
 * with the last frame, so SQLite never starts the WAL over: it grows
 * without end, and a commit that grows a file costs the disk more than
 * one that overwrites (the file's size is journaled too). So when it is
 * long, the writer, between two groups, has it restarted: the
 * checkpointer has copied most of it already, what is left is short,
 * and the next commit writes from the WAL's start.
 */
static int
on_wal(void *arg, sqlite3 *db, const char *name, int frames)
{
	(void)arg;
	(void)db;
	(void)name;
	wal_frames = frames;
	return SQLITE_OK;
}

/*
 * Not waiting for readers (SQLite's busy handler sleeps 1, 2, 5, 10 …
 * 100 ms at a time, and every parked request would sleep with it): if
 * one is reading an old frame, the next group tries again.
 */
static void
restart_wal(void)
{
	sqlite3	*db = store_db();
	int	 rc;

	sqlite3_busy_timeout(db, 0);
	rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_RESTART,
	    NULL, NULL);
	sqlite3_busy_timeout(db, (int)config_current()->busy_timeout_ms);
	if (rc == SQLITE_OK)
		wal_frames = 0;
	else if (rc != SQLITE_BUSY)
		log_warn("cannot restart the WAL", "%s", sqlite3_errmsg(db));
}

/*
 * The WAL copied into the database every CKPT_NS while the writer has
 * written (PASSIVE: it waits for nobody and nobody waits for it).
 */
static void *
checkpointer(void *arg)
{
	struct timespec	 ts;
	unsigned long	 seen = 0;

	(void)arg;
	pthread_setname_np(pthread_self(), "chan-ckpt");
	pthread_mutex_lock(&lock);
	while (!quit) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += CKPT_NS;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&ckpt_wake, &lock, &ts);
		if (quit || ngroups == seen)
			continue;
		seen = ngroups;
		pthread_mutex_unlock(&lock);
		sqlite3_wal_checkpoint_v2(store_db(), NULL,
		    SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		pthread_mutex_lock(&lock);
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

/*
 * /hooks/KIND[/NAME]/…: the kind checks the request is the platform's
 * (a signature, a secret token) and reads what it carries; the answer
 * waits until every message is stored. A refusal stores nothing.
 */
void
api_hook(struct http_req *req)
{
	struct channel		*ch;
	struct chan_batch	*b;
	struct job		*j;
	char			 why[256];

	if ((ch = channel_find_hook(http_req_path(req))) == NULL) {
		http_error(req, 404, "no_channel", "no channel is configured "
		    "for this hook (config: channels)");
		return;
	}
	why[0] = '\0';
	if (ch->ops->verify == NULL || ch->ops->parse == NULL) {
		http_error(req, 404, "no_hook", "channel %s takes no webhooks",
		    ch->name);
		return;
	}
	if (ch->ops->verify(ch, req, why, sizeof(why)) == -1) {
		log_warn("webhook refused", "channel=%s ip=%s why=%s",
		    ch->name, http_req_ip(req), why);
		note_failure(ch, "a webhook request was refused", why);
		http_error(req, 401, "bad_signature", "%s", why);
		return;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL ||
	    (j = calloc(1, sizeof(*j))) == NULL) {
		free(b);
		http_error(req, 503, "no_memory", "out of memory");
		return;
	}
	j->ch = ch;
	j->batch = b;
	j->msgs = b->msgs;
	j->req = req;
	if (ch->ops->parse(ch, req, b, why, sizeof(why)) == -1) {
		note_failure(ch, "a webhook event could not be read", why);
		http_error(req, 400, "bad_event", "%s", why[0] ? why :
		    "the event cannot be read");
		job_free(j);
		return;
	}
	channel_health(ch, CHAN_UP, NULL);
	j->n = b->n;
	if (b->n == 0) {
		on_resume(req, j);
		job_free(j);
		return;
	}
	/* Parked before it is queued: the writer may finish at once. */
	http_suspend(req, on_resume, on_done, j);
	pthread_mutex_lock(&lock);
	*queue_tail = j;
	queue_tail = &j->next;
	pthread_cond_signal(&wake);
	pthread_mutex_unlock(&lock);
}

/*
 * From a socket or a poller: the messages are in the inbox (or refused
 * by policy) when this returns 0; -1: not stored, do not acknowledge.
 */
int
channel_ingest(struct channel *ch, struct chan_msg *msgs, size_t n)
{
	struct job	 j;

	if (n > CHAN_BATCH_MAX)
		return channel_ingest(ch, msgs, CHAN_BATCH_MAX) == -1 ? -1 :
		    channel_ingest(ch, msgs + CHAN_BATCH_MAX, n -
		    CHAN_BATCH_MAX);
	if (n == 0)
		return 0;
	memset(&j, 0, sizeof(j));
	j.ch = ch;
	j.msgs = msgs;
	j.n = n;
	pthread_mutex_lock(&lock);
	if (!running || quit) {
		pthread_mutex_unlock(&lock);
		return -1;
	}
	*queue_tail = &j;
	queue_tail = &j.next;
	pthread_cond_signal(&wake);
	while (!j.done)
		pthread_cond_wait(&stored, &lock);
	pthread_mutex_unlock(&lock);
	return j.rc;
}

static void *
writer(void *arg)
{
	struct job	*group, *j, *next;
	size_t		 n;

	(void)arg;
	/*
	 * A checkpoint (WAL into the database, with its own fsyncs) is not
	 * run inside a group's commit, where every parked request would
	 * wait for it, but by a thread of its own (checkpointer), beside
	 * the commits.
	 */
	pthread_setname_np(pthread_self(), "chan-inbox");
	sqlite3_exec(store_db(), "PRAGMA wal_autocheckpoint=0", NULL, NULL,
	    NULL);
	sqlite3_wal_hook(store_db(), on_wal, NULL);
	pthread_mutex_lock(&lock);
	for (;;) {
		while (queue == NULL && !quit)
			pthread_cond_wait(&wake, &lock);
		if (queue == NULL)
			break;
		/* Everything queued, up to GROUP_MAX, is one group. */
		group = queue;
		for (n = 1, j = queue; j->next != NULL && n < GROUP_MAX; n++)
			j = j->next;
		queue = j->next;
		j->next = NULL;
		if (queue == NULL)
			queue_tail = &queue;
		pthread_mutex_unlock(&lock);
		write_group(group);
		pthread_mutex_lock(&lock);
		for (j = group; j != NULL; j = next) {
			next = j->next;
			j->done = true;
			/* After this, the job is the request's (or the
			 * waiting thread's): not touched again here. */
			if (j->req != NULL)
				http_resume(j->req);
		}
		pthread_cond_broadcast(&stored);
		ngroups++;
		if (wal_frames > RESTART_FRAMES) {
			pthread_mutex_unlock(&lock);
			restart_wal();
			pthread_mutex_lock(&lock);
		}
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

/*
 * One transaction for the group's messages that pass the policy; a
 * stranger's pairing code has a transaction of its own after it (rare,
 * and it sends a reply). A failed commit fails the whole group: the
 * platforms send those events again.
 */
static void
write_group(struct job *group)
{
	sqlite3		*db = store_db();
	struct job	*j;
	size_t		 i;
	int		 rc = 0;
	enum verdict	 v;
	bool		 any = false;

	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		rc = -1;
	for (j = group; j != NULL && rc == 0; j = j->next)
		for (i = 0; i < j->n; i++) {
			v = decide(j->ch, &j->msgs[i]);
			j->verdict[i] = (unsigned char)v;
			if (v == V_STORE) {
				if (store(j->ch, &j->msgs[i]) == -1)
					rc = -1;
				any = true;
			}
		}
	if (rc == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) !=
	    SQLITE_OK)
		rc = -1;

	if (rc == -1) {
		log_error("cannot store channel messages", "%s",
		    sqlite3_errmsg(db));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	}
	for (j = group; j != NULL; j = j->next) {
		j->rc = rc;
		for (i = 0; i < j->n && rc == 0; i++)
			if (j->verdict[i] == V_PAIR &&
			    chan_pair_request(j->ch, &j->msgs[i]) == -1)
				j->rc = -1;
	}
	if (any && rc == 0)
		for (j = group; j != NULL; j = j->next)
			for (i = 0; i < j->n; i++)
				if (j->verdict[i] == V_STORE)
					note(j->ch, &j->msgs[i]);
}

/* After the commit: the dispatcher learns the conversation has work. */
static void
note(const struct channel *ch, const struct chan_msg *m)
{
	char	 conv[512];

	conv_id(ch, m, conv, sizeof(conv));
	dispatch_note(conv);
}

/* Who may talk: a message is stored, refused, or answered with a code. */
static enum verdict
decide(struct channel *ch, struct chan_msg *m)
{
	int	 known;

	if (!m->direct && !m->mention)
		return V_DROP;	/* groups: only what names the bot */
	if (m->direct && ch->policy == POLICY_DISABLED) {
		chan_pair_audit(ch, m, "channel.refuse", "direct messages "
		    "are disabled (dm_policy)");
		return V_DROP;
	}
	if (ch->policy == POLICY_OPEN || allowed(ch, m->sender))
		return V_STORE;
	if ((known = chan_pair_known(ch, m->sender)) == 1)
		return V_STORE;
	if (known == 0 && m->direct && ch->policy == POLICY_PAIRING)
		return V_PAIR;
	if (known == 0)
		chan_pair_audit(ch, m, "channel.refuse", ch->policy ==
		    POLICY_PAIRING ? "unknown sender in a group (pairing "
		    "is by direct message)" : "not on the allow list");
	return V_DROP;
}

/* Into the inbox, inside the group's transaction. */
static int
store(struct channel *ch, struct chan_msg *m)
{
	struct dispatch_msg	 dm;
	char			 conv[512], ev[CHAN_ID_MAX + 64];
	char			*text = NULL;
	bool			 dup;
	long long		 id;

	if (m->text == NULL && (m->text = strdup("")) == NULL)
		return -1;
	if (!m->direct && (text = group_text(m)) == NULL)
		return -1;
	conv_id(ch, m, conv, sizeof(conv));
	snprintf(ev, sizeof(ev), "%s:%s", ch->name, m->event_id);
	memset(&dm, 0, sizeof(dm));
	dm.conversation = conv;
	dm.channel = ch->name;
	dm.peer = m->chat;
	dm.thread = m->thread;
	dm.owner = chan_owner(ch);
	dm.sender = m->sender;
	dm.text = text != NULL ? text : m->text;
	dm.attachments = m->attachments;
	dm.event_id = m->event_id[0] != '\0' ? ev : NULL;
	dm.ref = m->ref;
	id = dispatch_store(&dm, &dup);
	free(text);
	return id == -1 ? -1 : 0;
}

/* The config's allow list (platform user ids). */
static bool
allowed(struct channel *ch, const char *sender)
{
	const json_t	*v;
	size_t		 i;

	json_array_foreach(ch->allow, i, v)
		if (json_is_string(v) && !strcmp(json_string_value(v), sender))
			return true;
	return false;
}

/* NAME:chat, and :thread for a thread of its own. */
static void
conv_id(const struct channel *ch, const struct chan_msg *m, char *out,
    size_t outsz)
{
	if (m->thread[0] != '\0')
		snprintf(out, outsz, "%s:%s:%s", ch->name, m->chat, m->thread);
	else
		snprintf(out, outsz, "%s:%s", ch->name, m->chat);
}

/* In a group the agent is told who speaks. */
static char *
group_text(const struct chan_msg *m)
{
	struct buf	 b;

	buf_init(&b, strlen(m->text) + 512);
	buf_printf(&b, "[%s%s%s%s]: %s", m->sender_name,
	    m->sender_name[0] ? " (" : "", m->sender,
	    m->sender_name[0] ? ")" : "", m->text);
	return b.data != NULL ? buf_steal(&b) : strdup("");
}

/* The request again, on its HTTP thread: the answer. */
static void
on_resume(struct http_req *req, void *arg)
{
	struct job		*j = arg;
	struct chan_batch	*b = j->batch;
	struct MHD_Response	*r;
	const char		*body;

	if (j->rc == -1) {
		/* Not stored: the platform sends it again. */
		http_retry_later(req, 1, "not_stored", "the event could not "
		    "be stored; send it again");
		return;
	}
	if (b->status == 0) {
		http_json(req, 200, "{\"ok\":true}");
		return;
	}
	body = b->body != NULL ? b->body : "";
	r = MHD_create_response_from_buffer(strlen(body), (void *)body,
	    MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(r, "Content-Type", b->ctype != NULL ?
	    b->ctype : "application/json");
	http_reply(req, b->status, r);
}

static void
on_done(void *arg)
{
	job_free(arg);
}

static void
job_free(struct job *j)
{
	size_t	 i;

	for (i = 0; i < j->batch->n; i++)
		chan_msg_clear(&j->batch->msgs[i]);
	free(j->batch->body);
	free(j->batch);
	free(j);
}

/* For the channel's status: what failed, and why (already logged). */
static void
note_failure(struct channel *ch, const char *what, const char *why)
{
	char	 text[400];

	snprintf(text, sizeof(text), "%s%s%s", what, why[0] ? ": " : "",
	    why);
	channel_health(ch, CHAN_FAILURE, text);
}
