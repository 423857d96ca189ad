// SPDX-License-Identifier: MIT
// The admin UI's Sandboxes page: the list, create/start/stop/destroy, the
// tab bar, and the terminal (xterm.js over the terminal WebSocket).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startAdmin, skip as noChromium } from "./lib/admin-ui.mjs";

let A, skip = noChromium;

before(async () => {
	if (skip) return;
	A = await startAdmin("admin-ui-sandboxes");
	const probe = await A.api("/api/v1/sandboxes", { method: "POST",
		body: { name: "probe" } });
	if (probe.status === 503)
		skip = `sandboxes cannot run here: ${JSON.stringify(probe.body)}`;
	else
		await A.api("/api/v1/sandboxes/probe", { method: "DELETE" });
});

after(async () => {
	if (A) await A.stop();
});

test("create a sandbox from the page; it shows in the list, running", async (t) => {
	if (skip) return t.skip(skip);
	const { page } = A;
	await page.goto(A.gw.url + "/#/sandboxes");
	await page.fill("#sbx-new-name", "box1");
	await page.click("#sbx-create");
	const row = page.locator("#sbx-table tr[data-name=box1]");
	await row.waitFor();
	await page.waitForFunction(() => document.querySelector(
		"#sbx-table tr[data-name=box1] .sbx-state")?.textContent ===
		"running");
	await A.shot("sandboxes-list");
});

test("the detail view: tabs as links, the terminal by default", async (t) => {
	if (skip) return t.skip(skip);
	const { page } = A;
	await page.click("#sbx-table tr[data-name=box1] a.sbx-name");
	await page.waitForURL(/#\/sandboxes\/box1\/terminal$/);
	assert.equal(await page.getAttribute("#sbx-tab-terminal",
		"aria-current"), "page");
	await page.goto(A.gw.url + "/#/sandboxes/box1");
	await page.waitForURL(/#\/sandboxes\/box1\/terminal$/);
	await page.click("#sbx-tab-files");
	await page.waitForURL(/#\/sandboxes\/box1\/files$/);
	assert.equal(await page.getAttribute("#sbx-tab-files", "aria-current"),
		"page");
	assert.equal(await page.getAttribute("#sbx-tab-terminal",
		"aria-current"), null);
});
