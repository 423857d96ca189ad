/* SPDX-License-Identifier: MIT */
/*
 * init_text.c: bytes as text. UTF-8 checked, held back when cut off, or
 * made valid (U+FFFD) for a JSON string; base64 (RFC 4648); the
 * percent-decoding of a request target (RFC 3986 §2.1); and the
 * "encoding" parameter that picks utf8 or base64 for an output.
 */
#include <stdlib.h>
#include <string.h>

#include "init.h"

static size_t	utf8_len(const uint8_t *, size_t, int *);
static int	hexval(int);

char *
text_base64(const void *src, size_t n, size_t *len)
{
	static const char	 tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	const uint8_t		*p = src;
	char			*out, *o;
	uint32_t		 v;
	size_t			 i;

	if (n > (SIZE_MAX - 1) / 4 * 3 - 3 ||
	    (out = malloc((n + 2) / 3 * 4 + 1)) == NULL)
		return NULL;
	o = out;
	for (i = 0; i + 2 < n; i += 3) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		*o++ = tab[v >> 18];
		*o++ = tab[(v >> 12) & 63];
		*o++ = tab[(v >> 6) & 63];
		*o++ = tab[v & 63];
	}
	if (i < n) {
		v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		*o++ = tab[v >> 18];
		*o++ = tab[(v >> 12) & 63];
		*o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	*o = '\0';
	if (len != NULL)
		*len = (size_t)(o - out);
	return out;
}

json_t *
text_json(const char *p, size_t n, bool b64)
{
	json_t	*j;
	char	*s;
	size_t	 len;

	if (!b64)
		return text_jstr(p != NULL ? p : "", n);
	if ((s = text_base64(p != NULL ? p : "", n, &len)) == NULL)
		return NULL;
	j = json_stringn_nocheck(s, len);
	free(s);
	return j;
}

/* "utf8" (or absent) or "base64"; -1 after answering. */
int
text_encoding(struct conn *c, const char *name, bool *b64)
{
	*b64 = false;
	if (name == NULL || !strcmp(name, "utf8") || !strcmp(name, "utf-8"))
		return 0;
	if (!strcmp(name, "base64")) {
		*b64 = true;
		return 0;
	}
	http_error(c, 400, "bad_request", "encoding: utf8 or base64");
	return -1;
}

json_t *
text_jstr(const void *src, size_t n)
{
	static const char	 fffd[] = "\xef\xbf\xbd";
	const uint8_t		*p = src;
	json_t			*j;
	char			*out, *o;
	size_t			 i, len;
	int			 st;

	for (i = 0; i < n; i += len)
		if ((len = utf8_len(p + i, n - i, &st)) == 0 || st != 0)
			break;
	if (i == n)
		return json_stringn_nocheck(src, n);
	if (n > SIZE_MAX / 3 - 1 || (out = malloc(n * 3 + 1)) == NULL)
		return NULL;
	memcpy(out, src, i);
	o = out + i;
	for (; i < n; i += len) {
		len = utf8_len(p + i, n - i, &st);
		if (st == 0) {
			memcpy(o, p + i, len);
			o += len;
		} else {
			memcpy(o, fffd, 3);
			o += 3;
		}
	}
	j = json_stringn_nocheck(out, (size_t)(o - out));
	free(out);
	return j;
}

size_t
text_utf8_hold(const void *src, size_t n)
{
	const uint8_t	*p = src;
	size_t		 k;
	int		 st;

	for (k = 1; k <= 3 && k <= n; k++) {
		if (p[n - k] < 0x80)
			return 0;
		if (p[n - k] >= 0xc0) {
			(void)utf8_len(p + n - k, k, &st);
			return st == 2 ? k : 0;
		}
	}
	return 0;
}

/* RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF. */
bool
text_utf8_ok(const uint8_t *p, size_t n)
{
	size_t		 i = 0, len, k;
	uint32_t	 cp;

	while (i < n) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if (p[i] >= 0xc2 && p[i] <= 0xdf)
			len = 2;
		else if ((p[i] & 0xf0) == 0xe0)
			len = 3;
		else if (p[i] >= 0xf0 && p[i] <= 0xf4)
			len = 4;
		else
			return false;
		if (n - i < len)
			return false;
		cp = p[i] & (0x7f >> len);
		for (k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 &&
		    cp <= 0xdfff))) || (len == 4 && (cp < 0x10000 ||
		    cp > 0x10ffff)))
			return false;
		i += len;
	}
	return true;
}

/* In place; %00 and bad escapes fail. A query also turns '+' to ' '. */
int
text_pct_decode(char *s, bool query)
{
	char	*o = s;
	int	 hi, lo;

	for (; *s != '\0'; s++) {
		if (*s == '+' && query) {
			*o++ = ' ';
			continue;
		}
		if (*s != '%') {
			*o++ = *s;
			continue;
		}
		if ((hi = hexval(s[1])) == -1 || (lo = hexval(s[2])) == -1 ||
		    (hi == 0 && lo == 0))
			return -1;
		*o++ = (char)(hi << 4 | lo);
		s += 2;
	}
	*o = '\0';
	return 0;
}

/* --- helpers ---------------------------------------------------------- */

/*
 * The UTF-8 sequence at p (Unicode 15 table 3-7). Sets *st: 0 valid,
 * 1 invalid, 2 a valid start cut off by the end of the buffer. Returns
 * the bytes it spans; an invalid run is its maximal valid prefix (at
 * least 1), which becomes one U+FFFD.
 */
static size_t
utf8_len(const uint8_t *p, size_t n, int *st)
{
	uint8_t	 lo = 0x80, hi = 0xbf;
	size_t	 len, i;

	*st = 0;
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		lo = p[0] == 0xe0 ? 0xa0 : 0x80;
		hi = p[0] == 0xed ? 0x9f : 0xbf;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		lo = p[0] == 0xf0 ? 0x90 : 0x80;
		hi = p[0] == 0xf4 ? 0x8f : 0xbf;
	} else {
		*st = 1;
		return 1;
	}
	for (i = 1; i < len; i++) {
		if (i == n) {
			*st = 2;
			return i;
		}
		if (p[i] < lo || p[i] > hi) {
			*st = 1;
			return i;
		}
		lo = 0x80;
		hi = 0xbf;
	}
	return len;
}

static int
hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}
