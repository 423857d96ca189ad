// SPDX-License-Identifier: MIT
// admin-ui-weight.mjs: what the admin UI costs a browser to open (issue
// 11). A fresh Chromium context (empty cache) loads the first page (the
// login form, then the dashboard after logging in) on a real pincerd, and
// every response's body is summed as the page received it (uncompressed:
// pincerd sends no Content-Encoding). Then the same session opens a
// sandbox's terminal (#/sandboxes/NAME/terminal), which loads xterm.js.
// Printed: each file with its bytes, the total, and the total without the
// xterm.js files (admin-ui/vendor/). Target: the first page ≤ 500 KB
// without xterm.js. Figures only; nothing is asserted but the target.
//   node tests/bench/admin-ui-weight.mjs     (PINCER_BIN, TOP_SRCDIR set;
//   needs tests/e2e's node_modules and Debian's chromium; sandboxes need
//   root, else the terminal page is measured without a shell)
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startAdmin, login, sizes } from "../e2e/lib/admin-ui.mjs";

const TARGET = 500 * 1000;
const top = path.resolve(path.dirname(fileURLToPath(import.meta.url)),
	"../..");
process.env.TOP_SRCDIR ??= top;
const isXterm = (u) => new URL(u).pathname.startsWith("/vendor/");
const kb = (n) => (n / 1000).toFixed(1).padStart(8) + " KB";

// Record every response of ctx's pages until stop(): [{ url, bytes }].
function recorder(ctx) {
	const got = [], pending = [];
	const on = (r) => {
		if (r.request().resourceType() === "websocket") return;
		pending.push(r.body().then((b) => got.push({ url: r.url(),
			bytes: b.length }), () => got.push({ url: r.url(),
			bytes: 0 })));
	};
	ctx.on("response", on);
	return async () => {
		ctx.off("response", on);
		await Promise.all(pending);
		return got;
	};
}

function report(title, got) {
	const all = got.reduce((s, x) => s + x.bytes, 0);
	const lean = got.filter((x) => !isXterm(x.url))
		.reduce((s, x) => s + x.bytes, 0);
	console.log(`\n${title}: ${got.length} responses`);
	for (const x of [...got].sort((a, b) => b.bytes - a.bytes)) {
		const u = new URL(x.url);
		console.log(`${kb(x.bytes)}  ${u.pathname}${u.search}`);
	}
	console.log(`${kb(all)}  total`);
	console.log(`${kb(lean)}  total without xterm.js (admin-ui/vendor/)`);
	return lean;
}

const A = await startAdmin("bench-admin-ui-weight");
let rc = 0;
try {
	const made = await A.api("/api/v1/sandboxes", { method: "POST",
		body: { name: "weight" } });
	const ctx = await A.browser.newContext({ viewport: sizes.desktop });
	let stop = recorder(ctx);
	const page = await ctx.newPage();
	await page.goto(A.gw.url + "/");
	await page.locator("#login").waitFor({ state: "visible" });
	await login(page);
	await page.locator("#sbx-total").waitFor();
	await page.waitForLoadState("networkidle");
	const stopFirst = stop();
	const lean = report("first page (login, then the dashboard)",
		await stopFirst);
	console.log(`target: ≤ ${TARGET / 1000} KB without xterm.js: ` +
		(lean <= TARGET ? "met" : "MISSED"));
	if (lean > TARGET) rc = 1;

	stop = recorder(ctx);
	await page.goto(A.gw.url + "/#/sandboxes/weight/terminal");
	if (made.status === 200 || made.status === 201)
		await page.locator("#term-status.ok").waitFor();
	else
		console.log(`\n(no sandbox: ${JSON.stringify(made.body)}; ` +
			"the terminal page loads without a shell)");
	await page.waitForLoadState("networkidle");
	const first = await stopFirst;
	const then = await stop();
	report("then the sandbox's terminal (#/sandboxes/NAME/terminal)",
		then);
	report("the whole visit (first page and terminal)", [...first,
		...then]);
	await ctx.close();
} finally {
	await A.stop();
}
process.exit(rc);
