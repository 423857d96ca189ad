// SPDX-License-Identifier: MIT
// The admin UI's Memory page (#/memory) in Chromium, on a real sandbox:
// with no agent sandbox yet it says so and makes one; MEMORY.md and a
// daily note edited on the page and read back through the sandbox files
// API (and by the page again); the skills as pincer-agent judges them, one
// eligible and one not with its reason; a skill turned off on the page is
// off for pincer-agent. Screenshots at both sizes; no console errors.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startAdmin, skip as noChromium } from "./lib/admin-ui.mjs";

let A;
let skip = noChromium;
const BOX = "agent-alice";
const FILES = `/api/v1/sandboxes/${BOX}/files`;
const NOTE = "# Memory\n- Alice likes green tea.\n- The VPN is at vpn.example.org.\n";

before(async () => {
	if (skip) return;
	A = await startAdmin("admin-ui-memory", {
		agent: { skills_dir: `${process.env.TOP_SRCDIR}/skills` } });
});
after(async () => { await A?.stop(); });

const go = (hash) => A.page.evaluate((h) => { location.hash = h; }, hash);

// The skills list, or the words of its error as the failure.
async function skillsShown(page) {
	await Promise.race([
		page.locator("#skills").waitFor({ timeout: 60000 }),
		page.locator("#memory-skills-err:not(:empty)").waitFor(
			{ timeout: 60000 }),
	]);
	assert.equal(await page.locator("#memory-skills-err").textContent(),
		"", "the skills were listed");
}

// PUT a file's bytes with the page's session (pageApi sends JSON only).
function put(p, text) {
	return A.page.evaluate(async ([p, text]) => {
		const me = await (await fetch("/api/v1/me")).json();
		return (await fetch(p, { method: "PUT", body: text,
			headers: { "X-CSRF-Token": me.csrf_token } })).status;
	}, [p, text]);
}

test("no sandbox yet: said, and made from the page", { skip }, async (t) => {
	const { page } = A;
	await go("#/memory");
	await page.locator("#memory-none").waitFor();
	assert.match(await page.locator("#memory-none").innerText(),
		/agent-alice/);
	await A.shot("memory-no-sandbox", (p) => p.locator("#memory-create")
		.waitFor());
	await page.click("#memory-create");
	await Promise.race([
		page.locator("#memory-box").waitFor({ timeout: 60000 }),
		page.locator("#memory-create-err:not(:empty)").waitFor(
			{ timeout: 60000 }),
	]);
	const why = await page.locator("#memory-box").count() ? "" :
		await page.locator("#memory-create-err").textContent();
	if (why) {
		skip = `sandboxes cannot run here: ${why}`;
		t.skip(skip);
		return;
	}
	assert.equal(await page.inputValue("#memory-box"), BOX);
});

test("MEMORY.md and a daily note edited, saved, read back", async (t) => {
	if (skip) return t.skip(String(skip));
	const { page, api } = A;
	await page.locator("#memory-text").waitFor();
	assert.equal(await page.getAttribute("#memory-list button[aria-current]",
		"data-path"), "/data/MEMORY.md", "MEMORY.md opens first");
	await page.fill("#memory-text", NOTE);
	await page.click("#memory-save");
	await page.locator("#memory-saved", { hasText: "Saved" }).waitFor();
	const back = await api(`${FILES}/data/MEMORY.md`);
	assert.equal(back.status, 200);
	assert.equal(back.body, NOTE, "the files API reads what was saved");

	const today = new Date().toISOString().slice(0, 10);
	await page.click(`button[data-path="/data/memory/${today}.md"]`);
	await page.locator("#memory-editor h3", { hasText: today }).waitFor();
	await page.fill("#memory-text", "09:00 talked about tea\n");
	await page.click("#memory-save");
	await page.locator("#memory-saved", { hasText: "Saved" }).waitFor();
	assert.equal((await api(`${FILES}/data/memory/${today}.md`)).body,
		"09:00 talked about tea\n");

	/* The page reads them again as they are now. */
	await go("#/dashboard");
	await go("#/memory");
	await page.locator("#memory-text").waitFor();
	await page.waitForFunction((n) => document.querySelector(
		"#memory-text").value === n, NOTE);
	await skillsShown(page);
	await A.shot("memory", (p) => p.locator("#skills").waitFor());
});

test("skills: eligible or why not; one turned off for the agent",
    async (t) => {
	if (skip) return t.skip(String(skip));
	const { page, api } = A;
	assert.equal(await put(`${FILES}/data/skills/needs-tool/SKILL.md`,
		"---\nname: needs-tool\ndescription: Needs a program this " +
		"sandbox lacks.\nmetadata: {\"openclaw\": {\"requires\": " +
		"{\"bins\": [\"pincer-no-such-tool\"]}}}\n---\nbody\n"), 201);
	await go("#/dashboard");
	await go("#/memory");
	const row = (n) => page.locator("#skills li.skill", {
		has: page.locator(".skill-name", { hasText: new RegExp(`^${n}$`) }) });
	await skillsShown(page);
	await row("needs-tool").waitFor();
	assert.match(await row("needs-tool").innerText(),
		/Not eligible: needs the program pincer-no-such-tool, which is not on PATH/);
	assert.match(await row("shell").innerText(), /Eligible/);
	assert.ok(await row("shell").locator("input.skill-enabled").isChecked());

	await row("shell").locator("input.skill-enabled").uncheck();
	await page.waitForFunction(() => {
		const i = document.querySelector(
			"#skills input[data-skill=shell]");
		return i && !i.checked && !i.disabled &&
			i.parentElement.textContent.includes("off");
	});
	const file = await api(`${FILES}/data/skills.disabled`);
	assert.match(file.body, /^shell$/m);
	const r = await api(`/api/v1/sandboxes/${BOX}/exec`, { method: "POST",
		body: { cmd: ["/opt/pincer/pincer-agent", "skills"] } });
	const sk = JSON.parse(r.body.stdout).skills;
	assert.equal(sk.find((s) => s.name === "shell").enabled, false,
		"pincer-agent sees the skill turned off");
	assert.equal(sk.find((s) => s.name === "memory").enabled, true);
	await A.shot("memory-skills-off", (p) => p.locator("#skills")
		.waitFor());

	await row("shell").locator("input.skill-enabled").check();
	await page.waitForFunction(() => {
		const i = document.querySelector(
			"#skills input[data-skill=shell]");
		return i && i.checked && !i.disabled &&
			i.parentElement.textContent.includes("on");
	});
	assert.doesNotMatch((await api(`${FILES}/data/skills.disabled`)).body,
		/^shell$/m, "turned on again");
});

test("no console errors", { skip: noChromium }, () => {
	assert.deepEqual(A.errors(), []);
});
