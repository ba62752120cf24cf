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
