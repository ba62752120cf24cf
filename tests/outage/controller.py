#!/usr/bin/python3
"""A controller under an outage (ctest outage.controller): environments
of ConfigMaps in sync on the fake Kubernetes API server, which is killed
with SIGKILL. The controller must say once per environment that the API
server is unreachable and that it backs off (no flood of failures),
show it in /api/v1/status and /metrics, and once the server is back on
the same port (empty: it keeps nothing) probe it, plan again and put
every ConfigMap back.

  controller.py RECONCILE_BINARY FAKE_KUBE_BINARY
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import outage  # noqa: E402
from outage import check  # noqa: E402

TOKEN = "ctl-token-outage-3f1c"
NENV, PER = 2, 20


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    rc_bin, fake_bin = os.path.realpath(sys.argv[1]), os.path.realpath(sys.argv[2])
    work = tempfile.mkdtemp(prefix="rc-outage-ctl-")
    fake = outage.Fake(fake_bin, os.path.join(work, "fake"), os.path.join(work, "fake.log"))
    ctl = None
    log_path = os.path.join(work, "controller.log")
    try:
        fake.start()
        cfg = os.path.join(work, "cfg")
        outage.write_kube_maps(cfg, NENV, PER, "outage", "{ drift: heal, force_conflicts: true }")
        env = dict(os.environ, KUBECONFIG=os.path.join(fake.dir, "kubeconfig"), NO_COLOR="1",
                   XDG_CACHE_HOME=os.path.join(work, "cache"),
                   RECONCILE_CONTROLLER_TOKEN=TOKEN, RECONCILE_KUBE_WATCH_TIMEOUT="5")
        hport = free_port()
        ctl = subprocess.Popen([rc_bin, "controller", cfg, "--listen", "127.0.0.1:%d" % hport,
                                "--poll", "1s", "--resync", "3s", "--state-dir",
                                os.path.join(work, "state"), "--log-format", "json"],
                               env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT)

        def get(path):
            req = urllib.request.Request("http://127.0.0.1:%d%s" % (hport, path),
                                         headers={"Authorization": "Bearer " + TOKEN})
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    return r.read().decode()
            except OSError:
                return ""

        def status():
            try:
                return {e["name"]: e for e in json.loads(get("/api/v1/status"))["environments"]}
            except (ValueError, KeyError):
                return {}

        def wait_for(seconds, cond):
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                if cond():
                    return True
                time.sleep(0.2)
            return False

        def log_lines():
            out = []
            for line in open(log_path, errors="replace"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    out.append({"level": "?", "message": line.strip()})
            return out

        def in_sync():
            st = status()
            return len(st) == NENV and all(e["state"] == "in-sync" for e in st.values())

        check(wait_for(120, in_sync), "the controller applies the environments",
              json.dumps(status()), "".join(open(log_path).readlines()[-20:]))
        check(fake.count_maps("bench-") == NENV * PER, "the ConfigMaps are on the API server")

        before = len(log_lines())
        fake.kill()
        t_kill = time.monotonic()
        origin = "https://127.0.0.1:%d" % fake.port

        def backed_off():
            st = status()
            return len(st) == NENV and all(
                (e.get("unreachable") or {}).get("endpoint") == origin and e["backoff_seconds"] > 0
                for e in st.values())

        ok_backoff = wait_for(60, backed_off)
        print("# every environment backed off %.1f s after the kill" % (time.monotonic() - t_kill))
        check(ok_backoff, "status: each environment names the unreachable endpoint and its backoff",
              json.dumps(status(), indent=1))
        st = status()
        check(all((e.get("unreachable") or {}).get("service") == "the Kubernetes API server"
                  and (e.get("unreachable") or {}).get("since") for e in st.values()),
              "status: the service and since when", json.dumps(st, indent=1))
        metrics = get("/metrics")
        check('reconcile_endpoint_unreachable{endpoint="%s"} 1' % origin in metrics,
              "metrics: reconcile_endpoint_unreachable is 1 for the endpoint",
              "\n".join(ln for ln in metrics.splitlines() if "unreachable" in ln))
        check(all(any(ln.startswith('reconcile_backoff_seconds{environment="%s"} ' % name)
                      and not ln.endswith(" 0") for ln in metrics.splitlines()) for name in st),
              "metrics: reconcile_backoff_seconds for each environment",
              "\n".join(ln for ln in metrics.splitlines() if "backoff" in ln))

        # a while down: the probes say nothing
        time.sleep(12)
        during = log_lines()[before:]
        backoff_msgs = [m for m in during if "backing off" in m.get("message", "")]
        noisy = [m for m in during if m.get("level") in ("warn", "warning", "error")]
        print("# %d log lines in %.0f s of outage, %d warnings or errors, %d backoff messages"
              % (len(during), time.monotonic() - t_kill, len(noisy), len(backoff_msgs)))
        check(len(backoff_msgs) == NENV and all(
            "the Kubernetes API server at %s is unreachable since" % origin in m["message"]
            for m in backoff_msgs),
            "one backoff message per environment, naming the API server",
            "\n".join(m.get("message", "") for m in backoff_msgs))
        check(len(noisy) <= 8 * NENV, "no flood of failures while it is down (%d)" % len(noisy),
              "\n".join(m.get("message", "")[:200] for m in noisy[-30:]))

        # back, on the same port, empty
        before = len(log_lines())
        fake.start()
        t_back = time.monotonic()

        def resumed():
            st = status()
            return (in_sync() and all(e.get("unreachable") is None for e in st.values())
                    and fake.count_maps("bench-") == NENV * PER)

        ok_resumed = wait_for(90, resumed)
        print("# resumed and converged %.1f s after the API server came back"
              % (time.monotonic() - t_back))
        check(ok_resumed, "the controller resumes and converges once the API server answers",
              json.dumps(status(), indent=1), "".join(open(log_path).readlines()[-20:]))
        after = log_lines()[before:]
        check(any("answers again" in m.get("message", "") for m in after),
              "the log says the endpoint answers again")
        metrics = get("/metrics")
        check('reconcile_endpoint_unreachable{endpoint="%s"} 0' % origin in metrics,
              "metrics: the endpoint is reachable again")
        outage.no_sanitizer_report(open(log_path, errors="replace").read(), "the controller's log")
    finally:
        if ctl and ctl.poll() is None:
            ctl.send_signal(signal.SIGTERM)
            try:
                ctl.wait(timeout=30)
            except subprocess.TimeoutExpired:
                ctl.kill()
                ctl.wait()
        outage.finish(work, fake)


if __name__ == "__main__":
    outage.run(main)
