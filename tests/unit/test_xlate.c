/* SPDX-License-Identifier: MIT */
/* test_xlate.c: chat completions <-> Anthropic messages (xlate.c and
 * xlate_stream.c): requests, answers, streams, usage, errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pincer.h"
#include "tap.h"

struct ctx {
	struct xlate_stream	*s;
	struct buf		*out;
};

static json_t *
J(const char *text)
{
	json_error_t	 e;
	json_t		*j = json_loads(text, 0, &e);

	if (j == NULL)
		printf("# bad test JSON: %s: %s\n", e.text, text);
	return j;
}

/* The value at a path like "messages.0.content.1.source.type". */
static json_t *
at(json_t *j, const char *path)
{
	char	 p[256], *tok, *save, *end;
	long	 i;

	snprintf(p, sizeof(p), "%s", path);
	for (tok = strtok_r(p, ".", &save); tok && j; tok = strtok_r(NULL,
	    ".", &save)) {
		i = strtol(tok, &end, 10);
		j = *end == '\0' && json_is_array(j) ? json_array_get(j,
		    (size_t)i) : json_object_get(j, tok);
	}
	return j;
}

static const char *
S(json_t *j, const char *path)
{
	const char	*s = json_string_value(at(j, path));

	return s != NULL ? s : "(none)";
}

static long long
I(json_t *j, const char *path)
{
	return json_integer_value(at(j, path));
}

static int
feed_one(void *arg, const struct sse_event *ev)
{
	struct ctx	*c = arg;

	return xlate_stream_event(c->s, ev, c->out);
}

/* An SSE text through a stream translator: the client's SSE. */
static char *
stream(enum xlate_dir d, bool usage, const char *in, bool complete,
    struct llm_tokens *t)
{
	struct sse	*p = sse_new(1 << 20);
	struct buf	 out;
	struct ctx	 c;

	buf_init(&out, 1 << 20);
	c.s = xlate_stream_new(d, usage);
	c.out = &out;
	sse_feed(p, in, strlen(in), feed_one, &c);
	xlate_stream_end(c.s, complete, &out);
	memset(t, 0, sizeof(*t));
	xlate_stream_tokens(c.s, t);
	xlate_stream_free(c.s);
	sse_free(p);
	return out.data != NULL ? buf_steal(&out) : strdup("");
}

static int
count(const char *hay, const char *needle)
{
	int	 n = 0;

	while ((hay = strstr(hay, needle)) != NULL) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

static void
requests(void)
{
	json_t	*in, *out;
	char	 err[256];

	in = J("{\"model\":\"default\",\"max_completion_tokens\":77,"
	    "\"temperature\":0.5,\"stop\":\"END\",\"user\":\"u1\","
	    "\"stream\":true,\"messages\":["
	    "{\"role\":\"system\",\"content\":\"be brief\"},"
	    "{\"role\":\"developer\",\"content\":[{\"type\":\"text\","
	    "\"text\":\"and kind\"}]},"
	    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"look\"},"
	    "{\"type\":\"image_url\",\"image_url\":{\"url\":"
	    "\"data:image/png;base64,QUJD\"}},{\"type\":\"image_url\","
	    "\"image_url\":{\"url\":\"https://e.org/a.png\"}}]},"
	    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
	    "{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"w\","
	    "\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}},"
	    "{\"id\":\"c2\",\"type\":\"function\",\"function\":{\"name\":\"w\","
	    "\"arguments\":\"{}\"}}]},"
	    "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"sunny\"},"
	    "{\"role\":\"tool\",\"tool_call_id\":\"c2\",\"content\":\"rain\"},"
	    "{\"role\":\"user\",\"content\":\"thanks\"}],"
	    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"w\","
	    "\"description\":\"weather\",\"parameters\":{\"type\":\"object\"}}}],"
	    "\"tool_choice\":\"required\",\"parallel_tool_calls\":false}");
	out = xlate_req_chat_to_anthropic(in, "claude-x", err, sizeof(err));
	ok(out != NULL, "chat -> anthropic: translated (%s)", out ? "" : err);
	is_str(S(out, "model"), "claude-x", "the upstream's model");
	is_str(S(out, "system"), "be brief\nand kind", "system and developer "
	    "messages -> system");
	is_int(I(out, "max_tokens"), 77, "max_completion_tokens -> max_tokens");
	is_str(S(out, "stop_sequences.0"), "END", "stop -> stop_sequences");
	is_str(S(out, "metadata.user_id"), "u1", "user -> metadata.user_id");
	ok(json_is_true(at(out, "stream")), "stream kept");
	is_str(S(out, "messages.0.content.1.source.type"), "base64",
	    "a data: URL -> a base64 image");
	is_str(S(out, "messages.0.content.1.source.media_type"), "image/png",
	    "… its media type");
	is_str(S(out, "messages.0.content.1.source.data"), "QUJD", "… its data");
	is_str(S(out, "messages.0.content.2.source.url"), "https://e.org/a.png",
	    "an https URL -> a url image");
	is_str(S(out, "messages.1.content.0.type"), "tool_use",
	    "tool_calls -> tool_use blocks");
	is_str(S(out, "messages.1.content.0.input.city"), "Oslo",
	    "… with the arguments parsed");
	is_str(S(out, "messages.1.content.1.id"), "c2", "… both of them");
	is_str(S(out, "messages.2.role"), "user", "tool results -> a user "
	    "message");
	is_str(S(out, "messages.2.content.1.tool_use_id"), "c2",
	    "… consecutive results in one message");
	is_str(S(out, "messages.2.content.2.text"), "thanks", "… and the next "
	    "user text joins it (roles alternate)");
	is_int(json_array_size(at(out, "messages")), 3, "three messages");
	is_str(S(out, "tools.0.input_schema.type"), "object", "tools -> "
	    "input_schema");
	is_str(S(out, "tool_choice.type"), "any", "required -> any");
	ok(json_is_true(at(out, "tool_choice.disable_parallel_tool_use")),
	    "parallel_tool_calls false -> disable_parallel_tool_use");
	json_decref(out);
	json_decref(in);

	in = J("{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
	    "\"content\":\"x\"}]}");
	out = xlate_req_chat_to_anthropic(in, "c", err, sizeof(err));
	is_int(I(out, "max_tokens"), 4096, "max_tokens defaults to 4096");
	json_decref(out);
	json_decref(in);
	in = J("{\"messages\":[{\"content\":\"x\"}]}");
	ok(xlate_req_chat_to_anthropic(in, "c", err, sizeof(err)) == NULL &&
	    strstr(err, "role") != NULL, "a message without role: an error "
	    "(%s)", err);
	json_decref(in);
	in = J("{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":"
	    "\"a\",\"function\":{\"name\":\"f\",\"arguments\":\"{bad\"}}]}]}");
	ok(xlate_req_chat_to_anthropic(in, "c", err, sizeof(err)) == NULL,
	    "unparsable tool arguments: an error (%s)", err);
	json_decref(in);
	in = J("{\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
	ok(xlate_req_chat_to_anthropic(in, "c", err, sizeof(err)) == NULL,
	    "n above 1: an error (%s)", err);
	json_decref(in);

	in = J("{\"model\":\"default\",\"max_tokens\":50,\"system\":[{\"type\":"
	    "\"text\",\"text\":\"terse\"}],\"stop_sequences\":[\"Z\"],"
	    "\"stream\":true,\"metadata\":{\"user_id\":\"u2\"},\"messages\":["
	    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"},"
	    "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":"
	    "\"image/jpeg\",\"data\":\"WFla\"}}]},"
	    "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\","
	    "\"thinking\":\"hmm\"},{\"type\":\"text\",\"text\":\"calling\"},"
	    "{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"w\",\"input\":"
	    "{\"q\":1}}]},"
	    "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
	    "\"tool_use_id\":\"t1\",\"content\":[{\"type\":\"text\",\"text\":"
	    "\"done\"}]},{\"type\":\"text\",\"text\":\"and?\"}]}],"
	    "\"tools\":[{\"name\":\"w\",\"input_schema\":{\"type\":\"object\"}}],"
	    "\"tool_choice\":{\"type\":\"tool\",\"name\":\"w\"}}");
	out = xlate_req_anthropic_to_chat(in, "gpt-x", err, sizeof(err));
	ok(out != NULL, "anthropic -> chat: translated");
	is_str(S(out, "messages.0.role"), "system", "system -> a system "
	    "message");
	is_str(S(out, "messages.0.content"), "terse", "… its text");
	is_str(S(out, "messages.1.content.1.image_url.url"),
	    "data:image/jpeg;base64,WFla", "a base64 image -> a data: URL");
	is_str(S(out, "messages.2.content"), "calling", "thinking dropped, "
	    "text kept");
	is_str(S(out, "messages.2.tool_calls.0.function.arguments"), "{\"q\":1}",
	    "tool_use -> tool_calls with JSON arguments");
	is_str(S(out, "messages.3.role"), "tool", "tool_result -> a tool "
	    "message");
	is_str(S(out, "messages.3.content"), "done", "… its text");
	is_str(S(out, "messages.4.content"), "and?", "… then the user's text");
	ok(json_is_true(at(out, "stream_options.include_usage")),
	    "a stream asks for usage");
	is_str(S(out, "stop.0"), "Z", "stop_sequences -> stop");
	is_str(S(out, "user"), "u2", "metadata.user_id -> user");
	is_str(S(out, "tools.0.function.name"), "w", "tools -> functions");
	is_str(S(out, "tool_choice.function.name"), "w", "tool choice by "
	    "name");
	json_decref(out);
	json_decref(in);
}

static void
answers(void)
{
	json_t	*in, *out;
	struct llm_tokens t;

	in = J("{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
	    "\"model\":\"claude-x\",\"content\":[{\"type\":\"text\",\"text\":"
	    "\"hi \"},{\"type\":\"text\",\"text\":\"there\"},{\"type\":"
	    "\"tool_use\",\"id\":\"t1\",\"name\":\"w\",\"input\":{\"a\":1}}],"
	    "\"stop_reason\":\"tool_use\",\"usage\":{\"input_tokens\":10,"
	    "\"output_tokens\":5,\"cache_read_input_tokens\":20,"
	    "\"cache_creation_input_tokens\":2}}");
	out = xlate_resp_anthropic_to_chat(in);
	is_str(S(out, "object"), "chat.completion", "a message -> a chat "
	    "completion");
	is_str(S(out, "choices.0.message.content"), "hi there", "texts joined");
	is_str(S(out, "choices.0.finish_reason"), "tool_calls", "tool_use -> "
	    "tool_calls");
	is_str(S(out, "choices.0.message.tool_calls.0.function.arguments"),
	    "{\"a\":1}", "the tool call's arguments");
	is_int(I(out, "usage.prompt_tokens"), 32, "prompt tokens count the "
	    "cache too");
	is_int(I(out, "usage.prompt_tokens_details.cached_tokens"), 20,
	    "cached tokens");
	is_int(I(out, "usage.completion_tokens"), 5, "completion tokens");
	json_decref(out);
	memset(&t, 0, sizeof(t));
	xlate_tokens_json(LLM_API_MESSAGES, in, &t);
	ok(t.seen && t.in == 32 && t.out == 5 && t.cached == 20,
	    "anthropic usage normalized");
	json_decref(in);

	in = J("{\"id\":\"c1\",\"object\":\"chat.completion\",\"model\":\"g\","
	    "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
	    "\"content\":\"yes\",\"tool_calls\":[{\"id\":\"x\",\"type\":"
	    "\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
	    "\"{\\\"k\\\":2}\"}}]},\"finish_reason\":\"length\"}],\"usage\":"
	    "{\"prompt_tokens\":9,\"completion_tokens\":4,"
	    "\"prompt_tokens_details\":{\"cached_tokens\":3}}}");
	out = xlate_resp_chat_to_anthropic(in);
	is_str(S(out, "type"), "message", "a chat completion -> a message");
	is_str(S(out, "content.0.text"), "yes", "its text");
	is_int(I(out, "content.1.input.k"), 2, "its tool call, input parsed");
	is_str(S(out, "stop_reason"), "max_tokens", "length -> max_tokens");
	is_int(I(out, "usage.input_tokens"), 6, "input without the cached");
	is_int(I(out, "usage.cache_read_input_tokens"), 3, "cache reads");
	json_decref(out);
	json_decref(in);
	in = J("[1]");
	ok(xlate_resp_chat_to_anthropic(in) == NULL &&
	    xlate_resp_anthropic_to_chat(in) == NULL, "not an answer: NULL");
	json_decref(in);
}

static void
streams(void)
{
	struct llm_tokens	 t;
	char			*o;

	o = stream(XLATE_ANTHROPIC_TO_CHAT, true,
	    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":"
	    "{\"id\":\"msg_9\",\"model\":\"claude-x\",\"usage\":{\"input_tokens\""
	    ":7,\"output_tokens\":1}}}\n\n"
	    "event: ping\ndata: {\"type\":\"ping\"}\n\n"
	    "event: content_block_start\ndata: {\"type\":\"content_block_start\","
	    "\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
	    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
	    "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n"
	    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\","
	    "\"index\":0}\n\n"
	    "event: content_block_start\ndata: {\"type\":\"content_block_start\","
	    "\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"tu\","
	    "\"name\":\"w\",\"input\":{}}}\n\n"
	    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
	    "\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
	    "\"partial_json\":\"{\\\"a\\\":\"}}\n\n"
	    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":"
	    "{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":12}}\n\n"
	    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", true,
	    &t);
	ok(strncmp(o, "data: {", 7) == 0, "anthropic -> chat: data lines");
	ok(strstr(o, "\"delta\":{\"role\":\"assistant\",\"content\":\"\"}") !=
	    NULL, "the first chunk has the role");
	ok(strstr(o, "\"delta\":{\"content\":\"Hel\"}") != NULL, "text deltas");
	ok(strstr(o, "\"tool_calls\":[{\"index\":0,\"id\":\"tu\",\"type\":"
	    "\"function\",\"function\":{\"name\":\"w\",\"arguments\":\"\"}}]")
	    != NULL, "a tool_use block opens tool call 0");
	ok(strstr(o, "{\"index\":0,\"function\":{\"arguments\":\"{\\\"a\\\":\"}}")
	    != NULL, "input_json_delta -> arguments");
	ok(strstr(o, "\"finish_reason\":\"tool_calls\"") != NULL, "the "
	    "finish reason");
	ok(strstr(o, "\"choices\":[],\"usage\":{\"prompt_tokens\":7,"
	    "\"completion_tokens\":12") != NULL, "the usage chunk (asked for)");
	ok(strstr(o, "\"id\":\"msg_9\"") && strstr(o, "\"model\":\"claude-x\""),
	    "every chunk has the message's id and model");
	is_int(count(o, "data: [DONE]"), 1, "one [DONE], at the end");
	ok(t.in == 7 && t.out == 12, "the stream's tokens");
	free(o);

	o = stream(XLATE_ANTHROPIC_TO_CHAT, false,
	    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":"
	    "{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":1}}}\n\n"
	    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
	    "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"a\"}}\n\n",
	    false, &t);
	ok(strstr(o, "\"usage\":{") == NULL, "no usage chunk unless asked");
	ok(strstr(o, "data: {\"error\":{\"message\":\"the provider's stream "
	    "broke off\"") != NULL && strstr(o, "[DONE]") == NULL,
	    "a cut stream ends in an error chunk, not [DONE]");
	free(o);
	o = stream(XLATE_ANTHROPIC_TO_CHAT, false,
	    "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
	    "\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n", true, &t);
	ok(strstr(o, "\"message\":\"Overloaded\"") != NULL, "an error event "
	    "-> an error chunk");
	free(o);

	o = stream(XLATE_CHAT_TO_ANTHROPIC, false,
	    "data: {\"id\":\"c1\",\"model\":\"g\",\"choices\":[{\"index\":0,"
	    "\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"
	    "data: {\"id\":\"c1\",\"model\":\"g\",\"choices\":[{\"index\":0,"
	    "\"delta\":{\"content\":\"Hi\"}}]}\n\n"
	    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{"
	    "\"tool_calls\":[{\"index\":0,\"id\":\"k0\",\"type\":\"function\","
	    "\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}\n\n"
	    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{"
	    "\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
	    "\"{}\"}}]}}]}\n\n"
	    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{"
	    "\"tool_calls\":[{\"index\":1,\"id\":\"k1\",\"type\":\"function\","
	    "\"function\":{\"name\":\"g\",\"arguments\":\"{\\\"x\\\":1}\"}}]}}]}"
	    "\n\n"
	    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},"
	    "\"finish_reason\":\"tool_calls\"}]}\n\n"
	    "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":8,"
	    "\"completion_tokens\":3}}\n\n"
	    "data: [DONE]\n\n", true, &t);
	ok(strncmp(o, "event: message_start\n", 21) == 0, "chat -> anthropic: "
	    "message_start first");
	is_int(count(o, "event: content_block_start"), 3, "three blocks: text "
	    "and two tool calls");
	is_int(count(o, "event: content_block_stop"), 3, "… each closed");
	ok(strstr(o, "\"content_block\":{\"type\":\"tool_use\",\"id\":\"k1\","
	    "\"name\":\"g\",\"input\":{}}") != NULL, "the second tool call's "
	    "block");
	ok(strstr(o, "\"partial_json\":\"{\\\"x\\\":1}\"") != NULL,
	    "arguments -> input_json_delta");
	ok(strstr(o, "\"stop_reason\":\"tool_use\"") != NULL &&
	    strstr(o, "\"output_tokens\":3") != NULL, "message_delta waits "
	    "for the usage");
	ok(strstr(o, "event: message_stop") != NULL &&
	    strstr(o, "event: message_stop") > strstr(o, "event: message_delta"),
	    "message_stop last");
	ok(t.in == 8 && t.out == 3, "tokens");
	free(o);
	o = stream(XLATE_CHAT_TO_ANTHROPIC, false,
	    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\""
	    ":\"par\"}}]}\n\n", false, &t);
	ok(strstr(o, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\""
	    ":\"api_error\"") != NULL && strstr(o, "message_stop") == NULL,
	    "a cut chat stream ends in an error event, not message_stop");
	free(o);
}

static void
errors(void)
{
	const char	*up = "{\"type\":\"error\",\"error\":{\"type\":"
	    "\"overloaded_error\",\"message\":\"Overloaded\"}}";
	char		*e;
	json_t		*j;
	struct sse_event ev = { "", "{\"id\":\"x\",\"choices\":[],\"usage\":"
	    "{\"prompt_tokens\":1}}", 0, NULL, 0 };

	e = xlate_error(LLM_API_MESSAGES, 429, "budget_exceeded", "over");
	j = J(e);
	is_str(S(j, "type"), "error", "anthropic error shape");
	is_str(S(j, "error.type"), "rate_limit_error", "429 -> "
	    "rate_limit_error");
	is_str(S(j, "error.message"), "over", "the message");
	json_decref(j);
	free(e);
	e = xlate_error(LLM_API_CHAT, 404, "model_not_found", "no");
	j = J(e);
	is_str(S(j, "error.code"), "model_not_found", "openai error shape: "
	    "code");
	is_str(S(j, "error.message"), "no", "… message");
	json_decref(j);
	free(e);
	e = xlate_error_upstream(LLM_API_CHAT, LLM_API_MESSAGES, 529, up,
	    strlen(up));
	j = J(e);
	is_str(S(j, "error.message"), "Overloaded", "an upstream error keeps "
	    "its message");
	json_decref(j);
	free(e);
	e = xlate_error_upstream(LLM_API_MESSAGES, LLM_API_CHAT, 502,
	    "<html>bad gateway</html>", 24);
	j = J(e);
	ok(strstr(S(j, "error.message"), "502") != NULL, "HTML from the "
	    "provider -> a message with the status");
	json_decref(j);
	free(e);
	ev.data_len = strlen(ev.data);
	ok(xlate_chat_usage_only(&ev), "a usage-only chunk is recognised");
	ev.data = "{\"choices\":[{\"delta\":{}}],\"usage\":null}";
	ev.data_len = strlen(ev.data);
	ok(!xlate_chat_usage_only(&ev), "… and a normal chunk is not");
}

int
main(void)
{
	requests();
	answers();
	streams();
	errors();
	return done_testing();
}
