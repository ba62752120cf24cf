/*
 * Watches one environment with its driver's watch operation
 * (drivers/driver.h) for tests/watch/run.sh. Prints one line per event
 * on stdout, each starting with the wall-clock time in milliseconds
 * since the epoch, so that the script can measure latencies:
 *
 *   <ms> watching <env>
 *   <ms> ready                 (the driver will not read desired again:
 *                               the tool releases it, as the controller
 *                               does, so a sanitizer build catches a read)
 *   <ms> changed <env> <key>
 *   <ms> stopped <env> in <ms> ms
 *   error: <message>           (and exit 1)
 *
 * The driver's log goes to stderr at the info level (its LISTs and
 * re-LISTs). SIGTERM or SIGINT stops the watch and exits 0.
 *
 *   watch_tool DIR ENV
 */
#include <pthread.h>
#include <signal.h>

#include "drivers/driver.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "schema/load.h"
#include "schema/secrets.h"

static long long wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_changed(void *arg, const char *env, const char *key)
{
	if (!env && !key) {
		rc_resource_set_release(arg);
		printf("%lld ready\n", wall_ms());
	} else {
		printf("%lld changed %s %s\n", wall_ms(), env, key);
	}
	fflush(stdout);
}

struct job {
	const rc_driver_ops *ops;
	rc_driver *d;
	const rc_resource_set *desired;
	volatile int stop;
	int rc;
	char *err;
};

static void *run_watch(void *arg)
{
	struct job *j = arg;

	j->rc = j->ops->watch(j->d, j->desired, on_changed,
			      (void *)j->desired, &j->stop);
	if (j->rc < 0)
		j->err = rc_strdup(rc_error_last()->message);
	return NULL;
}

static int fail(const char *what)
{
	printf("error: %s%s%s\n", what, *what ? ": " : "",
	       rc_error_last()->message);
	return 1;
}

int main(int argc, char **argv)
{
	static const unsigned char key[32] = {1};
	rc_diags diags;
	rc_config *cfg = NULL;
	const rc_env *env = NULL;
	rc_driver_ctx ctx = {0};
	rc_resource_set desired = {0};
	struct job j = {0};
	pthread_t th;
	sigset_t set;
	long long t0;
	int sig, rc;

	if (argc != 3) {
		fprintf(stderr, "usage: watch_tool DIR ENV\n");
		return 2;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	rc_log_threshold = RC_LOG_INFO;
	rc_diags_init(&diags);
	rc_secret_set_key(key);

	if (rc_config_load(&cfg, argv[1], &(rc_load_opts){0}, &diags) < 0) {
		rc_diags_print(&diags, stdout, false);
		return 1;
	}
	for (size_t i = 0; i < cfg->nenvs; i++)
		if (!strcmp(cfg->envs[i].name, argv[2]))
			env = &cfg->envs[i];
	if (!env) {
		printf("error: no environment %s\n", argv[2]);
		return 1;
	}
	j.ops = rc_driver_find(rc_driver_name(env->target.driver));
	if (!j.ops || !j.ops->watch) {
		printf("error: the driver of %s cannot watch\n", env->name);
		return 1;
	}
	ctx.project = cfg->project;
	ctx.config_dir = argv[1];
	ctx.state_dir = getenv("RECONCILE_STATE_DIR");
	if (j.ops->open(&j.d, env, &ctx) < 0)
		return fail("open");
	if (j.ops->expand(j.d, env, &desired) < 0)
		return fail("expand");
	j.desired = &desired;
	if (pthread_create(&th, NULL, run_watch, &j))
		return fail("thread");
	printf("%lld watching %s\n", wall_ms(), env->name);
	fflush(stdout);

	sigwait(&set, &sig);
	t0 = wall_ms();
	j.stop = 1;
	pthread_join(th, NULL);
	rc = j.rc;
	if (rc < 0) {
		printf("error: %s\n", j.err);
	} else {
		printf("%lld stopped %s in %lld ms\n", wall_ms(), env->name,
		       wall_ms() - t0);
	}
	fflush(stdout);
	free(j.err);
	j.ops->close(j.d);
	rc_resource_set_release(&desired);
	rc_config_free(cfg);
	rc_diags_release(&diags);
	return rc < 0;
}
