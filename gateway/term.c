/* SPDX-License-Identifier: MIT */
/*
 * term.c: the sandbox terminal, /api/v1/sandboxes/{name}/terminal. The
 * caller's WebSocket is relayed frame by frame to pincer-init's terminal
 * WebSocket on the sandbox's control.sock (docs/sandbox-api.md,
 * "Terminal"): binary frames are the PTY's bytes, text frames JSON
 * control, each passed on with its type. Waking a sandbox may wait on
 * one that is going to sleep, so that happens on a thread of its own;
 * the relay itself runs on ws.c's service thread.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pincer.h"

/*
 * What one side may have queued for the other before we stop reading
 * the side that sends (ws_pause): the kernel's buffers then push back
 * on the sender, and memory stays bounded whatever the shell prints.
 */
#define QUEUE_MAX	((size_t)1 << 20)

/* Close codes (RFC 6455 §7.4.1; 1013 from the IANA registry, §11.7). */
#define CLOSE_NORMAL		1000
#define CLOSE_GOING_AWAY	1001
#define CLOSE_NO_STATUS		1005
#define CLOSE_ABNORMAL		1006
#define CLOSE_INTERNAL		1011
#define CLOSE_TRY_LATER		1013

struct term {
	struct ws_session	*pub;	/* the caller; NULL once gone */
	struct ws_session	*init;	/* pincer-init; NULL before, after */
	struct sbx_ref		 ref;	/* held while anything is left */
	enum sbx_err		 err;	/* what waking the sandbox gave */
	bool			 waking;	/* the waker has t */
	bool			 init_up;	/* pincer-init said 101 */
	struct term		*wake_next;	/* waker's queue */
	struct ws_job		 job;
	char			 name[SBX_NAME_MAX + 1];
	char			 uri[1100];	/* pincer-init's /terminal?… */
	char			 actor[65];
	char			 ip[64];
};

static bool	 term_upgrade(struct ws_session *, struct ws_refusal *);
static int	 term_open(struct ws_session *);
static void	 term_pub_message(struct ws_session *, const void *, size_t,
		    bool);
static void	 term_pub_drain(struct ws_session *);
static void	 term_pub_close(struct ws_session *, int, const char *);
static int	 term_init_open(struct ws_session *);
static void	 term_init_message(struct ws_session *, const void *, size_t,
		    bool);
static void	 term_init_drain(struct ws_session *);
static void	 term_init_close(struct ws_session *, int, const char *);
static int	 term_wake(struct term *);
static void	*term_waker(void *);
static void	 term_woken(void *);
static void	 term_relay(struct ws_session *, struct ws_session *,
		    const void *, size_t, bool);
static int	 term_code(int, int);
static void	 term_done(struct term *);

static pthread_mutex_t	 wake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 wake_cond = PTHREAD_COND_INITIALIZER;
static struct term	*wake_head;	/* wake_lock */
static struct term	*wake_tail;	/* wake_lock */
static bool		 waker_up;	/* wake_lock */

const struct ws_ops sandbox_terminal_ops = {
	.on_upgrade = term_upgrade,
	.on_open = term_open,
	.on_message = term_pub_message,
	.on_drain = term_pub_drain,
	.on_close = term_pub_close,
	/* A terminal may sit quiet for long: pings tell idle from gone. */
	.keepalive = true,
};

static const struct ws_ops init_ops = {
	.on_open = term_init_open,
	.on_message = term_init_message,
	.on_drain = term_init_drain,
	.on_close = term_init_close,
};

/*
 * Before the upgrade is answered: a sandbox that does not exist, or a
 * host where none can run, is refused with a plain HTTP status, which
 * every WebSocket client shows better than a close code.
 */
static bool
term_upgrade(struct ws_session *s, struct ws_refusal *no)
{
	char	 name[SBX_NAME_MAX + 1];
	json_t	*info;

	if (!sbx_path_name(ws_path(s), name, sizeof(name)) ||
	    (info = sbx_info(name)) == NULL) {
		*no = (struct ws_refusal){ .status = 404, .code = "not_found" };
		snprintf(no->msg, sizeof(no->msg), "%s",
		    sbx_strerror(SBX_NOT_FOUND));
		return false;
	}
	json_decref(info);
	if (sbx_refusal() != NULL) {
		*no = (struct ws_refusal){ .status = 503,
		    .code = "sandbox_unavailable" };
		snprintf(no->msg, sizeof(no->msg), "sandboxes cannot run on "
		    "this host: %s", sbx_refusal());
		return false;
	}
	return true;
}

/*
 * Upgraded. Nothing is read from the caller until pincer-init answers:
 * its keystrokes wait in the socket, not in our memory.
 */
static int
term_open(struct ws_session *s)
{
	const struct identity	*id = ws_identity(s);
	struct term		*t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return -1;
	t->pub = s;
	sbx_path_name(ws_path(s), t->name, sizeof(t->name));
	snprintf(t->uri, sizeof(t->uri), "/terminal%s%s",
	    *ws_query(s) != '\0' ? "?" : "", ws_query(s));
	snprintf(t->actor, sizeof(t->actor), "%s", id->user[0] != '\0' ?
	    id->user : "unknown");
	snprintf(t->ip, sizeof(t->ip), "%s", ws_ip(s));
	if (term_wake(t) == -1) {
		free(t);
		return -1;
	}
	ws_set_user(s, t);
	ws_pause(s, true);
	return 0;
}

/*
 * Hand t to the waker thread, started on first use and kept for good:
 * a sandbox's launcher gets SIGTERM when the thread that forked it ends
 * (PR_SET_PDEATHSIG is per thread), so sbx_acquire, which may start
 * one, must not run on a thread that is about to exit.
 */
static int
term_wake(struct term *t)
{
	pthread_attr_t	 attr;
	pthread_t	 th;
	int		 rc = 0;

	pthread_mutex_lock(&wake_lock);
	if (!waker_up) {
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		rc = pthread_create(&th, &attr, term_waker, NULL);
		pthread_attr_destroy(&attr);
		waker_up = rc == 0;
	}
	if (rc == 0) {
		t->waking = true;
		t->wake_next = NULL;
		if (wake_tail != NULL)
			wake_tail->wake_next = t;
		else
			wake_head = t;
		wake_tail = t;
		pthread_cond_signal(&wake_cond);
	}
	pthread_mutex_unlock(&wake_lock);
	if (rc != 0)
		log_error("cannot start a thread", "%s", strerror(rc));
	return rc == 0 ? 0 : -1;
}

/* sbx_acquire may wait for a sandbox going to sleep: not on lws's. */
static void *
term_waker(void *arg)
{
	struct term	*t;

	for (;;) {
		pthread_mutex_lock(&wake_lock);
		while (wake_head == NULL)
			pthread_cond_wait(&wake_cond, &wake_lock);
		t = wake_head;
		if ((wake_head = t->wake_next) == NULL)
			wake_tail = NULL;
		pthread_mutex_unlock(&wake_lock);
		t->err = sbx_acquire(t->name, &t->ref);
		t->job.fn = term_woken;
		t->job.arg = t;
		ws_post(&t->job);
	}
	return NULL;
}

/* Back on the service thread: connect to pincer-init, or say why not. */
static void
term_woken(void *arg)
{
	struct term	*t = arg;

	t->waking = false;
	if (t->pub == NULL) {
		term_done(t);
		return;
	}
	if (t->err != SBX_OK) {
		log_warn("terminal refused", "name=%s %s", t->name,
		    sbx_strerror(t->err));
		ws_close(t->pub, t->err == SBX_LIMIT || t->err == SBX_BUSY ?
		    CLOSE_TRY_LATER : CLOSE_INTERNAL, sbx_strerror(t->err));
		return;
	}
	if ((t->init = ws_connect(t->ref.control, t->uri, &init_ops, t)) ==
	    NULL) {
		log_warn("cannot reach a sandbox's terminal", "name=%s %s",
		    t->name, t->ref.control);
		ws_close(t->pub, CLOSE_INTERNAL, "cannot reach the sandbox");
	}
}

static void
term_pub_message(struct ws_session *s, const void *p, size_t n,
    bool binary)
{
	struct term	*t = ws_user(s);

	/* Reading is paused until pincer-init answers; RFC 6455 §4.1 has
	 * the client wait for 101 before it sends, so nothing is lost. */
	if (t->init == NULL) {
		log_debug("terminal input dropped: no sandbox side",
		    "name=%s bytes=%zu", t->name, n);
		return;
	}
	term_relay(s, t->init, p, n, binary);
}

static void
term_pub_drain(struct ws_session *s)
{
	struct term	*t = ws_user(s);

	if (t->init != NULL)
		ws_pause(t->init, false);
}

/* The caller went: the shell stays (pincer-init keeps it), we let go. */
static void
term_pub_close(struct ws_session *s, int code, const char *reason)
{
	struct term	*t = ws_user(s);

	t->pub = NULL;
	if (t->init != NULL)
		ws_close(t->init, term_code(code, CLOSE_GOING_AWAY),
		    *reason != '\0' ? reason : "the client went away");
	term_done(t);
}

static int
term_init_open(struct ws_session *s)
{
	struct term	*t = ws_user(s);
	const char	*q = strchr(t->uri, '?');

	t->init_up = true;
	audit_add(t->actor, t->ip, "sandbox.terminal", t->name,
	    q != NULL ? q + 1 : "");
	if (t->pub != NULL)
		ws_pause(t->pub, false);
	return 0;
}

static void
term_init_message(struct ws_session *s, const void *p, size_t n,
    bool binary)
{
	struct term	*t = ws_user(s);

	if (t->pub != NULL)
		term_relay(s, t->pub, p, n, binary);
}

static void
term_init_drain(struct ws_session *s)
{
	struct term	*t = ws_user(s);

	if (t->pub != NULL)
		ws_pause(t->pub, false);
}

/*
 * pincer-init ended the terminal (1000 after the shell's exit frame), or
 * could not be reached: the caller gets the same code where one may be
 * sent, else 1011 with what went wrong.
 */
static void
term_init_close(struct ws_session *s, int code, const char *reason)
{
	struct term	*t = ws_user(s);
	struct logline	 l;
	char		 why[124];

	if (log_begin(&l, code == CLOSE_ABNORMAL ? LOG_WARN : LOG_INFO,
	    "terminal closed")) {
		log_str(&l, "name", t->name);
		log_int(&l, "code", code);
		log_str(&l, "reason", reason);
		log_end(&l);
	}
	t->init = NULL;
	if (t->pub != NULL) {
		if (code == CLOSE_ABNORMAL && !t->init_up)
			snprintf(why, sizeof(why), "the sandbox refused the "
			    "terminal: %s", reason);
		else if (code == CLOSE_ABNORMAL)
			snprintf(why, sizeof(why), "the sandbox terminal went "
			    "away%s%s", *reason != '\0' ? ": " : "", reason);
		else
			snprintf(why, sizeof(why), "%s", reason);
		ws_close(t->pub, term_code(code, CLOSE_INTERNAL), why);
	}
	term_done(t);
}

/* One message on; past QUEUE_MAX waiting, stop reading its sender. */
static void
term_relay(struct ws_session *from, struct ws_session *to, const void *p,
    size_t n, bool binary)
{
	if (ws_send(to, p, n, binary) == -1)
		return;
	if (ws_queued(to) > QUEUE_MAX)
		ws_pause(from, true);
}

/*
 * A close code one side ended with, as one we may send the other: 1005,
 * 1006 and 1015 say what happened and are never sent (RFC 6455 §7.4.1),
 * nor are unassigned ones; a close without a code was a normal one.
 */
static int
term_code(int code, int otherwise)
{
	if (code == CLOSE_NO_STATUS)
		return CLOSE_NORMAL;
	if ((code >= 1000 && code <= 1003) || (code >= 1007 &&
	    code <= 1014) || (code >= 3000 && code <= 4999))
		return code;
	return otherwise;
}

/* Free t when neither side nor the waking thread has it any more. */
static void
term_done(struct term *t)
{
	if (t->pub != NULL || t->init != NULL || t->waking)
		return;
	sbx_release(&t->ref);
	free(t);
}
