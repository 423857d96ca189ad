/* SPDX-License-Identifier: MIT */
/*
 * cdp_live.c: watching a sandbox's browser. WS /api/v1/sandboxes/{name}/
 * browser/live streams one of its tabs as it is drawn: Chromium's
 * Page.startScreencast frames, each sent on as a binary message (the
 * JPEG itself), and a text message {"type":"tab",…} when the tab opens
 * or moves to another page. GET /api/v1/sandboxes/{name}/browser lists
 * the tabs to choose from. Both are for admins, like the terminal.
 *
 * Flow control is Chromium's own: it sends the next frame only once the
 * last is acknowledged, and the acknowledgement waits while the watcher
 * has more than LIVE_QUEUE_MAX unread, so a slow watcher gets fewer
 * frames, never a growing queue. The tab is only watched: nothing the
 * watcher sends reaches the browser.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pincer.h"

#define LIVE_QUEUE_MAX	((size_t)1 << 20)

struct live {
	struct ws_session	*pub;	/* the watcher; NULL once gone */
	struct ws_session	*up;	/* the tab's page connection */
	char			 box[CDP_BOX_NAME];
	char			 target[CDP_ID_MAX];
	long			 pending_ack;	/* a frame's, held; -1 none */
	long long		 next_id;
};

/* A parked GET …/browser. */
struct tabs {
	struct http_req	*req;
	char		 box[CDP_BOX_NAME];
	char		*body;		/* owned */
	int		 status;
	struct ws_job	 job;
};

static bool	 live_upgrade(struct ws_session *, struct ws_refusal *);
static int	 live_open(struct ws_session *);
static void	 live_message(struct ws_session *, const void *, size_t,
		    bool);
static void	 live_drain(struct ws_session *);
static void	 live_close(struct ws_session *, int, const char *);
static void	 live_go(void *, const char *);
static int	 up_open(struct ws_session *);
static void	 up_message(struct ws_session *, const void *, size_t, bool);
static void	 up_close(struct ws_session *, int, const char *);
static void	 send_cmd(struct live *, const char *, json_t *);
static void	 frame(struct live *, json_t *);
static void	 ack(struct live *);
static void	 tab_info(struct live *, const char *, const char *);
static void	 live_done(struct live *);
static const struct cdp_target *pick(const char *box, const char *want);
static void	 tabs_run(void *);
static void	 tabs_resume(struct http_req *, void *);
static void	 tabs_free(void *);

const struct ws_ops cdp_live_ops = {
	.on_upgrade = live_upgrade,
	.on_open = live_open,
	.on_message = live_message,
	.on_drain = live_drain,
	.on_close = live_close,
	.keepalive = true,
};

static const struct ws_ops up_ops = {
	.on_open = up_open,
	.on_message = up_message,
	.on_close = up_close,
};

/* GET /api/v1/sandboxes/{name}/browser: the tabs, for the live view. */
void
api_sandbox_browser(struct http_req *req)
{
	struct tabs	*t;
	char		 name[SBX_NAME_MAX + 1];
	json_t		*info;

	if (!sbx_path_name(http_req_path(req), name, sizeof(name)) ||
	    (info = sbx_info(name)) == NULL) {
		http_error(req, 404, "not_found", "%s",
		    sbx_strerror(SBX_NOT_FOUND));
		return;
	}
	json_decref(info);
	if (!cdp_running()) {
		http_error(req, 409, "browser_off", "the browser is off "
		    "(browser.backend)");
		return;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		http_error(req, 503, "no_memory", "out of memory");
		return;
	}
	t->req = req;
	snprintf(t->box, sizeof(t->box), "%s", name);
	http_suspend(req, tabs_resume, tabs_free, t);
	t->job.fn = tabs_run;
	t->job.arg = t;
	ws_post(&t->job);
}

static void
tabs_run(void *arg)
{
	struct tabs		*t = arg;
	const struct cdp_target	*tg;
	struct cdp_box		*b = cdp_box_find(t->box);
	json_t			*a = json_array();
	size_t			 i, n = cdp_targets(&tg);

	for (i = 0; b != NULL && i < n; i++)
		if (tg[i].dead_at == 0 && !strcmp(tg[i].type, "page") &&
		    cdp_box_owns(b, tg[i].ctx))
			json_array_append_new(a, json_pack("{s:s,s:s,s:s}",
			    "id", tg[i].id, "url", tg[i].url != NULL ?
			    tg[i].url : "", "title", tg[i].title != NULL ?
			    tg[i].title : ""));
	t->status = 200;
	a = json_pack("{s:o}", "tabs", a);
	t->body = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	http_resume(t->req);
}

static void
tabs_resume(struct http_req *req, void *arg)
{
	struct tabs	*t = arg;

	if (t->body == NULL)
		http_error(req, 503, "no_memory", "out of memory");
	else
		http_json(req, t->status, t->body);
}

static void
tabs_free(void *arg)
{
	struct tabs	*t = arg;

	free(t->body);
	free(t);
}

/* Refused before the upgrade: no such sandbox, or no tab to watch. */
static bool
live_upgrade(struct ws_session *s, struct ws_refusal *no)
{
	char		 name[SBX_NAME_MAX + 1], want[CDP_ID_MAX];
	const char	*q = ws_query(s);
	json_t		*info;

	if (!sbx_path_name(ws_path(s), name, sizeof(name)) ||
	    (info = sbx_info(name)) == NULL) {
		*no = (struct ws_refusal){ .status = 404, .code = "not_found" };
		snprintf(no->msg, sizeof(no->msg), "%s",
		    sbx_strerror(SBX_NOT_FOUND));
		return false;
	}
	json_decref(info);
	want[0] = '\0';
	if (strncmp(q, "tab=", 4) == 0)
		snprintf(want, sizeof(want), "%.*s", (int)strcspn(q + 4, "&"),
		    q + 4);
	if (pick(name, want) == NULL) {
		*no = (struct ws_refusal){ .status = 404, .code = "no_tab" };
		snprintf(no->msg, sizeof(no->msg), "%s", want[0] != '\0' ?
		    "no such tab in this sandbox's browser" : "this sandbox "
		    "has no browser tab open");
		return false;
	}
	return true;
}

static int
live_open(struct ws_session *s)
{
	const struct identity	*id = ws_identity(s);
	const struct cdp_target	*t;
	struct live		*l;
	char			 name[SBX_NAME_MAX + 1], want[CDP_ID_MAX];
	const char		*q = ws_query(s);

	sbx_path_name(ws_path(s), name, sizeof(name));
	want[0] = '\0';
	if (strncmp(q, "tab=", 4) == 0)
		snprintf(want, sizeof(want), "%.*s", (int)strcspn(q + 4, "&"),
		    q + 4);
	if ((t = pick(name, want)) == NULL || (l = calloc(1,
	    sizeof(*l))) == NULL)
		return -1;
	l->pub = s;
	l->pending_ack = -1;
	l->next_id = 1;
	snprintf(l->box, sizeof(l->box), "%s", name);
	snprintf(l->target, sizeof(l->target), "%s", t->id);
	ws_set_user(s, l);
	audit_add(id->user[0] != '\0' ? id->user : "unknown", ws_ip(s),
	    "sandbox.browser_live", name, l->target);
	cdp_ready(live_go, l);
	return 0;
}

static void
live_go(void *arg, const char *why)
{
	struct live	*l = arg;
	char		 path[CDP_ID_MAX + 20];

	if (l->pub == NULL) {
		live_done(l);
		return;
	}
	snprintf(path, sizeof(path), "/devtools/page/%s", l->target);
	if (why != NULL)
		ws_close(l->pub, 1011, why);
	else if ((l->up = cdp_dial(path, &up_ops, l)) == NULL)
		ws_close(l->pub, 1011, "cannot connect to the browser");
}

/* The watcher only watches. */
static void
live_message(struct ws_session *s, const void *p, size_t n, bool binary)
{
	(void)s;
	(void)p;
	(void)n;
	(void)binary;
}

static void
live_drain(struct ws_session *s)
{
	struct live	*l = ws_user(s);

	ack(l);
}

static void
live_close(struct ws_session *s, int code, const char *reason)
{
	struct live	*l = ws_user(s);

	(void)code;
	(void)reason;
	l->pub = NULL;
	if (l->up != NULL)
		ws_close(l->up, 1000, "the watcher went away");
	live_done(l);
}

static int
up_open(struct ws_session *s)
{
	struct live		*l = ws_user(s);
	const struct cdp_target	*t = cdp_target_find(l->target);

	if (t != NULL)
		tab_info(l, t->url, t->title);
	send_cmd(l, "Page.enable", NULL);
	send_cmd(l, "Page.startScreencast", json_pack("{s:s,s:i,s:i,s:i}",
	    "format", "jpeg", "quality", 60, "maxWidth", 1280, "maxHeight",
	    800));
	return 0;
}

static void
up_message(struct ws_session *s, const void *p, size_t n, bool binary)
{
	struct live	*l = ws_user(s);
	json_t		*m;
	const char	*method;
	json_t		*prm;

	(void)binary;
	if (l->pub == NULL || (m = json_loadb(p, n, 0, NULL)) == NULL)
		return;
	method = json_string_value(json_object_get(m, "method"));
	prm = json_object_get(m, "params");
	if (method == NULL)
		;
	else if (!strcmp(method, "Page.screencastFrame"))
		frame(l, prm);
	else if (!strcmp(method, "Page.frameNavigated") &&
	    json_object_get(json_object_get(prm, "frame"), "parentId") ==
	    NULL)
		tab_info(l, json_string_value(json_object_get(json_object_get(
		    prm, "frame"), "url")), NULL);
	else if (!strcmp(method, "Inspector.detached") ||
	    !strcmp(method, "Inspector.targetCrashed"))
		ws_close(l->pub, 1000, "the tab closed");
	json_decref(m);
}

/* One frame: its JPEG to the watcher, and the ack when it has room. */
static void
frame(struct live *l, json_t *prm)
{
	const char	*data = json_string_value(json_object_get(prm, "data"));
	unsigned char	*jpg;
	ssize_t		 n;

	/* Acknowledged even when it cannot be passed on: else the
	 * screencast would stop for good. */
	l->pending_ack = (long)json_integer_value(json_object_get(prm,
	    "sessionId"));
	if (data != NULL && (jpg = malloc(strlen(data) / 4 * 3 + 3)) !=
	    NULL) {
		if ((n = b64_decode(data, strlen(data), jpg)) > 0)
			(void)ws_send(l->pub, jpg, (size_t)n, true);
		free(jpg);
	}
	ack(l);
}

static void
ack(struct live *l)
{
	if (l->pending_ack < 0 || l->up == NULL || l->pub == NULL ||
	    ws_queued(l->pub) > LIVE_QUEUE_MAX)
		return;
	send_cmd(l, "Page.screencastFrameAck", json_pack("{s:I}",
	    "sessionId", (json_int_t)l->pending_ack));
	l->pending_ack = -1;
}

static void
send_cmd(struct live *l, const char *method, json_t *params)
{
	json_t	*m = json_pack("{s:I,s:s,s:o}", "id", (json_int_t)l->next_id++,
		    "method", method, "params", params != NULL ? params :
		    json_object());
	char	*s = m != NULL ? json_dumps(m, JSON_COMPACT) : NULL;

	if (s != NULL && l->up != NULL)
		(void)ws_send(l->up, s, strlen(s), false);
	free(s);
	json_decref(m);
}

static void
tab_info(struct live *l, const char *url, const char *title)
{
	json_t	*o = json_pack("{s:s,s:s,s:s?,s:s?}", "type", "tab", "id",
		    l->target, "url", url, "title", title);
	char	*s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;

	if (s != NULL)
		(void)ws_send(l->pub, s, strlen(s), false);
	free(s);
	json_decref(o);
}

static void
up_close(struct ws_session *s, int code, const char *reason)
{
	struct live	*l = ws_user(s);

	(void)code;
	(void)reason;
	l->up = NULL;
	if (l->pub != NULL)
		ws_close(l->pub, 1000, "the tab or the browser went away");
	live_done(l);
}

static void
live_done(struct live *l)
{
	if (l->pub != NULL || l->up != NULL)
		return;
	cdp_call_forget(l);
	free(l);
}

/* The tab to watch: the one asked for, else the sandbox's newest. */
static const struct cdp_target *
pick(const char *box, const char *want)
{
	const struct cdp_target	*t, *best = NULL;
	struct cdp_box		*b = cdp_box_find(box);
	size_t			 i, n = cdp_targets(&t);

	for (i = 0; b != NULL && i < n; i++)
		if (t[i].dead_at == 0 && !strcmp(t[i].type, "page") &&
		    cdp_box_owns(b, t[i].ctx) && (*want == '\0' ||
		    !strcmp(want, t[i].id)) && (best == NULL ||
		    t[i].seq > best->seq))
			best = &t[i];
	return best;
}
