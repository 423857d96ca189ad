/* SPDX-License-Identifier: MIT */
/*
 * llm.c: the LLM proxy's endpoints, the client's side of a call.
 *
 * A request is checked, its model resolved to a route's targets, its
 * budget checked, and then the connection is parked (libmicrohttpd
 * suspend) while llm_call.c tries the targets on the upcall loop. When
 * an answer is ready the loop resumes the connection: a whole answer
 * is queued at once, a stream is pulled by libmicrohttpd from a bounded
 * buffer that the loop fills (and stops filling when it is full: the
 * upstream transfer is paused, which is the back-pressure).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "pincer.h"

static void	 call(struct http_req *, enum llm_api);
static bool	 resolve(struct llm_x *, const char *model, char *, size_t);
static void	 caller_of(struct http_req *, char *, size_t);
static bool	 fits_somewhere(const struct llm_x *);
static void	 copy_header(struct http_req *, const char *, char *, size_t);
static void	 refuse(struct http_req *, enum llm_api, int, const char *,
		    const char *, long retry_s);
static void	 on_resume(struct http_req *, void *);
static void	 on_done(void *);
static ssize_t	 reader(void *, uint64_t, char *, size_t);
static void	 reader_free(void *);
static void	 add_headers(struct llm_x *, struct MHD_Response *);
static void	 models_openai(const struct llm_conf *, json_t *);
static void	 models_anthropic(const struct llm_conf *, json_t *);

pthread_mutex_t	 llm_lock = PTHREAD_MUTEX_INITIALIZER;

void
api_llm_chat(struct http_req *r)
{
	call(r, LLM_API_CHAT);
}

void
api_llm_responses(struct http_req *r)
{
	call(r, LLM_API_RESPONSES);
}

void
api_llm_messages(struct http_req *r)
{
	call(r, LLM_API_MESSAGES);
}

void
api_llm_embeddings(struct http_req *r)
{
	call(r, LLM_API_EMBEDDINGS);
}

/*
 * GET models: the routes and the providers' models, from the config (no
 * upstream call, so no key is used). A client that sends
 * anthropic-version is Anthropic's SDK and gets that API's shape.
 */
void
api_llm_models(struct http_req *r)
{
	const struct llm_conf	*lc = llm_conf_get();
	json_t			*o = json_object(), *data = json_array();

	if (!llm_path_ok(r))
		return;
	if (lc != NULL && http_req_header(r, "anthropic-version") != NULL)
		models_anthropic(lc, data);
	else if (lc != NULL)
		models_openai(lc, data);
	if (http_req_header(r, "anthropic-version") != NULL) {
		json_object_set_new(o, "has_more", json_false());
		json_object_set(o, "first_id", json_array_size(data) ?
		    json_object_get(json_array_get(data, 0), "id") :
		    json_null());
		json_object_set(o, "last_id", json_array_size(data) ?
		    json_object_get(json_array_get(data,
		    json_array_size(data) - 1), "id") : json_null());
	} else
		json_object_set_new(o, "object", json_string("list"));
	json_object_set_new(o, "data", data);
	http_reply_json(r, 200, o);
}

/*
 * Inside a sandbox the proxy is at 127.0.0.1:8080/v1/…; on the public
 * port it is /llm/v1/…. The short path is for sandboxes only.
 */
bool
llm_path_ok(struct http_req *r)
{
	if (strncmp(http_req_path(r), "/v1/", 4) == 0 &&
	    http_req_identity(r)->kind != ID_SANDBOX) {
		http_error(r, 404, "not_found", "no such route (the LLM "
		    "proxy is under /llm/v1/)");
		return false;
	}
	return true;
}

static void
call(struct http_req *r, enum llm_api api)
{
	const struct llm_conf	*lc = llm_conf_get();
	const struct config	*c = config_current();
	struct llm_x		*x = NULL;
	const char		*body, *model;
	size_t			 len;
	json_t			*j;
	json_error_t		 je;
	char			 why[512];
	long			 retry_s = 0;
	double			 t0 = now_seconds();

	if (!llm_path_ok(r))
		return;
	if (lc == NULL || lc->nproviders == 0) {
		refuse(r, api, 503, "no_provider", "no LLM provider is "
		    "configured (llm.providers in the config)", 0);
		return;
	}
	http_req_body(r, &body, &len);
	if ((long)len > c->llm_max_body) {
		refuse(r, api, 413, "body_too_large", "the request body is "
		    "larger than llm.max_body_bytes", 0);
		return;
	}
	if ((j = json_loadb(body, len, 0, &je)) == NULL ||
	    !json_is_object(j)) {
		snprintf(why, sizeof(why), "the body is not a JSON object%s%s",
		    j == NULL ? ": " : "", j == NULL ? je.text : "");
		json_decref(j);
		refuse(r, api, 400, "invalid_json", why, 0);
		return;
	}
	model = json_string_value(json_object_get(j, "model"));
	if (model == NULL || *model == '\0' || strlen(model) > 127) {
		json_decref(j);
		refuse(r, api, 400, "invalid_request", "\"model\" is required: "
		    "a route (e.g. \"default\") or a provider's model", 0);
		return;
	}
	if ((x = llm_x_new()) == NULL) {
		json_decref(j);
		refuse(r, api, 500, "internal", "out of memory", 0);
		return;
	}
	x->body = j;
	/* Kept: curl may still be sending it after the request is gone. */
	if ((x->raw = malloc(len + 1)) == NULL) {
		llm_x_free(x);
		refuse(r, api, 500, "internal", "out of memory", 0);
		return;
	}
	memcpy(x->raw, body, len);
	x->rawlen = len;
	copy_header(r, "anthropic-version", x->an_version,
	    sizeof(x->an_version));
	copy_header(r, "anthropic-beta", x->an_beta, sizeof(x->an_beta));
	x->api = api;
	x->lc = lc;
	x->t_begin = t0;
	x->wall_ms = now_wall_ms();
	snprintf(x->model, sizeof(x->model), "%s", model);
	if (!resolve(x, x->model, why, sizeof(why))) {
		llm_x_free(x);
		refuse(r, api, 404, "model_not_found", why, 0);
		return;
	}
	if (!fits_somewhere(x)) {
		snprintf(why, sizeof(why), "no provider of \"%s\" has this "
		    "API (Anthropic providers take chat completions and "
		    "messages only)", model);
		llm_x_free(x);
		refuse(r, api, 400, "unsupported_api", why, 0);
		return;
	}
	caller_of(r, x->caller, sizeof(x->caller));
	switch (usage_check(lc, x->caller, why, sizeof(why), &retry_s)) {
	case USAGE_OK:
		break;
	case USAGE_BUDGET:
		llm_x_free(x);
		refuse(r, api, 429, "budget_exceeded", why, retry_s);
		return;
	case USAGE_RATE:
		llm_x_free(x);
		refuse(r, api, 429, "rate_limited", why, retry_s);
		return;
	}
	x->stream = json_is_true(json_object_get(j, "stream"));
	x->chat_usage = json_is_true(json_object_get(json_object_get(j,
	    "stream_options"), "include_usage"));
	if (llm_cache_lookup(x, r))
		return;
	llm_start(x, r);
}

/*
 * The model a client names is a route, "PROVIDER/MODEL", or a model a
 * provider lists, in that order. Anything else is refused: a model the
 * client did not ask for is never used in its place.
 */
static bool
resolve(struct llm_x *x, const char *model, char *why, size_t whysz)
{
	const struct llm_conf	*lc = x->lc;
	const char		*slash = strchr(model, '/');
	size_t			 i, j, n;
	struct buf		 names;

	for (i = 0; i < lc->nroutes; i++)
		if (!strcmp(lc->routes[i].name, model)) {
			x->route = &lc->routes[i];
			x->targets = x->route->targets;
			x->ntargets = x->route->ntargets;
			return true;
		}
	for (i = 0; i < lc->nproviders; i++) {
		const struct llm_provider *p = &lc->providers[i];

		n = strlen(p->name);
		if (slash != NULL && (size_t)(slash - model) == n &&
		    !strncmp(model, p->name, n) && slash[1] != '\0') {
			x->direct.provider = p;
			x->direct.model = (char *)slash + 1;
			goto direct;
		}
	}
	for (i = 0; i < lc->nproviders; i++)
		for (j = 0; lc->providers[i].models[j] != NULL; j++)
			if (!strcmp(lc->providers[i].models[j], model)) {
				x->direct.provider = &lc->providers[i];
				x->direct.model = (char *)model;
				goto direct;
			}
	buf_init(&names, 300);
	for (i = 0; i < lc->nroutes; i++)
		buf_printf(&names, "%s%s", i ? ", " : "", lc->routes[i].name);
	snprintf(why, whysz, "no route or provider serves the model \"%s\" "
	    "(routes: %s; or PROVIDER/MODEL, or a model in a provider's "
	    "\"models\")", model, names.len ? names.data : "none");
	buf_free(&names);
	return false;
direct:
	/* The name lives in x->model, which lives as long as x. */
	x->targets = &x->direct;
	x->ntargets = 1;
	return true;
}

/* Responses and embeddings have no Anthropic counterpart. */
static bool
fits_somewhere(const struct llm_x *x)
{
	size_t	 i;

	if (x->api != LLM_API_RESPONSES && x->api != LLM_API_EMBEDDINGS)
		return true;
	for (i = 0; i < x->ntargets; i++)
		if (x->targets[i].provider->kind != LLM_ANTHROPIC)
			return true;
	return false;
}

/* A header passed upstream, if it is one line and fits. */
static void
copy_header(struct http_req *r, const char *name, char *out, size_t outsz)
{
	const char	*v = http_req_header(r, name);

	if (v != NULL && strlen(v) < outsz && strcspn(v, "\r\n") == strlen(v))
		snprintf(out, outsz, "%s", v);
}

/* People by their name (whatever their credential), sandboxes by theirs. */
static void
caller_of(struct http_req *r, char *out, size_t outsz)
{
	const struct identity	*id = http_req_identity(r);

	if (id->kind == ID_SANDBOX)
		snprintf(out, outsz, "sandbox:%s", id->user);
	else if (id->kind == ID_TOKEN)
		snprintf(out, outsz, "user:%s", id->user);
	else
		snprintf(out, outsz, "user:%s", *id->user ? id->user :
		    "anonymous");
}

/* An error before any upstream call, in the client's API's shape. */
static void
refuse(struct http_req *r, enum llm_api api, int status, const char *code,
    const char *msg, long retry_s)
{
	struct MHD_Response	*resp;
	char			*text, num[32];

	if ((text = xlate_error(api, status, code, msg)) == NULL) {
		http_error(r, status, code, "%s", msg);
		return;
	}
	resp = MHD_create_response_from_buffer(strlen(text), text,
	    MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(text);
		http_error(r, 500, "internal", "out of memory");
		return;
	}
	MHD_add_response_header(resp, "Content-Type", "application/json");
	if (retry_s > 0) {
		snprintf(num, sizeof(num), "%ld", retry_s);
		MHD_add_response_header(resp, "Retry-After", num);
	}
	http_reply(r, status, resp);
}

/* Handler thread: park the connection, then let the loop call out. */
void
llm_start(struct llm_x *x, struct http_req *r)
{
	x->req = r;
	x->conn = http_req_conn(r);
	x->refs = 1;			/* the request's */
	x->parked = true;
	http_suspend(r, on_resume, on_done, x);
	llm_call_begin(x);
}

/*
 * Loop thread: watch the client's socket for a hang-up, through a dup
 * (a parked connection does not notice its client going). Done only for
 * calls still open after a moment: most answer first, and the watch
 * costs four system calls. llm_lock is held: the request cannot end,
 * and its socket cannot close, meanwhile.
 */
void
llm_watch_client(struct llm_x *x, void (*fn)(void *))
{
	const union MHD_ConnectionInfo	*ci;

	pthread_mutex_lock(&llm_lock);
	if (!x->req_done && !x->up_done && x->client_fd == -1 &&
	    (ci = MHD_get_connection_info(x->conn,
	    MHD_CONNECTION_INFO_CONNECTION_FD)) != NULL)
		x->client_fd = fcntl(ci->connect_fd, F_DUPFD_CLOEXEC, 0);
	if (x->client_fd != -1 && x->watch == NULL)
		x->watch = upcall_watch(x->client_fd, fn, x);
	pthread_mutex_unlock(&llm_lock);
}

/* Loop thread, lock held: the client's side has something to do. */
void
llm_wake(struct llm_x *x)
{
	if (!x->parked || x->req_done)
		return;
	x->parked = false;
	http_conn_resume(x->conn);
}

/* An HTTP thread: the answer (or its head) is ready. */
static void
on_resume(struct http_req *r, void *arg)
{
	struct llm_x		*x = arg;
	struct MHD_Response	*resp;
	int			 status;

	pthread_mutex_lock(&llm_lock);
	status = x->status;
	if (x->phase == LLM_WAIT) {
		/* Woken with no answer: the client went away. */
		pthread_mutex_unlock(&llm_lock);
		http_error(r, 499, "client_gone", "the client went away");
		return;
	}
	if (x->phase == LLM_STREAM) {
		/* libmicrohttpd may drop the response after the request's
		 * end: the reader holds x until then. */
		x->reader = true;
		x->refs++;
		pthread_mutex_unlock(&llm_lock);
		/* The block is used only for an HTTP/1.0 client (chunked
		 * answers are written into the connection's own buffer);
		 * each open stream holds it, so it is small. */
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN,
		    512, reader, x, reader_free);
		if (resp == NULL) {
			reader_free(x);
			http_error(r, 500, "internal", "out of memory");
			return;
		}
		MHD_add_response_header(resp, "Content-Type",
		    "text/event-stream; charset=utf-8");
		MHD_add_response_header(resp, "Cache-Control", "no-store");
		MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	} else {
		resp = MHD_create_response_from_buffer(x->out.len,
		    x->out.data ? x->out.data : "", MHD_RESPMEM_MUST_COPY);
		pthread_mutex_unlock(&llm_lock);
		if (resp == NULL) {
			http_error(r, 500, "internal", "out of memory");
			return;
		}
		MHD_add_response_header(resp, "Content-Type",
		    x->ctype[0] ? x->ctype : "application/json");
	}
	add_headers(x, resp);
	http_reply(r, status, resp);
}

/* Where the answer came from and what pincerd added to its time. */
static void
add_headers(struct llm_x *x, struct MHD_Response *resp)
{
	char	 v[64];

	snprintf(v, sizeof(v), "%.3f",
	    (now_seconds() - x->t_begin - x->upstream_s) * 1000);
	MHD_add_response_header(resp, "x-pincer-overhead-ms", v);
	if (x->provider != NULL)
		MHD_add_response_header(resp, "x-pincer-provider",
		    x->provider);
	if (x->route != NULL)
		MHD_add_response_header(resp, "x-pincer-route",
		    x->route->name);
	if (x->cache_state != NULL)
		MHD_add_response_header(resp, "x-pincer-cache",
		    x->cache_state);
	snprintf(v, sizeof(v), "%d", x->tries);
	MHD_add_response_header(resp, "x-pincer-attempts", v);
	if (x->retry_after_s > 0) {
		snprintf(v, sizeof(v), "%ld", x->retry_after_s);
		MHD_add_response_header(resp, "Retry-After", v);
	}
}

/* The request is over, answered or not: the loop lets go of it. */
static void
on_done(void *arg)
{
	struct llm_x	*x = arg;

	pthread_mutex_lock(&llm_lock);
	x->req_done = true;
	x->req = NULL;
	if (x->phase == LLM_STREAM && !x->up_done)
		x->client_gone = true;
	pthread_mutex_unlock(&llm_lock);
	upcall_post(llm_call_release, x, 0);
}

/* libmicrohttpd pulls the stream; an empty buffer parks the connection. */
static ssize_t
reader(void *cls, uint64_t pos, char *out, size_t max)
{
	struct llm_x	*x = cls;
	size_t		 n;
	bool		 resume = false;

	pthread_mutex_lock(&llm_lock);
	if (x->out.len > x->off) {
		n = x->out.len - x->off < max ? x->out.len - x->off : max;
		memcpy(out, x->out.data + x->off, n);
		x->off += n;
		if (x->off == x->out.len) {
			x->out.len = x->off = 0;
			if ((resume = x->paused))
				x->refs++;	/* the unpause job's */
		}
		pthread_mutex_unlock(&llm_lock);
		if (resume)
			upcall_post(llm_call_unpause, x, 0);
		return (ssize_t)n;
	}
	if (x->up_done || x->client_gone) {
		pthread_mutex_unlock(&llm_lock);
		return x->client_gone ? MHD_CONTENT_READER_END_WITH_ERROR :
		    MHD_CONTENT_READER_END_OF_STREAM;
	}
	x->parked = true;
	MHD_suspend_connection(x->conn);
	pthread_mutex_unlock(&llm_lock);
	return 0;
}

static void
reader_free(void *cls)
{
	struct llm_x	*x = cls;

	pthread_mutex_lock(&llm_lock);
	x->reader = false;
	pthread_mutex_unlock(&llm_lock);
	upcall_post(llm_call_unref, x, 0);
}

static void
models_openai(const struct llm_conf *lc, json_t *data)
{
	size_t	 i, j;
	char	 id[256];

	for (i = 0; i < lc->nroutes; i++)
		json_array_append_new(data, json_pack("{s:s, s:s, s:i, s:s}",
		    "id", lc->routes[i].name, "object", "model", "created", 0,
		    "owned_by", "pincer"));
	for (i = 0; i < lc->nproviders; i++)
		for (j = 0; lc->providers[i].models[j] != NULL; j++) {
			snprintf(id, sizeof(id), "%s/%s",
			    lc->providers[i].name, lc->providers[i].models[j]);
			json_array_append_new(data, json_pack("{s:s, s:s, s:i, "
			    "s:s}", "id", id, "object", "model", "created", 0,
			    "owned_by", lc->providers[i].name));
		}
}

static void
models_anthropic(const struct llm_conf *lc, json_t *data)
{
	size_t	 i, j;
	char	 id[256];

	for (i = 0; i < lc->nroutes; i++)
		json_array_append_new(data, json_pack("{s:s, s:s, s:s, s:s}",
		    "type", "model", "id", lc->routes[i].name, "display_name",
		    lc->routes[i].name, "created_at", "1970-01-01T00:00:00Z"));
	for (i = 0; i < lc->nproviders; i++)
		for (j = 0; lc->providers[i].models[j] != NULL; j++) {
			snprintf(id, sizeof(id), "%s/%s",
			    lc->providers[i].name, lc->providers[i].models[j]);
			json_array_append_new(data, json_pack("{s:s, s:s, s:s, "
			    "s:s}", "type", "model", "id", id, "display_name",
			    id, "created_at", "1970-01-01T00:00:00Z"));
		}
}
