"""The fake Heroku's resources, their JSON shapes (as the platform API
schema defines them) and their rules. Everything here runs under the
Store's one lock (Store.cond); the timers of Scheduler run their
callbacks under it too and wake the streams that wait on it."""

import heapq
import random
import re
import threading
import time
import uuid

import shell

NS = uuid.UUID('6f1d2c6e-4a8b-4c1e-9d7e-1a2b3c4d5e6f')
UUID_RE = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')
APP_NAME_RE = re.compile(r'^[a-z][a-z0-9-]{1,28}[a-z0-9]$')
ADDON_NAME_RE = re.compile(r'^[a-zA-Z][A-Za-z0-9_-]+$')
PIPELINE_NAME_RE = re.compile(r'^[a-z][a-z0-9-]{2,29}$')
IMAGE_RE = re.compile(r'^sha256:[0-9a-f]{64}$')
VAR_RE = re.compile(r'^\w+$')
STAGES = ['test', 'review', 'development', 'staging', 'production']
BOOT = '2024-01-01T00:00:00Z'
LOG_SESSION_TTL_S = 300


def fixed_id(kind, name):
    return str(uuid.uuid5(NS, kind + ':' + name))


def new_id():
    return str(uuid.uuid4())


def now_iso():
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())


def log_time():
    t = time.time()
    return time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(t)) + \
        '.%06d+00:00' % int((t % 1) * 1e6)


def ref(obj):
    return {'id': obj.id, 'name': obj.name}


class ApiError(Exception):
    def __init__(self, status, ident, message, resource=None, headers=None):
        super().__init__(message)
        self.status = status
        self.body = {'id': ident, 'message': message}
        if resource:
            self.body['resource'] = resource
        self.headers = headers or {}


def invalid(message):
    return ApiError(422, 'invalid_params', message)


def not_found(resource, message=None):
    what = resource.replace('_', ' ')
    return ApiError(404, 'not_found', message or "Couldn't find that %s." % what, resource)


def forbidden_team(team):
    return ApiError(403, 'forbidden', 'You do not have access to the team %s.' % team)


def forbidden_app(name):
    return ApiError(403, 'forbidden', 'You do not have access to the app %s.' % name)


class Page:
    """A list answer: the HTTP layer sorts and pages it by `fields`."""

    def __init__(self, items, fields):
        self.items = items
        self.fields = fields


# ---------------------------------------------------------------- catalog

REGIONS = [
    # name, country, description, locale, private, provider region
    ('us', 'United States', 'United States', 'Virginia', False, 'us-east-1'),
    ('eu', 'Ireland', 'Europe', 'Dublin', False, 'eu-west-1'),
    ('virginia', 'United States', 'Virginia, United States', 'Virginia', True, 'us-east-1'),
    ('oregon', 'United States', 'Oregon, United States', 'Oregon', True, 'us-west-2'),
    ('frankfurt', 'Germany', 'Frankfurt, Germany', 'Frankfurt', True, 'eu-central-1'),
    ('tokyo', 'Japan', 'Tokyo, Japan', 'Tokyo', True, 'ap-northeast-1'),
    ('sydney', 'Australia', 'Sydney, Australia', 'Sydney', True, 'ap-southeast-2'),
    ('dublin', 'Ireland', 'Dublin, Ireland', 'Dublin', True, 'eu-west-1'),
]

STACKS = [('heroku-20', 'deprecated'), ('heroku-22', 'public'),
          ('heroku-24', 'public'), ('container', 'public')]
DEFAULT_STACK = 'heroku-24'

# name, compute, memory GB, cents a month, dyno units, dedicated, private only
SIZES = [
    ('Eco', 1, 0.5, 0, 0.0, False, False),
    ('Basic', 1, 0.5, 700, 0.28, False, False),
    ('Standard-1X', 1, 0.5, 2500, 1.0, False, False),
    ('Standard-2X', 4, 1.0, 5000, 2.0, False, False),
    ('Performance-M', 12, 2.5, 25000, 8.0, True, False),
    ('Performance-L', 50, 14.0, 50000, 16.0, True, False),
    ('Performance-L-RAM', 24, 30.0, 50000, 16.0, True, False),
    ('Performance-XL', 50, 62.0, 75000, 24.0, True, False),
    ('Performance-2XL', 100, 126.0, 150000, 48.0, True, False),
    ('Private-S', 2, 1.0, 22500, 2.0, True, True),
    ('Private-M', 12, 2.5, 45000, 8.0, True, True),
    ('Private-L', 50, 14.0, 90000, 16.0, True, True),
    ('Shield-S', 2, 1.0, 27000, 2.0, True, True),
    ('Shield-M', 12, 2.5, 54000, 8.0, True, True),
    ('Shield-L', 50, 14.0, 108000, 16.0, True, True),
]
SIZE_ALIASES = {'1x': 'Standard-1X', '2x': 'Standard-2X', 'px': 'Performance-L',
                'hobby': 'Basic', 'free': 'Eco'}
SIZE_BY_KEY = {s[0].lower(): s for s in SIZES}
SIZE_BY_ID = {fixed_id('dyno-size', s[0]): s for s in SIZES}
SIZE_HINT = ('eco, basic, standard-1X, standard-2X, performance-M, '
             'performance-L, performance-L-RAM, performance-XL, performance-2XL')
DEFAULT_SIZE = 'Basic'


def canonical_size(value):
    """The canonical name of a size given by name (any case) or id."""
    if isinstance(value, dict):
        value = value.get('name') or value.get('id')
    if not isinstance(value, str):
        raise invalid('No such size as %s. Use %s.' % (value, SIZE_HINT))
    key = value.lower()
    if key in SIZE_ALIASES:
        return SIZE_ALIASES[key]
    if key in SIZE_BY_KEY:
        return SIZE_BY_KEY[key][0]
    if key in SIZE_BY_ID:
        return SIZE_BY_ID[key][0]
    raise invalid('No such size as %s. Use %s.' % (value, SIZE_HINT))


def _numbered(prefix, numbers):
    return ['%s-%d' % (prefix, n) for n in numbers]


# service -> (attachment name, short name, [(tier, [plans])], url template)
SERVICES = {
    'heroku-postgresql': ('DATABASE', 'postgresql', [
        ('essential', _numbered('essential', [0, 1, 2])),
        ('standard', _numbered('standard', [0, 2, 3, 4, 5, 6, 7, 8, 9, 10])),
        ('premium', _numbered('premium', [0, 2, 3, 4, 5, 6, 7, 8, 9, 10])),
        ('private', _numbered('private', [0, 2, 3, 4, 5, 6, 7, 8, 9, 10])),
        ('shield', _numbered('shield', [0, 2, 3, 4, 5, 6, 7, 8, 9, 10])),
    ], 'postgres://u{a}:p{b}@ec2-1-2-3-4.compute-1.amazonaws.com:5432/d{c}'),
    'heroku-redis': ('REDIS', 'redis', [
        ('redis', ['mini'] + _numbered('premium', range(0, 15))),
    ], 'rediss://:p{b}@ec2-1-2-3-4.compute-1.amazonaws.com:6379'),
    'papertrail': ('PAPERTRAIL', 'papertrail', [
        ('papertrail', ['choklad', 'fixa', 'volmar', 'ludvig']),
    ], 'https://papertrailapp.com/api/v1/{a}'),
    'scheduler': ('SCHEDULER', 'scheduler', [
        ('scheduler', ['standard']),
    ], 'https://scheduler.example/{a}'),
}
PLANS = {}  # 'service:plan' -> (service, plan, tier, cents)
for _svc, (_att, _short, _tiers, _url) in SERVICES.items():
    for _tier, _plans in _tiers:
        for _i, _p in enumerate(_plans):
            PLANS[_svc + ':' + _p] = (_svc, _p, _tier, 500 * _i if _i else 0)
PLAN_BY_ID = {fixed_id('plan', k): k for k in PLANS}
WORDS = ['curved', 'sleepy', 'shallow', 'rugged', 'silent', 'fluffy', 'angular',
         'clear', 'deep', 'polished', 'cubic', 'tetrahedral', 'aerodynamic']
NOUNS = ['river', 'meadow', 'harbor', 'falls', 'peak', 'forest', 'dawn', 'wave']


def resolve_plan(value):
    """'service:plan', 'service' or a plan id -> 'service:plan'."""
    if isinstance(value, dict):
        value = value.get('name') or value.get('id')
    if isinstance(value, str):
        if value in PLAN_BY_ID:
            return PLAN_BY_ID[value]
        if value in SERVICES:
            return value + ':' + SERVICES[value][2][0][1][0]
        if value in PLANS:
            return value
    raise invalid("Couldn't find either the add-on service or the add-on plan of \"%s\"." % value)


# ---------------------------------------------------------------- scheduler

class Scheduler:
    """One thread running callbacks at their due time, under the lock."""

    def __init__(self, cond):
        self.cond = cond
        self.heap = []
        self.seq = 0
        self.stopped = False
        self.wake = threading.Condition(threading.Lock())
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def after(self, ms, fn):
        with self.wake:
            self.seq += 1
            heapq.heappush(self.heap, (time.monotonic() + ms / 1000.0, self.seq, fn))
            self.wake.notify()

    def clear(self):
        with self.wake:
            self.heap = []

    def stop(self):
        with self.wake:
            self.stopped = True
            self.wake.notify()

    def _run(self):
        while True:
            with self.wake:
                while not self.stopped and (not self.heap or self.heap[0][0] > time.monotonic()):
                    timeout = self.heap[0][0] - time.monotonic() if self.heap else None
                    self.wake.wait(timeout)
                if self.stopped:
                    return
                _, _, fn = heapq.heappop(self.heap)
            with self.cond:
                fn()
                self.cond.notify_all()


# ---------------------------------------------------------------- resources

class Account:
    def __init__(self, key, email, role, teams):
        self.key = key
        self.email = email
        self.id = fixed_id('account', email)
        self.role = role          # role in `teams`; admin keys: None
        self.teams = teams        # None: admin of every team
        self.tokens = 0.0       # the rate bucket; the server fills it
        self.stamp = time.monotonic()

    def role_in(self, team):
        if self.teams is None:
            return 'admin'
        return self.role if team.name in self.teams else None

    def json(self):
        return {
            'allow_tracking': True, 'beta': False, 'created_at': BOOT,
            'email': self.email, 'federated': False, 'id': self.id,
            'identity_provider': None, 'last_login': BOOT,
            'name': self.email.split('@')[0], 'sms_number': None,
            'suspended_at': None, 'delinquent_at': None,
            'two_factor_authentication': False, 'updated_at': BOOT,
            'verified': True, 'country_of_residence': None,
            'default_organization': None, 'default_team': None,
        }


class Team:
    def __init__(self, name):
        self.name = name
        self.id = fixed_id('team', name)

    def json(self, role):
        return {
            'id': self.id, 'created_at': BOOT, 'credit_card_collections': False,
            'default': False, 'enterprise_account': None, 'identity_provider': None,
            'membership_limit': 25, 'name': self.name, 'provisioned_licenses': False,
            'role': role, 'type': 'team', 'updated_at': BOOT,
        }


class Release:
    def __init__(self, app, version, description, user, images, config):
        self.id = new_id()
        self.app = app
        self.version = version
        self.description = description
        self.user = user
        self.images = images        # image ids deployed by this release
        self.config = config        # the vars as of this release
        self.status = 'pending'
        self.current = False
        self.output = []
        self.created_at = self.updated_at = now_iso()
        self.addon_plans = sorted(a.plan for a in app.addons.values())

    def json(self, base):
        return {
            'addon_plan_names': self.addon_plans,
            'artifacts': [{'type': 'oci-image', 'id': fixed_id('oci-image', i)} for i in self.images],
            'app': {'name': self.app.name, 'id': self.app.id},
            'created_at': self.created_at, 'description': self.description,
            'id': self.id, 'updated_at': self.updated_at, 'slug': None,
            'status': self.status, 'user': {'id': self.user.id, 'email': self.user.email},
            'version': self.version, 'current': self.current,
            'output_stream_url': '%s/release-output/%s' % (base, self.id),
            'eligible_for_rollback': True,
        }


class Formation:
    def __init__(self, app, ptype, command):
        self.id = new_id()
        self.app = app
        self.type = ptype
        self.command = command
        self.quantity = 1 if ptype == 'web' else 0
        self.size = DEFAULT_SIZE
        self.image = None
        self.created_at = self.updated_at = now_iso()

    def json(self):
        return {
            'app': {'name': self.app.name, 'id': self.app.id},
            'command': self.command, 'created_at': self.created_at,
            'dyno_size': {'id': fixed_id('dyno-size', self.size), 'name': self.size},
            'id': self.id, 'quantity': self.quantity, 'size': self.size,
            'type': self.type, 'updated_at': self.updated_at,
        }


class Dyno:
    def __init__(self, app, name, command, size, attach, release):
        self.id = new_id()
        self.app = app
        self.name = name
        self.command = command
        self.size = size
        self.attach = attach
        self.release = release
        self.state = 'starting'
        self.ended = False
        self.created_at = self.updated_at = now_iso()

    def json(self):
        return {
            'attach_url': ('rendezvous://rendezvous.runtime.heroku.com:5000/' + self.id)
            if self.attach else None,
            'command': self.command, 'created_at': self.created_at, 'id': self.id,
            'name': self.name,
            'release': {'id': self.release.id, 'version': self.release.version},
            'app': {'name': self.app.name, 'id': self.app.id},
            'size': self.size, 'state': self.state, 'type': 'run',
            'updated_at': self.updated_at,
        }


class Addon:
    def __init__(self, app, name, plan, attachment, config):
        self.id = new_id()
        self.app = app
        self.name = name
        self.plan = plan
        self.attachment_name = attachment
        self.attachment_id = new_id()
        self.config = config
        self.state = 'provisioning'
        self.provider_id = 'resource' + uuid.uuid4().hex[:12]
        self.created_at = self.updated_at = now_iso()

    @property
    def service(self):
        return PLANS[self.plan][0]

    @property
    def var(self):
        return self.attachment_name + '_URL'

    def json(self):
        svc, _, _, cents = PLANS[self.plan]
        return {
            'actions': [],
            'addon_service': {'id': fixed_id('addon-service', svc), 'name': svc},
            'billing_entity': {'id': self.app.id, 'name': self.app.name, 'type': 'app'},
            'app': {'id': self.app.id, 'name': self.app.name},
            'billed_price': {'cents': cents, 'contract': False, 'unit': 'month'},
            'config_vars': [self.var], 'created_at': self.created_at,
            'id': self.id, 'name': self.name,
            'plan': {'id': fixed_id('plan', self.plan), 'name': self.plan},
            'provider_id': self.provider_id, 'state': self.state,
            'updated_at': self.updated_at,
            'web_url': 'https://addons-sso.heroku.com/apps/%s/addons/%s' % (self.app.id, self.id),
        }

    def attachment_json(self):
        return {
            'addon': {'id': self.id, 'name': self.name,
                      'app': {'id': self.app.id, 'name': self.app.name}},
            'app': {'id': self.app.id, 'name': self.app.name},
            'created_at': self.created_at, 'id': self.attachment_id,
            'name': self.attachment_name, 'namespace': None,
            'updated_at': self.updated_at,
            'web_url': 'https://addons-sso.heroku.com/apps/%s/addons/%s' % (self.app.id, self.id),
            'log_input_url': None,
        }


class Pipeline:
    def __init__(self, name, owner):
        self.id = new_id()
        self.name = name
        self.owner = owner
        self.created_at = self.updated_at = now_iso()

    def json(self):
        return {
            'created_at': self.created_at, 'id': self.id, 'name': self.name,
            'owner': self.owner, 'updated_at': self.updated_at,
            'generation': {'id': fixed_id('generation', 'cedar'), 'name': 'cedar'},
        }


class Coupling:
    def __init__(self, app, pipeline, stage):
        self.id = new_id()
        self.app = app
        self.pipeline = pipeline
        self.stage = stage
        self.created_at = self.updated_at = now_iso()

    def json(self):
        return {
            'app': {'id': self.app.id}, 'created_at': self.created_at, 'id': self.id,
            'pipeline': {'id': self.pipeline.id}, 'stage': self.stage,
            'updated_at': self.updated_at,
        }


class App:
    def __init__(self, name, owner, team, region, stack):
        self.id = new_id()
        self.name = name
        self.owner = owner
        self.team = team
        self.region = region
        self.stack = stack
        self.build_stack = stack
        self.maintenance = False
        self.locked = False
        self.web_host = '%s-%s' % (name, uuid.uuid4().hex[:12])
        self.config = {}
        self.releases = []
        self.formation = {}
        self.dynos = {}
        self.addons = {}
        self.logs = []          # (time, source, dyno, text)
        self.logs_from = 0      # those before it expired (/fake/logs/expire)
        self.deleted = False
        self.released_at = None
        self.created_at = self.updated_at = now_iso()

    def json(self):
        team = ref(self.team) if self.team else None
        return {
            'acm': False, 'archived_at': None, 'buildpack_provided_description': None,
            'build_stack': {'id': fixed_id('stack', self.build_stack), 'name': self.build_stack},
            'created_at': self.created_at,
            'generation': {'id': fixed_id('generation', 'cedar'), 'name': 'cedar'},
            'git_url': 'https://git.heroku.com/%s.git' % self.name,
            'id': self.id, 'internal_routing': None, 'maintenance': self.maintenance,
            'name': self.name, 'owner': {'email': self.owner.email, 'id': self.owner.id},
            'organization': team, 'team': team,
            'region': {'id': fixed_id('region', self.region), 'name': self.region},
            'released_at': self.released_at, 'repo_size': None, 'slug_size': None,
            'space': None,
            'stack': {'id': fixed_id('stack', self.stack), 'name': self.stack},
            'updated_at': self.updated_at,
            'web_url': 'https://%s.herokuapp.com/' % self.web_host,
        }

    def team_json(self):
        j = self.json()
        for k in ('acm', 'generation', 'organization'):
            del j[k]
        j['joined'] = False
        j['locked'] = self.locked
        return j

    def current_release(self):
        for r in reversed(self.releases):
            if r.current:
                return r
        return self.releases[-1] if self.releases else None

    def log(self, source, dyno, text):
        self.logs.append((log_time(), source, dyno, text))


def region_json(r):
    name, country, desc, locale, private, prov = r
    return {'country': country, 'created_at': BOOT, 'description': desc,
            'id': fixed_id('region', name), 'locale': locale, 'name': name,
            'private_capable': private,
            'provider': {'name': 'amazon-web-services', 'region': prov},
            'updated_at': BOOT}


def stack_json(s):
    name, state = s
    return {'default': name == DEFAULT_STACK, 'created_at': BOOT,
            'id': fixed_id('stack', name), 'name': name, 'state': state,
            'updated_at': BOOT}


def size_json(s):
    name, compute, memory, cents, units, dedicated, private = s
    return {'architecture': 'amd64', 'compute': compute,
            'cost': {'cents': cents, 'unit': 'month'}, 'dedicated': dedicated,
            'precise_dyno_units': units,
            'generation': {'id': fixed_id('generation', 'cedar'), 'name': 'cedar'},
            'id': fixed_id('dyno-size', name), 'memory': memory, 'name': name,
            'private_space_only': private}


def find(items, ident, resource):
    """The item of `items` whose id or name is `ident`."""
    for it in items:
        if it['id'] == ident or it['name'] == ident:
            return it
    raise not_found(resource)


def body_str(body, key, required=False):
    v = body.get(key)
    if v is None:
        if required:
            raise invalid('%s is required.' % key.capitalize())
        return None
    if not isinstance(v, str):
        raise invalid('%s must be a string.' % key.capitalize())
    return v


# ---------------------------------------------------------------- the store

class Store:
    def __init__(self, settings, accounts, teams):
        self.cond = threading.Condition()
        self.settings = settings
        self.accounts = accounts
        self.owner = accounts[0]
        self.teams = {t: Team(t) for t in teams}
        self.sched = Scheduler(self.cond)
        self.base = ''
        self.reset()

    def reset(self):
        self.sched.clear()
        for a in getattr(self, 'apps', {}).values():
            a.deleted = True
        self.apps = {}          # name -> App
        self.app_ids = {}       # id -> App
        self.addons = {}        # id -> Addon
        self.pipelines = {}     # id -> Pipeline
        self.couplings = {}     # id -> Coupling
        self.foreign = set()
        self.sessions = {}      # id -> dict
        self.dyno_scripts = []
        self.release_scripts = []

    # ------------------------------------------------ lookups and access

    def team(self, ident):
        for t in self.teams.values():
            if t.id == ident or t.name == ident:
                return t
        raise not_found('team')

    def team_role(self, acct, team, write=False):
        role = acct.role_in(team)
        if role is None or (write and role == 'collaborator'):
            raise forbidden_team(team.name)
        return role

    def can_see(self, acct, app):
        if app.team:
            return acct.role_in(app.team) is not None
        return app.owner is acct

    def app(self, acct, ident, write=False, delete=False):
        a = self.app_ids.get(ident) or self.apps.get(ident)
        if a is None:
            if ident in self.foreign:
                raise forbidden_app(ident)
            raise not_found('app')
        if a.team:
            role = self.team_role(acct, a.team, write or delete)
            if delete and role == 'member':
                raise forbidden_team(a.team.name)
        elif a.owner is not acct:
            raise forbidden_app(a.name)
        return a

    def visible_apps(self, acct):
        return [a for a in self.apps.values() if self.can_see(acct, a)]

    def addon(self, acct, ident, app=None):
        for ad in self.addons.values():
            if (ad.id == ident or ad.name == ident) and (app is None or ad.app is app):
                if app is None:
                    self.app(acct, ad.app.id)
                return ad
        raise not_found('add_on', "Couldn't find that add on.")

    def pipeline(self, ident):
        p = self.pipelines.get(ident)
        if p is None:
            for q in self.pipelines.values():
                if q.name == ident:
                    return q
            raise not_found('pipeline')
        return p

    def coupling(self, acct, ident):
        c = self.couplings.get(ident)
        if c is None or not self.can_see(acct, c.app):
            raise not_found('pipeline_coupling', "Couldn't find that pipeline coupling.")
        return c

    # ------------------------------------------------ account, catalog

    def teams_json(self, acct):
        return Page([t.json(acct.role_in(t)) for t in self.teams.values()
                     if acct.role_in(t)], ['id', 'name'])

    def team_json(self, acct, ident):
        t = self.team(ident)
        return t.json(self.team_role(acct, t))

    def team_apps(self, acct, ident):
        t = self.team(ident)
        self.team_role(acct, t)
        return Page([a.team_json() for a in self.apps.values() if a.team is t],
                    ['id', 'name', 'updated_at'])

    # ------------------------------------------------ apps

    def check_name(self, name):
        if not isinstance(name, str):
            raise invalid('Name must be a string.')
        if len(name) > 30:
            raise invalid('Name must be 30 characters or less.')
        if not APP_NAME_RE.match(name):
            raise invalid('Name must start with a letter, end with a letter or digit '
                          'and can only contain lowercase letters, digits, and dashes.')
        if name in self.apps or name in self.foreign:
            raise invalid('Name %s is already taken' % name)

    def generated_name(self):
        while True:
            n = '%s-%s-%05d' % (random.choice(WORDS), random.choice(NOUNS),
                                random.randrange(100000))
            if n not in self.apps and n not in self.foreign:
                return n

    def create_app(self, acct, body, team=None):
        name = body.get('name')
        if name is None:
            name = self.generated_name()
        else:
            self.check_name(name)
        region = body.get('region') or 'us'
        if isinstance(region, dict):
            region = region.get('name') or region.get('id')
        reg = [r for r in REGIONS if r[0] == region or fixed_id('region', r[0]) == region]
        if not reg:
            raise invalid("Couldn't find that region.")
        if reg[0][4]:
            raise invalid('Region %s can only be used with a Private Space.' % reg[0][0])
        stack = body.get('stack') or DEFAULT_STACK
        st = [s for s in STACKS if s[0] == stack or fixed_id('stack', s[0]) == stack]
        if not st:
            raise invalid("Couldn't find that stack.")
        a = App(name, acct, team, reg[0][0], st[0][0])
        if body.get('locked') is True:
            a.locked = True
        self.apps[name] = a
        self.app_ids[a.id] = a
        self.release(a, acct, 'Initial release')
        self.release(a, acct, 'Enable Logplex')
        return a

    def create_team_app(self, acct, body):
        if body.get('personal') is True or body.get('team') is None:
            return self.create_app(acct, body).team_json()
        t = self.team(body.get('team'))
        self.team_role(acct, t, write=True)
        return self.create_app(acct, body, t).team_json()

    def update_app(self, acct, ident, body):
        a = self.app(acct, ident, write=True)
        name = body.get('name')
        if name is not None and name != a.name:
            self.check_name(name)
            del self.apps[a.name]
            a.name = name
            self.apps[name] = a
        if 'maintenance' in body:
            if not isinstance(body['maintenance'], bool):
                raise invalid('Maintenance must be true or false.')
            a.maintenance = body['maintenance']
        if body.get('build_stack') is not None:
            st = [s for s in STACKS if body['build_stack'] in (s[0], fixed_id('stack', s[0]))]
            if not st:
                raise invalid("Couldn't find that stack.")
            a.build_stack = st[0][0]
        a.updated_at = now_iso()
        return a.json()

    def delete_app(self, acct, ident):
        a = self.app(acct, ident, delete=True)
        j = a.json()
        self.drop_app(a)
        return j

    def drop_app(self, a):
        a.deleted = True
        del self.apps[a.name]
        del self.app_ids[a.id]
        for ad in list(a.addons.values()):
            del self.addons[ad.id]
        for c in list(self.couplings.values()):
            if c.app is a:
                del self.couplings[c.id]
        for d in a.dynos.values():
            d.ended = True

    # ------------------------------------------------ config vars, releases

    def set_config(self, acct, a, changes):
        if not isinstance(changes, dict):
            raise ApiError(400, 'bad_request', 'Invalid JSON in request body.')
        for k, v in changes.items():
            if not VAR_RE.match(k):
                raise invalid('Config var names may only contain letters, digits and underscores.')
            if v is not None and not isinstance(v, str):
                raise invalid('Config var %s must be a string or null.' % k)
        setk = [k for k, v in changes.items() if v is not None and a.config.get(k) != v]
        unset = [k for k, v in changes.items() if v is None and k in a.config]
        for k in setk:
            a.config[k] = changes[k]
        for k in unset:
            del a.config[k]
        parts = []
        if setk:
            parts.append('Set %s config vars' % ', '.join(setk))
        if unset:
            parts.append('%s %s config vars' % ('remove' if setk else 'Remove', ', '.join(unset)))
        if parts:
            self.release(a, acct, ' and '.join(parts))
        return dict(a.config)

    def release(self, a, user, description, images=()):
        r = Release(a, len(a.releases) + 1, description, user, list(images), dict(a.config))
        a.releases.append(r)
        a.updated_at = r.created_at
        a.log('app', 'api', 'Release v%d created by user %s' % (r.version, user.email))
        status, delay = 'succeeded', self.settings['release_delay_ms']
        for s in self.release_scripts:
            if s.get('count', 1) <= 0:
                continue
            if s.get('app') not in (None, a.name, a.id):
                continue
            if s.get('docker_image') is not None and s['docker_image'] not in r.images:
                continue
            if 'count' in s:
                s['count'] -= 1
            status = s.get('status', 'succeeded')
            delay = s.get('duration_ms', delay)
            r.output = [str(x) for x in s.get('output', [])]
            break
        if delay <= 0:
            self.finish_release(r, status)
        else:
            self.sched.after(delay, lambda: self.finish_release(r, status))
        return r

    def finish_release(self, r, status):
        if r.app.deleted or r.status != 'pending':
            return
        r.status = status
        r.updated_at = now_iso()
        if status == 'succeeded':
            for o in r.app.releases:
                o.current = False
            r.current = True
            r.app.released_at = r.updated_at

    def find_release(self, a, ident):
        for r in a.releases:
            if r.id == ident or str(r.version) == ident:
                return r
        raise not_found('release')

    # ------------------------------------------------ formation

    def formation(self, a, ident):
        for f in a.formation.values():
            if f.id == ident or f.type == ident:
                return f
        raise not_found('formation', "Couldn't find that process type (%s)." % ident)

    def check_update(self, a, u, declare=False):
        if not isinstance(u, dict):
            raise invalid('Each update must be an object.')
        q = u.get('quantity')
        if q is not None and (isinstance(q, bool) or not isinstance(q, int) or not 0 <= q <= 100):
            raise invalid('Quantity must be between 0 and 100.')
        size = u.get('dyno_size', u.get('size'))
        size = canonical_size(size) if size is not None else None
        image = u.get('docker_image')
        if image is not None and (not isinstance(image, str) or not IMAGE_RE.match(image)):
            raise invalid('Invalid docker image %s' % image)
        ptype = u.get('type')
        if not declare and image is None:
            self.formation(a, ptype)
        elif not isinstance(ptype, str) or not re.match(r'^[-\w]{1,128}$', ptype):
            raise invalid('Type must match ^[-\\w]{1,128}$.')
        return ptype, q, size, image

    def apply_update(self, a, ptype, q, size, image):
        f = a.formation.get(ptype)
        if f is None:
            f = a.formation[ptype] = Formation(a, ptype, '')
        if q is not None:
            f.quantity = q
        if size is not None:
            f.size = size
        if image is not None:
            f.image = image
        f.updated_at = now_iso()
        return f

    def batch_formation(self, acct, ident, body):
        a = self.app(acct, ident, write=True)
        ups = body.get('updates')
        if not isinstance(ups, list):
            raise invalid('Updates must be an array.')
        checked = [self.check_update(a, u, declare=u.get('docker_image') is not None
                                     if isinstance(u, dict) else False) for u in ups]
        done = [self.apply_update(a, *c) for c in checked]
        images = [(c[0], c[3]) for c in checked if c[3] is not None]
        if images:
            desc = 'Deployed ' + ', '.join('%s (%s)' % (t, i[7:19]) for t, i in images)
            self.release(a, acct, desc, [i for _, i in images])
            return [f.json() for f in sorted(a.formation.values(), key=lambda f: f.type)]
        return [f.json() for f in done]

    def update_formation(self, acct, ident, ptype, body):
        a = self.app(acct, ident, write=True)
        f = self.formation(a, ptype)
        u = dict(body, type=f.type)
        u.pop('docker_image', None)
        return self.apply_update(a, *self.check_update(a, u)).json()

    # ------------------------------------------------ add-ons

    def check_addon_name(self, name):
        if not isinstance(name, str) or not ADDON_NAME_RE.match(name):
            raise invalid('Name must start with a letter and can only contain '
                          'letters, digits, underscores and dashes.')
        if any(x.name == name for x in self.addons.values()):
            raise invalid('Name is already taken')

    def create_addon(self, acct, ident, body):
        a = self.app(acct, ident, write=True)
        plan = resolve_plan(body.get('plan'))
        svc = PLANS[plan][0]
        att = body.get('attachment') or {}
        att_name = att.get('name') if isinstance(att, dict) else None
        att_name = att_name or SERVICES[svc][0]
        if not isinstance(att_name, str) or not VAR_RE.match(att_name):
            raise invalid('Attachment name must contain only letters, digits and underscores.')
        att_name = att_name.upper()
        if any(x.attachment_name == att_name for x in a.addons.values()):
            raise invalid('Attachment name %s is already in use on app %s.' % (att_name, a.name))
        name = body.get('name')
        if name is not None:
            self.check_addon_name(name)
        else:
            while True:
                name = '%s-%s-%05d' % (SERVICES[svc][1], random.choice(WORDS),
                                       random.randrange(100000))
                if all(x.name != name for x in self.addons.values()):
                    break
        config = body.get('config') or {}
        ad = Addon(a, name, plan, att_name, config)
        self.addons[ad.id] = ad
        a.addons[ad.id] = ad
        self.sched.after(self.settings['addon_delay_ms'], lambda: self.provisioned(ad))
        return ad.json()

    def provisioned(self, ad):
        if ad.id not in self.addons or ad.state != 'provisioning':
            return
        ad.state = 'provisioned'
        ad.updated_at = now_iso()
        h = uuid.uuid4().hex
        ad.app.config[ad.var] = SERVICES[ad.service][3].format(a=h[:8], b=h[8:24], c=h[24:])
        self.release(ad.app, self.owner if ad.app.owner is None else ad.app.owner,
                     'Attach %s (@ref:%s)' % (ad.attachment_name, ad.name))

    def update_addon(self, acct, ident, aid, body):
        a = self.app(acct, ident, write=True)
        ad = self.addon(acct, aid, a)
        plan = resolve_plan(body.get('plan'))
        old = PLANS[ad.plan]
        new = PLANS[plan]
        if old[0] != new[0]:
            raise invalid('Cannot change plan to another add-on service.')
        if old[2] != new[2]:
            raise invalid('Cannot change plan of %s from %s to %s: changing between the %s '
                          'and %s tiers is not supported. Provision a new add-on and copy '
                          'the data.' % (ad.name, ad.plan, plan, old[2], new[2]))
        name = body.get('name')
        if name is not None and name != ad.name:
            self.check_addon_name(name)
            ad.name = name
        ad.plan = plan
        ad.updated_at = now_iso()
        return ad.json()

    def delete_addon(self, acct, ident, aid):
        a = self.app(acct, ident, write=True)
        ad = self.addon(acct, aid, a)
        del self.addons[ad.id]
        del a.addons[ad.id]
        was = ad.state
        ad.state = 'deprovisioned'
        ad.updated_at = now_iso()
        if was == 'provisioned' and ad.var in a.config:
            del a.config[ad.var]
            self.release(a, acct, 'Detach %s (@ref:%s)' % (ad.attachment_name, ad.name))
        return ad.json()

    def attachments(self, acct, app=None, addon=None):
        out = []
        for ad in self.addons.values():
            if (app is None or ad.app is app) and (addon is None or ad is addon) \
                    and self.can_see(acct, ad.app):
                out.append(ad.attachment_json())
        return out

    # ------------------------------------------------ pipelines

    def check_pipeline_name(self, name):
        if not isinstance(name, str) or not PIPELINE_NAME_RE.match(name):
            raise invalid('Name must start with a letter and can only contain lowercase '
                          'letters, digits, and dashes, and be 3 to 30 characters long.')
        if any(p.name == name for p in self.pipelines.values()):
            raise invalid('Name has already been taken')

    def create_pipeline(self, acct, body):
        name = body.get('name')
        self.check_pipeline_name(name)
        owner = body.get('owner') or {'id': acct.id, 'type': 'user'}
        if not isinstance(owner, dict) or owner.get('type') not in ('user', 'team') \
                or not isinstance(owner.get('id'), str):
            raise invalid('Owner must have an id and a type of user or team.')
        p = Pipeline(name, {'id': owner['id'], 'type': owner['type']})
        self.pipelines[p.id] = p
        return p.json()

    def update_pipeline(self, ident, body):
        p = self.pipeline(ident)
        name = body.get('name')
        if name is not None and name != p.name:
            self.check_pipeline_name(name)
            p.name = name
            p.updated_at = now_iso()
        return p.json()

    def delete_pipeline(self, ident):
        p = self.pipeline(ident)
        del self.pipelines[p.id]
        for c in list(self.couplings.values()):
            if c.pipeline is p:
                del self.couplings[c.id]
        return p.json()

    def check_stage(self, stage):
        if stage not in STAGES:
            raise invalid('Stage must be one of: ' + ', '.join(STAGES))
        return stage

    def create_coupling(self, acct, body):
        a = self.app(acct, body_str(body, 'app', True), write=True)
        p = self.pipeline(body_str(body, 'pipeline', True))
        stage = self.check_stage(body.get('stage'))
        if any(c.app is a for c in self.couplings.values()):
            raise ApiError(409, 'conflict', 'App is already coupled to a pipeline.')
        c = Coupling(a, p, stage)
        self.couplings[c.id] = c
        return c.json()

    def update_coupling(self, acct, ident, body):
        c = self.coupling(acct, ident)
        self.app(acct, c.app.id, write=True)
        if 'stage' in body:
            c.stage = self.check_stage(body.get('stage'))
            c.updated_at = now_iso()
        return c.json()

    def delete_coupling(self, acct, ident):
        c = self.coupling(acct, ident)
        self.app(acct, c.app.id, write=True)
        del self.couplings[c.id]
        return c.json()

    def app_coupling(self, acct, ident):
        a = self.app(acct, ident)
        for c in self.couplings.values():
            if c.app is a:
                return c.json()
        raise not_found('pipeline_coupling', "Couldn't find that pipeline coupling.")

    # ------------------------------------------------ dynos

    def dyno(self, a, ident):
        for d in a.dynos.values():
            if d.id == ident or d.name == ident:
                return d
        raise not_found('dyno')

    def create_dyno(self, acct, ident, body):
        a = self.app(acct, ident, write=True)
        cmd = body.get('command')
        if not isinstance(cmd, str) or not cmd:
            raise invalid('Command is required.')
        size = canonical_size(body.get('size') or DEFAULT_SIZE)
        env = body.get('env') or {}
        if not isinstance(env, dict) or any(not isinstance(v, str) for v in env.values()):
            raise invalid('Env must be an object of strings.')
        ttl = body.get('time_to_live')
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0):
            raise invalid('Time to live must be a positive integer.')
        while True:
            name = 'run.%d' % random.randrange(1000, 10000)
            if name not in a.dynos:
                break
        d = Dyno(a, name, cmd, size, body.get('attach') is True, a.current_release())
        a.dynos[name] = d
        a.log('heroku', name, 'Starting process with command `%s`' % cmd)
        self.sched.after(self.settings['dyno_start_ms'], lambda: self.dyno_up(d, ttl))
        return d.json()

    def script_for(self, text):
        for s in self.dyno_scripts:
            if s.get('count', 1) > 0 and s['match'] in text:
                if 'count' in s:
                    s['count'] -= 1
                return ([str(x) for x in s.get('output', [])], int(s.get('exit', 0)),
                        int(s.get('duration_ms', 100)))
        return None

    def dyno_up(self, d, ttl):
        if d.ended:
            return
        d.state = 'up'
        d.updated_at = now_iso()
        d.app.log('heroku', d.name, 'State changed from starting to up')
        steps, status, end = shell.plan(d.command, self.script_for)
        for at, line in steps:
            self.sched.after(at, lambda line=line: d.ended or d.app.log('app', d.name, line))
        if ttl is not None and ttl * 1000 < end:
            self.sched.after(ttl * 1000, lambda: self.stop_dyno(d, ttl=True))
        else:
            self.sched.after(end, lambda: self.dyno_exit(d, status))

    def dyno_exit(self, d, status, state=None):
        if d.ended:
            return
        d.ended = True
        d.state = state or ('complete' if status == 0 else 'crashed')
        d.updated_at = now_iso()
        d.app.log('heroku', d.name, 'Process exited with status %d' % status)
        d.app.log('heroku', d.name, 'State changed from up to %s' % d.state)
        gone = self.settings['dyno_gone_ms']
        if gone >= 0:
            self.sched.after(gone, lambda: d.app.dynos.pop(d.name, None))

    def stop_dyno(self, d, ttl=False):
        if d.ended:
            return
        if ttl:
            d.app.log('heroku', d.name, 'Process running time exceeded its time to live')
        d.app.log('heroku', d.name, 'Stopping all processes with SIGTERM')
        self.dyno_exit(d, 143, 'down')

    # ------------------------------------------------ log sessions

    def create_log_session(self, acct, ident, body):
        a = self.app(acct, ident)
        dyno = body.get('dyno_name', body.get('dyno'))
        if dyno is not None and not isinstance(dyno, str):
            raise invalid('Dyno name must be a string.')
        source = body.get('source')
        if source not in (None, 'app', 'heroku'):
            raise invalid('Source must be app or heroku.')
        lines = body.get('lines', 100)
        if isinstance(lines, bool) or not isinstance(lines, int) or lines < 0:
            raise invalid('Lines must be a non-negative integer.')
        sid = new_id()
        now = now_iso()
        self.sessions[sid] = {'app': a, 'dyno': dyno, 'source': source,
                              'tail': body.get('tail') is True, 'lines': lines,
                              'expires': time.monotonic() + LOG_SESSION_TTL_S}
        return {'created_at': now, 'id': sid,
                'logplex_url': '%s/logs/%s' % (self.base, sid), 'updated_at': now}

    # ------------------------------------------------ the whole state

    def dump(self):
        apps = sorted(self.apps.values(), key=lambda a: a.name)
        return {
            'apps': [a.json() for a in apps],
            'config_vars': {a.name: dict(a.config) for a in apps},
            'formation': {a.name: [f.json() for f in sorted(a.formation.values(),
                                                            key=lambda f: f.type)]
                          for a in apps},
            'releases': {a.name: [r.json(self.base) for r in a.releases] for a in apps},
            'addons': [ad.json() for ad in self.addons.values()],
            'attachments': [ad.attachment_json() for ad in self.addons.values()],
            'pipelines': [p.json() for p in self.pipelines.values()],
            'pipeline_couplings': [c.json() for c in self.couplings.values()],
            'dynos': {a.name: [d.json() for d in a.dynos.values()] for a in apps},
            'foreign_apps': sorted(self.foreign),
            'teams': [t.json('admin') for t in self.teams.values()],
        }
