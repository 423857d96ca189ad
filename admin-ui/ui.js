// SPDX-License-Identifier: MIT
// ui.js: the small DOM helpers every page uses, so pages build elements the
// same way (textContent only: nothing from the API is ever parsed as HTML).

// h("button", { type: "button", onclick: f }, "Stop"): attributes that
// start with "on" are listeners, "class" sets className, a false or null
// value leaves the attribute out; children are nodes or text.
export function h(tag, attrs = {}, ...kids) {
	const e = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs || {})) {
		if (v === false || v === null || v === undefined) continue;
		if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
		else if (k === "class") e.className = v;
		else if (k === "value") e.value = v;
		else e.setAttribute(k, v === true ? "" : String(v));
	}
	for (const k of kids.flat())
		if (k !== null && k !== undefined && k !== false)
			e.append(k instanceof Node ? k : String(k));
	return e;
}

// A line that shows an error in words, or nothing; role=alert so screen
// readers say it.
export function errLine(id) {
	return h("p", { class: "bad", role: "alert", id });
}

// Run f; put its error's words into line (cleared first). Answers f's
// result, or undefined after an error.
export async function attempt(line, f) {
	line.textContent = "";
	try {
		return await f();
	} catch (e) {
		line.textContent = e.message;
		return undefined;
	}
}

// A table from column headings and rows of cells (nodes or text). With
// class "stack", on a phone each row becomes label: value lines
// (style.css table.stack): see stackCells.
export function table(heads, rows, attrs = {}) {
	const wrap = h("div", { class: "scroll" }, h("table", attrs,
		h("thead", {}, h("tr", {}, heads.map((t) => h("th",
			{ scope: "col" }, t)))),
		h("tbody", {}, rows.map((r) => h("tr", {},
			r.map((c) => h("td", {}, c)))))));
	if (/(^| )stack( |$)/.test(attrs.class || ""))
		stackCells(wrap, heads);
	return wrap;
}

// Name each body cell of el's table by its column's heading (data-label),
// which a phone shows before the value; a column headed "" or "Actions"
// spans the row instead. Also for rows added later.
export function stackCells(el, heads) {
	const t = el.tagName === "TABLE" ? el : el.querySelector("table");
	t.classList.add("stack");
	for (const tr of t.querySelectorAll("tbody tr"))
		[...tr.children].forEach((td, i) => {
			const l = heads[i] ?? "";
			if (l !== "" && l !== "Actions")
				td.setAttribute("data-label", l);
		});
}

export function bytes(n) {
	if (n === null || n === undefined) return "";
	const u = ["B", "KiB", "MiB", "GiB", "TiB"];
	let i = 0;
	while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
	return (i ? n.toFixed(1) : String(n)) + " " + u[i];
}

// A time from the API (unix seconds or ISO text) in the reader's locale.
export function when(t) {
	if (t === null || t === undefined || t === "") return "";
	const d = typeof t === "number" ? new Date(t * 1000) : new Date(t);
	return isNaN(d) ? String(t) : d.toLocaleString();
}

export function usd(x) { return "$" + Number(x || 0).toFixed(2); }

// Ask in a modal <dialog> (appended to parent) before something that
// cannot be undone; answers true when yes was chosen. Cancel has the
// focus, so Enter or Escape on the opened dialog keeps things as they are.
export function confirmBox(parent, question, yes) {
	const dlg = h("dialog", { class: "confirm", role: "alertdialog",
		"aria-label": question });
	const ok = h("button", { type: "button", class: "confirm-yes",
		onclick: () => dlg.close("yes") }, yes);
	const no = h("button", { type: "button", class: "confirm-no",
		autofocus: true, onclick: () => dlg.close() }, "Cancel");
	dlg.append(h("p", {}, question), h("div", { class: "row" }, ok, no));
	parent.append(dlg);
	dlg.showModal();
	return new Promise((resolve) => dlg.addEventListener("close", () => {
		dlg.remove();
		resolve(dlg.returnValue === "yes");
	}, { once: true }));
}
