// SPDX-License-Identifier: MIT
// pincer-init's terminals (docs/sandbox-api.md "Terminal"): a shell on a
// PTY behind a WebSocket on the control socket, kept across clients.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import WebSocket from "ws";
import { startInit, countFds, until, sleep } from "./lib/sandbox-init.mjs";

let init;
before(async () => { init = await startInit("terminal"); });
after(async () => { await init.stop(); });

// A client: text frames parsed into ctl, binary frames appended to out.
function attach(query) {
	const ws = new WebSocket(`ws+unix://${init.sock}:/terminal?${query}`);
	const t = { ws, out: "", ctl: [], first: null, closed: null };
	t.closed = new Promise((resolve) => ws.on("close",
	    (code, reason) => resolve({ code, reason: reason.toString() })));
	ws.on("message", (data, binary) => {
		if (t.first === null)
			t.first = binary ? "binary" : "text";
		if (binary)
			t.out += data.toString("utf8");
		else
			t.ctl.push(JSON.parse(data.toString("utf8")));
	});
	t.opened = new Promise((resolve, reject) => {
		ws.once("open", resolve);
		ws.once("unexpected-response", (req, res) =>
			reject(Object.assign(new Error(`refused ${res.statusCode}`),
			    { status: res.statusCode })));
		ws.once("error", reject);
	});
	t.ready = async () => {
		await t.opened;
		assert.ok(await until(() => t.ctl.length > 0), "no ready frame");
		return t.ctl[0];
	};
	t.wait = async (re, ms = 5000) => {
		const ok = await until(() => re.test(t.out), ms);
		assert.ok(ok, `${re} not in output, which ends:\n` +
		    JSON.stringify(t.out.slice(-2000)));
	};
	t.ctlOf = async (type, ms = 5000) =>
		until(() => t.ctl.find((m) => m.type === type), ms);
	return t;
}

// Waits for the shell's prompt to settle, then types.
async function type(t, line) {
	t.ws.send(Buffer.from(line));
}

test("ready first, then keys in and output out", async () => {
	const t = attach("id=a&cols=80&rows=24");
	const ready = await t.ready();
	assert.equal(t.first, "text");
	assert.equal(ready.type, "ready");
	assert.equal(ready.id, "a");
	assert.ok(Number.isInteger(ready.pid) && ready.pid > 1);
	await type(t, "echo hi-$((40+2))\r");
	await t.wait(/[\r\n]hi-42\r?\n/);
	// Text that is not JSON control is keys as well.
	t.ws.send("echo text-$((1+1))\r");
	await t.wait(/[\r\n]text-2\r?\n/);
	t.ws.close();
	await t.closed;
});

test("resize sets the PTY's size (stty size)", async () => {
	const t = attach("id=rs&cols=80&rows=24");
	await t.ready();
	await type(t, "stty size\r");
	await t.wait(/[\r\n]24 80\r?\n/);
	t.ws.send(JSON.stringify({ type: "resize", cols: 132, rows: 50 }));
	await type(t, "stty size\r");
	await t.wait(/[\r\n]50 132\r?\n/);
	// Out of range: ignored, the size stays.
	t.ws.send(JSON.stringify({ type: "resize", cols: 0, rows: 99999 }));
	await type(t, "echo $(stty size)-again\r");
	await t.wait(/[\r\n]50 132-again\r?\n/);
	t.ws.close();
	await t.closed;
});

test("a message in fragments is put together (RFC 6455 §5.4)", async () => {
	const t = attach("id=frag");
	await t.ready();
	t.ws.send("echo fr", { fin: false, binary: false });
	t.ws.send("ag-$((3*3))", { fin: false, binary: false });
	t.ws.send("\r", { fin: true, binary: false });
	await t.wait(/[\r\n]frag-9\r?\n/);
	t.ws.close();
	await t.closed;
});

test("ping gets a pong", async () => {
	const t = attach("id=ping");
	await t.ready();
	const pong = new Promise((r) => t.ws.once("pong", (d) => r(d.toString())));
	t.ws.ping("abc");
	assert.equal(await pong, "abc");
	t.ws.close();
	await t.closed;
});

test("the shell outlives its client; a re-attach replays output", async () => {
	const t = attach("id=re");
	const r1 = await t.ready();
	await type(t, "echo marker-$((6*7))\r");
	await t.wait(/[\r\n]marker-42\r?\n/);
	t.ws.close();
	assert.equal((await t.closed).code, 1005);
	const list = await until(async () => {
		const r = await init.request("GET", "/terminals");
		const e = r.json.terminals.find((x) => x.id === "re");
		return e && !e.attached ? e : null;
	});
	assert.ok(list, "listed, not attached");
	assert.equal(list.pid, r1.pid);
	const t2 = attach("id=re");
	const r2 = await t2.ready();
	assert.equal(r2.pid, r1.pid);
	await t2.wait(/[\r\n]marker-42\r?\n/);
	t2.ws.close();
	await t2.closed;
});

test("a second client takes over; the first is closed 1000", async () => {
	const t1 = attach("id=take");
	const r1 = await t1.ready();
	const t2 = attach("id=take");
	const r2 = await t2.ready();
	assert.equal(r2.pid, r1.pid);
	const c = await t1.closed;
	assert.equal(c.code, 1000);
	assert.equal(c.reason, "attached elsewhere");
	await type(t2, "echo still-$((2*5))\r");
	await t2.wait(/[\r\n]still-10\r?\n/);
	t2.ws.close();
	await t2.closed;
});

test("two terminals, two shells", async () => {
	const a = attach("id=two-a");
	const b = attach("id=two-b");
	const [ra, rb] = [await a.ready(), await b.ready()];
	assert.notEqual(ra.pid, rb.pid);
	const r = await init.request("GET", "/terminals");
	assert.equal(r.status, 200);
	const ids = r.json.terminals.map((x) => x.id);
	assert.ok(ids.includes("two-a") && ids.includes("two-b"));
	const ea = r.json.terminals.find((x) => x.id === "two-a");
	assert.equal(ea.attached, true);
	assert.equal(ea.cols, 80);
	assert.equal(ea.rows, 24);
	const h = await init.request("GET", "/health");
	assert.ok(h.json.terminals >= 2);
	a.ws.close();
	b.ws.close();
	await Promise.all([a.closed, b.closed]);
});

test("exit: the exit frame, then close 1000; the id is free again",
    async () => {
	const t = attach("id=ex");
	const r1 = await t.ready();
	await type(t, "exit 3\r");
	const ex = await t.ctlOf("exit");
	assert.deepEqual(ex, { type: "exit", code: 3 });
	assert.equal((await t.closed).code, 1000);
	const r = await init.request("GET", "/terminals/ex");
	assert.equal(r.status, 404);
	const t2 = attach("id=ex");
	const r2 = await t2.ready();
	assert.notEqual(r2.pid, r1.pid);
	await type(t2, "exit\r");
	assert.deepEqual(await t2.ctlOf("exit"), { type: "exit", code: 0 });
	assert.equal((await t2.closed).code, 1000);
});

test("DELETE /terminals/{id} ends the shell (SIGHUP)", async () => {
	const t = attach("id=del");
	const ready = await t.ready();
	const r = await init.request("DELETE", "/terminals/del");
	assert.equal(r.status, 200);
	assert.equal(r.json.id, "del");
	assert.equal(r.json.pid, ready.pid);
	assert.equal(r.json.status, "exited");
	assert.equal(r.json.exit_code, 129);
	assert.equal((await t.ctlOf("exit")).code, 129);
	assert.equal((await t.closed).code, 1000);
	assert.throws(() => process.kill(ready.pid, 0));
	const l = await init.request("GET", "/terminals");
	assert.ok(!l.json.terminals.some((x) => x.id === "del"));
	assert.equal((await init.request("DELETE", "/terminals/del")).status,
	    404);
});

test("DELETE of a shell that ignores SIGHUP: SIGKILL after 2 s",
    async () => {
	const t = attach("id=stubborn");
	await t.ready();
	await type(t, "trap '' HUP; echo trapped\r");
	await t.wait(/[\r\n]trapped\r?\n/);
	const t0 = Date.now();
	const r = await init.request("DELETE", "/terminals/stubborn");
	const took = Date.now() - t0;
	assert.equal(r.status, 200);
	assert.equal(r.json.exit_code, 137);
	assert.equal(r.json.signal, 9);
	assert.ok(took >= 1800 && took < 5000, `took ${took} ms`);
	await t.closed;
});

test("an unmasked client frame gets close 1002 (RFC 6455 §5.1)",
    async () => {
	const t = attach("id=unmasked");
	await t.ready();
	t.ws.on("error", () => {});
	// FIN + binary, not masked, one byte.
	t.ws._socket.write(Buffer.from([0x82, 0x01, 0x41]));
	assert.equal((await t.closed).code, 1002);
	// The shell is still there.
	const r = await init.request("GET", "/terminals/unmasked");
	assert.equal(r.status, 200);
});

test("a frame over 1 MiB gets close 1009", async () => {
	const t = attach("id=big");
	await t.ready();
	t.ws.on("error", () => {});
	t.ws.send(Buffer.alloc(1024 * 1024 + 1, 0x20));
	assert.equal((await t.closed).code, 1009);
});

test("a message over 1 MiB in fragments gets close 1009", async () => {
	const t = attach("id=bigfrag");
	await t.ready();
	t.ws.on("error", () => {});
	const half = Buffer.alloc(512 * 1024 + 1, 0x20);
	t.ws.send(half, { fin: false });
	t.ws.send(half, { fin: true });
	assert.equal((await t.closed).code, 1009);
});

test("text that is not UTF-8 gets close 1007 (§8.1)", async () => {
	const t = attach("id=utf8");
	await t.ready();
	t.ws.on("error", () => {});
	t.ws.send(Buffer.from([0x65, 0xff, 0x0d]), { binary: false });
	assert.equal((await t.closed).code, 1007);
});

test("a continuation with no message gets close 1002 (§5.4)", async () => {
	const t = attach("id=cont");
	await t.ready();
	t.ws.on("error", () => {});
	// FIN + continuation, masked with a zero key, one byte.
	t.ws._socket.write(Buffer.from([0x80, 0x81, 0, 0, 0, 0, 0x41]));
	assert.equal((await t.closed).code, 1002);
});

test("bad requests are answered before the upgrade", async () => {
	await assert.rejects(attach("id=no%20spaces").opened, { status: 400 });
	await assert.rejects(attach("id=x&cols=0").opened, { status: 400 });
	await assert.rejects(attach("id=x&rows=abc").opened, { status: 400 });
	const r = await init.request("GET", "/terminal?id=plain");
	assert.equal(r.status, 400);
	assert.equal((await init.request("GET", "/terminals/nope")).status,
	    404);
	// The refused upgrade left no shell behind.
	const l = await init.request("GET", "/terminals");
	assert.ok(!l.json.terminals.some((x) => x.id === "plain"));
});

test("no id: one is made up", async () => {
	const t = attach("cols=100&rows=30");
	const r = await t.ready();
	assert.match(r.id, /^t\d+$/);
	assert.equal(r.cols, 100);
	t.ws.close();
	await t.closed;
	assert.equal((await init.request("DELETE", `/terminals/${r.id}`))
	    .status, 200);
});

test("a slow client holds the shell back, and loses nothing", async () => {
	const rss = () => Number(fs.readFileSync(`/proc/${init.pid}/status`,
	    "utf8").match(/VmRSS:\s+(\d+)/)[1]) * 1024;
	const t = attach("id=flood");
	await t.ready();
	const n = 8 * 1024 * 1024;
	const rss0 = rss();
	t.ws._socket.pause();
	await type(t, `head -c ${n} /dev/zero | tr '\\0' x; echo; echo END-$((1+1))\r`);
	await sleep(1500);
	const rss1 = rss();
	t.ws._socket.resume();
	await t.wait(/[\r\n]END-2\r?\n/, 30000);
	const xs = (t.out.match(/x+/g) ?? []).filter((s) => s.length > 100)
	    .reduce((a, s) => a + s.length, 0);
	assert.equal(xs, n);
	// Paused, pincer-init queued a bounded amount, not the 8 MiB.
	assert.ok(rss1 - rss0 < 4 * 1024 * 1024, `rss grew ${rss1 - rss0}`);
	t.ws.close();
	await t.closed;
});

test("keys the shell does not read yet are held, then all delivered",
    async () => {
	const t = attach("id=paste");
	await t.ready();
	const n = 2000000;
	await type(t, "stty raw -echo; echo RAW-$((1+1)); sleep 1; " +
	    `head -c ${n} >/dev/null; stty sane; echo DONE-$((1+2))\r`);
	await t.wait(/RAW-2/);
	// Far more than the PTY and the key queue hold: reading the socket
	// stops until the shell takes them.
	for (let i = 0; i < 4; i++)
		t.ws.send(Buffer.alloc(n / 4, 0x61));
	await t.wait(/[\r\n]DONE-3\r?\n/, 20000);
	t.ws.close();
	await t.closed;
});

test("ending everything frees every PTY", async () => {
	for (const x of (await init.request("GET", "/terminals")).json.terminals)
		await init.request("DELETE", `/terminals/${x.id}`);
	const l = await init.request("GET", "/terminals");
	assert.deepEqual(l.json.terminals, []);
	assert.equal((await init.request("GET", "/health")).json.terminals, 0);
	assert.equal(await until(() => countFds(init.pid, "ptmx") === 0), true);
});
