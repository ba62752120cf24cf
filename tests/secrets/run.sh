#!/usr/bin/env bash
# Encrypted secrets end to end on the local driver, with values encrypted
# by Debian's `age` and keys from `age-keygen` and `ssh-keygen`:
# {encrypted:} values armored by `age -a` to an X25519 recipient and an
# ssh-ed25519 one, a binary age file as {file:}, and a plain file beside
# them. validate; plan and apply with RECONCILE_AGE_KEY_FILE (the service
# sees the decrypted values, the plan only "(sensitive)" and hashes);
# without a key and with a wrong key (a clear error, nothing applied); a
# key file others may read (a warning); the ssh key alone; the same value
# encrypted again (no change); a changed value (an update); recipients
# that no longer match (a warning naming the value and rekey).
#   run.sh RECONCILE_BINARY
set -u
rc_bin=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
export NO_COLOR=1
. "$here/../lib.sh"
work=$(mktemp -d /tmp/rc-secrets-XXXXXX)
cfg=$work/cfg
export RECONCILE_STATE_DIR=$work/state
# no key of the machine's user may take part
export HOME=$work/home XDG_CONFIG_HOME=$work/xdg
unset RECONCILE_AGE_KEY RECONCILE_AGE_KEY_FILE RECONCILE_AGE_SSH_KEY
project=sec$$
cleanup() {
	RECONCILE_AGE_KEY_FILE=$work/key.txt "$rc_bin" destroy "$cfg" --auto-approve >/dev/null 2>&1
	for p in $(owned_by "$project/"); do kill -9 "$p" 2>/dev/null; done
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$cfg" "$HOME" "$XDG_CONFIG_HOME"

for t in age age-keygen ssh-keygen; do
	command -v "$t" >/dev/null || { echo "FAIL $t is not installed (Debian packages age, openssh-client)"; exit 1; }
done
age-keygen -o "$work/key.txt" 2>/dev/null
age-keygen -o "$work/other.txt" 2>/dev/null
chmod 600 "$work/key.txt" "$work/other.txt"
ssh-keygen -q -t ed25519 -N '' -C enc-test -f "$work/id" >/dev/null
x25519=$(age-keygen -y "$work/key.txt")
sshpub=$(cat "$work/id.pub")

# the values: distinct, never written into the configuration
va="alpha-$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')"
vb="bravo-$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')"
vc="charlie-$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')"
# armored, to both recipients (as `reconcile secret encrypt` would)
enc_a() { printf '%s\n' "$1" | age -a -r "$x25519" -R "$work/id.pub"; }
indent() { sed 's/^/          /'; }
write_config() { # A-armored-text
	cat >"$cfg/reconcile.yaml" <<YAML
version: 1
project: $project
recipients:
  - $x25519
  - $sshpub
environments:
  dev:
    target: { driver: local }
    services:
      app:
        command: [sh, -c, 'printf "%s|%s|%s" "\$A" "\$B" "\$C" > "$work/seen.tmp" && mv "$work/seen.tmp" "$work/seen" && exec sleep 600']
    secrets:
      A:
        encrypted: |
$(printf '%s\n' "$1" | indent)
      B: { file: b.age }
      C: { file: c.txt }
YAML
}
printf '%s' "$vb" | age -r "$x25519" -R "$work/id.pub" >"$cfg/b.age" # binary
printf '%s\n' "$vc" >"$cfg/c.txt"
write_config "$(enc_a "$va")"
seen() { for _ in $(seq 1 50); do [ -s "$work/seen" ] && break; sleep 0.1; done; cat "$work/seen" 2>/dev/null; }
leaks() { # NAME TEXT: none of the values in TEXT
	case "$2" in *"$va"* | *"$vb"* | *"$vc"*) bad "$1" "a secret value was printed" ;; *) ok "$1" ;; esac
}

# --- validate needs no key, and warns of nothing here
run 0 "validate without a key" "$rc_bin" validate "$cfg" && hasnt "no warning" "$out" "warning"
leaks "validate prints no value" "$out"
run 0 "show" "$rc_bin" show "$cfg" && has "show keeps the armored value" "$out" "BEGIN AGE ENCRYPTED FILE"
leaks "show prints no value" "$out"

# --- no key: a clear error, nothing applied
run 1 "plan without a key fails" "$rc_bin" plan "$cfg" && has "naming the secret and its place" "$out" "secret 'A' ($cfg/reconcile.yaml:13:7)"
has "saying no key was found" "$out" "no age key was found"
has "saying what it is encrypted to" "$out" "2 recipients (X25519, ssh-ed25519)"
has "saying where keys were looked for" "$out" "RECONCILE_AGE_KEY_FILE (not set)"
has "naming the default key file" "$out" "\$XDG_CONFIG_HOME/reconcile/age/keys.txt"
run 1 "apply without a key fails" "$rc_bin" apply "$cfg" --auto-approve
leaks "the failures print no value" "$out"
[ -z "$(owned_by "$project/")" ] && [ ! -e "$work/seen" ] && ok "nothing was started" || bad "nothing was started" "$(owned_by "$project/")"

# --- a wrong key
export RECONCILE_AGE_KEY_FILE=$work/other.txt
run 1 "plan with a wrong key fails" "$rc_bin" plan "$cfg" && has "no identity matched" "$out" "no identity matched"
has "naming the key file used" "$out" "RECONCILE_AGE_KEY_FILE ('$work/other.txt')"
[ -z "$(owned_by "$project/")" ] && ok "still nothing started" || bad "still nothing started"

# --- the right key: plan, apply
export RECONCILE_AGE_KEY_FILE=$work/key.txt
run 2 "plan with the key" "$rc_bin" plan "$cfg" && has "plan shows the service" "$out" "+ service app"
has "plan shows the secrets as sensitive" "$out" "(sensitive)"
leaks "plan prints no value" "$out"
hasnt "no key-file warning for mode 600" "$out" "can be read by group or others"
run 2 "plan as JSON" "$rc_bin" plan "$cfg" --output json && has "the reference of the inline value" "$out" '"ref": "encrypted:A"'
has "the reference of the age file" "$out" '"ref": "file:b.age"'
has "the keyed hash" "$out" '"$secret": "hmac-sha256:'
leaks "the JSON plan holds no value" "$out"
run 2 "a saved plan" "$rc_bin" plan "$cfg" -o "$work/saved.json"
leaks "the saved plan holds no value" "$(cat "$work/saved.json")"
run 0 "apply the saved plan" "$rc_bin" apply "$work/saved.json"
leaks "apply prints no value" "$out"
got=$(seen)
[ "$got" = "$va|$vb|$vc" ] && ok "the service sees the decrypted values" || bad "the service sees the decrypted values" "got ${#got} bytes, not the three values"
leaks "the state directory holds no value" "$(cat "$RECONCILE_STATE_DIR"/runs/* "$RECONCILE_STATE_DIR"/*.json 2>/dev/null)"
run 0 "plan after apply" "$rc_bin" plan "$cfg" && has "no changes" "$out" "No changes"

# --- a key file others may read: a warning, and it still works
chmod 644 "$work/key.txt"
run 0 "plan with a loose key file" "$rc_bin" plan "$cfg" && has "warns of the key file's mode" "$out" "can be read by group or others"
has "saying how to fix it" "$out" "chmod 600"
chmod 600 "$work/key.txt"

# --- the ssh key alone opens the same values
run 0 "plan with the ssh key only" env -u RECONCILE_AGE_KEY_FILE RECONCILE_AGE_SSH_KEY="$work/id" "$rc_bin" plan "$cfg" && has "no changes with the ssh key" "$out" "No changes"

# --- the same value encrypted again: new ciphertext, no change
old_b=$(sha256sum <"$cfg/b.age")
write_config "$(enc_a "$va")"
printf '%s' "$vb" | age -r "$x25519" -R "$work/id.pub" >"$cfg/b.age"
[ "$(sha256sum <"$cfg/b.age")" != "$old_b" ] && ok "the ciphertext changed" || bad "the ciphertext changed"
run 0 "the same values encrypted again plan no change" "$rc_bin" plan "$cfg" && has "no changes after re-encryption" "$out" "No changes"

# --- a changed value: an update
va2="alpha2-$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')"
write_config "$(enc_a "$va2")"
run 2 "a changed value plans an update" "$rc_bin" plan "$cfg" && has "shown as a changed secret" "$out" "(sensitive) -> (sensitive, changed)"
leaks "the update prints no value" "$out"
case $out in *"$va2"*) bad "the new value is not printed" ;; *) ok "the new value is not printed" ;; esac
rm -f "$work/seen"
run 0 "apply the change" "$rc_bin" apply "$cfg" --auto-approve
got=$(seen)
[ "$got" = "$va2|$vb|$vc" ] && ok "the service sees the new value" || bad "the service sees the new value" "got ${#got} bytes"

# --- recipients that no longer match: validate warns, and still passes
other=$(age-keygen -y "$work/other.txt")
sed -i "s|^  - $x25519\$|  - $x25519\n  - $other|" "$cfg/reconcile.yaml"
run 0 "validate with a recipient added" "$rc_bin" validate "$cfg" && has "warns of A" "$out" "secret 'A' is encrypted to 2 recipients (X25519, ssh-ed25519), but environment 'dev' has 3 recipients (X25519, X25519, ssh-ed25519)"
has "warns of B" "$out" "secret 'B' is encrypted to 2 recipients"
has "names rekey" "$out" "reconcile secret rekey"
hasnt "a plain file is not an encrypted value" "$out" "secret 'C'"

# --- a corrupted age file is an error at load, with its place
printf 'age-encryption.org/v1\n-> X25519 nonsense\n' >"$cfg/b.age"
run 1 "validate a malformed age file" "$rc_bin" validate "$cfg" && has "an error at the file's reference" "$out" "reconcile.yaml:25:18: error"
has "saying it is not a well-formed age file" "$out" "secret 'B' is not a well-formed age file"

finish
