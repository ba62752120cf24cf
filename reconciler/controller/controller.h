/*
 * The controller: `reconcile controller` follows a configuration source
 * and keeps its environments applied (docs/controller.md).
 *
 * One loop thread checks the source cheaply (the remote's refs, or a
 * work tree's HEAD) every poll interval or when a webhook wakes it,
 * fetches and re-reads the configuration when something moved, and hands
 * every environment whose commit moved, or whose resync or backoff timer
 * fired, to a worker thread of its own (at most `workers` at once): each
 * worker opens an engine for that one environment, plans, and applies
 * (policy.apply: auto) or saves the plan as pending (manual). A slow or
 * failing environment never holds the others; a failure backs off
 * exponentially (5 s doubling to 5 min), a success resets it.
 */
#ifndef RC_CTL_CONTROLLER_H
#define RC_CTL_CONTROLLER_H

#include <jansson.h>

#include "reconciler/base/common.h"
#include "reconciler/engine.h"

typedef struct {
	const char *source;     /* a git URL or a directory ("." default) */
	const char *listen;     /* ADDR:PORT (127.0.0.1:8080) */
	double poll;            /* seconds between cheap checks (60) */
	double resync;          /* seconds between re-plans of an unchanged
				   environment (600), jittered by +-10% */
	const char *state_dir;  /* NULL: the engine's default */
	const char *cache_dir;  /* git cache, NULL for the default */
	bool log_json;          /* --log-format json */
	bool leader_elect;      /* --leader-elect */
	const char *lease;      /* --lease NAMESPACE/NAME, or NULL */
	int shards, shard;      /* --shards N --shard K; 0 and -1 unset */
	int workers;            /* environments worked on at once (4) */
	double grace;           /* seconds a running apply gets at exit (30) */
	const char *token;      /* RECONCILE_CONTROLLER_TOKEN, or NULL */
	const char *hook_secret; /* RECONCILE_WEBHOOK_SECRET, or NULL */
	const char *config;     /* --config FILE: re-read on SIGHUP */
} rc_ctl_opts;

/* Sets the defaults. */
void rc_ctl_opts_init(rc_ctl_opts *o);
/* Checks the options together; RC_EINVALID or RC_EUNSUPPORTED saying
 * what is wrong. */
int rc_ctl_opts_check(const rc_ctl_opts *o);
/* Reads the flags file path into o: one "name value" a line, for poll,
 * resync, log-format and log-level ('#' starts a comment). RC_EINVALID
 * naming the line when one is wrong, and then o is left as it was. */
int rc_ctl_read_config(rc_ctl_opts *o, const char *path);
/* Parses "90s", "5m", "1h", "250ms", "2" (seconds); -1 when invalid. */
double rc_ctl_duration(const char *s);

typedef struct rc_ctl rc_ctl;

/* Runs the controller until SIGTERM or SIGINT; 0 on a clean stop. */
int rc_controller_run(const rc_ctl_opts *o);

/* For the HTTP API (http_api.c). */
struct rc_metrics *rc_ctl_metrics(rc_ctl *c);
/* Wakes the loop to check the source now (a webhook); why is logged. */
void rc_ctl_wake(rc_ctl *c, const char *why);
/* The loop ticked recently. */
bool rc_ctl_alive(rc_ctl *c);
/* The source was read once. */
bool rc_ctl_ready(rc_ctl *c);
/* The status document of /api/v1/status (new ref). */
json_t *rc_ctl_status(rc_ctl *c);

/* For approvals (approval.c). */
typedef struct {
	const char *result;   /* "succeeded", "failed", "pending",
				 "rejected", "unchanged" */
	const char *run;      /* the run it made, or NULL */
	const char *pending;  /* the plan pending now, or NULL */
	const char *rejected; /* a plan not to propose again, or NULL */
	const char *error;    /* a failure's message, or NULL */
} rc_ctl_outcome;

/* The state directory; NULL until the source was read. */
const char *rc_ctl_state_dir(rc_ctl *c);
/* The options of an engine for the one environment *env as the workers
 * open it; fetch: a git source is fetched first (else the cache is used,
 * as the loop fetched). */
void rc_ctl_engine_opts(rc_ctl *c, rc_engine_opts *eo,
			const char *const *env, bool fetch);
/* The environments with a pending plan (new ref): [{name, plan, commit}]. */
json_t *rc_ctl_pending(rc_ctl *c);
/* Takes env away from the workers for an approval or a rejection: waits
 * up to wait_s while a worker has it, then checks that plan (NULL: any;
 * else the id or a prefix of at least 8 of its hex digits) is its pending
 * plan. 0 and *pending (new string); RC_ENOTFOUND (no such environment,
 * or no pending plan), RC_ECONFLICT (another plan is pending), RC_ELOCKED
 * (still busy, or stopping), each with its message. */
int rc_ctl_take(rc_ctl *c, const char *env, const char *plan, double wait_s,
		char **pending);
/* Gives env back with what came of it. */
void rc_ctl_give(rc_ctl *c, const char *env, const rc_ctl_outcome *out);

#endif
