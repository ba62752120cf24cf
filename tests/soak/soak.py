#!/usr/bin/python3
"""The fault soak: for a bounded time, `reconcile plan` and `reconcile
apply` over the examples again and again, each platform's fake injecting
random faults (tests/fake/*/README.md, "Random faults") at a rate, the
configuration changed between rounds (an image tag, a config var, a
replica count) so that updates happen. Every command must converge or
fail with an error that names what failed; never a crash (a signal, a
sanitizer report), a hang (a timeout per command) or a silent success
with a wrong state (after each successful apply the faults are turned
off and a plan must be clean). Secret canaries are searched for in every
output, the state directories and the fakes' logs (tests/leak/sweep.py).
The fakes' request logs are then checked (check_log.py): Retry-After
honoured, the rate budgets kept. Prints a table; exit 1 on any failure.
    soak.py --reconcile BIN --fake-kube BIN [--seconds 80] [--rate 0.2]
            [--seed N] [--local-every 4] [--table FILE] [--keep]"""

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.join(ROOT, 'tests', 'leak'))
import check_log  # noqa: E402
import sweep  # noqa: E402

PY = '/usr/bin/python3'
CMD_TIMEOUT = int(os.environ.get('SOAK_CMD_TIMEOUT', '240'))  # s: a command that takes longer hangs
HTTP_TIMEOUT_MS = 2000    # the client's attempt timeout in the soak
HANG_MS = 3000            # a "timeout" fault: longer than that
HEROKU_LIMIT, HEROKU_REFILL = 400, 75   # the bucket; 75/min is what the driver expects
HEROKU_RESERVE = 20
SANITIZER = re.compile(r'(ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:|'
                       r'SUMMARY: \w+Sanitizer)')
# an error that names what failed: a resource key env/kind/name, an HTTP
# method and path, or an operation of a driver
NAMED = re.compile(r'([\w.-]+/[\w.-]+/[\w.@-]+|\b(GET|POST|PUT|PATCH|DELETE) /|'
                   r'\b(create|update|delete|observe|list|read|register|describe|wait|'
                   r'release|hook|apply|patch|get|run)\w*\b)', re.I)


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_file(path, proc, what, timeout=30):
    end = time.time() + timeout
    while not os.path.exists(path) or not open(path).read().strip():
        if proc.poll() is not None or time.time() > end:
            raise SystemExit('FAIL setup: %s did not start' % what)
        time.sleep(0.05)


class Fake:
    """A fake platform: its process, control API and request log."""

    def __init__(self, name, work, argv, base, ctx=None, token=None, ready=None):
        self.name, self.ctx, self.token = name, ctx, token
        self.log = os.path.join(work, name + '.requests')
        self.err = open(os.path.join(work, name + '.stderr'), 'w')
        self.proc = subprocess.Popen(argv + ['--log', self.log], stdout=subprocess.DEVNULL,
                                     stderr=self.err)
        wait_file(ready, self.proc, 'the %s fake' % name)
        self.base = base()

    def control(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header('Content-Type', 'application/json')
        if self.token:
            req.add_header('Authorization', 'Bearer ' + self.token)
        return json.loads(urllib.request.urlopen(req, context=self.ctx, timeout=30).read() or b'null')

    def faults(self, rate, seed):
        rule = {'rate': rate, 'seed': seed, 'hang_ms': HANG_MS}
        self.control('DELETE', '/fake/faults')
        if rate <= 0:
            return
        if self.name == 'kube':
            self.control('POST', '/fake/faults', {'rules': [dict(rule, match='* /')]})
        else:
            self.control('POST', '/fake/faults', rule)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.err.close()


def start_registries(work):
    """The source registry and the Heroku registry stand-in
    (tests/registry/registries.sh) with two images pushed: their env."""
    d = os.path.join(work, 'reg')
    with open(os.path.join(work, 'registries.log'), 'w') as log:
        if subprocess.run(['bash', os.path.join(ROOT, 'tests/registry/registries.sh'), 'start', d],
                          stdout=log, stderr=log).returncode:
            raise SystemExit('FAIL setup: the registries did not start (%s/registries.log)' % work)
    env = dict(l.strip().split('=', 1) for l in open(os.path.join(d, 'env')) if '=' in l)
    env = {k: v.strip('"\'') for k, v in env.items()}
    for tag, seed in (('9c1e4b2', 'image-a'), ('7d0a3f8', 'image-a'), ('9c1e4b3', 'image-b')):
        subprocess.run([PY, os.path.join(ROOT, 'tests/registry/push_image.py'),
                        'http://127.0.0.1:%s' % env['SRC_PORT'], 'cityofaustin/joplin-app', tag, '--seed', seed],
                       check=True, stdout=subprocess.DEVNULL)
    return d, env


def start_fakes(work, kube_bin, heroku_key):
    kdir = os.path.join(work, 'kube')
    os.makedirs(kdir)
    kport = free_port()
    kube = Fake('kube', work, [kube_bin, '--dir', kdir, '--port', str(kport), '--controller-delay-ms', '20'],
                lambda: 'https://127.0.0.1:%s' % open(os.path.join(kdir, 'port')).read().strip(),
                token='fake-admin-token', ready=os.path.join(kdir, 'ready'))
    ctx = ssl.create_default_context(cafile=os.path.join(kdir, 'ca.pem'))
    kube.ctx = ctx
    hport = os.path.join(work, 'heroku.port')
    heroku = Fake('heroku', work, [PY, os.path.join(ROOT, 'tests/fake/heroku/fake_heroku.py'),
                                   '--key', heroku_key, '--port-file', hport,
                                   '--rate-limit', str(HEROKU_LIMIT), '--refill-per-min', str(HEROKU_REFILL),
                                   '--addon-delay-ms', '100', '--release-delay-ms', '100'],
                  lambda: 'http://127.0.0.1:%s' % open(hport).read().strip(), ready=hport)
    eport = os.path.join(work, 'ecs.port')
    ecs = Fake('ecs', work, [PY, os.path.join(ROOT, 'tests/fake/ecs/fake_ecs.py'),
                             '--credentials', 'AKIDSOAK0001:ECS_SECRET', '--port-file', eport,
                             '--deployment-ms', '150', '--scale-ms', '100', '--task-start-ms', '50',
                             '--task-run-ms', '100'],
               lambda: 'http://127.0.0.1:%s' % open(eport).read().strip(), ready=eport)
    return kube, heroku, ecs


def git(cfg, *args):
    subprocess.run(['git', '-C', cfg] + list(args), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def edit(path, fn):
    with open(path) as f:
        s = f.read()
    t = fn(s)
    with open(path, 'w') as f:
        f.write(t)
    return t != s


def set_config_var(s, n):
    """SOAK_ROUND: n under the first `config:` block."""
    if 'SOAK_ROUND:' in s:
        return re.sub(r'SOAK_ROUND: "\d+"', 'SOAK_ROUND: "%d"' % n, s)
    return re.sub(r'(?m)^(\s*)config:\n', lambda m: '%sconfig:\n%s  SOAK_ROUND: "%d"\n'
                  % (m.group(1), m.group(1), n), s, count=1)


def set_tag(s, n, tags=None):
    """The first image's tag: soak-N, or one of tags in turn."""
    tag = tags[n % len(tags)] if tags else 'soak-%d' % n
    return re.sub(r'(image: "?[\w./:-]+?/[\w./-]+):[\w.-]+', lambda m: '%s:%s' % (m.group(1), tag), s, count=1)


def set_replicas(s, n):
    """The first replica count: 1 or 2."""
    return re.sub(r'replicas: \d+', 'replicas: %d' % (1 + n % 2), s, count=1)


class Example:
    def __init__(self, name, work, src, env, envvars, fake, canaries, changes, edit_file, branch='main',
                 tags=None):
        self.name, self.env, self.fake, self.canaries = name, env, fake, canaries
        self.branch, self.tags = branch, tags
        self.cfg = os.path.join(work, 'cfg-' + name)
        shutil.copytree(os.path.join(ROOT, 'examples', src), self.cfg)
        self.state = os.path.join(work, 'state-' + name)
        self.vars = dict(envvars, RECONCILE_STATE_DIR=self.state)
        self.changes, self.edit_file = changes, os.path.join(self.cfg, edit_file)
        self.n = 0

    def commit(self, what):
        git(self.cfg, 'add', '-A')
        git(self.cfg, 'commit', '-qm', what, '--allow-empty')

    def change(self, rnd):
        """The next change of the configuration: (what, changed)."""
        kind = self.changes[rnd % len(self.changes)]
        fn = {'image': lambda s, n: set_tag(s, n, self.tags), 'config': set_config_var,
              'replicas': set_replicas}[kind]
        changed = edit(self.edit_file, lambda s: fn(s, rnd + 1))
        self.commit('soak round %d: %s' % (rnd, kind))
        return kind, changed


def setup_examples(work, kube, heroku, ecs, canary, reg):
    exs = []
    # Kubernetes: examples/laravel-kubernetes, environment acme-staging
    kc = os.path.join(work, 'kubeconfig')
    kdir = os.path.join(work, 'kube')
    with open(kc, 'w') as f:
        f.write('apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {server: "%s", '
                'certificate-authority: "%s/ca.pem"}\nusers:\n- name: admin\n  user: {token: fake-admin-token}\n'
                'contexts:\n- name: staging\n  context: {cluster: fake, user: admin}\n- name: production\n'
                '  context: {cluster: fake, user: admin}\ncurrent-context: staging\n' % (kube.base, kdir))
    c = [canary('k'), canary('k')]
    exs.append(Example('kubernetes', work, 'laravel-kubernetes', 'acme-staging',
                       {'KUBECONFIG': kc, 'ACME_STAGING_APP_KEY': 'base64:' + c[0],
                        'ACME_STAGING_DB_PASSWORD': c[1]}, kube, c,
                       ['image', 'config', 'replicas'], 'environments/staging.yaml'))
    # Heroku: examples/django-heroku, environment staging, without the
    # local hooks (they need PostgreSQL's tools) and review apps (a git
    # server); images from the source registry into the stand-in
    c = [canary('h'), canary('h'), canary('h')]
    h = Example('heroku', work, 'django-heroku', 'staging',
                {'HEROKU_API_KEY': reg['PASSWORD'], 'HEROKU_API_URL': heroku.base,
                 'HEROKU_REGISTRY_URL': 'http://127.0.0.1:%s' % reg['DST_PORT'],
                 'JOPLIN_SECRET_KEY': c[0], 'JOPLIN_S3_KEYID': c[1], 'JOPLIN_S3_ACCESSKEY': c[2]},
                heroku, c, ['image', 'config', 'replicas'], 'environments/staging.yaml', branch='master',
                tags=['9c1e4b3', '9c1e4b2'])
    edit(os.path.join(h.cfg, 'reconcile.yaml'),
         lambda s: re.sub(r'(?s)\n  review:.*', '\n', re.sub(r'(?m)^repositories:\n.*\n', '', s)))
    edit(os.path.join(h.cfg, 'environments/base.yaml'),
         lambda s: re.sub(r'(?s)  on_rollback:.*', '', re.sub(r'(?s)  pre_apply:.*?(  post_apply:)', r'\1', s))
         .replace('  region: us\n', '  region: us\n  rate_reserve: %d\n' % HEROKU_RESERVE))
    for f in ('staging.yaml', 'production.yaml'):
        edit(os.path.join(h.cfg, 'environments', f), lambda s: s.replace(
            'docker.io/cityofaustin/joplin-app', '127.0.0.1:%s/cityofaustin/joplin-app' % reg['SRC_PORT']))
    edit(os.path.join(h.cfg, 'environments/staging.yaml'),
         lambda s: s.replace('    size: standard-1x\n', '    size: standard-1x\n    replicas: 1\n'))
    exs.append(h)
    # ECS: examples/java-ecs, environment dev
    c = [canary('e'), canary('e')]
    exs.append(Example('ecs', work, 'java-ecs', 'dev',
                       {'AWS_ENDPOINT_URL': ecs.base, 'AWS_ACCESS_KEY_ID': 'AKIDSOAK0001',
                        'AWS_SECRET_ACCESS_KEY': 'ECS_SECRET', 'AWS_REGION': 'us-east-1',
                        'RETAIL_DEV_DB_PASSWORD': c[0], 'RETAIL_DEV_MQ_PASSWORD': c[1]},
                       ecs, c, ['image', 'config', 'replicas'], 'environments/dev.yaml'))
    # local: examples/local-quickstart, environment dev, on free ports,
    # with a secret added
    c = [canary('l')]
    loc = Example('local', work, 'local-quickstart', 'dev', {'SOAK_LOCAL_TOKEN': c[0]}, None, c,
                  ['config'], 'reconcile.yaml')
    api, web = free_port(), free_port()
    edit(loc.edit_file, lambda s: s.replace('5000', str(api)).replace('8080', str(web)).replace(
        '    config:\n', '    secrets:\n      SOAK_TOKEN: { env: SOAK_LOCAL_TOKEN }\n\n    config:\n', 1))
    exs.append(loc)
    for e in exs:
        git(e.cfg, 'init', '-q', '-b', e.branch)
        e.commit('example')
    return exs


class Soak:
    def __init__(self, args, work):
        self.args, self.work = args, work
        self.outs = os.path.join(work, 'out')
        os.makedirs(self.outs)
        self.env = dict(os.environ, NO_COLOR='1', HOME=os.path.join(work, 'home'),
                        XDG_CACHE_HOME=os.path.join(work, 'cache'), RECONCILE_HTTP_TIMEOUT_MS=str(HTTP_TIMEOUT_MS),
                        GIT_AUTHOR_NAME='t', GIT_AUTHOR_EMAIL='t@example.com', GIT_COMMITTER_NAME='t',
                        GIT_COMMITTER_EMAIL='t@example.com')
        for k in ('SLACK_WEBHOOK_URL', 'AWS_PROFILE', 'AWS_SESSION_TOKEN', 'RECONCILE_STATE_DIR'):
            self.env.pop(k, None)
        os.makedirs(self.env['HOME'])
        self.seq = 0
        self.rows = {}      # example -> {outcome: n}
        self.problems = []  # what fails the soak

    def run(self, ex, what, args):
        """(exit status or 'hang'/'crash', stdout+stderr) of one command."""
        self.seq += 1
        out_path = os.path.join(self.outs, '%04d-%s-%s' % (self.seq, ex.name, what))
        env = dict(self.env, **ex.vars)
        t0 = time.time()
        with open(out_path, 'wb') as out:
            p = subprocess.Popen([self.args.reconcile] + args + [ex.cfg, '-e', ex.env], env=env,
                                 stdout=out, stderr=subprocess.STDOUT, cwd=ex.cfg)
            try:
                rc = p.wait(CMD_TIMEOUT)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                rc = 'hang'
        text = open(out_path, errors='replace').read()
        if rc != 'hang' and (rc < 0 or rc > 128 or SANITIZER.search(text)):
            rc = 'crash'
        if self.args.verbose:
            print('  %s %s: %s (%.1f s)' % (ex.name, what, rc, time.time() - t0), flush=True)
        return rc, text, out_path

    def count(self, ex, outcome):
        row = self.rows.setdefault(ex.name, {})
        row[outcome] = row.get(outcome, 0) + 1

    def judge_failure(self, ex, what, rc, text, path):
        """An exit 1: failed clearly when the error names what failed."""
        err = '\n'.join(l for l in text.splitlines() if re.search(r'\b(error|failed|cannot)\b', l, re.I))
        if rc == 1 and err and NAMED.search(err):
            return 'failed clearly'
        self.problems.append('%s %s: exit %s without an error that names what failed (%s)'
                             % (ex.name, what, rc, path))
        return 'unclear'

    def step(self, ex, rnd):
        """One round of an example: a change, a plan and an apply under
        faults, then, after a success, a plan without faults."""
        ex.change(rnd)
        if ex.fake:
            ex.fake.faults(self.args.rate, self.args.seed * 1000 + rnd)
        rc, text, path = self.run(ex, 'plan', ['plan'])
        if rc in ('hang', 'crash'):
            self.problems.append('%s plan: %s (%s)' % (ex.name, rc, path))
            self.count(ex, rc)
            return
        if rc not in (0, 2):
            self.count(ex, 'plan ' + self.judge_failure(ex, 'plan', rc, text, path))
        else:
            self.count(ex, 'plan ok')
        rc, text, path = self.run(ex, 'apply', ['apply', '--auto-approve'])
        if rc in ('hang', 'crash'):
            self.problems.append('%s apply: %s (%s)' % (ex.name, rc, path))
            self.count(ex, rc)
            return
        if rc != 0:
            self.count(ex, self.judge_failure(ex, 'apply', rc, text, path))
            return
        self.count(ex, 'converged' if self.verify(ex) else 'wrong state')

    def verify(self, ex):
        """Faults off, a plan must be clean; faults on again after it."""
        if ex.fake:
            ex.fake.faults(0, 0)
        rc, text, path = self.run(ex, 'verify', ['plan'])
        if rc != 0:
            self.problems.append('%s: an apply succeeded, then a plan without faults exited %s (%s)'
                                 % (ex.name, rc, path))
        return rc == 0

    def regression_addon(self, ex):
        """Found by the soak: an add-on create answered with a body of
        another shape was taken as done and recorded without an id. It
        must fail naming the create; the next apply converges."""
        ex.fake.control('DELETE', '/fake/faults')
        ex.fake.control('POST', '/fake/faults', {'method': 'POST', 'path_regex': r'^/apps/[^/]+/addons$',
                                                 'rate': 1, 'kinds': ['shape'], 'count': 1})
        rc, text, path = self.run(ex, 'regression-addon', ['apply', '--auto-approve'])
        if rc != 1 or 'create add-on db: the reply holds no add-on' not in text:
            self.problems.append('heroku: an add-on create answered [42] gave exit %s without naming it (%s)'
                                 % (rc, path))
        if not self.final(ex):
            self.problems.append('heroku: no convergence after the add-on create answered [42]')

    def final(self, ex):
        """Faults off: an apply converges, then a plan is clean."""
        if ex.fake:
            ex.fake.faults(0, 0)
        rc, _, path = self.run(ex, 'final-apply', ['apply', '--auto-approve'])
        if rc != 0:
            self.problems.append('%s: the final apply without faults exited %s (%s)' % (ex.name, rc, path))
            return False
        return self.verify(ex)


def arguments(doc, seconds):
    """The options of a soak: the binaries, how long, the faults' rate and
    seed, where to write the table, whether to keep the work directory."""
    ap = argparse.ArgumentParser(description=doc.split('\n')[0])
    ap.add_argument('--reconcile', required=True)
    ap.add_argument('--fake-kube', required=True)
    ap.add_argument('--seconds', type=float, default=seconds)
    ap.add_argument('--rate', type=float, default=0.2)
    ap.add_argument('--seed', type=int, default=int(os.environ.get('SOAK_SEED', '1')))
    ap.add_argument('--table', help='also write the table (Markdown) to this file')
    ap.add_argument('--keep', action='store_true')
    return ap


def main():
    ap = arguments(__doc__, 80)
    ap.add_argument('--local-every', type=int, default=4)
    ap.add_argument('--only', default='', help='comma list of examples (kubernetes,heroku,ecs,local)')
    ap.add_argument('--verbose', action='store_true')
    args = ap.parse_args()
    args.reconcile = os.path.realpath(args.reconcile)
    for tool in ('docker-registry', 'git', 'curl'):
        if not shutil.which(tool):
            print('skipped: %s is not installed' % tool)
            return 77
    if not any(os.path.exists(os.path.join('/usr/lib/postgresql', v, 'bin/initdb'))
               for v in (os.listdir('/usr/lib/postgresql') if os.path.isdir('/usr/lib/postgresql') else [])):
        print('the local example is left out: PostgreSQL (initdb) is not installed')
        args.local_every = 0
    work = tempfile.mkdtemp(prefix='rc-soak-')
    fakes, exs, values, finals, reg_dir = [], [], [], {}, None
    soak = Soak(args, work)
    t_start = time.time()
    try:
        reg_dir, reg = start_registries(work)
        fakes = list(start_fakes(work, os.path.realpath(args.fake_kube), reg['PASSWORD']))

        def canary(tag):
            v = 'soak-%s-%s' % (tag, secrets.token_hex(10))
            values.append(v)
            return v
        exs = setup_examples(work, *fakes, canary, reg)
        if args.only:
            exs = [e for e in exs if e.name in args.only.split(',')]
        if not args.local_every:
            exs = [e for e in exs if e.name != 'local']
        for ex in exs:
            if ex.name == 'heroku':
                soak.regression_addon(ex)
        rnd = 0
        while time.time() - t_start < args.seconds:
            for ex in exs:
                if ex.name == 'local' and (not args.local_every or rnd % args.local_every):
                    continue
                soak.step(ex, rnd)
            rnd += 1
        finals = {ex.name: soak.final(ex) for ex in exs}
        if any(e.name == 'local' for e in exs):
            soak.run(next(e for e in exs if e.name == 'local'), 'destroy', ['destroy', '--auto-approve'])
    finally:
        for f in fakes:
            f.stop()
        if reg_dir:
            subprocess.run(['bash', os.path.join(ROOT, 'tests/registry/registries.sh'), 'stop', reg_dir],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.time() - t_start
    # the fakes' logs
    logs = {}
    for f in fakes:
        a = argparse.Namespace(limit=HEROKU_LIMIT, refill_per_min=HEROKU_REFILL, rate=[])
        logs[f.name] = check_log.check(f.name, f.log, a)
        if logs[f.name]['retry_after_violations'] or logs[f.name]['rate_budget_violations']:
            soak.problems.append('%s log: %s' % (f.name, logs[f.name]['examples']))
    # the canaries: every output, the state directories, the fakes' logs
    logdir = os.path.join(work, 'fake-logs')
    os.makedirs(logdir)
    for f in fakes:
        for p in (f.log, os.path.join(work, f.name + '.stderr')):
            if os.path.exists(p):
                shutil.copy(p, logdir)
    hits, files = sweep.sweep([v.encode() for v in values], [],
                              [soak.outs, logdir] + [e.state for e in exs if os.path.exists(e.state)],
                              say=lambda m: soak.problems.append('leak: ' + m))
    for name, ok in finals.items():
        if not ok:
            soak.count(next(e for e in exs if e.name == name), 'final not converged')
    report(soak, exs, logs, hits, files, len(values), elapsed, args)
    return finish(work, soak.problems, args.keep)


def finish(work, problems, keep):
    """Keeps work when asked or when something failed, prints the
    failures: the exit status."""
    if keep or problems:
        print('kept %s' % work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    for p in problems:
        print('FAIL ' + p)
    return 1 if problems else 0


def emit(text, table):
    """Prints the figures, and writes them to the file table if given."""
    print(text)
    if table:
        with open(table, 'w') as f:
            f.write(text + '\n')


def report(soak, exs, logs, hits, files, nvalues, elapsed, args):
    fake_of = {'kubernetes': 'kube', 'heroku': 'heroku', 'ecs': 'ecs'}
    lines = ['| example | plans (failed clearly) | applies | converged | failed clearly | other | requests | '
             'injected faults | retries | Retry-After violations | rate-budget violations |',
             '|---|---|---|---|---|---|---|---|---|---|---|']
    for ex in exs:
        row = soak.rows.get(ex.name, {})
        plans = '%d (%d)' % (row.get('plan ok', 0) + row.get('plan failed clearly', 0), row.get('plan failed clearly', 0))
        runs = sum(n for k, n in row.items() if not k.startswith('plan ') and k != 'final not converged')
        other = {k: n for k, n in row.items() if k not in ('converged', 'failed clearly', 'plan ok',
                                                           'plan failed clearly')}
        lg = logs.get(fake_of.get(ex.name, ''), None)
        faults = ', '.join('%s %d' % kv for kv in lg['faults'].items()) if lg else 'none (no fake)'
        lines.append('| %s | %s | %d | %d | %d | %s | %s | %s | %s | %s | %s |' % (
            ex.name, plans, runs, row.get('converged', 0), row.get('failed clearly', 0),
            ', '.join('%s %d' % kv for kv in sorted(other.items())) or '0',
            lg['requests'] if lg else '-', faults or '0', lg['retries'] if lg else '-',
            lg['retry_after_violations'] if lg else '-', lg['rate_budget_violations'] if lg else '-'))
    lines.append('')
    lines.append('%.0f s, fault rate %.2f, seed %d; leaks: %d hits for %d canaries in %d files'
                 % (elapsed, args.rate, args.seed, hits, nvalues, files))
    emit('\n'.join(lines), args.table)


if __name__ == '__main__':
    sys.exit(main())
