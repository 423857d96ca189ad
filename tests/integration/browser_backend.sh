# SPDX-License-Identifier: MIT
# browser_backend.sh: the browser backend (browser.c). A local Chromium is
# started on first use, not with pincerd; once up, its debugging port
# answers as Debian's Chromium; killed, it is started again with a fresh
# profile; pincerd's shutdown ends its whole process group and removes the
# profile. A remote backend is reported as such, "off" says why, a local
# backend with no Chromium stops pincerd with a clear error, and
# GET /api/v1/browser is for admins only.
. "$TOP_SRCDIR/tests/integration/lib.sh"

unset PINCER_CONFIG PINCER_STATE PINCER_LISTEN
FAST='"auth": { "argon2_memory_kib": 1024, "argon2_iterations": 1 }'
CHROMIUM=${PINCER_TEST_CHROMIUM:-/usr/bin/chromium}

# users: an owner's admin token ADM and a member's MEM.
users() {
	local pw
	pw=$(random_token)
	secret_register "$pw"
	printf '%s\n' "$pw" | pcli user add alice --role owner \
	    --password-stdin >/dev/null 2>&1
	printf '%s\n' "$pw" | pcli user add bob --role member \
	    --password-stdin >/dev/null 2>&1
	ADM=$(pcli token create --user alice --scope admin --name a 2>/dev/null)
	MEM=$(pcli token create --user bob --scope llm --name b 2>/dev/null)
	secret_register "$ADM"
	secret_register "$MEM"
}
status() { req GET /api/v1/browser -H "Authorization: Bearer $ADM"; }
state_is() { status; json_check "$BODY" "o.state === '$1'"; }
jnum() { node -e 'process.stdout.write(String(JSON.parse(process.argv[1])[process.argv[2]]))' "$1" "$2"; }
# The processes whose command line names this test's profile folder.
profile_procs() { pgrep -f -- "--user-data-dir=$PINCER_STATE_DIR/browser" | wc -l; }

# --- off, said so --------------------------------------------------------------
if ! pincer_start "{ $FAST, \"browser\": { \"backend\": \"off\" } }"; then
	ok "pincerd starts with browser.backend off" false
	done_testing
fi
users
status
is "GET /api/v1/browser (owner, admin scope): 200" "$CODE" 200
ok "backend off: state off, with the reason" json_check "$BODY" \
    "o.backend === 'off' && o.state === 'off' && /browser\\.backend/.test(o.reason)"
req GET /api/v1/browser -H "Authorization: Bearer $MEM"
is "GET /api/v1/browser with a member's token (llm scope): 403" "$CODE" 403
req GET /api/v1/browser
is "GET /api/v1/browser with no credential: 401" "$CODE" 401
req POST /api/v1/browser/start -H "Authorization: Bearer $ADM"
is "POST /api/v1/browser/start with no local backend: 409" "$CODE" 409
like "… says why" "$BODY" 'not a local Chromium'
pincer_stop

# --- remote: reported, never started --------------------------------------------
pincer_start "{ $FAST, \"browser\": { \"remote_url\": \"http://127.0.0.1:9\" } }"
users
status
ok "auto with a remote_url: backend remote, ready" json_check "$BODY" \
    "o.backend === 'remote' && o.state === 'ready' && o.pid === undefined"
pincer_stop

# --- local with no Chromium: pincerd refuses to start -----------------------------
printf '{ %s, "browser": { "backend": "local", "chromium": "%s" } }\n' \
    "$FAST" "$T_TMP/no-such" >"$T_TMP/nochrome.json"
hand_start nochrome "$PINCER_BIN" serve --listen 127.0.0.1:0 \
    --state "$T_TMP/nochrome" --config "$T_TMP/nochrome.json"
hand_wait 10
isnt_zero() { [ "$H_EXIT" -ne 0 ] && [ "$H_EXIT" -ne 124 ]; }
ok "browser.backend local with no Chromium: pincerd exits non-zero ($H_EXIT)" isnt_zero
like "… and says what to install" "$(cat "$H_LOG")" 'Chromium cannot be run.*apt-get install chromium'

# --- a remote_url that is not a CDP URL: refused with what is expected ------------
for u in 'ftp://h:9222' 'http://' 'chromium:9222'; do
	printf '{ "browser": { "remote_url": "%s" } }\n' "$u" >"$T_TMP/badurl.json"
	OUT=$("$PINCER_BIN" config check --config "$T_TMP/badurl.json" 2>&1)
	is "remote_url $u: config check exits 1" "$?" 1
	like "… naming the key and the schemes" "$OUT" \
	    'browser\.remote_url: expected an http://, https://, ws:// or wss:// URL'
done
printf '{ "browser": { "remote_url": "wss://browser.example/?x=1" } }\n' >"$T_TMP/okurl.json"
"$PINCER_BIN" config check --config "$T_TMP/okurl.json" >/dev/null 2>&1
is "remote_url wss://…: valid" "$?" 0

# --- local: started on first use, restarted, stopped with its group --------------
if [ ! -x "$CHROMIUM" ]; then
	skip "local Chromium: started on use, restarted, stopped" \
	    "no Chromium at $CHROMIUM (apt-get install chromium)"
	done_testing
fi
pincer_start "{ $FAST, \"browser\": { \"backend\": \"local\", \"chromium\": \"$CHROMIUM\" } }"
users
status
ok "local: not started with pincerd (state stopped, no pid)" json_check "$BODY" \
    "o.backend === 'local' && o.state === 'stopped' && o.pid === 0"
is "… and no Chromium process runs" "$(profile_procs)" 0
req POST /api/v1/browser/start -H "Authorization: Bearer $ADM"
is "POST /api/v1/browser/start: 202" "$CODE" 202
ok "Chromium becomes ready within 30 s" wait_until 30 state_is ready
URL=$(sed -n 's/.*msg="browser ready" url=\([^ ]*\) .*/\1/p' "$PINCER_LOG" | tail -1)
like "the log names its loopback debugging URL" "$URL" '^http://127\.0\.0\.1:[0-9]+$'
unlike "… which the API does not show" "$BODY" '127\.0\.0\.1'
V=$(curl -sS --max-time 5 "$URL/json/version" | tr -d "\n")
like "its /json/version answers as headless Chromium" "$V" '"Browser": *"(Headless)?Chrome/.*HeadlessChrome/'
PID1=$(jnum "$BODY" pid)
like "the API shows Chromium's pid" "$PID1" '^[1-9][0-9]*$'
kill -KILL "$PID1"
ok "killed, it is started again (restarts 1, another pid, ready)" wait_until 30 \
    eval 'state_is ready && [ "$(jnum "$BODY" restarts)" = 1 ] && [ "$(jnum "$BODY" pid)" != "$PID1" ]'
like "the exit is logged with the restart delay" "$(cat "$PINCER_LOG")" \
    'msg="Chromium exited" status=-1 signal=9 restart_in_ms=1000'
URL2=$(sed -n 's/.*msg="browser ready" url=\([^ ]*\) .*/\1/p' "$PINCER_LOG" | tail -1)
V=$(curl -sS --max-time 5 "$URL2/json/version" | tr -d "\n")
like "the new Chromium answers too" "$V" '"Browser": *"(Headless)?Chrome/.*HeadlessChrome/'
ok "its processes run with this state folder's profile" test "$(profile_procs)" -gt 0
pincer_stop
is "pincerd stops cleanly with Chromium running (exit 0)" "$PINCER_EXIT" 0
ok "no Chromium process is left" wait_until 5 test "$(profile_procs)" -eq 0
ok "the profile folder is removed" test ! -e "$PINCER_STATE_DIR/browser"
done_testing
