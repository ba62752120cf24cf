/*
 * History: the runs in <state>/runs/, newest first, each summarised from
 * its journal. A run without a run-end record whose environments are not
 * locked by a live process was interrupted (crash, kill -9, power loss).
 */
#ifndef RC_HISTORY_H
#define RC_HISTORY_H

#include <jansson.h>

#include "reconciler/common.h"

typedef enum {
	RC_RUN_SUCCEEDED,
	RC_RUN_FAILED,
	RC_RUN_INTERRUPTED,
	RC_RUN_RUNNING /* no run-end yet, and its lock is held */
} rc_run_status;

typedef struct {
	char *id;
	char *time;   /* run-start time, RFC 3339 */
	char *commit; /* may be NULL (a plain directory) */
	char **envs;
	size_t nenvs;
	rc_run_status status;
	size_t ok, failed, skipped; /* outcome counts */
	size_t pending; /* intents without an outcome (interrupted runs) */
	bool torn;      /* the journal's last record was torn */
	char *error;    /* corruption found reading it, or NULL */
} rc_run_summary;

const char *rc_run_status_name(rc_run_status s);
/* All runs, newest first; only those touching env when env != NULL. */
int rc_history_load(rc_run_summary **out, size_t *n, const char *state_dir,
		    const char *env);
void rc_history_free(rc_run_summary *runs, size_t n);
/* The summary as JSON (new ref) for `reconcile history --output json`. */
json_t *rc_run_summary_json(const rc_run_summary *r);

#endif
