# SPDX-License-Identifier: MIT
# state.sh: the state folder is private (0700), locked against a second
# pincerd, holds the database in WAL mode, and must be a folder.
. "$TOP_SRCDIR/tests/integration/lib.sh"

unset PINCER_CONFIG PINCER_STATE PINCER_LISTEN

code() { curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "$1" 2>&1; }

pincer_start || { diag "cannot start pincerd"; done_testing; }
S=$PINCER_STATE_DIR

# --- created private, with the database in WAL mode ------------------------------
is "the state folder is created with mode 700" "$(stat -c %a "$S")" 700
ok "the state folder holds pincer.db" test -f "$S/pincer.db"
ok "pincer.db-wal exists while pincerd runs (WAL mode)" test -f "$S/pincer.db-wal"
if command -v sqlite3 >/dev/null 2>&1; then
	is "the database's journal_mode is wal" \
	    "$(sqlite3 -readonly "$S/pincer.db" 'PRAGMA journal_mode' 2>&1)" wal
else
	skip "the database's journal_mode is wal" "no sqlite3 command"
fi

# --- one pincerd per state folder ------------------------------------------------
hand_start second "$PINCER_BIN" serve --config "$PINCER_CONF" --state "$S" \
    --listen 127.0.0.1:0
hand_wait 10
ok "a second pincerd on the same state folder exits non-zero (exit $H_EXIT)" \
    test "$H_EXIT" -ne 0 -a "$H_EXIT" -ne 124
ok "the second says \"the state folder is in use\"" grep -q 'the state folder is in use' "$H_LOG"
is "the second never listened" "$H_ADDR" ""
is "the first still answers /healthz" "$(code "$PINCER_URL/healthz")" 200
is "the first is still ready (/readyz)" "$(code "$PINCER_URL/readyz")" 200
is "the state folder is still 700" "$(stat -c %a "$S")" 700

pincer_stop
is "the first stops with exit 0" "$PINCER_EXIT" 0

# The lock goes with the process: the same folder serves again.
hand_start again "$PINCER_BIN" serve --config "$PINCER_CONF" --state "$S" \
    --listen 127.0.0.1:0
like "after the first stopped, a new pincerd starts on the same folder" "$H_ADDR" '^127\.0\.0\.1:[0-9]+$'
is "and answers /readyz" "$(code "http://$H_ADDR/readyz")" 200
hand_stop
is "and stops with exit 0" "$H_EXIT" 0

# --- an existing folder with mode 755 is made private --------------------------------
S2="$T_TMP/state755"
mkdir -m 755 "$S2"
is "(set-up) the folder is 755" "$(stat -c %a "$S2")" 755
hand_start s755 "$PINCER_BIN" serve --config "$PINCER_CONF" --state "$S2" \
    --listen 127.0.0.1:0
like "pincerd starts on an existing 755 folder" "$H_ADDR" '^127\.0\.0\.1:[0-9]+$'
is "the existing 755 folder is tightened to 700" "$(stat -c %a "$S2")" 700
hand_stop
is "and stops with exit 0" "$H_EXIT" 0

# --- a state_dir that is a regular file -------------------------------------------------
: >"$T_TMP/statefile"
hand_start file "$PINCER_BIN" serve --config "$PINCER_CONF" \
    --state "$T_TMP/statefile" --listen 127.0.0.1:0
hand_wait 10
ok "state_dir is a regular file: exits non-zero (exit $H_EXIT)" \
    test "$H_EXIT" -ne 0 -a "$H_EXIT" -ne 124
ok "state_dir is a regular file: the message says it is not a folder" \
    grep -Eq 'not a (folder|directory)' "$H_LOG"
ok "state_dir is a regular file: the message names it" grep -qF "$T_TMP/statefile" "$H_LOG"
is "state_dir is a regular file: it never listened" "$H_ADDR" ""
is "state_dir is a regular file: the file is left as it was" "$(stat -c %s "$T_TMP/statefile")" 0

done_testing
