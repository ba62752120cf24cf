#!/usr/bin/python3
"""The leak sweep's search (run.sh, tests/soak/soak.py): every file under
the given trees, but the skipped paths, searched for each secret value,
its base64 (standard and URL-safe, with and without padding) and its
percent- and form-encoded forms. A hit is printed as file, offset and
which canary (never the value).
    sweep.py CANARIES SKIP TREE...
CANARIES and SKIP hold NUL-separated values and paths. Exit 1 on a hit."""

import base64
import os
import re
import sys
import urllib.parse


def needles(values):
    """(canary number, form name, bytes) for every form of every value."""
    out = []
    for i, v in enumerate(values):
        forms = {"value": v}
        for name, enc in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
            e = enc(v)
            forms[name] = e
            forms[name + " unpadded"] = e.rstrip(b"=")
        pct = urllib.parse.quote(v, safe="").encode()
        forms["percent-encoded"] = pct
        forms["percent-encoded, lowercase"] = re.sub(rb"%[0-9A-F]{2}", lambda m: m.group(0).lower(), pct)
        forms["form-encoded"] = urllib.parse.quote_plus(v, safe="").encode()
        seen = set()
        for name, f in forms.items():
            if f not in seen:
                seen.add(f)
                out.append((i, name, f))
    return out


def sweep(values, skip, tops, say=print):
    """(hits, files searched): values are bytes, skip real paths."""
    forms = needles(values)
    skip = {os.path.realpath(p) for p in skip}
    hits = files = 0
    for top in tops:
        for d, dirs, names in os.walk(top):
            if os.path.realpath(d) in skip:
                dirs[:] = []
                continue
            dirs[:] = [x for x in dirs if os.path.realpath(os.path.join(d, x)) not in skip]
            for n in names:
                p = os.path.join(d, n)
                if os.path.realpath(p) in skip or os.path.islink(p) or not os.path.isfile(p):
                    continue
                try:
                    data = open(p, "rb").read()
                except OSError as e:
                    say(f"cannot read {p}: {e.strerror}")
                    hits += 1
                    continue
                files += 1
                for i, name, f in forms:
                    at = data.find(f)
                    while at >= 0:
                        say(f"{p}:{at}: canary #{i} ({name})")
                        hits += 1
                        at = data.find(f, at + 1)
    return hits, files


def main():
    values = [v for v in open(sys.argv[1], "rb").read().split(b"\0") if v]
    skip = [p for p in open(sys.argv[2], "rb").read().decode().split("\0") if p]
    hits, files = sweep(values, skip, sys.argv[3:])
    print(f"swept {files} files for {len(values)} values in {len(needles(values))} forms: {hits} hits")
    return 1 if hits else 0


if __name__ == "__main__":
    sys.exit(main())
