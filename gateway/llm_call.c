/* SPDX-License-Identifier: MIT */
/*
 * llm_call.c: a proxied LLM call on the upcall loop: the route's targets
 * tried in order, the request translated for the provider's API and the
 * key added, retries with backoff, and the answer passed on (a stream
 * event by event, translated or byte for byte).
 *
 * Failover rule: a try that fails before the answer has begun (connect
 * error, timeout, 408, 429, 5xx) moves to the next target; after the
 * last one, the route starts again after a backoff (doubling, jittered,
 * at least the longest Retry-After seen), up to llm.max_attempts tries.
 * Once a stream has begun nothing is retried: the client gets an error
 * event in its API's shape.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "pincer.h"

#define OUT_MAX		(4L << 20)	/* hard cap of the client buffer */
#define OUT_HIGH	(128 * 1024)	/* pause the upstream above this */
#define ERR_MAX		(64 * 1024)	/* a failed try's body kept */
#define SSE_EVENT_MAX	(1L << 20)
#define KEY_TTL_MS	5000
#define WATCH_AFTER_MS	20	/* a call still open then is watched */

static void	 job_first(void *);
static void	 job_try(void *);
static void	 job_watch(void *);
static void	 on_hup(void *);
static void	 try_target(struct llm_x *);
static int	 build(struct llm_x *, struct upcall_req *, char *, size_t);
static char	*build_body(struct llm_x *, char *, size_t);
static struct curl_slist *build_headers(struct llm_x *, char *, size_t);
static bool	 api_fits(enum llm_api, enum llm_kind, enum llm_api *);
static void	 failed(struct llm_x *);
static void	 give_up(struct llm_x *);
static void	 answer(struct llm_x *, int, const char *, size_t);
static void	 answer_error(struct llm_x *, int, const char *,
		    const char *);
static void	 whole_done(struct llm_x *);
static void	 stream_begin(struct llm_x *);
static void	 stream_end(struct llm_x *, bool);
static int	 ev_pass(void *, const struct sse_event *);
static int	 ev_xlate(void *, const struct sse_event *);
static void	 on_head(void *, const struct upcall_head *);
static int	 on_data(void *, const char *, size_t);
static void	 on_done(void *, enum upcall_err, const char *);
static void	 unref(struct llm_x *);
static void	 record(struct llm_x *);
static int	 key_get(const char *, struct buf *);
static bool	 retryable(int);
static void	 wipe(struct buf *);
static void	 redact(struct llm_x *);
static void	 redact_buf(const struct llm_provider *, struct buf *);
static void	 key_forget(const char *);

/*
 * Provider keys, decrypted at most every few seconds rather than per
 * call; `pincer secret set` takes effect within KEY_TTL_MS.
 */
static struct {
	char		 name[64];
	struct buf	 val;
	uint64_t	 at;
} keys[16];
static pthread_mutex_t	 keys_lock = PTHREAD_MUTEX_INITIALIZER;

static const struct upcall_ops ops = {
	.head = on_head, .data = on_data, .done = on_done,
};

/* Upstream paths by API, after the provider's base_url. */
static const char *const paths[] = {
	[LLM_API_CHAT] = "/chat/completions",
	[LLM_API_RESPONSES] = "/responses",
	[LLM_API_MESSAGES] = "/messages",
	[LLM_API_EMBEDDINGS] = "/embeddings",
	[LLM_API_MODELS] = "/models",
};

struct llm_x *
llm_x_new(void)
{
	struct llm_x	*x;

	if ((x = calloc(1, sizeof(*x))) == NULL)
		return NULL;
	x->client_fd = -1;
	buf_init(&x->err, ERR_MAX);
	buf_init(&x->whole, (size_t)config_current()->llm_max_answer);
	buf_init(&x->out, OUT_MAX);
	buf_init(&x->rec, (size_t)config_current()->llm_cache_entry_kb *
	    1024);
	return x;
}

void
llm_x_free(struct llm_x *x)
{
	if (x == NULL)
		return;
	upcall_unwatch(x->watch);
	if (x->client_fd != -1)
		close(x->client_fd);
	json_decref(x->body);
	free(x->raw);
	free(x->up_body);
	sse_free(x->sse);
	xlate_stream_free(x->xs);
	buf_free(&x->err);
	buf_free(&x->whole);
	buf_free(&x->out);
	buf_free(&x->rec);
	free(x);
}

/* Handler thread: everything after this runs on the loop. */
void
llm_call_begin(struct llm_x *x)
{
	pthread_mutex_lock(&llm_lock);
	x->refs++;
	pthread_mutex_unlock(&llm_lock);
	upcall_post(job_first, x, 0);
}

/* The request is over (libmicrohttpd's completion): stop what is left. */
void
llm_call_release(void *arg)
{
	struct llm_x	*x = arg;

	if (x->up != NULL)
		upcall_cancel(x->up);
	/* Most calls end before the watch is due: its timer goes too. */
	if (x->watch_job != NULL) {
		upcall_unpost(x->watch_job);
		x->watch_job = NULL;
		unref(x);
	}
	unref(x);
}

/* A holder other than the loop is done with x. */
void
llm_call_unref(void *arg)
{
	unref(arg);
}

/* The reader drained the buffer: the paused transfer may go on. */
void
llm_call_unpause(void *arg)
{
	struct llm_x	*x = arg;
	bool		 go;

	pthread_mutex_lock(&llm_lock);
	go = x->paused && x->up != NULL;
	x->paused = false;
	pthread_mutex_unlock(&llm_lock);
	if (go)
		upcall_resume(x->up);
	unref(x);
}

/*
 * A provider's request headers, key included, built as a proxied call's
 * are (api_llm.c's test call). The key kept in memory is dropped first:
 * a key just changed is the one tested. Caller frees; NULL and why when
 * a secret it names is not set.
 */
struct curl_slist *
llm_call_headers(const struct llm_provider *p, char *why, size_t whysz)
{
	struct llm_target	 t = { .provider = p };
	struct llm_x		*x;
	struct curl_slist	*h;

	if ((x = calloc(1, sizeof(*x))) == NULL) {
		snprintf(why, whysz, "out of memory");
		return NULL;
	}
	x->t = &t;
	x->api = LLM_API_MODELS;
	if (p->key != NULL)
		key_forget(p->key);
	h = build_headers(x, why, whysz);
	free(x);
	return h;
}

/* A provider's answer with its key cut out, before anyone sees it. */
void
llm_call_redact(const struct llm_provider *p, struct buf *b)
{
	redact_buf(p, b);
}

/* pincerd is ending: the keys kept in memory are wiped. */
void
llm_call_shutdown(void)
{
	size_t	 i;

	pthread_mutex_lock(&keys_lock);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		wipe(&keys[i].val);
		memset(keys[i].name, 0, sizeof(keys[i].name));
		keys[i].at = 0;
	}
	pthread_mutex_unlock(&keys_lock);
}

static void
job_first(void *arg)
{
	struct llm_x	*x = arg;

	pthread_mutex_lock(&llm_lock);
	x->refs++;		/* job_watch's */
	pthread_mutex_unlock(&llm_lock);
	x->watch_job = upcall_post(job_watch, x, WATCH_AFTER_MS);
	try_target(x);
	unref(x);
}

static void
job_watch(void *arg)
{
	struct llm_x	*x = arg;

	x->watch_job = NULL;
	llm_watch_client(arg, on_hup);
	unref(arg);
}

static void
job_try(void *arg)
{
	struct llm_x	*x = arg;

	try_target(x);
	unref(x);
}

/* The client hung up before the answer was done. */
static void
on_hup(void *arg)
{
	struct llm_x	*x = arg;

	pthread_mutex_lock(&llm_lock);
	x->client_gone = true;
	llm_wake(x);
	pthread_mutex_unlock(&llm_lock);
	if (x->up != NULL)
		upcall_cancel(x->up);
}

/* Start the try at x->ti, skipping targets that cannot take this API. */
static void
try_target(struct llm_x *x)
{
	struct upcall_req	 rq;
	char			 why[512];
	bool			 gone;

	pthread_mutex_lock(&llm_lock);
	gone = x->client_gone || x->req_done;
	pthread_mutex_unlock(&llm_lock);
	if (gone)
		return;
	/* llm.c made sure one target at least takes this API. */
	while (!api_fits(x->api, x->targets[x->ti].provider->kind,
	    &x->up_api))
		x->ti = (x->ti + 1) % x->ntargets;
	x->t = &x->targets[x->ti];
	x->t_try = now_seconds();
	switch (build(x, &rq, why, sizeof(why))) {
	case 0:
		break;
	case 1:		/* the client's request cannot be translated */
		answer_error(x, 400, "invalid_request", why);
		return;
	default:	/* this target cannot be called: the next one */
		snprintf(x->errmsg, sizeof(x->errmsg), "%s", why);
		x->errstatus = 0;
		pthread_mutex_lock(&llm_lock);
		x->tries++;
		pthread_mutex_unlock(&llm_lock);
		failed(x);
		return;
	}
	pthread_mutex_lock(&llm_lock);
	x->tries++;
	x->refs++;
	pthread_mutex_unlock(&llm_lock);
	memset(&x->head, 0, sizeof(x->head));
	buf_reset(&x->err);
	buf_reset(&x->whole);
	if ((x->up = upcall_begin(&rq, &ops, x)) == NULL) {
		pthread_mutex_lock(&llm_lock);
		x->refs--;
		pthread_mutex_unlock(&llm_lock);
		answer_error(x, 503, "unavailable", "pincerd is stopping");
	}
}

/*
 * Chat completions go to either kind (translated for Anthropic), and
 * messages too (translated for OpenAI's); responses and embeddings have
 * no Anthropic counterpart.
 */
static bool
api_fits(enum llm_api api, enum llm_kind kind, enum llm_api *up)
{
	*up = api;
	if (kind == LLM_ANTHROPIC) {
		if (api == LLM_API_CHAT)
			*up = LLM_API_MESSAGES;
		return api == LLM_API_CHAT || api == LLM_API_MESSAGES;
	}
	if (api == LLM_API_MESSAGES)
		*up = LLM_API_CHAT;
	return true;
}

/* 0: ready; 1: the client's request is at fault; -1: this target is. */
static int
build(struct llm_x *x, struct upcall_req *rq, char *why, size_t whysz)
{
	static __thread char	 url[2048];
	const char		*body;
	size_t			 len;

	memset(rq, 0, sizeof(*rq));
	free(x->up_body);
	x->up_body = NULL;
	body = x->raw;
	len = x->rawlen;
	/* The fast path: the client's bytes as they came. */
	if (x->up_api == x->api && !strcmp(x->t->model, x->model) &&
	    !(x->api == LLM_API_CHAT && x->stream && !x->chat_usage)) {
		x->added_usage = false;
	} else {
		if ((x->up_body = build_body(x, why, whysz)) == NULL)
			return 1;
		body = x->up_body;
		len = strlen(body);
	}
	snprintf(url, sizeof(url), "%s%s", x->t->provider->base_url,
	    paths[x->up_api]);
	if ((rq->headers = build_headers(x, why, whysz)) == NULL)
		return -1;
	rq->url = url;
	rq->body = body;
	rq->len = len;
	rq->head_ms = x->t->provider->timeout_ms;
	rq->stream = x->stream;
	return 0;
}

static char *
build_body(struct llm_x *x, char *why, size_t whysz)
{
	json_t	*j;
	char	*text;

	x->added_usage = false;
	if (x->api == LLM_API_CHAT && x->up_api == LLM_API_MESSAGES)
		j = xlate_req_chat_to_anthropic(x->body, x->t->model, why,
		    whysz);
	else if (x->api == LLM_API_MESSAGES && x->up_api == LLM_API_CHAT)
		j = xlate_req_anthropic_to_chat(x->body, x->t->model, why,
		    whysz);
	else if ((j = json_copy(x->body)) != NULL)
		json_object_set_new(j, "model", json_string(x->t->model));
	if (j == NULL)
		return NULL;
	/* Streams report usage only when asked: ask, and drop the answer
	 * if the client did not. */
	if (x->up_api == LLM_API_CHAT && x->stream &&
	    !json_is_true(json_object_get(json_object_get(j,
	    "stream_options"), "include_usage"))) {
		json_object_set_new(j, "stream_options",
		    json_pack("{s:b}", "include_usage", 1));
		x->added_usage = x->api == LLM_API_CHAT && !x->chat_usage;
	}
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (text == NULL)
		snprintf(why, whysz, "out of memory");
	return text;
}

/* The key goes in here, and nowhere else: not in the log, not back. */
static struct curl_slist *
build_headers(struct llm_x *x, char *why, size_t whysz)
{
	const struct llm_provider	*p = x->t->provider;
	struct curl_slist		*h = NULL, *n;
	struct buf			 key, line;
	const char			*v, *ref;
	size_t				 i;
	char				 name[80];

	h = curl_slist_append(h, "Content-Type: application/json");
	buf_init(&key, SECRETS_MAX + 64);
	buf_init(&line, SECRETS_MAX + 8192);
	if (p->key != NULL) {
		if (key_get(p->key, &key) == -1) {
			snprintf(why, whysz, "provider %s: its key, the "
			    "secret \"%s\", is not set (pincer secret set %s)",
			    p->name, p->key, p->key);
			goto fail;
		}
		buf_printf(&line, p->kind == LLM_ANTHROPIC ? "x-api-key: %s" :
		    "Authorization: Bearer %s", key.data);
		h = curl_slist_append(h, line.data);
	}
	if (p->kind == LLM_ANTHROPIC) {
		v = x->api == LLM_API_MESSAGES && x->an_version[0] ?
		    x->an_version : "2023-06-01";
		buf_reset(&line);
		buf_printf(&line, "anthropic-version: %s", v);
		h = curl_slist_append(h, line.data);
		if (x->an_beta[0]) {
			buf_reset(&line);
			buf_printf(&line, "anthropic-beta: %s", x->an_beta);
			h = curl_slist_append(h, line.data);
		}
	}
	for (i = 0; p->headers[i] != NULL; i++) {
		buf_reset(&line);
		/* ${secret:NAME} in a configured header's value. */
		if ((ref = strstr(p->headers[i], "${secret:")) != NULL &&
		    strchr(ref, '}') != NULL) {
			snprintf(name, sizeof(name), "%.*s",
			    (int)(strchr(ref, '}') - ref - 9), ref + 9);
			if (key_get(name, &key) == -1) {
				snprintf(why, whysz, "provider %s: the secret "
				    "\"%s\" in its headers is not set",
				    p->name, name);
				goto fail;
			}
			buf_printf(&line, "%.*s%s%s",
			    (int)(ref - p->headers[i]), p->headers[i],
			    key.data, strchr(ref, '}') + 1);
		} else
			buf_puts(&line, p->headers[i]);
		if ((n = curl_slist_append(h, line.data)) == NULL)
			goto fail;
		h = n;
	}
	wipe(&line);
	wipe(&key);
	return h;
fail:
	wipe(&line);
	wipe(&key);
	for (n = h; n != NULL; n = n->next)
		explicit_bzero(n->data, strlen(n->data));
	curl_slist_free_all(h);
	return NULL;
}

/*
 * A provider's error may quote the key it was given ("Incorrect API key
 * provided: sk-…"); it goes to the client with the key cut out.
 */
static void
redact(struct llm_x *x)
{
	if (x->t != NULL)
		redact_buf(x->t->provider, &x->err);
}

static void
redact_buf(const struct llm_provider *pv, struct buf *b)
{
	struct buf	 key, clean;
	const char	*p, *at, *end;

	if (pv->key == NULL || b->len == 0)
		return;
	buf_init(&key, SECRETS_MAX + 64);
	if (key_get(pv->key, &key) == 0 && key.len >= 4 &&
	    memmem(b->data, b->len, key.data, key.len) != NULL) {
		buf_init(&clean, ERR_MAX + 4096);
		end = b->data + b->len;
		for (p = b->data; (at = memmem(p, (size_t)(end - p),
		    key.data, key.len)) != NULL; p = at + key.len) {
			buf_append(&clean, p, (size_t)(at - p));
			buf_puts(&clean, "[redacted]");
		}
		buf_append(&clean, p, (size_t)(end - p));
		wipe(b);
		*b = clean;
	}
	wipe(&key);
}

static void
wipe(struct buf *b)
{
	if (b->data != NULL)
		explicit_bzero(b->data, b->len);
	buf_free(b);
}

static bool
retryable(int status)
{
	return status == 408 || status == 429 || status >= 500;
}

/* This try failed before the answer began: the next target, or a wait. */
static void
failed(struct llm_x *x)
{
	long		 delay, base = config_current()->llm_retry_base_ms;
	const struct config *c = config_current();

	if (x->tries >= c->llm_max_attempts) {
		give_up(x);
		return;
	}
	do
		x->ti++;
	while (x->ti < x->ntargets && !api_fits(x->api,
	    x->targets[x->ti].provider->kind, &x->up_api));
	if (x->ti < x->ntargets) {
		try_target(x);
		return;
	}
	x->ti = 0;
	x->round++;
	delay = base << (x->round - 1 < 10 ? x->round - 1 : 10);
	delay += delay > 1 ? random() % (delay / 2 + 1) : 0;
	if (x->wait_ms > delay)
		delay = x->wait_ms;
	if (delay > c->llm_retry_max_wait_s * 1000) {
		give_up(x);
		return;
	}
	x->wait_ms = 0;
	x->upstream_s += (double)delay / 1000;
	pthread_mutex_lock(&llm_lock);
	x->refs++;
	pthread_mutex_unlock(&llm_lock);
	upcall_post(job_try, x, delay);
}

/* Every try failed: the last failure goes to the client. */
static void
give_up(struct llm_x *x)
{
	char	*text;

	if (x->errstatus >= 400) {
		redact(x);
		text = xlate_error_upstream(x->api, x->up_api, x->errstatus,
		    x->err.data ? x->err.data : "", x->err.len);
		if (x->head.retry_after_ms > 0) {
			pthread_mutex_lock(&llm_lock);
			x->retry_after_s =
			    (x->head.retry_after_ms + 999) / 1000;
			pthread_mutex_unlock(&llm_lock);
		}
		if (text != NULL && x->err.len > 0) {
			answer(x, x->errstatus, text, strlen(text));
			free(text);
			return;
		}
		free(text);
		answer_error(x, x->errstatus, "upstream_error", x->errmsg);
		return;
	}
	answer_error(x, x->errstatus == -2 ? 504 : 502, x->errstatus == -2 ?
	    "upstream_timeout" : "upstream_unavailable", x->errmsg);
}

/* A whole answer for the client; the connection resumes to send it. */
static void
answer(struct llm_x *x, int status, const char *body, size_t len)
{
	pthread_mutex_lock(&llm_lock);
	buf_reset(&x->out);
	x->off = 0;
	if (buf_append(&x->out, body, len) == -1)
		status = 502;
	x->status = status;
	x->phase = LLM_WHOLE;
	x->t_end = now_seconds();
	x->provider = x->t != NULL && status < 400 ?
	    x->t->provider->name : x->provider;
	pthread_mutex_unlock(&llm_lock);
	/* Counted before the client has it: its next look at the usage
	 * finds this call. */
	record(x);
	pthread_mutex_lock(&llm_lock);
	llm_wake(x);
	pthread_mutex_unlock(&llm_lock);
}

static void
answer_error(struct llm_x *x, int status, const char *code, const char *msg)
{
	char	*text = xlate_error(x->api, status, code, msg);

	answer(x, status, text ? text : "{}", text ? strlen(text) : 2);
	free(text);
}

static void
on_head(void *arg, const struct upcall_head *h)
{
	struct llm_x	*x = arg;

	x->head = *h;
	if (h->status < 200 || h->status > 299)
		return;
	if (x->stream && !strncmp(h->content_type, "text/event-stream", 17))
		stream_begin(x);
}

/* A stream's head: from here on the answer is this stream. */
static void
stream_begin(struct llm_x *x)
{
	bool	 xl = x->up_api != x->api;

	x->sse = sse_new(SSE_EVENT_MAX);
	if (xl)
		x->xs = xlate_stream_new(x->api == LLM_API_CHAT ?
		    XLATE_ANTHROPIC_TO_CHAT : XLATE_CHAT_TO_ANTHROPIC,
		    x->chat_usage);
	x->t_first = now_seconds();
	/* No try follows a stream's start: what was kept for one goes
	 * (a long prompt's JSON tree is many times its text). */
	json_decref(x->body);
	x->body = NULL;
	if (upcall_sent(x->up)) {
		free(x->raw);
		free(x->up_body);
		x->raw = x->up_body = NULL;
	}
	pthread_mutex_lock(&llm_lock);
	x->upstream_s += x->t_first - x->t_try;
	x->phase = LLM_STREAM;
	x->status = 200;
	x->provider = x->t->provider->name;
	/* The connection wakes with the first event, not the head: one
	 * suspend and resume fewer before the first token. */
	pthread_mutex_unlock(&llm_lock);
}

static int
on_data(void *arg, const char *p, size_t n)
{
	struct llm_x	*x = arg;
	int		 rc;

	if (x->head.status < 200 || x->head.status > 299) {
		if (x->err.len + n <= ERR_MAX)
			buf_append(&x->err, p, n);
		return 0;
	}
	if (x->phase != LLM_STREAM) {
		if (!x->too_big && buf_append(&x->whole, p, n) == -1)
			x->too_big = true;
		return 0;
	}
	pthread_mutex_lock(&llm_lock);
	if (x->out.len - x->off > OUT_HIGH) {
		x->paused = true;
		pthread_mutex_unlock(&llm_lock);
		return 1;
	}
	rc = sse_feed(x->sse, p, n, x->xs != NULL ? ev_xlate : ev_pass, x);
	if (rc == -1) {
		x->xs != NULL ? xlate_stream_end(x->xs, false, &x->out) :
		    xlate_stream_error(x->api, "the provider's stream could "
		    "not be read", &x->out);
		x->up_done = true;
	}
	llm_wake(x);
	pthread_mutex_unlock(&llm_lock);
	if (rc == -1 && x->up != NULL)
		upcall_cancel(x->up);
	return 0;
}

/* llm_lock held: one upstream event, to the client as it came. */
static int
ev_pass(void *arg, const struct sse_event *ev)
{
	struct llm_x	*x = arg;

	xlate_tokens_event(x->up_api, ev, &x->tokens);
	if (x->added_usage && xlate_chat_usage_only(ev))
		return 0;
	if (x->cache_key[0] && buf_append(&x->rec, ev->raw, ev->raw_len) ==
	    -1)
		x->cache_key[0] = '\0';		/* too big to keep */
	return buf_append(&x->out, ev->raw, ev->raw_len);
}

/* llm_lock held: one upstream event, translated. */
static int
ev_xlate(void *arg, const struct sse_event *ev)
{
	struct llm_x	*x = arg;
	size_t		 before = x->out.len;

	if (xlate_stream_event(x->xs, ev, &x->out) == -1)
		return -1;
	if (x->cache_key[0] && buf_append(&x->rec, x->out.data + before,
	    x->out.len - before) == -1)
		x->cache_key[0] = '\0';
	return 0;
}

static void
on_done(void *arg, enum upcall_err e, const char *msg)
{
	struct llm_x	*x = arg;
	bool		 gone;

	x->up = NULL;
	pthread_mutex_lock(&llm_lock);
	gone = x->client_gone || x->req_done;
	pthread_mutex_unlock(&llm_lock);
	if (x->phase == LLM_STREAM)
		stream_end(x, e == UPCALL_OK);
	else if (gone)
		;
	else if (e != UPCALL_OK) {
		x->upstream_s += now_seconds() - x->t_try;
		snprintf(x->errmsg, sizeof(x->errmsg), "provider %s: %s",
		    x->t->provider->name, msg);
		x->errstatus = e == UPCALL_TIMEOUT ? -2 : 0;
		if (e == UPCALL_CANCELLED)
			answer_error(x, 503, "unavailable", msg);
		else
			failed(x);
	} else if (x->head.status >= 200 && x->head.status <= 299)
		whole_done(x);
	else if (retryable(x->head.status)) {
		x->upstream_s += now_seconds() - x->t_try;
		x->errstatus = x->head.status;
		snprintf(x->errmsg, sizeof(x->errmsg), "provider %s answered "
		    "%d", x->t->provider->name, x->head.status);
		if (x->head.retry_after_ms > x->wait_ms)
			x->wait_ms = x->head.retry_after_ms;
		failed(x);
	} else {
		x->upstream_s += now_seconds() - x->t_try;
		x->errstatus = x->head.status;
		give_up(x);
	}
	unref(x);
}

/* The stream ended: cleanly, or cut (an error event, never a fake end). */
static void
stream_end(struct llm_x *x, bool complete)
{
	size_t	 before;

	pthread_mutex_lock(&llm_lock);
	if (!x->up_done) {
		before = x->out.len;
		if (x->xs != NULL)
			xlate_stream_end(x->xs, complete, &x->out);
		else if (!complete)
			xlate_stream_error(x->api, "the provider's stream "
			    "broke off", &x->out);
		if (x->xs != NULL)
			xlate_stream_tokens(x->xs, &x->tokens);
		if (x->cache_key[0] && buf_append(&x->rec, x->out.data +
		    before, x->out.len - before) == -1)
			x->cache_key[0] = '\0';
	}
	if (!complete)
		x->cache_key[0] = '\0';
	pthread_mutex_unlock(&llm_lock);
	/* Kept before the client sees the end: its next call may hit. */
	if (complete && x->cache_key[0])
		llm_cache_store(x, x->rec.data, x->rec.len);
	x->t_end = now_seconds();
	record(x);
	pthread_mutex_lock(&llm_lock);
	x->up_done = true;
	llm_wake(x);
	pthread_mutex_unlock(&llm_lock);
}

/* A whole answer: usage read, translated if the client speaks another
 * API, and sent. */
static void
whole_done(struct llm_x *x)
{
	json_t		*j, *t = NULL;
	char		*text = NULL;

	x->upstream_s += now_seconds() - x->t_try;
	if (x->too_big) {
		answer_error(x, 502, "upstream_too_large", "the provider's "
		    "answer is larger than llm.max_answer_bytes");
		return;
	}
	j = json_loadb(x->whole.data ? x->whole.data : "", x->whole.len, 0,
	    NULL);
	if (j != NULL)
		xlate_tokens_json(x->up_api, j, &x->tokens);
	if (x->up_api != x->api) {
		if (j != NULL)
			t = x->api == LLM_API_CHAT ?
			    xlate_resp_anthropic_to_chat(j) :
			    xlate_resp_chat_to_anthropic(j);
		if (t == NULL || (text = json_dumps(t, JSON_COMPACT)) ==
		    NULL) {
			json_decref(j);
			json_decref(t);
			answer_error(x, 502, "upstream_invalid", "the "
			    "provider's answer could not be translated");
			return;
		}
		json_decref(t);
	}
	json_decref(j);
	pthread_mutex_lock(&llm_lock);
	snprintf(x->ctype, sizeof(x->ctype), "%s", text != NULL ||
	    !*x->head.content_type ? "application/json" :
	    x->head.content_type);
	pthread_mutex_unlock(&llm_lock);
	if (x->cache_key[0] && x->head.status == 200)
		llm_cache_store(x, text != NULL ? text : x->whole.data,
		    text != NULL ? strlen(text) : x->whole.len);
	if (text != NULL) {
		answer(x, x->head.status, text, strlen(text));
		free(text);
	} else
		answer(x, x->head.status, x->whole.data ? x->whole.data : "",
		    x->whole.len);
}

/* Loop thread. The last one out records the call and frees it. */
static void
unref(struct llm_x *x)
{
	bool	 last;

	pthread_mutex_lock(&llm_lock);
	last = --x->refs == 0;
	pthread_mutex_unlock(&llm_lock);
	if (!last)
		return;
	record(x);		/* once: a call that never got its answer */
	llm_x_free(x);
}

static void
record(struct llm_x *x)
{
	struct llm_call		 c;
	const struct llm_price	*pr;
	double			 end = x->t_end > 0 ? x->t_end : now_seconds();
	long long		 fresh;

	if (x->recorded)
		return;
	x->recorded = true;
	memset(&c, 0, sizeof(c));
	c.ts_ms = x->wall_ms;
	snprintf(c.caller, sizeof(c.caller), "%s", x->caller);
	snprintf(c.route, sizeof(c.route), "%s", x->route ? x->route->name :
	    "");
	snprintf(c.provider, sizeof(c.provider), "%s", x->t ?
	    x->t->provider->name : "");
	snprintf(c.model, sizeof(c.model), "%s", x->t ? x->t->model :
	    x->model);
	c.tokens = x->tokens;
	c.latency_ms = (long)((end - x->t_begin) * 1000);
	c.ttft_ms = x->t_first > 0 ? (long)((x->t_first - x->t_begin) *
	    1000) : -1;
	pthread_mutex_lock(&llm_lock);
	c.status = x->client_gone && !x->up_done ? 499 : x->status;
	pthread_mutex_unlock(&llm_lock);
	c.cache_hit = x->cache_state != NULL &&
	    !strcmp(x->cache_state, "hit");
	c.stream = x->stream;
	if (x->t != NULL && !c.cache_hit &&
	    (pr = llm_conf_price(x->t->provider, x->t->model)) != NULL) {
		fresh = c.tokens.in - c.tokens.cached;
		c.cost_usd = (fresh * pr->input + c.tokens.out * pr->output +
		    c.tokens.cached * (pr->cached >= 0 ? pr->cached :
		    pr->input)) / 1e6;
	}
	usage_record(&c);
}


static int
key_get(const char *name, struct buf *out)
{
	size_t		 i, slot = 0;
	uint64_t	 now = now_ms(), oldest = UINT64_MAX;
	int		 rc = 0;

	pthread_mutex_lock(&keys_lock);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (!strcmp(keys[i].name, name) &&
		    now - keys[i].at < KEY_TTL_MS)
			goto hit;
		if (keys[i].at < oldest) {
			oldest = keys[i].at;
			slot = i;
		}
	}
	i = slot;
	wipe(&keys[i].val);
	buf_init(&keys[i].val, SECRETS_MAX + 64);
	keys[i].name[0] = '\0';
	if ((rc = secrets_get(name, &keys[i].val)) != 0) {
		pthread_mutex_unlock(&keys_lock);
		return -1;
	}
	snprintf(keys[i].name, sizeof(keys[i].name), "%s", name);
	keys[i].at = now;
hit:
	buf_reset(out);
	rc = buf_append(out, keys[i].val.data, keys[i].val.len);
	pthread_mutex_unlock(&keys_lock);
	return rc;
}

/* The next key_get of name reads the store again. */
static void
key_forget(const char *name)
{
	size_t	 i;

	pthread_mutex_lock(&keys_lock);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(keys[i].name, name)) {
			wipe(&keys[i].val);
			memset(keys[i].name, 0, sizeof(keys[i].name));
			keys[i].at = 0;
		}
	pthread_mutex_unlock(&keys_lock);
}
