/* SPDX-License-Identifier: MIT */
/*
 * fuzz_s3.c: the s3 backend's XML reader (s3_proto.c) on arbitrary bytes,
 * which need not end in NUL: a list page, an error, an upload id, and
 * entity decoding. Every key handed on is a NUL-free string that fits,
 * and a truncated page always has a token.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int	each(const char *, const struct os_meta *, void *);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*x;
	char		 next[2048], err[160], code[64], msg[160], out[512];
	char		*copy;
	bool		 more;
	int		 n = 0, rc;

	/* An exact-size copy, so reading one byte past it is caught. */
	if ((copy = malloc(size > 0 ? size : 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	x = copy;
	rc = s3_parse_list(x, size, each, &n, &more, next, sizeof(next), err,
	    sizeof(err));
	if (rc == 0 && more && *next == '\0')
		abort();
	if (rc == -1 && *err == '\0')
		abort();
	if (s3_parse_error(x, size, code, sizeof(code), msg, sizeof(msg)) ==
	    0 && (strlen(code) >= sizeof(code) || strlen(msg) >= sizeof(msg)))
		abort();
	if (s3_xml_text(x, size, "UploadId", out, sizeof(out)) == 0 &&
	    strlen(out) >= sizeof(out))
		abort();
	if (s3_xml_unescape(x, size, out, sizeof(out)) == 0 &&
	    strlen(out) > size * 4)
		abort();
	free(copy);
	return 0;
}

static int
each(const char *key, const struct os_meta *m, void *arg)
{
	if (*key == '\0' || strlen(key) >= 2048 || m->size < 0 ||
	    *m->sha256 != '\0' || strlen(m->etag) >= sizeof(m->etag))
		abort();
	(*(int *)arg)++;
	return 0;
}
