// SPDX-License-Identifier: MIT
// channels.js: the chat channels. One card per channel with its status in
// words (from GET /api/v1/channels: what the channel's own code saw), its
// last error and queues, the secrets it expects (named, set or not), and a
// setup guide for its kind with the exact URLs and settings to paste, each
// with a Copy button. Above them, the pairing requests with Approve and
// Deny (GET /api/v1/pairing, POST /api/v1/pairing/{channel}/approve|deny).
// Below, adding a channel; each card edits its own and sets its secrets
// (channels_edit.js).
import { api } from "./api.js";
import { h, errLine, attempt, table, when } from "./ui.js";
import { guide } from "./channels_guide.js";
import { restartButton } from "./system.js";
import { channelForm, secretForm } from "./channels_edit.js";

const REFRESH_MS = 10000;
const STATES = {
	ok: "OK", connecting: "Connecting", error: "Error",
	disabled: "Disabled",
};

const iso = (ms) => ms ? new Date(ms).toISOString() : "";

// Draw the page into el; answer the function that stops its refresh.
export function render(el) {
	const pairErr = errLine("pair-error");
	const pairSaid = h("p", { role: "status", id: "pair-said",
		class: "ok" });
	const pairBox = h("div", { id: "pair-list" });
	const chanErr = errLine("chan-error");
	const note = h("p", { class: "muted", id: "chan-note" });
	const cards = h("div", { class: "cards chan-cards", id: "chan-cards" });
	const again = h("button", { type: "button", id: "chan-refresh" },
		"Refresh");
	const open = new Set();	/* guides left open across refreshes */
	let seenPairs = "", seenChans = "";

	el.replaceChildren(h("h1", {}, "Channels"), again,
		h("section", { "aria-labelledby": "pair-h", id: "pairing" },
			h("h2", { id: "pair-h" }, "Pairing requests"),
			h("p", { class: "muted" }, "A stranger who writes to " +
				"the bot gets a code; approve it here and they " +
				"may talk. Denied people are not told, and get " +
				"no new code for a day."),
			pairErr, pairSaid, pairBox),
		h("section", { "aria-labelledby": "chan-h" },
			h("h2", { id: "chan-h" }, "Channels"), chanErr, note,
			cards),
		h("section", { "aria-labelledby": "chan-add-h" },
			h("h2", { id: "chan-add-h" }, "Add a channel"),
			h("details", { id: "chan-add" },
				h("summary", {}, "A new channel"),
				channelForm(null, () => chans(true)))));

	async function decide(p, verb) {
		pairSaid.textContent = "";
		const done = await attempt(pairErr, () => api(
			`/api/v1/pairing/${encodeURIComponent(p.channel)}/${verb}`,
			{ method: "POST", body: { code: p.code } }));
		if (done === undefined) return;
		pairSaid.textContent = `${verb === "approve" ? "Approved" :
			"Denied"} ${p.name || p.peer} on ${p.channel}.`;
		await pairs(true);
	}

	function pairRows(list) {
		const pending = list.filter((p) => p.state === "pending");
		const rest = list.filter((p) => p.state !== "pending");
		const who = (p) => p.name ? `${p.name} (${p.peer})` : p.peer;
		const out = [];
		if (pending.length === 0)
			out.push(h("p", { id: "pair-none" },
				"No pairing request is waiting."));
		else
			out.push(table(["Who", "Code", "Decide", "Channel",
				"Asked"], pending.map((p) => [who(p),
				h("code", {}, p.code),
				h("span", { class: "row" },
					h("button", { type: "button",
						class: "pair-approve",
						"aria-label": `Approve ${who(p)} ` +
							`on ${p.channel}`,
						onclick: () => decide(p, "approve") },
						"Approve"),
					h("button", { type: "button",
						class: "pair-deny",
						"aria-label": `Deny ${who(p)} on ` +
							`${p.channel}`,
						onclick: () => decide(p, "deny") },
						"Deny")),
				p.channel, when(iso(p.created_ms))]),
				{ id: "pair-pending" }));
		if (rest.length > 0)
			out.push(h("h3", {}, "Decided"), table(["Who", "State",
				"Channel", "By"], rest.map((p) => [who(p),
				p.state === "denied" ? "denied (no new code " +
					"until " + when(iso(p.expires_ms)) + ")" :
					p.state, p.channel, p.decided_by || ""]),
				{ id: "pair-decided" }));
		return out;
	}

	async function pairs(force) {
		const r = await attempt(pairErr, () => api("/api/v1/pairing"));
		if (!r) return;
		const s = JSON.stringify(r.peers);
		if (!force && s === seenPairs) return;
		seenPairs = s;
		pairBox.replaceChildren(...pairRows(r.peers));
	}

	async function chans(force) {
		const r = await attempt(chanErr, () => api("/api/v1/channels"));
		if (!r) return;
		const s = JSON.stringify(r);
		if (!force && (s === seenChans || busy(cards))) return;
		seenChans = s;
		note.textContent = r.base_url_note || "";
		if (r.channels.length === 0) {
			cards.replaceChildren(h("p", { id: "chan-none" },
				"No channel is configured. Add one to the " +
				"\"channels\" list of the config (Settings), " +
				"then restart pincerd."));
			return;
		}
		cards.replaceChildren(...r.channels.map((c) =>
			card(c, r.base_url, open, () => chans(true))));
	}

	const refresh = (force) => { pairs(force); chans(force); };
	again.addEventListener("click", () => refresh(true));
	refresh(true);
	const t = setInterval(() => refresh(false), REFRESH_MS);
	return () => clearInterval(t);
}

/* Someone is typing in a card: a refresh would throw it away. */
function busy(cards) {
	const a = document.activeElement;
	return !!cards.querySelector("details.edit[open]") ||
		[...cards.querySelectorAll("input")].some((i) => i.value) ||
		(cards.contains(a) && /^(INPUT|SELECT|TEXTAREA)$/.test(a.tagName));
}

/* The edit form, made when opened from the config's entry. */
function editor(c) {
	const err = errLine(null);
	const d = h("details", { class: "edit", id: `chan-${c.name}-edit` },
		h("summary", {}, "Edit"), err);
	d.addEventListener("toggle", async () => {
		if (!d.open || d.querySelector("form")) return;
		const got = await attempt(err, () => api("/api/v1/config"));
		const entry = (got?.config?.channels || []).find((x) =>
			x.name === c.name);
		if (got && !entry)
			err.textContent = "This channel is not in the config " +
				"file (set by the environment?).";
		/* Saved: the card stays as it runs until the restart. */
		if (entry) d.append(channelForm(entry, null));
	});
	return d;
}

// One channel's card: status, numbers, secrets, its setup guide.
function card(c, base, open, again) {
	const id = "chan-" + c.name;
	const rows = [
		["Kind", `${c.kind}${c.mode ? ` (${c.mode})` : ""}`],
		["Status", h("span", { class: `state state-${c.status}`,
			id: id + "-status" }, STATES[c.status] || c.status)],
		["", c.status_text || ""],
	];
	if (c.last_error)
		rows.push(["Last error", h("span", { class: "bad",
			id: id + "-error" }, c.last_error.message)],
		["", when(c.last_error.time)]);
	if (c.enabled) {
		rows.push(["Last in", c.last_in ? when(c.last_in) : "never"],
			["Last out", c.last_out ? when(c.last_out) : "never"],
			["Waiting", `${c.inbox_waiting} in, ` +
				`${c.outbox_waiting} out`],
			["Who may talk", c.dm_policy]);
	}
	const dl = h("dl", {});
	for (const [t, v] of rows)
		dl.append(h("dt", {}, t), h("dd", {}, v));
	const secrets = (c.secrets || []).length === 0 ? null :
		h("ul", { class: "chan-secrets" }, c.secrets.map((s) =>
			h("li", {}, h("code", {}, s.key), " → secret ",
				s.name ? h("code", {}, s.name) : "(not named)",
				": ", h("span", { class: s.set ? "ok" : "bad",
					id: `${id}-secret-${s.key}` },
					s.set ? "set" : "not set"),
				s.name ? secretForm(s, again) : null)));
	const d = h("details", { class: "guide", id: id + "-guide",
		open: open.has(c.name) },
		h("summary", {}, `Setup guide: ${c.kind}`),
		...guide(c, base));
	d.addEventListener("toggle", () => {
		if (d.open) open.add(c.name);
		else open.delete(c.name);
	});
	return h("section", { class: "card chan-card", id,
		"aria-labelledby": id + "-h" },
		h("h3", { id: id + "-h" }, c.name), dl,
		secrets ? h("p", { class: "muted" }, "Secrets:") : null,
		secrets, d, c.enabled !== undefined ? editor(c) : null,
		/* Saved since the start: a restart starts it. */
		c.enabled ? null : restartButton(id + "-restart"));
}
