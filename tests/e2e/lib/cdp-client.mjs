// SPDX-License-Identifier: MIT
// cdp-client.mjs: a CDP client run inside a sandbox's network namespace
// (nsenter -n), so that 127.0.0.1:9222 is the sandbox's own, relayed by
// pincer-init to pincerd's bridge. argv[2] names the scenario; argv[3] a
// URL or target id it needs. It prints one JSON object: what it saw.
import puppeteer from "puppeteer-core";
import { chromium } from "playwright-core";
import WebSocket from "ws";

const BASE = "http://127.0.0.1:9222";
const [, , scenario, arg] = process.argv;

// A raw CDP connection to the bridge: send(method, params, sessionId).
async function raw(url) {
	const ws = new WebSocket(url, { maxPayload: 256 << 20 });
	const waiting = new Map();
	const events = [];
	let next = 1;
	ws.on("message", (d) => {
		const m = JSON.parse(d.toString());
		if (m.id !== undefined && waiting.has(m.id)) {
			waiting.get(m.id)(m);
			waiting.delete(m.id);
		} else
			events.push(m);
	});
	await new Promise((resolve, reject) => {
		ws.once("open", resolve);
		ws.once("error", reject);
		ws.once("unexpected-response", (q, res) =>
			reject(new Error(`refused ${res.statusCode}`)));
	});
	const closed = new Promise((r) => ws.on("close", (code) => r(code)));
	return {
		ws, events, closed,
		send(method, params = {}, sessionId) {
			const id = next++;
			const m = { id, method, params };
			if (sessionId) m.sessionId = sessionId;
			ws.send(JSON.stringify(m));
			return new Promise((r) => waiting.set(id, r));
		},
		sendText(text, id) {
			ws.send(text);
			return new Promise((r) => waiting.set(id, r));
		},
		close() { ws.close(); },
	};
}

async function json(path, method = "GET") {
	const r = await fetch(BASE + path, { method });
	const text = await r.text();
	try { return { status: r.status, body: JSON.parse(text) }; }
	catch { return { status: r.status, body: text }; }
}

// Every chunk of a PNG whole: its CRC-32 right, IEND last.
function pngValid(b) {
	const table = [...Array(256)].map((_, n) => {
		let c = n;
		for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
		return c >>> 0;
	});
	const crc = (buf) => {
		let c = 0xffffffff;
		for (const x of buf) c = table[(c ^ x) & 255] ^ (c >>> 8);
		return (c ^ 0xffffffff) >>> 0;
	};
	if (b.subarray(0, 8).toString("hex") !== "89504e470d0a1a0a") return false;
	let off = 8, type = "";
	while (off + 12 <= b.length) {
		const len = b.readUInt32BE(off);
		type = b.subarray(off + 4, off + 8).toString("latin1");
		if (crc(b.subarray(off + 4, off + 8 + len)) !==
		    b.readUInt32BE(off + 8 + len)) return false;
		off += 12 + len;
	}
	return type === "IEND" && off === b.length;
}

const scenarios = {
	// The form page: type, click, read, screenshot, cookies; the page is
	// left open, and its id printed, for the isolation checks.
	async puppeteer() {
		const browser = await puppeteer.connect({ browserURL: BASE,
			defaultViewport: { width: 800, height: 600 } });
		const version = await browser.version();
		const page = await browser.newPage();
		await page.goto(arg + "/form");
		await page.type("#name", "pincer");
		await page.click("#go");
		await page.waitForSelector("#out:not(:empty)");
		const out = await page.$eval("#out", (e) => e.textContent);
		const png = await page.screenshot();
		await page.setCookie({ name: "who", value: "sandbox-a",
			url: arg });
		const cookies = (await page.cookies()).map((c) => c.name);
		const pages = (await browser.pages()).map((p) => p.url());
		const target = page.target()._targetId;
		const file = await page.goto("file:///etc/passwd").then(() =>
			"opened", (e) => e.message);
		const r = { version, out, png: png.length, cookies, pages,
			target, file };
		if (process.env.HOLD) {
			// Connected until the test closes stdin.
			console.log(JSON.stringify({ ok: true, ...r }));
			await new Promise((res) => {
				process.stdin.on("end", res);
				process.stdin.resume();
			});
		}
		browser.disconnect();
		return r;
	},
	// An owner's tool from outside, through /cdp/ with a token in the
	// header: puppeteer by its WebSocket URL, Playwright by the HTTP one.
	async outside() {
		const [url, token] = [arg, process.env.CDP_TOKEN];
		const headers = { Authorization: `Bearer ${token}` };
		const v = await (await fetch(`${url}/cdp/json/version`,
			{ headers })).json();
		const browser = await puppeteer.connect({ headers,
			browserWSEndpoint: v.webSocketDebuggerUrl });
		const page = await browser.newPage();
		await page.goto(process.env.SITE + "/form");
		await page.type("#name", "owner");
		await page.click("#go");
		await page.waitForSelector("#out:not(:empty)");
		const out = await page.$eval("#out", (e) => e.textContent);
		const png = (await page.screenshot()).length;
		const pages = (await browser.pages()).map((p) => p.url());
		browser.disconnect();
		const pw = await chromium.connectOverCDP(`${url}/cdp`,
			{ headers });
		const p2 = await pw.contexts()[0].newPage();
		await p2.goto(process.env.SITE + "/form");
		await p2.fill("#name", "pw-owner");
		await p2.click("#go");
		const out2 = await p2.textContent("#out");
		await pw.close();
		return { ws: v.webSocketDebuggerUrl, out, png, pages, out2 };
	},
	// Playwright's connectOverCDP: the default context's new page,
	// fill, click, cookies of the context, and browser.close().
	async playwright() {
		const browser = await chromium.connectOverCDP(BASE);
		const ctx = browser.contexts()[0];
		const page = await ctx.newPage();
		await page.goto(arg + "/form");
		await page.fill("#name", "playwright");
		await page.click("#go");
		const out = await page.textContent("#out");
		const png = await page.screenshot();
		await ctx.addCookies([{ name: "pw", value: "1", url: arg }]);
		const cookies = (await ctx.cookies()).map((c) => c.name);
		const ctx2 = await browser.newContext();
		const p2 = await ctx2.newPage();
		await p2.goto(arg + "/form");
		const other = (await ctx2.cookies()).map((c) => c.name);
		await browser.close();
		return { out, png: png.length, cookies, other };
	},
	// What another sandbox may see and do of a's target (arg).
	async hostile() {
		const list = await json("/json/list");
		const v = await json("/json/version");
		const c = await raw(v.body.webSocketDebuggerUrl);
		const r = {};
		r.listed = list.body.map((t) => t.id);
		r.targets = (await c.send("Target.getTargets")).result
			.targetInfos.map((t) => t.targetId);
		r.attach = (await c.send("Target.attachToTarget",
			{ targetId: arg, flatten: true })).error?.message;
		r.close = (await c.send("Target.closeTarget",
			{ targetId: arg })).error?.message;
		r.activate = (await json(`/json/activate/${arg}`)).status;
		r.jsonClose = (await json(`/json/close/${arg}`)).status;
		r.contexts = (await c.send("Target.getBrowserContexts")).result;
		r.system = (await c.send("SystemInfo.getInfo")).error?.message;
		r.crash = (await c.send("Browser.crash")).error?.message;
		r.cookies = (await c.send("Storage.getCookies")).result
			?.cookies.map((k) => k.name);
		r.foreignCtx = (await c.send("Target.createTarget",
			{ url: "about:blank", browserContextId:
			"0123456789ABCDEF0123456789ABCDEF" })).error?.message;
		r.fileUrl = (await c.send("Target.createTarget",
			{ url: "file:///etc/passwd" })).error?.message;
		r.badSession = (await c.send("Runtime.evaluate",
			{ expression: "1" }, "FFFF")).error?.message;
		r.badJson = (await c.sendText("{not json", 0)).error?.message;
		// A page of its own, attached: page-level escapes refused.
		const t = (await c.send("Target.createTarget",
			{ url: "about:blank" })).result.targetId;
		const s = (await c.send("Target.attachToTarget",
			{ targetId: t, flatten: true })).result.sessionId;
		r.sessionTargets = (await c.send("Target.getTargets", {}, s))
			.result.targetInfos.map((i) => i.targetId);
		r.sessionAttach = (await c.send("Target.attachToTarget",
			{ targetId: arg, flatten: true }, s)).error?.message;
		r.sessionNavigate = (await c.send("Page.navigate",
			{ url: "file:///etc/shadow" }, s)).error?.message;
		r.sessionUpload = (await c.send("DOM.setFileInputFiles",
			{ files: ["/etc/shadow"], nodeId: 1 }, s)).error?.message;
		r.sessionClose = (await c.send("Browser.close", {}, s))
			.error?.message;
		r.sessionCookies = (await c.send("Storage.getCookies", {}, s))
			.result?.cookies.map((k) => k.name);
		r.eval = (await c.send("Runtime.evaluate",
			{ expression: "6*7", returnByValue: true }, s))
			.result.result.value;
		r.page = await new Promise((resolve) => {
			const w = new WebSocket(`ws://127.0.0.1:9222/devtools/page/${arg}`);
			w.on("open", () => { resolve("open"); w.close(); });
			w.on("unexpected-response", (q, res) =>
				resolve(res.statusCode));
			w.on("error", () => resolve("error"));
		});
		r.browserClose = (await c.send("Browser.close")).result;
		r.closedWith = await c.closed;
		return r;
	},
	// Large messages both ways, intact: a string of arg MiB back from
	// the page, and an expression of arg MiB sent to it.
	async large() {
		const v = await json("/json/version");
		const c = await raw(v.body.webSocketDebuggerUrl);
		const t = (await c.send("Target.createTarget",
			{ url: "about:blank" })).result.targetId;
		const s = (await c.send("Target.attachToTarget",
			{ targetId: t, flatten: true })).result.sessionId;
		const n = Number(arg) << 20;
		const back = (await c.send("Runtime.evaluate", { expression:
			`"ab".repeat(${n / 2})`, returnByValue: true }, s))
			.result.result.value;
		// A screenshot of over 10 MB: seeded noise does not compress.
		const noise = "data:text/html," + encodeURIComponent(
			"<body style='margin:0'><canvas id=c " +
			"width=1900 height=1500></canvas><script>const c=document." +
			"getElementById('c').getContext('2d');const d=c.createImage" +
			"Data(1900,1500);let s=7;for(let i=0;i<d.data.length;i++){s^=" +
			"s<<13;s^=s>>>17;s^=s<<5;d.data[i]=i%4==3?255:s&255}" +
			"c.putImageData(d,0,0)</script>");
		await c.send("Page.enable", {}, s);
		await c.send("Page.navigate", { url: noise }, s);
		await new Promise((r) => setTimeout(r, 1500));
		const shot = await c.send("Page.captureScreenshot", { format: "png",
			captureBeyondViewport: true, clip: { x: 0, y: 0, width: 1900,
			height: 1500, scale: 1 } }, s);
		const png = Buffer.from(shot.result.data, "base64");
		const big = "x".repeat(n);
		const sent = (await c.send("Runtime.evaluate", { expression:
			`"${big}".length`, returnByValue: true }, s))
			.result.result.value;
		c.close();
		return { back: back.length, intact: back === "ab".repeat(n / 2),
			sent, shotMessage: shot.result.data.length, png: png.length,
			pngValid: pngValid(png) };
	},
	// A page connection (/devtools/page/{id}) to a page of its own.
	async page() {
		const made = await json("/json/new?about:blank", "PUT");
		const c = await raw(made.body.webSocketDebuggerUrl);
		const r = {};
		r.eval = (await c.send("Runtime.evaluate",
			{ expression: "1+1", returnByValue: true }))
			.result.result.value;
		r.targets = (await c.send("Target.getTargets")).result
			.targetInfos.length;
		r.attach = (await c.send("Target.attachToTarget",
			{ targetId: arg, flatten: true })).error?.message;
		c.close();
		r.list = (await json("/json/list")).body.map((t) => t.id);
		r.made = made.body.id;
		r.closed = (await json(`/json/close/${made.body.id}`)).status;
		return r;
	},
	// Connected, then the browser is killed (by the test): how it ends.
	async killed() {
		const browser = await puppeteer.connect({ browserURL: BASE });
		const page = await browser.newPage();
		console.log("READY");
		const how = await new Promise((resolve) => {
			browser.on("disconnected", () => resolve("disconnected"));
			setTimeout(() => resolve("still connected"), 20000);
		});
		void page;
		return { how };
	},
};

const t0 = Date.now();
scenarios[scenario]().then((r) => {
	console.log(JSON.stringify({ ok: true, ms: Date.now() - t0, ...r }));
	process.exit(0);
}, (e) => {
	console.log(JSON.stringify({ ok: false, error: String(e.stack) }));
	process.exit(1);
});
