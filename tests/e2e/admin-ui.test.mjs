// SPDX-License-Identifier: MIT
// The admin UI in Debian's Chromium, driven by Playwright: the first owner
// is created with the setup code from the log, then logs out and in again;
// the shell: the dashboard's cards, the CSP, no console errors, the keyboard,
// the login dialog when the session expires, and screenshots of each page
// at desktop and phone size in $TOP_BUILDDIR/tests/screenshots/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { chromium } from "playwright-core";
import os from "node:os";
import path from "node:path";
import { startPincer, get } from "./lib/daemon.mjs";

const chromiumPath = "/usr/bin/chromium";
const skip = fs.existsSync(chromiumPath) ? false :
	"Debian's chromium is not installed (apt-get install chromium)";
let gw, browser, page;
const shots = path.join(process.env.TOP_BUILDDIR ?? os.tmpdir(), "tests",
	"screenshots");
const sizes = { desktop: { width: 1280, height: 800 },
	phone: { width: 390, height: 844 } };
/* Console errors and uncaught exceptions, as "where: text". */
const errors = [];

function watchConsole(p, where) {
	p.on("console", (m) => {
		if (m.type() === "error")
			errors.push(`${where}: ${m.text()} ${m.location().url}`);
	});
	p.on("pageerror", (e) => errors.push(`${where}: ${e.message}`));
}

// Errors other than the 401s the login page asks for (GET /api/v1/me
// before login, the wrong password or setup code): none is expected.
function unexpected() {
	return errors.filter((e) => !/status of 401/.test(e));
}

before(async () => {
	if (skip) return;
	gw = await startPincer("admin-ui", {
		admin_ui: { dir: `${process.env.TOP_SRCDIR}/admin-ui` },
		auth: { argon2_memory_kib: 1024, argon2_iterations: 1 },
	});
	browser = await chromium.launch({
		executablePath: chromiumPath,
		args: ["--no-sandbox", "--disable-gpu", "--disable-quic",
			"--no-first-run", "--disable-background-networking",
			"--disable-component-update", "--disable-sync"],
	});
	page = await browser.newPage();
	watchConsole(page, "main");
	fs.mkdirSync(shots, { recursive: true });
});
after(async () => {
	await browser?.close();
	await gw?.stop();
});

test("the setup code from the log creates the owner", { skip }, async () => {
	const code = gw.log().match(/setup_code=([A-Z0-9-]+)/)[1];
	await page.goto(gw.url + "/");
	await page.locator("#login").waitFor({ state: "visible" });
	await page.locator("#setup summary").click();
	await page.fill("#setup-form input[name=code]", "WRONG-CODE0");
	await page.fill("#setup-form input[name=username]", "alice");
	await page.fill("#setup-form input[name=password]", "a long passphrase");
	await page.click("#setup-form button");
	await page.locator("#setup-error").filter({ hasText: /setup code/ })
		.waitFor();
	await page.fill("#setup-form input[name=code]", code);
	await page.fill("#setup-form input[name=password]", "a long passphrase");
	await page.click("#setup-form button");
	await page.locator("#who").waitFor({ state: "visible" });
	assert.equal(await page.textContent("#who-name"), "alice (owner)");
});

test("the session cookie is out of the page's reach", { skip }, async () => {
	const jsCookies = await page.evaluate(() => document.cookie);
	assert.ok(!jsCookies.includes("pincer_session"), "HttpOnly");
	const cookies = await page.context().cookies();
	const s = cookies.find((c) => c.name === "pincer_session");
	assert.ok(s && s.httpOnly && s.sameSite === "Strict");
});

test("log out, then log in with the form", { skip }, async () => {
	await page.click("#logout");
	await page.locator("#login").waitFor({ state: "visible" });
	assert.equal(await page.isVisible("#who"), false);
	await page.fill("#login-form input[name=username]", "alice");
	await page.fill("#login-form input[name=password]", "wrong password");
	await page.click("#login-form button");
	await page.locator("#login-error").filter({ hasText: /wrong/ }).waitFor();
	await page.fill("#login-form input[name=password]", "a long passphrase");
	await page.click("#login-form button");
	await page.locator("#who").waitFor({ state: "visible" });
	assert.equal(await page.textContent("#who-name"), "alice (owner)");
});

test("the dashboard: version, sandbox counts, usage", { skip },
    async () => {
	/* A sandbox made through the API with the page's session. */
	const made = await page.evaluate(async () => {
		const me = await (await fetch("/api/v1/me")).json();
		const r = await fetch("/api/v1/sandboxes", { method: "POST",
			headers: { "Content-Type": "application/json",
				"X-CSRF-Token": me.csrf_token },
			body: JSON.stringify({ name: "ui-one" }) });
		return r.status;
	});
	await page.goto(gw.url + "/");
	await page.waitForURL(/#\/dashboard$/);	/* the default page */
	const v = JSON.parse((await get(gw.url + "/api/v1/version")).body);
	await page.locator("#dash-version").filter({ hasText: v.version })
		.waitFor();
	assert.equal(await page.textContent("#version"), "v" + v.version);
	await page.locator("#dash-live").filter({ hasText: "ok" }).waitFor();
	await page.locator("#dash-ready").filter({ hasText: "ready" }).waitFor();
	await page.locator("#dash-uptime").waitFor();
	await page.locator("#sbx-total").waitFor();
	const list = await page.evaluate(async () =>
		(await fetch("/api/v1/sandboxes")).json());
	if (made === 201) {
		assert.equal(await page.textContent("#sbx-total"), "1");
		const n = (st) => String(list.sandboxes.filter((x) =>
			x.state === st).length);
		assert.equal(await page.textContent("#sbx-sleeping"),
			n("sleeping"));
		assert.match(await page.textContent("#sbx-running"),
			new RegExp(`^${n("running")} of `));
	} else {
		assert.equal(await page.textContent("#sbx-total"), "0",
			`no sandbox could be made here (${made})`);
	}
	await page.locator("#usage-today").filter({ hasText: /\$0\.00, 0 tokens/ })
		.waitFor();
	assert.equal(await page.locator(".card .bad:not(:empty)").count(), 0,
		"no card shows an error");
	assert.equal(await page.getAttribute("nav a[href='#/dashboard']",
		"aria-current"), "page");
});

test("the HTML carries the Content-Security-Policy", { skip },
    async () => {
	const r = await page.request.get(gw.url + "/");
	const csp = r.headers()["content-security-policy"] ?? "";
	assert.match(csp, /default-src 'self'/);
	assert.doesNotMatch(csp, /unsafe-inline/);
});

test("keyboard: Tab reaches the nav, focus is visible", { skip },
    async () => {
	await page.locator("body").click({ position: { x: 5, y: 300 } });
	let inNav = false;
	for (let i = 0; i < 10 && !inNav; i++) {
		await page.keyboard.press("Tab");
		inNav = await page.evaluate(() =>
			!!document.activeElement.closest("nav"));
	}
	assert.ok(inNav, "a nav link took the focus");
	const o = await page.evaluate(() => {
		const cs = getComputedStyle(document.activeElement);
		return { style: cs.outlineStyle, width: cs.outlineWidth };
	});
	assert.notEqual(o.style, "none");
	assert.notEqual(o.width, "0px");
	/* Every control has a name. */
	const unnamed = await page.evaluate(() => [...document.querySelectorAll(
		"input, button, a")].filter((e) => !e.closest("[hidden]") &&
		!(e.labels?.length || e.textContent.trim() ||
		e.getAttribute("aria-label"))).length);
	assert.equal(unnamed, 0);
});

test("a 401 on a page asks for the login in place, then retries",
    { skip }, async () => {
	await page.context().clearCookies();
	await page.click("#dash-refresh");
	await page.locator("#relogin").waitFor({ state: "visible" });
	assert.match(page.url(), /#\/dashboard$/, "still on the page");
	await page.fill("#relogin-form input[name=username]", "alice");
	await page.fill("#relogin-form input[name=password]", "wrong one");
	await page.click("#relogin-form button[type=submit]");
	await page.locator("#relogin-error").filter({ hasText: /wrong/ })
		.waitFor();
	await page.fill("#relogin-form input[name=password]",
		"a long passphrase");
	await page.click("#relogin-form button[type=submit]");
	await page.locator("#relogin").waitFor({ state: "hidden" });
	await page.locator("#sbx-total").waitFor();
	assert.equal(await page.locator(".card .bad:not(:empty)").count(), 0,
		"the calls were retried");
	assert.ok((await page.context().cookies()).some((c) =>
		c.name === "pincer_session"), "a new session");
});

test("every page in the nav loads: a heading, no load error, keyboard",
    { skip }, async () => {
	await page.goto(gw.url + "/#/dashboard");
	await page.locator("#sbx-total").waitFor();
	const links = await page.$$eval("nav a", (as) =>
		as.map((a) => a.getAttribute("href")));
	assert.ok(links.length >= 8, `the nav has every page (${links})`);
	for (const href of links) {
		await page.click(`nav a[href='${href}']`);
		await page.waitForURL(new RegExp(href.replace("/", "\\/") +
			"($|/)"));
		await page.locator("#page h1").first().waitFor();
		assert.equal(await page.getAttribute(`nav a[href='${href}']`,
			"aria-current"), "page", href);
		const broken = await page.locator("#page > p.bad")
			.filter({ hasText: /could not be loaded/ }).count();
		assert.equal(broken, 0, `${href} loads its module`);
		/* The CSP comes with the page on a fresh load too. */
		const r = await page.request.get(gw.url + "/" + href);
		assert.match(r.headers()["content-security-policy"] ?? "",
			/default-src 'self'/, href);
	}
	assert.deepEqual(unexpected(), []);
});

test("screenshots at desktop and phone size; no console errors",
    { skip }, async () => {
	for (const [size, viewport] of Object.entries(sizes)) {
		const ctx = await browser.newContext({ viewport });
		const p = await ctx.newPage();
		watchConsole(p, `login ${size}`);
		await p.goto(gw.url + "/");
		await p.locator("#login").waitFor({ state: "visible" });
		assert.equal(await p.isVisible("#nav"), false, "no nav yet");
		await p.screenshot({ path: path.join(shots,
			`login-${size}.png`), fullPage: true });
		await ctx.close();
		await page.setViewportSize(viewport);
		await page.goto(gw.url + "/#/dashboard");
		await page.locator("#sbx-total").waitFor();
		await page.locator("#usage-month").waitFor();
		await page.screenshot({ path: path.join(shots,
			`dashboard-${size}.png`), fullPage: true });
		const wide = await page.evaluate(() =>
			document.documentElement.scrollWidth);
		assert.ok(wide <= viewport.width, `no sideways scroll (${size})`);
	}
	/* Dark follows the system. */
	await page.emulateMedia({ colorScheme: "dark" });
	await page.locator("#sbx-total").waitFor();
	const bg = await page.evaluate(() =>
		getComputedStyle(document.body).backgroundColor);
	assert.equal(bg, "rgb(17, 20, 23)", "the dark background");
	await page.screenshot({ path: path.join(shots, "dashboard-phone-dark.png"),
		fullPage: true });
	await page.emulateMedia({ colorScheme: "light" });
	assert.deepEqual(unexpected(), []);
});
