#!/usr/bin/env bash
# Builds the image of the top-level Dockerfile with docker (when its
# daemon answers) or podman, and checks it: `reconcile --version` and
# `reconcile controller --help` run in it, as a non-root user, with no
# compiler in the image; prints its size. Not part of ctest: it needs a
# container engine and the network (or a local debian:12-slim).
#   tests/deploy/image.sh [SOURCE_ROOT] [TAG]
# Exit 77 when no engine works here.
set -u
root=$(realpath "${1:-.}")
tag=${2:-localhost/reconcile:test}
. "$root/tests/lib.sh"
if docker info >/dev/null 2>&1; then
	engine=docker build=(docker build)
elif command -v podman >/dev/null; then
	# chroot isolation: RUN steps need no cgroups (sandboxes often lack them)
	engine=podman build=(podman build --isolation=chroot --network=host)
else
	echo "skipped: no container engine (docker's daemon does not answer; podman is not installed)"
	exit 77
fi
echo "engine: $engine"
run 0 "$engine build" "${build[@]}" -t "$tag" "$root" || { finish; exit; }
ok "$engine build"

user=$("$engine" image inspect "$tag" --format '{{.Config.User}}')
# in_image CMD...: runs CMD in the image as its user. When the engine
# cannot start containers here (podman in a sandbox without cgroups or
# rlimits), CMD runs with chroot in the image's mounted root instead.
mode=run
if ! o=$("$engine" run --rm --network=none --entrypoint true "$tag" 2>&1); then
	if [ "$engine" = podman ] && [ "$(id -u)" = 0 ] && mnt=$(podman image mount "$tag" 2>/dev/null); then
		mode=chroot
		echo "note: podman run fails here (${o##*$'\n'}); running in the image's root with chroot"
	else
		bad "$engine run" "$o"
		finish
		exit
	fi
fi
in_image() {
	if [ "$mode" = run ]; then
		"$engine" run --rm --network=none --entrypoint "$1" "$tag" "${@:2}"
	else
		env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/var/lib/reconcile \
			RECONCILE_STATE_DIR=/var/lib/reconcile/state XDG_CACHE_HOME=/var/lib/reconcile/cache \
			/usr/sbin/chroot --userspec="$user" "$mnt" "$@"
	fi
}
case "$user" in 0 | 0:* | root | root:* | "") bad "the image's user is not root" "$user" ;; *) ok "the image's user is $user" ;; esac
out=$(in_image id -u 2>&1)
[ "$out" = "${user%%:*}" ] && ok "it runs as uid $out" || bad "it runs as uid ${user%%:*}" "$out"
out=$(in_image reconcile --version 2>&1)
has "reconcile --version" "$out" "reconcile version"
out=$(in_image reconcile controller --help 2>&1)
has "reconcile controller --help" "$out" "--listen"
out=$(in_image sh -c 'for c in cc gcc c99 clang tcc as ld make cmake; do command -v $c; done; ls -d /usr/lib/gcc /usr/include/stdio.h 2>/dev/null; true' 2>&1)
[ -z "$out" ] && ok "no compiler, assembler, linker or C headers in the image" || bad "no compiler in the image" "$out"
size=$("$engine" image inspect "$tag" --format '{{.Size}}')
echo "image size: $((size / 1000000)) MB ($size bytes)"
"$engine" history "$tag" 2>/dev/null | sed -n '1,12p'
finish
