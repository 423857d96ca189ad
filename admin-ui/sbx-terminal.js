// SPDX-License-Identifier: MIT
// sbx-terminal.js: the sandbox's shell in xterm.js, over
// WS /api/v1/sandboxes/{name}/terminal (docs/sandbox-api.md "Terminal"):
// binary frames are bytes both ways, text frames JSON (resize in, ready and
// exit out). It follows the panel's size, and when the socket drops it
// reconnects with a growing wait; pincer-init replays the last output.
import { api } from "./api.js";
import { h, errLine } from "./ui.js";

const ID = "admin";	/* the CLI's shell is "main": each keeps its own */
const WAIT_MS = [500, 1000, 2000, 4000, 8000, 15000];
const enc = encodeURIComponent;
let xterm = null;	/* the modules, loaded once */

async function load() {
	if (xterm) return xterm;
	if (!document.getElementById("xterm-css"))
		document.head.append(h("link", { rel: "stylesheet",
			id: "xterm-css", href: "vendor/lib/xterm.css" }));
	try {
		const [x, f] = await Promise.all([
			import("./vendor/lib/xterm.mjs"),
			import("./vendor/lib/addon-fit.mjs")]);
		xterm = { Terminal: x.Terminal, FitAddon: f.FitAddon };
	} catch (e) {
		throw new Error("xterm.js is not installed: build pincer with " +
			"npm reachable so that make fetches it (" + e.message +
			").");
	}
	strictStyles();
	return xterm;
}

/*
 * xterm.js styles its DOM renderer with <style> elements and, for 24-bit
 * colours, style="" attributes: both are inline styles, which the UI's
 * CSP (default-src 'self', no 'unsafe-inline') refuses. Rather than relax
 * the CSP for every page, the same rules go in through the CSSOM, which
 * CSP allows: a <style> xterm makes is a stand-in whose text fills a
 * constructed style sheet, and a style attribute becomes style.cssText.
 * Markup parsed from text (innerHTML) is untouched and stays refused.
 */
let patched = false;
function strictStyles() {
	if (patched) return;
	patched = true;
	const make = Document.prototype.createElement;
	Document.prototype.createElement = function (tag, opts) {
		if (String(tag).toLowerCase() !== "style")
			return make.call(this, tag, opts);
		const el = make.call(this, "pincer-style");
		const sheet = new CSSStyleSheet();
		let text = "";
		el.hidden = true;
		this.adoptedStyleSheets = [...this.adoptedStyleSheets, sheet];
		Object.defineProperty(el, "textContent", {
			get: () => text,
			set: (v) => { text = String(v); sheet.replaceSync(text); },
		});
		el.remove = () => {
			document.adoptedStyleSheets = document.adoptedStyleSheets
				.filter((x) => x !== sheet);
			Element.prototype.remove.call(el);
		};
		return el;
	};
	const set = Element.prototype.setAttribute;
	Element.prototype.setAttribute = function (k, v) {
		if (String(k).toLowerCase() === "style")
			this.style.cssText = String(v);
		else
			set.call(this, k, v);
	};
}

// The page's colours for the terminal, so it follows the theme.
function theme() {
	const v = (n) => getComputedStyle(document.documentElement)
		.getPropertyValue(n).trim();
	return { background: v("--card"), foreground: v("--fg"),
		cursor: v("--fg"), cursorAccent: v("--card"),
		selectionBackground: v("--line") };
}

export function mount(el, name) {
	const status = h("p", { id: "term-status", role: "status",
		class: "muted" }, "Loading the terminal…");
	const line = errLine("term-error");
	const again = h("button", { type: "button", id: "term-reconnect",
		hidden: true }, "Reconnect now");
	const box = h("div", { id: "term", class: "term",
		"aria-label": `Terminal of ${name}`, role: "group" });
	el.replaceChildren(h("div", { class: "row term-bar" }, status, again),
		line, box, h("p", { class: "muted term-hint" }, "Keys go to " +
		"the shell (Tab completes); Shift+Tab leaves the terminal."));
	const s = { ws: null, term: null, fit: null, tries: 0, timer: null,
		gone: false, ready: false, ro: null, mq: null };
	load().then((x) => {
		if (!s.gone) start(x, el, name, s, { status, line, again, box });
	}, (e) => {
		status.textContent = "No terminal.";
		line.textContent = e.message;
	});
	return () => {
		s.gone = true;
		clearTimeout(s.timer);
		if (s.ws) bye(s.ws);
		if (s.ro) s.ro.disconnect();
		if (s.mq) s.mq.removeEventListener("change", s.retheme);
		if (s.term) s.term.dispose();
	};
}

function start(x, el, name, s, ui) {
	s.term = new x.Terminal({ fontSize: 14, scrollback: 5000,
		convertEol: false, theme: theme(),
		fontFamily: "ui-monospace, Menlo, Consolas, monospace" });
	s.fit = new x.FitAddon();
	s.term.loadAddon(s.fit);
	s.term.open(ui.box);
	/* Tab completes in the shell; Shift+Tab leaves the terminal, so a
	 * keyboard is never trapped in it (the hint under it says so). */
	s.term.attachCustomKeyEventHandler((e) => !(e.key === "Tab" &&
		e.shiftKey && !e.ctrlKey && !e.altKey && !e.metaKey));
	fit(s);
	const bytes = new TextEncoder();
	s.term.onData((d) => send(s, bytes.encode(d)));
	s.term.onBinary((d) => send(s, Uint8Array.from(d, (c) =>
		c.charCodeAt(0) & 255)));
	s.term.onResize(({ cols, rows }) => {
		send(s, JSON.stringify({ type: "resize", cols, rows }));
		if (s.ready) said(s, ui);
	});
	/* The panel's size, not the window's: it changes with both. */
	s.ro = new ResizeObserver(() => fit(s));
	s.ro.observe(ui.box);
	s.retheme = () => { s.term.options.theme = theme(); };
	s.mq = matchMedia("(prefers-color-scheme: dark)");
	s.mq.addEventListener("change", s.retheme);
	ui.again.addEventListener("click", () => {
		clearTimeout(s.timer);
		s.tries = 0;
		if (s.ws) bye(s.ws);
		connect(name, s, ui);
	});
	connect(name, s, ui);
	s.term.focus();
}

function fit(s) {
	try {
		s.fit.fit();
	} catch { /* hidden: no size to fit yet */ }
}

function said(s, ui) {
	ui.status.textContent = `Connected: shell ${s.shell.id}, pid ` +
		`${s.shell.pid}, ${s.term.cols}×${s.term.rows}`;
	ui.status.className = "ok";
}

// Close a socket; one still connecting closes once open, since closing
// it earlier makes the browser log an error.
function bye(ws) {
	if (ws.readyState === WebSocket.CONNECTING)
		ws.addEventListener("open", () => ws.close(1000));
	else
		ws.close(1000);
}

function send(s, data) {
	if (s.ws && s.ready && s.ws.readyState === WebSocket.OPEN)
		s.ws.send(data);
}

function connect(name, s, ui) {
	const url = `${location.protocol === "https:" ? "wss" : "ws"}://` +
		`${location.host}/api/v1/sandboxes/${enc(name)}/terminal?id=` +
		`${ID}&cols=${s.term.cols}&rows=${s.term.rows}`;
	const ws = new WebSocket(url);
	let ended = null;	/* why the shell is gone, when it is */
	s.ws = ws;
	s.ready = false;
	ws.binaryType = "arraybuffer";
	ui.again.hidden = true;
	ui.status.textContent = s.tries ? `Reconnecting… (attempt ${s.tries + 1})` :
		"Connecting…";
	ws.addEventListener("message", (ev) => {
		if (s.ws !== ws || s.gone) return;
		if (typeof ev.data !== "string") {
			s.term.write(new Uint8Array(ev.data));
			return;
		}
		let m = null;
		try { m = JSON.parse(ev.data); } catch { return; }
		if (m.type === "ready") {
			/* What follows replays the screen: start from blank. */
			s.term.reset();
			s.ready = true;
			s.tries = 0;
			ui.line.textContent = "";
			s.shell = m;
			said(s, ui);
			if (m.cols !== s.term.cols || m.rows !== s.term.rows)
				send(s, JSON.stringify({ type: "resize",
					cols: s.term.cols, rows: s.term.rows }));
		} else if (m.type === "exit") {
			ended = `The shell exited (code ${m.code}).`;
		}
	});
	ws.addEventListener("close", (ev) => {
		if (s.ws !== ws || s.gone) return;
		s.ready = false;
		ui.status.className = "muted";
		if (ended || ev.reason === "attached elsewhere") {
			/* Not a drop: reconnecting would end or steal a shell. */
			ui.status.textContent = ended || "This terminal was " +
				"opened elsewhere (another tab or person).";
			ui.again.textContent = ended ? "Start a new shell" :
				"Take it back";
			ui.again.hidden = false;
			return;
		}
		retry(name, s, ui, ev);
	});
}

// The socket dropped or was refused: say why if the API can, then wait
// longer each time and connect again. A browser does not show why an
// upgrade was refused, so the sandbox's own route is asked.
async function retry(name, s, ui, ev) {
	const wait = WAIT_MS[Math.min(s.tries, WAIT_MS.length - 1)];
	s.tries++;
	ui.status.textContent = `Disconnected (${ev.code}${ev.reason ?
		" " + ev.reason : ""}); reconnecting… in ${wait / 1000} s ` +
		`(attempt ${s.tries + 1})`;
	ui.again.textContent = "Reconnect now";
	ui.again.hidden = false;
	try {
		await api(`/api/v1/sandboxes/${enc(name)}`);
	} catch (e) {
		if (s.gone) return;
		ui.line.textContent = e.message;
		if (e.status === 404 || e.status === 403) {
			ui.status.textContent = "Not reconnecting.";
			return;
		}
	}
	if (s.gone) return;
	s.timer = setTimeout(() => connect(name, s, ui),
		wait * (0.8 + Math.random() * 0.4));
}
