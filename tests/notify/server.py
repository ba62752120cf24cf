"""A test webhook server for tests/notify/run.sh, on loopback.

Usage: server.py PORT_FILE LOG_FILE

Writes the port it listens on to PORT_FILE, then appends one JSON line per
POST to LOG_FILE: {"path": ..., "status": ..., "body": <the JSON body>}.
Paths:
  /slack/..., /hook/...  answer 200
  /flaky/...             answer 500 (with Retry-After: 1) to the first POST
                         of each path, 200 afterwards
  /hang/...              never answer (hold the connection for 120 s)
  /gone/...              answer 404 (not retried)
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port_file, log_file = sys.argv[1], sys.argv[2]
lock = threading.Lock()
seen = set()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n)
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"unparsable": raw.decode("utf-8", "replace")}
        status = 200
        if self.path.startswith("/hang/"):
            time.sleep(120)
            return
        with lock:
            if self.path.startswith("/flaky/") and self.path not in seen:
                seen.add(self.path)
                status = 500
            elif self.path.startswith("/gone/"):
                status = 404
            with open(log_file, "a") as f:
                f.write(json.dumps({"path": self.path, "status": status,
                                    "content_type": self.headers.get("Content-Type"),
                                    "body": body}) + "\n")
        out = b"ok" if status == 200 else b"no"
        self.send_response(status)
        if status == 500:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
srv.daemon_threads = True
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(port_file + ".tmp", port_file)
srv.serve_forever()
