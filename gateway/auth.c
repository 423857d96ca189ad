/* SPDX-License-Identifier: MIT */
/*
 * auth.c: who is calling, and may they. One path for every credential: an
 * API token (Authorization: Bearer pincer_…), an external identity JWT
 * (a zero-trust proxy's header or cookie), or our session cookie (HS256
 * JWT). The route table's requirement is checked here and nowhere else.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sqlite3.h>

#include "pincer.h"

#define KEY_LEN		32
#define COOKIE		"pincer_session"
#define ISSUER		"pincer"
#define AUDIENCE	"pincer-session"

static int	 load_key(const char *);
static int	 key_ready(void);
static int	 session_verify(const char *, struct identity *);
static const char *cookie_value(const char *, const char *, char *, size_t);
static void	 random_hex(char *, size_t);
static bool	 csrf_ok(struct http_req *, const struct identity *);
static bool	 socket_route_ok(const struct route *,
		    const struct identity *);

#define CACHE_SLOTS	64
#define CACHE_TTL_S	60.0

struct cache_entry {
	unsigned char	 key[SHA256_DIGEST_LENGTH];
	bool		 used;
	uint64_t	 gen;
	double		 added;
	struct identity	 id;
};

static bool	 cache_get(char, const char *, struct identity *);
static void	 cache_put(char, const char *, const struct identity *);
static void	 cache_key(char, const char *, unsigned char *);

static uint64_t			 generation;	/* atomic */
static __thread struct cache_entry cache[CACHE_SLOTS];
static unsigned char	 session_key[KEY_LEN];	/* secret; one place */
static struct jwtv_key	 session_jwk;		/* the same, keyed MAC */
static bool		 have_key;
static char		 local_sock[108];	/* $state/pincerd.sock */

static const char *const scope_names[] = { "read", "llm", "sandbox",
	"admin", "chat", "browser" };

/*
 * The session key is made once, kept in the state folder (0600), and
 * never leaves it: not in the log, not in an answer, not in a sandbox.
 */
int
auth_init(const char *state_dir)
{
	char	 dir[4000], path[4096];

	snprintf(local_sock, sizeof(local_sock), "%s/pincerd.sock",
	    state_dir);
	snprintf(dir, sizeof(dir), "%s/keys", state_dir);
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		log_error("cannot create the keys folder", "%s: %s", dir,
		    strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/session.key", dir);
	return load_key(path);
}

const char *
auth_local_socket(void)
{
	return local_sock;
}

/* The path as bound, which is what getsockname reports on its calls. */
void
auth_set_local_socket(const char *bound)
{
	snprintf(local_sock, sizeof(local_sock), "%s", bound);
}

int
auth_socket_identity(int fd, struct identity *id)
{
	struct sockaddr_un	 sun;
	socklen_t		 len = sizeof(sun);

	memset(&sun, 0, sizeof(sun));
	if (getsockname(fd, (struct sockaddr *)&sun, &len) == -1)
		return -1;
	if (sun.sun_family != AF_UNIX)
		return 0;
	return auth_path_identity(sun.sun_path, id);
}

/*
 * Identity by socket (DESIGN.md §3): nothing on these sockets carries a
 * credential. pincerd.sock is 0600 in the 0700 state folder: whoever
 * reaches it is the host account running pincerd, so the owner. A
 * gateway.sock is its sandbox and may use the LLM proxy and the browser
 * bridge, nothing else.
 */
int
auth_path_identity(const char *path, struct identity *id)
{
	char	 name[SBX_NAME_MAX + 1];

	memset(id, 0, sizeof(*id));
	if (local_sock[0] != '\0' && strcmp(path, local_sock) == 0) {
		id->kind = ID_LOCAL;
		id->role = ROLE_OWNER;
		id->scopes = SCOPE_READ | SCOPE_LLM | SCOPE_SANDBOX |
		    SCOPE_ADMIN | SCOPE_CHAT | SCOPE_BROWSER;
		/* Not a user name: those cannot hold a colon. */
		snprintf(id->user, sizeof(id->user), "local:owner");
		return 1;
	}
	if (sbx_by_socket(path, name, sizeof(name))) {
		id->kind = ID_SANDBOX;
		id->role = ROLE_MEMBER;
		id->scopes = SCOPE_LLM | SCOPE_BROWSER;
		snprintf(id->user, sizeof(id->user), "%s", name);
		return 1;
	}
	return -1;
}

void
auth_shutdown(void)
{
	explicit_bzero(session_key, sizeof(session_key));
	jwtv_key_free(&session_jwk);
	have_key = false;
}

unsigned
auth_scopes_parse(const char *s)
{
	unsigned	 m = 0;
	size_t		 i, n;
	const char	*p = s;

	while (p != NULL && *p) {
		n = strcspn(p, ", ");
		for (i = 0; i < sizeof(scope_names) / sizeof(scope_names[0]);
		    i++)
			if (n == strlen(scope_names[i]) &&
			    !strncmp(p, scope_names[i], n))
				m |= 1u << i;
		p += n;
		p += strspn(p, ", ");
	}
	return m;
}

/* -1 if any name is not a scope; lets the CLI refuse typos. */
int
auth_scopes_check(const char *s)
{
	char		 copy[256], *tok, *save;
	size_t		 i;
	bool		 found;

	if (*s == '\0' || snprintf(copy, sizeof(copy), "%s", s) >=
	    (int)sizeof(copy))
		return -1;
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		found = false;
		for (i = 0; i < sizeof(scope_names) / sizeof(scope_names[0]);
		    i++)
			found = found || !strcmp(tok, scope_names[i]);
		if (!found)
			return -1;
	}
	return 0;
}

void
auth_scopes_format(unsigned m, char *out, size_t outsz)
{
	size_t	 i, n = 0;

	out[0] = '\0';
	for (i = 0; i < sizeof(scope_names) / sizeof(scope_names[0]); i++)
		if (m & (1u << i) && n < outsz)
			n += (size_t)snprintf(out + n, outsz - n, "%s%s",
			    n ? "," : "", scope_names[i]);
}

/* What a role may do at most; a token's scopes are cut to this. */
unsigned
auth_role_scopes(enum role r)
{
	if (r == ROLE_MEMBER)
		return SCOPE_READ | SCOPE_LLM | SCOPE_SANDBOX | SCOPE_CHAT |
		    SCOPE_BROWSER;
	return SCOPE_READ | SCOPE_LLM | SCOPE_SANDBOX | SCOPE_ADMIN |
	    SCOPE_CHAT | SCOPE_BROWSER;
}

/*
 * 1: no credentials; 0: identified; -1: credentials given but not good.
 * A bad credential is never passed over for a weaker one behind it.
 */
int
auth_identify(const struct auth_in *in, struct identity *id)
{
	const struct config	*c = config_current();
	const char		*h, *ext = NULL;
	char			 cookie[4096];

	memset(id, 0, sizeof(*id));
	if ((h = in->header(in->ctx, "Authorization")) != NULL) {
		if (strncasecmp(h, "Bearer ", 7) != 0)
			return -1;
		h += 7;
		while (*h == ' ')
			h++;
	} else if ((h = in->header(in->ctx, "x-api-key")) != NULL &&
	    !tokens_looks_like(h))
		h = NULL;	/* Anthropic's SDKs send the key there */
	if (h != NULL) {
		if (!tokens_looks_like(h))
			return -1;
		if (cache_get('t', h, id))
			return 0;
		if (tokens_verify(h, in->ip, id) != 0)
			return -1;
		cache_put('t', h, id);
		return 0;
	}
	if (*c->ext_jwks_url != '\0') {
		if (*c->ext_header != '\0')
			ext = in->header(in->ctx, c->ext_header);
		if (ext == NULL && *c->ext_cookie != '\0' &&
		    (h = in->header(in->ctx, "Cookie")) != NULL)
			ext = cookie_value(h, c->ext_cookie, cookie,
			    sizeof(cookie));
		if (ext != NULL) {
			if (cache_get('x', ext, id))
				return 0;
			if (jwks_identify(ext, in->ip, id) != 0)
				return -1;
			cache_put('x', ext, id);
			return 0;
		}
	}
	if ((h = in->header(in->ctx, "Cookie")) != NULL &&
	    cookie_value(h, COOKIE, cookie, sizeof(cookie)) != NULL) {
		if (cache_get('s', cookie, id))
			return 0;
		if (session_verify(cookie, id) != 0)
			return -1;
		cache_put('s', cookie, id);
		return 0;
	}
	return 1;
}

/*
 * Every change that could turn a good credential bad (logout, a revoked
 * token, a disabled user, a new password, new JWKS keys) calls this, in
 * pincerd or, from the CLI, by SIGUSR1: cached identities from before it
 * are not used again.
 */
void
auth_invalidate(void)
{
	__atomic_add_fetch(&generation, 1, __ATOMIC_RELEASE);
}

/*
 * The CLI changed users or tokens in the database: tell a running pincerd
 * (SIGUSR1) to drop the credentials it verified before. pincerd holds an
 * exclusive lock on pincerd.lock and keeps its pid there.
 */
void
auth_notify_daemon(const char *state_dir)
{
	char	 path[4096], pid[32];
	ssize_t	 n;
	int	 fd;

	snprintf(path, sizeof(path), "%s/pincerd.lock", state_dir);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return;
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {	/* no pincerd */
		close(fd);
		return;
	}
	n = read(fd, pid, sizeof(pid) - 1);
	close(fd);
	if (n <= 0)
		return;
	pid[n] = '\0';
	if (atoi(pid) > 1)
		kill(atoi(pid), SIGUSR1);
}

/*
 * A per-thread cache of credentials verified lately, keyed by a SHA-256
 * of the credential: a verified request then costs a hash, not a JWT
 * check and a database read. An entry lives until its credential expires,
 * a change bumps the generation, or a minute passes (so a token's last
 * use is still recorded about once a minute).
 */
static bool
cache_get(char kind, const char *cred, struct identity *id)
{
	unsigned char		 key[SHA256_DIGEST_LENGTH];
	struct cache_entry	*e;
	double			 now = now_seconds();

	cache_key(kind, cred, key);
	e = &cache[key[0] % CACHE_SLOTS];
	if (!e->used || memcmp(e->key, key, sizeof(key)) != 0 ||
	    e->gen != __atomic_load_n(&generation, __ATOMIC_ACQUIRE) ||
	    now - e->added > CACHE_TTL_S ||
	    (e->id.exp != 0 && (long long)time(NULL) > e->id.exp))
		return false;
	*id = e->id;
	return true;
}

static void
cache_put(char kind, const char *cred, const struct identity *id)
{
	struct cache_entry	*e;
	unsigned char		 key[SHA256_DIGEST_LENGTH];

	cache_key(kind, cred, key);
	e = &cache[key[0] % CACHE_SLOTS];
	memcpy(e->key, key, sizeof(key));
	e->gen = __atomic_load_n(&generation, __ATOMIC_ACQUIRE);
	e->added = now_seconds();
	e->id = *id;
	e->used = true;
}

static void
cache_key(char kind, const char *cred, unsigned char *out)
{
	char	 buf[4200];
	size_t	 n;

	n = (size_t)snprintf(buf, sizeof(buf), "%c:%s", kind, cred);
	SHA256((unsigned char *)buf, n < sizeof(buf) ? n : sizeof(buf) - 1,
	    out);
	explicit_bzero(buf, sizeof(buf));
}

/*
 * The one check before every handler: identity, scope, role, and for a
 * cookie on a state-changing request, CSRF. Answers 401/403 itself.
 */
bool
auth_route_allowed(const struct route *rt, struct http_req *r)
{
	struct identity	*id = http_req_identity(r);
	struct auth_in	 in = { .header = http_req_header_cb, .ctx = r,
			    .ip = http_req_ip(r) };

	if (rt->auth == AUTH_PUBLIC)
		return true;
	switch (auth_route_check(rt, &in, http_req_by_socket(r), id)) {
	case AUTH_NEED:
		http_error(r, 401, "unauthenticated", "log in, or send an "
		    "API token as Authorization: Bearer");
		return false;
	case AUTH_INVALID:
		http_error(r, 401, "invalid_credentials", "the session or "
		    "token is not valid (expired, revoked or unknown)");
		return false;
	case AUTH_FORBIDDEN:
		http_error(r, 403, "forbidden", "this credential may not do "
		    "that");
		return false;
	case AUTH_OK:
		break;
	}
	if (id->kind == ID_SESSION && !csrf_ok(r, id)) {
		http_error(r, 403, "csrf", "cross-site request refused: send "
		    "X-CSRF-Token from the same origin");
		return false;
	}
	auth_session_renew(r, id);
	return true;
}

/*
 * The one decision, for HTTP requests and WebSocket upgrades alike: who
 * is calling (by socket, or by credential) and may they take this route.
 * by_socket: *id was already set from the socket that accepted the call.
 */
enum auth_verdict
auth_route_check(const struct route *rt, const struct auth_in *in,
    bool by_socket, struct identity *id)
{
	int	 rc = 0;

	if (rt->auth == AUTH_PUBLIC)
		return AUTH_OK;
	if (!by_socket && (rc = auth_identify(in, id)) == 1)
		return AUTH_NEED;
	if (rc == -1)
		return AUTH_INVALID;
	if ((id->scopes & rt->scopes) != rt->scopes ||
	    (int)id->role < rt->min_role || !socket_route_ok(rt, id))
		return AUTH_FORBIDDEN;
	return AUTH_OK;
}

/*
 * A caller known by its socket is no user account: routes that act on the
 * caller's own account (its tokens, its session) are not for it. It gets
 * the routes that require a scope it holds, and /api/v1/me.
 */
static bool
socket_route_ok(const struct route *rt, const struct identity *id)
{
	if (id->kind != ID_SANDBOX && id->kind != ID_LOCAL)
		return true;
	return rt->scopes != 0 || rt->handler == api_me;
}

/* Sliding renewal: past half its life, a session cookie is replaced. */
void
auth_session_renew(struct http_req *r, const struct identity *id)
{
	const struct config	*c = config_current();
	struct user		 u;

	if (id->kind != ID_SESSION || id->exp - (long long)time(NULL) >
	    c->session_ttl_s / 2 || users_get(id->user_id, &u) == -1)
		return;
	auth_session_issue(r, &u, id->sid);
}

/*
 * Set the session cookie for u: HttpOnly (no script reads it),
 * SameSite=Strict (no other site sends it), Secure when the gateway is
 * reached over HTTPS. sid is kept across renewals (NULL: a new session).
 */
int
auth_session_issue(struct http_req *r, const struct user *u, const char *sid)
{
	const struct config	*c = config_current();
	json_t			*claims;
	char			 jti[33], newsid[33], *tok, cookie[2048];
	char			 csrf[64];
	long long		 now = (long long)time(NULL);

	if (!have_key)
		return -1;
	random_hex(jti, sizeof(jti));
	if (sid == NULL) {
		random_hex(newsid, sizeof(newsid));
		sid = newsid;
	}
	claims = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I}",
	    "iss", ISSUER, "aud", AUDIENCE, "sub", "", "name", u->name,
	    "jti", jti, "sid", sid, "iat", (json_int_t)now,
	    "nbf", (json_int_t)now, "exp", (json_int_t)(now +
	    c->session_ttl_s));
	json_object_set_new(claims, "sub", json_sprintf("%lld", u->id));
	tok = jwtv_sign_hs256(session_key, KEY_LEN, claims);
	json_decref(claims);
	if (tok == NULL)
		return -1;
	snprintf(cookie, sizeof(cookie), COOKIE "=%s; Path=/; Max-Age=%ld; "
	    "HttpOnly; SameSite=Strict%s", tok, c->session_ttl_s,
	    http_req_secure(r) ? "; Secure" : "");
	explicit_bzero(tok, strlen(tok));
	free(tok);
	auth_csrf_token(sid, csrf, sizeof(csrf));
	http_req_set_cookie(r, cookie, csrf);
	explicit_bzero(cookie, sizeof(cookie));
	return 0;
}

/* Clear the cookie in the browser; the server side is revoke. */
void
auth_session_clear(struct http_req *r)
{
	http_req_set_cookie(r, COOKIE "=; Path=/; Max-Age=0; HttpOnly; "
	    "SameSite=Strict", NULL);
}

/* Logout: every token of this session stops working at once. */
int
auth_session_revoke(const struct identity *id)
{
	static const char sql[] = "INSERT OR IGNORE INTO revoked_sessions "
	    "(sid, expires_at) VALUES (?, ?)";
	static const char purge[] = "DELETE FROM revoked_sessions WHERE "
	    "expires_at < ?";
	const struct config	*c = config_current();
	sqlite3_stmt		*st;
	int			 rc;

	if ((st = store_stmt(purge)) != NULL) {
		sqlite3_bind_int64(st, 1, (long long)time(NULL));
		sqlite3_step(st);
		sqlite3_reset(st);
	}
	if ((st = store_stmt(sql)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, id->sid, -1, SQLITE_STATIC);
	/* A renewed token of this session lives at most one TTL more. */
	sqlite3_bind_int64(st, 2, (long long)time(NULL) + c->session_ttl_s +
	    c->skew_s);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	auth_invalidate();
	return rc == SQLITE_DONE ? 0 : -1;
}

/* The CSRF token of a session: an HMAC of its sid, base64url. */
void
auth_csrf_token(const char *sid, char *out, size_t outsz)
{
	unsigned char	 mac[EVP_MAX_MD_SIZE];
	size_t		 len = 0;
	char		 msg[64];
	EVP_MAC_CTX	*m;

	if (outsz > 0)
		out[0] = '\0';
	snprintf(msg, sizeof(msg), "csrf:%s", sid);
	if (!have_key || (m = EVP_MAC_CTX_dup(session_jwk.mac)) == NULL)
		return;
	if (EVP_MAC_update(m, (unsigned char *)msg, strlen(msg)) == 1 &&
	    EVP_MAC_final(m, mac, &len, sizeof(mac)) == 1 &&
	    outsz >= b64url_encoded_len(len) + 1)
		b64url_encode(mac, len, out);
	EVP_MAC_CTX_free(m);
}

/*
 * Until someone can log in, a one-time setup code lets the first person
 * at the admin UI become the owner. It goes to the log (never a URL), is
 * stored hashed, and dies after one use or an hour.
 */
void
auth_setup_code_announce(void)
{
	static const char del[] = "DELETE FROM setup_codes";
	static const char ins[] = "INSERT INTO setup_codes (code_hash, "
	    "expires_at) VALUES (?, ?)";
	static const char alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
	unsigned char	 rnd[10], digest[SHA256_DIGEST_LENGTH];
	char		 code[16];
	sqlite3_stmt	*st;
	struct logline	 l;
	size_t		 i, n = 0;

	if (users_count(false) != 0 || getrandom(rnd, sizeof(rnd), 0) !=
	    sizeof(rnd))
		return;
	for (i = 0; i < sizeof(rnd); i++) {
		if (i == 5)
			code[n++] = '-';
		code[n++] = alphabet[rnd[i] % 32];
	}
	code[n] = '\0';
	SHA256((unsigned char *)code, n, digest);
	if ((st = store_stmt(del)) != NULL) {
		sqlite3_step(st);
		sqlite3_reset(st);
	}
	if ((st = store_stmt(ins)) == NULL)
		return;
	sqlite3_bind_blob(st, 1, digest, sizeof(digest), SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (long long)time(NULL) + 3600);
	sqlite3_step(st);
	sqlite3_reset(st);
	if (log_begin(&l, LOG_WARN, "no users yet: open the admin UI and "
	    "enter the setup code to create the owner")) {
		/* The code makes an owner: for whoever reads the host's
		 * log, never for the admin UI's recent errors. */
		l.keep = false;
		log_str(&l, "setup_code", code);
		log_str(&l, "valid", "1h, once");
		log_str(&l, "or", "pincer user add NAME --role owner "
		    "--password-stdin");
		log_end(&l);
	}
	explicit_bzero(code, sizeof(code));
}

/* 0 if the code is live; it is consumed either way it matches. */
int
auth_setup_code_use(const char *code)
{
	static const char sql[] = "DELETE FROM setup_codes WHERE code_hash = ? "
	    "AND expires_at > ?";
	unsigned char	 digest[SHA256_DIGEST_LENGTH];
	sqlite3_stmt	*st = store_stmt(sql);
	int		 rc;

	if (st == NULL)
		return -1;
	SHA256((const unsigned char *)code, strlen(code), digest);
	sqlite3_bind_blob(st, 1, digest, sizeof(digest), SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (long long)time(NULL));
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE && sqlite3_changes(store_db()) == 1 ? 0 : -1;
}

/* Non-loopback listening needs someone who can log in, or a proxy's JWT. */
bool
auth_configured(const struct config *c)
{
	return *c->ext_jwks_url != '\0' || users_count(true) > 0;
}

static int
session_verify(const char *tok, struct identity *id)
{
	const struct config	*c = config_current();
	struct jwtv_expect	 ex = { .iss = ISSUER, .aud = AUDIENCE,
				    .skew_s = c->skew_s };
	json_t			*claims = NULL;
	const char		*sub, *sid;
	struct user		 u;
	bool			 revoked = true;
	int			 rc = -1;

	if (!have_key || jwtv_verify(tok, &session_jwk, &ex, &claims) !=
	    JWTV_OK)
		return -1;
	sub = json_string_value(json_object_get(claims, "sub"));
	sid = json_string_value(json_object_get(claims, "sid"));
	/* One query: the user as the database has it now, and whether this
	 * session was logged out. */
	if (sub == NULL || sid == NULL || strlen(sid) >= sizeof(id->sid) ||
	    users_get_session(strtoll(sub, NULL, 10), sid, &u, &revoked) ==
	    -1 || revoked || u.disabled)
		goto out;
	/* A password reset ended the sessions issued before it. */
	if (json_integer_value(json_object_get(claims, "iat")) <
	    u.sessions_after)
		goto out;
	/* The role comes from the database: a change applies at once. */
	id->kind = ID_SESSION;
	id->user_id = u.id;
	snprintf(id->user, sizeof(id->user), "%s", u.name);
	snprintf(id->email, sizeof(id->email), "%s", u.email);
	id->role = u.role;
	id->scopes = auth_role_scopes(u.role);
	snprintf(id->sid, sizeof(id->sid), "%s", sid);
	id->exp = json_integer_value(json_object_get(claims, "exp"));
	rc = 0;
out:
	json_decref(claims);
	return rc;
}

/*
 * A state-changing request carried by a cookie must come from our own
 * origin (Origin, else Referer, against public_url or the Host the
 * browser used) and carry the session's CSRF token in X-CSRF-Token.
 */
static bool
csrf_ok(struct http_req *r, const struct identity *id)
{
	const struct config	*c = config_current();
	const char		*m = http_req_method(r), *origin, *host, *tok;
	char			 want[512], expect[64];
	size_t			 n;

	if (!strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "OPTIONS"))
		return true;
	if (*c->public_url != '\0')
		snprintf(want, sizeof(want), "%s", c->public_url);
	else if ((host = http_req_header(r, "Host")) != NULL)
		snprintf(want, sizeof(want), "%s://%s", http_req_secure(r) ?
		    "https" : "http", host);
	else
		return false;
	n = strlen(want);
	while (n > 0 && want[n - 1] == '/')
		want[--n] = '\0';
	if ((origin = http_req_header(r, "Origin")) != NULL) {
		if (strcmp(origin, want) != 0)
			return false;
	} else if ((origin = http_req_header(r, "Referer")) != NULL) {
		if (strncmp(origin, want, n) != 0 || (origin[n] != '/' &&
		    origin[n] != '\0'))
			return false;
	} else
		return false;
	auth_csrf_token(id->sid, expect, sizeof(expect));
	tok = http_req_header(r, "X-CSRF-Token");
	return tok != NULL && strlen(tok) == strlen(expect) &&
	    CRYPTO_memcmp(tok, expect, strlen(expect)) == 0;
}

static int
load_key(const char *path)
{
	unsigned char	 k[KEY_LEN];
	ssize_t		 n;
	int		 fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1 && errno == ENOENT) {
		if (getrandom(k, sizeof(k), 0) != sizeof(k))
			return -1;
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
		    O_NOFOLLOW, 0600);
		if (fd == -1 || write(fd, k, sizeof(k)) != sizeof(k) ||
		    fsync(fd) == -1) {
			log_error("cannot write the session key", "%s: %s",
			    path, strerror(errno));
			if (fd != -1)
				close(fd);
			explicit_bzero(k, sizeof(k));
			return -1;
		}
		close(fd);
		memcpy(session_key, k, KEY_LEN);
		explicit_bzero(k, sizeof(k));
		return key_ready();
	}
	if (fd == -1 || (n = read(fd, session_key, KEY_LEN)) != KEY_LEN) {
		log_error("cannot read the session key", "%s: %s", path,
		    fd == -1 ? strerror(errno) : "short file");
		if (fd != -1)
			close(fd);
		return -1;
	}
	close(fd);
	return key_ready();
}

static int
key_ready(void)
{
	if (jwtv_key_init(&session_jwk, "HS256", session_key, KEY_LEN) == -1) {
		log_error("cannot prepare the session key", NULL);
		return -1;
	}
	have_key = true;
	return 0;
}

/* name=value out of a Cookie header (RFC 6265 §4.2.1). */
static const char *
cookie_value(const char *h, const char *name, char *out, size_t outsz)
{
	size_t		 nl = strlen(name), vl;
	const char	*p = h, *v;

	while (*p) {
		while (*p == ' ' || *p == ';')
			p++;
		if (!strncmp(p, name, nl) && p[nl] == '=') {
			v = p + nl + 1;
			vl = strcspn(v, ";");
			if (vl == 0 || vl >= outsz)
				return NULL;
			memcpy(out, v, vl);
			out[vl] = '\0';
			return out;
		}
		p += strcspn(p, ";");
	}
	return NULL;
}

static void
random_hex(char *out, size_t outsz)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char	 r[16];
	size_t		 i;

	if (getrandom(r, sizeof(r), 0) != sizeof(r))
		abort();	/* no entropy: nothing safe to do */
	for (i = 0; i < sizeof(r) && 2 * i + 2 < outsz; i++) {
		out[2 * i] = digits[r[i] >> 4];
		out[2 * i + 1] = digits[r[i] & 15];
	}
	out[2 * i] = '\0';
}
