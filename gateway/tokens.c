/* SPDX-License-Identifier: MIT */
/*
 * tokens.c: API tokens for machines. A token is "pincer_" + a public id +
 * "_" + a 256-bit secret; only the SHA-256 of the secret is stored, so the
 * database cannot give a token back. It is shown once, at creation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <sqlite3.h>

#include "pincer.h"

#define PREFIX		"pincer_"
#define ID_BYTES	6
#define SECRET_BYTES	32

static void	hex(const unsigned char *, size_t, char *);

/* Returns the token (caller wipes and frees); *err on failure. */
char *
tokens_create(long long user_id, const char *name, unsigned scopes,
    long ttl_s, char *id_out, size_t idsz, char **err)
{
	static const char sql[] = "INSERT INTO api_tokens (id, user_id, name, "
	    "secret_hash, scopes, expires_at) VALUES (?, ?, ?, ?, ?, ?)";
	sqlite3_stmt	*st = store_stmt(sql);
	unsigned char	 rid[ID_BYTES], secret[SECRET_BYTES];
	unsigned char	 digest[SHA256_DIGEST_LENGTH];
	char		 id[ID_BYTES * 2 + 1], sec[64], scopestr[64], *tok;
	size_t		 toklen;

	*err = NULL;
	if (st == NULL || getrandom(rid, sizeof(rid), 0) != sizeof(rid) ||
	    getrandom(secret, sizeof(secret), 0) != sizeof(secret)) {
		*err = strdup("cannot make a token");
		return NULL;
	}
	hex(rid, sizeof(rid), id);
	b64url_encode(secret, sizeof(secret), sec);
	SHA256((unsigned char *)sec, strlen(sec), digest);
	auth_scopes_format(scopes, scopestr, sizeof(scopestr));
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, user_id);
	sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, digest, sizeof(digest), SQLITE_STATIC);
	sqlite3_bind_text(st, 5, scopestr, -1, SQLITE_STATIC);
	if (ttl_s > 0)
		sqlite3_bind_int64(st, 6, (long long)time(NULL) + ttl_s);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_reset(st);
		*err = strdup(sqlite3_errmsg(store_db()));
		return NULL;
	}
	sqlite3_reset(st);
	toklen = strlen(PREFIX) + strlen(id) + 1 + strlen(sec) + 1;
	if ((tok = malloc(toklen)) != NULL)
		snprintf(tok, toklen, PREFIX "%s_%s", id, sec);
	snprintf(id_out, idsz, "%s", id);
	explicit_bzero(secret, sizeof(secret));
	explicit_bzero(sec, sizeof(sec));
	return tok;
}

bool
tokens_looks_like(const char *s)
{
	return strncmp(s, PREFIX, strlen(PREFIX)) == 0;
}

/*
 * 0 and the identity filled if the token is known, unexpired, unrevoked,
 * and its user enabled; -1 otherwise, whatever the reason.
 */
int
tokens_verify(const char *tok, const char *ip, struct identity *id)
{
	static const char sql[] = "SELECT t.secret_hash, t.scopes, "
	    "t.expires_at, t.revoked_at IS NOT NULL, u.id, u.name, u.role, "
	    "u.disabled, coalesce(t.last_used_at, ''), "
	    "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-60 seconds'), "
	    "date('now'), coalesce(u.email, '') "
	    "FROM api_tokens t JOIN users u ON u.id = t.user_id "
	    "WHERE t.id = ?";
	sqlite3_stmt	*st;
	unsigned char	 digest[SHA256_DIGEST_LENGTH];
	const char	*p = tok + strlen(PREFIX), *us, *last, *stale;
	char		 tid[ID_BYTES * 2 + 1];
	enum role	 role = ROLE_MEMBER;
	bool		 good = false, touch = false, first_today = false;

	us = strchr(p, '_');
	if (!tokens_looks_like(tok) || us == NULL ||
	    (size_t)(us - p) != ID_BYTES * 2 || strlen(us + 1) > 64)
		return -1;
	memcpy(tid, p, ID_BYTES * 2);
	tid[ID_BYTES * 2] = '\0';
	if ((st = store_stmt(sql)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, tid, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_bytes(st, 0) == SHA256_DIGEST_LENGTH) {
		SHA256((const unsigned char *)us + 1, strlen(us + 1), digest);
		good = CRYPTO_memcmp(digest, sqlite3_column_blob(st, 0),
		    sizeof(digest)) == 0 &&
		    (sqlite3_column_type(st, 2) == SQLITE_NULL ||
		    sqlite3_column_int64(st, 2) > time(NULL)) &&
		    sqlite3_column_int(st, 3) == 0 &&
		    sqlite3_column_int(st, 7) == 0;
		if (good) {
			users_role_parse((const char *)sqlite3_column_text(st,
			    6), &role);
			memset(id, 0, sizeof(*id));
			id->kind = ID_TOKEN;
			id->user_id = sqlite3_column_int64(st, 4);
			snprintf(id->user, sizeof(id->user), "%s",
			    sqlite3_column_text(st, 5));
			snprintf(id->email, sizeof(id->email), "%s",
			    sqlite3_column_text(st, 11));
			id->role = role;
			id->scopes = auth_scopes_parse((const char *)
			    sqlite3_column_text(st, 1)) &
			    auth_role_scopes(role);
			snprintf(id->token_id, sizeof(id->token_id), "%s", tid);
			id->exp = sqlite3_column_type(st, 2) == SQLITE_NULL ? 0 :
			    sqlite3_column_int64(st, 2);
			last = (const char *)sqlite3_column_text(st, 8);
			stale = (const char *)sqlite3_column_text(st, 9);
			/* Record use at most once a minute: no write per
			 * request. A new day's first use goes to the audit. */
			touch = strcmp(last, stale) < 0;
			first_today = strncmp(last, (const char *)
			    sqlite3_column_text(st, 10), 10) != 0;
		}
	}
	sqlite3_reset(st);
	if (touch)
		tokens_touch(tid);
	if (good && first_today)
		audit_add(id->user, ip, "token_use", tid, "first use today");
	return good ? 0 : -1;
}

void
tokens_touch(const char *tid)
{
	static const char sql[] = "UPDATE api_tokens SET last_used_at = "
	    "strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?";
	sqlite3_stmt	*st = store_stmt(sql);

	if (st == NULL)
		return;
	sqlite3_bind_text(st, 1, tid, -1, SQLITE_STATIC);
	sqlite3_step(st);
	sqlite3_reset(st);
}

/* user_id 0: any user's token (admins). 0 on success. */
int
tokens_revoke(const char *tid, long long user_id)
{
	static const char sql[] = "UPDATE api_tokens SET revoked_at = "
	    "strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?1 AND "
	    "revoked_at IS NULL AND (?2 = 0 OR user_id = ?2)";
	sqlite3_stmt	*st = store_stmt(sql);
	int		 rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, tid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, user_id);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	auth_invalidate();
	return rc == SQLITE_DONE && sqlite3_changes(store_db()) == 1 ? 0 : -1;
}

/* Tokens as JSON, never their secrets; user_id 0: everyone's. */
json_t *
tokens_list(long long user_id)
{
	static const char sql[] = "SELECT t.id, t.name, u.name, t.scopes, "
	    "t.created_at, t.expires_at, coalesce(t.last_used_at, ''), "
	    "t.revoked_at IS NOT NULL FROM api_tokens t JOIN users u ON "
	    "u.id = t.user_id WHERE ?1 = 0 OR t.user_id = ?1 ORDER BY "
	    "t.created_at";
	sqlite3_stmt	*st = store_stmt(sql);
	json_t		*a = json_array(), *o;

	if (st != NULL)
		sqlite3_bind_int64(st, 1, user_id);
	while (st != NULL && sqlite3_step(st) == SQLITE_ROW) {
		o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:b}",
		    "id", sqlite3_column_text(st, 0),
		    "name", sqlite3_column_text(st, 1),
		    "user", sqlite3_column_text(st, 2),
		    "scopes", sqlite3_column_text(st, 3),
		    "created_at", sqlite3_column_text(st, 4),
		    "last_used_at", sqlite3_column_text(st, 6),
		    "revoked", sqlite3_column_int(st, 7));
		json_object_set_new(o, "expires_at",
		    sqlite3_column_type(st, 5) == SQLITE_NULL ? json_null() :
		    json_integer(sqlite3_column_int64(st, 5)));
		json_array_append_new(a, o);
	}
	if (st != NULL)
		sqlite3_reset(st);
	return a;
}

static void
hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t	 i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}
