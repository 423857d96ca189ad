// SPDX-License-Identifier: MIT
// s3.mjs: s3rver (a local S3) with bucket "pincer", behind a proxy that
// can fail requests on purpose, for the s3 backend's tests. Both listen on
// 127.0.0.1 with ephemeral ports; the first stdout line is
// {"s3":PORT,"proxy":PORT}. Run with node --openssl-legacy-provider:
// s3rver's continuation tokens use DES (docs/objstore-research.md §3).
//
// The proxy passes every request through unchanged, except those a rule
// catches. Control, on the proxy:
//   POST /__fault {"match":"PUT /pincer/k?partNumber=2&","action":A,
//                  "times":N,"retry_after":S}
//       the next N requests whose "METHOD URL" starts with match get
//       A: "500" (InternalError), "slowdown" (503 SlowDown), "reset"
//       (the connection dropped before any answer)
//   GET /__log   every request seen: [{"t":MS,"req":"METHOD URL",
//                "host":HOST,"did":"pass"|A}]
//   POST /__clear   forget the log and the rules
import http from 'node:http';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../e2e/package.json'));
const S3rver = require('s3rver');

const dir = process.argv[2];
if (!dir) {
	console.error('usage: s3.mjs DIR');
	process.exit(2);
}
// serviceEndpoint: virtual-host requests come as pincer.s3.localhost
// (curl resolves *.localhost to loopback by itself).
const s3 = new S3rver({ address: '127.0.0.1', port: 0, directory: dir,
	silent: true, serviceEndpoint: 'localhost',
	configureBuckets: [{ name: 'pincer' }] });
const { port: s3port } = await s3.run();

let rules = [];
let log = [];

const errors = {
	'500': [500, 'InternalError', 'We encountered an internal error. ' +
	    'Please try again.'],
	slowdown: [503, 'SlowDown', 'Please reduce your request rate.'],
};

function control(req, res, body) {
	if (req.method === 'POST' && req.url === '/__fault') {
		rules.push(JSON.parse(body));
	} else if (req.method === 'POST' && req.url === '/__clear') {
		rules = [];
		log = [];
	} else if (req.method === 'GET' && req.url === '/__log') {
		res.setHeader('Content-Type', 'application/json');
		return res.end(JSON.stringify(log));
	} else {
		res.statusCode = 404;
	}
	res.end();
}

// The request's body is read whole first, so an answer never races it.
function fault(req, res, rule) {
	if (rule.action === 'reset')
		return req.socket.destroy();
	const [status, code, msg] = errors[rule.action];
	res.statusCode = status;
	res.setHeader('Content-Type', 'application/xml');
	if (rule.retry_after !== undefined)
		res.setHeader('Retry-After', String(rule.retry_after));
	res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}` +
	    `</Code><Message>${msg}</Message></Error>`);
}

// Expect is answered here (node does it), so it is not sent on.
function pass(req, res) {
	const headers = { ...req.headers };
	delete headers.expect;
	const up = http.request({ host: '127.0.0.1', port: s3port,
		method: req.method, path: req.url, headers },
	(answer) => {
		res.writeHead(answer.statusCode, answer.headers);
		answer.pipe(res);
	});
	up.on('error', () => req.socket.destroy());
	req.pipe(up);
}

const proxy = http.createServer((req, res) => {
	const line = `${req.method} ${req.url}`;
	if (req.url.startsWith('/__')) {
		let body = '';
		req.on('data', (d) => { body += d; });
		req.on('end', () => control(req, res, body));
		return;
	}
	const rule = rules.find((r) => r.times > 0 && line.startsWith(r.match));
	log.push({ t: Date.now(), req: line, host: req.headers.host,
		did: rule ? rule.action : 'pass' });
	if (!rule)
		return pass(req, res);
	rule.times--;
	req.resume();
	req.on('end', () => fault(req, res, rule));
});
proxy.keepAliveTimeout = 30000;
proxy.listen(0, '127.0.0.1', () => {
	const port = proxy.address().port;
	console.log(JSON.stringify({ s3: s3port, proxy: port }));
});

process.on('SIGTERM', () => {
	proxy.close();
	s3.close().then(() => process.exit(0));
});
