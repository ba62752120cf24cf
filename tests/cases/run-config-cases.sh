#!/bin/bash
# The invalid-configuration corpus: tests/cases/config/NNN-name/.
#
# Usage: run-config-cases.sh RECONCILE_BINARY CASES_DIR
#
# Each case directory is a small configuration repository (reconcile.yaml
# and the files it names) plus:
#   expected    the exact stderr of `reconcile validate` run in the case
#               directory with NO_COLOR=1 (diagnostics, source lines,
#               carets, the summary line)
#   schema      one word: invalid (the JSON Schema alone finds the problem),
#               valid (it cannot: missing files, cycles, references, ...),
#               unparsable (a YAML-level problem the schema checker cannot
#               even read); used by tests/schema/check.py, not here
#   README      optional, one line: what the case tests
#   status      optional, one line: the exit status validate must end
#               with, when not 1: 0 for a valid configuration whose
#               warnings (or their absence) are the point; stdout then
#               holds validate's "valid" line
#   prepare.sh  optional: run with bash in the temporary copy of the case
#               before `reconcile validate`, for inputs that cannot or should
#               not be committed (a file over 4 MiB, a named pipe)
#
# For each case (in sorted order) the case is copied with `cp -a` (symbolic
# links stay links) to a temporary directory, prepare.sh runs there, then
# `NO_COLOR=1 RECONCILE_BINARY validate` runs there with no DIR argument.
# A case passes when stderr equals `expected` byte for byte, the exit status
# is exactly 1 (an invalid configuration; not a crash, not a usage error)
# or the one `status` names, stdout is empty (unless the status is 0), the run finishes within RECONCILE_CASE_TIMEOUT seconds
# (default 30), and the string "hunter2" (the fake secret the corpus uses)
# appears in neither stdout nor stderr. The committed tree is never written.
#
# Prints `ok NNN-name` or `FAIL NNN-name` (with the reasons and a unified
# diff, NUL bytes shown as '@' and "hunter2" masked as "hunter*" so that the
# log does not repeat a leaked value) per case and finally `N passed, M failed`; exits 0 only if all passed.
# Needs bash and coreutils/diff only.

set -u

if [ $# -ne 2 ]; then
	echo "usage: $0 RECONCILE_BINARY CASES_DIR" >&2
	exit 2
fi

case $1 in
/*) bin=$1 ;;
*) bin=$PWD/$1 ;;
esac
cases=$2
timeout_s=${RECONCILE_CASE_TIMEOUT:-30}

if [ ! -x "$bin" ] || [ -d "$bin" ]; then
	echo "$0: $1: not an executable file" >&2
	exit 2
fi
if [ ! -d "$cases" ]; then
	echo "$0: $cases: not a directory" >&2
	exit 2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rc-config-cases.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

passed=0
failed=0

while IFS= read -r -d '' dir; do
	name=${dir##*/}
	work=$tmp/$name
	reasons=()

	if [ ! -f "$dir/expected" ]; then
		reasons+=("no 'expected' file")
	fi
	want_status=1
	if [ -f "$dir/status" ]; then
		want_status=$(head -n 1 "$dir/status")
		case $want_status in
		0 | 1) ;;
		*) reasons+=("the file 'status' must hold 0 or 1"); want_status=1 ;;
		esac
	fi
	kind=$(head -n 1 "$dir/schema" 2>/dev/null)
	case $kind in
	valid | invalid | unparsable) ;;
	*) reasons+=("the file 'schema' must hold valid, invalid or unparsable") ;;
	esac
	if ! cp -a "$dir" "$work"; then
		reasons+=("cannot copy the case")
	elif [ -f "$work/prepare.sh" ] &&
		! (cd "$work" && bash ./prepare.sh) >"$tmp/prepare.log" 2>&1; then
		reasons+=("prepare.sh failed: $(head -c 2000 "$tmp/prepare.log" | tr '\000' '@')")
	else
		# No DIR argument: diagnostics name paths relative to the case.
		(cd "$work" && NO_COLOR=1 exec timeout -k 5 "$timeout_s" "$bin" validate) \
			>"$tmp/stdout" 2>"$tmp/stderr" </dev/null
		status=$?
		if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
			reasons+=("timed out after ${timeout_s}s (exit status $status)")
		elif [ "$status" -ne "$want_status" ]; then
			reasons+=("exit status $status, expected $want_status")
		fi
		if [ "$want_status" -ne 0 ] && [ -s "$tmp/stdout" ]; then
			reasons+=("stdout is not empty: $(head -c 500 "$tmp/stdout" | tr '\000' '@' |
				sed 's/hunter2/hunter*/g')")
		fi
		if grep -q -a -F hunter2 "$tmp/stdout" "$tmp/stderr"; then
			reasons+=("the secret value (hunter2...) was printed")
		fi
		if [ -f "$dir/expected" ] && ! cmp -s "$dir/expected" "$tmp/stderr"; then
			reasons+=("stderr differs from expected:")
			reasons+=("$(diff -u -a --label "$name/expected" --label "$name/stderr" \
				"$dir/expected" "$tmp/stderr" | head -n 200 | tr '\000' '@' |
				sed 's/hunter2/hunter*/g')")
		fi
	fi

	if [ ${#reasons[@]} -eq 0 ]; then
		echo "ok $name"
		passed=$((passed + 1))
	else
		echo "FAIL $name"
		for r in "${reasons[@]}"; do
			printf '%s\n' "$r" | sed 's/^/    /'
		done
		failed=$((failed + 1))
	fi
	chmod -R u+w "$work" 2>/dev/null
	rm -rf "$work"
done < <(find "$cases" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -print0 | LC_ALL=C sort -z)

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
