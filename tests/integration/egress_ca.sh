#!/bin/bash
# SPDX-License-Identifier: MIT
# egress_ca.sh: each sandbox run has its own CA for the TLS the egress
# proxy intercepts (issue 10). Its certificate is /run/pincer/egress-ca.pem
# and the last of /etc/ssl/certs/ca-certificates.crt; the environment
# points every client at them; two sandboxes, or two runs of one, have
# different CAs; no private key is ever on disk. pincer-sandbox mounts the
# bundle over a --rootfs tree's only where the tree has one.
. "$TOP_SRCDIR/tests/integration/lib.sh"
. "$TOP_SRCDIR/tests/integration/sandbox_lib.sh"

if [ ! -x "$TOP_BUILDDIR/pincer-init" ]; then
	ok "pincer-init is built next to pincer" false
	done_testing
fi
BUNDLE=/etc/ssl/certs/ca-certificates.crt
# ca NAME: the sandbox's CA certificate, as it sees it.
ca() { run "$1" 'cat /run/pincer/egress-ca.pem'; printf '%s' "$OUT"; }

pincer_start "{ $FAST }" || { ok "pincerd starts" false; done_testing; }
PW=$(random_token)
printf '%s\n' "$PW" | pcli user add alice --role owner --password-stdin >/dev/null 2>&1
TOK=$(pcli token create --user alice --scope sandbox,read --name sbx 2>/dev/null)
secret_register "$TOK"
post "" '{"name":"ca1"}'
is "a sandbox is created" "$CODE" 201
post "" '{"name":"ca2"}'
is "… and another" "$CODE" 201

CA1=$(ca ca1)
like "/run/pincer/egress-ca.pem is a certificate" "$CA1" \
    '^-----BEGIN CERTIFICATE-----'
printf '%s\n' "$CA1" >"$T_TMP/ca1.pem"
SUBJ=$(openssl x509 -noout -subject -in "$T_TMP/ca1.pem" 2>&1)
like "… its subject names the sandbox" "$SUBJ" \
    'O ?= ?pincer, CN ?= ?pincer egress CA for sandbox ca1$'
EXT=$(openssl x509 -noout -text -in "$T_TMP/ca1.pem" 2>&1)
like "… a CA, path length 0" "$EXT" 'CA:TRUE, pathlen:0'
like "… signing certificates only" "$EXT" 'Certificate Sign, CRL Sign'
ok "… valid now, and for no more than 30 days" \
    openssl x509 -noout -in "$T_TMP/ca1.pem" -checkend 0
openssl x509 -noout -in "$T_TMP/ca1.pem" -checkend $((31 * 86400)) \
    >/dev/null
is "… (not 31)" "$?" 1

run ca1 "tail -c \$(wc -c </run/pincer/egress-ca.pem) $BUNDLE |
    cmp - /run/pincer/egress-ca.pem && echo same"
is "the sandbox's $BUNDLE ends with the same CA" "$OUT" same
run ca1 "head -c $(wc -c <"$BUNDLE") $BUNDLE | md5sum"
is "… after the host's bundle, whole" "${OUT%% *}" "$(md5sum <"$BUNDLE" | cut -d' ' -f1)"
run ca1 "echo x >>$BUNDLE 2>/dev/null || echo refused"
is "… which the sandbox cannot change" "$OUT" refused
run ca1 "openssl verify -CAfile $BUNDLE /run/pincer/egress-ca.pem"
like "… and OpenSSL in the sandbox trusts it" "$OUT" ': OK$'

run ca1 'env | sort'
like "SSL_CERT_FILE is the system bundle" "$OUT" "SSL_CERT_FILE=$BUNDLE"
like "… REQUESTS_CA_BUNDLE too" "$OUT" "REQUESTS_CA_BUNDLE=$BUNDLE"
like "… CURL_CA_BUNDLE" "$OUT" "CURL_CA_BUNDLE=$BUNDLE"
like "… GIT_SSL_CAINFO" "$OUT" "GIT_SSL_CAINFO=$BUNDLE"
like "NODE_EXTRA_CA_CERTS is the CA" "$OUT" \
    'NODE_EXTRA_CA_CERTS=/run/pincer/egress-ca.pem'
like "NODE_USE_ENV_PROXY=1" "$OUT" 'NODE_USE_ENV_PROXY=1'
run ca1 'node -e "console.log(require(\"tls\").rootCertificates.length)" 2>&1'
like "Node starts" "$OUT" '[0-9]+'
unlike "… and reads the CA without a warning" "$OUT" 'Ignoring extra certs|Warning'

CA2=$(ca ca2)
ok "two sandboxes have different CAs" test -n "$CA2" -a "$CA1" != "$CA2"
printf '%s\n' "$CA2" >"$T_TMP/ca2.pem"
like "… the other's names it" \
    "$(openssl x509 -noout -subject -in "$T_TMP/ca2.pem" 2>&1)" 'sandbox ca2$'
run ca1 "printf '%s\n' '$CA2' >/tmp/o.pem; openssl verify -CAfile /run/pincer/egress-ca.pem /tmp/o.pem 2>&1"
unlike "… and one does not vouch for the other" "$OUT" ': OK$'

SD="$PINCER_STATE_DIR/sandboxes"
is "the CA certificate is in the sandbox's run/ on the host" \
    "$(cat "$SD/ca1/run/egress-ca.pem")" "$CA1"
is "… mode 0644" "$(stat -c %a "$SD/ca1/run/egress-ca.pem" \
    "$SD/ca1/run/ca-certificates.crt" | sort -u)" 644
is "no file in the sandboxes' folders holds a private key" \
    "$(grep -rl -D skip 'PRIVATE KEY' "$SD" 2>/dev/null)" ""
is "… nor anywhere in the state folder" \
    "$(grep -rl -D skip 'PRIVATE KEY' "$PINCER_STATE_DIR" 2>/dev/null)" ""

api POST /ca1/stop
is "ca1 stops" "$CODE" 200
CA1B=$(ca ca1)
like "… woken again, it has a CA" "$CA1B" '^-----BEGIN CERTIFICATE-----'
ok "… a new one" test "$CA1B" != "$CA1"
run ca1 "tail -c \$(wc -c </run/pincer/egress-ca.pem) $BUNDLE |
    cmp - /run/pincer/egress-ca.pem && echo same"
is "… which its bundle ends with" "$OUT" same
api DELETE /ca2
post "" '{"name":"ca2"}'
ok "a sandbox destroyed and made again: another CA" \
    test "$(ca ca2)" != "$CA2" -a -n "$(ca ca2)"
pincer_stop
is "pincerd stops cleanly" "$PINCER_EXIT" 0

# pincer-sandbox alone, with a --rootfs tree: the bundle goes over the
# tree's own, and nowhere else.
R=$(mktemp -d /tmp/pincer-rootfs.XXXXXX)
make_rootfs "$R"
D="$T_TMP/sandboxes/r"
mkdir -p "$D/run" && chmod 700 "$T_TMP/sandboxes"
printf 'ours\n' >"$D/run/ca-certificates.crt"
OUT=$("$SBX" --dir "$D" --rootfs "$R" -- /usr/bin/dash -c \
    'test -e /etc/ssl || echo none' 2>&1)
is "--rootfs without /etc/ssl: starts, nothing mounted" "$OUT" none
mkdir -p "$R/etc/ssl/certs"
printf 'theirs\n' >"$R/etc/ssl/certs/ca-certificates.crt"
OUT=$("$SBX" --dir "$D" --rootfs "$R" -- /usr/bin/cat \
    /etc/ssl/certs/ca-certificates.crt 2>&1)
is "--rootfs with a bundle: run/ca-certificates.crt over it" "$OUT" ours
is "… the tree's own file unchanged" "$(cat "$R/etc/ssl/certs/ca-certificates.crt")" theirs
rm "$R/etc/ssl/certs/ca-certificates.crt"
ln -s /etc/hostname "$R/etc/ssl/certs/ca-certificates.crt"
OUT=$("$SBX" --dir "$D" --rootfs "$R" -- /usr/bin/dash -c \
    'cat /etc/ssl/certs/ca-certificates.crt 2>/dev/null || echo skipped' 2>&1)
is "… a symbolic link there is left alone" "$OUT" skipped
rm -rf "$R"
rm "$D/run/ca-certificates.crt"
OUT=$("$SBX" --dir "$D" -- /bin/sh -c "md5sum <$BUNDLE" 2>&1)
is "no run/ca-certificates.crt: the host's bundle, as it is" "${OUT%% *}" \
    "$(md5sum <"$BUNDLE" | cut -d' ' -f1)"
done_testing
