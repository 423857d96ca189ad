// SPDX-License-Identifier: MIT
// sandbox-init.mjs: start a real pincer-init on the host (not as PID 1)
// with its control API on a Unix socket in a throwaway folder, and talk
// HTTP to it. The binary: $PINCER_INIT_BIN, else $TOP_BUILDDIR/pincer-init,
// else ../../../build/pincer-init from here.
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const initBin = process.env.PINCER_INIT_BIN ??
	(process.env.TOP_BUILDDIR ?
	    path.join(process.env.TOP_BUILDDIR, "pincer-init") :
	    path.resolve(here, "../../../build/pincer-init"));
const top = process.env.TOP_BUILDDIR ?? os.tmpdir();

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function startInit(name) {
	const logs = path.join(top, "tests", "logs");
	fs.mkdirSync(logs, { recursive: true });
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), `pincer-${name}-`));
	const sock = path.join(dir, "control.sock");
	const logPath = path.join(logs, `e2e.${name}.init.log`);
	const log = fs.openSync(logPath, "w");
	const child = spawn(initBin, ["--control", sock, "--no-forward"],
	    { stdio: ["ignore", "ignore", log] });
	const exited = new Promise((resolve) => child.on("exit", resolve));
	for (let i = 0; i < 200 && !fs.existsSync(sock); i++)
		await sleep(25);
	if (!fs.existsSync(sock))
		throw new Error(`pincer-init did not start:\n${fs.readFileSync(logPath, "utf8")}`);
	return {
		sock, dir, pid: child.pid, logPath,
		log: () => fs.readFileSync(logPath, "utf8"),
		request: (method, p, body) => request(sock, method, p, body),
		async stop() {
			child.kill("SIGTERM");
			const code = await exited;
			fs.closeSync(log);
			fs.rmSync(dir, { recursive: true, force: true });
			return code;
		},
	};
}

// One request on its own connection; resolves { status, body, json }.
export function request(sock, method, p, body) {
	return new Promise((resolve, reject) => {
		const req = http.request({ socketPath: sock, path: p, method,
		    agent: false }, (res) => {
			let text = "";
			res.setEncoding("utf8");
			res.on("data", (d) => { text += d; });
			res.on("end", () => {
				let json = null;
				try { json = JSON.parse(text); } catch { /* not JSON */ }
				resolve({ status: res.statusCode, body: text, json });
			});
		});
		req.on("error", reject);
		req.end(body);
	});
}

// The fds of pid whose link names kind (e.g. "inotify", "ptmx").
export function countFds(pid, kind) {
	const d = `/proc/${pid}/fd`;
	let n = 0;
	for (const f of fs.readdirSync(d)) {
		try {
			if (fs.readlinkSync(path.join(d, f)).includes(kind))
				n++;
		} catch { /* closed meanwhile */ }
	}
	return n;
}

// Polls fn until it returns truthy or ms pass; returns the last value.
export async function until(fn, ms = 5000) {
	const end = Date.now() + ms;
	let v;
	while (!(v = await fn()) && Date.now() < end)
		await sleep(25);
	return v;
}
