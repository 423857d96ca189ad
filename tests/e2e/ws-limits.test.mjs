// SPDX-License-Identifier: MIT
// Limits on the WebSocket path: idle timeout, the per-IP rate limit on
// upgrades, and the connection limit shared with HTTP.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { startPincer } from "./lib/daemon.mjs";

const running = [];
after(async () => { await Promise.all(running.map((gw) => gw.stop())); });

async function pincer(name, config) {
	const gw = await startPincer(name, config);
	running.push(gw);
	return gw;
}

function open(gw) {
	const ws = new WebSocket(gw.url.replace("http", "ws") + "/api/v1/ws-echo");
	return new Promise((resolve, reject) => {
		ws.once("open", () => resolve(ws));
		ws.once("unexpected-response", (req, res) =>
			reject(Object.assign(new Error(`refused ${res.statusCode}`),
			    { status: res.statusCode })));
		ws.once("error", reject);
	});
}

test("a silent session is closed after http.idle_timeout_s", async () => {
	const gw = await pincer("ws-idle", { http: { idle_timeout_s: 1 } });
	const ws = await open(gw);
	const t0 = Date.now();
	await new Promise((r) => ws.once("close", r));
	const took = Date.now() - t0;
	assert.ok(took >= 900 && took < 4000, `closed after ${took} ms`);
});

test("a talking session outlives the idle timeout", async () => {
	const gw = await pincer("ws-talk", { http: { idle_timeout_s: 1 } });
	const ws = await open(gw);
	for (let i = 0; i < 4; i++) {
		await new Promise((r) => setTimeout(r, 500));
		ws.send(`ping ${i}`);
		await new Promise((r) => ws.once("message", r));
	}
	assert.equal(ws.readyState, WebSocket.OPEN);
	ws.close();
});

test("upgrades count against the per-IP rate limit (429)", async () => {
	const gw = await pincer("ws-rate",
	    { http: { rate_limit_rps: 1, rate_limit_burst: 3 } });
	const results = [];
	for (let i = 0; i < 5; i++)
		results.push(await open(gw).then((ws) => { ws.close(); return 101; },
		    (e) => e.status));
	// The burst is 3 and startPincer's /readyz took one token.
	assert.deepEqual(results, [101, 101, 429, 429, 429]);
});

test("the connection limit covers WebSocket sessions (503)", async () => {
	const gw = await pincer("ws-conns", { http: { max_connections: 3 } });
	const open3 = [await open(gw), await open(gw), await open(gw)];
	await assert.rejects(open(gw), (e) => e.status === 503);
	open3.forEach((ws) => ws.close());
});
