/* The engine: from the source to a plan, and from a plan to a journaled
 * apply. */
#include "reconciler/base/common.h"
#include "reconciler/engine.h"
#include "reconciler/base/log.h"
#include "reconciler/base/rctime.h"
#include "reconciler/verify.h"
#include "schema/secrets.h"
#include "schema/load.h"
#include "state/history.h"
#include "state/journal.h"
#include "state/lock.h"
#include "state/secret_key.h"
#include "state/snapshot.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <sys/time.h>

char *rc_state_dir_for(const char *config_dir)
{
	rc_buf b = RC_BUF_INIT_MAX(PATH_MAX * 2);
	const char *env = getenv("RECONCILE_STATE_DIR");

	if (env && *env)
		rc_buf_puts(&b, env);
	else
		rc_buf_printf(&b, "%s/.reconcile", config_dir);
	return rc_buf_detach(&b);
}

static bool wanted(const rc_engine_opts *o, const rc_env *env)
{
	if (!o->nenvs)
		return true;
	for (size_t i = 0; i < o->nenvs; i++)
		if (!strcmp(o->envs[i], env->name) ||
		    (env->generator && !strcmp(o->envs[i], env->generator)))
			return true;
	return false;
}

char *rc_engine_fill(const char *s,
		     const char *(*value)(void *arg, const char *name),
		     void *arg)
{
	rc_buf out = RC_BUF_INIT_MAX(1 << 20);
	const char *p = s;

	while (*p) {
		const char *open = strstr(p, "{{"), *close, *a, *b, *v;
		char *name;

		if (!open) {
			rc_buf_puts(&out, p);
			break;
		}
		rc_buf_put(&out, p, (size_t)(open - p));
		close = strstr(open, "}}");
		if (!close) {
			rc_buf_puts(&out, open);
			break;
		}
		for (a = open + 2; *a == ' '; a++)
			;
		for (b = close; b > a && b[-1] == ' '; b--)
			;
		name = rc_strndup(a, (size_t)(b - a));
		if ((v = value(arg, name)) != NULL)
			rc_buf_puts(&out, v);
		else
			rc_buf_put(&out, open, (size_t)(close + 2 - open));
		free(name);
		p = close + 2;
	}
	return rc_buf_detach(&out);
}

void rc_engine_fill_hook(json_t *spec,
			 const char *(*value)(void *arg, const char *name),
			 void *arg)
{
	json_t *run = json_object_get(spec, "run"),
	       *env = json_object_get(spec, "env"), *v;
	const char *k;
	size_t i;

	json_array_foreach(run, i, v) {
		char *s = rc_engine_fill(json_string_value(v), value, arg);

		json_array_set_new(run, i, json_string(s));
		free(s);
	}
	json_object_foreach(env, k, v) {
		char *s = rc_engine_fill(json_string_value(v), value, arg);

		json_object_set_new(env, k, json_string(s));
		free(s);
	}
}

void rc_engine_stamp(const char *started, char date[16], char tm[16])
{
	struct timespec ts;
	struct tm t;

	date[0] = tm[0] = '\0';
	if (!rc_time_parse(started, &ts))
		return;
	gmtime_r(&ts.tv_sec, &t);
	strftime(date, 16, "%Y%m%d", &t);
	strftime(tm, 16, "%H%M%S", &t);
}

char *rc_engine_env_label(const rc_env *env)
{
	rc_buf b = RC_BUF_INIT_MAX(1024);
	const rc_target *t = &env->target;

	rc_buf_puts(&b, rc_driver_name(t->driver));
	if (t->app)
		rc_buf_printf(&b, ": %s", t->app);
	else if (t->namespace)
		rc_buf_printf(&b, ": %s", t->namespace);
	else if (t->cluster)
		rc_buf_printf(&b, ": %s", t->cluster);
	return rc_buf_detach(&b);
}

int rc_engine_self_branches(void *ctx, rc_branch **out, size_t *n)
{
	rc_source *src = ctx;
	rc_source_branch *sb = NULL;
	size_t nsb = 0;

	*out = NULL;
	*n = 0;
	if (rc_source_branches(&sb, &nsb, src) < 0)
		return RC_ERROR;
	*out = rc_calloc(nsb + 1, sizeof(rc_branch));
	for (size_t i = 0; i < nsb; i++) {
		(*out)[i].name = rc_strdup(sb[i].name);
		memcpy((*out)[i].sha, sb[i].sha, sizeof(sb[i].sha));
	}
	*n = nsb;
	rc_source_branches_free(sb, nsb);
	return 0;
}

void rc_engine_load_opts(rc_engine *e, rc_load_opts *lo)
{
	/* a tree written from a commit is in no repository: list the
	 * source's own branches for generators over `self` */
	if (rc_source_url(e->src) || e->opts.ref) {
		lo->self_branches = rc_engine_self_branches;
		lo->self_ctx = e->src;
	}
}

int rc_engine_env_bind(rc_engine_env *ee, const rc_env *env)
{
	ee->env = env;
	free(ee->label);
	ee->label = rc_engine_env_label(env);
	ee->ops = rc_driver_find(rc_driver_name(env->target.driver));
	if (!ee->ops)
		return rc_error_set(RC_EUNSUPPORTED, RC_ECLASS_CONFIG,
				    "environment '%s': the '%s' driver is not "
				    "available in this version of reconcile",
				    env->name,
				    rc_driver_name(env->target.driver));
	return 0;
}

/* The key of the secrets' hashes, handed down to schema/secrets.c before
 * any driver expands: read when it exists (or is mounted), made in the
 * state directory only when an environment has secrets to hash. */
static int engine_secret_key(rc_engine *e)
{
	unsigned char key[RC_SECRET_KEY_LEN];
	bool need = false, found = false;
	int rc;

	for (size_t i = 0; i < e->nenvs && !need; i++)
		need = e->envs[i].env->nsecrets > 0;
	rc = rc_state_secret_key(key, e->state_dir, need, &found);
	if (rc == 0 && found)
		rc_secret_set_key(key);
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

int rc_engine_open(rc_engine **out, const rc_engine_opts *opts)
{
	rc_engine *e = rc_calloc(1, sizeof(*e));
	rc_source_opts so = {0};
	rc_load_opts lo = {0};
	int rc;

	*out = e;
	e->opts = *opts;
	if (!e->opts.out)
		e->opts.out = stdout;
	if (e->opts.concurrency <= 0)
		e->opts.concurrency = 8;
	rc_diags_init(&e->diags);
	so.cache_dir = opts->cache_dir;
	so.offline = opts->offline;
	rc = rc_source_open(&e->src, opts->source ? opts->source : ".",
			    opts->ref, &so);
	if (rc < 0)
		return rc;
	lo.only = opts->envs;
	lo.nonly = opts->nenvs;
	rc_engine_load_opts(e, &lo);
	if (rc_config_load(&e->cfg, rc_source_dir(e->src), &lo, &e->diags) < 0)
		return rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				    "the configuration is invalid");
	e->state_dir = opts->state_dir ? rc_strdup(opts->state_dir)
				       : rc_state_dir_for(opts->source &&
								  !rc_source_url(e->src)
							  ? opts->source
							  : ".");
	e->envs = rc_calloc(e->cfg->nenvs + 1, sizeof(rc_engine_env));
	for (size_t i = 0; i < e->cfg->nenvs; i++) {
		const rc_env *env = &e->cfg->envs[i];
		rc_engine_env *ee;

		if (!wanted(opts, env))
			continue;
		ee = &e->envs[e->nenvs++];
		if ((rc = rc_engine_env_bind(ee, env)) < 0)
			return rc;
	}
	if (!opts->ref && (rc = rc_engine_read_branches(e)) < 0)
		return rc;
	/* policy.verify: before anything is recorded or planned */
	if ((rc = rc_verify_engine(e)) < 0)
		return rc;
	if (!opts->keep_gone && (rc = rc_engine_track_generated(e)) < 0)
		return rc;
	if ((rc = engine_secret_key(e)) < 0)
		return rc;
	for (size_t i = 0; i < opts->nenvs; i++) {
		bool found = false;

		for (size_t k = 0; k < e->cfg->nenvs && !found; k++)
			found = wanted(&(rc_engine_opts){.envs = &opts->envs[i],
							 .nenvs = 1},
				       &e->cfg->envs[k]);
		for (size_t k = 0; k < e->nenvs && !found; k++)
			found = !strcmp(e->envs[k].env->name, opts->envs[i]);
		if (!found)
			return rc_error_set(RC_ENOTFOUND, RC_ECLASS_CONFIG,
					    "no environment '%s' in the "
					    "configuration",
					    opts->envs[i]);
	}
	return 0;
}

void rc_engine_notify(rc_engine *e, const rc_notify_event *ev)
{
	rc_notifier *n = e->opts.notifier;

	if (!n && !e->own_notifier && e->cfg && e->cfg->nnotify) {
		if (rc_notifier_new(&e->own_notifier, e->cfg,
				    e->src ? rc_source_dir(e->src)
					   : e->cfg->dir) < 0) {
			RC_WARN("%s", rc_error_last()->message);
			rc_error_clear();
		}
	}
	rc_notifier_send(n ? n : e->own_notifier, ev);
}

void rc_engine_free(rc_engine *e)
{
	if (!e)
		return;
	if (e->own_notifier) {
		rc_notifier_flush(e->own_notifier,
				  e->opts.notify_wait_ms > 0
					  ? e->opts.notify_wait_ms
					  : RC_NOTIFY_FLUSH_MS);
		rc_error_clear();
		rc_notifier_free(e->own_notifier);
	}
	for (size_t i = 0; i < e->nenvs; i++) {
		rc_engine_env *ee = &e->envs[i];

		if (ee->drv)
			ee->ops->close(ee->drv);
		ee->drv = NULL;
		free(ee->label);
		free(ee->config_dir);
		free(ee->commit);
		free(ee->branch);
		free(ee->retire);
		if (ee->owned) {
			rc_env_release(ee->owned);
			free(ee->owned);
		}
	}
	free(e->envs);
	for (size_t i = 0; i < e->nbranch_cfgs; i++)
		rc_config_free(e->branch_cfgs[i]);
	free(e->branch_cfgs);
	json_decref(e->envreg);
	for (size_t i = 0; i < e->nshared; i++)
		e->shared[i].ops->shared_close(e->shared[i].shared);
	free(e->shared);
	for (size_t i = 0; i < e->nnotes; i++)
		free(e->notes[i]);
	free(e->notes);
	rc_resource_set_release(&e->desired);
	rc_resource_set_release(&e->actual);
	json_decref(e->last);
	rc_config_free(e->cfg);
	rc_diags_release(&e->diags);
	rc_source_free(e->src);
	free(e->state_dir);
	free(e);
	rc_secret_clear_key();
}

/* Drivers add notes from their observe threads. */
static pthread_mutex_t note_lock = PTHREAD_MUTEX_INITIALIZER;

static void driver_note(void *arg, const char *env, const char *msg)
{
	rc_engine *e = arg;
	rc_buf line = RC_BUF_INIT;

	if (env)
		rc_buf_printf(&line, "%s: ", env);
	rc_buf_puts(&line, msg);
	pthread_mutex_lock(&note_lock);
	e->notes = rc_realloc(e->notes, (e->nnotes + 1) * sizeof(char *));
	e->notes[e->nnotes++] = rc_buf_detach(&line);
	pthread_mutex_unlock(&note_lock);
}

static void driver_progress(void *arg, const char *action_id,
			    const char *text)
{
	rc_engine *e = arg;

	pthread_mutex_lock(&note_lock);
	if (e->progress_fn)
		e->progress_fn(e->progress_ctx, action_id, text);
	pthread_mutex_unlock(&note_lock);
}

void rc_engine_progress_to(rc_engine *e,
			   void (*fn)(void *ctx, const char *action_id,
				      const char *text),
			   void *ctx)
{
	pthread_mutex_lock(&note_lock);
	e->progress_fn = fn;
	e->progress_ctx = ctx;
	pthread_mutex_unlock(&note_lock);
}

static rc_driver_ctx driver_ctx(rc_engine *e, const rc_engine_env *ee,
				const char *run_id)
{
	rc_driver_ctx c = {0};

	c.project = e->cfg ? e->cfg->project : NULL;
	c.config_dir = ee->config_dir        ? ee->config_dir
		       : e->src              ? rc_source_dir(e->src)
					     : NULL;
	c.state_dir = e->state_dir;
	c.run_id = run_id;
	c.commit = ee->commit ? ee->commit
		   : e->src   ? rc_source_commit(e->src)
			      : NULL;
	c.note = driver_note;
	c.progress = driver_progress;
	c.note_arg = e;
	return c;
}

/* The state ops shares across environments, made on first use; NULL for
 * a driver that shares nothing. */
static int driver_shared(rc_engine *e, const rc_driver_ops *ops,
			 const rc_driver_ctx *ctx, void **out)
{
	size_t i;

	*out = NULL;
	if (!ops->shared_open)
		return 0;
	for (i = 0; i < e->nshared; i++)
		if (e->shared[i].ops == ops) {
			*out = e->shared[i].shared;
			return 0;
		}
	if (ops->shared_open(out, ctx) < 0) {
		rc_error_prefix("driver '%s'", ops->name);
		return RC_ERROR;
	}
	e->shared = rc_realloc(e->shared,
			       (e->nshared + 1) * sizeof(*e->shared));
	e->shared[e->nshared].ops = ops;
	e->shared[e->nshared++].shared = *out;
	return 0;
}

int rc_engine_open_drivers(rc_engine *e, const char *run_id)
{
	for (size_t i = 0; i < e->nenvs; i++) {
		rc_engine_env *ee = &e->envs[i];
		rc_driver_ctx ctx = driver_ctx(e, ee, run_id);

		if (ee->drv)
			continue;
		if (driver_shared(e, ee->ops, &ctx, &ctx.shared) < 0)
			return RC_ERROR;
		if (ee->ops->open(&ee->drv, ee->env, &ctx) < 0) {
			rc_error_prefix("environment '%s'", ee->env->name);
			return RC_ERROR;
		}
	}
	return 0;
}

/* What reconcile applied last, per resource key: the journals replayed
 * from the oldest run to the newest (to the run before `before` when it is
 * given). */
typedef struct {
	json_t *last;    /* key -> body */
	json_t *intents; /* action -> its intent, until its outcome */
	const char *run;
	bool first;      /* the next record is the run's first */
	const rc_replay_observer *obs;
} replay;

/* The key under which last holds a hook of env left unfinished (new). */
char *rc_engine_unfinished_key(const char *hook_key)
{
	rc_buf b = RC_BUF_INIT_MAX(4096);
	size_t len = strcspn(hook_key, "/");
	const char *name = strrchr(hook_key, '/');

	rc_buf_printf(&b, "%.*s/" RC_UNFINISHED_KIND "/%s", (int)len, hook_key,
		      name ? name + 1 : hook_key);
	return rc_buf_detach(&b);
}

/* A hook's intent that got its outcome: whatever an earlier run left of
 * that hook unfinished is settled. */
static void settle_hook(json_t *last, const json_t *intent)
{
	const char *op = json_string_value(json_object_get(intent, "op"));
	const char *key = json_string_value(json_object_get(intent, "key"));
	char *uk;

	if (!op || !key || strcmp(op, "run"))
		return;
	uk = rc_engine_unfinished_key(key);
	json_object_del(last, uk);
	free(uk);
}

/* The hooks of run whose intents got no outcome: carried into the next
 * plan, the newest attempt of each hook replacing an older one. */
static void keep_unfinished(json_t *last, const char *run, json_t *intents)
{
	const char *k;
	json_t *in;

	json_object_foreach(intents, k, in) {
		const char *op = json_string_value(json_object_get(in, "op"));
		const char *key = json_string_value(json_object_get(in, "key"));
		json_t *spec = json_object_get(in, "desired");
		char *uk;

		if (!op || !key || strcmp(op, "run") || !json_is_object(spec))
			continue;
		uk = rc_engine_unfinished_key(key);
		json_object_set_new(
			last, uk,
			json_pack("{s:s, s:s, s:s, s:O, s:b}", "run", run,
				  "action", k, "key", key, "spec", spec,
				  "irreversible",
				  json_is_true(json_object_get(in,
							       "irreversible"))));
		free(uk);
	}
}

json_t *rc_engine_take_unfinished(json_t *last)
{
	json_t *out = json_object(), *v;
	const char *k;
	void *tmp;

	json_object_foreach_safe(last, tmp, k, v) {
		const char *kind = k + strcspn(k, "/"), *hk;

		if (strncmp(kind, "/" RC_UNFINISHED_KIND "/",
			    strlen(RC_UNFINISHED_KIND) + 2))
			continue;
		hk = json_string_value(json_object_get(v, "key"));
		json_object_set(out, hk ? hk : k, v);
		json_object_del(last, k);
	}
	return out;
}

/* The hooks a run-start says the run will run ("hooks": [{action, key,
 * desired, irreversible}]) stand as intents marked "planned" until the
 * hook's own intent or outcome: an interrupted run killed before a hook
 * started leaves that hook unfinished too. */
static void planned_hooks(json_t *intents, const json_t *start)
{
	size_t i;
	json_t *h;

	json_array_foreach(json_object_get(start, "hooks"), i, h) {
		const char *action = json_string_value(json_object_get(h,
								      "action"));
		json_t *in;

		if (!action)
			continue;
		in = json_deep_copy(h);
		json_object_set_new(in, "op", json_string("run"));
		json_object_set_new(in, "planned", json_true());
		json_object_set_new(intents, action, in);
	}
}

/* A run that ended: its hooks that never started were skipped (or the
 * run gave up), not interrupted. */
static void drop_planned(json_t *intents)
{
	const char *k;
	json_t *v;
	void *tmp;

	json_object_foreach_safe(intents, tmp, k, v)
		if (json_is_true(json_object_get(v, "planned")))
			json_object_del(intents, k);
}

/* Whether a hook's outcome leaves it unfinished: its reply was lost in
 * an outage ("unknown"), or it was not attempted though the changes
 * before it may have been made ("skipped" with "unfinished"). */
static bool hook_owed(const json_t *in, const char *st, const json_t *rec)
{
	const char *op = json_string_value(json_object_get(in, "op"));

	if (!op || strcmp(op, "run"))
		return false;
	return !strcmp(st, "unknown") ||
	       (!strcmp(st, "skipped") &&
		json_is_true(json_object_get(rec, "unfinished")));
}

static int replay_record(void *ctx, json_t *rec)
{
	replay *r = ctx;
	const char *type = json_string_value(json_object_get(rec, "type"));
	const char *action = json_string_value(json_object_get(rec, "action"));
	const char *st, *op, *key;
	json_t *in;

	if (r->first && r->obs && r->obs->run_start)
		r->obs->run_start(r->obs->arg, r->run, rec);
	r->first = false;
	if (type && !strcmp(type, "run-start"))
		planned_hooks(r->intents, rec);
	if (type && !strcmp(type, "run-end"))
		drop_planned(r->intents);
	if (!type || !action)
		return 0;
	if (!strcmp(type, "intent")) {
		json_object_set(r->intents, action, rec);
		return 0;
	}
	if (strcmp(type, "outcome"))
		return 0;
	in = json_object_get(r->intents, action);
	st = json_string_value(json_object_get(rec, "status"));
	if (in && st && hook_owed(in, st, rec)) {
		/* still unfinished, also past the run's end: the next plan
		 * asks the driver what became of it */
		json_object_del(in, "planned");
		return 0;
	}
	if (in && st && (!strcmp(st, "ok") || !strcmp(st, "failed")) &&
	    !json_is_true(json_object_get(rec, "unsettled")))
		settle_hook(r->last, in);
	if (!in || !st || strcmp(st, "ok")) {
		if (in)
			json_object_del(r->intents, action);
		return 0;
	}
	if (r->obs && r->obs->effect)
		r->obs->effect(r->obs->arg, r->run, in, r->last);
	op = json_string_value(json_object_get(in, "op"));
	key = json_string_value(json_object_get(in, "key"));
	if (op && key && strcmp(op, "run")) {
		if (!strcmp(op, "delete"))
			json_object_del(r->last, key);
		else if (json_object_get(in, "desired"))
			json_object_set(r->last, key,
					json_object_get(in, "desired"));
	}
	json_object_del(r->intents, action);
	return 0;
}

/* The replay, from base (taken; NULL: nothing applied) over the runs
 * not in known ({run: size}, NULL: none): NULL when a run in known comes
 * after one that is not (the journals are not base's plus newer ones). */
static json_t *replay_runs(const char *state_dir, const char *before,
			   const rc_replay_observer *obs, json_t *base,
			   const json_t *known)
{
	replay r = {base ? base : json_object(), NULL, NULL, false, obs};
	rc_run_summary *runs = NULL;
	size_t n = 0;
	bool newer = false;

	if (rc_history_order(&runs, &n, state_dir) < 0) {
		rc_error_clear();
		return r.last;
	}
	/* oldest first, one record at a time */
	for (size_t i = n; i-- > 0;) {
		rc_buf path = RC_BUF_INIT_MAX(PATH_MAX * 2);

		if (before && !strcmp(runs[i].id, before))
			break;
		if (known && json_object_get(known, runs[i].id)) {
			if (newer) {
				json_decref(r.last);
				r.last = NULL;
				break;
			}
			continue; /* in base already */
		}
		newer = true;
		r.intents = json_object();
		r.run = runs[i].id;
		r.first = true;
		rc_buf_printf(&path, "%s/runs/%s.journal", state_dir, runs[i].id);
		if (rc_journal_scan(path.ptr, replay_record, &r, NULL, NULL) < 0)
			rc_error_clear();
		keep_unfinished(r.last, r.run, r.intents);
		if (obs && obs->effect) {
			/* intents without an outcome may have taken effect */
			const char *k;
			json_t *v;

			json_object_foreach(r.intents, k, v)
				if (!json_is_true(json_object_get(v,
								  "planned")))
					obs->effect(obs->arg, r.run, v,
						    r.last);
		}
		json_decref(r.intents);
		rc_buf_release(&path);
	}
	rc_history_free(runs, n);
	return r.last;
}

json_t *rc_engine_replay(const char *state_dir, const char *before,
			 const rc_replay_observer *obs)
{
	return replay_runs(state_dir, before, obs, NULL, NULL);
}

/* Whether every journal of from is in now at the same size: a snapshot
 * made from `from` is then brought up to date by the newer runs alone. */
static bool journals_grew(const json_t *from, const json_t *now)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)from, k, v)
		if (!json_equal(v, json_object_get(now, k)))
			return false;
	return true;
}

/* Only the keys of the environments in envs (in place). */
static void keep_envs(json_t *last, const char *const *envs, size_t nenvs)
{
	const char *k;
	json_t *v;
	void *tmp;

	json_object_foreach_safe(last, tmp, k, v) {
		size_t len = strcspn(k, "/"), i;

		for (i = 0; i < nenvs; i++)
			if (strlen(envs[i]) == len &&
			    !memcmp(envs[i], k, len))
				break;
		if (i == nenvs)
			json_object_del(last, k);
	}
}

json_t *rc_engine_last_applied_for(const char *state_dir,
				   const char *const *envs, size_t nenvs)
{
	json_t *journals, *last, *from = NULL, *again;

	/* the snapshot when it was made from the journals as they are now
	   (only the lines of envs read); else brought up to date by the
	   newer runs when only runs were added, else the whole replay; saved
	   when no journal moved while it ran */
	journals = rc_snapshot_journals(state_dir);
	if (!journals)
		return rc_engine_replay(state_dir, NULL, NULL);
	last = rc_snapshot_read(state_dir, envs, nenvs, &from);
	if (last && json_equal(from, journals)) {
		json_decref(from);
		json_decref(journals);
		return last;
	}
	if (last && nenvs) {
		json_decref(last);
		json_decref(from);
		last = rc_snapshot_read(state_dir, NULL, 0, &from);
	}
	if (last && journals_grew(from, journals))
		last = replay_runs(state_dir, NULL, NULL, last, from);
	else if (last) {
		json_decref(last);
		last = NULL;
	}
	if (!last)
		last = rc_engine_replay(state_dir, NULL, NULL);
	again = rc_snapshot_journals(state_dir);
	if (again && json_object_size(again) &&
	    json_equal(journals, again) &&
	    rc_snapshot_save(state_dir, journals, last) < 0) {
		RC_DEBUG("last-applied snapshot not saved: %s",
			 rc_error_last()->message);
		rc_error_clear();
	}
	if (nenvs)
		keep_envs(last, envs, nenvs);
	json_decref(again);
	json_decref(from);
	json_decref(journals);
	return last;
}

json_t *rc_engine_last_applied(const char *state_dir, const char *before)
{
	json_t *last = before ? rc_engine_replay(state_dir, before, NULL)
			      : rc_engine_last_applied_for(state_dir, NULL, 0);

	json_decref(rc_engine_take_unfinished(last));
	return last;
}

static bool engine_immutable(const char *driver, const char *kind,
			     const char *path, void *arg)
{
	const rc_driver_ops *ops = rc_driver_find(driver);

	RC_UNUSED(arg);
	return ops && ops->immutable && ops->immutable(kind, path);
}

json_t *rc_engine_hook_spec(const rc_hook *h)
{
	json_t *o = json_object(), *run = json_array(), *env = json_object();

	for (size_t i = 0; i < h->run.n; i++)
		json_array_append_new(run, json_string(h->run.v[i]));
	json_object_set_new(o, "name", json_string(h->name));
	json_object_set_new(o, "run", run);
	json_object_set_new(o, "where", json_string(h->local ? "local" : "target"));
	if (h->service)
		json_object_set_new(o, "service", json_string(h->service));
	for (size_t i = 0; i < h->env.n; i++)
		json_object_set_new(env, h->env.items[i].key,
				    json_string(h->env.items[i].value));
	json_object_set_new(o, "env", env);
	json_object_set_new(o, "timeout", json_integer(h->timeout));
	json_object_set_new(o, "irreversible", json_boolean(h->irreversible));
	return o;
}

/*
 * Expands and observes every environment, several at once (each driver
 * talks to its own platform, and the wait is mostly the network's): at
 * most 8 threads, each taking the next environment. Results are merged in
 * environment order, so the plan is the same whatever finished first.
 */
#define RC_OBSERVE_THREADS 8

typedef struct {
	rc_engine *e;
	pthread_mutex_t mu;
	size_t next;
	rc_resource_set *des, *act;
	int *rc;
	int *code;
	rc_error_class *klass;
	rc_loc *loc;
	char **msg;
	bool expand_only; /* the desired set alone (rc_engine_expand) */
} observe_pool;

static void expand_observe_one(observe_pool *p, size_t i)
{
	rc_engine_env *ee = &p->e->envs[i];
	size_t j;
	int rc = 0;

	/* a gone environment declares nothing */
	if ((!ee->retire &&
	     (rc = ee->ops->expand(ee->drv, ee->env, &p->des[i])) < 0) ||
	    (!p->expand_only &&
	     (rc = ee->ops->observe(ee->drv, &p->des[i], &p->act[i])) < 0)) {
		const rc_error *err = rc_error_last();

		rc_error_prefix("environment '%s'", ee->env->name);
		err = rc_error_last();
		p->rc[i] = rc;
		p->code[i] = err ? err->code : rc;
		p->klass[i] = err ? err->klass : RC_ECLASS_INTERNAL;
		if (err)
			p->loc[i] = err->loc;
		p->msg[i] = rc_strdup(err ? err->message : "failed");
		/* copied: a worker thread's own error would outlive it */
		rc_error_clear();
		return;
	}
	for (j = 0; ee->ops->normalize && j < p->des[i].n; j++)
		ee->ops->normalize(p->des[i].items[j].kind,
				   p->des[i].items[j].body);
	for (j = 0; ee->ops->normalize && j < p->act[i].n; j++)
		ee->ops->normalize(p->act[i].items[j].kind,
				   p->act[i].items[j].body);
}

static void *observe_worker(void *arg)
{
	observe_pool *p = arg;

	for (;;) {
		size_t i;

		pthread_mutex_lock(&p->mu);
		i = p->next++;
		pthread_mutex_unlock(&p->mu);
		if (i >= p->e->nenvs)
			break;
		expand_observe_one(p, i);
	}
	return NULL;
}

/* Moves every resource of from to the end of to. */
static void move_resources(rc_resource_set *to, rc_resource_set *from)
{
	if (from->n) {
		RC_GROW(to->items, to->cap, to->n + from->n);
		memcpy(&to->items[to->n], from->items,
		       from->n * sizeof(rc_resource));
		to->n += from->n;
	}
	free(from->items);
	memset(from, 0, sizeof(*from));
}

static int expand_observe_all(rc_engine *e, bool expand_only)
{
	observe_pool p;
	pthread_t th[RC_OBSERVE_THREADS];
	size_t nth = e->nenvs < RC_OBSERVE_THREADS ? e->nenvs
						   : RC_OBSERVE_THREADS;
	size_t started = 0, i;
	int rc = 0;

	memset(&p, 0, sizeof(p));
	p.e = e;
	p.expand_only = expand_only;
	pthread_mutex_init(&p.mu, NULL);
	p.des = rc_calloc(e->nenvs + 1, sizeof(rc_resource_set));
	p.act = rc_calloc(e->nenvs + 1, sizeof(rc_resource_set));
	p.rc = rc_calloc(e->nenvs + 1, sizeof(int));
	p.code = rc_calloc(e->nenvs + 1, sizeof(int));
	p.klass = rc_calloc(e->nenvs + 1, sizeof(rc_error_class));
	p.msg = rc_calloc(e->nenvs + 1, sizeof(char *));
	p.loc = rc_calloc(e->nenvs + 1, sizeof(rc_loc));
	if (nth > 1)
		for (; started < nth; started++)
			if (pthread_create(&th[started], NULL, observe_worker,
					   &p))
				break;
	observe_worker(&p); /* this thread works too (all of it if alone) */
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < e->nenvs; i++) {
		if (p.rc[i] < 0 && rc == 0)
			rc = p.loc[i].file
				     ? rc_error_set_at(p.code[i], p.loc[i], "%s",
						       p.msg[i])
				     : rc_error_set(p.code[i], p.klass[i], "%s",
						    p.msg[i]);
		move_resources(&e->desired, &p.des[i]);
		move_resources(&e->actual, &p.act[i]);
		free(p.msg[i]);
	}
	free(p.des);
	free(p.act);
	free(p.rc);
	free(p.code);
	free(p.klass);
	free(p.msg);
	free(p.loc);
	pthread_mutex_destroy(&p.mu);
	return rc;
}

int rc_engine_expand(rc_engine *e)
{
	int rc;

	if ((rc = rc_engine_open_drivers(e, NULL)) < 0)
		return rc;
	return expand_observe_all(e, true);
}

/* Asks each driver what its creates and updates would make; the changes
 * shown become the platform's own (server defaults included). */
static int server_dry_run(rc_engine *e, rc_plan *plan)
{
	for (size_t i = 0; i < plan->n; i++) {
		rc_action *a = &plan->actions[i];
		rc_engine_env *ee = NULL;
		json_t *res = NULL, *empty;

		if (a->op != RC_OP_CREATE && a->op != RC_OP_UPDATE)
			continue;
		for (size_t k = 0; k < e->nenvs && !ee; k++)
			if (!strcmp(e->envs[k].env->name, a->env))
				ee = &e->envs[k];
		if (!ee || !ee->ops->dry_run)
			continue;
		if (ee->ops->dry_run(ee->drv, a, &res) < 0) {
			rc_error_prefix("server dry run of %s", a->key);
			return RC_ERROR;
		}
		if (!res)
			continue;
		rc_changes_release(&a->changes);
		empty = json_object();
		rc_diff(&a->changes, res, NULL, a->actual ? a->actual : empty,
			NULL, 0);
		json_decref(empty);
		json_decref(res);
	}
	return 0;
}

int rc_engine_plan(rc_engine *e, rc_plan *plan)
{
	rc_plan_env *pe = rc_calloc(e->nenvs + 1, sizeof(*pe));
	rc_plan_hook *ph = NULL;
	size_t nh = 0, i, j;
	rc_plan_input in = {0};
	json_t *unfinished = NULL;
	int rc;

	memset(plan, 0, sizeof(*plan));
	if ((rc = rc_engine_open_drivers(e, NULL)) < 0)
		goto done;
	if ((rc = expand_observe_all(e, false)) < 0)
		goto done;
	for (i = 0; i < e->nenvs; i++) {
		rc_engine_env *ee = &e->envs[i];

		pe[i].env = ee->env->name;
		pe[i].prune = ee->env->policy.prune;
		pe[i].label = ee->label;
		pe[i].branch = ee->branch;
		pe[i].commit = ee->commit;
		pe[i].retire = ee->retire;
		pe[i].allow_replace = ee->env->policy.allow_replace;
		pe[i].manual = ee->env->policy.apply == RC_APPLY_MANUAL;
		pe[i].depends_on = (const char *const *)ee->env->depends_on;
		pe[i].ndepends_on = ee->env->ndepends_on;
		{
			size_t np = 0, k;
			const char **ptrs, **fors;

			for (j = 0; j < ee->env->nignore; j++)
				np += ee->env->ignore[j].paths.n;
			ptrs = rc_calloc(np + 1, sizeof(char *));
			fors = rc_calloc(np + 1, sizeof(char *));
			np = 0;
			for (j = 0; j < ee->env->nignore; j++)
				for (k = 0; k < ee->env->ignore[j].paths.n; k++) {
					ptrs[np] = ee->env->ignore[j].paths.v[k];
					fors[np++] = ee->env->ignore[j].resource;
				}
			pe[i].ignore = ptrs;
			pe[i].ignore_for = fors;
			pe[i].nignore = np;
		}
		for (j = 0; j < ee->env->npre_apply + ee->env->npost_apply; j++) {
			bool post = j >= ee->env->npre_apply;
			const rc_hook *h = post ? &ee->env->post_apply[j - ee->env->npre_apply]
						: &ee->env->pre_apply[j];

			ph = rc_realloc(ph, (nh + 1) * sizeof(*ph));
			ph[nh].env = ee->env->name;
			ph[nh].name = h->name;
			ph[nh].post = post;
			ph[nh].spec = rc_engine_hook_spec(h);
			ph[nh].irreversible = h->irreversible;
			nh++;
		}
	}
	if (e->opts.nenvs) {
		/* -e: only those environments' lines of the snapshot */
		const char **names = rc_calloc(e->nenvs + 1, sizeof(*names));

		for (i = 0; i < e->nenvs; i++)
			names[i] = e->envs[i].env->name;
		e->last = rc_engine_last_applied_for(e->state_dir, names,
						     e->nenvs);
		free(names);
	} else {
		e->last = rc_engine_last_applied_for(e->state_dir, NULL, 0);
	}
	unfinished = rc_engine_take_unfinished(e->last);
	in.desired = &e->desired;
	in.actual = &e->actual;
	in.last = e->last;
	in.envs = pe;
	in.nenvs = e->nenvs;
	in.hooks = ph;
	in.nhooks = nh;
	in.unfinished = unfinished;
	in.immutable = engine_immutable;
	in.destroy = e->opts.destroy;
	in.force = e->opts.force;
	rc = rc_plan_build(plan, &in);
	if (rc == 0 && e->opts.server_dry_run)
		rc = server_dry_run(e, plan);
	rc_engine_forget_empty(e);
	for (i = 0; i < e->nnotes; i++)
		rc_plan_note(plan, "%s", e->notes[i]);
	if (rc_secret_key_id())
		plan->secret_key = rc_strdup(rc_secret_key_id());
	if (rc_source_commit(e->src))
		plan->commit = rc_strdup(rc_source_commit(e->src));
	if (rc_source_url(e->src)) {
		plan->source = rc_strdup(rc_source_url(e->src));
	} else {
		char real[PATH_MAX];

		if (realpath(e->opts.source ? e->opts.source : ".", real))
			plan->source = rc_strdup(real);
	}
	if (e->opts.ref)
		plan->ref = rc_strdup(e->opts.ref);
done:
	json_decref(unfinished);
	for (i = 0; i < nh; i++)
		json_decref(ph[i].spec);
	for (i = 0; i < e->nenvs; i++) {
		free((void *)(uintptr_t)pe[i].ignore);
		free((void *)(uintptr_t)pe[i].ignore_for);
	}
	free(ph);
	free(pe);
	return rc;
}
