/* The last-applied snapshot: used while the journals are those it was
 * made from, never once one of them moved. */
#include "tests/unit/helpers.h"
#include "reconciler/engine.h"
#include "state/journal.h"
#include "state/snapshot.h"

/* A new run's journal of dev, with its run-start. */
static rc_journal *start_run(const char *dir, const char *id,
			     const char *time)
{
	rc_journal *j;
	json_t *r;

	assert_int_equal(rc_journal_create(&j, dir, id), 0);
	r = json_pack("{s:s, s:s, s:s, s:[s]}", "type", "run-start", "run", id,
		      "time", time, "environments", "dev");
	assert_int_equal(rc_journal_append(j, r), 0);
	json_decref(r);
	return j;
}

/* A run that applied key = {"v": value} (or deleted it: value NULL);
 * left open (no outcome) when open is true. */
static void run(const char *dir, const char *id, const char *time,
		const char *key, const char *value, bool open)
{
	rc_journal *j = start_run(dir, id, time);
	json_t *r;

	r = json_pack("{s:s, s:s, s:s, s:s}", "type", "intent", "action", "a1",
		      "op", value ? "update" : "delete", "key", key);
	if (value)
		json_object_set_new(r, "desired", json_pack("{s:s}", "v", value));
	assert_int_equal(rc_journal_append(j, r), 0);
	json_decref(r);
	if (!open) {
		r = json_pack("{s:s, s:s, s:s}", "type", "outcome", "action",
			      "a1", "status", "ok");
		assert_int_equal(rc_journal_append(j, r), 0);
		json_decref(r);
	}
	rc_journal_close(j);
}

/* The "v" of key in what was applied last (static; "" when absent). */
static const char *applied(const char *dir, const char *key)
{
	static char v[64];
	json_t *last = rc_engine_last_applied(dir, NULL);
	const char *s = json_string_value(
		json_object_get(json_object_get(last, key), "v"));

	snprintf(v, sizeof(v), "%s", s ? s : "");
	json_decref(last);
	return v;
}

/* Replaces the snapshot's body of key, keeping its journals: what a
 * trusted snapshot says shows through. */
static void forge(const char *dir, const char *key, const char *value)
{
	json_t *journals = rc_snapshot_journals(dir);
	json_t *last = rc_snapshot_load(dir, journals);

	assert_non_null(last);
	json_object_set_new(last, key, json_pack("{s:s}", "v", value));
	assert_int_equal(rc_snapshot_save(dir, journals, last), 0);
	json_decref(last);
	json_decref(journals);
}

static void snapshot_used_while_journals_stand(void **st)
{
	char *dir = tmpdir_new(), path[PATH_MAX];

	(void)st;
	assert_string_equal(applied(dir, "dev/svc/web"), "");
	snprintf(path, sizeof(path), "%s/last-applied.json", dir);
	assert_int_equal(access(path, F_OK), -1); /* no runs: none written */
	run(dir, "r1", "2026-12-05T10:00:00Z", "dev/svc/web", "one", false);
	assert_string_equal(applied(dir, "dev/svc/web"), "one");
	assert_int_equal(access(path, F_OK), 0);
	forge(dir, "dev/svc/web", "from-the-snapshot");
	assert_string_equal(applied(dir, "dev/svc/web"), "from-the-snapshot");
	/* a new run: the snapshot is older than the newest journal */
	run(dir, "r2", "2026-12-05T11:00:00Z", "dev/svc/web", "two", false);
	assert_string_equal(applied(dir, "dev/svc/web"), "two");
	/* and the replay made a new one */
	forge(dir, "dev/svc/web", "again");
	assert_string_equal(applied(dir, "dev/svc/web"), "again");
	/* the rollback's question (before a run) always replays */
	{
		json_t *l = rc_engine_last_applied(dir, "r2");

		assert_string_equal(json_string_value(json_object_get(
					    json_object_get(l, "dev/svc/web"), "v")),
				    "one");
		json_decref(l);
	}
	tmpdir_remove(dir);
}

static void snapshot_not_trusted_once_a_journal_moved(void **st)
{
	char *dir = tmpdir_new(), *other, path[PATH_MAX], to[PATH_MAX];
	json_t *journals, *last;

	(void)st;
	run(dir, "r1", "2026-12-05T10:00:00Z", "dev/svc/web", "one", false);
	run(dir, "r2", "2026-12-05T11:00:00Z", "dev/svc/db", "db", true);
	assert_string_equal(applied(dir, "dev/svc/web"), "one");
	forge(dir, "dev/svc/web", "stale");
	/* the run ended after all (a crashed run's tail, a run that was
	   still going): its journal grew */
	other = tmpdir_new();
	run(other, "r2", "2026-12-05T11:00:00Z", "dev/svc/db", "db", false);
	snprintf(path, sizeof(path), "%s/runs/r2.journal", other);
	snprintf(to, sizeof(to), "%s/runs/r2.journal", dir);
	assert_int_equal(rename(path, to), 0);
	tmpdir_remove(other);
	assert_string_equal(applied(dir, "dev/svc/web"), "one");
	assert_string_equal(applied(dir, "dev/svc/db"), "db");
	/* a journal removed */
	forge(dir, "dev/svc/web", "stale");
	snprintf(path, sizeof(path), "%s/runs/r2.journal", dir);
	assert_int_equal(unlink(path), 0);
	assert_string_equal(applied(dir, "dev/svc/web"), "one");
	assert_string_equal(applied(dir, "dev/svc/db"), "");
	/* an unreadable snapshot is replaced */
	write_file(dir, "last-applied.json", "{not json");
	assert_string_equal(applied(dir, "dev/svc/web"), "one");
	journals = rc_snapshot_journals(dir);
	last = rc_snapshot_load(dir, journals);
	assert_non_null(last);
	json_decref(last);
	json_decref(journals);
	tmpdir_remove(dir);
}

/* A run added after the snapshot: the snapshot is brought up to date by
 * that run alone; a run ordered before the snapshot's: replayed whole. */
static void snapshot_brought_up_to_date_by_newer_runs(void **st)
{
	char *dir = tmpdir_new();

	(void)st;
	run(dir, "r1", "2026-12-05T10:00:00Z", "dev/svc/web", "one", false);
	assert_string_equal(applied(dir, "dev/svc/web"), "one");
	forge(dir, "dev/svc/web", "kept");
	run(dir, "r2", "2026-12-05T11:00:00Z", "dev/svc/db", "db", false);
	assert_string_equal(applied(dir, "dev/svc/db"), "db");
	assert_string_equal(applied(dir, "dev/svc/web"), "kept");
	/* a journal older than the snapshot's newest: not a plain append */
	run(dir, "r0", "2026-12-05T09:00:00Z", "dev/svc/web", "zero", false);
	assert_string_equal(applied(dir, "dev/svc/web"), "one");
	tmpdir_remove(dir);
}

/* Reading one environment's keys parses its line alone. */
static void snapshot_read_for_one_environment(void **st)
{
	char *dir = tmpdir_new(), path[PATH_MAX];
	json_t *journals, *last, *from = NULL;
	const char *const dev[] = {"dev"};
	rc_buf b = RC_BUF_INIT;
	FILE *f;

	(void)st;
	run(dir, "r1", "2026-12-05T10:00:00Z", "dev/svc/web", "one", false);
	run(dir, "r2", "2026-12-05T11:00:00Z", "prod/svc/web", "two", false);
	run(dir, "r3", "2026-12-05T12:00:00Z", "dev-2/svc/web", "three",
	    false);
	last = rc_engine_last_applied_for(dir, dev, 1);
	assert_int_equal(json_object_size(last), 1);
	assert_non_null(json_object_get(last, "dev/svc/web"));
	json_decref(last);
	/* the file: a line per environment; prod's made unreadable */
	snprintf(path, sizeof(path), "%s/last-applied.json", dir);
	f = fopen(path, "r");
	assert_non_null(f);
	{
		char line[4096];

		while (fgets(line, sizeof(line), f)) {
			if (!strncmp(line, "{\"env\":\"prod\",", 14))
				rc_buf_puts(&b, "{\"env\":\"prod\",broken\n");
			else
				rc_buf_puts(&b, line);
		}
	}
	fclose(f);
	assert_non_null(strstr(b.ptr, "{\"env\":\"dev-2\",\"last\":{"));
	write_file(dir, "last-applied.json", b.ptr);
	rc_buf_release(&b);
	journals = rc_snapshot_journals(dir);
	last = rc_snapshot_read(dir, dev, 1, &from);
	assert_non_null(last);
	assert_true(json_equal(from, journals));
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(last, "dev/svc/web"), "v")),
			    "one");
	assert_int_equal(json_object_size(last), 1);
	json_decref(last);
	json_decref(from);
	/* the whole file is needed: the broken line makes it unreadable */
	assert_null(rc_snapshot_load(dir, journals));
	json_decref(journals);
	tmpdir_remove(dir);
}

/* A run of hook migrate of dev: its intent, then (status non-NULL) its
 * outcome, "unsettled" when asked. */
static void hook_run(const char *dir, const char *id, const char *time,
		     const char *status, bool unsettled)
{
	rc_journal *j = start_run(dir, id, time);
	json_t *r;

	r = json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:[s]}, s:b}", "type",
		      "intent", "action", "run:dev/hook/migrate", "op", "run",
		      "key", "dev/hook/migrate", "desired", "name", "migrate",
		      "run", "./migrate", "irreversible", 1);
	assert_int_equal(rc_journal_append(j, r), 0);
	json_decref(r);
	if (status) {
		r = json_pack("{s:s, s:s, s:s, s:b}", "type", "outcome",
			      "action", "run:dev/hook/migrate", "status", status,
			      "unsettled", unsettled);
		assert_int_equal(rc_journal_append(j, r), 0);
		json_decref(r);
	}
	rc_journal_close(j);
}

/* The run whose attempt of dev's migrate is unfinished (static; "" when
 * none), from the snapshot's dev line alone when one is true. */
static const char *unfinished_run(const char *dir, bool one)
{
	static char v[64];
	const char *dev[] = {"dev"};
	json_t *last = rc_engine_last_applied_for(dir, dev, one ? 1 : 0);
	json_t *u = rc_engine_take_unfinished(last);
	const char *s = json_string_value(
		json_object_get(json_object_get(u, "dev/hook/migrate"), "run"));

	snprintf(v, sizeof(v), "%s", s ? s : "");
	/* what was applied holds resources only */
	assert_null(json_object_get(last, "dev/" RC_UNFINISHED_KIND
					  "/migrate"));
	json_decref(u);
	json_decref(last);
	return v;
}

static void unfinished_hooks_replayed_and_settled(void **st)
{
	char *dir = tmpdir_new();
	json_t *last;

	(void)st;
	run(dir, "r0", "2026-12-05T09:00:00Z", "dev/svc/web", "one", false);
	hook_run(dir, "r1", "2026-12-05T10:00:00Z", NULL, false);
	assert_string_equal(unfinished_run(dir, false), "r1");
	/* from the saved snapshot, its dev line alone */
	assert_string_equal(unfinished_run(dir, true), "r1");
	last = rc_engine_last_applied(dir, NULL);
	assert_null(json_object_get(last, "dev/" RC_UNFINISHED_KIND
					  "/migrate"));
	assert_non_null(json_object_get(last, "dev/svc/web"));
	json_decref(last);
	/* an attempt that could not tell settles nothing */
	hook_run(dir, "r2", "2026-12-05T11:00:00Z", "failed", true);
	assert_string_equal(unfinished_run(dir, true), "r1");
	/* a newer attempt left unfinished replaces it */
	hook_run(dir, "r3", "2026-12-05T12:00:00Z", NULL, false);
	assert_string_equal(unfinished_run(dir, true), "r3");
	/* an outcome settles it */
	hook_run(dir, "r4", "2026-12-05T13:00:00Z", "ok", false);
	assert_string_equal(unfinished_run(dir, true), "");
	assert_string_equal(unfinished_run(dir, false), "");
	tmpdir_remove(dir);
}

/* An unfinished hook is one action of the plan: alone when nothing
 * changed, merged into the hook the configuration plans otherwise. */
static void unfinished_hooks_planned_once(void **st)
{
	rc_resource_set desired = {0}, actual = {0};
	rc_plan_env env = {.env = "dev"};
	json_t *spec = json_pack("{s:s, s:[s]}", "name", "migrate", "run",
				 "./migrate");
	json_t *unf = json_pack("{s:{s:s, s:s, s:O, s:b}}", "dev/hook/migrate",
				"run", "r1", "action", "run:dev/hook/migrate",
				"spec", spec, "irreversible", 1);
	rc_plan_hook hook = {"dev", "migrate", true, spec, false};
	rc_plan_input in = {0};
	rc_plan p;
	rc_buf text = RC_BUF_INIT;

	(void)st;
	rc_resource_set_add(&desired, "dev", "local", "service", "web",
			    json_pack("{s:i}", "replicas", 1));
	rc_resource_set_add(&actual, "dev", "local", "service", "web",
			    json_pack("{s:i}", "replicas", 1));
	in.desired = &desired;
	in.actual = &actual;
	in.envs = &env;
	in.nenvs = 1;
	in.hooks = &hook;
	in.nhooks = 1;
	in.unfinished = unf;
	/* nothing changed: the carried hook alone */
	assert_int_equal(rc_plan_build(&p, &in), 0);
	assert_int_equal(p.n, 1);
	assert_int_equal(p.actions[0].op, RC_OP_RUN);
	assert_true(p.actions[0].irreversible);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(p.actions[0].desired,
						    "unfinished"),
				    "run")),
			    "r1");
	rc_plan_render_text(&p, &text, false);
	assert_non_null(strstr(text.ptr, "> hook migrate  (unfinished in run r1"));
	assert_null(strstr(text.ptr, "No changes"));
	rc_plan_release(&p);
	/* a change: the configuration's hook and the carried one merge */
	json_object_set_new(desired.items[0].body, "replicas", json_integer(2));
	assert_int_equal(rc_plan_build(&p, &in), 0);
	assert_int_equal(p.n, 2);
	assert_int_equal(p.actions[1].op, RC_OP_RUN);
	assert_non_null(json_object_get(p.actions[1].desired, "unfinished"));
	assert_int_equal(p.actions[1].ndeps, 1); /* after the change */
	rc_plan_release(&p);
	rc_buf_release(&text);
	rc_resource_set_release(&desired);
	rc_resource_set_release(&actual);
	json_decref(unf);
	json_decref(spec);
}

int test_group_snapshot(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(snapshot_used_while_journals_stand),
		cmocka_unit_test(snapshot_not_trusted_once_a_journal_moved),
		cmocka_unit_test(snapshot_brought_up_to_date_by_newer_runs),
		cmocka_unit_test(snapshot_read_for_one_environment),
		cmocka_unit_test(unfinished_hooks_replayed_and_settled),
		cmocka_unit_test(unfinished_hooks_planned_once),
	};
	return cmocka_run_group_tests_name("snapshot", tests, NULL, NULL);
}
