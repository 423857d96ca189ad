/* SPDX-License-Identifier: MIT */
/*
 * llm_conf.c: the llm section of the config (providers, routes, budgets)
 * checked and turned into structs once per config, not per request.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "pincer.h"

#define NAME_MAX_LEN	63

static int	 provider_build(struct llm_provider *, json_t *, char *,
		    size_t);
static int	 provider_strings(struct llm_provider *, json_t *, char *,
		    size_t);
static int	 provider_headers(struct llm_provider *, json_t *, char *,
		    size_t);
static int	 provider_prices(struct llm_provider *, json_t *, char *,
		    size_t);
static int	 route_build(struct llm_conf *, struct llm_route *,
		    const char *, json_t *, char *, size_t);
static int	 target_build(struct llm_conf *, struct llm_target *, json_t *,
		    char *, size_t);
static int	 budget_build(struct llm_budget *, json_t *, char *, size_t);
static const struct llm_provider *provider_find(const struct llm_conf *,
		    const char *, size_t);
static bool	 name_ok(const char *);
static bool	 looks_like_key(const char *);
static char	**strlist(json_t *);
static void	 strlist_free(char **);

/* Where each kind is when base_url is not given. */
static const struct {
	const char	*kind;
	enum llm_kind	 value;
	const char	*base_url;
} kinds[] = {
	{ "openai", LLM_OPENAI, "https://api.openai.com/v1" },
	{ "anthropic", LLM_ANTHROPIC, "https://api.anthropic.com/v1" },
	{ "openai-compatible", LLM_COMPAT, NULL },
};

static pthread_mutex_t	 lock = PTHREAD_MUTEX_INITIALIZER;
static const struct config *built_for;	/* lock */
static struct llm_conf	*live;		/* lock */
static struct llm_conf	**old;		/* replaced ones, freed at exit */
static size_t		 nold;

/*
 * Requests hold the pointer without a lock for their whole length, so
 * a replaced one stays until exit, like the config it came from.
 */
const struct llm_conf *
llm_conf_get(void)
{
	const struct config	*c = config_current();
	struct llm_conf		*lc, **p;
	char			 err[512];

	pthread_mutex_lock(&lock);
	if (c != built_for) {
		/* config.c checked it; a failure here is memory. */
		if ((lc = llm_conf_build(c, err, sizeof(err))) == NULL)
			log_error("cannot use the llm config", "%s", err);
		else {
			if (live != NULL &&
			    (p = realloc(old, (nold + 1) * sizeof(*p))) !=
			    NULL) {
				old = p;
				old[nold++] = live;
			}
			live = lc;
			built_for = c;
		}
	}
	lc = live;
	pthread_mutex_unlock(&lock);
	return lc;
}

void
llm_conf_free_all(void)
{
	size_t	 i;

	pthread_mutex_lock(&lock);
	for (i = 0; i < nold; i++)
		llm_conf_free(old[i]);
	free(old);
	old = NULL;
	nold = 0;
	llm_conf_free(live);
	live = NULL;
	built_for = NULL;
	pthread_mutex_unlock(&lock);
}

struct llm_conf *
llm_conf_build(const struct config *c, char *err, size_t errsz)
{
	struct llm_conf	*lc;
	const char	*key;
	json_t		*v;
	size_t		 i, j;

	if ((lc = calloc(1, sizeof(*lc))) == NULL)
		goto nomem;
	lc->rate_limit_rpm = c->llm_rate_rpm;
	lc->providers = calloc(json_array_size(c->llm_providers) + 1,
	    sizeof(*lc->providers));
	lc->routes = calloc(json_object_size(c->llm_routes) + 1,
	    sizeof(*lc->routes));
	lc->budgets = calloc(json_array_size(c->llm_budgets) + 1,
	    sizeof(*lc->budgets));
	if (lc->providers == NULL || lc->routes == NULL || lc->budgets == NULL)
		goto nomem;
	json_array_foreach(c->llm_providers, i, v) {
		if (provider_build(&lc->providers[i], v, err, errsz) == -1)
			goto fail_at_provider;
		lc->nproviders++;
		for (j = 0; j < i; j++)
			if (!strcmp(lc->providers[j].name,
			    lc->providers[i].name)) {
				snprintf(err, errsz, "llm.providers: two "
				    "providers are named \"%s\"",
				    lc->providers[i].name);
				goto fail;
			}
	}
	json_object_foreach(c->llm_routes, key, v) {
		/* Counted first: a half-built route is freed too. */
		if (route_build(lc, &lc->routes[lc->nroutes++], key, v, err,
		    errsz) == -1)
			goto fail;
	}
	json_array_foreach(c->llm_budgets, i, v) {
		if (budget_build(&lc->budgets[i], v, err, errsz) == -1)
			goto fail_at_budget;
		lc->nbudgets++;
	}
	return lc;
fail_at_provider:
	lc->nproviders = i + 1;	/* the half-built one is freed too */
	goto fail;
fail_at_budget:
	lc->nbudgets = i + 1;
	goto fail;
nomem:
	snprintf(err, errsz, "out of memory");
fail:
	llm_conf_free(lc);
	return NULL;
}

void
llm_conf_free(struct llm_conf *lc)
{
	size_t	 i, j;

	if (lc == NULL)
		return;
	for (i = 0; i < lc->nproviders && lc->providers != NULL; i++) {
		struct llm_provider *p = &lc->providers[i];

		free(p->name);
		free(p->base_url);
		free(p->key);
		strlist_free(p->headers);
		strlist_free(p->models);
		for (j = 0; j < p->nprices; j++)
			free(p->prices[j].model);
		free(p->prices);
	}
	free(lc->providers);
	for (i = 0; i < lc->nroutes; i++) {
		for (j = 0; j < lc->routes[i].ntargets; j++)
			free(lc->routes[i].targets[j].model);
		free(lc->routes[i].targets);
		free(lc->routes[i].name);
	}
	free(lc->routes);
	for (i = 0; i < lc->nbudgets && lc->budgets != NULL; i++)
		free(lc->budgets[i].caller);
	free(lc->budgets);
	free(lc);
}

/* The price of a model at a provider, or NULL (the call costs 0). */
const struct llm_price *
llm_conf_price(const struct llm_provider *p, const char *model)
{
	size_t	 i;

	for (i = 0; i < p->nprices; i++)
		if (!strcmp(p->prices[i].model, model))
			return &p->prices[i];
	return NULL;
}

static int
provider_build(struct llm_provider *p, json_t *v, char *err, size_t errsz)
{
	const char	*kind, *url;
	json_int_t	 timeout = 120000;
	size_t		 i;
	json_error_t	 je;

	kind = url = NULL;
	if (!json_is_object(v) || json_unpack_ex(v, &je, 0,
	    "{s?s, s?s, s?s, s?I}", "name", &p->name, "kind", &kind,
	    "base_url", &url, "timeout_ms", &timeout) == -1) {
		snprintf(err, errsz, "llm.providers: each provider is an "
		    "object (%s)", je.text);
		p->name = NULL;
		return -1;
	}
	if (p->name == NULL || !name_ok(p->name)) {
		snprintf(err, errsz, "llm.providers: each provider needs a "
		    "\"name\" of letters, digits, '-' and '_' (at most 63)");
		p->name = NULL;
		return -1;
	}
	if ((p->name = strdup(p->name)) == NULL)
		goto nomem;
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kind != NULL && !strcmp(kind, kinds[i].kind))
			break;
	if (i == sizeof(kinds) / sizeof(kinds[0])) {
		snprintf(err, errsz, "llm.providers: %s: \"kind\" must be "
		    "openai, anthropic or openai-compatible", p->name);
		return -1;
	}
	p->kind = kinds[i].value;
	if (url == NULL)
		url = kinds[i].base_url;
	if (url == NULL || (strncmp(url, "http://", 7) != 0 &&
	    strncmp(url, "https://", 8) != 0)) {
		snprintf(err, errsz, "llm.providers: %s: \"base_url\" must "
		    "be an http:// or https:// URL%s", p->name, url == NULL ?
		    " (openai-compatible has no default)" : "");
		return -1;
	}
	if ((p->base_url = strdup(url)) == NULL)
		goto nomem;
	while (strlen(p->base_url) > 8 &&
	    p->base_url[strlen(p->base_url) - 1] == '/')
		p->base_url[strlen(p->base_url) - 1] = '\0';
	if (timeout < 100 || timeout > 3600000) {
		snprintf(err, errsz, "llm.providers: %s: \"timeout_ms\" must "
		    "be from 100 to 3600000", p->name);
		return -1;
	}
	p->timeout_ms = (long)timeout;
	if (provider_strings(p, v, err, errsz) == -1 ||
	    provider_headers(p, json_object_get(v, "headers"), err,
	    errsz) == -1)
		return -1;
	return provider_prices(p, json_object_get(v, "prices"), err, errsz);
nomem:
	snprintf(err, errsz, "out of memory");
	return -1;
}

/* key (a secret's name), models; and no field we do not know. */
static int
provider_strings(struct llm_provider *p, json_t *v, char *err, size_t errsz)
{
	static const char *const known[] = { "name", "kind", "base_url",
		"key", "headers", "models", "timeout_ms", "prices", NULL };
	const char	*k;
	json_t		*f;
	size_t		 i;

	json_object_foreach(v, k, f) {
		for (i = 0; known[i] != NULL && strcmp(known[i], k); i++)
			;
		if (known[i] == NULL) {
			snprintf(err, errsz, "llm.providers: %s: unknown "
			    "field \"%s\"", p->name, k);
			return -1;
		}
	}
	if ((f = json_object_get(v, "key")) != NULL) {
		if (!json_is_string(f) ||
		    !secrets_name_valid(json_string_value(f)) ||
		    looks_like_key(json_string_value(f))) {
			snprintf(err, errsz, "llm.providers: %s: \"key\" is "
			    "the name of a secret (`pincer secret set NAME`), "
			    "not the key itself", p->name);
			return -1;
		}
		if ((p->key = strdup(json_string_value(f))) == NULL)
			goto nomem;
	}
	f = json_object_get(v, "models");
	if (f != NULL && !json_is_array(f)) {
		snprintf(err, errsz, "llm.providers: %s: \"models\" is a "
		    "list of model names", p->name);
		return -1;
	}
	if ((p->models = strlist(f)) == NULL) {
		snprintf(err, errsz, "llm.providers: %s: \"models\" is a "
		    "list of non-empty strings", p->name);
		return -1;
	}
	return 0;
nomem:
	snprintf(err, errsz, "out of memory");
	return -1;
}

/*
 * Extra headers sent upstream (Cloudflare AI Gateway's
 * cf-aig-authorization, OpenRouter's HTTP-Referer). A value may name a
 * secret as ${secret:NAME}; it is filled in per call, never kept here.
 */
static int
provider_headers(struct llm_provider *p, json_t *h, char *err, size_t errsz)
{
	const char	*k, *val;
	json_t		*f;
	size_t		 i = 0;
	struct buf	 line;

	if ((p->headers = calloc(json_object_size(h) + 1,
	    sizeof(*p->headers))) == NULL)
		goto nomem;
	if (h != NULL && !json_is_object(h))
		goto bad;
	json_object_foreach(h, k, f) {
		if (!json_is_string(f) || *k == '\0' ||
		    strpbrk(k, ": \t\r\n") != NULL)
			goto bad;
		val = json_string_value(f);
		if (strpbrk(val, "\r\n") != NULL)
			goto bad;
		buf_init(&line, 8192);
		if (buf_printf(&line, "%s: %s", k, val) == -1) {
			buf_free(&line);
			goto bad;
		}
		p->headers[i++] = buf_steal(&line);
	}
	return 0;
bad:
	snprintf(err, errsz, "llm.providers: %s: \"headers\" is an object of "
	    "header names and one-line string values", p->name);
	return -1;
nomem:
	snprintf(err, errsz, "out of memory");
	return -1;
}

/* {"model": {"input": USD, "output": USD, "cached_input": USD}} per 1M */
static int
provider_prices(struct llm_provider *p, json_t *pr, char *err, size_t errsz)
{
	const char	*k;
	json_t		*f;
	double		 in, out, cached;
	json_error_t	 je;

	if (pr == NULL)
		return 0;
	if (!json_is_object(pr))
		goto bad;
	if ((p->prices = calloc(json_object_size(pr) + 1,
	    sizeof(*p->prices))) == NULL)
		goto nomem;
	json_object_foreach(pr, k, f) {
		cached = -1;
		if (json_unpack_ex(f, &je, JSON_STRICT, "{s:F, s:F, s?F}",
		    "input", &in, "output", &out, "cached_input", &cached) ==
		    -1 || in < 0 || out < 0)
			goto bad;
		if ((p->prices[p->nprices].model = strdup(k)) == NULL)
			goto nomem;
		p->prices[p->nprices].input = in;
		p->prices[p->nprices].output = out;
		p->prices[p->nprices].cached = cached;
		p->nprices++;
	}
	return 0;
bad:
	snprintf(err, errsz, "llm.providers: %s: \"prices\" maps a model to "
	    "{\"input\": USD, \"output\": USD[, \"cached_input\": USD]} per "
	    "million tokens", p->name);
	return -1;
nomem:
	snprintf(err, errsz, "out of memory");
	return -1;
}

/* "name": [targets] or {"targets": [...], "cache_ttl_s": N} */
static int
route_build(struct llm_conf *lc, struct llm_route *r, const char *name,
    json_t *v, char *err, size_t errsz)
{
	json_t		*targets = v, *t;
	json_int_t	 ttl = 0;
	json_error_t	 je;
	size_t		 i;

	if (*name == '\0' || strlen(name) > 128) {
		snprintf(err, errsz, "llm.routes: a route needs a name of 1 "
		    "to 128 characters");
		return -1;
	}
	if ((r->name = strdup(name)) == NULL)
		goto nomem;
	if (json_is_object(v) && json_unpack_ex(v, &je, JSON_STRICT,
	    "{s:o, s?I}", "targets", &targets, "cache_ttl_s", &ttl) == -1) {
		snprintf(err, errsz, "llm.routes: %s: %s", name, je.text);
		return -1;
	}
	if (!json_is_array(targets) || json_array_size(targets) == 0) {
		snprintf(err, errsz, "llm.routes: %s: expected a non-empty "
		    "list of \"PROVIDER/MODEL\" targets", name);
		return -1;
	}
	if (ttl < 0 || ttl > 31536000) {
		snprintf(err, errsz, "llm.routes: %s: \"cache_ttl_s\" must "
		    "be from 0 to 31536000", name);
		return -1;
	}
	r->cache_ttl_s = (long)ttl;
	if ((r->targets = calloc(json_array_size(targets),
	    sizeof(*r->targets))) == NULL)
		goto nomem;
	json_array_foreach(targets, i, t) {
		if (target_build(lc, &r->targets[i], t, err, errsz) == -1) {
			r->ntargets = i + 1;
			return -1;
		}
		r->ntargets++;
	}
	return 0;
nomem:
	snprintf(err, errsz, "out of memory");
	return -1;
}

/*
 * "provider/model" (split at the first '/': OpenRouter's models have
 * one of their own) or {"provider": P, "model": M}.
 */
static int
target_build(struct llm_conf *lc, struct llm_target *t, json_t *v, char *err,
    size_t errsz)
{
	const char	*s, *prov = NULL, *model = NULL, *slash;
	size_t		 plen = 0;

	if (json_is_string(v)) {
		s = json_string_value(v);
		if ((slash = strchr(s, '/')) != NULL) {
			prov = s;
			plen = (size_t)(slash - s);
			model = slash + 1;
		}
	} else if (json_is_object(v) && json_unpack(v, "{s:s, s:s !}",
	    "provider", &prov, "model", &model) == 0)
		plen = strlen(prov);
	if (prov == NULL || model == NULL || *model == '\0') {
		snprintf(err, errsz, "llm.routes: a target is "
		    "\"PROVIDER/MODEL\" or {\"provider\": …, \"model\": …}");
		return -1;
	}
	if ((t->provider = provider_find(lc, prov, plen)) == NULL) {
		snprintf(err, errsz, "llm.routes: no provider is named "
		    "\"%.*s\"", (int)(plen > 64 ? 64 : plen), prov);
		return -1;
	}
	if ((t->model = strdup(model)) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	return 0;
}

static int
budget_build(struct llm_budget *b, json_t *v, char *err, size_t errsz)
{
	const char	*caller = NULL, *period = NULL;
	json_int_t	 tokens = 0;
	double		 usd = 0;
	json_error_t	 je;

	if (json_unpack_ex(v, &je, JSON_STRICT, "{s:s, s:s, s?I, s?F}",
	    "caller", &caller, "period", &period, "tokens", &tokens, "usd",
	    &usd) == -1) {
		snprintf(err, errsz, "llm.budgets: each budget is {\"caller\": "
		    "\"all\"|\"each\"|\"user:NAME\"|\"sandbox:NAME\", "
		    "\"period\": \"day\"|\"month\", \"tokens\": N, \"usd\": X} "
		    "(%s)", je.text);
		return -1;
	}
	if (strcmp(period, "day") != 0 && strcmp(period, "month") != 0) {
		snprintf(err, errsz, "llm.budgets: \"period\" is \"day\" or "
		    "\"month\"");
		return -1;
	}
	if (tokens < 0 || usd < 0 || (tokens == 0 && usd == 0)) {
		snprintf(err, errsz, "llm.budgets: %s: give \"tokens\" or "
		    "\"usd\" (or both), positive", caller);
		return -1;
	}
	if (*caller == '\0' || strlen(caller) > 95 ||
	    (strcmp(caller, "all") && strcmp(caller, "each") &&
	    strncmp(caller, "user:", 5) && strncmp(caller, "sandbox:", 8))) {
		snprintf(err, errsz, "llm.budgets: \"caller\" is \"all\", "
		    "\"each\", \"user:NAME\" or \"sandbox:NAME\"");
		return -1;
	}
	if ((b->caller = strdup(caller)) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	b->period = period[0] == 'd' ? LLM_DAY : LLM_MONTH;
	b->tokens = tokens;
	b->usd = usd;
	return 0;
}

static const struct llm_provider *
provider_find(const struct llm_conf *lc, const char *name, size_t len)
{
	size_t	 i;

	for (i = 0; i < lc->nproviders; i++)
		if (strlen(lc->providers[i].name) == len &&
		    !strncmp(lc->providers[i].name, name, len))
			return &lc->providers[i];
	return NULL;
}

static bool
name_ok(const char *s)
{
	size_t	 n = strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_");

	return n > 0 && n <= NAME_MAX_LEN && s[n] == '\0';
}

/*
 * A key pasted where its secret's name belongs would end up in the
 * config file, in clear: the usual providers' key prefixes are refused.
 */
static bool
looks_like_key(const char *s)
{
	static const char *const prefixes[] = { "sk-", "sk_", "AKIA", "AIza",
		"xai-", "gsk_", "hf_", "r8_", "pplx-", NULL };
	size_t	 i;

	for (i = 0; prefixes[i] != NULL; i++)
		if (!strncmp(s, prefixes[i], strlen(prefixes[i])))
			return true;
	return false;
}

/* A NULL-terminated copy of a JSON list of non-empty strings. */
static char **
strlist(json_t *a)
{
	char	**l;
	json_t	*v;
	size_t	 i;

	if ((l = calloc(json_array_size(a) + 1, sizeof(*l))) == NULL)
		return NULL;
	json_array_foreach(a, i, v) {
		if (!json_is_string(v) || *json_string_value(v) == '\0' ||
		    (l[i] = strdup(json_string_value(v))) == NULL) {
			strlist_free(l);
			return NULL;
		}
	}
	return l;
}

static void
strlist_free(char **l)
{
	size_t	 i;

	for (i = 0; l != NULL && l[i] != NULL; i++)
		free(l[i]);
	free(l);
}
