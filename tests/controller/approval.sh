#!/usr/bin/env bash
# Approvals through the controller, end to end: a configuration
# repository served by a real `git daemon`, the local driver, a
# controller that polls hourly (a generic webhook wakes it), and the
# `reconcile pending / approve / reject` commands with named tokens.
#   approval.sh RECONCILE_BINARY
# An https URL is verified (refused, then trusted through
# RECONCILE_CONTROLLER_CA). A manual environment waits; `pending` lists it; a wrong token is 401;
# a plan id that is not the pending one is refused; a stale approval
# (a commit pushed after the plan was made) is refused with a new pending
# plan, which is then approved and applied, `history` naming the
# approver; a rejection is journaled and the rejected plan is not
# proposed again until the commit changes, also by a restarted controller.
set -u
rc_bin=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
export NO_COLOR=1
. "$here/../lib.sh"
work=$(mktemp -d /tmp/rc-appr-XXXXXX)
export RECONCILE_STATE_DIR=$work/state
export XDG_CACHE_HOME=$work/cache
alice=appr-alice-4c1d9e
bob=appr-bob-77a0f2
ctl_tokens="alice:$alice, bob:$bob"
export RECONCILE_WEBHOOK_SECRET=appr-hook-5e2b
project=appre2e$$
daemon_pid= ctl_pid= tls_pid=
# ports free now, below the ephemeral range (tests/lib.sh): git, the
# API, the https stand-in, the service
base=$(free_ports 4)
gport=$base hport=$((base + 1)) tport=$((base + 2)) sport=$((base + 3))
url=git://127.0.0.1:$gport/cfg
api=http://127.0.0.1:$hport
export RECONCILE_CONTROLLER_URL=$api
cleanup() {
	[ -n "$ctl_pid" ] && kill -9 "$ctl_pid" 2>/dev/null
	[ -n "$tls_pid" ] && kill "$tls_pid" 2>/dev/null
tls_pid=
	"$rc_bin" destroy "$url" --state-dir "$RECONCILE_STATE_DIR" --auto-approve >/dev/null 2>&1
	for p in $(owned_by "$project/"); do kill -9 "$p" 2>/dev/null; done
	[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null
	if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

repo=$work/git/cfg
commit() { # greeting
	cat >"$repo/reconcile.yaml" <<YAML
version: 1
project: $project
environments:
  prod:
    target: { driver: local }
    policy: { apply: manual }
    services:
      web:
        command: [python3, server.py]
        port: $sport
        env: { GREETING: "$1" }
        health: { http: /health, interval: 1s, retries: 20 }
YAML
	git -C "$repo" add -A && git -C "$repo" -c user.name=t -c user.email=t@e commit -q -m "$1"
	git -C "$repo" rev-parse HEAD
}
mkdir -p "$repo"
git -C "$repo" init -q -b main
cp "$here/../engine/server.py" "$repo/"
commit one >/dev/null
git daemon --reuseaddr --base-path="$work/git" --export-all --listen=127.0.0.1 --port=$gport "$work/git" >"$work/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 50); do git ls-remote "$url" >/dev/null 2>&1 && break; sleep 0.1; done

get() { curl -s --max-time 2 "http://127.0.0.1:$sport/" 2>/dev/null; }
wait_for() { # SECONDS CMD...
	local end=$((SECONDS + $1))
	shift
	while [ $SECONDS -lt $end ]; do "$@" && return 0; sleep 0.1; done
	return 1
}
code() { curl -s -o "$work/body" -w '%{http_code}' --max-time 30 "$@"; }
as() { # TOKEN CMD...: the command with that token
	local t=$1
	shift
	RECONCILE_CONTROLLER_TOKEN=$t "$@"
}
status() { code -H "Authorization: Bearer $alice" "$api/api/v1/status" >/dev/null; cat "$work/body" 2>/dev/null; }
prod() { # a python expression on e (prod's status)
	status | COND=$1 /usr/bin/python3 -c '
import json, os, sys
e = [x for x in json.load(sys.stdin)["environments"] if x["name"] == "prod"][0]
sys.exit(0 if eval(os.environ["COND"]) else 1)' 2>/dev/null; }
pending_plan() { status | /usr/bin/python3 -c '
import json, sys
print([x for x in json.load(sys.stdin)["environments"] if x["name"] == "prod"][0]["pending_plan"] or "")'; }
wake() { code -X POST -H "Authorization: Bearer $RECONCILE_WEBHOOK_SECRET" --data '{}' "$api/hooks/generic" >/dev/null; }

# --- the CLI without a controller
out=$(RECONCILE_CONTROLLER_URL= "$rc_bin" pending 2>&1)
[ $? -eq 129 ] && has "no URL: says how to give one" "$out" "RECONCILE_CONTROLLER_URL" || bad "no URL is wrong usage" "$out"
run 1 "a controller that is not there" as "$alice" "$rc_bin" pending && has "says it cannot reach it" "$out" "cannot reach the controller at $api"
out=$(RECONCILE_CONTROLLER_TOKEN="alice:x,bob:y" "$rc_bin" pending 2>&1)
[ $? -eq 129 ] && has "a token list in the CLI is refused" "$out" "your own token" || bad "a token list in the CLI is refused" "$out"
out=$(RECONCILE_CONTROLLER_TOKEN="alice:x,:y" "$rc_bin" controller "$url" --listen 127.0.0.1:$hport 2>&1)
[ $? -eq 129 ] && has "a bad token list stops the controller, naming the entry" "$out" "entry 2" || bad "a bad token list is wrong usage" "$out"
hasnt "the message shows no token" "$out" "alice:x"

# --- an https controller (behind an ingress): the certificate is verified
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/tls.key" -out "$work/tls.crt" -days 1 \
	-subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1" >/dev/null 2>&1
/usr/bin/python3 - "$work/tls.crt" "$work/tls.key" "$tport" <<'PY' >"$work/tls.log" 2>&1 &
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.headers.get("Authorization") == "Bearer tls-token"
        body = b'{"approvals": []}' if ok else b"unauthorized"
        self.send_response(200 if ok else 401)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
s = http.server.HTTPServer(("127.0.0.1", int(sys.argv[3])), H)
c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
c.load_cert_chain(sys.argv[1], sys.argv[2])
s.socket = c.wrap_socket(s.socket, server_side=True)
s.serve_forever()
PY
tls_pid=$!
wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$tport" 2>/dev/null
run 1 "https: an unknown certificate is refused" as tls-token "$rc_bin" pending --controller "https://127.0.0.1:$tport" && has "says the certificate is not trusted" "$out" "certificate is not trusted"
run 0 "https: trusted through RECONCILE_CONTROLLER_CA" env RECONCILE_CONTROLLER_CA="$work/tls.crt" RECONCILE_CONTROLLER_TOKEN=tls-token "$rc_bin" pending --controller "https://127.0.0.1:$tport" && has "https: the answer is read" "$out" "No plan waits for approval."
kill "$tls_pid" 2>/dev/null
tls_pid=

# --- a manual environment waits
RECONCILE_CONTROLLER_TOKEN=$ctl_tokens "$rc_bin" controller "$url" --listen 127.0.0.1:$hport --poll 1h --resync 2s \
	--state-dir "$RECONCILE_STATE_DIR" --log-format json >"$work/ctl.log" 2>&1 &
ctl_pid=$!
wait_for 30 prod 'e["state"] == "pending-approval"' && ok "the manual environment waits for approval" || bad "the manual environment waits" "$(status)" "$(tail -20 "$work/ctl.log")"
id1=$(pending_plan)
[ -z "$(get)" ] && ok "nothing is applied before the approval" || bad "nothing is applied before the approval" "$(get)"
run 0 "reconcile pending lists it" as "$alice" "$rc_bin" pending && has "pending: the environment" "$out" "prod "
has "pending: the short id" "$out" "$(echo "${id1#sha256:}" | cut -c1-12)"
has "pending: the changes" "$out" "1 create"
[ "$(code -H "Authorization: Bearer $alice" "$api/api/v1/approvals")" = 200 ] && ok "GET /api/v1/approvals" || bad "GET /api/v1/approvals" "$(cat "$work/body")"
/usr/bin/python3 - "$work/body" "$id1" <<'PY' && ok "the approvals document: environment, plan, commit, created, counts, changed keys" || bad "the approvals document" "$(cat "$work/body")"
import json, sys
a = json.load(open(sys.argv[1]))["approvals"]
assert len(a) == 1, a
p = a[0]
assert p["environment"] == "prod" and p["plan"] == sys.argv[2], p
assert len(p["commit"]) == 40 and p["created"].endswith("Z"), p
assert p["counts"] == {"create": 1}, p
assert p["changes"] == ["create prod/service/web"], p
PY
[ "$(code "$api/api/v1/approvals")" = 401 ] && ok "the approvals need a token" || bad "the approvals need a token" "$(cat "$work/body")"
run 1 "a wrong token is refused by the CLI" as wrong-token "$rc_bin" approve prod && has "says 401 and which variable" "$out" "refused the token (401): check RECONCILE_CONTROLLER_TOKEN"
[ -z "$(get)" ] && ok "a refused approval applies nothing" || bad "a refused approval applies nothing" "$(get)"
run 1 "another plan id is refused" as "$alice" "$rc_bin" approve prod --plan deadbeefdeadbeef && has "says which plan is pending" "$out" "is not the pending plan of 'prod'; the pending plan is $id1"
run 1 "an unknown environment" as "$alice" "$rc_bin" approve nope && has "says there is none" "$out" "no environment 'nope'"

# --- a stale approval: a commit pushed after the plan was made
sha2=$(commit two)
t0=$(date +%s%N)
run 1 "a stale approval is refused" as "$alice" "$rc_bin" approve prod --plan "$id1"
echo "# a stale approval refused (fetch + plan + check + new pending plan): $(( ($(date +%s%N) - t0) / 1000000 )) ms"
has "stale: says why" "$out" "the plan is stale: the source moved"
has "stale: asks for the new plan" "$out" "a new plan is pending: sha256:"
[ -z "$(get)" ] && ok "the stale plan was not applied" || bad "the stale plan was not applied" "$(get)"
id2=$(pending_plan)
[ -n "$id2" ] && [ "$id2" != "$id1" ] && has "the new plan is the one named" "$out" "$id2" || bad "a new pending plan appears" "$id1 -> $id2"
run 0 "reconcile pending shows the new plan" as "$alice" "$rc_bin" pending && has "at the new commit" "$out" "${sha2:0:12}"

# --- the new plan approved (as alice, with a one-entry 'name:token')
t0=$(date +%s%N)
run 0 "the new plan is approved" as "alice:$alice" "$rc_bin" approve prod --plan "${id2#sha256:}"
echo "# reconcile approve, fetch + plan + staleness check + apply of one service (healthy): $(( ($(date +%s%N) - t0) / 1000000 )) ms"
has "approve: says the run succeeded" "$out" "succeeded (1 ok, 0 failed, 0 skipped)"
run_id=$(printf '%s\n' "$out" | sed -n 's/.*: run \([^ ]*\) succeeded.*/\1/p')
[ "$(get)" = two ] && ok "the approved plan is applied" || bad "the approved plan is applied" "$(get)"
wait_for 5 prod 'e["state"] == "in-sync" and e["pending_plan"] is None' && ok "the environment is in sync, nothing pending" || bad "in sync after the approval" "$(status)"
run 0 "history" "$rc_bin" history --state-dir "$RECONCILE_STATE_DIR"
has "history names the approver" "$out" "approved by alice"
has "history: the run applied" "$out" "$run_id"
run 0 "history --output json" "$rc_bin" history --state-dir "$RECONCILE_STATE_DIR" --output json
printf '%s' "$out" | RUN=$run_id /usr/bin/python3 -c '
import json, os, sys
r = [x for x in json.load(sys.stdin) if x["id"] == os.environ["RUN"]][0]
sys.exit(0 if r["approved_by"] == "alice" and r["status"] == "succeeded" else 1)' && ok "history json: approved_by" || bad "history json: approved_by" "${out:0:600}"
grep -q "\"plan\":\"$id2\"" "$RECONCILE_STATE_DIR/runs/$run_id.journal" && ok "the run-start records the approved plan id" || bad "the run-start records the plan id" "$(head -1 "$RECONCILE_STATE_DIR/runs/$run_id.journal")"
run 1 "nothing pending: approve says so" as "$alice" "$rc_bin" approve prod && has "no pending plan (404)" "$out" "has no plan waiting for approval"
run 0 "nothing pending: reconcile pending" as "$bob" "$rc_bin" pending && has "says none waits" "$out" "No plan waits for approval."

# --- a rejection
commit three >/dev/null
wake
wait_for 30 prod 'e["state"] == "pending-approval" and e["commit"] is not None' && ok "a new commit waits again" || bad "a new commit waits again" "$(status)"
id3=$(pending_plan)
run 0 "bob rejects it" as "$bob" "$rc_bin" reject prod && has "reject: says so" "$out" "Rejected plan $(echo "${id3#sha256:}" | cut -c1-12) of prod"
wait_for 5 prod "e['state'] == 'rejected' and e['pending_plan'] is None and e['rejected_plan'] == '$id3'" && ok "the rejected plan is dropped" || bad "the rejected plan is dropped" "$(status)"
[ ! -e "$RECONCILE_STATE_DIR/controller/pending/prod.json" ] && ok "its file is removed" || bad "its file is removed"
[ "$(get)" = two ] && ok "a rejected plan is not applied" || bad "a rejected plan is not applied" "$(get)"
run 0 "history after the rejection" "$rc_bin" history --state-dir "$RECONCILE_STATE_DIR"
has "history names who rejected" "$out" "rejected by bob"
has "history: outcome rejected, no action" "$out" "rejected     0 ok, 0 failed, 0 skipped"
# re-planned (resync 2s) at the same commit and state: the same plan,
# not proposed again
sleep 5
prod 'e["pending_plan"] is None and e["state"] == "rejected" and e["last"]["result"] == "rejected"' && ok "the rejected plan stays dropped when re-planned" || bad "the rejected plan stays dropped" "$(status)"
run 0 "the rejected environment has nothing pending" as "$bob" "$rc_bin" pending && has "none listed" "$out" "No plan waits for approval."
# a restarted controller does not propose it either
kill -TERM "$ctl_pid"; wait "$ctl_pid"
RECONCILE_CONTROLLER_TOKEN=$ctl_tokens "$rc_bin" controller "$url" --listen 127.0.0.1:$hport --poll 1h --resync 2s \
	--state-dir "$RECONCILE_STATE_DIR" --log-format json >>"$work/ctl.log" 2>&1 &
ctl_pid=$!
# (waited for as a whole: a resync passes through "planning" now and then)
wait_for 30 prod 'e["last"]["result"] is not None and e["state"] == "rejected" and e["pending_plan"] is None and e["rejected_plan"] == "'"$id3"'"' &&
	ok "a restarted controller keeps the rejection" || bad "a restarted controller keeps the rejection" "$(status)"
commit four >/dev/null
wake
wait_for 30 prod 'e["state"] == "pending-approval"' && ok "a new commit proposes a plan again" || bad "a new commit proposes a plan again" "$(status)"
run 0 "approve without --plan takes the pending one" as "$bob" "$rc_bin" approve prod
[ "$(get)" = four ] && ok "the fourth commit is applied" || bad "the fourth commit is applied" "$(get)" "$out"
grep -q '"approved_by":"bob"\|approved by bob' "$work/ctl.log" && ok "the controller logs the approver" || bad "the controller logs the approver" "$(grep -i approv "$work/ctl.log" | tail -5)"
grep -q "$alice\|$bob" "$work/ctl.log" "$RECONCILE_STATE_DIR"/runs/*.journal && bad "no token in the log or the journal" || ok "no token in the log or the journal"

kill -TERM "$ctl_pid"
wait "$ctl_pid" && ok "the controller stops with 0" || bad "the controller stops with 0" "$(tail -5 "$work/ctl.log")"
ctl_pid=
finish
