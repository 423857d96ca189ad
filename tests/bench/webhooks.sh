#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Webhook benchmark: signed Slack events (Events API, a DM each, every one
# with its own event id) posted to /hooks/slack/events at a fixed rate by
# tests/bench/hook_bench (open loop, 64 keep-alive connections); each is
# checked (v0 signature, timestamp), stored durably in the inbox (SQLite,
# WAL, synchronous=FULL: the commit is on disk) and only then
# acknowledged. Printed: acknowledgements per second and the time to
# each, p50/p90/p99. The events' turns run meanwhile (an agent with no
# provider answers each batch with an error, sent to a sink): the
# figures include that work, as a real gateway's would.
# Target (issue 7): >= 5,000 events/s with p99 <= 10 ms, on 2 cores.
# Figures only. Env: PINCER_BIN, BENCH_BIN (hook_bench), BENCH_SECONDS (10),
# BENCH_RATES ("1000 5000 8000"), BENCH_CONNS (64), BENCH_STATE_PARENT (a
# folder for the state; /dev/shm puts it on tmpfs, where an fsync costs
# nothing: what the software costs without the disk), BENCH_AGENT_EXTRA
# (more "agent" keys, e.g. ', "max_turns": 1'), BENCH_KEEP (a file to keep
# pincerd's log in).
set -uo pipefail
: "${PINCER_BIN:?}" "${BENCH_BIN:?}"
secs=${BENCH_SECONDS:-10}
rates=${BENCH_RATES:-1000 5000 8000}
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	[ -n "${BENCH_KEEP:-}" ] && cp "$tmp/pincerd.log" "$BENCH_KEEP"
	rm -rf "$tmp" ${st:+"$st"}
}
trap cleanup EXIT

# The sink for replies: the fake platforms (Slack's Web API).
node "$top/tests/fakes/platforms.mjs" --port 0 >"$tmp/plat.out" 2>/dev/null &
pids+=($!)
for i in $(seq 100); do grep -q port "$tmp/plat.out" && break; sleep 0.05; done
PLAT="http://127.0.0.1:$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$tmp/plat.out")"

secret=$(head -c 18 /dev/urandom | base64)
# The state folder: under BENCH_STATE_PARENT when set (another disk or
# tmpfs); cleanup removes it, so it is set (empty) before it exists.
st=""
if ! st=$(mktemp -d "${BENCH_STATE_PARENT:-$tmp}/state.XXXXXX"); then
	echo "webhooks: cannot make a state folder in" \
	    "${BENCH_STATE_PARENT:-$tmp} (BENCH_STATE_PARENT)" >&2
	exit 1
fi
chmod 700 "$st"
cat >"$tmp/pincer.json" <<JSON
{ "log": { "requests": false },
  "http": { "rate_limit_rps": 0, "max_connections": 512 },
  "auth": { "argon2_memory_kib": 1024, "argon2_iterations": 1 },
  "agent": { "skills_dir": "$top/skills" ${BENCH_AGENT_EXTRA:-} },
  "channels": [ { "name": "slack", "kind": "slack", "dm_policy": "open",
    "signing_secret": "slack_signing", "bot_token": "slack_bot",
    "api_base": "$PLAT/slack/api" } ] }
JSON
pin() { "$PINCER_BIN" --config "$tmp/pincer.json" --state "$st" "$@"; }
head -c 18 /dev/urandom | base64 | pin user add bench --role owner \
    --password-stdin >/dev/null 2>&1
printf '%s' "$secret" | pin secret set slack_signing >/dev/null
printf xoxb-fake-bot-token | pin secret set slack_bot >/dev/null
"$PINCER_BIN" --config "$tmp/pincer.json" --state "$st" serve \
    --listen 127.0.0.1:0 2>"$tmp/pincerd.log" &
pid=$!
pids+=($pid)
for i in $(seq 100); do
	addr=$(sed -n 's/.*msg=listening addr=\([^ ]*\).*/\1/p' "$tmp/pincerd.log")
	[ -n "$addr" ] && break
	sleep 0.05
done
if [ -z "$addr" ]; then
	echo "webhooks: pincerd did not start"
	sed 's/^/  /' "$tmp/pincerd.log"
	exit 1
fi
URL="http://$addr/hooks/slack/events"
echo "webhooks: signed Slack events, ${secs}s per rate," \
    "${BENCH_CONNS:-64} connections, state in ${BENCH_STATE_PARENT:-a temporary folder}"
"$BENCH_BIN" "$URL" "$secret" 500 1 16 >/dev/null	# warm up
for r in $rates; do
	printf '  %5s/s offered: ' "$r"
	"$BENCH_BIN" "$URL" "$secret" "$r" "$secs" ${BENCH_CONNS:-64}
	sleep 2
done
printf '  WAL after the runs: %s bytes\n' "$(stat -c %s "$st/pincer.db-wal" 2>/dev/null)"
n=$(sqlite3 "$st/pincer.db" "select count(*) from inbox" 2>/dev/null)
printf '  inbox rows after the runs: %s\n' "$n"
printf '  pincerd RSS after the runs: %s kB\n' \
    "$(awk '/VmRSS/ {print $2}' /proc/$pid/status)"
