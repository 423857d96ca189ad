// SPDX-License-Identifier: MIT
// app.js: the shell. Who is signed in, login and first-owner setup, the
// hash routes, and the login dialog when a session expires mid-page. The
// session lives in an HttpOnly cookie; the CSRF token only in memory.
import { api, setCsrf, onSessionExpired } from "./api.js";

/*
 * Each page is a module loaded when first shown, with
 * render(el, ctx) -> stop(): ctx.params are the route's segments after the
 * page's name (#/sandboxes/box/files -> ["box", "files"]), ctx.me the
 * signed-in user. The answer stops the page's timers and sockets.
 */
const routes = {
	dashboard: "./dashboard.js", chat: "./chat.js",
	sandboxes: "./sandboxes.js", llm: "./llm.js",
	channels: "./channels.js", memory: "./memory.js",
	users: "./users.js", settings: "./settings.js",
};
const DEFAULT = "dashboard";
let shown = 0;	/* bumps on every show, so a late module load is dropped */

const $ = (id) => document.getElementById(id);
let me = null;
let leave = null;	/* stops the shown page's timers */

function signedIn(who) {
	me = who;
	setCsrf(who ? who.csrf_token : "");
	$("login").hidden = !!who;
	$("who").hidden = !who;
	$("nav").hidden = !who;
	$("page").hidden = !who;
	if (who) $("who-name").textContent = `${who.name} (${who.role})`;
}

async function whoami() {
	try {
		signedIn(await api("/api/v1/me", { noRetry: true }));
	} catch (e) {
		signedIn(null);
		if (e.status !== 401) $("login-error").textContent = e.message;
	}
	show();
}

async function show() {
	const mine = ++shown;
	if (leave) leave();
	leave = null;
	if (!me) {
		$("page").replaceChildren();
		return;
	}
	const [name, ...params] = location.hash.replace(/^#\/?/, "")
		.split("/").map(decodeURIComponent);
	const path = Object.hasOwn(routes, name) ? routes[name] : null;
	if (!path) {
		/* hashchange comes back here with the default page. */
		location.replace("#/" + DEFAULT);
		return;
	}
	for (const a of $("nav").querySelectorAll("a"))
		if (a.getAttribute("href") === "#/" + name)
			a.setAttribute("aria-current", "page");
		else
			a.removeAttribute("aria-current");
	document.title = `${name[0].toUpperCase()}${name.slice(1)} · pincer`;
	let page;
	try {
		page = await import(path);
	} catch (e) {
		const p = document.createElement("p");
		p.className = "bad";
		p.textContent = `The page could not be loaded (${e.message}).`;
		$("page").replaceChildren(p);
		return;
	}
	if (mine !== shown) return;
	leave = page.render($("page"), { params, me }) || null;
}

// Submit a form's fields to path; on success, done(answer).
function form(el, path, err, done) {
	el.addEventListener("submit", async (ev) => {
		ev.preventDefault();
		const data = Object.fromEntries(new FormData(el));
		try {
			const out = await api(path, { method: "POST", body: data,
				noRetry: true });
			el.reset();
			err.textContent = "";
			await done(out);
		} catch (e) {
			err.textContent = e.message;
		}
	});
}

/*
 * A 401 on a page: log in again in a dialog over it, so what was typed
 * elsewhere stays, then the call is retried. Closing the dialog fails the
 * call with words.
 */
function expired() {
	const d = $("relogin");
	$("relogin-error").textContent = "";
	d.showModal();
	return new Promise((resolve, reject) => {
		const closed = () => {
			d.removeEventListener("close", closed);
			if (d.returnValue === "ok") resolve();
			else reject(new Error("Your session expired; log in again."));
		};
		d.returnValue = "";
		d.addEventListener("close", closed);
	});
}

form($("login-form"), "/api/v1/auth/login", $("login-error"), whoami);
form($("setup-form"), "/api/v1/auth/setup", $("setup-error"), whoami);
form($("relogin-form"), "/api/v1/auth/login", $("relogin-error"),
	async (out) => {
		setCsrf(out.csrf_token);
		$("relogin").close("ok");
		const who = await api("/api/v1/me", { noRetry: true });
		signedIn(who);
	});
$("relogin-cancel").addEventListener("click", () => $("relogin").close());
$("logout").addEventListener("click", async () => {
	try {
		await api("/api/v1/auth/logout", { method: "POST", body: {},
			noRetry: true });
	} catch { /* the session is gone either way */ }
	signedIn(null);
	show();
});
window.addEventListener("hashchange", show);
onSessionExpired(expired);

api("/api/v1/version", { noRetry: true })
	.then((v) => { $("version").textContent = "v" + v.version; })
	.catch((e) => { $("version").textContent = e.message; });
whoami();
