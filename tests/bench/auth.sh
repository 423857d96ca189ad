#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Auth benchmark: what verifying a credential costs per request. wrk against
# GET /healthz (public: the baseline) and GET /api/v1/auth/check, which
# answers exactly the same {"status":"ok"} but only to a valid credential:
# an HS256 session cookie, an API token (Authorization: Bearer) and an
# RS256 external JWT (Cf-Access-Jwt-Assertion, JWKS served by a small node
# script on loopback). For each: requests/s at -c64 and p50 latency at -c1;
# the added p50 of auth/check over healthz is what auth costs. /healthz with
# each credential sent shows the bigger request alone (a public route does
# not look at it); /api/v1/me, which also builds a bigger answer, is shown
# for reference.
# The -c1 latencies are taken in interleaved rounds and their median kept,
# so that a neighbour's load drifting over the run hits every case alike;
# pincerd's CPU time per request (in the -c64 run) is printed too, as the
# steadier measure of the work a credential adds.
# Figures only: nothing here passes or fails. Target: auth adds <= 20 us per
# request at p50 for cookies and tokens.
# Env: PINCER_BIN; BENCH_SECONDS (default 4: each of 7 throughput runs),
# BENCH_LATENCY_SECONDS (default 1: each -c1 run), BENCH_ROUNDS (default 5),
# BENCH_CONNECTIONS (default 64). Defaults take about 70 s.
set -euo pipefail
: "${PINCER_BIN:?}"
secs=${BENCH_SECONDS:-4}
lsecs=${BENCH_LATENCY_SECONDS:-1}
rounds=${BENCH_ROUNDS:-5}
conns=${BENCH_CONNECTIONS:-64}
for t in wrk node curl; do
	command -v $t >/dev/null || { echo "bench: $t is missing" >&2; exit 1; }
done

tmp=$(mktemp -d)
pid='' jpid=''
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	[ -n "$jpid" ] && kill "$jpid" 2>/dev/null && wait "$jpid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
email=bench@example.test
user=bench
password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')

# The proxy's side: an RSA key, its JWKS on loopback, one token (1 h).
cat >"$tmp/jwks.mjs" <<'JS'
import crypto from "node:crypto";
import http from "node:http";
const email = process.argv[2];
const { publicKey, privateKey } = crypto.generateKeyPairSync("rsa",
	{ modulusLength: 2048 });
const jwk = { ...publicKey.export({ format: "jwk" }), kid: "bench-1",
	alg: "RS256", use: "sig" };
let fetches = 0;
const b64u = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
const now = Math.floor(Date.now() / 1000);
const input = `${b64u({ alg: "RS256", kid: "bench-1", typ: "JWT" })}.` +
	b64u({ iss: "https://team.example", aud: ["aud-bench"], email,
		sub: email, iat: now, nbf: now, exp: now + 3600 });
const token = `${input}.` + crypto.sign("sha256", Buffer.from(input),
	privateKey).toString("base64url");
const server = http.createServer((req, res) => {
	if (req.url === "/certs") {
		fetches++;
		res.writeHead(200, { "content-type": "application/json" });
		res.end(JSON.stringify({ keys: [jwk] }));
	} else if (req.url === "/count") {
		res.end(String(fetches));
	} else {
		res.writeHead(404).end();
	}
});
server.listen(0, "127.0.0.1", () =>
	console.log(`${server.address().port} ${token}`));
process.on("SIGTERM", () => process.exit(0));
JS
node "$tmp/jwks.mjs" "$email" >"$tmp/jwks.out" &
jpid=$!
for _ in $(seq 200); do [ -s "$tmp/jwks.out" ] && break; sleep 0.05; done
read -r jport extjwt <"$tmp/jwks.out"

# Rate limit on (its cost is part of every figure) but out of wrk's way;
# request logging off, so the log writer is not what is measured.
cat >"$tmp/pincer.json" <<JSON
{ "http": { "rate_limit_rps": 100000000, "rate_limit_burst": 100000000,
            "max_connections": 1024 },
  "log": { "requests": false },
  "auth": { "argon2_memory_kib": 1024, "argon2_iterations": 1,
            "external_jwt": { "jwks_url": "http://127.0.0.1:$jport/certs",
                              "issuer": "https://team.example",
                              "audience": "aud-bench" } } }
JSON
mkdir -m 700 "$tmp/state"
pin() { "$PINCER_BIN" --config "$tmp/pincer.json" --state "$tmp/state" "$@"; }
printf '%s\n' "$password" | pin user add "$user" --role owner \
    --email "$email" --password-stdin >/dev/null
apitok=$(pin token create --user "$user" --scope read,llm --name bench \
    --ttl 1d 2>/dev/null)

"$PINCER_BIN" serve --config "$tmp/pincer.json" --state "$tmp/state" \
    --listen 127.0.0.1:0 2>"$tmp/pincerd.log" &
pid=$!
addr=''
for _ in $(seq 200); do
	addr=$(sed -n 's/.*msg=listening addr=\([^ ]*\).*/\1/p' "$tmp/pincerd.log")
	[ -n "$addr" ] && break
	sleep 0.05
done
[ -n "$addr" ] || { cat "$tmp/pincerd.log" >&2; exit 1; }
url="http://$addr"
for _ in $(seq 200); do
	curl -fsS -o /dev/null "$url/readyz" 2>/dev/null && break
	sleep 0.05
done

curl -fsS -D "$tmp/login.h" -o /dev/null -H 'Content-Type: application/json' \
    --data "{\"username\":\"$user\",\"password\":\"$password\"}" \
    "$url/api/v1/auth/login"
cookie=$(sed -n 's/^[Ss]et-[Cc]ookie: pincer_session=\([^;]*\).*/\1/p' \
    "$tmp/login.h" | tr -d '\r')
[ -n "$cookie" ] || { echo "bench: login gave no cookie" >&2; exit 1; }

declare -A cred=(
	[none]=''
	[cookie]="Cookie: pincer_session=$cookie"
	[token]="Authorization: Bearer $apitok"
	[external]="Cf-Access-Jwt-Assertion: $extjwt"
)
# Each credential must really be accepted, or the figures are of 401s.
for c in cookie token external; do
	kind=$(curl -fsS -H "${cred[$c]}" "$url/api/v1/me" |
	    sed -n 's/.*"auth":"\([a-z]*\)".*/\1/p')
	case $c:$kind in
	cookie:session|token:token|external:external) ;;
	*) echo "bench: the $c credential is not accepted (auth=$kind)" >&2
	   exit 1 ;;
	esac
done

# wrk's latency figure (e.g. 41.00us, 1.20ms, 1.00s) in microseconds.
us() {
	awk -v v="$1" 'BEGIN { n = v + 0
	    if (v ~ /us$/) u = n; else if (v ~ /ms$/) u = n * 1000
	    else if (v ~ /m$/) u = n * 60e6; else if (v ~ /s$/) u = n * 1e6
	    printf "%.1f", u }'
}
cputicks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END {
	print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

# The cases: route and credential (none: no header at all).
cases=(/healthz:none /healthz:cookie /healthz:token
    /api/v1/auth/check:cookie /api/v1/auth/check:token
    /api/v1/auth/check:external /api/v1/me:cookie /api/v1/me:token)
wrkcase() {	# CASE THREADS CONNS SECONDS -> wrk's output
	local p=${1%%:*} c=${1##*:} h=()
	[ -n "${cred[$c]}" ] && h=(-H "${cred[$c]}")
	wrk -t"$2" -c"$3" -d"$4s" --latency "${h[@]}" "$url$p"
}
errors() {	# CASE OUTPUT: wrk's complaints, if any, to stderr
	grep -E 'Non-2xx|Socket errors' <<<"$2" | sed "s|^|  $1: |" >&2 || true
}

echo "pincer $("$PINCER_BIN" version | cut -d' ' -f2) on $(nproc) cores," \
    "$(uname -r)"
echo "throughput: wrk -t2 -c$conns -d${secs}s per case; latency: wrk -t1 -c1" \
    "-d${lsecs}s, $rounds interleaved rounds, median of the p50s"
declare -A rps cpu p50s p50
for k in "${cases[@]}"; do
	t0=$(cputicks)
	out=$(wrkcase "$k" 2 "$conns" "$secs")
	t1=$(cputicks)
	errors "$k" "$out"
	rps[$k]=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
	n=$(awk '/requests in/ { print $1 }' <<<"$out")
	cpu[$k]=$(awk -v a="$t0" -v b="$t1" -v n="$n" -v hz="$hz" \
	    'BEGIN { printf "%.1f", (b - a) / hz * 1e6 / n }')
done
for r in $(seq "$rounds"); do
	for k in "${cases[@]}"; do
		out=$(wrkcase "$k" 1 1 "$lsecs")
		errors "$k" "$out"
		p50s[$k]+=" $(us "$(awk '$1=="50%" { print $2 }' <<<"$out")")"
	done
done
for k in "${cases[@]}"; do p50[$k]=$(median <<<"${p50s[$k]}"); done

base=/healthz:none
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f", a - b }'; }
printf '\n%-16s %-9s %11s %11s %9s %9s %12s\n' route credential req/s \
    "cpu us/req" "+cpu us" "p50 us" "+p50 us"
for k in "${cases[@]}"; do
	printf '%-16s %-9s %11s %11s %9s %9s %12s\n' "${k%%:*}" "${k##*:}" \
	    "${rps[$k]}" "${cpu[$k]}" "$(sub "${cpu[$k]}" "${cpu[$base]}")" \
	    "${p50[$k]}" "$(sub "${p50[$k]}" "${p50[$base]}")"
done
echo "(+: against GET /healthz with no credential; cpu us/req is"
echo " pincerd's user+system CPU time per request in the -c$conns run;"
echo " p50 rounds:$(for k in "${cases[@]}"; do printf ' %s/%s=[%s ]' \
    "${k%%:*}" "${k##*:}" "${p50s[$k]}"; done | sed 's|/api/v1/||g'))"

echo
echo "auth's added p50 (GET /api/v1/auth/check with the credential minus"
echo "GET /healthz without; both answer {\"status\":\"ok\"}):"
for c in cookie token external; do
	a=$(sub "${p50[/api/v1/auth/check:$c]}" "${p50[$base]}")
	t=''
	[ "$c" != external ] && t=$(awk -v a="$a" 'BEGIN {
	    print (a <= 20 ? "target <= 20 us: met" : "target <= 20 us: NOT met") }')
	printf '  %-9s %8s us p50, %8s us CPU   %s\n' "$c" "$a" \
	    "$(sub "${cpu[/api/v1/auth/check:$c]}" "${cpu[$base]}")" "$t"
done
printf 'JWKS fetches during the run: %s\n' \
    "$(curl -fsS "http://127.0.0.1:$jport/count")"
printf 'pincerd RSS after the run: %s kB\n' \
    "$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")"
