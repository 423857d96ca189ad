# SPDX-License-Identifier: MIT
# Sessions slide: past half its life a cookie in use is replaced; the old
# one still dies on time; logout ends every cookie of the session at once.
. "$TOP_SRCDIR/tests/integration/lib.sh"

pincer_start '{ "auth": { "session_ttl_s": 6, "skew_s": 0,
    "argon2_memory_kib": 1024, "argon2_iterations": 1 } }' ||
	{ echo "Bail out! pincerd did not start"; exit 1; }
PW="pw-$(random_token)"
secret_register "$PW"
printf '%s\n' "$PW" | "$PINCER_BIN" user add sam --role admin --password-stdin \
    --state "$PINCER_STATE_DIR" --config "$PINCER_CONF" >/dev/null

# cookie_of HEADERS-FILE: the pincer_session value a response set.
cookie_of() { sed -n 's/^Set-Cookie: pincer_session=\([^;]*\);.*/\1/p' "$1" | tr -d '\r'; }
me() {	# COOKIE -> status of GET /api/v1/me, headers in $T_TMP/h
	curl -s -o "$T_TMP/b" -D "$T_TMP/h" -w '%{http_code}' \
	    -H "Cookie: pincer_session=$1" "$PINCER_URL/api/v1/me"
}

curl -s -o "$T_TMP/login" -D "$T_TMP/lh" -H 'Content-Type: application/json' \
    -d "{\"username\":\"sam\",\"password\":\"$PW\"}" "$PINCER_URL/api/v1/auth/login"
C1=$(cookie_of "$T_TMP/lh")
secret_register "$C1"
like "login sets a session cookie" "$C1" '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$'
is "a fresh cookie works" "$(me "$C1")" 200
is "early in its life no new cookie is set" "$(cookie_of "$T_TMP/h")" ""

sleep 3.3
is "past half its life the cookie still works" "$(me "$C1")" 200
C2=$(cookie_of "$T_TMP/h")
secret_register "$C2"
like "and the answer carries a renewed cookie" "$C2" '^[A-Za-z0-9_-]+\.'
unlike "the renewed cookie is a new token" "$C2" "^$C1\$"
like "with the same flags" "$(grep -i '^Set-Cookie' "$T_TMP/h")" \
    'HttpOnly; SameSite=Strict'

sleep 3.9
is "the old cookie dies on time (6 s; JWT times are whole seconds)" "$(me "$C1")" 401
is "the renewed cookie lives on" "$(me "$C2")" 200
CSRF=$(node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(
    process.argv[1], "utf8")).csrf_token)' "$T_TMP/b")

is "logout with the renewed cookie" "$(curl -s -o /dev/null -w '%{http_code}' \
    -X POST -H "Cookie: pincer_session=$C2" -H "Origin: $PINCER_URL" \
    -H "X-CSRF-Token: $CSRF" "$PINCER_URL/api/v1/auth/logout")" 200
is "after logout the renewed cookie is refused" "$(me "$C2")" 401

pincer_stop
is "pincerd exits 0" "$PINCER_EXIT" 0
done_testing
