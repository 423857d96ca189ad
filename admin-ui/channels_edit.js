// SPDX-License-Identifier: MIT
// channels_edit.js: adding or editing a channel, as an entry of the
// config's "channels" list (GET /api/v1/config, then PUT of the whole
// config with If-Match: the server checks it as at start and answers its
// problems in words), and storing a channel's secret (PUT
// /api/v1/secrets/{name}: the value is never shown again).
import { api } from "./api.js";
import { h, errLine, attempt } from "./ui.js";

/* Each kind's own keys: [key, label, kind of field, hint]. */
const KEYS = {
	slack: [["mode", "Mode", ["events", "socket"],
		"events: Slack POSTs to pincer; socket: no public URL"],
	["bot_token", "Bot token", "secret", "xoxb-…"],
	["signing_secret", "Signing secret", "secret", "events mode"],
	["app_token", "App-level token", "secret", "socket mode"]],
	telegram: [["mode", "Mode", ["webhook", "polling"],
		"polling needs no public URL"],
	["bot_token", "Bot token", "secret", "from @BotFather"],
	["webhook_secret", "Webhook secret", "secret", "webhook mode"]],
	whatsapp: [["phone_number_id", "Phone number id", "text", ""],
		["access_token", "Access token", "secret", ""],
		["app_secret", "App secret", "secret", ""],
		["verify_token", "Verify token", "secret", ""]],
	discord: [["application_id", "Application id", "text", ""],
		["public_key", "Public key", "text", "64 hex digits"],
		["bot_token", "Bot token", "secret", ""]],
	generic: [["secret", "Signing secret", "secret", "HMAC key"],
		["callback_url", "Callback URL", "text", "replies go here"]],
};
const POLICIES = ["pairing", "allowlist", "open", "disabled"];
let forms = 0;

function field(label, input, hint) {
	return h("label", {}, label, input,
		hint ? h("span", { class: "muted" }, hint) : null);
}

function select(name, values, value) {
	return h("select", { name }, values.map((v) =>
		h("option", { value: v, selected: v === value }, v)));
}

/*
 * A form for one channel: c is its config entry (null: a new one).
 * saved(answer) runs after the server took the config.
 */
export function channelForm(c, saved) {
	const n = ++forms;
	const err = errLine(`chan-form-error-${n}`);
	const said = h("p", { role: "status", class: "ok" });
	const kind = select("kind", Object.keys(KEYS), c?.kind || "telegram");
	const name = h("input", { name: "name", required: true,
		pattern: "[a-z0-9_\\-]{1,32}", value: c?.name || "",
		autocomplete: "off" });
	const own = h("div", { class: "chan-form-keys" });
	const draw = () => {
		const k = kind.value;
		own.replaceChildren(...KEYS[k].map(([key, label, type, hint]) => {
			const v = c && c.kind === k ? c[key] ?? "" : "";
			if (Array.isArray(type))
				return field(label, select(key, type, v ||
					type[0]), hint);
			const def = type === "secret" && !c ?
				`${name.value || k}_${key}` : "";
			return field(type === "secret" ? `${label}: the ` +
				"secret's name" : label, h("input", { name: key,
				value: v || def, autocomplete: "off" }), hint);
		}));
	};
	const policy = select("dm_policy", POLICIES, c?.dm_policy ||
		(c?.kind === "generic" ? "open" : "pairing"));
	kind.addEventListener("change", () => {
		draw();
		/* The kind's default: only the secret's holder can send to
		 * a generic hook, so its messages are the owner's. */
		if (!c) policy.value = kind.value === "generic" ? "open" :
			"pairing";
	});
	name.addEventListener("change", () => { if (!c) draw(); });
	draw();
	if (c) kind.disabled = true;
	const allow = h("input", { name: "allow", autocomplete: "off",
		value: (c?.allow || []).join(", ") });
	const form = h("form", { class: "chan-form" },
		field("Name", name, "a-z 0-9 - _; in conversation ids and " +
			"the hook's URL"),
		field("Kind", kind), own,
		field("Who may talk (dm_policy)", policy),
		field("Allow list", allow, "the platform's user ids, " +
			"comma-separated"),
		h("button", { type: "submit" }, c ? "Save the channel" :
			"Add the channel"), err, said);
	form.addEventListener("submit", async (ev) => {
		ev.preventDefault();
		said.textContent = "";
		const out = await attempt(err, () => save(form, c));
		if (out === undefined) return;
		said.textContent = "Saved. Channels start with pincerd: " +
			"restart it for the change to take effect.";
		saved?.(out);
	});
	return form;
}

/* The config with this channel put in, sent whole with If-Match. */
async function save(form, old) {
	const got = await api("/api/v1/config");
	const config = got.config || {};
	const list = Array.isArray(config.channels) ? config.channels : [];
	const at = old ? list.findIndex((x) => x.name === old.name) : -1;
	const entry = { ...(at >= 0 ? list[at] : {}) };
	const data = new FormData(form);
	const kind = old ? old.kind : data.get("kind");
	entry.name = data.get("name").trim();
	entry.kind = kind;
	for (const [key] of KEYS[kind]) {
		const v = (data.get(key) || "").trim();
		if (v) entry[key] = v;
		else delete entry[key];
	}
	entry.dm_policy = data.get("dm_policy");
	const allow = data.get("allow").split(",").map((s) => s.trim())
		.filter(Boolean);
	if (allow.length) entry.allow = allow;
	else delete entry.allow;
	if (at >= 0) list[at] = entry;
	else list.push(entry);
	config.channels = list;
	return api("/api/v1/config", { method: "PUT", body: config,
		headers: { "If-Match": got.etag } });
}

/* Store a secret's value; the field is emptied whatever happens. */
export function secretForm(s, saved) {
	const n = ++forms;
	const err = errLine(`secret-error-${n}`);
	const said = h("span", { role: "status", class: "ok" });
	const input = h("input", { type: "password", name: "value",
		autocomplete: "off", required: true,
		"aria-label": `New value of the secret ${s.name}` });
	const form = h("form", { class: "secret-form row" }, input,
		h("button", { type: "submit" }, s.set ? "Replace" : "Set"),
		said, err);
	form.addEventListener("submit", async (ev) => {
		ev.preventDefault();
		said.textContent = "";
		const value = input.value;
		input.value = "";
		const out = await attempt(err, () => api(
			`/api/v1/secrets/${encodeURIComponent(s.name)}`,
			{ method: "PUT", body: { value } }));
		if (out === undefined) return;
		said.textContent = s.set ? "Replaced; restart pincerd for " +
			"the channel to read it." : "Saved.";
		saved?.();
	});
	return form;
}
