/* SPDX-License-Identifier: MIT */
/*
 * cdp_json.c: the CDP bridge's HTTP side, Chromium's /json/version,
 * /json/list, /json/new, /json/activate and /json/close as a sandbox sees
 * them on 127.0.0.1:9222 (or an owner's tool under /cdp/): its own targets
 * only, every URL the caller's own address. The request is parked
 * (http_suspend) while cdp.c asks the browser on ws.c's service thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pincer.h"

/* A parked /json/… request. */
struct hreq {
	struct http_req	*req;
	enum { H_VERSION, H_LIST, H_NEW, H_ACTIVATE, H_CLOSE } op;
	char		 box[CDP_BOX_NAME];
	char		 host[200];	/* "ws://127.0.0.1:9222", say */
	char		*arg;		/* a URL or a target id; owned */
	int		 status;
	char		*body;		/* owned */
	bool		 json;
	struct ws_job	 job;
};

static void	 h_run(void *);
static void	 h_go(void *, const char *);
static void	 h_answered(json_t *, const char *, void *);
static void	 h_done(struct hreq *, int, char *, bool);
static void	 h_resume(struct http_req *, void *);
static void	 h_free(void *);
static json_t	*descriptor(const struct cdp_target *, const char *);
static bool	 host_ok(const char *);
static bool	 listed(const struct cdp_target *);
static char	*dump(json_t *, size_t);

/*
 * GET /json/version, /json/list, …: a sandbox's, on 127.0.0.1:9222; or
 * under /cdp/ on the public port, an owner's tool's with a token.
 */
void
api_cdp_json(struct http_req *req)
{
	const struct identity	*id = http_req_identity(req);
	const char		*path = http_req_path(req), *host, *why;
	bool			 pub = strncmp(path, "/cdp/", 5) == 0;
	struct hreq		*h;

	if ((why = cdp_refusal(id, pub)) != NULL) {
		http_error(req, 404, "not_found", "%s", why);
		return;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		http_error(req, 503, "no_memory", "out of memory");
		return;
	}
	h->req = req;
	cdp_box_name(id, h->box, sizeof(h->box));
	host = http_req_header(req, "Host");
	if (pub)
		snprintf(h->host, sizeof(h->host), "%s://%s/cdp",
		    http_req_secure(req) ? "wss" : "ws", host != NULL &&
		    host_ok(host) ? host : "localhost");
	else
		snprintf(h->host, sizeof(h->host), "ws://%s", host != NULL &&
		    host_ok(host) ? host : "127.0.0.1:9222");
	if (pub)
		path += 4;
	if (!strncmp(path, "/json/version", 13))
		h->op = H_VERSION;
	else if (!strncmp(path, "/json/new", 9)) {
		h->op = H_NEW;
		/* /json/new?URL: the query is the URL, not key=value. */
		if ((h->arg = http_req_query_string(req, 8192)) == NULL)
			h->arg = strdup("about:blank");
	} else if (!strncmp(path, "/json/activate/", 15) ||
	    !strncmp(path, "/json/close/", 12)) {
		h->op = path[6] == 'a' ? H_ACTIVATE : H_CLOSE;
		h->arg = strdup(http_req_param(req));
	} else
		h->op = H_LIST;
	if ((h->op == H_NEW || h->op == H_ACTIVATE || h->op == H_CLOSE) &&
	    h->arg == NULL) {
		free(h);
		http_error(req, 503, "no_memory", "out of memory");
		return;
	}
	if (h->op == H_NEW && !cdp_policy_url_ok(h->arg)) {
		http_error(req, 403, "url_refused", "only http(s), about: and "
		    "data: URLs may be opened through pincer's browser bridge");
		h_free(h);
		return;
	}
	http_suspend(req, h_resume, h_free, h);
	h->job.fn = h_run;
	h->job.arg = h;
	ws_post(&h->job);
}

static void
h_run(void *arg)
{
	struct hreq	*h = arg;
	struct cdp_box	*b = cdp_box_get(h->box, strchr(h->box, ':') == NULL);

	if (b == NULL) {
		h_done(h, 503, strdup("out of memory"), false);
		return;
	}
	b->idle_since = now_ms();
	if (h->op == H_VERSION)
		cdp_ready(h_go, h);
	else
		cdp_box_ready(b, h_go, h);
}

static void
h_go(void *arg, const char *why)
{
	struct hreq		*h = arg;
	struct cdp_box		*b = cdp_box_get(h->box, strchr(h->box, ':') ==
				    NULL);
	const struct cdp_target	*t;
	json_t			*o, *v = cdp_version();
	char			 url[300];
	size_t			 i, n;

	if (why != NULL || b == NULL) {
		h_done(h, 503, dump(json_pack("{s:{s:s,s:s}}", "error",
		    "code", "browser_unavailable", "message", why != NULL ?
		    why : "out of memory"), JSON_COMPACT),
		    true);
		return;
	}
	switch (h->op) {
	case H_VERSION:
		snprintf(url, sizeof(url), "%s/devtools/browser/%s",
		    h->host, cdp_bridge_id());
		o = json_pack("{s:O?,s:O?,s:O?,s:O?,s:s,s:s}",
		    "Browser", json_object_get(v, "product"),
		    "Protocol-Version", json_object_get(v,
		    "protocolVersion"),
		    "User-Agent", json_object_get(v, "userAgent"),
		    "V8-Version", json_object_get(v, "jsVersion"),
		    "WebKit-Version", "537.36",
		    "webSocketDebuggerUrl", url);
		h_done(h, 200, dump(o, JSON_INDENT(3)), true);
		return;
	case H_LIST:
		o = json_array();
		n = cdp_targets(&t);
		for (i = 0; i < n; i++)
			if (listed(&t[i]) && cdp_box_owns(b, t[i].ctx))
				json_array_append_new(o, descriptor(&t[i],
				    h->host));
		h_done(h, 200, dump(o, JSON_INDENT(3)), true);
		return;
	case H_NEW:
		o = json_pack("{s:s,s:s}", "url", h->arg, "browserContextId",
		    b->ctx);
		break;
	default:
		if (cdp_target_ctx(h->arg) == NULL || !cdp_box_owns(b,
		    cdp_target_ctx(h->arg))) {
			h_done(h, 404, NULL, false);
			return;
		}
		o = json_pack("{s:s}", "targetId", h->arg);
		break;
	}
	if (cdp_call(h->op == H_NEW ? "Target.createTarget" : h->op ==
	    H_ACTIVATE ? "Target.activateTarget" : "Target.closeTarget", o,
	    h_answered, h) == -1)
		h_done(h, 503, strdup("the browser is not reachable"), false);
}

static void
h_answered(json_t *res, const char *why, void *arg)
{
	struct hreq	*h = arg;
	struct cdp_target	*t;
	const char	*id;
	char		*s;

	if (why != NULL) {
		h_done(h, 500, strdup(why), false);
		return;
	}
	if (h->op == H_ACTIVATE || h->op == H_CLOSE) {
		h_done(h, 200, strdup(h->op == H_ACTIVATE ? "Target activated" :
		    "Target is closing"), false);
		return;
	}
	if ((id = json_string_value(json_object_get(res, "targetId"))) ==
	    NULL) {
		h_done(h, 500, strdup("the browser made no target"), false);
		return;
	}
	cdp_target_add(id, cdp_box_get(h->box, strchr(h->box, ':') ==
	    NULL)->ctx);
	t = cdp_target_find(id);
	if (t->url == NULL)
		t->url = strdup(h->arg);
	s = dump(descriptor(t, h->host), JSON_INDENT(3));
	h_done(h, 200, s, true);
}

/* Back to the HTTP thread with the answer (body NULL: not found). */
static void
h_done(struct hreq *h, int status, char *body, bool json)
{
	h->status = status;
	h->body = body;
	h->json = json;
	if (status == 404 && body == NULL) {
		if (asprintf(&h->body, "No such target id: %s", h->arg) == -1)
			h->body = NULL;
	}
	http_resume(h->req);
}

static void
h_resume(struct http_req *req, void *arg)
{
	struct hreq	*h = arg;

	if (h->body == NULL)
		http_error(req, 503, "no_memory", "out of memory");
	else if (h->json)
		http_json(req, h->status, h->body);
	else
		http_text(req, h->status, h->body);
}

static void
h_free(void *arg)
{
	struct hreq	*h = arg;

	free(h->arg);
	free(h->body);
	free(h);
}

/* A target as /json/list shows it, with the sandbox's address. */
static json_t *
descriptor(const struct cdp_target *t, const char *base)
{
	char		 ws[300], fe[400];
	const char	*bare = strstr(base, "://") + 3;

	snprintf(ws, sizeof(ws), "%s/devtools/page/%s", base, t->id);
	snprintf(fe, sizeof(fe), "/devtools/inspector.html?%s=%s/devtools/"
	    "page/%s", base[2] == 's' ? "wss" : "ws", bare, t->id);
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "description", "",
	    "devtoolsFrontendUrl", fe, "id", t->id, "title", t->title != NULL ?
	    t->title : "", "type", t->type[0] != '\0' ? t->type : "page",
	    "url", t->url != NULL ? t->url : "", "webSocketDebuggerUrl", ws);
}

/* A Host header fit to put in a URL: an address or name, and a port. */
static bool
host_ok(const char *h)
{
	return *h != '\0' && strlen(h) < 100 && strspn(h,
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789.-:[]") == strlen(h);
}

/* The text of o, which is taken. */
static char *
dump(json_t *o, size_t flags)
{
	char	*s = json_dumps(o, flags);

	json_decref(o);
	return s;
}

/* As Chromium's /json/list: no browser, no browser UI, no tab shells. */
static bool
listed(const struct cdp_target *t)
{
	return t->dead_at == 0 && strcmp(t->type, "browser") != 0 &&
	    strcmp(t->type, "browser_ui") != 0 && strcmp(t->type, "tab") != 0;
}
