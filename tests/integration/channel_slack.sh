#!/bin/bash
# SPDX-License-Identifier: MIT
# channel_slack.sh: the Slack channel against the fake Web API and Socket
# Mode. Events API: url_verification answered; a signed DM → exactly one
# chat.postMessage in that DM, an "eyes" reaction while the turn runs;
# a mention → the reply in its thread; a bad signature, a stale
# timestamp, an unsigned request, a malformed body, an oversized body →
# refused, no turn; Slack's retry (X-Slack-Retry-Num) and one message
# come both as message.im and app_mention → one turn, one reply; the
# bot's own messages, edits and channel chatter → no turn; a file in a
# message → its attachment in the inbox; a 429 and a 200 "ratelimited"
# → delivered once after the wait; a reply over 4,000 characters → in
# parts, in order; Slack's escapes undone in and made out; a file reply
# → the external upload flow; an unknown sender under the default
# policy → a pairing code, no turn. Socket Mode: an event → one reply
# and the envelope acknowledged; the socket dropped, an event sent
# meanwhile, then Slack's refresh_requested → pincerd connects again
# and every event is answered once; its webhook route is refused.
# Crashes: pincerd killed (SIGKILL) right after acknowledging a DM, and
# again while a reply waits out a 429 → each answered exactly once.
. "$TOP_SRCDIR/tests/integration/lib.sh"
. "$TOP_SRCDIR/tests/integration/channel_lib.sh"

BOT_TOKEN="xoxb-$(random_token)"
APP_TOKEN="xapp-$(random_token)"
SIGNING="$(random_token)"
BOT=U0FAKEBOT		# the fake's auth.test user_id
ok "the fake platforms start" platform_fake_start
curl -s -o /dev/null -X POST "$PLAT/_fake/slack/tokens" \
    --data-binary "{\"bot\": \"$BOT_TOKEN\", \"app\": \"$APP_TOKEN\"}"
SL="\"kind\": \"slack\", \"owner\": \"alice\",
	\"api_base\": \"$PLAT/slack/api\", \"bot_token\": \"sl_bot\",
	\"signing_secret\": \"sl_signing\""
chan_start "[ { \"name\": \"sl\", $SL, \"dm_policy\": \"open\" },
  { \"name\": \"slp\", $SL },
  { \"name\": \"sls\", $SL, \"mode\": \"socket\", \"app_token\": \"sl_app\",
    \"dm_policy\": \"open\" } ]" ||
    { ok "pincerd starts" false; done_testing; }
chan_secret sl_bot "$BOT_TOKEN"
chan_secret sl_app "$APP_TOKEN"
chan_secret sl_signing "$SIGNING"

llm() { curl -s -o /dev/null -X POST "$FAKE/_fake/script" \
    -H 'Content-Type: application/json' --data-binary "$1"; }
sign() { printf 'v0:%s:%s' "$1" "$2" | openssl dgst -sha256 -hmac "$SIGNING" |
    sed 's/.* //'; }
# hook BODY [TIMESTAMP] [SIGNATURE] [HEADER]: a POST as Slack sends it
# to HOOK (default /hooks/slack/events); CODE, BODY.
hook() {
	local ts=${2:-$(date +%s)} sig
	sig=${3:-v0=$(sign "$ts" "$1")}
	printf '%s' "$1" >"$T_TMP/hook.json"
	req POST "${HOOK:-/hooks/slack/events}" \
	    -H 'Content-Type: application/json' \
	    -H "X-Slack-Request-Timestamp: $ts" -H "X-Slack-Signature: $sig" \
	    ${4:+-H "$4"} --data-binary "@$T_TMP/hook.json"
}
# callback EVENT: an event_callback carrying EVENT (a JSON object).
callback() {
	printf '{"token":"fakeverificationtoken","team_id":"T0FAKETEAM",'
	printf '"api_app_id":"A0FAKEAPP","event":%s,' "$1"
	printf '"type":"event_callback","event_id":"Ev%s","event_time":%s,' \
	    "$(random_token | head -c 9)" "$(date +%s)"
	printf '"authorizations":[{"enterprise_id":null,"team_id":"T0FAKETEAM",'
	printf '"user_id":"%s","is_bot":true,"is_enterprise_install":false}],' \
	    "$BOT"
	printf '"is_ext_shared_channel":false,"event_context":"4-fake"}'
}
# dm CHANNEL TS TEXT [MORE]: a message.im event from U0ANN; MORE, more
# members of the event ("k": v, …).
dm() {
	callback "{\"type\":\"message\",\"channel\":\"$1\",\"user\":\"U0ANN\",
	    \"text\":\"$3\",\"ts\":\"$2\",\"event_ts\":\"$2\",
	    \"channel_type\":\"im\",\"team\":\"T0FAKETEAM\"${4:+,$4}}"
}
# mention CHANNEL TS TEXT [THREAD_TS]: an app_mention from U0ANN.
mention() {
	callback "{\"type\":\"app_mention\",\"user\":\"U0ANN\",
	    \"text\":\"<@$BOT> $3\",\"ts\":\"$2\",\"channel\":\"$1\",
	    \"event_ts\":\"$2\",\"team\":\"T0FAKETEAM\"
	    ${4:+,\"thread_ts\":\"$4\"}}"
}
# posts CHANNEL: the chat.postMessage bodies to CHANNEL, oldest first
# (those answered 429 too).
posts() {
	plat_calls slack | jq -c --arg ch "$1" '[.[] |
	    select(.path == "/slack/api/chat.postMessage") | .json |
	    select(.channel == $ch)]'
}
nposts() { posts "$1" | jq length; }
# delivered CHANNEL: the texts of the messages Slack took there.
delivered() { curl -s "$PLAT/_fake/slack/messages" | jq -c --arg ch "$1" \
    '[.[] | select(.channel == $ch) | .text]'; }
_nposts_ge() { [ "$(nposts "$1")" -ge "$2" ]; }
wait_posts() { wait_until "${3:-60}" _nposts_ge "$1" "$2"; }
calls_to() {
	plat_calls slack | jq -c --arg p "/slack/api/$1" \
	    '[.[] | select(.path == $p) | .json]'
}
ncalls_ge() { [ "$(calls_to "$1" | jq length)" -ge "$2" ]; }
inbox() { chan_sql "select count(*) from inbox"; }
failed() { chan_sql "select error from outbox where conversation = '$1'
    and state = 'failed'"; }
TS0=$(date +%s)
ts() { printf '%s.%06d' "$TS0" "$1"; }

# --- the URL check and refusals ---------------------------------------------
CH=3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P
hook "{\"token\":\"fakeverificationtoken\",\"challenge\":\"$CH\",
    \"type\":\"url_verification\"}"
is "url_verification is answered with its challenge" \
    "$CODE $(jq -r .challenge <<<"$BODY")" "200 $CH"

N0=$(inbox)
E=$(dm D0BAD1 "$(ts 1)" "forged")
hook "$E" "" "v0=$(printf 'v0:%s:%s' "$(date +%s)" "$E" |
    openssl dgst -sha256 -hmac "not-the-secret" | sed 's/.* //')"
is "a bad signature is refused" "$CODE" 401
hook "$E" "" "v0=$(sign "$(date +%s)" "$E" | tr '0-9a-f' '1-9a-f0')"
is "… so is a signature off in every digit" "$CODE" 401
OLD=$(($(date +%s) - 400))
hook "$E" "$OLD" "v0=$(sign "$OLD" "$E")"
is "a rightly signed request 400 s old is refused" "$CODE" 401
like "… saying the timestamp is stale" "$BODY" "5 minutes"
LATE=$(($(date +%s) + 400))
hook "$E" "$LATE" "v0=$(sign "$LATE" "$E")"
is "… and one 400 s ahead" "$CODE" 401
printf '%s' "$E" >"$T_TMP/hook.json"
req POST /hooks/slack/events -H 'Content-Type: application/json' \
    --data-binary "@$T_TMP/hook.json"
is "an unsigned request is refused" "$CODE" 401
hook '{"type":"event_callback","event":{"type":"message",'
is "a malformed (signed) body is refused" "$CODE" 400
hook '{"type":"event_callback","event":"nope"}'
is "… and an event_callback without an event" "$CODE" 400
BIG=$(dm D0BAD2 "$(ts 2)" "$(head -c 1500000 /dev/zero | tr '\0' x)")
hook "$BIG"
is "an oversized (signed) body is refused (413)" "$CODE" 413
is "… none of them was stored" "$(inbox)" "$N0"

# --- a DM and a mention -----------------------------------------------------
hook "$(dm D0DM1 "$(ts 10)" "hello there")"
is "a signed DM is accepted" "$CODE" 200
ok "… a reply is posted" wait_posts D0DM1 1
is "… exactly one, in the DM, not in a thread" \
    "$(posts D0DM1 | jq -c '[.[] | {text, thread_ts}]')" \
    '[{"text":"echo: hello there","thread_ts":null}]'
is "… with the bot token" "$(plat_calls slack | jq -r '[.[] |
    select(.path == "/slack/api/chat.postMessage")][0] |
    .headers.authorization')" "Bearer $BOT_TOKEN"
is "… an eyes reaction was put on the message while it ran" \
    "$(calls_to reactions.add | jq -c --arg ts "$(ts 10)" \
    '[.[] | select(.timestamp == $ts) | [.channel, .name]]')" \
    '[["D0DM1","eyes"]]'
wait_until 10 ncalls_ge reactions.remove 1
is "… and taken off when it ended" \
    "$(calls_to reactions.remove | jq -c --arg ts "$(ts 10)" \
    '[.[] | select(.timestamp == $ts) | [.channel, .name]]')" \
    '[["D0DM1","eyes"]]'

hook "$(mention C0CHAN1 "$(ts 20)" "what is up")"
is "a mention in a channel is accepted" "$CODE" 200
ok "… answered" wait_posts C0CHAN1 1
is "… once, in the thread the mention starts, the mention taken out" \
    "$(posts C0CHAN1 | jq -c '[.[] | [.thread_ts, (.text |
    test("^echo: .*what is up$")), (.text | test("<@|&lt;@"))]]')" \
    "[[\"$(ts 20)\",true,false]]"
hook "$(mention C0CHAN1 "$(ts 22)" "and in a thread" "$(ts 21)")"
ok "a mention in a thread is answered" wait_posts C0CHAN1 2
is "… in that thread" "$(posts C0CHAN1 | jq -r '.[1].thread_ts')" "$(ts 21)"

# --- duplicates -------------------------------------------------------------
E=$(dm D0DUP1 "$(ts 30)" "only once")
hook "$E"
hook "$E" "" "" "X-Slack-Retry-Num: 1"
is "Slack's retry (X-Slack-Retry-Num: 1) is acknowledged" "$CODE" 200
hook "$(dm D0DUP1 "$(ts 30)" "<@$BOT> only once")"
hook "$(mention D0DUP1 "$(ts 30)" "only once")"
is "… so is the same message again as message.im and app_mention" \
    "$CODE" 200
hook "$(callback "{\"type\":\"message\",\"channel\":\"C0DUP2\",
    \"user\":\"U0ANN\",\"text\":\"<@$BOT> hi all\",\"ts\":\"$(ts 31)\",
    \"channel_type\":\"channel\"}")"
hook "$(mention C0DUP2 "$(ts 31)" "hi all")"
ok "the DM is answered" wait_posts D0DUP1 1
ok "the channel message is answered" wait_posts C0DUP2 1
sleep 2
is "… the DM once (one turn, one reply)" "$(nposts D0DUP1)" 1
is "… the channel message once (message.channels and app_mention)" \
    "$(nposts C0DUP2)" 1
is "… one inbox row each" "$(chan_sql "select count(*) from inbox
    where event_id in ('sl:D0DUP1:$(ts 30)', 'sl:C0DUP2:$(ts 31)')")" 2

# --- what is not answered ---------------------------------------------------
N0=$(inbox)
hook "$(dm D0IGN1 "$(ts 40)" "from the bot" '"bot_id":"B0FAKEBOT"')"
hook "$(callback "{\"type\":\"message\",\"channel\":\"D0IGN1\",
    \"user\":\"$BOT\",\"text\":\"me\",\"ts\":\"$(ts 41)\",
    \"channel_type\":\"im\"}")"
hook "$(callback "{\"type\":\"message\",\"subtype\":\"message_changed\",
    \"channel\":\"D0IGN1\",\"channel_type\":\"im\",\"ts\":\"$(ts 42)\",
    \"message\":{\"user\":\"U0ANN\",\"text\":\"edited\",\"ts\":\"$(ts 10)\"}}")"
hook "$(callback "{\"type\":\"message\",\"subtype\":\"message_deleted\",
    \"channel\":\"D0IGN1\",\"channel_type\":\"im\",\"ts\":\"$(ts 43)\",
    \"deleted_ts\":\"$(ts 10)\"}")"
hook "$(callback "{\"type\":\"message\",\"channel\":\"C0IGN2\",
    \"user\":\"U0ANN\",\"text\":\"chatter\",\"ts\":\"$(ts 44)\",
    \"channel_type\":\"channel\"}")"
hook "$(callback "{\"type\":\"reaction_added\",\"user\":\"U0ANN\",
    \"reaction\":\"thumbsup\",\"item\":{\"type\":\"message\",
    \"channel\":\"D0IGN1\",\"ts\":\"$(ts 10)\"},\"event_ts\":\"$(ts 45)\"}")"
is "the bot's own messages, edits, deletions, chatter: accepted" "$CODE" 200
is "… and no turn" "$(inbox)" "$N0"

# --- a file in, escapes in and out ------------------------------------------
F=$(curl -s -X POST "$PLAT/_fake/slack/files" \
    --data-binary '{"name": "notes.txt", "text": "some notes\n"}')
llm '[{"tool": "exec", "args": {"command": "cat /workspace/inbox/*notes.txt"}}]'
hook "$(dm D0FILE1 "$(ts 50)" "read this" "\"subtype\":\"file_share\",
    \"files\":[$F]")"
ok "a file_share message is answered" wait_posts D0FILE1 1
like "… the agent read the file in its sandbox" \
    "$(posts D0FILE1 | jq -r '.[0].text')" "some notes"
is "… downloaded once from url_private, with the bot token" \
    "$(plat_calls slack | jq -r '[.[] | select(.path |
    startswith("/slack/files-pri/")) | "\(.method) \(.headers.authorization)"]
    | join(",")')" "GET Bearer $BOT_TOKEN"
is "… its file is in the inbox as an attachment" \
    "$(chan_sql "select attachments from inbox where event_id =
    'sl:D0FILE1:$(ts 50)'" | jq -c '.[0] | [.id, .name, .mime, .size,
    (.url | test("/slack/files-pri/"))]')" \
    "$(jq -c '[.id, "notes.txt", "text/plain", 11, true]' <<<"$F")"
hook "$(dm D0FILE3 "$(ts 52)" "and this" "\"subtype\":\"file_share\",
    \"files\":[{\"id\":\"F0EVIL\",\"name\":\"x.txt\",
    \"mimetype\":\"text/plain\",\"size\":3,
    \"url_private\":\"${PLAT/127.0.0.1/localhost}/slack/files-pri/x\"}]")"
ok "a file whose URL is not Slack's (nor api_base's)…" wait_posts D0FILE3 1
like "… is not fetched: the bot token goes only to Slack" \
    "$(posts D0FILE3 | jq -r '.[0].text')" \
    "could not be fetched: not a Slack file URL"
hook "$(dm D0ESC1 "$(ts 55)" "a &lt; b &amp;&amp; c &gt; d")"
ok "a message with Slack's escapes is answered" wait_posts D0ESC1 1
is "… unescaped for the agent, escaped again in the reply" \
    "$(posts D0ESC1 | jq -r '.[0].text')" \
    "echo: a &lt; b &amp;&amp; c &gt; d"
is "… the agent saw the plain text" "$(chan_sql "select text from inbox
    where event_id = 'sl:D0ESC1:$(ts 55)'")" "a < b && c > d"

# --- rate limits ------------------------------------------------------------
plat_script '{"platform": "slack", "faults": ["429=2"]}'
hook "$(dm D0RL1 "$(ts 60)" "slow down")"
ok "a reply answered 429 is tried again" wait_posts D0RL1 2
is "… twice in all: one 429, one delivery" "$(sleep 1; nposts D0RL1)" 2
is "… delivered once" "$(delivered D0RL1)" '["echo: slow down"]'
GAP=$(plat_calls slack | jq '[.[] | select(.path ==
    "/slack/api/chat.postMessage" and .json.channel == "D0RL1") | .at] |
    .[1] - .[0]')
ok "… after the 2 s Retry-After (${GAP} ms)" [ "$GAP" -ge 1900 ]
plat_script '{"platform": "slack", "faults": ["ratelimited"]}'
hook "$(dm D0RL2 "$(ts 61)" "slow down again")"
ok "a 200 {ok: false, error: ratelimited} is tried again" wait_posts D0RL2 2
is "… and delivered once" "$(delivered D0RL2)" '["echo: slow down again"]'
plat_script '{"platform": "slack", "faults": ["error=channel_not_found"]}'
hook "$(dm D0GONE "$(ts 62)" "nobody here")"
wait_until 30 eval '[ -n "$(failed sl:D0GONE)" ]'
like "channel_not_found fails the reply with Slack's error" \
    "$(failed sl:D0GONE)" "channel_not_found"
is "… after one try" "$(nposts D0GONE)" 1

# --- a long reply -----------------------------------------------------------
LONG=$(seq -f 'word%05g' 1 1200 | tr '\n' ' ' | sed 's/ $//')
llm "[{\"text\": \"$LONG\"}]"
hook "$(dm D0LONG "$(ts 70)" "tell me a lot")"
ok "a reply of ${#LONG} characters is sent" wait_posts D0LONG 3
sleep 1
P=$(posts D0LONG)
is "… in 3 parts" "$(jq length <<<"$P")" 3
ok "… each within 4,000 characters" \
    jq -e 'all(.[]; (.text | length) <= 4000)' <<<"$P"
ok "… in order, nothing lost" [ "$(jq -r '[.[].text] | join(" ")' <<<"$P" |
    tr -s ' \n' '  ' | sed 's/ *$//')" = "$LONG" ]

# --- a file reply -----------------------------------------------------------
llm '[{"tool": "exec", "args": {"command": "echo report > /workspace/r.txt"}},
  {"tool": "send_attachment", "args": {"path": "r.txt"}},
  {"text": "here it is"}]'
hook "$(mention C0FILE2 "$(ts 80)" "send me the report")"
ok "a reply with a file is sent" wait_until 60 \
    ncalls_ge files.completeUploadExternal 1
is "… its text in the thread" "$(posts C0FILE2 | jq -c '[.[] |
    [.text, .thread_ts]]')" "[[\"here it is\",\"$(ts 80)\"]]"
is "… files.getUploadURLExternal with the name and length" \
    "$(calls_to files.getUploadURLExternal | jq -c '[.[] |
    [.filename, .length]]')" '[["r.txt","7"]]'
U=$(curl -s "$PLAT/_fake/slack/uploads")
is "… the bytes POSTed to the upload URL" \
    "$(jq -c '[.[] | [.size, .text]]' <<<"$U")" '[[7,"report\n"]]'
is "… files.completeUploadExternal shares it in the thread" \
    "$(jq -c '[.[] | [.completed, .channel_id, .thread_ts, .title]]' \
    <<<"$U")" "[[true,\"C0FILE2\",\"$(ts 80)\",\"r.txt\"]]"
is "… with the file id it was given" \
    "$(calls_to files.completeUploadExternal | jq -r '.[0].files |
    fromjson | .[0].id')" "$(jq -r '.[0].file_id' <<<"$U")"

# --- the default policy: pairing ----------------------------------------------
N0=$(inbox)
HOOK=/hooks/slack/slp/events hook "$(callback "{\"type\":\"message\",
    \"channel\":\"D0PAIR\",\"user\":\"U0STRANGER\",\"text\":\"let me in\",
    \"ts\":\"$(ts 90)\",\"channel_type\":\"im\"}")"
is "a stranger's DM on a pairing channel is accepted" "$CODE" 200
ok "… answered" wait_posts D0PAIR 1
like "… with a pairing code" "$(posts D0PAIR | jq -r '.[0].text')" \
    "[A-Z0-9]{8}"
is "… and no turn" "$(inbox)" "$N0"
unlike "… nothing of what they said reached the agent" \
    "$(posts D0PAIR | jq -r '.[].text')" "echo: let me in"
CODE8=$(posts D0PAIR | jq -r '.[0].text' | grep -oE '\b[A-Z0-9]{8}\b' |
    head -1)
ok "the owner approves the code" pcli pairing approve slp "$CODE8"
HOOK=/hooks/slack/slp/events hook "$(callback "{\"type\":\"message\",
    \"channel\":\"D0PAIR\",\"user\":\"U0STRANGER\",\"text\":\"now?\",
    \"ts\":\"$(ts 91)\",\"channel_type\":\"im\"}")"
_answered() { delivered "$1" | jq -e --arg t "$2" 'index($t) != null'; }
ok "… then their next DM is answered by the agent" \
    wait_until 60 _answered D0PAIR "echo: now?"
is "… once, after the approval's notice" "$(delivered D0PAIR |
    jq -c '.[1:] | map(select(startswith("echo:")))')" '["echo: now?"]'

# --- Socket Mode --------------------------------------------------------------
conns() { curl -s "$PLAT/_fake/slack/socket/connections"; }
_opened_ge() { [ "$(conns | jq '.opened')" -ge "$1" ] &&
    [ "$(conns | jq '.open')" -eq 1 ]; }
acked() { curl -s "$PLAT/_fake/slack/socket/acks" |
    jq -e --arg id "$1" 'any(.[]; .envelope_id == $id)' >/dev/null; }
sock_send() { curl -s -X POST "$PLAT/_fake/slack/socket/send" \
    --data-binary "$1" | jq -r .envelope_id; }

ok "the socket channel connects" wait_until 30 _opened_ge 1
is "… with the app token" "$(plat_calls slack | jq -r '[.[] |
    select(.path == "/slack/api/apps.connections.open")] | last |
    .headers.authorization')" "Bearer $APP_TOKEN"
HOOK=/hooks/slack/sls/events hook "$(dm D0SOCK0 "$(ts 100)" "by webhook")"
is "its webhook route is refused" "$CODE" 401
like "… saying it uses Socket Mode" "$BODY" "Socket Mode"
ENV=$(sock_send "$(dm D0SOCK1 "$(ts 101)" "over the socket")")
ok "an event over the socket is answered" wait_posts D0SOCK1 1
ok "… its envelope acknowledged" acked "$ENV"
is "… once" "$(sleep 1; posts D0SOCK1 | jq -c '[.[].text]')" \
    '["echo: over the socket"]'

curl -s -o /dev/null -X POST "$PLAT/_fake/slack/socket/drop"
ENV=$(sock_send "$(dm D0SOCK2 "$(ts 102)" "sent while it was down")")
ok "after the fake drops the socket pincerd connects again" \
    wait_until 30 _opened_ge 2
ok "… the event sent meanwhile is answered" wait_posts D0SOCK2 1
ok "… and acknowledged" wait_until 10 acked "$ENV"
ENV=$(sock_send "$(dm D0SOCK3 "$(ts 103)" "after the drop")")
ok "an event after the reconnect is answered" wait_posts D0SOCK3 1
ok "… and acknowledged" wait_until 10 acked "$ENV"

curl -s -o /dev/null -X POST "$PLAT/_fake/slack/socket/refresh"
ok "on refresh_requested pincerd opens a new socket, closes the old" \
    wait_until 30 _opened_ge 3
ENV=$(sock_send "$(dm D0SOCK4 "$(ts 104)" "after the refresh")")
ok "an event after the refresh is answered" wait_posts D0SOCK4 1
ok "… and acknowledged" wait_until 10 acked "$ENV"
sleep 1
is "every socket event answered once" "$(for c in D0SOCK1 D0SOCK2 \
    D0SOCK3 D0SOCK4; do delivered $c | jq length; done | tr -d '\n')" 1111
like "the log tells of the reconnects" \
    "$(grep -c 'slack socket connected' "$PINCER_LOG")" "^[3-9]$"

N=$(conns | jq .opened)
curl -s -o /dev/null -X POST "$PLAT/_fake/slack/fault" --data-binary \
    '{"method": "apps.connections.open", "faults": ["500", "500"]}'
B0=$(calls_to apps.connections.open | jq length)
curl -s -o /dev/null -X POST "$PLAT/_fake/slack/socket/drop"
ok "when apps.connections.open fails, pincerd tries again until it connects" \
    wait_until 30 _opened_ge $((N + 1))
G=$(plat_calls slack | jq -c --argjson n "$B0" '[.[] | select(.path ==
    "/slack/api/apps.connections.open") | .at] | .[$n:] |
    [.[1] - .[0], .[2] - .[1]]')
ok "… after 1-2 s, then 2-4 s (backoff with jitter: $G ms)" \
    jq -e '.[0] >= 900 and .[0] <= 2300 and .[1] >= 1900 and .[1] <= 4300' \
    <<<"$G"
ENV=$(sock_send "$(dm D0SOCK5 "$(ts 105)" "after the backoff")")
ok "… and answers" wait_posts D0SOCK5 1

# --- crashes ------------------------------------------------------------------
# Earlier turns finished and the owner's sandbox stopped first.
_settled() { [ "$(chan_sql "select count(*) from inbox where state in
    ('queued', 'running')")" = 0 ]; }
ok "no turn is running before the crashes" wait_until 60 _settled
ok "… the owner's sandbox is stopped" pcli sandbox stop agent-alice
plat_script '{"platform": "slack", "faults": ["429=30"]}'
hook "$(dm D0CRASH2 "$(ts 111)" "pending when killed")"
ok "a reply waiting out a 429…" wait_posts D0CRASH2 1
ok "… pincerd is killed (SIGKILL) and started again" chan_crash
ok "… the pending reply is sent" wait_posts D0CRASH2 2
is "… once" "$(delivered D0CRASH2)" '["echo: pending when killed"]'
ENV=$(sock_send "$(dm D0CRASH3 "$(ts 112)" "to the new socket")")
ok "the socket channel connects again after the crash" \
    wait_posts D0CRASH3 1
is "… and answers once" "$(delivered D0CRASH3)" '["echo: to the new socket"]'
# The turn's model call is slowed so the kill lands before its reply
# can be sent: not in the one window left (a reply Slack took, killed
# before it is recorded: sent again). NB: a pincerd killed while the
# agent's turn runs sometimes leaves the next daemon's rerun of it stuck
# (dispatcher/sandbox restart, not the channel: reported); this part
# comes last so such a failure shows alone.
ok "… no turn is running" wait_until 60 _settled
llm '["slow-first-byte=3000"]'
hook "$(dm D0CRASH1 "$(ts 110)" "acknowledged then killed")"
is "a DM is acknowledged…" "$CODE" 200
ok "… pincerd is killed right after, and started again" chan_crash
is "… the DM was stored before the acknowledgement" "$(chan_sql "select
    count(*) from inbox where event_id = 'sl:D0CRASH1:$(ts 110)'")" 1
ok "… it is answered" wait_posts D0CRASH1 1
sleep 2
is "… once" "$(delivered D0CRASH1)" '["echo: acknowledged then killed"]'

pincer_stop 10
is "pincerd stops cleanly with its socket open" "$PINCER_EXIT" 0
done_testing
