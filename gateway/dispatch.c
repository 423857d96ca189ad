/* SPDX-License-Identifier: MIT */
/*
 * dispatch.c: from a message to the agent's reply. A message is written
 * to the inbox first (dispatch_submit); worker threads take the queued
 * messages of one conversation at a time, run one agent turn for them
 * in the conversation's sandbox (`pincer-agent turn` through the
 * sandbox's control API, sandbox/agent/README.md), pass its events to
 * whoever listens, and put the reply in the outbox. A conversation runs
 * one turn at a time; messages that arrive meanwhile wait for the next
 * one (follow-ups); different conversations run in parallel, up to
 * agent.max_turns.
 *
 * Nothing is lost: a turn whose agent dies without answering is run once
 * more, then answered with an error; a pincerd stopped mid-turn leaves
 * its messages "running", and the next start queues them again. A turn a
 * person stops (dispatch_cancel) is answered "stopped" and not run again.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>
#include <sqlite3.h>

#include "pincer.h"

#define WORKERS_MAX	64
#define LINE_MAX_	(8L << 20)	/* one event line of the agent */
#define STDERR_KEEP	2048
#define ATTEMPTS	2		/* a turn runs at most twice */
#define TOOLS_KEPT	64		/* tool calls stored with a reply */

struct sub {
	long long	 msg;		/* the message listened for */
	dispatch_fn	 fn;
	void		*arg;
	bool		 taken;		/* its turn has started */
	struct sub	*next;
};

/* One turn being run. */
struct turn {
	char		 conv[256];
	char		 sandbox[SBX_NAME_MAX + 1];
	long long	 ids[256];	/* the messages it answers */
	size_t		 nids;
	int		 attempts;	/* the most of any message */
	char		*text;		/* the messages', joined */
	json_t		*inatts;	/* their attachments, all */
	struct buf	 line;		/* the agent's stdout, a line */
	struct buf	 err;		/* its stderr, the start */
	char		*reply;
	json_t		*attachments;	/* [{path, name, …}] */
	json_t		*tools;		/* [{id, name, input, ok, output, ms}] */
	char		 ecode[32];
	char		*emsg;
	int		 exit_code;
	bool		 exited;
	bool		 timed_out;
	int		 fd;		/* the control socket */
};

static void	*worker(void *);
static bool	 pick(char *conv, size_t);
static void	 pend_add(const char *);
static void	 run_turn(const char *conv);
static void	 add_attachments(struct turn *, const char *);
static int	 take(struct turn *);
static void	 exec_agent(struct turn *, const char *control,
		    const char *input, char *, size_t);
static int	 on_exec_event(void *, const struct sse_event *);
static void	 on_line(struct turn *, const char *, size_t);
static void	 note_tool(struct turn *, const char *, json_t *);
static void	 finish(struct turn *, const char *why);
static void	 publish(const struct turn *, const char *json, bool last);
static void	 sandbox_name(const struct config *, const char *conv,
		    const char *owner, const char *channel, char *, size_t);
static long long wall_ms(void);

static pthread_mutex_t	 lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 wake = PTHREAD_COND_INITIALIZER;
static pthread_t	 workers[WORKERS_MAX];
static int		 nworkers;
static bool		 quit;
/* Per worker: the conversation in a turn, and its control socket. */
static char		 busy[WORKERS_MAX][256];
static int		 busy_fd[WORKERS_MAX];
/* Per worker: who stopped its turn ("": nobody). */
static char		 stop_by[WORKERS_MAX][65];
static struct sub	*subs;
/* Conversations that may have queued messages, oldest first. */
struct pend {
	struct pend	*next;
	char		 conv[256];
};
static struct pend	*pending, **pending_tail = &pending;

int
dispatch_start(const struct config *c)
{
	sqlite3_stmt	*st;
	int		 i;

	/* Turns cut by the last stop run again (attempts tell how often). */
	if (sqlite3_exec(store_db(), "UPDATE inbox SET state = 'queued' "
	    "WHERE state = 'running'", NULL, NULL, NULL) != SQLITE_OK)
		log_warn("cannot queue again the turns of the last run", "%s",
		    sqlite3_errmsg(store_db()));
	quit = false;
	if ((st = store_stmt("SELECT conversation FROM inbox WHERE state = "
	    "'queued' GROUP BY conversation ORDER BY min(id)")) != NULL) {
		while (sqlite3_step(st) == SQLITE_ROW)
			pend_add((const char *)sqlite3_column_text(st, 0));
		sqlite3_reset(st);
	}
	for (i = 0; i < (int)c->agent_max_turns && i < WORKERS_MAX; i++) {
		busy_fd[i] = -1;
		stop_by[i][0] = '\0';
		if (pthread_create(&workers[i], NULL, worker,
		    (void *)(intptr_t)i) != 0) {
			log_error("cannot start the dispatcher", "%s",
			    strerror(errno));
			return -1;
		}
		nworkers = i + 1;
	}
	return 0;
}

/* Turns in progress are cut (their messages stay "running"). */
void
dispatch_stop(void)
{
	struct sub	*s;
	struct pend	*p;
	int		 i;

	pthread_mutex_lock(&lock);
	quit = true;
	for (i = 0; i < nworkers; i++)
		if (busy_fd[i] != -1)
			shutdown(busy_fd[i], SHUT_RDWR);
	/* Listeners are told, so their streams end before the drain. */
	while ((s = subs) != NULL) {
		subs = s->next;
		s->fn(s->arg, "{\"type\":\"error\",\"code\":\"stopping\","
		    "\"message\":\"pincerd is stopping; the message is kept "
		    "and answered after the next start\"}", true);
		free(s);
	}
	pthread_cond_broadcast(&wake);
	pthread_mutex_unlock(&lock);
	for (i = 0; i < nworkers; i++)
		pthread_join(workers[i], NULL);
	nworkers = 0;
	while ((p = pending) != NULL) {
		pending = p->next;
		free(p);
	}
	pending_tail = &pending;
}

/*
 * Any thread: the message is in the inbox when this returns (its id), or
 * -1 with why. A message with an event_id already seen is not added
 * again: its first id is returned. fn (if any) gets the events of the
 * turn that answers it, the last one with last set.
 */
long long
dispatch_submit(const struct dispatch_msg *m, dispatch_fn fn, void *arg,
    struct dispatch_sub **subp, char *why, size_t whysz)
{
	sqlite3		*db = store_db();
	long long	 id;
	bool		 dup = false;
	struct sub	*s = NULL;

	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	if ((id = dispatch_store(m, &dup)) == -1 ||
	    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	if (dup)
		return id;
	/* Listening before a worker can see it: no event is missed. */
	pthread_mutex_lock(&lock);
	if (fn != NULL && (s = calloc(1, sizeof(*s))) != NULL) {
		s->msg = id;
		s->fn = fn;
		s->arg = arg;
		s->next = subs;
		subs = s;
	}
	if (subp != NULL)
		*subp = (struct dispatch_sub *)s;
	pend_add(m->conversation);
	pthread_cond_signal(&wake);
	pthread_mutex_unlock(&lock);
	return id;
fail:
	snprintf(why, whysz, "the message could not be stored: %s",
	    sqlite3_errmsg(db));
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/*
 * Inside the caller's transaction: the message into the inbox (its id),
 * or the id it had when its event_id was seen before (*dup set); -1 if
 * the store failed. dispatch_note after the commit.
 */
long long
dispatch_store(const struct dispatch_msg *m, bool *dup)
{
	const struct config	*c = config_current();
	sqlite3			*db = store_db();
	sqlite3_stmt		*st;
	char			 sbx[SBX_NAME_MAX + 1], *att;
	long long		 id = -1, now = wall_ms();

	*dup = false;
	if (m->event_id != NULL &&
	    (st = store_stmt("SELECT id FROM inbox WHERE event_id = ?")) !=
	    NULL) {
		sqlite3_bind_text(st, 1, m->event_id, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			id = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		if (id != -1) {
			*dup = true;
			return id;
		}
	}
	sandbox_name(c, m->conversation, m->owner, m->channel, sbx,
	    sizeof(sbx));
	if ((st = store_stmt("INSERT INTO conversations (id, channel, peer, "
	    "thread, owner, sandbox, created_ms, updated_ms) VALUES (?, ?, ?, "
	    "?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET updated_ms = "
	    "excluded.updated_ms, owner = CASE owner WHEN '' THEN "
	    "excluded.owner ELSE owner END, sandbox = CASE sandbox WHEN '' "
	    "THEN excluded.sandbox ELSE sandbox END")) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, m->conversation, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, m->channel, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, m->peer, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, m->thread ? m->thread : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, m->owner, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, sbx, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, now);
	sqlite3_bind_int64(st, 8, now);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_reset(st);
	if ((st = store_stmt("INSERT INTO inbox (conversation, event_id, "
	    "sender, text, attachments, received_ms, ref) VALUES (?, ?, ?, "
	    "?, ?, ?, ?)")) == NULL)
		return -1;
	att = m->attachments != NULL ? json_dumps(m->attachments,
	    JSON_COMPACT) : NULL;
	sqlite3_bind_text(st, 1, m->conversation, -1, SQLITE_STATIC);
	if (m->event_id != NULL)
		sqlite3_bind_text(st, 2, m->event_id, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 2);
	sqlite3_bind_text(st, 3, m->sender, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, m->text, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, att != NULL ? att : "[]", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, now);
	sqlite3_bind_text(st, 7, m->ref != NULL ? m->ref : "", -1,
	    SQLITE_STATIC);
	id = sqlite3_step(st) == SQLITE_DONE ? sqlite3_last_insert_rowid(db) :
	    -1;
	sqlite3_reset(st);
	free(att);
	return id;
}

/* The listener goes; its fn is not called after this returns. */
void
dispatch_unsubscribe(struct dispatch_sub *ds)
{
	struct sub	**sp, *s = (struct sub *)ds;

	if (s == NULL)
		return;
	pthread_mutex_lock(&lock);
	for (sp = &subs; *sp != NULL; sp = &(*sp)->next)
		if (*sp == s) {
			*sp = s->next;
			free(s);
			break;
		}
	pthread_mutex_unlock(&lock);
}

static void *
worker(void *arg)
{
	int	 me = (int)(intptr_t)arg;
	char	 conv[256];

	/* A turn whose outcome a power cut loses runs again. */
	store_lazy_commits();
	pthread_mutex_lock(&lock);
	while (!quit) {
		if (!pick(conv, sizeof(conv))) {
			pthread_cond_wait(&wake, &lock);
			continue;
		}
		snprintf(busy[me], sizeof(busy[me]), "%s", conv);
		pthread_mutex_unlock(&lock);
		run_turn(conv);
		pthread_mutex_lock(&lock);
		busy[me][0] = '\0';
		busy_fd[me] = -1;
		stop_by[me][0] = '\0';
		/* The conversation may have follow-ups: look again. */
		pthread_cond_broadcast(&wake);
	}
	pthread_mutex_unlock(&lock);
	/* Its store connection is closed with the others at exit
	 * (store_close closes every thread's). */
	return NULL;
}

/*
 * Lock held: the first conversation that may have queued messages and
 * has no turn running; it leaves the list (take puts it back when it
 * could not take everything, a commit of a new message puts it back).
 */
static bool
pick(char *conv, size_t convsz)
{
	struct pend	**pp, *p;
	bool		 taken;
	int		 i;

	for (pp = &pending; (p = *pp) != NULL; pp = &p->next) {
		for (taken = false, i = 0; i < nworkers && !taken; i++)
			taken = !strcmp(busy[i], p->conv);
		if (taken)
			continue;
		snprintf(conv, convsz, "%s", p->conv);
		*pp = p->next;
		if (pending_tail == &p->next)
			pending_tail = pp;
		free(p);
		return true;
	}
	return false;
}

/* Lock held: conv at the end of the list, unless it is in it. */
static void
pend_add(const char *conv)
{
	struct pend	*p;

	for (p = pending; p != NULL; p = p->next)
		if (!strcmp(p->conv, conv))
			return;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return;
	snprintf(p->conv, sizeof(p->conv), "%s", conv);
	*pending_tail = p;
	pending_tail = &p->next;
}

/*
 * After a commit that queued messages for conv (dispatch_store's): a
 * worker takes it. Kept in memory so that finding work costs no query
 * (with a backlog of thousands, a scan per wake-up was the bottleneck).
 */
void
dispatch_note(const char *conv)
{
	pthread_mutex_lock(&lock);
	pend_add(conv);
	pthread_cond_signal(&wake);
	pthread_mutex_unlock(&lock);
}

/* A message's attachments ([{…}] as its channel keeps them). */
static void
add_attachments(struct turn *t, const char *json)
{
	json_t	*a = json_loads(json != NULL ? json : "[]", 0, NULL), *v;
	size_t	 i;

	if (t->inatts == NULL)
		t->inatts = json_array();
	json_array_foreach(a, i, v)
		if (json_array_size(t->inatts) < 32)
			json_array_append(t->inatts, v);
	json_decref(a);
}

/* This worker's slot, for the socket a stop must cut. */
static int
slot_of(const char *conv)
{
	int	 i;

	for (i = 0; i < nworkers; i++)
		if (!strcmp(busy[i], conv))
			return i;
	return -1;
}

/*
 * A person stops conv's turn: the control socket is shut, so pincer-init
 * kills the agent's process group (a client that goes away takes its
 * command with it), and finish answers "stopped by who" rather than
 * running the turn again. A turn still starting its sandbox is cut as
 * soon as it connects. 0, or -1 when no turn of conv is running.
 */
int
dispatch_cancel(const char *conv, const char *who)
{
	int	 slot;

	pthread_mutex_lock(&lock);
	if ((slot = slot_of(conv)) != -1) {
		snprintf(stop_by[slot], sizeof(stop_by[slot]), "%s", who);
		if (busy_fd[slot] != -1)
			shutdown(busy_fd[slot], SHUT_RDWR);
	}
	pthread_mutex_unlock(&lock);
	return slot == -1 ? -1 : 0;
}

static void
run_turn(const char *conv)
{
	struct turn	 t;
	struct sbx_ref	 ref;
	enum sbx_err	 e;
	json_t		*in;
	char		*input = NULL, why[512];
	bool		 created;

	memset(&t, 0, sizeof(t));
	t.fd = -1;
	t.attachments = json_array();
	t.tools = json_array();
	snprintf(t.conv, sizeof(t.conv), "%s", conv);
	buf_init(&t.line, LINE_MAX_);
	buf_init(&t.err, STDERR_KEEP);
	why[0] = '\0';
	if (take(&t) == -1)
		goto out;
	if (t.attempts > ATTEMPTS) {
		finish(&t, "it stopped twice without answering");
		goto out;
	}
	if ((e = sbx_create(t.sandbox, "agent", &created)) != SBX_OK &&
	    e != SBX_EXISTS)
		snprintf(why, sizeof(why), "its sandbox %s could not be made "
		    "(%s)", t.sandbox, sbx_strerror(e));
	else if ((e = sbx_acquire(t.sandbox, &ref)) != SBX_OK)
		snprintf(why, sizeof(why), "its sandbox %s could not start "
		    "(%s)", t.sandbox, sbx_strerror(e));
	else {
		/* Files that came with the messages go in first. */
		if (json_array_size(t.inatts) > 0)
			channel_attach(conv, ref.control, t.inatts, &t.text);
		in = json_pack("{s:s, s:s}", "conversation", conv, "text",
		    t.text);
		input = json_dumps(in, JSON_COMPACT);
		json_decref(in);
		exec_agent(&t, ref.control, input, why, sizeof(why));
		sbx_release(&ref);
	}
	finish(&t, why[0] ? why : NULL);
out:
	free(input);
	free(t.text);
	json_decref(t.inatts);
	free(t.reply);
	free(t.emsg);
	json_decref(t.attachments);
	json_decref(t.tools);
	buf_free(&t.line);
	buf_free(&t.err);
}

/*
 * The conversation's queued messages become this turn's ("running", one
 * more attempt); their text, joined, is the turn's input.
 */
static int
take(struct turn *t)
{
	sqlite3		*db = store_db();
	sqlite3_stmt	*st;
	struct buf	 text;
	int		 rc = -1;

	buf_init(&text, (size_t)64 << 20);
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK) {
		/* Its messages are still queued: it is looked at again. */
		log_error("cannot take a conversation's messages",
		    "conversation=%s %s", t->conv, sqlite3_errmsg(db));
		dispatch_note(t->conv);
		return -1;
	}
	if ((st = store_stmt("SELECT sandbox FROM conversations WHERE id = "
	    "?")) == NULL)
		goto out;
	sqlite3_bind_text(st, 1, t->conv, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		snprintf(t->sandbox, sizeof(t->sandbox), "%s",
		    sqlite3_column_text(st, 0));
	sqlite3_reset(st);
	if ((st = store_stmt("SELECT id, text, attempts, attachments FROM "
	    "inbox WHERE conversation = ? AND state = 'queued' ORDER BY id")) ==
	    NULL)
		goto out;
	sqlite3_bind_text(st, 1, t->conv, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW &&
	    t->nids < sizeof(t->ids) / sizeof(t->ids[0])) {
		t->ids[t->nids++] = sqlite3_column_int64(st, 0);
		if (text.len > 0)
			buf_puts(&text, "\n\n");
		buf_puts(&text, (const char *)sqlite3_column_text(st, 1));
		if (sqlite3_column_int(st, 2) + 1 > t->attempts)
			t->attempts = sqlite3_column_int(st, 2) + 1;
		add_attachments(t, (const char *)sqlite3_column_text(st, 3));
	}
	sqlite3_reset(st);
	if ((st = store_stmt("UPDATE inbox SET state = 'running', attempts = "
	    "attempts + 1 WHERE conversation = ? AND state = 'queued' AND "
	    "id <= ?")) == NULL)
		goto out;
	sqlite3_bind_text(st, 1, t->conv, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, t->nids ? t->ids[t->nids - 1] : 0);
	if (sqlite3_step(st) == SQLITE_DONE && t->nids > 0 &&
	    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		rc = 0;
	sqlite3_reset(st);
out:
	if (rc == -1)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	/* More than a turn takes, or not taken for a failure: again. */
	if ((rc == 0 && t->nids == sizeof(t->ids) / sizeof(t->ids[0])) ||
	    (rc == -1 && t->nids > 0))
		dispatch_note(t->conv);
	t->text = rc == 0 ? strdup(text.data ? text.data : "") : NULL;
	if (rc == 0 && t->text == NULL)
		rc = -1;
	buf_free(&text);
	if (rc == 0) {
		pthread_mutex_lock(&lock);
		for (struct sub *s = subs; s != NULL; s = s->next)
			for (size_t i = 0; i < t->nids; i++)
				s->taken = s->taken || s->msg == t->ids[i];
		pthread_mutex_unlock(&lock);
		publish(t, "{\"type\":\"turn_start\"}", false);
		channel_turn(t->conv, true);
	}
	return rc;
}

/* Runs the agent in the sandbox and reads its events as they come. */
static void
exec_agent(struct turn *t, const char *control, const char *input,
    char *why, size_t whysz)
{
	const struct config	*c = config_current();
	struct sockaddr_un	 sa = { .sun_family = AF_UNIX };
	json_t			*rq, *cmd, *env;
	char			*body, head[512], chunk[8192], *p;
	struct buf		 resp;
	struct sse		*sse = NULL;
	bool			 in_body = false;
	ssize_t			 r;
	int			 slot, status = 0;

	if (strlen(control) >= sizeof(sa.sun_path)) {
		snprintf(why, whysz, "the sandbox's socket path is too long");
		return;
	}
	memcpy(sa.sun_path, control, strlen(control) + 1);
	cmd = json_array();
	json_array_append_new(cmd, json_string(c->agent_command));
	json_array_append_new(cmd, json_string("turn"));
	env = json_pack("{s:s}", "PINCER_AGENT_SKILLS", "/opt/pincer/skills");
	rq = json_pack("{s:o, s:s, s:o, s:I, s:b}", "cmd", cmd, "stdin", input,
	    "env", env, "timeout_ms", (json_int_t)c->agent_turn_timeout_s *
	    1000, "stream", 1);
	body = json_dumps(rq, JSON_COMPACT);
	json_decref(rq);
	if ((t->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(t->fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		snprintf(why, whysz, "cannot reach the sandbox: %s",
		    strerror(errno));
		free(body);
		return;
	}
	pthread_mutex_lock(&lock);
	if ((slot = slot_of(t->conv)) != -1)
		busy_fd[slot] = t->fd;
	if (quit || (slot != -1 && stop_by[slot][0] != '\0'))
		shutdown(t->fd, SHUT_RDWR);
	pthread_mutex_unlock(&lock);
	snprintf(head, sizeof(head), "POST /exec HTTP/1.1\r\nHost: sandbox\r\n"
	    "Content-Type: application/json\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\n\r\n", strlen(body));
	if (send(t->fd, head, strlen(head), MSG_NOSIGNAL) == -1 ||
	    send(t->fd, body, strlen(body), MSG_NOSIGNAL) == -1) {
		snprintf(why, whysz, "cannot talk to the sandbox: %s",
		    strerror(errno));
		free(body);
		goto out;
	}
	free(body);
	/* pincer-init answers a head, then the SSE stream until it closes. */
	buf_init(&resp, 65536);
	sse = sse_new(LINE_MAX_);
	while ((r = recv(t->fd, chunk, sizeof(chunk), 0)) > 0 ||
	    (r == -1 && errno == EINTR)) {
		if (r <= 0)
			continue;
		if (in_body) {
			if (sse_feed(sse, chunk, (size_t)r, on_exec_event, t) ==
			    -1)
				break;
			continue;
		}
		if (buf_append(&resp, chunk, (size_t)r) == -1)
			break;
		buf_append(&resp, "", 1);
		resp.len--;
		if ((p = strstr(resp.data, "\r\n\r\n")) == NULL)
			continue;
		status = atoi(resp.data + 9);
		in_body = true;
		if (status == 200)
			sse_feed(sse, p + 4, resp.len - (size_t)(p + 4 -
			    resp.data), on_exec_event, t);
		else
			snprintf(why, whysz, "the sandbox refused to run the "
			    "agent (%d): %.200s", status, p + 4);
	}
	buf_free(&resp);
out:
	sse_free(sse);
	pthread_mutex_lock(&lock);
	if ((slot = slot_of(t->conv)) != -1)
		busy_fd[slot] = -1;
	pthread_mutex_unlock(&lock);
	close(t->fd);
	t->fd = -1;
}

/* pincer-init's exec events: stdout (the agent's lines), stderr, exit. */
static int
on_exec_event(void *arg, const struct sse_event *ev)
{
	struct turn	*t = arg;
	json_t		*j = json_loadb(ev->data, ev->data_len, 0, NULL);
	const char	*d = json_string_value(json_object_get(j, "data"));
	const char	*nl;

	if (!strcmp(ev->event, "stdout") && d != NULL) {
		while ((nl = strchr(d, '\n')) != NULL) {
			buf_append(&t->line, d, (size_t)(nl - d));
			on_line(t, t->line.data ? t->line.data : "",
			    t->line.len);
			buf_reset(&t->line);
			d = nl + 1;
		}
		buf_puts(&t->line, d);
	} else if (!strcmp(ev->event, "stderr") && d != NULL) {
		if (t->err.len < STDERR_KEEP)
			buf_append(&t->err, d, strlen(d) < STDERR_KEEP -
			    t->err.len ? strlen(d) : STDERR_KEEP - t->err.len);
	} else if (!strcmp(ev->event, "exit")) {
		t->exited = true;
		t->exit_code = (int)json_integer_value(json_object_get(j,
		    "exit_code"));
		t->timed_out = json_is_true(json_object_get(j, "timed_out"));
	}
	json_decref(j);
	return 0;
}

/* One line of the agent: an event for the listeners; the end noted. */
static void
on_line(struct turn *t, const char *p, size_t n)
{
	json_t		*j = json_loadb(p, n, 0, NULL);
	const char	*type = json_string_value(json_object_get(j, "type"));
	const char	*s;

	if (type == NULL) {
		json_decref(j);
		return;		/* not the protocol: ignored */
	}
	if (!strcmp(type, "attachment") && json_array_size(t->attachments) <
	    32 && json_is_string(json_object_get(j, "path")))
		json_array_append_new(t->attachments, json_pack("{s:O, s:O?, "
		    "s:O?, s:O?}", "path", json_object_get(j, "path"), "name",
		    json_object_get(j, "name"), "size", json_object_get(j,
		    "size"), "caption", json_object_get(j, "caption")));
	else if (!strcmp(type, "tool_start") || !strcmp(type, "tool_end"))
		note_tool(t, type, j);
	else if (!strcmp(type, "reply") && t->reply == NULL)
		t->reply = strdup((s = json_string_value(json_object_get(j,
		    "text"))) != NULL ? s : "");
	else if (!strcmp(type, "error") && t->emsg == NULL) {
		snprintf(t->ecode, sizeof(t->ecode), "%s",
		    (s = json_string_value(json_object_get(j, "code"))) !=
		    NULL ? s : "agent");
		t->emsg = strdup((s = json_string_value(json_object_get(j,
		    "message"))) != NULL ? s : "");
	}
	/* The reply and the error go out with finish (they end it). */
	if (strcmp(type, "reply") != 0 && strcmp(type, "error") != 0) {
		char	*line = strndup(p, n);

		if (line != NULL)
			publish(t, line, false);
		free(line);
	}
	json_decref(j);
}

/*
 * A tool call as the stream showed it, kept with the reply: its start
 * (name, input, when), then its end (ok, output, how long) found by id.
 */
static void
note_tool(struct turn *t, const char *type, json_t *ev)
{
	const char	*id = json_string_value(json_object_get(ev, "id"));
	json_t		*c;
	size_t		 i;

	if (id == NULL)
		return;
	if (!strcmp(type, "tool_start")) {
		if (json_array_size(t->tools) < TOOLS_KEPT)
			json_array_append_new(t->tools, json_pack("{s:s, s:O?, "
			    "s:O?, s:I}", "id", id, "name", json_object_get(ev,
			    "name"), "input", json_object_get(ev, "input"),
			    "start_ms", (json_int_t)wall_ms()));
		return;
	}
	json_array_foreach(t->tools, i, c) {
		json_t	*start = json_object_get(c, "start_ms");

		if (start == NULL || strcmp(json_string_value(json_object_get(c,
		    "id")), id) != 0)
			continue;
		json_object_set(c, "ok", json_object_get(ev, "ok"));
		json_object_set(c, "output", json_object_get(ev, "output"));
		json_object_set_new(c, "ms", json_integer(wall_ms() -
		    json_integer_value(start)));
		json_object_del(c, "start_ms");
		return;
	}
}

/*
 * The turn's outcome, in one transaction: a reply or an error for the
 * outbox and the messages done; or, when the agent died without a word
 * and it was its first run, the messages queued again.
 */
static void
finish(struct turn *t, const char *why)
{
	sqlite3		*db = store_db();
	sqlite3_stmt	*st;
	const char	*kind = "reply", *state = "done";
	char		 text[1024], by[65] = "";
	json_t		*ev;
	char		*evs, *att, *tools;
	size_t		 i;
	int		 slot;
	bool		 again = false, stopping, stored = true;

	pthread_mutex_lock(&lock);
	stopping = quit;
	if ((slot = slot_of(t->conv)) != -1)
		snprintf(by, sizeof(by), "%s", stop_by[slot]);
	pthread_mutex_unlock(&lock);
	if (t->nids == 0)
		return;
	if (t->reply == NULL && by[0] != '\0') {
		/* Done, so that nothing runs it again, even after a restart;
		 * a reply that came before the stop wins. */
		kind = "stopped";
		snprintf(text, sizeof(text), "Stopped by %s.", by);
	} else if (t->reply == NULL && t->emsg == NULL && stopping)
		/* Left "running": the next start runs it. */
		return;
	else if (t->reply == NULL) {
		kind = "error";
		state = "failed";
		if (t->emsg != NULL)
			snprintf(text, sizeof(text), "The agent could not "
			    "answer (%s): %s", t->ecode, t->emsg);
		else if (why != NULL)
			snprintf(text, sizeof(text), "The agent could not "
			    "run: %s.", why);
		else {
			/* Killed or crashed: once more. Out of time: no (it
			 * would only take as long again). */
			again = t->attempts < ATTEMPTS && !t->timed_out;
			if (t->timed_out)
				snprintf(text, sizeof(text), "The agent ran "
				    "out of time (agent.turn_timeout_s).");
			else if (t->exited)
				snprintf(text, sizeof(text), "The agent "
				    "stopped without answering (exit code "
				    "%d).", t->exit_code);
			else
				snprintf(text, sizeof(text), "The agent "
				    "stopped without answering (its sandbox "
				    "went away).");
		}
		if (t->err.len > 0)
			log_warn("agent turn failed", "conversation=%s "
			    "stderr=%.*s", t->conv, (int)t->err.len,
			    t->err.data);
	}
	/* A turn's outcome that cannot be stored is not lost: its messages
	 * stay "running" and the next start runs the turn again. */
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK) {
		log_error("cannot record an agent turn", "conversation=%s %s",
		    t->conv, sqlite3_errmsg(db));
		return;
	}
	att = json_dumps(t->reply != NULL ? t->attachments : NULL,
	    JSON_COMPACT | JSON_ENCODE_ANY);
	tools = json_dumps(t->tools, JSON_COMPACT);
	/* A chat channel's reply waits for its delivery thread; the API's
	 * is read where it is ("local"). */
	if (!again && (st = store_stmt("INSERT INTO outbox (conversation, "
	    "inbox_id, kind, text, attachments, created_ms, state, tools) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, CASE (SELECT channel FROM "
	    "conversations WHERE id = ?1) WHEN 'api' THEN 'local' ELSE "
	    "'pending' END, ?7)")) !=
	    NULL) {
		sqlite3_bind_text(st, 1, t->conv, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, t->ids[t->nids - 1]);
		sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, t->reply ? t->reply : text, -1,
		    SQLITE_STATIC);
		sqlite3_bind_text(st, 5, t->reply != NULL && att != NULL ? att :
		    "[]", -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, wall_ms());
		sqlite3_bind_text(st, 7, tools != NULL ? tools : "[]", -1,
		    SQLITE_STATIC);
		stored = sqlite3_step(st) == SQLITE_DONE;
		sqlite3_reset(st);
	} else if (!again)
		stored = false;
	free(att);
	free(tools);
	if ((st = store_stmt("UPDATE inbox SET state = ? WHERE id = ?")) !=
	    NULL)
		for (i = 0; i < t->nids; i++) {
			sqlite3_bind_text(st, 1, again ? "queued" : state, -1,
			    SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, t->ids[i]);
			stored = stored && sqlite3_step(st) == SQLITE_DONE;
			sqlite3_reset(st);
		}
	else
		stored = false;
	if (!stored ||
	    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		log_error("cannot record an agent turn", "%s",
		    sqlite3_errmsg(db));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return;
	}
	if (!again) {
		channel_turn(t->conv, false);
		channel_notify();
	}
	if (again) {
		dispatch_note(t->conv);
		log_warn("agent turn failed; running it again",
		    "conversation=%s %s", t->conv, text);
		publish(t, "{\"type\":\"retry\"}", false);
		return;
	}
	/* A stop ends the stream as an error (code "stopped"), so clients
	 * that know reply and error as the end need nothing new. */
	if (t->reply != NULL)
		ev = json_pack("{s:s, s:s, s:O}", "type", "reply", "text",
		    t->reply, "attachments", t->attachments);
	else if (by[0] != '\0')
		ev = json_pack("{s:s, s:s, s:s, s:s}", "type", "error", "code",
		    "stopped", "message", text, "by", by);
	else
		ev = json_pack("{s:s, s:s, s:s}", "type", "error", "code",
		    t->emsg != NULL ? t->ecode : "agent", "message", text);
	evs = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	publish(t, evs != NULL ? evs : "{\"type\":\"error\"}", true);
	free(evs);
}

/* To the listeners of this turn's messages; the last event ends them. */
static void
publish(const struct turn *t, const char *json, bool last)
{
	struct sub	**sp, *s;
	size_t		 i;
	bool		 mine;

	pthread_mutex_lock(&lock);
	for (sp = &subs; (s = *sp) != NULL; ) {
		for (mine = false, i = 0; i < t->nids && !mine; i++)
			mine = s->msg == t->ids[i];
		if (!mine) {
			sp = &s->next;
			continue;
		}
		s->fn(s->arg, json, last);
		if (last) {
			*sp = s->next;
			free(s);
		} else
			sp = &s->next;
	}
	pthread_mutex_unlock(&lock);
}

/*
 * agent.sandbox_scope: one sandbox per owner (default), per
 * conversation, or per channel. Names are made of what sandbox names
 * allow, with a hash when the source had other characters.
 */
static void
sandbox_name(const struct config *c, const char *conv, const char *owner,
    const char *channel, char *out, size_t outsz)
{
	static const char *const prefixes[] = { "agent", "conv", "chan" };
	int		 scope = c->agent_sandbox_scope;
	const char	*src = scope == 1 ? conv : scope == 2 ? channel :
			    owner;
	const char	*prefix = prefixes[scope >= 0 && scope < 3 ? scope :
			    0];
	unsigned char	 h[SHA256_DIGEST_LENGTH];
	char		 clean[40];
	size_t		 i, n = 0;
	bool		 changed = strlen(src) > 24;

	for (i = 0; src[i] != '\0' && n < 24; i++) {
		unsigned char	 ch = (unsigned char)src[i];

		if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '_')
			clean[n++] = (char)ch;
		else if (ch >= 'A' && ch <= 'Z')
			clean[n++] = (char)(ch - 'A' + 'a');
		else {
			clean[n++] = '-';
			changed = true;
		}
	}
	clean[n] = '\0';
	if (!changed) {
		snprintf(out, outsz, "%s-%s", prefix, clean);
		return;
	}
	SHA256((const unsigned char *)src, strlen(src), h);
	snprintf(out, outsz, "%s-%s-%02x%02x%02x%02x", prefix, clean, h[0],
	    h[1], h[2], h[3]);
}

static long long
wall_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
