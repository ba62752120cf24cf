/*
 * The plan: an ordered graph of actions that takes the actual state to the
 * desired one. Built by the engine from desired resources (the drivers'
 * expansion of the configuration), actual resources (their observation),
 * and what reconcile applied last (the journal). Drivers never plan:
 * they only say which fields cannot change in place.
 *
 * Rules:
 *  - a desired resource with no actual one is created; one whose managed
 *    fields differ (three-way diff, ignore rules applied) is updated, or
 *    replaced when a changed field is immutable for its kind;
 *  - an actual resource nobody declares any more is deleted only when it
 *    carries reconcile's ownership mark and its environment's policy
 *    prunes (or the plan destroys); otherwise it is reported as kept;
 *  - a plan that would delete every resource of an environment while the
 *    source declares none for it is refused unless forced;
 *  - order: a resource's dependencies first (addons before the services
 *    that use them); deletions in reverse; an environment's pre_apply hooks
 *    before its changes and post_apply hooks after them (hooks run only in
 *    an environment that has changes, but a hook an interrupted run left
 *    unfinished is carried into the next plan whatever it holds);
 *    `depends_on` environments first.
 */
#ifndef RC_PLAN_H
#define RC_PLAN_H

#include <jansson.h>

#include "reconciler/base/buf.h"
#include "reconciler/diff.h"
#include "drivers/resource.h"

#define RC_PLAN_FORMAT_VERSION 1

/* What one environment's policy asks of the plan. */
typedef struct {
	const char *env;
	bool prune;
	const char *const *ignore; /* JSON pointers into bodies of the env */
	const char *const *ignore_for; /* per pointer: "kind/name" or "*";
					  NULL: every pointer is for "*" */
	size_t nignore;
	const char *const *depends_on; /* environments applied first */
	size_t ndepends_on;
	const char *label; /* "heroku: joplin-staging", shown in the header */
	const char *branch; /* policy.branch it was read from, or NULL */
	bool allow_replace; /* apply may replace; else a replace is refused */
	/* non-NULL: the environment is gone from the configuration (a
	   generated one whose item disappeared, past its ttl) and everything
	   it owns is deleted, for this reason */
	const char *retire;
	const char *commit; /* the commit it was read at, or NULL */
	bool manual; /* policy.apply: manual: applied only when approved */
} rc_plan_env;

/* A hook of an environment, in phase order. */
typedef struct {
	const char *env;
	const char *name;
	bool post; /* post_apply, else pre_apply */
	json_t *spec; /* {run, where, timeout, irreversible, service, env} */
	bool irreversible;
} rc_plan_hook;

typedef struct {
	const rc_resource_set *desired;
	const rc_resource_set *actual;
	const json_t *last;        /* key -> body last applied, or NULL */
	const rc_plan_env *envs;   /* every environment the plan covers */
	size_t nenvs;
	const rc_plan_hook *hooks;
	size_t nhooks;
	/* Whether a change at path of a resource of kind cannot be made in
	 * place (the driver's answer); NULL: everything can. */
	bool (*immutable)(const char *driver, const char *kind,
			  const char *path, void *arg);
	void *immutable_arg;
	bool destroy; /* plan the removal of everything owned */
	bool force;   /* allow deleting every resource of an environment */
	/* hooks an interrupted run left unfinished: {"<env>/hook/<name>":
	   {run, action, spec, irreversible}} (reconciler/engine.h), or
	   NULL. Each is carried into the plan as one action, whether or not
	   its environment has changes: merged into the hook's own action
	   when the configuration plans it too (one action, never two),
	   else after the environment's changes. */
	const json_t *unfinished;
} rc_plan_input;

typedef struct {
	char *env;
	char *key;
	bool precious; /* kept although pruned: it holds data (--force) */
	char *health;  /* the observed health text, or NULL */
} rc_plan_kept;

typedef struct {
	char *source;         /* where the configuration came from: an
				 absolute directory or a URL without
				 credentials; NULL when unknown */
	char *ref;            /* the --ref it was planned at, or NULL */
	char *commit;         /* the source's commit, or NULL */
	char *desired_digest; /* sha256 of every desired body */
	char *secret_key;     /* rc_secret_key_id() of the key its secrets
				 were hashed with, or NULL */
	json_t *observed;     /* key -> fingerprint of every observed resource */
	char **envs;
	size_t nenvs;
	char **env_labels;
	char **env_branches;  /* per environment: policy.branch, or NULL */
	char **env_commits;   /* per environment: its commit, or NULL */
	bool *env_manual;     /* per environment: policy.apply is manual */
	char *rollback_of;    /* a rollback plan: the run it undoes */
	rc_action *actions;   /* in apply order */
	size_t n, cap;
	rc_plan_kept *kept;   /* owned, undeclared, not pruned */
	size_t nkept;
	rc_plan_kept *unhealthy; /* no action planned, but the driver says
				    it is not serving as declared */
	size_t nunhealthy;
	char **notes;         /* what the reviewer should know that is not an
				 action (an environment waiting for its ttl) */
	size_t nnotes;
} rc_plan;

/* Sets p's environments to n empty slots (names, labels, branches,
 * commits), releasing any it had. */
void rc_plan_envs_alloc(rc_plan *p, size_t n);
/* Appends a formatted note to a list of notes. */
void rc_notes_vadd(char ***notes, size_t *n, const char *fmt, va_list ap);
/* Adds a note (printf-style). */
void rc_plan_note(rc_plan *p, const char *fmt, ...) RC_PRINTF(2, 3);
/* Copies src's environments into dst. */
void rc_plan_envs_copy(rc_plan *dst, const rc_plan *src);

/* The index of environment env in p, or SIZE_MAX. */
size_t rc_plan_env_index(const rc_plan *p, const char *env);

/* Appends the action that runs a hook of env, keyed "<env>/hook/<name>":
 * spec is its JSON (the reference is taken), reason what the reviewer
 * reads beside it ("pre_apply hook"). */
rc_action *rc_plan_add_hook(rc_plan *p, const char *env, const char *name,
			    json_t *spec, bool irreversible,
			    const char *reason);
/* Makes hook action a the one that settles a hook an interrupted run
 * left unfinished (entry {run, action, spec, irreversible}): its desired
 * spec gains "unfinished": {run, action, spec} (what the apply asks the
 * driver about first; the plan's JSON carries it) and its reason says
 * "unfinished in run <run>". */
void rc_plan_carry_hook(rc_action *a, const json_t *entry);
/* Adds the dependency of a on the action with id dep (once). */
void rc_action_add_dep(rc_action *a, const char *dep);

/* Leaves environments out of p: every action of an environment with
 * leave[e] set (e indexes p->envs) is removed, and so is every action
 * that depends on a removed one; leave[] is then also set for the
 * environments that lost actions that way. Returns how many actions were
 * removed. */
size_t rc_plan_leave_envs(rc_plan *p, bool *leave);

/* Builds the plan; 0, or RC_EINVALID when refused (message says why). */
int rc_plan_build(rc_plan *out, const rc_plan_input *in);
void rc_plan_release(rc_plan *p);
/* Counts per op (index by rc_op). */
void rc_plan_counts(const rc_plan *p, size_t counts[5]);

/* The reviewer's text ("+", "~", "-", "!", ">"), colour on request. */
void rc_plan_render_text(const rc_plan *p, rc_buf *out, bool color);
/* The versioned JSON form (docs/plan-format.md), new ref. */
json_t *rc_plan_to_json(const rc_plan *p);
/* Reads the JSON form back (a saved plan). */
int rc_plan_from_json(rc_plan *out, const json_t *j);

#endif
