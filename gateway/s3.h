/* SPDX-License-Identifier: MIT */
/*
 * s3.h: the s3 backend's own header, shared by its three files and its
 * tests only (pincer.h holds what the rest of pincerd uses): objstore_s3.c
 * the operations, s3_req.c one signed request, s3_proto.c the protocol's
 * pure pieces.
 */
#ifndef S3_H
#define S3_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "pincer.h"

/* s3_proto.c: URL encoding as SigV4 wants it, the few XML answers S3
 * gives; nothing here touches the network. */

#define S3_EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct s3_param {
	const char	*name;		/* unreserved characters only */
	const char	*value;		/* any bytes; "" is sent as "name=" */
};

/* RFC 3986: every byte but A-Z a-z 0-9 - _ . ~ (and '/' when slash) as
 * %XX, uppercase hex. */
int	 s3_encode(struct buf *, const char *s, bool slash);
/* The query SigV4 signs: sorted by name, encoded, "a=1&b=&c=3". curl 7.88
 * signs the query as it is sent, so it must be sent this way. -1: a name
 * with a reserved character, or the buffer is full. Sorts p in place. */
int	 s3_query(struct buf *, struct s3_param *p, size_t n);
/* XML text with its five named entities and &#N; / &#xN; undone, into
 * out; -1: an unknown or broken entity, a NUL, or out is too small. */
int	 s3_xml_unescape(const char *s, size_t n, char *out, size_t outsz);
/* The text of the first <tag> element in xml[0..len), unescaped; -1 when
 * there is none or it is broken. */
int	 s3_xml_text(const char *xml, size_t len, const char *tag, char *out,
	    size_t outsz);
/* An <Error>: its Code and Message ("" when absent); -1 when xml is not
 * an error document. */
int	 s3_parse_error(const char *xml, size_t len, char *code, size_t codesz,
	    char *msg, size_t msgsz);
/*
 * A ListObjectsV2 page: each() for every <Contents> in order (key, size,
 * etag without its quotes, mtime; sha256 ""), *truncated from IsTruncated,
 * next from NextContinuationToken ("" at the end). 0 done, 1 each() asked
 * to stop, -1 not a list page (err says why).
 */
int	 s3_parse_list(const char *xml, size_t len,
	    int (*each)(const char *, const struct os_meta *, void *),
	    void *arg, bool *truncated, char *next, size_t nextsz, char *err,
	    size_t errsz);
/* "2026-12-02T13:20:00.000Z" as seconds since the epoch; -1 if not. */
long long s3_iso8601(const char *);
/* SHA-256 of len bytes of fd from off (pread), lowercase hex. */
int	 s3_sha256_range(int fd, long long off, long long len, char out[65]);
/* The CompleteMultipartUpload body for parts 1..n with these ETags. */
int	 s3_complete_xml(struct buf *, const char (*etags)[80], int n);
/* "abc" → abc, in place; anything else is left as it is. */
void	 s3_unquote(char *);
/* 32 bytes of digest as 64 lowercase hex digits and a NUL. */
void	 s3_hex(const unsigned char *md, char *out);

/* s3_req.c: one request, signed by curl, with its answer classified. */
#define POOL_MAX	4		/* idle handles kept (with connections) */
#define XML_MAX		(16 << 20)	/* a list page is ~1.5 MB at most */
#define EBODY_MAX	(64 << 10)
#define PARTS_MAX	10000		/* S3's limit per upload */

struct s3 {
	char		*base;		/* the bucket's URL, no '/' at its end */
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

/* One request, and what came back (an attempt resets that). The caller
 * fills the first part after s3_rq_init. */
struct s3_rq {
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
	int		 ofd;		/* a good answer's body to this file */
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
void	 s3_rq_init(struct s3_rq *, struct s3 *, const char *method,
	    const char *key);
void	 s3_rq_free(struct s3_rq *);
/* One try of a struct s3_rq, for objstore_retry: OS_OK (2xx), OS_NOTFOUND
 * (404), OS_RETRY (transient; *retry_ms from Retry-After), OS_FAIL. */
int	 s3_attempt(void *rq, long *retry_ms, char *err);
void	 s3_pool_free(struct s3 *);

#endif
