#include "tests/unit/helpers.h"

#include <sys/resource.h>

static void locations_are_kept(void **state)
{
	rc_diags d;
	rc_node *n = parse_one(&d, "a: 1\nsvc:\n  web:\n    image: x\n", NULL);
	rc_node *img;

	RC_UNUSED(state);
	assert_non_null(n);
	img = rc_node_get(rc_node_get(rc_node_get(n, "svc"), "web"), "image");
	assert_non_null(img);
	assert_string_equal(img->str, "x");
	assert_int_equal(img->loc.line, 4);
	assert_int_equal(img->loc.col, 12);
	assert_string_equal(img->loc.file, "t.yaml");
	assert_int_equal(rc_node_get_key(rc_node_get(rc_node_get(n, "svc"),
						     "web"),
					 "image")
				 ->span,
			 5);
	rc_node_free(n);
	rc_diags_release(&d);
}

static void scalars_follow_yaml_1_2_core(void **state)
{
	rc_diags d;
	rc_node *n = parse_one(&d,
			       "a: yes\nb: true\nc: 0x1F\nd: 1.5\ne: \"1\"\n"
			       "f: ~\ng:\nh: !!str 12\ni: on\nj: 1.2.3\n",
			       NULL);

	RC_UNUSED(state);
	assert_non_null(n);
	assert_int_equal(rc_node_scalar_type(rc_node_get(n, "a")), RC_SCALAR_STR);
	assert_int_equal(rc_node_scalar_type(rc_node_get(n, "b")), RC_SCALAR_BOOL);
	assert_int_equal(rc_node_scalar_type(rc_node_get(n, "c")), RC_SCALAR_INT);
	assert_int_equal(rc_node_scalar_type(rc_node_get(n, "d")), RC_SCALAR_FLOAT);
	assert_int_equal(rc_node_scalar_type(rc_node_get(n, "e")), RC_SCALAR_STR);
	assert_int_equal(rc_node_scalar_type(rc_node_get(n, "f")), RC_SCALAR_NULL);
	assert_int_equal(rc_node_scalar_type(rc_node_get(n, "g")), RC_SCALAR_NULL);
	assert_int_equal(rc_node_scalar_type(rc_node_get(n, "h")), RC_SCALAR_STR);
	assert_int_equal(rc_node_scalar_type(rc_node_get(n, "i")), RC_SCALAR_STR);
	assert_int_equal(rc_node_scalar_type(rc_node_get(n, "j")), RC_SCALAR_STR);
	rc_node_free(n);
	rc_diags_release(&d);
}

static void duplicate_keys_are_errors(void **state)
{
	rc_diags d;
	char *msg;
	rc_node *n = parse_one(&d, "a: 1\nb: 2\na: 3\n", &msg);

	RC_UNUSED(state);
	assert_null(n);
	assert_string_equal(msg, "t.yaml:3:1: error: duplicate key 'a' (first "
				 "at line 1)\n"
				 "     3 | a: 3\n"
				 "       | ^\n");
	free(msg);
	rc_diags_release(&d);
}

static void merge_keys_and_aliases(void **state)
{
	rc_diags d;
	rc_node *n = parse_one(&d,
			       "base: &b { image: x, replicas: 2 }\n"
			       "web:\n  <<: *b\n  replicas: 3\n"
			       "copy: *b\n",
			       NULL);
	rc_node *web;

	RC_UNUSED(state);
	assert_non_null(n);
	web = rc_node_get(n, "web");
	assert_string_equal(rc_node_get(web, "image")->str, "x");
	assert_string_equal(rc_node_get(web, "replicas")->str, "3");
	assert_string_equal(rc_node_get(rc_node_get(n, "copy"), "image")->str,
			    "x");
	rc_node_free(n);
	rc_diags_release(&d);
}

static void alias_bomb_is_rejected_in_bounded_memory(void **state)
{
	static const char bomb[] =
		"a: &a [x, x, x, x, x, x, x, x, x]\n"
		"b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
		"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
		"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
		"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
		"f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
		"g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
		"h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
		"i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
	struct rusage before, after;
	rc_diags d;
	char *msg;
	rc_node *n;

	RC_UNUSED(state);
	getrusage(RUSAGE_SELF, &before);
	n = parse_one(&d, bomb, &msg);
	getrusage(RUSAGE_SELF, &after);
	assert_null(n);
	assert_non_null(strstr(msg, "document too large: more than 250000 "
				    "nodes once aliases are expanded"));
	assert_non_null(strstr(msg, "t.yaml:6:"));
	/* the fully expanded document would be ~400 million nodes */
	assert_true(after.ru_maxrss - before.ru_maxrss < 200 * 1024);
	free(msg);
	rc_diags_release(&d);
}

static void nesting_depth_is_capped(void **state)
{
	rc_buf b = RC_BUF_INIT;
	rc_diags d;
	char *msg;
	int i;

	RC_UNUSED(state);
	for (i = 0; i < 100; i++)
		rc_buf_putc(&b, '[');
	for (i = 0; i < 100; i++)
		rc_buf_putc(&b, ']');
	assert_null(parse_one(&d, b.ptr, &msg));
	assert_non_null(strstr(msg, "t.yaml:1:65: error: nesting too deep "
				    "(the limit is 64 levels)"));
	free(msg);
	rc_diags_release(&d);
	rc_buf_release(&b);
}

static void invalid_utf8_is_located(void **state)
{
	rc_diags d;
	char *msg;

	RC_UNUSED(state);
	assert_null(parse_one(&d, "a: ok\nb: caf\xe9 x\n", &msg));
	assert_non_null(strstr(msg, "t.yaml:2:7: error: invalid UTF-8"));
	free(msg);
	rc_diags_release(&d);
	/* overlong and surrogate encodings too */
	assert_false(rc_utf8_valid("\xc0\xaf", 2, &(int){0}, &(int){0}));
	assert_false(rc_utf8_valid("\xed\xa0\x80", 3, &(int){0}, &(int){0}));
	assert_true(rc_utf8_valid("\xc3\xa9\xe2\x82\xac", 5, &(int){0},
				  &(int){0}));
}

static void syntax_errors_have_locations(void **state)
{
	rc_diags d;
	char *msg;

	RC_UNUSED(state);
	assert_null(parse_one(&d, "a: [1, 2\nb: 3\n", &msg));
	assert_non_null(strstr(msg, "t.yaml:2:"));
	assert_non_null(strstr(msg, "error: did not find expected ',' or ']'"));
	free(msg);
	rc_diags_release(&d);
}

static void unknown_alias_and_recursion(void **state)
{
	rc_diags d;
	char *msg;

	RC_UNUSED(state);
	assert_null(parse_one(&d, "a: *nope\n", &msg));
	assert_non_null(strstr(msg, "unknown alias '*nope'"));
	free(msg);
	rc_diags_release(&d);
	assert_null(parse_one(&d, "a: &x [1, *x]\n", &msg));
	assert_non_null(strstr(msg, "refers to a node that contains it"));
	free(msg);
	rc_diags_release(&d);
}

int test_group_node(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(locations_are_kept),
		cmocka_unit_test(scalars_follow_yaml_1_2_core),
		cmocka_unit_test(duplicate_keys_are_errors),
		cmocka_unit_test(merge_keys_and_aliases),
		cmocka_unit_test(alias_bomb_is_rejected_in_bounded_memory),
		cmocka_unit_test(nesting_depth_is_capped),
		cmocka_unit_test(invalid_utf8_is_located),
		cmocka_unit_test(syntax_errors_have_locations),
		cmocka_unit_test(unknown_alias_and_recursion),
	};
	return cmocka_run_group_tests_name("node", tests, NULL, NULL);
}
