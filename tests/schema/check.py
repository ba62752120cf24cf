#!/usr/bin/python3
"""Checks reconcile configuration files against schema/reconcile.schema.json.

Usage:
  check.py --schema S [--expect valid|invalid] [--kind auto|root|environment] FILE...
  check.py --schema S --examples DIR   every config repository under DIR must be valid
  check.py --schema S --cases DIR      the invalid-configuration corpus (DIR/<case>/schema)

Run it with the system interpreter (/usr/bin/python3) and the Debian packages
python3-jsonschema and python3-yaml. YAML is read the way the loader reads it
(docs/language-spec.md): YAML 1.2 core schema scalars (yes/no/on/off and
timestamps are strings), merge keys, map keys taken as their text.

A file is "invalid" when it is not a readable YAML stream (not UTF-8, syntax
error) or when a document in it fails the JSON Schema. Problems only the
loader can see (duplicate keys, size/depth/node limits, missing files, cycles,
references) are not schema errors: duplicate keys and limits are reported as
warnings on stderr, and a document too large to validate is not validated.
Exit status: 0 when every file (or case) met the expectation, 1 otherwise,
2 for a usage error.
"""

import argparse
import json
import math
import os
import re
import sys

try:
    import yaml
    import jsonschema
    import jsonschema.exceptions
    import jsonschema.validators
except ImportError as e:  # pragma: no cover
    sys.stderr.write("check.py: %s: install the Debian packages python3-yaml and "
                     "python3-jsonschema and run it with /usr/bin/python3\n" % e)
    sys.exit(2)

MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 250000
VALIDATE_DEPTH = 100  # deeper parts are cut before validation (recursion)

# ------------------------------------------------------------------ YAML


class Core12Resolver(yaml.resolver.BaseResolver):
    """Implicit tags of the YAML 1.2 core schema, plus the merge key."""


Core12Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
Core12Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789"))
Core12Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+.0123456789"))
Core12Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:null",
    re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
Core12Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])


class Core12Constructor(yaml.constructor.SafeConstructor):
    """SafeConstructor with YAML 1.2 core scalars and text map keys."""

    def __init__(self):
        super().__init__()
        self.rc_warnings = []

    def construct_mapping(self, node, deep=False):
        if not isinstance(node, yaml.MappingNode):
            raise yaml.constructor.ConstructorError(
                None, None, "expected a mapping node, but found %s" % node.id, node.start_mark)
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            if isinstance(key_node, yaml.ScalarNode):
                if key_node.value in seen:
                    self.rc_warnings.append(
                        "line %d: duplicate key '%s' (an error for the loader)"
                        % (key_node.start_mark.line + 1, key_node.value))
                seen.add(key_node.value)
        self.flatten_mapping(node)
        mapping = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    "found a non-scalar key", key_node.start_mark)
            # a key is its text: `1:` is the key "1", `true:` the key "true"
            mapping[key_node.value] = self.construct_object(value_node, deep=deep)
        return mapping

    def construct_core_bool(self, node):
        value = self.construct_scalar(node)
        if value.lower() not in ("true", "false"):
            raise yaml.constructor.ConstructorError(
                None, None, "invalid boolean %r (YAML 1.2: true or false)" % value,
                node.start_mark)
        return value.lower() == "true"

    def construct_core_int(self, node):
        value = self.construct_scalar(node)
        try:
            if value.startswith("0o"):
                return int(value[2:], 8)
            if value.startswith("0x"):
                return int(value[2:], 16)
            return int(value, 10)
        except ValueError:
            raise yaml.constructor.ConstructorError(
                None, None, "invalid integer %r" % value, node.start_mark)

    def construct_core_float(self, node):
        value = self.construct_scalar(node)
        low = value.lower()
        if low in (".inf", "+.inf"):
            return math.inf
        if low == "-.inf":
            return -math.inf
        if low == ".nan":
            return math.nan
        try:
            return float(value)
        except ValueError:
            raise yaml.constructor.ConstructorError(
                None, None, "invalid float %r" % value, node.start_mark)


Core12Constructor.add_constructor("tag:yaml.org,2002:bool", Core12Constructor.construct_core_bool)
Core12Constructor.add_constructor("tag:yaml.org,2002:int", Core12Constructor.construct_core_int)
Core12Constructor.add_constructor("tag:yaml.org,2002:float", Core12Constructor.construct_core_float)
# timestamps stay strings (there is no implicit resolver for them either)
Core12Constructor.add_constructor("tag:yaml.org,2002:timestamp",
                                  yaml.constructor.SafeConstructor.construct_yaml_str)


class Core12Loader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser,
                   yaml.composer.Composer, Core12Constructor, Core12Resolver):
    def __init__(self, stream):
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        Core12Constructor.__init__(self)
        Core12Resolver.__init__(self)


def _children(node):
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            yield k
            yield v
    elif isinstance(node, yaml.SequenceNode):
        yield from node.value


def measure(root):
    """(collection depth, node count after alias expansion) of a node graph,
    or None when an alias is recursive (infinite expansion)."""
    on_path = object()
    memo = {}
    stack = [(root, False)]
    while stack:
        node, post = stack.pop()
        nid = id(node)
        if post:
            kids = list(_children(node))
            depth = max((memo[id(c)][0] for c in kids), default=0)
            if isinstance(node, yaml.CollectionNode):
                depth += 1
            count = min(1 + sum(memo[id(c)][1] for c in kids), 10 * MAX_NODES)
            memo[nid] = (depth, count)
            continue
        if nid in memo:
            continue
        memo[nid] = on_path
        stack.append((node, True))
        for c in _children(node):
            m = memo.get(id(c))
            if m is on_path:
                return None
            if m is None:
                stack.append((c, False))
    return memo[id(root)]


def truncate(data, depth):
    """A copy without the collections nested deeper than `depth` (they become
    null). The schema only allows unbounded nesting inside free-form maps
    (manifests, native extras), which accept null, so this changes no
    verdict, and it keeps the validator's recursion bounded."""
    if isinstance(data, dict):
        return {k: truncate(v, depth - 1) for k, v in data.items()} if depth > 0 else None
    if isinstance(data, list):
        return [truncate(v, depth - 1) for v in data] if depth > 0 else None
    return data


class Unreadable(Exception):
    """The file is not a readable YAML stream."""


class Doc:
    def __init__(self, data, validate=True, note=None):
        self.data = data
        self.validate = validate
        self.note = note


def load_file(path):
    """Returns (docs, warnings); raises Unreadable."""
    warnings = []
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise Unreadable("cannot read: %s" % e.strerror)
    if len(raw) > MAX_BYTES:
        warnings.append("larger than 4 MiB (an error for the loader)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Unreadable("not UTF-8 (byte %d)" % e.start)
    if text.startswith("\ufeff"):
        text = text[1:]
    docs = []
    if sys.getrecursionlimit() < 20000:
        sys.setrecursionlimit(20000)  # PyYAML's composer recurses once per level
    loader = None
    try:
        loader = Core12Loader(text)
        while loader.check_node():
            node = loader.get_node()
            m = measure(node)
            if m is None:
                warnings.append("recursive alias: infinite expansion (an error for the loader)")
                docs.append(Doc(None, False, "recursive alias"))
                continue
            depth, count = m
            if count > MAX_NODES:
                warnings.append("%s nodes after alias expansion, more than %d (an error for "
                                "the loader); not validated"
                                % ("over %d" % count if count >= 10 * MAX_NODES else count,
                                   MAX_NODES))
                docs.append(Doc(None, False, "too many nodes"))
                continue
            if depth > MAX_DEPTH:
                warnings.append("nesting depth %d, more than %d (an error for the loader)"
                                % (depth, MAX_DEPTH))
            data = loader.construct_document(node)
            if depth > VALIDATE_DEPTH:
                data = truncate(data, VALIDATE_DEPTH)
            docs.append(Doc(data))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = " at line %d, column %d" % (mark.line + 1, mark.column + 1) if mark else ""
        what = "; ".join(x for x in (e.context, e.problem) if x)
        raise Unreadable("YAML error%s: %s" % (where, what))
    except yaml.YAMLError as e:
        raise Unreadable("YAML error: " + " ".join(str(e).split()))
    except RecursionError:
        # far beyond the loader's depth limit: a limit case, not a schema one
        warnings.append("nesting too deep to parse (an error for the loader); not validated")
        docs = [Doc(None, False, "too deep")]
    finally:
        if loader is not None:
            warnings.extend(loader.rc_warnings)
            loader.dispose()
    if not docs:
        docs.append(Doc(None, True, "empty file"))
    elif len(docs) > 1:
        warnings.append("%d YAML documents in a configuration file" % len(docs))
    return docs, warnings


# ------------------------------------------------------------------ schema


def _is_integer(checker, instance):
    # YAML distinguishes 2 from 2.0: an integer field takes integers only
    return isinstance(instance, int) and not isinstance(instance, bool)


_TYPES = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer)
Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=_TYPES)


def make_validators(schema):
    jsonschema.Draft202012Validator.check_schema(schema)
    out = {"auto": Validator(schema)}
    for kind in ("root", "environment"):
        sub = {k: v for k, v in schema.items() if k not in ("if", "then", "else")}
        sub["$ref"] = "#/$defs/" + kind
        out[kind] = Validator(sub)
    return out


def _describe(value, hide):
    if hide:
        return "the value (not shown)"
    if isinstance(value, dict):
        return "a map"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    r = repr(value)
    return r if len(r) <= 80 else r[:77] + "..."


def _path(error):
    parts = []
    for p in error.absolute_path:
        parts.append("[%d]" % p if isinstance(p, int) else ("." + str(p) if parts else str(p)))
    return "".join(parts) or "(document)"


_OWN_MESSAGE = ("additionalProperties", "required", "propertyNames", "dependentRequired")


def _schema(error):
    return error.schema if isinstance(error.schema, dict) else {}


def format_error(error):
    """One line: the instance path and a message that never shows a value
    found under `secrets`, nor a whole map or list."""
    # a value under `secrets` may be a secret written by mistake
    hide = "secrets" in list(error.absolute_path)
    chain = [error]  # the error, then the anyOf/oneOf errors it sits in
    while chain[-1].parent is not None:
        chain.append(chain[-1].parent)
    if error.validator not in _OWN_MESSAGE:
        # the nearest errorMessage the schema gives for this failure
        for e in chain:
            if "errorMessage" in _schema(e) and e.validator not in _OWN_MESSAGE:
                return "%s: %s" % (_path(e), _schema(e)["errorMessage"])
        # an alternative of a titled anyOf/oneOf failed on the same value:
        # name what was expected rather than the alternative
        for e in reversed(chain):
            if (e.validator in ("anyOf", "oneOf") and _schema(e).get("title")
                    and list(e.absolute_path) == list(error.absolute_path)):
                return "%s: %s is not a valid %s%s" % (
                    _path(e), _describe(e.instance, hide), _schema(e)["title"],
                    _enum_hint(_schema(e)))
    schema = _schema(error)
    msg = error.message
    r = repr(error.instance)
    if msg.startswith(r):
        msg = _describe(error.instance, hide) + msg[len(r):]
    elif hide and error.validator not in _OWN_MESSAGE:
        msg = "the value (not shown) fails '%s'" % error.validator
    title = schema.get("title")
    if error.validator in ("pattern", "anyOf", "oneOf", "enum") and title:
        msg = "%s is not a valid %s%s" % (_describe(error.instance, hide), title,
                                          _enum_hint(schema))
    elif error.validator == "not":
        msg = "%s is not allowed here" % _describe(error.instance, hide)
    return "%s: %s" % (_path(error), msg)


def _enum_hint(schema):
    for alt in [schema] + list(schema.get("anyOf", [])) + list(schema.get("oneOf", [])):
        if isinstance(alt, dict) and "enum" in alt:
            return " (one of: %s)" % ", ".join(str(v) for v in alt["enum"] if v is not None)
    return ""


def check_file(path, validators, kind="auto"):
    """Returns (ok, message, warnings)."""
    try:
        docs, warnings = load_file(path)
    except Unreadable as e:
        return False, str(e), []
    v = validators[kind]
    for i, doc in enumerate(docs):
        if not doc.validate:
            continue
        try:
            err = jsonschema.exceptions.best_match(v.iter_errors(doc.data))
        except RecursionError:
            warnings.append("too deep to validate")
            continue
        if err is not None:
            where = "document %d: " % (i + 1) if len(docs) > 1 else ""
            if doc.note == "empty file":
                return False, "empty file: no YAML document", warnings
            return False, where + format_error(err), warnings
    return True, None, warnings


# ------------------------------------------------------------------ repositories


def _inside(path, repo):
    real = os.path.realpath(path)
    top = os.path.realpath(repo)
    return real == top or real.startswith(top + os.sep)


def repo_files(repo):
    """The config files of a repository: [(path, kind, named_by)], and the
    files that are named but missing: [(path, named_by)]. Paths with
    {{ placeholders }}, absolute paths and paths leaving the repository are
    not followed (the schema or the loader reports them)."""
    root = os.path.join(repo, "reconcile.yaml")
    files, missing, notes = [], [], []
    if not os.path.isfile(root):
        return files, [(root, None)], notes
    files.append((root, "root", None))
    queue = []

    def first_map(path):
        try:
            docs, _ = load_file(path)
        except Unreadable:
            return None
        d = docs[0].data
        return d if isinstance(d, dict) else None

    doc = first_map(root)
    envs = doc.get("environments") if doc else None
    if isinstance(envs, dict):
        for entry in envs.values():
            if isinstance(entry, dict) and isinstance(entry.get("file"), str):
                queue.append((entry["file"], repo, root))
    seen = set()
    while queue:
        rel, base, by = queue.pop(0)
        if "{{" in rel:
            notes.append("%s: not following %r (placeholders)" % (by, rel))
            continue
        if os.path.isabs(rel):
            continue
        path = os.path.normpath(os.path.join(base, rel))
        if not _inside(path, repo):
            notes.append("%s: not following %r (outside the repository)" % (by, rel))
            continue
        if path in seen:
            continue
        seen.add(path)
        if not os.path.isfile(path):
            missing.append((path, by))
            continue
        files.append((path, "environment", by))
        body = first_map(path)
        ext = body.get("extends") if body else None
        for e in ext if isinstance(ext, list) else [ext]:
            if isinstance(e, str):
                queue.append((e, os.path.dirname(path), path))
    return files, missing, notes


def find_repos(top):
    repos = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        if "reconcile.yaml" in filenames:
            repos.append(dirpath)
            dirnames[:] = []  # a repository's own subdirectories are not examples
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
    return repos


# ------------------------------------------------------------------ modes


def warn(path, warnings):
    for w in warnings:
        sys.stderr.write("%s: warning: %s\n" % (path, w))


def run_files(args, validators):
    passed = failed = 0
    for path in args.files:
        ok, msg, warnings = check_file(path, validators, args.kind)
        warn(path, warnings)
        print("%s: ok" % path if ok else "%s: invalid: %s" % (path, msg))
        if ok == (args.expect == "valid"):
            passed += 1
        else:
            failed += 1
            if args.expect == "invalid":
                print("%s: FAILED: expected invalid" % path)
    return passed, failed


def run_examples(args, validators):
    passed = failed = 0
    repos = find_repos(args.examples)
    if not repos:
        print("%s: no configuration repository (no reconcile.yaml)" % args.examples)
    for repo in repos:
        files, missing, notes = repo_files(repo)
        for n in notes:
            sys.stderr.write("note: %s\n" % n)
        for path, kind, _ in files:
            ok, msg, warnings = check_file(path, validators, kind)
            warn(path, warnings)
            if ok:
                passed += 1
                print("%s: ok" % path)
            else:
                failed += 1
                print("%s: invalid: %s" % (path, msg))
        for path, by in missing:
            failed += 1
            print("%s: missing%s" % (path, " (named by %s)" % by if by else ""))
    return passed, failed


def run_cases(args, validators):
    passed = failed = 0
    top = args.cases
    for name in sorted(os.listdir(top)):
        case = os.path.join(top, name)
        if not os.path.isdir(case) or name.startswith("."):
            continue
        label = os.path.join(top, name)
        try:
            with open(os.path.join(case, "schema")) as f:
                expect = f.read().strip()
        except OSError:
            expect = None
        if expect not in ("valid", "invalid", "unparsable"):
            failed += 1
            print("%s: FAILED: %s" % (label, "no 'schema' file (valid, invalid or unparsable)"
                                       if expect is None else
                                       "the file 'schema' must say 'valid', 'invalid' or 'unparsable'"))
            continue
        files, _, _ = repo_files(case)  # missing files are the loader's business
        if expect == "unparsable":
            # a YAML-level problem: some file cannot be read as YAML at all
            # (syntax, encoding), or is beyond the limits a schema check
            # can look at (alias bombs, recursion, depth)
            why = None
            for path, kind, _ in files:
                try:
                    docs, _ = load_file(path)
                except Unreadable as e:
                    why = "%s: %s" % (os.path.relpath(path, case), e)
                    break
                if any(not d.validate for d in docs):
                    why = "%s: beyond the checker's limits" % os.path.relpath(path, case)
                    break
            if why:
                passed += 1
                print("%s: ok (unparsable: %s)" % (label, why))
            else:
                failed += 1
                print("%s: FAILED: expected a file the checker cannot read, but all parse" % label)
            continue
        bad = []
        for path, kind, _ in files:
            ok, msg, _ = check_file(path, validators, kind)
            if not ok:
                bad.append("%s: %s" % (os.path.relpath(path, case), msg))
        if expect == "invalid" and bad:
            passed += 1
            print("%s: ok (schema-invalid: %s)" % (label, bad[0]))
        elif expect == "valid" and not bad:
            passed += 1
            print("%s: ok (schema-valid, %d file%s)" % (label, len(files), "" if len(files) == 1 else "s"))
        elif expect == "invalid":
            failed += 1
            print("%s: FAILED: expected a schema error, but %s" % (
                label, "all %d file(s) are schema-valid" % len(files) if files
                else "there is no config file to check"))
        else:
            failed += 1
            print("%s: FAILED: expected schema-valid, but %s" % (label, bad[0]))
    return passed, failed


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Check reconcile configuration files against the JSON Schema.")
    ap.add_argument("--schema", required=True, help="schema/reconcile.schema.json")
    ap.add_argument("--expect", choices=("valid", "invalid"), default="valid",
                    help="what every FILE must be (default: valid)")
    ap.add_argument("--kind", choices=("auto", "root", "environment"), default="auto",
                    help="validate FILEs as this kind (default: auto: a document with "
                         "`version` or `environments` is reconcile.yaml)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--examples", metavar="DIR",
                      help="check every configuration repository under DIR (must be valid)")
    mode.add_argument("--cases", metavar="DIR",
                      help="check the corpus DIR/<case>/ against each case's 'schema' file")
    ap.add_argument("files", nargs="*", metavar="FILE")
    args = ap.parse_args(argv)

    if not (args.examples or args.cases or args.files):
        ap.error("give FILEs, --examples DIR or --cases DIR")
    if (args.examples or args.cases) and args.files:
        ap.error("FILEs cannot be combined with --examples or --cases")
    for d in (args.examples, args.cases):
        if d is not None and not os.path.isdir(d):
            ap.error("%s: not a directory" % d)
    try:
        with open(args.schema, encoding="utf-8") as f:
            schema = json.load(f)
        validators = make_validators(schema)
    except (OSError, ValueError, jsonschema.exceptions.SchemaError) as e:
        sys.stderr.write("check.py: %s: %s\n" % (args.schema, e))
        return 2

    if args.examples:
        passed, failed = run_examples(args, validators)
    elif args.cases:
        passed, failed = run_cases(args, validators)
    else:
        passed, failed = run_files(args, validators)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
