# SPDX-License-Identifier: MIT
# cli.sh: the `pincer` command line: help, version, bad commands and flags,
# `config options`, and the `pincerd` name, which serves.
. "$TOP_SRCDIR/tests/integration/lib.sh"

# The environment of the caller must not change what these commands do.
unset PINCER_CONFIG PINCER_STATE PINCER_LISTEN

# run CMD...: OUT, ERR (file contents) and RC of CMD, bounded in time.
run() {
	timeout 10 "$@" >"$T_TMP/run.out" 2>"$T_TMP/run.err"
	RC=$?
	OUT=$(cat "$T_TMP/run.out")
	ERR=$(cat "$T_TMP/run.err")
}

# --- help ------------------------------------------------------------------
run "$PINCER_BIN" --help
is "pincer --help exits 0" "$RC" 0
like "pincer --help prints the usage on stdout" "$OUT" '^usage: pincer '
for c in serve config doctor version help; do
	like "pincer --help lists the $c command on a line of its own" \
	    "$OUT" "^  $c( |\$)"
done
HELP=$OUT
run "$PINCER_BIN" help
is "pincer help exits 0 with the same text as --help" "$RC:$OUT" "0:$HELP"
run "$PINCER_BIN"
is "pincer with no command exits 2" "$RC" 2
like "pincer with no command prints the usage on stderr" "$ERR" '^usage: pincer '

# --- version ---------------------------------------------------------------
run "$PINCER_BIN" version
is "pincer version exits 0" "$RC" 0
like "pincer version prints \"pincer X.Y.Z\"" "$OUT" '^pincer [0-9]+\.[0-9]+\.[0-9]+$'
VERSION=$OUT
run "$PINCER_BIN" --version
is "pincer --version prints the same as pincer version" "$RC:$OUT" "0:$VERSION"

# --- bad commands and flags ------------------------------------------------
run "$PINCER_BIN" frobnicate
is "an unknown command exits 2" "$RC" 2
like "an unknown command is named on stderr" "$ERR" 'unknown command.*frobnicate'
is "an unknown command prints nothing on stdout" "$OUT" ""

run "$PINCER_BIN" --frobnicate version
is "an unknown flag exits 2" "$RC" 2
like "an unknown flag is named on stderr" "$ERR" 'unknown flag.*--frobnicate'
is "an unknown flag prints nothing on stdout" "$OUT" ""

run "$PINCER_BIN" version --listen=127.0.0.1:1
is "a flag written --name=value (not supported) exits 2" "$RC" 2

for f in --config --state --listen; do
	run "$PINCER_BIN" version "$f"
	is "$f without its value exits 2" "$RC" 2
	like "$f without its value says so on stderr" "$ERR" "$f.*(needs|requires|missing).*value"
done

run "$PINCER_BIN" serve extra --config "$T_TMP/none.json"
is "pincer serve with an extra argument exits 2" "$RC" 2
like "pincer serve with an extra argument names it" "$ERR" 'extra'

run "$PINCER_BIN" config frobnicate
is "pincer config with an unknown subcommand exits 2" "$RC" 2
like "pincer config with an unknown subcommand prints its usage" "$ERR" 'check[|]options'

# --- config options --------------------------------------------------------
run "$PINCER_BIN" config options
is "pincer config options exits 0" "$RC" 0
OPTS=$OUT
printf '%s\n' "$OPTS" >"$T_TMP/options.txt"

# Every option name, each followed by its own "env:" in its paragraph.
# Prints "name env" per option; an option without env prints "name -".
node -e '
	const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n");
	let cur = null, env = null;
	const out = [];
	const flush = () => { if (cur !== null) out.push(cur + " " + (env || "-")); };
	for (const l of lines) {
		if (/^[a-z_][a-z0-9_.]*$/.test(l)) { flush(); cur = l; env = null; continue; }
		const m = /env: (PINCER_[A-Z0-9_]+)/.exec(l);
		if (m && cur !== null && env === null) env = m[1];
	}
	flush();
	console.log(out.join("\n"));
' "$T_TMP/options.txt" >"$T_TMP/options.pairs"
PAIRS=$(cat "$T_TMP/options.pairs")
NOPT=$(grep -c . "$T_TMP/options.pairs")
ok "pincer config options lists options ($NOPT)" test "$NOPT" -ge 18
unlike "every option listed has its env var" "$PAIRS" ' -$'

# The ones the documentation names, with the env var it gives them.
want_pairs() {
	local name env missing=""
	while read -r name env; do
		grep -qx -- "$name $env" "$T_TMP/options.pairs" ||
		    missing="$missing $name=$env"
	done <<-'EOF'
	listen PINCER_LISTEN
	state_dir PINCER_STATE
	log.level PINCER_LOG_LEVEL
	log.format PINCER_LOG_FORMAT
	log.requests PINCER_LOG_REQUESTS
	http.max_header_bytes PINCER_HTTP_MAX_HEADER_BYTES
	http.max_body_bytes PINCER_HTTP_MAX_BODY_BYTES
	http.max_connections PINCER_HTTP_MAX_CONNECTIONS
	http.header_timeout_s PINCER_HTTP_HEADER_TIMEOUT_S
	http.idle_timeout_s PINCER_HTTP_IDLE_TIMEOUT_S
	http.rate_limit_rps PINCER_HTTP_RATE_LIMIT_RPS
	http.rate_limit_burst PINCER_HTTP_RATE_LIMIT_BURST
	http.trusted_proxies PINCER_HTTP_TRUSTED_PROXIES
	http.threads PINCER_HTTP_THREADS
	http.shutdown_timeout_s PINCER_HTTP_SHUTDOWN_TIMEOUT_S
	ws.max_message_bytes PINCER_WS_MAX_MESSAGE_BYTES
	admin_ui.dir PINCER_ADMIN_UI_DIR
	store.busy_timeout_ms PINCER_STORE_BUSY_TIMEOUT_MS
	EOF
	[ -z "$missing" ] || { echo "missing or wrong:$missing"; return 1; }
}
ok "config options: each documented option with its env var (http.max_body_bytes is PINCER_HTTP_MAX_BODY_BYTES, state_dir is PINCER_STATE)" want_pairs

# Every key of deploy/pincer.example.json is an option that is listed.
example_keys() {
	node -e '
		const o = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
		// JSON-valued options (llm.routes) are leaves, not sections.
		const leaf = new Set(["llm.routes"]);
		const walk = (v, p) => (v && typeof v === "object" && !Array.isArray(v) && !leaf.has(p))
		    ? Object.entries(v).flatMap(([k, x]) => walk(x, p ? p + "." + k : k)) : [p];
		console.log(walk(o, "").join("\n"));
	' "$TOP_SRCDIR/deploy/pincer.example.json"
}
example_listed() {
	local k missing=""
	for k in $(example_keys); do
		grep -q "^$k " "$T_TMP/options.pairs" || missing="$missing $k"
	done
	[ -n "$(example_keys)" ] && [ -z "$missing" ] ||
	    { echo "not listed:$missing"; return 1; }
}
ok "every key of deploy/pincer.example.json is listed by config options" example_listed

# --- pincerd -----------------------------------------------------------------
PINCERD="$TOP_BUILDDIR/pincerd"
ok "\$TOP_BUILDDIR/pincerd is a symlink" test -L "$PINCERD"

run "$PINCERD" --help
is "pincerd --help exits 0" "$RC" 0
like "pincerd --help prints the usage" "$OUT" '^usage: pincer '
run "$PINCERD" --version
is "pincerd --version prints the version" "$RC:$OUT" "0:$VERSION"

# By hand: the pincerd name with no command serves.
printf '{ "log": { "level": "info" } }\n' >"$T_TMP/pincerd.json"
D_LOG="$T_LOGDIR/$T_NAME.pincerd-name.pincerd.log"
: >"$D_LOG"
"$PINCERD" --listen 127.0.0.1:0 --state "$T_TMP/pincerd-state" \
    --config "$T_TMP/pincerd.json" 2>>"$D_LOG" &
D_PID=$!
T_PIDS="$T_PIDS $D_PID"
d_up() { grep -q 'msg=listening' "$D_LOG" || ! kill -0 "$D_PID"; }
wait_until 10 d_up
D_ADDR=$(sed -n 's/.*msg=listening addr=\([^ ]*\).*/\1/p' "$D_LOG" | head -1)
like "pincerd (no command) logs msg=listening on 127.0.0.1" "$D_ADDR" '^127\.0\.0\.1:[0-9]+$'
CODE=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "http://$D_ADDR/healthz" 2>&1)
is "pincerd answers /healthz with 200" "$CODE" 200
kill -TERM "$D_PID" 2>/dev/null
d_down() { ! kill -0 "$D_PID"; }
wait_until 15 d_down
if kill -0 "$D_PID" 2>/dev/null; then
	diag "pincerd did not stop on SIGTERM"
	kill -KILL "$D_PID"
fi
wait "$D_PID"
is "pincerd exits 0 on SIGTERM" "$?" 0
ok "pincerd logs msg=stopped" grep -q 'msg=stopped' "$D_LOG"

done_testing
