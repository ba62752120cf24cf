#!/usr/bin/env bash
# The Kubernetes driver end to end: the laravel-kubernetes example planned
# and applied against the fake API server (real HTTPS on loopback, a CA
# made at start, bearer tokens): create, no drift from server defaults,
# image change, scale, drift made behind reconcile's back, a field-manager
# conflict, prune, rollback past an irreversible hook, a failing rollout,
# a 403, a 422 mapped to the YAML, a replace, faults (429, 500, reset),
# prune and destroy that return once what they deleted is gone (a slowed
# garbage collector), a deletion that finalizers hold. Secrets never
# show.
#   run.sh RECONCILE_BINARY FAKE_KUBE_BINARY SOURCE_ROOT
set -u
rc_bin=$(realpath "$1")
fake_bin=$(realpath "$2")
root=$(realpath "$3")
export NO_COLOR=1
. "$root/tests/lib.sh"
SHOW=3000 RUN_COUNTS_OK=1
work=$(mktemp -d /tmp/rc-kube-XXXXXX)
export RECONCILE_STATE_DIR=$work/state XDG_CACHE_HOME=$work/cache
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com
export ACME_STAGING_APP_KEY=base64:kube-e2e-app-key-7f3a ACME_STAGING_DB_PASSWORD=kube-e2e-db-pass-91c2
fake=$work/fake
cfg=$work/cfg

cleanup() {
	[ -n "${fake_pid:-}" ] && kill "$fake_pid" 2>/dev/null && wait "$fake_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

# --- the fake API server
mkdir -p "$fake"
kube_fake_start "$fake_bin" "$fake" "$work/fake.log" --controller-delay-ms 20 \
	--token limited=limited-token:deny=delete/deployments
api() { kube_api "$@"; } # METHOD PATH [BODY [CONTENT-TYPE]]: the fake, as an admin
field() { /usr/bin/python3 -c 'import json,sys
o=json.load(sys.stdin)
for k in sys.argv[1].split("."):
    o = o[int(k)] if isinstance(o, list) else o.get(k) if isinstance(o, dict) else None
print(o)' "$1" 2>/dev/null; }

# contexts "staging" and "production" (the example's) on the fake, and
# "limited" with a token that may not delete Deployments
cat >"$work/kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster: { server: "https://127.0.0.1:$port", certificate-authority: "$fake/ca.pem" }
users:
- name: admin
  user: { token: fake-admin-token }
- name: limited
  user: { token: limited-token }
contexts:
- name: staging
  context: { cluster: fake, user: admin }
- name: production
  context: { cluster: fake, user: admin }
- name: limited
  context: { cluster: fake, user: limited }
current-context: staging
YAML
export KUBECONFIG=$work/kubeconfig

# --- the example, in a git repository of its own
cp -r "$root/examples/laravel-kubernetes" "$cfg"
git -C "$cfg" init -q -b main && git -C "$cfg" add -A && git -C "$cfg" commit -qm example
staging=$cfg/environments/staging.yaml
set_policy() { # the staging policy block, as YAML lines
	/usr/bin/python3 - "$staging" "$1" <<'PY'
import re, sys
p, pol = sys.argv[1], sys.argv[2]
s = open(p).read()
s = re.sub(r"policy:\n(  .*\n)+", "policy:\n" + pol + "\n", s)
open(p, "w").write(s)
PY
}
set_policy "  drift: heal
  prune: true"

# --- create
run 2 "first plan has changes" "$rc_bin" plan "$cfg" -e acme-staging
has "the namespace is created" "$out" "+ Namespace acme-staging"
has "services become Deployments" "$out" "+ Deployment web"
has "a port makes a Service" "$out" "+ Service web"
has "config becomes a ConfigMap" "$out" "+ ConfigMap reconcile-config"
has "the raw Ingress passes through" "$out" "+ Ingress web"
has "the migration hook runs after" "$out" "> hook migrate"
has "secrets are sensitive" "$out" "(sensitive)"
hasnt "no secret value in the plan" "$out" "kube-e2e-app-key"
run 0 "apply" "$rc_bin" apply "$cfg" -e acme-staging --auto-approve
has "the hook's Job ran, with its exit status" "$out" "hook migrate: ok"
has "and the end of its log" "$out" "exit status 0; its output ends with:
      php artisan migrate --force"
dep=$(api GET /apis/apps/v1/namespaces/acme-staging/deployments/web)
[ "$(printf '%s' "$dep" | field spec.template.spec.containers.0.image)" = "registry.example.com/brand-sites/web:2.15.0-rc.2" ] &&
	ok "the Deployment runs the staging image" || bad "the Deployment runs the staging image" "$dep"
[ "$(printf '%s' "$dep" | field metadata.labels.app\.kubernetes\.io/managed-by)" != "" ] || true
case "$dep" in *'"app.kubernetes.io/managed-by":"reconcile"'* | *'"app.kubernetes.io/managed-by": "reconcile"'*) ok "objects carry the ownership label" ;;
*) bad "objects carry the ownership label" "$dep" ;; esac
case "$dep" in *'"fieldManager"'* | *'"manager":"reconcile"'* | *'"manager": "reconcile"'*) ok "applied by server-side apply as reconcile" ;;
*) bad "applied by server-side apply as reconcile" "$dep" ;; esac
sec=$(api GET /api/v1/namespaces/acme-staging/secrets/reconcile-secrets)
b64=$(printf '%s' "$ACME_STAGING_APP_KEY" | base64 -w0)
has "the Secret holds the value" "$sec" "$b64"
run 0 "a second plan has no changes: server defaults are not drift" "$rc_bin" plan "$cfg" -e acme-staging
has "no changes" "$out" "No changes"

# --- image change and scale
sed -i 's/web:2.15.0-rc.2/web:2.15.0/g; s/replicas: 1/replicas: 3/' "$staging"
run 2 "plan an image change and a scale" "$rc_bin" plan "$cfg" -e acme-staging
has "the image change is shown" "$out" 'image: "registry.example.com/brand-sites/web:2.15.0-rc.2" -> "registry.example.com/brand-sites/web:2.15.0"'
has "the scale is shown" "$out" "replicas: 1 -> 3"
run 0 "apply the change" "$rc_bin" apply "$cfg" -e acme-staging --auto-approve
[ "$(api GET /apis/apps/v1/namespaces/acme-staging/deployments/web | field status.availableReplicas)" = 3 ] &&
	ok "the rollout completed with 3 available" || bad "the rollout completed with 3 available"
run 0 "converged" "$rc_bin" plan "$cfg" -e acme-staging

# --- drift behind reconcile's back, and the field-manager conflict
api PATCH "/apis/apps/v1/namespaces/acme-staging/deployments/web?fieldManager=kubectl-edit" \
	'{"spec":{"replicas":5}}' application/merge-patch+json >/dev/null
run 2 "drift shows in the plan" "$rc_bin" plan "$cfg" -e acme-staging
has "the edited field is shown" "$out" "replicas: 5 -> 3"
set_policy "  drift: heal
  prune: true
  force_conflicts: false"
run 1 "apply refuses to take over another manager's field (force_conflicts: false)" "$rc_bin" apply "$cfg" -e acme-staging --auto-approve
has "the conflict names the field" "$out" ".spec.replicas"
has "the conflict names the other manager" "$out" "kubectl-edit"
has "the conflict says how to force" "$out" "policy.force_conflicts"
set_policy "  drift: heal
  prune: true"
run 0 "drift: heal takes it back (force_conflicts by default)" "$rc_bin" apply "$cfg" -e acme-staging --auto-approve
[ "$(api GET /apis/apps/v1/namespaces/acme-staging/deployments/web | field spec.replicas)" = 3 ] &&
	ok "replicas are back to 3" || bad "replicas are back to 3"

# --- prune, then rollback past the irreversible hook
cp "$cfg/environments/base.yaml" "$work/base.yaml.bak"
cp "$staging" "$work/staging.yaml.bak"
/usr/bin/python3 - "$cfg/environments/base.yaml" "$staging" <<'PY'
import sys
for p in sys.argv[1:]:
    out, skip = [], False
    for line in open(p):
        if line.startswith("  queue:") or line.startswith("  # the queue worker"):
            skip = True
            continue
        if skip and (line.startswith("    ") or line.strip() == ""):
            continue
        skip = False
        out.append(line)
    open(p, "w").write("".join(out))
PY
run 2 "plan the prune" "$rc_bin" plan "$cfg" -e acme-staging
has "the removed service's Deployment is deleted" "$out" "- Deployment queue"
hasnt "nothing else is deleted" "$out" "- ConfigMap"
# a slow garbage collector (0.6 s: long enough to be seen, short enough to
# end before the third poll at 0.7 s): the prune waits for it
api POST /fake/gc '{"delay_ms": 600}' >/dev/null
run 0 "apply the prune" "$rc_bin" apply "$cfg" -e acme-staging --auto-approve
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$fake/ca.pem" -H "Authorization: Bearer fake-admin-token" \
	"https://127.0.0.1:$port/apis/apps/v1/namespaces/acme-staging/deployments/queue")
[ "$code" = 404 ] && ok "the pruned Deployment is gone when the apply returns" || bad "the pruned Deployment is gone when the apply returns" "HTTP $code"
api POST /fake/gc '{"delay_ms": 0}' >/dev/null
run 1 "rollback stops at the irreversible migration" "$rc_bin" rollback --source "$cfg" -e acme-staging --auto-approve
has "rollback names the hook" "$out" "hook/migrate is irreversible"
run 0 "rollback --force" "$rc_bin" rollback --source "$cfg" -e acme-staging --force --auto-approve
rolled=$out
[ "$(api GET /apis/apps/v1/namespaces/acme-staging/deployments/queue | field metadata.name)" = queue ] &&
	ok "rollback restored the pruned Deployment" || bad "rollback restored the pruned Deployment"
owned=$(api GET /apis/apps/v1/namespaces/acme-staging/deployments/queue | /usr/bin/python3 -c 'import json,sys
o=json.load(sys.stdin)
print([json.dumps(m["fieldsV1"]) for m in o["metadata"]["managedFields"] if m["manager"]=="reconcile"])')
case "$owned" in *'deployment.kubernetes.io/revision'*|*'terminationMessagePath'*) bad "the restored object does not claim the server's fields" "$owned" "$rolled" ;;
*) ok "the restored object does not claim the server's fields" ;; esac
cp "$work/base.yaml.bak" "$cfg/environments/base.yaml"
cp "$work/staging.yaml.bak" "$staging"
run 0 "back in line with the configuration" "$rc_bin" plan "$cfg" -e acme-staging

# --- a failing rollout
api POST /fake/rollout '{"namespace":"acme-staging","name":"web","fail":true}' >/dev/null
sed -i 's/web:2.15.0$/web:2.15.1/; s/web:2.15.0"/web:2.15.1"/' "$staging"
sed -i 's/^  context: staging$/  context: staging\n  wait_timeout: 20s/' "$staging"
run 1 "a failing rollout fails the apply" "$rc_bin" apply "$cfg" -e acme-staging --auto-approve
has "with the condition's message" "$out" "timed out progressing"
api POST /fake/rollout '{"namespace":"acme-staging","name":"web","fail":false}' >/dev/null
run 0 "the next apply heals it" "$rc_bin" apply "$cfg" -e acme-staging --auto-approve

# --- a server-side validation error, mapped to the YAML
cat >>"$cfg/k8s/ingress.yaml" <<'YAML'
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: broken
spec:
  selector:
    matchLabels: { app: broken }
  template:
    metadata:
      labels: { app: other }
    spec:
      containers:
        - name: c
          image: busybox:1.36
YAML
run 1 "--server-dry-run fails on what the server refuses" "$rc_bin" plan "$cfg" -e acme-staging --server-dry-run
has "the 422 points at the manifest" "$out" "k8s/ingress.yaml:"
has "the 422 gives the server's cause" "$out" "selector"
git -C "$cfg" checkout -q -- k8s/ingress.yaml

# --- a change that needs a replace
cat >>"$cfg/k8s/ingress.yaml" <<'YAML'
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  selector:
    matchLabels: { app: worker }
  template:
    metadata:
      labels: { app: worker, tier: a }
    spec:
      containers:
        - name: c
          image: busybox:1.36
YAML
run 0 "a raw Deployment is applied" "$rc_bin" apply "$cfg" -e acme-staging --auto-approve
sed -i 's/matchLabels: { app: worker }/matchLabels: { app: worker, tier: a }/' "$cfg/k8s/ingress.yaml"
run 2 "a selector change is planned as a replace" "$rc_bin" plan "$cfg" -e acme-staging
has "shown as !" "$out" "! Deployment worker"
has "with the reason" "$out" "cannot change in place"
run 1 "apply refuses the replace by default" "$rc_bin" apply "$cfg" -e acme-staging --auto-approve
has "and says how to allow it" "$out" "policy.allow_replace"
set_policy "  drift: heal
  prune: true
  force_conflicts: true
  allow_replace: true"
run 0 "with allow_replace it is replaced" "$rc_bin" apply "$cfg" -e acme-staging --auto-approve
[ "$(api GET /apis/apps/v1/namespaces/acme-staging/deployments/worker | field spec.selector.matchLabels.tier)" = a ] &&
	ok "the new selector is in place" || bad "the new selector is in place"

# --- custom resources: discovery finds them; an unknown group is named
cat >>"$cfg/k8s/ingress.yaml" <<'YAML'
---
apiVersion: example.com/v1
kind: Widget
metadata:
  name: gizmo
spec:
  size: 3
YAML
run 0 "a custom resource is applied" "$rc_bin" apply "$cfg" -e acme-staging --auto-approve
[ "$(api GET /apis/example.com/v1/namespaces/acme-staging/widgets/gizmo | field spec.size)" = 3 ] &&
	ok "the Widget is on the server" || bad "the Widget is on the server"
run 0 "a custom resource does not drift" "$rc_bin" plan "$cfg" -e acme-staging
cat >>"$cfg/k8s/ingress.yaml" <<'YAML'
---
apiVersion: example.org/v1
kind: Gadget
metadata:
  name: nope
YAML
run 1 "a kind the server does not serve fails the plan" "$rc_bin" plan "$cfg" -e acme-staging
has "naming the group version and the likely cause" "$out" "does not serve example.org/v1 (is its CustomResourceDefinition installed?)"
/usr/bin/python3 - "$cfg/k8s/ingress.yaml" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
open(p, "w").write(s[:s.index("---\napiVersion: example.org/v1")])
PY

# --- a LIST answered 410 Gone (an expired continue token) is listed again
api POST /fake/faults '{"rules":[{"match":"GET /api/v1/namespaces/acme-staging/configmaps","status":410,"count":1}]}' >/dev/null
run 0 "a 410 on a LIST is listed again" "$rc_bin" plan "$cfg" -e acme-staging
api POST /fake/faults '{"rules":[{"match":"GET /api/v1/namespaces/acme-staging/configmaps","status":410}]}' >/dev/null
run 1 "a LIST that stays 410 fails after a few tries" "$rc_bin" plan "$cfg" -e acme-staging
has "naming the 410" "$out" "410 Gone"
api DELETE /fake/faults >/dev/null

# --- a kind no longer declared is still observed (kinds.json) and pruned
/usr/bin/python3 - "$cfg/k8s/ingress.yaml" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
open(p, "w").write(s[:s.index("---\napiVersion: example.com/v1")])
PY
run 2 "plan without the Widget" "$rc_bin" plan "$cfg" -e acme-staging
has "the Widget is pruned" "$out" "- Widget.example.com gizmo"
run 0 "apply the prune of the Widget" "$rc_bin" apply "$cfg" -e acme-staging --auto-approve
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$fake/ca.pem" -H "Authorization: Bearer fake-admin-token" \
	"https://127.0.0.1:$port/apis/example.com/v1/namespaces/acme-staging/widgets/gizmo")
[ "$code" = 404 ] && ok "the Widget is gone" || bad "the Widget is gone" "HTTP $code"

# --- faults: throttling and a dropped connection are retried; a 500 that lasts is reported
api POST /fake/faults '{"rules":[{"match":"PATCH /apis/apps/v1/namespaces/acme-staging/deployments/web","status":429,"retry_after":1,"count":2},{"match":"GET /api/v1/namespaces/acme-staging/configmaps","reset":true,"count":1}]}' >/dev/null
sed -i 's/replicas: 3/replicas: 2/' "$staging"
run 0 "429s and a reset are retried" "$rc_bin" apply "$cfg" -e acme-staging --auto-approve
api DELETE /fake/faults >/dev/null
api POST /fake/faults '{"rules":[{"match":"GET /api/v1/namespaces/acme-staging/services","status":500}]}' >/dev/null
run 1 "a lasting 500 fails the plan" "$rc_bin" plan "$cfg" -e acme-staging
has "naming the status" "$out" "500"
api DELETE /fake/faults >/dev/null

# --- RBAC: a user who may not delete Deployments
sed -i 's/^  context: staging$/  context: limited/' "$staging"
sed -i 's/^    file: k8s\/ingress.yaml$/    file: k8s\/ingress.yaml/' "$cfg/environments/base.yaml"
git -C "$cfg" checkout -q -- k8s/ingress.yaml
run 1 "a 403 fails the apply" "$rc_bin" apply "$cfg" -e acme-staging --auto-approve
has "naming the verb and resource" "$out" 'cannot delete resource "deployments"'
has "with the Role rule that allows it" "$out" 'verbs: ["delete"]'
sed -i 's/^  context: limited$/  context: staging/' "$staging"

# --- a hook that fails: its exit status and the end of its log
sed -i 's/run: \[php, artisan, migrate, --force\]/run: [php, artisan, migrate, --force, --fail-on-purpose]/' "$cfg/environments/base.yaml"
sed -i 's/replicas: 2/replicas: 1/' "$staging"
run 1 "a failing hook Job fails the apply" "$rc_bin" apply "$cfg" -e acme-staging --auto-approve
has "with the hook's exit status" "$out" "hook 'migrate' exited with status 1"
has "and the end of its log" "$out" "php artisan migrate --force --fail-on-purpose"
git -C "$cfg" checkout -q -- environments/base.yaml

# --- credentials the server does not accept
sed -i 's/user: { token: limited-token }/user: { token: limited-token }\n- name: stale\n  user: { token: no-such-token }/; s/^current-context: staging$/- name: stale\n  context: { cluster: fake, user: stale }\ncurrent-context: staging/' "$work/kubeconfig"
sed -i 's/^  context: staging$/  context: stale/' "$staging"
run 1 "a 401 fails the plan" "$rc_bin" plan "$cfg" -e acme-staging
has "saying the credentials were refused" "$out" "did not accept the credentials"
hasnt "without the token" "$out" "no-such-token"
sed -i 's/^  context: stale$/  context: staging/' "$staging"

# --- destroy returns once what it deleted is gone
left() { # what the fake holds of the environment: "<Deployments> <objects in its namespace> <its namespace>"
	api GET /fake/objects | /usr/bin/python3 -c 'import json,sys
o = json.load(sys.stdin)["items"]
ns = [i for i in o if i["metadata"].get("namespace") == "acme-staging"]
print(sum(i["kind"] == "Deployment" for i in ns), len(ns),
      sum(i["kind"] == "Namespace" and i["metadata"]["name"] == "acme-staging" for i in o))'
}
api POST /fake/gc '{"delay_ms": 600}' >/dev/null
api POST /fake/stats/reset >/dev/null
t0=$(date +%s%N)
run 0 "destroy, with the garbage collector slowed down" "$rc_bin" destroy "$cfg" -e acme-staging --auto-approve
took=$((($(date +%s%N) - t0) / 1000000))
now=$(left)
[ "$now" = "0 0 0" ] && ok "destroy returns once the fake holds none of it: no Deployment, no object, no namespace" ||
	bad "destroy returns once the fake holds none of it: no Deployment, no object, no namespace" "left: $now" "$out"
has "the namespace is deleted last, and waited on" "$out" "Namespace acme-staging: ok"
stats=$(api GET /fake/stats)
echo "# destroy with a 0.6 s garbage collector: ${took} ms, requests $stats"
# (with a Job of its own this time, whose pod is its dependent)
cat >>"$cfg/k8s/ingress.yaml" <<'YAML'
---
apiVersion: batch/v1
kind: Job
metadata:
  name: seed
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: seed
          image: busybox:1.36
          command: [echo, seeded]
YAML
run 0 "an apply right after the destroy succeeds" "$rc_bin" apply "$cfg" -e acme-staging --auto-approve
[ "$(api GET /apis/apps/v1/namespaces/acme-staging/deployments/web | field metadata.name)" = web ] &&
	ok "and makes everything again" || bad "and makes everything again" "$out"

# --- a deletion that does not end: finalizers that nothing removes
api POST /fake/gc '{"delay_ms": 0}' >/dev/null
protect='{"metadata":{"finalizers":["example.com/protect"]}}'
api PATCH "/apis/apps/v1/namespaces/acme-staging/deployments/web?fieldManager=protector" "$protect" application/merge-patch+json >/dev/null
pod=$(api GET "/api/v1/namespaces/acme-staging/pods?labelSelector=job-name%3Dseed" | field items.0.metadata.name)
api PATCH "/api/v1/namespaces/acme-staging/pods/$pod?fieldManager=protector" "$protect" application/merge-patch+json >/dev/null
sed -i 's/^  wait_timeout: 20s$/  wait_timeout: 2s/' "$staging"
run 1 "destroy fails when a deletion does not end within target.wait_timeout" "$rc_bin" destroy "$cfg" -e acme-staging --auto-approve
has "naming the object and saying it is still terminating" "$out" "deployments.apps 'web' in namespace 'acme-staging' is still terminating 2s after its deletion at "
has "and the finalizer it waits for, and who must remove it" "$out" "finalizer 'example.com/protect': another controller must remove it"
has "an owner names the dependent that holds it" "$out" "jobs.batch 'seed' in namespace 'acme-staging' is still terminating"
has "with that dependent's finalizer" "$out" "the garbage collector deletes its dependents first; still there: pods '$pod' (terminating, finalizer 'example.com/protect')"
has "the namespace is left alone" "$out" "Namespace acme-staging: skipped"
api PATCH "/apis/apps/v1/namespaces/acme-staging/deployments/web" '{"metadata":{"finalizers":null}}' application/merge-patch+json >/dev/null
api PATCH "/api/v1/namespaces/acme-staging/pods/$pod" '{"metadata":{"finalizers":null}}' application/merge-patch+json >/dev/null
run 0 "once the finalizers are removed, a second destroy finishes" "$rc_bin" destroy "$cfg" -e acme-staging --auto-approve
now=$(left)
[ "$now" = "0 0 0" ] && ok "and nothing of the environment is left" || bad "and nothing of the environment is left" "left: $now" "$out"

# --- a manual environment (production: policy.apply: manual) is applied,
# destroyed and rolled back only when approved: from a saved plan
export ACME_PRODUCTION_APP_KEY=base64:kube-e2e-prod-key-2b8d ACME_PRODUCTION_DB_PASSWORD=kube-e2e-prod-pass-55e1
prod_web() { api GET /apis/apps/v1/namespaces/acme-production/deployments/web | field spec.template.spec.containers.0.image; }
run 1 "--auto-approve does not apply the manual production" "$rc_bin" apply "$cfg" -e acme-production --auto-approve
has "the plan says it waits for approval" "$out" ", applied only when approved (policy.apply: manual)"
has "the refusal says how to apply it" "$out" "reconcile plan $cfg -e acme-production -o acme-production-plan.json"
[ "$(prod_web)" = None ] && ok "nothing reached the cluster" || bad "nothing reached the cluster" "$(prod_web)"
run 2 "plan -o saves production's plan" "$rc_bin" plan "$cfg" -e acme-production -o "$work/prod-plan.json"
run 0 "the saved plan applies" "$rc_bin" apply "$work/prod-plan.json"
[ "$(prod_web)" = registry.example.com/brand-sites/web:2.14.3 ] && ok "production runs its image" || bad "production runs its image" "$(prod_web)"
sed -i 's/web:2.14.3/web:2.14.4/g' "$cfg/environments/production.yaml"
run 2 "plan the next production release" "$rc_bin" plan "$cfg" -e acme-production -o "$work/prod-plan2.json"
run 0 "and apply it" "$rc_bin" apply "$work/prod-plan2.json"
[ "$(prod_web)" = registry.example.com/brand-sites/web:2.14.4 ] && ok "production runs the new image" || bad "production runs the new image" "$(prod_web)"
run 1 "rollback --auto-approve of production is refused" "$rc_bin" rollback --source "$cfg" -e acme-production --force --auto-approve
has "the rollback says how" "$out" "reconcile rollback --source $cfg --force -e acme-production -o acme-production-rollback.json"
[ "$(prod_web)" = registry.example.com/brand-sites/web:2.14.4 ] && ok "production is unchanged" || bad "production is unchanged" "$(prod_web)"
run 2 "rollback -o saves the rollback" "$rc_bin" rollback --source "$cfg" -e acme-production --force -o "$work/prod-rollback.json"
hasnt "a hook's Job is not a resource to restore" "$out" "+ Job migrate-"
run 0 "the saved rollback applies" "$rc_bin" apply "$work/prod-rollback.json"
[ "$(prod_web)" = registry.example.com/brand-sites/web:2.14.3 ] && ok "production runs the previous image" || bad "production runs the previous image" "$(prod_web)"
run 1 "destroy --auto-approve leaves production" "$rc_bin" destroy "$cfg" -e acme-production --auto-approve
has "saying how to destroy it" "$out" "reconcile destroy $cfg -e acme-production -o acme-production-destroy.json"
[ "$(prod_web)" != None ] && ok "production still runs" || bad "production still runs"
run 2 "destroy -o saves production's removal" "$rc_bin" destroy "$cfg" -e acme-production -o "$work/prod-destroy.json"
run 0 "the saved removal applies" "$rc_bin" apply "$work/prod-destroy.json"
[ "$(api GET /api/v1/namespaces/acme-production | field metadata.name)" = None ] && ok "production's namespace is gone" ||
	bad "production's namespace is gone" "$(api GET /api/v1/namespaces/acme-production)"

# --- secrets never leave
all=$(grep -r -a . "$RECONCILE_STATE_DIR" 2>/dev/null)
hasnt "no secret value in the state directory" "$all" "kube-e2e-app-key"
hasnt "no base64 secret in the state directory" "$all" "$b64"
hasnt "no production secret in the state directory" "$all" "kube-e2e-prod"

finish
