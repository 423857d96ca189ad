/* SPDX-License-Identifier: MIT */
/*
 * cdp_policy.c: what the CDP bridge does with each Chrome DevTools
 * Protocol message, decided on the parsed message alone, with no socket:
 * pass it on, pass it with the sandbox's browser context put in, answer
 * it here, or refuse it. docs/cdp-bridge-research.md §5-6 has why.
 *
 * Chromium confines almost nothing: a page session may list, attach to
 * and close another context's targets, and browser-level Storage and
 * Browser calls act on whichever context they name (or the default one).
 * So every Target.*, Browser.* and Storage.*Cookies call is checked at
 * both levels against what the sandbox owns, and whatever is not known
 * to be safe at browser level is refused (a default deny). Calls that
 * would reach the host (file:// URLs, host paths to upload, a download
 * folder of the client's choosing) are refused or rewritten too.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "pincer.h"

enum rule {
	R_PASS,		/* as it is */
	R_TARGET,	/* params.targetId: owned */
	R_TARGET_OPT,	/* params.targetId absent or owned */
	R_DETACH,	/* params.sessionId ours, or targetId owned */
	R_CREATE,	/* url checked, browserContextId put in */
	R_NEW_CTX,	/* a sandbox's proxy put in */
	R_INJECT,	/* browserContextId put in, or checked */
	R_DOWNLOAD,	/* R_INJECT, and downloadPath the sandbox's */
	R_WINDOW,	/* params.windowId learned here */
	R_CONTEXTS,	/* Target.getBrowserContexts: answered here */
	R_DISPOSE,	/* a context the sandbox made */
	R_CLOSE,	/* Browser.close: the sandbox's contexts go */
	R_NOOP,		/* answered {} */
	R_COOKIES,	/* session level: sent at browser level instead */
	R_NAVIGATE,	/* params.url checked */
	R_NO_FILES,	/* refused when it names host files */
	R_DENY,
};

struct method_rule {
	const char	*method;
	enum rule	 rule;
	enum cdp_note	 note;
};

static const struct method_rule *find_rule(const struct method_rule *,
		    const char *);
static int	 apply(const struct cdp_scope *, const struct method_rule *,
		    json_t *, bool, struct cdp_verdict *);
static int	 refuse(struct cdp_verdict *, const char *, ...)
		    PINCER_PRINTF(2, 3);
static bool	 target_owned(const struct cdp_scope *, const char *);
static int	 inject_ctx(const struct cdp_scope *, json_t *,
		    struct cdp_verdict *);
static int	 put_proxy(const struct cdp_scope *, json_t *,
		    struct cdp_verdict *);
static bool	 drag_has_files(json_t *);
static bool	 visible(const struct cdp_scope *, json_t *);

/*
 * Browser level (a browser connection, no sessionId). Anything not here
 * is refused: the browser-wide domains (SystemInfo, Tracing, Memory,
 * Extensions, Cast, …) and the escapes of research §5.
 */
static const struct method_rule browser_rules[] = {
	{ "Browser.getVersion", R_PASS, CDP_NOTE_NONE },
	{ "Target.setDiscoverTargets", R_PASS, CDP_NOTE_NONE },
	{ "Target.setAutoAttach", R_PASS, CDP_NOTE_NONE },
	{ "Target.getTargets", R_PASS, CDP_NOTE_TARGETS },
	{ "Target.getTargetInfo", R_TARGET_OPT, CDP_NOTE_NONE },
	{ "Target.createBrowserContext", R_NEW_CTX, CDP_NOTE_CONTEXT },
	{ "Target.getBrowserContexts", R_CONTEXTS, CDP_NOTE_NONE },
	{ "Target.disposeBrowserContext", R_DISPOSE, CDP_NOTE_DISPOSE },
	{ "Target.createTarget", R_CREATE, CDP_NOTE_TARGET },
	{ "Target.attachToTarget", R_TARGET, CDP_NOTE_ATTACH },
	{ "Target.closeTarget", R_TARGET, CDP_NOTE_NONE },
	{ "Target.activateTarget", R_TARGET, CDP_NOTE_NONE },
	{ "Target.detachFromTarget", R_DETACH, CDP_NOTE_NONE },
	{ "Storage.getCookies", R_INJECT, CDP_NOTE_NONE },
	{ "Storage.setCookies", R_INJECT, CDP_NOTE_NONE },
	{ "Storage.clearCookies", R_INJECT, CDP_NOTE_NONE },
	{ "Browser.grantPermissions", R_INJECT, CDP_NOTE_NONE },
	{ "Browser.resetPermissions", R_INJECT, CDP_NOTE_NONE },
	{ "Browser.setPermission", R_INJECT, CDP_NOTE_NONE },
	{ "Browser.setDownloadBehavior", R_DOWNLOAD, CDP_NOTE_NONE },
	{ "Browser.cancelDownload", R_INJECT, CDP_NOTE_NONE },
	{ "Browser.getWindowForTarget", R_TARGET, CDP_NOTE_WINDOW },
	{ "Browser.getWindowBounds", R_WINDOW, CDP_NOTE_NONE },
	{ "Browser.setWindowBounds", R_WINDOW, CDP_NOTE_NONE },
	{ "Browser.setContentsSize", R_WINDOW, CDP_NOTE_NONE },
	{ "Browser.close", R_CLOSE, CDP_NOTE_NONE },
	{ "Runtime.runIfWaitingForDebugger", R_NOOP, CDP_NOTE_NONE },
	{ NULL, R_DENY, CDP_NOTE_NONE }
};

/*
 * Session level (a sessionId, or a page connection). Target.* and
 * Browser.* not listed are refused; other domains pass unless listed.
 */
static const struct method_rule session_rules[] = {
	{ "Browser.getVersion", R_PASS, CDP_NOTE_NONE },
	{ "Browser.getWindowForTarget", R_TARGET_OPT, CDP_NOTE_WINDOW },
	{ "Browser.getWindowBounds", R_WINDOW, CDP_NOTE_NONE },
	{ "Browser.setWindowBounds", R_WINDOW, CDP_NOTE_NONE },
	{ "Browser.setContentsSize", R_WINDOW, CDP_NOTE_NONE },
	{ "Target.setDiscoverTargets", R_PASS, CDP_NOTE_NONE },
	{ "Target.setAutoAttach", R_PASS, CDP_NOTE_NONE },
	{ "Target.getTargets", R_PASS, CDP_NOTE_TARGETS },
	{ "Target.getTargetInfo", R_TARGET_OPT, CDP_NOTE_NONE },
	{ "Target.createTarget", R_CREATE, CDP_NOTE_TARGET },
	{ "Target.attachToTarget", R_TARGET, CDP_NOTE_ATTACH },
	{ "Target.closeTarget", R_TARGET, CDP_NOTE_NONE },
	{ "Target.activateTarget", R_TARGET, CDP_NOTE_NONE },
	{ "Target.detachFromTarget", R_DETACH, CDP_NOTE_NONE },
	{ "Storage.getCookies", R_COOKIES, CDP_NOTE_NONE },
	{ "Storage.setCookies", R_COOKIES, CDP_NOTE_NONE },
	{ "Storage.clearCookies", R_COOKIES, CDP_NOTE_NONE },
	{ "Page.navigate", R_NAVIGATE, CDP_NOTE_NONE },
	{ "Network.loadNetworkResource", R_NAVIGATE, CDP_NOTE_NONE },
	/* Host paths: the files are read by Chromium, on the host. */
	{ "DOM.setFileInputFiles", R_DENY, CDP_NOTE_NONE },
	{ "Input.dispatchDragEvent", R_NO_FILES, CDP_NOTE_NONE },
	{ "Page.setDownloadBehavior", R_DENY, CDP_NOTE_NONE },
	/* Whole-browser figures, not the page's. */
	{ "Memory.getBrowserSamplingProfile", R_DENY, CDP_NOTE_NONE },
	{ "Memory.getAllTimeSamplingProfile", R_DENY, CDP_NOTE_NONE },
	{ NULL, R_PASS, CDP_NOTE_NONE }
};

/*
 * msg: one message from the client, already parsed; it may be changed
 * here (a context put in) and is then sent as changed. -1: it is no CDP
 * command (no integer id or no method): v->why says why.
 */
int
cdp_policy_check(const struct cdp_scope *sc, json_t *msg,
    struct cdp_verdict *v)
{
	const struct method_rule	*r;
	const char			*method;
	json_t				*sid;
	bool				 session;

	memset(v, 0, sizeof(*v));
	if (!json_is_object(msg) || !json_is_integer(json_object_get(msg,
	    "id")) || (method = json_string_value(json_object_get(msg,
	    "method"))) == NULL) {
		refuse(v, "Message must have integer 'id' and string "
		    "'method' properties");
		return -1;
	}
	if (json_object_get(msg, "params") != NULL &&
	    !json_is_object(json_object_get(msg, "params")))
		return refuse(v, "Invalid parameters: 'params' must be an "
		    "object");
	sid = json_object_get(msg, "sessionId");
	if (sid != NULL && (!json_is_string(sid) || sc->session_target(
	    sc->arg, json_string_value(sid)) == NULL))
		return refuse(v, "Session with given id not found.");
	session = sid != NULL || sc->page != NULL;
	if (session && strncmp(method, "SystemInfo.", 11) == 0)
		return refuse(v, "'%s' is not allowed through pincer's "
		    "browser bridge", method);
	r = find_rule(session ? session_rules : browser_rules, method);
	if (session && r->method == NULL && (strncmp(method, "Target.", 7) ==
	    0 || strncmp(method, "Browser.", 8) == 0))
		return refuse(v, "'%s' is not allowed through pincer's "
		    "browser bridge", method);
	return apply(sc, r, msg, session, v);
}

/*
 * A Target event from the browser: is it the sandbox's to see? -1: it
 * is not an event this policy knows (the caller passes it).
 */
int
cdp_policy_event(const struct cdp_scope *sc, json_t *msg,
    struct cdp_event *e)
{
	const char	*m = json_string_value(json_object_get(msg, "method"));
	json_t		*p = json_object_get(msg, "params"), *ti;
	const char	*sid = json_string_value(json_object_get(msg,
			    "sessionId"));

	memset(e, 0, sizeof(*e));
	if (m == NULL || strncmp(m, "Target.", 7) != 0)
		return -1;
	e->act = CDP_EV_DROP;
	/* Events on a session not this client's are never its business. */
	if (sid != NULL && sc->session_target(sc->arg, sid) == NULL)
		return 0;
	ti = json_object_get(p, "targetInfo");
	e->target = json_string_value(json_object_get(ti, "targetId"));
	if (e->target == NULL)
		e->target = json_string_value(json_object_get(p,
		    "targetId"));
	e->ctx = json_string_value(json_object_get(ti, "browserContextId"));
	if (!strcmp(m, "Target.attachedToTarget")) {
		e->session = json_string_value(json_object_get(p,
		    "sessionId"));
		e->parent = sid;
		e->waiting = json_is_true(json_object_get(p,
		    "waitingForDebugger"));
		/* A browser target is listed, never attached to. */
		if (e->session != NULL && visible(sc, ti) &&
		    strcmp(json_string_value(json_object_get(ti, "type")) ?
		    json_string_value(json_object_get(ti, "type")) : "",
		    "browser") != 0)
			e->act = CDP_EV_ATTACHED;
		else if (e->session != NULL)
			e->act = CDP_EV_DETACH;
	} else if (!strcmp(m, "Target.detachedFromTarget")) {
		e->session = json_string_value(json_object_get(p,
		    "sessionId"));
		if (e->session != NULL && sc->session_target(sc->arg,
		    e->session) != NULL)
			e->act = CDP_EV_DETACHED;
	} else if (!strcmp(m, "Target.targetCreated") ||
	    !strcmp(m, "Target.targetInfoChanged")) {
		if (e->target != NULL && visible(sc, ti))
			e->act = CDP_EV_SEEN;
	} else if (!strcmp(m, "Target.targetDestroyed") ||
	    !strcmp(m, "Target.targetCrashed")) {
		if (e->target != NULL && sc->seen(sc->arg, e->target))
			e->act = CDP_EV_GONE;
	}
	return 0;
}

/* Target.getTargets' answer, cut to what the sandbox may see. */
void
cdp_policy_filter_targets(const struct cdp_scope *sc, json_t *result)
{
	json_t	*a = json_object_get(result, "targetInfos");
	size_t	 i = 0;

	while (i < json_array_size(a))
		if (visible(sc, json_array_get(a, i)))
			i++;
		else
			json_array_remove(a, i);
}

/*
 * URLs a sandbox may open: the web, and the harmless local schemes.
 * Chromium runs on the host: file: would read its files, chrome: and
 * the like reach the browser's own pages.
 */
bool
cdp_policy_url_ok(const char *url)
{
	static const char *const ok[] = { "http:", "https:", "about:",
	    "data:" };
	size_t	 i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strncasecmp(url, ok[i], strlen(ok[i])) == 0)
			return true;
	return false;
}

static const struct method_rule *
find_rule(const struct method_rule *t, const char *method)
{
	for (; t->method != NULL; t++)
		if (!strcmp(t->method, method))
			return t;
	return t;
}

static int
apply(const struct cdp_scope *sc, const struct method_rule *r, json_t *msg,
    bool session, struct cdp_verdict *v)
{
	json_t		*p = json_object_get(msg, "params");
	const char	*s, *m = json_string_value(json_object_get(msg,
			    "method"));

	v->note = r->note;
	switch (r->rule) {
	case R_PASS:
		return 0;
	case R_NEW_CTX:
		return put_proxy(sc, msg, v);
	case R_TARGET:
		if ((s = json_string_value(json_object_get(p, "targetId"))) ==
		    NULL || !target_owned(sc, s))
			return refuse(v, "No target with given id found");
		snprintf(v->id, sizeof(v->id), "%s", s);
		return 0;
	case R_TARGET_OPT:
		if ((s = json_string_value(json_object_get(p, "targetId"))) !=
		    NULL && !target_owned(sc, s))
			return refuse(v, "No target with given id found");
		return 0;
	case R_DETACH:
		if ((s = json_string_value(json_object_get(p,
		    "sessionId"))) != NULL)
			return sc->session_target(sc->arg, s) != NULL ? 0 :
			    refuse(v, "No session with given id");
		if ((s = json_string_value(json_object_get(p, "targetId"))) !=
		    NULL && target_owned(sc, s))
			return 0;
		return refuse(v, "No target with given id found");
	case R_CREATE:
		s = json_string_value(json_object_get(p, "url"));
		if (s == NULL || !cdp_policy_url_ok(s))
			return refuse(v, "only http(s), about: and data: URLs "
			    "may be opened through pincer's browser bridge");
		return inject_ctx(sc, msg, v);
	case R_INJECT:
		return inject_ctx(sc, msg, v);
	case R_DOWNLOAD:
		if (inject_ctx(sc, msg, v) == 0 && (s = json_string_value(
		    json_object_get(json_object_get(msg, "params"),
		    "behavior"))) != NULL && strncmp(s, "allow", 5) == 0)
			json_object_set_new(json_object_get(msg, "params"),
			    "downloadPath", json_string(sc->downloads));
		return 0;
	case R_WINDOW:
		if (!json_is_integer(json_object_get(p, "windowId")) ||
		    !sc->window_known(sc->arg, json_integer_value(
		    json_object_get(p, "windowId"))))
			return refuse(v, "Browser window not found");
		return 0;
	case R_CONTEXTS:
		v->act = CDP_ANSWER;
		v->result = json_pack("{s:o}", "browserContextIds",
		    sc->contexts(sc->arg));
		return 0;
	case R_DISPOSE:
		if ((s = json_string_value(json_object_get(p,
		    "browserContextId"))) == NULL || !sc->ctx_owned(sc->arg,
		    s) || !strcmp(s, sc->ctx))
			return refuse(v, "Failed to find context with id %s",
			    s != NULL ? s : "(none)");
		snprintf(v->id, sizeof(v->id), "%s", s);
		return 0;
	case R_CLOSE:
		v->act = CDP_CLOSE;
		v->result = json_object();
		return 0;
	case R_NOOP:
		v->act = CDP_ANSWER;
		v->result = json_object();
		return 0;
	case R_COOKIES:
		if (json_object_get(p, "browserContextId") != NULL)
			return refuse(v, "Command can only be executed on "
			    "top-level targets");
		v->act = CDP_COOKIES;
		return 0;
	case R_NAVIGATE:
		s = json_string_value(json_object_get(p, "url"));
		if (s == NULL || !cdp_policy_url_ok(s))
			return refuse(v, "only http(s), about: and data: URLs "
			    "may be opened through pincer's browser bridge");
		return 0;
	case R_NO_FILES:
		return drag_has_files(p) ? refuse(v, "files cannot be "
		    "dropped through pincer's browser bridge") : 0;
	case R_DENY:
		break;
	}
	(void)session;
	return refuse(v, "'%s' is not allowed through pincer's browser "
	    "bridge", m);
}

static int
refuse(struct cdp_verdict *v, const char *fmt, ...)
{
	va_list	 ap;

	v->act = CDP_REFUSE;
	va_start(ap, fmt);
	vsnprintf(v->why, sizeof(v->why), fmt, ap);
	va_end(ap);
	return 0;
}

static bool
target_owned(const struct cdp_scope *sc, const char *target)
{
	const char	*ctx = sc->target_ctx(sc->arg, target);

	return ctx != NULL && sc->ctx_owned(sc->arg, ctx);
}

/*
 * No browserContextId: the sandbox's own (else Chromium would use its
 * default context, shared by all). One given: it must be the sandbox's.
 */
static int
inject_ctx(const struct cdp_scope *sc, json_t *msg, struct cdp_verdict *v)
{
	json_t		*p = json_object_get(msg, "params");
	const char	*s;

	if (p == NULL) {
		p = json_object();
		json_object_set_new(msg, "params", p);
	}
	if ((s = json_string_value(json_object_get(p,
	    "browserContextId"))) == NULL) {
		json_object_set_new(p, "browserContextId",
		    json_string(sc->ctx));
		s = sc->ctx;
	} else if (!sc->ctx_owned(sc->arg, s))
		return refuse(v, "Failed to find browser context with id %s",
		    s);
	snprintf(v->id, sizeof(v->id), "%s", s);
	return 0;
}

/*
 * A context a sandbox's client makes goes out as the sandbox's own does
 * (cdp.c, box_ready_ctl): through its proxy, loopback included. Its
 * own proxy settings are not kept: a proxy of its choosing would take
 * its pages around the policy. sc->proxy "": a remote browser, whose
 * network is its own; NULL: a user's context (/cdp/), left as asked,
 * but for a sandbox's proxy port: through it, a user's tools would act
 * as that sandbox, with the credentials its policy injects.
 */
static int
put_proxy(const struct cdp_scope *sc, json_t *msg, struct cdp_verdict *v)
{
	json_t	*p = json_object_get(msg, "params");

	if (sc->proxy == NULL) {
		if (egress_browser_named(json_string_value(json_object_get(p,
		    "proxyServer"))))
			return refuse(v, "a sandbox's browser proxy is not for "
			    "other browser contexts");
		return 0;
	}
	if (p == NULL) {
		p = json_object();
		json_object_set_new(msg, "params", p);
	}
	json_object_del(p, "proxyServer");
	json_object_del(p, "proxyBypassList");
	if (*sc->proxy == '\0')
		return 0;
	json_object_set_new(p, "proxyServer", json_string(sc->proxy));
	json_object_set_new(p, "proxyBypassList", json_string("<-loopback>"));
	return 0;
}

static bool
drag_has_files(json_t *p)
{
	return json_array_size(json_object_get(json_object_get(p, "data"),
	    "files")) > 0;
}

/* The sandbox's own targets; the browser itself is listed for all. */
static bool
visible(const struct cdp_scope *sc, json_t *ti)
{
	const char	*type = json_string_value(json_object_get(ti, "type"));
	const char	*ctx = json_string_value(json_object_get(ti,
			    "browserContextId"));

	if (type != NULL && !strcmp(type, "browser"))
		return true;
	return ctx != NULL && sc->ctx_owned(sc->arg, ctx);
}
