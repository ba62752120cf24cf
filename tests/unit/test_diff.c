#include "tests/unit/helpers.h"
#include "reconciler/diff.h"

static json_t *J(const char *text)
{
	json_error_t e;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &e);

	assert_non_null(v);
	return v;
}

static void pointer_patterns(void **state)
{
	RC_UNUSED(state);
	assert_true(rc_pointer_match("/replicas", "/replicas"));
	assert_true(rc_pointer_match("/env", "/env/LOG_LEVEL"));
	assert_true(rc_pointer_match("/env/*", "/env/LOG_LEVEL"));
	assert_true(rc_pointer_match("/spec/*/image", "/spec/web/image"));
	assert_false(rc_pointer_match("/env/*", "/env"));
	assert_false(rc_pointer_match("/replicas", "/replicas2"));
	assert_false(rc_pointer_match("/spec/*/image", "/spec/web/port"));
}

static void applying_changes_gives_desired(void **state)
{
	json_t *d = J("{\"a\": 1, \"m\": {\"x\": 1, \"y\": [1, 2]}, \"s\": \"t\"}");
	json_t *l = J("{\"a\": 1, \"m\": {\"x\": 1, \"gone\": 3}}");
	json_t *a = J("{\"a\": 2, \"m\": {\"x\": 1, \"gone\": 3, \"theirs\": 4}, "
		      "\"server\": true}");
	json_t *want = J("{\"a\": 1, \"m\": {\"x\": 1, \"theirs\": 4, \"y\": "
			 "[1, 2]}, \"server\": true, \"s\": \"t\"}");
	rc_changes c = {0}, again = {0};
	json_t *got;

	RC_UNUSED(state);
	rc_diff(&c, d, l, a, NULL, 0);
	assert_int_equal(c.n, 4); /* a, m.y, m.gone, s */
	got = rc_changes_apply(a, &c);
	assert_true(rc_json_equal(got, want));
	/* and then there is nothing left to do */
	rc_diff(&again, d, l, got, NULL, 0);
	assert_int_equal(again.n, 0);
	rc_changes_release(&c);
	rc_changes_release(&again);
	json_decref(got);
	json_decref(want);
	json_decref(d);
	json_decref(l);
	json_decref(a);
}

static void keys_with_slashes_are_escaped(void **state)
{
	json_t *d = J("{\"labels\": {\"app.kubernetes.io/name\": \"web\"}}");
	json_t *a = J("{\"labels\": {}}");
	rc_changes c = {0};

	RC_UNUSED(state);
	rc_diff(&c, d, NULL, a, NULL, 0);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.items[0].path, "/labels/app.kubernetes.io~1name");
	{
		rc_buf b = RC_BUF_INIT;

		rc_pointer_dotted(&b, c.items[0].path);
		assert_string_equal(b.ptr, "labels.app.kubernetes.io/name");
		rc_buf_clear(&b);
		rc_pointer_dotted(&b, "");
		assert_string_equal(b.ptr, "(all)");
		rc_buf_release(&b);
	}
	rc_changes_release(&c);
	json_decref(d);
	json_decref(a);
}

int test_group_diff(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pointer_patterns),
		cmocka_unit_test(applying_changes_gives_desired),
		cmocka_unit_test(keys_with_slashes_are_escaped),
	};
	return cmocka_run_group_tests_name("diff", tests, NULL, NULL);
}
