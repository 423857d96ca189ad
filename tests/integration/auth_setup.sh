# SPDX-License-Identifier: MIT
# auth_setup.sh: a pincerd with no users logs a one-time setup code (in
# the log, never in a URL); POST /api/v1/auth/setup with it creates the
# owner once and logs them in; a wrong code gets 401; once an owner exists
# the setup answers 409 and a restarted pincerd logs no code.
. "$TOP_SRCDIR/tests/integration/lib.sh"

unset PINCER_CONFIG PINCER_STATE PINCER_LISTEN
UI="\"admin_ui\": { \"dir\": \"$TOP_SRCDIR/admin-ui\" }"
FAST='"auth": { "argon2_memory_kib": 1024, "argon2_iterations": 1 }'

cookie_of() {
	printf '%s\n' "$HDRS" | sed -n 's/^[Ss]et-[Cc]ookie: *pincer_session=\([^;]*\).*/\1/p' | head -1
}
# setup CODE USER PW: each from its own client address (X-Forwarded-For
# from the trusted proxy 127.0.0.1), so that wrong codes tried here do not
# add up to a lockout of the next try.
NIP=0
setup() {
	NIP=$((NIP + 1))
	req POST /api/v1/auth/setup -H 'Content-Type: application/json' \
	    -H "X-Forwarded-For: 10.1.0.$NIP" \
	    --data-binary "{\"code\":\"$1\",\"username\":\"$2\",\"password\":\"$3\",\"email\":\"$2@example.org\"}"
	[ -n "$(cookie_of)" ] && secret_register "$(cookie_of)"
}
# The setup codes the log has, in order.
codes() { sed -n 's/.*setup_code=\([A-Z0-9-]*\).*/\1/p' "$PINCER_LOG"; }
# restart: pincerd again on the same config and state folder.
RESTARTS=0
restart() {
	RESTARTS=$((RESTARTS + 1))
	PINCER_LOG="$T_LOGDIR/$T_NAME.restart$RESTARTS.pincerd.log"
	: >"$PINCER_LOG"
	"$PINCER_BIN" serve --config "$PINCER_CONF" --state "$PINCER_STATE_DIR" \
	    --listen 127.0.0.1:0 2>>"$PINCER_LOG" &
	PINCER_PID=$!
	T_PIDS="$T_PIDS $PINCER_PID"
	wait_log 'msg=listening' 10 || return 1
	PINCER_ADDR=$(sed -n 's/.*msg=listening addr=\([^ ]*\).*/\1/p' "$PINCER_LOG" | head -1)
	PINCER_URL="http://$PINCER_ADDR"
	wait_until 10 curl -fsS -o /dev/null "$PINCER_URL/readyz"
}

PW=$(random_token)
secret_register "$PW"

PROXY='"http": { "trusted_proxies": ["127.0.0.1"] }'
if ! pincer_start "{ $UI, $FAST, $PROXY }"; then
	ok "pincerd starts" false
	done_testing
fi
ok "a fresh pincerd logs a setup code" wait_log 'setup_code=' 5
CODE1=$(codes | head -1)
like "the setup code looks like XXXXX-XXXXX" "$CODE1" '^[A-Z0-9]{5}-[A-Z0-9]{5}$'
LINE=$(grep -F "setup_code=$CODE1" "$PINCER_LOG")
like "it is logged at level warn" "$LINE" 'level=warn'
unlike "it is not in a URL" "$LINE" "https?://[^ \"]*$CODE1"
is "it is logged once" "$(codes | wc -l)" 1

req GET /api/v1/me
is "no users: /api/v1/me is still 401 (the setup code is no credential)" "$CODE" 401

# Wrong codes, and bodies that are not a setup.
setup BADXX-CODE1 alice "$PW"
is "setup with a wrong code: 401" "$CODE" 401
like "… code invalid_setup_code" "$(jstr "$BODY" code)" 'setup_code'
is "… no cookie" "$(cookie_of)" ""
setup "$(printf '%s' "$CODE1" | tr 'A-Z' 'a-z')" alice "$PW"
is "setup with the code in lower case: 401" "$CODE" 401
req POST /api/v1/auth/setup -H 'Content-Type: application/json' --data-binary 'not json'
is "setup with a body that is not JSON: 400" "$CODE" 400
req POST /api/v1/auth/setup -H 'Content-Type: application/json' \
    --data-binary "{\"code\":\"$CODE1\",\"username\":\"alice\"}"
is "setup without a password: 400" "$CODE" 400
is "none of these made a user" "$(pcli user list 2>/dev/null | tr -d ' \n')" "[]"

# Guessing codes from one address is slowed down like logins: among 6
# wrong codes in a row, the last ones get 429.
W=""
for i in 1 2 3 4 5 6; do
	req POST /api/v1/auth/setup -H 'Content-Type: application/json' \
	    -H 'X-Forwarded-For: 10.2.0.1' \
	    --data-binary "{\"code\":\"WRONG-000$i\",\"username\":\"alice\",\"password\":\"$PW\"}"
	W="$W $CODE"
done
like "6 wrong setup codes from one address: 401s, then 429 ($W)" "$W" '^( 401)+( 429)+$'
is "… the last says too_many_attempts" "$(jstr "$BODY" code)" too_many_attempts

# A bad user name spends the code; a new one is logged.
setup "$CODE1" 'bad name!' "$PW"
is "setup with the right code but a bad user name: 400" "$CODE" 400
ok "… a new setup code is logged" wait_log 'setup_code=' 5 1
CODE2=$(codes | tail -1)
ok "… and it is another code" test -n "$CODE2" -a "$CODE2" != "$CODE1"
setup "$CODE1" alice "$PW"
is "the spent first code: 401" "$CODE" 401

setup "$CODE2" alice "$PW"
is "setup with the live code: 201" "$CODE" 201
is "… the user is alice" "$(jstr "$BODY" user)" alice
is "… the role is owner" "$(jstr "$BODY" role)" owner
CSRF=$(jstr "$BODY" csrf_token)
secret_register "$CSRF"
like "… a csrf_token" "$CSRF" '^[A-Za-z0-9_-]{20,}$'
COOKIE=$(cookie_of)
like "… it sets the session cookie" "$COOKIE" '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$'
like "… HttpOnly and SameSite=Strict" "$(printf '%s\n' "$HDRS" | grep -i '^set-cookie:')" \
    'HttpOnly.*SameSite=Strict|SameSite=Strict.*HttpOnly'
req GET /api/v1/me -H "Cookie: pincer_session=$COOKIE"
is "the setup's cookie: /api/v1/me 200" "$CODE" 200
is "/api/v1/me: role owner" "$(jstr "$BODY" role)" owner
is "/api/v1/me: auth session" "$(jstr "$BODY" auth)" session
is "/api/v1/me: the email given" "$(jstr "$BODY" email)" alice@example.org
ok "pincer user list: alice, owner" json_check "$(pcli user list 2>/dev/null)" \
    'o.length === 1 && o[0].name === "alice" && o[0].role === "owner"'
req POST /api/v1/auth/login -H 'Content-Type: application/json' \
    --data-binary "{\"username\":\"alice\",\"password\":\"$PW\"}"
is "alice logs in with the password set at setup: 200" "$CODE" 200
secret_register "$(cookie_of)"

setup "$CODE2" mallory "$PW"
is "the same code again: 409" "$CODE" 409
is "… code already_set_up" "$(jstr "$BODY" code)" already_set_up
is "… no cookie" "$(cookie_of)" ""
setup "$(codes | tail -1)" mallory "$PW"
is "any code once an owner exists: 409" "$CODE" 409
is "no new setup code was logged after the owner was made" "$(codes | wc -l)" 2

req GET /api/v1/audit -H "Cookie: pincer_session=$COOKIE"
ok "the audit has the setup, by alice" json_check "$BODY" \
    'o.entries.some(e => e.action === "setup" && e.actor === "alice")'

# GET / still serves the admin UI.
req GET /
is "GET /: 200" "$CODE" 200
like "GET /: the admin UI's HTML" "$BODY" '<(!doctype|html)'

pincer_stop
is "pincerd exits 0" "$PINCER_EXIT" 0

# --- restarted with an owner: no code --------------------------------------
if restart; then
	is "a restarted pincerd with an owner logs no setup code" "$(log_count 'setup_code')" 0
	setup "$CODE2" mallory "$PW"
	is "setup on the restarted pincerd: 409" "$CODE" 409
	req GET /
	is "GET / on the restarted pincerd: 200" "$CODE" 200
	req GET /api/v1/me -H "Cookie: pincer_session=$COOKIE"
	is "the setup's session survives the restart" "$CODE" 200
	pincer_stop
	is "the restarted pincerd exits 0" "$PINCER_EXIT" 0
else
	ok "pincerd restarts on the same state" false
fi

# --- the CLI made the owner: no code either --------------------------------
if pincer_start "{ $UI, $FAST, $PROXY }"; then
	wait_log 'setup_code=' 5
	printf '%s\n' "$PW" | pcli user add root --role owner --password-stdin >/dev/null 2>&1
	CODE3=$(codes | tail -1)
	setup "$CODE3" mallory "$PW"
	is "the owner was added with the CLI while running: setup 409" "$CODE" 409
	pincer_stop
	if restart; then
		is "… restarted: no setup code" "$(log_count 'setup_code')" 0
		pincer_stop
	else
		ok "pincerd restarts on the same state" false
	fi
else
	ok "pincerd starts" false
fi

done_testing
