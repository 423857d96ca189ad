#!/bin/bash
# SPDX-License-Identifier: MIT
# sigterm_drain.sh: SIGTERM and SIGINT stop accepting at once, let requests
# in flight finish for up to http.shutdown_timeout_s, cut off the rest, and
# exit 0; an idle keep-alive connection does not hold the exit up.
. "$TOP_SRCDIR/tests/integration/lib.sh"

UI="$T_TMP/ui"
mkdir -p "$UI"
head -c 8388608 /dev/urandom >"$UI/big.bin"

conf() {
	printf '{ "admin_ui": { "dir": "%s" }, "http": { "shutdown_timeout_s": %s } }\n' \
	    "$UI" "$1"
}
# A new connection is refused (curl exit 7), not answered.
refused() {
	curl -s -o /dev/null --max-time 1 "$PINCER_URL/healthz"
	[ $? -eq 7 ]
}
gone() { ! kill -0 "$PINCER_PID" 2>/dev/null; }
ms() { echo $(($(date +%s%N) / 1000000)); }
# Wait for pincerd to exit by itself (no second signal); PINCER_EXIT.
wait_exit() {
	wait_until "$1" gone
	if ! gone; then
		diag "pincerd still running after ${1}s"
		kill -KILL "$PINCER_PID"
	fi
	wait "$PINCER_PID" 2>/dev/null
	PINCER_EXIT=$?
}
# The slow client. curl's --limit-rate is no good here: curl 7.88 reads the
# first ~4 MB at full speed and sleeps afterwards, and the kernel's socket
# buffers take the rest of an 8 MB file, so the request would be over on
# the server before SIGTERM. This client reads at RATE bytes/s from the
# start (paused, it stops reading the socket, so pincerd stays blocked on
# a full socket); SIGUSR1 lifts the limit. Exit 0 only when the whole body
# arrived (Content-Length), 18 for a cut-off body (as curl), 124 after 30 s,
# 1 otherwise.
cat >"$T_TMP/slowget.js" <<'EOF_JS'
const http = require("http"), fs = require("fs");
const [url, out, rate] = [process.argv[2], process.argv[3], +process.argv[4]];
const fd = fs.openSync(out, "w");
let got = 0, fast = false;
const t0 = Date.now();
process.on("SIGUSR1", () => { fast = true; });
setTimeout(() => process.exit(124), 30000).unref();	/* never hang */
const req = http.get(url, { agent: false }, (res) => {
	const want = +res.headers["content-length"];
	const pace = () => {
		const ahead = got / rate * 1000 - (Date.now() - t0);
		if (!fast && ahead > 0) {
			res.pause();
			setTimeout(pace, Math.min(ahead, 50));
		} else
			res.resume();
	};
	res.on("data", (b) => { fs.writeSync(fd, b); got += b.length; pace(); });
	res.on("end", () => process.exit(res.complete && got === want ? 0 : 18));
	res.on("error", () => process.exit(18));
	res.on("aborted", () => process.exit(18));
	if (res.statusCode !== 200)
		process.exit(1);
});
req.on("error", () => process.exit(got > 0 ? 18 : 1));
EOF_JS
# Start a download of big.bin at RATE bytes/s into $1 and wait for its
# first bytes; CLIENT_PID.
download() {
	rm -f "$1"
	node "$T_TMP/slowget.js" "$PINCER_URL/big.bin" "$1" "$2" &
	CLIENT_PID=$!
	wait_until 5 test -s "$1"
}

# 1. TERM with a download in flight: it finishes, then pincerd exits 0.
pincer_start "$(conf 10)" || { echo "Bail out! pincerd did not start"; exit 1; }
download "$T_TMP/out1" 2097152
kill -TERM "$PINCER_PID"
ok "after SIGTERM a new connection is refused" wait_until 2 refused
wait "$CLIENT_PID"
is "the download in flight completes (client exit 0)" $? 0
ok "the whole file arrived" cmp "$UI/big.bin" "$T_TMP/out1"
wait_exit 15
is "pincerd exits 0 after the drain" "$PINCER_EXIT" 0
like "the log says it is shutting down, one request in flight" \
	"$(grep -F 'msg="shutting down"' "$PINCER_LOG")" \
	'signal=TERM in_flight=1( |$)'
ok "the log says msg=stopped" grep -Eq '(^| )msg=stopped( |$)' "$PINCER_LOG"
unlike "no shutdown timeout was needed" "$(cat "$PINCER_LOG")" \
	'shutdown timeout reached'
like "the download's request line has status 200 and a normal end" \
	"$(grep -F 'path=/big.bin' "$PINCER_LOG")" 'status=200 us=[0-9]+ ip=[^ ]+$'

# 2. shutdown_timeout_s 1 and a slow download: cut off, exit 0 in time.
pincer_start "$(conf 1)" || { echo "Bail out! pincerd did not start"; exit 1; }
download "$T_TMP/out2" 512000
T0=$(ms)
kill -TERM "$PINCER_PID"
wait_exit 10
T1=$(ms)
is "pincerd exits 0 although the download is unfinished" "$PINCER_EXIT" 0
ok "within 4 s of SIGTERM (took $((T1 - T0)) ms)" test $((T1 - T0)) -lt 4000
ok "and not before the 1 s shutdown timeout" test $((T1 - T0)) -ge 900
# Let the client take what the kernel still holds, at full speed.
kill -USR1 "$CLIENT_PID"
wait "$CLIENT_PID"
is "the client sees the body cut off (exit 18, as curl's partial file)" $? 18
SIZE=$(stat -c %s "$T_TMP/out2")
ok "the client got a partial file ($SIZE bytes)" \
	test "$SIZE" -gt 0 -a "$SIZE" -lt 8388608
like "the log says the shutdown timeout was reached" \
	"$(grep -F 'shutdown timeout reached' "$PINCER_LOG")" \
	'level=warn .*detail="1 requests cut off"'
like "the cut-off request is logged as a warning that ended in the shutdown" \
	"$(grep -F 'path=/big.bin' "$PINCER_LOG")" '^ts=[^ ]+ level=warn .* end=shutdown$'
ok "the log still says msg=stopped" grep -Eq '(^| )msg=stopped( |$)' "$PINCER_LOG"

# 3. SIGINT is a shutdown too.
pincer_start "$(conf 10)" || { echo "Bail out! pincerd did not start"; exit 1; }
kill -INT "$PINCER_PID"
wait_exit 5
is "SIGINT: pincerd exits 0" "$PINCER_EXIT" 0
like "SIGINT: the log names the signal" \
	"$(grep -F 'msg="shutting down"' "$PINCER_LOG")" 'signal=INT in_flight=0'

# 4. An idle keep-alive connection does not hold the exit up.
pincer_start "$(conf 10)" || { echo "Bail out! pincerd did not start"; exit 1; }
exec 5<>"/dev/tcp/$(pincer_host)/$(pincer_port)"
printf 'GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n' >&5
STATUS=""
read -r -t 3 STATUS <&5
while IFS= read -r -t 3 LINE <&5 && [ "$LINE" != $'\r' ]; do :; done
read -r -t 3 -N 15 BODY <&5
like "the keep-alive connection got its answer" "$STATUS $BODY" \
	'^HTTP/1.1 200 .*\{"status":"ok"\}$'
T0=$(ms)
kill -TERM "$PINCER_PID"
wait_exit 10
T1=$(ms)
is "with an idle keep-alive connection pincerd exits 0" "$PINCER_EXIT" 0
like "an idle connection is not a request in flight" \
	"$(grep -F 'msg="shutting down"' "$PINCER_LOG")" 'signal=TERM in_flight=0'
unlike "and no shutdown timeout" "$(cat "$PINCER_LOG")" 'shutdown timeout'
ok "promptly (took $((T1 - T0)) ms, under 3 s)" test $((T1 - T0)) -lt 3000
REST=$(timeout 2 cat <&5; echo "rc=$?")
is "the idle connection was closed by pincerd (EOF, nothing more)" "$REST" rc=0
exec 5<&-

done_testing
