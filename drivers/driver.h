/*
 * The one contract every driver implements. A driver is a struct of
 * operations behind a name, found in one static registry
 * (drivers/registry.c); adding a driver touches its own file and the
 * registry. The engine never knows a URL or a pid: it hands the driver
 * resources and actions, the driver turns them into platform calls.
 *
 * Flow, per environment:
 *   open -> expand (desired resources) -> observe (actual, batched)
 *   -> [engine: normalize both, diff, plan] -> apply each action -> wait
 *   (healthy, or gone for a delete) -> run (hooks) -> close
 * and, in `reconcile controller`, watch (optional) from another thread
 * between runs, to learn of drift without observing again.
 *
 * Bodies (see drivers/resource.h) are JSON in the driver's normal form:
 * keyed lists as maps, server defaults and equivalent spellings folded by
 * normalize(), secrets as {"$secret": "hmac-sha256:<hex>", "ref":
 * "env:NAME"} made by schema/secrets.h (keyed: never hash a secret
 * yourself; a hash kept on a platform, such as a tag, is rc_secret_hash()).
 * Resources the driver creates carry reconcile's ownership mark (labels,
 * tags or a state record naming project and environment); observe() returns
 * only marked resources, and the engine deletes nothing else. The one
 * exception is adoption: when the environment's policy.adopt is true,
 * observe() may return an unmarked object that a desired resource names,
 * with adopt set; the plan then updates it (shown as adoption, even with
 * no field changed) and apply() marks it.
 *
 * Errors: operations return 0 or a negative RC_E* code with rc_error_set()
 * describing what failed (never a secret value).
 */
#ifndef RC_DRIVER_H
#define RC_DRIVER_H

#include <jansson.h>

#include "reconciler/base/common.h"
#include "reconciler/base/error.h"
#include "drivers/resource.h"
#include "schema/model.h"

typedef struct rc_driver rc_driver; /* a driver's own state, opaque */

typedef struct {
	const char *project;
	const char *config_dir; /* the configuration repository's tree */
	const char *state_dir;  /* <state>; a driver keeps its files under
				   <state>/<driver-name>/ */
	const char *run_id;     /* the apply's run, NULL when planning */
	const char *commit;     /* the source commit, or NULL */
	/* What shared_open made for this run (one per driver), or NULL. */
	void *shared;
	/* Adds a note to the plan: something the reviewer should know that
	 * is not an action ("observation waited 12 s for API tokens").
	 * Callable from any thread, for the whole run; NULL when nobody
	 * listens (use rc_driver_note()). env may be NULL. */
	void (*note)(void *note_arg, const char *env, const char *msg);
	void *note_arg;
	/* Says how far a long step of an action is ("image: 12.0 of 64.0
	 * MiB copied"), for the live display of an apply on a terminal
	 * (shown beside the action, replaced by the next call, dropped when
	 * the action ends; nothing is shown elsewhere). Callable from apply()
	 * and wait() on any thread; NULL when nobody listens (use
	 * rc_driver_progress()). */
	void (*progress)(void *note_arg, const char *action_id,
			 const char *text);
} rc_driver_ctx;

/* Calls ctx->progress with a formatted text when there is one. */
void rc_driver_progress(const rc_driver_ctx *ctx, const char *action_id,
			const char *fmt, ...) RC_PRINTF(3, 4);
/* Calls ctx->note with a formatted message when there is one. */
void rc_driver_note(const rc_driver_ctx *ctx, const char *env,
		    const char *fmt, ...) RC_PRINTF(3, 4);

typedef struct {
	int exit_code;      /* -1 when it did not exit (timeout, signal) */
	bool timed_out;
	char *output_tail;  /* the last lines of its output (redacted) */
} rc_run_result;

void rc_run_result_release(rc_run_result *r);

/* What became of a hook run that an interrupted apply started (its
 * journal holds the hook's intent and no outcome): see hook_status. */
typedef enum {
	RC_HOOK_UNKNOWN,     /* the platform cannot tell (the dyno and its
				logs are gone, no record was kept) */
	RC_HOOK_NOT_STARTED, /* no trace of it: it never started */
	RC_HOOK_RUNNING,     /* still running when the wait ended */
	RC_HOOK_SUCCEEDED,   /* exited with status 0 */
	RC_HOOK_FAILED       /* exited non-zero, was killed or timed out */
} rc_hook_state;

const char *rc_hook_state_name(rc_hook_state s);
/* The start of a hook_status: res cleared (exit code -1), *state
 * RC_HOOK_UNKNOWN; true when spec's hook runs `where: local` (then
 * rc_local_hook_status() answers, drivers/proc.h). */
bool rc_hook_status_begin(const json_t *spec, rc_hook_state *state,
			  rc_run_result *res);

typedef struct {
	const char *name;     /* "local", "kubernetes", "heroku", "ecs" */
	int max_concurrency;  /* at most this many actions at once */

	/* Optional (both NULL otherwise): state shared by every environment
	 * of this driver in one run, made before the first open and freed
	 * after the last close: one HTTP client and its rate budget for an
	 * account that every environment draws on, an account-wide listing
	 * fetched once instead of once per environment. open() finds it in
	 * ctx->shared. Operations run for several environments at once, so
	 * what it holds is locked by the driver. ctx->run_id and ->commit
	 * are those of the first environment opened. */
	int (*shared_open)(void **out, const rc_driver_ctx *ctx);
	void (*shared_close)(void *shared);

	/* Connects for one environment (auth, clients). */
	int (*open)(rc_driver **out, const rc_env *env, const rc_driver_ctx *ctx);
	void (*close)(rc_driver *d);

	/* The environment's desired resources: the portable model mapped to
	 * the driver's objects, with their dependencies (an addon before the
	 * services that use it). Appends to out. */
	int (*expand)(rc_driver *d, const rc_env *env, rc_resource_set *out);

	/* Every resource of the environment that carries reconcile's mark,
	 * in as few calls as the platform allows (one LIST per kind, not one
	 * GET per object). Appends to out. */
	int (*observe)(rc_driver *d, const rc_resource_set *desired,
		       rc_resource_set *out);

	/* Folds server defaults and equivalent spellings in place, so that
	 * equal things compare equal ("500m" and 0.5). May be NULL. */
	void (*normalize)(const char *kind, json_t *body);

	/* Whether a change at path (a JSON pointer) of kind cannot be made in
	 * place, so the resource must be replaced. May be NULL. */
	bool (*immutable)(const char *kind, const char *path);

	/* Applies one create, update, replace or delete, idempotently: an
	 * action retried after a crash finds its own earlier result instead
	 * of making a second one. On success *result (new ref, may be NULL
	 * for a delete) is what the resource is now. */
	int (*apply)(rc_driver *d, const rc_action *a, json_t **result);

	/* Waits, up to timeout seconds, until what the action touched has
	 * settled: for a create, update or replace, until it is healthy;
	 * for a delete, until the object is gone (not merely being
	 * deleted), so that what is made next cannot meet it. RC_ETIMEOUT
	 * otherwise, with the reason: what is unhealthy, or what still
	 * holds the deleted object. The engine calls it after every
	 * successful apply but a hook's; a replace is waited on as a
	 * create (its apply waits for the old object to be gone before it
	 * creates the new one). May be NULL: then apply must not return
	 * before the change has settled. */
	int (*wait)(rc_driver *d, const rc_action *a, long timeout);

	/* Runs a one-off command for a hook; spec is the hook's JSON:
	 * {name, run: [argv], where: "target"|"local", service, env: {},
	 * timeout: seconds, run_id}. Placeholders are already substituted;
	 * run_id is the apply's run (a hook retried after a crash of the
	 * same run may find what its first attempt made). */
	int (*run)(rc_driver *d, const json_t *spec, rc_run_result *res);

	/* Optional: what became of the hook run that spec describes, started
	 * by an earlier, interrupted run. spec is as run() was given it,
	 * run_id being that earlier run's, so the driver finds what that
	 * attempt made: a Kubernetes Job by its name, an ECS task by its
	 * startedBy, a Heroku dyno by its name (and its logs), a local
	 * process by its mark or its recorded exit status. While it is still
	 * running, waits for it up to wait seconds (0: does not wait). Sets
	 * *state; for RC_HOOK_SUCCEEDED and RC_HOOK_FAILED fills res (exit
	 * code, the end of its output) as far as the platform still tells.
	 * Changes nothing. An error is only a failure to ask (the platform
	 * did not answer); no trace at all is RC_HOOK_NOT_STARTED when the
	 * driver can be sure of it, else RC_HOOK_UNKNOWN. May be NULL: every
	 * such hook is then RC_HOOK_UNKNOWN. */
	int (*hook_status)(rc_driver *d, const json_t *spec, long wait,
			   rc_hook_state *state, rc_run_result *res);

	/* Asks the platform what a create or update would make, changing
	 * nothing (`plan --server-dry-run`): *result is the resulting body
	 * in normal form, or NULL when the driver has nothing to say for
	 * that action. An error is what the platform would refuse (a
	 * validation, an admission webhook, a conflict). May be NULL. */
	int (*dry_run)(rc_driver *d, const rc_action *a, json_t **result);

	/* Optional: watches the environment for changes made outside
	 * reconcile, so that `reconcile controller` re-plans only the
	 * environment that changed instead of re-listing everything; a
	 * driver without it is re-planned every target.drift_interval.
	 *
	 * Blocks in the caller's thread (the controller gives each watched
	 * environment one) until *stop becomes nonzero, then returns 0
	 * within about a second; or returns a negative RC_E* code on an
	 * error it cannot ride out (a denied watch, a kind not served),
	 * after which the controller polls that environment. Failures it
	 * can ride out (a dropped connection, an expired resourceVersion,
	 * a 5xx) it retries with backoff, saying so in the log.
	 *
	 * desired is what expand() returned (the kinds to watch, and the
	 * fields that matter: the same view observe() gives). It is
	 * borrowed until the driver calls changed(arg, NULL, NULL), once,
	 * to say it copied what it needs (a watch held for weeks keeps a
	 * compact form, not every body); the caller may then release it. A
	 * driver that never calls it reads desired for the whole call. The
	 * baseline
	 * is what the driver lists when it starts, so start (or restart) it
	 * after an apply: a change of reconcile's own made while it runs is
	 * reported like any other, and the re-plan finds nothing to do.
	 *
	 * changed(arg, env, key) is called from the watch's threads (and
	 * changed(arg, NULL, NULL) as above, from the caller's), never
	 * two calls at once, for each resource key whose body (normal form,
	 * as observe() returns it) appeared, disappeared or differs from the
	 * last one seen; changes that do not touch the body (status, the
	 * resourceVersion, managedFields) are not reported. Reports are
	 * debounced per environment: a burst of changes arrives once, a
	 * short while (about 200 ms) after its first change, each key once.
	 * changed must return quickly (queue the work). */
	int (*watch)(rc_driver *d, const rc_resource_set *desired,
		     void (*changed)(void *arg, const char *env,
				     const char *key),
		     void *arg, volatile int *stop);
} rc_driver_ops;

/* The registered driver of that name, or NULL. */
const rc_driver_ops *rc_driver_find(const char *name);

#endif
