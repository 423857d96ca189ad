/* SPDX-License-Identifier: MIT */
/*
 * text.c: text from outside made fit for the model: bytes made valid
 * UTF-8 (a JSON string must be), a cut that does not split a character,
 * and HTML reduced to the text a reader sees. Small and forgiving on
 * purpose: pages are often broken, and a missed tag costs less than a
 * parser that gives up.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent.h"

/* What the converter is in the middle of writing. */
struct html {
	struct buf	*out;
	int		 breaks;	/* line ends owed to the next text */
	bool		 space;		/* a space owed */
	bool		 pre;		/* inside <pre>: white space kept */
};

static void	 put_text(struct html *, const char *, size_t);
static void	 put_break(struct html *, int);
static size_t	 tag(struct html *, const char *, size_t);
static size_t	 entity(struct html *, const char *, size_t);
static void	 put_code(struct buf *, unsigned long);
static size_t	 utf8_len(const unsigned char *, size_t);
static size_t	 skip_to_close(const char *, size_t, const char *);

/* Elements whose content is never shown: skipped to their end tag. */
static const char *const hidden[] = {
	"script", "style", "noscript", "template", "svg", "iframe", "object",
};

/* Elements that start a line (1) or a paragraph (2). */
static const struct {
	const char	*name;
	int		 breaks;
} blocks[] = {
	{ "address", 1 }, { "article", 2 }, { "aside", 2 },
	{ "blockquote", 2 }, { "br", 1 }, { "dd", 1 }, { "details", 1 },
	{ "div", 1 }, { "dl", 1 }, { "dt", 1 }, { "fieldset", 1 },
	{ "figcaption", 1 }, { "figure", 2 }, { "footer", 2 }, { "form", 1 },
	{ "h1", 2 }, { "h2", 2 }, { "h3", 2 }, { "h4", 2 }, { "h5", 2 },
	{ "h6", 2 }, { "header", 2 }, { "hr", 2 }, { "li", 1 }, { "main", 2 },
	{ "nav", 2 }, { "ol", 2 }, { "p", 2 }, { "pre", 2 }, { "section", 2 },
	{ "summary", 1 }, { "table", 2 }, { "title", 2 }, { "tr", 1 },
	{ "ul", 2 },
};

/* The entities pages use most; &#…; covers the rest. */
static const struct {
	const char	*name;
	const char	*text;
} entities[] = {
	{ "amp", "&" }, { "lt", "<" }, { "gt", ">" }, { "quot", "\"" },
	{ "apos", "'" }, { "nbsp", " " }, { "ndash", "\xe2\x80\x93" },
	{ "mdash", "\xe2\x80\x94" }, { "hellip", "\xe2\x80\xa6" },
	{ "lsquo", "\xe2\x80\x98" }, { "rsquo", "\xe2\x80\x99" },
	{ "ldquo", "\xe2\x80\x9c" }, { "rdquo", "\xe2\x80\x9d" },
	{ "laquo", "\xc2\xab" }, { "raquo", "\xc2\xbb" },
	{ "copy", "\xc2\xa9" }, { "reg", "\xc2\xae" },
	{ "middot", "\xc2\xb7" }, { "bull", "\xe2\x80\xa2" },
	{ "euro", "\xe2\x82\xac" }, { "times", "\xc3\x97" },
};

/*
 * p[0..n) as UTF-8 on out: Latin-1 bytes converted when latin1 (the
 * charset a server names most after UTF-8), otherwise each byte that
 * does not start a valid sequence becomes U+FFFD. Control characters
 * but tab and line feed are dropped: they only confuse a reader.
 */
void
text_utf8(struct buf *out, const char *p, size_t n, bool latin1)
{
	const unsigned char	*s = (const unsigned char *)p;
	size_t			 i = 0, k;

	while (i < n) {
		if (s[i] < 0x80) {
			if ((s[i] >= 0x20 && s[i] != 0x7f) || s[i] == '\n' ||
			    s[i] == '\t')
				buf_append(out, s + i, 1);
			i++;
		} else if (latin1) {
			put_code(out, s[i]);
			i++;
		} else if ((k = utf8_len(s + i, n - i)) > 0) {
			buf_append(out, s + i, k);
			i += k;
		} else {
			buf_puts(out, "\xef\xbf\xbd");
			i++;
		}
	}
}

/*
 * Each byte of s[0..n) that does not start a valid UTF-8 sequence made
 * '?', in place: a tool's result goes into JSON, which jansson refuses
 * to build from anything else (and a tool call without its result is a
 * request the provider rejects).
 */
void
text_fix(char *s, size_t n)
{
	size_t	 i = 0, k;

	while (i < n)
		if ((unsigned char)s[i] < 0x80)
			i++;
		else if ((k = utf8_len((unsigned char *)s + i, n - i)) > 0)
			i += k;
		else
			s[i++] = '?';
}

/* The longest prefix of p[0..n) of at most max bytes that ends on a
 * character boundary of UTF-8. */
size_t
text_cut(const char *p, size_t n, size_t max)
{
	if (n <= max)
		return n;
	while (max > 0 && ((unsigned char)p[max] & 0xc0) == 0x80)
		max--;
	return max;
}

/*
 * The text of an HTML document, as a browser's reader would show it:
 * tags dropped, hidden elements (scripts, styles) with their content,
 * the common entities decoded, white space collapsed, block elements on
 * lines of their own. p should be valid UTF-8 (text_utf8).
 */
void
text_html(struct buf *out, const char *p, size_t n)
{
	struct html	 h = { .out = out };
	size_t		 i = 0, run;

	while (i < n) {
		if (p[i] == '<')
			i += tag(&h, p + i, n - i);
		else if (p[i] == '&')
			i += entity(&h, p + i, n - i);
		else {
			for (run = 1; i + run < n && p[i + run] != '<' &&
			    p[i + run] != '&'; run++)
				;
			put_text(&h, p + i, run);
			i += run;
		}
	}
}

/* Text, white space collapsed (outside <pre>), after owed breaks. */
static void
put_text(struct html *h, const char *p, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		if (!h->pre && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' ||
		    p[i] == '\r' || p[i] == '\f')) {
			h->space = true;
			continue;
		}
		if (h->out->len > 0 && h->breaks > 0)
			buf_append(h->out, "\n\n", (size_t)h->breaks);
		else if (h->out->len > 0 && h->space && h->breaks == 0)
			buf_append(h->out, " ", 1);
		h->breaks = 0;
		h->space = false;
		buf_append(h->out, p + i, 1);
	}
}

static void
put_break(struct html *h, int k)
{
	if (h->breaks < k)
		h->breaks = k;
	h->space = false;
}

/* A tag at p (p[0] == '<'): its effect; the bytes it takes. */
static size_t
tag(struct html *h, const char *p, size_t n)
{
	char	 name[16];
	size_t	 i = 1, k = 0, j;
	char	 q = 0;
	bool	 closing;

	if (n >= 4 && !memcmp(p, "<!--", 4))
		return skip_to_close(p, n, "-->");
	closing = n > 1 && p[1] == '/';
	i += closing;
	if (i >= n || (!isalpha((unsigned char)p[i]) && p[1] != '!' &&
	    p[1] != '?')) {
		put_text(h, "<", 1);	/* "a < b": not a tag */
		return 1;
	}
	while (i < n && isalnum((unsigned char)p[i]) && k < sizeof(name) - 1)
		name[k++] = (char)tolower((unsigned char)p[i++]);
	name[k] = '\0';
	/* To the tag's '>', past quoted attribute values. */
	for (; i < n && (q != 0 || p[i] != '>'); i++)
		if (q == 0 && (p[i] == '"' || p[i] == '\''))
			q = p[i];
		else if (p[i] == q)
			q = 0;
	i = i < n ? i + 1 : n;
	for (j = 0; !closing && j < sizeof(hidden) / sizeof(hidden[0]); j++)
		if (!strcmp(name, hidden[j])) {
			char	 end[24];

			snprintf(end, sizeof(end), "</%s", name);
			i += skip_to_close(p + i, n - i, end);
			return i;
		}
	if (!strcmp(name, "pre"))
		h->pre = !closing;
	for (j = 0; j < sizeof(blocks) / sizeof(blocks[0]); j++)
		if (!strcmp(name, blocks[j].name)) {
			put_break(h, blocks[j].breaks);
			if (!closing && !strcmp(name, "li"))
				put_text(h, "- ", 2);
			return i;
		}
	if (!strcmp(name, "td") || !strcmp(name, "th"))
		h->space = true;
	return i;
}

/* An entity at p (p[0] == '&'): decoded, or the '&' as it is. */
static size_t
entity(struct html *h, const char *p, size_t n)
{
	struct buf	 one;
	const char	*semi, *digits;
	unsigned long	 c;
	char		*end;
	size_t		 len, j;
	bool		 hex;

	semi = memchr(p, ';', n < 12 ? n : 12);
	if (semi == NULL) {
		put_text(h, "&", 1);
		return 1;
	}
	len = (size_t)(semi - p) + 1;
	if (p[1] == '#') {
		hex = p[2] == 'x' || p[2] == 'X';
		digits = p + 2 + hex;
		c = strtoul(digits, &end, hex ? 16 : 10);
		if (end != semi || end == digits ||
		    !isxdigit((unsigned char)*digits)) {
			put_text(h, "&", 1);
			return 1;
		}
		buf_init(&one, 8);
		put_code(&one, c == 0xa0 ? ' ' : c);
		put_text(h, one.data, one.len);
		buf_free(&one);
		return len;
	}
	for (j = 0; j < sizeof(entities) / sizeof(entities[0]); j++)
		if (strlen(entities[j].name) == len - 2 &&
		    !memcmp(p + 1, entities[j].name, len - 2)) {
			put_text(h, entities[j].text, strlen(entities[j].text));
			return len;
		}
	put_text(h, "&", 1);
	return 1;
}

/* A code point as UTF-8; what is not a character becomes U+FFFD. */
static void
put_code(struct buf *b, unsigned long c)
{
	unsigned char	 u[4];

	if (c == 0 || (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
		c = 0xfffd;
	if (c < 0x80) {
		u[0] = (unsigned char)c;
		buf_append(b, u, 1);
	} else if (c < 0x800) {
		u[0] = (unsigned char)(0xc0 | c >> 6);
		u[1] = (unsigned char)(0x80 | (c & 0x3f));
		buf_append(b, u, 2);
	} else if (c < 0x10000) {
		u[0] = (unsigned char)(0xe0 | c >> 12);
		u[1] = (unsigned char)(0x80 | (c >> 6 & 0x3f));
		u[2] = (unsigned char)(0x80 | (c & 0x3f));
		buf_append(b, u, 3);
	} else {
		u[0] = (unsigned char)(0xf0 | c >> 18);
		u[1] = (unsigned char)(0x80 | (c >> 12 & 0x3f));
		u[2] = (unsigned char)(0x80 | (c >> 6 & 0x3f));
		u[3] = (unsigned char)(0x80 | (c & 0x3f));
		buf_append(b, u, 4);
	}
}

/*
 * The length of the valid UTF-8 sequence at s, or 0 (RFC 3629 §4:
 * no overlong forms, no surrogates, nothing past U+10FFFF).
 */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t		 k, i;
	unsigned char	 lo = 0x80, hi = 0xbf;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		k = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		k = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		k = 4;
	else
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (n < k || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < k; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return k;
}

/* The bytes up to and past the first (case-insensitive) end, then its
 * '>' when end is a tag's start; all of p when there is none. */
static size_t
skip_to_close(const char *p, size_t n, const char *end)
{
	size_t		 m = strlen(end), i;
	const char	*gt;

	for (i = 0; i + m <= n; i++)
		if (!strncasecmp(p + i, end, m)) {
			i += m;
			if (end[0] == '<' && (gt = memchr(p + i, '>', n - i)))
				return (size_t)(gt - p) + 1;
			return i;
		}
	return n;
}
