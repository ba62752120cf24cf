#!/usr/bin/python3
"""A fake Amazon ECS (and the Secrets Manager calls the ECS driver
needs) for the ECS driver's tests: the command line, the HTTP server,
SigV4 verification, IAM denials, rate limits, faults, stats and the
control API. README.md is the contract."""

import argparse
import datetime
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import faultmix  # noqa: E402
import state as st  # noqa: E402
from state import ApiError  # noqa: E402

CONTENT_TYPE = 'application/x-amz-json-1.1'
BAD_SIGNATURE = ('The request signature we calculated does not match the signature you provided. '
                 'Check your AWS Secret Access Key and signing method. Consult the service '
                 'documentation for details.')
BAD_TOKEN = 'The security token included in the request is invalid.'
DEFAULT_RATES = {'*': (50.0, 100.0), 'ecs:RegisterTaskDefinition': (1.0, 5.0)}
DEFAULT_SETTINGS = {'deployment_ms': 300, 'scale_ms': 200, 'task_start_ms': 100,
                    'task_run_ms': 200, 'task_stop_ms': 50}


def parse_rate(text):
    """'ecs:RegisterTaskDefinition=1:5' -> (action, (per_second, burst))."""
    m = re.match(r'^([\w:*.-]+)=(\d+(?:\.\d+)?):(\d+)$', text)
    if not m:
        raise ValueError('bad --rate %r (ACTION=PER_SECOND:BURST)' % text)
    return m.group(1), (float(m.group(2)), float(m.group(3)))


class Fake:
    """What the handler threads share besides the Store."""

    def __init__(self, args):
        self.region = args.region
        self.callers = {}
        for spec in args.credentials:
            parts = spec.split(':', 2)
            if len(parts) < 2 or not parts[0] or not parts[1]:
                raise ValueError('bad --credentials %r (AKID:SECRET[:SESSION_TOKEN])' % spec)
            self.callers[parts[0]] = st.Caller(parts[0], parts[1], parts[2] if len(parts) > 2 else None)
        self.settings = dict(DEFAULT_SETTINGS)
        for k in DEFAULT_SETTINGS:
            v = getattr(args, k, None)
            if v is not None:
                self.settings[k] = v
        self.rates = dict(DEFAULT_RATES)
        for r in args.rate:
            k, v = parse_rate(r)
            self.rates[k] = v
        self.skew = args.clock_skew_s
        self.lock = threading.Lock()
        self.store = st.Store(self.settings, args.region)
        self.buckets = {}
        self.faults = []
        self.stats = {}
        self.injected = faultmix.Injected()
        self.total = 0
        self.log = open(args.log, 'a', buffering=1) if args.log else None
        self.log_lock = threading.Lock()

    def reset(self):
        self.store.reset()
        self.faults, self.stats, self.total, self.buckets = [], {}, 0, {}
        self.injected.reset()

    # under the lock
    def take_token(self, action):
        per, burst = self.rates.get(action) or self.rates['*']
        t = time.monotonic()
        tokens, stamp = self.buckets.get(action, (burst, t))
        tokens = min(burst, tokens + (t - stamp) * per)
        if tokens < 1:
            self.buckets[action] = (tokens, t)
            return False
        self.buckets[action] = (tokens - 1, t)
        return True

    def take_fault(self, target):
        for f in self.faults:
            if f.get('count', 1) <= 0:
                continue
            if not re.search(f.get('target_regex', ''), target):
                continue
            if 'rate' in f:
                d = faultmix.draw(f)
                if d is None:
                    continue
                self.injected.add(d['kind'])
            if 'count' in f:
                f['count'] -= 1
            return d if 'rate' in f else dict(f)
        return None

    def write_log(self, path, target, status, t_ms=None, kind=None, retry_after=None, body=None):
        if self.log:
            with self.log_lock:
                self.log.write('POST %s %s %d%s\n' % (path, target or '-', status, faultmix.log_suffix(
                    t_ms if t_ms is not None else time.time() * 1000, kind, retry_after, body)))


# ---------------------------------------------------------------- SigV4

def canonical_uri(path):
    # Every service here but S3 normalises the path and encodes it twice.
    segs = []
    for s in path.split('/'):
        if s == '..':
            if segs:
                segs.pop()
        elif s not in ('', '.'):
            segs.append(s)
    norm = '/' + '/'.join(segs) + ('/' if path.endswith('/') and segs else '')
    return quote(quote(unquote(norm), safe='/~'), safe='/~')


def canonical_query(query):
    pairs = []
    for part in query.split('&') if query else []:
        k, _, v = part.partition('=')
        pairs.append((quote(unquote(k.replace('+', ' ')), safe='-_.~'),
                      quote(unquote(v.replace('+', ' ')), safe='-_.~')))
    return '&'.join('%s=%s' % kv for kv in sorted(pairs))


def signing_key(secret, date, region, service):
    k = hmac.new(('AWS4' + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, 'aws4_request'):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def verify_sigv4(fake, method, path, query, headers, body, service):
    """The caller whose signature is right, or an ApiError (403) as AWS answers."""
    auth = headers.get('Authorization')
    if not auth:
        raise ApiError(400, 'MissingAuthenticationTokenException', 'Missing Authentication Token')
    m = re.match(r'^AWS4-HMAC-SHA256\s+Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),'
                 r'\s*Signature=([0-9a-f]{64})\s*$', auth)
    if not m:
        raise ApiError(400, 'IncompleteSignatureException',
                       "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' "
                       'parameters. Authorization=%s' % auth.split(' ')[0])
    cred, signed, sig = m.groups()
    parts = cred.split('/')
    if len(parts) != 5 or parts[4] != 'aws4_request':
        raise ApiError(400, 'IncompleteSignatureException',
                       'Credential should be scoped to a valid region.')
    akid, date, region, svc, _ = parts
    caller = fake.callers.get(akid)
    if caller is None:
        raise ApiError(403, 'UnrecognizedClientException', BAD_TOKEN)
    amz_date = headers.get('X-Amz-Date', '')
    try:
        when = datetime.datetime.strptime(amz_date, '%Y%m%dT%H%M%SZ').replace(
            tzinfo=datetime.timezone.utc)
    except ValueError:
        raise ApiError(400, 'IncompleteSignatureException',
                       'Date must be in ISO-8601 \'basic format\'. Got \'%s\'.' % amz_date)
    if date != amz_date[:8]:
        raise ApiError(403, 'InvalidSignatureException',
                       "Credential should be scoped to a valid date. Got '%s', expected '%s'."
                       % (date, amz_date[:8]))
    if region != fake.region:
        raise ApiError(403, 'InvalidSignatureException',
                       "Credential should be scoped to a valid region. Got '%s', expected '%s'."
                       % (region, fake.region))
    if svc != service:
        raise ApiError(403, 'InvalidSignatureException',
                       "Credential should be scoped to correct service: '%s'. " % service)
    names = signed.split(';')
    if 'host' not in names or names != sorted(names):
        raise ApiError(403, 'InvalidSignatureException', BAD_SIGNATURE)
    canon = []
    for n in names:
        vals = headers.get_all(n) or []
        canon.append('%s:%s' % (n, ','.join(re.sub(r'\s+', ' ', v.strip()) for v in vals)))
    creq = '\n'.join([method, canonical_uri(path), canonical_query(query), '\n'.join(canon) + '\n',
                      signed, hashlib.sha256(body).hexdigest()])
    scope = '%s/%s/%s/aws4_request' % (date, region, svc)
    sts = '\n'.join(['AWS4-HMAC-SHA256', amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    want = hmac.new(signing_key(caller.secret, date, region, svc), sts.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, sig):
        raise ApiError(403, 'InvalidSignatureException', BAD_SIGNATURE)
    token = headers.get('X-Amz-Security-Token')
    if (caller.token or token) and token != caller.token:
        raise ApiError(403, 'UnrecognizedClientException', BAD_TOKEN)
    if caller.token and 'x-amz-security-token' not in names:
        raise ApiError(403, 'InvalidSignatureException', BAD_SIGNATURE)
    server_now = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=fake.skew)
    fmt = lambda d: d.strftime('%Y%m%dT%H%M%SZ')  # noqa: E731
    five = datetime.timedelta(minutes=5)
    if when < server_now - five:
        raise ApiError(403, 'InvalidSignatureException',
                       'Signature expired: %s is now earlier than %s (%s - 5 min.)'
                       % (amz_date, fmt(server_now - five), fmt(server_now)))
    if when > server_now + five:
        raise ApiError(403, 'InvalidSignatureException',
                       'Signature not yet current: %s is still later than %s (%s + 5 min.)'
                       % (amz_date, fmt(server_now + five), fmt(server_now)))
    return caller


# ---------------------------------------------------------------- HTTP

class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def version_string(self):
        return 'fake-ecs'

    def log_message(self, *a):
        pass

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    @property
    def fake(self):
        return self.server.fake

    def do_GET(self):
        self.dispatch()

    do_POST = do_DELETE = do_PUT = do_GET

    def reply(self, status, body, raw=None, ctype=CONTENT_TYPE, target=None, log=True, retry_after=None):
        data = raw if raw is not None else json.dumps(body).encode()
        data = faultmix.spoil(self.mangle, data)
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(data)))
        self.send_header('x-amzn-RequestId', str(uuid.uuid4()))
        if retry_after is not None:
            self.send_header('Retry-After', str(retry_after))
        self.end_headers()
        faultmix.write_body(self, data, self.mangle)
        if log:
            self.fake.write_log(self.path.partition('?')[0], target, status, self.t_ms,
                                self.fault_kind, retry_after, self.body_digest)

    def dispatch(self):
        self.t_ms, self.fault_kind, self.mangle = time.time() * 1000, None, None
        path, _, query = self.path.partition('?')
        length = int(self.headers.get('Content-Length') or 0)
        raw = self.rfile.read(length) if length > 0 else b''
        self.body_digest = hashlib.sha256(raw).hexdigest()[:10]
        if path.startswith('/fake/'):
            return self.control(path, raw)
        self.api(path, query, raw)

    def api(self, path, query, raw):
        fake = self.fake
        target = self.headers.get('X-Amz-Target', '')
        with fake.lock:
            fake.stats[target or '-'] = fake.stats.get(target or '-', 0) + 1
            fake.total += 1
            fault = fake.take_fault(target)
        sm = target.startswith(st.SM_PREFIX)
        if fault and 'kind' in fault:
            self.fault_kind = fault['kind']
            fault, self.mangle = faultmix.as_rule(fault)
            if fault and fault.get('status') == 429:
                fault['type'] = 'ThrottlingException'
        if fault:
            if fault.get('delay_ms'):
                time.sleep(fault['delay_ms'] / 1000.0)
            if fault.get('drop'):
                faultmix.drop(self)
                fake.write_log(path, target, 0, self.t_ms, self.fault_kind, body=self.body_digest)
                return
            if fault.get('malformed'):
                return self.reply(fault.get('status', 200), None, raw=b'{"__type": "Ser', target=target)
            if fault.get('status') or fault.get('type'):
                code = int(fault.get('status') or 500)
                kind = fault.get('type') or ('ServerException' if code >= 500 else 'ClientException')
                msg = fault.get('message') or ('Rate exceeded' if kind == 'ThrottlingException'
                                               else 'Service Unavailable. Please try again later.'
                                               if code >= 500 else 'Injected fault.')
                return self.reply(code, ApiError(code, kind, msg, sm=sm).body(), target=target,
                                  retry_after=fault.get('retry_after'))
        try:
            if self.command != 'POST':
                raise ApiError(404, 'UnknownOperationException', None)
            if target.startswith(st.ECS_PREFIX):
                service, op = 'ecs', target[len(st.ECS_PREFIX):]
                fn = st.ECS_OPS.get(op)
            elif sm:
                service, op = 'secretsmanager', target[len(st.SM_PREFIX):]
                fn = st.SM_OPS.get(op)
            else:
                raise ApiError(400, 'UnknownOperationException', None)
            caller = verify_sigv4(fake, self.command, path, query, self.headers, raw, service)
            if fn is None:
                raise ApiError(400, 'UnknownOperationException', None)
            ctype = self.headers.get('Content-Type', '').split(';')[0].strip()
            if ctype not in ('application/x-amz-json-1.1', 'application/x-amz-json-1.0'):
                raise ApiError(400, 'UnknownOperationException', None)
            try:
                body = json.loads(raw) if raw.strip() else {}
            except ValueError:
                body = None
            if not isinstance(body, dict):
                raise ApiError(400, 'SerializationException', None)
            action = '%s:%s' % (service, op)
            with fake.lock:
                denied = any(a == caller.akid and act in (action, op, '*', service + ':*')
                             for a, act in fake.store.denials)
                if denied:
                    raise ApiError(400, 'AccessDeniedException',
                                   'User: %s is not authorized to perform: %s on resource: %s because '
                                   'no identity-based policy allows the %s action'
                                   % (caller.arn, action, self.resource(service, body), action), sm=sm)
                if not fake.take_token(action):
                    raise ApiError(400, 'ThrottlingException', 'Rate exceeded', sm=sm)
                fake.store.tick()
                try:
                    result = fn(fake.store, caller, body)
                except ApiError as e:
                    e.sm = sm
                    raise
        except ApiError as e:
            body = e.body()
            if e.message is None:
                body = {'__type': e.kind}
            return self.reply(e.status, body, target=target)
        except Exception as e:  # a bug of the fake: as AWS would, a 500
            sys.stderr.write('fake_ecs: %s: %r\n' % (target, e))
            return self.reply(500, {'__type': 'ServerException', 'message': 'Internal error.'},
                              target=target)
        self.reply(200, result, target=target)

    def resource(self, service, body):
        region, acct = self.fake.region, st.ACCOUNT
        if service == 'secretsmanager':
            sid = body.get('SecretId') or body.get('Name')
            if not sid:
                return '*'
            return sid if sid.startswith('arn:') else 'arn:aws:secretsmanager:%s:%s:secret:%s' % (
                region, acct, sid)
        if body.get('service') and not str(body['service']).startswith('arn:'):
            return 'arn:aws:ecs:%s:%s:service/%s/%s' % (region, acct, body.get('cluster') or 'default',
                                                         body['service'])
        if body.get('cluster'):
            c = str(body['cluster'])
            return c if c.startswith('arn:') else 'arn:aws:ecs:%s:%s:cluster/%s' % (region, acct, c)
        return '*'

    # ------------------------------------------------ the control API

    def control(self, path, raw):
        fake = self.fake
        try:
            body = json.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                raise ValueError('the body must be a JSON object')
            with fake.lock:
                out = self.control_call(fake, fake.store, self.command, path, body)
        except ApiError as e:
            return self.reply(400, {'error': e.message}, ctype='application/json', log=False)
        except (ValueError, KeyError, TypeError, re.error) as e:
            return self.reply(400, {'error': 'bad request: %s' % e}, ctype='application/json', log=False)
        if out is None:
            return self.reply(404, {'error': 'no such control call: %s %s' % (self.command, path)},
                              ctype='application/json', log=False)
        self.reply(200, out, ctype='application/json', log=False)

    def control_call(self, fake, store, method, path, b):
        call = (method, path)
        if call == ('GET', '/fake/state'):
            return store.dump()
        if call == ('POST', '/fake/reset'):
            fake.reset()
            return {}
        if call == ('GET', '/fake/stats'):
            return {'total': fake.total, 'requests': dict(sorted(fake.stats.items())),
                    'faults': fake.injected.snapshot()}
        if call == ('POST', '/fake/stats/reset'):
            fake.stats, fake.total = {}, 0
            fake.injected.reset()
            return {}
        if call == ('POST', '/fake/faults'):
            re.compile(b.get('target_regex', ''))
            known = {'target_regex', 'status', 'type', 'message', 'count', 'drop', 'delay_ms', 'malformed',
                     'rate', 'kinds', 'seed', 'retry_after', 'hang_ms'}
            if set(b) - known:
                raise ValueError('unknown fault member(s) %s' % ', '.join(sorted(set(b) - known)))
            if 'rate' in b and faultmix.check(b):
                raise ValueError(faultmix.check(b))
            fake.faults.append(dict(b))
            return {'faults': len(fake.faults)}
        if call == ('GET', '/fake/faults'):
            return [faultmix.public(f) for f in fake.faults]
        if call == ('DELETE', '/fake/faults'):
            fake.faults = []
            return {'faults': 0}
        if call == ('POST', '/fake/deny'):
            if b.get('access_key') not in fake.callers or not isinstance(b.get('action'), str):
                raise ValueError('access_key (one of --credentials) and action are required')
            store.denials.append((b['access_key'], b['action']))
            return {'denials': len(store.denials)}
        if call == ('DELETE', '/fake/deny'):
            store.denials = []
            return {'denials': 0}
        if call == ('POST', '/fake/tasks/script'):
            if not isinstance(b.get('match'), str):
                raise ValueError('match is required')
            re.compile(b['match'])
            store.task_scripts.append(dict(b))
            return {'scripts': len(store.task_scripts)}
        if call == ('DELETE', '/fake/tasks/script'):
            store.task_scripts = []
            return {'scripts': 0}
        if call == ('POST', '/fake/deployments/script'):
            re.compile(b.get('task_definition_regex', ''))
            store.deploy_scripts.append(dict(b))
            return {'scripts': len(store.deploy_scripts)}
        if call == ('DELETE', '/fake/deployments/script'):
            store.deploy_scripts = []
            return {'scripts': 0}
        if call == ('POST', '/fake/services/desired'):
            store.tick()
            c = store.cluster(b.get('cluster'))
            svc = store.services.get((c['clusterName'], b['service']))
            if svc is None or svc['status'] != 'ACTIVE':
                raise ValueError('no active service %s' % b['service'])
            store.update_service(st.Caller('console', 'x'), {'cluster': c['clusterName'],
                                                            'service': b['service'],
                                                            'desiredCount': int(b['desiredCount'])})
            return store.service_json(svc, True)
        if call == ('POST', '/fake/settings'):
            for k, v in b.items():
                if k == 'rates':
                    for a, pb in v.items():
                        fake.rates[a] = (float(pb[0]), float(pb[1]))
                    fake.buckets = {}
                elif k == 'clock_skew_s':
                    fake.skew = int(v)
                elif k in fake.settings:
                    fake.settings[k] = int(v)
                else:
                    raise ValueError('unknown setting %s' % k)
            return dict(fake.settings, rates={k: list(v) for k, v in fake.rates.items()},
                        clock_skew_s=fake.skew)
        return None


def main(argv=None):
    ap = argparse.ArgumentParser(prog='fake_ecs.py', description='a fake Amazon ECS and Secrets Manager')
    ap.add_argument('--credentials', action='append', required=True)
    ap.add_argument('--region', default='us-east-1')
    ap.add_argument('--port', type=int, default=0)
    ap.add_argument('--port-file')
    ap.add_argument('--log')
    ap.add_argument('--rate', action='append', default=[])
    ap.add_argument('--clock-skew-s', type=int, default=0)
    for k, v in DEFAULT_SETTINGS.items():
        ap.add_argument('--' + k.replace('_', '-'), dest=k, type=int, default=None)
    args = ap.parse_args(argv)
    try:
        fake = Fake(args)
    except ValueError as e:
        ap.error(str(e))
    server = ThreadingHTTPServer(('127.0.0.1', args.port), Handler)
    server.daemon_threads = True
    server.fake = fake
    port = server.server_address[1]

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.port_file:
        with open(args.port_file + '.tmp', 'w') as f:
            f.write('%d\n' % port)
        os.replace(args.port_file + '.tmp', args.port_file)
    print(port, flush=True)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
