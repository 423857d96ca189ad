// SPDX-License-Identifier: MIT
// The admin UI's sandbox tabs, driven as a person would: Files (upload,
// view, edit and save, download, a new folder, delete, an error in
// words), Snapshots (take, restore, fork, delete; the /data sync state and
// sync now), Egress (switch the policy, a request of the sandbox in the
// log, filters), Browser (a tab of the sandbox's browser shown live as
// frames in an <img> through blob: URLs). Screenshots of each at both
// sizes; no console errors.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import path from "node:path";
import { startAdmin, skip as noChromium } from "./lib/admin-ui.mjs";

const BOX = "tabs";
let A, skip = noChromium;
const F = `/api/v1/sandboxes/${BOX}/files`;

before(async () => {
	if (skip) return;
	A = await startAdmin("admin-ui-sandbox-tabs", {
		egress: { policy: "open", policies: {
			open: { default: "deny", rules: [
				{ host: "denied.example", action: "deny",
					reason: "not this one" }] },
			closed: { rules: [] } } },
	});
	const made = await A.api("/api/v1/sandboxes", { method: "POST",
		body: { name: BOX } });
	if (made.status === 503)
		skip = `sandboxes cannot run here: ${JSON.stringify(made.body)}`;
	else
		assert.equal(made.status, 201, JSON.stringify(made.body));
});

after(async () => {
	if (A) await A.stop();
});

const until = async (f, what, ms = 15000) => {
	for (let i = 0; i < ms / 100; i++) {
		if (await f()) return;
		await new Promise((r) => setTimeout(r, 100));
	}
	assert.fail(`timed out: ${what}`);
};

// Text of the first element matching sel, or "" when there is none.
const text = (sel) => A.page.evaluate((s) =>
	document.querySelector(s)?.textContent ?? "", sel);

async function open(tab) {
	await A.page.goto(`${A.gw.url}/#/sandboxes/${BOX}/${tab}`);
	await A.page.locator(`#sbx-tab-${tab}[aria-current=page]`).waitFor();
}

// Say yes in the confirm dialog that the last click opened.
async function confirmYes() {
	await A.page.locator("dialog.confirm[open] .confirm-yes").click();
}

test("files: upload, view, edit and save, download", async (t) => {
	if (skip) return t.skip(skip);
	const { page } = A;
	await open("files");
	await until(async () => /workspace/.test(await text(
		"#sbx-files-path [aria-current]")), "the listing of /workspace");
	await page.setInputFiles("#sbx-files-upload", { name: "hello.txt",
		mimeType: "text/plain", buffer: Buffer.from("hello from the page\n") });
	const item = page.locator("#sbx-files-table button[data-name='hello.txt']");
	await item.waitFor();
	const up = await A.api(`${F}/workspace/hello.txt`);
	assert.equal(up.status, 200);
	assert.equal(up.body, "hello from the page\n", "the upload arrived");
	// By keyboard: Tab from the upload control reaches the file, Enter
	// opens it.
	await page.focus("#sbx-files-upload");
	let on = false;
	for (let i = 0; i < 10 && !on; i++) {
		await page.keyboard.press("Tab");
		on = await page.evaluate(() =>
			document.activeElement?.dataset?.name === "hello.txt");
	}
	assert.ok(on, "Tab reached the file's button");
	await page.keyboard.press("Enter");
	const area = page.locator("#sbx-files-text");
	await area.waitFor();
	assert.equal(await area.inputValue(), "hello from the page\n");
	assert.equal(await area.getAttribute("aria-label"),
		"Content of /workspace/hello.txt");
	await A.shot("sandbox-files", (p) => p.locator("#sbx-files-text")
		.waitFor());
	await area.fill("edited in the browser\nline two\n");
	await page.click("#sbx-files-save");
	await until(async () => /^Saved/.test(await text("#sbx-files-status")),
		"Saved");
	const back = await A.api(`${F}/workspace/hello.txt`);
	assert.equal(back.body, "edited in the browser\nline two\n",
		"the edit is read back through the API");
	// The download link: the API path, with the download attribute.
	const link = page.locator("#sbx-files-table a.download[download]")
		.first();
	const href = await link.getAttribute("href");
	assert.equal(href, `${F}/workspace/hello.txt`);
	const got = await page.evaluate(async (u) => {
		const r = await fetch(u);
		return [r.status, await r.text()];
	}, href);
	assert.deepEqual(got, [200, "edited in the browser\nline two\n"]);
});

test("files: a folder made, entered by the breadcrumb, deleted; " +
    "errors in words", async (t) => {
	if (skip) return t.skip(skip);
	const { page } = A;
	await page.fill("#sbx-files-mkdir-name", "sub dir");
	await page.click("#sbx-files-mkdir button[type=submit]");
	const sub = page.locator("#sbx-files-table button[data-name='sub dir']");
	await sub.waitFor();
	const st = await A.api(`${F}/workspace/sub%20dir?stat=1`);
	assert.equal(st.body.type, "dir");
	await sub.click();
	await until(async () => await text("#sbx-files-path [aria-current]") ===
		"sub dir", "in the folder");
	await page.locator("#sbx-files-empty").waitFor();
	await A.shot("sandbox-files-folder");
	await page.click("#sbx-files-path button:has-text('workspace')");
	await sub.waitFor();
	// A name with a slash is refused before any request, in words.
	await page.fill("#sbx-files-mkdir-name", "a/b");
	await page.click("#sbx-files-mkdir button[type=submit]");
	assert.match(await text("#sbx-files-tool-error"), /no "\/"/);
	// Delete, after the confirm; Cancel first keeps the folder.
	await page.click("button[aria-label='Delete sub dir']");
	await page.locator("dialog.confirm[open] .confirm-no").click();
	assert.equal((await A.api(`${F}/workspace/sub%20dir?stat=1`)).status,
		200, "Cancel deleted nothing");
	await page.click("button[aria-label='Delete sub dir']");
	await confirmYes();
	await sub.waitFor({ state: "detached" });
	assert.equal((await A.api(`${F}/workspace/sub%20dir?stat=1`)).status,
		404);
	// The API's error shown next to the control: the file went away
	// behind the page's back, then Delete is clicked.
	assert.equal((await A.api(`${F}/workspace/hello.txt`,
		{ method: "DELETE" })).status, 200);
	await page.click("button[aria-label='Delete hello.txt']");
	await confirmYes();
	const err = page.locator("#sbx-files-table tr:has(button[data-name=" +
		"'hello.txt']) p.bad");
	await until(async () => (await err.textContent()).length > 0,
		"the error shown by its row");
	assert.match(await err.textContent(), /no such|not found|exist/i);
});

test("snapshots: take one, restore it, fork it, delete it; /data sync",
    async (t) => {
	if (skip) return t.skip(skip);
	const { page } = A;
	assert.equal((await A.api(`${F}/workspace/keep.txt`, { method: "PUT",
		body: "v1" })).status, 201);
	await open("snapshots");
	await page.locator("#sbx-snap-empty").waitFor();
	await until(async () => (await text("#sbx-sync-state")).length > 0,
		"the sync state");
	await page.click("#sbx-snap-take");
	await page.locator("#sbx-snap-table .snap-id").first().waitFor();
	const list = await A.api(`/api/v1/sandboxes/${BOX}/snapshots`);
	assert.equal(list.body.snapshots.length, 1);
	const id = list.body.snapshots[0].id;
	assert.equal(await page.getAttribute("#sbx-snap-table .snap-id",
		"data-id"), id, "the page lists the API's snapshot");
	assert.match(await text("#sbx-snap-status"), new RegExp(id));
	// Restore: what changed since goes back.
	await A.api(`${F}/workspace/keep.txt`, { method: "PUT", body: "v2" });
	await page.click(`button[aria-label='Restore ${id}']`);
	await confirmYes();
	await until(async () => /^Restored/.test(await text("#sbx-snap-status")),
		"Restored");
	assert.equal((await A.api(`${F}/workspace/keep.txt`)).body, "v1",
		"the file is as it was in the snapshot");
	// Fork into a new sandbox.
	await page.fill(`#sbx-snap-table .fork-name`, "tabs-copy");
	await page.click("#sbx-snap-table .fork button[type=submit]");
	await until(async () => /Made the sandbox/.test(await text(
		"#sbx-snap-status")), "the fork made");
	assert.equal((await A.api("/api/v1/sandboxes/tabs-copy")).status, 200);
	assert.equal((await A.api("/api/v1/sandboxes/tabs-copy/files/" +
		"workspace/keep.txt")).body, "v1");
	// A fork into a name that exists: the API's words by the row.
	await page.fill(`#sbx-snap-table .fork-name`, "tabs-copy");
	await page.click("#sbx-snap-table .fork button[type=submit]");
	await until(async () => (await text("#sbx-snap-table p.bad")).length >
		0, "the fork's error");
	// Sync now answers a state.
	await page.click("#sbx-sync-now");
	await until(async () => /synced|pending|syncing/.test(await text(
		"#sbx-sync-state")), "a sync state");
	assert.equal(await text("#sbx-sync-error"), "");
	await A.shot("sandbox-snapshots");
	await page.click(`button[aria-label='Delete ${id}']`);
	await confirmYes();
	await page.locator("#sbx-snap-empty").waitFor();
	assert.equal((await A.api(`/api/v1/snapshots/${id}`)).status, 404);
});

test("egress: switch the policy; the sandbox's request in the log",
    async (t) => {
	if (skip) return t.skip(skip);
	const { page } = A;
	await open("egress");
	await until(async () => /^Now: open/.test(await text(
		"#sbx-egress-current")), "the current policy");
	const names = await page.$$eval("#sbx-egress-pick option",
		(o) => o.map((x) => x.value));
	assert.deepEqual(names, ["", "closed", "default", "open"]);
	await page.selectOption("#sbx-egress-pick", "closed");
	await page.click("#sbx-egress-switch");
	await until(async () => /^Switched to closed/.test(await text(
		"#sbx-egress-status")), "switched");
	const r = await A.api(`/api/v1/sandboxes/${BOX}/egress`);
	assert.equal(r.body.policy, "closed");
	assert.equal(r.body.set, true);
	await page.selectOption("#sbx-egress-pick", "");
	await page.click("#sbx-egress-switch");
	await until(async () => /^Switched to open/.test(await text(
		"#sbx-egress-status")), "back to the default");
	assert.equal((await A.api(`/api/v1/sandboxes/${BOX}/egress`)).body.set,
		false);
	// A request from the sandbox (through its proxy, 127.0.0.1:3128).
	const ex = await A.api(`/api/v1/sandboxes/${BOX}/exec`, { method:
		"POST", body: { cmd: ["sh", "-c", "curl -s -o /dev/null " +
			"-w '%{http_code}' http://denied.example/x?token=t"] } });
	assert.equal(ex.status, 200, JSON.stringify(ex.body));
	assert.equal(ex.body.stdout, "403", JSON.stringify(ex.body));
	const row = page.locator("#sbx-egress-log tbody tr",
		{ hasText: "denied.example:80" });
	await until(async () => {
		await page.click("#sbx-egress-refresh");
		return await row.count() > 0;
	}, "the request's row");
	assert.match(await row.first().textContent(), /GET.*\/x\?….*deny/);
	await page.selectOption("#sbx-egress-action", "allow");
	await page.click("#sbx-egress-filter button[type=submit]");
	await page.locator("#sbx-egress-empty").waitFor();
	await page.selectOption("#sbx-egress-action", "deny");
	await page.fill("#sbx-egress-host", "denied.example");
	await page.click("#sbx-egress-filter button[type=submit]");
	await row.first().waitFor();
	await A.shot("sandbox-egress");
});

// A request on the sandbox's gateway.sock, as its 127.0.0.1:9222 would
// send it: how a program in the sandbox opens a tab.
function inside(method, p) {
	return new Promise((resolve, reject) => {
		const req = http.request({ socketPath: path.join(A.gw.state,
			"sandboxes", BOX, "run", "gateway.sock"), path: p, method,
			headers: { Host: "127.0.0.1:9222" } }, (res) => {
			let b = "";
			res.on("data", (d) => { b += d; });
			res.on("end", () => {
				try { resolve(JSON.parse(b)); } catch { resolve(b); }
			});
		});
		req.on("error", reject);
		req.end();
	});
}

test("browser: no tab, then a tab shown live in an <img> (blob: frames)",
    async (t) => {
	if (skip) return t.skip(skip);
	const { page } = A;
	await open("browser");
	await until(async () => !await page.locator("#sbx-browser-none")
		.isHidden() || (await text("#sbx-browser-error")).length > 0,
	"the tabs or an error");
	const err = await text("#sbx-browser-error");
	if (err) {
		// No browser here: the page says why, in words.
		assert.match(err, /No browser is available/);
		await A.shot("sandbox-browser-off");
		return t.skip(`the gateway has no browser: ${err}`);
	}
	await A.shot("sandbox-browser-none");
	const tab = await inside("PUT", "/json/new?data:text/html," +
		encodeURIComponent("<title>live one</title>" +
		"<h1>Hello from the sandbox</h1>"));
	assert.ok(tab.id, JSON.stringify(tab));
	await page.click("#sbx-browser-reload");
	await until(() => page.evaluate(() => {
		const i = document.querySelector("#sbx-browser-frame");
		return i && !i.hidden && i.src.startsWith("blob:") &&
			i.complete && i.naturalWidth > 0;
	}), "a frame in the <img>");
	assert.match(await text("#sbx-browser-page"), /live one/);
	assert.match(await text("#sbx-browser-live"), /View only/);
	await A.shot("sandbox-browser");
	// The tab closes: so does the view, said in words.
	await inside("GET", `/json/close/${tab.id}`);
	await until(async () => /closed/.test(await text("#sbx-browser-live")),
		"the view says it closed");
});

test("browser: with the browser off, the tab says why", async (t) => {
	if (skip) return t.skip(skip);
	const B = await startAdmin("admin-ui-sandbox-tabs-off",
		{ browser: { backend: "off" } });
	try {
		const made = await B.api("/api/v1/sandboxes", { method: "POST",
			body: { name: BOX } });
		assert.equal(made.status, 201, JSON.stringify(made.body));
		await B.page.goto(`${B.gw.url}/#/sandboxes/${BOX}/browser`);
		const err = B.page.locator("#sbx-browser-error");
		await until(async () => (await err.textContent()).length > 0,
			"the error");
		assert.match(await err.textContent(),
			/^No browser is available: the browser is off/);
		await until(async () => /^Browser: off, off/.test(await B.page
			.locator("#sbx-browser-state").textContent()), "its state");
		assert.ok(await B.page.locator("#sbx-browser-frame").isHidden());
		assert.ok(await B.page.locator("#sbx-browser-start").isHidden(),
			"no start button for a backend that is off");
		await B.shot("sandbox-browser-off");
		// The 409 that says the browser is off is meant.
		const meant = /status of 409 .*\/sandboxes\/tabs\/browser$/;
		assert.deepEqual(B.errors().filter((e) => !meant.test(e)), []);
	} finally {
		await B.stop();
	}
});

test("no console errors on the sandbox tabs", async (t) => {
	if (skip) return t.skip(skip);
	// Chromium logs each failed request: only those these tests cause
	// on purpose are let through (checks of a deletion, the errors
	// shown in words), by their status and path.
	const meant = [/status of 404 .*\/files\/workspace\/sub%20dir\?stat=1$/,
		/status of 404 .*\/files\/workspace\/hello\.txt$/,
		/status of 409 .*\/api\/v1\/snapshots\/tabs-[^/]+\/fork$/,
		/status of 404 .*\/api\/v1\/snapshots\/tabs-[^/]+$/];
	assert.deepEqual(A.errors().filter((e) => !meant.some((m) =>
		m.test(e))), []);
});
