/* The redactor's rules (reconciler/base/log.h): the minimum length, whole
 * fields, overlapping values, encoded forms, JSON texts and lines. */
#include "tests/unit/helpers.h"
#include "reconciler/base/codec.h"
#include "reconciler/base/log.h"

/* text redacted (a new string); json picks rc_redact_json(). */
static char *redacted(const char *text, bool json)
{
	rc_buf b = RC_BUF_INIT;

	rc_buf_puts(&b, text);
	if (json)
		rc_redact_json(&b);
	else
		rc_redact(&b);
	return rc_buf_detach(&b);
}

static void check(const char *text, const char *want, bool json)
{
	char *got = redacted(text, json);

	assert_string_equal(got, want);
	free(got);
}

static int clear(void **state)
{
	RC_UNUSED(state);
	rc_secret_clear();
	return 0;
}

static void short_secret_leaves_ordinary_text(void **state)
{
	RC_UNUSED(state);
	rc_secret_register("x");
	check("example text: the xylophone x-ray is 1.x, a_x, x1, ax",
	      "example text: the xylophone x-ray is 1.x, a_x, x1, ax", false);
	check("", "", false);
}

static void short_secret_masked_as_a_whole_field(void **state)
{
	RC_UNUSED(state);
	rc_secret_register("x");
	check("x", "(sensitive)", false);
	check("password x given", "password (sensitive) given", false);
	check("token=x&next=1", "token=(sensitive)&next=1", false);
	check("https://user:x@host/", "https://user:(sensitive)@host/",
	      false);
	check("'x' \"x\" (x) [x] {x} <x> a,x;b |x| #x ?x `x`",
	      "'(sensitive)' \"(sensitive)\" ((sensitive)) [(sensitive)] "
	      "{(sensitive)} <(sensitive)> a,(sensitive);b |(sensitive)| "
	      "#(sensitive) ?(sensitive) `(sensitive)`",
	      false);
	check("x\tx\nx", "(sensitive)\t(sensitive)\n(sensitive)", false);
	/* the same value twice in a row is one word, not two fields */
	check("xx x", "xx (sensitive)", false);
}

static void short_secret_with_delimiters_inside(void **state)
{
	RC_UNUSED(state);
	/* the value's own characters do not count as its boundary */
	rc_secret_register("a:b");
	check("a:b", "(sensitive)", false);
	check("key=a:b;", "key=(sensitive);", false);
	check("xa:b", "xa:b", false);
	check("a:bc", "a:bc", false);
}

static void seven_and_eight_bytes(void **state)
{
	RC_UNUSED(state);
	rc_secret_register("1234567");  /* short: whole fields only */
	rc_secret_register("abcdefgh"); /* RC_REDACT_MIN_LEN: everywhere */
	check("id 91234567 and 1234567", "id 91234567 and (sensitive)", false);
	check("xabcdefghx abcdefgh", "x(sensitive)x (sensitive)", false);
}

static void long_secret_masked_inside_words(void **state)
{
	RC_UNUSED(state);
	rc_secret_register("s3cr3t-token-value");
	check("Bearers3cr3t-token-values3cr3t-token-value!",
	      "Bearer(sensitive)!", false);
	check("a s3cr3t-token-valu b", "a s3cr3t-token-valu b", false);
}

static void overlapping_secrets_leave_nothing(void **state)
{
	RC_UNUSED(state);
	rc_secret_register("abcdefgh12");
	rc_secret_register("fgh12345xy");
	/* masked one after the other, "345xy" would be left */
	check("<abcdefgh12345xy>", "<(sensitive)>", false);
	/* one inside another */
	rc_secret_register("cdefgh");
	check("cdefgh abcdefgh12", "(sensitive) (sensitive)", false);
	/* adjacent hits are one mask */
	check("abcdefgh12abcdefgh12", "(sensitive)", false);
}

/* The base64 of value with flags (new string). */
static char *b64(const char *value, unsigned flags)
{
	rc_buf b = RC_BUF_INIT;

	rc_codec_base64_encode(&b, value, strlen(value), flags);
	return rc_buf_detach(&b);
}

static void base64_forms_masked(void **state)
{
	/* ">>>?" makes '+' and '/' in base64 and '-' and '_' in base64url */
	static const char value[] = ">>>?password>>?";
	static const unsigned flags[] = {0, RC_BASE64_NOPAD, RC_BASE64_URL,
					 RC_BASE64_URL | RC_BASE64_NOPAD};
	rc_buf text = RC_BUF_INIT;

	RC_UNUSED(state);
	rc_secret_register(value);
	for (size_t i = 0; i < RC_ARRAY_SIZE(flags); i++) {
		char *e = b64(value, flags[i]), *got;

		rc_buf_clear(&text);
		rc_buf_printf(&text, "Authorization: Basic %s;x", e);
		got = redacted(text.ptr, false);
		assert_string_equal(got, "Authorization: Basic (sensitive);x");
		free(got);
		free(e);
	}
	rc_buf_release(&text);
}

static void base64_of_a_short_value(void **state)
{
	char *e;

	RC_UNUSED(state);
	/* 6 bytes: 8 characters of base64, masked everywhere */
	rc_secret_register("pin123");
	e = b64("pin123", 0);
	assert_string_equal(e, "cGluMTIz");
	free(e);
	check("data:xcGluMTIzx", "data:x(sensitive)x", false);
	/* 1 byte: "eA==" is too short to be told from text */
	rc_secret_clear();
	rc_secret_register("x");
	check("eA== eA", "eA== eA", false);
}

static void percent_form_masked(void **state)
{
	RC_UNUSED(state);
	rc_secret_register("p@ss w/rd");
	check("postgres://u:p%40ss%20w%2Frd@db/x",
	      "postgres://u:(sensitive)@db/x", false);
	check("p@ss w/rd", "(sensitive)", false);
	/* a short value's percent form, once 8 bytes long, everywhere */
	rc_secret_register("q@abcde");
	check("a=xq%40abcdex", "a=x(sensitive)x", false);
}

static void json_texts(void **state)
{
	RC_UNUSED(state);
	rc_secret_register("1");
	rc_secret_register("x");
	/* a whole JSON string, a field inside one, not inside a word */
	check("{\"a\":\"x\",\"b\":\"the x here\",\"c\":\"xylophone\"}",
	      "{\"a\":\"(sensitive)\",\"b\":\"the (sensitive) here\","
	      "\"c\":\"xylophone\"}",
	      true);
	/* a number outside strings is left: the text stays JSON */
	check("{\"seq\":1,\"n\":[1,2],\"s\":\"1\"}",
	      "{\"seq\":1,\"n\":[1,2],\"s\":\"(sensitive)\"}", true);
	/* an escaped quote inside a string does not end it */
	check("{\"m\":\"say \\\"x\\\" \",\"k\":1}",
	      "{\"m\":\"say \\\"(sensitive)\\\" \",\"k\":1}", true);
	/* so do escaped line breaks; an escaped backslash binds */
	check("[\"a\\nx\\t\", \"a\\\\nx\"]",
	      "[\"a\\n(sensitive)\\t\", \"a\\\\nx\"]", true);
	/* the text rules would take the number */
	check("{\"seq\":1}", "{\"seq\":(sensitive)}", false);
}

static void json_log_lines(void **state)
{
	FILE *f = tmpfile();
	char line[512] = {0};

	RC_UNUSED(state);
	rc_secret_register("x");
	rc_secret_register("long-secret-value");
	rc_log_set_stream(f);
	rc_log_set_format(RC_LOG_JSON);
	RC_WARN("pw \"x\" for xylophone, key long-secret-value1");
	rc_log_set_format(RC_LOG_TEXT);
	RC_WARN("pw=x x-ray");
	rc_log_set_stream(NULL);
	rewind(f);
	assert_non_null(fgets(line, sizeof(line), f));
	assert_non_null(strstr(line, "\"message\":\"pw \\\"(sensitive)\\\" "
				     "for xylophone, key (sensitive)1\""));
	assert_non_null(strstr(line, "\"level\":\"warning\""));
	assert_non_null(fgets(line, sizeof(line), f));
	assert_string_equal(line, "warning: pw=(sensitive) x-ray\n");
	fclose(f);
}

int test_group_redact(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(short_secret_leaves_ordinary_text,
					  clear),
		cmocka_unit_test_teardown(short_secret_masked_as_a_whole_field,
					  clear),
		cmocka_unit_test_teardown(short_secret_with_delimiters_inside,
					  clear),
		cmocka_unit_test_teardown(seven_and_eight_bytes, clear),
		cmocka_unit_test_teardown(long_secret_masked_inside_words,
					  clear),
		cmocka_unit_test_teardown(overlapping_secrets_leave_nothing,
					  clear),
		cmocka_unit_test_teardown(base64_forms_masked, clear),
		cmocka_unit_test_teardown(base64_of_a_short_value, clear),
		cmocka_unit_test_teardown(percent_form_masked, clear),
		cmocka_unit_test_teardown(json_texts, clear),
		cmocka_unit_test_teardown(json_log_lines, clear),
	};
	return cmocka_run_group_tests_name("redact", tests, NULL, NULL);
}
