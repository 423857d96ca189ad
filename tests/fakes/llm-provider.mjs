// SPDX-License-Identifier: MIT
// A fake LLM provider on loopback for tests: OpenAI Chat Completions,
// OpenAI Responses, Anthropic Messages, models and embeddings, in their
// real wire formats (JSON and SSE), with deterministic answers, API-key
// checks, fault injection and a record of every request.
//
//   node tests/fakes/llm-provider.mjs [--port 0] [--host 127.0.0.1] [--key SECRET]
//
// prints one line {"port":N} on stdout once listening; SIGTERM/SIGINT stop it.
// As a module: `const f = await startFake({ key })` → { port, url, close,
// requests, reset, script }.
//
// Content: the reply is "echo: " + the text of the last user message; a
// token is a whitespace-separated word (prompt = words of every message,
// system prompt and instructions included; completion = words of the reply,
// or of the tool-call arguments JSON). When the request offers tools (and
// tool_choice is not "none") and the last message is the user's own text,
// the answer is a call of the first tool (or the one tool_choice names)
// whose arguments put that text in the schema's first property
// ({"input": text} when the schema has none). After a tool result the
// answer is text again: "echo: <result>". max_tokens / max_completion_tokens
// / max_output_tokens below the reply's word count cut the reply to that
// many words (finish "length" / stop "max_tokens" / status "incomplete").
//
// Faults, per request by header `x-fake: a, b=1` or for the next requests
// by POST /_fake/script ["429", "", "slow-first-byte=200,cut-stream-after=3"]
// (one entry per request; the header wins over the script entry):
//   429[=S]            rate-limit error, Retry-After: S (default 1)
//   500 / 503 / 529    server error / unavailable / (Anthropic) overloaded
//   400 / 401 / 403    the provider's invalid-request / auth / permission error
//   slow-first-byte=MS wait MS before the status line
//   event-delay=MS     wait MS between SSE events
//   cut-stream-after=N destroy the socket after N SSE events
//   stream-error=T     after the first events, send the provider's in-stream
//                      error (T: overloaded|api_error|rate_limit|server_error)
//   hang               accept the request and never answer
// A script entry may also be an object that scripts the answer of a chat
// completion (an agent's turn, step by step): {"tool": NAME, "args": {…}}
// calls that tool, {"text": "…"} answers that text; "fake" adds faults.
// Control: GET /_fake/requests, POST /_fake/reset, GET|POST /_fake/script.
import http from "node:http";
import crypto from "node:crypto";
import { fileURLToPath } from "node:url";

const OPENAI_MODELS = ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "o3-mini",
	"text-embedding-3-small", "text-embedding-3-large"];
const ANTHROPIC_MODELS = [
	["claude-sonnet-4-20250514", "Claude Sonnet 4"],
	["claude-3-5-haiku-20241022", "Claude Haiku 3.5"],
];
const EMBED_DIM = 16;

export const words = (s) => {
	const t = String(s ?? "").trim();
	return t ? t.split(/\s+/) : [];
};
export const countTokens = (s) => words(s).length;

// "a, b=1" → [{name:"a"}, {name:"b", value:"1"}]
export function parseFake(spec) {
	if (spec == null) return [];
	const list = Array.isArray(spec) ? spec : String(spec).split(",");
	const out = [];
	for (const item of list) {
		if (item == null) continue;
		if (typeof item === "object") { out.push(...parseFake(item.fake ?? item.behaviour ?? "")); continue; }
		for (const part of String(item).split(",")) {
			const p = part.trim();
			if (!p) continue;
			const eq = p.indexOf("=");
			out.push(eq < 0 ? { name: p.toLowerCase() } :
				{ name: p.slice(0, eq).trim().toLowerCase(), value: p.slice(eq + 1).trim() });
		}
	}
	return out;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- text extraction ------------------------------------------------------

function partsText(content) {
	if (content == null) return "";
	if (typeof content === "string") return content;
	if (Array.isArray(content)) {
		return content.map((p) => {
			if (typeof p === "string") return p;
			if (!p || typeof p !== "object") return "";
			if (typeof p.text === "string") return p.text;
			if (p.type === "tool_result") return partsText(p.content);
			if (p.type === "tool_use") return JSON.stringify(p.input ?? {});
			return "";
		}).filter(Boolean).join(" ");
	}
	if (typeof content === "object" && typeof content.text === "string") return content.text;
	return "";
}

// Returns { prompt: all text, last: text to echo, toolTurn: last input is a tool result }
function openaiChatInput(body) {
	const msgs = Array.isArray(body.messages) ? body.messages : [];
	const all = [];
	for (const m of msgs) {
		all.push(partsText(m.content));
		for (const tc of m.tool_calls ?? []) all.push(tc.function?.arguments ?? "");
	}
	const lastMsg = msgs[msgs.length - 1];
	const toolTurn = lastMsg?.role === "tool" || lastMsg?.role === "function";
	let last = "";
	if (toolTurn) last = partsText(lastMsg.content);
	else for (let i = msgs.length - 1; i >= 0; i--)
		if (msgs[i].role === "user") { last = partsText(msgs[i].content); break; }
	return { prompt: all.join(" "), last, toolTurn };
}

function anthropicInput(body) {
	const msgs = Array.isArray(body.messages) ? body.messages : [];
	const all = [partsText(body.system)];
	for (const m of msgs) all.push(partsText(m.content));
	const lastMsg = msgs[msgs.length - 1];
	const blocks = Array.isArray(lastMsg?.content) ? lastMsg.content : [];
	const results = blocks.filter((b) => b?.type === "tool_result");
	const toolTurn = lastMsg?.role === "user" && results.length > 0;
	let last = "";
	if (toolTurn) last = results.map((b) => partsText(b.content)).join(" ");
	else for (let i = msgs.length - 1; i >= 0; i--)
		if (msgs[i].role === "user") { last = partsText(msgs[i].content); break; }
	return { prompt: all.join(" "), last, toolTurn };
}

function responsesInput(body) {
	const all = [partsText(body.instructions)];
	let last = "", toolTurn = false;
	if (typeof body.input === "string") {
		all.push(body.input);
		last = body.input;
	} else if (Array.isArray(body.input)) {
		for (const it of body.input) {
			if (it?.type === "function_call_output") all.push(partsText(it.output));
			else if (it?.type === "function_call") all.push(it.arguments ?? "");
			else all.push(partsText(it?.content));
		}
		const lastItem = body.input[body.input.length - 1];
		if (lastItem?.type === "function_call_output") {
			toolTurn = true;
			last = partsText(lastItem.output);
		} else {
			for (let i = body.input.length - 1; i >= 0; i--) {
				const it = body.input[i];
				if ((it?.role ?? "user") === "user" && (it?.type ?? "message") === "message") {
					last = partsText(it.content); break;
				}
			}
		}
	}
	return { prompt: all.join(" "), last, toolTurn };
}

// ---- tools ----------------------------------------------------------------

// FAKE_LLM_NO_TOOLS=1: tools offered are not called unless a script entry
// says so (an agent that simply answers "echo: TEXT": the channel tests).
const NO_TOOLS = process.env.FAKE_LLM_NO_TOOLS === "1";

function toolSchema(t) {
	// OpenAI chat: {type:"function", function:{name, parameters}}
	// OpenAI responses: {type:"function", name, parameters}
	// Anthropic: {name, input_schema}
	if (t?.function) return { name: t.function.name, schema: t.function.parameters };
	return { name: t?.name, schema: t?.parameters ?? t?.input_schema };
}

function pickTool(body, flavour) {
	const tools = Array.isArray(body.tools) ? body.tools : [];
	const usable = tools.map(toolSchema).filter((t) => typeof t.name === "string");
	if (!usable.length) return null;
	const tc = body.tool_choice;
	if (tc === "none" || tc?.type === "none") return null;
	let wanted = null;
	if (flavour === "anthropic" && tc?.type === "tool") wanted = tc.name;
	else if (tc?.type === "function") wanted = tc.function?.name ?? tc.name;
	return usable.find((t) => t.name === wanted) ?? usable[0];
}

function toolArgs(tool, text) {
	const props = tool.schema?.properties;
	const keys = props && typeof props === "object" ? Object.keys(props) : [];
	const req = Array.isArray(tool.schema?.required) ? tool.schema.required : [];
	const key = req.find((k) => keys.includes(k)) ?? keys[0] ?? "input";
	return { [key]: text };
}

// Split a string into pieces of at most n characters (tool arguments).
function pieces(s, n = 7) {
	const out = [];
	for (let i = 0; i < s.length; i += n) out.push(s.slice(i, i + n));
	return out.length ? out : [""];
}

// Split reply text into word deltas: "echo: a b" → ["echo:", " a", " b"].
function textDeltas(text) {
	const ws = text.split(/(?=\s)/);
	return ws.length ? ws : [""];
}

// Plan a turn: either { kind: "text", text, truncated } or { kind: "tool", tool, args }.
function plan(body, input, flavour, limit, turn) {
	if (turn && typeof turn.tool === "string") {
		const args = JSON.stringify(turn.args ?? {});
		return { kind: "tool", name: turn.tool, args, completion: countTokens(args) };
	}
	if (turn && typeof turn.text === "string")
		return { kind: "text", text: turn.text, truncated: false, completion: countTokens(turn.text) };
	const tool = input.toolTurn || NO_TOOLS ? null : pickTool(body, flavour);
	if (tool) {
		const args = JSON.stringify(toolArgs(tool, input.last));
		return { kind: "tool", name: tool.name, args, completion: countTokens(args) };
	}
	let text = `echo: ${input.last}`.trimEnd();
	let truncated = false;
	const ws = words(text);
	if (Number.isInteger(limit) && limit >= 0 && ws.length > limit) {
		text = ws.slice(0, limit).join(" ");
		truncated = true;
	}
	return { kind: "text", text, truncated, completion: countTokens(text) };
}

// ---- error bodies ---------------------------------------------------------

function openaiError(status, extra = {}) {
	const e = {
		400: ["Invalid request.", "invalid_request_error", null],
		401: ["Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.", "invalid_request_error", "invalid_api_key"],
		403: ["You are not allowed to sample from this model", "invalid_request_error", null],
		404: ["Not found.", "invalid_request_error", null],
		429: ["Rate limit reached for requests. Please try again in 1s. Visit https://platform.openai.com/account/rate-limits to learn more.", "requests", "rate_limit_exceeded"],
		500: ["The server had an error while processing your request. Sorry about that!", "server_error", null],
		503: ["The engine is currently overloaded, please try again later.", "server_error", null],
		529: ["The engine is currently overloaded, please try again later.", "server_error", null],
	}[status] ?? ["Error.", "server_error", null];
	return { error: { message: e[0], type: e[1], param: null, code: e[2], ...extra } };
}

function anthropicError(status, requestId, message) {
	const e = {
		400: ["invalid_request_error", "Invalid request."],
		401: ["authentication_error", "invalid x-api-key"],
		403: ["permission_error", "Your API key does not have permission to use the specified resource."],
		404: ["not_found_error", "Not found."],
		413: ["request_too_large", "Request exceeds the maximum allowed number of bytes."],
		429: ["rate_limit_error", "This request would exceed the rate limit for your organization. Please wait before trying again."],
		500: ["api_error", "Internal server error"],
		503: ["api_error", "Service unavailable"],
		529: ["overloaded_error", "Overloaded"],
	}[status] ?? ["api_error", "Internal server error"];
	return { type: "error", error: { type: e[0], message: message ?? e[1] }, request_id: requestId };
}

// ---- server ---------------------------------------------------------------

export async function startFake(opts = {}) {
	const key = opts.key ?? null;
	const host = opts.host ?? "127.0.0.1";
	const recorded = [];
	let script = [];
	let seq = 0;
	const sockets = new Set();
	const timers = new Set();

	const id = (prefix, n = 24) => prefix + crypto.createHash("sha256")
		.update(`${prefix}${seq}`).digest("hex").slice(0, n);
	const later = (ms) => new Promise((r) => {
		const t = setTimeout(() => { timers.delete(t); r(); }, ms);
		timers.add(t);
	});

	const server = http.createServer((req, res) => {
		const chunks = [];
		req.on("data", (c) => chunks.push(c));
		req.on("end", () => {
			handle(req, res, Buffer.concat(chunks)).catch((err) => {
				console.error("llm-provider fake:", err);
				if (!res.headersSent) {
					res.writeHead(500, { "content-type": "application/json" });
					res.end(JSON.stringify(openaiError(500, { fake_error: String(err?.stack ?? err) })));
				} else res.destroy();
			});
		});
	});
	server.on("connection", (s) => { sockets.add(s); s.on("close", () => sockets.delete(s)); });

	async function handle(req, res, raw) {
		const url = new URL(req.url, "http://fake");
		const path = url.pathname.replace(/\/+$/, "") || "/";

		// ---- control endpoints (not recorded, no faults) ----
		if (path.startsWith("/_fake/")) return control(req, res, path, raw);

		let body = null, bodyError = false;
		const text = raw.toString("utf8");
		if (text.length) {
			try { body = JSON.parse(text); } catch { body = text; bodyError = true; }
		}
		const rec = {
			seq: ++seq, time: new Date().toISOString(), method: req.method,
			path: req.url, headers: { ...req.headers }, body,
			fake: [], status: null, stream: false, events: 0,
			completed: false, aborted: false, cut: false,
		};
		recorded.push(rec);
		const scripted = script.length ? script.shift() : null;
		const headerFake = req.headers["x-fake"];
		const turn = scripted && typeof scripted === "object" && !Array.isArray(scripted) ? scripted : null;
		const faults = parseFake(headerFake != null ? headerFake : turn ? turn.fake : scripted);
		rec.fake = faults.map((f) => f.value == null ? f.name : `${f.name}=${f.value}`);
		const fault = (n) => faults.find((f) => f.name === n);
		const streamError = fault("stream-error");

		res.on("close", () => {
			if (!res.writableFinished && !rec.cut) rec.aborted = true;
		});

		const anthropic = path === "/v1/messages" || path === "/v1/messages/count_tokens" ||
			(path === "/v1/models" && req.headers["anthropic-version"] != null);
		const requestId = id("req_", 24);
		const baseHeaders = anthropic ? { "request-id": requestId } :
			{ "x-request-id": requestId, "openai-processing-ms": "1", "openai-version": "2020-10-01" };

		let headersWritten = false;
		const writeHead = async (status, headers) => {
			const slow = fault("slow-first-byte");
			if (slow) await later(Number(slow.value) || 0);
			if (res.destroyed) return false;
			rec.status = status;
			res.writeHead(status, { ...baseHeaders, ...headers });
			headersWritten = true;
			return true;
		};
		const sendJSON = async (status, obj, headers = {}) => {
			if (!await writeHead(status, { "content-type": "application/json", ...headers })) return;
			res.end(JSON.stringify(obj));
			rec.completed = true;
		};
		const sendError = (status, message, headers = {}) => {
			if (anthropic) return sendJSON(status, anthropicError(status, requestId, message),
				{ "x-should-retry": String(status === 429 || status >= 500), ...headers });
			const b = openaiError(status);
			if (message) b.error.message = message;
			return sendJSON(status, b, headers);
		};

		// ---- hang ----
		if (fault("hang")) {
			rec.status = 0;
			return; // the socket stays open until the client gives up or close()
		}

		// ---- auth ----
		if (anthropic) {
			const k = req.headers["x-api-key"];
			if (key != null && k == null && !req.headers.authorization)
				return sendError(401, "x-api-key header is required");
			if (key != null && k !== key &&
				req.headers.authorization !== `Bearer ${key}`)
				return sendError(401, "invalid x-api-key");
			if (req.headers["anthropic-version"] == null)
				return sendError(400, "anthropic-version: header is required");
		} else if (key != null) {
			const a = req.headers.authorization;
			if (!a) return sendError(401, "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.");
			const m = /^Bearer\s+(.*)$/i.exec(a);
			if (!m || m[1] !== key) {
				const given = m ? m[1] : a;
				const masked = given.length > 8 ? `${given.slice(0, 3)}*********${given.slice(-4)}` : given;
				return sendError(401, `Incorrect API key provided: ${masked}. You can find your API key at https://platform.openai.com/account/api-keys.`);
			}
		}

		// ---- injected status faults ----
		const r429 = fault("429");
		if (r429) {
			const after = String(Number(r429.value ?? fault("retry-after")?.value ?? 1) || 1);
			const h = anthropic ? {
				"retry-after": after,
				"anthropic-ratelimit-requests-limit": "50",
				"anthropic-ratelimit-requests-remaining": "0",
				"anthropic-ratelimit-requests-reset": new Date(Date.now() + after * 1000).toISOString(),
			} : {
				"retry-after": after,
				"x-ratelimit-limit-requests": "500",
				"x-ratelimit-remaining-requests": "0",
				"x-ratelimit-reset-requests": `${after}s`,
			};
			return sendError(429, anthropic ? undefined :
				`Rate limit reached for requests. Please try again in ${after}s. Visit https://platform.openai.com/account/rate-limits to learn more.`, h);
		}
		for (const s of [400, 401, 403, 500, 503, 529])
			if (fault(String(s))) return sendError(s);

		// ---- routing ----
		if (path === "/v1/models" && req.method === "GET") {
			if (anthropic) {
				const data = ANTHROPIC_MODELS.map(([id, name]) => ({
					type: "model", id, display_name: name, created_at: "2025-01-01T00:00:00Z" }));
				return sendJSON(200, { data, has_more: false, first_id: data[0].id, last_id: data[data.length - 1].id });
			}
			return sendJSON(200, { object: "list", data: OPENAI_MODELS.map((m) => ({
				id: m, object: "model", created: 1700000000, owned_by: "system" })) });
		}
		const mm = /^\/v1\/models\/(.+)$/.exec(path);
		if (mm && req.method === "GET" && !anthropic) {
			if (!OPENAI_MODELS.includes(mm[1]))
				return sendJSON(404, { error: { message: `The model '${mm[1]}' does not exist`, type: "invalid_request_error", param: "model", code: "model_not_found" } });
			return sendJSON(200, { id: mm[1], object: "model", created: 1700000000, owned_by: "system" });
		}
		const routes = {
			"/v1/chat/completions": chat, "/v1/responses": responses,
			"/v1/messages": messages, "/v1/embeddings": embeddings,
			"/v1/messages/count_tokens": countTokensRoute,
		};
		const fn = routes[path];
		if (!fn) {
			if (anthropic) return sendJSON(404, anthropicError(404, requestId, "Not found"));
			return sendJSON(404, { error: { message: `Invalid URL (${req.method} ${url.pathname})`, type: "invalid_request_error", param: null, code: null } });
		}
		if (req.method !== "POST") {
			if (anthropic) return sendJSON(405, anthropicError(405, requestId, "Method not allowed"));
			return sendJSON(405, { error: { message: `Invalid method for URL (${req.method} ${url.pathname})`, type: "invalid_request_error", param: null, code: null } });
		}
		if (bodyError || body == null || typeof body !== "object" || Array.isArray(body)) {
			if (anthropic) return sendError(400, "There was an error parsing the body of your request.");
			return sendJSON(400, { error: { message: "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)", type: "invalid_request_error", param: null, code: null } });
		}
		return fn();

		// ---- SSE ----
		async function sse() {
			rec.stream = true;
			const ok = await writeHead(200, {
				"content-type": "text/event-stream; charset=utf-8",
				"cache-control": "no-cache", connection: "keep-alive",
			});
			if (!ok) return null;
			const cut = fault("cut-stream-after");
			const cutAt = cut ? Number(cut.value) || 0 : Infinity;
			const delay = Number(fault("event-delay")?.value) || 0;
			const out = {
				dead: false,
				async send(event, data) {
					if (this.dead || res.destroyed) { this.dead = true; return false; }
					if (rec.events >= cutAt) {
						rec.cut = true; this.dead = true;
						res.socket?.destroy();
						return false;
					}
					if (delay && rec.events > 0) await later(delay);
					if (res.destroyed) { this.dead = true; return false; }
					const d = typeof data === "string" ? data : JSON.stringify(data);
					// Wait until the event is handed to the kernel, so that a cut
					// after it (socket.destroy) cannot discard it.
					await new Promise((r) => res.write(
						(event ? `event: ${event}\n` : "") + `data: ${d}\n\n`, () => r()));
					rec.events++;
					return true;
				},
				async end() {
					if (this.dead || res.destroyed) return;
					if (rec.events >= cutAt) { rec.cut = true; res.socket?.destroy(); return; }
					res.end();
					rec.completed = true;
				},
			};
			if (cutAt === 0) {
				res.flushHeaders();
				await new Promise((r) => setImmediate(r));
				rec.cut = true;
				res.socket?.destroy();
				return null;
			}
			return out;
		}
		// ---- /v1/chat/completions ----
		async function chat() {
			if (typeof body.model !== "string")
				return sendJSON(400, { error: { message: "you must provide a model parameter", type: "invalid_request_error", param: null, code: null } });
			if (!Array.isArray(body.messages))
				return sendJSON(400, { error: { message: "Missing required parameter: 'messages'.", type: "invalid_request_error", param: "messages", code: "missing_required_parameter" } });
			const input = openaiChatInput(body);
			const limit = body.max_completion_tokens ?? body.max_tokens;
			const p = plan(body, input, "openai", limit, turn);
			const prompt = countTokens(input.prompt);
			const usage = {
				prompt_tokens: prompt, completion_tokens: p.completion,
				total_tokens: prompt + p.completion,
				prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
				completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0,
					accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
			};
			const cid = id("chatcmpl-", 29);
			const created = Math.floor(Date.now() / 1000);
			const callId = id("call_", 24);
			const finish = p.kind === "tool" ? "tool_calls" : p.truncated ? "length" : "stop";
			const common = { id: cid, created, model: body.model,
				service_tier: "default", system_fingerprint: "fp_fake0001" };
			if (!body.stream) {
				const message = p.kind === "tool" ?
					{ role: "assistant", content: null, tool_calls: [{ id: callId, type: "function",
						function: { name: p.name, arguments: p.args } }], refusal: null, annotations: [] } :
					{ role: "assistant", content: p.text, refusal: null, annotations: [] };
				return sendJSON(200, { ...common, object: "chat.completion",
					choices: [{ index: 0, message, logprobs: null, finish_reason: finish }], usage });
			}
			const s = await sse(); if (!s) return;
			const incl = body.stream_options?.include_usage === true;
			const chunk = (delta, fr = null) => ({ ...common, object: "chat.completion.chunk",
				choices: [{ index: 0, delta, logprobs: null, finish_reason: fr }],
				...(incl ? { usage: null } : {}) });
			if (p.kind === "tool") {
				if (!await s.send(null, chunk({ role: "assistant", content: null,
					tool_calls: [{ index: 0, id: callId, type: "function",
						function: { name: p.name, arguments: "" } }], refusal: null }))) return;
				for (const a of pieces(p.args))
					if (!await s.send(null, chunk({ tool_calls: [{ index: 0, function: { arguments: a } }] }))) return;
			} else {
				if (!await s.send(null, chunk({ role: "assistant", content: "", refusal: null }))) return;
				for (const [i, t] of textDeltas(p.text).entries()) {
					if (!await s.send(null, chunk({ content: t }))) return;
					if (streamError && i === 0) {
						await s.send(null, openaiError(streamError.value === "rate_limit" ? 429 : 500));
						return s.end();
					}
				}
			}
			if (!await s.send(null, chunk({}, finish))) return;
			if (incl && !await s.send(null, { ...common, object: "chat.completion.chunk", choices: [], usage })) return;
			if (!await s.send(null, "[DONE]")) return;
			return s.end();
		}

		// ---- /v1/responses ----
		async function responses() {
			if (typeof body.model !== "string")
				return sendJSON(400, { error: { message: "Missing required parameter: 'model'.", type: "invalid_request_error", param: "model", code: "missing_required_parameter" } });
			const input = responsesInput(body);
			const limit = body.max_output_tokens;
			const p = plan(body, input, "openai", limit);
			const prompt = countTokens(input.prompt);
			const usage = { input_tokens: prompt, input_tokens_details: { cached_tokens: 0 },
				output_tokens: p.completion, output_tokens_details: { reasoning_tokens: 0 },
				total_tokens: prompt + p.completion };
			const rid = id("resp_", 48);
			const itemId = p.kind === "tool" ? id("fc_", 48) : id("msg_", 48);
			const callId = id("call_", 24);
			const incomplete = p.kind === "text" && p.truncated;
			const base = {
				id: rid, object: "response", created_at: Math.floor(Date.now() / 1000),
				status: "in_progress", background: false, error: null, incomplete_details: null,
				instructions: body.instructions ?? null, max_output_tokens: body.max_output_tokens ?? null,
				max_tool_calls: null, model: body.model, output: [],
				parallel_tool_calls: body.parallel_tool_calls ?? true,
				previous_response_id: body.previous_response_id ?? null,
				reasoning: { effort: null, summary: null }, service_tier: "default",
				store: body.store ?? true, temperature: body.temperature ?? 1.0,
				text: body.text ?? { format: { type: "text" }, verbosity: "medium" },
				tool_choice: body.tool_choice ?? "auto", tools: body.tools ?? [],
				top_logprobs: 0, top_p: body.top_p ?? 1.0, truncation: "disabled",
				usage: null, user: null, metadata: body.metadata ?? {},
			};
			const part = (text) => ({ type: "output_text", annotations: [], logprobs: [], text });
			const item = (status, text, args) => p.kind === "tool" ?
				{ id: itemId, type: "function_call", status, arguments: args, call_id: callId, name: p.name } :
				{ id: itemId, type: "message", status, content: text == null ? [] : [part(text)], role: "assistant" };
			const done = { ...base,
				status: incomplete ? "incomplete" : "completed",
				incomplete_details: incomplete ? { reason: "max_output_tokens" } : null,
				output: [item(incomplete ? "incomplete" : "completed", p.text, p.args)], usage };
			if (!body.stream) return sendJSON(200, done);

			const s = await sse(); if (!s) return;
			let n = 0;
			const ev = (type, data) => s.send(type, { type, sequence_number: n++, ...data });
			if (!await ev("response.created", { response: base })) return;
			if (!await ev("response.in_progress", { response: base })) return;
			if (!await ev("response.output_item.added", { output_index: 0,
				item: item("in_progress", null, "") })) return;
			if (p.kind === "tool") {
				for (const a of pieces(p.args))
					if (!await ev("response.function_call_arguments.delta", { item_id: itemId, output_index: 0, delta: a })) return;
				if (!await ev("response.function_call_arguments.done", { item_id: itemId, output_index: 0, arguments: p.args })) return;
			} else {
				if (!await ev("response.content_part.added", { item_id: itemId, output_index: 0,
					content_index: 0, part: part("") })) return;
				for (const [i, t] of textDeltas(p.text).entries()) {
					if (!await ev("response.output_text.delta", { item_id: itemId, output_index: 0,
						content_index: 0, delta: t, logprobs: [] })) return;
					if (streamError && i === 0) {
						const failed = { ...base, status: "failed",
							error: { code: "server_error", message: "The server had an error while processing your request. Sorry about that!" } };
						await ev("response.failed", { response: failed });
						return s.end();
					}
				}
				if (!await ev("response.output_text.done", { item_id: itemId, output_index: 0,
					content_index: 0, text: p.text, logprobs: [] })) return;
				if (!await ev("response.content_part.done", { item_id: itemId, output_index: 0,
					content_index: 0, part: part(p.text) })) return;
			}
			if (!await ev("response.output_item.done", { output_index: 0, item: done.output[0] })) return;
			if (!await ev(incomplete ? "response.incomplete" : "response.completed", { response: done })) return;
			return s.end();
		}

		// ---- /v1/messages (Anthropic) ----
		async function messages() {
			const bad = (m) => sendError(400, m);
			if (typeof body.model !== "string") return bad("model: Field required");
			if (!Array.isArray(body.messages)) return bad("messages: Field required");
			if (!Number.isInteger(body.max_tokens)) return bad("max_tokens: Field required");
			const input = anthropicInput(body);
			const p = plan(body, input, "anthropic", body.max_tokens);
			const prompt = countTokens(input.prompt);
			const mid = id("msg_", 24);
			const toolId = id("toolu_", 24);
			const stop = p.kind === "tool" ? "tool_use" : p.truncated ? "max_tokens" : "end_turn";
			const usage = { input_tokens: prompt, cache_creation_input_tokens: 0,
				cache_read_input_tokens: 0, output_tokens: p.completion, service_tier: "standard" };
			const content = p.kind === "tool" ?
				[{ type: "tool_use", id: toolId, name: p.name, input: JSON.parse(p.args) }] :
				[{ type: "text", text: p.text }];
			const msg = { id: mid, type: "message", role: "assistant", model: body.model,
				content, stop_reason: stop, stop_sequence: null, usage };
			if (!body.stream) return sendJSON(200, msg);

			const s = await sse(); if (!s) return;
			const ev = (type, data) => s.send(type, { type, ...data });
			if (!await ev("message_start", { message: { ...msg, content: [], stop_reason: null,
				stop_sequence: null, usage: { ...usage, output_tokens: 1 } } })) return;
			if (p.kind === "tool") {
				if (!await ev("content_block_start", { index: 0, content_block:
					{ type: "tool_use", id: toolId, name: p.name, input: {} } })) return;
				if (!await ev("ping", {})) return;
				for (const a of pieces(p.args))
					if (!await ev("content_block_delta", { index: 0,
						delta: { type: "input_json_delta", partial_json: a } })) return;
			} else {
				if (!await ev("content_block_start", { index: 0, content_block: { type: "text", text: "" } })) return;
				if (!await ev("ping", {})) return;
				for (const [i, t] of textDeltas(p.text).entries()) {
					if (!await ev("content_block_delta", { index: 0, delta: { type: "text_delta", text: t } })) return;
					if (streamError && i === 0) {
						const st = { rate_limit: 429, api_error: 500 }[streamError.value] ?? 529;
						const e = anthropicError(st, requestId);
						await s.send("error", { type: "error", error: e.error });
						return s.end();
					}
				}
			}
			if (!await ev("content_block_stop", { index: 0 })) return;
			if (!await ev("message_delta", { delta: { stop_reason: stop, stop_sequence: null },
				usage: { input_tokens: prompt, cache_creation_input_tokens: 0,
					cache_read_input_tokens: 0, output_tokens: p.completion } })) return;
			if (!await ev("message_stop", {})) return;
			return s.end();
		}

		async function countTokensRoute() {
			if (typeof body.model !== "string") return sendError(400, "model: Field required");
			return sendJSON(200, { input_tokens: countTokens(anthropicInput(body).prompt) });
		}

		// ---- /v1/embeddings ----
		async function embeddings() {
			if (typeof body.model !== "string")
				return sendJSON(400, { error: { message: "you must provide a model parameter", type: "invalid_request_error", param: null, code: null } });
			const inputs = Array.isArray(body.input) ? body.input : [body.input];
			if (body.input == null || inputs.length === 0)
				return sendJSON(400, { error: { message: "'input' is a required property", type: "invalid_request_error", param: null, code: null } });
			const dim = Number.isInteger(body.dimensions) && body.dimensions > 0 ? body.dimensions : EMBED_DIM;
			let tokens = 0;
			const data = inputs.map((inp, index) => {
				const s = Array.isArray(inp) ? inp.join(" ") : String(inp);
				tokens += Array.isArray(inp) ? inp.length : countTokens(s);
				const vec = embed(s, dim);
				const embedding = body.encoding_format === "base64" ?
					Buffer.from(new Float32Array(vec).buffer).toString("base64") : vec;
				return { object: "embedding", index, embedding };
			});
			return sendJSON(200, { object: "list", data, model: body.model,
				usage: { prompt_tokens: tokens, total_tokens: tokens } });
		}
	}

	function control(req, res, path, raw) {
		const json = (status, obj) => {
			res.writeHead(status, { "content-type": "application/json" });
			res.end(JSON.stringify(obj));
		};
		if (path === "/_fake/requests" && req.method === "GET") return json(200, recorded);
		if (path === "/_fake/reset" && req.method === "POST") {
			recorded.length = 0; script = [];
			return json(200, { ok: true });
		}
		if (path === "/_fake/script") {
			if (req.method === "GET") return json(200, script);
			if (req.method === "POST") {
				let v;
				try { v = JSON.parse(raw.toString("utf8") || "[]"); } catch { return json(400, { error: "bad JSON" }); }
				if (v && !Array.isArray(v) && Array.isArray(v.script)) v = v.script;
				if (!Array.isArray(v)) return json(400, { error: "expected a JSON list" });
				script = v.map((x) => x ?? "");
				return json(200, { ok: true, pending: script.length });
			}
		}
		return json(404, { error: "unknown control endpoint" });
	}

	await new Promise((resolve, reject) => {
		server.once("error", reject);
		server.listen(opts.port ?? 0, host, resolve);
	});
	const port = server.address().port;
	return {
		port, host, url: `http://${host}:${port}`,
		requests: () => recorded.map((r) => ({ ...r })),
		reset: () => { recorded.length = 0; script = []; },
		script: (list) => { script = list.map((x) => x ?? ""); },
		close: () => new Promise((resolve) => {
			for (const t of timers) clearTimeout(t);
			timers.clear();
			server.close(() => resolve());
			for (const s of sockets) s.destroy();
		}),
	};
}

// Deterministic unit vector from the text's SHA-256 stream.
export function embed(text, dim = EMBED_DIM) {
	const v = [];
	let block = 0;
	while (v.length < dim) {
		const h = crypto.createHash("sha256").update(`${block++}:${text}`).digest();
		for (let i = 0; i + 2 <= h.length && v.length < dim; i += 2)
			v.push(h.readUInt16BE(i) / 32768 - 1);
	}
	const norm = Math.hypot(...v) || 1;
	return v.map((x) => Math.fround(x / norm));
}

// ---- CLI ------------------------------------------------------------------

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
	const args = process.argv.slice(2);
	const opt = (n) => { const i = args.indexOf(n); return i >= 0 ? args[i + 1] : undefined; };
	const fake = await startFake({
		port: Number(opt("--port") ?? 0), host: opt("--host") ?? "127.0.0.1",
		key: opt("--key") ?? process.env.FAKE_LLM_KEY ?? null,
	});
	process.stdout.write(JSON.stringify({ port: fake.port }) + "\n");
	const stop = () => fake.close().then(() => process.exit(0));
	process.on("SIGTERM", stop);
	process.on("SIGINT", stop);
}
