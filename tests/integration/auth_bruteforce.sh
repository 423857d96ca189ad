# SPDX-License-Identifier: MIT
# auth_bruteforce.sh: failed logins slow down, per client IP and per user
# name: three wrong passwords are answered 401, then every try gets 429
# too_many_attempts with a wait that grows; the right password waits too.
# A name that does not exist goes through exactly the same answers, so
# the login never tells which users exist. Failures are in the audit log.
#
# Each side gets its own client address (X-Forwarded-For from a trusted
# proxy, 127.0.0.1), so the per-IP count of one does not lock the other.
. "$TOP_SRCDIR/tests/integration/lib.sh"

unset PINCER_CONFIG PINCER_STATE PINCER_LISTEN
FAST='"auth": { "argon2_memory_kib": 1024, "argon2_iterations": 1 }'

# try IP USER PASSWORD: one login from client address IP.
try() {
	req POST /api/v1/auth/login -H "X-Forwarded-For: $1" \
	    -H 'Content-Type: application/json' \
	    --data-binary "{\"username\":\"$2\",\"password\":\"$3\"}"
	case $HDRS in *[Ss]et-[Cc]ookie:\ pincer_session=?*)
		secret_register "$(printf '%s\n' "$HDRS" |
		    sed -n 's/^[Ss]et-[Cc]ookie: *pincer_session=\([^;]*\).*/\1/p')" ;;
	esac
}
# The wait a 429 asks for: Retry-After, else "wait N s" in the message.
wait_of() {
	local ra re='wait ([0-9]+) ?s'
	ra=$(printf '%s\n' "$HDRS" | sed -n 's/^[Rr]etry-[Aa]fter: *\([0-9]*\).*/\1/p')
	if [ -n "$ra" ]; then
		printf '%s' "$ra"
	elif [[ $BODY =~ $re ]]; then
		printf '%s' "${BASH_REMATCH[1]}"
	fi
}
# burst IP USER PASSWORD [IP USER PASSWORD …]: the logins back to back
# in one curl (no process started between them: the first lock lasts one
# second, and a loaded machine must not outlast it). CODES, BODIES, HEADS.
burst() {
	local args=() n=0 j
	while [ $# -ge 3 ]; do
		[ "$n" -gt 0 ] && args+=(--next)
		args+=(-sS --max-time 10 -o "$T_TMP/burst.$n.body" -D "$T_TMP/burst.$n.hdrs"
		    -w '%{http_code}\n' -X POST -H "X-Forwarded-For: $1"
		    -H 'Content-Type: application/json'
		    --data-binary "{\"username\":\"$2\",\"password\":\"$3\"}"
		    "$PINCER_URL/api/v1/auth/login")
		rm -f "$T_TMP/burst.$n.body" "$T_TMP/burst.$n.hdrs"
		n=$((n + 1))
		shift 3
	done
	mapfile -t CODES < <(curl "${args[@]}" 2>"$T_TMP/curl.err")
	BODIES=() HEADS=()
	for ((j = 0; j < n; j++)); do
		BODIES+=("$(cat "$T_TMP/burst.$j.body" 2>/dev/null)")
		HEADS+=("$(tr -d '\r' <"$T_TMP/burst.$j.hdrs" 2>/dev/null)")
		case ${HEADS[j]} in *[Ss]et-[Cc]ookie:\ pincer_session=?*)
			secret_register "$(printf '%s\n' "${HEADS[j]}" |
			    sed -n 's/^[Ss]et-[Cc]ookie: *pincer_session=\([^;]*\).*/\1/p')" ;;
		esac
	done
}
# pick I: CODE, BODY and HDRS of the I-th login of the last burst.
pick() { CODE=${CODES[$1]:-000} BODY=${BODIES[$1]:-} HDRS=${HEADS[$1]:-}; }
# seq_log WHO STEP: append the last picked answer to WHO's record (A or B).
A_LOG="" B_LOG=""
seq_log() {
	if [ "$1" = A ]; then A_LOG="$A_LOG$2: $CODE $BODY
"; else B_LOG="$B_LOG$2: $CODE $BODY
"; fi
}
# lock_run WHO IP USER: the whole lockout sequence for one user name from
# one address. Sets W1 and W2, the two waits.
lock_run() {
	local who=$1 ip=$2 user=$3 i
	burst "$ip" "$user" "$WRONG" "$ip" "$user" "$WRONG" "$ip" "$user" "$WRONG" \
	    "$ip" "$user" "$WRONG" "$ip" "$user" "$PW"
	for i in 0 1 2; do
		pick $i
		seq_log "$who" "wrong $((i + 1))"
		is "$user: wrong password $((i + 1)): 401" "$CODE" 401
	done
	is "$user: the 401 says invalid_credentials" "$(jstr "$BODY" code)" invalid_credentials
	pick 3
	seq_log "$who" "wrong 4"
	is "$user: the 4th try: 429" "$CODE" 429
	[ "$CODE" = 429 ] || pick 4	# the wait of the first 429
	is "$user: the 429 says too_many_attempts" "$(jstr "$BODY" code)" too_many_attempts
	W1=$(wait_of)
	like "$user: the 429 gives the wait, as Retry-After or in the message ($W1)" \
	    "$W1" '^[1-9][0-9]*$'
	: "${W1:=1}"
	pick 4
	seq_log "$who" "right password, locked"
	is "$user: the right password during the lockout: 429 still" "$CODE" 429
	is "$user: … and no cookie" "$(printf '%s\n' "$HDRS" | grep -ci '^set-cookie:')" 0
	# Wait the first lockout out: one more failure locks again, longer.
	sleep "$W1"
	burst "$ip" "$user" "$WRONG" "$ip" "$user" "$WRONG"
	pick 0
	seq_log "$who" "wrong after the wait"
	is "$user: after waiting ${W1}s, a wrong password: 401 again" "$CODE" 401
	pick 1
	seq_log "$who" "wrong, locked again"
	is "$user: … and the next try: 429 again" "$CODE" 429
	W2=$(wait_of)
	like "$user: the second lockout gives its wait ($W2)" "$W2" '^[1-9][0-9]*$'
	: "${W2:=2}"
	ok "$user: the second wait ($W2 s) is longer than the first ($W1 s)" test "$W2" -gt "$W1"
}
any_429() { [[ " ${CODES[*]} " == *" 429 "* ]]; }

PW=$(random_token)
WRONG=$(random_token)
secret_register "$PW"
secret_register "$WRONG"

T0=$(date +%s%N)
if ! pincer_start "{ $FAST, \"http\": { \"trusted_proxies\": [\"127.0.0.1\"] } }"; then
	ok "pincerd starts" false
	done_testing
fi
printf '%s\n' "$PW" | pcli user add alice --role owner --password-stdin >/dev/null 2>&1
is "pincer user add alice: exits 0" "$?" 0

A_IP=10.0.0.1 B_IP=10.0.0.2
lock_run A "$A_IP" alice
A_W1=$W1 A_W2=$W2
lock_run B "$B_IP" ghost
# The same answers, status and body, for the user that exists and the one
# that does not, at every step.
is "ghost got the same statuses as alice, step by step" \
    "$(printf '%s' "$B_LOG" | cut -d' ' -f1-3 | tr '\n' '|')" \
    "$(printf '%s' "$A_LOG" | cut -d' ' -f1-3 | tr '\n' '|')"
is "ghost got the same bodies as alice, step by step" "$B_LOG" "$A_LOG"
is "the same waits for both" "$W1 $W2" "$A_W1 $A_W2"

# B's second lock started last; wait it out.
sleep "$W2"
try $A_IP alice "$PW"
is "after the wait, the right password: 200" "$CODE" 200
try $B_IP ghost "$PW"
is "after the wait, ghost: 401 (it does not exist)" "$CODE" 401
# A success clears the count for that name and address.
try $A_IP alice "$WRONG"
is "after a success, a wrong password: 401 (not 429)" "$CODE" 401
try $A_IP alice "$PW"
is "… and the right one again: 200" "$CODE" 200

# The lock is per address: failures under many names from one address
# lock it for every name; another address is not locked.
burst 10.0.1.1 someone1 "$WRONG" 10.0.1.1 someone2 "$WRONG" 10.0.1.1 someone3 "$WRONG" \
    10.0.1.1 someone4 "$WRONG" 10.0.1.1 carol "$WRONG"
ok "failures under 4 names from one address lock it (${CODES[*]})" any_429
pick 4
is "then any other name from that address: 429 (per IP)" "$CODE" 429
try 10.0.1.2 carol "$WRONG"
is "… the same name from another address: 401, not locked" "$CODE" 401
# And per name: failures for one name from many addresses lock the name,
# whether it exists or not, wherever the next try comes from. User names
# are case-insensitive (dave and DAVE are one user): so must the lock be,
# or changing the case of a name would buy new guesses.
printf '%s\n' "$PW" | pcli user add dave --role member --password-stdin >/dev/null 2>&1
burst 10.0.2.1 dave "$WRONG" 10.0.2.2 dave "$WRONG" 10.0.2.3 dave "$WRONG" \
    10.0.2.4 dave "$WRONG" 10.0.3.1 dave "$PW" 10.0.3.3 DAVE "$PW"
ok "failures for dave from 4 addresses lock the name (${CODES[*]})" any_429
pick 4
is "then dave from a fresh address, right password: 429 (per name)" "$CODE" 429
pick 5
is "then DAVE (the same user), right password, fresh address: 429" "$CODE" 429
burst 10.0.4.1 nobody "$WRONG" 10.0.4.2 nobody "$WRONG" 10.0.4.3 nobody "$WRONG" \
    10.0.4.4 nobody "$WRONG" 10.0.3.2 nobody "$PW" 10.0.3.4 NoBody "$WRONG"
ok "failures for nobody (no such user) from 4 addresses lock the name (${CODES[*]})" any_429
pick 4
is "then nobody from a fresh address: 429 (per name, existing or not)" "$CODE" 429
pick 5
is "then NoBody, fresh address: 429 (the same for names that do not exist)" "$CODE" 429

# The audit log has the failures, with the client address.
ADM=$(pcli token create --user alice --scope admin --name audit 2>/dev/null)
secret_register "$ADM"
req GET '/api/v1/audit?limit=200' -H "Authorization: Bearer $ADM"
is "GET /api/v1/audit with an admin token: 200" "$CODE" 200
ok "the audit has login_failed entries for alice from $A_IP" json_check "$BODY" \
    "o.entries.filter(e => e.action === 'login_failed' && e.actor === 'alice' &&
	e.ip === '$A_IP').length >= 4"
ok "the audit has login_failed entries for ghost from $B_IP" json_check "$BODY" \
    "o.entries.filter(e => e.action === 'login_failed' && e.actor === 'ghost' &&
	e.ip === '$B_IP').length >= 4"
ok "a try answered 429 is not checked, so not audited (10.0.3.1, 10.0.3.2)" json_check "$BODY" \
    "!o.entries.some(e => e.ip === '10.0.3.1' || e.ip === '10.0.3.2')"
ok "the audit has the successful login" json_check "$BODY" \
    "o.entries.some(e => e.action === 'login' && e.actor === 'alice')"

pincer_stop
ok "the password is not in the daemon log" test -z "$(grep -F -- "$PW" "$PINCER_LOG")"
ok "the wrong password is not in the daemon log" test -z "$(grep -F -- "$WRONG" "$PINCER_LOG")"
# About 4 s of it is the waits; the rest depends on the machine's load.
diag "the test took $((($(date +%s%N) - T0) / 1000000)) ms"

done_testing
