/* SPDX-License-Identifier: MIT */
/*
 * head.c: reads the head of the first request on a connection, peeked from
 * the socket, far enough to decide who takes it (RFC 9112 §3, RFC 6455 §4.1).
 * It does not replace the HTTP parser of either library: it only routes.
 */
#include <limits.h>
#include <string.h>
#include <strings.h>

#include "pincer.h"

static const char *find_end(const char *, size_t, size_t *);
static int	parse_request_line(const char *, size_t, struct head *);
static void	parse_header(const char *, size_t, struct head *, bool *);
static bool	has_token(const char *, size_t, const char *);
static void	parse_length(const char *, size_t, struct head *);
static bool	is_tchar(unsigned char);

enum head_result
head_parse(const char *p, size_t len, struct head *h)
{
	const char	*end, *line, *eol;
	size_t		 headlen, i;
	bool		 conn_upgrade = false;

	memset(h, 0, sizeof(*h));
	/* Fail early on bytes that cannot start a request (TLS, binary). */
	for (i = 0; i < len && p[i] != ' '; i++)
		if (!is_tchar((unsigned char)p[i]) || i >= sizeof(h->method) - 1)
			return HEAD_BAD;
	if ((end = find_end(p, len, &headlen)) == NULL)
		return HEAD_INCOMPLETE;
	for (i = 0; i < headlen; i++)
		if (p[i] == '\0')
			return HEAD_BAD;
	h->head_len = headlen;
	eol = memchr(p, '\n', headlen);
	if (parse_request_line(p, (size_t)(eol - p), h) == -1)
		return HEAD_BAD;
	for (line = eol + 1; line < end; line = eol + 1) {
		eol = memchr(line, '\n', (size_t)(p + headlen - line));
		if (eol == NULL || eol == line ||
		    (eol == line + 1 && *line == '\r'))
			break;
		/* obs-fold (RFC 9112 §5.2) is refused, as the spec allows. */
		if (*line == ' ' || *line == '\t')
			return HEAD_BAD;
		parse_header(line, (size_t)(eol - line), h, &conn_upgrade);
	}
	h->upgrade_websocket = h->upgrade_websocket && conn_upgrade;
	return HEAD_OK;
}

/* The blank line ends the head; tolerate bare LF as RFC 9112 §2.2 allows. */
static const char *
find_end(const char *p, size_t len, size_t *headlen)
{
	size_t	 i;

	for (i = 0; i + 1 < len; i++) {
		if (p[i] != '\n')
			continue;
		if (p[i + 1] == '\n') {
			*headlen = i + 2;
			return p + i + 1;
		}
		if (p[i + 1] == '\r' && i + 2 < len && p[i + 2] == '\n') {
			*headlen = i + 3;
			return p + i + 1;
		}
	}
	return NULL;
}

/* method SP request-target SP HTTP-version */
static int
parse_request_line(const char *p, size_t n, struct head *h)
{
	const char	*sp1, *sp2, *target, *q;
	size_t		 mlen, tlen, plen;

	if (n > 0 && p[n - 1] == '\r')
		n--;
	if ((sp1 = memchr(p, ' ', n)) == NULL)
		return -1;
	mlen = (size_t)(sp1 - p);
	if (mlen == 0 || mlen >= sizeof(h->method))
		return -1;
	target = sp1 + 1;
	if ((sp2 = memchr(target, ' ', n - mlen - 1)) == NULL)
		return -1;
	tlen = (size_t)(sp2 - target);
	if (tlen == 0)
		return -1;
	if ((size_t)(p + n - (sp2 + 1)) != 8 ||
	    (memcmp(sp2 + 1, "HTTP/1.1", 8) && memcmp(sp2 + 1, "HTTP/1.0", 8)))
		return -1;
	for (q = target; q < sp2; q++)
		if ((unsigned char)*q <= ' ' || (unsigned char)*q == 0x7f)
			return -1;
	memcpy(h->method, p, mlen);
	h->method[mlen] = '\0';
	q = memchr(target, '?', tlen);
	plen = q != NULL ? (size_t)(q - target) : tlen;
	/* A path too long to route by is left empty: it matches nothing. */
	if (plen < sizeof(h->path)) {
		memcpy(h->path, target, plen);
		h->path[plen] = '\0';
	}
	return 0;
}

static void
parse_header(const char *p, size_t n, struct head *h, bool *conn_upgrade)
{
	const char	*colon, *v, *comma;
	size_t		 klen, vlen;

	if (n > 0 && p[n - 1] == '\r')
		n--;
	if ((colon = memchr(p, ':', n)) == NULL)
		return;
	klen = (size_t)(colon - p);
	v = colon + 1;
	vlen = n - klen - 1;
	while (vlen > 0 && (*v == ' ' || *v == '\t'))
		v++, vlen--;
	while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;
	if (klen == 7 && !strncasecmp(p, "upgrade", 7))
		h->upgrade_websocket = has_token(v, vlen, "websocket");
	else if (klen == 10 && !strncasecmp(p, "connection", 10))
		*conn_upgrade = *conn_upgrade || has_token(v, vlen, "upgrade");
	else if (klen == 14 && !strncasecmp(p, "content-length", 14))
		parse_length(v, vlen, h);
	else if (klen == 15 && !strncasecmp(p, "x-forwarded-for", 15)) {
		/* The right-most entry is the one our proxy added. */
		while ((comma = memchr(v, ',', vlen)) != NULL) {
			vlen -= (size_t)(comma + 1 - v);
			v = comma + 1;
		}
		while (vlen > 0 && *v == ' ')
			v++, vlen--;
		if (vlen < sizeof(h->forwarded_for)) {
			memcpy(h->forwarded_for, v, vlen);
			h->forwarded_for[vlen] = '\0';
		}
	}
}

/*
 * RFC 9112 §6.3: digits only; a second Content-Length must agree. Read
 * here so that an absurd length gets our JSON 413, not a library page.
 */
static void
parse_length(const char *v, size_t n, struct head *h)
{
	unsigned long long	 x = 0;
	size_t			 i;

	if (n == 0)
		h->length_bad = true;
	for (i = 0; i < n && !h->length_bad; i++) {
		if (v[i] < '0' || v[i] > '9')
			h->length_bad = true;
		else if (x > (ULLONG_MAX - 9) / 10)
			x = ULLONG_MAX;	/* too big for anything: saturate */
		else
			x = x * 10 + (unsigned long long)(v[i] - '0');
	}
	if (h->has_length && x != h->content_length)
		h->length_bad = true;
	h->has_length = true;
	h->content_length = x;
}

/* A comma-separated list holds the token, case-insensitively. */
static bool
has_token(const char *v, size_t n, const char *tok)
{
	size_t	 tl = strlen(tok), i = 0, s;

	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
			i++;
		if (i - s == tl && !strncasecmp(v + s, tok, tl))
			return true;
	}
	return false;
}

/* RFC 9110 §5.6.2 token characters. */
static bool
is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}
