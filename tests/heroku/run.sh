#!/usr/bin/env bash
# The Heroku driver end to end: examples/django-heroku planned and applied
# against the fake Platform API (tests/fake/heroku), a real source
# registry and a real "Heroku registry" stand-in with token auth
# (tests/registry, Debian's docker-registry), the joplin repository served
# by git daemon with two pr-* branches, and a local PostgreSQL playing
# Heroku Postgres for the example's backup and restore scripts (through
# tests/heroku/bin/heroku, a stand-in for the heroku CLI).
#
# Covers: staging applied from master; production through a saved plan
# (policy.apply: manual); two review branches, two apps, a database each;
# the image copied into the Heroku registry once and promoted; the backup
# hook before and the migration (a one-off dyno) after; rollback refused at
# the migration, then forced with the restore hook; a config var changed
# by hand shown as drift and healed, DATABASE_URL never touched; a failing
# release with its output; 401, 403, 422 and 429; the rate reserve; a
# failed observation applies nothing; a deleted review branch's app and
# database gone after the ttl; destroy; no secret or API key anywhere in
# the state directory or the output.
#   run.sh RECONCILE_BINARY SOURCE_ROOT
set -u
rc_bin=$(realpath "$1")
root=$(realpath "$2")
here=$root/tests/heroku
py=/usr/bin/python3
export NO_COLOR=1
. "$root/tests/lib.sh"
SHOW=3000 RUN_COUNTS_OK=1
work=$(mktemp -d /tmp/rc-heroku-XXXXXX)
chmod 755 "$work" # the postgres user reads its data directory under it
export RECONCILE_STATE_DIR=$work/state XDG_CACHE_HOME=$work/cache HOME=$work/home
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com
mkdir -p "$HOME"
# the example's secrets: values found nowhere but in the fake's config vars
export JOPLIN_SECRET_KEY=hk-e2e-secret-key-5e1f9a JOPLIN_S3_KEYID=hk-e2e-s3-keyid-77d0 \
	JOPLIN_S3_ACCESSKEY=hk-e2e-s3-access-0c4b
export JOPLIN_PRODUCTION_SECRET_KEY=hk-e2e-prod-secret-3a9e JOPLIN_PRODUCTION_S3_KEYID=hk-e2e-prod-keyid-81f2 \
	JOPLIN_PRODUCTION_S3_ACCESSKEY=hk-e2e-prod-access-d6c7
secrets="$JOPLIN_SECRET_KEY $JOPLIN_S3_KEYID $JOPLIN_S3_ACCESSKEY $JOPLIN_PRODUCTION_SECRET_KEY $JOPLIN_PRODUCTION_S3_KEYID $JOPLIN_PRODUCTION_S3_ACCESSKEY"
cfg=$work/cfg
outputs=$work/outputs.log # every output of reconcile and the hooks, for the last check

pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	[ -f "$work/reg/env" ] && bash "$root/tests/registry/registries.sh" stop "$work/reg" >/dev/null 2>&1
	[ -f "$work/pg/postmaster.pid" ] && as_pg pg_ctl -D "$work/pg" -m immediate stop >/dev/null 2>&1
	if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP # so that the EXIT trap stops what was started
die() { echo "FAIL setup: $*"; for f in "$work"/*.log; do echo "--- $f"; tail -20 "$f"; done; exit 1; }
wait_for() { # SECONDS CMD...: polls CMD until it succeeds
	local end=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do [ "$SECONDS" -ge "$end" ] && return 1; sleep 0.1; done
}
free_port() { $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# lib.sh's run, with every output kept for the secret check at the end
eval "$(declare -f run | sed '1s/^run/lib_run/')"
run() { lib_run "$@"; local s=$?; printf '%s\n' "$out" >>"$outputs"; return $s; }

for tool in docker-registry git pg_dump psql pg_restore curl openssl; do
	command -v "$tool" >/dev/null || { echo "skipped: $tool is not installed"; exit 77; }
done
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$pgbin/initdb" ] || { echo "skipped: PostgreSQL's server (initdb) is not installed"; exit 77; }
[ -x "$(git --exec-path)/git-daemon" ] || { echo "skipped: git daemon is not installed"; exit 77; }
for f in tests/fake/heroku/fake_heroku.py tests/registry/registries.sh tests/registry/push_image.py; do
	[ -f "$root/$f" ] || { echo "FAIL setup: $f is missing (a piece of the Heroku work not merged yet)"; exit 1; }
done

# --- the registries: the source (anonymous) and the Heroku stand-in (token
# auth, user "_", the API key as password), the stand-in behind a proxy
# that counts uploads
bash "$root/tests/registry/registries.sh" start "$work/reg" >"$work/registries.log" 2>&1 ||
	die "the registries did not start"
. "$work/reg/env"
export HEROKU_API_KEY=$PASSWORD # the stand-in's password is the account's key
src="127.0.0.1:$SRC_PORT"
$py "$here/registry_proxy.py" "http://127.0.0.1:$DST_PORT" "$work/proxy.port" "$work/proxy.log" 2>"$work/proxy.err" &
pids+=($!)
wait_for 20 test -s "$work/proxy.port" || die "the registry proxy did not start"
export HEROKU_REGISTRY_URL=http://127.0.0.1:$(cat "$work/proxy.port")

# --- the fake Heroku
$py "$root/tests/fake/heroku/fake_heroku.py" --key "$HEROKU_API_KEY" --team city-of-austin \
	--port-file "$work/fake.port" --log "$work/fake.requests" \
	--addon-delay-ms 200 --release-delay-ms 200 >/dev/null 2>"$work/fake.log" &
pids+=($!)
wait_for 20 test -s "$work/fake.port" || die "the fake Heroku did not start"
export HEROKU_API_URL=http://127.0.0.1:$(cat "$work/fake.port")
fake() { # METHOD PATH [BODY]: the fake's control API
	curl -sS -X "$1" ${3:+-H "Content-Type: application/json" --data "$3"} "$HEROKU_API_URL$2"
}
q() { # PYTHON-EXPRESSION over the fake's state as `s`: printed
	fake GET /fake/state | $py -c 'import json,sys
s = json.load(sys.stdin)
def app(n): return ([a for a in s["apps"] if a["name"] == n] or [None])[0]
def addons(n): return [a for a in s["addons"] if a["app"]["name"] == n]
def web(n): return ([f for f in s["formation"].get(n, []) if f["type"] == "web"] or [None])[0]
def stage(n): return ([c["stage"] for c in s["pipeline_couplings"] if app(n) and c["app"]["id"] == app(n)["id"]] or [None])[0]
def current(n): return ([r for r in s["releases"].get(n, []) if r["current"]] or [None])[-1]
print(eval(sys.argv[1]))' "$1" 2>&1
}
is() { # NAME EXPRESSION EXPECTED: the fake's state
	local got
	got=$(q "$2")
	[ "$got" = "$3" ] && ok "$1" || bad "$1" "$2 = $got, expected $3"
}
stats() { fake GET /fake/stats; }
count() { # "METHOD TEMPLATE" requests counted by the fake since the last reset
	stats | $py -c 'import json,sys; print(json.load(sys.stdin)["requests"].get(sys.argv[1], 0))' "$1"
}
writes() { # the API writes counted since the last reset
	stats | $py -c 'import json,sys; print(sum(n for k, n in json.load(sys.stdin)["requests"].items() if k.split()[0] in ("POST", "PATCH", "PUT", "DELETE")))'
}

# --- a local PostgreSQL: Heroku Postgres for bin/backup-db and restore-db
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$pgbin/$1" "${@:2}"; else "$pgbin/$1" "${@:2}"; fi; }
mkdir -p "$work/pg" "$work/pgsock"
[ "$(id -u)" = 0 ] && chown postgres "$work/pg" "$work/pgsock"
as_pg initdb -D "$work/pg" -U postgres -A trust --no-sync >"$work/initdb.log" 2>&1 || die "initdb failed"
for attempt in 1 2 3; do
	pg_port=$(free_port)
	as_pg pg_ctl -D "$work/pg" -w -t 30 -l "$work/pgsock/postgres.log" \
		-o "-p $pg_port -k $work/pgsock -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null 2>&1 && break
done
wait_for 30 psql -XAtq "postgres://postgres@127.0.0.1:$pg_port/postgres" -c "SELECT 1" || die "PostgreSQL did not start"
export HEROKU_SHIM_PG=postgres://postgres@127.0.0.1:$pg_port HEROKU_SHIM_DIR=$work/heroku-pg
export PATH=$here/bin:$PATH # the heroku CLI stand-in
pgq() { psql -XAtq "$HEROKU_SHIM_PG/$1" -c "$2" 2>&1; } # DB SQL

# --- the joplin repository, served by git daemon, with two pr-* branches
mkdir -p "$work/git"
git init -q -b master "$work/git/joplin.git.src"
j=$work/git/joplin.git.src
echo "joplin" >"$j/README" && git -C "$j" add -A && git -C "$j" commit -qm joplin
for b in pr-101 pr-102; do
	git -C "$j" checkout -q -b "$b" master
	echo "$b" >"$j/$b.txt" && git -C "$j" add -A && git -C "$j" commit -qm "$b"
done
git -C "$j" checkout -q master
git clone -q --bare "$j" "$work/git/joplin.git"
for attempt in 1 2 3 4 5; do
	git_port=$(free_port)
	git daemon --reuseaddr --export-all --enable=receive-pack --base-path="$work/git" \
		--listen=127.0.0.1 --port="$git_port" "$work/git" >"$work/git-daemon.log" 2>&1 &
	gd=$!
	if wait_for 10 git ls-remote "git://127.0.0.1:$git_port/joplin.git"; then pids+=($gd); break; fi
	kill "$gd" 2>/dev/null; wait "$gd" 2>/dev/null; gd=""
done
[ -n "$gd" ] || die "git daemon did not start"
sha7() { git -C "$work/git/joplin.git" rev-parse --short=7 "$1"; }
push_branch() { git -C "$j" push -q "git://127.0.0.1:$git_port/joplin.git" "$@" 2>>"$work/git-daemon.log"; }

# --- the test images in the source registry: image A under the tags of
# staging, production and every review branch; image B for a later deploy
push() { # TAG SEED: prints the image id (the config's digest)
	$py "$root/tests/registry/push_image.py" "http://$src" cityofaustin/joplin-app "$1" --seed "$2" |
		sed -n 's/^config=//p'
}
idA=$(push 9c1e4b2 image-a)
for t in 7d0a3f8 "$(sha7 pr-101)" "$(sha7 pr-102)"; do [ "$(push "$t" image-a)" = "$idA" ] || die "image A pushed twice differs"; done
idB=$(push 9c1e4b3 image-b)
case "$idA$idB" in sha256:*sha256:*) ;; *) die "push_image.py printed no image id ($idA, $idB)" ;; esac
blobsA=2 # its config and its one layer

# --- the example, in a configuration repository: master (staging) and
# production (production's branch)
cp -r "$root/examples/django-heroku" "$cfg"
sed -i "s|https://github.com/cityofaustin/joplin.git|git://127.0.0.1:$git_port/joplin.git|" "$cfg/reconcile.yaml"
sed -i "s|docker.io/cityofaustin/joplin-app|$src/cityofaustin/joplin-app|" "$cfg"/environments/*.yaml
printf 'backups/\n' >"$cfg/.gitignore"
git -C "$cfg" init -q -b master && git -C "$cfg" add -A && git -C "$cfg" commit -qm example
git -C "$cfg" branch production
commit() { git -C "$cfg" add -A && git -C "$cfg" commit -qm "$1"; }
# backups outside the configuration: production's hooks run in a tree of
# the production branch under the cache, which a later run may not share
export BACKUP_DIR=$work/backups
mkdir -p "$BACKUP_DIR"
fake POST /fake/dynos/script '{"match": "manage.py migrate", "output": ["Operations to perform:", "  Apply all migrations: cms", "Running migrations:", "  Applying cms.0042_page_slug... OK"], "exit": 0, "duration_ms": 200}' >/dev/null
mark() { wc -l <"$work/fake.requests"; } # where the fake's request log is now
since() { tail -n +"$(($1 + 1))" "$work/fake.requests"; } # its lines after a mark
first_line() { # MARK REGEX: the line number (after MARK) of the first request matching
	since "$1" | grep -n -E -m1 "$2" | cut -d: -f1
}

# === validate and show
run 0 "the test copy validates" "$rc_bin" validate "$cfg"
run 0 "show lists the review branches" "$rc_bin" show "$cfg"
has "pr-101 becomes an environment" "$out" "joplin-pr-101"
has "pr-102 becomes an environment" "$out" "joplin-pr-102"

# === staging, applied from master
run 2 "staging: the first plan has changes" "$rc_bin" plan "$cfg" -e staging
has "staging is read from master" "$out" "from branch master at"
has "the app is created" "$out" "+ app joplin-staging"
has "its config vars" "$out" "+ config joplin-staging"
has "its formation" "$out" "+ formation joplin-staging"
has "its database" "$out" "+ addon "
has "its pipeline coupling" "$out" "+ pipeline-coupling joplin-staging"
has "the backup hook" "$out" "> hook backup-db"
has "the migration hook" "$out" "> hook migrate"
has "secrets are sensitive" "$out" "(sensitive)"
hasnt "no secret value in the plan" "$out" "$JOPLIN_SECRET_KEY"
m0=$(mark)
run 0 "staging: apply" "$rc_bin" apply "$cfg" -e staging --auto-approve
has "the first backup finds no app yet" "$out" "app 'joplin-staging' does not exist yet, nothing to back up"
has "the migration ran as a one-off dyno" "$out" "hook migrate: ok"
has "with its output" "$out" "Applying cms.0042_page_slug... OK"
is "the app exists, stack container, region us" 'app("joplin-staging")["stack"]["name"], app("joplin-staging")["region"]["name"]' "('container', 'us')"
is "config vars set" 's["config_vars"]["joplin-staging"].get("DEPLOYMENT_MODE"), s["config_vars"]["joplin-staging"].get("APPLICATION_NAME"), s["config_vars"]["joplin-staging"].get("AWS_S3_BUCKET")' "('STAGING', 'joplin-staging', 'coa-joplin-staging')"
is "the secret reached the app" 's["config_vars"]["joplin-staging"].get("SECRET_KEY")' "$JOPLIN_SECRET_KEY"
is "the add-on is standard-0 attached as DATABASE" '[(a["plan"]["name"], a["config_vars"]) for a in addons("joplin-staging")]' "[('heroku-postgresql:standard-0', ['DATABASE_URL'])]"
is "DATABASE_URL set by the add-on" '"DATABASE_URL" in s["config_vars"]["joplin-staging"]' True
is "web: 1 Standard-1X dyno of image A" '(web("joplin-staging") or {}).get("quantity"), (web("joplin-staging") or {}).get("size")' "(1, 'Standard-1X')"
is "the current release deployed image A" 'current("joplin-staging")["description"]' "Deployed web (${idA:7:12})"
is "coupled to pipeline joplin at staging" 'stage("joplin-staging")' staging
is "the migration's dyno ran to the end" '[(d["command"].split(";")[0].strip(), d["state"]) for d in s["dynos"].get("joplin-staging", [])]' "[(\"'python' './joplin/manage.py' 'migrate'\", 'complete')]"
b=$(first_line "$m0" '^GET /apps/joplin-staging ') c=$(first_line "$m0" '^POST /apps ')
[ -n "$b" ] && [ -n "$c" ] && [ "$b" -lt "$c" ] && ok "the backup hook looked before the app was made" ||
	bad "the backup hook looked before the app was made" "GET by the hook at ${b:-none}, POST /apps at ${c:-none}"
f=$(first_line "$m0" '^PATCH /apps/joplin-staging/formation ') d=$(first_line "$m0" '^POST /apps/joplin-staging/dynos ')
[ -n "$f" ] && [ -n "$d" ] && [ "$f" -lt "$d" ] && ok "the migration dyno started after the release" ||
	bad "the migration dyno started after the release" "formation PATCH at ${f:-none}, dyno at ${d:-none}"
fake POST /fake/stats/reset >/dev/null
run 0 "staging: a second plan has no changes" "$rc_bin" plan "$cfg" -e staging
has "no changes" "$out" "No changes"
n=$(stats | $py -c 'import json,sys; print(json.load(sys.stdin)["total"])')
[ "$n" -le 6 ] && ok "a no-change plan of one app costs at most 1 + 5 requests ($n)" ||
	bad "a no-change plan of one app costs at most 1 + 5 requests" "$n: $(stats)"

# === two review branches: two apps, each with its own database
r1=joplin-pr-101 r2=joplin-pr-102
run 2 "review: plan" "$rc_bin" plan "$cfg" -e $r1 -e $r2
has "pr-101 gets an app" "$out" "+ app $r1"
has "pr-102 gets an app" "$out" "+ app $r2"
run 0 "review: apply" "$rc_bin" apply "$cfg" -e $r1 -e $r2 --auto-approve
is "two review apps" 'sorted(a["name"] for a in s["apps"] if a["name"].startswith("joplin-pr-"))' "['$r1', '$r2']"
is "each with an essential-0 database of its own" '[a["plan"]["name"] for a in addons("'$r1'")], [a["plan"]["name"] for a in addons("'$r2'")], len({a["name"] for a in s["addons"]})' "(['heroku-postgresql:essential-0'], ['heroku-postgresql:essential-0'], 3)"
is "different DATABASE_URLs" 's["config_vars"]["'$r1'"]["DATABASE_URL"] != s["config_vars"]["'$r2'"]["DATABASE_URL"]' True
is "coupled at review" 'stage("'$r1'"), stage("'$r2'")' "('review', 'review')"
is "each runs its branch's image (image A)" 'current("'$r1'")["description"], current("'$r2'")["description"]' "('Deployed web (${idA:7:12})', 'Deployed web (${idA:7:12})')"
is "review config: REVIEW, uploads kept apart" 's["config_vars"]["'$r1'"]["DEPLOYMENT_MODE"], s["config_vars"]["'$r1'"]["AWS_S3_UPLOADS_PREFIX"]' "('REVIEW', '$r1')"

# === production: manual, through a saved plan
run 1 "production: --auto-approve does not apply it" "$rc_bin" apply "$cfg" -e production --auto-approve
has "the plan says it waits for approval" "$out" "applied only when approved (policy.apply: manual)"
is "nothing reached Heroku" 'app("joplin-production")' None
run 2 "production: plan -o saves the plan" "$rc_bin" plan "$cfg" -e production -o "$work/prod-plan.json"
has "production is read from its branch" "$out" "from branch production at"
has "production's app" "$out" "+ app joplin-production"
hasnt "no production secret in the plan" "$out" "$JOPLIN_PRODUCTION_SECRET_KEY"
hasnt "no production secret in the saved plan" "$(cat "$work/prod-plan.json")" "hk-e2e-prod"
fake POST /fake/stats/reset >/dev/null
run 0 "production: the saved plan applies" "$rc_bin" apply "$work/prod-plan.json"
[ "$(count 'PATCH /apps/{app}/formation')" = 1 ] && ok "production: one formation PATCH releases the image and sizes the dynos" ||
	bad "production: one formation PATCH releases the image and sizes the dynos" "$(stats)"
is "production: 2 Standard-2X dynos" '(web("joplin-production") or {}).get("quantity"), (web("joplin-production") or {}).get("size")' "(2, 'Standard-2X')"
is "production: standard-2 database" '[a["plan"]["name"] for a in addons("joplin-production")]' "['heroku-postgresql:standard-2']"
is "production: its own secret" 's["config_vars"]["joplin-production"].get("SECRET_KEY")' "$JOPLIN_PRODUCTION_SECRET_KEY"
is "production: coupled at production" 'stage("joplin-production")' production
is "production runs the image staging runs (promoted, not rebuilt)" 'current("joplin-production")["description"] == current("joplin-staging")["description"] == "Deployed web ('${idA:7:12}')"' True
run 0 "production: converged" "$rc_bin" plan "$cfg" -e production

# === the image was copied into the Heroku registry once, then promoted
uploads=$(grep -c -E '^PUT /v2/[^ ]+/blobs/uploads/[^ ]*digest=[^ ]* 201$' "$work/proxy.log")
mounts=$(grep -c -E '^POST /v2/[^ ]+/blobs/uploads/\?[^ ]*mount=[^ ]* 201$' "$work/proxy.log")
manifests=$(grep -c -E '^PUT /v2/[^ ]+/manifests/' "$work/proxy.log")
[ "$uploads" -eq "$blobsA" ] && ok "the image's $blobsA blobs were uploaded once for 4 apps ($mounts mounted, $manifests manifests put)" ||
	bad "the image's $blobsA blobs were uploaded once for 4 apps" "$uploads blob uploads, $mounts mounts, $manifests manifests put:" "$(grep -E 'blobs/uploads|manifests' "$work/proxy.log" | head -40)"
for a in joplin-staging joplin-production $r1 $r2; do
	# the manifest reconcile put into the app's repository, read back
	ref=$(sed -n "s|^PUT /v2/$a/web/manifests/\([^ ]*\) 201$|\1|p" "$work/proxy.log" | tail -1)
	tok=$(curl -s -u "_:$HEROKU_API_KEY" "http://127.0.0.1:$TOKEN_PORT/token?service=rc-test-registry&scope=repository:$a/web:pull" |
		$py -c 'import json,sys; print(json.load(sys.stdin)["token"])' 2>/dev/null)
	got=$(curl -s -H "Authorization: Bearer $tok" -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
		"http://127.0.0.1:$DST_PORT/v2/$a/web/manifests/${ref:-latest}" | $py -c 'import json,sys; print(json.load(sys.stdin)["config"]["digest"])' 2>/dev/null)
	[ "$got" = "$idA" ] && ok "registry.heroku.com/$a/web holds image A" ||
		bad "registry.heroku.com/$a/web holds image A" "got '${got:-nothing}' (manifest put as '${ref:-none}')"
done
dburls=$(fake GET /fake/state | $py -c 'import json,sys
for v in json.load(sys.stdin)["config_vars"].values():
    print(v.get("DATABASE_URL", ""))')

# === a second deploy of staging: the backup before, the migration after
psql -Xq "$HEROKU_SHIM_PG/postgres" -c "CREATE DATABASE joplin_staging" >/dev/null 2>&1
pgq joplin_staging "CREATE TABLE cms_page (id serial PRIMARY KEY, title text); INSERT INTO cms_page (title) VALUES ('Home'), ('Permits')" >/dev/null
url_before=$(q 's["config_vars"]["joplin-staging"]["DATABASE_URL"]')
sed -i 's|joplin-app:9c1e4b2|joplin-app:9c1e4b3|; s|^  DEPLOYMENT_MODE: STAGING$|  DEPLOYMENT_MODE: STAGING\n  FEATURE_NEW_EDITOR: "on"|' "$cfg/environments/staging.yaml"
commit "staging: image B, the new editor"
v2=$(git -C "$cfg" rev-parse --short=7 HEAD)
run 2 "staging: plan the deploy" "$rc_bin" plan "$cfg" -e staging
has "the new var" "$out" 'vars.FEATURE_NEW_EDITOR: (none) -> "on"'
has "the new image" "$out" "9c1e4b3"
m1=$(mark)
run 0 "staging: apply the deploy" "$rc_bin" apply "$cfg" -e staging --auto-approve
has "the backup was captured first" "$out" "backup-db: capturing a backup of 'joplin-staging'"
has "named after app, branch, date and commit" "$out" "backed up to $BACKUP_DIR/joplin-staging-master-$(date -u +%Y%m%d)-$v2.dump"
has "the migration ran again" "$out" "hook migrate: ok"
ls "$BACKUP_DIR"/joplin-staging-master-*-"$v2".dump >/dev/null 2>&1 && ok "the dump is on disk" || bad "the dump is on disk" "$(ls "$BACKUP_DIR")"
b=$(first_line "$m1" '^GET /apps/joplin-staging/addons ') c=$(first_line "$m1" '^PATCH /apps/joplin-staging/(config-vars|formation) ')
[ -n "$b" ] && [ -n "$c" ] && [ "$b" -lt "$c" ] && ok "the backup came before any change" ||
	bad "the backup came before any change" "backup's GET at ${b:-none}, first PATCH at ${c:-none}"
f=$(first_line "$m1" '^PATCH /apps/joplin-staging/formation ') d=$(first_line "$m1" '^POST /apps/joplin-staging/dynos ')
[ -n "$f" ] && [ -n "$d" ] && [ "$f" -lt "$d" ] && ok "the migration came after the release" ||
	bad "the migration came after the release" "formation PATCH at ${f:-none}, dyno at ${d:-none}"
is "image B is released" 'current("joplin-staging")["description"]' "Deployed web (${idB:7:12})"
is "the new var is set" 's["config_vars"]["joplin-staging"].get("FEATURE_NEW_EDITOR")' on
[ "$(since "$m1" | grep -c '^PATCH /apps/joplin-staging/config-vars ')" = 1 ] && ok "all config changes in one PATCH" ||
	bad "all config changes in one PATCH" "$(since "$m1" | grep config-vars)"
# what the migration did to the data (the fake's dyno cannot reach it)
pgq joplin_staging "ALTER TABLE cms_page ADD COLUMN slug text; UPDATE cms_page SET title = upper(title); CREATE TABLE cms_redirect (id serial PRIMARY KEY)" >/dev/null

# === rollback: refused at the migration, then forced with the restore
run 1 "rollback stops at the irreversible migration" "$rc_bin" rollback --source "$cfg" -e staging --auto-approve
has "naming it" "$out" "hook/migrate is irreversible"
has "and what --force would run" "$out" "restore-db"
is "nothing was rolled back" 'current("joplin-staging")["description"]' "Deployed web (${idB:7:12})"
run 2 "rollback --force -o shows the plan" "$rc_bin" rollback --source "$cfg" -e staging --force -o "$work/rb.json"
has "the restore hook runs first" "$out" "> hook restore-db"
has "the image goes back" "$out" "9c1e4b2"
has "the var goes" "$out" "FEATURE_NEW_EDITOR"
hasnt "DATABASE_URL is not the rollback's" "$out" "DATABASE_URL"
run 0 "rollback --force" "$rc_bin" rollback --source "$cfg" -e staging --force --auto-approve
has "the restore ran" "$out" "restore-db: database joplin_staging is back as"
[ "$(pgq joplin_staging "SELECT string_agg(title, ',' ORDER BY id) FROM cms_page")" = "Home,Permits" ] &&
	ok "the rows are back as before the deploy" || bad "the rows are back as before the deploy" "$(pgq joplin_staging "SELECT * FROM cms_page")"
[ "$(pgq joplin_staging "SELECT count(*) FROM pg_tables WHERE tablename = 'cms_redirect'")" = 0 ] &&
	ok "the migration's table is gone" || bad "the migration's table is gone"
# the config var goes after the image (the undo runs in reverse), so
# the newest release of an image, not the newest release, is image A's
is "image A is released again" '[r for r in s["releases"]["joplin-staging"] if r["description"].startswith("Deployed web")][-1]["description"]' "Deployed web (${idA:7:12})"
is "the var reconcile added is removed" '"FEATURE_NEW_EDITOR" in s["config_vars"]["joplin-staging"]' False
is "DATABASE_URL untouched" 's["config_vars"]["joplin-staging"]["DATABASE_URL"]' "$url_before"
run 0 "staging: back at the configuration" "$rc_bin" apply "$cfg" -e staging --auto-approve

# === a config var changed by hand: drift, healed; DATABASE_URL never touched
fake POST /fake/config-vars '{"app": "joplin-staging", "set": {"DEPLOYMENT_MODE": "HOTFIX", "SUPPORT_CONTACT": "ops@example.com"}}' >/dev/null
run 2 "drift shows in the plan" "$rc_bin" plan "$cfg" -e staging
has "the var changed by hand" "$out" 'vars.DEPLOYMENT_MODE: "HOTFIX" -> "STAGING"'
hasnt "a var reconcile never set is left alone" "$out" "SUPPORT_CONTACT"
hasnt "DATABASE_URL is not reconcile's" "$out" "DATABASE_URL"
fake POST /fake/stats/reset >/dev/null
run 0 "apply heals it" "$rc_bin" apply "$cfg" -e staging --auto-approve
is "DEPLOYMENT_MODE is back" 's["config_vars"]["joplin-staging"]["DEPLOYMENT_MODE"]' STAGING
is "the hand-made var is still there" 's["config_vars"]["joplin-staging"].get("SUPPORT_CONTACT")' ops@example.com
is "DATABASE_URL is what the add-on set" 's["config_vars"]["joplin-staging"]["DATABASE_URL"]' "$url_before"
[ "$(count 'PATCH /apps/{app}/config-vars')" = 1 ] && ok "healed in one PATCH" || bad "healed in one PATCH" "$(stats)"
run 0 "converged after the heal" "$rc_bin" plan "$cfg" -e staging

# === a failing release, reported with its output
fake POST /fake/releases/script '{"app": "joplin-staging", "status": "failed", "output": ["Running release command...", "django.db.utils.OperationalError: relation cms_slug does not exist"], "duration_ms": 300, "count": 1}' >/dev/null
sed -i 's|joplin-app:9c1e4b3|joplin-app:9c1e4b2|' "$cfg/environments/staging.yaml"
commit "staging: image A again"
run 1 "a failed release fails the apply" "$rc_bin" apply "$cfg" -e staging --auto-approve
has "saying the release failed" "$out" "failed"
has "with the end of its release-phase output" "$out" "django.db.utils.OperationalError: relation cms_slug does not exist"
hasnt "the migration does not run after a failed release" "$out" "hook migrate: ok"
fake DELETE /fake/releases/script >/dev/null
run 0 "the next apply releases it" "$rc_bin" apply "$cfg" -e staging --auto-approve
is "image A is the current release" 'current("joplin-staging")["description"]' "Deployed web (${idA:7:12})"
run 0 "converged after the release" "$rc_bin" plan "$cfg" -e staging

# === 403: a write the account may not do
fake POST /fake/faults '{"method": "PATCH", "path_regex": "^/apps/joplin-staging/config-vars$", "status": 403, "body": {"id": "forbidden", "message": "You do not have access to the app joplin-staging."}}' >/dev/null
sed -i 's|^  AWS_S3_REGION: us-east-1$|  AWS_S3_REGION: us-east-2|' "$cfg/environments/base.yaml"
commit "base: us-east-2"
run 1 "a 403 fails the apply" "$rc_bin" apply "$cfg" -e staging --auto-approve
has "with the status" "$out" "403"
has "and the server's message" "$out" "You do not have access to the app joplin-staging."
has "and the Request-Id" "$out" "Request-Id"
fake DELETE /fake/faults >/dev/null
run 0 "without the fault it applies" "$rc_bin" apply "$cfg" -e staging --auto-approve

# === 401, a missing key, the key from .netrc
key=$HEROKU_API_KEY
HEROKU_API_KEY=hk-e2e-wrong-key-4f0e run 1 "a 401 fails the plan" "$rc_bin" plan "$cfg" -e staging
has "saying the key was refused" "$out" "401"
has "naming HEROKU_API_KEY" "$out" "HEROKU_API_KEY"
has "and .netrc" "$out" ".netrc"
hasnt "without the key" "$out" "hk-e2e-wrong-key"
unset HEROKU_API_KEY
run 1 "no key at all fails the plan" "$rc_bin" plan "$cfg" -e staging
has "naming HEROKU_API_KEY" "$out" "HEROKU_API_KEY"
has "and .netrc" "$out" ".netrc"
printf 'machine api.heroku.com\n  login t@example.com\n  password %s\n' "$key" >"$HOME/.netrc"
chmod 600 "$HOME/.netrc"
run 0 "the key from ~/.netrc works" "$rc_bin" plan "$cfg" -e staging
rm -f "$HOME/.netrc"
export HEROKU_API_KEY=$key

# === the rate budget: the reserve, a 429 retried, a 429 that lasts
fake POST /fake/rate '{"remaining": 895, "refill_per_min": 1200}' >/dev/null
run 0 "below the reserve, observation waits for tokens" "$rc_bin" plan "$cfg" -e staging
has "and the plan says so" "$out" "observation waited"
fake POST /fake/rate '{"remaining": 4500, "refill_per_min": 75}' >/dev/null
fake POST /fake/faults '{"method": "GET", "path_regex": "^/apps$", "status": 429, "retry_after": 1, "count": 1}' >/dev/null
run 0 "a 429 is retried after Retry-After" "$rc_bin" plan "$cfg" -e staging
fake DELETE /fake/faults >/dev/null
fake POST /fake/faults '{"method": "GET", "path_regex": "^/apps$", "status": 429, "retry_after": 1}' >/dev/null
run 1 "a 429 that lasts fails the plan" "$rc_bin" plan "$cfg" -e staging
has "naming the 429" "$out" "429"
has "and when tokens return" "$out" "tokens return"
fake DELETE /fake/faults >/dev/null
# nothing is applied after a failed observation
sed -i 's|^  AWS_S3_REGION: us-east-2$|  AWS_S3_REGION: us-west-1|' "$cfg/environments/base.yaml"
commit "base: us-west-1"
fake POST /fake/faults '{"method": "GET", "path_regex": "^/addons$", "status": 500}' >/dev/null
fake POST /fake/stats/reset >/dev/null
run 1 "a lasting 500 while observing fails the apply" "$rc_bin" apply "$cfg" -e staging --auto-approve
has "with the status" "$out" "500"
[ "$(writes)" = 0 ] && ok "and nothing was applied" || bad "and nothing was applied" "$(stats)"
fake DELETE /fake/faults >/dev/null
# a dropped connection is retried; one that keeps dropping fails the plan
fake POST /fake/faults '{"method": "GET", "path_regex": "^/apps$", "drop": true, "count": 1}' >/dev/null
run 2 "a dropped connection is retried" "$rc_bin" plan "$cfg" -e staging
fake DELETE /fake/faults >/dev/null
fake POST /fake/faults '{"method": "GET", "path_regex": "^/addons$", "drop": true}' >/dev/null
fake POST /fake/stats/reset >/dev/null
run 1 "a connection that keeps dropping fails the apply" "$rc_bin" apply "$cfg" -e staging --auto-approve
has "naming the call" "$out" "/addons"
[ "$(writes)" = 0 ] && ok "and nothing was applied" || bad "and nothing was applied" "$(stats)"
fake DELETE /fake/faults >/dev/null
# a body that is not JSON is an error, not a crash
fake POST /fake/faults '{"method": "GET", "path_regex": "^/pipeline-couplings$", "malformed": true}' >/dev/null
run 1 "a malformed body fails the plan" "$rc_bin" plan "$cfg" -e staging
has "saying which call and that its body cannot be read" "$out" "list pipeline couplings: the API answered 200 with a body that cannot be read"
fake DELETE /fake/faults >/dev/null
# refusals while applying: 404, 409, a lasting 503
fake POST /fake/faults '{"method": "PATCH", "path_regex": "/config-vars$", "status": 404, "body": {"id": "not_found", "message": "Couldn'"'"'t find that app.", "resource": "app"}}' >/dev/null
run 1 "a 404 while applying fails the action" "$rc_bin" apply "$cfg" -e staging --auto-approve
has "naming the app" "$out" "joplin-staging"
has "with the server's message" "$out" "Couldn't find that app"
fake DELETE /fake/faults >/dev/null
fake POST /fake/faults '{"method": "PATCH", "path_regex": "/config-vars$", "status": 409, "body": {"id": "conflict", "message": "A release is already in progress for this app."}}' >/dev/null
run 1 "a 409 while applying fails the action" "$rc_bin" apply "$cfg" -e staging --auto-approve
has "with the status" "$out" "409"
has "and the server's message" "$out" "A release is already in progress"
fake DELETE /fake/faults >/dev/null
fake POST /fake/faults '{"method": "PATCH", "path_regex": "/config-vars$", "status": 503}' >/dev/null
run 1 "a lasting 503 while applying fails the action" "$rc_bin" apply "$cfg" -e staging --auto-approve
has "with the status after the retries" "$out" "503"
has "saying it was retried" "$out" "attempts"
fake DELETE /fake/faults >/dev/null
run 0 "and then it applies" "$rc_bin" apply "$cfg" -e staging --auto-approve

# === an add-on's plan: within its tier an update, across tiers a replace
dbid=$(q '[a["id"] for a in addons("joplin-staging")][0]')
sed -i 's|^    plan: standard-0$|    plan: standard-2|' "$cfg/environments/staging.yaml"
commit "staging: standard-2"
run 2 "a plan within the tier" "$rc_bin" plan "$cfg" -e staging
has "is an update" "$out" "~ addon db"
has "of the plan" "$out" '"standard-0" -> "standard-2"'
run 0 "it applies" "$rc_bin" apply "$cfg" -e staging --auto-approve
is "the same database, on the new plan" '[(a["id"], a["plan"]["name"]) for a in addons("joplin-staging")]' "[('$dbid', 'heroku-postgresql:standard-2')]"
sed -i 's|^    plan: standard-2$|    plan: essential-0|' "$cfg/environments/staging.yaml"
commit "staging: essential-0"
run 2 "a plan across tiers" "$rc_bin" plan "$cfg" -e staging
has "is a replace" "$out" "! addon db"
has "that loses the data" "$out" "replacing it loses its data"
run 1 "apply refuses the replace" "$rc_bin" apply "$cfg" -e staging --auto-approve
has "naming policy.allow_replace" "$out" "policy.allow_replace"
is "the database is untouched" '[(a["id"], a["plan"]["name"]) for a in addons("joplin-staging")]' "[('$dbid', 'heroku-postgresql:standard-2')]"
sed -i 's|^    plan: essential-0$|    plan: standard-0|' "$cfg/environments/staging.yaml"
commit "staging: standard-0 again"
run 0 "back within the tier" "$rc_bin" apply "$cfg" -e staging --auto-approve

# === 422: a name another account holds, pointed at target.app
git -C "$j" checkout -q -b pr-103 master && echo 103 >"$j/103.txt" && git -C "$j" add -A && git -C "$j" commit -qm pr-103 && git -C "$j" checkout -q master
push_branch pr-103
[ "$(push "$(sha7 pr-103)" image-a)" = "$idA" ] || bad "image A pushed for pr-103"
fake POST /fake/foreign-apps '{"name": "joplin-pr-103"}' >/dev/null
run 1 "a name held by another account fails the apply" "$rc_bin" apply "$cfg" -e joplin-pr-103 --auto-approve
has "saying so" "$out" "taken by another Heroku account"
has "pointing at target.app in review.yaml" "$out" "environments/review.yaml:7:"
is "nothing was made for it" '[a["name"] for a in s["addons"] if a["app"]["name"] == "joplin-pr-103"], app("joplin-pr-103")' "([], None)"
push_branch :pr-103
# it never owned anything: a plan forgets it
run 0 "the branch gone, nothing to do for it" "$rc_bin" plan "$cfg" -e staging

# === a review branch deleted: its app and database gone after the ttl
run 0 "pr-101 follows the base's change" "$rc_bin" apply "$cfg" -e "$r1" --auto-approve
push_branch :pr-102
run 0 "within the ttl nothing is deleted" "$rc_bin" plan "$cfg"
has "the plan notes the gone environment" "$out" "environment '$r2' (made by 'review') is gone since"
is "the app is still there" 'app("'$r2'") is not None' True
$py - "$RECONCILE_STATE_DIR/environments.json" "$r2" <<'PY'
import json, sys, datetime
p, env = sys.argv[1], sys.argv[2]
r = json.load(open(p))
t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=73)
r["environments"][env]["gone_since"] = t.strftime("%Y-%m-%dT%H:%M:%SZ")
json.dump(r, open(p, "w"))
PY
run 2 "past the ttl the plan deletes it" "$rc_bin" plan "$cfg"
has "its app" "$out" "- app $r2"
has "its database" "$out" "- addon"
run 0 "apply the removal" "$rc_bin" apply "$cfg" --auto-approve
hasnt "and nothing else" "$out" "joplin-staging:"
is "its app is gone" 'app("'$r2'")' None
is "its database is gone" 'addons("'$r2'")' "[]"
is "pr-101 is untouched" 'app("'$r1'") is not None, [a["plan"]["name"] for a in addons("'$r1'")]' "(True, ['heroku-postgresql:essential-0'])"

# === a hook that outlives its timeout: its one-off dyno is stopped
ht=$work/hooktest
mkdir -p "$ht"
cat >"$ht/reconcile.yaml" <<EOF
version: 1
project: hooktest
environments:
  slow:
    target: { driver: heroku, app: hooktest-slow, stack: container }
    services:
      web:
        image: "$src/cityofaustin/joplin-app:9c1e4b2"
        command: [gunicorn, app]
    hooks:
      post_apply:
        - name: reindex
          run: [python, manage.py, reindex-everything]
          service: web
          timeout: 2s
EOF
fake POST /fake/dynos/script '{"match": "reindex-everything", "output": ["reindexing..."], "exit": 0, "duration_ms": 60000}' >/dev/null
# on a terminal (script gives it one), the live display shows the image's
# progress beside the formation being applied
RECONCILE_STATE_DIR=$work/hooktest-state run 1 "a hook past its timeout fails the apply" \
	script -q -e -c "env -u NO_COLOR $(printf '%q ' "$rc_bin" apply "$ht" --auto-approve)" "$work/tty.log"
has "saying it timed out" "$out" "timed out"
has "the terminal showed the image's progress" "$(cat "$work/tty.log")" "web: image blob"
is "its dyno was stopped, not left running" '[(d["command"].count("reindex-everything"), d["state"]) for d in s["dynos"]["hooktest-slow"]]' "[(1, 'down')]"
RECONCILE_STATE_DIR=$work/hooktest-state run 0 "the timed-out app destroys" "$rc_bin" destroy "$ht" --auto-approve

# === adoption: an app made by hand is an error, unless policy.adopt; a team app.
# Another project in the same state directory: joplin's generated
# environments are not this project's, nor gone for it
ad=$work/adopt
mkdir -p "$ad"
adopt_cfg() { # POLICY-LINE
	cat >"$ad/reconcile.yaml" <<EOF
version: 1
project: legacy
environments:
  legacy:
    target: { driver: heroku, app: joplin-legacy }
    config: { MODE: new }
    $1
  team:
    target: { driver: heroku, app: joplin-team-app, team: city-of-austin }
    config: { MODE: team }
EOF
}
fake POST /fake/apps '{"name": "joplin-legacy", "config_vars": {"MODE": "old", "HAND": "keep"}}' >/dev/null
adopt_cfg ""
run 1 "an app made by hand is not taken over" "$rc_bin" plan "$ad"
has "saying it exists outside reconcile" "$out" "exists outside reconcile"
has "pointing at target.app" "$out" "reconcile.yaml:5:"
has "naming policy.adopt" "$out" "policy.adopt: true"
adopt_cfg "policy: { adopt: true }"
run 2 "with policy.adopt the plan adopts it" "$rc_bin" plan "$ad"
has "shown as adoption" "$out" "~ app joplin-legacy  (adopt:"
hasnt "joplin's review apps are not gone for it" "$out" "$r1"
has "the team app is created" "$out" "+ app joplin-team-app"
fake POST /fake/stats/reset >/dev/null
run 0 "apply adopts it" "$rc_bin" apply "$ad" --auto-approve
is "its var is set, the hand-set one kept" 'sorted(s["config_vars"]["joplin-legacy"].items())' "[('HAND', 'keep'), ('MODE', 'new')]"
is "the team app is made through /teams/apps" '[a["team"]["name"] if a.get("team") else None for a in s["apps"] if a["name"] == "joplin-team-app"]' "['city-of-austin']"
[ "$(count "POST /teams/apps")" = 1 ] && ok "with one POST /teams/apps" || bad "with one POST /teams/apps" "$(stats)"
run 0 "then the plan is clean" "$rc_bin" plan "$ad"
run 0 "and the adopted app destroys like its own" "$rc_bin" destroy "$ad" --auto-approve
is "both are gone" '[a["name"] for a in s["apps"] if a["name"] in ("joplin-legacy", "joplin-team-app")]' "[]"
is "joplin's apps are untouched" 'app("'$r1'") is not None, app("joplin-staging") is not None' "(True, True)"

# === destroy
run 0 "destroy staging and the review app" "$rc_bin" destroy "$cfg" -e staging -e "$r1" --auto-approve
run 1 "destroy --auto-approve leaves production" "$rc_bin" destroy "$cfg" -e production --auto-approve
is "production still there" 'app("joplin-production") is not None' True
run 2 "destroy -o saves production's removal" "$rc_bin" destroy "$cfg" -e production -o "$work/prod-destroy.json"
has "its database is deleted, irreversibly" "$out" "- addon"
run 0 "the saved removal applies" "$rc_bin" apply "$work/prod-destroy.json"
is "no app left" '[a["name"] for a in s["apps"]]' "[]"
is "no add-on left" 's["addons"]' "[]"
is "no coupling left" 's["pipeline_couplings"]' "[]"
run 0 "nothing left to plan" "$rc_bin" plan "$cfg" --destroy

# === no secret, no API key, no database URL anywhere
leaks() { # DESCRIPTION FILES...: every secret value and the key, grepped for
	local v hit=""
	for v in $secrets "$key" hk-e2e-wrong-key $dburls; do
		[ -n "$v" ] && grep -r -a -l -F -- "$v" "$@" >/dev/null 2>&1 && hit="$hit ${v:0:10}…($(grep -r -a -l -F -- "$v" "$@" | head -3 | tr '\n' ' '))"
	done
	[ -z "$hit" ] && ok "$1" || bad "$1" "found:$hit"
}
leaks "no secret, key or database URL in the state directory" "$RECONCILE_STATE_DIR"
leaks "no secret, key or database URL in any output" "$outputs"
leaks "no secret or key in the cache" "$XDG_CACHE_HOME"

finish
