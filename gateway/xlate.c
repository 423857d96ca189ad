/* SPDX-License-Identifier: MIT */
/*
 * xlate.c: OpenAI chat completions <-> Anthropic messages, for requests
 * and whole answers; usage as each API reports it; error bodies in the
 * shape the client's SDK parses. Streams are in xlate_stream.c.
 *
 * References: OpenAI API reference, "Chat Completions"; Anthropic API
 * reference, "Messages". What does not map: docs/llm-translation.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pincer.h"

#define DEFAULT_MAX_TOKENS	4096
#define ERR_MSG_MAX		1000

static int	 chat_content_to_blocks(json_t *, json_t *, char *, size_t);
static json_t	*image_block(const char *, char *, size_t);
static int	 chat_msg_to_anthropic(json_t *, json_t *, json_t *, char *,
		    size_t);
static void	 push_message(json_t *, const char *, json_t *);
static json_t	*chat_tools_to_anthropic(json_t *, char *, size_t);
static json_t	*chat_choice_to_anthropic(json_t *, json_t *, char *, size_t);
static int	 anthropic_msg_to_chat(json_t *, json_t *, char *, size_t);
static json_t	*blocks_text(json_t *);
static const char *anthropic_error_type(int);
static const char *openai_error_type(int);
static void	 copy_field(json_t *, const char *, json_t *, const char *);

json_t *
xlate_req_chat_to_anthropic(json_t *req, const char *model, char *err,
    size_t errsz)
{
	json_t		*out, *msgs, *sys, *m, *v, *t;
	size_t		 i;
	json_int_t	 max = DEFAULT_MAX_TOKENS;

	msgs = json_object_get(req, "messages");
	if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
		snprintf(err, errsz, "\"messages\" must be a non-empty array");
		return NULL;
	}
	if ((v = json_object_get(req, "n")) != NULL && json_integer_value(v)
	    > 1) {
		snprintf(err, errsz, "\"n\" above 1 cannot be sent to an "
		    "Anthropic provider");
		return NULL;
	}
	out = json_pack("{s:s, s:[]}", "model", model, "messages");
	sys = json_array();
	json_array_foreach(msgs, i, m)
		if (chat_msg_to_anthropic(m, json_object_get(out, "messages"),
		    sys, err, errsz) == -1)
			goto fail;
	if (json_array_size(sys) > 0)
		json_object_set_new(out, "system", blocks_text(sys));
	json_decref(sys);
	sys = NULL;
	if ((v = json_object_get(req, "max_completion_tokens")) != NULL ||
	    (v = json_object_get(req, "max_tokens")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 1) {
			snprintf(err, errsz, "max_tokens must be a positive "
			    "integer");
			goto fail;
		}
		max = json_integer_value(v);
	}
	json_object_set_new(out, "max_tokens", json_integer(max));
	copy_field(out, "temperature", req, "temperature");
	copy_field(out, "top_p", req, "top_p");
	copy_field(out, "stream", req, "stream");
	if ((v = json_object_get(req, "stop")) != NULL) {
		if (json_is_string(v))
			json_object_set_new(out, "stop_sequences",
			    json_pack("[O]", v));
		else if (json_is_array(v))
			json_object_set(out, "stop_sequences", v);
	}
	if ((v = json_object_get(req, "user")) != NULL && json_is_string(v))
		json_object_set_new(out, "metadata", json_pack("{s:O}",
		    "user_id", v));
	if ((v = json_object_get(req, "tools")) != NULL &&
	    json_array_size(v) > 0) {
		if ((t = chat_tools_to_anthropic(v, err, errsz)) == NULL)
			goto fail;
		json_object_set_new(out, "tools", t);
	}
	if ((v = json_object_get(req, "tool_choice")) != NULL ||
	    json_is_false(json_object_get(req, "parallel_tool_calls"))) {
		if ((t = chat_choice_to_anthropic(v, json_object_get(req,
		    "parallel_tool_calls"), err, errsz)) == NULL)
			goto fail;
		json_object_set_new(out, "tool_choice", t);
	}
	if (json_array_size(json_object_get(out, "messages")) == 0) {
		snprintf(err, errsz, "there is no user or assistant message");
		goto fail;
	}
	return out;
fail:
	json_decref(sys);
	json_decref(out);
	return NULL;
}

/* One chat message onto the Anthropic list (system ones aside). */
static int
chat_msg_to_anthropic(json_t *m, json_t *list, json_t *sys, char *err,
    size_t errsz)
{
	const char	*role = json_string_value(json_object_get(m, "role"));
	json_t		*content = json_object_get(m, "content"), *blocks, *tc;
	json_t		*in, *b;
	json_error_t	 je;
	size_t		 i;

	if (!json_is_object(m) || role == NULL) {
		snprintf(err, errsz, "each message needs a \"role\"");
		return -1;
	}
	blocks = json_array();
	if (!strcmp(role, "system") || !strcmp(role, "developer")) {
		if (chat_content_to_blocks(content, sys, err, errsz) == -1)
			goto fail;
		json_decref(blocks);
		return 0;
	}
	if (!strcmp(role, "tool")) {
		b = json_pack("{s:s, s:O?}", "type", "tool_result",
		    "tool_use_id", json_object_get(m, "tool_call_id"));
		if (json_is_string(content))
			json_object_set(b, "content", content);
		else {
			in = json_array();
			if (chat_content_to_blocks(content, in, err, errsz) ==
			    -1) {
				json_decref(in);
				json_decref(b);
				goto fail;
			}
			json_object_set_new(b, "content", in);
		}
		json_array_append_new(blocks, b);
		push_message(list, "user", blocks);
		return 0;
	}
	if (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0) {
		snprintf(err, errsz, "unknown message role \"%.40s\"", role);
		goto fail;
	}
	if (content != NULL && !json_is_null(content) &&
	    chat_content_to_blocks(content, blocks, err, errsz) == -1)
		goto fail;
	json_array_foreach(json_object_get(m, "tool_calls"), i, tc) {
		const char *args = json_string_value(json_object_get(
		    json_object_get(tc, "function"), "arguments"));

		in = args == NULL || *args == '\0' ? json_object() :
		    json_loads(args, 0, &je);
		if (in == NULL || !json_is_object(in)) {
			json_decref(in);
			snprintf(err, errsz, "the arguments of tool call %zu "
			    "are not a JSON object", i);
			goto fail;
		}
		json_array_append_new(blocks, json_pack("{s:s, s:O?, s:O?, "
		    "s:o}", "type", "tool_use", "id", json_object_get(tc, "id"),
		    "name", json_object_get(json_object_get(tc, "function"),
		    "name"), "input", in));
	}
	push_message(list, role, blocks);
	return 0;
fail:
	json_decref(blocks);
	return -1;
}

/* Anthropic wants roles to alternate: a message of the same role as the
 * last one joins it. Takes blocks. */
static void
push_message(json_t *list, const char *role, json_t *blocks)
{
	json_t	*last = json_array_get(list, json_array_size(list) - 1);

	if (json_array_size(blocks) == 0) {
		json_decref(blocks);
		return;
	}
	if (last != NULL && !strcmp(json_string_value(json_object_get(last,
	    "role")), role)) {
		json_array_extend(json_object_get(last, "content"), blocks);
		json_decref(blocks);
		return;
	}
	json_array_append_new(list, json_pack("{s:s, s:o}", "role", role,
	    "content", blocks));
}

/* A chat content (a string or parts) as Anthropic blocks, appended. */
static int
chat_content_to_blocks(json_t *c, json_t *out, char *err, size_t errsz)
{
	json_t		*p, *img;
	const char	*type;
	size_t		 i;

	if (json_is_string(c)) {
		if (json_string_length(c) > 0)
			json_array_append_new(out, json_pack("{s:s, s:O}",
			    "type", "text", "text", c));
		return 0;
	}
	if (!json_is_array(c)) {
		snprintf(err, errsz, "a message's content is a string or an "
		    "array of parts");
		return -1;
	}
	json_array_foreach(c, i, p) {
		type = json_string_value(json_object_get(p, "type"));
		if (type != NULL && !strcmp(type, "text"))
			json_array_append_new(out, json_pack("{s:s, s:O?}",
			    "type", "text", "text",
			    json_object_get(p, "text")));
		else if (type != NULL && !strcmp(type, "image_url")) {
			img = image_block(json_string_value(json_object_get(
			    json_object_get(p, "image_url"), "url")), err,
			    errsz);
			if (img == NULL)
				return -1;
			json_array_append_new(out, img);
		} else {
			snprintf(err, errsz, "content parts of type \"%.40s\" "
			    "cannot be sent to an Anthropic provider",
			    type ? type : "?");
			return -1;
		}
	}
	return 0;
}

/* data:MEDIA;base64,DATA or an http(s) URL. */
static json_t *
image_block(const char *url, char *err, size_t errsz)
{
	const char	*semi, *comma;

	if (url == NULL)
		goto bad;
	if (!strncmp(url, "data:", 5)) {
		semi = strchr(url, ';');
		comma = strchr(url, ',');
		if (semi == NULL || comma == NULL || semi > comma ||
		    strncmp(semi, ";base64,", 8) != 0)
			goto bad;
		return json_pack("{s:s, s:{s:s, s:s%, s:s}}", "type", "image",
		    "source", "type", "base64", "media_type", url + 5,
		    (size_t)(semi - url - 5), "data", comma + 1);
	}
	if (!strncmp(url, "https://", 8) || !strncmp(url, "http://", 7))
		return json_pack("{s:s, s:{s:s, s:s}}", "type", "image",
		    "source", "type", "url", "url", url);
bad:
	snprintf(err, errsz, "an image_url is a data:…;base64, URL or an "
	    "http(s) URL");
	return NULL;
}

static json_t *
chat_tools_to_anthropic(json_t *tools, char *err, size_t errsz)
{
	json_t	*out = json_array(), *t, *f;
	size_t	 i;

	json_array_foreach(tools, i, t) {
		f = json_object_get(t, "function");
		if (json_string_value(json_object_get(f, "name")) == NULL) {
			snprintf(err, errsz, "each tool needs function.name "
			    "(only function tools map to Anthropic)");
			json_decref(out);
			return NULL;
		}
		json_array_append_new(out, json_pack("{s:O, s:O?, s:O*}",
		    "name", json_object_get(f, "name"), "description",
		    json_object_get(f, "description"), "input_schema",
		    json_object_get(f, "parameters")));
		if (json_object_get(f, "parameters") == NULL)
			json_object_set_new(json_array_get(out, i),
			    "input_schema", json_pack("{s:s}", "type",
			    "object"));
	}
	return out;
}

static json_t *
chat_choice_to_anthropic(json_t *c, json_t *parallel, char *err,
    size_t errsz)
{
	const char	*s = json_string_value(c);
	json_t		*out;

	if (c == NULL || (s != NULL && !strcmp(s, "auto")))
		out = json_pack("{s:s}", "type", "auto");
	else if (s != NULL && !strcmp(s, "none"))
		out = json_pack("{s:s}", "type", "none");
	else if (s != NULL && !strcmp(s, "required"))
		out = json_pack("{s:s}", "type", "any");
	else if (json_string_value(json_object_get(json_object_get(c,
	    "function"), "name")) != NULL)
		out = json_pack("{s:s, s:O}", "type", "tool", "name",
		    json_object_get(json_object_get(c, "function"), "name"));
	else {
		snprintf(err, errsz, "tool_choice is auto, none, required or "
		    "{type: function, function: {name}}");
		return NULL;
	}
	if (json_is_false(parallel))
		json_object_set_new(out, "disable_parallel_tool_use",
		    json_true());
	return out;
}

json_t *
xlate_req_anthropic_to_chat(json_t *req, const char *model, char *err,
    size_t errsz)
{
	json_t		*out, *msgs, *m, *v, *t, *tools;
	const char	*s;
	size_t		 i;

	msgs = json_object_get(req, "messages");
	if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
		snprintf(err, errsz, "\"messages\" must be a non-empty array");
		return NULL;
	}
	out = json_pack("{s:s, s:[]}", "model", model, "messages");
	if ((v = json_object_get(req, "system")) != NULL) {
		t = json_is_string(v) ? json_incref(v) : blocks_text(v);
		json_array_append_new(json_object_get(out, "messages"),
		    json_pack("{s:s, s:o}", "role", "system", "content", t));
	}
	json_array_foreach(msgs, i, m)
		if (anthropic_msg_to_chat(m, json_object_get(out, "messages"),
		    err, errsz) == -1) {
			json_decref(out);
			return NULL;
		}
	copy_field(out, "max_tokens", req, "max_tokens");
	copy_field(out, "temperature", req, "temperature");
	copy_field(out, "top_p", req, "top_p");
	copy_field(out, "stop", req, "stop_sequences");
	if (json_is_true(json_object_get(req, "stream"))) {
		json_object_set_new(out, "stream", json_true());
		json_object_set_new(out, "stream_options",
		    json_pack("{s:b}", "include_usage", 1));
	}
	copy_field(out, "user", json_object_get(req, "metadata"), "user_id");
	if ((v = json_object_get(req, "tools")) != NULL &&
	    json_array_size(v) > 0) {
		tools = json_array();
		json_array_foreach(v, i, t)
			json_array_append_new(tools, json_pack("{s:s, s:{s:O?, "
			    "s:O?, s:O?}}", "type", "function", "function",
			    "name", json_object_get(t, "name"), "description",
			    json_object_get(t, "description"), "parameters",
			    json_object_get(t, "input_schema")));
		json_object_set_new(out, "tools", tools);
	}
	if ((v = json_object_get(req, "tool_choice")) != NULL) {
		s = json_string_value(json_object_get(v, "type"));
		if (s != NULL && !strcmp(s, "any"))
			json_object_set_new(out, "tool_choice",
			    json_string("required"));
		else if (s != NULL && !strcmp(s, "none"))
			json_object_set_new(out, "tool_choice",
			    json_string("none"));
		else if (s != NULL && !strcmp(s, "tool"))
			json_object_set_new(out, "tool_choice", json_pack(
			    "{s:s, s:{s:O?}}", "type", "function", "function",
			    "name", json_object_get(v, "name")));
		else
			json_object_set_new(out, "tool_choice",
			    json_string("auto"));
		if (json_is_true(json_object_get(v,
		    "disable_parallel_tool_use")))
			json_object_set_new(out, "parallel_tool_calls",
			    json_false());
	}
	return out;
}

/*
 * One Anthropic message as chat messages: a user's tool_result blocks
 * become tool messages (first, in order), the rest one user message; an
 * assistant's tool_use blocks become its tool_calls.
 */
static int
anthropic_msg_to_chat(json_t *m, json_t *list, char *err, size_t errsz)
{
	const char	*role = json_string_value(json_object_get(m, "role"));
	json_t		*c = json_object_get(m, "content"), *b, *parts, *calls;
	const char	*type;
	char		*args, url[64];
	size_t		 i;

	if (role == NULL || (strcmp(role, "user") && strcmp(role,
	    "assistant"))) {
		snprintf(err, errsz, "each message's role is user or "
		    "assistant");
		return -1;
	}
	if (json_is_string(c)) {
		json_array_append_new(list, json_pack("{s:s, s:O}", "role",
		    role, "content", c));
		return 0;
	}
	if (!json_is_array(c)) {
		snprintf(err, errsz, "a message's content is a string or an "
		    "array of blocks");
		return -1;
	}
	parts = json_array();
	calls = json_array();
	json_array_foreach(c, i, b) {
		type = json_string_value(json_object_get(b, "type"));
		if (type == NULL)
			continue;
		if (!strcmp(type, "text"))
			json_array_append_new(parts, json_pack("{s:s, s:O?}",
			    "type", "text", "text",
			    json_object_get(b, "text")));
		else if (!strcmp(type, "image")) {
			json_t *src = json_object_get(b, "source");
			const char *st = json_string_value(json_object_get(src,
			    "type"));
			struct buf u;

			buf_init(&u, 64L << 20);
			if (st != NULL && !strcmp(st, "base64"))
				buf_printf(&u, "data:%s;base64,%s",
				    json_string_value(json_object_get(src,
				    "media_type")), json_string_value(
				    json_object_get(src, "data")));
			else
				buf_puts(&u, json_string_value(json_object_get(
				    src, "url")) ? json_string_value(
				    json_object_get(src, "url")) : "");
			json_array_append_new(parts, json_pack("{s:s, s:{s:s}}",
			    "type", "image_url", "image_url", "url", u.data ?
			    u.data : ""));
			buf_free(&u);
		} else if (!strcmp(type, "tool_use")) {
			args = json_object_get(b, "input") != NULL ?
			    json_dumps(json_object_get(b, "input"),
			    JSON_COMPACT) : NULL;
			json_array_append_new(calls, json_pack("{s:O?, s:s, "
			    "s:{s:O?, s:s}}", "id", json_object_get(b, "id"),
			    "type", "function", "function", "name",
			    json_object_get(b, "name"), "arguments",
			    args ? args : "{}"));
			free(args);
		} else if (!strcmp(type, "tool_result")) {
			json_t *rc = json_object_get(b, "content");
			json_t *text = json_is_string(rc) ? json_incref(rc) :
			    rc != NULL ? blocks_text(rc) : json_string("");

			if (json_is_true(json_object_get(b, "is_error"))) {
				snprintf(url, sizeof(url), "(error) ");
				json_t *t2 = json_sprintf("%s%s", url,
				    json_string_value(text));
				json_decref(text);
				text = t2;
			}
			json_array_append_new(list, json_pack("{s:s, s:O?, "
			    "s:o}", "role", "tool", "tool_call_id",
			    json_object_get(b, "tool_use_id"), "content",
			    text));
		}
		/* thinking, redacted_thinking, documents: not sent. */
	}
	if (json_array_size(parts) > 0 || json_array_size(calls) > 0) {
		json_t *msg = json_pack("{s:s}", "role", role);

		if (json_array_size(parts) == 1 && !strcmp(json_string_value(
		    json_object_get(json_array_get(parts, 0), "type")),
		    "text"))
			json_object_set(msg, "content", json_object_get(
			    json_array_get(parts, 0), "text"));
		else if (json_array_size(parts) > 0)
			json_object_set(msg, "content", parts);
		else
			json_object_set_new(msg, "content", json_null());
		if (json_array_size(calls) > 0)
			json_object_set(msg, "tool_calls", calls);
		json_array_append_new(list, msg);
	}
	json_decref(parts);
	json_decref(calls);
	return 0;
}

/* Text blocks (or a list of strings) joined into one string. */
static json_t *
blocks_text(json_t *blocks)
{
	struct buf	 b;
	json_t		*v, *out;
	const char	*t;
	size_t		 i;

	if (json_is_string(blocks))
		return json_incref(blocks);
	buf_init(&b, 64L << 20);
	json_array_foreach(blocks, i, v) {
		t = json_is_string(v) ? json_string_value(v) :
		    json_string_value(json_object_get(v, "text"));
		if (t == NULL)
			continue;
		if (b.len > 0)
			buf_puts(&b, "\n");
		buf_puts(&b, t);
	}
	out = json_string(b.data != NULL ? b.data : "");
	buf_free(&b);
	return out;
}

json_t *
xlate_resp_anthropic_to_chat(json_t *msg)
{
	json_t		*content, *b, *calls, *m, *u, *out;
	struct buf	 text;
	const char	*type;
	char		*args;
	size_t		 i;
	struct llm_tokens t = { 0 };

	content = json_object_get(msg, "content");
	if (!json_is_object(msg) || !json_is_array(content))
		return NULL;
	buf_init(&text, 64L << 20);
	calls = json_array();
	json_array_foreach(content, i, b) {
		type = json_string_value(json_object_get(b, "type"));
		if (type != NULL && !strcmp(type, "text"))
			buf_puts(&text, json_string_value(json_object_get(b,
			    "text")) ? json_string_value(json_object_get(b,
			    "text")) : "");
		else if (type != NULL && !strcmp(type, "tool_use")) {
			args = json_dumps(json_object_get(b, "input"),
			    JSON_COMPACT);
			json_array_append_new(calls, json_pack("{s:O?, s:s, "
			    "s:{s:O?, s:s}}", "id", json_object_get(b, "id"),
			    "type", "function", "function", "name",
			    json_object_get(b, "name"), "arguments",
			    args ? args : "{}"));
			free(args);
		}
	}
	m = json_pack("{s:s, s:n}", "role", "assistant", "refusal");
	json_object_set_new(m, "content", text.len > 0 || json_array_size(
	    calls) == 0 ? json_string(text.data ? text.data : "") :
	    json_null());
	if (json_array_size(calls) > 0)
		json_object_set(m, "tool_calls", calls);
	json_decref(calls);
	buf_free(&text);
	xlate_tokens_json(LLM_API_MESSAGES, msg, &t);
	u = json_pack("{s:I, s:I, s:I, s:{s:I}}", "prompt_tokens",
	    (json_int_t)t.in, "completion_tokens", (json_int_t)t.out,
	    "total_tokens", (json_int_t)(t.in + t.out),
	    "prompt_tokens_details", "cached_tokens", (json_int_t)t.cached);
	out = json_pack("{s:O?, s:s, s:I, s:O?, s:[{s:i, s:o, s:n, s:s}], "
	    "s:o}", "id", json_object_get(msg, "id"), "object",
	    "chat.completion", "created", (json_int_t)time(NULL), "model",
	    json_object_get(msg, "model"), "choices", "index", 0, "message",
	    m, "logprobs", "finish_reason", xlate_stop_to_finish(
	    json_string_value(json_object_get(msg, "stop_reason"))), "usage",
	    u);
	return out;
}

json_t *
xlate_resp_chat_to_anthropic(json_t *cc)
{
	json_t		*choice, *m, *content, *tc, *in, *out;
	const char	*text, *id;
	size_t		 i;
	char		 mid[96];
	struct llm_tokens t = { 0 };

	choice = json_array_get(json_object_get(cc, "choices"), 0);
	m = json_object_get(choice, "message");
	if (!json_is_object(cc) || !json_is_object(m))
		return NULL;
	content = json_array();
	text = json_string_value(json_object_get(m, "content"));
	if (text != NULL && *text != '\0')
		json_array_append_new(content, json_pack("{s:s, s:s}", "type",
		    "text", "text", text));
	json_array_foreach(json_object_get(m, "tool_calls"), i, tc) {
		const char *a = json_string_value(json_object_get(
		    json_object_get(tc, "function"), "arguments"));

		in = a != NULL ? json_loads(a, 0, NULL) : NULL;
		if (!json_is_object(in)) {
			json_decref(in);
			in = json_object();	/* unparsable: empty input */
		}
		json_array_append_new(content, json_pack("{s:s, s:O?, s:O?, "
		    "s:o}", "type", "tool_use", "id", json_object_get(tc, "id"),
		    "name", json_object_get(json_object_get(tc, "function"),
		    "name"), "input", in));
	}
	xlate_tokens_json(LLM_API_CHAT, cc, &t);
	id = json_string_value(json_object_get(cc, "id"));
	snprintf(mid, sizeof(mid), "msg_%s", id ? id : "pincer");
	out = json_pack("{s:s, s:s, s:s, s:O?, s:o, s:s, s:n, s:{s:I, s:I, "
	    "s:I}}", "id", mid, "type", "message", "role", "assistant",
	    "model", json_object_get(cc, "model"), "content", content,
	    "stop_reason", xlate_finish_to_stop(json_string_value(
	    json_object_get(choice, "finish_reason"))), "stop_sequence",
	    "usage",
	    "input_tokens", (json_int_t)(t.in - t.cached), "output_tokens",
	    (json_int_t)t.out, "cache_read_input_tokens",
	    (json_int_t)t.cached);
	return out;
}

void
xlate_tokens_json(enum llm_api api, json_t *resp, struct llm_tokens *t)
{
	json_t	*u = json_object_get(resp, "usage");
	json_t	*v;

	if (api == LLM_API_RESPONSES && json_object_get(resp, "response"))
		u = json_object_get(json_object_get(resp, "response"), "usage");
	if (!json_is_object(u))
		return;
	t->seen = true;
	switch (api) {
	case LLM_API_MESSAGES:
		if ((v = json_object_get(u, "input_tokens")) != NULL)
			t->in = json_integer_value(v) + json_integer_value(
			    json_object_get(u, "cache_read_input_tokens")) +
			    json_integer_value(json_object_get(u,
			    "cache_creation_input_tokens"));
		if (json_object_get(u, "cache_read_input_tokens"))
			t->cached = json_integer_value(json_object_get(u,
			    "cache_read_input_tokens"));
		if ((v = json_object_get(u, "output_tokens")) != NULL)
			t->out = json_integer_value(v);
		break;
	case LLM_API_RESPONSES:
		t->in = json_integer_value(json_object_get(u, "input_tokens"));
		t->out = json_integer_value(json_object_get(u,
		    "output_tokens"));
		t->cached = json_integer_value(json_object_get(json_object_get(
		    u, "input_tokens_details"), "cached_tokens"));
		break;
	default:
		t->in = json_integer_value(json_object_get(u,
		    "prompt_tokens"));
		t->out = json_integer_value(json_object_get(u,
		    "completion_tokens"));
		t->cached = json_integer_value(json_object_get(json_object_get(
		    u, "prompt_tokens_details"), "cached_tokens"));
		break;
	}
}

void
xlate_tokens_event(enum llm_api api, const struct sse_event *ev,
    struct llm_tokens *t)
{
	json_t	*j;

	/* Cheap first: most events carry no usage. */
	if (strstr(ev->data, "usage") == NULL)
		return;
	if ((j = json_loadb(ev->data, ev->data_len, 0, NULL)) == NULL)
		return;
	if (api == LLM_API_MESSAGES && json_object_get(j, "message"))
		xlate_tokens_json(api, json_object_get(j, "message"), t);
	else
		xlate_tokens_json(api, j, t);
	json_decref(j);
}

bool
xlate_chat_usage_only(const struct sse_event *ev)
{
	json_t	*j;
	bool	 yes;

	if (strstr(ev->data, "\"usage\"") == NULL ||
	    strstr(ev->data, "\"choices\"") == NULL)
		return false;
	if ((j = json_loadb(ev->data, ev->data_len, 0, NULL)) == NULL)
		return false;
	yes = json_array_size(json_object_get(j, "choices")) == 0 &&
	    json_is_object(json_object_get(j, "usage"));
	json_decref(j);
	return yes;
}

char *
xlate_error(enum llm_api api, int status, const char *code, const char *msg)
{
	json_t	*j;
	char	*s;

	if (api == LLM_API_MESSAGES)
		j = json_pack("{s:s, s:{s:s, s:s, s:s}}", "type", "error",
		    "error", "type", anthropic_error_type(status), "message",
		    msg, "code", code);
	else
		j = json_pack("{s:{s:s, s:s, s:s, s:n}}", "error", "message",
		    msg, "type", openai_error_type(status), "code", code,
		    "param");
	if (j == NULL)
		return NULL;
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return s;
}

/* The provider's error (any shape) with its message kept. */
char *
xlate_error_upstream(enum llm_api client, enum llm_api upstream, int status,
    const char *body, size_t len)
{
	json_t		*j = json_loadb(body, len, 0, NULL), *e;
	const char	*msg = NULL, *code = NULL;
	char		 text[ERR_MSG_MAX + 1], *out;
	size_t		 i;

	(void)upstream;
	e = json_object_get(j, "error");
	if (json_is_object(e)) {
		msg = json_string_value(json_object_get(e, "message"));
		code = json_string_value(json_object_get(e, "code"));
		if (code == NULL)
			code = json_string_value(json_object_get(e, "type"));
	} else if (json_is_string(e))
		msg = json_string_value(e);
	if (msg == NULL) {
		snprintf(text, sizeof(text), "the provider answered %d%s%.*s",
		    status, len > 0 && j == NULL ? ": " : "", j == NULL ?
		    (int)(len > 200 ? 200 : len) : 0, body);
		/* An HTML page or binary: printable ASCII only, so that the
		 * message is valid JSON text. */
		for (i = 0; text[i] != '\0'; i++)
			if ((unsigned char)text[i] < 0x20 ||
			    (unsigned char)text[i] > 0x7e)
				text[i] = '?';
		msg = text;
	} else if (strlen(msg) > ERR_MSG_MAX) {
		snprintf(text, sizeof(text), "%.*s…", ERR_MSG_MAX - 3, msg);
		msg = text;
	}
	out = xlate_error(client, status, code != NULL ? code :
	    "upstream_error", msg);
	json_decref(j);
	return out;
}

void
xlate_stream_error(enum llm_api api, const char *msg, struct buf *out)
{
	char	*e = xlate_error(api, 500, "stream_error", msg);

	if (e == NULL)
		return;
	if (api == LLM_API_MESSAGES)
		buf_printf(out, "event: error\ndata: %s\n\n", e);
	else
		buf_printf(out, "data: %s\n\n", e);
	free(e);
}

/* OpenAI finish_reason -> Anthropic stop_reason (streams use it too). */
const char *
xlate_finish_to_stop(const char *f)
{
	if (f == NULL || !strcmp(f, "stop"))
		return "end_turn";
	if (!strcmp(f, "length"))
		return "max_tokens";
	if (!strcmp(f, "tool_calls") || !strcmp(f, "function_call"))
		return "tool_use";
	if (!strcmp(f, "content_filter"))
		return "refusal";
	return "end_turn";
}

const char *
xlate_stop_to_finish(const char *s)
{
	if (s == NULL || !strcmp(s, "end_turn") ||
	    !strcmp(s, "stop_sequence") || !strcmp(s, "pause_turn"))
		return "stop";
	if (!strcmp(s, "max_tokens"))
		return "length";
	if (!strcmp(s, "tool_use"))
		return "tool_calls";
	if (!strcmp(s, "refusal"))
		return "content_filter";
	return "stop";
}

/* Anthropic's error types by status ("Errors" in its API reference). */
static const char *
anthropic_error_type(int status)
{
	switch (status) {
	case 400:
		return "invalid_request_error";
	case 401:
		return "authentication_error";
	case 403:
		return "permission_error";
	case 404:
		return "not_found_error";
	case 413:
		return "request_too_large";
	case 429:
		return "rate_limit_error";
	case 529:
		return "overloaded_error";
	default:
		return status < 500 ? "invalid_request_error" : "api_error";
	}
}

static const char *
openai_error_type(int status)
{
	switch (status) {
	case 401:
		return "authentication_error";
	case 403:
		return "permission_error";
	case 404:
		return "not_found_error";
	case 429:
		return "rate_limit_exceeded";
	default:
		return status < 500 ? "invalid_request_error" : "server_error";
	}
}

static void
copy_field(json_t *to, const char *tk, json_t *from, const char *fk)
{
	json_t	*v = json_object_get(from, fk);

	if (v != NULL && !json_is_null(v))
		json_object_set(to, tk, v);
}
