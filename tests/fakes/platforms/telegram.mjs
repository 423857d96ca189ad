// SPDX-License-Identifier: MIT
// Telegram's Bot API as pincer's telegram channel calls it, under
// /telegram/ (a channel's api_base is $PLAT/telegram):
//
//   /telegram/bot<TOKEN>/<method>        getMe, sendMessage, sendPhoto,
//        editMessageText, sendDocument, sendChatAction, getFile, getUpdates, setWebhook,
//        deleteWebhook, getWebhookInfo; parameters in the query string,
//        a JSON or urlencoded body, or multipart/form-data (as Telegram)
//   /telegram/file/bot<TOKEN>/<file_path>  a file's bytes (after getFile)
//
// Answers are Telegram's {"ok": true, "result": …} or {"ok": false,
// "error_code", "description"[, "parameters": {"retry_after"}]} with the
// same HTTP status; a wrong token is 401 Unauthorized, an unknown method
// 404 Not Found. sendMessage checks what Telegram checks: chat_id and a
// text, HTML parse mode (an unknown tag or a bare "<" is "can't parse
// entities"), and at most 4096 characters after entity parsing (UTF-16
// units, as JavaScript counts); its result carries the parsed text.
//
// getUpdates is a long poll: it answers the queued updates from offset
// on (an offset confirms every update below it), or holds the request
// until one is queued or `timeout` seconds pass. A second getUpdates
// while one is held ends the held one with 409 Conflict ("terminated by
// other getUpdates request", as Telegram does); with a webhook set it is
// 409 too ("can't use getUpdates method while webhook is active"), and
// setWebhook ends a held poll so.
//
// Scripted faults (POST /_fake/script {"platform": "telegram", faults}),
// one per coming send (sendMessage, sendPhoto, sendDocument: other
// calls are best effort or polls, and take none, so a script lines up
// with the replies):
//   "429=S"  429 {"description": "Too Many Requests: retry after S",
//            "parameters": {"retry_after": S}} (no Retry-After header:
//            Telegram's clients read the JSON)
//   "500"    500 Internal Server Error;  "502" Bad Gateway
//   "400"    400 Bad Request: chat not found
//   "403"    403 Forbidden: bot was blocked by the user
//   "hang"   never answered;  "drop" the socket destroyed
//
// Controls:
//   POST /_fake/telegram/config {token, id, username}  the bot (default
//        token "123456:fake-telegram-token", id 7000001, pincer_bot)
//   POST /_fake/telegram/updates [update, …]  queued for getUpdates
//        (update_id given, or the next one)
//   POST /_fake/telegram/poll-faults ["409", "500", "drop", …]  one per
//        coming getUpdates
//   POST /_fake/telegram/files [{file_id, file_path, text | base64}]
//        files getFile knows (an inbound attachment)
//   GET  /_fake/telegram/state  {queued, confirmed, webhook, held}
// Each recorded call also has `api` (the method) and `params`.

const DEFAULT = { token: "123456:fake-telegram-token", id: 7000001,
	username: "pincer_bot" };
const MAX_TEXT = 4096;
const MAX_CAPTION = 1024;
const HTML_TAGS = new Set(["b", "strong", "i", "em", "u", "ins", "s",
	"strike", "del", "span", "tg-spoiler", "a", "code", "pre",
	"blockquote", "tg-emoji"]);
const ACTIONS = new Set(["typing", "upload_photo", "record_video",
	"upload_video", "record_voice", "upload_voice", "upload_document",
	"choose_sticker", "find_location", "record_video_note",
	"upload_video_note"]);

export default function create(ctx) {
	let bot = { ...DEFAULT };
	let updates = [];		// queued, not yet confirmed
	let nextUpdate = 1;
	let confirmed = 0;		// the highest offset a poll gave
	let held = null;		// {res, timer, offset, limit}
	let webhook = null;
	let pollFaults = [];
	let nextMessage = new Map();	// chat id → last message_id
	const files = new Map();	// file_id → {file_path, data}

	const ok = (res, result) => ctx.json(res, 200, { ok: true, result });
	const fail = (res, code, description, parameters) => ctx.json(res,
	    code, { ok: false, error_code: code, description,
	    ...(parameters ? { parameters } : {}) });
	const badRequest = (res, what) => fail(res, 400, `Bad Request: ${what}`);

	function params(call) {
		const p = { ...call.query };
		if (call.json && typeof call.json === "object")
			Object.assign(p, call.json);
		for (const [k, v] of Object.entries(call.multipart || {}))
			p[k] = v;
		return p;
	}

	// Telegram's HTML parse mode: the text as the user sees it, or an
	// error like Telegram's "can't parse entities".
	function parseHtml(s) {
		let out = "";
		const open = [];
		for (let i = 0; i < s.length; ) {
			const c = s[i];
			if (c === "<") {
				const m = /^<(\/?)([a-z-]*)((?:\s[^<>]*)?)>/i
				    .exec(s.slice(i));
				const at = Buffer.byteLength(s.slice(0, i));
				if (!m || !m[2] && !m[1])
					return { error: "can't parse entities: "
					    + `Unsupported start tag "" at byte `
					    + `offset ${at}` };
				const tag = m[2].toLowerCase();
				if (!HTML_TAGS.has(tag))
					return { error: "can't parse entities: "
					    + `Unsupported start tag "${tag}" at `
					    + `byte offset ${at}` };
				if (m[1]) {
					if (open.pop() !== tag)
						return { error: "can't parse "
						    + "entities: Unmatched end "
						    + `tag at byte offset ${at}` };
				} else
					open.push(tag);
				i += m[0].length;
			} else if (c === "&") {
				const m = /^&(lt|gt|amp|quot|#\d+|#x[0-9a-f]+);/i
				    .exec(s.slice(i));
				if (!m) { out += c; i++; continue; }
				const e = m[1].toLowerCase();
				out += e === "lt" ? "<" : e === "gt" ? ">" :
				    e === "amp" ? "&" : e === "quot" ? '"' :
				    String.fromCodePoint(e[1] === "x" ?
				    parseInt(e.slice(2), 16) :
				    parseInt(e.slice(1), 10));
				i += m[0].length;
			} else {
				out += c;
				i++;
			}
		}
		if (open.length)
			return { error: "can't parse entities: Can't find end "
			    + `tag corresponding to start tag "${open.pop()}"` };
		return { text: out };
	}

	// The text a method shows: parsed if parse_mode says HTML.
	function shown(res, raw, mode, max, what) {
		let text = raw ?? "";
		if (mode && String(mode).toUpperCase() === "HTML") {
			const r = parseHtml(text);
			if (r.error) return badRequest(res, r.error), null;
			text = r.text;
		}
		if (text.length > max)
			return badRequest(res, `${what} is too long`), null;
		return text;
	}

	function chatOf(res, p) {
		const id = p.chat_id;
		if (id === undefined || id === "")
			return badRequest(res, "chat_id is empty"), null;
		if (!/^-?\d+$/.test(String(id)))
			return badRequest(res, "chat not found"), null;
		return Number(id);
	}

	function message(chatId, p, extra) {
		const n = (nextMessage.get(chatId) || 99) + 1;
		nextMessage.set(chatId, n);
		const m = { message_id: n, from: { id: bot.id, is_bot: true,
		    first_name: "Pincer", username: bot.username },
		    chat: chatId < 0 ? { id: chatId, title: "Group",
		    type: "supergroup" } : { id: chatId, first_name: "User",
		    type: "private" }, date: Math.floor(Date.now() / 1000),
		    ...extra };
		if (p.message_thread_id !== undefined) {
			m.message_thread_id = Number(p.message_thread_id);
			m.is_topic_message = true;
		}
		let rp = p.reply_parameters;
		if (typeof rp === "string")
			try { rp = JSON.parse(rp); } catch { rp = null; }
		if (rp && rp.message_id !== undefined)
			m.reply_to_message = { message_id: Number(rp.message_id),
			    chat: m.chat, date: m.date };
		return m;
	}

	// A scripted fault for a send: true when the answer is given.
	function fault(res, f) {
		if (!f) return false;
		if (f.startsWith("429")) {
			const s = Number(f.split("=")[1] || "1");
			fail(res, 429, `Too Many Requests: retry after ${s}`,
			    { retry_after: s });
		} else if (f === "500")
			fail(res, 500, "Internal Server Error");
		else if (f === "502")
			fail(res, 502, "Bad Gateway");
		else if (f === "400")
			badRequest(res, "chat not found");
		else if (f === "403")
			fail(res, 403, "Forbidden: bot was blocked by the user");
		else if (f === "409")
			fail(res, 409, "Conflict: terminated by other "
			    + "getUpdates request; make sure that only one bot "
			    + "instance is running");
		else if (f === "drop")
			res.socket.destroy();
		else if (f !== "hang")
			return false;
		return true;
	}

	function sendMessage(res, p) {
		const chat = chatOf(res, p);
		if (chat === null) return;
		if (p.text === undefined || String(p.text).trim() === "")
			return badRequest(res, "message text is empty");
		const text = shown(res, String(p.text), p.parse_mode, MAX_TEXT,
		    "message");
		if (text === null) return;
		ok(res, message(chat, p, { text }));
	}

	function sendFile(res, p, field) {
		const chat = chatOf(res, p);
		if (chat === null) return;
		const f = p[field];
		if (!f || typeof f !== "object")
			return badRequest(res, `there is no ${field} in the `
			    + "request");
		const caption = p.caption === undefined ? undefined :
		    shown(res, String(p.caption), p.parse_mode, MAX_CAPTION,
		    "message caption");
		if (caption === null) return;
		const id = `AgAC${field}${Date.now().toString(36)}`;
		const extra = field === "photo" ? { photo: [{ file_id: id,
		    file_unique_id: id.slice(-8), width: 90, height: 90,
		    file_size: f.size }] } : { document: { file_id: id,
		    file_unique_id: id.slice(-8), file_name: f.filename,
		    mime_type: f.mime, file_size: f.size } };
		if (caption !== undefined) extra.caption = caption;
		ok(res, message(chat, p, extra));
	}

	// Updates from offset on; an offset confirms those below it.
	function pending(offset, limit) {
		if (offset > 0) {
			updates = updates.filter((u) => u.update_id >= offset);
			confirmed = Math.max(confirmed, offset);
		}
		return updates.slice(0, limit);
	}

	function answerHeld() {
		if (!held) return;
		const list = pending(held.offset, held.limit);
		if (!list.length) return;
		const h = held;
		held = null;
		clearTimeout(h.timer);
		ok(h.res, list);
	}

	function getUpdates(res, p) {
		const f = pollFaults.shift();
		if (f && fault(res, f)) return;
		if (webhook)
			return fail(res, 409, "Conflict: can't use getUpdates "
			    + "method while webhook is active; use "
			    + "deleteWebhook to delete the webhook first");
		if (held) {
			const h = held;
			held = null;
			clearTimeout(h.timer);
			fail(h.res, 409, "Conflict: terminated by other "
			    + "getUpdates request; make sure that only one bot "
			    + "instance is running");
		}
		const offset = Number(p.offset || 0);
		const limit = Math.min(Math.max(Number(p.limit || 100), 1), 100);
		const timeout = Math.max(Number(p.timeout || 0), 0);
		const list = pending(offset, limit);
		if (list.length || timeout === 0) return ok(res, list);
		const h = { res, offset, limit };
		h.timer = setTimeout(() => {
			if (held === h) held = null;
			ok(res, []);
		}, timeout * 1000);
		res.on("close", () => {
			if (held === h) {
				clearTimeout(h.timer);
				held = null;
			}
		});
		held = h;
	}

	function getFile(res, p) {
		const f = files.get(String(p.file_id || ""));
		if (!f) return badRequest(res, "invalid file_id");
		ok(res, { file_id: p.file_id, file_unique_id:
		    String(p.file_id).slice(-8), file_size: f.data.length,
		    file_path: f.file_path });
	}

	const methods = {
		getMe: (res) => ok(res, { id: bot.id, is_bot: true,
		    first_name: "Pincer", username: bot.username,
		    can_join_groups: true, can_read_all_group_messages: false,
		    supports_inline_queries: false }),
		sendMessage,
		// editMessageText: a message of the bot's, in that chat.
		editMessageText: (res, p) => {
			const chat = chatOf(res, p);
			if (chat === null) return;
			if (!Number.isInteger(Number(p.message_id)))
				return badRequest(res, "message to edit not "
				    + "found");
			if (p.text === undefined || String(p.text).trim() === "")
				return badRequest(res, "message text is empty");
			const text = shown(res, String(p.text), p.parse_mode,
			    MAX_TEXT, "message");
			if (text === null) return;
			ok(res, { ...message(chat, p, { text }),
			    message_id: Number(p.message_id),
			    edit_date: Math.floor(Date.now() / 1000) });
		},
		sendPhoto: (res, p) => sendFile(res, p, "photo"),
		sendDocument: (res, p) => sendFile(res, p, "document"),
		sendChatAction: (res, p) => {
			if (chatOf(res, p) === null) return;
			if (!ACTIONS.has(p.action))
				return badRequest(res, "wrong parameter action "
				    + "in request");
			ok(res, true);
		},
		getFile,
		getUpdates,
		setWebhook: (res, p) => {
			webhook = { url: p.url, secret_token: p.secret_token };
			if (held) {
				const h = held;
				held = null;
				clearTimeout(h.timer);
				fail(h.res, 409, "Conflict: can't use getUpdates "
				    + "method while webhook is active; use "
				    + "deleteWebhook to delete the webhook first");
			}
			ctx.json(res, 200, { ok: true, result: true,
			    description: "Webhook was set" });
		},
		deleteWebhook: (res) => {
			const was = webhook;
			webhook = null;
			ctx.json(res, 200, { ok: true, result: true,
			    description: was ? "Webhook was deleted" :
			    "Webhook is already deleted" });
		},
		getWebhookInfo: (res) => ok(res, { url: webhook?.url || "",
		    has_custom_certificate: false,
		    pending_update_count: updates.length }),
	};
	const SENDS = new Set(["sendMessage", "sendPhoto", "sendDocument"]);

	function api(req, res, url, body) {
		const m = /^\/telegram\/bot([^/]*)\/([A-Za-z]+)$/
		    .exec(url.pathname);
		const call = ctx.record("telegram", req, url, body);
		call.api = m ? m[2] : null;
		if (!m || m[1] !== bot.token)
			return fail(res, m ? 401 : 404, m ? "Unauthorized" :
			    "Not Found");
		const p = params(call);
		call.params = p;
		if (SENDS.has(m[2]) && fault(res, ctx.fault("telegram")))
			return;
		const fn = Object.entries(methods).find(([k]) =>
		    k.toLowerCase() === m[2].toLowerCase());
		if (!fn) return fail(res, 404, "Not Found");
		fn[1](res, p);
	}

	function file(req, res, url, body) {
		const m = /^\/telegram\/file\/bot([^/]*)\/(.+)$/
		    .exec(url.pathname);
		const call = ctx.record("telegram", req, url, body);
		call.api = "file";
		const f = m && m[1] === bot.token &&
		    [...files.values()].find((x) => x.file_path === m[2]);
		if (!f) return fail(res, 404, "Not Found");
		res.writeHead(200, { "content-type":
		    "application/octet-stream", "content-length":
		    f.data.length });
		res.end(f.data);
	}

	return {
		http(req, res, url, body) {
			if (url.pathname.startsWith("/telegram/file/"))
				file(req, res, url, body);
			else
				api(req, res, url, body);
			return true;
		},
		control(req, res, url, body) {
			const what = url.pathname.split("/")[3];
			const j = () => JSON.parse(body.toString() || "null");
			if (what === "config") {
				bot = { ...bot, ...j() };
			} else if (what === "updates") {
				for (const u of j()) {
					if (u.update_id === undefined)
						u.update_id = nextUpdate;
					nextUpdate = Math.max(nextUpdate,
					    u.update_id + 1);
					updates.push(u);
				}
				updates.sort((a, b) => a.update_id - b.update_id);
				answerHeld();
			} else if (what === "poll-faults") {
				pollFaults.push(...j());
			} else if (what === "files") {
				for (const f of j())
					files.set(f.file_id, { file_path:
					    f.file_path, data: f.base64 !==
					    undefined ? Buffer.from(f.base64,
					    "base64") : Buffer.from(f.text ||
					    "") });
			} else if (what === "state") {
				return ctx.json(res, 200, { queued: updates.map(
				    (u) => u.update_id), confirmed, webhook,
				    held: !!held }), true;
			} else
				return false;
			ctx.json(res, 200, { ok: true });
			return true;
		},
		reset() {
			bot = { ...DEFAULT };
			updates = [];
			nextUpdate = 1;
			confirmed = 0;
			if (held) {
				clearTimeout(held.timer);
				held.res.destroy();
				held = null;
			}
			webhook = null;
			pollFaults = [];
			nextMessage = new Map();
			files.clear();
		},
	};
}
