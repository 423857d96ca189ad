#!/bin/bash
# SPDX-License-Identifier: MIT
# llm_sandbox.sh: a real sandbox calls the LLM proxy at 127.0.0.1:8080
# with no credential; the gateway knows it by its socket, adds the
# provider's key on the way out, and counts the call under
# "sandbox:NAME". The key is nowhere in the sandbox or the log; the
# sandbox reaches nothing else (not the provider, not the REST API).
. "$TOP_SRCDIR/tests/integration/lib.sh"
. "$TOP_SRCDIR/tests/integration/sandbox_lib.sh"

if [ ! -x "$TOP_BUILDDIR/pincer-init" ]; then
	ok "pincer-init is built next to pincer" false
	done_testing
fi
KEY="sk-sandbox-test-$(random_token)"
secret_register "$KEY"
ok "the fake provider starts" llm_fake_start "$KEY"

pincer_start "{ $FAST, \"llm\": {
	\"providers\": [
		{ \"name\": \"oa\", \"kind\": \"openai\", \"base_url\": \"$FAKE/v1\",
		  \"key\": \"fake_key\", \"models\": [\"gpt-4o\"] },
		{ \"name\": \"an\", \"kind\": \"anthropic\", \"base_url\": \"$FAKE/v1\",
		  \"key\": \"fake_key\" } ],
	\"routes\": { \"default\": [\"oa/gpt-4o\"],
		\"claude\": [\"an/claude-sonnet-4-20250514\"] },
	\"rate_limit_rpm\": 0 } }" || { ok "pincerd starts" false; done_testing; }
printf '%s' "$KEY" | pcli secret set fake_key >/dev/null 2>&1
is "pincer secret set fake_key: exits 0" "$?" 0
PW=$(random_token)
secret_register "$PW"
printf '%s\n' "$PW" | pcli user add alice --role owner --password-stdin >/dev/null 2>&1
TOK=$(pcli token create --user alice --scope sandbox,read --name sbx 2>/dev/null)
secret_register "$TOK"
post "" '{"name":"llm1"}'
is "a sandbox is created" "$CODE" 201

CHAT='{"model":"default","messages":[{"role":"user","content":"from the sandbox"}]}'
run llm1 "curl -s -w '\n%{http_code}' http://127.0.0.1:8080/v1/chat/completions -H 'Content-Type: application/json' -d '$CHAT'"
like "inside, POST 127.0.0.1:8080/v1/chat/completions with no key: 200" "$OUT" $'\n200$'
like "… and the provider's answer" "$OUT" '"content":"echo: from the sandbox"'
REQS=$(curl -s "$FAKE/_fake/requests")
ok "the provider got the key the gateway added" jok "$REQS" \
    "o.length === 1 && o[0].headers.authorization === 'Bearer $KEY'"

run llm1 "curl -s -N http://127.0.0.1:8080/v1/chat/completions -H 'Content-Type: application/json' -d '{\"model\":\"default\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"a b c\"}]}'"
like "a streamed answer, in the sandbox" "$OUT" 'data: \[DONE\]'
like "… event by event" "$OUT" '"delta":\{"content":" c"\}'

AN='{"model":"claude","max_tokens":64,"messages":[{"role":"user","content":"hello claude"}]}'
run llm1 "curl -s http://127.0.0.1:8080/v1/messages -H 'anthropic-version: 2023-06-01' -H 'Content-Type: application/json' -d '$AN'"
like "Anthropic's messages API at the same address" "$OUT" '"text":"echo: hello claude"'
REQS=$(curl -s "$FAKE/_fake/requests")
ok "… with x-api-key added upstream" jok "$REQS" \
    "o.at(-1).headers['x-api-key'] === '$KEY'"

run llm1 "curl -s http://127.0.0.1:8080/v1/models"
like "GET /v1/models lists the routes" "$OUT" '"id":"default"'

# What the sandbox does not get.
run llm1 "env; cat /proc/1/environ 2>/dev/null | tr '\\0' '\\n'; grep -rs -l '$KEY' /etc /run /workspace /data /tmp /home 2>/dev/null; echo end"
unlike "the key is not in the sandbox's environment or files" "$OUT" "$KEY"
run llm1 "curl -s -m 2 -o /dev/null -w '%{http_code}' $FAKE/v1/models; echo \" rc=\$?\""
like "the sandbox cannot reach the provider itself" "$OUT" 'rc=[1-9]'
run llm1 "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/api/v1/sandboxes"
unlike "… nor the gateway's REST API through 8080" "$OUT" '^2'
run llm1 "curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $TOK' http://127.0.0.1:8080/api/v1/sandboxes"
unlike "… not even with a token it was handed" "$OUT" '^2'

LTOK=$(pcli token create --user alice --scope llm --name l 2>/dev/null)
secret_register "$LTOK"
req POST /v1/chat/completions -H "Authorization: Bearer $LTOK" \
    -H 'Content-Type: application/json' --data-binary "$CHAT"
is "on the public port /v1/… is not the proxy (it is /llm/v1/…)" "$CODE" 404

req GET '/api/v1/usage?group_by=caller' -H "Authorization: Bearer $TOK"
is "GET /api/v1/usage: 200" "$CODE" 200
ok "the sandbox's calls are counted under sandbox:llm1" jok "$BODY" \
    "o.rows.some(r => r.key === 'sandbox:llm1' && r.requests === 3 && r.input_tokens > 0)"

ok "the key is not in pincerd's log" test "$(grep -c -- "$KEY" "$PINCER_LOG")" = 0
pincer_stop
is "pincerd exits 0 on SIGTERM" "$PINCER_EXIT" 0
done_testing
