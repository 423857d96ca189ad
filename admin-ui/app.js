// SPDX-License-Identifier: MIT
// Status page, login and first-owner setup. The session lives in an
// HttpOnly cookie; the CSRF token is kept in memory and sent as a header.
"use strict";

let csrf = "";

const $ = (id) => document.getElementById(id);

async function probe(path, id) {
	const el = $(id);
	try {
		const r = await fetch(path, { cache: "no-store" });
		const body = await r.json();
		el.textContent = r.ok ? body.status : body.error.message;
		el.className = r.ok ? "ok" : "bad";
	} catch (e) {
		el.textContent = "unreachable";
		el.className = "bad";
	}
}

async function version() {
	try {
		const v = await (await fetch("/api/v1/version")).json();
		$("version").textContent = "v" + v.version;
	} catch (e) { /* the status rows say what is wrong */ }
}

async function whoami() {
	const r = await fetch("/api/v1/me", { cache: "no-store" });
	const signedIn = r.ok;
	$("login").hidden = signedIn;
	$("who").hidden = !signedIn;
	$("admin").hidden = !signedIn;
	if (signedIn) {
		const me = await r.json();
		csrf = me.csrf_token || "";
		$("who-name").textContent = `${me.name} (${me.role})`;
	}
}

async function post(path, body) {
	const r = await fetch(path, {
		method: "POST",
		headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
		body: JSON.stringify(body),
	});
	const out = await r.json().catch(() => ({}));
	if (!r.ok) throw new Error(out.error ? out.error.message : r.statusText);
	return out;
}

function form(id, path, errId) {
	$(id).addEventListener("submit", async (ev) => {
		ev.preventDefault();
		const data = Object.fromEntries(new FormData(ev.target));
		try {
			const out = await post(path, data);
			csrf = out.csrf_token || "";
			ev.target.reset();
			$(errId).textContent = "";
			await whoami();
		} catch (e) {
			$(errId).textContent = e.message;
		}
	});
}

form("login-form", "/api/v1/auth/login", "login-error");
form("setup-form", "/api/v1/auth/setup", "setup-error");
$("logout").addEventListener("click", async () => {
	try { await post("/api/v1/auth/logout", {}); } catch (e) { /* gone */ }
	csrf = "";
	await whoami();
});

function refresh() {
	probe("/healthz", "live");
	probe("/readyz", "ready");
}

version();
whoami();
refresh();
setInterval(refresh, 5000);
