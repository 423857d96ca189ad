// SPDX-License-Identifier: MIT
// api.js: fetch with JSON in and out, the CSRF header, and every failure
// turned into words: the API's {"error":{"code","message"}}, else the HTTP
// status, else "the gateway could not be reached". A 401 on a page asks the
// session-expired handler to log in again, then retries the call once.

let csrf = "";
let expired = null;	/* () => Promise, set by the shell */
let relogin = null;	/* the pending re-login, shared by concurrent calls */

export class ApiError extends Error {
	constructor(status, code, message) {
		super(message);
		this.status = status;
		this.code = code;
	}
}

export function setCsrf(token) { csrf = token || ""; }

export function onSessionExpired(fn) { expired = fn; }

// opts: method, body (sent as JSON), text (answer the raw text),
// noRetry (a 401 is an answer, not an expired session: login, /me),
// headers (more request headers, e.g. If-Match).
export async function api(path, opts = {}) {
	const method = opts.method || "GET";
	const headers = { ...(opts.headers || {}) };
	if (method !== "GET") headers["X-CSRF-Token"] = csrf;
	if (opts.body !== undefined) headers["Content-Type"] = "application/json";
	let r;
	try {
		r = await fetch(path, { method, headers, cache: "no-store",
			body: opts.body === undefined ? undefined :
				JSON.stringify(opts.body) });
	} catch (e) {
		throw new ApiError(0, "unreachable",
			"The gateway could not be reached (" + e.message + ").");
	}
	if (r.status === 401 && !opts.noRetry && expired) {
		relogin = relogin || expired().finally(() => { relogin = null; });
		await relogin;
		return api(path, { ...opts, noRetry: true });
	}
	const text = await r.text().catch(() => "");
	let out = null;
	try { out = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
	if (!r.ok) {
		const e = out && out.error;
		throw new ApiError(r.status, e ? e.code : "http_" + r.status,
			e && e.message ? e.message :
			`The gateway answered ${r.status} ${r.statusText}.`);
	}
	return opts.text ? text : out;
}
