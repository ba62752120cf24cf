"""What the benchmark programs share: waiting for a fake's port file, and
running reconcile once with its wall time, exit status and resource
usage (peak RSS, CPU) from wait4."""
import os
import subprocess
import sys
import time


def wait_file(path, proc, what, timeout=30):
    """The stripped contents of PATH once it is written, or exit when PROC
    (if any) ends first or TIMEOUT seconds pass."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return open(path).read().strip()
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.05)
    sys.exit("%s: %s did not start" % (os.path.basename(sys.argv[0]), what))


def run_measured(argv, env):
    """(output, exit status, wall seconds, rusage) of ARGV, stdout and
    stderr together."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.stdout.read().decode(errors="replace")
    _, status, ru = os.wait4(p.pid, 0)
    p.stdout.close()
    return out, os.waitstatus_to_exitcode(status), time.monotonic() - t0, ru


def write_kube_maps(cfg, nenv, per, project, policy):
    """A configuration at cfg of nenv environments (a list generator),
    each a namespace bench-bNNN holding per raw ConfigMaps."""
    os.makedirs(os.path.join(cfg, "k8s"), exist_ok=True)
    with open(os.path.join(cfg, "k8s", "maps.yaml"), "w") as f:
        for i in range(per):
            f.write("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                    "  name: map-%03d\ndata:\n  index: \"%d\"\n"
                    "  owner: \"{{ item.name }}\"\n" % (i, i))
    items = "\n".join("        - { name: b%03d }" % i for i in range(nenv))
    with open(os.path.join(cfg, "reconcile.yaml"), "w") as f:
        f.write("""version: 1
project: %s
environments:
  bench:
    for_each:
      list:
%s
    name: "bench-{{ item.name }}"
    target:
      driver: kubernetes
      namespace: "bench-{{ item.name }}"
      qps: 10000
      burst: 10000
    policy: %s
    resources:
      - file: k8s/maps.yaml
""" % (project, items, policy))
