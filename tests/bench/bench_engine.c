/*
 * Benchmark of the engine's core, no platform involved:
 *  1. diff and plan of 10,000 resources (1,000 environments x 10) whose
 *     actual state is held in memory: no drift, then 1% drift;
 *  2. 1,000 cheap actions through the executor and the journal with fsync
 *     on (a driver whose apply does nothing): actions per second.
 * Prints wall time and peak RSS; not a test.
 *
 *   bench_engine [ENVIRONMENTS] [RESOURCES] [ACTIONS]
 */
#include "reconciler/base/common.h"
#include "reconciler/engine.h"
#include "reconciler/plan.h"

#include <ftw.h>
#include <sys/resource.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long peak_kb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static json_t *body(int e, int r, int drift)
{
	return json_pack("{s:[s,s], s:s, s:i, s:i, s:{s:s, s:s, s:i}, "
			 "s:{s:s, s:i, s:i}}",
			 "command", "python3", "app.py", "workdir", "/srv/app",
			 "port", 8000 + r, "replicas", 1 + (e + r + drift) % 3,
			 "env", "LOG_LEVEL", "info", "SERVICE", "svc", "INDEX", r,
			 "health", "http", "/healthz", "interval", 10, "retries", 3);
}

static void bench_plan(int nenv, int nres, int drift_per_mille)
{
	rc_resource_set desired = {0}, actual = {0};
	rc_plan_env *envs = rc_calloc((size_t)nenv, sizeof(*envs));
	char **names = rc_calloc((size_t)nenv, sizeof(char *));
	rc_plan_input in = {0};
	rc_plan plan;
	size_t counts[5];
	double t0, t1;
	int k = 0;

	for (int e = 0; e < nenv; e++) {
		char n[32];

		snprintf(n, sizeof(n), "env-%d", e);
		names[e] = rc_strdup(n);
		envs[e].env = names[e];
		envs[e].label = "local";
		for (int r = 0; r < nres; r++, k++) {
			char rn[32];
			int drift = (k % 1000) < drift_per_mille;

			snprintf(rn, sizeof(rn), "svc-%d", r);
			rc_resource_set_add(&desired, names[e], "local", "service",
					    rn, body(e, r, 0));
			rc_resource_set_add(&actual, names[e], "local", "service",
					    rn, body(e, r, drift));
		}
	}
	in.desired = &desired;
	in.actual = &actual;
	in.envs = envs;
	in.nenvs = (size_t)nenv;
	t0 = now();
	if (rc_plan_build(&plan, &in) < 0) {
		fprintf(stderr, "plan: %s\n", rc_error_last()->message);
		exit(1);
	}
	t1 = now();
	rc_plan_counts(&plan, counts);
	printf("plan %d x %d resources, %.1f%% drift: %.1f ms, %zu updates, "
	       "peak RSS %ld KiB\n",
	       nenv, nres, drift_per_mille / 10.0, (t1 - t0) * 1e3,
	       counts[RC_OP_UPDATE], peak_kb());
	rc_plan_release(&plan);
	rc_resource_set_release(&desired);
	rc_resource_set_release(&actual);
	for (int e = 0; e < nenv; e++)
		free(names[e]);
	free(names);
	free(envs);
}

/* A driver that applies nothing: the cost measured is the engine's. */
static int noop_open(rc_driver **out, const rc_env *env, const rc_driver_ctx *c)
{
	RC_UNUSED(env);
	RC_UNUSED(c);
	*out = (rc_driver *)(uintptr_t)1;
	return 0;
}
static void noop_close(rc_driver *d)
{
	RC_UNUSED(d);
}
static int noop_apply(rc_driver *d, const rc_action *a, json_t **result)
{
	RC_UNUSED(d);
	*result = a->desired ? json_incref(a->desired) : NULL;
	return 0;
}
static const rc_driver_ops noop = {
	.name = "noop", .max_concurrency = 0, .open = noop_open,
	.close = noop_close, .apply = noop_apply};

static int rm_one(const char *p, const struct stat *st, int f, struct FTW *w)
{
	RC_UNUSED(st);
	RC_UNUSED(f);
	RC_UNUSED(w);
	return remove(p);
}

static void bench_apply(int nactions, int concurrency)
{
	char dir[] = "/tmp/rc-bench-state-XXXXXX";
	rc_engine e;
	rc_env env;
	rc_engine_env ee;
	rc_plan plan;
	rc_apply_report rep;
	FILE *devnull = fopen("/dev/null", "w");
	double t0, t1;

	if (!mkdtemp(dir) || !devnull)
		exit(1);
	memset(&e, 0, sizeof(e));
	memset(&env, 0, sizeof(env));
	memset(&ee, 0, sizeof(ee));
	memset(&plan, 0, sizeof(plan));
	env.name = (char *)(uintptr_t)"bench";
	ee.env = &env;
	ee.ops = &noop;
	e.envs = &ee;
	e.nenvs = 1;
	e.state_dir = dir;
	e.opts.concurrency = concurrency;
	e.opts.out = devnull;
	rc_plan_envs_alloc(&plan, 1);
	plan.envs[0] = rc_strdup("bench");
	plan.env_labels[0] = rc_strdup("");
	plan.observed = json_object();
	for (int i = 0; i < nactions; i++) {
		char key[64], id[80], name[32];
		rc_action *a;

		snprintf(name, sizeof(name), "r%d", i);
		snprintf(key, sizeof(key), "bench/thing/%s", name);
		snprintf(id, sizeof(id), "create:%s", key);
		RC_GROW(plan.actions, plan.cap, plan.n + 1);
		a = &plan.actions[plan.n++];
		memset(a, 0, sizeof(*a));
		a->op = RC_OP_CREATE;
		a->id = rc_strdup(id);
		a->key = rc_strdup(key);
		a->env = rc_strdup("bench");
		a->driver = rc_strdup("noop");
		a->kind = rc_strdup("thing");
		a->name = rc_strdup(name);
		a->desired = json_pack("{s:i}", "n", i);
	}
	t0 = now();
	if (rc_engine_apply(&e, &plan, &rep) < 0) {
		fprintf(stderr, "apply: %s\n", rc_error_last()->message);
		exit(1);
	}
	t1 = now();
	printf("apply %d no-op actions, concurrency %d, journal fsync on: "
	       "%.2f s, %.0f actions/s (%zu ok)\n",
	       nactions, concurrency, t1 - t0, nactions / (t1 - t0), rep.ok);
	rc_apply_report_release(&rep);
	rc_plan_release(&plan);
	fclose(devnull);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int main(int argc, char **argv)
{
	int nenv = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 1000;
	int nres = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 10;
	int nact = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 1000;

	printf("bench_engine (start: peak RSS %ld KiB)\n", peak_kb());
	bench_plan(nenv, nres, 0);
	bench_plan(nenv, nres, 10);
	bench_apply(nact, 1);
	bench_apply(nact, 8);
	printf("peak RSS %ld KiB\n", peak_kb());
	return 0;
}
