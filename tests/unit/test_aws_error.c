/* The failed replies of AWS's JSON protocol (drivers/aws_error.h): the
 * error each kind of reply turns into, what is sent again, and a secret
 * AWS quotes back masked. */
#include "tests/unit/helpers.h"
#include "drivers/aws_error.h"
#include "reconciler/base/log.h"

/* The error of a reply (status, body text) to UpdateService. */
static int reply(long status, const char *body, rc_loc loc)
{
	json_t *j = json_loads(body, 0, NULL);
	int rc = rc_aws_reply_error("UpdateService", "ecs", status, j,
				    strlen(body), "text/html", "rid-1", loc);

	json_decref(j);
	return rc;
}

static void each_kind(void **state)
{
	rc_loc at = {.file = "services/web.yaml", .line = 3, .col = 5};

	RC_UNUSED(state);
	assert_int_equal(reply(400, "{\"__type\":\"com.amazonaws.ecs#"
				    "AccessDeniedException\",\"message\":"
				    "\"not authorized\"}", at),
			 RC_EAUTH);
	assert_string_equal(rc_error_last()->message,
			    "ecs: UpdateService was refused "
			    "(AccessDeniedException): not authorized; allow "
			    "the IAM action ecs:UpdateService to the caller "
			    "(request id rid-1)");
	assert_int_equal(reply(400, "{\"__type\":\"ServiceNotFoundException\","
				    "\"Message\":\"gone\"}", at),
			 RC_ERROR);
	assert_string_equal(rc_error_last()->message,
			    "ecs: UpdateService failed (HTTP 400 "
			    "ServiceNotFoundException): gone (request id "
			    "rid-1)");
	assert_int_equal(reply(400, "{\"__type\":\"ResourceNotFoundException\"}",
			       at),
			 RC_ENOTFOUND);
	assert_int_equal(reply(403, "{}", at), RC_EAUTH);
	assert_non_null(strstr(rc_error_last()->message, "(HTTP 403: )"));
	assert_int_equal(reply(400, "{\"__type\":\"InvalidParameterException\","
				    "\"message\":\"bad cpu\"}", at),
			 RC_EINVALID);
	assert_string_equal(rc_error_last()->loc.file, "services/web.yaml");
	assert_int_equal(reply(400, "{\"__type\":\"InvalidParameterException\","
				    "\"message\":\"bad cpu\"}", (rc_loc){0}),
			 RC_ERROR);
	/* a 2xx that is not JSON: its size and type, never the body */
	assert_int_equal(reply(200, "<html>login</html>", at), RC_ERROR);
	assert_string_equal(rc_error_last()->message,
			    "ecs: UpdateService: the reply was not JSON (HTTP "
			    "200, 18 bytes of text/html) (request id rid-1)");
	rc_error_clear();
}

static void retried(void **state)
{
	json_t *throttled = json_pack("{s:s}", "__type", "ThrottlingException");
	json_t *invalid = json_pack("{s:s}", "__type", "ClientException");

	RC_UNUSED(state);
	assert_true(rc_aws_error_retryable(400, throttled));
	assert_true(rc_aws_error_retryable(503, NULL));
	assert_false(rc_aws_error_retryable(400, invalid));
	assert_false(rc_aws_error_retryable(200, NULL));
	json_decref(throttled);
	json_decref(invalid);
}

/* AWS quotes a SecretString it refuses: the error masks it. The
 * reproducer of the fuzz finding (tests/fuzz/regressions-aws/). */
static void quoted_secret_masked(void **state)
{
	RC_UNUSED(state);
	rc_secret_register("s3cr3t-value-42");
	assert_int_equal(reply(400, "{\"__type\":\"InvalidParameterException\","
				    "\"message\":\"SecretString s3cr3t-value-42 "
				    "is not valid JSON\"}", (rc_loc){0}),
			 RC_ERROR);
	assert_null(strstr(rc_error_last()->message, "s3cr3t-value-42"));
	assert_non_null(strstr(rc_error_last()->message,
			       "SecretString (sensitive) is not valid JSON"));
	rc_secret_clear();
	rc_error_clear();
}

int test_group_aws_error(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(each_kind),
		cmocka_unit_test(retried),
		cmocka_unit_test(quoted_secret_masked),
	};

	return cmocka_run_group_tests_name("aws_error", tests, NULL, NULL);
}
