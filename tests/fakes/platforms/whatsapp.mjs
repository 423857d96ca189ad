// SPDX-License-Identifier: MIT
// The WhatsApp Cloud API (Graph API) as pincer's whatsapp channel calls
// it, under /whatsapp/ (a channel's api_base is $PLAT/whatsapp):
//
//   POST /whatsapp/VERSION/PHONE_ID/messages   text, image, document…
//        and {"status":"read", "message_id", "typing_indicator"}
//   POST /whatsapp/VERSION/PHONE_ID/media      multipart upload → {id}
//   GET  /whatsapp/VERSION/MEDIA_ID            → {url, mime_type, sha256,
//        file_size, id, messaging_product}
//   GET  /whatsapp/media-file/MEDIA_ID         the bytes (Bearer too)
//
// A call answered with success records its answer (call.answer: the
// message or media id given). Every call needs "Authorization: Bearer TOKEN" (else Graph's 190
// OAuthException). Errors are Graph's {"error": {message, type, code,
// error_subcode, fbtrace_id}}. Scripted faults (POST /_fake/script
// {"platform": "whatsapp", ...}), one per coming call; read receipts
// (best effort, sent while a turn runs) take none, so a script lines up
// with the replies:
//   "429=S"   HTTP 429, Retry-After S, code 130429 (throughput)
//   "131056"  HTTP 400, pair rate limit;  "131047" 24-hour window closed
//   "500"     HTTP 500, code 1;  "503" code 2;  "hang";  "drop"
//
// Controls:
//   POST /_fake/whatsapp/token {"token"}   the one token taken
//                                          (default "fake-wa-token")
//   POST /_fake/whatsapp/media {"id", "mime", "base64" | "text"}
//        a media a test's webhook refers to (an inbound file)
import crypto from "node:crypto";

const DEFAULT_TOKEN = "fake-wa-token";
const MAX_TEXT = 4096;

export default function create(ctx) {
	let token = DEFAULT_TOKEN;
	let seq = 0;
	const media = new Map();	// id → {mime, data: Buffer}

	const trace = () => crypto.randomBytes(8).toString("base64url");
	const graphError = (res, status, code, message, extra = {},
	    headers = {}) => ctx.json(res, status, { error: { message,
	    type: "OAuthException", code, ...extra, fbtrace_id: trace() } },
	    headers);
	const badParam = (res, message) => graphError(res, 400, 100,
	    `(#100) ${message}`);
	const wamid = () => "wamid.HBgL" + Buffer.from(`fake-${++seq}-` +
	    crypto.randomBytes(6).toString("hex")).toString("base64");

	// A scripted fault: true when the answer is sent.
	function fault(res, f) {
		if (!f) return false;
		if (f.startsWith("429")) {
			graphError(res, 429, 130429, "(#130429) Rate limit hit",
			    { error_data: { messaging_product: "whatsapp",
			    details: "Cloud API message throughput has been "
			    + "reached." } },
			    { "retry-after": f.split("=")[1] || "1" });
		} else if (f === "131056") {
			graphError(res, 400, 131056, "(#131056) (Business "
			    + "Account, Consumer Account) pair rate limit hit",
			    { error_data: { messaging_product: "whatsapp",
			    details: "Message failed to send because there "
			    + "were too many messages sent from this phone "
			    + "number to the same phone number in a short "
			    + "period of time." } });
		} else if (f === "131047") {
			graphError(res, 400, 131047, "Re-engagement message",
			    { error_data: { messaging_product: "whatsapp",
			    details: "Message failed to send because more than "
			    + "24 hours have passed since the customer last "
			    + "replied to this number." } });
		} else if (f === "500") {
			graphError(res, 500, 1, "An unknown error has occurred.",
			    { error_subcode: 99 });
		} else if (f === "503") {
			graphError(res, 503, 2, "Service temporarily unavailable");
		} else if (f === "hang") {
			// never answered
		} else if (f === "drop") {
			res.socket.destroy();
		} else {
			return false;
		}
		return true;
	}

	function authorized(req, res) {
		const h = req.headers.authorization || "";
		if (h === `Bearer ${token}`) return true;
		graphError(res, 401, 190, h.startsWith("Bearer ") ?
		    "Invalid OAuth access token - Cannot parse access token" :
		    "An active access token must be used to query information "
		    + "about the current user.");
		return false;
	}

	function message(req, res, body, call) {
		let m;
		try { m = JSON.parse(body.toString()); } catch {
			return badParam(res, "Invalid JSON in the request body");
		}
		if (m.messaging_product !== "whatsapp")
			return badParam(res, "The parameter messaging_product "
			    + "is required.");
		if (m.status === "read") {
			if (typeof m.message_id !== "string")
				return badParam(res, "The parameter message_id "
				    + "is required.");
			return ctx.json(res, 200, { success: true });
		}
		if (typeof m.to !== "string" || !m.to)
			return badParam(res, "The parameter to is required.");
		const type = m.type || "text";
		const it = m[type];
		if (!it || typeof it !== "object")
			return badParam(res, `Param ${type} is required.`);
		if (type === "text") {
			if (typeof it.body !== "string" || !it.body)
				return badParam(res, "Param text['body'] is "
				    + "required.");
			if ([...it.body].length > MAX_TEXT)
				return badParam(res, "Param text['body'] must be "
				    + `at most ${MAX_TEXT} characters long.`);
		} else if (["image", "document", "audio", "video",
		    "sticker"].includes(type)) {
			if (!it.id && !it.link)
				return badParam(res, `Param ${type}['id'] or `
				    + `${type}['link'] is required.`);
			if (it.id && !media.has(it.id))
				return graphError(res, 400, 131053,
				    "Media upload error", { error_data: {
				    messaging_product: "whatsapp", details:
				    `Unknown media id ${it.id}` } });
		} else {
			return badParam(res, `Param type must be one of `
			    + "{text, image, document, audio, video, sticker}");
		}
		call.answer = { messaging_product: "whatsapp",
		    contacts: [{ input: m.to, wa_id: m.to }],
		    messages: [{ id: wamid() }] };
		ctx.json(res, 200, call.answer);
	}

	function upload(req, res, call) {
		const f = call.multipart || {};
		if (f.messaging_product !== "whatsapp")
			return badParam(res, "The parameter messaging_product "
			    + "is required.");
		if (!f.file || typeof f.file !== "object")
			return badParam(res, "The parameter file is required.");
		const id = String(1000000000000000 + ++seq);
		media.set(id, { mime: f.type || f.file.mime,
		    data: Buffer.from(f.file.text), name: f.file.filename });
		call.answer = { id };
		ctx.json(res, 200, call.answer);
	}

	function mediaInfo(req, res, id) {
		const m = media.get(id);
		if (!m)
			return badParam(res, "Unsupported get request. Object "
			    + `with ID '${id}' does not exist, cannot be loaded `
			    + "due to missing permissions, or does not support "
			    + "this operation.");
		ctx.json(res, 200, {
			url: `http://${req.headers.host}/whatsapp/media-file/`
			    + id,
			mime_type: m.mime,
			sha256: crypto.createHash("sha256").update(m.data)
			    .digest("hex"),
			file_size: m.data.length,
			id,
			messaging_product: "whatsapp",
		});
	}

	return {
		http(req, res, url, body) {
			const call = ctx.record("whatsapp", req, url, body);
			const p = url.pathname.split("/").slice(2);
			const read = call.json?.status === "read";
			if (!read && fault(res, ctx.fault("whatsapp")))
				return true;
			if (!authorized(req, res)) return true;
			if (p[0] === "media-file" && p.length === 2 &&
			    req.method === "GET") {
				const m = media.get(p[1]);
				if (!m) return ctx.json(res, 404,
				    { error: "not found" }), true;
				res.writeHead(200, { "content-type": m.mime,
				    "content-length": m.data.length });
				res.end(m.data);
				return true;
			}
			if (!/^v\d+\.\d+$/.test(p[0] || "")) {
				badParam(res, "Unknown path components");
				return true;
			}
			if (p.length === 3 && p[2] === "messages" &&
			    req.method === "POST")
				message(req, res, body, call);
			else if (p.length === 3 && p[2] === "media" &&
			    req.method === "POST")
				upload(req, res, call);
			else if (p.length === 2 && req.method === "GET")
				mediaInfo(req, res, p[1]);
			else
				badParam(res, "Unknown path components");
			return true;
		},
		control(req, res, url, body) {
			const what = url.pathname.split("/")[3];
			const j = body.length ? JSON.parse(body.toString()) : {};
			if (what === "token") {
				token = j.token || DEFAULT_TOKEN;
			} else if (what === "media") {
				media.set(String(j.id), { mime: j.mime ||
				    "application/octet-stream", data: j.base64 ?
				    Buffer.from(j.base64, "base64") :
				    Buffer.from(j.text || "") });
			} else {
				return false;
			}
			ctx.json(res, 200, { ok: true });
			return true;
		},
		reset() {
			token = DEFAULT_TOKEN;
			media.clear();
		},
	};
}
