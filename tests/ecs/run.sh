#!/usr/bin/env bash
# examples/java-ecs end to end against the fake ECS and Secrets Manager
# (tests/fake/ecs), as its team would run it: dev and staging applied by
# one apply, prod (policy.apply: manual) left for approval and applied
# from its saved plan; every environment re-planned clean; one service's
# image changed -> exactly one new revision and one UpdateService;
# replicas changed -> no new revision; a circuit-breaker failure reported
# with its reason and the service's events; rollback; a target hook's
# exit code; a desired count changed behind reconcile's back shown and
# healed; throttling bursts survived; a wrong AWS secret key refused with
# a clear message; destroy of all three; no secret value (nor the AWS
# secret key) in any task definition, the state directory or the output.
# The secrets' own lifecycle is ecs.java's (java_ecs.sh); the driver's
# edge cases on a small configuration are ecs.edge's (edge.sh).
#   run.sh RECONCILE_BINARY SOURCE_ROOT
set -u
rc_bin=$(realpath "$1")
root=$(realpath "$2")
akid=AKIDECSE2E0001 secret=ecs-e2e-secret-9f3c1a77d2 work_name=rc-ecs
. "$root/tests/ecs/fake.sh"
export AWS_ENDPOINT_URL=$base
unset SLACK_WEBHOOK_URL

cfg=$work/java-ecs
cp -r "$root/examples/java-ecs" "$cfg"
# The example has no hook (its chat is told through notify:); a
# migration hook run as a task of the access service is added to the copy
# (to base.yaml, so every environment runs it) for the hook scenario.
printf '%s\n' 'hooks:' '  post_apply:' '    - name: migrate' '      where: target' \
	'      service: access-service' '      run: [/app/migrate, --yes]' '      timeout: 30s' \
	>>"$cfg/environments/base.yaml"
git -C "$cfg" init -q -b main && git -C "$cfg" add -A && git -C "$cfg" commit -qm config
commit() { git -C "$cfg" add -A && git -C "$cfg" commit -qm "$1"; }

dev_db=dev-db-pw-e2e-5a91c3 dev_mq=dev-mq-pw-e2e-7d20f4 stg_db=stg-db-pw-e2e-c38b19
stg_mq=stg-mq-pw-e2e-04e6da prod_db=prod-db-pw-e2e-9b7c52 prod_mq=prod-mq-pw-e2e-e1f8a0
export RETAIL_DEV_DB_PASSWORD=$dev_db RETAIL_DEV_MQ_PASSWORD=$dev_mq
export RETAIL_STAGING_DB_PASSWORD=$stg_db RETAIL_STAGING_MQ_PASSWORD=$stg_mq
export RETAIL_PROD_DB_PASSWORD=$prod_db RETAIL_PROD_MQ_PASSWORD=$prod_mq

# image and desired count of a service of an environment, as the fake runs it
svc_is() { # NAME ENV SERVICE EXPECTED
	is "$1" '[(t["containerDefinitions"][0]["image"].split("/")[-1], v["desiredCount"]) for v in s["services"] if v["serviceName"] == "'"$3"'" and v["clusterArn"].endswith("/retail-'"$2"'") and v["status"] == "ACTIVE" for t in s["task_definitions"] if t["taskDefinitionArn"] == v["taskDefinition"]]' "$4"
}
desired() { # NAME ENV SERVICE N
	is "$1" '[v["desiredCount"] for v in s["services"] if v["serviceName"] == "'"$3"'" and v["clusterArn"].endswith("/retail-'"$2"'") and v["status"] == "ACTIVE"]' "[$4]"
}

# === dev, staging and prod created
run 0 "the example validates" "$rc_bin" validate "$cfg" && ok "validate"
run 2 "the first plan of dev" "$rc_bin" plan "$cfg" -e dev && ok "first plan: exit 2"
has "the cluster is created" "$out" "+ cluster retail-dev"
has "a task definition per service" "$out" "+ task-definition notification-consumer"
has "the services are created" "$out" "+ service retailer-module"
has "the secrets are stored" "$out" "+ secret SPRING_DATASOURCE_PASSWORD"
run 0 "one apply of every environment" "$rc_bin" apply "$cfg" --auto-approve && ok "apply: dev and staging"
has "prod is left for approval" "$out" "environment 'prod' is applied only when approved"
has "with the commands that apply it" "$out" "reconcile apply prod-plan.json"
has "the target hook ran as a task" "$out" "hook migrate: ok"
has "the chat is not told without its webhook, and says so" "$out" \
	"notify 'team-chat' is not told anything: the variable 'SLACK_WEBHOOK_URL' that holds its url is not set"
is "dev and staging run six services each, prod none yet" \
	'sorted((c["clusterName"], len([v for v in s["services"] if v["clusterArn"] == c["clusterArn"] and v["status"] == "ACTIVE"])) for c in s["clusters"])' \
	"[('retail-dev', 6), ('retail-staging', 6)]"
run 2 "prod's plan saved for review" "$rc_bin" plan "$cfg" -e prod -o "$work/prod-plan.json" && ok "plan prod -o"
has "the plan says prod waits for approval" "$out" "applied only when approved (policy.apply: manual)"
run 0 "prod applied from its saved plan" "$rc_bin" apply "$work/prod-plan.json" && ok "apply prod-plan.json"
is "prod runs its six services with its counts" \
	'sorted((v["serviceName"], v["desiredCount"]) for v in s["services"] if v["clusterArn"].endswith("/retail-prod") and v["status"] == "ACTIVE")' \
	"[('access-service', 3), ('ell', 3), ('map-service', 4), ('notification-consumer', 2), ('notification-producer', 2), ('retailer-module', 3)]"
svc_is "prod's ell is 3.3.1" prod ell "[('ell:3.3.1', 3)]"
is "every service deploys with the circuit breaker and rollback" \
	'sorted(set(json.dumps(v["deploymentConfiguration"]["deploymentCircuitBreaker"], sort_keys=True) for v in s["services"]))' \
	"['{\"enable\": true, \"rollback\": true}']"

# === re-plan clean
for e in dev staging prod; do
	run 0 "re-plan $e" "$rc_bin" plan "$cfg" -e $e && ok "re-plan $e: exit 0"
	has "no changes in $e" "$out" "No changes"
done

# === one service's image changed: one revision, one UpdateService
sed -i 's/ell:3.4.0/ell:3.5.0/' "$cfg/environments/dev.yaml" && commit "ell 3.5.0"
fake POST /fake/stats/reset >/dev/null
run 0 "apply the new image" "$rc_bin" apply "$cfg" -e dev --auto-approve && ok "apply image"
has "ell's task definition changes" "$out" "~ task-definition ell"
hasnt "the other services are left alone" "$out" "map-service"
counts "exactly one new revision and one UpdateService" "RegisterTaskDefinition=1 UpdateService=1 CreateService=0"
svc_is "ell runs 3.5.0" dev ell "[('ell:3.5.0', 1)]"
run 0 "clean after the image change" "$rc_bin" plan "$cfg" -e dev && ok "clean after image"

# === replicas changed: the service alone, no new revision
sed -i '/map-service:/s/replicas: 1/replicas: 3/' "$cfg/environments/dev.yaml" && commit "3 map-service"
fake POST /fake/stats/reset >/dev/null
run 0 "apply a replicas change" "$rc_bin" apply "$cfg" -e dev --auto-approve && ok "apply replicas"
has "the service is updated" "$out" "~ service map-service"
hasnt "no task definition changes" "$out" "task-definition"
counts "replicas: no new revision, one UpdateService" "RegisterTaskDefinition=0 UpdateService=1"
desired "dev runs 3 map-service tasks" dev map-service 3

# === a failed deployment: the circuit breaker rolls back
fake POST /fake/deployments/script '{"task_definition_regex": "retail-platform-dev-ell", "fail": true, "count": 1}' >/dev/null
sed -i 's/ell:3.5.0/ell:3.6.0-broken/' "$cfg/environments/dev.yaml" && commit "ell broken"
run 1 "a failing deployment fails the apply" "$rc_bin" apply "$cfg" -e dev --auto-approve && ok "failed deployment: exit 1"
has "the reason is shown" "$out" "circuit breaker"
has "the service's events are shown" "$out" "deployment failed: tasks failed to start"
has "the error points at the image's line" "$out" "environments/dev.yaml:11:3: ecs: the deployment of service ell failed"
fake DELETE /fake/deployments/script >/dev/null
sed -i 's/ell:3.6.0-broken/ell:3.5.0/' "$cfg/environments/dev.yaml" && commit "ell back"
run 0 "back to a working image" "$rc_bin" apply "$cfg" -e dev --auto-approve && ok "apply after failure"
run 0 "clean after the repair" "$rc_bin" plan "$cfg" -e dev && ok "clean after repair"

# === rollback: the service's previous task definition and count
sed -i -e 's/ell:3.5.0/ell:3.7.0/' -e '/ell:/s/replicas: 1/replicas: 2/' "$cfg/environments/dev.yaml" && commit "ell 3.7.0, 2 tasks"
run 0 "apply ell 3.7.0 and 2 tasks" "$rc_bin" apply "$cfg" -e dev --auto-approve && ok "apply before rollback"
svc_is "applied: ell 3.7.0, 2 tasks" dev ell "[('ell:3.7.0', 2)]"
run 0 "rollback" "$rc_bin" rollback --source "$cfg" -e dev --auto-approve && ok "rollback"
has "the rollback changes ell" "$out" "service ell"
svc_is "rolled back: ell 3.5.0 again, 1 task" dev ell "[('ell:3.5.0', 1)]"
sed -i -e 's/ell:3.7.0/ell:3.5.0/' -e '/ell:/s/replicas: 2/replicas: 1/' "$cfg/environments/dev.yaml" && commit "ell 3.5.0, 1 task"
run 0 "the rollback restored what the configuration says again" "$rc_bin" plan "$cfg" -e dev && ok "clean after rollback"

# === a hook task's exit code
fake POST /fake/tasks/script '{"match": "/app/migrate", "exit": 3, "count": 1}' >/dev/null
sed -i '/retailer-module:/s/replicas: 1/replicas: 2/' "$cfg/environments/dev.yaml" && commit "2 retailer-module"
fake POST /fake/stats/reset >/dev/null
run 1 "a failing hook fails the apply" "$rc_bin" apply "$cfg" -e dev --auto-approve && ok "hook failure: exit 1"
has "the hook's exit code is reported" "$out" "exited with status 3"
counts "one RunTask of the hook, no revision" "RunTask=1 RegisterTaskDefinition=0"
is "the task ran the hook's command on the access service's task definition" \
	'[(t["overrides"]["containerOverrides"][0]["command"], t["taskDefinitionArn"].rsplit("/", 1)[1].rsplit(":", 1)[0]) for t in s["tasks"] if t.get("containers") and t["containers"][0].get("exitCode") == 3]' \
	"[(['/app/migrate', '--yes'], 'retail-platform-dev-access-service')]"

# === drift: a desired count changed behind reconcile's back, then healed
fake POST /fake/services/desired '{"cluster": "retail-dev", "service": "notification-consumer", "desiredCount": 5}' >/dev/null
run 2 "a plan sees the drift" "$rc_bin" plan "$cfg" -e dev && ok "drift: exit 2"
has "the drifted service" "$out" "~ service notification-consumer"
has "on desiredCount" "$out" "desiredCount"
run 0 "apply heals the drift" "$rc_bin" apply "$cfg" -e dev --auto-approve && ok "drift healed"
desired "dev runs 1 notification-consumer again" dev notification-consumer 1
run 0 "clean after healing" "$rc_bin" plan "$cfg" -e dev && ok "clean after drift"

# === throttling bursts on the calls of an apply are survived
ops="ListSecrets DescribeClusters ListServices DescribeServices UpdateService"
for op in $ops; do
	fake POST /fake/faults "{\"target_regex\": \"\\\\.$op\$\", \"type\": \"ThrottlingException\", \"status\": 400, \"count\": 2}" >/dev/null
done
: >"$work/fake.requests"
sed -i '/notification-producer:/s/replicas: 1/replicas: 3/' "$cfg/environments/staging.yaml" && commit "3 producers in staging"
run 0 "an apply through throttling bursts" "$rc_bin" apply "$cfg" -e staging --auto-approve && ok "throttled apply"
for op in $ops; do
	l=$(grep -n "\.$op " "$work/fake.requests")
	[ "$(grep -c " 400 t=" <<<"$l")" = 2 ] && tail -1 <<<"$l" | grep -q " 200 t=" &&
		ok "$op: two ThrottlingExceptions, then retried to 200" || bad "$op retried" "$l"
done
desired "staging runs 3 notification-producer tasks" staging notification-producer 3
fake DELETE /fake/faults >/dev/null

# === a wrong AWS secret key
wrong=wrong-secret-key-0c9d2e
AWS_SECRET_ACCESS_KEY=$wrong run 1 "a wrong secret key fails the plan" "$rc_bin" plan "$cfg" -e dev && ok "wrong secret key: exit 1"
has "a clear auth error" "$out" "AWS did not accept the credentials"
has "AWS's reason" "$out" "InvalidSignatureException"
has "which variables to check" "$out" "AWS_SECRET_ACCESS_KEY"

# === destroy
run 0 "destroy dev and staging" "$rc_bin" destroy "$cfg" -e dev -e staging --auto-approve && ok "destroy dev and staging"
run 2 "prod's destroy saved for review" "$rc_bin" destroy "$cfg" -e prod -o "$work/prod-destroy.json" && ok "destroy prod -o"
run 0 "prod destroyed from its saved plan" "$rc_bin" apply "$work/prod-destroy.json" && ok "apply prod-destroy.json"
is "no active service is left" '[v["serviceName"] for v in s["services"] if v["status"] == "ACTIVE"]' "[]"
is "the clusters reconcile made are gone" '[c["clusterName"] for c in s["clusters"] if c["status"] == "ACTIVE"]' "[]"
is "every revision is deregistered" '[t["family"] for t in s["task_definitions"] if t["status"] == "ACTIVE"]' "[]"
is "the secrets are scheduled for deletion" '[x["Name"] for x in s["secrets"] if not x.get("DeletedDate")]' "[]"

# === no secret value, no AWS secret key anywhere
no_value_anywhere "secret value" $dev_db $dev_mq $stg_db $stg_mq $prod_db $prod_mq
no_value_anywhere "AWS secret key" "$secret" "$wrong"
finish
