#!/bin/bash
# SPDX-License-Identifier: MIT
# backup.sh: `pincer backup now|list|restore` and pincerd's scheduled
# backups. A backup taken while pincerd runs and the CLI writes is whole;
# backup.keep old ones are kept; restore refuses while pincerd runs, and
# refuses a damaged backup leaving the database in place as it was; on a
# fresh machine it needs the key file (and says so) and then the users, a
# token and a secret work again (the LLM proxy opens the provider key);
# the scheduler backs up on time, warns on failure without looping, and
# stops cleanly.
. "$TOP_SRCDIR/tests/integration/lib.sh"

unset PINCER_CONFIG PINCER_STATE PINCER_LISTEN
OS="$T_TMP/objstore"		# outside both state folders: "another disk"
DB="$OS/backups/db"
KEY="sk-backup-test-$(random_token)"
secret_register "$KEY"
CLI_LOG="$T_LOGDIR/$T_NAME.cli.log"	# done_testing greps it (ASan)
: >"$CLI_LOG"

# run ARGS…: the CLI; OUT, ERR, RC. Its stderr is kept in CLI_LOG too.
run() {
	timeout 60 "$PINCER_BIN" "$@" >"$T_TMP/run.out" 2>"$T_TMP/run.err"
	RC=$?
	OUT=$(cat "$T_TMP/run.out")
	ERR=$(cat "$T_TMP/run.err")
	cat "$T_TMP/run.err" >>"$CLI_LOG"
}
# bk STATE ARGS…: pincer backup on this test's config.
bk() { local s=$1; shift; run --config "$CONF" --state "$s" backup "$@"; }
# dbq FILE SQL: the first column of each row, the file opened read-only.
dbq() {
	python3 -c 'import sqlite3, sys
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
print("\n".join(str(r[0]) for r in c.execute(sys.argv[2])))' "$1" "$2"
}
nlines() { [ -z "$1" ] && echo 0 || printf '%s\n' "$1" | wc -l; }
conf() {
	printf '{ "auth": { "argon2_memory_kib": 1024, "argon2_iterations": 1 },
	  "objstore": { "path": "%s" }, "backup": { %s },
	  "llm": { "providers": [ { "name": "oa", "kind": "openai",
	    "base_url": "%s/v1", "key": "fake_key" } ],
	    "routes": { "default": ["oa/gpt-4o"] } } }\n' "$1" "$2" "$FAKE"
}
chat() {
	req POST /llm/v1/chat/completions -H "Authorization: Bearer $TOK" \
	    --data-binary '{"model":"default","messages":[{"role":"user","content":"hi"}]}'
}

ok "the fake provider starts" llm_fake_start "$KEY"
pincer_start "$(conf "$OS" '"interval_h": 0, "keep": 2')" ||
    { ok "pincerd starts" false; done_testing; }
CONF=$PINCER_CONF
S=$PINCER_STATE_DIR
printf '%s' "$KEY" | pcli secret set fake_key >/dev/null 2>&1
printf 'a long passphrase\n' | pcli user add al --role owner --password-stdin >/dev/null 2>&1
TOK=$(pcli token create --user al --scope llm,read --name t 2>/dev/null)
secret_register "$TOK"
chat
is "the token and the provider key work before any backup" "$CODE" 200

# --- backups while pincerd runs and the CLI writes ----------------------------
touch "$T_TMP/writing"
( i=0; while [ -e "$T_TMP/writing" ]; do
	i=$((i + 1))
	pcli token create --user al --scope read --name "w$i" >/dev/null 2>&1 ||
	    echo "token w$i failed" >>"$T_TMP/writer.err"
done ) &
WRITER=$!
sleep 0.5
bk "$S" now
B1=$(printf '%s' "$OUT" | sed -n 's/^backup \([^ ]*\) made.*/\1/p')
is "backup now while pincerd runs and the CLI writes: exit 0" "$RC" 0
like "… it names the backup, its size and schema" "$OUT" \
    '^backup [0-9]{8}T[0-9]{6}\.[0-9]{3}Z-[0-9a-f]{6} made: [0-9]+ bytes, schema version [0-9]+, in [0-9]+ ms'
sleep 0.3
bk "$S" now
B2=$(printf '%s' "$OUT" | sed -n 's/^backup \([^ ]*\) made.*/\1/p')
is "a second one, still writing: exit 0" "$RC" 0
rm -f "$T_TMP/writing"
wait "$WRITER"
ok "no write failed during the backups" test ! -s "$T_TMP/writer.err"
is "the copy passes SQLite's integrity check" \
    "$(dbq "$DB/$B1.sqlite" 'PRAGMA integrity_check')" ok
NT1=$(dbq "$DB/$B1.sqlite" 'SELECT count(*) FROM api_tokens')
NT2=$(dbq "$DB/$B2.sqlite" 'SELECT count(*) FROM api_tokens')
NTL=$(dbq "$S/pincer.db" 'SELECT count(*) FROM api_tokens')
ok "… it holds the tokens written before it ($NT1, then $NT2, now $NTL)" \
    test "$NT1" -ge 1 -a "$NT1" -le "$NT2" -a "$NT2" -lt "$NTL"
is "the manifest names the copy's size and SHA-256" \
    "$(node -e 'const m = require(process.argv[1]); process.stdout.write(m.size + " " + m.sha256)' "$DB/$B1.json")" \
    "$(stat -c %s "$DB/$B1.sqlite") $(sha256sum "$DB/$B1.sqlite" | cut -d' ' -f1)"
ok "no secret is in the object store in clear" \
    sh -c "! grep -rqa -- '$KEY' '$OS'"
ok "the key file is not in the object store" \
    sh -c "! find '$OS' -type f -exec cmp -s {} '$S/keys/secrets.key' \; -print | grep -q ."
bk "$S" list
is "list: exit 0" "$RC" 0
is "… both backups, oldest first" "$(printf '%s' "$OUT" | cut -f1 | tr '\n' ' ')" "$B1 $B2 "
like "… with time, size, schema and version" "$OUT" \
    $'\t[0-9-]{10}T[0-9:]{8}Z\t[0-9]+\tschema [0-9]+\tpincer [0-9]'

# --- the API ---------------------------------------------------------------
TOKA=$(pcli token create --user al --scope admin,read --name adm 2>/dev/null)
secret_register "$TOKA"
req GET /api/v1/system/backups -H "Authorization: Bearer $TOKA"
is "GET /api/v1/system/backups (admin): 200" "$CODE" 200
ok "… both backups, oldest first, from their manifests" json_check "$BODY" \
    "o.backups.length === 2 && o.backups[0].id === '$B1' &&
     o.backups[1].id === '$B2' && o.backups[1].sha256.length === 64 &&
     o.backups[1].schema_version > 0 && o.incomplete === 0"
req GET /api/v1/system/backups -H "Authorization: Bearer $TOK"
is "… a token without the admin scope: 403" "$CODE" 403
req POST /api/v1/system/backups
is "POST without a credential: 401" "$CODE" 401
req POST /api/v1/system/backups -H "Authorization: Bearer $TOKA"
is "POST /api/v1/system/backups (admin): 201" "$CODE" 201
BA=$(jstr "$BODY" id)
ok "… it names the backup made and the one retention removed" \
    json_check "$BODY" "/^[0-9]{8}T[0-9.]{10}Z-[0-9a-f]{6}$/.test(o.id) &&
     o.size > 0 && o.sha256.length === 64 && o.removed === 1"
is "… the log says so, by the API" \
    "$(log_count "msg=\"backup made\" id=$BA .*by=api")" 1
is "… and the audit log, by whom" "$(dbq "$S/pincer.db" \
    "SELECT actor FROM audit WHERE action = 'backup_now' AND target = '$BA'")" al
bk "$S" list
is "… the list is the two newest" "$(printf '%s' "$OUT" | cut -f1 | tr '\n' ' ')" "$B2 $BA "

bk "$S" restore latest
is "restore while pincerd runs: exit 1" "$RC" 1
like "… it says pincerd runs and what to do" "$ERR" \
    "pincerd is running with .*\(pid $PINCER_PID\): stop it first"
ok "… and nothing was put aside" sh -c "! ls '$S' | grep -q before-restore"
chat
is "… pincerd goes on" "$CODE" 200
pincer_stop
is "pincerd stops" "$PINCER_EXIT" 0

# --- retention: keep 2, with pincerd stopped -----------------------------------
bk "$S" now
B3=$(printf '%s' "$OUT" | sed -n 's/^backup \([^ ]*\) made.*/\1/p')
is "backup now with pincerd stopped: exit 0" "$RC" 0
like "… the oldest beyond backup.keep is removed" "$OUT" \
    'removed 1 older backup \(backup.keep is 2\)'
bk "$S" list
is "… two are left, the newest two" "$(printf '%s' "$OUT" | cut -f1 | tr '\n' ' ')" "$BA $B3 "
is "… and in the store, their four objects" "$(ls "$DB" | wc -l)" 4

# --- a damaged backup -----------------------------------------------------------
printf 'a long passphrase\n' | pcli user add late --role member --password-stdin >/dev/null 2>&1
SUM=$(sha256sum "$S/pincer.db" | cut -d' ' -f1)
cp "$DB/$B3.sqlite" "$T_TMP/b3.good"
printf '\x5a' | dd of="$DB/$B3.sqlite" bs=1 seek=5000 conv=notrunc status=none
bk "$S" restore "$B3"
is "restore of a backup with a flipped byte: exit 1" "$RC" 1
like "… it says the backup is damaged" "$ERR" \
    "backup $B3 is damaged: .*SHA-256.*its manifest says"
like "… and that nothing was changed" "$ERR" 'nothing was changed'
is "… the database in place is untouched" \
    "$(sha256sum "$S/pincer.db" | cut -d' ' -f1)" "$SUM"
ok "… nothing put aside, no temporary file left" \
    sh -c "! ls -a '$S' | grep -Eq 'before-restore|^\.restore-'"
cp "$T_TMP/b3.good" "$DB/$B3.sqlite"
bk "$S" restore 20260101T000000.000Z-abcdef
is "restore of an ID that is not there: exit 1" "$RC" 1
like "… it says so" "$ERR" 'there is no backup 20260101T000000.000Z-abcdef in local .*\(see pincer backup list\)'
bk "$S" restore ../../etc
is "restore of something that is not an ID: exit 1" "$RC" 1
like "… it says so" "$ERR" 'is not a backup ID'
bk "$S" restore "$B3" extra
is "restore with two IDs: usage, exit 2" "$RC" 2

# --- restore in place ---------------------------------------------------------
bk "$S" restore
is "restore (latest by default) with pincerd stopped: exit 0" "$RC" 0
like "… it names the backup" "$OUT" "^restored backup $B3 \(made .* by pincer"
like "… and where the old database is kept" "$OUT" \
    "kept as $S/pincer.db.before-restore-[0-9T.]+Z"
like "… and that the secret opens" "$OUT" 'secrets: 1 in the backup, 1 open'
KEPT=$(ls "$S" | grep before-restore | head -1)
run --config "$CONF" --state "$S" user list
unlike "the user added after the backup is gone" "$OUT" '"name": "late"'
like "… the others are there" "$OUT" '"name": "al"'
is "the database kept aside still has it" \
    "$(dbq "$S/$KEPT" "SELECT name FROM users WHERE name = 'late'")" late
ok "no WAL of the old database is left beside the new one" \
    test ! -e "$S/pincer.db-wal" -o ! -s "$S/pincer.db-wal"
hand_start again "$PINCER_BIN" serve --config "$CONF" --state "$S" --listen 127.0.0.1:0
PINCER_URL="http://$H_ADDR"
chat
is "pincerd on the restored database: the token and the secret work" "$CODE" 200
hand_stop
is "… and it stops" "$H_EXIT" 0

# --- a new machine: the same object store, a fresh state folder ----------------
F="$T_TMP/fresh"
mkdir -m 700 "$F"
bk "$F" restore latest
is "restore on a fresh machine without the key file: exit 1" "$RC" 1
like "… it says the key file is missing and where it goes" "$ERR" \
    "holds 1 secret sealed with a key file that is not here \($F/keys/secrets.key\)"
like "… and what to do" "$ERR" 'copy it from the machine the backup was made on'
like "… or how to go on without" "$ERR" '--force'
ok "… no database was put in place" test ! -e "$F/pincer.db"
ok "… and no key file was made" test ! -e "$F/keys/secrets.key"
head -c 32 /dev/urandom >"$F/keys/secrets.key"
chmod 600 "$F/keys/secrets.key"
bk "$F" restore latest
is "with another machine's key file: exit 1" "$RC" 1
like "… it says the secrets do not open with it" "$ERR" \
    '1 of the 1 secrets in backup .* do not open with'
unlike "… never showing a value" "$ERR$OUT" "$KEY"
ok "… no database was put in place" test ! -e "$F/pincer.db"
G="$T_TMP/forced"
mkdir -m 700 "$G"
bk "$G" restore latest --force
is "--force without the key file: exit 0" "$RC" 0
like "… with a warning to set the secrets again" "$ERR" 'pincer secret set NAME'
run --config "$CONF" --state "$G" user list
like "… the users are back" "$OUT" '"name": "al"'
cp -p "$S/keys/secrets.key" "$F/keys/secrets.key"
bk "$F" restore latest
is "with the old machine's key file copied: exit 0" "$RC" 0
like "… the secret opens" "$OUT" 'secrets: 1 in the backup, 1 open'
unlike "… and no old database to keep" "$OUT" 'kept as'
run --config "$CONF" --state "$F" user list
like "… the users are back" "$OUT" '"name": "al"'
hand_start fresh "$PINCER_BIN" serve --config "$CONF" --state "$F" --listen 127.0.0.1:0
PINCER_URL="http://$H_ADDR"
chat
is "pincerd on the new machine: the old token and provider key work" "$CODE" 200
hand_stop

# --- the schedule ------------------------------------------------------------------
OS2="$T_TMP/objstore2"
pincer_start "$(conf "$OS2" '"interval_s": 2, "keep": 2')" ||
    { ok "pincerd starts" false; done_testing; }
ok "a scheduled backup is made soon after start (none was there)" \
    wait_log 'msg="backup made"' 10
like "… its log line names the ID, size and time taken" \
    "$(grep 'msg="backup made"' "$PINCER_LOG" | head -1)" \
    'id=[0-9]{8}T[0-9.]{10}Z-[0-9a-f]{6} size=[0-9]+ ms=[0-9]+'
ok "… then every interval (three made)" wait_log 'msg="backup made"' 15 2
ok "… keeping backup.keep of them" \
    wait_until 5 test "$(ls "$OS2/backups/db" | wc -l)" -eq 4
pincer_stop
is "pincerd with the scheduler stops: exit 0" "$PINCER_EXIT" 0
ok "… and leaves no temporary copy" \
    sh -c "! ls -a '$PINCER_STATE_DIR' | grep -q '^\.backup-'"
is "… no failure was logged" "$(log_count 'backup failed')" 0

pincer_start "$(conf "$OS2" '"interval_s": 30')" ||
    { ok "pincerd starts" false; done_testing; }
sleep 3
is "a backup younger than the interval: none at start" \
    "$(log_count 'msg="backup made"')" 0
pincer_stop

pincer_start '{ "auth": { "argon2_memory_kib": 1024, "argon2_iterations": 1 },
  "objstore": { "backend": "off" } }' || { ok "pincerd starts" false; done_testing; }
like "with objstore.backend off, the log says backups are off" \
    "$(grep 'backups are off' "$PINCER_LOG")" 'objstore.backend is off'
printf 'a long passphrase\n' | pcli user add al --role owner --password-stdin >/dev/null 2>&1
TOKB=$(pcli token create --user al --scope admin --name b 2>/dev/null)
secret_register "$TOKB"
req POST /api/v1/system/backups -H "Authorization: Bearer $TOKB"
is "… POST /api/v1/system/backups: 503" "$CODE" 503
like "… saying why" "$BODY" '"backups_unavailable".*objstore.backend is off'
run --config "$PINCER_CONF" --state "$PINCER_STATE_DIR" backup now
is "… pincer backup now: exit 1" "$RC" 1
like "… saying why" "$ERR" 'objstore.backend is off'
pincer_stop

# A store that opens but takes no backup: a file where backups/ goes.
OS3="$T_TMP/objstore3"
mkdir -p "$OS3"
touch "$OS3/backups"
pincer_start "$(conf "$OS3" '"interval_s": 1')" ||
    { ok "pincerd starts" false; done_testing; }
ok "a backup that fails is a warning" wait_log 'level=warn msg="backup failed"' 10
sleep 3
N=$(log_count 'msg="backup failed"')
ok "… tried again at the next tick, not in a loop ($N in about 4 s)" \
    test "$N" -ge 2 -a "$N" -le 6
like "… it says why" "$(grep 'backup failed' "$PINCER_LOG" | head -1)" \
    'backups/db.*next try is in 1 s'
pincer_stop
is "… and pincerd still stops cleanly" "$PINCER_EXIT" 0

done_testing
