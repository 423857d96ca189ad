// SPDX-License-Identifier: MIT
// External identity (Cloudflare Access style) end to end: a JWKS served on
// loopback by node:http, keys and tokens made by an independent JWS
// implementation (Node's crypto), pincerd verifying them on GET /api/v1/me.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import http from "node:http";
import { startPincer, get } from "./lib/daemon.mjs";

const ISS = "https://team.example";
const AUD = "aud-123";

// --- keys and a small JWS signer -----------------------------------------

function rsaKey(kid) {
	const { publicKey, privateKey } = crypto.generateKeyPairSync("rsa",
		{ modulusLength: 2048 });
	return { kid, alg: "RS256", publicKey, privateKey };
}

function ecKey(kid) {
	const { publicKey, privateKey } = crypto.generateKeyPairSync("ec",
		{ namedCurve: "P-256" });
	return { kid, alg: "ES256", publicKey, privateKey };
}

function jwk(k) {
	return { ...k.publicKey.export({ format: "jwk" }), kid: k.kid,
		alg: k.alg, use: "sig" };
}

const b64u = (x) => Buffer.from(typeof x === "string" ? x : JSON.stringify(x))
	.toString("base64url");

// header: the JWS header (alg, kid…); how: "RS256" | "ES256" | "HS256" |
// "none"; key: a KeyObject, or the HMAC secret for HS256.
function jws(header, payload, how, key) {
	const input = `${b64u(header)}.${b64u(payload)}`;
	let sig;
	if (how === "RS256")
		sig = crypto.sign("sha256", Buffer.from(input), key);
	else if (how === "ES256")
		sig = crypto.sign("sha256", Buffer.from(input),
			{ key, dsaEncoding: "ieee-p1363" });
	else if (how === "HS256")
		sig = crypto.createHmac("sha256", key).update(input).digest();
	else
		sig = Buffer.alloc(0);
	return `${input}.${sig.toString("base64url")}`;
}

function claims(email, over = {}) {
	const now = Math.floor(Date.now() / 1000);
	return { iss: ISS, aud: [AUD], sub: `sub-${email}`, email, iat: now,
		nbf: now, exp: now + 300, type: "app", ...over };
}

// A token as the proxy would make it: signed by k, naming k's kid.
function token(k, email, over = {}, kid = k.kid) {
	return jws({ alg: k.alg, kid, typ: "JWT" }, claims(email, over), k.alg,
		k.privateKey);
}

// --- the JWKS server -----------------------------------------------------

function jwksServer(keys) {
	const s = { fetches: 0, set: keys.map(jwk) };
	s.server = http.createServer((req, res) => {
		if (req.url !== "/certs") {
			res.writeHead(404).end();
			return;
		}
		s.fetches++;
		res.writeHead(200, { "content-type": "application/json" });
		res.end(JSON.stringify({ keys: s.set }));
	});
	s.rotate = (next) => { s.set = next.map(jwk); };
	return new Promise((resolve) => s.server.listen(0, "127.0.0.1", () => {
		s.url = `http://127.0.0.1:${s.server.address().port}/certs`;
		resolve(s);
	}));
}

// --- fixtures ------------------------------------------------------------

const rsa1 = rsaKey("rsa-1");
const ec1 = ecKey("ec-1");
const rogue = rsaKey("rsa-1");		// same kid as rsa1, not in the JWKS
const rsa2 = rsaKey("rsa-2");		// the key rotated in

let jwks, gw;

function config(role) {
	return {
		auth: {
			external_jwt: { jwks_url: jwks.url, issuer: ISS,
				audience: AUD, auto_provision_role: role,
				refetch_interval_s: 0 },
			argon2_memory_kib: 1024, argon2_iterations: 1,
		},
		metrics: { public: true },
	};
}

before(async () => {
	jwks = await jwksServer([rsa1, ec1]);
	gw = await startPincer("external-jwt", config("member"));
});
after(async () => {
	await gw?.stop();
	jwks?.server.close();
});

const me = (g, headers) => get(`${g.url}/api/v1/me`, headers);
const viaHeader = (t) => ({ "Cf-Access-Jwt-Assertion": t });
const viaCookie = (t) => ({ Cookie: `theme=dark; CF_Authorization=${t}` });

function users(g) {
	return JSON.parse(execFileSync(process.env.PINCER_BIN, ["user", "list",
		"--config", g.conf, "--state", g.state], { encoding: "utf8" }));
}

async function refused(headers, why) {
	const r = await me(gw, headers);
	assert.equal(r.status, 401, `${why}: ${r.body}`);
	assert.equal(JSON.parse(r.body).error.code, "invalid_credentials", r.body);
}

// --- tests ---------------------------------------------------------------

test("no credential at all: 401 unauthenticated", async () => {
	const r = await me(gw, {});
	assert.equal(r.status, 401);
	assert.equal(JSON.parse(r.body).error.code, "unauthenticated");
});

test("RS256 in Cf-Access-Jwt-Assertion: 200, user provisioned as member", async () => {
	const email = "alice@team.example";
	assert.equal(users(gw).some((u) => u.email === email), false);
	const r = await me(gw, viaHeader(token(rsa1, email)));
	assert.equal(r.status, 200, r.body);
	const b = JSON.parse(r.body);
	assert.equal(b.auth, "external");
	assert.equal(b.name, email);
	assert.equal(b.email, email);
	assert.equal(b.role, "member");
	assert.deepEqual([...b.scopes].sort(), ["browser", "chat", "llm",
	    "read", "sandbox"]);
	const u = users(gw).find((x) => x.email === email);
	assert.ok(u, "the user row exists after the first request");
	assert.equal(u.role, "member");
	// A second request maps to the same user, with no second row.
	assert.equal((await me(gw, viaHeader(token(rsa1, email)))).status, 200);
	assert.equal(users(gw).filter((x) => x.email === email).length, 1);
});

test("RS256 in the CF_Authorization cookie: 200", async () => {
	const email = "bob@team.example";
	const r = await me(gw, viaCookie(token(rsa1, email)));
	assert.equal(r.status, 200, r.body);
	const b = JSON.parse(r.body);
	assert.equal(b.auth, "external");
	assert.equal(b.name, email);
	assert.equal(b.role, "member");
});

test("the email is matched without regard to case", async () => {
	const r = await me(gw, viaHeader(token(rsa1, "ALICE@Team.Example")));
	assert.equal(r.status, 200, r.body);
	assert.equal(JSON.parse(r.body).name, "alice@team.example");
});

test("ES256 (P-256, raw r||s signature): 200 by header and by cookie", async () => {
	const email = "carol@team.example";
	let r = await me(gw, viaHeader(token(ec1, email)));
	assert.equal(r.status, 200, r.body);
	let b = JSON.parse(r.body);
	assert.equal(b.auth, "external");
	assert.equal(b.name, email);
	assert.equal(b.role, "member");
	r = await me(gw, viaCookie(token(ec1, email)));
	assert.equal(r.status, 200, r.body);
	b = JSON.parse(r.body);
	assert.equal(b.name, email);
});

test("a string aud works as well as an array", async () => {
	const r = await me(gw, viaHeader(token(rsa1, "alice@team.example",
		{ aud: AUD })));
	assert.equal(r.status, 200, r.body);
});

test("wrong audience: 401", async () => {
	await refused(viaHeader(token(rsa1, "alice@team.example",
		{ aud: ["aud-other"] })), "aud array");
	await refused(viaHeader(token(rsa1, "alice@team.example",
		{ aud: "aud-1234" })), "aud string");
	await refused(viaHeader(token(ec1, "alice@team.example",
		{ aud: undefined })), "no aud");
});

test("wrong issuer: 401", async () => {
	await refused(viaHeader(token(rsa1, "alice@team.example",
		{ iss: "https://evil.example" })), "iss");
	await refused(viaHeader(token(rsa1, "alice@team.example",
		{ iss: undefined })), "no iss");
});

test("expired (beyond the skew): 401", async () => {
	const now = Math.floor(Date.now() / 1000);
	await refused(viaHeader(token(rsa1, "alice@team.example",
		{ iat: now - 7200, nbf: now - 7200, exp: now - 3600 })), "exp");
	await refused(viaHeader(token(ec1, "alice@team.example",
		{ exp: undefined })), "no exp");
});

test("not yet valid, and issued in the future: 401", async () => {
	const now = Math.floor(Date.now() / 1000);
	await refused(viaHeader(token(rsa1, "alice@team.example",
		{ nbf: now + 3600 })), "nbf");
	await refused(viaHeader(token(rsa1, "alice@team.example",
		{ iat: now + 3600 })), "iat");
});

test("alg none: 401", async () => {
	const c = claims("alice@team.example");
	await refused(viaHeader(jws({ alg: "none", kid: "rsa-1" }, c, "none")),
		"none with a kid");
	await refused(viaHeader(jws({ alg: "none" }, c, "none")), "none");
	// The RS256 signature kept, the header saying none.
	const good = token(rsa1, "alice@team.example").split(".");
	await refused(viaHeader([b64u({ alg: "none", kid: "rsa-1" }), good[1],
		good[2]].join(".")), "none header, real signature");
});

test("HS256 with the RSA public key (PEM) as the HMAC secret: 401", async () => {
	const pem = rsa1.publicKey.export({ type: "spki", format: "pem" });
	const c = claims("alice@team.example");
	await refused(viaHeader(jws({ alg: "HS256", kid: "rsa-1" }, c, "HS256",
		pem)), "HS256/PEM");
	const pkcs1 = rsa1.publicKey.export({ type: "pkcs1", format: "pem" });
	await refused(viaHeader(jws({ alg: "HS256", kid: "rsa-1" }, c, "HS256",
		pkcs1)), "HS256/PKCS#1 PEM");
	// An RS256 header with an HMAC signature is a bad signature too.
	await refused(viaHeader(jws({ alg: "RS256", kid: "rsa-1" }, c, "HS256",
		pem)), "RS256 header, HMAC signature");
});

test("tampered payload or signature: 401", async () => {
	const [h, , s] = token(rsa1, "alice@team.example").split(".");
	const forged = b64u(claims("mallory@team.example"));
	await refused(viaHeader(`${h}.${forged}.${s}`), "payload swapped");
	const t = token(ec1, "alice@team.example");
	const bad = Buffer.from(t.split(".")[2], "base64url");
	bad[10] ^= 1;
	await refused(viaHeader(t.replace(/[^.]+$/, bad.toString("base64url"))),
		"signature bit flipped");
	assert.equal(users(gw).some((u) => u.email === "mallory@team.example"),
		false, "no user is provisioned from a refused token");
});

test("signed by a key not in the JWKS, naming a known kid: 401, no refetch", async () => {
	const before = jwks.fetches;
	await refused(viaHeader(token(rogue, "alice@team.example")), "rogue key");
	assert.equal(jwks.fetches, before, "a bad signature is not a reason to refetch");
	// And an RS256 token naming the EC key's kid.
	await refused(viaHeader(token(rogue, "alice@team.example", {}, "ec-1")),
		"RS256 under an ES256 kid");
});

test("unknown kid: 401 after exactly one extra JWKS fetch", async () => {
	const before = jwks.fetches;
	assert.ok(before >= 1, "the JWKS was fetched at least once already");
	await refused(viaHeader(token(rsa1, "alice@team.example", {}, "rsa-9")),
		"unknown kid");
	assert.equal(jwks.fetches, before + 1);
	// The set is unchanged: known kids still work, with no fetch.
	assert.equal((await me(gw, viaHeader(token(rsa1, "alice@team.example"))))
		.status, 200);
	assert.equal(jwks.fetches, before + 1);
});

test("rotation: the new key is accepted after one refetch, the old refused", async () => {
	jwks.rotate([rsa2, ec1]);
	const before = jwks.fetches;
	let r = await me(gw, viaHeader(token(rsa2, "alice@team.example")));
	assert.equal(r.status, 200, r.body);
	assert.equal(JSON.parse(r.body).name, "alice@team.example");
	assert.equal(jwks.fetches, before + 1, "one refetch for the new kid");
	// The next request with the new key needs no fetch.
	assert.equal((await me(gw, viaHeader(token(rsa2, "bob@team.example"))))
		.status, 200);
	assert.equal(jwks.fetches, before + 1);
	// The old key is gone from the cache: its tokens are refused.
	await refused(viaHeader(token(rsa1, "alice@team.example")), "old key");
	// And an old-key signature under the new kid is a bad signature.
	await refused(viaHeader(token(rsa1, "alice@team.example", {}, "rsa-2")),
		"old key, new kid");
	// The EC key stayed in the set.
	r = await me(gw, viaHeader(token(ec1, "carol@team.example")));
	assert.equal(r.status, 200, r.body);
});

test("auto_provision_role none: unknown emails refused, known users admitted", async () => {
	const gw2 = await startPincer("external-jwt-none", config("none"), {
		beforeStart: ({ conf, state }) => {
			execFileSync(process.env.PINCER_BIN, ["user", "add", "dave",
				"--role", "admin", "--email", "dave@team.example",
				"--password-stdin", "--config", conf, "--state", state],
			{ input: "correct horse battery\n", stdio: ["pipe", "pipe", "pipe"] });
		},
	});
	try {
		const k = jwks.set.some((j) => j.kid === "rsa-2") ? rsa2 : rsa1;
		let r = await me(gw2, viaHeader(token(k, "erin@team.example")));
		assert.equal(r.status, 401, r.body);
		assert.equal(users(gw2).some((u) => u.email === "erin@team.example"),
			false, "not provisioned");
		r = await me(gw2, viaHeader(token(k, "dave@team.example")));
		assert.equal(r.status, 200, r.body);
		const b = JSON.parse(r.body);
		assert.equal(b.auth, "external");
		assert.equal(b.name, "dave");
		assert.equal(b.email, "dave@team.example");
		assert.equal(b.role, "admin");
		r = await me(gw2, viaCookie(token(ec1, "dave@team.example")));
		assert.equal(r.status, 200, r.body);
		assert.equal(JSON.parse(r.body).name, "dave");
	} finally {
		await gw2.stop();
	}
});

test("a disabled user's external identity is refused", async () => {
	execFileSync(process.env.PINCER_BIN, ["user", "disable",
		"carol@team.example", "--config", gw.conf, "--state", gw.state],
	{ stdio: ["ignore", "pipe", "pipe"] });
	await refused(viaHeader(token(ec1, "carol@team.example")), "disabled");
});
