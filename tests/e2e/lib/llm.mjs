// SPDX-License-Identifier: MIT
// llm.mjs: a pincerd whose LLM proxy points at fake providers, an owner
// with an llm token, and helpers shared by the llm-*.test.mjs files.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { startPincer } from "./daemon.mjs";
import { startFake } from "../../fakes/llm-provider.mjs";

const bin = process.env.PINCER_BIN;
export const KEY = "sk-fake-proxy-key-5f0c1a9e7b3d";
export const PW = "a long passphrase for alice";

// Values that must never reach a log (zz_secrets_in_logs checks).
export function secret(value) {
	if (!process.env.TOP_BUILDDIR) return;
	const logs = path.join(process.env.TOP_BUILDDIR, "tests", "logs");
	fs.mkdirSync(logs, { recursive: true });
	fs.appendFileSync(path.join(logs, "secrets.list"), value + "\n");
}
secret(KEY);

export function cli(conf, state, args, input) {
	return execFileSync(bin, [...args, "--config", conf, "--state", state],
		{ input, stdio: ["pipe", "pipe", "pipe"] }).toString().trim();
}

// fakes: { name: fake } (each from startFake); llm: the config's llm
// section, given the fakes' URLs. Returns { gw, token, member... }.
export async function startProxy(name, llm, extra = {}) {
	let token = null, memberToken = null;
	const gw = await startPincer(name, { ...extra, llm,
		http: { rate_limit_rps: 0, ...(extra.http ?? {}) } }, {
		beforeStart: ({ conf, state }) => {
			cli(conf, state, ["user", "add", "alice", "--role", "owner",
				"--password-stdin"], PW + "\n");
			cli(conf, state, ["user", "add", "bob", "--role", "member",
				"--password-stdin"], PW + "\n");
			token = cli(conf, state, ["token", "create", "--user", "alice",
				"--scope", "llm,read", "--name", "t"]);
			memberToken = cli(conf, state, ["token", "create", "--user",
				"bob", "--scope", "llm,read", "--name", "t"]);
			cli(conf, state, ["secret", "set", "fake_key"], KEY);
			cli(conf, state, ["secret", "set", "wrong_key"], "sk-wrong");
		},
	});
	secret(token);
	secret(memberToken);
	return { gw, token, memberToken };
}

export { startFake };

export async function requests(fake) {
	return (await fetch(`${fake.url}/_fake/requests`)).json();
}

export async function script(fake, entries) {
	const r = await fetch(`${fake.url}/_fake/script`, { method: "POST",
		headers: { "content-type": "application/json" },
		body: JSON.stringify(entries) });
	if (r.status !== 200) throw new Error(`script: ${r.status}`);
}

export async function reset(fake) {
	await fetch(`${fake.url}/_fake/reset`, { method: "POST" });
}

export async function waitFor(pred, ms = 5000) {
	const end = Date.now() + ms;
	for (;;) {
		const v = await pred();
		if (v) return v;
		if (Date.now() > end) throw new Error("condition not met in time");
		await new Promise((r) => setTimeout(r, 20));
	}
}

// Parse an SSE body into [{event, data}] (data JSON-parsed unless [DONE]).
export function parseSSE(text) {
	const out = [];
	for (const block of text.split("\n\n")) {
		if (!block.trim()) continue;
		let event = null; const data = [];
		for (const line of block.split("\n")) {
			if (line.startsWith("event: ")) event = line.slice(7);
			else if (line.startsWith("data: ")) data.push(line.slice(6));
		}
		if (!data.length) continue;
		const d = data.join("\n");
		out.push({ event, data: d === "[DONE]" ? d : JSON.parse(d) });
	}
	return out;
}

export const chatBody = (model, content, extra = {}) => ({ model,
	messages: [{ role: "system", content: "be brief" },
		{ role: "user", content }], ...extra });
export const anBody = (model, content, extra = {}) => ({ model,
	max_tokens: 256, messages: [{ role: "user", content }], ...extra });
export const weatherTool = { type: "function", function: {
	name: "get_weather", description: "Weather for a city",
	parameters: { type: "object", properties: { city: { type: "string" } },
		required: ["city"] } } };
export const anWeatherTool = { name: "get_weather",
	description: "Weather for a city", input_schema: { type: "object",
		properties: { city: { type: "string" } }, required: ["city"] } };
