/* SPDX-License-Identifier: MIT */
/*
 * fuzz_sse.c: the SSE splitter on arbitrary bytes, fed whole and in
 * pieces; both ways give the same events, each within the size limit,
 * and every event's raw bytes are a piece of the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pincer.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int	collect(void *, const struct sse_event *);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sse	*a, *b;
	struct buf	 wa, wb;
	size_t		 i, step;
	int		 ra, rb = 0;

	buf_init(&wa, 1 << 22);
	buf_init(&wb, 1 << 22);
	a = sse_new(4096);
	b = sse_new(4096);
	ra = sse_feed(a, (const char *)data, size, collect, &wa);
	step = size > 0 ? (size_t)data[0] % 7 + 1 : 1;
	for (i = 0; i < size && rb == 0; i += step)
		rb = sse_feed(b, (const char *)data + i, size - i < step ?
		    size - i : step, collect, &wb);
	/* Whole or in pieces: the same events (until an error). */
	if (ra == 0 && rb == 0 && (wa.len != wb.len ||
	    (wa.len > 0 && memcmp(wa.data, wb.data, wa.len) != 0)))
		abort();
	sse_free(a);
	sse_free(b);
	buf_free(&wa);
	buf_free(&wb);
	return 0;
}

static int
collect(void *arg, const struct sse_event *ev)
{
	struct buf	*w = arg;

	/* data may hold NUL bytes: it is data_len long, NUL-ended. */
	if (ev->raw_len > 4096 || ev->data_len > ev->raw_len ||
	    ev->data[ev->data_len] != '\0' || strlen(ev->event) > 127)
		abort();
	buf_append(w, ev->event, strlen(ev->event) + 1);
	buf_append(w, ev->data, ev->data_len + 1);
	buf_append(w, ev->raw, ev->raw_len);
	return 0;
}
