#!/usr/bin/python3
"""Writes schema/reconcile.schema.json.

The schema repeats its placeholder and path patterns in many places, so it is
generated: edit this file, run `/usr/bin/python3 tests/schema/gen_schema.py`
from the repository root, and check the result with check.py (fixtures,
--examples, --cases). docs/language-spec.md is the reference.
"""
import json
import os
import sys

# ---------------------------------------------------------------- regexes
VAR = r"[A-Za-z_][A-Za-z0-9_]*"
TARGET_SCALARS = ("driver|context|namespace|app|region|stack|team|pipeline|stage|"
                  "cluster|launch_type|assign_public_ip|execution_role_arn|"
                  "kubeconfig|wait_timeout|qps|burst")
# inside target and policy: no environment.branch, no target.* (they depend on them)
BASE_NAMES = r"project|environment\.name|item\." + VAR
BODY_NAMES = BASE_NAMES + r"|environment\.branch|target\.(?:" + TARGET_SCALARS + ")"
HOOK_NAMES = BODY_NAMES + r"|run\.(?:commit|short_commit|date|time|id)|env\." + VAR
ROLLBACK_HOOK_NAMES = HOOK_NAMES + r"|rolled_back\.(?:commit|short_commit|date|time|id)"
CONTEXT_NAMES = BASE_NAMES + r"|env\." + VAR


def ph(names):
    return r"\{\{[ \t]*(?:" + names + r")[ \t]*\}\}"


def wf(names):
    """Well-formed: every '{{' opens a known placeholder."""
    return r"^(?:[^{]|\{(?!\{)|" + ph(names) + r")*$"


HAS_PH = r"(?=[\s\S]*\{\{)"
DNS = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
DNS_TMPL = r"^" + HAS_PH + r"(?:[a-z0-9-]|" + ph(BODY_NAMES) + r")+$"
DNS_TMPL_BASE = r"^" + HAS_PH + r"(?:[a-z0-9-]|" + ph(BASE_NAMES) + r")+$"
VAR_RE = r"^" + VAR + r"$"
VAR_TMPL = r"^" + HAS_PH + r"(?:[A-Za-z0-9_]|" + ph(BODY_NAMES) + r")+$"
TMPL = r"^" + HAS_PH + r"(?:[^{]|\{(?!\{)|" + ph(BODY_NAMES) + r")*$"
TMPL_BASE = r"^" + HAS_PH + r"(?:[^{]|\{(?!\{)|" + ph(BASE_NAMES) + r")*$"
DURATION = r"^[0-9]+[smhd]$"
# millicores (1m..1000000m) or cores (a decimal number, at most 1000)
CPU_STR = r"^(?:(?!0+m$)[0-9]+m|(?=[0-9.]*[1-9])(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)$"
# a positive whole number and a unit
MEMORY = r"^(?!0+[KMGT])[0-9]+(?:Ki|Mi|Gi|Ti|K|M|G|T)$"
HEROKU_APP = r"^[a-z][a-z0-9-]{1,28}[a-z0-9]$"
HEROKU_APP_TMPL = DNS_TMPL_BASE
HEROKU_REGIONS = ["us", "eu", "virginia", "oregon", "frankfurt", "tokyo", "sydney", "dublin",
                  "montreal", "mumbai", "singapore"]
HEROKU_STACKS = ["heroku-20", "heroku-22", "heroku-24", "container"]
AWS_REGION = r"^[a-z]{2}(?:-[a-z]+)+-[0-9]+$"
KIND = DNS
# relative to the repository root: not absolute, no '..' component at all
REPO_PATH = r"^(?!/)(?!\\)(?![A-Za-z]:[\\/])(?!(?:[\s\S]*[\\/])?\.\.(?:[\\/]|$))[\s\S]+$"
# relative to the naming file (extends): not absolute ('..' may stay inside)
REL_PATH = r"^(?!/)(?!\\)(?![A-Za-z]:[\\/])[\s\S]+$"
GIT_URL = (r"^(?:(?:https?|git|ssh|file)://\S+"
           r"|[A-Za-z0-9._~-]+@[A-Za-z0-9.-]+:\S+"
           r"|(?!/)(?!(?:\S*/)?\.\.(?:/|$))(?![A-Za-z][A-Za-z0-9+.-]*://)[^\s@]+)$")

SCALAR = ["string", "number", "boolean"]
SCALAR_N = SCALAR + ["null"]
DRIVERS = ["local", "kubernetes", "heroku", "ecs"]
DRIVER_KEYS = {
    "local": [],
    "kubernetes": ["context", "namespace", "kubeconfig", "wait_timeout", "qps", "burst"],
    "heroku": ["app", "region", "stack", "team", "pipeline", "stage"],
    "ecs": ["region", "cluster", "launch_type", "subnets", "security_groups",
            "assign_public_ip", "execution_role_arn", "wait_timeout"],
}
DRIVER_REQUIRED = {"local": [], "kubernetes": ["namespace"], "heroku": ["app"],
                   "ecs": ["region", "cluster"]}
SIZES = ["eco", "basic", "standard-1x", "standard-2x", "performance-m",
         "performance-l", "performance-l-ram", "performance-xl", "performance-2xl"]


def ref(name, **kw):
    d = {"$ref": "#/$defs/" + name}
    d.update(kw)
    return d


def nonnull(name, desc, typ):
    """A reference that must not be null (list items, required keys)."""
    return ref(name, description=desc, type=typ)


def present(k):
    return {"required": [k], "properties": {k: {"not": {"type": "null"}}}}


def must_be_set(keys, msg):
    return {"required": list(keys),
            "properties": {k: {"not": {"type": "null"}, "errorMessage": msg.format(key=k)}
                           for k in keys}}


def absent(keys, msg):
    return {"properties": {k: {"type": "null", "errorMessage": msg.format(key=k)}
                           for k in keys}}


def or_template(strict_def, desc, title, tmpl=TMPL):
    return {"title": title, "description": desc,
            "anyOf": [ref(strict_def), {"type": "string", "pattern": tmpl,
                                        "title": title + " containing {{ placeholders }}"}]}


NULL_NOTE = " A null value deletes the key inherited from a base file."

defs = {}

# ---------------------------------------------------------------- scalars
defs["scalar"] = {
    "title": "scalar",
    "description": "Any YAML scalar, taken as a string (a plain 1.0 is the string \"1.0\").",
    "type": SCALAR_N,
}
defs["string"] = {
    "title": "string (placeholders allowed here: project, environment.name, environment.branch, item.FIELD, target.KEY)",
    "description": ("A string (any scalar is accepted and taken as its text). May contain "
                    "{{ project }}, {{ environment.name }}, {{ environment.branch }}, "
                    "{{ item.FIELD }} (generated environments only) and {{ target.KEY }}."
                    + NULL_NOTE),
    "type": SCALAR_N,
    "pattern": wf(BODY_NAMES),
}
defs["hookString"] = {
    "title": "hook string (placeholders allowed here: project, environment.name, environment.branch, item.FIELD, target.KEY, run.commit, run.short_commit, run.date, run.time, run.id, env.NAME)",
    "description": ("A string of a hook's run or env. Besides the body placeholders it may use "
                    "the deferred {{ run.commit }}, {{ run.short_commit }}, {{ run.date }}, "
                    "{{ run.time }}, {{ run.id }} and {{ env.NAME }} (NAME listed in allow_env)."),
    "type": SCALAR_N,
    "pattern": wf(HOOK_NAMES),
}
defs["rollbackHookString"] = {
    "title": "on_rollback hook string (placeholders allowed here: those of any hook, and rolled_back.id, rolled_back.commit, rolled_back.short_commit, rolled_back.date, rolled_back.time)",
    "description": ("A string of an on_rollback hook's run or env. Besides what any hook may use, "
                    "the deferred {{ rolled_back.id }}, {{ rolled_back.commit }}, "
                    "{{ rolled_back.short_commit }}, {{ rolled_back.date }} and "
                    "{{ rolled_back.time }}: the run the rollback undoes, with the values its "
                    "own hooks saw as {{ run.* }}."),
    "type": SCALAR_N,
    "pattern": wf(ROLLBACK_HOOK_NAMES),
}
defs["contextString"] = {
    "title": "target.context (placeholders allowed here: project, environment.name, item.FIELD, env.NAME)",
    "description": ("A string that may also use {{ env.NAME }} (NAME listed in allow_env), "
                    "resolved at load."),
    "type": SCALAR_N,
    "pattern": wf(CONTEXT_NAMES),
}
defs["baseString"] = {
    "title": "string (placeholders allowed in target and policy: project, environment.name, item.FIELD)",
    "description": ("A string of target or policy (any scalar is accepted and taken as its "
                    "text). May contain {{ project }}, {{ environment.name }} and "
                    "{{ item.FIELD }} (generated environments only)." + NULL_NOTE),
    "type": SCALAR_N,
    "pattern": wf(BASE_NAMES),
}
defs["basePlaceholderString"] = {
    "title": "string containing {{ placeholders }} (in target and policy: project, environment.name, item.FIELD)",
    "description": "A string of target or policy with at least one {{ placeholder }}.",
    "type": "string",
    "pattern": TMPL_BASE,
}
defs["placeholderString"] = {
    "title": "string containing {{ placeholders }}",
    "description": ("A string with at least one {{ placeholder }}: its final value is only "
                    "known after substitution, so only its syntax is checked here."),
    "type": "string",
    "pattern": TMPL,
}
defs["noItemPlaceholder"] = {
    "title": "no {{ item.* }} placeholder",
    "description": ("{{ item.* }} exists only in generated environments (entries with "
                    "for_each); this applies to every string inside the entry."),
    "pattern": r"^(?![\s\S]*\{\{[ \t]*item\.)",
    "errorMessage": "{{ item.* }} is only available in generated environments (for_each)",
    "items": ref("noItemPlaceholder"),
    "additionalProperties": ref("noItemPlaceholder"),
}
defs["freeForm"] = {
    "title": "free-form string (placeholders allowed here: project, environment.name, environment.branch, item.FIELD, target.KEY)",
    "description": ("Any YAML value, passed through to the driver. Strings may contain the body "
                    "{{ placeholders }}; null map values are removed."),
    "pattern": wf(BODY_NAMES),
    "items": ref("freeForm"),
    "additionalProperties": ref("freeForm"),
}
defs["freeFormObject"] = {
    "title": "free-form map",
    "description": "A map passed through to the driver and merged into the native object." + NULL_NOTE,
    "type": ["object", "null"],
    "additionalProperties": ref("freeForm"),
}
defs["dnsLabel"] = {
    "title": "DNS label",
    "description": ("A DNS label: lower-case letters, digits and '-', 1 to 63 characters, "
                    "starting and ending with a letter or digit."),
    "type": ["string", "integer", "boolean", "null"],
    "minimum": 0,
    "pattern": DNS,
}
defs["dnsLabelOrPlaceholder"] = or_template(
    "dnsLabel",
    "A DNS label (lower-case letters, digits, '-'; at most 63), possibly built from "
    "{{ placeholders }}.", "DNS label", DNS_TMPL)
defs["envName"] = ref("dnsLabel", title="environment name",
                      description="An environment name (a DNS label): a key of `environments` "
                                  "or a generated environment's name.")
defs["envNameOrPlaceholder"] = or_template(
    "envName", "An environment name or a generator key (DNS label), possibly built from "
    "{{ placeholders }}.", "environment name", DNS_TMPL)
defs["varName"] = {
    "title": "variable name",
    "description": "A variable name: ^[A-Za-z_][A-Za-z0-9_]*$.",
    "type": ["string", "boolean", "null"],
    "pattern": VAR_RE,
}
defs["varNameOrPlaceholder"] = or_template(
    "varName", "A variable name (^[A-Za-z_][A-Za-z0-9_]*$), possibly built from "
    "{{ placeholders }}.", "variable name", VAR_TMPL)
defs["duration"] = {
    "title": "duration (an integer and s, m, h or d: 90s, 5m, 72h)",
    "description": "A duration: an integer and a unit, s m h or d (90s, 5m, 72h, 7d).",
    "anyOf": [
        {"type": ["string", "null"], "pattern": DURATION, "title": "duration"},
        ref("placeholderString"),
    ],
}
defs["cpu"] = {
    "title": "CPU quantity (\"500m\", 0.5, \"0.5\", 2)",
    "description": ("CPU: millicores (\"500m\") or cores (0.5, \"0.5\", 2); normalised to "
                    "millicores. Exclusive with size."),
    "anyOf": [
        {"type": ["number", "null"], "minimum": 0.0005, "maximum": 1000},
        {"type": "string", "pattern": CPU_STR, "title": "CPU quantity"},
        ref("placeholderString"),
    ],
}
defs["memory"] = {
    "title": "memory quantity with a unit (512Mi, 1Gi, 1G)",
    "description": ("Memory with a unit: Ki Mi Gi Ti (powers of 1024) or K M G T (powers of "
                    "1000), e.g. 512Mi. A unit is required. Exclusive with size."),
    "anyOf": [
        {"type": ["string", "null"], "pattern": MEMORY, "title": "memory quantity"},
        ref("placeholderString"),
    ],
}
defs["repoPath"] = {
    "title": "path relative to the repository root",
    "description": ("A path relative to the root of the configuration repository, staying "
                    "inside it: absolute paths and '..' components are refused."),
    "type": SCALAR_N,
    "allOf": [{"pattern": REPO_PATH, "title": "path relative to the repository root (no '..', not absolute)"},
              {"pattern": wf(BODY_NAMES), "title": "string (placeholders allowed here: project, environment.name, environment.branch, item.FIELD, target.KEY)"}],
}
defs["entryFile"] = {
    "title": "environment file",
    "description": ("The environment's file, relative to the repository root. It is not "
                    "substituted: no placeholders."),
    "type": SCALAR_N,
    "allOf": [{"pattern": REPO_PATH, "title": "path relative to the repository root (no '..', not absolute)"},
              {"pattern": r"^(?![\s\S]*\{\{)", "title": "no placeholders ('file' is not substituted)"}],
}
defs["relPath"] = {
    "title": "relative path",
    "description": ("A path relative to the file that names it; it must stay inside the "
                    "repository (absolute paths are refused here, '..' escapes by the loader)."),
    "type": SCALAR_N,
    "allOf": [{"pattern": REL_PATH, "title": "relative path (not absolute)"},
              {"pattern": wf(BODY_NAMES), "title": "string (placeholders allowed here: project, environment.name, environment.branch, item.FIELD, target.KEY)"}],
}
ARGV_MSG = "must be a non-empty list of strings (argv, run without a shell; a single string is an error)"
defs["argv"] = {
    "title": "argv",
    "errorMessage": ARGV_MSG,
    "description": ("An argument vector: a list of strings, run without a shell. A single "
                    "string is an error." + NULL_NOTE),
    "type": ["array", "null"],
    "minItems": 1,
    "items": nonnull("string", "One argument.", SCALAR),
}
defs["args"] = {
    "title": "argv",
    "errorMessage": "must be a list of strings (argv; a single string is an error)",
    "description": "Arguments appended to the image's or the command's argv: a list of strings." + NULL_NOTE,
    "type": ["array", "null"],
    "items": nonnull("string", "One argument.", SCALAR),
}
defs["hookArgv"] = {
    "title": "hook argv",
    "errorMessage": ARGV_MSG,
    "description": ("The command to run: a list of strings, without a shell. May use "
                    "{{ run.* }} and {{ env.NAME }}."),
    "type": "array",
    "minItems": 1,
    "items": nonnull("hookString", "One argument.", SCALAR),
}
defs["rollbackHookArgv"] = {
    "title": "on_rollback hook argv",
    "errorMessage": ARGV_MSG,
    "description": ("The command to run: a list of strings, without a shell. May use "
                    "{{ run.* }} and {{ env.NAME }}."),
    "type": "array",
    "minItems": 1,
    "items": nonnull("rollbackHookString", "One argument.", SCALAR),
}
defs["scalarMap"] = {
    "title": "variables",
    "description": "Variables: NAME (^[A-Za-z_][A-Za-z0-9_]*$) -> scalar." + NULL_NOTE,
    "type": ["object", "null"],
    "propertyNames": ref("varName"),
    "additionalProperties": ref("string", description="The value (a scalar)."),
}
defs["baseStringList"] = {
    "title": "list of strings",
    "description": "A list of strings." + NULL_NOTE,
    "type": ["array", "null"],
    "items": nonnull("baseString", "One string.", SCALAR),
}
defs["stringList"] = {
    "title": "list of strings",
    "description": "A list of strings." + NULL_NOTE,
    "type": ["array", "null"],
    "items": nonnull("string", "One string.", SCALAR),
}


def enum_or_ph(values, title, desc, ph_def="placeholderString"):
    return {"title": title, "description": desc,
            "anyOf": [{"enum": values + [None], "title": title}, ref(ph_def)]}


def base_enum(values, title, desc):
    return enum_or_ph(values, title, desc, "basePlaceholderString")


# ---------------------------------------------------------------- target
target_props = {
    "driver": base_enum(DRIVERS, "driver",
                         "The driver: local, kubernetes, heroku or ecs. Required once the "
                         "environment's files are merged."),
    "context": ref("contextString", description=(
        "kubernetes: the kubeconfig context (default: the current one). May use "
        "{{ env.NAME }}.")),
    "namespace": {"title": "DNS label", "description": "kubernetes (required): the namespace, a DNS label.",
                  "anyOf": [ref("dnsLabel"), {"type": "string", "pattern": DNS_TMPL_BASE,
                                              "title": "DNS label containing {{ placeholders }}"}]},
    "app": {"title": "Heroku app name",
            "description": "heroku (required): the app name, ^[a-z][a-z0-9-]{1,28}[a-z0-9]$.",
            "anyOf": [{"type": ["string", "null"], "pattern": HEROKU_APP,
                       "title": "Heroku app name"},
                      {"type": "string", "pattern": HEROKU_APP_TMPL,
                       "title": "Heroku app name containing {{ placeholders }}"}]},
    "region": ref("baseString", description=(
        "heroku: the region (us, eu, virginia, oregon, frankfurt, tokyo, sydney, dublin, "
        "montreal, mumbai, singapore); ecs (required): the AWS region (us-east-1).")),
    "stack": base_enum(HEROKU_STACKS, "Heroku stack",
                       "heroku: the stack: heroku-20, heroku-22, heroku-24 or container."),
    "team": ref("baseString", description="heroku: the team owning the app."),
    "pipeline": ref("baseString", description="heroku: the pipeline the app belongs to."),
    "stage": base_enum(["review", "development", "staging", "production"], "pipeline stage",
                        "heroku: the pipeline stage: review, development, staging or "
                        "production. Requires pipeline."),
    "cluster": ref("baseString", description="ecs (required): the ECS cluster."),
    "launch_type": base_enum(["FARGATE", "EC2"], "launch type",
                              "ecs: FARGATE (default) or EC2."),
    "subnets": ref("baseStringList", description="ecs: the subnets of the service's tasks."),
    "security_groups": ref("baseStringList", description="ecs: the security groups of the tasks."),
    "assign_public_ip": {"type": ["boolean", "null"],
                         "description": "ecs: give the tasks a public IP (true/false)."},
    "execution_role_arn": ref("baseString", description="ecs: the task execution role's ARN."),
    "kubeconfig": ref("baseString", description=(
        "kubernetes: a kubeconfig file to use instead of $KUBECONFIG / ~/.kube/config "
        "(relative to the repository).")),
    "wait_timeout": ref("duration", description=(
        "kubernetes, ecs: how long to wait for a rollout to become healthy (default 5m).")),
    "drift_interval": ref("duration", description=(
        "all drivers: how often `reconcile controller` re-plans the environment to find drift "
        "when its driver cannot watch (Heroku, ECS, local); at least 1s (default: the "
        "controller's). A driver that watches (Kubernetes) uses it only while its watch fails.")),
    "qps": {"type": ["integer", "null"], "minimum": 1, "maximum": 10000,
            "description": "kubernetes: requests per second to the API server (default 50)."},
    "burst": {"type": ["integer", "null"], "minimum": 1, "maximum": 10000,
              "description": "kubernetes: requests allowed at once above qps (default 100)."},
}
per_driver = []
for d in DRIVERS:
    own = ["driver", "drift_interval"] + DRIVER_KEYS[d]
    then = {"properties": {k: True for k in own},
            "additionalProperties": {"type": "null",
                                     "errorMessage": "key is not valid for driver '%s'" % d}}
    if d == "heroku":
        then["properties"]["region"] = {
            "title": "Heroku region",
            "anyOf": [{"enum": HEROKU_REGIONS + [None], "title": "Heroku region"},
                      ref("basePlaceholderString")],
            "description": "The Heroku region."}
    if d == "ecs":
        then["properties"]["region"] = {
            "title": "AWS region (e.g. us-east-1)",
            "anyOf": [{"type": ["string", "null"], "pattern": AWS_REGION,
                       "title": "AWS region"}, ref("basePlaceholderString")],
            "description": "The AWS region (e.g. us-east-1)."}
    per_driver.append({"if": {"required": ["driver"], "properties": {"driver": {"const": d}}},
                       "then": then})
defs["target"] = {
    "title": "target",
    "description": ("Where the environment runs: `driver` and that driver's keys. A key of "
                    "another driver is an error (only null, to delete an inherited key)."
                    + NULL_NOTE),
    "type": ["object", "null"],
    "additionalProperties": False,
    "properties": target_props,
    "allOf": per_driver,
}
complete_target = [must_be_set(["driver"], "target.{key} is required")]
for d in DRIVERS:
    if DRIVER_REQUIRED[d]:
        complete_target.append({
            "if": {"required": ["driver"], "properties": {"driver": {"const": d}}},
            "then": must_be_set(DRIVER_REQUIRED[d],
                                "target.{key} is required for driver '%s'" % d)})
complete_target.append({"if": present("stage"),
                        "then": must_be_set(["pipeline"], "target.stage requires target.pipeline")})
defs["targetComplete"] = {
    "title": "target (complete)",
    "description": "A target once merged: driver and the driver's required keys are set.",
    "type": "object",
    "allOf": complete_target,
}

# ---------------------------------------------------------------- service
defs["health"] = {
    "title": "health check",
    "description": ("The health check: exactly one of http, tcp or command, with interval, "
                    "timeout, retries and grace." + NULL_NOTE),
    "type": ["object", "null"],
    "additionalProperties": False,
    "properties": {
        "http": {"title": "HTTP path (starting with /)", "description": "HTTP check: the path, requested with GET on the service port.",
                 "anyOf": [{"type": ["string", "null"], "pattern": "^/" + wf(BODY_NAMES)[1:],
                            "title": "HTTP path"}, ref("placeholderString")]},
        "tcp": {"type": ["boolean", "null"], "enum": [True, None],
                "errorMessage": "tcp can only be true",
                "description": "TCP check: true to check that the service port accepts connections."},
        "command": ref("argv", description="Command check: an argv run in the container; exit 0 is healthy."),
        "interval": ref("duration", description="Time between checks (default 10s)."),
        "timeout": ref("duration", description="Time a check may take (default 2s)."),
        "retries": {"type": ["integer", "null"], "minimum": 1, "maximum": 100,
                    "description": "Failures before the service is unhealthy, 1 to 100 (default 3)."},
        "grace": ref("duration", description="Start period during which failures do not count (default 0s)."),
    },
    "allOf": [
        {"if": present("http"),
         "then": absent(["tcp", "command"], "only one of http, tcp, command")},
        {"if": present("tcp"),
         "then": absent(["command"], "only one of http, tcp, command")},
    ],
}
defs["healthComplete"] = {
    "title": "health check (complete)",
    "description": "A merged health check has exactly one of http, tcp, command.",
    "if": {"type": "object"},
    "then": {"anyOf": [present("http"), present("tcp"), present("command")],
             "errorMessage": "a health check needs one of http, tcp, command"},
}
defs["kubernetesExtras"] = {
    "title": "kubernetes extras",
    "description": "Native extras for the kubernetes driver, merged into the generated objects." + NULL_NOTE,
    "type": ["object", "null"],
    "additionalProperties": False,
    "properties": {
        "deployment": ref("freeFormObject", description="Merged into the Deployment."),
        "service": ref("freeFormObject", description="Merged into the Service."),
    },
}
defs["ecsExtras"] = {
    "title": "ecs extras",
    "description": "Native extras for the ecs driver, merged into the generated objects." + NULL_NOTE,
    "type": ["object", "null"],
    "additionalProperties": False,
    "properties": {
        "task_definition": ref("freeFormObject", description="Merged into the task definition."),
        "container": ref("freeFormObject", description="Merged into the container definition."),
        "service": ref("freeFormObject", description="Merged into the ECS service."),
    },
}
defs["herokuExtras"] = {
    "title": "heroku extras",
    "description": "Native extras for the heroku driver." + NULL_NOTE,
    "type": ["object", "null"],
    "additionalProperties": False,
    "properties": {
        "process_type": ref("string", description="The Procfile process type (e.g. web, worker)."),
    },
}
defs["localExtras"] = {
    "title": "local extras",
    "description": "Native extras for the local driver." + NULL_NOTE,
    "type": ["object", "null"],
    "additionalProperties": False,
    "properties": {
        "workdir": ref("repoPath", description="The working directory, relative to the repository (default: its root)."),
    },
}
defs["service"] = {
    "title": "service",
    "description": "A service: its image, command, size and health check." + NULL_NOTE,
    "type": ["object", "null"],
    "additionalProperties": False,
    "properties": {
        "image": ref("string", description="The container image (required for kubernetes, ecs and heroku; unused by local)."),
        "command": ref("argv", description="The command, as an argv list (a string is an error: there is no shell)."),
        "args": ref("args", description="The arguments, as an argv list."),
        "replicas": {"type": ["integer", "null"], "minimum": 0, "maximum": 10000,
                     "description": "Number of instances, an integer from 0 to 10000 (default 1)."},
        "size": enum_or_ph(SIZES, "size",
                           "The instance size: eco, basic, standard-1x, standard-2x, "
                           "performance-m, performance-l, performance-l-ram, performance-xl, "
                           "performance-2xl. Exclusive with cpu and memory."),
        "cpu": ref("cpu", description="CPU: \"500m\", 0.5, \"0.5\" or 2 (normalised to millicores). Exclusive with size."),
        "memory": ref("memory", description="Memory with a unit: 512Mi, 1Gi, 1G ... Exclusive with size."),
        "port": {"type": ["integer", "null"], "minimum": 1, "maximum": 65535,
                 "description": "The port the service listens on, 1..65535."},
        "env": ref("scalarMap", description="Plain variables for this service only: NAME -> scalar."),
        "health": ref("health", description="The health check: exactly one of http, tcp, command."),
        "kubernetes": ref("kubernetesExtras", description="kubernetes only: extras merged into the Deployment and Service."),
        "ecs": ref("ecsExtras", description="ecs only: extras merged into the task definition, container and service."),
        "heroku": ref("herokuExtras", description="heroku only: { process_type: web }."),
        "local": ref("localExtras", description="local only: { workdir: path }."),
    },
    "allOf": [
        {"if": present("size"),
         "then": absent(["cpu", "memory"], "size is exclusive with cpu and memory")},
    ],
}

# ---------------------------------------------------------------- secrets, addons
SECRET_MSG = ("a secret is a reference, exactly one of { env: NAME } or { file: path } "
              "(literal values and { encrypted: ... } are not supported)")
defs["secretRef"] = {
    "title": "secret reference",
    "description": ("A reference to a secret, never its value: { env: NAME } (read from the "
                    "process environment at apply) or { file: path } (a file in the repository). "
                    "A literal value and { encrypted: ... } are errors."),
    "type": ["object", "null"],
    "errorMessage": SECRET_MSG,
    "additionalProperties": False,
    "properties": {
        "env": ref("varNameOrPlaceholder", description="The process environment variable holding the secret."),
        "file": ref("repoPath", description="A file inside the repository holding the secret (usually git-ignored)."),
    },
    "if": {"type": "object"},
    "then": {"oneOf": [present("env"), present("file")], "errorMessage": SECRET_MSG},
}
defs["addon"] = {
    "title": "addon",
    "description": "An add-on (database, cache, ...) attached to the environment." + NULL_NOTE,
    "type": ["object", "null"],
    "additionalProperties": False,
    "properties": {
        "kind": {"title": "add-on kind (a DNS label)", "description": "The add-on kind (required), a DNS label, e.g. heroku-postgresql, postgresql.",
                 "anyOf": [{"type": ["string", "null"], "pattern": KIND, "title": "add-on kind"},
                           ref("placeholderString")]},
        "plan": ref("string", description="The add-on plan (optional)."),
        "as": ref("varNameOrPlaceholder", description="The variable prefix the add-on is exposed as (e.g. DATABASE -> DATABASE_URL)."),
        "config": {"description": "Add-on configuration: key -> scalar." + NULL_NOTE,
                   "type": ["object", "null"],
                   "additionalProperties": ref("string", description="A scalar value.")},
    },
}

# ---------------------------------------------------------------- hooks
def hook_def(title, description, default_name, string, argv, names):
    return {
        "title": title,
        "description": description,
        "type": ["object", "null"],
        "additionalProperties": False,
        "required": ["run"],
        "properties": {
            "name": ref("string", description="The hook's name (default %s)." % default_name),
            "run": ref(argv, description="The command (required): an argv list, no shell. May use %s." % names),
            "where": enum_or_ph(["local", "target"], "where",
                                "local (on the machine running reconcile) or target (default; in "
                                "the service's image on the target)."),
            "service": ref("dnsLabelOrPlaceholder", description="The service whose image runs the hook on the target; required for kubernetes and ecs when where is target."),
            "timeout": ref("duration", description="Time limit (default 10m)."),
            "irreversible": {"type": ["boolean", "null"],
                             "description": "The hook's effect cannot be undone by a rollback (default false)."},
            "env": {"description": "Variables for the hook: NAME -> scalar; may use %s." % names + NULL_NOTE,
                    "type": ["object", "null"],
                    "propertyNames": ref("varName"),
                    "additionalProperties": ref(string, description="A scalar value.")},
        },
    }


defs["hook"] = hook_def("hook", "A command run before or after the apply.",
                        "\"pre_apply[N]\" / \"post_apply[N]\"", "hookString", "hookArgv",
                        "{{ run.* }} and {{ env.NAME }}")
defs["rollbackHook"] = hook_def(
    "on_rollback hook",
    "A command run by rollback --force before it goes back past an irreversible step "
    "(restoring a backup, for example).",
    "\"on_rollback[N]\"", "rollbackHookString", "rollbackHookArgv",
    "{{ rolled_back.* }}, {{ run.* }} and {{ env.NAME }}")
defs["hookList"] = {
    "title": "hook list",
    "description": "Hooks, run in order. A list replaces the inherited list." + NULL_NOTE,
    "type": ["array", "null"],
    "items": nonnull("hook", "A hook.", "object"),
}
defs["rollbackHookList"] = {
    "title": "on_rollback hook list",
    "description": "Hooks, run in order. A list replaces the inherited list." + NULL_NOTE,
    "type": ["array", "null"],
    "items": nonnull("rollbackHook", "A hook.", "object"),
}
defs["hooks"] = {
    "title": "hooks",
    "description": "Commands run around the apply." + NULL_NOTE,
    "type": ["object", "null"],
    "additionalProperties": False,
    "properties": {
        "pre_apply": ref("hookList", description="Run in order before anything else."),
        "post_apply": ref("hookList", description="Run in order after the apply."),
        "on_rollback": ref("rollbackHookList", description="Run in order by rollback --force when it goes back past an irreversible step, before it restores the rest."),
    },
}
defs["hookNeedsService"] = {
    "title": "hook on the target",
    "description": "With the kubernetes and ecs drivers, a hook run on the target names its service.",
    "if": {"required": ["where"], "properties": {"where": {"const": "local"}}},
    "else": must_be_set(["service"], "hook.{key} is required with this driver unless where: local"),
}

# ---------------------------------------------------------------- resources
defs["manifest"] = {
    "title": "Kubernetes manifest",
    "description": "A raw Kubernetes object: apiVersion, kind and metadata.name are required.",
    "type": ["object", "null"],
    "required": ["apiVersion", "kind", "metadata"],
    "properties": {
        "apiVersion": nonnull("string", "The object's apiVersion (required).", SCALAR),
        "kind": nonnull("string", "The object's kind (required).", SCALAR),
        "metadata": {"description": "The object's metadata; name is required.",
                     "type": "object",
                     "required": ["name"],
                     "properties": {"name": nonnull("string", "The object's name (required).", SCALAR)},
                     "additionalProperties": ref("freeForm")},
    },
    "additionalProperties": ref("freeForm"),
}
defs["resource"] = {
    "title": "resource",
    "description": "A raw native object: { file: path } (one or more YAML documents) or { manifest: {...} }.",
    "type": ["object", "null"],
    "additionalProperties": False,
    "properties": {
        "file": ref("repoPath", description="A YAML file of manifests, relative to the repository root."),
        "manifest": ref("manifest", description="An inline manifest."),
    },
    "if": {"type": "object"},
    "then": {"oneOf": [present("file"), present("manifest")],
             "errorMessage": "a resource has exactly one of file or manifest"},
}
defs["resources"] = {
    "title": "resources",
    "description": "Raw native objects (kubernetes only)." + NULL_NOTE,
    "type": ["array", "null"],
    "items": nonnull("resource", "A resource.", "object"),
}

# ---------------------------------------------------------------- policy
defs["policy"] = {
    "title": "policy",
    "description": "How the environment is reconciled." + NULL_NOTE,
    "type": ["object", "null"],
    "additionalProperties": False,
    "properties": {
        "branch": ref("baseString", description="The branch of the configuration repository this environment follows."),
        "apply": base_enum(["auto", "manual"], "apply", "auto (default): changes are applied; manual: they are only planned."),
        "prune": {"type": ["boolean", "null"], "description": "Delete objects that left the configuration (default false)."},
        "drift": base_enum(["report", "heal"], "drift", "report (default) or heal drift found on the target."),
        "force_conflicts": {"type": ["boolean", "null"], "description": (
            "Take over fields another manager owns when applying (kubernetes server-side "
            "apply force); default false: a conflict fails, naming the field and the manager.")},
        "allow_replace": {"type": ["boolean", "null"], "description": (
            "Apply a planned replace (delete and create, for a change to an immutable field); "
            "default false: the replace is planned but refused at apply.")},
    },
}

# ---------------------------------------------------------------- body
body_props = {
    "target": ref("target", description="Where the environment runs (required once merged): driver and its keys."),
    "services": {"description": "The services: name (DNS label) -> service." + NULL_NOTE,
                 "type": ["object", "null"],
                 "propertyNames": ref("dnsLabel"),
                 "additionalProperties": ref("service")},
    "config": ref("scalarMap", description="Plain variables for every service: NAME -> scalar."),
    "secrets": {"description": "Secret references: NAME -> { env: VAR } or { file: path }. Never a value." + NULL_NOTE,
                "type": ["object", "null"],
                "propertyNames": ref("varName"),
                "additionalProperties": ref("secretRef")},
    "addons": {"description": "Add-ons: name (DNS label) -> { kind, plan, as, config }." + NULL_NOTE,
               "type": ["object", "null"],
               "propertyNames": ref("dnsLabel"),
               "additionalProperties": ref("addon")},
    "hooks": ref("hooks", description="pre_apply, post_apply and on_rollback hook lists."),
    "resources": ref("resources", description="Raw native objects (kubernetes only): { file } or { manifest }."),
    "policy": ref("policy", description="branch, apply (auto|manual), prune, drift (report|heal)."),
    "depends_on": {"description": "Environments (or generator keys) applied before this one." + NULL_NOTE,
                   "type": ["array", "null"],
                   "items": ref("envNameOrPlaceholder", type=["string", "integer", "boolean"])},
    "ignore": {"description": ("Ignore rules: fields of resources that reconcile neither compares "
                               "nor changes (written by another tool or controller)." + NULL_NOTE),
               "type": ["array", "null"],
               "items": {"type": "object", "additionalProperties": False, "required": ["paths"],
                         "properties": {
                             "resource": {"description": "kind/name of the driver's resource (e.g. service/web), or * for every resource (default).",
                                          "type": "string", "pattern": r"^(\*|[A-Za-z0-9-]+/[a-z0-9*]([a-z0-9-]*[a-z0-9*])?)$"},
                             "paths": {"description": "JSON pointers into the resource's body; * matches one segment.",
                                       "type": "array", "minItems": 1,
                                       "items": {"type": "string", "pattern": "^/"}}}}},
}


def driver_is(d):
    return {"required": ["target"],
            "properties": {"target": {"type": "object", "required": ["driver"],
                                      "properties": {"driver": {"const": d}}}}}


body_rules = []
for d in DRIVERS:
    foreign = [o for o in DRIVERS if o != d]  # the native block is named after its driver
    then = {"properties": {"services": {"additionalProperties": absent(
        foreign, "the {key} block is not valid for driver '%s'" % d)}}}
    if d != "kubernetes":
        then["properties"]["resources"] = {
            "maxItems": 0, "errorMessage": "resources are only valid for driver 'kubernetes'"}
    if d in ("kubernetes", "ecs"):
        then["properties"]["hooks"] = {"properties": {
            "pre_apply": {"items": ref("hookNeedsService")},
            "post_apply": {"items": ref("hookNeedsService")},
            "on_rollback": {"items": ref("hookNeedsService")}}}
    body_rules.append({"if": driver_is(d), "then": then})
defs["bodyRules"] = {
    "title": "driver consistency",
    "description": "Checks between the target's driver and the rest of the same body.",
    "allOf": body_rules,
}
complete_rules = [
    must_be_set(["target"], "{key} is required"),
    {"properties": {"target": ref("targetComplete"),
                    "services": {"additionalProperties": {"properties": {"health": ref("healthComplete")}}},
                    "addons": {"additionalProperties": must_be_set(["kind"], "addon {key} is required")}}},
]
complete_rules.append({"if": driver_is("local"), "then": {"properties": {"services": {
    "additionalProperties": must_be_set(["command"], "service {key} is required for driver 'local'")}}}})
complete_rules.append({"properties": {"services": {"additionalProperties": {
    "if": {"required": ["health"],
           "properties": {"health": {"type": "object", "anyOf": [present("http"), present("tcp")]}}},
    "then": must_be_set(["port"], "a http or tcp health check needs the service's {key}")}}}})
for d in ("kubernetes", "ecs", "heroku"):
    complete_rules.append({"if": driver_is(d), "then": {"properties": {"services": {
        "additionalProperties": must_be_set(["image"], "service {key} is required for driver '%s'" % d)}}}})
defs["completeBody"] = {
    "title": "complete environment body",
    "description": ("An inline environment without `file`: the body is complete, so what is "
                    "required after merging is required here."),
    "allOf": complete_rules,
}

defs["environment"] = {
    "title": "environment file",
    "description": ("An environment file: an environment body, possibly partial (a base for "
                    "`extends`). Required keys such as target are checked after merging."),
    "type": "object",
    "additionalProperties": False,
    "properties": dict(
        [("extends", {"title": "relative path or list of relative paths", "description": "Base files merged first, in order (relative to this file); not inherited.",
                      "anyOf": [ref("relPath", type=SCALAR_N),
                                {"type": "array", "items": ref("relPath", type=SCALAR)}]})]
        + list(body_props.items())),
    "allOf": [ref("bodyRules")],
}

# ---------------------------------------------------------------- root
defs["gitUrl"] = {
    "title": "git URL",
    "description": ("A git repository: https://, http://, git://, ssh://, file://, scp-style "
                    "user@host:path, or a path relative to the configuration repository."),
    "type": "string",
    "pattern": GIT_URL,
}
defs["repository"] = {
    "title": "repository",
    "description": "A named git repository for branch generators." + NULL_NOTE,
    "type": ["object", "null"],
    "additionalProperties": False,
    "required": ["url"],
    "properties": {"url": ref("gitUrl", description="The repository's URL (required).")},
}
defs["branchesGenerator"] = {
    "title": "branches generator",
    "description": "One environment per branch of `repository` whose name matches `match`.",
    "type": ["object", "null"],
    "additionalProperties": False,
    "required": ["repository", "match"],
    "properties": {
        "repository": nonnull("string", "A name from `repositories`, or `self` (the configuration repository).", SCALAR),
        "match": nonnull("string", "An fnmatch glob on branch names, e.g. \"pr-*\".", SCALAR),
    },
}
defs["listItem"] = {
    "title": "list item",
    "description": "One generated environment's fields: scalars, `name` required (unique); used as {{ item.FIELD }}.",
    "type": "object",
    "required": ["name"],
    "properties": {"name": nonnull("scalar", "The item's name (required, unique).", SCALAR)},
    "propertyNames": ref("varName"),
    "additionalProperties": ref("scalar"),
}
defs["generator"] = {
    "title": "generator",
    "description": "for_each: exactly one of branches or list.",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "branches": ref("branchesGenerator", description="{ repository, match }: one environment per matching branch."),
        "list": {"description": "One environment per item; items are maps of scalars with a unique `name`.",
                 "type": ["array", "null"],
                 "items": ref("listItem")},
    },
    "oneOf": [present("branches"), present("list")],
    "errorMessage": "for_each needs exactly one of branches or list",
}
GEN_NAME_TMPL = r"^(?:[a-z0-9-]|" + ph(BODY_NAMES) + r")+$"
entry_props = dict(
    [("file", ref("entryFile", description="The environment's body from a file, relative to the repository root; inline keys are merged over it. Not substituted.")),
     ("for_each", {"description": "Generator: one environment per branch or list item." + NULL_NOTE,
                   "anyOf": [ref("generator"), {"type": "null"}]}),
     ("name", {"description": "Required with for_each: the generated environment's name, e.g. \"review-{{ item.name }}\".",
               "type": ["string", "integer", "null"], "minimum": 0, "pattern": GEN_NAME_TMPL,
               "title": "generated environment name"}),
     ("ttl", ref("duration", description="Only with for_each: prune a generated environment this long after its branch is gone (e.g. 72h)."))]
    + list(body_props.items()))
defs["entry"] = {
    "title": "environment entry",
    "description": ("An environment: `file` and/or inline body keys (merged over the file), or a "
                    "generator (`for_each` + `name`). `extends` is not allowed inline." + NULL_NOTE),
    "type": ["object", "null"],
    "additionalProperties": False,
    "properties": entry_props,
    "allOf": [
        ref("bodyRules"),
        {"if": {"type": "object"},
         "then": {"allOf": [
             {"if": present("for_each"),
              "then": must_be_set(["name"], "{key} is required with for_each"),
              "else": {"allOf": [absent(["name", "ttl"], "{key} is only valid with for_each"),
                                 ref("noItemPlaceholder")]}},
             {"if": present("file"), "else": ref("completeBody")},
         ]}},
    ],
}
defs["root"] = {
    "title": "reconcile.yaml",
    "description": "The root of a configuration repository.",
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "project", "environments"],
    "properties": {
        "version": {"description": "The language version (required): 1.", "type": "integer", "const": 1},
        "project": nonnull("dnsLabel", "The project's name (required): a DNS label.", ["string", "integer", "boolean"]),
        "repositories": {"description": "Named git repositories for branch generators: name -> { url }." + NULL_NOTE,
                         "type": ["object", "null"],
                         "propertyNames": {"minLength": 1, "not": {"const": "self"},
                                           "errorMessage": "'self' is reserved: it names the configuration repository"},
                         "additionalProperties": ref("repository")},
        "allow_env": {"description": "The process variables {{ env.NAME }} may read." + NULL_NOTE,
                      "type": ["array", "null"],
                      "items": ref("varName", type=["string", "boolean"])},
        "environments": {"description": "The environments (required): name (DNS label) -> entry.",
                         "type": "object",
                         "propertyNames": ref("envName"),
                         "additionalProperties": ref("entry")},
    },
}

schema = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:reconcile:schema:config:1",
    "title": "reconcile configuration (version 1)",
    "description": ("A reconcile configuration file: reconcile.yaml (a document with `version` "
                    "or `environments`) or an environment file. Follows docs/language-spec.md; "
                    "checks that need other files (extends, merging, references) are left to "
                    "`reconcile validate`."),
    "if": {"anyOf": [{"required": ["environments"]}, {"required": ["version"]}]},
    "then": ref("root"),
    "else": ref("environment"),
    "$defs": defs,
}

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "schema", "reconcile.schema.json")
def dump(obj, indent=0, width=100):
    """JSON with two-space indentation; a value that fits on its line stays on it."""
    flat = json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))
    if len(flat) + indent <= width or not isinstance(obj, (dict, list)) or not obj:
        return flat
    pad = " " * (indent + 2)
    if isinstance(obj, list):
        items = [pad + dump(v, indent + 2, width) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
    items = []
    for k, v in obj.items():
        key = json.dumps(k, ensure_ascii=False) + ": "
        items.append(pad + key + dump(v, indent + 2, width))
    return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"


with open(out, "w") as f:
    f.write(dump(schema))
    f.write("\n")
