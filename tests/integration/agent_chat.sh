#!/bin/bash
# SPDX-License-Identifier: MIT
# agent_chat.sh: the dispatcher and the API chat channel, end to end: a
# message posted to /api/v1/chat is stored, a turn of pincer-agent runs in
# the owner's sandbox against the fake provider (scripted step by step),
# and the stream carries its events and reply; conversations and their
# messages are read back (each person sees their own); an LLM error gives
# a clear error reply; an agent killed mid-turn is run once more, twice
# killed gives an error; a turn out of time gives an error; memory written
# in one conversation is found in another after the sandbox slept; a
# follow-up sent during a turn is answered by the next turn; agent.command
# runs another program that speaks the protocol; two conversations run at once; pincerd killed mid-turn runs
# the turn again at its next start and the reply arrives exactly once.
. "$TOP_SRCDIR/tests/integration/lib.sh"
. "$TOP_SRCDIR/tests/integration/sandbox_lib.sh"

if [ ! -x "$TOP_BUILDDIR/pincer-agent" ]; then
	ok "pincer-agent is built next to pincer" false
	done_testing
fi
KEY="sk-agent-chat-$(random_token)"
secret_register "$KEY"
ok "the fake provider starts" llm_fake_start "$KEY"
CONF="{ $FAST, \"agent\": { \"skills_dir\": \"$TOP_SRCDIR/skills\" },
  \"llm\": { \"providers\": [ { \"name\": \"oa\", \"kind\": \"openai\",
	\"base_url\": \"$FAKE/v1\", \"key\": \"fake_key\" } ],
	\"routes\": { \"default\": [\"oa/gpt-4o\"] }, \"rate_limit_rpm\": 0 } }"
pincer_start "$CONF" || { ok "pincerd starts" false; done_testing; }
printf '%s' "$KEY" | pcli secret set fake_key >/dev/null 2>&1
for u in alice bob; do
	printf 'a long passphrase\n' | pcli user add $u --role member \
	    --password-stdin >/dev/null 2>&1
done
TA=$(pcli token create --user alice --scope chat --name t 2>/dev/null)
TB=$(pcli token create --user bob --scope chat --name t 2>/dev/null)
secret_register "$TA"
secret_register "$TB"
script() { curl -s -o /dev/null -X POST "$FAKE/_fake/script" \
    -H 'Content-Type: application/json' --data-binary "$1"; }
nreq() { curl -s "$FAKE/_fake/requests" | jq length; }
# chat TOKEN JSON: the whole SSE stream of one message, in OUT.
chat() {
	OUT=$(curl -sN --max-time 60 -H "Authorization: Bearer $1" \
	    -H 'Content-Type: application/json' --data-binary "$2" \
	    "$PINCER_URL/api/v1/chat")
}
# data TYPE: the data lines of the events of that type.
data() { printf '%s\n' "$OUT" | sed -n "/^event: $1\$/{n;s/^data: //p}"; }
types() { printf '%s\n' "$OUT" | sed -n 's/^event: //p' | tr '\n' ' '; }

# --- one message, one turn ------------------------------------------------------
script '[{"tool": "exec", "args": {"command": "hostname"}}, {"text": "Hello back"}]'
chat "$TA" '{"conversation": "c1", "text": "hello"}'
like "POST /api/v1/chat streams: accepted, the turn's events, the reply" \
    "$(types)" "^accepted turn_start tool_start tool_end (text_delta )+reply $"
is "the reply is the model's" "$(data reply | jq -r .text)" "Hello back"
is "the message is in conversation api:alice:c1" \
    "$(data accepted | jq -r .conversation)" "api:alice:c1"
MID=$(data accepted | jq -r .message_id)
like "the turn ran in alice's sandbox" \
    "$(data tool_end | jq -r .output)" "agent-alice"
req GET /api/v1/conversations -H "Authorization: Bearer $TA"
is "GET /api/v1/conversations lists it" \
    "$(jq -r '.conversations[] | "\(.id) \(.sandbox) \(.messages) \(.pending)"' <<<"$BODY")" \
    "api:alice:c1 agent-alice 1 0"
req GET /api/v1/conversations/api:alice:c1/messages -H "Authorization: Bearer $TA"
is "its messages: alice's, then the agent's reply to it" \
    "$(jq -r '.messages[] | "\(.role) \(.text) \(.state // .in_reply_to)"' <<<"$BODY")" \
    "$(printf 'user hello done\nagent Hello back %s' "$MID")"
req GET /api/v1/conversations/api:alice:c1/messages -H "Authorization: Bearer $TB"
is "bob cannot read alice's conversation" "$CODE" 404
req GET /api/v1/conversations -H "Authorization: Bearer $TB"
is "… nor does he see it listed" "$(jq '.conversations | length' <<<"$BODY")" 0
chat "$TA" '{"conversation": "c1"}'
like "a message without text is refused" "$OUT" "bad_request"
chat "$TA" '{"conversation": "no spaces", "text": "x"}'
like "… as is a conversation name with spaces" "$OUT" "bad_request"
chat "$TA" '{"conversation": "c1", "text": '
like "malformed JSON is refused with a clear error" "$OUT" \
    '"code":"bad_json"'
chat "$TA" "{\"text\": \"$(head -c 70000 /dev/zero | tr '\0' x)\"}"
like "… and a text over 64 KiB" "$OUT" "up to 65536 bytes"
chat "not-a-token" '{"text": "hi"}'
like "a bad token is refused, no message stored" "$OUT" '"code":"invalid_credentials"'
req GET /api/v1/conversations/api:alice:c1/messages -H "Authorization: Bearer $TA"
is "… none of the refused messages was stored" \
    "$(jq '.messages | length' <<<"$BODY")" 2

# --- an attachment goes with the reply ---------------------------------------
script '[{"tool": "exec", "args": {"command": "echo report > /workspace/r.txt"}},
  {"tool": "send_attachment", "args": {"path": "r.txt"}}, {"text": "here it is"}]'
chat "$TA" '{"conversation": "c1", "text": "send me the report"}'
is "the reply event lists the attachment" \
    "$(data reply | jq -r '.attachments[0] | "\(.name) \(.path) \(.size)"')" \
    "r.txt /workspace/r.txt 7"
req GET /api/v1/conversations/api:alice:c1/messages -H "Authorization: Bearer $TA"
is "… and so does the stored reply" \
    "$(jq -r '.messages[-1].attachments[0].path' <<<"$BODY")" /workspace/r.txt
RID=$(jq -r '.messages[-1].id' <<<"$BODY")
req GET "/api/v1/conversations/api:alice:c1/attachments/$RID/0" \
    -H "Authorization: Bearer $TA"
is "GET …/attachments/REPLY/0 gives the file from the sandbox" \
    "$CODE $BODY" "200 report"
req GET "/api/v1/conversations/api:alice:c1/attachments/$RID/1" \
    -H "Authorization: Bearer $TA"
is "… only files the reply named" "$CODE" 404
req GET "/api/v1/conversations/api:alice:c1/attachments/$RID/0" \
    -H "Authorization: Bearer $TB"
is "… and only for the conversation's owner" "$CODE" 404

# --- memory across conversations, after the sandbox slept -----------------------
script '[{"tool": "memory_write", "args": {"text": "the boat is called Saltire"}},
  {"text": "noted"}]'
chat "$TA" '{"conversation": "m1", "text": "remember the boat"}'
is "a note is written in one conversation" "$(data reply | jq -r .text)" noted
pcli sandbox stop agent-alice >/dev/null 2>&1
is "the sandbox goes to sleep" "$(pcli sandbox list 2>/dev/null |
    awk '$1 == "agent-alice" { print $2 }')" sleeping
script '[{"tool": "memory_search", "args": {"query": "boat"}}, {"text": "found it"}]'
chat "$TA" '{"conversation": "m2", "text": "what is the boat called?"}'
like "another conversation finds it with memory_search, the sandbox woken" \
    "$(data tool_end | jq -r .output)" "the boat is called Saltire"

# --- an LLM error is a clear error reply ---------------------------------------
script '["400"]'
chat "$TA" '{"conversation": "c1", "text": "this fails"}'
is "an LLM error ends the stream with an error event" \
    "$(data error | jq -r .code)" llm
like "… that says what happened" "$(data error | jq -r .message)" \
    "The agent could not answer \\(llm\\): .*400"
req GET /api/v1/conversations/api:alice:c1/messages -H "Authorization: Bearer $TA"
is "… kept in the conversation as an error" \
    "$(jq -r '.messages[-1] | "\(.role) \(.kind)"' <<<"$BODY")" "agent error"
is "… and the message marked failed" \
    "$(jq -r '.messages[-2].state' <<<"$BODY")" failed

# --- the agent killed mid-turn --------------------------------------------------
N0=$(nreq)
script '[{"tool": "exec", "args": {"command": "kill -9 $PPID"}},
  {"text": "second try worked"}]'
chat "$TA" '{"conversation": "k1", "text": "crash once"}'
like "an agent killed mid-turn is run once more" "$(types)" " retry .*reply $"
is "… and the second run's reply arrives" "$(data reply | jq -r .text)" \
    "second try worked"
is "… after both runs called the model" "$(( $(nreq) - N0 ))" 2
script '[{"tool": "exec", "args": {"command": "kill -9 $PPID"}},
  {"tool": "exec", "args": {"command": "kill -9 $PPID"}}]'
chat "$TA" '{"conversation": "k2", "text": "crash twice"}'
is "killed twice, the turn ends with an error" "$(data error | jq -r .code)" \
    agent
like "… that says the agent stopped" "$(data error | jq -r .message)" \
    "stopped without answering \\(exit code 137\\)"
req GET /api/v1/conversations/api:alice:k2/messages -H "Authorization: Bearer $TA"
is "… the message is kept, and one error answers it" \
    "$(jq -r '[.messages[] | .role] | join(" ")' <<<"$BODY")" "user agent"

# --- a follow-up during a turn; two conversations at once ----------------------
script '[{"fake": "slow-first-byte=1500", "text": "first answer"},
  {"text": "answer to the follow-up"}]'
chat "$TA" '{"conversation": "f1", "text": "first"}' &
CP=$!
sleep 0.5
chat "$TA" '{"conversation": "f1", "text": "follow-up"}'
is "a follow-up sent during a turn gets the next turn's reply" \
    "$(data reply | jq -r .text)" "answer to the follow-up"
wait $CP
LAST=$(curl -s "$FAKE/_fake/requests" | jq -c '.[-1].body.messages | map(.content)')
like "… which saw the first turn in its history" "$LAST" \
    '"first","first answer","follow-up"'
script '[{"fake": "slow-first-byte=1500", "text": "x done"},
  {"fake": "slow-first-byte=1500", "text": "y done"}]'
T0=$(date +%s%N)
chat "$TA" '{"conversation": "px", "text": "x"}' &
CP=$!
chat "$TB" '{"conversation": "py", "text": "y"}'
wait $CP
T1=$(date +%s%N)
ok "two conversations run their turns at the same time (both in < 2.9 s)" \
    test $(( (T1 - T0) / 1000000 )) -lt 2900

# --- a turn out of time ------------------------------------------------------------
sed -i 's/"agent": {/"agent": { "turn_timeout_s": 5,/' "$PINCER_CONF"
kill -HUP "$PINCER_PID"
wait_log 'msg="config reloaded"' 5
script '["hang"]'
N0=$(nreq)
chat "$TA" '{"conversation": "slow", "text": "take forever"}'
is "a turn over agent.turn_timeout_s ends with an error" \
    "$(data error | jq -r .code)" agent
like "… that says it ran out of time" "$(data error | jq -r .message)" \
    "ran out of time"
is "… and is not run again" "$(( $(nreq) - N0 ))" 1
sed -i 's/"turn_timeout_s": 5,//' "$PINCER_CONF"
kill -HUP "$PINCER_PID"
wait_log 'msg="config reloaded"' 5 1

# --- agent.command: any program that speaks the turn protocol ---------------------
pcli sandbox exec agent-alice -- sh -c 'cat > /data/my-agent <<X
#!/bin/sh
read -r line
echo "{\"type\":\"text_delta\",\"text\":\"mine\"}"
echo "{\"type\":\"reply\",\"text\":\"from my own agent: \$1\"}"
X
chmod +x /data/my-agent' >/dev/null 2>&1
sed -i 's|"agent": {|"agent": { "command": "/data/my-agent",|' "$PINCER_CONF"
kill -HUP "$PINCER_PID"
wait_log 'msg="config reloaded"' 5 2
chat "$TA" '{"conversation": "own", "text": "hi"}'
is "agent.command runs another program for the turn" \
    "$(data reply | jq -r .text)" "from my own agent: turn"
like "… whose events stream like pincer-agent's" "$(types)" "text_delta reply"
sed -i 's|"command": "/data/my-agent",||' "$PINCER_CONF"
kill -HUP "$PINCER_PID"
wait_log 'msg="config reloaded"' 5 3

# --- pincerd killed mid-turn ------------------------------------------------------
script '[{"fake": "slow-first-byte=3000", "text": "lost with pincerd"},
  {"text": "answered after the restart"}]'
curl -sN --max-time 20 -H "Authorization: Bearer $TA" \
    -H 'Content-Type: application/json' \
    --data-binary '{"conversation": "r1", "text": "survive a crash"}' \
    "$PINCER_URL/api/v1/chat" >/dev/null 2>&1 &
CP=$!
sleep 1.2
kill -KILL "$PINCER_PID"
wait "$PINCER_PID" 2>/dev/null
pkill -KILL -f "pincer-sandbox --dir $PINCER_STATE_DIR" 2>/dev/null
LOG2="$T_LOGDIR/$T_NAME.restart.pincerd.log"
: >"$LOG2"
"$PINCER_BIN" serve --config "$PINCER_CONF" --state "$PINCER_STATE_DIR" \
    --listen 127.0.0.1:0 2>>"$LOG2" &
PINCER_PID=$!
T_PIDS="$T_PIDS $PINCER_PID"
wait_until 10 grep -q 'msg=listening' "$LOG2"
PINCER_URL="http://$(_t_addr "$LOG2")"
pending() {
	req GET /api/v1/conversations/api:alice:r1/messages \
	    -H "Authorization: Bearer $TA"
	[ "$(jq -r '[.messages[] | select(.role == "agent")] | length' <<<"$BODY")" = 1 ]
}
ok "after a restart, the cut turn runs again and answers" wait_until 30 pending
is "… exactly once, with the second run's reply" \
    "$(jq -r '[.messages[] | "\(.role) \(.text)"] | join(" / ")' <<<"$BODY")" \
    "user survive a crash / agent answered after the restart"
wait $CP

done_testing
