#!/bin/bash
# SPDX-License-Identifier: MIT
# limits_header.sh: http.max_header_bytes. The front door peeks at the head
# of the first request and answers 431 (JSON, code header_too_large) when it
# is larger than the limit, whether it arrives at once or in pieces; a head
# at or under the limit goes through; the daemon keeps serving.
. "$TOP_SRCDIR/tests/integration/lib.sh"

MAX=1024
pincer_start '{ "http": { "max_header_bytes": '$MAX', "header_timeout_s": 5 } }' ||
	{ echo "Bail out! pincerd did not start"; exit 1; }

# A request head of exactly N bytes: one long X-Long header pads it. It
# asks to close, so that raw_http returns as soon as the answer is in.
# (Use as H=$(head_of N); the trailing "." keeps the final LF from $(...).)
head_of() {
	local n=$1 pre pad
	pre=$(printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Long: ')
	pad=$((n - ${#pre} - 4))
	printf '%s' "$pre"
	head -c "$pad" /dev/zero | tr '\0' a
	printf '\r\n\r\n.'
}
# The status code of a raw answer; its body (after the blank line).
status_of() { printf '%s' "$1" | head -1 | cut -d' ' -f2; }
body_of() { printf '%s' "$1" | sed '1,/^\r$/d'; }
is_code() { json_check "$1" "o.error && o.error.code === '$2' &&
	typeof o.error.message === 'string' && o.error.message.length > 0"; }

# Send DATA in PIECES pieces, 0.2 s apart, then print the answer.
raw_slow() {
	local data=$1 pieces=$2
	timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/$1" || exit 99
		n=${#2}; step=$(( (n + $3 - 1) / $3 ))
		for ((o = 0; o < n; o += step)); do
			printf "%s" "${2:o:step}" >&3; sleep 0.2
		done
		cat <&3' "$(pincer_host)" "$(pincer_port)" "$data" "$pieces"
}

H2000=$(head_of 2000); H2000=${H2000%.}
is "the 2000-byte head is 2000 bytes" "${#H2000}" 2000
R=$(raw_http "$H2000" 3)
is "raw 2000-byte head: the server answers and closes" "$?" 0
is "raw 2000-byte head: 431" "$(status_of "$R")" 431
ok "raw 2000-byte head: JSON code header_too_large" \
    is_code "$(body_of "$R")" header_too_large
like "raw 2000-byte head: Content-Type application/json" "$R" \
    $'\r\nContent-Type: application/json\r\n'
like "raw 2000-byte head: Connection: close" "$R" $'\r\nConnection: close\r\n'
like "raw 2000-byte head: an X-Request-Id" "$R" $'\r\nX-Request-Id: [0-9a-f]{16}\r\n'

LONG=$(head -c 2000 /dev/zero | tr '\0' b)
C=$(curl -s -o "$T_TMP/curl431" -w '%{http_code}' -H "X-Long: $LONG" \
    "$PINCER_URL/healthz")
is "curl with a 2000-byte header: 431" "$C" 431
ok "curl with a 2000-byte header: JSON code header_too_large" \
    is_code "$(cat "$T_TMP/curl431")" header_too_large

# Many small headers add up the same way as one long one.
MANY=()
for i in $(seq 1 40); do MANY+=(-H "X-H$i: 0123456789012345678901234567"); done
is "curl with 40 headers of ~40 bytes (over 1024 in all): 431" \
    "$(curl -s -o /dev/null -w '%{http_code}' "${MANY[@]}" "$PINCER_URL/healthz")" 431

# A head far over the limit (and over the peek buffer of the door).
HUGE=$(head -c 60000 /dev/zero | tr '\0' c)
is "curl with a 60 KB header: 431" "$(curl -s -o /dev/null -w '%{http_code}' \
    -H "X-Huge: $HUGE" "$PINCER_URL/healthz")" 431

H900=$(head_of 900); H900=${H900%.}
R=$(raw_http "$H900" 3)
is "raw 900-byte head: 200" "$(status_of "$R")" 200
is "curl with a 800-byte header: 200" "$(curl -s -o /dev/null -w '%{http_code}' \
    -H "X-Long: $(head -c 800 /dev/zero | tr '\0' d)" "$PINCER_URL/healthz")" 200

# The boundary: exactly max_header_bytes passes, one byte more does not.
HMAX=$(head_of $MAX); HMAX=${HMAX%.}
HMAX1=$(head_of $((MAX + 1))); HMAX1=${HMAX1%.}
is "the heads are $MAX and $((MAX + 1)) bytes" "${#HMAX} ${#HMAX1}" "$MAX $((MAX + 1))"
R=$(raw_http "$HMAX" 3)
is "raw head of exactly $MAX bytes: 200" "$(status_of "$R")" 200
R=$(raw_http "$HMAX1" 3)
is "raw head of $((MAX + 1)) bytes: 431" "$(status_of "$R")" 431

# In pieces: each piece is peeked again with what came before it.
R=$(raw_slow "$HMAX1" 5)
is "$((MAX + 1))-byte head in 5 slow pieces: the server answers and closes" "$?" 0
is "$((MAX + 1))-byte head in 5 slow pieces: 431" "$(status_of "$R")" 431
ok "$((MAX + 1))-byte head in 5 slow pieces: JSON code header_too_large" \
    is_code "$(body_of "$R")" header_too_large
# Unfinished (no blank line yet) but already past the limit: no need to
# wait for the rest.
R=$(raw_slow "${H2000:0:1100}" 4)
is "an unfinished head growing past $MAX bytes in 4 pieces: 431" \
    "$(status_of "$R")" 431
R=$(raw_slow "$HMAX" 5)
is "$MAX-byte head in 5 slow pieces: 200" "$(status_of "$R")" 200

is "every 431 was logged by the door" \
    "$(log_count 'msg="connection refused" rid=[0-9a-f]{16} status=431 code=header_too_large')" 7

# Still serving, on a new connection and with a keep-alive one.
is "after the refusals /healthz answers 200" \
    "$(curl -s -o /dev/null -w '%{http_code}' "$PINCER_URL/healthz")" 200
is "two requests on one connection both answer 200" \
    "$(curl -s -o /dev/null -o /dev/null -w '%{http_code} ' "$PINCER_URL/healthz" \
    "$PINCER_URL/readyz")" "200 200 "

# Later requests on a keep-alive connection never pass the door; the limit
# still has to hold for them (libmicrohttpd's own 431 page is allowed, see
# README: its memory limit is meant to be twice max_header_bytes).
for n in 2000 8000; do
	C=$(curl -s -o /dev/null -w '%{http_code} ' "$PINCER_URL/healthz" --next \
	    -s -o /dev/null -w '%{http_code} %{num_connects}' \
	    -H "X-Long: $(head -c $n /dev/zero | tr '\0' e)" "$PINCER_URL/healthz")
	is "keep-alive: a second request with a $n-byte header is refused (431)" \
	    "$C" "200 431 0"
done

pincer_stop
is "pincerd exits 0 on SIGTERM" "$PINCER_EXIT" 0

done_testing
