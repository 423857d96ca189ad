#!/bin/bash
# SPDX-License-Identifier: MIT
# api_config.sh: GET/PUT /api/v1/config and /api/v1/secrets (issue 11,
# the Settings page's API). GET shows the file, its etag and the options
# table with the values in effect; PUT checks a new config as the file is
# checked at start, writes it atomically (0600, the old one kept as .bak)
# and applies it as SIGHUP does; an invalid one names every wrong option
# and leaves the file alone; If-Match guards against a lost update. Only
# an admin may; a secret's value goes in and never comes out (list, log,
# audit log, database).
. "$TOP_SRCDIR/tests/integration/lib.sh"

unset PINCER_CONFIG PINCER_STATE PINCER_LISTEN
FAST='"auth": { "argon2_memory_kib": 1024, "argon2_iterations": 1 }'
UI="\"admin_ui\": { \"dir\": \"$TOP_SRCDIR/admin-ui\" }"

head -c 3000 /dev/zero | tr '\0' a >"$T_TMP/b3000"
head -c 5000 /dev/zero | tr '\0' b >"$T_TMP/b5000"
# post SIZE: POST SIZE bytes to /healthz; 413 over http.max_body_bytes,
# else 405 (the route has no POST).
post() {
	curl -s -o /dev/null -w '%{http_code}' -H 'Expect:' \
	    --data-binary @"$T_TMP/b$1" "$PINCER_URL/healthz"
}
# as TOKEN METHOD PATH [CURL ARGS]: a request with a bearer token.
as() {
	local t=$1 m=$2 p=$3
	shift 3
	req "$m" "$p" -H "Authorization: Bearer $t" "$@"
}
# put_conf JSON [ETAG]: PUT /api/v1/config as the admin.
put_conf() {
	as "$ADM" PUT /api/v1/config -H 'Content-Type: application/json' \
	    ${2:+-H "If-Match: $2"} --data-binary "$1"
}
sha() { sha256sum "$1" | cut -d' ' -f1; }
jget() {
	node -e 'const o = JSON.parse(process.argv[1]);
		const v = eval(process.argv[2]);
		process.stdout.write(typeof v === "string" ? v : JSON.stringify(v))' \
	    "$1" "$2"
}

# A variable of the environment wins over the file: GET says so.
if ! PINCER_HTTP_RATE_LIMIT_BURST=300 pincer_start "{ $UI, $FAST }"; then
	ok "pincerd starts" false
	done_testing
fi
PW=$(random_token)
secret_register "$PW"
printf '%s\n' "$PW" | pcli user add alice --role owner --password-stdin >/dev/null 2>&1
printf '%s\n' "$PW" | pcli user add bob --role member --password-stdin >/dev/null 2>&1
ADM=$(pcli token create --user alice --scope admin --name settings 2>/dev/null)
RD=$(pcli token create --user alice --scope read --name reader 2>/dev/null)
secret_register "$ADM"
secret_register "$RD"
# bob, a member, signs in (the CLI gives a member no admin-scope token).
req POST /api/v1/auth/login -H 'Content-Type: application/json' \
    --data-binary "{\"username\":\"bob\",\"password\":\"$PW\"}"
MEM=$(printf '%s\n' "$HDRS" |
    sed -n 's/^[Ss]et-[Cc]ookie: *pincer_session=\([^;]*\).*/\1/p')
MCSRF=$(jstr "$BODY" csrf_token)
secret_register "$MEM"
secret_register "$MCSRF"
# member METHOD PATH [CURL ARGS]: a request with bob's session.
member() {
	local m=$1 p=$2
	shift 2
	req "$m" "$p" -H "Cookie: pincer_session=$MEM" \
	    -H "X-CSRF-Token: $MCSRF" -H "Origin: $PINCER_URL" "$@"
}
like "an admin token for alice (owner)" "$ADM" '^pincer_'

# --- GET ---
as "$ADM" GET /api/v1/config
is "GET /api/v1/config: 200" "$CODE" 200
G=$BODY
is "… path is the file pincerd reads" "$(jget "$G" o.path)" "$PINCER_CONF"
is "… writable" "$(jget "$G" o.writable)" true
like "… etag: the file's SHA-256" "$(jget "$G" o.etag)" "^$(sha "$PINCER_CONF")\$"
is "… config: the file's JSON" "$(jget "$G" o.config.admin_ui.dir)" \
	"$TOP_SRCDIR/admin-ui"
ok "… options: every one with name, type, help, env, restart, value" \
	json_check "$G" 'o.options.length > 50 && o.options.every(p =>
	    p.name && ["string","int","bool","enum","list","json"]
	    .includes(p.type) && typeof p.help === "string" &&
	    /^PINCER_/.test(p.env) && typeof p.restart === "boolean" &&
	    typeof p.from_env === "boolean" && "value" in p && "default" in p)'
ok "… an enum lists its values (log.level)" json_check "$G" \
	'o.options.find(p => p.name === "log.level").values.join() ===
	    "debug,info,warn,error"'
ok "… an int has min and max, a restart mark (http.threads)" \
	json_check "$G" '(p => p.type === "int" && p.min === 1 &&
	    p.max === 64 && p.restart === true && p.value === 2 &&
	    p.default === 2)(o.options.find(p => p.name === "http.threads"))'
ok "… a PINCER_* variable: from_env, and its value in effect" \
	json_check "$G" '(p => p.from_env === true && p.value === 300 &&
	    p.env === "PINCER_HTTP_RATE_LIMIT_BURST")(o.options.find(p =>
	    p.name === "http.rate_limit_burst"))'
ok "… --listen and --state: from_cli" json_check "$G" \
	'o.options.filter(p => p.from_cli).map(p => p.name).sort().join()
	    === "listen,state_dir"'
ok "… a json option's value is JSON (llm.budgets)" json_check "$G" \
	'Array.isArray(o.options.find(p => p.name === "llm.budgets").value)'
ETAG=$(jget "$G" o.etag)

# --- who may ---
req GET /api/v1/config
is "not signed in: 401" "$CODE" 401
as "$RD" GET /api/v1/config
is "a token without the admin scope: 403" "$CODE" 403
like "bob (a member) is signed in" "$MEM" '.'
member GET /api/v1/me
is "… his session works" "$CODE" 200
member GET /api/v1/config
is "a member: 403" "$CODE" 403
member PUT /api/v1/config --data-binary '{}'
is "… PUT too: 403" "$CODE" 403
unlike "… for the role, not a CSRF check" "$BODY" '"csrf"'

# --- PUT: a valid change applies at once ---
is "before: POST 3000 bytes reaches the route (405)" "$(post 3000)" 405
BEFORE=$(cat "$PINCER_CONF")
put_conf "{ $UI, $FAST, \"http\": { \"max_body_bytes\": 4000 } }" "\"$ETAG\""
is "PUT a valid config with If-Match: 200" "$CODE" 200
ok "… saved, a new etag, nothing needs a restart" json_check "$BODY" \
	"o.saved === true && o.etag !== '$ETAG' &&
	    o.restart_required.length === 0"
ETAG2=$(jget "$BODY" o.etag)
is "… the etag is the new file's SHA-256" "$ETAG2" "$(sha "$PINCER_CONF")"
is "… applied: POST 5000 bytes gets 413" "$(post 5000)" 413
is "… POST 3000 still 405" "$(post 3000)" 405
ok "… the file holds it" grep -q '"max_body_bytes": 4000' "$PINCER_CONF"
is "… the file is 0600" "$(stat -c %a "$PINCER_CONF")" 600
is "… the old file is kept as .bak" "$(cat "$PINCER_CONF.bak")" "$BEFORE"
ok "… no temporary file is left" \
	sh -c "! ls '$PINCER_DIR' | grep -q tmp"
as "$ADM" GET /api/v1/config
ok "… GET shows the value in effect and the new etag" json_check "$BODY" \
	"o.etag === '$ETAG2' && o.options.find(p => p.name ===
	    'http.max_body_bytes').value === 4000"
wait_log 'config reloaded.*by=api'
ok "… the log says the config was reloaded" \
	grep -q 'msg="config reloaded".*by=api' "$PINCER_LOG"

# An option that needs a restart: said, and the running value kept.
put_conf "{ $UI, $FAST, \"http\": { \"max_body_bytes\": 4000,
	\"threads\": 3 } }" "$ETAG2"
is "PUT changing http.threads: 200" "$CODE" 200
is "… restart_required names it" "$(jget "$BODY" o.restart_required)" \
	'["http.threads"]'
ETAG3=$(jget "$BODY" o.etag)
as "$ADM" GET /api/v1/config
ok "… the running value stays 2 until a restart" json_check "$BODY" \
	'o.options.find(p => p.name === "http.threads").value === 2 &&
	    o.config.http.threads === 3'

# --- PUT: invalid configs change nothing ---
SUM=$(sha "$PINCER_CONF")
put_conf "{ $UI, \"http\": { \"max_body_bytes\": \"big\",
	\"threads\": 999 } }" "$ETAG3"
is "a wrong type and an out-of-range number: 400" "$CODE" 400
is "… code invalid_config" "$(jget "$BODY" o.error.code)" invalid_config
M=$(jget "$BODY" o.error.message)
like "… names http.max_body_bytes and why" "$M" \
	'http\.max_body_bytes: expected an integer from 0 to'
like "… and http.threads, on a line of its own" "$M" \
	$'\n.*http\\.threads: expected an integer from 1 to 64|http\\.threads: expected an integer from 1 to 64.*\n'
put_conf "{ $UI, \"llm\": { \"routes\": { \"default\": [\"nope/x\"] } } }"
is "a route to an unknown provider: 400" "$CODE" 400
like "… the message names the provider" "$(jget "$BODY" o.error.message)" \
	'nope'
put_conf "{ $UI, \"log\": { \"level\": \"loud\" } }"
is "an enum value not in the list: 400" "$CODE" 400
like "… names log.level and its values" "$(jget "$BODY" o.error.message)" \
	'log\.level: expected one of "debug", "info"'
put_conf "{ $UI, \"nope\": 1 }"
is "an unknown option: 400" "$CODE" 400
like "… named" "$(jget "$BODY" o.error.message)" 'nope: unknown option'
put_conf "{ $UI, \"egress\": { \"policy\": \"missing\" } }"
is "an egress policy that is not defined (checked when applied): 400" \
	"$CODE" 400
like "… names egress.policy" "$(jget "$BODY" o.error.message)" \
	'egress\.policy "missing" is not in egress\.policies'
put_conf '{ "http": '
is "a body that is not JSON: 400" "$CODE" 400
is "… code bad_json" "$(jget "$BODY" o.error.code)" bad_json
put_conf '[1, 2]'
is "a body that is not an object: 400" "$CODE" 400
is "the file is unchanged by all of them" "$(sha "$PINCER_CONF")" "$SUM"
is "… the egress refusal put the file back and kept a .bak" \
	"$(sha "$PINCER_CONF.bak")" "$SUM"
is "… the running limit is kept: POST 5000 still 413" "$(post 5000)" 413

# A variable of the environment still wins over a saved file.
put_conf "{ $UI, $FAST, \"http\": { \"max_body_bytes\": 4000,
	\"threads\": 3, \"rate_limit_burst\": 500 } }" "$ETAG3"
is "PUT setting an option a PINCER_* variable overrides: 200" "$CODE" 200
ETAG4=$(jget "$BODY" o.etag)
as "$ADM" GET /api/v1/config
ok "… the variable's value stays in effect" json_check "$BODY" \
	'o.options.find(p => p.name === "http.rate_limit_burst").value === 300'

# --- If-Match ---
SUM=$(sha "$PINCER_CONF")
put_conf "{ $UI, $FAST }" "$ETAG"
is "If-Match with an old etag: 412" "$CODE" 412
is "… code config_changed" "$(jget "$BODY" o.error.code)" config_changed
like "… says to load it again" "$(jget "$BODY" o.error.message)" \
	'changed since'
is "… the file is unchanged" "$(sha "$PINCER_CONF")" "$SUM"

# --- the audit log: who changed which keys, never a value ---
as "$ADM" GET '/api/v1/audit?limit=100'
ok "the audit log has config_update by alice naming the keys" \
	json_check "$BODY" 'o.entries.some(e => e.action === "config_update" &&
	    e.actor === "alice" && e.detail === "http")'
unlike "… and no value" "$(printf '%s' "$BODY" | grep -o \
	'"config_update"[^}]*')" '4000|threads'

# --- secrets ---
VAL="sk-test-$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
secret_register "$VAL"
as "$ADM" PUT /api/v1/secrets/openai_key -H 'Content-Type: application/json' \
	--data-binary "{\"value\":\"$VAL\"}"
is "PUT /api/v1/secrets/openai_key: 204" "$CODE" 204
is "… with no body" "$BODY" ""
as "$ADM" GET /api/v1/secrets
is "GET /api/v1/secrets: 200" "$CODE" 200
ok "… names it, with a date" json_check "$BODY" \
	'o.secrets.some(s => s.name === "openai_key" && s.updated_at > 0)'
unlike "… and never the value" "$BODY" "$VAL"
as "$ADM" PUT /api/v1/secrets/openai_key --data-binary '{"value":""}'
is "an empty value: 400" "$CODE" 400
like "… says why" "$(jget "$BODY" o.error.message)" 'non-empty'
as "$ADM" PUT /api/v1/secrets/openai_key --data-binary '{"nope":"x"}'
is "no value field: 400" "$CODE" 400
as "$ADM" PUT /api/v1/secrets/openai_key --data-binary '{"value":'
is "a body that is not JSON: 400" "$CODE" 400
as "$ADM" PUT '/api/v1/secrets/bad%20name' --data-binary '{"value":"x"}'
is "a name with a space: 400" "$CODE" 400
like "… naming the rule" "$(jget "$BODY" o.error.message)" '1 to 64'
as "$ADM" PUT "/api/v1/secrets/$(head -c 65 /dev/zero | tr '\0' a)" \
	--data-binary '{"value":"x"}'
is "a name of 65 characters: 400" "$CODE" 400
req PUT /api/v1/secrets/x --data-binary '{"value":"x"}'
is "not signed in: 401" "$CODE" 401
member PUT /api/v1/secrets/x --data-binary '{"value":"x"}'
is "a member: 403" "$CODE" 403
member GET /api/v1/secrets
is "a member may not list them: 403" "$CODE" 403
member DELETE /api/v1/secrets/openai_key
is "… nor delete one: 403" "$CODE" 403
as "$RD" DELETE /api/v1/secrets/openai_key
is "DELETE without the admin scope: 403" "$CODE" 403
OUT=$(pcli secret list 2>/dev/null)
like "the CLI sees the secret the API stored" "$OUT" '"name": "openai_key"'
as "$ADM" GET '/api/v1/audit?limit=100'
ok "the audit log names the secret set" json_check "$BODY" \
	'o.entries.some(e => e.action === "secret_set" &&
	    e.target === "openai_key" && e.actor === "alice")'
unlike "… and holds no value" "$BODY" "$VAL"
ok "the value is in no database file in clear" \
	sh -c "! cat '$PINCER_STATE_DIR'/pincer.db* | grep -qa -- '$VAL'"
ok "the value is not in the log" sh -c "! grep -qF -- '$VAL' '$PINCER_LOG'"
as "$ADM" DELETE /api/v1/secrets/openai_key
is "DELETE: 204" "$CODE" 204
as "$ADM" DELETE /api/v1/secrets/openai_key
is "DELETE again: 404" "$CODE" 404
like "… in words" "$(jget "$BODY" o.error.message)" 'no secret is named'
as "$ADM" GET /api/v1/secrets
ok "the list no longer has it" json_check "$BODY" \
	'!o.secrets.some(s => s.name === "openai_key")'

pincer_stop
is "pincerd exits 0" "$PINCER_EXIT" 0

# --- no config file it may write: said, not invented ---
if [ -e /etc/pincer ] ; then
	skip "without --config: PUT says the file cannot be written" \
	    "/etc/pincer exists here"
else
	ST="$T_TMP/nofile"
	mkdir -m 700 "$ST"
	hand_start nofile "$PINCER_BIN" serve --state "$ST" \
	    --listen 127.0.0.1:0
	PINCER_URL="http://$H_ADDR"
	printf '%s\n' "$PW" | "$PINCER_BIN" --state "$ST" user add alice \
	    --role owner --password-stdin >/dev/null 2>&1
	T2=$("$PINCER_BIN" --state "$ST" token create --user alice \
	    --scope admin --name s 2>/dev/null)
	secret_register "$T2"
	as "$T2" GET /api/v1/config
	ok "without --config: GET names /etc/pincer/pincer.json, not writable" \
	    json_check "$BODY" 'o.path === "/etc/pincer/pincer.json" &&
		o.writable === false && JSON.stringify(o.config) === "{}"'
	as "$T2" PUT /api/v1/config --data-binary '{}'
	is "… PUT: 409" "$CODE" 409
	like "… says how to give it one" "$(jget "$BODY" o.error.message)" \
	    'cannot write its config file.*--config'
	ok "… and writes nothing" test ! -e /etc/pincer
	hand_stop
fi

done_testing
