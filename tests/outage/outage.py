"""What the outage tests share: the fake Kubernetes API server started,
killed and started again on the same port, and a configuration of many
ConfigMaps (tests/bench/benchlib.py's)."""
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
from benchlib import write_kube_maps  # noqa: E402,F401

failures = 0


def ok(what):
    print("ok - %s" % what)
    sys.stdout.flush()


def bad(what, *detail):
    global failures
    failures += 1
    print("not ok - %s" % what)
    for d in detail:
        for line in str(d).splitlines()[-40:]:
            print("#   %s" % line)
    sys.stdout.flush()


def check(cond, what, *detail):
    if cond:
        ok(what)
    else:
        bad(what, *detail)
    return cond


def no_sanitizer_report(text, what):
    """A sanitizer build prints its findings; the exit status of a run
    that fails anyway would not show them."""
    hit = [ln for ln in text.splitlines() if "Sanitizer" in ln or "runtime error:" in ln]
    check(not hit, "no sanitizer report in %s" % what, "\n".join(hit[:10]))


class Fake:
    """rc_fake_kube in dir; start() again after kill() reuses the port."""

    def __init__(self, binary, dir, log):
        self.binary, self.dir, self.log = binary, dir, log
        self.port = None
        self.proc = None
        os.makedirs(dir, exist_ok=True)

    def start(self):
        ready = os.path.join(self.dir, "ready")
        if os.path.exists(ready):
            os.unlink(ready)
        args = [self.binary, "--dir", self.dir, "--controller-delay-ms", "5"]
        if self.port:
            args += ["--port", str(self.port)]
        end = time.monotonic() + 30
        while True:
            self.proc = subprocess.Popen(args, stdout=open(self.log, "a"), stderr=subprocess.STDOUT)
            while time.monotonic() < end and not os.path.exists(ready) and self.proc.poll() is None:
                time.sleep(0.05)
            if os.path.exists(ready):
                break
            # the port may still be held for a moment after a kill
            if time.monotonic() >= end:
                raise SystemExit("the fake API server did not start: see %s" % self.log)
            time.sleep(0.5)
        self.port = int(open(os.path.join(self.dir, "port")).read().strip())
        self.ctx = ssl.create_default_context(cafile=os.path.join(self.dir, "ca.pem"))

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()

    def api(self, method, path, body=None):
        req = urllib.request.Request(
            "https://127.0.0.1:%d%s" % (self.port, path), method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": "Bearer fake-admin-token",
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=self.ctx, timeout=10) as r:
            return json.loads(r.read() or b"null")

    def count_maps(self, prefix):
        n = 0
        for ns in self.api("GET", "/api/v1/namespaces")["items"]:
            name = ns["metadata"]["name"]
            if name.startswith(prefix):
                n += len(self.api("GET", "/api/v1/namespaces/%s/configmaps" % name)["items"])
        return n


def finish(work, fake):
    """Stops the fake and removes work (kept with KEEP=1)."""
    fake.stop()
    if os.environ.get("KEEP"):
        print("# kept %s" % work)
    else:
        shutil.rmtree(work, ignore_errors=True)


def run(main):
    main()
    sys.exit(1 if failures else 0)
