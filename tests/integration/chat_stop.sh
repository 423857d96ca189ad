#!/bin/bash
# SPDX-License-Identifier: MIT
# chat_stop.sh: POST /api/v1/conversations/{id}/stop ends a running turn:
# the agent's process in the sandbox is gone, the stream ends with an
# error event "stopped" that names who stopped it, the message is done and
# answered "Stopped by NAME" (so nothing runs it again, not even after a
# restart), the audit log has it, and the next message runs as usual.
# Nothing running: 409; another person's or an unknown conversation: 404;
# no credential: 401.
. "$TOP_SRCDIR/tests/integration/lib.sh"
. "$TOP_SRCDIR/tests/integration/sandbox_lib.sh"

if [ ! -x "$TOP_BUILDDIR/pincer-agent" ]; then
	ok "pincer-agent is built next to pincer" false
	done_testing
fi
KEY="sk-chat-stop-$(random_token)"
secret_register "$KEY"
ok "the fake provider starts" llm_fake_start "$KEY"
CONF="{ $FAST, \"agent\": { \"skills_dir\": \"$TOP_SRCDIR/skills\" },
  \"llm\": { \"providers\": [ { \"name\": \"oa\", \"kind\": \"openai\",
	\"base_url\": \"$FAKE/v1\", \"key\": \"fake_key\" } ],
	\"routes\": { \"default\": [\"oa/gpt-4o\"] }, \"rate_limit_rpm\": 0 } }"
pincer_start "$CONF" || { ok "pincerd starts" false; done_testing; }
printf '%s' "$KEY" | pcli secret set fake_key >/dev/null 2>&1
printf 'a long passphrase\n' | pcli user add alice --role owner \
    --password-stdin >/dev/null 2>&1
printf 'a long passphrase\n' | pcli user add bob --role member \
    --password-stdin >/dev/null 2>&1
TA=$(pcli token create --user alice --scope chat --name t 2>/dev/null)
TB=$(pcli token create --user bob --scope chat --name t 2>/dev/null)
ADM=$(pcli token create --user alice --scope admin --name a 2>/dev/null)
for t in "$TA" "$TB" "$ADM"; do secret_register "$t"; done
script() { curl -s -o /dev/null -X POST "$FAKE/_fake/script" \
    -H 'Content-Type: application/json' --data-binary "$1"; }
nreq() { curl -s "$FAKE/_fake/requests" | jq length; }
STREAM="$T_TMP/stream"
data() { sed -n "/^event: $1\$/{n;s/^data: //p}" "$STREAM"; }
stop() { req POST "/api/v1/conversations/$1/stop" "${@:2}"; }
C=api:alice:s1
# agents: how many pincer-agent turns run in alice's sandbox.
agents() {
	pcli sandbox exec agent-alice -- sh -c \
	    'cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\0" " " |
	    grep -o "[p]incer-agent turn" | wc -l' 2>/dev/null | tr -d ' \n'
}
running() { [ "$(agents)" = 1 ]; }
gone() { [ "$(agents)" = 0 ]; }

# --- a turn that would never end, stopped -----------------------------------
script '["hang"]'
curl -sN --max-time 60 -H "Authorization: Bearer $TA" \
    -H 'Content-Type: application/json' \
    --data-binary '{"conversation": "s1", "text": "take forever"}' \
    "$PINCER_URL/api/v1/chat" >"$STREAM" 2>/dev/null &
CP=$!
ok "the turn starts: its agent runs in the sandbox" wait_until 30 running
MID=$(data accepted | jq -r .message_id)
stop "$C" -H "Authorization: Bearer $TB"
is "bob cannot stop alice's conversation (404)" "$CODE $(jstr "$BODY" code)" \
    "404 not_found"
stop api:alice:nope -H "Authorization: Bearer $TA"
is "an unknown conversation: 404" "$CODE" 404
stop "$C"
is "no credential: 401" "$CODE" 401
ok "… and the turn still runs after those" running
N0=$(nreq)
stop "$C" -H "Authorization: Bearer $TA"
is "POST …/stop: 200 stopping, with the turn's message" \
    "$CODE $(jq -r '"\(.status) \(.conversation) \(.messages | join(","))"' \
    <<<"$BODY")" "200 stopping $C $MID"
wait $CP
is "the stream ends with an error event, code stopped" \
    "$(data error | jq -r '"\(.code) \(.by)"')" "stopped alice"
is "… whose words say who stopped it" "$(data error | jq -r .message)" \
    "Stopped by alice."
is "… and nothing after it" "$(sed -n 's/^event: //p' "$STREAM" | tail -1)" \
    error
ok "the agent's process in the sandbox is gone" wait_until 10 gone
req GET "/api/v1/conversations/$C/messages" -H "Authorization: Bearer $TA"
is "the message is done, answered \"Stopped by alice.\" (kind stopped)" \
    "$(jq -r '[.messages[] | "\(.role) \(.state // .kind) \(.text)"] |
    join(" / ")' <<<"$BODY")" \
    "user done take forever / agent stopped Stopped by alice."
is "… the turn was not run again" "$(( $(nreq) - N0 ))" 0
req GET '/api/v1/audit?limit=50' -H "Authorization: Bearer $ADM"
is "the audit log has it: who, what, which conversation" \
    "$(jq -r '[.entries[] | select(.action == "chat.stop") |
    "\(.actor) \(.target)"] | join(",")' <<<"$BODY")" "alice $C"

# --- nothing running ---------------------------------------------------------
stop "$C" -H "Authorization: Bearer $TA"
is "nothing running: 409 nothing_running" "$CODE $(jstr "$BODY" code)" \
    "409 nothing_running"
like "… said in words" "$(jstr "$BODY" message)" "no turn is running"

# --- the next message runs as usual ------------------------------------------
script '[{"text": "back to normal"}]'
curl -sN --max-time 60 -H "Authorization: Bearer $TA" \
    -H 'Content-Type: application/json' \
    --data-binary '{"conversation": "s1", "text": "hello again"}' \
    "$PINCER_URL/api/v1/chat" >"$STREAM" 2>/dev/null
is "after a stop, the next message gets its reply" \
    "$(data reply | jq -r .text)" "back to normal"

# --- a restart does not run the stopped turn again ----------------------------
N0=$(nreq)
pincer_stop
hand_start restart "$PINCER_BIN" serve --config "$PINCER_CONF" \
    --state "$PINCER_STATE_DIR" --listen 127.0.0.1:0
PINCER_URL="http://$H_ADDR"
ok "pincerd starts again on the same state" test -n "$H_ADDR"
sleep 1
req GET "/api/v1/conversations/$C/messages" -H "Authorization: Bearer $TA"
is "after a restart, the stopped message is still answered once" \
    "$(jq -r '[.messages[] | .role] | join(" ")' <<<"$BODY")" \
    "user agent user agent"
is "… and the model was not called again" "$(( $(nreq) - N0 ))" 0
hand_stop

done_testing
