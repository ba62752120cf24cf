"""Seeded random faults for the Python fakes (fake_heroku.py, fake_ecs.py).

A fault rule with a "rate" is a mix: each request it matches draws from
the rule's own random generator (seeded by "seed", default 1); with
probability "rate" it takes one of "kinds" (drawn uniformly), otherwise
the next rule is tried. The kinds and what they send are the fakes'
(see their READMEs, "Random faults"); the counts of injected faults per
kind are kept here for the stats."""

import random
import socket
import threading
import time

KINDS = ('429', '500', '503', 'reset', 'timeout', 'truncated', 'malformed', 'shape')
TIMEOUT_MS = 5000   # a hang longer than the client's timeout in the soak
RETRY_AFTER = (1, 2)


def check(rule):
    """The error text of a mix rule that cannot be used, else None."""
    rate = rule.get('rate')
    if not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
        return '"rate" must be a number from 0 to 1'
    kinds = rule.get('kinds', list(KINDS))
    if not isinstance(kinds, list) or not kinds or any(k not in KINDS for k in kinds):
        return '"kinds" must be a non-empty list of ' + ', '.join(KINDS)
    return None


class Injected:
    """Counts of injected faults per kind, shared by the handler threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}

    def add(self, kind):
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1

    def snapshot(self):
        with self.lock:
            return dict(sorted(self.counts.items()))

    def reset(self):
        with self.lock:
            self.counts = {}


def draw(rule):
    """For a mix rule: the fault to inject now ({"kind", ...}) or None.
    Called under the fake's lock (the generator lives in the rule)."""
    rng = rule.get('_rng')
    if rng is None:
        rng = rule['_rng'] = random.Random(rule.get('seed', 1))
    if rng.random() >= rule['rate']:
        return None
    kind = rng.choice(rule.get('kinds', list(KINDS)))
    out = {'kind': kind}
    if kind == '429':
        out['retry_after'] = rule.get('retry_after', rng.choice(RETRY_AFTER))
    if kind == 'timeout':
        out['hang_ms'] = rule.get('hang_ms', TIMEOUT_MS)
    return out


def public(rule):
    """A rule as the control API shows it (without its generator)."""
    return {k: v for k, v in rule.items() if not k.startswith('_')}


def log_suffix(t_ms, kind=None, retry_after=None, body=None):
    """What a request log line ends with: ` t=MS[ b=DIGEST][ fault=KIND][ retry_after=N]`
    (DIGEST: 10 hex digits of the SHA-256 of the request's body)."""
    s = ' t=%d' % t_ms
    if body is not None:
        s += ' b=%s' % body
    if kind:
        s += ' fault=%s' % kind
    if retry_after is not None:
        s += ' retry_after=%s' % retry_after
    return s


def as_rule(d):
    """A drawn fault as the fakes' rule fields: (rule, mangle). rule is
    what to do before the request is served (None: serve it); mangle the
    kind that spoils the served reply's body (None: send it as it is)."""
    kind = d['kind']
    if kind in ('truncated', 'malformed', 'shape'):
        return None, kind
    if kind == 'reset':
        return {'drop': True}, None
    if kind == 'timeout':
        return {'delay_ms': d['hang_ms'], 'drop': True}, None
    rule = {'status': int(kind)}
    if kind == '429':
        rule['retry_after'] = d['retry_after']
    return rule, None


def spoil(kind, data):
    """The body a served reply is sent with under a mangle kind."""
    if kind == 'malformed':
        return data[:max(1, len(data) // 2)] if data else b'{'
    if kind == 'shape':
        return b'[42]'
    return data


def drop(handler):
    """Closes the handler's connection without (the rest of) an answer."""
    handler.close_connection = True
    try:
        handler.wfile.flush()
        handler.connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def write_body(handler, data, kind):
    """Writes a reply's body; a truncated one stops halfway (its
    Content-Length says the whole) and the connection is closed."""
    if kind == 'truncated':
        handler.wfile.write(data[:len(data) // 2])
        drop(handler)
        return
    handler.wfile.write(data)


def observe(connect, method, path, headers, body=None, timeout=2.0):
    """For the fakes' self tests: sends one request on a new connection
    (connect(timeout)) and names what came back as a kind ('ok' for a
    good JSON object or list that is not the spoiled shape), with the
    Retry-After seen."""
    import http.client
    import json
    c = connect(timeout)
    try:
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        try:
            data = r.read()
        except http.client.IncompleteRead:
            return 'truncated', None
        if r.status in (429, 500, 503):
            return str(r.status), r.getheader('Retry-After')
        try:
            v = json.loads(data)
        except ValueError:
            return 'malformed', None
        return ('shape' if v == [42] else 'ok'), None
    except socket.timeout:
        return 'timeout', None
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
        return 'reset', None
    except OSError as e:   # TLS: a connection closed without close_notify
        if 'EOF' in str(e):
            return 'reset', None
        raise
    finally:
        c.close()


def log_kinds(path):
    """The fault kinds of a request log, in order ('-' for none)."""
    out = []
    for line in open(path):
        f = dict(w.split('=', 1) for w in line.split() if '=' in w)
        if 't' in f:
            out.append(f.get('fault', '-'))
    return out


def selftest(s, rule, method, path, headers, body, check, post_rule=None, connect=None):
    """The fakes' self test of a mix rule (rule: its match, rate 0.5,
    seed, a short hang_ms): every kind comes, as the README says,
    counted per kind in the stats and written in the log; the same seed
    gives the same faults; the control API answers all along. s has
    control(method, path, body), port and log; headers() signs a request;
    post_rule(rule) adds the rule (default: POST /fake/faults rule);
    connect(timeout) opens a connection (default: plain HTTP)."""
    import http.client
    post_rule = post_rule or (lambda r: s.control('POST', '/fake/faults', r))
    connect = connect or (lambda t: http.client.HTTPConnection('127.0.0.1', s.port, timeout=t))
    mark = len(open(s.log).readlines())
    runs = []
    for _ in (0, 1):
        s.control('DELETE', '/fake/faults')
        s.control('POST', '/fake/stats/reset')
        post_rule(rule)
        seen = {}
        for _ in range(160):
            kind, ra = observe(connect, method, path, headers(), body, timeout=rule['hang_ms'] / 2000.0)
            seen[kind] = seen.get(kind, 0) + 1
            if kind == '429':
                check(ra in ('1', '2'), '429 with Retry-After %s' % ra)
            s.control('GET', '/fake/stats')
        runs.append(seen)
        injected = s.control('GET', '/fake/stats')['faults']
        check(set(injected) == set(KINDS), 'every kind injected %s' % injected)
        check(50 <= sum(injected.values()) <= 110, 'about half faulted %s' % injected)
        for k in KINDS:
            check(seen.get(k, 0) == injected.get(k, 0),
                  'kind %s seen %s, counted %s' % (k, seen.get(k), injected.get(k)))
    check(runs[0] == runs[1], 'the same seed, the same faults %s %s' % tuple(runs))
    time.sleep(rule['hang_ms'] / 1000.0 + 0.2)   # the last hang ends and is logged
    kinds = log_kinds(s.log)[mark:]
    check(sum(1 for k in kinds if k != '-') == 2 * sum(injected.values()), 'faults in the log')
    s.control('DELETE', '/fake/faults')
    s.control('POST', '/fake/stats/reset')
