#!/bin/bash
# SPDX-License-Identifier: MIT
# limits_body.sh: http.max_body_bytes. A declared Content-Length over the
# limit gets 413 (JSON, code body_too_large) before the body is sent, with or
# without "Expect: 100-continue"; a chunked body that grows past the limit
# gets 413 too; a body under the limit is accepted and the route decides
# (405, 404); the daemon keeps serving; 0 refuses any body but not a GET.
. "$TOP_SRCDIR/tests/integration/lib.sh"

for n in 1 500 1000 1001 5000; do
	head -c "$n" /dev/zero | tr '\0' x >"$T_TMP/b$n"
done

pincer_start '{ "http": { "max_body_bytes": 1000 } }' ||
	{ echo "Bail out! pincerd did not start"; exit 1; }

status_of() { printf '%s' "$1" | head -1 | cut -d' ' -f2; }
body_of() { printf '%s' "$1" | sed '1,/^\r$/d'; }
is_code() { json_check "$1" "o.error && o.error.code === '$2' &&
	typeof o.error.message === 'string' && o.error.message.length > 0"; }
# curl a POST of the file b$1 to PATH $2 with extra curl arguments; prints
# the status code, the body goes to $T_TMP/out.
post() {
	local n=$1 path=$2; shift 2
	curl -s -o "$T_TMP/out" -w '%{http_code}' --data-binary @"$T_TMP/b$n" \
	    "$@" "$PINCER_URL$path"
}
ms() { echo $(( $(date +%s%N) / 1000000 )); }

# Only the head goes out, announcing 5000 bytes; no body ever follows. The
# answer must come anyway, and the connection must end (raw_http returns).
R=$(raw_http $'POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n' 3)
is "head announcing 5000 bytes, no body sent: answered and closed" "$?" 0
is "head announcing 5000 bytes, no body sent: 413" "$(status_of "$R")" 413
ok "head announcing 5000 bytes: JSON code body_too_large" \
    is_code "$(body_of "$R")" body_too_large
like "head announcing 5000 bytes: Connection: close" "$R" $'\r\nConnection: close\r\n'
like "head announcing 5000 bytes: an X-Request-Id" "$R" $'\r\nX-Request-Id: [0-9a-f]{16}\r\n'

is "curl, no Expect, 5000 bytes: 413" "$(post 5000 /healthz -H 'Expect:')" 413
ok "curl, no Expect, 5000 bytes: JSON code body_too_large" \
    is_code "$(cat "$T_TMP/out")" body_too_large

# Expect: 100-continue; curl would wait 5 s for "100 Continue" before sending
# the body anyway, so a quick answer means the server refused at once.
T0=$(ms)
C=$(post 5000 /healthz -H 'Expect: 100-continue' --expect100-timeout 5 \
    -D "$T_TMP/hdrs")
T1=$(ms)
is "curl, Expect: 100-continue, 5000 bytes: 413" "$C" 413
ok "curl, Expect: 100-continue: answered in under 2 s (took $((T1 - T0)) ms)" \
    test $((T1 - T0)) -lt 2000
unlike "curl, Expect: 100-continue: no '100 Continue' before the 413" \
    "$(cat "$T_TMP/hdrs")" '^HTTP/1.1 100'
ok "curl, Expect: 100-continue: JSON code body_too_large" \
    is_code "$(cat "$T_TMP/out")" body_too_large
R=$(raw_http $'POST /healthz HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n' 3)
is "raw, Expect: 100-continue, no body sent: the first answer is 413" \
    "$(status_of "$R")" 413

is "chunked upload of 5000 bytes: 413" \
    "$(post 5000 /healthz -H 'Transfer-Encoding: chunked')" 413
ok "chunked upload of 5000 bytes: JSON code body_too_large" \
    is_code "$(cat "$T_TMP/out")" body_too_large

# The boundary, declared and chunked: 1000 bytes are a body the route sees
# (405: /healthz takes no POST), 1001 are not.
is "Content-Length 1000 (the limit): accepted, then 405" \
    "$(post 1000 /healthz -H 'Expect:')" 405
is "Content-Length 1001: 413" "$(post 1001 /healthz -H 'Expect:')" 413
is "chunked, 1000 bytes: accepted, then 405" \
    "$(post 1000 /healthz -H 'Transfer-Encoding: chunked')" 405
is "chunked, 1001 bytes: 413" \
    "$(post 1001 /healthz -H 'Transfer-Encoding: chunked')" 413

C=$(post 500 /healthz -H 'Expect:' -D "$T_TMP/hdrs")
is "500-byte POST to /healthz: 405" "$C" 405
ok "500-byte POST to /healthz: JSON code method_not_allowed" \
    is_code "$(cat "$T_TMP/out")" method_not_allowed
like "500-byte POST to /healthz: Allow: GET, HEAD" "$(cat "$T_TMP/hdrs")" \
    $'\r\nAllow: GET, HEAD\r'
is "500-byte POST to /api/v1/nope: 404" "$(post 500 /api/v1/nope -H 'Expect:')" 404
ok "500-byte POST to /api/v1/nope: JSON code not_found" \
    is_code "$(cat "$T_TMP/out")" not_found

# An accepted body leaves the connection usable: POST then GET on one.
is "POST 500 bytes then GET on one keep-alive connection: 405 then 200" \
    "$(curl -s -o /dev/null -w '%{http_code} %{num_connects} ' -H 'Expect:' \
    --data-binary @"$T_TMP/b500" "$PINCER_URL/healthz" --next \
    -o /dev/null -w '%{http_code} %{num_connects}' "$PINCER_URL/healthz")" \
    "405 1 200 0"

# A declared length over the limit is refused by the front door before any
# library reads the request; the others are request lines.
is "every 413 from pincerd was logged once (door refusal or request line)" \
    "$(log_count 'msg=request .*method=POST path=/healthz status=413 |msg="connection refused" rid=[0-9a-f]{16} status=413 ')" 7

# A length that does not fit in 64 bits is larger than any limit, and gets
# the same JSON answer as any other too-large body. (libmicrohttpd refuses
# it before pincerd sees the request, with its own HTML page, unless the
# front door catches it first.)
R=$(raw_http $'POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551616\r\n\r\n' 3)
is "Content-Length 2^64: 413" "$(status_of "$R")" 413
ok "Content-Length 2^64: JSON code body_too_large" \
    is_code "$(body_of "$R")" body_too_large

is "the daemon still serves: GET /healthz 200" \
    "$(curl -s -o /dev/null -w '%{http_code}' "$PINCER_URL/healthz")" 200
pincer_stop
is "pincerd exits 0 on SIGTERM" "$PINCER_EXIT" 0

# max_body_bytes 0: no body at all, but requests without one are fine.
pincer_start '{ "http": { "max_body_bytes": 0 } }' ||
	{ echo "Bail out! pincerd did not start"; exit 1; }
is "max_body_bytes 0: GET /healthz 200" \
    "$(curl -s -o /dev/null -w '%{http_code}' "$PINCER_URL/healthz")" 200
is "max_body_bytes 0: a 1-byte POST gets 413" "$(post 1 /healthz -H 'Expect:')" 413
ok "max_body_bytes 0: JSON code body_too_large" \
    is_code "$(cat "$T_TMP/out")" body_too_large
is "max_body_bytes 0: a 1-byte chunked POST gets 413" \
    "$(post 1 /healthz -H 'Transfer-Encoding: chunked')" 413
is "max_body_bytes 0: a POST with Content-Length 0 is no body: 405" \
    "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Length: 0' \
    "$PINCER_URL/healthz")" 405
is "max_body_bytes 0: GET /healthz still 200 afterwards" \
    "$(curl -s -o /dev/null -w '%{http_code}' "$PINCER_URL/healthz")" 200
pincer_stop
is "pincerd exits 0 on SIGTERM" "$PINCER_EXIT" 0

done_testing
