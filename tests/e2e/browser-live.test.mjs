// SPDX-License-Identifier: MIT
// Watching a sandbox's browser: GET /api/v1/sandboxes/{name}/browser lists
// its tabs; WS …/browser/live streams one as JPEG frames (Chromium's
// screencast), says which page it shows and follows it to the next; for
// admins only; a sandbox with no tab, or another sandbox's tab, is 404.
// The sandbox's side goes through its real gateway.sock (its 9222).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import WebSocket from "ws";
import { startPincer } from "./lib/daemon.mjs";
import { secret } from "./lib/llm.mjs";

const bin = process.env.PINCER_BIN;
let gw, tok, tokMember, tokAdmin, skip = false;

function cli(conf, state, args, input) {
	return execFileSync(bin, [...args, "--config", conf, "--state", state],
		{ input, stdio: ["pipe", "pipe", "pipe"] }).toString().trim();
}

const api = async (method, p, t = tok, body) => {
	const r = await fetch(gw.url + "/api/v1/sandboxes" + p, { method,
		headers: { Authorization: `Bearer ${t}`,
		"Content-Type": "application/json" },
		body: body ? JSON.stringify(body) : undefined });
	return { status: r.status, body: await r.json().catch(() => null) };
};

// A request on NAME's gateway.sock, as its 127.0.0.1:9222 would send it.
function inside(name, method, p) {
	return new Promise((resolve, reject) => {
		const req = http.request({ socketPath: path.join(gw.state,
			"sandboxes", name, "run", "gateway.sock"), path: p, method,
			headers: { Host: "127.0.0.1:9222" } }, (res) => {
			let b = "";
			res.on("data", (d) => { b += d; });
			res.on("end", () => {
				try { resolve(JSON.parse(b)); } catch { resolve(b); }
			});
		});
		req.on("error", reject);
		req.end();
	});
}

// The live view: its messages, its close; or the HTTP status refusing it.
function watch(name, query = "", t = tok) {
	const ws = new WebSocket(`${gw.url.replace("http", "ws")}/api/v1/` +
		`sandboxes/${name}/browser/live${query}`,
		{ headers: t ? { Authorization: `Bearer ${t}` } : {} });
	const w = { ws, frames: [], tabs: [] };
	ws.on("message", (d, binary) => binary ? w.frames.push(d) :
		w.tabs.push(JSON.parse(d.toString())));
	w.closed = new Promise((r) => ws.on("close", (code, reason) =>
		r({ code, reason: reason.toString() })));
	w.opened = new Promise((resolve) => {
		ws.once("open", () => resolve("open"));
		ws.once("unexpected-response", (q, res) => resolve(res.statusCode));
		ws.once("error", () => resolve("error"));
	});
	return w;
}

const until = async (f, ms = 10000) => {
	for (let i = 0; i < ms / 50; i++) {
		if (f()) return true;
		await new Promise((r) => setTimeout(r, 50));
	}
	return false;
};

before(async () => {
	if (!fs.existsSync("/usr/bin/chromium")) { skip = "no Chromium"; return; }
	gw = await startPincer("browser-live", { auth: { argon2_memory_kib:
		1024, argon2_iterations: 1 } }, {
		beforeStart: ({ conf, state }) => {
			const pw = "a long passphrase for alice\n";
			cli(conf, state, ["user", "add", "alice", "--role", "owner",
				"--password-stdin"], pw);
			cli(conf, state, ["user", "add", "bob", "--role", "member",
				"--password-stdin"], pw);
			tok = cli(conf, state, ["token", "create", "--user", "alice",
				"--scope", "sandbox", "--name", "t"]);
			tokMember = cli(conf, state, ["token", "create", "--user",
				"bob", "--scope", "sandbox", "--name", "m"]);
			tokAdmin = cli(conf, state, ["token", "create", "--user",
				"alice", "--scope", "admin", "--name", "adm"]);
			secret(tok);
			secret(tokMember);
			secret(tokAdmin);
		} });
	for (const name of ["a", "b"])
		if ((await api("POST", "", tok, { name })).status !== 201)
			skip = "no sandboxes here";
});

after(async () => {
	if (gw) assert.equal(await gw.stop(), 0, "pincerd exits 0");
});

test("no tab yet: the list is empty, the live view 404", async (t) => {
	if (skip) return t.skip(skip);
	const r = await api("GET", "/a/browser");
	assert.equal(r.status, 200);
	assert.deepEqual(r.body, { tabs: [] });
	assert.equal(await watch("a").opened, 404);
	assert.equal((await api("GET", "/nope/browser")).status, 404);
});

test("a tab is listed and watched: frames, its page, the next page",
    async (t) => {
	if (skip) return t.skip(skip);
	const page = "data:text/html,<title>one</title><h1>one</h1>";
	const made = await inside("a", "PUT", `/json/new?${page}`);
	const other = await inside("b", "PUT", "/json/new?about:blank");
	const r = await api("GET", "/a/browser");
	assert.equal(r.status, 200);
	assert.deepEqual(r.body.tabs.map((x) => x.id), [made.id],
	    "a's tab, not b's");
	const w = watch("a");
	assert.equal(await w.opened, "open");
	assert.ok(await until(() => w.frames.length > 0), "a frame came");
	const f = w.frames[0];
	assert.equal(f[0], 0xff);
	assert.equal(f[1], 0xd8, "a JPEG");
	assert.equal(w.tabs[0].type, "tab");
	assert.equal(w.tabs[0].id, made.id);
	// The sandbox moves its tab on: the view says so and goes on.
	const ws = new WebSocket(`ws+unix://${path.join(gw.state, "sandboxes",
		"a", "run", "gateway.sock")}:/devtools/page/${made.id}`);
	await new Promise((res) => ws.once("open", res));
	const n0 = w.frames.length;
	ws.send(JSON.stringify({ id: 1, method: "Page.navigate", params: {
		url: "data:text/html,<title>two</title><h1>two</h1>" } }));
	assert.ok(await until(() => w.tabs.some((x) =>
	    /two/.test(x.url ?? ""))), JSON.stringify(w.tabs));
	assert.ok(await until(() => w.frames.length > n0), "more frames");
	ws.close();
	// b's tab cannot be watched through a.
	assert.equal(await watch("a", `?tab=${other.id}`).opened, 404);
	// The tab closes: so does the view.
	assert.equal(await inside("a", "GET", `/json/close/${made.id}`),
	    "Target is closing");
	const c = await Promise.race([w.closed, new Promise((res) =>
		setTimeout(() => res("open"), 5000))]);
	assert.equal(c.code, 1000, JSON.stringify(c));
	const audit = await (await fetch(gw.url + "/api/v1/audit", { headers:
		{ Authorization: `Bearer ${tokAdmin}` } })).json();
	assert.ok(JSON.stringify(audit).includes("sandbox.browser_live"),
	    "the watching is audited");
});

test("admins only; a credential needed", async (t) => {
	if (skip) return t.skip(skip);
	await inside("a", "PUT", "/json/new?about:blank");
	assert.equal(await watch("a", "", null).opened, 401);
	assert.equal(await watch("a", "", tokMember).opened, 403);
	assert.equal((await api("GET", "/a/browser", tokMember)).status, 403);
});
