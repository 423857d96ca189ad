// SPDX-License-Identifier: MIT
// chart.js: two small bar charts as inline SVG, built node by node (no
// library, no inline style: colours come from style.css's variables
// through classes). Each chart is role="img" with a label that says what
// it shows; the page puts a table of the same numbers under it for
// screen readers and for reading exact values.

const NS = "http://www.w3.org/2000/svg";

function s(tag, attrs = {}, ...kids) {
	const e = document.createElementNS(NS, tag);
	for (const [k, v] of Object.entries(attrs))
		if (v !== null && v !== undefined) e.setAttribute(k, String(v));
	for (const k of kids)
		e.append(k instanceof Node ? k : document.createTextNode(k));
	return e;
}

// A rounded-up axis maximum: 1, 2 or 5 times a power of ten.
function niceMax(v) {
	if (!(v > 0)) return 1;
	const p = 10 ** Math.floor(Math.log10(v));
	for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
	return 10 * p;
}

function frame(w, hgt, label) {
	return s("svg", { viewBox: `0 0 ${w} ${hgt}`, class: "chart",
		role: "img", "aria-label": label,
		preserveAspectRatio: "xMidYMid meet" }, s("title", {}, label));
}

// Columns over time: items [{label, value}], fmt(value) -> text.
// Every column is a <rect class="bar"> with a <title> (hover text);
// columns of 0 are drawn as nothing but keep their place.
export function columns(items, fmt, label) {
	const W = 640, H = 220, L = 56, B = 28, T = 10, R = 8;
	const max = niceMax(Math.max(0, ...items.map((i) => i.value)));
	const svg = frame(W, H, label);
	const cw = (W - L - R) / Math.max(1, items.length);
	const y = (v) => T + (H - T - B) * (1 - v / max);
	const ticks = new Set();	/* 0.5 of 1 token reads as 1: once */
	for (const f of [0, 0.5, 1]) {
		if (ticks.has(fmt(max * f))) continue;
		ticks.add(fmt(max * f));
		svg.append(s("line", { x1: L, x2: W - R, y1: y(max * f),
			y2: y(max * f), class: "grid" }));
		svg.append(s("text", { x: L - 6, y: y(max * f) + 4,
			"text-anchor": "end", class: "axis" }, fmt(max * f)));
	}
	const every = Math.ceil(items.length / 8);
	items.forEach((it, i) => {
		const x = L + i * cw;
		if (it.value > 0)
			svg.append(s("rect", { x: x + cw * 0.15,
				y: y(it.value), width: Math.max(1, cw * 0.7),
				height: H - B - y(it.value), class: "bar" },
			s("title", {}, `${it.label}: ${fmt(it.value)}`)));
		if (i % every === 0)
			svg.append(s("text", { x: x + cw / 2, y: H - B + 16,
				"text-anchor": "middle", class: "axis" },
			it.label));
	});
	return svg;
}

// Horizontal bars, one per item (a model), its name and value written.
export function bars(items, fmt, label) {
	const W = 640, L = 170, R = 90, row = 26;
	const H = Math.max(1, items.length) * row + 8;
	const max = Math.max(0, ...items.map((i) => i.value)) || 1;
	const svg = frame(W, H, label);
	items.forEach((it, i) => {
		const y = 4 + i * row;
		const name = it.label.length > 24 ?
			it.label.slice(0, 23) + "…" : it.label;
		svg.append(s("text", { x: L - 8, y: y + 17,
			"text-anchor": "end", class: "axis" }, name));
		svg.append(s("rect", { x: L, y: y + 3, height: row - 8,
			width: Math.max(it.value > 0 ? 2 : 0,
				(W - L - R) * it.value / max), class: "bar" },
		s("title", {}, `${it.label}: ${fmt(it.value)}`)));
		svg.append(s("text", { x: L + (W - L - R) * it.value / max + 6,
			y: y + 17, class: "axis" }, fmt(it.value)));
	});
	return svg;
}
