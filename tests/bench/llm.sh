#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# LLM proxy benchmark, all in one run on one machine, against one fake
# upstream (tests/bench/llm_bench upstream, C):
#  - added latency: the same open-loop load (llm_bench load: requests at
#    fixed times, latency from the scheduled time) straight to the
#    upstream, through pincerd, and through Portkey's open-source gateway
#    (npm @portkey-ai/gateway); rounds interleaved so noise hits all
#    three alike; the median over rounds of each percentile; "added" is
#    proxy minus direct;
#  - time to the first event of a stream, the same three ways;
#  - resident memory with BENCH_STREAMS (1000) streams held open.
# Targets: added p50 <= 0.2 ms and p99 <= 1 ms at 5,000 requests/s; RSS
# <= 40 MB with 1,000 open streams; faster than Portkey on every figure.
# Figures only. Env: PINCER_BIN, BENCH_BIN, BENCH_SECONDS (5),
# BENCH_ROUNDS (3), BENCH_RATES ("1000 5000"), BENCH_STREAMS (1000).
set -uo pipefail
: "${PINCER_BIN:?}" "${BENCH_BIN:?}"
secs=${BENCH_SECONDS:-5}
rounds=${BENCH_ROUNDS:-3}
rates=${BENCH_RATES:-1000 5000}
nstreams=${BENCH_STREAMS:-1000}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n 8192

"$BENCH_BIN" upstream "$tmp/up.port" & UPPID=$!
pids+=($UPPID)
for i in $(seq 50); do [ -s "$tmp/up.port" ] && break; sleep 0.1; done
UP=$(cat "$tmp/up.port")
DIRECT="http://127.0.0.1:$UP/v1/chat/completions"

# pincerd: no request log, no rate or budget limits (they are not what
# is measured), the upstream as an openai-compatible provider.
mkdir -m 700 "$tmp/state"
cat >"$tmp/pincer.json" <<EOF
{ "log": { "requests": false },
  "http": { "rate_limit_rps": 0, "max_connections": 8192 },
  "auth": { "argon2_memory_kib": 1024, "argon2_iterations": 1 },
  "llm": { "providers": [ { "name": "up", "kind": "openai-compatible",
      "base_url": "http://127.0.0.1:$UP/v1", "models": ["bench-model"] } ],
    "routes": { "default": ["up/bench-model"] },
    "rate_limit_rpm": 0, "budgets": [] } }
EOF
pin() { "$PINCER_BIN" --config "$tmp/pincer.json" --state "$tmp/state" "$@"; }
head -c 18 /dev/urandom | base64 | pin user add bench --role owner \
    --password-stdin >/dev/null 2>&1
TOK=$(pin token create --user bench --scope llm --name bench 2>/dev/null)
"$PINCER_BIN" --config "$tmp/pincer.json" --state "$tmp/state" serve \
    --listen 127.0.0.1:0 2>"$tmp/pincerd.log" & PPID_=$!
pids+=($PPID_)
for i in $(seq 100); do
	ADDR=$(sed -n 's/.*msg=listening addr=\([^ ]*\).*/\1/p' "$tmp/pincerd.log")
	[ -n "$ADDR" ] && break
	sleep 0.05
done
PROXY="http://$ADDR/llm/v1/chat/completions"
AUTH="Authorization: Bearer $TOK"

# Portkey's gateway, from npm (tests/bench/package-lock.json), one Node
# process as its README runs it.
PK=""
PKPID=""
if [ ! -d "$here/node_modules/@portkey-ai/gateway" ]; then
	(cd "$here" && npm ci --no-audit --no-fund --ignore-scripts \
	    >"$tmp/npm.log" 2>&1) || echo "portkey: npm ci failed (see npm log); skipped"
fi
PKJS="$here/node_modules/@portkey-ai/gateway/build/start-server.js"
if [ -f "$PKJS" ]; then
	PKPORT=$((20000 + RANDOM % 20000))
	# The shim works around Portkey's streams failing on Node 20
	# (portkey-fetch-shim.mjs says how).
	NODE_ENV=production node --import "$here/portkey-fetch-shim.mjs" \
	    "$PKJS" --port=$PKPORT --headless \
	    >"$tmp/portkey.log" 2>&1 & PKPID=$!
	pids+=($PKPID)
	for i in $(seq 100); do
		curl -s -o /dev/null "http://127.0.0.1:$PKPORT/" && break
		sleep 0.1
	done
	PK="http://127.0.0.1:$PKPORT/v1/chat/completions"
	PKH=("x-portkey-provider: openai"
	    "x-portkey-custom-host: http://127.0.0.1:$UP/v1"
	    "Authorization: Bearer sk-bench")
fi

ok=$(curl -s -o /dev/null -w '%{http_code}' "$PROXY" -H "$AUTH" \
    -d '{"model":"default","messages":[{"role":"user","content":"x"}]}')
if [ "$ok" != 200 ]; then
	echo "pincer: the LLM proxy did not answer (status $ok)"
	exit 1
fi

# field LINE NAME: the number after NAME= in a report line.
field() { sed -n "s/.* $2=\([0-9.]*\).*/\1/p" <<<"$1"; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
# Each round starts on a quiet machine: a gateway that could not keep up
# (Portkey at 5,000/s) works off its backlog for seconds after its round,
# and would otherwise be measured as the next one's noise.
ticks() { local p s=0; for p in "$@"; do
	[ -r "/proc/$p/stat" ] && s=$((s + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
	done; echo "$s"; }
settle() {
	local i a b
	for i in $(seq 60); do
		a=$(ticks "$UPPID" "$PPID_" $PKPID)
		sleep 0.3
		b=$(ticks "$UPPID" "$PPID_" $PKPID)
		[ $((b - a)) -le 1 ] && return
	done
}
run() {	# run NAME RATE: one round; appends p50 p99 to $tmp/NAME.RATE
	local out
	settle
	case $1 in
	direct) out=$("$BENCH_BIN" load "$DIRECT" "$2" "$secs" 32) ;;
	pincer) out=$("$BENCH_BIN" load "$PROXY" "$2" "$secs" 32 "$AUTH") ;;
	portkey) out=$("$BENCH_BIN" load "$PK" "$2" "$secs" 32 "${PKH[@]}") ;;
	esac
	echo "$(field "$out" p50) $(field "$out" p99) $(field "$out" rate) $(field "$out" errors)" \
	    >>"$tmp/$1.$2"
}
targets="direct pincer"
[ -n "$PK" ] && targets="$targets portkey"

echo "warming up"
for t in $targets; do run "$t" 500 >/dev/null; rm -f "$tmp/$t.500"; done
for r in $rates; do
	for i in $(seq "$rounds"); do
		for t in $targets; do run "$t" "$r"; done
	done
done

printf '\n%-8s %-8s %10s %10s %10s %11s %11s\n' rate via p50_us p99_us \
    achieved added_p50 added_p99
for r in $rates; do
	d50=$(cut -d' ' -f1 "$tmp/direct.$r" | median)
	d99=$(cut -d' ' -f2 "$tmp/direct.$r" | median)
	for t in $targets; do
		p50=$(cut -d' ' -f1 "$tmp/$t.$r" | median)
		p99=$(cut -d' ' -f2 "$tmp/$t.$r" | median)
		ach=$(cut -d' ' -f3 "$tmp/$t.$r" | median)
		err=$(awk '{ s += $4 } END { print s }' "$tmp/$t.$r")
		if [ "$t" = direct ]; then a50=-; a99=-; else
			a50=$(awk -v a="$p50" -v b="$d50" 'BEGIN { printf "%.0f", a - b }')
			a99=$(awk -v a="$p99" -v b="$d99" 'BEGIN { printf "%.0f", a - b }')
		fi
		printf '%-8s %-8s %10s %10s %10s %11s %11s%s\n' "$r" "$t" "$p50" \
		    "$p99" "$ach" "$a50" "$a99" \
		    "$([ "$err" != 0 ] && echo "  errors=$err")"
	done
done
echo "(median of $rounds rounds of ${secs} s each; microseconds)"

echo
echo "time to the first event of a stream (500 one after another):"
for i in 1 2; do
	"$BENCH_BIN" ttfb "$DIRECT" 250 | sed 's/^/  direct:  /'
	"$BENCH_BIN" ttfb "$PROXY" 250 "$AUTH" | sed 's/^/  pincer:  /'
	[ -n "$PK" ] && "$BENCH_BIN" ttfb "$PK" 250 "${PKH[@]}" |
	    sed 's/^/  portkey: /'
done

rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
held() {	# held NAME PID URL HEADERS...
	local name=$1 pid=$2 url=$3 before during i
	shift 3
	before=$(rss "$pid")
	: >"$tmp/streams.out"
	"$BENCH_BIN" streams "$url" "$nstreams" 2 "$@" "x-bench-hold: 1" \
	    >"$tmp/streams.out" 2>&1 &
	local sp=$!
	for i in $(seq 300); do
		grep -q '^streams:' "$tmp/streams.out" && break
		sleep 0.1
	done
	sleep 0.5
	during=$(rss "$pid")
	wait "$sp"
	printf '  %-8s VmRSS %6s kB idle, %6s kB with %s\n' "$name" \
	    "$before" "$during" "$(sed -n 's/^streams: //p' "$tmp/streams.out")"
}
echo
echo "memory with $nstreams streams held open:"
held pincerd "$PPID_" "$PROXY" "$AUTH"
[ -n "$PKPID" ] && held portkey "$PKPID" "$PK" "${PKH[@]}"
exit 0
