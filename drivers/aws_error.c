#include "reconciler/base/common.h"
#include "drivers/aws_error.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/log.h"

static const char *sget(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

const char *rc_aws_error_type(const json_t *j)
{
	const char *t = sget(j, "__type");
	const char *h = t ? strrchr(t, '#') : NULL;

	return h ? h + 1 : t ? t : "";
}

const char *rc_aws_error_message(const json_t *j)
{
	const char *m = sget(j, "message");

	return m ? m : sget(j, "Message") ? sget(j, "Message") : "";
}

bool rc_aws_error_retryable(long status, const json_t *j)
{
	const char *type = rc_aws_error_type(j);

	return !strcmp(type, "ThrottlingException") ||
	       !strcmp(type, "ServerException") ||
	       !strcmp(type, "InternalServiceError") || status >= 500;
}

int rc_aws_reply_error(const char *op, const char *iam, long status,
		       const json_t *j, size_t len, const char *ct,
		       const char *rid, rc_loc loc)
{
	const char *type = rc_aws_error_type(j);
	const char *msg = rc_aws_error_message(j);
	rc_buf b = RC_BUF_INIT_MAX(4096);
	int code = RC_ERROR, rc;
	bool at = false;

	if (!rid)
		rid = "none";
	if (!j && status >= 200 && status < 300) {
		/* never the body: it could hold a secret, or anything a
		 * proxy on the way put there */
		rc_buf_printf(&b,
			      "ecs: %s: the reply was not JSON (HTTP %ld, %zu "
			      "bytes of %s)",
			      op, status, len, ct ? ct : "no content type");
	} else if (!strcmp(type, "AccessDeniedException")) {
		code = RC_EAUTH;
		rc_buf_printf(&b,
			      "ecs: %s was refused (AccessDeniedException): "
			      "%s; allow the IAM action %s:%s to the caller",
			      op, msg, iam, op);
	} else if (!strcmp(type, "ResourceNotFoundException")) {
		code = RC_ENOTFOUND;
		rc_buf_printf(&b, "ecs: %s: %s", op, msg);
	} else if (status == 403 ||
		   !strcmp(type, "InvalidSignatureException") ||
		   !strcmp(type, "UnrecognizedClientException") ||
		   !strcmp(type, "IncompleteSignatureException")) {
		code = RC_EAUTH;
		rc_buf_printf(&b,
			      "ecs: AWS did not accept the credentials for "
			      "%s (%s: %s): check AWS_ACCESS_KEY_ID, "
			      "AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN "
			      "(or the profile)",
			      op, type[0] ? type : "HTTP 403", msg);
	} else if ((!strcmp(type, "ClientException") ||
		    !strcmp(type, "InvalidParameterException") ||
		    !strcmp(type, "InvalidRequestException")) &&
		   loc.file) {
		code = RC_EINVALID;
		at = true;
		rc_buf_printf(&b, "ecs: %s was refused (%s): %s", op, type,
			      msg);
	} else {
		rc_buf_printf(&b, "ecs: %s failed (HTTP %ld %s): %s", op,
			      status,
			      type[0] ? type :
			      j ? "no error type" : "a reply that is not JSON",
			      msg);
	}
	rc_buf_printf(&b, " (request id %s)", rid);
	/* AWS's explanation may quote what the request carried (a
	 * SecretString that is not valid JSON) */
	rc_redact(&b);
	rc = at ? rc_error_set_at(code, loc, "%s", b.ptr)
		: rc_error_set(code, RC_ECLASS_PLATFORM, "%s", b.ptr);
	rc_buf_release(&b);
	return rc;
}
