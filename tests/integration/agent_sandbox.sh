#!/bin/bash
# SPDX-License-Identifier: MIT
# agent_sandbox.sh: pincer-agent where it is meant to run. Every sandbox
# gets pincer-agent and the bundled skills read-only under /opt/pincer;
# a turn run there calls the LLM proxy at 127.0.0.1:8080 with no key
# (the gateway adds it), runs its tools inside the sandbox, keeps its
# history in /data, and is counted under "sandbox:NAME".
. "$TOP_SRCDIR/tests/integration/lib.sh"
. "$TOP_SRCDIR/tests/integration/sandbox_lib.sh"

if [ ! -x "$TOP_BUILDDIR/pincer-init" ] || [ ! -x "$TOP_BUILDDIR/pincer-agent" ]
then
	ok "pincer-init and pincer-agent are built next to pincer" false
	done_testing
fi
KEY="sk-agent-sbx-$(random_token)"
secret_register "$KEY"
ok "the fake provider starts" llm_fake_start "$KEY"
pincer_start "{ $FAST, \"agent\": { \"skills_dir\": \"$TOP_SRCDIR/skills\" },
  \"llm\": { \"providers\": [ { \"name\": \"oa\", \"kind\": \"openai\",
	\"base_url\": \"$FAKE/v1\", \"key\": \"fake_key\" } ],
	\"routes\": { \"default\": [\"oa/gpt-4o\"] }, \"rate_limit_rpm\": 0 } }" ||
    { ok "pincerd starts" false; done_testing; }
printf '%s' "$KEY" | pcli secret set fake_key >/dev/null 2>&1
printf 'a long passphrase\n' | pcli user add al --role owner --password-stdin \
    >/dev/null 2>&1
TOK=$(pcli token create --user al --scope sandbox,read --name t 2>/dev/null)
secret_register "$TOK"
post "" '{"name":"ag1"}'
is "a sandbox is created" "$CODE" 201

run ag1 'ls -l /opt/pincer; test -x /opt/pincer/pincer-agent && echo exe'
like "pincer-agent is in the sandbox at /opt/pincer" "$OUT" "exe"
like "… beside the bundled skills" "$OUT" "skills"
run ag1 'cat /opt/pincer/skills/memory/SKILL.md | head -2'
like "the skills are readable" "$OUT" "name: memory"
run ag1 'touch /opt/pincer/pincer-agent /opt/pincer/skills/x 2>&1; echo rc=$?'
like "… and read-only" "$OUT" "Read-only file system"

curl -s -o /dev/null -X POST "$FAKE/_fake/script" \
    -H 'Content-Type: application/json' --data-binary \
    '[{"tool": "exec", "args": {"command": "hostname; id -u; echo made > /workspace/w.txt"}},
      {"tool": "memory_write", "args": {"text": "ran inside the sandbox"}},
      {"text": "All done inside."}]'
IN='{"conversation": "s1", "text": "do it in the sandbox"}'
# Built with --enable-asan, LeakSanitizer cannot run where ptrace is
# refused (the sandbox); agent_turn.sh checks pincer-agent's leaks.
post /ag1/exec "{\"cmd\":[\"/opt/pincer/pincer-agent\",\"turn\"],\"stdin\":$(js "$IN"),\"timeout_ms\":60000,\"env\":{\"ASAN_OPTIONS\":\"detect_leaks=0\"}}"
is "pincer-agent turn runs in the sandbox" "$CODE" 200
OUT=$(jv "$BODY" o.stdout)
is "… and exits 0" "$(jv "$BODY" o.exit_code)" 0
REPLY=$(printf '%s\n' "$OUT" | tail -n 1)
is "… ending with its reply" "$(jq -r .type <<<"$REPLY")" reply
is "… the model's text" "$(jq -r .text <<<"$REPLY")" "All done inside."
like "its exec tool ran in the sandbox (its hostname, uid 0 there)" \
    "$(printf '%s\n' "$OUT" | jq -r 'select(.type == "tool_end") | .output' | head -5)" \
    $'ag1\n0'
REQS=$(curl -s "$FAKE/_fake/requests")
is "the proxy called the provider 3 times" "$(jq length <<<"$REQS")" 3
is "… with the key the gateway added" \
    "$(jq -r '[.[].headers.authorization] | unique | join(",")' <<<"$REQS")" \
    "Bearer $KEY"
like "… and the bundled skills in the system prompt" \
    "$(jq -r '.[0].body.messages[0].content' <<<"$REQS")" \
    "- skill-creator: .*/opt/pincer/skills/skill-creator/SKILL.md"
run ag1 'cat /workspace/w.txt; ls /data; cat /data/memory/*.md'
like "the tool's file is in the workspace" "$OUT" "made"
like "the history is in /data/agent.db" "$OUT" "agent.db"
like "… and the memory note in /data/memory" "$OUT" "ran inside the sandbox"
run ag1 "grep -rs -l '$KEY' /data /workspace /tmp; echo end"
unlike "the key is nowhere in the sandbox's files" "$OUT" "$KEY"

req GET '/api/v1/usage?group_by=caller' -H "Authorization: Bearer $TOK"
ok "the turn's calls are counted under sandbox:ag1" jok "$BODY" \
    "o.rows.some(r => r.key === 'sandbox:ag1' && r.requests === 3)"

done_testing
