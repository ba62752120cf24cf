/* Saved plans against the present, and rollback plans from the journal. */
#include "reconciler/base/common.h"
#include "reconciler/engine.h"
#include "state/history.h"
#include "state/journal.h"
#include "state/secret_key.h"

int rc_engine_check_saved(rc_engine *e, const rc_plan *saved,
			  const rc_plan *fresh)
{
	rc_buf why = RC_BUF_INIT_MAX(1 << 16);
	const char *k;
	json_t *v;
	size_t moved = 0;
	int rc = 0;

	RC_UNUSED(e);
	if ((saved->commit == NULL) != (fresh->commit == NULL) ||
	    (saved->commit && strcmp(saved->commit, fresh->commit))) {
		rc_buf_printf(&why, "\n  the source moved: the plan was made at "
				    "commit %.12s, the source is now at %.12s",
			      saved->commit ? saved->commit : "(none)",
			      fresh->commit ? fresh->commit : "(none)");
		moved++;
	} else if (saved->desired_digest && fresh->desired_digest &&
		   strcmp(saved->desired_digest, fresh->desired_digest)) {
		rc_buf_puts(&why, "\n  the configuration changed since the "
				  "plan (uncommitted edits?)");
		moved++;
	}
	for (size_t i = 0; i < saved->nenvs; i++) {
		const char *was = saved->env_commits[i], *now = NULL;

		for (size_t j = 0; j < fresh->nenvs; j++)
			if (!strcmp(fresh->envs[j], saved->envs[i]))
				now = fresh->env_commits[j];
		if (!was || (now && !strcmp(was, now)))
			continue;
		rc_buf_printf(&why,
			      "\n  environment '%s': branch '%s' moved from "
			      "commit %.12s to %.12s",
			      saved->envs[i],
			      saved->env_branches[i] ? saved->env_branches[i]
						     : "?",
			      was, now ? now : "(none)");
		moved++;
	}
	if ((saved->secret_key == NULL) != (fresh->secret_key == NULL) ||
	    (saved->secret_key &&
	     strcmp(saved->secret_key, fresh->secret_key))) {
		/* every secret's hash differs: what else changed cannot be
		 * told from the hashes */
		rc_buf_printf(&why,
			      "\n  the hash key for secrets changed since the "
			      "plan (key %s, now %s: %s or $%s was replaced "
			      "or lost); every secret shows as changed once",
			      saved->secret_key ? saved->secret_key : "(none)",
			      fresh->secret_key ? fresh->secret_key : "(none)",
			      RC_SECRET_KEY_FILE, RC_SECRET_KEY_ENV);
		moved++;
		goto done;
	}
	json_object_foreach(saved->observed, k, v) {
		json_t *now = json_object_get(fresh->observed, k);

		if (!now) {
			rc_buf_printf(&why, "\n  %s no longer exists", k);
			moved++;
		} else if (!json_equal(v, now)) {
			rc_buf_printf(&why, "\n  %s changed since the plan", k);
			moved++;
		}
	}
	json_object_foreach(fresh->observed, k, v) {
		if (!json_object_get(saved->observed, k)) {
			rc_buf_printf(&why, "\n  %s appeared since the plan", k);
			moved++;
		}
	}
done:
	if (moved)
		rc = rc_error_set(RC_ECONFLICT, RC_ECLASS_STATE,
				  "the saved plan is stale; make a new one:%s",
				  why.ptr);
	rc_buf_release(&why);
	return rc;
}

static bool in_scope(const rc_engine *e, const char *env)
{
	for (size_t i = 0; i < e->nenvs; i++)
		if (!strcmp(e->envs[i].env->name, env))
			return true;
	return false;
}

/* What one run did to the environments in scope, as the journals tell. */
typedef struct {
	char *id, *time, *commit, *rollback_of;
	bool touches;   /* its run-start names an environment in scope */
	size_t nchanged, nhealed;
	rc_buf changed; /* the first few keys it changed, for the reader */
	rc_buf healed;  /* the first few it only brought back */
} run_effect;

typedef struct {
	rc_engine *e;
	run_effect *runs;
	size_t n;
} effects;

static run_effect *current_run(effects *fx, const char *run)
{
	if (fx->n && !strcmp(fx->runs[fx->n - 1].id, run))
		return &fx->runs[fx->n - 1];
	fx->runs = rc_realloc(fx->runs, (fx->n + 1) * sizeof(run_effect));
	memset(&fx->runs[fx->n], 0, sizeof(run_effect));
	fx->runs[fx->n].id = rc_strdup(run);
	fx->runs[fx->n].changed = (rc_buf)RC_BUF_INIT_MAX(4096);
	fx->runs[fx->n].healed = (rc_buf)RC_BUF_INIT_MAX(4096);
	return &fx->runs[fx->n++];
}

static char *str_or_null(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? rc_strdup(s) : NULL;
}

static void fx_run_start(void *arg, const char *run, const json_t *rec)
{
	effects *fx = arg;
	run_effect *r = current_run(fx, run);
	const char *type = json_string_value(json_object_get(rec, "type"));
	size_t i;
	json_t *v;

	if (!type || strcmp(type, "run-start"))
		return;
	r->time = str_or_null(rec, "time");
	r->commit = str_or_null(rec, "commit");
	r->rollback_of = str_or_null(rec, "rollback_of");
	json_array_foreach(json_object_get(rec, "environments"), i, v)
		if (json_is_string(v) && in_scope(fx->e, json_string_value(v)))
			r->touches = true;
}

/* Adds "key (what)" to a list of at most three, counting the rest. */
static void list_key(rc_buf *b, size_t *n, const char *key, const char *what)
{
	if ((*n)++ < 3)
		rc_buf_printf(b, "%s%s%s%s%s", b->len ? ", " : "", key,
			      what && *what ? " (" : "", what ? what : "",
			      what && *what ? ")" : "");
}

static void fx_effect(void *arg, const char *run, const json_t *in,
		      const json_t *last)
{
	effects *fx = arg;
	run_effect *r = current_run(fx, run);
	const char *op = json_string_value(json_object_get(in, "op"));
	const char *key = json_string_value(json_object_get(in, "key"));
	const char *env = json_string_value(json_object_get(in, "env"));
	const json_t *desired = json_object_get(in, "desired");
	const json_t *was = key ? json_object_get(last, key) : NULL;

	if (!op || !key || !env || !in_scope(fx->e, env) || !strcmp(op, "run"))
		return;
	r->touches = true;
	if (!strcmp(op, "delete")) {
		list_key(&r->changed, &r->nchanged, key, "removed");
	} else if (!was) {
		list_key(&r->changed, &r->nchanged, key, "added");
	} else if (desired && rc_json_equal(desired, was)) {
		list_key(&r->healed, &r->nhealed, key, NULL);
	} else {
		/* the paths whose value it changed */
		rc_changes ch = {0};
		rc_buf paths = RC_BUF_INIT_MAX(1024);

		rc_diff(&ch, desired, was, was, NULL, 0);
		for (size_t i = 0; i < ch.n && i < 3; i++) {
			if (i)
				rc_buf_puts(&paths, ", ");
			rc_pointer_dotted(&paths, ch.items[i].path);
		}
		if (ch.n > 3)
			rc_buf_puts(&paths, ", ...");
		list_key(&r->changed, &r->nchanged, key, paths.ptr);
		rc_changes_release(&ch);
		rc_buf_release(&paths);
	}
}

static void effects_release(effects *fx)
{
	for (size_t i = 0; i < fx->n; i++) {
		free(fx->runs[i].id);
		free(fx->runs[i].time);
		free(fx->runs[i].commit);
		free(fx->runs[i].rollback_of);
		rc_buf_release(&fx->runs[i].changed);
		rc_buf_release(&fx->runs[i].healed);
	}
	free(fx->runs);
}

/* "run 1b2c... (started T, commit abc1234)" */
static void describe_run(rc_buf *b, const run_effect *r)
{
	rc_buf_printf(b, "run %s (started %s", r->id, r->time ? r->time : "?");
	if (r->commit)
		rc_buf_printf(b, ", commit %.7s", r->commit);
	rc_buf_putc(b, ')');
}

static void list_more(rc_buf *b, const rc_buf *list, size_t n)
{
	rc_buf_puts(b, list->ptr);
	if (n > 3)
		rc_buf_printf(b, " and %zu more", n - 3);
}

/*
 * The run to roll back: run_id, or else the newest run that applied a
 * configuration change in scope (a body unlike what reconcile had applied
 * before it: a new commit or an edited environment, a resource added or
 * removed). Runs that only healed drift (brought resources back to what
 * was already applied) are passed over: undoing them would undo the heal,
 * not the deploy. Notes on plan say which run and why, and which runs were
 * passed over.
 */
static char *pick_run(rc_engine *e, const char *run_id, rc_plan *plan)
{
	effects fx = {e, NULL, 0};
	rc_replay_observer obs = {fx_run_start, fx_effect, &fx};
	rc_buf skipped = RC_BUF_INIT_MAX(1 << 16);
	char *id = NULL;
	size_t i, nskipped = 0;

	if (run_id)
		return rc_strdup(run_id);
	json_decref(rc_engine_replay(e->state_dir, NULL, &obs));
	for (i = fx.n; i-- > 0 && !id;) {
		run_effect *r = &fx.runs[i];
		rc_buf why = RC_BUF_INIT_MAX(1 << 16);

		if (!r->touches)
			continue;
		describe_run(&why, r);
		if (r->nchanged) {
			id = rc_strdup(r->id);
			rc_buf_puts(&why, ", the newest run that changed the "
					  "configuration: ");
			list_more(&why, &r->changed, r->nchanged);
			if (r->rollback_of)
				rc_buf_printf(&why, "; it rolled back run %s",
					      r->rollback_of);
			rc_plan_note(plan, "rolling back %s", why.ptr);
		} else {
			rc_buf_printf(&skipped, "\n  %s: ", why.ptr);
			if (r->nhealed) {
				rc_buf_puts(&skipped, "it only healed drift (");
				list_more(&skipped, &r->healed, r->nhealed);
				rc_buf_puts(&skipped, " brought back to what "
						      "was applied)");
			} else {
				rc_buf_puts(&skipped, "nothing it did took "
						      "effect");
			}
			nskipped++;
		}
		rc_buf_release(&why);
	}
	if (id && nskipped)
		rc_plan_note(plan, "passed over %zu newer run%s that changed "
				   "no configuration:%s",
			     nskipped, nskipped == 1 ? "" : "s", skipped.ptr);
	if (!id && nskipped)
		rc_error_set(RC_ENOTFOUND, RC_ECLASS_STATE,
			     "no run in '%s' changed the configuration of "
			     "these environments; the newer runs only healed "
			     "drift:%s\nname a run to roll it back anyway: "
			     "'reconcile rollback RUN-ID'",
			     e->state_dir, skipped.ptr);
	else if (!id)
		rc_error_set(RC_ENOTFOUND, RC_ECLASS_STATE,
			     "no run to roll back in '%s'", e->state_dir);
	rc_buf_release(&skipped);
	effects_release(&fx);
	return id;
}

/* Appends "NAME, NAME" of an environment's on_rollback hooks. */
static void hook_names(rc_buf *b, const rc_env *env)
{
	for (size_t h = 0; h < env->non_rollback; h++)
		rc_buf_printf(b, "%s%s", h ? ", " : "", env->on_rollback[h].name);
}

/* The irreversible steps among the intents to undo of env, listed as
 * "op key, op key" into b; how many. */
static size_t irreversible_steps(rc_buf *b, const json_t *undo, const char *env)
{
	size_t i, n = 0;
	const json_t *in;

	json_array_foreach((json_t *)(uintptr_t)undo, i, in) {
		const char *ienv = json_string_value(json_object_get(in, "env"));

		if (!ienv || strcmp(ienv, env) ||
		    !json_is_true(json_object_get(in, "irreversible")))
			continue;
		const char *op = json_string_value(json_object_get(in, "op"));
		const char *key = json_string_value(json_object_get(in, "key"));
		const char *hook = key ? strstr(key, "/hook/") : NULL;

		if (n++)
			rc_buf_puts(b, ", ");
		if (op && !strcmp(op, "run") && hook)
			rc_buf_printf(b, "the hook %s", hook + 6);
		else
			rc_buf_printf(b, "%s %s", op ? op : "?", key ? key : "?");
	}
	return n;
}

/* Without --force: says what --force would run first, per environment
 * that has on_rollback hooks. */
static void explain_refusal(const rc_engine *e, rc_buf *b, const json_t *undo)
{
	for (size_t k = 0; k < e->nenvs; k++) {
		const rc_env *env = e->envs[k].env;
		rc_buf steps = RC_BUF_INIT_MAX(1 << 16);

		if (env->non_rollback &&
		    irreversible_steps(&steps, undo, env->name)) {
			rc_buf_printf(b, "\n  with --force, environment '%s' "
					 "first runs its on_rollback hooks (",
				      env->name);
			hook_names(b, env);
			rc_buf_puts(b, "), and data written since the run is "
				       "lost");
		}
		rc_buf_release(&steps);
	}
}

static const char *rolled_back_value(void *arg, const char *name)
{
	return strncmp(name, "rolled_back.", 12)
		       ? NULL
		       : json_string_value(json_object_get(arg, name + 12));
}

/*
 * rollback --force goes back past irreversible steps: in each environment
 * that has on_rollback hooks, they run first (restoring the backup the
 * run took, say), and everything else of the rollback waits for them, so
 * that a failing hook stops the rollback there. The hooks see the undone
 * run as {{ rolled_back.* }}: its id, its commit for that environment, and
 * the date and time its own hooks saw as {{ run.date }} and
 * {{ run.time }}. Without on_rollback hooks the irreversible steps are
 * only noted.
 */
static void add_rollback_hooks(rc_engine *e, rc_plan *plan, const char *id,
			       const json_t *undo, const json_t *start)
{
	const char *started = json_string_value(json_object_get(start, "time"));
	const char *prev = NULL;

	for (size_t k = 0; k < e->nenvs; k++) {
		const rc_env *env = e->envs[k].env;
		rc_buf steps = RC_BUF_INIT_MAX(1 << 16);
		const char *commit;
		char date[16] = "", tm[16] = "";

		if (!irreversible_steps(&steps, undo, env->name)) {
			rc_buf_release(&steps);
			continue;
		}
		if (!env->non_rollback) {
			rc_plan_note(plan,
				     "environment '%s': run %s's irreversible "
				     "steps (%s) are not undone; hooks."
				     "on_rollback could restore a backup "
				     "first",
				     env->name, id, steps.ptr);
			rc_buf_release(&steps);
			continue;
		}
		commit = json_string_value(json_object_get(
			json_object_get(start, "env_commits"), env->name));
		if (!commit)
			commit = json_string_value(json_object_get(start, "commit"));
		if (started)
			rc_engine_stamp(started, date, tm);
		for (size_t h = 0; h < env->non_rollback; h++) {
			json_t *spec = rc_engine_hook_spec(&env->on_rollback[h]);
			rc_buf sc = RC_BUF_INIT_MAX(64);
			rc_action *a;

			rc_buf_printf(&sc, "%.7s", commit ? commit : "");
			json_object_set_new(
				spec, "rolled_back",
				json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", id,
					  "commit", commit ? commit : "",
					  "short_commit", sc.ptr, "date", date,
					  "time", tm));
			/* filled in now: the reviewer sees which backup
			 * is restored */
			rc_engine_fill_hook(spec, rolled_back_value,
					    json_object_get(spec,
							    "rolled_back"));
			rc_buf_release(&sc);
			a = rc_plan_add_hook(plan, env->name,
					     env->on_rollback[h].name, spec,
					     env->on_rollback[h].irreversible,
					     "on_rollback hook");
			if (prev)
				rc_action_add_dep(a, prev);
			prev = a->id;
		}
		{
			rc_buf hooks = RC_BUF_INIT_MAX(4096);

			hook_names(&hooks, env);
			rc_plan_note(plan,
				     "environment '%s': going back past run "
				     "%s's irreversible steps (%s) runs the "
				     "on_rollback hooks (%s) first; data "
				     "written since that run started (%s) is "
				     "lost",
				     env->name, id, steps.ptr, hooks.ptr,
				     started ? started : "?");
			rc_buf_release(&hooks);
		}
		rc_buf_release(&steps);
	}
}

int rc_engine_rollback_plan(rc_engine *e, const char *run_id, bool force,
			    rc_plan *plan)
{
	rc_journal_contents c = {0};
	rc_buf path = RC_BUF_INIT_MAX(PATH_MAX * 2), refused = RC_BUF_INIT_MAX(1 << 16);
	json_t *intents = json_object(), *undo = json_array(), *prev = NULL;
	rc_buf refused_hooks = RC_BUF_INIT_MAX(1 << 16);
	rc_plan current;
	char *id;
	int rc;
	size_t i;

	memset(plan, 0, sizeof(*plan));
	/* the present: observe everything in scope */
	if ((rc = rc_engine_plan(e, &current)) < 0)
		goto done;
	if (!(id = pick_run(e, run_id, plan))) {
		rc = RC_ENOTFOUND;
		rc_plan_release(&current);
		goto done;
	}
	prev = rc_engine_last_applied(e->state_dir, id);
	rc_buf_printf(&path, "%s/runs/%s.journal", e->state_dir, id);
	if ((rc = rc_journal_read(&c, path.ptr)) < 0) {
		if (rc == RC_ENOTFOUND)
			rc_error_set(RC_ENOTFOUND, RC_ECLASS_STATE,
				     "no run '%s' in '%s'", id, e->state_dir);
		free(id);
		rc_plan_release(&current);
		goto done;
	}
	/* the actions that took effect, newest first */
	for (i = 0; i < c.n; i++) {
		const json_t *r = c.records[i];
		const char *type = json_string_value(json_object_get(r, "type"));
		const char *action = json_string_value(json_object_get(r, "action"));
		const char *st = json_string_value(json_object_get(r, "status"));

		if (!type || !action)
			continue;
		if (!strcmp(type, "intent"))
			json_object_set(intents, action, (json_t *)(uintptr_t)r);
		else if (!strcmp(type, "outcome") && st && !strcmp(st, "ok") &&
			 json_object_get(intents, action))
			json_array_insert(undo, 0, json_object_get(intents, action));
	}
	/* every pending intent (an interrupted run) may have taken effect */
	{
		const char *k;
		json_t *v;

		json_object_foreach(intents, k, v) {
			bool found = false;
			size_t j;
			json_t *u;

			json_array_foreach(undo, j, u)
				found |= u == v;
			if (!found)
				json_array_insert(undo, 0, v);
		}
	}
	plan->rollback_of = rc_strdup(id);
	if (force)
		add_rollback_hooks(e, plan, id, undo,
				   c.n ? c.records[0] : NULL);
	else
		explain_refusal(e, &refused_hooks, undo);
	for (i = 0; i < json_array_size(undo); i++) {
		const json_t *in = json_array_get(undo, i);
		const char *op = json_string_value(json_object_get(in, "op"));
		const char *key = json_string_value(json_object_get(in, "key"));
		const char *env = json_string_value(json_object_get(in, "env"));
		const json_t *snap = json_object_get(in, "snapshot");
		bool irreversible = json_is_true(json_object_get(in, "irreversible"));

		if (!op || !key || !env || !in_scope(e, env))
			continue;
		if (irreversible && !force) {
			rc_buf_printf(&refused, "\n  %s %s is irreversible", op, key);
			continue;
		}
		if (!strcmp(op, "run"))
			continue; /* a hook has nothing to restore */
		{
			const rc_resource *now = rc_resource_set_find(&e->actual, key);
			const rc_resource *d = rc_resource_set_find(&e->desired, key);
			const char *slash1 = strchr(key, '/'), *slash2;
			rc_action *a;
			char *kind, *name;

			if (!slash1 || !(slash2 = strchr(slash1 + 1, '/')))
				continue;
			kind = rc_strndup(slash1 + 1, (size_t)(slash2 - slash1 - 1));
			name = rc_strdup(slash2 + 1);
			RC_GROW(plan->actions, plan->cap, plan->n + 1);
			a = &plan->actions[plan->n++];
			memset(a, 0, sizeof(*a));
			if (!strcmp(op, "create")) {
				a->op = RC_OP_DELETE;
				if (d && d->precious) {
					a->irreversible = true;
					a->reason = rc_strdup("deleting it loses its data");
				}
			} else {
				/* what reconcile had applied before the run, when
				 * it had: restoring what it manages, not the
				 * server's own fields of the snapshot */
				const json_t *was = json_object_get(prev, key);

				a->op = now ? RC_OP_UPDATE : RC_OP_CREATE;
				a->desired = json_incref(
					(json_t *)(uintptr_t)(was ? was : snap));
				if (!snap || json_is_null(snap)) {
					a->op = RC_OP_DELETE;
					a->desired = NULL;
				}
			}
			if (now) {
				a->actual = json_incref(now->body);
				a->fingerprint = rc_json_fingerprint(now->body);
			} else if (a->op == RC_OP_DELETE) {
				plan->n--; /* already gone */
				free(kind);
				free(name);
				continue;
			}
			if (a->desired && a->actual)
				/* three-way with what the run applied: what it
				   added (a config var) is removed */
				rc_diff(&a->changes, a->desired,
					json_object_get(in, "desired"),
					a->actual, NULL, 0);
			else if (a->desired) {
				json_t *empty = json_object();

				rc_diff(&a->changes, a->desired, NULL, empty, NULL, 0);
				json_decref(empty);
			}
			if (a->op == RC_OP_UPDATE && a->changes.n == 0) {
				json_decref(a->desired);
				json_decref(a->actual);
				free(a->fingerprint);
				rc_changes_release(&a->changes);
				plan->n--;
				free(kind);
				free(name);
				continue;
			}
			{
				rc_buf aid = RC_BUF_INIT_MAX(4096);

				rc_buf_printf(&aid, "%s:%s", rc_op_name(a->op), key);
				a->id = rc_buf_detach(&aid);
			}
			a->key = rc_strdup(key);
			a->env = rc_strdup(env);
			a->kind = kind;
			a->name = name;
			a->driver = rc_strdup(now ? now->driver
						  : d ? d->driver
						      : "local");
			if (!a->reason) {
				rc_buf r = RC_BUF_INIT_MAX(256);

				rc_buf_printf(&r, "rollback of run %.8s", id);
				a->reason = rc_buf_detach(&r);
			}
			/* undo in reverse: each step after the previous one */
			if (plan->n > 1) {
				a->deps = rc_calloc(1, sizeof(char *));
				a->deps[0] = rc_strdup(plan->actions[plan->n - 2].id);
				a->ndeps = 1;
			}
		}
	}
	plan->observed = json_incref(current.observed);
	plan->commit = current.commit ? rc_strdup(current.commit) : NULL;
	/* where a saved rollback plan is checked against the present */
	plan->source = current.source ? rc_strdup(current.source) : NULL;
	plan->ref = current.ref ? rc_strdup(current.ref) : NULL;
	plan->desired_digest = current.desired_digest
				       ? rc_strdup(current.desired_digest)
				       : NULL;
	plan->secret_key = current.secret_key ? rc_strdup(current.secret_key)
					      : NULL;
	rc_plan_envs_copy(plan, &current);
	rc_plan_release(&current);
	rc = 0;
	if (refused.len)
		rc = rc_error_set(RC_ECONFLICT, RC_ECLASS_STATE,
				  "run %s cannot be rolled back past an "
				  "irreversible step (a rollback cannot undo "
				  "it; --force rolls back the rest):%s%s",
				  id, refused.ptr, refused_hooks.ptr);
	free(id);
done:
	json_decref(prev);
	json_decref(intents);
	json_decref(undo);
	rc_journal_contents_release(&c);
	rc_buf_release(&path);
	rc_buf_release(&refused);
	rc_buf_release(&refused_hooks);
	return rc;
}
