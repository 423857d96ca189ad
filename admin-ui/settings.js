// SPDX-License-Identifier: MIT
// settings.js: the config file as a form made from the options table
// (GET /api/v1/config), grouped by the first part of each name, with the
// file's raw JSON beside it; both edit one object and stay in step. Save
// sends the whole file (PUT, If-Match: the etag it was read with); the
// server checks it as pincerd checks it at start and says every problem.
// Below, the secrets the config names (keys, tokens): stored, listed by
// name, deleted; a value is typed once and never shown again.
import { api } from "./api.js";
import { h, errLine, attempt, table, when } from "./ui.js";
import { systemSection } from "./system.js";

const GENERAL = "general";	/* the group of names without a dot */

let cfg = {};		/* the file's JSON as it will be saved */
let etag = "";
let rawBad = false;	/* the raw text does not parse: Save waits */
const jsonBad = new Set();	/* json options whose text does not parse */
const controls = new Map();	/* option name -> { opt, el } */

// The value at a dotted path of cfg, or undefined.
function getPath(o, name) {
	for (const k of name.split(".")) {
		if (o === null || typeof o !== "object" || !Object.hasOwn(o, k))
			return undefined;
		o = o[k];
	}
	return o;
}

// Set (or with undefined, remove) a dotted path; empty parents go too.
function setPath(o, name, v) {
	const keys = name.split("."), last = keys.pop(), chain = [];
	for (const k of keys) {
		if (o[k] === null || typeof o[k] !== "object" ||
		    Array.isArray(o[k])) {
			if (v === undefined) return;
			o[k] = {};
		}
		chain.push([o, k]);
		o = o[k];
	}
	if (v === undefined) delete o[last];
	else o[last] = v;
	for (const [parent, k] of chain.reverse())
		if (Object.keys(parent[k]).length === 0) delete parent[k];
		else break;
}

const idOf = (name) => "o-" + name.replace(/[^a-z0-9_-]/gi, "-");

function listText(v) { return Array.isArray(v) ? v.join("\n") : ""; }

// Put v (a value as the file writes it) into a control.
function show(opt, el, v) {
	if (opt.type === "bool") el.checked = v === true;
	else if (opt.type === "list") el.value = listText(v);
	else if (opt.type === "json") el.value = JSON.stringify(v, null, 2);
	else el.value = v === undefined || v === null ? "" : String(v);
}

// The value a control holds, as the file writes it; undefined: leave it
// out of the file (the default applies).
function read(opt, el) {
	switch (opt.type) {
	case "bool": return el.checked;
	case "int":
		/* Kept as typed when not a number, so the server says why. */
		return el.value.trim() === "" ? undefined :
			Number.isFinite(Number(el.value)) ? Number(el.value) :
			el.value;
	case "list": return el.value.split("\n").map((s) => s.trim())
		.filter((s) => s !== "");
	case "json": return JSON.parse(el.value);
	default: return el.value;
	}
}

// What a control shows: the variable's or the command line's value when
// one wins over the file, else the file's, else the default.
function shown(opt) {
	if (opt.from_env || opt.from_cli) return opt.value;
	const v = getPath(cfg, opt.name);
	return v === undefined ? opt.default : v;
}

function control(opt, help) {
	const a = { id: idOf(opt.name), "aria-describedby": help,
		disabled: opt.from_env || opt.from_cli };
	switch (opt.type) {
	case "bool": return h("input", { ...a, type: "checkbox" });
	case "int": return h("input", { ...a, type: "number", step: 1,
		min: opt.min, max: opt.max, inputmode: "numeric" });
	case "enum": return h("select", a, opt.values.map((v) =>
		h("option", { value: v }, v)));
	case "list": return h("textarea", { ...a, rows: 3,
		spellcheck: "false" });
	case "json": return h("textarea", { ...a, rows: 6,
		spellcheck: "false" });
	default: return h("input", { ...a, type: "text", spellcheck: "false",
		autocomplete: "off" });
	}
}

// Words under the help: the type's limits, the default, what overrides.
function facts(opt) {
	const f = [];
	if (opt.type === "int") f.push(`${opt.min} to ${opt.max}`);
	if (opt.type === "list") f.push("one per line");
	if (opt.type !== "json" && opt.default !== "" &&
	    !(Array.isArray(opt.default) && opt.default.length === 0))
		f.push("default " + (Array.isArray(opt.default) ?
			opt.default.join(", ") : String(opt.default)));
	return f.join("; ");
}

function optionRow(opt, onChange) {
	const hid = idOf(opt.name) + "-help";
	const el = control(opt, hid);
	const bad = errLine(idOf(opt.name) + "-error");
	const marks = [];
	if (opt.restart)
		marks.push(h("span", { class: "mark" }, "needs a restart"));
	if (opt.from_env)
		marks.push(h("span", { class: "mark env" },
			`set by ${opt.env}: read-only here`));
	else if (opt.from_cli)
		marks.push(h("span", { class: "mark env" },
			"set on the command line: read-only here"));
	const name = h("code", {}, opt.name);
	const label = opt.type === "bool" ?
		h("label", { class: "check" }, el, name) :
		h("label", { for: el.id }, name);
	const running = opt.restart && !opt.from_env && !opt.from_cli &&
		JSON.stringify(shown(opt)) !== JSON.stringify(opt.value) ?
		h("p", { class: "muted" }, "Running with " +
			JSON.stringify(opt.value) + " until pincerd restarts.") :
		null;
	const row = h("div", { class: "opt", "data-name": opt.name },
		h("div", { class: "opt-head" }, label, marks),
		opt.type === "bool" ? null : el,
		h("p", { class: "muted help", id: hid }, opt.help,
			facts(opt) ? h("br") : null, facts(opt)),
		running, bad);
	show(opt, el, shown(opt));
	el.addEventListener(opt.type === "bool" || opt.type === "enum" ?
		"change" : "input", () => onChange(opt, el, bad));
	controls.set(opt.name, { opt, el, bad });
	return row;
}

// The options in groups by the first part of the name, in table order.
function groups(options) {
	const g = new Map();
	for (const o of options) {
		const k = o.name.includes(".") ? o.name.split(".")[0] : GENERAL;
		if (!g.has(k)) g.set(k, []);
		g.get(k).push(o);
	}
	return g;
}

export function render(el) {
	const status = h("p", { id: "settings-status", role: "status" });
	const err = errLine("settings-error");
	const loadErr = errLine("settings-load-error");
	const body = h("div", { id: "settings-body" });
	el.replaceChildren(h("h1", {}, "Settings"), loadErr, body,
		secrets(), systemSection());
	const load = async () => {
		const r = await attempt(loadErr, () => api("/api/v1/config"));
		if (r) draw(body, r, status, err, load);
	};
	load();
	return () => controls.clear();
}

// The secrets: a list of names (each with Delete) and a form to store one.
function secrets() {
	const list = h("div", { id: "secrets-list" });
	const err = errLine("secrets-error");
	const name = h("input", { id: "secret-name", required: true,
		maxlength: 64, autocomplete: "off", spellcheck: "false",
		"aria-describedby": "secret-name-help" });
	const value = h("input", { id: "secret-value", type: "password",
		required: true, autocomplete: "new-password" });
	const said = h("p", { id: "secrets-status", role: "status",
		class: "ok" });
	const load = async () => {
		const r = await attempt(err, () => api("/api/v1/secrets"));
		if (!r) return;
		list.replaceChildren(r.secrets.length === 0 ?
			h("p", { class: "muted" }, "No secret is stored.") :
			table(["Name", "Changed", ""], r.secrets.map((x) => [
				h("code", {}, x.name), when(x.updated_at),
				h("button", { type: "button",
					"aria-label": "Delete " + x.name,
					onclick: () => drop(x.name) }, "Delete")]),
			{ id: "secrets-table" }));
	};
	const drop = async (n) => {
		said.textContent = "";
		if (!confirm(`Delete the secret ${n}? What names it stops ` +
		    "working."))
			return;
		if (await attempt(err, () => api("/api/v1/secrets/" +
		    encodeURIComponent(n), { method: "DELETE" })) !== undefined)
			said.textContent = `Deleted ${n}.`;
		load();
	};
	const form = h("form", { id: "secret-form", novalidate: true },
		h("label", { for: "secret-name" }, "Name"), name,
		h("p", { id: "secret-name-help", class: "muted" }, "1 to 64 of " +
			"A-Z, a-z, 0-9, _ . -; an existing name is replaced."),
		h("label", { for: "secret-value" }, "Value (not shown again)"),
		value, h("button", { type: "submit" }, "Store"));
	form.addEventListener("submit", async (ev) => {
		ev.preventDefault();
		said.textContent = "";
		const n = name.value.trim();
		const out = await attempt(err, () => api("/api/v1/secrets/" +
			encodeURIComponent(n), { method: "PUT",
			body: { value: value.value } }));
		if (out === undefined) return;
		/* The value leaves the page once it is stored. */
		value.value = "";
		name.value = "";
		said.textContent = `Stored ${n}.`;
		load();
	});
	load();
	return h("section", { id: "secrets", "aria-labelledby": "secrets-h" },
		h("h2", { id: "secrets-h" }, "Secrets"),
		h("p", { class: "muted" }, "Provider keys, bot tokens and other " +
			"credentials, sealed in the store. The config names them " +
			"(e.g. objstore.access_key_id, browser.remote_token); a " +
			"value is never shown again. The LLM and Channels pages " +
			"store their own."),
		list, form, said, err);
}

function draw(body, r, status, err, reload) {
	/* A reload (after a save) keeps what the reader had open. */
	const q = body.querySelector("#settings-filter")?.value || "";
	const open = [...body.querySelectorAll("details.group[open]")]
		.map((d) => d.id);
	controls.clear();
	jsonBad.clear();
	rawBad = false;
	etag = r.etag;
	cfg = r.config && typeof r.config === "object" ? r.config : {};
	const raw = h("textarea", { id: "settings-raw", rows: 24,
		spellcheck: "false", "aria-describedby": "settings-raw-help" });
	const rawErr = errLine("settings-raw-error");
	const syncRaw = () => { raw.value = JSON.stringify(cfg, null, 2); };
	const dirty = () => {
		status.textContent = "Not saved yet.";
		status.className = "muted";
	};
	const onChange = (opt, el, bad) => {
		bad.textContent = "";
		jsonBad.delete(opt.name);
		let v;
		try {
			v = read(opt, el);
		} catch (e) {
			bad.textContent = `Not JSON yet: ${e.message}`;
			jsonBad.add(opt.name);
			return;
		}
		setPath(cfg, opt.name, v);
		syncRaw();
		rawErr.textContent = "";
		rawBad = false;
		dirty();
	};
	raw.addEventListener("input", () => {
		let v;
		try {
			v = JSON.parse(raw.value);
			if (v === null || typeof v !== "object" ||
			    Array.isArray(v))
				throw new Error("the config is a JSON object, { … }");
		} catch (e) {
			rawErr.textContent = `Not valid JSON yet: ${e.message}`;
			rawBad = true;
			return;
		}
		rawErr.textContent = "";
		rawBad = false;
		cfg = v;
		for (const { opt, el, bad } of controls.values()) {
			show(opt, el, shown(opt));
			bad.textContent = "";
		}
		jsonBad.clear();
		dirty();
	});
	syncRaw();

	const filter = h("input", { id: "settings-filter", type: "search",
		placeholder: "log, http.threads, restart…", autocomplete: "off" });
	const form = h("form", { id: "settings-form", novalidate: true,
		"aria-label": "Options" });
	for (const [name, opts] of groups(r.options))
		form.append(h("details", { class: "group", id: "g-" + name },
			h("summary", {}, name, h("span", { class: "muted" },
				` (${opts.length})`)),
			opts.map((o) => optionRow(o, onChange))));
	filter.addEventListener("input", () => find(form, filter.value));

	const save = h("button", { type: "button", id: "settings-save" },
		"Save");
	const again = h("button", { type: "button", id: "settings-reload" },
		"Load the file again");
	save.addEventListener("click", async () => {
		if (rawBad || jsonBad.size) {
			err.textContent = rawBad ? "The raw JSON does not parse: " +
				"fix it first." : "Not JSON: " +
				[...jsonBad].join(", ") + ". Fix it first.";
			return;
		}
		save.disabled = true;
		status.textContent = "Saving…";
		status.className = "muted";
		const out = await attempt(err, () => api("/api/v1/config", {
			method: "PUT", body: cfg, headers: { "If-Match": etag } }));
		save.disabled = false;
		for (const c of controls.values())
			if (!jsonBad.has(c.opt.name)) c.bad.textContent = "";
		if (!out) {
			blame(err.textContent, r.path);
			status.textContent = "Not saved: the file is unchanged.";
			status.className = "bad";
			return;
		}
		const rs = out.restart_required;
		/* Said once the form shows what is now in effect. */
		await reload();
		status.className = "ok";
		status.textContent = rs.length ? "Saved and applied, except " +
			rs.join(", ") + ": " + (rs.length > 1 ? "they need" :
			"it needs") + " a restart of pincerd." :
			"Saved and applied.";
	});
	again.addEventListener("click", async () => {
		err.textContent = "";
		status.textContent = "";
		await reload();
		status.textContent = "Loaded from the file.";
		status.className = "muted";
	});

	const where = [h("code", {}, r.path), r.writable ? "" :
		" (pincerd cannot write it: saving will be refused)"];
	body.replaceChildren(...[
		h("p", {}, "The config file ", where, ". Saved changes apply at " +
			"once, as a SIGHUP reload would; options marked “needs a " +
			"restart” keep their running value until pincerd restarts."),
		r.problem ? h("p", { class: "bad" }, r.problem + ". Saving " +
			"replaces the file with the JSON below.") : null,
		h("div", { class: "settings-bar" }, save, again, status),
		err,
		h("div", { class: "settings-split" },
			h("section", { "aria-labelledby": "settings-form-h" },
				h("h2", { id: "settings-form-h" }, "Options"),
				h("label", { for: "settings-filter" },
					"Find an option"), filter,
				h("p", { id: "settings-none", class: "muted",
					hidden: true }, "No option matches."),
				form),
			h("section", { class: "raw", "aria-labelledby":
				"settings-raw-h" },
				h("h2", { id: "settings-raw-h" }, "Raw JSON"),
				h("label", { for: "settings-raw" }, "The file as it " +
					"will be saved"),
				raw,
				h("p", { id: "settings-raw-help", class: "muted" },
					"Only what differs from the defaults needs to " +
					"be here. Edits here show in the form, and back."),
				rawErr))].filter(Boolean));
	filter.value = q;
	if (q) find(form, q);
	for (const id of open) form.querySelector("#" + id).open = true;
}

// Each line of the server's answer that names an option is also put under
// that option (its group opened), without the file's path in front.
function blame(words, path) {
	for (const line of words.split("\n")) {
		let best = null;
		for (const name of controls.keys())
			if (line.includes(name + ":") || line.includes(name + " ") ||
			    line.endsWith(name))
				if (!best || name.length > best.length) best = name;
		if (!best) continue;
		const { el, bad } = controls.get(best);
		bad.textContent = line.startsWith(path + ": ") ?
			line.slice(path.length + 2) : line;
		const g = el.closest("details");
		if (g) g.open = true;
	}
}

// Show the options whose name or help holds every word typed (and their
// groups, opened); all of them, groups closed, when nothing is typed.
function find(form, q) {
	const words = q.toLowerCase().split(/\s+/).filter(Boolean);
	let any = false;
	for (const g of form.querySelectorAll("details.group")) {
		let n = 0;
		for (const row of g.querySelectorAll(".opt")) {
			const { opt } = controls.get(row.dataset.name);
			const text = (opt.name + " " + opt.help +
				(opt.restart ? " restart" : "")).toLowerCase();
			const hit = words.every((w) => text.includes(w));
			row.hidden = !hit;
			n += hit;
		}
		g.hidden = n === 0;
		g.open = words.length > 0 && n > 0;
		any = any || n > 0;
	}
	document.getElementById("settings-none").hidden = any;
}
