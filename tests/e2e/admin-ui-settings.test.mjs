// SPDX-License-Identifier: MIT
// The Settings page (#/settings) in Chromium: the form made from the
// options table (groups, the right control per type, marks for restart and
// for what the command line sets), the raw JSON kept in step both ways, a
// valid change saved and applied (the API and the file say so), one that
// needs a restart said, changes the server rejects shown in its words with
// the file unchanged, a stale page refused (412), screenshots at both
// sizes and in the dark theme, and no console errors.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { startAdmin, skip } from "./lib/admin-ui.mjs";

let A, page;
const raw = () => page.inputValue("#settings-raw").then(JSON.parse);
const status = (re) => page.locator("#settings-status")
	.filter({ hasText: re }).waitFor();
const fail = (re) => page.locator("#settings-error")
	.filter({ hasText: re }).waitFor();
// Replace the raw JSON with f(the current one), as a person types it.
async function editRaw(f) {
	const cfg = f(await raw());
	await page.fill("#settings-raw", JSON.stringify(cfg, null, 2));
	return cfg;
}

before(async () => {
	if (skip) return;
	A = await startAdmin("admin-ui-settings");
	page = A.page;
});
after(async () => { await A?.stop(); });

test("the form shows the options in groups", { skip }, async () => {
	await page.goto(A.gw.url + "/#/settings");
	await page.locator("#g-log").waitFor();
	assert.ok(await page.locator("#settings-form .opt").count() > 50,
		"every option has a row");
	for (const g of ["general", "log", "http", "llm", "sandbox"])
		assert.equal(await page.locator("#g-" + g).count(), 1, g);
	assert.match(await page.textContent("#settings-body"),
		new RegExp(A.gw.conf.replace(/[.]/g, "\\.")),
		"the file's path is said");
	await page.click("#g-http summary");
	const threads = page.locator(".opt[data-name='http.threads']");
	assert.match(await threads.textContent(), /needs a restart/);
	assert.equal(await page.getAttribute("#o-http-threads", "type"),
		"number");
	assert.equal(await page.getAttribute("#o-http-threads", "max"), "64");
	assert.equal(await page.inputValue("#o-http-threads"), "2",
		"the default shows when the file leaves it out");
	assert.match(await threads.textContent(), /worker threads/,
		"the help is under it");
	await page.click("#g-log summary");
	assert.equal(await page.locator("#o-log-level option").count(), 4,
		"an enum is a select of its values");
	assert.equal(await page.getAttribute("#o-log-requests", "type"),
		"checkbox");
	await page.click("#g-general summary");
	assert.ok(await page.isDisabled("#o-listen"),
		"--listen wins over the file: read-only");
	assert.match(await page.textContent(".opt[data-name=listen]"),
		/set on the command line/);
	assert.equal((await raw()).admin_ui.dir,
		`${process.env.TOP_SRCDIR}/admin-ui`, "the raw JSON is the file");
	await A.shot("settings", (p) => p.locator("#o-listen").waitFor());
	await page.emulateMedia({ colorScheme: "dark" });
	await A.shot("settings-dark", (p) => p.locator("#o-listen").waitFor());
	await page.emulateMedia({ colorScheme: "light" });
});

test("find narrows the form to matching options", { skip }, async () => {
	await page.fill("#settings-filter", "log.level");
	await page.locator("#g-log[open]").waitFor();
	assert.equal(await page.locator("#settings-form .opt:visible").count(),
		1);
	await page.fill("#settings-filter", "no such option at all");
	await page.locator("#settings-none:visible").waitFor();
	await page.fill("#settings-filter", "");
	await page.locator("#settings-none").waitFor({ state: "hidden" });
});

test("a valid change: saved, applied, said", { skip }, async () => {
	await page.fill("#settings-filter", "log.level");
	await page.selectOption("#o-log-level", "debug");
	assert.equal((await raw()).log.level, "debug",
		"the raw JSON follows the form");
	await status(/Not saved yet/);
	await page.click("#settings-save");
	await status(/^Saved and applied\.$/);
	const g = await A.api("/api/v1/config");
	assert.equal(g.body.config.log.level, "debug", "the file has it");
	assert.equal(g.body.options.find((o) => o.name === "log.level").value,
		"debug", "it is in effect");
	assert.match(fs.readFileSync(A.gw.conf, "utf8"),
		/"level": "debug"/);
	assert.equal(await page.textContent("#settings-error"), "");
	await A.shot("settings-saved", (p) => p.locator("#o-log-level")
		.waitFor());
});

test("the raw JSON edits the form too", { skip }, async () => {
	await page.fill("#settings-filter", "rate_limit_rps");
	await editRaw((c) => ({ ...c, http: { rate_limit_rps: 77 } }));
	assert.equal(await page.inputValue("#o-http-rate_limit_rps"), "77");
	await page.fill("#settings-raw", "{ \"http\": ");
	await page.locator("#settings-raw-error")
		.filter({ hasText: /Not valid JSON yet/ }).waitFor();
	await page.click("#settings-save");
	await fail(/raw JSON does not parse/);
	await page.click("#settings-reload");
	await status(/Loaded from the file/);
	assert.equal((await raw()).http, undefined, "back to the file");
});

test("an option that needs a restart is said", { skip }, async () => {
	await page.fill("#settings-filter", "http.threads");
	await page.fill("#o-http-threads", "3");
	await page.click("#settings-save");
	await status(/except http\.threads: it needs a restart/);
	await page.fill("#settings-filter", "http.threads");
	assert.match(await page.textContent(".opt[data-name='http.threads']"),
		/Running with 2 until pincerd restarts/);
	assert.equal(await page.inputValue("#o-http-threads"), "3");
});

test("a change the server rejects: its words, file unchanged", { skip },
    async () => {
	const before = fs.readFileSync(A.gw.conf, "utf8");
	await page.fill("#settings-filter", "max_header_bytes");
	await editRaw((c) => ({ ...c, http: { ...c.http,
		max_header_bytes: 10 } }));
	assert.equal(await page.inputValue("#o-http-max_header_bytes"), "10",
		"typed in the raw JSON, shown in the form");
	await page.click("#settings-save");
	await fail(/http\.max_header_bytes: expected an integer from 1024 to 65536/);
	await status(/Not saved/);
	assert.match(await page.textContent("#o-http-max_header_bytes-error"),
		/^http\.max_header_bytes: expected an integer/,
		"the option's own line says it too");
	assert.equal(fs.readFileSync(A.gw.conf, "utf8"), before);
	await A.shot("settings-rejected", (p) => p.locator("#settings-error")
		.waitFor());

	// Two problems at once: each on its own line.
	await editRaw((c) => ({ ...c, log: { level: "loud" },
		llm: { routes: { default: ["nope/x"] } } }));
	await page.click("#settings-save");
	await fail(/log\.level: expected one of/);
	const words = await page.textContent("#settings-error");
	assert.match(words, /http\.max_header_bytes/);
	assert.ok(words.split("\n").length >= 2, "one line per problem");

	// A route to a provider that does not exist.
	await editRaw((c) => ({ ...c, log: { level: "debug" },
		http: { ...c.http, max_header_bytes: 8192 } }));
	await page.click("#settings-save");
	await fail(/nope/);
	console.log("# the server said: " + await page.textContent(
		"#settings-error"));
	assert.equal(fs.readFileSync(A.gw.conf, "utf8"), before);
	await page.click("#settings-reload");
	await status(/Loaded from the file/);
});

test("a page older than the file is refused (412)", { skip }, async () => {
	const g = await A.api("/api/v1/config");
	const cfg = { ...g.body.config, log: { level: "warn" } };
	const r = await A.api("/api/v1/config", { method: "PUT", body: cfg });
	assert.equal(r.status, 200, "someone else saved");
	await page.fill("#settings-filter", "log.level");
	await page.selectOption("#o-log-level", "error");
	await page.click("#settings-save");
	await fail(/changed since this page read it/);
	assert.equal(JSON.parse(fs.readFileSync(A.gw.conf, "utf8")).log.level,
		"warn", "the other save is kept");
	await page.click("#settings-reload");
	await status(/Loaded from the file/);
	assert.equal(await page.inputValue("#o-log-level"), "warn");
	assert.equal(await page.textContent("#settings-error"), "");
});

test("the keyboard reaches Save and the groups", { skip }, async () => {
	await page.focus("#settings-save");
	await page.keyboard.press("Tab");
	assert.equal(await page.evaluate(() => document.activeElement.id),
		"settings-reload");
	await page.fill("#settings-filter", "");
	await page.focus("#settings-filter");
	await page.keyboard.press("Tab");
	assert.equal(await page.evaluate(() =>
		document.activeElement.closest("details")?.id), "g-general");
});

test("no console errors", { skip }, () => {
	// The rejected saves answer 400 and 412 on purpose; Chromium logs
	// each failed load. Anything else is a fault.
	const left = A.errors().filter((e) => !(/status of (400|412)/
		.test(e) && /\/api\/v1\/config/.test(e)));
	assert.deepEqual(left, []);
});
