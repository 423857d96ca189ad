#!/bin/bash
# SPDX-License-Identifier: MIT
# channel_generic.sh: the signed webhook channel, and through it what every
# channel shares (gateway/channel.c, chan_out.c, chan_pair.c): a signed
# message is stored before the answer and gets exactly one reply, POSTed
# to the callback and signed; a bad or missing signature, a malformed and
# an oversized body are refused without a turn; a replayed request is a
# duplicate; a 429 from the receiver delays the reply, which then arrives
# once; a long reply is split in order; pairing: a stranger gets a code,
# nothing they said is processed, the owner approves it with the CLI and
# the API lists it, at most 3 codes are pending; crash tests: pincerd
# killed right after acknowledging, and again while a reply is pending,
# answers every message exactly once.
. "$TOP_SRCDIR/tests/integration/lib.sh"
. "$TOP_SRCDIR/tests/integration/channel_lib.sh"

HOOK_SECRET="whsec-$(random_token)"
platform_fake_start || ok "the fake platforms start" false
CH='[{ "name": "home", "kind": "generic", "secret": "home_hook",
	"callback_url": "'"$PLAT"'/generic/home" },
      { "name": "strict", "kind": "generic", "secret": "home_hook",
	"dm_policy": "pairing", "callback_url": "'"$PLAT"'/generic/strict" }]'
chan_start "$CH" || { ok "pincerd starts" false; done_testing; }
like "pincer doctor: a channel's secret not set is a failure, with the fix" \
    "$(pcli doctor 2>&1)" "FAIL +channels +home: secret names the secret home_hook, which is not set"
chan_secret home_hook "$HOOK_SECRET"
like "… and once set, OK" "$(pcli doctor 2>&1)" "OK +channels +home \(generic\): its secrets are set"

sign() {
	printf '%s' "$1" | openssl dgst -sha256 -hmac "$HOOK_SECRET" -r |
	    cut -d' ' -f1
}
# hook NAME BODY [SIG]: POST /hooks/generic/NAME signed (or with SIG).
hook() {
	local sig=${3-sha256=$(sign "$2")}
	req POST "/hooks/generic/$1" -H 'Content-Type: application/json' \
	    ${sig:+-H "X-Pincer-Signature: $sig"} --data-binary "$2"
}
inbox() { chan_sql "select count(*) from inbox"; }
replies() { plat_calls generic | jq -c "[.[] | select(.path == \"/generic/$1\")]"; }
nreplies() { replies "$1" | jq length; }
wait_replies() { wait_until "${3:-30}" _nrep "$1" "$2"; }
_nrep() { [ "$(nreplies "$1")" -ge "$2" ]; }

# --- one signed message, one reply ----------------------------------------
hook home '{"id": "m1", "text": "hello there", "sender": "ha"}'
is "a signed message is taken" "$CODE" 200
is "… and it is in the inbox when the answer comes" "$(inbox)" 1
ok "the reply is POSTed to the callback" wait_replies home 1
R=$(replies home)
is "… once, with the agent's answer" \
    "$(jq -r '.[0].json | "\(.text) \(.conversation) \(.in_reply_to)"' <<<"$R")" \
    "echo: hello there default m1"
SIG=$(jq -r '.[0].headers["x-pincer-signature"]' <<<"$R")
is "… signed with the hook's secret over the body" "$SIG" \
    "sha256=$(sign "$(jq -r '.[0].body' <<<"$R")")"
is "the outbox row is sent, with the receiver's id" \
    "$(chan_sql "select state, parts_sent, platform_id is not null from outbox")" \
    "sent|1|1"
sleep 1
is "… and it was sent once" "$(nreplies home)" 1

# --- refusals: nothing stored, no turn --------------------------------------
hook home '{"id": "bad1", "text": "forged"}' "sha256=$(printf '0%.0s' $(seq 64))"
is "a wrong signature is 401" "$CODE" 401
hook home '{"id": "bad2", "text": "unsigned"}' ""
is "a missing signature is 401" "$CODE" 401
hook home '{"id": "bad3", "text": "x"}' "sha1=abc"
is "another scheme is 401" "$CODE" 401
hook home '{"id": "bad4", "text": '
is "a malformed body is 400" "$CODE" 400
like "… saying what is wrong" "$BODY" 'with a .*text'
hook home '{"id": "bad5"}'
is "a body without text is 400" "$CODE" 400
head -c 1100000 /dev/zero | tr '\0' a >"$T_TMP/big"
BIG="{\"text\": \"$(cat "$T_TMP/big")\"}"
printf '%s' "$BIG" >"$T_TMP/big.json"
req POST /hooks/generic/home -H 'Content-Type: application/json' \
    -H "X-Pincer-Signature: sha256=$(sign "$BIG")" \
    --data-binary @"$T_TMP/big.json"
is "an oversized body is 413" "$CODE" 413
req POST /hooks/generic/nosuch -H 'Content-Type: application/json' \
    --data-binary '{"text": "x"}'
is "a hook nobody configured is 404" "$CODE" 404
is "none of them reached the inbox" "$(inbox)" 1
like "a refusal is logged with its reason" "$(cat "$PINCER_LOG")" \
    'msg="webhook refused".*does not match the body'

# --- replays are duplicates ---------------------------------------------------
hook home '{"id": "m1", "text": "hello there", "sender": "ha"}'
is "the same id again is taken (200)" "$CODE" 200
B='{"text": "no id, known by its hash"}'
hook home "$B"
hook home "$B"
is "… and a body without id, twice, is one message" "$(inbox)" 2
ok "its reply comes" wait_replies home 2
sleep 1
is "each message got exactly one reply" "$(nreplies home)" 2

# --- a 429 from the receiver: later, once -----------------------------------
plat_script '{"platform": "generic", "faults": ["429=2"]}'
hook home '{"id": "m3", "conversation": "c3", "text": "rate limited"}'
ok "after a 429 the reply comes" wait_replies home 4 30
R=$(replies home)
is "… first refused, then delivered" \
    "$(jq -r '[.[2:][] | .json.text] | join(" / ")' <<<"$R")" \
    "echo: rate limited / echo: rate limited"
T1=$(jq '.[2].at' <<<"$R")
T2=$(jq '.[3].at' <<<"$R")
ok "… no sooner than Retry-After (2 s)" [ $((T2 - T1)) -ge 1900 ]
like "the wait is logged" "$(cat "$PINCER_LOG")" 'reply will be sent again.*HTTP 429'
sleep 1
is "… and only once" "$(replies home | jq '[.[] | select(.json.conversation == "c3")] | length')" 2

# --- a long reply is split in order -----------------------------------------
LONG=$(for i in $(seq 1 30000); do printf 'w%d ' "$i"; done)
llm_script "[{\"text\": \"$LONG\"}]"
hook home '{"id": "m4", "conversation": "c4", "text": "say a lot"}'
c4() { replies home | jq '[.[] | select(.json.conversation == "c4")]'; }
_c4n() { [ "$(c4 | jq length)" -ge "$1" ]; }
ok "a reply over the kind's limit (100000) comes in parts" wait_until 30 _c4n 2
sleep 1
P=$(c4)
is "… two parts, in order" "$(jq -r '[.[].json.part] | join(",")' <<<"$P")" "0,1"
is "… nothing lost or doubled" \
    "$(jq -r '[.[].json.text] | join(" ")' <<<"$P" | tr -s ' ' | wc -w)" 30000
like "… cut at a space" "$(jq -r '.[0].json.text' <<<"$P" | tail -c 12)" 'w[0-9]+$'

# --- files in and out ---------------------------------------------------------
F64=$(printf 'file from the hook\n' | base64 -w0)
hook home "{\"id\": \"f1\", \"conversation\": \"f1\", \"text\": \"see the file\",
  \"files\": [{\"name\": \"../../note 1.txt\", \"base64\": \"$F64\"}]}"
f1() { replies home | jq '[.[] | select(.json.conversation == "f1")]'; }
_f1n() { [ "$(f1 | jq length)" -ge "$1" ]; }
ok "a message with a file is answered" wait_until 30 _f1n 1
FP=$(f1 | jq -r '.[0].json.text' | grep -o '/workspace/inbox/[^ ]*')
like "… the agent is told where the file is, its name made safe" "$FP" \
    '^/workspace/inbox/[0-9]+-[^/]*note_1\.txt$'
is "… and the file is there, in the sandbox" \
    "$(pcli sandbox exec agent-alice -- cat "$FP" 2>&1)" "file from the hook"
llm_script '[{"tool": "exec", "args": {"command": "printf report > /workspace/r.txt"}},
  {"tool": "send_attachment", "args": {"path": "r.txt", "caption": "the report"}},
  {"text": "here it is"}]'
hook home '{"id": "f2", "conversation": "f2", "text": "send me the report"}'
f2() { replies home | jq '[.[] | select(.json.conversation == "f2")]'; }
_f2n() { [ "$(f2 | jq length)" -ge "$1" ]; }
ok "a reply with a file is sent: its text, then the file" wait_until 30 _f2n 2
is "… the file's name, caption and bytes" \
    "$(f2 | jq -r '.[1].json.file | "\(.name) \(.caption) \(.base64 | @base64d)"')" \
    "r.txt the report report"

# --- pairing ------------------------------------------------------------------
N0=$(inbox)
hook strict '{"id": "p1", "sender": "stranger", "conversation": "s1", "text": "let me in"}'
is "a stranger's message is answered 200" "$CODE" 200
ok "… with a pairing code sent back" wait_replies strict 1
CODE8=$(replies strict | jq -r '.[0].json.text' | grep -o 'code is [A-Z0-9]*' | cut -d' ' -f3)
like "… 8 characters" "$CODE8" '^[A-HJ-NP-Z2-9]{8}$'
is "… and nothing they said reached the inbox" "$(inbox)" "$N0"
hook strict '{"id": "p2", "sender": "stranger", "conversation": "s1", "text": "hello?"}'
sleep 1.5
is "a second message within 10 minutes gets no second code" "$(nreplies strict)" 1
L=$(pcli pairing list strict)
is "pincer pairing list shows it pending" \
    "$(jq -r '.[0] | "\(.peer) \(.state) \(.code)"' <<<"$L")" "stranger pending $CODE8"
TOK=$(pcli token create --user alice --scope admin --name t 2>/dev/null)
secret_register "$TOK"
req GET /api/v1/pairing -H "Authorization: Bearer $TOK"
is "GET /api/v1/pairing lists it too" "$(jq -r '.peers[0].code' <<<"$BODY")" "$CODE8"
for s in s2 s3 s4; do
	hook strict "{\"id\": \"x$s\", \"sender\": \"$s\", \"conversation\": \"$s\", \"text\": \"hi\"}"
done
ok "two more strangers get codes" wait_replies strict 3
sleep 1.5
is "… the fourth gets none: 3 pending at most" "$(nreplies strict)" 3
req GET /api/v1/audit -H "Authorization: Bearer $TOK"
like "the audit log has the requests and the refusal" \
    "$(jq -r '[.entries[]?.action // .[]?.action] | join(" ")' <<<"$BODY")" \
    'pairing.ignored.*pairing.request|pairing.request.*pairing.ignored'
out=$(pcli pairing approve strict WRONG123 2>&1)
is "approving a wrong code fails" "$?" 1
like "… saying so" "$out" 'no pending pairing code'
ok "pincer pairing approve takes the right code" pcli pairing approve strict "$CODE8"
ok "the stranger is told" wait_replies strict 4
like "… that they are approved" "$(replies strict | jq -r '.[3].json.text')" approved
hook strict '{"id": "p3", "sender": "stranger", "conversation": "s1", "text": "now?"}'
ok "now their message gets a turn and a reply" wait_replies strict 5
is "… the agent's" "$(replies strict | jq -r '.[4].json.text')" "echo: now?"
is "… and what they said before approval was never processed" \
    "$(chan_sql "select count(*) from inbox where text like '%let me in%'")" 0
req GET /api/v1/audit -H "Authorization: Bearer $TOK"
like "the approval is in the audit log" "$BODY" 'pairing.approve'

# --- crash: killed right after acknowledging --------------------------------
llm_script '[{"fake": "slow-first-byte=4000", "text": "first answer"}]'
hook home '{"id": "k1", "conversation": "k1", "text": "crash after ack"}'
is "a message is acknowledged" "$CODE" 200
ok "pincerd killed (SIGKILL) and started again" chan_crash
k1() { replies home | jq '[.[] | select(.json.conversation == "k1")] | length'; }
_k1() { [ "$(k1)" -ge 1 ]; }
ok "the acknowledged message is answered after the restart" wait_until 40 _k1
sleep 1.5
is "… exactly once" "$(k1)" 1

# --- crash: killed while a reply is pending ---------------------------------
plat_script '{"platform": "generic", "faults": ["500", "500", "500", "500", "500"]}'
hook home '{"id": "k2", "conversation": "k2", "text": "crash while pending"}'
pend() { [ "$(chan_sql "select o.attempts from outbox o join inbox i on i.id = o.inbox_id where i.event_id = 'home:k2'")" -ge 1 ] 2>/dev/null; }
ok "its reply is pending (the receiver failed)" wait_until 30 pend
ok "pincerd killed (SIGKILL) and started again" chan_crash
curl -s -o /dev/null -X POST "$PLAT/_fake/reset"
k2() { replies home | jq '[.[] | select(.json.conversation == "k2")] | length'; }
_k2() { [ "$(k2)" -ge 1 ]; }
ok "the pending reply is sent after the restart" wait_until 40 _k2
sleep 1.5
is "… once" "$(k2)" 1
is "every message has its reply sent" \
    "$(chan_sql "select count(*) from outbox where state != 'sent'")" 0
is "… and no message waits" \
    "$(chan_sql "select count(*) from inbox where state != 'done'")" 0

# --- SIGHUP: channels need a restart ---------------------------------------
jq '.channels[0].callback_url = "http://127.0.0.1:9/nowhere"' "$PINCER_CONF" \
    >"$T_TMP/conf" && cp "$T_TMP/conf" "$PINCER_CONF"
kill -HUP "$PINCER_PID"
ok "SIGHUP with other channels warns that they need a restart" \
    wait_until 10 grep -q 'needs a restart.*channels changed' "$PINCER_LOG"
hook home '{"id": "h1", "conversation": "h1", "text": "after the reload"}'
h1() { replies home | jq '[.[] | select(.json.conversation == "h1")] | length'; }
_h1() { [ "$(h1)" -ge 1 ]; }
ok "… and the running channels go on as they were" wait_until 30 _h1

done_testing
