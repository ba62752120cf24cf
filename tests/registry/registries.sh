#!/usr/bin/env bash
# Two Distribution registries (Debian's docker-registry) on free loopback
# ports, in a directory of their own:
#   source   anonymous, storage under DIR/src
#   stand-in a "Heroku registry stand-in" with token auth: its realm is
#            token_server.py (HTTP Basic user `_` and a password), which
#            signs RS256 JWTs with a certificate that is the registry's
#            rootcertbundle
#
#   registries.sh start DIR   starts them, writes DIR/env (SRC_PORT,
#                             DST_PORT, TOKEN_PORT, PASSWORD, SRC_STORAGE,
#                             DST_STORAGE) and waits until they answer
#   registries.sh stop DIR    stops what start started (by its pids)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:?start or stop}
dir=${2:?directory}
registry=${DOCKER_REGISTRY:-/usr/bin/docker-registry}

free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_http() { # url
	for _ in $(seq 1 100); do
		if curl -s -o /dev/null "$1"; then return 0; fi
		sleep 0.1
	done
	echo "registries.sh: $1 does not answer" >&2
	return 1
}

case $cmd in
start)
	if [ ! -x "$registry" ]; then
		echo "registries.sh: $registry is missing (Debian package docker-registry)" >&2
		exit 77
	fi
	mkdir -p "$dir/src" "$dir/dst"
	src_port=$(free_port); dst_port=$(free_port); token_port=$(free_port)
	while [ "$dst_port" = "$src_port" ]; do dst_port=$(free_port); done
	while [ "$token_port" = "$src_port" ] || [ "$token_port" = "$dst_port" ]; do token_port=$(free_port); done
	password=$(head -c 18 /dev/urandom | base64 | tr '+/' 'xy')
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=rc-test-token \
		-keyout "$dir/token.key" -out "$dir/token.crt" 2>/dev/null
	cat > "$dir/src.yml" <<YML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $dir/src}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:$src_port
  secret: rc-test-src
YML
	cat > "$dir/dst.yml" <<YML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $dir/dst}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:$dst_port
  secret: rc-test-dst
auth:
  token:
    realm: http://127.0.0.1:$token_port/token
    service: rc-test-registry
    issuer: rc-test-issuer
    rootcertbundle: $dir/token.crt
YML
	/usr/bin/python3 "$here/token_server.py" "$token_port" "$password" \
		"$dir/token.key" "$dir/token.crt" rc-test-issuer rc-test-registry \
		>"$dir/token.log" 2>&1 &
	echo $! > "$dir/token.pid"
	"$registry" serve "$dir/src.yml" >"$dir/src.log" 2>&1 &
	echo $! > "$dir/src.pid"
	"$registry" serve "$dir/dst.yml" >"$dir/dst.log" 2>&1 &
	echo $! > "$dir/dst.pid"
	cat > "$dir/env" <<ENV
SRC_PORT=$src_port
DST_PORT=$dst_port
TOKEN_PORT=$token_port
PASSWORD=$password
SRC_STORAGE=$dir/src
DST_STORAGE=$dir/dst
ENV
	wait_http "http://127.0.0.1:$src_port/v2/"
	wait_http "http://127.0.0.1:$dst_port/v2/"
	wait_http "http://127.0.0.1:$token_port/count"
	;;
stop)
	for p in token src dst; do
		if [ -f "$dir/$p.pid" ]; then
			kill "$(cat "$dir/$p.pid")" 2>/dev/null || true
			rm -f "$dir/$p.pid"
		fi
	done
	;;
*)
	echo "usage: registries.sh start|stop DIR" >&2
	exit 2
	;;
esac
