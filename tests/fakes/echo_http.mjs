// SPDX-License-Identifier: MIT
// echo_http.mjs: an HTTP server on 127.0.0.1 that answers every request
// with what it received as JSON (method, url, headers, body), for the
// egress tests. Prints {"port": N} once listening; --host H listens on
// H instead (another loopback address the host's name resolves to).
// With ECHO_LOG set, each request's method and URL is also appended to
// that file, so a test can tell that no request arrived.
// A few paths answer otherwise, for the agent's web_fetch (agent_fetch.sh):
//   /_page.html        an HTML page with a script, a style and entities
//   /_latin1           text/plain in ISO-8859-1
//   /_bytes?n=N        N bytes of application/octet-stream (chunked when
//                      &chunked is given: no Content-Length)
//   /_status?code=C    status C, a text/plain body saying so
//   /_redirect?to=URL  302 to URL
//   /_slow?ms=M        the echo, after M ms
import fs from "node:fs";
import http from "node:http";

const PAGE = `<!DOCTYPE html>
<html><head><title>Fetch &amp; test</title>
<style>body { color: red } .secret-style { }</style>
<script>var secretScript = "<p>not text</p>";</script>
</head><body>
<h1>Hello&nbsp;from   the
   page</h1>
<p>Caf&#233; &lt;tags&gt; &quot;quoted&quot; &#39;single&#39; &#x263A;</p>
<ul><li>one</li><li>two</li></ul>
<!-- a comment that is not text -->
<noscript>no script here</noscript>
</body></html>
`;

const routes = {
	"/_page.html": (req, res) => {
		res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
		res.end(PAGE);
	},
	"/_latin1": (req, res) => {
		res.writeHead(200,
		    { "Content-Type": "text/plain; charset=ISO-8859-1" });
		res.end(Buffer.from("caf\xe9 cr\xe8me", "latin1"));
	},
	"/_bytes": (req, res, u) => {
		const n = Number(u.searchParams.get("n") || 0);
		const h = { "Content-Type": "application/octet-stream" };
		if (!u.searchParams.has("chunked"))
			h["Content-Length"] = String(n);
		res.writeHead(200, h);
		const chunk = Buffer.alloc(65536, 0);
		let left = n;
		const more = () => {
			while (left > 0) {
				const c = chunk.subarray(0, Math.min(left, 65536));
				left -= c.length;
				if (!res.write(c))
					return res.once("drain", more);
			}
			res.end();
		};
		res.on("error", () => {});
		more();
	},
	"/_status": (req, res, u) => {
		const c = Number(u.searchParams.get("code") || 500);
		res.writeHead(c, { "Content-Type": "text/plain" });
		res.end(`the status is ${c}\n`);
	},
	"/_redirect": (req, res, u) => {
		res.writeHead(302, { Location: u.searchParams.get("to") });
		res.end();
	},
};

function echo(req, res, body) {
	res.writeHead(200, { "Content-Type": "application/json" });
	res.end(JSON.stringify({ method: req.method, url: req.url,
		headers: req.headers, body }));
}

const srv = http.createServer((req, res) => {
	const chunks = [];
	req.on("data", (c) => chunks.push(c));
	req.on("end", () => {
		if (process.env.ECHO_LOG)
			fs.appendFileSync(process.env.ECHO_LOG,
			    `${req.method} ${req.url}\n`);
		const u = new URL(req.url, "http://x");
		const body = Buffer.concat(chunks).toString();
		if (routes[u.pathname])
			return routes[u.pathname](req, res, u);
		if (u.pathname === "/_slow")
			return setTimeout(() => echo(req, res, body),
			    Number(u.searchParams.get("ms") || 0));
		echo(req, res, body);
	});
});
const hi = process.argv.indexOf("--host");
srv.listen(0, hi > 0 ? process.argv[hi + 1] : "127.0.0.1", () =>
	console.log(JSON.stringify({ port: srv.address().port })));
