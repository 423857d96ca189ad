#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the Node end-to-end tests as one TAP stream for automake's harness.
set -u
cd "$TOP_SRCDIR/tests/e2e" || exit 99
if [ ! -d node_modules ]; then
	# `make distcheck` builds from a tarball without node_modules.
	echo "1..0 # SKIP node_modules missing: run npm ci in tests/e2e"
	exit 0
fi
exec node --test --test-reporter=tap --test-concurrency=1 ./*.test.mjs
