# SPDX-License-Identifier: MIT
# doctor.sh: `pincer doctor`: one OK/WARN/FAIL line per check, an exit code
# that agrees with them, a bad config, a fresh state folder, and the
# database after pincerd has run once.
. "$TOP_SRCDIR/tests/integration/lib.sh"

unset PINCER_CONFIG PINCER_STATE PINCER_LISTEN

LATEST=$(ls "$TOP_SRCDIR"/gateway/migrations/[0-9]*.sql | wc -l)
printf '{ "log": { "level": "info" } }\n' >"$T_TMP/good.json"
printf '{ "http": { "max_bodyy": 1 } }\n' >"$T_TMP/bad.json"
STATE="$T_TMP/state"

# doctor ARGS...: OUT (stdout and stderr) and RC.
doctor() {
	timeout 30 "$PINCER_BIN" doctor "$@" >"$T_TMP/doctor.out" 2>&1
	RC=$?
	OUT=$(cat "$T_TMP/doctor.out")
}
# line NAME: the doctor line of check NAME.
line() { printf '%s\n' "$OUT" | grep -E "^(OK|WARN|FAIL) +$1 "; }
# consistent LABEL: the exit code, the FAIL lines and the summary agree.
consistent() {
	local nfail
	nfail=$(printf '%s\n' "$OUT" | grep -c '^FAIL ')
	if [ "$nfail" -eq 0 ]; then
		is "$1: no FAIL line, exit 0 (FAIL lines: $nfail)" "$RC" 0
		like "$1: says all checks passed" "$OUT" 'all checks passed'
	else
		is "$1: a FAIL line, exit 1 (FAIL lines: $nfail)" "$RC" 1
		like "$1: says some checks failed" "$OUT" 'some checks failed'
	fi
}
# Every line is the title, a verdict, a "fix:" under one, or the summary.
well_formed() {
	printf '%s\n' "$OUT" | grep -Ev '^pincer [0-9.]+ doctor$|^(OK|WARN|FAIL) +[a-z]+ +[^ ]|^      fix: |^(all checks passed|some checks failed)$'
	! printf '%s\n' "$OUT" | grep -Evq '^pincer [0-9.]+ doctor$|^(OK|WARN|FAIL) +[a-z]+ +[^ ]|^      fix: |^(all checks passed|some checks failed)$'
}

# --- a fresh state folder, not created yet --------------------------------------
doctor --config "$T_TMP/good.json" --state "$STATE" --listen 127.0.0.1:0
for c in config port state database namespaces cgroups seccomp sandbox browser objstore; do
	is "doctor prints one OK/WARN/FAIL line for $c" "$(line "$c" | wc -l)" 1
done
ok "every doctor line is a verdict, a fix, the title or the summary" well_formed
like "sandbox: a real sandbox started (or the reason it did not)" "$(line sandbox)" \
    '^(OK +sandbox +a sandbox starts: .*pincer-init as PID 1|FAIL +sandbox +(pincer-sandbox cannot|.* is missing))'
like "config: OK, the file is valid" "$(line config)" "^OK +config +$T_TMP/good\.json is valid"
like "objstore: the default local store is inside the state folder: WARN, with a fix" \
    "$(line objstore)" '^WARN +objstore +local, .*/objstore: inside the state folder'
like "… the fix names objstore.path" "$OUT" 'fix: objstore.path on another disk' 
consistent "fresh state"
like "a state folder that does not exist yet: WARN state" "$(line state)" '^WARN +state +.*does not exist yet'
like "a database that does not exist yet: WARN database" "$(line database)" \
    "^WARN +database +.*does not exist yet.*schema version $LATEST"
ok "doctor does not create the state folder" test ! -e "$STATE"

# --- a bad config --------------------------------------------------------------------
doctor --config "$T_TMP/bad.json" --state "$STATE"
like "a bad config: \"FAIL  config\"" "$OUT" '^FAIL  config '
like "a bad config: the key is named" "$(line config)" 'http\.max_bodyy'
is "a bad config: exit 1" "$RC" 1
consistent "bad config"
ok "a bad config: every line is a verdict, a fix, the title or the summary" well_formed
doctor --config "$T_TMP/missing.json" --state "$STATE"
like "a missing --config: FAIL config" "$(line config)" '^FAIL +config '
is "a missing --config: exit 1" "$RC" 1

# --- a state "folder" that is a file ---------------------------------------------------
: >"$T_TMP/statefile"
doctor --config "$T_TMP/good.json" --state "$T_TMP/statefile" --listen 127.0.0.1:0
like "a state_dir that is a regular file: FAIL state" "$(line state)" '^FAIL +state '
consistent "state is a file"

# --- after pincerd ran on that state ----------------------------------------------------
H_LOG="$T_LOGDIR/$T_NAME.hand.pincerd.log"
: >"$H_LOG"
"$PINCER_BIN" serve --config "$T_TMP/good.json" --state "$STATE" \
    --listen 127.0.0.1:0 2>>"$H_LOG" &
H_PID=$!
T_PIDS="$T_PIDS $H_PID"
_hand_up() { grep -q 'msg=listening' "$H_LOG" || ! kill -0 "$H_PID"; }
_hand_down() { ! kill -0 "$H_PID"; }
wait_until 10 _hand_up
H_ADDR=$(sed -n 's/.*msg=listening addr=\([^ ]*\).*/\1/p' "$H_LOG" | head -1)
like "pincerd started on the state folder" "$H_ADDR" '^127\.0\.0\.1:[0-9]+$'

# While it runs: its port is taken; the database can be read.
doctor --config "$T_TMP/good.json" --state "$STATE" --listen "$H_ADDR"
like "while pincerd runs: WARN port, in use" "$(line port)" "^WARN +port +$H_ADDR is in use"
like "while pincerd runs: database schema version $LATEST (latest)" "$(line database)" \
    "^OK +database +schema version $LATEST \(latest\)"
consistent "while pincerd runs"

kill -TERM "$H_PID"
wait_until 15 _hand_down
kill -0 "$H_PID" 2>/dev/null && kill -KILL "$H_PID"
wait "$H_PID"
is "pincerd stopped with exit 0" "$?" 0

doctor --config "$T_TMP/good.json" --state "$STATE" --listen 127.0.0.1:0
like "after one run: OK state, writable" "$(line state)" '^OK +state +.*writable'
like "after one run: OK database, schema version $LATEST (latest)" "$(line database)" \
    "^OK +database +schema version $LATEST \(latest\)"
consistent "after one run"
ok "doctor leaves no file of its own in the state folder" \
    test -z "$(find "$STATE" -name '.doctor-*')"

done_testing
