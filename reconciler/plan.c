/* Building, ordering and rendering plans. */
#include "reconciler/base/common.h"
#include "reconciler/base/error.h"
#include "reconciler/plan.h"
#include "reconciler/base/strmap.h"

/* Environment name -> its rc_plan_env, for the duration of a build. */
static _Thread_local rc_strmap *env_index;

static const rc_plan_env *find_env(const rc_plan_input *in, const char *env)
{
	if (env_index)
		return rc_strmap_get(env_index, env);
	for (size_t i = 0; i < in->nenvs; i++)
		if (!strcmp(in->envs[i].env, env))
			return &in->envs[i];
	return NULL;
}

static rc_action *new_action(rc_plan *p, rc_op op, const rc_resource *r)
{
	rc_buf id = RC_BUF_INIT_MAX(4096);
	rc_action *a;

	RC_GROW(p->actions, p->cap, p->n + 1);
	a = &p->actions[p->n++];
	memset(a, 0, sizeof(*a));
	a->op = op;
	rc_buf_printf(&id, "%s:%s", op == RC_OP_RUN ? "run" : rc_op_name(op),
		      r->key);
	a->id = rc_buf_detach(&id);
	a->key = rc_strdup(r->key);
	a->env = rc_strdup(r->env);
	a->driver = rc_strdup(r->driver);
	a->kind = rc_strdup(r->kind);
	a->name = rc_strdup(r->name);
	return a;
}

void rc_action_add_dep(rc_action *a, const char *id)
{
	if (!strcmp(a->id, id))
		return;
	for (size_t i = 0; i < a->ndeps; i++)
		if (!strcmp(a->deps[i], id))
			return;
	a->deps = rc_realloc(a->deps, (a->ndeps + 1) * sizeof(char *));
	a->deps[a->ndeps++] = rc_strdup(id);
}

static void set_reason(rc_action *a, const char *fmt, ...) RC_PRINTF(2, 3);
static void set_reason(rc_action *a, const char *fmt, ...)
{
	rc_buf b = RC_BUF_INIT_MAX(4096);
	va_list ap;

	if (a->reason)
		rc_buf_printf(&b, "%s; ", a->reason);
	va_start(ap, fmt);
	rc_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	free(a->reason);
	a->reason = rc_buf_detach(&b);
}

static void add_kept(rc_plan_kept **list, size_t *n, const rc_resource *a,
		     bool precious)
{
	rc_plan_kept *k;

	*list = rc_realloc(*list, (*n + 1) * sizeof(rc_plan_kept));
	k = &(*list)[(*n)++];
	k->env = rc_strdup(a->env);
	k->key = rc_strdup(a->key);
	k->precious = precious;
	k->health = a->health ? rc_strdup(a->health) : NULL;
}

static void kept_release(rc_plan_kept *list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(list[i].env);
		free(list[i].key);
		free(list[i].health);
	}
	free(list);
}

static void plan_resource(rc_plan *p, const rc_plan_input *in,
			  const rc_resource *d, const rc_resource *a)
{
	const rc_plan_env *pe = find_env(in, d->env);
	const json_t *last = in->last ? json_object_get(in->last, d->key) : NULL;
	rc_changes ch = {0};
	rc_action *act;
	bool replace = false;
	size_t i;

	if (!a) {
		json_t *empty = json_object();

		rc_diff(&ch, d->body, NULL, empty, NULL, 0);
		json_decref(empty);
		act = new_action(p, RC_OP_CREATE, d);
		act->desired = json_incref(d->body);
		act->changes = ch;
		return;
	}
	{
		/* the ignore rules that apply to this resource */
		const char **ign = rc_calloc((pe ? pe->nignore : 0) + 1,
					     sizeof(char *));
		size_t nign = 0, klen = strlen(d->kind);

		for (i = 0; pe && i < pe->nignore; i++) {
			const char *f = pe->ignore_for ? pe->ignore_for[i] : "*";

			if (!strcmp(f, "*") ||
			    (!strncmp(f, d->kind, klen) && f[klen] == '/' &&
			     !strcmp(f + klen + 1, d->name)))
				ign[nign++] = pe->ignore[i];
		}
		rc_diff(&ch, d->body, last, a->body, ign, nign);
		free(ign);
	}
	if (ch.n == 0 && !a->adopt) {
		if (a->unhealthy)
			add_kept(&p->unhealthy, &p->nunhealthy, a, false);
		return;
	}
	for (i = 0; i < ch.n && in->immutable; i++)
		if (in->immutable(d->driver, d->kind, ch.items[i].path,
				  in->immutable_arg))
			break;
	replace = in->immutable && i < ch.n;
	act = new_action(p, replace ? RC_OP_REPLACE : RC_OP_UPDATE, d);
	act->desired = json_incref(d->body);
	act->actual = json_incref(a->body);
	act->fingerprint = a->fingerprint ? rc_strdup(a->fingerprint)
					  : rc_json_fingerprint(a->body);
	act->changes = ch;
	if (a->health)
		act->health = rc_strdup(a->health);
	if (a->adopt) {
		act->adopt = true;
		set_reason(act, "adopt: made outside reconcile, taken over "
				"by policy.adopt");
	}
	if (replace) {
		rc_buf field = RC_BUF_INIT_MAX(1 << 16);

		rc_pointer_dotted(&field, ch.items[i].path);
		set_reason(act, "%s cannot change in place", field.ptr);
		rc_buf_release(&field);
		if (pe && !pe->allow_replace)
			set_reason(act, "apply refuses it unless "
					"policy.allow_replace is true");
		if (a->precious) {
			act->irreversible = true;
			set_reason(act, "replacing it loses its data");
		}
	}
}

static void plan_delete(rc_plan *p, const rc_plan_input *in,
			const rc_plan_env *pe, const rc_resource *a)
{
	rc_action *act = new_action(p, RC_OP_DELETE, a);

	act->actual = json_incref(a->body);
	act->fingerprint = a->fingerprint ? rc_strdup(a->fingerprint)
					  : rc_json_fingerprint(a->body);
	if (a->health)
		act->health = rc_strdup(a->health);
	set_reason(act, "%s",
		   in->destroy  ? "destroy"
		   : pe->retire ? pe->retire
				: "no longer declared; pruned");
	if (a->precious) {
		act->irreversible = true;
		set_reason(act, "deleting it loses its data");
	}
}

/* Orders the actions: Kahn's algorithm, picking the earliest ready action
 * (environment order, then planning order) at each step. */
static int order(rc_plan *p)
{
	size_t n = p->n, done = 0, i, j;
	rc_strmap index = RC_STRMAP_INIT;
	size_t *indeg = rc_calloc(n + 1, sizeof(size_t));
	bool *taken = rc_calloc(n + 1, sizeof(bool));
	rc_action *sorted = rc_calloc(n + 1, sizeof(rc_action));
	int rc = 0;

	for (i = 0; i < n; i++)
		rc_strmap_put(&index, p->actions[i].id, (void *)(uintptr_t)(i + 1));
	for (i = 0; i < n; i++) {
		rc_action *a = &p->actions[i];
		size_t w = 0;

		/* dependencies on actions not in the plan are satisfied */
		for (j = 0; j < a->ndeps; j++) {
			if (rc_strmap_get(&index, a->deps[j]))
				a->deps[w++] = a->deps[j];
			else
				free(a->deps[j]);
		}
		a->ndeps = w;
		indeg[i] = w;
	}
	while (done < n) {
		size_t pick = n;

		for (i = 0; i < n; i++) {
			if (!taken[i] && indeg[i] == 0) {
				pick = i;
				break;
			}
		}
		if (pick == n) {
			rc = rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
					  "the plan has a dependency cycle "
					  "(around '%s')",
					  p->actions[0].id);
			break;
		}
		taken[pick] = true;
		sorted[done++] = p->actions[pick];
		for (i = 0; i < n; i++) {
			if (taken[i])
				continue;
			for (j = 0; j < p->actions[i].ndeps; j++)
				if (!strcmp(p->actions[i].deps[j],
					    p->actions[pick].id))
					indeg[i]--;
		}
	}
	if (rc == 0 && n) /* an empty plan has no array to copy into */
		memcpy(p->actions, sorted, n * sizeof(rc_action));
	free(sorted);
	free(taken);
	free(indeg);
	rc_strmap_release(&index);
	return rc;
}

/* Sorts actions by environment order (stable) before dependencies are
 * resolved, so that the output groups environments. */
static void group_by_env(rc_plan *p)
{
	rc_action *tmp = rc_calloc(p->n + 1, sizeof(rc_action));
	size_t w = 0;

	for (size_t e = 0; e < p->nenvs; e++)
		for (size_t i = 0; i < p->n; i++)
			if (!strcmp(p->actions[i].env, p->envs[e]))
				tmp[w++] = p->actions[i];
	for (size_t i = 0; i < p->n; i++) {
		size_t e;

		for (e = 0; e < p->nenvs; e++)
			if (!strcmp(p->actions[i].env, p->envs[e]))
				break;
		if (e == p->nenvs)
			tmp[w++] = p->actions[i];
	}
	if (p->n) /* an empty plan has no array to copy into */
		memcpy(p->actions, tmp, p->n * sizeof(rc_action));
	free(tmp);
}

static rc_action *find_action(rc_plan *p, rc_op op, const char *key)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->actions[i].op == op && !strcmp(p->actions[i].key, key))
			return &p->actions[i];
	return NULL;
}

static rc_action *action_for_key(rc_plan *p, const char *key)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->actions[i].op != RC_OP_DELETE &&
		    p->actions[i].op != RC_OP_RUN &&
		    !strcmp(p->actions[i].key, key))
			return &p->actions[i];
	return NULL;
}

static void link_resources(rc_plan *p, const rc_plan_input *in)
{
	size_t i, j;

	for (i = 0; i < p->n; i++) {
		rc_action *a = &p->actions[i];
		const rc_resource *r;

		if (a->op == RC_OP_RUN)
			continue;
		if (a->op == RC_OP_DELETE) {
			/* delete what depends on it first: dependencies as
			 * observed, or as declared when it is still declared
			 * (destroy) */
			for (int set = 0; set < 2; set++) {
				const rc_resource_set *rs =
					set ? in->desired : in->actual;

				for (j = 0; j < rs->n; j++) {
					const rc_resource *s = &rs->items[j];
					rc_action *sd;

					for (size_t k = 0; k < s->ndeps; k++) {
						if (strcmp(s->deps[k], a->key))
							continue;
						sd = find_action(p, RC_OP_DELETE,
								 s->key);
						if (sd)
							rc_action_add_dep(a, sd->id);
					}
				}
			}
			continue;
		}
		r = rc_resource_set_find(in->desired, a->key);
		for (j = 0; r && j < r->ndeps; j++) {
			rc_action *dep = action_for_key(p, r->deps[j]);

			if (dep)
				rc_action_add_dep(a, dep->id);
		}
	}
}

rc_action *rc_plan_add_hook(rc_plan *p, const char *env, const char *name,
			    json_t *spec, bool irreversible,
			    const char *reason)
{
	rc_resource r = {0};
	rc_buf key = RC_BUF_INIT_MAX(4096);
	rc_action *a;

	rc_buf_printf(&key, "%s/hook/%s", env, name);
	r.key = key.ptr;
	r.env = (char *)(uintptr_t)env;
	r.driver = (char *)(uintptr_t)"";
	r.kind = (char *)(uintptr_t)"hook";
	r.name = (char *)(uintptr_t)name;
	a = new_action(p, RC_OP_RUN, &r);
	a->desired = spec;
	a->irreversible = irreversible;
	if (reason)
		set_reason(a, "%s", reason);
	if (irreversible)
		set_reason(a, "irreversible");
	rc_buf_release(&key);
	return a;
}

/* The action that runs one hook of the configuration. */
static rc_action *hook_action(rc_plan *p, const rc_plan_hook *hk)
{
	return rc_plan_add_hook(p, hk->env, hk->name, json_incref(hk->spec),
				hk->irreversible,
				hk->post ? "post_apply hook" : "pre_apply hook");
}

void rc_plan_carry_hook(rc_action *a, const json_t *entry)
{
	const char *run = json_string_value(json_object_get(entry, "run"));
	rc_buf why = RC_BUF_INIT_MAX(4096);
	json_t *spec = json_deep_copy(a->desired);

	json_object_set_new(spec, "unfinished",
			    json_pack("{s:s?, s:O?, s:O?}", "run", run,
				      "action", json_object_get(entry, "action"),
				      "spec", json_object_get(entry, "spec")));
	json_decref(a->desired);
	a->desired = spec;
	if (json_is_true(json_object_get(entry, "irreversible")))
		a->irreversible = true;
	/* first, so the plan's line reads "(unfinished in run ...)" */
	rc_buf_printf(&why, "unfinished in run %s", run ? run : "?");
	if (a->reason)
		rc_buf_printf(&why, "; %s", a->reason);
	else if (a->irreversible)
		rc_buf_puts(&why, "; irreversible");
	free(a->reason);
	a->reason = rc_buf_detach(&why);
}

/* The hook action of env for an unfinished entry that the configuration
 * does not plan (it has no changes there, or the hook is gone). */
static rc_action *carried_action(rc_plan *p, const char *env,
				 const json_t *entry)
{
	json_t *spec = json_deep_copy(json_object_get(entry, "spec"));
	const char *name = json_string_value(json_object_get(spec, "name"));
	rc_action *a;

	if (!json_is_object(spec))
		spec = json_object();
	json_object_del(spec, "unfinished");
	a = rc_plan_add_hook(p, env, name ? name : "?", spec, false, NULL);
	rc_plan_carry_hook(a, entry);
	return a;
}

/* A's hook left unfinished by an interrupted run merges into a: one
 * action settles it and runs it at most once. */
static void carry(const rc_plan_input *in, rc_action *a, json_t *carried)
{
	const json_t *entry = json_object_get(in->unfinished, a->key);

	if (!entry)
		return;
	rc_plan_carry_hook(a, entry);
	json_object_set_new(carried, a->key, json_true());
}

static void add_hooks(rc_plan *p, const rc_plan_input *in)
{
	size_t e, i, h, nres;
	json_t *carried = json_object(); /* hook keys already carried */

	for (e = 0; e < in->nenvs; e++) {
		const char *env = in->envs[e].env;
		const char *prev = NULL;
		size_t first = p->n;

		nres = 0;
		if (in->destroy)
			continue; /* a removal runs no hooks */
		for (i = 0; i < first; i++)
			if (!strcmp(p->actions[i].env, env))
				nres++;
		if (!nres)
			continue; /* hooks run only where something changes */
		for (h = 0; h < in->nhooks; h++) {
			const rc_plan_hook *hk = &in->hooks[h];
			rc_action *a;

			if (strcmp(hk->env, env) || hk->post)
				continue;
			a = hook_action(p, hk);
			carry(in, a, carried);
			if (prev)
				rc_action_add_dep(a, prev);
			prev = a->id;
		}
		if (prev)
			for (i = 0; i < first; i++)
				if (!strcmp(p->actions[i].env, env))
					rc_action_add_dep(&p->actions[i], prev);
		prev = NULL;
		for (h = 0; h < in->nhooks; h++) {
			const rc_plan_hook *hk = &in->hooks[h];
			rc_action *a;

			if (strcmp(hk->env, env) || !hk->post)
				continue;
			a = hook_action(p, hk);
			carry(in, a, carried);
			for (i = 0; i < first; i++)
				if (!strcmp(p->actions[i].env, env) &&
				    p->actions[i].op != RC_OP_RUN)
					rc_action_add_dep(a, p->actions[i].id);
			if (prev)
				rc_action_add_dep(a, prev);
			prev = a->id;
		}
	}
	/* unfinished hooks the configuration did not plan: after the
	 * changes of their environment */
	for (e = 0; e < in->nenvs && !in->destroy; e++) {
		const char *env = in->envs[e].env, *k;
		size_t first = p->n, len = strlen(env);
		json_t *entry;

		json_object_foreach((json_t *)in->unfinished, k, entry) {
			rc_action *a;

			if (strncmp(k, env, len) || k[len] != '/' ||
			    json_object_get(carried, k))
				continue;
			a = carried_action(p, env, entry);
			for (i = 0; i < first; i++)
				if (!strcmp(p->actions[i].env, env) &&
				    strcmp(p->actions[i].id, a->id))
					rc_action_add_dep(a, p->actions[i].id);
		}
	}
	json_decref(carried);
}

static void link_environments(rc_plan *p, const rc_plan_input *in)
{
	for (size_t e = 0; e < in->nenvs; e++) {
		const rc_plan_env *pe = &in->envs[e];

		for (size_t d = 0; d < pe->ndepends_on; d++)
			for (size_t i = 0; i < p->n; i++) {
				if (strcmp(p->actions[i].env, pe->env))
					continue;
				for (size_t j = 0; j < p->n; j++)
					if (!strcmp(p->actions[j].env,
						    pe->depends_on[d]))
						rc_action_add_dep(&p->actions[i],
							p->actions[j].id);
			}
	}
}

int rc_plan_build(rc_plan *p, const rc_plan_input *in)
{
	json_t *all = json_object();
	rc_strmap desired_by_key = RC_STRMAP_INIT, actual_by_key = RC_STRMAP_INIT;
	rc_strmap envs_by_name = RC_STRMAP_INIT;
	const rc_plan_env *pe;
	size_t i, e, *counts;
	int rc;

	memset(p, 0, sizeof(*p));
	for (e = 0; e < in->nenvs; e++)
		rc_strmap_put(&envs_by_name, in->envs[e].env,
			      (void *)(uintptr_t)&in->envs[e]);
	env_index = &envs_by_name;
	p->observed = json_object();
	rc_plan_envs_alloc(p, in->nenvs);
	for (e = 0; e < in->nenvs; e++) {
		p->envs[e] = rc_strdup(in->envs[e].env);
		p->env_labels[e] = rc_strdup(in->envs[e].label ? in->envs[e].label
							       : "");
		if (in->envs[e].branch)
			p->env_branches[e] = rc_strdup(in->envs[e].branch);
		if (in->envs[e].commit)
			p->env_commits[e] = rc_strdup(in->envs[e].commit);
		p->env_manual[e] = in->envs[e].manual;
	}
	for (i = 0; i < in->desired->n; i++)
		json_object_set(all, in->desired->items[i].key,
				in->desired->items[i].body);
	p->desired_digest = rc_json_fingerprint(all);
	json_decref(all);
	for (i = 0; i < in->actual->n; i++) {
		const rc_resource *a = &in->actual->items[i];
		char *fp = a->fingerprint ? rc_strdup(a->fingerprint)
					  : rc_json_fingerprint(a->body);

		json_object_set_new(p->observed, a->key, json_string(fp));
		free(fp);
	}

	for (i = 0; i < in->desired->n; i++)
		rc_strmap_put(&desired_by_key, in->desired->items[i].key,
			      &in->desired->items[i]);
	for (i = 0; i < in->actual->n; i++)
		rc_strmap_put(&actual_by_key, in->actual->items[i].key,
			      &in->actual->items[i]);
	if (!in->destroy)
		for (i = 0; i < in->desired->n; i++) {
			const rc_resource *d = &in->desired->items[i];

			plan_resource(p, in, d,
				      rc_strmap_get(&actual_by_key, d->key));
		}
	for (i = 0; i < in->actual->n; i++) {
		const rc_resource *a = &in->actual->items[i];
		const rc_plan_env *ape = find_env(in, a->env);

		if (!ape)
			continue; /* an environment this plan does not cover */
		if (!in->destroy && rc_strmap_get(&desired_by_key, a->key))
			continue;
		if (in->destroy || ape->retire ||
		    (ape->prune && (!a->precious || in->force))) {
			plan_delete(p, in, ape, a);
		} else {
			add_kept(&p->kept, &p->nkept, a, ape->prune);
		}
	}
	/* an empty source must not empty an environment by accident */
	counts = rc_calloc(3 * (in->nenvs + 1), sizeof(size_t));
	for (i = 0; i < in->desired->n; i++)
		if ((pe = find_env(in, in->desired->items[i].env)))
			counts[3 * (size_t)(pe - in->envs)]++;
	for (i = 0; i < in->actual->n; i++)
		if ((pe = find_env(in, in->actual->items[i].env)))
			counts[3 * (size_t)(pe - in->envs) + 1]++;
	for (i = 0; i < p->n; i++)
		if (p->actions[i].op == RC_OP_DELETE &&
		    (pe = find_env(in, p->actions[i].env)))
			counts[3 * (size_t)(pe - in->envs) + 2]++;
	/* a precious resource kept from the prune counts as deleted here:
	   an empty source is refused whatever it holds */
	for (i = 0; i < p->nkept; i++)
		if (p->kept[i].precious && (pe = find_env(in, p->kept[i].env)))
			counts[3 * (size_t)(pe - in->envs) + 2]++;
	for (e = 0; e < in->nenvs && !in->destroy && !in->force; e++) {
		size_t ndesired = counts[3 * e], nactual = counts[3 * e + 1],
		       ndelete = counts[3 * e + 2];

		if (ndesired == 0 && ndelete > 0 && ndelete == nactual &&
		    !in->envs[e].retire) {
			rc_strmap_release(&desired_by_key);
			rc_strmap_release(&actual_by_key);
			rc_strmap_release(&envs_by_name);
			env_index = NULL;
			free(counts);
			return rc_error_set(
				RC_EINVALID, RC_ECLASS_CONFIG,
				"refusing to delete all %zu resources of "
				"environment '%s': the source declares none "
				"for it (an empty or broken source?); use "
				"--force to delete them, or 'reconcile "
				"destroy -e %s'",
				ndelete, in->envs[e].env, in->envs[e].env);
		}
	}
	rc_strmap_release(&desired_by_key);
	rc_strmap_release(&actual_by_key);
	free(counts);
	link_resources(p, in);
	add_hooks(p, in);
	link_environments(p, in);
	group_by_env(p);
	rc = order(p);
	rc_strmap_release(&envs_by_name);
	env_index = NULL;
	return rc;
}

size_t rc_plan_env_index(const rc_plan *p, const char *env)
{
	for (size_t e = 0; e < p->nenvs; e++)
		if (!strcmp(p->envs[e], env))
			return e;
	return SIZE_MAX;
}

size_t rc_plan_leave_envs(rc_plan *p, bool *leave)
{
	rc_strmap ids = RC_STRMAP_INIT; /* id of a removed action -> it */
	bool *gone = rc_calloc(p->n + 1, sizeof(bool)), more = true;
	size_t i, d, k, w = 0, removed = 0;

	for (i = 0; i < p->n; i++) {
		size_t e = rc_plan_env_index(p, p->actions[i].env);

		if ((gone[i] = e != SIZE_MAX && leave[e]))
			rc_strmap_put(&ids, p->actions[i].id, &gone[i]);
	}
	/* and whatever depends on a removed action, to the end (one pass
	 * when the actions are in apply order, as plans keep them) */
	while (more) {
		more = false;
		for (i = 0; i < p->n; i++)
			for (d = 0; !gone[i] && d < p->actions[i].ndeps; d++)
				if (rc_strmap_get(&ids, p->actions[i].deps[d])) {
					gone[i] = more = true;
					rc_strmap_put(&ids, p->actions[i].id,
						      &gone[i]);
				}
	}
	rc_strmap_release(&ids);
	for (i = 0; i < p->n; i++) {
		if (!gone[i]) {
			p->actions[w++] = p->actions[i];
			continue;
		}
		k = rc_plan_env_index(p, p->actions[i].env);
		if (k != SIZE_MAX)
			leave[k] = true;
		rc_action_release(&p->actions[i]);
		removed++;
	}
	p->n = w;
	free(gone);
	return removed;
}

void rc_plan_counts(const rc_plan *p, size_t counts[5])
{
	memset(counts, 0, 5 * sizeof(size_t));
	for (size_t i = 0; i < p->n; i++)
		counts[p->actions[i].op]++;
}

void rc_plan_envs_alloc(rc_plan *p, size_t n)
{
	for (size_t i = 0; i < p->nenvs; i++) {
		free(p->envs[i]);
		free(p->env_labels[i]);
		free(p->env_branches[i]);
		free(p->env_commits[i]);
	}
	free(p->envs);
	free(p->env_labels);
	free(p->env_branches);
	free(p->env_commits);
	free(p->env_manual);
	p->nenvs = n;
	p->envs = rc_calloc(n + 1, sizeof(char *));
	p->env_labels = rc_calloc(n + 1, sizeof(char *));
	p->env_branches = rc_calloc(n + 1, sizeof(char *));
	p->env_commits = rc_calloc(n + 1, sizeof(char *));
	p->env_manual = rc_calloc(n + 1, sizeof(bool));
}

void rc_notes_vadd(char ***notes, size_t *n, const char *fmt, va_list ap)
{
	rc_buf b = RC_BUF_INIT_MAX(4096);

	rc_buf_vprintf(&b, fmt, ap);
	*notes = rc_realloc(*notes, (*n + 1) * sizeof(char *));
	(*notes)[(*n)++] = rc_buf_detach(&b);
}

void rc_plan_note(rc_plan *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rc_notes_vadd(&p->notes, &p->nnotes, fmt, ap);
	va_end(ap);
}

static char *dup_or_null(const char *s)
{
	return s ? rc_strdup(s) : NULL;
}

void rc_plan_envs_copy(rc_plan *dst, const rc_plan *src)
{
	rc_plan_envs_alloc(dst, src->nenvs);
	for (size_t i = 0; i < src->nenvs; i++) {
		dst->envs[i] = rc_strdup(src->envs[i]);
		dst->env_labels[i] = rc_strdup(src->env_labels[i]);
		dst->env_branches[i] = dup_or_null(src->env_branches[i]);
		dst->env_commits[i] = dup_or_null(src->env_commits[i]);
		dst->env_manual[i] = src->env_manual[i];
	}
}

void rc_plan_release(rc_plan *p)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		rc_action_release(&p->actions[i]);
	free(p->actions);
	rc_plan_envs_alloc(p, 0);
	free(p->envs);
	free(p->env_labels);
	free(p->env_branches);
	free(p->env_commits);
	free(p->env_manual);
	free(p->rollback_of);
	kept_release(p->kept, p->nkept);
	kept_release(p->unhealthy, p->nunhealthy);
	for (i = 0; i < p->nnotes; i++)
		free(p->notes[i]);
	free(p->notes);
	free(p->source);
	free(p->ref);
	free(p->commit);
	free(p->desired_digest);
	free(p->secret_key);
	json_decref(p->observed);
	memset(p, 0, sizeof(*p));
}
