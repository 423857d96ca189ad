#!/bin/bash
# SPDX-License-Identifier: MIT
# llm_provider_test.sh: POST /api/v1/llm/providers/{name}/test against the
# fake provider: the right key (ok, the provider's model), a wrong key (the
# provider's 401 in words, the key nowhere), no key set, unreachable, a
# provider that hangs (the timeout), a key changed a moment ago is the one
# tested; an unknown provider 404, GET 405, a member or a token without
# the admin scope 403; the audit log names each test.
. "$TOP_SRCDIR/tests/integration/lib.sh"

unset PINCER_CONFIG PINCER_STATE PINCER_LISTEN
KEY="sk-test-right-$(random_token)"
BAD="sk-test-wrong-$(random_token)"
secret_register "$KEY"
secret_register "$BAD"
ok "the fake provider starts" llm_fake_start "$KEY"
conf=$(printf '{ "auth": { "argon2_memory_kib": 1024, "argon2_iterations": 1 },
  "llm": { "providers": [
    { "name": "oa", "kind": "openai", "base_url": "%s/v1", "key": "oa_key",
      "models": ["gpt-4o-mini"] },
    { "name": "an", "kind": "anthropic", "base_url": "%s/v1",
      "key": "an_key" },
    { "name": "bad", "kind": "openai", "base_url": "%s/v1",
      "key": "bad_key" },
    { "name": "nokey", "kind": "openai", "base_url": "%s/v1",
      "key": "never_set" },
    { "name": "gone", "kind": "openai-compatible",
      "base_url": "http://127.0.0.1:1/v1" },
    { "name": "slow", "kind": "openai", "base_url": "%s/v1",
      "key": "oa_key", "timeout_ms": 300 } ] } }' \
    "$FAKE" "$FAKE" "$FAKE" "$FAKE" "$FAKE")
pincer_start "$conf" || { ok "pincerd starts" false; done_testing; }
printf '%s' "$KEY" | pcli secret set oa_key >/dev/null 2>&1
printf '%s' "$KEY" | pcli secret set an_key >/dev/null 2>&1
printf '%s' "$BAD" | pcli secret set bad_key >/dev/null 2>&1
printf 'a long passphrase\n' | pcli user add al --role owner \
    --password-stdin >/dev/null 2>&1
printf 'a long passphrase\n' | pcli user add mo --role member \
    --password-stdin >/dev/null 2>&1
ADM=$(pcli token create --user al --scope admin --name t 2>/dev/null)
RD=$(pcli token create --user al --scope read,llm --name r 2>/dev/null)
MEM=$(pcli token create --user mo --scope read,llm --name m 2>/dev/null)
secret_register "$ADM"
secret_register "$RD"
secret_register "$MEM"
ptest() {
	req POST "/api/v1/llm/providers/$1/test" \
	    -H "Authorization: Bearer ${2:-$ADM}"
}

ptest oa
is "the right key: 200" "$CODE" 200
json_check "$BODY" 'o.ok === true && o.status === 200 &&
    o.model === "gpt-4o-mini" && o.latency_ms >= 0 &&
    /provider oa answered 200/.test(o.message)'
is "… ok, the status, the model it offers, the latency, words" "$?" 0
unlike "… and no key in the answer" "$BODY" "$KEY"
last=$(curl -s "$FAKE/_fake/requests" | node -e '
	const r = JSON.parse(require("fs").readFileSync(0)).at(-1);
	process.stdout.write(`${r.method} ${r.path}`)')
is "… one GET of the models reached the provider" "$last" "GET /v1/models"

ptest an
json_check "$BODY" 'o.ok === true && o.status === 200'
is "an Anthropic provider: ok (x-api-key, anthropic-version)" "$?" 0

ptest bad
is "a wrong key: still 200 (the test ran)" "$CODE" 200
json_check "$BODY" 'o.ok === false && o.status === 401 &&
    /provider bad answered 401: Incorrect API key provided/.test(o.message)'
is "… ok false, the provider's 401 and its words" "$?" 0
unlike "… and no part of the wrong key" "$BODY" "${BAD:14}"
like "… not even the four characters the provider left unmasked" \
    "$BODY" 'provided: sk-\*+\. You can'

printf '%s' "$KEY" | pcli secret set bad_key >/dev/null 2>&1
ptest bad
json_check "$BODY" 'o.ok === true'
is "the key set right a moment later is the one tested" "$?" 0

ptest nokey
json_check "$BODY" 'o.ok === false && o.status === 0 &&
    /secret "never_set", is not set/.test(o.message)'
is "no key set: ok false, says which secret is missing" "$?" 0

ptest gone
json_check "$BODY" 'o.ok === false && o.status === 0 &&
    /provider gone could not be reached at http:\/\/127.0.0.1:1\/v1\/models/
    .test(o.message)'
is "unreachable: ok false, the URL and why" "$?" 0

curl -s -o /dev/null -X POST "$FAKE/_fake/script" \
    -H 'Content-Type: application/json' --data-binary '["hang"]'
ptest slow
json_check "$BODY" 'o.ok === false &&
    /provider slow did not answer within 300 ms/.test(o.message)'
is "a provider that hangs: ok false, the timeout in words" "$?" 0
curl -s -o /dev/null -X POST "$FAKE/_fake/reset"

ptest nosuch
is "an unknown provider: 404" "$CODE" 404
like "… in words" "$BODY" 'no LLM provider is named \\"nosuch\\"'
req GET /api/v1/llm/providers/oa/test -H "Authorization: Bearer $ADM"
is "GET: 405" "$CODE" 405
ptest oa "$RD"
is "a token without the admin scope: 403" "$CODE" 403
ptest oa "$MEM"
is "a member: 403" "$CODE" 403
req POST /api/v1/llm/providers/oa/test
is "no credential: 401" "$CODE" 401

req GET /api/v1/audit -H "Authorization: Bearer $ADM"
json_check "$BODY" 'o.entries.filter((e) =>
    e.action === "llm_provider_test").length === 7 &&
    o.entries.some((e) => e.action === "llm_provider_test" &&
    e.target === "bad" && e.detail === "failed")'
is "the audit log has each test, its provider and outcome" "$?" 0
pincer_stop
is "pincerd exits 0" "$PINCER_EXIT" 0
done_testing
