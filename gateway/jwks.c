/* SPDX-License-Identifier: MIT */
/*
 * jwks.c: identities signed by a zero-trust proxy (Cloudflare Access,
 * oauth2-proxy, Authelia, Authentik, Pomerium). The proxy's JSON Web Key
 * Set (RFC 7517) is fetched, its RSA and P-256 keys turned into PEM with
 * OpenSSL, and cached; a token naming an unknown kid causes one refetch,
 * at most every auth.external_jwt.refetch_interval_s, so rotated keys are
 * picked up and a flood of made-up kids cannot hammer the proxy.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "pincer.h"

#define MAX_JWKS	(256 * 1024)
#define MAX_KEYS	32
#define REFRESH_S	3600.0

struct jwk {
	char		 kid[128];
	char		 alg[8];
	struct jwtv_key	 key;		/* owned */
};

static int	 refetch(bool);
static int	 find_ref(const char *, const char *, struct jwtv_key *);
static int	 fetch_http(const char *, struct buf *);
static size_t	 on_data(char *, size_t, size_t, void *);
static EVP_PKEY	*key_rsa(json_t *);
static EVP_PKEY	*key_ec(json_t *);
static BIGNUM	*bn_b64(json_t *);
static const struct jwk *find_key(const char *, const char *);
static bool	 alg_allowed(const char *);
static void	 keys_free(void);

/*
 * lock guards the key set and is held only to look a key up or swap the
 * set; fetch_lock lets one request at a time fetch, without stopping the
 * others from verifying against the keys already known.
 */
static pthread_mutex_t	 lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t	 fetch_lock = PTHREAD_MUTEX_INITIALIZER;
static struct jwk	 keys[MAX_KEYS];
static size_t		 nkeys;
static double		 fetched_at = -1e9;	/* last successful fetch */
static double		 tried_at = -1e9;	/* last attempt */
static long		 nfetches;
static jwks_fetch_fn	 fetcher = fetch_http;

/* Tests replace the HTTP fetch with their own. */
void
jwks_set_fetcher(jwks_fetch_fn fn)
{
	pthread_mutex_lock(&lock);
	fetcher = fn != NULL ? fn : fetch_http;
	keys_free();
	fetched_at = tried_at = -1e9;
	nfetches = 0;
	pthread_mutex_unlock(&lock);
}

long
jwks_fetch_count(void)
{
	return __atomic_load_n(&nfetches, __ATOMIC_RELAXED);
}

/*
 * Verify an external JWT and map its email claim to a user (or create
 * one, when auto_provision_role says so). 0, or -1 for any refusal.
 */
int
jwks_identify(const char *token, const char *ip, struct identity *id)
{
	const struct config	*c = config_current();
	struct jwtv_expect	 ex = { .iss = *c->ext_issuer ? c->ext_issuer :
				    NULL, .aud = *c->ext_audience ?
				    c->ext_audience : NULL, .skew_s = c->skew_s };
	struct jwtv_key		 key;
	json_t			*claims = NULL;
	enum jwtv_error		 e;
	const char		*email;
	char			 alg[16], kid[128], *err = NULL;
	struct user		 u;
	double			 last;
	int			 rc = -1;

	if (jwtv_header(token, alg, sizeof(alg), kid, sizeof(kid)) == -1 ||
	    !alg_allowed(alg)) {
		log_info("external identity refused", "%s", "algorithm not "
		    "allowed");
		return -1;
	}
	__atomic_load(&fetched_at, &last, __ATOMIC_RELAXED);
	if (now_seconds() - last > REFRESH_S)
		refetch(false);
	if (find_ref(kid, alg, &key) == -1 && (refetch(true) == -1 ||
	    find_ref(kid, alg, &key) == -1)) {
		log_info("external identity refused", "%s", "unknown key id");
		return -1;
	}
	e = jwtv_verify(token, &key, &ex, &claims);
	jwtv_key_free(&key);
	if (e != JWTV_OK) {
		log_info("external identity refused", "%s", jwtv_strerror(e));
		return -1;
	}
	email = json_string_value(json_object_get(claims, c->ext_email_claim));
	if (email == NULL || *email == '\0')
		goto out;
	if (users_find_email(email, &u) == -1) {
		if (c->ext_auto_role == 0 ||
		    users_add(email, email, c->ext_auto_role == 2 ? ROLE_ADMIN :
		    ROLE_MEMBER, NULL, &err) == -1 ||
		    users_find_email(email, &u) == -1)
			goto out;
		audit_add("external", ip, "user_add", email, "provisioned "
		    "from an external identity");
	}
	if (u.disabled)
		goto out;
	memset(id, 0, sizeof(*id));
	id->kind = ID_EXTERNAL;
	id->user_id = u.id;
	snprintf(id->user, sizeof(id->user), "%s", u.name);
	snprintf(id->email, sizeof(id->email), "%s", u.email);
	id->role = u.role;
	id->scopes = auth_role_scopes(u.role);
	id->exp = json_integer_value(json_object_get(claims, "exp"));
	rc = 0;
out:
	free(err);
	json_decref(claims);
	return rc;
}

/* A reference to a known key, to verify with outside the lock. */
static int
find_ref(const char *kid, const char *alg, struct jwtv_key *out)
{
	const struct jwk	*k;

	pthread_mutex_lock(&lock);
	if ((k = find_key(kid, alg)) != NULL) {
		EVP_PKEY_up_ref(k->key.pkey);
		memset(out, 0, sizeof(*out));
		out->alg = k->alg[0] == 'R' ? "RS256" : "ES256";
		out->pkey = k->key.pkey;
	}
	pthread_mutex_unlock(&lock);
	return k != NULL ? 0 : -1;
}

/* Unknown-kid refetches are rate-limited; one fetch at a time. */
static int
refetch(bool for_unknown_kid)
{
	const struct config	*c = config_current();
	struct buf		 body;
	json_t			*root, *jk;
	const char		*kty, *kid, *alg, *crv;
	struct jwk		 fresh[MAX_KEYS];
	size_t			 i, n = 0;
	double			 now;
	EVP_PKEY		*pk;

	pthread_mutex_lock(&fetch_lock);
	now = now_seconds();
	if ((for_unknown_kid && now - tried_at < (double)c->ext_refetch_s) ||
	    (!for_unknown_kid && now - fetched_at <= REFRESH_S)) {
		pthread_mutex_unlock(&fetch_lock);
		return for_unknown_kid ? -1 : 0;
	}
	tried_at = now;
	buf_init(&body, MAX_JWKS);
	__atomic_add_fetch(&nfetches, 1, __ATOMIC_RELAXED);
	if (fetcher(c->ext_jwks_url, &body) == -1) {
		log_warn("cannot fetch the JWKS", "%s", c->ext_jwks_url);
		buf_free(&body);
		pthread_mutex_unlock(&fetch_lock);
		return -1;
	}
	root = json_loadb(body.data ? body.data : "", body.len, 0, NULL);
	buf_free(&body);
	json_array_foreach(json_object_get(root, "keys"), i, jk) {
		if (n == MAX_KEYS)
			break;
		kty = json_string_value(json_object_get(jk, "kty"));
		kid = json_string_value(json_object_get(jk, "kid"));
		alg = json_string_value(json_object_get(jk, "alg"));
		crv = json_string_value(json_object_get(jk, "crv"));
		if (kty == NULL)
			continue;
		memset(&fresh[n], 0, sizeof(fresh[n]));
		snprintf(fresh[n].kid, sizeof(fresh[n].kid), "%s",
		    kid != NULL ? kid : "");
		pk = NULL;
		if (!strcmp(kty, "RSA") && (alg == NULL || !strcmp(alg,
		    "RS256"))) {
			snprintf(fresh[n].alg, sizeof(fresh[n].alg), "RS256");
			pk = key_rsa(jk);
		} else if (!strcmp(kty, "EC") && crv != NULL &&
		    !strcmp(crv, "P-256") && (alg == NULL || !strcmp(alg,
		    "ES256"))) {
			snprintf(fresh[n].alg, sizeof(fresh[n].alg), "ES256");
			pk = key_ec(jk);
		}
		if (pk != NULL && jwtv_key_from_pkey(&fresh[n].key,
		    fresh[n].alg[0] == 'R' ? "RS256" : "ES256", pk) == 0)
			n++;
	}
	json_decref(root);
	if (n == 0) {
		log_warn("the JWKS has no usable key (RSA, or EC P-256)", "%s",
		    c->ext_jwks_url);
		pthread_mutex_unlock(&fetch_lock);
		return -1;
	}
	/* A rotation drops the old keys: only the new set is trusted. */
	pthread_mutex_lock(&lock);
	keys_free();
	memcpy(keys, fresh, n * sizeof(fresh[0]));
	nkeys = n;
	auth_invalidate();	/* tokens of a dropped key: check again */
	__atomic_store(&fetched_at, &now, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&lock);
	pthread_mutex_unlock(&fetch_lock);
	return 0;
}

static const struct jwk *
find_key(const char *kid, const char *alg)
{
	size_t	 i;

	for (i = 0; i < nkeys; i++)
		if (!strcmp(keys[i].alg, alg) && (!strcmp(keys[i].kid, kid) ||
		    (*kid == '\0' && nkeys == 1)))
			return &keys[i];
	return NULL;
}

static bool
alg_allowed(const char *alg)
{
	const struct config	*c = config_current();
	size_t			 i;

	for (i = 0; c->ext_algorithms != NULL && c->ext_algorithms[i]; i++)
		if (!strcmp(c->ext_algorithms[i], alg))
			return true;
	return false;
}

static void
keys_free(void)
{
	size_t	 i;

	for (i = 0; i < nkeys; i++)
		jwtv_key_free(&keys[i].key);
	nkeys = 0;
}

/* GET the JWKS: TLS verified, no redirects to elsewhere, size-bounded. */
static int
fetch_http(const char *url, struct buf *out)
{
	CURL	*h = curl_easy_init();
	CURLcode rc;
	long	 status = 0;

	if (h == NULL)
		return -1;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 5L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
	    (curl_off_t)MAX_JWKS);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	return rc == CURLE_OK && status == 200 ? 0 : -1;
}

static size_t
on_data(char *p, size_t size, size_t n, void *arg)
{
	return buf_append(arg, p, size * n) == 0 ? size * n : 0;
}

static EVP_PKEY *
key_rsa(json_t *jk)
{
	OSSL_PARAM_BLD	*bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM	*params = NULL;
	EVP_PKEY_CTX	*ctx = NULL;
	EVP_PKEY	*pkey = NULL;
	BIGNUM		*n = bn_b64(json_object_get(jk, "n"));
	BIGNUM		*e = bn_b64(json_object_get(jk, "e"));

	if (bld == NULL || n == NULL || e == NULL ||
	    BN_num_bits(n) < 2048 ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return pkey;
}

static EVP_PKEY *
key_ec(json_t *jk)
{
	const char	*x = json_string_value(json_object_get(jk, "x"));
	const char	*y = json_string_value(json_object_get(jk, "y"));
	unsigned char	 pt[65], xy[48];
	OSSL_PARAM	 params[3];
	EVP_PKEY_CTX	*ctx = NULL;
	EVP_PKEY	*pkey = NULL;
	char		 group[] = "prime256v1";

	/* An uncompressed point: 0x04 || x || y, 32 bytes each. */
	if (x == NULL || y == NULL || strlen(x) > 60 || strlen(y) > 60 ||
	    b64url_decode(x, strlen(x), xy) != 32)
		return NULL;
	pt[0] = 4;
	memcpy(pt + 1, xy, 32);
	if (b64url_decode(y, strlen(y), xy) != 32)
		return NULL;
	memcpy(pt + 33, xy, 32);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
	    group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
	    pt, sizeof(pt));
	params[2] = OSSL_PARAM_construct_end();
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

static BIGNUM *
bn_b64(json_t *v)
{
	const char	*s = json_string_value(v);
	unsigned char	 raw[1024];
	ssize_t		 n;

	if (s == NULL || strlen(s) > sizeof(raw) / 3 * 4 ||
	    (n = b64url_decode(s, strlen(s), raw)) <= 0)
		return NULL;
	return BN_bin2bn(raw, (int)n, NULL);
}
