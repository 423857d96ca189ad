/* SPDX-License-Identifier: MIT */
/*
 * b64.c: base64url without padding (RFC 4648 §5), as JWT and JWK use it;
 * and decoding of standard base64 (§4), as the sandbox API sends output.
 */
#include <string.h>

#include "pincer.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int	value(unsigned char, bool);
static ssize_t	decode(const char *, size_t, void *, bool);

/* out must hold b64_encoded_len(n) + 1 bytes; it is NUL-terminated. */
size_t
b64url_encode(const void *in, size_t n, char *out)
{
	const unsigned char	*p = in;
	size_t			 i, o = 0;
	uint32_t		 v;

	for (i = 0; i + 2 < n; i += 3) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
		out[o++] = alphabet[v >> 6 & 63];
		out[o++] = alphabet[v & 63];
	}
	if (n - i == 1) {
		v = (uint32_t)p[i] << 16;
		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
	} else if (n - i == 2) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
		out[o++] = alphabet[v >> 6 & 63];
	}
	out[o] = '\0';
	return o;
}

size_t
b64url_encoded_len(size_t n)
{
	return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

/*
 * Decode n characters (padding tolerated at the end, nothing else) into
 * out, which holds at least n * 3 / 4 bytes. Returns the length or -1.
 */
ssize_t
b64url_decode(const char *in, size_t n, void *out)
{
	return decode(in, n, out, true);
}

ssize_t
b64_decode(const char *in, size_t n, void *out)
{
	return decode(in, n, out, false);
}

static ssize_t
decode(const char *in, size_t n, void *out, bool url)
{
	unsigned char	*o = out;
	size_t		 i, len = 0;
	uint32_t	 acc = 0;
	int		 bits = 0, v;

	while (n > 0 && in[n - 1] == '=')
		n--;
	if (n % 4 == 1)
		return -1;
	for (i = 0; i < n; i++) {
		if ((v = value((unsigned char)in[i], url)) < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			o[len++] = (unsigned char)(acc >> bits);
		}
	}
	/* The unused low bits must be zero (RFC 4648 §3.5, canonical). */
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
		return -1;
	return (ssize_t)len;
}

static int
value(unsigned char c, bool url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}
