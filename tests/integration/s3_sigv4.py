# SPDX-License-Identifier: MIT
# s3_sigv4.py: the SigV4 check of the s3 backend (objstore_s3_sigv4.sh).
#
#   s3_sigv4.py serve DIR    a loopback S3 look-alike that keeps every
#                            request (method, raw path, headers, body) in
#                            DIR and answers enough for pincer objstore
#                            put/get/head/ls/rm; prints its port
#   s3_sigv4.py verify DIR   signs each kept request again with botocore
#                            at the time curl chose (its X-Amz-Date), with
#                            the same key pair, headers and body; prints
#                            one line per request: "ok …" or "not ok …"
#   s3_sigv4.py tamper DIR   the same with one byte added to each body:
#                            every line must then be "not ok" (the check
#                            can fail)
#
# Run with Debian's /usr/bin/python3 (python3-botocore): a python3 earlier
# in PATH may carry another botocore. botocore is given the path and query
# decoded, so it encodes them itself: a match proves pincer's encoding and
# sorting as well as its x-amz-content-sha256 (botocore hashes the body).
import datetime
import glob
import hashlib
import http.server
import json
import os
import re
import sys
import urllib.parse
from unittest import mock

ACCESS_KEY = "AKIDPINCERTEST0000001"
SECRET_KEY = "pincer/Test+Secret=Key0123456789abcdefghij"
REGION = "eu-central-1"
TOKEN = "15Gev+hWmBQ9/rHSz7UTFMaf=="    # +, / and = all need encoding
UPLOAD_ID = "VXBsb2Fk+SUQ/x=="


class Capture(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    objects = {}
    seq = 0

    def log_message(self, *args):
        pass

    def do_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        Capture.seq += 1
        name = os.path.join(self.server.dir, "%03d" % Capture.seq)
        with open(name + ".body", "wb") as f:
            f.write(body)
        with open(name + ".json", "w") as f:
            json.dump({"method": self.command, "path": self.path,
                       "headers": list(self.headers.items())}, f)
        status, hdrs, out = self.answer(body)
        self.send_response(status)
        for k, v in hdrs:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_any

    def answer(self, body):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        key = urllib.parse.unquote(u.path)
        sha = self.headers.get("x-amz-meta-sha256", "")
        if "list-type" in q:
            return 200, [], listing(q).encode()
        if self.command == "POST" and "uploads" in q:
            Capture.objects[key] = (b"", sha)
            return 200, [], ("<InitiateMultipartUploadResult><UploadId>%s"
                             "</UploadId></InitiateMultipartUploadResult>"
                             % UPLOAD_ID).encode()
        if self.command == "POST":
            return 200, [], (b"<CompleteMultipartUploadResult><ETag>"
                             b"&quot;mp-2&quot;</ETag>"
                             b"</CompleteMultipartUploadResult>")
        if self.command == "PUT" and "partNumber" in q:
            return 200, [("ETag", '"part%s"' % q["partNumber"])], b""
        if self.command == "PUT":
            Capture.objects[key] = (body, sha)
            return 200, [("ETag", '"%s"' % hashlib.md5(body).hexdigest())], b""
        if self.command == "DELETE":
            Capture.objects.pop(key, None)
            return 204, [], b""
        if key not in Capture.objects:
            return 404, [], b"<Error><Code>NoSuchKey</Code></Error>"
        data, sha = Capture.objects[key]
        return 200, [("x-amz-meta-sha256", sha), ("ETag", '"e"'),
                     ("Last-Modified", "Wed, 02 Dec 2026 12:00:00 GMT")], data


def listing(q):
    page2 = q.get("continuation-token") == TOKEN
    keys = ["sig/b&c <d>.txt"] if page2 else ["sig/a", "sig/a b"]
    x = "<ListBucketResult><IsTruncated>%s</IsTruncated>" % (
        "false" if page2 else "true")
    if not page2:
        x += "<NextContinuationToken>%s</NextContinuationToken>" % TOKEN
    for k in keys:
        k = k.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        x += ("<Contents><Key>%s</Key><Size>1</Size><ETag>&quot;x&quot;"
              "</ETag><LastModified>2026-12-02T12:00:00.000Z</LastModified>"
              "</Contents>" % k)
    return x + "</ListBucketResult>"


def serve(d):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Capture)
    srv.dir = d
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


def sign(method, url, params, headers, body, when):
    import botocore
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    fixed = datetime.datetime.strptime(when, "%Y%m%dT%H%M%SZ")
    req = AWSRequest(method=method, url=url, headers=headers, data=body,
                     params=params)
    auth = S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", REGION)
    with mock.patch("botocore.auth.datetime") as dt:
        dt.datetime.utcnow.return_value = fixed     # botocore 1.29
        if hasattr(botocore.auth, "get_current_datetime"):
            with mock.patch("botocore.auth.get_current_datetime",
                            return_value=fixed):
                auth.add_auth(req)
        else:
            auth.add_auth(req)
    return req.headers["Authorization"]


def parts(authz):
    m = re.match(r"AWS4-HMAC-SHA256 Credential=([^,]*), "
                 r"SignedHeaders=([^,]*), Signature=([0-9a-f]{64})$", authz)
    return m.groups() if m else (None, None, None)


def verify_one(path, tamper):
    with open(path) as f:
        r = json.load(f)
    with open(path[:-5] + ".body", "rb") as f:
        body = f.read() + (b"x" if tamper else b"")
    hdr = {}
    dates = 0
    for k, v in r["headers"]:
        hdr[k.lower()] = v
        dates += k.lower() == "x-amz-date"
    cred, signed, sig = parts(hdr.get("authorization", ""))
    what = "%s %s" % (r["method"], r["path"])
    if sig is None or dates != 1:
        return "not ok %s: Authorization %r, %d X-Amz-Date" % (
            what, hdr.get("authorization"), dates)
    u = urllib.parse.urlsplit(r["path"])
    params = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True,
                                         strict_parsing=bool(u.query)))
    url = "http://%s%s" % (hdr["host"], urllib.parse.quote(
        urllib.parse.unquote(u.path), safe="/-_.~"))
    give = {k: hdr[k] for k in signed.split(";")
            if k not in ("host", "x-amz-date")}
    want = sign(r["method"], url, params, give, body, hdr["x-amz-date"])
    _, wsigned, wsig = parts(want)
    body_sha = hashlib.sha256(body).hexdigest()
    line = "%s signed=%s content-sha256=%s" % (what, signed, "body" if
        hdr.get("x-amz-content-sha256") == body_sha else "OTHER")
    if (wsigned, wsig) != (signed, sig) or \
            cred != "%s/%s/%s/s3/aws4_request" % (
                ACCESS_KEY, hdr["x-amz-date"][:8], REGION):
        return "not ok %s\n# pincer:   %s\n# botocore: %s" % (
            line, hdr["authorization"], want)
    return "ok " + line


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("serve", "verify",
                                                 "tamper"):
        sys.exit("usage: s3_sigv4.py serve|verify|tamper DIR")
    if sys.argv[1] == "serve":
        serve(sys.argv[2])
    for p in sorted(glob.glob(os.path.join(sys.argv[2], "*.json"))):
        print(verify_one(p, sys.argv[1] == "tamper"))


main()
