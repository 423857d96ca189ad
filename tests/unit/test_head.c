/* SPDX-License-Identifier: MIT */
/* test_head.c: the front door's peek at a request head (head.c). */
#include <limits.h>
#include <string.h>

#include "pincer.h"
#include "tap.h"

static enum head_result parse(const char *, struct head *);
static void	test_ok(void);
static void	test_incomplete(void);
static void	test_bad(void);
static void	test_method_path(void);
static void	test_websocket(void);
static void	test_forwarded(void);
static bool	ws(const char *, const char *);

static void	test_length(void);

int
main(void)
{
	test_ok();
	test_incomplete();
	test_bad();
	test_method_path();
	test_websocket();
	test_forwarded();
	test_length();
	return done_testing();
}

static enum head_result
parse(const char *s, struct head *h)
{
	return head_parse(s, strlen(s), h);
}

static void
test_ok(void)
{
	struct head	 h;
	const char	*get = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
	const char	*post = "POST /api/v1/x HTTP/1.1\r\nHost: x\r\n"
			    "Content-Length: 9\r\n\r\n{\"a\":\"b\"}";
	const char	*lf = "GET /lf HTTP/1.0\nHost: x\nAccept: */*\n\n";
	const char	*mixed = "GET /m HTTP/1.1\r\nHost: x\n\r\nbody";

	is_int(parse(get, &h), HEAD_OK, "complete GET");
	is_str(h.method, "GET", "GET method");
	is_str(h.path, "/healthz", "GET path");
	is_int(h.head_len, strlen(get), "head_len is the whole head");
	ok(!h.upgrade_websocket, "plain GET is no upgrade");
	is_str(h.forwarded_for, "", "no X-Forwarded-For");

	is_int(parse(post, &h), HEAD_OK, "POST with a body");
	is_str(h.method, "POST", "POST method");
	is_int(h.head_len, strlen(post) - 9, "body bytes are not in head_len");
	ok(h.head_len >= 4 && !memcmp(post + h.head_len - 4, "\r\n\r\n", 4),
	    "head_len ends at CRLF CRLF");

	is_int(parse(lf, &h), HEAD_OK, "bare-LF head");
	is_str(h.path, "/lf", "bare-LF path");
	is_int(h.head_len, strlen(lf), "bare-LF head_len");

	is_int(parse(mixed, &h), HEAD_OK, "LF then CRLF blank line");
	is_int(h.head_len, strlen(mixed) - 4, "mixed head_len stops at body");

	is_int(parse("GET / HTTP/1.1\r\n\r\n", &h), HEAD_OK,
	    "no headers at all");
	is_int(h.head_len, 18, "head_len without headers");
	is_int(parse("GET / HTTP/1.1\r\nNoColonHere\r\n\r\n", &h), HEAD_OK,
	    "a header line without a colon is skipped");
}

static void
test_incomplete(void)
{
	struct head	 h;
	const char	*get = "GET /healthz HTTP/1.1\r\nHost: x\r\n"
			    "Upgrade: websocket\r\n\r\n";
	size_t		 n, len = strlen(get);
	int		 bad = 0;

	is_int(head_parse("", 0, &h), HEAD_INCOMPLETE, "nothing yet");
	is_int(parse("GET", &h), HEAD_INCOMPLETE, "method only");
	is_int(parse("GET /x HTTP/1.1\r\nHost: x\r\n", &h), HEAD_INCOMPLETE,
	    "no blank line yet");
	is_int(parse("GET /x HTTP/1.1\r\nHost: x\r\n\r", &h), HEAD_INCOMPLETE,
	    "blank line's LF not yet");
	for (n = 0; n < len; n++)
		if (head_parse(get, n, &h) != HEAD_INCOMPLETE)
			bad++;
	is_int(bad, 0, "every proper prefix of a head is incomplete");
	is_int(head_parse(get, len, &h), HEAD_OK, "the whole of it is OK");
}

static void
test_bad(void)
{
	struct head	 h;
	static const char tls[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03"
	    "\x03";
	static const char bin[] = "\x00\x01\x02\x03";
	static const char nul[] = "GET / HTTP/1.1\r\nX-A: a\0b\r\n\r\n";
	static const char nul_line[] = "GET /\0 HTTP/1.1\r\n\r\n";

	is_int(head_parse(tls, sizeof(tls) - 1, &h), HEAD_BAD,
	    "TLS ClientHello is bad at once");
	is_int(head_parse(tls, 1, &h), HEAD_BAD, "even its first byte alone");
	is_int(head_parse(bin, sizeof(bin) - 1, &h), HEAD_BAD, "binary");
	is_int(parse("\r\n\r\n", &h), HEAD_BAD, "blank line first");
	is_int(parse("GE(T / HTTP/1.1\r\n\r\n", &h), HEAD_BAD,
	    "non-token byte in the method");
	is_int(parse("GET / HTTP/2.0\r\n\r\n", &h), HEAD_BAD, "HTTP/2.0");
	is_int(parse("GET / HTTP/1.1x\r\n\r\n", &h), HEAD_BAD,
	    "junk after the version");
	is_int(parse("GET / http/1.1\r\n\r\n", &h), HEAD_BAD,
	    "lower-case version");
	is_int(parse("GET /\r\n\r\n", &h), HEAD_BAD, "HTTP/0.9 style");
	is_int(parse("GET  HTTP/1.1\r\n\r\n", &h), HEAD_BAD, "empty target");
	is_int(parse("GET HTTP/1.1\r\n\r\n", &h), HEAD_BAD, "missing target");
	is_int(parse("GET /a b HTTP/1.1\r\n\r\n", &h), HEAD_BAD,
	    "space inside the target");
	is_int(parse("GET /a\x7f HTTP/1.1\r\n\r\n", &h), HEAD_BAD,
	    "DEL in the target");
	is_int(parse(" GET / HTTP/1.1\r\n\r\n", &h), HEAD_BAD,
	    "leading space");
	is_int(parse("GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n", &h), HEAD_BAD,
	    "obs-fold with a space");
	is_int(parse("GET / HTTP/1.1\r\nX-A: a\r\n\tb\r\n\r\n", &h), HEAD_BAD,
	    "obs-fold with a tab");
	is_int(head_parse(nul, sizeof(nul) - 1, &h), HEAD_BAD,
	    "NUL in a header value");
	is_int(head_parse(nul_line, sizeof(nul_line) - 1, &h), HEAD_BAD,
	    "NUL in the target");
	is_int(parse("ABCDEFGHIJKLMNOP / HTTP/1.1\r\n\r\n", &h), HEAD_BAD,
	    "16-byte method is too long");
	is_int(parse("ABCDEFGHIJKLMNOPQRSTU", &h), HEAD_BAD,
	    "too-long method is bad before the head is complete");
}

static void
test_method_path(void)
{
	struct head	 h;
	char		 req[1024], path[600];

	is_int(parse("ABCDEFGHIJKLMNO / HTTP/1.1\r\n\r\n", &h), HEAD_OK,
	    "15-byte method fits");
	is_str(h.method, "ABCDEFGHIJKLMNO", "15-byte method kept");
	is_int(parse("GET /a/b?x=1&y=/c HTTP/1.1\r\n\r\n", &h), HEAD_OK,
	    "target with a query");
	is_str(h.path, "/a/b", "query string stripped");
	is_int(parse("GET /? HTTP/1.1\r\n\r\n", &h), HEAD_OK, "empty query");
	is_str(h.path, "/", "empty query stripped");
	is_int(parse("OPTIONS * HTTP/1.1\r\n\r\n", &h), HEAD_OK,
	    "asterisk form");
	is_str(h.path, "*", "asterisk path");

	memset(path, 'a', sizeof(path));
	path[0] = '/';
	snprintf(req, sizeof(req), "GET %.*s HTTP/1.1\r\n\r\n", 511, path);
	is_int(parse(req, &h), HEAD_OK, "511-byte path");
	is_int(strlen(h.path), 511, "511-byte path kept whole");
	snprintf(req, sizeof(req), "GET %.*s HTTP/1.1\r\n\r\n", 512, path);
	is_int(parse(req, &h), HEAD_OK, "512-byte path is still a request");
	is_str(h.path, "", "too-long path left empty");
	is_str(h.method, "GET", "method still set with a long path");
	snprintf(req, sizeof(req), "GET %.*s?q=1 HTTP/1.1\r\n\r\n", 511,
	    path);
	is_int(parse(req, &h), HEAD_OK, "511-byte path plus a query");
	is_int(strlen(h.path), 511, "the query does not count");
}

/* Upgrade and Connection header values, NULL for absent. */
static bool
ws(const char *upgrade, const char *connection)
{
	struct head	 h;
	char		 req[512];
	int		 n;

	n = snprintf(req, sizeof(req), "GET /ws HTTP/1.1\r\nHost: x\r\n");
	if (upgrade != NULL)
		n += snprintf(req + n, sizeof(req) - n, "Upgrade: %s\r\n",
		    upgrade);
	if (connection != NULL)
		n += snprintf(req + n, sizeof(req) - n, "Connection: %s\r\n",
		    connection);
	snprintf(req + n, sizeof(req) - n, "\r\n");
	if (parse(req, &h) != HEAD_OK)
		return false;
	return h.upgrade_websocket;
}

static void
test_websocket(void)
{
	struct head	 h;

	ok(ws("websocket", "Upgrade"), "Upgrade: websocket, Connection: "
	    "Upgrade");
	ok(ws("WebSocket", "UPGRADE"), "case-insensitive values");
	ok(ws("websocket", "keep-alive, Upgrade"), "Connection token list");
	ok(ws("websocket", "keep-alive,upgrade"), "token list without space");
	ok(!ws("websocket", NULL), "Upgrade without Connection");
	ok(!ws(NULL, "Upgrade"), "Connection without Upgrade");
	ok(!ws("websocket", "keep-alive"), "Connection without the token");
	ok(!ws("websocket", "upgrades"), "token must match whole");
	ok(!ws("websocket", "keep-alive, upgrade-insecure"),
	    "a token prefix is not the token");
	ok(!ws("h2c", "Upgrade"), "upgrade to something else");
	ok(!ws("websockets", "Upgrade"), "websockets is not websocket");

	is_int(parse("GET /ws HTTP/1.1\r\nconnection: Upgrade\r\n"
	    "UPGRADE:   websocket  \r\n\r\n", &h), HEAD_OK,
	    "Connection before Upgrade");
	ok(h.upgrade_websocket, "header order and name case do not matter");
	is_int(parse("GET /ws HTTP/1.1\nUpgrade: websocket\nConnection: "
	    "Upgrade\n\n", &h), HEAD_OK, "upgrade with bare LF");
	ok(h.upgrade_websocket, "bare-LF upgrade detected");
	is_int(parse("GET /ws HTTP/1.1\r\nConnection: Upgrade\r\n"
	    "Connection: close\r\nUpgrade: websocket\r\n\r\n", &h), HEAD_OK,
	    "two Connection headers");
	ok(h.upgrade_websocket, "the token in either Connection header counts");
	is_int(parse("GET /ws HTTP/1.1\r\nX-Upgrade: websocket\r\n"
	    "Connection: Upgrade\r\n\r\n", &h), HEAD_OK,
	    "a header merely ending in Upgrade");
	ok(!h.upgrade_websocket, "X-Upgrade is not Upgrade");
}

static void
test_forwarded(void)
{
	struct head	 h;
	char		 req[512], ip[100];

	is_int(parse("GET / HTTP/1.1\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n",
	    &h), HEAD_OK, "one X-Forwarded-For entry");
	is_str(h.forwarded_for, "203.0.113.9", "the single entry");
	is_int(parse("GET / HTTP/1.1\r\nx-forwarded-for: 1.1.1.1, 2.2.2.2,"
	    "  10.0.0.7  \r\n\r\n", &h), HEAD_OK, "a list of entries");
	is_str(h.forwarded_for, "10.0.0.7", "the right-most entry, trimmed");
	is_int(parse("GET / HTTP/1.1\r\nX-Forwarded-For: ::1, 2001:db8::5\r\n"
	    "\r\n", &h), HEAD_OK, "IPv6 entries");
	is_str(h.forwarded_for, "2001:db8::5", "right-most IPv6 entry");

	memset(ip, '1', sizeof(ip));
	snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nX-Forwarded-For: "
	    "%.*s\r\n\r\n", 64, ip);
	is_int(parse(req, &h), HEAD_OK, "64-byte entry");
	is_str(h.forwarded_for, "", "too long for the field: left empty");
	snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nX-Forwarded-For: "
	    "%.*s\r\n\r\n", 63, ip);
	is_int(parse(req, &h), HEAD_OK, "63-byte entry");
	is_int(strlen(h.forwarded_for), 63, "63 bytes fit");
}

static void
test_length(void)
{
	struct head	 h;
	static const char ok5[] = "POST / HTTP/1.1\r\nContent-Length: 5\r\n"
	    "\r\n";
	static const char big[] = "POST / HTTP/1.1\r\nContent-Length: "
	    "18446744073709551616000\r\n\r\n";
	static const char neg[] = "POST / HTTP/1.1\r\nContent-Length: -1\r\n"
	    "\r\n";
	static const char two[] = "POST / HTTP/1.1\r\nContent-Length: 5\r\n"
	    "Content-Length: 6\r\n\r\n";
	static const char same[] = "POST / HTTP/1.1\r\nContent-Length: 5\r\n"
	    "content-length: 5\r\n\r\n";
	static const char none[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

	is_int(head_parse(ok5, sizeof(ok5) - 1, &h), HEAD_OK, "length 5");
	ok(h.has_length && !h.length_bad && h.content_length == 5,
	    "Content-Length 5 read");
	head_parse(big, sizeof(big) - 1, &h);
	ok(h.has_length && !h.length_bad && h.content_length == ULLONG_MAX,
	    "a length past 64 bits saturates (too large, not malformed)");
	head_parse(neg, sizeof(neg) - 1, &h);
	ok(h.length_bad, "a negative length is malformed");
	head_parse(two, sizeof(two) - 1, &h);
	ok(h.length_bad, "two different lengths are malformed");
	head_parse(same, sizeof(same) - 1, &h);
	ok(!h.length_bad && h.content_length == 5, "the same length twice is "
	    "fine");
	head_parse(none, sizeof(none) - 1, &h);
	ok(!h.has_length && !h.length_bad, "no length, no flag");
}
