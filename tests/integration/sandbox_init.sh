# SPDX-License-Identifier: MIT
# pincer-init run on the host: its control API over a Unix socket (health,
# exec, processes, files, malformed requests), then its life as PID 1 (a
# command's status, SIGTERM, the launcher's pipe), then once in a real
# sandbox with its forwarders.
. "$TOP_SRCDIR/tests/integration/lib.sh"

INIT="$TOP_BUILDDIR/pincer-init"
SBX="$TOP_BUILDDIR/pincer-sandbox"
W="$T_TMP/w"
mkdir -p "$W" "$T_TMP/run"
ILOG="$T_LOGDIR/$T_NAME.init.log"
: >"$ILOG"
have_py=$(command -v python3 >/dev/null && echo 1)

# init_start SOCKET ARGS…: pincer-init in the background; INIT_PID.
init_start() {
	local s=$1; shift
	rm -f "$s"
	"$INIT" --control "$s" --no-forward "$@" 2>>"$ILOG" &
	INIT_PID=$!
	T_PIDS="$T_PIDS $INIT_PID"
	wait_until 5 test -S "$s"
}
# api METHOD PATH [CURL ARGS]: CODE, BODY, HDRS from the control socket.
api() {
	local m=$1 p=$2
	shift 2
	: >"$T_TMP/body"
	: >"$T_TMP/hdrs"
	CODE=$(curl -sS --max-time 20 --unix-socket "$SOCK" -o "$T_TMP/body" \
	    -D "$T_TMP/hdrs" -w '%{http_code}' -X "$m" "$@" "http://init$p" \
	    2>"$T_TMP/curl.err")
	BODY=$(tr -d '\0' <"$T_TMP/body")
	HDRS=$(tr -d '\r' <"$T_TMP/hdrs")
}
# exec_json JSON: POST /exec.
exec_json() { api POST /exec -H 'Content-Type: application/json' -d "$1"; }
# jok EXPR: EXPR holds of the answer's JSON as o (read from the file: an
# answer may be larger than an argument can be).
jok() {
	node -e 'const o = JSON.parse(require("fs").readFileSync(
	    process.argv[1], "utf8")); process.exit(eval(process.argv[2]) ? 0 : 1)' \
	    "$T_TMP/body" "$1"
}
# jnum KEY: a number field of BODY.
jnum() { sed -n "s/.*\"$1\":\([0-9-]*\).*/\1/p" <<<"$BODY"; }
# raw DATA: the bytes to the socket, all it answers (python3).
raw() {
	python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode("latin-1"))
out = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
except Exception:
    pass
sys.stdout.write(out.decode("latin-1"))' "$SOCK" "$1"
}
gone() { ! kill -0 "$1" 2>/dev/null; }
alive() { kill -0 "$1" 2>/dev/null; }
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

SOCK="$T_TMP/run/control.sock"
init_start "$SOCK" --max-file-mb 2 || { echo "Bail out! pincer-init did not start"; cat "$ILOG"; exit 1; }
MAIN_PID=$INIT_PID
# A client that never finishes its head: the answer comes at 30 s, while
# the rest runs.
if [ -n "$have_py" ]; then
	timeout 45 python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"GET /health HTTP/1.1\r\n")
print(s.recv(4096).decode())' "$SOCK" >"$T_TMP/slow" 2>&1 &
	SLOW=$!
fi

# --- health --------------------------------------------------------------
api GET /health
is "GET /health: 200" "$CODE" 200
ok "health says ok, its pid, no processes" jok "o.status === 'ok' && o.pid === $MAIN_PID && o.processes === 0 && o.terminals === 0 && o.uptime_ms >= 0"
like "every answer closes the connection" "$HDRS" 'Connection: close'

# --- exec, buffered ------------------------------------------------------
exec_json '{"cmd":["sh","-c","echo out; echo err >&2; exit 3"]}'
is "exec: 200" "$CODE" 200
ok "exec: stdout, stderr, exit code" jok 'o.stdout === "out\n" && o.stderr === "err\n" && o.exit_code === 3 && o.timed_out === false && o.truncated === false && o.duration_ms >= 0 && o.signal === undefined'
exec_json '{"cmd":["sh","-c","kill -TERM $$"]}'
ok "exec: a signal gives 128+N and signal" jok 'o.exit_code === 143 && o.signal === 15'
exec_json "{\"cmd\":[\"pwd\"],\"cwd\":\"$W\"}"
ok "exec: cwd" jok "o.stdout === '$W\n'"
exec_json '{"cmd":["sh","-c","echo $FOO $HOME $LANG; echo $PATH"],"env":{"FOO":"bar","LANG":"C.UTF-8"}}'
ok "exec: env over HOME=/root, LANG, a root shell's PATH" jok 'o.stdout === "bar /root C.UTF-8\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"'
mkdir -p "$W/bin"
printf '#!/bin/sh\necho found me\n' >"$W/bin/pincer-test-tool"
chmod 755 "$W/bin/pincer-test-tool"
exec_json "{\"cmd\":[\"pincer-test-tool\"],\"env\":{\"PATH\":\"$W/bin:/usr/bin:/bin\"}}"
ok "exec: the program is looked up in the command's PATH" jok 'o.stdout === "found me\n" && o.exit_code === 0'
exec_json '{"cmd":["sh","-c","env | grep -c PINCER_BIN"]}'
ok "exec: nothing of pincer-init's own environment" jok 'o.stdout === "0\n"'
exec_json '{"cmd":["cat"],"stdin":"line one\nline two\n"}'
ok "exec: stdin" jok 'o.stdout === "line one\nline two\n"'
exec_json '{"cmd":["sh","-c","read x; echo got:$x"]}'
ok "exec: no stdin is /dev/null" jok 'o.stdout === "got:\n"'
t0=$(date +%s%N)
exec_json '{"cmd":["sh","-c","sleep 30; echo never"],"timeout_ms":300}'
t1=$(date +%s%N)
ok "exec: timeout_ms kills it: timed_out, 137" jok 'o.timed_out === true && o.exit_code === 137 && o.signal === 9 && o.stdout === ""'
ok "exec: the timeout answers at once (< 3 s)" test $(((t1 - t0) / 1000000)) -lt 3000
exec_json '{"cmd":["/no/such/program"]}'
ok "exec: a missing program is exit 127 with the reason" jok 'o.exit_code === 127 && /No such file/.test(o.stderr)'
printf 'echo hi\n' >"$W/noexec.sh"
chmod 644 "$W/noexec.sh"
exec_json "{\"cmd\":[\"$W/noexec.sh\"]}"
ok "exec: a file that is not executable is 126" jok 'o.exit_code === 126 && /Permission denied/.test(o.stderr)'
exec_json '{"cmd":["sh","-c","head -c 5000000 /dev/zero | tr \"\\000\" a; echo done >&2"]}'
ok "exec: 4 MiB of stdout kept, truncated, the command ran to its end" jok 'o.truncated === true && o.stdout.length === 4194304 && o.stderr === "done\n" && o.exit_code === 0'
exec_json '{"cmd":["printf","\\000\\001\\377ab"],"encoding":"base64"}'
ok "exec: encoding base64" jok 'o.stdout === "AAH/YWI="'
exec_json '{"cmd":["printf","a\\377b\\303\\251"]}'
ok "exec: invalid UTF-8 becomes U+FFFD, valid stays" jok 'o.stdout === "a\ufffdb\u00e9"'
exec_json '{"cmd":["true"],"cwd":"/no/such/folder"}'
is "exec: a missing cwd is 400" "$CODE" 400
exec_json '{"cmd":["true"],"timeout_ms":0}'
is "exec: timeout_ms 0 is 400" "$CODE" 400
exec_json '{"cmd":["true"],"encoding":"latin1"}'
is "exec: an unknown encoding is 400" "$CODE" 400
t0=$(date +%s%N)
exec_json '{"cmd":["sh","-c","sleep 30 & echo bg"],"timeout_ms":5000}'
t1=$(date +%s%N)
ok "exec: what it leaves running holding stdout does not hold the answer" jok 'o.stdout === "bg\n" && o.exit_code === 0'
ok "exec: that answer came at once (< 1 s)" test $(((t1 - t0) / 1000000)) -lt 1000

# --- exec, streamed ------------------------------------------------------
curl -sN --max-time 10 --unix-socket "$SOCK" http://init/exec \
    -d '{"cmd":["sh","-c","echo a; echo e >&2; sleep 1; echo b"],"stream":true}' |
    while IFS= read -r line; do
	    printf '%s %s\n' "$(date +%s%N)" "$line"
    done >"$T_TMP/stream"
ev=$(sed -n 's/^[0-9]* event: //p' "$T_TMP/stream" | tr '\n' ' ')
is "stream: stdout, stderr, stdout, exit in order" "$ev" "stdout stderr stdout exit "
ta=$(grep -m1 'data: {"data":"a\\n"}' "$T_TMP/stream" | cut -d' ' -f1)
tb=$(grep -m1 'data: {"data":"b\\n"}' "$T_TMP/stream" | cut -d' ' -f1)
ok "stream: the first event came a second before the second" \
    test $(((${tb:-0} - ${ta:-0}) / 1000000)) -ge 700
like "stream: the exit event" "$(grep -A1 'event: exit' "$T_TMP/stream" | tail -1)" \
    'data: \{"duration_ms":[0-9]+,"timed_out":false,"exit_code":0\}'
like "stream: text/event-stream" "$(curl -sN -D - -o /dev/null --max-time 5 --unix-socket "$SOCK" http://init/exec -d '{"cmd":["true"],"stream":true}' | tr -d '\r')" \
    'Content-Type: text/event-stream'
curl -sN --max-time 1 --unix-socket "$SOCK" http://init/exec \
    -d '{"cmd":["sh","-c","echo $$; exec sleep 300"],"stream":true}' \
    >"$T_TMP/cancel" 2>/dev/null
cpid=$(sed -n 's/^data: {"data":"\([0-9]*\)\\n"}/\1/p' "$T_TMP/cancel")
ok "stream: the command's pid was sent ($cpid)" test -n "$cpid"
ok "stream: a client going away kills the command" wait_until 5 gone "${cpid:-1}"
curl -s --max-time 1 --unix-socket "$SOCK" http://init/exec \
    -d "{\"cmd\":[\"sh\",\"-c\",\"echo \$\$ > $W/bpid; exec sleep 300\"]}" >/dev/null 2>&1
bpid=$(cat "$W/bpid" 2>/dev/null)
ok "buffered: a client going away kills the command too" wait_until 5 gone "${bpid:-1}"
exec_json '{"cmd":["sh","-c","printf \"\\303\"; sleep 0.3; printf \"\\251\\n\""],"stream":true}'
like "stream: a UTF-8 sequence cut across reads is sent whole" "$BODY" 'data: \{"data":"é\\n"\}'

# --- processes -----------------------------------------------------------
api POST /processes -d '{"id":"srv","cmd":["sh","-c","echo hello; echo oops >&2; sleep 0.3; echo \"ready on 1234\"; exec sleep 300"]}'
is "processes: start: 201" "$CODE" 201
ok "processes: id, pid, running, started_ms" jok 'o.id === "srv" && o.pid > 0 && o.status === "running" && o.started_ms > 1600000000000'
SRV_PID=$(jnum pid)
api POST /processes -d '{"id":"srv","cmd":["true"]}'
is "processes: an id still running: 409" "$CODE" 409
api POST /processes -d '{"id":"bad id!","cmd":["true"]}'
is "processes: a bad id: 400" "$CODE" 400
api POST /processes/srv/wait -d '{"log":"ready on [0-9]+","timeout_ms":5000}'
is "wait log: 200" "$CODE" 200
ok "wait log: the line" jok 'o.ok === true && o.line === "ready on 1234"'
api POST /processes/srv/wait -d '{"log":"^hel+o$","timeout_ms":1000}'
ok "wait log: lines already kept count" jok 'o.ok === true && o.line === "hello"'
api POST /processes/srv/wait -d '{"log":"oops"}'
ok "wait log: stderr too" jok 'o.line === "oops"'
api POST /processes/srv/wait -d '{"log":"never printed","timeout_ms":300}'
is "wait log: timeout is 408" "$CODE" 408
ok "wait log: code timeout" jok 'o.error.code === "timeout"'
api POST /processes/srv/wait -d '{"log":"(unclosed"}'
is "wait log: a bad regex is 400" "$CODE" 400
api GET /processes
ok "processes: the list" jok 'o.processes.length === 1 && o.processes[0].id === "srv" && o.processes[0].status === "running" && o.processes[0].cmd[0] === "sh" && o.processes[0].exit_code === null && o.processes[0].ended_ms === null'
api GET /processes/srv
ok "processes: one" jok 'o.id === "srv" && o.pid === '"${SRV_PID:-0}"
api GET /processes/nope
is "processes: unknown id: 404" "$CODE" 404
api GET /processes/srv/logs
ok "logs: stdout and stderr" jok 'o.stdout === "hello\nready on 1234\n" && o.stderr === "oops\n" && o.truncated === false'
api GET /health
ok "health counts the process" jok 'o.processes === 1'
api DELETE /processes/srv
is "kill: 200" "$CODE" 200
ok "kill: exited with SIGTERM's code" jok 'o.id === "srv" && o.status === "exited" && o.exit_code === 143'
ok "kill: the process is gone" gone "${SRV_PID:-1}"
api GET /processes/srv
is "kill: the record is forgotten" "$CODE" 404

api POST /processes -d '{"id":"stubborn","cmd":["sh","-c","trap \"\" TERM; echo up; exec sleep 300"]}'
api POST /processes/stubborn/wait -d '{"log":"up"}'
t0=$(date +%s%N)
api DELETE /processes/stubborn
t1=$(date +%s%N)
ok "kill: SIGTERM ignored, SIGKILL after 3 s" jok 'o.exit_code === 137'
ok "kill: that took about 3 s" test $(((t1 - t0) / 1000000)) -ge 2500
api POST /processes -d '{"id":"k","cmd":["sh","-c","trap \"\" TERM; exec sleep 300"]}'
t0=$(date +%s%N)
api DELETE '/processes/k?signal=KILL'
t1=$(date +%s%N)
ok "kill: ?signal=KILL at once" jok 'o.exit_code === 137 && o.signal === 9'
ok "kill: ?signal=KILL took < 1 s" test $(((t1 - t0) / 1000000)) -lt 1000

api POST /processes -d '{"cmd":["sh","-c","echo one; sleep 0.5; echo two; exit 4"]}'
ok "processes: an id is made up when absent" jok '/^[A-Za-z0-9_.-]{1,64}$/.test(o.id)'
pid_id=$(sed 's/.*"id":"\([^"]*\)".*/\1/' <<<"$BODY")
curl -sN --max-time 10 --unix-socket "$SOCK" "http://init/processes/$pid_id/logs?stream=1" >"$T_TMP/logs"
is "logs stream: replay, live lines, exit" "$(grep -c '^event: ' "$T_TMP/logs")" 3
like "logs stream: the first line" "$(sed -n 2p "$T_TMP/logs")" '^data: \{"data":"one\\n"\}$'
like "logs stream: ends with exit" "$(grep -A1 '^event: exit' "$T_TMP/logs" | tail -1)" '"exit_code":4'
api GET "/processes/$pid_id"
ok "processes: exited, with its code and end" jok 'o.status === "exited" && o.exit_code === 4 && o.ended_ms >= o.started_ms'
api POST "/processes/$pid_id/wait" -d '{"port":1}'
is "wait: on an exited process: 409" "$CODE" 409
ok "wait: code exited" jok 'o.error.code === "exited"'
curl -sN --max-time 5 --unix-socket "$SOCK" "http://init/processes/$pid_id/logs?stream=1" >"$T_TMP/logs2"
like "logs stream of an exited process: what is kept, in one piece" \
    "$(sed -n 1,2p "$T_TMP/logs2" | tr '\n' ' ')" '^event: stdout data: \{"data":"one\\ntwo\\n"\} $'
like "logs stream of an exited process: then exit" \
    "$(grep '^event: ' "$T_TMP/logs2" | tail -1)" '^event: exit$'

api POST /processes -d "{\"id\":\"$pid_id\",\"cmd\":[\"sleep\",\"300\"]}"
is "processes: an exited id is replaced" "$CODE" 201
api POST /processes -d '{"id":"ends","cmd":["sh","-c","sleep 0.3; exit 1"]}'
api POST /processes/ends/wait -d '{"log":"never","timeout_ms":5000}'
is "wait: a process ending first: 409" "$CODE" 409
api POST /processes -d '{"id":"chatty","cmd":["sh","-c","while :; do echo tick; sleep 0.1; done"]}'
curl -sN --max-time 1 --unix-socket "$SOCK" http://init/processes/chatty/logs?stream=1 >/dev/null 2>&1
api GET /processes/chatty
ok "logs stream: a client going away leaves the process running" jok 'o.status === "running"'

if [ -n "$have_py" ]; then
	PORT=$(free_port)
	api POST /processes -d "{\"id\":\"web\",\"cmd\":[\"python3\",\"-m\",\"http.server\",\"$PORT\",\"--bind\",\"127.0.0.1\"],\"cwd\":\"$W\"}"
	api POST /processes/web/wait -d "{\"port\":$PORT,\"timeout_ms\":10000}"
	is "wait port: 200 once it listens" "$CODE" 200
	api POST /processes/web/wait -d "{\"port\":$PORT,\"path\":\"/\",\"timeout_ms\":5000}"
	is "wait port and path: 200 once it answers HTTP" "$CODE" 200
	api DELETE /processes/web
else
	skip "wait port" "no python3"
	skip "wait port and path" "no python3"
fi
api POST /processes/chatty/wait -d "{\"port\":${PORT:-1},\"timeout_ms\":300}"
is "wait port: nothing listening: 408" "$CODE" 408
# Any status counts: a server that answers 204 to everything, listening
# after half a second (perl, which Debian always has).
cat >"$W/srv.pl" <<'PERL'
use IO::Socket::INET;
select(undef, undef, undef, 0.5);
my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1:$ARGV[0]",
    Listen => 5, ReuseAddr => 1) or die "listen: $!";
while (my $c = $s->accept) {
	my $l = <$c>;
	print $c "HTTP/1.0 204 No Content\r\n\r\n";
	close $c;
}
PERL
PORT2=$(free_port 2>/dev/null || echo 45678)
api POST /processes -d "{\"id\":\"pl\",\"cmd\":[\"perl\",\"$W/srv.pl\",\"$PORT2\"]}"
api POST /processes/pl/wait -d "{\"port\":$PORT2,\"path\":\"/health\",\"timeout_ms\":10000}"
is "wait port and path: a 204 counts" "$CODE" 200

# --- files ---------------------------------------------------------------
printf "$(printf '\\%03o' $(seq 0 255))" >"$T_TMP/bytes"
is "the 256-byte sample" "$(stat -c %s "$T_TMP/bytes")" 256
api PUT "/files$W/deep/er/bytes.bin" --data-binary @"$T_TMP/bytes"
is "PUT: 201" "$CODE" 201
ok "PUT: path and size, parents made" jok "o.path === '$W/deep/er/bytes.bin' && o.size === 256"
api GET "/files$W/deep/er/bytes.bin"
ok "GET: every byte 0-255 back" cmp "$T_TMP/body" "$T_TMP/bytes"
like "GET: octet-stream with its length" "$HDRS" 'Content-Type: application/octet-stream'
like "GET: Content-Length 256" "$HDRS" 'Content-Length: 256'
api PUT "/files$W/deep/er/bytes.bin" --data-binary second
is "PUT over a file replaces it" "$(cat "$W/deep/er/bytes.bin")" second
is "no temporary file is left" "$(ls -A "$W/deep/er")" bytes.bin
mkdir -p "$T_TMP/outside"
echo keep >"$T_TMP/outside/precious"
ln -s "$T_TMP/outside" "$W/deep/link"
ln -s "$T_TMP/outside/precious" "$W/deep/flink"
api GET "/files$W/deep"
ok "list: sorted, with types (a link is a symlink)" jok 'o.path.endsWith("/deep") && o.entries.map(e => e.name + ":" + e.type).join() === "er:dir,flink:symlink,link:symlink"'
ok "list: size, mode, mtime_ms" jok 'o.entries[0].mode === 493 && o.entries[0].mtime_ms > 1600000000000 && typeof o.entries[0].size === "number"'
mkdir "$W/empty"
api GET "/files$W/empty"
ok "list: an empty folder has no entries" jok 'Array.isArray(o.entries) && o.entries.length === 0'
api GET "/files$W/deep/er/bytes.bin?stat=1"
ok "stat: type, size, mode" jok "o.type === 'file' && o.size === 6 && o.path === '$W/deep/er/bytes.bin'"
api GET "/files$W/deep/link?stat=1"
ok "stat: a link is a symlink" jok 'o.type === "symlink"'
api GET "/files$W/deep/flink"
is "GET through a link reads its target" "$BODY" keep
is "HEAD: an existing file: 200" "$(curl -s -o /dev/null -w '%{http_code}' -I --unix-socket "$SOCK" "http://init/files$W/deep/er/bytes.bin")" 200
is "HEAD: a missing one: 404" "$(curl -s -o /dev/null -w '%{http_code}' -I --unix-socket "$SOCK" "http://init/files$W/nothing")" 404
api GET "/files$W/nothing"
is "GET: missing: 404" "$CODE" 404
ok "GET: code not_found" jok 'o.error.code === "not_found"'
api POST "/files$W/made/a/b/c?op=mkdir"
is "mkdir -p: 201" "$CODE" 201
ok "mkdir -p: made" test -d "$W/made/a/b/c"
api POST "/files$W/made/a/b/c?op=mkdir"
is "mkdir -p of an existing folder: 201" "$CODE" 201
api POST "/files$W/deep/er/bytes.bin?op=mkdir"
is "mkdir over a file: 409" "$CODE" 409
api POST "/files$W/deep/er/bytes.bin?op=move&to=$W/made/moved.bin"
is "move: 200" "$CODE" 200
ok "move: the path is the new one" jok "o.path === '$W/made/moved.bin'"
ok "move: moved" test -f "$W/made/moved.bin" -a ! -e "$W/deep/er/bytes.bin"
api POST "/files$W/nothing?op=move&to=$W/x"
is "move of a missing file: 404" "$CODE" 404
api POST "/files$W/made?op=frobnicate"
is "an unknown op: 400" "$CODE" 400
api DELETE "/files$W/made/moved.bin"
is "DELETE a file: 200" "$CODE" 200
ok "DELETE: gone" test ! -e "$W/made/moved.bin"
api DELETE "/files$W/made"
is "DELETE of a folder with things in it: 409" "$CODE" 409
api DELETE "/files$W/made?recursive=1"
is "DELETE ?recursive=1: 200" "$CODE" 200
ok "DELETE ?recursive=1: gone" test ! -e "$W/made"
api DELETE "/files$W/deep/link"
is "DELETE a symlink: 200" "$CODE" 200
ok "DELETE a symlink removes the link" test ! -L "$W/deep/link"
ok "and not its target" test -f "$T_TMP/outside/precious"
ln -s "$T_TMP/outside" "$W/deep/er/link2"
api DELETE "/files$W/deep?recursive=1"
is "DELETE a tree with links out of it: 200" "$CODE" 200
ok "the tree is gone" test ! -e "$W/deep"
ok "what the links pointed at is untouched" test -f "$T_TMP/outside/precious"
api GET "/files$W/a%00b"
is "NUL in a path: 400" "$CODE" 400
api PUT "/files$W/chunked" -H 'Transfer-Encoding: chunked' --data-binary @"$T_TMP/bytes"
is "a body without Content-Length: 411" "$CODE" 411
ok "411: code length_required" jok 'o.error.code === "length_required"'
head -c 3000000 /dev/zero >"$T_TMP/big"
api PUT "/files$W/big" --data-binary @"$T_TMP/big"
is "a file over --max-file-mb: 413" "$CODE" 413
ok "413: nothing written" test ! -e "$W/big"
head -c 1500000 /dev/urandom >"$T_TMP/mid"
t0=$(date +%s%N)
api PUT "/files$W/mid" -T "$T_TMP/mid"
t1=$(date +%s%N)
is "a 1.5 MB upload (Expect: 100-continue): 201" "$CODE" 201
ok "and the same bytes" cmp "$W/mid" "$T_TMP/mid"
ok "100-continue answered, not waited out (< 900 ms)" test $(((t1 - t0) / 1000000)) -lt 900
api GET "/files$W/mid"
ok "GET of 1.5 MB back" cmp "$T_TMP/body" "$T_TMP/mid"

# --- malformed requests --------------------------------------------------
exec_json '{"cmd":'
is "bad JSON: 400" "$CODE" 400
ok "bad JSON: code bad_request" jok 'o.error.code === "bad_request"'
exec_json '{"cwd":"/"}'
is "missing cmd: 400" "$CODE" 400
exec_json '{"cmd":[]}'
is "empty cmd: 400" "$CODE" 400
exec_json '{"cmd":["echo",1]}'
is "cmd with a number: 400" "$CODE" 400
exec_json '["echo"]'
is "a body that is not an object: 400" "$CODE" 400
api POST /exec
is "POST /exec without a body: 411" "$CODE" 411
head -c 1100000 /dev/zero | tr '\0' ' ' >"$T_TMP/bigjson"
api POST /exec --data-binary @"$T_TMP/bigjson"
is "a JSON body over 1 MiB: 413" "$CODE" 413
api GET /nowhere
is "unknown path: 404" "$CODE" 404
api GET /exec
is "wrong method: 405" "$CODE" 405
ok "405: code method_not_allowed" jok 'o.error.code === "method_not_allowed"'
api PATCH /health
is "an unknown method: 405" "$CODE" 405
api GET /health -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' a)"
is "a head over 16 KiB: 431" "$CODE" 431
if [ -n "$have_py" ]; then
	like "a garbage request line: 400" "$(raw $'GARBAGE\r\n\r\n')" '^HTTP/1.1 400 '
	like "HTTP/2 is not spoken: 400" "$(raw $'GET /health HTTP/2.0\r\n\r\n')" '^HTTP/1.1 400 '
	like "a folded header: 400" "$(raw $'GET /health HTTP/1.1\r\nA: b\r\n c\r\n\r\n')" '^HTTP/1.1 400 '
	like "two Content-Lengths that differ: 400" \
	    "$(raw $'POST /exec HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}')" '^HTTP/1.1 400 '
	like "a PUT without Content-Length: 411" "$(raw $'PUT /files/tmp/x HTTP/1.1\r\n\r\n')" '^HTTP/1.1 411 '
	wait "$SLOW"
	like "a request that never ends its head is cut off (408 at 30 s)" \
	    "$(cat "$T_TMP/slow")" '^HTTP/1.1 408 '
	R=$(raw $'GET /terminal HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n' | head -c 300 | tr -d '\r')
	like "WebSocket: 101 with RFC 6455's sample accept key" "$R" \
	    'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo='
else
	for t in 1 2 3 4 5 6 7; do skip "raw requests" "no python3"; done
fi
api GET /health
is "after all that, still healthy" "$CODE" 200
grep VmRSS "/proc/$MAIN_PID/status" | sed 's/^/# busy /'

# --- PID 1: a command, SIGTERM, the launcher's pipe -------------------------
S2="$T_TMP/run/two.sock"
rm -f "$S2"
"$INIT" --no-forward --control "$S2" -- sh -c 'exit 3' 2>>"$ILOG"
is "-- COMMAND: its exit status is pincer-init's" "$?" 3
"$INIT" --no-forward --control "$S2" -- sh -c 'kill -KILL $$' 2>>"$ILOG"
is "-- COMMAND killed by a signal: 128+N" "$?" 137
is "-- COMMAND has pincer-init's stdio" \
    "$("$INIT" --no-forward --control "$S2" -- sh -c 'echo to-stdout' 2>>"$ILOG")" to-stdout
"$INIT" --no-forward --control "$S2" --bogus 2>/dev/null
is "an unknown option: exit 125" "$?" 125

init_start "$S2" || diag "second pincer-init did not start"
SOCK=$S2
api GET /health
idle=$(sed -n 's/^VmRSS:[ \t]*\([0-9]*\) kB/\1/p' "/proc/$INIT_PID/status")
diag "idle pincer-init VmRSS: ${idle:-?} kB"
if [ "$(stat -c %s "$INIT")" -gt 0 ] && ! ldd "$INIT" >/dev/null 2>&1; then
	ok "idle, static pincer-init stays under 1 MB resident (${idle} kB)" test "${idle:-9999}" -le 1024
else
	skip "idle RSS" "not a static build (sanitizers)"
fi
api POST /processes -d '{"id":"bg","cmd":["sleep","300"]}'
BG=$(jnum pid)
api POST /processes -d '{"id":"deaf","cmd":["sh","-c","trap \"\" TERM; echo up; exec sleep 300"]}'
DEAF=$(jnum pid)
api POST /processes/deaf/wait -d '{"log":"up"}'
curl -sN --max-time 30 --unix-socket "$S2" http://init/exec \
    -d '{"cmd":["sh","-c","echo $$; exec sleep 300"],"stream":true}' >"$T_TMP/term" 2>/dev/null &
wait_until 5 grep -q data "$T_TMP/term"
EX=$(sed -n 's/^data: {"data":"\([0-9]*\)\\n"}/\1/p' "$T_TMP/term")
exec_json '{"cmd":["sh","-c","sleep 300 & echo $!"]}'
ORPHAN=$(jstr "$BODY" stdout | tr -d '\\n')
ok "before SIGTERM: its children live" alive "${BG:-1}"
t0=$(date +%s%N)
kill -TERM "$INIT_PID"
wait "$INIT_PID"
rc=$?
t1=$(date +%s%N)
is "SIGTERM: pincer-init exits 0" "$rc" 0
ok "SIGTERM: after SIGKILL at 3 s for one that ignores SIGTERM" test $(((t1 - t0) / 1000000)) -ge 2500 -a $(((t1 - t0) / 1000000)) -lt 6000
ok "SIGTERM: the background process is gone" wait_until 3 gone "${BG:-1}"
ok "SIGTERM: the one that ignored SIGTERM is gone" wait_until 3 gone "${DEAF:-1}"
ok "SIGTERM: the streamed exec is gone" wait_until 3 gone "${EX:-1}"
ok "SIGTERM: what an exec left running is gone" wait_until 3 gone "${ORPHAN:-1}"

init_start "$S2"
api POST /processes -d '{"id":"bg","cmd":["sleep","300"]}'
BG=$(jnum pid)
t0=$(date +%s%N)
kill -TERM "$INIT_PID"
wait "$INIT_PID"
rc=$?
t1=$(date +%s%N)
is "SIGTERM: exit 0" "$rc" 0
ok "SIGTERM: at once when every child ends on SIGTERM" test $(((t1 - t0) / 1000000)) -lt 2000
ok "SIGTERM: its process is gone" gone "${BG:-1}"

if [ -n "$have_py" ]; then
	rm -f "$S2"
	(ulimit -n 16; exec "$INIT" --no-forward --control "$S2" 2>>"$ILOG") &
	LIM=$!
	T_PIDS="$T_PIDS $LIM"
	wait_until 5 test -S "$S2"
	cpu=$(python3 -c 'import os, socket, sys, time
def ticks():
    f = open("/proc/%s/stat" % sys.argv[2]).read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])
held = []
for i in range(24):
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); held.append(s)
time.sleep(0.3)
t0 = ticks(); time.sleep(1); t1 = ticks()
for s in held:
    s.close()
print(t1 - t0)' "$S2" "$LIM")
	ok "out of fds: it does not spin (${cpu:-?} ticks in 1 s)" test "${cpu:-999}" -lt 30
	SOCK=$S2
	wait_until 5 curl -sf --unix-socket "$S2" http://init/health
	api GET /health
	is "out of fds: it serves again once fds are free" "$CODE" 200
	kill -TERM "$LIM"
	wait "$LIM"
else
	skip "out of fds" "no python3"
	skip "out of fds" "no python3"
fi

rm -f "$S2"
"$INIT" --no-forward --control "$S2" --parent-fd 3 3< <(sleep 1.5) 2>>"$ILOG" &
PF=$!
T_PIDS="$T_PIDS $PF"
wait_until 5 test -S "$S2"
api POST /processes -d '{"id":"bg","cmd":["sleep","300"]}'
BG=$(jnum pid)
ok "--parent-fd: runs while the launcher's pipe is open" alive "$PF"
ok "--parent-fd: the pipe's hang-up ends pincer-init" wait_until 5 gone "$PF"
ok "--parent-fd: and everything it started" wait_until 3 gone "${BG:-1}"

if [ -n "$have_py" ]; then
	S3="$T_TMP/run/three.sock"
	python3 -c 'import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(8)
os.set_inheritable(s.fileno(), True)
os.execv(sys.argv[2], [sys.argv[2], "--control-fd", str(s.fileno()), "--no-forward"])' \
	    "$S3" "$INIT" 2>>"$ILOG" &
	CF=$!
	T_PIDS="$T_PIDS $CF"
	SOCK=$S3
	wait_until 5 test -S "$S3"
	api GET /health
	is "--control-fd: serves on the socket it was given" "$CODE" 200
	kill -TERM "$CF"
	wait "$CF"
else
	skip "--control-fd" "no python3"
fi

# --- inside a real sandbox ----------------------------------------------
A="$T_TMP/sandboxes/a"
mkdir -p "$A/run"
chmod 700 "$T_TMP/sandboxes"
if ! grep -q -- '--init' "$TOP_SRCDIR/sandbox/sandbox.c" || [ ! -x "$SBX" ]; then
	skip "pincer-init in a sandbox" "no pincer-sandbox --init"
elif ! "$SBX" --dir "$A" -- true 2>"$T_TMP/err"; then
	skip "pincer-init in a sandbox" "namespaces unavailable: $(cat "$T_TMP/err")"
elif ldd "$INIT" >/dev/null 2>&1; then
	skip "pincer-init in a sandbox" "not statically linked (sanitizers)"
elif [ -z "$have_py" ]; then
	skip "pincer-init in a sandbox" "no python3 for the fake gateway"
else
	# A fake gateway on the sandbox's /run/pincer/gateway.sock: it
	# answers with the request line it was sent. A socket handed over
	# (3128's clients: X-PINCER-FD and SCM_RIGHTS) is read and answered
	# instead, as pincerd does.
	python3 -c 'import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o666); s.listen(8)
while True:
    c, _ = s.accept()
    msg, fds, _, _ = socket.recv_fds(c, 4096, 4)
    if msg.startswith(b"X-PINCER-FD ") and fds:
        c.close()
        c = socket.socket(fileno=fds[0])
        msg = b""
    tag = b"saw: " if msg else b"handed: "
    req = msg
    while b"\r\n\r\n" not in req:
        b = c.recv(4096)
        if not b:
            break
        req += b
    line = req.split(b"\r\n")[0]
    c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % (len(line) + len(tag)) + tag + line)
    c.close()' "$A/run/gateway.sock" 2>>"$ILOG" &
	GW=$!
	T_PIDS="$T_PIDS $GW"
	wait_until 5 test -S "$A/run/gateway.sock"
	# As pincerd does it: the listening control socket, made outside
	# (/run/pincer is read-only inside), kept as fd 3.
	SOCK="$A/run/control.sock"
	python3 -c 'import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(64)
os.dup2(s.fileno(), 3); os.set_inheritable(3, True)
os.execv(sys.argv[2], [sys.argv[2], "--dir", sys.argv[3], "--init",
    sys.argv[4], "--keep-fd", "3", "--", "--control-fd", "3"])' \
	    "$SOCK" "$SBX" "$A" "$INIT" 2>>"$ILOG" &
	SB=$!
	T_PIDS="$T_PIDS $SB"
	wait_until 10 test -S "$SOCK"
	api GET /health
	ok "in a sandbox: pincer-init is PID 1" jok 'o.pid === 1'
	exec_json '{"cmd":["sh","-c","pwd; id -u; cat /proc/1/comm"]}'
	ok "in a sandbox: exec runs in /workspace as root" jok 'o.stdout === "/workspace\n0\npincer-init\n"'
	exec_json '{"cmd":["curl","-s","http://127.0.0.1:8080/v1/models"]}'
	ok "in a sandbox: :8080 reaches the gateway's socket" jok 'o.stdout === "saw: GET /v1/models HTTP/1.1"'
	exec_json '{"cmd":["curl","-s","http://127.0.0.1:9222/json/version"]}'
	ok "in a sandbox: :9222 too" jok 'o.stdout === "saw: GET /json/version HTTP/1.1"'
	exec_json '{"cmd":["curl","-s","-x","http://127.0.0.1:3128","http://example.com/"]}'
	ok "in a sandbox: :3128 as a proxy, the client's socket handed over" jok 'o.stdout === "handed: GET http://example.com/ HTTP/1.1"'
	exec_json '{"cmd":["/proc/1/exe","--control","/tmp/second.sock","--","echo","ran"]}'
	ok "in a sandbox: a forwarder whose port is taken is told, the rest goes on" \
	    jok 'o.stdout === "ran\n" && o.exit_code === 0 && /127.0.0.1:8080: Address already in use/.test(o.stderr) && /:3128/.test(o.stderr)'
	api PUT /files/workspace/hello.txt --data-binary 'hi there'
	ok "in a sandbox: a file written lands in the sandbox's workspace" test "$(cat "$A/workspace/hello.txt" 2>/dev/null)" = "hi there"
	rss=$(sed -n 's/^VmRSS:[ \t]*\([0-9]*\) kB/\1/p' /proc/$(pgrep -P "$SB" | head -1)/status 2>/dev/null)
	diag "in a sandbox: pincer-init VmRSS ${rss:-?} kB"
	kill -TERM "$SB"
	wait_until 10 gone "$SB"
	ok "in a sandbox: SIGTERM to the launcher ends it" gone "$SB"
	kill "$GW" 2>/dev/null
fi

kill -TERM "$MAIN_PID"
wait "$MAIN_PID"
is "the first pincer-init also ends with 0 on SIGTERM" "$?" 0
done_testing
