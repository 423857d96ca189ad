/* SPDX-License-Identifier: MIT */
/*
 * test_jwtv.c: every way a JWT must be refused (RFC 8725), and the JWKS
 * cache: an unknown kid refetches once, then refuses; a rotation drops
 * the old key and takes the new one. Keys are made here with OpenSSL;
 * tokens are signed with libjwt or assembled by hand.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "pincer.h"
#include "tap.h"

static char	*pem(EVP_PKEY *, bool priv);
static char	*sign(jwt_alg_t, const char *key, size_t, const char *kid,
		    json_t *claims);
static json_t	*claims(long long exp_in, const char *iss, const char *aud);
static char	*assemble(const char *hdr, const char *payload, const char *sig);
static void	 test_rejections(void);
static void	 test_jwks(void);
static int	 fake_fetch(const char *, struct buf *);
static char	*jwk_rsa(EVP_PKEY *, const char *kid);

static EVP_PKEY	*rsa, *rsa2, *ec;
static char	*rsa_pub, *rsa_priv, *rsa2_priv, *ec_pub, *ec_priv;
static char	*jwks_doc;		/* what fake_fetch serves */
static const unsigned char hs_key[] = "0123456789abcdef0123456789abcdef";

int
main(void)
{
	rsa = EVP_RSA_gen(2048);
	rsa2 = EVP_RSA_gen(2048);
	ec = EVP_EC_gen("P-256");
	if (rsa == NULL || rsa2 == NULL || ec == NULL)
		return 99;
	rsa_pub = pem(rsa, false);
	rsa_priv = pem(rsa, true);
	rsa2_priv = pem(rsa2, true);
	ec_pub = pem(ec, false);
	ec_priv = pem(ec, true);
	test_rejections();
	test_jwks();
	return done_testing();
}

static void
test_rejections(void)
{
	struct jwtv_key		 hs, rs, es, empty;
	struct jwtv_expect	 ex = { .iss = "iss.example", .aud = "pincer",
				    .skew_s = 60 };
	json_t			*c = NULL, *cl;
	char			*t, *t2, *dot;
	char			 hdr[256], pay[512];

	is_int(jwtv_key_init(&hs, "HS256", hs_key, 32), 0, "an HS256 key");
	is_int(jwtv_key_init(&rs, "RS256", rsa_pub, strlen(rsa_pub)), 0,
	    "an RS256 key from PEM");
	is_int(jwtv_key_init(&es, "ES256", ec_pub, strlen(ec_pub)), 0,
	    "an ES256 key from PEM");
	is_int(jwtv_key_init(&empty, "HS256", "", 0), -1,
	    "an empty HS256 key is refused when made");
	{
		struct jwtv_key	 wrong;

		is_int(jwtv_key_init(&wrong, "ES256", rsa_pub,
		    strlen(rsa_pub)), -1, "an RSA PEM is no ES256 key");
	}
	t = sign(JWT_ALG_HS256, (char *)hs_key, 32, NULL,
	    claims(300, "iss.example", "pincer"));
	is_int(jwtv_verify(t, &hs, &ex, &c), JWTV_OK, "HS256: a good token");
	ok(c != NULL && !strcmp(json_string_value(json_object_get(c, "sub")),
	    "42"), "its claims come back");
	json_decref(c);
	free(t);

	t = sign(JWT_ALG_RS256, rsa_priv, strlen(rsa_priv), "k1",
	    claims(300, "iss.example", "pincer"));
	is_int(jwtv_verify(t, &rs, &ex, &c), JWTV_OK, "RS256: a good token");
	json_decref(c);
	/* Tampered payload: same signature, other claims. */
	dot = strchr(t, '.');
	cl = claims(300, "iss.example", "pincer");
	json_object_set_new(cl, "sub", json_string("1"));
	{
		char	*js = json_dumps(cl, JSON_COMPACT);

		b64url_encode(js, strlen(js), pay);
		free(js);
	}
	json_decref(cl);
	memcpy(hdr, t, (size_t)(dot - t));
	hdr[dot - t] = '\0';
	t2 = assemble(hdr, pay, strrchr(t, '.') + 1);
	is_int(jwtv_verify(t2, &rs, &ex, &c), JWTV_SIGNATURE,
	    "tampered payload refused");
	free(t2);
	/* Tampered signature: one character changed. */
	t2 = strdup(t);
	t2[strlen(t2) - 5] = t2[strlen(t2) - 5] == 'A' ? 'B' : 'A';
	is_int(jwtv_verify(t2, &rs, &ex, &c), JWTV_SIGNATURE,
	    "tampered signature refused");
	free(t2);
	free(t);

	/* HS256 "signed" with the RSA public key as the secret. */
	t = sign(JWT_ALG_HS256, rsa_pub, strlen(rsa_pub), "k1",
	    claims(300, "iss.example", "pincer"));
	is_int(jwtv_verify(t, &rs, &ex, &c), JWTV_ALG,
	    "HS256 with the public key as secret refused (alg confusion)");
	free(t);

	/* alg none, with and without a signature part. */
#define B64(s, out)	b64url_encode(s, strlen(s), out)
	B64("{\"alg\":\"none\",\"typ\":\"JWT\"}", hdr);
	B64("{\"sub\":\"42\",\"exp\":9999999999}", pay);
	t = assemble(hdr, pay, "");
	is_int(jwtv_verify(t, &rs, &ex, &c), JWTV_MALFORMED,
	    "alg none with an empty signature refused");
	free(t);
	t = assemble(hdr, pay, "AAAA");
	is_int(jwtv_verify(t, &hs, &ex, &c), JWTV_ALG,
	    "alg none with a signature refused");
	free(t);
	B64("{\"alg\":\"NONE\"}", hdr);
	t = assemble(hdr, pay, "AAAA");
	is_int(jwtv_verify(t, &hs, &ex, &c), JWTV_ALG, "alg NONE refused");
	free(t);

	t = sign(JWT_ALG_HS256, (char *)hs_key, 32, NULL,
	    claims(-120, "iss.example", "pincer"));
	is_int(jwtv_verify(t, &hs, &ex, &c), JWTV_EXPIRED,
	    "expired beyond the skew refused");
	free(t);
	t = sign(JWT_ALG_HS256, (char *)hs_key, 32, NULL,
	    claims(-30, "iss.example", "pincer"));
	is_int(jwtv_verify(t, &hs, &ex, &c), JWTV_OK,
	    "expired within the skew accepted");
	json_decref(c);
	free(t);
	cl = claims(300, "iss.example", "pincer");
	json_object_del(cl, "exp");
	t = sign(JWT_ALG_HS256, (char *)hs_key, 32, NULL, cl);
	is_int(jwtv_verify(t, &hs, &ex, &c), JWTV_EXPIRED,
	    "a token without exp refused");
	free(t);
	cl = claims(300, "iss.example", "pincer");
	json_object_set_new(cl, "nbf", json_integer(time(NULL) + 600));
	t = sign(JWT_ALG_HS256, (char *)hs_key, 32, NULL, cl);
	is_int(jwtv_verify(t, &hs, &ex, &c), JWTV_NOT_YET,
	    "not yet valid (nbf) refused");
	free(t);
	cl = claims(3000, "iss.example", "pincer");
	json_object_set_new(cl, "iat", json_integer(time(NULL) + 600));
	t = sign(JWT_ALG_HS256, (char *)hs_key, 32, NULL, cl);
	is_int(jwtv_verify(t, &hs, &ex, &c), JWTV_IAT,
	    "iat in the future beyond the skew refused");
	free(t);
	t = sign(JWT_ALG_HS256, (char *)hs_key, 32, NULL,
	    claims(300, "evil.example", "pincer"));
	is_int(jwtv_verify(t, &hs, &ex, &c), JWTV_ISS, "wrong iss refused");
	free(t);
	t = sign(JWT_ALG_HS256, (char *)hs_key, 32, NULL,
	    claims(300, "iss.example", "other"));
	is_int(jwtv_verify(t, &hs, &ex, &c), JWTV_AUD, "wrong aud refused");
	free(t);
	cl = claims(300, "iss.example", NULL);
	json_object_set_new(cl, "aud", json_pack("[s,s]", "x", "pincer"));
	t = sign(JWT_ALG_HS256, (char *)hs_key, 32, NULL, cl);
	is_int(jwtv_verify(t, &hs, &ex, &c), JWTV_OK,
	    "aud as an array holding ours accepted");
	json_decref(c);
	free(t);
	t = sign(JWT_ALG_HS256, (char *)hs_key, 32, NULL,
	    claims(300, "iss.example", "pincer"));
	is_int(jwtv_verify(t, &empty, &ex, &c), JWTV_KEY,
	    "an empty key refuses every token");
	is_int(jwtv_verify(t, &rs, &ex, &c), JWTV_ALG,
	    "HS256 token against an RS256 key refused");
	free(t);

	t = sign(JWT_ALG_ES256, ec_priv, strlen(ec_priv), "e1",
	    claims(300, "iss.example", "pincer"));
	is_int(jwtv_verify(t, &es, &ex, &c), JWTV_OK, "ES256: a good token");
	json_decref(c);
	is_int(jwtv_verify(t, &rs, &ex, &c), JWTV_ALG,
	    "ES256 token against an RSA key refused");
	free(t);
	is_int(jwtv_verify("a.b", &hs, &ex, &c), JWTV_MALFORMED,
	    "two parts refused");
	is_int(jwtv_verify("a.b.c.d", &hs, &ex, &c), JWTV_MALFORMED,
	    "four parts refused");
	is_int(jwtv_verify("!!.??.##", &hs, &ex, &c), JWTV_MALFORMED,
	    "not base64url refused");
	jwtv_key_free(&hs);
	jwtv_key_free(&rs);
	jwtv_key_free(&es);
}

/* The JWKS cache, against a fetcher that counts and serves jwks_doc. */
static long	fetches;

static int
fake_fetch(const char *url, struct buf *out)
{
	fetches++;
	return jwks_doc != NULL ? buf_puts(out, jwks_doc) : -1;
}

static void
test_jwks(void)
{
	char		 dir[] = "/tmp/pincer-test-jwks-XXXXXX", db[256];
	char		*err = NULL, *t, *k1, *k2;
	struct config	*cfg;
	struct identity	 id;
	json_t		*cl;
	const char	 conf[] = "{\"auth\":{\"external_jwt\":{"
	    "\"jwks_url\":\"http://127.0.0.1:1/certs\",\"audience\":\"pincer\","
	    "\"issuer\":\"iss.example\",\"refetch_interval_s\":0,"
	    "\"auto_provision_role\":\"member\"}}}";

	if (mkdtemp(dir) == NULL)
		exit(99);
	cfg = config_parse(conf, sizeof(conf) - 1, "test", &err);
	ok(cfg != NULL, "external JWT config parses%s%s", err ? ": " : "",
	    err ? err : "");
	if (cfg == NULL)
		exit(1);
	config_publish(cfg);
	snprintf(db, sizeof(db), "%s/pincer.db", dir);
	if (store_open(db, 1000, &err) == -1)
		exit(99);
	jwks_set_fetcher(fake_fetch);

	k1 = jwk_rsa(rsa, "k1");
	k2 = jwk_rsa(rsa2, "k2");
	if (asprintf(&jwks_doc, "{\"keys\":[%s]}", k1) == -1)
		exit(99);
	cl = claims(300, "iss.example", "pincer");
	json_object_set_new(cl, "email", json_string("ann@example.org"));
	t = sign(JWT_ALG_RS256, rsa_priv, strlen(rsa_priv), "k1", cl);
	is_int(jwks_identify(t, "127.0.0.1", &id), 0, "a token signed by k1 identifies");
	is_str(id.user, "ann@example.org", "as the provisioned user");
	is_int(id.role, ROLE_MEMBER, "with the configured role");
	is_int(fetches, 1, "the JWKS was fetched once");
	is_int(jwks_identify(t, "127.0.0.1", &id), 0, "again, from the cache");
	is_int(fetches, 1, "no refetch for a known kid");
	free(t);

	/* Unknown kid: one refetch, then refusal. */
	cl = claims(300, "iss.example", "pincer");
	json_object_set_new(cl, "email", json_string("ann@example.org"));
	t = sign(JWT_ALG_RS256, rsa_priv, strlen(rsa_priv), "nope", cl);
	is_int(jwks_identify(t, "127.0.0.1", &id), -1, "an unknown kid is refused");
	is_int(fetches, 2, "after exactly one refetch");
	free(t);

	/* Rotation: the JWKS now holds only k2. */
	free(jwks_doc);
	if (asprintf(&jwks_doc, "{\"keys\":[%s]}", k2) == -1)
		exit(99);
	cl = claims(300, "iss.example", "pincer");
	json_object_set_new(cl, "email", json_string("ann@example.org"));
	t = sign(JWT_ALG_RS256, rsa2_priv, 0, "k2", cl);
	is_int(jwks_identify(t, "127.0.0.1", &id), 0, "a token from the new key k2 is "
	    "accepted (refetch on its unknown kid)");
	is_int(fetches, 3, "one more fetch");
	free(t);
	cl = claims(300, "iss.example", "pincer");
	json_object_set_new(cl, "email", json_string("ann@example.org"));
	t = sign(JWT_ALG_RS256, rsa_priv, strlen(rsa_priv), "k1", cl);
	is_int(jwks_identify(t, "127.0.0.1", &id), -1, "the dropped key k1 is refused");
	free(t);

	/* A wrong audience through the JWKS path. */
	cl = claims(300, "iss.example", "someone-else");
	json_object_set_new(cl, "email", json_string("ann@example.org"));
	t = sign(JWT_ALG_RS256, rsa2_priv, 0, "k2", cl);
	is_int(jwks_identify(t, "127.0.0.1", &id), -1, "wrong aud refused");
	free(t);

	jwks_set_fetcher(NULL);
	store_close();
	config_release_all();
	free(k1);
	free(k2);
	free(jwks_doc);
	free(err);
	{
		char	 cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			printf("# could not remove %s\n", dir);
	}
}

static char *
pem(EVP_PKEY *k, bool priv)
{
	BIO	*b = BIO_new(BIO_s_mem());
	char	*d, *out;
	long	 n;

	if (priv)
		PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	else
		PEM_write_bio_PUBKEY(b, k);
	n = BIO_get_mem_data(b, &d);
	out = strndup(d, (size_t)n);
	BIO_free(b);
	return out;
}

/* libjwt signs; len 0 means strlen(key). Takes claims' reference. */
static char *
sign(jwt_alg_t alg, const char *key, size_t len, const char *kid,
    json_t *cl)
{
	jwt_t	*j = NULL;
	char	*g = json_dumps(cl, JSON_COMPACT), *out = NULL;

	if (len == 0)
		len = strlen(key);
	if (jwt_new(&j) == 0 && jwt_add_grants_json(j, g) == 0 &&
	    (kid == NULL || jwt_add_header(j, "kid", kid) == 0) &&
	    jwt_set_alg(j, alg, (const unsigned char *)key, (int)len) == 0)
		out = jwt_encode_str(j);
	jwt_free(j);
	free(g);
	json_decref(cl);
	if (out == NULL)
		exit(98);
	return out;
}

static json_t *
claims(long long exp_in, const char *iss, const char *aud)
{
	json_t	*c = json_pack("{s:s,s:I,s:I}", "sub", "42", "exp",
		    (json_int_t)(time(NULL) + exp_in), "iat",
		    (json_int_t)time(NULL));

	if (iss != NULL)
		json_object_set_new(c, "iss", json_string(iss));
	if (aud != NULL)
		json_object_set_new(c, "aud", json_string(aud));
	return c;
}

static char *
assemble(const char *h, const char *p, const char *s)
{
	char	*t;

	if (asprintf(&t, "%s.%s.%s", h, p, s) == -1)
		exit(99);
	return t;
}

static char *
jwk_rsa(EVP_PKEY *k, const char *kid)
{
	BIGNUM		*n = NULL, *e = NULL;
	unsigned char	 raw[512];
	char		 nb[700], eb[16], *out;
	int		 len;

	EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n);
	EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e);
	len = BN_bn2bin(n, raw);
	b64url_encode(raw, (size_t)len, nb);
	len = BN_bn2bin(e, raw);
	b64url_encode(raw, (size_t)len, eb);
	BN_free(n);
	BN_free(e);
	if (asprintf(&out, "{\"kty\":\"RSA\",\"kid\":\"%s\",\"alg\":\"RS256\","
	    "\"use\":\"sig\",\"n\":\"%s\",\"e\":\"%s\"}", kid, nb, eb) == -1)
		exit(99);
	return out;
}
