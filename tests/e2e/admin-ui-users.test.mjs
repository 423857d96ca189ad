// SPDX-License-Identifier: MIT
// The admin UI's Users page (#/users, #/users/tokens, #/users/audit) in
// Chromium, as a person uses it: add a member who then logs in in a
// second browser, change their role, disable them (their session gets 401
// at once), reset their password, delete them; an API error shown in words
// by the control; a token made and shown once (never in the list or the
// page afterwards), then revoked; the audit log filtered and paged back.
// Screenshots of every view at both sizes; no console errors.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startAdmin, skip, login, watchConsole } from "./lib/admin-ui.mjs";
import { get } from "./lib/daemon.mjs";

let A;	/* startAdmin's answer */
const MIA = { username: "mia", password: "mia's first passphrase" };
const MIA2 = "mia's second passphrase";
/* The one error this file provokes on purpose: demoting the last owner. */
const provoked = (e) => /status of 409/.test(e);

before(async () => {
	if (skip) return;
	A = await startAdmin("admin-ui-users");
});
after(async () => { await A?.stop(); });

const go = (hash) => A.page.evaluate((h) => { location.hash = h; }, hash);
const row = (name) => A.page.locator("#users-table tbody tr", {
	has: A.page.locator(".user-name", { hasText: new RegExp(`^${name}`) }) });

test("people: add, log in elsewhere, role, disable, password, delete",
    { skip }, async () => {
	const { page, api, gw } = A;
	await go("#/users");
	await row("alice").waitFor();
	assert.match(await row("alice").innerText(), /owner/);
	await A.shot("users", (p) => p.locator("#users-table").waitFor());

	await page.fill("#user-add input[name=name]", MIA.username);
	await page.fill("#user-add input[name=email]", "mia@example.org");
	await page.selectOption("#user-add select[name=role]", "member");
	await page.fill("#user-add input[name=password]", MIA.password);
	await page.click("#user-add button[type=submit]");
	await row("mia").waitFor();
	assert.match(await row("mia").innerText(), /mia@example\.org/);
	assert.equal(await page.inputValue("#user-add input[name=password]"),
		"", "the form is cleared after adding");

	/* Mia logs in from another browser. */
	const ctx2 = await A.browser.newContext();
	const p2 = await ctx2.newPage();
	const errs2 = [];
	watchConsole(p2, "mia", errs2);
	/* Her own tokens: a member's page (the dashboard asks for
	 * sandboxes, which a member may not see). */
	await p2.goto(gw.url + "/#/users/tokens");
	await p2.locator("#login").waitFor({ state: "visible" });
	await login(p2, MIA);
	assert.match(await p2.locator("#who-name").innerText(), /mia \(member\)/);
	const miaMe = () => p2.evaluate(async () =>
		(await fetch("/api/v1/me")).status);
	assert.equal(await miaMe(), 200);
	await p2.locator("#tokens-none").waitFor();
	/* People and the audit log are not hers: said, not asked for. */
	await p2.evaluate(() => { location.hash = "#/users/audit"; });
	await p2.locator("#users-member").waitFor();
	await p2.evaluate(() => { location.hash = "#/memory"; });
	await p2.locator("#memory-member").waitFor();
	await p2.evaluate(() => { location.hash = "#/users"; });
	await p2.locator("#users-tokens").waitFor();
	/* Her dashboard: the gateway and her spend, no admin-only card
	 * (nothing asked that answers 403). */
	await p2.evaluate(() => { location.hash = "#/dashboard"; });
	await p2.locator("#usage-today").waitFor();
	assert.equal(await p2.locator("#card-sandboxes, #card-errors, " +
		"#card-channels").count(), 0);
	assert.equal(await p2.locator(".card .bad:not(:empty)").count(), 0);

	/* Role, through the select. */
	await row("mia").locator("select.user-role").selectOption("admin");
	await page.waitForFunction(() => [...document.querySelectorAll(
		"#users-table tbody tr")].some((r) => /^mia/.test(r.innerText) &&
		r.querySelector("select").value === "admin"));
	let users = (await api("/api/v1/users")).body.users;
	assert.equal(users.find((u) => u.name === "mia").role, "admin");

	/* The last owner cannot be demoted: the reason, by the control. */
	await row("alice").locator("select.user-role").selectOption("member");
	await row("alice").locator("p.bad").filter({ hasText: /last owner/ })
		.waitFor();
	assert.equal(await row("alice").locator("select.user-role")
		.inputValue(), "owner", "the select goes back");

	/* Disable: her session stops working at once. */
	await page.click("button[aria-label='Disable mia']");
	await row("mia").locator("text=disabled").waitFor();
	assert.equal(await miaMe(), 401, "a disabled user's session gets 401");

	/* A new password, then enable: she logs in with it. */
	await page.click("button[aria-label='Reset the password of mia']");
	await page.locator("#passwd-dialog").waitFor();
	await A.shot("users-password", (p) => p.locator("#passwd-dialog")
		.waitFor());
	await page.fill("#passwd-dialog input[name=password]", MIA2);
	await page.click("#passwd-dialog button[type=submit]");
	await page.locator("#passwd-dialog").waitFor({ state: "detached" });
	await page.click("button[aria-label='Enable mia']");
	await row("mia").locator("text=active").waitFor();
	const relog = (pw) => p2.evaluate(async (pw) => (await fetch(
		"/api/v1/auth/login", { method: "POST", headers:
		{ "Content-Type": "application/json" }, body: JSON.stringify(
		{ username: "mia", password: pw }) })).status, pw);
	assert.equal(await relog(MIA.password), 401, "the old password fails");
	assert.equal(await relog(MIA2), 200, "the new one works");

	/* Delete, after a confirmation. */
	await page.click("button[aria-label='Delete mia']");
	await page.locator("#confirm-dialog").waitFor();
	await A.shot("users-confirm", (p) => p.locator("#confirm-dialog")
		.waitFor());
	await page.click("#confirm-dialog .confirm-yes");
	await row("mia").waitFor({ state: "detached" });
	users = (await api("/api/v1/users")).body.users;
	assert.ok(!users.some((u) => u.name === "mia"));
	assert.equal(await miaMe(), 401, "a deleted user's session gets 401");
	assert.deepEqual(errs2.filter((e) => !/status of 401/.test(e)), []);
	await ctx2.close();
});

test("tokens: made, shown once, listed by name, revoked", { skip },
    async () => {
	const { page, api, gw } = A;
	await go("#/users/tokens");
	await page.locator("#token-add").waitFor();
	await page.fill("#token-add input[name=name]", "ci-bot");
	await page.check("#token-add input[value=llm]");
	await page.click("#token-add button[type=submit]");
	await page.locator("#token-dialog").waitFor();
	const secret = await page.inputValue("#token-secret");
	assert.match(secret, /^pincer_[0-9a-f]+_\S{20,}$/);
	assert.match(await page.locator("#token-dialog").innerText(),
		/shown only this once/);
	await A.shot("users-token-once", (p) => p.locator("#token-dialog")
		.waitFor());
	assert.equal((await get(gw.url + "/api/v1/me",
		{ Authorization: "Bearer " + secret })).status, 200,
		"the token works");
	await page.click("#token-copy");
	await page.locator("#token-copied:not(:empty)").waitFor();
	await page.click("#token-done");
	await page.locator("#token-dialog").waitFor({ state: "detached" });
	const trow = page.locator("#tokens-table tbody tr",
		{ hasText: "ci-bot" });
	await trow.waitFor();
	assert.match(await trow.innerText(), /llm/);
	/* pincer_<hex id>_<base64url secret>: the secret may hold "_". */
	const sec = secret.slice(secret.indexOf("_", "pincer_".length) + 1);
	assert.ok(sec.length >= 40, `the whole secret part (${sec.length})`);
	const html = await page.evaluate(() => document.documentElement
		.outerHTML + [...document.querySelectorAll("input")]
		.map((i) => i.value).join(" "));
	assert.ok(!html.includes(sec), "the secret is gone from the page");
	const listed = await api("/api/v1/tokens");
	assert.ok(!JSON.stringify(listed.body).includes(sec),
		"the list never holds the secret");
	await A.shot("users-tokens", (p) => p.locator("#tokens-table")
		.waitFor());

	await trow.locator("button.token-revoke").click();
	await page.click("#confirm-dialog .confirm-yes");
	await trow.waitFor({ state: "detached" });
	assert.equal((await get(gw.url + "/api/v1/me",
		{ Authorization: "Bearer " + secret })).status, 401,
		"a revoked token gets 401");
});

test("audit: these changes, filtered, and older entries paged in",
    { skip }, async () => {
	const { page, api } = A;
	/* More token_create entries than one page (50) holds. */
	for (let i = 0; i < 52; i++)
		assert.equal((await api("/api/v1/tokens", { method: "POST",
			body: { name: `bulk-${i}`, scopes: "read" } })).status, 201);
	await go("#/users/audit");
	await page.locator("#audit-table tbody tr").first().waitFor();
	await A.shot("users-audit", (p) => p.locator("#audit-table tbody tr")
		.first().waitFor());

	await page.fill("#audit-filter input[name=actor]", "alice");
	await page.fill("#audit-filter input[name=action]", "user_");
	await page.click("#audit-filter button[type=submit]");
	await page.waitForFunction(() => {
		const rows = [...document.querySelectorAll("#audit-table tbody tr")];
		return rows.length > 0 && rows.every((r) =>
			r.children[2].textContent.startsWith("user_"));
	});
	const cells = await page.$$eval("#audit-table tbody tr", (rs) =>
		rs.map((r) => [...r.children].map((c) => c.textContent)));
	for (const a of ["user_add", "user_role", "user_disable",
		"user_enable", "user_passwd", "user_delete"])
		assert.ok(cells.some((c) => c[2] === a && c[3] === "mia" &&
			c[1] === "alice"), `an entry ${a} for mia`);
	assert.ok(cells.every((c) => c[1] === "alice"));
	await A.shot("users-audit-filtered", (p) => p.locator(
		"#audit-table tbody tr").first().waitFor());

	/* A time range from the future: nothing, said in words. */
	await page.fill("#audit-filter input[name=since]", "2999-01-01T00:00");
	await page.click("#audit-filter button[type=submit]");
	await page.locator("#audit-none").waitFor({ state: "visible" });
	await page.fill("#audit-filter input[name=since]", "");

	await page.fill("#audit-filter input[name=actor]", "");
	await page.fill("#audit-filter input[name=action]", "token_create");
	await page.click("#audit-filter button[type=submit]");
	await page.locator("#audit-older").waitFor({ state: "visible" });
	assert.equal(await page.locator("#audit-table tbody tr").count(), 50);
	await page.click("#audit-older");
	await page.waitForFunction(() => document.querySelectorAll(
		"#audit-table tbody tr").length === 53);
	assert.ok(await page.locator("#audit-older").isHidden(),
		"no older page after the last");
});

test("no console errors", { skip }, () => {
	assert.deepEqual(A.errors().filter((e) => !provoked(e)), []);
	assert.equal(A.errors().filter(provoked).length, 1,
		"the one 409 this file asked for");
});
