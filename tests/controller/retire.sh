#!/usr/bin/env bash
# The controller retires generated environments: a review environment per
# branch (for_each over the branches of the repository itself), served by
# a real `git daemon`, the local driver running one process per
# environment. A new branch is applied without anyone running reconcile;
# a deleted branch's environment is kept for its ttl, then everything it
# owns is deleted and it is forgotten, as `reconcile apply` does.
#   retire.sh RECONCILE_BINARY
set -u
rc_bin=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
export NO_COLOR=1
. "$here/../lib.sh"
work=$(mktemp -d /tmp/rc-ctl-retire-XXXXXX)
export RECONCILE_STATE_DIR=$work/state XDG_CACHE_HOME=$work/cache
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com
project=ctlret$$
base=$(free_ports 2)
gport=$base hport=$((base + 1))
url=git://127.0.0.1:$gport/cfg
repo=$work/git/cfg
daemon_pid= ctl_pid=
cleanup() {
	[ -n "$ctl_pid" ] && kill -9 "$ctl_pid" 2>/dev/null
	for p in $(owned_by "$project/"); do kill -9 "$p" 2>/dev/null; done
	[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null
	if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
count() { owned_by "$project/$1/" | wc -l; }
wait_count() { # ENV N SECONDS
	local end=$((SECONDS + $3))
	while [ $SECONDS -lt $end ]; do [ "$(count "$1")" -eq "$2" ] && return 0; sleep 0.2; done
	return 1
}

mkdir -p "$repo"
git -C "$repo" init -q -b main
cat >"$repo/reconcile.yaml" <<YAML
version: 1
project: $project
environments:
  review:
    for_each:
      branches: { repository: self, match: "pr-*" }
    name: "rev-{{ item.name }}"
    ttl: 3s
    policy: { prune: true }
    target: { driver: local }
    services:
      worker:
        command: [python3, -c, "import time; time.sleep(3600)"]
YAML
git -C "$repo" add -A && git -C "$repo" commit -qm main
git -C "$repo" branch pr-1
git daemon --reuseaddr --base-path="$work/git" --export-all --listen=127.0.0.1 --port=$gport "$work/git" >"$work/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 50); do git ls-remote "$url" >/dev/null 2>&1 && break; sleep 0.1; done

"$rc_bin" ${RC_LOG:+--log-level $RC_LOG} controller "$url" --listen 127.0.0.1:$hport --poll 1s --resync 2s \
	--state-dir "$RECONCILE_STATE_DIR" >"$work/ctl.log" 2>&1 &
ctl_pid=$!

wait_count rev-pr-1 1 30 && ok "the branch's environment is applied by the controller" ||
	bad "rev-pr-1 applied" "$(tail -20 "$work/ctl.log")"
git -C "$repo" branch pr-2
wait_count rev-pr-2 1 30 && ok "a new branch's environment is applied" ||
	bad "rev-pr-2 applied" "$(tail -20 "$work/ctl.log")"

# the branch is deleted: kept within its ttl, then retired
git -C "$repo" branch -q -D pr-1
t0=$SECONDS
sleep 1.5
[ "$(count rev-pr-1)" -eq 1 ] && ok "within its ttl, the gone environment still runs" ||
	bad "kept within the ttl" "$(count rev-pr-1) processes"
wait_count rev-pr-1 0 40 && ok "past its ttl, the controller deletes what it owned ($((SECONDS - t0)) s after the branch went)" ||
	bad "rev-pr-1 retired" "$(tail -30 "$work/ctl.log")"
[ "$(count rev-pr-2)" -eq 1 ] && ok "the other review environment still runs" || bad "rev-pr-2 untouched"
for _ in $(seq 50); do grep -q '"rev-pr-1"' "$RECONCILE_STATE_DIR/environments.json" || break; sleep 0.2; done
hasnt "the retired environment is forgotten once it owns nothing" "$(cat "$RECONCILE_STATE_DIR/environments.json")" '"rev-pr-1"'
has "the controller says why it deletes" "$(cat "$work/ctl.log")" "environment rev-pr-1: environment gone since"
run 0 "history" "$rc_bin" history --state-dir "$RECONCILE_STATE_DIR"
has "the retirement is an ordinary journaled run" "$out" "rev-pr-1"
hasnt "nothing was logged as an error" "$(grep -i 'error' "$work/ctl.log")" "error"

kill -TERM "$ctl_pid"
wait "$ctl_pid"
rc=$?
ctl_pid=
[ $rc -eq 0 ] && ok "SIGTERM: exit 0" || bad "SIGTERM" "exit $rc"
echo "passed $pass, failed $fail"
[ "$fail" -eq 0 ]
