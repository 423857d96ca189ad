/* SPDX-License-Identifier: MIT */
/* test_sse.c: the Server-Sent Events splitter (sse.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pincer.h"
#include "tap.h"

/* What the callback saw, one line per event: "name|data|raw". */
static struct buf	 seen;
static int		 stop_after = -1;

static int
collect(void *arg, const struct sse_event *ev)
{
	(void)arg;
	buf_printf(&seen, "%s|%s|%.*s\n", ev->event, ev->data,
	    (int)ev->raw_len, ev->raw);
	if (stop_after >= 0 && --stop_after < 0)
		return -1;
	return 0;
}

/* Feed TEXT in pieces of STEP bytes (0: whole); what was seen. */
static const char *
feed(const char *text, size_t step, size_t max, int *rc)
{
	struct sse	*s = sse_new(max);
	size_t		 n = strlen(text), i, k;

	buf_reset(&seen);
	*rc = 0;
	for (i = 0; i < n && *rc == 0; i += k) {
		k = step == 0 || n - i < step ? n - i : step;
		*rc = sse_feed(s, text + i, k, collect, NULL);
	}
	sse_free(s);
	return seen.data != NULL ? seen.data : "";
}

int
main(void)
{
	const char	*want, *got;
	char		 big[300];
	size_t		 step;
	int		 rc;

	buf_init(&seen, 1 << 20);
	got = feed("data: hello\n\n", 0, 1024, &rc);
	is_str(got, "|hello|data: hello\n\n\n", "one event, no name");
	got = feed("event: message_start\ndata: {\"a\":1}\n\n", 0, 1024, &rc);
	is_str(got, "message_start|{\"a\":1}|event: message_start\n"
	    "data: {\"a\":1}\n\n\n", "a named event keeps its raw bytes");
	got = feed("data: a\ndata: b\n\n", 0, 1024, &rc);
	is_str(got, "|a\nb|data: a\ndata: b\n\n\n", "data lines joined by LF");
	got = feed("data:x\n\ndata:  y\n\n", 0, 1024, &rc);
	is_str(got, "|x|data:x\n\n\n| y|data:  y\n\n\n",
	    "one space after the colon is dropped, only one");
	got = feed(": keepalive\n\n: ping\ndata: z\n\n", 0, 1024, &rc);
	is_str(got, "|z|: ping\ndata: z\n\n\n",
	    "comments: no event of their own, and kept in the raw bytes");
	got = feed("event: e\n\n", 0, 1024, &rc);
	is_str(got, "", "an event without data is not dispatched");
	got = feed("data: a\r\n\r\ndata: b\r\rdata: c\n\n", 0, 1024, &rc);
	is_str(got, "|a|data: a\r\n\r\n\n|b|data: b\r\r\n|c|data: c\n\n\n",
	    "CRLF, CR and LF line ends");
	want = "|one|event: \r\ndata: one\r\n\r\n\nx|two|event: x\r\n"
	    "data: two\r\n\r\n\n";
	for (step = 1; step <= 7; step++) {
		got = feed("event: \r\ndata: one\r\n\r\nevent: x\r\ndata: two"
		    "\r\n\r\n", step, 1024, &rc);
		if (!ok(!strcmp(got, want) && rc == 0, "split every %zu bytes "
		    "(CRLF split too): the same events", step))
			printf("#   got \"%s\"\n", got);
	}
	got = feed("data: [DONE]\n\ndata: tail", 0, 1024, &rc);
	is_str(got, "|[DONE]|data: [DONE]\n\n\n",
	    "an unfinished event at the end is not dispatched");
	got = feed("data\n\n", 0, 1024, &rc);
	is_str(got, "||data\n\n\n", "a field without a colon: empty data");
	got = feed("retry: 5\nid: 7\ndata: k\n\n", 0, 1024, &rc);
	is_str(got, "|k|retry: 5\nid: 7\ndata: k\n\n\n", "id and retry ignored");

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "data: ", 6);
	got = feed(big, 0, 256, &rc);
	is_int(rc, -1, "an event over max_event is an error");
	got = feed(big, 16, 256, &rc);
	is_int(rc, -1, "… also when it arrives in pieces");
	stop_after = 0;
	got = feed("data: 1\n\ndata: 2\n\n", 0, 1024, &rc);
	is_int(rc, -1, "the callback's -1 stops the feed");
	is_str(got, "|1|data: 1\n\n\n", "… after that event");
	stop_after = -1;
	buf_free(&seen);
	return done_testing();
}
