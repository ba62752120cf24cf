/*
 * Fuzz target for the failed replies of AWS's JSON protocol
 * (drivers/aws_error.c), as the ECS driver's request loop reads them
 * (ECS and Secrets Manager). An optional first line "NNN" is the reply's
 * status (else one of the statuses AWS answers, by the input's size), the
 * rest its body, parsed as JSON (NULL when it is not). The body's error
 * type and message are read, whether the call would be sent again, and
 * the error the driver reports for it, for an ECS and a Secrets Manager
 * call, with and without a place in the configuration. A canary secret
 * is registered before each input (tests/fuzz/fuzz_canary.h): an error
 * holding it aborts.
 */
#include "reconciler/base/common.h"
#include "reconciler/base/error.h"
#include "drivers/aws_error.h"

#include "tests/fuzz/fuzz_canary.h"
#include "tests/fuzz/fuzz_status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long statuses[] = {200, 400, 403, 404, 429, 500, 503};
	long status = statuses[size % RC_ARRAY_SIZE(statuses)];
	rc_loc here = {.file = "services/web.yaml", .line = 3, .col = 5};
	const char *type, *msg;
	json_t *j;

	rc_fuzz_canary_register();
	rc_fuzz_status(&data, &size, &status);
	j = json_loadb((const char *)data, size, 0, NULL);
	type = rc_aws_error_type(j);
	msg = rc_aws_error_message(j);
	if (!type || !msg)
		abort();
	(void)rc_aws_error_retryable(status, j);
	if (rc_aws_reply_error("UpdateService", "ecs", status, j, size,
			       "application/x-amz-json-1.1",
			       "0a1b2c3d-request", here) >= 0)
		abort();
	rc_fuzz_canary_check("an ECS call");
	if (rc_aws_reply_error("GetSecretValue", "secretsmanager", status, j,
			       size, NULL, NULL, (rc_loc){0}) >= 0)
		abort();
	rc_fuzz_canary_check("a Secrets Manager call");
	json_decref(j);
	rc_error_clear();
	rc_secret_clear();
	return 0;
}
