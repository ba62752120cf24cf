#!/usr/bin/env bash
# What the docs promise about approval and rollback, on the local driver:
#   - policy.apply: manual is applied only from a saved plan, or on a
#     terminal once a person types the environment's name; --auto-approve
#     applies the automatic environments, leaves the manual ones (and what
#     depends on them) and says how to apply them; the same for destroy and
#     rollback;
#   - rollback without a run id undoes the newest run that changed the
#     configuration, passing over runs that only healed drift.
#   approval.sh RECONCILE_BINARY
set -u
rc_bin=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
export NO_COLOR=1
. "$here/../lib.sh"
work=$(mktemp -d /tmp/rc-approval-XXXXXX)
cfg=$work/cfg
export RECONCILE_STATE_DIR=$work/state
cleanup() {
	sed -i 's/apply: manual/apply: auto/' "$cfg/reconcile.yaml" 2>/dev/null
	"$rc_bin" destroy "$cfg" --auto-approve >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT

# A service that records its pid (one replica), so the test can kill it.
write_config() { # dev-value prod-value
	mkdir -p "$cfg"
	cat >"$cfg/reconcile.yaml" <<YAML
version: 1
project: approval
environments:
  dev:
    target: { driver: local }
    services:
      app: { command: [sh, -c, 'echo \$\$ > dev.pid; exec sleep 1000'], env: { V: "$1" } }
  prod:
    target: { driver: local }
    policy: { apply: manual }
    services:
      app: { command: [sleep, "1000"], env: { V: "$2" } }
  reports:
    target: { driver: local }
    depends_on: [prod]
    services:
      app: { command: [sleep, "1001"], env: { V: "$2" } }
YAML
}
# on_terminal INPUT CMD...: runs CMD on a pseudo-terminal fed INPUT.
on_terminal() {
	local input=$1
	shift
	out=$(printf '%s' "$input" | script -qec "$(printf '%q ' "$@")" /dev/null 2>&1)
}
# applied ENV: the plan of ENV has nothing left to do.
applied() { "$rc_bin" plan "$cfg" -e "$1" >/dev/null 2>&1; }

write_config 1 1
run 0 "apply --auto-approve applies what is automatic" "$rc_bin" apply "$cfg" --auto-approve
has "the plan marks the manual environment" "$out" "prod (local), applied only when approved (policy.apply: manual)"
has "it says prod was left" "$out" "Left for approval: environment 'prod' is applied only when approved (policy.apply: manual); --auto-approve does not approve it"
has "and what depends on it" "$out" "Left too: environment 'reports'"
has "and how to apply it" "$out" "reconcile plan $cfg -e prod -o prod-plan.json"
has "it ends with what it left" "$out" "Not applied, left for approval: prod, reports"
applied dev && ok "dev was applied" || bad "dev was applied"
applied prod && bad "prod was not applied" || ok "prod was not applied"
applied reports && bad "reports waits for prod" || ok "reports waits for prod"

run 1 "apply -e prod --auto-approve refuses" "$rc_bin" apply "$cfg" -e prod --auto-approve
has "saying nothing was applied" "$out" "error: nothing was applied."
applied prod && bad "prod is still not applied" || ok "prod is still not applied"

# the way out it names, followed to the letter
steps=$(printf '%s\n' "$out" | sed -n 's/^    \(reconcile .*\)$/\1/p')
[ "$(printf '%s\n' "$steps" | wc -l)" -eq 2 ] && ok "two commands to follow" || bad "two commands to follow" "$steps"
(
	cd "$work" || exit 1
	while read -r cmd; do
		eval "\"$rc_bin\" ${cmd#reconcile }" </dev/null >>"$work/steps.log" 2>&1
		[ $? -le 2 ] || exit 1
	done <<<"$steps"
) && ok "the commands it names run" || bad "the commands it names run" "$(cat "$work/steps.log")"
applied prod && ok "prod is applied from its saved plan" || bad "prod is applied from its saved plan" "$(cat "$work/steps.log")"
run 0 "the rest follows" "$rc_bin" apply "$cfg" --auto-approve
applied reports && ok "reports is applied" || bad "reports is applied" "$out"

# on a terminal, typing the name approves it; anything else leaves it
write_config 1 2
on_terminal $'nope\n' "$rc_bin" apply "$cfg" -e prod
has "a wrong name leaves it" "$out" "Left for approval: environment 'prod'"
applied prod && bad "prod unchanged after a wrong name" || ok "prod unchanged after a wrong name"
on_terminal $'prod\n' "$rc_bin" apply "$cfg" -e prod
has "the terminal asks for the name" "$out" "Type its name to approve its changes above"
has "typing it applies" "$out" "Applied: 1 action"
applied prod && ok "prod applied once its name was typed" || bad "prod applied once its name was typed" "$out"
run 0 "reports follows" "$rc_bin" apply "$cfg" --auto-approve

# rollback: the same rule
run 1 "rollback --auto-approve of prod is refused" "$rc_bin" rollback --source "$cfg" -e prod --auto-approve
has "rollback says how" "$out" "reconcile rollback --source $cfg -e prod -o prod-rollback.json"
run 2 "rollback -o saves the plan" "$rc_bin" rollback --source "$cfg" -e prod -o "$work/prod-rollback.json"
has "the saved rollback undoes V" "$out" 'env.V: "2" -> "1"'
run 0 "apply the saved rollback" "$rc_bin" apply "$work/prod-rollback.json"
run 2 "prod is back at V=1" "$rc_bin" plan "$cfg" -e prod && has "so the plan shows V going to 2 again" "$out" 'env.V: "1" -> "2"'
run 0 "the configuration again" "$rc_bin" apply "$work/prod-rollback.json" && has "the same plan twice does nothing" "$out" "already applied"

# destroy: the same rule
run 0 "destroy --auto-approve removes what is automatic" "$rc_bin" destroy "$cfg" --auto-approve
has "destroy leaves prod" "$out" "reconcile destroy $cfg -e prod -o prod-destroy.json"
run 2 "prod still runs" "$rc_bin" plan "$cfg" -e prod --destroy && has "so there is something to destroy" "$out" "- service app"
run 2 "destroy -o saves its plan" "$rc_bin" destroy "$cfg" -e prod -o "$work/prod-destroy.json"
run 0 "apply the saved destroy" "$rc_bin" apply "$work/prod-destroy.json"
run 0 "prod is gone" "$rc_bin" plan "$cfg" -e prod --destroy && has "nothing left" "$out" "No changes"

# rollback undoes the deploy, not the heal that came after it
write_config 1 1
run 0 "deploy dev V=1" "$rc_bin" apply "$cfg" -e dev --auto-approve
write_config 2 1
run 0 "deploy dev V=2" "$rc_bin" apply "$cfg" -e dev --auto-approve
deploy=$(printf '%s\n' "$out" | sed -n 's/^Applied: .* in run \(.*\)\.$/\1/p')
kill -9 "$(cat "$cfg/dev.pid")"; sleep 0.3
run 0 "apply heals the killed process" "$rc_bin" apply "$cfg" -e dev --auto-approve
heal=$(printf '%s\n' "$out" | sed -n 's/^Applied: .* in run \(.*\)\.$/\1/p')
run 0 "rollback" "$rc_bin" rollback --source "$cfg" -e dev --auto-approve
has "it rolls back the deploy" "$out" "rolling back run $deploy"
has "saying why" "$out" "the newest run that changed the configuration: dev/service/app (env.V)"
has "it names the heal it passed over" "$out" "run $heal"
has "and why" "$out" "it only healed drift (dev/service/app brought back to what was applied)"
has "the rollback restores V=1" "$out" 'env.V: "2" -> "1"'
run 2 "dev is back at V=1" "$rc_bin" plan "$cfg" -e dev && has "the plan wants V=2 again" "$out" 'env.V: "1" -> "2"'

finish
