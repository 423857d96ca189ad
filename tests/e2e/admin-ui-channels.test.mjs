// SPDX-License-Identifier: MIT
// The Channels page and the dashboard's channel and error cards, in
// Debian's Chromium: a Telegram channel (webhook mode) against the fake
// Bot API (tests/fakes/platforms.mjs) shows its status; a stranger's
// message makes a pairing request that appears on the page, is approved
// with its button (the API then lists it approved), a second is denied;
// the setup guide shows the webhook URL with the gateway's address and
// copies it; a webhook with a wrong secret token turns the card to Error
// with the reason and is a recent error on the dashboard; a channel's
// secret is set from its card (and never shown); a channel is added and
// one edited through the config API, and a config the server rejects
// shows its words; screenshots of both pages at desktop and phone size;
// no console errors.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { startAdmin, skip } from "./lib/admin-ui.mjs";

const PLATFORMS = fileURLToPath(new URL("../fakes/platforms.mjs",
	import.meta.url));
const TOKEN = "424242:AAchannels-e2e-token";
const HOOK = "hook_secret_e2e";
let fake, plat, ui;

async function startPlatforms() {
	const p = spawn(process.execPath, [PLATFORMS, "--port", "0"],
		{ stdio: ["ignore", "pipe", "inherit"] });
	const [line] = await once(p.stdout, "data");
	return { p, url: `http://127.0.0.1:${JSON.parse(line).port}` };
}

function secret(conf, state, name, value) {
	execFileSync(process.env.PINCER_BIN, ["--config", conf, "--state",
		state, "secret", "set", name], { input: value });
}

before(async () => {
	if (skip) return;
	({ p: fake, url: plat } = await startPlatforms());
	await fetch(`${plat}/_fake/telegram/config`, { method: "POST",
		body: JSON.stringify({ token: TOKEN, id: 7000001 }) });
	ui = await startAdmin("channels", {
		channels: [{ name: "tg", kind: "telegram",
			api_base: `${plat}/telegram`, bot_token: "tg_token",
			webhook_secret: "tg_hook" },
		{ name: "home", kind: "generic", secret: "home_hook",
			callback_url: `${plat}/generic/home` }],
	}, { beforeStart: ({ conf, state }) => {
		secret(conf, state, "tg_token", TOKEN);
		secret(conf, state, "tg_hook", HOOK);
	} });
});
after(async () => {
	await ui?.stop();
	fake?.kill("SIGTERM");
});

// A private message from a stranger, as Telegram's webhook sends it.
let updateId = 5000;
function hook(from, name, secretToken = HOOK) {
	const id = ++updateId;
	return fetch(`${ui.gw.url}/hooks/telegram`, { method: "POST",
		headers: { "Content-Type": "application/json",
			"X-Telegram-Bot-Api-Secret-Token": secretToken },
		body: JSON.stringify({ update_id: id, message: {
			message_id: id, date: Math.floor(Date.now() / 1000),
			from: { id: from, is_bot: false, first_name: name },
			chat: { id: from, type: "private", first_name: name },
			text: "hello?" } }) });
}

async function peer(id) {
	const r = await ui.api("/api/v1/pairing");
	return r.body.peers.find((p) => p.peer === String(id));
}

test("the Channels page: status, guide, pairing, errors", { skip },
	async () => {
		const { page } = ui;
		await page.goto(ui.gw.url + "/#/channels");
		const status = page.locator("#chan-tg-status");
		await status.waitFor();
		assert.equal(await status.textContent(), "OK",
			"the channel's status, in words");
		assert.match(await page.locator("#chan-tg").textContent(),
			/telegram \(webhook\)/);
		assert.match(await page.locator("#chan-tg").textContent(),
			/bot_token → secret tg_token: set/,
			"the secrets are named and said to be set");
		assert.equal(await page.locator("#pair-none").textContent(),
			"No pairing request is waiting.");

		/* The guide: the exact URL, with the gateway's address. */
		await page.click("#chan-tg-guide summary");
		const url = `${ui.gw.url}/hooks/telegram`;
		const block = page.locator("#chan-tg-guide .copyblock",
			{ hasText: "the webhook URL" });
		assert.equal(await block.locator("code").textContent(), url);
		assert.match(await page.locator("#chan-tg-guide").textContent(),
			/setWebhook[\s\S]*url=http:\/\/127\.0\.0\.1:\d+\/hooks\/telegram/,
			"the setWebhook call carries the URL");
		await page.context().grantPermissions(["clipboard-read",
			"clipboard-write"], { origin: ui.gw.url });
		await block.locator("button.copy").click();
		await block.locator("[role=status]").filter({ hasText: /./ })
			.waitFor();
		const said = await block.locator("[role=status]").textContent();
		if (said === "Copied.")
			assert.equal(await page.evaluate(() =>
				navigator.clipboard.readText()), url);
		else
			assert.match(said, /Selected/);
		await ui.shot("channels-guide");

		/* A stranger: a pairing request on the page; Approve. */
		assert.equal((await hook(111, "Ann")).status, 200);
		await page.click("#chan-refresh");
		const approve = page.getByRole("button",
			{ name: "Approve Ann (111) on tg" });
		await approve.waitFor();
		assert.ok((await peer(111)).code, "pending with a code");
		await ui.shot("channels-pairing");
		await approve.click();
		await page.locator("#pair-said").filter({ hasText: "Approved" })
			.waitFor();
		assert.equal((await peer(111)).state, "approved",
			"the API lists the stranger approved");

		/* A second: Deny. */
		assert.equal((await hook(222, "Bob")).status, 200);
		await page.click("#chan-refresh");
		await page.getByRole("button", { name: "Deny Bob (222) on tg" })
			.click();
		await page.locator("#pair-said").filter({ hasText: "Denied" })
			.waitFor();
		assert.equal((await peer(222)).state, "denied");
		assert.match(await page.locator("#pair-decided").textContent(),
			/Bob \(222\)denied/);

		/* A failing call is shown in words near its control. */
		await page.route("**/api/v1/pairing/tg/approve", (r) =>
			r.fulfill({ status: 500, contentType: "application/json",
				body: JSON.stringify({ error: { code: "x",
					message: "the store failed" } }) }));
		assert.equal((await hook(444, "Dan")).status, 200);
		await page.click("#chan-refresh");
		await page.getByRole("button", { name: "Approve Dan (444) on tg" })
			.click();
		await page.locator("#pair-error", { hasText: "the store failed" })
			.waitFor();
		await page.unroute("**/api/v1/pairing/tg/approve");

		/* A webhook with a wrong secret token: the card says so. */
		assert.equal((await hook(333, "Eve", "wrong")).status, 401);
		await page.click("#chan-refresh");
		await page.locator("#chan-tg-status", { hasText: "Error" })
			.waitFor();
		assert.match(await page.locator("#chan-tg-error").textContent(),
			/^a webhook request was refused: /);
		await ui.shot("channels");

		/* A secret set from the card: set, its value never shown. */
		assert.equal(await page.locator("#chan-home-secret-secret")
			.textContent(), "not set");
		await page.getByLabel("New value of the secret home_hook")
			.fill("a-very-secret-value");
		await page.locator("#chan-home .secret-form button").click();
		await page.locator("#chan-home-secret-secret", { hasText: /^set$/ })
			.waitFor();
		assert.ok(!(await page.content()).includes("a-very-secret-value"),
			"the value is nowhere on the page");

		/* A channel the server refuses: its words under the form. */
		await page.click("#chan-add summary");
		const add = page.locator("#chan-add form");
		await add.locator("input[name=name]").fill("tg");
		await add.getByLabel("Kind").selectOption("telegram");
		await add.getByRole("button", { name: "Add the channel" }).click();
		const refused = add.locator("[role=alert]");
		await refused.filter({ hasText: /used twice/ }).waitFor();
		assert.match(await refused.textContent(), /"tg" is used twice/);
		await ui.shot("channels-add-refused");

		/* Added: in the config, listed as not running yet. */
		await add.locator("input[name=name]").fill("slk");
		await add.getByLabel("Kind").selectOption("slack");
		await add.getByRole("button", { name: "Add the channel" }).click();
		await add.locator("[role=status]", { hasText: "Saved" }).waitFor();
		const conf = (await ui.api("/api/v1/config")).body.config;
		assert.deepEqual(conf.channels.find((c) => c.name === "slk"),
			{ name: "slk", kind: "slack", mode: "events",
				bot_token: "slk_bot_token",
				signing_secret: "slk_signing_secret",
				app_token: "slk_app_token", dm_policy: "pairing" });
		await page.locator("#chan-slk-status", { hasText: "Disabled" })
			.waitFor();

		/* Edited: the tg channel's policy. */
		await page.click("#chan-tg-edit summary");
		const edit = page.locator("#chan-tg-edit form");
		await edit.getByLabel("Who may talk").selectOption("allowlist");
		await edit.getByLabel("Allow list").fill("111, 555");
		await edit.getByRole("button", { name: "Save the channel" }).click();
		await edit.locator("[role=status]", { hasText: "Saved" }).waitFor();
		const tg = (await ui.api("/api/v1/config")).body.config.channels
			.find((c) => c.name === "tg");
		assert.equal(tg.dm_policy, "allowlist");
		assert.deepEqual(tg.allow, ["111", "555"]);
		assert.equal(tg.api_base, `${plat}/telegram`,
			"keys the form does not show are kept");

		/* The dashboard: the channel's state and the recent error. */
		await page.goto(ui.gw.url + "/#/dashboard");
		const chan = page.locator("#dash-chan-tg");
		await chan.waitFor();
		assert.match(await chan.textContent(), /^error: /);
		const err = page.locator("#card-errors");
		await err.locator("#dash-error-0").waitFor();
		assert.match(await err.textContent(), /webhook refused/);
		assert.match(await page.locator("#dash-errors-total")
			.textContent(), /^\d+ since pincerd started/);
		await ui.shot("dashboard-channels");
		/* Chromium logs the answers asked for above (the mocked
		 * 500, the refused config's 400) as failed loads. */
		assert.deepEqual(ui.errors().filter((e) =>
			!/status of 500 .*\/pairing\/tg\/approve$/.test(e) &&
			!/status of 400 .*\/api\/v1\/config$/.test(e)), [],
			"no console errors");
	});
