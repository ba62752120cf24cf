#!/usr/bin/env bash
# The layer check finds every kind of breach in a tree made to hold them
# (fixture/), says exactly what fixture/expected says, and exits 1.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(bash "$here/check.sh" "$here/fixture")
rc=$?
if [ $rc -ne 1 ]; then
	echo "FAIL: check.sh exited $rc on the fixture, expected 1"
	exit 1
fi
if ! diff -u "$here/fixture/expected" <(printf '%s\n' "$out"); then
	echo "FAIL: check.sh's report differs from fixture/expected"
	exit 1
fi
echo "ok: the fixture's $(wc -l <"$here/fixture/expected") breaches are reported"
