// SPDX-License-Identifier: MIT
// The LLM proxy driven by the official SDKs (openai, @anthropic-ai/sdk)
// against the fake provider: plain, streamed and tool calls, each API to
// its own kind of provider and translated across (chat completions to an
// Anthropic provider, messages to an OpenAI one), errors surfaced as the
// SDKs' own error types, models, embeddings, responses, and the key:
// added upstream, never seen by the client, never in the log.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { KEY, startProxy, startFake, requests, script, reset, parseSSE,
	chatBody, anBody, weatherTool, anWeatherTool } from "./lib/llm.mjs";

const CLAUDE = "claude-sonnet-4-20250514";
let fake, gw, token, openai, anthropic;

before(async () => {
	fake = await startFake({ key: KEY });
	({ gw, token } = await startProxy("llm-proxy", {
		providers: [
			{ name: "oa", kind: "openai", base_url: `${fake.url}/v1`,
				key: "fake_key", models: ["gpt-4o", "gpt-4o-mini",
					"text-embedding-3-small"],
				prices: { "gpt-4o": { input: 2.5, output: 10 } } },
			{ name: "an", kind: "anthropic", base_url: `${fake.url}/v1`,
				key: "fake_key", models: [CLAUDE] },
			{ name: "badkey", kind: "openai", base_url: `${fake.url}/v1`,
				key: "wrong_key" },
		],
		routes: {
			default: ["oa/gpt-4o"],
			claude: [`an/${CLAUDE}`],
			gpt: ["oa/gpt-4o-mini"],
			broken: ["badkey/gpt-4o"],
		},
		rate_limit_rpm: 0, budgets: [],
	}));
	openai = new OpenAI({ apiKey: token, baseURL: `${gw.url}/llm/v1`,
		maxRetries: 0 });
	anthropic = new Anthropic({ apiKey: token, baseURL: `${gw.url}/llm`,
		maxRetries: 0 });
});
after(async () => {
	assert.equal(await gw?.stop(), 0);
	await fake?.close();
});
beforeEach(() => reset(fake));

const last = async () => (await requests(fake)).at(-1);

test("chat completions to an OpenAI provider: the key is added upstream",
    async () => {
	const r = await openai.chat.completions.create(chatBody("default",
		"hello there"));
	assert.equal(r.choices[0].message.content, "echo: hello there");
	assert.equal(r.object, "chat.completion");
	assert.ok(r.usage.prompt_tokens > 0 && r.usage.completion_tokens === 3);
	const q = await last();
	assert.equal(q.path, "/v1/chat/completions");
	assert.equal(q.headers.authorization, `Bearer ${KEY}`);
	assert.equal(q.body.model, "gpt-4o");
	assert.ok(!JSON.stringify(q.headers).includes(token),
		"the client's token is not forwarded");
});

test("the answer carries x-pincer-overhead-ms, provider and route", async () => {
	const r = await fetch(`${gw.url}/llm/v1/chat/completions`, {
		method: "POST", headers: { authorization: `Bearer ${token}`,
			"content-type": "application/json" },
		body: JSON.stringify(chatBody("default", "hi")) });
	assert.equal(r.status, 200);
	const ms = Number(r.headers.get("x-pincer-overhead-ms"));
	assert.ok(ms >= 0 && ms < 1000, `overhead ${ms}`);
	assert.equal(r.headers.get("x-pincer-provider"), "oa");
	assert.equal(r.headers.get("x-pincer-route"), "default");
	const text = await r.text();
	assert.ok(!text.includes(KEY));
});

test("a provider's model named directly, and PROVIDER/MODEL", async () => {
	let r = await openai.chat.completions.create(chatBody("gpt-4o-mini", "a"));
	assert.equal(r.choices[0].message.content, "echo: a");
	assert.equal((await last()).body.model, "gpt-4o-mini");
	r = await openai.chat.completions.create(chatBody("oa/gpt-4.1", "b"));
	assert.equal(r.choices[0].message.content, "echo: b");
	assert.equal((await last()).body.model, "gpt-4.1");
});

test("an unknown model is refused (404), never replaced by another",
    async () => {
	await assert.rejects(openai.chat.completions.create(chatBody("gpt-5",
		"x")), (e) => e instanceof OpenAI.NotFoundError &&
		/no route or provider serves the model "gpt-5"/.test(e.message));
	assert.equal((await requests(fake)).length, 0);
});

test("streamed chat completions pass through event by event", async () => {
	const s = await openai.chat.completions.create(chatBody("default",
		"one two three four", { stream: true }));
	let text = "", chunks = 0, usage = null;
	for await (const c of s) {
		chunks++;
		text += c.choices[0]?.delta?.content ?? "";
		if (c.usage) usage = c.usage;
	}
	assert.equal(text, "echo: one two three four");
	assert.ok(chunks >= 5, `chunks ${chunks}`);
	assert.equal(usage, null, "no usage chunk: the client did not ask");
	const q = await last();
	assert.equal(q.body.stream_options?.include_usage, true,
		"the proxy asks for usage upstream");
});

test("streamed chat with include_usage keeps the usage chunk", async () => {
	const s = await openai.chat.completions.create(chatBody("default",
		"a b", { stream: true, stream_options: { include_usage: true } }));
	let usage = null;
	for await (const c of s)
		if (c.usage) usage = c.usage;
	assert.equal(usage.completion_tokens, 3);
});

test("tool calls, plain and streamed, to an OpenAI provider", async () => {
	const r = await openai.chat.completions.create(chatBody("default",
		"Paris", { tools: [weatherTool] }));
	const call = r.choices[0].message.tool_calls[0];
	assert.equal(r.choices[0].finish_reason, "tool_calls");
	assert.equal(call.function.name, "get_weather");
	assert.deepEqual(JSON.parse(call.function.arguments), { city: "Paris" });
	const s = openai.chat.completions.stream(chatBody("default",
		"Rome", { tools: [weatherTool] }));
	const done = await s.finalChatCompletion();
	assert.deepEqual(JSON.parse(done.choices[0].message.tool_calls[0]
		.function.arguments), { city: "Rome" });
});

test("Anthropic messages to an Anthropic provider: x-api-key upstream",
    async () => {
	const m = await anthropic.messages.create(anBody("claude", "hi there"));
	assert.equal(m.content[0].text, "echo: hi there");
	assert.equal(m.stop_reason, "end_turn");
	const q = await last();
	assert.equal(q.path, "/v1/messages");
	assert.equal(q.headers["x-api-key"], KEY);
	assert.match(q.headers["anthropic-version"], /^\d{4}-\d{2}-\d{2}$/,
		"the client's anthropic-version is passed on");
	assert.equal(q.body.model, CLAUDE);
});

test("Anthropic streamed messages pass through", async () => {
	const s = anthropic.messages.stream(anBody("claude", "x y z"));
	const m = await s.finalMessage();
	assert.equal(m.content[0].text, "echo: x y z");
	assert.ok(m.usage.output_tokens === 4);
});

test("chat completions translated to an Anthropic provider", async () => {
	const r = await openai.chat.completions.create(chatBody("claude",
		"translate me"));
	assert.equal(r.choices[0].message.content, "echo: translate me");
	assert.equal(r.choices[0].finish_reason, "stop");
	assert.ok(r.usage.prompt_tokens > 0);
	assert.equal(r.usage.completion_tokens, 3);
	const q = await last();
	assert.equal(q.path, "/v1/messages");
	assert.equal(q.body.system, "be brief");
	assert.equal(q.body.messages.length, 1);
	assert.ok(q.body.max_tokens > 0);
});

test("chat completions streamed and with tools, translated to Anthropic",
    async () => {
	const s = await openai.chat.completions.create(chatBody("claude",
		"s t r", { stream: true, stream_options: { include_usage: true } }));
	let text = "", usage = null, finish = null;
	for await (const c of s) {
		text += c.choices[0]?.delta?.content ?? "";
		finish = c.choices[0]?.finish_reason ?? finish;
		if (c.usage) usage = c.usage;
	}
	assert.equal(text, "echo: s t r");
	assert.equal(finish, "stop");
	assert.equal(usage.completion_tokens, 4);
	const r = await openai.chat.completions.create(chatBody("claude",
		"Oslo", { tools: [weatherTool] }));
	const call = r.choices[0].message.tool_calls[0];
	assert.equal(r.choices[0].finish_reason, "tool_calls");
	assert.deepEqual(JSON.parse(call.function.arguments), { city: "Oslo" });
	assert.equal((await last()).body.tools[0].name, "get_weather");
	// The tool's result goes back, and the answer is text again.
	const r2 = await openai.chat.completions.create({ model: "claude",
		tools: [weatherTool], messages: [
			{ role: "user", content: "Oslo" },
			r.choices[0].message,
			{ role: "tool", tool_call_id: call.id, content: "sunny" }] });
	assert.equal(r2.choices[0].message.content, "echo: sunny");
});

test("Anthropic messages translated to an OpenAI provider", async () => {
	const m = await anthropic.messages.create(anBody("default", "go west",
		{ system: "terse" }));
	assert.equal(m.type, "message");
	assert.equal(m.content[0].text, "echo: go west");
	assert.equal(m.stop_reason, "end_turn");
	assert.equal(m.usage.output_tokens, 3);
	const q = await last();
	assert.equal(q.path, "/v1/chat/completions");
	assert.deepEqual(q.body.messages[0], { role: "system", content: "terse" });
	const s = anthropic.messages.stream(anBody("default", "p q",
		{ tools: [anWeatherTool] }));
	const f = await s.finalMessage();
	assert.equal(f.stop_reason, "tool_use");
	const use = f.content.find((b) => b.type === "tool_use");
	assert.deepEqual(use.input, { city: "p q" });
});

test("images in chat completions reach an Anthropic provider", async () => {
	const px = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
	await openai.chat.completions.create({ model: "claude", messages: [{
		role: "user", content: [{ type: "text", text: "what is it" },
			{ type: "image_url", image_url: { url: `data:image/png;base64,${px}` } },
			{ type: "image_url", image_url: { url: "https://example.org/a.png" } }] }] });
	const blocks = (await last()).body.messages[0].content;
	assert.deepEqual(blocks[1], { type: "image", source: { type: "base64",
		media_type: "image/png", data: px } });
	assert.deepEqual(blocks[2], { type: "image", source: { type: "url",
		url: "https://example.org/a.png" } });
});

test("the provider's errors reach the SDKs as their own error types",
    async () => {
	await script(fake, ["400"]);
	await assert.rejects(openai.chat.completions.create(chatBody("default",
		"x")), (e) => e instanceof OpenAI.BadRequestError);
	await script(fake, ["400"]);
	await assert.rejects(anthropic.messages.create(anBody("claude", "x")),
		(e) => e instanceof Anthropic.BadRequestError);
	await assert.rejects(openai.chat.completions.create(chatBody("broken",
		"x")), (e) => e instanceof OpenAI.AuthenticationError &&
		!e.message.includes("sk-wrong"));
	await script(fake, ["429=0", "429=0", "429=0"]);
	await assert.rejects(anthropic.messages.create(anBody("default", "x")),
		(e) => e instanceof Anthropic.RateLimitError);
});

test("a wrong or missing credential is refused before any upstream call",
    async () => {
	const bad = new OpenAI({ apiKey: "pincer_nope_nope", maxRetries: 0,
		baseURL: `${gw.url}/llm/v1` });
	await assert.rejects(bad.chat.completions.create(chatBody("default",
		"x")), (e) => e instanceof OpenAI.AuthenticationError);
	const r = await fetch(`${gw.url}/llm/v1/chat/completions`, {
		method: "POST", body: "{}" });
	assert.equal(r.status, 401);
	assert.equal((await requests(fake)).length, 0);
});

test("malformed JSON gets a 400 in the client's API's shape", async () => {
	let r = await fetch(`${gw.url}/llm/v1/chat/completions`, {
		method: "POST", headers: { authorization: `Bearer ${token}` },
		body: "{not json" });
	assert.equal(r.status, 400);
	let b = await r.json();
	assert.equal(typeof b.error.message, "string");
	r = await fetch(`${gw.url}/llm/v1/messages`, { method: "POST",
		headers: { "x-api-key": token }, body: "[1]" });
	assert.equal(r.status, 400);
	b = await r.json();
	assert.equal(b.type, "error");
	assert.equal(b.error.type, "invalid_request_error");
	assert.equal((await requests(fake)).length, 0);
});

test("models lists routes and providers' models, in both shapes", async () => {
	const list = [];
	for await (const m of openai.models.list())
		list.push(m.id);
	assert.ok(list.includes("default") && list.includes("claude"));
	assert.ok(list.includes("oa/gpt-4o"));
	const am = await anthropic.models.list();
	assert.ok(am.data.some((m) => m.id === "claude" && m.type === "model"));
	assert.equal((await requests(fake)).length, 0, "no upstream call");
});

test("embeddings and the responses API pass through", async () => {
	const e = await openai.embeddings.create({ model:
		"text-embedding-3-small", input: ["a", "b"] });
	assert.equal(e.data.length, 2);
	assert.ok(e.usage.prompt_tokens > 0);
	const r = await openai.responses.create({ model: "default",
		input: "resp test" });
	assert.equal(r.output_text, "echo: resp test");
	assert.equal((await last()).path, "/v1/responses");
	const s = await openai.responses.create({ model: "default",
		input: "streamed resp", stream: true });
	let text = "";
	for await (const ev of s)
		if (ev.type === "response.output_text.delta")
			text += ev.delta;
	assert.equal(text, "echo: streamed resp");
});

test("responses and embeddings are refused for an Anthropic-only route",
    async () => {
	await assert.rejects(openai.embeddings.create({ model: "claude",
		input: "x" }), (e) => e.status >= 400 && e.status < 600);
	assert.equal((await requests(fake)).length, 0);
});

test("the key is in no answer and no log line", async () => {
	const r = await fetch(`${gw.url}/llm/v1/chat/completions`, {
		method: "POST", headers: { authorization: `Bearer ${token}` },
		body: JSON.stringify(chatBody("default", "k", { stream: true })) });
	const text = await r.text();
	assert.ok(parseSSE(text).length > 2);
	assert.ok(!text.includes(KEY));
	assert.ok(!gw.log().includes(KEY));
	assert.ok(!gw.log().includes("sk-wrong"));
});
