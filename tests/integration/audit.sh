# SPDX-License-Identifier: MIT
# audit.sh: logins (ok and failed), token creation, logout and a config
# reload each leave an audit entry with actor, time and, over HTTP, the
# client's address; GET /api/v1/audit (admin scope and role) lists them
# newest first, a page at a time; a member may not read it.
. "$TOP_SRCDIR/tests/integration/lib.sh"

unset PINCER_CONFIG PINCER_STATE PINCER_LISTEN
FAST='"auth": { "argon2_memory_kib": 1024, "argon2_iterations": 1 }'

login() {
	req POST /api/v1/auth/login -H 'Content-Type: application/json' \
	    --data-binary "{\"username\":\"$1\",\"password\":\"$2\"}"
	COOKIE=$(printf '%s\n' "$HDRS" |
	    sed -n 's/^[Ss]et-[Cc]ookie: *pincer_session=\([^;]*\).*/\1/p')
	CSRF=$(jstr "$BODY" csrf_token)
	[ -n "$COOKIE" ] && secret_register "$COOKIE"
	[ -n "$CSRF" ] && secret_register "$CSRF"
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
audit_has() { req GET '/api/v1/audit?limit=500' -H "Authorization: Bearer $ADM"
	json_check "$BODY" "o.entries.some(e => e.action === '$1')"; }

PW=$(random_token)
MPW=$(random_token)
WRONG=$(random_token)
secret_register "$PW"
secret_register "$MPW"
secret_register "$WRONG"

if ! pincer_start "{ $FAST }"; then
	ok "pincerd starts" false
	done_testing
fi
printf '%s\n' "$PW" | pcli user add alice --role owner --password-stdin >/dev/null 2>&1
is "pincer user add alice --role owner: exits 0" "$?" 0
printf '%s\n' "$MPW" | pcli user add bob --role member --password-stdin >/dev/null 2>&1
is "pincer user add bob --role member: exits 0" "$?" 0
printf '%s\n' "$MPW" | pcli user add carol --role admin --password-stdin >/dev/null 2>&1
is "pincer user add carol --role admin: exits 0" "$?" 0
ADM=$(pcli token create --user alice --scope admin --name auditor 2>/dev/null)
secret_register "$ADM"
like "pincer token create --scope admin: a token" "$ADM" '^pincer_'
req GET '/api/v1/audit?limit=1' -H "Authorization: Bearer $ADM"
is "GET /api/v1/audit with the admin token: 200" "$CODE" 200
FIRST_ID=$(node -e 'process.stdout.write(String(JSON.parse(process.argv[1]).entries[0].id))' "$BODY")

# The events, in this order.
login alice "$WRONG"
is "a failed login: 401" "$CODE" 401
login alice "$PW"
is "a login: 200" "$CODE" 200
req POST /api/v1/tokens -H "Cookie: pincer_session=$COOKIE" -H "Origin: $PINCER_URL" \
    -H "X-CSRF-Token: $CSRF" -H 'Content-Type: application/json' \
    --data-binary '{"name":"ci","scopes":"llm","ttl_s":600}'
is "a token creation: 201" "$CODE" 201
NEW_TOK=$(jstr "$BODY" token)
NEW_ID=$(jstr "$BODY" id)
secret_register "$NEW_TOK"
req POST /api/v1/auth/logout -H "Cookie: pincer_session=$COOKIE" -H "Origin: $PINCER_URL" \
    -H "X-CSRF-Token: $CSRF"
is "a logout: 200" "$CODE" 200
kill -HUP "$PINCER_PID"
ok "a SIGHUP config reload (logged)" wait_log 'config reloaded' 5
ok "… and audited" wait_until 5 audit_has config_reload

req GET '/api/v1/audit?limit=500' -H "Authorization: Bearer $ADM"
is "GET /api/v1/audit?limit=500: 200" "$CODE" 200
ALL=$BODY
printf '%s\n' "$ALL" >"$T_TMP/all.json"
# One line per action, of its newest entry: ACTION TS-OK RECENT ACTOR IP
# ("missing" if there is none).
node -e 'const o = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
	for (const a of process.argv.slice(2)) {
		const e = o.entries.find(x => x.action === a);
		if (!e) { console.log(a + " missing"); continue; }
		const tsok = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$/.test(e.ts);
		const recent = Math.abs(Date.now() - Date.parse(e.ts)) < 60000;
		console.log([a, tsok ? "ts" : "bad-ts:" + e.ts, recent ? "recent" : "old",
		    e.actor || "-", e.ip || "-"].join(" "));
	}' "$T_TMP/all.json" login_failed login token_create logout config_reload \
    >"$T_TMP/actions" 2>&1
field() { awk -v a="$1" -v f="$2" '$1 == a { print $f }' "$T_TMP/actions"; }
for a in login_failed login token_create logout config_reload; do
	ok "an entry with action $a" grep -Eq "^$a [^m]" "$T_TMP/actions"
	is "$a: a ts like 2025-01-02T03:04:05.678Z" "$(field $a 2)" ts
	is "$a: within the last minute" "$(field $a 3)" recent
done
for a in login_failed login token_create logout; do
	is "$a: actor alice" "$(field $a 4)" alice
	is "$a: ip 127.0.0.1 (it came over HTTP)" "$(field $a 5)" 127.0.0.1
done
like "config_reload: an actor (SIGHUP)" "$(field config_reload 4)" SIGHUP
ok "token_create: the target is the new token's id" json_check "$ALL" \
    "(o.entries.find(e => e.action === 'token_create') || {}).target === '$NEW_ID'"
ok "token_use (first use today) of the admin token: actor alice" json_check "$ALL" \
    "o.entries.some(e => e.action === 'token_use' && e.actor === 'alice')"
ok "token_use came over HTTP: ip 127.0.0.1" json_check "$ALL" \
    "o.entries.some(e => e.action === 'token_use' && e.ip === '127.0.0.1')"
ok "the CLI's user_add entries are there, actor cli" json_check "$ALL" \
    "o.entries.filter(e => e.action === 'user_add' && e.actor === 'cli').length === 3"
ok "newest first: ids strictly decreasing" json_check "$ALL" \
    'o.entries.every((e, i) => i === 0 || o.entries[i - 1].id > e.id)'
ok "newest first: ts never increasing" json_check "$ALL" \
    'o.entries.every((e, i) => i === 0 || o.entries[i - 1].ts >= e.ts)'
ok "newest first: config_reload, logout, token_create, login, login_failed" json_check "$ALL" \
    "(() => { const ix = a => o.entries.findIndex(e => e.action === a);
	const s = ['config_reload', 'logout', 'token_create', 'login', 'login_failed'].map(ix);
	return s.every(i => i >= 0) && s.every((v, i) => i === 0 || s[i - 1] < v); })()"
ok "one page holds everything: next_before null" json_check "$ALL" 'o.next_before === null'
ok "no entry holds a password" test -z "$(grep -F -e "$PW" -e "$WRONG" "$T_TMP/all.json")"
ok "no entry holds a token's secret" lacks "$T_TMP/all.json" "$NEW_TOK" "$ADM"

# --- limit=1 walks the same list ------------------------------------------
WALK="" BEFORE="" PAGES=0 BAD=0
while [ "$PAGES" -lt 200 ]; do
	req GET "/api/v1/audit?limit=1${BEFORE:+&before=$BEFORE}" -H "Authorization: Bearer $ADM"
	[ "$CODE" = 200 ] || { BAD=1; break; }
	PAGES=$((PAGES + 1))
	N=$(printf '%s' "$BODY" | grep -o '"id":' | wc -l)
	[ "$N" -le 1 ] || BAD=1
	re='"id":([0-9]+)'
	[[ $BODY =~ $re ]] && WALK="$WALK ${BASH_REMATCH[1]}"
	re='"next_before":([0-9]+)'
	if [[ $BODY =~ $re ]]; then BEFORE=${BASH_REMATCH[1]}; else break; fi
done
is "limit=1: every page answered 200 with at most one entry" "$BAD" 0
WANT=$(node -e 'process.stdout.write(JSON.parse(process.argv[1]).entries.map(e => " " + e.id).join(""))' "$ALL")
# The walk may see entries newer than ALL (token_use is daily, so none).
is "limit=1 walks every entry, newest first, each once" "$WALK" "$WANT"
ok "… in about one page per entry ($PAGES pages, $(printf '%s' "$WANT" | wc -w) entries)" \
    test "$PAGES" -le "$(($(printf '%s' "$WANT" | wc -w) + 1))"
req GET "/api/v1/audit?limit=1&before=$FIRST_ID" -H "Authorization: Bearer $ADM"
ok "before=ID gives entries older than ID" json_check "$BODY" \
    "o.entries.every(e => e.id < $FIRST_ID)"
for q in 'limit=0' 'limit=501' 'limit=-1' 'before=-5'; do
	req GET "/api/v1/audit?$q" -H "Authorization: Bearer $ADM"
	is "GET /api/v1/audit?$q: 400" "$CODE" 400
done

# --- who may read it ------------------------------------------------------
login bob "$MPW"
is "bob (member) logs in: 200" "$CODE" 200
req GET /api/v1/audit -H "Cookie: pincer_session=$COOKIE"
is "a member's session: GET /api/v1/audit 403" "$CODE:$(jstr "$BODY" code)" 403:forbidden
MTOK=$(pcli token create --user bob --scope read,llm,sandbox --name m 2>/dev/null)
secret_register "$MTOK"
req GET /api/v1/audit -H "Authorization: Bearer $MTOK"
is "a member's token with every scope a member may have: 403" "$CODE" 403
login carol "$MPW"
is "carol (admin) logs in: 200" "$CODE" 200
req GET /api/v1/audit -H "Cookie: pincer_session=$COOKIE"
is "an admin's session: GET /api/v1/audit 200" "$CODE" 200
login alice "$PW"
req GET /api/v1/audit -H "Cookie: pincer_session=$COOKIE"
is "the owner's session: GET /api/v1/audit 200" "$CODE" 200
req GET /api/v1/audit
is "no credential: GET /api/v1/audit 401" "$CODE" 401

pincer_stop
ok "the log has audit lines for each action" test \
    "$(grep -c 'msg=audit' "$PINCER_LOG")" -ge 5
ok "the password is not in the daemon log" test -z "$(grep -F -- "$PW" "$PINCER_LOG")"

done_testing
