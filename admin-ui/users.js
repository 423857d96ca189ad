// SPDX-License-Identifier: MIT
// users.js: people, API tokens and the audit log, as three views of one
// page: #/users, #/users/tokens, #/users/audit. Every change goes through
// the API, which audits it; a new token's secret is shown once, in a
// dialog, and kept nowhere after it closes.
import { api } from "./api.js";
import { h, errLine, attempt, table, when, stackCells } from "./ui.js";

const VIEWS = [["people", "People", "#/users"],
	["tokens", "API tokens", "#/users/tokens"],
	["audit", "Audit log", "#/users/audit"]];
const ROLES = ["member", "admin", "owner"];
const SCOPES = [["read", "read: look at status and usage"],
	["llm", "llm: call the LLM proxy"],
	["chat", "chat: talk to the agent"],
	["sandbox", "sandbox: use the sandboxes"],
	["browser", "browser: the CDP bridge"],
	["admin", "admin: manage pincer"]];
const EXPIRY = [["0", "never"], ["86400", "in 1 day"],
	["604800", "in 7 days"], ["2592000", "in 30 days"],
	["7776000", "in 90 days"], ["31536000", "in a year"]];

export function render(el, ctx) {
	const member = ctx.me && ctx.me.role === "member";
	/* A member manages only their own tokens: that view is theirs. */
	const view = VIEWS.some(([v]) => v === ctx.params[0]) ?
		ctx.params[0] : member ? "tokens" : "people";
	const tabs = h("nav", { class: "subnav", "aria-label": "Users views" },
		VIEWS.map(([v, label, href]) => h("a", { href,
			"aria-current": v === view ? "page" : null }, label)));
	const body = h("div", { id: "users-" + view });
	el.replaceChildren(h("h1", {}, "Users, tokens and audit"), tabs, body);
	if (member && view !== "tokens")
		body.append(h("p", { id: "users-member" }, "Only an admin or " +
			"an owner manages people and reads the audit log; " +
			"you can manage your own ", h("a",
			{ href: "#/users/tokens" }, "API tokens"), "."));
	else
		({ people, tokens, audit })[view](body, ctx);
	return () => document.querySelectorAll("dialog.users-dialog")
		.forEach((d) => d.remove());
}

/* --- people ------------------------------------------------------------ */

function people(el, ctx) {
	const err = errLine("users-err");
	const list = h("div", { id: "users-list" });
	el.append(h("h2", {}, "People"), err, list, addForm(() => load()));

	async function load() {
		const r = await attempt(err, () => api("/api/v1/users"));
		if (!r) return;
		list.replaceChildren(stacked(table(["Name", "Email", "Role",
			"State", "Last login", "Actions"], r.users.map((u) =>
			userRow(u, ctx, load)), { id: "users-table" })));
	}
	load();
}

function userRow(u, ctx, reload) {
	const rowErr = h("p", { class: "bad", role: "alert" });
	const patch = (body) => attempt(rowErr, async () => {
		await api("/api/v1/users/" + encodeURIComponent(u.name),
			{ method: "PATCH", body });
		await reload();
		return true;
	});
	const role = h("select", { "aria-label": `Role of ${u.name}`,
		class: "user-role", onchange: async () => {
			if (!await patch({ role: role.value })) role.value = u.role;
		} }, ROLES.map((r) => h("option", { value: r,
		selected: r === u.role }, r)));
	const self = ctx.me && ctx.me.name === u.name;
	const actions = h("div", { class: "row wrap" },
		h("button", { type: "button", class: "user-toggle",
			"aria-label": `${u.disabled ? "Enable" : "Disable"} ${u.name}`,
			onclick: () => patch({ disabled: !u.disabled }) },
		u.disabled ? "Enable" : "Disable"),
		h("button", { type: "button", class: "user-passwd",
			"aria-label": `Reset the password of ${u.name}`,
			onclick: () => resetPassword(u.name) }, "Reset password"),
		h("button", { type: "button", class: "user-delete",
			"aria-label": `Delete ${u.name}`, onclick: async () => {
				if (!await confirmDialog(`Delete ${u.name}? Their ` +
					"API tokens stop working and are deleted " +
					"with them.", "Delete")) return;
				await attempt(rowErr, async () => {
					await api("/api/v1/users/" +
						encodeURIComponent(u.name),
						{ method: "DELETE" });
					await reload();
				});
			} }, "Delete"));
	return [h("span", { class: "user-name" }, u.name, self ? " (you)" : ""),
		u.email || "", role,
		h("span", { class: u.disabled ? "bad" : "ok" },
			u.disabled ? "disabled" : "active"),
		u.last_login_at ? when(u.last_login_at) : "never",
		h("div", {}, actions, rowErr)];
}

function addForm(done) {
	const err = errLine("user-add-err");
	const f = h("form", { id: "user-add", class: "card" },
		h("h2", {}, "Add a person"),
		h("label", {}, "Name", h("input", { name: "name", required: true,
			autocomplete: "off" })),
		h("label", {}, "Email (optional)", h("input", { name: "email",
			type: "email", autocomplete: "off" })),
		h("label", {}, "Role", h("select", { name: "role" },
			ROLES.map((r) => h("option", { value: r }, r)))),
		h("label", {}, "Password (8 or more characters)",
			h("input", { name: "password", type: "password",
				minlength: 8, required: true,
				autocomplete: "new-password" })),
		h("button", { type: "submit" }, "Add"), err);
	f.addEventListener("submit", async (ev) => {
		ev.preventDefault();
		const body = Object.fromEntries(new FormData(f));
		if (!body.email) delete body.email;
		const ok = await attempt(err, () => api("/api/v1/users",
			{ method: "POST", body }));
		if (!ok) return;
		f.reset();
		await done();
	});
	return f;
}

function resetPassword(name) {
	const err = errLine("passwd-err");
	const pw = h("input", { name: "password", type: "password",
		minlength: 8, required: true, autocomplete: "new-password" });
	const d = dialog("passwd-dialog", `New password for ${name}`,
		h("form", { method: "dialog" },
			h("label", {}, "New password (8 or more characters)", pw),
			h("div", { class: "row" },
				h("button", { type: "submit", value: "ok" }, "Save"),
				h("button", { type: "button",
					onclick: () => d.close() }, "Cancel")),
			err));
	d.querySelector("form").addEventListener("submit", async (ev) => {
		ev.preventDefault();
		const ok = await attempt(err, () => api("/api/v1/users/" +
			encodeURIComponent(name), { method: "PATCH",
			body: { password: pw.value } }));
		if (ok) d.close();
	});
	d.showModal();
	pw.focus();
}

// A table that becomes label: value lines a row on a phone.
function stacked(wrap) {
	stackCells(wrap, [...wrap.querySelectorAll("th")].map((t) =>
		t.textContent));
	return wrap;
}

/* --- dialogs ------------------------------------------------------------ */

// A modal dialog removed from the page when it closes.
function dialog(id, title, ...kids) {
	const d = h("dialog", { id, class: "users-dialog",
		"aria-labelledby": id + "-h" }, h("h2", { id: id + "-h" }, title),
		...kids);
	d.addEventListener("close", () => d.remove());
	document.body.append(d);
	return d;
}

// Ask before something that cannot be undone; answers true for yes.
function confirmDialog(text, yes) {
	return new Promise((resolve) => {
		let answer = false;
		const d = dialog("confirm-dialog", "Are you sure?", h("p", {}, text),
			h("div", { class: "row" },
				h("button", { type: "button", class: "confirm-yes",
					onclick: () => { answer = true; d.close(); } }, yes),
				h("button", { type: "button", class: "confirm-no",
					onclick: () => d.close() }, "Cancel")));
		d.addEventListener("close", () => resolve(answer));
		d.showModal();
		d.querySelector(".confirm-no").focus();
	});
}

/* --- tokens ------------------------------------------------------------- */

function tokens(el) {
	const err = errLine("tokens-err");
	const list = h("div", { id: "tokens-list" });
	el.append(h("h2", {}, "API tokens"), h("p", { class: "muted" },
		"For scripts and other tools: send one as Authorization: " +
		"Bearer. Only a hash is kept, so a token is shown once, when " +
		"it is made."), err, list, tokenForm(() => load()));

	async function load() {
		const r = await attempt(err, () => api("/api/v1/tokens"));
		if (!r) return;
		const now = Date.now() / 1000;
		const live = r.tokens.filter((t) => !t.revoked);
		list.replaceChildren(live.length ? stacked(table(["Name", "User",
			"Scopes", "Created", "Expires", "Last used", ""],
		live.map((t) => {
			const rowErr = h("p", { class: "bad", role: "alert" });
			const gone = t.expires_at && t.expires_at < now;
			return [h("span", { class: "token-name" }, t.name), t.user,
				t.scopes.split(",").join(", "), when(t.created_at),
				h("span", { class: gone ? "bad" : "" }, t.expires_at ?
					(gone ? "expired " : "") + when(t.expires_at) :
					"never"),
				t.last_used_at ? when(t.last_used_at) : "never",
				h("div", {}, h("button", { type: "button",
					class: "token-revoke",
					"aria-label": `Revoke the token ${t.name}`,
					onclick: async () => {
						if (!await confirmDialog("Revoke the " +
							`token ${t.name}? Whatever uses it ` +
							"stops working.", "Revoke")) return;
						await attempt(rowErr, async () => {
							await api("/api/v1/tokens/" +
								encodeURIComponent(t.id),
								{ method: "DELETE" });
							await load();
						});
					} }, "Revoke"), rowErr)];
		}), { id: "tokens-table" })) : h("p", { class: "muted",
			id: "tokens-none" }, "No live tokens."));
	}
	load();
}

function tokenForm(done) {
	const err = errLine("token-add-err");
	const f = h("form", { id: "token-add", class: "card" },
		h("h2", {}, "Make a token"),
		h("label", {}, "Name (what it is for)", h("input", { name: "name",
			required: true, maxlength: 128, autocomplete: "off" })),
		h("fieldset", {}, h("legend", {}, "Scopes"),
			SCOPES.map(([s, label]) => h("label", { class: "check" },
				h("input", { type: "checkbox", name: "scope", value: s,
					checked: s === "read" }), label))),
		h("label", {}, "Expires", h("select", { name: "ttl_s" },
			EXPIRY.map(([v, t]) => h("option", { value: v,
				selected: v === "2592000" }, t)))),
		h("button", { type: "submit" }, "Make the token"), err);
	f.addEventListener("submit", async (ev) => {
		ev.preventDefault();
		const fd = new FormData(f);
		const body = { name: fd.get("name"),
			scopes: fd.getAll("scope").join(","),
			ttl_s: Number(fd.get("ttl_s")) };
		if (!body.scopes) {
			err.textContent = "Choose at least one scope.";
			return;
		}
		const r = await attempt(err, () => api("/api/v1/tokens",
			{ method: "POST", body }));
		if (!r) return;
		f.reset();
		showOnce(body.name, r.token);
		await done();
	});
	return f;
}

// The new token, once: a read-only field, Copy, and a warning. Closing
// the dialog removes it, so the secret leaves the page with it.
function showOnce(name, secret) {
	const field = h("input", { id: "token-secret", readonly: true,
		value: secret, "aria-label": "The new token",
		spellcheck: "false", autocomplete: "off" });
	const said = h("p", { role: "status", id: "token-copied" });
	const d = dialog("token-dialog", `The token ${name}`,
		h("p", { class: "bad" }, "Copy it now: it is shown only this " +
			"once. pincer keeps only a hash and cannot show it again."),
		field,
		h("div", { class: "row" },
			h("button", { type: "button", id: "token-copy",
				onclick: async () => {
					field.select();
					try {
						/* A permission prompt nobody answers
						 * must not leave the button mute. */
						await Promise.race([navigator.clipboard
							.writeText(field.value), new Promise(
							(_, no) => setTimeout(no, 3000))]);
						said.textContent = "Copied.";
					} catch {
						said.textContent = "The browser did not " +
							"allow copying: the text is selected, " +
							"press Ctrl+C.";
					}
				} }, "Copy"),
			h("button", { type: "button", id: "token-done",
				onclick: () => d.close() }, "I have stored it")),
		said);
	d.addEventListener("close", () => { field.value = ""; });
	d.showModal();
	field.select();
}

/* --- audit -------------------------------------------------------------- */

function audit(el) {
	const err = errLine("audit-err");
	const rows = h("tbody");
	const older = h("button", { type: "button", id: "audit-older",
		hidden: true }, "Older");
	const input = (name, label, type = "text") => h("label", {}, label,
		h("input", { name, type, autocomplete: "off" }));
	const f = h("form", { id: "audit-filter", class: "filters" },
		input("actor", "Who"),
		input("action", "Action (or its start, e.g. user_)"),
		input("since", "From", "datetime-local"),
		input("until", "Until", "datetime-local"),
		h("div", { class: "row" },
			h("button", { type: "submit" }, "Filter"),
			h("button", { type: "reset" }, "Clear")));
	el.append(h("h2", {}, "Audit log"), f, err,
		h("div", { class: "scroll" }, h("table", { id: "audit-table" },
			h("thead", {}, h("tr", {}, ["Time", "Who", "Action",
				"Target", "Detail", "From"].map((t) =>
				h("th", { scope: "col" }, t)))), rows)),
		h("p", { class: "muted", id: "audit-none", hidden: true },
			"No entries match."), older);
	let next = null;

	function query(before) {
		const q = new URLSearchParams({ limit: "50" });
		const fd = new FormData(f);
		for (const k of ["actor", "action"])
			if (fd.get(k)) q.set(k, fd.get(k).trim());
		/* datetime-local is the reader's time; the API wants UTC. */
		for (const k of ["since", "until"])
			if (fd.get(k)) {
				const t = new Date(fd.get(k));
				if (!isNaN(t)) q.set(k, t.toISOString());
			}
		if (before) q.set("before", String(before));
		return "/api/v1/audit?" + q;
	}
	async function load(before) {
		const r = await attempt(err, () => api(query(before)));
		if (!r) return;
		if (!before) rows.replaceChildren();
		for (const e of r.entries)
			rows.append(h("tr", {}, [when(e.ts), e.actor, e.action,
				e.target, e.detail, e.ip].map((c) => h("td", {}, c))));
		next = r.next_before;
		older.hidden = !next;
		el.querySelector("#audit-none").hidden = rows.children.length > 0;
	}
	f.addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
	f.addEventListener("reset", () => setTimeout(() => load(), 0));
	older.addEventListener("click", () => load(next));
	load();
}
