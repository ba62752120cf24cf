#!/usr/bin/python3
"""The ECS driver against the fake ECS (tests/fake/ecs): ENVS
environments (default 10), each its own cluster holding SERVICES Fargate
services (default 20): 200 services, 200 task-definition families.

The fake runs on loopback with AWS's pace: RegisterTaskDefinition held to
1 a second (burst 1), every other action 50 a second (burst 100), and
deployments that take time (--deployment-ms, default 3000; desired-count
changes 1000).

Prints, for each step, the wall time of the `reconcile` process, the API
requests the fake counted (/fake/stats), per operation, and reconcile's
peak RSS and CPU time (wait4), and the CPU time the fake spent serving them (to show
whether the fake, not reconcile, is what takes the time):
  (a) first apply of all;
  (b) plan with no changes;
  (c) one service's image changed, applied: exactly one new revision
      (RegisterTaskDefinition) and one UpdateService are expected, and
      the counts are printed;
  then a plan with no changes again.

A benchmark, not a test: it never fails on time. With --check it exits 1
when a step exits with an unexpected status or step (c) does not cost
exactly one RegisterTaskDefinition and one UpdateService (the ctest
smoke entry runs it so, small).

  bench_ecs.py RECONCILE_BINARY SOURCE_ROOT [--envs N] [--services N]
               [--deployment-ms MS] [--check]
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import run_measured, wait_file  # noqa: E402

PY = "/usr/bin/python3"
AKID, SECRET = "AKIDBENCHECS00001", "bench-ecs-secret-5d1e9a"
OP = "AmazonEC2ContainerServiceV20141113."
REGISTER_SPACING_S = 1.2  # drivers/ecs.c spaces RegisterTaskDefinition so
CALLS_PER_S, CALLS_BURST = 20, 40  # and holds every other call to this budget


def cpu_s(pid):
    """user + system CPU seconds of a live process (/proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def image(env, svc, tag):
    return "123456789012.dkr.ecr.us-east-1.amazonaws.com/%s/%s:%s" % (env, svc, tag)


def config(envs, services):
    out = ["version: 1", "project: bench", "environments:"]
    for e in range(envs):
        env = "e%02d" % e
        out += ["  %s:" % env,
                "    target:",
                "      driver: ecs",
                "      region: us-east-1",
                "      cluster: bench-%s" % env,
                "      launch_type: FARGATE",
                "      subnets: [subnet-0a1b2c3d4e5f6%04d]" % e,
                "      security_groups: [sg-0d1e2f3a4b5c6%04d]" % e,
                "      assign_public_ip: false",
                "      execution_role_arn: arn:aws:iam::123456789012:role/bench-exec",
                "    config:",
                "      LOG_LEVEL: info",
                "      ENVIRONMENT: %s" % env,
                "    services:"]
        for s in range(services):
            svc = "s%02d" % s
            out += ["      %s:" % svc,
                    '        image: "%s"' % image(env, svc, "1.0.0"),
                    "        replicas: %d" % (1 + s % 3),
                    "        port: 8080",
                    "        cpu: 0.25",
                    "        memory: 512Mi",
                    "        env: { ROLE: %s }" % svc,
                    "        health:",
                    "          command: [/bin/check]",
                    "          interval: 15s"]
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("reconcile")
    ap.add_argument("root")
    ap.add_argument("--envs", type=int, default=10)
    ap.add_argument("--services", type=int, default=20)
    ap.add_argument("--deployment-ms", type=int, default=3000)
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    rc_bin, root = os.path.realpath(a.reconcile), os.path.realpath(a.root)
    fake_py = os.path.join(root, "tests/fake/ecs/fake_ecs.py")
    if not os.path.exists(fake_py):
        sys.exit("bench_ecs: %s is missing" % fake_py)
    # a SIGTERM (a ctest timeout, ^C) still stops what was started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = tempfile.mkdtemp(prefix="rc-bench-ecs-")
    fake = None
    failures = []
    try:
        port_file = os.path.join(work, "fake.port")
        fake = subprocess.Popen(
            [PY, fake_py, "--credentials", "%s:%s" % (AKID, SECRET), "--port-file", port_file,
             "--rate", "ecs:RegisterTaskDefinition=1:1", "--rate", "*=50:100",
             "--deployment-ms", str(a.deployment_ms),
             "--scale-ms", str(max(1, a.deployment_ms // 3))],
            stdout=subprocess.DEVNULL)
        base = "http://127.0.0.1:%s" % wait_file(port_file, fake, "the fake ECS")

        def fake_api(method, path):
            req = urllib.request.Request(base + path, method=method)
            with urllib.request.urlopen(req) as resp:
                return json.loads(resp.read() or b"null")

        cfg = os.path.join(work, "cfg")
        os.makedirs(cfg)
        yaml = os.path.join(cfg, "reconcile.yaml")
        with open(yaml, "w") as f:
            f.write(config(a.envs, a.services))
        env = dict(os.environ, RECONCILE_STATE_DIR=os.path.join(work, "state"),
                   XDG_CACHE_HOME=os.path.join(work, "cache"), HOME=os.path.join(work, "home"),
                   AWS_ACCESS_KEY_ID=AKID, AWS_SECRET_ACCESS_KEY=SECRET, AWS_REGION="us-east-1",
                   AWS_ENDPOINT_URL_ECS=base, AWS_ENDPOINT_URL_SECRETS_MANAGER=base,
                   NO_COLOR="1")
        for k in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
            env.pop(k, None)
        os.makedirs(env["HOME"])

        nsvc = a.envs * a.services
        print("%d environments (clusters) x %d services = %d services; fake: "
              "RegisterTaskDefinition 1/s (burst 1), others 50/s, deployments %d ms"
              % (a.envs, a.services, nsvc, a.deployment_ms))
        print("%-34s %8s %9s %10s %8s %9s" % ("step", "wall", "requests", "peak RSS", "CPU",
                                              "fake CPU"))

        def step(name, argv, want):
            fake_api("POST", "/fake/stats/reset")
            fake_cpu = cpu_s(fake.pid)
            out, code, wall, ru = run_measured([rc_bin] + argv + [cfg], env)
            stats = fake_api("GET", "/fake/stats")
            total = stats.get("total", 0)
            print("%-34s %7.2fs %9d %6.1f MiB %7.2fs %8.2fs%s" % (
                name, wall, total, ru.ru_maxrss / 1024.0, ru.ru_utime + ru.ru_stime,
                cpu_s(fake.pid) - fake_cpu,
                "" if code == want else "  [exit %d, expected %d]" % (code, want)))
            ops = sorted(stats.get("requests", {}).items(), key=lambda kv: (-kv[1], kv[0]))
            print("    " + ", ".join("%s %d" % (k.replace(OP, ""), n) for k, n in ops))
            if code != want:
                print("    " + "\n    ".join(out.strip().splitlines()[-12:]))
                failures.append("%s exited %d, expected %d" % (name, code, want))
            sys.stdout.flush()
            return wall, stats.get("requests", {})

        def revisions():
            return [t["taskDefinitionArn"] for t in fake_api("GET", "/fake/state")["task_definitions"]]

        def budget(ops):
            n = sum(v for k, v in ops.items() if not k.endswith("RegisterTaskDefinition"))
            print("    other calls: (%d - %d burst) / %d a second = %.1f s at least"
                  % (n, CALLS_BURST, CALLS_PER_S, max(0, n - CALLS_BURST) / CALLS_PER_S))

        wall, ops = step("(a) first apply of all", ["apply", "--auto-approve"], 0)
        regs = ops.get(OP + "RegisterTaskDefinition", 0)
        print("    RegisterTaskDefinition: %d calls x %.1f s spacing = %.0f s of %.0f s wall"
              % (regs, REGISTER_SPACING_S, regs * REGISTER_SPACING_S, wall))
        budget(step("(b) plan, no changes", ["plan"], 0)[1])

        # (c) one service's image
        e, s = "e%02d" % (a.envs // 2), "s%02d" % (a.services // 2)
        text = open(yaml).read()
        old = image(e, s, "1.0.0")
        with open(yaml, "w") as f:
            f.write(text.replace(old, image(e, s, "1.1.0")))
        before = revisions()
        _, ops = step("(c) one image changed, applied", ["apply", "--auto-approve"], 0)
        new = sorted(set(revisions()) - set(before))
        regs, upd = ops.get(OP + "RegisterTaskDefinition", 0), ops.get(OP + "UpdateService", 0)
        held = len(new) == 1 and "bench-%s-%s:" % (e, s) in new[0] and upd == 1
        print("    %s/%s: %d new revision (%s)%s, %d UpdateService; expected 1 and 1: %s"
              % (e, s, len(new), ", ".join(n.split("/")[-1] for n in new),
                 "" if regs == len(new) else
                 ", %d RegisterTaskDefinition requests (throttled ones retried)" % regs,
                 upd, "holds" if held else "BROKEN"))
        if not held:
            failures.append("one image change made %d revisions (%s) and %d UpdateService"
                            % (len(new), ", ".join(new), upd))
        step("plan, no changes again", ["plan"], 0)
    finally:
        if fake is not None:
            fake.terminate()
            try:
                fake.wait(timeout=10)
            except subprocess.TimeoutExpired:
                fake.kill()
        shutil.rmtree(work, ignore_errors=True)
    if a.check and failures:
        print("bench_ecs: " + "; ".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
