// SPDX-License-Identifier: MIT
// https_server.mjs: an HTTPS server for the egress TLS tests and bench.
// HTTP/1.1 with keep-alive on 127.0.0.1 (or --host):
//   GET|POST /echo     JSON {method, path, headers, body}
//   GET /bytes?n=N     N bytes, application/octet-stream
//   GET /sse           three server-sent events a few ms apart, then end
//   /ws                WebSocket (RFC 6455) echoing text and binary
//   GET /git/...       files of --git-dir (git's dumb HTTP protocol)
//   GET /quiet         204, nothing of the request sent back
//   node https_server.mjs --cert C --key K [--port 0] [--host H]
//       [--git-dir D] [--record F]        prints "listening PORT"
// --record F: each request's method, path and headers, one JSON line,
// appended to F: what arrived, seen from the host only (an echo would
// hand an injected credential back to the sandbox).
import crypto from "node:crypto";
import fs from "node:fs";
import https from "node:https";
import path from "node:path";

const opt = { port: "0", host: "127.0.0.1" };
for (let i = 2; i < process.argv.length; i += 2)
	opt[process.argv[i].replace(/^--/, "").replace("-", "_")] =
	    process.argv[i + 1];
if (!opt.cert || !opt.key) {
	console.error("usage: https_server.mjs --cert C --key K [--port P] " +
	    "[--host H] [--git-dir D]");
	process.exit(2);
}

const ZEROS = Buffer.alloc(1 << 20);
const routes = { "/echo": echo, "/bytes": bytes, "/sse": sse,
	"/quiet": quiet };

const tlsOpts = { cert: fs.readFileSync(opt.cert),
	key: fs.readFileSync(opt.key), keepAliveTimeout: 60000 };
const srv = https.createServer(tlsOpts, (req, res) => {
	const u = new URL(req.url, "https://x");
	const h = routes[u.pathname];
	if (opt.record)
		fs.appendFileSync(opt.record, JSON.stringify({
			method: req.method, path: req.url,
			headers: req.headers }) + "\n");
	if (h)
		return h(req, res, u);
	if (u.pathname.startsWith("/git/") && opt.git_dir)
		return git(req, res, u);
	res.writeHead(404, { "Content-Type": "text/plain" });
	res.end("not found\n");
});
srv.on("upgrade", wsUpgrade);
srv.listen(Number(opt.port), opt.host, () =>
	console.log(`listening ${srv.address().port}`));

function quiet(req, res) {
	req.resume();
	req.on("end", () => { res.writeHead(204); res.end(); });
}

function echo(req, res) {
	const chunks = [];
	req.on("data", (c) => chunks.push(c));
	req.on("end", () => {
		const body = JSON.stringify({ method: req.method, path: req.url,
			headers: req.headers,
			body: Buffer.concat(chunks).toString() });
		res.writeHead(200, { "Content-Type": "application/json",
			"Content-Length": Buffer.byteLength(body) });
		res.end(body);
	});
}

function bytes(req, res, u) {
	let n = Math.max(0, Number(u.searchParams.get("n") ?? 0) | 0);
	res.writeHead(200, { "Content-Type": "application/octet-stream",
		"Content-Length": n });
	const more = () => {
		while (n > 0) {
			const c = ZEROS.subarray(0, Math.min(n, ZEROS.length));
			n -= c.length;
			if (!res.write(c))
				return res.once("drain", more);
		}
		res.end();
	};
	more();
}

function sse(req, res) {
	res.writeHead(200, { "Content-Type": "text/event-stream",
		"Cache-Control": "no-cache" });
	let i = 0;
	const tick = () => {
		i++;
		res.write(`event: tick\ndata: {"n":${i}}\n\n`);
		if (i < 3)
			setTimeout(tick, 20);
		else
			res.end();
	};
	tick();
}

// Git's dumb protocol is plain GETs of the repository's files
// (info/refs, HEAD, objects/...); the ?service= of the smart protocol is
// ignored, so git falls back to dumb.
function git(req, res, u) {
	const root = path.resolve(opt.git_dir);
	const f = path.resolve(root, "." + decodeURIComponent(
	    u.pathname.slice(4)));
	if (!f.startsWith(root + path.sep) || !fs.existsSync(f) ||
	    !fs.statSync(f).isFile()) {
		res.writeHead(404, { "Content-Type": "text/plain" });
		return res.end("not found\n");
	}
	const data = fs.readFileSync(f);
	res.writeHead(200, { "Content-Type": f.endsWith("/info/refs") ?
		"text/plain" : "application/octet-stream",
		"Content-Length": data.length });
	res.end(req.method === "HEAD" ? undefined : data);
}

// --- WebSocket, RFC 6455 ------------------------------------------------
// §4.2.2: the accept key is SHA-1 of the client's key and the GUID.
function wsUpgrade(req, sock, head) {
	const key = req.headers["sec-websocket-key"];
	if (new URL(req.url, "https://x").pathname !== "/ws" || !key ||
	    String(req.headers.upgrade).toLowerCase() !== "websocket") {
		sock.end("HTTP/1.1 400 Bad Request\r\n" +
		    "Content-Length: 0\r\n\r\n");
		return;
	}
	const accept = crypto.createHash("sha1").update(key +
	    "258EAFA5-E914-47DA-95CA-C5AB0DC11B85").digest("base64");
	sock.write("HTTP/1.1 101 Switching Protocols\r\n" +
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n" +
	    `Sec-WebSocket-Accept: ${accept}\r\n\r\n`);
	let buf = head ?? Buffer.alloc(0);
	const feed = (d) => {
		buf = Buffer.concat([buf, d]);
		let f;
		while ((f = wsParse(buf))) {
			buf = buf.subarray(f.size);
			wsHandle(sock, f);
		}
		if (buf.length > (1 << 20))
			sock.destroy();
	};
	sock.on("data", feed);
	sock.on("error", () => {});
	feed(Buffer.alloc(0));
}

// §5.2: FIN, opcode, MASK, 7/16/64-bit length, masking key, payload.
// Client frames are masked (§5.3); null until a whole frame is there.
function wsParse(b) {
	if (b.length < 2)
		return null;
	let len = b[1] & 0x7f, off = 2;
	if (len === 126) {
		if (b.length < 4)
			return null;
		len = b.readUInt16BE(2);
		off = 4;
	} else if (len === 127) {
		if (b.length < 10)
			return null;
		len = Number(b.readBigUInt64BE(2));
		off = 10;
	}
	const masked = (b[1] & 0x80) !== 0;
	const mask = masked ? b.subarray(off, off + 4) : null;
	if (masked)
		off += 4;
	if (b.length < off + len)
		return null;
	const data = Buffer.from(b.subarray(off, off + len));
	if (masked)
		for (let i = 0; i < data.length; i++)
			data[i] ^= mask[i & 3];
	return { op: b[0] & 0x0f, fin: (b[0] & 0x80) !== 0, masked, data,
		size: off + len };
}

function wsHandle(sock, f) {
	if (!f.masked)		// §5.1: the server closes on an unmasked frame
		return sock.end(wsFrame(8, Buffer.from([0x03, 0xea])));
	if (f.op === 1 || f.op === 2)
		sock.write(wsFrame(f.op, f.data));
	else if (f.op === 9)
		sock.write(wsFrame(10, f.data));
	else if (f.op === 8)
		sock.end(wsFrame(8, f.data.subarray(0, 2)));
}

// A server's frames are not masked (§5.1).
function wsFrame(op, data) {
	let h;
	if (data.length < 126)
		h = Buffer.from([0x80 | op, data.length]);
	else if (data.length < 65536) {
		h = Buffer.from([0x80 | op, 126, 0, 0]);
		h.writeUInt16BE(data.length, 2);
	} else {
		h = Buffer.alloc(10);
		h[0] = 0x80 | op;
		h[1] = 127;
		h.writeBigUInt64BE(BigInt(data.length), 2);
	}
	return Buffer.concat([h, data]);
}
