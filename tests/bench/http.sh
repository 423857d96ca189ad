#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# HTTP benchmark: wrk (2 threads, keep-alive) against /healthz and a small
# JSON route; pincerd's RSS idle and under load; start to /readyz.
# Beside them, the same figures for what pincer cannot go below: the RSS of
# its libraries doing nothing (floor), and libmicrohttpd alone answering
# the same JSON (mhd_bare). Figures only: nothing here passes or fails.
# Env: PINCER_BIN, BENCH_DIR (the built tests/bench), BENCH_SECONDS
# (default 10), BENCH_CONNECTIONS (default 64).
set -euo pipefail
: "${PINCER_BIN:?}" "${BENCH_DIR:?}"
secs=${BENCH_SECONDS:-10}
conns=${BENCH_CONNECTIONS:-64}
command -v wrk >/dev/null || { echo "bench: wrk is missing (apt-get install wrk)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
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
rss() { awk '/^VmRSS/ {print $2}' "/proc/${1:-$pid}/status" 2>/dev/null || echo 0; }
anon() { awk '/^RssAnon/ {print $2}' /proc/$pid/status; }
sleep 1
echo "pincer $("$PINCER_BIN" version | cut -d' ' -f2) on $(nproc) cores, $(uname -r)"
printf 'idle RSS: %s kB (anonymous %s kB, the rest is shared library pages)\n' "$(rss)" "$(anon)"

peak=0
# run PATH [PID]: wrk against $url$PATH, sampling PID's RSS meanwhile.
run() {
	local path=$1 watch=${2:-$pid} out
	out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency "$url$path" &
	    wpid=$!
	    while kill -0 $wpid 2>/dev/null; do
		r=$(rss "$watch")
		if [ "$r" -gt "$peak" ]; then peak=$r; echo "$peak" >"$tmp/peak"; fi
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
# The metrics request needs a credential unless metrics.public; the bench
# reads RSS from /proc instead.
printf 'RSS under load: peak %s kB\n' "$(cat "$tmp/peak" 2>/dev/null || rss)"
printf 'RSS after load: %s kB\n' "$(rss)"
kill $pid; wait $pid || true

# A free port for the programs that take one.
free_port() {
	local p
	for p in $(shuf -i 20000-60000 -n 20); do
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
	echo 18787
}

echo "libmicrohttpd alone (tests/bench/mhd_bare, 2 workers, its own listener):"
bport=$(free_port)
"$BENCH_DIR/mhd_bare" "$bport" 2 &
bpid=$!
sleep 0.3
url="http://127.0.0.1:$bport"
run / $bpid
kill $bpid; wait $bpid || true

echo "the libraries' memory floor (tests/bench/floor: pincer's libraries, no pincer code):"
"$BENCH_DIR/floor" "$tmp/floor.db"

# Start to /readyz, as a client sees it, on one state folder (the first run
# creates and migrates the database; the rest are restarts).
"$BENCH_DIR/startup" "$PINCER_BIN" "$tmp/pincer.json" "$tmp/state2" "$(free_port)" 50
