#!/usr/bin/env bash
# Rollback past a migration with the backup the run took, on the local
# driver with a real PostgreSQL add-on and the django-heroku example's own
# scripts (bin/backup-db before every deploy, bin/restore-db in
# hooks.on_rollback):
#   deploy v1 (schema 1) and write rows; deploy v2: a backup before, an
#   irreversible migration after (rows rewritten, a column and a table
#   added); rollback is refused and says what --force would run; rollback
#   --force restores the backup named after the undone run, then the code:
#   the old rows are back. A failing on_rollback hook stops the rollback.
#   restore.sh RECONCILE_BINARY SOURCE_DIR
set -u
rc_bin=$(realpath "$1")
src=$(realpath "$2")
here=$(cd "$(dirname "$0")" && pwd)
export NO_COLOR=1
. "$here/../lib.sh"
work=$(mktemp -d /tmp/rc-restore-XXXXXX)
cfg=$work/cfg
export RECONCILE_STATE_DIR=$work/state
cleanup() {
	"$rc_bin" destroy "$cfg" --auto-approve >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$cfg/bin"
cp "$src/examples/django-heroku/bin/backup-db" "$src/examples/django-heroku/bin/restore-db" \
	"$src/examples/django-heroku/bin/pg-url-env" "$cfg/bin/"
cat >"$cfg/bin/migrate" <<'SH'
#!/usr/bin/env bash
# migrate VERSION: 1 makes the notes; 2 adds a column and an audit table
# and rewrites every note (what a rollback of the code cannot undo)
set -euo pipefail
case "$1" in
1) sql="CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, body text NOT NULL)" ;;
2) sql="ALTER TABLE notes ADD COLUMN IF NOT EXISTS shouted boolean DEFAULT true;
UPDATE notes SET body = upper(body);
CREATE TABLE IF NOT EXISTS audit (id serial PRIMARY KEY)" ;;
esac
psql -Xq -v ON_ERROR_STOP=1 "$DATABASE_URL" -c "$sql"
echo "migrated to version $1"
SH
chmod +x "$cfg/bin/migrate"
write_config() { # version [restore-script]
	cat >"$cfg/reconcile.yaml" <<YAML
version: 1
project: restore
environments:
  dev:
    target: { driver: local }
    services:
      app:
        command: [sh, -c, 'printf %s "\$DATABASE_URL" > db.url; exec sleep 1000']
        env: { VERSION: "$1" }
    addons:
      db: { kind: postgresql, plan: "15", as: DATABASE }
    hooks:
      pre_apply:
        - name: backup-db
          run: [./bin/backup-db, --name, "dev-{{ run.date }}-{{ run.time }}-{{ run.short_commit }}"]
      post_apply:
        - name: migrate
          run: [./bin/migrate, "$1"]
          irreversible: true
      on_rollback:
        - name: restore-db
          run: [${2:-./bin/restore-db}, --name, "dev-{{ rolled_back.date }}-{{ rolled_back.time }}-{{ rolled_back.short_commit }}"]
YAML
}
commit() { git -C "$cfg" add -A && git -C "$cfg" -c user.name=t -c user.email=t@example.com commit -qm "$1"; }
sql() { psql -XAtq -v ON_ERROR_STOP=1 "$(cat "$cfg/db.url")" -c "$1" 2>&1; }

git init -q "$cfg"
write_config 1
printf 'backups/\ndb.url\n' >"$cfg/.gitignore"
commit v1
run 0 "deploy v1" "$rc_bin" apply "$cfg" --auto-approve
has "the first backup finds no database yet" "$out" "nothing to back up"
has "the migration made the notes" "$out" "migrated to version 1"
sql "INSERT INTO notes (body) VALUES ('first note'), ('second note')" >/dev/null
[ "$(sql "SELECT string_agg(body, ',' ORDER BY id) FROM notes")" = "first note,second note" ] &&
	ok "rows written in PostgreSQL" || bad "rows written" "$(sql "SELECT * FROM notes")"

write_config 2
commit v2
v2=$(git -C "$cfg" rev-parse --short=7 HEAD)
run 0 "deploy v2" "$rc_bin" apply "$cfg" --auto-approve
deploy=$(printf '%s\n' "$out" | sed -n 's/^Applied: .* in run \(.*\)\.$/\1/p')
has "v2 backed the database up first" "$out" "backed up to backups/dev-"
has "named after the run's commit" "$out" "-$v2.dump"
[ "$(sql "SELECT string_agg(body, ',' ORDER BY id) FROM notes")" = "FIRST NOTE,SECOND NOTE" ] &&
	ok "the migration rewrote the rows" || bad "the migration rewrote the rows" "$(sql "SELECT * FROM notes")"
sql "INSERT INTO notes (body) VALUES ('written after the deploy')" >/dev/null

run 1 "rollback stops at the migration" "$rc_bin" rollback --source "$cfg" --auto-approve
has "naming it" "$out" "run dev/hook/migrate is irreversible"
has "and what --force would run" "$out" "with --force, environment 'dev' first runs its on_rollback hooks (restore-db), and data written since the run is lost"

run 2 "rollback --force -o shows the plan" "$rc_bin" rollback --source "$cfg" --force -o "$work/rb.json"
has "the restore hook runs first" "$out" "> hook restore-db  (on_rollback hook)"
has "with the undone run's names" "$out" "-$v2\"]"
has "the plan says what is lost" "$out" "data written since that run started"
has "the code goes back too" "$out" 'env.VERSION: "2" -> "1"'
first=$(printf '%s\n' "$out" | grep -n '^  [>~]' | head -1)
case "$first" in *"hook restore-db"*) ok "the restore comes before the rest" ;; *) bad "the restore comes before the rest" "$first" ;; esac

run 0 "rollback --force" "$rc_bin" rollback --source "$cfg" --force --auto-approve
has "the restore ran" "$out" "is back as backups/dev-"
[ "$(sql "SELECT string_agg(body, ',' ORDER BY id) FROM notes")" = "first note,second note" ] &&
	ok "the old rows are back" || bad "the old rows are back" "$(sql "SELECT * FROM notes")"
[ "$(sql "SELECT count(*) FROM information_schema.columns WHERE table_name = 'notes' AND column_name = 'shouted'")" = 0 ] &&
	ok "the migration's column is gone" || bad "the migration's column is gone"
[ "$(sql "SELECT count(*) FROM pg_tables WHERE tablename = 'audit'")" = 0 ] &&
	ok "the migration's table is gone" || bad "the migration's table is gone"
run 2 "the code is back at v1" "$rc_bin" plan "$cfg" && has "so the plan wants v2 again" "$out" 'env.VERSION: "1" -> "2"'
journal=$(cat "$RECONCILE_STATE_DIR"/runs/*.journal)
has "the journal records the hook" "$journal" '"key":"dev/hook/restore-db"'
has "and the run it undid" "$journal" "\"rollback_of\":\"$deploy\""

# a failing on_rollback hook stops the rollback there
run 0 "deploy v2 again" "$rc_bin" apply "$cfg" --auto-approve
write_config 2 ./bin/no-such-restore
run 1 "rollback --force with a failing restore" "$rc_bin" rollback --source "$cfg" --force --auto-approve
has "the hook failed" "$out" "hook restore-db: failed"
has "and nothing else ran" "$out" "service app: skipped"
run 0 "v2 is still in place" "$rc_bin" plan "$cfg" && has "nothing changed" "$out" "No changes"
write_config 2

finish
