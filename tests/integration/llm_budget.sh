#!/bin/bash
# SPDX-License-Identifier: MIT
# llm_budget.sh: the default daily cap. A runaway caller (a heartbeat that
# has burnt 10 M tokens today) is stopped by the default budget with no
# budget configured at all; the day's use survives a restart (it is in
# the store); the owner raises the cap in the config and SIGHUP lets calls
# through again.
. "$TOP_SRCDIR/tests/integration/lib.sh"

unset PINCER_CONFIG PINCER_STATE PINCER_LISTEN
KEY="sk-budget-test-$(random_token)"
secret_register "$KEY"
ok "the fake provider starts" llm_fake_start "$KEY"
conf() {
	printf '{ "auth": { "argon2_memory_kib": 1024, "argon2_iterations": 1 },
	  "llm": { "providers": [ { "name": "oa", "kind": "openai",
	    "base_url": "%s/v1", "key": "fake_key" } ],
	    "routes": { "default": ["oa/gpt-4o"] }%s } }\n' "$FAKE" "$1"
}
pincer_start "$(conf '')" || { ok "pincerd starts" false; done_testing; }
printf '%s' "$KEY" | pcli secret set fake_key >/dev/null 2>&1
printf 'a long passphrase\n' | pcli user add al --role owner --password-stdin >/dev/null 2>&1
TOK=$(pcli token create --user al --scope llm,read --name t 2>/dev/null)
secret_register "$TOK"
chat() {
	req POST /llm/v1/chat/completions -H "Authorization: Bearer $TOK" \
	    --data-binary '{"model":"default","messages":[{"role":"user","content":"tick"}]}'
}
chat
is "with no budget in the config, a call passes" "$CODE" 200
pincer_stop
is "pincerd stops" "$PINCER_EXIT" 0

# A heartbeat burnt 10 M tokens today (as OpenClaw users have seen).
python3 - "$PINCER_STATE_DIR/pincer.db" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
db.execute("INSERT INTO llm_calls (ts_ms, caller, route, provider, model, "
    "in_tokens, out_tokens, cached_tokens, latency_ms, ttft_ms, status, "
    "cache_hit, stream, cost_usd) VALUES (?, 'sandbox:heartbeat', 'default', "
    "'oa', 'gpt-4o', 9999000, 1000, 0, 1, 1, 200, 0, 0, 0)",
    (int(time.time() * 1000),))
db.commit()
PY
is "a day's 10 M tokens are in the store" "$?" 0
N=$(curl -s "$FAKE/_fake/requests" | node -e 'process.stdout.write(String(JSON.parse(require("fs").readFileSync(0)).length))')
hand_start again "$PINCER_BIN" serve --config "$PINCER_CONF" --state "$PINCER_STATE_DIR" --listen 127.0.0.1:0
PINCER_URL="http://$H_ADDR"
PINCER_PID=$H_PID
chat
is "after a restart the default daily cap refuses: 429" "$CODE" 429
like "… naming the budget" "$BODY" 'daily token budget for all callers \(10000000 tokens\) is used up'
like "… with Retry-After until midnight UTC" "$HDRS" $'\n[Rr]etry-[Aa]fter: [1-9][0-9]*'
is "… and no call reached the provider" \
    "$(curl -s "$FAKE/_fake/requests" | node -e 'process.stdout.write(String(JSON.parse(require("fs").readFileSync(0)).length))')" "$N"

conf ', "budgets": [ { "caller": "all", "period": "day", "tokens": 20000000 } ]' >"$PINCER_CONF"
n=$(grep -c 'msg="config reloaded"' "$H_LOG")
kill -HUP "$H_PID"
reloaded() { [ "$(grep -c 'msg="config reloaded"' "$H_LOG")" -gt "$n" ]; }
ok "the owner raises the cap: SIGHUP reloads" wait_until 5 reloaded
chat
is "… and calls pass again" "$CODE" 200
hand_stop
is "pincerd exits 0" "$H_EXIT" 0
done_testing
