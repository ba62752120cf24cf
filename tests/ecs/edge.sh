#!/usr/bin/env bash
# The ECS driver's edge cases against the fake ECS (tests/fake/ecs), on a
# small configuration (tests/ecs/reconcile.yaml: a cluster, two Fargate
# services, a target hook) rather than examples/java-ecs (ecs.e2e): the
# first plan's mapping; the two registrations of the first apply spaced
# a second apart, none throttled; what a no-change plan costs in
# requests; a deployment past target.wait_timeout; a 5xx and a dropped
# connection retried, a reply that is not JSON refused as such;
# AccessDenied naming the IAM action; an unset secret refused at plan;
# destroy; no secret key in any output or in the state directory.
#   edge.sh RECONCILE_BINARY SOURCE_ROOT
set -u
rc_bin=$(realpath "$1")
root=$(realpath "$2")
akid=AKIDECSEDGE0001 secret=ecs-edge-secret-9f3c1a77d2 work_name=rc-ecs-edge
. "$root/tests/ecs/fake.sh"
export AWS_ENDPOINT_URL_ECS=$base AWS_ENDPOINT_URL_SECRETS_MANAGER=$base

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

# === a deployment that never completes, with a short wait_timeout
fake POST /fake/settings '{"deployment_ms": 600000}' >/dev/null
sed -i -e 's|^      driver: ecs$|&\n      wait_timeout: 2s|' -e 's/worker:1.0.0/worker:1.0.1/' "$cfg/reconcile.yaml" && commit "worker 1.0.1, 2 s"
run 1 "a deployment past wait_timeout fails the apply" "$rc_bin" apply "$cfg" -e dev --auto-approve && ok "timeout: exit 1"
has "the timeout names the service" "$out" "service worker did not reach a completed deployment within 2 s"
has "the service's latest events" "$out" "(service worker) has reached a steady state"
fake POST /fake/settings '{"deployment_ms": 300}' >/dev/null
sed -i -e '/^      wait_timeout: 2s$/d' -e 's/worker:1.0.1/worker:1.0.0/' "$cfg/reconcile.yaml" && commit "worker 1.0.0"
run 0 "the next deployment completes" "$rc_bin" apply "$cfg" -e dev --auto-approve && ok "apply after timeout"
is "worker 1.0.0 running" \
	'[(t["containerDefinitions"][0]["image"].split("/")[-1], v["desiredCount"]) for v in s["services"] if v["serviceName"] == "worker" for t in s["task_definitions"] if t["taskDefinitionArn"] == v["taskDefinition"]]' \
	"[('worker:1.0.0', 1)]"

# === a 5xx, a dropped connection, a reply that is not JSON
: >"$work/fake.requests"
fake POST /fake/faults '{"target_regex": "DescribeClusters$", "status": 500, "type": "ServerException", "count": 2}' >/dev/null
fake POST /fake/faults '{"target_regex": "ListServices$", "drop": true, "count": 1}' >/dev/null
run 0 "a plan through a ServerException and a dropped connection" "$rc_bin" plan "$cfg" -e dev && ok "5xx and drop retried"
l=$(grep "\.DescribeClusters " "$work/fake.requests")
[ "$(grep -c " 500 t=" <<<"$l")" = 2 ] && tail -1 <<<"$l" | grep -q " 200 t=" && ok "two 500s, then 200" || bad "5xx retried" "$l"
l=$(grep "\.ListServices " "$work/fake.requests")
# (the fake may log the dropped connection after the retry's answer)
[ "$(grep -c " 0 t=" <<<"$l")" = 1 ] && grep -q " 200 t=" <<<"$l" && ok "a dropped connection, then 200" || bad "drop retried" "$l"
# the fake's malformed reply is a 200 of 15 bytes, '{"__type": "Ser'
fake POST /fake/faults '{"target_regex": "DescribeServices$", "malformed": true, "count": 20}' >/dev/null
run 1 "a malformed body fails the plan" "$rc_bin" plan "$cfg" -e dev && ok "malformed: exit 1"
has "the call, and that the reply was not JSON" "$out" \
	"ecs: DescribeServices: the reply was not JSON (HTTP 200, 15 bytes of application/x-amz-json-1.1) (request id "
hasnt "never the body" "$out" '{"__type": "Ser'
fake DELETE /fake/faults >/dev/null

# === AccessDenied names the IAM action
fake POST /fake/deny "{\"access_key\": \"$akid\", \"action\": \"ecs:ListServices\"}" >/dev/null
run 1 "AccessDenied fails the plan" "$rc_bin" plan "$cfg" -e dev && ok "access denied: exit 1"
has "the IAM action is named" "$out" "allow the IAM action ecs:ListServices"
has "the request id is given" "$out" "request id"
fake DELETE /fake/deny >/dev/null

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

no_value_anywhere "secret key" "$secret"
finish
