#!/bin/bash
# SPDX-License-Identifier: MIT
# sighup.sh: SIGHUP re-reads the config. A valid file takes effect at once;
# an invalid one (unknown key, broken JSON) changes nothing and the log says
# why; options that need a restart keep their running value, with a warning.
. "$TOP_SRCDIR/tests/integration/lib.sh"

head -c 1500 /dev/zero | tr '\0' a >"$T_TMP/b1500"
head -c 2500 /dev/zero | tr '\0' b >"$T_TMP/b2500"

# The config: "listen" lives in the file (no --listen override, which would
# win over the file on every reload too), then max_body_bytes, then extras.
LISTEN=127.0.0.1:0
conf() {
	printf '{ "listen": "%s", "http": { "max_body_bytes": %s }%s }\n' \
	    "$LISTEN" "$1" "${2:+, $2}"
}
# POST SIZE bytes to URL (default this daemon's /healthz): the status code.
post() {
	curl -s -o /dev/null -w '%{http_code}' -H 'Expect:' \
	    --data-binary @"$T_TMP/b$1" "${2:-$PINCER_URL}/healthz"
}
code() { curl -s -o /dev/null -w '%{http_code}' "$1"; }
# Rewrite the config file, send SIGHUP, wait for REGEX in one more log line.
hup() {
	local re=$1 n
	n=$(log_count "$re")
	kill -HUP "$PINCER_PID"
	wait_log "$re" 5 "$n"
}

PINCER_LISTEN_ADDR='' pincer_start "$(conf 1000)" ||
	{ echo "Bail out! pincerd did not start"; exit 1; }
OLD_URL=$PINCER_URL

is "max_body_bytes 1000: POST 1500 bytes gets 413" "$(post 1500)" 413

# A valid reload raises the limit.
conf 2000 >"$PINCER_CONF"
ok "SIGHUP with a valid config logs 'config reloaded'" \
	hup 'msg="config reloaded"'
is "max_body_bytes 2000: POST 1500 bytes now reaches the route (405)" \
	"$(post 1500)" 405
is "POST 2500 bytes still gets 413" "$(post 2500)" 413

# Unknown keys: nothing changes (its max_body_bytes 3000 would let 2500 in).
conf 3000 '"http.nope": 1, "log": { "nope2": true }' >"$PINCER_CONF"
FAIL_RE='msg="config reload failed; keeping the running config"'
LINES=$(wc -l <"$PINCER_LOG")
ok "SIGHUP with an unknown key logs that the reload failed" hup "$FAIL_RE"
FAIL_LINE=$(grep -F 'config reload failed' "$PINCER_LOG" | tail -1)
like "the failure line names the unknown key" "$FAIL_LINE" \
	'level=error .*detail=.*http\.nope: unknown option'
like "both errors are folded into that one line" "$FAIL_LINE" \
	'http\.nope: .*;.*log\.nope2: |log\.nope2: .*;.*http\.nope: '
is "the failed reload wrote exactly one line" "$(wc -l <"$PINCER_LOG")" \
	$((LINES + 1))
is "the running limit is kept: POST 1500 still 405" "$(post 1500)" 405
is "the running limit is kept: POST 2500 still 413" "$(post 2500)" 413
is "/healthz still 200" "$(code "$PINCER_URL/healthz")" 200

# Broken JSON: same.
printf '{ "listen": "%s", "http": { "max_body_bytes": 3000 }\n' "$LISTEN" \
	>"$PINCER_CONF"
ok "SIGHUP with malformed JSON logs that the reload failed" hup "$FAIL_RE"
like "the failure line points into the file (path:line:column)" \
	"$(grep -F 'config reload failed' "$PINCER_LOG" | tail -1)" \
	'detail=.*pincer\.json:[0-9]+:[0-9]+: '
is "after broken JSON: POST 1500 still 405" "$(post 1500)" 405
is "after broken JSON: POST 2500 still 413" "$(post 2500)" 413
is "after broken JSON: /healthz still 200" "$(code "$PINCER_URL/healthz")" 200

# "listen" needs a restart: the reload warns and keeps the old socket.
NEW_PORT=$(node -e 'const s = require("net").createServer();
	s.listen(0, "127.0.0.1", () => { console.log(s.address().port);
	s.close(); })')
LISTEN=127.0.0.1:$NEW_PORT
conf 3000 >"$PINCER_CONF"
N=$(log_count 'msg="config reloaded"')
ok "SIGHUP changing listen warns that it needs a restart" \
	hup 'msg="config option needs a restart"'
like "the warning names the option" \
	"$(grep -F 'needs a restart' "$PINCER_LOG" | tail -1)" \
	'level=warn .*detail="listen changed'
ok "the rest of that config was applied ('config reloaded')" \
	wait_log 'msg="config reloaded"' 5 "$N"
is "its max_body_bytes 3000 applies: POST 2500 now 405" "$(post 2500)" 405
is "the daemon still answers on the old address" \
	"$(code "$OLD_URL/healthz")" 200
is "and not on the new one (curl: connection refused)" \
	"$(curl -s -o /dev/null "http://$LISTEN/healthz"; echo $?)" 7

# log.format json: the lines after the reload are JSON.
LISTEN=127.0.0.1:0
conf 2000 '"log": { "format": "json" }' >"$PINCER_CONF"
ok "SIGHUP switching log.format to json: the reload line is JSON" \
	hup '^\{.*"msg":"config reloaded"'
json_check "$(grep -F '"config reloaded"' "$PINCER_LOG" | tail -1)" \
	'o.msg === "config reloaded" && o.level === "info"' >/dev/null 2>&1
is "the reload line parses as JSON" $? 0
N=$(log_count '"msg":"request"')
curl -s -o /dev/null "$PINCER_URL/healthz?x=1"
wait_log '"msg":"request"' 5 "$N"
LAST=$(tail -1 "$PINCER_LOG")
ok "the next request line is JSON with the request's fields" \
	json_check "$LAST" 'o.msg === "request" && o.path === "/healthz" &&
	    o.status === 200 && o.method === "GET" && typeof o.ts === "string"'

pincer_stop
is "pincerd exits 0 after the reloads" "$PINCER_EXIT" 0

done_testing
