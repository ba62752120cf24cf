#!/usr/bin/python3
"""Checks a fake's request log (tests/fake/*/README.md: one line per API
request, `... STATUS t=MS [fault=KIND] [retry_after=N]`) for what a
client owes a server under faults:

- Retry-After: after an answer with `Retry-After: N` at t, no request to
  the same endpoint (method and path; for ECS the X-Amz-Target and the
  body's digest `b=`) before t + N s;
- the rate budget: the requests that reached the budget (not faulted)
  replayed through the fake's own bucket (Heroku: one per key, --limit
  and --refill-per-min; ECS: one per action, --rate ACTION=PER_S:BURST
  as the fake's option) never find it empty.

Also counts requests, injected faults by kind and retries (a faulted
request followed by another to the same endpoint). Prints one JSON
object; exit 1 on a violation.
    check_log.py --fake kube|heroku|ecs LOG [--limit N --refill-per-min M]
                 [--rate ACTION=PER_S:BURST]..."""

import argparse
import json
import sys

ECS_DEFAULT_RATES = {'ecs:RegisterTaskDefinition': (1.0, 5.0), '*': (50.0, 100.0)}


def parse(path):
    """[(t_ms, endpoint, status, fields)] in the log's order."""
    out = []
    for line in open(path):
        words = line.split()
        plain = [w for w in words if '=' not in w]
        fields = dict(w.split('=', 1) for w in words if '=' in w)
        if 't' not in fields or len(plain) < 3:
            continue
        endpoint = ' '.join(plain[:-1])
        if 'b' in fields:
            endpoint += ' ' + fields['b']
        out.append((float(fields['t']), endpoint, int(plain[-1]), fields))
    return out


def api(fake, endpoint):
    """Whether a request is one the budget counts (not a control call or a
    stream)."""
    path = endpoint.split()[1] if len(endpoint.split()) > 1 else ''
    if path.startswith('/fake/'):
        return False
    if fake == 'heroku' and (path.startswith('/logs/') or path.startswith('/release-output/')):
        return False
    return True


def retry_after_violations(lines):
    bad, waits = [], {}
    for t, ep, status, f in sorted(lines, key=lambda x: x[0]):
        until = waits.get(ep)
        if until is not None and t < until[0]:
            bad.append('%s at %d ms, %d ms before the Retry-After of the answer at %d ms ended'
                       % (ep, t, until[0] - t, until[1]))
        if 'retry_after' in f:
            waits[ep] = (t + 1000 * float(f['retry_after']), t)
    return bad


def action_of(endpoint):
    target = endpoint.split()[2] if len(endpoint.split()) > 2 else '-'
    service, _, op = target.rpartition('.')
    return ('secretsmanager:' if service == 'secretsmanager' else 'ecs:') + op


def budget_violations(fake, lines, args):
    """Requests the fake's bucket would have refused (its own 429s and
    ThrottlingExceptions included)."""
    if fake == 'heroku':
        per_s, burst = args.refill_per_min / 60.0, float(args.limit)
        key = lambda ep: 'account'  # noqa: E731 (one key in the soak)
    elif fake == 'ecs':
        rates = dict(ECS_DEFAULT_RATES)
        for r in args.rate:
            a, _, v = r.partition('=')
            p, _, b = v.partition(':')
            rates[a] = (float(p), float(b))
        key = action_of
    else:
        return []
    buckets, bad = {}, []
    for t, ep, status, f in sorted(lines, key=lambda x: x[0]):
        if 'fault' in f or not api(fake, ep):
            continue
        k = key(ep)
        if fake == 'ecs':
            per_s, burst = rates.get(k) or rates['*']
        tokens, stamp = buckets.get(k, (burst, t))
        tokens = min(burst, tokens + (t - stamp) / 1000.0 * per_s)
        if tokens < 1:
            bad.append('%s at %d ms: the budget of %s was empty (%.2f tokens)' % (ep, t, k, tokens))
            buckets[k] = (tokens, t)
            continue
        buckets[k] = (tokens - 1, t)
    return bad


def retries(lines):
    """Faulted requests (an injected fault, a 429, a 5xx) followed by
    another request to the same endpoint."""
    n, pending = 0, set()
    for t, ep, status, f in sorted(lines, key=lambda x: x[0]):
        if ep in pending:
            n += 1
            pending.discard(ep)
        if 'fault' in f or status == 429 or status >= 500 or status == 0:
            pending.add(ep)
    return n


def check(fake, path, args):
    lines = [x for x in parse(path) if api(fake, x[1])]
    faults = {}
    for _, _, _, f in lines:
        if 'fault' in f:
            faults[f['fault']] = faults.get(f['fault'], 0) + 1
    ra = retry_after_violations(lines)
    budget = budget_violations(fake, lines, args)
    return {
        'fake': fake, 'requests': len(lines), 'faults': dict(sorted(faults.items())),
        'retries': retries(lines), 'retry_after_answers': sum(1 for x in lines if 'retry_after' in x[3]),
        'retry_after_violations': len(ra), 'rate_budget_violations': len(budget),
        'examples': (ra + budget)[:5],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--fake', required=True, choices=['kube', 'heroku', 'ecs'])
    ap.add_argument('log')
    ap.add_argument('--limit', type=int, default=4500)
    ap.add_argument('--refill-per-min', type=float, default=75)
    ap.add_argument('--rate', action='append', default=[])
    args = ap.parse_args()
    r = check(args.fake, args.log, args)
    print(json.dumps(r, indent=1))
    return 1 if r['retry_after_violations'] or r['rate_budget_violations'] else 0


if __name__ == '__main__':
    sys.exit(main())
