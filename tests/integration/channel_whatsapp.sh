#!/bin/bash
# SPDX-License-Identifier: MIT
# channel_whatsapp.sh: the WhatsApp Cloud API channel against the fake
# Graph API: the hub verification GET (right token → the challenge, wrong
# → refused); a signed text message → exactly one text reply to that
# number, with a read receipt and typing indicator; a bad signature, a
# malformed body, an oversized body → refused, no turn; Meta's retry of a
# message id → one turn; a status-only webhook, another phone number's
# change → no turn; an image in → its attachment in the inbox, fetched
# (GET /MEDIA_ID, then its URL) into the sandbox for the turn; a button
# tap → its title; a file reply → a media upload and a document message;
# a 429 → delivered after Retry-After; 131056 and 500 → tried again;
# 131047 (24-hour window) and a revoked token (190) → failed with a clear
# error; a reply over 4096 characters → in parts, in order; with the
# default policy an unknown number gets a pairing code and no turn;
# pincerd killed right after an acknowledgement, and while a reply is
# pending: each message answered exactly once.
. "$TOP_SRCDIR/tests/integration/lib.sh"
. "$TOP_SRCDIR/tests/integration/channel_lib.sh"

PHONE=106540352242922
WA_TOKEN="EAAwa-$(random_token)"
APP_SECRET="app-$(random_token)"
VERIFY="verify-$(random_token)"
ok "the fake platforms start" platform_fake_start
curl -s -o /dev/null -X POST "$PLAT/_fake/whatsapp/token" \
    --data-binary "{\"token\": \"$WA_TOKEN\"}"
WA="\"kind\": \"whatsapp\", \"owner\": \"alice\",
	\"api_base\": \"$PLAT/whatsapp\", \"phone_number_id\": \"$PHONE\",
	\"access_token\": \"wa_token\", \"app_secret\": \"wa_app\",
	\"verify_token\": \"wa_verify\""
chan_start "[ { \"name\": \"wa\", $WA, \"dm_policy\": \"open\" },
  { \"name\": \"wa2\", $WA } ]" || { ok "pincerd starts" false; done_testing; }
chan_secret wa_token "$WA_TOKEN"
chan_secret wa_app "$APP_SECRET"
chan_secret wa_verify "$VERIFY"

llm() { curl -s -o /dev/null -X POST "$FAKE/_fake/script" \
    -H 'Content-Type: application/json' --data-binary "$1"; }
sign() { printf '%s' "$1" | openssl dgst -sha256 -hmac "$APP_SECRET" |
    sed 's/.* //'; }
# hook BODY [SIGNATURE] [PATH]: a webhook POST as Meta sends it; CODE, BODY.
hook() {
	local sig=${2:-sha256=$(sign "$1")}
	printf '%s' "$1" >"$T_TMP/hook.json"
	req POST "/hooks/whatsapp${3:-}" -H 'Content-Type: application/json' \
	    -H "X-Hub-Signature-256: $sig" --data-binary "@$T_TMP/hook.json"
}
# value JSON [PHONE_ID]: a webhook carrying one change's value.
value() {
	printf '{"object":"whatsapp_business_account","entry":[{"id":"1023",'
	printf '"changes":[{"value":{"messaging_product":"whatsapp",'
	printf '"metadata":{"display_phone_number":"15550001111",'
	printf '"phone_number_id":"%s"},%s},"field":"messages"}]}]}' \
	    "${2:-$PHONE}" "$1"
}
# msg ID FROM TYPE OBJECT: a message of that type from FROM (named Ann).
msg() {
	value "\"contacts\":[{\"profile\":{\"name\":\"Ann\"},\"wa_id\":\"$2\"}],
	    \"messages\":[{\"from\":\"$2\",\"id\":\"$1\",
	    \"timestamp\":\"$(date +%s)\",\"type\":\"$3\",\"$3\":$4}]" "${5:-}"
}
text() { msg "$1" "$2" text "{\"body\":\"$3\"}" "${4:-}"; }
# sent [TO]: the messages (not read receipts) sent to TO, oldest first.
sent() {
	plat_calls whatsapp | jq -c --arg to "${1:-}" '[.[] |
	    select(.path | endswith("/messages")) | select(.json.to != null)
	    | select($to == "" or .json.to == $to) | .json]'
}
nsent() { sent "$1" | jq length; }
_nsent_ge() { [ "$(nsent "$1")" -ge "$2" ]; }
inbox() { chan_sql "select count(*) from inbox"; }
# state CONV: its outbox rows' states; _state_is CONV STATE.
state() { chan_sql "select group_concat(state) from outbox
    where conversation = '$1'"; }
_state_is() { [ "$(state "$1")" = "$2" ]; }
# poll SECS CMD…: wait_until, every 250 ms (each look asks the fake).
poll() {
	local secs=$1 i; shift
	for i in $(seq 1 $((secs * 4))); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.25
	done
	"$@" >/dev/null 2>&1
}

# --- the subscription check ---------------------------------------------------
# hub MODE TOKEN: Meta's subscription check, challenge 1158201444.
hub() {
	local q="hub.mode=$1&hub.verify_token=$2"
	req GET "/hooks/whatsapp?$q&hub.challenge=1158201444"
}
hub subscribe "$VERIFY"
is "GET /hooks/whatsapp with the verify token echoes hub.challenge" \
    "$CODE $BODY" "200 1158201444"
like "… as text/plain" "$HDRS" "[Cc]ontent-[Tt]ype: text/plain"
hub subscribe nope
is "… a wrong verify token is refused (403)" "$CODE" 403
unlike "… without the challenge" "$BODY" "1158201444"
hub unsubscribe "$VERIFY"
is "… and so is another hub.mode" "$CODE" 403

# --- a message, a reply -------------------------------------------------------
A=15551230001
llm '[{"text": "Hello Ann"}]'
hook "$(text wamid.T1 $A "hello there")"
is "a signed text message is accepted" "$CODE" 200
ok "… a reply is sent" poll 60 _nsent_ge $A 1
is "… exactly one text message, to the sender's number" \
    "$(sent $A | jq -r '.[] | "\(.type) \(.to) \(.text.body)"')" \
    "text $A Hello Ann"
is "… in the Cloud API's shape" "$(sent $A | jq -c '.[0] |
    [.messaging_product, .recipient_type, .text.preview_url]')" \
    '["whatsapp","individual",false]'
CALL=$(plat_calls whatsapp | jq -c '[.[] | select(.json.type == "text")][0]')
is "… to /VERSION/PHONE_ID/messages with the access token" \
    "$(jq -r '"\(.path) \(.headers.authorization)"' <<<"$CALL")" \
    "/whatsapp/v21.0/$PHONE/messages Bearer $WA_TOKEN"
is "… the message went into conversation wa:$A, by Ann's number" \
    "$(chan_sql "select conversation, sender, text from inbox")" \
    "wa:$A|$A|hello there"
READ=$(plat_calls whatsapp | jq -c '[.[] | select(.json.status == "read")]')
is "… the message was marked read with the typing indicator" \
    "$(jq -r '.[0].json | "\(.message_id) \(.typing_indicator.type)"' \
    <<<"$READ")" "wamid.T1 text"
poll 10 _state_is wa:$A sent
is "… the outbox row is sent with WhatsApp's message id" \
    "$(chan_sql "select state, platform_id like 'wamid.%' from outbox")" \
    "sent|1"

# --- refused: no turn ---------------------------------------------------------
N=$(inbox)
hook "$(text wamid.BAD $A "forged")" "sha256=$(printf '%064d' 0)"
is "a bad signature is refused" "$CODE" 401
hook "$(text wamid.BAD2 $A "forged")" "sha256=$(sign "other body")"
is "… a signature of another body too" "$CODE" 401
printf '%s' "$(text wamid.BAD3 $A "unsigned")" >"$T_TMP/hook.json"
req POST /hooks/whatsapp -H 'Content-Type: application/json' \
    --data-binary "@$T_TMP/hook.json"
is "… and no signature" "$CODE" 401
hook '{"object":"whatsapp_business_account","entry":[{'
is "malformed JSON (signed) is refused" "$CODE" 400
BIG=$(text wamid.BIG $A "$(head -c 1200000 /dev/zero | tr '\0' x)")
hook "$BIG"
like "an oversized body is refused" "$CODE" "^4[0-9][0-9]$"
is "… none of them made a turn" "$(inbox)" "$N"

# --- Meta's retries; events that are not messages -----------------------------
hook "$(text wamid.T1 $A "hello there")"
is "the same message id again (Meta's retry) is acknowledged" "$CODE" 200
hook "$(value '"statuses":[{"id":"wamid.OUT1","status":"delivered",
    "timestamp":"1700000000","recipient_id":"'$A'"}]')"
is "a status-only webhook is acknowledged" "$CODE" 200
hook "$(text wamid.OTHER $A "for another number" 999000111)"
is "a change for another phone number is acknowledged" "$CODE" 200
hook '{"object":"page","entry":[]}'
is "… and another object's webhook" "$CODE" 200
is "… none of them made a turn" "$(inbox)" "$N"
sleep 1
is "… and the first message still has one reply" "$(nsent $A)" 1

# --- an image in --------------------------------------------------------------
PNG=iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmM
PNG=${PNG}IQAAAABJRU5ErkJggg==
curl -s -o /dev/null -X POST "$PLAT/_fake/whatsapp/media" \
    --data-binary "{\"id\": \"2001\", \"mime\": \"image/png\",
    \"base64\": \"$PNG\"}"
llm '[{"text": "Nice picture"}]'
hook "$(msg wamid.IMG $A image '{"caption":"look at this",
    "mime_type":"image/png","sha256":"abc","id":"2001"}')"
is "an image message is accepted" "$CODE" 200
IMG="where event_id like '%wamid.IMG'"
is "… its caption is the text" "$(chan_sql "select text from inbox $IMG")" \
    "look at this"
is "… and the media an attachment (id, mime, name)" \
    "$(chan_sql "select attachments from inbox $IMG" |
    jq -r '.[] | "\(.id) \(.mime) \(.name)"')" "2001 image/png image.png"
poll 60 _nsent_ge $A 2
is "… and it is answered" "$(sent $A | jq -r '.[1].text.body')" "Nice picture"
is "… fetched for the turn: GET /MEDIA_ID, then its URL" \
    "$(plat_calls whatsapp | jq -r '[.[] | select(.path |
    test("2001$")) | "\(.method) \(.path)"] | join(", ")')" \
    "GET /whatsapp/v21.0/2001, GET /whatsapp/media-file/2001"
FILE_RE="^\[a file came with the message: /workspace/inbox/[0-9]+-image"
like "… and the turn was told where the file is" \
    "$(curl -s "$FAKE/_fake/requests" | jq -r '.[].body.messages[]?
    | select(.role == "user") | .content | strings')" \
    "$FILE_RE\.png \(70 bytes\)"

# --- buttons and other kinds --------------------------------------------------
H=15551230008
llm '[{"text": "noted"}]'
hook "$(msg wamid.BTN $H interactive '{"type":"button_reply",
    "button_reply":{"id":"yes-1","title":"Yes please"}}')"
poll 60 _nsent_ge $H 1
llm '[{"text": "noted"}]'
hook "$(msg wamid.LOC $H location '{"latitude":1.5,"longitude":2.5}')"
poll 60 _nsent_ge $H 2
is "a button tap's title and a note for a location are the texts" \
    "$(chan_sql "select text from inbox where conversation = 'wa:$H'
    order by id" | tr '\n' /)" \
    "Yes please/[unsupported message type location]/"

# --- a file out ---------------------------------------------------------------
llm '[{"tool": "exec", "args": {"command": "echo report > /workspace/r.txt"}},
  {"tool": "send_attachment", "args": {"path": "r.txt"}},
  {"text": "here it is"}]'
hook "$(text wamid.FILE $A "send me the report")"
poll 90 _nsent_ge $A 4
UP=$(plat_calls whatsapp | jq -c '[.[] | select(.path | endswith("/media"))]')
is "a file reply uploads the file once (multipart)" \
    "$(jq -r '.[] | .multipart | "\(.messaging_product) \(.type)
    \(.file.filename) \(.file.text)"' <<<"$UP" | tr -s ' \n' ' ')" \
    "whatsapp text/plain r.txt report "
is "… then sends it as a document by its media id" \
    "$(sent $A | jq -r '.[] | select(.type == "document") |
    "\(.document.id) \(.document.filename)"')" \
    "$(jq -r '.[0].answer.id' <<<"$UP") r.txt"
is "… and the text" "$(sent $A | jq -r '[.[] | select(.type == "text")][2]
    .text.body')" "here it is"

# --- 429, then delivered ------------------------------------------------------
B=15551230002
plat_script '{"platform": "whatsapp", "faults": ["429=2"]}'
llm '[{"text": "after the wait"}]'
hook "$(text wamid.RL $B "are you there")"
poll 60 _nsent_ge $B 2
T=$(plat_calls whatsapp | jq -c --arg b $B '[.[] | select(.json.to == $b)]')
is "a 429 (code 130429) is tried again, then delivered once" \
    "$(jq -r '[.[].json.text.body] | join(",")' <<<"$T")" \
    "after the wait,after the wait"
ok "… after Retry-After (2 s)" \
    test "$(jq '.[1].at - .[0].at' <<<"$T")" -ge 1900
sleep 1
is "… and not again" "$(nsent $B)" 2
poll 10 _state_is wa:$B sent
is "… the reply is marked sent" "$(state wa:$B)" sent

# --- other Graph errors -------------------------------------------------------
F=15551230006
plat_script '{"platform": "whatsapp", "faults": ["131056", "500"]}'
llm '[{"text": "third time lucky"}]'
hook "$(text wamid.PR $F "again")"
poll 30 _nsent_ge $F 3
poll 10 _state_is wa:$F sent
is "a pair rate limit (131056) and a 500 are tried again, then sent" \
    "$(nsent $F) $(state wa:$F)" "3 sent"
G=15551230007
plat_script '{"platform": "whatsapp", "faults": ["131047"]}'
llm '[{"text": "too late"}]'
hook "$(text wamid.WIN $G "old")"
poll 30 _state_is wa:$G failed
like "the 24-hour window closed (131047) fails the reply, saying so" \
    "$(chan_sql "select state, error from outbox where conversation =
    'wa:$G'")" "^failed\|.*24 hours"
sleep 1
is "… tried once" "$(nsent $G)" 1

# --- a long reply in parts ----------------------------------------------------
LONG=$(for i in $(seq 1 700); do printf 'word%04d ' "$i"; done)
LONG=${LONG% }
llm "[{\"text\": \"$LONG\"}]"
C=15551230003
hook "$(text wamid.LONG $C "tell me a lot")"
poll 60 _nsent_ge $C 2
sleep 1
P=$(sent $C | jq -r '.[].text.body | length' | tr '\n' ' ')
like "a reply over 4096 characters is sent in parts" "$P" "^[0-9]+ [0-9]+ $"
ok "… each within 4096" \
    test "$(sent $C | jq '[.[].text.body | length] | max')" -le 4096
is "… in order, nothing lost" \
    "$(sent $C | jq -r '[.[].text.body] | join(" ")' | tr -s ' ')" "$LONG"

# --- the token revoked: a clear failure ---------------------------------------
curl -s -o /dev/null -X POST "$PLAT/_fake/whatsapp/token" \
    --data-binary '{"token": "another"}'
llm '[{"text": "nobody will see this"}]'
D=15551230004
hook "$(text wamid.TOK $D "hi")"
poll 60 _state_is wa:$D failed
like "a refused token (190) fails the reply with a clear error" \
    "$(chan_sql "select state, error from outbox
    where conversation = 'wa:$D'")" \
    "^failed\|.*access token"
curl -s -o /dev/null -X POST "$PLAT/_fake/whatsapp/token" \
    --data-binary "{\"token\": \"$WA_TOKEN\"}"

# --- pairing (the default policy) ---------------------------------------------
N=$(inbox)
E=15551230005
hook "$(text wamid.PAIR $E "let me in")" "" /wa2
is "with the default policy an unknown number's message is acknowledged" \
    "$CODE" 200
poll 30 _nsent_ge $E 1
like "… it gets a pairing code" "$(sent $E | jq -r '.[0].text.body')" \
    "[A-Z0-9]{8}"
is "… and no turn" "$(inbox)" "$N"

# --- crashes ------------------------------------------------------------------
K=15551230009
llm '[{"text": "after the crash", "fake": "slow-first-byte=1500"}]'
hook "$(text wamid.CR1 $K "are you still there")"
is "a message acknowledged (200) …" "$CODE" 200
ok "… pincerd killed (SIGKILL) right after, and started again" chan_crash
poll 60 _nsent_ge $K 1
sleep 2
# (the killed turn took the scripted, slow answer: the fake's own echo
# comes after; the kill lands while the turn waits for the model)
like "… the message is answered exactly once" \
    "$(sent $K | jq -r '[.[].text.body] | join(",")')" \
    "^(after the crash|echo: are you still there)$"
L=15551230010
plat_script '{"platform": "whatsapp", "faults": ["429=3"]}'
llm '[{"text": "pending then sent"}]'
hook "$(text wamid.CR2 $L "again")"
poll 60 _nsent_ge $L 1
ok "a reply pending after a 429, pincerd killed, started again" chan_crash
poll 60 _nsent_ge $L 2
sleep 2
is "… it is delivered once (the 429, then one send)" \
    "$(sent $L | jq -r '[.[].text.body] | join(",")')" \
    "pending then sent,pending then sent"
is "… and marked sent" "$(state wa:$L)" sent

pincer_stop
is "pincerd stops cleanly" "$PINCER_EXIT" 0
unlike "no secret in the log" "$(cat "$PINCER_LOG")" \
    "$WA_TOKEN|$APP_SECRET|$VERIFY"
done_testing
