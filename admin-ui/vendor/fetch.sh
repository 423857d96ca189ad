#!/bin/sh
# SPDX-License-Identifier: MIT
# fetch.sh SRCDIR BUILDDIR [NPM]: xterm.js and its fit addon for the admin
# UI's terminal, from npm, pinned by admin-ui/vendor/package-lock.json
# (npm checks each package's integrity hash). Only the files the page loads
# land in BUILDDIR/admin-ui/vendor/lib/ (installed with the UI) and, when
# the source tree is writable, in SRCDIR/admin-ui/vendor/lib/ too, where a
# pincerd pointed at the source tree's admin-ui/ (tests, quickstart) looks.
#
# Without npm or the registry this warns and succeeds: pincer runs without
# a terminal in the UI (the tab says "xterm.js is not installed"), and a
# host that only runs pincer needs no Node.js. Exit 0 with lib/ complete
# or missing; 1 only on a broken copy.
set -eu
src=$1/admin-ui/vendor
out=$2/admin-ui/vendor
npm=${3:-npm}
files="@xterm/xterm/lib/xterm.mjs @xterm/xterm/css/xterm.css
@xterm/addon-fit/lib/addon-fit.mjs"

warn() {
	echo "admin-ui/vendor: $*; the admin UI's terminal tab will say" \
	    "\"xterm.js is not installed\" (npm, then make, installs it)." >&2
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
command -v "$npm" >/dev/null 2>&1 || warn "npm ($npm) was not found"
# ci: exactly the lock's versions and hashes; no scripts run; a dead
# registry fails in seconds, not minutes.
(cd "$out" && "$npm" ci --omit=dev --ignore-scripts --no-audit --no-fund \
    --loglevel=error --fetch-retries=1 --fetch-timeout=30000) ||
	warn "npm ci failed (is the npm registry reachable?)"

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
