#!/usr/bin/env bash
# Leader election on a Lease against the fake API server, with the
# default timings (lease 15 s, renew deadline 10 s, retry 2 s) unless
# said: two candidates started together, exactly one leads; the leader
# killed with -9, the standby takes over once the lease has expired (the
# takeover time is printed); a leader stopped with SIGTERM releases, and
# a standby takes over at once; a leader that cannot reach the server
# steps down at its renew deadline, before the lease expires; a user
# without rights on leases gets the RBAC rule, a missing namespace an
# error at start; the namespace comes from the pod's service account;
# each shard elects a leader on its own Lease.
#   run.sh LEASE_TOOL FAKE_KUBE_BINARY
set -u
tool=$(realpath "$1")
fake_bin=$(realpath "$2")
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/tests/lib.sh"
work=$(mktemp -d /tmp/rc-lease-XXXXXX)
fake=$work/fake
pids=()

cleanup() {
	local p
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	[ -n "${fake_pid:-}" ] && kill -CONT "$fake_pid" 2>/dev/null
	[ -n "${fake_pid:-}" ] && kill "$fake_pid" 2>/dev/null && wait "$fake_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$fake"
"$fake_bin" --dir "$fake" --token bob=bob-token:deny=*/leases >"$work/fake.log" 2>&1 &
fake_pid=$!
for _ in $(seq 1 100); do [ -e "$fake/ready" ] && break; sleep 0.05; done
[ -e "$fake/ready" ] || { echo "the fake API server did not start"; cat "$work/fake.log"; exit 1; }
port=$(cat "$fake/port")
export KUBECONFIG=$fake/kubeconfig
lease_json() { # NAMESPACE NAME: the Lease as the server has it
	curl -s --cacert "$fake/ca.pem" -H "Authorization: Bearer fake-admin-token" \
		"https://127.0.0.1:$port/apis/coordination.k8s.io/v1/namespaces/$1/leases/$2"
}
spec() { # FIELD < lease JSON
	/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["spec"].get(sys.argv[1]))' "$1" 2>/dev/null
}
now_ms() { date +%s%3N; }
start() { # ID [OPTIONS...]: a candidate writing $work/ID.out
	local id=$1
	shift
	"$tool" --identity "$id" "$@" >"$work/$id.out" 2>"$work/$id.err" &
	pids+=($!)
	eval "pid_$id=$!"
}
# wait_line ID WORD SECONDS: waits for a line "<ms> WORD ID"; prints its ms
wait_line() {
	local end=$(($(date +%s) + $3)) l
	while [ "$(date +%s)" -le "$end" ]; do
		l=$(grep -m1 " $2 $1\( \|$\)" "$work/$1.out" 2>/dev/null) && { echo "${l%% *}"; return 0; }
		sleep 0.1
	done
	return 1
}
leaders() { grep -l " leader " "$work"/"$1".out "$work"/"$2".out 2>/dev/null | wc -l; }

# --- two candidates started together: exactly one leads
start a
start b
wait_line a started 10 >/dev/null && wait_line b started 10 >/dev/null ||
	bad "both candidates start" "$(cat "$work"/a.* "$work"/b.*)"
sleep 3
n=$(leaders a b)
[ "$n" -eq 1 ] && ok "exactly one of two candidates leads" ||
	bad "exactly one of two candidates leads" "leaders: $n" "$(cat "$work/a.out" "$work/b.out")"
if grep -q " leader a" "$work/a.out"; then first=a second=b; else first=b second=a; fi
holder=$(lease_json default reconcile | spec holderIdentity)
[ "$holder" = "$first" ] && ok "the Lease names the leader" || bad "the Lease names the leader" "holder: $holder, leader: $first"
# started together: the standby's first read may come before the
# leader's create (holder "-"), or after it (the leader named)
grep -Eq "started $second lease=default/reconcile leader=0 holder=($first|-)\$" "$work/$second.out" &&
	ok "the standby starts as a standby" || bad "the standby starts as a standby" "$(cat "$work/$second.out")"
t0=$(lease_json default reconcile | spec renewTime)
sleep 2.5
t1=$(lease_json default reconcile | spec renewTime)
[ -n "$t0" ] && [ "$t0" != "$t1" ] && ok "the leader renews" || bad "the leader renews" "$t0 -> $t1"
[[ $t1 =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$ ]] &&
	ok "renewTime is an RFC 3339 micro time" || bad "renewTime is an RFC 3339 micro time" "$t1"

# --- kill -9 the leader: the standby takes over once the lease expired
eval "kill -9 \$pid_$first"
killed=$(now_ms)
if took=$(wait_line "$second" leader 30); then
	ms=$((took - killed))
	echo "takeover after kill -9: ${ms} ms (lease duration 15000 ms, retry period 2000 ms)"
	# the standby counts the 15 s from when it saw the last renewal,
	# which was at most one retry period before the kill and at most
	# one (jittered) retry period after it, and acts at its next retry
	# (bounds with room for a loaded machine: a sanitizer build beside
	# other tests)
	[ "$ms" -ge 12500 ] && [ "$ms" -le 24000 ] && ok "standby takes over after the lease duration" ||
		bad "standby takes over after the lease duration" "${ms} ms"
else
	bad "standby takes over after kill -9" "$(cat "$work/$second.out" "$work/$second.err")"
fi
l=$(lease_json default reconcile)
[ "$(spec holderIdentity <<<"$l")" = "$second" ] && [ "$(spec leaseTransitions <<<"$l")" = 1 ] &&
	ok "the takeover is recorded (holder, leaseTransitions 1)" ||
	bad "the takeover is recorded (holder, leaseTransitions 1)" "$l"

# --- SIGTERM: the leader releases, a standby takes over at once
start c
wait_line c started 10 >/dev/null || bad "a third candidate starts" "$(cat "$work"/c.*)"
sleep 1
has "the third candidate is a standby" "$(cat "$work/c.out")" "leader=0 holder=$second"
eval "kill -TERM \$pid_$second"
termed=$(now_ms)
if took=$(wait_line c leader 10); then
	ms=$((took - termed))
	echo "takeover after SIGTERM: ${ms} ms"
	[ "$ms" -le 6000 ] && ok "after a release the standby takes over within a retry period" ||
		bad "after a release the standby takes over within a retry period" "${ms} ms"
else
	bad "standby takes over after SIGTERM" "$(cat "$work/c.out" "$work/c.err")"
fi
eval "wait \$pid_$second"
[ $? -eq 0 ] && ok "a stopped leader exits 0" || bad "a stopped leader exits 0"
has "the stopped leader released the Lease" "$(cat "$work/$second.out")" "stopped $second released=1"
l=$(lease_json default reconcile)
[ "$(spec holderIdentity <<<"$l")" = c ] && [ "$(spec leaseTransitions <<<"$l")" = 2 ] &&
	ok "the new holder after a release (leaseTransitions 2)" ||
	bad "the new holder after a release (leaseTransitions 2)" "$l"
kill -TERM "$pid_c"
wait "$pid_c"
l=$(lease_json default reconcile)
[ "$(spec holderIdentity <<<"$l")" = "" ] && [ "$(spec leaseDurationSeconds <<<"$l")" = 1 ] &&
	ok "a released Lease has no holder and lasts 1 s" ||
	bad "a released Lease has no holder and lasts 1 s" "$l"

# --- a leader that cannot reach the server steps down at its renew
# deadline, before its lease expires (short timings)
short=(--lease fast --duration 6 --renew-deadline-ms 3000 --retry-ms 500)
start d "${short[@]}"
wait_line d leader 10 >/dev/null || bad "a short-lease leader" "$(cat "$work"/d.*)"
kill -STOP "$fake_pid"
stopped=$(now_ms)
if took=$(wait_line d standby 15); then
	ms=$((took - stopped))
	echo "step-down without the API server: ${ms} ms (renew deadline 3000 ms, lease 6000 ms)"
	# the last renewal was at most a retry period before SIGSTOP; the
	# renewals in flight are cut at the deadline
	[ "$ms" -ge 2400 ] && [ "$ms" -le 3500 ] && ok "a leader steps down at its renew deadline" ||
		bad "a leader steps down at its renew deadline" "${ms} ms"
else
	bad "a leader that cannot renew steps down" "$(cat "$work/d.out" "$work/d.err")"
fi
has "the lost renewals are logged" "$(cat "$work/d.err")" "lease default/fast: GET https://127.0.0.1:$port/"
has "the step-down is logged" "$(cat "$work/d.err")" "not renewed within the renew deadline (3000 ms): stepping down"
kill -CONT "$fake_pid"
for _ in $(seq 1 100); do [ "$(grep -c " leader d" "$work/d.out")" -ge 2 ] && break; sleep 0.1; done
[ "$(grep -c " leader d" "$work/d.out")" -eq 2 ] && ok "it leads again when the server answers" ||
	bad "it leads again when the server answers" "$(cat "$work/d.out")"
kill -TERM "$pid_d"
wait "$pid_d"

# --- no rights on leases: the RBAC rule in the error
sed -e 's/fake-admin-token/bob-token/' "$fake/kubeconfig" >"$work/bob.kubeconfig"
run 1 "403 on leases fails the start" "$tool" --kubeconfig "$work/bob.kubeconfig" --lease team/ctl
has "403 names the verbs and the group" "$out" 'verbs: ["get", "create", "update"]'
has "403 names the resource" "$out" 'resources: ["leases"]'
has "403 names the namespace" "$out" "in namespace 'team'"
has "403 keeps the server's message" "$out" 'User "bob" cannot get resource "leases"'
hasnt "403 never shows the token" "$out" bob-token

run 1 "a missing namespace fails the start" "$tool" --lease nope/ctl
has "a missing namespace is named" "$out" 'lease nope/ctl: create answered 404: namespaces "nope" not found'

# --- the namespace of the pod; the Lease of a shard
mkdir -p "$work/sa"
echo kube-system >"$work/sa/namespace"
RECONCILE_SERVICEACCOUNT_DIR=$work/sa start e --shard 2
wait_line e leader 10 >/dev/null
has "the pod's namespace and the shard's Lease" "$(cat "$work/e.out")" "lease=kube-system/reconcile-shard-2"
[ "$(lease_json kube-system reconcile-shard-2 | spec holderIdentity)" = e ] &&
	ok "the shard's Lease is held" || bad "the shard's Lease is held" "$(lease_json kube-system reconcile-shard-2)"
kill -TERM "$pid_e"
wait "$pid_e"
# two shards: each elects its own leader, on its own Lease
start f --shard 0
start g --shard 1
wait_line f leader 10 >/dev/null && wait_line g leader 10 >/dev/null &&
	ok "each shard has its own leader" || bad "each shard has its own leader" "$(cat "$work"/f.* "$work"/g.*)"
[ "$(lease_json default reconcile-shard-0 | spec holderIdentity)" = f ] &&
	[ "$(lease_json default reconcile-shard-1 | spec holderIdentity)" = g ] &&
	ok "the shards' Leases name their leaders" || bad "the shards' Leases name their leaders"
kill -TERM "$pid_f" "$pid_g"
wait "$pid_f" "$pid_g"
run 1 "a bad Lease name is refused" "$tool" --lease "Bad_Name"
has "a bad Lease name is named" "$out" "'Bad_Name' is not a Lease name"

finish
