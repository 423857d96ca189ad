// SPDX-License-Identifier: MIT
// The admin UI in Debian's Chromium, driven by Playwright: the first owner
// is created with the setup code from the log, then logs out and in again.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { chromium } from "playwright-core";
import { startPincer } from "./lib/daemon.mjs";

const chromiumPath = "/usr/bin/chromium";
const skip = fs.existsSync(chromiumPath) ? false :
	"Debian's chromium is not installed (apt-get install chromium)";
let gw, browser, page;

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
