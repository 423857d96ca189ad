#!/bin/bash
# SPDX-License-Identifier: MIT
# objstore_s3.sh: the s3 backend against s3rver (a local S3), driven with
# pincer objstore, through a proxy that fails requests on purpose
# (tests/fakes/s3.mjs). Without its secrets the store does not open and
# says which to set; `check` passes; keys with spaces, '+', '=' and
# unicode go up and come back byte for byte, head gives their SHA-256,
# list walks pages of 2; an empty file goes and comes; missing keys exit
# 3, rm of one is fine; 100 MB goes up in 13 parts of 8 MiB while one
# part's connection is reset, another part gets two 500s and the
# completion a 503 SlowDown, and comes back with the same SHA-256; a GET
# answered SlowDown with Retry-After waits that long; a request that
# fails every time stops after objstore.max_attempts, a multipart upload
# that fails is aborted; a missing bucket is named; virtual-host style
# works; a wrong access key fails at once with S3's reason. The secret
# key is in no output and no log.
. "$TOP_SRCDIR/tests/integration/lib.sh"

if [ ! -d "$TOP_SRCDIR/tests/e2e/node_modules/s3rver" ]; then
	# `make distcheck` builds from a tarball without node_modules.
	skip "s3rver" "node_modules missing: run npm ci in tests/e2e"
	done_testing
fi

SECRET=$(random_token)	# s3rver checks the key id only, so any will do
secret_register "$SECRET"
mkdir "$T_TMP/s3data"
node --openssl-legacy-provider "$TOP_SRCDIR/tests/fakes/s3.mjs" \
    "$T_TMP/s3data" >"$T_TMP/s3.out" 2>"$T_TMP/s3.err" &
T_PIDS="$T_PIDS $!"
disown
_s3_up() { grep -q proxy "$T_TMP/s3.out"; }
ok "s3rver and the proxy start" wait_until 30 _s3_up
PROXY=$(sed -n 's/.*"proxy":\([0-9]*\).*/\1/p' "$T_TMP/s3.out")
PROXY="http://127.0.0.1:$PROXY"

PINCER_DIR="$T_TMP/d"
PINCER_CONF="$PINCER_DIR/pincer.json"
PINCER_STATE_DIR="$PINCER_DIR/state"
# conf [ENDPOINT [BUCKET [URL_STYLE]]]: write the config.
conf() {
	pincer_config "$PINCER_DIR" "{ \"objstore\": { \"backend\": \"s3\",
	  \"endpoint\": \"${1:-$PROXY}\", \"bucket\": \"${2:-pincer}\",
	  \"url_style\": \"${3:-path}\", \"list_page\": 2,
	  \"part_mb\": 8, \"max_attempts\": 5, \"retry_base_ms\": 20,
	  \"timeout_s\": 60 } }"
}
conf
mkdir -m 700 "$PINCER_STATE_DIR"

# os ARGS…: pincer objstore ARGS; OUT (stdout and stderr) and RC. All
# output is kept, to look for the secret in it at the end.
os() {
	OUT=$(pcli objstore "$@" 2>&1)
	RC=$?
	printf '%s\n' "$OUT" >>"$T_TMP/all.out"
}
fault() { curl -s -X POST "$PROXY/__fault" --data-binary "$1"; }
# seen PATTERN: how many requests the proxy saw whose "METHOD URL" (with
# what it did: "pass" or the fault) matches the extended regex.
seen() {
	curl -s "$PROXY/__log" | node -e '
		const log = JSON.parse(require("fs").readFileSync(0, "utf8"));
		const re = new RegExp(process.argv[1]);
		console.log(log.filter((e) => re.test(e.req + " " + e.did))
		    .length)' "$1"
}
sha() { sha256sum "$1" | cut -d' ' -f1; }

os ls
is "without its secrets the store does not open (exit 1)" "$RC" 1
like "and says which secret to set, and how" "$OUT" \
    'secret "objstore_access_key_id".*pincer secret set objstore_access_key_id'
printf S3RVER | pcli secret set objstore_access_key_id >/dev/null
printf '%s' "$SECRET" | pcli secret set objstore_secret_access_key \
    >/dev/null

os check
is "check passes" "$RC" 0
like "check says what it proved" "$OUT" "put, get, list and rm work"

# s3rver lists folder by folder, not in byte order: a key "k b/x" would
# come after "k/x", and as its continuation token is the last key given,
# be skipped. These share one folder.
KEYS=("k/a space.txt" "k/nested/deep/x" "k/plus+equals=.txt" \
    "k/ünïcødé ✓.txt" "k/zz")
i=0
for k in "${KEYS[@]}"; do
	i=$((i + 1))
	printf 'object %d: %s\n' "$i" "$k" >"$T_TMP/in$i"
	os put "$k" "$T_TMP/in$i"
	is "put \"$k\"" "$RC" 0
	os get "$k" "$T_TMP/out$i"
	ok "get \"$k\": the same bytes" cmp "$T_TMP/in$i" "$T_TMP/out$i"
	os head "$k"
	is "head \"$k\": its size and SHA-256" "$(cut -f1,2,4 <<<"$OUT")" \
	    "$k	$(stat -c %s "$T_TMP/in$i")	$(sha "$T_TMP/in$i")"
done
curl -s -X POST "$PROXY/__clear"
os ls k/
# Compared sorted: s3rver puts "k/zz" before "k/ü…" (S3 would not).
is "ls: every key once" "$(cut -f1 <<<"$OUT" | LC_ALL=C sort)" \
    "$(printf '%s\n' "${KEYS[@]}" | LC_ALL=C sort)"
is "ls: pages of 2 (objstore.list_page)" \
    "$(seen '^GET /pincer\?.*list-type=2&max-keys=2&prefix=k%2F ')" 3
is "ls: pages after the first by continuation token" \
    "$(seen '^GET /pincer\?continuation-token=[^&]+&list-type')" 2
os get "k/zz" -
is "get to stdout" "$OUT" "object 5: k/zz"

: >"$T_TMP/empty"
os put k/empty "$T_TMP/empty"
is "put an empty file" "$RC" 0
os get k/empty "$T_TMP/empty.back"
ok "get it back: empty" test -f "$T_TMP/empty.back" -a ! -s "$T_TMP/empty.back"
os rm k/empty

os head k/nothing
is "head of a missing key: exit 3" "$RC" 3
os get k/nothing "$T_TMP/none"
is "get of a missing key: exit 3" "$RC" 3
os rm "k/a space.txt"
is "rm" "$RC" 0
os head "k/a space.txt"
is "head after rm: exit 3" "$RC" 3
os rm "k/a space.txt"
is "rm of a missing key is not an error" "$RC" 0

head -c 104857600 /dev/urandom >"$T_TMP/big"
curl -s -X POST "$PROXY/__clear"
B='/pincer/big/100mb'
fault "{\"match\":\"PUT $B?partNumber=3&\",\"action\":\"reset\",\"times\":1}"
fault "{\"match\":\"PUT $B?partNumber=7&\",\"action\":\"500\",\"times\":2}"
fault "{\"match\":\"POST $B?uploadId=\",\"action\":\"slowdown\",\"times\":1}"
os put big/100mb "$T_TMP/big"
is "100 MB put through a reset, two 500s and a SlowDown" "$RC" 0
is "one multipart upload started" "$(seen "^POST $B\\?uploads= pass")" 1
is "13 parts of 8 MiB" "$(seen "^PUT $B\\?partNumber=[0-9]+&.* pass")" 13
is "part 3: reset once, sent twice" "$(seen "^PUT $B\\?partNumber=3&")" 2
is "part 7: two 500s, sent three times" \
    "$(seen "^PUT $B\\?partNumber=7&")" 3
is "16 part requests in all (every other part once)" \
    "$(seen "^PUT $B\\?partNumber=")" 16
is "completed after one SlowDown" "$(seen "^POST $B\\?uploadId=")" 2
os get big/100mb "$T_TMP/big.back"
is "get 100 MB" "$RC" 0
is "the same SHA-256 back" "$(sha "$T_TMP/big.back")" "$(sha "$T_TMP/big")"
os head big/100mb
is "head: 104857600 bytes and the SHA-256 it was put with" \
    "$(cut -f2,4 <<<"$OUT")" "104857600	$(sha "$T_TMP/big")"
rm -f "$T_TMP/big.back"

curl -s -X POST "$PROXY/__clear"
fault '{"match":"GET /pincer/k/zz","action":"slowdown","times":1,
  "retry_after":1}'
fault '{"match":"GET /pincer/k/zz","action":"reset","times":1}'
os get k/zz "$T_TMP/zz"
is "get through a SlowDown and a reset" "$(cat "$T_TMP/zz")" \
    "object 5: k/zz"
is "get: three attempts" "$(seen '^GET /pincer/k/zz')" 3
GAP=$(curl -s "$PROXY/__log" | node -e '
	const l = JSON.parse(require("fs").readFileSync(0, "utf8"));
	console.log(l[1].t - l[0].t)')
ok "the retry waited Retry-After's second (${GAP} ms)" test "$GAP" -ge 950

fault '{"match":"PUT /pincer/k/doomed","action":"500","times":99}'
os put k/doomed "$T_TMP/in1"
is "a PUT failing every time: exit 1" "$RC" 1
like "with S3's reason" "$OUT" "HTTP 500 InternalError: We encountered"
is "after objstore.max_attempts (5) tries" "$(seen '^PUT /pincer/k/doomed')" 5
head -c 9000000 /dev/urandom >"$T_TMP/nine"
fault '{"match":"PUT /pincer/k/nine?partNumber=2&","action":"500",
  "times":99}'
os put k/nine "$T_TMP/nine"
is "a multipart upload whose part fails every time: exit 1" "$RC" 1
is "the part was tried 5 times" "$(seen '^PUT /pincer/k/nine\?partNumber=2&')" 5
is "then the upload is aborted (s3rver answers 405; tolerated)" \
    "$(seen '^DELETE /pincer/k/nine\?uploadId=[0-9a-f]+ pass')" 1
rm -f "$T_TMP/nine"
curl -s -X POST "$PROXY/__clear"

conf "$PROXY" nobucket
os ls
is "a bucket that does not exist: exit 1" "$RC" 1
like "and the error names it" "$OUT" 'bucket "nobucket" does not exist'

# Virtual-host style: the bucket in the host name, not in the path.
conf "http://s3.localhost:${PROXY##*:}" pincer virtual
curl -s -X POST "$PROXY/__clear"
os put "v/a b+c.txt" "$T_TMP/in1"
is "virtual host style: put" "$RC" 0
os get "v/a b+c.txt" "$T_TMP/v.back"
ok "virtual host style: get, the same bytes" cmp "$T_TMP/in1" "$T_TMP/v.back"
os ls v/
is "virtual host style: ls" "$(cut -f1 <<<"$OUT")" "v/a b+c.txt"
os rm "v/a b+c.txt"
is "virtual host style: rm" "$RC" 0
HOSTS=$(curl -s "$PROXY/__log" | node -e '
	const l = JSON.parse(require("fs").readFileSync(0, "utf8"));
	console.log(l.map((e) => e.host + " " + e.req).join("\n"))')
like "requests go to pincer.s3.localhost, paths without the bucket" \
    "$HOSTS" "^pincer\.s3\.localhost:[0-9]+ PUT /v/a%20b%2Bc\.txt$"
like "the list goes to /?list-type=2" "$HOSTS" \
    "^pincer\.s3\.localhost:[0-9]+ GET /\?list-type=2&max-keys=2&prefix=v%2F$"
conf
curl -s -X POST "$PROXY/__clear"

WRONG="AKWRONG$(random_token | cut -c1-12)"
printf '%s' "$WRONG" | pcli secret set objstore_access_key_id >/dev/null
os ls
is "a wrong access key: exit 1" "$RC" 1
like "with S3's code and message, and what to check" "$OUT" \
    'HTTP 403 InvalidAccessKeyId: .*objstore.access_key_id'
is "a refusal is not retried" "$(seen '^GET /pincer\?')" 1

not_in() { ! grep -qF -- "$1" "$2"; }
ok "the secret key is in no output" not_in "$SECRET" "$T_TMP/all.out"
ok "the wrong key id is in no output" not_in "$WRONG" "$T_TMP/all.out"
# Under --enable-asan, a report from any pincer run fails the test.
unlike "no sanitizer report in any output" "$(cat "$T_TMP/all.out")" \
    'ERROR: (Address|Leak)Sanitizer|runtime error:'
ok "the secret key is not in s3rver's files" \
    eval "! grep -rqF -- '$SECRET' '$T_TMP/s3data' '$T_TMP/s3.err'"
done_testing
