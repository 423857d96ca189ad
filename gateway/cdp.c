/* SPDX-License-Identifier: MIT */
/*
 * cdp.c: the CDP bridge's shared side. pincerd holds one control
 * connection to the browser (browser.c says where it is); on it each
 * sandbox gets a browser context of its own (Target.createBrowserContext)
 * the first time it asks, kept while it uses the browser and for
 * browser.context_idle_s after, and it learns every target's context
 * (Target.setDiscoverTargets), which is what the policy checks against.
 * Inside a sandbox 127.0.0.1:9222 reaches these routes through
 * gateway.sock (pincer-init's forwarder): /json/version, /json/list,
 * /json/new, /json/activate and /json/close answer as Chromium's do, with
 * the sandbox's own address in every URL. cdp_relay.c relays the
 * WebSocket sessions themselves.
 *
 * Everything here runs on ws.c's service thread; HTTP handlers park their
 * request (http_suspend) and post a job there.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pincer.h"

#define RESOLVE_MS	30000	/* a local Chromium has this long to start */
#define WAIT_MS		35000	/* a request waits this long for the browser */
#define CALL_MAX	4096	/* control calls in flight */
#define DEAD_KEEP_MS	30000	/* a destroyed target is remembered */

enum ctl_state { CTL_DOWN, CTL_RESOLVING, CTL_CONNECTING, CTL_UP };

struct call {
	long long	 id;
	cdp_call_fn	 fn;
	void		*arg;
	struct call	*next;
};



static void	*resolver(void *);
static int	 remote_token(char **, char *, size_t);
static bool	 token_in_query(void);
static void	 with_token(char *, size_t, const char *);
static void	 token_drop(void);
static int	 resolve(char *, size_t, const char *, char *, size_t);
static void	 resolved(void *);
static int	 ctl_open(struct ws_session *);
static void	 ctl_message(struct ws_session *, const void *, size_t, bool);
static void	 ctl_close(struct ws_session *, int, const char *);
static void	 ctl_event(json_t *);
static void	 got_version(json_t *, const char *, void *);
static void	 ctl_fail(const char *);
static void	 waiters_run(struct cdp_wait **, const char *);
static int	 wait_add(struct cdp_wait **, cdp_ready_fn, void *);
static void	 box_made(json_t *, const char *, void *);
static void	 box_gone(struct cdp_box *);
static struct cdp_target *target_find(const char *);
static void	 target_note(json_t *);
static void	 targets_purge(bool);
static void	*ticker(void *);
static void	 tick(void *);

static const struct ws_ops ctl_ops = {
	.on_open = ctl_open,
	.on_message = ctl_message,
	.on_close = ctl_close,
};

/* Service thread only, but for the ticker's flags. */
static enum ctl_state	 state;
static struct ws_session *ctl;
static char		 ws_url[1024];	/* the browser's; never shown */
static char		*token;		/* a hosted browser's; wiped */
static char		 down_why[256];
static json_t		*version;	/* Browser.getVersion's */
static long long	 next_id = 1;
static struct call	*calls;
static size_t		 ncalls;
static struct cdp_wait	*ctl_waiters;
static struct cdp_box	*boxes;
static struct cdp_target	*targets;
static size_t		 ntargets, targets_cap;
static unsigned long	 target_seq;
static char		 bridge_id[37];	/* in the URLs sandboxes see */
static char		 downloads_root[4096];

static pthread_t	 tick_thread;
static bool		 tick_running;
static bool		 tick_quit;	/* atomic */
static bool		 tick_queued;	/* atomic */
static struct ws_job	 tick_job = { .fn = tick };
static pthread_mutex_t	 tick_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 tick_cond = PTHREAD_COND_INITIALIZER;

/* The resolver's answer, handed to the service thread. */
struct resolution {
	struct ws_job	 job;
	int		 rc;
	char		 url[1024];
	char		*token;		/* owned, wiped; NULL: none */
	char		 why[256];
};

int
cdp_start(const struct config *c)
{
	unsigned char	 r[16];
	size_t		 i;

	if (browser_backend(c) == BROWSER_OFF)
		return 0;
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return -1;
	r[6] = (r[6] & 0x0f) | 0x40;
	r[8] = (r[8] & 0x3f) | 0x80;
	for (i = 0; i < sizeof(r); i++)
		snprintf(bridge_id + strlen(bridge_id), sizeof(bridge_id) -
		    strlen(bridge_id), "%s%02x", i == 4 || i == 6 || i == 8 ||
		    i == 10 ? "-" : "", r[i]);
	snprintf(downloads_root, sizeof(downloads_root), "%s/browser-downloads",
	    c->state_dir);
	if (pthread_create(&tick_thread, NULL, ticker, NULL) != 0)
		return -1;
	tick_running = true;
	return 0;
}

/* Shutting down: parked requests are answered, sessions told 1001. */
void
cdp_stop(void)
{
	if (!tick_running)
		return;
	pthread_mutex_lock(&tick_lock);
	__atomic_store_n(&tick_quit, true, __ATOMIC_RELEASE);
	pthread_cond_signal(&tick_cond);
	pthread_mutex_unlock(&tick_lock);
	pthread_join(tick_thread, NULL);
	tick_running = false;
	/* The last tick sees tick_quit and ends everything. */
	if (!__atomic_exchange_n(&tick_queued, true, __ATOMIC_ACQ_REL))
		ws_post(&tick_job);
}

/*
 * fn(arg, NULL) once the control connection is up, or fn(arg, why) if
 * the browser cannot be reached; a local Chromium is started meanwhile.
 */
void
cdp_ready(void (*fn)(void *, const char *), void *arg)
{
	pthread_attr_t		 attr;
	pthread_t		 th;

	if (state == CTL_UP) {
		fn(arg, NULL);
		return;
	}
	if (wait_add(&ctl_waiters, fn, arg) == -1 || state != CTL_DOWN)
		return;
	state = CTL_RESOLVING;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &attr, resolver, NULL) != 0)
		ctl_fail("cannot start a thread");
	pthread_attr_destroy(&attr);
}

/*
 * Who may use the bridge where: a sandbox on its own socket (9222 inside
 * it), anyone else with the browser scope under /cdp/. NULL: allowed.
 */
const char *
cdp_refusal(const struct identity *id, bool public_path)
{
	if (!tick_running)
		return "the browser is off (browser.backend)";
	if (public_path && id->kind == ID_SANDBOX)
		return "a sandbox reaches the browser on 127.0.0.1:9222";
	if (!public_path && id->kind != ID_SANDBOX)
		return "the browser bridge answers inside a sandbox, on "
		    "127.0.0.1:9222; from outside, under /cdp/";
	return NULL;
}

/* The box of a caller: its sandbox, or "user:NAME" for the rest. */
void
cdp_box_name(const struct identity *id, char *out, size_t outsz)
{
	if (id->kind == ID_SANDBOX)
		snprintf(out, outsz, "%.*s", SBX_NAME_MAX, id->user);
	else
		snprintf(out, outsz, "user:%.*s", SBX_NAME_MAX, id->user);
}

struct cdp_box *
cdp_box_find(const char *name)
{
	struct cdp_box	*b;

	for (b = boxes; b != NULL; b = b->next)
		if (!strcmp(b->name, name))
			return b;
	return NULL;
}

/* The side of the browser called name, made on first use. */
struct cdp_box *
cdp_box_get(const char *name, bool sandbox)
{
	struct cdp_box	*b;

	for (b = boxes; b != NULL; b = b->next)
		if (!strcmp(b->name, name))
			return b;
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	snprintf(b->name, sizeof(b->name), "%s", name);
	b->sandbox = sandbox;
	snprintf(b->downloads, sizeof(b->downloads), "%s/%s",
	    downloads_root, name);
	b->idle_since = now_ms();
	b->next = boxes;
	boxes = b;
	return b;
}

static void	box_ready_ctl(void *, const char *);

/* fn(arg, NULL) once b has its context, or fn(arg, why). */
void
cdp_box_ready(struct cdp_box *b, void (*fn)(void *, const char *),
    void *arg)
{
	if (state == CTL_UP && b->ctx[0] != '\0') {
		fn(arg, NULL);
		return;
	}
	if (wait_add(&b->waiters, fn, arg) == 0 && !b->making) {
		b->making = true;
		cdp_ready(box_ready_ctl, b);
	}
}

static void
box_ready_ctl(void *arg, const char *why)
{
	struct cdp_box	*b = arg;
	json_t		*p;
	char		 err[200];

	/*
	 * A sandbox's pages go out as the sandbox, under its egress policy:
	 * through its own proxy port, loopback included ("<-loopback>" ends
	 * Chromium's implicit bypass). No proxy, no context: never one that
	 * fetches from the host's network unchecked.
	 */
	if (why == NULL && b->sandbox && egress_browser_proxy(b->name,
	    b->proxy, sizeof(b->proxy), err, sizeof(err)) == -1)
		why = err;
	if (why != NULL) {
		b->making = false;
		waiters_run(&b->waiters, why);
		return;
	}
	/* Disposed with the control connection: no context outlives
	 * pincerd's hold on the browser, a remote one included. */
	p = json_pack("{s:b}", "disposeOnDetach", 1);
	if (*b->proxy != '\0') {
		json_object_set_new(p, "proxyServer", json_string(b->proxy));
		json_object_set_new(p, "proxyBypassList",
		    json_string("<-loopback>"));
	}
	if (cdp_call("Target.createBrowserContext", p, box_made, b) == -1) {
		b->making = false;
		waiters_run(&b->waiters, "the browser is not reachable");
	}
}

static void
box_made(json_t *res, const char *why, void *arg)
{
	struct cdp_box	*b = arg;
	const char	*id = json_string_value(json_object_get(res,
			    "browserContextId"));

	b->making = false;
	if (why == NULL && id == NULL)
		why = "the browser made no context";
	if (why == NULL) {
		snprintf(b->ctx, sizeof(b->ctx), "%s", id);
		if (mkdir(downloads_root, 0700) == -1 && errno != EEXIST)
			log_warn("cannot make the downloads folder", "%s",
			    strerror(errno));
		(void)mkdir(b->downloads, 0700);
		log_info("browser context made", "sandbox=%s", b->name);
	} else
		log_warn("no browser context for a sandbox", "sandbox=%s %s",
		    b->name, why);
	waiters_run(&b->waiters, why);
}

/* Is ctx b's own, or one its clients made? */
bool
cdp_box_owns(const struct cdp_box *b, const char *ctx)
{
	size_t	 i;

	if (b->ctx[0] != '\0' && !strcmp(b->ctx, ctx))
		return true;
	for (i = 0; i < b->nextra; i++)
		if (!strcmp(b->extra[i], ctx))
			return true;
	return false;
}

void
cdp_box_add_ctx(struct cdp_box *b, const char *ctx)
{
	char	(*n)[CDP_ID_MAX];

	if (cdp_box_owns(b, ctx) || strlen(ctx) >= CDP_ID_MAX)
		return;
	if ((n = reallocarray(b->extra, b->nextra + 1, sizeof(*n))) == NULL)
		return;
	b->extra = n;
	snprintf(b->extra[b->nextra++], CDP_ID_MAX, "%s", ctx);
}

void
cdp_box_drop_ctx(struct cdp_box *b, const char *ctx)
{
	size_t	 i;

	for (i = 0; i < b->nextra; i++)
		if (!strcmp(b->extra[i], ctx)) {
			memmove(b->extra[i], b->extra[b->nextra - 1],
			    CDP_ID_MAX);
			b->nextra--;
			return;
		}
}

/* The contexts b's clients made, for Target.getBrowserContexts. */
json_t *
cdp_box_contexts(const struct cdp_box *b)
{
	json_t	*a = json_array();
	size_t	 i;

	for (i = 0; i < b->nextra; i++)
		json_array_append_new(a, json_string(b->extra[i]));
	return a;
}

/*
 * Browser.close from one of b's clients: its contexts are disposed (its
 * tabs close), and the next use makes a fresh one.
 */
void
cdp_box_reset(struct cdp_box *b)
{
	size_t	 i;

	for (i = 0; i < b->nextra; i++)
		(void)cdp_call("Target.disposeBrowserContext", json_pack(
		    "{s:s}", "browserContextId", b->extra[i]), NULL, NULL);
	if (b->ctx[0] != '\0')
		(void)cdp_call("Target.disposeBrowserContext", json_pack(
		    "{s:s}", "browserContextId", b->ctx), NULL, NULL);
	free(b->extra);
	b->extra = NULL;
	b->nextra = 0;
	b->ctx[0] = '\0';
}

/* The context a target is in, or NULL if the bridge never saw it. */
const char *
cdp_target_ctx(const char *id)
{
	struct cdp_target	*t = target_find(id);

	return t != NULL ? t->ctx : NULL;
}

/* A target the browser just made in ctx (its createTarget answer). */
void
cdp_target_add(const char *id, const char *ctx)
{
	json_t	*ti = json_pack("{s:s,s:s,s:s}", "targetId", id,
		    "browserContextId", ctx, "type", "page");

	target_note(ti);
	json_decref(ti);
}

/*
 * method on the control connection; fn(result, NULL, arg) or
 * fn(NULL, why, arg) on the service thread. params is taken. -1: not
 * sent (fn is not called).
 */
int
cdp_call(const char *method, json_t *params, cdp_call_fn fn, void *arg)
{
	struct call	*c;
	json_t		*m;
	char		*s;
	int		 rc = -1;

	m = json_pack("{s:I,s:s,s:o}", "id", (json_int_t)next_id, "method",
	    method, "params", params != NULL ? params : json_object());
	if (state != CTL_UP || ncalls >= CALL_MAX || m == NULL ||
	    (s = json_dumps(m, JSON_COMPACT)) == NULL) {
		json_decref(m);
		return -1;
	}
	if ((c = calloc(1, sizeof(*c))) != NULL &&
	    ws_send(ctl, s, strlen(s), false) == 0) {
		c->id = next_id++;
		c->fn = fn;
		c->arg = arg;
		c->next = calls;
		calls = c;
		ncalls++;
		rc = 0;
	} else
		free(c);
	free(s);
	json_decref(m);
	return rc;
}

/* Forget arg: calls still in flight for it are answered to no one. */
void
cdp_call_forget(void *arg)
{
	struct call	*c;

	for (c = calls; c != NULL; c = c->next)
		if (c->arg == arg)
			c->fn = NULL;
}

const char *
cdp_bridge_id(void)
{
	return bridge_id;
}

bool
cdp_running(void)
{
	return tick_running;
}

/* The targets the bridge knows (destroyed ones too, dead_at set). */
size_t
cdp_targets(const struct cdp_target **out)
{
	*out = targets;
	return ntargets;
}

/* Browser.getVersion's answer; NULL while the browser is not there. */
json_t *
cdp_version(void)
{
	return version;
}

struct cdp_target *
cdp_target_find(const char *id)
{
	return target_find(id);
}

/* --- the control connection ------------------------------------------- */

static void *
resolver(void *unused)
{
	struct resolution	*r;

	(void)unused;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->rc = remote_token(&r->token, r->why, sizeof(r->why)) == -1 ? -1 :
	    resolve(r->url, sizeof(r->url), r->token, r->why, sizeof(r->why));
	r->job.fn = resolved;
	r->job.arg = r;
	ws_post(&r->job);
	return NULL;
}

/*
 * The browser-level WebSocket URL: a ws(s):// endpoint as it is; an
 * http:// one asked (/json/version), with its host kept: Chromium names
 * itself by the address it bound, which may not be ours to reach.
 * Chromium answers only a Host that is an address or localhost.
 */
/*
 * The secret named by browser.remote_token, for a remote backend that
 * wants one; *out NULL when none is set. -1: named but not there.
 */
static int
remote_token(char **out, char *why, size_t whysz)
{
	const struct config	*c = config_current();
	struct buf		 b;
	int			 rc = 0;

	*out = NULL;
	if (browser_backend(c) != BROWSER_REMOTE || !*c->browser_remote_token)
		return 0;
	buf_init(&b, SECRETS_MAX + 64);
	if (secrets_get(c->browser_remote_token, &b) == -1 || b.data == NULL) {
		snprintf(why, whysz, "the secret %s (browser.remote_token) is "
		    "not set: pincer secret set %s", c->browser_remote_token,
		    c->browser_remote_token);
		rc = -1;
	} else if ((*out = strdup(b.data)) == NULL)
		rc = -1;
	if (b.data != NULL)
		explicit_bzero(b.data, b.len);
	buf_free(&b);
	return rc;
}

static int
resolve(char *out, size_t outsz, const char *tok, char *why, size_t whysz)
{
	struct chan_http	 h;
	char			 ep[1024], url[1100], hosthdr[300];
	char			 authhdr[SECRETS_MAX / 8];
	const char		*hdrs[] = { hosthdr, NULL, NULL }, *ws, *p, *q;
	uint64_t		 end = now_ms() + RESOLVE_MS;
	json_t			*j = NULL;
	int			 rc = -1;

	/* A local Chromium just started has RESOLVE_MS to be ready. */
	while (browser_endpoint(ep, sizeof(ep), why, whysz) == -1)
		if (now_ms() > end)
			return -1;
		else
			usleep(100000);
	if (strncmp(ep, "ws://", 5) == 0 || strncmp(ep, "wss://", 6) == 0) {
		snprintf(out, outsz, "%s", ep);
		return 0;
	}
	p = strstr(ep, "://") + 3;
	q = p + strcspn(p, "/?");
	snprintf(hosthdr, sizeof(hosthdr), "Host: %.*s", (int)(q - p), p);
	if (strncmp(p, "localhost", 9) != 0 && !(*p >= '0' && *p <= '9') &&
	    *p != '[')
		snprintf(hosthdr, sizeof(hosthdr), "Host: localhost");
	snprintf(url, sizeof(url), "%.*s/json/version", (int)(q - ep), ep);
	if (tok != NULL) {
		if (token_in_query())
			with_token(url, sizeof(url), tok);
		else {
			snprintf(authhdr, sizeof(authhdr), "Authorization: "
			    "Bearer %s", tok);
			hdrs[1] = authhdr;
		}
	}
	memset(&h, 0, sizeof(h));
	h.method = "GET";
	h.url = url;
	h.headers = hdrs;
	h.timeout_ms = 10000;
	if (chan_http_do(&h) == -1)
		snprintf(why, whysz, "the browser did not answer: %.200s",
		    h.error);
	else if (h.status != 200 || (j = chan_http_json(&h)) == NULL ||
	    (ws = json_string_value(json_object_get(j,
	    "webSocketDebuggerUrl"))) == NULL ||
	    (p = strstr(ws, "/devtools/")) == NULL)
		snprintf(why, whysz, "the browser's /json/version answered "
		    "%d without a webSocketDebuggerUrl", h.status);
	else {
		snprintf(out, outsz, "ws%s%.*s%s", ep[4] == 's' ? "s" : "",
		    (int)(q - (strstr(ep, "://"))), strstr(ep, "://"), p);
		rc = 0;
	}
	json_decref(j);
	chan_http_free(&h);
	explicit_bzero(url, sizeof(url));
	explicit_bzero(authhdr, sizeof(authhdr));
	return rc;
}

static bool
token_in_query(void)
{
	return config_current()->browser_remote_token_in == 1;
}

/*
 * url with token=TOK added to its query (browserless and the like take
 * it so), percent-encoded: the URL is never logged.
 */
static void
with_token(char *url, size_t urlsz, const char *tok)
{
	size_t	 n = strlen(url);

	n += (size_t)snprintf(url + n, urlsz > n ? urlsz - n : 0, "%stoken=",
	    strchr(url, '?') != NULL ? "&" : "?");
	for (; *tok != '\0' && n + 4 < urlsz; tok++)
		if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		    "0123456789-._~", *tok) != NULL && *tok != '\0')
			url[n++] = *tok;
		else
			n += (size_t)snprintf(url + n, urlsz - n, "%%%02X",
			    (unsigned char)*tok);
	url[n < urlsz ? n : urlsz - 1] = '\0';
}

static void
resolved(void *arg)
{
	struct resolution	*r = arg;

	token_drop();
	if (r->rc == -1) {
		ctl_fail(r->why);
		free(r->token);
		free(r);
		return;
	}
	snprintf(ws_url, sizeof(ws_url), "%s", r->url);
	token = r->token;
	free(r);
	state = CTL_CONNECTING;
	if ((ctl = cdp_dial(NULL, &ctl_ops, NULL)) == NULL)
		ctl_fail("cannot connect to the browser");
}

static void
token_drop(void)
{
	if (token != NULL) {
		explicit_bzero(token, strlen(token));
		free(token);
		token = NULL;
	}
}

/*
 * A connection to the browser: its browser endpoint (path NULL) or
 * path on it (a page's), with a hosted browser's token if it has one.
 */
struct ws_session *
cdp_dial(const char *path, const struct ws_ops *ops, void *user)
{
	struct ws_dial		 d = { .no_origin = true };
	struct ws_session	*s;
	char			 url[1200], auth[SECRETS_MAX / 8];
	const char		*p;

	if ((p = strstr(ws_url, "://")) == NULL || (p = strchr(p + 3,
	    '/')) == NULL)
		return NULL;
	snprintf(url, sizeof(url), "%.*s%s", (int)(p - ws_url), ws_url,
	    path != NULL ? path : p);
	d.msg_max = (size_t)config_current()->browser_max_message;
	if (token != NULL && token_in_query())
		with_token(url, sizeof(url), token);
	else if (token != NULL) {
		snprintf(auth, sizeof(auth), "Bearer %s", token);
		d.auth = auth;
	}
	s = ws_dial_url(url, &d, ops, user);
	explicit_bzero(url, sizeof(url));
	explicit_bzero(auth, sizeof(auth));
	return s;
}

static int
ctl_open(struct ws_session *s)
{
	(void)s;
	state = CTL_UP;
	log_info("browser bridge connected", NULL);
	/* The version first: /json/version is answered from it. */
	if (cdp_call("Browser.getVersion", NULL, got_version, NULL) == -1 ||
	    cdp_call("Target.setDiscoverTargets", json_pack("{s:b}",
	    "discover", 1), NULL, NULL) == -1)
		return -1;
	return 0;
}

static void
got_version(json_t *res, const char *why, void *arg)
{
	(void)arg;
	json_decref(version);
	version = why == NULL ? json_incref(res) : NULL;
	waiters_run(&ctl_waiters, why);
}

static void
ctl_message(struct ws_session *s, const void *p, size_t n, bool binary)
{
	json_t		*m = json_loadb(p, n, 0, NULL);
	json_t		*id = json_object_get(m, "id");
	struct call	**pp, *c;
	const char	*why;

	(void)s;
	(void)binary;
	if (!json_is_integer(id)) {
		if (m != NULL)
			ctl_event(m);
		json_decref(m);
		return;
	}
	for (pp = &calls; (c = *pp) != NULL; pp = &c->next)
		if (c->id == json_integer_value(id))
			break;
	if (c != NULL) {
		*pp = c->next;
		ncalls--;
		why = json_string_value(json_object_get(json_object_get(m,
		    "error"), "message"));
		if (c->fn != NULL)
			c->fn(json_object_get(m, "result"), why != NULL ? why :
			    json_object_get(m, "error") != NULL ? "error" :
			    NULL, c->arg);
		free(c);
	}
	json_decref(m);
}

/* Discovery: every target's context, URL and title, kept current. */
static void
ctl_event(json_t *m)
{
	const char	*method = json_string_value(json_object_get(m,
			    "method"));
	json_t		*p = json_object_get(m, "params");
	struct cdp_target	*t;

	if (method == NULL)
		return;
	if (!strcmp(method, "Target.targetCreated") ||
	    !strcmp(method, "Target.targetInfoChanged"))
		target_note(json_object_get(p, "targetInfo"));
	else if (!strcmp(method, "Target.targetDestroyed") &&
	    (t = target_find(json_string_value(json_object_get(p,
	    "targetId")))) != NULL)
		t->dead_at = now_ms();
}

static void
ctl_close(struct ws_session *s, int code, const char *reason)
{
	struct logline	 l;

	(void)s;
	if (log_begin(&l, LOG_WARN, "browser bridge disconnected")) {
		log_int(&l, "code", code);
		log_str(&l, "reason", reason);
		log_end(&l);
	}
	ctl = NULL;
	ctl_fail(state == CTL_UP ? "the browser went away" :
	    "cannot connect to the browser");
}

/*
 * Down: calls in flight fail, every context is gone with the
 * connection (disposeOnDetach), and whoever waits is told why.
 */
static void
ctl_fail(const char *why)
{
	struct call	*c;
	struct cdp_box	*b;

	snprintf(down_why, sizeof(down_why), "%s", why);
	token_drop();
	if (ctl != NULL) {
		ws_close(ctl, 1001, "going away");
		ctl = NULL;
	}
	state = CTL_DOWN;
	while ((c = calls) != NULL) {
		calls = c->next;
		if (c->fn != NULL)
			c->fn(NULL, why, c->arg);
		free(c);
	}
	ncalls = 0;
	json_decref(version);
	version = NULL;
	targets_purge(true);
	for (b = boxes; b != NULL; b = b->next) {
		b->ctx[0] = '\0';
		b->nextra = 0;
		b->making = false;
		waiters_run(&b->waiters, why);
	}
	waiters_run(&ctl_waiters, why);
}

/* fn(arg, why) is owed later; -1: out of memory, and it was told. */
static int
wait_add(struct cdp_wait **head, cdp_ready_fn fn, void *arg)
{
	struct cdp_wait	*w;

	if ((w = calloc(1, sizeof(*w))) == NULL) {
		fn(arg, "out of memory");
		return -1;
	}
	w->fn = fn;
	w->arg = arg;
	w->deadline = now_ms() + WAIT_MS;
	w->next = *head;
	*head = w;
	return 0;
}

static void
waiters_run(struct cdp_wait **head, const char *why)
{
	struct cdp_wait	*w;

	while ((w = *head) != NULL) {
		*head = w->next;
		w->fn(w->arg, why);
		free(w);
	}
}

/* --- targets ---------------------------------------------------------- */

static struct cdp_target *
target_find(const char *id)
{
	size_t	 i;

	if (id == NULL)
		return NULL;
	for (i = 0; i < ntargets; i++)
		if (!strcmp(targets[i].id, id))
			return &targets[i];
	return NULL;
}

static void
target_note(json_t *ti)
{
	const char	*id = json_string_value(json_object_get(ti,
			    "targetId"));
	const char	*ctx = json_string_value(json_object_get(ti,
			    "browserContextId"));
	const char	*s;
	struct cdp_target	*t, *n;

	if (id == NULL || strlen(id) >= CDP_ID_MAX)
		return;
	if ((t = target_find(id)) == NULL) {
		if (ntargets == targets_cap) {
			if ((n = reallocarray(targets, targets_cap ?
			    targets_cap * 2 : 16, sizeof(*n))) == NULL)
				return;
			targets = n;
			targets_cap = targets_cap ? targets_cap * 2 : 16;
		}
		t = &targets[ntargets++];
		memset(t, 0, sizeof(*t));
		snprintf(t->id, sizeof(t->id), "%s", id);
		t->seq = ++target_seq;
	}
	if (ctx != NULL && t->ctx[0] == '\0')
		snprintf(t->ctx, sizeof(t->ctx), "%s", ctx);
	if ((s = json_string_value(json_object_get(ti, "type"))) != NULL)
		snprintf(t->type, sizeof(t->type), "%s", s);
	if ((s = json_string_value(json_object_get(ti, "url"))) != NULL) {
		free(t->url);
		t->url = strdup(s);
	}
	if ((s = json_string_value(json_object_get(ti, "title"))) != NULL) {
		free(t->title);
		t->title = strdup(s);
	}
}

/* Destroyed targets are kept a while: clients hear of it late. */
static void
targets_purge(bool all)
{
	uint64_t	 now = now_ms();
	size_t		 i = 0;

	while (i < ntargets)
		if (all || (targets[i].dead_at != 0 &&
		    now - targets[i].dead_at > DEAD_KEEP_MS)) {
			free(targets[i].url);
			free(targets[i].title);
			targets[i] = targets[--ntargets];
		} else
			i++;
}

/* --- the tick: idle contexts, expired waits --------------------------- */

static void *
ticker(void *unused)
{
	struct timespec	 ts;

	(void)unused;
	pthread_mutex_lock(&tick_lock);
	while (!__atomic_load_n(&tick_quit, __ATOMIC_ACQUIRE)) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&tick_cond, &tick_lock, &ts);
		if (!__atomic_exchange_n(&tick_queued, true,
		    __ATOMIC_ACQ_REL))
			ws_post(&tick_job);
	}
	pthread_mutex_unlock(&tick_lock);
	return NULL;
}

static void	expire(struct cdp_wait **, uint64_t);

static void
tick(void *unused)
{
	const struct config	*c = config_current();
	struct cdp_box		**pp, *b;
	uint64_t		 now = now_ms();
	bool			 quit = __atomic_load_n(&tick_quit,
				    __ATOMIC_ACQUIRE);
	json_t			*info;
	bool			 stopped;

	(void)unused;
	__atomic_store_n(&tick_queued, false, __ATOMIC_RELEASE);
	if (quit) {
		cdp_relay_close_all();
		ctl_fail("pincerd is shutting down");
	}
	expire(&ctl_waiters, now);
	targets_purge(false);
	cdp_relay_tick(now);
	for (pp = &boxes; (b = *pp) != NULL; ) {
		expire(&b->waiters, now);
		info = b->sandbox ? sbx_info(b->name) : NULL;
		stopped = b->sandbox && (info == NULL || strcmp(
		    json_string_value(json_object_get(info, "state")),
		    "running") != 0);
		json_decref(info);
		/* A sandbox put to sleep loses its tabs; its cookies too. */
		if (stopped && b->nconns > 0)
			cdp_relay_box_gone(b);
		if (b->users == 0 && b->waiters == NULL && !b->making &&
		    (stopped || quit || now - b->idle_since >
		    (uint64_t)c->browser_context_idle_s * 1000)) {
			*pp = b->next;
			box_gone(b);
		} else
			pp = &b->next;
	}
}

static void
expire(struct cdp_wait **head, uint64_t now)
{
	struct cdp_wait	**pp, *w;

	for (pp = head; (w = *pp) != NULL; )
		if (w->deadline < now) {
			*pp = w->next;
			w->fn(w->arg, "the browser did not answer in time");
			free(w);
		} else
			pp = &w->next;
}

/* Idle long enough, or its sandbox removed: the context goes. */
static void
box_gone(struct cdp_box *b)
{
	if (b->ctx[0] != '\0')
		log_info("browser context disposed", "sandbox=%s", b->name);
	cdp_call_forget(b);
	if (state == CTL_UP)
		cdp_box_reset(b);
	if (b->sandbox)
		egress_browser_forget(b->name);
	free(b->extra);
	free(b);
}
