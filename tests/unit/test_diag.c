#include "tests/unit/helpers.h"
#include "reconciler/base/log.h"

static void edit_distance_basics(void **state)
{
	RC_UNUSED(state);
	assert_int_equal(rc_edit_distance("replica", "replicas", 3), 1);
	assert_int_equal(rc_edit_distance("kitten", "sitting", 5), 3);
	assert_int_equal(rc_edit_distance("abc", "abc", 1), 0);
	assert_true(rc_edit_distance("a", "zzzzzz", 2) > 2);
}

static void did_you_mean_picks_closest(void **state)
{
	static const char *const keys[] = {"image", "replicas", "port",
					   "health"};

	RC_UNUSED(state);
	assert_string_equal(rc_did_you_mean("replica", keys, 4), "replicas");
	assert_string_equal(rc_did_you_mean("imgae", keys, 4), "image");
	assert_null(rc_did_you_mean("database", keys, 4));
}

static void format_with_caret(void **state)
{
	rc_diags d;
	rc_buf out = RC_BUF_INIT;
	rc_loc loc;

	RC_UNUSED(state);
	rc_diags_init(&d);
	loc.file = rc_diags_add_source(&d, "a.yaml",
				       rc_strdup("x: 1\n\tkey: value\n"), 18);
	loc.line = 2;
	loc.col = 2;
	rc_diag_error(&d, loc, 3, "unknown key '%s'", "key");
	rc_diags_format(&d, &out, false);
	assert_string_equal(out.ptr, "a.yaml:2:2: error: unknown key 'key'\n"
				     "     2 | \tkey: value\n"
				     "       | \t^~~\n");
	rc_buf_release(&out);
	rc_diags_release(&d);
}

static void sensitive_lines_are_redacted(void **state)
{
	rc_diags d;
	rc_buf out = RC_BUF_INIT;
	rc_loc loc;

	RC_UNUSED(state);
	rc_diags_init(&d);
	loc.file = rc_diags_add_source(
		&d, "s.yaml", rc_strdup("secrets:\n  PW: hunter2-x\n"), 24);
	loc.line = 2;
	loc.col = 7;
	rc_diags_add(&d, RC_DIAG_ERROR, loc, 9, true, "literal secret");
	rc_diags_format(&d, &out, false);
	assert_null(strstr(out.ptr, "hunter2"));
	assert_non_null(strstr(out.ptr, "PW: <redacted>"));
	rc_buf_release(&out);
	rc_diags_release(&d);
}

static void diags_dedupe_and_sort(void **state)
{
	rc_diags d;
	rc_loc a = {"b.yaml", 3, 1}, b = {"a.yaml", 9, 1}, c = {"b.yaml", 1, 4};

	RC_UNUSED(state);
	rc_diags_init(&d);
	rc_diag_error(&d, a, 1, "one");
	rc_diag_error(&d, a, 1, "one");
	rc_diag_error(&d, b, 1, "two");
	rc_diag_warning(&d, c, 1, "three");
	assert_int_equal(d.n, 3);
	assert_int_equal(d.nerrors, 2);
	assert_int_equal(d.nwarnings, 1);
	rc_diags_sort(&d);
	assert_string_equal(d.items[0].message, "two");
	assert_string_equal(d.items[1].message, "three");
	assert_string_equal(d.items[2].message, "one");
	rc_diags_release(&d);
}

int test_group_diag(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(edit_distance_basics),
		cmocka_unit_test(did_you_mean_picks_closest),
		cmocka_unit_test(format_with_caret),
		cmocka_unit_test(sensitive_lines_are_redacted),
		cmocka_unit_test(diags_dedupe_and_sort),
	};
	return cmocka_run_group_tests_name("diag", tests, NULL, NULL);
}
