# SPDX-License-Identifier: MIT
# sandbox_escape_api.sh: escape attempts through the sandbox manager and its
# REST API (the launcher's own are in sandbox_escape.sh): paths with `..`
# and planted symlinks in the files API, the gateway's state, database and
# keys, another sandbox's files, processes and sockets, host ports, the
# gateway as seen from inside (the sandbox is a sandbox, with the llm scope
# only), fork and memory bombs, what a stop leaves behind, /run/pincer.
. "$TOP_SRCDIR/tests/integration/lib.sh"
. "$TOP_SRCDIR/tests/integration/sandbox_lib.sh"

# A uid range of its own: sandbox_escape.sh looks for perl run by uid 100000.
UIDB=1100000
LIMITS="\"sandbox\": { \"memory_mb\": 64, \"pids_max\": 64, \"uid_base\": $UIDB }"
host_procs() { ps -eo args | grep -c "^$1\$"; }
# fget NAME PATH: GET …/NAME/files/PATH as sent (no .. squashed by curl);
# CODE, and the body in $T_TMP/fget.
fget() {
	CODE=$(curl -sS --path-as-is --max-time 10 -o "$T_TMP/fget" -w '%{http_code}' \
	    -H "Authorization: Bearer $TOK" "$PINCER_URL$SP/$1/files/$2" 2>/dev/null)
}
# not_host_shadow: the last fget is not the host's /etc/shadow, nor any
# part of it.
not_host_shadow() {
	! cmp -s "$T_TMP/fget" /etc/shadow &&
	    ! grep -qE '^root:[^:]*:[0-9]*:' "$T_TMP/fget"
}

differ() { ! cmp -s "$1" "$2"; }

if [ ! -x "$TOP_BUILDDIR/pincer-init" ]; then
	ok "pincer-init is built next to pincer" false
	done_testing
fi
if ! pincer_start "{ $FAST, $LIMITS }"; then
	ok "pincerd starts" false
	done_testing
fi
PW=$(random_token)
secret_register "$PW"
printf '%s\n' "$PW" | pcli user add alice --role owner --password-stdin >/dev/null 2>&1
TOK=$(pcli token create --user alice --scope sandbox --name sbx 2>/dev/null)
secret_register "$TOK"
TOK_ID=${TOK#pincer_}
TOK_ID=${TOK_ID%%_*}
RTOK=$(pcli token create --user alice --scope read --name reader 2>/dev/null)
secret_register "$RTOK"
RTOK_ID=${RTOK#pincer_}
RTOK_ID=${RTOK_ID%%_*}
post "" '{"name":"a"}'
is "sandbox a: 201" "$CODE" 201
post "" '{"name":"b"}'
is "sandbox b: 201" "$CODE" 201
A="$PINCER_STATE_DIR/sandboxes/a"
ok "(the host has an /etc/shadow to steal)" test -s /etc/shadow

# --- the files API and `..` ----------------------------------------------------
for p in '../../etc/shadow' 'workspace/../../etc/shadow' '%2e%2e/%2e%2e/etc/shadow' \
    'workspace/%2e%2e/%2e%2e/%2e%2e/etc/shadow' '..%2f..%2fetc%2fshadow' \
    'workspace/..%2F..%2F..%2Fetc%2Fshadow' '%2E%2E/%2E%2E/%2E%2E/%2E%2E/etc/shadow' \
    'etc/shadow' 'etc/../etc/shadow' '//etc/shadow'; do
	fget a "$p"
	is "GET files/$p: 404 (resolved in the sandbox, which has no shadow)" "$CODE" 404
	ok "… never the host's /etc/shadow" not_host_shadow
done
CODE=$(curl -sS --path-as-is -o "$T_TMP/fget" -w '%{http_code}' -H "Authorization: Bearer $TOK" \
    "$PINCER_URL$SP/a/../../../../etc/shadow" 2>/dev/null)
like "GET $SP/a/../../../../etc/shadow: 404 or 400" "$CODE" '^(404|400)$'
ok "… not the host's /etc/shadow" not_host_shadow
fget a etc/passwd
is "GET files/etc/passwd: 200" "$CODE" 200
is "… it is the sandbox's passwd" "$(head -1 "$T_TMP/fget")" 'root:x:0:0:root:/root:/bin/sh'
ok "… not the host's" differ "$T_TMP/fget" /etc/passwd
fget a '../../../etc/passwd'
ok "GET files/../../../etc/passwd: the sandbox's passwd or a refusal" \
    test "$CODE" != 200 -o "$(head -1 "$T_TMP/fget")" = 'root:x:0:0:root:/root:/bin/sh'

MARK=pwned-$(random_token)
api PUT "/a/files/../../../tmp/$MARK" --path-as-is --data-binary 'x'
ok "PUT files/../../../tmp/$MARK: nothing lands in the host's /tmp" test ! -e "/tmp/$MARK"
api PUT "/a/files/%2e%2e/%2e%2e/%2e%2e/tmp/$MARK" --path-as-is --data-binary 'x'
ok "PUT files/%2e%2e/…/tmp/$MARK: nothing lands in the host's /tmp" test ! -e "/tmp/$MARK"
api PUT "/a/files$PINCER_STATE_DIR/$MARK" --data-binary 'x'
ok "PUT files at the host path of the state folder: nothing lands there" \
    test ! -e "$PINCER_STATE_DIR/$MARK"
api PUT /a/files/workspace/f --data-binary 'f'
api POST "/a/files/workspace/f?op=move&to=$PINCER_STATE_DIR/$MARK"
ok "move to the host path of the state folder: nothing lands there" \
    test ! -e "$PINCER_STATE_DIR/$MARK"
api POST "/a/files/workspace/f?op=move&to=../../../../tmp/$MARK"
ok "move to ../../../../tmp/$MARK: nothing lands in the host's /tmp" test ! -e "/tmp/$MARK"

# --- planted symlinks ------------------------------------------------------------------
run a "ln -s /etc/shadow /workspace/s; ln -s / /workspace/root; ln -s /tmp /workspace/t;
    ln -s '$PINCER_STATE_DIR' /workspace/state; ln -s '$T_TMP' /workspace/ttmp; echo done"
is "inside, symlinks to /etc/shadow, /, /tmp and host folders are made" "$OUT" done
ok "… on the host, workspace/s really points at /etc/shadow" test "$(readlink "$A/workspace/s")" = /etc/shadow
fget a workspace/s
is "GET files/workspace/s (-> /etc/shadow): 404 (the sandbox has none)" "$CODE" 404
ok "… not the host's" not_host_shadow
fget a workspace/root/etc/shadow
is "GET files/workspace/root/etc/shadow (root -> /): 404" "$CODE" 404
ok "… not the host's" not_host_shadow
fget a workspace/root/etc/passwd
is "GET files/workspace/root/etc/passwd: the sandbox's" "$(head -1 "$T_TMP/fget")" \
    'root:x:0:0:root:/root:/bin/sh'
fget a workspace/state/pincer.db
is "GET files/workspace/state/pincer.db (-> the host state folder): 404" "$CODE" 404
fget a workspace/state/keys/session.key
is "GET files/workspace/state/keys/session.key: 404" "$CODE" 404
api PUT "/a/files/workspace/t/$MARK" --data-binary 'x'
ok "PUT files/workspace/t/$MARK (t -> /tmp): nothing in the host's /tmp" test ! -e "/tmp/$MARK"
api PUT "/a/files/workspace/ttmp/$MARK" --data-binary 'x'
ok "PUT through a link to a host folder: nothing lands there" test ! -e "$T_TMP/$MARK"
api PUT "/a/files/workspace/state/$MARK" --data-binary 'x'
ok "PUT through a link to the state folder: nothing lands there" test ! -e "$PINCER_STATE_DIR/$MARK"
api DELETE '/a/files/workspace/ttmp?recursive=1'
ok "DELETE ?recursive=1 of a link to a host folder: the folder is intact" \
    test -d "$T_TMP" -a -e "$T_TMP/probe"
api DELETE '/a/files/workspace/state?recursive=1'
ok "DELETE ?recursive=1 of a link to the state folder: intact" test -s "$PINCER_STATE_DIR/pincer.db"
run a "ln -sfn '$T_TMP' /workspace/ttmp; ln -sfn '$PINCER_STATE_DIR' /workspace/state; echo again"
is "(the links are planted again)" "$OUT" again

# --- the gateway's state, database and keys, from inside ---------------------------
run a "cat '$PINCER_STATE_DIR/pincer.db' '$PINCER_STATE_DIR/keys/session.key' 2>/dev/null | wc -c;
    cat /run/pincer/../../pincer.db /run/pincer/../../keys/session.key /run/pincer/../../../keys/session.key 2>/dev/null | wc -c;
    cat '/proc/1/root$PINCER_STATE_DIR/pincer.db' /proc/1/cwd/pincer.db 2>/dev/null | wc -c;
    ls '$PINCER_STATE_DIR' /run/pincer/.. 2>/dev/null | grep -c -e pincer.db -e keys -e sandboxes"
is "inside, the state folder, pincer.db and keys/session.key cannot be read by any path" \
    "$(printf '%s' "$OUT" | tr '\n' ' ')" "0 0 0 0"
run a 'find / \( -path /proc -o -path /usr -o -path /sys \) -prune -o \( -name pincer.db -o -name session.key -o -name pincerd.sock -o -name "pincer.db-wal" \) -print 2>/dev/null; echo end'
is "inside, no file of the gateway's state anywhere" "$OUT" end
run a 'for f in /proc/1/fd/* /proc/self/fd/*; do readlink "$f"; done'
unlike "pincer-init and its children hold no host path open" "$OUT" "$PINCER_DIR|/sandboxes/|pincer\\.db"
post /a/exec "{\"cmd\":[\"ls\",\"-a\"],\"cwd\":$(js "$PINCER_STATE_DIR")}"
unlike "exec with cwd at the state folder's host path does not list it" "$(jv "$BODY" o.stdout)" \
    'pincer\.db|keys|sandboxes'
KEY=$(od -An -tx1 "$PINCER_STATE_DIR/keys/session.key" | tr -d ' \n')
run a 'for f in /workspace /data /tmp /run/pincer /root; do find $f -type f -exec od -An -tx1 {} + 2>/dev/null; done | tr -d " \n" | head -c 100000000'
unlike "the session key's bytes are in no file the sandbox sees" "$OUT" "${KEY:-nokey}"

# --- another sandbox ------------------------------------------------------------------
run a 'echo secret-of-a > /workspace/secret; echo data-of-a > /data/secret; echo ok'
is "a writes a secret to /workspace and /data" "$OUT" ok
if [ "$(id -u)" = 0 ]; then
	is "on the host, a's files belong to uid_base (slot 0)" "$(stat -c %u "$A/workspace/secret")" $UIDB
	run b 'echo x > /workspace/mine; echo ok'
	is "… and b's to uid_base + 65536 (slot 1): no host uid is shared" \
	    "$(stat -c %u "$PINCER_STATE_DIR/sandboxes/b/workspace/mine")" $((UIDB + 65536))
else
	skip "host uids of the sandboxes' files" "not root"
	skip "host uids of the sandboxes' files" "not root"
fi
run b "test -e /workspace/secret || test -e /data/secret || echo absent"
is "b does not see a's /workspace or /data" "$OUT" absent
run b "cat '$A/workspace/secret' '$A/data/secret' 2>/dev/null; test -e '$A/run/control.sock' || echo absent"
is "nor a's files or control.sock by their host paths" "$OUT" absent
run b 'echo $(ls /run/pincer)'
is "b's /run/pincer has b's two sockets and its own CA's public files only" \
    "$OUT" "ca-certificates.crt control.sock egress-ca.pem gateway.sock"
run b 'cat /run/pincer/egress-ca.pem'
B_CA=$OUT
run a 'cat /run/pincer/egress-ca.pem'
ok "… a CA that is not a's" [ -n "$B_CA" ] && [ "$B_CA" != "$OUT" ]
post /a/processes '{"id":"marker","cmd":["sleep","98765"]}'
is "a runs sleep 98765 in the background: 201" "$CODE" 201
post /a/processes '{"id":"tcp","cmd":["python3","-m","http.server","8124","--bind","127.0.0.1"]}'
post /a/processes/tcp/wait '{"port":8124,"timeout_ms":15000}'
is "a serves on its 127.0.0.1:8124" "$CODE" 200
post /a/processes '{"id":"abs","cmd":["python3","-c","import socket,time\ns=socket.socket(socket.AF_UNIX)\ns.bind(\"\\0pincer-test-abs\")\ns.listen()\nprint(\"bound\",flush=True)\ntime.sleep(600)"]}'
post /a/processes/abs/wait '{"log":"^bound","timeout_ms":15000}'
is "a listens on an abstract Unix socket" "$CODE" 200
run b 'grep -l "9876[5]" /proc/[0-9]*/cmdline 2>/dev/null | wc -l; ls /proc | grep -c "^[0-9]"'
like "b's /proc shows none of a's processes (only a few of its own)" "$(printf '%s' "$OUT" | tr '\n' ' ')" '^0 [1-9]$'
run a 'grep -l "9876[5]" /proc/[0-9]*/cmdline 2>/dev/null | wc -l'
is "(a's /proc shows its sleep 98765)" "$OUT" 1
run a 'curl -s -o /dev/null -w "%{http_code}" http://127.0.0.1:8124/'
is "(a reaches its own port)" "$OUT" 200
run b 'curl -s -m 3 -o /dev/null http://127.0.0.1:8124/; echo rc=$?'
is "b cannot reach a's 127.0.0.1:8124 (connection refused)" "$OUT" rc=7
ABS='import socket
s = socket.socket(socket.AF_UNIX)
try:
    s.connect("\0pincer-test-abs"); print("connected")
except OSError as e:
    print("refused")'
run a "python3 -c '$ABS'"
is "(a reaches its own abstract socket)" "$OUT" connected
run b "python3 -c '$ABS'"
is "b cannot reach a's abstract Unix socket" "$OUT" refused

# --- host ports --------------------------------------------------------------------------
HPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$T_TMP/www"	# an empty folder: it is served on every address
python3 -m http.server "$HPORT" --bind 0.0.0.0 --directory "$T_TMP/www" >/dev/null 2>&1 &
HPID=$!
T_PIDS="$T_PIDS $HPID"
ok "a host server listens on 0.0.0.0:$HPORT" wait_until 10 curl -fsS -o /dev/null "http://127.0.0.1:$HPORT/"
run a "curl -s -m 3 -o /dev/null http://127.0.0.1:$HPORT/; echo rc=\$?;
    bash -c '(exec 3<>/dev/tcp/127.0.0.1/$HPORT) 2>/dev/null && echo reached || echo refused'"
is "inside, the host's 127.0.0.1:$HPORT cannot be reached (curl, bash /dev/tcp)" \
    "$(printf '%s' "$OUT" | tr '\n' ' ')" "rc=7 refused"
HIP=$(hostname -I 2>/dev/null | awk '{print $1}')
if [ -n "$HIP" ]; then
	run a "curl -s -m 3 --noproxy '*' -o /dev/null http://$HIP:$HPORT/; echo rc=\$?"
	like "… nor the host's address $HIP:$HPORT" "$OUT" '^rc=(7|28)$'
	run a "curl -s -m 3 -o /dev/null -w '%{http_code}' http://$HIP:$HPORT/"
	is "… and the egress proxy refuses it (no policy allows it)" "$OUT" 403
else
	skip "the host's own address" "hostname -I gives none"
fi
run a "curl -s -m 3 -o /dev/null http://127.0.0.1:$(pincer_port)/healthz; echo rc=\$?"
is "… nor the gateway's own port $(pincer_port)" "$OUT" rc=7
kill "$HPID" 2>/dev/null
wait "$HPID" 2>/dev/null

# --- the gateway, from inside: the sandbox is a sandbox ------------------------------------
# in_a METHOD PATH [BODY]: curl from inside a to 127.0.0.1:8080; OUT is
# "CODE BODY".
in_a() {
	local data=""
	[ -n "${3:-}" ] && data="-H 'Content-Type: application/json' --data-binary '$3'"
	run a "curl -s -m 10 -X $1 -w ' %{http_code}' $data http://127.0.0.1:8080$2"
	ICODE=${OUT##* }
	IBODY=${OUT% *}
}
in_a GET /api/v1/me
is "inside, GET 127.0.0.1:8080/api/v1/me: 200" "$ICODE" 200
ok "… it is sandbox a: name a, auth sandbox, member, scopes llm and browser only" jok "$IBODY" \
    'o.name === "a" && o.auth === "sandbox" && o.role === "member" && JSON.stringify(o.scopes) === "[\"llm\",\"browser\"]"'
run b 'curl -s http://127.0.0.1:8080/api/v1/me'
is "… and b is b" "$(jv "$OUT" o.name)" b
in_a GET /api/v1/sandboxes
is "inside, GET $SP: 403 (no sandbox scope)" "$ICODE" 403
in_a POST /api/v1/sandboxes '{"name":"evil"}'
is "inside, POST $SP: 403" "$ICODE" 403
in_a POST /api/v1/sandboxes/b/exec '{"cmd":["true"]}'
is "inside, exec in b: 403" "$ICODE" 403
in_a GET /api/v1/sandboxes/a/files/etc/passwd
is "inside, its own files through the gateway: 403" "$ICODE" 403
in_a POST /api/v1/sandboxes/a/stop
is "inside, stop itself through the gateway: 403" "$ICODE" 403
in_a DELETE /api/v1/sandboxes/b
is "inside, DELETE b: 403" "$ICODE" 403
in_a GET /api/v1/audit
is "inside, GET /api/v1/audit: 403" "$ICODE" 403
in_a GET /metrics
is "inside, GET /metrics: 403" "$ICODE" 403
# A sandbox may use the LLM proxy, nothing else (DESIGN.md §3): not the
# token routes, which need no scope of a person.
in_a GET /api/v1/tokens
is "inside, GET /api/v1/tokens: 403" "$ICODE" 403
unlike "… it does not list the owner's tokens" "$IBODY" "$TOK_ID|$RTOK_ID"
in_a POST /api/v1/tokens '{"name":"evil","scopes":"llm","ttl_s":60}'
is "inside, POST /api/v1/tokens: 403" "$ICODE" 403
unlike "… it mints no token" "$IBODY" 'pincer_[0-9a-f]{12}_'
in_a DELETE "/api/v1/tokens/$RTOK_ID"
is "inside, DELETE /api/v1/tokens/<the owner's>: 403" "$ICODE" 403
req GET /metrics -H "Authorization: Bearer $RTOK"
is "… the owner's token still works" "$CODE" 200
api GET ""
is "… and the owner's sandbox token still works" "$CODE" 200
run a "curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $TOK' http://127.0.0.1:8080/api/v1/sandboxes"
is "inside, even the owner's token is not honoured on the sandbox's socket: 403" "$OUT" 403
run a 'curl -s -o /dev/null -w "%{http_code}" --unix-socket /run/pincer/gateway.sock http://x/api/v1/sandboxes'
is "inside, the gateway.sock directly: 403 as well" "$OUT" 403
api GET ""
ok "no sandbox was created from inside" jok "$BODY" 'o.sandboxes.length === 2'

# --- /run/pincer is read-only -----------------------------------------------------------------
run a 'rm -f /run/pincer/control.sock 2>/dev/null; echo rm=$?;
    touch /run/pincer/x 2>/dev/null; echo touch=$?;
    mv /run/pincer/gateway.sock /run/pincer/g 2>/dev/null; echo mv=$?;
    python3 -c "import socket; socket.socket(socket.AF_UNIX).bind(\"/run/pincer/evil.sock\")" 2>/dev/null; echo bind=$?'
is "inside, /run/pincer cannot be changed (rm, touch, mv, bind)" "$(printf '%s' "$OUT" | tr '\n' ' ')" \
    "rm=1 touch=1 mv=1 bind=1"
is "… on the host, run/ has the two sockets and the CA's public files only" \
    "$(ls "$A/run" | tr '\n' ' ')" \
    "ca-certificates.crt control.sock egress-ca.pem gateway.sock "
unlike "… no private key among them" "$(cat "$A/run/"*.pem "$A/run/"*.crt)" \
    'PRIVATE KEY'
run a 'echo still'
is "… and pincerd still reaches a's pincer-init" "$OUT" still

# --- bombs -----------------------------------------------------------------------------------
curl -sS --max-time 30 -o "$T_TMP/bomb" -H "Authorization: Bearer $TOK" \
    -H 'Content-Type: application/json' -X POST \
    --data-binary '{"cmd":["perl","-e","fork while 1"],"timeout_ms":4000}' \
    "$PINCER_URL$SP/a/exec" 2>/dev/null &
BPID=$!
T_PIDS="$T_PIDS $BPID"
at_limit() { api GET /a; [ "$(jv "$BODY" o.pids)" -ge 60 ]; }
ok "a fork bomb in a reaches pids_max 64" wait_until 5 at_limit
api GET /a
ok "… and no more" jok "$BODY" 'o.pids <= 64'
run b 'echo fine'
is "… meanwhile b answers exec" "$OUT" fine
is "… and /healthz is 200" "$(curl -s -o /dev/null -w '%{http_code}' "$PINCER_URL/healthz")" 200
wait "$BPID"
ok "… the bomb's exec ends at its timeout, killed" jok "$(cat "$T_TMP/bomb")" \
    'o.timed_out === true && o.exit_code === 137'
run a 'echo recovered'
is "… and a works again" "$OUT" recovered
api GET /a
ok "… with its processes back to a few" jok "$BODY" 'o.pids < 10'

post /a/exec '{"cmd":["perl","-e","$x = \"x\" x (300 << 20); print \"survived\\n\""],"timeout_ms":30000}'
ok "a memory bomb over memory_mb 64 is killed (137)" jok "$BODY" 'o.exit_code === 137'
unlike "… it did not survive" "$(jv "$BODY" o.stdout)" survived
run b 'echo fine'
is "… b still answers" "$OUT" fine
run a 'echo alive'
is "… and so does a" "$OUT" alive
is "… and /healthz is 200" "$(curl -s -o /dev/null -w '%{http_code}' "$PINCER_URL/healthz")" 200

# --- what a stop leaves ---------------------------------------------------------------------
# The launcher's cgroup name: a hash of the state folder (sbx.c), then the name.
cg_prefix() {
	local s=$1 h=5381 i c
	for ((i = 0; i < ${#s}; i++)); do
		printf -v c '%d' "'${s:i:1}"
		h=$(((h * 33 + c) & 0xffffffff))
	done
	printf '%08x' "$h"
}
CG="pincer/$(cg_prefix "$PINCER_STATE_DIR")-a"
cgroups_of_a() { ls -d /sys/fs/cgroup/*/"$CG" /sys/fs/cgroup/"$CG" 2>/dev/null; }
# a_procs REGEX: how many of the processes in a's cgroup have a command
# line matching REGEX. Counted in a alone: another test on the host may
# run a process of the same name; -ww, so that no COLUMNS cuts a line.
a_procs() {
	local g
	g=$(cgroups_of_a | head -1)
	ps -ww -o args= -p "$(paste -sd, "$g/cgroup.procs" 2>/dev/null)" \
	    2>/dev/null | grep -c -- "$1"
}
ok "a's cgroups exist while it runs ($CG)" test -n "$(cgroups_of_a)"
is "a's sleep 98765 runs on the host" "$(a_procs '^sleep 98765$')" 1
N=$(a_procs '^python3 -[mc] .*\(8124\|pincer-test-abs\)')
is "… and its two python3 servers" "$N" 2
if [ "$N" != 2 ]; then
	api GET /a/processes
	diag "a's processes, as pincer-init saw them end: $BODY"
fi
api POST /a/stop
is "POST $SP/a/stop: 200, sleeping" "$CODE:$(jv "$BODY" o.state)" 200:sleeping
is "… no process of a is left on the host" "$(host_procs 'sleep 98765')" 0
is "… nor its python servers" "$(ps -eo args | grep -c '^python3 -[mc] .*\(8124\|pincer-test-abs\)')" 0
ok "… its cgroups are gone" test -z "$(cgroups_of_a)"
run b 'echo b-alive'
is "b is untouched by a's stop" "$OUT" b-alive

# --- destroying a sandbox with links to host folders removes none of their targets -----
api DELETE /a
is "DELETE a (its workspace links to /, /etc/shadow, /tmp, the state folder): 200" "$CODE" 200
ok "… its folder is gone" test ! -e "$A"
ok "… the host's /etc/shadow is intact" test -s /etc/shadow
ok "… the test's folder is intact" test -e "$T_TMP/probe"
ok "… the state folder is intact" test -s "$PINCER_STATE_DIR/pincer.db" -a -s "$PINCER_STATE_DIR/keys/session.key"
ok "… /tmp is intact" test -d /tmp
api GET ""
ok "… b is still listed and running" jok "$BODY" \
    'o.sandboxes.length === 1 && o.sandboxes[0].name === "b" && o.sandboxes[0].state === "running"'

pincer_stop
is "pincerd exits 0" "$PINCER_EXIT" 0
done_testing
