"""The resources of the fake ECS and Secrets Manager, their JSON shapes
(as ecs-service-2.json's output shapes) and their rules. Time moves in
tick(): deployments, scaling and tasks advance when a request or the
control API looks at them, so nothing runs between requests."""

import base64
import copy
import json
import random
import re
import time
import uuid

ACCOUNT = '123456789012'
ECS_PREFIX = 'AmazonEC2ContainerServiceV20141113.'
SM_PREFIX = 'secretsmanager.'

# Fargate's task sizes: cpu units -> the memory values (MiB) it allows.
FARGATE = {
    256: [512, 1024, 2048],
    512: list(range(1024, 4097, 1024)),
    1024: list(range(2048, 8193, 1024)),
    2048: list(range(4096, 16385, 1024)),
    4096: list(range(8192, 30721, 1024)),
    8192: list(range(16384, 61441, 4096)),
    16384: list(range(32768, 122881, 8192)),
}


class ApiError(Exception):
    """An AWS JSON 1.1 error: status, __type, message. Secrets Manager
    spells the member `Message`."""

    def __init__(self, status, kind, message, sm=False):
        super().__init__(message)
        self.status, self.kind, self.message, self.sm = status, kind, message, sm

    def body(self):
        return {'__type': self.kind, ('Message' if self.sm else 'message'): self.message}


def client(msg):
    return ApiError(400, 'ClientException', msg)


def invalid(msg):
    return ApiError(400, 'InvalidParameterException', msg)


def sm_error(kind, msg):
    return ApiError(400, kind, msg, sm=True)


def now():
    return round(time.time(), 3)


def hexid(n=32):
    return uuid.uuid4().hex[:n]


def tags_in(tags, upper=False):
    """[{key, value}] (ECS) or [{Key, Value}] (Secrets Manager) -> dict."""
    k, v = ('Key', 'Value') if upper else ('key', 'value')
    out = {}
    for t in tags or []:
        if not isinstance(t, dict) or not isinstance(t.get(k), str):
            raise invalid('The specified tags are not valid.') if not upper else \
                sm_error('InvalidParameterException', 'You provided an invalid value for a parameter.')
        if t[k].lower().startswith('aws:'):
            raise invalid('Tag keys must not begin with "aws:".') if not upper else \
                sm_error('InvalidParameterException', 'Tag keys must not begin with "aws:".')
        out[t[k]] = t.get(v, '')
    return out


def tags_out(d, upper=False):
    k, v = ('Key', 'Value') if upper else ('key', 'value')
    return [{k: a, v: b} for a, b in d.items()]


def page(items, body, default, maximum):
    """(items on this page, nextToken or None) for the nextToken and
    maxResults members of a List request."""
    n = body.get('maxResults')
    if n is None:
        n = default
    if not isinstance(n, int) or isinstance(n, bool) or n < 1 or n > maximum:
        raise invalid('maxResults must be between 1 and %d.' % maximum)
    start = 0
    tok = body.get('nextToken')
    if tok:
        try:
            start = json.loads(base64.b64decode(tok))['offset']
            assert isinstance(start, int) and start >= 0
        except Exception:
            raise invalid('Invalid token %s' % tok)
    out = items[start:start + n]
    nxt = None
    if start + n < len(items):
        nxt = base64.b64encode(json.dumps({'offset': start + n, 'r': hexid(8)}).encode()).decode()
    return out, nxt


class Caller:
    """An access key from --credentials."""

    def __init__(self, akid, secret, token=None):
        self.akid, self.secret, self.token = akid, secret, token
        if token:
            self.arn = 'arn:aws:sts::%s:assumed-role/reconcile/%s' % (ACCOUNT, akid.lower())
        else:
            self.arn = 'arn:aws:iam::%s:user/reconcile' % ACCOUNT


class Store:
    def __init__(self, settings, region):
        self.settings = settings
        self.region = region
        self.reset()

    def reset(self):
        self.clusters = {}        # name -> dict
        self.families = {}        # family -> [td dict...] by revision (index rev-1)
        self.td_tags = {}         # td arn -> {k: v}
        self.services = {}        # (cluster, name) -> dict (internal keys start with _)
        self.tasks = {}           # task arn -> dict
        self.secrets = {}         # name -> dict
        self.task_scripts = []
        self.deploy_scripts = []
        self.denials = []         # (access_key, action)

    def arn(self, kind, rest):
        return 'arn:aws:ecs:%s:%s:%s/%s' % (self.region, ACCOUNT, kind, rest)

    # ------------------------------------------------------------ time

    def tick(self):
        t = time.time()
        for svc in self.services.values():
            self.tick_service(svc, t)
        for task in self.tasks.values():
            self.tick_task(task, t)

    def event(self, svc, msg):
        svc['events'].insert(0, {'id': str(uuid.uuid4()), 'createdAt': now(), 'message': msg})
        del svc['events'][100:]

    def tick_service(self, svc, t):
        name = svc['serviceName']
        if svc['status'] == 'DRAINING':
            if t >= svc['_due']:
                svc['status'] = 'INACTIVE'
                svc['deployments'] = []
                svc['runningCount'] = svc['pendingCount'] = 0
            return
        if svc['status'] != 'ACTIVE' or not svc['deployments']:
            return
        d = svc['deployments'][0]
        if d['rolloutState'] == 'IN_PROGRESS' and t >= d['_due']:
            if d['_fail']:
                self.fail_deployment(svc, d, t)
            else:
                started = d['desiredCount']
                d.update(rolloutState='COMPLETED', runningCount=started, pendingCount=0,
                         updatedAt=now(),
                         rolloutStateReason='ECS deployment %s completed.' % d['id'])
                old = svc['deployments'][1:]
                svc['deployments'] = [d]
                if started:
                    self.event(svc, '(service %s) has started %d tasks: %s.' % (
                        name, started, ' '.join('(task %s)' % hexid() for _ in range(min(started, 5)))))
                stopped = sum(o['runningCount'] for o in old)
                if stopped:
                    self.event(svc, '(service %s) has stopped %d running tasks: %s.' % (
                        name, stopped, ' '.join('(task %s)' % hexid() for _ in range(min(stopped, 5)))))
                self.event(svc, '(service %s) (deployment %s) deployment completed.' % (name, d['id']))
                self.event(svc, '(service %s) has reached a steady state.' % name)
                svc['_scale_due'] = None
        elif d['rolloutState'] == 'COMPLETED' and svc.get('_scale_due') and t >= svc['_scale_due']:
            diff = d['desiredCount'] - d['runningCount']
            d.update(runningCount=d['desiredCount'], pendingCount=0, updatedAt=now())
            if diff > 0:
                self.event(svc, '(service %s) has started %d tasks: %s.' % (
                    name, diff, ' '.join('(task %s)' % hexid() for _ in range(min(diff, 5)))))
            elif diff < 0:
                self.event(svc, '(service %s) has stopped %d running tasks: %s.' % (
                    name, -diff, ' '.join('(task %s)' % hexid() for _ in range(min(-diff, 5)))))
            self.event(svc, '(service %s) has reached a steady state.' % name)
            svc['_scale_due'] = None
        svc['runningCount'] = sum(x['runningCount'] for x in svc['deployments'])
        svc['pendingCount'] = sum(x['pendingCount'] for x in svc['deployments'])

    def fail_deployment(self, svc, d, t):
        name = svc['serviceName']
        cb = svc['deploymentConfiguration'].get('deploymentCircuitBreaker') or {}
        d['failedTasks'] += max(1, d['desiredCount'])
        d['pendingCount'] = 0
        d['updatedAt'] = now()
        self.event(svc, '(service %s) has started %d tasks: %s.' % (
            name, max(1, d['desiredCount']), '(task %s)' % hexid()))
        if not cb.get('enable'):
            # ECS keeps trying for ever without the circuit breaker.
            d['_due'] = t + self.settings['deployment_ms'] / 1000.0
            self.event(svc, '(service %s) is unable to consistently start tasks successfully. '
                       'For more information, see the Troubleshooting section of the Amazon ECS '
                       'Developer Guide.' % name)
            return
        d['rolloutState'] = 'FAILED'
        d['rolloutStateReason'] = 'ECS deployment circuit breaker: tasks failed to start.'
        self.event(svc, '(service %s) (deployment %s) deployment failed: tasks failed to start.'
                   % (name, d['id']))
        prev = next((x for x in svc['deployments'][1:]), None)
        if not cb.get('rollback') or prev is None:
            return
        rb = self.new_deployment(svc, prev['taskDefinition'], svc['desiredCount'], scripted=False)
        rb['_fail'] = False
        rb['runningCount'] = prev['runningCount']
        rb['pendingCount'] = max(0, svc['desiredCount'] - prev['runningCount'])
        rb['rolloutStateReason'] = ('ECS deployment circuit breaker: rolling back to deploymentId %s.'
                                    % prev['id'])
        d['status'] = 'ACTIVE'
        svc['deployments'] = [rb, d]
        svc['taskDefinition'] = prev['taskDefinition']
        self.event(svc, '(service %s) rolling back to deployment %s.' % (name, prev['id']))

    def new_deployment(self, svc, td_arn, desired, scripted=True):
        t = now()
        fail = False
        for s in self.deploy_scripts if scripted else []:
            if s.get('count', 1) > 0 and re.search(s.get('task_definition_regex', ''), td_arn):
                fail = bool(s.get('fail', True))
                if 'count' in s:
                    s['count'] -= 1
                break
        dep_id = 'ecs-svc/%019d' % random.randrange(10 ** 18, 10 ** 19)
        return {
            'id': dep_id, 'status': 'PRIMARY', 'taskDefinition': td_arn,
            'desiredCount': desired, 'pendingCount': desired, 'runningCount': 0,
            'failedTasks': 0, 'createdAt': t, 'updatedAt': t,
            'launchType': svc.get('launchType', 'FARGATE'),
            'platformVersion': '1.4.0', 'platformFamily': 'Linux',
            'networkConfiguration': copy.deepcopy(svc.get('networkConfiguration')),
            'rolloutState': 'IN_PROGRESS',
            'rolloutStateReason': 'ECS deployment %s in progress.' % dep_id,
            '_due': time.time() + self.settings['deployment_ms'] / 1000.0, '_fail': fail,
        }

    def tick_task(self, task, t):
        tl = task['_timeline']
        while tl and t >= tl[0][0]:
            _, status = tl.pop(0)
            self.task_to(task, status)

    def task_to(self, task, status):
        t = now()
        task['version'] += 1
        task['lastStatus'] = status
        if status == 'PENDING':
            task['pullStartedAt'] = t
        elif status == 'RUNNING':
            task['pullStoppedAt'] = t
            task['startedAt'] = t
            for c in task['containers']:
                c['lastStatus'] = 'RUNNING'
                c['runtimeId'] = '%s-%s' % (task['taskArn'].rsplit('/', 1)[1], hexid(10))
        elif status == 'STOPPED':
            task['desiredStatus'] = 'STOPPED'
            task.setdefault('stoppingAt', t)
            task['executionStoppedAt'] = t
            task['stoppedAt'] = t
            task['connectivity'] = 'DISCONNECTED'
            s = task['_script']
            for c in task['containers']:
                c['lastStatus'] = 'STOPPED'
                c['exitCode'] = s['exits'].get(c['name'], 0)
            if 'stopCode' not in task:
                task['stopCode'] = 'EssentialContainerExited'
                task['stoppedReason'] = s.get('reason') or 'Essential container in task exited'

    # ------------------------------------------------------------ dump

    def dump(self):
        self.tick()
        strip = lambda d: {k: v for k, v in d.items() if not k.startswith('_')}  # noqa: E731
        return {
            'clusters': [self.cluster_json(c, True) for c in self.clusters.values()],
            'task_definitions': [td for fam in self.families.values() for td in fam],
            'services': [self.service_json(s, True) for s in self.services.values()],
            'tasks': [self.task_json(t) for t in self.tasks.values()],
            'secrets': [strip(s) for s in self.secrets.values()],
            'task_scripts': self.task_scripts, 'deployment_scripts': self.deploy_scripts,
            'denials': [{'access_key': a, 'action': b} for a, b in self.denials],
        }

    # ------------------------------------------------------------ clusters

    def cluster(self, ref, missing=None):
        name = (ref or 'default').rsplit('/', 1)[-1] if str(ref or '').startswith('arn:') else (ref or 'default')
        c = self.clusters.get(name)
        if c is None or c['status'] != 'ACTIVE':
            raise missing or ApiError(400, 'ClusterNotFoundException', 'Cluster not found.')
        return c

    def cluster_json(self, c, tags):
        active = [s for s in self.services.values()
                  if s['clusterArn'] == c['clusterArn'] and s['status'] == 'ACTIVE']
        tasks = [t for t in self.tasks.values() if t['clusterArn'] == c['clusterArn']]
        out = {k: v for k, v in c.items() if not k.startswith('_')}
        out.update(activeServicesCount=len(active),
                   runningTasksCount=sum(s['runningCount'] for s in active)
                   + sum(1 for t in tasks if t['lastStatus'] == 'RUNNING'),
                   pendingTasksCount=sum(s['pendingCount'] for s in active)
                   + sum(1 for t in tasks if t['lastStatus'] in ('PROVISIONING', 'PENDING')))
        if tags:
            out['tags'] = tags_out(c['_tags'])
        return out

    def create_cluster(self, caller, b):
        name = b.get('clusterName') or 'default'
        if not re.match(r'^[A-Za-z0-9_-]{1,255}$', name):
            raise invalid('Cluster name must be 1-255 characters long and contain only letters, '
                          'numbers, hyphens and underscores.')
        c = self.clusters.get(name)
        if c is None or c['status'] != 'ACTIVE':
            c = {
                'clusterArn': self.arn('cluster', name), 'clusterName': name, 'status': 'ACTIVE',
                'registeredContainerInstancesCount': 0, 'runningTasksCount': 0,
                'pendingTasksCount': 0, 'activeServicesCount': 0, 'statistics': [],
                'settings': b.get('settings') or [{'name': 'containerInsights', 'value': 'disabled'}],
                'capacityProviders': b.get('capacityProviders') or [],
                'defaultCapacityProviderStrategy': b.get('defaultCapacityProviderStrategy') or [],
                '_tags': tags_in(b.get('tags')),
            }
            self.clusters[name] = c
        return {'cluster': self.cluster_json(c, True)}

    def describe_clusters(self, caller, b):
        refs = b.get('clusters') or ['default']
        tags = 'TAGS' in (b.get('include') or [])
        out, failures = [], []
        for r in refs:
            try:
                out.append(self.cluster_json(self.cluster(r), tags))
            except ApiError:
                failures.append({'arn': r if r.startswith('arn:') else self.arn('cluster', r),
                                 'reason': 'MISSING'})
        return {'clusters': out, 'failures': failures}

    def delete_cluster(self, caller, b):
        c = self.cluster(b.get('cluster'))
        if any(s['clusterArn'] == c['clusterArn'] and s['status'] in ('ACTIVE', 'DRAINING')
               for s in self.services.values()):
            raise ApiError(400, 'ClusterContainsServicesException',
                           'The Cluster cannot be deleted while Services are active.')
        if any(t['clusterArn'] == c['clusterArn'] and t['lastStatus'] != 'STOPPED'
               for t in self.tasks.values()):
            raise ApiError(400, 'ClusterContainsTasksException',
                           'The Cluster cannot be deleted while Tasks are active.')
        out = self.cluster_json(c, False)
        c['status'] = 'INACTIVE'
        out['status'] = 'INACTIVE'
        del self.clusters[c['clusterName']]
        return {'cluster': out}

    def list_clusters(self, caller, b):
        arns = sorted(c['clusterArn'] for c in self.clusters.values())
        items, nxt = page(arns, b, 100, 100)
        return dict({'clusterArns': items}, **({'nextToken': nxt} if nxt else {}))

    # ------------------------------------------------------------ task definitions

    def td(self, ref, active_only=False):
        """A task definition by family (latest ACTIVE), family:revision or ARN."""
        if not isinstance(ref, str) or not ref:
            raise client('Unable to describe task definition.')
        m = re.match(r'^(?:arn:aws:ecs:[^:]+:\d+:task-definition/)?([A-Za-z0-9_-]+)(?::(\d+))?$', ref)
        if not m or m.group(1) not in self.families:
            raise client('Unable to describe task definition.')
        fam = self.families[m.group(1)]
        if m.group(2) is None:
            act = [t for t in fam if t['status'] == 'ACTIVE']
            if not act:
                raise client('Unable to describe task definition.')
            return act[-1]
        rev = int(m.group(2))
        if rev < 1 or rev > len(fam):
            raise client('Unable to describe task definition.')
        return fam[rev - 1]

    def register(self, caller, b):
        fam = b.get('family')
        if not isinstance(fam, str) or not re.match(r'^[A-Za-z0-9_-]{1,255}$', fam):
            raise client('Family contains invalid characters.' if fam else 'Family can not be blank.')
        cds = b.get('containerDefinitions')
        if not isinstance(cds, list) or not cds:
            raise client('Container list cannot be empty.')
        req = b.get('requiresCompatibilities') or []
        mode = b.get('networkMode')
        cpu, mem = b.get('cpu'), b.get('memory')
        cpu = _units(cpu, 1024) if cpu is not None else None
        mem = _units(mem, 1024, gb=True) if mem is not None else None
        if 'FARGATE' in req:
            if mode != 'awsvpc':
                raise client("Fargate only supports network mode \u2018awsvpc\u2019.")
            if cpu is None:
                raise client("Fargate requires that 'cpu' be defined at the task level.")
            if mem is None:
                raise client("Fargate requires that 'memory' be defined at the task level.")
            if int(cpu) not in FARGATE or int(mem) not in FARGATE[int(cpu)]:
                raise client('No Fargate configuration exists for given values: %s CPU, %s memory. '
                             'See the Amazon ECS documentation for the valid values.' % (cpu, mem))
        names = set()
        out_cds = []
        attrs = []
        for cd in cds:
            if not isinstance(cd, dict) or not cd.get('name') or not cd.get('image'):
                raise client('Container.name should not be null or empty.' if isinstance(cd, dict)
                             and not cd.get('name') else 'Container.image should not be null or empty.')
            if cd['name'] in names:
                raise client('Container names must be unique.')
            names.add(cd['name'])
            c = copy.deepcopy(cd)
            c.setdefault('cpu', 0)
            pms = []
            for pm in c.get('portMappings') or []:
                pm = dict(pm)
                if mode == 'awsvpc':
                    if pm.get('hostPort') not in (None, pm.get('containerPort')):
                        raise client('When networkMode=awsvpc, the host ports and container ports '
                                     'in port mappings must match.')
                    pm['hostPort'] = pm.get('containerPort')
                pm.setdefault('protocol', 'tcp')
                pms.append(pm)
            c['portMappings'] = pms
            c.setdefault('essential', True)
            for k in ('environment', 'mountPoints', 'volumesFrom'):
                c.setdefault(k, [])
            c.setdefault('systemControls', [])
            if (c.get('logConfiguration') or {}).get('logDriver') == 'awslogs':
                attrs += ['com.amazonaws.ecs.capability.logging-driver.awslogs',
                          'com.amazonaws.ecs.capability.docker-remote-api.1.19']
                if b.get('executionRoleArn'):
                    attrs.append('ecs.capability.execution-role-awslogs')
            if c.get('secrets'):
                attrs.append('ecs.capability.secrets.asm.environment-variables')
                if b.get('executionRoleArn') is None:
                    raise client('Fargate requires task definition to have execution role ARN to '
                                 'support ECS Secrets.' if 'FARGATE' in req else
                                 'The execution role must be provided to support ECS Secrets.')
            if c.get('healthCheck'):
                attrs.append('ecs.capability.container-health-check')
                c['healthCheck'] = dict({'interval': 30, 'timeout': 5, 'retries': 3}, **c['healthCheck'])
            out_cds.append(c)
        if mode == 'awsvpc':
            attrs += ['com.amazonaws.ecs.capability.docker-remote-api.1.18', 'ecs.capability.task-eni']
        if b.get('taskRoleArn'):
            attrs.append('com.amazonaws.ecs.capability.task-iam-role')
        seen = []
        for a in attrs:
            if a not in seen:
                seen.append(a)
        rev = len(self.families.get(fam, [])) + 1
        arn = self.arn('task-definition', '%s:%d' % (fam, rev))
        td = {'taskDefinitionArn': arn, 'containerDefinitions': out_cds, 'family': fam}
        for k in ('taskRoleArn', 'executionRoleArn'):
            if b.get(k):
                td[k] = b[k]
        if mode:
            td['networkMode'] = mode
        td.update(revision=rev, volumes=b.get('volumes') or [], status='ACTIVE',
                  requiresAttributes=[{'name': a} for a in seen],
                  placementConstraints=b.get('placementConstraints') or [],
                  compatibilities=['EC2', 'FARGATE'] if mode in ('awsvpc', None) and 'EXTERNAL' not in req
                  else ['EC2'])
        if mode is None:
            td['compatibilities'] = ['EXTERNAL', 'EC2']
        if b.get('runtimePlatform'):
            td['runtimePlatform'] = b['runtimePlatform']
        if req:
            td['requiresCompatibilities'] = req
        if cpu is not None:
            td['cpu'] = cpu
        if mem is not None:
            td['memory'] = mem
        for k in ('pidMode', 'ipcMode', 'proxyConfiguration', 'ephemeralStorage', 'inferenceAccelerators'):
            if b.get(k) is not None:
                td[k] = b[k]
        td.update(registeredAt=now(), registeredBy=caller.arn)
        self.families.setdefault(fam, []).append(td)
        tags = tags_in(b.get('tags'))
        self.td_tags[arn] = tags
        out = {'taskDefinition': td}
        if tags:
            out['tags'] = tags_out(tags)
        return out

    def describe_td(self, caller, b):
        td = self.td(b.get('taskDefinition'))
        out = {'taskDefinition': td}
        if 'TAGS' in (b.get('include') or []):
            out['tags'] = tags_out(self.td_tags.get(td['taskDefinitionArn'], {}))
        return out

    def deregister_td(self, caller, b):
        ref = b.get('taskDefinition')
        if not isinstance(ref, str) or not re.search(r':\d+$', ref):
            raise client('Invalid revision number. Number: %s' % (ref or '').rpartition(':')[2])
        td = self.td(ref)
        if td['status'] == 'ACTIVE':
            td['status'] = 'INACTIVE'
            td['deregisteredAt'] = now()
        return {'taskDefinition': td}

    def list_tds(self, caller, b):
        status = b.get('status') or 'ACTIVE'
        if status not in ('ACTIVE', 'INACTIVE'):
            raise invalid('status must be ACTIVE or INACTIVE.')
        fams = [b['familyPrefix']] if b.get('familyPrefix') else sorted(self.families)
        arns = [t['taskDefinitionArn'] for f in fams for t in self.families.get(f, [])
                if t['status'] == status]
        if b.get('sort') == 'DESC':
            arns.reverse()
        items, nxt = page(arns, b, 100, 100)
        return dict({'taskDefinitionArns': items}, **({'nextToken': nxt} if nxt else {}))

    # ------------------------------------------------------------ services

    def service(self, b, active=True):
        c = self.cluster(b.get('cluster'))
        ref = b.get('service')
        if not isinstance(ref, str) or not ref:
            raise invalid('service can not be blank.')
        svc = self.services.get((c['clusterName'], ref.rsplit('/', 1)[-1]))
        if svc is None or svc['status'] == 'INACTIVE' and active != 'any':
            raise ApiError(400, 'ServiceNotFoundException', 'Service not found.')
        if active is True and svc['status'] != 'ACTIVE':
            raise ApiError(400, 'ServiceNotActiveException', 'Service was not ACTIVE.')
        return c, svc

    def service_json(self, svc, tags):
        out = {k: copy.deepcopy(v) for k, v in svc.items() if not k.startswith('_')}
        out['deployments'] = [{k: v for k, v in d.items() if not k.startswith('_')}
                              for d in svc['deployments']]
        for d in out['deployments']:
            if d['networkConfiguration'] is None:
                del d['networkConfiguration']
        if out.get('networkConfiguration') is None:
            out.pop('networkConfiguration', None)
        if tags:
            out['tags'] = tags_out(svc['_tags'])
        return out

    def check_network(self, td, b, launch):
        nc = b.get('networkConfiguration')
        if td.get('networkMode') == 'awsvpc' and not nc:
            raise invalid("Network Configuration must be provided when networkMode 'awsvpc' is specified.")
        if nc is not None:
            vpc = nc.get('awsvpcConfiguration') if isinstance(nc, dict) else None
            if not isinstance(vpc, dict) or not vpc.get('subnets'):
                raise invalid('subnets can not be empty.')
            if vpc.get('assignPublicIp', 'DISABLED') not in ('ENABLED', 'DISABLED'):
                raise invalid('assignPublicIp must be ENABLED or DISABLED.')
            nc = {'awsvpcConfiguration': dict({'assignPublicIp': 'DISABLED', 'securityGroups': []}, **vpc)}
        if launch == 'FARGATE' and 'FARGATE' not in td['compatibilities']:
            raise invalid('Task definition does not support launch_type FARGATE.')
        return nc

    def check_load_balancers(self, td, lbs, grace):
        # as ECS: each names a target group (or a classic load balancer)
        # and a container and port of the task definition
        if lbs is not None and not isinstance(lbs, list):
            raise invalid('loadBalancers must be a list.')
        for lb in lbs or []:
            if not isinstance(lb, dict) or not (lb.get('targetGroupArn') or lb.get('loadBalancerName')):
                raise invalid('loadBalancer should have one of targetGroupArn or loadBalancerName.')
            tg = lb.get('targetGroupArn')
            if tg and not re.match(r'^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:'
                                   r'targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}$', tg):
                raise invalid('Target Group ARN %s is not valid.' % tg)
            cname, cport = lb.get('containerName'), lb.get('containerPort')
            c = [x for x in td.get('containerDefinitions', []) if x.get('name') == cname]
            if not c:
                raise invalid('The container %s does not exist in the task definition.' % cname)
            if not any(pm.get('containerPort') == cport for pm in c[0].get('portMappings', [])):
                raise invalid('The container %s did not have a container port %s defined.'
                              % (cname, cport))
        if grace and not lbs:
            raise invalid('Health check grace period is only valid for services configured '
                          'to use load balancers')

    def deployment_config(self, given, base=None):
        dc = copy.deepcopy(base) if base else {
            'deploymentCircuitBreaker': {'enable': False, 'rollback': False},
            'maximumPercent': 200, 'minimumHealthyPercent': 100}
        for k, v in (given or {}).items():
            if k == 'deploymentCircuitBreaker':
                if not isinstance(v, dict) or not isinstance(v.get('enable'), bool) \
                        or not isinstance(v.get('rollback'), bool):
                    raise invalid('deploymentCircuitBreaker requires enable and rollback.')
                dc[k] = {'enable': v['enable'], 'rollback': v['rollback']}
            elif k in ('maximumPercent', 'minimumHealthyPercent'):
                dc[k] = v
        return dc

    def create_service(self, caller, b):
        c = self.cluster(b.get('cluster'))
        name = b.get('serviceName')
        if not isinstance(name, str) or not re.match(r'^[A-Za-z0-9_-]{1,255}$', name):
            raise invalid('serviceName can not be blank.' if not name else
                          'Service name must be 1-255 characters long and contain only letters, '
                          'numbers, hyphens and underscores.')
        old = self.services.get((c['clusterName'], name))
        if old is not None and old['status'] != 'INACTIVE':
            raise invalid('Creation of service was not idempotent.')
        try:
            td = self.td(b.get('taskDefinition'))
        except ApiError:
            raise client('TaskDefinition not found.')
        if td['status'] != 'ACTIVE':
            raise client('TaskDefinition is inactive')
        launch = b.get('launchType') or ('FARGATE' if 'FARGATE' in td.get('requiresCompatibilities', [])
                                         else 'EC2')
        if launch not in ('EC2', 'FARGATE', 'EXTERNAL'):
            raise invalid('launchType must be EC2, FARGATE or EXTERNAL.')
        desired = b.get('desiredCount', 0 if b.get('schedulingStrategy') == 'DAEMON' else None)
        if not isinstance(desired, int) or desired < 0:
            raise invalid('desiredCount must be specified for the REPLICA scheduling strategy.'
                          if desired is None else 'desiredCount must be 0 or more.')
        nc = self.check_network(td, b, launch)
        self.check_load_balancers(td, b.get('loadBalancers'), b.get('healthCheckGracePeriodSeconds'))
        svc = {
            'serviceArn': self.arn('service', '%s/%s' % (c['clusterName'], name)),
            'serviceName': name, 'clusterArn': c['clusterArn'],
            'loadBalancers': b.get('loadBalancers') or [],
            'serviceRegistries': b.get('serviceRegistries') or [],
            'status': 'ACTIVE', 'desiredCount': desired, 'runningCount': 0, 'pendingCount': 0,
            'launchType': launch,
        }
        if launch == 'FARGATE':
            svc['platformVersion'] = b.get('platformVersion') or 'LATEST'
            svc['platformFamily'] = 'Linux'
        svc.update({
            'taskDefinition': td['taskDefinitionArn'],
            'deploymentConfiguration': self.deployment_config(b.get('deploymentConfiguration')),
            'deployments': [],
            'roleArn': 'arn:aws:iam::%s:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS'
                       % ACCOUNT,
            'events': [], 'createdAt': now(),
            'placementConstraints': b.get('placementConstraints') or [],
            'placementStrategy': b.get('placementStrategy') or [],
            'networkConfiguration': nc,
            'healthCheckGracePeriodSeconds': b.get('healthCheckGracePeriodSeconds') or 0,
            'schedulingStrategy': b.get('schedulingStrategy') or 'REPLICA',
            'deploymentController': b.get('deploymentController') or {'type': 'ECS'},
            'createdBy': caller.arn,
            'enableECSManagedTags': bool(b.get('enableECSManagedTags', False)),
            'propagateTags': b.get('propagateTags') or 'NONE',
            'enableExecuteCommand': bool(b.get('enableExecuteCommand', False)),
            '_tags': tags_in(b.get('tags')), '_scale_due': None,
        })
        svc['deployments'] = [self.new_deployment(svc, td['taskDefinitionArn'], desired)]
        self.services[(c['clusterName'], name)] = svc
        return {'service': self.service_json(svc, False)}

    def update_service(self, caller, b):
        c, svc = self.service(b)
        new_td = None
        if b.get('taskDefinition') is not None:
            try:
                new_td = self.td(b['taskDefinition'])
            except ApiError:
                raise client('TaskDefinition not found.')
            if new_td['status'] != 'ACTIVE':
                raise client('TaskDefinition is inactive')
        td = new_td or self.td(svc['taskDefinition'])
        redeploy = bool(b.get('forceNewDeployment'))
        if new_td and new_td['taskDefinitionArn'] != svc['taskDefinition']:
            redeploy = True
        if 'networkConfiguration' in b:
            nc = self.check_network(td, b, svc['launchType'])
            if nc != svc['networkConfiguration']:
                svc['networkConfiguration'] = nc
                redeploy = True
        if 'desiredCount' in b:
            n = b['desiredCount']
            if not isinstance(n, int) or n < 0:
                raise invalid('desiredCount must be 0 or more.')
            svc['desiredCount'] = n
        if b.get('loadBalancers') is not None or new_td:
            lbs = b['loadBalancers'] if b.get('loadBalancers') is not None else svc['loadBalancers']
            grace = b.get('healthCheckGracePeriodSeconds', svc['healthCheckGracePeriodSeconds'])
            self.check_load_balancers(td, lbs, grace)
            if b.get('loadBalancers') is not None and lbs != svc['loadBalancers']:
                redeploy = True
        if b.get('deploymentConfiguration') is not None:
            svc['deploymentConfiguration'] = self.deployment_config(
                b['deploymentConfiguration'], svc['deploymentConfiguration'])
        for k in ('healthCheckGracePeriodSeconds', 'enableExecuteCommand', 'propagateTags',
                  'enableECSManagedTags', 'loadBalancers', 'placementConstraints',
                  'placementStrategy', 'serviceRegistries'):
            if b.get(k) is not None:
                svc[k] = b[k]
        if b.get('platformVersion') and svc['launchType'] == 'FARGATE':
            svc['platformVersion'] = b['platformVersion']
        if redeploy:
            svc['taskDefinition'] = td['taskDefinitionArn']
            d = self.new_deployment(svc, td['taskDefinitionArn'], svc['desiredCount'])
            kept = []
            for old in svc['deployments']:
                if old['runningCount'] > 0 or old['rolloutState'] == 'IN_PROGRESS':
                    old['status'] = 'ACTIVE'
                    kept.append(old)
            svc['deployments'] = [d] + kept[:1]
            svc['_scale_due'] = None
        elif 'desiredCount' in b and svc['deployments']:
            d = svc['deployments'][0]
            d['desiredCount'] = svc['desiredCount']
            d['updatedAt'] = now()
            if d['rolloutState'] == 'COMPLETED' and d['runningCount'] != d['desiredCount']:
                d['pendingCount'] = max(0, d['desiredCount'] - d['runningCount'])
                svc['_scale_due'] = time.time() + self.settings['scale_ms'] / 1000.0
            elif d['rolloutState'] == 'IN_PROGRESS':
                d['pendingCount'] = d['desiredCount']
        return {'service': self.service_json(svc, False)}

    def describe_services(self, caller, b):
        c = self.cluster(b.get('cluster'))
        refs = b.get('services')
        if not isinstance(refs, list) or not refs:
            raise invalid('services can not be empty.')
        if len(refs) > 10:
            raise invalid('services can have at most 10 items.')
        tags = 'TAGS' in (b.get('include') or [])
        out, failures = [], []
        for r in refs:
            svc = self.services.get((c['clusterName'], str(r).rsplit('/', 1)[-1]))
            if svc is None:
                failures.append({'arn': r if str(r).startswith('arn:') else
                                 self.arn('service', '%s/%s' % (c['clusterName'], r)),
                                 'reason': 'MISSING'})
            else:
                out.append(self.service_json(svc, tags))
        return {'services': out, 'failures': failures}

    def delete_service(self, caller, b):
        c, svc = self.service(b, active=False)
        if svc['status'] != 'ACTIVE':
            return {'service': self.service_json(svc, False)}
        if svc['desiredCount'] > 0 and not b.get('force'):
            raise invalid('The service cannot be stopped while it is scaled above 0.')
        svc['status'] = 'DRAINING'
        svc['desiredCount'] = 0
        for d in svc['deployments']:
            d['desiredCount'] = 0
        svc['_due'] = time.time() + self.settings['scale_ms'] / 1000.0
        return {'service': self.service_json(svc, False)}

    def list_services(self, caller, b):
        c = self.cluster(b.get('cluster'))
        arns = [s['serviceArn'] for (cn, _), s in sorted(self.services.items())
                if cn == c['clusterName'] and s['status'] in ('ACTIVE', 'DRAINING')
                and b.get('launchType') in (None, s['launchType'])]
        items, nxt = page(arns, b, 10, 100)
        return dict({'serviceArns': items}, **({'nextToken': nxt} if nxt else {}))

    # ------------------------------------------------------------ tags

    def tagged(self, arn):
        """The tag dict of an ECS resource ARN."""
        if not isinstance(arn, str):
            raise invalid('resourceArn can not be blank.')
        m = re.match(r'^arn:aws:ecs:[^:]+:\d+:(cluster|service|task-definition|task)/(.+)$', arn)
        if not m:
            raise invalid('The ARN provided is invalid.')
        kind, rest = m.groups()
        if kind == 'cluster':
            if rest not in self.clusters:
                raise ApiError(400, 'ClusterNotFoundException', 'Cluster not found.')
            return self.clusters[rest]['_tags']
        if kind == 'service':
            cn, _, sn = rest.partition('/')
            svc = self.services.get((cn, sn))
            if svc is None or svc['status'] == 'INACTIVE':
                raise ApiError(400, 'ResourceNotFoundException', 'The specified resource could not be found.')
            return svc['_tags']
        if kind == 'task-definition':
            if arn not in self.td_tags:
                raise ApiError(400, 'ResourceNotFoundException', 'The specified resource could not be found.')
            return self.td_tags[arn]
        t = self.tasks.get(arn)
        if t is None:
            raise ApiError(400, 'ResourceNotFoundException', 'The specified resource could not be found.')
        return t['_tags']

    def tag(self, caller, b):
        d = self.tagged(b.get('resourceArn'))
        new = tags_in(b.get('tags'))
        if len(set(d) | set(new)) > 50:
            raise invalid('The resource can have at most 50 tags.')
        d.update(new)
        return {}

    def untag(self, caller, b):
        d = self.tagged(b.get('resourceArn'))
        for k in b.get('tagKeys') or []:
            d.pop(k, None)
        return {}

    def list_tags(self, caller, b):
        return {'tags': tags_out(self.tagged(b.get('resourceArn')))}

    # ------------------------------------------------------------ tasks

    def run_task(self, caller, b):
        c = self.cluster(b.get('cluster'))
        try:
            td = self.td(b.get('taskDefinition'))
        except ApiError:
            raise client('TaskDefinition not found.')
        if td['status'] != 'ACTIVE':
            raise client('TaskDefinition is inactive')
        launch = b.get('launchType') or ('FARGATE' if 'FARGATE' in td.get('requiresCompatibilities', [])
                                         else 'EC2')
        nc = self.check_network(td, b, launch)
        count = b.get('count', 1)
        if not isinstance(count, int) or not 1 <= count <= 10:
            raise invalid('count must be between 1 and 10.')
        sb = b.get('startedBy')
        if sb is not None and (not isinstance(sb, str) or len(sb) > 128):
            raise invalid('startedBy must be at most 128 characters.')
        ov = copy.deepcopy(b.get('overrides') or {})
        ov.setdefault('containerOverrides', [])
        ov.setdefault('inferenceAcceleratorOverrides', [])
        by_name = {o.get('name'): o for o in ov['containerOverrides']}
        for n in by_name:
            if n not in [cd['name'] for cd in td['containerDefinitions']]:
                raise invalid('Override for container named %s is not a container in the TaskDefinition.' % n)
        tasks = []
        for _ in range(count):
            tasks.append(self.new_task(c, td, launch, nc, sb, ov, by_name, b))
        return {'tasks': [self.task_json(t) for t in tasks], 'failures': []}

    def script_for(self, command):
        for s in self.task_scripts:
            if s.get('count', 1) > 0 and re.search(s['match'], command):
                if 'count' in s:
                    s['count'] -= 1
                return s
        return None

    def new_task(self, c, td, launch, nc, sb, ov, by_name, b):
        tid = hexid()
        arn = self.arn('task', '%s/%s' % (c['clusterName'], tid))
        t0 = now()
        exits, duration, reason = {}, self.settings['task_run_ms'], None
        containers = []
        for cd in td['containerDefinitions']:
            cmd = (by_name.get(cd['name']) or {}).get('command') or cd.get('command') or []
            line = ' '.join(cmd)
            s = self.script_for(line) if line else None
            if s:
                exits[cd['name']] = int(s.get('exit', 0))
                duration = int(s.get('duration_ms', duration))
                reason = s.get('reason') or reason
            containers.append({
                'containerArn': 'arn:aws:ecs:%s:%s:container/%s/%s/%s' % (
                    self.region, ACCOUNT, c['clusterName'], tid, str(uuid.uuid4())),
                'taskArn': arn, 'name': cd['name'], 'image': cd['image'],
                'lastStatus': 'PENDING', 'networkBindings': [],
                'networkInterfaces': [{'attachmentId': str(uuid.uuid4()),
                                       'privateIpv4Address': '10.0.%d.%d' % (random.randrange(256),
                                                                             random.randrange(1, 255))}]
                if nc else [],
                'healthStatus': 'UNKNOWN', 'cpu': str(cd.get('cpu', 0)),
            })
            if cd.get('memory') is not None:
                containers[-1]['memory'] = str(cd['memory'])
        task = {
            'attachments': [{'id': str(uuid.uuid4()), 'type': 'ElasticNetworkInterface',
                             'status': 'PRECREATED',
                             'details': [{'name': 'subnetId',
                                          'value': nc['awsvpcConfiguration']['subnets'][0]}]}]
            if nc else [],
            'attributes': [{'name': 'ecs.cpu-architecture', 'value': 'x86_64'}],
            'availabilityZone': self.region + 'a', 'clusterArn': c['clusterArn'],
            'connectivity': 'CONNECTED', 'connectivityAt': t0, 'containers': containers,
            'createdAt': t0, 'desiredStatus': 'RUNNING', 'enableExecuteCommand': False,
            'group': b.get('group') or 'family:%s' % td['family'], 'healthStatus': 'UNKNOWN',
            'lastStatus': 'PROVISIONING', 'launchType': launch, 'overrides': ov,
            'taskArn': arn, 'taskDefinitionArn': td['taskDefinitionArn'], 'version': 1,
        }
        if td.get('cpu'):
            task['cpu'] = td['cpu']
        if td.get('memory'):
            task['memory'] = td['memory']
        if launch == 'FARGATE':
            task.update(platformVersion='1.4.0', platformFamily='Linux',
                        ephemeralStorage={'sizeInGiB': 20})
        if sb is not None:
            task['startedBy'] = sb
        start = time.time() + self.settings['task_start_ms'] / 1000.0
        task['_timeline'] = [(start - self.settings['task_start_ms'] / 2000.0, 'PENDING'),
                             (start, 'RUNNING'), (start + duration / 1000.0, 'STOPPED')]
        task['_script'] = {'exits': exits, 'reason': reason}
        task['_tags'] = tags_in(b.get('tags'))
        self.tasks[arn] = task
        return task

    def task_json(self, t, tags=False):
        out = {k: copy.deepcopy(v) for k, v in t.items() if not k.startswith('_')}
        if tags:
            out['tags'] = tags_out(t['_tags'])
        return out

    def find_task(self, c, ref):
        if not isinstance(ref, str) or not ref:
            raise invalid('task can not be blank.')
        arn = ref if ref.startswith('arn:') else self.arn('task', '%s/%s' % (c['clusterName'], ref))
        t = self.tasks.get(arn)
        return t if t and t['clusterArn'] == c['clusterArn'] else None

    def describe_tasks(self, caller, b):
        c = self.cluster(b.get('cluster'))
        refs = b.get('tasks')
        if not isinstance(refs, list) or not refs:
            raise invalid('Tasks cannot be empty.')
        if len(refs) > 100:
            raise invalid('tasks can have at most 100 items.')
        tags = 'TAGS' in (b.get('include') or [])
        out, failures = [], []
        for r in refs:
            t = self.find_task(c, r)
            if t is None:
                failures.append({'arn': r if str(r).startswith('arn:') else
                                 self.arn('task', '%s/%s' % (c['clusterName'], r)), 'reason': 'MISSING'})
            else:
                out.append(self.task_json(t, tags))
        return {'tasks': out, 'failures': failures}

    def stop_task(self, caller, b):
        c = self.cluster(b.get('cluster'))
        t = self.find_task(c, b.get('task'))
        if t is None:
            raise invalid('The referenced task was not found.')
        if t['lastStatus'] != 'STOPPED':
            t['desiredStatus'] = 'STOPPED'
            t['stoppingAt'] = now()
            t['stopCode'] = 'UserInitiated'
            t['stoppedReason'] = b.get('reason') or 'Task stopped by user'
            for cd in t['containers']:
                t['_script']['exits'][cd['name']] = 143 if t['lastStatus'] == 'RUNNING' else 0
            t['_timeline'] = [(time.time() + self.settings['task_stop_ms'] / 1000.0, 'STOPPED')]
            t['version'] += 1
        return {'task': self.task_json(t)}

    def list_tasks(self, caller, b):
        c = self.cluster(b.get('cluster'))
        want = b.get('desiredStatus') or 'RUNNING'
        if want not in ('RUNNING', 'PENDING', 'STOPPED'):
            raise invalid('desiredStatus must be RUNNING, PENDING or STOPPED.')
        if b.get('serviceName') and (c['clusterName'], b['serviceName']) not in self.services:
            raise ApiError(400, 'ServiceNotFoundException', 'Service not found.')
        arns = []
        for t in sorted(self.tasks.values(), key=lambda x: (x['createdAt'], x['taskArn'])):
            if t['clusterArn'] != c['clusterArn']:
                continue
            if b.get('startedBy') is not None and t.get('startedBy') != b['startedBy']:
                continue
            if b.get('family') and t['group'] != 'family:%s' % b['family'] \
                    and not t['taskDefinitionArn'].endswith('/%s:%s' % (
                        b['family'], t['taskDefinitionArn'].rsplit(':', 1)[1])):
                continue
            if b.get('serviceName'):
                continue  # service tasks are not modelled
            status = t['desiredStatus']
            if want == 'PENDING':
                if t['lastStatus'] not in ('PROVISIONING', 'PENDING'):
                    continue
            elif status != want:
                continue
            arns.append(t['taskArn'])
        items, nxt = page(arns, b, 100, 100)
        return dict({'taskArns': items}, **({'nextToken': nxt} if nxt else {}))

    # ------------------------------------------------------------ Secrets Manager

    def secret(self, ref, deleted_ok=False):
        if not isinstance(ref, str) or not ref:
            raise sm_error('InvalidParameterException', 'You must provide a value for SecretId.')
        s = self.secrets.get(ref) or next((x for x in self.secrets.values()
                                           if x['ARN'] == ref or x['ARN'][:-7] == ref), None)
        if s is None:
            raise sm_error('ResourceNotFoundException', "Secrets Manager can't find the specified secret.")
        if s.get('DeletedDate') and not deleted_ok:
            raise sm_error('InvalidRequestException', "You can't perform this operation on the secret "
                           'because it was marked for deletion.')
        return s

    def add_version(self, s, b):
        if 'SecretString' in b and 'SecretBinary' in b:
            raise sm_error('InvalidParameterException',
                           'You can\'t specify both a binary secret value and a string secret value '
                           'in the same secret.')
        vid = b.get('ClientRequestToken') or str(uuid.uuid4())
        if vid in s['_versions']:
            v = s['_versions'][vid]
            if v.get('SecretString') != b.get('SecretString') or v.get('SecretBinary') != b.get('SecretBinary'):
                raise sm_error('ResourceExistsException',
                               'You can\'t modify an existing version, you can only create a new version.')
            return vid
        for v in s['_versions'].values():
            if 'AWSCURRENT' in v['VersionStages']:
                v['VersionStages'] = ['AWSPREVIOUS']
            elif 'AWSPREVIOUS' in v['VersionStages']:
                v['VersionStages'] = []
        s['_versions'] = {k: v for k, v in s['_versions'].items() if v['VersionStages']}
        v = {'VersionId': vid, 'VersionStages': ['AWSCURRENT'], 'CreatedDate': now()}
        for k in ('SecretString', 'SecretBinary'):
            if k in b:
                v[k] = b[k]
        s['_versions'][vid] = v
        s['LastChangedDate'] = now()
        return vid

    def sm_create(self, caller, b):
        name = b.get('Name')
        if not isinstance(name, str) or not re.match(r'^[A-Za-z0-9/_+=.@-]{1,512}$', name):
            raise sm_error('InvalidParameterException', 'Invalid name. Must be a valid name containing '
                           'alphanumeric characters, or any of the following: -/_+=.@!')
        if name in self.secrets:
            if self.secrets[name].get('DeletedDate'):
                raise sm_error('InvalidRequestException', "You can't create this secret because a secret "
                               'with this name is already scheduled for deletion.')
            raise sm_error('ResourceExistsException',
                           'The operation failed because the secret %s already exists.' % name)
        suffix = ''.join(random.choice('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789')
                         for _ in range(6))
        s = {'ARN': 'arn:aws:secretsmanager:%s:%s:secret:%s-%s' % (self.region, ACCOUNT, name, suffix),
             'Name': name, 'CreatedDate': now(), 'LastChangedDate': now(),
             '_tags': tags_in(b.get('Tags'), upper=True), '_versions': {}}
        for k in ('Description', 'KmsKeyId'):
            if b.get(k) is not None:
                s[k] = b[k]
        out = {'ARN': s['ARN'], 'Name': name}
        if 'SecretString' in b or 'SecretBinary' in b:
            out['VersionId'] = self.add_version(s, b)
        self.secrets[name] = s
        return out

    def sm_put(self, caller, b):
        s = self.secret(b.get('SecretId'))
        if 'SecretString' not in b and 'SecretBinary' not in b:
            raise sm_error('InvalidRequestException', 'You must provide either SecretString or SecretBinary.')
        vid = self.add_version(s, b)
        return {'ARN': s['ARN'], 'Name': s['Name'], 'VersionId': vid,
                'VersionStages': s['_versions'][vid]['VersionStages']}

    def sm_get(self, caller, b):
        s = self.secret(b.get('SecretId'))
        vid, stage = b.get('VersionId'), b.get('VersionStage') or 'AWSCURRENT'
        v = s['_versions'].get(vid) if vid else next(
            (x for x in s['_versions'].values() if stage in x['VersionStages']), None)
        if v is None:
            raise sm_error('ResourceNotFoundException', "Secrets Manager can't find the specified secret "
                           'value for %s: %s' % (('VersionId', vid) if vid else ('staging label', stage)))
        s['LastAccessedDate'] = float(int(time.time()) // 86400 * 86400)
        out = {'ARN': s['ARN'], 'Name': s['Name']}
        out.update(copy.deepcopy(v))
        return out

    def sm_describe(self, caller, b):
        s = self.secret(b.get('SecretId'), deleted_ok=True)
        return self.sm_json(s)

    def sm_json(self, s):
        out = {k: v for k, v in s.items() if not k.startswith('_')}
        out['Tags'] = tags_out(s['_tags'], upper=True)
        out['VersionIdsToStages'] = {k: v['VersionStages'] for k, v in s['_versions'].items()}
        return out

    def sm_delete(self, caller, b):
        s = self.secret(b.get('SecretId'), deleted_ok=True)
        force = bool(b.get('ForceDeleteWithoutRecovery'))
        days = b.get('RecoveryWindowInDays')
        if force and days is not None:
            raise sm_error('InvalidParameterException', 'You can\'t use ForceDeleteWithoutRecovery in '
                           'conjunction with RecoveryWindowInDays.')
        if days is None:
            days = 30
        if not force and (not isinstance(days, int) or not 7 <= days <= 30):
            raise sm_error('InvalidParameterException',
                           'The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).')
        if s.get('DeletedDate') and not force:
            raise sm_error('InvalidRequestException', "You can't perform this operation on the secret "
                           'because it was already scheduled for deletion.')
        when = now() if force else round(time.time() + days * 86400, 3)
        s['DeletedDate'] = now()
        if force:
            del self.secrets[s['Name']]
        return {'ARN': s['ARN'], 'Name': s['Name'], 'DeletionDate': when}

    def sm_restore(self, caller, b):
        s = self.secret(b.get('SecretId'), deleted_ok=True)
        s.pop('DeletedDate', None)
        return {'ARN': s['ARN'], 'Name': s['Name']}

    def sm_tag(self, caller, b):
        s = self.secret(b.get('SecretId'))
        s['_tags'].update(tags_in(b.get('Tags'), upper=True))
        return {}

    def sm_untag(self, caller, b):
        s = self.secret(b.get('SecretId'))
        for k in b.get('TagKeys') or []:
            s['_tags'].pop(k, None)
        return {}

    def sm_list(self, caller, b):
        items = []
        for s in sorted(self.secrets.values(), key=lambda x: x['Name']):
            if s.get('DeletedDate') and not b.get('IncludePlannedDeletion'):
                continue
            ok = True
            for f in b.get('Filters') or []:
                key, vals = f.get('Key'), f.get('Values') or []
                if key == 'name':
                    ok = ok and any(s['Name'].startswith(v) for v in vals)
                elif key == 'tag-key':
                    ok = ok and any(v in s['_tags'] for v in vals)
                elif key == 'tag-value':
                    ok = ok and any(v in s['_tags'].values() for v in vals)
                elif key == 'description':
                    ok = ok and any(v in s.get('Description', '') for v in vals)
                elif key == 'all':
                    ok = ok and any(v in s['Name'] or v in s['_tags'] or v in s['_tags'].values()
                                    for v in vals)
                else:
                    raise sm_error('InvalidParameterException', 'Invalid filter key: %s' % key)
            if ok:
                j = self.sm_json(s)
                j['SecretVersionsToStages'] = j.pop('VersionIdsToStages')
                items.append(j)
        try:
            got, nxt = page(items, {'maxResults': b.get('MaxResults'), 'nextToken': b.get('NextToken')},
                            100, 100)
        except ApiError as e:
            raise sm_error('InvalidParameterException', e.message)
        return dict({'SecretList': got}, **({'NextToken': nxt} if nxt else {}))


def _units(v, per, gb=False):
    """A task size as ECS stores it: '1 vCPU' -> '1024', '2 GB' -> '2048'."""
    s = str(v).strip()
    m = re.match(r'^(\d+(?:\.\d+)?)\s*(vcpu|gb)$', s, re.I)
    if m:
        return str(int(float(m.group(1)) * per))
    if not re.match(r'^\d+$', s):
        raise client('Invalid %s value: %s' % ('memory' if gb else 'cpu', s))
    return s


ECS_OPS = {
    'CreateCluster': Store.create_cluster, 'DescribeClusters': Store.describe_clusters,
    'DeleteCluster': Store.delete_cluster, 'ListClusters': Store.list_clusters,
    'RegisterTaskDefinition': Store.register, 'DescribeTaskDefinition': Store.describe_td,
    'DeregisterTaskDefinition': Store.deregister_td, 'ListTaskDefinitions': Store.list_tds,
    'CreateService': Store.create_service, 'UpdateService': Store.update_service,
    'DescribeServices': Store.describe_services, 'DeleteService': Store.delete_service,
    'ListServices': Store.list_services,
    'TagResource': Store.tag, 'UntagResource': Store.untag, 'ListTagsForResource': Store.list_tags,
    'RunTask': Store.run_task, 'DescribeTasks': Store.describe_tasks, 'StopTask': Store.stop_task,
    'ListTasks': Store.list_tasks,
}

SM_OPS = {
    'CreateSecret': Store.sm_create, 'PutSecretValue': Store.sm_put, 'GetSecretValue': Store.sm_get,
    'DescribeSecret': Store.sm_describe, 'DeleteSecret': Store.sm_delete,
    'RestoreSecret': Store.sm_restore, 'TagResource': Store.sm_tag, 'UntagResource': Store.sm_untag,
    'ListSecrets': Store.sm_list,
}
