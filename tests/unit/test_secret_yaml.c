#include "tests/unit/helpers.h"
#include "reconciler/base/error.h"
#include "reconciler/cli/secret_yaml.h"

static const char doc[] =
	"# the team's secrets\n"
	"recipients:\n"
	"  - age1abc # alice\n"
	"environments:\n"
	"  prod:\n"
	"    hooks:\n"
	"      script: |\n"
	"        encrypted: |\n"
	"          not a value\n"
	"    secrets:\n"
	"      # the database\n"
	"      DB:\n"
	"        encrypted: |\n"
	"          -----BEGIN AGE ENCRYPTED FILE-----\n"
	"          AAAA\n"
	"\n"
	"          -----END AGE ENCRYPTED FILE-----\n"
	"\n"
	"      \"API KEY\": {env: API}\n"
	"      TOKEN:\n"
	"          encrypted: |2   # two more\n"
	"            -----BEGIN\n"
	"            x\n"
	"  staging:\n"
	"    secrets: {A: {env: A}}\n"
	"notify:\n"
	"  - name: chat\n"
	"    url:\n"
	"      encrypted: |-\n"
	"        B\n"
	"        C";

static void secret_yaml_finds_blocks(void **state)
{
	rc_yaml_block *b;
	size_t n;
	rc_buf d = RC_BUF_INIT;

	RC_UNUSED(state);
	rc_yaml_blocks_find(doc, strlen(doc), &b, &n);
	assert_int_equal(n, 3);
	assert_int_equal(b[0].line, 13);
	assert_int_equal(b[0].indent, 10);
	assert_string_equal(b[0].value,
			    "-----BEGIN AGE ENCRYPTED FILE-----\nAAAA\n\n"
			    "-----END AGE ENCRYPTED FILE-----\n");
	rc_yaml_block_describe(&d, &b[0]);
	assert_string_equal(d.ptr, "environments.prod.secrets.DB");
	/* the trailing blank line is not part of the replaced span */
	assert_int_equal(doc[b[0].end], '\n');
	assert_int_equal(doc[b[0].end + 1], ' ');

	assert_int_equal(b[1].line, 21);
	assert_int_equal(b[1].indent, 12);
	assert_string_equal(b[1].value, "-----BEGIN\nx\n");
	rc_buf_clear(&d);
	rc_yaml_block_describe(&d, &b[1]);
	assert_string_equal(d.ptr, "environments.prod.secrets.TOKEN");

	assert_int_equal(b[2].line, 29);
	assert_string_equal(b[2].value, "B\nC\n");
	rc_buf_clear(&d);
	rc_yaml_block_describe(&d, &b[2]);
	assert_string_equal(d.ptr, "notify.-.url");
	assert_int_equal(b[2].end, strlen(doc));
	rc_buf_release(&d);
	rc_yaml_blocks_free(b, n);
}

static void secret_yaml_replaces_only_blocks(void **state)
{
	rc_yaml_block *b;
	size_t n;
	rc_buf out = RC_BUF_INIT, want = RC_BUF_INIT;
	const char *vals[3] = {"N1\nN2\n", NULL, "Z\n"};
	const char *p;

	RC_UNUSED(state);
	rc_yaml_blocks_find(doc, strlen(doc), &b, &n);
	assert_int_equal(n, 3);
	rc_yaml_blocks_replace(&out, doc, strlen(doc), b, n, vals);
	/* what comes before and after each replaced span is unchanged */
	rc_buf_put(&want, doc, b[0].start);
	rc_buf_puts(&want, "          N1\n          N2\n");
	rc_buf_put(&want, doc + b[0].end, b[2].start - b[0].end);
	rc_buf_puts(&want, "        Z"); /* the file ended without a newline */
	assert_string_equal(out.ptr, want.ptr);
	p = strstr(out.ptr, "      # the database\n      DB:\n        encrypted: |\n          N1\n");
	assert_non_null(p);
	rc_buf_release(&out);
	rc_buf_release(&want);
	rc_yaml_blocks_free(b, n);
}

static void secret_yaml_none(void **state)
{
	static const char t[] = "a: |\n  encrypted: |\n    x\nb: {encrypted: x}\n"
				"c:\n  encrypted: \"y\"\n";
	rc_yaml_block *b;
	size_t n;

	RC_UNUSED(state);
	rc_yaml_blocks_find(t, strlen(t), &b, &n);
	assert_int_equal(n, 0);
	rc_yaml_blocks_free(b, n);
	rc_yaml_blocks_find("", 0, &b, &n);
	assert_int_equal(n, 0);
	rc_yaml_blocks_free(b, n);
}

static char *put(const char *text, const char *const *path, size_t n,
		 const char *name, int *rc)
{
	rc_buf out = RC_BUF_INIT;

	*rc = rc_yaml_secret_put(&out, text, strlen(text), path, n, name,
				 "-----BEGIN X-----\nQQ==\n-----END X-----\n");
	return rc_buf_detach(&out);
}

static void secret_yaml_put_entries(void **state)
{
	static const char *const top[] = {NULL};
	static const char *const prod[] = {"environments", "prod"};
	static const char *const flow[] = {"environments", "flow"};
	static const char envfile[] = "# prod\nsecrets:\n  # a\n  A: {env: A}\n"
				      "  B:\n    env: B\n\n# end\ntarget: x\n";
	static const char root[] = "environments:\n  prod:\n    target: x # t\n"
				   "  flow: {file: f}\n  other:\n    secrets: {}\n";
	char *got;
	int rc;

	RC_UNUSED(state);
	/* a new entry after the last one, comments kept */
	got = put(envfile, top, 0, "C", &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(got, "# prod\nsecrets:\n  # a\n  A: {env: A}\n"
				 "  B:\n    env: B\n  C:\n    encrypted: |\n"
				 "      -----BEGIN X-----\n      QQ==\n"
				 "      -----END X-----\n\n# end\ntarget: x\n");
	free(got);
	/* an existing entry replaced, one line or several */
	got = put(envfile, top, 0, "A", &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(got, "# prod\nsecrets:\n  # a\n  A:\n"
				 "    encrypted: |\n      -----BEGIN X-----\n"
				 "      QQ==\n      -----END X-----\n  B:\n"
				 "    env: B\n\n# end\ntarget: x\n");
	free(got);
	got = put(envfile, top, 0, "B", &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(got, "  A: {env: A}\n  B:\n    encrypted: |\n"));
	assert_null(strstr(got, "env: B"));
	free(got);
	/* no secrets yet: a new mapping at the end of the environment */
	got = put(root, prod, 2, "DB", &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(got, "environments:\n  prod:\n    target: x # t\n"
				 "    secrets:\n      DB:\n        encrypted: |\n"
				 "          -----BEGIN X-----\n          QQ==\n"
				 "          -----END X-----\n"
				 "  flow: {file: f}\n  other:\n    secrets: {}\n");
	free(got);
	/* flow style and missing mappings are refused */
	got = put(root, flow, 2, "DB", &rc);
	assert_int_equal(rc, RC_EINVALID);
	free(got);
	{
		static const char *const other[] = {"environments", "other"};
		static const char *const none[] = {"environments", "none"};

		got = put(root, other, 2, "DB", &rc);
		assert_int_equal(rc, RC_EINVALID);
		free(got);
		got = put(root, none, 2, "DB", &rc);
		assert_int_equal(rc, RC_EINVALID);
		free(got);
	}
	/* a file without a final newline */
	got = put("secrets:\n  A: {env: A}", top, 0, "B", &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(got, "secrets:\n  A: {env: A}\n  B:\n    encrypted: |\n"
				 "      -----BEGIN X-----\n      QQ==\n"
				 "      -----END X-----\n");
	free(got);
	rc_error_clear();
}

int test_group_secret_yaml(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(secret_yaml_finds_blocks),
		cmocka_unit_test(secret_yaml_replaces_only_blocks),
		cmocka_unit_test(secret_yaml_none),
		cmocka_unit_test(secret_yaml_put_entries),
	};

	return cmocka_run_group_tests_name("secret_yaml", tests, NULL, NULL);
}
