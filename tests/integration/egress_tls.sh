#!/bin/bash
# SPDX-License-Identifier: MIT
# egress_tls.sh: HTTPS from a sandbox through the egress proxy (issue 10),
# as the programs there make it: curl, git, Python's urllib and Node, each
# finding the proxy in the environment, against an HTTPS server on the
# host's loopback (tests/fakes/https_server.mjs) with a throwaway CA.
# Here the policy allows the server by name and cidr, so CONNECT is a
# tunnel of bytes and the clients verify the server with the test CA;
# clients_reach is the same list of checks for an intercepted connection
# (an inject rule: the sandbox's own CA, the default trust store).
# The server is named by the host's name, which resolves to a loopback
# address on the host: "localhost" is in the sandbox's NO_PROXY, so
# clients would connect to the sandbox's own loopback instead of the
# proxy (where the host's name does not resolve, localhost is used with
# NO_PROXY narrowed for the clients' commands).
# Also: a denied host gets 403 with its reason; a connection that ignores
# the proxy gets nowhere.
. "$TOP_SRCDIR/tests/integration/lib.sh"
. "$TOP_SRCDIR/tests/integration/sandbox_lib.sh"

if [ ! -x "$TOP_BUILDDIR/pincer-init" ]; then
	ok "pincer-init is built next to pincer" false
	done_testing
fi

# The server's name and address as pincerd will resolve them (on the host).
# The host's own name when it resolves to IPv4 there, so the clients
# use the sandbox's environment as it is; otherwise localhost, with the
# commands' NO_PROXY narrowed (PRE) so that it goes through the proxy.
SNAME=$(hostname)
SADDR=$(getent ahostsv4 "$SNAME" 2>/dev/null | awk '{ print $1; exit }')
PRE=""
case $SNAME in localhost|*.localhost|"") SADDR="" ;; esac
if [ -z "$SADDR" ]; then
	SNAME=localhost
	SADDR=127.0.0.1
	PRE="export NO_PROXY=::1 no_proxy=::1; "
fi

# --- a test CA, a certificate for the server's names, a git repo ---------
C=$T_TMP/ca
mkdir -p "$C"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=pincer-test-ca \
    -keyout "$C/ca.key" -out "$C/ca.pem" >/dev/null 2>&1
openssl req -newkey rsa:2048 -nodes -subj /CN=localhost \
    -keyout "$C/srv.key" -out "$C/srv.csr" >/dev/null 2>&1
printf '%s\n' "subjectAltName=DNS:$SNAME,DNS:localhost,IP:127.0.0.1,IP:$SADDR" \
    'basicConstraints=CA:FALSE' 'extendedKeyUsage=serverAuth' >"$C/ext"
openssl x509 -req -days 2 -in "$C/srv.csr" -CA "$C/ca.pem" \
    -CAkey "$C/ca.key" -CAcreateserial -extfile "$C/ext" \
    -out "$C/srv.pem" >/dev/null 2>&1
ok "a test CA and a server certificate (openssl)" test -s "$C/srv.pem"
# A second server whose CA pincerd is not given: an impostor of the name.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca \
    -keyout "$C/ca2.key" -out "$C/ca2.pem" >/dev/null 2>&1
openssl x509 -req -days 2 -in "$C/srv.csr" -CA "$C/ca2.pem" \
    -CAkey "$C/ca2.key" -CAcreateserial -extfile "$C/ext" \
    -out "$C/srv2.pem" >/dev/null 2>&1

REPO_TEXT="a file served by git's dumb protocol $(random_token)"
G=$T_TMP/git
git init -q "$G/src"
printf '%s\n' "$REPO_TEXT" >"$G/src/README"
git -C "$G/src" add README
git -C "$G/src" -c user.name=t -c user.email=t@example.com commit -qm one
git clone -q --bare "$G/src" "$G/repo.git"
git -C "$G/repo.git" update-server-info
ok "a bare repository prepared for dumb HTTP" test -s "$G/repo.git/info/refs"

# On every address: the host's own address is how a sandbox that ignored
# the proxy would try to reach it (the check below needs it listening).
node "$TOP_SRCDIR/tests/fakes/https_server.mjs" --cert "$C/srv.pem" \
    --key "$C/srv.key" --host 0.0.0.0 --git-dir "$G" --record "$T_TMP/rec" \
    >"$T_TMP/https.out" 2>"$T_TMP/https.err" &
T_PIDS="$T_PIDS $!"
disown
wait_until 10 grep -q '^listening' "$T_TMP/https.out"
HPORT=$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$T_TMP/https.out")
ok "the HTTPS test server listens" test -n "$HPORT"
OUT=$(curl -sS --cacert "$C/ca.pem" "https://$SNAME:$HPORT/echo" 2>&1)
like "… and answers on the host as $SNAME ($SADDR) with the test CA" \
    "$OUT" '"path":"/echo"'
node "$TOP_SRCDIR/tests/fakes/https_server.mjs" --cert "$C/srv2.pem" \
    --key "$C/srv.key" --record "$T_TMP/rec2" >"$T_TMP/https2.out" \
    2>"$T_TMP/https2.err" &
T_PIDS="$T_PIDS $!"
disown
wait_until 10 grep -q '^listening' "$T_TMP/https2.out"
HPORT2=$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$T_TMP/https2.out")
HOST_IP=$(ip -4 -o addr show scope global 2>/dev/null |
    sed -n 's/.* inet \([0-9.]*\)\/.*/\1/p' | head -1)

pincer_start "{ $FAST, \"egress\": { \"policy\": \"tls\", \"policies\": {
	\"tls\": { \"default\": \"deny\", \"rules\": [
		{ \"host\": \"denied.example\", \"action\": \"deny\",
		  \"reason\": \"not for sandboxes\" },
		{ \"host\": \"$SNAME\", \"cidr\": \"$SADDR/32\",
		  \"action\": \"allow\" } ] },
	\"intercepted\": { \"default\": \"deny\", \"rules\": [
		{ \"host\": \"$SNAME\", \"cidr\": \"$SADDR/32\",
		  \"action\": \"inject\",
		  \"set_headers\": { \"X-Injected\": \"by-pincerd\" } } ] },
	\"creds\": { \"default\": \"deny\", \"rules\": [
		{ \"host\": \"$SNAME\", \"port\": $HPORT2, \"cidr\": \"$SADDR/32\",
		  \"action\": \"inject\", \"set_headers\": { \"X\": \"1\" } },
		{ \"host\": \"$SNAME\", \"cidr\": \"$SADDR/32\",
		  \"path_prefix\": \"/private\", \"action\": \"deny\",
		  \"reason\": \"no private pages\" },
		{ \"host\": \"$SNAME\", \"cidr\": \"$SADDR/32\",
		  \"path_prefix\": \"/quiet\", \"action\": \"inject\",
		  \"set_headers\": { \"Authorization\":
		    \"Bearer \${secret:egress_tok}\" },
		  \"set_query\": { \"key\": \"\${secret:egress_tok}\" } },
		{ \"host\": \"$SNAME\", \"cidr\": \"$SADDR/32\",
		  \"path_prefix\": \"/missing\", \"action\": \"inject\",
		  \"set_headers\": { \"X-K\": \"\${secret:not_set_anywhere}\" } },
		{ \"host\": \"$SNAME\", \"cidr\": \"$SADDR/32\",
		  \"action\": \"allow\" },
		{ \"host\": \"localhost\", \"action\": \"inject\",
		  \"set_headers\": { \"X\": \"1\" } },
		{ \"host\": \"169.254.169.254\", \"action\": \"inject\",
		  \"set_headers\": { \"X\": \"1\" } } ] } },
	\"upstream_ca_file\": \"$C/ca.pem\" } }" ||
    { ok "pincerd starts" false; done_testing; }
PW=$(random_token)
printf '%s\n' "$PW" | pcli user add alice --role owner --password-stdin >/dev/null 2>&1
TOK=$(pcli token create --user alice --scope sandbox,read --name sbx 2>/dev/null)
secret_register "$TOK"
post "" '{"name":"tls"}'
is "a sandbox is created" "$CODE" 201

# run1 NAME SCRIPT: run, with OUT on one line (for like).
run1() { run "$@"; OUT=${OUT//$'\n'/ }; }
# put FILE PATH: a host file into the sandbox (the files API).
put() {
	api PUT "/tls/files$2" --data-binary @"$1"
	[ "$CODE" = 201 ] || [ "$CODE" = 200 ]
}
ok "the test CA copied into the sandbox" put "$C/ca.pem" /workspace/testca.pem
ok "… and the Node client" put "$TOP_SRCDIR/tests/fakes/sandbox_fetch.mjs" \
    /workspace/sandbox_fetch.mjs
# put_in SANDBOX FILE PATH: the same into another sandbox.
put_in() {
	api PUT "/$1/files$3" --data-binary @"$2"
	[ "$CODE" = 201 ] || [ "$CODE" = 200 ]
}

# clients_reach URL_BASE CAFILE_OR_EMPTY [LABEL]: from inside the sandbox "tls",
# by the proxy of its environment, each client reaches the HTTPS server
# at URL_BASE: curl (GET, POST, 1 MiB, SSE), git clone, Python urllib,
# Node (GET, SSE, WebSocket). CAFILE_OR_EMPTY: the CA file in the sandbox
# the clients are given, or empty for their default trust store.
# CR_ECHO is curl's /echo answer (the headers the server got).
clients_reach() {
	local base=$1 ca=$2 l=${3:-$1} cc="" gc="" nc=""
	if [ -n "$ca" ]; then
		cc="--cacert $ca"
		# The sandbox's GIT_SSL_CAINFO outweighs http.sslCAInfo.
		gc="GIT_SSL_CAINFO=$ca "
		nc="--cacert $ca"
	fi
	run tls "${PRE}curl -sS $cc '$base/echo?via=curl&t=1' -H 'X-Mine: 1' 2>&1"
	CR_ECHO=$OUT
	like "$l: curl GET /echo" "$OUT" '"method":"GET","path":"/echo\?via=curl&t=1"'
	like "… the server got curl's header" "$OUT" '"x-mine":"1"'
	run tls "${PRE}curl -sS $cc --data-binary 'a posted body' '$base/echo' 2>&1"
	like "$l: curl POST /echo, the body arrives" "$OUT" \
	    '"method":"POST".*"body":"a posted body"'
	run tls "${PRE}curl -sS $cc -o /dev/null -w '%{http_code} %{size_download}' '$base/bytes?n=1048576' 2>&1"
	is "$l: curl downloads 1 MiB whole" "$OUT" "200 1048576"
	run tls "${PRE}curl -sSN $cc '$base/sse' 2>&1"
	is "$l: curl gets the three SSE events" \
	    "$(printf '%s\n' "$OUT" | grep -c '^data: {"n":[123]}')" 3
	run tls "${PRE}cd /workspace && rm -rf clone && ${gc}git clone -q '$base/git/repo.git' clone 2>&1 && cat clone/README"
	is "$l: git clone over HTTPS, the file as committed" "$OUT" "$REPO_TEXT"
	run tls "${PRE}/usr/bin/python3 -c '
import ssl, sys, urllib.request as u
ctx = ssl.create_default_context(cafile=sys.argv[2] or None)
print(u.urlopen(sys.argv[1], context=ctx, timeout=10).read().decode())
' '$base/echo?via=python' '$ca' 2>&1"
	like "$l: Python urllib GET /echo" "$OUT" '"path":"/echo\?via=python"'
	run tls "${PRE}node /workspace/sandbox_fetch.mjs $nc get '$base/echo?via=node' 2>&1"
	like "$l: Node GET /echo" "$OUT" '"path":"/echo\?via=node"'
	run tls "${PRE}node /workspace/sandbox_fetch.mjs $nc sse '$base/sse' 2>&1"
	is "$l: Node gets the three SSE events in order" \
	    "$(printf '%s\n' "$OUT" | cut -d' ' -f2- | tr '\n' ' ')" \
	    '{"n":1} {"n":2} {"n":3} '
	ok "… as they were sent (not all at once)" sse_spread "$OUT"
	run tls "${PRE}node /workspace/sandbox_fetch.mjs $nc ws '${base/https:/wss:}/ws' 2>&1"
	is "$l: Node WebSocket: text, binary and close echoed" "$OUT" \
	    "text 1 hello over the tunnel"$'\n'"binary 2 000102fdfeff"$'\n'"close 8 1000"
}
# sse_spread OUT: the first and last events arrived ≥ 20 ms apart (the
# server sends them 20 ms apart, so a relay that held them would fail).
sse_spread() {
	local a b
	a=$(printf '%s\n' "$1" | head -1 | cut -d' ' -f1)
	b=$(printf '%s\n' "$1" | tail -1 | cut -d' ' -f1)
	[[ $a =~ ^[0-9]+$ && $b =~ ^[0-9]+$ ]] && [ $((b - a)) -ge 20 ]
}

clients_reach "https://$SNAME:$HPORT" /workspace/testca.pem tunnel

# Without the test CA the server is not trusted: the tunnel is bytes,
# the certificate the client sees is the server's own.
run1 tls "${PRE}curl -sS https://$SNAME:$HPORT/echo 2>&1; echo \" rc=\$?\""
like "curl without the test CA: the server's certificate is refused" \
    "$OUT" 'rc=60'
run tls "${PRE}node /workspace/sandbox_fetch.mjs get https://$SNAME:$HPORT/echo 2>&1"
like "… and by Node" "$OUT" 'unable to (verify|get local issuer)|self.signed'

# --- refusals -----------------------------------------------------------
# The CONNECT names an allowed host; the TLS inside must name it too.
run1 tls "${PRE}echo | timeout 10 openssl s_client -proxy 127.0.0.1:3128 -connect $SNAME:$HPORT -servername $SNAME 2>&1 | grep -c 'BEGIN CERTIFICATE'"
is "a tunnel whose TLS names the CONNECT's host works (openssl s_client)" \
    "$OUT" 1
run1 tls "${PRE}echo | timeout 10 openssl s_client -proxy 127.0.0.1:3128 -connect $SNAME:$HPORT -servername other.example 2>&1 | grep -c 'BEGIN CERTIFICATE'"
is "… one whose TLS names another host is closed before it reaches it" \
    "$OUT" 0
wait_log 'names another host'
like "… and logged" "$(grep 'names another host' "$PINCER_LOG")" \
    "connect=$SNAME sni=other.example"

run1 tls "${PRE}curl -sS https://denied.example/ 2>&1; echo \" rc=\$?\""
like "a denied host over HTTPS: the CONNECT is refused" "$OUT" \
    'CONNECT tunnel failed, response 403.* rc=56'
run tls "${PRE}curl -s -w '\n%{http_code}' http://denied.example/x"
like "… the refusal's JSON has the rule's reason" "$OUT" \
    '"code":"egress_denied","message":"not for sandboxes"'
run tls "${PRE}node /workspace/sandbox_fetch.mjs get https://denied.example/ 2>&1"
like "… which a client sees in the CONNECT's answer (Node)" "$OUT" \
    'proxy CONNECT: 403 .*"code":"egress_denied","message":"not for sandboxes"'
run1 tls "${PRE}curl -sS https://example.invalid/ 2>&1; echo \" rc=\$?\""
like "a host no rule names: CONNECT refused (the default)" "$OUT" \
    'CONNECT tunnel failed, response 403.* rc=56'
run1 tls "curl -sS --cacert /workspace/testca.pem https://localhost:$HPORT/echo 2>&1; echo \" rc=\$?\""
like "localhost is not proxied (NO_PROXY): the sandbox's own loopback" \
    "$OUT" 'rc=7$'
run1 tls "${PRE}curl -sS --proxy http://127.0.0.1:3128 --noproxy '' --cacert /workspace/testca.pem https://localhost:$HPORT/echo 2>&1; echo \" rc=\$?\""
like "… and through the proxy it is refused (no rule names it)" \
    "$OUT" 'response 403.* rc=56'
if [ -n "$HOST_IP" ]; then
	OUT=$(curl -sS --noproxy '*' -k -m 3 "https://$HOST_IP:$HPORT/echo" 2>&1)
	like "the host reaches the server on its address $HOST_IP" "$OUT" \
	    '"path":"/echo"'
	run tls "${PRE}curl -sS --noproxy '*' -k -m 3 https://$HOST_IP:$HPORT/echo 2>&1; echo \" rc=\$?\""
	like "… a sandbox ignoring the proxy does not" "$OUT" ' rc=[1-9][0-9]*$'
else
	skip "the host reaches the server on its address" "no global IPv4"
	skip "… a sandbox ignoring the proxy does not" "no global IPv4"
fi
run tls "${PRE}curl -sS --noproxy '*' -m 3 https://1.1.1.1/ 2>&1; echo \" rc=\$?\""
like "… nor 1.1.1.1:443" "$OUT" ' rc=[1-9][0-9]*$'

# --- the same clients, intercepted ----------------------------------------
# An inject rule: pincerd ends the sandbox's TLS with the sandbox's CA,
# which its programs trust by default, and verifies the server against
# egress.upstream_ca_file (the test CA). Until interception is built an
# inject rule is answered 501 (egress_inject_unavailable): then the
# points are skipped; any other answer runs them.
api PUT /tls/egress -H 'Content-Type: application/json' \
    --data-binary '{"policy":"intercepted"}'
is "the sandbox switched to the policy with the inject rule" "$CODE" 200
run1 tls "${PRE}node /workspace/sandbox_fetch.mjs get https://$SNAME:$HPORT/echo 2>&1"
like "an intercepted tunnel answers with the sandbox's CA trusted by default" \
    "$OUT" '"path":"/echo"'
clients_reach "https://$SNAME:$HPORT" "" intercepted
like "… the rule's header reached the server" "$CR_ECHO" \
    '"x-injected":"by-pincerd"'
api PUT /tls/egress -H 'Content-Type: application/json' \
    --data-binary '{"policy":null}'

# --- credentials: injected, replacing the sandbox's, and nowhere inside ---
SECRET="egress-secret-$(random_token)"
printf '%s' "$SECRET" | pcli secret set egress_tok >/dev/null 2>&1
ok "a secret for the inject rule is set" [ $? = 0 ]
api PUT /tls/egress -H 'Content-Type: application/json' \
    --data-binary '{"policy":"creds"}'
is "the sandbox switched to the policy with credentials" "$CODE" 200
: >"$T_TMP/rec"
run1 tls "${PRE}curl -sS -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer mine' 'https://$SNAME:$HPORT/quiet?key=mine&x=1' 2>&1"
is "an injected request is answered (the sandbox's default trust)" \
    "$OUT" 204
REC=$(grep '"path":"/quiet' "$T_TMP/rec" | tail -1)
like "the server got the secret in the header" "$REC" \
    "\"authorization\":\"Bearer $SECRET\""
like "… and in the query parameter, the sandbox's one replaced" "$REC" \
    "\"path\":\"/quiet\\?x=1&key=$SECRET\""
unlike "… the sandbox's own Authorization and key are gone" "$REC" 'mine'
run1 tls "${PRE}curl -sS -w ' %{http_code}' 'https://$SNAME:$HPORT/private/x' 2>&1"
like "a request the policy denies inside the tunnel: 403 with the reason" \
    "$OUT" '"code":"egress_denied","message":"no private pages".* 403$'
run1 tls "${PRE}curl -sS -w ' %{http_code}' 'https://$SNAME:$HPORT/missing' 2>&1"
like "a secret that is not set: 502, named, and nothing goes out" "$OUT" \
    '"code":"egress_inject_failed","message":"the secret \\"not_set_anywhere\\".* 502$'
unlike "… the server saw no such request" "$(cat "$T_TMP/rec")" '/missing'
run1 tls "${PRE}curl -sS -o /dev/null -w '%{http_code}' 'https://$SNAME:$HPORT/echo' 2>&1"
is "a request an allow rule matches goes on in the same kind of tunnel" \
    "$OUT" 200
unlike "… without the credential" "$(grep '"path":"/echo' "$T_TMP/rec")" \
    "$SECRET"

run tls "${PRE}curl -sS -o /dev/null -o /dev/null -w '%{http_code} %{num_connects} ' 'https://$SNAME:$HPORT/quiet' 'https://$SNAME:$HPORT/echo' 2>&1"
is "two requests in one intercepted tunnel (kept alive)" "$OUT" "204 1 200 0 "
run tls "${PRE}head -c 100000 /dev/zero | tr '\\0' x > /tmp/up && curl -sS -H 'Transfer-Encoding: chunked' --data-binary @/tmp/up 'https://$SNAME:$HPORT/echo' | node -e 'let s=\"\";process.stdin.on(\"data\",d=>s+=d).on(\"end\",()=>console.log(JSON.parse(s).body.length))'"
is "a chunked upload is passed on whole" "$OUT" 100000
run1 tls "${PRE}curl -sS -I 'https://$SNAME:$HPORT/bytes?n=10' 2>&1"
like "HEAD: the head only, its length kept" "$OUT" \
    'HTTP/1.1 200 .*[Cc]ontent-[Ll]ength: 10'

# Nothing of the secret inside: env, files, a client's memory.
run tls "env; cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' '\\n'"
unlike "the sandbox's environments and command lines have no trace" \
    "$OUT" "$SECRET"
ok "… (they were read)" [ -n "$OUT" ]
# The secret in two halves, joined only in the searching program: the
# command itself must not put it inside.
H1=${SECRET:0:20}
H2=${SECRET:20}
run tls "s=$H1; s=\${s}$H2; grep -rlsF \"\$s\" /workspace /data /tmp /root /etc /run /var /opt; echo scanned"
is "no file in the sandbox holds it" "$OUT" scanned
run tls "${PRE}/usr/bin/python3 -c '
import re, sys, urllib.request as u
r = u.urlopen(sys.argv[1], timeout=10)
print(r.status)
h1, h2 = sys.argv[2].encode(), sys.argv[3].encode()
n = found = 0
with open(\"/proc/self/maps\") as m, open(\"/proc/self/mem\", \"rb\", 0) as mem:
    for line in m:
        a, b = (int(x, 16) for x in line.split()[0].split(\"-\"))
        if \"r\" not in line.split()[1] or \"[vvar\" in line:
            continue
        try:
            mem.seek(a)
            chunk = mem.read(b - a)
        except OSError:
            continue
        n += len(chunk)
        i = chunk.find(h1)
        while i != -1:
            found += chunk.startswith(h2, i + len(h1))
            i = chunk.find(h1, i + 1)
print(\"scanned\", n > 1 << 20, found)
' 'https://$SNAME:$HPORT/quiet' '$H1' '$H2' 2>&1"
is "a client that made an injected request: 204, its whole memory read, no trace" \
    "$OUT" $'204\nscanned True 0'

# Not for the sandbox to choose where the credential goes.
run1 tls "${PRE}node /workspace/sandbox_fetch.mjs get https://169.254.169.254/ 2>&1"
like "an inject rule for the metadata address: refused, the range named" \
    "$OUT" 'proxy CONNECT: 403 .*169.254.0.0/16'
if [ "$SNAME" != localhost ]; then
	run1 tls "NO_PROXY= no_proxy= node /workspace/sandbox_fetch.mjs get https://localhost:$HPORT/ 2>&1"
	like "… and for a name that resolves to 127.0.0.1" "$OUT" \
	    'proxy CONNECT: 403 .*127.0.0.0/8'
else
	skip "… and for a name that resolves to 127.0.0.1" \
	    "the server is named localhost here"
fi
run1 tls "${PRE}node /workspace/sandbox_fetch.mjs get https://$SNAME:$HPORT2/ 2>&1"
like "a host that does not prove its name to pincerd: 502, no tunnel" \
    "$OUT" 'proxy CONNECT: 502 .*"code":"egress_upstream_tls".*did not prove'
ok "… and heard no request" [ ! -s "$T_TMP/rec2" ]

# Sandbox B trusts its own CA, not A's.
post "" '{"name":"tlsb"}'
is "a second sandbox" "$CODE" 201
api PUT /tlsb/egress -H 'Content-Type: application/json' \
    --data-binary '{"policy":"creds"}'
run tls "cat /run/pincer/egress-ca.pem"
printf '%s\n' "$OUT" >"$T_TMP/a-ca.pem"
ok "A's CA read from inside A" grep -q 'BEGIN CERTIFICATE' "$T_TMP/a-ca.pem"
ok "… put in B" put_in tlsb "$T_TMP/a-ca.pem" /workspace/a-ca.pem
run1 tlsb "${PRE}curl -sS -o /dev/null -w '%{http_code}' https://$SNAME:$HPORT/quiet 2>&1"
is "B reaches the host by its own CA" "$OUT" 204
run1 tlsb "${PRE}curl -sS --cacert /workspace/a-ca.pem -o /dev/null https://$SNAME:$HPORT/quiet 2>&1; echo \" rc=\$?\""
like "… and A's CA does not vouch for B's interception" "$OUT" 'rc=60$'

# The request log: intercepted requests, the credential in none of it.
ADM=$(pcli token create --user alice --scope admin,read --name adm 2>/dev/null)
req GET "/api/v1/egress/log?sandbox=tls&action=inject" \
    -H "Authorization: Bearer $ADM"
is "the egress log answers" "$CODE" 200
like "… with the injected requests, marked intercepted" "$BODY" \
    '"method":"GET","host":"'"$SNAME"'","port":'"$HPORT"',"path":"/quiet\?…".*"action":"inject".*"intercepted":true'
unlike "… the secret in no entry" "$BODY" "$SECRET"
req GET "/api/v1/egress/log?sandbox=tls&action=deny" \
    -H "Authorization: Bearer $ADM"
like "… a request denied inside a tunnel has its own entry" "$BODY" \
    '"path":"/private/x".*"action":"deny"'
unlike "pincerd's log has no trace of the secret" "$(cat "$PINCER_LOG")" \
    "$SECRET"

wait_log 'msg=egress.*host=denied.example'
LOG=$(grep 'msg=egress' "$PINCER_LOG")
like "the log has the tunnels" "$LOG" \
    "sandbox=tls policy=tls method=CONNECT host=$SNAME port=$HPORT .*action=allow"
like "… with the bytes each way" "$LOG" \
    "host=$SNAME port=$HPORT .*bytes_up=[1-9][0-9]* bytes_down=[1-9]"
like "… and the refusals" "$LOG" 'method=CONNECT host=denied.example .*action=deny'

pincer_stop
is "pincerd stops cleanly" "$PINCER_EXIT" 0
done_testing
