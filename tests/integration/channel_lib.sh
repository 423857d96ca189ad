# SPDX-License-Identifier: MIT
# channel_lib.sh: what the channel tests share, sourced after lib.sh: the
# fake LLM provider (the real pincer-agent answers "echo: TEXT" through
# it, in a real sandbox), the fake platforms ($PLAT), and pincerd with a
# channels config. Owner "alice" exists before pincerd starts.
. "$TOP_SRCDIR/tests/integration/sandbox_lib.sh"

# The fake platforms' WebSocket server is the e2e tests' ws package.
if [ ! -d "$TOP_SRCDIR/tests/e2e/node_modules/ws" ]; then
	# `make distcheck` builds from a tarball without node_modules.
	echo "1..0 # SKIP node_modules missing: run npm ci in tests/e2e"
	exit 0
fi

if [ ! -x "$TOP_BUILDDIR/pincer-agent" ]; then
	ok "pincer-agent is built next to pincer" false
	done_testing
fi

# chan_start CHANNELS [MORE]: CHANNELS is the JSON array of the
# "channels" option; MORE, other top-level members ("k": v, …).
chan_start() {
	local channels=$1 more=${2:+, $2}
	if [ -z "${PLAT:-}" ]; then
		platform_fake_start ||
		    { ok "the fake platforms start" false; return 1; }
	fi
	if [ -z "${FAKE:-}" ]; then
		FAKE_LLM_NO_TOOLS=1 llm_fake_start "" ||
		    { ok "the fake LLM provider starts" false; return 1; }
	fi
	CHAN_CONF="{ $FAST, \"agent\": { \"skills_dir\": \"$TOP_SRCDIR/skills\" },
  \"llm\": { \"providers\": [ { \"name\": \"oa\", \"kind\": \"openai-compatible\",
	\"base_url\": \"$FAKE/v1\" } ],
	\"routes\": { \"default\": [\"oa/gpt-4o\"] }, \"rate_limit_rpm\": 0 },
  \"channels\": $channels $more }"
	pincer_start "$CHAN_CONF" || return 1
	if [ -z "${CHAN_OWNER:-}" ]; then
		printf 'a long passphrase\n' | pcli user add alice --role owner \
		    --password-stdin >/dev/null 2>&1
		CHAN_OWNER=alice
	fi
}
# chan_crash: pincerd (and its sandboxes) killed with SIGKILL, then
# started again on the same state and config; PINCER_URL, PINCER_LOG
# follow.
chan_crash() {
	kill -KILL "$PINCER_PID"
	wait "$PINCER_PID" 2>/dev/null
	pkill -KILL -f "pincer-sandbox --dir $PINCER_STATE_DIR" 2>/dev/null
	T_DAEMONS=$((T_DAEMONS + 1))
	PINCER_LOG="$T_LOGDIR/$T_NAME.$T_DAEMONS.pincerd.log"
	: >"$PINCER_LOG"
	"$PINCER_BIN" serve --config "$PINCER_CONF" \
	    --state "$PINCER_STATE_DIR" --listen 127.0.0.1:0 \
	    2>>"$PINCER_LOG" &
	PINCER_PID=$!
	T_PIDS="$T_PIDS $PINCER_PID"
	wait_until 10 grep -q 'msg=listening' "$PINCER_LOG" || return 1
	PINCER_ADDR=$(_t_addr "$PINCER_LOG")
	PINCER_URL="http://$PINCER_ADDR"
	wait_until 10 curl -fsS -o /dev/null "$PINCER_URL/readyz"
}
# chan_secret NAME VALUE: `pincer secret set NAME` (registered: a value
# that must never show in a log).
chan_secret() {
	secret_register "$2"
	printf '%s' "$2" | pcli secret set "$1" >/dev/null
}
# llm_script JSON: the fake LLM's next answers (tests/fakes/llm-provider.mjs),
# by a file (a long reply is longer than an argument may be).
llm_script() {
	printf '%s' "$1" >"$T_TMP/llm_script.json"
	curl -s -o /dev/null -X POST "$FAKE/_fake/script" \
	    -H 'Content-Type: application/json' \
	    --data-binary @"$T_TMP/llm_script.json"
}
# chan_sql SQL: a query on pincerd's database (read-only use).
chan_sql() { sqlite3 -cmd '.timeout 5000' "$PINCER_STATE_DIR/pincer.db" "$1"; }
# chan_wait_calls PLATFORM N [SECS]: until N calls are recorded.
chan_wait_calls() { wait_until "${3:-30}" _chan_ncalls "$1" "$2"; }
_chan_ncalls() { [ "$(plat_calls "$1" | jq length)" -ge "$2" ]; }
