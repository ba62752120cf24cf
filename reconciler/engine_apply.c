/* Applying a plan: locks, the journal, bounded concurrency, progress. */
#include "reconciler/base/common.h"
#include "reconciler/engine.h"
#include "reconciler/base/log.h"
#include "reconciler/base/rctime.h"
#include "drivers/http.h"
#include "state/history.h"
#include "state/journal.h"
#include "state/lock.h"

#include <pthread.h>

typedef enum {
	ST_PENDING,
	ST_RUNNING,
	ST_OK,
	ST_FAILED,
	ST_SKIPPED,
	ST_UNKNOWN /* sent, its reply lost: the next plan observes it */
} act_state;

static const char *const state_names[] = {"waiting", "running", "ok",
					  "failed", "skipped", "unknown"};

/* What an action whose reply was lost says it is (outcome "unknown"). */
#define UNKNOWN_NOTE "not known whether it took effect; the next plan " \
		     "observes it"

typedef struct {
	rc_engine *e;
	const rc_plan *plan;
	rc_journal *journal;
	act_state *st;
	double *started, *took;
	char **errors;
	char **notes; /* a hook's exit status and the end of its output */
	/* a hook an interrupted run left unfinished: how this run settled
	   it (for its outcome record), and whether it stays unsettled */
	rc_buf *settled;
	bool *unsettled;
	json_t *last_result; /* the result being recorded (lock held) */
	size_t running, done;
	size_t *running_per_env;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	FILE *out;
	char date[16], time[16]; /* {{ run.date }}, {{ run.time }}: its start */
	bool live;        /* redraw the whole block on a terminal */
	size_t drawn;     /* lines drawn last time */
	char **details;   /* a running action's progress, as its driver
			     says it (live display only) */
	double drawn_at;  /* when progress last redrew the block */
	/* outages (drivers/http.h, endpoints): the endpoint each
	 * environment was seen to use, the one found unreachable that
	 * stops it, and its actions not attempted for that */
	char **env_origin, **env_down;
	size_t *not_attempted;
} executor;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t env_index(const executor *x, const char *env)
{
	for (size_t i = 0; i < x->e->nenvs; i++)
		if (!strcmp(x->e->envs[i].env->name, env))
			return i;
	return 0;
}

/* The thread's last error as an action's outcome shows it: with the
 * file:line:col of the configuration it concerns, when it has one (a
 * platform refused a name or a size). */
static char *last_error(const char *fallback)
{
	const rc_error *e = rc_error_last();
	rc_buf b = RC_BUF_INIT_MAX(1 << 16);

	if (!e || !e->message)
		return rc_strdup(fallback);
	if (e->loc.file && e->loc.line > 0)
		rc_buf_printf(&b, "%s:%d:%d: ", e->loc.file, e->loc.line,
			      e->loc.col);
	rc_buf_puts(&b, e->message);
	return rc_buf_detach(&b);
}

/* One line per action: its sign, what, state and duration. Called with
 * the lock held. */
static void draw(executor *x, size_t only)
{
	const rc_plan *p = x->plan;
	rc_buf b = RC_BUF_INIT;

	if (x->live) {
		if (x->drawn)
			rc_buf_printf(&b, "\033[%zuA", x->drawn);
		for (size_t i = 0; i < p->n; i++) {
			const rc_action *a = &p->actions[i];
			double t = x->st[i] == ST_RUNNING ? now_s() - x->started[i]
							    : x->took[i];

			rc_buf_printf(&b, "\033[2K  %c %s/%s %s  %s",
				      "+~-!>"[a->op], a->env, a->kind, a->name,
				      state_names[x->st[i]]);
			if (x->st[i] != ST_PENDING && x->st[i] != ST_SKIPPED)
				rc_buf_printf(&b, " (%.1fs)", t);
			if (x->st[i] == ST_RUNNING && x->details[i])
				rc_buf_printf(&b, "  %s", x->details[i]);
			rc_buf_putc(&b, '\n');
		}
		x->drawn = p->n;
	} else if (only < p->n && x->st[only] != ST_RUNNING) {
		const rc_action *a = &p->actions[only];

		rc_buf_printf(&b, "  %c %s/%s %s: %s", "+~-!>"[a->op], a->env,
			      a->kind, a->name, state_names[x->st[only]]);
		if (x->st[only] != ST_SKIPPED)
			rc_buf_printf(&b, " (%.1fs)", x->took[only]);
		if (x->errors[only])
			rc_buf_printf(&b, ": %s", x->errors[only]);
		else if (x->notes[only])
			rc_buf_printf(&b, ": %s", x->notes[only]);
		rc_buf_putc(&b, '\n');
	}
	rc_redact(&b);
	fwrite(b.ptr, 1, b.len, x->out);
	fflush(x->out);
	rc_buf_release(&b);
}

/* A driver's progress on an action (rc_driver_ctx.progress): kept for
 * the live display, which is redrawn at most 5 times a second for it. */
static void exec_progress(void *ctx, const char *action_id, const char *text)
{
	executor *x = ctx;
	size_t i;

	pthread_mutex_lock(&x->mu);
	for (i = 0; i < x->plan->n; i++)
		if (!strcmp(x->plan->actions[i].id, action_id))
			break;
	if (i < x->plan->n && x->st[i] == ST_RUNNING) {
		free(x->details[i]);
		x->details[i] = rc_strdup(text);
		if (now_s() - x->drawn_at >= 0.2) {
			x->drawn_at = now_s();
			draw(x, SIZE_MAX);
		}
	}
	pthread_mutex_unlock(&x->mu);
}

/* What a hook that ran says: "exit status 0", and the end of its output
 * indented (new string, already redacted by the driver). */
static char *hook_note(const json_t *result, const char *settled)
{
	rc_buf b = RC_BUF_INIT_MAX(1 << 16);
	const char *out = json_string_value(json_object_get(result, "output"));

	rc_buf_printf(&b, "exit status %d",
		      (int)json_integer_value(json_object_get(result,
							      "exit_code")));
	if (settled && *settled)
		rc_buf_printf(&b, " (unfinished hook: %s)", settled);
	if (out && *out) {
		rc_buf_puts(&b, "; its output ends with:");
		for (const char *p = out; *p;) {
			const char *nl = strchr(p, '\n');
			size_t n = nl ? (size_t)(nl - p) : strlen(p);

			if (n)
				rc_buf_printf(&b, "\n      %.*s", (int)n, p);
			p += n + (nl != NULL);
		}
	}
	return rc_buf_detach(&b);
}

/* The values of a hook's deferred placeholders at apply time (an
 * on_rollback hook's {{ rolled_back.* }} were filled in by its plan). */
typedef struct {
	const executor *x;
	const char *commit;
	char short_commit[8];
} run_values;

static const char *run_value(void *arg, const char *name)
{
	run_values *v = arg;

	if (!strcmp(name, "run.commit"))
		return v->commit;
	if (!strcmp(name, "run.short_commit"))
		return v->short_commit;
	if (!strcmp(name, "run.date"))
		return v->x->date;
	if (!strcmp(name, "run.time"))
		return v->x->time;
	if (!strcmp(name, "run.id"))
		return rc_journal_run_id(v->x->journal);
	if (!strncmp(name, "env.", 4))
		return getenv(name + 4);
	return NULL;
}

/* The commit an environment was planned at: its policy.branch's, or the
 * source's. */
static const char *env_commit(const rc_plan *p, const char *env)
{
	for (size_t i = 0; i < p->nenvs; i++)
		if (!strcmp(p->envs[i], env) && p->env_commits &&
		    p->env_commits[i])
			return p->env_commits[i];
	return p->commit ? p->commit : "";
}

/* A hook's spec as the driver gets it, for the run run_id (NULL: this
 * one): placeholders filled in, run_id set, "unfinished" left out. */
static json_t *resolve_spec(const json_t *spec, const executor *x,
			    const char *envname, const char *run_id)
{
	json_t *o = json_deep_copy(spec);
	run_values rv = {x, env_commit(x->plan, envname), ""};

	snprintf(rv.short_commit, sizeof(rv.short_commit), "%.7s", rv.commit);
	json_object_del(o, "unfinished");
	/* the run, for drivers that name what a hook makes after it */
	json_object_set_new(o, "run_id",
			    json_string(run_id ? run_id
					       : rc_journal_run_id(x->journal)));
	rc_engine_fill_hook(o, run_value, &rv);
	return o;
}

/* What the user said of hook a with --hook-outcome: "succeeded",
 * "failed", or NULL. */
static const char *user_outcome(const executor *x, const rc_action *a)
{
	const rc_engine_opts *o = &x->e->opts;
	size_t nl = strlen(a->name), el = strlen(a->env);

	for (size_t i = 0; i < o->nhook_outcomes; i++) {
		const char *s = o->hook_outcomes[i];

		if (!strncmp(s, a->env, el) && s[el] == '/')
			s += el + 1;
		if (!strncmp(s, a->name, nl) && s[nl] == '=')
			return s + nl + 1;
	}
	return NULL;
}

/* Asks the driver what became of the attempt unf ({run, spec}) made, and
 * when that one never started, of the attempt before it (an attempt that
 * was itself settling an older one). *from: the run whose attempt
 * answered. */
static int ask_hook(executor *x, const rc_action *a, rc_engine_env *ee,
		    const json_t *unf, rc_hook_state *st, rc_run_result *res,
		    const char **from)
{
	const json_t *old = json_object_get(unf, "spec");
	const char *run = json_string_value(json_object_get(unf, "run"));
	long wait = (long)json_integer_value(json_object_get(a->desired,
							     "timeout"));
	json_t *spec;
	int rc;

	*st = RC_HOOK_UNKNOWN;
	*from = run;
	memset(res, 0, sizeof(*res));
	res->exit_code = -1;
	if (!ee->ops->hook_status || !json_is_object(old) || !run)
		return 0;
	spec = resolve_spec(old, x, a->env, run);
	rc = ee->ops->hook_status(ee->drv, spec, wait > 0 ? wait : 600, st,
				  res);
	json_decref(spec);
	if (rc == 0 && *st == RC_HOOK_NOT_STARTED &&
	    json_object_get(old, "unfinished")) {
		rc_run_result_release(res);
		return ask_hook(x, a, ee, json_object_get(old, "unfinished"),
				st, res, from);
	}
	return rc;
}

/* A hook an interrupted run left unfinished: settled without running it
 * (0, *ran_before set, *result its outcome), refused (an error, the hook
 * stays unsettled), or to be run again (0, *ran_before false). */
static int settle_unfinished(executor *x, size_t i, rc_engine_env *ee,
			     json_t **result, char **err, bool *ran_before)
{
	const rc_action *a = &x->plan->actions[i];
	const json_t *unf = json_object_get(a->desired, "unfinished");
	const char *said = user_outcome(x, a), *from = NULL;
	rc_run_result res = {0};
	rc_hook_state st = RC_HOOK_UNKNOWN;
	rc_buf b = RC_BUF_INIT_MAX(1 << 16);
	int rc = 0;

	*ran_before = false;
	if (said && !strcmp(said, "succeeded")) {
		*ran_before = true;
		*result = json_pack("{s:i}", "exit_code", 0);
		rc_buf_printf(&x->settled[i], "succeeded in run %s (as "
			      "--hook-outcome says)",
			      json_string_value(json_object_get(unf, "run")));
		return 0;
	}
	if (said) {
		rc_buf_printf(&x->settled[i], "failed in run %s (as "
			      "--hook-outcome says); run again",
			      json_string_value(json_object_get(unf, "run")));
		return 0;
	}
	rc = ask_hook(x, a, ee, unf, &st, &res, &from);
	if (rc < 0) {
		x->unsettled[i] = true;
		*err = last_error("cannot tell what became of the hook");
		rc_run_result_release(&res);
		return rc;
	}
	switch (st) {
	case RC_HOOK_SUCCEEDED:
		*ran_before = true;
		*result = json_pack("{s:i}", "exit_code", 0);
		if (res.output_tail && *res.output_tail)
			json_object_set_new(*result, "output",
					    json_string(res.output_tail));
		rc_buf_printf(&x->settled[i], "succeeded in run %s", from);
		break;
	case RC_HOOK_RUNNING:
		x->unsettled[i] = true;
		rc_buf_printf(&b, "hook '%s' started by run %s is still "
			      "running; apply again once it has ended",
			      a->name, from);
		*err = rc_buf_detach(&b);
		rc = rc_error_set(RC_ETIMEOUT, RC_ECLASS_PLATFORM, "%s", *err);
		break;
	case RC_HOOK_FAILED:
	case RC_HOOK_NOT_STARTED:
		rc_buf_printf(&x->settled[i], "%s in run %s; run again",
			      rc_hook_state_name(st), from);
		break;
	case RC_HOOK_UNKNOWN:
		if (!a->irreversible) {
			rc_buf_printf(&x->settled[i], "outcome in run %s "
				      "unknown; run again (reversible)", from);
			break;
		}
		x->unsettled[i] = true;
		rc_buf_printf(&b,
			      "irreversible hook '%s' was started by run %s, "
			      "which was interrupted, and its outcome cannot "
			      "be told (%s keeps no trace of it); it is not "
			      "run twice: check whether it took effect, then "
			      "apply with --hook-outcome %s=succeeded (it is "
			      "recorded as done) or --hook-outcome "
			      "%s=failed (it runs again)",
			      a->name, from, ee->ops->name, a->name, a->name);
		*err = rc_buf_detach(&b);
		rc = rc_error_set(RC_ECONFLICT, RC_ECLASS_STATE, "%s", *err);
		break;
	}
	rc_run_result_release(&res);
	rc_buf_release(&b);
	return rc;
}

/* Applies action i (runs it, for a hook): 0, or an error with *err. */
static int apply_action(executor *x, size_t i, json_t **result, char **err)
{
	const rc_action *a = &x->plan->actions[i];
	rc_engine_env *ee = &x->e->envs[env_index(x, a->env)];
	int rc;

	*result = NULL;
	if (a->op == RC_OP_RUN) {
		json_t *spec;
		rc_run_result res = {0};
		bool ran_before = false;

		if (json_object_get(a->desired, "unfinished") &&
		    ((rc = settle_unfinished(x, i, ee, result, err,
					     &ran_before)) < 0 ||
		     ran_before))
			return rc;
		spec = resolve_spec(a->desired, x, a->env, NULL);
		rc = ee->ops->run(ee->drv, spec, &res);
		json_decref(spec);
		if (rc == 0 && res.exit_code != 0) {
			rc_buf b = RC_BUF_INIT_MAX(1 << 16);

			rc_buf_printf(&b, "hook '%s' %s", a->name,
				      res.timed_out ? "timed out"
						    : "exited with status");
			if (!res.timed_out)
				rc_buf_printf(&b, " %d", res.exit_code);
			if (res.output_tail && *res.output_tail)
				rc_buf_printf(&b, "; its output ends with:\n%s",
					      res.output_tail);
			*err = rc_buf_detach(&b);
			rc = RC_ERROR;
		} else if (rc == 0) {
			*result = json_pack("{s:i}", "exit_code", res.exit_code);
			if (res.output_tail && *res.output_tail)
				json_object_set_new(*result, "output",
						    json_string(res.output_tail));
		}
		rc_run_result_release(&res);
		if (rc < 0 && !*err)
			*err = last_error("the hook failed");
		return rc;
	}
	if (a->op == RC_OP_REPLACE && !ee->env->policy.allow_replace) {
		rc_buf b = RC_BUF_INIT_MAX(1 << 16);

		rc_buf_printf(&b,
			      "replacing %s (delete, then create) is refused: "
			      "%s; set policy.allow_replace: true in "
			      "environment '%s' to allow it",
			      a->key, a->reason ? a->reason : "a replace",
			      a->env);
		*err = rc_buf_detach(&b);
		return rc_error_set(RC_ECONFLICT, RC_ECLASS_STATE, "%s", *err);
	}
	rc = ee->ops->apply(ee->drv, a, result);
	if (rc < 0)
		*err = last_error("failed");
	return rc;
}

/* Whether action i is waited on after its apply: every change the driver
 * can wait for (a hook is done when it has run). */
static bool waits(const executor *x, size_t i)
{
	const rc_action *a = &x->plan->actions[i];

	return a->op != RC_OP_RUN &&
	       x->e->envs[env_index(x, a->env)].ops->wait != NULL;
}

/* Waits until what action i touched is healthy, or, for a delete, gone,
 * within the environment's wait_timeout: 0, or an error with *err. */
static int wait_action(executor *x, size_t i, char **err)
{
	const rc_action *a = &x->plan->actions[i];
	rc_engine_env *ee = &x->e->envs[env_index(x, a->env)];
	int rc;

	rc = ee->ops->wait(ee->drv, a,
			   ee->env->target.wait_timeout > 0
				   ? ee->env->target.wait_timeout
				   : 300);
	if (rc < 0)
		*err = last_error("failed");
	return rc;
}

/* The run-start lists the hooks the run will run, so that a run killed
 * before one of them started leaves it unfinished (reconciler/engine.h). */
static void add_planned_hooks(json_t *start, const rc_plan *plan)
{
	json_t *hooks = json_array();

	/* a rollback's on_rollback hooks are not due once it was cut short:
	 * the next plan is not a rollback */
	for (size_t i = 0; i < plan->n && !plan->rollback_of; i++) {
		const rc_action *a = &plan->actions[i];

		if (a->op == RC_OP_RUN)
			json_array_append_new(
				hooks, json_pack("{s:s, s:s, s:s, s:O?, s:b}",
						 "action", a->id, "env", a->env,
						 "key", a->key, "desired",
						 a->desired, "irreversible",
						 a->irreversible));
	}
	if (json_array_size(hooks))
		json_object_set_new(start, "hooks", hooks);
	else
		json_decref(hooks);
}

/* A hook's intent names the unfinished attempt it settles. */
static void add_resolves(json_t *rec, const rc_action *a)
{
	const json_t *unf = json_object_get(a->desired, "unfinished");

	if (unf)
		json_object_set_new(rec, "resolves",
				    json_pack("{s:O?, s:O?}", "run",
					      json_object_get(unf, "run"),
					      "action",
					      json_object_get(unf, "action")));
}

/* Why an action was not attempted (new string): "<service> at <origin>
 * is unreachable since HH:MM:SS: not attempted". */
static char *not_attempted(const char *origin)
{
	rc_buf b = RC_BUF_INIT_MAX(4096);

	if (!rc_http_endpoint_describe(&b, origin))
		rc_buf_printf(&b, "%s was unreachable", origin);
	rc_buf_puts(&b, ": not attempted");
	return rc_buf_detach(&b);
}

/* Records pending action i of environment ei as not attempted: the
 * endpoint it needs is unreachable (lock held). Not drawn: the run ends
 * with one line per endpoint (report_unreachable). Nothing was done, so
 * its record need not be on disk before the next one: the run-end
 * record's fsync takes it there, and a skip of 3,000 actions does not
 * wait for 3,000 fsyncs. */
static void skip_unreachable(executor *x, size_t i, size_t ei)
{
	char *why = not_attempted(x->env_down[ei]);
	json_t *rec;

	rec = json_pack("{s:s, s:s, s:s, s:s}", "type", "outcome", "action",
			x->plan->actions[i].id, "status", "skipped", "error",
			why);
	/* a hook not attempted in an outage is still owed: the changes
	 * before it may have been made (engine.c's replay keeps it) */
	if (x->plan->actions[i].op == RC_OP_RUN)
		json_object_set_new(rec, "unfinished", json_true());
	x->st[i] = ST_SKIPPED;
	x->done++;
	x->not_attempted[ei]++;
	rc_journal_set_sync(x->journal, false);
	rc_journal_append(x->journal, rec);
	rc_journal_set_sync(x->journal, true);
	json_decref(rec);
	if (x->live)
		draw(x, i);
	free(why);
	pthread_cond_broadcast(&x->cv);
}

/* After action i of environment ei ended on this thread (lock held):
 * the endpoint it used; when one was unreachable, every environment
 * seen on it stops, and *unreachable says so. */
static void note_endpoint(executor *x, size_t ei, bool *unreachable)
{
	const char *down = rc_http_thread_unreachable();
	const char *used = rc_http_thread_origin();

	*unreachable = down != NULL;
	if (!x->env_origin[ei] && (used || down))
		x->env_origin[ei] = rc_strdup(down ? down : used);
	if (!down)
		return;
	for (size_t k = 0; k < x->e->nenvs; k++)
		if (!x->env_down[k] &&
		    (k == ei || (x->env_origin[k] &&
				 !strcasecmp(x->env_origin[k], down))))
			x->env_down[k] = rc_strdup(down);
}

/* Picks the next runnable action (lock held): dependencies succeeded.
 * Marks actions whose dependency failed as skipped, and those of an
 * environment whose endpoint is unreachable. SIZE_MAX: none now. */
static size_t pick(executor *x)
{
	const rc_plan *p = x->plan;

	for (size_t i = 0; i < p->n; i++) {
		bool ready = true, blocked = false, owed = false;
		size_t ei;

		if (x->st[i] != ST_PENDING)
			continue;
		ei = env_index(x, p->actions[i].env);
		if (x->env_down[ei]) {
			skip_unreachable(x, i, ei);
			continue;
		}
		for (size_t d = 0; d < p->actions[i].ndeps; d++)
			for (size_t j = 0; j < p->n; j++) {
				if (strcmp(p->actions[j].id, p->actions[i].deps[d]))
					continue;
				if (x->st[j] == ST_FAILED ||
				    x->st[j] == ST_SKIPPED ||
				    x->st[j] == ST_UNKNOWN) {
					blocked = true;
					/* the step may have taken effect: a hook
					 * skipped after it is still owed */
					owed |= x->st[j] == ST_UNKNOWN ||
						(x->st[j] == ST_SKIPPED &&
						 x->env_down[ei]);
				} else if (x->st[j] != ST_OK)
					ready = false;
			}
		if (blocked) {
			json_t *rec = json_pack("{s:s, s:s, s:s, s:s}", "type",
						"outcome", "action",
						p->actions[i].id, "status",
						"skipped", "error",
						"a step it depends on failed");

			if (owed && p->actions[i].op == RC_OP_RUN)
				json_object_set_new(rec, "unfinished",
						    json_true());
			x->st[i] = ST_SKIPPED;
			x->done++;
			rc_journal_append(x->journal, rec);
			json_decref(rec);
			draw(x, i);
			pthread_cond_broadcast(&x->cv);
			continue;
		}
		if (!ready || x->running >= (size_t)x->e->opts.concurrency)
			continue;
		{
			int lim = x->e->envs[ei].ops->max_concurrency;

			if (lim > 0 && x->running_per_env[ei] >= (size_t)lim)
				continue;
		}
		return i;
	}
	return SIZE_MAX;
}

/* At most this many deletions are waited on at once beyond the actions
 * being applied (each holds a thread). */
#define MAX_DELETIONS_WAITED 64

static size_t deletions_waited(const executor *x)
{
	size_t n = 0;

	for (size_t i = 0; i < x->plan->n && n < MAX_DELETIONS_WAITED; i++)
		n += x->plan->actions[i].op == RC_OP_DELETE && waits(x, i);
	return n;
}

static void *worker(void *arg)
{
	executor *x = arg;
	const rc_plan *p = x->plan;

	pthread_mutex_lock(&x->mu);
	while (x->done < p->n) {
		size_t i = pick(x), ei;
		json_t *rec, *result = NULL;
		char *err = NULL;
		bool slot, unreachable, applied;
		act_state end;
		int rc;

		if (i == SIZE_MAX) {
			if (x->done >= p->n)
				break;
			pthread_cond_wait(&x->cv, &x->mu);
			continue;
		}
		ei = env_index(x, p->actions[i].env);
		slot = true;
		x->st[i] = ST_RUNNING;
		x->running++;
		x->running_per_env[ei]++;
		x->started[i] = now_s();
		draw(x, i);
		rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O?, s:O?, s:b}",
				"type", "intent", "action", p->actions[i].id,
				"env", p->actions[i].env, "key",
				p->actions[i].key, "op",
				rc_op_name(p->actions[i].op), "snapshot",
				p->actions[i].actual, "desired",
				p->actions[i].desired, "irreversible",
				p->actions[i].irreversible);
		if (p->actions[i].op == RC_OP_RUN)
			add_resolves(rec, &p->actions[i]);
		rc = rc_journal_append(x->journal, rec);
		json_decref(rec);
		pthread_mutex_unlock(&x->mu);
		rc_http_thread_reset();
		if (rc == 0)
			rc = apply_action(x, i, &result, &err);
		else
			err = rc_strdup(rc_error_last()->message);
		applied = rc == 0; /* a wait that fails after it is no skip */
		if (rc == 0 && waits(x, i)) {
			if (p->actions[i].op == RC_OP_DELETE) {
				/* the platform does the work of a deletion:
				 * waiting for it to end takes no slot */
				pthread_mutex_lock(&x->mu);
				x->running--;
				x->running_per_env[ei]--;
				slot = false;
				pthread_cond_broadcast(&x->cv);
				pthread_mutex_unlock(&x->mu);
			}
			rc = wait_action(x, i, &err);
		}
		pthread_mutex_lock(&x->mu);
		note_endpoint(x, ei, &unreachable);
		/* a request sent and its reply lost: what it did is not
		   known; refused by an unreachable endpoint before anything
		   took effect (nothing lost, no change answered): not
		   attempted */
		end = rc == 0			      ? ST_OK
		      : rc_http_thread_unanswered() ? ST_UNKNOWN
		      : unreachable && !rc_http_thread_wrote() && !applied
			      ? ST_SKIPPED
			      : ST_FAILED;
		if (end == ST_UNKNOWN) {
			rc_buf b = RC_BUF_INIT_MAX(1 << 16);

			rc_buf_printf(&b, "%s; " UNKNOWN_NOTE,
				      err ? err : "failed");
			free(err);
			err = rc_buf_detach(&b);
		} else if (end == ST_SKIPPED) {
			free(err);
			err = not_attempted(rc_http_thread_unreachable());
			x->not_attempted[ei]++;
		}
		rec = json_pack("{s:s, s:s, s:s?, s:O?}", "type", "outcome",
				"action", p->actions[i].id, "error", err,
				"result", result);
		json_object_set_new(rec, "status",
				    json_string(state_names[end]));
		if (x->settled[i].len)
			json_object_set_new(rec, "settled",
					    json_string(x->settled[i].ptr));
		if (x->unsettled[i])
			json_object_set_new(rec, "unsettled", json_true());
		rc_journal_append(x->journal, rec);
		json_decref(rec);
		x->last_result = result;
		x->st[i] = end;
		if (end == ST_SKIPPED)
			free(err); /* said once for the endpoint */
		else
			x->errors[i] = err;
		if (rc == 0 && p->actions[i].op == RC_OP_RUN)
			x->notes[i] = hook_note(x->last_result,
						x->settled[i].ptr);
		x->took[i] = now_s() - x->started[i];
		if (slot) {
			x->running--;
			x->running_per_env[ei]--;
		}
		x->done++;
		if (end != ST_SKIPPED || x->live)
			draw(x, i);
		x->last_result = NULL;
		json_decref(result);
		pthread_cond_broadcast(&x->cv);
	}
	pthread_cond_broadcast(&x->cv);
	pthread_mutex_unlock(&x->mu);
	rc_error_clear(); /* the thread's error dies with it */
	return NULL;
}

/* The notification of one environment at the end of a run: applied,
 * rolled_back or failed, with what changed and the first error. */
static void notify_env(executor *x, size_t ei, const rc_apply_report *rep,
		       const char *run_error)
{
	const rc_plan *plan = x->plan;
	const char *env = plan->envs[ei];
	const rc_env *cfg_env = rc_config_env(x->e->cfg, env);
	const char *counted[] = {"create", "update", "delete", "replace",
				 "hook run"};
	size_t nops[RC_ARRAY_SIZE(counted)] = {0}, total = 0, nfailed = 0,
	       nskipped = 0, nchanges = 0;
	const char **changes = rc_calloc(plan->n + 1, sizeof(char *));
	char **lines = rc_calloc(plan->n + 1, sizeof(char *));
	rc_buf summary = RC_BUF_INIT_MAX(4096), error = RC_BUF_INIT_MAX(4096);
	rc_notify_event ev = {0};

	for (size_t i = 0; i < plan->n; i++) {
		const rc_action *a = &plan->actions[i];
		act_state st = x->st ? x->st[i] : ST_PENDING;
		rc_buf l = RC_BUF_INIT_MAX(1024);

		if (strcmp(a->env, env))
			continue;
		total++;
		nfailed += st == ST_FAILED || st == ST_UNKNOWN;
		nskipped += st == ST_SKIPPED;
		if ((st == ST_FAILED || st == ST_UNKNOWN) && !error.len)
			rc_buf_printf(&error, "%s %s: %s", rc_op_name(a->op),
				      a->key,
				      x->errors[i] ? x->errors[i] : "failed");
		if (st != ST_OK)
			continue;
		if ((size_t)a->op < RC_ARRAY_SIZE(counted))
			nops[a->op]++;
		rc_buf_printf(&l, "%s %s", rc_op_name(a->op), a->key);
		lines[nchanges] = rc_buf_detach(&l);
		changes[nchanges] = lines[nchanges];
		nchanges++;
	}
	if (!total)
		goto out;
	if (nfailed || nskipped || !x->st) {
		ev.kind = RC_NOTIFY_FAILED;
		if (!x->st)
			rc_buf_puts(&error, run_error ? run_error
						      : "the run did not start");
		rc_buf_printf(&summary, "%zu of %zu action%s failed, %zu "
					"skipped%s%s",
			      nfailed, total, total == 1 ? "" : "s", nskipped,
			      plan->rollback_of ? ", rolling back run " : "",
			      plan->rollback_of ? plan->rollback_of : "");
	} else {
		ev.kind = plan->rollback_of ? RC_NOTIFY_ROLLED_BACK
					    : RC_NOTIFY_APPLIED;
		if (plan->rollback_of)
			rc_buf_printf(&summary, "run %s undone: ",
				      plan->rollback_of);
		rc_buf_printf(&summary, "%zu change%s", nchanges,
			      nchanges == 1 ? "" : "s");
		for (size_t k = 0, first = 1; k < RC_ARRAY_SIZE(counted); k++)
			if (nops[k]) {
				rc_buf_printf(&summary, "%s%zu %s",
					      first ? " (" : ", ", nops[k],
					      counted[k]);
				first = 0;
			}
		if (nchanges)
			rc_buf_puts(&summary, ")");
	}
	ev.project = x->e->cfg ? x->e->cfg->project : NULL;
	ev.environment = env;
	ev.entry = cfg_env ? cfg_env->generator : NULL;
	ev.commit = plan->env_commits && plan->env_commits[ei]
			    ? plan->env_commits[ei]
			    : plan->commit;
	ev.run_id = rep->run_id;
	ev.summary = summary.ptr;
	ev.changes = changes;
	ev.nchanges = nchanges;
	ev.error = error.len ? error.ptr : NULL;
	rc_engine_notify(x->e, &ev);
out:
	for (size_t i = 0; i < nchanges; i++)
		free(lines[i]);
	free(lines);
	free(changes);
	rc_buf_release(&summary);
	rc_buf_release(&error);
}

/* Tells the notify: targets how the run went, per environment, keeping
 * the run's error as it was. */
static void notify_run(executor *x, const rc_apply_report *rep, int rc)
{
	const rc_error *le = rc_error_last();
	char *msg = rc < 0 && le && le->message ? rc_strdup(le->message) : NULL;
	rc_error_class klass = le ? le->klass : RC_ECLASS_INTERNAL;

	if (!x->e->opts.notifier && (!x->e->cfg || !x->e->cfg->nnotify)) {
		free(msg);
		return;
	}
	for (size_t i = 0; i < x->plan->nenvs; i++)
		notify_env(x, i, rep, msg);
	if (rc < 0)
		rc_error_set(rc, klass, "%s", msg ? msg : "apply failed");
	free(msg);
}

/* One line per unreachable endpoint: "<service> at <origin> is
 * unreachable since HH:MM:SS: N actions not attempted", counting the
 * actions of every environment it stopped. */
static void report_unreachable(executor *x)
{
	size_t n = x->e->nenvs;

	for (size_t i = 0; i < n; i++) {
		rc_buf b = RC_BUF_INIT_MAX(4096);
		size_t count = 0;
		bool first = true;

		if (!x->env_down[i])
			continue;
		for (size_t k = 0; k < n && first; k++)
			first = k >= i || !x->env_down[k] ||
				strcasecmp(x->env_down[k], x->env_down[i]);
		if (!first)
			continue; /* said with an earlier environment */
		for (size_t k = i; k < n; k++)
			if (x->env_down[k] &&
			    !strcasecmp(x->env_down[k], x->env_down[i]))
				count += x->not_attempted[k];
		if (!rc_http_endpoint_describe(&b, x->env_down[i]))
			rc_buf_printf(&b, "%s was unreachable", x->env_down[i]);
		rc_buf_printf(&b, ": %zu action%s not attempted\n", count,
			      count == 1 ? "" : "s");
		rc_redact(&b);
		fputs(b.ptr, x->out);
		rc_buf_release(&b);
	}
	fflush(x->out);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int rc_engine_apply(rc_engine *e, const rc_plan *plan, rc_apply_report *rep)
{
	executor x;
	rc_lock **locks = rc_calloc(e->nenvs + 1, sizeof(rc_lock *));
	char **names = rc_calloc(e->nenvs + 1, sizeof(char *));
	pthread_t *threads = NULL;
	size_t nthreads, i, nl = 0;
	json_t *rec, *envs = json_array();
	char hostname[256] = "unknown", *plan_id, started[RC_TIME_SIZE];
	int rc = 0;

	memset(rep, 0, sizeof(*rep));
	memset(&x, 0, sizeof(x));
	x.e = e;
	x.plan = plan;
	x.out = e->opts.out;
	x.live = e->opts.progress;
	gethostname(hostname, sizeof(hostname) - 1);
	rc = rc_journal_create(&x.journal, e->state_dir, NULL);
	if (rc < 0)
		goto out;
	rep->run_id = rc_strdup(rc_journal_run_id(x.journal));
	/* one lock per environment, taken in name order */
	for (i = 0; i < e->nenvs; i++)
		names[i] = e->envs[i].env->name;
	qsort(names, e->nenvs, sizeof(char *), cmp_str);
	for (i = 0; i < e->nenvs; i++) {
		if ((rc = rc_lock_acquire(&locks[nl], e->state_dir, names[i],
					  rep->run_id)) < 0)
			goto out;
		nl++;
		json_array_append_new(envs, json_string(names[i]));
	}
	if ((rc = rc_engine_open_drivers(e, rep->run_id)) < 0)
		goto out;
	plan_id = rc_plan_id(plan);
	/* the run's start: its record's time, and the {{ run.date }} and
	 * {{ run.time }} of every hook it runs (a rollback finds them again
	 * as {{ rolled_back.date }} and {{ rolled_back.time }}) */
	rc_time_now(started);
	rc_engine_stamp(started, x.date, x.time);
	rec = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:O, s:s, s:i, s:s}",
			"time", started, "type",
			"run-start", "run", rep->run_id, "commit", plan->commit,
			"source", e->src ? rc_source_url(e->src) : NULL,
			"environments", envs,
			"host", hostname, "pid", (int)getpid(), "plan", plan_id);
	free(plan_id);
	if (e->opts.approved_by)
		json_object_set_new(rec, "approved_by",
				    json_string(e->opts.approved_by));
	if (plan->rollback_of)
		json_object_set_new(rec, "rollback_of",
				    json_string(plan->rollback_of));
	add_planned_hooks(rec, plan);
	for (i = 0; i < plan->nenvs; i++) {
		json_t *ec = json_object_get(rec, "env_commits");

		if (!plan->env_commits || !plan->env_commits[i])
			continue;
		if (!ec) {
			ec = json_object();
			json_object_set_new(rec, "env_commits", ec);
		}
		json_object_set_new(ec, plan->envs[i],
				    json_string(plan->env_commits[i]));
	}
	rc = rc_journal_append(x.journal, rec);
	json_decref(rec);
	if (rc < 0)
		goto out;

	x.st = rc_calloc(plan->n + 1, sizeof(act_state));
	x.started = rc_calloc(plan->n + 1, sizeof(double));
	x.took = rc_calloc(plan->n + 1, sizeof(double));
	x.errors = rc_calloc(plan->n + 1, sizeof(char *));
	x.notes = rc_calloc(plan->n + 1, sizeof(char *));
	x.settled = rc_calloc(plan->n + 1, sizeof(rc_buf));
	for (i = 0; i < plan->n; i++)
		x.settled[i] = (rc_buf)RC_BUF_INIT_MAX(4096);
	x.unsettled = rc_calloc(plan->n + 1, sizeof(bool));
	x.details = rc_calloc(plan->n + 1, sizeof(char *));
	x.running_per_env = rc_calloc(e->nenvs + 1, sizeof(size_t));
	x.env_origin = rc_calloc(e->nenvs + 1, sizeof(char *));
	x.env_down = rc_calloc(e->nenvs + 1, sizeof(char *));
	x.not_attempted = rc_calloc(e->nenvs + 1, sizeof(size_t));
	pthread_mutex_init(&x.mu, NULL);
	pthread_cond_init(&x.cv, NULL);
	/* --concurrency workers apply; deletions being waited on hold a
	 * thread but no slot, so that many of them end together */
	nthreads = (size_t)e->opts.concurrency + deletions_waited(&x);
	if (nthreads > plan->n)
		nthreads = plan->n ? plan->n : 1;
	pthread_mutex_lock(&x.mu);
	draw(&x, SIZE_MAX);
	pthread_mutex_unlock(&x.mu);
	if (x.live)
		rc_engine_progress_to(e, exec_progress, &x);
	threads = rc_calloc(nthreads, sizeof(pthread_t));
	for (i = 0; i < nthreads; i++)
		pthread_create(&threads[i], NULL, worker, &x);
	for (i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	rc_engine_progress_to(e, NULL, NULL);
	for (i = 0; i < plan->n; i++) {
		rep->ok += x.st[i] == ST_OK;
		rep->failed += x.st[i] == ST_FAILED;
		rep->skipped += x.st[i] == ST_SKIPPED;
		rep->unknown += x.st[i] == ST_UNKNOWN;
	}
	report_unreachable(&x);
	for (i = 0; i < e->nenvs && !rep->unreachable; i++)
		if (x.env_down[i])
			rep->unreachable = rc_strdup(x.env_down[i]);
	for (i = 0; x.live && i < plan->n; i++)
		if (x.errors[i])
			fprintf(x.out, "error: %s %s: %s\n",
				rc_op_name(plan->actions[i].op),
				plan->actions[i].key, x.errors[i]);
		else if (x.notes[i])
			fprintf(x.out, "%s: %s\n", plan->actions[i].key,
				x.notes[i]);
	rec = json_pack("{s:s, s:s, s:{s:i, s:i, s:i}}", "type", "run-end",
			"status",
			rep->failed || rep->skipped || rep->unknown
				? "failed"
				: "succeeded",
			"counts", "ok", (int)rep->ok, "failed", (int)rep->failed,
			"skipped", (int)rep->skipped);
	if (rep->unknown)
		json_object_set_new(json_object_get(rec, "counts"), "unknown",
				    json_integer((json_int_t)rep->unknown));
	rc = rc_journal_append(x.journal, rec);
	json_decref(rec);
	if (rc == 0 && rep->unknown)
		rc = rc_error_set(RC_ERROR, RC_ECLASS_PLATFORM,
				  "%zu action%s failed, %zu skipped, %zu with "
				  "an unknown outcome",
				  rep->failed, rep->failed == 1 ? "" : "s",
				  rep->skipped, rep->unknown);
	else if (rc == 0 && (rep->failed || rep->skipped))
		rc = rc_error_set(RC_ERROR, RC_ECLASS_PLATFORM,
				  "%zu action%s failed, %zu skipped", rep->failed,
				  rep->failed == 1 ? "" : "s", rep->skipped);
	pthread_mutex_destroy(&x.mu);
	pthread_cond_destroy(&x.cv);
out:
	if (rep->run_id)
		notify_run(&x, rep, rc);
	for (i = 0; x.errors && i < plan->n; i++)
		free(x.errors[i]);
	free(x.errors);
	for (i = 0; x.notes && i < plan->n; i++)
		free(x.notes[i]);
	free(x.notes);
	for (i = 0; x.settled && i < plan->n; i++)
		rc_buf_release(&x.settled[i]);
	free(x.settled);
	free(x.unsettled);
	for (i = 0; x.details && i < plan->n; i++)
		free(x.details[i]);
	free(x.details);
	free(x.st);
	free(x.started);
	free(x.took);
	free(x.running_per_env);
	for (i = 0; x.env_origin && i < e->nenvs; i++) {
		free(x.env_origin[i]);
		free(x.env_down[i]);
	}
	free(x.env_origin);
	free(x.env_down);
	free(x.not_attempted);
	free(threads);
	rc_journal_close(x.journal);
	for (i = 0; i < nl; i++)
		rc_lock_release(locks[i]);
	free(locks);
	free(names);
	json_decref(envs);
	/* the next plan reads what this run applied from the snapshot
	   instead of replaying every journal (a failed run's is made then) */
	if (rc == 0 && rep->run_id)
		json_decref(rc_engine_last_applied(e->state_dir, NULL));
	return rc;
}

char *rc_plan_id(const rc_plan *p)
{
	json_t *j = rc_plan_to_json(p), *a;
	char *id;
	size_t i;

	/* health is what was seen, not what the plan does: two plans of the
	   same changes are the same plan while a replica starts */
	json_object_del(j, "unhealthy");
	json_array_foreach(json_object_get(j, "actions"), i, a)
		json_object_del(a, "health");
	id = rc_json_fingerprint(j);

	json_decref(j);
	return id;
}

char *rc_engine_find_plan_run(rc_engine *e, const char *plan_id)
{
	rc_run_summary *runs = NULL;
	size_t n = 0;
	char *found = NULL;

	if (rc_history_load(&runs, &n, e->state_dir, NULL) < 0) {
		rc_error_clear();
		return NULL;
	}
	for (size_t i = 0; i < n && !found; i++) {
		rc_buf path = RC_BUF_INIT_MAX(PATH_MAX * 2);
		rc_journal_contents c = {0};

		if (runs[i].status != RC_RUN_SUCCEEDED)
			continue;
		rc_buf_printf(&path, "%s/runs/%s.journal", e->state_dir,
			      runs[i].id);
		if (rc_journal_read(&c, path.ptr) == 0 && c.n &&
		    json_is_string(json_object_get(c.records[0], "plan")) &&
		    !strcmp(json_string_value(json_object_get(c.records[0], "plan")),
			    plan_id))
			found = rc_strdup(runs[i].id);
		rc_error_clear();
		rc_journal_contents_release(&c);
		rc_buf_release(&path);
	}
	rc_history_free(runs, n);
	return found;
}

void rc_apply_report_release(rc_apply_report *r)
{
	free(r->run_id);
	free(r->unreachable);
	memset(r, 0, sizeof(*r));
}
