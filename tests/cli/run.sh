#!/usr/bin/env bash
# CLI checks: what a user sees from reconcile --help, validate and show,
# including a branch generator against a real `git daemon` on loopback.
#   run.sh RECONCILE_BINARY SOURCE_DIR
set -u
rc_bin=$1
src=$2
export NO_COLOR=1
. "$(dirname "$0")/../lib.sh"
work=$(mktemp -d /tmp/rc-cli-XXXXXX)
daemon_pid=
cleanup() {
	[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT


# expect NAME EXIT_CODE COMMAND... : runs, keeps stdout/stderr in $out/$err
expect() {
	local name=$1 want=$2
	shift 2
	"$@" >"$work/out" 2>"$work/err"
	local got=$?
	out=$(cat "$work/out")
	err=$(cat "$work/err")
	if [ "$got" -ne "$want" ]; then
		bad "$name" "exit $got, expected $want" "stdout: ${out:0:400}" "stderr: ${err:0:400}"
		return 1
	fi
	return 0
}
contains() { # NAME HAYSTACK NEEDLE
	case "$2" in *"$3"*) ok "$1" ;; *) bad "$1" "missing: $3" "in: ${2:0:600}" ;; esac
}

# --- help and version, git's and terraform's conventions
expect "version" 0 "$rc_bin" --version && contains "version text" "$out" "reconcile version "
expect "help" 0 "$rc_bin" --help && contains "help lists validate" "$out" "validate   Check a configuration repository"
expect "help show" 0 "$rc_bin" help show && contains "help show usage" "$out" "usage: reconcile show [<dir>] [-e <env>]..."
expect "show --help" 0 "$rc_bin" show --help && contains "show --help usage" "$out" "usage: reconcile show"
expect "validate -h" 0 "$rc_bin" validate -h && contains "validate -h usage" "$out" "usage: reconcile validate"
expect "no command" 129 "$rc_bin" && contains "no command prints usage" "$err" "usage: reconcile"
expect "unknown command" 129 "$rc_bin" valdate && contains "unknown command" "$err" "'valdate' is not a reconcile command"
expect "unknown option" 129 "$rc_bin" validate --bogus && contains "unknown option usage" "$err" "usage: reconcile validate"
expect "extra argument" 129 "$rc_bin" validate a b && contains "extra argument" "$err" "unexpected argument 'b'"
expect "bad output" 129 "$rc_bin" show --output xml && contains "bad output" "$err" "unknown output format 'xml'"

# --- every example is valid, and show gives JSON and YAML
for ex in "$src"/examples/*/; do
	name=$(basename "$ex")
	[ -f "$ex/reconcile.yaml" ] || continue
	if expect "validate $name" 0 "$rc_bin" validate "$ex"; then
		contains "validate $name says valid" "$out" "valid:"
	fi
	"$rc_bin" show -o json "$ex" >"$work/out" 2>"$work/err"
	code=$?
	if [ $code -eq 0 ]; then
		if python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["format_version"]==1 and d["environments"]' <"$work/out"; then
			ok "show $name is JSON"
		else
			bad "show $name is JSON" "$(head -c 400 "$work/out")"
		fi
	else
		# a generator over a remote repository cannot be listed here (no
		# network): show must say exactly that, and nothing else
		contains "show $name: only the remote listing fails" "$(cat "$work/err")" "cannot list the branches of repository"
		[ "$(grep -c ': error: ' "$work/err")" -eq 1 ] || bad "show $name: one error" "$(cat "$work/err")"
	fi
done

# --- validate: every diagnostic, exit 1, JSON diagnostics
mkdir -p "$work/bad/envs"
cat >"$work/bad/reconcile.yaml" <<'YAML'
version: 1
project: shop
environments:
  web: { file: envs/web.yaml }
YAML
cat >"$work/bad/envs/web.yaml" <<'YAML'
target: { driver: local }
services:
  api:
    command: [python3, api.py]
    replica: 2
secrets:
  PW: hunter2-cli
YAML
expect "validate invalid" 1 "$rc_bin" validate "$work/bad"
contains "validate shows file:line:col" "$err" "$work/bad/envs/web.yaml:5:5: error: unknown key 'replica' in service 'api'; did you mean 'replicas'?"
contains "validate shows caret" "$err" "       |     ^~~~~~~"
contains "validate summary" "$err" "2 errors"
case "$err$out" in *hunter2*) bad "validate hides secrets" "secret value printed" ;; *) ok "validate hides secrets" ;; esac
expect "validate json" 1 "$rc_bin" validate -o json "$work/bad"
if printf '%s' "$out" | python3 -c '
import json,sys
d=json.load(sys.stdin)
assert d["valid"] is False and d["errors"]==2, d
m=d["diagnostics"][0]
assert m["line"]==5 and m["column"]==5 and m["severity"]=="error", m
assert "hunter2" not in json.dumps(d)
'; then ok "validate json diagnostics"; else bad "validate json diagnostics" "$out"; fi
expect "show invalid" 1 "$rc_bin" show "$work/bad"
expect "validate missing dir" 1 "$rc_bin" validate "$work/nope"
contains "missing dir message" "$err" "cannot open the configuration directory"

# --- show: overlays, -e, YAML output, secrets as references
mkdir -p "$work/good/envs"
cat >"$work/good/reconcile.yaml" <<'YAML'
version: 1
project: shop
environments:
  staging: { file: envs/staging.yaml, policy: { branch: main } }
  production: { file: envs/production.yaml }
YAML
cat >"$work/good/envs/base.yaml" <<'YAML'
target: { driver: heroku, app: shop-base, region: eu }
services:
  web: { image: "registry.heroku.com/shop/web:1", size: standard-1x, port: 8000 }
config: { MODE: base, FEATURE: "yes" }
secrets: { SECRET_KEY: { env: SHOP_SECRET_KEY } }
YAML
cat >"$work/good/envs/staging.yaml" <<'YAML'
extends: base.yaml
target: { app: shop-staging }
config: { MODE: STAGING }
YAML
cat >"$work/good/envs/production.yaml" <<'YAML'
extends: base.yaml
target: { app: shop-production }
services: { web: { replicas: 3 } }
config: { MODE: PRODUCTION, FEATURE: null }
policy: { apply: manual }
YAML
SHOP_SECRET_KEY=hunter2-env expect "show yaml" 0 "$rc_bin" show -e production "$work/good"
expected_yaml='format_version: 1
project: shop
environments:
- name: production
  file: envs/production.yaml
  target:
    driver: heroku
    app: shop-production
    region: eu
  policy:
    apply: manual
    prune: false
    drift: report
  depends_on: []
  services:
    web:
      image: registry.heroku.com/shop/web:1
      replicas: 3
      size: standard-1x
      port: 8000
  config:
    MODE: PRODUCTION
  secrets:
    SECRET_KEY:
      env: SHOP_SECRET_KEY
  addons: {}
  hooks:
    pre_apply: []
    post_apply: []
    on_rollback: []
  resources: []'
if [ "$out" = "$expected_yaml" ]; then ok "show yaml is the resolved environment"; else
	bad "show yaml is the resolved environment" "$(diff <(echo "$expected_yaml") <(echo "$out"))"; fi
case "$out" in *hunter2*) bad "show hides secrets" ;; *) ok "show hides secrets" ;; esac
expect "show -e unknown" 1 "$rc_bin" show -e nope "$work/good"
contains "show -e unknown message" "$err" "no environment 'nope'"
expect "show json staging" 0 "$rc_bin" show -o json -e staging "$work/good"
if printf '%s' "$out" | python3 -c '
import json,sys
d=json.load(sys.stdin)
e=d["environments"]
assert [x["name"] for x in e]==["staging"], e
assert e[0]["config"]=={"MODE":"STAGING","FEATURE":"yes"}, e[0]["config"]
assert e[0]["policy"]["branch"]=="main"
'; then ok "show json staging"; else bad "show json staging" "$out"; fi

# --- a branch generator over a real git daemon
mkdir -p "$work/git/app"
(
	cd "$work/git/app" && git init -q -b main && git -c user.name=t -c user.email=t@e commit -q --allow-empty -m init &&
	git branch pr-10 && git branch pr-11 && git branch feature/x
) || bad "git setup"
port=$(free_ports 2)
git daemon --reuseaddr --base-path="$work/git" --export-all --listen=127.0.0.1 --port=$port "$work/git" >"$work/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 50); do
	git ls-remote "git://127.0.0.1:$port/app" >/dev/null 2>&1 && break
	sleep 0.1
done
mkdir -p "$work/gen"
cat >"$work/gen/reconcile.yaml" <<YAML
version: 1
project: app
repositories:
  app: { url: "git://127.0.0.1:$port/app" }
environments:
  review:
    for_each: { branches: { repository: app, match: "pr-*" } }
    name: "review-{{ item.name }}"
    ttl: 72h
    target: { driver: heroku, app: "app-{{ item.name }}", pipeline: app, stage: review }
    services: { web: { image: "registry.heroku.com/app/web:{{ item.short_sha }}" } }
    addons: { db: { kind: heroku-postgresql, plan: essential-0 } }
YAML
sha=$(git -C "$work/git/app" rev-parse pr-10)
expect "show generator over git daemon" 0 "$rc_bin" show -o json "$work/gen"
if printf '%s' "$out" | SHA=$sha python3 -c '
import json,os,sys
d=json.load(sys.stdin)
e=d["environments"]
assert [x["name"] for x in e]==["review-pr-10","review-pr-11"], [x["name"] for x in e]
g=e[0]["generated_by"]
assert g["item"]["branch"]=="pr-10" and g["item"]["sha"]==os.environ["SHA"] and g["ttl"]=="3d", g
assert e[0]["target"]["app"]=="app-pr-10"
assert e[0]["services"]["web"]["image"].endswith(":"+os.environ["SHA"][:7])
'; then ok "branch generator via git daemon"; else bad "branch generator via git daemon" "$out" "$err"; fi
# validate never contacts the remote: it passes with the daemon gone
kill "$daemon_pid"; wait "$daemon_pid" 2>/dev/null; daemon_pid=
expect "validate offline generator" 0 "$rc_bin" validate "$work/gen"
expect "show unreachable repository" 1 "$rc_bin" show "$work/gen"
contains "show unreachable message" "$err" "cannot list the branches of repository 'app'"

finish
