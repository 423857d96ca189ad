/* SPDX-License-Identifier: MIT */
/*
 * egress_http.c: HTTP/1.1 heads inside an intercepted tunnel
 * (egress_tls.c): the request line, how a body is framed (RFC 9112 §6),
 * and the head sent on with an inject rule's headers and query
 * parameters, secrets filled in.
 *
 * A head here is the bytes up to and including its blank line, lines
 * ending in CRLF (a bare LF is refused: two parsers that disagree on
 * where a line ends disagree on what was asked).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pincer.h"
#include "egress.h"

static const char *next_line(const char *, const char *);
static bool	 name_is(const char *, size_t, const char *);
static bool	 named(const json_t *, const char *, size_t);
static int	 fill(struct buf *, const char *, bool, char *, size_t);
static int	 put_query(struct buf *, const char *, const json_t *,
		    char *, size_t);
static int	 pct_put(struct buf *, const char *, size_t);
static bool	 key_is(const char *, size_t, const char *);

/* The line after the one at p, or NULL at the end of the head. */
static const char *
next_line(const char *p, const char *end)
{
	const char	*eol = memchr(p, '\n', (size_t)(end - p));

	return eol != NULL && eol + 1 < end ? eol + 1 : NULL;
}

/* Does the header line at p (len bytes) have this name? */
static bool
name_is(const char *p, size_t len, const char *name)
{
	size_t	 n = strlen(name);

	return len > n && p[n] == ':' && !strncasecmp(p, name, n);
}

/* The first header of that name: its value, spaces trimmed, or NULL. */
const char *
eh_header(const char *head, size_t len, const char *name, size_t *vlen)
{
	const char	*end = head + len, *p, *eol, *v;

	for (p = next_line(head, end); p != NULL; p = next_line(p, end)) {
		eol = memchr(p, '\r', (size_t)(end - p));
		if (eol == NULL || eol == p)
			break;
		if (!name_is(p, (size_t)(eol - p), name))
			continue;
		for (v = p + strlen(name) + 1; v < eol && (*v == ' ' ||
		    *v == '\t'); v++)
			;
		while (eol > v && (eol[-1] == ' ' || eol[-1] == '\t'))
			eol--;
		*vlen = (size_t)(eol - v);
		return v;
	}
	return NULL;
}

/* A comma-separated header (every one of the name) lists token. */
bool
eh_has_token(const char *head, size_t len, const char *name,
    const char *token)
{
	const char	*end = head + len, *p, *eol, *t, *te;
	size_t		 tl = strlen(token);

	for (p = next_line(head, end); p != NULL; p = next_line(p, end)) {
		if ((eol = memchr(p, '\r', (size_t)(end - p))) == NULL ||
		    eol == p)
			break;
		if (!name_is(p, (size_t)(eol - p), name))
			continue;
		for (t = p + strlen(name) + 1; t < eol; t = te + 1) {
			while (t < eol && (*t == ' ' || *t == '\t'))
				t++;
			if ((te = memchr(t, ',', (size_t)(eol - t))) == NULL)
				te = eol;
			if ((size_t)(te - t) >= tl && !strncasecmp(t, token,
			    tl) && strspn(t + tl, " \t") == (size_t)(te - t -
			    (ptrdiff_t)tl))
				return true;
		}
	}
	return false;
}

/*
 * How the body after this head ends: EF_NONE (no body), EF_LEN (*n
 * bytes), EF_CHUNKED, EF_CLOSE (when the sender closes: a response
 * only). -1: a head whose length cannot be trusted (both framings,
 * Content-Lengths that differ, a transfer coding not ending in chunked on
 * a request), the smuggling cases of RFC 9112 §6.3.
 */
int
eh_framing(const char *head, size_t len, bool request, long long *n)
{
	const char	*end = head + len, *p, *eol, *v;
	char		*e;
	long long	 cl = -1, x;
	size_t		 tl;
	bool		 te;

	*n = 0;
	te = eh_header(head, len, "Transfer-Encoding", &tl) != NULL;
	for (p = next_line(head, end); p != NULL; p = next_line(p, end)) {
		if ((eol = memchr(p, '\r', (size_t)(end - p))) == NULL ||
		    eol == p)
			break;
		if (!name_is(p, (size_t)(eol - p), "Content-Length"))
			continue;
		v = p + 15;
		while (*v == ' ' || *v == '\t')
			v++;
		if (!isdigit((unsigned char)*v))
			return -1;
		x = strtoll(v, &e, 10);
		while (*e == ' ' || *e == '\t')
			e++;
		if (e != eol || x < 0 || (cl != -1 && cl != x))
			return -1;
		cl = x;
	}
	if (te && cl != -1 && request)
		return -1;
	if (te) {
		if (eh_has_token(head, len, "Transfer-Encoding", "chunked"))
			return EF_CHUNKED;
		return request ? -1 : EF_CLOSE;
	}
	if (cl != -1) {
		*n = cl;
		return cl > 0 ? EF_LEN : EF_NONE;
	}
	return request ? EF_NONE : EF_CLOSE;
}

/*
 * "METHOD /path HTTP/1.x": the method into method, the target (origin
 * form, or "*" for OPTIONS) into a new *path. -1: not such a line.
 */
int
eh_request_line(const char *head, size_t len, char *method, size_t msz,
    char **path)
{
	const char	*sp, *sp2, *eol;
	size_t		 ml;

	*path = NULL;
	if ((eol = memchr(head, '\r', len)) == NULL || eol[1] != '\n' ||
	    (sp = memchr(head, ' ', (size_t)(eol - head))) == NULL ||
	    (sp2 = memchr(sp + 1, ' ', (size_t)(eol - sp - 1))) == NULL)
		return -1;
	ml = (size_t)(sp - head);
	if (ml == 0 || ml >= msz || (size_t)(eol - sp2) != 9 ||
	    strncmp(sp2 + 1, "HTTP/1.", 7) || (sp[1] != '/' &&
	    !(sp2 == sp + 2 && sp[1] == '*')))
		return -1;
	memcpy(method, head, ml);
	method[ml] = '\0';
	if (strspn(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ-_") != ml ||
	    memchr(sp + 1, '\n', (size_t)(sp2 - sp - 1)) != NULL)
		return -1;
	if ((*path = strndup(sp + 1, (size_t)(sp2 - sp - 1))) == NULL)
		return -1;
	return 0;
}

/* The status of "HTTP/1.x NNN ...", or -1. */
int
eh_status(const char *head, size_t len)
{
	if (len < 13 || strncmp(head, "HTTP/1.", 7) || head[8] != ' ' ||
	    !isdigit((unsigned char)head[9]) ||
	    !isdigit((unsigned char)head[10]) ||
	    !isdigit((unsigned char)head[11]))
		return -1;
	return (head[9] - '0') * 100 + (head[10] - '0') * 10 + head[11] - '0';
}

/* Is the header line at p one that set_headers names? */
static bool
named(const json_t *set, const char *p, size_t len)
{
	const char	*k;
	json_t		*v;

	json_object_foreach((json_t *)set, k, v)
		if (name_is(p, len, k))
			return true;
	return false;
}

/*
 * The head sent to the host: the request line, with set_query's
 * parameters in place of any of the same names; the sandbox's headers
 * but those set_headers names, Expect (the proxy answers 100 itself) and
 * the proxy's own; then set_headers, ${secret:NAME} filled in. The
 * caller wipes out (it may hold a secret). -1 with why.
 */
int
eh_rewrite(struct buf *out, const char *head, size_t len,
    const char *method, const char *path, const json_t *set_headers,
    const json_t *set_query, char *why, size_t whysz)
{
	const char	*end = head + len, *p, *eol, *k;
	json_t		*v;

	if (buf_printf(out, "%s ", method) == -1 ||
	    put_query(out, path, set_query, why, whysz) == -1 ||
	    buf_puts(out, " HTTP/1.1\r\n") == -1)
		goto full;
	for (p = next_line(head, end); p != NULL; p = next_line(p, end)) {
		if ((eol = memchr(p, '\r', (size_t)(end - p))) == NULL ||
		    eol == p)
			break;
		if ((set_headers != NULL && named(set_headers, p,
		    (size_t)(eol - p))) || name_is(p, (size_t)(eol - p),
		    "Expect") || name_is(p, (size_t)(eol - p),
		    "Proxy-Connection") || name_is(p, (size_t)(eol - p),
		    "Proxy-Authorization"))
			continue;
		if (buf_append(out, p, (size_t)(eol + 2 - p)) == -1)
			goto full;
	}
	if (set_headers != NULL)
		json_object_foreach((json_t *)set_headers, k, v) {
			if (buf_printf(out, "%s: ", k) == -1 ||
			    fill(out, json_string_value(v), false, why,
			    whysz) == -1 || buf_puts(out, "\r\n") == -1)
				goto full;
		}
	if (buf_puts(out, "\r\n") == -1)
		goto full;
	return 0;
full:
	if (why[0] == '\0')
		snprintf(why, whysz, "the request head is too large");
	return -1;
}

/*
 * A template with its ${secret:NAME}s filled in (the policy checked
 * their shape), percent-encoded for a query when pct. A secret that is
 * not set, or that would end a header line, is an error: the request
 * does not go out without its credential.
 */
static int
fill(struct buf *out, const char *t, bool pct, char *why, size_t whysz)
{
	struct buf	 sec;
	const char	*s, *e;
	char		 name[128];
	int		 rc = 0;

	while (rc == 0 && (s = strstr(t, "${secret:")) != NULL &&
	    (e = strchr(s, '}')) != NULL) {
		snprintf(name, sizeof(name), "%.*s", (int)(e - s - 9), s + 9);
		buf_init(&sec, SECRETS_MAX + 64);
		if (secrets_get(name, &sec) == -1 || sec.data == NULL) {
			snprintf(why, whysz, "the secret \"%s\" named by the "
			    "inject rule is not set (pincer secret set %s)",
			    name, name);
			rc = -1;
		} else if (!pct && strcspn(sec.data, "\r\n") != sec.len) {
			snprintf(why, whysz, "the secret \"%s\" holds a line "
			    "break, which cannot go in a header", name);
			rc = -1;
		} else if ((pct ? pct_put(out, t, (size_t)(s - t)) :
		    buf_append(out, t, (size_t)(s - t))) == -1 ||
		    (pct ? pct_put(out, sec.data, sec.len) :
		    buf_append(out, sec.data, sec.len)) == -1)
			rc = -1;
		if (sec.data != NULL)
			explicit_bzero(sec.data, sec.cap);
		buf_free(&sec);
		t = e + 1;
	}
	if (rc == 0)
		rc = pct ? pct_put(out, t, strlen(t)) : buf_puts(out, t);
	return rc;
}

/* The path with set_query's parameters replacing any of their names. */
static int
put_query(struct buf *out, const char *path, const json_t *set,
    char *why, size_t whysz)
{
	const char	*q = strchr(path, '?'), *p, *amp, *k;
	json_t		*v;
	bool		 first = true;

	if (set == NULL || json_object_size(set) == 0)
		return buf_puts(out, path);
	if (buf_append(out, path, q != NULL ? (size_t)(q - path) :
	    strlen(path)) == -1)
		return -1;
	for (p = q != NULL ? q + 1 : NULL; p != NULL && *p != '\0';
	    p = amp != NULL ? amp + 1 : NULL) {
		amp = strchr(p, '&');
		json_object_foreach((json_t *)set, k, v)
			if (key_is(p, amp != NULL ? (size_t)(amp - p) :
			    strlen(p), k))
				break;
		if (k != NULL || p == amp)
			continue;
		if (buf_puts(out, first ? "?" : "&") == -1 ||
		    buf_append(out, p, amp != NULL ? (size_t)(amp - p) :
		    strlen(p)) == -1)
			return -1;
		first = false;
	}
	json_object_foreach((json_t *)set, k, v) {
		if (buf_puts(out, first ? "?" : "&") == -1 ||
		    pct_put(out, k, strlen(k)) == -1 || buf_puts(out, "=") == -1 ||
		    fill(out, json_string_value(v), true, why, whysz) == -1)
			return -1;
		first = false;
	}
	return 0;
}

/* Is the parameter at p (n bytes, "key=value" or "key") named k?
 * Percent-escapes in the key are read, so %74oken is token too. */
static bool
key_is(const char *p, size_t n, const char *k)
{
	size_t		 i = 0;
	unsigned int	 c;

	while (i < n && p[i] != '=') {
		if (p[i] == '%' && i + 2 < n && sscanf(p + i + 1, "%2x", &c)
		    == 1 && isxdigit((unsigned char)p[i + 1]) &&
		    isxdigit((unsigned char)p[i + 2]))
			i += 3;
		else
			c = (unsigned char)p[i++];
		if (*k == '\0' || (unsigned char)*k++ != c)
			return false;
	}
	return *k == '\0';
}

/* RFC 3986 unreserved characters as they are, the rest as %XX. */
static int
pct_put(struct buf *out, const char *s, size_t n)
{
	static const char	 hex[] = "0123456789ABCDEF";
	const char		*end = s + n;
	char			 e[3] = { '%' };

	for (; s < end; s++) {
		if (isalnum((unsigned char)*s) || (*s != '\0' &&
		    strchr("-._~", *s) != NULL)) {
			if (buf_append(out, s, 1) == -1)
				return -1;
			continue;
		}
		e[1] = hex[(unsigned char)*s >> 4];
		e[2] = hex[(unsigned char)*s & 15];
		if (buf_append(out, e, 3) == -1)
			return -1;
	}
	return 0;
}
