// SPDX-License-Identifier: MIT
// The admin UI's chat page in Debian's Chromium, driven as a person would,
// against a real pincerd whose agent runs in a real sandbox and calls the
// scripted fake provider: a new conversation by name; a turn where the
// model runs `echo hi` then answers, the reply streaming in and the tool
// call as a card (name, duration, arguments, result) that opens and
// closes; the same conversation after a reload; an image and a file sent
// with a reply; a slow turn stopped with the Stop button; an error event
// and an HTTP error in words, the text kept; screenshots of the list and
// the chat at both sizes; no console errors.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startAdmin, skip as noChromium } from "./lib/admin-ui.mjs";
import { startFake, script, requests, secret, cli, waitFor }
	from "./lib/llm.mjs";

const KEY = "sk-chat-e2e-2b7d41c09e5f";
secret(KEY);
/* A 40x40 red PNG, written in the sandbox by the scripted exec tool. */
const PNG = "iVBORw0KGgoAAAANSUhEUgAAACgAAAAoCAIAAAADnC86AAAAL0lEQVR42u3NMQ0A" +
	"AAgDsMmZfxXIwgQJT5P+zbQvIhaLxWKxWCwWi8VisVgsFt9ZvKLWWwDl4pwAAAAASUVO" +
	"RK5CYII=";
const REPLY = "The command said hi, and that is all there is to say here.";

// Sandboxes need user namespaces; where there are none, nothing runs.
function noSandbox() {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chat-probe-"));
	try {
		execFileSync(path.join(process.env.TOP_BUILDDIR ?? ".",
			"pincer-sandbox"), ["--dir", path.join(dir, "p"), "--", "true"],
			{ stdio: "pipe" });
		return false;
	} catch (e) {
		return `sandboxes cannot run here: ${String(e.stderr || e.message)
			.trim()}`;
	} finally {
		fs.rmSync(dir, { recursive: true, force: true });
	}
}
const skip = noChromium || noSandbox();
let A, fake, page;
const CONV = "api:alice:e2e";

before(async () => {
	if (skip) return;
	fake = await startFake({ key: KEY });
	A = await startAdmin("admin-ui-chat", {
		http: { rate_limit_rps: 0 },
		llm: { providers: [{ name: "oa", kind: "openai",
			base_url: `${fake.url}/v1`, key: "fake_key" }],
		routes: { default: ["oa/gpt-4o"] }, rate_limit_rpm: 0 },
	}, { beforeStart: ({ conf, state }) => cli(conf, state,
		["secret", "set", "fake_key"], KEY) });
	page = A.page;
});
after(async () => {
	await A?.stop();
	await fake?.close();
});

// Type a message and press Enter, as a person would.
async function say(text) {
	await page.locator("#chat-text").fill(text);
	await page.locator("#chat-text").press("Enter");
}

async function messageState(id) {
	const r = await A.api(`/api/v1/conversations/${CONV}/messages`);
	return r.body.messages?.find((m) => m.id === id)?.state;
}

test("the list, and a new conversation opened by name", { skip }, async () => {
	await page.click("#nav a[href='#/chat']");
	await page.locator("#chat-empty").waitFor();
	await page.click("#chat-new-open");
	assert.equal(await page.evaluate(() => document.activeElement.id),
		"chat-new-name", "the name field has the focus");
	await page.fill("#chat-new-name", "not a name");
	await page.press("#chat-new-name", "Enter");
	await page.locator("#chat-new-error").filter({ hasText: /1 to 64/ })
		.waitFor();
	await page.fill("#chat-new-name", "e2e");
	await page.press("#chat-new-name", "Enter");
	await page.locator("#chat-title").filter({ hasText: /^e2e$/ }).waitFor();
	assert.equal(new URL(page.url()).hash, "#/chat/api%3Aalice%3Ae2e");
	await page.locator(".chat-none").waitFor();
	assert.equal(await page.locator("#chat-stop").isVisible(), false,
		"no Stop while nothing runs");
});

test("a turn with a tool: the reply streams in, the tool as a card",
	{ skip }, async () => {
		await script(fake, [{ tool: "exec", args: { command: "echo hi" } },
			{ fake: "event-delay=120", text: REPLY }]);
		const box = page.locator("#chat-text");
		await box.click();
		await page.keyboard.type("run echo hi");
		await page.keyboard.press("Shift+Enter");
		await page.keyboard.type("please");
		assert.equal(await box.inputValue(), "run echo hi\nplease",
			"Shift+Enter makes a new line");
		await page.keyboard.press("Enter");
		/* The text goes from the composer once the message is stored. */
		await waitFor(async () => (await box.inputValue()) === "", 10000);
		const live = page.locator("#chat-live");
		await live.locator("details.tool-card").waitFor({ timeout: 30000 });
		assert.ok(await page.locator("#chat-stop").isVisible(),
			"Stop shows while the turn runs");
		/* Part of the reply is on screen before the whole of it. */
		const part = await waitFor(async () => {
			const t = await live.locator(".msg-text").last().textContent()
				.catch(() => "");
			return t && t.length < REPLY.length ? t : null;
		}, 30000);
		assert.ok(REPLY.startsWith(part), `streamed so far: "${part}"`);
		const reply = page.locator("li.msg.agent[data-kind=reply]");
		await reply.filter({ hasText: REPLY }).waitFor({ timeout: 30000 });
		await page.locator("#chat-stop").waitFor({ state: "hidden" });
		const user = page.locator("li.msg.user .msg-text");
		assert.equal(await user.last().textContent(), "run echo hi\nplease");

		const card = reply.locator("details.tool-card");
		assert.equal(await card.count(), 1, "one tool card, with the reply");
		const sum = await card.locator("summary").textContent();
		assert.match(sum, /^Tool exec · \d+(\.\d)? s$/, sum);
		assert.equal(await card.evaluate((d) => d.open), false, "closed");
		await card.locator("summary").click();
		assert.equal(await card.evaluate((d) => d.open), true, "opens");
		const [args, result] = await card.locator("pre.tool-text")
			.allTextContents();
		assert.deepEqual(JSON.parse(args), { command: "echo hi" });
		assert.match(result, /hi/);
		assert.match(result, /exit code 0/);
		await A.shot("chat-conversation", (p) => p.locator(
			"li.msg.agent[data-kind=reply]").first().waitFor());
		await card.locator("summary").focus();
		await page.keyboard.press("Enter");
		assert.equal(await card.evaluate((d) => d.open), false,
			"closes from the keyboard");
	});

test("a reload shows the same conversation from the API", { skip },
	async () => {
		await page.reload();
		await page.locator("li.msg.agent[data-kind=reply]")
			.filter({ hasText: REPLY }).waitFor();
		assert.deepEqual(await page.locator("li.msg .msg-text")
			.allTextContents(), ["run echo hi\nplease", REPLY]);
		assert.equal(await page.locator("#chat-title").textContent(), "e2e");
		/* The tool card too, from what the gateway stored. */
		const card = page.locator("li.msg.agent details.tool-card");
		assert.equal(await card.count(), 1);
		assert.equal(await card.getAttribute("data-tool"), "exec");
		assert.match(await card.locator("summary").textContent(),
			/Tool exec · \d+\.\d s$/);
		await card.locator("summary").click();
		assert.match(await card.textContent(), /"command": "echo hi"/);
		assert.match(await card.locator(".tool-result").textContent(),
			/hi/);
		const m = (await A.api(`/api/v1/conversations/${CONV}/messages`))
			.body.messages.find((x) => x.role === "agent");
		assert.equal(m.tools.length, 1);
		assert.equal(m.tools[0].name, "exec");
		assert.deepEqual(m.tools[0].input, { command: "echo hi" });
		assert.equal(m.tools[0].ok, true);
		assert.ok(m.tools[0].ms >= 0 && !("start_ms" in m.tools[0]));
	});

test("a reply's image shows inline, another file is a download", { skip },
	async () => {
		await script(fake, [{ tool: "exec", args: { command:
			`printf %s ${PNG} | base64 -d > dot.png; echo notes > n.txt` } },
		{ tool: "send_attachment", args: { path: "dot.png",
			caption: "a red square" } },
		{ tool: "send_attachment", args: { path: "n.txt" } },
		{ text: "Here is the picture." }]);
		await say("send me a picture");
		const reply = page.locator("li.msg.agent[data-kind=reply]")
			.filter({ hasText: "Here is the picture." });
		await reply.locator(".attachments img").waitFor({ timeout: 30000 });
		const img = reply.locator(".attachments img");
		await waitFor(() => img.evaluate((i) => i.complete &&
			i.naturalWidth === 40));
		assert.equal(await img.getAttribute("alt"), "a red square");
		assert.match(await img.getAttribute("src"),
			/^\/api\/v1\/conversations\/api:alice:e2e\/attachments\/\d+\/0$/);
		const file = reply.locator(".attachments a[download='n.txt']");
		assert.match(await file.textContent(), /^n\.txt \(6 B\)$/);
		const got = await A.api(await file.getAttribute("href"));
		assert.equal(got.body, "notes\n", "the link gives the file");
		assert.equal(await reply.locator("details.tool-card").count(), 3);
	});

test("a long result is cut, with Show all", { skip }, async () => {
	await script(fake, [{ tool: "exec", args: { command: "seq 1 400" } },
		{ text: "Counted." }]);
	await say("count to 400");
	const reply = page.locator("li.msg.agent[data-kind=reply]")
		.filter({ hasText: "Counted." });
	const card = reply.locator("details.tool-card");
	await card.waitFor({ timeout: 30000 });
	await card.locator("summary").click();
	const pre = card.locator(".tool-result pre");
	assert.match(await pre.textContent(), /…$/, "cut");
	assert.doesNotMatch(await pre.textContent(), /\n400\n/);
	await card.getByRole("button", { name: /^Show all \(\d[\d,]* characters\)$/ })
		.click();
	assert.match(await pre.textContent(), /\n400\n/, "all of it");
	assert.equal(await card.getByRole("button").count(), 0);
});

test("a slow turn is stopped with the Stop button", { skip }, async () => {
	await script(fake, [{ fake: "slow-first-byte=60000", text: "too late" }]);
	const n0 = (await requests(fake)).length;
	await say("take your time");
	const stop = page.locator("#chat-stop");
	await stop.waitFor();
	/* Stop once the turn runs (before, there is nothing to stop). */
	const id = await waitFor(async () => {
		const r = await A.api(`/api/v1/conversations/${CONV}/messages`);
		const m = r.body.messages.filter((x) => x.role === "user").pop();
		return m.text === "take your time" && m.state === "running" &&
			(await requests(fake)).length > n0 ? m.id : null;
	}, 30000);
	await stop.click();
	const stopped = page.locator("li.msg.agent[data-kind=stopped]");
	await stopped.filter({ hasText: "Stopped by alice." })
		.waitFor({ timeout: 15000 });
	await stop.waitFor({ state: "hidden" });
	assert.equal(await page.locator("#chat-live").count(), 0);
	assert.equal(await messageState(id), "done", "the message is done");
	assert.equal(await page.locator("#chat-stop-error").textContent(), "");
	await A.shot("chat-stopped", (p) => p.locator(
		"li.msg.agent[data-kind=stopped]").waitFor());
});

test("after a reload mid-turn, Stop still shows and stops it", { skip },
	async () => {
		await script(fake, [{ fake: "slow-first-byte=60000",
			text: "too late" }]);
		await say("wait for me");
		const id = await waitFor(async () => {
			const r = await A.api(`/api/v1/conversations/${CONV}/messages`);
			const m = r.body.messages.filter((x) => x.role === "user").pop();
			return m.text === "wait for me" && m.state === "running" ?
				m.id : null;
		}, 30000);
		await page.reload();
		await page.locator("li.msg.user").filter({ hasText: "wait for me" })
			.filter({ hasText: "the agent is answering" }).waitFor();
		await page.locator("#chat-stop").click();
		await page.locator("li.msg.agent[data-kind=stopped]").nth(1)
			.waitFor({ timeout: 15000 });
		await page.locator("#chat-stop").waitFor({ state: "hidden" });
		assert.equal(await messageState(id), "done");
	});

test("errors in words: the turn's error event, an HTTP error", { skip },
	async () => {
		await script(fake, ["400"]);
		await say("this fails");
		await page.locator("li.msg.agent[data-kind=error]")
			.filter({ hasText: /could not answer \(llm\)/ })
			.waitFor({ timeout: 30000 });
		const long = "x".repeat(70000);
		await page.locator("#chat-text").fill(long);
		await page.locator("#chat-send").click();
		await page.locator("#chat-send-error")
			.filter({ hasText: /up to 65536 bytes/ }).waitFor();
		assert.equal((await page.locator("#chat-text").inputValue()).length,
			70000, "the text is kept when the send fails");
		await page.locator("#chat-text").fill("");
	});

test("the list: newest first, each opens its conversation", { skip },
	async () => {
		await script(fake, [{ text: "hello from the other one" }]);
		await page.goto(A.gw.url + "/#/chat/" +
			encodeURIComponent("api:alice:other"));
		await say("hi there");
		await page.locator("li.msg.agent[data-kind=reply]")
			.filter({ hasText: "hello from the other one" })
			.waitFor({ timeout: 30000 });
		await page.click("#chat-back");
		const links = page.locator("#chat-conversations tbody a");
		await links.first().waitFor();
		assert.deepEqual(await links.allTextContents(), ["other", "e2e"]);
		const row = page.locator("#chat-conversations tbody tr").nth(1);
		assert.match(await row.textContent(), /^e2eapi\d+/);
		await A.shot("chat-list", (p) => p.locator("#chat-conversations")
			.waitFor());
		await links.nth(1).click();
		await page.locator("#chat-title").filter({ hasText: /^e2e$/ })
			.waitFor();
	});

test("the session expires while typing: the text stays, a login, sent",
	{ skip }, async () => {
		await script(fake, [{ text: "sent after the login" }]);
		await page.locator("#chat-text").fill("typed before the expiry");
		await page.context().clearCookies();
		await page.locator("#chat-text").press("Enter");
		await page.locator("#relogin").waitFor({ state: "visible" });
		assert.equal(await page.locator("#chat-text").inputValue(),
			"typed before the expiry", "the typed text is still there");
		await page.fill("#relogin-form input[name=username]", "alice");
		await page.fill("#relogin-form input[name=password]",
			"a long passphrase");
		await page.click("#relogin-form button[type=submit]");
		await page.locator("#relogin").waitFor({ state: "hidden" });
		await page.locator("li.msg.user").filter({
			hasText: "typed before the expiry" }).waitFor();
		await page.locator("li.msg.agent[data-kind=reply]")
			.filter({ hasText: "sent after the login" })
			.waitFor({ timeout: 30000 });
		assert.equal(await page.locator("#chat-text").inputValue(), "");
	});

test("no console errors but the HTTP error asked for", { skip }, () => {
	const left = A.errors().filter((e) => !/status of 400/.test(e));
	assert.deepEqual(left, []);
	assert.ok(A.errors().length <= 1, A.errors().join("\n"));
});
