#!/usr/bin/env bash
# What became of a hook run that an interrupted apply started
# (drivers/driver.h, hook_status), for the Kubernetes, ECS and Heroku
# drivers against their fakes, through hook_tool: a hook run with `run`
# for run A is then asked for with `status` (succeeded with its exit code
# and output; a failing command failed); the same hook of a run B that
# never ran it is not started; a hook whose runner was killed -9 while it
# ran is running (wait 0), then succeeded (a long enough wait); for
# Heroku, a dyno stopped before it said its status is failed (143), a
# dyno gone whose log history is gone too is unknown, and a
# hook never started is still not started then (the driver's record
# tells the two apart).
#   run.sh HOOK_TOOL RECONCILE_BINARY FAKE_KUBE_BINARY SOURCE_ROOT
set -u
tool=$(realpath "$1")
rc_bin=$(realpath "$2")
fake_kube=$(realpath "$3")
root=$(realpath "$4")
py=/usr/bin/python3
export NO_COLOR=1
. "$root/tests/lib.sh"
SHOW=3000
command -v curl >/dev/null || { echo "skipped: curl is not installed"; exit 77; }
work=$(mktemp -d /tmp/rc-hooks-XXXXXX)
export RECONCILE_STATE_DIR=$work/state XDG_CACHE_HOME=$work/cache HOME=$work/home
mkdir -p "$HOME"
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP
die() { echo "FAIL setup: $*"; for f in "$work"/*.log; do echo "--- $f"; tail -20 "$f"; done; exit 1; }
wait_for() { # SECONDS CMD...: polls CMD until it succeeds
	local end=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do [ "$SECONDS" -ge "$end" ] && return 1; sleep 0.1; done
}
# spec NAME RUN_ID ARGV-JSON [SERVICE]: a hook's spec as the engine gives it
spec() {
	printf '{"name": "%s", "run": %s, "where": "target", "service": "%s", "env": {}, "timeout": 60, "run_id": "%s"}' \
		"$1" "$3" "${4:-web}" "$2"
}
# hook DIR ENV ARGS...: hook_tool, its output in $out and the time it took
# (ms) in $took
hook() {
	local t0=$(date +%s%3N)
	out=$("$tool" "$@" 2>>"$work/tool.log" </dev/null)
	took=$(($(date +%s%3N) - t0))
}
# field NAME: the value of "NAME: ..." in $out
field() { printf '%s\n' "$out" | sed -n "s/^$1: //p" | head -1; }
is_field() { # CHECK NAME EXPECTED
	local got
	got=$(field "$2")
	[ "$got" = "$3" ] && ok "$1" || bad "$1" "$2: $got, expected $3" "$out"
}
# interrupted DRIVER DIR ENV SPEC SHOWN-CMD: runs the hook in the
# background, waits until SHOWN-CMD succeeds (the platform has it), then
# kills the runner with SIGKILL, as a crash would
interrupted() {
	local name=$1 dir=$2 env=$3 sp=$4
	shift 4
	"$tool" "$dir" "$env" run "$sp" >"$work/killed.out" 2>>"$work/tool.log" </dev/null &
	local pid=$!
	if wait_for 30 "$@"; then ok "$name: the slow hook started"
	else bad "$name: the slow hook started" "$(cat "$work/killed.out")"; fi
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}
# the checks every driver shares: ok, failing and slow hooks of run A,
# the ok one asked for run B
common() { # DRIVER DIR ENV OK-ARGV FAIL-ARGV FAIL-CODE OK-OUTPUT
	local d=$1 dir=$2 env=$3
	hook "$dir" "$env" run "$(spec migrate run-a "$4")"
	is_field "$d: run: the hook succeeds" exit 0
	hook "$dir" "$env" status "$(spec migrate run-a "$4")" 0
	is_field "$d: status of run A's hook: succeeded" state succeeded
	is_field "$d: with its exit code" exit 0
	has "$d: and its output" "$out" "$7"
	hook "$dir" "$env" run "$(spec broken run-a "$5")"
	is_field "$d: run: the failing hook fails" exit "$6"
	hook "$dir" "$env" status "$(spec broken run-a "$5")" 0
	is_field "$d: status of the failing hook: failed" state failed
	is_field "$d: with its exit code" exit "$6"
	hook "$dir" "$env" status "$(spec migrate run-b "$4")" 0
	is_field "$d: the hook of run B, which never ran it: not started" state "not started"
	echo "# $d: status of a hook that never started took ${took} ms"
}
slow_checks() { # DRIVER DIR ENV SLOW-SPEC
	hook "$2" "$3" status "$4" 0
	is_field "$1: the killed runner's hook: running (wait 0)" state running
	echo "# $1: status with wait 0 of a running hook took ${took} ms"
	hook "$2" "$3" status "$4" 60
	is_field "$1: waited for: succeeded" state succeeded
	is_field "$1: with its exit code" exit 0
	echo "# $1: status waiting for the running hook to end took ${took} ms"
}

# === Kubernetes
mkdir -p "$work/kube"
kube_fake_start "$fake_kube" "$work/kube" "$work/kube.log" --controller-delay-ms 20
pids+=("$fake_pid")
kube_api POST /api/v1/namespaces '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop"}}' >/dev/null
mkdir -p "$work/k"
cat >"$work/k/reconcile.yaml" <<YAML
version: 1
project: shop
environments:
  prod:
    target:
      driver: kubernetes
      namespace: shop
      kubeconfig: $work/kube/kubeconfig
    services:
      web:
        image: registry.example.com/shop/web:1.0
YAML
common kubernetes "$work/k" prod '["migrate", "--all"]' '["sh", "-c", "exit 1 # fail"]' 1 "migrate --all"
job_active() { kube_api GET /apis/batch/v1/namespaces/shop/jobs | grep -q '"active"'; }
slow=$(spec slow run-c '["sh", "-c", "sleep 4"]')
interrupted kubernetes "$work/k" prod "$slow" job_active
slow_checks kubernetes "$work/k" prod "$slow"

# === ECS
akid=AKIDHOOKS0001 secret=hooks-secret-2b7e41
$py "$root/tests/fake/ecs/fake_ecs.py" --credentials "$akid:$secret" --port-file "$work/ecs.port" \
	--log "$work/ecs.requests" >"$work/ecs.log" 2>&1 &
pids+=($!)
wait_for 20 test -s "$work/ecs.port" || die "the fake ECS did not start"
ecs_base=http://127.0.0.1:$(cat "$work/ecs.port")
ecs() { curl -sS -X "$1" ${3:+-H "Content-Type: application/json" --data "$3"} "$ecs_base$2"; }
mkdir -p "$work/e"
cat >"$work/e/reconcile.yaml" <<YAML
version: 1
project: shop
environments:
  dev:
    target:
      driver: ecs
      region: us-east-1
      cluster: shop-dev
      launch_type: FARGATE
      subnets: [subnet-0a1b2c3d4e5f60001]
      security_groups: [sg-0d1e2f3a4b5c60001]
      assign_public_ip: false
    services:
      web:
        image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1.0.0"
        replicas: 1
        cpu: 0.25
        memory: 512Mi
YAML
ecs POST /fake/tasks/script '{"match": "fail-migrate", "exit": 3, "duration_ms": 100}' >/dev/null
ecs POST /fake/tasks/script '{"match": "slow-migrate", "exit": 0, "duration_ms": 4000}' >/dev/null
(
	export AWS_ACCESS_KEY_ID=$akid AWS_SECRET_ACCESS_KEY=$secret AWS_REGION=us-east-1 AWS_ENDPOINT_URL=$ecs_base
	unset AWS_SESSION_TOKEN AWS_PROFILE
	run 0 "ecs: the environment applies (its task definition)" "$rc_bin" apply "$work/e" --auto-approve
	[ "$fail" -eq 0 ] || exit 1
	common ecs "$work/e" dev '["/app/migrate"]' '["/app/fail-migrate"]' 3 "stopped: Essential container in task exited"
	task_running() {
		ecs GET /fake/state | $py -c 'import json,sys
s = json.load(sys.stdin)
sys.exit(0 if any(t.get("lastStatus") == "RUNNING" and any("slow-migrate" in " ".join(o.get("command", [])) for o in t.get("overrides", {}).get("containerOverrides", [])) for t in s["tasks"]) else 1)'
	}
	slow=$(spec slow run-c '["/app/slow-migrate"]')
	interrupted ecs "$work/e" dev "$slow" task_running
	slow_checks ecs "$work/e" dev "$slow"
	echo "counts $pass $fail" >"$work/ecs.counts"
)
read -r _ p f <"$work/ecs.counts" 2>/dev/null || { p=0; f=1; echo "FAIL ecs: the checks did not end"; }
pass=$((pass + p)) fail=$((fail + f))

# === Heroku
export HEROKU_API_KEY=hooks-heroku-key-5c2d90
$py "$root/tests/fake/heroku/fake_heroku.py" --key "$HEROKU_API_KEY" --port-file "$work/heroku.port" \
	--log "$work/heroku.requests" >/dev/null 2>"$work/heroku.log" &
pids+=($!)
wait_for 20 test -s "$work/heroku.port" || die "the fake Heroku did not start"
export HEROKU_API_URL=http://127.0.0.1:$(cat "$work/heroku.port")
hk() { curl -sS -X "$1" ${3:+-H "Content-Type: application/json" --data "$3"} "$HEROKU_API_URL$2"; }
hk POST /fake/apps '{"name": "hooks-app"}' >/dev/null
hk POST /fake/dynos/script '{"match": "good-migrate", "output": ["Applying 0042... OK"], "duration_ms": 100}' >/dev/null
hk POST /fake/dynos/script '{"match": "fail-migrate", "output": ["no such table"], "exit": 3, "duration_ms": 100}' >/dev/null
hk POST /fake/dynos/script '{"match": "slow-migrate", "output": ["step 1"], "duration_ms": 4000}' >/dev/null
mkdir -p "$work/h"
cat >"$work/h/reconcile.yaml" <<YAML
version: 1
project: shop
environments:
  prod:
    target: { driver: heroku, app: hooks-app, stack: container }
    services:
      web:
        image: registry.example.com/shop/web:1.0
        command: [gunicorn, app]
YAML
common heroku "$work/h" prod '["python", "good-migrate"]' '["python", "fail-migrate"]' 3 "Applying 0042... OK"
dyno_up() {
	hk GET /fake/state | $py -c 'import json,sys
s = json.load(sys.stdin)
sys.exit(0 if any("slow-migrate" in d["command"] and d["state"] == "up" for d in s["dynos"].get("hooks-app", [])) else 1)'
}
slow=$(spec slow run-c '["python", "slow-migrate"]')
interrupted heroku "$work/h" prod "$slow" dyno_up
slow_checks heroku "$work/h" prod "$slow"
has "heroku: with the output from its log" "$out" "step 1"
# a dyno stopped before its marker (killed by the platform): failed, with
# the status of its process
stop=$(spec stopped run-d '["python", "slow-migrate"]')
interrupted heroku "$work/h" prod "$stop" dyno_up
dyno=$(hk GET /fake/state | $py -c 'import json,sys
s = json.load(sys.stdin)
print([d["name"] for d in s["dynos"]["hooks-app"] if "slow-migrate" in d["command"] and d["state"] == "up"][0])')
curl -sS -X POST -H "Authorization: Bearer $HEROKU_API_KEY" -H "Accept: application/vnd.heroku+json; version=3" \
	-H "Content-Type: application/json" --data '{}' "$HEROKU_API_URL/apps/hooks-app/dynos/$dyno/actions/stop" >/dev/null
hook "$work/h" prod status "$stop" 0
is_field "heroku: a dyno stopped before its marker: failed" state failed
is_field "heroku: with its process's status" exit 143
# the dyno gone and its log history gone: what run A's hook did is unknown;
# the hook of run B, which never started, is still known not to have
hk POST /fake/settings '{"dyno_gone_ms": 0}' >/dev/null
hk POST /fake/logs/expire '{"app": "hooks-app"}' >/dev/null
hook "$work/h" prod status "$(spec migrate run-a '["python", "good-migrate"]')" 0
is_field "heroku: dyno and logs gone: unknown" state unknown
hook "$work/h" prod status "$(spec migrate run-b '["python", "good-migrate"]')" 0
is_field "heroku: a hook never started, logs gone: not started" state "not started"
hasnt "no API key in the output" "$out" "$HEROKU_API_KEY"
if grep -rqF -- "$HEROKU_API_KEY" "$RECONCILE_STATE_DIR" 2>/dev/null; then
	bad "heroku: the API key is in the state directory"
else ok "heroku: the state directory holds no API key"; fi

# a driver that cannot answer: an error, not a state
kill "$fake_pid" 2>/dev/null; wait "$fake_pid" 2>/dev/null
hook "$work/k" prod status "$(spec migrate run-a '["migrate"]')" 0
has "kubernetes: the API server gone: an error, not a state" "$out" "error: status"
# a sanitizer build reports on the tool's stderr
if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$work/tool.log"; then
	bad "no sanitizer report" "$(grep -E -A20 "Sanitizer|runtime error:" "$work/tool.log" | head -40)"
else ok "no sanitizer report"; fi
finish
