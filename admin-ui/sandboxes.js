// SPDX-License-Identifier: MIT
// sandboxes.js: the agent's computers. #/sandboxes lists them (state,
// memory, processes, start/stop/destroy, a form to create one);
// #/sandboxes/NAME/TAB shows one with a tab bar, each tab a module
// sbx-TAB.js exporting mount(el, name, ctx) -> stop(), loaded when shown.
import { api } from "./api.js";
import { h, errLine, attempt, table, bytes } from "./ui.js";

const REFRESH_MS = 5000;
export const TABS = [["terminal", "Terminal"], ["files", "Files"],
	["browser", "Browser"], ["snapshots", "Snapshots"],
	["egress", "Egress"]];
const enc = encodeURIComponent;

export function render(el, ctx) {
	const [name, tab] = ctx.params;
	return name ? detail(el, name, tab, ctx) : list(el);
}

function uptime(ms) {
	if (ms === undefined || ms === null) return "";
	const s = Math.floor(ms / 1000), d = Math.floor(s / 86400),
		hr = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
	return d ? `${d} d ${hr} h` : hr ? `${hr} h ${m} min` :
		m ? `${m} min` : `${s} s`;
}

// Start is "create or find, and start": the API's POST /sandboxes.
const start = (name) => api("/api/v1/sandboxes", { method: "POST",
	body: { name } });
const stop = (name) => api(`/api/v1/sandboxes/${enc(name)}/stop`,
	{ method: "POST", body: {} });
const destroy = (name) => api(`/api/v1/sandboxes/${enc(name)}`,
	{ method: "DELETE" });

// A button that shows busy words while f runs, errors into line; then
// after() sets what it may do next.
function action(label, busy, line, f, attrs, after) {
	const b = h("button", { type: "button", ...attrs }, label);
	b.addEventListener("click", async () => {
		b.disabled = true;
		b.dataset.busy = "1";
		b.textContent = busy;
		await attempt(line, f);
		b.textContent = label;
		delete b.dataset.busy;
		b.disabled = false;
		after();
	});
	return b;
}

// The <dialog> that asks before a destroy; answers true to go ahead.
function confirmDestroy(dlg, name) {
	dlg.querySelector(".sbx-confirm-name").textContent = name;
	dlg.returnValue = "";
	dlg.showModal();
	return new Promise((resolve) => dlg.addEventListener("close",
		() => resolve(dlg.returnValue === "destroy"), { once: true }));
}

function destroyDialog() {
	const dlg = h("dialog", { id: "sbx-confirm",
		"aria-labelledby": "sbx-confirm-h" });
	const yes = h("button", { type: "button", id: "sbx-confirm-yes",
		onclick: () => dlg.close("destroy") }, "Destroy");
	/* Cancel has the focus: Enter on the opened dialog keeps it. */
	const no = h("button", { type: "button", id: "sbx-confirm-no",
		autofocus: true, onclick: () => dlg.close() }, "Cancel");
	dlg.append(h("h2", { id: "sbx-confirm-h" }, "Destroy ",
		h("span", { class: "sbx-confirm-name" }), "?"),
	h("p", {}, "Its processes end and its files (workspace, data) are " +
		"deleted. This cannot be undone."),
	h("div", { class: "row" }, yes, no));
	return dlg;
}

function list(el) {
	const line = errLine("sbx-list-error");
	const rows = new Map();	/* name -> { tr, cells, err } */
	const tbody = h("tbody");
	const empty = h("p", { class: "muted", id: "sbx-empty", hidden: true },
		"No sandboxes yet.");
	const limit = h("p", { class: "muted", id: "sbx-limit" });
	const dlg = destroyDialog();
	const createErr = errLine("sbx-create-error");
	const nameIn = h("input", { name: "name", id: "sbx-new-name",
		required: true, autocomplete: "off", maxlength: 63,
		pattern: "[a-z0-9][a-z0-9._\\-]*", spellcheck: "false" });
	const createBtn = h("button", { type: "submit", id: "sbx-create" },
		"Create and start");
	const form = h("form", { id: "sbx-create-form", class: "sbx-create" },
		h("label", {}, "New sandbox name (a-z, 0-9, - _ .)", nameIn),
		createBtn, createErr);
	let timer = null, gone = false;

	async function refresh() {
		const r = await attempt(line, () => api("/api/v1/sandboxes"));
		if (!r || gone) return;
		limit.textContent = `At most ${r.max_running} run at once; ` +
			`idle ones sleep after ${uptime(r.idle_sleep_s * 1000)}.`;
		const seen = new Set();
		for (const s of r.sandboxes) {
			seen.add(s.name);
			let row = rows.get(s.name);
			if (!row) {
				row = makeRow(s.name);
				rows.set(s.name, row);
				tbody.append(row.tr);
			}
			fillRow(row, s);
		}
		for (const [n, row] of rows)
			if (!seen.has(n)) {
				row.tr.remove();
				rows.delete(n);
			}
		empty.hidden = rows.size > 0;
	}

	/* Rows are kept and updated, so a refresh keeps keyboard focus. */
	function makeRow(name) {
		const err = h("p", { class: "bad", role: "alert" });
		const link = h("a", { href: `#/sandboxes/${enc(name)}/terminal`,
			class: "sbx-name" }, name);
		/* data-label: the heading, shown beside the cell on a phone. */
		const cells = { state: h("td", { class: "sbx-state",
			"data-label": "State" }),
		mem: h("td", { class: "sbx-mem", "data-label": "Memory" }),
		pids: h("td", { class: "sbx-pids", "data-label": "Processes" }),
		up: h("td", { class: "sbx-up", "data-label": "Up for" }) };
		const row = { cells, last: null };
		const again = () => { if (row.last) fillRow(row, row.last); };
		row.go = action("Start", "Starting…", err, async () => {
			await start(name);
			await refresh();
		}, { class: "sbx-start", "aria-label": `Start ${name}` }, again);
		row.halt = action("Stop", "Stopping…", err, async () => {
			await stop(name);
			await refresh();
		}, { class: "sbx-stop", "aria-label": `Stop ${name}` }, again);
		const del = h("button", { type: "button", class: "sbx-destroy",
			"aria-label": `Destroy ${name}` }, "Destroy");
		del.addEventListener("click", async () => {
			if (!await confirmDestroy(dlg, name)) return;
			del.disabled = true;
			await attempt(err, async () => {
				await destroy(name);
				await refresh();
			});
			del.disabled = false;
		});
		row.tr = h("tr", { "data-name": name },
			h("th", { scope: "row" }, link), cells.state, cells.mem,
			cells.pids, cells.up,
			h("td", { class: "sbx-act" }, h("div",
				{ class: "row sbx-actions" }, row.go, row.halt,
				del), err));
		return row;
	}

	function fillRow(row, s) {
		const c = row.cells;
		row.last = s;
		c.state.textContent = s.state + (s.last_error ?
			` (last error: ${s.last_error})` : "");
		c.state.className = "sbx-state " + (s.state === "running" ?
			"ok" : s.last_error ? "bad" : "");
		/* A dash, not nothing: asleep, or the cgroup did not say. */
		c.mem.textContent = bytes(s.memory_bytes) || "–";
		c.pids.textContent = s.pids ?? "–";
		c.up.textContent = uptime(s.uptime_ms) || "–";
		/* A busy button stays disabled until its call answers. */
		if (!row.go.dataset.busy)
			row.go.disabled = s.state === "running";
		if (!row.halt.dataset.busy)
			row.halt.disabled = s.state !== "running";
	}

	form.addEventListener("submit", async (ev) => {
		ev.preventDefault();
		const name = nameIn.value.trim();
		createBtn.disabled = true;
		createBtn.textContent = "Creating…";
		const out = await attempt(createErr, () => start(name));
		createBtn.disabled = false;
		createBtn.textContent = "Create and start";
		if (out === undefined) return;
		form.reset();
		await refresh();
	});

	const tbl = table(["Name", "State", "Memory", "Processes", "Up for",
		"Actions"], [], { id: "sbx-table" });
	tbl.querySelector("tbody").replaceWith(tbody);
	el.replaceChildren(h("h1", {}, "Sandboxes"), form,
		h("h2", { class: "sbx-sub" }, "All sandboxes"), limit, line, tbl,
		empty, dlg);
	refresh();
	timer = setInterval(refresh, REFRESH_MS);
	return () => {
		gone = true;
		clearInterval(timer);
		if (dlg.open) dlg.close();
	};
}

// One sandbox: a summary line, the tab bar, and the tab's module.
function detail(el, name, tab, ctx) {
	if (!TABS.some(([t]) => t === tab)) {
		/* hashchange renders again with the default tab. */
		location.replace(`#/sandboxes/${enc(name)}/terminal`);
		return null;
	}
	const line = errLine("sbx-detail-error");
	const summary = h("p", { id: "sbx-summary", class: "muted" });
	const nav = h("nav", { class: "tabs", "aria-label": "Sandbox views" },
		TABS.map(([t, label]) => h("a", {
			href: `#/sandboxes/${enc(name)}/${t}`, id: `sbx-tab-${t}`,
			"aria-current": t === tab ? "page" : null }, label)));
	const panel = h("section", { id: "sbx-panel", class: "sbx-panel",
		"aria-labelledby": `sbx-tab-${tab}` });
	const tabErr = errLine("sbx-tab-error");
	el.replaceChildren(h("p", {}, h("a", { href: "#/sandboxes" },
		"← All sandboxes")), h("h1", {}, name), summary, line, nav,
	tabErr, panel);
	let gone = false, unmount = null;

	async function info() {
		const s = await attempt(line, () =>
			api(`/api/v1/sandboxes/${enc(name)}`));
		if (!s || gone) return;
		const parts = [s.state];
		if (s.memory_bytes !== undefined)
			parts.push(bytes(s.memory_bytes) + " memory");
		if (s.pids !== undefined) parts.push(`${s.pids} processes`);
		if (s.uptime_ms !== undefined)
			parts.push(`up ${uptime(s.uptime_ms)}`);
		summary.textContent = parts.join(" · ");
	}
	info();
	const timer = setInterval(info, REFRESH_MS);

	const label = TABS.find(([t]) => t === tab)[1];
	import(`./sbx-${tab}.js`).then((m) => {
		if (!gone) unmount = m.mount(panel, name, ctx) || null;
	}).catch((e) => {
		if (!gone) tabErr.textContent = `The ${label} tab could not ` +
			`be loaded (${e.message}).`;
	});
	return () => {
		gone = true;
		clearInterval(timer);
		if (unmount) unmount();
	};
}
