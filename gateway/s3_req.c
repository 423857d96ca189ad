/* SPDX-License-Identifier: MIT */
/*
 * s3_req.c: one request of the s3 backend: its URL, its headers, curl's
 * SigV4 signature, the body streamed both ways, and what the answer means.
 *
 * What curl 7.88 needs from us (docs/objstore-research.md §1): it neither
 * hashes a streamed body nor adds x-amz-content-sha256, so every request
 * carries that header with the body's real SHA-256 (hashed from the file
 * before it is sent); and it signs the path and query as sent, so both go
 * out already canonical (s3_proto.c). It signs every header we add, so we
 * add no blank "Expect:" and no X-Amz-Date.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "s3.h"

static int	 perform(struct s3_rq *, char *);
static int	 setup(struct s3_rq *, const char *, struct curl_slist *);
static struct curl_slist *headers(const struct s3_rq *);
static int	 classify(struct s3_rq *, CURLcode, char *);
static const char *hint(long, const char *);
static bool	 transient(CURLcode);
static size_t	 on_header(char *, size_t, size_t, void *);
static size_t	 on_body(char *, size_t, size_t, void *);
static size_t	 on_read(char *, size_t, size_t, void *);
static int	 on_seek(void *, curl_off_t, int);
static CURL	*pool_get(struct s3 *);
static void	 pool_put(struct s3 *, CURL *);

void
s3_rq_init(struct s3_rq *r, struct s3 *s, const char *method, const char *key)
{
	memset(r, 0, sizeof(*r));
	r->s3 = s;
	r->method = method;
	r->key = key;
	r->psha = S3_EMPTY_SHA256;
	r->ifd = r->ofd = -1;
	buf_init(&r->ebody, EBODY_MAX);
}

void
s3_rq_free(struct s3_rq *r)
{
	buf_free(&r->ebody);
	EVP_MD_CTX_free(r->hash);
	r->hash = NULL;
}

/* One try for objstore_retry: what a failed try left is undone first. */
int
s3_attempt(void *arg, long *retry_ms, char *err)
{
	struct s3_rq	*r = arg;
	int		 rc;

	r->ipos = r->got = 0;
	r->status = r->retry_ms = 0;
	r->ours = false;
	*r->why = *r->cerr = '\0';
	memset(&r->meta, 0, sizeof(r->meta));
	buf_reset(&r->ebody);
	if (r->omem != NULL)
		buf_reset(r->omem);
	if (r->hash != NULL && !EVP_DigestInit_ex(r->hash, EVP_sha256(),
	    NULL)) {
		snprintf(err, OS_ERR, "out of memory");
		return OS_FAIL;
	}
	if (r->ofd >= 0 && ftruncate(r->ofd, 0) == -1) {
		snprintf(err, OS_ERR, "cannot empty the file to get into: %s",
		    strerror(errno));
		return OS_FAIL;
	}
	rc = perform(r, err);
	if (rc == OS_RETRY && r->retry_ms > 0)
		*retry_ms = r->retry_ms;
	return rc;
}

/* The idle handles, when the store closes. */
void
s3_pool_free(struct s3 *s)
{
	int	 i;

	for (i = 0; i < s->npool; i++)
		curl_easy_cleanup(s->pool[i]);
	s->npool = 0;
}

static int
perform(struct s3_rq *r, char *err)
{
	struct curl_slist	*h = NULL;
	struct buf		 url;
	CURLcode		 cc;
	curl_off_t		 when = -1;
	int			 rc = OS_FAIL;

	buf_init(&url, 3 * OS_KEY_MAX + 8192);
	if (buf_puts(&url, r->s3->base) == -1 ||
	    (r->key != NULL && (buf_puts(&url, "/") == -1 ||
	    s3_encode(&url, r->key, true) == -1)) ||
	    (r->key == NULL && r->s3->virt && buf_puts(&url, "/") == -1) ||
	    (r->nq > 0 && (buf_puts(&url, "?") == -1 ||
	    s3_query(&url, r->q, r->nq) == -1)) ||
	    (h = headers(r)) == NULL || (r->c = pool_get(r->s3)) == NULL ||
	    setup(r, url.data, h) == -1) {
		snprintf(err, OS_ERR, "out of memory");
		goto out;
	}
	cc = curl_easy_perform(r->c);
	curl_easy_getinfo(r->c, CURLINFO_RESPONSE_CODE, &r->status);
	if (curl_easy_getinfo(r->c, CURLINFO_FILETIME_T, &when) == CURLE_OK &&
	    when >= 0)
		r->meta.mtime = (long long)when;
	rc = classify(r, cc, err);
out:
	if (r->c != NULL)
		pool_put(r->s3, r->c);
	r->c = NULL;
	curl_slist_free_all(h);
	buf_free(&url);
	return rc;
}

/* Every header here is signed (curl 7.88 signs all it is given). */
static struct curl_slist *
headers(const struct s3_rq *r)
{
	struct curl_slist	*h = NULL, *t;
	char			 line[128];

	snprintf(line, sizeof(line), "x-amz-content-sha256: %s", r->psha);
	if ((h = curl_slist_append(NULL, line)) == NULL)
		return NULL;
	if (r->msha != NULL) {
		snprintf(line, sizeof(line), "x-amz-meta-sha256: %s", r->msha);
		if ((t = curl_slist_append(h, line)) == NULL)
			goto fail;
		h = t;
	}
	if (r->ifd >= 0 || r->msha != NULL || r->post != NULL) {
		if ((t = curl_slist_append(h, r->post != NULL && *r->post ?
		    "Content-Type: application/xml" :
		    "Content-Type: application/octet-stream")) == NULL)
			goto fail;
		h = t;
	}
	return h;
fail:
	curl_slist_free_all(h);
	return NULL;
}

static int
setup(struct s3_rq *r, const char *url, struct curl_slist *h)
{
	CURL	*c = r->c;
	int	 bad = 0;

	bad |= curl_easy_setopt(c, CURLOPT_URL, url);
	bad |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	bad |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	bad |= curl_easy_setopt(c, CURLOPT_USERAGENT, "pincer");
	bad |= curl_easy_setopt(c, CURLOPT_AWS_SIGV4, r->s3->sigv4);
	bad |= curl_easy_setopt(c, CURLOPT_USERNAME, r->s3->akey);
	bad |= curl_easy_setopt(c, CURLOPT_PASSWORD, r->s3->skey);
	bad |= curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	bad |= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->cerr);
	bad |= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, r->s3->timeout_s);
	/* objstore.timeout_s: a transfer that stalls is given up on. */
	bad |= curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	bad |= curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, r->s3->timeout_s);
	bad |= curl_easy_setopt(c, CURLOPT_FILETIME, 1L);
	bad |= curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	bad |= curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	bad |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	bad |= curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	if (!strcmp(r->method, "HEAD"))
		bad |= curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else if (!strcmp(r->method, "DELETE"))
		bad |= curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
	else if (r->post != NULL) {
		bad |= curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)r->postlen);
		bad |= curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->post);
	} else if (r->ifd >= 0) {
		bad |= curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		bad |= curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
		    (curl_off_t)r->ilen);
		bad |= curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		bad |= curl_easy_setopt(c, CURLOPT_READDATA, r);
		bad |= curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
		bad |= curl_easy_setopt(c, CURLOPT_SEEKDATA, r);
	}
	return bad ? -1 : 0;
}

/*
 * What an answer means. Transient (retried): the network, 5xx, 429, and
 * S3's SlowDown, InternalError and RequestTimeout whatever their status.
 */
static int
classify(struct s3_rq *r, CURLcode cc, char *err)
{
	char		 code[64], msg[160];
	const char	*what = r->key != NULL ? r->key : "the bucket";

	if (r->ours) {
		snprintf(err, OS_ERR, "%s %.80s: %s", r->method, what, r->why);
		return OS_FAIL;
	}
	if (cc != CURLE_OK) {
		snprintf(err, OS_ERR, "%s %.80s: %.160s", r->method, what,
		    *r->cerr != '\0' ? r->cerr : curl_easy_strerror(cc));
		return transient(cc) ? OS_RETRY : OS_FAIL;
	}
	/* CompleteMultipartUpload may fail after its 200 (S3's API docs). */
	if (r->status / 100 == 2 && (strcmp(r->method, "POST") ||
	    r->omem == NULL || s3_parse_error(r->omem->data, r->omem->len,
	    code, sizeof(code), msg, sizeof(msg)) == -1))
		return OS_OK;
	if (r->status / 100 != 2)
		s3_parse_error(r->ebody.data, r->ebody.len, code, sizeof(code),
		    msg, sizeof(msg));
	if (r->status == 404 && !strcmp(code, "NoSuchBucket")) {
		snprintf(err, OS_ERR, "the bucket \"%.80s\" does not exist "
		    "there (objstore.bucket; create it first)", r->s3->bucket);
		return OS_FAIL;
	}
	if (r->status == 404)
		return OS_NOTFOUND;
	snprintf(err, OS_ERR, "%s %.40s: HTTP %ld%s%.40s%s%.80s%s", r->method,
	    what, r->status, *code ? " " : "", code, *code && *msg ? ": " :
	    "", msg, hint(r->status, code));
	if (r->status >= 500 || r->status == 429 || !strcmp(code,
	    "SlowDown") || !strcmp(code, "InternalError") || !strcmp(code,
	    "RequestTimeout"))
		return OS_RETRY;
	return OS_FAIL;
}

/* What a self-hoster should look at for a refusal. */
static const char *
hint(long status, const char *code)
{
	if (!strcmp(code, "InvalidAccessKeyId") ||
	    !strcmp(code, "SignatureDoesNotMatch"))
		return " (check the secrets objstore.access_key_id and "
		    ".secret_access_key name)";
	if (status == 403)
		return " (check the key pair and the bucket's policy)";
	return "";
}

/* Errors of our own settings are not worth another try. */
static bool
transient(CURLcode cc)
{
	switch (cc) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_OUT_OF_MEMORY:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_LOGIN_DENIED:
	case CURLE_ABORTED_BY_CALLBACK:
	case CURLE_BAD_FUNCTION_ARGUMENT:
		return false;
	default:
		return true;
	}
}

/* The headers pincer reads; a new status line (after a 100) resets. */
static size_t
on_header(char *p, size_t sz, size_t n, void *arg)
{
	struct s3_rq	*r = arg;
	size_t		 len = sz * n, k, v;
	char		 val[128];

	if (len >= 5 && !strncmp(p, "HTTP/", 5)) {
		memset(&r->meta, 0, sizeof(r->meta));
		r->retry_ms = 0;
		return len;
	}
	for (k = 0; k < len && p[k] != ':'; k++)
		;
	if (k == len)
		return len;
	for (v = k + 1; v < len && (p[v] == ' ' || p[v] == '\t'); v++)
		;
	snprintf(val, sizeof(val), "%.*s", (int)(len - v), p + v);
	val[strcspn(val, "\r\n")] = '\0';
	if (k == 4 && !strncasecmp(p, "ETag", 4)) {
		snprintf(r->meta.etag, sizeof(r->meta.etag), "%s",
		    val + (*val == '"'));
		r->meta.etag[strcspn(r->meta.etag, "\"")] = '\0';
	} else if (k == 17 && !strncasecmp(p, "x-amz-meta-sha256", 17) &&
	    strlen(val) == 64 && strspn(val, "0123456789abcdef") == 64)
		memcpy(r->meta.sha256, val, 65);
	else if (k == 14 && !strncasecmp(p, "Content-Length", 14))
		r->meta.size = strtoll(val, NULL, 10);
	else if (k == 11 && !strncasecmp(p, "Retry-After", 11) &&
	    *val >= '0' && *val <= '9')
		r->retry_ms = strtol(val, NULL, 10) * 1000;
	return len;
}

/* A good answer's body to ofd or omem; an error's to ebody. */
static size_t
on_body(char *p, size_t sz, size_t n, void *arg)
{
	struct s3_rq	*r = arg;
	size_t		 len = sz * n, done;
	long		 st = 0;
	ssize_t		 w;

	curl_easy_getinfo(r->c, CURLINFO_RESPONSE_CODE, &st);
	if (st / 100 != 2) {
		(void)buf_append(&r->ebody, p, len);	/* the start suffices */
		return len;
	}
	if (r->hash != NULL)
		EVP_DigestUpdate(r->hash, p, len);
	if (r->ofd >= 0)
		for (done = 0; done < len; done += (size_t)w) {
			w = pwrite(r->ofd, p + done, len - done, r->got +
			    (long long)done);
			if (w < 0 && errno == EINTR)
				w = 0;
			else if (w < 0) {
				snprintf(r->why, sizeof(r->why), "cannot "
				    "write what came: %s", strerror(errno));
				r->ours = true;
				return 0;
			}
		}
	else if (r->omem != NULL && buf_append(r->omem, p, len) == -1) {
		snprintf(r->why, sizeof(r->why), "larger than the %zu bytes "
		    "the reader takes", r->omem->max);
		r->ours = true;
		return 0;
	}
	r->got += (long long)len;
	return len;
}

/* The body, from the file's range, as curl asks for it. */
static size_t
on_read(char *p, size_t sz, size_t n, void *arg)
{
	struct s3_rq	*r = arg;
	long long	 left = r->ilen - r->ipos;
	ssize_t		 k;

	if (left <= 0)
		return 0;
	do
		k = pread(r->ifd, p, (long long)(sz * n) < left ? sz * n :
		    (size_t)left, r->ioff + r->ipos);
	while (k < 0 && errno == EINTR);
	if (k <= 0) {
		snprintf(r->why, sizeof(r->why), "the file to put %s",
		    k < 0 ? strerror(errno) : "shrank while it was sent");
		r->ours = true;
		return CURL_READFUNC_ABORT;
	}
	r->ipos += k;
	return (size_t)k;
}

/* curl rewinds when it must send the body again (a redirect, a 100). */
static int
on_seek(void *arg, curl_off_t off, int origin)
{
	struct s3_rq	*r = arg;

	if (origin != SEEK_SET || off < 0 || off > r->ilen)
		return CURL_SEEKFUNC_FAIL;
	r->ipos = (long long)off;
	return CURL_SEEKFUNC_OK;
}

/* Handles come back reset; their connections stay open for the next. */
static CURL *
pool_get(struct s3 *s)
{
	CURL	*c = NULL;

	pthread_mutex_lock(&s->lock);
	if (s->npool > 0)
		c = s->pool[--s->npool];
	pthread_mutex_unlock(&s->lock);
	if (c == NULL)
		return curl_easy_init();
	curl_easy_reset(c);
	return c;
}

static void
pool_put(struct s3 *s, CURL *c)
{
	pthread_mutex_lock(&s->lock);
	if (s->npool < POOL_MAX) {
		s->pool[s->npool++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&s->lock);
	if (c != NULL)
		curl_easy_cleanup(c);
}
