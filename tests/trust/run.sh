#!/usr/bin/env bash
# Trusted commits (policy.verify, docs/trust.md) with real tools: commits
# signed by git with ssh-keygen-made keys (ed25519, ECDSA P-256, RSA) and
# gpg-made keys, planned on a local-driver configuration (plan observes
# only: no process is started). What the user sees: a trusted signature
# plans; unsigned, untrusted, tampered, wrong-namespace, out-of-validity
# and expired signatures are refused with the reason, at policy.verify.
#   run.sh RECONCILE
set -u
rc_bin=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
export NO_COLOR=1 RUN_COUNTS_OK=1
. "$here/../lib.sh"
for tool in git ssh-keygen gpg gpgconf; do
	command -v $tool >/dev/null || { echo "skipped: no $tool"; exit 77; }
done

work=$(mktemp -d /tmp/rc-trust-XXXXXX)
# gpg-agent's socket path must fit in 108 bytes: a short home
export GNUPGHOME=$(mktemp -d /tmp/rcgpg.XXXX)
chmod 700 "$GNUPGHOME"
cleanup() {
	gpgconf --kill all >/dev/null 2>&1
	rm -rf "$work" "$GNUPGHOME"
}
trap cleanup EXIT
export RECONCILE_CACHE_DIR=$work/cache XDG_CACHE_HOME=$work/cache
unset RECONCILE_ALLOWED_SIGNERS RECONCILE_OPENPGP_KEYRING RECONCILE_STATE_DIR
export GIT_CONFIG_NOSYSTEM=1 HOME=$work/home
mkdir -p "$HOME"
git config --global user.name Alice
git config --global user.email alice@example.com
git config --global init.defaultBranch main
gpgb() { gpg --batch --pinentry-mode loopback --no-tty "$@"; }

keys=$work/keys
mkdir -p "$keys"
for k in ed25519:alice ecdsa:bob rsa:carol ed25519:mallory ed25519:filer ed25519:old; do
	ssh-keygen -q -t "${k%%:*}" -N '' -C "${k#*:}" -f "$keys/${k#*:}"
done
fp() { ssh-keygen -lf "$keys/$1.pub" | awk '{print $2}'; }

repo=$work/repo
git init -q "$repo"
cd "$repo" || exit 1
{
	echo "alice@example.com $(cat "$keys/alice.pub")"
	echo "bob@example.com namespaces=\"git\" $(cat "$keys/bob.pub")"
	echo "# a comment, then RSA"
	echo "carol@example.com,*@ops.example.com $(cat "$keys/carol.pub")"
	echo "filer@example.com namespaces=\"file\" $(cat "$keys/filer.pub")"
	echo "old@example.com valid-before=\"20200101Z\" $(cat "$keys/old.pub")"
} >allowed_signers
write_config() {
	cat >reconcile.yaml <<EOF
version: 1
project: trust
policy:
  verify:
$1
environments:
  dev:
    target: { driver: local }
    services:
      web:
        command: [sleep, "1000"]
EOF
}
write_config "    ssh: { allowed_signers: allowed_signers }"
echo ".reconcile/" >.gitignore
git add -A
# sign with key $1 (ssh) and commit with message $2
ssh_commit() {
	git -c gpg.format=ssh -c user.signingkey="$keys/$1" commit -q -S \
		--allow-empty -am "$2"
}
ssh_commit alice "config, signed by alice"

run 2 "ed25519 signed by a trusted key plans" "$rc_bin" plan
has "ed25519: the plan" "$out" "+ service web"
run 2 "--log-level info: who signed" "$rc_bin" --log-level info plan
has "info: the signer" "$out" "commit $(git rev-parse --short=7 HEAD) signed by ssh key $(fp alice) (alice@example.com)"

ssh_commit bob "bob's ecdsa"
run 2 "ecdsa-sha2-nistp256 plans" "$rc_bin" plan
ssh_commit carol "carol's rsa"
run 2 "rsa-sha2-512 plans" "$rc_bin" plan
git -c gpg.format=ssh -c user.signingkey="$keys/alice" \
	-c gpg.ssh.program="$here/sha256-keygen.sh" commit -q -S --allow-empty \
	-m "alice, the message hashed with sha256"
run 2 "hash algorithm sha256 plans" "$rc_bin" plan

git commit -q --allow-empty -m unsigned
head=$(git rev-parse --short=7 HEAD)
run 1 "unsigned is refused" "$rc_bin" plan
has "unsigned: the reason, at policy.verify" "$out" \
	"reconcile.yaml:5:5: error: environment 'dev': commit $head: unsigned (policy.verify requires signed commits)"
hasnt "unsigned: no plan" "$out" "+ service web"

ssh_commit mallory "mallory's change"
run 1 "an untrusted key is refused" "$rc_bin" plan
has "untrusted: named by its fingerprint" "$out" "signed by an unknown key $(fp mallory)"

ssh_commit filer "signed by a key for namespace file"
run 1 "a signer only for namespace file is refused" "$rc_bin" plan
has "namespace: the reason" "$out" "signer filer@example.com is not allowed for namespace git"

ssh_commit old "signed by a key valid before 2020"
run 1 "valid-before in the past is refused" "$rc_bin" plan
has "valid-before: the reason" "$out" "signer old@example.com was valid only before 2020-01-01 00:00:00 UTC"

ssh_commit alice "back to alice"
good=$(git rev-parse HEAD)
# the commit object's message rewritten, its signature kept
bad_commit=$(git cat-file commit HEAD | sed 's/^back to alice$/evil change/' |
	git hash-object -t commit -w --stdin)
git branch tampered "$bad_commit"
run 1 "a tampered commit is refused" "$rc_bin" plan --ref tampered
has "tampered: bad signature" "$out" "commit ${bad_commit:0:7}: bad signature (key $(fp alice))"
run 2 "--ref of a signed commit plans" "$rc_bin" plan --ref "$good"

git commit -q --allow-empty -m "unsigned again"
unsigned=$(git rev-parse HEAD)
git reset -q --hard "$good"
run 1 "--ref of an unsigned commit is refused" "$rc_bin" plan --ref "$unsigned"
has "--ref unsigned: the reason" "$out" "commit ${unsigned:0:7}: unsigned"

run 1 "rollback --to an unsigned commit is refused" "$rc_bin" rollback \
	--to "$unsigned" -o "$work/rollback.json"
has "rollback --to: the reason" "$out" "commit ${unsigned:0:7}: unsigned"
run 2 "rollback --to a signed commit plans" "$rc_bin" rollback --to "$good" \
	-o "$work/rollback.json"
git checkout -q "$unsigned"
run 1 "apply of an unsigned commit is refused" "$rc_bin" apply --auto-approve
has "apply: the reason" "$out" "unsigned (policy.verify requires signed commits)"
[ -z "$(ls .reconcile/runs 2>/dev/null)" ] && ok "apply refused: nothing journaled" ||
	bad "apply refused: nothing journaled" "$(ls .reconcile/runs)"
git checkout -q main

# the controller opens the same engine: it refuses the commit, applies
# nothing, and says why
git clone -q "$repo" "$work/ctl" && git -C "$work/ctl" checkout -q "$unsigned"
port=$(free_ports 1)
(cd "$work/ctl" && RECONCILE_CONTROLLER_TOKEN= timeout -s TERM 4 "$rc_bin" \
	controller . --listen "127.0.0.1:$port" --poll 1s >"$work/ctl.log" 2>&1)
has "controller: the reason" "$(cat "$work/ctl.log")" \
	"environment 'dev': commit ${unsigned:0:7}: unsigned (policy.verify requires signed commits)"
[ -z "$(ls "$work/ctl/.reconcile/runs" 2>/dev/null)" ] && ok "controller: nothing applied" ||
	bad "controller: nothing applied" "$(ls "$work/ctl/.reconcile/runs")"

echo "# an uncommitted change" >>reconcile.yaml
run 1 "a dirty work tree is refused" "$rc_bin" plan
has "dirty: the reason" "$out" "the working tree has uncommitted changes; signatures can only vouch for commits"
git checkout -q reconcile.yaml

# require: any accepts an unsigned commit and still refuses a bad one
write_config "    ssh: { allowed_signers: allowed_signers }
    require: any"
git commit -q -am "require any, unsigned"
run 2 "require: any plans an unsigned commit" "$rc_bin" plan
RECONCILE_ALLOWED_SIGNERS=$repo/allowed_signers run 1 \
	"require: any is ignored under RECONCILE_ALLOWED_SIGNERS" "$rc_bin" plan
has "anchor: require any ignored" "$out" "unsigned (policy.verify requires signed commits)"
ssh_commit mallory "require any, untrusted"
run 1 "require: any still refuses an untrusted key" "$rc_bin" plan
has "require any: untrusted named" "$out" "signed by an unknown key $(fp mallory)"
git reset -q --hard "$good"

# The trust anchor from outside the repository: a commit that trusts its
# own signer in allowed_signers is refused when RECONCILE_ALLOWED_SIGNERS
# names the team's file; a commit that drops policy.verify too.
cp allowed_signers "$work/team_signers"
echo "mallory@example.com $(cat "$keys/mallory.pub")" >>allowed_signers
ssh_commit mallory "mallory trusts herself"
run 2 "a commit can vouch for itself through its own allowed_signers" "$rc_bin" plan
RECONCILE_ALLOWED_SIGNERS=$work/team_signers run 1 \
	"RECONCILE_ALLOWED_SIGNERS takes precedence" "$rc_bin" plan
has "anchor: mallory refused" "$out" "signed by an unknown key $(fp mallory)"
git rm -q allowed_signers
sed -i '/^policy:/,/allowed_signers/d' reconcile.yaml
git commit -q -am "no policy any more, unsigned"
run 2 "without policy.verify nothing is checked" "$rc_bin" plan
RECONCILE_ALLOWED_SIGNERS=$work/team_signers run 1 \
	"RECONCILE_ALLOWED_SIGNERS requires signatures without policy.verify" \
	"$rc_bin" plan
has "anchor: unsigned refused" "$out" "unsigned (policy.verify requires signed commits)"
git reset -q --hard "$good"

# validate: bad values at file:line:col
write_config "    ssh: { allowed_signer: allowed_signers }
    require: sometimes"
run 1 "validate: bad policy.verify" "$rc_bin" validate
has "validate: unknown key" "$out" "reconcile.yaml:5:12: error:"
has "validate: unknown key named" "$out" "allowed_signer"
has "validate: bad require" "$out" "reconcile.yaml:6:14: error:"
git checkout -q reconcile.yaml

# OpenPGP: keys made by gpg in the test's own GNUPGHOME
gpgb --passphrase '' --quick-gen-key "Dana <dana@example.com>" ed25519 sign 1y >/dev/null 2>&1
gpgb --passphrase '' --quick-gen-key "Eve <eve@example.com>" ed25519 sign 1y >/dev/null 2>&1
gpgb --faked-system-time 20200101T000000 --passphrase '' \
	--quick-gen-key "Fred <fred@example.com>" ed25519 sign 1d >/dev/null 2>&1
gpgfp() { gpg --with-colons --fingerprint "$1" 2>/dev/null | awk -F: '/^fpr/ {print $10; exit}'; }
dana=$(gpgfp dana@example.com) eve=$(gpgfp eve@example.com) fred=$(gpgfp fred@example.com)
gpg --export -a "$dana" "$fred" >keyring.asc 2>/dev/null
gpg --export "$dana" >"$work/dana.gpg" 2>/dev/null
write_config "    openpgp: { keyring: keyring.asc }"
git add keyring.asc
pgp_commit() {
	git -c gpg.format=openpgp -c user.signingkey="$1" \
		-c gpg.program="$here/gpg-batch.sh" \
		commit -q -S --allow-empty -am "$2"
}
pgp_commit "$dana" "openpgp, dana"
run 2 "OpenPGP signed by a trusted key plans" "$rc_bin" plan
pgp_commit "$eve" "openpgp, eve"
run 1 "OpenPGP: an untrusted key is refused" "$rc_bin" plan
has "OpenPGP untrusted: its fingerprint" "$out" "signed by an unknown key $eve"
GPG_FAKED_TIME=20200101T120000 pgp_commit "$fred" "openpgp, fred (expired)"
run 1 "OpenPGP: an expired key is refused" "$rc_bin" plan
has "OpenPGP expired: the reason" "$out" "key expired on 2020-01-02"
# a key revoked after it signed: its revocation certificate imported
gpgb --passphrase '' --quick-gen-key "Gina <gina@example.com>" ed25519 sign 1y >/dev/null 2>&1
gina=$(gpgfp gina@example.com)
pgp_commit "$gina" "openpgp, gina"
sed 's/^:-----/-----/' "$GNUPGHOME/openpgp-revocs.d/$gina.rev" | gpgb --import >/dev/null 2>&1
gpg --export -a "$gina" >"$work/revoked.asc" 2>/dev/null
RECONCILE_OPENPGP_KEYRING=$work/revoked.asc run 1 \
	"OpenPGP: a revoked key is refused" "$rc_bin" plan
has "OpenPGP revoked: the reason" "$out" "key revoked ($gina)"
pgp_commit "$dana" "dana again"
dana_good=$(git rev-parse HEAD)
bad_commit=$(git cat-file commit HEAD | sed 's/^dana again$/dana evil/' |
	git hash-object -t commit -w --stdin)
run 1 "OpenPGP: a tampered commit is refused" "$rc_bin" plan --ref "$bad_commit"
has "OpenPGP tampered: bad signature" "$out" "commit ${bad_commit:0:7}: bad signature"
gpgb --yes --delete-secret-and-public-key "$eve" 2>/dev/null
RECONCILE_OPENPGP_KEYRING=$work/dana.gpg run 2 \
	"RECONCILE_OPENPGP_KEYRING (binary) plans" "$rc_bin" plan
# the user's own keyring is never read: dana is in GNUPGHOME, not in an
# empty keyring file
: >"$work/empty.gpg"
RECONCILE_OPENPGP_KEYRING=$work/empty.gpg run 1 \
	"OpenPGP: the user's keyring is not used" "$rc_bin" plan
has "OpenPGP: unknown with an empty keyring" "$out" "signed by an unknown key"
left=$(find /tmp -maxdepth 1 -name 'rcgpg.??????' -newer "$work/empty.gpg")
[ -z "$left" ] && ok "no private GNUPGHOME left behind" ||
	bad "a private GNUPGHOME was left behind" "$left"

finish
