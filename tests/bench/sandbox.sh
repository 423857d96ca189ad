#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Sandbox benchmark: create -> first output of `echo hi`, pincer-sandbox
# beside bubblewrap (Debian's bwrap) doing the same isolation: new user,
# mount, pid, net, uts, ipc namespaces, the host's /usr read-only, a fresh
# /proc, /dev and /tmp, no capabilities. Each run is a new sandbox.
# Figures only. Env: SANDBOX_BIN, BENCH_RUNS (default 200).
set -euo pipefail
: "${SANDBOX_BIN:?}"
runs=${BENCH_RUNS:-200}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Run a command $runs times; print p50, p99 and max in ms.
timed() {
	local name=$1 i t0 t1 out
	shift
	: >"$tmp/t"
	for i in $(seq "$runs"); do
		t0=$(date +%s%N)
		out=$("$@" 2>&1)
		t1=$(date +%s%N)
		[ "$out" = hi ] || { echo "$name: unexpected output: $out" >&2; return 1; }
		echo $(((t1 - t0) / 1000)) >>"$tmp/t"
	done
	sort -n "$tmp/t" | awk -v n="$name" -v r="$runs" '{ v[NR] = $1 } END {
	    printf "%-34s p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms  (%d runs)\n",
	    n, v[int(NR * 0.5)] / 1000, v[int(NR * 0.99)] / 1000, v[NR] / 1000, r }'
}

echo "create -> first output of 'echo hi', a new sandbox each time:"
timed "pincer-sandbox" "$SANDBOX_BIN" --dir "$tmp/sb" -- /bin/sh -c 'echo hi'
if command -v bwrap >/dev/null; then
	timed "bwrap (same namespaces, /usr ro)" bwrap --unshare-all \
	    --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib \
	    --symlink usr/lib64 /lib64 --proc /proc --dev /dev --tmpfs /tmp \
	    --cap-drop ALL --die-with-parent --new-session \
	    /bin/sh -c 'echo hi'
else
	echo "bwrap is not installed (apt-get install bubblewrap)"
fi
timed "plain sh, no sandbox (floor)" /bin/sh -c 'echo hi'
