/* SPDX-License-Identifier: MIT */
/*
 * jwtv.c: JWT verification around libjwt (RFC 7519, RFC 8725). libjwt 1.10
 * checks only the signature, and with the algorithm the token names: the
 * caller's key decides the algorithm here, before libjwt sees the token, so
 * "none" and HS256-with-a-public-key cannot pass. Then exp, nbf, iat (with a
 * skew), iss and aud are checked.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <jwt.h>

#include "pincer.h"

#define MAX_TOKEN	16384

static json_t	*decode_part(const char *, size_t);
static int	 claim_time(json_t *, const char *, long long *);
static bool	 aud_matches(json_t *, const char *);

static const char *const errors[] = {
	[JWTV_OK] = "ok",
	[JWTV_MALFORMED] = "malformed token",
	[JWTV_ALG] = "unexpected algorithm",
	[JWTV_KEY] = "no usable key",
	[JWTV_SIGNATURE] = "bad signature",
	[JWTV_EXPIRED] = "expired",
	[JWTV_NOT_YET] = "not yet valid",
	[JWTV_IAT] = "issued in the future",
	[JWTV_ISS] = "wrong issuer",
	[JWTV_AUD] = "wrong audience",
	[JWTV_KID] = "unknown key id",
};

const char *
jwtv_strerror(enum jwtv_error e)
{
	return e <= JWTV_KID ? errors[e] : "?";
}

/* The unverified header: only to pick a key by kid, never to trust. */
int
jwtv_header(const char *token, char *alg, size_t algsz, char *kid,
    size_t kidsz)
{
	const char	*dot = strchr(token, '.');
	json_t		*h;
	const char	*a, *k;

	if (dot == NULL || (h = decode_part(token, (size_t)(dot - token))) ==
	    NULL)
		return -1;
	a = json_string_value(json_object_get(h, "alg"));
	k = json_string_value(json_object_get(h, "kid"));
	snprintf(alg, algsz, "%s", a != NULL ? a : "");
	snprintf(kid, kidsz, "%s", k != NULL ? k : "");
	json_decref(h);
	return 0;
}

enum jwtv_error
jwtv_verify(const char *token, const struct jwtv_key *key,
    const struct jwtv_expect *ex, json_t **claims_out)
{
	const char	*d1, *d2, *alg;
	json_t		*hdr = NULL, *claims = NULL;
	jwt_t		*jwt = NULL;
	time_t		 now = ex->now ? ex->now : time(NULL);
	long long	 t;
	size_t		 n = strnlen(token, MAX_TOKEN + 1);
	enum jwtv_error	 rc = JWTV_MALFORMED;
	int		 r;

	*claims_out = NULL;
	if (n > MAX_TOKEN || (d1 = strchr(token, '.')) == NULL ||
	    (d2 = strchr(d1 + 1, '.')) == NULL || strchr(d2 + 1, '.') != NULL
	    || d1 == token || d2 == d1 + 1 || d2[1] == '\0')
		return JWTV_MALFORMED;
	if ((hdr = decode_part(token, (size_t)(d1 - token))) == NULL)
		goto out;
	alg = json_string_value(json_object_get(hdr, "alg"));
	/* RFC 8725 §3.1: the key, not the token, names the algorithm. */
	rc = JWTV_ALG;
	if (alg == NULL || key->alg == NULL || strcmp(alg, key->alg) != 0 ||
	    jwt_str_alg(alg) == JWT_ALG_NONE || jwt_str_alg(alg) ==
	    JWT_ALG_INVAL)
		goto out;
	rc = JWTV_KEY;
	if (key->key == NULL || key->len == 0 || key->len > 65536)
		goto out;
	rc = JWTV_SIGNATURE;
	if ((r = jwt_decode(&jwt, token, key->key, (int)key->len)) != 0 ||
	    jwt == NULL || jwt_get_alg(jwt) != jwt_str_alg(key->alg))
		goto out;
	rc = JWTV_MALFORMED;
	if ((claims = decode_part(d1 + 1, (size_t)(d2 - d1 - 1))) == NULL)
		goto out;
	rc = JWTV_EXPIRED;
	if (claim_time(claims, "exp", &t) != 1 || now > t + ex->skew_s)
		goto out;
	rc = JWTV_NOT_YET;
	if ((r = claim_time(claims, "nbf", &t)) == -1 ||
	    (r == 1 && now + ex->skew_s < t))
		goto out;
	rc = JWTV_IAT;
	if ((r = claim_time(claims, "iat", &t)) == -1 ||
	    (r == 1 && t > now + ex->skew_s))
		goto out;
	rc = JWTV_ISS;
	if (ex->iss != NULL && (json_string_value(json_object_get(claims,
	    "iss")) == NULL || strcmp(json_string_value(json_object_get(claims,
	    "iss")), ex->iss) != 0))
		goto out;
	rc = JWTV_AUD;
	if (ex->aud != NULL && !aud_matches(json_object_get(claims, "aud"),
	    ex->aud))
		goto out;
	rc = JWTV_OK;
	*claims_out = claims;
	claims = NULL;
out:
	json_decref(hdr);
	json_decref(claims);
	jwt_free(jwt);
	return rc;
}

/* HS256 for our own session tokens; caller frees. */
char *
jwtv_sign_hs256(const unsigned char *key, size_t len, json_t *claims)
{
	jwt_t	*jwt = NULL;
	char	*grants = NULL, *out = NULL;

	if (len == 0 || jwt_new(&jwt) != 0)
		return NULL;
	if ((grants = json_dumps(claims, JSON_COMPACT)) != NULL &&
	    jwt_add_grants_json(jwt, grants) == 0 &&
	    jwt_set_alg(jwt, JWT_ALG_HS256, key, (int)len) == 0)
		out = jwt_encode_str(jwt);
	free(grants);
	jwt_free(jwt);
	return out;
}

static json_t *
decode_part(const char *p, size_t n)
{
	unsigned char	 raw[MAX_TOKEN];
	ssize_t		 len;
	json_t		*j;

	if (n == 0 || n > sizeof(raw) / 4 * 3 ||
	    (len = b64url_decode(p, n, raw)) <= 0)
		return NULL;
	j = json_loadb((const char *)raw, (size_t)len, JSON_REJECT_DUPLICATES,
	    NULL);
	if (j != NULL && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* 1: present and numeric; 0: absent; -1: present but not a number. */
static int
claim_time(json_t *claims, const char *name, long long *t)
{
	json_t	*v = json_object_get(claims, name);

	if (v == NULL)
		return 0;
	if (json_is_integer(v))
		*t = json_integer_value(v);
	else if (json_is_real(v))
		*t = (long long)json_real_value(v);
	else
		return -1;
	return 1;
}

/* RFC 7519 §4.1.3: a string, or an array of strings. */
static bool
aud_matches(json_t *aud, const char *want)
{
	json_t	*v;
	size_t	 i;

	if (json_is_string(aud))
		return strcmp(json_string_value(aud), want) == 0;
	json_array_foreach(aud, i, v)
		if (json_is_string(v) && !strcmp(json_string_value(v), want))
			return true;
	return false;
}
