#!/usr/bin/python3
"""The Kubernetes driver against the fake API server: 10,000 ConfigMaps in
100 namespaces (100 environments of 100 raw ConfigMaps each).

Prints, for each step, the wall time, the HTTP requests the fake served
(by verb) and reconcile's peak RSS:
  first apply of all; plan with no changes; plan with 1% drift;
then the same three with 5 ms of latency injected into every request.
A benchmark, not a test: it prints figures and never fails on time.

  bench_kube.py RECONCILE_BINARY FAKE_KUBE_BINARY [ENVS] [PER_ENV]
"""
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import write_kube_maps  # noqa: E402


def main():
    rc_bin, fake_bin = os.path.realpath(sys.argv[1]), os.path.realpath(sys.argv[2])
    nenv = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    per = int(sys.argv[4]) if len(sys.argv) > 4 else 100
    work = tempfile.mkdtemp(prefix="rc-bench-kube-")
    fake_dir = os.path.join(work, "fake")
    os.mkdir(fake_dir)
    fake = subprocess.Popen([fake_bin, "--dir", fake_dir, "--controller-delay-ms", "5"])
    try:
        for _ in range(200):
            if os.path.exists(os.path.join(fake_dir, "ready")):
                break
            time.sleep(0.05)
        port = open(os.path.join(fake_dir, "port")).read().strip()
        ctx = ssl.create_default_context(cafile=os.path.join(fake_dir, "ca.pem"))

        def api(method, path, body=None, ctype="application/json"):
            req = urllib.request.Request(
                "https://127.0.0.1:%s%s" % (port, path), method=method,
                data=json.dumps(body).encode() if body is not None else None,
                headers={"Authorization": "Bearer fake-admin-token",
                         "Content-Type": ctype})
            with urllib.request.urlopen(req, context=ctx) as r:
                return json.loads(r.read() or b"null")

        cfg = os.path.join(work, "cfg")
        write_kube_maps(cfg, nenv, per, "bench", "{ prune: true, force_conflicts: true }")
        env = dict(os.environ, KUBECONFIG=os.path.join(fake_dir, "kubeconfig"),
                   RECONCILE_STATE_DIR=os.path.join(work, "state"), NO_COLOR="1")

        def step(name, args, want):
            api("POST", "/fake/stats/reset")
            t0 = time.monotonic()
            p = subprocess.Popen([rc_bin] + args + [cfg], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            _, status, ru = os.wait4(p.pid, 0)
            wall = time.monotonic() - t0
            code = os.waitstatus_to_exitcode(status)
            err = p.stderr.read().decode(errors="replace")
            p.stderr.close()
            stats = api("GET", "/fake/stats")
            by = ", ".join("%s %d" % (k, v) for k, v in sorted(stats.get("by_verb", {}).items()) if v)
            print("%-34s %7.2f s  %6d requests (%s)  peak RSS %6.1f MiB%s" % (
                name, wall, stats.get("requests", 0), by, ru.ru_maxrss / 1024.0,
                "" if code == want else "  [exit %d, expected %d: %s]" % (code, want, err[-300:])))
            sys.stdout.flush()

        def drift():
            # 1%: one ConfigMap in each of the first nenv*per/100 slots
            n = max(1, nenv * per // 100)
            for k in range(n):
                e, i = k % nenv, (k // nenv) % per
                api("PATCH", "/api/v1/namespaces/bench-b%03d/configmaps/map-%03d?fieldManager=kubectl-edit"
                    % (e, i), {"data": {"index": "drifted"}}, "application/merge-patch+json")
            return n

        print("%d environments x %d ConfigMaps = %d objects in %d namespaces"
              % (nenv, per, nenv * per, nenv))
        for latency in (0, 5):
            api("POST", "/fake/faults", {"latency_ms": latency, "rules": []})
            tag = " (+%d ms/request)" % latency if latency else ""
            if latency:
                step("destroy all" + tag, ["destroy", "--auto-approve"], 0)
            step("first apply of all" + tag, ["apply", "--auto-approve"], 0)
            step("plan, no changes" + tag, ["plan"], 0)
            api("DELETE", "/fake/faults")
            n = drift()
            api("POST", "/fake/faults", {"latency_ms": latency, "rules": []})
            step("plan, 1%% drift (%d)%s" % (n, tag), ["plan"], 2)
            step("apply the drift back" + tag, ["apply", "--auto-approve"], 0)
    finally:
        fake.terminate()
        fake.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
