#include "tests/unit/helpers.h"
#include "reconciler/base/log.h"

static int calls;

static const char *count_call(void)
{
	calls++;
	return "x";
}

static void level_checked_before_arguments(void **state)
{
	FILE *f = tmpfile();

	RC_UNUSED(state);
	rc_log_set_stream(f);
	rc_log_threshold = RC_LOG_WARN;
	calls = 0;
	RC_DEBUG("%s", count_call());
	assert_int_equal(calls, 0);
	RC_WARN("%s", count_call());
	assert_int_equal(calls, 1);
	rc_log_set_stream(NULL);
	fclose(f);
}

static void secrets_never_reach_the_log(void **state)
{
	FILE *f = tmpfile();
	char line[256] = {0};

	RC_UNUSED(state);
	rc_log_set_stream(f);
	rc_secret_register("s3cr3t-token-value");
	RC_WARN("auth failed with token %s for %s", "s3cr3t-token-value",
		"app");
	rewind(f);
	assert_non_null(fgets(line, sizeof(line), f));
	assert_string_equal(line, "warning: auth failed with token "
				  "(sensitive) for app\n");
	rc_secret_clear();
	rc_log_set_stream(NULL);
	fclose(f);
}

static void redact_every_occurrence(void **state)
{
	rc_buf b = RC_BUF_INIT;

	RC_UNUSED(state);
	rc_secret_register("abcdefgh");
	rc_buf_puts(&b, "abcdefgh-abcdefgh-xabcdefghx");
	rc_redact(&b);
	assert_string_equal(b.ptr,
			    "(sensitive)-(sensitive)-x(sensitive)x");
	rc_secret_clear();
	rc_buf_release(&b);
}

int test_group_log(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(level_checked_before_arguments),
		cmocka_unit_test(secrets_never_reach_the_log),
		cmocka_unit_test(redact_every_occurrence),
	};
	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
