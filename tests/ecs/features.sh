#!/usr/bin/env bash
# The ECS driver's mapping and lifecycle features end to end against the
# fake ECS (tests/fake/ecs), with tests/ecs/features.yaml: a target group
# and a TCP health check mapped; the task-definition cache (a warm
# re-plan describes no revision, a corrupt entry is fetched again); a
# rollback back to the revision the service ran (no copy registered);
# a service made by hand refused without policy.adopt and taken over
# with it; a launch type change planned as a replace with its reason and
# applied; destroy deregisters reconcile's revisions and no others.
#   features.sh RECONCILE_BINARY SOURCE_ROOT
set -u
rc_bin=$(realpath "$1")
root=$(realpath "$2")
akid=AKIDECSFEAT0001 secret=ecs-feat-secret-51d0b7e2aa work_name=rc-ecsfeat
fake_args="--deployment-ms 150 --scale-ms 100"
. "$root/tests/ecs/fake.sh"
export AWS_ENDPOINT_URL_ECS=$base AWS_ENDPOINT_URL_SECRETS_MANAGER=$base
# A signed ECS call made by someone else (not reconcile): OP JSON
aws_ecs() {
	$py - "$port" "$akid" "$secret" "$1" "$2" "$root/tests/fake/ecs" <<'PY'
import http.client, json, sys
port, akid, secret, op, body, here = sys.argv[1:]
sys.path.insert(0, here)
from test_fake_ecs import sign
target = 'AmazonEC2ContainerServiceV20141113.' + op
data = body.encode()
h = sign('POST', '127.0.0.1:' + port, '/', data, akid, secret, 'ecs', target=target)
c = http.client.HTTPConnection('127.0.0.1', int(port))
c.request('POST', '/', data, h)
r = c.getresponse()
out = r.read().decode()
print(out)
sys.exit(0 if r.status == 200 else 1)
PY
}

cfg=$work/cfg
mkdir -p "$cfg"
cp "$root/tests/ecs/features.yaml" "$cfg/reconcile.yaml"
git -C "$cfg" init -q -b main && git -C "$cfg" add -A && git -C "$cfg" commit -qm config
commit() { git -C "$cfg" add -A && git -C "$cfg" commit -qm "$1"; }

# === a target group and a TCP health check
run 0 "apply dev" "$rc_bin" apply "$cfg" -e dev --auto-approve && ok "apply dev"
is "the service is in its target group, on its port" \
	'[(l["targetGroupArn"].split("/")[1], l["containerName"], l["containerPort"]) for v in s["services"] if v["serviceName"] == "web" for l in v["loadBalancers"]]' \
	"[('feat-web', 'web', 8080)]"
is "the grace period is health.grace" \
	'[v["healthCheckGracePeriodSeconds"] for v in s["services"] if v["serviceName"] == "web"]' "[30]"
is "health.tcp is a shell probe of the port" \
	'[c["healthCheck"]["command"] for t in s["task_definitions"] for c in t["containerDefinitions"] if c["name"] == "web"]' \
	"[['CMD-SHELL', 'nc -z localhost 8080 || exit 1']]"
n=$(find "$RECONCILE_STATE_DIR/ecs/taskdefs" -name '*.json' 2>/dev/null | wc -l)
[ "$n" -ge 1 ] && ok "revisions are cached under <state>/ecs ($n)" || bad "the cache" "no file under $RECONCILE_STATE_DIR/ecs/taskdefs"

# === the cache: a warm re-plan describes no revision
run 0 "re-plan" "$rc_bin" plan "$cfg" -e dev && ok "re-plan clean"
fake POST /fake/stats/reset >/dev/null
run 0 "re-plan with a warm cache" "$rc_bin" plan "$cfg" -e dev && ok "warm re-plan clean"
[ "$(count DescribeTaskDefinition)" = 0 ] && ok "a warm re-plan makes no DescribeTaskDefinition call" ||
	bad "warm cache" "$(fake GET /fake/stats)"
for f in "$RECONCILE_STATE_DIR"/ecs/taskdefs/*.json; do printf '{"arn": tor' >"$f"; done
fake POST /fake/stats/reset >/dev/null
run 0 "a corrupt cache is ignored" "$rc_bin" plan "$cfg" -e dev && ok "corrupt cache: plan clean"
[ "$(count DescribeTaskDefinition)" = 2 ] && ok "corrupt entries are fetched again (2 calls)" ||
	bad "corrupt cache refetch" "$(fake GET /fake/stats)"
fake POST /fake/stats/reset >/dev/null
run 0 "and rewritten" "$rc_bin" plan "$cfg" -e dev
[ "$(count DescribeTaskDefinition)" = 0 ] && ok "the corrupt entries were rewritten" || bad "cache rewrite" "$(fake GET /fake/stats)"

# === rollback goes back to the revision the service ran
sed -i 's/web:v1/web:v2/' "$cfg/reconcile.yaml" && commit "web v2"
run 0 "apply web v2" "$rc_bin" apply "$cfg" -e dev --auto-approve && ok "apply v2"
is "web runs revision 2" '[v["taskDefinition"].rsplit(":", 1)[1] for v in s["services"] if v["serviceName"] == "web"]' "['2']"
fake POST /fake/stats/reset >/dev/null
run 0 "rollback" "$rc_bin" rollback --source "$cfg" -e dev --auto-approve && ok "rollback"
is "web runs revision 1 again" '[v["taskDefinition"].rsplit(":", 1)[1] for v in s["services"] if v["serviceName"] == "web"]' "['1']"
is "the family has no revision 3" '[t["revision"] for t in s["task_definitions"] if t["family"] == "feat-dev-web"]' "[1, 2]"
[ "$(count RegisterTaskDefinition)" = 0 ] && ok "the rollback registered nothing" || bad "rollback registers" "$(fake GET /fake/stats)"

# === a service made by hand: refused without policy.adopt, taken over with it
aws_ecs CreateCluster '{"clusterName": "legacy-made-by-hand"}' >/dev/null &&
aws_ecs RegisterTaskDefinition '{"family": "billing-by-hand", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512", "containerDefinitions": [{"name": "billing", "image": "billing:v1"}]}' >/dev/null &&
aws_ecs CreateService '{"cluster": "legacy-made-by-hand", "serviceName": "billing", "taskDefinition": "billing-by-hand", "desiredCount": 1, "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-0a1b2c3d4e5f60003"]}}}' >/dev/null &&
	ok "a cluster and service made by hand" || bad "hand-made service" "signed calls failed"
run 2 "plan legacy" "$rc_bin" plan "$cfg" -e legacy && ok "plan legacy: changes"
has "the plan says policy.adopt would take it over" "$out" "policy.adopt"
run 1 "a create that meets the hand-made service fails" "$rc_bin" apply "$cfg" -e legacy --auto-approve && ok "create refused"
has "the error names policy.adopt" "$out" "policy.adopt: true"
has "at the service's line" "$out" "reconcile.yaml:36:"
is "the hand-made service is untouched" \
	'[(v["taskDefinition"].rsplit("/", 1)[1], len(v.get("tags", []))) for v in s["services"] if v["serviceName"] == "billing"]' \
	"[('billing-by-hand:1', 0)]"
cat >>"$cfg/reconcile.yaml" <<'YAML'
    policy:
      adopt: true
YAML
commit "adopt legacy"
run 2 "plan with policy.adopt" "$rc_bin" plan "$cfg" -e legacy && ok "plan adopt"
has "the plan shows the adoption" "$out" "adopt"
run 0 "apply with policy.adopt" "$rc_bin" apply "$cfg" -e legacy --auto-approve && ok "apply adopt"
is "the service is tagged reconcile's" \
	'sorted(t["key"] + "=" + t["value"] for v in s["services"] if v["serviceName"] == "billing" for t in v["tags"])' \
	"['reconcile:environment=legacy', 'reconcile:project=feat']"
is "and runs reconcile's task definition" '[v["taskDefinition"].rsplit("/", 1)[1] for v in s["services"] if v["serviceName"] == "billing"]' \
	"['feat-legacy-billing:1']"
run 0 "clean after adoption" "$rc_bin" plan "$cfg" -e legacy && ok "clean after adoption"

# === a field UpdateService does not take is a replace, with the reason
sed -i '0,/launch_type: FARGATE/s//launch_type: EC2/' "$cfg/reconcile.yaml" && commit "dev on EC2"
run 2 "plan a launch type change" "$rc_bin" plan "$cfg" -e dev && ok "plan launch type change"
has "the service is replaced" "$out" "! service web"
has "with the reason" "$out" "launchType cannot change in place"
has "the plan shows the service's health from observation" "$out" "! service worker  [running 1/1]"
sed -i 's/^  dev:$/  dev:\n    policy: { allow_replace: true }/' "$cfg/reconcile.yaml" && commit "dev may replace"
run 0 "apply the replace" "$rc_bin" apply "$cfg" -e dev --auto-approve && ok "apply replace"
is "web is a new service on EC2" \
	'[(v["launchType"], v["status"]) for v in s["services"] if v["serviceName"] == "web" and v["status"] != "INACTIVE"]' "[('EC2', 'ACTIVE')]"
run 0 "clean after the replace" "$rc_bin" plan "$cfg" -e dev && ok "clean after replace"
sed -i '0,/launch_type: EC2/s//launch_type: FARGATE/' "$cfg/reconcile.yaml" && commit "dev on FARGATE"
run 0 "back to Fargate" "$rc_bin" apply "$cfg" -e dev --auto-approve && ok "back to Fargate"

# === destroy deregisters reconcile's revisions, and only them
run 0 "destroy dev" "$rc_bin" destroy "$cfg" -e dev --auto-approve && ok "destroy dev"
is "every revision of dev's families is INACTIVE (back on Fargate reused revision 1: no 4th)" \
	'sorted((t["family"], t["revision"], t["status"]) for t in s["task_definitions"] if t["family"].startswith("feat-dev-"))' \
	"[('feat-dev-web', 1, 'INACTIVE'), ('feat-dev-web', 2, 'INACTIVE'), ('feat-dev-web', 3, 'INACTIVE'), ('feat-dev-worker', 1, 'INACTIVE'), ('feat-dev-worker', 2, 'INACTIVE')]"
run 0 "destroy legacy" "$rc_bin" destroy "$cfg" -e legacy --auto-approve && ok "destroy legacy"
is "reconcile's revision of the adopted service is deregistered" \
	'[t["status"] for t in s["task_definitions"] if t["family"] == "feat-legacy-billing"]' "['INACTIVE']"
is "the revision made by hand is left alone" \
	'[t["status"] for t in s["task_definitions"] if t["family"] == "billing-by-hand"]' "['ACTIVE']"
finish
