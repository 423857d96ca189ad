// SPDX-License-Identifier: MIT
// Discord's REST API (v10) and Gateway as pincer's discord channel calls
// them, under /discord/ (a channel's api_base is $PLAT/discord/api):
//
//   GET   /discord/api/gateway/bot        {url: ws://…/discord/gateway,
//         shards, session_start_limit}
//   POST  /discord/api/channels/ID/messages   Create Message: JSON, or
//         multipart (payload_json + files[N]); nonce + enforce_nonce: a
//         repeat of a nonce in that channel answers the first message
//   POST  /discord/api/channels/ID/typing     204
//   PATCH /discord/api/webhooks/APP/TOKEN/messages/@original   Edit
//         Original Interaction Response
//   POST  /discord/api/webhooks/APP/TOKEN     a follow-up message
//   GET   /discord/cdn/attachments/C/ID/NAME  an attachment's bytes
//         ("attachment NAME\n"; CDN URLs are signed: no token)
// "Authorization: Bot TOKEN" on all but webhooks (their token is in the
// path; one starting "expired" is refused 401 50027). Errors are
// Discord's: {"message", "code"} (401 "401: Unauthorized" code 0, 404
// Unknown Channel 10003, 400 Invalid Form Body 50035, 50006 empty).
//
// Scripted faults (POST /_fake/script {"platform": "discord"}), one per
// coming message call (channel messages and webhooks; not typing nor
// gateway/bot):
//   "429=S"  HTTP 429 {"message": "You are being rate limited.",
//            "retry_after": S, "global": false} with Retry-After,
//            X-RateLimit-Reset-After and X-RateLimit-Scope: user
//   "500"    {"message": "500: Internal Server Error", "code": 0}
//   "403"    Missing Permissions 50013; "50007" Cannot send messages to
//            this user (403); "hang"; "drop"
//
// The Gateway: a WebSocket at /discord/gateway. Hello (heartbeat
// interval 1000 ms), Identify checked (the bot token: else close 4004),
// READY (session_id, resume_gateway_url: this same fake, user = the
// bot); Resume (op 6) replays the session's events after its seq, then
// RESUMED; an unknown session gets op 9 false; heartbeats are acked.
// Controls:
//   POST /_fake/discord/token {"bot"}     the bot token taken
//        (default "fake-discord-bot-token")
//   POST /_fake/discord/gateway/dispatch {"t"?, "d"}   a dispatch
//        (MESSAGE_CREATE by default; d's id, timestamp, type filled in
//        when missing) with the session's next seq, to its connection
//        if one is open, else kept for its resume → {"s", "id"}
//   POST /_fake/discord/gateway/drop      the socket destroyed (no close
//        frame)
//   POST /_fake/discord/gateway/reconnect op 7 to the open connection
//   POST /_fake/discord/gateway/acks {"on"}  heartbeats acked or not
//   POST /_fake/discord/gateway/invalidate {"resumable"}  op 9
//   POST /_fake/discord/gateway/close {"code"}  a close frame (4004 …)
//   GET  /_fake/discord/gateway/state     {connections, open,
//        identifies, resumes, heartbeats, seq, session_id, last_query}
//   GET  /_fake/discord/messages          messages created, in order:
//        [{id, channel_id, content, nonce, via, message_reference,
//          attachments}]
import crypto from "node:crypto";

const BOT = { id: "1100000000000000001", username: "pincer",
    discriminator: "0", global_name: null, bot: true, avatar: null };
const APP = "1100000000000000002";
const MAX_TEXT = 2000;
const HEARTBEAT_MS = 1000;

export default function create(ctx) {
	let token = "fake-discord-bot-token";
	let snow = 1300000000000000000n;
	const wss = new ctx.WebSocketServer({ noServer: true });
	const messages = [];
	const nonces = new Map();	// channel/nonce → {msg, at}
	const sessions = new Map();	// session_id → session
	let current = null;		// the newest session
	let acks = true;		// heartbeats acknowledged
	const st = { connections: 0, identifies: 0, resumes: 0,
	    heartbeats: 0, last_query: null };

	const nextId = () => String(++snow);
	const err = (res, status, message, code, extra = {}) =>
	    ctx.json(res, status, { message, code, ...extra });

	function fault(req, res, f) {
		if (!f) return false;
		if (f.startsWith("429")) {
			const s = Number(f.split("=")[1] || "1");
			ctx.json(res, 429, { message:
			    "You are being rate limited.", retry_after: s,
			    global: false }, { "retry-after":
			    String(Math.ceil(s)), "x-ratelimit-limit": "5",
			    "x-ratelimit-remaining": "0",
			    "x-ratelimit-reset-after": String(s),
			    "x-ratelimit-bucket": "fakebucket",
			    "x-ratelimit-scope": "user" });
		} else if (f === "500") {
			err(res, 500, "500: Internal Server Error", 0);
		} else if (f === "403") {
			err(res, 403, "Missing Permissions", 50013);
		} else if (f === "50007") {
			err(res, 403, "Cannot send messages to this user",
			    50007);
		} else if (f === "hang") {
			// never answered
		} else if (f === "drop") {
			req.socket.destroy();
		} else {
			return false;
		}
		return true;
	}

	// The message parameters: JSON, or multipart's payload_json + files.
	function payload(req, call) {
		const ct = req.headers["content-type"] || "";
		if (ct.startsWith("application/json")) return call.json;
		if (!ct.startsWith("multipart/form-data")) return null;
		const mp = call.multipart || {};
		let p;
		try { p = JSON.parse(mp.payload_json || "{}"); }
		catch { return null; }
		p.files = Object.keys(mp).filter((k) => /^files\[\d+\]$/
		    .test(k)).map((k) => mp[k]);
		return p;
	}

	// A message object as Create Message answers it.
	function create(channel, p, via) {
		const m = { id: nextId(), type: p.message_reference ? 19 : 0,
		    channel_id: channel, author: BOT, content: p.content || "",
		    timestamp: new Date().toISOString(), edited_timestamp: null,
		    tts: false, mention_everyone: false, mentions: [],
		    mention_roles: [], embeds: [], pinned: false, flags: 0 };
		m.attachments = (p.files || []).map((f, i) => ({ id: nextId(),
		    filename: f.filename, size: f.size, content_type: f.mime,
		    url: `https://cdn.example/${i}/${f.filename}` }));
		if (p.nonce !== undefined) m.nonce = p.nonce;
		if (p.message_reference)
			m.message_reference = { channel_id: channel,
			    message_id: p.message_reference.message_id };
		messages.push({ id: m.id, channel_id: channel,
		    content: m.content, nonce: p.nonce ?? null, via,
		    message_reference: p.message_reference || null,
		    attachments: m.attachments.map((a) => ({ filename:
		    a.filename, size: a.size, content_type: a.content_type,
		    text: p.files[m.attachments.indexOf(a)].text })) });
		return m;
	}

	// Invalid Form Body, as Discord says it, or null.
	function invalid(p) {
		if (!p) return { _errors: [{ code: "BASE_TYPE_REQUIRED",
		    message: "This field is required" }] };
		if (typeof p.content === "string" && p.content.length >
		    MAX_TEXT)
			return { content: { _errors: [{ code:
			    "BASE_TYPE_MAX_LENGTH", message: "Must be 2000 " +
			    "or fewer in length." }] } };
		if (p.nonce !== undefined && String(p.nonce).length > 25)
			return { nonce: { _errors: [{ code:
			    "BASE_TYPE_MAX_LENGTH", message: "Must be 25 or " +
			    "fewer in length." }] } };
		return null;
	}

	function postMessage(req, res, call, channel) {
		if (!/^\d{1,20}$/.test(channel))
			return err(res, 404, "Unknown Channel", 10003);
		if (fault(req, res, ctx.fault("discord"))) return;
		const p = payload(req, call);
		const bad = invalid(p);
		if (bad) return err(res, 400, "Invalid Form Body", 50035,
		    { errors: bad });
		if (!p.content && !(p.files || []).length)
			return err(res, 400, "Cannot send an empty message",
			    50006);
		const key = `${channel}/${p.nonce}`;
		const seen = nonces.get(key);
		if (p.enforce_nonce && p.nonce !== undefined && seen &&
		    Date.now() - seen.at < 5 * 60 * 1000)
			return ctx.json(res, 200, seen.msg);
		const m = create(channel, p, "channel");
		if (p.nonce !== undefined) nonces.set(key, { msg: m,
		    at: Date.now() });
		ctx.json(res, 200, m);
	}

	function webhook(req, res, call, app, tok, original) {
		if (tok.startsWith("expired"))
			return err(res, 401, "Invalid Webhook Token", 50027);
		if (app !== APP && !/^\d{1,20}$/.test(app))
			return err(res, 404, "Unknown Webhook", 10015);
		if (fault(req, res, ctx.fault("discord"))) return;
		const p = payload(req, call);
		const bad = invalid(p);
		if (bad) return err(res, 400, "Invalid Form Body", 50035,
		    { errors: bad });
		ctx.json(res, 200, create("interaction", p, original ?
		    "original" : "followup"));
	}

	function http(req, res, url, body) {
		const call = ctx.record("discord", req, url, body);
		const cdn = /^\/discord\/cdn\/attachments\/\d+\/\d+\/([^/]+)$/
		    .exec(url.pathname);
		if (cdn && req.method === "GET") {
			res.writeHead(200, { "content-type": "text/plain" });
			res.end(`attachment ${cdn[1]}\n`);
			return true;
		}
		const m = /^\/discord\/api(?:\/v\d+)?\/(.*)$/
		    .exec(url.pathname);
		if (!m) return false;
		const path = m[1];
		let w;
		if ((w = /^webhooks\/(\d+)\/([^/]+)(\/messages\/@original)?$/
		    .exec(path))) {
			if (req.method !== (w[3] ? "PATCH" : "POST"))
				return err(res, 405, "405: Method Not Allowed",
				    0), true;
			webhook(req, res, call, w[1], w[2], !!w[3]);
			return true;
		}
		if (req.headers.authorization !== `Bot ${token}`)
			return err(res, 401, "401: Unauthorized", 0), true;
		if (path === "gateway/bot" && req.method === "GET") {
			const host = req.headers.host;
			ctx.json(res, 200, { url:
			    `ws://${host}/discord/gateway`, shards: 1,
			    session_start_limit: { total: 1000, remaining: 999,
			    reset_after: 14400000, max_concurrency: 1 } });
			return true;
		}
		let c;
		if ((c = /^channels\/([^/]+)\/typing$/.exec(path)) &&
		    req.method === "POST") {
			res.writeHead(204);
			res.end();
			return true;
		}
		if ((c = /^channels\/([^/]+)\/messages$/.exec(path)) &&
		    req.method === "POST") {
			postMessage(req, res, call, c[1]);
			return true;
		}
		err(res, 404, "404: Not Found", 0);
		return true;
	}

	// --- the Gateway ------------------------------------------------
	const send = (ws, o) => ws.readyState === 1 &&
	    ws.send(JSON.stringify(o));

	function dispatch(sess, t, d) {
		const ev = { op: 0, t, s: ++sess.seq, d };
		sess.events.push(ev);
		if (sess.ws && sess.ready) send(sess.ws, ev);
		return ev.s;
	}

	function onFrame(ws, conn, raw) {
		let f;
		try { f = JSON.parse(raw.toString()); }
		catch {
			return ws.close(4002, "Error while decoding payload.");
		}
		if (f.op === 1) {
			st.heartbeats++;
			return acks && send(ws, { op: 11 });
		}
		if (f.op === 2) {
			st.identifies++;
			if (!f.d || f.d.token !== token)
				return ws.close(4004, "Authentication failed.");
			if (typeof f.d.intents !== "number")
				return ws.close(4013, "Invalid intent(s).");
			const sess = { id: crypto.randomBytes(16)
			    .toString("hex"), seq: 0, events: [], ws,
			    ready: true, intents: f.d.intents };
			sessions.set(sess.id, sess);
			current = sess;
			conn.sess = sess;
			const host = conn.host;
			dispatch(sess, "READY", { v: 10, user: BOT, guilds: [],
			    session_id: sess.id, resume_gateway_url:
			    `ws://${host}/discord/gateway`, application:
			    { id: APP, flags: 0 }, private_channels: [] });
			return;
		}
		if (f.op === 6) {
			st.resumes++;
			const sess = sessions.get(f.d?.session_id);
			if (!sess || f.d.token !== token)
				return send(ws, { op: 9, d: false });
			if (sess.ws && sess.ws !== ws) sess.ws.terminate();
			sess.ws = ws;
			conn.sess = sess;
			current = sess;
			for (const ev of sess.events)
				if (ev.s > f.d.seq) send(ws, ev);
			sess.ready = true;
			dispatch(sess, "RESUMED", {});
		}
	}

	function upgrade(req, socket, head, url) {
		if (url.pathname.replace(/\/$/, "") !== "/discord/gateway")
			return false;
		st.last_query = url.search;
		wss.handleUpgrade(req, socket, head, (ws) => {
			// The address this socket came to (the client's Host
			// header may leave the port out).
			const conn = { host: `${req.socket.localAddress}:` +
			    req.socket.localPort, sess: null };
			st.connections++;
			ws.on("message", (raw) => onFrame(ws, conn, raw));
			ws.on("close", () => {
				if (conn.sess && conn.sess.ws === ws) {
					conn.sess.ws = null;
					conn.sess.ready = false;
				}
			});
			ws.on("error", () => {});
			send(ws, { op: 10, d: { heartbeat_interval:
			    HEARTBEAT_MS }, s: null, t: null });
		});
		return true;
	}

	function filled(d) {
		const o = { type: 0, content: "", mentions: [], attachments: [],
		    embeds: [], tts: false, mention_everyone: false,
		    timestamp: new Date().toISOString(), ...d };
		if (!o.id) o.id = nextId();
		return o;
	}

	function control(req, res, url, body) {
		const p = url.pathname.replace(/^\/_fake\/discord/, "");
		let b = {};
		try { b = JSON.parse(body.toString() || "{}"); } catch { }
		const live = current && current.ws;
		if (p === "/token") {
			token = b.bot;
			return ctx.json(res, 200, { ok: true }), true;
		}
		if (p === "/messages")
			return ctx.json(res, 200, messages), true;
		if (p === "/gateway/state")
			return ctx.json(res, 200, { ...st, open:
			    [...wss.clients].filter((w) => w.readyState === 1)
			    .length,
			    seq: current?.seq ?? 0, session_id:
			    current?.id ?? null }), true;
		if (p === "/gateway/dispatch") {
			if (!current)
				return ctx.json(res, 409, { error:
				    "no session" }), true;
			const t = b.t || "MESSAGE_CREATE";
			const d = t === "MESSAGE_CREATE" ? filled(b.d) : b.d;
			const s = dispatch(current, t, d);
			return ctx.json(res, 200, { s, id: d.id }), true;
		}
		if (p === "/gateway/acks") {
			acks = b.on !== false;
			return ctx.json(res, 200, { ok: true }), true;
		}
		if (p === "/gateway/drop") {
			for (const w of wss.clients) w.terminate();
			return ctx.json(res, 200, { ok: true }), true;
		}
		if (p === "/gateway/reconnect" && live) {
			send(current.ws, { op: 7, d: null });
			return ctx.json(res, 200, { ok: true }), true;
		}
		if (p === "/gateway/invalidate" && live) {
			if (!b.resumable) sessions.delete(current.id);
			send(current.ws, { op: 9, d: !!b.resumable });
			return ctx.json(res, 200, { ok: true }), true;
		}
		if (p === "/gateway/close" && live) {
			current.ws.close(b.code || 4000, b.reason || "");
			return ctx.json(res, 200, { ok: true }), true;
		}
		return false;
	}

	function reset() {
		messages.length = 0;
		nonces.clear();
	}

	return { http, upgrade, control, reset };
}
