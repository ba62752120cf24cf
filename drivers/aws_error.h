/*
 * The failed replies of AWS's JSON protocol (awsJson1_1: ECS, Secrets
 * Manager), read without network: the error type ("__type", its
 * namespace dropped), the message ("message" or "Message"), whether the
 * call is worth sending again, and the error the driver reports. The body
 * itself never goes into a message, only its "message" field (AWS's
 * explanation); a reply that is not JSON is described by its size and
 * content type.
 */
#ifndef RC_DRIVERS_AWS_ERROR_H
#define RC_DRIVERS_AWS_ERROR_H

#include <jansson.h>

#include "reconciler/base/common.h"
#include "reconciler/base/error.h"

/* "aws.ecs#ThrottlingException" -> "ThrottlingException"; "" when j (may
 * be NULL) has no "__type" string. Borrowed from j. */
const char *rc_aws_error_type(const json_t *j);
/* j's "message", else "Message", else "". Borrowed from j. */
const char *rc_aws_error_message(const json_t *j);

/* Whether a failed reply (status, body j or NULL) is worth sending again:
 * throttled (ThrottlingException), a server error (ServerException,
 * InternalServiceError) or any 5xx. */
bool rc_aws_error_retryable(long status, const json_t *j);

/*
 * Sets the error of the call op that got the reply status with body j
 * (NULL when the len bytes were not JSON), content type ct and request id
 * rid (each may be NULL), and returns its code: RC_EAUTH for a refusal
 * (AccessDeniedException: the IAM action iam:op to allow) or credentials
 * AWS did not accept (403, the signature exceptions), RC_ENOTFOUND for
 * ResourceNotFoundException, RC_EINVALID at loc (when loc.file is set)
 * for a request AWS found invalid, RC_ERROR otherwise (a 2xx that is not
 * JSON included). Messages start with "ecs: "; registered secrets in them
 * are masked (reconciler/base/log.h): AWS's explanation may quote what
 * the request carried.
 */
int rc_aws_reply_error(const char *op, const char *iam, long status,
		       const json_t *j, size_t len, const char *ct,
		       const char *rid, rc_loc loc);

#endif
