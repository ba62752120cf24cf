/* Plans as a reviewer reads them, and as JSON (docs/plan-format.md). */
#include "reconciler/base/common.h"
#include "reconciler/base/error.h"
#include "reconciler/plan.h"

#define C_RESET "\033[0m"
#define C_BOLD "\033[1m"

static const char *op_color(rc_op op)
{
	static const char *const colors[] = {"\033[32m", "\033[33m", "\033[31m",
					     "\033[35m", "\033[36m"};
	return colors[op];
}

static char op_sign(rc_op op)
{
	return "+~-!>"[op];
}

/* A value as the reviewer reads it: compact JSON, secrets hidden. */
static void put_value(rc_buf *out, const json_t *v)
{
	char *s;

	if (!v) {
		rc_buf_puts(out, "(none)");
		return;
	}
	if (json_is_object(v) && json_object_get(v, "$secret")) {
		rc_buf_puts(out, "(sensitive)");
		return;
	}
	if (json_is_object(v) || json_is_array(v)) {
		/* a container may hold secrets: walk it */
		const char *k;
		json_t *x;
		size_t i;

		if (json_is_array(v)) {
			rc_buf_putc(out, '[');
			json_array_foreach((json_t *)(uintptr_t)v, i, x) {
				if (i)
					rc_buf_puts(out, ", ");
				put_value(out, x);
			}
			rc_buf_putc(out, ']');
			return;
		}
		rc_buf_putc(out, '{');
		i = 0;
		json_object_foreach((json_t *)(uintptr_t)v, k, x) {
			if (i++)
				rc_buf_puts(out, ", ");
			rc_buf_printf(out, "%s: ", k);
			put_value(out, x);
		}
		rc_buf_putc(out, '}');
		return;
	}
	s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(15));
	rc_buf_puts(out, s ? s : "?");
	free(s);
}

/* The health column: the observed health, after the line's "kind name"
 * padded to width. */
static void put_health(rc_buf *out, size_t used, size_t width,
		       const char *health)
{
	if (!health)
		return;
	for (; used < width; used++)
		rc_buf_putc(out, ' ');
	rc_buf_printf(out, "  [%s]", health);
}

static void render_action(const rc_action *a, rc_buf *out, bool color,
			  size_t width)
{
	size_t i;

	rc_buf_puts(out, "  ");
	if (color)
		rc_buf_puts(out, op_color(a->op));
	rc_buf_printf(out, "%c %s %s", op_sign(a->op), a->kind, a->name);
	if (color)
		rc_buf_puts(out, C_RESET);
	put_health(out, strlen(a->kind) + strlen(a->name) + 1, width,
		   a->health);
	if (a->op == RC_OP_REPLACE || a->op == RC_OP_DELETE ||
	    a->op == RC_OP_RUN || a->adopt)
		if (a->reason)
			rc_buf_printf(out, "  (%s)", a->reason);
	rc_buf_putc(out, '\n');
	if (a->op == RC_OP_RUN) {
		const json_t *run = json_object_get(a->desired, "run");

		rc_buf_puts(out, "      run: ");
		put_value(out, run);
		rc_buf_putc(out, '\n');
		return;
	}
	if (a->op == RC_OP_DELETE)
		return;
	for (i = 0; i < a->changes.n; i++) {
		const rc_change *c = &a->changes.items[i];

		rc_buf_puts(out, "      ");
		rc_pointer_dotted(out, c->path);
		rc_buf_puts(out, ": ");
		if (a->op == RC_OP_CREATE) {
			put_value(out, c->new_);
		} else if (c->op == RC_CHANGE_REMOVE) {
			put_value(out, c->old);
			rc_buf_puts(out, " -> (removed)");
		} else if (c->op == RC_CHANGE_ADD) {
			rc_buf_puts(out, "(none) -> ");
			put_value(out, c->new_);
		} else if (json_object_get(c->old, "$secret") &&
			   json_object_get(c->new_, "$secret")) {
			rc_buf_puts(out, "(sensitive) -> (sensitive, changed)");
		} else {
			put_value(out, c->old);
			rc_buf_puts(out, " -> ");
			put_value(out, c->new_);
		}
		rc_buf_putc(out, '\n');
	}
}

/* Environments in the order their first action applies, then those with
 * only kept resources. */
static size_t *env_order(const rc_plan *p)
{
	size_t *ord = rc_calloc(p->nenvs + 1, sizeof(size_t)), w = 0, i, e;
	bool *seen = rc_calloc(p->nenvs + 1, sizeof(bool));

	for (i = 0; i < p->n; i++)
		for (e = 0; e < p->nenvs; e++)
			if (!seen[e] && !strcmp(p->actions[i].env, p->envs[e])) {
				seen[e] = true;
				ord[w++] = e;
			}
	for (e = 0; e < p->nenvs; e++)
		if (!seen[e])
			ord[w++] = e;
	free(seen);
	return ord;
}

/* The width of "kind name" of the widest line of env that has a health
 * text, so that the health column lines up. */
static size_t health_width(const rc_plan *p, const char *env)
{
	size_t w = 0, i, l;

	for (i = 0; i < p->n; i++)
		if (p->actions[i].health && !strcmp(p->actions[i].env, env) &&
		    (l = strlen(p->actions[i].kind) +
			 strlen(p->actions[i].name) + 1) > w)
			w = l;
	for (i = 0; i < p->nunhealthy; i++)
		if (!strcmp(p->unhealthy[i].env, env) &&
		    (l = strlen(p->unhealthy[i].key) - strlen(env) - 1) > w)
			w = l;
	return w;
}

void rc_plan_render_text(const rc_plan *p, rc_buf *out, bool color)
{
	size_t counts[5], k, i, shown_envs = 0, width;
	size_t *ord = env_order(p);

	rc_plan_counts(p, counts);
	for (k = 0; k < p->nenvs; k++) {
		size_t e = ord[k];
		bool any = false;

		for (i = 0; i < p->n; i++)
			any |= !strcmp(p->actions[i].env, p->envs[e]);
		for (i = 0; i < p->nkept; i++)
			any |= !strcmp(p->kept[i].env, p->envs[e]);
		for (i = 0; i < p->nunhealthy; i++)
			any |= !strcmp(p->unhealthy[i].env, p->envs[e]);
		if (!any)
			continue;
		width = health_width(p, p->envs[e]);
		if (shown_envs++)
			rc_buf_putc(out, '\n');
		if (color)
			rc_buf_puts(out, C_BOLD);
		rc_buf_printf(out, "%s", p->envs[e]);
		if (p->env_labels[e][0])
			rc_buf_printf(out, " (%s)", p->env_labels[e]);
		if (p->env_branches[e])
			rc_buf_printf(out, " from branch %s at %.7s",
				      p->env_branches[e],
				      p->env_commits[e] ? p->env_commits[e] : "?");
		if (p->env_manual[e])
			rc_buf_puts(out, ", applied only when approved "
					 "(policy.apply: manual)");
		if (color)
			rc_buf_puts(out, C_RESET);
		rc_buf_putc(out, '\n');
		for (i = 0; i < p->n; i++)
			if (!strcmp(p->actions[i].env, p->envs[e]))
				render_action(&p->actions[i], out, color,
					      width);
		for (i = 0; i < p->nunhealthy; i++) {
			const char *kn;

			if (strcmp(p->unhealthy[i].env, p->envs[e]))
				continue;
			kn = p->unhealthy[i].key + strlen(p->envs[e]) + 1;
			rc_buf_puts(out, "  * ");
			for (; *kn; kn++)
				rc_buf_putc(out, *kn == '/' ? ' ' : *kn);
			put_health(out,
				   strlen(p->unhealthy[i].key) -
					   strlen(p->envs[e]) - 1,
				   width, p->unhealthy[i].health);
			rc_buf_puts(out, "  (unhealthy; no change planned)\n");
		}
		for (i = 0; i < p->nkept; i++) {
			const char *kn = p->kept[i].key + strlen(p->envs[e]) + 1;
			const char *slash = strchr(kn, '/');

			if (strcmp(p->kept[i].env, p->envs[e]) || !slash)
				continue;
			rc_buf_printf(out,
				      "  = %.*s %s  (no longer declared; kept: "
				      "%s)\n",
				      (int)(slash - kn), kn, slash + 1,
				      p->kept[i].precious
					      ? "it holds data; only --force "
						"prunes it"
					      : "policy.prune is off");
		}
	}
	free(ord);
	if (shown_envs)
		rc_buf_putc(out, '\n');
	for (i = 0; i < p->nnotes; i++)
		rc_buf_printf(out, "Note: %s\n", p->notes[i]);
	if (p->nnotes)
		rc_buf_putc(out, '\n');
	if (p->n == 0) {
		rc_buf_puts(out, "No changes: the actual state matches the "
				 "configuration.\n");
		return;
	}
	rc_buf_printf(out,
		      "Plan: %zu to create, %zu to update, %zu to replace, %zu "
		      "to delete, %zu hook%s to run.\n",
		      counts[RC_OP_CREATE], counts[RC_OP_UPDATE],
		      counts[RC_OP_REPLACE], counts[RC_OP_DELETE],
		      counts[RC_OP_RUN], counts[RC_OP_RUN] == 1 ? "" : "s");
	for (i = 0; i < p->n; i++) {
		if (!p->actions[i].irreversible)
			continue;
		rc_buf_printf(out, "Irreversible: %s %s (%s).\n",
			      rc_op_name(p->actions[i].op), p->actions[i].key,
			      p->actions[i].reason ? p->actions[i].reason : "");
	}
}

static const char *const change_names[] = {"add", "modify", "remove"};

json_t *rc_plan_to_json(const rc_plan *p)
{
	json_t *o = json_object(), *arr, *envs = json_array(), *summary;
	size_t counts[5], i, j;

	rc_plan_counts(p, counts);
	json_object_set_new(o, "format_version",
			    json_integer(RC_PLAN_FORMAT_VERSION));
	json_object_set_new(o, "source",
			    p->source ? json_string(p->source) : json_null());
	json_object_set_new(o, "ref", p->ref ? json_string(p->ref) : json_null());
	json_object_set_new(o, "commit",
			    p->commit ? json_string(p->commit) : json_null());
	json_object_set_new(o, "desired_digest",
			    json_string(p->desired_digest ? p->desired_digest
							  : ""));
	if (p->secret_key)
		json_object_set_new(o, "secret_key",
				    json_string(p->secret_key));
	if (p->rollback_of)
		json_object_set_new(o, "rollback_of",
				    json_string(p->rollback_of));
	for (i = 0; i < p->nenvs; i++) {
		json_t *e = json_object();

		json_object_set_new(e, "name", json_string(p->envs[i]));
		json_object_set_new(e, "label", json_string(p->env_labels[i]));
		json_object_set_new(e, "branch",
				    p->env_branches[i]
					    ? json_string(p->env_branches[i])
					    : json_null());
		json_object_set_new(e, "commit",
				    p->env_commits[i]
					    ? json_string(p->env_commits[i])
					    : json_null());
		json_object_set_new(e, "apply",
				    json_string(p->env_manual[i] ? "manual"
								 : "auto"));
		json_array_append_new(envs, e);
	}
	json_object_set_new(o, "environments", envs);
	summary = json_object();
	for (i = 0; i < 5; i++)
		json_object_set_new(summary, rc_op_name((rc_op)i),
				    json_integer((json_int_t)counts[i]));
	json_object_set_new(o, "summary", summary);
	arr = json_array();
	for (i = 0; i < p->n; i++) {
		const rc_action *a = &p->actions[i];
		json_t *x = json_object(), *ch = json_array(), *deps = json_array();

		json_object_set_new(x, "id", json_string(a->id));
		json_object_set_new(x, "op", json_string(rc_op_name(a->op)));
		json_object_set_new(x, "env", json_string(a->env));
		json_object_set_new(x, "driver", json_string(a->driver));
		json_object_set_new(x, "kind", json_string(a->kind));
		json_object_set_new(x, "name", json_string(a->name));
		json_object_set_new(x, "key", json_string(a->key));
		json_object_set(x, "desired", a->desired ? a->desired : json_null());
		json_object_set(x, "actual", a->actual ? a->actual : json_null());
		json_object_set_new(x, "fingerprint",
				    a->fingerprint ? json_string(a->fingerprint)
						   : json_null());
		for (j = 0; j < a->changes.n; j++) {
			const rc_change *c = &a->changes.items[j];
			json_t *cj = json_object();

			json_object_set_new(cj, "op",
					    json_string(change_names[c->op]));
			json_object_set_new(cj, "path", json_string(c->path));
			json_object_set(cj, "old", c->old ? c->old : json_null());
			json_object_set(cj, "new", c->new_ ? c->new_ : json_null());
			json_array_append_new(ch, cj);
		}
		json_object_set_new(x, "changes", ch);
		for (j = 0; j < a->ndeps; j++)
			json_array_append_new(deps, json_string(a->deps[j]));
		json_object_set_new(x, "depends_on", deps);
		json_object_set_new(x, "irreversible",
				    json_boolean(a->irreversible));
		if (a->adopt)
			json_object_set_new(x, "adopt", json_true());
		json_object_set_new(x, "reason", a->reason ? json_string(a->reason)
							   : json_null());
		if (a->health)
			json_object_set_new(x, "health", json_string(a->health));
		json_array_append_new(arr, x);
	}
	json_object_set_new(o, "actions", arr);
	arr = json_array();
	for (i = 0; i < p->nkept; i++) {
		json_t *k = json_object();

		json_object_set_new(k, "env", json_string(p->kept[i].env));
		json_object_set_new(k, "key", json_string(p->kept[i].key));
		if (p->kept[i].precious)
			json_object_set_new(k, "holds_data", json_true());
		json_array_append_new(arr, k);
	}
	json_object_set_new(o, "kept", arr);
	arr = json_array();
	for (i = 0; i < p->nunhealthy; i++) {
		json_t *k = json_object();

		json_object_set_new(k, "env", json_string(p->unhealthy[i].env));
		json_object_set_new(k, "key", json_string(p->unhealthy[i].key));
		json_object_set_new(k, "health",
				    json_string(p->unhealthy[i].health
							? p->unhealthy[i].health
							: ""));
		json_array_append_new(arr, k);
	}
	json_object_set_new(o, "unhealthy", arr);
	arr = json_array();
	for (i = 0; i < p->nnotes; i++)
		json_array_append_new(arr, json_string(p->notes[i]));
	json_object_set_new(o, "notes", arr);
	json_object_set(o, "observed", p->observed);
	return o;
}

static char *dup_str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? rc_strdup(s) : NULL;
}

static json_t *dup_ref(const json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return v && !json_is_null(v) ? json_incref(v) : NULL;
}

int rc_plan_from_json(rc_plan *p, const json_t *j)
{
	json_error_t err;
	json_t *envs = NULL, *actions = NULL, *kept = NULL, *observed = NULL;
	const json_t *unhealthy;
	json_int_t version = 0;
	size_t i, k;

	memset(p, 0, sizeof(*p));
	if (json_unpack_ex((json_t *)(uintptr_t)j, &err, 0,
			   "{s:I, s:o, s:o, s:o, s:o}", "format_version",
			   &version, "environments", &envs, "actions", &actions,
			   "kept", &kept, "observed", &observed) < 0)
		return rc_error_set(RC_EINVALID, RC_ECLASS_JSON,
				    "not a saved plan: %s", err.text);
	if (version != RC_PLAN_FORMAT_VERSION)
		return rc_error_set(RC_EINVALID, RC_ECLASS_JSON,
				    "saved plan has format_version %lld; this "
				    "reconcile reads %d",
				    (long long)version, RC_PLAN_FORMAT_VERSION);
	p->source = dup_str(j, "source");
	p->ref = dup_str(j, "ref");
	p->commit = dup_str(j, "commit");
	p->desired_digest = dup_str(j, "desired_digest");
	p->secret_key = dup_str(j, "secret_key");
	p->rollback_of = dup_str(j, "rollback_of");
	p->observed = json_incref(observed);
	rc_plan_envs_alloc(p, json_array_size(envs));
	for (i = 0; i < p->nenvs; i++) {
		const json_t *ej = json_array_get(envs, i);
		char *name = dup_str(ej, "name");
		char *label = dup_str(ej, "label");

		p->envs[i] = name ? name : rc_strdup("?");
		p->env_labels[i] = label ? label : rc_strdup("");
		p->env_branches[i] = dup_str(ej, "branch");
		p->env_commits[i] = dup_str(ej, "commit");
		p->env_manual[i] = json_is_string(json_object_get(ej, "apply")) &&
				   !strcmp(json_string_value(json_object_get(
						   ej, "apply")),
					   "manual");
	}
	for (i = 0; i < json_array_size(actions); i++) {
		const json_t *x = json_array_get(actions, i);
		const char *op = json_string_value(json_object_get(x, "op"));
		json_t *ch = json_object_get(x, "changes");
		json_t *deps = json_object_get(x, "depends_on");
		rc_action *a;
		int o;

		for (o = 0; o < 5; o++)
			if (op && !strcmp(op, rc_op_name((rc_op)o)))
				break;
		if (o == 5 || !json_is_string(json_object_get(x, "id")) ||
		    !json_is_string(json_object_get(x, "key")))
			return rc_error_set(RC_EINVALID, RC_ECLASS_JSON,
					    "saved plan: action %zu is "
					    "malformed",
					    i);
		RC_GROW(p->actions, p->cap, p->n + 1);
		a = &p->actions[p->n++];
		memset(a, 0, sizeof(*a));
		a->op = (rc_op)o;
		a->id = dup_str(x, "id");
		a->key = dup_str(x, "key");
		a->env = dup_str(x, "env");
		a->driver = dup_str(x, "driver");
		a->kind = dup_str(x, "kind");
		a->name = dup_str(x, "name");
		a->fingerprint = dup_str(x, "fingerprint");
		a->reason = dup_str(x, "reason");
		a->health = dup_str(x, "health");
		a->desired = dup_ref(x, "desired");
		a->actual = dup_ref(x, "actual");
		a->irreversible = json_is_true(json_object_get(x, "irreversible"));
		a->adopt = json_is_true(json_object_get(x, "adopt"));
		if (!a->env || !a->kind || !a->name || !a->driver)
			return rc_error_set(RC_EINVALID, RC_ECLASS_JSON,
					    "saved plan: action '%s' is "
					    "malformed",
					    a->id);
		for (k = 0; k < json_array_size(ch); k++) {
			const json_t *c = json_array_get(ch, k);
			const char *cop = json_string_value(json_object_get(c, "op"));
			rc_change *rcc;

			RC_GROW(a->changes.items, a->changes.cap, a->changes.n + 1);
			rcc = &a->changes.items[a->changes.n++];
			rcc->op = cop && !strcmp(cop, "add")      ? RC_CHANGE_ADD
				  : cop && !strcmp(cop, "remove") ? RC_CHANGE_REMOVE
								  : RC_CHANGE_MODIFY;
			rcc->path = dup_str(c, "path");
			if (!rcc->path)
				rcc->path = rc_strdup("");
			rcc->old = dup_ref(c, "old");
			rcc->new_ = dup_ref(c, "new");
		}
		for (k = 0; k < json_array_size(deps); k++) {
			const char *d = json_string_value(json_array_get(deps, k));

			if (!d)
				continue;
			a->deps = rc_realloc(a->deps, (a->ndeps + 1) * sizeof(char *));
			a->deps[a->ndeps++] = rc_strdup(d);
		}
	}
	for (i = 0; i < json_array_size(kept); i++) {
		p->kept = rc_realloc(p->kept, (p->nkept + 1) * sizeof(rc_plan_kept));
		p->kept[p->nkept].env = dup_str(json_array_get(kept, i), "env");
		p->kept[p->nkept].key = dup_str(json_array_get(kept, i), "key");
		p->kept[p->nkept].precious = json_is_true(
			json_object_get(json_array_get(kept, i), "holds_data"));
		p->kept[p->nkept].health = NULL;
		p->nkept++;
		if (!p->kept[p->nkept - 1].env || !p->kept[p->nkept - 1].key)
			return rc_error_set(RC_EINVALID, RC_ECLASS_JSON,
					    "saved plan: kept entry %zu is "
					    "malformed",
					    i);
	}
	unhealthy = json_object_get(j, "unhealthy");
	for (i = 0; i < json_array_size(unhealthy); i++) {
		const json_t *x = json_array_get(unhealthy, i);
		rc_plan_kept *u;

		p->unhealthy = rc_realloc(p->unhealthy, (p->nunhealthy + 1) *
								sizeof(rc_plan_kept));
		u = &p->unhealthy[p->nunhealthy++];
		u->env = dup_str(x, "env");
		u->key = dup_str(x, "key");
		u->health = dup_str(x, "health");
		u->precious = false;
		if (!u->env || !u->key)
			return rc_error_set(RC_EINVALID, RC_ECLASS_JSON,
					    "saved plan: unhealthy entry %zu "
					    "is malformed",
					    i);
	}
	for (i = 0; i < json_array_size(json_object_get(j, "notes")); i++) {
		const char *n = json_string_value(
			json_array_get(json_object_get(j, "notes"), i));

		if (n)
			rc_plan_note(p, "%s", n);
	}
	return 0;
}
