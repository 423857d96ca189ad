// SPDX-License-Identifier: MIT
// chat.js: talk to the agent. #/chat lists the conversations (newest
// first) and opens a new one by name; #/chat/ID shows one: its messages
// and replies as stored, a composer, the reply streaming in (POST
// /api/v1/chat answers Server-Sent Events, read with fetch), tool calls
// as cards, a reply's attachments, and Stop while a turn runs.
import { api, csrfToken } from "./api.js";
import { h, errLine, attempt, table, when, bytes } from "./ui.js";

const NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;
const IMAGE_RE = /\.(png|jpe?g|gif|webp|avif|bmp)$/i;
const POLL_MS = 2000;	/* while a turn runs that this page does not stream */
const CUT = 800;	/* a tool's text shown before "Show all" */

// The id in a path: ':' as it is (the API's ids are "api:alice:main").
const convPath = (id) => "/api/v1/conversations/" +
	encodeURIComponent(id).replace(/%3A/gi, ":");
const hashOf = (id) => "#/chat/" + encodeURIComponent(id);
const at = (ms) => when(ms / 1000);

// "api:alice:main" is "main" to alice; any other id is shown whole.
function title(id, me) {
	const own = `api:${me.name}:`;
	return id.startsWith(own) ? id.slice(own.length) : id;
}

export function render(el, ctx) {
	return ctx.params[0] ? conversation(el, ctx.params[0], ctx.me) :
		list(el, ctx.me);
}

/* ---- the list ---------------------------------------------------------- */

function list(el, me) {
	const err = errLine("chat-list-error");
	const box = h("div", { id: "chat-list" });
	const nameIn = h("input", { id: "chat-new-name", name: "name",
		maxlength: 64, autocomplete: "off", spellcheck: "false" });
	const newErr = errLine("chat-new-error");
	const opener = h("button", { type: "button", id: "chat-new-open",
		"aria-expanded": "false", "aria-controls": "chat-new",
		onclick: () => toggle(true) }, "New conversation");
	const form = h("form", { id: "chat-new", class: "chat-new",
		novalidate: true, hidden: true, onsubmit: (ev) => {
			ev.preventDefault();
			const n = nameIn.value.trim();
			if (!NAME_RE.test(n)) {
				newErr.textContent = "A name is 1 to 64 letters, " +
					"digits, '.', '_' or '-' (no spaces).";
				nameIn.focus();
				return;
			}
			location.hash = hashOf(`api:${me.name}:${n}`);
		} },
		h("label", {}, "Name of the new conversation", nameIn),
		h("div", { class: "row" }, h("button", { type: "submit" }, "Open"),
			h("button", { type: "button", onclick: () => toggle(false) },
				"Cancel")),
		newErr);
	function toggle(open) {
		form.hidden = !open;
		opener.setAttribute("aria-expanded", String(open));
		newErr.textContent = "";
		(open ? nameIn : opener).focus();
	}
	const admin = me.role === "owner" || me.role === "admin";
	const all = h("input", { type: "checkbox", id: "chat-all",
		onchange: load });
	const refresh = h("button", { type: "button", id: "chat-refresh",
		onclick: load }, "Refresh");

	async function load() {
		const r = await attempt(err, () => api("/api/v1/conversations" +
			(all.checked ? "?all" : "")));
		if (!r) return;
		if (!r.conversations.length) {
			box.replaceChildren(h("p", { class: "muted", id: "chat-empty" },
				"No conversations yet: open one with " +
				"“New conversation”."));
			return;
		}
		box.replaceChildren(table(["Conversation", "Channel", "Messages",
			"Last activity"], r.conversations.map((c) => [
			h("a", { href: hashOf(c.id) }, title(c.id, me)),
			c.owner === me.name ? c.channel : `${c.channel} (${c.owner})`,
			c.pending ? `${c.messages} (${c.pending} waiting)` :
				String(c.messages),
			at(c.updated_ms)]), { id: "chat-conversations" }));
	}
	el.replaceChildren(h("h1", {}, "Chat"),
		h("div", { class: "row chat-tools" }, opener, refresh,
			admin ? h("label", { class: "check" }, all,
				"Everyone's conversations") : null),
		form, err, box);
	load();
	return () => {};
}

/* ---- one conversation -------------------------------------------------- */

function conversation(el, id, me) {
	const mine = id.startsWith(`api:${me.name}:`);
	const name = title(id, me);
	const st = {
		live: null,	/* the turn this page streams */
		cards: new Map(),	/* message id -> its turn's tool cards */
		timer: 0, abort: null, gone: false,
		known: false,	/* the conversation is stored */
	};
	const log = h("ol", { id: "chat-log", class: "chat-log",
		"aria-label": "Messages", "aria-live": "polite" });
	const logErr = errLine("chat-log-error");
	const text = h("textarea", { id: "chat-text", name: "text", rows: 3 });
	const send = h("button", { type: "submit", id: "chat-send" }, "Send");
	const stop = h("button", { type: "button", id: "chat-stop",
		class: "danger", hidden: true, onclick: doStop }, "Stop");
	const sendErr = errLine("chat-send-error");
	const stopErr = errLine("chat-stop-error");
	const status = h("p", { id: "chat-status", class: "muted",
		role: "status" });
	const form = mine ? h("form", { id: "chat-form", class: "chat-form",
		onsubmit: (ev) => { ev.preventDefault(); sendIt(false); } },
		h("label", {}, "Message (Enter sends, Shift+Enter starts a " +
			"new line)", text),
		h("div", { class: "row" }, send, stop), sendErr, stopErr, status) :
		h("div", { class: "chat-form" }, h("p", { class: "muted" },
			"This conversation is not yours on this page's channel: " +
			"it is read here, answered where it happens."),
		h("div", { class: "row" }, stop), stopErr, status);
	text.addEventListener("keydown", (ev) => {
		if (ev.key !== "Enter" || ev.shiftKey || ev.isComposing) return;
		ev.preventDefault();
		if (!send.disabled) form.requestSubmit();
	});
	el.replaceChildren(
		h("p", { class: "chat-back" }, h("a", { href: "#/chat",
			id: "chat-back" }, "← All conversations")),
		h("h1", { id: "chat-title" }, name), logErr, log, form);

	function meta(who, ms, extra) {
		return h("p", { class: "msg-meta" }, who, " · ", at(ms),
			extra ? ` · ${extra}` : "");
	}

	function bubble(m) {
		if (m.role === "user")
			return h("li", { class: "msg user", "data-id": m.id },
				meta(m.from, m.time_ms, m.state === "running" ?
					"the agent is answering" : m.state === "queued" ?
					"waiting for its turn" : ""),
				h("div", { class: "msg-text" }, m.text));
		const kind = m.kind || "reply";
		const li = h("li", { class: `msg agent ${kind}`, "data-id": m.id,
			"data-kind": kind }, meta(kind === "reply" ? "agent" :
			kind === "stopped" ? "agent, stopped" : "agent, error",
			m.time_ms));
		/* The cards seen live, else the ones stored with the reply. */
		const cards = st.cards.get(m.in_reply_to) ||
			(m.tools || []).map(storedCard);
		li.append(...cards);
		li.append(h("div", { class: "msg-text" }, m.text));
		if (m.attachments && m.attachments.length)
			li.append(attachments(m));
		return li;
	}

	// Images inline, other files as downloads (the session's cookie
	// reads them; nothing else is needed in the URL).
	function attachments(m) {
		return h("ul", { class: "attachments" }, m.attachments.map((a, n) => {
			const url = `${convPath(id)}/attachments/${m.id}/${n}`;
			const file = a.name || String(a.path).split("/").pop();
			const link = h("a", { href: url, download: file },
				a.size !== undefined && a.size !== null ?
					`${file} (${bytes(a.size)})` : file);
			const cap = a.caption ? ` ${a.caption}` : "";
			return h("li", {}, IMAGE_RE.test(file) ? h("figure", {},
				h("img", { src: url, alt: a.caption || file }),
				h("figcaption", {}, link, cap)) : [link, cap]);
		}));
	}

	function nearEnd() {
		return window.innerHeight + window.scrollY >=
			document.documentElement.scrollHeight - 80;
	}
	function toEnd() {
		window.scrollTo(0, document.documentElement.scrollHeight);
	}

	function draw(msgs) {
		const near = nearEnd();
		log.replaceChildren(...msgs.map(bubble));
		if (st.live) log.append(...st.live.nodes);
		else if (!msgs.length)
			log.append(h("li", { class: "muted chat-none" }, mine ?
				"No messages yet: write the first one below." :
				"No messages."));
		if (near) toEnd();
	}

	function running(on) {
		stop.hidden = !on;
		if (!on) stopErr.textContent = "";
	}

	// A new conversation exists from its first message on; until then
	// its messages are not asked for (a 404 would be a console error).
	async function exists() {
		if (st.known) return true;
		const all = me.role === "owner" || me.role === "admin";
		const r = await api("/api/v1/conversations" + (all ? "?all" : ""));
		st.known = r.conversations.some((c) => c.id === id);
		return st.known;
	}

	async function load() {
		clearTimeout(st.timer);
		let r;
		try {
			r = await exists() ? await api(convPath(id) + "/messages") :
				{ messages: [] };
			logErr.textContent = "";
		} catch (e) {
			logErr.textContent = e.message;
			return;
		}
		if (st.gone) return;
		draw(r.messages);
		const waiting = r.messages.some((m) => m.role === "user" &&
			(m.state === "queued" || m.state === "running"));
		running(waiting || !!st.live);
		if (!waiting && !st.live) status.textContent = "";
		if (waiting && !st.live) st.timer = setTimeout(load, POLL_MS);
	}

	async function doStop() {
		stop.disabled = true;
		const r = await attempt(stopErr, () => api(convPath(id) + "/stop",
			{ method: "POST", body: {} }));
		stop.disabled = false;
		if (r) status.textContent = "Stopping…";
		if (!st.live) load();
	}

	function fail(words) {
		sendErr.textContent = words;
		send.disabled = false;
	}

	async function sendIt(retried) {
		const t = text.value;
		if (!t.trim()) {
			sendErr.textContent = "Write a message first.";
			return;
		}
		sendErr.textContent = "";
		send.disabled = true;
		const ctl = new AbortController();
		st.abort = ctl;
		let r;
		try {
			r = await fetch("/api/v1/chat", { method: "POST",
				signal: ctl.signal, cache: "no-store",
				headers: { "Content-Type": "application/json",
					"X-CSRF-Token": csrfToken() },
				body: JSON.stringify({ conversation: name, text: t }) });
		} catch (e) {
			if (!st.gone) fail("The gateway could not be reached (" +
				e.message + "); the message was not sent.");
			return;
		}
		if (r.status === 401 && !retried) {
			/* The session expired: api() opens the login dialog (the
			 * text stays), then the message goes again. */
			try {
				await api("/api/v1/me");
			} catch (e) {
				fail(e.message);
				return;
			}
			return sendIt(true);
		}
		if (!r.ok) {
			fail(await words(r));
			return;
		}
		await stream(r, t);
	}

	async function stream(r, t) {
		const live = { msg: 0, cards: [], tools: new Map(), cur: null,
			ended: false };
		live.user = h("li", { class: "msg user" },
			meta(me.name, Date.now(), "sending"),
			h("div", { class: "msg-text" }, t));
		live.agent = h("li", { class: "msg agent live", id: "chat-live",
			"aria-busy": "true" }, h("p", { class: "msg-meta" },
			"agent · answering…"));
		live.nodes = [live.user, live.agent];
		st.live = live;
		log.querySelector(".chat-none")?.remove();
		log.append(...live.nodes);
		running(true);
		toEnd();
		const reader = r.body.pipeThrough(new TextDecoderStream())
			.getReader();
		let buf = "";
		try {
			for (;;) {
				const { value, done } = await reader.read();
				if (done) break;
				buf += value;
				let i;
				while ((i = buf.indexOf("\n\n")) !== -1) {
					event(live, buf.slice(0, i), t);
					buf = buf.slice(i + 2);
				}
			}
		} catch (e) {
			if (!st.gone) status.textContent = "The stream was cut (" +
				e.message + "); the reply will show here when it is in.";
		}
		if (st.gone) return;
		if (live.msg) st.cards.set(live.msg, live.cards);
		st.live = null;
		st.abort = null;
		send.disabled = false;
		if (!live.ended && !status.textContent)
			status.textContent = "The stream ended early; the reply " +
				"will show here when it is in.";
		load();
	}

	// One SSE block: "event: TYPE\ndata: JSON".
	function event(live, block, t) {
		let type = "message", data = "";
		for (const line of block.split("\n"))
			if (line.startsWith("event: ")) type = line.slice(7);
			else if (line.startsWith("data: ")) data += line.slice(6);
		let d = {};
		try { d = JSON.parse(data); } catch { return; }
		const near = nearEnd();
		const a = live.agent;
		if (type === "accepted") {
			live.msg = d.message_id;
			st.known = true;
			live.user.firstChild.lastChild.textContent = " · sent";
			/* Stored: the composer is free (unless more was typed). */
			if (text.value === t) text.value = "";
		} else if (type === "text_delta") {
			if (!live.cur) {
				live.cur = h("div", { class: "msg-text" });
				a.append(live.cur);
			}
			live.cur.append(d.text || "");
		} else if (type === "tool_start") {
			const c = toolCard(d);
			live.tools.set(d.id, c);
			live.cards.push(c.node);
			live.cur = null;
			a.append(c.node);
		} else if (type === "tool_end") {
			live.tools.get(d.id)?.end(d);
		} else if (type === "retry") {
			a.replaceChildren(a.firstChild, h("p", { class: "muted" },
				"The agent stopped without answering; the turn runs " +
				"once more."));
			live.cards = [];
			live.cur = null;
		} else if (type === "reply") {
			live.ended = true;
			/* The reply's text replaces what streamed after the last
			 * tool; load() adds its attachments (they need its id). */
			while (a.lastChild && a.lastChild !== a.firstChild &&
			    a.lastChild.classList.contains("msg-text"))
				a.lastChild.remove();
			a.append(h("div", { class: "msg-text" }, d.text || ""));
		} else if (type === "error") {
			live.ended = true;
			a.classList.add(d.code === "stopped" ? "stopped" : "error");
			a.append(h("p", { class: d.code === "stopped" ? "muted" :
				"bad" }, d.message || "The turn failed."));
			status.textContent = "";
		}
		if (near) toEnd();
	}

	load();
	return () => {
		st.gone = true;
		clearTimeout(st.timer);
		if (st.abort) st.abort.abort();
	};
}

// A tool call kept with its reply (GET …/messages): the same card, its
// time as the gateway measured it; one that never ended says so.
function storedCard(t) {
	const c = toolCard(t);
	if (t.ms !== undefined) c.end(t, t.ms / 1000);
	else c.end({ ok: false, output: "(it did not end: the turn was " +
		"stopped or failed)" }, null);
	return c.node;
}

// A tool call as a card: its name and how long it took in the summary,
// its arguments and result inside. Live, the time is measured here, from
// the tool_start event to the tool_end event, as they arrive; end's
// secs, when given, is the time to show instead (null: none).
function toolCard(d) {
	const t0 = performance.now();
	const time = h("span", { class: "tool-time" }, "running…");
	const res = h("div", { class: "tool-result" },
		h("p", { class: "muted" }, "running…"));
	const node = h("details", { class: "tool-card", "data-tool": d.name },
		h("summary", {}, "Tool ", h("strong", {}, d.name), " · ", time),
		h("p", { class: "tool-label" }, "Arguments"),
		cut(d.input === null || d.input === undefined ?
			"(not valid JSON)" : JSON.stringify(d.input, null, 2)),
		h("p", { class: "tool-label" }, "Result"), res);
	return {
		node,
		end(e, secs) {
			const s = secs === undefined ?
				(performance.now() - t0) / 1000 : secs;
			time.textContent = (s === null ? "" : (s < 10 ?
				s.toFixed(1) : Math.round(s)) + " s") +
				(e.ok === false ? (s === null ? "failed" :
				" · failed") : "");
			if (e.ok === false) node.classList.add("failed");
			res.replaceChildren(cut(String(e.output ?? "")));
		},
	};
}

// Preformatted text, cut at CUT characters with a "Show all".
function cut(s) {
	const pre = h("pre", { class: "tool-text" });
	if (s.length <= CUT) {
		pre.textContent = s;
		return pre;
	}
	pre.textContent = s.slice(0, CUT) + "…";
	const more = h("button", { type: "button", class: "link", onclick: () => {
		pre.textContent = s;
		more.remove();
	} }, `Show all (${s.length.toLocaleString("en")} characters)`);
	return h("div", {}, pre, more);
}

// The words of a failed answer: the API's message, else the status.
async function words(r) {
	try {
		const e = (await r.json()).error;
		if (e && e.message) return e.message;
	} catch { /* not JSON */ }
	return `The gateway answered ${r.status} ${r.statusText}.`;
}
