#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# HTTP benchmark: wrk (2 threads, keep-alive) against /healthz and a small
# JSON route; pincerd's RSS idle and under load; start to /readyz.
# Figures only: nothing here passes or fails. Env: PINCER_BIN, STARTUP_BIN,
# BENCH_SECONDS (default 10), BENCH_CONNECTIONS (default 64).
set -euo pipefail
: "${PINCER_BIN:?}" "${STARTUP_BIN:?}"
secs=${BENCH_SECONDS:-10}
conns=${BENCH_CONNECTIONS:-64}
command -v wrk >/dev/null || { echo "bench: wrk is missing (apt-get install wrk)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
# The rate limit stays on (its cost is measured) but high enough for wrk;
# request logging stays on, to a file, as in production.
cat >"$tmp/pincer.json" <<JSON
{ "http": { "rate_limit_rps": 100000000, "rate_limit_burst": 100000000,
            "max_connections": 1024 } }
JSON
"$PINCER_BIN" serve --config "$tmp/pincer.json" --state "$tmp/state" \
    --listen 127.0.0.1:0 2>"$tmp/pincerd.log" &
pid=$!
for _ in $(seq 100); do
	addr=$(sed -n 's/.*msg=listening addr=\([^ ]*\).*/\1/p' "$tmp/pincerd.log")
	[ -n "$addr" ] && break
	sleep 0.05
done
url="http://$addr"
curl -fsS "$url/readyz" >/dev/null
rss() { awk '/^VmRSS/ {print $2}' /proc/$pid/status; }
anon() { awk '/^RssAnon/ {print $2}' /proc/$pid/status; }
sleep 1
echo "pincer $("$PINCER_BIN" version | cut -d' ' -f2) on $(nproc) cores, $(uname -r)"
printf 'idle RSS: %s kB (anonymous %s kB, the rest is shared library pages)\n' "$(rss)" "$(anon)"

peak=0
run() {
	local path=$1 out
	out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency "$url$path" &
	    wpid=$!
	    while kill -0 $wpid 2>/dev/null; do
		r=$(rss); [ "$r" -gt "$peak" ] && peak=$r && echo "$peak" >"$tmp/peak"
		sleep 0.2
	    done
	    wait $wpid)
	printf '%-18s %10s req/s   p50 %-9s p99 %-9s (wrk -t2 -c%s -d%ss)\n' "$path" \
	    "$(awk '/^Requests\/sec/ {print $2}' <<<"$out")" \
	    "$(awk '$1=="50%" {print $2}' <<<"$out")" \
	    "$(awk '$1=="99%" {print $2}' <<<"$out")" "$conns" "$secs"
	grep -E 'Non-2xx|Socket errors' <<<"$out" || true
}
run /healthz
run /api/v1/version
printf 'RSS under load: peak %s kB\n' "$(cat "$tmp/peak" 2>/dev/null || rss)"
printf 'RSS after load: %s kB\n' "$(rss)"
kill $pid; wait $pid || true

# Start to /readyz on a fresh state folder each run is the cold case; the
# same folder after the first run is the usual restart.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 18787)
"$STARTUP_BIN" "$PINCER_BIN" "$tmp/pincer.json" "$tmp/state2" "$port" 50
