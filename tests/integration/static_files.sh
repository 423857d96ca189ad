#!/bin/bash
# SPDX-License-Identifier: MIT
# static_files.sh: the admin UI's files: content types, ETag/304, folders,
# security headers, JSON 404s, and no way out of admin_ui.dir (no "..", no
# dotfiles, no "//", no backslashes, no symlink leading outside).
. "$TOP_SRCDIR/tests/integration/lib.sh"

UI="$T_TMP/ui"
mkdir -p "$UI/sub" "$UI/api"
printf '<!doctype html><title>home</title>\n' >"$UI/index.html"
printf 'console.log("app");\n' >"$UI/app.js"
printf 'body { color: red; }\n' >"$UI/style.css"
printf '\211PNG\r\n\032\n\0\0\0\rIHDR' >"$UI/img.png"
printf '{"data": 1}\n' >"$UI/data.json"
printf 'opaque bytes\n' >"$UI/blob.xyz"
printf '<!doctype html><title>sub</title>\n' >"$UI/sub/index.html"
printf 'hidden-file-content\n' >"$UI/.hidden"
# A file where /api/whatever would be: the API prefix must not look here.
printf 'api-file-content\n' >"$UI/api/whatever"
# The secret lives next to the folder, not in it.
SECRET=$(random_token)
secret_register "$SECRET"
printf '%s\n' "$SECRET" >"$T_TMP/secret.txt"
ln -s ../secret.txt "$UI/leak.txt"
ln -s "$T_TMP/secret.txt" "$UI/leak-abs.txt"
ln -s /etc/passwd "$UI/passwd"
ln -s .. "$UI/up"
ln -s app.js "$UI/alias.js"
ln -s sub/index.html "$UI/alias.html"

pincer_start '{ "admin_ui": { "dir": "'"$UI"'" } }' ||
	{ echo "Bail out! pincerd did not start"; exit 1; }

# get PATH [curl options…]: status in CODE, headers in $T_TMP/h, body in
# $T_TMP/b; every body is also kept in $T_TMP/all for the final secret check.
get() {
	local p=$1; shift
	: >"$T_TMP/h"
	: >"$T_TMP/b"	# curl writes no file for an empty body
	CODE=$(curl -s --path-as-is -D "$T_TMP/h" -o "$T_TMP/b" \
	    -w '%{http_code}' "$@" "$PINCER_URL$p")
	cat "$T_TMP/b" >>"$T_TMP/all"
}
# The value of response header NAME of the last get (CR removed).
hdr() {
	grep -i "^$1:" "$T_TMP/h" | head -1 | cut -d: -f2- |
	    sed 's/^ *//; s/\r$//'
}
body() { cat "$T_TMP/b"; }

# Types.
get /
is "/ is 200" "$CODE" 200
is "/ is index.html" "$(body)" "$(cat "$UI/index.html")"
is "/ is text/html; charset=utf-8" "$(hdr Content-Type)" \
	"text/html; charset=utf-8"
is "HTML has X-Content-Type-Options: nosniff" \
	"$(hdr X-Content-Type-Options)" nosniff
is "HTML has X-Frame-Options: DENY" "$(hdr X-Frame-Options)" DENY
like "HTML has a Content-Security-Policy with frame-ancestors 'none'" \
	"$(hdr Content-Security-Policy)" "default-src 'self'.*frame-ancestors 'none'"
for f in 'app.js:text/javascript; charset=utf-8' \
    'style.css:text/css; charset=utf-8' img.png:image/png \
    data.json:application/json blob.xyz:application/octet-stream; do
	get "/${f%%:*}"
	is "/${f%%:*} is 200 with its bytes" "$CODE $(cmp -s "$T_TMP/b" \
	    "$UI/${f%%:*}" && echo same)" "200 same"
	is "/${f%%:*} is ${f#*:}" "$(hdr Content-Type)" "${f#*:}"
done
is "non-HTML still has nosniff" "$(hdr X-Content-Type-Options)" nosniff
get "/app.js?v=123"
is "a query string does not change the file" "$CODE $(body)" \
	"200 $(cat "$UI/app.js")"

# ETag and 304.
get /app.js
ETAG=$(hdr ETag)
like "a file has an ETag" "$ETAG" '^"[^"]+"$'
get /app.js -H "If-None-Match: $ETAG"
is "If-None-Match with it gives 304" "$CODE" 304
is "the 304 has no body" "$(stat -c %s "$T_TMP/b")" 0
is "the 304 repeats the ETag" "$(hdr ETag)" "$ETAG"
get /app.js -H 'If-None-Match: "something-else"'
is "another ETag in If-None-Match gives 200" "$CODE" 200
printf 'console.log("app, changed");\n' >"$UI/app.js"
get /app.js
NEW_ETAG=$(hdr ETag)
ok "a changed file gets a new ETag ($ETAG -> $NEW_ETAG)" \
	test -n "$NEW_ETAG" -a "$NEW_ETAG" != "$ETAG"
is "and its new content" "$(body)" "$(cat "$UI/app.js")"
get /app.js -H "If-None-Match: $ETAG"
is "the old ETag no longer gives 304" "$CODE" 200

# Folders.
get /sub
is "/sub is 301" "$CODE" 301
is "/sub points to /sub/" "$(hdr Location)" /sub/
get /sub/
is "/sub/ is 200 with its index.html" "$CODE $(body)" \
	"200 $(cat "$UI/sub/index.html")"

# No way out. Every one is a 404 and never the secret.
for p in /../secret.txt /%2e%2e/secret.txt /%2e%2e%2fsecret.txt \
    /%2E%2E/secret.txt /sub/../../secret.txt /sub/%2e%2e/%2e%2e/secret.txt \
    /./secret.txt /sub/./index.html '/..\secret.txt' '/sub\..\..\secret.txt' \
    /%5c..%5csecret.txt /sub%5c..%5c..%5csecret.txt //etc/passwd \
    ///etc/passwd /sub//index.html /.hidden /%2ehidden /sub/../.hidden \
    /leak.txt /leak-abs.txt /passwd /up/secret.txt; do
	get "$p"
	is "GET $p is 404" "$CODE" 404
done
unlike "no answer held the secret" "$(cat "$T_TMP/all")" "$SECRET"
unlike "no answer held /etc/passwd" "$(cat "$T_TMP/all")" 'root:'
unlike "no answer held the dotfile" "$(cat "$T_TMP/all")" 'hidden-file-content'

# The same, byte-exact on the wire (no client in between).
RAW_ALL=""
for t in '/../secret.txt' '/%2e%2e/secret.txt' '/sub/%2E%2E/../secret.txt' \
    '/..%2fsecret.txt' '/..\secret.txt' '//etc/passwd' '/.hidden' \
    '/leak.txt' '/up/secret.txt' '/up/up/etc/passwd'; do
	R=$(raw_http "GET $t HTTP/1.1"$'\r\nHost: t\r\nConnection: close\r\n\r\n')
	RAW_ALL="$RAW_ALL$R"
	like "raw GET $t is 404" "$R" '^HTTP/1\.1 404 '
done
unlike "no raw answer held the secret or /etc/passwd" "$RAW_ALL" "$SECRET|root:"

# Symlinks that stay inside are fine.
get /alias.js
is "a symlink to a file inside the folder is served" "$CODE $(body)" \
	"200 $(cat "$UI/app.js")"
get /alias.html
is "a symlink into a subfolder is served" "$CODE $(body)" \
	"200 $(cat "$UI/sub/index.html")"

# JSON 404s.
get /missing.js
is "a missing file is 404" "$CODE" 404
is "as JSON" "$(hdr Content-Type)" application/json
ok "with code not_found" json_check "$(body)" 'o.error.code === "not_found"'
get /api/whatever
is "/api/whatever is 404 though the folder has api/whatever" "$CODE" 404
ok "a JSON route error, not a file lookup" json_check "$(body)" \
	'o.error.code === "not_found" && /route/.test(o.error.message)'
unlike "the file under api/ was not served" "$(body)" api-file-content

# HEAD: headers only.
R=$(raw_http $'HEAD / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n')
like "HEAD / is 200" "$R" '^HTTP/1\.1 200 '
like "HEAD / has the Content-Length of index.html" "$R" \
	"Content-Length: $(stat -c %s "$UI/index.html")"$'\r'
is "HEAD / has no body (nothing after the blank line)" \
	"$(printf '%s' "$R" | sed -n $'/^\r$/,$p' | tail -n +2 | wc -c)" 0

# An admin_ui.dir that does not exist.
pincer_start '{ "admin_ui": { "dir": "'"$T_TMP/no-such-dir"'" } }' ||
	{ echo "Bail out! second pincerd did not start"; exit 1; }
get /
is "a missing admin_ui.dir: / is 404" "$CODE" 404
ok "saying the admin UI is not installed" json_check "$(body)" \
	'o.error.code === "not_found" &&
	 /admin UI is not installed/.test(o.error.message)'
get /healthz
is "the API still answers" "$CODE" 200

# %00 is never decoded: it would cut the path short (serve and log
# /index.html for /index.html%00.js).
get /index.html%00.js
is "/index.html%00.js is 404, not index.html" "$CODE" 404
get /healthz%00junk
is "/healthz%00junk is 404, not /healthz" "$CODE" 404
get /heal%74hz
is "other escapes still decode (/heal%74hz is /healthz)" "$CODE" 200

done_testing
