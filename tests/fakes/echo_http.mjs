// SPDX-License-Identifier: MIT
// echo_http.mjs: an HTTP server on 127.0.0.1 that answers every request
// with what it received as JSON (method, url, headers, body), for the
// egress tests. Prints {"port": N} once listening. With ECHO_LOG set,
// each request's method and URL is also appended to that file, so a
// test can tell that no request arrived.
import fs from "node:fs";
import http from "node:http";

const srv = http.createServer((req, res) => {
	const chunks = [];
	req.on("data", (c) => chunks.push(c));
	req.on("end", () => {
		if (process.env.ECHO_LOG)
			fs.appendFileSync(process.env.ECHO_LOG,
			    `${req.method} ${req.url}\n`);
		const body = JSON.stringify({ method: req.method, url: req.url,
			headers: req.headers,
			body: Buffer.concat(chunks).toString() });
		res.writeHead(200, { "Content-Type": "application/json" });
		res.end(body);
	});
});
srv.listen(0, "127.0.0.1", () =>
	console.log(JSON.stringify({ port: srv.address().port })));
