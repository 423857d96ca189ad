# SPDX-License-Identifier: MIT
# sandbox_lib.sh: what the sandbox API tests share, sourced after lib.sh:
# the skip when namespaces are unavailable, and calls to /api/v1/sandboxes
# with the token in $TOK (each test makes its own).
unset PINCER_CONFIG PINCER_STATE PINCER_LISTEN
FAST='"auth": { "argon2_memory_kib": 1024, "argon2_iterations": 1 }'
SBX="$TOP_BUILDDIR/pincer-sandbox"
SP=/api/v1/sandboxes

if ! "$SBX" --dir "$T_TMP/probe" -- true 2>"$T_TMP/err"; then
	echo "1..0 # SKIP namespaces unavailable here: $(cat "$T_TMP/err")"
	exit 0
fi

# api METHOD PATH [CURL ARGS]: with $TOK; PATH after $SP.
api() {
	local m=$1 p=$2
	shift 2
	req "$m" "$SP$p" -H "Authorization: Bearer $TOK" "$@"
}
# post PATH JSON
post() { api POST "$1" -H 'Content-Type: application/json' --data-binary "$2"; }
# jv JSON EXPR: the value of EXPR (o is the parsed JSON); strings raw.
# The JSON goes by stdin: a body may be larger than an argument can be.
jv() {
	printf '%s' "$1" | node -e 'let o; try { o = JSON.parse(require("fs").readFileSync(0, "utf8")) } catch (e) { process.exit(1) }
		const v = eval(process.argv[1]);
		process.stdout.write(v === undefined ? "undefined" :
		    typeof v === "string" ? v : JSON.stringify(v))' "$2"
}
# jok JSON EXPR: EXPR is true (json_check, for any size).
jok() { [ "$(jv "$1" "!!($2)")" = true ]; }
# js STRING: STRING as a JSON string.
js() {
	local s=$1
	s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\t'/\\t}
	printf '"%s"' "$s"
}
# run NAME SCRIPT [MORE JSON FIELDS]: sh -c SCRIPT in NAME, buffered;
# CODE, BODY, and OUT (its stdout, trailing newlines cut).
run() {
	local extra=${3:+,$3}
	post "/$1/exec" "{\"cmd\":[\"sh\",\"-c\",$(js "$2")]$extra}"
	OUT=$(jv "$BODY" o.stdout)
}
