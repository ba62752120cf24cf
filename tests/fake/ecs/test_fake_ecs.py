#!/usr/bin/python3
"""Tests of fake_ecs.py (README.md).

fake.ecs.contract: drives every ECS operation the fake serves and checks
each answer against the operation's output shape in ecs-service-2.json
(structures closed to their members, required members, lists, maps,
enums, types; timestamps are epoch seconds); every error's __type must
be one of the operation's errors or a common one.

fake.ecs.behaviour: SigV4 (signed here with hmac), denials, throttling,
paging, deployments and the circuit breaker, RunTask with scripted exit
codes, faults, stats, Secrets Manager.
"""

import argparse
import datetime
import hashlib
import hmac
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

AKID, SECRET = 'AKIDTEST', 'test-secret-key'
AKID2, SECRET2, TOKEN2 = 'AKIDTEMP', 'temp-secret', 'session-token-1'
REGION = 'us-east-1'
ECS = 'AmazonEC2ContainerServiceV20141113.'
FAILURES = []
COMMON_ERRORS = {'AccessDeniedException', 'ThrottlingException', 'InvalidSignatureException',
                 'UnrecognizedClientException', 'IncompleteSignatureException',
                 'MissingAuthenticationTokenException', 'SerializationException',
                 'UnknownOperationException', 'ServerException'}
NET = {'awsvpcConfiguration': {'subnets': ['subnet-1'], 'securityGroups': ['sg-1'],
                               'assignPublicIp': 'DISABLED'}}


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print('FAIL: ' + what, flush=True)
    return cond


def sign(method, host, path, body, akid, secret, service, token=None, when=None, region=REGION,
         target=None):
    """The headers of a SigV4-signed request (AWS's algorithm, written here
    independently of the fake)."""
    when = when or datetime.datetime.now(datetime.timezone.utc)
    amz = when.strftime('%Y%m%dT%H%M%SZ')
    date = amz[:8]
    h = {'host': host, 'x-amz-date': amz, 'content-type': 'application/x-amz-json-1.1'}
    if target:
        h['x-amz-target'] = target
    if token:
        h['x-amz-security-token'] = token
    names = sorted(h)
    creq = '\n'.join([method, path, '', ''.join('%s:%s\n' % (n, h[n].strip()) for n in names),
                      ';'.join(names), hashlib.sha256(body).hexdigest()])
    scope = '%s/%s/%s/aws4_request' % (date, region, service)
    sts = 'AWS4-HMAC-SHA256\n%s\n%s\n%s' % (amz, scope, hashlib.sha256(creq.encode()).hexdigest())
    k = ('AWS4' + secret).encode()
    for part in (date, region, service, 'aws4_request'):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    h['Authorization'] = 'AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s' % (
        akid, scope, ';'.join(names), sig)
    return h


class Server:
    def __init__(self, script, extra=()):
        self.dir = tempfile.mkdtemp(prefix='fake-ecs-')
        self.log = os.path.join(self.dir, 'requests.log')
        portfile = os.path.join(self.dir, 'port')
        self.proc = subprocess.Popen(
            [sys.executable, script, '--credentials', '%s:%s' % (AKID, SECRET),
             '--credentials', '%s:%s:%s' % (AKID2, SECRET2, TOKEN2), '--region', REGION,
             '--port', '0', '--port-file', portfile, '--log', self.log] + list(extra),
            stdout=subprocess.DEVNULL)
        for _ in range(200):
            if os.path.exists(portfile):
                break
            time.sleep(0.05)
        self.port = int(open(portfile).read())
        self.host = '127.0.0.1:%d' % self.port
        self.conn = None

    def send(self, method, path, data, headers):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=30)
            try:
                self.conn.request(method, path, body=data, headers=headers)
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

    def call(self, op, body=None, akid=AKID, secret=SECRET, token=None, when=None, raw=None,
             service=None, region=REGION):
        """(status, headers, body) of an ECS operation (or `secretsmanager.Op`)."""
        target = op if op.startswith('secretsmanager.') else ECS + op
        service = service or ('secretsmanager' if op.startswith('secretsmanager.') else 'ecs')
        data = raw if raw is not None else json.dumps(body or {}).encode()
        h = sign('POST', self.host, '/', data, akid, secret, service, token, when, region, target)
        return self.send('POST', '/', data, h)

    def ok(self, op, body=None, **kw):
        status, _, out = self.call(op, body, **kw)
        check(status == 200, '%s: status %d %s' % (op, status, out))
        return out

    def control(self, method, path, body=None):
        status, _, out = self.send(method, path, json.dumps(body).encode() if body is not None else None, {})
        assert status == 200, (method, path, status, out)
        return out

    def stop(self):
        if self.conn:
            self.conn.close()
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(10)


def wait_for(fn, what, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    check(False, 'timed out waiting for ' + what)
    return None


def task_def(family, image='registry.example.com/shop/web:1.0', command=None, **kw):
    c = {'name': 'app', 'image': image, 'portMappings': [{'containerPort': 8080}]}
    if command:
        c['command'] = command
    b = {'family': family, 'networkMode': 'awsvpc', 'requiresCompatibilities': ['FARGATE'],
         'cpu': '256', 'memory': '512', 'containerDefinitions': [c],
         'executionRoleArn': 'arn:aws:iam::123456789012:role/exec'}
    b.update(kw)
    return b


# ---------------------------------------------------------------- contract

class Shapes:
    def __init__(self, contracts):
        with open(os.path.join(contracts, 'aws', 'ecs-service-2.json')) as f:
            self.model = json.load(f)
        self.shapes = self.model['shapes']

    def validate(self, shape_name, v, where, errs):
        s = self.shapes[shape_name]
        t = s['type']
        if t == 'structure':
            if not isinstance(v, dict):
                return errs.append('%s: %s is not an object' % (where, shape_name))
            for k in s.get('required', []):
                if k not in v:
                    errs.append('%s: required %s missing' % (where, k))
            for k, x in v.items():
                m = s.get('members', {}).get(k)
                if m is None:
                    errs.append('%s.%s: not a member of %s' % (where, k, shape_name))
                else:
                    self.validate(m['shape'], x, '%s.%s' % (where, k), errs)
        elif t == 'list':
            if not isinstance(v, list):
                return errs.append('%s: %s is not a list' % (where, shape_name))
            for i, x in enumerate(v):
                self.validate(s['member']['shape'], x, '%s[%d]' % (where, i), errs)
        elif t == 'map':
            if not isinstance(v, dict):
                return errs.append('%s: %s is not a map' % (where, shape_name))
            for k, x in v.items():
                self.validate(s['key']['shape'], k, where + ' key', errs)
                self.validate(s['value']['shape'], x, '%s[%s]' % (where, k), errs)
        elif t == 'string':
            if not isinstance(v, str):
                return errs.append('%s: %r is not a string' % (where, v))
            if 'enum' in s and v not in s['enum']:
                errs.append('%s: %r is not one of %s' % (where, v, shape_name))
        elif t in ('integer', 'long'):
            if not isinstance(v, int) or isinstance(v, bool):
                errs.append('%s: %r is not an integer' % (where, v))
        elif t == 'boolean':
            if not isinstance(v, bool):
                errs.append('%s: %r is not a boolean' % (where, v))
        elif t in ('timestamp', 'double', 'float'):
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                errs.append('%s: %r is not a number (%s)' % (where, v, t))
        elif t == 'blob':
            if not isinstance(v, str):
                errs.append('%s: %r is not base64 text' % (where, v))

    def check_output(self, op, out):
        errs = []
        self.validate(self.model['operations'][op]['output']['shape'], out, op, errs)
        for e in errs:
            check(False, 'shape: ' + e)
        return not errs

    def check_error(self, op, status, out):
        listed = {e['shape'] for e in self.model['operations'][op].get('errors', [])}
        kind = out.get('__type') if isinstance(out, dict) else None
        check(kind in listed | COMMON_ERRORS, '%s: error %r is not one of its errors' % (op, kind))
        check(isinstance(out.get('message'), str), '%s: error without message' % op)
        check(400 <= status < 600, '%s: error status %d' % (op, status))


def group_contract(server, contracts, self_test=False):
    shapes = Shapes(contracts)
    served = set()

    def call(op, body, want_error=None):
        status, headers, out = server.call(op, body)
        served.add(op)
        check(headers.get('Content-Type') == 'application/x-amz-json-1.1', op + ' content type')
        check(bool(headers.get('x-amzn-RequestId')), op + ' x-amzn-RequestId')
        if want_error:
            check(status != 200 and isinstance(out, dict) and out.get('__type') == want_error,
                  '%s: wanted %s, got %d %s' % (op, want_error, status, out))
            if status != 200:
                shapes.check_error(op, status, out)
            return out
        if check(status == 200, '%s: status %d %s' % (op, status, out)):
            shapes.check_output(op, out)
        return out

    call('CreateCluster', {'clusterName': 'shop', 'tags': [{'key': 'team', 'value': 'retail'}]})
    call('CreateCluster', {'clusterName': 'other'})
    call('DescribeClusters', {'clusters': ['shop', 'nope'], 'include': ['TAGS']})
    call('ListClusters', {'maxResults': 1})
    fancy = task_def('shop-dev-web', command=['java', '-jar', 'app.jar'],
                     taskRoleArn='arn:aws:iam::123456789012:role/task',
                     tags=[{'key': 'reconcile:project', 'value': 'shop'}])
    c = fancy['containerDefinitions'][0]
    c['environment'] = [{'name': 'MODE', 'value': 'dev'}]
    c['secrets'] = [{'name': 'DB_PASSWORD',
                     'valueFrom': 'arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf'}]
    c['healthCheck'] = {'command': ['CMD-SHELL', 'curl -f http://localhost:8080/ || exit 1']}
    c['logConfiguration'] = {'logDriver': 'awslogs', 'options': {'awslogs-group': '/ecs/shop'}}
    out = call('RegisterTaskDefinition', fancy)
    td = out.get('taskDefinition', {})
    cd = (td.get('containerDefinitions') or [{}])[0]
    check(cd.get('essential') is True and cd.get('mountPoints') == [] and cd.get('volumesFrom') == []
          and cd.get('portMappings') == [{'containerPort': 8080, 'hostPort': 8080, 'protocol': 'tcp'}],
          'container defaults filled: %s' % cd)
    check(td.get('status') == 'ACTIVE' and td.get('revision') == 1 and 'FARGATE' in td.get('compatibilities', [])
          and {'name': 'ecs.capability.task-eni'} in td.get('requiresAttributes', []), 'td defaults')
    call('RegisterTaskDefinition', task_def('shop-dev-web', image='registry.example.com/shop/web:1.1'))
    call('RegisterTaskDefinition', task_def('shop-dev-job', command=['./migrate']))
    call('RegisterTaskDefinition', task_def('bad', cpu='512', memory='8192'), 'ClientException')
    call('DescribeTaskDefinition', {'taskDefinition': 'shop-dev-web:1', 'include': ['TAGS']})
    call('DescribeTaskDefinition', {'taskDefinition': 'shop-dev-web'})
    call('DescribeTaskDefinition', {'taskDefinition': 'nope:1'}, 'ClientException')
    call('ListTaskDefinitions', {'maxResults': 2})
    call('ListTaskDefinitions', {'familyPrefix': 'shop-dev-web', 'sort': 'DESC'})
    cb = {'deploymentCircuitBreaker': {'enable': True, 'rollback': True},
          'maximumPercent': 200, 'minimumHealthyPercent': 100}
    call('CreateService', {'cluster': 'shop', 'serviceName': 'web', 'taskDefinition': 'shop-dev-web:1',
                           'desiredCount': 2, 'launchType': 'FARGATE', 'networkConfiguration': NET,
                           'deploymentConfiguration': cb,
                           'tags': [{'key': 'reconcile:project', 'value': 'shop'}]})
    call('CreateService', {'cluster': 'shop', 'serviceName': 'web', 'taskDefinition': 'shop-dev-web:1',
                           'desiredCount': 2, 'networkConfiguration': NET}, 'InvalidParameterException')
    call('CreateService', {'cluster': 'gone', 'serviceName': 'x', 'taskDefinition': 'shop-dev-web:1',
                           'desiredCount': 1, 'networkConfiguration': NET}, 'ClusterNotFoundException')
    call('DescribeServices', {'cluster': 'shop', 'services': ['web', 'nope'], 'include': ['TAGS']})
    call('UpdateService', {'cluster': 'shop', 'service': 'web', 'taskDefinition': 'shop-dev-web:2',
                           'desiredCount': 3})
    call('UpdateService', {'cluster': 'shop', 'service': 'nope', 'desiredCount': 1},
         'ServiceNotFoundException')
    time.sleep(0.5)
    call('DescribeServices', {'cluster': 'shop', 'services': ['web']})
    call('ListServices', {'cluster': 'shop', 'maxResults': 1})
    call('TagResource', {'resourceArn': 'arn:aws:ecs:us-east-1:123456789012:service/shop/web',
                         'tags': [{'key': 'k', 'value': 'v'}]})
    call('UntagResource', {'resourceArn': 'arn:aws:ecs:us-east-1:123456789012:service/shop/web',
                           'tagKeys': ['k']})
    call('ListTagsForResource', {'resourceArn': 'arn:aws:ecs:us-east-1:123456789012:cluster/shop'})
    call('ListTagsForResource', {'resourceArn':
                                 'arn:aws:ecs:us-east-1:123456789012:task-definition/shop-dev-web:1'})
    call('TagResource', {'resourceArn': 'arn:aws:ecs:us-east-1:123456789012:service/shop/none',
                         'tags': [{'key': 'k', 'value': 'v'}]}, 'ResourceNotFoundException')
    out = call('RunTask', {'cluster': 'shop', 'taskDefinition': 'shop-dev-job', 'startedBy': 'run-1',
                           'launchType': 'FARGATE', 'networkConfiguration': NET,
                           'overrides': {'containerOverrides': [{'name': 'app', 'command': ['./migrate', 'up']}]}})
    arn = (out.get('tasks') or [{}])[0].get('taskArn')
    call('DescribeTasks', {'cluster': 'shop', 'tasks': [arn, 'nope']})
    call('ListTasks', {'cluster': 'shop', 'startedBy': 'run-1'})
    time.sleep(0.6)
    call('DescribeTasks', {'cluster': 'shop', 'tasks': [arn], 'include': ['TAGS']})
    call('ListTasks', {'cluster': 'shop', 'desiredStatus': 'STOPPED'})
    out = call('RunTask', {'cluster': 'shop', 'taskDefinition': 'shop-dev-job', 'networkConfiguration': NET})
    call('StopTask', {'cluster': 'shop', 'task': (out.get('tasks') or [{}])[0].get('taskArn'),
                      'reason': 'hook cancelled'})
    call('StopTask', {'cluster': 'shop', 'task': 'nope'}, 'InvalidParameterException')
    call('DeleteCluster', {'cluster': 'shop'}, 'ClusterContainsServicesException')
    call('DeleteService', {'cluster': 'shop', 'service': 'web'}, 'InvalidParameterException')
    call('DeleteService', {'cluster': 'shop', 'service': 'web', 'force': True})
    call('DescribeServices', {'cluster': 'shop', 'services': ['web']})
    call('DeregisterTaskDefinition', {'taskDefinition': 'shop-dev-web:1'})
    call('ListTaskDefinitions', {'status': 'INACTIVE'})
    call('DeleteCluster', {'cluster': 'other'})
    call('DeleteCluster', {'cluster': 'other'}, 'ClusterNotFoundException')
    # The state after deployments, stops and deletes has every shape too.
    time.sleep(0.5)
    call('DescribeServices', {'cluster': 'shop', 'services': ['web']})
    call('DescribeTasks', {'cluster': 'shop', 'tasks': [arn]})
    ops = {'CreateCluster', 'DescribeClusters', 'DeleteCluster', 'ListClusters',
           'RegisterTaskDefinition', 'DescribeTaskDefinition', 'DeregisterTaskDefinition',
           'ListTaskDefinitions', 'CreateService', 'UpdateService', 'DescribeServices',
           'DeleteService', 'ListServices', 'TagResource', 'UntagResource', 'ListTagsForResource',
           'RunTask', 'DescribeTasks', 'StopTask', 'ListTasks'}
    check(ops <= served, 'operations not driven: %s' % sorted(ops - served))
    for op in ops:
        check(op in shapes.model['operations'], op + ' is not an operation of the model')
    # The validator itself: a wrong field, a wrong type and a wrong enum fail.
    errs = []
    shapes.validate('Service', {'serviceName': 1, 'launchType': 'MOON', 'colour': 'red'}, 'x', errs)
    check(len(errs) == 3, 'the shape check finds wrong fields: %s' % errs)


# ---------------------------------------------------------------- behaviour

def t_sigv4(s):
    check(s.call('ListClusters', {})[0] == 200, 'a correct signature is accepted')
    status, h, out = s.call('ListClusters', {}, secret='wrong')
    check(status == 403 and out == {
        '__type': 'InvalidSignatureException',
        'message': 'The request signature we calculated does not match the signature you provided. '
                   'Check your AWS Secret Access Key and signing method. Consult the service '
                   'documentation for details.'}, 'wrong secret: %d %s' % (status, out))
    check(bool(h.get('x-amzn-RequestId')), 'request id on errors')
    status, _, out = s.call('ListClusters', {}, akid='AKIDUNKNOWN')
    check(status == 403 and out.get('__type') == 'UnrecognizedClientException', 'unknown key %s' % out)
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=6)
    status, _, out = s.call('ListClusters', {}, when=old)
    check(status == 403 and out.get('__type') == 'InvalidSignatureException'
          and out.get('message', '').startswith('Signature expired: '), 'expired %s' % out)
    ok = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=4)
    check(s.call('ListClusters', {}, when=ok)[0] == 200, 'four minutes off is accepted')
    status, _, out = s.call('ListClusters', {}, region='eu-west-1')
    check(status == 403 and out.get('__type') == 'InvalidSignatureException', 'wrong region %s' % out)
    status, _, out = s.call('ListClusters', {}, service='secretsmanager')
    check(status == 403 and 'correct service' in out.get('message', ''), 'wrong service %s' % out)
    # A body changed after signing.
    data = b'{}'
    h = sign('POST', s.host, '/', data, AKID, SECRET, 'ecs', target=ECS + 'ListClusters')
    status, _, out = s.send('POST', '/', b'{ }', h)
    check(status == 403 and out.get('__type') == 'InvalidSignatureException', 'tampered body')
    # Session tokens.
    check(s.call('ListClusters', {}, akid=AKID2, secret=SECRET2, token=TOKEN2)[0] == 200, 'session token')
    status, _, out = s.call('ListClusters', {}, akid=AKID2, secret=SECRET2, token='other')
    check(status == 403 and out.get('__type') == 'UnrecognizedClientException', 'wrong token %s' % out)
    status, _, out = s.call('ListClusters', {}, akid=AKID2, secret=SECRET2)
    check(status == 403, 'missing token')
    status, _, out = s.send('POST', '/', b'{}', {'X-Amz-Target': ECS + 'ListClusters'})
    check(status in (400, 403) and out.get('__type') == 'MissingAuthenticationTokenException', 'no auth')
    status, _, out = s.call('NoSuchOperation', {})
    check(status == 400 and out.get('__type') == 'UnknownOperationException', 'unknown op %s' % out)
    status, _, out = s.call('ListClusters', raw=b'not json')
    check(status == 400 and out.get('__type') == 'SerializationException', 'bad json %s' % out)


def t_deny(s):
    s.control('POST', '/fake/deny', {'access_key': AKID2, 'action': 'ecs:RegisterTaskDefinition'})
    status, _, out = s.call('RegisterTaskDefinition', task_def('denied'), akid=AKID2, secret=SECRET2,
                            token=TOKEN2)
    check(status == 400 and out.get('__type') == 'AccessDeniedException'
          and out.get('message', '').startswith('User: arn:aws:sts::123456789012:assumed-role/')
          and 'is not authorized to perform: ecs:RegisterTaskDefinition on resource: ' in out['message']
          and out['message'].endswith('because no identity-based policy allows the '
                                      'ecs:RegisterTaskDefinition action'), 'denial %s' % out)
    check(s.call('RegisterTaskDefinition', task_def('allowed'))[0] == 200, 'the other key is allowed')
    s.control('DELETE', '/fake/deny')


def t_throttle(s):
    s.control('POST', '/fake/settings', {'rates': {'ecs:RegisterTaskDefinition': [1, 3]}})
    codes = [s.call('RegisterTaskDefinition', task_def('burst'))[0] for _ in range(5)]
    status, _, out = s.call('RegisterTaskDefinition', task_def('burst'))
    check(codes[:3] == [200] * 3 and status == 400 and out == {'__type': 'ThrottlingException',
                                                               'message': 'Rate exceeded'},
          'RegisterTaskDefinition burst %s then %s' % (codes, out))
    check(s.call('ListClusters', {})[0] == 200, 'another action has its own bucket')
    time.sleep(1.1)
    check(s.call('RegisterTaskDefinition', task_def('burst'))[0] == 200, 'one per second refills')
    s.control('POST', '/fake/settings', {'rates': {'ecs:RegisterTaskDefinition': [100, 100]}})


def t_paging(s):
    s.ok('CreateCluster', {'clusterName': 'paged'})
    s.ok('RegisterTaskDefinition', task_def('pg'))
    for i in range(25):
        s.ok('CreateService', {'cluster': 'paged', 'serviceName': 'svc-%02d' % i, 'taskDefinition': 'pg',
                               'desiredCount': 0, 'networkConfiguration': NET})
    seen, tok, pages = [], None, 0
    while True:
        body = {'cluster': 'paged'}
        if tok:
            body['nextToken'] = tok
        out = s.ok('ListServices', body)
        pages += 1
        seen += out['serviceArns']
        tok = out.get('nextToken')
        if not tok:
            break
    check(pages == 3 and len(seen) == 25 and len(set(seen)) == 25, 'ListServices pages of 10: %d' % pages)
    out = s.ok('ListTaskDefinitions', {'familyPrefix': 'burst', 'maxResults': 2})
    check(len(out['taskDefinitionArns']) == 2 and 'nextToken' in out, 'ListTaskDefinitions maxResults')
    status, _, out = s.call('ListServices', {'cluster': 'paged', 'nextToken': 'garbage'})
    check(status == 400 and out.get('__type') == 'InvalidParameterException', 'bad token %s' % out)
    status, _, out = s.call('DescribeServices', {'cluster': 'paged', 'services': seen[:11]})
    check(status == 400 and out.get('__type') == 'InvalidParameterException', 'at most 10 services')


def describe(s, svc, cluster='shop'):
    return s.ok('DescribeServices', {'cluster': cluster, 'services': [svc]})['services'][0]


def t_deployments(s):
    s.ok('CreateCluster', {'clusterName': 'shop'})
    v1 = s.ok('RegisterTaskDefinition', task_def('dep-api'))['taskDefinition']['taskDefinitionArn']
    v2 = s.ok('RegisterTaskDefinition', task_def('dep-api', image='x:2'))['taskDefinition']['taskDefinitionArn']
    v3 = s.ok('RegisterTaskDefinition', task_def('dep-api', image='x:3'))['taskDefinition']['taskDefinitionArn']
    cb = {'deploymentCircuitBreaker': {'enable': True, 'rollback': True}}
    out = s.ok('CreateService', {'cluster': 'shop', 'serviceName': 'api', 'taskDefinition': v1,
                                 'desiredCount': 2, 'networkConfiguration': NET,
                                 'deploymentConfiguration': cb})['service']
    d = out['deployments'][0]
    check(d['rolloutState'] == 'IN_PROGRESS' and d['status'] == 'PRIMARY' and out['runningCount'] == 0,
          'new service deploying')
    svc = wait_for(lambda: (lambda x: x if x['deployments'][0]['rolloutState'] == 'COMPLETED' else None)(
        describe(s, 'api')), 'first deployment')
    if svc:
        check(svc['runningCount'] == 2 and len(svc['deployments']) == 1, 'running 2')
        check(any('has reached a steady state' in e['message'] for e in svc['events']), 'steady event')
    s.ok('UpdateService', {'cluster': 'shop', 'service': 'api', 'taskDefinition': v2})
    svc = describe(s, 'api')
    check([d['status'] for d in svc['deployments']] == ['PRIMARY', 'ACTIVE']
          and svc['runningCount'] == 2, 'rolling: old deployment still running')
    svc = wait_for(lambda: (lambda x: x if x['deployments'][0]['rolloutState'] == 'COMPLETED' else None)(
        describe(s, 'api')), 'second deployment')
    check(svc and svc['taskDefinition'] == v2 and len(svc['deployments']) == 1, 'v2 deployed')
    # Desired count alone: no deployment, runningCount converges.
    s.ok('UpdateService', {'cluster': 'shop', 'service': 'api', 'desiredCount': 4})
    svc = describe(s, 'api')
    check(len(svc['deployments']) == 1 and svc['desiredCount'] == 4, 'scale without deployment')
    wait_for(lambda: describe(s, 'api')['runningCount'] == 4, 'running 4')
    # Drift made behind reconcile's back.
    s.control('POST', '/fake/services/desired', {'cluster': 'shop', 'service': 'api', 'desiredCount': 1})
    wait_for(lambda: describe(s, 'api')['runningCount'] == 1, 'drift to 1')
    s.ok('UpdateService', {'cluster': 'shop', 'service': 'api', 'desiredCount': 2})
    wait_for(lambda: describe(s, 'api')['runningCount'] == 2, 'running 2 again')
    # A failing task definition: circuit breaker, rollback to v2.
    s.control('POST', '/fake/deployments/script', {'task_definition_regex': r'dep-api:3$', 'fail': True})
    s.ok('UpdateService', {'cluster': 'shop', 'service': 'api', 'taskDefinition': v3})
    failed = wait_for(lambda: (lambda x: x if any(d['rolloutState'] == 'FAILED' for d in x['deployments'])
                               else None)(describe(s, 'api')), 'failed deployment')
    if failed:
        f = [d for d in failed['deployments'] if d['rolloutState'] == 'FAILED'][0]
        check(f['taskDefinition'] == v3 and f['failedTasks'] > 0
              and f['rolloutStateReason'].startswith('ECS deployment circuit breaker'), 'failed %s' % f)
        p = failed['deployments'][0]
        check(p['taskDefinition'] == v2 and 'rolling back' in p['rolloutStateReason'], 'rollback %s' % p)
        check(any('deployment failed: tasks failed to start' in e['message'] for e in failed['events'])
              and any('rolling back to deployment' in e['message'] for e in failed['events']),
              'failure events')
    svc = wait_for(lambda: (lambda x: x if len(x['deployments']) == 1
                            and x['deployments'][0]['rolloutState'] == 'COMPLETED' else None)(
        describe(s, 'api')), 'rollback completed')
    check(svc and svc['taskDefinition'] == v2 and svc['runningCount'] == 2, 'rolled back to v2')
    # Without rollback the failed deployment stays primary.
    s.ok('UpdateService', {'cluster': 'shop', 'service': 'api', 'taskDefinition': v3,
                           'deploymentConfiguration': {'deploymentCircuitBreaker':
                                                       {'enable': True, 'rollback': False}}})
    svc = wait_for(lambda: (lambda x: x if x['deployments'][0]['rolloutState'] == 'FAILED' else None)(
        describe(s, 'api')), 'failed without rollback')
    check(svc and svc['deployments'][0]['taskDefinition'] == v3, 'no rollback')
    s.control('DELETE', '/fake/deployments/script')
    # Deletion: DRAINING then INACTIVE.
    st = s.ok('DeleteService', {'cluster': 'shop', 'service': 'api', 'force': True})['service']['status']
    check(st == 'DRAINING', 'draining')
    wait_for(lambda: describe(s, 'api')['status'] == 'INACTIVE', 'inactive')
    status, _, out = s.call('UpdateService', {'cluster': 'shop', 'service': 'api', 'desiredCount': 1})
    check(status == 400 and out.get('__type') == 'ServiceNotFoundException', 'update of a deleted service')


def t_tasks(s):
    s.ok('CreateCluster', {'clusterName': 'shop'})
    s.ok('RegisterTaskDefinition', task_def('hook', command=['./run']))
    s.control('POST', '/fake/tasks/script', {'match': r'^\./migrate up$', 'exit': 3, 'duration_ms': 300,
                                             'reason': 'Essential container in task exited'})
    out = s.ok('RunTask', {'cluster': 'shop', 'taskDefinition': 'hook', 'startedBy': 'run-42',
                           'networkConfiguration': NET,
                           'overrides': {'containerOverrides': [{'name': 'app',
                                                                 'command': ['./migrate', 'up']}]}})
    t = out['tasks'][0]
    check(t['lastStatus'] == 'PROVISIONING' and t['desiredStatus'] == 'RUNNING'
          and t['startedBy'] == 'run-42', 'task provisioning')
    arn = t['taskArn']

    def status():
        return s.ok('DescribeTasks', {'cluster': 'shop', 'tasks': [arn]})['tasks'][0]
    wait_for(lambda: status()['lastStatus'] == 'RUNNING', 'task running')
    found = s.ok('ListTasks', {'cluster': 'shop', 'startedBy': 'run-42'})['taskArns']
    check(found == [arn], 'found by startedBy while running')
    t = wait_for(lambda: (lambda x: x if x['lastStatus'] == 'STOPPED' else None)(status()), 'task stopped')
    if t:
        check(t['containers'][0]['exitCode'] == 3 and t['stopCode'] == 'EssentialContainerExited'
              and t['stoppedReason'] == 'Essential container in task exited'
              and isinstance(t.get('stoppedAt'), (int, float)), 'stopped with exit 3: %s' % t)
    check(s.ok('ListTasks', {'cluster': 'shop', 'startedBy': 'run-42'})['taskArns'] == [],
          'a stopped task is not listed by default')
    check(s.ok('ListTasks', {'cluster': 'shop', 'startedBy': 'run-42', 'desiredStatus': 'STOPPED'})
          ['taskArns'] == [arn], 'listed with desiredStatus STOPPED')
    out = s.ok('RunTask', {'cluster': 'shop', 'taskDefinition': 'hook', 'networkConfiguration': NET})
    t = out['tasks'][0]
    wait_for(lambda: s.ok('DescribeTasks', {'cluster': 'shop', 'tasks': [t['taskArn']]})
             ['tasks'][0]['lastStatus'] == 'STOPPED', 'unscripted task stops')
    t = s.ok('DescribeTasks', {'cluster': 'shop', 'tasks': [t['taskArn']]})['tasks'][0]
    check(t['containers'][0]['exitCode'] == 0, 'unscripted exit 0')
    s.control('POST', '/fake/tasks/script', {'match': 'sleep', 'exit': 0, 'duration_ms': 60000})
    out = s.ok('RunTask', {'cluster': 'shop', 'taskDefinition': 'hook', 'networkConfiguration': NET,
                           'overrides': {'containerOverrides': [{'name': 'app', 'command': ['sleep', '60']}]}})
    arn = out['tasks'][0]['taskArn']
    s.ok('StopTask', {'cluster': 'shop', 'task': arn, 'reason': 'cancelled'})
    t = wait_for(lambda: (lambda x: x if x['lastStatus'] == 'STOPPED' else None)(
        s.ok('DescribeTasks', {'cluster': 'shop', 'tasks': [arn]})['tasks'][0]), 'stopped by user')
    check(t and t['stopCode'] == 'UserInitiated' and t['stoppedReason'] == 'cancelled', 'StopTask')
    status, _, out = s.call('RunTask', {'cluster': 'shop', 'taskDefinition': 'hook'})
    check(status == 400 and out.get('__type') == 'InvalidParameterException', 'awsvpc needs a network')


def t_faults(s):
    s.control('POST', '/fake/faults', {'target_regex': 'ListClusters$', 'status': 500, 'count': 1})
    status, _, out = s.call('ListClusters', {})
    check(status == 500 and out.get('__type') == 'ServerException', 'fault 500 %s' % out)
    check(s.call('ListClusters', {})[0] == 200, 'fault count used up')
    s.control('POST', '/fake/faults', {'target_regex': 'DescribeServices', 'status': 400,
                                       'type': 'ThrottlingException', 'count': 2})
    codes = [s.call('DescribeServices', {'cluster': 'shop', 'services': ['x']})[2].get('__type')
             for _ in range(3)]
    check(codes == ['ThrottlingException', 'ThrottlingException', None], 'throttling faults %s' % codes)
    s.control('POST', '/fake/faults', {'target_regex': 'ListClusters', 'malformed': True, 'count': 1})
    status, _, out = s.call('ListClusters', {})
    check(status == 200 and isinstance(out, str), 'malformed body')
    s.control('POST', '/fake/faults', {'target_regex': 'ListClusters', 'drop': True, 'count': 1})
    try:
        h = sign('POST', s.host, '/', b'{}', AKID, SECRET, 'ecs', target=ECS + 'ListClusters')
        c = http.client.HTTPConnection('127.0.0.1', s.port, timeout=5)
        c.request('POST', '/', body=b'{}', headers=h)
        c.getresponse().read()
        check(False, 'dropped connection answered')
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
        pass
    s.control('POST', '/fake/faults', {'target_regex': 'ListClusters', 'delay_ms': 300, 'count': 1})
    t0 = time.time()
    check(s.call('ListClusters', {})[0] == 200 and time.time() - t0 >= 0.3, 'delay')
    s.control('DELETE', '/fake/faults')
    stats = s.control('GET', '/fake/stats')
    check(stats['requests'].get(ECS + 'ListClusters', 0) >= 5, 'stats per target %s' % stats)
    s.control('POST', '/fake/stats/reset')
    check(s.control('GET', '/fake/stats')['total'] == 0, 'stats reset')


def t_mix(s):
    """Random faults (faultmix.py): a seeded mix at a rate."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import faultmix
    status, _, err = s.send('POST', '/fake/faults', json.dumps({'rate': 2}).encode(), {})
    check(status == 400, 'a bad rate is refused %s' % err)
    faultmix.selftest(s, {'target_regex': 'ListClusters$', 'rate': 0.5, 'seed': 7, 'hang_ms': 400},
                      'POST', '/', lambda: sign('POST', s.host, '/', b'{}', AKID, SECRET, 'ecs',
                                                target=ECS + 'ListClusters'), b'{}', check)


def t_secrets(s):
    sm = 'secretsmanager.'
    out = s.ok(sm + 'CreateSecret', {'Name': 'reconcile/shop/dev/DB_PASSWORD', 'SecretString': 's3cret',
                                     'Tags': [{'Key': 'reconcile:project', 'Value': 'shop'}]})
    check(out['ARN'].startswith('arn:aws:secretsmanager:us-east-1:123456789012:secret:reconcile/shop/dev/'
                                'DB_PASSWORD-') and out.get('VersionId'), 'CreateSecret %s' % out)
    v1 = out['VersionId']
    got = s.ok(sm + 'GetSecretValue', {'SecretId': 'reconcile/shop/dev/DB_PASSWORD'})
    check(got['SecretString'] == 's3cret' and got['VersionId'] == v1
          and got['VersionStages'] == ['AWSCURRENT'], 'GetSecretValue')
    put = s.ok(sm + 'PutSecretValue', {'SecretId': out['ARN'], 'SecretString': 'n3w'})
    check(put['VersionId'] != v1, 'new version')
    got = s.ok(sm + 'GetSecretValue', {'SecretId': out['ARN']})
    check(got['SecretString'] == 'n3w' and got['VersionId'] == put['VersionId'], 'current value')
    prev = s.ok(sm + 'GetSecretValue', {'SecretId': out['ARN'], 'VersionStage': 'AWSPREVIOUS'})
    check(prev['SecretString'] == 's3cret', 'previous value')
    s.ok(sm + 'TagResource', {'SecretId': out['ARN'], 'Tags': [{'Key': 'reconcile:hash', 'Value': 'abc'}]})
    d = s.ok(sm + 'DescribeSecret', {'SecretId': out['ARN']})
    check({'Key': 'reconcile:hash', 'Value': 'abc'} in d['Tags'] and 'SecretString' not in d, 'DescribeSecret')
    lst = s.ok(sm + 'ListSecrets', {'Filters': [{'Key': 'tag-key', 'Values': ['reconcile:project']}]})
    check([x['Name'] for x in lst['SecretList']] == ['reconcile/shop/dev/DB_PASSWORD'], 'ListSecrets by tag')
    status, _, err = s.call(sm + 'CreateSecret', {'Name': 'reconcile/shop/dev/DB_PASSWORD', 'SecretString': 'x'})
    check(status == 400 and err.get('__type') == 'ResourceExistsException', 'exists %s' % err)
    dl = s.ok(sm + 'DeleteSecret', {'SecretId': out['ARN'], 'RecoveryWindowInDays': 7})
    check(dl['DeletionDate'] > time.time() + 6 * 86400, 'recovery window')
    status, _, err = s.call(sm + 'GetSecretValue', {'SecretId': out['ARN']})
    check(status == 400 and err.get('__type') == 'InvalidRequestException', 'deleted %s' % err)
    status, _, err = s.call(sm + 'GetSecretValue', {'SecretId': 'nope'})
    check(status == 400 and err == {'__type': 'ResourceNotFoundException',
                                    'Message': "Secrets Manager can't find the specified secret."}, 'missing')
    status, _, err = s.call(sm + 'GetSecretValue', {'SecretId': 'nope'}, secret='bad')
    check(status == 403 and err.get('__type') == 'InvalidSignatureException', 'secretsmanager SigV4')
    status, _, err = s.call(sm + 'GetSecretValue', {'SecretId': 'nope'}, service='ecs')
    check(status == 403, 'secretsmanager needs its own service in the scope')
    s.control('POST', '/fake/deny', {'access_key': AKID, 'action': 'secretsmanager:CreateSecret'})
    status, _, err = s.call(sm + 'CreateSecret', {'Name': 'x', 'SecretString': 'y'})
    check(status == 400 and err.get('__type') == 'AccessDeniedException'
          and 'secretsmanager:CreateSecret' in err.get('Message', ''), 'secrets denial %s' % err)
    s.control('DELETE', '/fake/deny')


def t_control(s):
    state = s.control('GET', '/fake/state')
    check({'clusters', 'task_definitions', 'services', 'tasks', 'secrets'} <= set(state), 'state keys')
    s.control('POST', '/fake/reset')
    state = s.control('GET', '/fake/state')
    check(not state['services'] and not state['clusters'], 'reset')
    status, _, out = s.send('GET', '/fake/nope', None, {})
    check(status == 404, 'unknown control call')


def group_behaviour(server):
    for t in (t_sigv4, t_deny, t_throttle, t_paging, t_deployments, t_tasks, t_faults, t_mix, t_secrets,
              t_control):
        t(server)
        print('behaviour: %s done' % t.__name__[2:], flush=True)
    log = open(server.log).read()
    check(('POST / %sListClusters 200 t=' % ECS) in log and SECRET not in log and 'Signature' not in log,
          'request log')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--server', required=True)
    ap.add_argument('--contracts', required=True)
    ap.add_argument('--group', required=True, choices=['contract', 'behaviour'])
    args = ap.parse_args()
    model = os.path.join(args.contracts, 'aws', 'ecs-service-2.json')
    if not os.path.exists(model):
        print('error: cannot find %s (the shared contracts beside the repository)' % model)
        return 1
    extra = ['--deployment-ms', '150', '--scale-ms', '100', '--task-start-ms', '60', '--task-run-ms', '120']
    server = Server(args.server, extra)
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
