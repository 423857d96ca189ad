// SPDX-License-Identifier: MIT
// egress.mjs: the client side of tests/bench/egress.sh, run on the host
// (direct) and inside a sandbox (by its proxy environment), the same code
// both ways: tests/fakes/sandbox_fetch.mjs makes each connection, through
// a CONNECT when https_proxy applies.
//   node egress.mjs URL_BASE [CAFILE]      one JSON line of figures:
//   seq_p50_us/seq_p99_us   GET /bytes?n=64, one at a time, on one
//                           keep-alive connection
//   mbps                    1 MiB downloads one after another on it (MB/s)
//   open_p50_us/open_p99_us a new connection made and verified (TCP, the
//                           CONNECT when proxied, TLS handshake)
// Without CAFILE the default trust store applies.
import fs from "node:fs";
import { connectTls, get, TunnelAgent } from "../fakes/sandbox_fetch.mjs";

const WARM = 200, SEQ = 2000, DL = 40, DL_BYTES = 1 << 20, OPEN = 100;

const pct = (a, p) => a[Math.min(a.length - 1, Math.floor(a.length * p))];
const now = () => process.hrtime.bigint();
const us = (t) => Number(now() - t) / 1000;

async function measure(base, ca) {
	const agent = new TunnelAgent(ca, { keepAlive: true, maxSockets: 1 });
	const small = `${base}/bytes?n=64`;
	for (let i = 0; i < WARM; i++)
		await must(get(small, agent));
	const rtt = [];
	for (let i = 0; i < SEQ; i++) {
		const t = now();
		await must(get(small, agent));
		rtt.push(us(t));
	}
	rtt.sort((a, b) => a - b);
	await must(get(`${base}/bytes?n=${DL_BYTES}`, agent));
	const t0 = now();
	for (let i = 0; i < DL; i++) {
		const r = await must(get(`${base}/bytes?n=${DL_BYTES}`, agent));
		if (r.body.length !== DL_BYTES)
			throw new Error(`short download: ${r.body.length}`);
	}
	const mbps = DL * DL_BYTES / 1e6 / (us(t0) / 1e6);
	agent.destroy();
	const open = [];
	for (let i = 0; i < OPEN; i++) {
		const t = now();
		const s = await connectTls(`${base}/`, ca);
		open.push(us(t));
		s.destroy();
	}
	open.sort((a, b) => a - b);
	return { seq_p50_us: pct(rtt, 0.5), seq_p99_us: pct(rtt, 0.99), mbps,
		open_p50_us: pct(open, 0.5), open_p99_us: pct(open, 0.99) };
}

async function must(p) {
	const r = await p;
	if (r.status !== 200)
		throw new Error(`HTTP ${r.status} ` +
		    r.body.toString().slice(0, 300));
	return r;
}

const [base, caf] = process.argv.slice(2);
measure(base, caf ? fs.readFileSync(caf) : undefined).then((r) => {
	console.log(JSON.stringify(r));
	process.exit(0);
}, (e) => {
	console.error(String(e.message ?? e));
	process.exit(1);
});
