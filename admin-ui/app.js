// SPDX-License-Identifier: MIT
// app.js: the shell. Who is signed in, login and first-owner setup, the
// hash routes, and the login dialog when a session expires mid-page. The
// session lives in an HttpOnly cookie; the CSRF token only in memory.
import { api, setCsrf, onSessionExpired } from "./api.js";
import * as dashboard from "./dashboard.js";

/* The pages that exist; the nav links only to these. */
const routes = { dashboard };
const DEFAULT = "dashboard";

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

function show() {
	if (leave) leave();
	leave = null;
	if (!me) {
		$("page").replaceChildren();
		return;
	}
	const name = location.hash.replace(/^#\/?/, "");
	const page = routes[name];
	if (!page) {
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
	leave = page.render($("page")) || null;
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
