#!/bin/bash
# SPDX-License-Identifier: MIT
# limits_rate.sh: http.rate_limit_rps / rate_limit_burst, a token bucket per
# client IP. Past the burst: 429 (JSON, code rate_limited) with Retry-After;
# after that many seconds requests pass again. X-Forwarded-For counts only
# from a trusted proxy (its right-most entry), and the log's ip= shows it;
# rps 0 turns the limit off.
. "$TOP_SRCDIR/tests/integration/lib.sh"

TOK=$(random_token)
secret_register "$TOK"
AUTH="Authorization: Bearer $TOK"

is_code() { json_check "$1" "o.error && o.error.code === '$2' &&
	typeof o.error.message === 'string' && o.error.message.length > 0"; }
code() { curl -s -o /dev/null -w '%{http_code}' "$@" "$PINCER_URL/healthz"; }
# curl arguments for N requests to /healthz on one connection, bodies to
# $T_TMP/PREFIX1..N: all go out within a few milliseconds.
burst() {
	local n=$1 prefix=$2 i
	for i in $(seq 1 "$n"); do
		printf '%s\n' -o "$T_TMP/$prefix$i" "$PINCER_URL/healthz"
	done
}
# The headers of the Nth answer in a curl -D file.
nth_headers() { awk -v n="$2" '/^HTTP\//{ k++ } k == n' "$1"; }

# 1. No trusted proxies: every request from here is 127.0.0.1.
pincer_start '{ "http": { "rate_limit_rps": 2, "rate_limit_burst": 5 } }' ||
	{ echo "Bail out! pincerd did not start"; exit 1; }
# pincer_start's /readyz took one token; at 2 per second, half a second
# fills the bucket back to the burst (it never holds more).
sleep 0.6
mapfile -t ARGS < <(burst 7 a)
C=$(curl -s -H "$AUTH" -D "$T_TMP/ha" -w '%{http_code} ' "${ARGS[@]}")
is "burst 5: 7 quick requests: 5 pass, then 429" "$C" \
    "200 200 200 200 200 429 429 "
H6=$(nth_headers "$T_TMP/ha" 6)
RA=$(printf '%s' "$H6" | sed -n 's/^Retry-After: \(.*\)\r$/\1/p')
like "the 429 has Retry-After, a positive integer" "$RA" '^[1-9][0-9]*$'
like "the 429 is JSON" "$H6" $'\r\nContent-Type: application/json\r'
like "the 429 has an X-Request-Id" "$H6" $'\r\nX-Request-Id: [0-9a-f]{16}\r'
ok "the 429 has JSON code rate_limited" \
    is_code "$(cat "$T_TMP/a6")" rate_limited
# Retry-After is what a client should wait; cap it in case it is absurd.
[[ $RA =~ ^[1-9][0-9]*$ ]] && [ "$RA" -le 3 ] || RA=1
sleep "$RA"
is "after waiting Retry-After ($RA s), a request passes again" \
    "$(code -H "$AUTH")" 200

# Without a trusted proxy, X-Forwarded-For is the client's word: ignored.
mapfile -t ARGS < <(burst 6 x)
C=$(curl -s -w '%{http_code} ' -H 'X-Forwarded-For: 203.0.113.7' "${ARGS[@]}" \
    --next -s -w '%{http_code} ' -o /dev/null -H 'X-Forwarded-For: 203.0.113.8' \
    "$PINCER_URL/healthz" \
    --next -s -w '%{http_code}' -o /dev/null "$PINCER_URL/healthz")
like "untrusted XFF 203.0.113.7 x6: the last is limited" "$C" \
    '^([0-9]{3} ){5}429 [0-9]{3} [0-9]{3}$'
is "untrusted: exhausting as 203.0.113.7 also limits XFF 203.0.113.8 and no XFF" \
    "${C#* * * * * * }" "429 429"
is "untrusted: no log line names the forwarded address" \
    "$(log_count 'ip=203\.0\.113\.')" 0
is "untrusted: every request (XFF or not) is logged as ip=127.0.0.1" \
    "$(log_count 'msg=request .*ip=127\.0\.0\.1$')" "$(log_count 'msg=request ')"
is "untrusted: 1 (readyz) + 7 + 1 + 8 requests were logged" "$(log_count 'msg=request ')" 17
pincer_stop
is "pincerd exits 0 on SIGTERM" "$PINCER_EXIT" 0

# 2. 127.0.0.1 is a trusted proxy: each forwarded address has its own bucket.
pincer_start '{ "http": { "rate_limit_rps": 2, "rate_limit_burst": 5,
	"trusted_proxies": ["127.0.0.1"] } }' ||
	{ echo "Bail out! pincerd did not start"; exit 1; }
mapfile -t ARGS < <(burst 7 t)
C=$(curl -s -w '%{http_code} ' -H "$AUTH" -H 'X-Forwarded-For: 203.0.113.7' \
    "${ARGS[@]}" \
    --next -s -w '%{http_code} ' -o /dev/null -H 'X-Forwarded-For: 203.0.113.8' \
    "$PINCER_URL/healthz" \
    --next -s -w '%{http_code} ' -o /dev/null "$PINCER_URL/healthz" \
    --next -s -w '%{http_code} ' -o /dev/null \
    -H 'X-Forwarded-For: 198.51.100.1, 203.0.113.7' "$PINCER_URL/healthz" \
    --next -s -w '%{http_code} ' -o /dev/null \
    -H 'X-Forwarded-For: 203.0.113.7, 198.51.100.2' "$PINCER_URL/healthz" \
    --next -s -w '%{http_code}' -o /dev/null -H "$AUTH" \
    -H 'X-Forwarded-For: not-an-address' "$PINCER_URL/healthz")
set -- $C
is "trusted: 203.0.113.7 x7: 5 pass, then 429" "$1 $2 $3 $4 $5 $6 $7" \
    "200 200 200 200 200 429 429"
is "trusted: 203.0.113.8 still passes" "$8" 200
is "trusted: the proxy itself (no XFF) still passes" "$9" 200
is "trusted: XFF '198.51.100.1, 203.0.113.7' counts as .7 (right-most): 429" \
    "${10}" 429
is "trusted: XFF '203.0.113.7, 198.51.100.2' counts as .2 (right-most): 200" \
    "${11}" 200
is "trusted: an XFF that is no address counts as the proxy: 200" "${12}" 200
ok "trusted: the 429 has JSON code rate_limited" \
    is_code "$(cat "$T_TMP/t6")" rate_limited
is "trusted: the log says ip=203.0.113.7 for the 8 requests as .7" \
    "$(log_count 'msg=request .*path=/healthz .*ip=203\.0\.113\.7$')" 8
is "trusted: the log says ip=203.0.113.8 once" \
    "$(log_count 'msg=request .*ip=203\.0\.113\.8$')" 1
is "trusted: the log says ip=198.51.100.2 once, never 198.51.100.1" \
    "$(log_count 'ip=198\.51\.100\.2$') $(log_count 'ip=198\.51\.100\.1$')" "1 0"
is "trusted: 3 requests as .7 were logged with status 429 (2 + the XFF list)" \
    "$(log_count 'status=429 .*ip=203\.0\.113\.7$')" 3
pincer_stop
is "pincerd exits 0 on SIGTERM" "$PINCER_EXIT" 0

# 3. rps 0: no limit at all, whatever the burst.
pincer_start '{ "http": { "rate_limit_rps": 0, "rate_limit_burst": 5 } }' ||
	{ echo "Bail out! pincerd did not start"; exit 1; }
mapfile -t ARGS < <(burst 50 z)
C=$(curl -s -H "$AUTH" -w '%{http_code}\n' "${ARGS[@]}")
is "rps 0: 50 quick requests all get 200" "$(printf '%s\n' "$C" | grep -c '^200$')" 50
pincer_stop
is "pincerd exits 0 on SIGTERM" "$PINCER_EXIT" 0

unlike "no daemon log holds the bearer token" \
    "$(cat "$T_LOGDIR/$T_NAME".*.pincerd.log)" "$TOK"

done_testing
