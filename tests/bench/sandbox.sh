#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Sandbox benchmark, printed side by side in one run:
#  - create -> first output of `echo hi`, a new sandbox each time:
#    pincer-sandbox with pincer-init as PID 1 (the command given to it, and
#    a POST /exec over control.sock), beside bubblewrap (Debian's bwrap)
#    doing the same isolation: new user, mount, pid, net, uts, ipc
#    namespaces, the host's /usr read-only, fresh /proc, /dev and /tmp, no
#    capabilities;
#  - exec round trip on a warm sandbox, over control.sock and through
#    pincerd's REST API (a token, TCP, keep-alive);
#  - BENCH_MANY (default 50) sandboxes started at once;
#  - pincer-init's resident memory.
# Targets on the build machine: create -> first output p50 <= 15 ms and
# p99 <= 40 ms; warm exec p50 <= 2 ms; pincer-init RSS <= 1 MB.
# Figures only. Env: SANDBOX_BIN, INIT_BIN, BENCH_BIN, PINCER_BIN,
# BENCH_RUNS (default 200), BENCH_MANY (default 50).
set -euo pipefail
: "${SANDBOX_BIN:?}" "${INIT_BIN:?}" "${BENCH_BIN:?}" "${PINCER_BIN:?}"
runs=${BENCH_RUNS:-200}
many=${BENCH_MANY:-50}
export SANDBOX_BIN INIT_BIN
tmp=$(mktemp -d)
pid=''
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "create -> first output of 'echo hi', a new sandbox each time:"
"$BENCH_BIN" create "$runs"
echo
echo "warm sandbox:"
"$BENCH_BIN" warm $((runs * 5))

# Through pincerd: an owner's token with the sandbox scope.
mkdir -m 700 "$tmp/state"
pin() { "$PINCER_BIN" --state "$tmp/state" "$@"; }
head -c 18 /dev/urandom | base64 | pin user add bench --role owner \
    --password-stdin >/dev/null
export PINCER_TOKEN
PINCER_TOKEN=$(pin token create --user bench --scope sandbox --name bench \
    --ttl 1d 2>/dev/null)
PINCER_SANDBOX_LAUNCHER="$SANDBOX_BIN" PINCER_SANDBOX_INIT="$INIT_BIN" \
    PINCER_HTTP_RATE_LIMIT_RPS=0 "$PINCER_BIN" serve --state "$tmp/state" \
    --listen 127.0.0.1:0 2>"$tmp/pincerd.log" &
pid=$!
addr=''
for _ in $(seq 200); do
	addr=$(sed -n 's/.*msg=listening addr=\([^ ]*\).*/\1/p' \
	    "$tmp/pincerd.log")
	[ -n "$addr" ] && break
	sleep 0.05
done
[ -n "$addr" ] || { cat "$tmp/pincerd.log" >&2; exit 1; }
curl -sf -H "Authorization: Bearer $PINCER_TOKEN" \
    -d '{"name":"bench"}' "http://$addr/api/v1/sandboxes" >/dev/null
"$BENCH_BIN" api "${addr%:*}" "${addr##*:}" bench $((runs * 5))
"$BENCH_BIN" apicreate "${addr%:*}" "${addr##*:}" "$runs"
echo
"$BENCH_BIN" many "$many"
