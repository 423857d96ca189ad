// SPDX-License-Identifier: MIT
// The sandbox terminal through pincerd: /api/v1/sandboxes/{name}/terminal,
// relayed to the real pincer-init of a real sandbox. Who may open one
// (token scope, no credential, a session cookie and its Origin, the local
// socket), what passes (ready, keystrokes, output, resize, exit), replay on
// reconnect, unknown names, waking a sleeping sandbox, and back-pressure.
// Client: the `ws` package.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import WebSocket from "ws";
import { startPincer, get } from "./lib/daemon.mjs";

const bin = process.env.PINCER_BIN;
const PW = "a long passphrase for alice";
const NAME = "term1";
let gw, tokSandbox, tokRead, cookie, skip = false;

// The CLI on this daemon's state: stdout, trimmed.
function cli(conf, state, args, input) {
	return execFileSync(bin, [...args, "--config", conf, "--state", state],
		{ input, stdio: ["pipe", "pipe", "pipe"] }).toString().trim();
}

// Tokens travel in headers only; none may reach a log (zz_secrets_in_logs).
function secret(value) {
	if (!process.env.TOP_BUILDDIR) return;
	const logs = path.join(process.env.TOP_BUILDDIR, "tests", "logs");
	fs.mkdirSync(logs, { recursive: true });
	fs.appendFileSync(path.join(logs, "secrets.list"), value + "\n");
}

// A request to gw, or (socketPath) on a local socket, with a JSON body.
function request(method, p, { headers = {}, body, socketPath } = {}) {
	return new Promise((resolve, reject) => {
		const req = http.request(socketPath ? `http://localhost${p}` :
			gw.url + p, { method, agent: false, socketPath,
			headers: { "Content-Type": "application/json", ...headers } },
		(res) => {
			let b = "";
			res.setEncoding("utf8");
			res.on("data", (d) => { b += d; });
			res.on("end", () => resolve({ status: res.statusCode,
				headers: res.headers, body: b }));
		});
		req.on("error", reject);
		req.end(body);
	});
}
const bearer = (t) => ({ Authorization: `Bearer ${t}` });

before(async () => {
	gw = await startPincer("sandbox-terminal", {}, {
		beforeStart: ({ conf, state }) => {
			cli(conf, state, ["user", "add", "alice", "--role", "owner",
				"--password-stdin"], PW + "\n");
			tokSandbox = cli(conf, state, ["token", "create", "--user",
				"alice", "--scope", "sandbox", "--name", "term"]);
			tokRead = cli(conf, state, ["token", "create", "--user",
				"alice", "--scope", "read", "--name", "ro"]);
		},
	});
	secret(tokSandbox);
	secret(tokRead);
	const r = await request("POST", "/api/v1/auth/login",
		{ body: JSON.stringify({ username: "alice", password: PW }) });
	assert.equal(r.status, 200, r.body);
	cookie = String(r.headers["set-cookie"]).match(/pincer_session=([^;]+)/)[1];
	secret(cookie);
	const c = await request("POST", "/api/v1/sandboxes",
		{ headers: bearer(tokSandbox), body: JSON.stringify({ name: NAME }) });
	if (c.status === 503) {
		skip = `sandboxes cannot run here: ${c.body}`;
		return;
	}
	assert.ok(c.status === 201 || c.status === 200, c.body);
});

after(async () => {
	if (gw) await gw.stop();
});

// A terminal session: text frames parsed into events, binary frames
// gathered into out. until(fn) waits for fn() to hold.
class Term {
	constructor(ws) {
		this.ws = ws;
		this.events = [];
		this.out = "";
		this.binaryOut = true;
		this.closed = new Promise((r) => ws.once("close",
			(code, reason) => r({ code, reason: reason.toString() })));
		ws.on("message", (data, isBinary) => {
			if (isBinary) this.out += Buffer.from(data).toString("latin1");
			else this.events.push(JSON.parse(data.toString()));
		});
	}
	async until(fn, what, ms = 20000) {
		const end = Date.now() + ms;
		while (!fn()) {
			if (Date.now() > end)
				throw new Error(`timed out waiting for ${what}; ` +
				    `events=${JSON.stringify(this.events)} ` +
				    `out=${JSON.stringify(this.out.slice(-400))}`);
			await new Promise((r) => setTimeout(r, 20));
		}
	}
	ready() {
		return this.until(() => this.events.some((e) => e.type === "ready"),
			"ready");
	}
	type(s) { this.ws.send(Buffer.from(s)); }
	close() {
		this.ws.close();
		return this.closed;
	}
}

// Open a terminal; rejects with {status, body} when the upgrade is refused.
function open({ name = NAME, id = "main", cols = 80, rows = 24,
	headers = bearer(tokSandbox), origin, url, autoPong = true } = {}) {
	const q = `id=${encodeURIComponent(id)}&cols=${cols}&rows=${rows}`;
	const target = url ?? gw.url.replace("http", "ws") +
		`/api/v1/sandboxes/${name}/terminal?${q}`;
	const ws = new WebSocket(target, { headers, origin, autoPong });
	return new Promise((resolve, reject) => {
		const t = new Term(ws);
		ws.once("open", () => resolve(t));
		ws.once("unexpected-response", (req, res) => {
			let body = "";
			res.on("data", (d) => { body += d; });
			res.on("end", () => reject(Object.assign(
				new Error(`refused: ${res.statusCode} ${body}`),
				{ status: res.statusCode, body })));
		});
		ws.once("error", reject);
	});
}

// A refusal with this status and error code in the JSON body.
async function refused(opts, status, code) {
	await assert.rejects(open(opts), (e) => {
		assert.equal(e.status, status, e.message);
		assert.equal(JSON.parse(e.body).error.code, code);
		return true;
	});
}

// A line of the shell's output, on its own (the typed command echoes too).
// Lines start after \n or, past bash's bracketed-paste escapes, after \r.
const line = (s) => new RegExp(`(^|[\\r\\n])${s}\\r?\\n`);

test("a token with the sandbox scope opens a terminal: ready, echo hi, hi", async (t) => {
	if (skip) return t.skip(skip);
	const term = await open({ id: "first" });
	await term.ready();
	const ready = term.events.find((e) => e.type === "ready");
	assert.equal(ready.id, "first");
	assert.ok(ready.pid > 0, JSON.stringify(ready));
	term.type("echo hi\n");
	await term.until(() => line("hi").test(term.out), "hi");
	await term.close();
});

test("a token without the sandbox scope is refused (403)", async (t) => {
	if (skip) return t.skip(skip);
	await refused({ headers: bearer(tokRead) }, 403, "forbidden");
});

test("no credential, or a bad one, is refused (401)", async (t) => {
	if (skip) return t.skip(skip);
	await refused({ headers: {} }, 401, "unauthenticated");
	await refused({ headers: bearer("pincer_" + "0".repeat(40)) }, 401,
		"invalid_credentials");
});

test("a session cookie needs this gateway's own Origin", async (t) => {
	if (skip) return t.skip(skip);
	const headers = { Cookie: `pincer_session=${cookie}` };
	await refused({ headers, origin: "http://evil.example" }, 403, "bad_origin");
	await refused({ headers }, 403, "bad_origin");
	await refused({ headers, origin: gw.url.replace("127.0.0.1", "localhost") },
		403, "bad_origin");
	const term = await open({ headers, origin: gw.url, id: "cookie" });
	await term.ready();
	await term.close();
});

test("the local socket needs no credential", async (t) => {
	if (skip) return t.skip(skip);
	const sock = path.join(gw.state, "pincerd.sock");
	const term = await open({ headers: {}, url: `ws+unix://${sock}:` +
		`/api/v1/sandboxes/${NAME}/terminal?id=local&cols=80&rows=24` });
	await term.ready();
	term.type("echo local-$((40+2))\n");
	await term.until(() => line("local-42").test(term.out), "local-42");
	await term.close();
});

test("output is binary frames, control is text frames", async (t) => {
	if (skip) return t.skip(skip);
	const ws = new WebSocket(gw.url.replace("http", "ws") +
		`/api/v1/sandboxes/${NAME}/terminal?id=frames&cols=80&rows=24`,
		{ headers: bearer(tokSandbox) });
	const kinds = [];
	ws.on("message", (data, isBinary) => kinds.push(isBinary ? "binary" :
		JSON.parse(data.toString()).type));
	await new Promise((r) => ws.once("open", r));
	ws.send(Buffer.from("printf 'x%.0s' 1 2 3\n"));
	const end = Date.now() + 20000;
	while (!kinds.includes("binary") && Date.now() < end)
		await new Promise((r) => setTimeout(r, 20));
	assert.equal(kinds[0], "ready");
	assert.ok(kinds.includes("binary"), JSON.stringify(kinds));
	ws.close();
});

test("resize reaches the PTY", async (t) => {
	if (skip) return t.skip(skip);
	const term = await open({ id: "resize", cols: 80, rows: 24 });
	await term.ready();
	term.ws.send(JSON.stringify({ type: "resize", cols: 123, rows: 45 }));
	term.type("stty size\n");
	await term.until(() => line("45 123").test(term.out), "45 123");
	await term.close();
});

test("a reconnect to the same id replays what the shell printed", async (t) => {
	if (skip) return t.skip(skip);
	let term = await open({ id: "replay" });
	await term.ready();
	term.type("echo marker-$((20+3))\n");
	await term.until(() => line("marker-23").test(term.out), "marker-23");
	await term.close();
	term = await open({ id: "replay" });
	await term.ready();
	await term.until(() => line("marker-23").test(term.out),
		"the replayed marker-23");
	const ready = term.events.find((e) => e.type === "ready");
	assert.equal(ready.id, "replay");
	await term.close();
});

test("the shell's exit comes through, then close 1000", async (t) => {
	if (skip) return t.skip(skip);
	const term = await open({ id: "exiting" });
	await term.ready();
	term.type("exit 7\n");
	const closed = await term.closed;
	assert.deepEqual(term.events.find((e) => e.type === "exit"),
		{ type: "exit", code: 7 });
	assert.equal(closed.code, 1000);
});

test("an unknown or impossible sandbox name is refused (404)", async (t) => {
	if (skip) return t.skip(skip);
	await refused({ name: "no-such-sandbox" }, 404, "not_found");
	await refused({ name: "Bad.Name" }, 404, "not_found");
});

test("the terminal of a sleeping sandbox wakes it", async (t) => {
	if (skip) return t.skip(skip);
	let r = await request("POST", `/api/v1/sandboxes/${NAME}/stop`,
		{ headers: bearer(tokSandbox) });
	assert.equal(r.status, 200, r.body);
	r = await request("GET", `/api/v1/sandboxes/${NAME}`,
		{ headers: bearer(tokSandbox) });
	assert.equal(JSON.parse(r.body).state, "sleeping", r.body);
	const term = await open({ id: "woken" });
	await term.ready();
	term.type("echo awake\n");
	await term.until(() => line("awake").test(term.out), "awake");
	r = await request("GET", `/api/v1/sandboxes/${NAME}`,
		{ headers: bearer(tokSandbox) });
	assert.equal(JSON.parse(r.body).state, "running", r.body);
	await term.close();
});

test("a reader that stops reading does not make pincerd buffer it all", async (t) => {
	if (skip) return t.skip(skip);
	const rss = () => {
		const pid = fs.readFileSync(path.join(gw.state, "pincerd.lock"),
			"utf8").trim();
		const m = fs.readFileSync(`/proc/${pid}/status`, "utf8")
			.match(/VmRSS:\s+(\d+) kB/);
		return Number(m[1]) * 1024;
	};
	const term = await open({ id: "flood" });
	await term.ready();
	const before = rss();
	const total = 32 << 20;
	term.ws.pause();
	// 32 MiB of 'Q' (octal 121: the typed command holds none).
	term.type(`head -c ${total} /dev/zero | tr '\\0' '\\121'; echo; echo done-$((1+1))\n`);
	await new Promise((r) => setTimeout(r, 3000));
	const grown = rss() - before;
	assert.ok(grown < 16 << 20, `pincerd grew by ${grown} bytes`);
	term.ws.resume();
	await term.until(() => line("done-2").test(term.out), "done-2", 60000);
	assert.equal(term.out.split("Q").length - 1, total);
	await term.close();
});

test("closed terminals leave nothing behind: no session, no hold", async (t) => {
	if (skip) return t.skip(skip);
	const metric = async (name) => {
		const text = (await get(`${gw.url}/metrics`, bearer(tokRead))).body;
		const l = text.split("\n").find((x) => x.startsWith(name + " "));
		return l ? Number(l.split(" ")[1]) : NaN;
	};
	let sessions, inUse;
	for (let i = 0; i < 100; i++) {
		sessions = await metric("pincer_ws_sessions");
		const r = await request("GET", `/api/v1/sandboxes/${NAME}`,
			{ headers: bearer(tokSandbox) });
		inUse = JSON.parse(r.body).in_use;
		if (sessions === 0 && inUse === 0) break;
		await new Promise((res) => setTimeout(res, 50));
	}
	assert.equal(sessions, 0);
	assert.equal(inUse, 0, "the sandbox is still held");
});

test("opening a terminal is in the audit log", async (t) => {
	if (skip) return t.skip(skip);
	const r = await get(`${gw.url}/api/v1/audit`,
		{ Cookie: `pincer_session=${cookie}` });
	assert.equal(r.status, 200, r.body);
	const entries = JSON.parse(r.body).entries;
	const term = entries.filter((e) => e.action === "sandbox.terminal");
	assert.ok(term.some((e) => e.actor === "alice" && e.target === NAME &&
		/id=first/.test(e.detail)), JSON.stringify(term));
	assert.ok(term.some((e) => e.actor === "local:owner" && /id=local/.test(e.detail)),
		JSON.stringify(term));
});

test("a quiet terminal outlives http.idle_timeout_s; a peer that never answers a ping does not", async (t) => {
	if (skip) return t.skip(skip);
	const gw2 = await startPincer("sandbox-terminal-idle",
		{ http: { idle_timeout_s: 1 } });
	try {
		const sock = path.join(gw2.state, "pincerd.sock");
		const r = await request("POST", "/api/v1/sandboxes",
			{ socketPath: sock, body: JSON.stringify({ name: "quiet" }) });
		assert.ok(r.status === 201 || r.status === 200, r.body);
		const url = (id) => `ws+unix://${sock}:/api/v1/sandboxes/quiet/` +
			`terminal?id=${id}&cols=80&rows=24`;
		const term = await open({ headers: {}, url: url("quiet") });
		await term.ready();
		await new Promise((res) => setTimeout(res, 3500));
		term.type("echo still-$((1+1))\n");
		await term.until(() => line("still-2").test(term.out), "still-2");
		await term.close();
		const deaf = await open({ headers: {}, url: url("deaf"),
			autoPong: false });
		const start = Date.now();
		await Promise.race([deaf.closed, new Promise((res, rej) =>
			setTimeout(() => rej(new Error("still open")), 10000))]);
		assert.ok(Date.now() - start < 5000);
	} finally {
		await gw2.stop();
	}
});
