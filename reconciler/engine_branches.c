/*
 * Where each environment's definition comes from, and what becomes of a
 * generated environment once its definition is gone.
 *
 * policy.branch: an environment that names a branch is read from that
 * branch's tip, not from the commit the source was opened at (unless
 * --ref pins everything to one commit). A work tree that has that branch
 * checked out is read as it is, uncommitted edits included, so a plan
 * shows what one is editing.
 *
 * Gone environments: every load records the generated environments in
 * the registry (state/envreg.h). One whose generator was expanded but
 * that it no longer makes (its branch was deleted) is gone: from the
 * first plan that sees it gone, its ttl runs; once past, and when its
 * policy prunes, the plan deletes everything it owns. Until then, or when
 * it does not prune, the plan says so in a note. `destroy` removes a gone
 * environment at once. Once a plan finds it owns nothing, it is forgotten.
 */
#include "reconciler/base/common.h"
#include "reconciler/engine.h"
#include "reconciler/base/log.h"
#include "reconciler/base/rctime.h"
#include "schema/emit.h"
#include "schema/load.h"
#include "state/envreg.h"

#include <time.h>

/* ------------------------------------------------------- policy.branch */

static int find_loaded(const rc_engine *e, const char *dir)
{
	for (size_t i = 0; i < e->nbranch_cfgs; i++)
		if (!strcmp(e->branch_cfgs[i]->dir, dir))
			return (int)i;
	return -1;
}

/* Loads the configuration in dir with only the environments (or their
 * generators) that read branch. */
static int load_branch(rc_engine *e, const char *dir, const char *branch,
		       const char *commit, rc_config **out)
{
	const char **only = rc_calloc(e->nenvs + 1, sizeof(char *));
	rc_load_opts lo = {0};
	size_t n = 0;
	int idx = find_loaded(e, dir), rc = 0;

	*out = NULL;
	if (idx >= 0) {
		*out = e->branch_cfgs[idx];
		free(only);
		return 0;
	}
	for (size_t i = 0; i < e->nenvs; i++) {
		const rc_env *env = e->envs[i].env;

		if (env->policy.branch && !strcmp(env->policy.branch, branch))
			only[n++] = env->generator ? env->generator : env->name;
	}
	lo.only = only;
	lo.nonly = n;
	lo.self_branches = rc_engine_self_branches;
	lo.self_ctx = e->src;
	if (rc_config_load(out, dir, &lo, &e->diags) < 0) {
		rc_config_free(*out);
		*out = NULL;
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				  "the configuration on branch '%s' (commit "
				  "%.7s) is invalid",
				  branch, commit);
	} else {
		e->branch_cfgs = rc_realloc(e->branch_cfgs,
					    (e->nbranch_cfgs + 1) *
						    sizeof(rc_config *));
		e->branch_cfgs[e->nbranch_cfgs++] = *out;
	}
	free(only);
	return rc;
}

static int read_branch(rc_engine *e, rc_engine_env *ee)
{
	const char *branch = ee->env->policy.branch;
	const char *wb = rc_source_work_branch(e->src);
	const char *here = rc_source_commit(e->src);
	char *dir = NULL, *commit = NULL;
	const rc_env *env;
	rc_config *cfg;
	int rc;

	if (wb && !strcmp(wb, branch)) {
		/* the work tree is on that branch: read it as it is */
		ee->branch = rc_strdup(branch);
		ee->commit = here ? rc_strdup(here) : NULL;
		return 0;
	}
	rc = rc_source_tree(&dir, &commit, e->src, branch);
	if (rc < 0) {
		if (!rc_source_url(e->src) && !here && !wb) {
			/* a plain directory has no branches */
			RC_WARN("environment '%s': policy.branch '%s' is not "
				"read: '%s' is not in a git repository",
				ee->env->name, branch, rc_source_dir(e->src));
			rc_error_clear();
			return 0;
		}
		rc_error_prefix("environment '%s' (%s:%d:%d): policy.branch",
				ee->env->name, ee->env->loc.file,
				ee->env->loc.line, ee->env->loc.col);
		return rc;
	}
	ee->branch = rc_strdup(branch);
	if (here && !strcmp(here, commit) && !rc_source_dirty(e->src)) {
		/* the same commit: the configuration already loaded */
		ee->commit = commit;
		free(dir);
		return 0;
	}
	rc = load_branch(e, dir, branch, commit, &cfg);
	if (rc < 0)
		goto done;
	env = rc_config_env(cfg, ee->env->name);
	if (!env) {
		rc = rc_error_set(RC_ENOTFOUND, RC_ECLASS_CONFIG,
				  "environment '%s' reads policy.branch '%s', "
				  "but the configuration on that branch "
				  "(commit %.7s) has no environment '%s'",
				  ee->env->name, branch, commit,
				  ee->env->name);
		goto done;
	}
	if ((rc = rc_engine_env_bind(ee, env)) < 0) {
		rc_error_prefix("branch '%s'", branch);
		goto done;
	}
	ee->config_dir = rc_strdup(cfg->dir);
	ee->commit = commit;
	commit = NULL;
done:
	free(dir);
	free(commit);
	return rc;
}

int rc_engine_read_branches(rc_engine *e)
{
	for (size_t i = 0; i < e->nenvs; i++) {
		int rc;

		if (!e->envs[i].env->policy.branch)
			continue;
		if ((rc = read_branch(e, &e->envs[i])) < 0)
			return rc;
	}
	return 0;
}

/* ----------------------------------------------------- gone environments */

static char *get_str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? rc_strdup(s) : NULL;
}

static void get_argv(const json_t *o, const char *k, rc_argv *a)
{
	const json_t *arr = json_object_get(o, k), *v;
	size_t i;

	a->n = 0;
	a->v = rc_calloc(json_array_size(arr) + 1, sizeof(char *));
	json_array_foreach(arr, i, v)
		if (json_is_string(v))
			a->v[a->n++] = rc_strdup(json_string_value(v));
}

static int target_from_json(rc_target *t, const json_t *o)
{
	const char *driver = json_string_value(json_object_get(o, "driver"));
	static const rc_driver_kind kinds[] = {RC_DRIVER_LOCAL,
					       RC_DRIVER_KUBERNETES,
					       RC_DRIVER_HEROKU, RC_DRIVER_ECS};
	const json_t *pub = json_object_get(o, "assign_public_ip");
	bool found = false;

	memset(t, 0, sizeof(*t));
	for (size_t i = 0; driver && i < RC_ARRAY_SIZE(kinds); i++)
		if (!strcmp(driver, rc_driver_name(kinds[i]))) {
			t->driver = kinds[i];
			found = true;
		}
	t->context = get_str(o, "context");
	t->namespace = get_str(o, "namespace");
	t->app = get_str(o, "app");
	t->region = get_str(o, "region");
	t->stack = get_str(o, "stack");
	t->team = get_str(o, "team");
	t->pipeline = get_str(o, "pipeline");
	t->stage = get_str(o, "stage");
	t->cluster = get_str(o, "cluster");
	t->launch_type = get_str(o, "launch_type");
	get_argv(o, "subnets", &t->subnets);
	get_argv(o, "security_groups", &t->security_groups);
	t->assign_public_ip = json_is_boolean(pub) ? json_is_true(pub) : -1;
	t->execution_role_arn = get_str(o, "execution_role_arn");
	t->kubeconfig = get_str(o, "kubeconfig");
	if (json_is_string(json_object_get(o, "wait_timeout")))
		t->wait_timeout = rc_duration_parse(json_string_value(
			json_object_get(o, "wait_timeout")));
	t->qps = (int)json_integer_value(json_object_get(o, "qps"));
	t->burst = (int)json_integer_value(json_object_get(o, "burst"));
	if (t->wait_timeout < 0)
		t->wait_timeout = 0;
	return found ? 0 : -1;
}

static bool env_in_scope(const rc_engine_opts *o, const char *name,
			 const char *generator)
{
	if (!o->nenvs)
		return true;
	for (size_t i = 0; i < o->nenvs; i++)
		if (!strcmp(o->envs[i], name) ||
		    (generator && !strcmp(o->envs[i], generator)))
			return true;
	return false;
}

/* Whether the load named env without building it (not in -e). */
static bool unbuilt(const rc_config *cfg, const char *env)
{
	for (size_t i = 0; i < cfg->nunbuilt; i++)
		if (!strcmp(cfg->unbuilt[i], env))
			return true;
	return false;
}

static bool generator_expanded(const rc_config *cfg, const char *g)
{
	for (size_t i = 0; i < cfg->ngenerators; i++)
		if (!strcmp(cfg->generators[i], g))
			return true;
	return false;
}

static void engine_note(rc_engine *e, const char *fmt, ...) RC_PRINTF(2, 3);
static void engine_note(rc_engine *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rc_notes_vadd(&e->notes, &e->nnotes, fmt, ap);
	va_end(ap);
}

static void format_time(char *out, size_t n, time_t t)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static time_t parse_time(const char *s)
{
	struct timespec ts;

	return rc_time_parse(s, &ts) ? ts.tv_sec : (time_t)-1;
}

/* Adds the gone environment rec (name) to the scope, to be retired. */
static int add_gone(rc_engine *e, const char *name, const json_t *rec,
		    const char *why)
{
	rc_engine_env *ee;
	rc_env *env = rc_calloc(1, sizeof(*env));

	if (target_from_json(&env->target, json_object_get(rec, "target")) <
	    0) {
		rc_env_release(env);
		free(env);
		RC_WARN("environment '%s' is gone, but the registry does not "
			"say where it lived; it is left alone",
			name);
		return 0;
	}
	env->name = rc_strdup(name);
	env->generator = get_str(rec, "generator");
	env->policy.prune = true;
	e->envs = rc_realloc(e->envs, (e->nenvs + 2) * sizeof(*e->envs));
	ee = &e->envs[e->nenvs++];
	memset(ee, 0, sizeof(*ee));
	memset(&e->envs[e->nenvs], 0, sizeof(*ee));
	ee->owned = env;
	ee->retire = rc_strdup(why);
	return rc_engine_env_bind(ee, env);
}

static void record_env(json_t *envs, const char *project,
		       const rc_env *env, const char *now)
{
	json_t *rec = json_object();
	char *label = rc_engine_env_label(env);

	json_object_set_new(rec, "project", json_string(project));
	json_object_set_new(rec, "generator", json_string(env->generator));
	json_object_set_new(rec, "driver",
			    json_string(rc_driver_name(env->target.driver)));
	json_object_set_new(rec, "target", rc_target_to_json(&env->target));
	json_object_set_new(rec, "prune", json_boolean(env->policy.prune));
	json_object_set_new(rec, "ttl", json_integer(env->ttl));
	json_object_set_new(rec, "label", json_string(label));
	json_object_set_new(rec, "last_seen", json_string(now));
	json_object_set_new(rec, "gone_since", json_null());
	json_object_set_new(envs, env->name, rec);
	free(label);
}

int rc_engine_track_generated(rc_engine *e)
{
	json_t *reg = NULL, *envs, *rec;
	const char *name;
	void *tmp;
	time_t now = time(NULL);
	char nows[32];
	bool changed = false;
	int rc;

	for (size_t i = 0; i < e->cfg->nenvs; i++)
		changed |= e->cfg->envs[i].generator != NULL;
	if (rc_envreg_load(&reg, e->state_dir) < 0) {
		RC_WARN("%s; gone generated environments are not tracked",
			rc_error_last()->message);
		rc_error_clear();
		return 0;
	}
	envs = json_object_get(reg, "environments");
	if (!changed && !json_object_size(envs)) {
		json_decref(reg);
		return 0; /* nothing generated, nothing remembered */
	}
	format_time(nows, sizeof(nows), now);
	for (size_t i = 0; i < e->cfg->nenvs; i++) {
		const rc_env *env = &e->cfg->envs[i];
		const rc_env *used = env;

		if (!env->generator)
			continue;
		/* record what the plan uses (policy.branch may differ) */
		for (size_t k = 0; k < e->nenvs; k++)
			if (!strcmp(e->envs[k].env->name, env->name))
				used = e->envs[k].env;
		record_env(envs, e->cfg->project, used, nows);
	}
	json_object_foreach_safe(envs, tmp, name, rec) {
		const char *gen = json_string_value(json_object_get(rec, "generator"));
		const char *proj = json_string_value(json_object_get(rec, "project"));
		const char *since_s;
		time_t since;
		long ttl;
		char ttls[32], when[32];

		if (rc_config_env(e->cfg, name) || unbuilt(e->cfg, name))
			continue;
		/* another project's, sharing the state directory: not gone */
		if (proj && e->cfg->project && strcmp(proj, e->cfg->project))
			continue;
		/* gone only if its generator was listed now, or was removed
		 * from a configuration loaded whole */
		if (!gen || !(generator_expanded(e->cfg, gen) ||
			      (!e->opts.nenvs && !rc_config_env(e->cfg, gen))))
			continue;
		since_s = json_string_value(json_object_get(rec, "gone_since"));
		since = parse_time(since_s);
		if (since == (time_t)-1) {
			since = now;
			json_object_set_new(rec, "gone_since", json_string(nows));
		}
		if (!env_in_scope(&e->opts, name, gen))
			continue;
		ttl = (long)json_integer_value(json_object_get(rec, "ttl"));
		/* the generator's present policy, when it still makes others */
		for (size_t k = 0; k < e->cfg->nenvs; k++) {
			const rc_env *sib = &e->cfg->envs[k];

			if (!sib->generator || strcmp(sib->generator, gen))
				continue;
			ttl = sib->ttl;
			json_object_set_new(rec, "ttl", json_integer(ttl));
			json_object_set_new(rec, "prune",
					    json_boolean(sib->policy.prune));
			break;
		}
		rc_duration_format(ttl, ttls, sizeof(ttls));
		format_time(when, sizeof(when), since);
		if (e->opts.destroy) {
			rc = add_gone(e, name, rec, "destroy");
		} else if (!json_is_true(json_object_get(rec, "prune"))) {
			engine_note(e,
				    "environment '%s' (made by '%s') is gone "
				    "since %s; what it owns is kept: its "
				    "policy.prune is off ('reconcile destroy "
				    "-e %s' removes it)",
				    name, gen, when, gen);
			rc = 0;
		} else if (now - since < ttl) {
			char left[32];

			rc_duration_format(ttl - (long)(now - since), left,
					   sizeof(left));
			engine_note(e,
				    "environment '%s' (made by '%s') is gone "
				    "since %s; what it owns is deleted once its "
				    "ttl of %s has passed (in %s)",
				    name, gen, when, ttl ? ttls : "0s", left);
			rc = 0;
		} else {
			rc_buf why = RC_BUF_INIT_MAX(512);

			rc_buf_printf(&why, "environment gone since %s, ttl %s",
				      when, ttl ? ttls : "0s");
			rc = add_gone(e, name, rec, why.ptr);
			rc_buf_release(&why);
		}
		if (rc < 0) {
			json_decref(reg);
			return rc;
		}
	}
	if (rc_envreg_save(reg, e->state_dir) < 0) {
		RC_WARN("%s", rc_error_last()->message);
		rc_error_clear();
	}
	e->envreg = reg;
	return 0;
}

void rc_engine_forget_empty(rc_engine *e)
{
	json_t *envs = json_object_get(e->envreg, "environments");
	bool changed = false;

	for (size_t i = 0; i < e->nenvs; i++) {
		const rc_engine_env *ee = &e->envs[i];
		bool owns = false;

		if (!ee->retire)
			continue;
		for (size_t k = 0; k < e->actual.n && !owns; k++)
			owns = !strcmp(e->actual.items[k].env, ee->env->name);
		if (!owns && json_object_get(envs, ee->env->name)) {
			json_object_del(envs, ee->env->name);
			changed = true;
		}
	}
	if (changed && rc_envreg_save(e->envreg, e->state_dir) < 0) {
		RC_WARN("%s", rc_error_last()->message);
		rc_error_clear();
	}
}
