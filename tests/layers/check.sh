#!/usr/bin/env bash
# The layers of the tree, bottom-up, and the one rule between them: a file
# includes only from its own folder or from a lower layer.
#
#   0  reconciler/base/     the base every module uses
#   1  schema/  state/      the configuration language; the journal, locks
#                           and history (neither includes the other)
#   2  drivers/             the driver contract, the resource model, drivers
#   3  reconciler/          the engine: source, plan, diff, apply, rollback
#   4  reconciler/controller/  the controller: loop, HTTP API, webhooks,
#                           leader election, shards
#   5  reconciler/cli/      the commands
#
# Usage: check.sh ROOT. Prints one line per include that breaks the rule,
# "FILE:LINE: LAYER includes 'HEADER' from LAYER above it", and exits 1
# when there is one.
set -euo pipefail
root=${1:?usage: check.sh ROOT}
cd "$root"

# The layer of a path: "rank folder".
layer_of() {
	case $1 in
	reconciler/base/*) echo "0 reconciler/base" ;;
	schema/*) echo "1 schema" ;;
	state/*) echo "1 state" ;;
	drivers/*) echo "2 drivers" ;;
	reconciler/controller/*) echo "4 reconciler/controller" ;;
	reconciler/cli/*) echo "5 reconciler/cli" ;;
	reconciler/*/*) echo "9 ${1%/*}" ;; # a folder without a layer
	reconciler/*) echo "3 reconciler" ;;
	*) echo "" ;;
	esac
}

bad=0
checked=0
while IFS= read -r f; do
	read -r rank dir <<<"$(layer_of "$f")"
	if [ "$rank" = 9 ]; then
		echo "$f: the folder '$dir' has no layer (add it to tests/layers/check.sh)"
		bad=1
		continue
	fi
	checked=$((checked + 1))
	while IFS=: read -r line inc; do
		read -r irank idir <<<"$(layer_of "$inc")"
		[ -n "$irank" ] || continue
		if [ "$idir" = "$dir" ]; then
			continue
		fi
		if [ "$irank" -ge "$rank" ]; then
			echo "$f:$line: $dir includes '$inc' from $idir," \
				"which is not below it"
			bad=1
		fi
	done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" |
		sed 's/^\([0-9]*\):[^"]*"\([^"]*\)".*/\1:\2/' || true)
done < <(find reconciler schema state drivers -name '*.[ch]' 2>/dev/null | sort)
if [ "$checked" -eq 0 ]; then
	echo "no source files under $root"
	exit 1
fi
exit $bad
