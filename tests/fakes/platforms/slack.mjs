// SPDX-License-Identifier: MIT
// Slack's Web API and Socket Mode as pincer's slack channel calls them,
// under /slack/ (a channel's api_base is $PLAT/slack/api):
//
//   POST /slack/api/METHOD    auth.test, chat.postMessage, reactions.add,
//        reactions.remove, files.getUploadURLExternal,
//        files.completeUploadExternal, apps.connections.open; a JSON or
//        form-encoded body, "Authorization: Bearer TOKEN" (a bot token;
//        apps.connections.open takes the app token). Answers are
//        Slack's: HTTP 200 {"ok": true, …} or {"ok": false, "error"}
//        (not_authed, invalid_auth, not_allowed_token_type,
//        channel_not_found, no_text, msg_too_long, invalid_arguments,
//        already_reacted, no_reaction, file_not_found …).
//   POST /slack/upload/v1/TICKET     an upload URL files.getUploadURLExternal
//        gave: raw bytes or multipart; "OK - LENGTH"
//   GET  /slack/files-pri/TEAM-ID/NAME    a url_private (Bearer bot token)
//   GET  /slack/socket?ticket=T      Socket Mode's WebSocket (upgrade; a
//        ticket from apps.connections.open, good once)
//
// Scripted faults (POST /_fake/script {"platform": "slack", "faults"}),
// one per coming chat.postMessage, files.* call or upload (auth.test,
// reactions and apps.connections.open, sent on their own schedule, take
// none, so a script lines up with the replies):
//   "429=S"        HTTP 429, Retry-After S, {"ok":false,"error":"ratelimited"}
//   "ratelimited"  HTTP 200 {"ok":false,"error":"ratelimited"}
//   "500" / "503"  a server error;  "hang";  "drop"
//   "error=CODE"   HTTP 200 {"ok":false,"error":"CODE"}
// and per method (POST /_fake/slack/fault {"method", "faults": […]}),
// taken before the platform's script, e.g. for apps.connections.open.
//
// Controls:
//   POST /_fake/slack/tokens {"bot", "app"}   the tokens taken
//        (default "xoxb-fake-bot-token", "xapp-fake-app-token")
//   POST /_fake/slack/files {"name", "text", "mimetype"}   a file a
//        test's event refers to → the file object (id, url_private, …)
//   POST /_fake/slack/socket/send PAYLOAD   an event_callback (or
//        {"payload": …}) in an events_api envelope with a fresh
//        envelope_id, to the newest connection; kept and sent again
//        (retry_attempt + 1) on the next connection until acknowledged
//        → {"envelope_id", "sent"}
//   GET  /_fake/slack/socket/acks        [{envelope_id, at}] acknowledged
//   POST /_fake/slack/socket/drop        the connections cut (no close
//        frame: a network failure); ?clean=1: a close frame 1001
//   POST /_fake/slack/socket/refresh     {"type": "disconnect", "reason":
//        "refresh_requested"} to the newest connection (?reason=warning)
//   GET  /_fake/slack/socket/connections {"opened", "open"}
//   GET  /_fake/slack/messages  the messages posted (answered ok),
//        oldest first: [{channel, text, ts, thread_ts, user, bot_id…}]
//   GET  /_fake/slack/uploads            [{file_id, filename, length,
//        size, text, completed, channel_id, thread_ts, initial_comment}]
import crypto from "node:crypto";

const TEAM = "T0FAKETEAM";
const BOT_USER = "U0FAKEBOT";
const BOT_ID = "B0FAKEBOT";
const APP_ID = "A0FAKEAPP";
const MAX_TEXT = 40000;		// chat.postMessage: msg_too_long beyond
const FAULTED = new Set(["chat.postMessage", "files.getUploadURLExternal",
    "files.completeUploadExternal"]);

export default function create(ctx) {
	let bot = "xoxb-fake-bot-token";
	let app = "xapp-fake-app-token";
	let seq = 0;
	const methodFaults = new Map();	// method → [fault]
	const uploads = new Map();	// ticket → upload
	const files = new Map();	// path → {data, mimetype}
	const reactions = new Set();	// channel/ts/name
	const tickets = new Set();
	const sockets = [];		// open, oldest first
	let opened = 0;
	const acks = [];
	const posted = [];		// the messages chat.postMessage took
	const pending = new Map();	// envelope_id → envelope (unacked)
	const wss = new ctx.WebSocketServer({ noServer: true });

	const id = (p) => p + crypto.randomBytes(5).toString("hex")
	    .toUpperCase();
	const nextTs = () => `${Math.floor(Date.now() / 1000)}.` +
	    String(++seq).padStart(6, "0");
	const ok = (res, obj = {}) => ctx.json(res, 200, { ok: true, ...obj });
	const err = (res, error, extra = {}) => ctx.json(res, 200,
	    { ok: false, error, ...extra });

	function params(req, body) {
		const ct = req.headers["content-type"] || "";
		if (ct.startsWith("application/json")) {
			try { return JSON.parse(body.toString() || "{}"); }
			catch { return null; }
		}
		return Object.fromEntries(new URLSearchParams(body.toString()));
	}

	function bearer(req) {
		const m = /^Bearer (.+)$/.exec(req.headers.authorization || "");
		return m ? m[1] : null;
	}

	// A scripted fault: true when the answer is sent (or never will be).
	function fault(req, res, f) {
		if (!f) return false;
		if (f.startsWith("429")) {
			ctx.json(res, 429, { ok: false, error: "ratelimited" },
			    { "retry-after": f.split("=")[1] || "1" });
		} else if (f === "ratelimited") {
			err(res, "ratelimited");
		} else if (f === "500" || f === "503") {
			res.writeHead(Number(f),
			    { "content-type": "text/html" });
			res.end("<html><body>Slack is having trouble" +
			    "</body></html>");
		} else if (f === "hang") {
			// never answered
		} else if (f === "drop") {
			req.socket.destroy();
		} else if (f.startsWith("error=")) {
			err(res, f.slice(6));
		} else {
			return false;
		}
		return true;
	}

	function takeFault(method) {
		const list = methodFaults.get(method);
		if (list && list.length) return list.shift() || null;
		return FAULTED.has(method) ? ctx.fault("slack") : null;
	}

	const methods = {
		"auth.test": (p, res) => ok(res, { url:
		    "https://fake-team.slack.com/", team: "Fake Team",
		    user: "pincer", team_id: TEAM, user_id: BOT_USER,
		    bot_id: BOT_ID, is_enterprise_install: false }),

		"chat.postMessage": (p, res) => {
			if (!p.channel || !/^[CDG][A-Z0-9]+$/.test(p.channel))
				return err(res, "channel_not_found");
			if (typeof p.text !== "string" || p.text === "")
				return p.blocks ? null : err(res, "no_text");
			if (p.text.length > MAX_TEXT)
				return err(res, "msg_too_long");
			const ts = nextTs();
			const message = { user: BOT_USER, type: "message", ts,
			    bot_id: BOT_ID, app_id: APP_ID, text: p.text,
			    team: TEAM };
			if (p.thread_ts) {
				message.thread_ts = p.thread_ts;
				message.parent_user_id = "U0FAKEUSER";
			}
			posted.push({ channel: p.channel, ...message });
			return ok(res, { channel: p.channel, ts, message });
		},

		"reactions.add": (p, res) => {
			if (!p.channel || !p.timestamp || !p.name)
				return err(res, "invalid_arguments");
			const k = `${p.channel}/${p.timestamp}/${p.name}`;
			if (reactions.has(k))
				return err(res, "already_reacted");
			reactions.add(k);
			return ok(res);
		},

		"reactions.remove": (p, res) => {
			const k = `${p.channel}/${p.timestamp}/${p.name}`;
			if (!reactions.delete(k))
				return err(res, "no_reaction");
			return ok(res);
		},

		"files.getUploadURLExternal": (p, res, req) => {
			const length = Number(p.length);
			if (!p.filename || !Number.isInteger(length) ||
			    length < 1)
				return err(res, "invalid_arguments", {
				    response_metadata: { messages: ["[ERROR] "
				    + "missing required field: length"] } });
			const ticket = crypto.randomBytes(12).toString("hex");
			const file_id = id("F");
			uploads.set(ticket, { file_id, filename: p.filename,
			    length, size: null, text: null, completed: false });
			return ok(res, { upload_url:
			    `http://${req.headers.host}/slack/upload/v1/` +
			    ticket, file_id });
		},

		"files.completeUploadExternal": (p, res) => {
			let list;
			try { list = typeof p.files === "string" ?
			    JSON.parse(p.files) : p.files; } catch { }
			if (!Array.isArray(list) || list.length === 0)
				return err(res, "invalid_arguments");
			const out = [];
			for (const f of list) {
				const u = [...uploads.values()].find((x) =>
				    x.file_id === f.id);
				if (!u || u.size === null)
					return err(res, "file_not_found");
				if (p.channel_id && !/^[CDG][A-Z0-9]+$/.test(
				    p.channel_id))
					return err(res, "channel_not_found");
				Object.assign(u, { completed: true,
				    title: f.title ?? u.filename,
				    channel_id: p.channel_id ?? null,
				    thread_ts: p.thread_ts ?? null,
				    initial_comment: p.initial_comment ??
				    null });
				out.push({ id: u.file_id, created:
				    Math.floor(Date.now() / 1000),
				    name: u.filename, title: u.title,
				    mimetype: "text/plain", filetype: "text",
				    user: BOT_USER, size: u.size,
				    url_private: "https://files.slack.com/" +
				    `files-pri/${TEAM}-${u.file_id}/` +
				    u.filename });
			}
			return ok(res, { files: out });
		},
	};

	// Socket Mode (Slack's "Using Socket Mode"): envelopes, acks.
	function send(ws, env) {
		if (ws.readyState === 1) ws.send(JSON.stringify(env));
	}

	function onConnection(ws) {
		opened++;
		sockets.push(ws);
		ws.on("close", () => {
			const i = sockets.indexOf(ws);
			if (i !== -1) sockets.splice(i, 1);
		});
		ws.on("error", () => { });
		ws.on("message", (data) => {
			let m;
			try { m = JSON.parse(data.toString()); }
			catch { return; }
			if (m && typeof m.envelope_id === "string") {
				acks.push({ envelope_id: m.envelope_id,
				    at: Date.now() });
				pending.delete(m.envelope_id);
			}
		});
		send(ws, { type: "hello", num_connections: sockets.length,
		    debug_info: { host: "applink-fake", build_number: 1,
		    approximate_connection_time: 18060 },
		    connection_info: { app_id: APP_ID } });
		// What no connection acknowledged comes again (Slack retries).
		for (const env of pending.values()) {
			env.retry_attempt++;
			env.retry_reason = "timeout";
			send(ws, env);
		}
	}

	function socketControl(req, res, url, body) {
		const what = url.pathname.split("/")[4];
		if (what === "connections")
			return ctx.json(res, 200,
			    { opened, open: sockets.length });
		if (what === "acks") return ctx.json(res, 200, acks);
		if (what === "send") {
			let p;
			try { p = JSON.parse(body.toString()); }
			catch {
				return ctx.json(res, 400,
				    { error: "bad json" });
			}
			const env = { envelope_id: crypto.randomUUID(),
			    payload: p.payload ?? p, type: "events_api",
			    accepts_response_payload: false, retry_attempt: 0,
			    retry_reason: "" };
			pending.set(env.envelope_id, env);
			const ws = sockets[sockets.length - 1];
			if (ws) send(ws, env);
			return ctx.json(res, 200,
			    { envelope_id: env.envelope_id, sent: !!ws });
		}
		if (what === "drop") {
			const clean = url.searchParams.get("clean");
			for (const ws of [...sockets])
				clean ? ws.close(1001, "going away")
				    : ws.terminate();
			return ctx.json(res, 200, { ok: true });
		}
		if (what === "refresh") {
			const ws = sockets[sockets.length - 1];
			if (!ws)
				return ctx.json(res, 409,
				    { error: "no socket" });
			const reason = url.searchParams.get("reason") ||
			    "refresh_requested";
			send(ws, { type: "disconnect", reason,
			    debug_info: { host: "applink-fake" } });
			return ctx.json(res, 200, { ok: true });
		}
		return false;
	}

	return {
		http(req, res, url, body) {
			const parts = url.pathname.split("/");
			if (parts[2] === "api" && parts.length === 4)
				return api(req, res, url, body, parts[3]);
			if (parts[2] === "upload" && req.method === "POST")
				return upload(req, res, url, body, parts[4]);
			if (parts[2] === "files-pri")
				return download(req, res, url);
			return false;
		},

		upgrade(req, socket, head, url) {
			const t = url.searchParams.get("ticket");
			if (url.pathname !== "/slack/socket" ||
			    !tickets.delete(t))
				return false;
			wss.handleUpgrade(req, socket, head, onConnection);
			return true;
		},

		control(req, res, url, body) {
			const what = url.pathname.split("/")[3];
			const p = () => JSON.parse(body.toString() || "{}");
			if (what === "socket")
				return socketControl(req, res, url, body)
				    !== false;
			if (what === "tokens") {
				const t = p();
				bot = t.bot ?? bot;
				app = t.app ?? app;
				return ctx.json(res, 200, { ok: true }), true;
			}
			if (what === "fault") {
				const f = p();
				const list = methodFaults.get(f.method) || [];
				methodFaults.set(f.method,
				    [...list, ...f.faults]);
				return ctx.json(res, 200, { ok: true }), true;
			}
			if (what === "files") {
				const f = p();
				const fid = id("F");
				const path = `/slack/files-pri/${TEAM}-` +
				    `${fid}/${encodeURIComponent(f.name)}`;
				const data = Buffer.from(f.text ?? "");
				const mimetype = f.mimetype || "text/plain";
				const url = `http://${req.headers.host}${path}`;
				files.set(path, { data, mimetype });
				ctx.json(res, 200, { id: fid, name: f.name,
				    title: f.name, mimetype, filetype: "text",
				    size: data.length, url_private: url,
				    url_private_download: url, mode: "hosted",
				    is_external: false });
				return true;
			}
			if (what === "messages")
				return ctx.json(res, 200, posted), true;
			if (what === "uploads")
				return ctx.json(res, 200,
				    [...uploads.values()]), true;
			return false;
		},

		reset() {
			methodFaults.clear();
			uploads.clear();
			reactions.clear();
			acks.length = 0;
			posted.length = 0;
			pending.clear();
		},
	};

	function api(req, res, url, body, method) {
		ctx.record("slack", req, url, body);
		if (method === "apps.connections.open")
			return connectionsOpen(req, res);
		const m = Object.hasOwn(methods, method) ? methods[method]
		    : null;
		if (!m) return err(res, "unknown_method"), true;
		const tok = bearer(req);
		if (!tok) return err(res, "not_authed"), true;
		if (tok === app)
			return err(res, "not_allowed_token_type"), true;
		if (tok !== bot) return err(res, "invalid_auth"), true;
		if (fault(req, res, takeFault(method))) return true;
		const p = params(req, body);
		if (p === null) return err(res, "invalid_json"), true;
		m(p, res, req);
		return true;
	}

	function connectionsOpen(req, res) {
		const tok = bearer(req);
		if (!tok) return err(res, "not_authed"), true;
		if (tok === bot)
			return err(res, "not_allowed_token_type"), true;
		if (tok !== app) return err(res, "invalid_auth"), true;
		if (fault(req, res, takeFault("apps.connections.open")))
			return true;
		const t = crypto.randomBytes(16).toString("hex");
		tickets.add(t);
		return ok(res, { url: `ws://${req.headers.host}/slack/socket` +
		    `?ticket=${t}&app_id=${APP_ID}` }), true;
	}

	function upload(req, res, url, body, ticket) {
		ctx.record("slack", req, url, body);
		const u = uploads.get(ticket);
		if (!u) {
			res.writeHead(404, { "content-type": "text/plain" });
			res.end("Not Found");
			return true;
		}
		if (fault(req, res, takeFault("upload"))) return true;
		// Raw bytes, or a multipart form's one file.
		const ct = req.headers["content-type"] || "";
		let data = body;
		const bd = /boundary=(?:"([^"]+)"|([^;]+))/.exec(ct);
		if (ct.startsWith("multipart/") && bd) {
			const s = body.toString("latin1");
			const at = s.indexOf("\r\n\r\n");
			const end = s.indexOf("\r\n--" + (bd[1] || bd[2]), at);
			data = Buffer.from(s.slice(at + 4, end), "latin1");
		}
		u.size = data.length;
		u.text = data.toString();
		res.writeHead(200, { "content-type": "text/plain" });
		res.end(`OK - ${data.length}`);
		return true;
	}

	function download(req, res, url) {
		ctx.record("slack", req, url, Buffer.alloc(0));
		const f = files.get(url.pathname);
		// Slack answers a file without the right token with its
		// sign-in page, not an error status.
		if (bearer(req) !== bot) {
			res.writeHead(302, { location:
			    "https://fake-team.slack.com/?redir=" +
			    encodeURIComponent(url.pathname) });
			res.end();
			return true;
		}
		if (!f) {
			res.writeHead(404, { "content-type": "text/plain" });
			res.end("Not Found");
			return true;
		}
		res.writeHead(200, { "content-type": f.mimetype,
		    "content-length": f.data.length });
		res.end(f.data);
		return true;
	}
}
