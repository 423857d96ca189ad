# SPDX-License-Identifier: MIT
# snapshots_sleep.sh: snapshots.on_sleep takes a snapshot when a sandbox
# goes to sleep, gives way to a wake, and not when the sandbox is being
# destroyed or was stopped for a snapshot of its own; max_age_days expires
# old snapshots and archives left without a manifest; with the object
# store off, snapshots say so.
. "$TOP_SRCDIR/tests/integration/lib.sh"
. "$TOP_SRCDIR/tests/integration/sandbox_lib.sh"

# count NAME [REASON]: how many snapshots NAME has (of that reason).
count() {
	api GET "/$1/snapshots"
	jv "$BODY" "o.snapshots.filter(s => '${2:-}' === '' || s.reason === '${2:-}').length"
}
has() { [ "$(count "$1" "${3:-}")" = "$2" ]; }

if [ ! -x "$TOP_BUILDDIR/pincer-init" ]; then
	ok "pincer-init is built next to pincer" false
	done_testing
fi
if ! pincer_start "{ $FAST, \"snapshots\": { \"on_sleep\": true, \"keep\": 5, \"max_age_days\": 1 } }"; then
	ok "pincerd starts" false
	done_testing
fi
PW=$(random_token)
secret_register "$PW"
printf '%s\n' "$PW" | pcli user add alice --role owner --password-stdin >/dev/null 2>&1
TOK=$(pcli token create --user alice --scope sandbox --name sbx 2>/dev/null)
secret_register "$TOK"
STORE="$PINCER_STATE_DIR/objstore/snapshots"

post "" '{"name":"s"}'
is "create s: 201" "$CODE" 201
run s 'echo one >/workspace/f'
api POST /s/stop
is "stop s: 200" "$CODE" 200
ok "an automatic snapshot follows its sleep" wait_until 10 has s 1 sleep
api GET /s/snapshots
AUTO=$(jv "$BODY" o.snapshots[0].id)
ok "… by pincerd, of what s held" jok "$BODY" 'o.snapshots[0].by === "pincerd" && o.snapshots[0].files >= 4'
ok "… audited as pincerd's" wait_log "action=snapshot.create actor=pincerd .*target=$AUTO"

# A wake while its automatic snapshot is being packed (64 MB that do not
# compress take a while) is not held up by it: the snapshot gives way.
post "" '{"name":"big"}'
run big 'head -c 67108864 /dev/urandom >/workspace/big && echo made'
is "big has 64 MB" "$OUT" made
api POST /big/stop
T0=$(date +%s%N)
run big 'stat -c %s /workspace/big'
T1=$(date +%s%N)
is "a wake right after the sleep is answered" "$CODE:$OUT" 200:67108864
ok "… within 5 s ($(( (T1 - T0) / 1000000 )) ms)" test $(( (T1 - T0) / 1000000 )) -lt 5000
ok "… its automatic snapshot gave way (cancelled)" \
    wait_log 'automatic snapshot skipped.*sandbox=big.*cancelled'
is "… and none of big was stored" "$(count big)" 0
api DELETE /big

# Stopped for a snapshot of its own: that one alone.
N=$(count s)
api POST /s/snapshots
is "a snapshot of running s: 201" "$CODE" 201
sleep 1
is "… no automatic one besides" "$(count s)" $((N + 1))

# Destroyed: its last sleep is not snapshotted.
post "" '{"name":"d"}'
run d 'echo bye >/workspace/f'
api DELETE /d
is "destroy d (running): 200" "$CODE" 200
sleep 1
is "… no automatic snapshot of it" "$(count d)" 0
ok "… and none failed" test "$(log_count 'automatic snapshot failed')" = 0

# --- max_age_days 1 -----------------------------------------------------------
OLD=s-20200101-000000.000-aaaa
LONE=s-20200101-000000.000-bbbb
NEW=s-$(date -u +%Y%m%d-%H%M%S).000-cccc
mkdir -p "$STORE/$OLD" "$STORE/$LONE" "$STORE/$NEW"
cp "$STORE/$AUTO/state.tar.zst" "$STORE/$AUTO/manifest.json" "$STORE/$OLD/"
cp "$STORE/$AUTO/state.tar.zst" "$STORE/$LONE/"
cp "$STORE/$AUTO/state.tar.zst" "$STORE/$NEW/"
ok "a snapshot of 2020 is listed before" has s "$(( N + 2 ))"
api POST /s/snapshots
is "a new snapshot of s: 201" "$CODE" 201
ok "… the one of 2020 is expired (max_age_days 1)" test ! -e "$STORE/$OLD"
ok "… so is an archive of 2020 without a manifest" test ! -e "$STORE/$LONE"
ok "… an archive without a manifest from today stays (it may be on its way up)" \
    test -e "$STORE/$NEW/state.tar.zst"
ok "… the expiry is logged with its reason" wait_log "snapshot expired.*id=$OLD why=max_age_days"

pincer_stop
is "pincerd stops cleanly" "$PINCER_EXIT" 0

# --- no object store ----------------------------------------------------------------
if ! pincer_start "{ $FAST, \"objstore\": { \"backend\": \"off\" } }"; then
	ok "pincerd starts with objstore.backend off" false
	done_testing
fi
printf '%s\n' "$PW" | pcli user add alice --role owner --password-stdin >/dev/null 2>&1
TOK=$(pcli token create --user alice --scope sandbox --name sbx2 2>/dev/null)
secret_register "$TOK"
post "" '{"name":"s"}'
api POST /s/snapshots
is "objstore.backend off: a snapshot is 503 snapshots_off" "$CODE:$(jv "$BODY" o.error.code)" 503:snapshots_off
like "… the message says why" "$(jv "$BODY" o.error.message)" 'object store'
pincer_stop
is "pincerd stops cleanly" "$PINCER_EXIT" 0
done_testing
