#!/bin/bash
# SPDX-License-Identifier: MIT
# vendor_fetch.sh: admin-ui/vendor/fetch.sh without npm (a host that only
# runs pincer): the packages pinned by the lock come from the registry
# with curl, each checked against the lock's sha512 before it is
# unpacked, and the files the page loads land in lib/. A tarball whose
# hash differs, a registry that cannot be reached, and NPM=false leave no
# lib/ and say why, without failing the build. A local registry stands in
# for npm's (the same URL layout: /@scope/name/-/name-VERSION.tgz).
. "$TOP_SRCDIR/tests/integration/lib.sh"

REG="$T_TMP/registry"
SRC="$T_TMP/src"
# pack DIR SCOPED-NAME VERSION: an npm tarball (top folder "package/").
pack() {
	local base=${2##*/}
	mkdir -p "$REG/$2/-"
	tar -czf "$REG/$2/-/$base-$3.tgz" -C "$1" package
}
sri() { printf 'sha512-%s' "$(openssl dgst -sha512 -binary "$1" |
    openssl base64 -A)"; }
mkdir -p "$T_TMP/x/package/lib" "$T_TMP/x/package/css" \
    "$T_TMP/f/package/lib" "$SRC/admin-ui/vendor"
printf 'export class Terminal {}\n//# sourceMappingURL=xterm.mjs.map\n' \
    >"$T_TMP/x/package/lib/xterm.mjs"
printf '.xterm { }\n' >"$T_TMP/x/package/css/xterm.css"
printf 'MIT xterm\n' >"$T_TMP/x/package/LICENSE"
printf 'export class FitAddon {}\n' >"$T_TMP/f/package/lib/addon-fit.mjs"
printf 'MIT fit\n' >"$T_TMP/f/package/LICENSE"
pack "$T_TMP/x" @xterm/xterm 6.0.0
pack "$T_TMP/f" @xterm/addon-fit 0.11.0
XI=$(sri "$REG/@xterm/xterm/-/xterm-6.0.0.tgz")
FI=$(sri "$REG/@xterm/addon-fit/-/addon-fit-0.11.0.tgz")
lock() {
	cat >"$SRC/admin-ui/vendor/package-lock.json" <<JSON
{
	"name": "pincer-admin-ui-vendor",
	"lockfileVersion": 3,
	"packages": {
		"node_modules/@xterm/addon-fit": {
			"version": "0.11.0",
			"integrity": "$2",
			"license": "MIT"
		},
		"node_modules/@xterm/xterm": {
			"version": "6.0.0",
			"integrity": "$1",
			"license": "MIT"
		}
	}
}
JSON
}
cp "$TOP_SRCDIR/admin-ui/vendor/package.json" "$SRC/admin-ui/vendor/"
lock "$XI" "$FI"

python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$REG" \
    >"$T_TMP/reg.log" 2>&1 &
T_PIDS="$T_PIDS $!"
reg_port() { sed -n 's/.*port \([0-9]*\).*/\1/p' "$T_TMP/reg.log" | head -1; }
reg_up() { test -n "$(reg_port)"; }
ok "the local registry serves" wait_until 10 reg_up
export NPM_REGISTRY="http://127.0.0.1:$(reg_port)"

fetch() {	# fetch OUT [NPM]: fetch.sh's rc in RC, its words in SAID
	SAID=$(sh "$TOP_SRCDIR/admin-ui/vendor/fetch.sh" "$SRC" "$1" \
	    "${2:-/no/such/npm}" 2>&1)
	RC=$?
}

fetch "$T_TMP/out1"
LIB=$T_TMP/out1/admin-ui/vendor/lib
is "without npm: fetch.sh succeeds" "$RC" 0
like "… and says it fetches with curl" "$SAID" 'npm .* was not found; fetching with curl'
ok "… xterm.mjs in lib/, as packed (its source map pointer dropped)" \
    test "$(cat "$LIB/xterm.mjs")" = "export class Terminal {}"
ok "… xterm.css and addon-fit.mjs too" \
    test -f "$LIB/xterm.css" -a -f "$LIB/addon-fit.mjs"
is "… with the licences" "$(cat "$LIB/xterm.LICENSE" "$LIB/addon-fit.LICENSE")" \
    "MIT xterm
MIT fit"
ok "… and into the source tree's lib/ (tests point pincerd there)" \
    test -f "$SRC/admin-ui/vendor/lib/xterm.mjs"
ok "… no download left behind" test ! -e "$T_TMP/out1/admin-ui/vendor/dl.tmp"

rm -rf "$SRC/admin-ui/vendor/lib"
lock "$FI" "$FI"	# xterm's hash is addon-fit's: a tarball that differs
fetch "$T_TMP/out2"
is "a tarball whose hash is not the lock's: the build goes on" "$RC" 0
like "… said" "$SAID" "@xterm/xterm 6.0.0 from .* does not match the lock's hash"
ok "… nothing unpacked is used: no lib/" test ! -e "$T_TMP/out2/admin-ui/vendor/lib"
ok "… nor in the source tree" test ! -e "$SRC/admin-ui/vendor/lib"

lock "$XI" "$FI"
NPM_REGISTRY="http://127.0.0.1:9" fetch "$T_TMP/out3"
is "a registry that cannot be reached: the build goes on" "$RC" 0
like "… said, with the terminal's words" "$SAID" \
    'could not be fetched from http://127.0.0.1:9.*xterm.js is not installed'
ok "… no lib/" test ! -e "$T_TMP/out3/admin-ui/vendor/lib"

fetch "$T_TMP/out4" false
like "NPM=false: skipped, said" "$SAID" 'skipped \(make NPM=false\)'
ok "… no lib/" test ! -e "$T_TMP/out4/admin-ui/vendor/lib"
done_testing
