# SPDX-License-Identifier: MIT
# objstore_sync_s3.sh: a sandbox's /data on the s3 backend (s3rver behind
# the fault proxy of tests/fakes/s3.mjs): a write reaches the bucket; the
# sandbox destroyed and made again gets it back; a store that fails every
# request shows in the sync status with S3's reason, the data stays on the
# machine, and the next try after the store is back puts it up; a deletion
# propagates.
. "$TOP_SRCDIR/tests/integration/lib.sh"
. "$TOP_SRCDIR/tests/integration/sandbox_lib.sh"

if [ ! -d "$TOP_SRCDIR/tests/e2e/node_modules/s3rver" ]; then
	skip "s3rver" "node_modules missing: run npm ci in tests/e2e"
	done_testing
fi
mkdir "$T_TMP/s3data"
node --openssl-legacy-provider "$TOP_SRCDIR/tests/fakes/s3.mjs" \
    "$T_TMP/s3data" >"$T_TMP/s3.out" 2>"$T_TMP/s3.err" &
T_PIDS="$T_PIDS $!"
disown
_s3_up() { grep -q proxy "$T_TMP/s3.out"; }
ok "s3rver and the proxy start" wait_until 30 _s3_up
PROXY="http://127.0.0.1:$(sed -n 's/.*"proxy":\([0-9]*\).*/\1/p' "$T_TMP/s3.out")"
fault() { curl -s -X POST "$PROXY/__fault" --data-binary "$1"; }

CONF="{ $FAST, \"objstore\": { \"backend\": \"s3\", \"endpoint\": \"$PROXY\",
  \"bucket\": \"pincer\", \"prefix\": \"home/\", \"max_attempts\": 2,
  \"retry_base_ms\": 10 },
  \"sync\": { \"debounce_ms\": 200, \"max_delay_ms\": 1000 } }"
# Secrets first: a store set up but not usable stops pincerd at start.
pincer_config "$T_TMP/pre" "$CONF"
mkdir -m 700 "$T_TMP/d1" "$T_TMP/d1/state"
pre() { "$PINCER_BIN" --config "$T_TMP/pre/pincer.json" --state "$T_TMP/d1/state" "$@"; }
out=$("$PINCER_BIN" serve --config "$T_TMP/pre/pincer.json" --state "$T_TMP/d1/state" --listen 127.0.0.1:0 2>&1)
is "pincerd with an s3 store and no keys does not start" "$?" 1
like "… and names the secret to set" "$out" 'objstore_access_key_id'
printf S3RVER | pre secret set objstore_access_key_id >/dev/null
printf S3RVER | pre secret set objstore_secret_access_key >/dev/null
T_DAEMONS=0
if ! pincer_start "$CONF"; then
	ok "pincerd starts with the s3 store" false
	done_testing
fi
pw=$(random_token)
printf '%s\n' "$pw" | pcli user add alice --role owner --password-stdin >/dev/null 2>&1
TOK=$(pcli token create --user alice --scope sandbox --name sbx 2>/dev/null)
secret_register "$TOK"

manifest() { pcli objstore get data/s/manifest.json - 2>/dev/null; }
has() { local m; m=$(manifest) && jok "$m" "o.entries['$1'] !== undefined"; }
hasnt() { local m; m=$(manifest) && jok "$m" "o.entries['$1'] === undefined"; }

post "" '{"name":"s"}'
is "sandbox s starts" "$CODE" 201
run s 'mkdir -p /data/mem && echo "on s3" > /data/mem/a.md && echo two > /data/b.txt'
ok "the files reach the bucket" wait_until 10 has mem/a.md
ok "… under the prefix" test -n "$(find "$T_TMP/s3data/pincer/home/data/s" -name 'manifest.json*' | head -1)"
api DELETE /s
post "" '{"name":"s"}'
run s 'cat /data/mem/a.md /data/b.txt'
is "destroyed and made again: /data comes back from the bucket" "$OUT" "on s3
two"
api GET /s/sync
ok "… the status counts the 2 files there" jok "$BODY" 'o.files === 2 && o.downloaded === 2'

# The store fails every request for a while.
fault '{"match":"","action":"slowdown","times":100000}'
run s 'echo offline > /data/c.txt'
api POST /s/sync
ok "a sync while the store fails: the status says error, with the store's answer" \
    jok "$BODY" 'o.state === "error" && /503|SlowDown/.test(o.error)'
ok "… the file is still on the machine" test -f "$PINCER_STATE_DIR/sandboxes/s/data/c.txt"
curl -s -X POST "$PROXY/__clear" >/dev/null
ok "with the store back, a later try puts it up by itself" wait_until 20 has c.txt
api GET /s/sync
ok "… and the status is synced again, no error" jok "$BODY" 'o.state === "synced" && o.error === ""'

run s 'rm /data/b.txt'
ok "a deletion propagates to the bucket" wait_until 10 hasnt b.txt
pincer_stop
is "pincerd stops cleanly" "$PINCER_EXIT" 0
done_testing
