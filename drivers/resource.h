/*
 * The one resource model. A desired resource is what the configuration
 * says one object should be; an actual resource is what a driver observed.
 * Bodies are JSON objects holding only what reconcile manages, in the
 * driver's normal form (see drivers/driver.h): keyed lists are maps keyed
 * by their key (containers by name, ports by number), so that the diff can
 * treat every body as nested maps with atomic lists.
 *
 * Secrets never appear as values in a body: a secret is the object
 *   {"$secret": "hmac-sha256:<hex>", "ref": "env:NAME"}
 * (an HMAC-SHA-256 of the value under the installation's key, see
 * schema/secrets.h) so that plans, saved plans and the journal can compare
 * them without holding them, and a guessable value cannot be found again
 * from its hash. Hashes made under another key (a lost key) compare
 * unequal, never equal: one extra update, never a wrong "no change".
 */
#ifndef RC_RESOURCE_H
#define RC_RESOURCE_H

#include <jansson.h>

#include "reconciler/base/common.h"
#include "reconciler/base/error.h"
#include "reconciler/base/json.h"

typedef struct {
	char *key;    /* "<env>/<kind>/<name>": unique within a plan */
	char *env;
	char *driver; /* the driver's name */
	char *kind;   /* the driver's kind: "service", "addon", "Deployment" */
	char *name;
	json_t *body; /* owned ref */
	char **deps;  /* keys of resources that must exist first */
	size_t ndeps;
	rc_loc loc;   /* where the configuration declares it */
	bool precious; /* deleting it loses data (a database): irreversible */
	bool adopt;    /* actual resources: made outside reconcile, observed
			  only because policy.adopt takes it over */
	char *fingerprint; /* actual resources: sha256 of the canonical body */
	/* actual resources, optional: how the running object is doing, in a
	   few words ("running 2/3, deploying"), for the plan's health
	   column; unhealthy when it does not serve as declared (fewer
	   ready than desired with no rollout under way, a failed rollout) */
	char *health;
	bool unhealthy;
} rc_resource;

typedef struct {
	rc_resource *items;
	size_t n, cap;
} rc_resource_set;

/* Adds a resource (copies the strings, takes the body reference). */
rc_resource *rc_resource_set_add(rc_resource_set *s, const char *env,
				 const char *driver, const char *kind,
				 const char *name, json_t *body);
rc_resource *rc_resource_set_find(const rc_resource_set *s, const char *key);
void rc_resource_add_dep(rc_resource *r, const char *key);
/* Sets r's health text (printf-style) and whether it is unhealthy. */
void rc_resource_set_health(rc_resource *r, bool unhealthy, const char *fmt,
			    ...) RC_PRINTF(3, 4);
void rc_resource_set_release(rc_resource_set *s);
/* Releases the resources from index n on (keeps the first n). */
void rc_resource_set_truncate(rc_resource_set *s, size_t n);

/* A change of one path, as the diff found it (reconciler/diff.h). */
typedef enum { RC_CHANGE_ADD, RC_CHANGE_MODIFY, RC_CHANGE_REMOVE } rc_change_op;

typedef struct {
	rc_change_op op;
	char *path;    /* JSON pointer, e.g. "/env/LOG_LEVEL" */
	json_t *old;   /* NULL for add */
	json_t *new_;  /* NULL for remove */
} rc_change;

typedef struct {
	rc_change *items;
	size_t n, cap;
} rc_changes;

void rc_changes_release(rc_changes *c);

/* An action of a plan (reconciler/plan.h builds them; drivers apply them). */
typedef enum {
	RC_OP_CREATE,
	RC_OP_UPDATE,
	RC_OP_DELETE,
	RC_OP_REPLACE,
	RC_OP_RUN /* a hook */
} rc_op;

const char *rc_op_name(rc_op op);

typedef struct {
	char *id;      /* "<op>:<key>", stable across plans of the same state */
	rc_op op;
	char *key, *env, *driver, *kind, *name;
	json_t *desired; /* what to make; NULL for delete */
	json_t *actual;  /* observed before: what rollback restores; NULL for
			    create and run */
	char *fingerprint; /* of actual: a saved plan is stale when it moved */
	rc_changes changes;
	char **deps; /* ids of actions that must succeed first */
	size_t ndeps;
	bool irreversible;
	bool adopt;   /* an update that takes over an object made outside
			 reconcile (policy.adopt): apply() marks it ours */
	char *reason; /* why a replace, a delete, an irreversible step */
	char *health; /* the observed resource's health text, or NULL */
} rc_action;

/* Frees what an action holds (not a itself). */
void rc_action_release(rc_action *a);

#endif
