#include "tests/unit/helpers.h"
#include "reconciler/base/error.h"
#include "state/lock.h"

#include <signal.h>
#include <sys/wait.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void hostname(char *out, size_t n)
{
	assert_int_equal(gethostname(out, n - 1), 0);
	out[n - 1] = '\0';
}

/* "environment '<env>' is locked by pid <pid> on host <host> since " */
static char *holder_prefix(const char *env, pid_t pid)
{
	rc_buf b = RC_BUF_INIT;
	char host[256];

	hostname(host, sizeof(host));
	rc_buf_printf(&b,
		      "environment '%s' is locked by pid %ld on host %s since ",
		      env, (long)pid, host);
	return rc_buf_detach(&b);
}

/* Reads everything a child wrote to fd (new string). */
static char *read_all(int fd)
{
	rc_buf b = RC_BUF_INIT;
	char chunk[512];
	ssize_t n;

	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		rc_buf_put(&b, chunk, (size_t)n);
	return rc_buf_detach(&b);
}

/* In a child: tries to take env's lock and reports "<code>\n<message>"
 * on the pipe. */
static char *acquire_in_child(const char *dir, const char *env)
{
	int p[2], st;
	pid_t pid;
	char *out;

	assert_int_equal(pipe(p), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		rc_buf b = RC_BUF_INIT;
		rc_lock *l;
		int r = rc_lock_acquire(&l, dir, env, "child-run");

		close(p[0]);
		rc_buf_printf(&b, "%d\n%s", r,
			      r < 0 ? rc_error_last()->message : "");
		if (write(p[1], b.ptr, b.len) < 0)
			_exit(2);
		_exit(0);
	}
	close(p[1]);
	out = read_all(p[0]);
	close(p[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return out;
}

/* A child that takes env's lock and sleeps until killed. */
static pid_t holder_child(const char *dir, const char *env, const char *run)
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
		if (rc_lock_acquire(&l, dir, env, run) < 0)
			_exit(3);
		if (write(p[1], "y", 1) != 1)
			_exit(4);
		for (;;)
			pause();
	}
	close(p[1]);
	assert_int_equal(read(p[0], &ok, 1), 1);
	assert_int_equal(ok, 'y');
	close(p[0]);
	return pid;
}

static void lock_excludes_another_process(void **state)
{
	char *dir = tmpdir_new(), *got, *want;
	rc_lock *l;

	RC_UNUSED(state);
	assert_int_equal(rc_lock_acquire(&l, dir, "staging", "run-17"), 0);
	got = acquire_in_child(dir, "staging");
	want = holder_prefix("staging", getpid());
	assert_int_equal(strncmp(got, "-7\n", 3), 0); /* RC_ELOCKED */
	if (strncmp(got + 3, want, strlen(want)))
		fail_msg("expected '%s...', got '%s'", want, got + 3);
	/* since <RFC 3339 time> (run <id>) */
	assert_true(isdigit((unsigned char)got[3 + strlen(want)]));
	assert_non_null(strstr(got, "Z (run run-17)"));
	free(got);
	free(want);

	/* another environment is another lock */
	got = acquire_in_child(dir, "production");
	assert_string_equal(got, "0\n");
	free(got);

	rc_lock_release(l);
	got = acquire_in_child(dir, "staging");
	assert_string_equal(got, "0\n");
	free(got);
	tmpdir_remove(dir);
}

static void lock_dies_with_its_holder(void **state)
{
	char *dir = tmpdir_new(), *want;
	rc_lock *l = NULL;
	pid_t pid;
	double t0;
	int st;

	RC_UNUSED(state);
	pid = holder_child(dir, "prod", "run-9");
	assert_true(rc_lock_is_held(dir, "prod"));
	assert_int_equal(rc_lock_acquire(&l, dir, "prod", "mine"), RC_ELOCKED);
	assert_null(l);
	want = holder_prefix("prod", pid);
	if (strncmp(rc_error_last()->message, want, strlen(want)))
		fail_msg("expected '%s...', got '%s'", want,
			 rc_error_last()->message);
	free(want);

	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_false(rc_lock_is_held(dir, "prod"));
	/* taken over at once: no staleness timeout, no waiting */
	t0 = now_s();
	assert_int_equal(rc_lock_acquire(&l, dir, "prod", "mine"), 0);
	assert_true(now_s() - t0 < 0.5);
	assert_true(rc_lock_is_held(dir, "prod"));
	rc_lock_release(l);
	tmpdir_remove(dir);
}

static void lock_release_and_reacquire(void **state)
{
	char *dir = tmpdir_new(), *want;
	rc_lock *l, *l2;
	json_t *h;

	RC_UNUSED(state);
	assert_false(rc_lock_is_held(dir, "dev")); /* no file yet */
	assert_null(rc_lock_holder(dir, "dev"));
	assert_int_equal(rc_lock_acquire(&l, dir, "dev", NULL), 0);
	assert_true(rc_lock_is_held(dir, "dev"));
	h = rc_lock_holder(dir, "dev");
	assert_non_null(h);
	assert_int_equal(json_integer_value(json_object_get(h, "pid")),
			 getpid());
	assert_true(json_is_null(json_object_get(h, "run")));
	json_decref(h);

	/* a second lock in the same process is refused too */
	assert_int_equal(rc_lock_acquire(&l2, dir, "dev", NULL), RC_ELOCKED);
	want = holder_prefix("dev", getpid());
	assert_int_equal(strncmp(rc_error_last()->message, want, strlen(want)),
			 0);
	assert_null(strstr(rc_error_last()->message, "(run"));
	free(want);

	rc_lock_release(l);
	assert_false(rc_lock_is_held(dir, "dev"));
	assert_null(rc_lock_holder(dir, "dev"));
	assert_int_equal(rc_lock_acquire(&l, dir, "dev", "again"), 0);
	assert_true(rc_lock_is_held(dir, "dev"));
	rc_lock_release(l);
	assert_false(rc_lock_is_held(dir, "dev"));
	rc_lock_release(NULL);
	tmpdir_remove(dir);
}

/* rc_lock_is_held() probes with a shared lock: a taker running at the same
 * time must not mistake the probe for a holder. */
static void lock_probe_never_refuses_a_taker(void **state)
{
	char *dir = tmpdir_new(), *failed = NULL;
	rc_lock *l;
	pid_t pid;
	int i, st;

	RC_UNUSED(state);
	assert_int_equal(rc_lock_acquire(&l, dir, "qa", NULL), 0);
	rc_lock_release(l);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(60); /* never outlive a failed test */
		for (;;)
			(void)rc_lock_is_held(dir, "qa");
	}
	for (i = 0; i < 300; i++) {
		if (rc_lock_acquire(&l, dir, "qa", NULL) != 0) {
			failed = rc_strdup(rc_error_last()->message);
			break;
		}
		rc_lock_release(l);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	if (failed)
		fail_msg("attempt %d: %s", i, failed);
	tmpdir_remove(dir);
}

static void lock_names_are_checked(void **state)
{
	static const char *bad[] = {"", ".", "..", "../etc", "a/b", "/abs",
				    ".hidden", "sp ace"};
	char *dir = tmpdir_new();
	rc_buf p = RC_BUF_INIT;
	rc_lock *l;
	struct stat st;
	size_t i;

	RC_UNUSED(state);
	for (i = 0; i < RC_ARRAY_SIZE(bad); i++) {
		assert_int_equal(rc_lock_acquire(&l, dir, bad[i], NULL),
				 RC_EINVALID);
		assert_null(l);
		assert_false(rc_lock_is_held(dir, bad[i]));
	}
	/* nothing was created, not even the locks directory */
	rc_buf_printf(&p, "%s/locks", dir);
	assert_int_equal(stat(p.ptr, &st), -1);
	rc_buf_release(&p);
	tmpdir_remove(dir);
}

int test_group_lock(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lock_excludes_another_process),
		cmocka_unit_test(lock_dies_with_its_holder),
		cmocka_unit_test(lock_release_and_reacquire),
		cmocka_unit_test(lock_probe_never_refuses_a_taker),
		cmocka_unit_test(lock_names_are_checked),
	};
	return cmocka_run_group_tests_name("lock", tests, NULL, NULL);
}
