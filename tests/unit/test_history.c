#include "tests/unit/helpers.h"
#include "reconciler/base/error.h"
#include "state/history.h"
#include "state/journal.h"
#include "state/lock.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

/* A new run's journal with its run-start record; envs is NULL-ended. */
static rc_journal *start_run(const char *dir, const char *id,
			     const char *time, const char *const *envs)
{
	rc_journal *j;
	json_t *e = json_array(), *r;

	for (; *envs; envs++)
		json_array_append_new(e, json_string(*envs));
	assert_int_equal(rc_journal_create(&j, dir, id), 0);
	r = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:i, s:s}", "type",
		      "run-start", "run", id, "time", time, "commit",
		      "0123abc", "source", "/src", "environments", e, "host",
		      "h", "pid", 1, "command", "apply");
	assert_int_equal(rc_journal_append(j, r), 0);
	json_decref(r);
	return j;
}

static void add(rc_journal *j, const char *type, const char *action,
		const char *status)
{
	json_t *r = json_pack("{s:s, s:s}", "type", type, "action", action);

	if (status)
		json_object_set_new(r, "status", json_string(status));
	assert_int_equal(rc_journal_append(j, r), 0);
	json_decref(r);
}

static void end_run(rc_journal *j, const char *status)
{
	json_t *r = json_pack("{s:s, s:s, s:{}}", "type", "run-end", "status",
			      status, "counts");

	assert_int_equal(rc_journal_append(j, r), 0);
	json_decref(r);
	rc_journal_close(j);
}

static const char *const STAGING[] = {"staging", NULL};
static const char *const PROD[] = {"prod", NULL};
static const char *const BOTH[] = {"staging", "prod", NULL};

static rc_run_summary *load(const char *dir, const char *env, size_t *n)
{
	rc_run_summary *runs;

	assert_int_equal(rc_history_load(&runs, n, dir, env), 0);
	return runs;
}

static const rc_run_summary *find(const rc_run_summary *runs, size_t n,
				  const char *id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(runs[i].id, id))
			return &runs[i];
	fail_msg("run '%s' not listed", id);
	return NULL;
}

static void history_finished_runs(void **state)
{
	char *dir = tmpdir_new(), *text;
	rc_journal *j;
	rc_run_summary *runs;
	const rc_run_summary *r;
	json_t *js;
	size_t n;

	RC_UNUSED(state);
	j = start_run(dir, "r-ok", "2026-01-01T10:00:00Z", BOTH);
	add(j, "intent", "a1", NULL);
	add(j, "outcome", "a1", "ok");
	add(j, "intent", "a2", NULL);
	add(j, "outcome", "a2", "failed");
	add(j, "intent", "a3", NULL);
	add(j, "outcome", "a3", "skipped");
	add(j, "intent", "a4", NULL);
	add(j, "outcome", "a4", "ok");
	/* sent in an outage, its reply lost */
	add(j, "intent", "a5", NULL);
	add(j, "outcome", "a5", "unknown");
	end_run(j, "succeeded");
	j = start_run(dir, "r-failed", "2026-01-01T09:00:00Z", STAGING);
	add(j, "intent", "a1", NULL);
	add(j, "outcome", "a1", "failed");
	end_run(j, "failed");

	runs = load(dir, NULL, &n);
	assert_int_equal(n, 2);
	r = find(runs, n, "r-ok");
	assert_int_equal(r->status, RC_RUN_SUCCEEDED);
	assert_int_equal(r->ok, 2);
	assert_int_equal(r->failed, 1);
	assert_int_equal(r->skipped, 1);
	assert_int_equal(r->unknown, 1);
	assert_int_equal(r->pending, 0);
	assert_false(r->torn);
	assert_null(r->error);
	assert_string_equal(r->time, "2026-01-01T10:00:00Z");
	assert_string_equal(r->commit, "0123abc");
	assert_int_equal(r->nenvs, 2);
	assert_string_equal(r->envs[0], "staging");
	assert_string_equal(r->envs[1], "prod");

	js = rc_run_summary_json(r);
	text = json_dumps(js, JSON_COMPACT);
	assert_string_equal(
		text, "{\"id\":\"r-ok\",\"time\":\"2026-01-01T10:00:00Z\","
		      "\"commit\":\"0123abc\",\"environments\":[\"staging\","
		      "\"prod\"],\"status\":\"succeeded\",\"counts\":{\"ok\":2,"
		      "\"failed\":1,\"skipped\":1,\"unknown\":1,\"pending\":0},\"torn\":false,"
		      "\"error\":null}");
	free(text);
	json_decref(js);

	r = find(runs, n, "r-failed");
	assert_int_equal(r->status, RC_RUN_FAILED);
	assert_int_equal(r->failed, 1);
	assert_string_equal(rc_run_status_name(r->status), "failed");
	rc_history_free(runs, n);
	tmpdir_remove(dir);
}

static void history_interrupted_run(void **state)
{
	char *dir = tmpdir_new(), *path;
	rc_journal *j;
	rc_run_summary *runs;
	size_t n;
	int fd;

	RC_UNUSED(state);
	j = start_run(dir, "r-crash", "2026-01-01T10:00:00Z", PROD);
	add(j, "intent", "a1", NULL);
	add(j, "outcome", "a1", "ok");
	add(j, "intent", "a2", NULL);
	add(j, "intent", "a3", NULL);
	path = rc_strdup(rc_journal_path(j));
	rc_journal_close(j); /* as if killed: no run-end */

	runs = load(dir, NULL, &n);
	assert_int_equal(n, 1);
	assert_int_equal(runs[0].status, RC_RUN_INTERRUPTED);
	assert_int_equal(runs[0].pending, 2);
	assert_int_equal(runs[0].ok, 1);
	assert_false(runs[0].torn);
	rc_history_free(runs, n);

	/* killed inside an append: the same, and the tear is reported */
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "0123456789abcdef 40 {\"type\":\"out", 32),
			 32);
	close(fd);
	runs = load(dir, NULL, &n);
	assert_int_equal(n, 1);
	assert_int_equal(runs[0].status, RC_RUN_INTERRUPTED);
	assert_int_equal(runs[0].pending, 2);
	assert_true(runs[0].torn);
	assert_null(runs[0].error);
	rc_history_free(runs, n);
	free(path);
	tmpdir_remove(dir);
}

/* A child holding env's lock for run until killed. */
static pid_t hold_lock(const char *dir, const char *env, const char *run)
{
	int p[2];
	char ok = 0;
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		rc_lock *l;

		close(p[0]);
		alarm(60); /* never outlive a failed test */
		if (rc_lock_acquire(&l, dir, env, run) < 0 ||
		    write(p[1], "y", 1) != 1)
			_exit(3);
		for (;;)
			pause();
	}
	close(p[1]);
	assert_int_equal(read(p[0], &ok, 1), 1);
	close(p[0]);
	return pid;
}

static void history_running_run(void **state)
{
	char *dir = tmpdir_new(), *path;
	rc_journal *j;
	rc_run_summary *runs;
	size_t n;
	pid_t pid;
	int st, fd;

	RC_UNUSED(state);
	j = start_run(dir, "r-old", "2026-01-01T09:00:00Z", PROD);
	add(j, "intent", "a1", NULL);
	rc_journal_close(j);
	j = start_run(dir, "r-live", "2026-01-01T10:00:00Z", PROD);
	add(j, "intent", "a1", NULL);
	path = rc_strdup(rc_journal_path(j));
	rc_journal_close(j);

	pid = hold_lock(dir, "prod", "r-live");
	/* an append in progress */
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "0123456789abcdef 40 {\"ty", 25), 25);
	close(fd);
	runs = load(dir, NULL, &n);
	assert_int_equal(n, 2);
	assert_int_equal(find(runs, n, "r-live")->status, RC_RUN_RUNNING);
	assert_false(find(runs, n, "r-live")->torn);
	/* prod's lock is held, but for another run: this one died */
	assert_int_equal(find(runs, n, "r-old")->status, RC_RUN_INTERRUPTED);
	assert_string_equal(rc_run_status_name(RC_RUN_RUNNING), "running");
	rc_history_free(runs, n);

	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	runs = load(dir, NULL, &n);
	assert_int_equal(find(runs, n, "r-live")->status, RC_RUN_INTERRUPTED);
	assert_int_equal(find(runs, n, "r-live")->pending, 1);
	/* now that it is dead, the cut-off append is a torn tail */
	assert_true(find(runs, n, "r-live")->torn);
	rc_history_free(runs, n);
	free(path);
	tmpdir_remove(dir);
}

static void history_filters_by_environment(void **state)
{
	char *dir = tmpdir_new();
	rc_run_summary *runs;
	size_t n;

	RC_UNUSED(state);
	end_run(start_run(dir, "r-a", "2026-01-01T10:00:00Z", STAGING),
		"succeeded");
	end_run(start_run(dir, "r-b", "2026-01-02T10:00:00Z", PROD),
		"succeeded");
	end_run(start_run(dir, "r-c", "2026-01-03T10:00:00Z", BOTH),
		"failed");

	runs = load(dir, "prod", &n);
	assert_int_equal(n, 2);
	assert_string_equal(runs[0].id, "r-c");
	assert_string_equal(runs[1].id, "r-b");
	rc_history_free(runs, n);
	runs = load(dir, "staging", &n);
	assert_int_equal(n, 2);
	assert_string_equal(runs[0].id, "r-c");
	assert_string_equal(runs[1].id, "r-a");
	rc_history_free(runs, n);
	runs = load(dir, "dev", &n);
	assert_int_equal(n, 0);
	rc_history_free(runs, n);
	runs = load(dir, NULL, &n);
	assert_int_equal(n, 3);
	rc_history_free(runs, n);
	tmpdir_remove(dir);
}

static void history_lists_a_corrupt_journal(void **state)
{
	char *dir = tmpdir_new(), *path;
	rc_journal *j;
	rc_run_summary *runs;
	const rc_run_summary *r;
	json_t *js;
	rc_buf want = RC_BUF_INIT;
	off_t second;
	size_t n;
	int fd;
	char c;

	RC_UNUSED(state);
	end_run(start_run(dir, "r-1", "2026-01-01T10:00:00Z", STAGING),
		"succeeded");
	j = start_run(dir, "r-2", "2026-01-02T10:00:00Z", STAGING);
	add(j, "intent", "a1", NULL);
	add(j, "outcome", "a1", "ok");
	path = rc_strdup(rc_journal_path(j));
	end_run(j, "succeeded");
	end_run(start_run(dir, "r-3", "2026-01-03T10:00:00Z", STAGING),
		"succeeded");

	/* change one byte inside the second record (the intent) */
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	for (second = 0; pread(fd, &c, 1, second) == 1 && c != '\n';)
		second++;
	second++;
	assert_int_equal(pread(fd, &c, 1, second + 30), 1);
	c ^= 0x01;
	assert_int_equal(pwrite(fd, &c, 1, second + 30), 1);
	close(fd);
	rc_buf_printf(&want, "corrupt record at byte offset %lld: ",
		      (long long)second);

	runs = load(dir, "staging", &n);
	assert_int_equal(n, 3);
	assert_string_equal(runs[0].id, "r-3");
	assert_null(runs[0].error);
	assert_string_equal(runs[2].id, "r-1");
	assert_null(runs[2].error);
	r = find(runs, n, "r-2");
	assert_non_null(r->error);
	assert_non_null(strstr(r->error, want.ptr));
	/* what comes before the damage still counts */
	assert_string_equal(r->time, "2026-01-02T10:00:00Z");
	assert_non_null(strstr(r->error, "r-2.journal"));
	js = rc_run_summary_json(r);
	assert_string_equal(json_string_value(json_object_get(js, "error")),
			    r->error);
	json_decref(js);
	rc_history_free(runs, n);
	rc_buf_release(&want);
	free(path);
	tmpdir_remove(dir);
}

static void history_newest_first(void **state)
{
	char *dir = tmpdir_new();
	rc_run_summary *runs;
	size_t n;
	rc_journal *j;

	RC_UNUSED(state);
	/* written in no particular order; one time with an offset (09:30
	 * UTC, which a string comparison would put first) */
	end_run(start_run(dir, "r-a", "2020-01-01T09:00:00Z", STAGING),
		"succeeded");
	end_run(start_run(dir, "r-d", "2019-12-31T23:59:59Z", STAGING),
		"succeeded");
	end_run(start_run(dir, "r-b", "2020-01-01T11:30:00+02:00", STAGING),
		"succeeded");
	end_run(start_run(dir, "r-c", "2020-01-01T10:00:00.500Z", STAGING),
		"succeeded");
	/* one that died before its run-start: no time, no environments */
	assert_int_equal(rc_journal_create(&j, dir, "r-empty"), 0);
	rc_journal_close(j);

	runs = load(dir, NULL, &n);
	assert_int_equal(n, 5);
	/* the one without a time sorts by its file's mtime: now */
	assert_string_equal(runs[0].id, "r-empty");
	assert_null(runs[0].time);
	assert_int_equal(runs[0].status, RC_RUN_INTERRUPTED);
	assert_string_equal(runs[1].id, "r-c");
	assert_string_equal(runs[2].id, "r-b");
	assert_string_equal(runs[3].id, "r-a");
	assert_string_equal(runs[4].id, "r-d");
	rc_history_free(runs, n);
	/* its environments are unknown: it shows under every filter */
	runs = load(dir, "prod", &n);
	assert_int_equal(n, 1);
	assert_string_equal(runs[0].id, "r-empty");
	rc_history_free(runs, n);
	tmpdir_remove(dir);
}

static void history_without_runs(void **state)
{
	char *dir = tmpdir_new();
	rc_run_summary *runs;
	size_t n = 99;

	RC_UNUSED(state);
	runs = load(dir, NULL, &n);
	assert_int_equal(n, 0);
	rc_history_free(runs, n);
	tmpdir_remove(dir);
}

int test_group_history(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(history_finished_runs),
		cmocka_unit_test(history_interrupted_run),
		cmocka_unit_test(history_running_run),
		cmocka_unit_test(history_filters_by_environment),
		cmocka_unit_test(history_lists_a_corrupt_journal),
		cmocka_unit_test(history_newest_first),
		cmocka_unit_test(history_without_runs),
	};
	return cmocka_run_group_tests_name("history", tests, NULL, NULL);
}
