/* SPDX-License-Identifier: MIT */
/*
 * s3_proto.h: the pure pieces of the S3 protocol that objstore_s3.c speaks
 * (s3_proto.c): URL encoding as SigV4 wants it, and the few XML answers S3
 * gives. Kept apart from pincer.h so the unit test and the fuzz target can
 * reach them; nothing here touches the network.
 */
#ifndef S3_PROTO_H
#define S3_PROTO_H

#include <stdbool.h>
#include <stddef.h>

struct buf;
struct os_meta;

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

#endif
