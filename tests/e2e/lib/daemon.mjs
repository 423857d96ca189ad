// SPDX-License-Identifier: MIT
// daemon.mjs: start a real pincerd on 127.0.0.1:0 with a throwaway state
// folder, wait for /readyz, and keep its log with the other test logs.
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";

const bin = process.env.PINCER_BIN;
const top = process.env.TOP_BUILDDIR ?? os.tmpdir();

// opts.beforeStart({ dir, state, conf }), if given, runs (and is awaited)
// after the config is written and the state folder made (0700), before
// pincerd starts: e.g. to add users with `pincer user add --state`.
// opts.listen: the address (default 127.0.0.1:0, a port of its own).
export async function startPincer(name, config = {}, opts = {}) {
	if (!bin) throw new Error("PINCER_BIN is not set");
	const logs = path.join(top, "tests", "logs");
	fs.mkdirSync(logs, { recursive: true });
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), `pincer-${name}-`));
	const conf = path.join(dir, "pincer.json");
	const state = path.join(dir, "state");
	fs.writeFileSync(conf, JSON.stringify(config));
	if (opts.beforeStart) {
		fs.mkdirSync(state, { mode: 0o700 });
		await opts.beforeStart({ dir, state, conf });
	}
	const logPath = path.join(logs, `e2e.${name}.pincerd.log`);
	const log = fs.openSync(logPath, "w");
	const child = spawn(bin, ["serve", "--config", conf, "--state",
		state, "--listen", opts.listen ?? "127.0.0.1:0"],
		{ stdio: ["ignore", "ignore", log] });
	const exited = new Promise((resolve) => child.on("exit", resolve));
	let addr = null;
	for (let i = 0; i < 200 && !addr; i++) {
		const m = fs.readFileSync(logPath, "utf8")
			.match(/msg=listening addr=(\S+)/);
		if (m) addr = m[1];
		else await new Promise((r) => setTimeout(r, 25));
	}
	if (!addr) throw new Error(`pincerd did not start:\n${fs.readFileSync(logPath, "utf8")}`);
	const url = `http://${addr}`;
	for (let i = 0; i < 200; i++) {
		try {
			if ((await get(`${url}/readyz`)).status === 200) break;
		} catch { /* not yet */ }
		await new Promise((r) => setTimeout(r, 25));
	}
	return {
		url, addr, logPath, dir, state, conf,
		log: () => fs.readFileSync(logPath, "utf8"),
		async stop() {
			child.kill("SIGTERM");
			const code = await exited;
			fs.closeSync(log);
			fs.rmSync(dir, { recursive: true, force: true });
			return code;
		},
	};
}

// A GET on a connection of its own, closed after: no pooled keep-alive
// connection is left behind to count against limits or in /metrics.
// headers: optional request headers.
export function get(url, headers = {}) {
	return new Promise((resolve, reject) => {
		http.get(url, { agent: false, headers }, (res) => {
			let body = "";
			res.setEncoding("utf8");
			res.on("data", (d) => { body += d; });
			res.on("end", () => resolve({ status: res.statusCode, body }));
		}).on("error", reject);
	});
}

export async function metric(url, name) {
	const text = (await get(`${url}/metrics`)).body;
	const line = text.split("\n").find((l) => l.startsWith(name + " "));
	return line ? Number(line.split(" ")[1]) : NaN;
}
