/* SPDX-License-Identifier: MIT */
/*
 * jwtv.c: JWT verification (RFC 7519, RFC 8725). libjwt 1.10 checks only
 * the signature, with the algorithm the token names, and re-parses the key
 * on every call (most of the cost of an RS256 check). So tokens are
 * verified here with OpenSSL against keys prepared once: the caller's key
 * decides the algorithm, so "none" and HS256-with-a-public-key cannot
 * pass; then exp (required), nbf, iat (with a skew), iss and aud. libjwt
 * signs our own session tokens.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "pincer.h"

#define MAX_TOKEN	16384

static json_t	*decode_part(const char *, size_t);
static int	 check_signature(const struct jwtv_key *, const char *, size_t,
		    const char *);
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

/*
 * A key, prepared once: HS256 keeps a keyed MAC context to copy per use
 * (OpenSSL's one-shot HMAC re-derives the key each call); RS256 and ES256
 * keep the parsed public key. Verification then needs no parsing.
 */
int
jwtv_key_init(struct jwtv_key *k, const char *alg, const void *material,
    size_t len)
{
	OSSL_PARAM	 params[2];
	EVP_MAC		*mac;
	BIO		*bio;
	char		 digest[] = "SHA256";

	memset(k, 0, sizeof(*k));
	k->alg = alg;
	if (material == NULL || len == 0 || len > 65536)
		return -1;
	if (!strcmp(alg, "HS256")) {
		if ((mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL)
			return -1;
		k->mac = EVP_MAC_CTX_new(mac);
		EVP_MAC_free(mac);
		params[0] = OSSL_PARAM_construct_utf8_string("digest", digest,
		    0);
		params[1] = OSSL_PARAM_construct_end();
		if (k->mac == NULL || EVP_MAC_init(k->mac, material, len,
		    params) != 1) {
			jwtv_key_free(k);
			return -1;
		}
		return 0;
	}
	if (strcmp(alg, "RS256") && strcmp(alg, "ES256"))
		return -1;
	bio = BIO_new_mem_buf(material, (int)len);
	k->pkey = bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) :
	    NULL;
	BIO_free(bio);
	return jwtv_key_from_pkey(k, alg, k->pkey);
}

/* Takes the reference; the key type must fit the algorithm. */
int
jwtv_key_from_pkey(struct jwtv_key *k, const char *alg, EVP_PKEY *pkey)
{
	k->alg = alg;
	k->pkey = pkey;
	if (pkey == NULL || (!strcmp(alg, "RS256") &&
	    (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA ||
	    EVP_PKEY_get_bits(pkey) < 2048)) || (!strcmp(alg, "ES256") &&
	    (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC ||
	    EVP_PKEY_get_bits(pkey) != 256))) {
		jwtv_key_free(k);
		return -1;
	}
	return 0;
}

void
jwtv_key_free(struct jwtv_key *k)
{
	EVP_MAC_CTX_free(k->mac);
	EVP_PKEY_free(k->pkey);
	k->mac = NULL;
	k->pkey = NULL;
}

enum jwtv_error
jwtv_verify(const char *token, const struct jwtv_key *key,
    const struct jwtv_expect *ex, json_t **claims_out)
{
	const char	*d1, *d2, *alg;
	json_t		*hdr = NULL, *claims = NULL;
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
	if (alg == NULL || key->alg == NULL || strcmp(alg, key->alg) != 0)
		goto out;
	rc = JWTV_KEY;
	if (key->mac == NULL && key->pkey == NULL)
		goto out;
	rc = JWTV_SIGNATURE;
	if (check_signature(key, token, (size_t)(d2 - token), d2 + 1) != 0)
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
	return rc;
}

/*
 * RFC 7518 §3.2 (HMAC), §3.3 (RSASSA-PKCS1-v1_5), §3.4 (ECDSA: the
 * signature is r || s, 32 bytes each, which OpenSSL wants as DER).
 */
static int
check_signature(const struct jwtv_key *k, const char *input, size_t n,
    const char *sig64)
{
	unsigned char	 sig[1024], mac[EVP_MAX_MD_SIZE], der[80];
	unsigned char	*dp = der;
	EVP_MAC_CTX	*m;
	EVP_MD_CTX	*md;
	ECDSA_SIG	*es;
	BIGNUM		*r, *s;
	size_t		 maclen = 0, siglen, slen = strlen(sig64);
	ssize_t		 got;
	int		 rc = -1, derlen;

	if (slen > sizeof(sig) / 3 * 4 ||
	    (got = b64url_decode(sig64, slen, sig)) <= 0)
		return -1;
	siglen = (size_t)got;
	if (k->mac != NULL) {
		if ((m = EVP_MAC_CTX_dup(k->mac)) == NULL)
			return -1;
		if (EVP_MAC_update(m, (const unsigned char *)input, n) == 1 &&
		    EVP_MAC_final(m, mac, &maclen, sizeof(mac)) == 1 &&
		    maclen == siglen && CRYPTO_memcmp(mac, sig, maclen) == 0)
			rc = 0;
		EVP_MAC_CTX_free(m);
		return rc;
	}
	if (!strcmp(k->alg, "ES256")) {
		if (siglen != 64 || (es = ECDSA_SIG_new()) == NULL)
			return -1;
		r = BN_bin2bn(sig, 32, NULL);
		s = BN_bin2bn(sig + 32, 32, NULL);
		if (r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
			BN_free(r);
			BN_free(s);
			ECDSA_SIG_free(es);
			return -1;
		}
		derlen = i2d_ECDSA_SIG(es, &dp);
		ECDSA_SIG_free(es);
		if (derlen <= 0)
			return -1;
		memcpy(sig, der, (size_t)derlen);
		siglen = (size_t)derlen;
	}
	if ((md = EVP_MD_CTX_new()) == NULL)
		return -1;
	if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
	    EVP_DigestVerify(md, sig, siglen, (const unsigned char *)input,
	    n) == 1)
		rc = 0;
	EVP_MD_CTX_free(md);
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
