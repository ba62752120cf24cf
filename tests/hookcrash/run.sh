#!/usr/bin/env bash
# Hooks interrupted by a crash, on the local driver: reconcile is killed
# with SIGKILL while a hook runs, and the next apply learns what became of
# it instead of saying "No changes".
#   run.sh RECONCILE_BINARY
# Variants: a post_apply hook still running (waited for, recorded, not run
# again), one with no trace of its attempt (runs once), one that failed
# (runs again), an irreversible one whose outcome is lost (refused, then
# settled with --hook-outcome), a pre_apply hook killed with changes
# remaining (merged with this plan's own, runs once).
set -u
rc_bin=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
export NO_COLOR=1
. "$here/../lib.sh"
work=$(mktemp -d /tmp/rc-hookcrash-XXXXXX)
project=hc$$
cleanup() {
	for d in "$work"/*/cfg; do
		[ -d "$d" ] && RECONCILE_STATE_DIR=${d%/cfg}/state \
			"$rc_bin" destroy "$d" --auto-approve >/dev/null 2>&1
	done
	for p in $(grep -lsa "RECONCILE_STATE_HC=$work" /proc/[0-9]*/environ); do
		p=${p#/proc/}; p=${p%/environ}
		kill -9 "$p" 2>/dev/null
	done
	rm -rf "$work"
}
trap cleanup EXIT

# setup NAME PHASE [irreversible]: a configuration with one service and one
# hook `migrate` (or `backup` for pre_apply) that sleeps 2 s, appends a line
# to hook.log, and exits 1 while fail-once exists (removing it)
setup() {
	dir=$work/$1
	cfg=$dir/cfg
	export RECONCILE_STATE_DIR=$dir/state
	mkdir -p "$cfg"
	cat >"$cfg/hook.sh" <<'SH'
#!/bin/sh
sleep "${HOOK_SLEEP:-2}"
echo "ran $1" >>hook.log
echo "hook $1 done"
if [ -f fail-once ]; then rm -f fail-once; exit 1; fi
exit 0
SH
	chmod +x "$cfg/hook.sh"
	hookname=migrate
	[ "$2" = pre_apply ] && hookname=backup
	phase=$2
	irrev=${3:-false}
	greeting=one
	hook_sleep=2
	write
}
write() {
	cat >"$cfg/reconcile.yaml" <<YAML
version: 1
project: $project
environments:
  dev:
    target: { driver: local }
    services:
      web:
        command: [sleep, "3600"]
        env: { GREETING: "$greeting" }
    hooks:
      $phase:
        - name: $hookname
          run: [./hook.sh, $hookname]
          timeout: 60s
          irreversible: $irrev
          env: { RECONCILE_STATE_HC: "$work", HOOK_SLEEP: "$hook_sleep" }
YAML
}
lines() { [ -f "$cfg/hook.log" ] && wc -l <"$cfg/hook.log" || echo 0; }
# the pids of hook processes of this test (RECONCILE_HOOK set)
hook_pids() {
	local f p
	for f in $(grep -lsa "RECONCILE_STATE_HC=$work" /proc/[0-9]*/environ); do
		p=${f#/proc/}; p=${p%/environ}
		{ tr '\0' '\n' <"$f" | grep -q "^RECONCILE_HOOK=.*/$hookname$"; } 2>/dev/null && echo "$p"
	done
}
# apply in the background, kill -9 it once the hook runs; sets run1
apply_and_kill() {
	"$rc_bin" apply "$cfg" --auto-approve >"$dir/killed.log" 2>&1 &
	local a=$! i
	for i in $(seq 1 300); do
		[ -n "$(hook_pids)" ] && break
		sleep 0.05
	done
	if [ -z "$(hook_pids)" ]; then
		bad "$1: the hook started" "$(cat "$dir/killed.log")"
	fi
	kill -9 "$a"
	wait "$a" 2>/dev/null
	run1=$(ls -t "$RECONCILE_STATE_DIR"/runs/*.journal | head -1)
	run1=$(basename "$run1" .journal)
}
# expect_rerun V: the next plan carries the hook of run $run1, which left
# no trace; the apply runs it once more; the plan after is clean
expect_rerun() {
	local before
	before=$(lines)
	run 2 "$1: plan" "$rc_bin" plan "$cfg" && has "$1: carried" "$out" "> hook migrate  (unfinished in run $run1)"
	plan_out=$out
	run 0 "$1: apply" "$rc_bin" apply "$cfg" --auto-approve && has "$1: it did not start, so it runs" "$out" "not started in run $run1; run again"
	[ "$(lines)" = $((before + 1)) ] && ok "$1: the hook ran once more" || bad "$1: ran once more" "$(cat "$cfg/hook.log")"
	run 0 "$1: plan after" "$rc_bin" plan "$cfg" && has "$1: clean" "$out" "No changes"
}
wait_hook_gone() {
	local i
	for i in $(seq 1 200); do [ -z "$(hook_pids)" ] && return; sleep 0.05; done
}

# --- a post_apply hook still running when reconcile died
setup post post_apply
run 0 "post: first apply" "$rc_bin" apply "$cfg" --auto-approve
[ "$(lines)" = 1 ] && ok "post: the hook ran once" || bad "post: the hook ran once" "$(lines)"
greeting=two; write
apply_and_kill post
run 0 "post: history" "$rc_bin" history --state-dir "$RECONCILE_STATE_DIR" && has "post: the run is interrupted, unfinished" "$out" "interrupted"
run 2 "post: plan after the crash" "$rc_bin" plan "$cfg"
has "post: the plan carries the hook" "$out" "> hook migrate  (unfinished in run $run1)"
hasnt "post: the plan is not empty" "$out" "No changes"
run 2 "post: plan --output json" "$rc_bin" plan "$cfg" --output json
has "post: the JSON plan names the run" "$out" "\"run\": \"$run1\""
t0=$(date +%s.%N)
run 0 "post: apply after the crash" "$rc_bin" apply "$cfg" --auto-approve
t1=$(date +%s.%N)
has "post: it succeeded in the killed run" "$out" "succeeded in run $run1"
# the output of a hook whose caller died is dropped, never written to
# disk (it may hold a secret): only its end is recorded
hasnt "post: its output was not kept past the crash" "$out" "hook migrate done"
if grep -q "hook migrate done" "$RECONCILE_STATE_DIR/local/hooks/$run1".* \
	"$RECONCILE_STATE_DIR/runs/$run1.journal"; then
	bad "post: the killed run's hook output is nowhere in the state directory"
else
	ok "post: the killed run's hook output is nowhere in the state directory"
fi
wait_hook_gone
[ "$(lines)" = 2 ] && ok "post: not run again (one line for the killed run's attempt)" || bad "post: not run again" "$(cat "$cfg/hook.log")"
run 0 "post: plan after" "$rc_bin" plan "$cfg" && has "post: the plan is clean" "$out" "No changes"
run 0 "post: history after" "$rc_bin" history --state-dir "$RECONCILE_STATE_DIR"
has "post: history shows it resolved" "$out" "unfinished hook migrate: succeeded in run $run1 (settled by run"
has "post: history shows the run that settled it" "$out" "settles run $run1's unfinished hook migrate"
run 0 "post: history --output json" "$rc_bin" history --state-dir "$RECONCILE_STATE_DIR" --output json && has "post: JSON history too" "$out" "\"settled_later\""
echo "figure: the apply after the crash took $(echo "$t1 - $t0" | bc) s (it waited for the running hook)"

# --- no trace of the attempt (killed between its intent and its start)
setup notrace post_apply
run 0 "notrace: first apply" "$rc_bin" apply "$cfg" --auto-approve
greeting=two; write
apply_and_kill notrace
wait_hook_gone
# its waiter records the end a moment after the hook is gone
for _ in $(seq 100); do
	ls "$RECONCILE_STATE_DIR"/local/hooks/"$run1".*.status >/dev/null 2>&1 && break
	sleep 0.1
done
rm -f "$RECONCILE_STATE_DIR"/local/hooks/"$run1".*
expect_rerun notrace

# --- killed after the change, before the hook's intent: its journal cut
# there (what a kill at that moment leaves) and the hook's traces removed
setup before post_apply
run 0 "before: first apply" "$rc_bin" apply "$cfg" --auto-approve
greeting=two; write
run 0 "before: the apply to cut" "$rc_bin" apply "$cfg" --auto-approve
run1=$(basename "$(ls -t "$RECONCILE_STATE_DIR"/runs/*.journal | head -1)" .journal)
/usr/bin/python3 - "$RECONCILE_STATE_DIR/runs/$run1.journal" <<'PY'
import json, sys
lines = open(sys.argv[1], 'rb').read().split(b'\n')
keep = []
for l in lines:
    if not l:
        continue
    rec = json.loads(l.split(b' ', 2)[2])
    keep.append(l)
    if rec.get('type') == 'outcome' and rec.get('action', '').startswith('update:'):
        break
open(sys.argv[1], 'wb').write(b'\n'.join(keep) + b'\n')
PY
rm -f "$RECONCILE_STATE_DIR"/local/hooks/"$run1".*
expect_rerun before
hasnt "before: the change was not planned again" "$plan_out" "~ service web"

# --- a hook that failed while reconcile was dead runs again
setup failed post_apply
run 0 "failed: first apply" "$rc_bin" apply "$cfg" --auto-approve
greeting=two; write
touch "$cfg/fail-once"
apply_and_kill failed
wait_hook_gone
run 0 "failed: apply" "$rc_bin" apply "$cfg" --auto-approve && has "failed: its failure is found" "$out" "failed in run $run1; run again"
[ "$(lines)" = 3 ] && ok "failed: it ran again (first, failed, again)" || bad "failed: ran again" "$(cat "$cfg/hook.log")"
run 0 "failed: plan after" "$rc_bin" plan "$cfg" && has "failed: clean" "$out" "No changes"

# --- an irreversible hook whose outcome is lost
setup irrev post_apply true
run 0 "irrev: first apply" "$rc_bin" apply "$cfg" --auto-approve
# long enough to be killed whatever the machine's load
greeting=two; hook_sleep=60; write
apply_and_kill irrev
# its waiter dies too: no status, no process, only the start's trace
for p in $(hook_pids); do kill -9 -- "-$(ps -o pgid= "$p" | tr -d ' ')" 2>/dev/null; done
wait_hook_gone
before=$(lines)
run 1 "irrev: apply refuses" "$rc_bin" apply "$cfg" --auto-approve
has "irrev: naming the run" "$out" "was started by run $run1"
has "irrev: saying how to settle it" "$out" "--hook-outcome migrate=succeeded"
[ "$(lines)" = "$before" ] && ok "irrev: not run twice" || bad "irrev: not run" "$(cat "$cfg/hook.log")"
run 2 "irrev: still carried" "$rc_bin" plan "$cfg" && has "irrev: still in the plan" "$out" "> hook migrate  (unfinished in run $run1"
run 129 "irrev: a bad --hook-outcome is a usage error" "$rc_bin" apply "$cfg" --auto-approve --hook-outcome migrate=maybe
run 0 "irrev: settled by the flag" "$rc_bin" apply "$cfg" --auto-approve --hook-outcome migrate=succeeded
has "irrev: recorded as the user says" "$out" "as --hook-outcome says"
[ "$(lines)" = "$before" ] && ok "irrev: still not run" || bad "irrev: still not run" "$(cat "$cfg/hook.log")"
run 0 "irrev: plan after" "$rc_bin" plan "$cfg" && has "irrev: clean" "$out" "No changes"

# --- a pre_apply hook killed with the changes remaining
setup pre pre_apply
run 0 "pre: first apply" "$rc_bin" apply "$cfg" --auto-approve
greeting=two; write
before=$(lines)
apply_and_kill pre
run 2 "pre: plan" "$rc_bin" plan "$cfg"
has "pre: carried" "$out" "> hook backup  (unfinished in run $run1"
has "pre: the change remains" "$out" "~ service web"
n=$(printf '%s\n' "$out" | grep -c "> hook backup")
[ "$n" = 1 ] && ok "pre: one hook action (merged)" || bad "pre: merged" "$out"
run 0 "pre: apply" "$rc_bin" apply "$cfg" --auto-approve
wait_hook_gone
[ "$(lines)" = $((before + 1)) ] && ok "pre: the hook ran once in all" || bad "pre: ran once" "$(cat "$cfg/hook.log")"
run 0 "pre: plan after" "$rc_bin" plan "$cfg" && has "pre: clean" "$out" "No changes"

finish
