// SPDX-License-Identifier: MIT
// The WebSocket path end to end: the front door peeks, libwebsockets takes
// the socket, /api/v1/ws-echo answers. Client: the `ws` package.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { startPincer, metric } from "./lib/daemon.mjs";

let gw;
before(async () => {
	gw = await startPincer("ws-echo", { ws: { max_message_bytes: 4096 },
	    metrics: { public: true } });
});
let stopped = false;
after(async () => {
	if (!stopped) await gw.stop();
});

function open(path = "/api/v1/ws-echo", opts = {}) {
	const ws = new WebSocket(gw.url.replace("http", "ws") + path, opts);
	return new Promise((resolve, reject) => {
		ws.once("open", () => resolve(ws));
		ws.once("unexpected-response", (req, res) =>
			reject(Object.assign(new Error("refused"), { status: res.statusCode })));
		ws.once("error", reject);
	});
}

function next(ws) {
	return new Promise((resolve) => ws.once("message",
		(data, isBinary) => resolve({ data, isBinary })));
}

test("text and binary messages come back as sent", async () => {
	const ws = await open();
	ws.send("hello pincer");
	let m = await next(ws);
	assert.equal(m.isBinary, false);
	assert.equal(m.data.toString(), "hello pincer");
	const bin = Buffer.from([0, 1, 2, 255, 254, 0]);
	ws.send(bin);
	m = await next(ws);
	assert.equal(m.isBinary, true);
	assert.deepEqual(Buffer.from(m.data), bin);
	ws.close();
});

test("a fragmented message is echoed whole", async () => {
	const ws = await open();
	ws.send("part one, ", { fin: false });
	ws.send("part two", { fin: true });
	const m = await next(ws);
	assert.equal(m.data.toString(), "part one, part two");
	ws.close();
});

test("a message over ws.max_message_bytes closes with 1009", async () => {
	const ws = await open();
	const closed = new Promise((r) => ws.once("close", (code) => r(code)));
	ws.send("x".repeat(5000));
	assert.equal(await closed, 1009);
});

test("an upgrade on a path that is not a WebSocket route is refused", async () => {
	await assert.rejects(open("/api/v1/nope"), (e) => e.status === 404);
	await assert.rejects(open("/healthz"), (e) => e.status === 405 || e.status === 200);
});

test("many sessions at once, counted in /metrics", async () => {
	const base = await metric(gw.url, "pincer_http_open_connections");
	const all = await Promise.all(Array.from({ length: 20 }, () => open()));
	assert.equal(await metric(gw.url, "pincer_http_open_connections"), base + 20);
	assert.equal(await metric(gw.url, "pincer_ws_sessions"), 20);
	const replies = all.map((ws, i) => { ws.send(`n${i}`); return next(ws); });
	const got = (await Promise.all(replies)).map((m) => m.data.toString());
	assert.deepEqual(got, all.map((_, i) => `n${i}`));
	await Promise.all(all.map((ws) => new Promise((r) => { ws.once("close", r); ws.close(); })));
	for (let i = 0; i < 100 && (await metric(gw.url, "pincer_ws_sessions") !== 0 ||
	    await metric(gw.url, "pincer_http_open_connections") !== base); i++)
		await new Promise((r) => setTimeout(r, 20));
	assert.equal(await metric(gw.url, "pincer_ws_sessions"), 0);
	// The door counted each socket in, and libwebsockets out.
	assert.equal(await metric(gw.url, "pincer_http_open_connections"), base);
});

test("SIGTERM says goodbye (1001) to open sessions and exits 0", async () => {
	const ws = await open();
	const closed = new Promise((r) => ws.once("close", (code) => r(code)));
	stopped = true;
	assert.equal(await gw.stop(), 0, "pincerd exits 0");
	assert.equal(await closed, 1001);
});
