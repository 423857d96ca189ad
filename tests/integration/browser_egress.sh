#!/bin/bash
# SPDX-License-Identifier: MIT
# browser_egress.sh: a sandbox's browser context goes out through the
# sandbox's egress policy. Its pages reach a server on the host's
# loopback while the policy allows it (the egress log names the
# sandbox), and get the proxy's refusal once the policy is switched;
# pincerd's own port is refused under both; a context the sandbox's
# client makes with a proxy of its own choosing goes through the policy
# all the same; and the context's proxy port, reached by a host process
# that is not pincerd's Chromium, is closed unanswered and logged.
. "$TOP_SRCDIR/tests/integration/lib.sh"
. "$TOP_SRCDIR/tests/integration/sandbox_lib.sh"

if [ ! -x /usr/bin/chromium ]; then
	skip browser "no /usr/bin/chromium"
	done_testing
fi
ECHO_LOG=$T_TMP/echo.requests
: >"$ECHO_LOG"
ECHO_LOG=$ECHO_LOG node "$TOP_SRCDIR/tests/fakes/echo_http.mjs" \
    >"$T_TMP/echo.out" 2>&1 &
ECHO_PID=$!
T_PIDS="$T_PIDS $ECHO_PID"
wait_until 10 grep -q port "$T_TMP/echo.out"
EPORT=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$T_TMP/echo.out")
ok "the test server listens on 127.0.0.1" test -n "$EPORT"

pincer_start "{ $FAST, \"egress\": { \"policy\": \"open\", \"policies\": {
	\"open\": { \"rules\": [ { \"host\": \"localhost\",
		\"cidr\": \"127.0.0.0/8\", \"port\": $EPORT,
		\"action\": \"allow\" } ] },
	\"closed\": { \"rules\": [] } } } }" ||
    { ok "pincerd starts" false; done_testing; }
PW=$(random_token)
printf '%s\n' "$PW" | pcli user add al --role owner --password-stdin \
    >/dev/null 2>&1
TOK=$(pcli token create --user al --scope sandbox,read,admin --name t \
    2>/dev/null)
secret_register "$TOK"
post "" '{"name":"bx"}'
is "a sandbox is created" "$CODE" 201

# page.mjs URL [own]: opens URL in a new tab (in a context of the
# client's own, asking for no proxy, with "own"), and prints
# {"error": Page.navigate's errorText, "text": the page's text}.
cat >"$T_TMP/page.mjs" <<'EOF'
const url = process.argv[2], own = process.argv[3] === "own";
const v = await (await fetch("http://127.0.0.1:9222/json/version")).json();
const ws = new WebSocket(v.webSocketDebuggerUrl);
const waits = new Map();
let n = 0;
ws.onmessage = (e) => {
	const m = JSON.parse(e.data);
	if (waits.has(m.id)) { waits.get(m.id)(m); waits.delete(m.id); }
};
await new Promise((r) => { ws.onopen = r; });
const call = (method, params = {}, sessionId) => new Promise((r) => {
	waits.set(++n, r);
	ws.send(JSON.stringify({ id: n, method, params, sessionId }));
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let ctx;
if (own)
	ctx = (await call("Target.createBrowserContext",
	    { proxyServer: "direct://" })).result.browserContextId;
const t = await call("Target.createTarget", { url: "about:blank",
    browserContextId: ctx });
const s = (await call("Target.attachToTarget",
    { targetId: t.result.targetId, flatten: true })).result.sessionId;
const nav = await call("Page.navigate", { url }, s);
let text = "";
for (let i = 0; i < 50; i++) {
	const r = await call("Runtime.evaluate", { expression:
	    "document.readyState + ' ' + (document.body ? " +
	    "document.body.innerText : '')" }, s);
	text = r.result?.result?.value ?? "";
	if (text.startsWith("complete")) break;
	await sleep(100);
}
console.log(JSON.stringify({ error: nav.result?.errorText ?? null,
    text: text.replace(/^complete /, "") }));
await call("Target.closeTarget", { targetId: t.result.targetId });
if (ctx) await call("Target.disposeBrowserContext", { browserContextId: ctx });
process.exit(0);
EOF
api PUT /bx/files/workspace/page.mjs --data-binary "@$T_TMP/page.mjs"
is "the CDP script is put in the workspace" "$CODE" 201
# page URL [own]: the script's answer in PAGE.
page() {
	run bx "cd /workspace && node --experimental-websocket page.mjs \
	    '$1' ${2:-} 2>/dev/null"
	PAGE=$OUT
}
requests() { wc -l <"$ECHO_LOG"; }

# --- policy "open": the page is the server's -------------------------------
page "http://localhost:$EPORT/hello"
like "an allowed page: the server's answer is in the tab" \
    "$(jv "$PAGE" o.text)" '"url":"/hello"'
like "… it came through the proxy (Connection: close)" \
    "$(jv "$PAGE" o.text)" '"connection":"close"'
ok "… the egress log line names the sandbox" wait_until 5 grep -q \
    "msg=egress sandbox=bx .*host=localhost port=$EPORT path=/hello \
action=allow" "$PINCER_LOG"
PPORT=$(sed -n 's/.*msg="browser context proxied" sandbox=bx //p' \
    "$PINCER_LOG" | sed -n 's/^port=\([0-9]*\).*/\1/p' | head -1)
ok "the context's proxy port is logged" test -n "$PPORT"

page "http://127.0.0.1:$(pincer_port)/readyz"
like "pincerd's own port from the tab: refused by the policy" \
    "$(jv "$PAGE" o.text)" '"code":"egress_denied"'
unlike "… nothing from pincerd" "$(jv "$PAGE" o.text)" 'ready'

# --- a proxy the client chose is not kept ----------------------------------
page "http://localhost:$EPORT/own" own
like "a context the client made, asking for direct://: still proxied" \
    "$(jv "$PAGE" o.text)" '"connection":"close"'
ok "… and logged as the sandbox's" wait_until 5 grep -q \
    "msg=egress sandbox=bx .*path=/own action=allow" "$PINCER_LOG"

# --- policy "closed", switched at run time ---------------------------------
api PUT /bx/egress -H 'Content-Type: application/json' \
    --data-binary '{"policy":"closed"}'
is "PUT …/egress {policy: closed}: 200" "$CODE" 200
BEFORE=$(requests)
page "http://localhost:$EPORT/again"
like "the same page now: the proxy's refusal" "$(jv "$PAGE" o.text)" \
    '"code":"egress_denied"'
is "… the server got no request" "$(requests)" "$BEFORE"
ok "… logged as denied" wait_until 5 grep -q \
    "msg=egress sandbox=bx .*path=/again action=deny" "$PINCER_LOG"
page "http://localhost:$EPORT/own2" own
like "… in a context of the client's own too" "$(jv "$PAGE" o.text)" \
    '"code":"egress_denied"'
page "http://127.0.0.1:$(pincer_port)/readyz"
like "pincerd's own port: refused" "$(jv "$PAGE" o.text)" \
    '"code":"egress_denied"'
is "the server still got nothing" "$(requests)" "$BEFORE"

# --- the proxy port, from a host process -----------------------------------
api PUT /bx/egress -H 'Content-Type: application/json' \
    --data-binary '{"policy":"open"}'
BEFORE=$(requests)
HOST_OUT=$(curl -s -m 5 -x "http://127.0.0.1:$PPORT" \
    "http://localhost:$EPORT/host" -w '%{http_code}'; echo " rc=$?")
like "curl on the host through the context's port: closed, no answer" \
    "$HOST_OUT" '^000 rc=(52|56)$'
is "… the server got nothing" "$(requests)" "$BEFORE"
REFUSED="msg=\"browser proxy connection refused\" sandbox=bx port=$PPORT"
ok "… and it is logged, with the peer's pid" wait_until 5 grep -Eq \
    "$REFUSED peer_port=[0-9]+ peer_pid=[0-9]+" "$PINCER_LOG"
page "http://localhost:$EPORT/after"
like "the sandbox's own tab still goes out" "$(jv "$PAGE" o.text)" \
    '"url":"/after"'

pincer_stop
is "pincerd stops cleanly" "$PINCER_EXIT" 0
kill "$ECHO_PID" 2>/dev/null
wait "$ECHO_PID" 2>/dev/null
done_testing
