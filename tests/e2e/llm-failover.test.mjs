// SPDX-License-Identifier: MIT
// The LLM proxy when providers fail: failover in the route's order
// (connection refused, 5xx, a provider that never answers), retries that
// wait out Retry-After, no retry once a stream has begun (the client gets
// an error event its SDK raises), and a client that goes away cancelling
// the upstream call, before and during a stream.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { KEY, startProxy, startFake, requests, script, reset, waitFor,
	chatBody, anBody } from "./lib/llm.mjs";

let fake, fake2, gw, token, openai, anthropic;

before(async () => {
	fake = await startFake({ key: KEY });
	fake2 = await startFake({ key: KEY });
	const oa = (name, url, extra = {}) => ({ name, kind: "openai",
		base_url: `${url}/v1`, key: "fake_key", ...extra });
	({ gw, token } = await startProxy("llm-failover", {
		providers: [
			oa("one", fake.url),
			oa("two", fake2.url),
			oa("slow", fake2.url, { timeout_ms: 400 }),
			{ name: "down", kind: "openai-compatible",
				base_url: "http://127.0.0.1:1/v1" },
			{ name: "an", kind: "anthropic", base_url: `${fake.url}/v1`,
				key: "fake_key" },
		],
		routes: {
			chain: ["down/gpt-4o", "two/gpt-4o", "one/gpt-4o"],
			only: ["one/gpt-4o"],
			hang: ["slow/gpt-4o", "one/gpt-4o"],
			claude: ["an/claude-sonnet-4-20250514"],
		},
		rate_limit_rpm: 0, budgets: [], max_attempts: 3,
		retry_base_ms: 50, retry_max_wait_s: 5,
	}));
	openai = new OpenAI({ apiKey: token, baseURL: `${gw.url}/llm/v1`,
		maxRetries: 0 });
	anthropic = new Anthropic({ apiKey: token, baseURL: `${gw.url}/llm`,
		maxRetries: 0 });
});
after(async () => {
	assert.equal(await gw?.stop(), 0);
	await fake?.close();
	await fake2?.close();
});
beforeEach(async () => { await reset(fake); await reset(fake2); });

async function raw(body, headers = {}) {
	return fetch(`${gw.url}/llm/v1/chat/completions`, { method: "POST",
		headers: { authorization: `Bearer ${token}`,
			"content-type": "application/json", ...headers },
		body: JSON.stringify(body) });
}

test("failover goes down the route in order", async () => {
	await script(fake2, ["500"]);
	const r = await raw(chatBody("chain", "fail over"));
	assert.equal(r.status, 200);
	assert.equal(r.headers.get("x-pincer-provider"), "one");
	assert.equal(r.headers.get("x-pincer-attempts"), "3");
	assert.equal((await r.json()).choices[0].message.content,
		"echo: fail over");
	const a = await requests(fake2), b = await requests(fake);
	assert.equal(a.length, 1);
	assert.equal(a[0].status, 500);
	assert.equal(b.length, 1);
	assert.ok(Date.parse(a[0].time) <= Date.parse(b[0].time));
});

test("a provider that never answers is left after its timeout_ms",
    async () => {
	await script(fake2, ["hang"]);
	const t0 = Date.now();
	const r = await raw(chatBody("hang", "late"));
	assert.equal(r.status, 200);
	assert.equal(r.headers.get("x-pincer-provider"), "one");
	assert.ok(Date.now() - t0 >= 380, "waited for the timeout");
	await waitFor(async () => (await requests(fake2))[0]?.aborted);
});

test("a retry waits out Retry-After", async () => {
	await script(fake, ["429=1", ""]);
	const r = await raw(chatBody("only", "patience"));
	assert.equal(r.status, 200);
	const q = await requests(fake);
	assert.equal(q.length, 2);
	const gap = Date.parse(q[1].time) - Date.parse(q[0].time);
	assert.ok(gap >= 950, `second try ${gap} ms after the first`);
	assert.equal(r.headers.get("x-pincer-attempts"), "2");
});

test("when every try fails the last error reaches the SDK", async () => {
	await script(fake, ["503", "503", "503"]);
	await assert.rejects(openai.chat.completions.create(chatBody("only",
		"x")), (e) => e instanceof OpenAI.InternalServerError ||
		e.status === 503);
	assert.equal((await requests(fake)).length, 3, "max_attempts tries");
	await script(fake, ["429=60"]);
	const r = await raw(chatBody("only", "x"));
	assert.equal(r.status, 429, "a Retry-After over retry_max_wait_s is "
		+ "passed on, not waited");
	assert.equal(r.headers.get("retry-after"), "60");
	assert.equal((await requests(fake)).length, 4);
});

test("a 400 is not retried", async () => {
	await script(fake2, ["400"]);
	const r = await raw(chatBody("chain", "x"));
	assert.equal(r.status, 400);
	assert.equal((await requests(fake)).length + (await requests(fake2))
		.length, 1);
});

test("no retry once a stream has begun: an error event instead",
    async () => {
	await script(fake, ["cut-stream-after=3"]);
	const s = await openai.chat.completions.create(chatBody("only",
		"a b c d e f g h", { stream: true }));
	let got = "";
	await assert.rejects((async () => {
		for await (const c of s)
			got += c.choices[0]?.delta?.content ?? "";
	})(), (e) => e instanceof OpenAI.APIError);
	assert.ok(got.length > 0 && got !== "echo: a b c d e f g h");
	assert.equal((await requests(fake)).length, 1);
	await script(fake, ["cut-stream-after=3"]);
	const as = anthropic.messages.stream(anBody("claude", "a b c d e f"));
	await assert.rejects(as.finalMessage(), (e) =>
		e instanceof Anthropic.APIError || /error/i.test(String(e)));
	assert.equal((await requests(fake)).length, 2);
});

test("a client gone before the answer cancels the upstream call",
    async () => {
	await script(fake, ["slow-first-byte=1500", "slow-first-byte=3000"]);
	const ac = new AbortController();
	const p = raw(chatBody("only", "never mind"), {}).catch(() => null);
	void p;
	const p2 = fetch(`${gw.url}/llm/v1/chat/completions`, {
		method: "POST", signal: ac.signal,
		headers: { authorization: `Bearer ${token}` },
		body: JSON.stringify(chatBody("only", "abandon")) })
		.catch((e) => e);
	await waitFor(async () => (await requests(fake)).length === 2);
	ac.abort();
	await p2;
	await waitFor(async () => (await requests(fake))
		.find((q) => q.body.messages[1].content === "abandon")?.aborted);
	assert.equal((await p)?.status, 200, "the other call is untouched");
});

test("a client gone mid-stream cancels the upstream stream", async () => {
	await script(fake, ["event-delay=150"]);
	const ac = new AbortController();
	const r = await fetch(`${gw.url}/llm/v1/chat/completions`, {
		method: "POST", signal: ac.signal,
		headers: { authorization: `Bearer ${token}` },
		body: JSON.stringify(chatBody("only", "w w w w w w w w w w w w",
			{ stream: true })) });
	assert.equal(r.status, 200);
	const rd = r.body.getReader();
	await rd.read();
	ac.abort();
	const q = await waitFor(async () => {
		const x = (await requests(fake))[0];
		return x?.aborted ? x : null;
	});
	assert.equal(q.completed, false);
});
