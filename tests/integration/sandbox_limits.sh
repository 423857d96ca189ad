# SPDX-License-Identifier: MIT
# sandbox_limits.sh: the sandbox.* options at work: max_running (the least
# recently used idle sandbox goes to sleep; a held one never; all held:
# 429), idle_sleep_s (idle ones sleep, the next request wakes them),
# memory_mb and pids_max (applied to the cgroups; usage shown by GET), and
# the refusal to start sandboxes without a launcher, pincer-init or
# namespaces: 503 naming the cause, and `pincer doctor` still runs.
. "$TOP_SRCDIR/tests/integration/lib.sh"
. "$TOP_SRCDIR/tests/integration/sandbox_lib.sh"

# states: "name:state" of every sandbox, sorted by name.
states() {
	api GET ""
	jv "$BODY" 'o.sandboxes.map(s => s.name + ":" + s.state).sort().join(" ")'
}
states_are() { [ "$(states)" = "$1" ]; }
running_count() {
	api GET ""
	jv "$BODY" 'o.sandboxes.filter(s => s.state === "running").length'
}
# bg_exec NAME SCRIPT OUTFILE: a buffered exec in the background; BG_PID.
bg_exec() {
	curl -sS --max-time 30 -o "$3" -X POST -H "Authorization: Bearer $TOK" \
	    -H 'Content-Type: application/json' \
	    --data-binary "{\"cmd\":[\"sh\",\"-c\",$(js "$2")]}" \
	    "$PINCER_URL$SP/$1/exec" 2>/dev/null &
	BG_PID=$!
	T_PIDS="$T_PIDS $BG_PID"
}
in_use() { api GET "/$1"; [ "$(jv "$BODY" o.in_use)" -ge 1 ]; }
# setup: the owner alice and her sandbox token TOK, on this daemon.
setup() {
	local pw
	pw=$(random_token)
	secret_register "$pw"
	printf '%s\n' "$pw" | pcli user add alice --role owner --password-stdin >/dev/null 2>&1
	TOK=$(pcli token create --user alice --scope sandbox --name sbx 2>/dev/null)
	secret_register "$TOK"
}
cg_prefix() {
	local s=$1 h=5381 i c
	for ((i = 0; i < ${#s}; i++)); do
		printf -v c '%d' "'${s:i:1}"
		h=$(((h * 33 + c) & 0xffffffff))
	done
	printf '%08x' "$h"
}
# cg_read CONTROLLER FILE NAME: a file of NAME's cgroup (v1, or v2).
cg_read() {
	local g
	g="pincer/$(cg_prefix "$PINCER_STATE_DIR")-$3"
	cat "/sys/fs/cgroup/$1/$g/$2" 2>/dev/null || cat "/sys/fs/cgroup/$g/$2" 2>/dev/null
}

if [ ! -x "$TOP_BUILDDIR/pincer-init" ]; then
	ok "pincer-init is built next to pincer" false
	done_testing
fi

# --- max_running 2; memory_mb 200, pids_max 40 ---------------------------------
if ! pincer_start "{ $FAST, \"sandbox\": { \"max_running\": 2, \"memory_mb\": 200, \"pids_max\": 40, \"cpu_quota_percent\": 150, \"uid_base\": 1300000 } }"; then
	ok "pincerd starts" false
	done_testing
fi
setup
api GET ""
ok "the list says max_running 2" jok "$BODY" 'o.max_running === 2'
post "" '{"name":"a"}'
is "create a: 201" "$CODE" 201
post "" '{"name":"b"}'
is "create b: 201" "$CODE" 201
is "a and b run" "$(states)" "a:running b:running"
post "" '{"name":"c"}'
is "create c (a third, over max_running 2): 201" "$CODE:$(jv "$BODY" o.state)" 201:running
is "… at once, only 2 are running" "$(running_count)" 2
ok "… a, the least recently used, goes to sleep" wait_until 10 states_are "a:sleeping b:running c:running"
run a 'echo woken'
is "an exec in a wakes it" "$OUT" woken
ok "… and b, now the least recently used, goes to sleep" wait_until 10 states_are "a:running b:sleeping c:running"

# A held sandbox (a request in flight) is never the one put to sleep.
bg_exec a 'sleep 2; echo slept' "$T_TMP/held"
H1=$BG_PID
ok "a long exec holds a" wait_until 5 in_use a
run c 'echo used'
is "c is used after a (a is now the least recently used, but held)" "$OUT" used
run b 'echo b-woken'
is "waking b: 200" "$CODE:$OUT" 200:b-woken
ok "… c goes to sleep, not the held a" wait_until 10 states_are "a:running b:running c:sleeping"
wait "$H1"
ok "… and a's exec ran to its end" jok "$(cat "$T_TMP/held")" 'o.stdout === "slept\n" && o.exit_code === 0'

# Both running ones held: no room, 429 with Retry-After.
bg_exec a 'sleep 3' "$T_TMP/h1"
H1=$BG_PID
bg_exec b 'sleep 3' "$T_TMP/h2"
H2=$BG_PID
both_in_use() { in_use a && in_use b; }
ok "a and b are held" wait_until 5 both_in_use
post /c/exec '{"cmd":["true"]}'
is "exec in c while a and b are both busy: 429" "$CODE:$(jv "$BODY" o.error.code)" 429:sandbox_limit
like "… with Retry-After" "$HDRS" '^[Rr]etry-[Aa]fter: [0-9]+$'
is "… c still sleeps" "$(states)" "a:running b:running c:sleeping"
wait "$H1" "$H2"
run c 'echo c-woken'
is "once they are free, c wakes" "$OUT" c-woken

# Usage, and the limits as applied to the cgroups.
api GET /c
ok "GET a running sandbox: pids and memory_bytes" jok "$BODY" \
    'Number.isInteger(o.pids) && o.pids >= 1 && o.memory_bytes > 0'
P0=$(jv "$BODY" o.pids)
post /c/processes '{"id":"three","cmd":["sh","-c","sleep 100 & sleep 100 & wait"]}'
is "a process with two children: 201" "$CODE" 201
pids_are() { api GET /c; [ "$(jv "$BODY" o.pids)" = "$1" ]; }
ok "… pids goes up by 3 (from $P0)" wait_until 5 pids_are $((P0 + 3))
is "pids.max of c's cgroup is sandbox.pids_max" "$(cg_read pids pids.max c)" 40
MEM=$(cg_read memory memory.limit_in_bytes c)
[ -n "$MEM" ] || MEM=$(cg_read memory memory.max c)
is "its memory limit is sandbox.memory_mb" "$MEM" $((200 << 20))
like "its cpu quota is sandbox.cpu_quota_percent (150 ms per 100 ms)" \
    "$(cg_read cpu cpu.cfs_quota_us c || cg_read cpu cpu.max c)" '^150000( 100000)?$'
run c 'perl -e "my \$n = 0; for (1 .. 100) { my \$p = fork; last unless defined \$p; if (\$p == 0) { sleep 3; exit } \$n++ } print \"\$n\n\""'
ok "pids_max 40: forks stop short of 40 ($OUT made)" test "${OUT:-99}" -lt 40 -a "${OUT:-0}" -gt 20
api POST /c/stop
api GET /c
ok "a sleeping sandbox shows no pids or memory" jok "$BODY" \
    'o.state === "sleeping" && !("pids" in o) && !("memory_bytes" in o)'
pincer_stop
is "pincerd exits 0" "$PINCER_EXIT" 0

# --- idle_sleep_s 1 --------------------------------------------------------------------
if ! pincer_start "{ $FAST, \"sandbox\": { \"idle_sleep_s\": 1 } }"; then
	ok "pincerd starts (idle_sleep_s 1)" false
	done_testing
fi
setup
post "" '{"name":"a"}'
is "create a: 201, running" "$CODE:$(jv "$BODY" o.state)" 201:running
T0=$(date +%s%N)
ok "idle for a moment, it goes to sleep (within 5 s)" wait_until 5 states_are "a:sleeping"
T1=$(date +%s%N)
ok "… not before 1 s ($(((T1 - T0) / 1000000)) ms)" test $(((T1 - T0) / 1000000)) -ge 900
run a 'echo awake'
is "the next exec wakes it" "$OUT" awake
api GET /a
ok "… running, start count 2" jok "$BODY" 'o.state === "running" && o.starts === 2'
bg_exec a 'sleep 3; echo done' "$T_TMP/long"
wait "$BG_PID"
ok "an exec of 3 s (longer than idle_sleep_s) is not cut short" jok "$(cat "$T_TMP/long")" \
    'o.stdout === "done\n" && o.exit_code === 0'
ok "… then, idle again, it sleeps" wait_until 5 states_are "a:sleeping"
pincer_stop
is "pincerd exits 0" "$PINCER_EXIT" 0

# --- sandbox.rootfs: a folder of its own instead of the host's /usr ---------------------
# pincer-init must be static to run in a tree without libraries; under
# --enable-asan it is not.
if ldd "$TOP_BUILDDIR/pincer-init" >/dev/null 2>&1; then
	skip "sandbox.rootfs" "pincer-init is linked dynamically (--enable-asan)"
else
R=$(mktemp -d /tmp/pincer-rootfs.XXXXXX)
make_rootfs "$R"
echo "rootfs marker" >"$R/etc/marker"
if ! pincer_start "{ $FAST, \"sandbox\": { \"rootfs\": \"$R\" } }"; then
	ok "pincerd starts (rootfs)" false
	done_testing
fi
setup
post "" '{"name":"r"}'
is "create r on the rootfs: 201" "$CODE" 201
post /r/exec '{"cmd":["/usr/bin/dash","-c","cat /etc/marker; echo /usr/bin/*"]}'
is "its /etc and /usr are the rootfs folder's (pincer-init needs no library)" \
    "$(jv "$BODY" o.stdout)" "rootfs marker
/usr/bin/cat /usr/bin/dash"
pincer_stop
rm -rf "$R"
fi

# --- refusals ------------------------------------------------------------------------------
if ! pincer_start "{ $FAST, \"sandbox\": { \"launcher\": \"/nonexistent/pincer-sandbox\" } }"; then
	ok "pincerd starts (launcher missing)" false
	done_testing
fi
setup
post "" '{"name":"a"}'
is "launcher missing: POST $SP: 503" "$CODE:$(jv "$BODY" o.error.code)" 503:sandbox_unavailable
like "… the message names the launcher" "$(jv "$BODY" o.error.message)" '/nonexistent/pincer-sandbox.*sandbox\.launcher'
like "… and the log says sandboxes are off, naming it" "$(grep 'sandboxes are off' "$PINCER_LOG")" \
    'level=warn.*/nonexistent/pincer-sandbox'
api GET ""
is "… the list still answers: 200" "$CODE" 200
ok "… empty (nothing was made)" jok "$BODY" 'o.sandboxes.length === 0'
ok "… no folder was made" test ! -e "$PINCER_STATE_DIR/sandboxes/a"
is "… the rest of pincerd works: /readyz" "$(curl -s -o /dev/null -w '%{http_code}' "$PINCER_URL/readyz")" 200
pcli doctor >"$T_TMP/doctor" 2>&1
is "pincer doctor runs on that config: exits 1" "$?" 1
like "… its sandbox check fails, naming the launcher" "$(cat "$T_TMP/doctor")" \
    '^FAIL +sandbox +/nonexistent/pincer-sandbox is missing'
like "… the other checks still run (the database)" "$(cat "$T_TMP/doctor")" '^OK +database '
is "… and it prints its summary" "$(tail -1 "$T_TMP/doctor")" 'some checks failed'
pincer_stop
is "pincerd exits 0" "$PINCER_EXIT" 0

if ! pincer_start "{ $FAST, \"sandbox\": { \"init\": \"/nonexistent/pincer-init\" } }"; then
	ok "pincerd starts (pincer-init missing)" false
	done_testing
fi
setup
post "" '{"name":"a"}'
is "pincer-init missing: POST $SP: 503" "$CODE" 503
like "… the message names it" "$(jv "$BODY" o.error.message)" '/nonexistent/pincer-init.*sandbox\.init'
pcli doctor >"$T_TMP/doctor" 2>&1
is "pincer doctor: exits 1" "$?" 1
like "… naming pincer-init" "$(cat "$T_TMP/doctor")" '^FAIL +sandbox +/nonexistent/pincer-init is missing'
pincer_stop

# Namespaces unavailable: pincerd in a user namespace that may make none.
if unshare --user --map-root-user sh -c \
    'echo 0 >/proc/sys/user/max_user_namespaces && ! unshare --user true' 2>/dev/null; then
	T_DAEMONS=$((T_DAEMONS + 1))
	D="$T_TMP/d$T_DAEMONS"
	pincer_config "$D" "{ $FAST }"
	PINCER_CONF="$D/pincer.json"
	PINCER_STATE_DIR="$D/state"
	PINCER_LOG="$T_LOGDIR/$T_NAME.nouserns.pincerd.log"
	: >"$PINCER_LOG"
	unshare --user --map-root-user sh -c \
	    'echo 0 >/proc/sys/user/max_user_namespaces && exec "$@"' sh \
	    "$PINCER_BIN" serve --config "$PINCER_CONF" --state "$PINCER_STATE_DIR" \
	    --listen 127.0.0.1:0 2>>"$PINCER_LOG" &
	PINCER_PID=$!
	T_PIDS="$T_PIDS $PINCER_PID"
	if wait_log 'msg=listening' 10; then
		PINCER_ADDR=$(sed -n 's/.*msg=listening addr=\([^ ]*\).*/\1/p' "$PINCER_LOG" | head -1)
		PINCER_URL="http://$PINCER_ADDR"
		wait_until 10 curl -fsS -o /dev/null "$PINCER_URL/readyz"
		L=$(curl -sS --unix-socket "$PINCER_STATE_DIR/pincerd.sock" -w ' %{http_code}' \
		    -H 'Content-Type: application/json' --data-binary '{"name":"a"}' http://x$SP)
		is "no namespaces: POST $SP: 503" "${L##* }" 503
		like "… the message says namespaces cannot be made" "$(jv "${L% *}" o.error.message)" \
		    'cannot create user, pid, mount and net namespaces'
		unshare --user --map-root-user sh -c \
		    'echo 0 >/proc/sys/user/max_user_namespaces && exec "$@"' sh \
		    "$PINCER_BIN" --config "$PINCER_CONF" --state "$PINCER_STATE_DIR" doctor \
		    >"$T_TMP/doctor" 2>&1
		is "… pincer doctor there: exits 1" "$?" 1
		like "… and says the sandbox check failed" "$(cat "$T_TMP/doctor")" '^FAIL +sandbox '
		pincer_stop
		is "… pincerd exits 0" "$PINCER_EXIT" 0
	else
		ok "pincerd starts in a user namespace without namespaces" false
		sed 's/^/#   /' "$PINCER_LOG"
	fi
else
	skip "no namespaces: 503 naming them" "cannot forbid user namespaces here"
fi

done_testing
