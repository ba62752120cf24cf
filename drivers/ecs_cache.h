/*
 * The ECS driver's cache of task-definition revisions under
 * <state>/ecs/taskdefs/: a revision never changes once registered, so a
 * DescribeTaskDefinition answer is kept by its ARN and never asked for
 * again. One file per revision (the SHA-256 of the ARN, .json), written
 * atomically; a file that cannot be read, is not JSON or names another
 * ARN is ignored (the caller asks AWS again and writes it anew).
 */
#ifndef RC_DRIVERS_ECS_CACHE_H
#define RC_DRIVERS_ECS_CACHE_H

#include <jansson.h>

/* The cached DescribeTaskDefinition answer ({taskDefinition, tags}) of
 * the revision arn (a full ARN), or NULL (new ref). state_dir NULL: no
 * cache. */
json_t *rc_ecs_cache_get(const char *state_dir, const char *arn);
/* Keeps answer for arn; a failure to write is logged and forgotten (the
 * cache only saves requests). */
void rc_ecs_cache_put(const char *state_dir, const char *arn,
		      const json_t *answer);

#endif
