#!/bin/bash
# SPDX-License-Identifier: MIT
# channel_telegram.sh: the Telegram channel against the fake Bot API.
# Webhook: an update with the right secret token → exactly one
# sendMessage to that chat, "typing" while the turn runs; a wrong or
# missing secret token, malformed JSON, an oversized body → refused, no
# turn; the same update_id twice → one turn; edits and channel posts →
# no turn; in a group no mention → no turn, an @mention, a reply to the
# bot or a forum topic → answered (reply_parameters, the topic's
# message_thread_id); < & > arrive escaped in HTML mode; a reply over
# 4096 characters in parts, in order; files → sendDocument / sendPhoto;
# 429 → delivered once after retry_after; a blocked bot fails clearly;
# the default policy answers an unknown sender with a pairing code; a
# photo in is fetched (getFile) for the turn; pincerd killed right after
# an acknowledgement, and with a reply pending: answered exactly once.
# Long polling: updates fetched and answered, the offset persisted
# (pincerd killed and restarted: nothing answered twice, a new update
# is), 409 Conflict reported clearly, the webhook refused, a quick stop.
. "$TOP_SRCDIR/tests/integration/lib.sh"
. "$TOP_SRCDIR/tests/integration/channel_lib.sh"

TG_TOKEN="$((RANDOM + 100000)):AA$(random_token)"
HOOK_SECRET="hs_$(random_token)"
BOT_ID=7000001
ok "the fake platforms start" platform_fake_start
curl -s -o /dev/null -X POST "$PLAT/_fake/telegram/config" \
    --data-binary "{\"token\": \"$TG_TOKEN\", \"id\": $BOT_ID}"
TG="\"kind\": \"telegram\", \"owner\": \"alice\",
	\"api_base\": \"$PLAT/telegram\", \"bot_token\": \"tg_token\""
chan_start "[ { \"name\": \"tg\", $TG, \"webhook_secret\": \"tg_hook\",
	\"dm_policy\": \"open\" },
  { \"name\": \"tg2\", $TG, \"webhook_secret\": \"tg_hook\" },
  { \"name\": \"tgp\", $TG, \"mode\": \"polling\",
	\"dm_policy\": \"open\" },
  { \"name\": \"tgm\", $TG, \"webhook_secret\": \"tg_hook\",
	\"dm_policy\": \"open\", \"progress\": \"message\" } ]" ||
    { ok "pincerd starts" false; done_testing; }
chan_secret tg_token "$TG_TOKEN"
chan_secret tg_hook "$HOOK_SECRET"

llm() { curl -s -o /dev/null -X POST "$FAKE/_fake/script" \
    -H 'Content-Type: application/json' --data-binary "$1"; }
# upd ID CHAT TEXT [JQ]: an Update with one text message from Ann (her
# id is the chat's in a private chat, 222 in a group); JQ edits it.
upd() {
	jq -nc --argjson id "$1" --argjson chat "$2" --arg text "$3" '
	    {update_id: $id, message: {message_id: ($id % 100000 + 10),
	    from: {id: (if $chat > 0 then $chat else 222 end),
	    is_bot: false, first_name: "Ann", username: "ann"},
	    chat: (if $chat > 0 then {id: $chat, first_name: "Ann",
	    type: "private"} else {id: $chat, title: "Crew",
	    type: "supergroup"} end), date: (now | floor), text: $text}}' |
	    jq -c "${4:-.}"
}
# hook BODY [SECRET | -] [PATH]: a webhook POST as Telegram sends it
# (- : no secret token header); CODE, BODY.
hook() {
	local h="X-Telegram-Bot-Api-Secret-Token: ${2:-$HOOK_SECRET}"
	[ "${2:-}" = - ] && h="X-Other: 1"
	printf '%s' "$1" >"$T_TMP/hook.json"
	req POST "/hooks/telegram${3:-}" -H 'Content-Type: application/json' \
	    -H "$h" --data-binary "@$T_TMP/hook.json"
}
# sent CHAT [API]: the parameters of the calls of API (sendMessage) to
# CHAT, oldest first.
sent() {
	plat_calls telegram | jq -c --arg chat "$1" \
	    --arg api "${2:-sendMessage}" '[.[] | select(.api == $api) |
	    select((.params.chat_id | tostring) == $chat) | .params]'
}
nsent() { sent "$1" "${2:-sendMessage}" | jq length; }
_nsent_ge() { [ "$(nsent "$1" "${3:-sendMessage}")" -ge "$2" ]; }
inbox() { chan_sql "select count(*) from inbox"; }
# outbox CONV: the states of its replies' rows, in order.
outbox() { chan_sql "select group_concat(state) from outbox
    where conversation = '$1'"; }
_outbox_is() { [ "$(outbox "$1")" = "$2" ]; }
_calls_ge() { [ "$(plat_calls telegram | jq --arg api "$1" \
    '[.[] | select(.api == $api)] | length')" -ge "$2" ]; }
offset() { chan_sql "select value from channel_state
    where channel = 'tgp' and key = 'offset'"; }
_offset_is() { [ "$(offset)" = "$1" ]; }
last_poll() { plat_calls telegram | jq -c '[.[] |
    select(.api == "getUpdates")][-1].params'; }
_polled_from() { [ "$(last_poll | jq -r .offset)" = "$1" ]; }

# --- a private message, one reply ---------------------------------------------
ok "the bot's identity is asked with getMe at start" \
    wait_until 15 _calls_ge getMe 3
A=111
llm '[{"fake": "slow-first-byte=4500", "text": "Hello Ann"}]'
hook "$(upd 1001 $A "hello there")"
is "an update with the right secret token is accepted" "$CODE $BODY" \
    '200 {"ok":true}'
ok "… a reply is sent" wait_until 60 _nsent_ge $A 1
is "… exactly one sendMessage, to that chat, in HTML mode" \
    "$(sent $A | jq -r '.[] | "\(.chat_id) \(.parse_mode) \(.text)"')" \
    "$A HTML Hello Ann"
is "… not as a reply in a private chat" \
    "$(sent $A | jq -c '.[0].reply_parameters')" null
is "… the message went into conversation tg:$A, by Ann's id" \
    "$(chan_sql "select conversation, sender, text from inbox")" \
    "tg:$A|$A|hello there"
TY=$(sent $A sendChatAction)
ok "… \"typing\" was shown while the turn ran (every 4 s: twice in 4.5 s)" \
    test "$(jq '[.[] | select(.action == "typing")] | length' <<<"$TY")" \
    -ge 2
wait_until 10 _outbox_is tg:$A sent
is "… the outbox row is sent with Telegram's message_id" \
    "$(chan_sql "select state, platform_id from outbox")" "sent|100"
CALL=$(plat_calls telegram | jq -c '[.[] | select(.api == "sendMessage")][0]')
is "… to /bot<TOKEN>/sendMessage" "$(jq -r .path <<<"$CALL")" \
    "/telegram/bot$TG_TOKEN/sendMessage"

# --- refused: no turn ---------------------------------------------------------
N=$(inbox)
hook "$(upd 1002 $A "forged")" "hs_wrong"
is "a wrong secret token is refused" "$CODE" 401
hook "$(upd 1003 $A "forged")" -
is "… and a missing one" "$CODE" 401
hook "$(upd 1004 $A "forged")" "${HOOK_SECRET}x"
is "… and one with a byte more" "$CODE" 401
hook '{"update_id": 1005, "message": {"text": '
is "malformed JSON (with the secret token) is refused" "$CODE" 400
hook '{"message": {"message_id": 1, "text": "no update_id"}}'
is "… and JSON that is no Update" "$CODE" 400
BIG=$(head -c 1200000 /dev/zero | tr '\0' x)
hook "$(printf '{"update_id":1006,"message":{"message_id":1,"from":{"id":%s},
    "chat":{"id":%s,"type":"private"},"date":1,"text":"%s"}}' $A $A "$BIG")"
like "an oversized body is refused" "$CODE" "^4[0-9][0-9]$"
is "… none of them made a turn" "$(inbox)" "$N"

# --- retries and updates that are not messages to us --------------------------
hook "$(upd 1001 $A "hello there")"
is "the same update_id again (Telegram's retry) is acknowledged" "$CODE" 200
hook "$(upd 1007 $A "edited" '{update_id, edited_message: .message}')"
is "an edited_message is acknowledged" "$CODE" 200
hook "$(upd 1008 -100500 "news" '{update_id, channel_post: (.message |
    .chat.type = "channel")}')"
is "… and a channel_post" "$CODE" 200
hook "$(upd 1009 $A "from a bot" '.message.from.is_bot = true')"
is "… and a bot's message" "$CODE" 200
is "… none of them made a turn" "$(inbox)" "$N"
sleep 1
is "… and the first message still has one reply" "$(nsent $A)" 1

# --- groups -------------------------------------------------------------------
G=-100200
hook "$(upd 1010 $G "just chatting")"
is "a group message without a mention is acknowledged" "$CODE" 200
is "… and makes no turn" "$(inbox)" "$N"
llm '[{"text": "It is noon"}]'
hook "$(upd 1011 $G "@pincer_bot, what time is it?" '.message.entities =
    [{type: "mention", offset: 0, length: 11}]')"
is "a group message with @pincer_bot is accepted" "$CODE" 200
ok "… and answered" wait_until 60 _nsent_ge $G 1
RP='{"message_id":1021,"allow_sending_without_reply":true}'
is "… in the group, replying to that message" \
    "$(sent $G | jq -c '.[0] | [.chat_id, .text, .reply_parameters]')" \
    "[$G,\"It is noon\",$RP]"
like "… the agent read it without the mention, knowing who spoke" \
    "$(chan_sql "select text from inbox where conversation = 'tg:$G'")" \
    "^\\[Ann \\(222\\)\\]: what time is it\\?$"
llm '[{"text": "Yes"}]'
hook "$(upd 1012 $G "and tomorrow?" '.message.reply_to_message =
    {message_id: 100, from: {id: '$BOT_ID', is_bot: true,
    first_name: "Pincer", username: "pincer_bot"},
    chat: .message.chat, date: 1}')"
ok "a reply to one of the bot's messages is answered too" \
    wait_until 60 _nsent_ge $G 2
llm '[{"text": "Help is here"}]'
hook "$(upd 1013 $G "/help@pincer_bot" '.message.entities =
    [{type: "bot_command", offset: 0, length: 16}]')"
ok "… and a command addressed to the bot" wait_until 60 _nsent_ge $G 3
hook "$(upd 1014 $G "/help@other_bot" '.message.entities =
    [{type: "bot_command", offset: 0, length: 15}]')"
hook "$(upd 1015 $G "ask @pincer_botanist" '.message.entities =
    [{type: "mention", offset: 4, length: 16}]')"
is "… but not one for another bot, nor another name that starts alike" \
    "$(chan_sql "select count(*) from inbox where conversation = 'tg:$G'")" 3
F=-100300
llm '[{"text": "In the topic"}]'
hook "$(upd 1016 $F "🦀 @pincer_bot hi" '.message.chat.is_forum = true |
    .message.message_thread_id = 77 | .message.is_topic_message = true |
    .message.entities = [{type: "mention", offset: 3, length: 11}]')"
ok "a mention in a forum topic (after an emoji: UTF-16 offsets) is answered" \
    wait_until 60 _nsent_ge $F 1
is "… in that topic" \
    "$(sent $F | jq -c '.[0] | [.message_thread_id, .text]')" \
    '[77,"In the topic"]'
is "… its own conversation" \
    "$(chan_sql "select conversation from inbox
    where conversation like 'tg:$F%'")" \
    "tg:$F:77"

# --- escaping, long replies ---------------------------------------------------
C=112
llm '[{"text": "a < b & c > d"}]'
hook "$(upd 1020 $C "compare")"
ok "a reply with < & > is sent" wait_until 60 _nsent_ge $C 1
is "… escaped for HTML mode" "$(sent $C | jq -r '.[0].text')" \
    "a &lt; b &amp; c &gt; d"
wait_until 10 _outbox_is tg:$C sent
is "… and Telegram took it (entities parsed)" "$(outbox tg:$C)" sent
D=113
LONG=$(for i in $(seq 1 700); do printf 'a&b%04d ' "$i"; done)
LONG=${LONG% }
llm "[{\"text\": \"$LONG\"}]"
hook "$(upd 1021 $D "tell me a lot")"
ok "a reply over 4096 characters is sent" wait_until 60 _nsent_ge $D 2
sleep 1
UNESC='[.[].text | gsub("&amp;"; "&")]'
like "… in parts" "$(sent $D | jq -r "$UNESC | map(length) | join(\" \")")" \
    "^[0-9]+ [0-9]+$"
ok "… each within 4096 characters as Telegram counts them (escaping aside)" \
    test "$(sent $D | jq "$UNESC | map(length) | max")" -le 4096
ok "… escaped, so some over 4096 bytes on the wire" \
    test "$(sent $D | jq '[.[].text | length] | max')" -gt 4096
is "… in order, nothing lost" \
    "$(sent $D | jq -r "$UNESC | join(\" \")" | tr -s ' ')" "$LONG"
wait_until 10 _outbox_is tg:$D sent
is "… and Telegram took every part (one outbox row)" "$(outbox tg:$D)" sent

U=119
CRAB=$(printf '\360\237\246\200')
WIDE=$(for i in $(seq 1 800); do printf '%s%s%s ' $CRAB $CRAB $CRAB; done)
WIDE=${WIDE% }
llm "[{\"text\": \"$WIDE\"}]"
plat_script '{"platform": "telegram", "faults": ["", "429=1"]}'
hook "$(upd 1022 $U "emoji please")"
ok "a part within 4096 characters but over 4096 UTF-16 units (emoji) is sent" \
    wait_until 60 _nsent_ge $U 3
sleep 1
U16='[.[].text | [explode[] | if . > 65535 then 2 else 1 end] | add]'
ok "… as two messages, each within 4096 UTF-16 units, as Telegram counts" \
    test "$(sent $U | jq "$U16 | if length == 3 then max else 9999 end")" \
    -le 4096
is "… the second, answered 429, sent again alone: in order, nothing lost" \
    "$(sent $U | jq -r 'if .[1].text == .[2].text then
    "\(.[0].text) \(.[2].text)" else "" end')" "$WIDE"
wait_until 10 _outbox_is tg:$U sent
is "… and Telegram took both" "$(outbox tg:$U)" sent

# --- files out, files in ------------------------------------------------------
E=114
llm '[{"tool": "exec", "args": {"command":
    "echo report > /workspace/r.txt; echo png > /workspace/p.png"}},
  {"tool": "send_attachment", "args": {"path": "r.txt"}},
  {"tool": "send_attachment", "args": {"path": "p.png"}},
  {"text": "here they are"}]'
hook "$(upd 1030 $E "send me the report")"
ok "a file reply is sent" wait_until 90 _nsent_ge $E 1 sendPhoto
sleep 1
is "… a text file with sendDocument (multipart)" \
    "$(sent $E sendDocument | jq -r '.[] | "\(.document.filename)
    \(.document.mime) \(.document.text)"' | tr -s ' \n' ' ')" \
    "r.txt text/plain report "
is "… a PNG with sendPhoto" "$(sent $E sendPhoto | jq -r '.[] |
    "\(.photo.filename) \(.photo.mime)"')" "p.png image/png"
is "… and the text once" "$(sent $E | jq -r '.[].text')" "here they are"
curl -s -o /dev/null -X POST "$PLAT/_fake/telegram/files" --data-binary \
    '[{"file_id": "AgADphoto1", "file_path": "photos/file_1.jpg",
    "text": "jpeg bytes"}]'
llm '[{"text": "Nice picture"}]'
hook "$(upd 1031 $E "" '.message |= (del(.text) | .caption = "look" |
    .photo = [{file_id: "AgADsmall", file_unique_id: "s", width: 90,
    height: 90, file_size: 100}, {file_id: "AgADphoto1",
    file_unique_id: "b", width: 800, height: 800, file_size: 10}])')"
is "a photo message is accepted" "$CODE" 200
IMG="where event_id like '%1031'"
is "… its caption is the text" "$(chan_sql "select text from inbox $IMG")" \
    look
is "… the largest size an attachment (id, name, mime, size)" \
    "$(chan_sql "select attachments from inbox $IMG" |
    jq -r '.[] | "\(.id) \(.name) \(.mime) \(.size)"')" \
    "AgADphoto1 photo.jpg image/jpeg 10"
ok "… and it is answered" wait_until 60 _nsent_ge $E 2
is "… fetched for the turn: getFile, then the file by its file_path" \
    "$(plat_calls telegram | jq -r '[.[] | select(.api == "getFile"
    or .api == "file") | "\(.api) \(.params.file_id // .path)"] |
    join(", ")')" \
    "getFile AgADphoto1, file /telegram/file/bot$TG_TOKEN/photos/file_1.jpg"
FILE_RE="a file came with the message: /workspace/inbox/[0-9]+-photo"
FILE_RE="$FILE_RE\.jpg \(10 bytes\)"
like "… and the turn was told where the file is" \
    "$(curl -s "$FAKE/_fake/requests" | jq -r '.[].body.messages[]?
    | select(.role == "user") | .content | strings')" \
    "$FILE_RE"

# --- 429, a blocked bot -------------------------------------------------------
H=115
plat_script '{"platform": "telegram", "faults": ["429=2"]}'
llm '[{"text": "after the wait"}]'
hook "$(upd 1040 $H "are you there")"
ok "a 429 is tried again" wait_until 60 _nsent_ge $H 2
T=$(plat_calls telegram | jq -c --arg c $H '[.[] | select(.api ==
    "sendMessage") | select((.params.chat_id | tostring) == $c)]')
ok "… after parameters.retry_after (2 s)" \
    test "$(jq '.[1].at - .[0].at' <<<"$T")" -ge 1900
sleep 1
is "… and delivered once" "$(nsent $H)" 2
wait_until 10 _outbox_is tg:$H sent
is "… the reply is marked sent" "$(outbox tg:$H)" sent
K=116
plat_script '{"platform": "telegram", "faults": ["403"]}'
llm '[{"text": "nobody will see this"}]'
hook "$(upd 1041 $K "hi")"
wait_until 60 _outbox_is tg:$K failed
like "a blocked bot (403) fails the reply with Telegram's words" \
    "$(chan_sql "select state, error from outbox where conversation =
    'tg:$K'")" "^failed\|.*bot was blocked by the user"
is "… tried once" "$(nsent $K)" 1

# --- pairing (the default policy) ---------------------------------------------
N=$(inbox)
P=117
hook "$(upd 1050 $P "let me in")" "" /tg2
is "with the default policy an unknown sender's message is acknowledged" \
    "$CODE" 200
ok "… it gets a pairing code" wait_until 30 _nsent_ge $P 1
like "… in its text" "$(sent $P | jq -r '.[0].text')" "[A-Z0-9]{8}"
is "… and no turn" "$(inbox)" "$N"

# --- crashes ------------------------------------------------------------------
R=120
llm '[{"text": "after the crash", "fake": "slow-first-byte=1500"}]'
hook "$(upd 1070 $R "are you still there")"
is "an update acknowledged (200) …" "$CODE" 200
ok "… pincerd killed (SIGKILL) right after, and started again" chan_crash
ok "… it is answered" wait_until 60 _nsent_ge $R 1
sleep 2
# (the killed turn may have taken the scripted answer: the fake's own)
like "… exactly once" "$(sent $R | jq -r '[.[].text] | join(",")')" \
    "^(after the crash|echo: are you still there)$"
S=121
plat_script '{"platform": "telegram", "faults": ["429=3"]}'
llm '[{"text": "pending then sent"}]'
hook "$(upd 1071 $S "again")"
wait_until 60 _nsent_ge $S 1
ok "a reply pending after a 429, pincerd killed, started again" chan_crash
ok "… it is sent" wait_until 60 _nsent_ge $S 2
sleep 2
is "… once (the 429, then one send)" \
    "$(sent $S | jq -r '[.[].text] | join(",")')" \
    "pending then sent,pending then sent"
wait_until 10 _outbox_is tg:$S sent
is "… and marked sent" "$(outbox tg:$S)" sent

# --- "progress": "message": a placeholder, edited into the reply ---------------
M=555
llm '[{"fake": "slow-first-byte=1500", "text": "the answer"}]'
hook "$(upd 5901 $M "edit me")" "" /tgm
ok "with progress \"message\", the reply arrives" \
    wait_until 30 _nsent_ge $M 1 editMessageText
is "… a placeholder was sent while the turn ran" \
    "$(sent $M | jq -r '[.[].text] | join(" / ")')" "…"
wait_until 10 _outbox_is tgm:$M sent
is "… and edited into the reply, once" \
    "$(sent $M editMessageText | jq -r '.[] | .text')" "the answer"
is "… the placeholder's message is the reply's" \
    "$(sent $M editMessageText | jq -r '.[0].message_id')" \
    "$(chan_sql "select platform_id from outbox where conversation = 'tgm:$M'")"
is "… the outbox row is sent" "$(outbox tgm:$M)" sent
is "… and the placeholder is forgotten" \
    "$(chan_sql "select count(*) from channel_state where key like 'placeholder:%'")" 0

# --- long polling -------------------------------------------------------------
hook "$(upd 1060 $A "to the poller")" "" /tgp
is "in polling mode the webhook refuses updates" "$CODE" 401
Q=118
llm '[{"text": "polled and answered"}]'
curl -s -o /dev/null -X POST "$PLAT/_fake/telegram/updates" \
    --data-binary "[$(upd 5001 $Q "are you polling?")]"
ok "an update queued for getUpdates is answered" wait_until 60 _nsent_ge $Q 1
is "… once, in conversation tgp:$Q" \
    "$(nsent $Q) $(chan_sql "select conversation from inbox where
    event_id like '%5001'")" "1 tgp:$Q"
POLL=$(last_poll)
is "… by getUpdates?offset&timeout=25&allowed_updates=[\"message\"]" \
    "$(jq -r '"\(.timeout) \(.allowed_updates)"' <<<"$POLL")" \
    '25 ["message"]'
wait_until 10 _offset_is 5002
is "… the offset past it is stored" "$(offset)" 5002
ok "pincerd killed and started again" chan_crash
llm '[{"text": "after the crash"}]'
ok "… polls again from the stored offset" wait_until 30 _polled_from 5002
curl -s -o /dev/null -X POST "$PLAT/_fake/telegram/updates" \
    --data-binary "[$(upd 5002 $Q "still there?")]"
ok "… a new update is answered" wait_until 60 _nsent_ge $Q 2
sleep 1
is "… and the first was not answered again" \
    "$(sent $Q | jq -r '[.[].text] | join(", ")')" \
    "polled and answered, after the crash"

# 409: another process polls with the same token, then a webhook is set.
curl -s -o /dev/null --max-time 5 \
    "$PLAT/telegram/bot$TG_TOKEN/getUpdates?offset=5003&timeout=1"
ok "a 409 Conflict is logged as an error" \
    wait_log 'getUpdates answered 409 Conflict' 10
like "… saying what to do" "$(grep '409 Conflict' "$PINCER_LOG" | head -1)" \
    'level=error.*another bot process is polling with this token.*deleteWebhook'
like "… with Telegram's words" "$(grep '409 Conflict' "$PINCER_LOG" |
    head -1)" 'terminated by other getUpdates request'
llm '[{"text": "over the conflict"}]'
curl -s -o /dev/null -X POST "$PLAT/_fake/telegram/updates" \
    --data-binary "[$(upd 5003 $Q "after the conflict?")]"
ok "… polling resumes by itself" wait_until 60 _nsent_ge $Q 3
curl -s -o /dev/null -X POST -H 'Content-Type: application/json' \
    --data-binary '{"url": "https://example.org/hooks/telegram"}' \
    "$PLAT/telegram/bot$TG_TOKEN/setWebhook"
wait_log 'getUpdates answered 409 Conflict' 10 1
is "… logged once per conflict, and again for the next (a webhook is set)" \
    "$(log_count 'getUpdates answered 409 Conflict')" 2
like "… which Telegram names" "$(grep '409 Conflict' "$PINCER_LOG" |
    tail -1)" "webhook is active"
curl -s -o /dev/null -X POST "$PLAT/telegram/bot$TG_TOKEN/deleteWebhook"
llm '[{"text": "back again"}]'
curl -s -o /dev/null -X POST "$PLAT/_fake/telegram/updates" \
    --data-binary "[$(upd 5004 $Q "after deleteWebhook?")]"
ok "… after deleteWebhook polling resumes, nothing lost" \
    wait_until 60 _nsent_ge $Q 4
is "… and every polled update had one reply" \
    "$(sent $Q | jq -r '[.[].text] | join(", ")')" \
    "polled and answered, after the crash, over the conflict, back again"

unlike "no secret in the log" "$(cat "$T_LOGDIR/$T_NAME".*pincerd.log)" \
    "$TG_TOKEN|$HOOK_SECRET"
T0=$(date +%s%N)
pincer_stop
ok "pincerd stops at once though a 25 s long poll is held (< 5 s)" \
    test $(( ($(date +%s%N) - T0) / 1000000 )) -lt 5000
is "… cleanly" "$PINCER_EXIT" 0
done_testing
