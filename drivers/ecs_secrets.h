/*
 * The ECS driver's secrets in AWS Secrets Manager: each {env:}/{file:}
 * secret of an environment is a resource of kind "secret", stored as
 * reconcile/<project>/<env>/<NAME>, tagged with the ownership tags and
 * the value's digest (never the value); the containers reference it by
 * ARN (valueFrom), and {aws_secret: ARN} passes through as given. A
 * service carries a digest over its secrets' digests, so that a changed
 * value redeploys it (ECS reads secrets when a task starts).
 *
 * The mapping half is pure; the calls go through the driver's Secrets
 * Manager client (drivers/ecs.c), given as a callback.
 * docs/drivers/ecs.md ("Secrets") is the user's view.
 */
#ifndef RC_DRIVERS_ECS_SECRETS_H
#define RC_DRIVERS_ECS_SECRETS_H

#include <jansson.h>

#include "drivers/driver.h"
#include "drivers/resource.h"
#include "schema/model.h"

#define RC_ECS_SECRET "secret"
/* on a secret: the digest of its value, as the body's "$secret" has it */
#define RC_ECS_TAG_VALUE_HASH "reconcile:value-hash"
/* on a service: the digest over its secrets' digests */
#define RC_ECS_TAG_SECRETS_HASH "reconcile:secrets-hash"
/* DeleteSecret's recovery window, AWS's default */
#define RC_ECS_SECRET_RECOVERY_DAYS 30

/* "reconcile/<project>/<env>/<name>" (new). */
char *rc_ecs_secret_name(const char *project, const char *env,
			 const char *name);

/* Adds to out (after rc_ecs_expand) one secret per {env:}/{file:} secret
 * of env, read now to make its digest, and sets each container's
 * "secrets" {NAME: secret name or ARN} and each service's "secrets"
 * digest; the task definitions and services depend on the secrets. A
 * value that cannot be read is an error naming the secret and where it
 * is declared. */
int rc_ecs_secrets_expand(const rc_env *env, const char *project,
			  const char *config_dir, rc_resource_set *out);

/* A container's "secrets" in normal form, in place: ECS's
 * [{name, valueFrom}] becomes {name: valueFrom}, and the ARN of a
 * reconcile-made secret (arn:...:secret:reconcile/...-XXXXXX) its name,
 * which does not depend on AWS's random suffix. */
void rc_ecs_secrets_normalize(json_t *container);

/* A DescribeServices service's secrets digest (its tag), set in body as
 * the normal form has it; nothing when the tag is absent. */
void rc_ecs_secrets_service_observed(json_t *body, const json_t *tags);
/* An action on a service changes its secrets digest. */
bool rc_ecs_secrets_changed(const rc_action *a);
/* The tag [{key, value}] entry of a service body's secrets digest (new),
 * or NULL when it has none. */
json_t *rc_ecs_secrets_service_tag(const json_t *body);

/* ------------------------------------------------------------- calls */

/* One Secrets Manager call (body stolen, *out new ref or NULL); loc is
 * where the configuration says what the call is about. RC_ENOTFOUND for
 * ResourceNotFoundException. */
typedef int (*rc_ecs_sm_call_fn)(void *ctx, const char *op, json_t *body,
				 rc_loc loc, json_t **out);

typedef struct rc_ecs_sm rc_ecs_sm;

/* dctx (may be NULL) takes the plan's notes (a deletion's recovery
 * window). */
rc_ecs_sm *rc_ecs_sm_new(rc_ecs_sm_call_fn call, void *ctx,
			 const rc_driver_ctx *dctx, const char *project,
			 const rc_env *env, const char *config_dir);
void rc_ecs_sm_free(rc_ecs_sm *sm);

/* ListSecrets (paged) of the environment's tagged secrets, into out; the
 * body is rebuilt from the value-hash tag with the desired reference.
 * Never reads a value. */
int rc_ecs_secrets_observe(rc_ecs_sm *sm, const rc_resource_set *desired,
			   rc_resource_set *out);
/* Create (CreateSecret, or RestoreSecret of one scheduled for deletion),
 * update (PutSecretValue, TagResource) or delete (DeleteSecret with the
 * recovery window). */
int rc_ecs_secret_apply(rc_ecs_sm *sm, const rc_action *a);
/* A RegisterTaskDefinition request's containers: the "secrets" map
 * becomes ECS's [{name, valueFrom}], a secret's name replaced by its ARN
 * (known from observation or creation, else DescribeSecret). */
int rc_ecs_secrets_request(rc_ecs_sm *sm, json_t *req, rc_loc loc);

#endif
