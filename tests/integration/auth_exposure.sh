# SPDX-License-Identifier: MIT
# auth_exposure.sh: pincerd listens on a non-loopback address only once
# someone can authenticate: an enabled owner, or auth.external_jwt. With
# nobody (or only a member, or a disabled owner) it refuses and says how to
# create the owner.
. "$TOP_SRCDIR/tests/integration/lib.sh"

unset PINCER_CONFIG PINCER_STATE PINCER_LISTEN
FAST='"auth": { "argon2_memory_kib": 1024, "argon2_iterations": 1 }'

N=0
# serve DIR CONFIG_JSON: pincer serve --listen 0.0.0.0:0 on DIR's state, in
# the background; RUN_PID, RUN_LOG. The same DIR keeps its state.
serve() {
	local dir=$1
	N=$((N + 1))
	mkdir -p "$dir"
	printf '%s\n' "$2" >"$dir/pincer.json"
	RUN_LOG="$T_LOGDIR/$T_NAME.$N.pincerd.log"
	: >"$RUN_LOG"
	"$PINCER_BIN" serve --config "$dir/pincer.json" --state "$dir/state" \
	    --listen 0.0.0.0:0 2>>"$RUN_LOG" &
	RUN_PID=$!
	T_PIDS="$T_PIDS $RUN_PID"
}
exited() { ! kill -0 "$RUN_PID" 2>/dev/null; }
listening() { grep -q 'msg=listening' "$RUN_LOG"; }
# refused DESC: the last serve exits non-zero by itself, naming the address
# and the way out.
refused() {
	local rc
	wait_until 10 exited
	if exited; then
		wait "$RUN_PID"
		rc=$?
		ok "$1: exits non-zero (exit $rc)" test "$rc" -ne 0
	else
		ok "$1: exits by itself within 10 s" false
		kill -KILL "$RUN_PID" 2>/dev/null
		return
	fi
	like "$1: says it refuses" "$(cat "$RUN_LOG")" 'refusing to listen on a non-loopback address'
	ok "$1: names the address 0.0.0.0:0" grep -qF '0.0.0.0:0' "$RUN_LOG"
	like "$1: says to create the owner" "$(cat "$RUN_LOG")" \
	    'pincer user add [A-Z]+ --role owner'
	unlike "$1: never listened" "$(cat "$RUN_LOG")" 'msg=listening'
}
# started DESC: the last serve listens on 0.0.0.0:PORT and answers on
# 127.0.0.1:PORT; then SIGTERM, exit 0.
started() {
	local addr port code rc
	if ! wait_until 10 listening; then
		ok "$1: starts and logs msg=listening" false
		sed 's/^/#   /' "$RUN_LOG" | tail -5
		kill -KILL "$RUN_PID" 2>/dev/null
		return
	fi
	addr=$(sed -n 's/.*msg=listening addr=\([^ ]*\).*/\1/p' "$RUN_LOG" | head -1)
	like "$1: listens on 0.0.0.0:PORT" "$addr" '^0\.0\.0\.0:[1-9][0-9]*$'
	port=${addr##*:}
	code=000
	for _ in $(seq 1 100); do
		code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 \
		    "http://127.0.0.1:$port/healthz" 2>/dev/null)
		[ "$code" = 200 ] && break
		sleep 0.05
	done
	is "$1: /healthz on 127.0.0.1:$port answers 200" "$code" 200
	code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 \
	    "http://127.0.0.1:$port/api/v1/me" 2>/dev/null)
	is "$1: /api/v1/me without a credential: 401" "$code" 401
	kill -TERM "$RUN_PID"
	wait_until 20 exited
	wait "$RUN_PID"
	rc=$?
	is "$1: exits 0 on SIGTERM" "$rc" 0
}
user_add() {
	printf '%s\n' "$PW" | "$PINCER_BIN" --config "$1/pincer.json" \
	    --state "$1/state" user add "$2" --role "$3" --password-stdin >/dev/null 2>&1
}

PW=$(random_token)
secret_register "$PW"
A=$T_TMP/a

serve "$A" "{ $FAST }"
refused "no users, --listen 0.0.0.0:0"
ok "no users: the state folder was made all the same" test -d "$A/state"

user_add "$A" member1 member
is "pincer user add member1 --role member: exits 0" "$?" 0
serve "$A" "{ $FAST }"
refused "only a member, --listen 0.0.0.0:0"

user_add "$A" owner1 owner
is "pincer user add owner1 --role owner --password-stdin: exits 0" "$?" 0
serve "$A" "{ $FAST }"
started "with an owner, --listen 0.0.0.0:0"

"$PINCER_BIN" --config "$A/pincer.json" --state "$A/state" user disable owner1 >/dev/null 2>&1
is "pincer user disable owner1: exits 0" "$?" 0
serve "$A" "{ $FAST }"
refused "the only owner disabled, --listen 0.0.0.0:0"
"$PINCER_BIN" --config "$A/pincer.json" --state "$A/state" user enable owner1 >/dev/null 2>&1
serve "$A" "{ $FAST }"
started "the owner enabled again, --listen 0.0.0.0:0"

# A zero-trust proxy's JWT is authentication too: no users needed. The
# JWKS is only fetched when a JWT comes, so any http URL will do.
B=$T_TMP/b
serve "$B" '{ "auth": { "external_jwt": { "jwks_url": "http://127.0.0.1:9/jwks.json" } } }'
started "auth.external_jwt.jwks_url set, no users, --listen 0.0.0.0:0"
C=$T_TMP/c
serve "$C" '{ "auth": { "external_jwt": { "jwks_url": "" } } }'
refused "auth.external_jwt.jwks_url empty, no users, --listen 0.0.0.0:0"

done_testing
