#!/usr/bin/python3
"""check_log.py's own test: logs that keep the rules pass; a request
before its Retry-After ended, a Heroku bucket overdrawn and an ECS
action over its rate are each found."""

import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
FAILURES = []


def check(cond, what):
    print(('ok ' if cond else 'FAIL ') + what, flush=True)
    if not cond:
        FAILURES.append(what)


def run(fake, lines, *extra):
    with tempfile.NamedTemporaryFile('w', suffix='.log', delete=False) as f:
        f.write(''.join(l + '\n' for l in lines))
    p = subprocess.run([sys.executable, os.path.join(HERE, 'check_log.py'), '--fake', fake, f.name] + list(extra),
                       capture_output=True, text=True)
    os.unlink(f.name)
    import json
    return p.returncode, json.loads(p.stdout)


def main():
    ok = ['GET /apis/apps/v1/namespaces/a/deployments/web 429 t=1000 fault=429 retry_after=2',
          'GET /api/v1/namespaces/a 200 t=1500',
          'GET /apis/apps/v1/namespaces/a/deployments/web 200 t=3001',
          'PATCH /api/v1/namespaces/a/configmaps/c 0 t=3100 fault=reset',
          'PATCH /api/v1/namespaces/a/configmaps/c 200 t=3300']
    rc, r = run('kube', ok)
    check(rc == 0 and r['retry_after_violations'] == 0, 'a retry after Retry-After passes %s' % r)
    check(r['requests'] == 5 and r['faults'] == {'429': 1, 'reset': 1} and r['retries'] == 2,
          'requests, faults by kind and retries counted %s' % r)
    rc, r = run('kube', ok[:2] + ['GET /apis/apps/v1/namespaces/a/deployments/web 200 t=2999'])
    check(rc == 1 and r['retry_after_violations'] == 1, 'a retry 1 ms early is found %s' % r)
    # Heroku: a bucket of 3, 60 a minute (one a second); faulted requests
    # and streams take no token
    h = ['GET /apps 200 t=0', 'GET /apps 200 t=10', 'GET /apps 503 t=20 fault=503', 'GET /logs/x 200 t=25',
         'GET /apps 200 t=30', 'GET /apps 200 t=1100']
    rc, r = run('heroku', h, '--limit', '3', '--refill-per-min', '60')
    check(rc == 0 and r['rate_budget_violations'] == 0, 'within the Heroku bucket %s' % r)
    rc, r = run('heroku', h + ['GET /apps 200 t=1200'], '--limit', '3', '--refill-per-min', '60')
    check(rc == 1 and r['rate_budget_violations'] == 1, 'an overdrawn Heroku bucket is found %s' % r)
    # ECS: RegisterTaskDefinition 1/s with a burst of 2; other actions apart
    reg = 'POST / AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition'
    e = ['%s 200 t=0 b=aa' % reg, '%s 200 t=100 b=bb' % reg,
         'POST / AmazonEC2ContainerServiceV20141113.ListServices 200 t=150 b=cc', '%s 200 t=1200 b=dd' % reg]
    rate = ('--rate', 'ecs:RegisterTaskDefinition=1:2')
    rc, r = run('ecs', e, *rate)
    check(rc == 0 and r['rate_budget_violations'] == 0, 'within the ECS action rate %s' % r)
    rc, r = run('ecs', e + ['%s 200 t=1300 b=ee' % reg], *rate)
    check(rc == 1 and r['rate_budget_violations'] == 1, 'an ECS action over its rate is found %s' % r)
    # ECS endpoints are the action and the body: another body may go
    # during a Retry-After, the same body may not
    t = ['%s 429 t=0 b=aa fault=429 retry_after=1' % reg, '%s 200 t=500 b=bb' % reg]
    rc, r = run('ecs', t, *rate)
    check(rc == 0, 'another request of the action during a Retry-After passes %s' % r)
    rc, r = run('ecs', t + ['%s 200 t=900 b=aa' % reg], *rate)
    check(rc == 1 and r['retry_after_violations'] == 1, 'the same request during its Retry-After is found %s' % r)
    print('%d failure(s)' % len(FAILURES) if FAILURES else 'ok')
    return 1 if FAILURES else 0


if __name__ == '__main__':
    sys.exit(main())
