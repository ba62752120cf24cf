/*
 * The engine: source -> configuration -> drivers (expand, observe) -> plan
 * -> apply with the journal -> history and rollback. The CLI commands are
 * thin layers over these calls.
 */
#ifndef RC_ENGINE_H
#define RC_ENGINE_H

#include "drivers/driver.h"
#include "reconciler/notify.h"
#include "reconciler/plan.h"
#include "reconciler/source.h"
#include "schema/diag.h"
#include "schema/load.h"
#include "schema/model.h"

typedef struct {
	const char *source;    /* a directory or a git URL ("." by default) */
	const char *ref;       /* --ref, or NULL */
	const char *const *envs; /* -e filters (names or generator keys) */
	size_t nenvs;
	const char *state_dir; /* NULL: $RECONCILE_STATE_DIR, else
				  <config repository>/.reconcile */
	const char *cache_dir; /* git cache, NULL for the default */
	bool offline;          /* a URL source: use what the cache has, do
				  not fetch (the controller fetched) */
	bool destroy;          /* plan the removal of everything owned */
	bool force;            /* allow emptying an environment */
	bool server_dry_run;   /* plan: ask the platforms what each create and
				  update would make (drivers' dry_run) */
	bool keep_gone;        /* neither track generated environments nor
				  retire gone ones (planning an older
				  commit) */
	int concurrency;       /* apply: actions at once (default 8) */
	bool progress;         /* apply: live display (a terminal) */
	FILE *out;             /* apply progress and messages (stdout) */
	rc_notifier *notifier; /* where an apply's notifications go (the
				  controller's, borrowed); NULL: the engine
				  makes its own from the configuration and
				  waits for it when freed */
	long notify_wait_ms;   /* that wait; 0: RC_NOTIFY_FLUSH_MS */
	/* apply: what the user says became of hooks an interrupted run
	   left unfinished, "NAME=succeeded" or "NAME=failed" (NAME may be
	   "ENV/NAME"): succeeded is recorded as the hook's outcome without
	   asking the driver or running it, failed runs it again
	   (`--hook-outcome`, docs/cli.md) */
	const char *const *hook_outcomes;
	size_t nhook_outcomes;
	const char *approved_by; /* apply: who approved the plan (the
				    controller's token name), journaled in
				    the run-start; NULL: nobody was asked */
} rc_engine_opts;

typedef struct rc_engine_env {
	const rc_env *env;
	const rc_driver_ops *ops;
	rc_driver *drv;
	char *label;
	char *config_dir; /* the tree it was read from; NULL: the source's */
	char *commit;     /* its commit when read from policy.branch */
	char *branch;     /* the policy.branch it was read from, or NULL */
	char *retire;     /* gone from the configuration: why everything it
			     owns is deleted (see state/envreg.h) */
	rc_env *owned;    /* a gone environment, rebuilt from the registry */
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
	rc_config **branch_cfgs; /* configurations read from policy.branch */
	size_t nbranch_cfgs;
	json_t *envreg;        /* the registry of generated environments */
	char **notes;          /* for the plan (an environment waiting for
				  its ttl, a driver's note); drivers add
				  theirs from their threads under a lock */
	size_t nnotes;
	struct rc_engine_shared {
		const rc_driver_ops *ops;
		void *shared;  /* what ops->shared_open made */
	} *shared;             /* one per driver that shares state */
	size_t nshared;
	/* while an apply runs: where drivers' progress goes (its executor),
	   under the engine's note lock */
	void (*progress_fn)(void *ctx, const char *action_id, const char *text);
	void *progress_ctx;
	rc_notifier *own_notifier; /* made at the first apply that notifies */
} rc_engine;

/* Opens the source and loads the configuration. On RC_EINVALID the
 * configuration's diagnostics are in e->diags. */
int rc_engine_open(rc_engine **out, const rc_engine_opts *opts);
void rc_engine_free(rc_engine *e);

/* Opens the drivers of the environments in scope (once; later calls do
 * nothing). run_id is the apply's run, NULL when planning. */
int rc_engine_open_drivers(rc_engine *e, const char *run_id);
/* Sets where drivers' progress goes while an apply runs (fn NULL: none). */
void rc_engine_progress_to(rc_engine *e,
			   void (*fn)(void *ctx, const char *action_id,
				      const char *text),
			   void *ctx);

/* Expands and observes every environment in scope and builds the plan. */
int rc_engine_plan(rc_engine *e, rc_plan *plan);
/* The desired resources alone, in e->desired (drivers opened, each
 * environment expanded and normalized, nothing observed): what the
 * controller's watchers follow. */
int rc_engine_expand(rc_engine *e);

typedef struct {
	char *run_id;
	size_t ok, failed, skipped;
	size_t unknown; /* sent, their replies lost (an outage): not known
			   whether they took effect */
	char *unreachable; /* the endpoint ("https://host:port") found
			      unreachable that stopped the run, or NULL */
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

/* Sends ev through the engine's notifier (opts.notifier, else its own,
 * made from the configuration the first time). */
void rc_engine_notify(rc_engine *e, const rc_notify_event *ev);

/* Internals shared by engine*.c. */
/* Sets how a load lists the branches of `self` for this engine's source. */
void rc_engine_load_opts(rc_engine *e, rc_load_opts *lo);
int rc_engine_self_branches(void *ctx, rc_branch **out, size_t *n);
/* Reads the environments with a policy.branch from that branch. */
int rc_engine_read_branches(rc_engine *e);
/* Records the generated environments in the registry and adds the gone
 * ones to the scope: retired when past their ttl and pruned, noted
 * otherwise. */
int rc_engine_track_generated(rc_engine *e);
/* After observing: forgets gone environments that own nothing any more. */
void rc_engine_forget_empty(rc_engine *e);
char *rc_engine_env_label(const rc_env *env);
/* s with the hooks' deferred placeholders ({{ name }}) that value knows
 * filled in; the others are kept as they are (new string). */
char *rc_engine_fill(const char *s,
		     const char *(*value)(void *arg, const char *name),
		     void *arg);
/* rc_engine_fill() over a hook's spec in place: every argument of its
 * `run` and every value of its `env`. */
void rc_engine_fill_hook(json_t *spec,
			 const char *(*value)(void *arg, const char *name),
			 void *arg);
/* The {{ run.date }} and {{ run.time }} of a run that started at started
 * (RFC 3339): "20261205" and "154953", UTC; empty when unreadable. */
void rc_engine_stamp(const char *started, char date[16], char tm[16]);
/* A hook as a plan carries it (new ref): {name, run, where, service, env,
 * timeout, irreversible}. */
json_t *rc_engine_hook_spec(const rc_hook *h);
/* Makes ee stand for env: its label and its driver (RC_EUNSUPPORTED when
 * this build has no such driver). */
int rc_engine_env_bind(rc_engine_env *ee, const rc_env *env);
/* key -> the body reconcile last applied, from the journals of the runs
 * before run `before` (NULL: all runs) (new ref). */
json_t *rc_engine_last_applied(const char *state_dir, const char *before);
/* The same for all runs, only the keys of the environments in envs when
 * nenvs > 0: from the snapshot (state/snapshot.h) reading only their
 * lines while it stands; brought up to date by the newer runs when runs
 * were only added; else every journal replayed. */
json_t *rc_engine_last_applied_for(const char *state_dir,
				   const char *const *envs, size_t nenvs);

/* Hooks left unfinished. The replay keeps, beside the resources' bodies,
 * one entry per hook whose newest intent got no outcome (an interrupted
 * run), under "<env>/" RC_UNFINISHED_KIND "/<hook>": {run, action, key,
 * spec (the intent's desired), irreversible}. A later outcome "ok" or
 * "failed" of that hook's key settles it, unless the outcome is marked
 * "unsettled" (an unfinished hook whose fate the apply could not tell).
 * A hook the run-start lists ("hooks") that has neither intent nor
 * outcome in a run without run-end counts as unfinished too (killed
 * before it started). The snapshot keeps these entries on their
 * environment's line. */
#define RC_UNFINISHED_KIND "#unfinished-hook"
/* The entry's key for a hook's key "<env>/hook/<name>" (new string). */
char *rc_engine_unfinished_key(const char *hook_key);
/* Moves the unfinished hooks' entries out of last: {hook key: entry}
 * (new ref). rc_engine_last_applied() drops them. */
json_t *rc_engine_take_unfinished(json_t *last);

/* What a replay of the journals reports as it goes, oldest run first. */
typedef struct {
	/* each run's first record (its run-start, when readable) */
	void (*run_start)(void *arg, const char *run, const json_t *rec);
	/* each intent that took effect (an "ok" outcome), and each that may
	 * have (the run ended without its outcome), before it is replayed:
	 * last is what had been applied until then (key -> body, borrowed) */
	void (*effect)(void *arg, const char *run, const json_t *intent,
		       const json_t *last);
	void *arg;
} rc_replay_observer;

/* The replay behind rc_engine_last_applied, telling obs (may be NULL)
 * what it sees (new ref: key -> body). */
json_t *rc_engine_replay(const char *state_dir, const char *before,
			 const rc_replay_observer *obs);

/* The state directory to use for a configuration directory (new). */
char *rc_state_dir_for(const char *config_dir);

#endif
