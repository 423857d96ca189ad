# SPDX-License-Identifier: MIT
# auth_login.sh: an owner made with the CLI logs in; the session cookie has
# the right flags (Secure only when the gateway is reached over HTTPS: an
# https public_url, or X-Forwarded-Proto from a trusted proxy); /api/v1/me
# answers who is calling; logout kills the cookie; bad bodies get 400; and
# neither the password nor the cookie ever reaches the daemon log.
# Argon2 stays on its default parameters here (the real cost).
. "$TOP_SRCDIR/tests/integration/lib.sh"

unset PINCER_CONFIG PINCER_STATE PINCER_LISTEN
UI="\"admin_ui\": { \"dir\": \"$TOP_SRCDIR/admin-ui\" }"

# req METHOD PATH [CURL ARGS…]: CODE, BODY and HDRS (CR removed).
# jstr JSON KEY: the first string value of KEY (flat, compact JSON).
# The Set-Cookie lines of the last answer, and the session value in them.
set_cookie() { printf '%s\n' "$HDRS" | grep -i '^set-cookie:'; }
cookie_of() { set_cookie | sed -n 's/^[Ss]et-[Cc]ookie: *pincer_session=\([^;]*\).*/\1/p' | head -1; }
# attr NAME[=VALUE-REGEX]: the Set-Cookie line holds that attribute.
has_attr() { set_cookie | grep -Eiq -- "; *$1 *(;|\$)"; }
login() {
	local u=$1 p=$2
	shift 2
	req POST /api/v1/auth/login -H 'Content-Type: application/json' \
	    --data-binary "{\"username\":\"$u\",\"password\":\"$p\"}" "$@"
}

PW=$(random_token)
secret_register "$PW"

# --- plain http, no public_url ------------------------------------------------
if ! pincer_start "{ $UI }"; then
	ok "pincerd starts" false
	done_testing
fi
ORIGIN=$PINCER_URL
printf '%s\n' "$PW" | pcli user add alice --role owner --email alice@example.org \
    --password-stdin >"$T_TMP/cli.out" 2>&1
is "pincer user add alice --role owner (while pincerd runs): exits 0" "$?" 0
unlike "the CLI does not echo the password" "$(cat "$T_TMP/cli.out")" "$PW"

login alice "$PW"
is "login with the right password: 200" "$CODE" 200
is "login answers the user" "$(jstr "$BODY" user)" alice
is "login answers the role" "$(jstr "$BODY" role)" owner
CSRF=$(jstr "$BODY" csrf_token)
like "login answers a csrf_token" "$CSRF" '^[A-Za-z0-9_-]{20,}$'
secret_register "$CSRF"
is "exactly one Set-Cookie" "$(set_cookie | wc -l)" 1
COOKIE=$(cookie_of)
like "the cookie pincer_session holds a JWT" "$COOKIE" \
    '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$'
secret_register "$COOKIE"
ok "the cookie is HttpOnly" has_attr HttpOnly
ok "the cookie is SameSite=Strict" has_attr 'SameSite=Strict'
ok "the cookie has Path=/" has_attr 'Path=/'
ok "the cookie has a positive Max-Age" has_attr 'Max-Age=[1-9][0-9]*'
ok "the cookie has Max-Age=3600 (auth.session_ttl_s default)" has_attr 'Max-Age=3600'
ok "over plain http the cookie is not Secure" test -n "$(set_cookie)" -a -z \
    "$(set_cookie | grep -Ei '; *Secure *(;|$)')"
like "the login answer is not cached (Cache-Control: no-store)" "$HDRS" \
    '^[Cc]ache-[Cc]ontrol: *no-store'

# X-Forwarded-Proto from a peer that is not a trusted proxy is ignored.
login alice "$PW" -H 'X-Forwarded-Proto: https'
is "login with X-Forwarded-Proto: https (no trusted proxy): 200" "$CODE" 200
secret_register "$(cookie_of)"
ok "X-Forwarded-Proto from an untrusted peer: still not Secure" test -n \
    "$(set_cookie)" -a -z "$(set_cookie | grep -Ei '; *Secure *(;|$)')"
COOKIE2=$(cookie_of)
secret_register "$COOKIE2"
ok "a second login gives another session cookie" test -n "$COOKIE2" -a \
    "$COOKIE2" != "$COOKIE"

# --- /api/v1/me --------------------------------------------------------------
req GET /api/v1/me -H "Cookie: pincer_session=$COOKIE"
is "GET /api/v1/me with the cookie: 200" "$CODE" 200
is "/api/v1/me: name" "$(jstr "$BODY" name)" alice
is "/api/v1/me: role owner" "$(jstr "$BODY" role)" owner
is "/api/v1/me: auth session" "$(jstr "$BODY" auth)" session
is "/api/v1/me: email" "$(jstr "$BODY" email)" alice@example.org
is "/api/v1/me: the csrf_token of the session" "$(jstr "$BODY" csrf_token)" "$CSRF"
ok "/api/v1/me: an owner's session has every scope" json_check "$BODY" \
    '["read","llm","sandbox","admin"].every(s => o.scopes.includes(s))'
# Other cookies around ours do not confuse the parser.
req GET /api/v1/me -H "Cookie: theme=dark; pincer_session=$COOKIE; lang=en"
is "GET /api/v1/me with the cookie among others: 200" "$CODE" 200

req GET /api/v1/me
is "GET /api/v1/me without a cookie: 401" "$CODE" 401
is "without a cookie: code unauthenticated" "$(jstr "$BODY" code)" unauthenticated

req GET /api/v1/me -H 'Cookie: pincer_session=garbage'
is "GET /api/v1/me with a garbage cookie: 401" "$CODE" 401
is "a garbage cookie: code invalid_credentials" "$(jstr "$BODY" code)" \
    invalid_credentials
# The same JWT with its payload changed (name → mallory), signature kept.
HDR=${COOKIE%%.*}
SIG=${COOKIE##*.}
PAY=$(node -e 'const b = Buffer.from(process.argv[1], "base64url");
	const o = JSON.parse(b); o.sub = "2"; o.name = "mallory";
	process.stdout.write(Buffer.from(JSON.stringify(o)).toString("base64url"))' \
    "$(printf '%s' "$COOKIE" | cut -d. -f2)")
req GET /api/v1/me -H "Cookie: pincer_session=$HDR.$PAY.$SIG"
is "a cookie with its payload tampered with: 401" "$CODE" 401
# alg none: the header says none, no signature.
NONE=$(node -e 'process.stdout.write(Buffer.from(JSON.stringify({alg:"none",typ:"JWT"})).toString("base64url"))')
req GET /api/v1/me -H "Cookie: pincer_session=$NONE.$(printf '%s' "$COOKIE" | cut -d. -f2)."
is "the cookie's payload re-signed with alg none: 401" "$CODE" 401
req GET /api/v1/me -H "Cookie: other_session=$COOKIE"
is "the JWT under another cookie name: 401 unauthenticated" "$CODE:$(jstr "$BODY" code)" \
    401:unauthenticated

# --- bad logins and bad bodies --------------------------------------------
WRONG=$(random_token)
login alice "$WRONG"
is "login with a wrong password: 401" "$CODE" 401
is "a wrong password: code invalid_credentials" "$(jstr "$BODY" code)" \
    invalid_credentials
is "a wrong password: no Set-Cookie" "$(set_cookie | wc -l)" 0
WRONG_BODY=$BODY
login nobody-here "$WRONG"
is "login as a user that does not exist: the same 401 answer" "$CODE $BODY" \
    "401 $WRONG_BODY"

for b in 'not json' '{"username":"alice"}' '{"password":"x"}' \
    '{"username":1,"password":"x"}' '["alice","x"]' ''; do
	req POST /api/v1/auth/login -H 'Content-Type: application/json' --data-binary "$b"
	is "login with the body '$b': 400" "$CODE" 400
	like "login with the body '$b': an error code" "$(jstr "$BODY" code)" '^bad_'
	is "login with the body '$b': no Set-Cookie" "$(set_cookie | wc -l)" 0
done
# Bad bodies are not failed attempts: the right password still works.
login alice "$PW"
is "after the bad bodies, login still 200 (they were not counted as failures)" "$CODE" 200
COOKIE3=$(cookie_of)
secret_register "$COOKIE3"

# --- logout ----------------------------------------------------------------
req POST /api/v1/auth/logout -H "Cookie: pincer_session=$COOKIE"
is "logout with the cookie but no Origin/X-CSRF-Token: 403" "$CODE" 403
req GET /api/v1/me -H "Cookie: pincer_session=$COOKIE"
is "… and the cookie still works" "$CODE" 200
req POST /api/v1/auth/logout -H "Cookie: pincer_session=$COOKIE" \
    -H "Origin: $ORIGIN" -H "X-CSRF-Token: $CSRF"
is "logout with Origin and X-CSRF-Token: 200" "$CODE" 200
ok "logout clears the cookie (Max-Age=0)" has_attr 'Max-Age=0'
req GET /api/v1/me -H "Cookie: pincer_session=$COOKIE"
is "after logout the same cookie gets 401 on /api/v1/me" "$CODE" 401
is "after logout: code invalid_credentials" "$(jstr "$BODY" code)" \
    invalid_credentials
req POST /api/v1/auth/logout -H "Cookie: pincer_session=$COOKIE" \
    -H "Origin: $ORIGIN" -H "X-CSRF-Token: $CSRF"
is "logout again with the dead cookie: 401" "$CODE" 401
req GET /api/v1/me -H "Cookie: pincer_session=$COOKIE3"
is "another session of the same user still works after that logout" "$CODE" 200
req POST /api/v1/auth/logout
is "logout without any credential: 401" "$CODE" 401

# A disabled user cannot log in, and is told nothing more than a wrong
# password would tell.
pcli user disable alice >/dev/null 2>&1
login alice "$PW"
is "login as a disabled user with the right password: the same 401 answer" \
    "$CODE $BODY" "401 $WRONG_BODY"
pcli user enable alice >/dev/null 2>&1
login alice "$PW"
is "enabled again: login 200" "$CODE" 200
secret_register "$(cookie_of)"

pincer_stop
is "pincerd exits 0" "$PINCER_EXIT" 0
LOGA=$PINCER_LOG
ok "the log has the login lines (audit action=login)" grep -q 'action=login' "$LOGA"
ok "the password is not in the daemon log" test -z "$(grep -F -- "$PW" "$LOGA")"
ok "the session cookie is not in the daemon log" test -z "$(grep -F -- "$COOKIE" "$LOGA")"
ok "the JWT signature is not in the daemon log" test -z "$(grep -F -- "$SIG" "$LOGA")"
ok "the csrf token is not in the daemon log" test -z "$(grep -F -- "$CSRF" "$LOGA")"
ok "the wrong password is not in the daemon log" test -z "$(grep -F -- "$WRONG" "$LOGA")"
secret_register "$WRONG"

# --- public_url https: Secure ----------------------------------------------
if pincer_start "{ $UI, \"public_url\": \"https://pincer.example.org\",
    \"auth\": { \"session_ttl_s\": 600 } }"; then
	printf '%s\n' "$PW" | pcli user add alice --role owner --password-stdin >/dev/null 2>&1
	login alice "$PW"
	is "public_url https: login 200" "$CODE" 200
	secret_register "$(cookie_of)"
	ok "public_url https: the cookie is Secure" has_attr Secure
	ok "public_url https: still HttpOnly" has_attr HttpOnly
	ok "public_url https: still SameSite=Strict" has_attr 'SameSite=Strict'
	ok "auth.session_ttl_s 600: Max-Age=600" has_attr 'Max-Age=600'
	pincer_stop
else
	ok "pincerd starts with public_url https" false
fi

# --- a trusted proxy's X-Forwarded-Proto ------------------------------------
if pincer_start "{ $UI, \"http\": { \"trusted_proxies\": [\"127.0.0.1\"] } }"; then
	printf '%s\n' "$PW" | pcli user add alice --role owner --password-stdin >/dev/null 2>&1
	login alice "$PW" -H 'X-Forwarded-Proto: https'
	is "trusted proxy, X-Forwarded-Proto: https: login 200" "$CODE" 200
	secret_register "$(cookie_of)"
	ok "trusted proxy, X-Forwarded-Proto: https: the cookie is Secure" has_attr Secure
	login alice "$PW" -H 'X-Forwarded-Proto: http'
	secret_register "$(cookie_of)"
	ok "trusted proxy, X-Forwarded-Proto: http: not Secure" test -n \
	    "$(set_cookie)" -a -z "$(set_cookie | grep -Ei '; *Secure *(;|$)')"
	login alice "$PW"
	secret_register "$(cookie_of)"
	ok "trusted proxy, no X-Forwarded-Proto: not Secure" test -n \
	    "$(set_cookie)" -a -z "$(set_cookie | grep -Ei '; *Secure *(;|$)')"
	pincer_stop
	ok "the password is not in the proxy daemon's log" test -z \
	    "$(grep -F -- "$PW" "$PINCER_LOG")"
else
	ok "pincerd starts with trusted_proxies" false
fi

done_testing
