#!/bin/bash
# SPDX-License-Identifier: MIT
# objstore_s3_sigv4.sh: the signatures the s3 backend sends are the ones
# botocore (Debian's python3-botocore, the reference signer) computes for
# the same request. pincer objstore talks to a loopback look-alike of S3
# (s3_sigv4.py serve) that keeps every request as sent: a PUT with a body,
# a GET, a ListObjectsV2 page and the next one, whose continuation token
# holds '+', '/' and '=', and a multipart upload (?uploads=, two parts,
# complete). Each is signed again by botocore at curl's own X-Amz-Date
# with the same fixed key pair, headers and body; SignedHeaders and
# Signature must be equal, and with one byte of each body changed, none
# may be. No test hook: the time is what curl chose.
. "$TOP_SRCDIR/tests/integration/lib.sh"

PY=/usr/bin/python3	# Debian's, with python3-botocore; not PATH's
SIG="$TOP_SRCDIR/tests/integration/s3_sigv4.py"
AK=AKIDPINCERTEST0000001	# as in s3_sigv4.py
SK='pincer/Test+Secret=Key0123456789abcdefghij'

if ! "$PY" -c 'import botocore' 2>"$T_TMP/py.err"; then
	ok "python3-botocore is installed (deploy/quickstart check installs" \
	    "it)" false
	sed 's/^/# /' "$T_TMP/py.err"
	done_testing
fi
secret_register "$SK"

mkdir "$T_TMP/cap"
"$PY" "$SIG" serve "$T_TMP/cap" >"$T_TMP/port" 2>"$T_TMP/serve.err" &
T_PIDS="$T_PIDS $!"
disown
_port_up() { [ -s "$T_TMP/port" ]; }
ok "the capturing listener starts" wait_until 10 _port_up
PORT=$(cat "$T_TMP/port")

PINCER_DIR="$T_TMP/d"
PINCER_CONF="$PINCER_DIR/pincer.json"
PINCER_STATE_DIR="$PINCER_DIR/state"
pincer_config "$PINCER_DIR" "{ \"objstore\": { \"backend\": \"s3\",
  \"endpoint\": \"http://127.0.0.1:$PORT\", \"bucket\": \"pincer\",
  \"region\": \"eu-central-1\", \"list_page\": 2, \"part_mb\": 5,
  \"max_attempts\": 1, \"access_key_id\": \"sig_ak\",
  \"secret_access_key\": \"sig_sk\" } }"
mkdir -m 700 "$PINCER_STATE_DIR"
ok "the key pair is stored as secrets" eval 'printf %s "$AK" |
    pcli secret set sig_ak && printf %s "$SK" | pcli secret set sig_sk'

printf 'a fixed body for the signature check\n' >"$T_TMP/small"
# 5 MiB + 1 byte with part_mb 5: a multipart upload of two parts.
head -c 5242881 /dev/zero | tr '\0' 'p' >"$T_TMP/big"
OUT=$(pcli objstore put 'sig/hello world+=.txt' "$T_TMP/small" 2>&1)
ok "put a small object" test $? -eq 0
OUT+=$(pcli objstore get 'sig/hello world+=.txt' "$T_TMP/back" 2>&1)
ok "get it back, the same bytes" cmp "$T_TMP/small" "$T_TMP/back"
LS=$(pcli objstore ls sig/ 2>&1)
is "two list pages, entities undone" "$(cut -f1 <<<"$LS")" \
    "$(printf 'sig/a\nsig/a b\nsig/b&c <d>.txt')"
OUT+=$(pcli objstore put sig/big "$T_TMP/big" 2>&1)
ok "put a 5 MiB + 1 byte object in parts" test $? -eq 0

"$PY" "$SIG" verify "$T_TMP/cap" >"$T_TMP/verify" 2>&1
like "8 requests captured" "$(grep -c '^ok \|^not ok ' "$T_TMP/verify")" '^8$'
while IFS= read -r line; do
	case $line in
	"ok "*) _t_result 0 "botocore agrees: ${line#ok }" ;;
	"not ok "*) _t_result 1 "botocore agrees: ${line#not ok }" ;;
	*) diag "$line" ;;
	esac
done <"$T_TMP/verify"
V=$(cat "$T_TMP/verify")
CT='content-type;host;x-amz-content-sha256;x-amz-date'
TOK='continuation-token=15Gev%2BhWmBQ9%2FrHSz7UTFMaf%3D%3D'
UP='uploadId=VXBsb2Fk%2BSUQ%2Fx%3D%3D'
like "the PUT signs its content type, body hash and sha256 metadata" "$V" \
    "^ok PUT /pincer/sig/hello%20world%2B%3D.txt signed=$CT;x-amz-meta-sha256 "
like "the token is sent encoded (+ / =), the query sorted" "$V" \
    "ok GET /pincer\\?$TOK&list-type=2&max-keys=2&prefix=sig%2F "
like "a multipart upload starts with ?uploads=" "$V" \
    'ok POST /pincer/sig/big\?uploads= '
like "each part carries its own SHA-256" "$V" \
    "ok PUT /pincer/sig/big\\?partNumber=2&$UP signed=$CT content-sha256=body"
unlike "no blank Expect is signed" "$V" 'signed=[^ ]*expect'

"$PY" "$SIG" tamper "$T_TMP/cap" >"$T_TMP/tamper" 2>&1
is "with a byte changed in each body, no signature matches" \
    "$(grep -c '^not ok ' "$T_TMP/tamper")" 8
unlike "no sanitizer report in any output" "$OUT$LS" \
    'ERROR: (Address|Leak)Sanitizer|runtime error:'
not_in() { ! printf '%s' "$2" | grep -qF -- "$1"; }
ok "the secret key is in no output" not_in "$SK" "$OUT$LS"
done_testing
