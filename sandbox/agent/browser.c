/* SPDX-License-Identifier: MIT */
/*
 * browser.c: the agent's browser tools, on the sandbox's own browser
 * (127.0.0.1:9222, the bridge: a browser context of the sandbox's own).
 * The model reads a page as a compact outline of its accessibility tree,
 * each control with a short ref, and acts on refs; what a page says is
 * wrapped as untrusted content, as a file's text is.
 *
 * A turn is one run of pincer-agent, and a task may span turns: the tab
 * is opened with /json/new (which outlives any connection) and its id
 * and the last outline's refs are kept in $data/browser.json.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

#define OUTLINE_MAX	(24 * 1024)
#define NAME_MAX_SHOWN	100
#define SETTLE_S	1	/* a click's navigation starts within */

/* What a tool works on: the tab, a connection to it, the saved refs. */
struct page {
	const struct agent	*ag;
	char			 tab[64];
	struct cdpc		*c;
	json_t			*state;		/* {"tab", "refs": {N: id}} */
	long			 secs;
};

/* A navigation being waited for. */
struct nav {
	bool	 started;
	bool	 loaded;
};

static int	 page_open(struct page *, const struct agent *, struct buf *);
static void	 page_close(struct page *);
static json_t	*state_load(const struct agent *);
static void	 state_save(const struct agent *, json_t *);
static bool	 tab_exists(const char *);
static json_t	*call(struct page *, const char *, json_t *, struct buf *);
static bool	 on_nav(void *, const char *, json_t *);
static void	 settle(struct page *);
static void	 where(struct page *, struct buf *);
static const char *str(json_t *, const char *);
static void	 outline(json_t *, json_t *, size_t, int, const char *,
		    struct buf *, json_t *, int *);
static bool	 interactive(const char *);
static long long ref_node(struct page *, json_t *, struct buf *);
static bool	 url_ok(const char *, struct buf *);

/* browser_navigate {url}: the tab goes to url and is waited for. */
bool
browser_navigate(const struct agent *ag, json_t *args, struct buf *out)
{
	const char	*url = json_string_value(json_object_get(args, "url"));
	struct page	 p;
	struct nav	 nav = { 0 };
	json_t		*r;
	bool		 ok = false;

	if (!url_ok(url, out))
		return false;
	if (page_open(&p, ag, out) == -1)
		return false;
	if ((r = call(&p, "Page.navigate", json_pack("{s:s}", "url", url),
	    out)) != NULL) {
		if (str(r, "errorText") != NULL && *str(r, "errorText"))
			buf_printf(out, "error: %s could not be loaded: %s", url,
			    str(r, "errorText"));
		else {
			(void)cdpc_wait(p.c, p.secs, on_nav, &nav);
			json_object_set_new(p.state, "refs", json_object());
			buf_printf(out, "%s. ", nav.loaded ? "Loaded" :
			    "Still loading (not finished in time)");
			where(&p, out);
			buf_printf(out, "\nUse browser_snapshot to read it.");
			ok = true;
		}
		json_decref(r);
	}
	page_close(&p);
	return ok;
}

/* browser_snapshot: the page as an outline, controls with refs. */
bool
browser_snapshot(const struct agent *ag, json_t *args, struct buf *out)
{
	struct page	 p;
	json_t		*r, *nodes, *index, *refs;
	struct buf	 text;
	size_t		 i;
	int		 next = 1;

	(void)args;
	if (page_open(&p, ag, out) == -1)
		return false;
	if ((r = call(&p, "Accessibility.getFullAXTree", NULL, out)) == NULL) {
		page_close(&p);
		return false;
	}
	nodes = json_object_get(r, "nodes");
	index = json_object();
	for (i = 0; i < json_array_size(nodes); i++)
		json_object_set_new(index, str(json_array_get(nodes, i),
		    "nodeId") != NULL ? str(json_array_get(nodes, i),
		    "nodeId") : "", json_integer((json_int_t)i));
	refs = json_object();
	buf_init(&text, OUTLINE_MAX + 256);
	where(&p, &text);
	buf_puts(&text, "\n");
	if (json_array_size(nodes) > 0)
		outline(nodes, index, 0, 0, NULL, &text, refs, &next);
	if (text.len >= OUTLINE_MAX)
		buf_puts(&text, "\n… (the rest is cut)");
	tools_untrusted(out, "browser", text.data != NULL ? text.data : "",
	    text.len);
	json_object_set_new(p.state, "refs", refs);
	buf_free(&text);
	json_decref(index);
	json_decref(r);
	page_close(&p);
	return true;
}

/* browser_click {ref}: a real mouse click on the control's middle. */
bool
browser_click(const struct agent *ag, json_t *args, struct buf *out)
{
	struct page	 p;
	json_t		*r, *q;
	long long	 node;
	double		 x, y;
	int		 i;
	bool		 ok = false;

	if (page_open(&p, ag, out) == -1)
		return false;
	if ((node = ref_node(&p, args, out)) < 0)
		goto done;
	json_decref(call(&p, "DOM.scrollIntoViewIfNeeded", json_pack("{s:I}",
	    "backendNodeId", (json_int_t)node), NULL));
	if ((r = call(&p, "DOM.getBoxModel", json_pack("{s:I}",
	    "backendNodeId", (json_int_t)node), out)) == NULL)
		goto done;
	q = json_object_get(json_object_get(r, "model"), "content");
	for (i = 0, x = y = 0; i < 8 && json_array_size(q) == 8; i += 2) {
		x += json_number_value(json_array_get(q, (size_t)i)) / 4;
		y += json_number_value(json_array_get(q, (size_t)i + 1)) / 4;
	}
	json_decref(r);
	for (i = 0; i < 2; i++) {
		if ((r = call(&p, "Input.dispatchMouseEvent", json_pack(
		    "{s:s,s:f,s:f,s:s,s:i}", "type", i == 0 ? "mousePressed" :
		    "mouseReleased", "x", x, "y", y, "button", "left",
		    "clickCount", 1), out)) == NULL)
			goto done;
		json_decref(r);
	}
	settle(&p);
	buf_printf(out, "Clicked. ");
	where(&p, out);
	ok = true;
done:
	page_close(&p);
	return ok;
}

/* browser_type {ref, text, submit}: typed into the control. */
bool
browser_type(const struct agent *ag, json_t *args, struct buf *out)
{
	const char	*text = json_string_value(json_object_get(args, "text"));
	struct page	 p;
	long long	 node;
	json_t		*r;
	int		 i;
	bool		 ok = false;

	if (text == NULL) {
		buf_printf(out, "error: \"text\" (a string) is required");
		return false;
	}
	if (page_open(&p, ag, out) == -1)
		return false;
	if ((node = ref_node(&p, args, out)) < 0 || (r = call(&p,
	    "DOM.focus", json_pack("{s:I}", "backendNodeId",
	    (json_int_t)node), out)) == NULL)
		goto done;
	json_decref(r);
	if ((r = call(&p, "Input.insertText", json_pack("{s:s}", "text",
	    text), out)) == NULL)
		goto done;
	json_decref(r);
	for (i = 0; i < 2 && json_is_true(json_object_get(args, "submit"));
	    i++) {
		if ((r = call(&p, "Input.dispatchKeyEvent", json_pack(
		    "{s:s,s:s,s:s,s:i,s:s}", "type", i == 0 ? "keyDown" :
		    "keyUp", "key", "Enter", "code", "Enter",
		    "windowsVirtualKeyCode", 13, "text", i == 0 ? "\r" : ""),
		    out)) == NULL)
			goto done;
		json_decref(r);
	}
	settle(&p);
	buf_printf(out, "Typed %zu characters%s. ", strlen(text),
	    json_is_true(json_object_get(args, "submit")) ? " and pressed "
	    "Enter" : "");
	where(&p, out);
	ok = true;
done:
	page_close(&p);
	return ok;
}

/* browser_screenshot {path}: a PNG of the tab, in the workspace. */
bool
browser_screenshot(const struct agent *ag, json_t *args, struct buf *out)
{
	const char	*path = json_string_value(json_object_get(args, "path"));
	char		 full[PATH_MAX], dir[PATH_MAX];
	struct page	 p;
	json_t		*r;
	const char	*data;
	unsigned char	*png = NULL;
	ssize_t		 n = -1;
	FILE		*f;
	bool		 ok = false;

	if (path == NULL)
		snprintf(full, sizeof(full), "%s/screenshots/shot-%lld.png",
		    ag->work_dir, (long long)time(NULL));
	else
		snprintf(full, sizeof(full), "%s%s%s", *path == '/' ? "" :
		    ag->work_dir, *path == '/' ? "" : "/", path);
	if (page_open(&p, ag, out) == -1)
		return false;
	if ((r = call(&p, "Page.captureScreenshot", json_pack("{s:s}",
	    "format", "png"), out)) == NULL)
		goto done;
	if ((data = str(r, "data")) != NULL && (png = malloc(strlen(data) /
	    4 * 3 + 3)) != NULL)
		n = b64_decode(data, strlen(data), png);
	json_decref(r);
	snprintf(dir, sizeof(dir), "%s", full);
	if (strrchr(dir, '/') != NULL)
		*strrchr(dir, '/') = '\0';
	(void)mkdir(dir, 0755);
	if (n <= 0 || (f = fopen(full, "we")) == NULL) {
		buf_printf(out, "error: the screenshot cannot be saved to %s: "
		    "%s", full, n <= 0 ? "no image came" : strerror(errno));
		goto done;
	}
	ok = fwrite(png, 1, (size_t)n, f) == (size_t)n;
	ok = fclose(f) == 0 && ok;
	if (ok)
		buf_printf(out, "Saved %s (%zd bytes, PNG). Send it with "
		    "send_attachment.", full, n);
	else
		buf_printf(out, "error: writing %s failed", full);
done:
	free(png);
	page_close(&p);
	return ok;
}

/* browser_evaluate {expression}: JavaScript in the page; its value. */
bool
browser_evaluate(const struct agent *ag, json_t *args, struct buf *out)
{
	const char	*js = json_string_value(json_object_get(args,
			    "expression"));
	struct page	 p;
	json_t		*r, *v;
	char		*s;
	bool		 ok = false;

	if (js == NULL) {
		buf_printf(out, "error: \"expression\" (a string) is required");
		return false;
	}
	if (page_open(&p, ag, out) == -1)
		return false;
	if ((r = call(&p, "Runtime.evaluate", json_pack("{s:s,s:b,s:b}",
	    "expression", js, "returnByValue", 1, "awaitPromise", 1),
	    out)) != NULL) {
		if ((v = json_object_get(r, "exceptionDetails")) != NULL)
			buf_printf(out, "error: the script threw: %s",
			    str(json_object_get(v, "exception"),
			    "description") != NULL ? str(json_object_get(v,
			    "exception"), "description") : str(v, "text"));
		else {
			v = json_object_get(json_object_get(r, "result"),
			    "value");
			s = v != NULL ? json_dumps(v, JSON_ENCODE_ANY) :
			    strdup("undefined");
			if (s != NULL)
				tools_untrusted(out, "browser", s, strlen(s));
			free(s);
			ok = true;
		}
		json_decref(r);
	}
	page_close(&p);
	return ok;
}

/* browser_tabs {action: list|select|new|close, id, url}. */
bool
browser_tabs(const struct agent *ag, json_t *args, struct buf *out)
{
	const char	*act = json_string_value(json_object_get(args,
			    "action"));
	const char	*id = json_string_value(json_object_get(args, "id"));
	const char	*url = json_string_value(json_object_get(args, "url"));
	json_t		*st = state_load(ag), *list, *t;
	char		 path[4200], why[256], text[8192];
	size_t		 i, n = 0;
	int		 status = 0;

	if (act == NULL)
		act = "list";
	if (!strcmp(act, "new") || !strcmp(act, "close")) {
		if (!strcmp(act, "close") && id == NULL)
			buf_printf(out, "error: \"id\" is required to close a "
			    "tab");
		if ((!strcmp(act, "close") && id == NULL) || (!strcmp(act,
		    "new") && url != NULL && !url_ok(url, out))) {
			json_decref(st);
			return false;
		}
		snprintf(path, sizeof(path), !strcmp(act, "new") ?
		    "/json/new?%s" : "/json/close/%s", !strcmp(act, "new") ?
		    (url != NULL ? url : "about:blank") : id);
		t = cdpc_http("PUT", path, &status, why, sizeof(why));
		if (t != NULL && status == 200 && !strcmp(act, "new"))
			json_object_set(st, "tab", json_object_get(t, "id"));
		if (status != 200) {
			/* The bridge's own words: no such tab, a URL refused. */
			buf_printf(out, "error: %s", status == 0 ? why :
			    json_is_string(t) ? json_string_value(t) :
			    json_string_value(json_object_get(json_object_get(t,
			    "error"), "message")) != NULL ? json_string_value(
			    json_object_get(json_object_get(t, "error"),
			    "message")) : "the browser bridge refused");
			json_decref(t);
			json_decref(st);
			return false;
		}
		json_decref(t);
	} else if (!strcmp(act, "select")) {
		if (id == NULL || !tab_exists(id)) {
			buf_printf(out, "error: no tab %s (see browser_tabs)",
			    id != NULL ? id : "given");
			json_decref(st);
			return false;
		}
		json_object_set_new(st, "tab", json_string(id));
		json_object_set_new(st, "refs", json_object());
	}
	state_save(ag, st);
	if ((list = cdpc_http("GET", "/json/list", &status, why,
	    sizeof(why))) == NULL) {
		buf_printf(out, "error: %s", why);
		json_decref(st);
		return false;
	}
	for (i = 0; i < json_array_size(list) && n < sizeof(text) - 1; i++) {
		t = json_array_get(list, i);
		if (strcmp(str(t, "type") ? str(t, "type") : "", "page"))
			continue;
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%s  %s  "
		    "%s\n", str(t, "id"), !strcmp(str(t, "id"), str(st, "tab") ?
		    str(st, "tab") : "") ? " (current)" : "", str(t, "title"),
		    str(t, "url"));
	}
	buf_printf(out, "%s: %zu tab(s).\n", act, json_array_size(list));
	tools_untrusted(out, "browser", text, n < sizeof(text) ? n :
	    sizeof(text) - 1);
	json_decref(list);
	json_decref(st);
	return true;
}

/* --- the tab ------------------------------------------------------ */

/* The current tab (one is opened if there is none), connected. */
static int
page_open(struct page *p, const struct agent *ag, struct buf *out)
{
	char		 path[200], why[256];
	const char	*tab;
	json_t		*t;
	int		 status = 0;

	memset(p, 0, sizeof(*p));
	p->ag = ag;
	p->secs = ag->tool_timeout_s > 0 ? ag->tool_timeout_s : 30;
	p->state = state_load(ag);
	tab = str(p->state, "tab");
	if (tab == NULL || !tab_exists(tab)) {
		if ((t = cdpc_http("PUT", "/json/new?about:blank", &status,
		    why, sizeof(why))) == NULL || status != 200 ||
		    str(t, "id") == NULL) {
			buf_printf(out, "error: no browser tab can be opened: "
			    "%s", status != 0 ? "the bridge refused" : why);
			json_decref(t);
			json_decref(p->state);
			return -1;
		}
		json_object_set(p->state, "tab", json_object_get(t, "id"));
		json_object_set_new(p->state, "refs", json_object());
		json_decref(t);
	}
	snprintf(p->tab, sizeof(p->tab), "%s", str(p->state, "tab"));
	snprintf(path, sizeof(path), "/devtools/page/%s", p->tab);
	if ((p->c = cdpc_open(path, why, sizeof(why))) == NULL) {
		buf_printf(out, "error: %s", why);
		json_decref(p->state);
		return -1;
	}
	json_decref(call(p, "Page.enable", NULL, NULL));
	return 0;
}

static void
page_close(struct page *p)
{
	cdpc_close(p->c);
	state_save(p->ag, p->state);
	json_decref(p->state);
}

static json_t *
state_load(const struct agent *ag)
{
	char	 path[PATH_MAX];
	json_t	*j;

	snprintf(path, sizeof(path), "%s/browser.json", ag->data_dir);
	if ((j = json_load_file(path, 0, NULL)) == NULL ||
	    !json_is_object(j)) {
		json_decref(j);
		j = json_pack("{s:{}}", "refs");
	}
	return j;
}

static void
state_save(const struct agent *ag, json_t *st)
{
	char	 path[PATH_MAX], tmp[PATH_MAX + 8];

	snprintf(path, sizeof(path), "%s/browser.json", ag->data_dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (json_dump_file(st, tmp, JSON_COMPACT) == 0)
		(void)rename(tmp, path);
}

static bool
tab_exists(const char *id)
{
	json_t	*list;
	char	 why[256];
	size_t	 i;
	int	 status;
	bool	 found = false;

	if ((list = cdpc_http("GET", "/json/list", &status, why,
	    sizeof(why))) == NULL)
		return false;
	for (i = 0; i < json_array_size(list) && !found; i++)
		found = str(json_array_get(list, i), "id") != NULL &&
		    !strcmp(str(json_array_get(list, i), "id"), id);
	json_decref(list);
	return found;
}

/* A CDP call on the tab; an error goes to out (if set). */
static json_t *
call(struct page *p, const char *method, json_t *params, struct buf *out)
{
	json_t	*r = cdpc_call(p->c, method, params, p->secs, NULL, NULL);

	if (r == NULL && out != NULL)
		buf_printf(out, "error: %s", cdpc_error(p->c));
	return r;
}

static bool
on_nav(void *arg, const char *method, json_t *params)
{
	struct nav	*n = arg;

	(void)params;
	if (!strcmp(method, "Page.frameStartedLoading") ||
	    !strcmp(method, "Page.frameRequestedNavigation"))
		n->started = true;
	if (!strcmp(method, "Page.loadEventFired"))
		n->loaded = true;
	return n->loaded;
}

/* After an action: if it started a navigation, wait for the load. */
static void
settle(struct page *p)
{
	struct nav	 nav = { 0 };

	(void)cdpc_wait(p->c, SETTLE_S, on_nav, &nav);
	if (nav.started && !nav.loaded)
		(void)cdpc_wait(p->c, p->secs, on_nav, &nav);
	if (nav.started)
		json_object_set_new(p->state, "refs", json_object());
}

/* "The page: TITLE — URL" for the model. */
static void
where(struct page *p, struct buf *out)
{
	json_t	*r = call(p, "Runtime.evaluate", json_pack("{s:s,s:b}",
		    "expression", "[document.title, location.href]",
		    "returnByValue", 1), NULL);
	json_t	*v = json_object_get(json_object_get(r, "result"), "value");

	buf_printf(out, "The page: \"%s\" at %s",
	    json_string_value(json_array_get(v, 0)) != NULL ?
	    json_string_value(json_array_get(v, 0)) : "",
	    json_string_value(json_array_get(v, 1)) != NULL ?
	    json_string_value(json_array_get(v, 1)) : "(unknown)");
	json_decref(r);
}

static const char *
str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/*
 * One node of the accessibility tree and what is under it: ignored and
 * nameless generic nodes are looked through; a control gets a ref (its
 * DOM node kept in refs) and its inside is not repeated.
 */
static void
outline(json_t *nodes, json_t *index, size_t i, int depth, const char *up,
    struct buf *out, json_t *refs, int *next)
{
	json_t		*n = json_array_get(nodes, i), *kids, *k;
	const char	*role = str(json_object_get(n, "role"), "value");
	const char	*name = str(json_object_get(n, "name"), "value");
	const char	*val = str(json_object_get(n, "value"), "value");
	bool		 shown, ctl;
	size_t		 j;
	char		 key[16];

	if (depth > 40 || out->len >= OUTLINE_MAX)
		return;
	if (role == NULL)
		role = "";
	ctl = interactive(role);
	shown = !json_is_true(json_object_get(n, "ignored")) &&
	    strcmp(role, "InlineTextBox") != 0 && strcmp(role, "LineBreak") !=
	    0 && (ctl || (name != NULL && *name != '\0') || (strcmp(role,
	    "generic") != 0 && strcmp(role, "none") != 0 && strcmp(role,
	    "StaticText") != 0 && strcmp(role, "RootWebArea") != 0));
	/* A heading's text is its name already. */
	if (shown && !strcmp(role, "StaticText") && name != NULL &&
	    up != NULL && !strcmp(name, up))
		shown = false;
	if (shown) {
		buf_printf(out, "%*s- %s", depth * 2, "", !strcmp(role,
		    "StaticText") ? "text" : role);
		if (name != NULL && *name != '\0')
			buf_printf(out, " \"%.*s\"", NAME_MAX_SHOWN, name);
		if (val != NULL && *val != '\0')
			buf_printf(out, " value=\"%.*s\"", NAME_MAX_SHOWN, val);
		if (ctl && json_is_integer(json_object_get(n,
		    "backendDOMNodeId"))) {
			snprintf(key, sizeof(key), "%d", *next);
			json_object_set(refs, key, json_object_get(n,
			    "backendDOMNodeId"));
			buf_printf(out, " [ref=%d]", (*next)++);
		}
		buf_puts(out, "\n");
	}
	if (ctl)
		return;
	kids = json_object_get(n, "childIds");
	for (j = 0; j < json_array_size(kids); j++)
		if ((k = json_object_get(index, json_string_value(
		    json_array_get(kids, j)) != NULL ? json_string_value(
		    json_array_get(kids, j)) : "")) != NULL)
			outline(nodes, index, (size_t)json_integer_value(k),
			    shown ? depth + 1 : depth, shown ? name : up, out,
			    refs, next);
}

static bool
interactive(const char *role)
{
	static const char *const roles[] = { "link", "button", "textbox",
	    "searchbox", "checkbox", "radio", "combobox", "listbox",
	    "option", "menuitem", "menuitemcheckbox", "menuitemradio", "tab",
	    "switch", "slider", "spinbutton", "treeitem" };
	size_t	 i;

	for (i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
		if (!strcmp(role, roles[i]))
			return true;
	return false;
}

/* The DOM node behind args' "ref" from the last outline; -1 if none. */
static long long
ref_node(struct page *p, json_t *args, struct buf *out)
{
	json_t		*r = json_object_get(args, "ref");
	char		 key[32];
	json_t		*v;

	if (json_is_integer(r))
		snprintf(key, sizeof(key), "%lld",
		    (long long)json_integer_value(r));
	else if (json_is_string(r))
		snprintf(key, sizeof(key), "%s", json_string_value(r));
	else {
		buf_printf(out, "error: \"ref\" is required (from "
		    "browser_snapshot)");
		return -1;
	}
	if ((v = json_object_get(json_object_get(p->state, "refs"), key)) ==
	    NULL) {
		buf_printf(out, "error: no ref %s on this page: take a new "
		    "browser_snapshot", key);
		return -1;
	}
	return (long long)json_integer_value(v);
}

/* What the bridge lets a sandbox open (it refuses the rest too). */
static bool
url_ok(const char *url, struct buf *out)
{
	if (url != NULL && (strncmp(url, "http://", 7) == 0 ||
	    strncmp(url, "https://", 8) == 0 || strncmp(url, "about:", 6) ==
	    0 || strncmp(url, "data:", 5) == 0) && strcspn(url, " \t\r\n") ==
	    strlen(url))
		return true;
	buf_printf(out, "error: \"url\" must be an http(s), about: or data: "
	    "URL, without spaces");
	return false;
}
