/* Saved plans against the present, and rollback plans from the journal. */
#include "reconciler/base/common.h"
#include "reconciler/engine.h"
#include "state/history.h"
#include "state/journal.h"

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

/* The run to roll back: run_id, or the newest run touching the scope. */
static char *pick_run(rc_engine *e, const char *run_id)
{
	rc_run_summary *runs = NULL;
	size_t n = 0;
	char *id = NULL;

	if (run_id)
		return rc_strdup(run_id);
	if (rc_history_load(&runs, &n, e->state_dir, NULL) < 0)
		return NULL;
	for (size_t i = 0; i < n && !id; i++)
		for (size_t j = 0; j < runs[i].nenvs && !id; j++)
			if (in_scope(e, runs[i].envs[j]))
				id = rc_strdup(runs[i].id);
	rc_history_free(runs, n);
	if (!id)
		rc_error_set(RC_ENOTFOUND, RC_ECLASS_STATE,
			     "no run to roll back in '%s'", e->state_dir);
	return id;
}

int rc_engine_rollback_plan(rc_engine *e, const char *run_id, bool force,
			    rc_plan *plan)
{
	rc_journal_contents c = {0};
	rc_buf path = RC_BUF_INIT_MAX(PATH_MAX * 2), refused = RC_BUF_INIT_MAX(1 << 16);
	json_t *intents = json_object(), *undo = json_array(), *prev = NULL;
	rc_plan current;
	char *id;
	int rc;
	size_t i;

	memset(plan, 0, sizeof(*plan));
	/* the present: observe everything in scope */
	if ((rc = rc_engine_plan(e, &current)) < 0)
		goto done;
	if (!(id = pick_run(e, run_id))) {
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
				rc_diff(&a->changes, a->desired, NULL, a->actual,
					NULL, 0);
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
	rc_plan_envs_copy(plan, &current);
	rc_plan_release(&current);
	rc = 0;
	if (refused.len)
		rc = rc_error_set(RC_ECONFLICT, RC_ECLASS_STATE,
				  "run %s cannot be rolled back past an "
				  "irreversible step (a rollback cannot undo "
				  "it; --force rolls back the rest):%s",
				  id, refused.ptr);
	free(id);
done:
	json_decref(prev);
	json_decref(intents);
	json_decref(undo);
	rc_journal_contents_release(&c);
	rc_buf_release(&path);
	rc_buf_release(&refused);
	return rc;
}
