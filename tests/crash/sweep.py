#!/usr/bin/python3
"""The crash sweep: `reconcile apply` killed with SIGKILL at chosen points,
then `reconcile plan`, `reconcile apply` and `reconcile plan` again, for
each driver (local, Kubernetes, Heroku and ECS against their fakes, and
the controller on a git source with the Kubernetes fake).

Points come from the crash-point hook of a build with
-DRECONCILE_CRASH_POINTS=ON (reconciler/base/crashpoint.h): a clean apply
with RECONCILE_CRASH_LOG counts them (two per journal record, one per
HTTP reply), then each is a run killed there by RECONCILE_CRASH_AT; and,
separately, a seeded random delay after the apply started. Each point is
run in three scenarios: create (a fresh state and platform), update (a
changed configuration on top of an applied one) and delete (a service
removed, pruned).

After every point:
  - every journal verifies (`history --output json`: no torn tail, no
    damage), and the killed run is `interrupted` (unless it was killed
    before its first record, or after its run-end);
  - the second apply exits 0 and the plan after it says "No changes";
  - nothing was created twice: the platform's objects (the fake's lists,
    or the processes carrying reconcile's mark in /proc) against those of
    a clean run of the same scenario;
  - no secret canary (nor its encodings) in the state directory or any
    output (tests/leak/sweep.py);
  - each hook's successful runs are counted; with --check-hooks, each
    must have run exactly once.

A failing point prints the command that reruns it and is added to the
regressions file, which every run replays first.
    sweep.py --reconcile BIN --root SRC [--fake-kube BIN] --driver D...
             [--points N] [--seed S] [--only SPEC]... [--check-hooks]
             [--regressions FILE] [--no-record] [--table-md FILE] [--keep]
SPEC is SCENARIO/KIND:N (KIND journal, http or any) or SCENARIO/delay:MS.
Exit 0 all points passed, 1 a point failed, 77 the build has no crash
points.
"""
import argparse
import base64
import collections
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "leak"))
import sweep as leak  # noqa: E402  tests/leak/sweep.py

PY = "/usr/bin/python3"
SCENARIOS = ("create", "update", "delete")
STEP_TIMEOUT = 300  # seconds a reconcile command may take on a loaded machine


def canary(rng, tag):
    return "crash-canary-%s-%016x" % (tag, rng.getrandbits(64))


def wait_file(path, seconds=30):
    end = time.time() + seconds
    while time.time() < end:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return True
        time.sleep(0.05)
    return False


def http_json(method, url, body=None, headers=None, ctx=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30, context=ctx) as r:
        raw = r.read()
    return json.loads(raw) if raw.strip() else None


class Driver:
    """A driver under the sweep: its platform (a fake, or this machine),
    the configurations of each scenario, what counts as an object and
    what counts as a hook's successful run."""
    name = ""
    hooks = ("mark",)
    delay_max_ms = 2000  # random kills fall in the first this many ms

    def __init__(self, args, work, rng):
        self.args, self.work, self.rng = args, work, rng
        self.procs = []
        self.env = dict(os.environ, NO_COLOR="1")
        self.canaries = {}  # variable -> value

    def new_canaries(self):
        """Fresh secret values, in the environment of every command."""
        for i in (1, 2):
            var = "CRASH_SECRET_%d" % i
            self.canaries[var] = canary(self.rng, "%s%d" % (self.name, i))
            self.env[var] = self.canaries[var]

    def all_canaries(self):
        return list(self.canaries.values())

    def start(self):
        pass

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()

    def prepare(self, pt):
        """A fresh platform (or part of it) for point pt."""

    def cleanup(self, pt):
        """What the point left on this machine."""

    def apply_killed(self, pt, spec):
        """The run to be killed: an apply killed at crash point spec
        (KIND:N) or after delay:MS. Returns (exit status, output)."""
        kind, _, n = spec.partition(":")
        if kind == "delay":
            return run_cmd(self, pt, "apply-killed", ["apply", "cfg", "--auto-approve"], delay_ms=int(n))
        return run_cmd(self, pt, "apply-killed", ["apply", "cfg", "--auto-approve"], crash=spec)

    def apply_clean(self, pt, log):
        """The clean run of a scenario, its crash points listed in log."""
        return run_cmd(self, pt, "apply", ["apply", "cfg", "--auto-approve"], log=log)

    def recover(self, pt):
        """What a user does after the kill: plan, apply. Returns the
        problems."""
        p = []
        rc, out = run_cmd(self, pt, "plan-after", ["plan", "cfg"])
        if rc not in (0, 2):
            p.append(f"plan after the kill: exit {rc}: {out[-1500:]}")
        rc, out = run_cmd(self, pt, "apply-again", ["apply", "cfg", "--auto-approve"])
        if rc != 0:
            p.append(f"the second apply: exit {rc}: {out[-1500:]}")
        return p

    def commit(self, pt):
        """The configuration just written is the source's (a git source
        commits it)."""

    def config(self, pt, version):
        """reconcile.yaml for version "a" (first), "b" (changed: a config
        var, a secret, replicas) or "c" (a service removed)."""
        raise NotImplementedError

    def objects(self, pt):
        """collections.Counter of the platform's objects (hooks' runs
        left out) of point pt."""
        raise NotImplementedError

    def hook_runs(self, pt):
        """{hook: successful runs so far} for point pt."""
        raise NotImplementedError


class Local(Driver):
    name = "local"
    delay_max_ms = 1600

    def config(self, pt, version):
        level = {"a": "1", "b": "2", "c": "2"}[version]
        worker = "" if version == "c" else """
      worker:
        command: [sleep, "3601"]
        replicas: %s""" % ("2" if version == "b" else "1")
        return f"""version: 1
project: {pt.project}
environments:
  dev:
    target: {{ driver: local }}
    policy: {{ prune: true }}
    config: {{ LEVEL: "{level}" }}
    services:
      web:
        command: [sleep, "3600"]{worker}
    secrets:
      TOKEN: {{ env: CRASH_SECRET_{1 if version == "a" else 2} }}
    hooks:
      post_apply:
        - {{ name: mark, run: [sh, -c, "echo ok >> {pt.dir}/hook-mark.log"] }}
"""

    def marked(self, pt):
        """{pid: owner} of the live processes with this point's mark."""
        state = os.path.realpath(pt.state)
        out = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/environ", "rb") as fh:
                    env = dict(x.split(b"=", 1) for x in fh.read().split(b"\0") if b"=" in x)
                with open(f"/proc/{d}/stat") as fh:
                    if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                        continue
            except OSError:
                continue
            owner = env.get(b"RECONCILE_OWNER", b"").decode()
            if owner.startswith(pt.project + "/") and env.get(b"RECONCILE_STATE", b"").decode() == state:
                out[int(d)] = owner
        return out

    def objects(self, pt):
        return collections.Counter(self.marked(pt).values())

    def hook_runs(self, pt):
        try:
            with open(f"{pt.dir}/hook-mark.log") as fh:
                return {"mark": len(fh.read().splitlines())}
        except OSError:
            return {"mark": 0}

    def cleanup(self, pt):
        for pid in self.marked(pt):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


class Kube(Driver):
    name = "kube"
    delay_max_ms = 1000

    def start(self):
        import ssl
        fake = os.path.join(self.work, "fake-kube")
        os.makedirs(fake)
        log = open(os.path.join(self.work, "fake-kube.log"), "w")
        self.procs.append(subprocess.Popen([self.args.fake_kube, "--dir", fake, "--controller-delay-ms", "5"],
                                           stdout=log, stderr=subprocess.STDOUT))
        if not wait_file(os.path.join(fake, "ready")):
            raise SystemExit("the fake API server did not start")
        port = open(os.path.join(fake, "port")).read().strip()
        self.base = f"https://127.0.0.1:{port}"
        self.ctx = ssl.create_default_context(cafile=os.path.join(fake, "ca.pem"))
        kc = os.path.join(self.work, "kubeconfig")
        with open(kc, "w") as fh:
            fh.write(f"""apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster: {{ server: "{self.base}", certificate-authority: "{fake}/ca.pem" }}
users:
- name: admin
  user: {{ token: fake-admin-token }}
contexts:
- name: fake
  context: {{ cluster: fake, user: admin }}
current-context: fake
""")
        self.env["KUBECONFIG"] = kc

    def api(self, method, path):
        return http_json(method, self.base + path, headers={"Authorization": "Bearer fake-admin-token"}, ctx=self.ctx)

    def config(self, pt, version):
        tag = {"a": "1.0", "b": "1.1", "c": "1.1"}[version]
        worker = "" if version == "c" else """
      worker:
        image: registry.example.com/crash/worker:1.0
        replicas: %s""" % ("2" if version == "b" else "1")
        return f"""version: 1
project: {pt.project}
environments:
  k8s:
    target: {{ driver: kubernetes, context: fake, namespace: {pt.namespace} }}
    policy: {{ prune: true }}
    config: {{ LEVEL: "{version}" }}
    services:
      web:
        image: registry.example.com/crash/web:{tag}
        port: 80{worker}
    secrets:
      TOKEN: {{ env: CRASH_SECRET_{1 if version == "a" else 2} }}
    hooks:
      post_apply:
        - {{ name: mark, run: [migrate], service: web }}
"""

    def items(self, pt):
        return [o for o in self.api("GET", "/fake/objects")["items"]
                if o.get("metadata", {}).get("namespace") == pt.namespace or
                (o.get("kind") == "Namespace" and o["metadata"]["name"] == pt.namespace)]

    def objects(self, pt):
        # what reconcile creates by name; what controllers derive from it
        # (ReplicaSets, Pods) and hook Jobs are counted elsewhere
        return collections.Counter(f'{o["kind"]}/{o["metadata"]["name"]}' for o in self.items(pt)
                                   if o["kind"] in ("Namespace", "Deployment", "Service", "ConfigMap", "Secret"))

    def hook_runs(self, pt):
        n = 0
        for o in self.items(pt):
            if o["kind"] == "Job" and (o.get("status") or {}).get("succeeded"):
                n += 1
        return {"mark": n}


class Heroku(Driver):
    name = "heroku"
    delay_max_ms = 1500

    def start(self):
        key = "crash-heroku-key-%08x" % self.rng.getrandbits(32)
        self.canaries["HEROKU_API_KEY"] = key
        self.env["HEROKU_API_KEY"] = key
        pf = os.path.join(self.work, "fake-heroku.port")
        log = open(os.path.join(self.work, "fake-heroku.log"), "w")
        self.procs.append(subprocess.Popen([PY, os.path.join(self.args.root, "tests/fake/heroku/fake_heroku.py"),
                                            "--key", key, "--port-file", pf, "--addon-delay-ms", "20",
                                            "--dyno-start-ms", "20"], stdout=log, stderr=subprocess.STDOUT))
        if not wait_file(pf):
            raise SystemExit("the fake Heroku did not start")
        self.base = "http://127.0.0.1:" + open(pf).read().strip()
        self.env["HEROKU_API_URL"] = self.base

    def prepare(self, pt):
        http_json("POST", self.base + "/fake/reset", {})
        http_json("POST", self.base + "/fake/dynos/script", {"match": "migrate", "exit": 0, "duration_ms": 50})

    def config(self, pt, version):
        plan = "essential-0" if version == "a" else "essential-1"
        extra = "" if version == "c" else """
  logs:
    kind: papertrail
    plan: choklad"""
        return f"""version: 1
project: {pt.project}
environments:
  dev:
    target: {{ driver: heroku, app: {pt.project}-dev, region: us, stack: heroku-22 }}
    policy: {{ prune: true }}
    config: {{ LEVEL: "{version}" }}
    secrets:
      TOKEN: {{ env: CRASH_SECRET_{1 if version == "a" else 2} }}
    addons:
      db:
        kind: heroku-postgresql
        plan: {plan}
        as: DATABASE{extra.replace(chr(10), chr(10) + "    ")}
    hooks:
      post_apply:
        - {{ name: mark, run: [migrate], where: target }}
"""

    def state(self):
        return http_json("GET", self.base + "/fake/state")

    def objects(self, pt):
        s = self.state()
        c = collections.Counter("app/" + a["name"] for a in s["apps"])
        c.update("addon/%s/%s" % (a["app"]["name"], a["addon_service"]["name"]) for a in s["addons"])
        return c

    def hook_runs(self, pt):
        s = self.state()
        n = sum(1 for dynos in s["dynos"].values() for d in dynos
                if "migrate" in d.get("command", "") and d.get("state") in ("complete", "down", "crashed", "up") and
                d.get("exit_status", 0) in (0, None))
        return {"mark": n}


class Ecs(Driver):
    name = "ecs"

    def start(self):
        akid = "AKIDCRASH0001"
        secret = "crash-aws-secret-%08x" % self.rng.getrandbits(32)
        self.canaries["AWS_SECRET_ACCESS_KEY"] = secret
        pf = os.path.join(self.work, "fake-ecs.port")
        log = open(os.path.join(self.work, "fake-ecs.log"), "w")
        self.procs.append(subprocess.Popen([PY, os.path.join(self.args.root, "tests/fake/ecs/fake_ecs.py"),
                                            "--credentials", f"{akid}:{secret}", "--port-file", pf,
                                            "--deployment-ms", "50", "--scale-ms", "30", "--task-start-ms", "20",
                                            "--task-run-ms", "50", "--rate", "ecs:RegisterTaskDefinition=1000:1000"],
                                           stdout=log, stderr=subprocess.STDOUT))
        if not wait_file(pf):
            raise SystemExit("the fake ECS did not start")
        self.base = "http://127.0.0.1:" + open(pf).read().strip()
        for k in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL_ECS", "AWS_ENDPOINT_URL_SECRETS_MANAGER"):
            self.env.pop(k, None)
        self.env.update(AWS_ENDPOINT_URL=self.base, AWS_ACCESS_KEY_ID=akid, AWS_SECRET_ACCESS_KEY=secret,
                        AWS_REGION="us-east-1")

    def prepare(self, pt):
        http_json("POST", self.base + "/fake/reset", {})

    def config(self, pt, version):
        worker = "" if version == "c" else """
      worker:
        image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/worker:1.0.0"
        replicas: %s
        cpu: 0.25
        memory: 512Mi""" % ("2" if version == "b" else "1")
        return f"""version: 1
project: {pt.project}
environments:
  dev:
    target:
      driver: ecs
      region: us-east-1
      cluster: {pt.project}-dev
      launch_type: FARGATE
      subnets: [subnet-0a1b2c3d4e5f60001]
      security_groups: [sg-0d1e2f3a4b5c60001]
      execution_role_arn: arn:aws:iam::123456789012:role/crash-exec
    policy: {{ prune: true }}
    config: {{ LEVEL: "{version}" }}
    services:
      api:
        image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/api:1.0.0"
        replicas: 1
        port: 8080
        cpu: 0.25
        memory: 512Mi{worker}
    secrets:
      TOKEN: {{ env: CRASH_SECRET_{1 if version == "a" else 2} }}
    hooks:
      post_apply:
        - {{ name: mark, service: api, run: [/app/migrate, --yes], timeout: 30s }}
"""

    def state(self):
        return http_json("GET", self.base + "/fake/state")

    def objects(self, pt):
        s = self.state()
        c = collections.Counter("cluster/" + x["clusterName"] for x in s["clusters"] if x["status"] == "ACTIVE")
        c.update("service/" + x["serviceName"] for x in s["services"] if x["status"] in ("ACTIVE", "DRAINING"))
        # every revision registered, active or not: one registered twice
        # for the same body is a duplicate
        c.update("task-definition/" + x["family"] for x in s["task_definitions"])
        c.update("secret/" + x.get("Name", x.get("name", "?")) for x in s.get("secrets", []))
        return c

    def hook_runs(self, pt):
        s = self.state()
        n = 0
        for t in s["tasks"]:
            ov = json.dumps(t.get("overrides", {}))
            if "/app/migrate" in ov and t.get("lastStatus") == "STOPPED" and \
                    all(c.get("exitCode") == 0 for c in t.get("containers", [])):
                n += 1
        return {"mark": n}


class Controller(Kube):
    """`reconcile controller` following a git work tree, applying to the
    Kubernetes fake: the controller is what is killed, and a controller
    started again is what recovers."""
    name = "controller"
    delay_max_ms = 3000

    def start(self):
        super().start()
        self.env.update(RECONCILE_CONTROLLER_TOKEN="crash-ctl-token-%08x" % self.rng.getrandbits(32),
                        GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t",
                        GIT_COMMITTER_EMAIL="t@example.com")
        self.canaries["RECONCILE_CONTROLLER_TOKEN"] = self.env["RECONCILE_CONTROLLER_TOKEN"]
        s = __import__("socket").socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()

    def commit(self, pt):
        git = ["git", "-C", pt.cfg]
        if not os.path.isdir(os.path.join(pt.cfg, ".git")):
            subprocess.run(git + ["init", "-q", "-b", "main"], check=True, env=self.env)
        subprocess.run(git + ["add", "-A"], check=True, env=self.env)
        subprocess.run(git + ["commit", "-qm", "config", "--allow-empty"], check=True, env=self.env)

    def status(self):
        try:
            st = http_json("GET", f"http://127.0.0.1:{self.port}/api/v1/status",
                           headers={"Authorization": "Bearer " + self.env["RECONCILE_CONTROLLER_TOKEN"]})
            e = [x for x in st["environments"] if x["name"] == "k8s"][0]
            return e
        except Exception:  # not up yet, or going down
            return None

    def controller(self, pt, name, crash=None, delay_ms=None, log=None, done=("succeeded",)):
        """Runs the controller until it dies, is killed after delay_ms,
        or has brought the environment in sync with a cycle whose result
        is one of done (then stopped by SIGTERM). Returns (exit status,
        output, in sync)."""
        p, files = spawn(self, pt, name, ["controller", "cfg", "--listen", f"127.0.0.1:{self.port}", "--poll",
                                          "1s", "--resync", "1h", "--state-dir", pt.state], crash, log)
        t0 = time.time()
        applied = False
        while p.poll() is None and time.time() - t0 < STEP_TIMEOUT:
            if delay_ms is not None and time.time() - t0 >= delay_ms / 1000.0:
                p.kill()
                break
            e = self.status()
            if e and e.get("last") and e["last"].get("result") in done and e.get("state") == "in-sync":
                applied = True
                p.terminate()
                break
            time.sleep(0.05)
        try:
            rc = p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = p.wait()
        return rc, collect(files), applied

    def apply_clean(self, pt, log):
        rc, out, applied = self.controller(pt, "controller", log=log)
        return (0 if applied and rc == 0 else rc), out

    def apply_killed(self, pt, spec):
        kind, _, n = spec.partition(":")
        if kind == "delay":
            rc, out, _ = self.controller(pt, "controller-killed", delay_ms=int(n))
        else:
            rc, out, _ = self.controller(pt, "controller-killed", crash=spec)
        return rc, out

    def recover(self, pt):
        # a run that ended before the kill is resumed from the journal:
        # then nothing is left to apply ("unchanged")
        rc, out, applied = self.controller(pt, "controller-again", done=("succeeded", "unchanged"))
        if not applied or rc != 0:
            return [f"the controller started again did not apply the environment (exit {rc}): {out[-1500:]}"]
        return []


DRIVERS = {"local": Local, "kube": Kube, "heroku": Heroku, "ecs": Ecs, "controller": Controller}


class Point:
    """One point: scenario and how the run is killed; its directories."""

    def __init__(self, driver, scenario, spec, work, index):
        self.driver, self.scenario, self.spec = driver, scenario, spec
        self.dir = tempfile.mkdtemp(prefix=f"{driver}-{scenario}-", dir=work)
        self.state = os.path.join(self.dir, "state")
        self.cfg = os.path.join(self.dir, "cfg")
        self.out = os.path.join(self.dir, "out")
        os.makedirs(self.cfg)
        os.makedirs(self.out)
        self.project = "crash%d" % index
        self.namespace = "crash-%d" % index
        self.n = 0

    def __str__(self):
        return f"{self.scenario}/{self.spec}"


def spawn(drv, pt, name, argv, crash, log):
    """Starts reconcile ARGV for point pt in its state directory, with
    RECONCILE_CRASH_AT=crash and RECONCILE_CRASH_LOG=log when given; its
    stdout and stderr go to files under pt.out. Returns (process, files)."""
    pt.n += 1
    env = dict(drv.env, RECONCILE_STATE_DIR=pt.state, XDG_CACHE_HOME=os.path.join(pt.dir, "cache"))
    env.pop("RECONCILE_CRASH_AT", None)
    env.pop("RECONCILE_CRASH_LOG", None)
    if crash:
        env["RECONCILE_CRASH_AT"] = crash
    if log:
        env["RECONCILE_CRASH_LOG"] = log
    files = [open(os.path.join(pt.out, f"{pt.n}-{name}.{x}"), "wb") for x in ("stdout", "stderr")]
    p = subprocess.Popen([drv.args.reconcile] + argv, stdin=subprocess.DEVNULL, stdout=files[0], stderr=files[1],
                         env=env, cwd=pt.dir)
    return p, files


def collect(files):
    """What a process spawn() started wrote, stdout then stderr."""
    out = b""
    for f in files:
        f.close()
        with open(f.name, "rb") as fh:
            out += fh.read()
    return out.decode(errors="replace")


def run_cmd(drv, pt, name, argv, crash=None, delay_ms=None, log=None):
    """Runs reconcile ARGV for point pt; stdout and stderr under pt.out
    (swept for canaries). Returns (exit status, output)."""
    p, files = spawn(drv, pt, name, argv, crash, log)
    try:
        if delay_ms is not None:
            try:
                p.wait(delay_ms / 1000.0)
            except subprocess.TimeoutExpired:
                p.kill()
        rc = p.wait(STEP_TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        rc = "timeout"
    return rc, collect(files)


def write_config(drv, pt, version):
    with open(os.path.join(pt.cfg, "reconcile.yaml"), "w") as fh:
        fh.write(drv.config(pt, version))
    drv.commit(pt)


def history(drv, pt):
    rc, out = run_cmd(drv, pt, "history", ["history", "--output", "json"])
    if rc != 0:
        return None, f"history exit {rc}: {out[:400]}"
    try:
        return json.loads(out[out.index("["):]), None
    except ValueError:
        return None, "history printed no JSON: " + out[:400]


def last_record(pt, run_id):
    """The type of the last whole record of a run's journal, or None."""
    try:
        with open(os.path.join(pt.state, "runs", run_id + ".journal"), "rb") as fh:
            lines = fh.read().split(b"\n")
    except OSError:
        return None
    for line in reversed(lines):
        parts = line.split(b" ", 2)
        if len(parts) == 3:
            try:
                return json.loads(parts[2]).get("type")
            except ValueError:
                return None
    return None


def objects(drv, pt):
    """The platform's objects of point pt, named without its project (so
    that points compare with their scenario's clean run)."""
    return collections.Counter({k.replace(pt.project, "P").replace(pt.namespace, "NS"): v
                                for k, v in drv.objects(pt).items()})


def versions(scenario):
    """(version applied cleanly first or None, version applied killed)."""
    return {"create": (None, "a"), "update": ("a", "b"), "delete": ("a", "c")}[scenario]


def reference(drv, scenario, work, index):
    """A clean run of the scenario: its crash points by kind, the apply's
    duration, the platform's objects and the hooks' runs."""
    pt = Point(drv.name, scenario, "clean", work, index)
    try:
        return clean_run(drv, pt)
    finally:
        drv.cleanup(pt)
        if not drv.args.keep:
            shutil.rmtree(pt.dir, ignore_errors=True)


def clean_run(drv, pt):
    scenario = pt.scenario
    drv.prepare(pt)
    before, crash_v = versions(scenario)
    if before:
        write_config(drv, pt, before)
        rc, out = run_cmd(drv, pt, "apply-before", ["apply", "cfg", "--auto-approve"])
        if rc != 0:
            raise SystemExit(f"{drv.name} {scenario}: the first apply failed ({rc}):\n{out[-3000:]}")
    hooks0 = drv.hook_runs(pt)
    write_config(drv, pt, crash_v)
    log = os.path.join(pt.dir, "points.log")
    t0 = time.time()
    rc, out = drv.apply_clean(pt, log)
    took = time.time() - t0
    if rc != 0:
        raise SystemExit(f"{drv.name} {scenario}: the clean apply failed ({rc}):\n{out[-3000:]}")
    kinds = collections.Counter()
    with open(log) as fh:
        for line in fh:
            kinds[line.split()[1]] += 1
    rc, out = run_cmd(drv, pt, "plan", ["plan", "cfg"])
    if rc != 0:
        raise SystemExit(f"{drv.name} {scenario}: the clean apply did not converge ({rc}):\n{out[-3000:]}")
    objs = objects(drv, pt)
    hooks = {h: n - hooks0.get(h, 0) for h, n in drv.hook_runs(pt).items()}
    return {"kinds": kinds, "took": took, "objects": objs, "hooks": hooks}


def check_point(drv, pt, ref):
    """Runs point pt; returns a dict of what it found (problems: a list)."""
    res = {"problems": [], "converged": False, "duplicates": 0, "journal_errors": 0, "hooks_ok": False,
           "leaks": 0, "killed": False}
    p = res["problems"]
    drv.prepare(pt)
    before, crash_v = versions(pt.scenario)
    if before:
        write_config(drv, pt, before)
        rc, out = run_cmd(drv, pt, "apply-before", ["apply", "cfg", "--auto-approve"])
        if rc != 0:
            p.append(f"the first (clean) apply failed: exit {rc}: {out[-1500:]}")
            return res
    hooks0 = drv.hook_runs(pt)
    runs0 = {r["id"] for r in (history(drv, pt)[0] or [])}
    write_config(drv, pt, crash_v)
    rc, out = drv.apply_killed(pt, pt.spec)
    res["killed"] = rc == -signal.SIGKILL
    if not res["killed"] and rc != 0:
        p.append(f"the apply to be killed failed by itself: exit {rc}: {out[-1500:]}")
    hist, err = history(drv, pt)
    if err:
        p.append(err)
        hist = []
    killed_runs = [r for r in hist if r["id"] not in runs0]
    for r in killed_runs:
        last = last_record(pt, r["id"])
        if r["status"] != "interrupted" and res["killed"] and last != "run-end":
            p.append(f"history shows the killed run {r['id']} as {r['status']}, not interrupted")
    recovery = drv.recover(pt)
    p.extend(recovery)
    rc, out = run_cmd(drv, pt, "plan-final", ["plan", "cfg"])
    if rc == 0 and "No changes" in out:
        res["converged"] = not recovery
    else:
        p.append(f"the plan after the second apply is not clean: exit {rc}: {out[-1500:]}")
    hist, err = history(drv, pt)
    if err:
        p.append(err)
        hist = []
    for r in hist:
        if r.get("torn") or r.get("error"):
            res["journal_errors"] += 1
            p.append(f"journal of run {r['id']}: torn={r.get('torn')} error={r.get('error')}")
    for r in killed_runs:
        now = [x for x in hist if x["id"] == r["id"]]
        if res["killed"] and now and now[0]["status"] != "interrupted" and last_record(pt, r["id"]) != "run-end":
            p.append(f"history later shows the killed run {r['id']} as {now[0]['status']}")
    objs = objects(drv, pt)
    for k, v in objs.items():
        extra = v - ref["objects"].get(k, 0)
        if extra > 0:
            res["duplicates"] += extra
            p.append(f"{k}: {v} on the platform, a clean run leaves {ref['objects'].get(k, 0)}")
    hooks = {h: n - hooks0.get(h, 0) for h, n in drv.hook_runs(pt).items()}
    res["hooks"] = hooks
    res["hooks_ok"] = all(hooks.get(h, 0) == 1 for h in drv.hooks)
    if drv.args.check_hooks and not res["hooks_ok"]:
        p.append(f"hooks' successful runs: {hooks} (each should have run once)")
    hits, _ = leak.search(leak.needles([v.encode() for v in drv.all_canaries()]), [pt.state, pt.out])
    res["leaks"] = len(hits)
    p.extend("secret value found: " + h for h in hits)
    return res


def command_for(args, driver, spec):
    cmd = [sys.argv[0], "--reconcile", args.reconcile, "--root", args.root, "--driver", driver, "--only", spec,
           "--seed", str(args.seed)]
    if args.fake_kube:
        cmd += ["--fake-kube", args.fake_kube]
    if args.check_hooks:
        cmd.append("--check-hooks")
    return " ".join(cmd)


def load_regressions(path, driver):
    out = []
    if path and os.path.exists(path):
        with open(path) as fh:
            for line in fh:
                f = line.split("#", 1)[0].split()
                if len(f) >= 2 and f[0] == driver:
                    out.append(f[1])
    return out


def record_regression(path, driver, spec, seed, why):
    if not path:
        return
    if spec in load_regressions(path, driver):
        return
    with open(path, "a") as fh:
        why = " ".join(why.split())[:100]
        fh.write(f"{driver} {spec}  # seed {seed}: {why}\n")


def choose(args, drv, rng, refs, regressions):
    """The points of a driver: the regressions, then a sample (by seed)
    of every crash point of every scenario and as many random delays."""
    hooked, delays = [], []
    for sc in SCENARIOS:
        for kind in ("journal", "http"):
            hooked += [f"{sc}/{kind}:{k}" for k in range(1, refs[sc]["kinds"].get(kind, 0) + 1)]
    want = args.points if args.points else 2 * len(hooked)
    n_delay = max(want - len(hooked), want // 2) if args.points else len(hooked)
    for i in range(n_delay):
        sc = SCENARIOS[i % len(SCENARIOS)]
        # up to a bound of the driver's, not the clean run's duration
        # (which varies): the same seed, the same delays
        ms = rng.randrange(0, drv.delay_max_ms)
        delays.append(f"{sc}/delay:{ms}")
    pool = hooked + delays
    if args.points and len(pool) > args.points:
        n_h = min(len(hooked), args.points - args.points // 2)
        pool = rng.sample(hooked, n_h) + rng.sample(delays, min(len(delays), args.points - n_h))
    return regressions + [s for s in pool if s not in regressions]


def sweep_driver(args, name, work, rng):
    drv = DRIVERS[name](args, os.path.join(work, name), rng)
    os.makedirs(drv.work)
    drv.new_canaries()
    drv.start()
    row = collections.Counter()
    failures = []
    hook_counts = collections.Counter()
    t0 = time.time()
    try:
        refs = {sc: reference(drv, sc, drv.work, 1000 + i) for i, sc in enumerate(SCENARIOS)}
        print(f"# {name}: crash points of a clean apply: " +
              ", ".join(f"{sc} {dict(refs[sc]['kinds'])} in {refs[sc]['took']:.1f}s" for sc in SCENARIOS),
              flush=True)
        if args.verbose:
            for sc in SCENARIOS:
                print(f"# {name} {sc}: a clean run leaves {dict(refs[sc]['objects'])}, hooks {refs[sc]['hooks']}")
        if args.only:
            specs = args.only
        else:
            specs = choose(args, drv, rng, refs, load_regressions(args.regressions, name))
        for i, spec in enumerate(specs):
            sc, _, how = spec.partition("/")
            if sc not in SCENARIOS:
                print(f"FAIL {name} {spec}: unknown scenario")
                row["points"] += 1
                failures.append(spec)
                continue
            pt = Point(name, sc, how, drv.work, i)
            try:
                res = check_point(drv, pt, refs[sc])
            finally:
                drv.cleanup(pt)
            row["points"] += 1
            row["killed"] += res["killed"]
            row["converged"] += res["converged"]
            row["duplicates"] += res["duplicates"]
            row["journal errors"] += res["journal_errors"]
            row["hooks ok"] += res["hooks_ok"]
            row["leaks"] += res["leaks"]
            for h, n in res.get("hooks", {}).items():
                hook_counts[f"{h}={n}"] += 1
            if res["problems"]:
                failures.append(spec)
                print(f"FAIL {name} {spec}")
                for x in res["problems"]:
                    print("  " + x.replace("\n", "\n    "))
                print("  rerun: " + command_for(args, name, spec), flush=True)
                if not args.no_record:
                    record_regression(args.regressions, name, spec, args.seed, res["problems"][0])
            else:
                if args.verbose:
                    print(f"ok {name} {spec} hooks {res.get('hooks')}", flush=True)
                if not args.keep:
                    shutil.rmtree(pt.dir, ignore_errors=True)
        # the sweep's own checks can fail: the hook kills, and a value
        # planted where the search looks is found
        hooked = [x for x in specs if "/delay:" not in x]
        if hooked and row["killed"] == 0:
            failures.append("self-check")
            print(f"FAIL {name}: no run was killed at its crash point")
        planted = os.path.join(drv.work, "self-check")
        with open(planted, "wb") as fh:
            fh.write(b"x" + base64.b64encode(drv.all_canaries()[0].encode()))
        if not leak.search(leak.needles([v.encode() for v in drv.all_canaries()]), [planted])[0]:
            failures.append("self-check")
            print(f"FAIL {name}: the secret search does not find a planted value")
    finally:
        drv.stop()
    row["seconds"] = int(time.time() - t0)
    print(f"# {name}: hooks' successful runs per point: {dict(hook_counts)}", flush=True)
    return row, failures


COLUMNS = ("points", "killed", "converged", "duplicates", "journal errors", "hooks ok", "leaks", "seconds")


def table(rows, md=False):
    head = ["driver"] + list(COLUMNS)
    lines = []
    if md:
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + " --- |" * len(head))
        for name, row in rows:
            lines.append("| " + " | ".join([name] + [str(row[c]) for c in COLUMNS]) + " |")
    else:
        lines.append(" | ".join(head))
        for name, row in rows:
            lines.append(" | ".join([name.ljust(6)] + [str(row[c]).rjust(len(c)) for c in COLUMNS]))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reconcile", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--fake-kube")
    ap.add_argument("--driver", action="append", choices=sorted(DRIVERS), required=True)
    ap.add_argument("--points", type=int, default=0, help="points per driver (0: every crash point and as many delays)")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("RECONCILE_CRASH_SEED", "1")),
                    help="the sample and the delays (default $RECONCILE_CRASH_SEED or 1)")
    ap.add_argument("--only", action="append", help="run this point alone (SCENARIO/KIND:N)")
    ap.add_argument("--check-hooks", action="store_true")
    ap.add_argument("--regressions", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                          "regressions.txt"))
    ap.add_argument("--no-record", action="store_true", help="do not add failing points to the regressions")
    ap.add_argument("--table-md", help="also write the table, as Markdown, to this file")
    ap.add_argument("--keep", action="store_true", help="keep every point's directory")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    args.reconcile = os.path.realpath(args.reconcile)
    args.root = os.path.realpath(args.root)
    if args.fake_kube:
        args.fake_kube = os.path.realpath(args.fake_kube)

    # the variable's name is in the binary only when the hook is compiled
    with open(args.reconcile, "rb") as fh:
        has_points = b"RECONCILE_CRASH_AT" in fh.read()
    if not has_points:
        print("skipped: this build has no crash points (configure with -DRECONCILE_CRASH_POINTS=ON)")
        sys.exit(77)

    print(f"# crash sweep, seed {args.seed}", flush=True)
    rows, failed = [], 0
    work = tempfile.mkdtemp(prefix="rc-crash-")
    t0 = time.time()
    try:
        for name in args.driver:
            rng = random.Random(f"{args.seed}/{name}")
            row, failures = sweep_driver(args, name, work, rng)
            rows.append((name, row))
            failed += len(failures)
    finally:
        if args.keep:
            print("kept " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(table(rows))
    print(f"# seed {args.seed}, {int(time.time() - t0)} s, {failed} failing points")
    if args.table_md:
        with open(args.table_md, "w") as fh:
            fh.write(table(rows, md=True) + "\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
