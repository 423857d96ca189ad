/* SPDX-License-Identifier: MIT */
/*
 * xlate_stream.c: a stream translated event by event. Anthropic's
 * events (message_start, content_block_start/delta/stop, message_delta,
 * message_stop; Anthropic API reference, "Streaming Messages") become
 * chat.completion.chunk objects ending in [DONE], and the other way
 * round. Nothing is held back but what a later event completes: the
 * finish reason waits for the usage chunk that follows it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pincer.h"

struct xlate_stream {
	enum xlate_dir	 dir;
	bool		 chat_usage;	/* the chat client asked for usage */
	bool		 started;	/* the first event is out */
	bool		 closed;	/* the client's stream has ended */
	char		 id[128];
	char		 model[128];
	long long	 created;
	/* Anthropic to chat: tool blocks by their index. */
	int		 tool_of_block[64];	/* -1: not a tool block */
	int		 ntools;
	/* Chat to Anthropic: the open block. */
	int		 block;		/* index of the open block, -1 none */
	int		 nblocks;
	int		 open_tool;	/* chat tool index of it, -1 text */
	char		 stop[32];	/* held until the usage chunk */
	struct llm_tokens tokens;
};

static int	 from_anthropic(struct xlate_stream *, json_t *, struct buf *);
static int	 from_chat(struct xlate_stream *, json_t *, struct buf *);
static void	 chunk(struct xlate_stream *, struct buf *, json_t *delta,
		    const char *finish);
static void	 event(struct buf *, const char *, json_t *);
static void	 close_block(struct xlate_stream *, struct buf *);
static void	 open_block(struct xlate_stream *, struct buf *, json_t *);
static void	 message_end(struct xlate_stream *, struct buf *);

struct xlate_stream *
xlate_stream_new(enum xlate_dir dir, bool chat_usage)
{
	struct xlate_stream	*s;
	size_t			 i;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->dir = dir;
	s->chat_usage = chat_usage;
	s->block = -1;
	s->open_tool = -1;
	s->created = (long long)time(NULL);
	snprintf(s->id, sizeof(s->id), "chatcmpl-pincer");
	for (i = 0; i < 64; i++)
		s->tool_of_block[i] = -1;
	return s;
}

void
xlate_stream_free(struct xlate_stream *s)
{
	free(s);
}

void
xlate_stream_tokens(const struct xlate_stream *s, struct llm_tokens *t)
{
	if (s->tokens.seen)
		*t = s->tokens;
}

int
xlate_stream_event(struct xlate_stream *s, const struct sse_event *ev,
    struct buf *out)
{
	json_t	*j;
	int	 rc;

	if (s->closed)
		return 0;
	if (s->dir == XLATE_CHAT_TO_ANTHROPIC &&
	    !strcmp(ev->data, "[DONE]")) {
		message_end(s, out);
		return 0;
	}
	if ((j = json_loadb(ev->data, ev->data_len, 0, NULL)) == NULL)
		return -1;
	rc = s->dir == XLATE_ANTHROPIC_TO_CHAT ? from_anthropic(s, j, out) :
	    from_chat(s, j, out);
	json_decref(j);
	return rc;
}

/* The upstream ended: close properly, or say it broke off. */
int
xlate_stream_end(struct xlate_stream *s, bool complete, struct buf *out)
{
	if (s->closed)
		return 0;
	if (!complete) {
		xlate_stream_error(s->dir == XLATE_ANTHROPIC_TO_CHAT ?
		    LLM_API_CHAT : LLM_API_MESSAGES, "the provider's stream "
		    "broke off", out);
		s->closed = true;
		return 0;
	}
	if (s->dir == XLATE_CHAT_TO_ANTHROPIC)
		message_end(s, out);
	else {
		buf_puts(out, "data: [DONE]\n\n");
		s->closed = true;
	}
	return 0;
}

static int
from_anthropic(struct xlate_stream *s, json_t *j, struct buf *out)
{
	const char	*type = json_string_value(json_object_get(j, "type"));
	json_t		*cb, *d, *m, *u;
	json_int_t	 idx = json_integer_value(json_object_get(j, "index"));
	const char	*dt, *e;
	int		 ti;

	if (type == NULL)
		return -1;
	if (!strcmp(type, "message_start")) {
		m = json_object_get(j, "message");
		if (json_string_value(json_object_get(m, "id")))
			snprintf(s->id, sizeof(s->id), "%s", json_string_value(
			    json_object_get(m, "id")));
		if (json_string_value(json_object_get(m, "model")))
			snprintf(s->model, sizeof(s->model), "%s",
			    json_string_value(json_object_get(m, "model")));
		xlate_tokens_json(LLM_API_MESSAGES, m, &s->tokens);
		chunk(s, out, json_pack("{s:s, s:s}", "role", "assistant",
		    "content", ""), NULL);
	} else if (!strcmp(type, "content_block_start")) {
		cb = json_object_get(j, "content_block");
		dt = json_string_value(json_object_get(cb, "type"));
		if (dt == NULL || strcmp(dt, "tool_use") || idx < 0 ||
		    idx >= 64)
			return 0;
		s->tool_of_block[idx] = ti = s->ntools++;
		chunk(s, out, json_pack("{s:[{s:i, s:O?, s:s, s:{s:O?, s:s}}]}",
		    "tool_calls", "index", ti, "id", json_object_get(cb, "id"),
		    "type", "function", "function", "name",
		    json_object_get(cb, "name"), "arguments", ""), NULL);
	} else if (!strcmp(type, "content_block_delta")) {
		d = json_object_get(j, "delta");
		dt = json_string_value(json_object_get(d, "type"));
		if (dt != NULL && !strcmp(dt, "text_delta"))
			chunk(s, out, json_pack("{s:O?}", "content",
			    json_object_get(d, "text")), NULL);
		else if (dt != NULL && !strcmp(dt, "input_json_delta") &&
		    idx >= 0 && idx < 64 && s->tool_of_block[idx] >= 0)
			chunk(s, out, json_pack("{s:[{s:i, s:{s:O?}}]}",
			    "tool_calls", "index", s->tool_of_block[idx],
			    "function", "arguments", json_object_get(d,
			    "partial_json")), NULL);
	} else if (!strcmp(type, "message_delta")) {
		u = json_object_get(j, "usage");
		/* Output tokens here; input too, lately, or only at start. */
		if (json_is_object(u))
			xlate_tokens_json(LLM_API_MESSAGES, j, &s->tokens);
		e = json_string_value(json_object_get(json_object_get(j,
		    "delta"), "stop_reason"));
		chunk(s, out, json_object(), xlate_stop_to_finish(e));
		if (s->chat_usage) {
			json_t *c = json_pack("{s:s, s:s, s:I, s:s, s:[], "
			    "s:{s:I, s:I, s:I, s:{s:I}}}", "id", s->id,
			    "object", "chat.completion.chunk", "created",
			    (json_int_t)s->created, "model", s->model,
			    "choices", "usage", "prompt_tokens",
			    (json_int_t)s->tokens.in, "completion_tokens",
			    (json_int_t)s->tokens.out, "total_tokens",
			    (json_int_t)(s->tokens.in + s->tokens.out),
			    "prompt_tokens_details", "cached_tokens",
			    (json_int_t)s->tokens.cached);
			event(out, NULL, c);
		}
	} else if (!strcmp(type, "message_stop")) {
		buf_puts(out, "data: [DONE]\n\n");
		s->closed = true;
	} else if (!strcmp(type, "error")) {
		e = json_string_value(json_object_get(json_object_get(j,
		    "error"), "message"));
		xlate_stream_error(LLM_API_CHAT, e ? e : "the provider's "
		    "stream failed", out);
		s->closed = true;
	}
	/* ping, content_block_stop, thinking deltas: nothing to send. */
	return 0;
}

/* One chat.completion.chunk with this delta (taken). */
static void
chunk(struct xlate_stream *s, struct buf *out, json_t *delta,
    const char *finish)
{
	json_t	*c;

	c = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:n, s:s?}]}",
	    "id", s->id, "object", "chat.completion.chunk", "created",
	    (json_int_t)s->created, "model", s->model, "choices", "index", 0,
	    "delta", delta, "logprobs", "finish_reason", finish);
	event(out, NULL, c);
}

/* data: JSON (and event: NAME), then the blank line; takes j. */
static void
event(struct buf *out, const char *name, json_t *j)
{
	char	*t;

	if (j == NULL)
		return;
	t = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (t == NULL)
		return;
	if (name != NULL)
		buf_printf(out, "event: %s\ndata: %s\n\n", name, t);
	else
		buf_printf(out, "data: %s\n\n", t);
	free(t);
}

static int
from_chat(struct xlate_stream *s, json_t *j, struct buf *out)
{
	json_t		*choice, *d, *tc, *e;
	const char	*text, *fin;
	size_t		 i;
	int		 ti;

	if ((e = json_object_get(j, "error")) != NULL) {
		xlate_stream_error(LLM_API_MESSAGES, json_string_value(
		    json_object_get(e, "message")) ? json_string_value(
		    json_object_get(e, "message")) : "the provider's stream "
		    "failed", out);
		s->closed = true;
		return 0;
	}
	if (!s->started) {
		s->started = true;
		snprintf(s->id, sizeof(s->id), "msg_%s",
		    json_string_value(json_object_get(j, "id")) ?
		    json_string_value(json_object_get(j, "id")) : "pincer");
		snprintf(s->model, sizeof(s->model), "%s",
		    json_string_value(json_object_get(j, "model")) ?
		    json_string_value(json_object_get(j, "model")) : "");
		event(out, "message_start", json_pack("{s:s, s:{s:s, s:s, "
		    "s:s, s:s, s:[], s:n, s:n, s:{s:i, s:i}}}", "type",
		    "message_start", "message", "id", s->id, "type", "message",
		    "role", "assistant", "model", s->model, "content",
		    "stop_reason", "stop_sequence", "usage", "input_tokens", 0,
		    "output_tokens", 0));
	}
	if (json_is_object(json_object_get(j, "usage")))
		xlate_tokens_json(LLM_API_CHAT, j, &s->tokens);
	choice = json_array_get(json_object_get(j, "choices"), 0);
	d = json_object_get(choice, "delta");
	text = json_string_value(json_object_get(d, "content"));
	if (text != NULL && *text != '\0') {
		if (s->block < 0 || s->open_tool != -1) {
			close_block(s, out);
			open_block(s, out, json_pack("{s:s, s:s}", "type",
			    "text", "text", ""));
			s->open_tool = -1;
		}
		event(out, "content_block_delta", json_pack("{s:s, s:i, "
		    "s:{s:s, s:s}}", "type", "content_block_delta", "index",
		    s->block, "delta", "type", "text_delta", "text", text));
	}
	json_array_foreach(json_object_get(d, "tool_calls"), i, tc) {
		ti = (int)json_integer_value(json_object_get(tc, "index"));
		if (s->block < 0 || s->open_tool != ti) {
			close_block(s, out);
			open_block(s, out, json_pack("{s:s, s:O?, s:O?, s:{}}",
			    "type", "tool_use", "id", json_object_get(tc, "id"),
			    "name", json_object_get(json_object_get(tc,
			    "function"), "name"), "input"));
			s->open_tool = ti;
		}
		text = json_string_value(json_object_get(json_object_get(tc,
		    "function"), "arguments"));
		if (text != NULL && *text != '\0')
			event(out, "content_block_delta", json_pack(
			    "{s:s, s:i, s:{s:s, s:s}}", "type",
			    "content_block_delta",
			    "index", s->block, "delta", "type",
			    "input_json_delta", "partial_json", text));
	}
	fin = json_string_value(json_object_get(choice, "finish_reason"));
	if (fin != NULL)
		snprintf(s->stop, sizeof(s->stop), "%s",
		    xlate_finish_to_stop(fin));
	return 0;
}

static void
open_block(struct xlate_stream *s, struct buf *out, json_t *cb)
{
	s->block = s->nblocks++;
	event(out, "content_block_start", json_pack("{s:s, s:i, s:o}", "type",
	    "content_block_start", "index", s->block, "content_block", cb));
}

static void
close_block(struct xlate_stream *s, struct buf *out)
{
	if (s->block < 0)
		return;
	event(out, "content_block_stop", json_pack("{s:s, s:i}", "type",
	    "content_block_stop", "index", s->block));
	s->block = -1;
}

/* [DONE] (or a clean end without it): the held stop reason and usage. */
static void
message_end(struct xlate_stream *s, struct buf *out)
{
	if (s->closed)
		return;
	if (!s->started) {
		json_t	*empty = json_object();

		from_chat(s, empty, out);
		json_decref(empty);
	}
	close_block(s, out);
	event(out, "message_delta", json_pack("{s:s, s:{s:s, s:n}, s:{s:I, "
	    "s:I}}", "type", "message_delta", "delta", "stop_reason",
	    s->stop[0] ? s->stop : "end_turn", "stop_sequence", "usage",
	    "input_tokens", (json_int_t)(s->tokens.in - s->tokens.cached),
	    "output_tokens", (json_int_t)s->tokens.out));
	event(out, "message_stop", json_pack("{s:s}", "type",
	    "message_stop"));
	s->closed = true;
}
