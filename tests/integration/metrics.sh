#!/bin/bash
# SPDX-License-Identifier: MIT
# metrics.sh: GET /metrics is valid Prometheus text format 0.0.4 (checked by
# a strict parser written here, and by promtool when it is installed), and
# its numbers follow the requests made: by route and status, the latency
# histogram, the gauges, the build info.
. "$TOP_SRCDIR/tests/integration/lib.sh"

# The checker: reads the exposition on stdin, prints one line per problem,
# exits 1 if there is any. With --consistent, also requires each route's
# histogram _count to equal the sum of its requests_total (true when no
# request completes while /metrics renders).
cat >"$T_TMP/check.js" <<'EOF'
'use strict';
const text = require('fs').readFileSync(0, 'utf8');
const consistent = process.argv.includes('--consistent');
const errs = [];
const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const NUM = /^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]Inf|NaN)$/;
const TYPES = ['counter', 'gauge', 'histogram', 'summary', 'untyped'];
const help = new Map(), type = new Map();
const seenFamilies = new Set(), seenSeries = new Set();
let current = null;
const samples = [];	/* { name, fam, labels, value } */

function parseLabels(s, where) {
	const out = {};
	let i = 0;
	while (i < s.length) {
		const m = /^([^=]*)="/.exec(s.slice(i));
		if (!m) { errs.push(`${where}: bad label syntax at '${s.slice(i)}'`); return null; }
		const name = m[1];
		if (!LABEL.test(name)) errs.push(`${where}: bad label name '${name}'`);
		if (name in out) errs.push(`${where}: label '${name}' twice`);
		i += m[0].length;
		let v = '';
		for (;;) {
			if (i >= s.length) { errs.push(`${where}: unterminated label value`); return null; }
			const c = s[i++];
			if (c === '"') break;
			if (c === '\\') {
				const e = s[i++];
				if (e === '\\') v += '\\';
				else if (e === '"') v += '"';
				else if (e === 'n') v += '\n';
				else { errs.push(`${where}: bad escape '\\${e}'`); return null; }
			} else if (c === '\n') {
				errs.push(`${where}: raw newline in a label value`); return null;
			} else v += c;
		}
		out[name] = v;
		if (i < s.length) {
			if (s[i] !== ',' || i + 1 >= s.length) {
				errs.push(`${where}: expected ',' between labels (no trailing comma)`);
				return null;
			}
			i++;
		}
	}
	return out;
}
function familyOf(name) {
	if (type.has(name)) return name;
	for (const [suf, kinds] of [['_bucket', ['histogram']],
	    ['_sum', ['histogram', 'summary']], ['_count', ['histogram', 'summary']]])
		if (name.endsWith(suf)) {
			const base = name.slice(0, -suf.length);
			if (kinds.includes(type.get(base))) return base;
		}
	return null;
}

if (!text.endsWith('\n')) errs.push('the text does not end with a newline');
const lines = text.replace(/\n$/, '').split('\n');
lines.forEach((line, n) => {
	const where = `line ${n + 1}`;
	if (line === '') { errs.push(`${where}: empty line`); return; }
	let m;
	if ((m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line))) {
		const [, kw, name, rest] = m;
		if (!NAME.test(name)) errs.push(`${where}: bad metric name '${name}'`);
		if (seenFamilies.has(name))
			errs.push(`${where}: ${kw} for ${name} after its samples`);
		const map = kw === 'HELP' ? help : type;
		if (map.has(name)) errs.push(`${where}: second ${kw} for ${name}`);
		if (kw === 'HELP' && rest === '') errs.push(`${where}: empty HELP`);
		if (kw === 'TYPE' && !TYPES.includes(rest))
			errs.push(`${where}: bad type '${rest}'`);
		map.set(name, rest);
		return;
	}
	if (line.startsWith('#')) return;	/* a plain comment */
	m = /^([^{} ]+)(?:\{(.*)\})? (\S+)$/.exec(line);
	if (!m) { errs.push(`${where}: not 'name{labels} value': '${line}'`); return; }
	const [, name, lstr, value] = m;
	if (!NAME.test(name)) errs.push(`${where}: bad metric name '${name}'`);
	if (!NUM.test(value)) errs.push(`${where}: bad value '${value}'`);
	const labels = lstr === undefined ? {} : parseLabels(lstr, where);
	if (labels === null) return;
	const fam = familyOf(name);
	if (fam === null) { errs.push(`${where}: ${name} has no TYPE before it`); return; }
	if (!help.has(fam)) errs.push(`${where}: ${fam} has no HELP before it`);
	if (fam !== current) {
		if (seenFamilies.has(fam)) errs.push(`${where}: family ${fam} appears twice`);
		seenFamilies.add(fam);
		current = fam;
	}
	const key = name + JSON.stringify(Object.entries(labels).sort());
	if (seenSeries.has(key)) errs.push(`${where}: series ${name}{${lstr || ''}} twice`);
	seenSeries.add(key);
	const v = Number(value.replace(/^\+?Inf$/, 'Infinity').replace(/^-Inf$/, '-Infinity'));
	if (type.get(fam) === 'counter' && !(v >= 0 && isFinite(v)))
		errs.push(`${where}: counter ${name} is ${value}`);
	samples.push({ name, fam, labels, value: v, where });
});
for (const name of type.keys())
	if (!help.has(name)) errs.push(`${name} has a TYPE but no HELP`);

/* Histograms: per series (labels without le), buckets in increasing le,
 * non-decreasing counts, +Inf last and equal to _count, and a _sum. */
const hists = new Map();
for (const s of samples) {
	if (type.get(s.fam) !== 'histogram') continue;
	const { le, ...rest } = s.labels;
	const key = s.fam + JSON.stringify(Object.entries(rest).sort());
	if (!hists.has(key)) hists.set(key, { buckets: [], sum: null, count: null });
	const h = hists.get(key);
	if (s.name === s.fam + '_bucket') {
		if (le === undefined) { errs.push(`${s.where}: a bucket without le`); continue; }
		const b = le === '+Inf' ? Infinity : Number(le);
		if (Number.isNaN(b) || !NUM.test(le)) errs.push(`${s.where}: bad le '${le}'`);
		if (!Number.isInteger(s.value) || s.value < 0)
			errs.push(`${s.where}: bucket count ${s.value}`);
		h.buckets.push({ le: b, v: s.value, where: s.where });
	} else if (s.name === s.fam + '_sum') h.sum = s.value;
	else if (s.name === s.fam + '_count') h.count = s.value;
	else errs.push(`${s.where}: ${s.name} in histogram ${s.fam}`);
}
for (const [key, h] of hists) {
	if (h.buckets.length === 0) { errs.push(`${key}: no buckets`); continue; }
	for (let i = 1; i < h.buckets.length; i++) {
		if (!(h.buckets[i].le > h.buckets[i - 1].le))
			errs.push(`${h.buckets[i].where}: le not increasing`);
		if (h.buckets[i].v < h.buckets[i - 1].v)
			errs.push(`${h.buckets[i].where}: bucket count decreases`);
	}
	const last = h.buckets[h.buckets.length - 1];
	if (last.le !== Infinity) errs.push(`${key}: no le="+Inf" bucket last`);
	if (h.sum === null) errs.push(`${key}: no _sum`);
	else if (!(h.sum >= 0)) errs.push(`${key}: _sum ${h.sum}`);
	if (h.count === null) errs.push(`${key}: no _count`);
	else if (last.v !== h.count)
		errs.push(`${key}: +Inf bucket ${last.v} != _count ${h.count}`);
}
if (consistent) {
	const total = {};
	for (const s of samples)
		if (s.name === 'pincer_http_requests_total')
			total[s.labels.route] = (total[s.labels.route] || 0) + s.value;
	const counted = {};
	for (const s of samples)
		if (s.name === 'pincer_http_request_duration_seconds_count')
			counted[s.labels.route] = s.value;
	for (const r of new Set([...Object.keys(total), ...Object.keys(counted)]))
		if (total[r] !== counted[r])
			errs.push(`route ${r}: requests_total ${total[r]} but histogram _count ${counted[r]}`);
}
errs.forEach((e) => console.log(e));
process.exit(errs.length ? 1 : 0);
EOF
check() { node "$T_TMP/check.js" "$@"; }

# The checker catches what it must (each input below breaks one rule).
GOOD='# HELP a_total A.
# TYPE a_total counter
a_total{x="1"} 3
'
good() { printf '%s' "$1" | check; }
# bad REGEX TEXT: the checker refuses TEXT, saying something that matches.
bad() {
	local out
	out=$(printf '%s' "$2" | check) && { echo "accepted"; return 1; }
	printf '%s\n' "$out"
	printf '%s\n' "$out" | grep -Eq -- "$1"
}
ok "checker: accepts a small valid text" good "$GOOD"
ok "checker: rejects a sample without TYPE" bad "b has no TYPE" "$GOOD"'b 1
'
ok "checker: rejects a family split in two" bad "family a_total appears twice" "$GOOD"'# HELP g G.
# TYPE g gauge
g 1
a_total{x="2"} 1
'
ok "checker: rejects a negative counter" bad "counter c_total is -1" '# HELP c_total C.
# TYPE c_total counter
c_total -1
'
ok "checker: rejects bad label syntax" bad "no trailing comma" '# HELP g G.
# TYPE g gauge
g{a="1",} 1
'
H='# HELP h H.
# TYPE h histogram
'
ok "checker: rejects decreasing buckets" bad "bucket count decreases" "$H"'h_bucket{le="1"} 2
h_bucket{le="2"} 1
h_bucket{le="+Inf"} 2
h_sum 1
h_count 2
'
ok "checker: rejects +Inf != _count" bad "\+Inf bucket 2 != _count 3" "$H"'h_bucket{le="1"} 1
h_bucket{le="+Inf"} 2
h_sum 1
h_count 3
'
ok "checker: rejects a histogram without _sum" bad "no _sum" "$H"'h_bucket{le="+Inf"} 2
h_count 2
'

pincer_start '{ "metrics": { "public": true }, "admin_ui": { "dir": "'"$TOP_SRCDIR"'/admin-ui" } }' ||
	{ echo "Bail out! pincerd did not start"; exit 1; }

code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
metrics() { curl -s "$PINCER_URL/metrics"; }
# The value of one series (exact name and labels) in the current /metrics;
# empty if absent.
value_in() { printf '%s\n' "$1" | awk -v k="$2" 'index($0, k " ") == 1 { print $2 }'; }
value() { value_in "$(metrics)" "$1"; }
value_is() { [ "$(value "$1")" = "$2" ]; }
value_gt() { local v; v=$(value "$1"); [ -n "$v" ] && [ "$v" -gt "$2" ]; }

HZ='pincer_http_requests_total{route="healthz",status="200"}'
is "a few requests: /healthz 200" "$(code "$PINCER_URL/healthz")" 200
is "a few requests: /api/v1/nope 404" "$(code "$PINCER_URL/api/v1/nope")" 404
is "a few requests: static /app.js 200" "$(code "$PINCER_URL/app.js")" 200
is "a few requests: /api/v1/version 200" "$(code "$PINCER_URL/api/v1/version")" 200

curl -s -D "$T_TMP/mh" -o "$T_TMP/m1" "$PINCER_URL/metrics"
like "GET /metrics: 200" "$(head -1 "$T_TMP/mh")" '^HTTP/1.1 200 '
is "GET /metrics: Content-Type" \
    "$(sed -n 's/^Content-Type: \(.*\)\r$/\1/Ip' "$T_TMP/mh")" \
    "text/plain; version=0.0.4; charset=utf-8"
ok "GET /metrics: the text passes the strict format checker" \
    check <"$T_TMP/m1"
if command -v promtool >/dev/null 2>&1; then
	ok "GET /metrics: promtool check metrics" \
	    sh -c 'promtool check metrics <"$1"' sh "$T_TMP/m1"
else
	skip "GET /metrics: promtool check metrics" "promtool is not installed"
fi
M=$(cat "$T_TMP/m1")
for fam in pincer_http_requests_total:counter \
    pincer_http_request_duration_seconds:histogram \
    pincer_http_open_connections:gauge pincer_http_requests_in_flight:gauge \
    pincer_ws_sessions:gauge process_resident_memory_bytes:gauge \
    process_start_time_seconds:gauge pincer_build_info:gauge; do
	like "family ${fam%:*} is a ${fam#*:}" "$M" "^# TYPE ${fam%:*} ${fam#*:}\$"
done

# Counts settle once each request's completion is recorded, which may be a
# moment after the client has its answer: poll for the exact value.
ok "/healthz 200 counted once so far" wait_until 3 value_is "$HZ" 1
B=$(value "$HZ")
for i in 1 2 3; do code "$PINCER_URL/healthz" >/dev/null; done
ok "3 more /healthz: the counter goes from $B to exactly $((B + 3))" \
    wait_until 3 value_is "$HZ" $((B + 3))
M=$(metrics)
is "reading /metrics again does not move the /healthz counter" \
    "$(value_in "$M" "$HZ")" $((B + 3))
M1=$(value_in "$M" 'pincer_http_requests_total{route="metrics",status="200"}')
like "/metrics requests count under route=\"metrics\"" "$M1" '^[1-9][0-9]*$'
ok "later /metrics requests: route=\"metrics\" goes up" \
    wait_until 3 value_gt 'pincer_http_requests_total{route="metrics",status="200"}' \
    "$M1"
ok "the 404 on /api/v1/nope: route=\"none\",status=\"404\" is 1" \
    wait_until 3 value_is 'pincer_http_requests_total{route="none",status="404"}' 1
ok "the static file: route=\"static\",status=\"200\" is 1" \
    wait_until 3 value_is 'pincer_http_requests_total{route="static",status="200"}' 1
ok "the version request: route=\"version\",status=\"200\" is 1" \
    wait_until 3 value_is 'pincer_http_requests_total{route="version",status="200"}' 1
ok "only this /metrics request is in flight" \
    wait_until 3 value_is pincer_http_requests_in_flight 1
ok "only this /metrics connection is open" \
    wait_until 3 value_is pincer_http_open_connections 1

M=$(metrics)
printf '%s\n' "$M" >"$T_TMP/m2"
ok "at rest: the text passes the checker, with histogram _count = requests_total" \
    check --consistent <"$T_TMP/m2"
is "the healthz histogram counts the 4 /healthz requests" \
    "$(value_in "$M" 'pincer_http_request_duration_seconds_count{route="healthz"}')" 4
like "the static route has a histogram" "$M" \
    '^pincer_http_request_duration_seconds_bucket\{route="static",le="\+Inf"\} 1$'
S=$(value_in "$M" 'pincer_http_request_duration_seconds_sum{route="healthz"}')
ok "the healthz _sum is a positive number of seconds under 3 ($S)" \
    awk -v s="$S" 'BEGIN { exit !(s > 0 && s < 3) }'
is "pincer_ws_sessions is 0" "$(value_in "$M" pincer_ws_sessions)" 0
RSS=$(value_in "$M" process_resident_memory_bytes)
ok "process_resident_memory_bytes is over 1000000 ($RSS)" \
    awk -v v="$RSS" 'BEGIN { exit !(v > 1000000) }'
ST=$(value_in "$M" process_start_time_seconds)
ok "process_start_time_seconds is within the last minute ($ST)" \
    awk -v v="$ST" -v now="$(date +%s)" 'BEGIN { exit !(v > now - 60 && v <= now + 1) }'
V=$(curl -s "$PINCER_URL/api/v1/version" | node -e \
    'process.stdout.write(JSON.parse(require("fs").readFileSync(0)).version)')
is "pincer_build_info carries the version /api/v1/version says ($V)" \
    "$(value_in "$M" "pincer_build_info{version=\"$V\"}")" 1

pincer_stop
is "pincerd exits 0 on SIGTERM" "$PINCER_EXIT" 0

# Without metrics.public, /metrics needs a credential with the read scope.
pincer_start '{ "auth": { "argon2_memory_kib": 1024, "argon2_iterations": 1 } }' ||
	{ echo "Bail out! second pincerd did not start"; exit 1; }
is "/metrics without a credential: 401" \
    "$(curl -s -o /dev/null -w '%{http_code}' "$PINCER_URL/metrics")" 401
printf 'a long passphrase\n' | "$PINCER_BIN" user add prom --role member \
    --password-stdin --state "$PINCER_STATE_DIR" --config "$PINCER_CONF" >/dev/null
RT=$("$PINCER_BIN" token create --user prom --scope read --name scrape \
    --state "$PINCER_STATE_DIR" --config "$PINCER_CONF" 2>/dev/null)
LT=$("$PINCER_BIN" token create --user prom --scope llm --name other \
    --state "$PINCER_STATE_DIR" --config "$PINCER_CONF" 2>/dev/null)
secret_register "$RT"
secret_register "$LT"
is "/metrics with a read token: 200" "$(curl -s -o /dev/null -w '%{http_code}' \
    -H "Authorization: Bearer $RT" "$PINCER_URL/metrics")" 200
is "/metrics with an llm-only token: 403" "$(curl -s -o /dev/null \
    -w '%{http_code}' -H "Authorization: Bearer $LT" "$PINCER_URL/metrics")" 403
pincer_stop

done_testing
