/* SPDX-License-Identifier: MIT */
/* fuzz_head.c: head_parse() on arbitrary bytes, checking what it promises. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pincer.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	check_ok(const char *, size_t, const struct head *);
static bool	terminated(const char *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct head	 h;
	char		*p;

	/* An exact-size copy, so that reading past len is caught. */
	if ((p = malloc(size > 0 ? size : 1)) == NULL)
		return 0;
	memcpy(p, data, size);
	if (head_parse(p, size, &h) == HEAD_OK)
		check_ok(p, size, &h);
	free(p);
	return 0;
}

static void
check_ok(const char *p, size_t size, const struct head *h)
{
	struct head	 again;
	char		*q;

	if (h->head_len == 0 || h->head_len > size ||
	    p[h->head_len - 1] != '\n')
		abort();
	if (!terminated(h->method, sizeof(h->method)) || h->method[0] == '\0' ||
	    !terminated(h->path, sizeof(h->path)) ||
	    !terminated(h->forwarded_for, sizeof(h->forwarded_for)))
		abort();
	if (memchr(p, '\0', h->head_len) != NULL)
		abort();
	/* The head alone parses the same; one byte less is not yet a head. */
	if ((q = malloc(h->head_len)) == NULL)
		return;
	memcpy(q, p, h->head_len);
	if (head_parse(q, h->head_len, &again) != HEAD_OK ||
	    memcmp(&again, h, sizeof(again)) != 0)
		abort();
	if (head_parse(q, h->head_len - 1, &again) != HEAD_INCOMPLETE)
		abort();
	free(q);
}

static bool
terminated(const char *s, size_t n)
{
	return memchr(s, '\0', n) != NULL;
}
