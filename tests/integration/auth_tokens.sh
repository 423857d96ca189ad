# SPDX-License-Identifier: MIT
# auth_tokens.sh: API tokens. Made by the API (shown once) or the CLI
# (stdout only); scopes decide what a token may call (an llm token cannot
# call admin routes, /metrics needs read); listed without secrets; revoked
# by the API or the CLI; expired or made-up tokens get 401; nobody mints a
# token stronger than themselves; a disabled user's cookie and tokens stop
# working at once, and work again when the user is enabled.
. "$TOP_SRCDIR/tests/integration/lib.sh"

unset PINCER_CONFIG PINCER_STATE PINCER_LISTEN
FAST='"auth": { "argon2_memory_kib": 1024, "argon2_iterations": 1 }'

# login USER PW: COOKIE and CSRF of a new session.
login() {
	req POST /api/v1/auth/login -H 'Content-Type: application/json' \
	    --data-binary "{\"username\":\"$1\",\"password\":\"$2\"}"
	COOKIE=$(printf '%s\n' "$HDRS" |
	    sed -n 's/^[Ss]et-[Cc]ookie: *pincer_session=\([^;]*\).*/\1/p')
	CSRF=$(jstr "$BODY" csrf_token)
	secret_register "$COOKIE"
	secret_register "$CSRF"
}
# as_cookie METHOD PATH [CURL ARGS]: with the session of the last login,
# from our own origin, with its CSRF token.
as_cookie() {
	local m=$1 p=$2
	shift 2
	req "$m" "$p" -H "Cookie: pincer_session=$COOKIE" -H "Origin: $PINCER_URL" \
	    -H "X-CSRF-Token: $CSRF" "$@"
}
# bearer TOKEN METHOD PATH [CURL ARGS]
bearer() {
	local t=$1 m=$2 p=$3
	shift 3
	req "$m" "$p" -H "Authorization: Bearer $t" "$@"
}
# lacks FILE TOKEN…: FILE holds the secret part of none of the tokens (each
# secret must be long enough to search for).
lacks() {
	local f=$1 t s
	shift
	for t in "$@"; do
		s=${t#pincer_*_}
		[ "${#s}" -ge 20 ] || return 1
		! grep -qF -- "$s" "$f" || return 1
	done
}
# new_token_body NAME SCOPES TTL
tbody() { printf '{"name":"%s","scopes":"%s","ttl_s":%s}' "$1" "$2" "$3"; }
keep_token() {
	TOK=$(jstr "$BODY" token)
	TID=$(jstr "$BODY" id)
	[ -n "$TOK" ] && secret_register "$TOK"
}

PW=$(random_token)
MPW=$(random_token)
secret_register "$PW"
secret_register "$MPW"

if ! pincer_start "{ $FAST }"; then
	ok "pincerd starts" false
	done_testing
fi
printf '%s\n' "$PW" | pcli user add alice --role owner --password-stdin >/dev/null 2>&1
is "pincer user add alice --role owner: exits 0" "$?" 0
printf '%s\n' "$MPW" | pcli user add bob --role member --password-stdin >/dev/null 2>&1
is "pincer user add bob --role member: exits 0" "$?" 0

# --- an llm token, made by the owner through the API --------------------
login alice "$PW"
is "alice logs in: 200" "$CODE" 200
ALICE_COOKIE=$COOKIE ALICE_CSRF=$CSRF
as_cookie POST /api/v1/tokens -H 'Content-Type: application/json' \
    --data-binary "$(tbody agent llm 3600)"
is "POST /api/v1/tokens {scopes: llm, ttl_s: 3600}: 201" "$CODE" 201
keep_token
LLM=$TOK LLM_ID=$TID
like "the token is in the answer" "$LLM" '^pincer_[0-9a-f]{12}_[A-Za-z0-9_-]{40,}$'
like "its id is in the answer" "$LLM_ID" '^[0-9a-f]{12}$'
ok "the id is the token's public part" test "${LLM#pincer_"$LLM_ID"_}" != "$LLM"
like "the answer says it is shown once" "$(jstr "$BODY" note)" 'once'
like "the answer is not cached" "$HDRS" '^[Cc]ache-[Cc]ontrol: *no-store'

bearer "$LLM" GET /api/v1/me
is "GET /api/v1/me with the llm token: 200" "$CODE" 200
is "/api/v1/me: name alice" "$(jstr "$BODY" name)" alice
is "/api/v1/me: auth token" "$(jstr "$BODY" auth)" token
is "/api/v1/me: token_id" "$(jstr "$BODY" token_id)" "$LLM_ID"
ok "/api/v1/me: scopes [\"llm\"] exactly" json_check "$BODY" \
    'JSON.stringify(o.scopes) === JSON.stringify(["llm"])'
ok "/api/v1/me: no csrf_token for a token" json_check "$BODY" '!("csrf_token" in o)'
bearer "$LLM" GET /api/v1/audit
is "GET /api/v1/audit with the llm token (owner's, but no admin scope): 403" \
    "$CODE:$(jstr "$BODY" code)" 403:forbidden
bearer "$LLM" GET /metrics
is "GET /metrics with the llm token (no read scope): 403" "$CODE" 403
bearer "$LLM" POST /api/v1/tokens -H 'Content-Type: application/json' \
    --data-binary "$(tbody up admin 60)"
is "the llm token cannot mint an admin token: 403" "$CODE" 403
bearer "$LLM" POST /api/v1/tokens -H 'Content-Type: application/json' \
    --data-binary "$(tbody up read 60)"
is "the llm token cannot mint a read token either: 403" "$CODE" 403
bearer "$LLM" POST /api/v1/tokens -H 'Content-Type: application/json' \
    --data-binary "$(tbody child llm 60)"
is "the llm token may mint an llm token: 201" "$CODE" 201
keep_token
CHILD=$TOK

# --- read and admin tokens ----------------------------------------------
as_cookie POST /api/v1/tokens -H 'Content-Type: application/json' \
    --data-binary "$(tbody monitor read 3600)"
is "POST /api/v1/tokens {scopes: read}: 201" "$CODE" 201
keep_token
READ=$TOK READ_ID=$TID
bearer "$READ" GET /metrics
is "GET /metrics with the read token: 200" "$CODE" 200
like "… and it is the metrics text" "$BODY" 'pincer_'
bearer "$READ" GET /api/v1/audit
is "GET /api/v1/audit with the read token: 403" "$CODE" 403
req GET /metrics
is "GET /metrics without a credential: 401" "$CODE" 401

for b in '{"name":"x","scopes":"root","ttl_s":60}' '{"name":"x","scopes":"read","ttl_s":-1}' \
    '{"scopes":"read","ttl_s":60}' '{"name":"x","ttl_s":60}' '{"name":"x","scopes":"","ttl_s":60}' \
    '{"name":"x","scopes":"read","ttl_s":"60"}' '{"name":"x","scopes":"read","ttl_s":1.5}' \
    '{"name":"x","scopes":"read","ttl_s":9223372036854775807}'; do
	as_cookie POST /api/v1/tokens -H 'Content-Type: application/json' --data-binary "$b"
	is "POST /api/v1/tokens $b: 400" "$CODE" 400
	keep_token
done

as_cookie POST /api/v1/tokens -H 'Content-Type: application/json' \
    --data-binary "$(tbody ops admin,read 3600)"
is "POST /api/v1/tokens {scopes: admin,read}: 201" "$CODE" 201
keep_token
ADM=$TOK ADM_ID=$TID
bearer "$ADM" GET '/api/v1/audit?limit=2'
is "GET /api/v1/audit?limit=2 with the admin token: 200" "$CODE" 200
ok "page 1 has 2 entries, newest first" json_check "$BODY" \
    'o.entries.length === 2 && o.entries[0].id > o.entries[1].id'
ok "page 1 has a next_before, the id of its last entry" json_check "$BODY" \
    'o.next_before === o.entries[1].id'
P1=$BODY
NB=$(node -e 'process.stdout.write(String(JSON.parse(process.argv[1]).next_before))' "$P1")
bearer "$ADM" GET "/api/v1/audit?limit=2&before=$NB"
is "GET /api/v1/audit?limit=2&before=$NB: 200" "$CODE" 200
ok "page 2 has older entries than page 1, none repeated" json_check "$BODY" \
    "o.entries.length >= 1 && o.entries.every(e => e.id < $NB)"
bearer "$ADM" GET '/api/v1/audit?limit=0'
is "GET /api/v1/audit?limit=0: 400" "$CODE" 400
bearer "$ADM" GET '/api/v1/audit?limit=100000'
is "GET /api/v1/audit?limit=100000: 400" "$CODE" 400

# --- the list never holds a secret --------------------------------------
bearer "$ADM" GET /api/v1/tokens
is "GET /api/v1/tokens: 200" "$CODE" 200
LIST=$BODY
ok "the list has the llm token by id and name" json_check "$LIST" \
    "o.tokens.some(t => t.id === '$LLM_ID' && t.name === 'agent' && t.scopes === 'llm' && t.user === 'alice')"
printf '%s\n' "$LIST" >"$T_TMP/list.json"
for t in "$LLM" "$READ" "$ADM" "$CHILD"; do
	ok "the list does not hold the token ${t:0:20}…" lacks "$T_TMP/list.json" "$t"
done
ok "no field of a listed token looks like a secret" json_check "$LIST" \
    'o.tokens.every(t => !Object.keys(t).some(k => /secret|hash|token/.test(k)))'
ok "the list records the llm token's last use" json_check "$LIST" \
    "o.tokens.some(t => t.id === '$LLM_ID' && /^20[0-9][0-9]-/.test(t.last_used_at))"

# --- revoke by the API ----------------------------------------------------
bearer "$LLM" GET /api/v1/me
is "before revoking, the llm token works" "$CODE" 200
as_cookie DELETE "/api/v1/tokens/$LLM_ID"
is "DELETE /api/v1/tokens/$LLM_ID: 200" "$CODE" 200
bearer "$LLM" GET /api/v1/me
is "the revoked token gets 401" "$CODE:$(jstr "$BODY" code)" 401:invalid_credentials
as_cookie DELETE "/api/v1/tokens/$LLM_ID"
is "DELETE it again: 404" "$CODE" 404
as_cookie DELETE /api/v1/tokens/000000000000
is "DELETE an unknown id: 404" "$CODE" 404
bearer "$CHILD" GET /api/v1/me
is "the token the revoked one made still works (revoking is per token)" "$CODE" 200
bearer "$ADM" GET /api/v1/tokens
ok "the list marks the token revoked" json_check "$BODY" \
    "o.tokens.some(t => t.id === '$LLM_ID' && t.revoked === true)"

# --- tokens that never were, and that expired ----------------------------
bearer pincer_000000000000_xxx GET /api/v1/me
is "a made-up token pincer_000000000000_xxx: 401" "$CODE:$(jstr "$BODY" code)" \
    401:invalid_credentials
FORGED="pincer_${ADM_ID}_$(random_token)"
bearer "$FORGED" GET /api/v1/me
is "a real token id with a made-up secret: 401" "$CODE" 401
bearer "${ADM}x" GET /api/v1/me
is "a real token with one character more: 401" "$CODE" 401
bearer "$(random_token)" GET /api/v1/me
is "a Bearer value that is not a pincer token: 401" "$CODE" 401
req GET /api/v1/me -H "Authorization: Basic $(printf 'alice:%s' "$PW" | base64 -w0)"
is "Authorization: Basic: 401" "$CODE" 401
secret_register "$(printf 'alice:%s' "$PW" | base64 -w0)"
req GET /api/v1/me -H "Authorization: Bearer $LLM" -H "Cookie: pincer_session=$ALICE_COOKIE"
is "a revoked token with a good cookie: 401 (the bad one is not passed over)" "$CODE" 401

SHORT=$(pcli token create --user alice --scope read --name short --ttl 2s 2>/dev/null)
secret_register "$SHORT"
bearer "$SHORT" GET /api/v1/me
is "a token with --ttl 2s works at first" "$CODE" 200
expired() { bearer "$SHORT" GET /api/v1/me; [ "$CODE" = 401 ]; }
ok "… and gets 401 once expired (within 5 s)" wait_until 5 expired

# --- members ------------------------------------------------------------------
login bob "$MPW"
is "bob (member) logs in: 200" "$CODE" 200
BOB_COOKIE=$COOKIE
as_cookie POST /api/v1/tokens -H 'Content-Type: application/json' \
    --data-binary "$(tbody bobadmin admin 3600)"
is "a member creating an admin-scoped token via the API: 403" "$CODE" 403
keep_token
as_cookie POST /api/v1/tokens -H 'Content-Type: application/json' \
    --data-binary "$(tbody bobllm llm,read 3600)"
is "a member creating an llm,read token: 201" "$CODE" 201
keep_token
BOB_TOK=$TOK BOB_TID=$TID
bearer "$BOB_TOK" POST /api/v1/tokens -H 'Content-Type: application/json' \
    --data-binary "$(tbody sneaky admin 60)"
is "a member's token creating an admin token: 403" "$CODE" 403
keep_token
bearer "$BOB_TOK" GET /api/v1/tokens
ok "a member lists only their own tokens" json_check "$BODY" \
    "o.tokens.length >= 1 && o.tokens.every(t => t.user === 'bob')"
bearer "$BOB_TOK" DELETE "/api/v1/tokens/$READ_ID"
is "a member cannot revoke alice's token: 404" "$CODE" 404
bearer "$READ" GET /metrics
is "… and alice's token still works" "$CODE" 200
pcli token create --user bob --scope admin --name nope >"$T_TMP/out" 2>"$T_TMP/err"
RC=$?
ok "pincer token create --user bob --scope admin (member): non-zero ($RC)" test "$RC" -ne 0
is "… and no token on stdout" "$(cat "$T_TMP/out")" ""
bearer "$ADM" GET /api/v1/tokens
ok "the owner's admin token lists everyone's tokens" json_check "$BODY" \
    "o.tokens.some(t => t.user === 'bob') && o.tokens.some(t => t.user === 'alice')"

# --- the CLI ---------------------------------------------------------------
pcli token create --user alice --scope read --name x >"$T_TMP/out" 2>"$T_TMP/err"
is "pincer token create --user alice --scope read --name x: exits 0" "$?" 0
CLITOK=$(cat "$T_TMP/out")
secret_register "$CLITOK"
is "stdout is one line" "$(wc -l <"$T_TMP/out")" 1
like "stdout is the token" "$CLITOK" '^pincer_[0-9a-f]{12}_[A-Za-z0-9_-]{40,}$'
ok "stderr does not hold the token" lacks "$T_TMP/err" "$CLITOK"
CLI_ID=${CLITOK#pincer_}
CLI_ID=${CLI_ID%%_*}
bearer "$CLITOK" GET /metrics
is "the CLI's read token reads /metrics: 200" "$CODE" 200
pcli token list >"$T_TMP/out" 2>"$T_TMP/err"
is "pincer token list: exits 0" "$?" 0
ok "pincer token list: has x, by its id" json_check "$(cat "$T_TMP/out")" \
    "o.some(t => t.id === '$CLI_ID' && t.name === 'x')"
ok "pincer token list: no token secret in it" lacks "$T_TMP/out" "$CLITOK" "$ADM" "$READ"
pcli token list --user bob >"$T_TMP/out" 2>"$T_TMP/err"
ok "pincer token list --user bob: only bob's" json_check "$(cat "$T_TMP/out")" \
    "o.length >= 1 && o.every(t => t.user === 'bob')"
pcli token revoke "$CLI_ID" >"$T_TMP/out" 2>"$T_TMP/err"
is "pincer token revoke ID: exits 0" "$?" 0
bearer "$CLITOK" GET /metrics
is "the revoked CLI token gets 401 (pincerd running all along)" "$CODE" 401
pcli token revoke "$CLI_ID" >/dev/null 2>&1
ok "pincer token revoke of a revoked token: non-zero" test "$?" -ne 0
pcli token create --user nobody --scope read --name y >"$T_TMP/out" 2>/dev/null
ok "pincer token create for a user that does not exist: non-zero, no token" \
    test "$?" -ne 0 -a ! -s "$T_TMP/out"
pcli token create --user alice --scope reed --name y >"$T_TMP/out" 2>/dev/null
ok "pincer token create --scope reed (a typo): non-zero, no token" \
    test "$?" -ne 0 -a ! -s "$T_TMP/out"

# --- disabling a user: cookie and tokens stop at once ----------------------
req GET /api/v1/me -H "Cookie: pincer_session=$BOB_COOKIE"
is "bob's cookie works" "$CODE" 200
bearer "$BOB_TOK" GET /api/v1/me
is "bob's token works" "$CODE" 200
pcli user disable bob >/dev/null 2>&1
is "pincer user disable bob (pincerd running): exits 0" "$?" 0
req GET /api/v1/me -H "Cookie: pincer_session=$BOB_COOKIE"
is "disabled: bob's cookie gets 401 at once" "$CODE" 401
bearer "$BOB_TOK" GET /api/v1/me
is "disabled: bob's token gets 401 at once" "$CODE" 401
bearer "$ADM" GET /api/v1/me
is "alice's token is not touched" "$CODE" 200
pcli user enable bob >/dev/null 2>&1
is "pincer user enable bob: exits 0" "$?" 0
req GET /api/v1/me -H "Cookie: pincer_session=$BOB_COOKIE"
is "enabled again: bob's cookie works" "$CODE" 200
bearer "$BOB_TOK" GET /api/v1/me
is "enabled again: bob's token works" "$CODE" 200
pcli user disable nobody >/dev/null 2>&1
ok "pincer user disable of a user that does not exist: non-zero" test "$?" -ne 0

pincer_stop
for t in "$ADM" "$READ" "$CHILD" "$BOB_TOK" "$CLITOK" "$ALICE_COOKIE"; do
	ok "a token/cookie (${t:0:12}…) is not in the daemon log" test -z \
	    "$(grep -F -- "$t" "$PINCER_LOG")"
done

done_testing
