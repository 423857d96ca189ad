# SPDX-License-Identifier: MIT
# objstore_sync.sh: each sandbox's /data kept in the object store (issue 9
# point 2), on real pincerds and sandboxes with the local backend in a
# folder outside the state: a file the agent writes reaches the store; a
# deletion propagates; the sandbox destroyed and made again, or a whole new
# state folder (a new machine), gets /data back; pincerd killed with
# SIGKILL in the middle of a sync loses nothing and duplicates nothing; a
# change on two machines keeps both copies; the status API and CLI; links
# are kept as links (never followed on the host); and the local backend's
# own checks (pincer objstore).
. "$TOP_SRCDIR/tests/integration/lib.sh"
. "$TOP_SRCDIR/tests/integration/sandbox_lib.sh"

STORE="$T_TMP/store"
CONF="{ $FAST, \"objstore\": { \"path\": \"$STORE\" },
  \"sync\": { \"debounce_ms\": 200, \"max_delay_ms\": 1000 } }"

# manifest: the store's manifest of sandbox s (JSON), through the CLI.
manifest() { pcli objstore get data/s/manifest.json - 2>/dev/null; }
# has PATH [SHA]: the manifest lists PATH (with that content hash).
has() {
	local m
	m=$(manifest) || return 1
	jok "$m" "o.entries['$1'] !== undefined && ('${2:-}' === '' || o.entries['$1'].h === '${2:-}')"
}
hasnt() { local m; m=$(manifest) && jok "$m" "o.entries['$1'] === undefined"; }
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
# blobs: the number of blob objects of s in the store.
blobs() { find "$STORE/data/s/blobs" -type f 2>/dev/null | wc -l; }
# referenced: the number of distinct hashes the manifest names.
referenced() { jv "$(manifest)" 'new Set(Object.values(o.entries).filter(e => e.h).map(e => e.h)).size'; }
login() {
	local pw
	pw=$(random_token)
	secret_register "$pw"
	printf '%s\n' "$pw" | pcli user add alice --role owner --password-stdin >/dev/null 2>&1
	TOK=$(pcli token create --user alice --scope sandbox --name sbx 2>/dev/null)
	secret_register "$TOK"
}

if ! pincer_start "$CONF"; then
	ok "pincerd starts with objstore.path $STORE" false
	done_testing
fi
login
like "the log says the sync is on, and where" "$(grep 'sync on' "$PINCER_LOG")" "store=.*local $STORE"

# --- a write reaches the store ------------------------------------------------
post "" '{"name":"s"}'
is "sandbox s starts" "$CODE" 201
run s 'mkdir -p /data/memory && echo "likes tea" > /data/memory/owner.md &&
	printf "#!/bin/sh\necho run\n" > /data/tool.sh && chmod 750 /data/tool.sh &&
	ln -s memory/owner.md /data/latest && ln -s /etc /data/host-etc &&
	mkdir /data/empty && chmod 711 /data/empty'
is "the agent writes files, a script, links and a folder in /data" "$CODE" 200
ok "memory/owner.md reaches the store (inotify, a debounce)" \
    wait_until 10 has memory/owner.md "$(sha 'likes tea
')"
M=$(manifest)
ok "tool.sh is there with mode 0750" jok "$M" "o.entries['tool.sh'].m === 0o750"
ok "latest is kept as a link to memory/owner.md" jok "$M" "o.entries.latest.l === 'memory/owner.md' && !o.entries.latest.h"
ok "a link to /etc is a link, not the host's /etc" jok "$M" \
    "o.entries['host-etc'].l === '/etc' && !Object.keys(o.entries).some(k => k.startsWith('host-etc/'))"
ok "the empty folder is there with mode 0711" jok "$M" "o.entries.empty.d && o.entries.empty.m === 0o711"
ok "owners are the sandbox's own (root = 0)" jok "$M" "o.entries['tool.sh'].u === 0 && o.entries['tool.sh'].g === 0"
is "one blob per content" "$(blobs)" "$(referenced)"
ok "a blob holds the bytes" test "$(pcli objstore get "data/s/blobs/$(sha 'likes tea
')" -)" = "likes tea"

api GET /s/sync
is "GET …/sync: 200" "$CODE" 200
ok "… synced, no error, 2 files, uploads counted" jok "$BODY" \
    'o.state === "synced" && o.error === "" && o.files === 2 && o.uploaded >= 2 && o.last_ok_ms > 0 && o.watched === true'
like "… and says which store" "$(jv "$BODY" o.store)" "local $STORE"

# --- a change and a deletion --------------------------------------------------
run s 'echo "likes green tea" > /data/memory/owner.md; rm /data/tool.sh'
ok "a change reaches the store" wait_until 10 has memory/owner.md "$(sha 'likes green tea
')"
ok "a deletion propagates" wait_until 10 hasnt tool.sh
ok "… and the blobs no manifest names are gone" wait_until 5 \
    eval '[ "$(blobs)" = "$(referenced)" ]'

# --- a forced sync, and the CLI -------------------------------------------------
run s 'echo fresh > /data/now.txt; chmod 754 /data/now.txt'
out=$(pcli sandbox sync s 2>&1)
is "pincer sandbox sync s: exits 0" "$?" 0
like "… and says synced, with the count" "$out" '^s: synced, 2 files'
ok "… now.txt is in the store when it returns" has now.txt "$(sha 'fresh
')"
api POST /s/sync
ok "POST …/sync: 200, synced" jok "$BODY" 'o.state === "synced" && o.name === "s"'
api GET /nope/sync
is "…/sync of an unknown sandbox: 404" "$CODE" 404

# --- destroyed and made again ----------------------------------------------------
api DELETE /s
is "destroy s: 200" "$CODE" 200
ok "its folder is gone" test ! -e "$PINCER_STATE_DIR/sandboxes/s"
ok "its /data is still in the store" has memory/owner.md
post "" '{"name":"s"}'
is "s made again" "$CODE" 201
run s 'cat /data/memory/owner.md; cat /data/now.txt; readlink /data/latest; stat -c %a /data/empty /data/now.txt; ls /data'
is "s has its /data back: contents, link, folder and file modes" "$OUT" "likes green tea
fresh
memory/owner.md
711
754
empty
host-etc
latest
memory
now.txt"
ok "the restored files belong to the sandbox's root" jok \
    "$(post /s/exec '{"cmd":["stat","-c","%u:%g %a","/data/memory/owner.md"]}'; printf '%s' "$BODY")" \
    'o.stdout === "0:0 600\n"'
api GET /s/sync
ok "the status counts what came down" jok "$BODY" 'o.downloaded >= 2 && o.state !== "error"'
run s 'echo nap > /data/nap.txt'
api POST /s/stop
is "a write, then the sandbox put to sleep at once: 200" "$CODE" 200
ok "… the final sync of sleep puts it in the store" wait_until 5 has nap.txt "$(sha 'nap
')"
post /s/exec '{"cmd":["sh","-c","echo bye > /data/bye.txt"]}'
pincer_stop
is "a write, then pincerd stopped at once: it stops cleanly" "$PINCER_EXIT" 0
ok "… and the shutdown's final sync put it in the store" has bye.txt "$(sha 'bye
')"

# --- a new machine: a whole new state folder ---------------------------------------
if ! pincer_start "$CONF"; then
	ok "a second pincerd (a new state folder) starts" false
	done_testing
fi
login
ok "the new state folder has no sandbox s" test ! -e "$PINCER_STATE_DIR/sandboxes/s"
post "" '{"name":"s"}'
run s 'cat /data/memory/owner.md'
is "a new machine's s gets memory/owner.md back from the store" "$OUT" "likes green tea"

# --- SIGKILL in the middle of a sync ------------------------------------------------
run s 'mkdir -p /data/bulk && i=0; while [ $i -lt 1500 ]; do
	head -c 3000 /dev/urandom > /data/bulk/f$i; i=$((i+1)); done; sync'
is "1,500 new files written" "$CODE" 200
busy() { grep -q '"busy":true' "$PINCER_STATE_DIR/sandboxes/s/sync/state.json" 2>/dev/null; }
if wait_until 20 busy; then
	kill -KILL "$PINCER_PID"
	wait "$PINCER_PID" 2>/dev/null
	ok "pincerd killed with SIGKILL while a sync was under way" true
	before=$(blobs)
	diag "blobs in the store at the kill: $before"
else
	ok "a sync was seen under way (state busy) to kill it" false
fi
# While pincerd is down the agent's last 500 files go (as if deleted in
# the sandbox): blobs of some went up before the kill, and no manifest
# will name them; the next sync must sweep them.
for i in $(seq 1000 1499); do rm -f "$PINCER_STATE_DIR/sandboxes/s/data/bulk/f$i"; done
# The sandbox's processes die with pincerd (parent-death signal); the
# same state folder again (d2).
T_DAEMONS=$((T_DAEMONS - 1))
if ! pincer_start "$CONF"; then
	ok "pincerd starts again on the same state folder" false
	done_testing
fi
ok "the restarted pincerd finishes the sync (the 1,000 files left listed)" wait_until 60 eval \
    "[ \"\$(jv \"\$(manifest)\" 'Object.keys(o.entries).filter(k => k.startsWith(\"bulk/f\")).length')\" = 1000 ]"
ok "… the state is no longer busy" wait_until 10 eval '! busy'
ok "… every blob the manifest names exists, none more (the cut sync's swept)" \
    wait_until 10 eval '[ "$(blobs)" = "$(referenced)" ]'
ok "… the earlier files are all still there" has memory/owner.md
M=$(manifest)
ok "… no conflict copy was made" jok "$M" '!Object.keys(o.entries).some(k => k.includes(".conflict-"))'
n=$(find "$PINCER_STATE_DIR/sandboxes/s/data/bulk" -type f | wc -l)
is "… and the folder still has its 1,000 files" "$n" 1000
bad=0
for f in 0 499 999; do
	h=$(sha256sum "$PINCER_STATE_DIR/sandboxes/s/data/bulk/f$f" | cut -d' ' -f1)
	[ "$(pcli objstore get "data/s/blobs/$h" - | sha256sum | cut -d' ' -f1)" = "$h" ] || bad=$((bad + 1))
done
is "… the store's bytes match the files" "$bad" 0
login

# --- a change on two machines ---------------------------------------------------------
# This machine (B) has base "likes green tea"; another (A, the earlier
# state folder) changes it in the store; B changes it too, unsynced
# (pincerd down). B's next sync finds both sides changed.
pincer_stop
B_DIR=$PINCER_DIR
B_DATA="$PINCER_STATE_DIR/sandboxes/s/data"
printf 'from B\n' > "$B_DATA/memory/owner.md"
touch -d '+1 minute' "$B_DATA/memory/owner.md"
pincer_start "$CONF" >/dev/null || true
login
post "" '{"name":"s"}'
run s 'echo "from A" > /data/memory/owner.md'
ok "machine A's change reaches the store" wait_until 10 has memory/owner.md "$(sha 'from A
')"
pincer_stop
# B again, on its own state folder.
PINCER_STATE_DIR="$B_DIR/state"
PINCER_CONF="$B_DIR/pincer.json"
PINCER_LOG="$T_LOGDIR/$T_NAME.b.pincerd.log"
: >"$PINCER_LOG"
"$PINCER_BIN" serve --config "$PINCER_CONF" --state "$PINCER_STATE_DIR" \
    --listen 127.0.0.1:0 2>>"$PINCER_LOG" &
PINCER_PID=$!
T_PIDS="$T_PIDS $PINCER_PID"
wait_until 10 eval '[ -n "$(_t_addr "$PINCER_LOG")" ]'
PINCER_ADDR=$(_t_addr "$PINCER_LOG")
PINCER_URL="http://$PINCER_ADDR"
ok "B's sync reports a conflict" wait_until 20 grep -q 'conflict: both copies kept' "$PINCER_LOG"
copy=$(ls "$B_DATA/memory" | grep 'owner.md.conflict-' | head -1)
is "B's folder keeps the newer copy (its own) as owner.md" "$(cat "$B_DATA/memory/owner.md")" "from B"
like "… and A's as owner.md.conflict-MACHINE-TIME" "$copy" '^owner\.md\.conflict-[A-Za-z0-9_-]+-[0-9]{8}-[0-9]{6}$'
is "… which holds A's words" "$(cat "$B_DATA/memory/$copy" 2>/dev/null)" "from A"
ok "the store lists both" has "memory/$copy" "$(sha 'from A
')"
ok "… and owner.md is B's" has memory/owner.md "$(sha 'from B
')"
TOK=$(pcli token create --user alice --scope sandbox --name sbx2 2>/dev/null)
secret_register "$TOK"
api GET /s/sync
ok "the status lists the conflict" jok "$BODY" \
    "o.conflicts_total >= 1 && o.conflicts.some(c => c.path === 'memory/owner.md' && c.copy === 'memory/$copy')"
pincer_stop
is "B stops cleanly" "$PINCER_EXIT" 0

# --- the store moved (a new, empty store): nothing is deleted ----------------------
printf '%s\n' "${CONF/$STORE/$T_TMP/store2}" >"$PINCER_CONF"
"$PINCER_BIN" serve --config "$PINCER_CONF" --state "$PINCER_STATE_DIR" \
    --listen 127.0.0.1:0 2>>"$PINCER_LOG" &
PINCER_PID=$!
T_PIDS="$T_PIDS $PINCER_PID"
wait_until 10 eval '[ -n "$(_t_addr "$PINCER_LOG")" ]'
m2() { [ -f "$T_TMP/store2/data/s/manifest.json" ] &&
	grep -q '"memory/owner.md"' "$T_TMP/store2/data/s/manifest.json"; }
ok "objstore.path changed to an empty folder: /data goes up there whole" wait_until 20 m2
ok "… the store without a manifest deleted nothing here" test -f "$B_DATA/memory/owner.md" -a -f "$B_DATA/memory/$copy"
like "… and the log says why it went up again" "$(cat "$PINCER_LOG")" 'the store has no manifest any more'
pincer_stop
printf '%s\n' "$CONF" >"$PINCER_CONF"

# --- the local backend's own checks ---------------------------------------------------
out=$(pcli objstore check 2>&1)
like "pincer objstore check: put, get, list and rm work" "$out" 'put, get, list and rm work'
out=$(pcli objstore put ../x /etc/hostname 2>&1)
is "a key with .. is refused: exit 1" "$?" 1
like "… saying why" "$out" "'\\.\\.' parts are refused"
pcli objstore head data/s/nothing >/dev/null 2>&1
is "head of a missing key: exit 3" "$?" 3
printf 'x' > "$T_TMP/file"
out=$("$PINCER_BIN" --config <(printf '{ "objstore": { "path": "%s" } }' "$T_TMP/file") \
    --state "$PINCER_STATE_DIR" serve 2>&1)
is "pincerd with objstore.path on a file does not start" "$?" 1
like "… and says the object store cannot be used" "$out" 'object store cannot be used'
out=$("$PINCER_BIN" --config <(printf '{ "objstore": { "backend": "s3" } }') config check 2>&1)
like "objstore.backend s3 without an endpoint: a config error naming it" \
    "$out" 'objstore.endpoint: the s3 backend needs' 
like "… the bucket too" "$out" 'objstore.bucket'
out=$("$PINCER_BIN" --config <(printf '{ "objstore": { "prefix": "/abs" } }') config check 2>&1)
like "objstore.prefix must end in / and not start with one" "$out" 'objstore.prefix'
done_testing
