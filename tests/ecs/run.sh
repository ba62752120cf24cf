#!/usr/bin/env bash
# The ECS driver end to end against the fake ECS (tests/fake/ecs): a small
# configuration (tests/ecs/reconcile.yaml: a cluster, two Fargate services,
# a target hook) planned, applied and re-planned clean; one image changed
# -> exactly one new revision and one UpdateService; a circuit-breaker
# failure reported with the service's events; replicas changed -> the
# service alone, no new revision; rollback to the previous image and
# count; a desired count changed behind reconcile's back shown and healed;
# ThrottlingException bursts on ListServices, DescribeServices and
# UpdateService survived; a deployment past target.wait_timeout; a 5xx
# and a dropped connection retried, a malformed body refused; a hook
# task's exit code; AccessDenied naming the IAM action; a wrong secret;
# an unset secret refused at plan; destroy; no secret key in any output or in the
# state directory.
#   run.sh RECONCILE_BINARY SOURCE_ROOT
set -u
rc_bin=$(realpath "$1")
root=$(realpath "$2")
py=/usr/bin/python3
export NO_COLOR=1
. "$root/tests/lib.sh"
SHOW=3000
akid=AKIDECSE2E0001 secret=ecs-e2e-secret-9f3c1a77d2
work_name=rc-ecs
. "$root/tests/ecs/fake.sh"
export AWS_ENDPOINT_URL_ECS=$base AWS_ENDPOINT_URL_SECRETS_MANAGER=$base
count() { fake GET /fake/stats | $py -c 'import json,sys; print(json.load(sys.stdin)["requests"].get("AmazonEC2ContainerServiceV20141113.'"$1"'", 0))'; }
# calls OPERATION N NAME: the fake counted N requests of OPERATION
calls() { [ "$(count "$1")" = "$2" ] && ok "$3" || bad "$3" "$(fake GET /fake/stats)"; }
total() { fake GET /fake/stats | $py -c 'import json,sys; print(json.load(sys.stdin)["total"])'; }

cfg=$work/cfg
mkdir -p "$cfg"
cp "$root/tests/ecs/reconcile.yaml" "$cfg/"
git -C "$cfg" init -q -b main && git -C "$cfg" add -A && git -C "$cfg" commit -qm config
commit() { git -C "$cfg" add -A && git -C "$cfg" commit -qm "$1"; }

run 0 "the configuration validates" "$rc_bin" validate "$cfg" && ok "validate"
run 2 "the first plan has changes" "$rc_bin" plan "$cfg" -e dev && ok "first plan: exit 2"
has "the cluster is created" "$out" "+ cluster shop-dev"
has "a task definition per service" "$out" "+ task-definition worker"
has "the service is created" "$out" "+ service api"
has "Fargate units: 0.5 cpu is 512" "$out" 'cpu: "512"'

# AWS holds RegisterTaskDefinition to about one a second, with no burst
# to speak of: so does the fake now, and the two registrations of the
# first apply must be spaced rather than throttled and retried
fake POST /fake/settings '{"rates": {"ecs:RegisterTaskDefinition": [1, 1]}}' >/dev/null
run 0 "apply" "$rc_bin" apply "$cfg" -e dev --auto-approve && ok "apply"
has "the hook ran as a task" "$out" "hook migrate: ok"
[ "$(count RegisterTaskDefinition)" = 2 ] && ! grep -q "RegisterTaskDefinition 400" "$work/fake.requests" &&
	ok "two registrations a second apart, none throttled" ||
	bad "registrations spaced" "$(grep RegisterTaskDefinition "$work/fake.requests")"
is "two services, ACTIVE" 'sorted((v["serviceName"], v["status"], v["desiredCount"]) for v in s["services"])' \
	"[('api', 'ACTIVE', 2), ('worker', 'ACTIVE', 1)]"

fake POST /fake/stats/reset >/dev/null
run 0 "a second plan has no changes" "$rc_bin" plan "$cfg" -e dev && ok "re-plan clean"
has "no changes" "$out" "No changes"
n=$(total)
[ "$n" -le 6 ] && ok "a no-change plan of 2 services costs 6 requests, ListSecrets included ($n)" || bad "no-change plan requests" "$n: $(fake GET /fake/stats)"

# === one image changed: one revision, one UpdateService
sed -i 's/api:1.0.0/api:1.1.0/' "$cfg/reconcile.yaml" && commit "api 1.1.0"
fake POST /fake/stats/reset >/dev/null
run 0 "apply the new image" "$rc_bin" apply "$cfg" -e dev --auto-approve && ok "apply image"
has "the api's task definition changes" "$out" "task-definition api"
hasnt "the worker is left alone" "$out" "worker"
calls RegisterTaskDefinition 1 "exactly one new revision"
calls UpdateService 1 "exactly one UpdateService"
run 0 "clean after the image change" "$rc_bin" plan "$cfg" -e dev && ok "clean after image"

# === a failed deployment: the circuit breaker rolls back
fake POST /fake/deployments/script '{"task_definition_regex": "shop-dev-api", "fail": true, "count": 1}' >/dev/null
sed -i 's/api:1.1.0/api:1.2.0-broken/' "$cfg/reconcile.yaml" && commit "api broken"
run 1 "a failing deployment fails the apply" "$rc_bin" apply "$cfg" -e dev --auto-approve && ok "failed deployment: exit 1"
has "the reason is shown" "$out" "circuit breaker"
has "the service's events are shown" "$out" "deployment failed: tasks failed to start"
has "the error points at the service" "$out" "reconcile.yaml:"
fake DELETE /fake/deployments/script >/dev/null
sed -i 's/api:1.2.0-broken/api:1.1.0/' "$cfg/reconcile.yaml" && commit "api back"
run 0 "back to a working image" "$rc_bin" apply "$cfg" -e dev --auto-approve && ok "apply after failure"
run 0 "clean after the repair" "$rc_bin" plan "$cfg" -e dev && ok "clean after repair"

# === replicas changed: the service alone, no new revision
sed -i '/^      worker:$/,/replicas:/s/replicas: 1/replicas: 4/' "$cfg/reconcile.yaml" && commit "4 workers"
fake POST /fake/stats/reset >/dev/null
run 0 "apply a replicas change" "$rc_bin" apply "$cfg" -e dev --auto-approve && ok "apply replicas"
has "the service is updated" "$out" "~ service worker"
hasnt "no task definition changes" "$out" "task-definition"
calls RegisterTaskDefinition 0 "replicas: no new revision"
calls UpdateService 1 "replicas: one UpdateService"
is "the fake holds 4 workers" '[v["desiredCount"] for v in s["services"] if v["serviceName"] == "worker"]' "[4]"

# === rollback: the service's previous task definition content and count
# image and replicas of a service as the fake runs it
svc_is() {
	is "$1" '[(t["containerDefinitions"][0]["image"].split("/")[-1], v["desiredCount"]) for v in s["services"] if v["serviceName"] == "'"$2"'" for t in s["task_definitions"] if t["taskDefinitionArn"] == v["taskDefinition"]]' "$3"
}
svc_is "before: api 1.1.0, 2 tasks" api "[('api:1.1.0', 2)]"
sed -i -e 's/api:1.1.0/api:1.3.0/' -e '/^      api:$/,/replicas:/s/replicas: 2/replicas: 5/' "$cfg/reconcile.yaml" && commit "api 1.3.0, 5 tasks"
run 0 "apply api 1.3.0 and 5 tasks" "$rc_bin" apply "$cfg" -e dev --auto-approve && ok "apply before rollback"
svc_is "applied: api 1.3.0, 5 tasks" api "[('api:1.3.0', 5)]"
run 0 "rollback" "$rc_bin" rollback --source "$cfg" -e dev --auto-approve && ok "rollback"
has "the rollback changes the api" "$out" "service api"
svc_is "rolled back: api 1.1.0 again, 2 tasks" api "[('api:1.1.0', 2)]"
sed -i -e 's/api:1.3.0/api:1.1.0/' -e '/^      api:$/,/replicas:/s/replicas: 5/replicas: 2/' "$cfg/reconcile.yaml" && commit "api 1.1.0, 2 tasks"
run 0 "the rollback restored what the configuration says again" "$rc_bin" plan "$cfg" -e dev && ok "clean after rollback"

# === drift: desired count changed behind reconcile's back, then healed
fake POST /fake/services/desired '{"cluster": "shop-dev", "service": "worker", "desiredCount": 7}' >/dev/null
run 2 "a plan sees the drift" "$rc_bin" plan "$cfg" -e dev && ok "drift: exit 2"
has "the drifted service" "$out" "~ service worker"
has "on desiredCount" "$out" "desiredCount"
run 0 "apply heals the drift" "$rc_bin" apply "$cfg" -e dev --auto-approve && ok "drift healed"
is "the fake holds 4 workers again" '[v["desiredCount"] for v in s["services"] if v["serviceName"] == "worker"]' "[4]"
run 0 "clean after healing" "$rc_bin" plan "$cfg" -e dev && ok "clean after drift"

# === throttling bursts on the calls of an apply are survived
for op in ListServices DescribeServices UpdateService; do
	fake POST /fake/faults "{\"target_regex\": \"$op\$\", \"type\": \"ThrottlingException\", \"status\": 400, \"count\": 2}" >/dev/null
done
: >"$work/fake.requests"
sed -i '/^      worker:$/,/replicas:/s/replicas: 4/replicas: 3/' "$cfg/reconcile.yaml" && commit "3 workers"
run 0 "an apply through throttling bursts" "$rc_bin" apply "$cfg" -e dev --auto-approve && ok "throttled apply"
for op in ListServices DescribeServices UpdateService; do
	l=$(grep -n "\.$op " "$work/fake.requests")
	[ "$(grep -c " 400$" <<<"$l")" = 2 ] && tail -1 <<<"$l" | grep -q " 200$" &&
		ok "$op: two ThrottlingExceptions, then retried to 200" || bad "$op retried" "$l"
done
is "the fake holds 3 workers" '[v["desiredCount"] for v in s["services"] if v["serviceName"] == "worker"]' "[3]"
fake DELETE /fake/faults >/dev/null

# === a deployment that never completes, with a short wait_timeout
fake POST /fake/settings '{"deployment_ms": 600000}' >/dev/null
sed -i -e 's|^      driver: ecs$|&\n      wait_timeout: 2s|' -e 's/worker:1.0.0/worker:1.0.1/' "$cfg/reconcile.yaml" && commit "worker 1.0.1, 2 s"
run 1 "a deployment past wait_timeout fails the apply" "$rc_bin" apply "$cfg" -e dev --auto-approve && ok "timeout: exit 1"
has "the timeout names the service" "$out" "service worker did not reach a completed deployment within 2 s"
has "the service's latest events" "$out" "(service worker) has reached a steady state"
fake POST /fake/settings '{"deployment_ms": 300}' >/dev/null
sed -i -e '/^      wait_timeout: 2s$/d' -e 's/worker:1.0.1/worker:1.0.0/' "$cfg/reconcile.yaml" && commit "worker 1.0.0"
run 0 "the next deployment completes" "$rc_bin" apply "$cfg" -e dev --auto-approve && ok "apply after timeout"
svc_is "worker 1.0.0 running" worker "[('worker:1.0.0', 3)]"

# === a 5xx, a dropped connection, a malformed body
: >"$work/fake.requests"
fake POST /fake/faults '{"target_regex": "DescribeClusters$", "status": 500, "type": "ServerException", "count": 2}' >/dev/null
fake POST /fake/faults '{"target_regex": "ListServices$", "drop": true, "count": 1}' >/dev/null
run 0 "a plan through a ServerException and a dropped connection" "$rc_bin" plan "$cfg" -e dev && ok "5xx and drop retried"
l=$(grep "\.DescribeClusters " "$work/fake.requests")
[ "$(grep -c " 500$" <<<"$l")" = 2 ] && tail -1 <<<"$l" | grep -q " 200$" && ok "two 500s, then 200" || bad "5xx retried" "$l"
l=$(grep "\.ListServices " "$work/fake.requests")
head -1 <<<"$l" | grep -q " 0$" && tail -1 <<<"$l" | grep -q " 200$" && ok "a dropped connection, then 200" || bad "drop retried" "$l"
fake POST /fake/faults '{"target_regex": "DescribeServices$", "malformed": true, "count": 20}' >/dev/null
run 1 "a malformed body fails the plan" "$rc_bin" plan "$cfg" -e dev && ok "malformed: exit 1"
has "the call and the status are named" "$out" "DescribeServices failed (HTTP 200"
fake DELETE /fake/faults >/dev/null

# === a hook's exit code
fake POST /fake/tasks/script '{"match": "/app/migrate", "exit": 3, "count": 1}' >/dev/null
sed -i 's/replicas: 2/replicas: 3/' "$cfg/reconcile.yaml" && commit "3 api"
fake POST /fake/stats/reset >/dev/null
run 1 "a failing hook fails the apply" "$rc_bin" apply "$cfg" -e dev --auto-approve && ok "hook failure: exit 1"
has "the hook's exit code is reported" "$out" "exited with status 3"
calls RunTask 1 "one RunTask"
calls RegisterTaskDefinition 0 "a replicas change registers no revision"

# === errors
fake POST /fake/deny "{\"access_key\": \"$akid\", \"action\": \"ecs:ListServices\"}" >/dev/null
run 1 "AccessDenied fails the plan" "$rc_bin" plan "$cfg" -e dev && ok "access denied: exit 1"
has "the IAM action is named" "$out" "allow the IAM action ecs:ListServices"
has "the request id is given" "$out" "request id"
fake DELETE /fake/deny >/dev/null
AWS_SECRET_ACCESS_KEY=wrong-secret-0000 run 1 "a wrong secret fails the plan" "$rc_bin" plan "$cfg" -e dev && ok "bad signature: exit 1"
has "a clear auth error" "$out" "AWS did not accept the credentials"
has "AWS's reason" "$out" "InvalidSignatureException"
fake POST /fake/faults '{"target_regex": "DescribeClusters", "type": "ThrottlingException", "status": 400, "count": 2}' >/dev/null
run 0 "throttling is retried" "$rc_bin" plan "$cfg" -e dev && ok "throttling retried"

# === a secret whose variable is unset is refused at plan, at its line
cp "$cfg/reconcile.yaml" "$work/saved.yaml"
cat >>"$cfg/reconcile.yaml" <<'YAML'
    secrets:
      DB_PASSWORD: { env: SHOP_DB_PASSWORD }
YAML
commit "a secret"
run 1 "an unset secret fails the plan" "$rc_bin" plan "$cfg" -e dev && ok "unset secret refused"
has "the variable is named" "$out" "the variable 'SHOP_DB_PASSWORD' is not set"
has "at the secret's line" "$out" "reconcile.yaml:"
cp "$work/saved.yaml" "$cfg/reconcile.yaml" && commit "no secret"

# === destroy
run 0 "destroy" "$rc_bin" destroy "$cfg" -e dev --auto-approve && ok "destroy"
is "no active service is left" '[v["serviceName"] for v in s["services"] if v["status"] == "ACTIVE"]' "[]"
is "the cluster reconcile made is gone" '[c["clusterName"] for c in s["clusters"] if c["status"] == "ACTIVE"]' "[]"

# === no secret key anywhere
hasnt "the secret key is in no output" "$(cat "$outputs")" "$secret"
if grep -rq -- "$secret" "$RECONCILE_STATE_DIR" 2>/dev/null; then bad "the secret key is in the state directory"; else ok "the state directory holds no secret key"; fi
finish
