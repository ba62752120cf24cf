#!/usr/bin/env bash
# age.interop: schema/age against Debian's age (package `age`) and
# ssh-keygen, both ways. Files from `age -r`, `age -R` (ssh-ed25519,
# ssh-rsa) and `age -a` decrypt with rc_age_tool; files rc_age_tool
# encrypts (binary and armored; X25519, ssh-ed25519, ssh-rsa, several at
# once) decrypt with `age -d -i`. Identities from age-keygen, ssh-keygen
# and rc_age_tool keygen; the identity environment variables; the key
# file mode warning; the no-match message.
# usage: interop.sh PATH/TO/rc_age_tool
set -euo pipefail
tool=$1
for t in age age-keygen ssh-keygen cmp; do
	command -v "$t" >/dev/null || { echo "interop: '$t' not found (Debian packages age, openssh-client)"; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
passed=0
ok() { passed=$((passed + 1)); }
die() { echo "FAIL: $*"; exit 1; }

umask 077
age-keygen -o k.txt 2>/dev/null
rec=$(age-keygen -y k.txt)
ssh-keygen -q -t ed25519 -N '' -C ed@test -f ed
ssh-keygen -q -t rsa -b 2048 -N '' -C rsa@test -f rsa
"$tool" keygen > ours.txt
ours_rec=$(sed -n 2p ours.txt)
sed -n 1p ours.txt > ours.key

# payloads: empty, small, one full chunk, several chunks with a short end
: > p0
printf 'hunter2-canary\n' > p1
head -c 65536 /dev/urandom > p2
head -c 200000 /dev/urandom > p3

for p in p0 p1 p2 p3; do
	# age -> reconcile
	age -r "$rec" -o "$p.x.age" "$p"
	"$tool" decrypt -i k.txt < "$p.x.age" > out && cmp -s out "$p" || die "age -r -> reconcile ($p)"; ok
	age -a -r "$rec" -o "$p.xa.age" "$p"
	"$tool" decrypt -i k.txt < "$p.xa.age" > out && cmp -s out "$p" || die "age -a -r -> reconcile ($p)"; ok
	age -R ed.pub -o "$p.ed.age" "$p"
	"$tool" decrypt -i ed < "$p.ed.age" > out && cmp -s out "$p" || die "age -R ssh-ed25519 -> reconcile ($p)"; ok
	age -R rsa.pub -o "$p.rsa.age" "$p"
	"$tool" decrypt -i rsa < "$p.rsa.age" > out && cmp -s out "$p" || die "age -R ssh-rsa -> reconcile ($p)"; ok
	age -r "$ours_rec" -o "$p.ours.age" "$p"
	"$tool" decrypt -i ours.key < "$p.ours.age" > out && cmp -s out "$p" || die "age -r (keygen of reconcile) -> reconcile ($p)"; ok

	# reconcile -> age
	"$tool" encrypt -r "$rec" < "$p" > "$p.rx.age"
	age -d -i k.txt "$p.rx.age" > out && cmp -s out "$p" || die "reconcile X25519 -> age -d ($p)"; ok
	"$tool" encrypt -a -r "$rec" < "$p" > "$p.rxa.age"
	head -1 "$p.rxa.age" | grep -qx -- '-----BEGIN AGE ENCRYPTED FILE-----' || die "armored output ($p)"
	age -d -i k.txt "$p.rxa.age" > out && cmp -s out "$p" || die "reconcile armored -> age -d ($p)"; ok
	"$tool" encrypt -R ed.pub < "$p" > "$p.red.age"
	age -d -i ed "$p.red.age" > out && cmp -s out "$p" || die "reconcile ssh-ed25519 -> age -d ($p)"; ok
	"$tool" encrypt -a -R rsa.pub < "$p" > "$p.rrsa.age"
	age -d -i rsa "$p.rrsa.age" > out && cmp -s out "$p" || die "reconcile ssh-rsa -> age -d ($p)"; ok
	"$tool" encrypt -r "$ours_rec" < "$p" > "$p.rours.age"
	age -d -i ours.key "$p.rours.age" > out && cmp -s out "$p" || die "reconcile keygen identity -> age -d ($p)"; ok
done

# one file to three recipients: each identity alone opens it, both ways
"$tool" encrypt -r "$rec" -R ed.pub -R rsa.pub < p1 > multi.age
for id in k.txt ed rsa; do
	age -d -i "$id" multi.age > out && cmp -s out p1 || die "reconcile multi -> age -d -i $id"; ok
done
age -r "$rec" -R ed.pub -R rsa.pub -o amulti.age p1
for id in k.txt ed rsa; do
	"$tool" decrypt -i "$id" < amulti.age > out && cmp -s out p1 || die "age multi -> reconcile -i $id"; ok
done
[ "$("$tool" inspect < amulti.age)" = "binary 3 recipients (X25519, ssh-ed25519, ssh-rsa)" ] || die "inspect: $("$tool" inspect < amulti.age)"; ok
[ "$("$tool" inspect < p1.xa.age)" = "armored 1 recipient (X25519)" ] || die "inspect armored"; ok

# where identities come from
key=$(grep '^AGE-SECRET-KEY' k.txt)
RECONCILE_AGE_KEY=$key "$tool" decrypt < p1.x.age > out && cmp -s out p1 || die "RECONCILE_AGE_KEY"; ok
RECONCILE_AGE_KEY_FILE=k.txt "$tool" decrypt < p1.x.age > out && cmp -s out p1 || die "RECONCILE_AGE_KEY_FILE"; ok
mkdir -p home/.config/reconcile/age
{ echo '# created: by a test'; echo; cat ours.key; echo; cat k.txt; } > home/.config/reconcile/age/keys.txt
chmod 600 home/.config/reconcile/age/keys.txt
HOME=$tmp/home "$tool" decrypt < p1.x.age > out 2>err && cmp -s out p1 || die "~/.config/reconcile/age/keys.txt"; ok
[ ! -s err ] || die "warning for a 0600 key file: $(cat err)"; ok
RECONCILE_AGE_SSH_KEY=ed "$tool" decrypt < p1.ed.age > out && cmp -s out p1 || die "RECONCILE_AGE_SSH_KEY (ed25519)"; ok
RECONCILE_AGE_SSH_KEY=rsa "$tool" decrypt < p1.rsa.age > out && cmp -s out p1 || die "RECONCILE_AGE_SSH_KEY (rsa)"; ok
RECONCILE_AGE_KEY=$key RECONCILE_AGE_SSH_KEY=ed "$tool" decrypt < p1.ed.age > out && cmp -s out p1 || die "RECONCILE_AGE_KEY and RECONCILE_AGE_SSH_KEY"; ok

# a key file others can read: used, with a warning naming it and the fix
chmod 644 k.txt
RECONCILE_AGE_KEY_FILE=k.txt "$tool" decrypt < p1.x.age > out 2>err && cmp -s out p1 || die "0644 key file"
grep -q "k.txt" err && grep -q "chmod 600" err || die "no mode warning: $(cat err)"; ok
grep -q "AGE-SECRET-KEY" err && die "the warning shows the key"; ok
chmod 600 k.txt

# the wrong identity: no match, said with what the file is encrypted to
if "$tool" decrypt -i ours.key < amulti.age > out 2>err; then die "wrong identity decrypted"; fi
grep -q "no match" err || die "no match kind: $(cat err)"
grep -q "no identity matched: the file is encrypted to 3 recipients (X25519, ssh-ed25519, ssh-rsa)" err || die "no match message: $(cat err)"; ok
[ ! -s out ] || die "output after a failure"; ok
# an altered file fails; nothing of the key reaches the error
cp p3.rx.age bad.age
printf 'X' | dd of=bad.age bs=1 seek=$(( $(stat -c %s bad.age) - 10 )) conv=notrunc 2>/dev/null
if "$tool" decrypt -i k.txt < bad.age > out 2>err; then die "altered payload decrypted"; fi
grep -q "payload failure" err || die "altered payload: $(cat err)"; ok
grep -q "AGE-SECRET-KEY" err && die "the error shows the key"; ok
if age -d -i k.txt bad.age > /dev/null 2>&1; then die "age decrypted the altered file"; fi; ok

echo "interop: $passed checks passed"
