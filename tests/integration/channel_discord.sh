#!/bin/bash
# SPDX-License-Identifier: MIT
# channel_discord.sh: the Discord channel against the fake REST API and
# Gateway: pincerd identifies (intents, token), a DM over the Gateway →
# exactly one reply to that channel, with a nonce; a guild message
# without a mention → no turn, with one → a reply quoting it; the fake
# drops the socket → pincerd resumes (no new identify) and a message
# sent while it was down (replayed) and one after are each answered
# once; op 7 → a resume; a 429 → delivered once after retry_after; a
# reply over 2000 characters → in parts, in order; a file → multipart;
# interactions: a bad, missing or stale signature → 401, no turn; PING →
# PONG; /ask → deferred, the answer edits @original; malformed or
# oversized → refused, no turn; with the default policy an unknown user
# gets a pairing code, no turn; close 4004 → no more reconnects.
. "$TOP_SRCDIR/tests/integration/lib.sh"
. "$TOP_SRCDIR/tests/integration/channel_lib.sh"

# channel_lib.sh reads these (set -u)
FAKE=${FAKE:-} CHAN_OWNER=${CHAN_OWNER:-}
BOT=1100000000000000001		# the fake's bot user
APP=1100000000000000002		# and its application
GUILD=1200000000000000001
ANN=3000000000000000001
DC_TOKEN="MTE.fake.$(random_token)"

# --- config errors name the key ------------------------------------------
# confcheck KEYS: `pincer config check` on one discord channel with KEYS.
confcheck() {
	printf '{ "channels": [ { "name": "d", "kind": "discord"%s } ] }' \
	    "$1" >"$T_TMP/conf.json"
	"$PINCER_BIN" config check --config "$T_TMP/conf.json" 2>&1
}
like "a channel without bot_token is refused, naming it" \
    "$(confcheck '')" '"bot_token" must name the secret'
like "… a public_key that is not 64 hex digits" \
    "$(confcheck ', "bot_token": "x", "public_key": "zz"')" \
    '"public_key" must be'
like "… a gateway_url that is not ws(s)://" \
    "$(confcheck ', "bot_token": "x", "gateway_url": "http://x"')" \
    '"gateway_url" must be'
like "… gateway that is not a boolean" \
    "$(confcheck ', "bot_token": "x", "gateway": "no"')" \
    '"gateway" must be true or false'

ok "the fake platforms start" platform_fake_start
curl -s -o /dev/null -X POST "$PLAT/_fake/discord/token" \
    --data-binary "{\"bot\": \"$DC_TOKEN\"}"
openssl genpkey -algorithm ed25519 -out "$T_TMP/ed.pem" 2>/dev/null
PUB=$(openssl pkey -in "$T_TMP/ed.pem" -pubout -outform DER |
    tail -c 32 | od -An -tx1 | tr -d ' \n')
is "a test Ed25519 key pair" "${#PUB}" 64
DC="\"kind\": \"discord\", \"owner\": \"alice\",
	\"api_base\": \"$PLAT/discord/api\", \"bot_token\": \"dc_token\",
	\"public_key\": \"$PUB\""
chan_start "[ { \"name\": \"dc\", $DC, \"dm_policy\": \"open\" },
  { \"name\": \"dc2\", $DC, \"gateway\": false } ]" ||
    { ok "pincerd starts" false; done_testing; }
chan_secret dc_token "$DC_TOKEN"

llm() { curl -s -o /dev/null -X POST "$FAKE/_fake/script" \
    -H 'Content-Type: application/json' --data-binary "$1"; }
gw() { curl -s "$PLAT/_fake/discord/gateway/state" | jq -r ".$1"; }
_gw_ge() { [ "$(gw "$1")" -ge "$2" ]; }
dispatch() { curl -s -X POST "$PLAT/_fake/discord/gateway/dispatch" \
    -H 'Content-Type: application/json' --data-binary "{\"d\": $1}" \
    >/dev/null; }
# dm ID CHANNEL TEXT: a DM from Ann; gm ID CHANNEL TEXT [MENTIONS]: in
# the guild.
author="\"author\": {\"id\": \"$ANN\", \"username\": \"ann\"}"
dm() { dispatch "{\"id\": \"$1\", \"channel_id\": \"$2\", $author,
    \"content\": \"$3\"}"; }
gm() { dispatch "{\"id\": \"$1\", \"guild_id\": \"$GUILD\",
    \"channel_id\": \"$2\", $author, \"content\": \"$3\",
    \"mentions\": ${4:-[]}}"; }
# msgs CHANNEL: the messages created there (as the fake keeps them).
msgs() { curl -s "$PLAT/_fake/discord/messages" |
    jq -c --arg c "$1" '[.[] | select(.channel_id == $c)]'; }
nmsgs() { msgs "$1" | jq length; }
_nmsgs_ge() { [ "$(nmsgs "$1")" -ge "$2" ]; }
# posts CHANNEL: the Create Message calls to it, 429s included.
posts() { plat_calls discord | jq -c --arg p \
    "/discord/api/channels/$1/messages" '[.[] | select(.path == $p)]'; }
inbox() { chan_sql "select count(*) from inbox"; }

# --- identify -------------------------------------------------------------
ok "pincerd connects to the Gateway and identifies" wait_until 30 \
    _gw_ge identifies 1
ok "… READY is taken (pincerd says so)" wait_log 'discord gateway ready' 20
is "… the URL came from GET /gateway/bot, with v=10 and JSON" \
    "$(plat_calls discord | jq -r '[.[] | select(.path ==
    "/discord/api/gateway/bot")][0].headers.authorization') $(gw last_query)" \
    "Bot $DC_TOKEN ?v=10&encoding=json"

# --- a DM, a reply --------------------------------------------------------
C1=2000000000000000001
N=$(inbox)
llm '[{"text": "Hello Ann"}]'
dm 4000000000000000001 $C1 "hello there"
ok "a DM over the Gateway is answered" wait_until 60 _nmsgs_ge $C1 1
sleep 1
is "… exactly once, in that channel" \
    "$(msgs $C1 | jq -r '.[] | .content')" "Hello Ann"
P=$(posts $C1 | jq -c '.[0]')
like "… with a nonce OUTBOX-PART, enforced" \
    "$(jq -r '"\(.json.nonce) \(.json.enforce_nonce)"' <<<"$P")" \
    "^[0-9]+-0 true$"
is "… the bot's token, no pings, no quote in a DM" \
    "$(jq -c '[.headers.authorization, .json.allowed_mentions,
    .json.message_reference]' <<<"$P")" \
    "[\"Bot $DC_TOKEN\",{\"parse\":[]},null]"
is "… it went into conversation dc:$C1, from Ann" \
    "$(chan_sql "select conversation, sender, text, event_id from inbox
    where id > $N")" "dc:$C1|$ANN|hello there|dc:4000000000000000001"
if plat_calls discord | jq -e '.[] | select(.path ==
    "/discord/api/channels/'$C1'/typing")' >/dev/null; then
	ok "… typing was shown while the turn ran" true
else
	skip "… typing was shown while the turn ran" "no working() call"
fi
wait_until 10 test "$(chan_sql "select state from outbox where
    conversation = 'dc:$C1'")" = sent
is "… the outbox row is sent with Discord's message id" \
    "$(chan_sql "select state, platform_id from outbox where
    conversation = 'dc:$C1'")" "sent|$(msgs $C1 | jq -r '.[0].id')"

# --- guilds: only a mention -----------------------------------------------
C2=2000000000000000002
N=$(inbox)
llm '[{"text": "all is well"}]'
gm 4000000000000000002 $C2 "just chatting"
dispatch "{\"id\": \"4000000000000000003\", \"guild_id\": \"$GUILD\",
    \"channel_id\": \"$C2\", \"author\": {\"id\": \"$BOT\", \"bot\": true},
    \"content\": \"<@$ANN> my own\", \"mentions\": []}"
gm 4000000000000000004 $C2 "<@$BOT> what is up" "[{\"id\": \"$BOT\"}]"
ok "a guild message that mentions the bot is answered" \
    wait_until 60 _nmsgs_ge $C2 1
sleep 1
is "… once" "$(msgs $C2 | jq -r '.[].content')" "all is well"
is "… the turn is told who spoke, without the mention" \
    "$(chan_sql "select text from inbox where id > $N")" \
    "[ann ($ANN)]: what is up"
is "… quoting the message (message_reference)" \
    "$(msgs $C2 | jq -c '.[0].message_reference')" \
    '{"message_id":"4000000000000000004","fail_if_not_exists":false}'
is "… one turn: no mention, no turn; the bot's own, none" \
    "$(chan_sql "select count(*) from inbox where id > $N")" 1

# --- the socket dropped: resume, nothing lost -----------------------------
C3=2000000000000000003
C3B=2000000000000000013
llm '[{"text": "got it"}, {"text": "got it"}]'
curl -s -o /dev/null -X POST "$PLAT/_fake/discord/gateway/drop"
dm 4000000000000000005 $C3 "sent while down"
ok "the fake drops the socket: pincerd resumes" wait_until 30 \
    _gw_ge resumes 1
dm 4000000000000000006 $C3B "sent after"
ok "… both messages are answered" wait_until 60 _nmsgs_ge $C3 1
ok "… (the second too)" wait_until 60 _nmsgs_ge $C3B 1
sleep 2
is "… each once" "$(nmsgs $C3) $(nmsgs $C3B)" "1 1"
is "… each stored once" "$(chan_sql "select count(*) from inbox where
    event_id in ('dc:4000000000000000005', 'dc:4000000000000000006')")" 2
is "… by one resume, no new identify" "$(gw resumes) $(gw identifies)" "1 1"
like "… and it said so" "$(cat "$PINCER_LOG")" "discord gateway resumed"

# --- a zombied connection --------------------------------------------------
R=$(gw resumes)
curl -s -o /dev/null -X POST "$PLAT/_fake/discord/gateway/acks" \
    --data-binary '{"on": false}'
ok "heartbeats not acknowledged: pincerd gives the connection up, resumes" \
    wait_until 30 _gw_ge resumes $((R + 1))
curl -s -o /dev/null -X POST "$PLAT/_fake/discord/gateway/acks" \
    --data-binary '{"on": true}'
like "… saying why" "$(cat "$PINCER_LOG")" "no heartbeat ack"
sleep 3		# a beat sent while acks were off may cost one more resume

# --- op 7 Reconnect -------------------------------------------------------
wait_until 10 _gw_ge open 1
R=$(gw resumes)
curl -s -o /dev/null -X POST "$PLAT/_fake/discord/gateway/reconnect"
ok "op 7 (Reconnect) → pincerd resumes" wait_until 30 _gw_ge resumes $((R + 1))
C4=2000000000000000004
llm '[{"text": "still here"}]'
dm 4000000000000000007 $C4 "after op 7"
ok "… and still answers" wait_until 60 _nmsgs_ge $C4 1
ok "… heartbeats were sent and acknowledged" _gw_ge heartbeats 2
is "… still one identify" "$(gw identifies)" 1

# --- an attachment in ---------------------------------------------------------
C11=2000000000000000012
N=$(inbox)
llm '[{"text": "got the file"}]'
dispatch "{\"id\": \"4000000000000000013\", \"channel_id\": \"$C11\", $author,
    \"content\": \"look\", \"attachments\": [{\"id\": \"600\",
    \"filename\": \"notes.txt\", \"content_type\": \"text/plain\",
    \"size\": 17, \"url\":
    \"$PLAT/discord/cdn/attachments/$C11/600/notes.txt?ex=1&hm=ab\"}]}"
ok "a DM with an attachment is answered" wait_until 60 _nmsgs_ge $C11 1
is "… the attachment is in the inbox (url, name, mime, size)" \
    "$(chan_sql "select attachments from inbox where id > $N" |
    jq -r '.[0] | "\(.name) \(.mime) \(.size) \(.url | test("cdn"))"')" \
    "notes.txt text/plain 17 true"
CDN=$(plat_calls discord | jq -c '[.[] | select(.path | contains("/cdn/"))]')
if [ "$(jq length <<<"$CDN")" -gt 0 ]; then
	is "… fetched from its URL, without the bot token" \
	    "$(jq -r '.[0] | "\(.method) \(.headers.authorization)"' \
	    <<<"$CDN")" "GET null"
else
	skip "… fetched from its URL" "the dispatcher does not fetch"
fi

# --- 429, then delivered --------------------------------------------------
C5=2000000000000000005
plat_script '{"platform": "discord", "faults": ["429=2.5"]}'
llm '[{"text": "after the wait"}]'
dm 4000000000000000008 $C5 "are you there"
ok "a 429 is tried again" wait_until 60 _nmsgs_ge $C5 1
sleep 1
T=$(posts $C5)
is "… two calls, delivered once" "$(jq length <<<"$T") $(nmsgs $C5)" "2 1"
ok "… after retry_after (2.5 s)" \
    test "$(jq '.[1].at - .[0].at' <<<"$T")" -ge 2400
is "… with the same nonce" "$(jq -r '.[0].json.nonce == .[1].json.nonce' \
    <<<"$T")" true

# --- a long reply in parts ------------------------------------------------
C6=2000000000000000006
LONG=$(for i in $(seq 1 600); do printf 'word%04d ' "$i"; done)
LONG=${LONG% }
llm "[{\"text\": \"$LONG\"}]"
dm 4000000000000000009 $C6 "tell me a lot"
ok "a reply over 2000 characters is sent in parts" \
    wait_until 60 _nmsgs_ge $C6 3
sleep 1
ok "… each within 2000" test "$(msgs $C6 | jq '[.[].content | length] |
    max')" -le 2000
is "… in order, nothing lost" \
    "$(msgs $C6 | jq -r '[.[].content] | join(" ")' | tr -s ' ')" "$LONG"
like "… each part its own nonce" "$(msgs $C6 | jq -r '[.[].nonce |
    sub("^[0-9]+-"; "")] | join(",")')" "^0,1,2"

# --- a file ---------------------------------------------------------------
C7=2000000000000000007
llm '[{"tool": "exec", "args": {"command": "echo report > /workspace/r.txt"}},
  {"tool": "send_attachment", "args": {"path": "r.txt"}},
  {"text": "here it is"}]'
dm 4000000000000000010 $C7 "send me the report"
ok "a file reply is sent" wait_until 90 _nmsgs_ge $C7 2
sleep 1
F=$(posts $C7 | jq -c '[.[] | select(.multipart != null)]')
is "… as multipart: payload_json and files[0]" \
    "$(jq -r '.[0].multipart | "\(.payload_json | fromjson |
    .attachments[0].filename) \(.["files[0]"].filename)
    \(.["files[0]"].text)"' <<<"$F" | tr -s ' \n' ' ')" "r.txt r.txt report "
is "… once, with the text" "$(msgs $C7 | jq -r '[.[] | if
    (.attachments | length) > 0 then .attachments[0].filename else
    .content end] | sort | join(",")')" "here it is,r.txt"

# --- interactions ---------------------------------------------------------
# sign TS BODY: Ed25519 over timestamp + body, hex.
sign() {
	printf '%s%s' "$1" "$2" >"$T_TMP/sig.in"
	openssl pkeyutl -sign -rawin -inkey "$T_TMP/ed.pem" \
	    -in "$T_TMP/sig.in" | od -An -tx1 | tr -d ' \n'
}
# ix BODY [SIGNATURE] [TIMESTAMP] [/NAME]: POST …/interactions; CODE, BODY.
ix() {
	local ts=${3:-$(date +%s)}
	local sig=${2:-$(sign "$ts" "$1")}
	printf '%s' "$1" >"$T_TMP/ix.json"
	req POST "/hooks/discord${4:-}/interactions" \
	    -H 'Content-Type: application/json' \
	    -H "X-Signature-Ed25519: $sig" -H "X-Signature-Timestamp: $ts" \
	    --data-binary "@$T_TMP/ix.json"
}
C8=2000000000000000008
# ask ID TOKEN TEXT [USER] [GUILD]: an /ask command.
ask() {
	printf '{"type":2,"id":"%s","application_id":"%s","token":"%s",' \
	    "$1" $APP "$2"
	printf '"channel_id":"%s","data":{"id":"1500","name":"ask",' $C8
	printf '"type":1,"options":[{"name":"text","type":3,"value":"%s"}]},' \
	    "$3"
	if [ -n "${5:-}" ]; then
		printf '"guild_id":"%s","member":{"user":{"id":"%s",' "$5" \
		    "${4:-$ANN}"
		printf '"username":"ann"}},"version":1}'
	else
		printf '"user":{"id":"%s","username":"ann"},"version":1}' \
		    "${4:-$ANN}"
	fi
}
N=$(inbox)
PING='{"type":1,"id":"5000000000000000001","application_id":"'$APP'",
  "token":"t","version":1}'
ix "$PING"
is "a signed PING is answered PONG" "$CODE $BODY" '200 {"type":1}'
ix "$PING" "$(printf '%0128d' 0)"
is "a bad signature is refused" "$CODE" 401
ix "$(ask 5000000000000000002 tok-forged "forged")" \
    "$(sign "$(date +%s)" "another body")"
is "… a signature of another body too" "$CODE" 401
printf '%s' "$(ask 5000000000000000003 tok-unsigned "unsigned")" \
    >"$T_TMP/ix.json"
req POST /hooks/discord/interactions -H 'Content-Type: application/json' \
    --data-binary "@$T_TMP/ix.json"
is "… and no signature" "$CODE" 401
OLD=$(($(date +%s) - 600))
ix "$(ask 5000000000000000004 tok-stale "stale")" "" "$OLD"
is "… and a signed one ten minutes old" "$CODE" 401
ix '{"type":2,"id":'
is "malformed JSON (signed) is refused" "$CODE" 400
ix '{"type":2,"id":"5000000000000000005","data":{"name":"ask"}}'
is "… and an /ask without its fields" "$CODE" 400
ix "$(ask 5000000000000000006 tok-big "$(head -c 1200000 /dev/zero |
    tr '\0' x)")"
like "an oversized body is refused" "$CODE" "^4[0-9][0-9]$"
is "… none of them made a turn" "$(inbox)" "$N"

TOK="tok-$(random_token)"
llm '[{"text": "half past six"}]'
ix "$(ask 5000000000000000007 "$TOK" "what time is it")"
is "/ask is answered with a deferred response" "$CODE $BODY" '200 {"type":5}'
_edited() { plat_calls discord | jq -e --arg p \
    "/discord/api/webhooks/$APP/$TOK/messages/@original" \
    '.[] | select(.path == $p and .method == "PATCH")' >/dev/null; }
ok "… the answer edits the original response" wait_until 60 _edited
is "… with the answer" "$(plat_calls discord | jq -r --arg p \
    "/discord/api/webhooks/$APP/$TOK/messages/@original" \
    '[.[] | select(.path == $p)][0].json.content')" "half past six"
is "… once, no bot token sent along" "$(plat_calls discord | jq -r \
    --arg t "$TOK" '[.[] | select(.path | contains($t))] |
    "\(length) \(.[0].headers.authorization)"')" "1 null"
is "… one turn, in conversation dc:$C8" \
    "$(chan_sql "select conversation, sender, text from inbox
    where id > $N")" "dc:$C8|$ANN|what time is it"

llm '[{"text": "too late"}]'
ix "$(ask 5000000000000000009 "expired-$(random_token)" "are you slow")"
ok "an interaction token no longer taken: the answer goes to the channel" \
    wait_until 60 _nmsgs_ge $C8 1
is "… as a plain message, once" "$(msgs $C8 | jq -r '.[].content')" \
    "too late"

N=$(inbox)
TOK3="tok-$(random_token)"
llm '[{"text": "in the server"}]'
ix "$(ask 5000000000000000010 "$TOK3" "and here" $ANN $GUILD)"
is "/ask in a server is deferred too" "$CODE $BODY" '200 {"type":5}'
_edited3() { plat_calls discord | jq -e --arg t "$TOK3" \
    '.[] | select(.path | contains($t))' >/dev/null; }
ok "… answered by editing its response" wait_until 60 _edited3
is "… a mention in a server: the turn is told who asked" \
    "$(chan_sql "select text from inbox where id > $N")" \
    "[ann ($ANN)]: and here"

# --- pairing (the default policy) -----------------------------------------
N=$(inbox)
C8=2000000000000000010
TOK2="tok-$(random_token)"
ix "$(ask 5000000000000000008 "$TOK2" "let me in" 3000000000000000009)" \
    "" "" /dc2
is "with the default policy an unknown user's /ask is deferred" \
    "$CODE $BODY" '200 {"type":5}'
_paired() { plat_calls discord | jq -e --arg p \
    "/discord/api/webhooks/$APP/$TOK2/messages/@original" \
    '.[] | select(.path == $p and .method == "PATCH")' >/dev/null; }
ok "… its pairing code is the interaction's answer (it edits @original)" \
    wait_until 30 _paired
like "… it says the code" "$(plat_calls discord | jq -r --arg p \
    "/discord/api/webhooks/$APP/$TOK2/messages/@original" \
    '[.[] | select(.path == $p)][0].json.content')" \
    "pairing code is [A-Z0-9]{8}"
is "… and no turn" "$(inbox)" "$N"

# --- a restart resumes the session it kept --------------------------------
R=$(gw resumes)
I=$(gw identifies)
ALL=$(curl -s "$PLAT/_fake/discord/messages" | jq length)
ok "pincerd killed (SIGKILL) and started again" chan_crash
ok "… resumes the session kept in channel_state" \
    wait_until 30 _gw_ge resumes $((R + 1))
is "… without a new identify" "$(gw identifies)" "$I"
C9=2000000000000000009
llm '[{"text": "back again"}]'
dm 4000000000000000011 $C9 "after the restart"
ok "… and answers" wait_until 60 _nmsgs_ge $C9 1
C10=2000000000000000011
llm '[{"text": "still mentioned"}]'
gm 4000000000000000012 $C10 "<@!$BOT> hi again" "[{\"id\": \"$BOT\"}]"
ok "… a mention too (the bot's id kept with the session)" \
    wait_until 60 _nmsgs_ge $C10 1
sleep 2
is "… nothing replayed is answered twice" \
    "$(curl -s "$PLAT/_fake/discord/messages" | jq length)" $((ALL + 2))

# --- op 9 Invalid Session ------------------------------------------------
curl -s -o /dev/null -X POST "$PLAT/_fake/discord/gateway/invalidate" \
    --data-binary '{"resumable": false}'
ok "op 9 (not resumable) → pincerd identifies anew after 1-5 s" \
    wait_until 30 _gw_ge identifies $((I + 1))

# --- close 4004: no more reconnecting -------------------------------------
CONNS=$(gw connections)
curl -s -o /dev/null -X POST "$PLAT/_fake/discord/gateway/close" \
    --data-binary '{"code": 4004, "reason": "Authentication failed."}'
ok "close 4004 is reported clearly" wait_log \
    'discord gateway stopped.*authentication failed' 10
sleep 2
is "… and pincerd does not connect again" "$(gw connections)" "$CONNS"

unlike "no secret in the log" "$(cat "$PINCER_LOG")" "$DC_TOKEN"
done_testing
