#!/bin/bash
# SPDX-License-Identifier: MIT
# limits_slowloris.sh: http.header_timeout_s and http.idle_timeout_s. A new
# connection has header_timeout_s to send a complete request head, counted
# from the accept, whatever it trickles meanwhile; then the front door
# answers 408 (JSON, code request_timeout) and closes. Other connections
# are served all the while. A silent keep-alive connection is closed after
# idle_timeout_s.
. "$TOP_SRCDIR/tests/integration/lib.sh"

pincer_start '{ "metrics": { "public": true }, "http": { "header_timeout_s": 1, "idle_timeout_s": 1 } }' ||
	{ echo "Bail out! pincerd did not start"; exit 1; }

status_of() { printf '%s' "$1" | head -1 | cut -d' ' -f2; }
body_of() { printf '%s' "$1" | sed '1,/^\r$/d'; }
is_code() { json_check "$1" "o.error && o.error.code === '$2' &&
	typeof o.error.message === 'string' && o.error.message.length > 0"; }
ms() { echo $(( $(date +%s%N) / 1000000 )); }
# The daemon's pincer_http_open_connections, the /metrics request included.
open_conns() {
	curl -s "$PINCER_URL/metrics" |
	    sed -n 's/^pincer_http_open_connections \([0-9]*\)$/\1/p'
}
open_conns_at_least() { [ "$(open_conns)" -ge "$1" ]; }

# Send the start of a head, then one more header byte every 0.3 s (for up
# to 4.5 s) while printing whatever the server answers until it closes.
trickle() {
	timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/$1" || exit 99
		printf "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " >&3
		( for i in $(seq 1 15); do
			sleep 0.3; printf a >&3 2>/dev/null || exit 0
		done ) &
		cat <&3
		kill $! 2>/dev/null
		exit 0' "$(pincer_host)" "$(pincer_port)"
}

# Half a head, then silence.
T0=$(ms)
R=$(raw_http $'GET / HTTP/1.1\r\nHost: x\r\n' 5)
RC=$?
T1=$(ms)
is "half a head, then silence: the server answers and closes (no 5 s timeout)" "$RC" 0
is "half a head, then silence: 408" "$(status_of "$R")" 408
ok "half a head, then silence: JSON code request_timeout" \
    is_code "$(body_of "$R")" request_timeout
like "half a head, then silence: Connection: close" "$R" $'\r\nConnection: close\r\n'
ok "half a head, then silence: cut off after 0.9-3 s (took $((T1 - T0)) ms)" \
    test $((T1 - T0)) -ge 900 -a $((T1 - T0)) -le 3000

# Connected, nothing sent at all.
T0=$(ms)
raw_http "" 5 >/dev/null
RC=$?
T1=$(ms)
is "connected, nothing sent: the server closes (no 5 s timeout)" "$RC" 0
ok "connected, nothing sent: cut off after 0.9-3 s (took $((T1 - T0)) ms)" \
    test $((T1 - T0)) -ge 900 -a $((T1 - T0)) -le 3000

# A byte every 0.3 s keeps the connection busy but does not move the
# deadline. Meanwhile, another connection is served at once.
T0=$(ms)
( trickle >"$T_TMP/trickle.out"; echo $? >"$T_TMP/trickle.rc"; ms >"$T_TMP/trickle.end" ) &
TPID=$!
ok "while the trickler is connected, /metrics counts its connection" \
    wait_until 2 open_conns_at_least 2
C=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' "$PINCER_URL/healthz")
is "meanwhile a normal request gets 200" "${C% *}" 200
ok "meanwhile a normal request is answered in under 0.5 s (took ${C#* } s)" \
    test "$(echo "${C#* }" | awk '{ print ($1 < 0.5) }')" = 1
wait "$TPID"
T1=$(cat "$T_TMP/trickle.end")
R=$(cat "$T_TMP/trickle.out")
is "trickling one byte every 0.3 s: the server closes (no 5 s timeout)" \
    "$(cat "$T_TMP/trickle.rc")" 0
is "trickling one byte every 0.3 s: 408" "$(status_of "$R")" 408
ok "trickling: cut at the absolute deadline, after 0.9-2.5 s (took $((T1 - T0)) ms)" \
    test $((T1 - T0)) -ge 900 -a $((T1 - T0)) -le 2500

is "each 408 was logged by the door" \
    "$(log_count 'msg="connection refused" rid=[0-9a-f]{16} status=408 code=request_timeout')" 3

# Idle keep-alive: one complete request, its answer, then silence; the
# server closes the connection after idle_timeout_s (1 s).
exec 3<>"/dev/tcp/$(pincer_host)/$(pincer_port)"
printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' >&3
IFS= read -r -t 3 LINE <&3
is "keep-alive: the first request gets 200" "$(printf '%s' "$LINE" | cut -d' ' -f2)" 200
LEN=0 CLOSE=no
while IFS= read -r -t 3 LINE <&3; do
	LINE=${LINE%$'\r'}
	[ -z "$LINE" ] && break
	case ${LINE,,} in
	content-length:*) LEN=${LINE#*: } ;;
	connection:*close*) CLOSE=yes ;;
	esac
done
BODY=""
[ "$LEN" -gt 0 ] && IFS= read -r -t 3 -N "$LEN" BODY <&3
is "keep-alive: the body is read whole" "$BODY" '{"status":"ok"}'
is "keep-alive: the answer does not say Connection: close" "$CLOSE" no
T0=$(ms)
timeout 6 cat <&3 >"$T_TMP/idle.out"
RC=$?
T1=$(ms)
exec 3<&-
is "keep-alive, then silence: the server closes the connection" "$RC" 0
ok "keep-alive, then silence: closed after 0.5-4 s (took $((T1 - T0)) ms)" \
    test $((T1 - T0)) -ge 500 -a $((T1 - T0)) -le 4000
is "keep-alive, then silence: nothing more was sent" "$(wc -c <"$T_TMP/idle.out")" 0

# Slowloris on a keep-alive connection: one complete request, then the
# next head trickled a byte every 0.3 s for 3 s. The idle timeout never
# fires (bytes keep coming); the head must still be cut off at about
# header_timeout_s, or one quick request buys a connection for as long as
# the client cares to trickle.
T0=$(ms)
R=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/$1" || exit 99
	printf "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " >&3
	( for i in $(seq 1 10); do
		sleep 0.3; printf a >&3 2>/dev/null || exit 0
	done ) &
	cat <&3
	kill $! 2>/dev/null
	exit 0' "$(pincer_host)" "$(pincer_port)")
RC=$?
T1=$(ms)
is "keep-alive slowloris: the first request got 200" "$(status_of "$R")" 200
is "keep-alive slowloris: the server closes (no 5 s timeout)" "$RC" 0
ok "keep-alive slowloris: cut off within 2.5 s (took $((T1 - T0)) ms)" \
    test $((T1 - T0)) -le 2500

is "after all this, /healthz answers 200" \
    "$(curl -s -o /dev/null -w '%{http_code}' "$PINCER_URL/healthz")" 200
pincer_stop
is "pincerd exits 0 on SIGTERM" "$PINCER_EXIT" 0

done_testing
