#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Snapshot benchmark: a real pincerd with the local object store, a
# sandbox filled with one of three workloads, then BENCH_RUNS times:
#  - snapshot: POST …/snapshots until its 201 (pack, SHA-256, upload),
#    and of that, how long the sandbox was asleep for it (pack_ms);
#  - the archive's size against the bytes packed;
#  - restore into a new sandbox (fetch, check, unpack, swap, start);
#  - fork into 4 sandboxes.
# Workloads: "files" (BENCH_FILES small files of 1-4 KiB, a node_modules),
# "text" (BENCH_MB MiB that compress, like logs and source), "random"
# (BENCH_MB MiB that do not, like media). Figures only: medians.
# Env: PINCER_BIN, BENCH_RUNS (5), BENCH_MB (64), BENCH_FILES (10000),
# BENCH_LEVEL (snapshots.compression_level, 3).
set -euo pipefail
: "${PINCER_BIN:?}"
runs=${BENCH_RUNS:-5}
mb=${BENCH_MB:-64}
files=${BENCH_FILES:-10000}
level=${BENCH_LEVEL:-3}
tmp=$(mktemp -d)
pid=''
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -m 700 "$tmp/state"
pin() { "$PINCER_BIN" --state "$tmp/state" "$@"; }
head -c 18 /dev/urandom | base64 | pin user add bench --role owner \
    --password-stdin >/dev/null
tok=$(pin token create --user bench --scope sandbox --name bench \
    --ttl 1d 2>/dev/null)
PINCER_HTTP_RATE_LIMIT_RPS=0 PINCER_SNAPSHOTS_KEEP=0 \
    PINCER_SNAPSHOTS_COMPRESSION_LEVEL="$level" PINCER_SANDBOX_MAX_RUNNING=64 \
    "$PINCER_BIN" serve --state "$tmp/state" --listen 127.0.0.1:0 \
    2>"$tmp/pincerd.log" &
pid=$!
addr=''
for _ in $(seq 200); do
	addr=$(sed -n 's/.*msg=listening addr=\([^ ]*\).*/\1/p' \
	    "$tmp/pincerd.log")
	[ -n "$addr" ] && break
	sleep 0.05
done
[ -n "$addr" ] || { cat "$tmp/pincerd.log" >&2; exit 1; }
url="http://$addr/api/v1"

# call METHOD PATH [JSON]: the body on stdout; seconds taken in $took.
call() {
	local out
	out=$(curl -sS --max-time 3600 -X "$1" -H "Authorization: Bearer $tok" \
	    -H 'Content-Type: application/json' ${3:+--data-binary "$3"} \
	    -w '\n%{http_code} %{time_total}' "$url$2")
	took=${out##* }
	code=$(printf '%s' "$out" | tail -1 | cut -d' ' -f1)
	body=$(printf '%s' "$out" | sed '$d')
	case "$code" in 2*) ;; *) echo "$1 $2: $code $body" >&2; exit 1 ;; esac
}
field() { node -e 'process.stdout.write(String(JSON.parse(process.argv[1])[process.argv[2]]))' "$1" "$2"; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

fill() {
	case "$1" in
	files) echo "i=0; while [ \$i -lt $files ]; do d=/workspace/m/\$((i / 100)); mkdir -p \$d; head -c \$((1024 + i % 3072)) /usr/bin/dash >\$d/f\$i.js; i=\$((i + 1)); done" ;;
	text) echo "while [ \$(stat -c %s /workspace/t 2>/dev/null || echo 0) -lt $((mb << 20)) ]; do cat /usr/share/common-licenses/* /usr/include/*.h 2>/dev/null >>/workspace/t; done" ;;
	random) echo "head -c $((mb << 20)) /dev/urandom >/workspace/r" ;;
	esac
}

printf '%-7s %9s %9s %9s %9s %11s %10s %10s\n' workload files MiB \
    archive snap_s asleep_ms restore_s fork4_s
n=0
for w in files text random; do
	n=$((n + 1))
	call POST /sandboxes "{\"name\":\"w$n\"}"
	cmd=$(fill "$w")
	call POST "/sandboxes/w$n/exec" \
	    "$(node -e 'process.stdout.write(JSON.stringify({cmd: ["sh", "-c", process.argv[1]], timeout_ms: 3600000}))' "$cmd")"
	: >"$tmp/snap" >"$tmp/pack" >"$tmp/restore" >"$tmp/fork"
	for r in $(seq "$runs"); do
		call POST "/sandboxes/w$n/snapshots"
		echo "$took" >>"$tmp/snap"
		echo "$(field "$body" pack_ms)" >>"$tmp/pack"
		id=$(field "$body" id)
		nfiles=$(field "$body" files)
		bytes=$(field "$body" bytes)
		size=$(field "$body" size)
		call POST "/snapshots/$id/restore" "{\"sandbox\":\"w$n-r$r\",\"create\":true}"
		echo "$took" >>"$tmp/restore"
		call POST "/snapshots/$id/fork" "{\"count\":4,\"prefix\":\"w$n-f$r\"}"
		echo "$took" >>"$tmp/fork"
		for s in "w$n-r$r" "w$n-f$r-1" "w$n-f$r-2" "w$n-f$r-3" "w$n-f$r-4"; do
			call DELETE "/sandboxes/$s"
		done
		call DELETE "/snapshots/$id"
	done
	printf '%-7s %9s %9.1f %8.0f%% %9.2f %11s %10.2f %10.2f\n' "$w" \
	    "$nfiles" "$(awk "BEGIN { print $bytes / 1048576 }")" \
	    "$(awk "BEGIN { print 100 * $size / ($bytes + 1) }")" \
	    "$(median <"$tmp/snap")" "$(median <"$tmp/pack")" \
	    "$(median <"$tmp/restore")" "$(median <"$tmp/fork")"
	call DELETE "/sandboxes/w$n"
done
echo "(archive: its size as a share of the bytes packed; asleep_ms: how long"
echo " the sandbox was asleep for the snapshot; zstd level $level, $runs runs)"
