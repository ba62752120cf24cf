#!/usr/bin/env bash
# The engine end to end on the local driver: real processes, real files.
#   run.sh RECONCILE_BINARY [SEED]
# plan/apply/plan, drift, saved plans (stale, twice), locks, rollback past
# an irreversible hook, torn and corrupt journals, destroy (which ends when
# every process of a service is gone, a child that ignores SIGTERM too), and crash
# consistency under kill -9 at random moments (seeded; the seed is printed).
set -u
rc_bin=$(realpath "$1")
seed=${2:-${RECONCILE_CRASH_SEED:-$(( $(date +%s) % 100000 ))}}
trials=${RECONCILE_CRASH_TRIALS:-20}
here=$(cd "$(dirname "$0")" && pwd)
export NO_COLOR=1
. "$here/../lib.sh"
SHOW=1500
work=$(mktemp -d /tmp/rc-engine-XXXXXX)
export RECONCILE_STATE_DIR=$work/state
export E2E_TOKEN=hunter2-e2e-token
RANDOM=$seed
echo "seed $seed (RECONCILE_CRASH_SEED=$seed repeats this run)"

# a project of this run's own: a run of an older reconcile on this machine
# (whose mark has no state directory) must not take its processes
project=e2e$$
owned_pids() { owned_by "$project${1:-}/"; } # our processes (of $1: /ENV/SERVICE)
cleanup() {
	"$rc_bin" destroy "$work/cfg" --auto-approve >/dev/null 2>&1
	for s in "$RECONCILE_STATE_DIR" "$work/twin-1" "$work/twin-2"; do
		"$rc_bin" destroy "$work/twin" --state-dir "$s" --auto-approve >/dev/null 2>&1
		for p in $(owned_by "$project/" "$s"); do kill -9 "$p" 2>/dev/null; done
	done
	rm -rf "$work"
}
trap cleanup EXIT

port=$(free_ports 4)
write_config() { # replicas greeting [hook]
	mkdir -p "$work/cfg"
	cp "$here/server.py" "$work/cfg/"
	cat >"$work/cfg/reconcile.yaml" <<YAML
version: 1
project: $project
environments:
  dev:
    target: { driver: local }
    policy: { prune: true }
    services:
      web:
        command: [python3, server.py]
        port: $port
        replicas: $1
        env: { GREETING: "$2" }
        health: { http: /health, interval: 1s, retries: 20 }
    secrets:
      TOKEN: { env: E2E_TOKEN }
${3:-}
YAML
}
get() { curl -s --max-time 2 "http://127.0.0.1:$1/" 2>/dev/null; }

# --- plan, apply, plan
write_config 2 hello
run 2 "first plan has changes" "$rc_bin" plan "$work/cfg" && has "plan shows the create" "$out" "+ service web"
hasnt "plan hides the secret" "$out" "hunter2"
has "plan shows the secret as sensitive" "$out" "(sensitive)"
run 1 "apply without a terminal refuses" "$rc_bin" apply "$work/cfg" && has "refusal says why" "$out" "--auto-approve"
run 0 "apply" "$rc_bin" apply "$work/cfg" --auto-approve
[ "$(get $port)" = hello ] && [ "$(get $((port + 1)))" = hello ] && ok "both replicas answer" || bad "both replicas answer" "$(get $port) / $(get $((port + 1)))"
run 0 "second plan has no changes" "$rc_bin" plan "$work/cfg" && has "no changes" "$out" "No changes"
run 0 "apply again does nothing" "$rc_bin" apply "$work/cfg" --auto-approve && has "apply again says so" "$out" "No changes"

# --- drift: a killed process, a changed variable
victim=$(owned_pids /dev/web | head -1)
kill -9 "$victim"; sleep 0.3
run 2 "a killed replica shows as drift" "$rc_bin" plan "$work/cfg" && has "drift names replicas" "$out" "replicas: 1 -> 2"
run 0 "apply heals it" "$rc_bin" apply "$work/cfg" --auto-approve
[ "$(owned_pids /dev/web | wc -l)" -eq 2 ] && ok "two replicas again" || bad "two replicas again" "$(owned_pids /dev/web)"
write_config 3 bonjour
run 2 "config change plans an update" "$rc_bin" plan "$work/cfg" && has "old -> new" "$out" 'env.GREETING: "hello" -> "bonjour"'
has "replicas change" "$out" "replicas: 2 -> 3"
run 0 "apply the change" "$rc_bin" apply "$work/cfg" --auto-approve
[ "$(get $((port + 2)))" = bonjour ] && ok "the new replica answers with the new value" || bad "new replica" "$(get $((port + 2)))"

# --- saved plans: exact, twice, stale
write_config 2 bonjour
run 2 "plan -o saves" "$rc_bin" plan "$work/cfg" -o "$work/p1.json"
run 0 "apply the saved plan" "$rc_bin" apply "$work/p1.json"
run 0 "the same plan twice does nothing" "$rc_bin" apply "$work/p1.json" && has "and says so" "$out" "already applied in run"
write_config 3 bonjour
run 2 "another saved plan" "$rc_bin" plan "$work/cfg" -o "$work/p2.json"
kill -9 "$(owned_pids /dev/web | head -1)"; sleep 0.3
run 1 "a stale saved plan is refused" "$rc_bin" apply "$work/p2.json" && has "naming what moved" "$out" "dev/service/web changed since the plan"

# --- secrets are hashed under the installation's key, never plain SHA-256
key=$RECONCILE_STATE_DIR/secret-hash.key
[ "$(stat -c %a "$key" 2>&1)" = 600 ] && ok "the hash key file is private" || bad "the hash key file is private" "$(ls -l "$key" 2>&1)"
plain=$(printf %s "$E2E_TOKEN" | sha256sum | cut -c1-64)
keyed=$(python3 -c 'import hashlib, hmac, sys
print(hmac.new(bytes.fromhex(open(sys.argv[1]).read().strip()), sys.argv[2].encode(), hashlib.sha256).hexdigest())' "$key" "$E2E_TOKEN")
journals=$(cat "$RECONCILE_STATE_DIR"/runs/*.journal)
hasnt "the journal holds no plain SHA-256 of the secret" "$journals" "$plain"
has "the journal holds the secret's keyed hash" "$journals" "\"hmac-sha256:$keyed\""
hasnt "the journal never holds the key" "$journals" "$(head -c 64 "$key")"
run 0 "validate" env RECONCILE_STATE_DIR="$work/state-v" "$rc_bin" validate "$work/cfg"
run 0 "show" env RECONCILE_STATE_DIR="$work/state-v" "$rc_bin" show "$work/cfg"
[ ! -e "$work/state-v" ] && ok "validate and show make no key" || bad "validate and show make no key" "$(ls -la "$work/state-v")"
# a lost key: a saved plan is refused, saying why; the next plan compares
# the running processes' values again
run 2 "a plan saved under the first key" "$rc_bin" plan "$work/cfg" -o "$work/p3.json"
mv "$key" "$work/key.old"
run 1 "a saved plan made under another key is refused" "$rc_bin" apply "$work/p3.json" && has "saying the hash key changed" "$out" "the hash key for secrets changed since the plan"
[ -f "$key" ] && ! cmp -s "$key" "$work/key.old" && ok "a new key was made" || bad "a new key was made"
run 2 "a plan under the new key" "$rc_bin" plan "$work/cfg" && hasnt "shows no secret value" "$out" "hunter2"
mv "$work/key.old" "$key"

# --- locks: a second apply while one runs
write_config 2 hola "    hooks:
      pre_apply:
        - { name: slow, run: [sleep, '3'] }"
"$rc_bin" apply "$work/cfg" --auto-approve >"$work/a1.log" 2>&1 &
a1=$!
sleep 1
run 1 "a concurrent apply is refused" "$rc_bin" apply "$work/cfg" --auto-approve && has "naming the holder" "$out" "is locked by pid $a1"
wait $a1 && ok "the first apply finished" || bad "the first apply finished" "$(cat "$work/a1.log")"

# --- rollback past an irreversible hook
write_config 2 ciao "    hooks:
      post_apply:
        - { name: migrate, run: [touch, migrated], irreversible: true }"
run 0 "apply with an irreversible hook" "$rc_bin" apply "$work/cfg" --auto-approve
[ -f "$work/cfg/migrated" ] && ok "the hook ran in the config repository" || bad "the hook ran"
run 1 "rollback refuses past it" "$rc_bin" rollback --source "$work/cfg" --auto-approve && has "saying why" "$out" "irreversible"
run 0 "rollback --force rolls back the rest" "$rc_bin" rollback --source "$work/cfg" --force --auto-approve
[ "$(get $port)" = hola ] && ok "the previous value is back" || bad "previous value back" "$(get $port)"

# --- history, torn and corrupt journals
run 0 "history lists runs" "$rc_bin" history --state-dir "$RECONCILE_STATE_DIR" && has "history shows succeeded" "$out" "succeeded"
last=$(ls -t "$RECONCILE_STATE_DIR"/runs/*.journal | head -1)
printf '0123456789abcdef 99 {"type":"outc' >>"$last"
run 0 "a torn last record is tolerated" "$rc_bin" history --state-dir "$RECONCILE_STATE_DIR" --output json
has "history reports it torn" "$out" '"torn": true'
first=$(ls -tr "$RECONCILE_STATE_DIR"/runs/*.journal | head -1)
cp "$first" "$work/first.bak"
python3 - "$first" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
i = b.index(b"\n") + 30          # inside the second record
b[i] ^= 0x20
open(p, "wb").write(b)
PY
run 0 "history lists a corrupt journal" "$rc_bin" history --state-dir "$RECONCILE_STATE_DIR"
has "with the offset of the damage" "$out" "corrupt record at byte offset"
cp "$work/first.bak" "$first"
all=$(grep -r -a . "$RECONCILE_STATE_DIR" 2>/dev/null)
hasnt "no secret in the state directory" "$all" "hunter2"

# --- destroy, with a service whose child ignores SIGTERM: the deletion
# ends when every process of the service is gone
write_config 2 ciao "  slow:
    target: { driver: local }
    services:
      stubborn:
        command: [sh, -c, \"(trap '' TERM; exec sleep 300) & exec sleep 301\"]"
run 0 "apply a service whose child ignores SIGTERM" "$rc_bin" apply "$work/cfg" -e slow --auto-approve
sleep 0.3
[ "$(owned_pids /slow/stubborn | wc -l)" -eq 2 ] && ok "the replica and its child run" || bad "the replica and its child run" "$(owned_pids /slow/stubborn)"
run 0 "destroy" "$rc_bin" destroy "$work/cfg" --auto-approve
[ -z "$(owned_pids)" ] && ok "destroy leaves no process" || bad "destroy leaves no process" "$(owned_pids)"
has "the child that outlived its replica is named" "$out" "service 'stubborn' is deleted but process"
has "it gets SIGKILL after the grace period" "$out" "did not stop within 10s: killing it"

# --- one configuration, two state directories (two copies of a repository,
# two runs of this test): neither sees, adopts nor stops the other's processes
mkdir -p "$work/twin"
cat >"$work/twin/reconcile.yaml" <<YAML
version: 1
project: $project
environments:
  dev:
    target: { driver: local }
    services:
      sleeper: { command: [sleep, "600"] }
YAML
twin() { owned_by "$project/dev/sleeper/" "$work/twin-$1" | wc -l; }
run 0 "apply with a first state directory" "$rc_bin" apply "$work/twin" --state-dir "$work/twin-1" --auto-approve
run 2 "a second state directory sees nothing of it" "$rc_bin" plan "$work/twin" --state-dir "$work/twin-2" && has "and plans a create" "$out" "+ service sleeper"
run 0 "apply with the second state directory" "$rc_bin" apply "$work/twin" --state-dir "$work/twin-2" --auto-approve
[ "$(twin 1)" -eq 1 ] && [ "$(twin 2)" -eq 1 ] && ok "each state directory started its own process" || bad "one process each" "$(twin 1) and $(twin 2)"
run 0 "the first plans no change" "$rc_bin" plan "$work/twin" --state-dir "$work/twin-1" && has "the first says no changes" "$out" "No changes"
run 0 "destroy with the second" "$rc_bin" destroy "$work/twin" --state-dir "$work/twin-2" --auto-approve
[ "$(twin 1)" -eq 1 ] && [ "$(twin 2)" -eq 0 ] && ok "destroying one leaves the other's process" || bad "the first's process is left" "$(twin 1) and $(twin 2)"
run 0 "the first still plans no change" "$rc_bin" plan "$work/twin" --state-dir "$work/twin-1" && has "no change after the other's destroy" "$out" "No changes"
run 0 "destroy with the first" "$rc_bin" destroy "$work/twin" --state-dir "$work/twin-1" --auto-approve
[ "$(twin 1)" -eq 0 ] && ok "and its process is gone" || bad "the first's process is gone" "$(twin 1)"

# --- crash consistency: kill -9 at random moments, then converge
write_config 3 crash
for t in $(seq 1 "$trials"); do
	"$rc_bin" apply "$work/cfg" --auto-approve >/dev/null 2>&1 &
	pid=$!
	sleep "0.$((RANDOM % 10))$((RANDOM % 10))"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	hist=$("$rc_bin" history --state-dir "$RECONCILE_STATE_DIR" --output json 2>&1)
	if printf '%s' "$hist" | python3 -c 'import json,sys; r=json.load(sys.stdin); assert all(x.get("error") is None for x in r), r' 2>/dev/null; then :; else
		bad "trial $t: the journal verifies" "$hist"; continue; fi
	if ! "$rc_bin" apply "$work/cfg" --auto-approve >"$work/conv.log" 2>&1; then
		bad "trial $t: the next apply converges" "$(cat "$work/conv.log")"; continue; fi
	n=$(owned_pids /dev/web | wc -l)
	if [ "$n" -ne 3 ]; then bad "trial $t: exactly 3 replicas" "$n: $(owned_pids /dev/web)"; continue; fi
	if ! "$rc_bin" plan "$work/cfg" >/dev/null 2>&1; then bad "trial $t: converged (plan exit 0)"; continue; fi
	ok "crash trial $t (seed $seed)"
	"$rc_bin" destroy "$work/cfg" --auto-approve >/dev/null 2>&1
done
run 0 "history after the crashes" "$rc_bin" history --state-dir "$RECONCILE_STATE_DIR"
has "an interrupted run is reported" "$out" "interrupted"

finish
