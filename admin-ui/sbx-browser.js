// SPDX-License-Identifier: MIT
// sbx-browser.js: the sandbox's browser, live (README "Browser",
// gateway/cdp_live.c). GET /api/v1/sandboxes/NAME/browser lists its tabs;
// WS …/browser/live?tab=ID streams one: each binary message is a JPEG
// frame, shown in an <img> through a blob: URL (the CSP's img-src allows
// blob:), and a text message {"type":"tab",id,url,title} says which page
// it shows. The live view only watches (nothing sent on it reaches the
// browser), so clicks and keys are not forwarded, and the page says so.
import { api } from "./api.js";
import { h, errLine, attempt } from "./ui.js";

const enc = encodeURIComponent;
const POLL_MS = 5000;	/* looking for a tab while none is watched */
/* A data: URL can be long: an option or a caption shows its start. */
const short = (s) => s.length > 120 ? s.slice(0, 119) + "…" : s;

export function mount(el, name) {
	const err = errLine("sbx-browser-error");
	const state = h("p", { id: "sbx-browser-state", class: "muted" });
	const startErr = errLine("sbx-browser-start-error");
	const start = h("button", { type: "button", id: "sbx-browser-start",
		hidden: true }, "Start the browser");
	const pick = h("select", { id: "sbx-browser-tab" });
	const tabsForm = h("form", { class: "inline", id: "sbx-browser-tabs",
		hidden: true }, h("label", {}, "Tab", pick),
	h("button", { type: "submit", id: "sbx-browser-watch" }, "Watch"));
	const reload = h("button", { type: "button", id: "sbx-browser-reload" },
		"Look for tabs again");
	const none = h("p", { class: "muted", id: "sbx-browser-none",
		hidden: true }, "This sandbox has no browser tab open. One " +
		"appears here when the agent (or a program in the sandbox, " +
		"through 127.0.0.1:9222) opens a page.");
	const img = h("img", { id: "sbx-browser-frame", class: "frame",
		alt: "The sandbox's browser tab, live", hidden: true });
	const page = h("p", { id: "sbx-browser-page", class: "muted" });
	const live = h("p", { id: "sbx-browser-live", role: "status" });
	let ws = null, url = null, gone = false, browserOk = false;

	function stopWatching() {
		if (ws) {
			ws.onclose = null;
			ws.close(1000);
			ws = null;
		}
	}

	/* Why there is no browser, and a way to start a local one. */
	async function why() {
		/* Its own line: err keeps saying that there is no browser. */
		const b = await attempt(startErr, () => api("/api/v1/browser"));
		if (!b || gone) return;
		state.textContent = `Browser: ${b.backend}, ${b.state}` +
			(b.reason ? ` (${b.reason})` : "") + ".";
		start.hidden = !(b.backend === "local" && b.state === "stopped");
	}

	async function tabs() {
		err.textContent = "";
		let out;
		try {
			out = await api(`/api/v1/sandboxes/${enc(name)}/browser`);
		} catch (e) {
			if (gone) return;
			browserOk = false;
			tabsForm.hidden = true;
			none.hidden = true;
			err.textContent = e.code === "browser_off" ?
				`No browser is available: ${e.message}.` : e.message;
			if (e.code === "browser_off") why();
			return;
		}
		if (gone) return;
		browserOk = true;
		state.textContent = "";
		start.hidden = true;
		const keep = pick.value;
		pick.replaceChildren(...out.tabs.map((t) => h("option",
			{ value: t.id }, short(`${t.title || "(no title)"} — ` +
				t.url))));
		if (out.tabs.some((t) => t.id === keep)) pick.value = keep;
		tabsForm.hidden = out.tabs.length === 0;
		none.hidden = out.tabs.length > 0;
		if (out.tabs.length && !ws) watch(pick.value);
	}

	function watch(tab) {
		stopWatching();
		const proto = location.protocol === "https:" ? "wss:" : "ws:";
		const s = new WebSocket(`${proto}//${location.host}/api/v1/` +
			`sandboxes/${enc(name)}/browser/live?tab=${enc(tab)}`);
		ws = s;
		s.binaryType = "blob";
		live.textContent = "Connecting…";
		s.onopen = () => {
			live.textContent = "Live. View only: clicks and keys are " +
				"not sent to the browser (the live view only watches).";
		};
		s.onmessage = (ev) => {
			if (typeof ev.data === "string") {
				let m = null;
				try { m = JSON.parse(ev.data); } catch { /* skip */ }
				if (m && m.type === "tab")
					page.textContent = short(`${m.title ||
						"(no title)"} — ${m.url}`);
				return;
			}
			const old = url;
			url = URL.createObjectURL(ev.data);
			img.src = url;
			img.hidden = false;
			if (old) URL.revokeObjectURL(old);
		};
		s.onclose = (ev) => {
			if (ws !== s) return;
			ws = null;
			live.textContent = "The live view closed" + (ev.reason ?
				`: ${ev.reason}` : ev.code === 1006 ? ": the gateway " +
				"refused it or went away (is the tab still open?)" :
				"") + ".";
		};
	}

	tabsForm.addEventListener("submit", (ev) => {
		ev.preventDefault();
		if (pick.value) watch(pick.value);
	});
	reload.addEventListener("click", tabs);
	start.addEventListener("click", async () => {
		start.disabled = true;
		const ok = await attempt(startErr, () => api("/api/v1/browser/" +
			"start", { method: "POST", body: {} }));
		start.disabled = false;
		if (ok && !gone) {
			state.textContent = "Starting the browser…";
			setTimeout(tabs, 2000);
		}
	});

	el.replaceChildren(h("h2", {}, "Browser"), err, state,
		h("div", { class: "row wrap" }, start, reload), startErr,
		tabsForm, none, live, page, img);
	tabs();
	/* A tab the agent opens shows up by itself; an error waits for
	 * a click on "Look for tabs again" rather than repeating. */
	const timer = setInterval(() => {
		if (browserOk && !ws) tabs();
	}, POLL_MS);
	return () => {
		gone = true;
		clearInterval(timer);
		stopWatching();
		if (url) URL.revokeObjectURL(url);
	};
}
