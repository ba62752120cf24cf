# What the ECS end-to-end scripts share: tests/lib.sh, the system python
# ($py), a work directory (the state, HOME and the cache; removed on exit
# unless KEEP is set), run() that also keeps every output in $outputs,
# the fake ECS and Secrets Manager (tests/fake/ecs) started on a loopback
# port for the credentials $akid:$secret, the AWS variables that reach
# it, fake/q/is to drive it and check its state, and count/counts/total
# for the requests it counted. Source it with root, akid, secret
# and work_name set (fake_args: more options for the fake); it sets py,
# work, outputs, pids, port and base.
py=/usr/bin/python3
export NO_COLOR=1
. "$root/tests/lib.sh"
SHOW=3000
command -v curl >/dev/null || { echo "skipped: curl is not installed"; exit 77; }
[ -x "$py" ] || { echo "skipped: python3 is not installed"; exit 77; }
work=$(mktemp -d "/tmp/$work_name-XXXXXX")
export RECONCILE_STATE_DIR=$work/state HOME=$work/home XDG_CACHE_HOME=$work/cache
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com
mkdir -p "$HOME"
outputs=$work/outputs.log
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP
eval "$(declare -f run | sed '1s/^run/lib_run/')"
run() { lib_run "$@"; local s=$?; printf '%s\n' "$out" >>"$outputs"; return $s; }

$py "$root/tests/fake/ecs/fake_ecs.py" --credentials "$akid:$secret" --port-file "$work/port" \
	--log "$work/fake.requests" ${fake_args:-} >"$work/fake.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
[ -s "$work/port" ] || { echo "FAIL setup: the fake ECS did not start"; cat "$work/fake.log"; exit 1; }
port=$(cat "$work/port")
base=http://127.0.0.1:$port
export AWS_ACCESS_KEY_ID=$akid AWS_SECRET_ACCESS_KEY=$secret AWS_REGION=us-east-1
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_ENDPOINT_URL AWS_ENDPOINT_URL_ECS AWS_ENDPOINT_URL_SECRETS_MANAGER
fake() { curl -sS -X "$1" ${3:+-H "Content-Type: application/json" --data "$3"} "$base$2"; }
q() { fake GET /fake/state | $py -c 'import json,sys; s=json.load(sys.stdin); print('"$1"')'; }
is() { local got; got=$(q "$2"); [ "$got" = "$3" ] && ok "$1" || bad "$1" "got $got, expected $3"; }
# count OP: the requests of an ECS operation, or of a Secrets Manager one
# (sm:OP), since the last /fake/stats/reset
count() {
	local t
	case $1 in sm:*) t=secretsmanager.${1#sm:} ;; *) t=AmazonEC2ContainerServiceV20141113.$1 ;; esac
	fake GET /fake/stats | $py -c 'import json,sys; print(json.load(sys.stdin)["requests"].get("'"$t"'", 0))'
}
total() { fake GET /fake/stats | $py -c 'import json,sys; print(json.load(sys.stdin)["total"])'; }
# counts NAME "OP=N OP=N ...": each OP was requested N times
counts() {
	local name=$1 want got all=""
	for want in $2; do
		got=$(count "${want%=*}")
		[ "$got" = "${want#*=}" ] || all="$all ${want%=*}=$got (expected ${want#*=})"
	done
	[ -z "$all" ] && ok "$name" || bad "$name" "$all" "$(fake GET /fake/stats)"
}
# no_value_anywhere WHAT VALUE...: no VALUE in the fake's state (task
# definitions, services, the secrets' metadata), any output or the state
# directory
no_value_anywhere() {
	local what=$1 v state
	shift
	state=$(fake GET /fake/state)
	for v in "$@"; do
		hasnt "no $what in the fake's task definitions" "$state" "$v"
		hasnt "no $what in any output" "$(cat "$outputs")" "$v"
		if grep -rqF -- "$v" "$RECONCILE_STATE_DIR" 2>/dev/null; then
			bad "a $what is in the state directory"
		else ok "the state directory holds no $what"; fi
	done
}
