// SPDX-License-Identifier: MIT
// The Settings page's pincerd section in Chromium: Back up now makes a
// backup listed with its size; Restart pincerd (after a confirm) restarts
// the gateway in place (same pid, same address: a fixed port here), the
// page comes back by itself still signed in; a channel saved from the
// Channels page shows a restart button and runs after it. Screenshots at
// both sizes; no console errors.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { startAdmin, skip } from "./lib/admin-ui.mjs";

let ui;

function freePort() {
	return new Promise((resolve, reject) => {
		const s = net.createServer().listen(0, "127.0.0.1", () => {
			const { port } = s.address();
			s.close(() => resolve(port));
		}).on("error", reject);
	});
}

before(async () => {
	if (skip) return;
	ui = await startAdmin("admin-ui-system", {}, {
		listen: `127.0.0.1:${await freePort()}` });
});
after(async () => { await ui?.stop(); });

test("Back up now makes a backup, listed", { skip }, async () => {
	const { page } = ui;
	await page.goto(ui.gw.url + "/#/settings");
	await page.locator("#system-h").waitFor();
	await page.locator("#backups-list").filter({ hasText: /No backup/ })
		.waitFor();
	await page.click("#backup-now");
	await page.locator("#backups-status").filter({ hasText: /Backed up as/ })
		.waitFor();
	await page.locator("#backups-table tbody tr").first().waitFor();
	const list = (await ui.api("/api/v1/system/backups")).body.backups;
	assert.equal(list.length, 1);
	assert.match(await page.textContent("#backups-table"),
		new RegExp(list[0].id));
	await page.locator("#backups").scrollIntoViewIfNeeded();
	await ui.shot("settings-system");
});

test("a channel saved since the start offers the restart; after it, " +
    "it runs", { skip }, async () => {
	const { page } = ui;
	const got = (await ui.api("/api/v1/config")).body;
	const next = { ...got.config, channels: [{ name: "home",
		kind: "generic", secret: "home_hook",
		callback_url: "http://127.0.0.1:9/replies" }] };
	const put = await page.evaluate(async ([etag, body]) => {
		const me = await (await fetch("/api/v1/me")).json();
		const r = await fetch("/api/v1/config", { method: "PUT",
			headers: { "Content-Type": "application/json",
				"If-Match": etag, "X-CSRF-Token": me.csrf_token },
			body: JSON.stringify(body) });
		return r.status;
	}, [got.etag, next]);
	assert.equal(put, 200);
	await page.goto(ui.gw.url + "/#/channels");
	await page.locator("#chan-home-status").waitFor();
	assert.match(await page.textContent("#chan-home"), /not running/);
	const before = ui.gw.log().match(/msg=listening/g).length;

	await page.click("#chan-home-restart");
	const dlg = page.locator("dialog.confirm[open]");
	await dlg.waitFor();
	await ui.shot("channels-restart-confirm");
	await dlg.getByRole("button", { name: "Restart" }).click();
	await page.locator("#chan-home-restart-status")
		.filter({ hasText: /Restarting/ }).waitFor();
	/* The page reloads itself once the new pincerd is ready. */
	await page.waitForEvent("load", { timeout: 60000 });
	await page.locator("#who").waitFor({ state: "visible" });
	assert.equal(ui.gw.log().match(/msg=listening/g).length, before + 1,
		"pincerd listened again");
	assert.match(ui.gw.log(), /msg=restarting/);
	await page.locator("#chan-home-status").waitFor();
	assert.doesNotMatch(await page.textContent("#chan-home"),
		/not running/, "the channel runs now");
	assert.equal(await page.locator("#chan-home-restart").count(), 0);
	const audit = (await ui.api("/api/v1/audit")).body;
	assert.match(JSON.stringify(audit), /system\.restart/);
});

test("no console errors", { skip }, async () => {
	assert.deepEqual(ui.errors(), []);
});
