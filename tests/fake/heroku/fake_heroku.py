#!/usr/bin/python3
"""A fake Heroku Platform API (v3) for the Heroku driver's tests: the
command line, the HTTP server, auth, the rate limit, paging, faults,
stats, routing and the control API. README.md is the contract."""

import argparse
import base64
import json
import os
import re
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import faultmix  # noqa: E402
import state as st  # noqa: E402
from state import ApiError, Page, not_found  # noqa: E402

ACCEPT_RE = re.compile(r'application/vnd\.heroku\+json\s*;\s*version\s*=\s*3\b')
NO_ENDPOINT = ('The requested API endpoint was not found. Are you using the right HTTP '
               'verb (i.e. `GET` vs. `POST`), and did you specify your intended version '
               'with the `Accept` header?')
RATE_MESSAGE = ('Your account reached the API rate limit\n'
                'Please wait a few minutes before making new requests')
FAULT_BODIES = {
    400: ('bad_request', 'Bad request.'),
    401: ('unauthorized', 'Invalid credentials provided.'),
    403: ('forbidden', 'You do not have access to this resource.'),
    404: ('not_found', NO_ENDPOINT),
    409: ('conflict', 'Conflict.'),
    422: ('invalid_params', 'Invalid parameters.'),
    429: ('rate_limit', RATE_MESSAGE),
    500: ('internal_server_error', 'Internal server error.'),
    502: ('bad_gateway', 'Bad gateway.'),
    503: ('service_unavailable', 'The API is temporarily unavailable.'),
    504: ('gateway_timeout', 'Gateway timeout.'),
}

# ---------------------------------------------------------------- routes

ROUTES = []


def route(method, template, status=200):
    pattern = re.compile('^' + re.sub(r'\\\{\w+\\\}', '([^/]+)', re.escape(template)) + '$')
    names = re.findall(r'\{(\w+)\}', template)

    def deco(fn):
        ROUTES.append((method, template, pattern, names, status, fn))
        return fn
    return deco


def match_route(method, path):
    """(template, handler, params, status), or template '?' when none."""
    for m, template, pattern, names, status, fn in ROUTES:
        g = pattern.match(path)
        if g and m == method:
            from urllib.parse import unquote
            return template, fn, dict(zip(names, (unquote(x) for x in g.groups()))), status
    return '?', None, {}, 404


@route('GET', '/account')
def _account(s, acct, p, b):
    return acct.json()


@route('GET', '/teams')
def _teams(s, acct, p, b):
    return s.teams_json(acct)


@route('GET', '/teams/{team}')
def _team(s, acct, p, b):
    return s.team_json(acct, p['team'])


@route('GET', '/teams/{team}/apps')
def _team_apps(s, acct, p, b):
    return s.team_apps(acct, p['team'])


def catalog(path, param, table, to_json, info=True):
    """The list of a fixed catalog, and its info by id or name."""
    route('GET', path)(lambda s, acct, p, b: Page([to_json(x) for x in table], ['id', 'name']))
    if info:
        route('GET', '%s/{%s}' % (path, param))(
            lambda s, acct, p, b: st.find([to_json(x) for x in table], p[param], param))


catalog('/regions', 'region', st.REGIONS, st.region_json)
catalog('/stacks', 'stack', st.STACKS, st.stack_json)
catalog('/dyno-sizes', 'size', st.SIZES, st.size_json, info=False)


@route('GET', '/dyno-sizes/{size}')
def _size(s, acct, p, b):
    try:
        name = st.canonical_size(p['size'])
    except ApiError:
        raise not_found('dyno_size', "Couldn't find that dyno size.")
    return st.size_json(st.SIZE_BY_KEY[name.lower()])


@route('GET', '/apps/{app}/available-dyno-sizes')
def _app_sizes(s, acct, p, b):
    s.app(acct, p['app'])
    return Page([st.size_json(x) for x in st.SIZES if not x[6]], ['id', 'name'])


@route('POST', '/apps', 201)
def _create_app(s, acct, p, b):
    return s.create_app(acct, b).json()


@route('POST', '/teams/apps', 201)
def _create_team_app(s, acct, p, b):
    return s.create_team_app(acct, b)


@route('GET', '/teams/apps/{app}')
def _team_app(s, acct, p, b):
    return s.app(acct, p['app']).team_json()


@route('GET', '/apps')
def _apps(s, acct, p, b):
    return Page([a.json() for a in s.visible_apps(acct)], ['id', 'name', 'updated_at'])


@route('GET', '/apps/{app}')
def _app(s, acct, p, b):
    return s.app(acct, p['app']).json()


@route('PATCH', '/apps/{app}')
def _update_app(s, acct, p, b):
    return s.update_app(acct, p['app'], b)


@route('DELETE', '/apps/{app}')
def _delete_app(s, acct, p, b):
    return s.delete_app(acct, p['app'])


@route('GET', '/apps/{app}/config-vars')
def _config(s, acct, p, b):
    return dict(s.app(acct, p['app']).config)


@route('PATCH', '/apps/{app}/config-vars')
def _set_config(s, acct, p, b):
    return s.set_config(acct, s.app(acct, p['app'], write=True), b)


@route('GET', '/apps/{app}/releases/{release}/config-vars')
def _release_config(s, acct, p, b):
    return dict(s.find_release(s.app(acct, p['app']), p['release']).config)


@route('GET', '/apps/{app}/releases')
def _releases(s, acct, p, b):
    return Page([r.json(s.base) for r in s.app(acct, p['app']).releases], ['version', 'id'])


@route('GET', '/apps/{app}/releases/{release}')
def _release(s, acct, p, b):
    return s.find_release(s.app(acct, p['app']), p['release']).json(s.base)


@route('GET', '/apps/{app}/formation')
def _formation(s, acct, p, b):
    return Page([f.json() for f in s.app(acct, p['app']).formation.values()], ['type', 'id'])


@route('GET', '/apps/{app}/formation/{type}')
def _formation_one(s, acct, p, b):
    return s.formation(s.app(acct, p['app']), p['type']).json()


@route('PATCH', '/apps/{app}/formation')
def _batch_formation(s, acct, p, b):
    return s.batch_formation(acct, p['app'], b)


@route('PATCH', '/apps/{app}/formation/{type}')
def _update_formation(s, acct, p, b):
    return s.update_formation(acct, p['app'], p['type'], b)


@route('GET', '/addons')
def _addons(s, acct, p, b):
    return Page([ad.json() for ad in s.addons.values() if s.can_see(acct, ad.app)],
                ['id', 'name'])


@route('GET', '/addons/{addon}')
def _addon(s, acct, p, b):
    return s.addon(acct, p['addon']).json()


@route('GET', '/apps/{app}/addons')
def _app_addons(s, acct, p, b):
    return Page([ad.json() for ad in s.app(acct, p['app']).addons.values()], ['id', 'name'])


@route('POST', '/apps/{app}/addons', 201)
def _create_addon(s, acct, p, b):
    return s.create_addon(acct, p['app'], b)


@route('GET', '/apps/{app}/addons/{addon}')
def _app_addon(s, acct, p, b):
    return s.addon(acct, p['addon'], s.app(acct, p['app'])).json()


@route('PATCH', '/apps/{app}/addons/{addon}')
def _update_addon(s, acct, p, b):
    return s.update_addon(acct, p['app'], p['addon'], b)


@route('DELETE', '/apps/{app}/addons/{addon}')
def _delete_addon(s, acct, p, b):
    return s.delete_addon(acct, p['app'], p['addon'])


@route('GET', '/addon-attachments')
def _attachments(s, acct, p, b):
    return Page(s.attachments(acct), ['id', 'name'])


@route('GET', '/addon-attachments/{attachment}')
def _attachment(s, acct, p, b):
    for j in s.attachments(acct):
        if j['id'] == p['attachment']:
            return j
    raise not_found('addon_attachment', "Couldn't find that add on attachment.")


@route('GET', '/addons/{addon}/addon-attachments')
def _addon_attachments(s, acct, p, b):
    return Page(s.attachments(acct, addon=s.addon(acct, p['addon'])), ['id', 'name'])


@route('GET', '/apps/{app}/addon-attachments')
def _app_attachments(s, acct, p, b):
    return Page(s.attachments(acct, app=s.app(acct, p['app'])), ['id', 'name'])


@route('GET', '/apps/{app}/addon-attachments/{attachment}')
def _app_attachment(s, acct, p, b):
    items = s.attachments(acct, app=s.app(acct, p['app']))
    try:
        return st.find(items, p['attachment'], 'addon_attachment')
    except ApiError:
        raise not_found('addon_attachment', "Couldn't find that add on attachment.")


@route('POST', '/pipelines', 201)
def _create_pipeline(s, acct, p, b):
    return s.create_pipeline(acct, b)


@route('GET', '/pipelines')
def _pipelines(s, acct, p, b):
    return Page([x.json() for x in s.pipelines.values()], ['id', 'name'])


@route('GET', '/pipelines/{pipeline}')
def _pipeline(s, acct, p, b):
    return s.pipeline(p['pipeline']).json()


@route('PATCH', '/pipelines/{pipeline}')
def _update_pipeline(s, acct, p, b):
    return s.update_pipeline(p['pipeline'], b)


@route('DELETE', '/pipelines/{pipeline}')
def _delete_pipeline(s, acct, p, b):
    return s.delete_pipeline(p['pipeline'])


@route('GET', '/pipelines/{pipeline}/pipeline-couplings')
def _pipeline_couplings(s, acct, p, b):
    pl = s.pipeline(p['pipeline'])
    return Page([c.json() for c in s.couplings.values()
                 if c.pipeline is pl and s.can_see(acct, c.app)], ['id'])


@route('POST', '/pipeline-couplings', 201)
def _create_coupling(s, acct, p, b):
    return s.create_coupling(acct, b)


@route('GET', '/pipeline-couplings')
def _couplings(s, acct, p, b):
    return Page([c.json() for c in s.couplings.values() if s.can_see(acct, c.app)], ['id'])


@route('GET', '/pipeline-couplings/{coupling}')
def _coupling(s, acct, p, b):
    return s.coupling(acct, p['coupling']).json()


@route('PATCH', '/pipeline-couplings/{coupling}')
def _update_coupling(s, acct, p, b):
    return s.update_coupling(acct, p['coupling'], b)


@route('DELETE', '/pipeline-couplings/{coupling}')
def _delete_coupling(s, acct, p, b):
    return s.delete_coupling(acct, p['coupling'])


@route('GET', '/apps/{app}/pipeline-couplings')
def _app_coupling(s, acct, p, b):
    return s.app_coupling(acct, p['app'])


@route('POST', '/apps/{app}/dynos', 201)
def _create_dyno(s, acct, p, b):
    return s.create_dyno(acct, p['app'], b)


@route('GET', '/apps/{app}/dynos')
def _dynos(s, acct, p, b):
    return Page([d.json() for d in s.app(acct, p['app']).dynos.values()], ['id', 'name'])


@route('GET', '/apps/{app}/dynos/{dyno}')
def _dyno(s, acct, p, b):
    return s.dyno(s.app(acct, p['app']), p['dyno']).json()


@route('POST', '/apps/{app}/dynos/{dyno}/actions/stop', 202)
def _stop_dyno(s, acct, p, b):
    s.stop_dyno(s.dyno(s.app(acct, p['app'], write=True), p['dyno']))
    return {}


@route('POST', '/apps/{app}/log-sessions', 201)
def _log_session(s, acct, p, b):
    return s.create_log_session(acct, p['app'], b)


# ---------------------------------------------------------------- paging

def parse_range(header, fields, page_max):
    """(field, start, exclusive, end, max, desc) from a Range header."""
    head, _, params = header.partition(';')
    field, _, spec = head.strip().partition(' ')
    if field not in fields:
        raise ApiError(400, 'bad_request', 'Invalid Range header.')
    spec = spec.strip()
    start, end, exclusive = '', '', False
    if spec:
        i = spec.rfind('..')
        if i < 0:
            raise ApiError(400, 'bad_request', 'Invalid Range header.')
        start, end = spec[:i], spec[i + 2:]
        if start.startswith(']'):
            exclusive, start = True, start[1:]
    size, desc = 200, False
    for kv in params.split(','):
        k, _, v = kv.strip().partition('=')
        if not k:
            continue
        if k == 'max' and v.isdigit() and int(v) > 0:
            size = min(int(v), page_max)
        elif k == 'order' and v in ('asc', 'desc'):
            desc = v == 'desc'
        else:
            raise ApiError(400, 'bad_request', 'Invalid Range header.')
    return field, start, exclusive, end, size, desc


def page(items, fields, header, page_max):
    """(status, items, headers) of one page of a list."""
    headers = {'Accept-Ranges': ', '.join(fields)}
    field, start, exclusive, end, size, desc = \
        parse_range(header, fields, page_max) if header else (fields[0], '', False, '', 200, False)
    numeric = field == 'version'

    def conv(v):
        if numeric:
            try:
                return int(v)
            except ValueError:
                raise ApiError(400, 'bad_request', 'Invalid Range header.')
        return v
    items = sorted(items, key=lambda x: (x[field] if x[field] is not None else '', x['id']),
                   reverse=desc)
    if start:
        s = conv(start)
        if desc:
            items = [x for x in items if x[field] < s or (not exclusive and x[field] == s)]
        else:
            items = [x for x in items if x[field] > s or (not exclusive and x[field] == s)]
    if end:
        e = conv(end)
        items = [x for x in items if (x[field] >= e if desc else x[field] <= e)]
    if len(items) <= size:
        return 200, items, headers
    out = items[:size]
    nxt = '%s ]%s..%s; max=%d' % (field, out[-1][field], end, size)
    if desc:
        nxt += ', order=desc'
    headers['Next-Range'] = nxt
    return 206, out, headers


# ---------------------------------------------------------------- server

class Fake:
    """What the handler threads share besides the Store: keys, rate,
    faults, stats, the request log."""

    def __init__(self, args):
        self.settings = {
            'addon_delay_ms': args.addon_delay_ms, 'release_delay_ms': args.release_delay_ms,
            'dyno_start_ms': args.dyno_start_ms, 'dyno_gone_ms': args.dyno_gone_ms,
            'page_max': args.page_max, 'rate_limit': args.rate_limit,
            'refill_per_min': args.refill_per_min,
        }
        accounts, teams = [], list(args.team)
        for i, spec in enumerate(args.key):
            key, _, opts = spec.partition(':')
            email, role, kteams = 'user%d@example.com' % (i + 1), 'member', []
            for o in filter(None, opts.split(',')):
                k, _, v = o.partition('=')
                if k == 'email':
                    email = v
                elif k == 'role' and v in ('owner', 'admin', 'member', 'collaborator'):
                    role = v
                elif k == 'team' and v:
                    kteams.append(v)
                else:
                    raise ValueError('bad --key option %r' % o)
            acct = st.Account(key, email, role if kteams else None, kteams or None)
            acct.tokens = float(args.rate_limit)
            accounts.append(acct)
            teams.extend(t for t in kteams if t not in teams)
        self.keys = {a.key: a for a in accounts}
        self.store = st.Store(self.settings, accounts, teams)
        self.faults = []
        self.stats = {}
        self.injected = faultmix.Injected()
        self.total = 0
        self.stopping = False
        self.log = open(args.log, 'a', buffering=1) if args.log else None
        self.log_lock = threading.Lock()

    # called under the store lock
    def refill(self, acct):
        now = time.monotonic()
        cap = self.settings['rate_limit']
        acct.tokens = min(cap, acct.tokens + (now - acct.stamp) * self.settings['refill_per_min'] / 60.0)
        acct.stamp = now

    def take_token(self, acct):
        self.refill(acct)
        if acct.tokens < 1:
            rate = self.settings['refill_per_min']
            wait = int((1 - acct.tokens) * 60.0 / rate) + 1 if rate > 0 else 3600
            return False, wait
        acct.tokens -= 1
        return True, 0

    def take_fault(self, method, path):
        for f in self.faults:
            if f.get('count', 1) <= 0:
                continue
            if f.get('method', '*') not in ('*', method):
                continue
            if not re.search(f.get('path_regex', ''), path):
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

    def write_log(self, method, path, status, t_ms=None, kind=None, retry_after=None):
        if self.log:
            with self.log_lock:
                self.log.write('%s %s %d%s\n' % (method, path, status, faultmix.log_suffix(
                    t_ms if t_ms is not None else time.time() * 1000, kind, retry_after)))


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def version_string(self):
        return 'fake-heroku'

    def log_message(self, *a):
        pass

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self):
        self.dispatch()

    do_POST = do_PATCH = do_DELETE = do_PUT = do_HEAD = do_GET

    @property
    def fake(self):
        return self.server.fake

    def reply(self, status, body, headers=None, raw=None, ctype='application/json'):
        data = raw if raw is not None else json.dumps(body).encode()
        data = faultmix.spoil(self.mangle, data)
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        if self.command != 'HEAD':
            faultmix.write_body(self, data, self.mangle)
        self.log_request_line(status, (headers or {}).get('Retry-After'))

    def log_request_line(self, status, retry_after=None):
        self.fake.write_log(self.command, self.path.partition('?')[0], status,
                            self.t_ms, self.fault_kind, retry_after)

    def dispatch(self):
        self.t_ms, self.fault_kind, self.mangle = time.time() * 1000, None, None
        path = self.path.partition('?')[0]
        length = int(self.headers.get('Content-Length') or 0)
        raw = self.rfile.read(length) if length > 0 else b''
        if path.startswith('/fake/'):
            return self.control(path, raw)
        if self.command == 'GET' and (path.startswith('/logs/') or path.startswith('/release-output/')):
            return self.stream(path)
        self.api(path, raw)

    # ------------------------------------------------ the API

    def api(self, path, raw):
        fake, store = self.fake, self.fake.store
        method = self.command
        template, fn, params, status = match_route(method, path)
        headers = {'Request-Id': st.new_id(),
                   'RateLimit-Remaining': fake.settings['rate_limit']}
        with store.cond:
            key = '%s %s' % (method, template)
            fake.stats[key] = fake.stats.get(key, 0) + 1
            fake.total += 1
            fault = fake.take_fault(method, path)
        if fault and 'kind' in fault:
            self.fault_kind = fault['kind']
            fault, self.mangle = faultmix.as_rule(fault)
        if fault:
            if fault.get('delay_ms'):
                time.sleep(fault['delay_ms'] / 1000.0)
            if fault.get('drop'):
                faultmix.drop(self)
                self.log_request_line(0)
                return
            if fault.get('malformed'):
                return self.reply(fault.get('status', 200), None, headers, raw=b'{"id": "01234567-')
            if fault.get('status'):
                code = fault['status']
                ident, msg = FAULT_BODIES.get(code, ('error', 'Error %d.' % code))
                if 'retry_after' in fault or code == 429:
                    headers['Retry-After'] = fault.get('retry_after', 1)
                return self.reply(code, fault.get('body', {'id': ident, 'message': msg}), headers)
        try:
            acct = self.authenticate()
            with store.cond:
                ok, wait = fake.take_token(acct)
                headers['RateLimit-Remaining'] = int(acct.tokens)
            if not ok:
                raise ApiError(429, 'rate_limit', RATE_MESSAGE, headers={'Retry-After': wait})
            if not ACCEPT_RE.search(self.headers.get('Accept', '')):
                raise ApiError(400, 'missing_version',
                               "Please specify a version along with Heroku's API MIME type. "
                               'For example, `Accept: application/vnd.heroku+json; version=3`.')
            if fn is None:
                raise ApiError(404, 'not_found', NO_ENDPOINT)
            body = {}
            if raw.strip():
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise ApiError(400, 'bad_request', 'Invalid JSON in request body.')
                if not isinstance(body, dict):
                    raise ApiError(400, 'bad_request', 'Invalid JSON in request body.')
            with store.cond:
                result = fn(store, acct, params, body)
                store.cond.notify_all()
                if isinstance(result, Page):
                    status, result, more = page(result.items, result.fields,
                                                self.headers.get('Range'),
                                                fake.settings['page_max'])
                    headers.update(more)
        except ApiError as e:
            headers.update(e.headers)
            return self.reply(e.status, e.body, headers)
        self.reply(status, result, headers)

    def authenticate(self):
        auth = self.headers.get('Authorization', '')
        key = None
        if auth.startswith('Bearer '):
            key = auth[7:].strip()
        elif auth.startswith('Basic '):
            try:
                key = base64.b64decode(auth[6:].strip()).decode().partition(':')[2]
            except (ValueError, UnicodeDecodeError):
                key = None
        acct = self.fake.keys.get(key)
        if acct is None:
            raise ApiError(401, 'unauthorized', 'Invalid credentials provided.')
        return acct

    # ------------------------------------------------ streams

    def chunk(self, text):
        data = text.encode()
        if data:
            self.wfile.write(b'%x\r\n%s\r\n' % (len(data), data))
            self.wfile.flush()

    def start_stream(self):
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain; charset=utf-8')
        self.send_header('Transfer-Encoding', 'chunked')
        self.end_headers()

    def end_stream(self, path):
        self.wfile.write(b'0\r\n\r\n')
        self.wfile.flush()
        self.log_request_line(200)

    def stream(self, path):
        fake, store = self.fake, self.fake.store
        kind, _, ident = path[1:].partition('/')
        template = 'GET /logs/{session}' if kind == 'logs' else 'GET /release-output/{release}'
        with store.cond:
            fake.stats[template] = fake.stats.get(template, 0) + 1
            fake.total += 1
            if kind == 'logs':
                sess = store.sessions.get(ident)
                if sess and sess['expires'] < time.monotonic():
                    sess = None
                target = sess
            else:
                target = next((r for a in store.apps.values() for r in a.releases
                               if r.id == ident), None)
        if target is None:
            return self.reply(404, {'id': 'not_found', 'message': 'Not found.'},
                              {'Request-Id': st.new_id()})
        self.start_stream()
        try:
            if kind == 'logs':
                self.stream_logs(target)
            else:
                self.stream_release(target)
            self.end_stream(path)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def stream_release(self, r):
        store = self.fake.store
        with store.cond:
            lines = list(r.output)
        self.chunk(''.join(x + '\n' for x in lines))
        with store.cond:
            while r.status == 'pending' and not r.app.deleted and not self.fake.stopping:
                store.cond.wait(0.5)

    def stream_logs(self, sess):
        store = self.fake.store
        app, dyno, source = sess['app'], sess['dyno'], sess['source']

        def wanted(line):
            return (dyno is None or line[2] == dyno) and (source is None or line[1] == source)

        def fmt(lines):
            return ''.join('%s %s[%s]: %s\n' % x for x in lines)
        with store.cond:
            pos = len(app.logs)
            first = [x for x in app.logs[app.logs_from:] if wanted(x)]
            first = first[-sess['lines']:] if sess['lines'] else []
        self.chunk(fmt(first))
        if not sess['tail']:
            return
        while True:
            with store.cond:
                d = app.dynos.get(dyno) if dyno else None
                done = app.deleted or self.fake.stopping or (dyno is not None and (d is None or d.ended))
                new = [x for x in app.logs[pos:] if wanted(x)]
                pos = len(app.logs)
                if not new and not done:
                    store.cond.wait(0.5)
            self.chunk(fmt(new))
            if done:
                return

    # ------------------------------------------------ the control API

    def control(self, path, raw):
        fake, store = self.fake, self.fake.store
        try:
            body = json.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                raise ValueError('the body must be a JSON object')
            with store.cond:
                out = self.control_call(fake, store, self.command, path, body)
                store.cond.notify_all()
        except ApiError as e:
            return self.reply(400, {'error': e.body['message']})
        except (ValueError, KeyError, TypeError) as e:
            return self.reply(400, {'error': 'bad request: %s' % e})
        if out is None:
            return self.reply(404, {'error': 'no such control call: %s %s' % (self.command, path)})
        self.reply(200, out)

    def control_call(self, fake, store, method, path, b):
        call = (method, path)
        if call == ('GET', '/fake/state'):
            return store.dump()
        if call == ('GET', '/fake/routes'):
            return [{'method': r[0], 'path': r[1]} for r in ROUTES]
        if call == ('POST', '/fake/reset'):
            store.reset()
            fake.faults, fake.stats, fake.total = [], {}, 0
            fake.injected.reset()
            for a in fake.keys.values():
                a.tokens = float(fake.settings['rate_limit'])
            return {}
        if call == ('POST', '/fake/apps'):
            acct = fake.keys[b['key']] if 'key' in b else store.owner
            team = store.team(b['team']) if b.get('team') else None
            a = store.create_app(acct, b, team)
            changes = dict(b.get('config_vars') or {})
            for t, cmd in (b.get('process_types') or {}).items():
                f = store.apply_update(a, t, None, None, None)
                f.command = cmd
            if changes:
                store.set_config(acct, a, changes)
            elif b.get('process_types'):
                store.release(a, acct, 'Deploy')
            return a.json()
        if call == ('POST', '/fake/config-vars'):
            a = store.apps.get(b['app']) or store.app_ids.get(b['app'])
            if a is None:
                raise ValueError('no app %s' % b['app'])
            return store.set_config(store.owner, a, b['set'])
        if call == ('POST', '/fake/foreign-apps'):
            if not isinstance(b.get('name'), str):
                raise ValueError('name is required')
            store.foreign.add(b['name'])
            return {'foreign_apps': sorted(store.foreign)}
        if call == ('POST', '/fake/logs/expire'):
            a = store.apps.get(b.get('app')) or store.app_ids.get(b.get('app'))
            if a is None:
                raise ValueError('no app %s' % b.get('app'))
            a.logs_from = len(a.logs)
            return {'expired': a.logs_from}
        if call == ('POST', '/fake/dynos/script'):
            if not isinstance(b.get('match'), str):
                raise ValueError('match is required')
            store.dyno_scripts.append(dict(b))
            return {'scripts': len(store.dyno_scripts)}
        if call == ('DELETE', '/fake/dynos/script'):
            store.dyno_scripts = []
            return {'scripts': 0}
        if call == ('POST', '/fake/releases/script'):
            if b.get('status', 'succeeded') not in ('succeeded', 'failed'):
                raise ValueError('status must be succeeded or failed')
            store.release_scripts.append(dict(b))
            return {'scripts': len(store.release_scripts)}
        if call == ('DELETE', '/fake/releases/script'):
            store.release_scripts = []
            return {'scripts': 0}
        if call == ('POST', '/fake/faults'):
            re.compile(b.get('path_regex', ''))
            if 'rate' in b and faultmix.check(b):
                raise ValueError(faultmix.check(b))
            fake.faults.append(dict(b))
            return {'faults': len(fake.faults)}
        if call == ('GET', '/fake/faults'):
            return [faultmix.public(f) for f in fake.faults]
        if call == ('DELETE', '/fake/faults'):
            fake.faults = []
            return {'faults': 0}
        if call == ('POST', '/fake/rate'):
            for a in fake.keys.values():
                fake.refill(a)
            for k in ('refill_per_min', 'limit'):
                if k in b:
                    fake.settings['rate_limit' if k == 'limit' else k] = int(b[k])
            out = {}
            for a in fake.keys.values():
                if b.get('key') in (None, a.key) and 'remaining' in b:
                    a.tokens = float(b['remaining'])
                out[a.key[:4] + '...'] = int(a.tokens)
            return out
        if call == ('POST', '/fake/settings'):
            for k, v in b.items():
                if k not in fake.settings:
                    raise ValueError('unknown setting %s' % k)
                fake.settings[k] = int(v)
            return fake.settings
        if call == ('GET', '/fake/stats'):
            return {'total': fake.total, 'requests': dict(sorted(fake.stats.items())),
                    'faults': fake.injected.snapshot()}
        if call == ('POST', '/fake/stats/reset'):
            fake.stats, fake.total = {}, 0
            fake.injected.reset()
            return {}
        return None


def main(argv=None):
    ap = argparse.ArgumentParser(prog='fake_heroku.py', description='a fake Heroku Platform API')
    ap.add_argument('--key', action='append', required=True)
    ap.add_argument('--port', type=int, default=0)
    ap.add_argument('--port-file')
    ap.add_argument('--team', action='append', default=[])
    ap.add_argument('--log')
    ap.add_argument('--rate-limit', type=int, default=4500)
    ap.add_argument('--refill-per-min', type=int, default=75)
    ap.add_argument('--page-max', type=int, default=1000)
    ap.add_argument('--addon-delay-ms', type=int, default=100)
    ap.add_argument('--release-delay-ms', type=int, default=0)
    ap.add_argument('--dyno-start-ms', type=int, default=20)
    ap.add_argument('--dyno-gone-ms', type=int, default=-1)
    args = ap.parse_args(argv)
    try:
        fake = Fake(args)
    except ValueError as e:
        ap.error(str(e))
    server = ThreadingHTTPServer(('127.0.0.1', args.port), Handler)
    server.daemon_threads = True
    server.fake = fake
    port = server.server_address[1]
    fake.store.base = 'http://127.0.0.1:%d' % port

    def stop(signum, frame):
        fake.stopping = True
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
    fake.store.sched.stop()
    with fake.store.cond:
        fake.store.cond.notify_all()
    return 0


if __name__ == '__main__':
    sys.exit(main())
