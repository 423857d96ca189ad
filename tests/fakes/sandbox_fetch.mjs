// SPDX-License-Identifier: MIT
// sandbox_fetch.mjs: an HTTPS client that goes through https_proxy the way
// a sandbox program must. Node 20's fetch and https ignore HTTP(S)_PROXY
// (NODE_USE_ENV_PROXY came later), so the tunnel is made by hand: CONNECT
// host:port to the proxy with http.request, then TLS over that socket.
// Without --cacert the default trust store applies (NODE_EXTRA_CA_CERTS
// included), as for any program in the sandbox.
//   node sandbox_fetch.mjs [--cacert F] get URL     the body on stdout
//   node sandbox_fetch.mjs [--cacert F] sse URL     each event's data line
//   node sandbox_fetch.mjs [--cacert F] ws URL      echo of a text and a
//                                                   binary message
// Exits 1 with the reason (a proxy's refusal: its status and body).
// Also a module: connectTls() and TunnelAgent for tests/bench/egress.mjs.
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
import { fileURLToPath } from "node:url";

// The proxy for a URL from the environment, null if none or no_proxy
// names the host (exact, a suffix after a dot, or "*").
export function proxyFor(u) {
	const env = (k) => process.env[k] ?? process.env[k.toUpperCase()];
	const p = u.protocol === "https:" ? env("https_proxy") :
	    env("http_proxy");
	if (!p)
		return null;
	const host = u.hostname.replace(/^\[|\]$/g, "").toLowerCase();
	for (let n of (env("no_proxy") ?? "").split(",")) {
		n = n.trim().toLowerCase().replace(/^\./, "");
		if (n === "*" || (n && (host === n || host.endsWith("." + n))))
			return null;
	}
	return new URL(p);
}

// A TCP socket to u's host and port: through the proxy's CONNECT when
// there is one. Rejects with the proxy's status and body.
function rawSocket(u, port) {
	const px = proxyFor(u);
	if (!px)
		return new Promise((res, rej) => {
			const s = net.connect(port, u.hostname);
			s.once("connect", () => res(s));
			s.once("error", rej);
		});
	return new Promise((res, rej) => {
		const r = http.request({ host: px.hostname, port: px.port || 80,
			method: "CONNECT", path: `${u.hostname}:${port}`,
			headers: { Host: `${u.hostname}:${port}` } });
		r.once("connect", (resp, sock, head) => {
			if (resp.statusCode === 200) {
				if (head.length)
					sock.unshift(head);
				return res(sock);
			}
			let body = head.toString();
			sock.on("data", (d) => { body += d; });
			sock.on("close", () => rej(new Error(
			    `proxy CONNECT: ${resp.statusCode} ${body}`)));
			setTimeout(() => sock.destroy(), 500);
		});
		r.once("error", rej);
		r.end();
	});
}

// A TLS socket to an https URL, verified against ca (PEM) or the default
// store.
export async function connectTls(url, ca) {
	const u = new URL(url);
	const port = Number(u.port || 443);
	const sock = await rawSocket(u, port);
	return new Promise((res, rej) => {
		const t = tls.connect({ socket: sock, servername:
			/^[\d.]+$|:/.test(u.hostname) ? undefined : u.hostname,
			...(ca ? { ca } : {}) });
		t.once("secureConnect", () => res(t));
		t.once("error", rej);
	});
}

// An https.Agent whose connections are made by connectTls (keep-alive
// works as usual: the tunnel stays open with its TLS session).
export class TunnelAgent extends https.Agent {
	constructor(ca, opts = {}) {
		super(opts);
		this.ca = ca;
	}
	createConnection(o, cb) {
		const url = `https://${o.host}:${o.port}/`;
		connectTls(url, this.ca).then((t) => cb(null, t), (e) => cb(e));
	}
}

// One request; resolves { status, headers, body (Buffer) }.
export function get(url, agent, opts = {}) {
	return new Promise((res, rej) => {
		const r = https.request(url, { agent, ...opts }, (resp) => {
			const chunks = [];
			resp.on("data", (c) => chunks.push(c));
			resp.on("end", () => res({ status: resp.statusCode,
				headers: resp.headers,
				body: Buffer.concat(chunks) }));
			resp.on("error", rej);
		});
		r.once("error", rej);
		r.end(opts.body);
	});
}

async function sse(url, agent) {
	await new Promise((res, rej) => {
		https.get(url, { agent }, (resp) => {
			let buf = "";
			resp.setEncoding("utf8");
			resp.on("data", (d) => {
				buf += d;
				let i;
				while ((i = buf.indexOf("\n\n")) >= 0) {
					const ev = buf.slice(0, i);
					buf = buf.slice(i + 2);
					const m = ev.match(/^data: (.*)$/m);
					if (m)
						console.log(Date.now(), m[1]);
				}
			});
			resp.on("end", res);
		}).once("error", rej);
	});
}

// RFC 6455 by hand: the opening handshake (§4.1), masked client frames
// (§5.3), small messages only (7-bit or 16-bit lengths).
async function ws(url, ca) {
	const u = new URL(url);
	const t = await connectTls(url, ca);
	const key = crypto.randomBytes(16).toString("base64");
	t.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\n` +
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n" +
	    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
	const want = crypto.createHash("sha1").update(key +
	    "258EAFA5-E914-47DA-95CA-C5AB0DC11B85").digest("base64");
	let buf = Buffer.alloc(0), shook = false;
	const frames = [];
	let wake = null;
	t.on("data", (d) => {
		buf = Buffer.concat([buf, d]);
		if (!shook) {
			const i = buf.indexOf("\r\n\r\n");
			if (i < 0)
				return;
			const head = buf.subarray(0, i).toString();
			if (!/^HTTP\/1.1 101/.test(head) ||
			    !head.includes(`Sec-WebSocket-Accept: ${want}`))
				return t.destroy(new Error(
				    `handshake: ${head}`));
			shook = true;
			buf = buf.subarray(i + 4);
		}
		while (buf.length >= 2) {
			let len = buf[1] & 0x7f, off = 2;
			if (len === 126) {
				if (buf.length < 4)
					break;
				len = buf.readUInt16BE(2);
				off = 4;
			}
			if (buf.length < off + len)
				break;
			frames.push({ op: buf[0] & 0x0f,
				data: buf.subarray(off, off + len) });
			buf = buf.subarray(off + len);
		}
		wake?.();
	});
	const closed = new Promise((res, rej) => {
		t.once("close", res);
		t.once("error", rej);
	});
	const next = () => new Promise((res, rej) => {
		const check = () => {
			if (frames.length)
				return res(frames.shift());
			wake = check;
		};
		closed.then(() => rej(new Error("closed")), rej);
		check();
	});
	const send = (op, data) => {
		const mask = crypto.randomBytes(4);
		const m = Buffer.from(data);
		for (let i = 0; i < m.length; i++)
			m[i] ^= mask[i & 3];
		const h = m.length < 126 ?
		    Buffer.from([0x80 | op, 0x80 | m.length]) :
		    Buffer.from([0x80 | op, 0x80 | 126, m.length >> 8,
			m.length & 255]);
		t.write(Buffer.concat([h, mask, m]));
	};
	send(1, "hello over the tunnel");
	const a = await next();
	console.log(`text ${a.op} ${a.data.toString()}`);
	send(2, Buffer.from([0, 1, 2, 253, 254, 255]));
	const b = await next();
	console.log(`binary ${b.op} ${b.data.toString("hex")}`);
	send(8, Buffer.from([0x03, 0xe8]));
	const c = await next();
	console.log(`close ${c.op} ${c.data.readUInt16BE(0)}`);
	t.end();
}

async function main(argv) {
	let ca;
	if (argv[0] === "--cacert") {
		ca = argv[1] ? fs.readFileSync(argv[1]) : undefined;
		argv = argv.slice(2);
	}
	const [mode, url] = argv;
	if (mode === "get") {
		const r = await get(url, new TunnelAgent(ca));
		process.stdout.write(r.body);
		if (r.status >= 400)
			throw new Error(`HTTP ${r.status}`);
	} else if (mode === "sse")
		await sse(url, new TunnelAgent(ca));
	else if (mode === "ws")
		await ws(url, ca);
	else
		throw new Error("usage: sandbox_fetch.mjs [--cacert F] " +
		    "get|sse|ws URL");
}

if (process.argv[1] === fileURLToPath(import.meta.url))
	main(process.argv.slice(2)).catch((e) => {
		console.error(String(e.message ?? e));
		process.exit(1);
	});
