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

#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "tests/support/testenv.h"

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
	rc_testenv t;
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
	if (rc_testenv_open(&t, argv[1], argv[2], NULL))
		return 1;
	if (!t.ops->watch) {
		printf("error: the driver of %s cannot watch\n", t.env->name);
		return 1;
	}
	j.ops = t.ops;
	j.d = t.d;
	if (j.ops->expand(j.d, t.env, &desired) < 0)
		return fail("expand");
	j.desired = &desired;
	if (pthread_create(&th, NULL, run_watch, &j))
		return fail("thread");
	printf("%lld watching %s\n", wall_ms(), t.env->name);
	fflush(stdout);

	sigwait(&set, &sig);
	t0 = wall_ms();
	j.stop = 1;
	pthread_join(th, NULL);
	rc = j.rc;
	if (rc < 0) {
		printf("error: %s\n", j.err);
	} else {
		printf("%lld stopped %s in %lld ms\n", wall_ms(), t.env->name,
		       wall_ms() - t0);
	}
	fflush(stdout);
	free(j.err);
	rc_resource_set_release(&desired);
	rc_testenv_close(&t);
	return rc < 0;
}
