#!/bin/bash
# SPDX-License-Identifier: MIT
# channels_api.sh: what the admin UI reads about channels and errors.
# GET /api/v1/channels: one entry per channel with its kind, mode,
# status taken from the channel's own code (a poller whose token is not
# set is in error and says why, then ok once it polls; a Slack socket
# without its tokens is in error, connected once they are set, and again
# after the fake drops it; Discord's Gateway likewise, and in error
# after a close 4004; a webhook refused
# for its signature turns a webhook channel to error, a signed one back
# to ok), the webhook URL from the request's Host or public_url, the
# secrets named and set or not (never a value); admin only. Pairing deny:
# the code is gone, the stranger is not told and gets no new code, it is
# audited; a wrong code 404, bad JSON 400, a member 403. Approve through
# the API (its {channel} segment). GET /api/v1/system/errors: the last
# warnings and errors (a refused webhook is one), newest first, limit
# checked, no secret in them, admin only.
. "$TOP_SRCDIR/tests/integration/lib.sh"

if [ ! -d "$TOP_SRCDIR/tests/e2e/node_modules/ws" ]; then
	echo "1..0 # SKIP node_modules missing: run npm ci in tests/e2e"
	exit 0
fi

HOOK_SECRET="whsec-$(random_token)"
TG_TOKEN="$((RANDOM + 100000)):AA$(random_token)"
ok "the fake platforms start" platform_fake_start
curl -s -o /dev/null -X POST "$PLAT/_fake/telegram/config" \
    --data-binary "{\"token\": \"$TG_TOKEN\", \"id\": 7000001}"
CONF='{ "channels": [
  { "name": "tgp", "kind": "telegram", "mode": "polling",
    "api_base": "'"$PLAT"'/telegram", "bot_token": "tg_token" },
  { "name": "home", "kind": "generic", "secret": "home_hook",
    "dm_policy": "pairing", "callback_url": "'"$PLAT"'/generic/home" },
  { "name": "sls", "kind": "slack", "mode": "socket",
    "api_base": "'"$PLAT"'/slack/api", "bot_token": "sl_bot",
    "app_token": "sl_app" },
  { "name": "dc", "kind": "discord", "api_base": "'"$PLAT"'/discord/api",
    "bot_token": "dc_token" } ] }'
pincer_start "$CONF" || { ok "pincerd starts" false; done_testing; }
owner_and_member
A=(-H "Authorization: Bearer $ADM")
M=(-H "Authorization: Bearer $MEM")
chan() { jq -c --arg n "$1" '.channels[] | select(.name == $n)' <<<"$BODY"; }
status_of() { req GET /api/v1/channels "${A[@]}"; chan "$1" | jq -r .status; }
_status_is() { [ "$(status_of "$1")" = "$2" ]; }

# --- GET /api/v1/channels ---------------------------------------------------
req GET /api/v1/channels "${A[@]}"
is "GET /api/v1/channels: 200" "$CODE" 200
is "… one entry per channel" "$(jq -r '[.channels[].name] | join(" ")' \
    <<<"$BODY")" "tgp home sls dc"
is "… kind, mode, enabled" "$(chan tgp | jq -r '"\(.kind) \(.mode) \(.enabled)"')" \
    "telegram polling true"
ok "a poller whose token secret is not set: error" \
    wait_until 15 _status_is tgp error
like "… with the reason in words and its time" \
    "$(chan tgp | jq -r '"\(.last_error.message) \(.last_error.time)"')" \
    '^getMe failed.*not set.* 20[0-9-]+T'
is "… the secrets it expects, none set" \
    "$(chan tgp | jq -c '[.secrets[] | [.key, .name, .set]]')" \
    '[["bot_token","tg_token",false]]'
is "… no webhook in polling mode" "$(chan tgp | jq -c .webhooks)" '[]'
printf '%s' "$TG_TOKEN" | pcli secret set tg_token >/dev/null
secret_register "$TG_TOKEN"
ok "the token set: the poller gets to ok" wait_until 30 _status_is tgp ok
req GET /api/v1/channels "${A[@]}"
is "… saying it is connected" "$(chan tgp | jq -r .status_text)" connected
is "… and the secret is set" "$(chan tgp | jq -r '.secrets[0].set')" true
H=$(chan home)
is "a webhook channel with nothing received yet: ok" \
    "$(jq -r '"\(.status) \(.mode) \(.inbox_waiting) \(.outbox_waiting) \(.last_in)"' <<<"$H")" \
    "ok webhook 0 0 null"
is "… its URL from the request's Host" "$(jq -r '.webhooks[0].url' <<<"$H")" \
    "$PINCER_URL/hooks/generic/home"
is "… and the answer says so" "$(jq -r .base_url_from <<<"$BODY")" request
like "… with a note on public_url" "$(jq -r .base_url_note <<<"$BODY")" \
    'public_url is not set'
is "… its secret named, not set" \
    "$(jq -c '[.secrets[] | [.key, .name, .set]]' <<<"$H")" \
    '[["secret","home_hook",false]]'

# --- Slack Socket Mode: down without its tokens, then connected ------------
ok "a socket channel without its tokens: error" \
    wait_until 15 _status_is sls error
req GET /api/v1/channels "${A[@]}"
like "… saying which call failed" "$(chan sls | jq -r .last_error.message)" \
    '(auth.test|apps.connections.open) failed'
is "… mode socket, no webhook, both tokens expected" \
    "$(chan sls | jq -c '[.mode, .webhooks, [.secrets[].key]]')" \
    '["socket",[],["bot_token","app_token"]]'
SL_BOT="xoxb-$(random_token)"
SL_APP="xapp-$(random_token)"
secret_register "$SL_BOT"
secret_register "$SL_APP"
curl -s -o /dev/null -X POST "$PLAT/_fake/slack/tokens" \
    --data-binary "{\"bot\": \"$SL_BOT\", \"app\": \"$SL_APP\"}"
printf '%s' "$SL_BOT" | pcli secret set sl_bot >/dev/null
printf '%s' "$SL_APP" | pcli secret set sl_app >/dev/null
ok "the tokens set: the socket connects, ok" \
    wait_until 60 _status_is sls ok
req GET /api/v1/channels "${A[@]}"
is "… connected" "$(chan sls | jq -r .status_text)" connected
curl -s -o /dev/null -X POST "$PLAT/_fake/slack/socket/drop"
_not_connected() { [ "$(status_of sls)" != ok ] ||
    grep -q 'slack socket closed' "$PINCER_LOG"; }
ok "the fake drops the socket: pincerd notices" wait_until 20 _not_connected
ok "… and is ok again once it reconnects" wait_until 60 _status_is sls ok

# --- Discord's Gateway: down without its token, ready, closed for good -----
ok "a Gateway channel without its token: error" \
    wait_until 15 _status_is dc error
DC_TOKEN="MTE.fake.$(random_token)"
secret_register "$DC_TOKEN"
curl -s -o /dev/null -X POST "$PLAT/_fake/discord/token" \
    --data-binary "{\"bot\": \"$DC_TOKEN\"}"
printf '%s' "$DC_TOKEN" | pcli secret set dc_token >/dev/null
ok "the token set: READY, ok" wait_until 60 _status_is dc ok
req GET /api/v1/channels "${A[@]}"
is "… connected, mode gateway, the /ask URL offered" \
    "$(chan dc | jq -r '"\(.status_text) \(.mode) \(.webhooks[0].url)"')" \
    "connected gateway $PINCER_URL/hooks/discord/interactions"
curl -s -o /dev/null -X POST "$PLAT/_fake/discord/gateway/close" \
    --data-binary '{"code": 4004, "reason": "Authentication failed."}'
ok "closed with 4004: error" wait_until 15 _status_is dc error
req GET /api/v1/channels "${A[@]}"
like "… saying what to fix" "$(chan dc | jq -r .last_error.message)" \
    'authentication failed.*bot token'

req GET /api/v1/channels "${M[@]}"
is "a member's token: 403" "$CODE" 403
req GET /api/v1/channels
is "no credential: 401" "$CODE" 401

# --- a refused webhook: the channel's error, and a recent error ---------------
printf '%s' "$HOOK_SECRET" | pcli secret set home_hook >/dev/null
secret_register "$HOOK_SECRET"
sign() {
	printf '%s' "$1" | openssl dgst -sha256 -hmac "$HOOK_SECRET" -r |
	    cut -d' ' -f1
}
hook() {
	req POST /hooks/generic/home -H 'Content-Type: application/json' \
	    -H "X-Pincer-Signature: ${2:-sha256=$(sign "$1")}" \
	    --data-binary "$1"
}
hook '{"id": "x1", "sender": "eve", "text": "hi"}' sha256=00ff
is "a webhook with a wrong signature: 401" "$CODE" 401
req GET /api/v1/channels "${A[@]}"
is "… the channel is in error" "$(chan home | jq -r .status)" error
like "… saying why" "$(chan home | jq -r .last_error.message)" \
    '^a webhook request was refused: .*[Ss]ignature'
req GET /api/v1/system/errors "${A[@]}"
is "GET /api/v1/system/errors: 200" "$CODE" 200
is "… the newest is the refusal, at warn, with its fields" \
    "$(jq -r '.errors[0] | "\(.level) \(.msg) \(.fields.detail)"' <<<"$BODY" |
    cut -d' ' -f1-4)" "warn webhook refused channel=home"
like "… and its time" "$(jq -r '.errors[0].time' <<<"$BODY")" '^20[0-9-]+T'
unlike "… the setup code (logged at warn at the start) is not kept" \
    "$BODY" 'setup_code|no users yet'
ok "… total and kept are numbers" json_check "$BODY" \
    'o.total >= o.errors.length && o.kept === 100'
req GET '/api/v1/system/errors?limit=1' "${A[@]}"
is "limit=1: one" "$(jq '.errors | length' <<<"$BODY")" 1
for q in 0 101 x ''; do
	req GET "/api/v1/system/errors?limit=$q" "${A[@]}"
	is "limit=$q: 400 in words" "$CODE $(jq -r .error.code <<<"$BODY")" \
	    "400 bad_request"
done
req GET /api/v1/system/errors "${M[@]}"
is "… a member's token: 403" "$CODE" 403

# --- pairing: a stranger, approved by the API; another denied ---------------
hook '{"id": "p1", "sender": "ann", "conversation": "a1", "text": "hi"}'
is "a signed message from a stranger: 200" "$CODE" 200
ok "the channel is ok again" wait_until 5 _status_is home ok
hook '{"id": "p2", "sender": "eve", "conversation": "e1", "text": "hi"}'
code_of() {
	req GET /api/v1/pairing "${A[@]}"
	jq -r --arg p "$1" '.peers[] | select(.peer == $p) | .code' <<<"$BODY"
}
_pending2() { [ -n "$(code_of ann)" ] && [ -n "$(code_of eve)" ]; }
ok "two pairing codes are pending" wait_until 10 _pending2
CA=$(code_of ann)
CE=$(code_of eve)
req POST /api/v1/pairing/home/approve "${A[@]}" \
    -H 'Content-Type: application/json' --data-binary "{\"code\": \"$CA\"}"
is "POST /api/v1/pairing/home/approve: 200" "$CODE $BODY" \
    '200 {"approved":true}'
req GET /api/v1/pairing "${A[@]}"
is "… the API lists ann approved" "$(jq -r '.peers[] | select(.peer == "ann") |
    .state' <<<"$BODY")" approved
_replies() { plat_calls generic | jq '[.[] | select(.path == "/generic/home")] | length'; }
_nrep_ge() { [ "$(_replies)" -ge "$1" ]; }
ok "the two codes and the approval were sent" wait_until 30 _nrep_ge 3
N=$(_replies)

req POST /api/v1/pairing/home/deny "${A[@]}" -H 'Content-Type: application/json' \
    --data-binary '{"code": "WRONG234"}'
is "deny a wrong code: 404 in words" \
    "$CODE $(jq -r .error.code <<<"$BODY")" "404 no_such_code"
like "… saying so" "$(jq -r .error.message <<<"$BODY")" 'no pending pairing code'
req POST /api/v1/pairing/home/deny "${A[@]}" -H 'Content-Type: application/json' \
    --data-binary '{"code": '
is "deny with bad JSON: 400" "$CODE $(jq -r .error.code <<<"$BODY")" \
    "400 bad_request"
req POST /api/v1/pairing/home/deny "${A[@]}" -H 'Content-Type: application/json' \
    --data-binary '{"nope": 1}'
is "deny without a code: 400" "$CODE" 400
req POST /api/v1/pairing/nosuch/deny "${A[@]}" \
    -H 'Content-Type: application/json' --data-binary "{\"code\": \"$CE\"}"
is "deny on an unknown channel: 404" "$CODE" 404
req POST /api/v1/pairing/home/deny "${M[@]}" \
    -H 'Content-Type: application/json' --data-binary "{\"code\": \"$CE\"}"
is "deny by a member: 403" "$CODE" 403
req POST /api/v1/pairing/home/deny "${A[@]}" \
    -H 'Content-Type: application/json' --data-binary "{\"code\": \"$CE\"}"
is "POST /api/v1/pairing/home/deny: 200" "$CODE $BODY" '200 {"denied":true}'
req GET /api/v1/pairing "${A[@]}"
is "… eve is listed denied, without a code" \
    "$(jq -r '.peers[] | select(.peer == "eve") | "\(.state) \(.code)"' \
    <<<"$BODY")" "denied null"
req POST /api/v1/pairing/home/deny "${A[@]}" \
    -H 'Content-Type: application/json' --data-binary "{\"code\": \"$CE\"}"
is "… the code is gone: denying it again 404" "$CODE" 404
sleep 1
is "… eve was not told" "$(_replies)" "$N"
hook '{"id": "p3", "sender": "eve", "conversation": "e1", "text": "again"}'
is "eve writes again: 200" "$CODE" 200
sleep 1.5
is "… no new code is sent" "$(_replies)" "$N"
req GET /api/v1/pairing "${A[@]}"
is "… she stays denied" "$(jq -r '.peers[] | select(.peer == "eve") | .state' \
    <<<"$BODY")" denied
req GET /api/v1/audit "${A[@]}"
like "the denial is in the audit log, by alice" \
    "$(jq -r '.entries[] | "\(.action) \(.actor) \(.target)"' <<<"$BODY")" \
    'pairing.deny alice home:eve'
out=$(pcli pairing deny home NOPE2345 2>&1)
is "pincer pairing deny with a wrong code exits 1" "$?" 1
like "… saying so" "$out" 'no pending pairing code'

# --- public_url --------------------------------------------------------------
pincer_stop
pincer_config "$PINCER_DIR" "$(jq -c '. + {public_url: "https://pincer.example.org"}' \
    <<<"$CONF")"
T_DAEMONS=$((T_DAEMONS + 1))
PINCER_LOG="$T_LOGDIR/$T_NAME.$T_DAEMONS.pincerd.log"
: >"$PINCER_LOG"
"$PINCER_BIN" serve --config "$PINCER_CONF" --state "$PINCER_STATE_DIR" \
    --listen 127.0.0.1:0 2>>"$PINCER_LOG" &
PINCER_PID=$!
T_PIDS="$T_PIDS $PINCER_PID"
wait_until 10 grep -q 'msg=listening' "$PINCER_LOG"
PINCER_ADDR=$(_t_addr "$PINCER_LOG")
PINCER_URL="http://$PINCER_ADDR"
wait_until 10 curl -fsS -o /dev/null "$PINCER_URL/readyz"
req GET /api/v1/channels "${A[@]}"
is "with public_url the webhook URL uses it" \
    "$(chan home | jq -r '.webhooks[0].url') $(jq -r .base_url_from <<<"$BODY")" \
    "https://pincer.example.org/hooks/generic/home public_url"
unlike "no secret value in any answer" "$BODY" "$HOOK_SECRET|$TG_TOKEN"

pincer_stop
done_testing
