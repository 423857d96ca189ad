// SPDX-License-Identifier: MIT
// What the LLM proxy counts and caps: one usage row per call with the
// provider's token counts (streams included), GET /api/v1/usage grouped
// by day, model and caller, budgets (429 naming the budget, in the SDKs'
// error types), the per-caller rate limit, and the answer cache (hit,
// replayed stream, expiry).
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { KEY, startProxy, startFake, requests, reset, chatBody, anBody,
	parseSSE } from "./lib/llm.mjs";

let fake, gw, token, memberToken, openai;
const providers = () => [{ name: "oa", kind: "openai",
	base_url: `${fake.url}/v1`, key: "fake_key", models: ["gpt-4o"],
	prices: { "gpt-4o": { input: 2, output: 8 } } }];

before(async () => {
	fake = await startFake({ key: KEY });
	({ gw, token, memberToken } = await startProxy("llm-usage", {
		providers: providers(),
		routes: { default: ["oa/gpt-4o"],
			cached: { targets: ["oa/gpt-4o"], cache_ttl_s: 1 } },
		rate_limit_rpm: 0,
		budgets: [{ caller: "user:bob", period: "day", tokens: 40 }],
	}));
	openai = new OpenAI({ apiKey: token, baseURL: `${gw.url}/llm/v1`,
		maxRetries: 0 });
});
after(async () => {
	assert.equal(await gw?.stop(), 0);
	await fake?.close();
});
beforeEach(() => reset(fake));

const api = (p, t = token) => fetch(gw.url + p,
	{ headers: { authorization: `Bearer ${t}` } }).then(async (r) =>
	({ status: r.status, body: await r.json() }));
const today = () => new Date().toISOString().slice(0, 10);

test("usage rows carry the provider's token counts, streams included",
    async () => {
	const before = (await api("/api/v1/usage?group_by=model")).body.total;
	const a = await openai.chat.completions.create(chatBody("default",
		"count these four words"));
	const s = await openai.chat.completions.create(chatBody("default",
		"and these", { stream: true }));
	for await (const c of s) void c;
	const q = await requests(fake);
	const streamed = q[1];
	assert.equal(streamed.body.stream_options.include_usage, true);
	// The fake counts words: prompt = every message's words.
	const inTok = a.usage.prompt_tokens + 4, outTok =
		a.usage.completion_tokens + 3;	// "be brief and these"; "echo: and these"
	let u;
	for (let i = 0; i < 50; i++) {
		u = (await api("/api/v1/usage?group_by=model")).body;
		if (u.total.requests >= before.requests + 2) break;
		await new Promise((r) => setTimeout(r, 50));
	}
	assert.equal(u.total.requests - before.requests, 2);
	assert.equal(u.total.input_tokens - before.input_tokens, inTok);
	assert.equal(u.total.output_tokens - before.output_tokens, outTok);
	const row = u.rows.find((r) => r.key === "gpt-4o");
	assert.ok(row && row.requests >= 2);
	assert.ok(Math.abs(row.cost_usd - (row.input_tokens * 2 +
		row.output_tokens * 8) / 1e6) < 1e-9, "cost from the price table");
	const byDay = (await api(`/api/v1/usage?group_by=day&from=${today()}&to=${today()}`)).body;
	assert.equal(byDay.rows[0].key, today());
	const byCaller = (await api("/api/v1/usage?group_by=caller")).body;
	assert.ok(byCaller.rows.some((r) => r.key === "user:alice"));
	assert.equal((await api("/api/v1/usage?group_by=nope")).status, 400);
	const m = await (await fetch(`${gw.url}/metrics`, { headers:
		{ authorization: `Bearer ${token}` } })).text();
	assert.match(m, /^pincer_llm_requests_total\{provider="oa",status="200"\} \d+$/m);
	assert.match(m, /^pincer_llm_tokens_total\{provider="oa",kind="output"\} \d+$/m);
	assert.match(m, /^pincer_llm_request_duration_seconds_bucket\{provider="oa",le="\+Inf"\} \d+$/m);
	assert.equal((await api("/api/v1/usage?from=yesterday")).status, 400);
});

test("a member sees only their own calls", async () => {
	const bob = new OpenAI({ apiKey: memberToken, maxRetries: 0,
		baseURL: `${gw.url}/llm/v1` });
	await bob.chat.completions.create(chatBody("default", "mine"));
	const u = (await api("/api/v1/usage?group_by=caller", memberToken)).body;
	assert.deepEqual(u.rows.map((r) => r.key), ["user:bob"]);
});

test("over a budget: 429 naming it, and no upstream call", async () => {
	const bob = new OpenAI({ apiKey: memberToken, maxRetries: 0,
		baseURL: `${gw.url}/llm/v1` });
	let err = null;
	for (let i = 0; i < 10 && !err; i++)
		await bob.chat.completions.create(chatBody("default",
			"burn some tokens here")).catch((e) => { err = e; });
	assert.ok(err instanceof OpenAI.RateLimitError, String(err));
	assert.match(err.message, /daily token budget/);
	assert.match(err.message, /user:bob/);
	const n = (await requests(fake)).length;
	const an = new Anthropic({ apiKey: memberToken, maxRetries: 0,
		baseURL: `${gw.url}/llm` });
	await assert.rejects(an.messages.create(anBody("default", "x")),
		(e) => e instanceof Anthropic.RateLimitError);
	assert.equal((await requests(fake)).length, n, "refused before");
	// Alice has no such budget.
	await openai.chat.completions.create(chatBody("default", "still ok"));
});

test("the cache: a hit, a replayed stream, and expiry", async () => {
	const body = chatBody("cached", "cache me");
	const r1 = await fetch(`${gw.url}/llm/v1/chat/completions`, {
		method: "POST", headers: { authorization: `Bearer ${token}` },
		body: JSON.stringify(body) });
	assert.equal(r1.headers.get("x-pincer-cache"), "miss");
	const t1 = await r1.json();
	// Same request, keys in another order: same answer, from the cache.
	const r2 = await fetch(`${gw.url}/llm/v1/chat/completions`, {
		method: "POST", headers: { authorization: `Bearer ${token}` },
		body: JSON.stringify({ messages: body.messages, model: "cached" }) });
	assert.equal(r2.headers.get("x-pincer-cache"), "hit");
	assert.deepEqual(await r2.json(), t1);
	assert.equal((await requests(fake)).length, 1);
	// A stream is kept as a stream and replayed to the SDK.
	const sb = chatBody("cached", "stream cache", { stream: true });
	const read = async () => {
		const s = await openai.chat.completions.create(sb);
		let t = "";
		for await (const c of s)
			t += c.choices[0]?.delta?.content ?? "";
		return t;
	};
	assert.equal(await read(), "echo: stream cache");
	assert.equal(await read(), "echo: stream cache");
	assert.equal((await requests(fake)).length, 2);
	await new Promise((r) => setTimeout(r, 1100));
	const r3 = await fetch(`${gw.url}/llm/v1/chat/completions`, {
		method: "POST", headers: { authorization: `Bearer ${token}` },
		body: JSON.stringify(body) });
	assert.equal(r3.headers.get("x-pincer-cache"), "miss", "expired");
	assert.equal((await requests(fake)).length, 3);
	// On any route by request header.
	const h = { authorization: `Bearer ${token}`, "x-pincer-cache": "ttl=60" };
	const b = JSON.stringify(chatBody("default", "by header"));
	await fetch(`${gw.url}/llm/v1/chat/completions`, { method: "POST",
		headers: h, body: b });
	const r4 = await fetch(`${gw.url}/llm/v1/chat/completions`, {
		method: "POST", headers: h, body: b });
	assert.equal(r4.headers.get("x-pincer-cache"), "hit");
	assert.ok(gw.log().includes('msg="llm cache hit"'));
	const sse = parseSSE(await (await fetch(`${gw.url}/llm/v1/chat/completions`, {
		method: "POST", headers: { authorization: `Bearer ${token}` },
		body: JSON.stringify(sb) })).text());
	assert.equal(sse.at(-1).data, "[DONE]");
});

test("the per-caller rate limit answers 429 with Retry-After", async () => {
	const g = await startProxy("llm-rate", { providers: providers(),
		routes: { default: ["oa/gpt-4o"] }, rate_limit_rpm: 3,
		budgets: [] });
	try {
		const codes = [];
		let last;
		for (let i = 0; i < 5; i++) {
			last = await fetch(`${g.gw.url}/llm/v1/chat/completions`, {
				method: "POST", headers: { authorization:
					`Bearer ${g.token}` },
				body: JSON.stringify(chatBody("default", "r")) });
			codes.push(last.status);
		}
		assert.deepEqual(codes, [200, 200, 200, 429, 429]);
		assert.ok(Number(last.headers.get("retry-after")) > 0);
		assert.match((await last.json()).error.message, /rate/);
	} finally {
		assert.equal(await g.gw.stop(), 0);
	}
});
