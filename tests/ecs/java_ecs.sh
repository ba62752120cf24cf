#!/usr/bin/env bash
# examples/java-ecs end to end against the fake ECS and Secrets Manager
# (tests/fake/ecs): dev and staging planned and applied with their
# RETAIL_* secrets, re-planned clean; no secret value in any task
# definition, the state directory, the journals or any output; a changed
# value -> one PutSecretValue, no new revision, the services redeployed;
# {aws_secret: ARN} passed through as valueFrom; a missing variable
# refused before anything is applied; a secret of the same name made
# outside reconcile refused at its line; destroy -> DeleteSecret with the
# recovery window, and an apply after it restores the secrets.
#   java_ecs.sh RECONCILE_BINARY SOURCE_ROOT
set -u
rc_bin=$(realpath "$1")
root=$(realpath "$2")
akid=AKIDJAVAECS0001 secret=java-ecs-secret-4b8e0c21aa work_name=rc-java-ecs
. "$root/tests/ecs/fake.sh"
export AWS_ENDPOINT_URL=$base
unset SLACK_WEBHOOK_URL
# sm OP JSON: a Secrets Manager call signed as a user outside reconcile
# would make it; prints the answer's JSON
sm() {
	$py - "$base" "$1" "$2" <<'PY'
import datetime, hashlib, hmac, os, sys, urllib.request
base, op, body = sys.argv[1], sys.argv[2], sys.argv[3].encode()
akid, secret, region = os.environ['AWS_ACCESS_KEY_ID'], os.environ['AWS_SECRET_ACCESS_KEY'], 'us-east-1'
now = datetime.datetime.now(datetime.timezone.utc)
amz, day = now.strftime('%Y%m%dT%H%M%SZ'), now.strftime('%Y%m%d')
host = base.split('//', 1)[1]
hdrs = {'content-type': 'application/x-amz-json-1.1', 'host': host, 'x-amz-date': amz,
        'x-amz-target': 'secretsmanager.' + op}
names = sorted(hdrs)
creq = '\n'.join(['POST', '/', '', ''.join('%s:%s\n' % (n, hdrs[n]) for n in names), ';'.join(names),
                  hashlib.sha256(body).hexdigest()])
scope = '%s/%s/secretsmanager/aws4_request' % (day, region)
sts = '\n'.join(['AWS4-HMAC-SHA256', amz, scope, hashlib.sha256(creq.encode()).hexdigest()])
k = hmac.new(('AWS4' + secret).encode(), day.encode(), hashlib.sha256).digest()
for part in (region, 'secretsmanager', 'aws4_request'):
    k = hmac.new(k, part.encode(), hashlib.sha256).digest()
sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
hdrs['Authorization'] = 'AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s' % (
    akid, scope, ';'.join(names), sig)
del hdrs['host']
req = urllib.request.Request(base + '/', data=body, headers=hdrs, method='POST')
try:
    print(urllib.request.urlopen(req).read().decode())
except urllib.error.HTTPError as e:
    print(e.read().decode())
PY
}
value_of() { sm GetSecretValue "{\"SecretId\": \"$1\"}" | $py -c 'import json,sys; print(json.load(sys.stdin).get("SecretString"))'; }

cfg=$work/java-ecs
cp -r "$root/examples/java-ecs" "$cfg"
git -C "$cfg" init -q -b main && git -C "$cfg" add -A && git -C "$cfg" commit -qm config
commit() { git -C "$cfg" add -A && git -C "$cfg" commit -qm "$1"; }

dev_db=dev-db-pw-7f31c0 dev_mq=dev-mq-pw-93ab2e stg_db=stg-db-pw-51d8e4 stg_mq=stg-mq-pw-0c6b9f
dev_db2=dev-db-pw-rotated-2e8d1a
export RETAIL_DEV_DB_PASSWORD=$dev_db RETAIL_DEV_MQ_PASSWORD=$dev_mq
export RETAIL_STAGING_DB_PASSWORD=$stg_db RETAIL_STAGING_MQ_PASSWORD=$stg_mq
values="$dev_db $dev_mq $stg_db $stg_mq $dev_db2"

run 0 "validate" "$rc_bin" validate "$cfg" && ok "the example validates"
run 2 "the first plan of dev" "$rc_bin" plan "$cfg" -e dev && ok "first plan: exit 2"
has "a secret per secret" "$out" "+ secret SPRING_DATASOURCE_PASSWORD"
has "the other secret" "$out" "+ secret SPRING_RABBITMQ_PASSWORD"
has "its value is hidden" "$out" "(sensitive)"

for e in dev staging; do
	run 0 "apply $e" "$rc_bin" apply "$cfg" -e $e --auto-approve && ok "apply $e"
done
is "four secrets in Secrets Manager" 'sorted(x["Name"] for x in s["secrets"])' \
	"['reconcile/retail-platform/dev/SPRING_DATASOURCE_PASSWORD', 'reconcile/retail-platform/dev/SPRING_RABBITMQ_PASSWORD', 'reconcile/retail-platform/staging/SPRING_DATASOURCE_PASSWORD', 'reconcile/retail-platform/staging/SPRING_RABBITMQ_PASSWORD']"
[ "$(value_of reconcile/retail-platform/dev/SPRING_DATASOURCE_PASSWORD)" = "$dev_db" ] &&
	[ "$(value_of reconcile/retail-platform/staging/SPRING_RABBITMQ_PASSWORD)" = "$stg_mq" ] &&
	ok "Secrets Manager holds the values" || bad "the stored values" "$(value_of reconcile/retail-platform/dev/SPRING_DATASOURCE_PASSWORD)"
is "the containers reference the secrets by ARN" \
	'sorted(set(x["valueFrom"].rsplit("-", 1)[0] for td in s["task_definitions"] if td["family"].startswith("retail-platform-dev-") for c in td["containerDefinitions"] for x in c.get("secrets", [])))' \
	"['arn:aws:secretsmanager:us-east-1:123456789012:secret:reconcile/retail-platform/dev/SPRING_DATASOURCE_PASSWORD', 'arn:aws:secretsmanager:us-east-1:123456789012:secret:reconcile/retail-platform/dev/SPRING_RABBITMQ_PASSWORD']"
is "every container of dev and staging has both" \
	'sorted(set(len(c.get("secrets", [])) for td in s["task_definitions"] for c in td["containerDefinitions"]))' "[2]"
is "no secret in any environment list" \
	'[e["name"] for td in s["task_definitions"] for c in td["containerDefinitions"] for e in c["environment"] if "PASSWORD" in e["name"]]' "[]"

for e in dev staging; do
	fake POST /fake/stats/reset >/dev/null
	run 0 "re-plan $e" "$rc_bin" plan "$cfg" -e $e && ok "re-plan $e clean"
	has "no changes in $e" "$out" "No changes"
	counts "observing $e reads no secret value" "sm:GetSecretValue=0 sm:ListSecrets=1"
done

# === a changed value: one PutSecretValue, no new revision, redeployed
primary='dict((v["serviceName"], [d["id"] for d in v["deployments"] if d["status"] == "PRIMARY"]) for v in s["services"] if v["clusterArn"].endswith("/retail-dev"))'
before=$(q "$primary")
export RETAIL_DEV_DB_PASSWORD=$dev_db2
run 2 "the plan after a rotation" "$rc_bin" plan "$cfg" -e dev && ok "rotation planned"
has "the secret changes" "$out" "~ secret SPRING_DATASOURCE_PASSWORD"
has "the services are redeployed" "$out" "~ service access-service"
has "with a sensitive change" "$out" "(sensitive) -> (sensitive, changed)"
hasnt "no task definition changes" "$out" "task-definition"
fake POST /fake/stats/reset >/dev/null
run 0 "apply the rotation" "$rc_bin" apply "$cfg" -e dev --auto-approve && ok "rotation applied"
counts "one PutSecretValue, no revision, six redeploys" \
	"sm:PutSecretValue=1 sm:CreateSecret=0 RegisterTaskDefinition=0 UpdateService=6"
is "the services still run revision 1" \
	'sorted(set(v["taskDefinition"].rsplit(":", 1)[1] for v in s["services"] if v["clusterArn"].endswith("/retail-dev")))' "['1']"
now=$(q "$primary")
n=$($py -c 'import ast,sys; a,b=ast.literal_eval(sys.argv[1]),ast.literal_eval(sys.argv[2]); print(len([k for k in a if a[k]!=b.get(k)]))' "$before" "$now")
[ "$n" = 6 ] && ok "each of the six services has a new deployment (forceNewDeployment)" || bad "new deployments" "$n changed: $before -> $now"
[ "$(value_of reconcile/retail-platform/dev/SPRING_DATASOURCE_PASSWORD)" = "$dev_db2" ] &&
	ok "Secrets Manager holds the new value" || bad "the new value" "$(value_of reconcile/retail-platform/dev/SPRING_DATASOURCE_PASSWORD)"
run 0 "clean after the rotation" "$rc_bin" plan "$cfg" -e dev && ok "clean after rotation"
has "no changes after the rotation" "$out" "No changes"

# === {aws_secret: ARN} passes through
arn=arn:aws:secretsmanager:us-east-1:123456789012:secret:retail/partner-api-key-Ab12Cd
printf '  PARTNER_API_KEY: { aws_secret: "%s" }\n' "$arn" >>"$cfg/environments/dev.yaml" && commit "partner key"
fake POST /fake/stats/reset >/dev/null
run 0 "apply with an aws_secret" "$rc_bin" apply "$cfg" -e dev --auto-approve && ok "aws_secret applied"
counts "nothing is stored for it" "sm:CreateSecret=0 sm:PutSecretValue=0"
is "the ARN is the valueFrom as given" \
	'sorted(set(x["valueFrom"] for fam in ["retail-platform-dev-ell"] for td in s["task_definitions"] if td["family"] == fam and td["revision"] == max(t["revision"] for t in s["task_definitions"] if t["family"] == fam) for c in td["containerDefinitions"] for x in c["secrets"] if x["name"] == "PARTNER_API_KEY"))' \
	"['$arn']"
run 0 "clean with an aws_secret" "$rc_bin" plan "$cfg" -e dev && ok "clean with aws_secret"

# === a missing variable: refused, nothing applied
fake POST /fake/stats/reset >/dev/null
env -u RETAIL_STAGING_MQ_PASSWORD "$rc_bin" apply "$cfg" -e staging --auto-approve >"$work/missing.out" 2>&1
st=$?; out=$(cat "$work/missing.out"); printf '%s\n' "$out" >>"$outputs"
[ $st = 1 ] && ok "a missing variable fails the apply" || bad "missing variable exit" "exit $st" "$out"
has "the variable is named" "$out" "the variable 'RETAIL_STAGING_MQ_PASSWORD' is not set"
has "the secret is named" "$out" "SPRING_RABBITMQ_PASSWORD"
has "at its line" "$out" "staging.yaml:"
counts "nothing was changed" "sm:CreateSecret=0 sm:PutSecretValue=0 RegisterTaskDefinition=0 UpdateService=0"

# === destroy, then apply again: restored
run 0 "destroy dev" "$rc_bin" destroy "$cfg" -e dev --auto-approve && ok "destroy dev"
is "the dev secrets are scheduled for deletion, not gone" \
	'sorted(x["Name"].rsplit("/", 1)[1] for x in s["secrets"] if "/dev/" in x["Name"] and x.get("DeletedDate"))' \
	"['SPRING_DATASOURCE_PASSWORD', 'SPRING_RABBITMQ_PASSWORD']"
fake POST /fake/stats/reset >/dev/null
run 0 "apply after destroy" "$rc_bin" apply "$cfg" -e dev --auto-approve && ok "apply after destroy"
counts "the secrets are restored and updated" "sm:RestoreSecret=2 sm:PutSecretValue=2 sm:CreateSecret=0"
is "no dev secret is scheduled for deletion" '[x["Name"] for x in s["secrets"] if x.get("DeletedDate") and "/dev/" in x["Name"]]' "[]"
run 0 "clean after the restore" "$rc_bin" plan "$cfg" -e dev && ok "clean after restore"
has "no changes after the restore" "$out" "No changes"

# === a secret removed from the configuration: the plan says the recovery
# window its deletion would have
sed -i '/SPRING_RABBITMQ_PASSWORD/d' "$cfg/environments/dev.yaml" && commit "no mq password"
run 2 "the plan without a secret" "$rc_bin" plan "$cfg" -e dev && ok "secret removal planned"
has "the secret is kept (prune is off)" "$out" "= secret SPRING_RABBITMQ_PASSWORD"
has "its deletion's recovery window is said" "$out" "30-day recovery window"
git -C "$cfg" checkout -q HEAD~1 -- environments/dev.yaml && commit "mq password back"

# === a secret of the same name made outside reconcile is not taken over
sm CreateSecret '{"Name": "reconcile/retail-platform/staging/SPRING_SECURITY_TOKEN", "SecretString": "made-by-hand-0001"}' >/dev/null
printf '  SPRING_SECURITY_TOKEN: { env: RETAIL_STAGING_DB_PASSWORD }\n' >>"$cfg/environments/staging.yaml" && commit "token"
fake POST /fake/stats/reset >/dev/null
run 1 "a secret made outside reconcile fails the apply" "$rc_bin" apply "$cfg" -e staging --auto-approve && ok "untagged secret refused"
has "it says why" "$out" "without reconcile's tags"
has "at the secret's line" "$out" "staging.yaml:"
counts "the secret made by hand is left alone" "sm:PutSecretValue=0 sm:TagResource=0 sm:CreateSecret=0"
[ "$(value_of reconcile/retail-platform/staging/SPRING_SECURITY_TOKEN)" = made-by-hand-0001 ] &&
	ok "its value is untouched" || bad "the hand-made secret changed"
git -C "$cfg" checkout -q HEAD~1 -- environments/staging.yaml && commit "no token"

# === no secret value anywhere
no_value_anywhere "secret value" $values
no_value_anywhere "AWS secret key" "$secret"
finish
