#!/bin/bash
# SPDX-License-Identifier: MIT
# system_restart.sh: POST /api/v1/system/restart (admin): answered 202,
# then pincerd stops as for SIGTERM and starts again in the same process
# (same pid, same address), applying what only a restart applies: a
# channel added through PUT /api/v1/config runs after it. Audited; a
# member gets 403, no credential 401; a later SIGTERM still stops it
# with 0.
. "$TOP_SRCDIR/tests/integration/lib.sh"

# A fixed port: the restarted pincerd binds the same address again.
PORT=$(python3 -c 'import socket; s = socket.socket(); \
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
PINCER_LISTEN_ADDR="127.0.0.1:$PORT"
pincer_start '{ "admin_ui": { "dir": "'"$TOP_SRCDIR"'/admin-ui" } }' ||
    { ok "pincerd starts" false; done_testing; }
owner_and_member
A=(-H "Authorization: Bearer $ADM")
kill -USR1 "$PINCER_PID"	# the CLI's users and tokens

req POST /api/v1/system/restart
is "no credential: 401" "$CODE" 401
req POST /api/v1/system/restart -H "Authorization: Bearer $MEM"
is "a member: 403" "$CODE" 403
is "… and pincerd did not restart" "$(log_count 'msg=restarting')" 0

# A channel added to the file through the API waits for the restart.
req GET /api/v1/config "${A[@]}"
ETAG=$(jq -r .etag <<<"$BODY")
NEW=$(jq -c '.config + { "channels": [ { "name": "home",
    "kind": "generic", "secret": "home_hook",
    "callback_url": "http://127.0.0.1:9/replies" } ] }' <<<"$BODY")
req PUT /api/v1/config "${A[@]}" -H "If-Match: $ETAG" \
    -H 'Content-Type: application/json' --data-binary "$NEW"
is "a channel saved through the config API" "$CODE" 200
is "… waits for a restart" "$(jq -c .restart_required <<<"$BODY")" \
    '["channels"]'
req GET /api/v1/channels "${A[@]}"
like "… not running yet" "$(jq -r '.channels[0].status_text' <<<"$BODY")" \
    '^not running'

req POST /api/v1/system/restart "${A[@]}"
is "an admin: 202" "$CODE" 202
is "… saying so" "$(jq -r .status <<<"$BODY")" restarting
ok "the log says it restarts" wait_log 'msg=restarting'
_listening_twice() { [ "$(log_count 'msg=listening')" -ge 2 ]; }
ok "it listens again" wait_until 20 _listening_twice
ok "… the same process (pid $PINCER_PID)" _t_ours "$PINCER_PID"
_ready() { curl -fsS -o /dev/null "$PINCER_URL/readyz"; }
ok "… ready on the same address" wait_until 20 _ready
is "… stopped cleanly in between" "$(log_count 'msg=stopped')" 1
req GET /api/v1/channels "${A[@]}"
is "the channel runs now" "$(jq -r '.channels[0].name' <<<"$BODY")" home
unlike "… not 'not running'" "$(jq -r '.channels[0].status_text' \
    <<<"$BODY")" '^not running'
req GET '/api/v1/audit?action=system.restart' "${A[@]}"
is "the restart is audited with who asked" \
    "$(jq -r '[.entries[]? // .audit[]? | select(.action == "system.restart")
    | .actor] | join(",")' <<<"$BODY")" alice
ok "a token still works after it (the store kept it)" test "$CODE" = 200

pincer_stop
is "a SIGTERM after a restart stops it with 0" "$PINCER_EXIT" 0
done_testing
