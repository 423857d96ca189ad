# SPDX-License-Identifier: MIT
# users_api.sh: /api/v1/users (list, add, change role, disable, reset a
# password, delete) with each of its errors; the rules that keep an owner
# (only an owner makes or changes one, the last owner stays, nobody locks
# themselves out); a disabled or deleted user's session and token stop
# working at once; a new password ends the person's other sessions; every change is audited, and the audit log's filters
# (actor, action prefix, since/until) find them. No password in the log.
. "$TOP_SRCDIR/tests/integration/lib.sh"

unset PINCER_CONFIG PINCER_STATE PINCER_LISTEN
FAST='"auth": { "argon2_memory_kib": 1024, "argon2_iterations": 1 }'

# login NAME PASSWORD: COOKIE and CSRF of the new session.
login() {
	req POST /api/v1/auth/login -H 'Content-Type: application/json' \
	    --data-binary "{\"username\":\"$1\",\"password\":\"$2\"}"
	COOKIE=$(printf '%s\n' "$HDRS" |
	    sed -n 's/^[Ss]et-[Cc]ookie: *pincer_session=\([^;]*\).*/\1/p')
	CSRF=$(jstr "$BODY" csrf_token)
	[ -n "$COOKIE" ] && secret_register "$COOKIE"
	[ -n "$CSRF" ] && secret_register "$CSRF"
}
# as TOKEN METHOD PATH [JSON]
as() {
	local t=$1 m=$2 p=$3
	if [ $# -ge 4 ]; then
		req "$m" "$p" -H "Authorization: Bearer $t" \
		    -H 'Content-Type: application/json' --data-binary "$4"
	else
		req "$m" "$p" -H "Authorization: Bearer $t"
	fi
}
code_is() { is "$1: $2 $3" "$CODE $(jstr "$BODY" code)" "$2 $3"; }

PW=$(random_token); MPW=$(random_token); NPW=$(random_token)
PW2=$(random_token)
for s in "$PW" "$MPW" "$NPW" "$PW2"; do secret_register "$s"; done

if ! pincer_start "{ $FAST }"; then
	ok "pincerd starts" false
	done_testing
fi
printf '%s\n' "$PW" | pcli user add alice --role owner --password-stdin >/dev/null 2>&1
printf '%s\n' "$PW" | pcli user add carol --role admin --password-stdin >/dev/null 2>&1
printf '%s\n' "$PW" | pcli user add bob --role member --password-stdin >/dev/null 2>&1
OWN=$(pcli token create --user alice --scope admin,read --name t 2>/dev/null)
ADM=$(pcli token create --user carol --scope admin --name t 2>/dev/null)
MEM=$(pcli token create --user bob --scope read --name t 2>/dev/null)
for s in "$OWN" "$ADM" "$MEM"; do secret_register "$s"; done
like "tokens for the owner, an admin and a member" "$OWN$ADM$MEM" '^pincer_.*pincer_.*pincer_'

# --- list --------------------------------------------------------------------
as "$OWN" GET /api/v1/users
is "GET /api/v1/users (owner): 200" "$CODE" 200
ok "… lists alice (owner), carol (admin), bob (member), no hashes" json_check "$BODY" \
    "o.users.length === 3 && o.users[0].name === 'alice' &&
     o.users[0].role === 'owner' && o.users[2].role === 'member' &&
     !JSON.stringify(o).includes('argon2') && 'last_login_at' in o.users[0]"
as "$MEM" GET /api/v1/users
code_is "GET /api/v1/users (a member's token)" 403 forbidden
login bob "$PW"
req GET /api/v1/users -H "Cookie: pincer_session=$COOKIE"
code_is "GET /api/v1/users (a member's session)" 403 forbidden
req GET /api/v1/users
code_is "GET /api/v1/users (nobody)" 401 unauthenticated

# --- add ---------------------------------------------------------------------
as "$OWN" POST /api/v1/users '{"name":'
code_is "POST: not JSON" 400 bad_json
as "$OWN" POST /api/v1/users '["dave"]'
code_is "POST: not an object" 400 bad_json
as "$OWN" POST /api/v1/users "{\"name\":\"dave\",\"role\":\"member\"}"
code_is "POST: no password" 400 bad_request
as "$OWN" POST /api/v1/users "{\"name\":\"dave\",\"role\":\"boss\",\"password\":\"$NPW\"}"
code_is "POST: an unknown role" 400 bad_role
as "$OWN" POST /api/v1/users '{"name":"dave","role":"member","password":"short"}'
code_is "POST: a short password" 400 bad_user
like "… says why" "$BODY" 'at least 8'
as "$OWN" POST /api/v1/users "{\"name\":\"da ve\",\"role\":\"member\",\"password\":\"$NPW\"}"
code_is "POST: a name with a space" 400 bad_user
as "$ADM" POST /api/v1/users "{\"name\":\"olga\",\"role\":\"owner\",\"password\":\"$NPW\"}"
code_is "POST: an admin makes an owner" 403 owner_only
as "$MEM" POST /api/v1/users "{\"name\":\"dave\",\"role\":\"member\",\"password\":\"$NPW\"}"
code_is "POST: a member" 403 forbidden
as "$ADM" POST /api/v1/users "{\"name\":\"dave\",\"email\":\"dave@example.org\",\"role\":\"member\",\"password\":\"$NPW\"}"
is "POST: an admin adds a member: 201" "$CODE" 201
ok "… answers the user, no password" json_check "$BODY" \
    "o.name === 'dave' && o.role === 'member' && o.email === 'dave@example.org' && !('password' in o)"
as "$OWN" POST /api/v1/users "{\"name\":\"DAVE\",\"role\":\"member\",\"password\":\"$NPW\"}"
code_is "POST: the same name again (any case)" 409 exists
login dave "$NPW"
is "dave logs in: 200" "$CODE" 200
DAVE_COOKIE=$COOKIE
req GET /api/v1/me -H "Cookie: pincer_session=$DAVE_COOKIE"
is "dave's session works: 200" "$CODE" 200
DAVE_TOK=$(pcli token create --user dave --scope read --name t 2>/dev/null)
secret_register "$DAVE_TOK"
as "$DAVE_TOK" GET /api/v1/me
is "dave's token works: 200" "$CODE" 200

# --- change ------------------------------------------------------------------
as "$OWN" PATCH /api/v1/users/nobody '{"role":"admin"}'
code_is "PATCH an unknown user" 404 not_found
as "$OWN" PATCH /api/v1/users/dave 'nope'
code_is "PATCH: not JSON" 400 bad_json
as "$OWN" PATCH /api/v1/users/dave '{}'
code_is "PATCH: nothing to change" 400 bad_request
as "$OWN" PATCH /api/v1/users/dave '{"disabled":"yes"}'
code_is "PATCH: disabled not a boolean" 400 bad_request
as "$OWN" PATCH /api/v1/users/dave '{"role":"king"}'
code_is "PATCH: an unknown role" 400 bad_role
as "$OWN" PATCH /api/v1/users/dave '{"password":"short"}'
code_is "PATCH: a short password" 400 bad_password
as "$MEM" PATCH /api/v1/users/dave '{"role":"admin"}'
code_is "PATCH: a member" 403 forbidden
as "$ADM" PATCH /api/v1/users/dave '{"role":"owner"}'
code_is "PATCH: an admin makes an owner" 403 owner_only
as "$ADM" PATCH /api/v1/users/alice '{"disabled":true}'
code_is "PATCH: an admin disables the owner" 403 owner_only
as "$OWN" PATCH /api/v1/users/alice '{"role":"admin"}'
code_is "PATCH: the last owner demoted" 409 last_owner
as "$OWN" PATCH /api/v1/users/alice '{"disabled":true}'
code_is "PATCH: the owner disables herself" 409 self
as "$ADM" PATCH /api/v1/users/dave '{"role":"admin"}'
is "PATCH: an admin makes dave an admin: 200" "$CODE" 200
ok "… answers the new role" json_check "$BODY" "o.role === 'admin' && o.disabled === false"
req GET /api/v1/users -H "Cookie: pincer_session=$DAVE_COOKIE"
is "dave's session has the new role at once (lists users): 200" "$CODE" 200

as "$ADM" PATCH /api/v1/users/dave '{"disabled":true}'
is "PATCH: disable dave: 200" "$CODE" 200
req GET /api/v1/me -H "Cookie: pincer_session=$DAVE_COOKIE"
is "dave's session: 401 at once" "$CODE" 401
as "$DAVE_TOK" GET /api/v1/me
is "dave's token: 401 at once" "$CODE" 401
login dave "$NPW"
is "dave cannot log in: 401" "$CODE" 401
as "$ADM" PATCH /api/v1/users/dave "{\"disabled\":false,\"password\":\"$MPW\"}"
is "PATCH: enable dave with a new password: 200" "$CODE" 200
login dave "$NPW"
is "the old password: 401" "$CODE" 401
login dave "$MPW"
is "the new password: 200" "$CODE" 200
DAVE_COOKIE=$COOKIE
sleep 1		# sessions issued in the second of a reset survive it
as "$ADM" PATCH /api/v1/users/dave "{\"password\":\"$NPW\"}"
is "PATCH: another new password for dave: 200" "$CODE" 200
req GET /api/v1/me -H "Cookie: pincer_session=$DAVE_COOKIE"
is "… his session from before it: 401" "$CODE" 401
as "$DAVE_TOK" GET /api/v1/me
is "… his API token still works: 200" "$CODE" 200
login dave "$NPW"
is "… and he logs in with it: 200" "$CODE" 200

# One's own reset keeps one's session (same CSRF token), ends the others.
login alice "$PW"
A1=$COOKIE
login alice "$PW"
A2=$COOKIE
A2_CSRF=$CSRF
sleep 1
req PATCH /api/v1/users/alice -H "Cookie: pincer_session=$A2" \
    -H "Origin: $PINCER_URL" -H "X-CSRF-Token: $A2_CSRF" \
    -H 'Content-Type: application/json' --data-binary "{\"password\":\"$PW2\"}"
is "PATCH: alice's own password, by her session: 200" "$CODE" 200
A3=$(printf '%s\n' "$HDRS" |
    sed -n 's/^[Ss]et-[Cc]ookie: *pincer_session=\([^;]*\).*/\1/p')
[ -n "$A3" ] && secret_register "$A3"
ok "… with a new cookie for this session" test -n "$A3"
req GET /api/v1/me -H "Cookie: pincer_session=$A3"
is "… which works: 200" "$CODE" 200
ok "… with the same CSRF token" test "$(jstr "$BODY" csrf_token)" = "$A2_CSRF"
req GET /api/v1/me -H "Cookie: pincer_session=$A1"
is "her other session: 401" "$CODE" 401
a3_ended() { [ "$(curl -s -o /dev/null -w '%{http_code}' \
    -H "Cookie: pincer_session=$A3" "$PINCER_URL/api/v1/me")" = 401 ]; }
sleep 1
printf '%s\n' "$PW2" | pcli user passwd alice --password-stdin >/dev/null 2>&1
is "pincer user passwd: exits 0" "$?" 0
ok "… and ends her sessions in the running pincerd too" wait_until 5 a3_ended

# A second owner, then the first may step down.
as "$OWN" PATCH /api/v1/users/carol '{"role":"owner"}'
is "PATCH: the owner makes carol an owner: 200" "$CODE" 200
as "$ADM" PATCH /api/v1/users/alice '{"role":"admin"}'
is "PATCH: carol (now owner) demotes alice: 200" "$CODE" 200
as "$OWN" PATCH /api/v1/users/carol '{"role":"member"}'
code_is "PATCH: alice (now admin) demotes an owner" 403 owner_only
as "$ADM" PATCH /api/v1/users/alice '{"role":"owner"}'
is "PATCH: alice is owner again: 200" "$CODE" 200

# --- delete ------------------------------------------------------------------
as "$OWN" DELETE /api/v1/users/nobody
code_is "DELETE an unknown user" 404 not_found
as "$OWN" DELETE /api/v1/users/alice
code_is "DELETE: oneself" 409 self
as "$MEM" DELETE /api/v1/users/dave
code_is "DELETE: a member" 403 forbidden
as "$OWN" DELETE /api/v1/users/dave
is "DELETE dave: 200" "$CODE" 200
as "$DAVE_TOK" GET /api/v1/me
is "dave's token after the delete: 401" "$CODE" 401
as "$OWN" GET /api/v1/users
ok "dave is gone from the list" json_check "$BODY" "!o.users.some(u => u.name === 'dave')"
as "$OWN" DELETE /api/v1/users/dave
code_is "DELETE dave again" 404 not_found
# A person who left nothing under their name: it may be given again.
as "$OWN" POST /api/v1/users "{\"name\":\"erin\",\"role\":\"member\",\"password\":\"$NPW\"}"
is "erin added: 201" "$CODE" 201
as "$OWN" DELETE /api/v1/users/erin
is "… deleted: 200" "$CODE" 200
as "$OWN" POST /api/v1/users "{\"name\":\"erin\",\"role\":\"member\",\"password\":\"$NPW\"}"
is "… her name again, nothing left under it: 201" "$CODE" 201
# A deleted person's conversations stay under their name: a new person
# with that name must not inherit them (nor their agent sandbox).
sqlite3 "$PINCER_STATE_DIR/pincer.db" "INSERT INTO conversations (id,
    channel, peer, owner, sandbox, created_ms, updated_ms) VALUES
    ('api:dave:old', 'api', 'dave', 'dave', 'agent-dave', 0, 0)"
as "$OWN" POST /api/v1/users "{\"name\":\"dave\",\"role\":\"member\",\"password\":\"$NPW\"}"
code_is "a deleted person's name, their conversations kept" 409 name_used
like "… said in words" "$(jstr "$BODY" message)" 'used before.*another name'
ok "… and dave was not made" test "$(printf '%s\n' "$NPW" | pcli user add \
    dave --role member --password-stdin 2>&1 >/dev/null | grep -c 'used before')" = 1
as "$OWN" PATCH /api/v1/users/carol '{"role":"admin"}'
is "carol back to admin: 200" "$CODE" 200
as "$ADM" DELETE /api/v1/users/alice
code_is "DELETE: an admin deletes the owner" 403 owner_only

# --- the audit log and its filters -------------------------------------------
as "$OWN" GET '/api/v1/audit?limit=500&action=user_'
is "GET /api/v1/audit?action=user_: 200" "$CODE" 200
ALL=$BODY
ok "… only user_ actions" json_check "$ALL" \
    "o.entries.length > 0 && o.entries.every(e => e.action.startsWith('user_'))"
for a in user_add user_role user_disable user_enable user_passwd user_delete; do
	ok "an entry $a for dave" json_check "$ALL" \
	    "o.entries.some(e => e.action === '$a' && e.target === 'dave')"
done
ok "user_add by carol over HTTP (ip 127.0.0.1)" json_check "$ALL" \
    "o.entries.some(e => e.action === 'user_add' && e.actor === 'carol' && e.ip === '127.0.0.1')"
ok "no entry holds a password" test -z "$(printf '%s' "$ALL" | grep -F -e "$NPW" -e "$MPW")"
as "$OWN" GET '/api/v1/audit?limit=500&action=user_&actor=CAROL'
ok "actor=CAROL: only carol's (any case)" json_check "$BODY" \
    "o.entries.length > 0 && o.entries.every(e => e.actor === 'carol')"
as "$OWN" GET '/api/v1/audit?limit=500&action=user_delete'
ok "action=user_delete: exactly the deletes (erin, then dave)" \
    json_check "$BODY" "o.entries.length === 2 &&
    o.entries.map(e => e.target).join() === 'erin,dave'"
as "$OWN" GET '/api/v1/audit?since=2999-01-01'
ok "since in the future: nothing" json_check "$BODY" "o.entries.length === 0"
as "$OWN" GET '/api/v1/audit?until=2000-01-01T00:00:00Z'
ok "until in the past: nothing" json_check "$BODY" "o.entries.length === 0"
TODAY=$(date -u +%Y-%m-%d)
as "$OWN" GET "/api/v1/audit?limit=500&since=${TODAY}&until=2999-01-01T00:00Z&action=user_"
ok "since today, until far ahead: the same entries" json_check "$BODY" \
    "o.entries.length === $(node -e 'console.log(JSON.parse(process.argv[1]).entries.length)' "$ALL")"
as "$OWN" GET '/api/v1/audit?since=yesterday'
code_is "since=yesterday" 400 bad_time
as "$OWN" GET '/api/v1/audit?until=2026-12-03T10:00:00'
code_is "until without Z" 400 bad_time
as "$OWN" GET '/api/v1/audit?limit=1&action=user_'
ok "limit=1 with a filter: next_before to page on" json_check "$BODY" \
    "o.entries.length === 1 && typeof o.next_before === 'number'"
NEXT=$(node -e 'console.log(JSON.parse(process.argv[1]).next_before)' "$BODY")
as "$OWN" GET "/api/v1/audit?limit=1&action=user_&before=$NEXT"
ok "… the older page is a user_ entry too" json_check "$BODY" \
    "o.entries.length === 1 && o.entries[0].action.startsWith('user_') && o.entries[0].id < $NEXT"
as "$MEM" GET /api/v1/audit
code_is "the audit log, a member" 403 forbidden

pincer_stop
ok "no password in pincerd's log" test -z "$(grep -F -e "$NPW" -e "$MPW" -e "$PW" -e "$PW2" "$PINCER_LOG" 2>/dev/null)"
done_testing
