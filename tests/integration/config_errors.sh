# SPDX-License-Identifier: MIT
# config_errors.sh: `pincer config check` on good and bad files, errors that
# name the key and what it expects, the environment, and `pincer serve`
# with a bad config, with only environment variables, and flags over env.
. "$TOP_SRCDIR/tests/integration/lib.sh"

unset PINCER_CONFIG PINCER_STATE PINCER_LISTEN PINCER_HTTP_MAX_BODY_BYTES

# run CMD...: OUT, ERR and RC of CMD, bounded in time.
run() {
	timeout 10 "$@" >"$T_TMP/run.out" 2>"$T_TMP/run.err"
	RC=$?
	OUT=$(cat "$T_TMP/run.out")
	ERR=$(cat "$T_TMP/run.err")
}

# fails DESC REGEX: the last run exited 1 and its stderr (lines joined by
# spaces) matches REGEX.
fails() {
	like "$1" "$RC $(printf '%s' "$ERR" | tr '\n' ' ')" "^1 .*$2"
}

# conf NAME TEXT: write a config file, print its path.
conf() {
	printf '%s\n' "$2" >"$T_TMP/$1.json"
	printf '%s' "$T_TMP/$1.json"
}

# check NAME TEXT: pincer config check on that text.
check() {
	F=$(conf "$1" "$2")
	run "$PINCER_BIN" config check --config "$F"
}

# --- valid -------------------------------------------------------------------
check valid '{ "listen": "127.0.0.1:8787", "log": { "level": "debug", "format": "json" },
  "http": { "max_body_bytes": 2048, "threads": 4, "trusted_proxies": ["10.0.0.0/8", "::1"] },
  "ws": { "max_message_bytes": 4096 }, "store": { "busy_timeout_ms": 100 } }'
is "a valid file: exit 0" "$RC" 0
is "a valid file: \"FILE: OK\" on stdout" "$OUT" "$F: OK"
is "a valid file: nothing on stderr" "$ERR" ""
check empty '{}'
is "an empty object is valid (all defaults)" "$RC:$OUT" "0:$F: OK"

# --- one error each ----------------------------------------------------------
check unknown '{"http":{"max_bodyy":1}}'
is "an unknown key: exit 1" "$RC" 1
like "an unknown key: the message names http.max_bodyy" "$ERR" "$F: http\.max_bodyy: unknown option"
is "an invalid file: nothing on stdout" "$OUT" ""

check unknown_top '{"listen_addr":"127.0.0.1:1"}'
fails "an unknown top-level key is named" "listen_addr: unknown option"

check type '{"http":{"max_body_bytes":"big"}}'
is "a wrong type: exit 1" "$RC" 1
like "a wrong type: names http.max_body_bytes and says it expects an integer" \
    "$ERR" 'http\.max_body_bytes: expected an integer'

check float '{"http":{"max_body_bytes":1.5}}'
fails "a number that is not an integer is refused" 'http\.max_body_bytes: expected an integer'

# --- channels --------------------------------------------------------------------
check ch_ok '{"channels": [{"name": "tg", "kind": "telegram", "bot_token": "t",
  "webhook_secret": "w"}, {"name": "home", "kind": "generic", "secret": "s",
  "callback_url": "https://ha.example/hook"}]}'
is "channels: a valid list" "$RC:$OUT" "0:$F: OK"
check ch_obj '{"channels": {"name": "x"}}'
fails "channels: not a list" 'channels: expected JSON: an array'
check ch_name '{"channels": [{"kind": "telegram"}]}'
fails "channels: a channel without a name" 'channels: each needs a "name"'
check ch_api '{"channels": [{"name": "api", "kind": "generic"}]}'
fails "channels: the name api is the API channel's" 'not "api"'
check ch_kind '{"channels": [{"name": "x", "kind": "irc"}]}'
fails "channels: an unknown kind, with the known ones" 'channels\.x\.kind: one of slack, telegram, whatsapp, discord, generic'
check ch_pol '{"channels": [{"name": "x", "kind": "generic", "secret": "s",
  "callback_url": "http://h/", "dm_policy": "anyone"}]}'
fails "channels: an unknown dm_policy" 'channels\.x\.dm_policy: one of pairing, allowlist, open, disabled'
check ch_allow '{"channels": [{"name": "x", "kind": "generic", "secret": "s",
  "callback_url": "http://h/", "allow": "U1"}]}'
fails "channels: allow must be a list" 'channels\.x\.allow: a list'
check ch_base '{"channels": [{"name": "x", "kind": "generic", "secret": "s",
  "callback_url": "http://h/", "api_base": "ftp://h"}]}'
fails "channels: api_base must be http(s)" 'channels\.x\.api_base: an http\(s\) URL'
check ch_dup '{"channels": [{"name": "x", "kind": "generic", "secret": "s",
  "callback_url": "http://h/"}, {"name": "x", "kind": "generic", "secret": "s",
  "callback_url": "http://h/"}]}'
fails "channels: a name used twice" '"x" is used twice'
check ch_prog '{"channels": [{"name": "x", "kind": "generic", "secret": "s",
  "callback_url": "http://h/", "progress": "message"}]}'
fails "channels: progress message needs a kind that edits" 'channels\.x\.progress: generic cannot edit a message'
check ch_prog2 '{"channels": [{"name": "x", "kind": "generic", "secret": "s",
  "callback_url": "http://h/", "progress": "dots"}]}'
fails "channels: progress is typing or message" 'channels\.x\.progress: typing or message'
check ch_own '{"channels": [{"name": "x", "kind": "generic", "secret": "s"}]}'
fails "channels: the kind's own keys are checked (generic: callback_url)" 'channels\.x: callback_url'

check bool '{"log":{"requests":"yes"}}'
fails "a string for a boolean is refused" 'log\.requests: expected true or false'

check bounds '{"http":{"threads":0}}'
is "out of bounds (http.threads 0): exit 1" "$RC" 1
like "out of bounds: names http.threads and gives the range" "$ERR" 'http\.threads: expected an integer from 1 to [0-9]+'

check bounds_hi '{"http":{"max_header_bytes":100000000000000000000}}'
is "an integer too large for any type: exit 1" "$RC" 1

check enum '{"log":{"level":"loud"}}'
is "a bad enum: exit 1" "$RC" 1
like "a bad enum: lists \"debug\", \"info\", \"warn\", \"error\"" "$ERR" \
    'log\.level: expected one of "debug", "info", "warn", "error"'

check scalar '{"log":3}'
is "a scalar where an object is expected: exit 1" "$RC" 1
like "a scalar where an object is expected: names log and wants an object" "$ERR" "$F: log: expected an object"

check list '{"http":{"trusted_proxies":"10.0.0.1"}}'
fails "a string where a list is expected is refused" 'http\.trusted_proxies: expected a list'

check cidr '{"http":{"trusted_proxies":["10.0.0.0/33"]}}'
fails "a bad CIDR is refused and quoted" 'http\.trusted_proxies: "10\.0\.0\.0/33" is not an IP address or CIDR'

check listen '{"listen":"localhost"}'
fails "a listen address without a port is refused" 'listen: expected ADDRESS:PORT'

check array_root '[1, 2]'
fails "a config that is not an object is refused" 'must be a JSON object'

# --- malformed JSON: file:line:col -------------------------------------------
F=$(conf malformed '{
  "http": {
    "threads": 2,
  }
}')
run "$PINCER_BIN" config check --config "$F"
is "malformed JSON: exit 1" "$RC" 1
like "malformed JSON: the error is at $F:4:COL" "$ERR" "$F:4:[0-9]+: "

F=$(conf truncated '{ "http": { "threads": 2 }')
run "$PINCER_BIN" config check --config "$F"
fails "truncated JSON: exit 1 with file:line:col" "$F:[0-9]+:[0-9]+: "

# A key with escaped control bytes (ESC, newline): the message names it,
# but the bytes must not reach the terminal raw or split the line.
check ctl '{"x\u001b[31my\nz": 1}'
fails "a key with control bytes is refused as unknown" 'x.\[31my.z: unknown option'
unlike "control bytes in a key are not echoed raw" "$ERR" $'\033'
is "a key with a newline still gives one error line" "$(printf '%s\n' "$ERR" | grep -c .)" 2

# --- several errors: all shown, one line each ----------------------------------
check several '{"http":{"max_bodyy":1,"threads":0,"max_body_bytes":"big"},
  "log":{"level":"loud"},"ws":3}'
is "several errors: exit 1" "$RC" 1
N=$(printf '%s\n' "$ERR" | grep -c "^$F: [a-z_.]*: ")
is "several errors: all five are shown, one line each" "$N" 5
for k in http.max_bodyy http.threads http.max_body_bytes log.level ws; do
	like "several errors: $k is named" "$ERR" "^$F: ${k//./\\.}: "
done

# --- duplicate keys --------------------------------------------------------------
check dup '{"listen":"127.0.0.1:1","listen":"127.0.0.1:2"}'
is "a duplicate key: exit 1" "$RC" 1
like "a duplicate key: said so, with line and column" "$ERR" "$F:1:[0-9]+: duplicate.*listen"
check dup_nested '{"http":{"threads":1,"threads":2}}'
fails "a duplicate nested key is refused too" 'duplicate.*threads'

# --- the environment -----------------------------------------------------------------
F=$(conf env_ok '{}')
PINCER_HTTP_MAX_BODY_BYTES=abc run "$PINCER_BIN" config check --config "$F"
is "PINCER_HTTP_MAX_BODY_BYTES=abc: exit 1" "$RC" 1
like "PINCER_HTTP_MAX_BODY_BYTES=abc: the variable is named" "$ERR" 'PINCER_HTTP_MAX_BODY_BYTES.*expected an integer'
PINCER_HTTP_MAX_BODY_BYTES=4096 run "$PINCER_BIN" config check --config "$F"
is "PINCER_HTTP_MAX_BODY_BYTES=4096 is valid" "$RC" 0
PINCER_LOG_LEVEL=loud run "$PINCER_BIN" config check --config "$F"
fails "PINCER_LOG_LEVEL=loud: the variable is named with the values" 'PINCER_LOG_LEVEL.*"debug", "info", "warn", "error"'
PINCER_HTTP_TRUSTED_PROXIES='10.0.0.1, 192.168.0.0/16' run "$PINCER_BIN" config check --config "$F"
is "a comma-separated list in the environment is valid" "$RC" 0

# --- missing files ---------------------------------------------------------------------
run "$PINCER_BIN" config check --config "$T_TMP/missing.json"
is "--config to a missing file: exit 1" "$RC" 1
like "--config to a missing file: the file is named" "$ERR" "$T_TMP/missing\.json.*(No such file|not found|cannot|unable)"
PINCER_CONFIG="$T_TMP/missing.json" run "$PINCER_BIN" config check
is "PINCER_CONFIG to a missing file: exit 1" "$RC" 1
if [ -e /etc/pincer/pincer.json ]; then
	skip "no --config, no PINCER_CONFIG: a missing default file means defaults" \
	    "/etc/pincer/pincer.json exists on this machine"
else
	run "$PINCER_BIN" config check
	is "no --config, no PINCER_CONFIG: a missing default file means defaults" \
	    "$RC:$OUT" "0:/etc/pincer/pincer.json: OK"
fi

# --- pincer serve with a bad config -----------------------------------------------------
F=$(conf serve_bad '{"http":{"max_bodyy":1}}')
S="$T_TMP/serve-bad-state"
T0=$(date +%s%N)
timeout 10 "$PINCER_BIN" serve --config "$F" --state "$S" --listen 127.0.0.1:0 \
    >"$T_TMP/serve.out" 2>"$T_TMP/serve.err"
RC=$?
MS=$((($(date +%s%N) - T0) / 1000000))
is "pincer serve with a bad config exits 2" "$RC" 2
ok "pincer serve with a bad config exits quickly (${MS} ms)" test "$MS" -lt 3000
like "pincer serve with a bad config names the key on stderr" "$(cat "$T_TMP/serve.err")" 'http\.max_bodyy'
ok "pincer serve with a bad config creates no database" test ! -e "$S/pincer.db"

# --- pincer serve from the environment alone --------------------------------------------

# The file says 127.0.0.3; PINCER_LISTEN wins over the file.
F=$(conf env_serve '{ "listen": "127.0.0.3:0", "log": { "level": "info" } }')
S="$T_TMP/env-state"
hand_start env env PINCER_CONFIG="$F" PINCER_STATE="$S" \
    PINCER_LISTEN=127.0.0.1:0 "$PINCER_BIN" serve
like "pincer serve with only PINCER_CONFIG/STATE/LISTEN starts on PINCER_LISTEN (over the file)" \
    "$H_ADDR" '^127\.0\.0\.1:[0-9]+$'
ok "PINCER_STATE is the state folder: it holds pincer.db" test -f "$S/pincer.db"
CODE=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "http://$H_ADDR/healthz" 2>&1)
is "started from the environment, /healthz answers 200" "$CODE" 200
hand_stop
is "and it stops with exit 0" "$H_EXIT" 0

# --- flags win over the environment ------------------------------------------------------
FB=$(conf env_bad '{"http":{"max_bodyy":1}}')
FG=$(conf flag_good '{}')
hand_start flags env PINCER_CONFIG="$FB" PINCER_STATE="$T_TMP/env-state2" \
    PINCER_LISTEN=127.0.0.2:0 "$PINCER_BIN" serve --config "$FG" \
    --state "$T_TMP/flag-state" --listen 127.0.0.1:0
like "--listen wins over PINCER_LISTEN" "$H_ADDR" '^127\.0\.0\.1:[0-9]+$'
ok "--config wins over PINCER_CONFIG (the bad file in the env is not read)" kill -0 "$H_PID"
ok "--state wins over PINCER_STATE: the flag's folder has pincer.db" test -f "$T_TMP/flag-state/pincer.db"
ok "--state wins over PINCER_STATE: the env's folder is not created" test ! -e "$T_TMP/env-state2"
hand_stop
is "and it stops with exit 0" "$H_EXIT" 0

done_testing
