# SPDX-License-Identifier: MIT
# lib.sh: sourced by every integration test. TAP output, and a real pincerd
# per test on 127.0.0.1 with an ephemeral port and a throwaway state folder.
#
#   pincer_start [CONFIG_JSON]   start a daemon, wait for /readyz; sets
#                                PINCER_PID PINCER_URL PINCER_ADDR PINCER_LOG
#                                PINCER_CONF PINCER_STATE_DIR PINCER_DIR
#   pincer_stop                  SIGTERM, wait; sets PINCER_EXIT
#   ok DESC CMD...               one TAP test point: CMD must succeed
#   is DESC GOT WANT / like DESC GOT REGEX / unlike DESC GOT REGEX
#   skip DESC REASON             a TAP point skipped, with the reason
#   secret_register VALUE        the last test greps every log for VALUE
#   done_testing                 prints the plan, exits 0/1
#
# Helpers:
#   raw_http DATA [SECONDS]      send DATA on a new TCP connection to the
#                                daemon; print all it answers until it closes
#                                (or SECONDS pass, default 3; then exit 124)
#   wait_until SECONDS CMD...    poll CMD every 50 ms until it succeeds
#   wait_log REGEX [SECONDS] [N] wait until PINCER_LOG has more than N lines
#                                matching REGEX (default 0)
#   log_count REGEX              lines of PINCER_LOG matching REGEX
#   json_check JSON EXPR         the JS expression EXPR, with the parsed JSON
#                                as `o`, is true (node)
#   random_token                 32 random hex characters
#   req METHOD PATH [CURL ARGS]  a request to the daemon: CODE, BODY, HDRS
#   jstr JSON KEY                a string field of a flat JSON object
#   pcli ARGS…                   the pincer CLI on this daemon's config/state
#   hand_start NAME CMD…         a daemon started by hand: H_PID H_LOG H_ADDR
#   hand_wait SECONDS / hand_stop   its exit (H_EXIT; 124: it did not exit)
#
# PINCER_LISTEN_ADDR (default 127.0.0.1:0) is passed as --listen; set it to
# the empty string to pass no --listen (the config's "listen" applies).
set -u
: "${PINCER_BIN:?PINCER_BIN must point at the built pincer}"
: "${TOP_SRCDIR:?}" "${TOP_BUILDDIR:?}"

T_NAME=$(basename "$0" .sh)
T_LOGDIR="$TOP_BUILDDIR/tests/logs"
mkdir -p "$TOP_BUILDDIR/tests/tmp" "$T_LOGDIR"
T_TMP=$(mktemp -d "$TOP_BUILDDIR/tests/tmp/$T_NAME.XXXXXX")
T_N=0
T_FAILED=0
T_DAEMONS=0
T_PIDS=""

diag() { printf '# %s\n' "$@"; }

_t_result() {
	T_N=$((T_N + 1))
	if [ "$1" = 0 ]; then
		echo "ok $T_N - $2"
	else
		echo "not ok $T_N - $2"
		T_FAILED=$((T_FAILED + 1))
	fi
}

ok() {
	local desc=$1; shift
	if "$@" >"$T_TMP/ok.out" 2>&1; then
		_t_result 0 "$desc"
	else
		_t_result 1 "$desc"
		diag "command failed: $*" && sed 's/^/#   /' "$T_TMP/ok.out" | head -20
	fi
}

is() {
	if [ "$2" = "$3" ]; then _t_result 0 "$1"; else
		_t_result 1 "$1"; diag "got:  '$2'" "want: '$3'"; fi
}

like() {
	if printf '%s' "$2" | grep -Eq -- "$3"; then _t_result 0 "$1"; else
		_t_result 1 "$1"; diag "got:  '$(printf '%s' "$2" | head -c 600)'" "want: /$3/"; fi
}

unlike() {
	if printf '%s' "$2" | grep -Eq -- "$3"; then
		_t_result 1 "$1"; diag "got:  '$(printf '%s' "$2" | head -c 600)'" "must not match: /$3/"
	else _t_result 0 "$1"; fi
}

skip() {
	T_N=$((T_N + 1))
	echo "ok $T_N - $1 # SKIP ${2:-}"
}

secret_register() {
	printf '%s\n' "$1" >>"$T_LOGDIR/secrets.list"
}

done_testing() {
	# Under --enable-asan, a daemon's sanitizer report fails its test.
	local reports
	reports=$(grep -lE 'ERROR: (Address|Leak)Sanitizer|runtime error:' \
	    "$T_LOGDIR/$T_NAME".*.log 2>/dev/null)
	if [ -n "$reports" ]; then
		_t_result 1 "no sanitizer report in the daemon logs"
		diag "$reports"
	fi
	echo "1..$T_N"
	[ "$T_FAILED" -eq 0 ]
	exit $?
}

# _t_ours PID: PID is still a process this test started (a child of this
# shell). A pid is a number the kernel hands out again once its process
# is reaped, and under `make -j2 check` the numbers wrap in under a
# minute: a pid kept from earlier (a daemon stopped, a curl that ended)
# may by now be another test's process, which kill(1) would hit.
_t_ours() { [ "$(ps -o ppid= -p "$1" 2>/dev/null | tr -d ' ')" = "$$" ]; }

_t_cleanup() {
	local p
	for p in $T_PIDS; do
		_t_ours "$p" && kill -KILL "$p" 2>/dev/null
	done
	if [ "$T_FAILED" -eq 0 ]; then rm -rf "$T_TMP"; fi
}
trap _t_cleanup EXIT

# Write a config file: the admin UI of the source tree, plus CONFIG_JSON's
# keys (a JSON object, merged at the top level by the caller's choice).
pincer_config() {
	local dir=$1 extra=${2:-}
	mkdir -p "$dir"
	if [ -n "$extra" ]; then
		printf '%s\n' "$extra" >"$dir/pincer.json"
	else
		printf '{ "admin_ui": { "dir": "%s/admin-ui" } }\n' "$TOP_SRCDIR" >"$dir/pincer.json"
	fi
}

# The address pincerd logged it listens on (logfmt or JSON).
_t_addr() {
	sed -n 's/.*msg[=":]*listening[", ]*addr[=":]*\([^" ]*\).*/\1/p' "$1" | head -1
}

pincer_start() {
	local extra=${1:-} i
	T_DAEMONS=$((T_DAEMONS + 1))
	PINCER_DIR="$T_TMP/d$T_DAEMONS"
	PINCER_CONF="$PINCER_DIR/pincer.json"
	PINCER_STATE_DIR="$PINCER_DIR/state"
	PINCER_LOG="$T_LOGDIR/$T_NAME.$T_DAEMONS.pincerd.log"
	pincer_config "$PINCER_DIR" "$extra"
	: >"$PINCER_LOG"
	local listen=${PINCER_LISTEN_ADDR-127.0.0.1:0}
	"$PINCER_BIN" serve --config "$PINCER_CONF" --state "$PINCER_STATE_DIR" \
	    ${listen:+--listen "$listen"} 2>>"$PINCER_LOG" &
	PINCER_PID=$!
	T_PIDS="$T_PIDS $PINCER_PID"
	PINCER_ADDR=""
	for i in $(seq 1 200); do
		PINCER_ADDR=$(_t_addr "$PINCER_LOG")
		[ -n "$PINCER_ADDR" ] && break
		_t_ours "$PINCER_PID" || break
		sleep 0.05
	done
	if [ -z "$PINCER_ADDR" ]; then
		diag "pincerd did not start:" && sed 's/^/#   /' "$PINCER_LOG"
		return 1
	fi
	PINCER_URL="http://$PINCER_ADDR"
	for i in $(seq 1 200); do
		if curl -fsS -o /dev/null "$PINCER_URL/readyz" 2>/dev/null; then
			return 0
		fi
		sleep 0.05
	done
	diag "pincerd never became ready:" && sed 's/^/#   /' "$PINCER_LOG"
	return 1
}

# SIGTERM, then wait up to $1 seconds (default 20); PINCER_EXIT is its code.
pincer_stop() {
	local limit=${1:-20} i
	_t_ours "$PINCER_PID" && kill -TERM "$PINCER_PID"
	for i in $(seq 1 $((limit * 20))); do
		_t_ours "$PINCER_PID" || break
		sleep 0.05
	done
	if _t_ours "$PINCER_PID"; then
		diag "pincerd did not stop within ${limit}s; its log ends:"
		tail -n 20 "$PINCER_LOG" | sed 's/^/#   /'
		kill -KILL "$PINCER_PID"
	fi
	wait "$PINCER_PID" 2>/dev/null
	PINCER_EXIT=$?
}

# The daemon's host and port, for /dev/tcp (brackets of IPv6 removed).
pincer_host() { local h=${PINCER_ADDR%:*}; h=${h#\[}; printf '%s' "${h%]}"; }
pincer_port() { printf '%s' "${PINCER_ADDR##*:}"; }

raw_http() {
	local data=$1 secs=${2:-3}
	timeout "$secs" bash -c 'exec 3<>"/dev/tcp/$0/$1" || exit 99
		printf "%s" "$2" >&3; cat <&3' \
	    "$(pincer_host)" "$(pincer_port)" "$data"
}

wait_until() {
	local secs=$1 i; shift
	for i in $(seq 1 $((secs * 20))); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	"$@" >/dev/null 2>&1
}

log_count() {
	grep -Ec -- "$1" "$PINCER_LOG" 2>/dev/null
}

wait_log() {
	local re=$1 secs=${2:-5} n=${3:-0}
	wait_until "$secs" _t_log_more "$re" "$n"
}
_t_log_more() { [ "$(log_count "$1")" -gt "$2" ]; }

json_check() {
	node -e 'const o = JSON.parse(process.argv[1]);
		process.exit(eval(process.argv[2]) ? 0 : 1)' "$1" "$2"
}

random_token() {
	od -An -N16 -tx1 /dev/urandom | tr -d ' \n'
}

req() {
	local m=$1 p=$2
	shift 2
	: >"$T_TMP/body"
	: >"$T_TMP/hdrs"
	CODE=$(curl -sS --max-time 10 -o "$T_TMP/body" -D "$T_TMP/hdrs" \
	    -w '%{http_code}' -X "$m" "$@" "$PINCER_URL$p" 2>"$T_TMP/curl.err")
	BODY=$(cat "$T_TMP/body")
	HDRS=$(tr -d '\r' <"$T_TMP/hdrs")
}

jstr() {
	local re="\"$2\":\"([^\"]*)\""
	[[ $1 =~ $re ]] && printf '%s' "${BASH_REMATCH[1]}"
}

# owner_and_member: alice (owner) and bob (member) made with the CLI, and
# their API tokens: ADM (admin scope) and MEM (read, llm, sandbox).
owner_and_member() {
	printf 'a long passphrase\n' | pcli user add alice --role owner \
	    --password-stdin >/dev/null 2>&1
	printf 'another passphrase\n' | pcli user add bob --role member \
	    --password-stdin >/dev/null 2>&1
	ADM=$(pcli token create --user alice --scope admin --name adm \
	    2>/dev/null)
	MEM=$(pcli token create --user bob --scope read,llm,sandbox \
	    --name m 2>/dev/null)
	secret_register "$ADM"
	secret_register "$MEM"
}

pcli() {
	"$PINCER_BIN" --config "$PINCER_CONF" --state "$PINCER_STATE_DIR" "$@"
}

# hand_start NAME CMD...: a daemon started by hand; H_PID, H_LOG, H_ADDR
# (empty if it never said msg=listening).
hand_start() {
	local name=$1; shift
	H_LOG="$T_LOGDIR/$T_NAME.$name.pincerd.log"
	: >"$H_LOG"
	"$@" 2>>"$H_LOG" &
	H_PID=$!
	T_PIDS="$T_PIDS $H_PID"
	wait_until 10 _hand_up
	H_ADDR=$(sed -n 's/.*msg=listening addr=\([^ ]*\).*/\1/p' "$H_LOG" | head -1)
}
_hand_up() { grep -q 'msg=listening' "$H_LOG" || ! _t_ours "$H_PID"; }
_hand_down() { ! _t_ours "$H_PID"; }
# hand_wait SECONDS: wait for it to exit on its own; H_EXIT (124: it did not).
hand_wait() {
	wait_until "$1" _hand_down
	if _t_ours "$H_PID"; then
		kill -KILL "$H_PID"
		wait "$H_PID"
		H_EXIT=124
		return
	fi
	wait "$H_PID"
	H_EXIT=$?
}
hand_stop() { _t_ours "$H_PID" && kill -TERM "$H_PID"; hand_wait 15; }

# make_rootfs DIR: a root file system tree for --rootfs / sandbox.rootfs:
# usr/bin with dash and cat and their libraries, an empty etc/.
make_rootfs() {
	local r=$1 b l
	chmod 755 "$r"
	mkdir -p "$r/usr/bin" "$r/etc"
	for b in /usr/bin/dash /usr/bin/cat; do
		cp "$b" "$r/usr/bin/"
		for l in $(ldd "$b" | grep -o '/[^ ]*'); do
			mkdir -p "$(dirname "$r/usr/${l#/usr/}")"
			cp -L "$l" "$r/usr/${l#/usr/}"
		done
	done
}

# llm_fake_start KEY: the fake LLM provider (tests/fakes/llm-provider.mjs)
# on loopback, requiring KEY; FAKE is its base URL. Killed at exit.
llm_fake_start() {
	node "$TOP_SRCDIR/tests/fakes/llm-provider.mjs" --port 0 ${1:+--key "$1"} \
	    >"$T_TMP/fake.out" 2>"$T_TMP/fake.err" &
	T_PIDS="$T_PIDS $!"
	disown
	wait_until 10 _llm_fake_up || return 1
	FAKE="http://127.0.0.1:$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$T_TMP/fake.out")"
}
_llm_fake_up() { grep -q port "$T_TMP/fake.out"; }

# platform_fake_start: the fake chat platforms (tests/fakes/platforms.mjs)
# on loopback; PLAT is its base URL. Killed at exit.
platform_fake_start() {
	node "$TOP_SRCDIR/tests/fakes/platforms.mjs" --port 0 \
	    >"$T_TMP/plat.out" 2>"$T_TMP/plat.err" &
	T_PIDS="$T_PIDS $!"
	disown
	wait_until 10 _plat_fake_up || return 1
	PLAT="http://127.0.0.1:$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$T_TMP/plat.out")"
}
_plat_fake_up() { grep -q port "$T_TMP/plat.out"; }
# plat_calls PLATFORM: the recorded API calls of one platform (JSON array).
plat_calls() { curl -s "$PLAT/_fake/calls?platform=$1"; }
plat_script() { curl -s -o /dev/null -X POST "$PLAT/_fake/script" \
    -H 'Content-Type: application/json' --data-binary "$1"; }
