/* SPDX-License-Identifier: MIT */
/*
 * s3_proto.c: the S3 protocol's pure pieces for objstore_s3.c: SigV4's URL
 * encoding and canonical query, and a small XML reader for the three
 * answers pincer reads (ListObjectsV2, an Error, a multipart upload's id).
 *
 * The XML reader is not a general one, and need not be: S3's answers are
 * flat records whose text never holds a raw '<' (it is escaped), so an
 * element is found by its tag and read up to its closing tag. Every length
 * is checked against the end of the document, never a NUL.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "s3.h"

static const char	*xml_find(const char *, const char *, const char *,
			    size_t *, const char **);
static int		 entity(const char *, size_t, unsigned long *,
			    size_t *);
static size_t		 utf8_put(unsigned long, char *);
static int		 contents(const char *, size_t, struct os_meta *,
			    char *, size_t);
static int		 param_cmp(const void *, const void *);
static bool		 unreserved(const char *);

static const struct {
	const char	*name;
	char		 c;
} named[] = {
	{ "amp", '&' }, { "lt", '<' }, { "gt", '>' }, { "quot", '"' },
	{ "apos", '\'' },
};

int
s3_encode(struct buf *b, const char *s, bool slash)
{
	return url_encode(b, s, slash ? "/" : NULL);
}

/*
 * SigV4 §"Create a canonical request": parameters sorted by name, names
 * and values URI-encoded, and "name=" even without a value ("uploads=").
 * Our names are fixed words, so sorting the raw names sorts the encoded.
 */
int
s3_query(struct buf *b, struct s3_param *p, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (!unreserved(p[i].name))
			return -1;
	qsort(p, n, sizeof(*p), param_cmp);
	for (i = 0; i < n; i++)
		if ((i > 0 && buf_puts(b, "&") == -1) ||
		    buf_puts(b, p[i].name) == -1 || buf_puts(b, "=") == -1 ||
		    s3_encode(b, p[i].value, false) == -1)
			return -1;
	return 0;
}

int
s3_xml_unescape(const char *s, size_t n, char *out, size_t outsz)
{
	unsigned long	 cp;
	size_t		 i, o = 0, used;
	char		 u[4];
	size_t		 k;

	for (i = 0; i < n; i += used) {
		used = 1;
		k = 1;
		u[0] = s[i];
		if (s[i] == '\0')
			return -1;
		if (s[i] == '&') {
			if (entity(s + i, n - i, &cp, &used) == -1)
				return -1;
			k = utf8_put(cp, u);
		}
		if (o + k >= outsz)
			return -1;
		memcpy(out + o, u, k);
		o += k;
	}
	if (o >= outsz)
		return -1;
	out[o] = '\0';
	return 0;
}

int
s3_xml_text(const char *xml, size_t len, const char *tag, char *out,
    size_t outsz)
{
	const char	*t;
	size_t		 n;

	if ((t = xml_find(xml, xml + len, tag, &n, NULL)) == NULL)
		return -1;
	return s3_xml_unescape(t, n, out, outsz);
}

int
s3_parse_error(const char *xml, size_t len, char *code, size_t codesz,
    char *msg, size_t msgsz)
{
	const char	*e;
	size_t		 n;

	*code = *msg = '\0';
	if ((e = xml_find(xml, xml + len, "Error", &n, NULL)) == NULL)
		return -1;
	if (s3_xml_text(e, n, "Code", code, codesz) == -1)
		*code = '\0';
	if (s3_xml_text(e, n, "Message", msg, msgsz) == -1)
		*msg = '\0';
	return 0;
}

int
s3_parse_list(const char *xml, size_t len,
    int (*each)(const char *, const struct os_meta *, void *), void *arg,
    bool *truncated, char *next, size_t nextsz, char *err, size_t errsz)
{
	const char	*end = xml + len, *p = xml, *c;
	char		 key[2048], flag[8];
	struct os_meta	 m;
	size_t		 n;

	*next = '\0';
	*truncated = false;
	if (xml_find(xml, end, "ListBucketResult", &n, NULL) == NULL) {
		snprintf(err, errsz, "no ListBucketResult in the answer");
		return -1;
	}
	if (s3_xml_text(xml, len, "IsTruncated", flag, sizeof(flag)) == 0)
		*truncated = !strcmp(flag, "true");
	if (*truncated && s3_xml_text(xml, len, "NextContinuationToken",
	    next, nextsz) == -1) {
		snprintf(err, errsz, "a truncated page without a usable "
		    "NextContinuationToken");
		return -1;
	}
	while ((c = xml_find(p, end, "Contents", &n, &p)) != NULL) {
		if (contents(c, n, &m, key, sizeof(key)) == -1) {
			snprintf(err, errsz, "a Contents entry without a "
			    "usable Key, Size or LastModified");
			return -1;
		}
		if (each(key, &m, arg) != 0)
			return 1;
	}
	return 0;
}

/* S3 writes LastModified as UTC with milliseconds; the seconds suffice. */
long long
s3_iso8601(const char *s)
{
	struct tm	 tm;
	int		 used = 0;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
	    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6 ||
	    used != 19 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
	    tm.tm_sec > 60)
		return -1;
	s += used;
	if (*s == '.')
		for (s++; *s >= '0' && *s <= '9'; s++)
			;
	if (strcmp(s, "Z") != 0)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (long long)timegm(&tm);
}

int
s3_sha256_range(int fd, long long off, long long len, char out[65])
{
	unsigned char	 md[32];
	char		*b;
	EVP_MD_CTX	*ctx;
	ssize_t		 n;
	unsigned int	 mdlen = 0;
	int		 rc = -1;

	if ((b = malloc(1 << 17)) == NULL)
		return -1;
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		goto out;
	while (len > 0) {
		n = pread(fd, b, len < (1 << 17) ? (size_t)len : (1 << 17),
		    off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)	/* shorter than said: it changed under us */
			goto out;
		EVP_DigestUpdate(ctx, b, (size_t)n);
		off += n;
		len -= n;
	}
	if (!EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen != 32)
		goto out;
	s3_hex(md, out);
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	free(b);
	return rc;
}

void
s3_hex(const unsigned char *md, char *out)
{
	static const char hex[] = "0123456789abcdef";
	int		 i;

	for (i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}

/* An ETag comes in double quotes, which are not part of its value. */
void
s3_unquote(char *s)
{
	size_t	 k = strlen(s);

	if (k >= 2 && s[0] == '"' && s[k - 1] == '"') {
		memmove(s, s + 1, k - 2);
		s[k - 2] = '\0';
	}
}

/* ETags are quoted hex from the store; escaped anyway, as XML text. */
int
s3_complete_xml(struct buf *b, const char (*etags)[80], int n)
{
	const char	*e;
	int		 i;

	if (buf_puts(b, "<CompleteMultipartUpload>") == -1)
		return -1;
	for (i = 0; i < n; i++) {
		if (buf_printf(b, "<Part><PartNumber>%d</PartNumber><ETag>",
		    i + 1) == -1)
			return -1;
		for (e = etags[i]; *e != '\0'; e++)
			if ((*e == '&' ? buf_puts(b, "&amp;") : *e == '<' ?
			    buf_puts(b, "&lt;") : *e == '>' ? buf_puts(b,
			    "&gt;") : buf_append(b, e, 1)) == -1)
				return -1;
		if (buf_puts(b, "</ETag></Part>") == -1)
			return -1;
	}
	return buf_puts(b, "</CompleteMultipartUpload>");
}

/*
 * The content of the first element named tag in [p, end): *len bytes from
 * the returned pointer; *after (if not NULL) just past its closing tag.
 * <tag/> has empty content. NULL: none, or it is never closed.
 */
static const char *
xml_find(const char *p, const char *end, const char *tag, size_t *len,
    const char **after)
{
	size_t		 tl = strlen(tag);
	const char	*gt, *body, *q;

	while (p < end && (p = memchr(p, '<', (size_t)(end - p))) != NULL) {
		p++;
		if ((size_t)(end - p) <= tl || memcmp(p, tag, tl) != 0 ||
		    p[tl] == '\0' || strchr(">/ \t\r\n", p[tl]) == NULL)
			continue;
		if ((gt = memchr(p + tl, '>', (size_t)(end - p - tl))) == NULL)
			return NULL;
		body = gt + 1;
		if (gt[-1] == '/') {
			*len = 0;
			if (after != NULL)
				*after = body;
			return body;
		}
		for (q = body; q < end &&
		    (q = memchr(q, '<', (size_t)(end - q))) != NULL; q++)
			if ((size_t)(end - q) >= tl + 3 && q[1] == '/' &&
			    memcmp(q + 2, tag, tl) == 0 && q[tl + 2] == '>') {
				*len = (size_t)(q - body);
				if (after != NULL)
					*after = q + tl + 3;
				return body;
			}
		return NULL;
	}
	return NULL;
}

/* One entity at s ('&' first): its code point and its length with ';'. */
static int
entity(const char *s, size_t n, unsigned long *cp, size_t *used)
{
	static const char digits[] = "0123456789abcdef";
	const char	*semi, *d;
	size_t		 k, i;
	bool		 hex;

	if ((semi = memchr(s, ';', n < 12 ? n : 12)) == NULL)
		return -1;
	k = (size_t)(semi - s) - 1;	/* the name's length */
	*used = k + 2;
	for (i = 0; i < sizeof(named) / sizeof(named[0]); i++)
		if (strlen(named[i].name) == k &&
		    memcmp(s + 1, named[i].name, k) == 0) {
			*cp = (unsigned char)named[i].c;
			return 0;
		}
	if (k < 2 || s[1] != '#')
		return -1;
	hex = s[2] == 'x';
	*cp = 0;
	for (i = hex ? 3 : 2; i <= k; i++) {
		d = strchr(digits, s[i] >= 'A' && s[i] <= 'F' ? s[i] + 32 :
		    s[i]);
		if (s[i] == '\0' || d == NULL || d - digits >= (hex ? 16 : 10))
			return -1;
		*cp = *cp * (hex ? 16 : 10) + (unsigned long)(d - digits);
		if (*cp > 0x10ffff)
			return -1;
	}
	if (*cp == 0 || (*cp >= 0xd800 && *cp <= 0xdfff))
		return -1;
	return 0;
}

static size_t
utf8_put(unsigned long cp, char *u)
{
	if (cp < 0x80) {
		u[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	u[0] = (char)(0xf0 | cp >> 18);
	u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	u[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* One <Contents>: Key, Size and LastModified are required, ETag not. */
static int
contents(const char *c, size_t n, struct os_meta *m, char *key,
    size_t keysz)
{
	char		 num[32], when[40], *e;

	memset(m, 0, sizeof(*m));
	if (s3_xml_text(c, n, "Key", key, keysz) == -1 || *key == '\0' ||
	    s3_xml_text(c, n, "Size", num, sizeof(num)) == -1 ||
	    s3_xml_text(c, n, "LastModified", when, sizeof(when)) == -1)
		return -1;
	errno = 0;
	m->size = strtoll(num, &e, 10);
	if (*num < '0' || *num > '9' || *e != '\0' || errno != 0 ||
	    (m->mtime = s3_iso8601(when)) == -1)
		return -1;
	if (s3_xml_text(c, n, "ETag", m->etag, sizeof(m->etag)) == -1)
		*m->etag = '\0';
	s3_unquote(m->etag);
	return 0;
}

static int
param_cmp(const void *a, const void *b)
{
	const struct s3_param	*x = a, *y = b;
	int			 c = strcmp(x->name, y->name);

	return c != 0 ? c : strcmp(x->value, y->value);
}

static bool
unreserved(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || strchr("-_.~", *s) != NULL))
			return false;
	return true;
}
