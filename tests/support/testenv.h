/*
 * What the driver-level test tools (tests/watch/watch_tool,
 * tests/hooks/hook_tool) share: one environment of a configuration
 * directory, with its driver opened as the engine opens it.
 */
#ifndef RC_TESTENV_H
#define RC_TESTENV_H

#include "drivers/driver.h"
#include "schema/load.h"

typedef struct {
	rc_diags diags;
	rc_config *cfg;
	const rc_env *env;
	const rc_driver_ops *ops;
	rc_driver_ctx ctx;
	rc_driver *d;
} rc_testenv;

/* Loads dir (secrets hashed under a fixed key) and opens the driver of
 * its environment name with the state directory $RECONCILE_STATE_DIR and
 * run_id (may be NULL); shared_open first when the driver has one.
 * Returns 0, or 1 after printing "error: ..." (or the diagnostics) on
 * stdout. */
int rc_testenv_open(rc_testenv *t, const char *dir, const char *name,
		    const char *run_id);
void rc_testenv_close(rc_testenv *t);

#endif
