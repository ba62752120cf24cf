#!/usr/bin/python3
"""An outage stops a run fast (ctest outage.kube): 3,000 ConfigMaps over
30 namespaces applied to the fake Kubernetes API server, which is killed
with SIGKILL once the apply is under way. The apply must end within a
bounded time with one "... is unreachable since ...: N actions not
attempted" line instead of a failure per action; history shows the run
failed with the actions skipped. The fake is then started again on the
same port (empty: it keeps nothing) and the next apply converges to a
clean plan. Prints the figures docs/reliability.md ("Outages") quotes.

  kube.py RECONCILE_BINARY FAKE_KUBE_BINARY [ENVS] [PER_ENV]
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import outage  # noqa: E402
from outage import bad, check  # noqa: E402

BOUND_S = 30  # the apply ends within this many seconds of the kill


def main():
    rc_bin, fake_bin = os.path.realpath(sys.argv[1]), os.path.realpath(sys.argv[2])
    nenv = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    per = int(sys.argv[4]) if len(sys.argv) > 4 else 100
    work = tempfile.mkdtemp(prefix="rc-outage-kube-")
    fake = outage.Fake(fake_bin, os.path.join(work, "fake"), os.path.join(work, "fake.log"))
    try:
        fake.start()
        cfg = os.path.join(work, "cfg")
        outage.write_kube_maps(cfg, nenv, per, "outage", "{ prune: true, force_conflicts: true }")
        env = dict(os.environ, KUBECONFIG=os.path.join(fake.dir, "kubeconfig"),
                   RECONCILE_STATE_DIR=os.path.join(work, "state"), NO_COLOR="1",
                   XDG_CACHE_HOME=os.path.join(work, "cache"))
        total = nenv * (per + 1)
        # a little latency, so that the apply is still going when the
        # server dies whatever the machine's speed
        fake.api("POST", "/fake/faults", {"latency_ms": 5, "rules": []})
        print("# %d environments x %d ConfigMaps (+ a Namespace each) = %d actions"
              % (nenv, per, total))

        out_path = os.path.join(work, "apply.out")
        t0 = time.monotonic()
        p = subprocess.Popen([rc_bin, "apply", "--auto-approve", cfg], env=env,
                             stdout=open(out_path, "w"), stderr=subprocess.STDOUT)
        # kill the server once the apply is well under way: 100 actions
        # done (or 4 s after the first one)
        first_ok = None
        while p.poll() is None and time.monotonic() - t0 < 300:
            text = open(out_path, errors="replace").read()
            done = text.count(": ok (")
            if done and first_ok is None:
                first_ok = time.monotonic()
            if done >= 100 or (first_ok and time.monotonic() - first_ok >= 4):
                break
            time.sleep(0.05)
        if p.poll() is not None:
            bad("the apply is still running when the server is killed",
                open(out_path, errors="replace").read())
            return
        fake.kill()
        t_kill = time.monotonic()
        print("# killed the API server %.1f s after the apply started, %.1f s after its first action"
              % (t_kill - t0, t_kill - (first_ok or t_kill)))
        try:
            p.wait(timeout=240)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        stop_s = time.monotonic() - t_kill
        text = open(out_path, errors="replace").read()
        lines = text.splitlines()
        print("# the apply ended %.1f s after the kill (exit %d), printing %d lines"
              % (stop_s, p.returncode, len(lines)))
        check(p.returncode != 0, "the apply fails", text[-2000:])
        outage.no_sanitizer_report(text, "the apply's output")
        check(stop_s <= BOUND_S, "the apply ends within %d s of the kill (%.1f s)" % (BOUND_S, stop_s))
        # the one line (an action's own error may quote the cause too)
        msgs = [ln for ln in lines if re.search(r"is unreachable since .*not attempted$", ln)]
        m = re.search(r"^the Kubernetes API server at https://127\.0\.0\.1:%d is unreachable since "
                      r"\d\d:\d\d:\d\d: (\d+) actions? not attempted$" % fake.port,
                      msgs[0] if msgs else "")
        check(len(msgs) == 1 and m, "one line says the API server is unreachable, with the count",
              "\n".join(msgs[:10]) or text[-3000:])
        not_attempted = int(m.group(1)) if m else 0
        failed_lines = [ln for ln in lines if re.search(r": (failed|unknown) \(", ln)]
        oks = sum(1 for ln in lines if ": ok (" in ln)
        print("# %d ok, %d failed or unknown lines, %d actions not attempted"
              % (oks, len(failed_lines), not_attempted))
        check(not_attempted > 0 and not_attempted >= total - oks - 64,
              "the actions not started are counted as not attempted (%d)" % not_attempted)
        check(len(failed_lines) <= 32,
              "a few failures at most, not one per action (%d)" % len(failed_lines),
              "\n".join(failed_lines[:40]))
        check("cannot connect" not in text or text.count("cannot connect") <= 32,
              "no flood of 'cannot connect' (%d)" % text.count("cannot connect"))

        hist = json.loads(subprocess.run([rc_bin, "history", "--output", "json"], env=env,
                                         capture_output=True, text=True).stdout or "[]")
        last = hist[0] if hist else {}
        counts = last.get("counts", {})
        print("# history: %s, %s" % (last.get("status"), json.dumps(counts)))
        check(last.get("status") == "failed" and counts.get("skipped", 0) >= not_attempted
              and counts.get("ok", 0) + counts.get("failed", 0) + counts.get("skipped", 0)
              + counts.get("unknown", 0) == total and counts.get("pending", 0) == 0,
              "history: the run failed, every action accounted for, the not attempted as skipped",
              json.dumps(last))
        hist_txt = subprocess.run([rc_bin, "history"], env=env, capture_output=True, text=True).stdout
        check("%d skipped" % counts.get("skipped", -1) in hist_txt, "history's text shows the skipped count",
              hist_txt)
        journal = open(os.path.join(work, "state", "runs", last.get("id", "x") + ".journal")).read()
        check(journal.count("is unreachable since") >= not_attempted,
              "each action not attempted has its reason in the journal")

        # the server back on the same port, empty
        fake.start()
        t1 = time.monotonic()
        r = subprocess.run([rc_bin, "apply", "--auto-approve", cfg], env=env,
                           capture_output=True, text=True)
        again_s = time.monotonic() - t1
        applied = re.search(r"Applied: (\d+) action", r.stdout)
        print("# the next apply: exit %d, %s actions in %.1f s"
              % (r.returncode, applied.group(1) if applied else "?", again_s))
        check(r.returncode == 0, "the next apply succeeds", r.stdout[-2000:] + r.stderr[-2000:])
        r = subprocess.run([rc_bin, "plan", cfg], env=env, capture_output=True, text=True)
        check(r.returncode == 0 and "No changes" in r.stdout, "then the plan is clean",
              r.stdout[-2000:] + r.stderr[-1000:])
        n = fake.count_maps("bench-")
        check(n == nenv * per, "every ConfigMap is on the server (%d)" % n)
        fake.stop()
        other_endpoint_goes_on(rc_bin, fake_bin, work)
    finally:
        outage.finish(work, fake)


def other_endpoint_goes_on(rc_bin, fake_bin, work):
    """Two environments on two API servers; one server killed mid-apply:
    the other environment is applied whole, and the line names only the
    dead one."""
    per = 300
    fakes = [outage.Fake(fake_bin, os.path.join(work, "fake-" + n), os.path.join(work, "fake-%s.log" % n))
             for n in ("a", "b")]
    try:
        for f in fakes:
            f.start()
            f.api("POST", "/fake/faults", {"latency_ms": 20, "rules": []})
        cfg = os.path.join(work, "two")
        os.makedirs(os.path.join(cfg, "k8s"))
        with open(os.path.join(cfg, "k8s", "maps.yaml"), "w") as f:
            for i in range(per):
                f.write("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: map-%03d\n"
                        "data:\n  index: \"%d\"\n" % (i, i))
        with open(os.path.join(cfg, "reconcile.yaml"), "w") as f:
            f.write("version: 1\nproject: two\nenvironments:\n")
            for n, fk in zip(("a", "b"), fakes):
                f.write("  %s:\n    target: { driver: kubernetes, namespace: two-%s, kubeconfig: %s, "
                        "qps: 10000, burst: 10000 }\n    policy: { force_conflicts: true }\n"
                        "    resources: [ { file: k8s/maps.yaml } ]\n"
                        % (n, n, os.path.join(fk.dir, "kubeconfig")))
        env = dict(os.environ, RECONCILE_STATE_DIR=os.path.join(work, "state-two"), NO_COLOR="1",
                   XDG_CACHE_HOME=os.path.join(work, "cache"))
        out_path = os.path.join(work, "two.out")
        p = subprocess.Popen([rc_bin, "apply", "--auto-approve", cfg], env=env,
                             stdout=open(out_path, "w"), stderr=subprocess.STDOUT)
        t0 = time.monotonic()
        while p.poll() is None and time.monotonic() - t0 < 300:
            done = open(out_path, errors="replace").read()
            if done.count(" a/ConfigMap") >= 20:  # the executor starts with a's
                break
            time.sleep(0.05)
        if p.poll() is not None:
            bad("two endpoints: the apply is still running when one server is killed",
                open(out_path, errors="replace").read()[-2000:])
            return
        fakes[0].kill()
        try:
            p.wait(timeout=240)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        text = open(out_path, errors="replace").read()
        msgs = [ln for ln in text.splitlines() if re.search(r"is unreachable since .*not attempted$", ln)]
        b_maps = len(fakes[1].api("GET", "/api/v1/namespaces/two-b/configmaps")["items"])
        print("# two endpoints: one killed; the other environment got %d of %d ConfigMaps; %s"
              % (b_maps, per, msgs[0] if msgs else "no unreachable line"))
        check(len(msgs) == 1 and ":%d " % fakes[0].port in msgs[0],
              "two endpoints: one line, naming the dead server only", "\n".join(msgs) or text[-2000:])
        check(b_maps == per, "two endpoints: the environment on the other server is applied whole")
        bad_b = [ln for ln in text.splitlines()
                 if " b/" in ln and re.search(r": (failed|skipped|unknown)", ln)]
        check(not bad_b, "two endpoints: none of its actions failed or was skipped", "\n".join(bad_b[:10]))
    finally:
        for f in fakes:
            f.stop()


if __name__ == "__main__":
    outage.run(main)
