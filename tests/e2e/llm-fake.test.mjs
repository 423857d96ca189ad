// SPDX-License-Identifier: MIT
// The fake LLM provider (tests/fakes/llm-provider.mjs) checked twice: with
// plain fetch against the documented wire formats, and driven by the
// official SDKs (openai, @anthropic-ai/sdk), whose parsers are the proof
// that the JSON and SSE shapes, errors and rate-limit answers are right.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { startFake, embed } from "../fakes/llm-provider.mjs";
import { parseSSE } from "./lib/llm.mjs";

const KEY = "sk-fake-0123456789abcdef";
const FAKE_PATH = fileURLToPath(new URL("../fakes/llm-provider.mjs", import.meta.url));
let fake, base, openai, anthropic;

before(async () => {
	fake = await startFake({ key: KEY });
	base = fake.url;
	openai = new OpenAI({ apiKey: KEY, baseURL: `${base}/v1`, maxRetries: 0 });
	anthropic = new Anthropic({ apiKey: KEY, baseURL: base, maxRetries: 0 });
});
after(async () => { await fake?.close(); });
beforeEach(async () => {
	const r = await fetch(`${base}/_fake/reset`, { method: "POST" });
	assert.equal(r.status, 200);
});

// ---- helpers --------------------------------------------------------------

const OA = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };
const AN = { "x-api-key": KEY, "anthropic-version": "2023-06-01",
	"content-type": "application/json" };

function post(path, body, headers = OA) {
	return fetch(base + path, { method: "POST", headers,
		body: typeof body === "string" ? body : JSON.stringify(body) });
}

async function requests() {
	return (await fetch(`${base}/_fake/requests`)).json();
}

async function waitFor(pred, ms = 3000) {
	const end = Date.now() + ms;
	for (;;) {
		const v = await pred();
		if (v) return v;
		if (Date.now() > end) throw new Error("condition not met in time");
		await new Promise((r) => setTimeout(r, 20));
	}
}

const chatBody = (content, extra = {}) => ({ model: "gpt-4o",
	messages: [{ role: "system", content: "be brief" }, { role: "user", content }], ...extra });
const anBody = (content, extra = {}) => ({ model: "claude-sonnet-4-20250514",
	max_tokens: 256, messages: [{ role: "user", content }], ...extra });
const weatherTool = { type: "function", function: { name: "get_weather",
	description: "Weather for a city", parameters: { type: "object",
		properties: { city: { type: "string" } }, required: ["city"] } } };
const anWeatherTool = { name: "get_weather", description: "Weather for a city",
	input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } };

// ---- OpenAI Chat Completions (fetch) ---------------------------------------

test("chat: non-streamed chat.completion with echo text and word usage", async () => {
	const r = await post("/v1/chat/completions", chatBody("hello there world"));
	assert.equal(r.status, 200);
	assert.match(r.headers.get("content-type"), /^application\/json/);
	assert.ok(r.headers.get("x-request-id"));
	const j = await r.json();
	assert.equal(j.object, "chat.completion");
	assert.match(j.id, /^chatcmpl-/);
	assert.equal(j.model, "gpt-4o");
	assert.equal(j.choices[0].index, 0);
	assert.deepEqual(j.choices[0].message,
		{ role: "assistant", content: "echo: hello there world", refusal: null, annotations: [] });
	assert.equal(j.choices[0].finish_reason, "stop");
	// prompt: "be brief" (2) + "hello there world" (3); completion: 4 words.
	assert.equal(j.usage.prompt_tokens, 5);
	assert.equal(j.usage.completion_tokens, 4);
	assert.equal(j.usage.total_tokens, 9);
});

test("chat: streamed chunks, final usage chunk, [DONE]", async () => {
	const r = await post("/v1/chat/completions", chatBody("one two",
		{ stream: true, stream_options: { include_usage: true } }));
	assert.equal(r.status, 200);
	assert.match(r.headers.get("content-type"), /^text\/event-stream/);
	const ev = parseSSE(await r.text());
	assert.equal(ev.at(-1).data, "[DONE]");
	const chunks = ev.slice(0, -1).map((e) => e.data);
	assert.ok(chunks.every((c) => c.object === "chat.completion.chunk" && c.id === chunks[0].id));
	assert.equal(chunks[0].choices[0].delta.role, "assistant");
	const usageChunk = chunks.at(-1);
	assert.deepEqual(usageChunk.choices, []);
	assert.deepEqual([usageChunk.usage.prompt_tokens, usageChunk.usage.completion_tokens,
		usageChunk.usage.total_tokens], [4, 3, 7]);
	const body = chunks.slice(0, -1);
	assert.ok(body.every((c) => c.usage === null), "usage: null before the last chunk");
	assert.equal(body.map((c) => c.choices[0].delta.content ?? "").join(""), "echo: one two");
	assert.equal(body.at(-1).choices[0].finish_reason, "stop");
	assert.ok(body.slice(0, -1).every((c) => c.choices[0].finish_reason === null));
});

test("chat: streamed without include_usage has no usage at all", async () => {
	const r = await post("/v1/chat/completions", chatBody("x", { stream: true }));
	const ev = parseSSE(await r.text());
	assert.equal(ev.at(-1).data, "[DONE]");
	assert.ok(ev.slice(0, -1).every((e) => !("usage" in e.data) && e.data.choices.length === 1));
});

test("chat: tools → tool_calls, arguments streamed in pieces", async () => {
	const j = await (await post("/v1/chat/completions",
		chatBody("Paris", { tools: [weatherTool] }))).json();
	assert.equal(j.choices[0].finish_reason, "tool_calls");
	const m = j.choices[0].message;
	assert.equal(m.content, null);
	assert.equal(m.tool_calls.length, 1);
	assert.match(m.tool_calls[0].id, /^call_/);
	assert.equal(m.tool_calls[0].type, "function");
	assert.equal(m.tool_calls[0].function.name, "get_weather");
	assert.deepEqual(JSON.parse(m.tool_calls[0].function.arguments), { city: "Paris" });

	const ev = parseSSE(await (await post("/v1/chat/completions",
		chatBody("Paris", { tools: [weatherTool], stream: true }))).text());
	const deltas = ev.slice(0, -1).map((e) => e.data.choices[0]);
	const tc = deltas.filter((d) => d.delta.tool_calls).map((d) => d.delta.tool_calls[0]);
	assert.match(tc[0].id, /^call_/);
	assert.equal(tc[0].type, "function");
	assert.equal(tc[0].function.name, "get_weather");
	assert.ok(tc.slice(1).every((t) => t.index === 0 && !("id" in t) && !("name" in t.function)));
	assert.ok(tc.length >= 3, "arguments split across chunks");
	assert.equal(tc.map((t) => t.function.arguments).join(""), '{"city":"Paris"}');
	assert.equal(deltas.at(-1).finish_reason, "tool_calls");
});

test("chat: a tool result turn answers with text; tool_choice none disables tools", async () => {
	const j = await (await post("/v1/chat/completions", { model: "gpt-4o", tools: [weatherTool],
		messages: [{ role: "user", content: "Paris" },
			{ role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function",
				function: { name: "get_weather", arguments: '{"city":"Paris"}' } }] },
			{ role: "tool", tool_call_id: "call_1", content: "sunny 20C" }] })).json();
	assert.equal(j.choices[0].message.content, "echo: sunny 20C");
	assert.equal(j.choices[0].finish_reason, "stop");
	const k = await (await post("/v1/chat/completions",
		chatBody("Paris", { tools: [weatherTool], tool_choice: "none" }))).json();
	assert.equal(k.choices[0].message.content, "echo: Paris");
});

test("chat: max_tokens cuts the reply, finish_reason length", async () => {
	const j = await (await post("/v1/chat/completions",
		chatBody("a b c d e", { max_tokens: 3 }))).json();
	assert.equal(j.choices[0].message.content, "echo: a b");
	assert.equal(j.choices[0].finish_reason, "length");
	assert.equal(j.usage.completion_tokens, 3);
});

test("chat: bad JSON and missing messages are 400 invalid_request_error", async () => {
	let r = await post("/v1/chat/completions", "{nope");
	assert.equal(r.status, 400);
	assert.equal((await r.json()).error.type, "invalid_request_error");
	r = await post("/v1/chat/completions", { model: "gpt-4o" });
	assert.equal(r.status, 400);
	assert.equal((await r.json()).error.param, "messages");
});

// ---- OpenAI Responses (fetch) -------------------------------------------------

test("responses: non-streamed response object", async () => {
	const j = await (await post("/v1/responses",
		{ model: "gpt-4.1", instructions: "be brief", input: "hi there" })).json();
	assert.equal(j.object, "response");
	assert.match(j.id, /^resp_/);
	assert.equal(j.status, "completed");
	assert.equal(j.output.length, 1);
	const item = j.output[0];
	assert.equal(item.type, "message");
	assert.equal(item.role, "assistant");
	assert.equal(item.status, "completed");
	assert.deepEqual(item.content[0], { type: "output_text", annotations: [], logprobs: [], text: "echo: hi there" });
	assert.deepEqual([j.usage.input_tokens, j.usage.output_tokens, j.usage.total_tokens], [4, 3, 7]);
});

test("responses: streamed events as event:/data: pairs", async () => {
	const r = await post("/v1/responses", { model: "gpt-4.1", stream: true,
		input: [{ role: "user", content: [{ type: "input_text", text: "a b" }] }] });
	assert.match(r.headers.get("content-type"), /^text\/event-stream/);
	const ev = parseSSE(await r.text());
	assert.ok(ev.every((e) => e.event === e.data.type), "event name equals data.type");
	assert.deepEqual(ev.map((e) => e.data.sequence_number), ev.map((_, i) => i));
	const names = ev.map((e) => e.event);
	assert.deepEqual(names, ["response.created", "response.in_progress",
		"response.output_item.added", "response.content_part.added",
		"response.output_text.delta", "response.output_text.delta", "response.output_text.delta",
		"response.output_text.done", "response.content_part.done",
		"response.output_item.done", "response.completed"]);
	assert.equal(ev[0].data.response.status, "in_progress");
	const text = ev.filter((e) => e.event === "response.output_text.delta")
		.map((e) => e.data.delta).join("");
	assert.equal(text, "echo: a b");
	assert.equal(ev.find((e) => e.event === "response.output_text.done").data.text, "echo: a b");
	const done = ev.at(-1).data.response;
	assert.equal(done.status, "completed");
	assert.deepEqual([done.usage.input_tokens, done.usage.output_tokens, done.usage.total_tokens], [2, 3, 5]);
});

test("responses: function tools → function_call item", async () => {
	const tools = [{ type: "function", name: "get_weather",
		parameters: { type: "object", properties: { city: { type: "string" } } } }];
	const j = await (await post("/v1/responses", { model: "gpt-4.1", input: "Rome", tools })).json();
	assert.equal(j.output[0].type, "function_call");
	assert.equal(j.output[0].name, "get_weather");
	assert.deepEqual(JSON.parse(j.output[0].arguments), { city: "Rome" });
	const ev = parseSSE(await (await post("/v1/responses",
		{ model: "gpt-4.1", input: "Rome", tools, stream: true })).text());
	const args = ev.filter((e) => e.event === "response.function_call_arguments.delta")
		.map((e) => e.data.delta).join("");
	assert.equal(args, '{"city":"Rome"}');
	assert.equal(ev.at(-1).event, "response.completed");
});

// ---- Anthropic Messages (fetch) ---------------------------------------------

test("anthropic: non-streamed message", async () => {
	const r = await post("/v1/messages", anBody("hello claude", { system: "be brief" }), AN);
	assert.equal(r.status, 200);
	assert.ok(r.headers.get("request-id"));
	const j = await r.json();
	assert.equal(j.type, "message");
	assert.equal(j.role, "assistant");
	assert.match(j.id, /^msg_/);
	assert.deepEqual(j.content, [{ type: "text", text: "echo: hello claude" }]);
	assert.equal(j.stop_reason, "end_turn");
	assert.equal(j.stop_sequence, null);
	assert.equal(j.usage.input_tokens, 4);
	assert.equal(j.usage.output_tokens, 3);
});

test("anthropic: streamed event sequence", async () => {
	const r = await post("/v1/messages", anBody("a b", { stream: true }), AN);
	assert.match(r.headers.get("content-type"), /^text\/event-stream/);
	const ev = parseSSE(await r.text());
	assert.ok(ev.every((e) => e.event === e.data.type));
	assert.deepEqual(ev.map((e) => e.event), ["message_start", "content_block_start", "ping",
		"content_block_delta", "content_block_delta", "content_block_delta",
		"content_block_stop", "message_delta", "message_stop"]);
	const start = ev[0].data.message;
	assert.deepEqual(start.content, []);
	assert.equal(start.stop_reason, null);
	assert.equal(start.usage.input_tokens, 2);
	assert.deepEqual(ev[1].data, { type: "content_block_start", index: 0,
		content_block: { type: "text", text: "" } });
	const deltas = ev.filter((e) => e.event === "content_block_delta");
	assert.ok(deltas.every((e) => e.data.delta.type === "text_delta" && e.data.index === 0));
	assert.equal(deltas.map((e) => e.data.delta.text).join(""), "echo: a b");
	const md = ev.find((e) => e.event === "message_delta").data;
	assert.equal(md.delta.stop_reason, "end_turn");
	assert.equal(md.usage.output_tokens, 3);
});

test("anthropic: tool_use, streamed as input_json_delta", async () => {
	const j = await (await post("/v1/messages",
		anBody("Oslo", { tools: [anWeatherTool] }), AN)).json();
	assert.equal(j.stop_reason, "tool_use");
	assert.equal(j.content[0].type, "tool_use");
	assert.match(j.content[0].id, /^toolu_/);
	assert.deepEqual(j.content[0].input, { city: "Oslo" });
	const ev = parseSSE(await (await post("/v1/messages",
		anBody("Oslo", { tools: [anWeatherTool], stream: true }), AN)).text());
	assert.deepEqual(ev[1].data.content_block.input, {});
	const parts = ev.filter((e) => e.event === "content_block_delta").map((e) => e.data.delta);
	assert.ok(parts.length >= 2 && parts.every((d) => d.type === "input_json_delta"));
	assert.equal(parts.map((d) => d.partial_json).join(""), '{"city":"Oslo"}');
	assert.equal(ev.find((e) => e.event === "message_delta").data.delta.stop_reason, "tool_use");
	// A tool_result turn gets text back.
	const k = await (await post("/v1/messages", { model: "claude-sonnet-4-20250514",
		max_tokens: 100, tools: [anWeatherTool], messages: [
			{ role: "user", content: "Oslo" },
			{ role: "assistant", content: [{ type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Oslo" } }] },
			{ role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "snow" }] }] }, AN)).json();
	assert.deepEqual(k.content, [{ type: "text", text: "echo: snow" }]);
});

test("anthropic: headers required, errors in Anthropic's shape", async () => {
	let r = await fetch(`${base}/v1/messages`, { method: "POST",
		headers: { "x-api-key": KEY, "content-type": "application/json" }, body: JSON.stringify(anBody("x")) });
	assert.equal(r.status, 400);
	let j = await r.json();
	assert.equal(j.type, "error");
	assert.equal(j.error.type, "invalid_request_error");
	assert.match(j.error.message, /anthropic-version/);
	r = await fetch(`${base}/v1/messages`, { method: "POST",
		headers: { "anthropic-version": "2023-06-01" }, body: JSON.stringify(anBody("x")) });
	assert.equal(r.status, 401);
	j = await r.json();
	assert.deepEqual(j.error, { type: "authentication_error", message: "x-api-key header is required" });
	r = await post("/v1/messages", anBody("x"), { ...AN, "x-api-key": "wrong" });
	assert.equal(r.status, 401);
	assert.deepEqual((await r.json()).error, { type: "authentication_error", message: "invalid x-api-key" });
	r = await post("/v1/messages", { model: "claude-sonnet-4-20250514", messages: [] }, AN);
	assert.equal(r.status, 400);
	assert.match((await r.json()).error.message, /max_tokens/);
});

// ---- models, embeddings, auth ---------------------------------------------------

test("models: OpenAI list shape, Anthropic list shape with anthropic-version", async () => {
	const o = await (await fetch(`${base}/v1/models`, { headers: OA })).json();
	assert.equal(o.object, "list");
	assert.ok(o.data.every((m) => m.object === "model" && m.id && m.owned_by && Number.isInteger(m.created)));
	const a = await (await fetch(`${base}/v1/models`, { headers: AN })).json();
	assert.equal(a.has_more, false);
	assert.ok(a.data.every((m) => m.type === "model" && m.display_name));
});

test("embeddings: deterministic unit vectors, float and base64", async () => {
	const r1 = await (await post("/v1/embeddings",
		{ model: "text-embedding-3-small", input: ["alpha beta", "gamma"] })).json();
	assert.equal(r1.object, "list");
	assert.equal(r1.data.length, 2);
	assert.deepEqual(r1.data.map((d) => [d.object, d.index]), [["embedding", 0], ["embedding", 1]]);
	assert.deepEqual(r1.usage, { prompt_tokens: 3, total_tokens: 3 });
	const v = r1.data[0].embedding;
	assert.equal(v.length, 16);
	assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-5);
	assert.deepEqual(v, embed("alpha beta"));
	const r2 = await (await post("/v1/embeddings",
		{ model: "text-embedding-3-small", input: "alpha beta", encoding_format: "base64", dimensions: 8 })).json();
	const buf = Buffer.from(r2.data[0].embedding, "base64");
	const f = Array.from(new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4));
	assert.deepEqual(f, embed("alpha beta", 8));
});

test("auth: OpenAI-style 401 bodies for missing and wrong keys", async () => {
	let r = await post("/v1/chat/completions", chatBody("x"), { "content-type": "application/json" });
	assert.equal(r.status, 401);
	let j = await r.json();
	assert.equal(j.error.type, "invalid_request_error");
	assert.match(j.error.message, /didn't provide an API key/);
	r = await post("/v1/chat/completions", chatBody("x"), { authorization: "Bearer sk-wrong-key-999" });
	assert.equal(r.status, 401);
	j = await r.json();
	assert.equal(j.error.code, "invalid_api_key");
	assert.ok(!j.error.message.includes("sk-wrong-key-999"), "key is masked");
});

// ---- faults ---------------------------------------------------------------------

test("fault 429: Retry-After and each provider's rate-limit body", async () => {
	let r = await post("/v1/chat/completions", chatBody("x"), { ...OA, "x-fake": "429=7" });
	assert.equal(r.status, 429);
	assert.equal(r.headers.get("retry-after"), "7");
	let j = await r.json();
	assert.equal(j.error.code, "rate_limit_exceeded");
	assert.equal(typeof j.error.message, "string");
	r = await post("/v1/messages", anBody("x"), { ...AN, "x-fake": "429" });
	assert.equal(r.status, 429);
	assert.equal(r.headers.get("retry-after"), "1");
	j = await r.json();
	assert.equal(j.type, "error");
	assert.equal(j.error.type, "rate_limit_error");
});

test("fault 500 / 529", async () => {
	let r = await post("/v1/chat/completions", chatBody("x"), { ...OA, "x-fake": "500" });
	assert.equal(r.status, 500);
	assert.equal((await r.json()).error.type, "server_error");
	r = await post("/v1/messages", anBody("x"), { ...AN, "x-fake": "500" });
	assert.equal(r.status, 500);
	assert.equal((await r.json()).error.type, "api_error");
	r = await post("/v1/messages", anBody("x"), { ...AN, "x-fake": "529" });
	assert.equal(r.status, 529);
	assert.deepEqual((await r.json()).error, { type: "overloaded_error", message: "Overloaded" });
});

test("fault slow-first-byte delays the status line", async () => {
	const t0 = Date.now();
	const r = await post("/v1/chat/completions", chatBody("x"), { ...OA, "x-fake": "slow-first-byte=300" });
	assert.ok(Date.now() - t0 >= 290, "waited");
	assert.equal(r.status, 200);
	await r.json();
});

test("fault cut-stream-after=N destroys the socket after N events", async () => {
	const r = await post("/v1/messages", anBody("a b c d", { stream: true }),
		{ ...AN, "x-fake": "cut-stream-after=3" });
	assert.equal(r.status, 200);
	let text = "";
	const dec = new TextDecoder();
	await assert.rejects(async () => {
		for await (const c of r.body) text += dec.decode(c, { stream: true });
	});
	assert.equal(parseSSE(text).length, 3);
	const [rec] = await requests();
	assert.equal(rec.cut, true);
	assert.equal(rec.events, 3);
	assert.equal(rec.completed, false);
	assert.equal(rec.aborted, false);
});

test("fault hang: never answers; client giving up is recorded as aborted", async () => {
	const ac = new AbortController();
	const p = post("/v1/chat/completions", chatBody("x"), { ...OA, "x-fake": "hang" });
	const pr = fetch(`${base}/v1/chat/completions`, { method: "POST", signal: ac.signal,
		headers: { ...OA, "x-fake": "hang" }, body: JSON.stringify(chatBody("y")) });
	setTimeout(() => ac.abort(), 200);
	await assert.rejects(pr, { name: "AbortError" });
	const recs = await waitFor(async () => {
		const rs = await requests();
		return rs.find((r) => r.body.messages[1].content === "y" && r.aborted) && rs;
	});
	const y = recs.find((r) => r.body.messages[1].content === "y");
	assert.equal(y.status, 0);
	assert.equal(y.completed, false);
	const x = recs.find((r) => r.body.messages[1].content === "x");
	assert.equal(x.aborted, false, "the other hanging request is still open");
	p.catch(() => {}); // closed by fake.close() at the end
});

test("client disconnect mid-stream is recorded as aborted", async () => {
	const ac = new AbortController();
	const r = await fetch(`${base}/v1/messages`, { method: "POST", signal: ac.signal,
		headers: { ...AN, "x-fake": "event-delay=100" },
		body: JSON.stringify(anBody("one two three four five six", { stream: true })) });
	const reader = r.body.getReader();
	await reader.read();
	ac.abort();
	const rec = await waitFor(async () => (await requests()).find((x) => x.aborted));
	assert.equal(rec.completed, false);
	assert.ok(rec.events < 12);
});

test("script: behaviours for the next N requests, then normal", async () => {
	let r = await post("/_fake/script", ["429=2", "", "500"]);
	assert.deepEqual(await r.json(), { ok: true, pending: 3 });
	const s = [];
	for (let i = 0; i < 4; i++) {
		const x = await post("/v1/chat/completions", chatBody("x"));
		s.push(x.status);
		if (i === 0) assert.equal(x.headers.get("retry-after"), "2");
		await x.arrayBuffer();
	}
	assert.deepEqual(s, [429, 200, 500, 200]);
	assert.deepEqual((await requests()).map((q) => q.fake),
		[["429=2"], [], ["500"], []]);
	assert.deepEqual(await (await fetch(`${base}/_fake/script`)).json(), []);
});

test("requests: recorded with auth headers and parsed body; reset clears", async () => {
	await (await post("/v1/chat/completions", chatBody("rec"))).arrayBuffer();
	await (await post("/v1/messages", anBody("rec"), AN)).arrayBuffer();
	const rs = await requests();
	assert.equal(rs.length, 2);
	assert.equal(rs[0].method, "POST");
	assert.equal(rs[0].path, "/v1/chat/completions");
	assert.equal(rs[0].headers.authorization, `Bearer ${KEY}`);
	assert.deepEqual(rs[0].body, chatBody("rec"));
	assert.equal(rs[0].status, 200);
	assert.equal(rs[0].completed, true);
	assert.equal(rs[0].aborted, false);
	assert.equal(rs[1].headers["x-api-key"], KEY);
	assert.equal(rs[1].headers["anthropic-version"], "2023-06-01");
	await post("/_fake/reset", {});
	assert.deepEqual(await requests(), []);
});

test("CLI prints {\"port\":N} and serves until SIGTERM", async () => {
	const child = spawn(process.execPath, [FAKE_PATH, "--port", "0", "--key", "k1"],
		{ stdio: ["ignore", "pipe", "inherit"] });
	let out = "";
	child.stdout.setEncoding("utf8");
	await new Promise((resolve, reject) => {
		child.stdout.on("data", (d) => { out += d; if (out.includes("\n")) resolve(); });
		child.once("exit", () => reject(new Error("exited early")));
	});
	const { port } = JSON.parse(out.trim());
	assert.ok(Number.isInteger(port) && port > 0);
	const r = await fetch(`http://127.0.0.1:${port}/v1/models`, { headers: { authorization: "Bearer k1" } });
	assert.equal(r.status, 200);
	const r2 = await fetch(`http://127.0.0.1:${port}/v1/models`);
	assert.equal(r2.status, 401);
	child.kill("SIGTERM");
	const [code] = await once(child, "exit");
	assert.equal(code, 0);
});

// ---- the official SDKs ------------------------------------------------------------

test("openai SDK: chat create, stream with usage, tool calls", async () => {
	const c = await openai.chat.completions.create(chatBody("sdk works"));
	assert.equal(c.choices[0].message.content, "echo: sdk works");
	assert.equal(c.usage.total_tokens, 7);

	const stream = await openai.chat.completions.create(chatBody("streamed sdk",
		{ stream: true, stream_options: { include_usage: true } }));
	let text = "", usage = null;
	for await (const ch of stream) {
		text += ch.choices[0]?.delta?.content ?? "";
		if (ch.usage) usage = ch.usage;
	}
	assert.equal(text, "echo: streamed sdk");
	assert.deepEqual([usage.prompt_tokens, usage.completion_tokens, usage.total_tokens], [4, 3, 7]);

	const t = await openai.chat.completions.create(chatBody("Lima", { tools: [weatherTool] }));
	assert.equal(t.choices[0].finish_reason, "tool_calls");
	assert.deepEqual(JSON.parse(t.choices[0].message.tool_calls[0].function.arguments), { city: "Lima" });

	// The SDK's stream helper reassembles the incremental tool_calls deltas.
	const runner = openai.chat.completions.stream(chatBody("Lima", { tools: [weatherTool] }));
	const fin = await runner.finalChatCompletion();
	assert.equal(fin.choices[0].finish_reason, "tool_calls");
	const call = fin.choices[0].message.tool_calls[0];
	assert.equal(call.function.name, "get_weather");
	assert.equal(call.function.arguments, '{"city":"Lima"}');
});

test("openai SDK: responses create and stream", async () => {
	const r = await openai.responses.create({ model: "gpt-4.1", input: "resp sdk" });
	assert.equal(r.output_text, "echo: resp sdk");
	assert.equal(r.usage.total_tokens, 5);
	const s = openai.responses.stream({ model: "gpt-4.1", input: "resp stream" });
	let deltas = "";
	s.on("response.output_text.delta", (e) => { deltas += e.delta; });
	const fin = await s.finalResponse();
	assert.equal(deltas, "echo: resp stream");
	assert.equal(fin.output_text, "echo: resp stream");
	assert.equal(fin.usage.output_tokens, 3);
	const raw = await openai.responses.create({ model: "gpt-4.1", input: "x y", stream: true });
	const types = [];
	for await (const e of raw) types.push(e.type);
	assert.equal(types[0], "response.created");
	assert.equal(types.at(-1), "response.completed");
});

test("openai SDK: models and embeddings (SDK asks for base64)", async () => {
	const models = [];
	for await (const m of openai.models.list()) models.push(m.id);
	assert.ok(models.includes("gpt-4o"));
	const e = await openai.embeddings.create({ model: "text-embedding-3-small", input: "alpha beta" });
	assert.deepEqual(Array.from(e.data[0].embedding), embed("alpha beta"));
	const rs = await requests();
	assert.equal(rs.at(-1).body.encoding_format, "base64");
});

test("openai SDK: errors are the SDK's own classes", async () => {
	await assert.rejects(openai.chat.completions.create(chatBody("x"), { headers: { "x-fake": "429=4" } }),
		(e) => e instanceof OpenAI.RateLimitError && e.status === 429 &&
			e.headers.get("retry-after") === "4" && e.code === "rate_limit_exceeded");
	await assert.rejects(openai.chat.completions.create(chatBody("x"), { headers: { "x-fake": "500" } }),
		(e) => e instanceof OpenAI.InternalServerError && e.status === 500 && e.type === "server_error");
	const bad = new OpenAI({ apiKey: "sk-nope", baseURL: `${base}/v1`, maxRetries: 0 });
	await assert.rejects(bad.chat.completions.create(chatBody("x")),
		(e) => e instanceof OpenAI.AuthenticationError && e.code === "invalid_api_key");
	// An error object inside the stream surfaces as an APIError.
	const s = await openai.chat.completions.create(chatBody("a b", { stream: true }),
		{ headers: { "x-fake": "stream-error" } });
	await assert.rejects(async () => { for await (const _ of s); },
		(e) => e instanceof OpenAI.APIError);
	// A cut stream surfaces as an error, not as a silently short answer.
	const s2 = await openai.chat.completions.create(chatBody("a b c", { stream: true }),
		{ headers: { "x-fake": "cut-stream-after=2" } });
	await assert.rejects(async () => { for await (const _ of s2); });
});

test("anthropic SDK: create, stream helpers, tool_use", async () => {
	const m = await anthropic.messages.create(anBody("sdk works"));
	assert.deepEqual(m.content, [{ type: "text", text: "echo: sdk works" }]);
	assert.deepEqual([m.usage.input_tokens, m.usage.output_tokens], [2, 3]);

	const s = anthropic.messages.stream(anBody("stream helper"));
	let text = "";
	s.on("text", (d) => { text += d; });
	const fin = await s.finalMessage();
	assert.equal(text, "echo: stream helper");
	assert.equal(fin.content[0].text, "echo: stream helper");
	assert.equal(fin.stop_reason, "end_turn");
	assert.deepEqual([fin.usage.input_tokens, fin.usage.output_tokens], [2, 3]);

	const raw = await anthropic.messages.create(anBody("x", { stream: true }));
	const types = [];
	for await (const e of raw) types.push(e.type);
	// The SDK drops `ping` events (the fetch test above sees it on the wire).
	assert.deepEqual(types, ["message_start", "content_block_start", "content_block_delta",
		"content_block_delta", "content_block_stop", "message_delta", "message_stop"]);

	const ts = anthropic.messages.stream(anBody("Quito", { tools: [anWeatherTool] }));
	let partial = "";
	ts.on("inputJson", (d) => { partial += d; });
	const tm = await ts.finalMessage();
	assert.equal(tm.stop_reason, "tool_use");
	assert.equal(tm.content[0].type, "tool_use");
	assert.equal(tm.content[0].name, "get_weather");
	assert.deepEqual(tm.content[0].input, { city: "Quito" });
	assert.equal(partial, '{"city":"Quito"}');
});

test("anthropic SDK: errors are the SDK's own classes", async () => {
	await assert.rejects(anthropic.messages.create(anBody("x"), { headers: { "x-fake": "429=5" } }),
		(e) => e instanceof Anthropic.RateLimitError && e.status === 429 &&
			e.headers.get("retry-after") === "5" && e.error?.error?.type === "rate_limit_error");
	await assert.rejects(anthropic.messages.create(anBody("x"), { headers: { "x-fake": "529" } }),
		(e) => e instanceof Anthropic.InternalServerError && e.status === 529 &&
			e.error?.error?.type === "overloaded_error");
	await assert.rejects(anthropic.messages.create(anBody("x"), { headers: { "x-fake": "500" } }),
		(e) => e instanceof Anthropic.InternalServerError && e.status === 500);
	const bad = new Anthropic({ apiKey: "nope", baseURL: base, maxRetries: 0 });
	await assert.rejects(bad.messages.create(anBody("x")),
		(e) => e instanceof Anthropic.AuthenticationError && e.status === 401);
	// The in-stream `event: error` (overloaded) surfaces from the stream helper.
	const s = anthropic.messages.stream(anBody("a b c"), { headers: { "x-fake": "stream-error=overloaded" } });
	await assert.rejects(s.finalMessage(),
		(e) => e instanceof Anthropic.APIError && /overloaded/i.test(JSON.stringify(e.error ?? e.message)));
});
