// SPDX-License-Identifier: MIT
// The CDP bridge (issue 8): real puppeteer-core and playwright-core run in
// a real sandbox's network namespace, where 127.0.0.1:9222 is pincer-init's
// forwarder to pincerd, and drive Debian's Chromium through the bridge: a
// form typed, clicked and read, screenshots, cookies, contexts. A second
// sandbox tries every way into the first's tabs and is refused; 10 MiB
// messages pass intact both ways; a page connection works on its own page
// only; Chromium killed mid-session ends the session, and the next works.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { startPincer } from "./lib/daemon.mjs";
import { secret } from "./lib/llm.mjs";

const bin = process.env.PINCER_BIN;
const here = path.dirname(fileURLToPath(import.meta.url));
const client = path.join(here, "lib", "cdp-client.mjs");
const PW = "a long passphrase for alice";
let gw, tok, tokBrowser, site, siteUrl, skip = false;
const marker = {};	// sandbox name → host pid of its marker process

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

// The host pid of a process whose command line is exactly argv.
function hostPid(argv) {
	const want = argv.join("\0") + "\0";
	for (const d of fs.readdirSync("/proc")) {
		if (!/^\d+$/.test(d)) continue;
		try {
			if (fs.readFileSync(`/proc/${d}/cmdline`, "latin1") === want)
				return Number(d);
		} catch { /* gone */ }
	}
	return 0;
}

// scenario in NAME's network namespace; its JSON answer. onLine sees
// each line of output as it comes.
function run(name, scenario, arg = "", onLine = () => {}, env = {}) {
	let p;
	const done = new Promise((resolve, reject) => {
		const argv = [process.execPath, client, scenario, arg];
		p = spawn(name ? "nsenter" : argv[0], name ? ["-t",
			String(marker[name]), "-n", "--", ...argv] : argv.slice(1),
			{ stdio: ["pipe", "pipe", "pipe"],
			env: { ...process.env, ...env } });
		if (!env.HOLD) p.stdin.end();
		let out = "", err = "";
		const timer = setTimeout(() => p.kill("SIGKILL"), 90000);
		p.stdout.on("data", (d) => {
			out += d;
			for (const l of d.toString().split("\n")) if (l) onLine(l);
		});
		p.stderr.on("data", (d) => { err += d; });
		p.on("exit", () => {
			clearTimeout(timer);
			const last = out.trim().split("\n").pop();
			try { resolve(JSON.parse(last)); }
			catch { reject(new Error(`${scenario}: ${out}\n${err}`)); }
		});
	});
	return env.HOLD ? { done, release: () => p.stdin.end() } : done;
}

// curl in NAME: the body of a request to its 127.0.0.1:9222.
async function inside(name, path) {
	const r = await api("POST", `/${name}/exec`, { cmd: ["curl", "-s",
		`http://127.0.0.1:9222${path}`] });
	return JSON.parse(r.body.stdout);
}

before(async () => {
	const why = process.getuid() !== 0 ? "not root (nsenter -n)" :
		!fs.existsSync("/usr/bin/chromium") ? "no /usr/bin/chromium" : "";
	if (why) { skip = why; return; }
	site = http.createServer((req, res) => {
		res.setHeader("Content-Type", "text/html");
		res.end(`<!doctype html><title>form</title>
<input id=name><button id=go onclick="document.getElementById('out')
.textContent = 'hello ' + document.getElementById('name').value">go</button>
<div id=out></div>`);
	});
	await new Promise((r) => site.listen(0, "127.0.0.1", r));
	siteUrl = `http://127.0.0.1:${site.address().port}`;
	// A sandbox's pages go through its egress policy: the site is let.
	gw = await startPincer("browser-cdp", { auth: { argon2_memory_kib:
		1024, argon2_iterations: 1 }, egress: { policy: "site",
		policies: { site: { rules: [{ cidr: "127.0.0.1/32",
		port: site.address().port, action: "allow" }] } } } }, {
		beforeStart: ({ conf, state }) => {
			cli(conf, state, ["user", "add", "alice", "--role", "owner",
				"--password-stdin"], PW + "\n");
			tok = cli(conf, state, ["token", "create", "--user", "alice",
				"--scope", "sandbox", "--name", "t"]);
			tokBrowser = cli(conf, state, ["token", "create", "--user",
				"alice", "--scope", "browser", "--name", "b"]);
			secret(tok);
			secret(tokBrowser);
		} });
	for (const [name, n] of [["a", "86401"], ["b", "86402"]]) {
		const c = await api("POST", "", { name });
		if (c.status !== 201) { skip = `cannot make sandboxes: ${c.status}`; return; }
		await api("POST", `/${name}/processes`, { id: "m",
			cmd: ["sleep", n] });
		for (let i = 0; i < 100 && !marker[name]; i++) {
			marker[name] = hostPid(["sleep", n]);
			await new Promise((r) => setTimeout(r, 50));
		}
		assert.ok(marker[name], `sandbox ${name}'s marker process`);
	}
});

after(async () => {
	if (gw) assert.equal(await gw.stop(), 0, "pincerd exits 0");
	site?.close();
});

let pageOfA;

let holder;

test("puppeteer-core in sandbox a: form, screenshot, cookies", async (t) => {
	if (skip) return t.skip(skip);
	let first;
	const got = new Promise((resolve) => { first = resolve; });
	holder = run("a", "puppeteer", siteUrl, (l) => first(l),
		{ HOLD: "1" });
	const r = JSON.parse(await got);
	assert.ok(r.ok, r.error);
	assert.match(r.version, /Chrome\/\d+/);
	assert.equal(r.out, "hello pincer");
	assert.ok(r.png > 1000, `a PNG of ${r.png} bytes`);
	assert.deepEqual(r.cookies, ["who"]);
	assert.ok(r.pages.includes(siteUrl + "/form"), JSON.stringify(r.pages));
	assert.match(r.file, /only http\(s\), about: and data: URLs/);
	pageOfA = r.target;
});

test("sandbox b cannot see or touch a's tabs, cookies or browser",
    async (t) => {
	if (skip) return t.skip(skip);
	const r = await run("b", "hostile", pageOfA);
	assert.ok(r.ok, r.error);
	assert.ok(!r.listed.includes(pageOfA), "/json/list shows a's page");
	assert.ok(!r.targets.includes(pageOfA), "getTargets shows a's page");
	assert.match(r.attach, /No target with given id/);
	assert.match(r.close, /No target with given id/);
	assert.equal(r.activate, 404);
	assert.equal(r.jsonClose, 404);
	assert.deepEqual(r.contexts, { browserContextIds: [] });
	assert.match(r.system, /not allowed/);
	assert.match(r.crash, /not allowed/);
	assert.deepEqual(r.cookies, [], "b reads no cookie of a");
	assert.match(r.foreignCtx, /Failed to find browser context/);
	assert.match(r.fileUrl, /only http\(s\)/);
	assert.match(r.badSession, /Session with given id not found/);
	assert.match(r.badJson, /valid JSON/);
	assert.ok(!r.sessionTargets.includes(pageOfA));
	assert.match(r.sessionAttach, /No target with given id/);
	assert.match(r.sessionNavigate, /only http\(s\)/);
	assert.match(r.sessionUpload, /not allowed/);
	assert.match(r.sessionClose, /not allowed/);
	assert.deepEqual(r.sessionCookies, []);
	assert.equal(r.eval, 42, "b's own page works");
	assert.equal(r.page, 404, "/devtools/page/{a's id} from b");
	assert.deepEqual(r.browserClose, {}, "Browser.close is answered");
	assert.equal(r.closedWith, 1000);
	// a's page outlived b's Browser.close.
	const list = await inside("a", "/json/list");
	assert.ok(list.some((x) => x.id === pageOfA), "a's page is still there");
	// a's client goes: the tabs it opened close with it.
	holder.release();
	assert.ok((await holder.done).ok);
	let left = true;
	for (let i = 0; i < 50 && left; i++) {
		left = (await inside("a", "/json/list")).some((x) =>
			x.id === pageOfA);
		if (left) await new Promise((r) => setTimeout(r, 100));
	}
	assert.ok(!left, "a's page closed when its connection dropped");
});

test("playwright-core in sandbox a: default context, a new context",
    async (t) => {
	if (skip) return t.skip(skip);
	const r = await run("a", "playwright", siteUrl);
	assert.ok(r.ok, r.error);
	assert.equal(r.out, "hello playwright");
	assert.ok(r.png > 1000);
	assert.deepEqual(r.cookies.sort(), ["pw", "who"],
	    "the sandbox's context keeps puppeteer's cookie");
	assert.deepEqual(r.other, [], "a new context starts empty");
});

test("10 MiB messages pass intact both ways; a 10 MB screenshot too",
    async (t) => {
	if (skip) return t.skip(skip);
	const r = await run("b", "large", "10");
	assert.ok(r.ok, r.error);
	assert.equal(r.back, 10 << 20);
	assert.ok(r.intact);
	assert.equal(r.sent, 10 << 20);
	assert.ok(r.shotMessage > 10e6, `a screenshot message of ${r.shotMessage} B`);
	assert.ok(r.pngValid, `the ${r.png}-byte PNG is whole (every CRC)`);
});

test("a page connection: its own page only", async (t) => {
	if (skip) return t.skip(skip);
	const r = await run("b", "page", pageOfA);
	assert.ok(r.ok, r.error);
	assert.equal(r.eval, 2);
	assert.match(r.attach, /No target with given id/);
	assert.ok(r.list.includes(r.made));
	assert.equal(r.closed, 200);
});

test("an owner's tools through /cdp/ with a browser-scope token",
    async (t) => {
	if (skip) return t.skip(skip);
	// A tab of sandbox a's, which the owner's context must not show.
	const mine = await api("POST", "/a/exec", { cmd: ["curl", "-s", "-X",
		"PUT", "http://127.0.0.1:9222/json/new?data:text/plain,sandbox-a-tab"] });
	assert.match(mine.body.stdout, /sandbox-a-tab/);
	const r = await run("", "outside", gw.url, () => {},
		{ CDP_TOKEN: tokBrowser, SITE: siteUrl });
	assert.ok(r.ok, r.error);
	assert.match(r.ws, /^ws:\/\/127\.0\.0\.1:\d+\/cdp\/devtools\/browser\//);
	assert.equal(r.out, "hello owner");
	assert.ok(r.png > 1000);
	assert.ok(r.pages.includes(siteUrl + "/form"), JSON.stringify(r.pages));
	assert.ok(!r.pages.some((u) => u.includes("sandbox-a-tab")),
	    "the owner's context does not show a sandbox's tab");
	assert.equal(r.out2, "hello pw-owner");
	const h = (tk) => tk ? { Authorization: `Bearer ${tk}` } : {};
	const st = async (p, tk) => (await fetch(gw.url + p,
		{ headers: h(tk) })).status;
	assert.equal(await st("/cdp/json/version"), 401, "no token: 401");
	assert.equal(await st("/cdp/json/version", tok), 403,
	    "a token without the browser scope: 403");
	assert.equal(await st(`/cdp/json/version?access_token=${tokBrowser}`),
	    401, "a token in the URL is not taken");
	assert.equal(await st("/json/version", tokBrowser), 404,
	    "the sandbox's paths are not on the public port");
	const ws = await new Promise((resolve) => {
		const w = new WebSocket(gw.url.replace("http", "ws") +
			"/cdp/devtools/browser/x");
		w.on("open", () => { resolve("open"); w.close(); });
		w.on("unexpected-response", (q, res) => resolve(res.statusCode));
		w.on("error", () => resolve("error"));
	});
	assert.equal(ws, 401, "a WebSocket without a token: 401");
});

test("Chromium killed mid-session: the session ends, the next works",
    async (t) => {
	if (skip) return t.skip(skip);
	let killed = false;
	const r = await run("a", "killed", "", (line) => {
		if (line !== "READY" || killed) return;
		killed = true;
		execFileSync("pkill", ["-KILL", "-f", "--",
			`--user-data-dir=${gw.state}/browser`]);
	});
	assert.ok(r.ok, r.error);
	assert.equal(r.how, "disconnected");
	const again = await run("a", "puppeteer", siteUrl);
	assert.ok(again.ok, again.error);
	assert.equal(again.out, "hello pincer");
	assert.match(gw.log(), /msg="browser bridge disconnected"/);
});
