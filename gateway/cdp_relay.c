/* SPDX-License-Identifier: MIT */
/*
 * cdp_relay.c: a sandbox's CDP WebSocket (/devtools/browser/{id} or
 * /devtools/page/{id} on 127.0.0.1:9222 inside it) relayed to the
 * browser, message by message, through cdp_policy.c.
 *
 * Each client connection gets one of its own to the browser. Its
 * commands are renumbered (the browser sees ids the bridge chose), so an
 * answer is matched to its command without trusting the client's ids,
 * and what the bridge learns from an answer (a target made, a session
 * attached) is certain. Answers with nothing to learn go back with their
 * id replaced and the rest untouched: a 2 MB screenshot is not parsed.
 * Target events are parsed and cut to the sandbox's own targets.
 *
 * Back-pressure: past QUEUE_MAX queued for one side, the other is not
 * read until it drains; a message is bounded by browser.max_message_bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pincer.h"

#define QUEUE_MAX	((size_t)4 << 20)
#define PENDING_MAX	10000	/* commands in flight per connection */
#define HELD_MAX	256	/* commands read before the browser answered */

struct pend {
	long long	 up_id;
	json_t		*client_id;	/* owned */
	enum cdp_note	 note;
	bool		 internal;	/* the bridge's own: answer dropped */
	char		 id[CDP_ID_MAX];	/* verdict's context/target */
	struct pend	*next;
};

struct sess {
	char		 id[CDP_ID_MAX];
	char		 target[CDP_ID_MAX];
};

struct conn {
	struct ws_session	*pub;	/* the sandbox's; NULL once gone */
	struct ws_session	*up;	/* the browser's; NULL before, after */
	struct cdp_box		*box;	/* its nconns counts us */
	bool			 page_conn;
	char			 page[CDP_ID_MAX];
	bool			 up_open;
	bool			 waiting;	/* on cdp_box_ready */
	bool			 queued;	/* over a limit: waits */
	bool			 admitted;	/* counted in the limits */
	uint64_t		 since;		/* queued at */
	uint64_t		 last;		/* a message either way */
	char			(*made)[CDP_ID_MAX];	/* closed at the end */
	size_t			 nmade;
	long			 refs;		/* control calls for us */
	json_t			*held;		/* read before up_open */
	struct sess		*sess;
	size_t			 nsess, sess_cap;
	char			(*seen)[CDP_ID_MAX];
	size_t			 nseen, seen_cap;
	json_int_t		*win;
	size_t			 nwin;
	struct pend		*pend;		/* oldest first */
	struct pend		**pend_tail;
	size_t			 npend;
	long long		 next_id;
	struct cdp_scope	 scope;
	struct conn		*next;
};

/* A Storage call of a page session, sent at browser level instead. */
struct cookies {
	struct conn	*c;
	json_t		*client_id;	/* owned */
	char		 sid[CDP_ID_MAX];
};

static bool	 pub_upgrade(struct ws_session *, struct ws_refusal *);
static int	 pub_open(struct ws_session *);
static void	 pub_message(struct ws_session *, const void *, size_t, bool);
static void	 pub_drain(struct ws_session *);
static void	 pub_close(struct ws_session *, int, const char *);
static int	 up_open(struct ws_session *);
static void	 up_message(struct ws_session *, const void *, size_t, bool);
static void	 up_drain(struct ws_session *);
static void	 up_close(struct ws_session *, int, const char *);
static void	 conn_go(void *, const char *);
static void	 conn_done(struct conn *);
static void	 client_command(struct conn *, json_t *);
static int	 forward(struct conn *, json_t *, const struct cdp_verdict *,
		    bool);
static void	 reply(struct conn *, json_t *, const char *, json_t *,
		    const char *);
static void	 cookies(struct conn *, json_t *);
static void	 cookies_done(json_t *, const char *, void *);
static void	 answer(struct conn *, const char *, size_t);
static void	 learn(struct conn *, struct pend *, json_t *);
static void	 event(struct conn *, const char *, size_t);
static void	 detach_foreign(struct conn *, const struct cdp_event *);
static void	 send_to(struct conn *, struct ws_session *, const char *,
		    size_t);
static struct pend *pend_take(struct conn *, long long);
static void	 sess_add(struct conn *, const char *, const char *);
static void	 sess_drop(struct conn *, const char *);
static void	 seen_add(struct conn *, const char *);
static void	 seen_drop(struct conn *, const char *);
static bool	 sc_owned(void *, const char *);
static const char *sc_target_ctx(void *, const char *);
static const char *sc_session(void *, const char *);
static bool	 sc_seen(void *, const char *);
static bool	 sc_window(void *, json_int_t);
static json_t	*sc_contexts(void *);
static bool	 page_of(const char *, char *, size_t);
static const char *bare(const char *);
static bool	 admit(struct conn *);
static void	 admit_queued(void);
static void	 made_add(struct conn *, const char *);

const struct ws_ops cdp_browser_ops = {
	.on_upgrade = pub_upgrade,
	.on_open = pub_open,
	.on_message = pub_message,
	.on_drain = pub_drain,
	.on_close = pub_close,
};

const struct ws_ops cdp_page_ops = {
	.on_upgrade = pub_upgrade,
	.on_open = pub_open,
	.on_message = pub_message,
	.on_drain = pub_drain,
	.on_close = pub_close,
};

static const struct ws_ops up_ops = {
	.on_open = up_open,
	.on_message = up_message,
	.on_drain = up_drain,
	.on_close = up_close,
};

static struct conn	*conns;		/* service thread only */
static long		 active;	/* admitted sessions, all sandboxes */

/* Shutting down: every session is told 1001. */
void
cdp_relay_close_all(void)
{
	struct conn	*c;

	for (c = conns; c != NULL; c = c->next)
		if (c->pub != NULL)
			ws_close(c->pub, 1001, "pincerd is shutting down");
}

/*
 * Once a second: sessions queued too long are refused, idle ones ended,
 * and those of a sandbox no longer running cut.
 */
void
cdp_relay_tick(uint64_t now)
{
	const struct config	*cf = config_current();
	struct conn		*c;
	char			 why[120];

	for (c = conns; c != NULL; c = c->next) {
		if (c->pub == NULL)
			continue;
		if (c->queued && now - c->since >
		    (uint64_t)cf->browser_queue_timeout_s * 1000) {
			c->queued = false;
			snprintf(why, sizeof(why), "too many browser sessions "
			    "(browser.max_sessions%s): waited %ld s",
			    c->box->nconns >= cf->browser_max_sessions ? "" :
			    "_total", cf->browser_queue_timeout_s);
			ws_close(c->pub, 1013, why);
		} else if (c->admitted && now - c->last >
		    (uint64_t)cf->browser_session_idle_s * 1000) {
			snprintf(why, sizeof(why), "idle for %ld s "
			    "(browser.session_idle_s)",
			    cf->browser_session_idle_s);
			ws_close(c->pub, 1001, why);
		}
	}
}

/* The sandbox went to sleep or away: its sessions end with it. */
void
cdp_relay_box_gone(struct cdp_box *b)
{
	struct conn	*c;

	for (c = conns; c != NULL; c = c->next)
		if (c->box == b && c->pub != NULL)
			ws_close(c->pub, 1001, "the sandbox stopped");
}

/*
 * Before the upgrade: a sandbox only, and a page its own (Chromium too
 * answers an unknown page with 404).
 */
static bool
pub_upgrade(struct ws_session *s, struct ws_refusal *no)
{
	const struct identity	*id = ws_identity(s);
	struct cdp_box		*b;
	char			 page[CDP_ID_MAX], name[CDP_BOX_NAME];
	const char		*ctx, *why, *path = bare(ws_path(s));

	if ((why = cdp_refusal(id, path != ws_path(s))) != NULL) {
		*no = (struct ws_refusal){ .status = 404, .code = "not_found" };
		snprintf(no->msg, sizeof(no->msg), "%s", why);
		return false;
	}
	cdp_box_name(id, name, sizeof(name));
	b = cdp_box_get(name, id->kind == ID_SANDBOX);
	if (strncmp(path, "/devtools/page/", 15) == 0 &&
	    (!page_of(path, page, sizeof(page)) || b == NULL ||
	    (ctx = cdp_target_ctx(page)) == NULL || !cdp_box_owns(b, ctx))) {
		*no = (struct ws_refusal){ .status = 404, .code = "not_found" };
		snprintf(no->msg, sizeof(no->msg), "No such target id: %s",
		    path + 15);
		return false;
	}
	return b != NULL;
}

/* The path without /cdp, the prefix of the public port's bridge. */
static const char *
bare(const char *path)
{
	return strncmp(path, "/cdp/", 5) == 0 ? path + 4 : path;
}

/*
 * Nothing is read from the client until the browser side is up. Over
 * browser.max_sessions (this sandbox's) or browser.max_sessions_total,
 * the session waits for a slot, browser.queue_timeout_s at most.
 */
static int
pub_open(struct ws_session *s)
{
	const struct identity	*id = ws_identity(s);
	struct conn		*c;
	char			 name[CDP_BOX_NAME];

	cdp_box_name(id, name, sizeof(name));
	if ((c = calloc(1, sizeof(*c))) == NULL || (c->box = cdp_box_get(name,
	    id->kind == ID_SANDBOX)) == NULL) {
		free(c);
		return -1;
	}
	c->pub = s;
	c->next_id = 1;
	c->pend_tail = &c->pend;
	c->page_conn = page_of(bare(ws_path(s)), c->page, sizeof(c->page));
	c->scope = (struct cdp_scope){ .ctx = c->box->ctx,
	    .page = c->page_conn ? c->page : NULL,
	    .downloads = c->box->downloads, .ctx_owned = sc_owned,
	    .proxy = c->box->sandbox ? c->box->proxy : NULL,
	    .target_ctx = sc_target_ctx, .session_target = sc_session,
	    .seen = sc_seen, .window_known = sc_window,
	    .contexts = sc_contexts, .arg = c };
	c->box->users++;
	c->next = conns;
	conns = c;
	c->since = c->last = now_ms();
	ws_set_user(s, c);
	ws_pause(s, true);
	if (!admit(c)) {
		c->queued = true;
		log_info("browser session queued", "sandbox=%s", c->box->name);
	}
	return 0;
}

/* Room under both limits: counted, and on its way to the browser. */
static bool
admit(struct conn *c)
{
	const struct config	*cf = config_current();

	if (c->box->nconns >= cf->browser_max_sessions ||
	    active >= cf->browser_max_sessions_total)
		return false;
	c->queued = false;
	c->admitted = true;
	c->box->nconns++;
	active++;
	c->waiting = true;
	cdp_box_ready(c->box, conn_go, c);
	return true;
}

/* A slot came free: the longest-waiting sessions that fit go. */
static void
admit_queued(void)
{
	struct conn	*c, *oldest;

	do {
		oldest = NULL;
		for (c = conns; c != NULL; c = c->next)
			if (c->queued && c->pub != NULL && (oldest == NULL ||
			    c->since < oldest->since) &&
			    c->box->nconns < config_current()->
			    browser_max_sessions)
				oldest = c;
	} while (oldest != NULL && admit(oldest));
}

static void
conn_go(void *arg, const char *why)
{
	struct conn	*c = arg;
	char		 path[CDP_ID_MAX + 20];
	const char	*ctx;

	c->waiting = false;
	if (c->pub == NULL) {
		conn_done(c);
		return;
	}
	if (why != NULL) {
		ws_close(c->pub, 1011, why);
		return;
	}
	if (c->page_conn && ((ctx = cdp_target_ctx(c->page)) == NULL ||
	    !cdp_box_owns(c->box, ctx))) {
		ws_close(c->pub, 1008, "No such target id");
		return;
	}
	snprintf(path, sizeof(path), "/devtools/page/%s", c->page);
	if ((c->up = cdp_dial(c->page_conn ? path : NULL, &up_ops, c)) ==
	    NULL)
		ws_close(c->pub, 1011, "cannot connect to the browser");
}

static void
pub_message(struct ws_session *s, const void *p, size_t n, bool binary)
{
	struct conn	*c = ws_user(s);
	json_t		*m;

	(void)binary;
	c->last = now_ms();
	if ((m = json_loadb(p, n, JSON_REJECT_DUPLICATES, NULL)) == NULL) {
		reply(c, NULL, NULL, NULL, "Message must be a valid JSON");
		return;
	}
	if (!c->up_open) {
		if (c->held == NULL)
			c->held = json_array();
		if (json_array_size(c->held) >= HELD_MAX)
			reply(c, json_object_get(m, "id"), NULL, NULL,
			    "the browser is not connected yet");
		else
			json_array_append(c->held, m);
		json_decref(m);
		return;
	}
	client_command(c, m);
	json_decref(m);
}

static void
client_command(struct conn *c, json_t *m)
{
	struct cdp_verdict	 v;
	json_t			*id = json_object_get(m, "id");
	const char		*sid = json_string_value(json_object_get(m,
				    "sessionId"));

	if (cdp_policy_check(&c->scope, m, &v) == -1) {
		reply(c, id, sid, NULL, v.why);
		return;
	}
	switch (v.act) {
	case CDP_FORWARD:
		if (c->npend >= PENDING_MAX)
			reply(c, id, sid, NULL, "too many commands in flight");
		else if (forward(c, m, &v, false) == -1)
			reply(c, id, sid, NULL, "the browser bridge is out of "
			    "memory");
		break;
	case CDP_ANSWER:
		reply(c, id, sid, v.result, NULL);
		break;
	case CDP_REFUSE:
		reply(c, id, sid, NULL, v.why);
		break;
	case CDP_COOKIES:
		cookies(c, m);
		break;
	case CDP_CLOSE:
		/* Browser.close: the sandbox's tabs go, not the browser. */
		reply(c, id, sid, v.result, NULL);
		cdp_box_reset(c->box);
		ws_close(c->pub, 1000, "browser closed");
		break;
	}
	json_decref(v.result);
}

/*
 * m to the browser under an id of ours; the answer comes back to it.
 * -1: out of memory, m as it was (its sender is told).
 */
static int
forward(struct conn *c, json_t *m, const struct cdp_verdict *v,
    bool internal)
{
	struct pend	*p;
	char		*s;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return -1;
	p->up_id = c->next_id++;
	p->client_id = json_incref(json_object_get(m, "id"));
	p->note = v != NULL ? v->note : CDP_NOTE_NONE;
	p->internal = internal;
	if (v != NULL)
		snprintf(p->id, sizeof(p->id), "%s", v->id);
	json_object_set_new(m, "id", json_integer(p->up_id));
	if ((s = json_dumps(m, JSON_COMPACT)) == NULL) {
		json_object_set(m, "id", p->client_id);
		json_decref(p->client_id);
		free(p);
		return -1;
	}
	/* Answers mostly come in order: the oldest is found first. */
	p->next = NULL;
	*c->pend_tail = p;
	c->pend_tail = &p->next;
	c->npend++;
	send_to(c, c->up, s, strlen(s));
	free(s);
	return 0;
}

/* An answer of the bridge's own: a result, or an error (why). */
static void
reply(struct conn *c, json_t *id, const char *sid, json_t *result,
    const char *why)
{
	json_t	*o = json_object();
	char	*s;

	json_object_set_new(o, "id", id != NULL ? json_incref(id) :
	    json_integer(0));
	if (why != NULL)
		json_object_set_new(o, "error", json_pack("{s:i,s:s}", "code",
		    -32000, "message", why));
	else
		json_object_set(o, "result", result);
	if (sid != NULL)
		json_object_set_new(o, "sessionId", json_string(sid));
	if (c->pub != NULL && (s = json_dumps(o, JSON_COMPACT)) != NULL) {
		send_to(c, c->pub, s, strlen(s));
		free(s);
	}
	json_decref(o);
}

/*
 * Storage.getCookies and its kin act, in a page session, on the default
 * context's jar (research §5): sent on the control connection instead,
 * with the context of the session's target.
 */
static void
cookies(struct conn *c, json_t *m)
{
	const char	*sid = json_string_value(json_object_get(m,
			    "sessionId"));
	const char	*target = sid != NULL ? sc_session(c, sid) : c->page;
	const char	*ctx = cdp_target_ctx(target);
	struct cookies	*k;
	json_t		*p = json_deep_copy(json_object_get(m, "params"));

	if (p == NULL)
		p = json_object();
	json_object_set_new(p, "browserContextId", json_string(ctx != NULL &&
	    cdp_box_owns(c->box, ctx) ? ctx : c->box->ctx));
	if ((k = calloc(1, sizeof(*k))) == NULL) {
		json_decref(p);
		return;
	}
	k->c = c;
	k->client_id = json_incref(json_object_get(m, "id"));
	snprintf(k->sid, sizeof(k->sid), "%s", sid != NULL ? sid : "");
	if (cdp_call(json_string_value(json_object_get(m, "method")), p,
	    cookies_done, k) == -1) {
		reply(c, k->client_id, sid, NULL, "the browser is not "
		    "reachable");
		json_decref(k->client_id);
		free(k);
		return;
	}
	c->refs++;
}

static void
cookies_done(json_t *res, const char *why, void *arg)
{
	struct cookies	*k = arg;
	struct conn	*c = k->c;

	c->refs--;
	if (c->pub != NULL)
		reply(c, k->client_id, k->sid[0] != '\0' ? k->sid : NULL, res,
		    why);
	json_decref(k->client_id);
	free(k);
	conn_done(c);
}

static void
pub_drain(struct ws_session *s)
{
	struct conn	*c = ws_user(s);

	if (c->up != NULL)
		ws_pause(c->up, false);
}

static void
pub_close(struct ws_session *s, int code, const char *reason)
{
	struct conn	*c = ws_user(s);

	size_t		 i;

	(void)code;
	(void)reason;
	c->pub = NULL;
	c->queued = false;
	/* Its tabs close with it, as with a browser that is quit. */
	for (i = 0; i < c->nmade; i++)
		if (cdp_target_ctx(c->made[i]) != NULL)
			(void)cdp_call("Target.closeTarget", json_pack("{s:s}",
			    "targetId", c->made[i]), NULL, NULL);
	if (c->admitted) {
		c->admitted = false;
		c->box->nconns--;
		active--;
		c->box->idle_since = now_ms();
		admit_queued();
	}
	if (c->up != NULL)
		ws_close(c->up, 1000, "the client went away");
	conn_done(c);
}

static int
up_open(struct ws_session *s)
{
	struct conn	*c = ws_user(s);
	json_t		*held = c->held;
	size_t		 i;

	c->up_open = true;
	c->held = NULL;
	for (i = 0; i < json_array_size(held) && c->pub != NULL; i++)
		client_command(c, json_array_get(held, i));
	json_decref(held);
	if (c->pub != NULL)
		ws_pause(c->pub, false);
	return 0;
}

/*
 * From the browser. Chromium writes an answer as {"id":N,… and an event
 * as {"method":"…: only answers to be learned from and Target events
 * are parsed; anything else shaped otherwise is parsed to be safe.
 */
static void
up_message(struct ws_session *s, const void *p, size_t n, bool binary)
{
	struct conn	*c = ws_user(s);

	(void)binary;
	if (c->pub == NULL)
		return;
	c->last = now_ms();
	if (n > 6 && memcmp(p, "{\"id\":", 6) == 0)
		answer(c, p, n);
	else if (n > 11 && memcmp(p, "{\"method\":\"", 11) == 0 &&
	    (n < 18 || memcmp((const char *)p + 11, "Target.", 7) != 0))
		send_to(c, c->pub, p, n);
	else
		event(c, p, n);
}

static void
answer(struct conn *c, const char *p, size_t n)
{
	struct pend	*pd;
	long long	 id = 0;
	size_t		 i = 6;
	char		*cid, *s;
	json_t		*m;

	while (i < n && p[i] >= '0' && p[i] <= '9' && id < (1LL << 50))
		id = id * 10 + (p[i++] - '0');
	if ((pd = pend_take(c, id)) == NULL)
		return;
	if (pd->internal)
		;
	else if (pd->note == CDP_NOTE_NONE &&
	    (cid = json_dumps(pd->client_id, JSON_ENCODE_ANY)) != NULL) {
		/* The client's id in place of ours; the rest as it came. */
		if ((s = malloc(6 + strlen(cid) + n - i)) != NULL) {
			memcpy(s, "{\"id\":", 6);
			memcpy(s + 6, cid, strlen(cid));
			memcpy(s + 6 + strlen(cid), p + i, n - i);
			send_to(c, c->pub, s, 6 + strlen(cid) + n - i);
			free(s);
		}
		free(cid);
	} else if ((m = json_loadb(p, n, 0, NULL)) != NULL) {
		learn(c, pd, json_object_get(m, "result"));
		json_object_set(m, "id", pd->client_id);
		if ((s = json_dumps(m, JSON_COMPACT)) != NULL) {
			send_to(c, c->pub, s, strlen(s));
			free(s);
		}
		json_decref(m);
	}
	json_decref(pd->client_id);
	free(pd);
}

/* What an answer teaches: a context, a target, a session, a window. */
static void
learn(struct conn *c, struct pend *pd, json_t *res)
{
	const char	*s;

	if (res == NULL)
		return;
	switch (pd->note) {
	case CDP_NOTE_CONTEXT:
		if ((s = json_string_value(json_object_get(res,
		    "browserContextId"))) != NULL)
			cdp_box_add_ctx(c->box, s);
		break;
	case CDP_NOTE_DISPOSE:
		cdp_box_drop_ctx(c->box, pd->id);
		break;
	case CDP_NOTE_TARGET:
		if ((s = json_string_value(json_object_get(res,
		    "targetId"))) != NULL) {
			cdp_target_add(s, pd->id);
			made_add(c, s);
		}
		break;
	case CDP_NOTE_ATTACH:
		if ((s = json_string_value(json_object_get(res,
		    "sessionId"))) != NULL)
			sess_add(c, s, pd->id);
		break;
	case CDP_NOTE_TARGETS:
		cdp_policy_filter_targets(&c->scope, res);
		break;
	case CDP_NOTE_WINDOW:
		if (json_is_integer(json_object_get(res, "windowId"))) {
			json_int_t	*w = reallocarray(c->win, c->nwin + 1,
					    sizeof(*w));

			if (w != NULL) {
				c->win = w;
				c->win[c->nwin++] = json_integer_value(
				    json_object_get(res, "windowId"));
			}
		}
		break;
	case CDP_NOTE_NONE:
		break;
	}
}

static void
event(struct conn *c, const char *p, size_t n)
{
	struct cdp_event	 e;
	json_t			*m = json_loadb(p, n, 0, NULL);

	if (m == NULL)
		return;
	if (json_is_integer(json_object_get(m, "id"))) {
		/* An answer not shaped as Chromium's: rebuilt. */
		char	*s = json_dumps(m, JSON_COMPACT);

		if (s != NULL && strncmp(s, "{\"id\":", 6) == 0)
			answer(c, s, strlen(s));
		free(s);
		json_decref(m);
		return;
	}
	if (cdp_policy_event(&c->scope, m, &e) == -1) {
		send_to(c, c->pub, p, n);
		json_decref(m);
		return;
	}
	if (e.ctx != NULL && e.target != NULL)
		cdp_target_add(e.target, e.ctx);
	switch (e.act) {
	case CDP_EV_DROP:
		break;
	case CDP_EV_DETACH:
		detach_foreign(c, &e);
		break;
	case CDP_EV_ATTACHED:
		sess_add(c, e.session, e.target != NULL ? e.target : "");
		seen_add(c, e.target);
		send_to(c, c->pub, p, n);
		break;
	case CDP_EV_DETACHED:
		sess_drop(c, e.session);
		send_to(c, c->pub, p, n);
		break;
	case CDP_EV_SEEN:
		seen_add(c, e.target);
		send_to(c, c->pub, p, n);
		break;
	case CDP_EV_GONE:
		seen_drop(c, e.target);
		send_to(c, c->pub, p, n);
		break;
	}
	json_decref(m);
}

/*
 * Auto-attach reached another sandbox's target: let it run (it may wait
 * for every debugger attached) and let go of it, unseen by the client.
 */
static void
detach_foreign(struct conn *c, const struct cdp_event *e)
{
	json_t	*m;

	if (e->waiting) {
		m = json_pack("{s:i,s:s,s:s}", "id", 0, "method",
		    "Runtime.runIfWaitingForDebugger", "sessionId",
		    e->session);
		(void)forward(c, m, NULL, true);
		json_decref(m);
	}
	m = json_pack("{s:i,s:s,s:{s:s}}", "id", 0, "method",
	    "Target.detachFromTarget", "params", "sessionId", e->session);
	if (e->parent != NULL)
		json_object_set_new(m, "sessionId", json_string(e->parent));
	(void)forward(c, m, NULL, true);
	json_decref(m);
}

/* One message on; past QUEUE_MAX waiting, stop reading its sender. */
static void
send_to(struct conn *c, struct ws_session *to, const char *p, size_t n)
{
	struct ws_session	*from = to == c->pub ? c->up : c->pub;

	if (to == NULL || ws_send(to, p, n, false) == -1)
		return;
	/*
	 * A client waiting for its one answer, or about to send its next
	 * command: what comes next comes soon, so do not sleep for it. A
	 * client with many commands out keeps the thread busy anyway, and
	 * spinning then takes the CPU the browser needs.
	 */
	if (c->npend <= 1)
		ws_spin((unsigned)config_current()->browser_spin_us);
	if (from != NULL && ws_queued(to) > QUEUE_MAX)
		ws_pause(from, true);
}

static void
up_drain(struct ws_session *s)
{
	struct conn	*c = ws_user(s);

	if (c->pub != NULL)
		ws_pause(c->pub, false);
}

static void
up_close(struct ws_session *s, int code, const char *reason)
{
	struct conn	*c = ws_user(s);
	struct logline	 l;

	c->up = NULL;
	if (c->pub != NULL) {
		if (log_begin(&l, LOG_INFO, "browser session ended by the "
		    "browser")) {
			log_str(&l, "sandbox", c->box->name);
			log_int(&l, "code", code);
			log_str(&l, "reason", reason);
			log_end(&l);
		}
		ws_close(c->pub, 1011, c->up_open ? "the browser went away" :
		    "cannot connect to the browser");
	}
	conn_done(c);
}

/* Freed when neither side, nor a wait, nor a control call has it. */
static void
conn_done(struct conn *c)
{
	struct conn	**pp;
	struct pend	*p;

	if (c->pub != NULL || c->up != NULL || c->waiting || c->refs > 0)
		return;
	for (pp = &conns; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	c->box->users--;
	c->box->idle_since = now_ms();
	while ((p = c->pend) != NULL) {
		c->pend = p->next;
		json_decref(p->client_id);
		free(p);
	}
	json_decref(c->held);
	free(c->made);
	free(c->sess);
	free(c->seen);
	free(c->win);
	free(c);
}

static struct pend *
pend_take(struct conn *c, long long id)
{
	struct pend	**pp, *p;

	for (pp = &c->pend; (p = *pp) != NULL; pp = &p->next)
		if (p->up_id == id) {
			if ((*pp = p->next) == NULL)
				c->pend_tail = pp;
			c->npend--;
			return p;
		}
	return NULL;
}

static void
sess_add(struct conn *c, const char *id, const char *target)
{
	struct sess	*n;

	if (id == NULL || strlen(id) >= CDP_ID_MAX || sc_session(c, id))
		return;
	if (c->nsess == c->sess_cap) {
		if ((n = reallocarray(c->sess, c->sess_cap ? c->sess_cap * 2 :
		    8, sizeof(*n))) == NULL)
			return;
		c->sess = n;
		c->sess_cap = c->sess_cap ? c->sess_cap * 2 : 8;
	}
	snprintf(c->sess[c->nsess].id, CDP_ID_MAX, "%s", id);
	snprintf(c->sess[c->nsess].target, CDP_ID_MAX, "%s", target);
	c->nsess++;
}

static void
made_add(struct conn *c, const char *id)
{
	char	(*n)[CDP_ID_MAX];

	if (strlen(id) >= CDP_ID_MAX || (n = reallocarray(c->made,
	    c->nmade + 1, sizeof(*n))) == NULL)
		return;
	c->made = n;
	snprintf(c->made[c->nmade++], CDP_ID_MAX, "%s", id);
}

static void
sess_drop(struct conn *c, const char *id)
{
	size_t	 i;

	for (i = 0; i < c->nsess; i++)
		if (!strcmp(c->sess[i].id, id)) {
			c->sess[i] = c->sess[--c->nsess];
			return;
		}
}

static void
seen_add(struct conn *c, const char *id)
{
	char	(*n)[CDP_ID_MAX];

	if (id == NULL || strlen(id) >= CDP_ID_MAX || sc_seen(c, id))
		return;
	if (c->nseen == c->seen_cap) {
		if ((n = reallocarray(c->seen, c->seen_cap ? c->seen_cap * 2 :
		    8, sizeof(*n))) == NULL)
			return;
		c->seen = n;
		c->seen_cap = c->seen_cap ? c->seen_cap * 2 : 8;
	}
	snprintf(c->seen[c->nseen++], CDP_ID_MAX, "%s", id);
}

static void
seen_drop(struct conn *c, const char *id)
{
	size_t	 i;

	for (i = 0; i < c->nseen; i++)
		if (!strcmp(c->seen[i], id)) {
			memcpy(c->seen[i], c->seen[--c->nseen], CDP_ID_MAX);
			return;
		}
}

/* --- the policy's view of this connection ---------------------------- */

static bool
sc_owned(void *arg, const char *ctx)
{
	struct conn	*c = arg;

	return cdp_box_owns(c->box, ctx);
}

static const char *
sc_target_ctx(void *arg, const char *target)
{
	(void)arg;
	return cdp_target_ctx(target);
}

static const char *
sc_session(void *arg, const char *id)
{
	struct conn	*c = arg;
	size_t		 i;

	for (i = 0; i < c->nsess; i++)
		if (!strcmp(c->sess[i].id, id))
			return c->sess[i].target;
	return NULL;
}

static bool
sc_seen(void *arg, const char *id)
{
	struct conn	*c = arg;
	size_t		 i;

	for (i = 0; i < c->nseen; i++)
		if (!strcmp(c->seen[i], id))
			return true;
	return false;
}

static bool
sc_window(void *arg, json_int_t w)
{
	struct conn	*c = arg;
	size_t		 i;

	for (i = 0; i < c->nwin; i++)
		if (c->win[i] == w)
			return true;
	return false;
}

static json_t *
sc_contexts(void *arg)
{
	struct conn	*c = arg;

	return cdp_box_contexts(c->box);
}

/* The {id} of /devtools/page/{id}; false for a browser connection. */
static bool
page_of(const char *path, char *out, size_t outsz)
{
	const char	*p = "/devtools/page/";
	size_t		 n;

	out[0] = '\0';
	if (strncmp(path, p, strlen(p)) != 0)
		return false;
	path += strlen(p);
	n = strspn(path, "ABCDEFabcdef0123456789-");
	if (n == 0 || n >= outsz || path[n] != '\0')
		return false;
	memcpy(out, path, n);
	out[n] = '\0';
	return true;
}
