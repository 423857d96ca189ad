# SPDX-License-Identifier: MIT
# secrets.sh: `pincer secret set|list|rm`: values from stdin, sealed in the
# store, never printed, never in the database in clear, never in a log
# (the last test greps every log for them), refused when malformed.
. "$TOP_SRCDIR/tests/integration/lib.sh"

unset PINCER_CONFIG PINCER_STATE PINCER_LISTEN
ST="$T_TMP/state"
mkdir -m 700 "$ST"
pin() { timeout 10 "$PINCER_BIN" --state "$ST" "$@"; }
VAL="sk-live-$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
secret_register "$VAL"

OUT=$(printf '%s\n' "$VAL" | pin secret set openai 2>&1)
is "set from stdin: exit 0" "$?" 0
is "… says it is stored, without the value" "$OUT" "secret openai stored"
ok "the key file is 0600" test "$(stat -c %a "$ST/keys/secrets.key")" = 600
OUT=$(pin secret list 2>&1)
is "list: exit 0" "$?" 0
like "list names it" "$OUT" '"name": "openai"'
unlike "… and shows no value" "$OUT" "$VAL"
ok "the value is in no database file in clear" \
    sh -c "! cat '$ST'/pincer.db* | grep -qa -- '$VAL'"
OUT=$(pin secret set openai </dev/null 2>&1)
is "an empty value: exit 1" "$?" 1
like "… and why" "$OUT" 'empty'
OUT=$(echo x | pin secret set 'bad name' 2>&1)
is "a bad name: exit 2 (usage)" "$?" 2
like "… naming the rule" "$OUT" 'NAME: 1 to 64'
OUT=$(head -c 70000 /dev/zero | tr '\0' a | pin secret set big 2>&1)
is "a value over 64 KiB: exit 1" "$?" 1
like "… and why" "$OUT" 'at most 65536 bytes'
OUT=$(printf 'two\nlines\n' | pin secret set pem 2>&1)
is "a value of several lines (a PEM key) is taken whole" "$?" 0
OUT=$(pin secret rm pem 2>&1)
is "rm: exit 0" "$?:$OUT" "0:secret pem removed"
OUT=$(pin secret rm pem 2>&1)
is "rm again: exit 1, no such secret" "$?:$OUT" \
    "1:pincer secret rm: no such secret"
OUT=$(pin secret 2>&1)
is "no subcommand: exit 2" "$?" 2
DB_AUDIT=$(sqlite3 "$ST/pincer.db" "SELECT action || ' ' || target || ' ' || \
    detail FROM audit" 2>/dev/null || true)
if command -v sqlite3 >/dev/null; then
	like "the audit log has the set, by name" "$DB_AUDIT" 'secret_set openai'
	unlike "… and never the value" "$DB_AUDIT" "$VAL"
else
	skip "audit lines" "no sqlite3 shell"
fi
done_testing
