/*
 * The engine: source -> configuration -> drivers (expand, observe) -> plan
 * -> apply with the journal -> history and rollback. The CLI commands are
 * thin layers over these calls.
 */
#ifndef RC_ENGINE_H
#define RC_ENGINE_H

#include "drivers/driver.h"
#include "reconciler/plan.h"
#include "reconciler/source.h"
#include "schema/diag.h"
#include "schema/model.h"

typedef struct {
	const char *source;    /* a directory or a git URL ("." by default) */
	const char *ref;       /* --ref, or NULL */
	const char *const *envs; /* -e filters (names or generator keys) */
	size_t nenvs;
	const char *state_dir; /* NULL: $RECONCILE_STATE_DIR, else
				  <config repository>/.reconcile */
	const char *cache_dir; /* git cache, NULL for the default */
	bool destroy;          /* plan the removal of everything owned */
	bool force;            /* allow emptying an environment */
	int concurrency;       /* apply: actions at once (default 8) */
	bool progress;         /* apply: live display (a terminal) */
	FILE *out;             /* apply progress and messages (stdout) */
} rc_engine_opts;

typedef struct rc_engine_env {
	const rc_env *env;
	const rc_driver_ops *ops;
	rc_driver *drv;
	char *label;
} rc_engine_env;

typedef struct {
	rc_engine_opts opts;
	rc_source *src;
	rc_config *cfg;
	rc_diags diags;        /* configuration diagnostics */
	char *state_dir;
	rc_engine_env *envs;   /* the environments in scope, in order */
	size_t nenvs;
	rc_resource_set desired, actual;
	json_t *last;          /* key -> body last applied (the journal) */
} rc_engine;

/* Opens the source and loads the configuration. On RC_EINVALID the
 * configuration's diagnostics are in e->diags. */
int rc_engine_open(rc_engine **out, const rc_engine_opts *opts);
void rc_engine_free(rc_engine *e);

/* Opens the drivers of the environments in scope (once; later calls do
 * nothing). run_id is the apply's run, NULL when planning. */
int rc_engine_open_drivers(rc_engine *e, const char *run_id);

/* Expands and observes every environment in scope and builds the plan. */
int rc_engine_plan(rc_engine *e, rc_plan *plan);

typedef struct {
	char *run_id;
	size_t ok, failed, skipped;
} rc_apply_report;

/* Applies plan: locks its environments, journals every action, runs them
 * with bounded concurrency; a failed action stops its dependents and the
 * rest go on. 0 when every action succeeded. */
int rc_engine_apply(rc_engine *e, const rc_plan *plan, rc_apply_report *rep);
void rc_apply_report_release(rc_apply_report *r);

/* Checks a saved plan against the present: the same commit and the same
 * fingerprint for every resource it observed. RC_ECONFLICT naming what
 * moved when not. */
int rc_engine_check_saved(rc_engine *e, const rc_plan *saved,
			  const rc_plan *fresh);

/* The plan that undoes run run_id (NULL: the last run) for the
 * environments in scope: its snapshots restored in reverse order.
 * Refused past an irreversible step unless force, saying why. */
int rc_engine_rollback_plan(rc_engine *e, const char *run_id, bool force,
			    rc_plan *plan);

/* The identity of a plan: sha256 of its JSON form (new string). The
 * journal records it, so that a saved plan is never applied twice. */
char *rc_plan_id(const rc_plan *p);
/* The run that applied the plan with this id successfully, or NULL. */
char *rc_engine_find_plan_run(rc_engine *e, const char *plan_id);

/* The state directory to use for a configuration directory (new). */
char *rc_state_dir_for(const char *config_dir);

#endif
