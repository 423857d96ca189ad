// SPDX-License-Identifier: MIT
// The CDP bridge's limits, with raw clients (the `ws` package) on a real
// sandbox's gateway.sock, which is what its 127.0.0.1:9222 is relayed to:
// sessions over browser.max_sessions wait for a slot and get it when one
// ends, or are refused with 1013 after browser.queue_timeout_s; the global
// limit the same; a fragmented command is one message, one too large
// closes the session (1009); an idle session is closed (1001); a sandbox
// put to sleep ends its sessions and its browser context.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import WebSocket from "ws";
import { startPincer } from "./lib/daemon.mjs";
import { secret } from "./lib/llm.mjs";

const bin = process.env.PINCER_BIN;
const PW = "a long passphrase for alice";
let gw, tok, skip = false;

function cli(conf, state, args, input) {
	return execFileSync(bin, [...args, "--config", conf, "--state", state],
		{ input, stdio: ["pipe", "pipe", "pipe"] }).toString().trim();
}

async function api(method, p, body) {
	const r = await fetch(gw.url + "/api/v1/sandboxes" + p, { method,
		headers: { Authorization: `Bearer ${tok}`,
		"Content-Type": "application/json" },
		body: body ? JSON.stringify(body) : undefined });
	return { status: r.status, body: await r.json().catch(() => null) };
}

const sock = (name) => path.join(gw.state, "sandboxes", name, "run",
	"gateway.sock");

// A CDP session of NAME: opened (or refused), its messages, its close.
function session(name) {
	const ws = new WebSocket(`ws+unix://${sock(name)}:/devtools/browser/x`);
	const s = { ws, msgs: [], next: 1 };
	s.closed = new Promise((r) => ws.on("close", (code, reason) =>
		r({ code, reason: reason.toString() })));
	s.opened = new Promise((resolve, reject) => {
		ws.once("open", resolve);
		ws.once("error", reject);
	});
	ws.on("message", (d) => s.msgs.push(JSON.parse(d.toString())));
	// The browser answered a command: the session is through the queue.
	s.call = async (method, params = {}) => {
		const id = s.next++;
		await s.opened;
		ws.send(JSON.stringify({ id, method, params }));
		for (let i = 0; i < 400; i++) {
			const m = s.msgs.find((x) => x.id === id);
			if (m) return m;
			await new Promise((r) => setTimeout(r, 25));
		}
		return null;
	};
	return s;
}

// Settles within ms, or "pending".
const within = (p, ms) => Promise.race([p, new Promise((r) =>
	setTimeout(() => r("pending"), ms))]);

before(async () => {
	if (!fs.existsSync("/usr/bin/chromium")) { skip = "no Chromium"; return; }
	gw = await startPincer("browser-cdp-limits", {
		auth: { argon2_memory_kib: 1024, argon2_iterations: 1 },
		browser: { max_sessions: 2, max_sessions_total: 3,
			queue_timeout_s: 2, session_idle_s: 4,
			max_message_bytes: 1048576 } }, {
		beforeStart: ({ conf, state }) => {
			cli(conf, state, ["user", "add", "alice", "--role", "owner",
				"--password-stdin"], PW + "\n");
			tok = cli(conf, state, ["token", "create", "--user", "alice",
				"--scope", "sandbox", "--name", "t"]);
			secret(tok);
		} });
	for (const name of ["a", "b"]) {
		const c = await api("POST", "", { name });
		if (c.status !== 201) { skip = `no sandboxes here (${c.status})`; return; }
	}
});

after(async () => {
	if (gw) assert.equal(await gw.stop(), 0, "pincerd exits 0");
});

test("over max_sessions: queued, admitted when a slot frees", async (t) => {
	if (skip) return t.skip(skip);
	const s1 = session("a"), s2 = session("a");
	assert.ok((await s1.call("Browser.getVersion")).result);
	assert.ok((await s2.call("Browser.getVersion")).result);
	const s3 = session("a");
	await s3.opened;
	const early = within(s3.call("Browser.getVersion"), 800);
	assert.equal(await early, "pending", "the third waits");
	s1.ws.close();
	const m = await s3.call("Browser.getVersion");
	assert.ok(m?.result, "… and is let in when the first goes");
	s2.ws.close();
	s3.ws.close();
	await s3.closed;
});

test("queued past queue_timeout_s: refused with 1013, saying why",
    async (t) => {
	if (skip) return t.skip(skip);
	const s1 = session("a"), s2 = session("a");
	await s1.call("Browser.getVersion");
	await s2.call("Browser.getVersion");
	const s3 = session("a");
	const c = await within(s3.closed, 5000);
	assert.equal(c.code, 1013);
	assert.match(c.reason, /browser\.max_sessions\): waited 2 s/);
	s1.ws.close();
	s2.ws.close();
	await s2.closed;
});

test("the global limit: a's two and b's one fill it, b's next waits",
    async (t) => {
	if (skip) return t.skip(skip);
	const a1 = session("a"), a2 = session("a"), b1 = session("b");
	for (const s of [a1, a2, b1])
		assert.ok((await s.call("Browser.getVersion")).result);
	const b2 = session("b");
	const c = await within(b2.closed, 5000);
	assert.equal(c.code, 1013);
	assert.match(c.reason, /max_sessions_total/);
	for (const s of [a1, a2, b1]) s.ws.close();
	await b1.closed;
});

test("a command in fragments (RFC 6455 §5.4) is one message", async (t) => {
	if (skip) return t.skip(skip);
	const s = session("b");
	await s.opened;
	const text = JSON.stringify({ id: 77, method: "Target.createTarget",
		params: { url: "data:text/plain," + "x".repeat(200000) } });
	const cut = [0, 10, 70000, text.length];
	for (let i = 0; i < 3; i++)
		s.ws.send(text.slice(cut[i], cut[i + 1]), { fin: i === 2 });
	let m;
	for (let i = 0; i < 200 && !m; i++) {
		m = s.msgs.find((x) => x.id === 77);
		if (!m) await new Promise((r) => setTimeout(r, 25));
	}
	assert.match(m?.result?.targetId ?? "", /^[0-9A-F]{32}$/,
	    JSON.stringify(m));
	s.ws.close();
	await s.closed;
});

test("a message over max_message_bytes: closed with 1009", async (t) => {
	if (skip) return t.skip(skip);
	const s = session("b");
	await s.opened;
	s.ws.send(JSON.stringify({ id: 1, method: "Target.createTarget",
		params: { url: "data:text/plain," + "x".repeat(1100000) } }));
	const c = await within(s.closed, 5000);
	assert.equal(c.code, 1009, JSON.stringify(c));
});

test("an idle session is closed (1001)", async (t) => {
	if (skip) return t.skip(skip);
	const s = session("b");
	assert.ok((await s.call("Browser.getVersion")).result);
	const c = await within(s.closed, 8000);
	assert.equal(c.code, 1001);
	assert.match(c.reason, /idle for 4 s/);
});

test("a sandbox put to sleep: its sessions end, its context goes",
    async (t) => {
	if (skip) return t.skip(skip);
	const s = session("b");
	const made = await s.call("Target.createTarget", { url: "about:blank" });
	assert.ok(made.result.targetId);
	assert.equal((await api("POST", "/b/stop")).status, 200);
	const c = await within(s.closed, 5000);
	assert.notEqual(c, "pending", "the session ended");
	let gone = false;
	for (let i = 0; i < 40 && !gone; i++) {
		gone = /msg="browser context disposed" detail="sandbox=b"/
		    .test(gw.log());
		if (!gone) await new Promise((r) => setTimeout(r, 100));
	}
	assert.ok(gone, "b's context was disposed");
});
