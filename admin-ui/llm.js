// SPDX-License-Identifier: MIT
// llm.js: the LLM page: providers (add, edit, delete, test), routes and
// budgets, all kept in the config's "llm" section and saved by PUTting
// the whole config back (the server checks it and applies it as SIGHUP
// does); and usage charts per day and per model from /api/v1/usage.
//
// A provider's key is a secret named by its "key" field: typed once into
// a password field, stored with PUT /api/v1/secrets/{name}, then the
// field is cleared. No key value is ever read back: the page knows only
// whether a secret of that name exists.
import { api } from "./api.js";
import { h, errLine, attempt, table, usd } from "./ui.js";
import { columns, bars } from "./chart.js";

const KINDS = ["openai", "anthropic", "openai-compatible"];
const DAY_MS = 86400000;

// The page's state: the config as GET /api/v1/config gave it, its etag,
// and the names of the secrets that exist.
let st = { config: null, etag: "", secrets: new Set() };
let flash = "";	/* "Saved." after a provider's save */

export function render(el) {
	st = { config: null, etag: "", secrets: new Set() };
	const parts = {
		providers: h("section", { id: "llm-providers",
			"aria-labelledby": "llm-providers-h" }),
		routes: h("section", { id: "llm-routes",
			"aria-labelledby": "llm-routes-h" }),
		budgets: h("section", { id: "llm-budgets",
			"aria-labelledby": "llm-budgets-h" }),
		usage: h("section", { id: "llm-usage",
			"aria-labelledby": "llm-usage-h" }),
	};
	const loadErr = errLine("llm-load-error");
	el.replaceChildren(h("div", { class: "llm" }, h("h1", {}, "LLM"),
		loadErr, ...Object.values(parts)));
	let alive = true;
	const reload = async () => {
		const ok = await attempt(loadErr, async () => {
			const [c, s] = await Promise.all([api("/api/v1/config"),
				api("/api/v1/secrets")]);
			st = { config: c.config || {}, etag: c.etag,
				secrets: new Set(s.secrets.map((x) =>
					x.name)) };
			return true;
		});
		if (!alive || !ok && !st.config) return;
		drawProviders(parts.providers, reload);
		drawRoutes(parts.routes, reload);
		drawBudgets(parts.budgets, reload);
	};
	usage(parts.usage);
	reload();
	return () => { alive = false; };
}

function llm() {
	return st.config.llm || {};
}

// PUT the whole config with section replaced in "llm" (undefined: the
// key removed); the server's words on failure. If-Match: a config that
// changed meanwhile is refused rather than overwritten.
async function saveLlm(key, value) {
	const cfg = structuredClone(st.config);
	cfg.llm = { ...(cfg.llm || {}) };
	if (value === undefined) delete cfg.llm[key];
	else cfg.llm[key] = value;
	const out = await api("/api/v1/config", { method: "PUT", body: cfg,
		headers: { "If-Match": st.etag } });
	st.etag = out.etag || st.etag;
	st.config = cfg;
	return out;
}

// restart_required: the keys whose change waits for a restart.
function savedNote(out) {
	const r = out && out.restart_required;
	return Array.isArray(r) && r.length ? `Saved; ${r.join(", ")} ` +
		"apply after a restart." : "Saved.";
}

/* ---- providers ---- */

function keyState(p) {
	if (!p.key) return ["none", "no key (none needed)"];
	return st.secrets.has(p.key) ? ["set", "key set"] :
		["missing", "no key"];
}

function drawProviders(sec, reload) {
	const list = llm().providers || [];
	/* A save's note outlives the redraw that follows it. */
	const formBox = h("div", { id: "llm-provider-form-box" },
		flash ? h("p", { class: "ok", role: "status" }, flash) : null);
	flash = "";
	const add = h("button", { type: "button", id: "llm-provider-add",
		onclick: () => providerForm(formBox, null, reload) },
	"Add a provider");
	const rows = list.map((p, i) => {
		const [ks, kt] = keyState(p);
		const result = h("p", { class: "muted", role: "status",
			id: `llm-test-${p.name}` });
		const test = h("button", { type: "button",
			"aria-label": `Test ${p.name}`,
			onclick: () => testProvider(p.name, test, result) },
		"Test");
		const edit = h("button", { type: "button",
			"aria-label": `Edit ${p.name}`,
			onclick: () => providerForm(formBox, i, reload) },
		"Edit");
		const del = h("button", { type: "button",
			"aria-label": `Delete ${p.name}`,
			onclick: () => confirmDelete(actions, p.name, i,
				reload) }, "Delete");
		const actions = h("div", { class: "row wrap" }, test, edit,
			del);
		return [p.name, p.kind || "openai", p.base_url ||
			h("span", { class: "muted" }, "(default)"),
		(p.models || []).join(", "),
		h("span", { class: ks === "missing" ? "bad" : "ok",
			"data-key": ks }, kt),
		h("div", {}, actions, result)];
	});
	const heads = ["Name", "Kind", "Base URL", "Models", "Key",
		"Actions"];
	const t = table(heads, rows, { id: "llm-provider-table",
		class: "stack" });
	sec.replaceChildren(h("h2", { id: "llm-providers-h" }, "Providers"),
		list.length ? t : h("p", { class: "muted" },
			"No provider yet: add one."), add, formBox);
}

async function testProvider(name, btn, line) {
	btn.disabled = true;
	line.className = "muted";
	line.textContent = "Testing…";
	try {
		const r = await api(`/api/v1/llm/providers/` +
			`${encodeURIComponent(name)}/test`, { method: "POST",
			body: {} });
		line.className = r.ok ? "ok" : "bad";
		line.textContent = (r.ok ? "OK: " : "Failed: ") + r.message;
	} catch (e) {
		line.className = "bad";
		line.textContent = e.message;
	} finally {
		btn.disabled = false;
	}
}

function confirmDelete(box, name, i, reload) {
	const err = errLine();
	const keep = [...box.childNodes];
	const back = () => {
		box.replaceChildren(...keep);
		box.querySelector(`[aria-label="Delete ${name}"]`).focus();
	};
	/* The focus goes to Cancel: Enter there deletes nothing. */
	const cancel = h("button", { type: "button", onclick: back },
		"Cancel");
	box.replaceChildren(h("span", {}, `Delete ${name}?`),
		h("button", { type: "button", class: "danger",
			onclick: async () => {
				const list = [...(llm().providers || [])];
				list.splice(i, 1);
				const out = await attempt(err, () =>
					saveLlm("providers", list));
				if (out !== undefined)
					reload();
			} }, "Yes, delete"),
		cancel, err);
	cancel.focus();
}

// A labelled control; the hint is outside the label (so it is not part
// of the control's name) and tied to it by aria-describedby.
let fields = 0;
function field(label, input, hint) {
	const n = ++fields;
	if (!input.id) input.id = `llm-f${n}`;
	if (hint) input.setAttribute("aria-describedby", `llm-h${n}`);
	return h("div", { class: "field" },
		h("label", { for: input.id }, label), input,
		hint ? h("span", { class: "muted hint", id: `llm-h${n}` },
			hint) : null);
}

// The add/edit form; i is the provider's index, null for a new one.
function providerForm(box, i, reload) {
	const old = i === null ? {} : llm().providers[i];
	const inp = (name, attrs = {}) => h("input", { name, ...attrs });
	const f = {
		name: inp("name", { required: true, value: old.name || "",
			pattern: "[A-Za-z0-9_\\-]{1,63}",
			autocomplete: "off" }),
		kind: h("select", { name: "kind" }, KINDS.map((k) =>
			h("option", { value: k, selected: (old.kind ||
				"openai") === k }, k))),
		base_url: inp("base_url", { type: "url",
			value: old.base_url || "",
			placeholder: "https://api.openai.com/v1" }),
		models: inp("models", { value: (old.models || []).join(", "),
			placeholder: "gpt-4o, gpt-4o-mini" }),
		timeout_ms: inp("timeout_ms", { type: "number", min: 100,
			max: 3600000, value: old.timeout_ms ?? "",
			placeholder: "120000" }),
		keyname: inp("keyname", { value: old.key || "",
			autocomplete: "off",
			pattern: "[A-Za-z0-9_.\\-]{1,64}" }),
		secret: inp("secret", { type: "password",
			autocomplete: "new-password" }),
	};
	const [ks, kt] = i === null ? ["missing", "no key"] : keyState(old);
	const prices = priceRows(old.prices || {});
	const err = errLine("llm-provider-error");
	const form = h("form", { id: "llm-provider-form",
		"aria-label": i === null ? "Add a provider" :
			`Edit ${old.name}` },
	h("h3", {}, i === null ? "Add a provider" : `Edit ${old.name}`),
	field("Name", f.name, "letters, digits, - and _"),
	field("Kind", f.kind),
	field("Base URL", f.base_url, "empty: the kind's default " +
		"(openai-compatible has none)"),
	field("Models", f.models, "comma-separated; clients may name them"),
	field("Timeout (ms)", f.timeout_ms, "to the answer's start; " +
		"empty: 120000"),
	field("Key secret name", f.keyname, "empty with a key typed: " +
		"NAME_key"),
	field("API key", f.secret),
	h("p", { id: "llm-key-state", class: ks === "set" ? "ok" : "muted" },
		i === null ? "No key stored yet; typed here it is stored " +
		"once and never shown again." : kt + (ks === "set" ?
		"; type a new one to replace it." : ".")),
	h("fieldset", {}, h("legend", {}, "Prices (USD per million tokens)"),
		prices.el),
	h("div", { class: "row" }, h("button", { type: "submit" }, "Save"),
		h("button", { type: "button", onclick: () =>
			box.replaceChildren() }, "Cancel")), err);
	form.addEventListener("submit", async (ev) => {
		ev.preventDefault();
		const p = { ...old };
		const name = f.name.value.trim();
		p.name = name;
		p.kind = f.kind.value;
		const set = (k, v) => { if (v === "" || v === undefined ||
			(Array.isArray(v) && !v.length)) delete p[k];
		else p[k] = v; };
		set("base_url", f.base_url.value.trim());
		set("models", f.models.value.split(",").map((m) => m.trim())
			.filter(Boolean));
		set("timeout_ms", f.timeout_ms.value === "" ? "" :
			Number(f.timeout_ms.value));
		const typed = f.secret.value;
		let kn = f.keyname.value.trim();
		if (!kn && typed) kn = `${name}_key`;
		set("key", kn);
		const pr = prices.read();
		set("prices", Object.keys(pr).length ? pr : "");
		const done = await attempt(err, async () => {
			if (typed) {
				await api(`/api/v1/secrets/` +
					`${encodeURIComponent(kn)}`, {
					method: "PUT",
					body: { value: typed } });
			}
			f.secret.value = "";
			const list = [...(llm().providers || [])];
			if (i === null) list.push(p);
			else list[i] = p;
			return saveLlm("providers", list);
		});
		/* The typed key goes whatever happened: it is never kept. */
		f.secret.value = "";
		if (done !== undefined) {
			flash = savedNote(done);
			reload();
		}
	});
	box.replaceChildren(form);
	f.name.focus();
}

// Price rows: model, input, output, cached input.
function priceRows(prices) {
	const ed = rowEditor(["Model", "Input", "Output", "Cached input"],
		(r = {}) => [
			h("input", { value: r.model || "",
				autocomplete: "off" }),
			num(r.input), num(r.output), num(r.cached_input)],
		Object.entries(prices).map(([model, v]) => ({ model, ...v })),
		"price");
	return { el: ed.el, read() {
		const out = {};
		for (const [m, i, o, c] of ed.values()) {
			if (!m.trim()) continue;
			const v = {};
			if (i !== "") v.input = Number(i);
			if (o !== "") v.output = Number(o);
			if (c !== "") v.cached_input = Number(c);
			out[m.trim()] = v;
		}
		return out;
	} };
}

function num(v, attrs = {}) {
	return h("input", { type: "number", min: 0, step: "any",
		value: v ?? "", ...attrs });
}

// A small table of rows of inputs, with Add and Remove: heads are the
// columns, make(row) answers a row's controls, each labelled by its
// column and row number. values() answers each row's values.
function rowEditor(heads, make, init, what) {
	const body = h("tbody");
	const label = () => [...body.children].forEach((tr, n) =>
		[...tr.querySelectorAll("input, select")].forEach((c, k) =>
			c.setAttribute("aria-label",
				`${heads[k]} of ${what} ${n + 1}`)));
	const add = (r) => {
		const tr = h("tr", {}, make(r).map((c) => h("td", {}, c)),
			h("td", {}, h("button", { type: "button",
				class: "remove", onclick: () => {
					tr.remove();
					label();
				} }, `Remove`)));
		body.append(tr);
		label();
		return tr;
	};
	init.forEach(add);
	const el = h("div", {}, h("div", { class: "scroll" },
		h("table", { class: "edit" }, h("thead", {}, h("tr", {},
			heads.map((t) => h("th", { scope: "col" }, t)),
			h("th", { scope: "col" }, h("span", { class: "skip" },
				"Remove")))), body)),
	h("button", { type: "button", class: "add", onclick: () =>
		add().querySelector("input, select").focus() },
	`Add a ${what}`));
	return { el, values: () => [...body.children].map((tr) =>
		[...tr.querySelectorAll("input, select")].map((c) =>
			c.value)) };
}

/* ---- routes and budgets ---- */

function sectionSaver(sec, title, intro, ed, save, reload) {
	const err = errLine(sec.id + "-error");
	const note = h("p", { class: "ok", role: "status" });
	const btn = h("button", { type: "button", class: "save",
		onclick: async () => {
			note.textContent = "";
			const out = await attempt(err, save);
			if (out !== undefined) {
				await reload();
				sec.querySelector("[role=status]")
					.textContent = savedNote(out);
			}
		} }, `Save ${title.toLowerCase()}`);
	sec.replaceChildren(h("h2", { id: sec.id + "-h" }, title),
		h("p", { class: "muted" }, intro), ed.el,
		h("div", { class: "row" }, btn), err, note);
}

function drawRoutes(sec, reload) {
	const routes = llm().routes || {};
	const ed = rowEditor(["Name", "Targets", "Cache TTL (s)"],
		(r = {}) => [
			h("input", { value: r.name || "",
				autocomplete: "off" }),
			h("input", { value: (r.targets || []).join(", "),
				placeholder: "openai/gpt-4o, …" }),
			num(r.ttl, { step: 1 })],
		Object.entries(routes).map(([name, v]) => Array.isArray(v) ?
			{ name, targets: v } : { name, targets: v.targets,
				ttl: v.cache_ttl_s }), "route");
	sectionSaver(sec, "Routes", "A client's model may be a route's " +
		"name: its targets (PROVIDER/MODEL) are tried in order.", ed,
	() => {
		const out = {};
		for (const [n, t, ttl] of ed.values()) {
			if (!n.trim()) continue;
			const targets = t.split(",").map((x) => x.trim())
				.filter(Boolean);
			out[n.trim()] = ttl === "" ? targets :
				{ targets, cache_ttl_s: Number(ttl) };
		}
		return saveLlm("routes", Object.keys(out).length ? out :
			undefined);
	}, reload);
}

function drawBudgets(sec, reload) {
	const sel = (v, opts) => h("select", {}, opts.map((o) =>
		h("option", { value: o, selected: o === v }, o)));
	const ed = rowEditor(["Caller", "Period", "Tokens", "USD"],
		(r = {}) => [
			h("input", { value: r.caller || "all",
				autocomplete: "off", list: "llm-callers" }),
			sel(r.period || "day", ["day", "month"]),
			num(r.tokens, { step: 1 }), num(r.usd)],
		llm().budgets || [], "budget");
	sectionSaver(sec, "Budgets", "Caller: all, each, user:NAME or " +
		"sandbox:NAME; UTC days and months. With none, the default " +
		"is 10 million tokens a day for all callers.", ed, () => {
		const out = ed.values().filter(([c]) => c.trim()).map(
			([caller, period, t, u]) => {
				const b = { caller: caller.trim(), period };
				if (t !== "") b.tokens = Number(t);
				if (u !== "") b.usd = Number(u);
				return b;
			});
		return saveLlm("budgets", out.length ? out : undefined);
	}, reload);
	sec.append(h("datalist", { id: "llm-callers" },
		["all", "each"].map((v) => h("option", { value: v }))));
}

/* ---- usage ---- */

function day(ms) {
	return new Date(ms).toISOString().slice(0, 10);
}

function tokens(n) {
	return Math.round(n).toLocaleString("en");
}

function usage(sec) {
	const range = h("select", { id: "llm-range" },
		[7, 30, 90].map((n) => h("option", { value: n,
			selected: n === 30 }, `Last ${n} days`)));
	const metric = h("select", { id: "llm-metric" },
		h("option", { value: "tokens" }, "Tokens"),
		h("option", { value: "cost" }, "Cost (USD)"));
	const err = errLine("llm-usage-error");
	const byDay = h("div", { id: "llm-usage-day" });
	const byModel = h("div", { id: "llm-usage-model" });
	sec.replaceChildren(h("h2", { id: "llm-usage-h" }, "Usage"),
		h("div", { class: "row wrap" }, field("Range", range),
			field("Show", metric)), err,
		h("h3", {}, "Per day (UTC)"), byDay,
		h("h3", {}, "Per model"), byModel);
	let seq = 0;
	const load = async () => {
		const mine = ++seq;
		const n = Number(range.value);
		const to = Date.now();
		const q = `from=${day(to - (n - 1) * DAY_MS)}&to=${day(to)}`;
		const got = await attempt(err, () => Promise.all([
			api(`/api/v1/usage?group_by=day&${q}`),
			api(`/api/v1/usage?group_by=model&${q}`)]));
		if (got === undefined || mine !== seq) return;
		const cost = metric.value === "cost";
		const val = (r) => cost ? r.cost_usd :
			r.input_tokens + r.output_tokens;
		const fmt = cost ? money : tokens;
		const what = cost ? "cost in USD" : "tokens";
		const seen = new Map(got[0].rows.map((r) => [r.key, r]));
		const days = [];
		for (let i = n - 1; i >= 0; i--) {
			const k = day(to - i * DAY_MS);
			days.push({ label: k.slice(5), value: seen.has(k) ?
				val(seen.get(k)) : 0 });
		}
		byDay.replaceChildren(columns(days, fmt,
			`${what} per day, last ${n} days`),
		usageTable("Day", got[0].rows, "llm-day-table"));
		const models = got[1].rows.map((r) => ({
			label: r.key || "(none)", value: val(r) }));
		byModel.replaceChildren(models.length ? bars(models, fmt,
			`${what} per model, last ${n} days`) : "",
		usageTable("Model", got[1].rows, "llm-model-table"));
	};
	range.addEventListener("change", load);
	metric.addEventListener("change", load);
	load();
}

function money(v) {
	return v > 0 && v < 0.01 ? "$" + v.toFixed(4) : usd(v);
}

function usageTable(head, rows, id) {
	if (!rows.length)
		return h("p", { class: "muted", id },
			"No calls in this range.");
	return table([head, "Calls", "Failed", "Input tokens",
		"Output tokens", "Cost"], rows.map((r) => [r.key || "(none)",
		tokens(r.requests), tokens(r.errors), tokens(r.input_tokens),
		tokens(r.output_tokens), money(r.cost_usd)]), { id });
}
