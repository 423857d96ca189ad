#!/bin/sh
# SPDX-License-Identifier: MIT
# fetch.sh SRCDIR BUILDDIR [NPM]: xterm.js and its fit addon for the admin
# UI's terminal, from npm, pinned by admin-ui/vendor/package-lock.json
# (npm checks each package's integrity hash). Only the files the page loads
# land in BUILDDIR/admin-ui/vendor/lib/ (installed with the UI) and, when
# the source tree is writable, in SRCDIR/admin-ui/vendor/lib/ too, where a
# pincerd pointed at the source tree's admin-ui/ (tests, quickstart) looks.
#
# Without npm (a host that only runs pincer needs no Node.js) the same
# tarballs come from the registry with curl, each checked against the
# lock's sha512 integrity before it is unpacked. Without the registry this
# warns and succeeds: pincer runs without a terminal in the UI (the tab
# says "xterm.js is not installed"). Exit 0 with lib/ complete or missing;
# 1 only on a broken copy.
set -eu
src=$1/admin-ui/vendor
out=$2/admin-ui/vendor
npm=${3:-npm}
files="@xterm/xterm/lib/xterm.mjs @xterm/xterm/css/xterm.css
@xterm/addon-fit/lib/addon-fit.mjs"

warn() {
	rm -rf "$out/dl.tmp"
	echo "admin-ui/vendor: $*; the admin UI's terminal tab will say" \
	    "\"xterm.js is not installed\" (with the registry reachable," \
	    "make installs it)." >&2
	exit 0
}

mkdir -p "$out"
same=false
[ "$(cd "$src" && pwd -P)" = "$(cd "$out" && pwd -P)" ] && same=true
if ! $same; then
	rm -f "$out/package.json" "$out/package-lock.json"
	cp "$src/package.json" "$src/package-lock.json" "$out/"
fi
[ "$npm" = false ] && warn "skipped (make NPM=false)"

# lock_field PACKAGE FIELD: the lock's "version" or "integrity" of
# node_modules/PACKAGE (the lock is npm's JSON, one field a line).
lock_field() {
	sed -n "\|\"node_modules/$1\": {|,/}/ s/.*\"$2\": \"\([^\"]*\)\".*/\1/p" \
	    "$out/package-lock.json" | head -n 1
}

# Each package of the lock from the registry, its sha512 checked, unpacked
# into node_modules/ as npm would.
by_curl() {
	registry=${NPM_REGISTRY:-https://registry.npmjs.org}
	command -v curl >/dev/null 2>&1 || warn "neither npm nor curl was found"
	command -v openssl >/dev/null 2>&1 ||
		warn "npm was not found, and openssl (to check the hashes) neither"
	rm -rf "$out/node_modules" "$out/dl.tmp"
	mkdir -p "$out/dl.tmp"
	for p in @xterm/xterm @xterm/addon-fit; do
		v=$(lock_field "$p" version)
		want=$(lock_field "$p" integrity)
		[ -n "$v" ] && [ "${want#sha512-}" != "$want" ] ||
			warn "the lock does not pin $p with a sha512"
		t="$out/dl.tmp/${p##*/}.tgz"
		curl -fsSL --max-time 60 --retry 1 -o "$t" \
		    "$registry/$p/-/${p##*/}-$v.tgz" ||
			warn "$p $v could not be fetched from $registry"
		got=sha512-$(openssl dgst -sha512 -binary "$t" | openssl base64 -A)
		[ "$got" = "$want" ] ||
			warn "$p $v from $registry does not match the lock's hash"
		mkdir -p "$out/node_modules/$p"
		tar -xzf "$t" -C "$out/node_modules/$p" --strip-components=1 \
		    --no-same-owner
	done
	rm -rf "$out/dl.tmp"
}

if command -v "$npm" >/dev/null 2>&1; then
	# ci: exactly the lock's versions and hashes; no scripts run; a dead
	# registry fails in seconds, not minutes.
	(cd "$out" && "$npm" ci --omit=dev --ignore-scripts --no-audit \
	    --no-fund --loglevel=error --fetch-retries=1 \
	    --fetch-timeout=30000) ||
		warn "npm ci failed (is the npm registry reachable?)"
else
	echo "admin-ui/vendor: npm ($npm) was not found; fetching with curl" >&2
	by_curl
fi

copy() {
	mkdir -p "$1/lib.tmp"
	for f in $files; do
		# The source maps are not shipped: drop the pointer to them.
		sed '/^\/\/# sourceMappingURL=/d' "$out/node_modules/$f" \
		    >"$1/lib.tmp/${f##*/}"
	done
	# MIT: the notices travel with the code.
	cp "$out/node_modules/@xterm/xterm/LICENSE" "$1/lib.tmp/xterm.LICENSE"
	cp "$out/node_modules/@xterm/addon-fit/LICENSE" \
	    "$1/lib.tmp/addon-fit.LICENSE"
	rm -rf "$1/lib"
	mv "$1/lib.tmp" "$1/lib"
}
copy "$out"
if ! $same && [ -w "$src" ] && touch "$src/.w" 2>/dev/null; then
	rm -f "$src/.w"
	copy "$src"
fi
