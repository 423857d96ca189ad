#!/bin/bash
# SPDX-License-Identifier: MIT
# limits_connections.sh: http.max_connections. Connections that have not
# sent a head yet (held by the front door) and keep-alive connections (held
# by libmicrohttpd) both count; one over the limit gets 503 (JSON, code
# too_many_connections); once they close, requests pass again and
# /metrics shows the count back down.
. "$TOP_SRCDIR/tests/integration/lib.sh"

pincer_start '{ "metrics": { "public": true }, "http": { "max_connections": 4, "header_timeout_s": 10 } }' ||
	{ echo "Bail out! pincerd did not start"; exit 1; }

status_of() { printf '%s' "$1" | head -1 | cut -d' ' -f2; }
body_of() { printf '%s' "$1" | sed '1,/^\r$/d'; }
is_code() { json_check "$1" "o.error && o.error.code === '$2' &&
	typeof o.error.message === 'string' && o.error.message.length > 0"; }
# Every 503 the test is given is counted: a connection that just closed can
# still hold its place for a moment, so a retried request may meet one more
# 503 than the script plans, and each of those must be logged and counted.
N503_FILE="$PINCER_DIR/n503"
code() {
	local c
	c=$(curl -s -o /dev/null -w '%{http_code}' "$PINCER_URL${1:-/healthz}")
	[ "$c" = 503 ] && echo 503 >>"$N503_FILE"
	printf '%s' "$c"
}
n503() { wc -l <"$N503_FILE" 2>/dev/null || echo 0; }
code_is() { [ "$(code)" = "$1" ]; }
# pincer_http_open_connections, counting the /metrics request itself.
open_conns() {
	local m
	m=$(curl -s -w '\n%{http_code}' "$PINCER_URL/metrics")
	[ "${m##*$'\n'}" = 503 ] && echo 503 >>"$N503_FILE"
	printf '%s\n' "$m" |
	    sed -n 's/^pincer_http_open_connections \(-\{0,1\}[0-9]*\)$/\1/p'
}
open_conns_is() { [ "$(open_conns)" = "$1" ]; }
FDS=()
hold() {	# open a TCP connection that sends nothing
	local fd
	exec {fd}<>"/dev/tcp/$(pincer_host)/$(pincer_port)" || return 1
	FDS+=("$fd")
}
# One complete request, its answer read, kept open. The connection of
# the request before (curl's, just closed) may still hold its place for a
# moment: a 503 then is counted like any other and the request retried.
hold_keepalive() {
	local fd line len=0 body try
	for try in $(seq 20); do
		exec {fd}<>"/dev/tcp/$(pincer_host)/$(pincer_port)" || return 1
		printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' >&"$fd"
		IFS= read -r -t 3 line <&"$fd" || return 1
		case $line in "HTTP/1.1 503 "*) ;; *) break ;; esac
		echo 503 >>"$N503_FILE"
		exec {fd}>&-
		sleep 0.1
	done
	FDS+=("$fd")
	case $line in "HTTP/1.1 200 "*) ;; *) return 1 ;; esac
	while IFS= read -r -t 3 line <&"$fd"; do
		line=${line%$'\r'}
		[ -z "$line" ] && break
		case ${line,,} in content-length:*) len=${line#*: } ;; esac
	done
	[ "$len" -gt 0 ] && IFS= read -r -t 3 -N "$len" body <&"$fd"
	[ "$body" = '{"status":"ok"}' ]
}
release() {
	local fd
	for fd in "${FDS[@]}"; do exec {fd}>&-; done
	FDS=()
}

ok "at rest, /metrics counts one open connection (its own)" \
    wait_until 3 open_conns_is 1

# Three silent connections: still room for one more.
for i in 1 2 3; do hold; done
is "3 silent connections are open" "${#FDS[@]}" 3
ok "with 3 held, a request gets 200" wait_until 3 code_is 200
ok "with 3 held, /metrics counts 4 (3 held, itself)" \
    wait_until 3 open_conns_is 4

# The fourth fills the gateway up.
hold
R=$(raw_http $'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' 3)
is "with 4 held, a 5th connection is answered and closed" "$?" 0
is "with 4 held, a 5th connection gets 503" "$(status_of "$R")" 503
echo 503 >>"$N503_FILE"
ok "the 503 has JSON code too_many_connections" \
    is_code "$(body_of "$R")" too_many_connections
like "the 503 says Connection: close" "$R" $'\r\nConnection: close\r\n'
is "with 4 held, curl gets 503 too" "$(code)" 503
is "with 4 held, /metrics itself gets 503" "$(code /metrics)" 503
door_503s() { log_count 'msg="connection refused" rid=[0-9a-f]{16} status=503 code=too_many_connections'; }
ok "at least the 3 planned 503s were given" test "$(n503)" -ge 3
is "each 503 given was logged by the door" "$(door_503s)" "$(n503)"

release
ok "after closing the 4, requests get 200 again" wait_until 3 code_is 200
ok "after closing the 4, /metrics counts 1 again (itself)" \
    wait_until 3 open_conns_is 1

# The same with connections libmicrohttpd holds: keep-alive after a request.
for i in 1 2 3; do
	ok "keep-alive connection $i: 200, and kept open" hold_keepalive
done
ok "with 3 keep-alive connections, /metrics counts 4" \
    wait_until 3 open_conns_is 4
ok "keep-alive connection 4: 200, and kept open" hold_keepalive
is "with 4 keep-alive connections, a 5th gets 503" "$(code)" 503
release
ok "after closing the keep-alive ones, requests get 200 again" \
    wait_until 3 code_is 200
ok "after closing the keep-alive ones, /metrics counts 1 again" \
    wait_until 3 open_conns_is 1

M=$(curl -s "$PINCER_URL/metrics")
like "each 503 given is in /metrics under route=\"none\"" "$M" \
    "^pincer_http_requests_total\\{route=\"none\",status=\"503\"\\} $(n503)\$"

pincer_stop
is "pincerd exits 0 on SIGTERM" "$PINCER_EXIT" 0

# max_connections is not a restart option: raised by SIGHUP, the new limit
# is the one that holds, for connections libmicrohttpd keeps too.
pincer_start '{ "metrics": { "public": true }, "http": { "max_connections": 4 } }' ||
	{ echo "Bail out! pincerd did not start"; exit 1; }
printf '{ "metrics": { "public": true }, "http": { "max_connections": 40 } }\n' >"$PINCER_CONF"
N=$(log_count 'msg="config reloaded"')
kill -HUP "$PINCER_PID"
ok "SIGHUP raising max_connections from 4 to 40: config reloaded" \
    wait_log 'msg="config reloaded"' 5 "$N"
n=0
for i in $(seq 1 30); do hold_keepalive && n=$((n + 1)); done
is "after the raise, 30 keep-alive connections are all served" "$n" 30
is "with 30 held, another request gets 200" "$(code)" 200
is "no connection was refused by the HTTP server" \
    "$(log_count 'msg="HTTP server refused a connection"')" 0
release
ok "after closing them, /metrics counts 1 again" \
    wait_until 3 open_conns_is 1
pincer_stop
is "pincerd exits 0 on SIGTERM" "$PINCER_EXIT" 0

done_testing
