#!/usr/bin/env bash
# Where environments come from in git, end to end on the local driver:
# policy.branch reads an environment from its branch (and a saved plan is
# stale once that branch moves), --ref pins everything, a work tree on that
# branch is read as it is; a generated environment whose branch is deleted
# is noted until its ttl passes, then planned for deletion and removed, and
# forgotten once it owns nothing; with prune off it is kept.
#   branches.sh RECONCILE_BINARY
set -u
rc_bin=$(realpath "$1")
export NO_COLOR=1
. "$(dirname "$0")/../lib.sh"
work=$(mktemp -d /tmp/rc-branches-XXXXXX)
export RECONCILE_STATE_DIR=$work/state XDG_CACHE_HOME=$work/cache
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com
repo=$work/repo

project=e2eb$$ # this run's own (see engine/run.sh)
owned() { owned_by "$project/$1/"; } # the processes of environment $1
cleanup() {
	"$rc_bin" destroy "$repo" --auto-approve >/dev/null 2>&1
	for env in prod rev-pr-1 rev-pr-2; do for p in $(owned $env); do kill -9 "$p" 2>/dev/null; done; done
	rm -rf "$work"
}
trap cleanup EXIT
count() { owned "$1" | wc -l; }
expect_count() { # NAME ENV N
	local n
	for _ in $(seq 1 50); do n=$(count "$2"); [ "$n" -eq "$3" ] && break; sleep 0.1; done
	[ "$n" -eq "$3" ] && ok "$1" || bad "$1" "$n processes of $2, expected $3"
}

write_config() { # prod-replicas review-prune
	cat >"$repo/reconcile.yaml" <<YAML
version: 1
project: $project
environments:
  prod:
    target: { driver: local }
    policy: { branch: production, prune: true }
    services:
      worker:
        command: [python3, -c, "import time; time.sleep(3600)"]
        replicas: $1
  review:
    for_each:
      branches: { repository: self, match: "pr-*" }
    name: "rev-{{ item.name }}"
    ttl: 1h
    target: { driver: local }
    policy: { prune: ${2:-true} }
    services:
      worker:
        command: [python3, -c, "import time; time.sleep(3600)"]
YAML
}
commit() { git -C "$repo" add -A && git -C "$repo" commit -qm "$1"; }
on_branch() { # BRANCH REPLICAS: commits the production definition there
	git -C "$repo" checkout -q "$1" && write_config "$2" && commit "prod x$2" && git -C "$repo" checkout -q main
}
gone_since_past() { # ENV: pretend its branch went away two hours ago
	/usr/bin/python3 - "$RECONCILE_STATE_DIR/environments.json" "$1" <<'PY'
import json, sys, datetime
p, env = sys.argv[1], sys.argv[2]
r = json.load(open(p))
t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=2)
r["environments"][env]["gone_since"] = t.strftime("%Y-%m-%dT%H:%M:%SZ")
json.dump(r, open(p, "w"))
PY
}

mkdir -p "$repo"
git -C "$repo" init -q -b main
write_config 1 && commit "main"
git -C "$repo" branch production
on_branch production 2
git -C "$repo" branch pr-1
git -C "$repo" branch pr-2
prod_sha=$(git -C "$repo" rev-parse production)

# --- policy.branch: prod is read from branch production, not from main
run 2 "plan" "$rc_bin" plan "$repo"
has "prod is read from its branch" "$out" "prod (local) from branch production at ${prod_sha:0:7}"
has "review environments are generated from the branches" "$out" "rev-pr-2 (local)"
run 2 "plan --output json" "$rc_bin" plan "$repo" --output json
env_commit=$(printf '%s' "$out" | /usr/bin/python3 -c 'import json,sys; p=json.load(sys.stdin); print([e["commit"] for e in p["environments"] if e["name"]=="prod"][0])' 2>&1)
[ "$env_commit" = "$prod_sha" ] && ok "the plan records prod's commit" || bad "the plan records prod's commit" "$env_commit vs $prod_sha"
run 0 "apply" "$rc_bin" apply "$repo" --auto-approve
expect_count "prod runs the production branch's 2 replicas" prod 2
expect_count "rev-pr-1 runs" rev-pr-1 1
expect_count "rev-pr-2 runs" rev-pr-2 1
run 0 "converged" "$rc_bin" plan "$repo"
# -e one generated environment builds only that one; its siblings exist
run 0 "plan -e one generated environment" "$rc_bin" plan "$repo" -e rev-pr-1
hasnt "-e rev-pr-1 takes no sibling for gone" "$out" "is gone since"
hasnt "-e rev-pr-1 records no sibling as gone" "$(cat "$RECONCILE_STATE_DIR/environments.json")" "\"gone_since\": \"2"
run 2 "plan from a file:// URL" "$rc_bin" plan "file://$repo"
has "a URL source lists the branches of self" "$out" "rev-pr-1 (local)"
run 2 "plan from a file:// URL, JSON" "$rc_bin" plan "file://$repo" --output json
env_commit=$(printf '%s' "$out" | /usr/bin/python3 -c 'import json,sys; p=json.load(sys.stdin); print([e["commit"] for e in p["environments"] if e["name"]=="prod"][0])' 2>&1)
[ "$env_commit" = "$prod_sha" ] && ok "a URL source reads prod from its branch too" || bad "a URL source reads prod from its branch too" "$env_commit vs $prod_sha"

# --- a saved plan is stale once the environment's branch moves
on_branch production 3
run 2 "plan -o" "$rc_bin" plan "$repo" -o "$work/saved.json"
has "the new commit of production is planned" "$out" "replicas: 2 -> 3"
on_branch production 4
run 1 "a saved plan is refused when prod's branch moved" "$rc_bin" apply "$work/saved.json"
has "the refusal names the branch" "$out" "branch 'production' moved"
run 0 "apply the branch's tip" "$rc_bin" apply "$repo" --auto-approve
expect_count "prod follows its branch" prod 4

# --- --ref pins every environment to one commit
run 2 "plan --ref main" "$rc_bin" plan "$repo" --ref main
has "--ref main reads prod from main" "$out" "replicas: 4 -> 1"
hasnt "--ref main does not read the branch" "$out" "from branch production"

# --- a work tree on the branch is read as it is
git -C "$repo" checkout -q production
write_config 5
run 2 "plan in a work tree on production" "$rc_bin" plan "$repo"
has "uncommitted edits on the branch are planned" "$out" "replicas: 4 -> 5"
git -C "$repo" checkout -q -- . && git -C "$repo" checkout -q main

# --- a generated environment whose branch is gone
git -C "$repo" branch -q -D pr-2
run 0 "plan after the branch is deleted: nothing to do yet" "$rc_bin" plan "$repo"
has "the plan notes the gone environment and its ttl" "$out" "environment 'rev-pr-2' (made by 'review') is gone since"
has "the note says when it goes" "$out" "ttl of 1h has passed"
expect_count "rev-pr-2 still runs within its ttl" rev-pr-2 1
gone_since_past rev-pr-2
run 2 "plan past the ttl" "$rc_bin" plan "$repo"
has "past its ttl, what it owns is deleted" "$out" "- service worker  (environment gone since"
hasnt "other review environments are untouched" "$out" "rev-pr-1 (local)"
run 0 "apply the removal" "$rc_bin" apply "$repo" --auto-approve
expect_count "rev-pr-2 is gone" rev-pr-2 0
expect_count "rev-pr-1 still runs" rev-pr-1 1
run 0 "converged after the removal" "$rc_bin" plan "$repo"
hasnt "an environment that owns nothing is forgotten" "$(cat "$RECONCILE_STATE_DIR/environments.json")" "rev-pr-2"

# --- with prune off, a gone environment is kept
write_config 1 false && commit "review does not prune"
run 0 "plan records that review does not prune" "$rc_bin" plan "$repo"
git -C "$repo" branch -q -D pr-1
run 0 "plan with prune off" "$rc_bin" plan "$repo"
gone_since_past rev-pr-1
run 0 "plan with prune off, past the ttl" "$rc_bin" plan "$repo"
has "prune off keeps it, and says how to remove it" "$out" "policy.prune is off ('reconcile destroy -e review' removes it)"
expect_count "rev-pr-1 still runs" rev-pr-1 1
run 0 "destroy -e the gone environment" "$rc_bin" destroy "$repo" -e rev-pr-1 --auto-approve
expect_count "destroy removed rev-pr-1" rev-pr-1 0

finish
