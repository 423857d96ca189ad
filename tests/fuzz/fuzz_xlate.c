/* SPDX-License-Identifier: MIT */
/*
 * fuzz_xlate.c: translation on arbitrary JSON: requests both ways,
 * answers both ways, usage, provider errors, and the input as a stream
 * both ways. Nothing may crash or leak; what comes out is JSON.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pincer.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int	feed(void *, const struct sse_event *);

struct ctx {
	struct xlate_stream	*s;
	struct buf		*out;
};

static void
check_json(json_t *j)
{
	char	*t;

	if (j == NULL)
		return;
	if ((t = json_dumps(j, JSON_COMPACT)) == NULL)
		abort();
	free(t);
	json_decref(j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t			*j;
	char			 err[256], *e;
	struct llm_tokens	 t = { 0 };
	struct sse		*p;
	struct buf		 out;
	struct ctx		 c;
	int			 d;

	if ((j = json_loadb((const char *)data, size, 0, NULL)) != NULL) {
		check_json(xlate_req_chat_to_anthropic(j, "m", err,
		    sizeof(err)));
		check_json(xlate_req_anthropic_to_chat(j, "m", err,
		    sizeof(err)));
		check_json(xlate_resp_anthropic_to_chat(j));
		check_json(xlate_resp_chat_to_anthropic(j));
		xlate_tokens_json(LLM_API_CHAT, j, &t);
		xlate_tokens_json(LLM_API_MESSAGES, j, &t);
		xlate_tokens_json(LLM_API_RESPONSES, j, &t);
		json_decref(j);
	}
	if ((e = xlate_error_upstream(LLM_API_MESSAGES, LLM_API_CHAT, 500,
	    (const char *)data, size)) == NULL)
		abort();
	free(e);
	for (d = 0; d < 2; d++) {
		buf_init(&out, 1 << 24);
		c.s = xlate_stream_new(d ? XLATE_CHAT_TO_ANTHROPIC :
		    XLATE_ANTHROPIC_TO_CHAT, true);
		c.out = &out;
		p = sse_new(1 << 16);
		sse_feed(p, (const char *)data, size, feed, &c);
		xlate_stream_end(c.s, size % 2 == 0, &out);
		xlate_stream_free(c.s);
		sse_free(p);
		buf_free(&out);
	}
	return 0;
}

static int
feed(void *arg, const struct sse_event *ev)
{
	struct ctx		*c = arg;
	struct llm_tokens	 t = { 0 };

	xlate_tokens_event(LLM_API_MESSAGES, ev, &t);
	xlate_tokens_event(LLM_API_CHAT, ev, &t);
	(void)xlate_chat_usage_only(ev);
	return xlate_stream_event(c->s, ev, c->out) == -1 ? 0 : 0;
}
