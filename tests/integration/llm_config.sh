#!/bin/bash
# SPDX-License-Identifier: MIT
# llm_config.sh: the llm section of the config checked as a whole by
# `pincer config check` (and at start and SIGHUP): providers, routes that
# name them, budgets; each error names what is wrong; a provider key is
# the name of a secret, never the key itself; the environment form.
. "$TOP_SRCDIR/tests/integration/lib.sh"

unset PINCER_CONFIG PINCER_STATE PINCER_LISTEN PINCER_LLM_PROVIDERS

run() {
	timeout 10 "$@" >"$T_TMP/run.out" 2>"$T_TMP/run.err"
	RC=$?
	OUT=$(cat "$T_TMP/run.out")
	ERR=$(cat "$T_TMP/run.err")
}
check() {
	printf '%s\n' "$1" >"$T_TMP/c.json"
	run "$PINCER_BIN" config check --config "$T_TMP/c.json"
}
fails() {
	like "$1" "$RC $(printf '%s' "$ERR" | tr '\n' ' ')" "^1 .*$2"
}
P='{ "name": "oa", "kind": "openai", "key": "openai_key", "models": ["gpt-4o"] }'

check "{ \"llm\": { \"providers\": [ $P,
	{ \"name\": \"local\", \"kind\": \"openai-compatible\",
	  \"base_url\": \"http://127.0.0.1:11434/v1\" },
	{ \"name\": \"an\", \"kind\": \"anthropic\", \"key\": \"anthropic_key\",
	  \"headers\": { \"cf-aig-authorization\": \"Bearer \${secret:cf_token}\" },
	  \"prices\": { \"claude-sonnet-4\": { \"input\": 3, \"output\": 15,
	    \"cached_input\": 0.3 } } } ],
	\"routes\": { \"default\": [\"oa/gpt-4o\", \"an/claude-sonnet-4\"],
	  \"local\": { \"targets\": [{ \"provider\": \"local\", \"model\": \"llama3\" }],
	    \"cache_ttl_s\": 600 },
	  \"router\": [\"local/meta-llama/llama-3-8b\"] },
	\"budgets\": [{ \"caller\": \"all\", \"period\": \"month\", \"usd\": 50 },
	  { \"caller\": \"sandbox:agent\", \"period\": \"day\", \"tokens\": 100000 }] } }"
is "a full llm section (OpenAI, Ollama, Anthropic via AI Gateway): valid" "$RC" 0

check "{ \"llm\": { \"providers\": [ $P ], \"routes\": { \"x\": [\"nope/gpt-4o\"] } } }"
fails "a route naming an unknown provider" 'no provider is named "nope"'
check "{ \"llm\": { \"providers\": [ $P, $P ] } }"
fails "two providers with one name" 'two providers are named "oa"'
check '{ "llm": { "providers": [ { "name": "x", "kind": "openai", "key": "sk-proj-abc123" } ] } }'
fails "a key that looks like a key, not a secret's name" 'name of a secret'
check '{ "llm": { "providers": [ { "name": "x", "kind": "gemini" } ] } }'
fails "an unknown kind" 'kind.*openai, anthropic or openai-compatible'
check '{ "llm": { "providers": [ { "name": "x", "kind": "openai-compatible" } ] } }'
fails "openai-compatible without base_url" 'base_url.*no default'
check '{ "llm": { "providers": [ { "name": "x", "kind": "openai", "base_url": "ftp://h" } ] } }'
fails "a base_url that is not http(s)" 'http:// or https://'
check "{ \"llm\": { \"providers\": [ $P ], \"routes\": { \"x\": [] } } }"
fails "an empty route" 'non-empty list'
check "{ \"llm\": { \"providers\": [ $P ], \"routes\": { \"x\": [\"oa\"] } } }"
fails "a target without a model" 'PROVIDER/MODEL'
check '{ "llm": { "providers": [ { "name": "x", "kind": "openai", "tiemout_ms": 5 } ] } }'
fails "a misspelt field" 'unknown field "tiemout_ms"'
check '{ "llm": { "providers": [ { "name": "x", "kind": "openai", "timeout_ms": 5 } ] } }'
fails "timeout_ms out of range" 'timeout_ms.*100 to 3600000'
check '{ "llm": { "providers": [ { "name": "x", "kind": "openai", "headers": { "a": 1 } } ] } }'
fails "a header value that is not a string" 'headers'
check '{ "llm": { "providers": [ { "name": "x", "kind": "openai", "prices": { "m": { "input": 1 } } } ] } }'
fails "a price without output" 'prices'
check '{ "llm": { "budgets": [ { "caller": "all", "period": "week", "tokens": 5 } ] } }'
fails "a budget period that is not day or month" 'day.*month'
check '{ "llm": { "budgets": [ { "caller": "all", "period": "day" } ] } }'
fails "a budget with no cap" 'tokens.*usd'
check '{ "llm": { "budgets": [ { "caller": "bob", "period": "day", "tokens": 5 } ] } }'
fails "a budget caller that is not all, each, user: or sandbox:" 'caller'
check '{ "llm": { "providers": {} } }'
fails "providers that are not a list" 'llm.providers: expected JSON: an array'
check '{ "llm": { "rate_limit_rpm": -1 } }'
fails "a negative rate limit" 'llm.rate_limit_rpm'

printf '{}\n' >"$T_TMP/e.json"
PINCER_LLM_PROVIDERS="[$P]" PINCER_LLM_ROUTES='{"d":["oa/gpt-4o"]}' \
    run "$PINCER_BIN" config check --config "$T_TMP/e.json"
is "providers and routes from the environment (JSON): valid" "$RC" 0
PINCER_LLM_ROUTES='{"d":["zz/gpt-4o"]}' \
    run "$PINCER_BIN" config check --config "$T_TMP/e.json"
fails "… and checked as well" 'no provider is named "zz"'
PINCER_LLM_PROVIDERS='[{' run "$PINCER_BIN" config check --config "$T_TMP/e.json"
fails "… broken JSON in the environment" 'PINCER_LLM_PROVIDERS'

run "$PINCER_BIN" config options
like "pincer config options documents llm.providers" "$OUT" 'llm\.providers'
like "… and the default daily budget" "$OUT" '"tokens":10000000'

# SIGHUP: new routes apply at once; a bad llm section keeps the old ones.
routes() {
	printf '{ "auth": { "argon2_memory_kib": 1024, "argon2_iterations": 1 },
	  "llm": { "providers": [ %s ], "routes": { %s } } }\n' "$P" "$1"
}
pincer_start "$(routes '"first": ["oa/gpt-4o"]')" ||
    { ok "pincerd starts" false; done_testing; }
printf 'a long passphrase\n' | pcli user add al --role owner --password-stdin >/dev/null 2>&1
TOK=$(pcli token create --user al --scope llm --name t 2>/dev/null)
secret_register "$TOK"
models() { curl -s -H "Authorization: Bearer $TOK" "$PINCER_URL/llm/v1/models"; }
like "GET /llm/v1/models lists the route of the config" "$(models)" '"id":"first"'
hup() {
	local n
	n=$(log_count "$1")
	kill -HUP "$PINCER_PID"
	wait_log "$1" 5 "$n"
}
routes '"second": ["oa/gpt-4o"]' >"$PINCER_CONF"
ok "SIGHUP with a new route: config reloaded" hup 'msg="config reloaded"'
like "… the new route is served at once" "$(models)" '"id":"second"'
unlike "… and the old one is gone" "$(models)" '"id":"first"'
routes '"third": ["ghost/gpt-4o"]' >"$PINCER_CONF"
ok "SIGHUP with a route to no provider: the reload fails" \
    hup 'msg="config reload failed; keeping the running config"'
like "… and the running routes stay" "$(models)" '"id":"second"'
pincer_stop
is "pincerd exits 0 on SIGTERM" "$PINCER_EXIT" 0

# A bad llm section stops pincerd at start.
printf '{ "llm": { "routes": { "x": ["nope/m"] } } }\n' >"$T_TMP/bad.json"
run "$PINCER_BIN" serve --config "$T_TMP/bad.json" --state "$T_TMP/st" --listen 127.0.0.1:0
like "pincer serve refuses a bad llm section (exit 2)" \
    "$RC $(printf '%s' "$ERR" | tr '\n' ' ')" '^2 .*no provider is named "nope"'
done_testing
