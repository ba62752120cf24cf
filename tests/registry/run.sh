#!/usr/bin/env bash
# The registry client (drivers/oci.c) against two real registries: an
# anonymous source and a token-auth stand-in for registry.heroku.com
# (registries.sh). Images are built and pushed by push_image.py; the
# client is driven through rc_oci_tool.
#
#   run.sh RC_OCI_TOOL
set -uo pipefail
tool=${1:?rc_oci_tool}
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/rc-oci.XXXXXX")
failures=0
cleanup() {
	bash "$here/registries.sh" stop "$dir"
	rm -rf "$dir"
}
trap cleanup EXIT

bash "$here/registries.sh" start "$dir"
st=$?
[ $st -eq 0 ] || exit $st
. "$dir/env"

src=127.0.0.1:$SRC_PORT
heroku=registry.heroku.com
export RC_OCI_PASSWORD=$PASSWORD
# no Docker config file: only the credentials given
auth=(--auth-file "$dir/no-config.json")
to_heroku=("${auth[@]}" --endpoint "$heroku=http://127.0.0.1:$DST_PORT"
	--user _ --cred-registry "$heroku")

ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; failures=$((failures + 1)); }
# value KEY FILE
value() { sed -n "s/^$1=//p" "$2" | head -1; }
expect() { # name want got
	if [ "$2" = "$3" ]; then ok "$1 ($3)"; else bad "$1: want '$2', got '$3'"; fi
}

python3=/usr/bin/python3
$python3 "$here/push_image.py" "http://$src" x/app v1 > "$dir/app" || { bad "push x/app"; exit 1; }
$python3 "$here/push_image.py" "http://$src" x/multi v1 --index > "$dir/multi" || { bad "push x/multi"; exit 1; }

# 1. resolve: the digests the pusher computed
"$tool" "${auth[@]}" resolve "$src/x/app:v1" > "$dir/r1" 2> "$dir/err" || bad "resolve x/app: $(cat "$dir/err")"
expect "resolve: manifest digest" "$(value manifest "$dir/app")" "$(value digest "$dir/r1")"
expect "resolve: config digest (image id)" "$(value config "$dir/app")" "$(value config "$dir/r1")"
expect "resolve: media type" application/vnd.docker.distribution.manifest.v2+json "$(value media_type "$dir/r1")"

# 2. resolve through an index: linux/amd64 by default, arm64 when asked
"$tool" "${auth[@]}" resolve "$src/x/multi:v1" > "$dir/r2" 2> "$dir/err" || bad "resolve x/multi: $(cat "$dir/err")"
expect "index: digest" "$(value index "$dir/multi")" "$(value index "$dir/r2")"
expect "index: amd64 manifest" "$(value manifest "$dir/multi")" "$(value digest "$dir/r2")"
expect "index: amd64 config" "$(value config "$dir/multi")" "$(value config "$dir/r2")"
"$tool" "${auth[@]}" --platform linux/arm64 resolve "$src/x/multi:v1" > "$dir/r3" 2>&1 || bad "resolve arm64: $(cat "$dir/r3")"
expect "index: arm64 manifest" "$(value arm64_manifest "$dir/multi")" "$(value digest "$dir/r3")"
if "$tool" "${auth[@]}" --platform windows/amd64 resolve "$src/x/multi:v1" > "$dir/r4" 2>&1; then
	bad "resolve windows/amd64 succeeded"
elif grep -q "no manifest for windows/amd64 (there are: linux/arm64/v8, linux/amd64)" "$dir/r4"; then
	ok "index: a missing platform names those there are"
else
	bad "missing platform message: $(cat "$dir/r4")"
fi
# by digest
"$tool" "${auth[@]}" resolve "$src/x/app@$(value manifest "$dir/app")" > "$dir/r5" 2>&1 || bad "resolve by digest: $(cat "$dir/r5")"
expect "resolve by digest" "$(value config "$dir/app")" "$(value config "$dir/r5")"

# 3. copy to the token-auth stand-in: token challenge, user _ and password
tokens0=$(curl -s "http://127.0.0.1:$TOKEN_PORT/count")
"$tool" "${to_heroku[@]}" copy "$src/x/app:v1" "$heroku/myapp/web:latest" > "$dir/c1" 2> "$dir/err" || bad "copy: $(cat "$dir/err")"
expect "copy: blobs copied" 2 "$(value copied "$dir/c1")"
expect "copy: manifest put" 1 "$(value manifests_put "$dir/c1")"
expect "copy: digest" "$(value manifest "$dir/app")" "$(value digest "$dir/c1")"
tokens1=$(curl -s "http://127.0.0.1:$TOKEN_PORT/count")
[ "$tokens0" != "$tokens1" ] && ok "copy: tokens were issued ($tokens1)" || bad "copy: no token issued"
"$tool" "${to_heroku[@]}" resolve "$heroku/myapp/web:latest" > "$dir/r6" 2> "$dir/err" || bad "resolve on the stand-in: $(cat "$dir/err")"
expect "stand-in: image id" "$(value config "$dir/app")" "$(value config "$dir/r6")"

# 4. copy again: nothing copied
"$tool" "${to_heroku[@]}" copy "$src/x/app:v1" "$heroku/myapp/web:latest" > "$dir/c2" 2> "$dir/err" || bad "copy again: $(cat "$dir/err")"
expect "copy again: blobs copied" 0 "$(value copied "$dir/c2")"
expect "copy again: blobs skipped" 2 "$(value skipped "$dir/c2")"
expect "copy again: manifests put" 0 "$(value manifests_put "$dir/c2")"

# 5. within the stand-in, to another repository: cross-repository mount
"$tool" "${to_heroku[@]}" copy "$heroku/myapp/web:latest" "$heroku/otherapp/web:v2" > "$dir/c3" 2> "$dir/err" || bad "mount copy: $(cat "$dir/err")"
expect "mount: blobs mounted" 2 "$(value mounted "$dir/c3")"
expect "mount: blobs copied" 0 "$(value copied "$dir/c3")"

# 6. an index, every platform: both manifests by digest, then the index
"$tool" "${to_heroku[@]}" --all copy "$src/x/multi:v1" "$heroku/multi/web:v1" > "$dir/c4" 2> "$dir/err" || bad "copy --all: $(cat "$dir/err")"
expect "index copy: manifests put" 3 "$(value manifests_put "$dir/c4")"
"$tool" "${to_heroku[@]}" resolve "$heroku/multi/web:v1" > "$dir/r7" 2> "$dir/err" || bad "resolve copied index: $(cat "$dir/err")"
expect "index copy: same index digest" "$(value index "$dir/multi")" "$(value index "$dir/r7")"
# the default: the chosen platform's manifest under the tag
"$tool" "${to_heroku[@]}" copy "$src/x/multi:v1" "$heroku/single/web:v1" > "$dir/c5" 2> "$dir/err" || bad "copy index (one platform): $(cat "$dir/err")"
expect "index, one platform: digest put" "$(value manifest "$dir/multi")" "$(value digest "$dir/c5")"

# 7. denied: a wrong password names the registry and the user, never the secret
if RC_OCI_PASSWORD=wrong-password "$tool" "${to_heroku[@]}" copy "$src/x/app:v1" "$heroku/myapp/web:latest" > /dev/null 2> "$dir/err"; then
	bad "a wrong password was accepted"
elif grep -q "registry registry.heroku.com" "$dir/err" && grep -q "refused user '_' (given)" "$dir/err" &&
	! grep -q wrong-password "$dir/err"; then
	ok "denied: $(cat "$dir/err")"
else
	bad "denied message: $(cat "$dir/err")"
fi
# anonymous on the stand-in: denied, saying anonymous
if "$tool" "${auth[@]}" --endpoint "$heroku=http://127.0.0.1:$DST_PORT" resolve "$heroku/myapp/web:latest" > /dev/null 2> "$dir/err"; then
	bad "anonymous access to the stand-in succeeded"
elif grep -q "denied access to manifest 'latest' of repository myapp/web (HTTP 401.*) with anonymous" "$dir/err"; then
	ok "denied anonymous: $(cat "$dir/err")"
else
	bad "anonymous message: $(cat "$dir/err")"
fi
# credentials from a Docker config file (auths.<host>.auth), named in the message when refused
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$heroku" "$(printf '_:%s' "$PASSWORD" | base64 -w0)" > "$dir/config.json"
"$tool" --auth-file "$dir/config.json" --endpoint "$heroku=http://127.0.0.1:$DST_PORT" resolve "$heroku/myapp/web:latest" > "$dir/r8" 2> "$dir/err" || bad "config file credentials: $(cat "$dir/err")"
expect "config file credentials" "$(value config "$dir/app")" "$(value config "$dir/r8")"
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$heroku" "$(printf '_:nope' | base64 -w0)" > "$dir/bad.json"
if "$tool" --auth-file "$dir/bad.json" --endpoint "$heroku=http://127.0.0.1:$DST_PORT" resolve "$heroku/myapp/web:latest" > /dev/null 2> "$dir/err"; then
	bad "a wrong password from the config file was accepted"
elif grep -q "user '_' from '$dir/bad.json'" "$dir/err"; then
	ok "denied names the config file"
else
	bad "config file denial: $(cat "$dir/err")"
fi

# 8. an unknown tag, and a blob gone from the source's storage
if "$tool" "${auth[@]}" resolve "$src/x/app:nope" > /dev/null 2> "$dir/err"; then
	bad "an unknown tag resolved"
elif grep -q "manifest 'nope' of repository x/app is unknown (HTTP 404, MANIFEST_UNKNOWN" "$dir/err"; then
	ok "unknown tag: $(cat "$dir/err")"
else
	bad "unknown tag message: $(cat "$dir/err")"
fi
$python3 "$here/push_image.py" "http://$src" x/broken v1 --seed broken > "$dir/broken" || bad "push x/broken"
layer=$(value layer "$dir/broken")
hex=${layer#sha256:}
rm -f "$SRC_STORAGE/docker/registry/v2/blobs/sha256/${hex:0:2}/$hex/data"
if "$tool" "${to_heroku[@]}" copy "$src/x/broken:v1" "$heroku/broken/web:v1" > /dev/null 2> "$dir/err"; then
	bad "a copy with a missing blob succeeded"
elif grep -q "blob $layer of repository x/broken is unknown (HTTP 404" "$dir/err"; then
	ok "missing blob: $(cat "$dir/err")"
else
	bad "missing blob message: $(cat "$dir/err")"
fi

# 9. a 64 MiB layer: peak memory grows far less than the layer
$python3 "$here/push_image.py" "http://$src" x/big v1 --layer-mib 64 > "$dir/big" || bad "push x/big"
start=$(date +%s%N)
"$tool" "${to_heroku[@]}" copy "$src/x/big:v1" "$heroku/big/web:v1" > "$dir/c6" 2> "$dir/err" || bad "copy 64 MiB: $(cat "$dir/err")"
end=$(date +%s%N)
before=$(value maxrss_before_kb "$dir/c6")
after=$(value maxrss_after_kb "$dir/c6")
bytes=$(value bytes "$dir/c6")
growth=$((after - before))
echo "64 MiB layer: $bytes bytes copied in $(( (end - start) / 1000000 )) ms; peak RSS $before KiB -> $after KiB (+$growth KiB)"
if [ "$bytes" -gt $((64 << 20)) ] && [ "$growth" -lt 16384 ]; then
	ok "64 MiB copied with peak RSS growth under 16 MiB"
else
	bad "64 MiB copy: bytes $bytes, RSS growth $growth KiB"
fi
"$tool" "${to_heroku[@]}" resolve "$heroku/big/web:v1" > "$dir/r9" 2> "$dir/err" || bad "resolve big: $(cat "$dir/err")"
expect "64 MiB: image id" "$(value config "$dir/big")" "$(value config "$dir/r9")"

# no secret in any output
if grep -rqF "$PASSWORD" "$dir"/c* "$dir"/r* "$dir/err"; then bad "the password appears in an output"; else ok "no password in the outputs"; fi

if [ $failures -gt 0 ]; then
	echo "$failures failure(s); the registries' logs:"
	tail -5 "$dir/src.log" "$dir/dst.log"
	exit 1
fi
echo "all passed"
