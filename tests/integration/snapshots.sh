# SPDX-License-Identifier: MIT
# snapshots.sh: sandbox snapshots end to end on real sandboxes: a snapshot
# of a sandbox's writable state (modes, owners, a symlink, a hard link, a
# FIFO, an extended attribute, a name that is not UTF-8, a whiteout in the
# overlay, a package installed with dpkg), the sandbox destroyed, restored
# into a new sandbox in another uid range and into an existing one; a fork
# into four sandboxes that do not share changes; list, get, delete;
# retention (snapshots.keep 2); the CLI; and the simple refusals.
. "$TOP_SRCDIR/tests/integration/lib.sh"
. "$TOP_SRCDIR/tests/integration/sandbox_lib.sh"

SN=/api/v1/snapshots
# snap METHOD PATH [CURL ARGS]: a call under /api/v1/snapshots with $TOK.
snap() {
	local m=$1 p=$2
	shift 2
	req "$m" "$SN$p" -H "Authorization: Bearer $TOK" "$@"
}
spost() { snap POST "$1" -H 'Content-Type: application/json' --data-binary "$2"; }
state_of() { api GET "/$1"; jv "$BODY" o.state; }
is_state() { [ "$(state_of "$1")" = "$2" ]; }
slot_of() { api GET "/$1"; jv "$BODY" o.slot; }
# Each sandbox's root is a host uid of its own range (sandbox.uid_base
# 100000 + slot * 65536) when pincerd runs as root.
base_of() { echo $((100000 + $(slot_of "$1") * 65536)); }
ROOT=$([ "$(id -u)" = 0 ] && echo yes)

if [ ! -x "$TOP_BUILDDIR/pincer-init" ]; then
	ok "pincer-init is built next to pincer" false
	done_testing
fi
if ! pincer_start "{ $FAST, \"snapshots\": { \"keep\": 2 } }"; then
	ok "pincerd starts" false
	done_testing
fi
PW=$(random_token)
secret_register "$PW"
printf '%s\n' "$PW" | pcli user add alice --role owner --password-stdin >/dev/null 2>&1
TOK=$(pcli token create --user alice --scope sandbox --name sbx 2>/dev/null)
secret_register "$TOK"
SB="$PINCER_STATE_DIR/sandboxes"
STORE="$PINCER_STATE_DIR/objstore/snapshots"

# --- a sandbox with something of everything ---------------------------------
post "" '{"name":"src"}'
is "create src: 201" "$CODE" 201
post "" '{"name":"pad"}'
is "create pad (slot 1, so a restore lands in another range)" "$CODE" 201

# A package: a tiny .deb built here, installed inside with dpkg into the
# overlay (its file and dpkg's database both under /usr, the one place
# of the root file system a sandbox may write to).
DEB=""
if command -v dpkg-deb >/dev/null; then
	mkdir -p "$T_TMP/deb/DEBIAN" "$T_TMP/deb/usr"
	printf 'Package: pincer-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@invalid>\nDescription: a test package\n' \
	    >"$T_TMP/deb/DEBIAN/control"
	printf '#!/bin/sh\necho "hello from a package"\n' >"$T_TMP/deb/usr/pincer-hello"
	chmod 755 "$T_TMP/deb/usr/pincer-hello"
	dpkg-deb --root-owner-group -Zgzip --build "$T_TMP/deb" "$T_TMP/hello.deb" >/dev/null 2>&1 &&
	    DEB="$T_TMP/hello.deb"
fi
if [ -n "$DEB" ]; then
	api PUT /src/files/workspace/hello.deb --data-binary "@$DEB"
	is "the package is copied in" "$CODE" 201
	run src 'mkdir -p /usr/pincer-dpkg/updates /usr/pincer-dpkg/info /usr/pincer-dpkg/triggers &&
		touch /usr/pincer-dpkg/status &&
		dpkg --force-not-root --force-bad-path --admindir=/usr/pincer-dpkg --instdir=/ -i /workspace/hello.deb >/dev/null 2>&1 &&
		rm /workspace/hello.deb && /usr/pincer-hello'
	is "dpkg -i installs it inside src, and it runs" "$OUT" "hello from a package"
fi
# A whiteout: an empty folder of the lower /usr removed in the overlay.
WHITEOUT=""
if [ -d /usr/games ] && [ -z "$(ls -A /usr/games)" ]; then
	run src 'rmdir /usr/games && ! test -e /usr/games && echo gone'
	is "rmdir /usr/games inside src (an overlay whiteout)" "$OUT" gone
	ok "… is a 0/0 character device in the upper layer" \
	    test "$(stat -c '%F %t %T' "$SB/src/upper/usr/games")" = "character special file 0 0"
	WHITEOUT=yes
fi
run src 'set -e
	mkdir -p /workspace/dir /workspace/locked /data/mem
	chmod 750 /workspace/dir
	printf "secret\n" >/workspace/dir/file; chmod 640 /workspace/dir/file
	printf "#!/bin/sh\necho script ran\n" >/workspace/run.sh; chmod 755 /workspace/run.sh
	ln -s dir/file /workspace/link
	ln -s /nowhere/at/all /workspace/dangling
	ln /workspace/dir/file /workspace/hard
	mkfifo /workspace/pipe
	: >/workspace/empty
	printf "in locked\n" >/workspace/locked/inside; chmod 500 /workspace/locked
	head -c 3000000 /dev/urandom >/data/big
	printf "remember this\n" >/data/mem/notes.md
	printf "x\n" >"/workspace/$(printf "caf\303\251\377")"
	printf "owned\n" >/workspace/owned
	sha256sum /data/big | cut -c1-64'
is "files are made inside src" "$CODE" 200
BIGSUM=$OUT
XATTR=""
if command -v python3 >/dev/null; then
	run src 'python3 -c "import os; os.setxattr(\"/workspace/dir/file\", \"user.pincer\", b\"kept\")" && echo set'
	[ "$OUT" = set ] && XATTR=yes
fi
# The sandbox's root has no CAP_CHOWN: a file of another inner user is
# given one from the host while src is asleep (inner 1000 = base + 1000).
if [ -n "$ROOT" ]; then
	api POST /src/stop
	chown $(( $(base_of src) + 1000 )):$(( $(base_of src) + 1000 )) "$SB/src/workspace/owned"
	run src 'stat -c "%u:%g" /workspace/owned'
	is "src sees /workspace/owned as 1000:1000" "$OUT" "1000:1000"
fi
ok "src is running" is_state src running

# --- the snapshot ------------------------------------------------------------
api POST /src/snapshots
is "POST $SP/src/snapshots: 201" "$CODE" 201
ID=$(jv "$BODY" o.id)
like "… an id of the sandbox's name, the time and 4 hex digits" "$ID" '^src-[0-9]{8}-[0-9]{6}\.[0-9]{3}-[0-9a-f]{4}$'
ok "… its manifest: sandbox, files, bytes, size, sha256, inner ids from 0, version, format" jok "$BODY" \
    'o.sandbox === "src" && o.files >= 15 && o.bytes >= 3000000 && o.size > 0 && /^[0-9a-f]{64}$/.test(o.sha256) && o.ids.base === 0 && typeof o.pincer_version === "string" && o.format === "pincer-snapshot/1" && o.reason === "api" && o.by === "alice"'
ok "… the archive and the manifest are in the object store" \
    test -s "$STORE/$ID/state.tar.zst" -a -s "$STORE/$ID/manifest.json"
ok "… the archive is zstd (zstd's magic number)" \
    test "$(od -An -tx1 -N4 "$STORE/$ID/state.tar.zst" | tr -d ' ')" = 28b52ffd
ok "src was put to sleep for it and is running again" wait_until 10 is_state src running
ok "the snapshot's audit line" wait_log "action=snapshot.create actor=alice .*target=$ID"

# --- destroyed, then restored into a new sandbox in another range ------------
api DELETE /src
is "src is destroyed" "$CODE" 200
ok "… its folder is gone" test ! -e "$SB/src"
post "" '{"name":"pad2"}'
is "pad2 takes src's slot (0)" "$(jv "$BODY" o.slot)" 0
spost "/$ID/restore" '{"sandbox":"dst","create":true}'
is "restore into a new sandbox dst: 201" "$CODE" 201
ok "… dst is running, in slot 2" jok "$BODY" \
    'o.sandboxes.length === 1 && o.sandboxes[0].name === "dst" && o.sandboxes[0].state === "running" && o.sandboxes[0].slot === 2'
ok "the restore's audit line" wait_log "action=snapshot.restore actor=alice .*target=dst"

# check NAME: every kind of thing the snapshot holds, seen inside NAME.
check() {
	local n=$1
	run "$n" 'cd /workspace
		stat -c "%a" dir dir/file run.sh locked; readlink link; readlink dangling
		cat link; stat -c "%i" hard dir/file | uniq | wc -l; stat -c "%h" hard
		test -p pipe && echo fifo; stat -c "%s" empty; cat locked/inside
		./run.sh; cat /data/mem/notes.md; sha256sum /data/big | cut -c1-64
		test -f "$(printf "caf\303\251\377")" && echo binary-name'
	is "$n: modes 750 640 755 500, link targets, contents, one inode for the hard link, a FIFO, an empty file, the script runs, /data" \
	    "$OUT" "$(printf '750\n640\n755\n500\ndir/file\n/nowhere/at/all\nsecret\n1\n2\nfifo\n0\nin locked\nscript ran\nremember this\n%s\nbinary-name' "$BIGSUM")"
	if [ -n "$ROOT" ]; then
		run "$n" 'stat -c "%u:%g %a" /workspace/owned /workspace/dir/file'
		is "$n: /workspace/owned is still inner 1000, the rest inner root" "$OUT" "$(printf '1000:1000 600\n0:0 640')"
		local b
		b=$(base_of "$n")
		is "$n: on the host it is that sandbox's base + 1000" \
		    "$(stat -c %u:%g "$SB/$n/workspace/owned")" "$((b + 1000)):$((b + 1000))"
	else
		skip "$n: owners in another range" "needs root"
		skip "$n: host owners" "needs root"
	fi
	if [ -n "$WHITEOUT" ]; then
		run "$n" 'test -e /usr/games && echo back || echo hidden'
		is "$n: the whiteout still hides /usr/games" "$OUT" hidden
	else
		skip "$n: the whiteout" "no empty /usr/games on this host"
	fi
	if [ -n "$DEB" ]; then
		run "$n" '/usr/pincer-hello; dpkg --admindir=/usr/pincer-dpkg -s pincer-hello | grep ^Status'
		is "$n: the package's program runs and dpkg has it installed" "$OUT" \
		    "$(printf 'hello from a package\nStatus: install ok installed')"
	else
		skip "$n: the package" "no dpkg-deb here"
	fi
	if [ -n "$XATTR" ]; then
		run "$n" 'python3 -c "import os; print(os.getxattr(\"/workspace/dir/file\", \"user.pincer\").decode())"'
		is "$n: the user.* extended attribute" "$OUT" kept
	else
		skip "$n: the extended attribute" "no python3 inside"
	fi
}
check dst

# --- restored into an existing sandbox -----------------------------------------
run dst 'echo changed >/workspace/dir/file; echo new >/workspace/new; rm /data/mem/notes.md'
spost "/$ID/restore" '{"sandbox":"dst"}'
is "restore into the existing dst: 200" "$CODE" 200
run dst 'cat /workspace/dir/file; test -e /workspace/new && echo new-stays; cat /data/mem/notes.md'
is "… the snapshot's state is back, the later file gone" "$OUT" "$(printf 'secret\nremember this')"
ok "… dst runs again" is_state dst running
ok "no staging folder is left beside the sandboxes" test -z "$(ls -A "$SB" | grep '^\.')"

# --- fork ------------------------------------------------------------------------
spost "/$ID/fork" '{"count":4,"prefix":"f"}'
is "fork into 4: 201" "$CODE" 201
ok "… f-1 to f-4, all running" jok "$BODY" \
    'o.sandboxes.map(s => s.name + ":" + s.state).join() === "f-1:running,f-2:running,f-3:running,f-4:running"'
ok "… in four different slots" jok "$BODY" 'new Set(o.sandboxes.map(s => s.slot)).size === 4'
for f in f-1 f-2 f-3 f-4; do check "$f"; done
run f-1 'echo only here >/workspace/only-f1; echo f1 >/workspace/dir/file'
n=0
for f in f-2 f-3 f-4; do
	run "$f" 'test -e /workspace/only-f1 && echo leaked; cat /workspace/dir/file'
	[ "$OUT" = secret ] && n=$((n + 1))
done
is "a change in f-1 is in none of f-2, f-3, f-4" "$n" 3
spost "/$ID/fork" '{"names":["g-1","f-2"]}'
is "fork onto an existing name: 409" "$CODE:$(jv "$BODY" o.error.code)" 409:exists
api GET /g-1
is "… and none was made (all or nothing)" "$CODE" 404
for b in '{}' '{"count":0,"prefix":"x"}' '{"count":33,"prefix":"x"}' '{"names":[]}' \
    '{"names":["ok","BAD"]}' '{"names":["a","a"]}' '{"count":2}' 'nope'; do
	spost "/$ID/fork" "$b"
	is "fork $b: 400" "$CODE" 400
done

# --- list, get, delete -------------------------------------------------------------
api GET /src/snapshots
is "GET $SP/src/snapshots (src is gone): 200" "$CODE" 200
ok "… its snapshot is listed" jok "$BODY" 'o.snapshots.length === 1 && o.snapshots[0].id === "'"$ID"'"'
snap GET ""
ok "GET $SN lists it too" jok "$BODY" 'o.snapshots.some(s => s.id === "'"$ID"'")'
snap GET "/$ID"
ok "GET $SN/ID: the manifest" jok "$BODY" 'o.id === "'"$ID"'" && o.sandbox === "src"'

# --- retention: snapshots.keep is 2 ----------------------------------------------
post "" '{"name":"r"}'
IDS=""
for i in 1 2 3; do
	run r "echo $i >/workspace/n"
	api POST /r/snapshots
	IDS="$IDS $(jv "$BODY" o.id)"
	E=$(jv "$BODY" o.expired)
done
set -- $IDS
is "the third snapshot of r expired one" "$E" 1
api GET /r/snapshots
ok "r keeps the 2 newest" jok "$BODY" \
    'o.snapshots.map(s => s.id).join() === "'"$3,$2"'"'
ok "… the oldest is gone from the store" test ! -e "$STORE/$1"
ok "… src's snapshot was not touched" test -e "$STORE/$ID/manifest.json"
snap DELETE "/$2"
is "DELETE $SN/ID: 200" "$CODE:$(jv "$BODY" o.deleted)" 200:true
snap GET "/$2"
is "… then GET: 404" "$CODE" 404
snap DELETE "/$2"
is "… DELETE again: 404" "$CODE" 404
ok "… its objects are gone" test ! -e "$STORE/$2"
ok "the delete's audit line" wait_log "action=snapshot.delete actor=alice .*target=$2"
R3=$3

# --- the CLI --------------------------------------------------------------------
CID=$(pcli sandbox snapshot r 2>"$T_TMP/cli.err")
like "pincer sandbox snapshot r: prints the new id" "$CID" '^r-[0-9]{8}-'
like "pincer sandbox snapshots r: a table with it" "$(pcli sandbox snapshots r)" "$CID +20[0-9-]+T.* api"
is "pincer sandbox restore ID r2 --new" "$(pcli sandbox restore "$CID" r2 --new 2>&1)" restored
run r2 'cat /workspace/n'
is "… r2 has r's state" "$OUT" 3
is "pincer sandbox fork ID r3 r4" "$(pcli sandbox fork "$CID" r3 r4 2>&1)" forked
is "pincer sandbox snapshot-rm ID" "$(pcli sandbox snapshot-rm "$CID" 2>&1)" deleted
like "pincer sandbox restore of a deleted one: the reason" "$(pcli sandbox restore "$CID" 2>&1)" 'no such snapshot'

# --- refusals ------------------------------------------------------------------------
api POST /nope/snapshots
is "a snapshot of a missing sandbox: 404" "$CODE:$(jv "$BODY" o.error.code)" 404:not_found
api POST /NOPE/snapshots
is "… of a name that cannot be: 404" "$CODE" 404
spost "/src-20990101-000000.000-abcd/restore" '{}'
is "restore of an unknown id: 404" "$CODE" 404
spost "/not-an-id/restore" '{}'
is "restore of a malformed id: 404" "$CODE" 404
snap GET "/../../etc"
is "GET $SN/../../etc: 404" "$CODE" 404
spost "/$R3/restore" '{"sandbox":"ghost"}'
is "restore into a missing sandbox without create: 404" "$CODE" 404
like "… the message says how" "$(jv "$BODY" o.error.message)" '"create": true'
spost "/$R3/restore" '{"sandbox":"pad","create":true}'
is "restore with create into an existing sandbox: 409" "$CODE" 409
spost "/$R3/restore" '{"sandbox":"Bad Name"}'
is "restore into a bad name: 400" "$CODE" 400
req POST "$SP/r/snapshots"
is "no token: 401" "$CODE" 401

pincer_stop
is "pincerd stops cleanly" "$PINCER_EXIT" 0
done_testing
