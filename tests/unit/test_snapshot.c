/* The last-applied snapshot: used while the journals are those it was
 * made from, never once one of them moved. */
#include "tests/unit/helpers.h"
#include "reconciler/engine.h"
#include "state/journal.h"
#include "state/snapshot.h"

/* A run that applied key = {"v": value} (or deleted it: value NULL);
 * left open (no outcome) when open is true. */
static void run(const char *dir, const char *id, const char *time,
		const char *key, const char *value, bool open)
{
	rc_journal *j;
	json_t *r;

	assert_int_equal(rc_journal_create(&j, dir, id), 0);
	r = json_pack("{s:s, s:s, s:s, s:[s]}", "type", "run-start", "run", id,
		      "time", time, "environments", "dev");
	assert_int_equal(rc_journal_append(j, r), 0);
	json_decref(r);
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

int test_group_snapshot(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(snapshot_used_while_journals_stand),
		cmocka_unit_test(snapshot_not_trusted_once_a_journal_moved),
		cmocka_unit_test(snapshot_brought_up_to_date_by_newer_runs),
		cmocka_unit_test(snapshot_read_for_one_environment),
	};
	return cmocka_run_group_tests_name("snapshot", tests, NULL, NULL);
}
