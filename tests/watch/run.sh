#!/usr/bin/env bash
# The Kubernetes driver's watch (drivers/driver.h, watch) end to end
# against the fake API server: after `reconcile apply`, watch_tool
# watches the environment; a change made behind reconcile's back (a
# ConfigMap's data, a Deployment's replicas) is reported within 1 s (the
# latency is printed); a status-only change is not; in steady state no
# LIST is made; after /fake/compact, a WATCH from an expired
# resourceVersion lists again and still reports; stop is prompt.
# SCOPE "every" (the default): the credentials may list every namespace,
# so each kind is followed by the cluster's shared WATCH; "namespace":
# they may not (a Role per namespace, no ClusterRole: the fake denies
# requests across namespaces), so the environment watches its own.
#   run.sh RECONCILE_BINARY WATCH_TOOL FAKE_KUBE_BINARY SOURCE_ROOT [SCOPE]
set -u
rc_bin=$(realpath "$1")
tool=$(realpath "$2")
fake_bin=$(realpath "$3")
root=$(realpath "$4")
scope=${5:-every}
export NO_COLOR=1
. "$root/tests/lib.sh"
work=$(mktemp -d /tmp/rc-watch-XXXXXX)
export RECONCILE_STATE_DIR=$work/state XDG_CACHE_HOME=$work/cache
# the server ends each WATCH after 2 s: the re-WATCH (and the re-LIST
# after a compaction) happen within the test's time
export RECONCILE_KUBE_WATCH_TIMEOUT=2
fake=$work/fake
cfg=$work/cfg
failed=0

cleanup() {
	[ -n "${tool_pid:-}" ] && kill "$tool_pid" 2>/dev/null && wait "$tool_pid" 2>/dev/null
	[ -n "${fake_pid:-}" ] && kill "$fake_pid" 2>/dev/null && wait "$fake_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
# the checks say "ok - ..." and "FAIL - ..." (not lib.sh's counters)
ok() { echo "ok - $*"; }
bad() { echo "FAIL - $*"; failed=1; }

mkdir -p "$fake" "$cfg"
if [ "$scope" = namespace ]; then
	kube_fake_start "$fake_bin" "$fake" "$work/fake.log" --controller-delay-ms 20 \
		--token 'admin=fake-admin-token:deny=list/*@cluster,deny=watch/*@cluster'
	cm_path=/api/v1/namespaces/shop/configmaps
else
	kube_fake_start "$fake_bin" "$fake" "$work/fake.log" --controller-delay-ms 20
	cm_path=/api/v1/configmaps
fi
api() { kube_api "$@"; }
verb_count() { # VERB: requests of that verb since the last reset
	api GET /fake/stats | /usr/bin/python3 -c 'import json,sys
print(json.load(sys.stdin)["by_verb"].get(sys.argv[1], 0))' "$1"
}
now_ms() { date +%s%3N; }
# wait_line PATTERN SECONDS: until the tool's stdout has a line matching
wait_line() {
	local end=$(( $(now_ms) + $2 * 1000 ))
	while [ "$(now_ms)" -lt "$end" ]; do
		grep -q -- "$1" "$work/out" && return 0
		sleep 0.02
	done
	return 1
}

cat >"$cfg/reconcile.yaml" <<YAML
version: 1
project: shop
environments:
  prod:
    target:
      driver: kubernetes
      namespace: shop
      kubeconfig: $fake/kubeconfig
    config:
      GREETING: hello
    services:
      web:
        image: registry.example.com/shop/web:1.0
        replicas: 2
        port: 8080
YAML

if "$rc_bin" apply --auto-approve "$cfg" >"$work/apply.log" 2>&1; then
	ok "apply"
else
	bad "apply"; cat "$work/apply.log"; exit 1
fi

# --- the watch starts: one LIST per kind, then WATCHes
"$tool" "$cfg" prod >"$work/out" 2>"$work/err" &
tool_pid=$!
kinds=0
for _ in $(seq 1 100); do
	kinds=$(grep -c "watching .* from resourceVersion" "$work/err")
	[ "$kinds" -ge 4 ] && break
	sleep 0.05
done
if [ "$kinds" -ge 4 ]; then ok "listed $kinds kinds once"; else bad "the watch did not start"; cat "$work/out" "$work/err"; fi
if [ "$scope" = namespace ]; then
	grep -q "configmaps cannot be listed in every namespace with these credentials: each environment watches its own namespace" "$work/err" &&
		ok "denied every namespace, the environment watches its own" || bad "no fallback to the namespace logged"
else
	grep -q "watching configmaps in every namespace from resourceVersion" "$work/err" &&
		ok "configmaps are followed by the cluster's shared WATCH" || bad "no shared WATCH"
fi
grep -q " ready$" "$work/out" && ok "the driver said it keeps what it needs of desired (released)" ||
	bad "no ready from the driver"

# expect_report KEY WHAT METHOD PATH BODY: a merge patch made by hand is
# reported within 1 s, with its latency
expect_report() {
	local t0 t1
	t0=$(now_ms)
	api "$3" "$4" "$5" application/merge-patch+json >/dev/null
	if wait_line "changed prod $1" 1; then
		t1=$(awk -v k="$1" '$2 == "changed" && $4 == k {print $1; exit}' "$work/out")
		ok "$2 is reported in $((t1 - t0)) ms"
	else
		bad "$2 is not reported within 1 s"; cat "$work/out"
	fi
}
sleep 0.5
expect_report prod/ConfigMap/reconcile-config "a ConfigMap changed by hand" \
	PATCH /api/v1/namespaces/shop/configmaps/reconcile-config '{"data":{"GREETING":"changed by hand"}}'
expect_report prod/Deployment/web "a Deployment scaled by hand" \
	PATCH /apis/apps/v1/namespaces/shop/deployments/web '{"spec":{"replicas":5}}'
sleep 0.5 # the fake's controller writes the Deployment's status

# --- a status-only change is not reported
n0=$(grep -c " changed " "$work/out")
api PATCH /apis/apps/v1/namespaces/shop/deployments/web/status \
	'{"status":{"readyReplicas":1,"availableReplicas":1}}' application/merge-patch+json >/dev/null
sleep 1
n1=$(grep -c " changed " "$work/out")
if [ "$n1" = "$n0" ]; then ok "a status-only change is not reported"; else bad "a status-only change was reported"; tail -n 3 "$work/out"; fi

# --- steady state: re-WATCHes, no LIST
api POST /fake/stats/reset >/dev/null
sleep 10
lists=$(verb_count LIST) watches=$(verb_count WATCH)
if [ "$lists" = 0 ]; then ok "10 s of steady state: $lists LISTs, $watches WATCHes"; else bad "$lists LISTs in steady state ($watches WATCHes)"; fi
if [ "$watches" -ge 4 ]; then ok "the WATCHes were renewed"; else bad "only $watches WATCHes in 10 s"; fi
n0=$(grep -c " changed " "$work/out")
[ "$n0" = 2 ] && ok "nothing else was reported" || { bad "unexpected reports"; cat "$work/out"; }

# --- compaction while the ConfigMaps' WATCH is down (503s): the change
# made meanwhile comes in no stream; the next WATCH, from a compacted
# resourceVersion, gets 410, and the re-LIST finds and reports it
api POST /fake/faults "{\"rules\":[{\"match\":\"GET $cm_path\",\"status\":503}]}" >/dev/null
sleep 2.5 # the open WATCH ends (timeoutSeconds=2); the next ones fail
api POST /fake/compact >/dev/null
api PATCH /api/v1/namespaces/shop/configmaps/reconcile-config \
	'{"data":{"GREETING":"changed again"}}' application/merge-patch+json >/dev/null
api POST /fake/compact >/dev/null
api POST /fake/stats/reset >/dev/null
api DELETE /fake/faults >/dev/null
n_cm() { grep -c 'changed prod prod/ConfigMap/reconcile-config' "$work/out"; }
for _ in $(seq 1 200); do [ "$(n_cm)" -ge 2 ] && break; sleep 0.05; done
if [ "$(n_cm)" = 2 ]; then
	ok "a change made while the WATCH was down is reported after the re-LIST"
else
	bad "a change made while the WATCH was down is not reported"; cat "$work/out"
fi
relists=$(grep -c "of configmaps expired; listing again" "$work/err")
lists=$(verb_count LIST)
if [ "$relists" -ge 1 ] && [ "$lists" -ge 1 ]; then
	ok "410 made the ConfigMaps listed again ($lists LIST requests in all)"
else
	bad "no re-LIST after the compaction ($relists, $lists)"; cat "$work/err"
fi
grep -q "watching configmaps: .*again in" "$work/err" &&
	ok "the failed WATCHes were retried with backoff" || bad "no retry logged"

# --- stop
kill -TERM "$tool_pid"
wait "$tool_pid"; st=$?
tool_pid=
stop_ms=$(awk '/ stopped / {print $5}' "$work/out")
if [ "$st" = 0 ] && [ -n "$stop_ms" ] && [ "$stop_ms" -le 2000 ]; then
	ok "stopped in $stop_ms ms"
else
	bad "stop: exit $st, ${stop_ms:-no} ms"; cat "$work/out"
fi
if grep -q "changed by hand\|changed again" "$work/err"; then bad "the log shows object data"; fi

[ "$failed" = 0 ] && echo "watch.e2e: all passed" || { echo "--- stderr"; cat "$work/err"; }
exit "$failed"
