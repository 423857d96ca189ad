# SPDX-License-Identifier: MIT
# endpoints.sh: the system routes, the JSON error shape, request ids, the
# front door's 400s on bytes that are not HTTP/1.x, keep-alive, and no
# credential in the log.
. "$TOP_SRCDIR/tests/integration/lib.sh"

# get [CURL ARGS...] URL: CODE, BODY, HDRS (headers, CR removed).
get() {
	CODE=$(curl -sS --max-time 5 -D "$T_TMP/h" -o "$T_TMP/b" \
	    -w '%{http_code}' "$@" 2>"$T_TMP/curl.err")
	BODY=$(cat "$T_TMP/b" 2>/dev/null)
	HDRS=$(tr -d '\r' <"$T_TMP/h" 2>/dev/null)
}
# hdr NAME: the value of header NAME in HDRS (last one).
hdr() {
	printf '%s\n' "$HDRS" | sed -n "s/^$1: *//Ip" | tail -1
}
# Raw answers: the status line, a header, and the body after the blank line.
raw_status() { printf '%s' "$1" | head -1 | tr -d '\r'; }
raw_hdr() { printf '%s' "$1" | tr -d '\r' | sed -n '1,/^$/p' | sed -n "s/^$2: *//Ip"; }
raw_body() { printf '%s' "$1" | tr -d '\r' | sed '1,/^$/d'; }

pincer_start || { diag "cannot start pincerd"; done_testing; }
VERSION=$("$PINCER_BIN" version | sed 's/^pincer //')

# --- /healthz, X-Request-Id --------------------------------------------------
get "$PINCER_URL/healthz"
is "GET /healthz: 200" "$CODE" 200
is "GET /healthz: body {\"status\":\"ok\"}" "$BODY" '{"status":"ok"}'
like "GET /healthz: Content-Type application/json" "$(hdr Content-Type)" '^application/json'
RID1=$(hdr X-Request-Id)
like "GET /healthz: X-Request-Id is 16 hex characters" "$RID1" '^[0-9a-f]{16}$'
get "$PINCER_URL/healthz"
RID2=$(hdr X-Request-Id)
like "a second request has its own X-Request-Id" "$RID2" '^[0-9a-f]{16}$'
ok "the two request ids differ ($RID1, $RID2)" test "$RID1" != "$RID2"
ok "the request id is in the request's log line (rid=$RID1, path, status)" \
    wait_log "msg=request rid=$RID1 method=GET path=/healthz status=200 "
ok "the second id is in its own log line" wait_log "msg=request rid=$RID2 .*status=200"

# --- /readyz, /api/v1/version --------------------------------------------------
get "$PINCER_URL/readyz"
is "GET /readyz: 200" "$CODE" 200
ok "GET /readyz: JSON with status ready and a numeric schema_version" \
    json_check "$BODY" 'o.status === "ready" && Number.isInteger(o.schema_version) && o.schema_version >= 1'

get "$PINCER_URL/api/v1/version"
is "GET /api/v1/version: 200" "$CODE" 200
like "GET /api/v1/version: Content-Type application/json" "$(hdr Content-Type)" '^application/json'
ok "GET /api/v1/version: name pincer, version $VERSION (as pincer version prints)" \
    json_check "$BODY" "o.name === 'pincer' && o.version === '$VERSION'"

# --- errors: one JSON shape -----------------------------------------------------
get "$PINCER_URL/api/v1/nope"
is "GET /api/v1/nope: 404" "$CODE" 404
like "404: Content-Type application/json" "$(hdr Content-Type)" '^application/json'
ok "404: {\"error\":{\"code\":\"not_found\",\"message\":…}}" json_check "$BODY" \
    'Object.keys(o).length === 1 && o.error.code === "not_found" && typeof o.error.message === "string" && o.error.message.length > 0'
RID=$(hdr X-Request-Id)
like "404: has an X-Request-Id" "$RID" '^[0-9a-f]{16}$'
ok "404: its id is in the log line with status=404" wait_log "rid=$RID .*path=/api/v1/nope status=404"

get -X POST -d 'x=1' "$PINCER_URL/healthz"
is "POST /healthz: 405" "$CODE" 405
is "POST /healthz: Allow: GET, HEAD" "$(hdr Allow)" "GET, HEAD"
ok "405: JSON error with code method_not_allowed" json_check "$BODY" \
    'o.error.code === "method_not_allowed" && typeof o.error.message === "string"'

# HEAD: the headers of GET, no body (raw, so that nothing hides a body).
R=$(raw_http $'HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
is "HEAD /healthz: 200" "$(raw_status "$R")" "HTTP/1.1 200 OK"
is "HEAD /healthz: no body" "$(raw_body "$R")" ""
like "HEAD /healthz: Content-Type application/json" "$(raw_hdr "$R" Content-Type)" '^application/json'

get "$PINCER_URL/api/v1/ws-echo"
is "GET /api/v1/ws-echo without upgrade headers: 426" "$CODE" 426
ok "426: JSON error with code upgrade_required" json_check "$BODY" \
    'o.error.code === "upgrade_required" && typeof o.error.message === "string"'

# --- the front door: not HTTP/1.x -----------------------------------------------
# check_400 DESC DATA: the door answers 400 with the JSON error, and closes.
check_400() {
	local r rc rid
	r=$(raw_http "$2")
	rc=$?
	is "$1: answered and closed (raw_http exit 0)" "$rc" 0
	like "$1: 400" "$(raw_status "$r")" '^HTTP/1\.1 400 '
	like "$1: Content-Type application/json" "$(raw_hdr "$r" Content-Type)" '^application/json'
	ok "$1: JSON error, code bad_request" json_check "$(raw_body "$r")" \
	    'o.error.code === "bad_request" && typeof o.error.message === "string"'
	RAW_RID=$(raw_hdr "$r" X-Request-Id)
}
N0=$(log_count 'msg="connection refused" rid=[0-9a-f]{16} status=400')
check_400 "a garbage request line" $'BLAH\r\n\r\n'
ok "the garbage request line is logged as refused with status=400" \
    wait_log 'msg="connection refused" rid=[0-9a-f]{16} status=400 code=bad_request' 5 "$N0"
like "the door's 400 has an X-Request-Id" "$RAW_RID" '^[0-9a-f]{16}$'
# README: "every answer carries an X-Request-Id that is also in the log line".
ok "the door's 400: its X-Request-Id is in the log line" wait_log "$RAW_RID" 2
check_400 "TLS-looking bytes (a ClientHello start)" $'\x16\x03\x01\x02\xfc\x01\x03\x03'
check_400 "an HTTP/2 preface" $'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'

# --- keep-alive --------------------------------------------------------------------
curl -sv --max-time 5 -o /dev/null -o /dev/null "$PINCER_URL/healthz" \
    "$PINCER_URL/api/v1/version" 2>"$T_TMP/ka.err"
KA=$(cat "$T_TMP/ka.err")
like "keep-alive: curl re-used the connection for the second URL" "$KA" \
    'Re-using existing connection'
is "keep-alive: one TCP connection for two requests" \
    "$(grep -c '^\* *Connected to' "$T_TMP/ka.err")" 1
is "keep-alive: both answered 200" "$(grep -c '^< HTTP/1.1 200' "$T_TMP/ka.err")" 2

# --- credentials never reach the log -----------------------------------------------------
TOKEN=$(random_token)
QTOKEN=$(random_token)
secret_register "$TOKEN"
secret_register "$QTOKEN"
get -H "Authorization: Bearer $TOKEN" "$PINCER_URL/healthz"
is "a request with Authorization: Bearer is answered" "$CODE" 200
RID=$(hdr X-Request-Id)
get -H "Authorization: Bearer $TOKEN" "$PINCER_URL/api/v1/nope?access_token=$QTOKEN"
is "a 404 with a token in the query string" "$CODE" 404
RIDQ=$(hdr X-Request-Id)
get -H "Authorization: Bearer $TOKEN" "$PINCER_URL/api/v1/ws-echo?t=$QTOKEN"
is "a 426 with a token in the header and the query" "$CODE" 426
wait_log "rid=$RIDQ" 5 >/dev/null
ok "the requests with credentials were logged" wait_log "rid=$RID .*path=/healthz"
unlike "the bearer token is not in the log" "$(cat "$PINCER_LOG")" "$TOKEN"
unlike "the query-string token is not in the log" "$(cat "$PINCER_LOG")" "$QTOKEN"
like "the logged path has no query string" "$(grep "rid=$RIDQ" "$PINCER_LOG")" 'path=/api/v1/nope status=404'

pincer_stop
is "pincerd exits 0 on SIGTERM" "$PINCER_EXIT" 0

done_testing
