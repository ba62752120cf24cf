#!/usr/bin/env bash
# The controller's deployment files (Dockerfile, examples/controller/):
# read as the cluster, Docker and systemd read them (check_files.py),
# shown to catch what they must (the same checks on broken copies), the
# unit verified by systemd-analyze when it is there, and the manifests
# applied by reconcile itself to the fake Kubernetes API server, then
# planned again with nothing left to do.
#   run.sh RECONCILE_BINARY FAKE_KUBE_BINARY SOURCE_ROOT PYTHON
set -u
rc_bin=$(realpath "$1")
fake_bin=$(realpath "$2")
root=$(realpath "$3")
py=${4:-/usr/bin/python3}
export NO_COLOR=1
. "$root/tests/lib.sh"
work=$(mktemp -d /tmp/rc-deploy-XXXXXX)
export RECONCILE_STATE_DIR=$work/state XDG_CACHE_HOME=$work/cache
cleanup() {
	[ -n "${fake_pid:-}" ] && kill "$fake_pid" 2>/dev/null && wait "$fake_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

if ! "$py" -c 'import yaml' 2>/dev/null; then
	echo "skipped: $py has no yaml module (Debian package python3-yaml)"
	exit 77
fi

# --- the files as they are
out=$("$py" "$root/tests/deploy/check_files.py" "$root" 2>&1)
if [ $? -eq 0 ]; then ok "check_files.py: ${out##*$'\n'}"; else bad "check_files.py" "$(grep -A3 '^FAIL' <<<"$out")"; fi

# --- and broken: each copy must fail the check named
copy_tree() { # a copy of what check_files.py reads
	rm -rf "$work/copy" && mkdir -p "$work/copy/examples" "$work/copy/docs/drivers"
	cp -r "$root/examples/controller" "$work/copy/examples/"
	cp "$root/Dockerfile" "$work/copy/"
	cp "$root/docs/drivers/kubernetes.md" "$work/copy/docs/drivers/"
}
k=examples/controller/kubernetes
broken() { # NAME CHECK-THAT-MUST-FAIL SED-SCRIPT FILE
	copy_tree
	sed -i "$3" "$work/copy/$4"
	cmp -s "$root/$4" "$work/copy/$4" && { bad "$1" "the sed script changed nothing in $4"; return; }
	local o
	o=$("$py" "$root/tests/deploy/check_files.py" "$work/copy" --no-tools 2>&1)
	if [ $? -ne 0 ] && grep -q "^FAIL .*$2" <<<"$o"; then ok "$1"; else bad "$1" "expected: FAIL ...$2" "$(grep '^FAIL' <<<"$o")"; fi
}
broken "caught: an unknown flag" "every container arg is a flag" \
	's/- --log-format$/- --log-formats/' $k/deployment.yaml
broken "caught: a probe on the wrong path" "readinessProbe is GET /readyz" \
	's|path: /readyz|path: /healthz|' $k/deployment.yaml
broken "caught: a probe on another port" "livenessProbe is GET /healthz on port 8080" \
	'0,/port: 8080/s//port: 9090/' $k/deployment.yaml
broken "caught: listening on loopback only" "--listen 0.0.0.0:PORT" \
	's/- 0.0.0.0:8080/- 127.0.0.1:8080/' $k/deployment.yaml
broken "caught: a writable root filesystem" "readOnlyRootFilesystem" \
	's/readOnlyRootFilesystem: true/readOnlyRootFilesystem: false/' $k/deployment.yaml
broken "caught: a Secret key that is not the variable's name" "holds the two variables" \
	's/^  RECONCILE_WEBHOOK_SECRET:/  WEBHOOK_SECRET:/' $k/secret.example.yaml
broken "caught: a wildcard rule" "no wildcard in any rule" \
	's/resources: \[replicasets\]/resources: ["*"]/' $k/rbac.yaml
broken "caught: a rule of the driver missing" "grants what docs/drivers/kubernetes.md asks for" \
	's/resources: \[pods, pods\/log\]/resources: [pods]/' $k/rbac.yaml
broken "caught: leases cluster-wide" "no cluster-wide leases" \
	's/resources: \[replicasets\]/resources: [replicasets, leases]/' $k/rbac.yaml
broken "caught: a manifest kustomize does not apply" "lists every manifest" \
	'/  - pvc.yaml/d' $k/kustomization.yaml
broken "caught: the HA variant without leader election" "kubernetes-ha: --leader-elect on" \
	's/value: --leader-elect/value: --log-format=json/' examples/controller/kubernetes-ha/kustomization.yaml
broken "caught: a compiler in the final image" "no compiler" \
	's/libssl3 libuuid1/libssl3 gcc libuuid1/' Dockerfile
broken "caught: the image running as root" "a fixed non-root uid" \
	's/^USER 65532:65532/USER root/' Dockerfile
broken "caught: a unit without ProtectSystem=strict" "ProtectSystem=strict" \
	's/^ProtectSystem=strict/ProtectSystem=full/' examples/controller/systemd/reconcile.service

# --- the unit, as systemd reads it (the binary: the one just built)
if command -v systemd-analyze >/dev/null; then
	sed "s|/usr/local/bin/reconcile controller|$rc_bin controller|" \
		"$root/examples/controller/systemd/reconcile.service" >"$work/reconcile.service"
	run 0 "systemd-analyze verify reconcile.service" systemd-analyze verify "$work/reconcile.service" &&
		hasnt "systemd-analyze verify: no warning" "$out" "reconcile.service"
	out=$(systemd-analyze security --offline=yes "$work/reconcile.service" 2>&1 | tail -1)
	score=$(sed -n 's/.*exposure level for reconcile.service: \([0-9.]*\).*/\1/p' <<<"$out")
	if [ -n "$score" ] && awk "BEGIN{exit !($score <= 2.0)}"; then ok "systemd-analyze security: exposure $score (at most 2.0)"; else bad "systemd-analyze security: exposure at most 2.0" "$out"; fi
else
	echo "skip: systemd-analyze is not installed"
fi

# --- applied by reconcile to the fake API server
fake=$work/fake
mkdir -p "$fake"
"$fake_bin" --dir "$fake" --controller-delay-ms 20 >"$work/fake.log" 2>&1 &
fake_pid=$!
for _ in $(seq 1 100); do [ -e "$fake/ready" ] && break; sleep 0.05; done
[ -e "$fake/ready" ] || { bad "the fake API server starts" "$(cat "$work/fake.log")"; finish; exit; }
export KUBECONFIG=$fake/kubeconfig
port=$(cat "$fake/port")
api() { # METHOD PATH [BODY CONTENT-TYPE]
	curl -s --cacert "$fake/ca.pem" -H "Authorization: Bearer fake-admin-token" \
		-X "$1" ${3:+-H "Content-Type: $4"} ${3:+--data-binary "$3"} "https://127.0.0.1:$port$2"
}

# a configuration repository whose one environment's resources are the
# files kustomization.yaml lists
cfg=$work/cfg
mkdir -p "$cfg/k8s"
{
	printf 'version: 1\nproject: reconcile-controller\nenvironments:\n  controller:\n'
	printf '    target: { driver: kubernetes, namespace: reconcile-system }\n    resources:\n'
	for f in $("$py" -c 'import sys, yaml; print(" ".join(yaml.safe_load(open(sys.argv[1]))["resources"]))' "$root/$k/kustomization.yaml"); do
		cp "$root/$k/$f" "$cfg/k8s/"
		printf '      - file: k8s/%s\n' "$f"
	done
} >"$cfg/reconcile.yaml"
run 0 "validate" "$rc_bin" validate "$cfg" && ok "reconcile validate: the manifests are valid resources"
run 2 "plan: everything to create" "$rc_bin" plan "$cfg" && {
	for o in "Namespace reconcile-system" "ServiceAccount reconcile" "ClusterRole reconcile" \
		"ClusterRoleBinding reconcile" "Role reconcile-leader-election" \
		"RoleBinding reconcile-leader-election" "PersistentVolumeClaim reconcile-state" \
		"Deployment reconcile" "Service reconcile"; do
		has "plan: + $o" "$out" "+ $o"
	done
	has "plan: 9 to create" "$out" "Plan: 9 to create, 0 to update"
}
run 0 "apply" "$rc_bin" apply "$cfg" --auto-approve && has "apply: 9 actions" "$out" "Applied: 9 actions"
run 0 "plan again: no changes" "$rc_bin" plan "$cfg" && has "plan again: nothing to do" "$out" "No changes"

# what the API server holds
dep=$(api GET /apis/apps/v1/namespaces/reconcile-system/deployments/reconcile)
args=$("$py" -c 'import json, sys; print(" ".join(json.load(sys.stdin)["spec"]["template"]["spec"]["containers"][0]["args"]))' <<<"$dep" 2>&1)
has "the Deployment on the server runs reconcile controller --listen 0.0.0.0:8080" "$args" "controller https://git.example.com/team/environments.git --listen 0.0.0.0:8080"
avail=$("$py" -c 'import json, sys; print(json.load(sys.stdin)["status"]["availableReplicas"])' <<<"$dep" 2>&1)
[ "$avail" = 1 ] && ok "the Deployment rolled out (1 available)" || bad "the Deployment rolled out" "$avail"
role=$(api GET /apis/rbac.authorization.k8s.io/v1/namespaces/reconcile-system/roles/reconcile-leader-election)
has "the leases Role on the server" "$role" '"resources":["leases"]'
crb=$(api GET /apis/rbac.authorization.k8s.io/v1/clusterrolebindings/reconcile)
has "the ClusterRoleBinding on the server, for the ServiceAccount" "$crb" '"name":"reconcile","namespace":"reconcile-system"'
pvc=$(api GET /api/v1/namespaces/reconcile-system/persistentvolumeclaims/reconcile-state)
has "the claim on the server" "$pvc" '"accessModes":["ReadWriteOnce"]'
# the Secret is made out of band (reconcile refuses raw Secrets with
# values): the example as kubectl would send it
sec=$(api POST /api/v1/namespaces/reconcile-system/secrets "$(cat "$root/$k/secret.example.yaml")" application/yaml)
has "secret.example.yaml is accepted by the API server" "$sec" '"RECONCILE_CONTROLLER_TOKEN":'
run 0 "plan after the Secret: still no changes" "$rc_bin" plan "$cfg" && has "the out-of-band Secret is not reconcile's" "$out" "No changes"

# switching to the two-replica overlay: the Deployment changes in place,
# the claim must be replaced (what examples/controller/README.md says)
if command -v kubectl >/dev/null && kubectl kustomize "$root/examples/controller/kubernetes-ha" >"$work/ha.yaml" 2>"$work/err"; then
	cp "$work/ha.yaml" "$cfg/k8s/ha.yaml"
	printf 'version: 1\nproject: reconcile-controller\nenvironments:\n  controller:\n    target: { driver: kubernetes, namespace: reconcile-system }\n    resources:\n      - file: k8s/ha.yaml\n' >"$cfg/reconcile.yaml"
	run 2 "plan the kubernetes-ha overlay over the default" "$rc_bin" plan "$cfg" && {
		has "kubernetes-ha: the Deployment updated in place" "$out" "~ Deployment reconcile"
		has "kubernetes-ha: the claim replaced (its access mode)" "$out" "! PersistentVolumeClaim reconcile-state  (spec.accessModes cannot change in place"
		has "kubernetes-ha: nothing else" "$out" "Plan: 0 to create, 1 to update, 1 to replace, 0 to delete"
	}
else
	echo "skip: the kubernetes-ha overlay (no kubectl to build it)"
fi

finish
