#include "tests/unit/helpers.h"
#include "reconciler/base/error.h"

static void buf_never_null(void **state)
{
	rc_buf b = RC_BUF_INIT;

	RC_UNUSED(state);
	assert_non_null(b.ptr);
	assert_string_equal(b.ptr, "");
	rc_buf_puts(&b, "abc");
	rc_buf_printf(&b, "-%d-%s", 42, "x");
	assert_string_equal(b.ptr, "abc-42-x");
	assert_int_equal(b.len, 8);
	rc_buf_release(&b);
	assert_non_null(b.ptr);
	assert_int_equal(b.len, 0);
}

static void buf_cap_is_enforced(void **state)
{
	rc_buf b = RC_BUF_INIT_MAX(10);

	RC_UNUSED(state);
	assert_int_equal(rc_buf_puts(&b, "0123456789"), 0);
	assert_int_equal(rc_buf_putc(&b, 'x'), RC_ETOOBIG);
	assert_true(b.toobig);
	assert_string_equal(b.ptr, "0123456789");
	/* stays failed until cleared */
	assert_int_equal(rc_buf_puts(&b, ""), RC_ETOOBIG);
	assert_non_null(rc_error_last());
	assert_non_null(strstr(rc_error_last()->message, "limit"));
	rc_buf_clear(&b);
	assert_int_equal(rc_buf_puts(&b, "ok"), 0);
	assert_string_equal(b.ptr, "ok");
	rc_buf_release(&b);
}

static void buf_printf_over_cap(void **state)
{
	rc_buf b = RC_BUF_INIT_MAX(8);

	RC_UNUSED(state);
	assert_int_equal(rc_buf_printf(&b, "%s", "123456789"), RC_ETOOBIG);
	assert_int_equal(b.len, 0);
	rc_buf_release(&b);
}

static void buf_detach_hands_over(void **state)
{
	rc_buf b = RC_BUF_INIT;
	char *s, *e;

	RC_UNUSED(state);
	rc_buf_putn(&b, 'z', 3);
	s = rc_buf_detach(&b);
	assert_string_equal(s, "zzz");
	assert_int_equal(b.len, 0);
	e = rc_buf_detach(&b); /* an empty buffer gives a new "" */
	assert_string_equal(e, "");
	free(s);
	free(e);
}

static void error_prefix_keeps_lower_message(void **state)
{
	RC_UNUSED(state);
	rc_error_set(RC_ENOTFOUND, RC_ECLASS_OS, "cannot open '%s'", "x");
	rc_error_prefix("loading %s", "env");
	assert_string_equal(rc_error_last()->message,
			    "loading env: cannot open 'x'");
	assert_int_equal(rc_error_last()->code, RC_ENOTFOUND);
	rc_error_clear();
	assert_null(rc_error_last());
}

int test_group_buf(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(buf_never_null),
		cmocka_unit_test(buf_cap_is_enforced),
		cmocka_unit_test(buf_printf_over_cap),
		cmocka_unit_test(buf_detach_hands_over),
		cmocka_unit_test(error_prefix_keeps_lower_message),
	};
	return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
