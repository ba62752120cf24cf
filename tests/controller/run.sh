#!/usr/bin/env bash
# The controller end to end: a configuration repository served by a real
# `git daemon` on loopback, the local driver (a python service), and
# `reconcile controller` following it.
#   run.sh RECONCILE_BINARY
# The first commit applied; a push applied by polling (1 s); the
# endpoints (health without a token, status and metrics with one); a
# manual environment waiting; drift healed and reported; a failing
# environment backing off;
# SIGTERM exiting 0; then a controller that polls hourly: a bad webhook
# signature refused (401, body not logged), a ping answered, a push
# applied through a GitHub-signed webhook (the latency from the webhook
# to the apply's first journaled action is printed), GitLab and generic
# webhooks; SIGHUP re-reading --config; SIGTERM during an apply; the
# journal read back with `reconcile history`.
set -u
rc_bin=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
export NO_COLOR=1
. "$here/../lib.sh"
work=$(mktemp -d /tmp/rc-ctl-XXXXXX)
export RECONCILE_STATE_DIR=$work/state
export XDG_CACHE_HOME=$work/cache
export RECONCILE_CONTROLLER_TOKEN=ctl-token-e2e-7f3a
export RECONCILE_WEBHOOK_SECRET=hook-secret-e2e-91bc
project=ctle2e$$
daemon_pid= ctl_pid=
base=$(free_ports 10)
gport=$base
hport=$((base + 1))
sport=$((base + 2))
url=git://127.0.0.1:$gport/cfg
api=http://127.0.0.1:$hport
cleanup() {
	[ -n "$ctl_pid" ] && kill -9 "$ctl_pid" 2>/dev/null
	"$rc_bin" destroy "$url" --state-dir "$RECONCILE_STATE_DIR" --auto-approve >/dev/null 2>&1
	for p in $(owned_by "$project/"); do kill -9 "$p" 2>/dev/null; done
	[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null
	if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

repo=$work/git/cfg
commit() { # greeting [dev's extra keys]
	cat >"$repo/reconcile.yaml" <<YAML
version: 1
project: $project
environments:
  dev:
    target: { driver: local }
    policy: { prune: true, drift: heal }
    services:
      web:
        command: [python3, server.py]
        port: $sport
        env: { GREETING: "$1" }
        health: { http: /health, interval: 1s, retries: 20 }
${2:-}
  stage:
    target: { driver: local }
    policy: { drift: report }
    services:
      web:
        command: [python3, server.py]
        port: $((sport + 1))
        env: { GREETING: "stage" }
  prod:
    target: { driver: local }
    policy: { apply: manual }
    services:
      web:
        command: [python3, server.py]
        port: $((sport + 2))
        env: { GREETING: "prod" }
$broken
YAML
	git -C "$repo" add -A && git -C "$repo" -c user.name=t -c user.email=t@e commit -q -m "$1"
	git -C "$repo" rev-parse HEAD
}
# an environment whose every apply fails (while the first controller runs)
broken="  broken:
    target: { driver: local }
    hooks: { pre_apply: [ { name: fail, where: local, run: [\"false\"] } ] }
    services:
      web:
        command: [python3, server.py]
        port: $((sport + 3))
        env: { GREETING: broken }"
mkdir -p "$repo"
git -C "$repo" init -q -b main
cp "$here/../engine/server.py" "$repo/"
sha1=$(commit one)
git daemon --reuseaddr --base-path="$work/git" --export-all --listen=127.0.0.1 --port=$gport "$work/git" >"$work/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 50); do git ls-remote "$url" >/dev/null 2>&1 && break; sleep 0.1; done

get() { curl -s --max-time 2 "http://127.0.0.1:$((sport + ${1:-0}))/" 2>/dev/null; }
# wait_for SECONDS CMD...: until CMD succeeds; false after SECONDS
wait_for() {
	local end=$((SECONDS + $1))
	shift
	while [ $SECONDS -lt $end ]; do "$@" && return 0; sleep 0.1; done
	return 1
}
serves() { [ "$(get "${2:-0}")" = "$1" ]; } # greeting [port offset]
code() { curl -s -o "$work/body" -w '%{http_code}' --max-time 5 "$@"; }
start() { # log poll [resync [more flags...]]
	local log=$1 poll=$2 resync=${3:-10m}
	shift 3 2>/dev/null || shift $#
	"$rc_bin" controller "$url" --listen 127.0.0.1:$hport --poll "$poll" --resync "$resync" "$@" \
		--state-dir "$RECONCILE_STATE_DIR" --log-format json >"$log" 2>&1 &
	ctl_pid=$!
}
stop() { # name: SIGTERM, exit 0
	kill -TERM "$ctl_pid"
	local rc=0
	wait "$ctl_pid" || rc=$?
	ctl_pid=
	[ $rc -eq 0 ] && ok "$1" || bad "$1" "exit $rc" "$(tail -5 "$work/ctl1.log" "$work/ctl2.log" 2>/dev/null)"
}

status() { code -H "Authorization: Bearer $RECONCILE_CONTROLLER_TOKEN" "$api/api/v1/status" >/dev/null; cat "$work/body"; }
env_is() { # env jq-ish python condition on e (the environment) and d
	status | COND=$2 ENV=$1 /usr/bin/python3 -c '
import json, os, sys
d = json.load(sys.stdin)
e = [x for x in d["environments"] if x["name"] == os.environ["ENV"]][0]
sys.exit(0 if eval(os.environ["COND"]) else 1)'; }

# --- usage
KUBECONFIG=/nonexistent/kubeconfig run 1 "--leader-elect without a cluster fails at start" "$rc_bin" controller "$url" --leader-elect \
	--listen 127.0.0.1:$hport &&
	has "naming the kubeconfig it could not read" "$out" "/nonexistent/kubeconfig"
run 129 "a bad duration is wrong usage" "$rc_bin" controller --poll 5x && has "names the duration" "$out" "5x"
out=$(RECONCILE_CONTROLLER_TOKEN= "$rc_bin" controller "$url" --listen 0.0.0.0:$hport 2>&1)
[ $? -eq 129 ] && has "no token off loopback is refused" "$out" "RECONCILE_CONTROLLER_TOKEN" || bad "no token off loopback is refused" "$out"

# --- the first commit, then a push seen by polling
start "$work/ctl1.log" 1s 2s
wait_for 30 serves one && ok "the first commit is applied" || bad "the first commit is applied" "$(get)" "$(tail -20 "$work/ctl1.log")"
# a failing environment backs off, doubling, and holds no other
wait_for 10 env_is broken 'e["state"] == "failed" and e["backoff_seconds"] >= 5 and e["last"]["error"]' && ok "a failing environment is failed, with its error and a backoff" || bad "a failing environment backs off" "$(status)"
b=$(status | /usr/bin/python3 -c 'import json,sys; print(int([e for e in json.load(sys.stdin)["environments"] if e["name"] == "broken"][0]["backoff_seconds"]))')
wait_for $((b + 8)) env_is broken "e['backoff_seconds'] == min(2 * $b, 300)" && ok "the backoff doubles when the retry fails (${b} s -> $((2 * b)) s)" || bad "the backoff doubles" "$b" "$(status)"
code -H "Authorization: Bearer $RECONCILE_CONTROLLER_TOKEN" "$api/metrics" >/dev/null
has "metrics count the failures" "$(cat "$work/body")" 'reconcile_runs_total{environment="broken",result="failed"}'
[ "$(code "$api/healthz")" = 200 ] && ok "/healthz without a token" || bad "/healthz without a token" "$(cat "$work/body")"
[ "$(code "$api/readyz")" = 200 ] && ok "/readyz once the source was read" || bad "/readyz" "$(cat "$work/body")"
[ "$(code "$api/api/v1/status")" = 401 ] && ok "/api/v1/status needs the token" || bad "/api/v1/status needs the token" "$(cat "$work/body")"
[ "$(code -H "Authorization: Bearer wrong" "$api/api/v1/status")" = 401 ] && ok "a wrong token is refused" || bad "a wrong token is refused"
[ "$(code "$api/metrics")" = 401 ] && ok "/metrics needs the token" || bad "/metrics needs the token"
sha2=$(commit two)
t0=$(date +%s%N)
wait_for 20 serves two && ok "a push is applied by polling, without a webhook ($(( ($(date +%s%N) - t0) / 1000000 )) ms)" || bad "a push is applied by polling" "$(get)" "$(tail -20 "$work/ctl1.log")"
in_sync_at() { status | SHA=$1 /usr/bin/python3 -c '
import json, os, sys
d = json.load(sys.stdin)
e = [x for x in d["environments"] if x["name"] == "dev"][0]
sys.exit(0 if e["commit"] == os.environ["SHA"] and e["state"] == "in-sync" and e["last"]["result"] == "succeeded" and e["last"]["run"] and e["drift"] is not None and d["ready"] else 1)'; }
wait_for 10 in_sync_at "$sha2" && ok "/api/v1/status: dev in sync at the pushed commit, with its last run" || bad "/api/v1/status" "$(status)"
hasnt "status shows no secret" "$(status)" "$RECONCILE_CONTROLLER_TOKEN"
code -H "Authorization: Bearer $RECONCILE_CONTROLLER_TOKEN" "$api/metrics" >/dev/null
cp "$work/body" "$work/metrics.txt"
has "metrics count dev's runs" "$(cat "$work/metrics.txt")" 'reconcile_runs_total{environment="dev",result="succeeded"}'
has "metrics have the apply histogram" "$(cat "$work/metrics.txt")" 'reconcile_apply_duration_seconds_bucket{le="+Inf"}'
has "metrics have the process's memory" "$(cat "$work/metrics.txt")" 'process_resident_memory_bytes'
echo "controller RSS with 4 environments: $(awk '/^process_resident_memory_bytes/ {printf "%.1f MiB", $2 / 1048576}' "$work/metrics.txt")"
if command -v promtool >/dev/null; then
	out=$(promtool check metrics <"$work/metrics.txt" 2>&1) && ok "promtool check metrics" || bad "promtool check metrics" "$out"
else
	out=$(/usr/bin/python3 "$here/check_metrics.py" "$work/metrics.txt" 2>&1) && ok "metrics parse (promtool not installed: $out)" || bad "metrics parse" "$out"
fi
# manual: planned, saved as pending, not applied
wait_for 10 env_is prod 'e["state"] == "pending-approval" and e["pending_plan"] and e["drift"] == 1' && ok "a manual environment waits with its pending plan" || bad "a manual environment waits" "$(status)"
[ -f "$RECONCILE_STATE_DIR/controller/pending/prod.json" ] && ok "the pending plan is saved under the state directory" || bad "the pending plan is saved" "$(ls -R "$RECONCILE_STATE_DIR")"
[ -z "$(get 2)" ] && ok "the manual environment is not applied" || bad "the manual environment is not applied" "$(get 2)"
code -H "Authorization: Bearer $RECONCILE_CONTROLLER_TOKEN" "$api/metrics" >/dev/null
has "metrics count the pending plan" "$(cat "$work/body")" "reconcile_plans_pending 1"
# drift: healed under drift: heal at the resync, reported under drift: report
wait_for 10 serves stage 1 && ok "another environment is applied beside it" || bad "stage is applied" "$(get 1)"
for p in $(owned_by "$project/dev/web") $(owned_by "$project/stage/web"); do kill -9 "$p"; done
wait_for 15 serves two && ok "drift is healed at the resync (drift: heal)" || bad "drift is healed" "$(get)" "$(tail -20 "$work/ctl1.log")"
wait_for 10 env_is stage 'e["state"] == "drifted" and e["drift"] == 1' && ok "drift is only reported under drift: report" || bad "drift is reported" "$(status)"
[ -z "$(get 1)" ] && ok "reported drift is left alone" || bad "reported drift is left alone" "$(get 1)"
code -H "Authorization: Bearer $RECONCILE_CONTROLLER_TOKEN" "$api/metrics" >/dev/null
has "metrics show the drift" "$(cat "$work/body")" 'reconcile_drift{environment="stage"} 1'
stop "SIGTERM stops the first controller with exit 0"

# --- webhooks, with polling out of the way (and the broken environment)
broken=
printf 'listen 0.0.0.0:1\n' >"$work/bad-flags"
run 1 "a flags file with what it cannot set is refused" "$rc_bin" controller "$url" --config "$work/bad-flags" && has "naming the line" "$out" "bad-flags:1: 'listen' cannot be set"
printf '# re-read at SIGHUP\npoll 1h\n' >"$work/flags"
start "$work/ctl2.log" 1s 10m --config "$work/flags"
wait_for 20 bash -c "curl -sf $api/readyz >/dev/null" || bad "second controller ready" "$(tail "$work/ctl2.log")"
sleep 1 # its first cycle (nothing to do) ends
sign() { printf '%s' "$1" | openssl dgst -sha256 -hmac "$RECONCILE_WEBHOOK_SECRET" -r | cut -d' ' -f1; }
body='{"ref":"refs/heads/main","secret-payload-marker":"x9q"}'
[ "$(code -X POST -H "X-GitHub-Event: push" -H "X-Hub-Signature-256: sha256=$(sign "tampered")" --data "$body" "$api/hooks/github")" = 401 ] && ok "a bad GitHub signature is 401" || bad "a bad GitHub signature is 401" "$(cat "$work/body")"
[ "$(code -X POST -H "X-GitHub-Event: push" --data "$body" "$api/hooks/github")" = 401 ] && ok "a missing signature is 401" || bad "a missing signature is 401"
sleep 0.2
has "the refusal is logged" "$(cat "$work/ctl2.log")" "refused"
hasnt "the refused body is not logged" "$(cat "$work/ctl2.log")" "secret-payload-marker"
hasnt "the secret is not logged" "$(cat "$work/ctl2.log")" "$RECONCILE_WEBHOOK_SECRET"
ping='{"zen":"Keep it logically awesome."}'
[ "$(code -X POST -H "X-GitHub-Event: ping" -H "X-Hub-Signature-256: sha256=$(sign "$ping")" --data "$ping" "$api/hooks/github")" = 200 ] && ok "a GitHub ping is answered" || bad "a GitHub ping is answered" "$(cat "$work/body")"
[ "$(code -X POST -H "X-Gitlab-Token: wrong" --data '{}' "$api/hooks/gitlab")" = 401 ] && ok "a wrong GitLab token is 401" || bad "a wrong GitLab token is 401"
[ "$(code -X POST -H "Authorization: Bearer wrong" --data '{}' "$api/hooks/generic")" = 401 ] && ok "a wrong generic bearer is 401" || bad "a wrong generic bearer is 401"
head -c 1100000 /dev/zero | tr '\0' a >"$work/big"
[ "$(code -X POST -H "X-Hub-Signature-256: sha256=00" --data-binary @"$work/big" "$api/hooks/github")" = 413 ] && ok "a body over 1 MiB is 413" || bad "a body over 1 MiB is 413" "$(cat "$work/body")"

# pushes announced by signed webhooks: the latency to the first action
first_action() { # commit
	local f
	for f in "$RECONCILE_STATE_DIR"/runs/*.journal; do
		grep -q '"type":"intent"' "$f" 2>/dev/null && grep -q "$1" "$f" && return 0
	done
	return 1
}
lat=()
for g in three-a three-b three; do
	sha=$(commit $g)
	push='{"ref":"refs/heads/main","after":"'$sha'"}'
	t0=$(date +%s%N)
	c=$(code -X POST -H "X-GitHub-Event: push" -H "X-Hub-Signature-256: sha256=$(sign "$push")" --data "$push" "$api/hooks/github")
	while ! first_action "$sha" && [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 10000 ]; do sleep 0.01; done
	lat+=($(( ($(date +%s%N) - t0) / 1000000 )))
	[ "$c" = 202 ] || bad "a signed push webhook is accepted" "$c $(cat "$work/body")"
	wait_for 20 serves $g || bad "the webhook's push $g is applied" "$(get)"
done
sorted=($(printf '%s\n' "${lat[@]}" | sort -n))
echo "webhook -> first action: ${lat[*]} ms (median ${sorted[1]} ms)"
[ "$c" = 202 ] && ok "signed push webhooks are accepted"
# the goal is 1 s (docs/controller.md has the figures measured); the check
# allows twice that on a loaded machine, and still fails on waiting for
# the poll (an hour here)
[ "${sorted[1]}" -le 2000 ] && ok "webhook to first action: median ${sorted[1]} ms (goal 1 s)" || bad "webhook to first action within 2 s" "${lat[*]} ms" "$(tail -20 "$work/ctl2.log")"
wait_for 20 serves three && ok "the webhook's push is applied" || bad "the webhook's push is applied" "$(get)"
sha4=$(commit four)
[ "$(code -X POST -H "X-Gitlab-Token: $RECONCILE_WEBHOOK_SECRET" --data '{}' "$api/hooks/gitlab")" = 202 ] && ok "a GitLab webhook is accepted" || bad "a GitLab webhook is accepted"
wait_for 10 serves four && ok "the GitLab webhook's push is applied" || bad "the GitLab webhook's push is applied" "$(get)"
sha5=$(commit five)
[ "$(code -X POST -H "Authorization: Bearer $RECONCILE_WEBHOOK_SECRET" --data '{}' "$api/hooks/generic")" = 202 ] && ok "a generic webhook is accepted" || bad "a generic webhook is accepted"
wait_for 10 serves five && ok "the generic webhook's push is applied" || bad "the generic webhook's push is applied" "$(get)"
wait_for 10 in_sync_at "$sha5" || true

# SIGHUP re-reads the flags file: a poll of 1 s finds the next push
printf 'poll 1s\n' >"$work/flags"
kill -HUP "$ctl_pid"
commit five-b >/dev/null
wait_for 10 serves five-b && ok "SIGHUP re-reads --config: the new poll finds a push" || bad "SIGHUP re-reads --config" "$(get)" "$(tail -5 "$work/ctl2.log")"
has "the re-read is logged" "$(cat "$work/ctl2.log")" "SIGHUP: re-read"

# SIGTERM in the middle of an apply: the apply finishes, then exit 0
sha6=$(commit six '    hooks: { pre_apply: [ { name: slow, where: local, run: [sleep, "2"] } ] }')
code -X POST -H "Authorization: Bearer $RECONCILE_WEBHOOK_SECRET" --data '{}' "$api/hooks/generic" >/dev/null
hook_started() {
	local f
	for f in "$RECONCILE_STATE_DIR"/runs/*.journal; do
		grep -q "$sha6" "$f" && grep -q '"type":"intent"' "$f" && grep -q 'hook/slow' "$f" && return 0
	done
	return 1
}
wait_for 10 hook_started && ok "an apply with a slow hook started" || bad "the slow apply started" "$(tail -5 "$work/ctl2.log")"
t0=$SECONDS
stop "SIGTERM during an apply exits 0"
[ $((SECONDS - t0)) -ge 1 ] && ok "SIGTERM waited for the running apply ($((SECONDS - t0)) s)" || bad "SIGTERM waited for the running apply" "$((SECONDS - t0)) s"
serves six && ok "the apply running at SIGTERM completed" || bad "the apply running at SIGTERM completed" "$(get)"

# --- the logs and the journal
if /usr/bin/python3 - "$work/ctl1.log" "$work/ctl2.log" <<'PY'
import json, sys
n = with_run = 0
for path in sys.argv[1:]:
    for line in open(path):
        o = json.loads(line)
        assert {"time", "level", "message"} <= set(o), line
        n += 1
        with_run += o.get("environment") == "dev" and bool(o.get("run"))
assert with_run > 0, "no line carries the environment and the run"
PY
then ok "--log-format json: every line is a JSON object, some with environment and run"; else bad "--log-format json" "$(head -5 "$work/ctl1.log")"; fi
run 0 "reconcile history reads the controller's runs" "$rc_bin" history --state-dir "$RECONCILE_STATE_DIR" --output json
if printf '%s' "$out" | /usr/bin/python3 -c '
import json, sys
runs = [r for r in json.load(sys.stdin) if r["environments"] != ["broken"]]
assert len(runs) >= 6, len(runs)
assert all(r["status"] == "succeeded" for r in runs), [r["status"] for r in runs]'; then ok "every apply (pushes, a heal) succeeded, in the journal"; else bad "every apply in the journal" "$out"; fi
finish
