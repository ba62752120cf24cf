#!/usr/bin/python3
"""The leak sweep's search: every file under some roots searched for
secret values and their encodings (base64, standard and URL-safe, with and
without padding; percent- and form-encoded). Each hit is reported as file,
offset, value number and form, never the value.

As a program (tests/leak/run.sh):
    sweep.py VALUES SKIP ROOT...
VALUES and SKIP are files of NUL-separated values and of paths left out;
prints "file:offset: canary #i (form)" per hit and a summary; exit 1 on
any hit. As a module: needles(), search() (tests/crash/sweep.py), sweep()
(tests/soak/soak.py).
"""
import base64
import os
import re
import sys
import urllib.parse


def needles(values):
    """[(i, form name, bytes)] for each value (bytes) and its encodings."""
    out = []
    for i, v in enumerate(values):
        forms = {"value": v}
        for name, enc in (("base64", base64.b64encode),
                          ("base64url", base64.urlsafe_b64encode)):
            e = enc(v)
            forms[name] = e
            forms[name + " unpadded"] = e.rstrip(b"=")
        pct = urllib.parse.quote(v, safe="").encode()
        forms["percent-encoded"] = pct
        forms["percent-encoded, lowercase"] = re.sub(
            rb"%[0-9A-F]{2}", lambda m: m.group(0).lower(), pct)
        forms["form-encoded"] = urllib.parse.quote_plus(v, safe="").encode()
        seen = set()
        for name, f in forms.items():
            if f not in seen:
                seen.add(f)
                out.append((i, name, f))
    return out


def search(found, roots, skip=()):
    """Searches every file under roots (files or directories) for the
    needles in found; returns (hits as "file:offset: canary #i (form)",
    files read). Paths in skip (real paths) are left out."""
    skip = {os.path.realpath(p) for p in skip}
    hits, files = [], 0

    def one(p):
        nonlocal files
        if os.path.realpath(p) in skip or os.path.islink(p) or not os.path.isfile(p):
            return
        try:
            with open(p, "rb") as fh:
                data = fh.read()
        except OSError as e:
            hits.append(f"cannot read {p}: {e.strerror}")
            return
        files += 1
        for i, name, f in found:
            at = data.find(f)
            while at >= 0:
                hits.append(f"{p}:{at}: canary #{i} ({name})")
                at = data.find(f, at + 1)

    for top in roots:
        if os.path.isfile(top):
            one(top)
            continue
        for d, dirs, names in os.walk(top):
            if os.path.realpath(d) in skip:
                dirs[:] = []
                continue
            dirs[:] = [x for x in dirs if os.path.realpath(os.path.join(d, x)) not in skip]
            for n in names:
                one(os.path.join(d, n))
    return hits, files


def sweep(values, skip, tops, say=print):
    """(number of hits, files read) for values (bytes) under tops, each
    hit passed to say."""
    hits, files = search(needles(values), tops, skip)
    for h in hits:
        say(h)
    return len(hits), files


def main():
    values = [v for v in open(sys.argv[1], "rb").read().split(b"\0") if v]
    skip = [p for p in open(sys.argv[2], "rb").read().decode().split("\0") if p]
    found = needles(values)
    hits, files = search(found, sys.argv[3:], skip)
    for h in hits:
        print(h)
    print(f"swept {files} files for {len(values)} values in {len(found)} forms: {len(hits)} hits")
    sys.exit(1 if hits else 0)


if __name__ == "__main__":
    main()
