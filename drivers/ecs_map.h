/*
 * The ECS driver's pure mapping (no I/O): the portable model to the
 * driver's resources (cluster, task-definition, service) in normal form,
 * ECS API objects back to that form, and the normal form to request
 * bodies. docs/drivers/ecs.md has the table.
 */
#ifndef RC_DRIVERS_ECS_MAP_H
#define RC_DRIVERS_ECS_MAP_H

#include <jansson.h>

#include "drivers/resource.h"
#include "schema/model.h"

#define RC_ECS_DRIVER "ecs"
#define RC_ECS_CLUSTER "cluster"
#define RC_ECS_TASKDEF "task-definition"
#define RC_ECS_SERVICE "service"

#define RC_ECS_TAG_PROJECT "reconcile:project"
#define RC_ECS_TAG_ENV "reconcile:environment"

/* "<project>-<env>-<service>" (new). */
char *rc_ecs_family(const char *project, const char *env, const char *svc);
/* The cluster's name: target.cluster, else "<project>-<env>" (new). */
char *rc_ecs_cluster_name(const char *project, const rc_env *env);

/* The desired cluster, one task definition and one service per service
 * (the secrets are added by rc_ecs_secrets_expand, drivers/ecs_secrets.h). */
int rc_ecs_expand(const rc_env *env, const char *project,
		  rc_resource_set *out);

/* Folds server defaults and spellings in place (the engine's normalize). */
void rc_ecs_normalize(const char *kind, json_t *body);

/* A DescribeTaskDefinition "taskDefinition" object in normal form (new). */
json_t *rc_ecs_taskdef_from_api(const json_t *td);
/* The RegisterTaskDefinition body of a normal-form task definition (new;
 * no tags). */
json_t *rc_ecs_taskdef_request(const json_t *body);
/* A DescribeServices service in normal form (new): the keys of desired
 * (the desired body, may be NULL) are taken from it. */
json_t *rc_ecs_service_from_api(const json_t *svc, const json_t *desired);
/* "arn:...:task-definition/fam:3" or "fam:3" -> "fam" (new). */
char *rc_ecs_td_family(const char *ref);
/* The last component of an ARN ("arn:...:cluster/x" -> "x"). */
const char *rc_ecs_arn_name(const char *arn);

/* Whether a change at path (a JSON pointer) of kind needs a new object:
 * a service's launchType, schedulingStrategy, deploymentController, role
 * (UpdateService does not take them). */
bool rc_ecs_immutable(const char *kind, const char *path);
/* "running R/D", with ", deploying" while a deployment is IN_PROGRESS
 * and ", rollout failed" when the primary one FAILED, of a
 * DescribeServices service (new). *unhealthy: fewer running than desired
 * with no deployment under way, or a failed rollout. */
char *rc_ecs_service_health(const json_t *svc, bool *unhealthy);

#endif
