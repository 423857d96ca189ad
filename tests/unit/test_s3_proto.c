/* SPDX-License-Identifier: MIT */
/* test_s3_proto.c: the s3 backend's pure pieces (s3_proto.c): encoding,
 * the canonical query, and the XML it reads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "s3.h"
#include "tap.h"

static struct buf	 seen;
static int		 stop_at = -1;

static void	 test_encode(void);
static void	 test_query(void);
static void	 test_unescape(void);
static void	 test_text(void);
static void	 test_error(void);
static void	 test_list(void);
static void	 test_misc(void);

static const char	*enc(const char *, bool);
static const char	*query(struct s3_param *, size_t);
static const char	*unesc(const char *);
static int		 list(const char *, bool *, char *, size_t, char *);

/* A page as S3 writes it: XML declaration, namespace, entity-escaped
 * keys and ETags, an Owner inside Contents, a KeyCount next to Key. */
static const char page1[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<Name>pincer</Name><Prefix>d/</Prefix><KeyCount>3</KeyCount>"
    "<MaxKeys>3</MaxKeys><IsTruncated>true</IsTruncated>"
    "<ContinuationToken>old</ContinuationToken>\n"
    "<NextContinuationToken>15Gev+hWmBQ9/rHSz7U=</NextContinuationToken>"
    "<Contents><Key>d/a &amp; b.txt</Key>"
    "<LastModified>2026-12-02T13:20:00.000Z</LastModified>"
    "<ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag>"
    "<Size>11</Size><Owner><ID>x</ID><DisplayName>y</DisplayName></Owner>"
    "<StorageClass>STANDARD</StorageClass></Contents>\n"
    "<Contents>\n  <Key>d/&lt;x&gt; &#233;&#x2713;&apos;&quot;</Key>\n"
    "  <LastModified>2000-02-29T23:59:59Z</LastModified>\n"
    "  <ETag>\"a100d21c-2\"</ETag>\n  <Size>0</Size>\n</Contents>"
    "<Contents><Key>d/z</Key><Size>5368709120</Size>"
    "<LastModified>1970-01-01T00:00:00.000Z</LastModified></Contents>"
    "</ListBucketResult>";

int
main(void)
{
	buf_init(&seen, 1 << 16);
	test_encode();
	test_query();
	test_unescape();
	test_text();
	test_error();
	test_list();
	test_misc();
	buf_free(&seen);
	return done_testing();
}

static void
test_encode(void)
{
	is_str(enc("AZaz09-_.~", false), "AZaz09-_.~",
	    "RFC 3986 unreserved bytes stay");
	is_str(enc("a b+c=d/e", false), "a%20b%2Bc%3Dd%2Fe",
	    "space + = / encoded, uppercase hex, never '+' for space");
	is_str(enc("é✓", false), "%C3%A9%E2%9C%93", "UTF-8 byte by byte");
	is_str(enc("!*'();:@&$,?#[]%", false),
	    "%21%2A%27%28%29%3B%3A%40%26%24%2C%3F%23%5B%5D%25",
	    "sub-delims and gen-delims encoded, '%%' too");
	is_str(enc("dir/sub dir/k+1=é.txt", true),
	    "dir/sub%20dir/k%2B1%3D%C3%A9.txt",
	    "a key path keeps its '/', encodes each segment once");
	is_str(enc("", true), "", "empty");
}

static void
test_query(void)
{
	struct s3_param	 list[] = {
		{ "prefix", "a/b" }, { "max-keys", "2" },
		{ "list-type", "2" },
		{ "continuation-token", "15Gev+hWm/BQ9 =" },
	};
	struct s3_param	 up[] = { { "uploads", "" } };
	struct s3_param	 part[] = {
		{ "uploadId", "VXB+/=" }, { "partNumber", "10" },
	};
	struct s3_param	 bad[] = { { "a b", "1" } };
	struct s3_param	 empty[] = { { "", "1" } };
	struct buf	 b;

	is_str(query(list, 4), "continuation-token=15Gev%2BhWm%2FBQ9%20%3D&"
	    "list-type=2&max-keys=2&prefix=a%2Fb",
	    "sorted by name, values encoded");
	is_str(query(up, 1), "uploads=", "a value-less parameter is name=");
	is_str(query(part, 2), "partNumber=10&uploadId=VXB%2B%2F%3D",
	    "byte order: partNumber before uploadId");
	ok(query(bad, 1) == NULL, "a name with a reserved byte is refused");
	ok(query(empty, 1) == NULL, "an empty name is refused");
	buf_init(&b, 10);
	ok(s3_query(&b, list, 4) == -1, "a full buffer is an error");
	buf_free(&b);
}

static void
test_unescape(void)
{
	char	 small[4];

	is_str(unesc("&amp;&lt;&gt;&quot;&apos;"), "&<>\"'",
	    "the five named entities");
	is_str(unesc("&#65;&#x42;&#x4a;"), "ABJ",
	    "decimal and hex numeric entities");
	ok(unesc("&#X43;") == NULL, "&#X (not XML) is refused");
	is_str(unesc("&#233;&#xe9;&#x2713;&#x1F600;"),
	    "\xc3\xa9\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80",
	    "code points as UTF-8 (2, 3 and 4 bytes)");
	is_str(unesc("a&amp;amp;b"), "a&amp;b", "undone once, not twice");
	is_str(unesc("plain é text"), "plain é text", "raw UTF-8 kept");
	ok(unesc("&bogus;") == NULL, "an unknown entity is refused");
	ok(unesc("&amp") == NULL, "an entity without ';' is refused");
	ok(unesc("&#0;") == NULL, "&#0; (NUL) is refused");
	ok(unesc("&#xD800;") == NULL, "a surrogate is refused");
	ok(unesc("&#x110000;") == NULL, "beyond U+10FFFF is refused");
	ok(unesc("&#x0x41;") == NULL, "a 0x inside hex is refused");
	ok(unesc("&#;") == NULL && unesc("&#x;") == NULL,
	    "no digits is refused");
	ok(unesc("&#12a;") == NULL, "a letter in decimal is refused");
	ok(unesc("&#99999999999999999999;") == NULL, "overflow is refused");
	ok(s3_xml_unescape("abcd", 4, small, sizeof(small)) == -1,
	    "too long for out is refused");
	ok(s3_xml_unescape("a\0b", 3, small, sizeof(small)) == -1,
	    "a NUL byte is refused");
	ok(s3_xml_unescape("abc", 3, small, sizeof(small)) == 0 &&
	    !strcmp(small, "abc"), "exactly fits");
}

static void
test_text(void)
{
	static const char x[] = "<R><KeyCount>2</KeyCount><Key a=\"1\">k"
	    "&amp;1</Key><Prefix/><Empty></Empty><Open>no end</R>";
	char	 out[64];

	ok(s3_xml_text(x, strlen(x), "Key", out, sizeof(out)) == 0 &&
	    !strcmp(out, "k&1"), "<Key> found past <KeyCount>, attributes "
	    "skipped, entities undone");
	ok(s3_xml_text(x, strlen(x), "Prefix", out, sizeof(out)) == 0 &&
	    *out == '\0', "<Prefix/> is empty");
	ok(s3_xml_text(x, strlen(x), "Empty", out, sizeof(out)) == 0 &&
	    *out == '\0', "<Empty></Empty> is empty");
	ok(s3_xml_text(x, strlen(x), "Open", out, sizeof(out)) == -1,
	    "an element never closed is not found");
	ok(s3_xml_text(x, strlen(x), "Nope", out, sizeof(out)) == -1,
	    "a missing element is not found");
	ok(s3_xml_text(x, 20, "Key", out, sizeof(out)) == -1,
	    "nothing is read past len");
}

static void
test_error(void)
{
	static const char e[] = "<?xml version=\"1.0\"?>\n<Error><Code>"
	    "InvalidAccessKeyId</Code><Message>The AWS Access Key Id you "
	    "provided does not exist in our records.</Message><AWSAccessKeyId>"
	    "AK</AWSAccessKeyId><RequestId>1</RequestId></Error>";
	static const char nomsg[] = "<Error><Code>SlowDown</Code></Error>";
	char	 code[64], msg[160];

	ok(s3_parse_error(e, strlen(e), code, sizeof(code), msg,
	    sizeof(msg)) == 0 && !strcmp(code, "InvalidAccessKeyId") &&
	    !strncmp(msg, "The AWS Access Key Id you provided", 34),
	    "Code and Message of an <Error>");
	ok(s3_parse_error(nomsg, strlen(nomsg), code, sizeof(code), msg,
	    sizeof(msg)) == 0 && !strcmp(code, "SlowDown") && *msg == '\0',
	    "an <Error> without a Message");
	ok(s3_parse_error(page1, strlen(page1), code, sizeof(code), msg,
	    sizeof(msg)) == -1 && *code == '\0', "a list page is no error");
	ok(s3_parse_error("", 0, code, sizeof(code), msg, sizeof(msg)) == -1,
	    "an empty body is no error");
}

static void
test_list(void)
{
	char		 next[256], err[160], *p;
	const char	*stop = "<ListBucketResult><IsTruncated>true"
	    "</IsTruncated><Contents><Key>a</Key><Size>1</Size><LastModified>"
	    "2026-12-02T13:20:00Z</LastModified></Contents>"
	    "</ListBucketResult>";
	bool		 more;

	ok(list(page1, &more, next, sizeof(next), err) == 0,
	    "a page is read");
	is_str(seen.data, "d/a & b.txt|11|9b2cf535f27731c974343645a3985328|"
	    "1796217600\nd/<x> \xc3\xa9\xe2\x9c\x93'\"|0|a100d21c-2|"
	    "951868799\nd/z|5368709120||0\n",
	    "keys unescaped, ETag quotes removed, sizes, times to seconds");
	ok(more, "IsTruncated true");
	is_str(next, "15Gev+hWmBQ9/rHSz7U=",
	    "NextContinuationToken, not ContinuationToken");
	stop_at = 1;
	ok(list(page1, &more, next, sizeof(next), err) == 1 &&
	    !strcmp(seen.data, "d/a & b.txt|11|9b2cf535f27731c974343645a3985328"
	    "|1796217600\n"), "each() returning non-zero stops the walk");
	stop_at = -1;
	ok(list("<ListBucketResult><IsTruncated>false</IsTruncated>"
	    "</ListBucketResult>", &more, next, sizeof(next), err) == 0 &&
	    !more && *next == '\0' && seen.len == 0, "an empty last page");
	ok(list(stop, &more, next, sizeof(next), err) == -1 &&
	    strstr(err, "NextContinuationToken") != NULL,
	    "truncated without a token: refused, said why");
	if ((p = strdup(page1)) != NULL) {
		memcpy(strstr(p, "<Size>11"), "<Sixe>11", 8);
		memcpy(strstr(p, "</Size><Owner>"), "</Sixe>", 7);
		ok(list(p, &more, next, sizeof(next), err) == -1,
		    "a Contents without Size is refused");
		free(p);
	}
	ok(list("<ListBucketResult><Contents><Key>a</Key><Size>x1</Size>"
	    "<LastModified>2026-12-02T13:20:00Z</LastModified></Contents>"
	    "</ListBucketResult>", &more, next, sizeof(next), err) == -1,
	    "a Size that is no number is refused");
	ok(list("<ListBucketResult><Contents><Key></Key><Size>1</Size>"
	    "<LastModified>2026-12-02T13:20:00Z</LastModified></Contents>"
	    "</ListBucketResult>", &more, next, sizeof(next), err) == -1,
	    "an empty Key is refused");
	ok(list("<ListBucketResult><Contents><Key>a&bad;</Key><Size>1</Size>"
	    "<LastModified>2026-12-02T13:20:00Z</LastModified></Contents>"
	    "</ListBucketResult>", &more, next, sizeof(next), err) == -1,
	    "a Key with a broken entity is refused");
	ok(list("<Error><Code>AccessDenied</Code></Error>", &more, next,
	    sizeof(next), err) == -1 && strstr(err, "ListBucketResult"),
	    "an error document is not a page");
	ok(list("<ListBucketResult><IsTruncated>false</IsTruncated>", &more,
	    next, sizeof(next), err) == -1, "a cut-off page is refused");
	ok(list(page1, &more, next, 8, err) == -1,
	    "a token longer than the caller's buffer is refused");
}

static void
test_misc(void)
{
	const char	 etags[2][80] = { "\"abc\"", "\"d&e\"" };
	char		 sha[65];
	struct buf	 b;
	int		 fd;
	char		 q1[] = "\"abc\"", q2[] = "\"", q3[] = "a\"b\"";

	s3_unquote(q1);
	s3_unquote(q2);
	s3_unquote(q3);
	ok(!strcmp(q1, "abc") && !strcmp(q2, "\"") && !strcmp(q3, "a\"b\""),
	    "ETag quotes: a pair around is removed, nothing else");
	is_int(s3_iso8601("2026-12-02T13:20:00.000Z"), 1796217600,
	    "ISO 8601 with milliseconds");
	is_int(s3_iso8601("2000-02-29T23:59:59Z"), 951868799,
	    "ISO 8601 without");
	ok(s3_iso8601("2026-12-02T13:20:00+01:00") == -1 &&
	    s3_iso8601("2026-13-02T13:20:00Z") == -1 &&
	    s3_iso8601("2026-12-02 13:20:00Z") == -1 &&
	    s3_iso8601("yesterday") == -1, "other forms are refused");
	buf_init(&b, 4096);
	ok(s3_complete_xml(&b, etags, 2) == 0 && !strcmp(b.data,
	    "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"
	    "\"abc\"</ETag></Part><Part><PartNumber>2</PartNumber><ETag>"
	    "\"d&amp;e\"</ETag></Part></CompleteMultipartUpload>"),
	    "CompleteMultipartUpload lists parts in order, escaped");
	buf_free(&b);
	fd = memfd_create("t", 0);
	ok(fd >= 0 && write(fd, "hello world", 11) == 11, "a memfd");
	ok(s3_sha256_range(fd, 6, 5, sha) == 0 && !strcmp(sha,
	    "486ea46224d1bb4fb680f34f7c9ad96a8f24ec88be73ea8e5a6c65260e9cb8a7"),
	    "SHA-256 of a range (\"world\")");
	ok(s3_sha256_range(fd, 3, 0, sha) == 0 && !strcmp(sha,
	    S3_EMPTY_SHA256), "an empty range hashes as the empty string");
	ok(s3_sha256_range(fd, 6, 6, sha) == -1,
	    "a range past the end (the file shrank) is an error");
	close(fd);
}

static const char *
enc(const char *s, bool slash)
{
	static struct buf	 b;

	buf_free(&b);
	buf_init(&b, 4096);
	return s3_encode(&b, s, slash) == 0 ? (b.data ? b.data : "") : NULL;
}

static const char *
query(struct s3_param *p, size_t n)
{
	static struct buf	 b;

	buf_free(&b);
	buf_init(&b, 4096);
	return s3_query(&b, p, n) == 0 ? (b.data ? b.data : "") : NULL;
}

static const char *
unesc(const char *s)
{
	static char	 out[256];

	return s3_xml_unescape(s, strlen(s), out, sizeof(out)) == 0 ? out :
	    NULL;
}

static int
collect(const char *key, const struct os_meta *m, void *arg)
{
	(void)arg;
	buf_printf(&seen, "%s|%lld|%s|%lld\n", key, m->size, m->etag,
	    m->mtime);
	if (*m->sha256 != '\0')
		buf_puts(&seen, "(a list has no sha256)\n");
	return stop_at >= 0 && --stop_at == 0;
}

static int
list(const char *xml, bool *more, char *next, size_t nextsz, char *err)
{
	buf_reset(&seen);
	return s3_parse_list(xml, strlen(xml), collect, NULL, more, next,
	    nextsz, err, 160);
}
