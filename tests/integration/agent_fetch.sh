#!/bin/bash
# SPDX-License-Identifier: MIT
# agent_fetch.sh: pincer-agent's web_fetch where it runs, in a sandbox:
# the sandbox's curl goes through the egress proxy of its environment,
# the body lands in /workspace/downloads and its text reaches the model
# (the fake provider's next request carries it), HTML as its text. The
# owner's policy refusing a host, over plain HTTP (with the rule's reason)
# and HTTPS (the CONNECT), a name that does not resolve, a site's error,
# a file too large, a redirect or URL to file://, and a URL full of shell
# syntax (curl gets an argv, not a shell) are each told to the model in
# words it can act on.
# The test server is named by the host's name (it resolves to a loopback
# address on the host): "localhost" and 127.0.0.1 are in the sandbox's
# NO_PROXY, so curl would not use the proxy for them (where the host's
# name does not resolve, localhost is used with NO_PROXY narrowed for the
# turn, as egress_tls.sh does).
. "$TOP_SRCDIR/tests/integration/lib.sh"
. "$TOP_SRCDIR/tests/integration/sandbox_lib.sh"

if [ ! -x "$TOP_BUILDDIR/pincer-init" ] || [ ! -x "$TOP_BUILDDIR/pincer-agent" ]
then
	ok "pincer-init and pincer-agent are built next to pincer" false
	done_testing
fi
if [ ! -x /usr/bin/curl ]; then
	echo "1..0 # SKIP /usr/bin/curl (the sandbox's) is not installed"
	exit 0
fi

SNAME=$(hostname)
SADDR=$(getent ahostsv4 "$SNAME" 2>/dev/null | awk '{ print $1; exit }')
XENV=""
case $SNAME in localhost|*.localhost|"") SADDR="" ;; esac
case $SADDR in 127.*) ;; *) SADDR="" ;; esac
if [ -z "$SADDR" ]; then
	SNAME=localhost
	SADDR=127.0.0.1
	XENV=',"NO_PROXY":"::1","no_proxy":"::1"'
fi
node "$TOP_SRCDIR/tests/fakes/echo_http.mjs" --host "$SADDR" \
    >"$T_TMP/echo.out" 2>&1 &
T_PIDS="$T_PIDS $!"
disown
wait_until 10 grep -q port "$T_TMP/echo.out"
EPORT=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$T_TMP/echo.out")
ok "the test server listens on $SADDR ($SNAME)" test -n "$EPORT"
S="http://$SNAME:$EPORT"

KEY="sk-agent-fetch-$(random_token)"
secret_register "$KEY"
ok "the fake provider starts" llm_fake_start "$KEY"
pincer_start "{ $FAST, \"agent\": { \"skills_dir\": \"$TOP_SRCDIR/skills\" },
  \"llm\": { \"providers\": [ { \"name\": \"oa\", \"kind\": \"openai\",
	\"base_url\": \"$FAKE/v1\", \"key\": \"fake_key\" } ],
	\"routes\": { \"default\": [\"oa/gpt-4o\"] }, \"rate_limit_rpm\": 0 },
  \"egress\": { \"policy\": \"fetch\", \"policies\": {
	\"fetch\": { \"default\": \"deny\", \"rules\": [
		{ \"host\": \"denied.example\", \"action\": \"deny\",
		  \"reason\": \"no example sites for the agent\" },
		{ \"host\": \"nowhere.invalid\", \"action\": \"allow\" },
		{ \"host\": \"$SNAME\", \"cidr\": \"$SADDR/32\",
		  \"port\": $EPORT, \"action\": \"allow\" } ] } } } }" ||
    { ok "pincerd starts" false; done_testing; }
printf '%s' "$KEY" | pcli secret set fake_key >/dev/null 2>&1
printf 'a long passphrase\n' | pcli user add al --role owner --password-stdin \
    >/dev/null 2>&1
TOK=$(pcli token create --user al --scope sandbox,read --name t 2>/dev/null)
secret_register "$TOK"
post "" '{"name":"fx"}'
is "a sandbox is created" "$CODE" 201

script() { curl -s -o /dev/null -X POST "$FAKE/_fake/script" \
    -H 'Content-Type: application/json' --data-binary "$1"; }
# fetches URL…: a turn whose model calls web_fetch on each URL, then
# answers "fetched"; TOOLS: the results the model was sent, one JSON
# string a line; EV: the turn's events. Extra input fields in $TURN_MORE.
fetches() {
	local calls="" u in
	curl -s -o /dev/null -X POST "$FAKE/_fake/reset"
	for u in "$@"; do
		calls="$calls{\"tool\": \"web_fetch\", \"args\": {\"url\": $(js "$u")}},"
	done
	script "[$calls {\"text\": \"fetched\"}]"
	in="{\"conversation\": \"f$RANDOM\", \"text\": \"fetch\"${TURN_MORE:-}}"
	# LeakSanitizer cannot run in the sandbox (agent_turn.sh checks).
	post /fx/exec "{\"cmd\":[\"/opt/pincer/pincer-agent\",\"turn\"],\"stdin\":$(js "$in"),\"timeout_ms\":120000,\"env\":{\"ASAN_OPTIONS\":\"detect_leaks=0\"$XENV}}"
	EV=$(jv "$BODY" o.stdout)
	TOOLS=$(curl -s "$FAKE/_fake/requests" |
	    jq -c '.[-1].body.messages[] | select(.role == "tool") | .content')
}
# tool N: the N-th result (1-based) as text; flat N: on one line.
tool() { sed -n "${1}p" <<<"$TOOLS" | jq -r .; }
flat() { tool "$1" | tr '\n' ' '; }

# --- what comes back -----------------------------------------------------
fetches "$S/hello?x=1" "$S/_page.html" "$S/a;touch /tmp/pwned" \
    "$S/_latin1" "$S/_bytes?n=3000"
is "a turn of five fetches ends with its reply" \
    "$(printf '%s\n' "$EV" | tail -n 1 | jq -r .text)" fetched
is "… the model was sent five results" "$(wc -l <<<"$TOOLS")" 5
R=$(tool 1)
like "a page fetched through the proxy: the status and type" "$R" \
    "^HTTP 200, application/json, [0-9]+ bytes, from $S/hello\\?x=1"
like "… where it is saved" "$R" "saved to /workspace/downloads/hello"
like "… its text, as the server sent it" "$R" '"url":"/hello\?x=1"'
like "… having come by the proxy (which closes each request)" "$R" \
    '"connection":"close"'
like "… as untrusted content" "$R" "<untrusted-content source=\"web $S/hello"
R=$(tool 2)
like "an HTML page comes back as its text" "$R" "Hello from the page"
like "… entities decoded" "$R" "Café <tags> \"quoted\" 'single' ☺"
like "… the title kept, list items marked" "$(flat 2)" \
    "Fetch & test.*- one.*- two"
unlike "… without tags" "$R" "<h1>|<p>|<li>|<title>"
unlike "… nor scripts, styles, comments or noscript" "$R" \
    "secretScript|color: red|a comment|no script here"
like "… and it says so" "$R" "HTML, reduced to its text"
R=$(tool 3)
like "a URL with shell syntax is one argument to curl" "$R" \
    '"url":"/a;touch%20/tmp/pwned"'
like "Latin-1 text is converted to UTF-8" "$(tool 4)" "café crème"
R=$(tool 5)
like "a binary file: its type and size" "$R" \
    "HTTP 200, application/octet-stream, 3000 bytes"
like "… saved, not shown" "$(flat 5)" "saved to /workspace/downloads/_bytes.*not text"
run fx 'cd /workspace/downloads && ls; wc -c < _bytes; cat hello'
OUT=${OUT//$'\n'/ }
like "the files are in /workspace/downloads" "$OUT" \
    "^_bytes _latin1 _page.html hello pwned "
like "… whole" "$OUT" " 3000 "
like "… as downloaded" "$OUT" '"url":"/hello\?x=1"'
run fx 'ls /tmp/pwned 2>&1'
like "no command of the URL ran in the sandbox" "$OUT" "No such file"

# --- what the owner's policy refuses, what fails -------------------------
fetches "http://denied.example/x" "https://denied.example/x" \
    "http://unlisted.example/" "http://nowhere.invalid/" \
    "https://nowhere.invalid/" "file:///etc/passwd" \
    "$S/_redirect?to=file:///etc/passwd" "$S/_status?code=404" \
    "$S/_bytes?n=60000000&chunked" "https://$SNAME:$EPORT/"
R=$(tool 1)
like "plain HTTP to a denied host: the policy, said so" "$R" \
    "^error: the owner's egress policy does not allow this request"
like "… with the rule's reason and the policy" "$R" \
    'policy "fetch"\): no example sites for the agent'
like "… and what to do" "$R" "ask the owner"
like "HTTPS to a denied host: the proxy refused the CONNECT" "$(tool 2)" \
    "^error: the egress proxy refused the connection \\(HTTP 403\\): the owner's egress policy does not allow this host"
like "a host no rule names: refused by the policy's default" "$(tool 3)" \
    "^error: the owner's egress policy does not allow this request"
like "an allowed name that does not resolve (HTTP): the proxy's words" \
    "$(tool 4)" \
    "^error: the egress proxy could not complete the request \\(HTTP 502, egress_resolve_failed.*cannot resolve nowhere.invalid"
like "… (HTTPS): the CONNECT's status, explained" "$(tool 5)" \
    "^error: the egress proxy could not connect to the host \\(HTTP 502\\): the name does not resolve"
like "file:// is refused" "$(tool 6)" "^error: only http:// and https://"
like "… also as a redirect" "$(tool 7)" \
    "^error: the fetch failed: Protocol 'file' not supported"
R=$(tool 8)
like "a site's 404: the status" "$R" "the site answered HTTP 404"
like "… and what it said" "$R" "the status is 404"
like "over 50 MiB (no Content-Length): stopped, nothing kept" "$(tool 9)" \
    "^error: the file is larger than 50 MiB"
like "TLS to a server that speaks plain HTTP: curl's reason" "$(tool 10)" \
    "^error: the fetch failed: .*\\(curl exit code 35\\)"
ok "every failure was reported as one" test \
    "$(printf '%s\n' "$EV" | jq -r 'select(.type == "tool_end") | .ok' |
    sort -u)" = false
run fx 'ls /workspace/downloads'
is "no failed fetch left a file" "$OUT" \
    "$(printf '%s\n' _bytes _latin1 _page.html hello pwned)"

# --- the tool timeout ----------------------------------------------------
TURN_MORE=', "tool_timeout_s": 2' fetches "$S/_slow?ms=6000"
like "a slow site: the fetch stops at the tool timeout" "$(tool 1)" \
    "^error: the fetch timed out \\(the tool timeout is 2 s\\): Operation timed out"

done_testing
