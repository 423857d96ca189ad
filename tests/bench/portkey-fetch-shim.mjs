// SPDX-License-Identifier: MIT
// Portkey's gateway (1.9.8 and 1.15.2) appends headers to the Response
// that fetch() returned when it passes a stream on; on Node 20's undici
// those headers are immutable and every streamed call fails with
// "TypeError: immutable". This shim gives Portkey a Response whose
// headers it may change (same body stream, nothing buffered), so that
// the benchmark can measure its streaming at all.
const realFetch = globalThis.fetch;
globalThis.fetch = async (...args) => {
	const r = await realFetch(...args);
	return new Response(r.body, { status: r.status, statusText: r.statusText,
		headers: new Headers(r.headers) });
};
