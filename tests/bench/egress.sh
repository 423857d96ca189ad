#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Egress benchmark (issue 10): what the proxy adds to HTTPS from a sandbox.
# One HTTPS server on the host's loopback (tests/fakes/https_server.mjs,
# a throwaway CA), one pincerd, one sandbox; the same client
# (tests/bench/egress.mjs) measures, in rounds that alternate the paths:
#  - direct: on the host, no proxy;
#  - tunnel: inside the sandbox by its proxy environment: 127.0.0.1:3128,
#    pincer-init's relay to gateway.sock, pincerd's CONNECT relay (policy:
#    allow the server's name and address), TLS end to end;
#  - intercepted: the same with an inject rule (set_headers X-Bench):
#    pincerd ends the sandbox's TLS with the sandbox's CA (the client
#    trusts its default store) and verifies the server with the test CA
#    (egress.upstream_ca_file). Reported "not available", with the
#    proxy's answer, if the header does not arrive.
# Figures: sequential small GETs on one keep-alive connection (p50/p99),
# 1 MiB downloads one after another (MB/s), opening a new connection
# (TCP, CONNECT, TLS handshake: p50/p99); the added p50 and the
# throughput ratio of each path against direct. Figures only: nothing is
# asserted about time.
# The server is named by the host's name (resolving to loopback on the
# host): "localhost" is in the sandbox's NO_PROXY and would not be proxied.
# Env: PINCER_BIN, BENCH_ROUNDS (5).
set -euo pipefail
: "${PINCER_BIN:?}"
rounds=${BENCH_ROUNDS:-5}
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
pid='' spid=''
cleanup() {
	[ -n "$spid" ] && kill "$spid" 2>/dev/null
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

name=$(hostname)
addr=$(getent ahostsv4 "$name" | awk '{ print $1; exit }')
[ -n "$addr" ] || { echo "egress bench: $name does not resolve" >&2; exit 1; }

# A test CA and the server's certificate.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=bench-ca \
    -keyout "$tmp/ca.key" -out "$tmp/ca.pem" >/dev/null 2>&1
openssl req -newkey rsa:2048 -nodes -subj "/CN=$name" \
    -keyout "$tmp/srv.key" -out "$tmp/srv.csr" >/dev/null 2>&1
printf '%s\n' "subjectAltName=DNS:$name,IP:$addr" >"$tmp/ext"
openssl x509 -req -days 2 -in "$tmp/srv.csr" -CA "$tmp/ca.pem" \
    -CAkey "$tmp/ca.key" -CAcreateserial -extfile "$tmp/ext" \
    -out "$tmp/srv.pem" >/dev/null 2>&1
node "$src/tests/fakes/https_server.mjs" --cert "$tmp/srv.pem" \
    --key "$tmp/srv.key" --host "$addr" >"$tmp/https.out" 2>&1 &
spid=$!
for _ in $(seq 100); do
	grep -q '^listening' "$tmp/https.out" && break
	sleep 0.05
done
port=$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$tmp/https.out")
[ -n "$port" ] || { cat "$tmp/https.out" >&2; exit 1; }
base="https://$name:$port"

mkdir -m 700 "$tmp/state"
cat >"$tmp/pincer.json" <<EOF
{ "egress": { "policy": "tunnel", "policies": {
	"tunnel": { "rules": [ { "host": "$name", "cidr": "$addr/32",
		"action": "allow" } ] },
	"intercepted": { "rules": [ { "host": "$name", "cidr": "$addr/32",
		"action": "inject", "set_headers": { "X-Bench": "1" } } ] } } } }
EOF
pin() { "$PINCER_BIN" --config "$tmp/pincer.json" --state "$tmp/state" "$@"; }
head -c 18 /dev/urandom | base64 | pin user add bench --role owner \
    --password-stdin >/dev/null
tok=$(pin token create --user bench --scope sandbox --name bench \
    --ttl 1d 2>/dev/null)
PINCER_HTTP_RATE_LIMIT_RPS=0 PINCER_EGRESS_UPSTREAM_CA_FILE="$tmp/ca.pem" \
    "$PINCER_BIN" serve --config "$tmp/pincer.json" --state "$tmp/state" \
    --listen 127.0.0.1:0 2>"$tmp/pincerd.log" &
pid=$!
paddr=''
for _ in $(seq 200); do
	paddr=$(sed -n 's/.*msg=listening addr=\([^ ]*\).*/\1/p' \
	    "$tmp/pincerd.log")
	[ -n "$paddr" ] && break
	sleep 0.05
done
[ -n "$paddr" ] || { cat "$tmp/pincerd.log" >&2; exit 1; }
url="http://$paddr/api/v1/sandboxes"

# call METHOD PATH [JSON|@FILE]: the body in $body, the status in $code.
call() {
	local out
	out=$(curl -sS --max-time 600 -X "$1" -H "Authorization: Bearer $tok" \
	    -H 'Content-Type: application/json' ${3:+--data-binary "$3"} \
	    -w '\n%{http_code}' "$url$2")
	code=${out##*$'\n'}
	body=${out%$'\n'*}
}
need() {
	case "$code" in 2*) ;; *) echo "$1: $code $body" >&2; exit 1 ;; esac
}
call POST "" '{"name":"bench"}'
need "create the sandbox"
for f in fakes/sandbox_fetch.mjs bench/egress.mjs; do
	call PUT "/bench/files/workspace/$f" "@$src/tests/$f"
	need "copy $f"
done
call PUT /bench/files/workspace/ca.pem "@$tmp/ca.pem"
need "copy the CA"

# sbx SCRIPT: sh -c SCRIPT in the sandbox; its stdout in $out, exit in $rc.
sbx() {
	call POST /bench/exec "$(jq -nc --arg s "$1" \
	    '{cmd: ["sh", "-c", $s], timeout_ms: 600000}')"
	need "exec"
	out=$(jq -r .stdout <<<"$body")
	err=$(jq -r .stderr <<<"$body")
	rc=$(jq -r .exit_code <<<"$body")
}
policy() {
	call PUT /bench/egress "{\"policy\":\"$1\"}"
	need "policy $1"
}

# Does the rule's header arrive (the request was intercepted)?
policy intercepted
sbx "node /workspace/fakes/sandbox_fetch.mjs get '$base/echo'"
if [ "$rc" = 0 ] && grep -q '"x-bench":"1"' <<<"$out"; then
	icpt=1
else
	icpt=0
	why=$(printf '%s %s' "$err" "$out" | head -c 300 | tr '\n' ' ')
	why=$(sed -E 's/^proxy CONNECT: ([0-9]+) .*"code":"([^"]*)".*/HTTP \1 \2/' <<<"$why")
fi

paths="direct tunnel"
[ "$icpt" = 1 ] && paths="$paths intercepted"
: >"$tmp/results"
for r in $(seq "$rounds"); do
	for p in $paths; do
		case $p in
		direct)
			out=$(env -u https_proxy -u HTTPS_PROXY \
			    node "$src/tests/bench/egress.mjs" "$base" "$tmp/ca.pem")
			;;
		tunnel)
			policy tunnel
			sbx "node /workspace/bench/egress.mjs '$base' /workspace/ca.pem"
			[ "$rc" = 0 ] || { echo "tunnel: $err" >&2; exit 1; }
			;;
		intercepted)
			policy intercepted
			sbx "node /workspace/bench/egress.mjs '$base'"
			[ "$rc" = 0 ] || { echo "intercepted: $err" >&2; exit 1; }
			;;
		esac
		printf '%s %s\n' "$p" "$out" >>"$tmp/results"
	done
done

# Medians over the rounds of each figure (the range in brackets), then
# each path against direct (medians of the rounds' differences).
echo "egress (HTTPS to $base, $rounds rounds, medians [min .. max]; the same" \
    "Node client)"
node -e '
const lines = require("fs").readFileSync(process.argv[1], "utf8").trim()
	.split("\n").map((l) => { const i = l.indexOf(" ");
		return [l.slice(0, i), JSON.parse(l.slice(i + 1))]; });
const sorted = (a) => [...a].sort((x, y) => x - y);
const med = (a) => sorted(a)[a.length >> 1];
const by = {};
for (const [p, o] of lines)
	for (const k in o)
		((by[p] ??= {})[k] ??= []).push(o[k]);
// a figure: its median, and its range over the rounds.
const f = (a, scale, digits, unit) => {
	const s = sorted(a).map((v) => (v / scale).toFixed(digits));
	return `${(med(a) / scale).toFixed(digits)} ${unit} ` +
	    `[${s[0]} .. ${s[s.length - 1]}]`;
};
for (const p in by) {
	const o = by[p];
	console.log(`  ${p}:\n` +
	    `    small GET, one keep-alive connection: p50 ` +
	    `${f(o.seq_p50_us, 1000, 3, "ms")}, ` +
	    `p99 ${f(o.seq_p99_us, 1000, 2, "ms")}\n` +
	    `    1 MiB downloads: ${f(o.mbps, 1, 0, "MB/s")}\n` +
	    `    a new connection (TLS verified): p50 ` +
	    `${f(o.open_p50_us, 1000, 2, "ms")}, ` +
	    `p99 ${f(o.open_p99_us, 1000, 2, "ms")}`);
}
const d = by.direct;
const diff = (o, k) => o[k].map((v, i) => v - d[k][i]);
for (const p in by) {
	if (p === "direct")
		continue;
	const o = by[p];
	console.log(`  ${p} against direct: added p50 ` +
	    `${f(diff(o, "seq_p50_us"), 1000, 3, "ms")} per request; ` +
	    `throughput ${f(o.mbps.map((v, i) => 100 * v / d.mbps[i]), 1, 0,
		"%")} of direct; a new connection ` +
	    `${f(diff(o, "open_p50_us"), 1000, 2, "ms")} (p50, added)`);
}' "$tmp/results"
[ "$icpt" = 1 ] || echo "  intercepted: not available ($why)"
echo "  (pincerd logged $(grep -c "msg=egress .*method=CONNECT host=$name .*action=allow" \
    "$tmp/pincerd.log") tunnels to the server, \
$(grep -c "msg=egress .*host=$name .*action=inject.*intercepted=yes" \
    "$tmp/pincerd.log") intercepted requests)"
