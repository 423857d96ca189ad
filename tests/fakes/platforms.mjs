// SPDX-License-Identifier: MIT
// A fake chat-platform server on loopback for tests: Slack's Web API and
// Socket Mode, Telegram's Bot API, the WhatsApp Cloud (Graph) API,
// Discord's REST and Gateway, and a generic webhook receiver, each under
// its own path prefix, in the platforms' real wire formats (errors and
// 429 answers included), recording every call.
//
//   node tests/fakes/platforms.mjs [--port 0] [--host 127.0.0.1]
//
// prints one line {"port":N} on stdout once listening; SIGTERM stops it.
//
// Prefixes (a channel's api_base points at one):
//   /slack/api/…            Slack Web API        (platforms/slack.mjs)
//   /telegram/…             Telegram Bot API     (platforms/telegram.mjs)
//   /whatsapp/…             Graph API            (platforms/whatsapp.mjs)
//   /discord/api/…          Discord REST         (platforms/discord.mjs)
//   /generic/…              a webhook callback   (here)
//
// Control (every platform):
//   GET  /_fake/calls[?platform=P]   recorded calls, oldest first:
//        [{platform, method, path, query, headers, body, json, at}]
//   POST /_fake/reset                forget calls and scripts
//   POST /_fake/script {platform, faults: ["429=2", "500", "", …]}
//        one entry per coming API call of that platform ("" = none);
//        429=S answers the platform's rate-limit error with Retry-After S;
//        500/503 a server error; "hang" never answers; "drop" destroys
//        the socket. A platform module may know more.
//   /_fake/P/…                       a platform's own controls (its file)
//
// A platform module exports default create(ctx) returning
//   { http(req, res, url, body) → bool, upgrade?(req, socket, head, url)
//     → bool, control?(req, res, url, body) → bool, reset?() }
// with ctx = { record(platform, req, url, body), fault(platform),
//   json(res, status, obj, headers), WebSocketServer }.
import http from "node:http";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
// ws lives with the e2e tests' packages (tests/e2e/package-lock.json).
const require = createRequire(path.join(here, "../e2e/package.json"));
const { WebSocketServer } = require("ws");

const calls = [];
const scripts = new Map();

function json(res, status, obj, headers = {}) {
	const body = JSON.stringify(obj);
	res.writeHead(status, { "content-type": "application/json",
	    "content-length": Buffer.byteLength(body), ...headers });
	res.end(body);
}

function record(platform, req, url, body) {
	let parsed = null;
	const ct = req.headers["content-type"] || "";
	if (ct.startsWith("application/json")) {
		try { parsed = JSON.parse(body.toString()); } catch { }
	} else if (ct.startsWith("application/x-www-form-urlencoded")) {
		parsed = Object.fromEntries(new URLSearchParams(body.toString()));
	}
	const call = { platform, method: req.method, path: url.pathname,
	    query: Object.fromEntries(url.searchParams), headers: req.headers,
	    body: ct.startsWith("multipart/") ? `<multipart ${body.length} bytes>`
	    : body.toString(), json: parsed, at: Date.now() };
	if (ct.startsWith("multipart/"))
		call.multipart = parseMultipart(body, ct);
	calls.push(call);
	return call;
}

// multipart/form-data fields: {name: {value | filename, mime, size, text}}
function parseMultipart(body, ct) {
	const m = /boundary=(?:"([^"]+)"|([^;]+))/.exec(ct);
	if (!m) return {};
	const sep = Buffer.from("--" + (m[1] || m[2]));
	const out = {};
	let at = body.indexOf(sep);
	while (at !== -1) {
		const start = at + sep.length + 2;
		const next = body.indexOf(sep, start);
		if (next === -1) break;
		const part = body.subarray(start, next - 2);
		const split = part.indexOf("\r\n\r\n");
		const head = part.subarray(0, split).toString();
		const data = part.subarray(split + 4);
		const name = /name="([^"]*)"/.exec(head)?.[1];
		const filename = /filename="([^"]*)"/.exec(head)?.[1];
		const mime = /content-type:\s*(\S+)/i.exec(head)?.[1];
		if (name !== undefined)
			out[name] = filename !== undefined ?
			    { filename, mime, size: data.length,
			      text: data.toString() } : data.toString();
		at = next;
	}
	return out;
}

function fault(platform) {
	const list = scripts.get(platform);
	return list && list.length ? list.shift() || null : null;
}

const ctx = { record, fault, json, WebSocketServer };
const platforms = {};
for (const name of ["slack", "telegram", "whatsapp", "discord"]) {
	try {
		const mod = await import(`./platforms/${name}.mjs`);
		platforms[name] = mod.default(ctx);
	} catch (e) {
		if (e.code !== "ERR_MODULE_NOT_FOUND") throw e;
	}
}

// The generic webhook's callback: records what pincerd POSTs.
platforms.generic = {
	http(req, res, url, body) {
		record("generic", req, url, body);
		const f = fault("generic");
		if (f && f.startsWith("429"))
			return json(res, 429, { error: "slow down" },
			    { "retry-after": f.split("=")[1] || "1" }), true;
		if (f === "500")
			return json(res, 500, { error: "broken" }), true;
		json(res, 200, { ok: true, id: `gen-${calls.length}` });
		return true;
	},
};

function readBody(req) {
	return new Promise((resolve) => {
		const chunks = [];
		req.on("data", (c) => chunks.push(c));
		req.on("end", () => resolve(Buffer.concat(chunks)));
		req.on("error", () => resolve(Buffer.concat(chunks)));
	});
}

function control(req, res, url, body) {
	if (url.pathname === "/_fake/calls") {
		const p = url.searchParams.get("platform");
		return json(res, 200, p ? calls.filter((c) => c.platform === p)
		    : calls);
	}
	if (url.pathname === "/_fake/reset") {
		calls.length = 0;
		scripts.clear();
		for (const p of Object.values(platforms)) p.reset?.();
		return json(res, 200, { ok: true });
	}
	if (url.pathname === "/_fake/script") {
		const s = JSON.parse(body.toString());
		scripts.set(s.platform, [...(scripts.get(s.platform) || []),
		    ...s.faults]);
		return json(res, 200, { ok: true });
	}
	const name = url.pathname.split("/")[2];
	if (platforms[name]?.control?.(req, res, url, body)) return;
	json(res, 404, { error: "no such control" });
}

const server = http.createServer(async (req, res) => {
	const url = new URL(req.url, "http://fake");
	const body = await readBody(req);
	try {
		if (url.pathname.startsWith("/_fake/"))
			return control(req, res, url, body);
		const name = url.pathname.split("/")[1];
		if (platforms[name]?.http(req, res, url, body)) return;
		json(res, 404, { ok: false, error: "unknown_method" });
	} catch (e) {
		json(res, 500, { error: String(e.stack || e) });
	}
});
server.on("upgrade", (req, socket, head) => {
	const url = new URL(req.url, "http://fake");
	const name = url.pathname.split("/")[1];
	if (!platforms[name]?.upgrade?.(req, socket, head, url))
		socket.destroy();
});

const args = process.argv.slice(2);
const opt = (k, d) => {
	const i = args.indexOf(k);
	return i === -1 ? d : args[i + 1];
};
server.listen(Number(opt("--port", 0)), opt("--host", "127.0.0.1"), () => {
	process.stdout.write(JSON.stringify({ port: server.address().port })
	    + "\n");
});
for (const s of ["SIGTERM", "SIGINT"])
	process.on(s, () => process.exit(0));
