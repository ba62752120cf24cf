#!/usr/bin/env bash
# Notifications end to end: the local driver and a test webhook server on
# loopback (server.py).
#   run.sh RECONCILE_BINARY
# An apply posts `applied` to a Slack-style and a generic endpoint with the
# right fields; an endpoint answering 500 first is retried; an endpoint
# that never answers delays the apply by the bounded flush only; a failed
# apply posts `failed`; a rollback posts `rolled_back`; the events and
# environments filters hold; the URLs and secret values appear neither in
# the output nor in the state directory.
set -u
rc_bin=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
export NO_COLOR=1
. "$here/../lib.sh"
py=/usr/bin/python3
[ -x "$py" ] || { echo "skip: no /usr/bin/python3"; exit 77; }
work=$(mktemp -d /tmp/rc-notify-XXXXXX)
export RECONCILE_STATE_DIR=$work/state
project=nt$$
cleanup() {
	"$rc_bin" destroy "$work/cfg" --auto-approve >/dev/null 2>&1
	for p in $(owned_by "$project/"); do kill -9 "$p" 2>/dev/null; done
	[ -n "${srv:-}" ] && kill "$srv" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

"$py" "$here/server.py" "$work/port" "$work/log" &
srv=$!
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port")
base=http://127.0.0.1:$port
# the URLs carry the endpoints' credentials: none may leak
export NT_SLACK_URL=$base/slack/T0/B0/hunter2-slack-token
export NT_HOOK_URL=$base/flaky/hunter2-hook-token
export NT_PROD_URL=$base/hook/hunter2-prod-token
export NT_SECRET=hunter2-secret-value
mkdir -p "$work/cfg/secrets"
echo "$base/hook/hunter2-file-token" >"$work/cfg/secrets/failures-url"

write_config() { # dev's service (YAML), prod-only's url variable and environments
	cat >"$work/cfg/reconcile.yaml" <<YAML
version: 1
project: $project
notify:
  - name: team-chat
    slack: { url: { env: NT_SLACK_URL } }
    environments: [dev]
  - name: deploy-hook
    webhook: { url: { env: NT_HOOK_URL } }
    events: [applied, failed, rolled_back]
  - name: prod-only
    webhook: { url: { env: ${2:-NT_PROD_URL} } }
    environments: [${3:-"prod-*"}]
  - name: failures
    webhook: { url: { file: secrets/failures-url } }
    events: [failed]
environments:
  dev:
    target: { driver: local }
    services:
      web: { command: $1 }
    secrets:
      TOKEN: { env: NT_SECRET }
  other:
    target: { driver: local }
    services:
      worker: { command: [sleep, "600"] }
YAML
}
commit() {
	git -C "$work/cfg" add -A >/dev/null &&
		git -C "$work/cfg" -c user.name=t -c user.email=t@t commit -qm "$1" &&
		git -C "$work/cfg" rev-parse HEAD
}
git init -q "$work/cfg"
echo secrets/ >"$work/cfg/.gitignore"
write_config '[sleep, "600"]'
c1=$(commit one)

# lines of the server's log for a path prefix, as "event environment"
events() {
	"$py" - "$work/log" "$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["path"].startswith(sys.argv[2]):
        b = r["body"]
        print(r["status"], b.get("event", "slack"), b.get("environment", ""),
              b.get("text", ""))
PY
}
field() { # path-prefix index key: a field of the index-th generic payload
	"$py" - "$work/log" "$1" "$2" "$3" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
rows = [r for r in rows if r["path"].startswith(sys.argv[2]) and r["status"] == 200]
print(json.dumps(rows[int(sys.argv[3])]["body"].get(sys.argv[4])))
PY
}

# --- an apply: applied to the Slack and the generic endpoints
run 0 "apply" "$rc_bin" apply "$work/cfg" --auto-approve
all=$out
sleep 0.3 # the server writes its log after answering
ev=$(events /slack/)
has "slack: applied for dev" "$ev" "200 slack  [$project] dev: applied at ${c1:0:7}"
hasnt "slack: nothing for other (environments filter)" "$ev" "other:"
has "slack: what changed" "$(cat "$work/log")" '`create dev/service/web`'
ev=$(events /flaky/)
has "generic: a 500 first" "$ev" "500 applied dev"
n=$(grep -c '"status": 200' <<<"$(grep /flaky/ "$work/log")")
[ "$n" -eq 2 ] && ok "generic: retried until delivered, per environment" || bad "generic: retried" "$ev"
has "generic: event" "$(field /flaky/ 0 event)" '"applied"'
has "generic: project" "$(field /flaky/ 0 project)" "\"$project\""
has "generic: commit" "$(field /flaky/ 0 commit)" "\"$c1\""
run_id=$(sed -n 's/.*in run \([0-9a-f-]*\)\..*/\1/p' <<<"$all")
has "generic: run id" "$(field /flaky/ 0 run_id)" "\"$run_id\""
has "generic: summary" "$(field /flaky/ 0 summary)" '1 change (1 create)'
has "generic: changes" "$(field /flaky/ 0 changes)" 'dev/service/web'
has "generic: no error" "$(field /flaky/ 0 error)" 'null'
hasnt "prod-only: nothing (no prod here)" "$(cat "$work/log")" "/hook/hunter2-prod"
hasnt "failures: nothing on success" "$(cat "$work/log")" "/hook/hunter2-file"

# --- no change: no notification
lines=$(wc -l <"$work/log")
run 0 "apply without changes" "$rc_bin" apply "$work/cfg" --auto-approve
all+=$out
sleep 0.3
[ "$(wc -l <"$work/log")" -eq "$lines" ] && ok "nothing sent without changes" || bad "nothing sent without changes" "$(tail -2 "$work/log")"

# --- a failed apply: failed, with the error
write_config '[sleep, "600"], health: { command: ["false"], interval: 1s, retries: 1, grace: 1s }'
c2=$(commit two)
run 1 "a failing apply" "$rc_bin" apply "$work/cfg" -e dev --auto-approve
all+=$out
sleep 0.3
has "slack: failed" "$(events /slack/)" "dev: apply failed at ${c2:0:7}"
has "failures (file: reference): failed" "$(events /hook/hunter2-file)" "200 failed dev"
has "failures: the error" "$(grep /hook/hunter2-file "$work/log")" 'service/web'
has "generic: failed" "$(events /flaky/)" "200 failed dev"

# --- a rollback: rolled_back
write_config '[sleep, "601"]'
commit three >/dev/null
run 0 "apply a change" "$rc_bin" apply "$work/cfg" -e dev --auto-approve
all+=$out
run 0 "rollback" "$rc_bin" rollback --source "$work/cfg" -e dev --auto-approve
all+=$out
sleep 0.3
has "generic: rolled_back" "$(events /flaky/)" "200 rolled_back dev"
has "slack: rolled back" "$(events /slack/)" "dev: rolled back"

# --- an endpoint that never answers: the apply waits for the bounded
# flush only, and says so
write_config '[sleep, "601"]' NT_HANG_URL other
sed -i 's|\[sleep, "600"\]|[sleep, "602"]|' "$work/cfg/reconcile.yaml"
commit four >/dev/null
export NT_HANG_URL=$base/hang/hunter2-hang-token
start=$(date +%s)
run 0 "apply with an endpoint that never answers" "$rc_bin" apply "$work/cfg" -e other --auto-approve
took=$(($(date +%s) - start))
all+=$out
[ "$took" -le 16 ] && ok "bounded by the flush (${took}s)" || bad "bounded by the flush" "took ${took}s"
has "the wait is reported" "$out" "not delivered after"
has "generic: other applied meanwhile" "$(events /flaky/)" "200 applied other"

# --- no URL, no secret value anywhere
for s in hunter2-slack-token hunter2-hook-token hunter2-prod-token hunter2-hang-token hunter2-file-token hunter2-secret-value "$base/"; do
	hasnt "output never shows $s" "$all" "$s"
	if grep -rqF "$s" "$RECONCILE_STATE_DIR"; then bad "state never holds $s"; else ok "state never holds $s"; fi
done
if grep -qF hunter2-secret-value "$work/log"; then bad "payloads never hold a secret value"; else ok "payloads never hold a secret value"; fi
finish
