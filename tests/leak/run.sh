#!/usr/bin/env bash
# The leak sweep: canary secret values, random per run, planted as every
# kind of secret the language has, into a local-driver configuration and
# a Kubernetes one (against rc_fake_kube); then what a user runs:
# validate, show, plan (text, JSON, saved), apply (debug logs), a changed
# value planned and applied again, history, rollback, destroy, and a short
# controller run (its JSON logs, /metrics, /api/v1/status). Every byte
# reconcile wrote is then searched for each value, its base64 (standard
# and URL-safe, with and without padding) and its percent-encoded form:
# the state directories, the source cache, saved plans, the output of
# every command, the controller's logs and HTTP answers. Each hit is
# printed as file and offset (never the value), and any hit fails.
#
# Not swept: what rc_fake_kube stored (a Secret's data must hold the
# value, in base64: the platform has to receive it), and the files this
# script planted the values in.
#
# A self-check plants a value into the swept tree first and makes sure
# the sweep finds it there, so that the sweep can fail.
#   run.sh RECONCILE_BINARY FAKE_KUBE_BINARY SOURCE_ROOT
set -u
rc_bin=$(realpath "$1")
fake_bin=$(realpath "$2")
root=$(realpath "$3")
export NO_COLOR=1
. "$root/tests/lib.sh"
SHOW=2000
work=$(mktemp -d /tmp/rc-leak-XXXXXX)
outs=$work/out # stdout and stderr of every command
export RECONCILE_STATE_DIR=$work/state XDG_CACHE_HOME=$work/cache
export RECONCILE_CONTROLLER_TOKEN=leak-ctl-token-$$
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com
project=leak$$
fake_pid= ctl_pid=
mkdir -p "$outs"
cleanup() {
	[ -n "$ctl_pid" ] && kill -9 "$ctl_pid" 2>/dev/null
	"$rc_bin" destroy "$work/local" --auto-approve >/dev/null 2>&1
	"$rc_bin" destroy "$work/ctl" --state-dir "$work/ctl-state" --auto-approve >/dev/null 2>&1
	for s in "$RECONCILE_STATE_DIR" "$work/ctl-state"; do
		for p in $(owned_by "$project/" "$s"); do kill -9 "$p" 2>/dev/null; done
	done
	[ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null && wait "$fake_pid" 2>/dev/null
	if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
t_start=$SECONDS

# ------------------------------------------------------------ the canaries
canaries=() # every value planted this run, swept for at the end
rand_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
# A new value of a shape: long (masked everywhere), short (under the
# redactor's 8 bytes: masked only as a whole field), or special
# (characters that base64 and percent-encoding change).
canary() {
	case $1 in
	long) printf 'canary-%s' "$(rand_hex 12)" ;;
	short) printf 'q@%s' "$(rand_hex 3 | cut -c1-5)" ;;
	special) printf 'c@n:ry/%s +=&?' "$(rand_hex 6)" ;;
	esac
}

# The kinds of secret reference, each planted by plant_<kind> NAME VALUE
# DIR: it puts VALUE where the reference finds it and sets $ref to the
# YAML of the reference. Another kind is one more entry here and one more
# function.
secret_kinds=(env file encrypted)
planted=() # what the plant functions wrote, left out of the sweep
plant_env() {
	export "LEAK_$1=$2"
	ref="{ env: LEAK_$1 }"
}
plant_file() {
	mkdir -p "$3/secrets"
	printf '%s\n' "$2" >"$3/secrets/$1"
	planted+=("$3/secrets/$1")
	ref="{ file: secrets/$1 }"
}
# encrypted: an armored age file written by Debian's age into the
# configuration itself, to this run's key, which reconcile reads from
# RECONCILE_AGE_KEY_FILE (the controller too)
command -v age >/dev/null && command -v age-keygen >/dev/null ||
	{ echo "FAIL age is not installed (the Debian package age)"; exit 1; }
mkdir -p "$work/age"
age-keygen -o "$work/age/keys.txt" 2>/dev/null && chmod 600 "$work/age/keys.txt"
export RECONCILE_AGE_KEY_FILE=$work/age/keys.txt
age_recipient=$(age-keygen -y "$work/age/keys.txt")
plant_encrypted() {
	local armored
	armored=$(printf '%s' "$2" | age -a -r "$age_recipient") || exit 1
	ref="{ encrypted: \"${armored//$'\n'/\\n}\\n\" }"
}
# plant_secrets DIR TAG: new canaries of every shape as every kind, for
# the configuration in DIR; sets $secrets_yaml (the secrets: entries,
# indented for an environment). TAG keeps names apart between
# configurations.
plant_secrets() {
	local dir=$1 tag=$2 kind shape name value
	secrets_yaml="    secrets:"
	for kind in "${secret_kinds[@]}"; do
		for shape in long short special; do
			name=$(echo "${tag}_${kind}_${shape}" | tr 'a-z' 'A-Z')
			value=$(canary "$shape")
			canaries+=("$value")
			"plant_$kind" "$name" "$value" "$dir"
			secrets_yaml+=$'\n'"      $name: $ref"
		done
	done
}

# cmd NAME EXPECTED_EXIT CMD...: runs a command with its stdout and stderr
# kept under $outs (swept) and in $out.
n_cmd=0
cmd() {
	local name=$1 want=$2 got
	shift 2
	n_cmd=$((n_cmd + 1))
	"$@" </dev/null >"$outs/$n_cmd.stdout" 2>"$outs/$n_cmd.stderr"
	got=$?
	out=$(cat "$outs/$n_cmd.stdout" "$outs/$n_cmd.stderr")
	[ "$got" -eq "$want" ] && ok "$name" || bad "$name" "exit $got, expected $want" "${out:0:$SHOW}"
}

# ------------------------------------------------------------ the sweep
# sweep ROOT...: every file under the roots searched for every canary and
# its encodings; prints "file:offset: canary #i (form)" per hit; exit 1
# on any hit. Files in $planted and the fake's directory are left out.
sweep() {
	printf '%s\0' "${canaries[@]}" >"$work/canaries"
	printf '%s\0' "${planted[@]}" "$work/canaries" "$work/fake" >"$work/skip"
	/usr/bin/python3 "$root/tests/leak/sweep.py" "$work/canaries" "$work/skip" "$@"
}

# ------------------------------------------------------------ local driver
mkdir -p "$work/plans"
lport=$(free_ports 4)
local_cfg=$work/local
mkdir -p "$local_cfg"
cp "$root/tests/engine/server.py" "$local_cfg/"
# a hook that prints every secret it is given as programs do: as a field,
# in base64 (an Authorization header) and percent-encoded (a URL); its
# output reaches the apply's output and the journal, redacted
cat >"$local_cfg/show_secrets.py" <<'PY'
import base64, os, urllib.parse
for k, v in sorted(os.environ.items()):
    if k.startswith("LOCAL_"):
        b = v.encode()
        print(f"{k}={v}")
        print(f"{k}: Authorization: Basic {base64.b64encode(b).decode()}")
        print(f"{k}: token {base64.urlsafe_b64encode(b).decode().rstrip('=')}")
        print(f"{k}: url https://user:{urllib.parse.quote(v, safe='')}@db.example/")
PY
# local_yaml DIR ENV PORT GREETING [HOOKS]: a local environment with one
# service and the secrets of $secrets_yaml
local_yaml() {
	cat >"$1/reconcile.yaml" <<YAML
version: 1
project: $project
recipients: [ $age_recipient ]
environments:
  $2:
    target: { driver: local }
    policy: { prune: true, drift: heal }
    services:
      web:
        command: [python3, server.py]
        port: $3
        env: { GREETING: "$4" }
        health: { http: /health, interval: 1s, retries: 20 }
${5:-}
$secrets_yaml
YAML
}
hooks_yaml="    hooks:
      post_apply:
        - { name: show-secrets, run: [python3, show_secrets.py] }"
write_local() { local_yaml "$local_cfg" dev "$lport" "$1" "$hooks_yaml"; } # greeting
plant_secrets "$local_cfg" local
write_local one
cmd "validate" 0 "$rc_bin" validate "$local_cfg"
hasnt "validate has no warning (the values match the recipients)" "$out" "warning"
cmd "show" 0 "$rc_bin" show "$local_cfg"
has "show names the references" "$out" "LEAK_LOCAL_ENV_LONG"
cmd "plan" 2 "$rc_bin" --log-level debug plan "$local_cfg"
has "the plan shows secrets as sensitive" "$out" "(sensitive)"
cmd "plan --output json" 2 "$rc_bin" plan "$local_cfg" --output json
cmd "plan --out" 2 "$rc_bin" plan "$local_cfg" --out "$work/plans/local-1.json"
cmd "apply the saved plan (debug logs)" 0 "$rc_bin" --log-level debug apply "$work/plans/local-1.json"
has "the hook's output is shown, redacted" "$out" "LOCAL_ENV_SHORT=(sensitive)"
has "with the base64 forms masked" "$out" "LOCAL_FILE_SPECIAL: Authorization: Basic (sensitive)"
has "and the percent-encoded ones" "$out" "LOCAL_ENV_SPECIAL: url https://user:(sensitive)@db.example/"
has "decrypted values reach the hook, redacted" "$out" "LOCAL_ENCRYPTED_LONG=(sensitive)"
has "a short decrypted value too" "$out" "LOCAL_ENCRYPTED_SHORT=(sensitive)"
has "and a decrypted value's base64" "$out" "LOCAL_ENCRYPTED_SPECIAL: Authorization: Basic (sensitive)"
cmd "a plan after the apply has no changes" 0 "$rc_bin" plan "$local_cfg"
# a changed value of every secret
plant_secrets "$local_cfg" local
write_local two
cmd "a changed secret is planned" 2 "$rc_bin" --log-level trace plan "$local_cfg"
has "as an update" "$out" "~ service web"
cmd "apply the changed secrets (trace logs)" 0 "$rc_bin" --log-level trace apply "$local_cfg" --auto-approve
cmd "history" 0 "$rc_bin" history --state-dir "$RECONCILE_STATE_DIR"
cmd "history --output json" 0 "$rc_bin" history --state-dir "$RECONCILE_STATE_DIR" --output json
cmd "rollback" 0 "$rc_bin" --log-level debug rollback --source "$local_cfg" --auto-approve
cmd "destroy" 0 "$rc_bin" --log-level debug destroy "$local_cfg" --auto-approve

# ------------------------------------------------------------ Kubernetes
mkdir -p "$work/fake"
kube_fake_start "$fake_bin" "$work/fake" "$work/fake.log" --controller-delay-ms 5
cat >"$work/kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster: { server: "https://127.0.0.1:$port", certificate-authority: "$work/fake/ca.pem" }
users:
- name: admin
  user: { token: fake-admin-token }
contexts:
- name: fake
  context: { cluster: fake, user: admin }
current-context: fake
YAML
export KUBECONFIG=$work/kubeconfig
kube_cfg=$work/kube
mkdir -p "$kube_cfg"
write_kube() { # image tag
	cat >"$kube_cfg/reconcile.yaml" <<YAML
version: 1
project: $project
recipients: [ $age_recipient ]
environments:
  k8s:
    target: { driver: kubernetes, context: fake, namespace: leak }
    policy: { prune: true }
    services:
      web:
        image: registry.example.com/leak/web:$1
        port: 80
$secrets_yaml
YAML
}
plant_secrets "$kube_cfg" kube
write_kube 1.0
cmd "kubernetes: validate" 0 "$rc_bin" validate "$kube_cfg"
cmd "kubernetes: plan" 2 "$rc_bin" --log-level debug plan "$kube_cfg"
cmd "kubernetes: plan --output json" 2 "$rc_bin" plan "$kube_cfg" --output json
cmd "kubernetes: plan --out" 2 "$rc_bin" plan "$kube_cfg" -o "$work/plans/kube-1.json"
cmd "kubernetes: apply (trace logs)" 0 "$rc_bin" --log-level trace apply "$work/plans/kube-1.json"
sec=$(kube_api GET /api/v1/namespaces/leak/secrets/reconcile-secrets)
b64=$(printf '%s' "${canaries[${#canaries[@]} - 1]}" | base64 -w0)
has "the platform received a value (its Secret's data)" "$sec" "$b64"
# every value planted for it, each kind (the encrypted ones decrypted)
missing=0
for v in "${canaries[@]:${#canaries[@]} - 3 * ${#secret_kinds[@]}}"; do
	case $sec in *"$(printf '%s' "$v" | base64 -w0)"*) ;; *) missing=$((missing + 1)) ;; esac
done
[ "$missing" -eq 0 ] && ok "the platform received every value, of every kind" || bad "the platform received every value, of every kind" "$missing missing"
plant_secrets "$kube_cfg" kube
write_kube 1.1
cmd "kubernetes: changed secrets are planned" 2 "$rc_bin" --log-level debug plan "$kube_cfg"
cmd "kubernetes: apply the changed secrets (trace logs)" 0 "$rc_bin" --log-level trace apply "$kube_cfg" --auto-approve
cmd "kubernetes: history" 0 "$rc_bin" history --state-dir "$RECONCILE_STATE_DIR" -e k8s --output json
cmd "kubernetes: rollback" 0 "$rc_bin" --log-level debug rollback --source "$kube_cfg" --auto-approve
cmd "kubernetes: destroy" 0 "$rc_bin" --log-level debug destroy "$kube_cfg" --auto-approve

# ------------------------------------------------------------ the controller
# a git work tree followed by the controller: the local driver, JSON logs
ctl_cfg=$work/ctl
mkdir -p "$ctl_cfg"
cp "$root/tests/engine/server.py" "$ctl_cfg/"
plant_secrets "$ctl_cfg" ctl
printf 'secrets/\n' >"$ctl_cfg/.gitignore"
local_yaml "$ctl_cfg" ctl $((lport + 2)) ctl
git -C "$ctl_cfg" init -q -b main && git -C "$ctl_cfg" add -A && git -C "$ctl_cfg" commit -qm leak
hport=$((lport + 3))
api=http://127.0.0.1:$hport
"$rc_bin" --log-level debug controller "$ctl_cfg" --listen 127.0.0.1:$hport --poll 1s --resync 2s \
	--state-dir "$work/ctl-state" --log-format json >"$outs/controller.log" 2>&1 &
ctl_pid=$!
get_api() { # PATH FILE
	curl -s --max-time 5 -H "Authorization: Bearer $RECONCILE_CONTROLLER_TOKEN" -o "$2" "$api$1"
}
applied() {
	get_api /api/v1/status "$outs/status.json" &&
		/usr/bin/python3 -c 'import json, sys
e = [x for x in json.load(open(sys.argv[1]))["environments"] if x["name"] == "ctl"][0]
sys.exit(0 if e["last"] and e["last"]["result"] == "succeeded" else 1)' "$outs/status.json" 2>/dev/null
}
end=$((SECONDS + 30))
until applied || [ $SECONDS -ge $end ]; do sleep 0.2; done
applied && ok "the controller applies the environment" || bad "the controller applies the environment" "$(cat "$outs/status.json" 2>/dev/null)" "$(tail -5 "$outs/controller.log")"
sleep 2.5 # a resync
get_api /metrics "$outs/metrics.txt" && has "/metrics answers" "$(cat "$outs/metrics.txt")" "reconcile_runs_total" || bad "/metrics answers"
get_api /api/v1/status "$outs/status.json" || bad "/api/v1/status answers"
kill -TERM "$ctl_pid"
wait "$ctl_pid" && ok "the controller stops on SIGTERM" || bad "the controller stops on SIGTERM" "$(tail -5 "$outs/controller.log")"
ctl_pid=
has "its logs are JSON lines" "$(head -1 "$outs/controller.log")" '{"time":'
cmd "controller: destroy" 0 "$rc_bin" destroy "$ctl_cfg" --state-dir "$work/ctl-state" --auto-approve

# ------------------------------------------------------------ sweep
swept=("$RECONCILE_STATE_DIR" "$work/ctl-state" "$XDG_CACHE_HOME" "$work/plans" "$outs"
	"$local_cfg" "$kube_cfg" "$ctl_cfg" "$work/fake.log")
echo "# ${#canaries[@]} canary values planted as: ${secret_kinds[*]}"
# the self-check: a value planted in the swept tree is found, with its
# offset, in an encoded form too
mkdir -p "$work/plans"
printf 'padding-%s' "$(printf '%s' "${canaries[0]}" | base64 -w0 | tr '+/' '-_' | tr -d =)" >"$work/plans/self-check"
sout=$(sweep "${swept[@]}")
case $? in
1) has "the sweep finds a planted value (file, offset, form)" "$sout" "$work/plans/self-check:8: canary #0 (base64" ;;
*) bad "the sweep finds a planted value" "$sout" ;;
esac
hasnt "and never prints a value" "$sout" "${canaries[0]}"
rm -f "$work/plans/self-check"
sout=$(sweep "${swept[@]}") && ok "no canary anywhere reconcile wrote" || bad "no canary anywhere reconcile wrote" "$sout"
echo "# ${sout##*$'\n'}"
echo "# not swept: what rc_fake_kube stored (a Secret's data holds the values: the platform must receive them)"
echo "# took $((SECONDS - t_start)) s"
finish
