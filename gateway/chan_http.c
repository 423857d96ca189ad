/* SPDX-License-Identifier: MIT */
/*
 * chan_http.c: the channels' HTTP client. Channel calls are few and run
 * on the channel's own delivery or socket thread, so a blocking libcurl
 * easy call per request is the simple right tool; the answer is bounded
 * like every buffer fed from the network.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "pincer.h"

#define ANSWER_MAX	(64L << 20)	/* a downloaded file, at most */
#define TIMEOUT_MS	30000L

static size_t	on_body(char *, size_t, size_t, void *);
static size_t	on_header(char *, size_t, size_t, void *);

/*
 * 0: an HTTP answer is in h (status, answer, retry_after_ms); -1: none
 * (h->error says why, with no URL in it: a token may be in one).
 */
int
chan_http_do(struct chan_http *h)
{
	CURL			*c;
	curl_mime		*mime = NULL;
	curl_mimepart		*mp;
	struct curl_slist	*hl = NULL;
	const char *const	*hp;
	CURLcode		 rc;
	long			 status = 0;
	size_t			 i;

	buf_init(&h->answer, ANSWER_MAX);
	h->status = 0;
	h->retry_after_ms = -1;
	h->error[0] = '\0';
	if ((c = curl_easy_init()) == NULL) {
		snprintf(h->error, sizeof(h->error), "out of memory");
		return -1;
	}
	for (hp = h->headers; hp != NULL && *hp != NULL; hp++)
		hl = curl_slist_append(hl, *hp);
	/* curl would send "Expect: 100-continue" and wait for big bodies. */
	hl = curl_slist_append(hl, "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, h->url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, h->timeout_ms > 0 ?
	    h->timeout_ms : TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "pincer");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
	if (h->nparts > 0) {
		mime = curl_mime_init(c);
		for (i = 0; i < h->nparts; i++) {
			const struct chan_part	*p = &h->parts[i];

			mp = curl_mime_addpart(mime);
			curl_mime_name(mp, p->name);
			curl_mime_data(mp, p->data, p->len == (size_t)-1 ?
			    CURL_ZERO_TERMINATED : p->len);
			if (p->filename != NULL)
				curl_mime_filename(mp, p->filename);
			if (p->mime != NULL)
				curl_mime_type(mp, p->mime);
		}
		curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
	} else if (h->body != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, h->body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)h->len);
	}
	if (h->method != NULL)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, h->method);
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	curl_mime_free(mime);
	curl_slist_free_all(hl);
	if (rc != CURLE_OK) {
		snprintf(h->error, sizeof(h->error), "%s",
		    rc == CURLE_WRITE_ERROR ? "the answer is too large" :
		    curl_easy_strerror(rc));
		return -1;
	}
	h->status = (int)status;
	return 0;
}

void
chan_http_free(struct chan_http *h)
{
	buf_free(&h->answer);
}

/*
 * The usual reading of an answer: 2xx sent; 429, 408 and 5xx, or no
 * answer, worth another try (after Retry-After when given); any other
 * status will not get better by trying again.
 */
enum chan_status
chan_http_status(const struct chan_http *h, struct chan_result *r)
{
	if (h->status >= 200 && h->status < 300)
		return CHAN_SENT;
	if (h->status == 0) {
		snprintf(r->error, sizeof(r->error), "%s", h->error);
		return CHAN_RETRY;
	}
	snprintf(r->error, sizeof(r->error), "HTTP %d: %.200s", h->status,
	    h->answer.data != NULL ? h->answer.data : "");
	if (h->status == 429 || h->status == 408 || h->status >= 500) {
		r->retry_after_ms = h->retry_after_ms > 0 ? h->retry_after_ms :
		    0;
		return CHAN_RETRY;
	}
	return CHAN_FAILED;
}

json_t *
chan_http_json(const struct chan_http *h)
{
	if (h->answer.data == NULL)
		return NULL;
	return json_loadb(h->answer.data, h->answer.len, 0, NULL);
}

void
chan_hmac_hex(const void *key, size_t keylen, const void *data, size_t len,
    char out[65])
{
	unsigned char	 mac[EVP_MAX_MD_SIZE];
	unsigned int	 maclen = 0, i;

	HMAC(EVP_sha256(), key, (int)keylen, data, len, mac, &maclen);
	for (i = 0; i < maclen && i < 32; i++)
		snprintf(out + i * 2, 3, "%02x", mac[i]);
	out[i * 2] = '\0';
}

/* Signatures are compared in constant time (no early exit on a byte). */
bool
chan_hex_equal(const char *a, const char *b)
{
	size_t	 la = strlen(a), lb = strlen(b);

	if (la != lb || la == 0)
		return false;
	return CRYPTO_memcmp(a, b, la) == 0;
}

static size_t
on_body(char *p, size_t sz, size_t n, void *arg)
{
	struct chan_http	*h = arg;

	if (buf_append(&h->answer, p, sz * n) == -1)
		return 0;	/* over ANSWER_MAX: CURLE_WRITE_ERROR */
	return sz * n;
}

/* Retry-After in seconds (RFC 9110 §10.2.3); a date is taken as 1 s. */
static size_t
on_header(char *p, size_t sz, size_t n, void *arg)
{
	struct chan_http	*h = arg;
	size_t			 len = sz * n;
	char			 v[64];

	if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
		snprintf(v, sizeof(v), "%.*s", (int)(len - 12 < 63 ? len - 12 :
		    63), p + 12);
		h->retry_after_ms = (long)(strtod(v, NULL) * 1000);
		if (h->retry_after_ms <= 0)
			h->retry_after_ms = 1000;
	}
	return len;
}
