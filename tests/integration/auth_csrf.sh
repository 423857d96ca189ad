# SPDX-License-Identifier: MIT
# auth_csrf.sh: a state-changing request carried by the session cookie
# must come from our own origin (Origin, else Referer: public_url if set,
# else http://<Host>) and carry the session's X-CSRF-Token. A GET needs
# neither; an API token (Bearer) needs neither.
. "$TOP_SRCDIR/tests/integration/lib.sh"

unset PINCER_CONFIG PINCER_STATE PINCER_LISTEN
UI="\"admin_ui\": { \"dir\": \"$TOP_SRCDIR/admin-ui\" }"
FAST='"auth": { "argon2_memory_kib": 1024, "argon2_iterations": 1 }'

# jstr JSON KEY: the first string value of KEY (flat, compact JSON).
jv() {
	node -e 'let v; try { const o = JSON.parse(process.argv[1]);
		v = eval(process.argv[2]); } catch (e) { v = "<" + e.message + ">"; }
		process.stdout.write(typeof v === "string" ? v : String(JSON.stringify(v)))' \
	    "$1" "$2"
}
cookie_of() {
	printf '%s\n' "$HDRS" | sed -n 's/^[Ss]et-[Cc]ookie: *pincer_session=\([^;]*\).*/\1/p' | head -1
}
# login USER PW: COOKIE and CSRF of a new session.
login() {
	req POST /api/v1/auth/login -H 'Content-Type: application/json' \
	    --data-binary "{\"username\":\"$1\",\"password\":\"$2\"}"
	COOKIE=$(cookie_of)
	CSRF=$(jstr "$BODY" csrf_token)
	secret_register "$COOKIE"
	secret_register "$CSRF"
}
N=0
# mint [CURL ARGS…]: POST /api/v1/tokens with the session cookie; a new
# token name each time. A token that comes back is a secret.
mint() {
	N=$((N + 1))
	req POST /api/v1/tokens -H "Cookie: pincer_session=$COOKIE" \
	    -H 'Content-Type: application/json' \
	    --data-binary "{\"name\":\"csrf-$N\",\"scopes\":\"read\",\"ttl_s\":600}" "$@"
	case $BODY in *'"token"'*) secret_register "$(jstr "$BODY" token)" ;; esac
}
# refused DESC [CURL ARGS…]: the mint is 403 csrf, and makes no token.
refused() {
	local desc=$1
	shift
	mint "$@"
	is "$desc: 403 csrf" "$CODE:$(jstr "$BODY" code)" 403:csrf
}
tokens_count() {
	req GET /api/v1/tokens -H "Cookie: pincer_session=$COOKIE"
	jv "$BODY" 'o.tokens.length'
}

PW=$(random_token)
secret_register "$PW"

# --- no public_url: the origin is http://<Host> --------------------------
if ! pincer_start "{ $UI, $FAST }"; then
	ok "pincerd starts" false
	done_testing
fi
ORIGIN="http://$PINCER_ADDR"	# what a browser sends for this Host
PORT=$(pincer_port)
printf '%s\n' "$PW" | pcli user add alice --role owner --password-stdin >/dev/null 2>&1
is "pincer user add alice: exits 0" "$?" 0
login alice "$PW"
is "login: 200" "$CODE" 200
OTHER_CSRF=$CSRF
login alice "$PW"
ok "a second session has its own csrf token" test -n "$CSRF" -a "$CSRF" != "$OTHER_CSRF"
BEFORE=$(tokens_count)

refused "POST /api/v1/tokens with the cookie, no Origin, with the token" \
    -H "X-CSRF-Token: $CSRF"
refused "… Origin: http://evil.example, with the token" \
    -H 'Origin: http://evil.example' -H "X-CSRF-Token: $CSRF"
refused "… Origin: null, with the token" -H 'Origin: null' -H "X-CSRF-Token: $CSRF"
refused "… the right Origin but over https, with the token" \
    -H "Origin: https://$PINCER_ADDR" -H "X-CSRF-Token: $CSRF"
refused "… Origin on another port, with the token" \
    -H "Origin: http://127.0.0.1:$((PORT == 65535 ? 1 : PORT + 1))" -H "X-CSRF-Token: $CSRF"
refused "… Origin with the right host as a prefix ($ORIGIN.evil.example)" \
    -H "Origin: $ORIGIN.evil.example" -H "X-CSRF-Token: $CSRF"
refused "… the right Origin, no X-CSRF-Token" -H "Origin: $ORIGIN"
refused "… the right Origin, an empty X-CSRF-Token" -H "Origin: $ORIGIN" -H 'X-CSRF-Token;'
refused "… the right Origin, a wrong X-CSRF-Token" -H "Origin: $ORIGIN" \
    -H "X-CSRF-Token: $(random_token)"
refused "… the right Origin, the token of another session" -H "Origin: $ORIGIN" \
    -H "X-CSRF-Token: $OTHER_CSRF"
refused "… the right Origin, the token with one more character" \
    -H "Origin: $ORIGIN" -H "X-CSRF-Token: ${CSRF}A"
refused "… the right Origin, the token cut by one character" \
    -H "Origin: $ORIGIN" -H "X-CSRF-Token: ${CSRF%?}"
refused "… Origin evil, Referer right (Origin decides)" \
    -H 'Origin: http://evil.example' -H "Referer: $ORIGIN/" -H "X-CSRF-Token: $CSRF"
refused "… Referer http://evil.example/, with the token" \
    -H 'Referer: http://evil.example/' -H "X-CSRF-Token: $CSRF"
refused "… Referer with the right origin as a prefix of its host" \
    -H "Referer: $ORIGIN.evil.example/x" -H "X-CSRF-Token: $CSRF"
refused "… Referer with the right origin in its path" \
    -H "Referer: http://evil.example/$ORIGIN/" -H "X-CSRF-Token: $CSRF"
is "none of the refused requests made a token" "$(tokens_count)" "$BEFORE"

mint -H "Origin: $ORIGIN" -H "X-CSRF-Token: $CSRF"
is "the right Origin ($ORIGIN) and X-CSRF-Token: 201" "$CODE" 201
like "… and a token comes back" "$(jstr "$BODY" token)" '^pincer_'
TID=$(jstr "$BODY" id)
mint -H "Referer: $ORIGIN/admin/tokens.html" -H "X-CSRF-Token: $CSRF"
is "a Referer from the right origin (no Origin) and X-CSRF-Token: 201" "$CODE" 201
mint -H "Referer: $ORIGIN" -H "X-CSRF-Token: $CSRF"
is "a Referer that is the bare origin: 201" "$CODE" 201
is "three tokens more in the list" "$(tokens_count)" "$((BEFORE + 3))"

# GETs need no CSRF.
req GET /api/v1/tokens -H "Cookie: pincer_session=$COOKIE" -H 'Origin: http://evil.example'
is "GET /api/v1/tokens with the cookie, Origin evil, no X-CSRF-Token: 200" "$CODE" 200
req GET /api/v1/me -H "Cookie: pincer_session=$COOKIE"
is "GET /api/v1/me with the cookie, no Origin/X-CSRF-Token: 200" "$CODE" 200
req GET /api/v1/audit -H "Cookie: pincer_session=$COOKIE"
is "GET /api/v1/audit with the owner's cookie, no CSRF: 200" "$CODE" 200

# DELETE is state-changing too.
req DELETE "/api/v1/tokens/$TID" -H "Cookie: pincer_session=$COOKIE" \
    -H 'Origin: http://evil.example' -H "X-CSRF-Token: $CSRF"
is "DELETE /api/v1/tokens/ID with the cookie from Origin evil: 403 csrf" \
    "$CODE:$(jstr "$BODY" code)" 403:csrf
req DELETE "/api/v1/tokens/$TID" -H "Cookie: pincer_session=$COOKIE" -H "Origin: $ORIGIN"
is "DELETE with the right Origin, no X-CSRF-Token: 403 csrf" \
    "$CODE:$(jstr "$BODY" code)" 403:csrf
req DELETE "/api/v1/tokens/$TID" -H "Cookie: pincer_session=$COOKIE" \
    -H "Origin: $ORIGIN" -H "X-CSRF-Token: $CSRF"
is "DELETE with the right Origin and X-CSRF-Token: 200" "$CODE" 200

# An API token is not ambient (a browser never adds it): no CSRF check.
ADMIN_TOK=$(pcli token create --user alice --scope admin,read --name csrf-admin 2>/dev/null)
secret_register "$ADMIN_TOK"
like "pincer token create: an admin token" "$ADMIN_TOK" '^pincer_'
req POST /api/v1/tokens -H "Authorization: Bearer $ADMIN_TOK" \
    -H 'Content-Type: application/json' --data-binary '{"name":"b1","scopes":"read","ttl_s":60}'
is "POST /api/v1/tokens with a Bearer token, no Origin, no X-CSRF-Token: 201" "$CODE" 201
secret_register "$(jstr "$BODY" token)"
req POST /api/v1/tokens -H "Authorization: Bearer $ADMIN_TOK" -H 'Origin: http://evil.example' \
    -H 'Content-Type: application/json' --data-binary '{"name":"b2","scopes":"read","ttl_s":60}'
is "POST /api/v1/tokens with a Bearer token and Origin evil: 201" "$CODE" 201
secret_register "$(jstr "$BODY" token)"
# A Bearer token with the cookie: the token is the credential.
req POST /api/v1/tokens -H "Authorization: Bearer $ADMIN_TOK" \
    -H "Cookie: pincer_session=$COOKIE" \
    -H 'Content-Type: application/json' --data-binary '{"name":"b3","scopes":"read","ttl_s":60}'
is "Bearer token and cookie together, no CSRF: 201 (the token decides)" "$CODE" 201
secret_register "$(jstr "$BODY" token)"

# Logout is a POST: a cross-site page cannot log the user out.
req POST /api/v1/auth/logout -H "Cookie: pincer_session=$COOKIE" \
    -H 'Origin: http://evil.example' -H "X-CSRF-Token: $CSRF"
is "logout from Origin evil: 403" "$CODE" 403
req GET /api/v1/me -H "Cookie: pincer_session=$COOKIE"
is "… the session still works" "$CODE" 200
pincer_stop

# --- public_url set: Origin must equal it --------------------------------
PUB=https://pincer.example.org
if ! pincer_start "{ $UI, $FAST, \"public_url\": \"$PUB\" }"; then
	ok "pincerd starts with public_url" false
	done_testing
fi
ORIGIN="http://$PINCER_ADDR"
printf '%s\n' "$PW" | pcli user add alice --role owner --password-stdin >/dev/null 2>&1
login alice "$PW"
is "public_url: login 200" "$CODE" 200
refused "public_url: the Host's origin ($ORIGIN) is no longer enough" \
    -H "Origin: $ORIGIN" -H "X-CSRF-Token: $CSRF"
refused "public_url: Origin http://pincer.example.org (http, not https)" \
    -H 'Origin: http://pincer.example.org' -H "X-CSRF-Token: $CSRF"
refused "public_url: Origin $PUB.evil.example" \
    -H "Origin: $PUB.evil.example" -H "X-CSRF-Token: $CSRF"
refused "public_url: Origin $PUB but no X-CSRF-Token" -H "Origin: $PUB"
refused "public_url: Referer $ORIGIN/ (the Host's origin)" \
    -H "Referer: $ORIGIN/" -H "X-CSRF-Token: $CSRF"
mint -H "Origin: $PUB" -H "X-CSRF-Token: $CSRF"
is "public_url: Origin $PUB and X-CSRF-Token: 201" "$CODE" 201
mint -H "Referer: $PUB/settings" -H "X-CSRF-Token: $CSRF"
is "public_url: Referer $PUB/settings and X-CSRF-Token: 201" "$CODE" 201
# The Host a client sends does not matter once public_url is set.
mint -H "Host: pincer.example.org" -H "Origin: $PUB" -H "X-CSRF-Token: $CSRF"
is "public_url: Host pincer.example.org, Origin $PUB: 201" "$CODE" 201
refused "public_url: Host evil.example and Origin http://evil.example" \
    -H 'Host: evil.example' -H 'Origin: http://evil.example' -H "X-CSRF-Token: $CSRF"
pincer_stop
ok "the csrf token is not in the daemon log" test -z "$(grep -F -- "$CSRF" "$PINCER_LOG")"

done_testing
