#!/usr/bin/python3
"""`reconcile controller` against its memory and speed goals (issue 11):
a configuration repository served by a real `git daemon`, the local
driver (the quickstart: two Python services and PostgreSQL) and, for the
large case, the fake Kubernetes API server (rc_fake_kube).

Prints each figure beside its goal:
  quickstart  idle RSS once applied and settled (<= 32 MiB);
              push webhook -> the apply's first journaled action, p50 and
              p99 over PUSHES pushes (<= 1 s);
              RSS after 10 and after CYCLES no-change resyncs (--resync
              0.2s; within 5%);
  kubernetes  ENVS x PER ConfigMaps (default 100 x 100): steady-state RSS
              after the first apply (<= 64 MiB); CPU of the no-change
              cycle a watch event causes (<= 100 ms); LIST requests in
              steady state (0; the fake counts them).
A benchmark, not a test: it never fails on a figure. With --check it
exits 1 when a step does not happen (the controller never settles, a push
is never applied), which is what the ctest smoke entry checks.

  bench_controller.py RECONCILE FAKE_KUBE SOURCE_ROOT [--pushes N]
      [--cycles N] [--envs N] [--per N] [--skip-kube] [--skip-local] [--check]
"""
import argparse
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import hmac
import hashlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import wait_file, write_kube_maps  # noqa: E402

TOKEN = "bench-ctl-token-5d1e"
SECRET = "bench-hook-secret-a7c2"
MiB = 1024.0 * 1024.0
failures = []


def free_ports(n):
    """n consecutive free ports below the ephemeral range."""
    for _ in range(200):
        p = random.randrange(20000, 32000 - n)
        socks = []
        try:
            for i in range(n):
                s = socket.socket()
                s.bind(("127.0.0.1", p + i))
                socks.append(s)
            return p
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    sys.exit("bench_controller: no free ports")


def rss(pid):
    """Resident set size of pid in bytes (VmRSS)."""
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def cpu(pid):
    """User + system CPU seconds of pid (all its threads)."""
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def figure(name, value, goal, met):
    print("  %-56s %20s   goal %-10s %s" % (name, value, goal, "met" if met else "NOT MET"))
    sys.stdout.flush()


def wait_until(seconds, pred, step=0.05):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


class Git:
    """A repository under work/git served by `git daemon` on loopback."""

    def __init__(self, work):
        self.base = os.path.join(work, "git")
        os.makedirs(self.base)
        self.port = free_ports(1)
        self.proc = None

    def repo(self, name):
        path = os.path.join(self.base, name)
        os.makedirs(path, exist_ok=True)
        subprocess.run(["git", "-C", path, "init", "-q", "-b", "main"], check=True)
        return path

    def commit(self, path, msg):
        subprocess.run(["git", "-C", path, "add", "-A"], check=True)
        subprocess.run(["git", "-C", path, "-c", "user.name=b", "-c", "user.email=b@e",
                        "commit", "-q", "-m", msg], check=True)
        return subprocess.run(["git", "-C", path, "rev-parse", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()

    def start(self):
        self.proc = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--base-path=" + self.base, "--export-all",
             "--listen=127.0.0.1", "--port=%d" % self.port, self.base],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def url(self, name):
        return "git://127.0.0.1:%d/%s" % (self.port, name)


class Controller:
    def __init__(self, rc_bin, url, env, log, args, quiet=False):
        self.port = free_ports(1)
        self.api = "http://127.0.0.1:%d" % self.port
        self.logf = open(log, "w")
        self.log = log
        self.proc = subprocess.Popen(
            [rc_bin] + (["--log-level", "warn"] if quiet else []) + ["controller", url, "--listen", "127.0.0.1:%d" % self.port] + args,
            env=env, stdout=self.logf, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid

    def get(self, path, timeout=5):
        req = urllib.request.Request(self.api + path,
                                     headers={"Authorization": "Bearer " + TOKEN})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.read().decode()
        except (urllib.error.URLError, OSError):
            return None

    def status(self):
        s = self.get("/api/v1/status")
        return json.loads(s) if s else None

    def runs(self, env=None):
        """reconcile_runs_total summed (for env, or all), by result."""
        m = self.get("/metrics") or ""
        out = {}
        for line in m.splitlines():
            if not line.startswith("reconcile_runs_total{"):
                continue
            labels, v = line.rsplit(" ", 1)
            if env and 'environment="%s"' % env not in labels:
                continue
            res = labels.split('result="')[1].split('"')[0]
            out[res] = out.get(res, 0) + int(float(v))
        return out

    def all_in_sync(self, commit=None):
        s = self.status()
        if not s or not s.get("environments"):
            return False
        return all(e["state"] in ("in-sync", "drifted") and
                   (commit is None or e["commit"] == commit) for e in s["environments"])

    def hook(self, body):
        sig = hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
        req = urllib.request.Request(
            self.api + "/hooks/github", data=body.encode(), method="POST",
            headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sig,
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()

    def tail(self, n=10):
        try:
            return "".join(open(self.log).readlines()[-n:])
        except OSError:
            return ""


def first_action_in(runs_dir, seen, sha):
    """A journal not in seen holding an intent and the commit sha."""
    try:
        names = os.listdir(runs_dir)
    except OSError:
        return False
    for n in names:
        if not n.endswith(".journal") or n in seen:
            continue
        try:
            text = open(os.path.join(runs_dir, n)).read()
        except OSError:
            continue
        if '"type":"intent"' in text and sha in text:
            return True
    return False


def local_part(a, root, work, git, env):
    """The quickstart: idle RSS, webhook latency, RSS over no-change cycles."""
    repo = git.repo("quickstart")
    src = os.path.join(root, "examples/local-quickstart")
    for name in os.listdir(src):
        if name in ("try", "README.md"):
            continue
        s = os.path.join(src, name)
        (shutil.copytree if os.path.isdir(s) else shutil.copy)(s, os.path.join(repo, name))
    base = free_ports(2)
    yaml_path = os.path.join(repo, "reconcile.yaml")
    text = open(yaml_path).read()
    text = (text.replace("project: quickstart", "project: benchctl%d" % os.getpid())
            .replace('"5000"', '"%d"' % base).replace("port: 5000", "port: %d" % base)
            .replace('"8080"', '"%d"' % (base + 1)).replace("port: 8080", "port: %d" % (base + 1)))
    open(yaml_path, "w").write(text)
    sha = git.commit(repo, "quickstart")
    runs_dir = os.path.join(env["RECONCILE_STATE_DIR"], "runs")

    print("quickstart (local driver: api, frontend, PostgreSQL) from %s" % git.url("quickstart"))
    ctl = Controller(a.rc, git.url("quickstart"), env, os.path.join(work, "ctl-local.log"),
                     ["--poll", "1h", "--resync", "10m", "--log-format", "json"])
    try:
        if not wait_until(180, lambda: ctl.all_in_sync(sha), 0.2):
            failures.append("the quickstart was never applied: " + ctl.tail())
            return
        time.sleep(a.settle)
        idle = rss(ctl.pid)
        figure("idle RSS, applied and settled", "%.1f MiB" % (idle / MiB), "<= 32 MiB",
               idle <= 32 * MiB)

        # pushes announced by a GitHub webhook; polling is an hour away
        lat = []
        for i in range(a.pushes):
            open(yaml_path, "w").write(text.replace("APP_ENV: development",
                                                    "APP_ENV: push-%03d" % i))
            sha = git.commit(repo, "push %d" % i)
            seen = set(os.listdir(runs_dir)) if os.path.isdir(runs_dir) else set()
            t0 = time.monotonic()
            code = ctl.hook(json.dumps({"ref": "refs/heads/main", "after": sha}))
            ok = wait_until(10, lambda: first_action_in(runs_dir, seen, sha), 0.005)
            if code != 202 or not ok:
                failures.append("push %d: webhook %d, no action within 10 s" % (i, code))
                break
            lat.append(time.monotonic() - t0)
            if not wait_until(60, lambda: ctl.all_in_sync(sha), 0.05):
                failures.append("push %d was not applied: %s" % (i, ctl.tail()))
                break
        if lat:
            p50, p99 = pct(lat, 50), pct(lat, 99)
            figure("webhook -> first action, p50 (%d pushes)" % len(lat),
                   "%.0f ms" % (p50 * 1000), "<= 1 s", p50 <= 1.0)
            figure("webhook -> first action, p99 (max %.0f ms)" % (max(lat) * 1000),
                   "%.0f ms" % (p99 * 1000), "<= 1 s", p99 <= 1.0)
    finally:
        ctl.stop()

    # no-change resyncs every 0.2 s
    ctl = Controller(a.rc, git.url("quickstart"), env, os.path.join(work, "ctl-resync.log"),
                     ["--poll", "1h", "--resync", "0.2s", "--log-format", "json"],
                     quiet=True)
    try:
        def cycles():
            return ctl.runs("dev").get("unchanged", 0)
        marks = {}
        t0 = time.monotonic()
        for want in (10, a.cycles):
            n = wait_until(max(60, want * 0.6), lambda: cycles() >= want and cycles(), 0.1)
            if not n:
                failures.append("fewer than %d no-change cycles: %s" % (want, ctl.tail()))
                return
            marks[want] = (rss(ctl.pid), n, time.monotonic() - t0, cpu(ctl.pid))
        r10, rN = marks[10][0], marks[a.cycles][0]
        growth = (rN - r10) / float(r10)
        n1, t1, c1 = marks[10][1:]
        n2, t2, c2 = marks[a.cycles][1:]
        print("  %d no-change cycles in %.0f s; %.1f ms CPU a cycle" % (
            n2, t2, 1000.0 * (c2 - c1) / max(1, n2 - n1)))
        figure("RSS after 10 no-change cycles", "%.1f MiB" % (r10 / MiB), "", True)
        figure("RSS after %d no-change cycles" % a.cycles, "%.1f MiB (%+.1f%%)" % (
            rN / MiB, growth * 100), "within 5%", abs(growth) <= 0.05)
    finally:
        ctl.stop()


def kube_part(a, root, work, git, env):
    """ENVS x PER ConfigMaps through the controller and the fake API server."""
    fake_dir = os.path.join(work, "fake")
    os.mkdir(fake_dir)
    fake = subprocess.Popen([a.fake, "--dir", fake_dir, "--controller-delay-ms", "5"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ctl = None
    try:
        wait_file(os.path.join(fake_dir, "ready"), fake, "the fake Kubernetes API server")
        port = open(os.path.join(fake_dir, "port")).read().strip()
        tls = ssl.create_default_context(cafile=os.path.join(fake_dir, "ca.pem"))

        def api(method, path, body=None, ctype="application/json"):
            req = urllib.request.Request(
                "https://127.0.0.1:%s%s" % (port, path), method=method,
                data=json.dumps(body).encode() if body is not None else None,
                headers={"Authorization": "Bearer fake-admin-token", "Content-Type": ctype})
            with urllib.request.urlopen(req, context=tls) as r:
                return json.loads(r.read() or b"null")

        repo = git.repo("kube")
        write_kube_maps(repo, a.envs, a.per, "benchctl",
                        "{ prune: true, force_conflicts: true, drift: report }")
        sha = git.commit(repo, "maps")
        kenv = dict(env, KUBECONFIG=os.path.join(fake_dir, "kubeconfig"),
                    RECONCILE_STATE_DIR=os.path.join(work, "state-kube"))
        print("kubernetes: %d environments x %d ConfigMaps = %d objects in %d namespaces"
              % (a.envs, a.per, a.envs * a.per, a.envs))
        t0 = time.monotonic()
        ctl = Controller(a.rc, git.url("kube"), kenv, os.path.join(work, "ctl-kube.log"),
                         ["--poll", "1h", "--resync", "10m", "--log-format", "json"],
                         quiet=True)
        if not wait_until(600, lambda: ctl.all_in_sync(sha), 0.5):
            failures.append("the %d objects were never applied: %s" % (
                a.envs * a.per, ctl.tail()))
            return
        print("  first apply of all through the controller: %.1f s, peak RSS so far "
              "%.1f MiB" % (time.monotonic() - t0, peak_rss(ctl.pid) / MiB))
        # the watches start after each environment's first good cycle
        time.sleep(a.settle + 5)
        api("POST", "/fake/stats/reset")
        steady = rss(ctl.pid)
        figure("steady-state RSS after the first apply", "%.1f MiB" % (steady / MiB),
               "<= 64 MiB", steady <= 64 * MiB)

        # steady state: nothing changes; the watches are open
        time.sleep(a.settle * 2)
        quiet = api("GET", "/fake/stats")
        lists = quiet.get("by_verb", {}).get("LIST", 0)
        figure("LIST requests in steady state (%d s)" % (a.settle * 2), "%d" % lists, "0",
               lists == 0)
        print("    the fake served: %s" % (", ".join(
            "%s %d" % kv for kv in sorted(quiet.get("by_verb", {}).items()) if kv[1])
            or "nothing"))

        # watch events: a ConfigMap edited by another field manager; the
        # environment (drift: report) is planned again and applies nothing
        api("POST", "/fake/stats/reset")
        costs = []
        for k in range(a.events):
            e = "bench-b%03d" % (k % a.envs)
            before = sum(ctl.runs(e).values())
            c0 = cpu(ctl.pid)
            api("PATCH", "/api/v1/namespaces/%s/configmaps/map-%03d?fieldManager=kubectl-edit"
                % (e, k % a.per), {"data": {"index": "drifted-%d" % k}},
                "application/merge-patch+json")
            if not wait_until(30, lambda: sum(ctl.runs(e).values()) > before, 0.02):
                failures.append("a watch event in %s planned nothing: %s" % (e, ctl.tail()))
                break
            costs.append(cpu(ctl.pid) - c0)
            time.sleep(0.5)
        if costs:
            figure("CPU of the cycle after a watch event (median of %d)" % len(costs),
                   "%.0f ms" % (pct(costs, 50) * 1000), "<= 100 ms",
                   pct(costs, 50) <= 0.1)
            st = api("GET", "/fake/stats")
            print("    %d watch events (each a PATCH by the test); the fake served: %s" % (
                len(costs), ", ".join("%s %d" % kv for kv in sorted(
                    st.get("by_verb", {}).items()) if kv[1])))
        after = rss(ctl.pid)
        print("  RSS after the watch events: %.1f MiB; peak %.1f MiB" % (
            after / MiB, peak_rss(ctl.pid) / MiB))
    finally:
        if ctl:
            ctl.stop()
        fake.terminate()
        fake.wait()


def peak_rss(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("rc")
    p.add_argument("fake")
    p.add_argument("root")
    p.add_argument("--pushes", type=int, default=50)
    p.add_argument("--cycles", type=int, default=1000)
    p.add_argument("--envs", type=int, default=100)
    p.add_argument("--per", type=int, default=100)
    p.add_argument("--events", type=int, default=5)
    p.add_argument("--settle", type=int, default=5)
    p.add_argument("--skip-kube", action="store_true")
    p.add_argument("--skip-local", action="store_true")
    p.add_argument("--check", action="store_true")
    a = p.parse_args()
    a.rc, a.fake, a.root = (os.path.realpath(x) for x in (a.rc, a.fake, a.root))
    signal.signal(signal.SIGTERM, lambda *x: sys.exit(143))
    work = tempfile.mkdtemp(prefix="rc-bench-ctl-")
    git = Git(work)
    env = dict(os.environ, RECONCILE_STATE_DIR=os.path.join(work, "state"),
               XDG_CACHE_HOME=os.path.join(work, "cache"), NO_COLOR="1",
               RECONCILE_CONTROLLER_TOKEN=TOKEN, RECONCILE_WEBHOOK_SECRET=SECRET)
    try:
        git.repo("probe")
        git.start()
        wait_until(10, lambda: subprocess.run(
            ["git", "ls-remote", git.url("probe")], capture_output=True).returncode == 0, 0.1)
        if not a.skip_local:
            local_part(a, a.root, work, git, env)
        if not a.skip_kube:
            kube_part(a, a.root, work, git, env)
    finally:
        if not a.skip_local:
            subprocess.run([a.rc, "destroy", git.url("quickstart"), "--auto-approve"],
                           env=env, capture_output=True)
        if git.proc:
            git.proc.terminate()
            git.proc.wait()
        if os.environ.get("KEEP"):
            print("kept " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    if failures:
        print("bench_controller: " + "; ".join(failures))
        if a.check:
            sys.exit(1)


if __name__ == "__main__":
    main()
