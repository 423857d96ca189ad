// SPDX-License-Identifier: MIT
// The admin UI's Sandboxes page driven as a person would: create a sandbox
// from the form, see it in the list, open its terminal (xterm.js over the
// terminal WebSocket), type, resize, lose the socket and see it come back,
// then stop and destroy it through the confirm dialog. Screenshots at both
// sizes; no console errors (the CSP refuses xterm.js's inline styles unless
// the page feeds them through the CSSOM). Skips where sandboxes cannot run.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { startAdmin, skip as noChromium } from "./lib/admin-ui.mjs";

let A, skip = noChromium;
let noXterm = false;	/* make could not fetch it: the tab must say so */
const NAME = "box1";
const row = (n = NAME) => `#sbx-table tr[data-name="${n}"]`;

before(async () => {
	if (skip) return;
	A = await startAdmin("admin-ui-sandboxes");
	const probe = await A.api("/api/v1/sandboxes", { method: "POST",
		body: { name: "probe" } });
	if (probe.status === 503) {
		skip = `sandboxes cannot run here: ${JSON.stringify(probe.body)}`;
		return;
	}
	assert.equal(probe.status, 201, JSON.stringify(probe.body));
	assert.equal((await A.api("/api/v1/sandboxes/probe",
		{ method: "DELETE" })).status, 200);
	noXterm = !fs.existsSync(`${process.env.TOP_SRCDIR}/admin-ui/vendor/` +
	    "lib/xterm.mjs");
});

after(async () => {
	if (A) await A.stop();
});

async function until(f, what, ms = 20000) {
	const end = Date.now() + ms;
	for (;;) {
		const v = await f();
		if (v) return v;
		if (Date.now() > end) throw new Error(`timed out: ${what}`);
		await new Promise((r) => setTimeout(r, 100));
	}
}

// Console errors but those the tests cause on purpose: the aborted
// sbx-egress.js, the unknown sandbox, the refused name "a..b" (400); and
// the missing vendor/lib/ files when make could not fetch xterm.js.
const unexpected = () => A.errors().filter((e) => !(/sbx-egress\.js|nosuch/
	.test(e) || /status of 400 \(Bad Request\) \S+\/api\/v1\/sandboxes$/
	.test(e) || (noXterm && /\/vendor\/lib\//.test(e))));

// The terminal's text as xterm.js's DOM renderer shows it, row by row.
const screen = (page) => page.evaluate(() => [...document.querySelectorAll(
	"#term .xterm-rows > div")].map((r) => r.textContent).join("\n"));

// Type a command into the terminal; wait for a line of output matching re.
async function run(page, cmd, re) {
	await page.locator("#term .xterm-helper-textarea").focus();
	await page.keyboard.type(cmd);
	await page.keyboard.press("Enter");
	return until(async () => (await screen(page)).match(re),
		`${re} in the terminal`);
}

test("create a sandbox from the page; it shows in the list, running", async (t) => {
	if (skip) return t.skip(skip);
	const { page } = A;
	await page.goto(A.gw.url + "/#/sandboxes");
	await page.locator("#sbx-empty").waitFor();
	await A.shot("sandboxes-empty");
	/* A name the API refuses: its words by the form. */
	await page.fill("#sbx-new-name", "a..b");
	await page.click("#sbx-create");
	await until(async () => /name/i.test(await page.textContent(
		"#sbx-create-error")), "the refusal in words");
	await page.fill("#sbx-new-name", NAME);
	await page.click("#sbx-create");
	await page.locator(row()).waitFor();
	assert.equal(await page.textContent("#sbx-create-error"), "");
	await page.waitForFunction((sel) => document.querySelector(
		`${sel} .sbx-state`)?.textContent === "running", row());
	/* Memory and processes come from its cgroup when the host has one. */
	const mem = await page.textContent(`${row()} .sbx-mem`);
	assert.match(mem, /^(–|\d+(\.\d)? (B|KiB|MiB|GiB))$/);
	assert.ok(await page.isDisabled(`${row()} .sbx-start`));
	assert.ok(!await page.isDisabled(`${row()} .sbx-stop`));
	await A.shot("sandboxes-list");
});

test("the detail view: tabs as links with aria-current; terminal first", async (t) => {
	if (skip) return t.skip(skip);
	const { page } = A;
	await page.click(`${row()} a.sbx-name`);
	await page.waitForURL(/#\/sandboxes\/box1\/terminal$/);
	assert.equal(await page.getAttribute("#sbx-tab-terminal",
		"aria-current"), "page");
	await page.goto(A.gw.url + "/#/sandboxes/box1");
	await page.waitForURL(/#\/sandboxes\/box1\/terminal$/);
	/* Keyboard: Tab reaches the tab bar's links, Enter follows one. */
	await page.focus("#sbx-tab-terminal");
	await page.keyboard.press("Tab");
	assert.equal(await page.evaluate(() => document.activeElement.id),
		"sbx-tab-files");
	/* A tab whose module cannot load says so in words. */
	await page.route("**/sbx-egress.js", (r) => r.abort());
	await page.click("#sbx-tab-egress");
	await until(async () => /Egress tab could not be loaded/.test(
		await page.textContent("#sbx-tab-error")), "the load error");
	assert.equal(await page.getAttribute("#sbx-tab-egress", "aria-current"),
		"page");
	assert.equal(await page.getAttribute("#sbx-tab-terminal",
		"aria-current"), null);
	await page.unroute("**/sbx-egress.js");
});

test("an unknown sandbox says so and the terminal stops trying", async (t) => {
	if (skip) return t.skip(skip);
	const { page } = A;
	await page.goto(A.gw.url + "/#/sandboxes/nosuch/terminal");
	await until(async () => /no sandbox|not found|no such/i.test(
		await page.textContent("#sbx-detail-error")), "not found, in words");
	if (noXterm) return;
	await until(async () => /Not reconnecting/.test(
		await page.textContent("#term-status")), "no retry loop");
});

test("the terminal: echo hi, colours without CSP errors, resize, reconnect", async (t) => {
	if (skip) return t.skip(skip);
	const { page } = A;
	await page.goto(A.gw.url + "/#/sandboxes/box1/terminal");
	if (noXterm) {
		await until(async () => /xterm\.js is not installed/.test(
			await page.textContent("#term-error")), "no xterm, in words");
		return t.skip("xterm.js is not in admin-ui/vendor/lib (make " +
			"without npm); checked that the tab says so");
	}
	await page.locator("#term-status.ok").waitFor();
	await run(page, "echo hi", /^hi\s*$/m);
	/* Tab goes to the shell, Shift+Tab out of the terminal. */
	const inTerm = () => page.evaluate(() => document.activeElement
		.classList.contains("xterm-helper-textarea"));
	await page.keyboard.press("Tab");
	assert.ok(await inTerm(), "Tab stays in the terminal");
	await page.keyboard.press("Shift+Tab");
	assert.ok(!await inTerm(), "Shift+Tab leaves the terminal");
	await page.keyboard.press("Tab");
	assert.ok(await inTerm(), "Tab comes back to it");
	await page.locator("#term .xterm-helper-textarea").focus();
	await page.keyboard.press("Control+U");	/* the Tab typed above */
	/* 16 colours come from classes, 24-bit ones from style="": both
	 * must reach the screen under the strict CSP. */
	await run(page, "printf '\\e[31mRED\\e[0m \\e[38;2;1;2;3mRGB\\e[0m\\n'",
		/^RED RGB\s*$/m);
	const colours = await page.evaluate(() => {
		const spans = [...document.querySelectorAll("#term .xterm-rows span")];
		const c = (t) => getComputedStyle(spans.find((s) =>
			s.textContent === t)).color;
		return { red: c("RED"), rgb: c("RGB"),
			plain: getComputedStyle(document.querySelector(
				"#term .xterm-rows")).color };
	});
	assert.notEqual(colours.red, colours.plain, JSON.stringify(colours));
	assert.equal(colours.rgb, "rgb(1, 2, 3)");
	await A.shot("sandboxes-terminal", (p) => p.waitForTimeout(300));
	/* The terminal follows the theme: dark when the system is. */
	const bg = () => page.evaluate(() => getComputedStyle(
		document.querySelector("#term .xterm-scrollable-element"))
		.backgroundColor);
	const light = await bg();
	await page.emulateMedia({ colorScheme: "dark" });
	await until(async () => await bg() !== light, "a dark terminal");
	await A.shot("sandboxes-terminal-dark", (p) => p.waitForTimeout(300));
	await page.emulateMedia({ colorScheme: "light" });
	await until(async () => await bg() === light, "light again");

	/* The window's size reaches the shell: stty sees the terminal's. */
	let asked = 0;
	const size = async () => {
		const n = ++asked;	/* so an older answer cannot match */
		const m = await run(page, `stty size | sed 's/^/size${n}: /'`,
			new RegExp(`^size${n}: (\\d+) (\\d+)\\s*$`, "m"));
		return [Number(m[1]), Number(m[2])];
	};
	const wide = await size();
	await page.setViewportSize({ width: 390, height: 844 });
	await until(async () => !(await page.textContent("#term-status"))
		.includes(`${wide[1]}×`), "the terminal to shrink");
	const narrow = await size();
	assert.ok(narrow[1] < wide[1], `columns ${wide} -> ${narrow}`);
	const cols = await page.evaluate(() => document.querySelector(
		"#term-status").textContent.match(/(\d+)×(\d+)/).slice(1));
	assert.deepEqual(narrow, [Number(cols[1]), Number(cols[0])]);
	await page.setViewportSize({ width: 1280, height: 800 });

	/* The sandbox goes to sleep: the socket drops, the page says it
	 * is reconnecting, and the next attempt wakes it. */
	assert.equal((await A.api(`/api/v1/sandboxes/${NAME}/stop`,
		{ method: "POST", body: {} })).status, 200);
	await until(async () => /reconnecting/i.test(await page.textContent(
		"#term-status")), "reconnecting…");
	await page.locator("#term-status.ok").waitFor({ timeout: 30000 });
	await run(page, "echo back-$((6*7))", /^back-42\s*$/m);
	assert.deepEqual(unexpected(), []);
});

test("stop, start and destroy from the list (a confirm dialog first)", async (t) => {
	if (skip) return t.skip(skip);
	const { page } = A;
	await page.goto(A.gw.url + "/#/sandboxes");
	await page.locator(row()).waitFor();
	/* Each button is enabled only when it can do something. */
	const settled = (state) => page.waitForFunction(([sel, st]) => {
		const q = (x) => document.querySelector(`${sel} ${x}`);
		return q(".sbx-state")?.textContent === st &&
			q(".sbx-start").disabled === (st === "running") &&
			q(".sbx-stop").disabled === (st !== "running");
	}, [row(), state]);
	await page.click(`${row()} .sbx-stop`);
	await settled("sleeping");
	await page.click(`${row()} .sbx-start`);
	await settled("running");
	await page.click(`${row()} .sbx-stop`);
	await settled("sleeping");
	/* Cancel keeps it (and has the focus: Enter does not destroy). */
	await page.click(`${row()} .sbx-destroy`);
	await page.locator("#sbx-confirm").waitFor();
	assert.equal(await page.textContent("#sbx-confirm .sbx-confirm-name"),
		NAME);
	assert.equal(await page.evaluate(() => document.activeElement.id),
		"sbx-confirm-no");
	await A.shot("sandboxes-confirm");
	await page.keyboard.press("Enter");
	await page.locator("#sbx-confirm").waitFor({ state: "hidden" });
	assert.equal((await A.api(`/api/v1/sandboxes/${NAME}`)).status, 200);
	await page.click(`${row()} .sbx-destroy`);
	await page.click("#sbx-confirm-yes");
	await page.locator(row()).waitFor({ state: "detached" });
	await page.locator("#sbx-empty").waitFor();
});

test("no console errors", async (t) => {
	if (skip) return t.skip(skip);
	assert.deepEqual(unexpected(), []);
});
