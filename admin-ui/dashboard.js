// SPDX-License-Identifier: MIT
// dashboard.js: the gateway at a glance. Each card asks its own endpoint
// and shows its own error in words, so one failing call blanks one card.
import { api } from "./api.js";
import { when } from "./ui.js";

const REFRESH_MS = 10000;

// A card: a heading, a list of terms, and a line for its error.
function card(parent, id, title) {
	const s = document.createElement("section");
	s.className = "card";
	s.id = id;
	s.setAttribute("aria-labelledby", id + "-h");
	const h = document.createElement("h2");
	h.id = id + "-h";
	h.textContent = title;
	const dl = document.createElement("dl");
	const err = document.createElement("p");
	err.className = "bad";
	err.setAttribute("role", "alert");
	s.append(h, dl, err);
	parent.append(s);
	return { dl, err };
}

// Fill a card's list from [[term, value, id, class]]; clear its error.
function fill(c, rows) {
	c.dl.replaceChildren();
	for (const [term, value, id, cls] of rows) {
		const dt = document.createElement("dt");
		const dd = document.createElement("dd");
		dt.textContent = term;
		dd.textContent = value;
		if (id) dd.id = id;
		if (cls) dd.className = cls;
		c.dl.append(dt, dd);
	}
	c.err.textContent = "";
}

async function load(c, f) {
	try {
		fill(c, await f());
	} catch (e) {
		c.dl.replaceChildren();
		c.err.textContent = e.message;
	}
}

async function probe(path) {
	try {
		return [(await api(path, { noRetry: true })).status, "ok"];
	} catch (e) {
		return [e.message, "bad"];
	}
}

function duration(s) {
	const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600),
		m = Math.floor(s % 3600 / 60);
	return d ? `${d} d ${h} h` : h ? `${h} h ${m} min` : `${m} min`;
}

async function gateway() {
	const [live, ready] = await Promise.all([probe("/healthz"),
		probe("/readyz")]);
	const v = await api("/api/v1/version");
	const rows = [["Live", live[0], "dash-live", live[1]],
		["Ready", ready[0], "dash-ready", ready[1]],
		["Version", v.version, "dash-version"]];
	/* Uptime from /metrics: no other endpoint says when pincerd began. */
	try {
		const m = (await api("/metrics", { text: true }))
			.match(/^process_start_time_seconds ([0-9.]+)$/m);
		if (m) rows.push(["Uptime", duration(Date.now() / 1000 -
			Number(m[1])), "dash-uptime"]);
	} catch (e) {
		rows.push(["Uptime", e.message, "dash-uptime", "bad"]);
	}
	return rows;
}

async function sandboxes() {
	const r = await api("/api/v1/sandboxes");
	const n = (st) => r.sandboxes.filter((s) => s.state === st).length;
	return [["Running", `${n("running")} of ${r.max_running}`, "sbx-running"],
		["Sleeping", String(n("sleeping")), "sbx-sleeping"],
		["Total", String(r.sandboxes.length), "sbx-total"]];
}

/* Usage rows are grouped by UTC day, so "today" is the UTC date. */
async function usage() {
	const today = new Date().toISOString().slice(0, 10);
	const month = today.slice(0, 8) + "01";
	const q = (from) => api(`/api/v1/usage?group_by=day&from=${from}` +
		`&to=${today}`);
	const [d, m] = await Promise.all([q(today), q(month)]);
	const say = (t) => `$${t.cost_usd.toFixed(2)}, ` +
		`${(t.input_tokens + t.output_tokens).toLocaleString("en")} ` +
		`tokens, ${t.requests} calls (${t.errors} failed)`;
	return [["Today", say(d.total), "usage-today"],
		["This month", say(m.total), "usage-month"]];
}

/* The log's last warnings and errors (GET /api/v1/system/errors). */
async function recentErrors() {
	const r = await api("/api/v1/system/errors?limit=5");
	if (r.errors.length === 0)
		return [["None", "no warning or error since pincerd started",
			"dash-errors-none", "ok"]];
	const rows = r.errors.map((e, i) => {
		const f = e.fields || {};
		const more = f.detail ?? Object.entries(f).map(([k, v]) =>
			`${k}=${v}`).join(" ");
		return [when(e.time), `${e.level}: ${e.msg}${more ? ` (${more})` :
			""}`, `dash-error-${i}`, e.level === "error" ? "bad" : ""];
	});
	rows.push(["In all", `${r.total} since pincerd started (the last ` +
		`${r.kept} are kept)`, "dash-errors-total"]);
	return rows;
}

/* Each channel's state in words (GET /api/v1/channels). */
async function channels() {
	const r = await api("/api/v1/channels");
	if (r.channels.length === 0)
		return [["None", "no channel is configured", "dash-chan-none"]];
	return r.channels.map((c) => [c.name, `${c.status}: ` +
		`${c.status_text}`, `dash-chan-${c.name}`, c.status === "ok" ?
		"ok" : c.status === "error" ? "bad" : ""]);
}

// Draw the dashboard into el; answer the function that stops its refresh.
// A member sees the gateway and their own spend: the other cards read
// admin-only endpoints.
export function render(el, ctx = {}) {
	const admin = ctx.me?.role !== "member";
	const h = document.createElement("h1");
	h.textContent = "Dashboard";
	const grid = document.createElement("div");
	grid.className = "cards";
	const again = document.createElement("button");
	again.type = "button";
	again.id = "dash-refresh";
	again.textContent = "Refresh";
	el.replaceChildren(h, again, grid);
	const cards = [[card(grid, "card-gateway", "Gateway"), gateway]];
	if (admin)
		cards.push([card(grid, "card-sandboxes", "Sandboxes"),
			sandboxes]);
	cards.push([card(grid, "card-usage", "LLM spend (UTC days)"), usage]);
	if (admin)
		cards.push([card(grid, "card-errors", "Recent errors"),
			recentErrors],
		[card(grid, "card-channels", "Channels"), channels]);
	const refresh = () => cards.forEach(([c, f]) => load(c, f));
	again.addEventListener("click", refresh);
	refresh();
	const t = setInterval(refresh, REFRESH_MS);
	return () => clearInterval(t);
}
