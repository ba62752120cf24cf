#!/usr/bin/env bash
# secret.cli: the `reconcile secret` commands as a user sees them, checked
# with Debian's age: keygen's file (mode, format age reads), encrypt from
# standard input to an age key and an ssh-ed25519 key, decrypt only to a
# terminal unless --force, edit through $EDITOR (re-encrypted, the
# temporary file gone, also after SIGTERM), rekey after adding a recipient
# (only the armored lines change; a value that cannot be decrypted makes
# it write nothing). The canary value must never appear in any output.
# usage: run.sh PATH/TO/reconcile
set -u
rc_bin=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
for t in age age-keygen ssh-keygen script; do
	command -v "$t" >/dev/null || { echo "secret.cli: '$t' not found (Debian packages age, openssh-client, bsdutils)"; exit 1; }
done
tmp=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
cd "$tmp"
export HOME=$tmp/home XDG_CONFIG_HOME= XDG_RUNTIME_DIR=$tmp/run
unset RECONCILE_AGE_KEY RECONCILE_AGE_KEY_FILE RECONCILE_AGE_SSH_KEY
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
# every output of reconcile, searched for the values at the end
all=
keep() { all+=$out$'\n'; }
# the armored blocks of a YAML file, one file each: blk.1, blk.2...
blocks() {
	rm -f blk.*
	awk '/-----BEGIN AGE ENCRYPTED FILE-----/ { n++; on = 1 }
	     on { sub(/^[ \t]+/, ""); print > ("blk." n) }
	     /-----END AGE ENCRYPTED FILE-----/ { on = 0 }' "$1"
}
canary="s3cr3t-canary-$RANDOM$RANDOM"
canary2="pr0d-canary-$RANDOM$RANDOM"

# ---- keygen
run 0 "keygen" "$rc_bin" secret keygen
keep
keys=$HOME/.config/reconcile/age/keys.txt
alice=$(printf '%s\n' "$out" | grep '^age1' | head -1)
[ "$(stat -c %a "$keys")" = 600 ] && ok "keygen: mode 0600" || bad "keygen: mode 0600" "$(stat -c %a "$keys")"
[ "$(stat -c %a "$HOME/.config/reconcile/age")" = 700 ] && ok "keygen: directory 0700" || bad "keygen: directory 0700"
sed -n 1p "$keys" | grep -Eq '^# created: [0-9]{4}-[0-9]{2}-[0-9]{2}T' && ok "keygen: created line" || bad "keygen: created line" "$(cat "$keys")"
[ "$(sed -n 2p "$keys")" = "# public key: $alice" ] && ok "keygen: public key line" || bad "keygen: public key line" "$(sed -n 2p "$keys")"
[ "$(age-keygen -y "$keys")" = "$alice" ] && ok "keygen: age-keygen -y gives the printed recipient" || bad "keygen: age-keygen -y" "$(age-keygen -y "$keys" 2>&1)"
printf 'x' | age -r "$alice" -o k.age && [ "$(age -d -i "$keys" k.age)" = x ] &&
	ok "keygen: age -d -i reads the key file" || bad "keygen: age -d -i reads the key file"
cp "$keys" keys.before
run 1 "keygen refuses an existing file" "$rc_bin" secret keygen
keep
has "keygen: refusal says why" "$out" "already exists"
cmp -s "$keys" keys.before && ok "keygen: existing file untouched" || bad "keygen: existing file untouched"
run 0 "keygen -o" "$rc_bin" secret keygen -o "$tmp/other/dir/k.txt"
keep
[ "$(stat -c %a other/dir/k.txt)" = 600 ] && ok "keygen -o: mode 0600" || bad "keygen -o: mode 0600"

# ---- a configuration: alice (age) and an ssh-ed25519 key
ssh-keygen -q -t ed25519 -N '' -C bob@test -f bob
age-keygen -o carol.txt 2>/dev/null
carol=$(age-keygen -y carol.txt)
age-keygen -o mallory.txt 2>/dev/null
mallory=$(age-keygen -y mallory.txt)
mkdir cfg cfg/envs
cat >cfg/reconcile.yaml <<EOF
version: 1
project: sc
# who can decrypt
recipients:
  - $alice   # alice
  - $(cat bob.pub)
environments:
  dev:
    target: { driver: local }
    services:
      web:
        command: [sleep, "1000"]
  prod:
    file: envs/prod.yaml
EOF
cat >cfg/envs/prod.yaml <<EOF
# production
target: { driver: local }
services:
  web:
    command: [sleep, "1000"]
secrets:
  OTHER: {env: OTHER}
EOF

# ---- encrypt
out=$(printf '%s\n' "$canary" | "$rc_bin" secret encrypt -e dev DB cfg 2>err)
st=$?
[ $st -eq 0 ] && ok "encrypt from standard input" || bad "encrypt from standard input" "exit $st" "$(cat err)"
entry=$out
all+=$out$(cat err)
has "encrypt: the YAML entry" "$out" $'DB:\n  encrypted: |\n    -----BEGIN AGE ENCRYPTED FILE-----'
printf '%s\n' "$out" >entry.yaml
blocks entry.yaml
[ "$(age -d -i "$keys" blk.1)" = "$canary" ] && ok "encrypt: age -d -i with the age key (trailing newline stripped)" || bad "encrypt: age -d -i with the age key"
[ "$(age -d -i bob blk.1)" = "$canary" ] && ok "encrypt: age -d -i with the ssh-ed25519 key" || bad "encrypt: age -d -i with the ssh key"
age -d -i bob blk.1 | od -c | grep -q '\\n' && bad "encrypt: one final newline stripped" || ok "encrypt: one final newline stripped"
# the value is never an argument: a second word is the directory, and
# what is there is not echoed
# on a terminal (script(1) gives it one): asked for without echo, one line
typed="typed-canary-$RANDOM$RANDOM"
(sleep 1; printf '%s\n' "$typed") | script -qc "'$rc_bin' secret encrypt -e dev TT cfg" /dev/null >tty.out 2>&1
tr -d '\r' <tty.out >tty.txt
has "encrypt on a terminal: the prompt" "$(cat tty.txt)" "Value of TT (not shown): "
hasnt "encrypt on a terminal: the value is not echoed" "$(cat tty.txt)" "$typed"
blocks tty.txt
[ "$(age -d -i bob blk.1)" = "$typed" ] && ok "encrypt on a terminal: the line, without its newline" || bad "encrypt on a terminal: the value" "$(cat tty.txt)"
run 129 "encrypt: no value on the command line" "$rc_bin" secret encrypt DB "$canary"
keep
has "encrypt: says where the value comes from" "$out" "read from standard input"
run 129 "encrypt: three words" "$rc_bin" secret encrypt DB cfg "$canary"
keep
out=$(: | "$rc_bin" secret encrypt DB cfg 2>&1)
st=$?
keep
[ $st -eq 1 ] && ok "encrypt: empty value refused" || bad "encrypt: empty value refused" "exit $st"
has "encrypt: empty value message" "$out" "is empty"
printf 'v' | "$rc_bin" secret encrypt -e nope DB cfg >/dev/null 2>err
[ $? -eq 1 ] && grep -q "no environment 'nope'" err && ok "encrypt: unknown environment" || bad "encrypt: unknown environment" "$(cat err)"
mkdir norec && printf 'version: 1\nproject: x\nenvironments:\n  a:\n    target: { driver: local }\n' >norec/reconcile.yaml
printf 'v' | "$rc_bin" secret encrypt DB norec >/dev/null 2>err
[ $? -eq 1 ] && grep -q "add 'recipients:'" err && ok "encrypt: no recipients says to add them" || bad "encrypt: no recipients" "$(cat err)"

# a wrong recipient stops the commands; other problems do not
mkdir badrec && printf 'version: 1\nproject: x\nrecipients:\n  - age1notakey\nenvironments:\n  a:\n    target: { driver: local }\n    no_such_key: 1\n' >badrec/reconcile.yaml
printf 'v' | "$rc_bin" secret encrypt DB badrec >/dev/null 2>err
[ $? -eq 1 ] && grep -q "reconcile.yaml:4:5: error: recipients in reconcile.yaml: malformed age recipient" err && ok "encrypt: a wrong recipient is an error, with its place" || bad "encrypt: wrong recipient" "$(cat err)"
sed -i "s|age1notakey|$carol|" badrec/reconcile.yaml
printf 'v' | "$rc_bin" secret encrypt DB badrec >/dev/null 2>err
[ $? -eq 0 ] && ok "encrypt: another problem of the configuration does not stop it" || bad "encrypt: other problems" "$(cat err)"

# place the values with --write: DB inline in reconcile.yaml (dev has no
# secrets: yet), API in the prod file (after OTHER); nothing else moves
cp cfg/reconcile.yaml r.before
printf '%s\n' "$canary" | "$rc_bin" secret encrypt -e dev --write DB cfg >out.txt 2>&1
st=$?
out=$(cat out.txt)
keep
[ $st -eq 0 ] && ok "encrypt --write: exit 0" || bad "encrypt --write: exit 0" "$out"
has "encrypt --write: says where" "$out" "wrote DB to reconcile.yaml (environment 'dev')"
[ -z "$(diff r.before cfg/reconcile.yaml | grep '^<')" ] && ok "encrypt --write: only lines added" || bad "encrypt --write: only lines added" "$(diff r.before cfg/reconcile.yaml)"
has "encrypt --write: under the environment's secrets" "$(cat cfg/reconcile.yaml)" $'        command: [sleep, "1000"]\n    secrets:\n      DB:\n        encrypted: |\n          -----BEGIN AGE ENCRYPTED FILE-----'
has "encrypt --write: the next environment follows" "$(cat cfg/reconcile.yaml)" $'-----END AGE ENCRYPTED FILE-----\n  prod:\n    file: envs/prod.yaml'
# written again: replaced, not added
printf '%s\n' "$canary" | "$rc_bin" secret encrypt -e dev --write DB cfg >/dev/null 2>&1
[ "$(grep -c 'DB:' cfg/reconcile.yaml)" = 1 ] && ok "encrypt --write: an existing entry is replaced" || bad "encrypt --write: replaced" "$(cat cfg/reconcile.yaml)"
printf '  # the API token\n' >>cfg/envs/prod.yaml
cp cfg/envs/prod.yaml p.before
out=$(printf '%s' "$canary2" | "$rc_bin" secret encrypt -e prod -w API cfg 2>&1)
keep
has "encrypt --write: the environment's own file" "$out" "wrote API to envs/prod.yaml (environment 'prod')"
[ -z "$(diff p.before cfg/envs/prod.yaml | grep '^<')" ] && ok "encrypt --write: env file, only lines added" || bad "encrypt --write: env file" "$(diff p.before cfg/envs/prod.yaml)"
printf '  TAIL: {env: TAIL} # after\n' >>cfg/envs/prod.yaml
run 129 "encrypt --write needs -e" "$rc_bin" secret encrypt --write DB cfg
# a {file:} secret that is a binary age file
printf 'file-canary-%s' "$RANDOM" >plainfile
age -r "$alice" -o cfg/cert.age plainfile
printf '  CERT: {file: cert.age}\n' >>cfg/envs/prod.yaml

# ---- decrypt
out=$("$rc_bin" secret decrypt -e dev DB cfg 2>&1 | cat)
keep
hasnt "decrypt: not to a pipe" "$out" "$canary"
has "decrypt: says why" "$out" "not a terminal"
"$rc_bin" secret decrypt -e dev DB cfg >/dev/null 2>&1
[ $? -eq 1 ] && ok "decrypt: pipe refused with exit 1" || bad "decrypt: pipe refused with exit 1"
[ "$("$rc_bin" secret decrypt --force -e dev DB cfg)" = "$canary" ] && ok "decrypt --force: the value" || bad "decrypt --force: the value"
[ "$("$rc_bin" secret decrypt --force API cfg)" = "$canary2" ] && ok "decrypt --force: a value of an environment file" || bad "decrypt --force: environment file"
[ "$("$rc_bin" secret decrypt --force -e prod CERT cfg)" = "$(cat plainfile)" ] && ok "decrypt --force: a {file:} age file" || bad "decrypt --force: {file:} age file"
blocks cfg/reconcile.yaml
[ "$(HOME=/nonexistent RECONCILE_AGE_SSH_KEY=$tmp/bob "$rc_bin" secret decrypt --force blk.1)" = "$canary" ] &&
	ok "decrypt FILE with the ssh identity" || bad "decrypt FILE with the ssh identity"
run 1 "decrypt: unknown name" "$rc_bin" secret decrypt --force NOPE cfg
keep
has "decrypt: unknown name message" "$out" "no encrypted value 'NOPE'"

# ---- edit
cat >editor.sh <<'EOF'
#!/bin/sh
# editor.sh NEW FILE: records where the file is and how it is protected,
# then writes NEW into it
printf '%s %s %s\n' "$2" "$(stat -c %a "$2")" "$(stat -c %a "$(dirname "$2")")" >"$EDIT_LOG"
cat "$2" >"$EDIT_LOG.old"
printf '%s' "$1" >"$2"
EOF
chmod +x editor.sh
export EDIT_LOG=$tmp/edit.log
newval="edited-canary-$RANDOM$RANDOM"
cp cfg/cert.age cert.before
out=$(cd cfg && EDITOR="$tmp/editor.sh $newval" "$rc_bin" secret edit cert.age 2>&1)
st=$?
keep
[ $st -eq 0 ] && ok "edit: exit 0" || bad "edit: exit 0" "exit $st" "$out"
read -r tpath tmode dmode <edit.log
[ "$tmode" = 600 ] && ok "edit: temporary file mode 0600" || bad "edit: temporary file mode 0600" "$tmode"
[ "$dmode" = 700 ] && ok "edit: private directory mode 0700" || bad "edit: private directory mode 0700" "$dmode"
case $tpath in "$XDG_RUNTIME_DIR"/*) ok "edit: under XDG_RUNTIME_DIR" ;; *) bad "edit: under XDG_RUNTIME_DIR" "$tpath" ;; esac
[ ! -e "$tpath" ] && [ ! -e "$(dirname "$tpath")" ] && ok "edit: temporary file and directory gone" || bad "edit: temporary file gone" "$tpath"
[ "$(cat edit.log.old)" = "$(cat plainfile)" ] && ok "edit: the editor saw the old value" || bad "edit: the editor saw the old value"
[ "$(age -d -i "$keys" cfg/cert.age)" = "$newval" ] && ok "edit: the new value (age -d -i, age key)" || bad "edit: the new value"
[ "$(age -d -i bob cfg/cert.age)" = "$newval" ] && ok "edit: re-encrypted to the environment's recipients (ssh key too)" || bad "edit: the environment's recipients"
head -c 21 cfg/cert.age | grep -q '^age-encryption.org/v1' && ok "edit: binary stays binary" || bad "edit: binary stays binary"
# an armored file, -r recipients, unchanged content
printf 'armored-%s' "$RANDOM" | age -a -r "$alice" -o arm.age
cp arm.age arm.before
EDITOR=true "$rc_bin" secret edit -r "$carol" arm.age >/dev/null 2>err
[ $? -eq 0 ] && cmp -s arm.age arm.before && ok "edit: unchanged content leaves the file untouched" || bad "edit: unchanged" "$(cat err)"
has "edit: says unchanged" "$(cat err)" "unchanged"
EDITOR="$tmp/editor.sh armored-new" "$rc_bin" secret edit -r "$carol" arm.age >/dev/null 2>&1
head -1 arm.age | grep -q -- '-----BEGIN AGE ENCRYPTED FILE-----' && ok "edit: armored stays armored" || bad "edit: armored stays armored"
[ "$(age -d -i carol.txt arm.age)" = armored-new ] && ok "edit -r: encrypted to the given recipient" || bad "edit -r"
age -d -i "$keys" arm.age >/dev/null 2>&1 && bad "edit -r: only the given recipients" || ok "edit -r: only the given recipients"
# a failing editor and a terminated edit leave nothing behind
cp arm.age arm.before
# (arm.age is now carol's alone)
export RECONCILE_AGE_KEY_FILE=$tmp/carol.txt
EDITOR=false "$rc_bin" secret edit -r "$carol" arm.age >/dev/null 2>err
[ $? -eq 1 ] && cmp -s arm.age arm.before && ok "edit: a failing editor changes nothing" || bad "edit: failing editor" "$(cat err)"
has "edit: says the editor failed" "$(cat err)" "the editor 'false' failed (exit status 1)"
cat >killer.sh <<'EOF'
#!/bin/sh
printf '%s\n' "$1" >"$EDIT_LOG"
kill -TERM "$PPID"
sleep 1
EOF
chmod +x killer.sh
EDITOR="$tmp/killer.sh" "$rc_bin" secret edit -r "$carol" arm.age >/dev/null 2>&1
st=$?
read -r tpath <edit.log
[ $st -eq 143 ] && ok "edit: SIGTERM ends it" || bad "edit: SIGTERM ends it" "exit $st"
[ ! -e "$tpath" ] && [ ! -e "$(dirname "$tpath")" ] && ok "edit: SIGTERM removes the temporary file" || bad "edit: SIGTERM removes the temporary file" "$tpath"
cmp -s arm.age arm.before && ok "edit: SIGTERM changes nothing" || bad "edit: SIGTERM changes nothing"
[ -z "$(ls -A "$XDG_RUNTIME_DIR")" ] && ok "edit: nothing left in XDG_RUNTIME_DIR" || bad "edit: leftovers" "$(ls -A "$XDG_RUNTIME_DIR")"
unset RECONCILE_AGE_KEY_FILE

# ---- rekey: add carol
cp -r cfg before
sed -i "s|^recipients:|recipients:\n  - $carol # carol|" cfg/reconcile.yaml
cp cfg/reconcile.yaml before.added.yaml
run 0 "rekey" "$rc_bin" secret rekey cfg
keep
has "rekey: what it did" "$out" "rekeyed 3 values in 3 files"
blocks cfg/reconcile.yaml
[ "$(age -d -i carol.txt blk.1)" = "$canary" ] && ok "rekey: reconcile.yaml's value opens with the new key" || bad "rekey: new key, reconcile.yaml"
[ "$(age -d -i bob blk.1)" = "$canary" ] && ok "rekey: and with the old ones" || bad "rekey: old keys"
blocks cfg/envs/prod.yaml
[ "$(age -d -i carol.txt blk.1)" = "$canary2" ] && ok "rekey: the environment file's value opens with the new key" || bad "rekey: new key, env file"
[ "$(age -d -i carol.txt cfg/cert.age)" = "$newval" ] && ok "rekey: the {file:} age file opens with the new key" || bad "rekey: {file:}"
head -c 21 cfg/cert.age | grep -q '^age-encryption.org/v1' && ok "rekey: the binary file stays binary" || bad "rekey: binary stays binary"
# only the armored lines changed: comments, order and indentation kept
only_armor() {
	diff "$1" "$2" | grep '^[<>]' | grep -Ev '^[<>] +[A-Za-z0-9+/=]+$' || true
}
[ -z "$(only_armor before.added.yaml cfg/reconcile.yaml)" ] && ok "rekey: reconcile.yaml: only armored lines changed" || bad "rekey: reconcile.yaml diff" "$(only_armor before.added.yaml cfg/reconcile.yaml)"
[ -z "$(only_armor before/envs/prod.yaml cfg/envs/prod.yaml)" ] && ok "rekey: envs/prod.yaml: only armored lines changed" || bad "rekey: prod diff" "$(only_armor before/envs/prod.yaml cfg/envs/prod.yaml)"
[ "$(grep -v '^ *[A-Za-z0-9+/=]*$' before/envs/prod.yaml)" = "$(grep -v '^ *[A-Za-z0-9+/=]*$' cfg/envs/prod.yaml)" ] &&
	ok "rekey: every other line identical" || bad "rekey: every other line identical"
! diff -q before/envs/prod.yaml cfg/envs/prod.yaml >/dev/null && ok "rekey: the value did change" || bad "rekey: the value did change"

# ---- a value nobody here can decrypt: rekey writes nothing
printf 'theirs' | age -a -r "$mallory" >m.age
{ printf '  LOST:\n    encrypted: |\n'; sed 's/^/      /' m.age; } >>cfg/envs/prod.yaml
cp -r cfg before2
run 1 "rekey: a value that cannot be decrypted fails" "$rc_bin" secret rekey cfg
keep
has "rekey: names the value" "$out" "envs/prod.yaml:"
has "rekey: names the key path" "$out" "secrets.LOST"
has "rekey: no identity matched" "$out" "no identity matched"
has "rekey: nothing written" "$out" "no file was changed"
diff -r before2 cfg >/dev/null && ok "rekey: all or nothing" || bad "rekey: all or nothing" "$(diff -r before2 cfg | head)"

# ---- help and usage
run 0 "secret --help" "$rc_bin" secret --help
has "help: the commands" "$out" "reconcile secret rekey"
run 0 "help secret" "$rc_bin" help secret
run 129 "secret: unknown" "$rc_bin" secret frobnicate

# ---- no output ever held a value
for v in "$canary" "$canary2" "$newval" "$typed"; do
	hasnt "no output holds a value" "$all" "$v"
done
finish
