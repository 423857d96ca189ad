/* SPDX-License-Identifier: MIT */
/*
 * objstore_s3.c: the object store on any S3-compatible service (AWS, R2,
 * MinIO, B2, Garage), over libcurl, which signs each request (SigV4).
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

#include "pincer.h"
#include "s3.h"

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
static int	 mp_part(struct objstore *, struct s3_rq *, int, char *,
		    char *);
static void	 mp_abort(struct objstore *, const char *, const char *);

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

	s3_pool_free(s);
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
	struct s3_rq	 r;
	int		 rc;

	if (size > os->part_size)
		return mp_put(os, key, fd, size, sha256, m, err);
	s3_rq_init(&r, os->impl, "PUT", key);
	r.psha = r.msha = sha256;
	r.ifd = fd;
	r.ilen = size;
	rc = objstore_retry(os, s3_attempt, &r, err);
	if (rc == OS_OK) {
		*m = r.meta;
		m->size = size;
		m->mtime = (long long)time(NULL);
		snprintf(m->sha256, sizeof(m->sha256), "%s", sha256);
	}
	s3_rq_free(&r);
	return rc;
}

static int
mp_create(struct objstore *os, const char *key, const char *sha256,
    char *upload, size_t uploadsz, char *err)
{
	struct s3_rq	 r;
	struct buf	 xml;
	int		 rc;

	buf_init(&xml, EBODY_MAX);
	s3_rq_init(&r, os->impl, "POST", key);
	r.q[r.nq++] = (struct s3_param){ "uploads", "" };
	r.msha = sha256;
	r.post = "";
	r.omem = &xml;
	if ((rc = objstore_retry(os, s3_attempt, &r, err)) == OS_OK &&
	    (s3_xml_text(xml.data, xml.len, "UploadId", upload, uploadsz) ==
	    -1 || *upload == '\0')) {
		snprintf(err, OS_ERR, "%.80s: the store started a multipart "
		    "upload but gave no UploadId", key);
		rc = OS_FAIL;
	}
	s3_rq_free(&r);
	buf_free(&xml);
	return rc;
}

static int
mp_complete(struct objstore *os, const char *key, const char *upload,
    const char (*etags)[80], int n, struct os_meta *m, char *err)
{
	struct s3_rq	 r;
	struct buf	 body, xml;
	char		 sha[65];
	unsigned char	 md[32];
	unsigned int	 mdlen = 0;
	int		 rc = OS_FAIL;

	buf_init(&body, (size_t)n * 160 + 256);
	buf_init(&xml, EBODY_MAX);
	s3_rq_init(&r, os->impl, "POST", key);
	if (s3_complete_xml(&body, etags, n) == -1 ||
	    !EVP_Digest(body.data, body.len, md, &mdlen, EVP_sha256(), NULL)) {
		snprintf(err, OS_ERR, "out of memory");
		goto out;
	}
	s3_hex(md, sha);
	r.q[r.nq++] = (struct s3_param){ "uploadId", upload };
	r.psha = sha;
	r.post = body.data;
	r.postlen = body.len;
	r.omem = &xml;
	if ((rc = objstore_retry(os, s3_attempt, &r, err)) == OS_OK &&
	    s3_xml_text(xml.data, xml.len, "ETag", m->etag, sizeof(m->etag))
	    == -1)
		*m->etag = '\0';
	s3_unquote(m->etag);
out:
	s3_rq_free(&r);
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
	struct s3_rq	 r;

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
		s3_rq_init(&r, os->impl, "PUT", key);
		r.ifd = fd;
		r.ioff = i * psize;
		r.ilen = size - r.ioff < psize ? size - r.ioff : psize;
		rc = mp_part(os, &r, i + 1, upload, err);
		snprintf(etags[i], sizeof(etags[i]), "%s", r.meta.etag);
		s3_rq_free(&r);
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
mp_part(struct objstore *os, struct s3_rq *r, int pn, char *upload, char *err)
{
	char		 num[16], sha[65];
	int		 rc;

	errno = 0;
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
	if ((rc = objstore_retry(os, s3_attempt, r, err)) == OS_OK &&
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
	struct s3_rq	 r;
	char		 err[OS_ERR];
	long		 hint;

	s3_rq_init(&r, os->impl, "DELETE", key);
	r.q[r.nq++] = (struct s3_param){ "uploadId", upload };
	if (s3_attempt(&r, &hint, err) != OS_OK && r.status != 404 &&
	    r.status != 405 && r.status != 501)
		log_warn("s3 multipart upload not aborted", "where=\"%s\" "
		    "key=\"%.200s\" why=\"%s\" (its parts stay until a "
		    "lifecycle rule removes them)", os->where, key, err);
	s3_rq_free(&r);
}

static int
s_get(struct objstore *os, const char *key, int fd, struct buf *mem,
    struct os_meta *m, char *err)
{
	struct s3_rq	 r;
	unsigned char	 md[32];
	char		 sha[65];
	int		 rc;

	s3_rq_init(&r, os->impl, "GET", key);
	r.ofd = fd;
	r.omem = fd < 0 ? mem : NULL;
	if ((r.hash = EVP_MD_CTX_new()) == NULL) {
		snprintf(err, OS_ERR, "out of memory");
		return OS_FAIL;
	}
	rc = objstore_retry(os, s3_attempt, &r, err);
	if (rc == OS_OK) {
		*m = r.meta;
		m->size = r.got;
		*sha = '\0';
		if (EVP_DigestFinal_ex(r.hash, md, NULL))
			s3_hex(md, sha);
		/* A copy that differs from what was put is not handed on. */
		if (*m->sha256 != '\0' && strcmp(sha, m->sha256) != 0) {
			snprintf(err, OS_ERR, "%.80s: what came back does not "
			    "match the SHA-256 it was stored with", key);
			rc = OS_FAIL;
		}
	} else if (rc == OS_NOTFOUND)
		snprintf(err, OS_ERR, "%.200s: no such object", key);
	s3_rq_free(&r);
	return rc;
}

static int
s_head(struct objstore *os, const char *key, struct os_meta *m, char *err)
{
	struct s3_rq	 r;
	int		 rc;

	s3_rq_init(&r, os->impl, "HEAD", key);
	if ((rc = objstore_retry(os, s3_attempt, &r, err)) == OS_OK)
		*m = r.meta;
	else if (rc == OS_NOTFOUND)
		snprintf(err, OS_ERR, "%.200s: no such object", key);
	s3_rq_free(&r);
	return rc;
}

/* ListObjectsV2; after is the previous page's continuation token. */
static int
s_list(struct objstore *os, const char *prefix, const char *after,
    size_t max, int (*each)(const char *, const struct os_meta *, void *),
    void *arg, char *next, size_t nextsz, char *err)
{
	struct s3_rq	 r;
	struct buf	 xml;
	char		 num[24], why[160];
	bool		 more;
	int		 rc;

	*next = '\0';
	buf_init(&xml, XML_MAX);
	s3_rq_init(&r, os->impl, "GET", NULL);
	snprintf(num, sizeof(num), "%zu", max);
	r.q[r.nq++] = (struct s3_param){ "list-type", "2" };
	r.q[r.nq++] = (struct s3_param){ "max-keys", num };
	if (*prefix != '\0')
		r.q[r.nq++] = (struct s3_param){ "prefix", prefix };
	if (*after != '\0')
		r.q[r.nq++] = (struct s3_param){ "continuation-token", after };
	r.omem = &xml;
	if ((rc = objstore_retry(os, s3_attempt, &r, err)) == OS_OK &&
	    s3_parse_list(xml.data, xml.len, each, arg, &more, next, nextsz,
	    why, sizeof(why)) == -1) {
		snprintf(err, OS_ERR, "list %.80s: the store's answer is not "
		    "a ListObjectsV2 page: %.100s", prefix, why);
		rc = OS_FAIL;
	}
	s3_rq_free(&r);
	buf_free(&xml);
	return rc;
}

/* S3 answers 204 for a missing key too; 404 is taken as done as well. */
static int
s_del(struct objstore *os, const char *key, char *err)
{
	struct s3_rq	 r;
	int		 rc;

	s3_rq_init(&r, os->impl, "DELETE", key);
	rc = objstore_retry(os, s3_attempt, &r, err);
	s3_rq_free(&r);
	if (rc == OS_NOTFOUND) {
		*err = '\0';
		rc = OS_OK;
	}
	return rc;
}
