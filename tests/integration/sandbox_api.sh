# SPDX-License-Identifier: MIT
# sandbox_api.sh: the public sandbox REST API (/api/v1/sandboxes/…) end to
# end, on a real pincerd with real sandboxes (pincer-sandbox + pincer-init):
# create (get-or-start), list, inspect; exec buffered and streamed;
# background processes; files; watch; stop and wake; a pincerd restart;
# destroy; who may call it (the sandbox scope and at least the admin role);
# the local socket; and `pincer sandbox …`.
. "$TOP_SRCDIR/tests/integration/lib.sh"
. "$TOP_SRCDIR/tests/integration/sandbox_lib.sh"

state_of() { api GET "/$1"; jv "$BODY" o.state; }
is_state() { [ "$(state_of "$1")" = "$2" ]; }
# sse FILE: the events of an SSE stream as a JSON array of
# {event, data} (data parsed).
sse() {
	node -e 'const t = require("fs").readFileSync(process.argv[1], "utf8");
		const out = [];
		for (const b of t.split("\n\n")) {
			let ev = "", d = "";
			for (const l of b.split("\n")) {
				if (l.startsWith("event: ")) ev = l.slice(7);
				if (l.startsWith("data: ")) d = l.slice(6);
			}
			if (ev) out.push({ event: ev, data: d ? JSON.parse(d) : null });
		}
		process.stdout.write(JSON.stringify(out))' "$1"
}
# seen TYPE PATH: the watch stream has a change event of TYPE (or any
# type, if empty) for PATH.
seen() {
	jok "$(sse "$T_TMP/watch")" "o.some(e => e.event === 'change' && e.data.path === '$2' && ('$1' === '' || e.data.type === '$1'))"
}
host_procs() { ps -eo args | grep -c "^$1\$"; }
no_host_proc() { [ "$(host_procs "$1")" = 0 ]; }
procs_are() { [ "$(host_procs "$1")" = "$2" ]; }

if [ ! -x "$TOP_BUILDDIR/pincer-init" ]; then
	ok "pincer-init is built next to pincer" false
	done_testing
fi
if ! pincer_start "{ $FAST }"; then
	ok "pincerd starts" false
	done_testing
fi
PW=$(random_token)
secret_register "$PW"
printf '%s\n' "$PW" | pcli user add alice --role owner --password-stdin >/dev/null 2>&1
is "pincer user add alice --role owner: exits 0" "$?" 0
TOK=$(pcli token create --user alice --scope sandbox --name sbx 2>/dev/null)
secret_register "$TOK"
like "a sandbox-scoped token for alice" "$TOK" '^pincer_[0-9a-f]{12}_'

# --- create, list, inspect ---------------------------------------------------
post "" '{"name":"a"}'
is "POST $SP {name: a}: 201" "$CODE" 201
is "… and it is running when that answers" "$(jv "$BODY" o.state)" running
is "… its name" "$(jv "$BODY" o.name)" a
ok "… its launcher's pid, its start count 1, its slot 0" jok "$BODY" \
    'o.pid > 1 && o.starts === 1 && o.slot === 0'
ok "… the launcher is a live child of pincerd" test \
    "$(ps -o ppid= -p "$(jv "$BODY" o.pid)" | tr -d ' ')" = "$PINCER_PID"
post "" '{"name":"a"}'
is "POST it again: 200 (get-or-start)" "$CODE" 200
is "… still start count 1" "$(jv "$BODY" o.starts)" 1
for b in '{"name":"A"}' '{"name":"../x"}' '{"name":""}' '{"name":"-a"}' \
    '{"name":"a/b"}' '{"name":"a..b"}' '{"name":"a b"}' '{"name":5}' '{}' \
    '["a"]' 'not json' "{\"name\":\"$(printf 'x%.0s' $(seq 64))\"}"; do
	post "" "$b"
	is "POST $SP ${b:0:40}: 400" "$CODE" 400
done
like "a bad name's message says what a name is" "$(jv "$BODY" o.error.message)" 'a-z'
ok "no folder was made for a bad name" test ! -e "$PINCER_STATE_DIR/sandboxes/x"
ok "… nor outside the sandboxes folder" test ! -e "$PINCER_STATE_DIR/x"

api GET ""
is "GET $SP: 200" "$CODE" 200
ok "the list has a, running" jok "$BODY" \
    'o.sandboxes.length === 1 && o.sandboxes[0].name === "a" && o.sandboxes[0].state === "running"'
ok "the list says max_running 16 and idle_sleep_s 900 (the defaults)" \
    jok "$BODY" 'o.max_running === 16 && o.idle_sleep_s === 900'
api GET /a
is "GET $SP/a: 200" "$CODE" 200
ok "… running, with pid, uptime, created_ms" jok "$BODY" \
    'o.state === "running" && o.pid > 1 && o.uptime_ms >= 0 && o.created_ms > 1600000000000'
api GET /nope
is "GET $SP/nope: 404" "$CODE:$(jv "$BODY" o.error.code)" 404:not_found
api GET /NOPE
is "GET $SP/NOPE (not a name): 404" "$CODE" 404
post /nope/exec '{"cmd":["true"]}'
is "exec in an unknown sandbox: 404" "$CODE" 404
ok "… and it was not created by that" test ! -e "$PINCER_STATE_DIR/sandboxes/nope"

# --- exec, buffered ------------------------------------------------------------
run a 'echo out; echo err >&2; exit 3'
is "exec: 200" "$CODE" 200
ok "exec: stdout, stderr and the exit code" jok "$BODY" \
    'o.stdout === "out\n" && o.stderr === "err\n" && o.exit_code === 3 && o.timed_out === false && o.truncated === false'
ok "exec: a duration" jok "$BODY" 'typeof o.duration_ms === "number" && o.duration_ms >= 0'
run a 'pwd'
is "exec: the default cwd is /workspace" "$OUT" /workspace
post /a/exec '{"cmd":["pwd"],"cwd":"/tmp"}'
is "exec with cwd /tmp" "$(jv "$BODY" o.stdout)" /tmp
run a 'echo "$K|$HOME|$LANG|$(id -u)"' '"env":{"K":"v a\"l"}'
is "exec: env added to HOME=/root, LANG=C.UTF-8, as the sandbox's root" "$OUT" 'v a"l|/root|C.UTF-8|0'
post /a/exec '{"cmd":["cat"],"stdin":"from stdin\n"}'
is "exec: stdin" "$(jv "$BODY" o.stdout)" "from stdin"
post /a/exec '{"cmd":["printf","\\000\\001\\377"],"encoding":"base64"}'
is "exec: base64 output keeps bytes" "$(jv "$BODY" o.stdout)" AAH/
post /a/exec '{"cmd":["printf","a\\377b"]}'
ok "exec: utf8 output has U+FFFD for a bad byte" jok "$BODY" 'o.stdout === "a\ufffdb"'
post /a/exec '{"cmd":["sleep","30"],"timeout_ms":300}'
ok "exec: timeout_ms 300 on sleep 30: timed_out, SIGKILL (137), soon" jok "$BODY" \
    'o.timed_out === true && o.exit_code === 137 && o.signal === 9 && o.duration_ms < 5000'
run a 'kill -TERM $$'
ok "exec: a signal ends it: 128+15 and signal 15" jok "$BODY" \
    'o.exit_code === 143 && o.signal === 15'
post /a/exec '{"cmd":["no-such-program-here"]}'
is "exec of a missing program: 200" "$CODE" 200
is "… exit code 127" "$(jv "$BODY" o.exit_code)" 127
like "… the reason on stderr" "$(jv "$BODY" o.stderr)" 'no-such-program-here'
run a 'printf "#!/bin/sh\necho x\n" > /workspace/noexec.sh; chmod 644 /workspace/noexec.sh'
post /a/exec '{"cmd":["/workspace/noexec.sh"]}'
is "exec of a file that is not executable: exit code 126" "$(jv "$BODY" o.exit_code)" 126
for b in '{}' '{"cmd":"ls"}' '{"cmd":[]}' '{"cmd":[1]}' 'not json' \
    '{"cmd":["true"],"timeout_ms":0}' '{"cmd":["true"],"timeout_ms":3600001}'; do
	post /a/exec "$b"
	is "exec $b: 400" "$CODE" 400
done
run a 'head -c 5000000 /dev/zero | tr "\0" x'
ok "exec: stdout over 4 MiB is cut to 4 MiB and truncated is set" jok "$BODY" \
    'o.truncated === true && o.stdout.length === 4194304 && o.exit_code === 0'

# A client that goes away kills its exec.
curl -sS -o /dev/null -X POST -H "Authorization: Bearer $TOK" \
    -H 'Content-Type: application/json' \
    --data-binary '{"cmd":["sleep","76543"]}' "$PINCER_URL$SP/a/exec" 2>/dev/null &
CPID=$!
T_PIDS="$T_PIDS $CPID"
ok "a buffered exec of sleep 76543 runs" wait_until 5 procs_are 'sleep 76543' 1
kill "$CPID"
wait "$CPID" 2>/dev/null
ok "… its client hangs up: the command is killed" wait_until 6 no_host_proc 'sleep 76543'

# --- exec, streamed ------------------------------------------------------------
curl -sS -N -D "$T_TMP/sh" -o "$T_TMP/stream" --max-time 20 -X POST \
    -H "Authorization: Bearer $TOK" -H 'Content-Type: application/json' \
    --data-binary '{"cmd":["sh","-c","echo one; sleep 0.3; echo two >&2; sleep 0.3; echo three; exit 4"],"stream":true}' \
    "$PINCER_URL$SP/a/exec"
is "streamed exec: curl ends cleanly when the stream does" "$?" 0
like "… 200" "$(head -1 "$T_TMP/sh")" '^HTTP/1.1 200'
like "… text/event-stream" "$(tr -d '\r' <"$T_TMP/sh")" '^[Cc]ontent-[Tt]ype: text/event-stream'
EV=$(sse "$T_TMP/stream")
is "… events stdout, stderr, stdout, exit in that order" \
    "$(jv "$EV" 'o.map(e => e.event).join(" ")')" "stdout stderr stdout exit"
is "… their data" "$(jv "$EV" 'JSON.stringify(o.slice(0, 3).map(e => e.data.data))')" \
    '["one\n","two\n","three\n"]'
ok "… the exit event: code 4, not timed out" jok "$EV" \
    'o[3].data.exit_code === 4 && o[3].data.timed_out === false && o[3].data.duration_ms >= 500'
curl -sS -N -o /dev/null -X POST -H "Authorization: Bearer $TOK" \
    -H 'Content-Type: application/json' \
    --data-binary '{"cmd":["sleep","76542"],"stream":true}' "$PINCER_URL$SP/a/exec" 2>/dev/null &
CPID=$!
T_PIDS="$T_PIDS $CPID"
ok "a streamed exec of sleep 76542 runs" wait_until 5 procs_are 'sleep 76542' 1
kill "$CPID"
wait "$CPID" 2>/dev/null
ok "… its client hangs up: the command is killed" wait_until 6 no_host_proc 'sleep 76542'

# Streams that end at once (the whole answer and the close in one read)
# end cleanly too: 20 streamed execs of true.
clean=0
for i in $(seq 20); do
	curl -sS -N --max-time 10 -o "$T_TMP/st" -X POST -H "Authorization: Bearer $TOK" \
	    -H 'Content-Type: application/json' --data-binary '{"cmd":["true"],"stream":true}' \
	    "$PINCER_URL$SP/a/exec" 2>/dev/null && grep -q '^event: exit' "$T_TMP/st" && clean=$((clean + 1))
done
is "20 streamed execs of true: every stream ends cleanly with its exit event" "$clean" 20

# Several at once, each with its own answer.
for i in 1 2 3 4 5 6; do
	curl -sS --max-time 20 -o "$T_TMP/par$i" -X POST -H "Authorization: Bearer $TOK" \
	    -H 'Content-Type: application/json' \
	    --data-binary "{\"cmd\":[\"sh\",\"-c\",\"sleep 0.$i; echo $i\"]}" \
	    "$PINCER_URL$SP/a/exec" 2>/dev/null &
	PIDS="${PIDS:-} $!"
done
T_PIDS="$T_PIDS $PIDS"
wait $PIDS
PAR=""
for i in 1 2 3 4 5 6; do PAR="$PAR$(jv "$(cat "$T_TMP/par$i")" o.stdout)"; done
is "6 execs at once: each gets its own output" "$PAR" 123456
BIG=$(head -c $((2 << 20)) /dev/zero | tr '\0' a)
printf '{"cmd":["cat"],"stdin":"%s"}' "$BIG" >"$T_TMP/big.json"
unset BIG
api POST /a/exec -H 'Content-Type: application/json' --data-binary @"$T_TMP/big.json"
is "an exec body over 1 MiB: 413" "$CODE" 413

# --- background processes ---------------------------------------------------
post /a/processes '{"id":"web","cmd":["python3","-m","http.server","8123","--bind","127.0.0.1"],"cwd":"/workspace"}'
is "POST processes {id: web, python3 -m http.server 8123}: 201" "$CODE" 201
ok "… running, with a pid" jok "$BODY" 'o.id === "web" && o.status === "running" && o.pid > 1'
post /a/processes '{"id":"web","cmd":["true"]}'
is "the same id while it runs: 409" "$CODE" 409
post /a/processes '{"id":"bad id!","cmd":["true"]}'
is "an id that is not [A-Za-z0-9_.-]: 400" "$CODE" 400
post /a/processes/web/wait '{"port":8123,"timeout_ms":15000}'
is "wait for its port 8123: 200" "$CODE" 200
is "… ok" "$(jv "$BODY" o.ok)" true
run a 'curl -s http://127.0.0.1:8123/'
like "the server answers inside the sandbox" "$OUT" 'Directory listing for /'
post /a/processes/web/wait '{"log":"\"GET / HTTP","timeout_ms":5000}'
is "wait for its log line: 200" "$CODE" 200
like "… the line" "$(jv "$BODY" o.line)" '"GET / HTTP/1.1" 200'
post /a/processes/web/wait '{"log":"never-printed","timeout_ms":300}'
is "wait for a line that never comes: 408" "$CODE" 408
api GET /a/processes
ok "GET processes lists web, running, with its cmd" jok "$BODY" \
    'o.processes.some(p => p.id === "web" && p.status === "running" && p.cmd[0] === "python3" && p.exit_code === null)'
api GET /a/processes/web
is "GET processes/web: 200" "$CODE" 200
api GET /a/processes/nope
is "GET processes/nope: 404" "$CODE" 404
api GET /a/processes/web/logs
is "GET processes/web/logs: 200" "$CODE" 200
like "… its stderr has the request log" "$(jv "$BODY" o.stderr)" '"GET / HTTP/1.1" 200'
api DELETE /a/processes/web
is "DELETE processes/web: 200" "$CODE" 200
ok "… exited" jok "$BODY" 'o.id === "web" && o.status === "exited"'
run a 'curl -s -o /dev/null http://127.0.0.1:8123/; echo rc=$?'
is "the server is gone (curl: connection refused)" "$OUT" rc=7
api GET /a/processes/web
is "DELETE forgot it: 404" "$CODE" 404
post /a/processes '{"id":"short","cmd":["sh","-c","echo bye; exit 5"]}'
post /a/processes/short/wait '{"port":9,"timeout_ms":5000}'
is "wait on a process that exits first: 409" "$CODE" 409
api GET /a/processes/short
ok "… it is listed exited with code 5" jok "$BODY" \
    'o.status === "exited" && o.exit_code === 5 && o.ended_ms >= o.started_ms'
api GET /a/processes/short/logs
is "… its logs" "$(jv "$BODY" o.stdout)" bye
post /a/processes '{"id":"talk","cmd":["sh","-c","echo first; sleep 1; echo second >&2; exit 3"]}'
curl -sS -N --max-time 15 -o "$T_TMP/logs" -H "Authorization: Bearer $TOK" \
    "$PINCER_URL$SP/a/processes/talk/logs?stream=1"
is "logs ?stream=1: ends when the process does" "$?" 0
EV=$(sse "$T_TMP/logs")
is "… stdout, stderr, then exit" "$(jv "$EV" 'o.map(e => e.event).join(" ")')" "stdout stderr exit"
ok "… the lines, and exit code 3" jok "$EV" \
    'o[0].data.data === "first\n" && o[1].data.data === "second\n" && o[2].data.exit_code === 3'

# --- files ---------------------------------------------------------------------
printf "$(printf '\\%03o' $(seq 0 255))" >"$T_TMP/bytes"
is "(256 bytes to send)" "$(wc -c <"$T_TMP/bytes")" 256
api PUT /a/files/workspace/bin.dat --data-binary @"$T_TMP/bytes" \
    -H 'Content-Type: application/octet-stream'
is "PUT files/workspace/bin.dat (bytes 0..255): 201" "$CODE" 201
ok "… path and size" jok "$BODY" 'o.path === "/workspace/bin.dat" && o.size === 256'
curl -sS -o "$T_TMP/back" -H "Authorization: Bearer $TOK" "$PINCER_URL$SP/a/files/workspace/bin.dat"
ok "GET it back: the same 256 bytes" cmp "$T_TMP/bytes" "$T_TMP/back"
api GET /a/files/workspace/bin.dat
like "… as application/octet-stream" "$HDRS" '^[Cc]ontent-[Tt]ype: application/octet-stream$'
like "… with its Content-Length" "$HDRS" '^[Cc]ontent-[Ll]ength: 256$'
run a 'od -An -tx1 /workspace/bin.dat | tr -d " \n" | md5sum | cut -c1-32'
is "inside, the file has the same bytes" "$OUT" \
    "$(od -An -tx1 "$T_TMP/bytes" | tr -d ' \n' | md5sum | cut -c1-32)"
api PUT /a/files/workspace/deep/er/f.txt --data-binary 'hello'
is "PUT into folders that do not exist: 201 (made)" "$CODE" 201
api PUT "/a/files/workspace/a%20b%25c%3Fd.txt" --data-binary 'odd'
is "PUT a name with a space, % and ?: 201" "$CODE" 201
run a 'cat "/workspace/a b%c?d.txt"'
is "… the name reaches the sandbox intact" "$OUT" odd
api PUT "/a/files/workspace/nul%00.txt" --data-binary 'n'
is "PUT a name holding %00 (NUL): 400" "$CODE" 400
api HEAD /a/files/workspace/nul -I
is "… and nothing is written under the name cut at the NUL" "$CODE" 404
api GET /a/files/workspace
is "GET a folder: 200" "$CODE" 200
ok "… its entries, sorted by name, with types and sizes" jok "$BODY" \
    'o.path === "/workspace" && JSON.stringify(o.entries.map(e => e.name)) === JSON.stringify(["a b%c?d.txt","bin.dat","deep","noexec.sh"]) && o.entries[1].type === "file" && o.entries[1].size === 256 && o.entries[2].type === "dir" && o.entries[1].mtime_ms > 0'
api GET '/a/files/workspace/bin.dat?stat=1'
ok "?stat=1: type file, size 256, a mode" jok "$BODY" \
    'o.path === "/workspace/bin.dat" && o.type === "file" && o.size === 256 && typeof o.mode === "number" && !("entries" in o)'
api GET '/a/files/workspace/deep?stat=1'
is "?stat=1 of a folder: dir" "$(jv "$BODY" o.type)" dir
api HEAD /a/files/workspace/bin.dat -I
is "HEAD of a file that exists: 200" "$CODE" 200
api HEAD /a/files/workspace/missing -I
is "HEAD of one that does not: 404" "$CODE" 404
api GET /a/files/workspace/missing
is "GET of one that does not: 404 not_found" "$CODE:$(jv "$BODY" o.error.code)" 404:not_found
api POST '/a/files/workspace/newdir/sub?op=mkdir'
is "POST ?op=mkdir (two levels): 201" "$CODE" 201
is "… its path" "$(jv "$BODY" o.path)" /workspace/newdir/sub
api GET '/a/files/workspace/newdir/sub?stat=1'
is "… it is a folder" "$(jv "$BODY" o.type)" dir
api POST '/a/files/workspace/bin.dat?op=move&to=/workspace/newdir/moved.dat'
is "POST ?op=move&to=…: 200" "$CODE" 200
is "… the new path" "$(jv "$BODY" o.path)" /workspace/newdir/moved.dat
api HEAD /a/files/workspace/bin.dat -I
is "… the old name is gone" "$CODE" 404
api POST "/a/files/workspace/a%20b%25c%3Fd.txt?op=move&to=/workspace/x%20%26y%3D1%23"
is "move to a name holding a space, &, = and #: 200" "$CODE:$(jv "$BODY" o.path)" '200:/workspace/x &y=1#'
run a 'cat "/workspace/x &y=1#"'
is "… it arrives as named" "$OUT" odd
api POST "/a/files/workspace/x%20%26y%3D1%23?op=move&to=/workspace/a%20b%25c%3Fd.txt"
api PUT /a/files/workspace/cross --data-binary 'across'
api POST '/a/files/workspace/cross?op=move&to=/data/cross'
is "move /workspace → /data: 200" "$CODE" 200
api POST '/a/files/data/cross?op=move&to=/tmp/cross'
is "move /data → /tmp (another file system): 200" "$CODE" 200
run a 'cat /tmp/cross; test -e /data/cross && echo still-there'
is "… the file is in /tmp, and only there" "$OUT" across
run a 'ls -l /proc/1/fd | grep -c "(deleted)"'
is "pincer-init holds no deleted file open after the moves" "$OUT" 0
curl -sS -o "$T_TMP/back2" -H "Authorization: Bearer $TOK" "$PINCER_URL$SP/a/files/workspace/newdir/moved.dat"
ok "… the new one has the bytes" cmp "$T_TMP/bytes" "$T_TMP/back2"
api DELETE /a/files/workspace/newdir/moved.dat
is "DELETE a file: 200" "$CODE" 200
api HEAD /a/files/workspace/newdir/moved.dat -I
is "… it is gone" "$CODE" 404
api DELETE /a/files/workspace/deep
like "DELETE a folder that is not empty: refused (4xx)" "$CODE" '^4[0-9][0-9]$'
api HEAD /a/files/workspace/deep/er/f.txt -I
is "… and nothing in it went" "$CODE" 200
api DELETE '/a/files/workspace/deep?recursive=1'
is "DELETE ?recursive=1: 200" "$CODE" 200
api HEAD /a/files/workspace/deep -I
is "… the tree is gone" "$CODE" 404
api DELETE /a/files/workspace/newdir/sub
is "DELETE an empty folder: 200" "$CODE" 200

# The route's limit is 64 MiB: one byte more is refused by pincerd.
head -c $((64 << 20)) /dev/zero | tr '\0' 'z' >"$T_TMP/max"
api PUT /a/files/workspace/max.bin --data-binary @"$T_TMP/max" --max-time 60
is "PUT of exactly 64 MiB: 201" "$CODE" 201
is "… size 67108864" "$(jv "$BODY" o.size)" 67108864
run a 'wc -c < /workspace/max.bin'
is "… all of it is in the sandbox" "$OUT" 67108864
curl -sS --max-time 60 -o "$T_TMP/max.back" -H "Authorization: Bearer $TOK" \
    "$PINCER_URL$SP/a/files/workspace/max.bin"
ok "GET of the 64 MiB file back through the relay: the same bytes" cmp "$T_TMP/max" "$T_TMP/max.back"
rm -f "$T_TMP/max.back"
# Answers larger than the relay's buffer (256 KiB), ten times: whether the
# first read fills the buffer depends on timing.
head -c $((1 << 20)) "$T_TMP/max" >"$T_TMP/1m"
api PUT /a/files/workspace/1m --data-binary @"$T_TMP/1m"
same=0
for i in $(seq 10); do
	curl -sS --max-time 10 -o "$T_TMP/1m.back" -H "Authorization: Bearer $TOK" \
	    "$PINCER_URL$SP/a/files/workspace/1m"
	cmp -s "$T_TMP/1m" "$T_TMP/1m.back" && same=$((same + 1))
done
is "GET of a 1 MiB file, 10 times: the same bytes every time" "$same" 10
run a 'rm /workspace/max.bin'
printf 'z' >>"$T_TMP/max"
api PUT /a/files/workspace/big.bin --data-binary @"$T_TMP/max" --max-time 60
is "PUT of 64 MiB + 1 byte: 413" "$CODE" 413
rm -f "$T_TMP/max"
api HEAD /a/files/workspace/big.bin -I
is "… nothing was written" "$CODE" 404

# --- watch -------------------------------------------------------------------------
curl -sS -N -o "$T_TMP/watch" -H "Authorization: Bearer $TOK" \
    "$PINCER_URL$SP/a/watch?path=/workspace" 2>/dev/null &
WPID=$!
T_PIDS="$T_PIDS $WPID"
ok "watch: the ready event comes first" wait_until 5 grep -q '^event: ready' "$T_TMP/watch"
api PUT /a/files/workspace/watched.txt --data-binary 'w'
ok "watch: a change event for a file PUT through the API" wait_until 5 seen '' /workspace/watched.txt
run a 'mkdir /workspace/wd; touch /workspace/wd/inner'
ok "watch: a change in a folder made later (recursive)" wait_until 5 seen create /workspace/wd/inner
api DELETE /a/files/workspace/watched.txt
ok "watch: a delete event" wait_until 5 seen delete /workspace/watched.txt
ok "watch: the first event is ready, for /workspace" jok "$(sse "$T_TMP/watch")" \
    'o[0].event === "ready" && o[0].data.path === "/workspace"'
kill "$WPID" 2>/dev/null
wait "$WPID" 2>/dev/null

# --- stop and wake -------------------------------------------------------------
run a 'echo kept-w > /workspace/persist.txt; echo kept-d > /data/persist.txt; echo tmp > /tmp/gone.txt'
post /a/processes '{"id":"marker","cmd":["sleep","65432"]}'
is "a background sleep 65432: 201" "$CODE" 201
is "… it runs on the host (as the sandbox's uid)" "$(host_procs 'sleep 65432')" 1
api POST /a/stop
is "POST $SP/a/stop: 200" "$CODE" 200
is "… sleeping when it answers" "$(jv "$BODY" o.state)" sleeping
ok "… no pid, no pids, no memory while asleep" jok "$BODY" \
    '!("pid" in o) && !("pids" in o) && !("memory_bytes" in o)'
is "… its processes are gone" "$(host_procs 'sleep 65432')" 0
ok "… its sockets are gone from run/" test ! -e "$PINCER_STATE_DIR/sandboxes/a/run/control.sock"
api POST /a/stop
is "stop again: 200 (already asleep)" "$CODE" 200
api POST /nope/stop
is "stop an unknown sandbox: 404" "$CODE" 404
run a 'cat /workspace/persist.txt /data/persist.txt; test -e /tmp/gone.txt && echo tmp-kept'
is "the next exec wakes it: /workspace and /data kept, /tmp fresh" "$OUT" "kept-w
kept-d"
api GET /a
ok "… running again, start count 2" jok "$BODY" 'o.state === "running" && o.starts === 2'
api GET /a/processes
ok "… no process of its last run is listed" jok "$BODY" 'o.processes.length === 0'

# --- pincerd restart -------------------------------------------------------------
post /a/processes '{"id":"marker","cmd":["sleep","65431"]}'
pincer_stop
is "pincerd stops (exit 0) with a sandbox running" "$PINCER_EXIT" 0
is "… and the sandbox's processes end with it" "$(host_procs 'sleep 65431')" 0
RESTARTS=0
restart() {
	RESTARTS=$((RESTARTS + 1))
	PINCER_LOG="$T_LOGDIR/$T_NAME.restart$RESTARTS.pincerd.log"
	: >"$PINCER_LOG"
	"$PINCER_BIN" serve --config "$PINCER_CONF" --state "$PINCER_STATE_DIR" \
	    --listen 127.0.0.1:0 2>>"$PINCER_LOG" &
	PINCER_PID=$!
	T_PIDS="$T_PIDS $PINCER_PID"
	wait_log 'msg=listening' 10 || return 1
	PINCER_ADDR=$(sed -n 's/.*msg=listening addr=\([^ ]*\).*/\1/p' "$PINCER_LOG" | head -1)
	PINCER_URL="http://$PINCER_ADDR"
	wait_until 10 curl -fsS -o /dev/null "$PINCER_URL/readyz"
}
if ! restart; then
	ok "pincerd restarts on the same state folder" false
	done_testing
fi
api GET ""
ok "after a restart the list has a, sleeping" jok "$BODY" \
    'o.sandboxes.length === 1 && o.sandboxes[0].name === "a" && o.sandboxes[0].state === "sleeping" && o.sandboxes[0].starts === 2'
run a 'cat /workspace/persist.txt /data/persist.txt'
is "exec after the restart works, files intact" "$OUT" "kept-w
kept-d"

# --- a stop while an exec runs; a launcher that dies; PID 1 from inside ----------
curl -sS --max-time 30 -o "$T_TMP/inflight" -w '%{http_code}' -X POST \
    -H "Authorization: Bearer $TOK" -H 'Content-Type: application/json' \
    --data-binary '{"cmd":["sleep","76541"]}' "$PINCER_URL$SP/a/exec" >"$T_TMP/inflight.code" 2>/dev/null &
CPID=$!
T_PIDS="$T_PIDS $CPID"
ok "an exec of sleep 76541 runs" wait_until 5 procs_are 'sleep 76541' 1
T0=$(date +%s)
api POST /a/stop
is "POST stop while it runs: 200, sleeping" "$CODE:$(jv "$BODY" o.state)" 200:sleeping
wait "$CPID"
ok "… the exec's client gets an answer, not a hang ($(cat "$T_TMP/inflight.code"))" \
    test "$(($(date +%s) - T0))" -lt 15 -a -s "$T_TMP/inflight.code"
is "… and the sleep is gone" "$(host_procs 'sleep 76541')" 0
run a 'kill -KILL 1; echo still'
is "inside, kill -KILL 1 does not end pincer-init" "$OUT" still
run a 'kill -TERM 1; kill -INT 1; sleep 1; echo still'
is "inside, kill -TERM 1 does not stop the sandbox (only the gateway does)" "$OUT" still
run a 'echo up'
is "… and the next exec runs in the same sandbox" "$OUT" up
api GET /a
LPID=$(jv "$BODY" o.pid)
kill -KILL "$LPID"
ok "the launcher killed on the host (SIGKILL): a goes to sleep" wait_until 10 is_state a sleeping
api GET /a
like "… and its info says what happened" "$(jv "$BODY" o.last_error)" '.'
run a 'echo back'
is "… the next exec starts it again" "$OUT" back

# --- a 63-character name: its socket paths are too long to bind directly ---------
LONG=$(printf 'l%.0s' $(seq 63))
post "" "{\"name\":\"$LONG\"}"
is "a 63-character name: 201" "$CODE" 201
run "$LONG" 'echo $(hostname)'
is "… exec in it works" "$OUT" "$LONG"
run "$LONG" 'curl -s http://127.0.0.1:8080/api/v1/me'
is "… its 127.0.0.1:8080 reaches the gateway as itself" "$(jv "$OUT" o.name)" "$LONG"
api DELETE "/$LONG"
is "… DELETE it: 200" "$CODE" 200

# --- destroy -------------------------------------------------------------------------
api DELETE /a
is "DELETE $SP/a: 200" "$CODE" 200
ok "… destroyed" jok "$BODY" 'o.name === "a" && o.destroyed === true'
api GET ""
ok "… gone from the list" jok "$BODY" 'o.sandboxes.length === 0'
ok "… its folder is removed" test ! -e "$PINCER_STATE_DIR/sandboxes/a"
api GET /a
is "… GET it: 404" "$CODE" 404
api DELETE /a
is "… DELETE it again: 404" "$CODE" 404
post "" '{"name":"a"}'
is "a new a: 201" "$CODE" 201
run a 'test -e /workspace/persist.txt || echo fresh'
is "… it starts empty" "$OUT" fresh

# --- who may call ----------------------------------------------------------------
req GET "$SP"
is "no credential: 401" "$CODE" 401
req POST "$SP/a/exec" -H 'Content-Type: application/json' --data-binary '{"cmd":["true"]}'
is "no credential, exec: 401" "$CODE" 401
RTOK=$(pcli token create --user alice --scope read,llm --name noscope 2>/dev/null)
secret_register "$RTOK"
req GET "$SP" -H "Authorization: Bearer $RTOK"
is "the owner's token without the sandbox scope: 403" "$CODE:$(jv "$BODY" o.error.code)" 403:forbidden
req POST "$SP/a/exec" -H "Authorization: Bearer $RTOK" -H 'Content-Type: application/json' \
    --data-binary '{"cmd":["true"]}'
is "… exec: 403" "$CODE" 403
MPW=$(random_token)
secret_register "$MPW"
printf '%s\n' "$MPW" | pcli user add bob --role member --password-stdin >/dev/null 2>&1
MTOK=$(pcli token create --user bob --scope sandbox --name m 2>/dev/null)
secret_register "$MTOK"
like "the CLI gives a member a sandbox-scoped token" "$MTOK" '^pincer_'
req GET "$SP" -H "Authorization: Bearer $MTOK"
is "… but a member may not use sandboxes: 403" "$CODE" 403
req POST "$SP/a/exec" -H "Authorization: Bearer $MTOK" -H 'Content-Type: application/json' \
    --data-binary '{"cmd":["true"]}'
is "… exec: 403" "$CODE" 403
req GET "$SP/a/files/workspace" -H "Authorization: Bearer $MTOK"
is "… files: 403" "$CODE" 403
printf '%s\n' "$MPW" | pcli user add carol --role admin --password-stdin >/dev/null 2>&1
ATOK=$(pcli token create --user carol --scope sandbox --name adm 2>/dev/null)
secret_register "$ATOK"
req GET "$SP" -H "Authorization: Bearer $ATOK"
is "an admin's sandbox token: 200" "$CODE" 200

# --- the local socket: the host account running pincerd, no token --------------------
ok "pincerd.sock is 0600" test "$(stat -c %a "$PINCER_STATE_DIR/pincerd.sock")" = 600
L=$(curl -sS --unix-socket "$PINCER_STATE_DIR/pincerd.sock" -w '\n%{http_code}' http://x/api/v1/sandboxes)
is "GET $SP on pincerd.sock, no token: 200" "${L##*$'\n'}" 200
ok "… the list" jok "${L%$'\n'*}" 'o.sandboxes.some(s => s.name === "a")'
L=$(curl -sS --unix-socket "$PINCER_STATE_DIR/pincerd.sock" http://x/api/v1/me)
ok "… it is the owner, as local" jok "$L" 'o.role === "owner" && o.auth === "local"'

# --- the CLI -------------------------------------------------------------------------
pcli sandbox list >"$T_TMP/out" 2>"$T_TMP/err"
is "pincer sandbox list: exits 0" "$?" 0
like "… a header" "$(head -1 "$T_TMP/out")" '^NAME +STATE'
like "… a, running" "$(cat "$T_TMP/out")" '^a +running +[0-9]+ +[0-9.]+ +[0-9]+$'
pcli sandbox exec a -- sh -c 'echo out; echo err >&2; exit 7' >"$T_TMP/out" 2>"$T_TMP/err"
is "pincer sandbox exec a -- sh -c '…exit 7': exits 7" "$?" 7
is "… stdout" "$(cat "$T_TMP/out")" out
is "… stderr" "$(cat "$T_TMP/err")" err
is "pincer sandbox exec: bytes 00 01 ff round-trip" \
    "$(pcli sandbox exec a -- printf '\000\001\377' | od -An -tx1 | tr -d ' ')" 0001ff
run a 'head -c 300000 /dev/urandom > /workspace/rnd; md5sum < /workspace/rnd | cut -c1-32'
is "pincer sandbox exec: 300 kB of random bytes arrive intact" \
    "$(pcli sandbox exec a -- cat /workspace/rnd | md5sum | cut -c1-32)" "$OUT"
is "pincer sandbox exec --cwd --env" \
    "$(pcli sandbox exec a --cwd /tmp --env K=V -- sh -c 'echo $PWD $K')" "/tmp V"
pcli sandbox exec nope -- true >"$T_TMP/out" 2>"$T_TMP/err"
is "pincer sandbox exec in an unknown sandbox: exits 1" "$?" 1
like "… and says so" "$(cat "$T_TMP/err")" 'no such sandbox.*404'
pcli sandbox create c >"$T_TMP/out" 2>"$T_TMP/err"
is "pincer sandbox create c: exits 0" "$?" 0
is "… c is running" "$(state_of c)" running
pcli sandbox stop a >"$T_TMP/out" 2>"$T_TMP/err"
is "pincer sandbox stop a: exits 0" "$?" 0
is "… a is sleeping" "$(state_of a)" sleeping
pcli sandbox rm a >"$T_TMP/out" 2>"$T_TMP/err"
is "pincer sandbox rm a: exits 0" "$?" 0
api GET /a
is "… a is gone" "$CODE" 404
ok "… and its folder" test ! -e "$PINCER_STATE_DIR/sandboxes/a"
pcli sandbox rm a >/dev/null 2>"$T_TMP/err"
is "pincer sandbox rm of a missing sandbox: exits 1" "$?" 1
pcli sandbox rm 'A/..' >/dev/null 2>&1
is "pincer sandbox rm 'A/..': exits 2 (not a name)" "$?" 2

pincer_stop
is "pincerd exits 0" "$PINCER_EXIT" 0
pcli sandbox list >/dev/null 2>"$T_TMP/err"
is "pincer sandbox list with pincerd stopped: exits 1" "$?" 1
like "… and says pincerd cannot be reached" "$(cat "$T_TMP/err")" 'cannot reach pincerd at .*pincerd\.sock.*is it running'
for t in "$TOK" "$RTOK" "$MTOK" "$ATOK"; do
	ok "a token (${t:0:12}…) is not in the daemon logs" test -z \
	    "$(grep -F -- "${t#pincer_*_}" "$T_LOGDIR/$T_NAME".*.log)"
done

done_testing
