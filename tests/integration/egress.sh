#!/bin/bash
# SPDX-License-Identifier: MIT
# egress.sh: a sandbox's way out is the proxy on its 127.0.0.1:3128
# (issue 10). Its environment points there; pincerd decides by policy,
# checks the address after resolution (a name resolving to loopback or
# the metadata address is refused unless a cidr rule allows it), and
# relays plain HTTP and CONNECT tunnels; a denied host gets 403 with a
# JSON reason; the log has a line per request, the query left out, and
# the store a row (GET /api/v1/egress/log), kept by egress.log_*.
. "$TOP_SRCDIR/tests/integration/lib.sh"
. "$TOP_SRCDIR/tests/integration/sandbox_lib.sh"

# elog QUERY: GET /api/v1/egress/log?QUERY as the admin ($ADM).
elog() {
	req GET "/api/v1/egress/log${1:+?$1}" -H "Authorization: Bearer $ADM"
}
# elog_until QUERY EXPR: rows are written a moment after the request:
# ask again until EXPR (o: the answer) holds, or 5 seconds pass.
elog_until() { wait_until 5 _elog_ok "$1" "$2"; elog "$1"; }
_elog_ok() { elog "$1"; [ "$CODE" = 200 ] && jok "$BODY" "$2"; }
# restart [VAR=VALUE…]: a new pincerd on the same state, with VARs set.
restart() {
	pincer_stop
	is "pincerd stops cleanly" "$PINCER_EXIT" 0
	T_DAEMONS=$((T_DAEMONS + 1))
	PINCER_LOG="$T_LOGDIR/$T_NAME.restart$T_DAEMONS.pincerd.log"
	: >"$PINCER_LOG"	# a log of an earlier run would show its address
	env "$@" "$PINCER_BIN" serve --config "$PINCER_CONF" \
	    --state "$PINCER_STATE_DIR" --listen 127.0.0.1:0 2>>"$PINCER_LOG" &
	PINCER_PID=$!
	T_PIDS="$T_PIDS $PINCER_PID"
	wait_until 10 grep -q 'msg=listening' "$PINCER_LOG"
	PINCER_ADDR=$(_t_addr "$PINCER_LOG")
	PINCER_URL="http://$PINCER_ADDR"
	wait_until 10 curl -fsS -o /dev/null "$PINCER_URL/readyz"
}

if [ ! -x "$TOP_BUILDDIR/pincer-init" ]; then
	ok "pincer-init is built next to pincer" false
	done_testing
fi
node "$TOP_SRCDIR/tests/fakes/echo_http.mjs" >"$T_TMP/echo.out" 2>&1 &
ECHO_PID=$!
wait_until 10 grep -q port "$T_TMP/echo.out"
EPORT=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$T_TMP/echo.out")
ok "the test server listens on 127.0.0.1" test -n "$EPORT"

pincer_start "{ $FAST, \"egress\": { \"policy\": \"test\", \"policies\": {
	\"test\": { \"default\": \"deny\", \"rules\": [
		{ \"host\": \"denied.example\", \"action\": \"deny\",
		  \"reason\": \"not this one\" },
		{ \"cidr\": \"127.0.0.1/32\", \"port\": $EPORT,
		  \"action\": \"allow\" },
		{ \"host\": \"localhost\", \"action\": \"allow\" },
		{ \"host\": \"inject.example\", \"action\": \"inject\",
		  \"set_headers\": { \"Authorization\": \"Bearer x\" } },
		{ \"host\": \"*.example\", \"action\": \"allow\" },
		{ \"host\": \"169.254.169.254\", \"action\": \"allow\" },
		{ \"host\": \"10.1.2.3\", \"action\": \"allow\" } ] },
	\"closed\": { \"rules\": [] } } } }" ||
    { ok "pincerd starts" false; done_testing; }
PW=$(random_token)
printf '%s\n' "$PW" | pcli user add alice --role owner --password-stdin >/dev/null 2>&1
TOK=$(pcli token create --user alice --scope sandbox,read --name sbx 2>/dev/null)
secret_register "$TOK"
post "" '{"name":"eg"}'
is "a sandbox is created" "$CODE" 201

run eg 'env | grep -i _proxy | sort'
like "HTTP_PROXY points at 127.0.0.1:3128" "$OUT" 'HTTP_PROXY=http://127.0.0.1:3128'
like "… and https_proxy" "$OUT" 'https_proxy=http://127.0.0.1:3128'
like "… loopback is not proxied (the gateway's own ports)" "$OUT" 'NO_PROXY=localhost,127.0.0.1,::1'

# curl's --noproxy '' proxies 127.0.0.1 too: the test server is there.
PX="--proxy http://127.0.0.1:3128 --noproxy ''"
run eg "curl -s $PX -w '\n%{http_code}' 'http://127.0.0.1:$EPORT/a/b?token=s3cr3t' -H 'X-Mine: 1'"
like "GET through the proxy to an allowed address: 200" "$OUT" $'\n200$'
like "… the server got the path in origin form, query kept" "$OUT" '"url":"/a/b\?token=s3cr3t"'
like "… and the client's headers" "$OUT" '"x-mine":"1"'
like "… with Connection: close" "$OUT" '"connection":"close"'
unlike "… and no proxy header" "$OUT" 'proxy-connection'

run eg "curl -s $PX -w '\n%{http_code}' -X POST --data-binary 'hello body' http://127.0.0.1:$EPORT/post"
like "POST with a body: relayed" "$OUT" '"body":"hello body"'

run eg "curl -s -p $PX -w '\n%{http_code}' http://127.0.0.1:$EPORT/tunnel"
like "a CONNECT tunnel to the allowed address: 200 through it" "$OUT" $'\n200$'
like "… the request arrived through the tunnel" "$OUT" '"url":"/tunnel"'

# pincer-init hands a 3128 client's socket to pincerd (SCM_RIGHTS) rather
# than relaying it; a process in the sandbox may do the same, but only a
# connected TCP socket is taken, and served as that sandbox's.
HANDOVER='
import os, socket, sys
def hand(fd):
    u = socket.socket(socket.AF_UNIX)
    u.connect("/run/pincer/gateway.sock")
    socket.send_fds(u, [b"X-PINCER-FD / HTTP/1.1\r\n\r\n"], [fd])
    u.close()
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
c = socket.create_connection(l.getsockname()); s, _ = l.accept()
hand(s.fileno()); s.close()
c.sendall(b"GET http://127.0.0.1:" + sys.argv[1].encode() + b"/handed HTTP/1.1\r\nHost: x\r\n\r\n")
c.settimeout(10)
print(c.recv(65536).split(b"\r\n")[0].decode())
r, w = os.pipe()
os.write(w, b"GET http://127.0.0.1:" + sys.argv[1].encode() + b"/pipe HTTP/1.1\r\n\r\n")
hand(r)
print("pipe handed")
'
run eg "python3 -c '$HANDOVER' $EPORT"
is "a connected TCP socket handed over is served as the sandbox's" \
    "$OUT" $'HTTP/1.1 200 OK\npipe handed'
wait_log 'path=/handed'
like "… and logged as its request" "$(grep 'path=/handed' "$PINCER_LOG")" \
    'sandbox=eg .*action=allow'
run eg "curl -s $PX -o /dev/null -w '%{http_code}' http://127.0.0.1:$EPORT/after-pipe"
is "… a pipe handed over is not taken, and the proxy goes on" "$OUT" 200
unlike "… nor its request served" "$(grep msg=egress "$PINCER_LOG")" \
    'path=/pipe'

run eg "curl -s $PX -w '\n%{http_code}' http://denied.example/x"
like "a denied host: 403" "$OUT" $'\n403$'
like "… with the rule's reason in JSON" "$OUT" '"code":"egress_denied","message":"not this one"'

run eg "curl -s $PX -w '\n%{http_code}' http://nothing.else.test/"
like "a host no rule names: 403 (the default)" "$OUT" $'\n403$'
like "… saying so" "$OUT" '"code":"egress_denied"'

run eg "curl -s $PX -w '\n%{http_code}' http://localhost:1/"
like "a name allowed by host that resolves to 127.0.0.1: 403" "$OUT" $'\n403$'
like "… refused after resolution, the range named" "$OUT" '127.0.0.0/8'

run eg "curl -s $PX -w '\n%{http_code}' http://169.254.169.254/latest/meta-data/"
like "the metadata address, even allowed by name: 403" "$OUT" $'\n403$'
like "… the range named" "$OUT" '169.254.0.0/16'
run eg "curl -s -p $PX -w '%{http_connect}' http://169.254.169.254/; echo \" rc=\$?\""
like "… and by CONNECT" "$OUT" '^403 rc=56$'
run eg "curl -s $PX -w '\n%{http_code}' http://10.1.2.3/"
like "a private address allowed by name: 403" "$OUT" $'\n403$'
like "… the range named" "$OUT" '10.0.0.0/8'
run eg "curl -s $PX -w '\n%{http_code}' http://127.0.0.1:1/"
like "127.0.0.1 on a port the cidr rule does not allow: 403" "$OUT" $'\n403$'

run eg "curl -s $PX -w '\n%{http_code}' http://inject.example/"
like "an inject host over plain HTTP: refused" "$OUT" $'\n403$'
like "… a credential goes over TLS only" "$OUT" 'HTTPS only'

run eg "curl -s $PX -w '\n%{http_code}' http://no-such-name.example/"
like "an allowed name that does not resolve: 502" "$OUT" $'\n502$'
like "… saying so" "$OUT" '"code":"egress_resolve_failed","message":"cannot resolve no-such-name.example'

run eg "curl -s $PX -w '\n%{http_code}' https://127.0.0.1:$EPORT/ ; echo \" rc=\$?\""
like "https:// to the test server goes by CONNECT (its TLS fails, not the proxy)" "$OUT" 'rc=(35|52|56)'

run eg "curl -s --noproxy '*' -m 3 -o /dev/null http://1.1.1.1/; echo \"rc=\$?\""
like "a direct connection that ignores the proxy fails" "$OUT" 'rc=[1-9]'

raw=$(printf 'GET http://127.0.0.1:%s/ HTTP/1.1\r\nHost: x\r\n\r\n' "$EPORT" |
    curl -s --max-time 3 --unix-socket "$PINCER_STATE_DIR/pincerd.sock" \
    -o /dev/null -w '%{http_code}' --request-target "http://127.0.0.1:$EPORT/" \
    http://localhost/ 2>/dev/null)
is "a proxy request on pincerd.sock (not a sandbox's): 400" "$raw" 400

# The policy at run time.
api GET /eg/egress
is "GET …/egress: 200" "$CODE" 200
ok "… the sandbox has egress.policy, not set for it, with its rules" jok "$BODY" \
    "o.policy === 'test' && o.set === false && o.default === 'test' && o.definition.rules.length === 7"
ok "… and every policy's name, to choose from" jok "$BODY" \
    "JSON.stringify(o.policies.slice().sort()) === '[\"closed\",\"default\",\"test\"]'"
api PUT /eg/egress -H 'Content-Type: application/json' --data-binary '{"policy":"closed"}'
is "PUT …/egress {policy: closed}: 200" "$CODE" 200
ok "… it says so" jok "$BODY" "o.policy === 'closed' && o.set === true"
run eg "curl -s $PX -w '\n%{http_code}' http://127.0.0.1:$EPORT/now"
like "the next request is decided by the new policy: 403" "$OUT" $'\n403$'
like "… which the answer names" "$OUT" '"policy":"closed"'
api PUT /eg/egress -H 'Content-Type: application/json' --data-binary '{"policy":"nope"}'
is "PUT an unknown policy: 400" "$CODE" 400
like "… naming it" "$BODY" 'nope.*is not in egress.policies'
api PUT /eg/egress -H 'Content-Type: application/json' --data-binary '{"policy":42}'
is "PUT a policy that is not a name: 400" "$CODE" 400
api GET /eg/egress
ok "… and the policy stays closed" jok "$BODY" "o.policy === 'closed'"
post "" '{"name":"eg2"}'
run eg2 "curl -s $PX -w '\n%{http_code}' http://127.0.0.1:$EPORT/other"
like "another sandbox keeps egress.policy: 200" "$OUT" $'\n200$'
api PUT /eg/egress -H 'Content-Type: application/json' --data-binary '{"policy":null}'
ok "PUT {policy: null}: back to egress.policy" jok "$BODY" "o.policy === 'test' && o.set === false"
run eg "curl -s $PX -w '\n%{http_code}' http://127.0.0.1:$EPORT/again"
like "… and the next request is allowed again" "$OUT" $'\n200$'
api PUT /eg/egress -H 'Content-Type: application/json' --data-binary '{"policy":"closed"}'
api DELETE /eg
post "" '{"name":"eg"}'
api GET /eg/egress
ok "a sandbox destroyed and made again starts with egress.policy" jok "$BODY" "o.policy === 'test' && o.set === false"
ADM=$(pcli token create --user alice --scope admin,read --name adm 2>/dev/null)
secret_register "$ADM"
req GET '/api/v1/audit?limit=50' -H "Authorization: Bearer $ADM"
like "the switch is audited" "$BODY" 'sandbox.egress'

wait_log 'msg=egress.*host=denied.example'
LOG=$(grep 'msg=egress' "$PINCER_LOG")
like "the log has a line per request" "$LOG" 'sandbox=eg policy=test method=GET host=127.0.0.1'
like "… the denial with its action" "$LOG" 'host=denied.example.*action=deny'
unlike "… and never the query" "$LOG" 's3cr3t'
like "… the bytes each way counted" "$LOG" 'method=POST .*bytes_up=[1-9][0-9]* bytes_down=[1-9]'
like "… and a plain request's status, from the host's answer" "$LOG" 'path=/post action=allow rule=1 status=200'
req GET /metrics -H "Authorization: Bearer $ADM"
like "/metrics counts requests allowed" "$BODY" 'pincer_egress_requests_total\{action="allow"\} [1-9]'
like "… denied" "$BODY" 'pincer_egress_requests_total\{action="deny"\} [1-9]'
like "… failed" "$BODY" 'pincer_egress_requests_total\{action="error"\} [1-9]'
like "… and the bytes" "$BODY" 'pincer_egress_bytes_total\{direction="down"\} [1-9]'

# The request log in the store (issue 10): allowed, denied, failed.
secret_register SECRETVALUE123
run eg "curl -s $PX -o /dev/null -w '%{http_code}' 'http://127.0.0.1:$EPORT/logged?token=SECRETVALUE123'"
is "an allowed request with a secret in its query: 200" "$OUT" 200
run eg "curl -s $PX -o /dev/null -w '%{http_code}' http://denied.example/d"
is "… a denied one: 403" "$OUT" 403
run eg "curl -s $PX -o /dev/null -w '%{http_code}' http://no-such-name.example/e"
is "… one that fails: 502" "$OUT" 502
elog_until "sandbox=eg&limit=3" "o.entries.length === 3 && o.entries[0].host === 'no-such-name.example'"
is "GET /api/v1/egress/log as the admin: 200" "$CODE" 200
ok "… newest first: the failure, its action and status" jok "$BODY" \
    "o.entries[0].action === 'error' && o.entries[0].status === 502 &&
     o.entries[0].method === 'GET' && o.entries[0].path === '/e'"
ok "… the denial, with its rule" jok "$BODY" \
    "o.entries[1].host === 'denied.example' && o.entries[1].action === 'deny' &&
     o.entries[1].status === 403 && o.entries[1].rule === 0"
ok "… the allowed request, the query cut to ?…" jok "$BODY" \
    "(e => e.host === '127.0.0.1' && e.port === $EPORT &&
     e.action === 'allow' && e.status === 200 && e.method === 'GET' &&
     e.path === '/logged?…' && e.sandbox === 'eg' && e.policy === 'test' &&
     e.rule === 1 && e.bytes_up > 0 && e.bytes_down > 0 && e.ms >= 0 &&
     e.intercepted === false)(o.entries[2])"
ok "… ids descending, times in ISO 8601 UTC" jok "$BODY" \
    "o.entries[0].id > o.entries[1].id && o.entries[1].id > o.entries[2].id &&
     o.entries.every(e => /^20\d\d-\d\d-\d\dT[\d:.]+Z$/.test(e.time)) &&
     Math.abs(Date.parse(o.entries[0].time) - Date.now()) < 60000"
unlike "… and never the query's secret" "$BODY" 'SECRETVALUE123'
elog "sandbox=eg&limit=1000"
ok "a CONNECT tunnel has its method and no path" jok "$BODY" \
    "o.entries.some(e => e.method === 'CONNECT' && e.path === null &&
     e.action === 'allow' && e.status === 200)"
elog "host=denied.example"
ok "?host= keeps that host's requests only" jok "$BODY" \
    "o.entries.length >= 2 && o.entries.every(e => e.host === 'denied.example')"
elog "host=DENIED.Example"
ok "… in any case" jok "$BODY" "o.entries.length >= 2"
elog "sandbox=eg2"
ok "?sandbox= keeps that sandbox's" jok "$BODY" \
    "o.entries.length >= 1 && o.entries.every(e => e.sandbox === 'eg2') &&
     o.next_before === null"
elog "action=deny&sandbox=eg"
ok "?action=deny: denials only" jok "$BODY" \
    "o.entries.length >= 3 && o.entries.every(e => e.action === 'deny')"
elog "sandbox=nobody"
ok "a sandbox with no requests: no entries" jok "$BODY" \
    "o.entries.length === 0 && o.next_before === null"
elog "limit=1000"
IDS=$(jv "$BODY" "o.entries.map(e => e.id).join(' ')")
read -r ID0 ID1 ID2 ID3 _ <<<"$IDS"
elog "limit=2"
ok "?limit=2: two entries, the newest, and the next page's before" jok "$BODY" \
    "o.entries.map(e => e.id).join() === '$ID0,$ID1' && o.next_before === $ID1"
elog "limit=2&before=$(jv "$BODY" o.next_before)"
ok "… ?before= that: the next two" jok "$BODY" \
    "o.entries.map(e => e.id).join() === '$ID2,$ID3' && o.next_before === $ID3"
elog "limit=1000&before=$(awk '{ print $(NF - 1) }' <<<"$IDS")"
ok "… the last page: one entry, next_before null" jok "$BODY" \
    "o.entries.length === 1 && o.next_before === null"
req GET /api/v1/egress/log
is "without a credential: 401" "$CODE" 401
req GET /api/v1/egress/log -H "Authorization: Bearer $TOK"
is "a token without the admin scope: 403" "$CODE" 403
for q in limit=abc limit=0 limit=1001 limit=5x before=-1 before=abc \
    action=maybe; do
	elog "$q"
	is "?$q: 400" "$CODE" 400
done
ok "… with the JSON error" jok "$BODY" "o.error.code === 'bad_request'"
DB=$PINCER_STATE_DIR/pincer.db
like "the store has the rows" "$(sqlite3 "$DB" .dump)" \
    'INSERT INTO egress_log.*/logged\?…'
is "… and no byte of the query in the database files" \
    "$(cat "$DB" "$DB-wal" 2>/dev/null | grep -c SECRETVALUE123)" 0
is "… nor in the log" "$(grep -c SECRETVALUE123 "$PINCER_LOG")" 0
req GET /metrics -H "Authorization: Bearer $ADM"
like "/metrics counts the rows written" "$BODY" \
    'pincer_egress_log_written_total [1-9]'
like "… and none dropped" "$BODY" 'pincer_egress_log_dropped_total 0'

# A switch outlives pincerd: the same state folder, a new pincerd.
api PUT /eg/egress -H 'Content-Type: application/json' --data-binary '{"policy":"closed"}'
is "PUT {policy: closed} again: 200" "$CODE" 200
restart
api GET /eg/egress
ok "after a restart the sandbox still has the policy set for it" jok "$BODY" \
    "o.policy === 'closed' && o.set === true"
run eg "curl -s $PX -w '\n%{http_code}' http://127.0.0.1:$EPORT/after"
like "… and it decides: 403" "$OUT" '"policy":"closed".*'$'\n403$'
run eg2 "curl -s $PX -w '\n%{http_code}' http://127.0.0.1:$EPORT/after"
like "… while the other sandbox keeps egress.policy: 200" "$OUT" $'\n200$'

elog_until "sandbox=eg&limit=1000" "o.entries[0].path === '/after'"
ok "the log outlives a restart: the rows before it" jok "$BODY" \
    "o.entries.some(e => e.path === '/logged?…')"
ok "… and the request after it, denied by the policy set" jok "$BODY" \
    "o.entries[0].action === 'deny' && o.entries[0].policy === 'closed'"

# egress.log_max_rows: the oldest go past it.
restart PINCER_EGRESS_LOG_MAX_ROWS=3
elog_until "limit=1000" "o.entries.length === 3"
is "egress.log_max_rows 3: the rows from before are cut to 3" \
    "$(jv "$BODY" o.entries.length)" 3
for i in 1 2 3 4 5; do
	run eg2 "curl -s $PX -o /dev/null http://127.0.0.1:$EPORT/m$i"
done
elog_until "limit=1000" "o.entries.length === 3 && o.entries[0].path === '/m5'"
ok "… after 5 more requests, the newest 3 are kept" jok "$BODY" \
    "o.entries.map(e => e.path).join() === '/m5,/m4,/m3'"
is "… in the database too" \
    "$(sqlite3 "$DB" 'SELECT count(*) FROM egress_log')" 3

# egress.log_retention_days 0: nothing is kept.
restart PINCER_EGRESS_LOG_RETENTION_DAYS=0
run eg2 "curl -s $PX -o /dev/null -w '%{http_code}' \
    http://127.0.0.1:$EPORT/none"
is "egress.log_retention_days 0: a request goes through" "$OUT" 200
elog_until "limit=1000" "o.entries.length === 0"
ok "… and is not stored; the rows kept before are gone" jok "$BODY" \
    "o.entries.length === 0 && o.next_before === null"
wait_log 'msg=egress.*path=/none'
like "… while the log line is still written" \
    "$(grep 'msg=egress' "$PINCER_LOG")" 'path=/none'

kill "$ECHO_PID" 2>/dev/null
pincer_stop
done_testing
