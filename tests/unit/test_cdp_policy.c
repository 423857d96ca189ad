/* SPDX-License-Identifier: MIT */
/* test_cdp_policy.c: what the CDP bridge lets through (cdp_policy.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pincer.h"
#include "tap.h"

/*
 * The world as one client sees it: its sandbox owns context CTXA (and
 * CTXA2, made by a client), target TA is in CTXA, TB in another
 * sandbox's CTXB; session SA is attached to TA; window 7 was learned.
 */
static bool
owned(void *arg, const char *ctx)
{
	(void)arg;
	return !strcmp(ctx, "CTXA") || !strcmp(ctx, "CTXA2");
}

static const char *
target_ctx(void *arg, const char *t)
{
	(void)arg;
	return !strcmp(t, "TA") ? "CTXA" : !strcmp(t, "TB") ? "CTXB" : NULL;
}

static const char *
session(void *arg, const char *s)
{
	(void)arg;
	return !strcmp(s, "SA") ? "TA" : NULL;
}

static bool
seen(void *arg, const char *t)
{
	(void)arg;
	return !strcmp(t, "TA");
}

static bool
window(void *arg, json_int_t w)
{
	(void)arg;
	return w == 7;
}

static json_t *
contexts(void *arg)
{
	(void)arg;
	return json_pack("[s]", "CTXA2");
}

static struct cdp_scope sc = { .ctx = "CTXA", .downloads = "/dl/a",
	.ctx_owned = owned, .target_ctx = target_ctx, .session_target = session,
	.seen = seen, .window_known = window, .contexts = contexts };

/* The verdict on TEXT; *out the message as it would be sent. */
static int
check(const char *text, struct cdp_verdict *v, char **out)
{
	json_t	*m = json_loads(text, 0, NULL);
	int	 rc = cdp_policy_check(&sc, m, v);

	if (out != NULL)
		*out = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(m);
	return rc == -1 ? -1 : (int)v->act;
}

static int
act(const char *text)
{
	struct cdp_verdict	 v;
	int			 a = check(text, &v, NULL);

	json_decref(v.result);
	return a;
}

static int
ev(const char *text)
{
	json_t			*m = json_loads(text, 0, NULL);
	struct cdp_event	 e;
	int			 rc = cdp_policy_event(&sc, m, &e);

	json_decref(m);
	return rc == -1 ? -1 : (int)e.act;
}

int
main(void)
{
	struct cdp_verdict	 v;
	char			*out, err[200], msg[300];
	json_t			*r;
	int			 port;

	/* --- browser level ------------------------------------------ */
	is_int(act("{\"id\":1,\"method\":\"Browser.getVersion\"}"),
	    CDP_FORWARD, "Browser.getVersion passes");
	is_int(act("{\"id\":1,\"method\":\"Target.attachToTarget\","
	    "\"params\":{\"targetId\":\"TA\",\"flatten\":true}}"),
	    CDP_FORWARD, "attach to an own target passes");
	is_int(act("{\"id\":1,\"method\":\"Target.attachToTarget\","
	    "\"params\":{\"targetId\":\"TB\"}}"), CDP_REFUSE,
	    "attach to another sandbox's target: refused");
	is_int(act("{\"id\":1,\"method\":\"Target.closeTarget\","
	    "\"params\":{\"targetId\":\"TB\"}}"), CDP_REFUSE,
	    "close another sandbox's target: refused");
	is_int(act("{\"id\":1,\"method\":\"Target.closeTarget\","
	    "\"params\":{\"targetId\":\"NOPE\"}}"), CDP_REFUSE,
	    "an unknown target: refused");
	is_int(check("{\"id\":1,\"method\":\"Target.createTarget\","
	    "\"params\":{\"url\":\"about:blank\"}}", &v, &out), CDP_FORWARD,
	    "createTarget passes…");
	ok(strstr(out, "\"browserContextId\":\"CTXA\"") != NULL,
	    "… with the sandbox's context put in (%s)", out);
	is_int(v.note, CDP_NOTE_TARGET, "… and its answer is learned from");
	free(out);
	is_int(act("{\"id\":1,\"method\":\"Target.createTarget\","
	    "\"params\":{\"url\":\"about:blank\",\"browserContextId\":"
	    "\"CTXB\"}}"), CDP_REFUSE, "createTarget in a foreign context");
	is_int(act("{\"id\":1,\"method\":\"Target.createTarget\","
	    "\"params\":{\"url\":\"about:blank\",\"browserContextId\":"
	    "\"CTXA2\"}}"), CDP_FORWARD, "… in one of its own: passes");
	is_int(check("{\"id\":1,\"method\":\"Target.createTarget\","
	    "\"params\":{\"url\":\"file:///etc/shadow\"}}", &v, NULL),
	    CDP_REFUSE, "createTarget of a file:// URL: refused");
	ok(strstr(v.why, "only http(s)") != NULL, "… saying which are allowed");
	is_int(act("{\"id\":1,\"method\":\"Target.createTarget\","
	    "\"params\":{\"url\":\"chrome://settings\"}}"), CDP_REFUSE,
	    "… chrome:// too");
	is_int(check("{\"id\":1,\"method\":\"Storage.getCookies\"}", &v,
	    &out), CDP_FORWARD, "Storage.getCookies passes…");
	ok(strstr(out, "CTXA") != NULL, "… in the sandbox's context");
	free(out);
	is_int(check("{\"id\":1,\"method\":\"Browser.setDownloadBehavior\","
	    "\"params\":{\"behavior\":\"allowAndName\",\"downloadPath\":"
	    "\"/etc\"}}", &v, &out), CDP_FORWARD, "setDownloadBehavior…");
	ok(strstr(out, "\"downloadPath\":\"/dl/a\"") != NULL,
	    "… to the sandbox's folder, not the client's (%s)", out);
	free(out);
	is_int(check("{\"id\":1,\"method\":\"Target.getBrowserContexts\"}",
	    &v, NULL), CDP_ANSWER, "getBrowserContexts: answered here…");
	out = json_dumps(v.result, JSON_COMPACT);
	is_str(out, "{\"browserContextIds\":[\"CTXA2\"]}",
	    "… with the contexts its clients made");
	free(out);
	json_decref(v.result);
	is_int(act("{\"id\":1,\"method\":\"Target.disposeBrowserContext\","
	    "\"params\":{\"browserContextId\":\"CTXA\"}}"), CDP_REFUSE,
	    "its own context cannot be disposed by a client");
	is_int(act("{\"id\":1,\"method\":\"Target.disposeBrowserContext\","
	    "\"params\":{\"browserContextId\":\"CTXB\"}}"), CDP_REFUSE,
	    "nor a foreign one");
	is_int(act("{\"id\":1,\"method\":\"Target.disposeBrowserContext\","
	    "\"params\":{\"browserContextId\":\"CTXA2\"}}"), CDP_FORWARD,
	    "one it made: passes");
	is_int(act("{\"id\":1,\"method\":\"Browser.close\"}"), CDP_CLOSE,
	    "Browser.close is emulated");
	is_int(act("{\"id\":1,\"method\":\"Browser.crash\"}"), CDP_REFUSE,
	    "Browser.crash: refused");
	is_int(act("{\"id\":1,\"method\":\"SystemInfo.getInfo\"}"),
	    CDP_REFUSE, "SystemInfo: refused");
	is_int(act("{\"id\":1,\"method\":\"Tracing.start\"}"), CDP_REFUSE,
	    "browser-wide Tracing: refused");
	is_int(act("{\"id\":1,\"method\":\"Target.attachToBrowserTarget\"}"),
	    CDP_REFUSE, "attachToBrowserTarget: refused");
	is_int(act("{\"id\":1,\"method\":\"Security.setIgnoreCertificate"
	    "Errors\",\"params\":{\"ignore\":true}}"), CDP_REFUSE,
	    "a browser-wide certificate switch: refused");
	is_int(act("{\"id\":1,\"method\":\"Browser.setWindowBounds\","
	    "\"params\":{\"windowId\":8}}"), CDP_REFUSE,
	    "a window not learned: refused");
	is_int(act("{\"id\":1,\"method\":\"Browser.getWindowBounds\","
	    "\"params\":{\"windowId\":7}}"), CDP_FORWARD, "a learned one: passes");
	is_int(act("{\"id\":1,\"method\":\"Target.detachFromTarget\","
	    "\"params\":{\"sessionId\":\"SB\"}}"), CDP_REFUSE,
	    "detach from a session not its own: refused");

	/* --- malformed -------------------------------------------- */
	is_int(act("[1]"), -1, "not an object: no command");
	is_int(act("{\"method\":\"Browser.getVersion\"}"), -1, "no id");
	is_int(act("{\"id\":\"1\",\"method\":\"Browser.getVersion\"}"), -1,
	    "a string id");
	is_int(act("{\"id\":1}"), -1, "no method");
	is_int(act("{\"id\":1,\"method\":\"Browser.getVersion\",\"params\":"
	    "[]}"), CDP_REFUSE, "params not an object: refused");
	is_int(act("{\"id\":1,\"method\":\"Runtime.evaluate\",\"sessionId\":"
	    "\"SB\"}"), CDP_REFUSE, "a session not its own: refused");
	is_int(act("{\"id\":1,\"method\":\"Runtime.evaluate\",\"sessionId\":"
	    "7}"), CDP_REFUSE, "a sessionId not a string: refused");

	/* --- session level ------------------------------------------ */
	is_int(act("{\"id\":1,\"method\":\"Runtime.evaluate\",\"sessionId\":"
	    "\"SA\",\"params\":{\"expression\":\"1\"}}"), CDP_FORWARD,
	    "Runtime.evaluate in its session passes");
	is_int(act("{\"id\":1,\"method\":\"Target.attachToTarget\","
	    "\"sessionId\":\"SA\",\"params\":{\"targetId\":\"TB\"}}"),
	    CDP_REFUSE, "a page session attaching to a foreign target");
	is_int(act("{\"id\":1,\"method\":\"Browser.close\",\"sessionId\":"
	    "\"SA\"}"), CDP_REFUSE, "Browser.close from a page session");
	is_int(act("{\"id\":1,\"method\":\"Target.exposeDevToolsProtocol\","
	    "\"sessionId\":\"SA\"}"), CDP_REFUSE,
	    "an unlisted Target method in a session: refused");
	is_int(act("{\"id\":1,\"method\":\"Storage.getCookies\",\"sessionId\":"
	    "\"SA\"}"), CDP_COOKIES, "session cookies: sent at browser level");
	is_int(act("{\"id\":1,\"method\":\"Storage.getCookies\",\"sessionId\":"
	    "\"SA\",\"params\":{\"browserContextId\":\"CTXB\"}}"), CDP_REFUSE,
	    "… naming a context: refused, as Chromium does");
	is_int(act("{\"id\":1,\"method\":\"Page.navigate\",\"sessionId\":"
	    "\"SA\",\"params\":{\"url\":\"https://example.org/\"}}"),
	    CDP_FORWARD, "Page.navigate to the web passes");
	is_int(act("{\"id\":1,\"method\":\"Page.navigate\",\"sessionId\":"
	    "\"SA\",\"params\":{\"url\":\"FILE:///etc/passwd\"}}"), CDP_REFUSE,
	    "… to a file (any case): refused");
	is_int(act("{\"id\":1,\"method\":\"DOM.setFileInputFiles\","
	    "\"sessionId\":\"SA\",\"params\":{\"files\":[\"/etc/shadow\"]}}"),
	    CDP_REFUSE, "host files into a page: refused");
	is_int(act("{\"id\":1,\"method\":\"Input.dispatchDragEvent\","
	    "\"sessionId\":\"SA\",\"params\":{\"data\":{\"files\":"
	    "[\"/etc/shadow\"]}}}"), CDP_REFUSE, "dropped host files: refused");
	is_int(act("{\"id\":1,\"method\":\"Input.dispatchDragEvent\","
	    "\"sessionId\":\"SA\",\"params\":{\"data\":{\"items\":[]}}}"),
	    CDP_FORWARD, "a drag with no files passes");
	is_int(act("{\"id\":1,\"method\":\"SystemInfo.getInfo\","
	    "\"sessionId\":\"SA\"}"), CDP_REFUSE, "SystemInfo in a session");
	sc.page = "TA";
	is_int(act("{\"id\":1,\"method\":\"Target.closeTarget\",\"params\":"
	    "{\"targetId\":\"TB\"}}"), CDP_REFUSE,
	    "a page connection closing a foreign target");
	is_int(act("{\"id\":1,\"method\":\"Browser.close\"}"), CDP_REFUSE,
	    "… or the browser");
	sc.page = NULL;

	/* --- events ------------------------------------------------- */
	is_int(ev("{\"method\":\"Target.targetCreated\",\"params\":"
	    "{\"targetInfo\":{\"targetId\":\"TB\",\"type\":\"page\","
	    "\"browserContextId\":\"CTXB\"}}}"), CDP_EV_DROP,
	    "a foreign target's creation: not seen");
	is_int(ev("{\"method\":\"Target.targetCreated\",\"params\":"
	    "{\"targetInfo\":{\"targetId\":\"TA\",\"type\":\"page\","
	    "\"browserContextId\":\"CTXA\"}}}"), CDP_EV_SEEN,
	    "its own: seen");
	is_int(ev("{\"method\":\"Target.targetCreated\",\"params\":"
	    "{\"targetInfo\":{\"targetId\":\"BR\",\"type\":\"browser\"}}}"),
	    CDP_EV_SEEN, "the browser target: seen");
	is_int(ev("{\"method\":\"Target.attachedToTarget\",\"params\":"
	    "{\"sessionId\":\"SX\",\"waitingForDebugger\":true,\"targetInfo\":"
	    "{\"targetId\":\"TB\",\"type\":\"page\",\"browserContextId\":"
	    "\"CTXB\"}}}"), CDP_EV_DETACH,
	    "auto-attached to a foreign page: dropped and detached");
	is_int(ev("{\"method\":\"Target.attachedToTarget\",\"params\":"
	    "{\"sessionId\":\"S2\",\"targetInfo\":{\"targetId\":\"TA\","
	    "\"type\":\"page\",\"browserContextId\":\"CTXA\"}}}"),
	    CDP_EV_ATTACHED, "to its own: passed");
	is_int(ev("{\"method\":\"Target.targetDestroyed\",\"params\":"
	    "{\"targetId\":\"TB\"}}"), CDP_EV_DROP,
	    "a target it never saw destroyed: not told");
	is_int(ev("{\"method\":\"Target.targetDestroyed\",\"params\":"
	    "{\"targetId\":\"TA\"}}"), CDP_EV_GONE, "one it saw: told");
	is_int(ev("{\"method\":\"Target.detachedFromTarget\",\"params\":"
	    "{\"sessionId\":\"SX\"}}"), CDP_EV_DROP,
	    "a detach of a session not its own: not told");
	is_int(ev("{\"method\":\"Page.loadEventFired\",\"params\":{}}"), -1,
	    "other domains are not the policy's");
	is_int(ev("{\"method\":\"Target.targetInfoChanged\",\"sessionId\":"
	    "\"SX\",\"params\":{\"targetInfo\":{\"targetId\":\"TA\","
	    "\"browserContextId\":\"CTXA\"}}}"), CDP_EV_DROP,
	    "an event on a session not its own: dropped");

	r = json_loads("{\"targetInfos\":[{\"targetId\":\"TA\",\"type\":"
	    "\"page\",\"browserContextId\":\"CTXA\"},{\"targetId\":\"TB\","
	    "\"type\":\"page\",\"browserContextId\":\"CTXB\"},{\"targetId\":"
	    "\"BR\",\"type\":\"browser\"}]}", 0, NULL);
	cdp_policy_filter_targets(&sc, r);
	out = json_dumps(r, JSON_COMPACT);
	ok(strstr(out, "TA") != NULL && strstr(out, "BR") != NULL &&
	    strstr(out, "TB") == NULL, "getTargets cut to its own (%s)", out);
	free(out);
	json_decref(r);

	ok(cdp_policy_url_ok("https://a.example/") &&
	    cdp_policy_url_ok("about:blank") &&
	    cdp_policy_url_ok("data:text/html,hi") &&
	    !cdp_policy_url_ok("file:///") &&
	    !cdp_policy_url_ok("view-source:file:///etc/passwd") &&
	    !cdp_policy_url_ok("javascript:alert(1)") &&
	    !cdp_policy_url_ok(""), "the URLs a sandbox may open");

	/* A context a sandbox's client makes goes through its proxy. */
	is_int(act("{\"id\":1,\"method\":\"Target.createBrowserContext\","
	    "\"params\":{\"proxyServer\":\"direct://\"}}"), CDP_FORWARD,
	    "an owner's createBrowserContext passes…");
	check("{\"id\":1,\"method\":\"Target.createBrowserContext\","
	    "\"params\":{\"proxyServer\":\"direct://\"}}", &v, &out);
	ok(strstr(out, "direct://") != NULL, "… as asked (%s)", out);
	free(out);
	sc.proxy = "http://127.0.0.1:4000";
	is_int(check("{\"id\":1,\"method\":\"Target.createBrowserContext\","
	    "\"params\":{\"proxyServer\":\"direct://\",\"proxyBypassList\":"
	    "\"*\"}}", &v, &out), CDP_FORWARD, "a sandbox's passes…");
	is_int(v.note, CDP_NOTE_CONTEXT, "… its answer learned from");
	ok(strstr(out, "\"proxyServer\":\"http://127.0.0.1:4000\"") != NULL &&
	    strstr(out, "\"proxyBypassList\":\"<-loopback>\"") != NULL &&
	    strstr(out, "direct://") == NULL, "… with its own proxy, "
	    "loopback included (%s)", out);
	free(out);
	check("{\"id\":1,\"method\":\"Target.createBrowserContext\"}", &v,
	    &out);
	ok(strstr(out, "127.0.0.1:4000") != NULL, "… params or none (%s)",
	    out);
	free(out);
	sc.proxy = "";
	check("{\"id\":1,\"method\":\"Target.createBrowserContext\","
	    "\"params\":{\"proxyServer\":\"http://10.0.0.1:3128\"}}", &v,
	    &out);
	ok(strstr(out, "proxyServer") == NULL, "a remote browser's sandbox: "
	    "no proxy of its choosing (%s)", out);
	free(out);
	sc.proxy = NULL;
	/* A user's tools may not borrow a sandbox's proxy port. */
	port = egress_browser_port("sbx", err, sizeof(err));
	ok(port > 0, "a sandbox's proxy port (%d)", port);
	snprintf(msg, sizeof(msg), "{\"id\":1,\"method\":"
	    "\"Target.createBrowserContext\",\"params\":{\"proxyServer\":"
	    "\"http=[::ffff:127.0.0.1]:%d;https=x:1\"}}", port);
	is_int(act(msg), CDP_REFUSE, "a user's context through it: refused");
	is_int(act("{\"id\":1,\"method\":\"Target.createBrowserContext\","
	    "\"params\":{\"proxyServer\":\"http://10.0.0.1:3128\"}}"),
	    CDP_FORWARD, "… through another proxy: passes");
	egress_browser_forget("sbx");
	egress_browser_stop();
	return done_testing();
}
