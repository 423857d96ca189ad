#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Agent turn benchmark: from POST /api/v1/chat to the turn's reply event,
# with a fake provider that answers at once and calls no tool (the C
# upstream of tests/bench/llm_bench), 200 turns one after another:
#  - warm: every turn in the owner's sandbox, already running;
#  - cold: agent.sandbox_scope "conversation", each turn in a new
#    conversation, so each one makes and starts its sandbox;
#  - pincer-agent's peak resident memory over one turn (the same binary
#    and turn, run on the host against the same upstream: GNU time's %M).
# Targets (issue 6): warm p50 <= 10 ms, cold p50 <= 40 ms, pincer-agent
# RSS <= 8 MB. Figures only. Env: PINCER_BIN, BENCH_BIN, BENCH_TURNS (200).
set -uo pipefail
: "${PINCER_BIN:?}" "${BENCH_BIN:?}"
n=${BENCH_TURNS:-200}
top=$(cd "$(dirname "$0")/../.." && pwd)
bindir=$(dirname "$PINCER_BIN")
tmp=$(mktemp -d)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

if [ ! -x "$bindir/pincer-agent" ]; then
	echo "agent: pincer-agent is not built next to pincer; skipped"
	exit 0
fi
"$BENCH_BIN" upstream "$tmp/up.port" & pids+=($!)
for i in $(seq 50); do [ -s "$tmp/up.port" ] && break; sleep 0.1; done
UP=$(cat "$tmp/up.port")

# run SCOPE: a pincerd with that sandbox scope; prints the turns' figures.
run() {
	local scope=$1 st="$tmp/state-$1" log="$tmp/pincerd-$1.log" addr tok pid
	mkdir -m 700 "$st"
	cat >"$tmp/pincer-$scope.json" <<JSON
{ "log": { "requests": false },
  "http": { "rate_limit_rps": 0 },
  "auth": { "argon2_memory_kib": 1024, "argon2_iterations": 1 },
  "sandbox": { "max_running": 64 },
  "agent": { "sandbox_scope": "$scope", "skills_dir": "$top/skills" },
  "llm": { "providers": [ { "name": "up", "kind": "openai-compatible",
      "base_url": "http://127.0.0.1:$UP/v1", "models": ["bench-model"] } ],
    "routes": { "default": ["up/bench-model"] },
    "rate_limit_rpm": 0, "budgets": [] } }
JSON
	pin() { "$PINCER_BIN" --config "$tmp/pincer-$scope.json" --state "$st" "$@"; }
	head -c 18 /dev/urandom | base64 | pin user add bench --role owner \
	    --password-stdin >/dev/null 2>&1
	tok=$(pin token create --user bench --scope chat --name bench 2>/dev/null)
	# Not through pin: a function run in the background is a subshell,
	# and its pid is not pincerd's.
	"$PINCER_BIN" --config "$tmp/pincer-$scope.json" --state "$st" serve \
	    --listen 127.0.0.1:0 2>"$log" &
	pid=$!
	pids+=($pid)
	for i in $(seq 100); do
		addr=$(sed -n 's/.*msg=listening addr=\([^ ]*\).*/\1/p' "$log")
		[ -n "$addr" ] && break
		sleep 0.05
	done
	URL="http://$addr/api/v1/chat"
	if [ "$scope" = owner ]; then
		# The sandbox is made and started by a first turn.
		"$BENCH_BIN" turns "$URL" 1 warmup "Authorization: Bearer $tok" \
		    >/dev/null
		"$BENCH_BIN" turns "$URL" "$n" warm "Authorization: Bearer $tok" |
		    sed 's/^turns/  warm sandbox/'
	else
		"$BENCH_BIN" turns "$URL" "$n" cold "Authorization: Bearer $tok" |
		    sed 's/^turns/  cold (a new sandbox each turn)/'
	fi
	kill "$pid"
	wait "$pid" 2>/dev/null
}

echo "agent turns, POST /api/v1/chat to the reply event ($n turns each):"
run owner
run conversation

mkdir -p "$tmp/data" "$tmp/ws"
rss=$(printf '{"conversation":"rss","text":"hello"}' |
    PINCER_LLM_URL="http://127.0.0.1:$UP/v1/chat/completions" \
    PINCER_AGENT_MODEL=bench-model PINCER_AGENT_DATA="$tmp/data" \
    PINCER_AGENT_WORKDIR="$tmp/ws" PINCER_AGENT_SKILLS="$top/skills" \
    /usr/bin/time -f '%M' "$bindir/pincer-agent" turn 2>&1 >/dev/null | tail -1)
echo "  pincer-agent peak RSS over a turn: $rss kB"
exit 0
