// SPDX-License-Identifier: MIT
// pincer-init's GET /watch (docs/sandbox-api.md "Watch"): file changes
// under a folder as SSE, read over the control socket.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { startInit, countFds, until, sleep } from "./lib/sandbox-init.mjs";

let init, root;
before(async () => {
	init = await startInit("watch");
	root = fs.mkdtempSync(path.join(os.tmpdir(), "pincer-watched-"));
});
after(async () => {
	await init.stop();
	fs.rmSync(root, { recursive: true, force: true });
});

// A fresh folder under root for one test.
function folder(name) {
	const d = path.join(root, name);
	fs.mkdirSync(d);
	return d;
}

// Opens GET /watch?query; events arrive in w.events as { type, data }.
function watch(query) {
	const w = { events: [], status: 0, res: null };
	w.req = http.request({ socketPath: init.sock, path: `/watch?${query}`,
	    agent: false }, (res) => {
		w.status = res.statusCode;
		w.res = res;
		let buf = "";
		res.setEncoding("utf8");
		res.on("data", (d) => {
			buf += d;
			let i;
			while ((i = buf.indexOf("\n\n")) !== -1) {
				const block = buf.slice(0, i);
				buf = buf.slice(i + 2);
				const ev = block.match(/^event: (.*)$/m)?.[1];
				const data = block.match(/^data: (.*)$/m)?.[1];
				w.events.push({ type: ev, data: JSON.parse(data) });
			}
		});
		res.on("end", () => { w.ended = true; });
	});
	w.req.on("error", () => {});
	w.req.end();
	w.find = (pred, ms = 5000) =>
		until(() => w.events.find((e) => pred(e)), ms);
	w.change = (type, p, ms) => w.find((e) => e.type === "change" &&
	    e.data.type === type && e.data.path === p, ms);
	w.ready = async () => {
		const r = await w.find((e) => e.type === "ready");
		assert.ok(r, `no ready (status ${w.status})`);
		return r.data;
	};
	w.close = () => w.req.destroy();
	return w;
}

const changes = (w) => w.events.filter((e) => e.type === "change")
    .map((e) => `${e.data.type} ${e.data.path}${e.data.is_dir ? "/" : ""}`);

test("ready, then create, modify, delete and moves", async () => {
	const d = folder("basic");
	const w = watch(`path=${encodeURIComponent(d + "/")}`);
	const ready = await w.ready();
	assert.equal(ready.path, d);
	const f = path.join(d, "a.txt");
	fs.writeFileSync(f, "one");
	assert.ok(await w.change("create", f));
	assert.ok(await w.change("modify", f));
	fs.appendFileSync(f, "two");
	await until(() => changes(w).filter((c) => c === `modify ${f}`)
	    .length === 2);
	fs.renameSync(f, path.join(d, "b.txt"));
	assert.ok(await w.change("move_from", f));
	assert.ok(await w.change("move_to", path.join(d, "b.txt")));
	fs.mkdirSync(path.join(d, "sub"));
	const c = await w.change("create", path.join(d, "sub"));
	assert.equal(c.data.is_dir, true);
	fs.rmSync(path.join(d, "b.txt"));
	const del = await w.change("delete", path.join(d, "b.txt"));
	assert.equal(del.data.is_dir, false);
	fs.rmdirSync(path.join(d, "sub"));
	assert.equal((await w.change("delete", path.join(d, "sub")))
	    .data.is_dir, true);
	w.close();
});

test("recursive: folders there at start and made later are followed",
    async () => {
	const d = folder("deep");
	fs.mkdirSync(path.join(d, "x/y"), { recursive: true });
	const w = watch(`path=${encodeURIComponent(d)}`);
	await w.ready();
	fs.writeFileSync(path.join(d, "x/y/old.txt"), "1");
	assert.ok(await w.change("modify", path.join(d, "x/y/old.txt")));
	// Made and filled at once: the scan of the new folder tells of it.
	fs.mkdirSync(path.join(d, "n1/n2/n3"), { recursive: true });
	fs.writeFileSync(path.join(d, "n1/n2/n3/f.txt"), "1");
	assert.ok(await w.change("create", path.join(d, "n1/n2/n3/f.txt")));
	// And later changes in it come from its own watch.
	await sleep(100);
	fs.writeFileSync(path.join(d, "n1/n2/n3/g.txt"), "2");
	assert.ok(await w.change("modify", path.join(d, "n1/n2/n3/g.txt")));
	// A folder moved within the tree is followed under its new name.
	fs.renameSync(path.join(d, "n1"), path.join(d, "m1"));
	assert.ok(await w.change("move_to", path.join(d, "m1")));
	fs.writeFileSync(path.join(d, "m1/n2/h.txt"), "3");
	assert.ok(await w.change("modify", path.join(d, "m1/n2/h.txt")));
	assert.ok(!changes(w).some((c) => c.includes("/n1/n2/h.txt")));
	w.close();
});

test("recursive=0 tells only of the folder itself", async () => {
	const d = folder("flat");
	fs.mkdirSync(path.join(d, "inner"));
	const w = watch(`path=${encodeURIComponent(d)}&recursive=0`);
	await w.ready();
	fs.writeFileSync(path.join(d, "inner/hidden.txt"), "1");
	fs.writeFileSync(path.join(d, "top.txt"), "1");
	assert.ok(await w.change("modify", path.join(d, "top.txt")));
	await sleep(200);
	assert.ok(!changes(w).some((c) => c.includes("hidden")));
	w.close();
});

test("include and exclude globs", async () => {
	const d = folder("globs");
	fs.mkdirSync(path.join(d, "node_modules/pkg"), { recursive: true });
	fs.mkdirSync(path.join(d, "src"));
	const w = watch(`path=${encodeURIComponent(d)}&include=*.py` +
	    "&include=*.md&exclude=node_modules&exclude=skip_*");
	await w.ready();
	fs.writeFileSync(path.join(d, "node_modules/pkg/x.py"), "1");
	fs.writeFileSync(path.join(d, "src/y.txt"), "1");
	fs.writeFileSync(path.join(d, "skip_me.py"), "1");
	fs.writeFileSync(path.join(d, "src/z.py"), "1");
	fs.writeFileSync(path.join(d, "README.md"), "1");
	assert.ok(await w.change("modify", path.join(d, "src/z.py")));
	assert.ok(await w.change("modify", path.join(d, "README.md")));
	await sleep(200);
	const seen = changes(w);
	assert.ok(!seen.some((c) => /node_modules|y\.txt|skip_me/.test(c)),
	    seen.join("\n"));
	w.close();
});

test("a client going away frees its inotify instance", async () => {
	const d = folder("free");
	fs.mkdirSync(path.join(d, "a/b"), { recursive: true });
	const before = countFds(init.pid, "inotify");
	const ws = [watch(`path=${encodeURIComponent(d)}`),
	    watch(`path=${encodeURIComponent(d)}&recursive=0`)];
	for (const w of ws)
		assert.equal((await w.ready()).path, d);
	assert.equal(countFds(init.pid, "inotify"), before + 2);
	// Both see the same change: each stream is its own.
	fs.writeFileSync(path.join(d, "both.txt"), "1");
	for (const w of ws)
		assert.ok(await w.change("modify", path.join(d, "both.txt")));
	for (const w of ws)
		w.close();
	assert.ok(await until(() => countFds(init.pid, "inotify") === before));
});

test("the watched folder removed: an error event, then the end",
    async () => {
	const d = folder("gone");
	const w = watch(`path=${encodeURIComponent(d)}`);
	await w.ready();
	fs.rmSync(d, { recursive: true });
	assert.ok(await w.find((e) => e.type === "error"));
	assert.ok(await until(() => w.ended));
});

test("bad requests", async () => {
	const f = path.join(folder("bad"), "file");
	fs.writeFileSync(f, "");
	let r = await init.request("GET", "/watch?path=" +
	    encodeURIComponent(path.join(root, "missing")));
	assert.equal(r.status, 404);
	r = await init.request("GET", `/watch?path=${encodeURIComponent(f)}`);
	assert.equal(r.status, 400);
	r = await init.request("GET", "/watch?path=relative/x");
	assert.equal(r.status, 400);
	r = await init.request("GET", `/watch?path=${encodeURIComponent(root)}` +
	    "&recursive=maybe");
	assert.equal(r.status, 400);
	assert.equal(r.json.error.code, "bad_request");
});

test("more than 8192 folders: an error event says so", async () => {
	const d = folder("many");
	for (let i = 0; i < 90; i++)
		for (let j = 0; j < 92; j++)
			fs.mkdirSync(path.join(d, `${i}/${j}`), { recursive: true });
	const w = watch(`path=${encodeURIComponent(d)}`);
	const ready = await w.ready();
	assert.equal(ready.watches, 8192);
	const err = await w.find((e) => e.type === "error");
	assert.match(err.data.message, /too many folders/);
	w.close();
});

test("a client that reads nothing gets an overflow event", async () => {
	const d = folder("flood");
	const w = watch(`path=${encodeURIComponent(d)}`);
	await w.ready();
	w.res.pause();
	w.res.socket.pause();
	const long = "x".repeat(150);
	for (let i = 0; i < 16000; i++)
		fs.writeFileSync(path.join(d, `${long}-${i}`), "");
	await sleep(300);
	w.res.socket.resume();
	w.res.resume();
	assert.ok(await w.find((e) => e.type === "overflow", 15000),
	    `${w.events.length} events, no overflow`);
	w.close();
});
