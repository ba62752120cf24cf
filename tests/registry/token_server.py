#!/usr/bin/python3
"""A token server for the Distribution registry's `auth.token` (stdlib
only; RS256 signatures made by the openssl CLI).

    token_server.py PORT PASSWORD KEY.pem CERT.pem ISSUER SERVICE

GET /token?service=S&scope=repository:NAME:pull,push[&scope=...] answers
{"token": JWT, "access_token": JWT, "expires_in": 300} when the request
carries HTTP Basic user `_` with PASSWORD; every scope asked is granted.
Without credentials, an anonymous token without any access (the registry
then refuses). With wrong credentials, 401. The JWT's header carries the
certificate as `x5c`, which the registry checks against its
`rootcertbundle` (the same certificate). /count tells how many tokens were
issued, so the tests can show the client's cache at work.
"""
import base64
import http.server
import json
import subprocess
import sys
import threading
import time
import urllib.parse

PORT, PASSWORD, KEY, CERT, ISSUER, SERVICE = sys.argv[1:7]
issued = 0
lock = threading.Lock()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def cert_der():
    pem = open(CERT).read()
    body = pem.split("-----BEGIN CERTIFICATE-----")[1].split("-----END")[0]
    return "".join(body.split())  # x5c is standard base64 DER


def sign(claims):
    header = {"typ": "JWT", "alg": "RS256", "x5c": [cert_der()]}
    signing = (b64url(json.dumps(header).encode()) + "." +
               b64url(json.dumps(claims).encode()))
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", KEY],
                         input=signing.encode(), capture_output=True,
                         check=True).stdout
    return signing + "." + b64url(sig)


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def reply(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        global issued
        url = urllib.parse.urlparse(self.path)
        if url.path == "/count":
            return self.reply(200, {"issued": issued})
        if url.path != "/token":
            return self.reply(404, {"error": "not found"})
        q = urllib.parse.parse_qs(url.query)
        auth = self.headers.get("Authorization", "")
        user = None
        if auth.startswith("Basic "):
            try:
                u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
            except Exception:
                u, p = "", ""
            if u != "_" or p != PASSWORD:
                return self.reply(401, {"details": "bad credentials"},
                                  [("WWW-Authenticate", 'Basic realm="token"')])
            user = u
        access = []
        for s in q.get("scope", []):
            parts = s.split(":")
            if len(parts) != 3 or parts[0] != "repository":
                continue
            access.append({"type": "repository", "name": parts[1],
                           "actions": parts[2].split(",") if user else []})
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": user or "", "aud": q.get("service", [SERVICE])[0],
                  "exp": now + 300, "nbf": now - 10, "iat": now,
                  "jti": "%d-%d" % (now, issued), "access": access}
        tok = sign(claims)
        with lock:
            issued += 1
        self.reply(200, {"token": tok, "access_token": tok, "expires_in": 300})


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


Server(("127.0.0.1", int(PORT)), Handler).serve_forever()
