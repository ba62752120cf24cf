#!/usr/bin/python3
"""The Heroku driver against the fake Platform API (tests/fake/heroku):
500 apps (a list generator), each with 20 config vars, 2 process types
(web and worker, one container image copied from a source registry into
the Heroku registry stand-in of tests/registry) and 1 add-on
(heroku-postgresql).

Prints, for each step, the wall time of the `reconcile` process, the API
requests the fake counted (/fake/stats), reconcile's peak RSS, and the
share of one account's hour of API tokens (4,500) those requests spend:
  first apply of all; plan with no changes; plan with 1% drift (a config
  var changed by hand on 1% of the apps); the apply that heals it.
The fake's token bucket is made large enough not to throttle, so the
share is reported, not felt. The issue's rule is then checked: a
no-change plan of N apps costs at most N + 5 requests.

A benchmark, not a test: it never fails on time. With --check it exits 1
when the N + 5 rule is broken or a step exits with an unexpected status
(the ctest smoke entry runs it so, at 20 apps).

  bench_heroku.py RECONCILE_BINARY SOURCE_ROOT [APPS] [--check]
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import run_measured, wait_file  # noqa: E402

PY = "/usr/bin/python3"
TOKENS_PER_HOUR = 4500
VARS = 20


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    check = "--check" in sys.argv
    rc_bin, root = os.path.realpath(args[0]), os.path.realpath(args[1])
    napps = int(args[2]) if len(args) > 2 else 500
    for f in ("tests/fake/heroku/fake_heroku.py", "tests/registry/registries.sh",
              "tests/registry/push_image.py"):
        if not os.path.exists(os.path.join(root, f)):
            sys.exit("bench_heroku: %s is missing" % f)
    # a SIGTERM (a ctest timeout, ^C) still stops what was started
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    work = tempfile.mkdtemp(prefix="rc-bench-heroku-")
    procs = []
    reg = os.path.join(work, "reg")
    failures = []
    try:
        r = subprocess.run(["bash", os.path.join(root, "tests/registry/registries.sh"),
                            "start", reg], capture_output=True, text=True)
        if r.returncode != 0:
            print("bench_heroku: the registries did not start: " + r.stderr[-500:])
            sys.exit(77 if r.returncode == 77 else 1)  # 77: docker-registry missing
        renv = dict(l.split("=", 1) for l in open(os.path.join(reg, "env")).read().split())
        key = renv["PASSWORD"]  # the stand-in's password is the account's key
        src = "127.0.0.1:%s" % renv["SRC_PORT"]
        push = subprocess.run([PY, os.path.join(root, "tests/registry/push_image.py"),
                               "http://" + src, "bench/app", "v1", "--seed", "bench"],
                              capture_output=True, text=True, check=True).stdout
        image_id = re.search(r"^config=(\S+)", push, re.M).group(1)

        port_file = os.path.join(work, "fake.port")
        fake = subprocess.Popen([PY, os.path.join(root, "tests/fake/heroku/fake_heroku.py"),
                                 "--key", key, "--port-file", port_file,
                                 "--rate-limit", "100000000", "--addon-delay-ms", "50"],
                                stdout=subprocess.DEVNULL)
        procs.append(fake)
        api_url = "http://127.0.0.1:%s" % wait_file(port_file, fake, "the fake Heroku")

        def fake_api(method, path, body=None):
            req = urllib.request.Request(
                api_url + path, method=method,
                data=json.dumps(body).encode() if body is not None else None,
                headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req) as resp:
                return json.loads(resp.read() or b"null")

        cfg = os.path.join(work, "cfg")
        os.makedirs(cfg)
        items = "\n".join("        - { name: a%04d }" % i for i in range(napps))
        config = "\n".join('      VAR_%02d: "value-%02d-{{ item.name }}"' % (v, v) for v in range(VARS))
        with open(os.path.join(cfg, "reconcile.yaml"), "w") as f:
            f.write("""version: 1
project: bench
environments:
  app:
    for_each:
      list:
%(items)s
    name: "bench-{{ item.name }}"
    target:
      driver: heroku
      app: "bench-{{ item.name }}"
      region: us
      stack: container
    policy: { prune: true }
    services:
      web:
        image: %(image)s
        command: [gunicorn, app.wsgi]
        replicas: 1
        size: basic
        heroku: { process_type: web }
      worker:
        image: %(image)s
        command: [python, worker.py]
        replicas: 1
        size: basic
        heroku: { process_type: worker }
    config:
%(config)s
    addons:
      db: { kind: heroku-postgresql, plan: essential-0, as: DATABASE }
""" % {"items": items, "image": src + "/bench/app:v1", "config": config})
        env = dict(os.environ, RECONCILE_STATE_DIR=os.path.join(work, "state"),
                   XDG_CACHE_HOME=os.path.join(work, "cache"), HOME=os.path.join(work, "home"),
                   HEROKU_API_KEY=key, HEROKU_API_URL=api_url,
                   HEROKU_REGISTRY_URL="http://127.0.0.1:%s" % renv["DST_PORT"], NO_COLOR="1")
        os.makedirs(env["HOME"])

        print("%d apps x (%d config vars, 2 process types, 1 add-on), image %s"
              % (napps, VARS, image_id[:19]))
        print("%-30s %8s %9s %10s %12s" % ("step", "wall", "requests", "peak RSS",
                                          "token-hour"))
        results = {}

        def step(name, argv, want):
            fake_api("POST", "/fake/stats/reset")
            out, code, wall, ru = run_measured([rc_bin] + argv + [cfg], env)
            stats = fake_api("GET", "/fake/stats")
            total = stats.get("total", 0)
            print("%-30s %7.2fs %9d %7.1f MiB %11.1f%%%s" % (
                name, wall, total, ru.ru_maxrss / 1024.0, 100.0 * total / TOKENS_PER_HOUR,
                "" if code == want else "  [exit %d, expected %d]" % (code, want)))
            top = sorted(stats.get("requests", {}).items(), key=lambda kv: -kv[1])[:6]
            print("    " + ", ".join("%s %d" % kv for kv in top))
            own = [l for l in out.splitlines() if re.search(r"heroku.*\brequests?\b", l)]
            if own:
                print("    reconcile says: " + own[-1].strip())
            if code != want:
                print("    " + "\n    ".join(out.strip().splitlines()[-8:]))
                failures.append("%s exited %d, expected %d" % (name, code, want))
            sys.stdout.flush()
            results[name] = total
            return total

        step("first apply of all", ["apply", "--auto-approve"], 0)
        nochange = step("plan, no changes", ["plan"], 0)
        ndrift = max(1, napps // 100)
        for i in range(ndrift):
            app = "bench-a%04d" % (i * (napps // ndrift))
            try:
                fake_api("POST", "/fake/config-vars", {
                    "app": app, "set": {"VAR_07": "changed by hand"}})
            except urllib.error.HTTPError as e:
                failures.append("changing a var of %s by hand: %s %s"
                                % (app, e, e.read().decode(errors="replace")))
        step("plan, 1%% drift (%d apps)" % ndrift, ["plan"], 2)
        step("apply, healing the drift", ["apply", "--auto-approve"], 0)
        step("plan, no changes again", ["plan"], 0)

        limit = napps + 5
        held = nochange <= limit
        print("no-change plan of %d apps: %d requests, rule N + 5 = %d: %s"
              % (napps, nochange, limit, "holds" if held else "BROKEN"))
        if not held:
            failures.append("a no-change plan of %d apps cost %d requests (> %d)"
                            % (napps, nochange, limit))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run(["bash", os.path.join(root, "tests/registry/registries.sh"), "stop", reg],
                       capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    if check and failures:
        print("bench_heroku: " + "; ".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
