// SPDX-License-Identifier: MIT
// Status page: polls the gateway's health endpoints.
"use strict";

async function probe(path, id) {
	const el = document.getElementById(id);
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
		const r = await fetch("/api/v1/version");
		const v = await r.json();
		document.getElementById("version").textContent = "v" + v.version;
	} catch (e) { /* the status rows say what is wrong */ }
}

function refresh() {
	probe("/healthz", "live");
	probe("/readyz", "ready");
}

version();
refresh();
setInterval(refresh, 5000);
