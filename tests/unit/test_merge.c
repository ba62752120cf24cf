#include "tests/unit/helpers.h"
#include "schema/emit.h"

/* Merges overlay onto base and returns the result as compact JSON. */
static char *merged(const char *base, const char *over)
{
	rc_diags d1, d2;
	rc_node *b = parse_one(&d1, base, NULL);
	rc_node *o = parse_one(&d2, over, NULL);
	rc_node *m;
	json_t *j;
	char *s;

	assert_non_null(b);
	assert_non_null(o);
	m = rc_node_merge(b, o);
	j = rc_node_to_json(m);
	s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	rc_node_free(m);
	rc_node_free(b);
	rc_node_free(o);
	rc_diags_release(&d1);
	rc_diags_release(&d2);
	return s;
}

static void maps_merge_recursively(void **state)
{
	char *s = merged("a: {x: 1, y: {p: 1, q: 2}}\nb: 1\n",
			 "a: {y: {q: 3, r: 4}, z: 5}\n");

	RC_UNUSED(state);
	assert_string_equal(s, "{\"a\":{\"x\":1,\"y\":{\"p\":1,\"q\":3,\"r\":4},"
			       "\"z\":5},\"b\":1}");
	free(s);
}

static void lists_replace(void **state)
{
	char *s = merged("args: [a, b, c]\n", "args: [d]\n");

	RC_UNUSED(state);
	assert_string_equal(s, "{\"args\":[\"d\"]}");
	free(s);
}

static void null_deletes(void **state)
{
	char *s = merged("a: {x: 1, y: 2}\nb: 3\n", "a: {x: null}\nb: ~\n");

	RC_UNUSED(state);
	assert_string_equal(s, "{\"a\":{\"y\":2}}");
	free(s);
}

static void scalar_replaces_map_and_back(void **state)
{
	char *s = merged("a: {x: 1}\nb: text\n", "a: flat\nb: {k: v}\n");

	RC_UNUSED(state);
	assert_string_equal(s, "{\"a\":\"flat\",\"b\":{\"k\":\"v\"}}");
	free(s);
}

static void nulls_in_base_are_dropped(void **state)
{
	char *s = merged("a: {x: ~, y: 1}\n", "b: 2\n");

	RC_UNUSED(state);
	assert_string_equal(s, "{\"a\":{\"y\":1},\"b\":2}");
	free(s);
}

static void inputs_are_untouched_and_locations_kept(void **state)
{
	rc_diags d1, d2;
	rc_node *b = parse_one(&d1, "a: {x: 1}\n", NULL);
	rc_node *o = parse_one(&d2, "\n\na: {y: 2}\n", NULL);
	rc_node *m = rc_node_merge(b, o);

	RC_UNUSED(state);
	assert_int_equal(rc_node_get(b, "a")->n, 1);
	assert_int_equal(rc_node_get(o, "a")->n, 1);
	assert_int_equal(rc_node_get(rc_node_get(m, "a"), "x")->loc.line, 1);
	assert_int_equal(rc_node_get(rc_node_get(m, "a"), "y")->loc.line, 3);
	rc_node_free(m);
	rc_node_free(b);
	rc_node_free(o);
	rc_diags_release(&d1);
	rc_diags_release(&d2);
}

int test_group_merge(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(maps_merge_recursively),
		cmocka_unit_test(lists_replace),
		cmocka_unit_test(null_deletes),
		cmocka_unit_test(scalar_replaces_map_and_back),
		cmocka_unit_test(nulls_in_base_are_dropped),
		cmocka_unit_test(inputs_are_untouched_and_locations_kept),
	};
	return cmocka_run_group_tests_name("merge", tests, NULL, NULL);
}
