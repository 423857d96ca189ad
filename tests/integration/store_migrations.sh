# SPDX-License-Identifier: MIT
# store_migrations.sh: the first start migrates, a restart does not, doctor
# agrees, a database from a newer pincer is refused, and a migration that
# fails leaves the database as it was.
. "$TOP_SRCDIR/tests/integration/lib.sh"

unset PINCER_CONFIG PINCER_STATE PINCER_LISTEN

LATEST=$(ls "$TOP_SRCDIR"/gateway/migrations/[0-9]*.sql | wc -l)

doctor() {
	timeout 30 "$PINCER_BIN" doctor --config "$PINCER_CONF" --state "$1" \
	    --listen 127.0.0.1:0 >"$T_TMP/doctor.out" 2>&1
	RC=$?
	DB_LINE=$(grep -E '^(OK|WARN|FAIL) +database ' "$T_TMP/doctor.out")
}
HAVE_SQLITE3=false
command -v sqlite3 >/dev/null 2>&1 && HAVE_SQLITE3=true
sql() { sqlite3 "$@" 2>&1; }

# --- first start: migrates -----------------------------------------------------
pincer_start || { diag "cannot start pincerd"; done_testing; }
S=$PINCER_STATE_DIR
is "first start on an empty state: \"database migrated\" logged once" \
    "$(log_count 'msg="database migrated"')" 1
like "it says from version 0 to $LATEST" "$(grep 'database migrated' "$PINCER_LOG")" \
    "from version 0 to $LATEST\""
ok "the migration is logged before msg=listening" \
    test "$(grep -n 'database migrated' "$PINCER_LOG" | cut -d: -f1)" -lt \
    "$(grep -n 'msg=listening' "$PINCER_LOG" | cut -d: -f1)"
ok "/readyz says schema_version $LATEST" json_check \
    "$(curl -sS --max-time 5 "$PINCER_URL/readyz")" "o.schema_version === $LATEST"
pincer_stop
is "pincerd stops with exit 0" "$PINCER_EXIT" 0

doctor "$S"
like "doctor: schema version $LATEST (latest)" "$DB_LINE" "^OK +database +schema version $LATEST \(latest\)"

if $HAVE_SQLITE3; then
	is "schema_version holds one row per migration, 1..$LATEST" \
	    "$(sql "$S/pincer.db" 'SELECT group_concat(version) FROM (SELECT version FROM schema_version ORDER BY version)')" \
	    "$(seq -s, 1 "$LATEST")"
	is "the rows are named after the migration files" \
	    "$(sql "$S/pincer.db" 'SELECT name FROM schema_version ORDER BY version')" \
	    "$(cd "$TOP_SRCDIR/gateway/migrations" && ls [0-9]*.sql | sed 's/\.sql$//')"
	INSTANCE=$(sql "$S/pincer.db" "SELECT value FROM meta WHERE key = 'instance_id'")
	like "0001_init gave the instance an id" "$INSTANCE" '^[0-9a-f]{32}$'
else
	skip "schema_version holds one row per migration" "no sqlite3 command"
	skip "the rows are named after the migration files" "no sqlite3 command"
	skip "0001_init gave the instance an id" "no sqlite3 command"
fi

# --- restart: nothing to migrate ----------------------------------------------------
hand_start restart "$PINCER_BIN" serve --config "$PINCER_CONF" --state "$S" \
    --listen 127.0.0.1:0
like "a restart on the migrated database starts" "$H_ADDR" '^127\.0\.0\.1:[0-9]+$'
unlike "a restart does not log \"database migrated\" again" "$(cat "$H_LOG")" 'database migrated'
is "after the restart, /readyz is 200" \
    "$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "http://$H_ADDR/readyz" 2>&1)" 200
hand_stop
is "the restarted pincerd stops with exit 0" "$H_EXIT" 0
if $HAVE_SQLITE3; then
	is "the restart kept the data (same instance_id, same rows)" \
	    "$(sql "$S/pincer.db" "SELECT value FROM meta WHERE key = 'instance_id'"):$(sql "$S/pincer.db" 'SELECT count(*) FROM schema_version')" \
	    "$INSTANCE:$LATEST"
else
	skip "the restart kept the data" "no sqlite3 command"
fi

# --- a database from a newer pincer ---------------------------------------------------
if $HAVE_SQLITE3; then
	sql "$S/pincer.db" "INSERT INTO schema_version (version, name) VALUES (99, '0099_future')" >/dev/null
	is "(set-up) the database now says version 99" \
	    "$(sql "$S/pincer.db" 'SELECT max(version) FROM schema_version')" 99
	hand_start newer "$PINCER_BIN" serve --config "$PINCER_CONF" --state "$S" \
	    --listen 127.0.0.1:0
	hand_wait 10
	ok "pincerd refuses a database from a newer pincer: exits non-zero (exit $H_EXIT)" \
	    test "$H_EXIT" -ne 0 -a "$H_EXIT" -ne 124
	ok "the log says it is newer than this pincer knows" \
	    grep -q 'newer than this pincer knows' "$H_LOG"
	ok "the log names both versions (99 and $LATEST)" \
	    grep -q "schema version 99, newer than this pincer knows ($LATEST)" "$H_LOG"
	is "it never listened" "$H_ADDR" ""
	is "the refused database is left as it was" \
	    "$(sql "$S/pincer.db" 'SELECT group_concat(version) FROM (SELECT version FROM schema_version ORDER BY version)')" \
	    "$(seq -s, 1 "$LATEST"),99"
	doctor "$S"
	like "doctor: FAIL database, newer than this pincer knows" "$DB_LINE" \
	    '^FAIL +database +schema version 99 is newer than this pincer knows'
	is "doctor exits 1" "$RC" 1

	# A migration that fails rolls back whole: the schema_version table
	# created in the same transaction goes with it.
	S3="$T_TMP/state-broken"
	mkdir -m 700 "$S3"
	sql "$S3/pincer.db" 'CREATE TABLE meta (x INTEGER)' >/dev/null
	hand_start broken "$PINCER_BIN" serve --config "$PINCER_CONF" --state "$S3" \
	    --listen 127.0.0.1:0
	hand_wait 10
	ok "a failing migration stops start-up (exit $H_EXIT)" \
	    test "$H_EXIT" -ne 0 -a "$H_EXIT" -ne 124
	ok "the log names the migration that failed" grep -q '0001_init' "$H_LOG"
	is "the failed migration left nothing behind (no schema_version table)" \
	    "$(sql "$S3/pincer.db" "SELECT count(*) FROM sqlite_master WHERE name = 'schema_version'")" 0
else
	for p in "refuses a newer database" "logs newer than this pincer knows" \
	    "doctor FAIL database on a newer database" "a failing migration rolls back"; do
		skip "$p" "no sqlite3 command"
	done
fi

done_testing
