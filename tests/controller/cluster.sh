#!/usr/bin/env bash
# The controller's cluster features end to end: a configuration repository
# served by a real `git daemon` on loopback, the fake Kubernetes API server
# (rc_fake_kube) for the Kubernetes driver and the Leases, and the test
# webhook server of tests/notify for notifications.
#   cluster.sh RECONCILE_BINARY FAKE_KUBE_BINARY
# - Leader election: two controllers on one Lease and one state directory;
#   exactly one leads and applies (status, /readyz, the journals' pids);
#   the leader killed with -9, the standby takes over (the time is
#   printed), resumes from the journal (reported drift stays reported)
#   and applies a commit pushed after the kill; SIGTERM makes the
#   new leader release the Lease and exit 0, and a third takes over at once.
# - Drift through the watch: a ConfigMap changed behind reconcile's back is
#   healed under drift: heal (the latency is printed), only reported under
#   drift: report (status drifted, reconcile_drift).
# - Notifications from the controller: applied, drift once however many
#   resyncs, waiting with the plan id; a 500 retried.
# - /metrics through promtool.
# - Shards: two controllers --shards 2 split six environments as the
#   documented formula says, each on its own Lease.
set -u
rc_bin=$(realpath "$1")
fake_bin=$(realpath "$2")
here=$(cd "$(dirname "$0")" && pwd)
export NO_COLOR=1
. "$here/../lib.sh"
py=/usr/bin/python3
work=$(mktemp -d /tmp/rc-ctlha-XXXXXX)
state=$work/state
export XDG_CACHE_HOME=$work/cache
export RECONCILE_CONTROLLER_TOKEN=ctl-token-cluster-5d1e
export RECONCILE_KUBE_WATCH_TIMEOUT=5
project=cl$$
daemon_pid= srv_pid=
declare -A pid
gport=$((20000 + RANDOM % 10000))
hport=$((30000 + RANDOM % 5000))
url=git://127.0.0.1:$gport/cfg
cleanup() {
	local p
	for p in "${pid[@]}"; do kill -9 "$p" 2>/dev/null; done
	"$rc_bin" destroy "git://127.0.0.1:$gport/shards" --state-dir "$work/shard-state" --auto-approve >/dev/null 2>&1
	for p in $(owned_by "$project/" "$work/shard-state"); do kill -9 "$p" 2>/dev/null; done
	[ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null
	[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null
	[ -n "${fake_pid:-}" ] && kill "$fake_pid" 2>/dev/null && wait "$fake_pid" 2>/dev/null
	if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
now_ms() { date +%s%3N; }
# wait_for SECONDS CMD...: until CMD succeeds; false after SECONDS
wait_for() {
	local end=$((SECONDS + $1))
	shift
	while [ $SECONDS -lt $end ]; do "$@" && return 0; sleep 0.1; done
	return 1
}

# --- the fake API server, the webhook server, the git daemon
mkdir -p "$work/fake"
kube_fake_start "$fake_bin" "$work/fake" "$work/fake.log" --controller-delay-ms 20
export KUBECONFIG=$work/fake/kubeconfig
"$py" "$here/../notify/server.py" "$work/hook-port" "$work/hooks.log" &
srv_pid=$!
for _ in $(seq 50); do [ -s "$work/hook-port" ] && break; sleep 0.1; done
# the URL carries the endpoint's credential: a secret reference
export CL_HOOK_URL=http://127.0.0.1:$(cat "$work/hook-port")/flaky/cl-hook-token-8c2

repo=$work/git/cfg
commit() { # greeting
	cat >"$repo/reconcile.yaml" <<YAML
version: 1
project: $project
notify:
  - name: ops
    webhook: { url: { env: CL_HOOK_URL } }
    events: [applied, failed, drift, waiting]
environments:
  ha:
    target: { driver: kubernetes, namespace: cl-ha, kubeconfig: $KUBECONFIG }
    policy: { drift: heal }
    config: { GREETING: "$1" }
  rep:
    target: { driver: kubernetes, namespace: cl-rep, kubeconfig: $KUBECONFIG }
    policy: { drift: report }
    config: { GREETING: report }
  edit:
    target: { driver: kubernetes, namespace: cl-edit, kubeconfig: $KUBECONFIG }
    policy: { drift: heal, force_conflicts: false }
    config: { GREETING: edit }
  man:
    target: { driver: kubernetes, namespace: cl-man, kubeconfig: $KUBECONFIG }
    policy: { apply: manual }
    config: { GREETING: "manual-$1" }
YAML
	git -C "$repo" add -A && git -C "$repo" -c user.name=t -c user.email=t@e commit -q -m "$1"
	git -C "$repo" rev-parse HEAD
}
mkdir -p "$repo"
git -C "$repo" init -q -b main
sha1=$(commit one)
git daemon --reuseaddr --base-path="$work/git" --export-all --listen=127.0.0.1 --port=$gport "$work/git" >"$work/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 50); do git ls-remote "$url" >/dev/null 2>&1 && break; sleep 0.1; done

# start NAME PORT SOURCE STATE [FLAGS...]: a controller logging to $work/NAME.log
start() {
	local name=$1 p=$2 src=$3 st=$4
	shift 4
	"$rc_bin" controller "$src" --listen 127.0.0.1:$p --poll 1s --state-dir "$st" \
		--log-format json "$@" >"$work/$name.log" 2>&1 &
	pid[$name]=$!
	eval "port_$name=$p"
}
port_of() { eval "echo \$port_$1"; }
code() { # NAME PATH: the HTTP status; the body in $work/body
	curl -s -o "$work/body" -w '%{http_code}' --max-time 5 \
		-H "Authorization: Bearer $RECONCILE_CONTROLLER_TOKEN" "http://127.0.0.1:$(port_of "$1")$2"
}
status() { code "$1" /api/v1/status >/dev/null && cat "$work/body"; }
metrics() { code "$1" /metrics >/dev/null && cat "$work/body"; }
# st NAME PYTHON-EXPRESSION: true when the expression holds for the status
# d (e: the environment ENV when set)
st() {
	status "$1" | COND=$2 $py -c '
import json, os, sys
try:
    d = json.load(sys.stdin)
except ValueError:
    sys.exit(1)
envs = {x["name"]: x for x in d["environments"]}
sys.exit(0 if eval(os.environ["COND"]) else 1)' 2>/dev/null
}
# cm NAMESPACE: the GREETING of the ConfigMap in it, as the fake has it
cm() {
	kube_api GET "/api/v1/namespaces/$1/configmaps/reconcile-config" |
		$py -c 'import json,sys; print(json.load(sys.stdin).get("data", {}).get("GREETING", ""))' 2>/dev/null
}
lease() { # NAME FIELD
	kube_api GET "/apis/coordination.k8s.io/v1/namespaces/default/leases/$1" |
		$py -c 'import json,sys; print(json.load(sys.stdin).get("spec", {}).get(sys.argv[1]))' "$2" 2>/dev/null
}
# the pids in the run-start records of the journals of a state directory
run_pids() {
	cat "$1"/runs/*.journal 2>/dev/null | grep '"type":"run-start"' |
		sed -n 's/.*"pid":\([0-9]*\).*/\1/p' | sort | uniq -c
}
# events KIND [ENV]: the notifications received with that event and status 200
events() {
	KIND=$1 ENV=${2:-} STATUS=${3:-200} $py -c '
import json, os
n = 0
for line in open(os.environ["LOG"]):
    o = json.loads(line)
    b = o["body"]
    if o["status"] == int(os.environ["STATUS"]) and b.get("event") == os.environ["KIND"] and (not os.environ["ENV"] or b.get("environment") == os.environ["ENV"]):
        n += 1
print(n)' 2>/dev/null
}
export LOG=$work/hooks.log
# log_ms LOG PREFIX: the time (Unix ms) of the last line of a JSON log
# whose message starts with PREFIX
log_ms() {
	$py -c '
import json, sys, datetime
t = None
for line in open(sys.argv[1]):
    o = json.loads(line)
    if o["message"].startswith(sys.argv[2]):
        t = datetime.datetime.strptime(o["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
print(int(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000) if t else 0)' "$@"
}

# === 1. leader election: two controllers, one Lease, one state directory
lease_flags=(--leader-elect --lease default/cl --resync 3s)
start a $hport "$url" "$state" "${lease_flags[@]}"
start b $((hport + 1)) "$url" "$state" "${lease_flags[@]}"
# sets L (the leader) and S (the standby) once each status says so
one_leads() {
	local x y
	for x in a b; do
		y=$([ $x = a ] && echo b || echo a)
		st $x 'd["leader"]["is_leader"] is True' && st $y 'd["leader"]["is_leader"] is False' &&
			L=$x S=$y && return 0
	done
	return 1
}
L=a S=b
wait_for 20 one_leads || bad "a leader is elected" "$(status a)" "$(status b)" "$(tail -5 "$work/a.log" "$work/b.log")"
wait_for 30 st $L 'envs["ha"]["state"] == "in-sync" and envs["rep"]["state"] == "in-sync" and envs["edit"]["state"] == "in-sync" and envs["man"]["state"] == "pending-approval"' &&
	ok "the leader applies the Kubernetes environments (and keeps the manual one waiting)" ||
	bad "the leader applies" "$(status $L)" "$(tail -20 "$work/$L.log")"
[ "$(cm cl-ha)" = one ] && [ "$(cm cl-rep)" = report ] && ok "the ConfigMaps are on the API server" ||
	bad "the ConfigMaps are on the API server" "ha: $(cm cl-ha), rep: $(cm cl-rep)"
[ -z "$(cm cl-man)" ] && ok "the manual environment is not applied" || bad "the manual environment is not applied" "$(cm cl-man)"
# the standby learns the holder at its next try of the Lease (a retry
# period: a few seconds on a loaded machine)
standby_knows() {
	st $S 'd["leader"]["is_leader"] is False and d["leader"]["holder"] and d["leader"]["holder"] != d["leader"]["self"]'
}
st $L 'd["leader"]["is_leader"] is True and d["leader"]["lease"] == "default/cl" and d["leader"]["holder"] == d["leader"]["self"]' &&
	wait_for 20 standby_knows &&
	ok "status: is_leader true on one, false on the other, both naming the holder" ||
	bad "status: one leader" "$(status a)" "$(status b)"
holder=$(status $L | $py -c 'import json,sys; print(json.load(sys.stdin)["leader"]["self"])')
[ "$(lease cl holderIdentity)" = "$holder" ] && ok "the Lease names the leader ($holder)" || bad "the Lease names the leader" "$(lease cl holderIdentity)"
[ "$(code a /readyz)" = 200 ] && [ "$(code b /readyz)" = 200 ] && ok "/readyz 200 on both once the leader is known" ||
	bad "/readyz 200 on both" "a: $(code a /readyz) b: $(code b /readyz)"
st $S 'all(e["state"] == "waiting" and e["last"]["run"] is None for e in d["environments"])' &&
	ok "the standby plans nothing" || bad "the standby plans nothing" "$(status $S)"
pids=$(run_pids "$state")
if [ -n "$pids" ] && [ "$(wc -l <<<"$pids")" = 1 ] && [ "$(awk '{print $2}' <<<"$pids")" = "${pid[$L]}" ]; then
	ok "every run in the journal is the leader's ($(awk '{print $1}' <<<"$pids") runs, pid ${pid[$L]})"
else
	bad "every run in the journal is the leader's" "leader ${pid[$L]}, standby ${pid[$S]}" "$pids"
fi
run 0 "reconcile history reads the leader's runs" "$rc_bin" history --state-dir "$state" --output json &&
	printf '%s' "$out" | $py -c '
import json, sys
runs = json.load(sys.stdin)
assert sorted(tuple(r["environments"]) for r in runs) == [("edit",), ("ha",), ("rep",)], runs
assert all(r["status"] == "succeeded" for r in runs), runs' &&
	ok "history: one succeeded run each for edit, ha and rep" || bad "history: the leader's runs" "$out"

# === 3. drift through the watch
wait_for 10 st $L 'envs["ha"]["drift_detection"] == "watch" and envs["rep"]["drift_detection"] == "watch"' &&
	ok "status: drift_detection is watch" || bad "status: drift_detection is watch" "$(status $L)"
sleep 0.5 # the watches have listed
t0=$(now_ms)
kube_api PATCH /api/v1/namespaces/cl-ha/configmaps/reconcile-config '{"data":{"GREETING":"by hand"}}' application/merge-patch+json >/dev/null
healed() { [ "$(cm cl-ha)" = one ]; }
sleep 0.05
if wait_for 10 healed; then
	heal_ms=$(($(now_ms) - t0))
	echo "drift healed through the watch in $heal_ms ms"
	ok "drift: heal puts the ConfigMap back (${heal_ms} ms)"
else
	bad "drift: heal puts the ConfigMap back" "$(cm cl-ha)" "$(tail -10 "$work/$L.log")"
fi
has "the watch told the controller" "$(cat "$work/$L.log")" "ha/ConfigMap/reconcile-config changed outside this run"
[ "${heal_ms:-99999}" -le 2500 ] && ok "healed within 2.5 s" || bad "healed within 2.5 s" "${heal_ms:-none} ms"
# with policy.force_conflicts: false, the fields another client changed
# are its own: the heal fails, and says why and what to do
kube_api PATCH /api/v1/namespaces/cl-edit/configmaps/reconcile-config '{"data":{"GREETING":"by hand"}}' application/merge-patch+json >/dev/null
wait_for 10 st $L 'envs["edit"]["state"] == "failed" and "conflict with \"curl\"" in envs["edit"]["last"]["error"] and "policy.force_conflicts: true" in envs["edit"]["last"]["error"]' &&
	ok "a heal refused by a field conflict fails, naming the manager and force_conflicts in last.error" ||
	bad "a heal refused by a field conflict" "$(status $L)"
has "the log names the failed action and why" "$(cat "$work/$L.log")" 'update:edit/ConfigMap/reconcile-config: configmaps reconcile-config: fields owned by another manager'
[ "$(cm cl-edit)" = "by hand" ] && ok "the conflicting change is left" || bad "the conflicting change is left" "$(cm cl-edit)"
kube_api PATCH /api/v1/namespaces/cl-rep/configmaps/reconcile-config '{"data":{"GREETING":"by hand"}}' application/merge-patch+json >/dev/null
t0=$(now_ms)
if wait_for 10 st $L 'envs["rep"]["state"] == "drifted" and envs["rep"]["drift"] == 1'; then
	echo "drift reported through the watch in $(($(now_ms) - t0)) ms"
	ok "drift: report shows the environment drifted"
else
	bad "drift: report shows the environment drifted" "$(status $L)"
fi
metrics $L >"$work/metrics.txt"
grep -q '^reconcile_drift{environment="rep"} [1-9]' "$work/metrics.txt" && ok "reconcile_drift{environment=\"rep\"} > 0" ||
	bad "reconcile_drift for rep" "$(grep reconcile_drift "$work/metrics.txt")"
# three resyncs later the drift is still there, and told once
resyncs() { metrics $L | awk '/^reconcile_runs_total\{environment="rep",result="drift"\}/ {print $2}'; }
resynced() { [ "$(resyncs)" -ge 3 ] 2>/dev/null; }
wait_for 20 resynced ||
	bad "rep is re-planned at each resync" "$(resyncs)"
[ "$(cm cl-rep)" = "by hand" ] && ok "reported drift is not healed ($(resyncs) resyncs)" || bad "reported drift is not healed" "$(cm cl-rep)"

# === 4. notifications
sleep 0.5
n=$(events applied ha)
[ "$n" -ge 1 ] && ok "notify: applied for the first apply of ha" || bad "notify: applied" "$(cat "$LOG")"
$py -c '
import json, os, sys
for line in open(os.environ["LOG"]):
    b = json.loads(line)["body"]
    if b.get("event") == "applied" and b.get("environment") == "ha" and b.get("commit", "").startswith(sys.argv[1][:12]):
        sys.exit(0)
sys.exit(1)' "$sha1" && ok "the applied event carries the commit" || bad "the applied event carries the commit" "$(cat "$LOG")"
[ "$(events failed edit)" -ge 1 ] && ok "notify: failed for the heal refused" || bad "notify: failed" "$(cat "$LOG")"
[ "$(events drift rep)" = 1 ] && ok "notify: drift for rep once, however many resyncs" || bad "notify: drift once" "drift events: $(events drift rep)" "$(cat "$LOG")"
[ "$(events drift ha)" -ge 1 ] && ok "notify: drift for the healed environment too" || bad "notify: drift for ha" "$(cat "$LOG")"
plan=$(status $L | $py -c 'import json,sys; print([e for e in json.load(sys.stdin)["environments"] if e["name"] == "man"][0]["pending_plan"])')
[ "$(events waiting man)" = 1 ] && grep -q "\"plan_id\": \"$plan\"" "$LOG" && ok "notify: waiting once, with the plan id $plan" ||
	bad "notify: waiting with the plan id" "plan $plan" "$(cat "$LOG")"
$py -c '
import json, os, sys
seen = [json.loads(l) for l in open(os.environ["LOG"])]
first = [i for i, o in enumerate(seen) if o["status"] == 500]
key = lambda o: (o["body"].get("event"), o["body"].get("environment"))
sys.exit(0 if first and any(o["status"] == 200 and key(o) == key(seen[first[0]]) for o in seen[first[0] + 1:]) else 1)' && ok "the endpoint's 500 was retried" ||
	bad "the endpoint's 500 was retried" "$(cat "$LOG")"
hasnt "the webhook's URL is not logged" "$(cat "$work/a.log" "$work/b.log")" cl-hook-token-8c2

# === 5. /metrics
metrics $L >"$work/metrics.txt"
grep -q '^reconcile_notifications_total{result="sent"} [1-9]' "$work/metrics.txt" && ok "metrics count the notifications sent" ||
	bad "reconcile_notifications_total sent" "$(grep reconcile_notif "$work/metrics.txt")"
grep -q '^reconcile_notification_retries_total [1-9]' "$work/metrics.txt" && ok "metrics count the notification retried after its 500" ||
	bad "reconcile_notification_retries_total" "$(grep reconcile_notif "$work/metrics.txt")"
grep -Eq '^reconcile_api_rate_budget_remaining\{driver="kubernetes",endpoint="https://127\.0\.0\.1:[0-9]+",source="client"\} [0-9.]+$' "$work/metrics.txt" &&
	ok "metrics show the Kubernetes client's rate budget left" ||
	bad "reconcile_api_rate_budget_remaining" "$(grep rate_budget "$work/metrics.txt")"
if command -v promtool >/dev/null; then
	out=$(promtool check metrics <"$work/metrics.txt" 2>&1) && ok "promtool check metrics" || bad "promtool check metrics" "$out"
else
	echo "skip: promtool check metrics (promtool is not installed)"
fi

# === 1. (cont.) kill -9 the leader: the standby takes over
old_pid=${pid[$L]}
disown "$old_pid"
kill -9 "$old_pid"
killed=$(now_ms)
unset "pid[$L]"

# === 2. shards, while the Lease expires
repo2=$work/git/shards
mkdir -p "$repo2"
git -C "$repo2" init -q -b main
{
	printf 'version: 1\nproject: %s\nenvironments:\n' "$project"
	for i in 1 2 3 4 5 6; do
		printf '  app-%s:\n    target: { driver: local }\n    services:\n      w: { command: [sleep, "600"] }\n' $i
	done
} >"$repo2/reconcile.yaml"
git -C "$repo2" add -A && git -C "$repo2" -c user.name=t -c user.email=t@e commit -q -m shards
start s0 $((hport + 2)) "git://127.0.0.1:$gport/shards" "$work/shard-state" --shards 2 --shard 0 --leader-elect --resync 10m
start s1 $((hport + 3)) "git://127.0.0.1:$gport/shards" "$work/shard-state" --shards 2 --shard 1 --leader-elect --resync 10m
all_synced() { st "$1" 'd["environments"] and all(e["state"] == "in-sync" for e in d["environments"])'; }
wait_for 30 all_synced s0 && wait_for 30 all_synced s1 || bad "each shard applies its environments" "$(status s0)" "$(status s1)"
names() { status "$1" | $py -c 'import json,sys; print(" ".join(sorted(e["name"] for e in json.load(sys.stdin)["environments"])))'; }
n0=$(names s0) n1=$(names s1)
echo "shard 0: $n0; shard 1: $n1"
expect=$($py -c '
import hashlib
own = {k: [] for k in (0, 1)}
for i in range(1, 7):
    n = "app-%d" % i
    own[int.from_bytes(hashlib.sha256(n.encode()).digest()[:8], "big") % 2].append(n)
print(" ".join(own[0]) + "|" + " ".join(own[1]))')
[ "$n0|$n1" = "$expect" ] && ok "each shard owns what the documented formula says" || bad "the shards follow the formula" "got $n0|$n1" "expected $expect"
all=$(printf '%s\n' $n0 $n1 | sort | tr '\n' ' ')
dups=$(printf '%s\n' $n0 $n1 | sort | uniq -d)
[ "$all" = "app-1 app-2 app-3 app-4 app-5 app-6 " ] && [ -z "$dups" ] && ok "the shards' union is every environment, their intersection empty" ||
	bad "union all, intersection empty" "$all" "dups: $dups"
st s0 'd["shard"] == {"index": 0, "count": 2} and d["leader"]["lease"] == "default/reconcile-shard-0"' &&
	st s1 'd["shard"] == {"index": 1, "count": 2} and d["leader"]["lease"] == "default/reconcile-shard-1"' &&
	ok "status: each shard's index and its own Lease" || bad "status: the shards" "$(status s0)" "$(status s1)"
[ -n "$(lease reconcile-shard-0 holderIdentity)" ] && [ -n "$(lease reconcile-shard-1 holderIdentity)" ] &&
	[ "$(lease reconcile-shard-0 holderIdentity)" != "$(lease reconcile-shard-1 holderIdentity)" ] &&
	ok "each shard holds its Lease" || bad "each shard holds its Lease"
running=0
for i in 1 2 3 4 5 6; do [ -n "$(owned_by "$project/app-$i/" "$work/shard-state")" ] && running=$((running + 1)); done
[ $running = 6 ] && ok "every environment's service runs" || bad "every environment's service runs" "$running of 6"
shard_of_run() { # the shard whose status has a run for the environment
	cat "$work"/shard-state/runs/*.journal | grep '"type":"run-start"' |
		sed -n 's/.*"environments":\["\([^"]*\)"\].*"pid":\([0-9]*\).*/\1 \2/p' | sort
}
runs=$(shard_of_run)
bypid=$(awk -v a="${pid[s0]}" -v b="${pid[s1]}" '{print $1, ($2 == a ? 0 : $2 == b ? 1 : "?")}' <<<"$runs" | sort | awk '{printf "%s:%s ", $1, $2}')
want=$(for x in $n0; do printf '%s:0\n' $x; done; for x in $n1; do printf '%s:1\n' $x; done)
want=$(sort <<<"$want" | tr '\n' ' ')
[ "$bypid" = "$want" ] && ok "the journal: each environment applied once, by its shard" || bad "each environment applied once by its shard" "$bypid" "$want"
for s in s0 s1; do
	kill -TERM "${pid[$s]}"
	wait "${pid[$s]}" || bad "shard $s exits 0 at SIGTERM"
	unset "pid[$s]"
done

# === 1. (cont.) the takeover
wait_for 30 st $S 'd["leader"]["is_leader"]' || bad "the standby takes over" "$(status $S)" "$(tail -5 "$work/$S.log")"
took=$(($(log_ms "$work/$S.log" leading) - killed))
echo "takeover after kill -9: ${took:-?} ms (lease duration 15000 ms, retry period 2000 ms)"
[ -n "$took" ] && [ "$took" -ge 12500 ] && [ "$took" -le 21000 ] && ok "the standby takes over within the lease duration and retries (${took} ms)" ||
	bad "the standby takes over within the lease duration" "${took:-none} ms"
# it resumes from the journal: the commit applied is not new to it, so
# the reported drift stays reported, and what is in sync stays untouched
wait_for 15 st $S 'envs["rep"]["state"] == "drifted" and envs["ha"]["state"] == "in-sync" and envs["ha"]["last"]["result"] == "unchanged"' &&
	[ "$(cm cl-rep)" = "by hand" ] && ok "the new leader resumes from the journal: reported drift is still only reported" ||
	bad "the new leader resumes from the journal" "$(cm cl-rep)" "$(status $S)"
has "resuming is logged" "$(cat "$work/$S.log")" "resuming: the journal shows commit ${sha1:0:12} applied"
sha2=$(commit two)
ha_two() { [ "$(cm cl-ha)" = two ]; }
wait_for 30 ha_two &&
	ok "the new leader applies the commit pushed after the kill" || bad "the new leader applies the new commit" "$(cm cl-ha)" "$(tail -10 "$work/$S.log")"
wait_for 10 st $S "envs['ha']['commit'] == '$sha2' and envs['ha']['state'] == 'in-sync'" &&
	ok "status: ha in sync at the new commit" || bad "status: ha at the new commit" "$(status $S)"
[ "$(lease cl holderIdentity)" != "$holder" ] && ok "the Lease names the new leader" || bad "the Lease names the new leader" "$(lease cl holderIdentity)"
pids=$(run_pids "$state")
[ "$(awk '{print $2}' <<<"$pids" | sort | tr '\n' ' ')" = "$(printf '%s\n' "$old_pid" "${pid[$S]}" | sort | tr '\n' ' ')" ] &&
	ok "the journal: runs from the old leader, then from the new one" || bad "the journal after the takeover" "$pids"

# SIGTERM the new leader: it releases the Lease, a third takes over at once
start c $((hport + 4)) "$url" "$state" "${lease_flags[@]}"
wait_for 20 st c 'd["leader"]["holder"] and not d["leader"]["is_leader"]' || bad "a third controller stands by" "$(status c)"
t0=$(now_ms)
kill -TERM "${pid[$S]}"
wait "${pid[$S]}"
rc=$?
unset "pid[$S]"
[ $rc = 0 ] && ok "SIGTERM: the leader exits 0" || bad "SIGTERM: the leader exits 0" "exit $rc" "$(tail -5 "$work/$S.log")"
grep -q '"message":"not leading (the Lease names nobody)' "$work/$S.log" && ok "the leader released the Lease on SIGTERM" ||
	bad "the leader released the Lease" "$(tail -5 "$work/$S.log")"
if wait_for 10 st c 'd["leader"]["is_leader"]'; then
	ms=$(($(log_ms "$work/c.log" leading) - $(log_ms "$work/$S.log" "lease default/cl: released")))
	echo "takeover after SIGTERM: ${ms} ms from the release"
	[ "$ms" -ge 0 ] && [ "$ms" -le 3000 ] && ok "the third controller takes over at once (${ms} ms)" ||
		bad "the third controller takes over within a retry period" "${ms} ms"
else
	bad "the third controller takes over" "$(status c)"
fi
kill -TERM "${pid[c]}"
wait "${pid[c]}" && ok "the third exits 0 at SIGTERM" || bad "the third exits 0"
unset "pid[c]"
[ -z "$(lease cl holderIdentity)" ] || [ "$(lease cl holderIdentity)" = None ] && ok "the Lease is left released" || bad "the Lease is left released" "$(lease cl holderIdentity)"
finish
