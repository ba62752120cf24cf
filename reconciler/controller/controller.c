/* The controller's loop: cheap source checks, per-environment workers. */
#include "reconciler/base/common.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "reconciler/base/rctime.h"
#include "reconciler/engine.h"
#include "drivers/http.h"
#include "reconciler/controller/approval.h"
#include "reconciler/controller/controller.h"
#include "reconciler/controller/http_api.h"
#include "reconciler/controller/lease.h"
#include "reconciler/controller/metrics.h"
#include "reconciler/controller/shard.h"
#include "schema/loader.h"
#include "state/history.h"
#include "state/journal.h"
#include "state/internal.h"

#include <git2.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>

/* Gives the memory freed after a large engine back to the system: glibc
 * keeps freed chunks in each thread's arena otherwise, and a controller
 * runs for weeks. */
static void trim_heap(void)
{
	malloc_trim(0);
}

#define BACKOFF_MIN 5.0
#define BACKOFF_MAX 300.0
/* While an environment's endpoint is unreachable: a probe (a TCP
 * connection, rc_http_endpoint_probe) after 1 s, doubling up to 30 s;
 * the cycle runs again as soon as one answers. */
#define PROBE_MIN 1.0
#define PROBE_MAX 30.0
#define PROBE_TIMEOUT_MS 2000

typedef struct {
	char *name;
	char *commit;      /* the commit the source has for it now */
	char *done_commit; /* the commit its last successful cycle saw */
	const char *state; /* "waiting", "planning", "applying", "in-sync",
			      "pending-approval", "failed" */
	char *last_run, *last_result, *last_time, *last_error;
	char *pending_plan;
	char *rejected_plan; /* not proposed again while the plan is the same */
	long drift;
	bool has_drift;
	double due;        /* monotonic seconds: resync or backoff */
	double backoff;
	bool busy, seen;
	double drift_interval; /* target.drift_interval (s); 0: --resync */
	bool watchable;        /* its driver watches (ops->watch) */
	struct ctl_watch *watch; /* the watcher following it, or NULL */
	char *told_drift;      /* the drift last notified (a plan id) */
	char *told_waiting;    /* the pending plan last notified */
	char *watch_failed_commit; /* its watch gave up at this commit */
	double watch_retry;    /* a watch that failed for a passing reason
				  (a dropped LIST, a 5xx) starts again at
				  this monotonic time */
	double watch_backoff;  /* seconds before that, doubled each time */
	bool gone;             /* generated, gone from the configuration
				  past its ttl: its cycle deletes what it
				  owns (the engine retires it) */
	char *down;            /* the endpoint found unreachable by its last
				  cycle: probed before the next one */
} ctl_env;

/* A notifier made from one commit's notify: targets, shared by the
 * workers of that commit: freed when a newer one replaced it and no
 * worker holds it any more. */
typedef struct {
	rc_notifier *n;
	int refs;
	bool retired;
} ctl_notifier;

/* A thread following one environment through its driver's watch
 * operation (drivers/driver.h): a change outside reconcile makes the
 * environment due at once. */
typedef struct ctl_watch {
	struct rc_ctl *c;
	char *env;
	char *commit;      /* the commit its desired resources are from */
	volatile int stop;
	bool ended;        /* the watch returned (an error: polled now) */
	bool passing;      /* ... for a reason that may pass: watched
			      again after a backoff */
	double started;    /* monotonic seconds */
	pthread_t thread;
	rc_resource_set *desired; /* what the watch was given, until it says
				     it will not read it again */
} ctl_watch;

struct rc_ctl {
	rc_ctl_opts o;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	rc_metrics *metrics;
	ctl_env *envs;
	size_t nenvs, capenvs;
	bool is_dir;        /* the source is a directory */
	char *source_digest; /* what the cheap check saw last */
	char *commit;       /* the source's commit, NULL for a plain dir */
	char *state_dir;
	bool ready, wake;
	char wake_why[64];
	double last_tick;
	int running;        /* workers */
	FILE *devnull;
	rc_shard shard;     /* --shards/--shard; count 1: everything */
	rc_lease *lease;    /* --leader-elect, or NULL */
	ctl_notifier *notifier; /* the current commit's, or NULL */
	char *notifier_key; /* the commit it was made at */
	int retiring;       /* workers retiring a gone environment: they
			       write the registry of generated ones */
	double next_refresh; /* the source is read again at this time even
				if no ref moved (a gone environment's ttl) */
};

static volatile sig_atomic_t got_stop, got_hup;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		got_hup = 1;
	else
		got_stop = 1;
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = v ? rc_strdup(v) : NULL;
}

void rc_ctl_opts_init(rc_ctl_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->source = ".";
	o->listen = "127.0.0.1:8080";
	o->poll = 60;
	o->resync = 600;
	o->shard = -1;
	o->workers = 4;
	o->grace = 30;
}

double rc_ctl_duration(const char *s)
{
	char *end;
	double v;

	if (!s || !*s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || v < 0)
		return -1;
	if (!*end || !strcmp(end, "s"))
		return v;
	if (!strcmp(end, "ms"))
		return v / 1000;
	if (!strcmp(end, "m"))
		return v * 60;
	if (!strcmp(end, "h"))
		return v * 3600;
	return -1;
}

/* One line of the flags file into o. */
static int config_line(rc_ctl_opts *o, int *level, char *line,
		       const char *path, int lineno)
{
	char *name, *value, *end;
	double d;

	line[strcspn(line, "#\r\n")] = '\0';
	name = line + strspn(line, " \t");
	if (!*name)
		return 0;
	value = name + strcspn(name, " \t");
	if (*value)
		*value++ = '\0';
	value += strspn(value, " \t");
	end = value + strlen(value);
	while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	if (!strncmp(name, "--", 2))
		name += 2;
	if (!strcmp(name, "poll") || !strcmp(name, "resync")) {
		if ((d = rc_ctl_duration(value)) <= 0)
			goto bad;
		*(!strcmp(name, "poll") ? &o->poll : &o->resync) = d;
	} else if (!strcmp(name, "log-format")) {
		if (strcmp(value, "text") && strcmp(value, "json"))
			goto bad;
		o->log_json = !strcmp(value, "json");
	} else if (!strcmp(name, "log-level")) {
		if ((*level = rc_log_level_parse(value)) < 0)
			goto bad;
	} else {
		return rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				    "%s:%d: '%s' cannot be set in the flags "
				    "file (poll, resync, log-format, log-level "
				    "can)",
				    path, lineno, name);
	}
	return 0;
bad:
	return rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
			    "%s:%d: '%s' is not a value for %s", path, lineno,
			    value, name);
}

int rc_ctl_read_config(rc_ctl_opts *o, const char *path)
{
	rc_ctl_opts n = *o;
	char line[1024];
	int lineno = 0, level = -1, rc = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return rc_error_set_os("cannot read the flags file '%s'", path);
	while (rc == 0 && fgets(line, sizeof(line), f))
		rc = config_line(&n, &level, line, path, ++lineno);
	fclose(f);
	if (rc < 0)
		return rc;
	*o = n;
	if (level >= 0)
		rc_log_threshold = (rc_log_level)level;
	rc_log_set_format(o->log_json ? RC_LOG_JSON : RC_LOG_TEXT);
	return 0;
}

int rc_ctl_opts_check(const rc_ctl_opts *o)
{
	struct sockaddr_storage ss;
	bool loopback;

	if (o->poll <= 0 || o->resync <= 0)
		return rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				    "--poll and --resync must be positive "
				    "durations");
	if (o->lease && !o->leader_elect)
		return rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				    "--lease needs --leader-elect");
	if (o->lease) {
		char *ns = NULL, *name = NULL;
		int rc = rc_lease_parse_name(o->lease, -1, &ns, &name);

		free(ns);
		free(name);
		if (rc < 0)
			return rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
					    "--lease wants NAMESPACE/NAME: %s",
					    rc_error_last()->message);
	}
	if (o->shard >= 0 && o->shards <= 0)
		return rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				    "--shard K needs --shards N");
	if (o->shards > 0 && o->shard >= o->shards)
		return rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				    "--shard %d is not below --shards %d",
				    o->shard, o->shards);
	if (rc_http_listen_addr(o->listen, &ss, &loopback) < 0)
		return RC_EINVALID;
	if (o->token) {
		rc_ctl_tokens t;

		if (rc_ctl_tokens_parse(&t, o->token) < 0)
			return RC_EINVALID;
		rc_ctl_tokens_release(&t);
	}
	if (!loopback && (!o->token || !*o->token))
		return rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				    "refusing to listen on %s without "
				    "RECONCILE_CONTROLLER_TOKEN: set it, or "
				    "listen on loopback",
				    o->listen);
	return 0;
}

/* --- the cheap check --- */

/* What the source looks like now without fetching anything: the remote's
 * branches and their tips, a work tree's HEAD commit; NULL for a plain
 * directory (re-read at every poll) or when the check failed (then the
 * loop fetches). New string. */
static char *source_digest(rc_ctl *c)
{
	rc_buf b = RC_BUF_INIT_MAX(1 << 22);
	char *out;

	if (c->is_dir) {
		git_repository *repo = NULL;
		git_oid oid;
		char sha[GIT_OID_HEXSZ + 1];

		if (git_repository_open_ext(&repo, c->o.source, 0, NULL) < 0 ||
		    git_reference_name_to_id(&oid, repo, "HEAD") < 0) {
			git_repository_free(repo);
			rc_buf_release(&b);
			return NULL;
		}
		git_oid_tostr(sha, sizeof(sha), &oid);
		git_repository_free(repo);
		rc_buf_puts(&b, sha);
	} else {
		rc_branch *br = NULL;
		size_t n = 0;

		if (rc_git_list_branches(&br, &n, c->o.source) < 0) {
			RC_WARN("cannot list the refs of the source: %s; "
				"fetching instead",
				rc_error_last()->message);
			rc_error_clear();
			rc_buf_release(&b);
			return NULL;
		}
		for (size_t i = 0; i < n; i++)
			rc_buf_printf(&b, "%s %s\n", br[i].sha, br[i].name);
		rc_branches_free(br, n);
	}
	out = rc_buf_detach(&b);
	rc_buf_release(&b);
	return out;
}

static void env_release(ctl_env *ce)
{
	free(ce->name);
	free(ce->commit);
	free(ce->done_commit);
	free(ce->last_run);
	free(ce->last_result);
	free(ce->last_time);
	free(ce->last_error);
	free(ce->down);
	free(ce->pending_plan);
	free(ce->told_drift);
	free(ce->told_waiting);
	free(ce->watch_failed_commit);
	free(ce->rejected_plan);
}

static ctl_env *env_find(rc_ctl *c, const char *name)
{
	for (size_t i = 0; i < c->nenvs; i++)
		if (!strcmp(c->envs[i].name, name))
			return &c->envs[i];
	return NULL;
}

static double jittered(double s)
{
	return s * (0.9 + 0.2 * ((double)rand() / RAND_MAX));
}

/* --- notifications --- */

/* The current notifier, held (under the lock). */
static ctl_notifier *notifier_hold(rc_ctl *c)
{
	if (c->notifier)
		c->notifier->refs++;
	return c->notifier;
}

/* Lets go of a notifier held (under the lock): a replaced one is freed
 * with its last holder (rc_notifier_free never waits on the network). */
static void notifier_release(ctl_notifier *cn)
{
	if (cn && --cn->refs <= 0 && cn->retired) {
		rc_notifier_free(cn->n);
		free(cn);
	}
}

/* Makes the notifier of e's configuration the current one when the
 * commit moved (a plain directory's notify: is read once, at start);
 * under the lock. */
static void notifier_refresh(rc_ctl *c, rc_engine *e, const char *commit)
{
	const char *key = commit ? commit : "(directory)";
	ctl_notifier *cn;

	if (c->notifier_key && !strcmp(c->notifier_key, key))
		return;
	set_str(&c->notifier_key, key);
	cn = rc_calloc(1, sizeof(*cn));
	if (e->cfg->nnotify &&
	    rc_notifier_new(&cn->n, e->cfg,
			    e->src ? rc_source_dir(e->src) : e->cfg->dir) < 0) {
		RC_WARN("%s", rc_error_last()->message);
		rc_error_clear();
	}
	if (c->notifier) {
		c->notifier->retired = true;
		c->notifier->refs++;
		notifier_release(c->notifier);
	}
	c->notifier = cn;
}

/* Fetches and reads the configuration: the environments and the commit
 * of each; those whose commit moved become due at once. */
static int refresh(rc_ctl *c)
{
	rc_engine_opts eo = {0};
	rc_engine *e = NULL;
	const char *commit;
	int rc;

	eo.source = c->o.source;
	eo.state_dir = c->o.state_dir;
	eo.cache_dir = c->o.cache_dir;
	/* the generated environments are tracked here, in the loop's
	   thread (new ones recorded, gone ones timed and, past their ttl,
	   retired by a worker), unless a worker retiring one writes the
	   registry now */
	pthread_mutex_lock(&c->lock);
	eo.keep_gone = c->retiring > 0;
	pthread_mutex_unlock(&c->lock);
	eo.out = c->devnull;
	if ((rc = rc_engine_open(&e, &eo)) < 0) {
		if (e && e->diags.n)
			RC_ERR("the configuration at %s is invalid (%zu "
			       "errors): run 'reconcile validate'",
			       c->o.source, e->diags.nerrors);
		else
			RC_ERR("cannot read the source %s: %s", c->o.source,
			       rc_error_last()->message);
		rc_engine_free(e);
		return rc;
	}
	commit = rc_source_commit(e->src);
	pthread_mutex_lock(&c->lock);
	if (!c->commit || !commit || strcmp(c->commit, commit))
		RC_INFO("source %s at commit %.12s", c->o.source,
			commit ? commit : "(no git)");
	set_str(&c->commit, commit);
	if (!c->state_dir)
		c->state_dir = rc_strdup(e->state_dir);
	for (size_t i = 0; i < c->nenvs; i++)
		c->envs[i].seen = false;
	notifier_refresh(c, e, commit);
	for (size_t i = 0; i < e->nenvs; i++) {
		const rc_engine_env *ee = &e->envs[i];
		const char *ec = ee->commit ? ee->commit : commit;
		ctl_env *ce = env_find(c, ee->env->name);

		if (!rc_shard_owns(&c->shard, ee->env->name))
			continue; /* another shard's */
		if (!ce) {
			RC_GROW(c->envs, c->capenvs, c->nenvs + 1);
			ce = &c->envs[c->nenvs++];
			memset(ce, 0, sizeof(*ce));
			ce->name = rc_strdup(ee->env->name);
			ce->state = "waiting";
		}
		ce->seen = true;
		if (ee->retire && !ce->gone) {
			RC_INFO("environment %s: %s; deleting what it owns",
				ce->name, ee->retire);
			ce->due = 0; /* retired at once */
		}
		ce->gone = ee->retire != NULL;
		ce->watchable = ee->ops && ee->ops->watch && !ce->gone;
		ce->drift_interval = (double)ee->env->target.drift_interval;
		/* a plain directory is re-read at every poll */
		if (!ec || !ce->commit || strcmp(ce->commit, ec)) {
			set_str(&ce->commit, ec);
			ce->due = 0; /* a new commit is tried at once */
		}
	}
	for (size_t i = 0; i < c->nenvs;) {
		ctl_env *ce = &c->envs[i];

		if (ce->seen || ce->busy || ce->watch) {
			i++;
			continue;
		}
		RC_INFO("environment %s is gone from the configuration",
			ce->name);
		rc_metrics_forget(c->metrics, ce->name);
		env_release(ce);
		c->envs[i] = c->envs[--c->nenvs];
	}
	c->ready = true;
	pthread_mutex_unlock(&c->lock);
	rc_engine_free(e);
	trim_heap();
	return 0;
}

/* --- a worker: one environment's cycle --- */

typedef struct {
	rc_ctl *c;
	char *env;
	char *commit;       /* the commit it is planned at */
	bool commit_moved;  /* since its last good cycle */
	bool first;         /* no good cycle yet in this process */
	bool gone;          /* retiring a gone generated environment */
	ctl_notifier *notifier; /* held for the cycle, or NULL */
	char *told_drift, *told_waiting; /* what was last notified; the
					    cycle replaces them */
	char *down;         /* the endpoint to probe first, or NULL */
} work;

/* Tells the notify: targets about a plan the controller does not apply
 * at once (drift reported, a plan waiting for approval), once per plan:
 * *told is the id last told, replaced by this one. */
static void notify_plan(rc_engine *e, const rc_plan *p, const char *env,
			rc_notify_event_kind kind, const char *plan_id,
			char **told)
{
	rc_notify_event ev = {0};
	const char **changes;
	rc_buf summary = RC_BUF_INIT_MAX(256);
	rc_buf *lines;
	size_t i;

	if (*told && !strcmp(*told, plan_id))
		return; /* told already: a resync found the same plan */
	free(*told);
	*told = rc_strdup(plan_id);
	changes = rc_calloc(p->n + 1, sizeof(char *));
	lines = rc_calloc(p->n + 1, sizeof(rc_buf));
	for (i = 0; i < p->n; i++) {
		lines[i] = (rc_buf)RC_BUF_INIT_MAX(4096);
		rc_buf_printf(&lines[i], "%s %s", rc_op_name(p->actions[i].op),
			      p->actions[i].key);
		changes[i] = lines[i].ptr;
	}
	rc_buf_printf(&summary, "%zu change%s", p->n, p->n == 1 ? "" : "s");
	ev.kind = kind;
	ev.project = e->cfg ? e->cfg->project : NULL;
	ev.environment = env;
	ev.commit = p->commit;
	ev.plan_id = kind == RC_NOTIFY_WAITING ? plan_id : NULL;
	ev.summary = summary.ptr;
	ev.changes = changes;
	ev.nchanges = p->n;
	rc_engine_notify(e, &ev);
	for (i = 0; i < p->n; i++)
		rc_buf_release(&lines[i]);
	free(lines);
	free(changes);
	rc_buf_release(&summary);
}

static long count_drift(const rc_plan *p)
{
	long n = 0;

	for (size_t i = 0; i < p->n; i++)
		if (p->actions[i].op != RC_OP_RUN)
			n++;
	return n;
}

static long count_pending(rc_ctl *c)
{
	long n = 0;

	for (size_t i = 0; i < c->nenvs; i++)
		n += c->envs[i].pending_plan != NULL;
	return n;
}

static void set_state(rc_ctl *c, const char *env, const char *state)
{
	ctl_env *ce;

	pthread_mutex_lock(&c->lock);
	if ((ce = env_find(c, env)))
		ce->state = state;
	pthread_mutex_unlock(&c->lock);
}

void rc_ctl_engine_opts(rc_ctl *c, rc_engine_opts *eo,
			const char *const *env, bool fetch)
{
	memset(eo, 0, sizeof(*eo));
	eo->source = c->o.source;
	eo->state_dir = c->o.state_dir ? c->o.state_dir : c->state_dir;
	eo->cache_dir = c->o.cache_dir;
	eo->offline = !c->is_dir && !fetch; /* the loop fetched */
	/* workers run side by side: none rewrites the registry of generated
	   environments (retiring gone ones is left to reconcile apply) */
	eo->keep_gone = true;
	eo->envs = env;
	eo->nenvs = 1;
	eo->out = c->devnull;
}

/* Whether plan id is the one rejected for env (remembered, else as
 * recorded by a controller before this one). */
static bool was_rejected(rc_ctl *c, const char *env, const char *state,
			 const char *id)
{
	char *recorded = rc_pending_reject_load(state, env);
	ctl_env *ce;
	bool yes;

	pthread_mutex_lock(&c->lock);
	ce = env_find(c, env);
	if (ce && !ce->rejected_plan && recorded) {
		ce->rejected_plan = recorded;
		recorded = NULL;
	}
	yes = ce && ce->rejected_plan && !strcmp(ce->rejected_plan, id);
	pthread_mutex_unlock(&c->lock);
	free(recorded);
	return yes;
}

/* rc_http_endpoints_each's callback: an unreachable endpoint the error
 * (*ctx: {message, found}) names. */
struct named_endpoint {
	const char *message;
	char *found;
};

static void endpoint_named(void *arg, const char *origin,
			   const rc_http_endpoint *ep)
{
	struct named_endpoint *n = arg;

	if (ep->unreachable && !n->found && n->message &&
	    strstr(n->message, origin))
		n->found = rc_strdup(origin);
}

/* The endpoint that stopped a failed cycle (new string), or NULL: the
 * apply's, or an unreachable one its error names (a plan that could not
 * observe). */
static char *down_endpoint(char *from_apply)
{
	struct named_endpoint n = {NULL, from_apply};

	if (!n.found && rc_error_last()) {
		n.message = rc_error_last()->message;
		rc_http_endpoints_each(endpoint_named, &n);
	}
	return n.found;
}

/* Plans env and applies (auto) or saves the plan (manual). The result
 * ("succeeded", "unchanged", "pending", "rejected", "drift", "failed");
 * *run the run's id. */
static const char *cycle(rc_ctl *c, work *w, char **run,
			 char **pending, long *drift, double *apply_s,
			 char **down)
{
	const char *env = w->env;
	const char *const envs[] = {env};
	rc_engine_opts eo = {0};
	rc_engine *e = NULL;
	rc_plan p;
	rc_apply_report rep = {0};
	const char *result = "failed";
	size_t idx;
	double t0;

	memset(&p, 0, sizeof(p));
	rc_ctl_engine_opts(c, &eo, envs, false);
	eo.notifier = w->notifier ? w->notifier->n : NULL;
	/* a gone environment exists only in the registry: the engine adds
	   it (and forgets it once it owns nothing) */
	eo.keep_gone = !w->gone;
	if (rc_engine_open(&e, &eo) < 0 || rc_engine_plan(e, &p) < 0)
		goto out;
	*drift = count_drift(&p);
	if (p.n == 0) {
		result = "unchanged";
		goto out;
	}
	idx = rc_plan_env_index(&p, env);
	if (idx != SIZE_MAX && p.env_manual[idx]) {
		char *id = rc_plan_id(&p);

		if (was_rejected(c, env, eo.state_dir, id)) {
			RC_INFO("plan %s was rejected; waiting for a new "
				"commit or a change of the actual state",
				id);
			rc_pending_drop(eo.state_dir, env);
			free(id);
			result = "rejected";
			goto out;
		}
		if (rc_pending_save(eo.state_dir, env, &p) < 0) {
			free(id);
			goto out;
		}
		RC_INFO("%zu change%s wait for approval (policy.apply: "
			"manual): plan %s",
			p.n, p.n == 1 ? "" : "s", id);
		notify_plan(e, &p, env, RC_NOTIFY_WAITING, id,
			    &w->told_waiting);
		*pending = id;
		result = "pending";
		goto out;
	}
	if (!w->commit_moved && !w->gone && e->nenvs == 1 && e->envs[0].env &&
	    e->envs[0].env->policy.drift == RC_DRIFT_REPORT) {
		char *id = rc_plan_id(&p);

		RC_WARN("%ld resource%s drifted; not healed (policy.drift: "
			"report)",
			*drift, *drift == 1 ? "" : "s");
		notify_plan(e, &p, env, RC_NOTIFY_DRIFT, id,
			    &w->told_drift);
		free(id);
		result = "drift";
		goto out;
	}
	if (!w->commit_moved && !w->gone) {
		/* drift, healed: told before the applied event */
		char *id = rc_plan_id(&p);

		notify_plan(e, &p, env, RC_NOTIFY_DRIFT, id,
			    &w->told_drift);
		free(id);
	}
	set_state(c, env, "applying");
	RC_INFO("applying %zu change%s at commit %.12s", p.n,
		p.n == 1 ? "" : "s", p.commit ? p.commit : "-");
	t0 = mono();
	if (rc_engine_apply(e, &p, &rep) == 0)
		result = "succeeded";
	*apply_s = mono() - t0;
	if (rep.run_id) {
		*run = rc_strdup(rep.run_id);
		rc_log_context(env, rep.run_id);
	}
	RC_INFO("run %s: %zu ok, %zu failed, %zu skipped in %.2fs",
		rep.run_id ? rep.run_id : "-", rep.ok, rep.failed, rep.skipped,
		*apply_s);
	if (rep.unreachable)
		*down = rc_strdup(rep.unreachable);
out:
	if (!strcmp(result, "failed") && rc_error_last())
		RC_ERR("%s", rc_error_last()->message);
	rc_apply_report_release(&rep);
	rc_plan_release(&p);
	rc_engine_free(e);
	trim_heap();
	return result;
}

/* Whether env's newest run in the journals, by whatever process,
 * succeeded at commit. A controller that starts (restarted, or a standby
 * that became the leader) then resumes from it: its first plan is not
 * taken for a new commit, which would heal drift that policy.drift:
 * report only reports. */
static bool journal_applied(const char *state_dir, const char *env,
			    const char *commit)
{
	rc_run_summary *runs = NULL;
	size_t n = 0, i;
	bool yes = false;

	if (!commit || rc_history_load(&runs, &n, state_dir, env) < 0) {
		rc_error_clear();
		return false;
	}
	for (i = 0; i < n && !runs[i].nenvs; i++)
		; /* no run-start: its environments are unknown */
	if (i < n)
		yes = runs[i].status == RC_RUN_SUCCEEDED && runs[i].commit &&
		      !strcmp(runs[i].commit, commit);
	rc_history_free(runs, n);
	return yes;
}

/* rc_journal_scan's callback: the first failed outcome, as
 * "ACTION: ERROR" into *ctx. */
static int first_failure(void *ctx, json_t *rec)
{
	const char *type = json_string_value(json_object_get(rec, "type"));
	const char *status = json_string_value(json_object_get(rec, "status"));
	const char *action = json_string_value(json_object_get(rec, "action"));
	const char *err = json_string_value(json_object_get(rec, "error"));
	rc_buf b = RC_BUF_INIT_MAX(1 << 16);

	if (!type || strcmp(type, "outcome") || !status ||
	    strcmp(status, "failed") || !err)
		return 0;
	rc_buf_printf(&b, "%s: %s", action ? action : "an action", err);
	*(char **)ctx = rc_buf_detach(&b);
	rc_buf_release(&b);
	return 1;
}

/* A failed apply's error says which action failed and why, as the
 * journal has it (the engine prints that to its output, which the
 * controller does not keep): logged, and in the status's last.error. */
static void explain_failure(rc_ctl *c, const char *run)
{
	rc_buf path = RC_BUF_INIT_MAX(PATH_MAX);
	char *why = NULL, *summary;

	rc_buf_printf(&path, "%s/runs/%s.journal",
		      c->o.state_dir ? c->o.state_dir : c->state_dir, run);
	summary = rc_strdup(rc_error_last() ? rc_error_last()->message
					    : "the apply failed");
	if (rc_journal_scan(path.ptr, first_failure, &why, NULL, NULL) == 0 &&
	    why) {
		RC_ERR("%s", why);
		rc_error_set(RC_ERROR, RC_ECLASS_PLATFORM, "%s: %s", summary,
			     why);
	} else {
		rc_error_set(RC_ERROR, RC_ECLASS_PLATFORM, "%s", summary);
	}
	free(why);
	free(summary);
	rc_buf_release(&path);
}

static void *worker(void *arg)
{
	work *w = arg;
	rc_ctl *c = w->c;
	char *run = NULL, *pending = NULL, *down = NULL, now[RC_TIME_SIZE];
	long drift = -1;
	double apply_s = -1;
	const char *result;
	ctl_env *ce;

	rc_log_context(w->env, NULL);
	rc_error_clear();
	if (w->down && !rc_http_endpoint_probe(w->down, PROBE_TIMEOUT_MS)) {
		/* still down: probed again later, nothing logged */
		pthread_mutex_lock(&c->lock);
		if ((ce = env_find(c, w->env))) {
			ce->busy = false;
			ce->backoff = ce->backoff * 2 > PROBE_MAX
					      ? PROBE_MAX
					      : ce->backoff * 2;
			if (ce->backoff < PROBE_MIN)
				ce->backoff = PROBE_MIN;
			ce->due = mono() + ce->backoff;
			ce->state = "failed";
			rc_metrics_backoff(c->metrics, w->env, ce->backoff);
		}
		goto end;
	}
	if (w->down) {
		RC_INFO("%s answers again: planning", w->down);
		pthread_mutex_lock(&c->lock);
		if ((ce = env_find(c, w->env)))
			set_str(&ce->down, NULL);
		pthread_mutex_unlock(&c->lock);
	}
	if (w->first && w->commit_moved &&
	    journal_applied(c->o.state_dir ? c->o.state_dir : c->state_dir,
			    w->env, w->commit)) {
		RC_INFO("resuming: the journal shows commit %.12s applied",
			w->commit);
		w->commit_moved = false;
	}
	result = cycle(c, w, &run, &pending, &drift, &apply_s, &down);
	if (!strcmp(result, "failed") && run)
		explain_failure(c, run);
	if (!strcmp(result, "failed"))
		down = down_endpoint(down);
	rc_time_now(now);
	rc_metrics_run(c->metrics, w->env, result);
	if (drift >= 0)
		rc_metrics_drift(c->metrics, w->env, drift);
	if (apply_s >= 0)
		rc_metrics_apply_duration(c->metrics, apply_s);
	if (!strcmp(result, "succeeded"))
		rc_metrics_success(c->metrics, w->env, wall());
	pthread_mutex_lock(&c->lock);
	if ((ce = env_find(c, w->env))) {
		bool failed = !strcmp(result, "failed");

		ce->busy = false;
		set_str(&ce->last_result, result);
		set_str(&ce->last_time, now);
		if (run)
			set_str(&ce->last_run, run);
		set_str(&ce->last_error,
			failed && rc_error_last() ? rc_error_last()->message
						  : NULL);
		if (drift >= 0) {
			ce->drift = drift;
			ce->has_drift = true;
		}
		if (!strcmp(result, "pending"))
			set_str(&ce->pending_plan, pending);
		else if (!failed)
			set_str(&ce->pending_plan, NULL);
		if (failed && down) {
			rc_buf why = RC_BUF_INIT_MAX(4096);

			/* an outage: probed until it answers, said once */
			if (!rc_http_endpoint_describe(&why, down))
				rc_buf_printf(&why, "%s is unreachable", down);
			ce->backoff = PROBE_MIN;
			ce->due = mono() + ce->backoff;
			ce->state = "failed";
			RC_WARN("%s: backing off; planning again once it "
				"answers (probed after %.0fs, doubling up to "
				"%.0fs)",
				why.ptr, PROBE_MIN, PROBE_MAX);
			rc_buf_release(&why);
			set_str(&ce->down, down);
		} else if (failed) {
			ce->backoff = ce->backoff ? ce->backoff * 2 : BACKOFF_MIN;
			if (ce->backoff > BACKOFF_MAX)
				ce->backoff = BACKOFF_MAX;
			ce->due = mono() + ce->backoff;
			ce->state = "failed";
			RC_LOG(RC_LOG_WARN, "retrying in %.0fs", ce->backoff);
		} else {
			/* a watched environment is told of drift; others are
			   re-planned every drift_interval, when it is set */
			double every = !ce->watch && ce->drift_interval > 0
					       ? ce->drift_interval
					       : c->o.resync;

			ce->backoff = 0;
			ce->due = mono() + jittered(every);
		}
		set_str(&ce->told_drift, w->told_drift);
		set_str(&ce->told_waiting, w->told_waiting);
		/* the commit moved while it ran: again, at once */
		if (ce->commit && (!w->commit || strcmp(ce->commit, w->commit)))
			ce->due = 0;
		if (!failed) {
			ce->state = !strcmp(result, "pending")	 ? "pending-approval"
				    : !strcmp(result, "drift") ? "drifted"
				    : !strcmp(result, "rejected") ? "rejected"
							       : "in-sync";
			set_str(&ce->done_commit, w->commit);
		}
		rc_metrics_pending(c->metrics, count_pending(c));
		rc_metrics_backoff(c->metrics, w->env, ce->backoff);
	}
end:
	c->running--;
	if (w->gone)
		c->retiring--;
	notifier_release(w->notifier);
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	rc_log_context(NULL, NULL);
	rc_error_clear(); /* its message is the thread's, freed with it */
	free(run);
	free(pending);
	free(down);
	free(w->down);
	free(w->env);
	free(w->commit);
	free(w->told_drift);
	free(w->told_waiting);
	free(w);
	return NULL;
}

/* Starts the workers of the environments that are due; under the lock. */
static void dispatch(rc_ctl *c, double now)
{
	if (c->lease && !rc_lease_is_leader(c->lease))
		return; /* a standby plans and applies nothing */
	for (size_t i = 0; i < c->nenvs && c->running < c->o.workers; i++) {
		ctl_env *ce = &c->envs[i];
		work *w;
		pthread_t t;
		pthread_attr_t at;

		if (ce->busy || ce->due > now || !ce->seen)
			continue;
		w = rc_calloc(1, sizeof(*w));
		w->c = c;
		w->env = rc_strdup(ce->name);
		w->commit = ce->commit ? rc_strdup(ce->commit) : NULL;
		w->commit_moved = !ce->commit || !ce->done_commit ||
				  strcmp(ce->commit, ce->done_commit);
		w->first = !ce->done_commit;
		w->gone = ce->gone;
		w->down = ce->down ? rc_strdup(ce->down) : NULL;
		if (w->gone)
			c->retiring++;
		w->told_drift = ce->told_drift ? rc_strdup(ce->told_drift) : NULL;
		w->told_waiting =
			ce->told_waiting ? rc_strdup(ce->told_waiting) : NULL;
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		w->notifier = notifier_hold(c);
		if (pthread_create(&t, &at, worker, w) != 0) {
			RC_ERR("cannot start a worker for %s", ce->name);
			if (w->gone)
				c->retiring--;
			notifier_release(w->notifier);
			free(w->env);
			free(w->commit);
			free(w->told_drift);
			free(w->told_waiting);
			free(w->down);
			free(w);
			pthread_attr_destroy(&at);
			break;
		}
		pthread_attr_destroy(&at);
		ce->busy = true;
		ce->state = "planning";
		c->running++;
	}
}

/* --- watchers: drift told by the driver (ops->watch) --- */

static void on_watch_change(void *arg, const char *env, const char *key)
{
	ctl_watch *w = arg;
	rc_ctl *c = w->c;
	ctl_env *ce;

	if (!env && !key) {
		/* the driver keeps what it needs: the desired bodies go */
		rc_resource_set_release(w->desired);
		trim_heap();
		return;
	}
	pthread_mutex_lock(&c->lock);
	if ((ce = env_find(c, w->env)) && !w->stop) {
		RC_INFO("%s: %s changed outside this run: planning it again",
			env ? env : w->env, key ? key : "an object");
		ce->due = 0;
		pthread_cond_broadcast(&c->cond);
	}
	pthread_mutex_unlock(&c->lock);
}

static void *watch_main(void *arg)
{
	ctl_watch *w = arg;
	rc_ctl *c = w->c;
	const char *const envs[] = {w->env};
	rc_engine_opts eo = {0};
	rc_engine *e = NULL;
	int rc = -1;

	rc_log_context(w->env, NULL);
	rc_ctl_engine_opts(c, &eo, envs, false);
	/* the desired resources it follows (expanded; not observed: the
	   watch lists what it follows itself) */
	if (rc_engine_open(&e, &eo) == 0 && rc_engine_expand(e) == 0 &&
	    e->nenvs == 1 && e->envs[0].ops->watch && e->envs[0].drv) {
		RC_INFO("watching for drift through the %s driver",
			e->envs[0].ops->name);
		/* held for weeks: keep only what the watch follows (the
		   desired set, until the driver copied what it needs, and
		   the driver), not the configuration of other environments
		   (a configuration without generators loads them all) */
		for (size_t i = 0; i < e->cfg->nenvs; i++)
			if (&e->cfg->envs[i] != e->envs[0].env) {
				rc_env_release(&e->cfg->envs[i]);
				memset(&e->cfg->envs[i], 0,
				       sizeof(e->cfg->envs[i]));
			} else {
				/* nor its manifests' YAML trees: the desired
				   set holds what they made */
				rc_env *own = &e->cfg->envs[i];

				for (size_t k = 0; k < own->nresources; k++) {
					rc_node_free(own->resources[k].manifest);
					own->resources[k].manifest = NULL;
				}
			}
		/* nor the source (a libgit2 repository) and the registry
		   (the diagnostics stay: locations point into them) */
		rc_source_free(e->src);
		e->src = NULL;
		json_decref(e->envreg);
		e->envreg = NULL;
		trim_heap();
		w->desired = &e->desired;
		rc = e->envs[0].ops->watch(e->envs[0].drv, &e->desired,
					   on_watch_change, w, &w->stop);
	}
	/* denied, or a kind not served: the same again at this commit;
	   anything else (a dropped connection, a 5xx, a reply cut short
	   or garbled on the way, an outage) may pass */
	w->passing = rc < 0 && rc != RC_EAUTH && rc != RC_ENOTFOUND &&
		     rc != RC_EUNSUPPORTED;
	if (rc < 0 && !w->stop)
		RC_WARN("cannot watch for drift (%s): re-planned every %s "
			"instead%s",
			rc_error_last() ? rc_error_last()->message : "?",
			"drift_interval (else --resync)",
			w->passing ? ", and watched again after a backoff"
				   : " until the next commit");
	rc_engine_free(e);
	pthread_mutex_lock(&c->lock);
	w->ended = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	rc_log_context(NULL, NULL);
	rc_error_clear();
	return NULL;
}

/* Stops and frees a watcher; called without the lock. */
static void watch_stop(ctl_watch *w)
{
	w->stop = 1;
	pthread_join(w->thread, NULL);
	free(w->env);
	free(w->commit);
	free(w);
}

/* Starts, restarts (its commit moved) or stops the environments'
 * watchers; a standby and a stopping controller watch nothing. Under the
 * lock, which it drops while joining threads. */
static void sync_watchers(rc_ctl *c)
{
	bool lead = !c->lease || rc_lease_is_leader(c->lease);
	ctl_watch *stop[64];
	size_t nstop = 0, i;

	for (i = 0; i < c->nenvs && nstop < RC_ARRAY_SIZE(stop); i++) {
		ctl_env *ce = &c->envs[i];
		ctl_watch *w = ce->watch;
		bool want = lead && !got_stop && ce->seen && ce->watchable &&
			    ce->done_commit;
		/* a watch held for weeks starts when no worker runs: its
		   state then fills the heap the workers' cycles freed, not
		   pages between their transient data (at 10,000 objects,
		   starting during the first apply left 30 MiB more) */
		bool start = want && c->running == 0;

		if (w && (!want || (ce->commit && w->commit &&
				    strcmp(ce->commit, w->commit)))) {
			stop[nstop++] = w;
			ce->watch = NULL;
			w = NULL;
		}
		if (!w && start && mono() >= ce->watch_retry &&
		    !(ce->watch_failed_commit && ce->commit &&
		      !strcmp(ce->watch_failed_commit, ce->commit))) {
			pthread_attr_t at;

			w = rc_calloc(1, sizeof(*w));
			w->c = c;
			w->env = rc_strdup(ce->name);
			w->commit = ce->commit ? rc_strdup(ce->commit) : NULL;
			w->started = mono();
			pthread_attr_init(&at);
			if (pthread_create(&w->thread, &at, watch_main, w) != 0) {
				free(w->env);
				free(w->commit);
				free(w);
				w = NULL;
			}
			pthread_attr_destroy(&at);
			ce->watch = w;
		} else if (w && w->ended) {
			if (w->passing) {
				/* watched again after 5 s, doubling up to
				   5 min; a watch that held a while starts
				   the count again */
				double b = ce->watch_backoff * 2;

				if (mono() - w->started > 300 || b < 5)
					b = 5;
				ce->watch_backoff = b > 300 ? 300 : b;
				ce->watch_retry = mono() + ce->watch_backoff;
			} else {
				/* it gave up: this commit is polled */
				set_str(&ce->watch_failed_commit, ce->commit);
			}
			stop[nstop++] = w;
			ce->watch = NULL;
		}
	}
	if (!nstop)
		return;
	pthread_mutex_unlock(&c->lock);
	for (i = 0; i < nstop; i++)
		watch_stop(stop[i]);
	pthread_mutex_lock(&c->lock);
}

/* The earliest time something is due (the next poll at the latest). */
static double next_wake(rc_ctl *c, double next_poll)
{
	double t = next_poll;

	/* a due environment that cannot start waits for a worker to end
	   (which wakes the loop) or for the Lease: not a spin that holds
	   the lock the workers need to end */
	if (c->running >= c->o.workers ||
	    (c->lease && !rc_lease_is_leader(c->lease)))
		return t;
	for (size_t i = 0; i < c->nenvs; i++) {
		if (!c->envs[i].busy && c->envs[i].due < t)
			t = c->envs[i].due;
		/* a watch to start again */
		if (!c->envs[i].watch && c->envs[i].watch_retry > mono() &&
		    c->envs[i].watch_retry < t)
			t = c->envs[i].watch_retry;
	}
	return t;
}

static void wait_until(rc_ctl *c, double t)
{
	struct timespec ts;
	double now = mono(), d = t - now;

	/* wake at least every 200 ms to see signals */
	if (d > 0.2)
		d = 0.2;
	if (d <= 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)d;
	ts.tv_nsec += (long)((d - (double)(time_t)d) * 1e9);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&c->cond, &c->lock, &ts);
}

static void loop(rc_ctl *c)
{
	double next_poll = 0;

	pthread_mutex_lock(&c->lock);
	while (!got_stop) {
		double now = mono();

		c->last_tick = now;
		if (got_hup) {
			got_hup = 0;
			if (!c->o.config)
				RC_WARN("SIGHUP: no --config file to re-read; "
					"ignored");
			else if (rc_ctl_read_config(&c->o, c->o.config) < 0)
				RC_ERR("SIGHUP: %s; the flags are kept as they "
				       "were",
				       rc_error_last()->message);
			else
				RC_INFO("SIGHUP: re-read %s (poll %gs, resync "
					"%gs)",
					c->o.config, c->o.poll, c->o.resync);
			next_poll = now; /* the new interval from now */
		}
		if (c->wake || now >= next_poll) {
			char *digest;
			bool moved;

			if (c->wake)
				RC_INFO("woken by %s: checking the source",
					c->wake_why);
			c->wake = false;
			next_poll = now + c->o.poll;
			pthread_mutex_unlock(&c->lock);
			digest = source_digest(c);
			moved = !digest || !c->source_digest ||
				strcmp(digest, c->source_digest) ||
				now >= c->next_refresh;
			/* read again at every --resync even when no ref
			   moved: a gone environment's ttl passes with time */
			if (moved)
				c->next_refresh = now + c->o.resync;
			if (moved && refresh(c) == 0) {
				free(c->source_digest);
				c->source_digest = digest;
				digest = NULL;
			}
			free(digest);
			pthread_mutex_lock(&c->lock);
			now = mono();
			c->last_tick = now;
		}
		sync_watchers(c);
		dispatch(c, now);
		wait_until(c, next_wake(c, next_poll));
	}
	sync_watchers(c); /* got_stop: stops them all */
	pthread_mutex_unlock(&c->lock);
}

/* --- what the HTTP API reads --- */

struct rc_metrics *rc_ctl_metrics(rc_ctl *c)
{
	return c->metrics;
}

void rc_ctl_wake(rc_ctl *c, const char *why)
{
	size_t n = strlen(why);

	if (n >= sizeof(c->wake_why))
		n = sizeof(c->wake_why) - 1;
	pthread_mutex_lock(&c->lock);
	c->wake = true;
	memcpy(c->wake_why, why, n);
	c->wake_why[n] = '\0';
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

bool rc_ctl_alive(rc_ctl *c)
{
	bool ok;

	pthread_mutex_lock(&c->lock);
	/* a tick at least every 200 ms, except while the source is fetched
	   and read, which gets the poll interval and a minute */
	ok = mono() - c->last_tick < c->o.poll + 60;
	pthread_mutex_unlock(&c->lock);
	return ok;
}

bool rc_ctl_ready(rc_ctl *c)
{
	bool ok;

	pthread_mutex_lock(&c->lock);
	ok = c->ready;
	pthread_mutex_unlock(&c->lock);
	if (ok && c->lease) {
		/* ready once it knows who leads, itself or another */
		char *holder = rc_lease_holder(c->lease);

		ok = rc_lease_is_leader(c->lease) || (holder && *holder);
		free(holder);
	}
	return ok;
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* {"endpoint", "service", "since"} of an unreachable endpoint, or null. */
static json_t *unreachable_json(const char *down)
{
	rc_http_endpoint ep;
	char since[RC_TIME_SIZE];

	if (!down)
		return json_null();
	if (!rc_http_endpoint_state(down, &ep) || !ep.unreachable)
		return json_pack("{s:s, s:n, s:n}", "endpoint", down,
				 "service", "since");
	rc_time_utc(since, (long long)ep.since);
	return json_pack("{s:s, s:s, s:s}", "endpoint", down, "service",
			 ep.service, "since", since);
}

json_t *rc_ctl_status(rc_ctl *c)
{
	json_t *st = json_object(), *envs = json_array();
	double now_m, now_w = wall();

	pthread_mutex_lock(&c->lock);
	now_m = mono();
	json_object_set_new(st, "ready", json_boolean(c->ready));
	json_object_set_new(st, "commit", str_or_null(c->commit));
	if (c->shard.count > 1)
		json_object_set_new(st, "shard",
				    json_pack("{s:i, s:i}", "index",
					      c->shard.index, "count",
					      c->shard.count));
	if (c->lease) {
		char *holder = rc_lease_holder(c->lease);

		json_object_set_new(
			st, "leader",
			json_pack("{s:s, s:b, s:s, s:o}", "lease",
				  rc_lease_name(c->lease), "is_leader",
				  rc_lease_is_leader(c->lease), "self",
				  rc_lease_self(c->lease), "holder",
				  str_or_null(holder)));
		free(holder);
	}
	for (size_t i = 0; i < c->nenvs; i++) {
		const ctl_env *ce = &c->envs[i];
		json_t *o = json_object(), *last = json_object();

		json_object_set_new(o, "name", json_string(ce->name));
		json_object_set_new(o, "commit", str_or_null(ce->commit));
		json_object_set_new(o, "state", json_string(ce->state));
		json_object_set_new(last, "run", str_or_null(ce->last_run));
		json_object_set_new(last, "result", str_or_null(ce->last_result));
		json_object_set_new(last, "time", str_or_null(ce->last_time));
		json_object_set_new(last, "error", str_or_null(ce->last_error));
		json_object_set_new(o, "last", last);
		json_object_set_new(o, "pending_plan",
				    str_or_null(ce->pending_plan));
		json_object_set_new(o, "rejected_plan",
				    str_or_null(ce->rejected_plan));
		json_object_set_new(o, "drift", ce->has_drift
							? json_integer(ce->drift)
							: json_null());
		if (ce->busy) {
			json_object_set_new(o, "next_attempt", json_null());
		} else {
			time_t at = (time_t)(now_w + (ce->due > now_m
							      ? ce->due - now_m
							      : 0));
			char buf[RC_TIME_SIZE];
			struct tm tm;

			gmtime_r(&at, &tm);
			strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
			json_object_set_new(o, "next_attempt", json_string(buf));
		}
		json_object_set_new(o, "backoff_seconds",
				    json_real(ce->backoff));
		json_object_set_new(o, "unreachable", unreachable_json(ce->down));
		json_object_set_new(o, "drift_detection",
				    json_string(ce->watch ? "watch" : "poll"));
		json_array_append_new(envs, o);
	}
	pthread_mutex_unlock(&c->lock);
	json_object_set_new(st, "environments", envs);
	return st;
}

/* --- approvals (approval.c) --- */

const char *rc_ctl_state_dir(rc_ctl *c)
{
	const char *d;

	pthread_mutex_lock(&c->lock);
	d = c->o.state_dir ? c->o.state_dir : c->state_dir;
	pthread_mutex_unlock(&c->lock);
	return d;
}

json_t *rc_ctl_pending(rc_ctl *c)
{
	json_t *a = json_array();

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->nenvs; i++)
		if (c->envs[i].pending_plan)
			json_array_append_new(
				a, json_pack("{s:s, s:s, s:s?}", "name",
					     c->envs[i].name, "plan",
					     c->envs[i].pending_plan, "commit",
					     c->envs[i].commit));
	pthread_mutex_unlock(&c->lock);
	return a;
}

/* Whether plan names the plan id: the id, or 8 or more of its hex. */
static bool names_plan(const char *plan, const char *id)
{
	const char *hex = strchr(id, ':') ? strchr(id, ':') + 1 : id;
	size_t n = strlen(plan);

	return !strcmp(plan, id) ||
	       (n >= 8 && (!strncmp(plan, id, n) || !strncmp(plan, hex, n)));
}

int rc_ctl_take(rc_ctl *c, const char *env, const char *plan, double wait_s,
		char **pending)
{
	double end = mono() + wait_s;
	ctl_env *ce;
	int rc = 0;

	*pending = NULL;
	pthread_mutex_lock(&c->lock);
	while ((ce = env_find(c, env)) && ce->busy && !got_stop &&
	       mono() < end)
		wait_until(c, end);
	if (!ce)
		rc = rc_error_set(RC_ENOTFOUND, RC_ECLASS_CONFIG,
				  "no environment '%s' in the configuration",
				  env);
	else if (got_stop)
		rc = rc_error_set(RC_ELOCKED, RC_ECLASS_STATE,
				  "the controller is stopping");
	else if (ce->busy)
		rc = rc_error_set(RC_ELOCKED, RC_ECLASS_STATE,
				  "environment '%s' is still being worked on "
				  "after %gs; try again",
				  env, wait_s);
	else if (!ce->pending_plan)
		rc = rc_error_set(RC_ENOTFOUND, RC_ECLASS_STATE,
				  "environment '%s' has no plan waiting for "
				  "approval",
				  env);
	else if (plan && !names_plan(plan, ce->pending_plan))
		rc = rc_error_set(RC_ECONFLICT, RC_ECLASS_STATE,
				  "plan %s is not the pending plan of '%s'; "
				  "the pending plan is %s",
				  plan, env, ce->pending_plan);
	if (rc == 0) {
		*pending = rc_strdup(ce->pending_plan);
		ce->busy = true;
		ce->state = "applying";
		c->running++;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void rc_ctl_give(rc_ctl *c, const char *env, const rc_ctl_outcome *out)
{
	char now[RC_TIME_SIZE];
	ctl_env *ce;
	bool failed = !strcmp(out->result, "failed");

	rc_time_now(now);
	rc_metrics_run(c->metrics, env, out->result);
	if (!strcmp(out->result, "succeeded"))
		rc_metrics_success(c->metrics, env, wall());
	pthread_mutex_lock(&c->lock);
	if ((ce = env_find(c, env))) {
		ce->busy = false;
		set_str(&ce->last_result, out->result);
		set_str(&ce->last_time, now);
		if (out->run)
			set_str(&ce->last_run, out->run);
		set_str(&ce->last_error, out->error);
		set_str(&ce->pending_plan, out->pending);
		if (out->rejected)
			set_str(&ce->rejected_plan, out->rejected);
		ce->state = out->pending    ? "pending-approval"
			    : out->rejected ? "rejected"
			    : failed	    ? "failed"
					    : "in-sync";
		/* a failed apply is planned again after the first backoff; a
		   commit that moved meanwhile (due 0) at once */
		if (ce->due != 0)
			ce->due = mono() + (failed ? BACKOFF_MIN
						   : jittered(c->o.resync));
		rc_metrics_pending(c->metrics, count_pending(c));
	}
	c->running--;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* --- running it --- */

/* The Lease's news: this process leads (it plans from now on) or not.
 * It may come from rc_lease_start()'s first attempt, before c->lease is
 * set: it does not touch c->lease. */
static void on_leadership(void *ctx, bool leader, const char *holder)
{
	rc_ctl *c = ctx;

	if (leader)
		RC_INFO("leading (the Lease names %s): planning and applying",
			holder && *holder ? holder : "this process");
	else
		RC_INFO("not leading (the Lease names %s): standing by",
			holder && *holder ? holder : "nobody");
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->nenvs; i++)
		if (leader)
			c->envs[i].due = 0; /* a new leader looks at once */
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static bool is_directory(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Frees what the controller holds once nothing of it runs. */
static void ctl_free(rc_ctl *c)
{
	for (size_t i = 0; i < c->nenvs; i++)
		env_release(&c->envs[i]);
	free(c->envs);
	free(c->source_digest);
	free(c->commit);
	free(c->state_dir);
	if (c->notifier) {
		/* what the last runs told is delivered, within a bound */
		if (c->notifier->n)
			rc_notifier_flush(c->notifier->n, 5000);
		c->notifier->retired = true;
		c->notifier->refs++;
		notifier_release(c->notifier);
	}
	free(c->notifier_key);
	if (c->devnull)
		fclose(c->devnull);
	rc_metrics_free(c->metrics);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

int rc_controller_run(const rc_ctl_opts *o)
{
	rc_ctl *c = rc_calloc(1, sizeof(*c));
	rc_http_api *api = NULL;
	struct sigaction sa;
	pthread_condattr_t ca;
	double end;
	int rc;

	/* hundreds of mostly idle threads (watches, workers): glibc's
	   default of 8 arenas per core keeps each one's free pages; two
	   hold the same live data in far less memory */
	mallopt(M_ARENA_MAX, 2);
	c->o = *o;
	c->metrics = rc_metrics_new();
	c->is_dir = is_directory(o->source);
	c->devnull = fopen("/dev/null", "w");
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	c->last_tick = mono();
	srand((unsigned)(getpid() ^ (unsigned)time(NULL)));
	git_libgit2_init();
	if (o->token)
		rc_secret_register(o->token);
	if (o->hook_secret)
		rc_secret_register(o->hook_secret);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART; /* a fetch under way is not cut short */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if ((rc = rc_shard_resolve(&c->shard, o->shards > 0 ? o->shards : 1,
				   o->shard, NULL)) < 0) {
		ctl_free(c);
		return rc;
	}
	if (c->shard.count > 1)
		RC_INFO("shard %d of %d: only the environments whose name "
			"hashes to it",
			c->shard.index, c->shard.count);
	if ((rc = rc_http_api_start(&api, c, o->listen, o->token,
				    o->hook_secret)) < 0) {
		ctl_free(c);
		return rc;
	}
	if (o->leader_elect) {
		rc_lease_opts lo;

		rc_lease_opts_init(&lo);
		lo.lease = o->lease;
		lo.shard = c->shard.count > 1 ? c->shard.index : -1;
		lo.on_change = on_leadership;
		lo.ctx = c;
		if ((rc = rc_lease_start(&c->lease, &lo)) < 0) {
			rc_http_api_stop(api);
			ctl_free(c);
			return rc;
		}
	}
	if (!o->token || !*o->token)
		RC_WARN("no RECONCILE_CONTROLLER_TOKEN: the API on %s (loopback "
			"only) needs no token",
			o->listen);
	RC_INFO("controller listening on %s, following %s (poll %gs, resync "
		"%gs)",
		o->listen, o->source, o->poll, o->resync);
	loop(c);

	RC_INFO("stopping: no new work; waiting up to %gs for %d running "
		"environment%s",
		o->grace, c->running, c->running == 1 ? "" : "s");
	end = mono() + o->grace;
	pthread_mutex_lock(&c->lock);
	while (c->running > 0 && mono() < end)
		wait_until(c, end);
	rc = c->running;
	pthread_mutex_unlock(&c->lock);
	rc_http_api_stop(api);
	/* released only once nothing runs: a standby takes over at once */
	if (c->lease && rc == 0)
		rc_lease_stop(c->lease);
	if (rc > 0) {
		/* the journal tells the next run what was left unfinished */
		RC_WARN("%d environment%s still running after %gs: left as "
			"interrupted",
			rc, rc == 1 ? "" : "s", o->grace);
		return 0;
	}
	RC_INFO("stopped");
	ctl_free(c);
	return 0;
}
