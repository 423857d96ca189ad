/* SPDX-License-Identifier: MIT */
/*
 * llm_cache.c: the LLM proxy's exact-match answer cache, in SQLite.
 *
 * Off unless a route has cache_ttl_s or the request says
 * `x-pincer-cache: ttl=SECONDS`. The key is a SHA-256 over the API, the
 * model the client named and the request body with its keys sorted, so
 * two requests that differ only in key order or spacing share an
 * answer. The answer is kept as the client got it: JSON, or for a
 * stream the SSE bytes, which a hit replays as a stream. Only complete
 * 200 answers are kept; the table is held under llm.cache.max_mb by
 * dropping the oldest.
 */
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "pincer.h"

static long	 wanted_ttl(struct llm_x *, struct http_req *);
static int	 make_key(struct llm_x *, char out[65]);
static void	 reply_hit(struct llm_x *, struct http_req *, sqlite3_stmt *);
static void	 trim(long long now);

/*
 * Handler thread. true: answered from the cache (x is freed). false: go
 * on; x->cache_key is set when the answer is to be kept.
 */
bool
llm_cache_lookup(struct llm_x *x, struct http_req *r)
{
	sqlite3_stmt	*st;
	long		 ttl;

	if ((ttl = wanted_ttl(x, r)) <= 0 ||
	    config_current()->llm_cache_max_mb == 0)
		return false;
	if (make_key(x, x->cache_key) == -1) {
		x->cache_key[0] = '\0';
		return false;
	}
	x->cache_ttl_s = ttl;
	x->cache_state = "miss";
	if ((st = store_stmt("SELECT status, ctype, stream, provider, model, "
	    "in_tokens, out_tokens, body FROM llm_cache WHERE key = ? AND "
	    "expires_ms > ?")) == NULL)
		return false;
	sqlite3_bind_text(st, 1, x->cache_key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now_wall_ms());
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return false;
	}
	reply_hit(x, r, st);
	sqlite3_reset(st);
	return true;
}

/* Loop thread: a complete 200 answer (as the client gets it), kept for
 * cache_ttl_s. */
void
llm_cache_store(struct llm_x *x, const char *body, size_t len)
{
	sqlite3_stmt	*st;
	long long	 now = now_wall_ms();

	if (x->cache_key[0] == '\0' || body == NULL || len == 0 || len >
	    (size_t)config_current()->llm_cache_entry_kb * 1024)
		return;
	if ((st = store_stmt("INSERT OR REPLACE INTO llm_cache (key, "
	    "created_ms, expires_ms, status, ctype, stream, provider, model, "
	    "in_tokens, out_tokens, size, body) VALUES (?, ?, ?, 200, ?, ?, "
	    "?, ?, ?, ?, ?, ?)")) == NULL)
		return;
	sqlite3_bind_text(st, 1, x->cache_key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_int64(st, 3, now + x->cache_ttl_s * 1000LL);
	sqlite3_bind_text(st, 4, x->phase == LLM_STREAM ?
	    "text/event-stream; charset=utf-8" : x->ctype[0] ? x->ctype :
	    "application/json", -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 5, x->phase == LLM_STREAM);
	sqlite3_bind_text(st, 6, x->t->provider->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, x->t->model, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, x->tokens.in);
	sqlite3_bind_int64(st, 9, x->tokens.out);
	sqlite3_bind_int64(st, 10, (sqlite3_int64)len);
	sqlite3_bind_blob(st, 11, body, (int)len, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		log_warn("cannot keep an LLM answer in the cache", "%s",
		    sqlite3_errmsg(store_db()));
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	trim(now);
}

/*
 * A route's cache_ttl_s, or the request's `x-pincer-cache: ttl=N`
 * (`no` turns a route's cache off for one request); at most
 * llm.cache.max_ttl_s.
 */
static long
wanted_ttl(struct llm_x *x, struct http_req *r)
{
	const char	*h = http_req_header(r, "x-pincer-cache");
	long		 ttl = x->route != NULL ? x->route->cache_ttl_s : 0;
	long		 max = config_current()->llm_cache_max_ttl;
	char		*end;

	if (h != NULL && !strcmp(h, "no"))
		return 0;
	if (h != NULL && !strncmp(h, "ttl=", 4)) {
		ttl = strtol(h + 4, &end, 10);
		if (end == h + 4 || *end != '\0' || ttl < 0)
			ttl = 0;
	}
	return ttl > max ? max : ttl;
}

static int
make_key(struct llm_x *x, char out[65])
{
	unsigned char	 md[32];
	unsigned int	 mdlen = 0;
	char		*text;
	EVP_MD_CTX	*ctx;
	size_t		 i;
	int		 rc = -1;
	char		 api = (char)('0' + x->api);

	if ((text = json_dumps(x->body, JSON_COMPACT | JSON_SORT_KEYS)) ==
	    NULL || (ctx = EVP_MD_CTX_new()) == NULL) {
		free(text);
		return -1;
	}
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(ctx, &api, 1) == 1 &&
	    EVP_DigestUpdate(ctx, x->model, strlen(x->model) + 1) == 1 &&
	    EVP_DigestUpdate(ctx, text, strlen(text)) == 1 &&
	    EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32) {
		for (i = 0; i < 32; i++)
			snprintf(out + i * 2, 3, "%02x", md[i]);
		rc = 0;
	}
	EVP_MD_CTX_free(ctx);
	free(text);
	return rc;
}

/* The kept answer, as it was first given; a stream is replayed whole. */
static void
reply_hit(struct llm_x *x, struct http_req *r, sqlite3_stmt *st)
{
	struct MHD_Response	*resp;
	struct llm_call		 c;
	struct logline		 l;
	const void		*body = sqlite3_column_blob(st, 7);
	int			 len = sqlite3_column_bytes(st, 7);

	resp = MHD_create_response_from_buffer((size_t)len,
	    (void *)(body ? body : ""), MHD_RESPMEM_MUST_COPY);
	if (resp == NULL) {
		http_error(r, 500, "internal", "out of memory");
		llm_x_free(x);
		return;
	}
	MHD_add_response_header(resp, "Content-Type",
	    (const char *)sqlite3_column_text(st, 1));
	MHD_add_response_header(resp, "x-pincer-cache", "hit");
	MHD_add_response_header(resp, "x-pincer-provider",
	    (const char *)sqlite3_column_text(st, 3));
	if (sqlite3_column_int(st, 2))
		MHD_add_response_header(resp, "Cache-Control", "no-store");
	http_reply(r, sqlite3_column_int(st, 0), resp);
	if (log_begin(&l, LOG_INFO, "llm cache hit")) {
		log_str(&l, "rid", http_req_id(r));
		log_str(&l, "caller", x->caller);
		log_str(&l, "model", x->model);
		log_end(&l);
	}
	memset(&c, 0, sizeof(c));
	c.ts_ms = x->wall_ms;
	snprintf(c.caller, sizeof(c.caller), "%s", x->caller);
	snprintf(c.route, sizeof(c.route), "%s", x->route ? x->route->name :
	    "");
	snprintf(c.provider, sizeof(c.provider), "%s",
	    (const char *)sqlite3_column_text(st, 3));
	snprintf(c.model, sizeof(c.model), "%s",
	    (const char *)sqlite3_column_text(st, 4));
	c.tokens.in = sqlite3_column_int64(st, 5);
	c.tokens.out = sqlite3_column_int64(st, 6);
	c.tokens.seen = true;
	c.latency_ms = (long)((now_seconds() - x->t_begin) * 1000);
	c.ttft_ms = c.latency_ms;
	c.status = sqlite3_column_int(st, 0);
	c.cache_hit = true;
	c.stream = sqlite3_column_int(st, 2);
	usage_record(&c);
	llm_x_free(x);
}

/* Expired answers go, then the oldest while over llm.cache.max_mb. */
static void
trim(long long now)
{
	sqlite3_stmt	*st;
	long long	 total = 0, max;

	max = config_current()->llm_cache_max_mb * 1024LL * 1024;
	if ((st = store_stmt("DELETE FROM llm_cache WHERE expires_ms <= ?"))
	    != NULL) {
		sqlite3_bind_int64(st, 1, now);
		sqlite3_step(st);
		sqlite3_reset(st);
	}
	if ((st = store_stmt("SELECT COALESCE(SUM(size), 0) FROM llm_cache"))
	    == NULL)
		return;
	if (sqlite3_step(st) == SQLITE_ROW)
		total = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (total <= max || (st = store_stmt("DELETE FROM llm_cache WHERE "
	    "key IN (SELECT key FROM llm_cache ORDER BY created_ms LIMIT "
	    "?)")) == NULL)
		return;
	/* Oldest first, a few rows for each 64 KiB over, at least one. */
	sqlite3_bind_int64(st, 1, 1 + (total - max) / 65536);
	sqlite3_step(st);
	sqlite3_reset(st);
}
