# SPDX-License-Identifier: MIT
# nonloopback.sh: with no authentication yet, pincerd refuses any address
# that is not loopback, starts on any loopback one, and doctor says FAIL.
. "$TOP_SRCDIR/tests/integration/lib.sh"

unset PINCER_CONFIG PINCER_STATE PINCER_LISTEN

printf '{ "log": { "level": "info" } }\n' >"$T_TMP/pincer.json"

# refused ADDR: pincer serve --listen ADDR must exit non-zero, soon, saying
# why and naming the address.
refused() {
	local addr=$1 rc t0 ms err
	t0=$(date +%s%N)
	timeout 10 "$PINCER_BIN" serve --listen "$addr" --state "$T_TMP/state" \
	    --config "$T_TMP/pincer.json" >/dev/null 2>"$T_TMP/err"
	rc=$?
	ms=$((($(date +%s%N) - t0) / 1000000))
	err=$(cat "$T_TMP/err")
	ok "--listen $addr: exits non-zero, by itself (exit $rc)" \
	    test "$rc" -ne 0 -a "$rc" -ne 124
	ok "--listen $addr: exits within a few seconds (${ms} ms)" test "$ms" -lt 5000
	like "--listen $addr: says it refuses to listen on a non-loopback address" \
	    "$err" 'refusing to listen on a non-loopback address'
	ok "--listen $addr: the address is named" grep -qF -- "$addr" "$T_TMP/err"
	unlike "--listen $addr: never logs msg=listening" "$err" 'msg=listening'
}
refused 0.0.0.0:0
refused '[::]:0'
# Not only the wildcard: a specific non-loopback address is refused too,
# before any attempt to bind it.
refused 192.0.2.1:0
refused '[::ffff:10.0.0.1]:0'

# Loopback beyond 127.0.0.1: the whole 127.0.0.0/8.
PINCER_LISTEN_ADDR=127.0.0.2:0
if pincer_start; then
	like "--listen 127.0.0.2:0 starts and listens on 127.0.0.2" "$PINCER_ADDR" '^127\.0\.0\.2:[0-9]+$'
	CODE=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "$PINCER_URL/healthz" 2>&1)
	is "on 127.0.0.2: /healthz 200" "$CODE" 200
	pincer_stop
	is "on 127.0.0.2: exits 0 on SIGTERM" "$PINCER_EXIT" 0
else
	ok "--listen 127.0.0.2:0 starts" false
fi

if ip -6 addr show lo 2>/dev/null | grep -q 'inet6 ::1/'; then
	PINCER_LISTEN_ADDR='[::1]:0'
	if pincer_start; then
		like "--listen [::1]:0 starts and listens on [::1]" "$PINCER_ADDR" '^\[::1\]:[0-9]+$'
		CODE=$(curl -sS -g -o /dev/null -w '%{http_code}' --max-time 5 "$PINCER_URL/healthz" 2>&1)
		is "on [::1]: /healthz 200" "$CODE" 200
		pincer_stop
		is "on [::1]: exits 0 on SIGTERM" "$PINCER_EXIT" 0
	else
		ok "--listen [::1]:0 starts" false
	fi
else
	skip "--listen [::1]:0 starts" "no ::1 on lo"
fi
unset PINCER_LISTEN_ADDR

# doctor: the same rule, as a FAIL line.
timeout 30 "$PINCER_BIN" doctor --listen 0.0.0.0:8787 --config "$T_TMP/pincer.json" \
    --state "$T_TMP/doctor-state" >"$T_TMP/doctor.out" 2>&1
RC=$?
like "pincer doctor --listen 0.0.0.0:8787: a FAIL line for listen" \
    "$(cat "$T_TMP/doctor.out")" '^FAIL +listen +0\.0\.0\.0:8787 '
is "pincer doctor --listen 0.0.0.0:8787: exits 1" "$RC" 1
timeout 30 "$PINCER_BIN" doctor --listen 127.0.0.1:0 --config "$T_TMP/pincer.json" \
    --state "$T_TMP/doctor-state" >"$T_TMP/doctor.out" 2>&1
unlike "pincer doctor --listen 127.0.0.1:0: no FAIL line for listen" \
    "$(cat "$T_TMP/doctor.out")" '^FAIL +listen'

done_testing
