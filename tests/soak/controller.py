#!/usr/bin/python3
"""The controller's fault soak: `reconcile controller` follows two
environments of examples/laravel-kubernetes (acme-staging,
globex-staging; a git work tree, `policy.drift: heal`) on rc_fake_kube
while the fake injects its seeded random faults (tests/fake/kube/
README.md, "Random faults": 429, 500, 503, resets, timeouts, spoiled
bodies, and 410 Gone on watches) at a rate and forgets its watch history
now and then (`POST /fake/compact`, so that a watch resumed from an old
resourceVersion gets 410). Meanwhile the soak commits configuration
changes (a config var, the replica count) and changes objects behind the
controller's back (a merge PATCH of a Deployment's replicas, faults off
for that request) so that its watch has something to report.

It fails when the controller dies (a signal, an exit, a sanitizer report
in its log), when /api/v1/status or /metrics stop answering, when its
log floods, when it never restarts a watch after a 410, when after the
faults are turned off it does not converge within a bound (every
environment in sync at the last commit, then `reconcile plan` of each
says "No changes"), when the fake's request log shows a request inside a
Retry-After (check_log.py), or when a secret canary shows up in its log,
status, metrics or state directory (tests/leak/sweep.py). Prints figures;
exit 1 on any failure.
    controller.py --reconcile BIN --fake-kube BIN [--seconds 70] [--rate 0.2]
                  [--seed N] [--converge-within 180] [--table FILE] [--keep]"""

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import soak  # noqa: E402
from soak import ROOT, SANITIZER, check_log, edit, free_port, git, set_config_var, set_replicas, sweep  # noqa: E402

TOKEN = 'ctl-soak-token-5d21'
ENVS = ('acme-staging', 'globex-staging')
FLOOD_PER_MIN = 600        # log lines a minute beyond which the log floods
WATCH_TIMEOUT_S = 5        # RECONCILE_KUBE_WATCH_TIMEOUT: more watches, more 410s


def setup_config(work, kube):
    """examples/laravel-kubernetes cut to two staging environments, in a
    git work tree; (directory, env of the secrets, canaries)."""
    cfg = os.path.join(work, 'cfg')
    shutil.copytree(os.path.join(ROOT, 'examples', 'laravel-kubernetes'), cfg)
    edit(os.path.join(cfg, 'reconcile.yaml'), lambda s: re.sub(
        r'(?s)\n  production:.*', '\n', re.sub(r'(?m)^        - \{ name: initech.*\n', '', s)))
    kc = os.path.join(work, 'kubeconfig')
    with open(kc, 'w') as f:
        f.write('apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {server: "%s", '
                'certificate-authority: "%s/ca.pem"}\nusers:\n- name: admin\n  user: {token: fake-admin-token}\n'
                'contexts:\n- name: staging\n  context: {cluster: fake, user: admin}\ncurrent-context: staging\n'
                % (kube.base, os.path.join(work, 'kube')))
    canaries = ['ctlsoak-%s' % secrets.token_hex(10) for _ in range(4)]
    env = {'KUBECONFIG': kc, 'ACME_STAGING_APP_KEY': 'base64:' + canaries[0],
           'ACME_STAGING_DB_PASSWORD': canaries[1], 'GLOBEX_STAGING_APP_KEY': 'base64:' + canaries[2],
           'GLOBEX_STAGING_DB_PASSWORD': canaries[3]}
    git(cfg, 'init', '-q', '-b', 'main')
    git(cfg, 'add', '-A')
    git(cfg, 'commit', '-qm', 'example')
    return cfg, env, canaries


class Controller:
    def __init__(self, args, work, cfg, env):
        self.port = free_port()
        self.misses = []    # (seconds since start, path, error) of the requests not answered
        self.log_path = os.path.join(work, 'controller.log')
        self.state = os.path.join(work, 'state')
        debug = ['--log-level', 'debug'] if args.debug else []
        self.proc = subprocess.Popen(
            [args.reconcile] + debug + ['controller', cfg, '--listen', '127.0.0.1:%d' % self.port, '--poll', '1s',
                                        '--resync', '10s', '--state-dir', self.state, '--log-format', 'json'],
            env=env, stdout=open(self.log_path, 'w'), stderr=subprocess.STDOUT, cwd=cfg)

    def get(self, path, t0=0):
        """The body, or None when it does not answer 200 within 10 s."""
        req = urllib.request.Request('http://127.0.0.1:%d%s' % (self.port, path),
                                     headers={'Authorization': 'Bearer ' + TOKEN})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.read().decode()
        except OSError as e:
            self.misses.append((time.time() - t0, path, str(e)))
            return None

    def status(self):
        try:
            return {e['name']: e for e in json.loads(self.get('/api/v1/status') or '')['environments']}
        except (ValueError, KeyError, TypeError):
            return {}

    def log(self):
        out = []
        for line in open(self.log_path, errors='replace'):
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({'level': '?', 'message': line.strip()})
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return 'hung on SIGTERM'
        return self.proc.returncode


def kube_faults(kube, rate, seed):
    """The mix of soak.py at rate, after a rule that answers that share of
    the watches (only a watch can get `gone`) with 410 Gone first."""
    kube.control('DELETE', '/fake/faults')
    if rate > 0:
        kube.control('POST', '/fake/faults', {'rules': [
            {'match': 'GET /', 'rate': rate, 'seed': seed + 500, 'kinds': ['gone']},
            {'match': '* /', 'rate': rate, 'seed': seed, 'hang_ms': soak.HANG_MS}]})


def drift(kube, ns, name, replicas):
    """A kubectl-like merge PATCH of a Deployment's replicas; True when the
    API server took it."""
    req = urllib.request.Request(kube.base + '/apis/apps/v1/namespaces/%s/deployments/%s' % (ns, name),
                                 data=json.dumps({'spec': {'replicas': replicas}}).encode(), method='PATCH')
    req.add_header('Content-Type', 'application/merge-patch+json')
    req.add_header('Authorization', 'Bearer ' + kube.token)
    try:
        urllib.request.urlopen(req, context=kube.ctx, timeout=30).read()
        return True
    except OSError:
        return False


def promtool(text, work):
    path = os.path.join(work, 'metrics.txt')
    with open(path, 'w') as f:
        f.write(text)
    tool = shutil.which('promtool')
    cmd = [tool, 'check', 'metrics'] if tool else [soak.PY, os.path.join(ROOT, 'tests/controller/check_metrics.py'),
                                                   path]
    p = subprocess.run(cmd, input=text.encode() if tool else None, capture_output=True)
    # promtool's lint notes (exit 3) are not format errors
    return p.returncode == 0 or (tool and p.returncode == 3 and b'error' not in p.stderr.lower()), \
        (p.stdout + p.stderr).decode(errors='replace')


def runs_total(metrics):
    n = 0
    for line in (metrics or '').splitlines():
        if line.startswith('reconcile_runs_total{'):
            n += int(float(line.split()[-1]))
    return n


def main():
    ap = soak.arguments(__doc__, 70)
    ap.add_argument('--converge-within', type=float, default=180)
    ap.add_argument('--debug', action='store_true', help="the controller logs at debug (no flood check)")
    args = ap.parse_args()
    args.reconcile = os.path.realpath(args.reconcile)
    if not shutil.which('git'):
        print('skipped: git is not installed')
        return 77
    work = tempfile.mkdtemp(prefix='rc-ctlsoak-')
    problems = []
    kdir = os.path.join(work, 'kube')
    os.makedirs(kdir)
    kube = soak.Fake('kube', work, [os.path.realpath(args.fake_kube), '--dir', kdir, '--port', str(free_port()),
                                    '--controller-delay-ms', '20'],
                     lambda: 'https://127.0.0.1:%s' % open(os.path.join(kdir, 'port')).read().strip(),
                     token='fake-admin-token', ready=os.path.join(kdir, 'ready'))
    kube.ctx = ssl.create_default_context(cafile=os.path.join(kdir, 'ca.pem'))
    ctl = None
    fig = {'changes': 0, 'drifts': 0, 'compactions': 0, 'samples': 0, 'unanswered': 0, 'promtool': 0}
    t0 = time.time()
    try:
        cfg, secret_env, canaries = setup_config(work, kube)
        env = dict(os.environ, NO_COLOR='1', HOME=os.path.join(work, 'home'),
                   XDG_CACHE_HOME=os.path.join(work, 'cache'),
                   RECONCILE_HTTP_TIMEOUT_MS=str(soak.HTTP_TIMEOUT_MS),
                   RECONCILE_CONTROLLER_TOKEN=TOKEN, RECONCILE_KUBE_WATCH_TIMEOUT=str(WATCH_TIMEOUT_S),
                   GIT_AUTHOR_NAME='t', GIT_AUTHOR_EMAIL='t@example.com', GIT_COMMITTER_NAME='t',
                   GIT_COMMITTER_EMAIL='t@example.com', **secret_env)
        for k in ('SLACK_WEBHOOK_URL', 'RECONCILE_STATE_DIR'):
            env.pop(k, None)
        os.makedirs(env['HOME'])
        kube_faults(kube, args.rate, args.seed)
        ctl = Controller(args, work, cfg, env)
        end = time.time() + 30
        while ctl.get('/metrics') is None and ctl.proc.poll() is None and time.time() < end:
            time.sleep(0.2)
        ctl.misses = []
        dumps = os.path.join(work, 'dumps')
        os.makedirs(dumps)
        staging = os.path.join(cfg, 'environments', 'staging.yaml')
        rnd, next_change, next_drift, next_compact = 0, time.time() + 5, time.time() + 8, time.time() + 10
        t_faults = time.time()
        while time.time() - t_faults < args.seconds:
            if ctl.proc.poll() is not None:
                problems.append('the controller exited %s under faults' % ctl.proc.returncode)
                break
            now = time.time()
            if now >= next_change:
                rnd += 1
                fn = set_config_var if rnd % 2 else set_replicas
                edit(staging, lambda s: fn(s, rnd))
                git(cfg, 'commit', '-qam', 'soak round %d' % rnd, '--allow-empty')
                fig['changes'] += 1
                next_change = now + 6
            if now >= next_drift:
                # faults off for the drift's own request, on again after it
                kube_faults(kube, 0, 0)
                ns = ENVS[fig['drifts'] % len(ENVS)]
                if drift(kube, ns, 'web', 5 + fig['drifts'] % 3):
                    fig['drifts'] += 1
                kube_faults(kube, args.rate, args.seed * 1000 + fig['drifts'])
                next_drift = now + 7
            if now >= next_compact:
                kube.control('POST', '/fake/compact')
                fig['compactions'] += 1
                next_compact = now + 10
            st, metrics = ctl.get('/api/v1/status', t0), ctl.get('/metrics', t0)
            fig['samples'] += 1
            if st is None or metrics is None:
                fig['unanswered'] += 1
            elif fig['samples'] % 15 == 1:
                ok, out = promtool(metrics, work)
                fig['promtool'] += 1
                if not ok:
                    problems.append('/metrics fails the format check: %s' % out[:400])
                with open(os.path.join(dumps, 'status-%d.json' % fig['samples']), 'w') as f:
                    f.write(st)
                with open(os.path.join(dumps, 'metrics-%d.txt' % fig['samples']), 'w') as f:
                    f.write(metrics)
            time.sleep(1)
        t_off = time.time()
        fig['fault_seconds'] = t_off - t_faults
        kube_faults(kube, 0, 0)
        head = subprocess.run(['git', '-C', cfg, 'rev-parse', 'HEAD'], capture_output=True,
                              text=True).stdout.strip()

        def converged():
            st = ctl.status()
            return len(st) == len(ENVS) and all(e.get('state') == 'in-sync' and e.get('commit') == head
                                                 and not e.get('drift') for e in st.values())
        t_conv = None
        while ctl.proc.poll() is None and time.time() - t_off < args.converge_within:
            if converged():
                t_conv = time.time() - t_off
                break
            time.sleep(0.5)
        fig['converge_s'] = t_conv
        if t_conv is None:
            problems.append('no convergence within %.0f s after the faults were turned off: %s'
                            % (args.converge_within, json.dumps(ctl.status())))
        final_metrics = ctl.get('/metrics') or ''
        final_status = ctl.get('/api/v1/status') or ''
        for name, text in (('status-final.json', final_status), ('metrics-final.txt', final_metrics)):
            with open(os.path.join(dumps, name), 'w') as f:
                f.write(text)
        fig['cycles'] = runs_total(final_metrics)
        # a plan of the same configuration: "No changes" (exit 0)
        fig['plans_clean'] = 0
        for e in ENVS:
            p = subprocess.run([args.reconcile, 'plan', cfg, '-e', e], env=dict(env, RECONCILE_STATE_DIR=ctl.state),
                               cwd=cfg, capture_output=True, text=True, timeout=soak.CMD_TIMEOUT)
            with open(os.path.join(dumps, 'plan-%s.txt' % e), 'w') as f:
                f.write(p.stdout + p.stderr)
            if p.returncode == 0 and 'No changes' in p.stdout:
                fig['plans_clean'] += 1
            else:
                problems.append('%s: the plan after convergence exited %d: %s'
                                % (e, p.returncode, (p.stdout + p.stderr)[-600:]))
        if ctl.proc.poll() is not None:
            problems.append('the controller exited %s' % ctl.proc.returncode)
        fig['stats'] = kube.control('GET', '/fake/stats')
    finally:
        rc = ctl.stop() if ctl else None
        kube.stop()
    if ctl and rc != 0:
        problems.append('the controller ended with %s after SIGTERM' % rc)
    # the controller's log
    log = ctl.log() if ctl else []
    text = open(ctl.log_path, errors='replace').read() if ctl else ''
    if SANITIZER.search(text):
        problems.append('a sanitizer report in the controller\'s log')
    msgs = [m.get('message', '') for m in log]
    fig['log_lines'] = len(log)
    fig['watch_410'] = sum(1 for m in msgs if 'expired; listing again' in m)
    fig['watch_retries'] = sum(1 for m in msgs if m.startswith('kubernetes: watching ') and '(again in' in m)
    fig['watch_starts'] = sum(1 for m in msgs if m.startswith('kubernetes: watching ') and 'from resourceVersion' in m)
    fig['warn_error'] = sum(1 for m in log if m.get('level') in ('warn', 'warning', 'error'))
    minutes = max(1.0, (time.time() - t0) / 60)
    fig['lines_per_min'] = len(log) / minutes
    if fig['lines_per_min'] > FLOOD_PER_MIN and not args.debug:
        problems.append('the log floods: %.0f lines a minute' % fig['lines_per_min'])
    fig['drift_seen'] = sum(1 for m in msgs if 'changed outside this run' in m)
    if fig['drifts'] and not fig['drift_seen']:
        problems.append('%d drifts and the watch reported none ("changed outside this run")' % fig['drifts'])
    if not fig['watch_410']:
        problems.append('no watch restarted after a 410 ("expired; listing again" in the log)')
    if fig['unanswered']:
        problems.append('/api/v1/status or /metrics did not answer %d of %d times: %s'
                        % (fig['unanswered'], fig['samples'],
                           '; '.join('%.1f s %s: %s' % m for m in ctl.misses[:5])))
    # the fake's request log
    lg = check_log.check('kube', kube.log, argparse.Namespace(limit=0, refill_per_min=0, rate=[]))
    if lg['retry_after_violations']:
        problems.append('Retry-After broken: %s' % lg['examples'])
    if not lg['retries']:
        problems.append('no faulted request was retried (%d faults)' % sum(lg['faults'].values()))
    fig['gone_watches'] = sum(1 for line in open(kube.log) if 'fault=gone' in line)
    fig['watches'] = (fig.get('stats') or {}).get('by_verb', {}).get('WATCH', 0)
    # the canaries
    hits, files = sweep.sweep([c.encode() for c in canaries], [],
                              [p for p in (ctl.log_path, os.path.join(work, 'dumps'), ctl.state) if os.path.exists(p)],
                              say=lambda m: problems.append('leak: ' + m))
    report(fig, lg, hits, files, len(canaries), args)
    return soak.finish(work, problems, args.keep)


def report(fig, lg, hits, files, ncanaries, args):
    conv = '%.1f s' % fig['converge_s'] if fig.get('converge_s') is not None else 'not converged'
    lines = ['| faults on | requests | injected faults | retries | Retry-After violations | watch restarts after 410 '
             '(log) | watch retries (log) | cycles | changes, drifts (reported by the watch), compactions | '
             'log lines (warn/error) | '
             'converged after faults off | clean plans |',
             '|---|---|---|---|---|---|---|---|---|---|---|---|',
             '| %.0f s | %d | %s | %d | %d | %d | %d | %d | %d, %d (%d), %d | %d (%d) | %s | %d/%d |' % (
                 fig.get('fault_seconds', 0), lg['requests'],
                 ', '.join('%s %d' % kv for kv in lg['faults'].items()) or '0', lg['retries'],
                 lg['retry_after_violations'], fig['watch_410'], fig['watch_retries'], fig.get('cycles', 0),
                 fig['changes'], fig['drifts'], fig.get('drift_seen', 0), fig['compactions'], fig['log_lines'],
                 fig['warn_error'], conv,
                 fig.get('plans_clean', 0), len(ENVS)),
             '',
             'fault rate %.2f, seed %d; %d status/metrics samples, %d unanswered, %d format checks; '
             '%d watch requests, %d 410 Gone injected on watches, %d shared watches started from a LIST; '
             'leaks: %d hits for %d canaries in %d files'
             % (args.rate, args.seed, fig['samples'], fig['unanswered'], fig['promtool'], fig['watches'],
                fig['gone_watches'], fig['watch_starts'], hits, ncanaries, files)]
    soak.emit('\n'.join(lines), args.table)


if __name__ == '__main__':
    sys.exit(main())
