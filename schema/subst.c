/*
 * Placeholder substitution: `{{ name }}` in string scalars. Substitution
 * only: no expressions, filters or escapes. Which names exist where:
 *
 *   item.*                      generated environments only
 *   project, environment.name   everywhere
 *   environment.branch          outside target and policy
 *   target.<key>                outside target and policy
 *   run.*                       deferred: hooks' run and env only
 *   rolled_back.*               deferred: on_rollback hooks' run and env
 *                               only (the run a rollback undoes)
 *   env.NAME                    hooks' run and env (deferred) and
 *                               target.context (resolved now), for the
 *                               names listed in allow_env
 */
#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "schema/loader.h"

typedef enum {
	WHERE_PLAIN,  /* ordinary field */
	WHERE_BASE,   /* target and policy: no target.*, no branch */
	WHERE_CONTEXT, /* target.context */
	WHERE_HOOK,   /* hooks' run and env */
	WHERE_ROLLBACK /* on_rollback hooks' run and env */
} where_t;

/* The names hooks fill in at apply time. */
static const struct {
	const char *name;
	bool rollback_only; /* the run a rollback undoes */
} deferred[] = {
	{"run.commit", false},         {"run.short_commit", false},
	{"run.date", false},           {"run.time", false},
	{"run.id", false},             {"rolled_back.commit", true},
	{"rolled_back.short_commit", true}, {"rolled_back.date", true},
	{"rolled_back.time", true},    {"rolled_back.id", true}};

static bool env_allowed(const rc_subst_vars *v, const char *name)
{
	size_t i;

	for (i = 0; i < v->nallow_env; i++)
		if (!strcmp(v->allow_env[i], name))
			return true;
	return false;
}

static rc_loc offset_loc(const rc_node *n, size_t off)
{
	rc_loc loc = n->loc;

	/* exact for one-line plain and quoted scalars */
	if (!memchr(n->str, '\n', off))
		loc.col += (int)off + (n->quoted ? 1 : 0);
	return loc;
}

/* Resolves one name; returns a new string, NULL to keep it verbatim
 * (deferred), or sets *bad after a diagnostic. */
static char *lookup(rc_loader *L, const rc_node *n, size_t off, size_t span,
		    const char *name, const rc_subst_vars *v, where_t where,
		    bool *bad)
{
	rc_loc loc = offset_loc(n, off);
	size_t i;

	if (!strncmp(name, "item.", 5)) {
		const char *val;

		if (!v->item) {
			rc_diag_error(L->diags, loc, (int)span,
				      "'{{ %s }}' is only known in environments "
				      "made by for_each",
				      name);
			*bad = true;
			return NULL;
		}
		val = rc_kvlist_get(v->item, name + 5);
		if (!val) {
			rc_buf known = RC_BUF_INIT_MAX(4096);

			for (i = 0; i < v->item->n; i++)
				rc_buf_printf(&known, "%sitem.%s",
					      i ? ", " : "",
					      v->item->items[i].key);
			rc_diag_error(L->diags, loc, (int)span,
				      "unknown placeholder '{{ %s }}'; the item "
				      "has: %s",
				      name, known.ptr);
			rc_buf_release(&known);
			*bad = true;
			return NULL;
		}
		return rc_strdup(val);
	}
	if (!strcmp(name, "project"))
		return rc_strdup(v->project ? v->project : "");
	if (!strcmp(name, "environment.name")) {
		if (!v->env_name) {
			rc_diag_error(L->diags, loc, (int)span,
				      "'{{ environment.name }}' cannot be used "
				      "in the name template that makes it");
			*bad = true;
			return NULL;
		}
		return rc_strdup(v->env_name);
	}
	if (!strcmp(name, "environment.branch") ||
	    !strncmp(name, "target.", 7)) {
		if (where == WHERE_BASE || where == WHERE_CONTEXT) {
			rc_diag_error(L->diags, loc, (int)span,
				      "'{{ %s }}' cannot be used inside target "
				      "or policy",
				      name);
			*bad = true;
			return NULL;
		}
		if (name[0] == 'e') {
			if (!v->env_branch) {
				rc_diag_error(L->diags, loc, (int)span,
					      "'{{ environment.branch }}' is "
					      "used, but the environment "
					      "follows no branch (set "
					      "policy.branch)");
				*bad = true;
				return NULL;
			}
			return rc_strdup(v->env_branch);
		} else {
			const rc_node *t = v->target
						   ? rc_node_get(v->target,
								 name + 7)
						   : NULL;

			if (!t || t->kind != RC_NODE_SCALAR) {
				rc_diag_error(L->diags, loc, (int)span,
					      "'{{ %s }}': the target has no "
					      "value '%s'",
					      name, name + 7);
				*bad = true;
				return NULL;
			}
			return rc_strdup(t->str);
		}
	}
	for (i = 0; i < RC_ARRAY_SIZE(deferred); i++) {
		if (strcmp(name, deferred[i].name))
			continue;
		if (where != WHERE_ROLLBACK &&
		    (deferred[i].rollback_only || where != WHERE_HOOK)) {
			rc_diag_error(L->diags, loc, (int)span,
				      "'{{ %s }}' is only known in %s", name,
				      deferred[i].rollback_only
					      ? "on_rollback hooks (run and "
						"env): it is the run a "
						"rollback undoes"
					      : "hooks (run and env)");
			*bad = true;
		}
		return NULL;
	}
	if (!strncmp(name, "env.", 4)) {
		const char *var = name + 4, *val;

		if (where != WHERE_HOOK && where != WHERE_ROLLBACK &&
		    where != WHERE_CONTEXT) {
			rc_diag_error(L->diags, loc, (int)span,
				      "'{{ %s }}' is not allowed here: the "
				      "process environment is read only in "
				      "hooks and target.context",
				      name);
			*bad = true;
			return NULL;
		}
		if (!env_allowed(v, var)) {
			rc_diag_error(L->diags, loc, (int)span,
				      "'{{ %s }}' reads the process variable "
				      "'%s', which allow_env does not list",
				      name, var);
			*bad = true;
			return NULL;
		}
		if (where == WHERE_HOOK || where == WHERE_ROLLBACK)
			return NULL;
		val = getenv(var);
		if (!val) {
			rc_diag_error(L->diags, loc, (int)span,
				      "'{{ %s }}': the variable '%s' is not "
				      "set",
				      name, var);
			*bad = true;
			return NULL;
		}
		return rc_strdup(val);
	}
	{
		static const char *const all[] = {
			"item.name",        "item.branch",     "item.sha",
			"item.short_sha",   "project",         "environment.name",
			"environment.branch", "run.commit",    "run.short_commit",
			"run.date",         "run.time",        "run.id",
			"rolled_back.commit", "rolled_back.short_commit",
			"rolled_back.date", "rolled_back.time", "rolled_back.id",
			"target.app",       "target.namespace", "target.cluster",
			"target.region"};
		const char *hint = rc_did_you_mean(name, all,
						   RC_ARRAY_SIZE(all));

		if (hint)
			rc_diag_error(L->diags, loc, (int)span,
				      "unknown placeholder '{{ %s }}'; did you "
				      "mean '{{ %s }}'?",
				      name, hint);
		else
			rc_diag_error(L->diags, loc, (int)span,
				      "unknown placeholder '{{ %s }}'", name);
	}
	*bad = true;
	return NULL;
}

static void subst_scalar(rc_loader *L, rc_node *n, const rc_subst_vars *v,
			 where_t where)
{
	rc_buf out = RC_BUF_INIT_MAX(1 << 20);
	const char *s = n->str, *p = s;
	bool changed = false, bad = false;

	if (n->kind != RC_NODE_SCALAR || !strstr(s, "{{"))
		return;
	while (*p) {
		const char *open = strstr(p, "{{"), *close, *a, *b;
		char *name, *val;

		if (!open) {
			rc_buf_puts(&out, p);
			break;
		}
		rc_buf_put(&out, p, (size_t)(open - p));
		close = strstr(open + 2, "}}");
		if (!close) {
			rc_diag_error(L->diags, offset_loc(n, (size_t)(open - s)),
				      2, "unterminated '{{' (no '}}')");
			bad = true;
			break;
		}
		a = open + 2;
		b = close;
		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		name = rc_strndup(a, (size_t)(b - a));
		if (!*name || strspn(name, "abcdefghijklmnopqrstuvwxyz"
					   "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
					   "0123456789_.-") != strlen(name)) {
			rc_diag_error(L->diags,
				      offset_loc(n, (size_t)(open - s)),
				      (int)(close + 2 - open),
				      "'%.*s' is not a placeholder: write "
				      "'{{ name }}' (substitution only, no "
				      "expressions)",
				      (int)(close + 2 - open), open);
			bad = true;
			val = NULL;
		} else {
			val = lookup(L, n, (size_t)(open - s),
				     (size_t)(close + 2 - open), name, v, where,
				     &bad);
		}
		if (val) {
			rc_buf_puts(&out, val);
			changed = true;
		} else {
			rc_buf_put(&out, open, (size_t)(close + 2 - open));
		}
		free(val);
		free(name);
		p = close + 2;
	}
	if (changed && !bad && !out.toobig) {
		free(n->str);
		n->len = out.len;
		n->str = rc_buf_detach(&out);
	}
	rc_buf_release(&out);
}

static void walk(rc_loader *L, rc_node *n, const rc_subst_vars *v,
		 where_t where)
{
	size_t i;

	if (!n)
		return;
	if (n->kind == RC_NODE_SCALAR) {
		subst_scalar(L, n, v, where);
		return;
	}
	for (i = 0; i < n->n; i++)
		walk(L, n->vals[i], v, where);
}

void rc_subst_scalar(rc_loader *L, rc_node *scalar, const rc_subst_vars *vars,
		     const char *what)
{
	RC_UNUSED(what);
	subst_scalar(L, scalar, vars, WHERE_BASE);
}

void rc_subst_tree(rc_loader *L, rc_node *tree, const rc_subst_vars *vars)
{
	walk(L, tree, vars, WHERE_PLAIN);
}

static void walk_hooks(rc_loader *L, rc_node *hooks, const rc_subst_vars *v)
{
	size_t i, j, k;

	if (!hooks || hooks->kind != RC_NODE_MAP) {
		walk(L, hooks, v, WHERE_PLAIN);
		return;
	}
	for (i = 0; i < hooks->n; i++) {
		rc_node *list = hooks->vals[i];
		where_t in_hook = !strcmp(hooks->keys[i]->str, "on_rollback")
					   ? WHERE_ROLLBACK
					   : WHERE_HOOK;

		if (list->kind != RC_NODE_SEQ) {
			walk(L, list, v, WHERE_PLAIN);
			continue;
		}
		for (j = 0; j < list->n; j++) {
			rc_node *h = list->vals[j];

			if (h->kind != RC_NODE_MAP) {
				walk(L, h, v, WHERE_PLAIN);
				continue;
			}
			for (k = 0; k < h->n; k++) {
				const char *key = h->keys[k]->str;
				bool hook = !strcmp(key, "run") ||
					    !strcmp(key, "env");

				walk(L, h->vals[k], v,
				     hook ? in_hook : WHERE_PLAIN);
			}
		}
	}
}

void rc_subst_body(rc_loader *L, rc_node *body, rc_subst_vars *v)
{
	rc_node *target = rc_node_get(body, "target");
	rc_node *policy = rc_node_get(body, "policy");
	size_t i;

	if (target && target->kind == RC_NODE_MAP) {
		for (i = 0; i < target->n; i++)
			walk(L, target->vals[i], v,
			     !strcmp(target->keys[i]->str, "context")
				     ? WHERE_CONTEXT
				     : WHERE_BASE);
		v->target = target;
	} else {
		walk(L, target, v, WHERE_BASE);
	}
	walk(L, policy, v, WHERE_BASE);
	if (!v->env_branch && policy) {
		const rc_node *br = rc_node_get(policy, "branch");

		if (br && br->kind == RC_NODE_SCALAR && !rc_node_is_null(br))
			v->env_branch = br->str;
	}
	for (i = 0; i < body->n; i++) {
		const char *key = body->keys[i]->str;

		if (!strcmp(key, "target") || !strcmp(key, "policy"))
			continue;
		if (!strcmp(key, "hooks"))
			walk_hooks(L, body->vals[i], v);
		else
			walk(L, body->vals[i], v, WHERE_PLAIN);
	}
}
