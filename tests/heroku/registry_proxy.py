#!/usr/bin/python3
"""A counting reverse proxy in front of the Heroku registry stand-in, so
that the tests can tell how many blobs were uploaded, mounted or skipped.

    registry_proxy.py UPSTREAM_URL PORT_FILE LOG_FILE

Listens on a free port of 127.0.0.1 (written to PORT_FILE once
listening), forwards every request to UPSTREAM_URL unchanged (headers,
body; Location headers that name the upstream are rewritten to the
proxy) and appends one line per request to LOG_FILE:
`METHOD PATH?QUERY STATUS`. Upload sessions show as
`POST /v2/<repo>/blobs/uploads/` (with `mount=` when a mount is asked)
and `PUT /v2/<repo>/blobs/uploads/<id>?digest=...` when one completes.
SIGTERM ends it.
"""
import http.client
import http.server
import os
import signal
import sys
import threading
import urllib.parse

UPSTREAM, PORT_FILE, LOG = sys.argv[1], sys.argv[2], sys.argv[3]
up = urllib.parse.urlsplit(UPSTREAM)
lock = threading.Lock()
HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer",
       "upgrade", "proxy-authorization", "proxy-authenticate", "host"}


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        if body is None and self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            body = b"".join(chunks)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=120)
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
        except OSError as e:
            self.send_error(502, str(e))
            return
        finally:
            conn.close()
        with lock, open(LOG, "a") as f:
            f.write("%s %s %d\n" % (self.command, self.path, r.status))
        self.send_response(r.status)
        me = "http://127.0.0.1:%d" % self.server.server_address[1]
        for k, v in r.getheaders():
            if k.lower() in HOP or k.lower() == "content-length":
                continue
            if k.lower() == "location" and v.startswith(UPSTREAM.rstrip("/")):
                v = me + v[len(UPSTREAM.rstrip("/")):]
            self.send_header(k, v)
        # a HEAD answers the upstream's length (a blob's size) with no body
        length = r.getheader("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", length or str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


def main():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    srv.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=srv.shutdown).start())
    tmp = PORT_FILE + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, PORT_FILE)
    srv.serve_forever()


if __name__ == "__main__":
    main()
