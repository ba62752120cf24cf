#!/usr/bin/python3
"""The controller's deployment files, read as the cluster, Docker and
systemd would read them: every manifest parses, the container runs
`reconcile controller` with flags the controller has, the probes reach
/healthz and /readyz on the port it listens on, the RBAC grants what the
Kubernetes driver's documentation asks for and no wildcard, the Secret
holds the two variables the Deployment reads, the security context is
locked down, the HA variant (kubernetes-ha/) turns on leader election on
a shared volume, the Dockerfile's final stage has no compiler and runs as
a fixed non-root uid, the systemd unit has its hardening.

    check_files.py ROOT [--no-tools]
        prints ok/FAIL lines; exit 1 on a failure. --no-tools leaves out
        the checks that run kubectl (kustomize) and apt-cache (slow).
"""
import copy
import os
import re
import shlex
import shutil
import subprocess
import sys

import yaml

# The flags of `reconcile controller` (issue 11, the interface), and
# whether each takes a value.
FLAGS = {
    "--listen": True, "--poll": True, "--resync": True, "--state-dir": True,
    "--leader-elect": False, "--lease": True, "--shards": True,
    "--shard": True, "--log-format": True,
}
SECRET_VARS = {"RECONCILE_CONTROLLER_TOKEN", "RECONCILE_WEBHOOK_SECRET"}
COMPILERS = {"gcc", "cc", "clang", "g++", "cpp", "make", "cmake",
             "build-essential", "pkg-config", "libc6-dev"}

passed = failed = 0
tools = True


def check(name, cond, *detail):
    global passed, failed
    if cond:
        passed += 1
        print("ok " + name)
    else:
        failed += 1
        print("FAIL " + name)
        for d in detail:
            print("  %s" % (d,))
    return cond


def load_dir(d):
    """{(kind, name): object} and the files, for every YAML file in d."""
    objs, files = {}, {}
    for f in sorted(os.listdir(d)):
        if not f.endswith((".yaml", ".yml")):
            continue
        try:
            with open(os.path.join(d, f)) as fh:
                docs = [x for x in yaml.safe_load_all(fh) if x is not None]
        except yaml.YAMLError as e:
            check("%s parses" % f, False, e)
            continue
        check("%s parses" % f, docs)
        files[f] = docs
        if f == "kustomization.yaml":
            continue
        for o in docs:
            md = o.get("metadata") or {}
            check("%s: %s has apiVersion, kind and metadata.name" %
                  (f, o.get("kind")),
                  o.get("apiVersion") and o.get("kind") and md.get("name"))
            objs[(o.get("kind"), md.get("name"))] = o
    return objs, files


def one(objs, kind):
    found = [o for (k, _), o in objs.items() if k == kind]
    return found[0] if len(found) == 1 else None


def json_patch(doc, ops):
    """The subset of RFC 6902 kustomize overlays use here."""
    doc = copy.deepcopy(doc)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~")
                 for p in op["path"].split("/")[1:]]
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent[p]
        last = parts[-1]
        if isinstance(parent, list):
            if op["op"] == "add":
                parent.insert(len(parent) if last == "-" else int(last),
                              op["value"])
            elif op["op"] == "replace":
                parent[int(last)] = op["value"]
            else:
                del parent[int(last)]
        elif op["op"] in ("add", "replace"):
            parent[last] = op["value"]
        else:
            del parent[last]
    return doc


def parse_args(args):
    """The flags of a `reconcile controller` command line and its
    positionals; unknown flags and missing values as problems."""
    flags, positional, problems = {}, [], []
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("-"):
            name, eq, value = a.partition("=")
            if name not in FLAGS:
                problems.append("%s is not a flag of reconcile controller" % a)
            elif FLAGS[name] and not eq:
                if i + 1 >= len(args) or args[i + 1].startswith("--"):
                    problems.append("%s needs a value" % name)
                else:
                    value = args[i + 1]
                    i += 1
            elif not FLAGS[name] and eq:
                problems.append("%s takes no value" % name)
            flags[name] = value
        else:
            positional.append(a)
        i += 1
    if len(positional) > 1:
        problems.append("more than one SOURCE: %s" % positional)
    return flags, positional, problems


def container_port(container, port):
    """A probe's or a Service's port, named or numbered, as a number."""
    for p in container.get("ports") or []:
        if port in (p.get("name"), p.get("containerPort")):
            return p.get("containerPort")
    return port if isinstance(port, int) else None


def check_deployment(objs, label, replicas, leader_elect, access_mode):
    dep = one(objs, "Deployment")
    if not check("%s: one Deployment" % label, dep):
        return
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    cs = pod.get("containers") or []
    if not check("%s: one container" % label, len(cs) == 1, cs):
        return
    c = cs[0]
    args = c.get("args") or []
    check("%s: the container runs `reconcile controller` (the image's "
          "entrypoint is reconcile)" % label,
          args[:1] == ["controller"] and not c.get("command"), args)
    flags, positional, problems = parse_args(args[1:])
    check("%s: every container arg is a flag of reconcile controller" %
          label, not problems, *problems)
    check("%s: one SOURCE" % label, len(positional) == 1, positional)
    listen = flags.get("--listen", "127.0.0.1:8080")
    host, _, port = listen.rpartition(":")
    check("%s: --listen 0.0.0.0:PORT, reachable by the kubelet and the "
          "Service" % label, host == "0.0.0.0" and port.isdigit(), listen)
    port = int(port) if port.isdigit() else None
    check("%s: the container port is the listen port" % label,
          [p.get("containerPort") for p in c.get("ports") or []] == [port],
          c.get("ports"))
    for probe, path in (("livenessProbe", "/healthz"),
                        ("readinessProbe", "/readyz")):
        g = (c.get(probe) or {}).get("httpGet") or {}
        check("%s: %s is GET %s on port %s" % (label, probe, path, port),
              g.get("path") == path and
              container_port(c, g.get("port")) == port, c.get(probe))
    check("%s: %d replica(s), strategy %s" %
          (label, replicas, "Recreate" if replicas == 1 else "RollingUpdate"),
          spec.get("replicas") == replicas and
          (spec.get("strategy") or {}).get("type") ==
          ("Recreate" if replicas == 1 else "RollingUpdate"),
          spec.get("replicas"), spec.get("strategy"))
    check("%s: --leader-elect %s" % (label, "on" if leader_elect else "off"),
          ("--leader-elect" in flags) == leader_elect, args)

    # the state on the claimed volume
    mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts") or []}
    vols = {v["name"]: v for v in pod.get("volumes") or []}
    state = flags.get("--state-dir", "")
    claims = [(n, v["persistentVolumeClaim"]["claimName"])
              for n, v in vols.items() if "persistentVolumeClaim" in v]
    on_claim = [n for n, _ in claims if n in mounts and
                (state + "/").startswith(mounts[n].rstrip("/") + "/")]
    check("%s: --state-dir is on the PersistentVolumeClaim's volume" % label,
          state and on_claim, state, mounts, claims)
    pvc = objs.get(("PersistentVolumeClaim", claims[0][1])) if claims else None
    check("%s: the claim exists, %s" % (label, access_mode),
          pvc and pvc["spec"].get("accessModes") == [access_mode],
          pvc and pvc["spec"])

    # security
    psc, csc = pod.get("securityContext") or {}, c.get("securityContext") or {}
    check("%s: runAsNonRoot with a fixed non-root uid" % label,
          (psc.get("runAsNonRoot") or csc.get("runAsNonRoot")) and
          (csc.get("runAsUser") or psc.get("runAsUser") or 0) > 0, psc, csc)
    check("%s: readOnlyRootFilesystem, no privilege escalation, "
          "capabilities drop ALL" % label,
          csc.get("readOnlyRootFilesystem") is True and
          csc.get("allowPrivilegeEscalation") is False and
          (csc.get("capabilities") or {}).get("drop") == ["ALL"] and
          not (csc.get("capabilities") or {}).get("add"), csc)
    seccomp = (csc.get("seccompProfile") or psc.get("seccompProfile") or {})
    check("%s: seccomp RuntimeDefault" % label,
          seccomp.get("type") == "RuntimeDefault", seccomp)
    check("%s: not privileged, no host namespaces" % label,
          not csc.get("privileged") and not any(
              pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")))
    res = c.get("resources") or {}
    mem = [(res.get(k) or {}).get("memory", "") for k in ("requests", "limits")]
    check("%s: memory requested and limited in megabytes" % label,
          all(re.fullmatch(r"[0-9]+Mi", m) for m in mem) and
          int(mem[0][:-2]) <= int(mem[1][:-2]) <= 512, res)

    # the secrets
    env = {e["name"]: e for e in c.get("env") or []}
    refs = {n: e["valueFrom"]["secretKeyRef"] for n, e in env.items()
            if "secretKeyRef" in (e.get("valueFrom") or {})}
    check("%s: the two secrets come from a Secret, each under its own "
          "variable's name" % label,
          set(refs) == SECRET_VARS and
          all(r["key"] == n and not r.get("optional") for n, r in refs.items()),
          refs)
    check("%s: no secret value written in the Deployment" % label,
          not any(n in SECRET_VARS and "value" in e for n, e in env.items()))
    check("%s: POD_NAME from the downward API (the Lease holder)" % label,
          ((env.get("POD_NAME") or {}).get("valueFrom") or {})
          .get("fieldRef", {}).get("fieldPath") == "metadata.name")
    return dep, c, port, refs


def check_rbac(objs, dep, driver_rules):
    ns = dep["metadata"]["namespace"]
    sa_name = dep["spec"]["template"]["spec"].get("serviceAccountName")
    check("the Deployment runs as the ServiceAccount in its namespace",
          sa_name and ("ServiceAccount", sa_name) in objs and
          objs[("ServiceAccount", sa_name)]["metadata"].get("namespace") == ns,
          sa_name)
    granted, wild = set(), []
    for (kind, name), o in objs.items():
        if kind not in ("Role", "ClusterRole"):
            continue
        for r in o.get("rules") or []:
            for field in ("apiGroups", "resources", "verbs"):
                if "*" in (r.get(field) or []):
                    wild.append("%s %s: %s %s" % (kind, name, field, r))
            for g in r.get("apiGroups") or []:
                for res in r.get("resources") or []:
                    for v in r.get("verbs") or []:
                        granted.add((kind, o["metadata"].get("namespace"),
                                     g, res, v))
    check("no wildcard in any rule", not wild, *wild)
    bound = set()
    for (kind, name), o in objs.items():
        if kind not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        ref = o.get("roleRef") or {}
        role = objs.get((ref.get("kind"), ref.get("name")))
        check("%s %s binds a Role in these files" % (kind, name), role, ref)
        subjects = [(s.get("kind"), s.get("name"), s.get("namespace"))
                    for s in o.get("subjects") or []]
        check("%s %s binds the ServiceAccount only" % (kind, name),
              subjects == [("ServiceAccount", sa_name, ns)], subjects)
        if role:
            bound.add((ref["kind"], ref["name"]))
    lease = {v for (k, rns, g, res, v) in granted
             if g == "coordination.k8s.io" and res == "leases" and
             (k, rns) == ("Role", ns)}
    check("leases get/create/update in coordination.k8s.io, in a Role of "
          "the controller's namespace", lease == {"get", "create", "update"},
          sorted(lease))
    check("no cluster-wide leases",
          not any(k == "ClusterRole" and res == "leases"
                  for (k, _, _, res, _) in granted))
    check("every Role is bound",
          bound == {(k, n) for (k, n) in objs if k in ("Role", "ClusterRole")},
          bound)
    cluster = {(g, res, v) for (k, _, g, res, v) in granted
               if k == "ClusterRole"}
    missing = sorted(set(driver_rules) - cluster)
    extra = sorted(cluster - set(driver_rules))
    check("the ClusterRole grants what docs/drivers/kubernetes.md asks for",
          driver_rules and not missing, *missing)
    check("the ClusterRole grants nothing more", not extra, *extra)


def driver_rules(root):
    """(group, resource, verb) of the ClusterRole in the Kubernetes
    driver's documentation, leases (a Role here) left out."""
    with open(os.path.join(root, "docs/drivers/kubernetes.md")) as f:
        text = f.read()
    out = set()
    for block in re.findall(r"```yaml\n(.*?)```", text, re.S):
        for d in yaml.safe_load_all(block):
            if not d or d.get("kind") != "ClusterRole":
                continue
            for r in d.get("rules") or []:
                for g in r["apiGroups"]:
                    for res in r["resources"]:
                        for v in r["verbs"]:
                            if res != "leases":
                                out.add((g, res, v))
    return out


def check_kubernetes(root):
    base = os.path.join(root, "examples/controller/kubernetes")
    objs, files = load_dir(base)
    kust = (files.get("kustomization.yaml") or [{}])[0]
    listed = kust.get("resources") or []
    want = sorted(f for f in files if f not in
                  ("kustomization.yaml", "secret.example.yaml"))
    check("kustomization.yaml lists every manifest but the Secret example",
          sorted(listed) == want, listed, want)
    check("the Secret example is not applied by kustomize",
          "secret.example.yaml" not in listed)
    got = check_deployment(objs, "deployment.yaml", 1, False, "ReadWriteOnce")
    if not got:
        return
    dep, c, port, refs = got
    ns = dep["metadata"]["namespace"]
    check("every namespaced object is in the controller's namespace",
          all(o["metadata"].get("namespace") == ns for (k, _), o in
              objs.items() if k not in ("Namespace", "ClusterRole",
                                         "ClusterRoleBinding")))
    check_rbac(objs, dep, driver_rules(root))

    secret = one(objs, "Secret")
    data = (secret or {}).get("stringData") or {}
    check("secret.example.yaml holds the two variables, by name",
          secret and set(data) == SECRET_VARS and not secret.get("data"),
          sorted(data))
    check("the Deployment reads that Secret",
          secret and all(r["name"] == secret["metadata"]["name"]
                         for r in refs.values()), refs)
    check("the Secret example holds placeholders only",
          all(str(v).startswith("REPLACE-") for v in data.values()))

    svc = one(objs, "Service")
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    sel = (svc or {}).get("spec", {}).get("selector") or {}
    check("the Service selects the controller's pods", sel and all(
        pod_labels.get(k) == v for k, v in sel.items()), sel)
    check("the Service's port reaches the listen port", svc and [
        container_port(c, p.get("targetPort", p.get("port")))
        for p in svc["spec"]["ports"]] == [port], svc and svc["spec"])

    # the two-replica variant: kustomize's patches over these files
    ha_dir = os.path.join(root, "examples/controller/kubernetes-ha")
    with open(os.path.join(ha_dir, "kustomization.yaml")) as f:
        ha = yaml.safe_load(f)
    check("kubernetes-ha/ builds on kubernetes/",
          ha.get("resources") == ["../kubernetes"], ha.get("resources"))
    ha_objs = copy.deepcopy(objs)
    del ha_objs[("Secret", secret["metadata"]["name"])]
    for p in ha.get("patches") or []:
        t = p["target"]
        key = (t["kind"], t["name"])
        check("kubernetes-ha/: the patch target %s/%s exists" % key,
              key in ha_objs)
        if key in ha_objs:
            ha_objs[key] = json_patch(ha_objs[key], yaml.safe_load(p["patch"]))
    check_deployment(ha_objs, "kubernetes-ha", 2, True, "ReadWriteMany")
    kubectl = tools and shutil.which("kubectl")
    if kubectl:
        r = subprocess.run([kubectl, "kustomize", ha_dir], capture_output=True,
                           text=True)
        built = {(o["kind"], o["metadata"]["name"]): o
                 for o in yaml.safe_load_all(r.stdout) if o}
        check("kubectl kustomize kubernetes-ha/ gives the same objects",
              r.returncode == 0 and built == ha_objs, r.stderr[-2000:],
              sorted(set(built) ^ set(ha_objs)))


def dockerfile_stages(path):
    stages, cur = [], None
    with open(path) as f:
        text = re.sub(r"\\\n", " ", f.read())
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            cur = {"from": rest.split()[0], "lines": []}
            stages.append(cur)
        elif cur is not None:
            cur["lines"].append((word, rest.strip()))
    return stages


def check_dockerfile(root):
    stages = dockerfile_stages(os.path.join(root, "Dockerfile"))
    check("Dockerfile: multi-stage on debian:12-slim",
          len(stages) >= 2 and all(s["from"] == "debian:12-slim"
                                   for s in stages),
          [s["from"] for s in stages])
    final = stages[-1]
    instr = {}
    for w, rest in final["lines"]:
        instr.setdefault(w, []).append(rest)
    pkgs = []
    for run in instr.get("RUN", []):
        for cmd in re.split(r"&&|;", run):
            words = cmd.split()
            if "install" in words and any("apt" in w for w in words):
                pkgs += [w for w in words[words.index("install") + 1:]
                         if not w.startswith("-")]
    check("Dockerfile: the final stage installs no compiler, build tool or "
          "-dev package", pkgs and not [p for p in pkgs if p in COMPILERS or
                                        p.endswith("-dev")], pkgs)
    check("Dockerfile: the final stage copies only the binary from the build",
          all("--from=" not in c or c.split()[-1] == "/usr/local/bin/reconcile"
              for c in instr.get("COPY", [])), instr.get("COPY"))
    user = (instr.get("USER") or [""])[-1]
    check("Dockerfile: a fixed non-root uid",
          re.fullmatch(r"[1-9][0-9]*(:[1-9][0-9]*)?", user), user)
    check('Dockerfile: ENTRYPOINT ["reconcile"]',
          instr.get("ENTRYPOINT") == ['["reconcile"]'], instr.get("ENTRYPOINT"))
    check('Dockerfile: CMD controller --listen 0.0.0.0:8080',
          instr.get("CMD") == ['["controller", "--listen", "0.0.0.0:8080"]'],
          instr.get("CMD"))
    apt_cache = tools and shutil.which("apt-cache")
    if apt_cache and os.path.exists("/etc/debian_version"):
        with open("/etc/debian_version") as f:
            bookworm = f.read().startswith("12")
        if bookworm:
            r = subprocess.run([apt_cache, "show", "--no-all-versions"] + pkgs,
                               capture_output=True, text=True)
            found = set(re.findall(r"^Package: (\S+)$", r.stdout, re.M))
            check("Dockerfile: every runtime package is in Debian 12",
                  found == set(pkgs), sorted(set(pkgs) - found))
    dep = yaml.safe_load(open(os.path.join(
        root, "examples/controller/kubernetes/deployment.yaml")))
    uid = dep["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    check("Dockerfile: the image's uid is the Deployment's runAsUser",
          user.split(":")[0] == str(uid), user, uid)


def check_systemd(root):
    path = os.path.join(root, "examples/controller/systemd/reconcile.service")
    keys = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith(("#", ";", "[")) and "=" in line:
                k, _, v = line.partition("=")
                keys.setdefault(k, []).append(v)
    want = {
        "DynamicUser": "yes", "StateDirectory": "reconcile",
        "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "NoNewPrivileges": "yes", "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "Restart": "on-failure",
    }
    for k, v in want.items():
        check("reconcile.service: %s=%s" % (k, v), keys.get(k) == [v],
              keys.get(k))
    check("reconcile.service: SystemCallFilter=@system-service",
          "@system-service" in keys.get("SystemCallFilter", []))
    check("reconcile.service: the tokens from an EnvironmentFile",
          keys.get("EnvironmentFile") and not any(
              v in " ".join(keys.get("Environment", []))
              for v in SECRET_VARS))
    argv = shlex.split((keys.get("ExecStart") or [""])[0])
    check("reconcile.service: ExecStart runs reconcile controller",
          argv[:2] == ["/usr/local/bin/reconcile", "controller"], argv)
    flags, positional, problems = parse_args(argv[2:])
    check("reconcile.service: every arg is a flag of reconcile controller",
          not problems and len(positional) == 1, *problems)
    check("reconcile.service: --state-dir ${STATE_DIRECTORY}",
          flags.get("--state-dir") == "${STATE_DIRECTORY}", flags)


def main():
    global tools
    root = sys.argv[1]
    tools = "--no-tools" not in sys.argv[2:]
    check_kubernetes(root)
    check_dockerfile(root)
    check_systemd(root)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
