# What the shell tests share: pass/fail counters, checks on a command's
# exit and output, and the processes that carry reconcile's ownership mark.
# Source it after `set -u`; the caller prints `finish` last.
pass=0
fail=0
# How much of an output a failed check shows.
SHOW=${SHOW:-2000}

ok() { pass=$((pass + 1)); echo "ok $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; shift; printf '  %s\n' "$@"; }
# run EXPECTED_EXIT NAME CMD...: stdin closed, stdout and stderr in $out.
# A wrong exit status is a failure; a right one counts as a pass only when
# RUN_COUNTS_OK is set (otherwise the checks that follow do the counting).
run() {
	local want=$1 name=$2
	shift 2
	out=$("$@" </dev/null 2>&1)
	local got=$?
	if [ "$got" -ne "$want" ]; then bad "$name" "exit $got, expected $want" "${out:0:$SHOW}"; return 1; fi
	[ -n "${RUN_COUNTS_OK:-}" ] && ok "$name"
	return 0
}
has() { case "$2" in *"$3"*) ok "$1" ;; *) bad "$1" "missing: $3" "${2:0:$SHOW}" ;; esac }
hasnt() { case "$2" in *"$3"*) bad "$1" "unexpected: $3" "${2:0:$SHOW}" ;; *) ok "$1" ;; esac }
# The pids of live processes whose RECONCILE_OWNER starts with $1 and whose
# RECONCILE_STATE is the state directory $2 (by default
# $RECONCILE_STATE_DIR): what the local driver sees as its own there.
owned_by() {
	local state nl=$'\n' e env
	state=$(realpath -m "${2:-${RECONCILE_STATE_DIR:?owned_by: no state directory}}")
	for e in /proc/[0-9]*/environ; do
		env=$nl$({ tr '\0' '\n' <"$e"; } 2>/dev/null)$nl
		[[ $env == *"${nl}RECONCILE_OWNER=$1"* && $env == *"${nl}RECONCILE_STATE=$state$nl"* ]] && basename "$(dirname "$e")"
	done
}
# free_ports N: a port P such that P .. P+N-1 are free on 127.0.0.1, below
# the kernel's ephemeral range (which starts at 32768), so that no client
# socket of a test running beside this one takes it between the check and
# the use; each test picks at random from 20000-32000 and checks.
free_ports() {
	/usr/bin/python3 - "${1:-1}" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
for _ in range(200):
    p = random.randrange(20000, 32000 - n)
    socks = []
    try:
        for i in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", p + i))
            socks.append(s)
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(p)
    sys.exit(0)
sys.exit("no free ports")
PY
}

finish() {
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ]
}
# kube_fake_start BINARY DIR LOG [ARGS...]: starts the fake Kubernetes API
# server (tests/fake/kube) writing into DIR and its output into LOG, waits
# until it is ready and sets fake_pid and port (exits 1 when it does not
# start; the caller stops it). kube_api METHOD PATH [BODY [CONTENT-TYPE]]
# then sends a request to it as the admin.
kube_fake_start() {
	local bin=$1 dir=$2 log=$3
	shift 3
	"$bin" --dir "$dir" "$@" >"$log" 2>&1 &
	fake_pid=$!
	for _ in $(seq 1 100); do [ -e "$dir/ready" ] && break; sleep 0.05; done
	[ -e "$dir/ready" ] || { echo "the fake API server did not start"; cat "$log"; exit 1; }
	port=$(cat "$dir/port")
	kube_fake_dir=$dir
}
kube_api() {
	curl -s --cacert "$kube_fake_dir/ca.pem" -H "Authorization: Bearer fake-admin-token" \
		-X "$1" ${3:+-H "Content-Type: ${4:-application/json}"} ${3:+--data "$3"} \
		"https://127.0.0.1:$port$2"
}
