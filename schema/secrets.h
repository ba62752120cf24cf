/*
 * Secret references ({env: NAME}, {file: PATH}) resolved to values, only
 * where a value is needed: to compare (its SHA-256) and to hand to a
 * platform at apply time. Every value read is registered with the log
 * redactor before it is returned, so it cannot reach a log, an error, the
 * journal or a plan.
 */
#ifndef RC_SECRETS_H
#define RC_SECRETS_H

#include <jansson.h>

#include "reconciler/base/common.h"
#include "schema/model.h"

/* The value of one secret of env (new string), read from the process
 * environment or from the file under config_dir. RC_ENOTFOUND when the
 * variable is unset or the file missing (the message names the reference,
 * never a value). */
int rc_secret_value(char **out, const rc_secret *s, const char *config_dir);
/* {"$secret": "sha256:<hex>", "ref": "env:NAME"} for a value (new ref). */
json_t *rc_secret_json(const rc_secret *s, const char *value);
/* The same for a value observed on a platform, whose reference is known
 * from the desired body (new ref). */
json_t *rc_secret_json_observed(const char *ref, const char *value);
/* The value behind a body's secret object: looks the reference up among
 * env's secrets (new string), for drivers at apply time. */
int rc_secret_resolve(char **out, const json_t *secret_obj, const rc_env *env,
		      const char *config_dir);

/* An {aws_secret: ARN} reference's shape: arn:<partition>:secretsmanager:
 * <region>:<12 digits>:secret:<name>, optionally followed by ECS's
 * :<json-key>:<version-stage>:<version-id>. */
bool rc_aws_secret_arn_valid(const char *arn);

#endif
