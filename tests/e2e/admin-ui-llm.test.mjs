// SPDX-License-Identifier: MIT
// The admin UI's LLM page in Chromium, driven as a person would: a provider
// added with its key (pointing at the fake provider), the key never shown
// again (not on the page, not in the config or secrets answers, not after
// a reload), its Test button (ok; the provider's 401 with a wrong key), a
// config the server refuses with its words shown, a route and a budget
// saved and read back, a save refused when the config changed meanwhile
// (If-Match), a provider deleted after a confirmation, and usage
// charts drawn from real calls through the proxy (the official openai SDK
// with a token made from the page's session). Screenshots of each view at
// desktop and phone size; no console errors.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import OpenAI from "openai";
import { startAdmin, skip } from "./lib/admin-ui.mjs";
import { startFake, secret } from "./lib/llm.mjs";

const HEX = crypto.randomBytes(16).toString("hex");
const KEY = `sk-ui-right-${HEX}`;
const WRONG = `sk-ui-wrong-${crypto.randomBytes(16).toString("hex")}`;
secret(KEY);
secret(WRONG);
let fake, ui, page;

before(async () => {
	if (skip) return;
	fake = await startFake({ key: KEY });
	ui = await startAdmin("admin-ui-llm", { http: { rate_limit_rps: 0 } });
	page = ui.page;
});
after(async () => {
	await ui?.stop();
	await fake?.close();
});

const row = (name) => page.locator("#llm-provider-table tbody tr")
	.filter({ has: page.locator("td", { hasText:
		new RegExp(`^${name}$`) }) });

// No 8 characters running of a key's random part anywhere in text.
function noPartOf(key, text, where) {
	const tail = key.slice(-32);
	for (let i = 0; i + 8 <= tail.length; i++)
		assert.ok(!text.includes(tail.slice(i, i + 8)),
			`${where} holds part of the key`);
}

// From another page by the nav, as a person comes to it (a goto to the
// same hash would not draw the page again).
async function openPage() {
	await page.goto(ui.gw.url + "/#/dashboard");
	await page.locator("#card-gateway").waitFor();
	await page.click("nav a[href='#/llm']");
	await page.locator("#llm-providers h2").waitFor();
	await page.locator("#llm-usage-day svg.chart").waitFor();
}

async function fillProvider(o) {
	const f = page.locator("#llm-provider-form");
	const x = (l) => f.getByLabel(l, { exact: true });
	if (o.name !== undefined) await x("Name").fill(o.name);
	if (o.kind) await x("Kind").selectOption(o.kind);
	if (o.base_url !== undefined) await x("Base URL").fill(o.base_url);
	if (o.models !== undefined) await x("Models").fill(o.models);
	if (o.key !== undefined) await x("API key").fill(o.key);
}

test("the page before any provider: empty lists, usage drawn", { skip },
    async () => {
	await openPage();
	await page.getByText("No provider yet").waitFor();
	assert.equal(await page.textContent("#llm-day-table"),
		"No calls in this range.");
	assert.equal(await page.locator("#llm-usage-day rect.bar").count(), 0);
	assert.equal(await page.locator("#llm-load-error").textContent(), "");
	await ui.shot("llm-empty");
});

test("add a provider with its key: stored, then never shown", { skip },
    async () => {
	await page.click("#llm-provider-add");
	await fillProvider({ name: "fake", base_url: `${fake.url}/v1`,
		models: "gpt-4o, gpt-4o-mini", key: KEY });
	const f = page.locator("#llm-provider-form");
	await f.getByRole("button", { name: "Add a price" }).click();
	const x = (l) => f.getByLabel(l, { exact: true });
	await x("Model of price 1").fill("gpt-4o");
	await x("Input of price 1").fill("2");
	await x("Output of price 1").fill("8");
	await ui.shot("llm-provider-form");
	await f.getByRole("button", { name: "Save" }).click();
	await page.locator("#llm-provider-form-box").getByText("Saved")
		.waitFor();
	await row("fake").locator("[data-key=set]").waitFor();
	assert.equal(await row("fake").locator("td").nth(1).textContent(),
		"openai");
	assert.equal(await row("fake").locator("td").nth(3).textContent(),
		"gpt-4o, gpt-4o-mini");
	const cfg = await ui.api("/api/v1/config");
	assert.equal(cfg.status, 200);
	const p = cfg.body.config.llm.providers[0];
	assert.deepEqual([p.name, p.key, p.base_url, p.prices["gpt-4o"]],
		["fake", "fake_key", `${fake.url}/v1`,
			{ input: 2, output: 8 }]);
	const sec = await ui.api("/api/v1/secrets");
	assert.ok(sec.body.secrets.some((s) => s.name === "fake_key"));
	noPartOf(KEY, JSON.stringify(cfg.body), "GET /api/v1/config");
	noPartOf(KEY, JSON.stringify(sec.body), "GET /api/v1/secrets");
	const seen = () => page.evaluate(() => document.documentElement
		.outerHTML + [...document.querySelectorAll("input")]
		.map((i) => i.value).join(" "));
	noPartOf(KEY, await seen(), "the page");
	await page.reload();
	await row("fake").locator("[data-key=set]").waitFor();
	noPartOf(KEY, await seen(), "the page after a reload");
	/* Editing shows whether a key is set, never the key. */
	await row("fake").getByRole("button", { name: "Edit fake" }).click();
	await page.locator("#llm-key-state").filter({ hasText: "key set" })
		.waitFor();
	assert.equal(await page.getByLabel("API key", { exact: true })
		.inputValue(), "");
	noPartOf(KEY, await seen(), "the edit form");
	await page.getByRole("button", { name: "Cancel" }).click();
});

test("Test: ok with the right key; the provider's 401 with a wrong one",
    { skip }, async () => {
	await row("fake").getByRole("button", { name: "Test fake" }).click();
	await page.locator("#llm-test-fake").filter({ hasText:
		/^OK: provider fake answered 200 in \d+ ms; it offers gpt-4o$/
	})
		.waitFor();
	await row("fake").getByRole("button", { name: "Edit fake" }).click();
	await fillProvider({ key: WRONG });
	await page.locator("#llm-provider-form").getByRole("button",
		{ name: "Save" }).click();
	await page.locator("#llm-provider-form-box").getByText("Saved")
		.waitFor();
	await row("fake").getByRole("button", { name: "Test fake" }).click();
	const line = page.locator("#llm-test-fake");
	await line.filter({ hasText: new RegExp("^Failed: provider fake " +
		"answered 401: Incorrect API key provided: sk-\\*+\\. ") })
		.waitFor();
	assert.equal(await line.getAttribute("class"), "bad");
	noPartOf(WRONG, await page.content(), "the page");
	await ui.shot("llm-test-failed");
	/* The right key again, for the calls below. */
	await row("fake").getByRole("button", { name: "Edit fake" }).click();
	await fillProvider({ key: KEY });
	await page.locator("#llm-provider-form").getByRole("button",
		{ name: "Save" }).click();
	await page.locator("#llm-provider-form-box").getByText("Saved")
		.waitFor();
	await row("fake").getByRole("button", { name: "Test fake" }).click();
	await line.filter({ hasText: /^OK: / }).waitFor();
});

test("a config the server refuses: its words by the form", { skip },
    async () => {
	await page.click("#llm-provider-add");
	await fillProvider({ name: "local", kind: "openai-compatible" });
	await page.locator("#llm-provider-form").getByRole("button",
		{ name: "Save" }).click();
	await page.locator("#llm-provider-error").filter({ hasText:
		/local.*base_url/ }).waitFor();
	/* Nothing was saved. */
	const cfg = await ui.api("/api/v1/config");
	assert.equal(cfg.body.config.llm.providers.length, 1);
	await page.getByRole("button", { name: "Cancel" }).click();
});

test("a route and a budget saved and read back", { skip }, async () => {
	const r = page.locator("#llm-routes");
	await r.getByRole("button", { name: "Add a route" }).click();
	await r.getByLabel("Name of route 1").fill("fast");
	await r.getByLabel("Targets of route 1").fill("fake/gpt-4o-mini");
	await r.getByLabel("Cache TTL (s) of route 1").fill("60");
	await r.getByRole("button", { name: "Save routes" }).click();
	await page.locator("#llm-routes [role=status]").filter({ hasText:
		"Saved" }).waitFor();
	const b = page.locator("#llm-budgets");
	await b.getByRole("button", { name: "Add a budget" }).click();
	await b.getByLabel("Caller of budget 1").fill("user:alice");
	await b.getByLabel("Period of budget 1").selectOption("month");
	await b.getByLabel("Tokens of budget 1").fill("1000000");
	await b.getByLabel("USD of budget 1").fill("5");
	await b.getByRole("button", { name: "Save budgets" }).click();
	await page.locator("#llm-budgets [role=status]").filter({ hasText:
		"Saved" }).waitFor();
	const llm = (await ui.api("/api/v1/config")).body.config.llm;
	assert.deepEqual(llm.routes, { fast: { targets: ["fake/gpt-4o-mini"],
		cache_ttl_s: 60 } });
	assert.deepEqual(llm.budgets, [{ caller: "user:alice",
		period: "month", tokens: 1000000, usd: 5 }]);
	await page.reload();
	await page.locator("#llm-routes input").first().waitFor();
	assert.equal(await r.getByLabel("Name of route 1").inputValue(),
		"fast");
	assert.equal(await r.getByLabel("Targets of route 1").inputValue(),
		"fake/gpt-4o-mini");
	assert.equal(await b.getByLabel("Period of budget 1").inputValue(),
		"month");
	assert.equal(await b.getByLabel("USD of budget 1").inputValue(), "5");
	/* A route to a provider that does not exist: refused in words. */
	await r.getByRole("button", { name: "Add a route" }).click();
	await r.getByLabel("Name of route 2").fill("broken");
	await r.getByLabel("Targets of route 2").fill("nosuch/model");
	await r.getByRole("button", { name: "Save routes" }).click();
	await page.locator("#llm-routes-error").filter({ hasText: /nosuch/ })
		.waitFor();
	await r.getByRole("button", { name: "Remove" }).nth(1).click();
});

test("a config changed elsewhere meanwhile is not overwritten", { skip },
    async () => {
	/* Another tab saves the config after this page read it. */
	const now = await ui.api("/api/v1/config");
	const other = structuredClone(now.body.config);
	other.llm.budgets[0].usd = 6;
	const put = await ui.api("/api/v1/config", { method: "PUT",
		body: other });
	assert.equal(put.status, 200, JSON.stringify(put.body));
	const b = page.locator("#llm-budgets");
	await b.getByLabel("Tokens of budget 1").fill("2000000");
	await b.getByRole("button", { name: "Save budgets" }).click();
	await page.locator("#llm-budgets-error").filter({ hasText:
		/changed since this page read it/ }).waitFor();
	const llm = (await ui.api("/api/v1/config")).body.config.llm;
	assert.equal(llm.budgets[0].usd, 6, "the other save stands");
	assert.equal(llm.budgets[0].tokens, 1000000);
});

test("real proxy calls draw the usage charts and tables", { skip },
    async () => {
	const made = await ui.api("/api/v1/tokens", { method: "POST",
		body: { name: "ui-llm", scopes: "llm" } });
	assert.equal(made.status, 201, JSON.stringify(made.body));
	secret(made.body.token);
	const openai = new OpenAI({ apiKey: made.body.token,
		baseURL: `${ui.gw.url}/llm/v1`, maxRetries: 0 });
	const ask = (model) => openai.chat.completions.create({ model,
		messages: [{ role: "user", content: "two words" }] });
	await ask("fake/gpt-4o");
	await ask("fake/gpt-4o");
	await ask("fast");
	await openPage();
	const today = new Date().toISOString().slice(0, 10);
	const day = page.locator("#llm-day-table tbody tr");
	await day.first().waitFor();
	assert.equal(await day.count(), 1);
	assert.equal(await day.locator("td").first().textContent(), today);
	assert.equal(await day.locator("td").nth(1).textContent(), "3");
	assert.equal(await page.locator("#llm-usage-day rect.bar").count(), 1);
	const models = page.locator("#llm-model-table tbody tr");
	assert.deepEqual(await models.locator("td:first-child")
		.allTextContents(), ["gpt-4o", "gpt-4o-mini"]);
	assert.deepEqual(await models.locator("td:nth-child(2)")
		.allTextContents(), ["2", "1"]);
	assert.equal(await page.locator("#llm-usage-model rect.bar").count(),
		2);
	assert.match(await page.getAttribute("#llm-usage-day svg",
		"aria-label"), /^tokens per day, last 30 days$/);
	/* The fake counts words: 2 in, "echo: two words" 3 out, a call. */
	assert.match(await page.locator("#llm-usage-day rect.bar title")
		.textContent(), new RegExp(`^${today.slice(5)}: 15$`));
	await ui.shot("llm", (p) => p.locator("#llm-usage-day rect.bar")
		.waitFor());
	/* Cost: gpt-4o has prices, gpt-4o-mini none. */
	await page.selectOption("#llm-metric", "cost");
	await page.locator("#llm-usage-day svg[aria-label^='cost']").waitFor();
	const t = await page.locator("#llm-usage-model rect.bar title")
		.allTextContents();
	assert.equal(t[0], "gpt-4o: $0.0001");
	assert.equal(t[1], "gpt-4o-mini: $0.00");
	await page.selectOption("#llm-range", "7");
	await page.locator("#llm-usage-day svg[aria-label$='last 7 days']")
		.waitFor();
	assert.equal(await page.locator("#llm-usage-day text.axis")
		.filter({ hasText: today.slice(5) }).count(), 1);
	assert.equal(await day.count(), 1);
});

test("delete a provider after a confirmation", { skip }, async () => {
	await page.click("#llm-provider-add");
	await fillProvider({ name: "spare", kind: "openai-compatible",
		base_url: "http://127.0.0.1:11434/v1" });
	await page.locator("#llm-provider-form").getByRole("button",
		{ name: "Save" }).click();
	await row("spare").locator("[data-key=none]").waitFor();
	await row("spare").getByRole("button", { name: "Delete spare" })
		.click();
	await row("spare").getByText("Delete spare?").waitFor();
	await ui.shot("llm-delete-confirm");
	/* Keyboard: the focus is on Cancel; Enter keeps the provider. */
	await page.keyboard.press("Enter");
	await page.waitForFunction(() => document.activeElement
		?.getAttribute("aria-label") === "Delete spare");
	await page.keyboard.press("Enter");
	await row("spare").getByRole("button", { name: "Yes, delete" }).click();
	await row("spare").waitFor({ state: "detached" });
	const cfg = await ui.api("/api/v1/config");
	assert.deepEqual(cfg.body.config.llm.providers.map((p) => p.name),
		["fake"]);
});

test("every control is labelled; no console errors", { skip },
    async () => {
	await openPage();
	await page.click("#llm-provider-add");
	const unnamed = await page.evaluate(() => [...document
		.querySelectorAll("#page input, #page button, #page select")]
		.filter((e) => !(e.labels?.length || e.textContent.trim() ||
			e.getAttribute("aria-label"))).map((e) => e.outerHTML));
	assert.deepEqual(unnamed, []);
	/* Dark follows the system; the charts take its colours. */
	await page.emulateMedia({ colorScheme: "dark" });
	await ui.shot("llm-dark", (p) => p.locator("#llm-usage-day rect.bar")
		.waitFor());
	await page.emulateMedia({ colorScheme: "light" });
	/* The refused saves above answered 400 and 412: Chromium logs
	 * each. */
	assert.deepEqual(ui.errors().filter((e) =>
		!/status of 4(00|12).*\/api\/v1\/config/.test(e)), []);
});
