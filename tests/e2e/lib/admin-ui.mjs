// SPDX-License-Identifier: MIT
// admin-ui.mjs: what every admin UI test file needs: a real pincerd serving
// the source tree's admin-ui/, Debian's Chromium through playwright-core, an
// owner signed in with the setup code from the log, console errors
// collected, and screenshots at desktop and phone size written to
// $TOP_BUILDDIR/tests/screenshots/ for a reviewer.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { startPincer } from "./daemon.mjs";

export const chromiumPath = "/usr/bin/chromium";
export const skip = fs.existsSync(chromiumPath) ? false :
	"Debian's chromium is not installed (apt-get install chromium)";
export const shots = path.join(process.env.TOP_BUILDDIR ?? os.tmpdir(),
	"tests", "screenshots");
export const sizes = { desktop: { width: 1280, height: 800 },
	phone: { width: 390, height: 844 } };
export const OWNER = { username: "alice", password: "a long passphrase" };

export function launchChromium() {
	return chromium.launch({
		executablePath: chromiumPath,
		args: ["--no-sandbox", "--disable-gpu", "--disable-quic",
			"--no-first-run", "--disable-background-networking",
			"--disable-component-update", "--disable-sync"],
	});
}

// Start pincerd (config merged over the UI's and a cheap argon2), Chromium,
// and a page signed in as the owner (made with the setup code through the
// API, then logged in through the form). Answers
// { gw, browser, page, errors(), api(path, opts), shot(name), stop() }.
export async function startAdmin(name, config = {}, opts = {}) {
	const gw = await startPincer(name, {
		admin_ui: { dir: `${process.env.TOP_SRCDIR}/admin-ui` },
		auth: { argon2_memory_kib: 1024, argon2_iterations: 1 },
		...config,
	}, opts);
	const browser = await launchChromium();
	const page = await browser.newPage({ viewport: sizes.desktop });
	const errs = [];
	watchConsole(page, "main", errs);
	fs.mkdirSync(shots, { recursive: true });
	const code = gw.log().match(/setup_code=([A-Z0-9-]+)/)?.[1];
	assert.ok(code, "pincerd printed a setup code");
	await page.goto(gw.url + "/");
	await page.locator("#login").waitFor({ state: "visible" });
	const made = await page.evaluate(async ([c, u]) => (await fetch(
		"/api/v1/auth/setup", { method: "POST",
			headers: { "Content-Type": "application/json" },
			body: JSON.stringify({ code: c, username: u.username,
				password: u.password }) })).status, [code, OWNER]);
	assert.equal(made, 201, "the owner was made");
	await login(page);
	return {
		gw, browser, page,
		// Console errors other than the 401s of the login page.
		errors: () => errs.filter((e) => !/status of 401/.test(e)),
		// Call the API with the page's session (CSRF header added).
		api: (p, o = {}) => pageApi(page, p, o),
		shot: (n, extra) => shotBoth(browser, gw, page, n, extra),
		async stop() {
			await browser.close().catch(() => {});
			await gw.stop();
		},
	};
}

export async function login(page, who = OWNER) {
	await page.fill("#login-form input[name=username]", who.username);
	await page.fill("#login-form input[name=password]", who.password);
	await page.click("#login-form button");
	await page.locator("#who").waitFor({ state: "visible" });
}

export function watchConsole(p, where, into) {
	p.on("console", (m) => {
		if (m.type() === "error")
			into.push(`${where}: ${m.text()} ${m.location().url}`);
	});
	p.on("pageerror", (e) => into.push(`${where}: ${e.message}`));
}

// fetch() inside the page: the session cookie and the CSRF token from
// /api/v1/me. Answers { status, body } (body parsed when JSON).
export function pageApi(page, p, o = {}) {
	return page.evaluate(async ([p, o]) => {
		const me = await (await fetch("/api/v1/me")).json();
		const headers = { "X-CSRF-Token": me.csrf_token };
		if (o.body !== undefined)
			headers["Content-Type"] = "application/json";
		const r = await fetch(p, { method: o.method || "GET", headers,
			body: o.body === undefined ? undefined :
				JSON.stringify(o.body) });
		const t = await r.text();
		let body = t;
		try { body = JSON.parse(t); } catch { /* text */ }
		return { status: r.status, body };
	}, [p, o]);
}

// Screenshots of the page's current route at both sizes, as
// NAME-desktop.png and NAME-phone.png; ready(page), if given, waits for
// what must be on screen. Also checks there is no sideways scroll.
async function shotBoth(browser, gw, page, name, ready) {
	const route = new URL(page.url()).hash;
	for (const [size, viewport] of Object.entries(sizes)) {
		await page.setViewportSize(viewport);
		if (ready) await ready(page);
		await page.screenshot({ path: path.join(shots,
			`${name}-${size}.png`), fullPage: true });
		const wide = await page.evaluate(() =>
			document.documentElement.scrollWidth);
		assert.ok(wide <= viewport.width,
			`${route}: no sideways scroll at ${size} (${wide} px)`);
	}
	await page.setViewportSize(sizes.desktop);
}
