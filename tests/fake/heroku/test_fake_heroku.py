#!/usr/bin/python3
"""Tests of fake_heroku.py (README.md).

fake.heroku.contract: drives every endpoint the fake serves and checks
each JSON answer against the Platform API schema (the link's
targetSchema, `$ref`s resolved), with every property of a definition
required and `strictProperties` objects closed; checks that every route
the fake serves is one of the schema's links.

fake.heroku.behaviour: paging, the rate limit, errors, add-ons,
releases, one-off dynos and log sessions, faults, stats, the log file.
"""

import argparse
import base64
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

KEY = 'test-key'
ACCEPT = 'application/vnd.heroku+json; version=3'
IMAGE = 'sha256:' + 'ab' * 32
IMAGE2 = 'sha256:' + 'cd' * 32
FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print('FAIL: ' + what, flush=True)
    return cond


class Server:
    def __init__(self, script, extra=()):
        self.dir = tempfile.mkdtemp(prefix='fake-heroku-')
        self.log = os.path.join(self.dir, 'requests.log')
        portfile = os.path.join(self.dir, 'port')
        self.proc = subprocess.Popen(
            [sys.executable, script, '--key', KEY,
             '--key', 'viewer-key:role=collaborator,team=acme',
             '--key', 'member-key:role=member,team=acme,email=member@example.com',
             '--team', 'acme', '--port', '0', '--port-file', portfile,
             '--log', self.log] + list(extra), stdout=subprocess.DEVNULL)
        for _ in range(200):
            if os.path.exists(portfile):
                break
            time.sleep(0.05)
        self.port = int(open(portfile).read())
        self.conn = None

    def request(self, method, path, body=None, key=KEY, headers=None, raw=None):
        """(status, headers, parsed body or text) over one kept-alive connection."""
        h = {'Accept': ACCEPT}
        if key is not None:
            h['Authorization'] = 'Bearer ' + key
        h.update(headers or {})
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        if data is not None:
            h['Content-Type'] = 'application/json'
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=30)
            try:
                self.conn.request(method, path, body=data, headers=h)
                r = self.conn.getresponse()
                text = r.read().decode()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = text
        return r.status, r.headers, parsed

    def control(self, method, path, body=None):
        status, _, out = self.request(method, path, body, key=None)
        assert status == 200, (method, path, status, out)
        return out

    def stop(self):
        if self.conn:
            self.conn.close()
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(10)


def fetch_stream(url):
    """GET a stream URL served by the fake (logplex or release output)."""
    m = re.match(r'http://127\.0\.0\.1:(\d+)(/.*)$', url)
    conn = http.client.HTTPConnection('127.0.0.1', int(m.group(1)), timeout=30)
    conn.request('GET', m.group(2))
    r = conn.getresponse()
    text = r.read().decode()
    conn.close()
    return r.status, text


# ---------------------------------------------------------------- contract

def load_schema(contracts):
    with open(os.path.join(contracts, 'heroku', 'platform-api-schema.json')) as f:
        schema = json.load(f)
    # Optional in Heroku's answers although the schema lists them.
    optional = {'provision_message'}

    def tighten(node):
        if isinstance(node, dict):
            props = node.get('properties')
            if isinstance(props, dict) and 'links' not in node.get('properties', {}):
                req = set(node.get('required', [])) | (set(props) - optional)
                node['required'] = sorted(req)
                if node.get('strictProperties'):
                    node['additionalProperties'] = False
            for v in node.values():
                tighten(v)
        elif isinstance(node, list):
            for v in node:
                tighten(v)
    links = {}
    for name, d in schema['definitions'].items():
        for link in d.get('links', []):
            href = re.sub(r'\{\([^)]*\)\}', '{}', link['href'])
            links.setdefault((link['method'], href), []).append(link)
    tighten(schema['definitions'])
    return schema, links


def validator_for(schema):
    import jsonschema
    fc = jsonschema.FormatChecker(formats=())

    @fc.checks('uuid')
    def _uuid(v):
        return not isinstance(v, str) or bool(re.match(
            r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$', v))

    @fc.checks('date-time')
    def _time(v):
        return not isinstance(v, str) or bool(re.match(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$', v))

    @fc.checks('email')
    def _email(v):
        return not isinstance(v, str) or '@' in v

    @fc.checks('uri')
    def _uri(v):
        return not isinstance(v, str) or bool(re.match(r'^[a-z]+://', v))

    resolver = jsonschema.RefResolver('', schema)

    def validate(target, instance):
        v = jsonschema.Draft4Validator(target, resolver=resolver, format_checker=fc)
        return sorted(v.iter_errors(instance), key=lambda e: list(e.path))
    return validate


def group_contract(server, contracts):
    schema, links = load_schema(contracts)
    validate = validator_for(schema)
    routes = server.control('GET', '/fake/routes')
    served = set()
    for r in routes:
        key = (r['method'], re.sub(r'\{\w+\}', '{}', r['path']))
        check(key in links, 'route %s %s is not a link of the schema' % (r['method'], r['path']))
    seen = set()

    def call(method, template, path, body=None, key=KEY, ok=(200, 201, 202, 206)):
        status, headers, out = server.request(method, path, body, key=key)
        seen.add((method, template))
        if not check(status in ok, '%s %s: status %d %s' % (method, path, status, out)):
            return out
        link = links.get((method, re.sub(r'\{\w+\}', '{}', template)))
        if not check(link, 'no schema link for %s %s' % (method, template)):
            return out
        target = link[0].get('targetSchema')
        check(target is not None, 'link %s %s has no targetSchema' % (method, template))
        for e in validate(target or {}, out):
            check(False, '%s %s: %s at %s' % (method, path, e.message,
                                                '/'.join(str(p) for p in e.absolute_path)))
        check(headers.get('Content-Type') == 'application/json', 'content type of ' + path)
        check(re.match(r'^[0-9a-f-]{36}$', headers.get('Request-Id', '')), 'Request-Id ' + path)
        check(headers.get('RateLimit-Remaining', '').isdigit(), 'RateLimit-Remaining ' + path)
        served.add((method, template))
        return out

    call('GET', '/account', '/account')
    call('GET', '/teams', '/teams')
    call('GET', '/teams/{team}', '/teams/acme')
    call('GET', '/regions', '/regions')
    call('GET', '/regions/{region}', '/regions/eu')
    call('GET', '/stacks', '/stacks')
    call('GET', '/stacks/{stack}', '/stacks/heroku-24')
    call('GET', '/dyno-sizes', '/dyno-sizes')
    call('GET', '/dyno-sizes/{size}', '/dyno-sizes/standard-1x')
    app = call('POST', '/apps', '/apps', {'name': 'c-app', 'region': 'eu'})
    call('POST', '/teams/apps', '/teams/apps', {'name': 'c-team', 'team': 'acme'})
    call('GET', '/teams/apps/{app}', '/teams/apps/c-team')
    call('GET', '/teams/{team}/apps', '/teams/acme/apps')
    call('GET', '/apps', '/apps')
    call('GET', '/apps/{app}', '/apps/' + app['id'])
    call('PATCH', '/apps/{app}', '/apps/c-app', {'maintenance': True})
    call('GET', '/apps/{app}/available-dyno-sizes', '/apps/c-app/available-dyno-sizes')
    call('PATCH', '/apps/{app}/config-vars', '/apps/c-app/config-vars', {'A': '1', 'B': '2'})
    call('GET', '/apps/{app}/config-vars', '/apps/c-app/config-vars')
    call('PATCH', '/apps/{app}/formation', '/apps/c-app/formation',
         {'updates': [{'type': 'web', 'docker_image': IMAGE, 'quantity': 2, 'size': 'basic'},
                      {'type': 'worker', 'docker_image': IMAGE2}]})
    call('GET', '/apps/{app}/formation', '/apps/c-app/formation')
    call('GET', '/apps/{app}/formation/{type}', '/apps/c-app/formation/web')
    call('PATCH', '/apps/{app}/formation/{type}', '/apps/c-app/formation/worker',
         {'quantity': 1, 'size': 'Standard-2X'})
    call('GET', '/apps/{app}/releases', '/apps/c-app/releases')
    call('GET', '/apps/{app}/releases/{release}', '/apps/c-app/releases/4')
    call('GET', '/apps/{app}/releases/{release}/config-vars', '/apps/c-app/releases/3/config-vars')
    addon = call('POST', '/apps/{app}/addons', '/apps/c-app/addons',
                 {'plan': 'heroku-postgresql:essential-0', 'attachment': {'name': 'DATABASE'},
                  'config': {}})
    time.sleep(0.3)
    call('GET', '/addons', '/addons')
    call('GET', '/addons/{addon}', '/addons/' + addon['id'])
    call('GET', '/apps/{app}/addons', '/apps/c-app/addons')
    call('GET', '/apps/{app}/addons/{addon}', '/apps/c-app/addons/' + addon['name'])
    call('PATCH', '/apps/{app}/addons/{addon}', '/apps/c-app/addons/' + addon['id'],
         {'plan': 'heroku-postgresql:essential-1'})
    atts = call('GET', '/addon-attachments', '/addon-attachments')
    call('GET', '/addon-attachments/{attachment}', '/addon-attachments/' + atts[0]['id'])
    call('GET', '/addons/{addon}/addon-attachments', '/addons/%s/addon-attachments' % addon['id'])
    call('GET', '/apps/{app}/addon-attachments', '/apps/c-app/addon-attachments')
    call('GET', '/apps/{app}/addon-attachments/{attachment}',
         '/apps/c-app/addon-attachments/DATABASE')
    pipe = call('POST', '/pipelines', '/pipelines', {'name': 'c-pipe'})
    call('GET', '/pipelines', '/pipelines')
    call('GET', '/pipelines/{pipeline}', '/pipelines/c-pipe')
    call('PATCH', '/pipelines/{pipeline}', '/pipelines/' + pipe['id'], {'name': 'c-pipe2'})
    cp = call('POST', '/pipeline-couplings', '/pipeline-couplings',
              {'app': 'c-app', 'pipeline': pipe['id'], 'stage': 'staging'})
    call('GET', '/pipeline-couplings', '/pipeline-couplings')
    call('GET', '/pipeline-couplings/{coupling}', '/pipeline-couplings/' + cp['id'])
    call('PATCH', '/pipeline-couplings/{coupling}', '/pipeline-couplings/' + cp['id'],
         {'stage': 'production'})
    call('GET', '/apps/{app}/pipeline-couplings', '/apps/c-app/pipeline-couplings')
    call('GET', '/pipelines/{pipeline}/pipeline-couplings',
         '/pipelines/%s/pipeline-couplings' % pipe['id'])
    call('DELETE', '/pipeline-couplings/{coupling}', '/pipeline-couplings/' + cp['id'])
    call('DELETE', '/pipelines/{pipeline}', '/pipelines/' + pipe['id'])
    dyno = call('POST', '/apps/{app}/dynos', '/apps/c-app/dynos',
                {'command': 'python manage.py migrate', 'type': 'run', 'size': 'basic',
                 'env': {'X': '1'}, 'attach': False, 'time_to_live': 60})
    call('GET', '/apps/{app}/dynos', '/apps/c-app/dynos')
    call('GET', '/apps/{app}/dynos/{dyno}', '/apps/c-app/dynos/' + dyno['name'])
    call('POST', '/apps/{app}/dynos/{dyno}/actions/stop',
         '/apps/c-app/dynos/%s/actions/stop' % dyno['id'])
    call('POST', '/apps/{app}/log-sessions', '/apps/c-app/log-sessions',
         {'dyno_name': dyno['name'], 'source': 'app', 'tail': False, 'lines': 10})
    call('DELETE', '/apps/{app}/addons/{addon}', '/apps/c-app/addons/' + addon['id'])
    call('DELETE', '/apps/{app}', '/apps/c-team')
    call('DELETE', '/apps/{app}', '/apps/c-app')
    for r in routes:
        check((r['method'], r['path']) in served,
              'route %s %s not exercised by the contract test' % (r['method'], r['path']))
    print('contract: %d routes checked' % len(served))


# ---------------------------------------------------------------- behaviour

def expect(server, method, path, status, body=None, key=KEY, send=None, headers=None, raw=None):
    got, h, out = server.request(method, path, send, key=key, headers=headers, raw=raw)
    check(got == status, '%s %s: status %d, want %d (%s)' % (method, path, got, status, out))
    if body is not None:
        check(out == body, '%s %s: body %r, want %r' % (method, path, out, body))
    return out, h


def wait_for(fn, what, timeout=5):
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.02)
    check(False, 'timed out waiting for ' + what)
    return None


def t_auth(s):
    unauth = {'id': 'unauthorized', 'message': 'Invalid credentials provided.'}
    _, h = expect(s, 'GET', '/apps', 401, unauth, key=None)
    check(h.get('RateLimit-Remaining') and h.get('Request-Id'), '401 headers')
    expect(s, 'GET', '/apps', 401, unauth, key='wrong')
    basic = 'Basic ' + base64.b64encode(b'me@example.com:' + KEY.encode()).decode()
    expect(s, 'GET', '/account', 200, key=None, headers={'Authorization': basic})
    out, _ = expect(s, 'GET', '/apps', 400, headers={'Accept': 'application/json'})
    check(out.get('id') == 'missing_version', 'missing version id')
    expect(s, 'GET', '/nowhere', 404)
    expect(s, 'POST', '/apps', 400, {'id': 'bad_request',
                                     'message': 'Invalid JSON in request body.'}, raw='{nope')


def t_paging(s):
    for i in range(1100):
        s.request('POST', '/apps', {'name': 'app-%04d' % i})
    seen, rng, pages = [], 'id ..; max=1000', 0
    while True:
        st, h, out = s.request('GET', '/apps', headers={'Range': rng})
        pages += 1
        seen += out
        check(h.get('Accept-Ranges') == 'id, name, updated_at', 'Accept-Ranges')
        if st == 200:
            check('Next-Range' not in h, 'no Next-Range on the last page')
            break
        check(st == 206 and h.get('Next-Range'), 'a 206 with Next-Range')
        rng = h['Next-Range']
    ids = [a['id'] for a in seen]
    names = [a['name'] for a in seen if re.match(r'^app-\d{4}$', a['name'])]
    check(pages == 2 and len(names) == 1100 and len(set(ids)) == len(ids) and ids == sorted(ids),
          'pages of apps by id: %d pages %d apps' % (pages, len(names)))
    st, h, out = s.request('GET', '/apps')
    check(st == 206 and len(out) == 200 and h['Next-Range'].endswith('; max=200'),
          'default page of 200')
    st, h, out = s.request('GET', '/apps', headers={'Range': 'name ]app-0099..; max=10'})
    check([a['name'] for a in out] == ['app-%04d' % i for i in range(100, 110)],
          'name range after app-0099')
    check(h.get('Next-Range') == 'name ]app-0109..; max=10', 'Next-Range by name: %s' % h.get('Next-Range'))
    st, h, out = s.request('GET', '/apps', headers={'Range': 'name app-1099..; max=5, order=desc'})
    check([a['name'] for a in out] == ['app-%04d' % i for i in range(1099, 1094, -1)] and
          h.get('Next-Range') == 'name ]app-1095..; max=5, order=desc', 'descending names')
    st, h, out = s.request('GET', '/apps', headers={'Range': 'name ..; max=5000'})
    check(st == 206 and len(out) == 1000, 'max cut to --page-max')
    expect(s, 'GET', '/apps', 400, headers={'Range': 'colour ..'})


def t_rate(s):
    s.control('POST', '/fake/rate', {'remaining': 2, 'refill_per_min': 0})
    _, h = expect(s, 'GET', '/account', 200)
    check(h.get('RateLimit-Remaining') == '1', 'remaining 1: %s' % h.get('RateLimit-Remaining'))
    _, h = expect(s, 'GET', '/account', 200)
    check(h.get('RateLimit-Remaining') == '0', 'remaining 0')
    _, h = expect(s, 'GET', '/account', 429, {
        'id': 'rate_limit', 'message': 'Your account reached the API rate limit\n'
        'Please wait a few minutes before making new requests'})
    check(h.get('Retry-After') == '3600' and h.get('RateLimit-Remaining') == '0', 'Retry-After')
    s.control('GET', '/fake/state')   # control calls cost nothing and are never limited
    s.control('POST', '/fake/rate', {'refill_per_min': 60})
    _, h = expect(s, 'GET', '/account', 429)
    check(h.get('Retry-After') == '1', 'Retry-After with a refill of 1/s: %s' % h.get('Retry-After'))
    time.sleep(1.05)
    expect(s, 'GET', '/account', 200)
    s.control('POST', '/fake/rate', {'remaining': 4500, 'refill_per_min': 75})


def t_errors(s):
    expect(s, 'GET', '/apps/nope', 404,
           {'id': 'not_found', 'message': "Couldn't find that app.", 'resource': 'app'})
    bad = ('Name must start with a letter, end with a letter or digit and can only contain '
           'lowercase letters, digits, and dashes.')
    expect(s, 'POST', '/apps', 422, {'id': 'invalid_params', 'message': bad}, send={'name': 'Bad_Name'})
    s.control('POST', '/fake/foreign-apps', {'name': 'taken-name'})
    expect(s, 'POST', '/apps', 422, {'id': 'invalid_params',
                                     'message': 'Name taken-name is already taken'},
           send={'name': 'taken-name'})
    expect(s, 'GET', '/apps/taken-name', 403, {
        'id': 'forbidden', 'message': 'You do not have access to the app taken-name.'})
    expect(s, 'POST', '/apps', 422, {'id': 'invalid_params', 'message': "Couldn't find that region."},
           send={'name': 'e-app', 'region': 'mars'})
    expect(s, 'POST', '/apps', 422, {'id': 'invalid_params', 'message': "Couldn't find that stack."},
           send={'name': 'e-app', 'stack': 'cedar-9'})
    expect(s, 'POST', '/apps', 201, send={'name': 'e-app'})
    expect(s, 'PATCH', '/apps/e-app/formation', 422, {
        'id': 'invalid_params', 'message': 'No such size as Giant. Use eco, basic, standard-1X, '
        'standard-2X, performance-M, performance-L, performance-L-RAM, performance-XL, '
        'performance-2XL.'},
        send={'updates': [{'type': 'web', 'docker_image': IMAGE, 'size': 'Giant'}]})
    expect(s, 'PATCH', '/apps/e-app/formation/worker', 404, {
        'id': 'not_found', 'message': "Couldn't find that process type (worker).",
        'resource': 'formation'}, send={'quantity': 1})
    out, _ = expect(s, 'PATCH', '/apps/e-app/formation', 200,
                    send={'updates': [{'type': 'web', 'docker_image': IMAGE, 'size': 'PERFORMANCE-m'}]})
    check(out[0]['size'] == 'Performance-M' and out[0]['dyno_size']['name'] == 'Performance-M',
          'canonical size')
    expect(s, 'POST', '/apps/e-app/addons', 422, {
        'id': 'invalid_params', 'message': "Couldn't find either the add-on service or the "
        "add-on plan of \"heroku-postgresql:nope\"."}, send={'plan': 'heroku-postgresql:nope'})
    ad, _ = expect(s, 'POST', '/apps/e-app/addons', 201, send={'plan': 'heroku-postgresql:standard-0'})
    out, _ = expect(s, 'PATCH', '/apps/e-app/addons/' + ad['name'], 200,
                    send={'plan': 'heroku-postgresql:standard-2'})
    check(out['plan']['name'] == 'heroku-postgresql:standard-2', 'plan change within a tier')
    out, _ = expect(s, 'PATCH', '/apps/e-app/addons/' + ad['name'], 422,
                    send={'plan': 'heroku-postgresql:essential-0'})
    check('between the standard and essential tiers' in out.get('message', ''), 'tier refusal: %s' % out)
    # teams and roles
    out, _ = expect(s, 'GET', '/teams', 200, key='viewer-key')
    check([t['role'] for t in out] == ['collaborator'], 'viewer role')
    forbidden = {'id': 'forbidden', 'message': 'You do not have access to the team acme.'}
    expect(s, 'POST', '/teams/apps', 403, forbidden, key='viewer-key', send={'team': 'acme', 'name': 't-app'})
    expect(s, 'POST', '/teams/apps', 201, key='member-key', send={'team': 'acme', 'name': 't-app'})
    expect(s, 'GET', '/apps/t-app', 200, key='viewer-key')
    expect(s, 'DELETE', '/apps/t-app', 403, forbidden, key='member-key')
    expect(s, 'GET', '/apps/e-app', 403, {
        'id': 'forbidden', 'message': 'You do not have access to the app e-app.'}, key='member-key')
    expect(s, 'DELETE', '/apps/t-app', 200)
    # couplings
    p, _ = expect(s, 'POST', '/pipelines', 201, send={'name': 'e-pipe'})
    expect(s, 'POST', '/pipeline-couplings', 201, send={'app': 'e-app', 'pipeline': p['id'], 'stage': 'staging'})
    expect(s, 'POST', '/pipeline-couplings', 409, {
        'id': 'conflict', 'message': 'App is already coupled to a pipeline.'},
        send={'app': 'e-app', 'pipeline': p['id'], 'stage': 'production'})


def t_addons(s):
    s.control('POST', '/fake/settings', {'addon_delay_ms': 200})
    expect(s, 'POST', '/apps', 201, send={'name': 'a-app'})
    ad, _ = expect(s, 'POST', '/apps/a-app/addons', 201, send={
        'plan': 'heroku-postgresql:essential-0', 'attachment': {'name': 'DATABASE'}, 'config': {}})
    check(ad['state'] == 'provisioning', 'provisioning at first')
    vars0, _ = expect(s, 'GET', '/apps/a-app/config-vars', 200)
    check('DATABASE_URL' not in vars0, 'no DATABASE_URL while provisioning')
    wait_for(lambda: s.request('GET', '/apps/a-app/addons/' + ad['id'])[2]['state'] == 'provisioned',
             'provisioned')
    cv, _ = expect(s, 'GET', '/apps/a-app/config-vars', 200)
    check(cv.get('DATABASE_URL', '').startswith('postgres://'), 'DATABASE_URL set')
    rel, _ = expect(s, 'GET', '/apps/a-app/releases', 200)
    check(rel[-1]['description'] == 'Attach DATABASE (@ref:%s)' % ad['name'] and rel[-1]['current'],
          'attach release: %s' % rel[-1]['description'])
    check(rel[-1]['addon_plan_names'] == ['heroku-postgresql:essential-0'], 'addon_plan_names')
    expect(s, 'DELETE', '/apps/a-app/addons/' + ad['name'], 200)
    cv, _ = expect(s, 'GET', '/apps/a-app/config-vars', 200)
    check('DATABASE_URL' not in cv, 'DATABASE_URL removed')
    rel, _ = expect(s, 'GET', '/apps/a-app/releases', 200)
    check(rel[-1]['description'].startswith('Detach DATABASE'), 'detach release')
    s.control('POST', '/fake/settings', {'addon_delay_ms': 100})


def t_releases(s):
    expect(s, 'POST', '/apps', 201, send={'name': 'r-app'})
    out, _ = expect(s, 'PATCH', '/apps/r-app/config-vars', 200, send={'A': '1', 'B': '2'})
    check(out == {'A': '1', 'B': '2'}, 'config vars set')
    out, _ = expect(s, 'PATCH', '/apps/r-app/config-vars', 200, send={'A': None, 'B': '2'})
    check(out == {'B': '2'}, 'null deletes')
    rel, _ = expect(s, 'GET', '/apps/r-app/releases', 200)
    check([r['description'] for r in rel] == ['Initial release', 'Enable Logplex',
                                              'Set A, B config vars', 'Remove A config vars'],
          'release descriptions %s' % [r['description'] for r in rel])
    expect(s, 'PATCH', '/apps/r-app/config-vars', 200, send={'B': '2'})
    check(len(expect(s, 'GET', '/apps/r-app/releases', 200)[0]) == 4, 'no change, no release')
    s.control('POST', '/fake/releases/script', {'app': 'r-app', 'docker_image': IMAGE2,
                                                'status': 'failed', 'duration_ms': 300,
                                                'output': ['Running migrations', 'boom']})
    s.control('POST', '/fake/settings', {'release_delay_ms': 200})
    expect(s, 'PATCH', '/apps/r-app/formation', 200,
           send={'updates': [{'type': 'web', 'docker_image': IMAGE}]})
    r5, _ = expect(s, 'GET', '/apps/r-app/releases/5', 200)
    check(r5['status'] == 'pending' and not r5['current'], 'pending release')
    check(r5['description'] == 'Deployed web (%s)' % IMAGE[7:19], 'deploy description')
    st, text = fetch_stream(r5['output_stream_url'])
    check(st == 200 and text == '', 'empty output stream')
    r5, _ = expect(s, 'GET', '/apps/r-app/releases/' + r5['id'], 200)
    check(r5['status'] == 'succeeded' and r5['current'], 'succeeded after the delay')
    expect(s, 'PATCH', '/apps/r-app/formation', 200,
           send={'updates': [{'type': 'web', 'docker_image': IMAGE2}]})
    r6, _ = expect(s, 'GET', '/apps/r-app/releases/6', 200)
    t0 = time.time()
    st, text = fetch_stream(r6['output_stream_url'])
    check(text == 'Running migrations\nboom\n' and time.time() - t0 > 0.15,
          'release output streamed until the end: %r' % text)
    r6, _ = expect(s, 'GET', '/apps/r-app/releases/6', 200)
    check(r6['status'] == 'failed' and not r6['current'], 'failed release')
    r5, _ = expect(s, 'GET', '/apps/r-app/releases/5', 200)
    check(r5['current'], 'the last success stays current')
    s.control('POST', '/fake/settings', {'release_delay_ms': 0})
    s.control('DELETE', '/fake/releases/script')
    s.control('POST', '/fake/config-vars', {'app': 'r-app', 'set': {'BY_HAND': 'yes'}})
    r7, _ = expect(s, 'GET', '/apps/r-app/releases/7', 200)
    check(r7['status'] == 'succeeded' and r7['description'] == 'Set BY_HAND config vars',
          'a release by hand')
    out, _ = expect(s, 'GET', '/apps/r-app/releases/3/config-vars', 200)
    check(out == {'A': '1', 'B': '2'}, 'config vars of a release')


def read_log(logplex_url):
    st, text = fetch_stream(logplex_url)
    return [l for l in text.split('\n') if l]


def t_dynos(s):
    expect(s, 'POST', '/apps', 201, send={'name': 'd-app'})
    s.control('POST', '/fake/dynos/script', {'match': 'manage.py migrate',
                                             'output': ['Applying x... OK'], 'exit': 3,
                                             'duration_ms': 300})
    cmd = "'python' 'manage.py' 'migrate' ; echo \"reconcile-exit:T1:$?\""
    d, _ = expect(s, 'POST', '/apps/d-app/dynos', 201, send={'command': cmd, 'attach': False})
    check(re.match(r'^run\.\d{4}$', d['name']) and d['state'] == 'starting', 'one-off dyno')
    ls, _ = expect(s, 'POST', '/apps/d-app/log-sessions', 201,
                   send={'dyno_name': d['name'], 'tail': True})
    t0 = time.time()
    lines = read_log(ls['logplex_url'])
    check(time.time() - t0 > 0.25, 'the tail lasted as long as the dyno')
    pat = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00 (app|heroku)\[(run\.\d+)\]: (.*)$')
    check(all(pat.match(l) for l in lines), 'log line format: %s' % lines)
    app_lines = [pat.match(l).group(3) for l in lines if pat.match(l) and pat.match(l).group(1) == 'app']
    check(app_lines == ['Applying x... OK', 'reconcile-exit:T1:3'], 'app lines %s' % app_lines)
    check(any('Process exited with status 0' in l for l in lines), 'exit line')
    out, _ = expect(s, 'GET', '/apps/d-app/dynos/' + d['name'], 200)
    check(out['state'] == 'complete', 'complete')
    # source filter, and a crashed dyno without trailer
    d2, _ = expect(s, 'POST', '/apps/d-app/dynos', 201, send={'command': 'python manage.py migrate'})
    wait_for(lambda: s.request('GET', '/apps/d-app/dynos/' + d2['id'])[2]['state'] == 'crashed',
             'crashed')
    ls, _ = expect(s, 'POST', '/apps/d-app/log-sessions', 201,
                   send={'dyno': d2['name'], 'source': 'app', 'lines': 10})
    lines = read_log(ls['logplex_url'])
    check(len(lines) == 1 and lines[0].endswith('app[%s]: Applying x... OK' % d2['name']),
          'source=app lines %s' % lines)
    # the default program
    d3, _ = expect(s, 'POST', '/apps/d-app/dynos', 201, send={'command': 'rake db:seed'})
    ls, _ = expect(s, 'POST', '/apps/d-app/log-sessions', 201,
                   send={'dyno_name': d3['name'], 'source': 'app', 'tail': True})
    lines = read_log(ls['logplex_url'])
    check([l.split(': ', 1)[1] for l in lines] == ['running rake db:seed'], 'default %s' % lines)
    # stop
    s.control('POST', '/fake/dynos/script', {'match': 'sleep', 'output': ['zzz'], 'duration_ms': 10000})
    d4, _ = expect(s, 'POST', '/apps/d-app/dynos', 201, send={'command': 'sleep 10; echo "X:$?"'})
    ls, _ = expect(s, 'POST', '/apps/d-app/log-sessions', 201,
                   send={'dyno_name': d4['name'], 'tail': True})
    time.sleep(0.2)
    expect(s, 'POST', '/apps/d-app/dynos/%s/actions/stop' % d4['name'], 202, {})
    t0 = time.time()
    lines = read_log(ls['logplex_url'])
    check(time.time() - t0 < 2 and not any(' app[' in l and 'X:' in l for l in lines)
          and any('status 143' in l for l in lines), 'stopped: %s' % lines)
    out, _ = expect(s, 'GET', '/apps/d-app/dynos/' + d4['id'], 200)
    check(out['state'] == 'down', 'down after stop')
    s.control('DELETE', '/fake/dynos/script')
    # the app's history, then expired: a new session starts empty
    ls, _ = expect(s, 'POST', '/apps/d-app/log-sessions', 201, send={'lines': 1500})
    check(any('reconcile-exit:T1:3' in l for l in read_log(ls['logplex_url'])), 'app history')
    s.control('POST', '/fake/logs/expire', {'app': 'd-app'})
    ls, _ = expect(s, 'POST', '/apps/d-app/log-sessions', 201, send={'lines': 1500})
    check(read_log(ls['logplex_url']) == [], 'history expired')


def t_faults(s):
    s.control('POST', '/fake/faults', {'method': 'GET', 'path_regex': '^/account$', 'status': 503,
                                       'count': 2, 'retry_after': 1})
    for _ in range(2):
        out, h = expect(s, 'GET', '/account', 503)
        check(h.get('Retry-After') == '1' and out.get('id') == 'service_unavailable', 'fault 503')
    expect(s, 'GET', '/account', 200)
    s.control('POST', '/fake/faults', {'path_regex': '^/account$', 'drop': True, 'count': 1})
    try:
        s.conn.request('GET', '/account', headers={'Accept': ACCEPT, 'Authorization': 'Bearer ' + KEY})
        s.conn.getresponse().read()
        check(False, 'drop: an answer came')
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
        pass
    s.conn.close()
    s.conn = None
    s.control('POST', '/fake/faults', {'path_regex': '^/account$', 'delay_ms': 300, 'count': 1})
    t0 = time.time()
    expect(s, 'GET', '/account', 200)
    check(time.time() - t0 >= 0.3, 'delayed')
    s.control('POST', '/fake/faults', {'path_regex': '^/account$', 'malformed': True, 'count': 1})
    out, _ = expect(s, 'GET', '/account', 200)
    check(isinstance(out, str), 'malformed body is not JSON')
    s.control('POST', '/fake/faults', {'path_regex': '^/account$', 'status': 500,
                                       'body': {'id': 'x', 'message': 'y'}})
    expect(s, 'GET', '/account', 500, {'id': 'x', 'message': 'y'})
    s.control('DELETE', '/fake/faults')
    expect(s, 'GET', '/account', 200)


def t_mix(s):
    """Random faults (faultmix.py): a seeded mix at a rate."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import faultmix
    status, _, err = s.request('POST', '/fake/faults', {'rate': 0.5, 'kinds': ['nope']}, key=None)
    check(status == 400, 'an unknown kind is refused %s' % err)
    faultmix.selftest(s, {'path_regex': '^/account$', 'rate': 0.5, 'seed': 7, 'hang_ms': 400},
                      'GET', '/account', lambda: {'Accept': ACCEPT, 'Authorization': 'Bearer ' + KEY},
                      None, check)


def t_stats(s):
    s.control('POST', '/fake/stats/reset')
    expect(s, 'POST', '/apps', 201, send={'name': 's-app'})
    for _ in range(3):
        expect(s, 'GET', '/apps/s-app/formation', 200)
    st = s.control('GET', '/fake/stats')
    check(st == {'total': 4, 'requests': {'GET /apps/{app}/formation': 3, 'POST /apps': 1}, 'faults': {}},
          'stats %s' % st)
    dump = s.control('GET', '/fake/state')
    check(any(a['name'] == 's-app' for a in dump['apps']) and 's-app' in dump['releases'],
          'state dump')


def t_throughput(s):
    expect(s, 'POST', '/apps', 201, send={'name': 'bench-app'})
    n, t0 = 1000, time.time()
    for _ in range(n):
        s.request('GET', '/apps/bench-app/formation')
    rate = n / (time.time() - t0)
    print('throughput: %.0f requests/s (GET /apps/{app}/formation, one kept-alive connection)' % rate)
    check(rate > 300, 'throughput %.0f/s' % rate)


def group_behaviour(server):
    for t in (t_auth, t_rate, t_errors, t_addons, t_releases, t_dynos, t_faults, t_mix, t_stats,
              t_paging, t_throughput):
        t(server)
        print('behaviour: %s done' % t.__name__[2:], flush=True)
    log = open(server.log).read()
    check('GET /apps/s-app/formation 200 t=' in log and 'Bearer' not in log and KEY not in log,
          'request log')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--server', required=True)
    ap.add_argument('--contracts', required=True)
    ap.add_argument('--group', required=True, choices=['contract', 'behaviour'])
    args = ap.parse_args()
    schema = os.path.join(args.contracts, 'heroku', 'platform-api-schema.json')
    if not os.path.exists(schema):
        print('error: cannot find %s (the shared contracts beside the repository)' % schema)
        return 1
    server = Server(args.server)
    try:
        if args.group == 'contract':
            group_contract(server, args.contracts)
        else:
            group_behaviour(server)
    finally:
        rc = server.stop()
        check(rc == 0, 'exit status %s after SIGTERM' % rc)
    if FAILURES:
        print('%d failure(s)' % len(FAILURES))
        return 1
    print('ok')
    return 0


if __name__ == '__main__':
    sys.exit(main())
