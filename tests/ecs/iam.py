#!/usr/bin/env python3
"""docs/drivers/ecs.md's IAM policy against the ECS driver's calls.

Every operation drivers/ecs*.c passes to its call functions (ecs_call,
ecs_list: ECS; sm->call: Secrets Manager) must be allowed by the policy
reconcile needs, the first JSON block of the doc's "IAM policy" section,
as ecs:<Op> or secretsmanager:<Op>; every JSON block there must parse;
and the policy allows no ECS or Secrets Manager action the driver does
not call. A call whose operation is not a string literal is an error
(the check could not see it), except where a call function passes on
its own op.

    iam.py SOURCE_ROOT
"""
import glob
import json
import os
import re
import sys

# call function -> the IAM service prefix of the operations it sends
CALLS = {'ecs_call': 'ecs', 'ecs_list': 'ecs', 'sm->call': 'secretsmanager'}
# the argument name of a call function that passes on its own operation
FORWARDED = 'op'
# actions of the policy that are not API calls of the driver
NOT_CALLS = {'iam:PassRole'}


def strip_comments(src):
    src = re.sub(r'/\*.*?\*/', lambda m: '\n' * m.group().count('\n'), src, flags=re.S)
    return re.sub(r'//[^\n]*', '', src)


def args(src, i):
    """The first two arguments of the call whose '(' is at src[i]."""
    depth, out, cur = 0, [], ''
    for ch in src[i + 1:]:
        if ch in '([{':
            depth += 1
        elif ch in ')]}':
            if depth == 0:
                break
            depth -= 1
        elif ch == ',' and depth == 0:
            out.append(cur.strip())
            cur = ''
            if len(out) == 2:
                return out
            continue
        cur += ch
    out.append(cur.strip())
    return out


def driver_calls(root):
    found, errors = {}, []
    pattern = re.compile(r'(?<![\w>])(ecs_call|ecs_list|sm->call)\s*\(')
    for path in sorted(glob.glob(os.path.join(root, 'drivers', 'ecs*.c'))):
        src = strip_comments(open(path, encoding='utf-8').read())
        for m in pattern.finditer(src):
            a = args(src, m.end() - 1)
            line = src.count('\n', 0, m.start()) + 1
            where = '%s:%d' % (os.path.relpath(path, root), line)
            if len(a) < 2:
                errors.append('%s: %s with fewer than two arguments' % (where, m.group(1)))
                continue
            if re.search(r'\b(const|char|int|void)\b|\*\s*\w+$', a[0]):
                continue  # the definition or a declaration
            lit = re.fullmatch(r'"([A-Za-z]+)"', a[1])
            if lit:
                found.setdefault('%s:%s' % (CALLS[m.group(1)], lit.group(1)), where)
            elif a[1] != FORWARDED:
                errors.append('%s: %s of an operation that is not a string literal (%s): '
                              'this check cannot see it' % (where, m.group(1), a[1]))
    return found, errors


def doc_policies(root):
    doc = open(os.path.join(root, 'docs', 'drivers', 'ecs.md'), encoding='utf-8').read()
    m = re.search(r'^## IAM policy\n(.*?)(?=^## )', doc, flags=re.S | re.M)
    if not m:
        return None, ['docs/drivers/ecs.md has no "## IAM policy" section']
    blocks = re.findall(r'^```json\n(.*?)^```', m.group(1), flags=re.S | re.M)
    policies, errors = [], []
    for n, b in enumerate(blocks, 1):
        try:
            policies.append(json.loads(b))
        except ValueError as e:
            policies.append(None)
            errors.append('the IAM policy section\'s JSON block %d does not parse: %s' % (n, e))
    if not blocks:
        errors.append('the IAM policy section has no ```json block')
    return policies, errors


def actions(policy):
    out = set()
    for st in policy.get('Statement', []):
        if st.get('Effect') != 'Allow':
            continue
        a = st.get('Action', [])
        out.update([a] if isinstance(a, str) else a)
    return out


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..', '..')
    calls, errors = driver_calls(root)
    policies, perr = doc_policies(root)
    errors += perr
    if policies and policies[0] is not None:
        allowed = actions(policies[0])
        for op, where in sorted(calls.items()):
            if op not in allowed:
                errors.append('%s calls %s, which the IAM policy in docs/drivers/ecs.md '
                              'does not allow: add "%s" to it' % (where, op.split(':')[1], op))
        for a in sorted(allowed - set(calls) - NOT_CALLS):
            errors.append('the IAM policy in docs/drivers/ecs.md allows %s, which the driver '
                          'never calls: remove it (least privilege)' % a)
    if len(calls) < 10:
        errors.append('only %d operations found in drivers/ecs*.c: the extraction is broken' % len(calls))
    for e in errors:
        print('FAIL ' + e)
    print('%d operations of drivers/ecs*.c checked against the policy: %s' % (
        len(calls), ' '.join(sorted(calls))))
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
