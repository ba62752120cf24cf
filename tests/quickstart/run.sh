#!/usr/bin/env bash
# The quickstart as a new user meets it. In a copy of the tree (its own
# build/ and .reconcile/), with a python3 first on PATH that cannot import
# Debian's packages (as pyenv's or a virtualenv's cannot), the README's
# first command runs verbatim; then what the user looks at: the API's
# items, which must come from PostgreSQL, and the frontend's page. Then the
# ports: the quickstart from a second copy, and a program holding 8080,
# each fail at once naming the port and the program. destroy leaves no
# process and frees the ports.
#   run.sh SOURCE_DIR
# Exits 77 (skipped) when port 5000 or 8080 is in use before it starts.
set -u
src=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
export NO_COLOR=1
. "$here/../lib.sh"
SHOW=4000
unset RECONCILE_STATE_DIR
example=examples/local-quickstart

# Whether a socket listens on TCP port $1 (any address, IPv4 or IPv6).
listening() {
	awk -v p="$(printf ':%04X' "$1")" \
		'$4 == "0A" && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null
}
for p in 5000 8080; do
	if listening $p; then
		echo "skipped: port $p is in use (a quickstart of yours?" \
			"'build/reconcile destroy $example' stops it)"
		exit 77
	fi
done

work=$(mktemp -d /tmp/rc-quickstart-XXXXXX)
chmod 755 "$work" # as root, PostgreSQL's user must reach its cluster
a=$work/a b=$work/b
rc_bin=$a/build/reconcile
state_of() { realpath -m "$1/$example/.reconcile"; }
blocker=
cleanup() {
	[ -n "$blocker" ] && kill "$blocker" 2>/dev/null
	for copy in "$b" "$a"; do
		[ -x "$rc_bin" ] && [ -d "$copy/$example/.reconcile" ] &&
			(cd "$copy" && "$rc_bin" destroy --auto-approve "$example") >/dev/null 2>&1
		for p in $(owned_by quickstart/ "$(state_of "$copy")"); do kill -9 "$p" 2>/dev/null; done
	done
	rm -rf "$work"
}
trap cleanup EXIT

# The tree as a clone would hold it, with uncommitted changes; no build
# or state directories.
copy_tree() {
	mkdir -p "$1"
	if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git -C "$src" ls-files -z --cached --others --exclude-standard |
			while IFS= read -r -d '' f; do
				[ -e "$src/$f" ] || [ -L "$src/$f" ] && printf '%s\0' "$f"
			done | tar -C "$src" --null -T - -cf - | tar -C "$1" -xf -
	else
		tar -C "$src" --exclude='./build*' --exclude=.reconcile --exclude=.git -cf - . |
			tar -C "$1" -xf -
	fi
}
# Seconds since $1 (from $SECONDS).
since() { echo $((SECONDS - $1)); }

# --- a python3 without Debian's packages first on PATH
mkdir -p "$work/bin" "$work/empty"
cat >"$work/bin/python3" <<'SH'
#!/bin/sh
# python3 without Debian's dist-packages (no site module), as a pyenv or
# virtualenv python3 is
exec /usr/bin/python3 -I -S "$@"
SH
chmod +x "$work/bin/python3"
export PATH="$work/bin:$PATH"
[ "$(command -v python3)" = "$work/bin/python3" ] && python3 -c 'import json' &&
	! python3 -c 'import flask' 2>/dev/null && ! python3 -c 'import psycopg2' 2>/dev/null &&
	ok "python3 first on PATH runs, without flask or psycopg2" ||
	{ bad "python3 first on PATH runs, without flask or psycopg2" "$(command -v python3)"; finish; exit; }

# --- the README's first command, verbatim, in a copy of the tree
copy_tree "$a"
cmd=$(awk '/^```sh/ { inside = 1; next } inside { print; exit }' "$a/README.md")
[ -n "$cmd" ] && ok "the README has a first command" || { bad "the README has a first command"; finish; exit; }
echo "# $cmd"
cd "$a" || exit 1
t=$SECONDS
if ! SHOW=0 run 0 "the README's first command" bash -c "$cmd"; then
	printf '%s\n' "$out" | tail -n 30 | sed 's/^/  /' # where it failed
	finish
	exit
fi
ok "the README's first command"
echo "# it took $(since $t)s"
has "it shows the plan" "$out" "\$ build/reconcile plan $example"
has "it shows the apply" "$out" "\$ build/reconcile apply --auto-approve $example"
has "the second plan has nothing to do" "$out" "No changes"
has "it says where to look" "$out" "http://localhost:8080/"

# --- what the user sees: items from PostgreSQL, and the page
items=$(curl -s --max-time 10 http://localhost:5000/api/items)
has "the API lists the items" "$items" '"name":"Write reconcile.yaml"'
hasnt "the API reports no error" "$items" '"error"'
url=$(/usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["body"]["env"]["DATABASE_URL"])' \
	"$(state_of "$a")/local/dev/services/api.json")
probe="row written by psql $$-$RANDOM"
run 0 "psql writes a row with the add-on's URL" psql -X -v ON_ERROR_STOP=1 -qAt "$url" \
	-c "INSERT INTO items (name) VALUES ('$probe')"
items=$(curl -s --max-time 10 http://localhost:5000/api/items)
has "the API answers with the row from PostgreSQL" "$items" "\"name\":\"$probe\""
rows=$(psql -X -qAt "$url" -c "SELECT count(*) FROM items")
api_rows=$(printf '%s' "$items" | /usr/bin/python3 -c 'import json, sys; print(len(json.load(sys.stdin)["items"]))')
[ -n "$rows" ] && [ "$rows" = "$api_rows" ] && ok "the API has as many items as the table has rows ($rows)" ||
	bad "the API has as many items as the table" "table: $rows, API: $api_rows"
page=$(curl -s --max-time 10 http://localhost:8080/)
has "the frontend serves its page" "$page" "<title>reconcile quickstart</title>"
has "the page loads its script" "$page" '<script src="app.js">'
has "the script asks the API" "$(curl -s --max-time 10 http://localhost:8080/app.js)" "/api/items"

# --- the quickstart from a second copy while the first runs
api_pid=$(owned_by quickstart/dev/api/ "$(state_of "$a")")
web_pid=$(owned_by quickstart/dev/frontend/ "$(state_of "$a")")
copy_tree "$b"
cd "$b" || exit 1
t=$SECONDS
run 1 "the quickstart from a second copy fails" "$example/try" "$rc_bin"
echo "# it took $(since $t)s"
has "naming port 5000 and the program" "$out" \
	"service 'api': port 5000 is in use by python3 (pid $api_pid: /usr/bin/python3 api/app.py), started by reconcile as quickstart/dev/api/0 for the state directory '$(state_of "$a")'; stop it or choose another port"
has "naming port 8080 and the program" "$out" \
	"service 'frontend': port 8080 is in use by python3 (pid $web_pid: /usr/bin/python3 -m http.server 8080 --directory frontend), started by reconcile as quickstart/dev/frontend/0"
has "at once" "$out" "dev/service api: failed (0."
hasnt "not after health checks" "$out" "not healthy"
t=$SECONDS
run 0 "destroy in the second copy" "$rc_bin" destroy --auto-approve "$example"
echo "# it took $(since $t)s"
has "the first copy still answers" "$(curl -s --max-time 10 http://localhost:5000/api/items)" "$probe"
[ -z "$(owned_by quickstart/ "$(state_of "$b")")" ] && ok "the second copy left no process" ||
	bad "the second copy left no process" "$(owned_by quickstart/ "$(state_of "$b")")"

# --- destroy the first: nothing left
cd "$a" || exit 1
t=$SECONDS
run 0 "destroy" "$rc_bin" destroy --auto-approve "$example"
echo "# it took $(since $t)s"
[ -z "$(owned_by quickstart/ "$(state_of "$a")")" ] && ok "destroy leaves no process" ||
	bad "destroy leaves no process" "$(owned_by quickstart/ "$(state_of "$a")")"
! listening 5000 && ! listening 8080 && ok "ports 5000 and 8080 are free" || bad "ports 5000 and 8080 are free"

# --- another program on 8080: the apply fails at once, naming it
(cd "$work/empty" && exec python3 -m http.server 8080 --bind 127.0.0.1 >/dev/null 2>&1) &
blocker=$!
for _ in $(seq 1 100); do listening 8080 && break; sleep 0.05; done
t=$SECONDS
run 1 "apply fails while another program holds 8080" "$rc_bin" apply --auto-approve "$example"
echo "# it took $(since $t)s"
has "naming port 8080 and the program" "$out" \
	"service 'frontend': port 8080 is in use by python3 (pid $blocker: /usr/bin/python3 -I -S -m http.server 8080 --bind 127.0.0.1); stop it or choose another port"
has "at once" "$out" "dev/service frontend: failed (0."
kill "$blocker"
wait "$blocker" 2>/dev/null
blocker=
run 0 "destroy after the failed apply" "$rc_bin" destroy --auto-approve "$example"
[ -z "$(owned_by quickstart/ "$(state_of "$a")")" ] && ok "and no process is left" ||
	bad "and no process is left" "$(owned_by quickstart/ "$(state_of "$a")")"
! listening 5000 && ! listening 8080 && ok "and the ports are free" || bad "and the ports are free"

cd /
echo "# $SECONDS seconds in all"
finish
