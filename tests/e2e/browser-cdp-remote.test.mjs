// SPDX-License-Identifier: MIT
// The remote backend with a hosted browser's token (browser.remote_token,
// a sealed secret): a fake hosted-browser service in front of a real
// Chromium takes the token in the Authorization header, or in ?token= as
// browserless does, and refuses anything else. A sandbox (its gateway.sock)
// browses through it; without the secret pincerd says which is missing;
// the token reaches no log.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import WebSocket, { WebSocketServer } from "ws";
import { startPincer } from "./lib/daemon.mjs";
import { secret } from "./lib/llm.mjs";

const bin = process.env.PINCER_BIN;
const TOKEN = "bl-tok-" + Math.random().toString(36).slice(2) + "+/=";
let chrome, chromeDir, direct, skip = false;

function cli(conf, state, args, input) {
	return execFileSync(bin, [...args, "--config", conf, "--state", state],
		{ input, stdio: ["pipe", "pipe", "pipe"] }).toString().trim();
}

// The service: checks the token, then relays to the real Chromium.
async function service(mode) {
	const seen = [];
	const ok = (req) => {
		const u = new URL(req.url, "http://x");
		seen.push(req.headers.authorization ? "header" :
			u.searchParams.has("token") ? "query" : "none");
		return mode === "header" ?
			req.headers.authorization === `Bearer ${TOKEN}` :
			u.searchParams.get("token") === TOKEN;
	};
	const wss = new WebSocketServer({ noServer: true });
	const srv = http.createServer((req, res) => {
		if (!ok(req)) { res.writeHead(401); res.end("no token"); return; }
		const port = srv.address().port;
		res.setHeader("Content-Type", "application/json");
		res.end(JSON.stringify({ Browser: "Hosted/1",
			webSocketDebuggerUrl: `ws://127.0.0.1:${port}/devtools/browser/hosted` }));
	});
	srv.on("upgrade", (req, sock, head) => {
		if (!ok(req)) { sock.end("HTTP/1.1 401 Unauthorized\r\n\r\n"); return; }
		const u = new URL(req.url, "http://x");
		const up = new WebSocket(u.pathname.startsWith("/devtools/page/") ?
			direct.replace(/\/devtools\/browser\/.*/, u.pathname) : direct,
			{ maxPayload: 256 << 20 });
		wss.handleUpgrade(req, sock, head, (ws) => {
			const held = [];
			up.on("open", () => { for (const m of held) up.send(m); held.length = 0; });
			ws.on("message", (m) => up.readyState === 1 ? up.send(m.toString()) :
				held.push(m.toString()));
			up.on("message", (m) => ws.send(m.toString()));
			ws.on("close", () => up.close());
			up.on("close", () => ws.close());
		});
	});
	await new Promise((r) => srv.listen(0, "127.0.0.1", r));
	return { srv, seen, port: srv.address().port };
}

// GET PATH on the sandbox's gateway.sock (its 127.0.0.1:9222).
function inside(gw, name, p) {
	return new Promise((resolve, reject) => {
		http.get({ socketPath: path.join(gw.state, "sandboxes", name, "run",
			"gateway.sock"), path: p, headers: { Host: "127.0.0.1:9222" } },
		(res) => {
			let b = "";
			res.on("data", (d) => { b += d; });
			res.on("end", () => resolve({ status: res.statusCode, body: b }));
		}).on("error", reject);
	});
}

async function gateway(name, url, mode, withSecret) {
	let tok;
	const gw = await startPincer(name, { auth: { argon2_memory_kib: 1024,
		argon2_iterations: 1 }, browser: { remote_url: url,
		remote_token: "hosted", remote_token_in: mode } }, {
		beforeStart: ({ conf, state }) => {
			cli(conf, state, ["user", "add", "alice", "--role", "owner",
				"--password-stdin"], "a long passphrase for alice\n");
			tok = cli(conf, state, ["token", "create", "--user", "alice",
				"--scope", "sandbox", "--name", "t"]);
			secret(tok);
			if (withSecret)
				cli(conf, state, ["secret", "set", "hosted"], TOKEN);
		} });
	const r = await fetch(gw.url + "/api/v1/sandboxes", { method: "POST",
		headers: { Authorization: `Bearer ${tok}`,
		"Content-Type": "application/json" },
		body: JSON.stringify({ name: "a" }) });
	if (r.status !== 201) skip = `no sandboxes here (${r.status})`;
	return gw;
}

before(async () => {
	if (!fs.existsSync("/usr/bin/chromium")) { skip = "no Chromium"; return; }
	secret(TOKEN);
	chromeDir = fs.mkdtempSync(path.join(os.tmpdir(), "pincer-hosted-"));
	const args = ["--headless", "--remote-debugging-port=0",
		"--remote-debugging-address=127.0.0.1", `--user-data-dir=${chromeDir}`,
		"--no-first-run", "about:blank"];
	if (process.getuid() === 0) args.unshift("--no-sandbox");
	chrome = spawn("/usr/bin/chromium", args, { stdio: "ignore",
		detached: true });
	chrome.exited = new Promise((r) => chrome.on("exit", r));
	const file = path.join(chromeDir, "DevToolsActivePort");
	for (let i = 0; i < 200 && !direct; i++) {
		await new Promise((r) => setTimeout(r, 50));
		if (fs.existsSync(file)) {
			const [port, p] = fs.readFileSync(file, "utf8").split("\n");
			if (p) direct = `ws://127.0.0.1:${port}${p}`;
		}
	}
	assert.ok(direct, "Chromium started");
});

after(async () => {
	if (chrome) {
		// Chromium's whole group: its helpers write in the profile too.
		try { process.kill(-chrome.pid, "SIGKILL"); } catch { /* gone */ }
		await chrome.exited;
	}
	if (chromeDir) fs.rmSync(chromeDir, { recursive: true, force: true,
		maxRetries: 10, retryDelay: 100 });
});

for (const mode of ["header", "query"]) {
	test(`a hosted browser, the token in the ${mode}`, async (t) => {
		if (skip) return t.skip(skip);
		const svc = await service(mode);
		const base = mode === "header" ?
			`http://127.0.0.1:${svc.port}` :
			`ws://127.0.0.1:${svc.port}/devtools/browser/hosted`;
		const gw = await gateway(`browser-remote-${mode}`, base, mode, true);
		try {
			if (skip) return t.skip(skip);
			const v = await inside(gw, "a", "/json/version");
			assert.equal(v.status, 200, v.body);
			assert.match(JSON.parse(v.body).webSocketDebuggerUrl,
			    /^ws:\/\/127\.0\.0\.1:9222\/devtools\/browser\//);
			const made = await inside(gw, "a", "/json/new?about:blank");
			assert.equal(made.status, 200, made.body);
			const list = JSON.parse((await inside(gw, "a", "/json/list")).body);
			assert.ok(list.some((x) => x.id === JSON.parse(made.body).id));
			assert.ok(svc.seen.length > 0);
			assert.ok(svc.seen.every((s) => s === mode),
			    `the token went only by ${mode}: ${svc.seen}`);
			assert.ok(!gw.log().includes(TOKEN), "the token is in no log");
		} finally {
			assert.equal(await gw.stop(), 0);
			svc.srv.close();
		}
	});
}

test("the secret not set: the sandbox is told which", async (t) => {
	if (skip) return t.skip(skip);
	const svc = await service("header");
	const gw = await gateway("browser-remote-nosecret",
		`http://127.0.0.1:${svc.port}`, "header", false);
	try {
		if (skip) return t.skip(skip);
		const v = await inside(gw, "a", "/json/version");
		assert.equal(v.status, 503);
		assert.match(v.body, /the secret hosted \(browser\.remote_token\) is not set/);
		assert.equal(svc.seen.length, 0, "nothing was sent without it");
	} finally {
		assert.equal(await gw.stop(), 0);
		svc.srv.close();
	}
});
