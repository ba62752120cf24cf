/*
 * History: the runs in <state>/runs/, newest first, each summarised from
 * its journal. A run without a run-end record whose environments are not
 * locked by a live process was interrupted (crash, kill -9, power loss).
 *
 * The summary of a run:
 *   - id: the journal's file name without ".journal";
 *   - time, commit, envs: from its run-start record (NULL, NULL and none
 *     when the journal has no readable run-start);
 *   - ok, failed, skipped, unknown: its outcome records by status
 *     ("unknown": sent during an outage and its reply lost, so not known
 *     whether it took effect; the next plan observes it);
 *   - pending: intents without an outcome for the same "action";
 *   - approved_by, rejected_by: from its run-start (a plan approved or
 *     rejected through the controller: the token's name), else NULL;
 *   - status: the run-end record's ("succeeded", "rejected", anything else
 *     is FAILED);
 *     without one, RUNNING while a live process holds the lock of one of
 *     its environments for this run (or for a run the lock file does not
 *     name), else INTERRUPTED;
 *   - torn, error: what reading the journal found (a RUNNING run is never
 *     torn: its last line may be an append in progress). A corrupt or
 *     unreadable journal is listed with its error and what could be read
 *     before the damage; it does not fail the listing.
 * Order: newest first by run-start time (RFC 3339, offsets honoured); a run
 * without one sorts by its journal's mtime.
 */
#ifndef RC_HISTORY_H
#define RC_HISTORY_H

#include <jansson.h>

#include "reconciler/base/common.h"

typedef enum {
	RC_RUN_SUCCEEDED,
	RC_RUN_FAILED,
	RC_RUN_INTERRUPTED,
	RC_RUN_RUNNING, /* no run-end yet, and its lock is held */
	RC_RUN_REJECTED /* a pending plan rejected (no action ran) */
} rc_run_status;

typedef struct {
	char *id;
	char *time;   /* run-start time, RFC 3339 */
	char *commit; /* may be NULL (a plain directory) */
	char **envs;
	size_t nenvs;
	rc_run_status status;
	size_t ok, failed, skipped, unknown; /* outcome counts */
	size_t pending; /* intents without an outcome (interrupted runs) */
	bool torn;      /* the journal's last record was torn */
	char *error;    /* corruption found reading it, or NULL */
	char *approved_by, *rejected_by; /* the controller's approver */
	/* hooks an interrupted run left unfinished that this run settled
	   (its intent's "resolves", its outcome's "settled"): "hook NAME:
	   HOW" lines, and per line the run that left it */
	char **settles, **settles_of;
	size_t nsettles;
	/* this run's unfinished hooks that a later run settled: "hook NAME:
	   HOW (settled by run ID)" (rc_history_load only) */
	char **settled_later;
	size_t nsettled_later;
} rc_run_summary;

const char *rc_run_status_name(rc_run_status s);
/* All runs, newest first (*out: free with rc_history_free). With env, only
 * the runs whose environments include env, and those whose environments
 * are unknown (no run-start). No runs directory: 0 runs. */
int rc_history_load(rc_run_summary **out, size_t *n, const char *state_dir,
		    const char *env);
/* The same runs in the same order, reading only each journal's first
 * record: id and time are set, nothing else (the order of replay). */
int rc_history_order(rc_run_summary **out, size_t *n, const char *state_dir);
/* NULL-safe. */
void rc_history_free(rc_run_summary *runs, size_t n);
/* The summary as JSON (new ref) for `reconcile history --output json`:
 * {id, time, commit, environments[], status ("succeeded", "failed",
 * "interrupted", "running", "rejected"), counts{ok, failed, skipped,
 * unknown, pending}, torn, error}; absent values are null; approved_by and
 * rejected_by only when the run has them; "settles" and "settled_later"
 * (lists of strings) only when not empty. */
json_t *rc_run_summary_json(const rc_run_summary *r);

#endif
