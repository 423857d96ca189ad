/* SPDX-License-Identifier: MIT */
/*
 * objstore_s3.c: the object store on any S3-compatible service (AWS, R2,
 * MinIO, B2, Garage), over libcurl, which signs each request (SigV4).
 *
 * What curl 7.88 needs from us (docs/objstore-research.md §1): it neither
 * hashes a streamed body nor adds x-amz-content-sha256, so every request
 * carries that header with the body's real SHA-256 (hashed from the file
 * before it is sent); and it signs the path and query as sent, so both go
 * out already canonical (s3_proto.c). It signs every header we add, so we
 * add no blank "Expect:" and no X-Amz-Date.
 *
 * An object's SHA-256 is kept as x-amz-meta-sha256 and read back by head
 * and get. A list page carries no user metadata, so list gives sha256 ""
 * (a head per key would cost a request each).
 *
 * Bodies stream: a put reads its file (or each part of it) with pread as
 * curl asks, a get writes as bytes come. Nothing holds a whole object but
 * a get into memory, whose buffer's maximum caps it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "pincer.h"
#include "s3_proto.h"

#define POOL_MAX	4		/* idle handles kept, with connections */
#define XML_MAX		(16 << 20)	/* a list page is ~1.5 MB at most */
#define EBODY_MAX	(64 << 10)
#define PARTS_MAX	10000		/* S3's limit per upload */

struct s3 {
	char		*base;		/* the bucket's URL, no '/' at the end */
	char		*bucket;
	bool		 virt;		/* bucket in the host name */
	char		*akey;		/* owned; wiped when freed */
	char		*skey;		/* owned; wiped when freed */
	char		 sigv4[96];
	long		 timeout_s;
	pthread_mutex_t	 lock;		/* for the pool */
	CURL		*pool[POOL_MAX];
	int		 npool;
};

/* One request, and what came back; an attempt resets the latter. */
struct rq {
	struct s3	*s3;
	CURL		*c;
	const char	*method;
	const char	*key;		/* NULL: the bucket */
	struct s3_param	 q[4];
	size_t		 nq;
	const char	*psha;		/* the payload's SHA-256 */
	const char	*msha;		/* x-amz-meta-sha256 to keep, or NULL */
	int		 ifd;		/* a body from this file's range */
	long long	 ioff, ilen, ipos;
	const char	*post;		/* or these bytes */
	size_t		 postlen;
	int		 ofd;		/* a good answer's body into this file */
	struct buf	*omem;		/* or here */
	EVP_MD_CTX	*hash;		/* of what ofd or omem got */
	long long	 got;
	struct buf	 ebody;		/* an error's XML */
	long		 status;
	long		 retry_ms;
	bool		 ours;		/* a callback stopped the transfer */
	char		 why[96];
	char		 cerr[CURL_ERROR_SIZE];
	struct os_meta	 meta;		/* from the headers */
};

static int	 s_put(struct objstore *, const char *, int, long long,
		    const char *, struct os_meta *, char *);
static int	 s_get(struct objstore *, const char *, int, struct buf *,
		    struct os_meta *, char *);
static int	 s_head(struct objstore *, const char *, struct os_meta *,
		    char *);
static int	 s_list(struct objstore *, const char *, const char *, size_t,
		    int (*)(const char *, const struct os_meta *, void *),
		    void *, char *, size_t, char *);
static int	 s_del(struct objstore *, const char *, char *);
static void	 s_free(struct objstore *);
static int	 load_secret(const char *, const char *, char **, char *);
static int	 base_url(struct s3 *, const struct config *, char *);
static int	 mp_put(struct objstore *, const char *, int, long long,
		    const char *, struct os_meta *, char *);
static int	 mp_part(struct objstore *, struct rq *, int, char *,
		    char *);
static void	 mp_abort(struct objstore *, const char *, const char *);
static void	 rq_init(struct rq *, struct s3 *, const char *,
		    const char *);
static void	 rq_free(struct rq *);
static int	 attempt(void *, long *, char *);
static int	 perform(struct rq *, char *);
static int	 setup(struct rq *, const char *, struct curl_slist *);
static struct curl_slist *headers(const struct rq *);
static int	 classify(struct rq *, CURLcode, char *);
static const char *hint(long, const char *);
static bool	 transient(CURLcode);
static size_t	 on_header(char *, size_t, size_t, void *);
static size_t	 on_body(char *, size_t, size_t, void *);
static size_t	 on_read(char *, size_t, size_t, void *);
static int	 on_seek(void *, curl_off_t, int);
static CURL	*pool_get(struct s3 *);
static void	 pool_put(struct s3 *, CURL *);
static void	 hex_of(const unsigned char *, char *);

static const struct objstore_ops s3_ops = {
	"s3", s_put, s_get, s_head, s_list, s_del, s_free,
};

int
objstore_s3_init(struct objstore *os, const struct config *c, char *err)
{
	struct s3	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, OS_ERR, "out of memory");
		return -1;
	}
	pthread_mutex_init(&s->lock, NULL);
	s->timeout_s = c->os_timeout_s;
	s->virt = c->os_url_style == 1;
	snprintf(s->sigv4, sizeof(s->sigv4), "aws:amz:%.40s:s3",
	    c->os_region);
	if (base_url(s, c, err) == -1 ||
	    load_secret(c->os_access_key, "objstore.access_key_id", &s->akey,
	    err) == -1 ||
	    load_secret(c->os_secret_key, "objstore.secret_access_key",
	    &s->skey, err) == -1) {
		os->impl = s;
		s_free(os);
		os->impl = NULL;
		return -1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	os->ops = &s3_ops;
	os->impl = s;
	snprintf(os->where, sizeof(os->where), "s3 bucket %.80s at %.150s",
	    c->os_bucket, c->os_endpoint);
	return 0;
}

static void
s_free(struct objstore *os)
{
	struct s3	*s = os->impl;
	int		 i;

	for (i = 0; i < s->npool; i++)
		curl_easy_cleanup(s->pool[i]);
	if (s->akey != NULL)
		explicit_bzero(s->akey, strlen(s->akey));
	if (s->skey != NULL)
		explicit_bzero(s->skey, strlen(s->skey));
	free(s->akey);
	free(s->skey);
	free(s->base);
	free(s->bucket);
	pthread_mutex_destroy(&s->lock);
	if (os->ops == &s3_ops)		/* not when init failed */
		curl_global_cleanup();
	free(s);
}

/* A secret by name into *out (owned); its value never reaches err. */
static int
load_secret(const char *name, const char *opt, char **out, char *err)
{
	struct buf	 b;
	size_t		 n;

	buf_init(&b, SECRETS_MAX + 64);
	if (secrets_get(name, &b) == -1 || b.len == 0) {
		snprintf(err, OS_ERR, "the s3 backend needs the secret \"%s\" "
		    "(%s): set it with `pincer secret set %s`", name, opt,
		    name);
		buf_free(&b);
		return -1;
	}
	/* A value typed with echo(1) ends in a newline no key has. */
	for (n = b.len; n > 0 && strchr(" \t\r\n", b.data[n - 1]); n--)
		b.data[n - 1] = '\0';
	*out = strdup(b.data);
	explicit_bzero(b.data, b.cap);
	buf_free(&b);
	if (*out == NULL) {
		snprintf(err, OS_ERR, "out of memory");
		return -1;
	}
	return 0;
}

/* Path style: ENDPOINT/BUCKET; virtual: SCHEME://BUCKET.HOST[:PORT]. */
static int
base_url(struct s3 *s, const struct config *c, char *err)
{
	const char	*ep = c->os_endpoint, *host;
	struct buf	 b;
	size_t		 n = strlen(ep);
	int		 rc;

	while (n > 0 && ep[n - 1] == '/')
		n--;
	if ((host = strstr(ep, "://")) == NULL || (size_t)(host - ep) > n) {
		snprintf(err, OS_ERR, "objstore.endpoint %.120s: expected "
		    "http(s)://HOST[:PORT]", ep);
		return -1;
	}
	host += 3;
	buf_init(&b, 4096);
	if (s->virt)
		rc = buf_printf(&b, "%.*s%s.%.*s", (int)(host - ep), ep,
		    c->os_bucket, (int)(n - (size_t)(host - ep)), host);
	else if ((rc = buf_printf(&b, "%.*s/", (int)n, ep)) == 0)
		rc = s3_encode(&b, c->os_bucket, false);
	if (rc == -1 || (s->base = buf_steal(&b)) == NULL ||
	    (s->bucket = strdup(c->os_bucket)) == NULL) {
		buf_free(&b);
		snprintf(err, OS_ERR, "out of memory");
		return -1;
	}
	return 0;
}

/* One PUT up to part_size, else a multipart upload. */
static int
s_put(struct objstore *os, const char *key, int fd, long long size,
    const char *sha256, struct os_meta *m, char *err)
{
	struct rq	 r;
	int		 rc;

	if (size > os->part_size)
		return mp_put(os, key, fd, size, sha256, m, err);
	rq_init(&r, os->impl, "PUT", key);
	r.psha = r.msha = sha256;
	r.ifd = fd;
	r.ilen = size;
	rc = objstore_retry(os, attempt, &r, err);
	if (rc == OS_OK) {
		*m = r.meta;
		m->size = size;
		m->mtime = (long long)time(NULL);
		snprintf(m->sha256, sizeof(m->sha256), "%s", sha256);
	}
	rq_free(&r);
	return rc;
}

static int
mp_create(struct objstore *os, const char *key, const char *sha256,
    char *upload, size_t uploadsz, char *err)
{
	struct rq	 r;
	struct buf	 xml;
	int		 rc;

	buf_init(&xml, EBODY_MAX);
	rq_init(&r, os->impl, "POST", key);
	r.q[r.nq++] = (struct s3_param){ "uploads", "" };
	r.msha = sha256;
	r.post = "";
	r.omem = &xml;
	if ((rc = objstore_retry(os, attempt, &r, err)) == OS_OK &&
	    (s3_xml_text(xml.data, xml.len, "UploadId", upload, uploadsz) ==
	    -1 || *upload == '\0')) {
		snprintf(err, OS_ERR, "%.80s: the store started a multipart "
		    "upload but gave no UploadId", key);
		rc = OS_FAIL;
	}
	rq_free(&r);
	buf_free(&xml);
	return rc;
}

static int
mp_complete(struct objstore *os, const char *key, const char *upload,
    const char (*etags)[80], int n, struct os_meta *m, char *err)
{
	struct rq	 r;
	struct buf	 body, xml;
	char		 sha[65];
	unsigned char	 md[32];
	unsigned int	 mdlen = 0;
	int		 rc = OS_FAIL;

	buf_init(&body, (size_t)n * 160 + 256);
	buf_init(&xml, EBODY_MAX);
	rq_init(&r, os->impl, "POST", key);
	if (s3_complete_xml(&body, etags, n) == -1 ||
	    !EVP_Digest(body.data, body.len, md, &mdlen, EVP_sha256(), NULL)) {
		snprintf(err, OS_ERR, "out of memory");
		goto out;
	}
	hex_of(md, sha);
	r.q[r.nq++] = (struct s3_param){ "uploadId", upload };
	r.psha = sha;
	r.post = body.data;
	r.postlen = body.len;
	r.omem = &xml;
	if ((rc = objstore_retry(os, attempt, &r, err)) == OS_OK &&
	    s3_xml_text(xml.data, xml.len, "ETag", m->etag, sizeof(m->etag))
	    == -1)
		*m->etag = '\0';
out:
	rq_free(&r);
	buf_free(&body);
	buf_free(&xml);
	return rc;
}

/*
 * S3 §"Multipart upload limits": at most 10,000 parts, so a very large
 * object gets larger parts. An upload that fails is aborted, or its parts
 * would be kept (and billed) until a lifecycle rule removes them.
 */
static int
mp_put(struct objstore *os, const char *key, int fd, long long size,
    const char *sha256, struct os_meta *m, char *err)
{
	char		 upload[512];
	char		(*etags)[80];
	long long	 psize = os->part_size;
	int		 i, n, rc;
	struct rq	 r;

	if ((size + psize - 1) / psize > PARTS_MAX)
		psize = (size + PARTS_MAX - 1) / PARTS_MAX;
	n = (int)((size + psize - 1) / psize);
	if ((etags = calloc((size_t)n, sizeof(*etags))) == NULL) {
		snprintf(err, OS_ERR, "out of memory");
		return OS_FAIL;
	}
	memset(m, 0, sizeof(*m));
	if ((rc = mp_create(os, key, sha256, upload, sizeof(upload), err)) !=
	    OS_OK) {
		free(etags);
		return rc;
	}
	for (i = 0; i < n && rc == OS_OK; i++) {
		rq_init(&r, os->impl, "PUT", key);
		r.ifd = fd;
		r.ioff = i * psize;
		r.ilen = size - r.ioff < psize ? size - r.ioff : psize;
		rc = mp_part(os, &r, i + 1, upload, err);
		snprintf(etags[i], sizeof(etags[i]), "%s", r.meta.etag);
		rq_free(&r);
	}
	if (rc == OS_OK)
		rc = mp_complete(os, key, upload, (const char (*)[80])etags, n,
		    m, err);
	if (rc != OS_OK)
		mp_abort(os, key, upload);
	free(etags);
	if (rc == OS_OK) {
		m->size = size;
		m->mtime = (long long)time(NULL);
		snprintf(m->sha256, sizeof(m->sha256), "%s", sha256);
	}
	return rc;
}

/* Part number pn: hashed from the file, then sent, both with pread. */
static int
mp_part(struct objstore *os, struct rq *r, int pn, char *upload, char *err)
{
	char		 num[16], sha[65];
	int		 rc;

	if (s3_sha256_range(r->ifd, r->ioff, r->ilen, sha) == -1) {
		snprintf(err, OS_ERR, "%.80s: cannot read part %d of what to "
		    "put: %s", r->key, pn, errno != 0 ? strerror(errno) :
		    "it shrank while read");
		return OS_FAIL;
	}
	snprintf(num, sizeof(num), "%d", pn);
	r->q[r->nq++] = (struct s3_param){ "partNumber", num };
	r->q[r->nq++] = (struct s3_param){ "uploadId", upload };
	r->psha = sha;
	if ((rc = objstore_retry(os, attempt, r, err)) == OS_OK &&
	    *r->meta.etag == '\0') {
		snprintf(err, OS_ERR, "%.80s: the store gave no ETag for part "
		    "%d", r->key, pn);
		rc = OS_FAIL;
	}
	return rc;
}

/* Best effort, once: s3rver answers 405 (it has no abort). */
static void
mp_abort(struct objstore *os, const char *key, const char *upload)
{
	struct rq	 r;
	char		 err[OS_ERR];
	long		 hint;

	rq_init(&r, os->impl, "DELETE", key);
	r.q[r.nq++] = (struct s3_param){ "uploadId", upload };
	if (attempt(&r, &hint, err) != OS_OK && r.status != 404 &&
	    r.status != 405 && r.status != 501)
		log_warn("s3 multipart upload not aborted", "where=\"%s\" "
		    "key=\"%.200s\" why=\"%s\" (its parts stay until a "
		    "lifecycle rule removes them)", os->where, key, err);
	rq_free(&r);
}

static int
s_get(struct objstore *os, const char *key, int fd, struct buf *mem,
    struct os_meta *m, char *err)
{
	struct rq	 r;
	unsigned char	 md[32];
	char		 sha[65];
	int		 rc;

	rq_init(&r, os->impl, "GET", key);
	r.ofd = fd;
	r.omem = fd < 0 ? mem : NULL;
	if ((r.hash = EVP_MD_CTX_new()) == NULL) {
		snprintf(err, OS_ERR, "out of memory");
		return OS_FAIL;
	}
	rc = objstore_retry(os, attempt, &r, err);
	if (rc == OS_OK) {
		*m = r.meta;
		m->size = r.got;
		*sha = '\0';
		if (EVP_DigestFinal_ex(r.hash, md, NULL))
			hex_of(md, sha);
		/* A copy that differs from what was put is not handed on. */
		if (*m->sha256 != '\0' && strcmp(sha, m->sha256) != 0) {
			snprintf(err, OS_ERR, "%.80s: what came back does not "
			    "match the SHA-256 it was stored with", key);
			rc = OS_FAIL;
		}
	} else if (rc == OS_NOTFOUND)
		snprintf(err, OS_ERR, "%.200s: no such object", key);
	rq_free(&r);
	return rc;
}

static int
s_head(struct objstore *os, const char *key, struct os_meta *m, char *err)
{
	struct rq	 r;
	int		 rc;

	rq_init(&r, os->impl, "HEAD", key);
	if ((rc = objstore_retry(os, attempt, &r, err)) == OS_OK)
		*m = r.meta;
	else if (rc == OS_NOTFOUND)
		snprintf(err, OS_ERR, "%.200s: no such object", key);
	rq_free(&r);
	return rc;
}

/* ListObjectsV2; after is the previous page's continuation token. */
static int
s_list(struct objstore *os, const char *prefix, const char *after,
    size_t max, int (*each)(const char *, const struct os_meta *, void *),
    void *arg, char *next, size_t nextsz, char *err)
{
	struct rq	 r;
	struct buf	 xml;
	char		 num[24], why[160];
	bool		 more;
	int		 rc;

	*next = '\0';
	buf_init(&xml, XML_MAX);
	rq_init(&r, os->impl, "GET", NULL);
	snprintf(num, sizeof(num), "%zu", max);
	r.q[r.nq++] = (struct s3_param){ "list-type", "2" };
	r.q[r.nq++] = (struct s3_param){ "max-keys", num };
	if (*prefix != '\0')
		r.q[r.nq++] = (struct s3_param){ "prefix", prefix };
	if (*after != '\0')
		r.q[r.nq++] = (struct s3_param){ "continuation-token", after };
	r.omem = &xml;
	if ((rc = objstore_retry(os, attempt, &r, err)) == OS_OK &&
	    s3_parse_list(xml.data, xml.len, each, arg, &more, next, nextsz,
	    why, sizeof(why)) == -1) {
		snprintf(err, OS_ERR, "list %.80s: the store's answer is not "
		    "a ListObjectsV2 page: %.100s", prefix, why);
		rc = OS_FAIL;
	}
	rq_free(&r);
	buf_free(&xml);
	return rc;
}

/* S3 answers 204 for a missing key too; 404 is taken as done as well. */
static int
s_del(struct objstore *os, const char *key, char *err)
{
	struct rq	 r;
	int		 rc;

	rq_init(&r, os->impl, "DELETE", key);
	rc = objstore_retry(os, attempt, &r, err);
	rq_free(&r);
	if (rc == OS_NOTFOUND) {
		*err = '\0';
		rc = OS_OK;
	}
	return rc;
}

static void
rq_init(struct rq *r, struct s3 *s, const char *method, const char *key)
{
	memset(r, 0, sizeof(*r));
	r->s3 = s;
	r->method = method;
	r->key = key;
	r->psha = S3_EMPTY_SHA256;
	r->ifd = r->ofd = -1;
	buf_init(&r->ebody, EBODY_MAX);
}

static void
rq_free(struct rq *r)
{
	buf_free(&r->ebody);
	EVP_MD_CTX_free(r->hash);
	r->hash = NULL;
}

/* One try for objstore_retry: what a failed try left is undone first. */
static int
attempt(void *arg, long *retry_ms, char *err)
{
	struct rq	*r = arg;
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

static int
perform(struct rq *r, char *err)
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
headers(const struct rq *r)
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
setup(struct rq *r, const char *url, struct curl_slist *h)
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
classify(struct rq *r, CURLcode cc, char *err)
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
	struct rq	*r = arg;
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
	struct rq	*r = arg;
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
	struct rq	*r = arg;
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
	struct rq	*r = arg;

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

static void
hex_of(const unsigned char *md, char *out)
{
	static const char hex[] = "0123456789abcdef";
	int		 i;

	for (i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}
