/* SPDX-License-Identifier: MIT */
/*
 * fuzz_html.c: pincer-agent's text.c on arbitrary bytes (a web page is
 * whatever a site sends): text_utf8 and text_fix give valid UTF-8,
 * text_html keeps it valid and bounded, and text_cut never splits a
 * character.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../sandbox/agent/agent.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	must_be_utf8(const char *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf	 u, h;
	char		*copy;
	size_t		 n;

	buf_init(&u, size * 2 + 1);
	buf_init(&h, size * 4 + 16);
	text_utf8(&u, (const char *)data, size, size > 0 && data[0] & 1);
	must_be_utf8(u.data, u.len);
	text_html(&h, u.data != NULL ? u.data : "", u.len);
	/* An entity or a block break grows, never past twice and a bit. */
	if (h.len > u.len * 2 + 4)
		abort();
	must_be_utf8(h.data, h.len);
	n = text_cut(h.data != NULL ? h.data : "", h.len, size / 3);
	must_be_utf8(h.data, n);
	if ((copy = malloc(size + 1)) == NULL)
		abort();
	memcpy(copy, data, size);
	text_fix(copy, size);
	must_be_utf8(copy, size);
	free(copy);
	buf_free(&u);
	buf_free(&h);
	return 0;
}

/* jansson builds a string from valid UTF-8 only (NUL bytes included). */
static void
must_be_utf8(const char *p, size_t n)
{
	json_t	*s;

	if ((s = json_stringn(p != NULL ? p : "", n)) == NULL)
		abort();
	json_decref(s);
}
