#!/bin/bash
# SPDX-License-Identifier: MIT
# log_format.sh: one line per event, logfmt or JSON; request lines with their
# fields; no query string or header value in the log; a peer cannot forge a
# line or break the JSON; log.requests and log.level are obeyed.
. "$TOP_SRCDIR/tests/integration/lib.sh"

TOK_AUTH=$(random_token)
TOK_COOKIE=$(random_token)
TOK_QUERY=$(random_token)
secret_register "$TOK_AUTH"
secret_register "$TOK_COOKIE"
secret_register "$TOK_QUERY"

# A request carrying all three secrets.
secret_request() {
	curl -s -o /dev/null -H "Authorization: Bearer $TOK_AUTH" \
	    -H "Cookie: session=$TOK_COOKIE" "$PINCER_URL/healthz?token=$TOK_QUERY"
}
get() { curl -s --path-as-is -o /dev/null "$PINCER_URL$1"; }
lines() { wc -l <"$PINCER_LOG"; }
# One request to PATH: wait for its log line (REGEX counts request lines),
# then print how many lines the log grew by.
one_request() {
	local re=$2 before n
	before=$(lines)
	n=$(log_count "$re")
	get "$1"
	wait_log "$re" 5 "$n"
	echo $(($(lines) - before))
}
no_secrets() {
	local t
	for t in "$TOK_AUTH" "$TOK_COOKIE" "$TOK_QUERY"; do
		if grep -qF "$t" "$PINCER_LOG"; then
			echo "found $t"
			return 1
		fi
	done
}

# Every line of FILE is UTF-8 and JSON with ts, level and msg; every
# request line has rid, method, path, status, us and ip. Prints what is not.
cat >"$T_TMP/check.js" <<'EOF_JS'
const fs = require("fs");
const buf = fs.readFileSync(process.argv[2]);
let text, bad = 0;
try {
	text = new TextDecoder("utf-8", { fatal: true }).decode(buf);
} catch (e) {
	console.log("the log is not valid UTF-8");
	process.exit(1);
}
if (!text.endsWith("\n")) { console.log("no newline at the end"); bad++; }
const lines = text.slice(0, -1).split("\n");
const want = process.argv[3];	// "all" or "request"
lines.forEach((l, i) => {
	let o;
	try { o = JSON.parse(l); } catch (e) {
		console.log(`line ${i + 1} is not JSON: ${l}`); bad++; return;
	}
	if (want === "all" && !(typeof o.ts === "string" &&
	    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(o.ts) &&
	    ["debug", "info", "warn", "error"].includes(o.level) &&
	    typeof o.msg === "string")) {
		console.log(`line ${i + 1} lacks ts/level/msg: ${l}`); bad++;
	}
	if (want === "request" && o.msg === "request" &&
	    !(/^[0-9a-f]{16}$/.test(o.rid) && typeof o.method === "string" &&
	    typeof o.path === "string" && o.path[0] === "/" &&
	    Number.isInteger(o.status) && Number.isInteger(o.us) &&
	    o.us >= 0 && o.ip === "127.0.0.1")) {
		console.log(`request line ${i + 1} lacks a field: ${l}`); bad++;
	}
});
console.log(`${lines.length} lines`);
process.exit(bad ? 1 : 0);
EOF_JS

# --- 1. log.format json ----------------------------------------------------
pincer_start '{ "log": { "format": "json" } }' ||
	{ echo "Bail out! pincerd did not start"; exit 1; }
RQ='"msg":"request"'
N=$(log_count "$RQ")
secret_request
get /nope
curl -s -o /dev/null -X POST -d x "$PINCER_URL/healthz"
get /api/v1/version
wait_log "$RQ" 5 $((N + 3))
is "a request with a query string is logged by its path alone" \
	"$(grep -c '"method":"GET","path":"/healthz",' "$PINCER_LOG")" 1
is "JSON: 3 more lines for %FF, %C3%28 and %C3%A9 paths" \
	"$(one_request /x%FFy "$RQ")$(one_request /%C3%28 "$RQ")$(one_request \
	    /caf%C3%A9 "$RQ")" 111
like "JSON: a byte that is not UTF-8 is logged as U+FFFD" \
	"$(grep -F '"path":"/x' "$PINCER_LOG")" '"path":"/x\\ufffdy"'
like "JSON: valid UTF-8 in a path is kept" "$(cat "$PINCER_LOG")" \
	'"path":"/café"'
is "JSON: a %0A path adds exactly one line" \
	"$(one_request '/a%0A%7B%22msg%22:%22forged%22%7D' "$RQ")" 1
unlike "JSON: no line begins with the forged object" "$(cat "$PINCER_LOG")" \
	'(^|'$'\n'')\{"msg":"forged"'
ok "JSON: every line is UTF-8 JSON with ts, level and msg" \
	node "$T_TMP/check.js" "$PINCER_LOG" all
ok "JSON: request lines carry rid, method, path, status, us, ip" \
	node "$T_TMP/check.js" "$PINCER_LOG" request
ok "JSON: the startup line is there" json_check \
	"$(grep -F '"msg":"listening"' "$PINCER_LOG")" \
	'o.level === "info" && /^127\.0\.0\.1:\d+$/.test(o.addr)'
ok "JSON: no token, cookie or query value in the log" no_secrets
unlike "JSON: no query string in the log" "$(cat "$PINCER_LOG")" 'token='
pincer_stop
is "JSON: pincerd exits 0" "$PINCER_EXIT" 0
ok "JSON: the lines written at shutdown are JSON too" \
	node "$T_TMP/check.js" "$PINCER_LOG" all

# --- 2. logfmt (the default) -----------------------------------------------
pincer_start '{ }' || { echo "Bail out! pincerd did not start"; exit 1; }
RQ='msg=request '
N=$(log_count "$RQ")
secret_request
get /nope
wait_log "$RQ" 5 $((N + 1))
LF=$(one_request '/a%0Ats=0%20level=error%20msg=forged' "$RQ")
LCR=$(one_request '/b%0D%0Ats=0%20level=error%20msg=forged2' "$RQ")
LFF=$(one_request '/c%FF%22d' "$RQ")
is "logfmt: %0A, %0D%0A and %FF paths add one line each" "$LF$LCR$LFF" 111
unlike "logfmt: no forged line" "$(cat "$PINCER_LOG")" \
	'(^|'$'\n'')ts=0 level=error'
like "logfmt: the newline is escaped inside a quoted value" \
	"$(cat "$PINCER_LOG")" 'path="/a\\nts=0 level=error msg=forged"'
like "logfmt: a byte that is not UTF-8 is escaped, and the quote too" \
	"$(cat "$PINCER_LOG")" 'path="/c\\xff\\"d"'
pincer_stop
is "logfmt: pincerd exits 0" "$PINCER_EXIT" 0
BAD=$(grep -Evc '^ts=[0-9T:.-]+Z level=(debug|info|warn|error) msg=' \
    "$PINCER_LOG")
is "logfmt: every line starts with ts=, level= and msg=" "$BAD" 0
like "logfmt: request lines carry rid, method, path, status, us, ip" \
	"$(grep -F 'path=/nope' "$PINCER_LOG")" \
	'msg=request rid=[0-9a-f]{16} method=GET path=/nope status=404 us=[0-9]+ ip=127\.0\.0\.1$'
ok "logfmt: no token, cookie or query value in the log" no_secrets
unlike "logfmt: no query string in the log" "$(cat "$PINCER_LOG")" 'token='
ok "logfmt: the log ends with msg=stopped" \
	test "$(tail -1 "$PINCER_LOG" | grep -c ' msg=stopped$')" = 1

# --- 3. log.requests false -------------------------------------------------
pincer_start '{ "log": { "requests": false } }' ||
	{ echo "Bail out! pincerd did not start"; exit 1; }
secret_request
get /healthz
get /nope
pincer_stop	# every line is written once it has stopped
is "log.requests false: pincerd exits 0" "$PINCER_EXIT" 0
is "log.requests false: no request lines" "$(log_count 'msg=request')" 0
is "log.requests false: the start-up line is still there" \
	"$(log_count ' msg=listening addr=')" 1
ok "log.requests false: no token, cookie or query value" no_secrets

# --- 4. log.level warn, set by SIGHUP (the listening line is info) ---------
pincer_start '{ "http": { "threads": 2 } }' ||
	{ echo "Bail out! pincerd did not start"; exit 1; }
get /healthz
wait_log 'msg=request .*path=/healthz ' 5
is "level info: a request is logged" \
	"$(log_count 'msg=request .*path=/healthz ')" 1
# threads needs a restart: its warning shows each reload went through; the
# second reload's warning means the first one is wholly done.
printf '{ "log": { "level": "warn" }, "http": { "threads": 3 } }\n' \
	>"$PINCER_CONF"
W='level=warn msg="config option needs a restart"'
kill -HUP "$PINCER_PID"
wait_log "$W" 5 0
kill -HUP "$PINCER_PID"
ok "level warn: the reloads are done (warn lines still written)" \
	wait_log "$W" 5 1
MARK=$(lines)
BEFORE=$(log_count 'msg=request')
secret_request
get /healthz
get /nope
pincer_stop
is "level warn: pincerd exits 0" "$PINCER_EXIT" 0
AFTER=$(tail -n +$((MARK + 1)) "$PINCER_LOG")
is "level warn: nothing at info after the reload" \
	"$(printf '%s' "$AFTER" | grep -c 'level=info')" 0
is "level warn: no request lines after the reload" \
	"$(log_count 'msg=request')" "$BEFORE"
ok "level warn: no token, cookie or query value" no_secrets

done_testing
