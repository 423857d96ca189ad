# SPDX-License-Identifier: MIT
# snapshots_damaged.sh: a snapshot's archive that is not what pincerd
# packed is refused, with a clear error, and the target sandbox is left as
# it was: truncated, replaced by garbage, or crafted to write outside the
# sandbox's folder (a ".." path, an absolute path, a file through a
# symlink, a hard link out, a device node, a part that is not one). A
# sandbox's own links to host files are packed as links. Members and
# callers without a token are refused.
. "$TOP_SRCDIR/tests/integration/lib.sh"
. "$TOP_SRCDIR/tests/integration/sandbox_lib.sh"

SN=/api/v1/snapshots
snap() {
	local m=$1 p=$2
	shift 2
	req "$m" "$SN$p" -H "Authorization: Bearer $TOK" "$@"
}
spost() { snap POST "$1" -H 'Content-Type: application/json' --data-binary "$2"; }
state_of() { api GET "/$1"; jv "$BODY" o.state; }

if [ ! -x "$TOP_BUILDDIR/pincer-init" ]; then
	ok "pincer-init is built next to pincer" false
	done_testing
fi
if ! pincer_start "{ $FAST }"; then
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
OUTSIDE="$T_TMP/outside"
mkdir -p "$OUTSIDE"

post "" '{"name":"t"}'
is "create t: 201" "$CODE" 201
run t 'echo original >/workspace/keep; ln -s /etc/shadow /workspace/shadow; ln -s / /workspace/root'
api POST /t/snapshots
is "a snapshot of t: 201" "$CODE" 201
ID=$(jv "$BODY" o.id)
ARCH="$STORE/$ID/state.tar.zst"
MAN="$STORE/$ID/manifest.json"
cp "$ARCH" "$T_TMP/good.tar.zst"
cp "$MAN" "$T_TMP/good.json"
if command -v zstd >/dev/null; then
	LIST=$(zstd -dc "$ARCH" | tar -tvf - 2>/dev/null)
	like "links to host files are packed as links" "$LIST" 'workspace/shadow -> /etc/shadow'
	unlike "… and nothing of what they point to" "$(zstd -dc "$ARCH" | strings)" '^root:'
else
	skip "links packed as links" "no zstd here"
	skip "… and nothing of what they point to" "no zstd here"
fi
# Changed after the snapshot: a refused restore must leave it so.
run t 'echo later >/workspace/keep'

# untouched: t as it was, running, and nothing left behind.
untouched() {
	run t 'cat /workspace/keep' &&
	    [ "$OUT" = later ] && [ "$(state_of t)" = running ] &&
	    [ -z "$(ls -A "$SB" | grep '^\.')" ] &&
	    [ -z "$(ls -A "$OUTSIDE")" ]
}
# put FILE: FILE as the snapshot's archive, with a manifest that matches
# it (so the archive's content itself is what is judged).
put() {
	cp "$1" "$ARCH"
	node -e 'const fs = require("fs"), c = require("crypto");
		const m = JSON.parse(fs.readFileSync(process.argv[1]));
		m.sha256 = c.createHash("sha256").update(fs.readFileSync(process.argv[2])).digest("hex");
		fs.writeFileSync(process.argv[1], JSON.stringify(m));' "$MAN" "$ARCH"
}
# refused WHAT: restore into t and into a new sandbox are both refused.
refused() {
	spost "/$ID/restore" '{"sandbox":"t"}'
	is "$1: restore into t: 422 snapshot_damaged" "$CODE:$(jv "$BODY" o.error.code)" 422:snapshot_damaged
	MSG=$(jv "$BODY" o.error.message)
	ok "$1: t is untouched and running, nothing left beside it or outside" untouched
	spost "/$ID/restore" '{"sandbox":"t2","create":true}'
	is "$1: restore into a new t2: 422" "$CODE" 422
	api GET /t2
	is "$1: … and t2 was not made" "$CODE" 404
	ok "$1: … nor its folder" test ! -e "$SB/t2"
}

# --- what the store holds is not what was packed ---------------------------
SIZE=$(stat -c %s "$T_TMP/good.tar.zst")
head -c $((SIZE / 2)) "$T_TMP/good.tar.zst" >"$ARCH"
refused "a truncated archive"
like "… the message says the archive does not match its manifest" "$MSG" 'does not match its manifest.*truncated'
head -c 5000 /dev/urandom >"$ARCH"
refused "random bytes"
head -c 5000 /dev/urandom >"$T_TMP/garbage"
put "$T_TMP/garbage"
refused "random bytes with a matching manifest"
like "… the message says the archive is damaged" "$MSG" 'archive'
head -c $((SIZE / 2)) "$T_TMP/good.tar.zst" >"$T_TMP/half"
put "$T_TMP/half"
refused "a truncated archive with a matching manifest"

# --- crafted archives (python3's tarfile) ------------------------------------
# craft NAME SCRIPT: SCRIPT adds members to tarfile t; compressed with
# zstd when there is one (uncompressed is read the same way).
craft() {
	python3 - "$T_TMP/$1.tar" "$OUTSIDE" "$2" <<'PY'
import io, sys, tarfile
out, outside, script = sys.argv[1], sys.argv[2], sys.argv[3]
t = tarfile.open(out, "w", format=tarfile.PAX_FORMAT)
def d(name):
	i = tarfile.TarInfo(name); i.type = tarfile.DIRTYPE; i.mode = 0o755; t.addfile(i)
def f(name, data=b"pwned\n"):
	i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))
def l(name, target):
	i = tarfile.TarInfo(name); i.type = tarfile.SYMTYPE; i.linkname = target; t.addfile(i)
def h(name, target):
	i = tarfile.TarInfo(name); i.type = tarfile.LNKTYPE; i.linkname = target; t.addfile(i)
def c(name, major, minor):
	i = tarfile.TarInfo(name); i.type = tarfile.CHRTYPE; i.devmajor = major; i.devminor = minor; t.addfile(i)
d("upper"); d("workspace"); d("data")
exec(script)
t.close()
PY
	if command -v zstd >/dev/null; then
		zstd -q -f "$T_TMP/$1.tar" -o "$T_TMP/$1.tar.zst"
	else
		cp "$T_TMP/$1.tar" "$T_TMP/$1.tar.zst"
	fi
	put "$T_TMP/$1.tar.zst"
}
if command -v python3 >/dev/null; then
	craft dotdot 'f("workspace/../../../escape")'
	refused "a .. path"
	like "… the message names the path" "$MSG" 'outside a sandbox.s state'
	ok "… no file was made above the sandboxes" test ! -e "$PINCER_STATE_DIR/escape" -a ! -e "$SB/escape"
	craft absolute 'f(outside + "/abs")'
	refused "an absolute path"
	craft through 'l("workspace/evil", outside); f("workspace/evil/pwned")'
	refused "a file written through a symlink"
	craft uplink 'l("workspace/up", "../.."); d("workspace/up/x")'
	refused "a folder made through a symlink"
	craft hardout 'h("workspace/h", "../../../pincer.db")'
	refused "a hard link out"
	craft hardin 'h("workspace/h", "workspace/missing")'
	refused "a hard link to nothing"
	craft device 'c("workspace/null", 1, 3)'
	refused "a device node"
	like "… the message says so" "$MSG" 'device'
	craft part 'd("run"); f("run/control.sock")'
	refused "a part a snapshot never has (run/)"
	craft filepart 'f("workspace2")'
	refused "a top-level file"
else
	skip "crafted archives" "no python3 here"
fi

# --- the manifest -------------------------------------------------------------
cp "$T_TMP/good.tar.zst" "$ARCH"
cp "$T_TMP/good.json" "$MAN"
node -e 'const fs = require("fs"); const m = JSON.parse(fs.readFileSync(process.argv[1]));
	m.format = "other/9"; fs.writeFileSync(process.argv[1], JSON.stringify(m));' "$MAN"
spost "/$ID/restore" '{"sandbox":"t"}'
is "a manifest of another format: 422" "$CODE" 422
printf 'not json' >"$MAN"
snap GET "/$ID"
is "a manifest that is not JSON: GET says 502 with the reason" "$CODE" 502
like "… the reason" "$(jv "$BODY" o.error.message)" 'manifest is damaged'
rm "$MAN"
snap GET "/$ID"
is "an archive without its manifest is no snapshot: 404" "$CODE" 404
cp "$T_TMP/good.json" "$MAN"
spost "/$ID/restore" '{"sandbox":"t"}'
is "the good archive again: restore into t: 200" "$CODE" 200
run t 'cat /workspace/keep; readlink /workspace/shadow'
is "… t has the snapshot's state, its link still a link" "$OUT" "$(printf 'original\n/etc/shadow')"

# --- who may ----------------------------------------------------------------------
printf '%s\n' "$PW" | pcli user add bob --role member --password-stdin >/dev/null 2>&1
BOB=$(pcli token create --user bob --scope sandbox --name b 2>/dev/null)
secret_register "$BOB"
req POST "$SP/t/snapshots" -H "Authorization: Bearer $BOB"
is "a member's token: 403" "$CODE" 403
req GET "$SN/$ID" -H "Authorization: Bearer $BOB"
is "… GET a snapshot: 403" "$CODE" 403
req DELETE "$SN/$ID"
is "no token: DELETE is 401" "$CODE" 401
READ=$(pcli token create --user alice --scope read --name r 2>/dev/null)
secret_register "$READ"
req POST "$SN/$ID/fork" -H "Authorization: Bearer $READ" --data-binary '{"count":1,"prefix":"z"}'
is "a token without the sandbox scope: 403" "$CODE" 403

pincer_stop
is "pincerd stops cleanly" "$PINCER_EXIT" 0

# A restore cut short by the end of pincerd leaves a staging folder: the
# next start removes it.
mkdir -p "$SB/.restore-t-AbC123/workspace/dir"
chmod 500 "$SB/.restore-t-AbC123/workspace/dir"
hand_start again "$PINCER_BIN" serve --config "$PINCER_CONF" \
    --state "$PINCER_STATE_DIR" --listen 127.0.0.1:0
ok "a staging folder left from before is removed at start" \
    wait_until 5 test ! -e "$SB/.restore-t-AbC123"
ok "… and t is still there" test -d "$SB/t/workspace"
hand_stop
is "that pincerd stops cleanly" "$H_EXIT" 0
done_testing
