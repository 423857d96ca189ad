/* SPDX-License-Identifier: MIT */
/*
 * api_llm.c: POST /api/v1/llm/providers/{name}/test, one cheap call to a
 * provider so its owner learns whether its base_url and key work before
 * an agent needs them. The call is GET models (no token is spent, and
 * every kind has it), made as a proxied call is: the headers and key of
 * llm_call.c, on the upcall loop, with the provider's own timeout.
 *
 * A provider that fails is still a 200 with "ok": false and the reason
 * in words (no key, the provider's 401, unreachable, a timeout); 4xx are
 * for the request itself (an unknown provider).
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "pincer.h"

#define ANSWER_MAX	(256 * 1024)	/* a models list is a few KiB */
#define TEST_MS_MAX	15000L		/* a person is waiting */

struct probe {
	const struct llm_provider *p;	/* llm_conf lives until exit */
	struct http_req	*req;		/* NULL once the request is over */
	int		 refs;		/* the request's, the call's */
	char		 url[2048];
	long		 head_ms;
	struct curl_slist *headers;	/* taken by upcall_begin */
	struct upcall_head head;
	struct buf	 body;
	enum upcall_err	 err;
	char		 errmsg[256];
	double		 t0, ms;
	char		 actor[65], ip[64];
};

static pthread_mutex_t	 probe_lock = PTHREAD_MUTEX_INITIALIZER;

static void	 job_begin(void *);
static void	 on_head(void *, const struct upcall_head *);
static int	 on_data(void *, const char *, size_t);
static void	 on_done(void *, enum upcall_err, const char *);
static void	 on_resume(struct http_req *, void *);
static void	 on_free(void *);
static void	 unref(struct probe *);
static void	 reply(struct http_req *, struct probe *);
static const char *first_model(const struct llm_provider *, json_t *);
static void	 upstream_words(struct probe *, char *, size_t);
static void	 unmask(const char *, char *, size_t);

static const struct upcall_ops ops = {
	.head = on_head, .data = on_data, .done = on_done,
};

void
api_llm_provider_test(struct http_req *r)
{
	const struct llm_conf	*lc = llm_conf_get();
	const struct identity	*id = http_req_identity(r);
	const char		*name = http_req_param(r);
	size_t			 i, n = strcspn(name, "/");
	struct probe		*pr;
	char			 why[512];

	for (i = 0; lc != NULL && i < lc->nproviders; i++)
		if (strlen(lc->providers[i].name) == n &&
		    !strncmp(lc->providers[i].name, name, n))
			break;
	if (lc == NULL || i == lc->nproviders) {
		http_error(r, 404, "not_found", "no LLM provider is named "
		    "\"%.*s\" (llm.providers in the config)",
		    (int)(n > 64 ? 64 : n), name);
		return;
	}
	if ((pr = calloc(1, sizeof(*pr))) == NULL) {
		http_error(r, 503, "no_memory", "out of memory");
		return;
	}
	pr->p = &lc->providers[i];
	snprintf(pr->actor, sizeof(pr->actor), "%s", id->user);
	snprintf(pr->ip, sizeof(pr->ip), "%s", http_req_ip(r));
	buf_init(&pr->body, ANSWER_MAX);
	snprintf(pr->url, sizeof(pr->url), "%s/models", pr->p->base_url);
	pr->head_ms = pr->p->timeout_ms < TEST_MS_MAX ? pr->p->timeout_ms :
	    TEST_MS_MAX;
	/* No key: answered now, nothing is sent. */
	if ((pr->headers = llm_call_headers(pr->p, why, sizeof(why))) ==
	    NULL) {
		audit_add(pr->actor, pr->ip, "llm_provider_test",
		    pr->p->name, "no key");
		http_reply_json(r, 200, json_pack("{s:b, s:i, s:i, s:s}",
		    "ok", 0, "status", 0, "latency_ms", 0, "message", why));
		buf_free(&pr->body);
		free(pr);
		return;
	}
	pr->req = r;
	pr->refs = 2;
	pr->t0 = now_seconds();
	http_suspend(r, on_resume, on_free, pr);
	upcall_post(job_begin, pr, 0);
}

/* The loop: the call begins; its callbacks run here too. */
static void
job_begin(void *arg)
{
	struct probe		*pr = arg;
	struct upcall_req	 rq;

	memset(&rq, 0, sizeof(rq));
	rq.url = pr->url;
	rq.headers = pr->headers;
	rq.head_ms = pr->head_ms;
	pr->headers = NULL;
	if (upcall_begin(&rq, &ops, pr) == NULL)
		on_done(pr, UPCALL_CANCELLED, "pincerd is stopping");
}

static void
on_head(void *arg, const struct upcall_head *h)
{
	((struct probe *)arg)->head = *h;
}

/* Past ANSWER_MAX the rest is dropped: the head says enough. */
static int
on_data(void *arg, const char *p, size_t n)
{
	struct probe	*pr = arg;

	if (pr->body.len + n <= ANSWER_MAX)
		buf_append(&pr->body, p, n);
	return 0;
}

static void
on_done(void *arg, enum upcall_err e, const char *msg)
{
	struct probe	*pr = arg;

	pr->ms = (now_seconds() - pr->t0) * 1000;
	pr->err = e;
	snprintf(pr->errmsg, sizeof(pr->errmsg), "%s", msg ? msg : "");
	llm_call_redact(pr->p, &pr->body);
	pthread_mutex_lock(&probe_lock);
	if (pr->req != NULL)
		http_resume(pr->req);
	pthread_mutex_unlock(&probe_lock);
	unref(pr);
}

static void
on_resume(struct http_req *r, void *arg)
{
	reply(r, arg);
}

/* The request is over: answered, or its client went away. */
static void
on_free(void *arg)
{
	struct probe	*pr = arg;

	pthread_mutex_lock(&probe_lock);
	pr->req = NULL;
	pthread_mutex_unlock(&probe_lock);
	unref(pr);
}

static void
unref(struct probe *pr)
{
	int	 left;

	pthread_mutex_lock(&probe_lock);
	left = --pr->refs;
	pthread_mutex_unlock(&probe_lock);
	if (left > 0)
		return;
	curl_slist_free_all(pr->headers);
	buf_free(&pr->body);
	free(pr);
}

static void
reply(struct http_req *r, struct probe *pr)
{
	const char	*pn = pr->p->name, *model = NULL;
	json_t		*o, *j = NULL;
	char		 msg[1024], up[400];
	int		 st = pr->head.status;
	bool		 ok = false;

	if (pr->err == UPCALL_TIMEOUT)
		snprintf(msg, sizeof(msg), "provider %s did not answer within "
		    "%ld ms (%.300s)", pn, pr->head_ms, pr->url);
	else if (pr->err != UPCALL_OK)
		snprintf(msg, sizeof(msg), "provider %s could not be reached "
		    "at %.300s: %s", pn, pr->url, pr->errmsg);
	else if (st >= 200 && st <= 299) {
		j = json_loadb(pr->body.data ? pr->body.data : "",
		    pr->body.len, 0, NULL);
		model = first_model(pr->p, j);
		ok = true;
		snprintf(msg, sizeof(msg), "provider %s answered %d in %.0f ms"
		    "%s%s", pn, st, pr->ms, model ? "; it offers " : "",
		    model ? model : "");
	} else {
		upstream_words(pr, up, sizeof(up));
		snprintf(msg, sizeof(msg), "provider %s answered %d%s%s", pn,
		    st, *up ? ": " : "", up);
	}
	o = json_pack("{s:b, s:i, s:i, s:s}", "ok", ok, "status", st,
	    "latency_ms", (int)(pr->ms + 0.5), "message", msg);
	if (model != NULL)
		json_object_set_new(o, "model", json_string(model));
	json_decref(j);
	audit_add(pr->actor, pr->ip, "llm_provider_test", pn,
	    ok ? "ok" : "failed");
	http_reply_json(r, 200, o);
}

/* The provider's first configured model it lists, else its first one. */
static const char *
first_model(const struct llm_provider *p, json_t *j)
{
	json_t		*data = json_object_get(j, "data"), *m;
	size_t		 i, k;
	const char	*id;

	for (k = 0; p->models[k] != NULL; k++)
		json_array_foreach(data, i, m)
			if ((id = json_string_value(json_object_get(m,
			    "id"))) != NULL && !strcmp(id, p->models[k]))
				return p->models[k];
	return json_string_value(json_object_get(json_array_get(data, 0),
	    "id"));
}

/*
 * OpenAI's and Anthropic's errors both say error.message; the body went
 * through llm_call_redact, since a provider may quote the key it got.
 */
static void
upstream_words(struct probe *pr, char *out, size_t outsz)
{
	json_t		*j;
	const char	*m;

	*out = '\0';
	j = json_loadb(pr->body.data ? pr->body.data : "", pr->body.len, 0,
	    NULL);
	m = json_string_value(json_object_get(json_object_get(j, "error"),
	    "message"));
	if (m == NULL)
		m = json_string_value(json_object_get(j, "error"));
	if (m == NULL)
		m = http_status_text(pr->head.status);
	unmask(m ? m : "", out, outsz);
	json_decref(j);
}

/*
 * OpenAI quotes a wrong key masked but for its last four characters
 * ("sk-*****b2d2"): those go too, so no part of a key is shown.
 */
static void
unmask(const char *m, char *out, size_t outsz)
{
	size_t	 o = 0, stars = 0;

	for (; *m != '\0' && o + 1 < outsz; m++) {
		if (stars >= 3 && isalnum((unsigned char)*m))
			continue;
		stars = *m == '*' ? stars + 1 : 0;
		out[o++] = *m;
	}
	out[o] = '\0';
}
