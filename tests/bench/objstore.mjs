// SPDX-License-Identifier: MIT
// objstore.mjs: the object store's figures (issue 9), on a real pincerd with
// real sandboxes (run as root). A sandbox's /data of 100 MB in 10,000 files
// (100 folders of 100 files of 10,000 random bytes) is synced up; then each
// round starts another pincerd on a new state folder with the same store
// (a new machine) and makes the sandbox there: the restore is the pull that
// runs before it starts (pincerd's own figure, "/data synced … ms=") and
// the whole create call, next to a create with nothing to restore. The sync
// latency is the time from a file written in /data to a store manifest
// naming it, with the default debounce.
// Targets: restore from the local backend ≤ 1 s; a changed file in the
// store ≤ 3 s after it was written.
//   node tests/bench/objstore.mjs [rounds]      (PINCER_BIN set; root;
//   BENCH_LOCAL_ONLY=1: not s3rver)
// The same is measured on the s3 backend against s3rver (started here from
// tests/e2e/node_modules, as the tests do), unless it is not installed.
import { execFileSync, spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const FILES = 10000, PER_DIR = 100, SIZE = 10000, LAT = 20;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];

async function daemon(dir, objstore, n = 0) {
	const state = path.join(dir, `state${n}`);
	const conf = path.join(dir, `c${n}.json`);
	fs.mkdirSync(state, { recursive: true, mode: 0o700 });
	fs.writeFileSync(conf, JSON.stringify({ auth: { argon2_memory_kib:
		1024, argon2_iterations: 1 }, objstore }));
	const cli = (args, input) => execFileSync(process.env.PINCER_BIN,
		[...args, "--config", conf, "--state", state],
		{ input }).toString().trim();
	if (objstore.backend === "s3") {
		cli(["secret", "set", "objstore_access_key_id"], "S3RVER\n");
		cli(["secret", "set", "objstore_secret_access_key"], "S3RVER\n");
	}
	cli(["user", "add", "b", "--role", "owner", "--password-stdin"],
	    "a long bench passphrase\n");
	const tok = cli(["token", "create", "--user", "b", "--scope",
		"sandbox", "--name", "bench"]);
	const logf = path.join(dir, `pincerd${n}.log`);
	const d = spawn(process.env.PINCER_BIN, ["serve", "--config", conf,
		"--state", state, "--listen", "127.0.0.1:0"], { stdio: ["ignore",
		"ignore", fs.openSync(logf, "w")] });
	let addr;
	for (let i = 0; i < 400 && !addr; i++) {
		await sleep(25);
		addr = fs.readFileSync(logf, "utf8").match(
		    /msg=listening addr=(\S+)/)?.[1];
	}
	if (!addr)
		throw new Error("pincerd did not start: " +
		    fs.readFileSync(logf, "utf8"));
	const base = `http://${addr}/api/v1/sandboxes`;
	const H = { Authorization: `Bearer ${tok}`,
		"Content-Type": "application/json" };
	// pincerd closes a kept-alive connection idle for
	// http.header_timeout_s; fetch may reuse one just closed: once more
	// (these calls are all idempotent).
	const call = (m, p, body) => fetch(base + p, { method: m, headers: H,
		body: body && JSON.stringify(body) });
	const api = async (m, p, body) => {
		const r = await call(m, p, body).catch((e) =>
		    e?.cause?.code === "UND_ERR_SOCKET" ? call(m, p, body) :
		    Promise.reject(e));
		const j = await r.json();
		if (!r.ok)
			throw new Error(`${m} ${p}: ${r.status} ${JSON.stringify(j)}`);
		return j;
	};
	return { state, conf, logf, api, cli, stop: async () => {
		d.kill("SIGTERM");
		await new Promise((r) => d.on("exit", r));
	} };
}

// The ms of the newest "/data synced" line for sandbox name after offset.
function pulled(logf, from, name) {
	const t = fs.readFileSync(logf, "utf8").slice(from);
	const m = [...t.matchAll(new RegExp(`msg="/data synced" ` +
	    `detail="sandbox=${name} files=\\d+ installed=(\\d+) ` +
	    `removed=\\d+ ms=(\\d+) flush_ms=(\\d+)"`, "g"))].pop();
	return m ? { installed: Number(m[1]), ms: Number(m[2]),
		flush: Number(m[3]) } : null;
}

async function measure(label, objstore, rounds) {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pincer-bench-os-"));
	if (objstore.backend === "local")
		objstore = { ...objstore, path: path.join(dir, "store") };
	let d = await daemon(dir, objstore);
	const out = { label };
	try {
		// 100 MB in 10,000 files, written on the host side of /data.
		await d.api("POST", "", { name: "big" });
		const data = path.join(d.state, "sandboxes", "big", "data");
		for (let i = 0; i < 200 && !fs.existsSync(data); i++)
			await sleep(25);
		const { uid, gid } = fs.statSync(data);
		for (let i = 0; i < FILES; i++) {
			const sub = path.join(data, "w", `d${Math.floor(i / PER_DIR)}`);
			if (i % PER_DIR === 0)
				fs.mkdirSync(sub, { recursive: true });
			const f = path.join(sub, `f${i}`);
			fs.writeFileSync(f, crypto.randomBytes(SIZE));
			fs.chownSync(f, uid, gid);
		}
		let t = process.hrtime.bigint();
		let s = await d.api("POST", "/big/sync");
		out.upload_s = Number(process.hrtime.bigint() - t) / 1e9;
		if (s.files !== FILES)
			throw new Error(`synced ${s.files} files: ${s.error}`);
		const restore = [], create = [], empty = [], flush = [];
		for (let r = 1; r <= rounds; r++) {
			await d.stop();
			d = await daemon(dir, objstore, r);
			t = process.hrtime.bigint();
			await d.api("POST", "", { name: "big" });
			create.push(Number(process.hrtime.bigint() - t) / 1e6);
			const p = pulled(d.logf, 0, "big");
			if (!p || p.installed !== FILES + FILES / PER_DIR + 1)
				throw new Error("the restore did not install " +
				    `every file: ${JSON.stringify(p)}`);
			restore.push(p.ms);
			flush.push(p.flush);
			t = process.hrtime.bigint();
			await d.api("POST", "", { name: "empty" });
			empty.push(Number(process.hrtime.bigint() - t) / 1e6);
		}
		out.restore_ms = med(restore);
		out.flush_ms = med(flush);
		out.create_ms = med(create);
		out.empty_create_ms = med(empty);

		// Sync latency: a file written, until a manifest names it.
		await d.api("POST", "", { name: "lat" });
		const ldata = path.join(d.state, "sandboxes", "lat", "data");
		for (let i = 0; i < 200 && !fs.existsSync(ldata); i++)
			await sleep(25);	// the launcher makes it
		const ls = fs.statSync(ldata);
		const man = () => execFileSync(process.env.PINCER_BIN,
			["objstore", "get", "data/lat/manifest.json", "-",
			"--config", d.conf, "--state", d.state],
			{ stdio: ["ignore", "pipe", "ignore"] }).toString();
		await sleep(1500);	// the watches are up
		const lat = [];
		for (let i = 0; i < LAT; i++) {
			const f = path.join(ldata, `note${i}.md`);
			t = process.hrtime.bigint();
			fs.writeFileSync(f, `note ${i}\n`);
			fs.chownSync(f, ls.uid, ls.gid);
			for (;;) {
				let m;
				try { m = JSON.parse(man()); } catch { m = null; }
				if (m?.entries?.[`note${i}.md`])
					break;
				if (Number(process.hrtime.bigint() - t) > 30e9)
					throw new Error("a write never reached the " +
					    "store");
				await sleep(10);
			}
			lat.push(Number(process.hrtime.bigint() - t) / 1e6);
			await sleep(700);	// quiet: the next one starts alone
		}
		out.latency_ms = med(lat);
		out.latency_max_ms = Math.max(...lat);
	} catch (e) {
		console.error(`${label}: pincerd's log ends:\n` + fs.readFileSync(
		    d.logf, "utf8").split("\n").slice(-30).join("\n"));
		throw e;
	} finally {
		await d.stop();
		fs.rmSync(dir, { recursive: true, force: true });
	}
	return out;
}

async function main(rounds) {
	if (!process.env.PINCER_BIN)
		throw new Error("PINCER_BIN is not set");
	if (process.getuid() !== 0) {
		console.log("objstore bench: needs root (real sandboxes); skipped");
		return;
	}
	const runs = [["local", { backend: "local" }]];
	const here = path.dirname(new URL(import.meta.url).pathname);
	let s3 = null;
	if (!process.env.BENCH_LOCAL_ONLY &&
	    fs.existsSync(path.join(here, "../e2e/node_modules/s3rver"))) {
		const sdir = fs.mkdtempSync(path.join(os.tmpdir(),
		    "pincer-bench-s3-"));
		s3 = spawn(process.execPath, ["--openssl-legacy-provider",
			path.join(here, "../fakes/s3.mjs"), sdir],
			{ stdio: ["ignore", "pipe", "ignore"] });
		s3.dir = sdir;
		const port = await new Promise((res, rej) => {
			s3.stdout.once("data", (b) => res(JSON.parse(
			    String(b).split("\n")[0]).s3));
			s3.once("exit", () => rej(new Error("s3rver ended")));
		});
		runs.push(["s3 (s3rver)", { backend: "s3", endpoint:
			`http://127.0.0.1:${port}`, bucket: "pincer" }]);
	}
	console.log(`objstore: /data of ${FILES} files, ${FILES * SIZE / 1e6} ` +
	    `MB; ${rounds} rounds, medians; ${os.cpus().length} cores`);
	console.log("backend        upload s  restore ms (flush)  create ms  " +
	    "(empty)  sync latency ms (max)");
	const got = [];
	process.on("exit", () => {
		if (s3) {
			s3.kill();
			fs.rmSync(s3.dir, { recursive: true, force: true });
		}
	});
	for (const [label, o] of runs) {
		const r = await measure(label, o, rounds);
		got.push(r);
		console.log(`${label.padEnd(14)} ${r.upload_s.toFixed(2).padStart(8)}` +
		    `  ${String(r.restore_ms).padStart(10)} ` +
		    `${`(${r.flush_ms})`.padStart(7)}  ` +
		    `${r.create_ms.toFixed(0).padStart(9)}  ` +
		    `${r.empty_create_ms.toFixed(0).padStart(7)}  ` +
		    `${r.latency_ms.toFixed(0).padStart(15)} ` +
		    `(${r.latency_max_ms.toFixed(0)})`);
	}
	const l = got[0];
	console.log(`restore from the local backend: ${l.restore_ms} ms ` +
	    `(target ≤ 1000: ${l.restore_ms <= 1000 ? "met" : "NOT met"}); ` +
	    `a changed file in the store after ${l.latency_ms.toFixed(0)} ms, ` +
	    `at most ${l.latency_max_ms.toFixed(0)} (target ≤ 3000: ` +
	    `${l.latency_max_ms <= 3000 ? "met" : "NOT met"})`);
}

// exit() ends s3rver too (the exit handler), whose pipe would keep us.
main(Number(process.argv[2] ?? 3)).then(() => process.exit(0), (e) => {
	console.error(e);
	process.exit(1);
});
