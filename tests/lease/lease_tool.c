/*
 * One leader-election candidate (reconciler/controller/lease.h) for
 * tests/lease/run.sh. Prints one line per event on stdout, each starting
 * with the wall-clock time in milliseconds since the epoch, so that the
 * script can compare the lines of two processes:
 *
 *   <ms> started <identity> lease=<ns/name> leader=<0|1>
 *   <ms> leader <identity>
 *   <ms> standby <identity> holder=<holder or ->
 *   <ms> stopped <identity> released=<0|1>
 *   error: <message>            (and exit 1: the election did not start)
 *
 * SIGTERM or SIGINT stops the election (releasing the Lease) and exits 0.
 *
 *   lease_tool [--kubeconfig FILE] [--context NAME] [--lease NS/NAME]
 *              [--shard K] [--identity ID] [--duration S]
 *              [--renew-deadline-ms MS] [--retry-ms MS]
 */
#include <pthread.h>
#include <signal.h>

#include "reconciler/controller/lease.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"

static long long wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *self;

static void on_change(void *ctx, bool leader, const char *holder)
{
	RC_UNUSED(ctx);
	if (leader)
		printf("%lld leader %s\n", wall_ms(), self);
	else
		printf("%lld standby %s holder=%s\n", wall_ms(), self,
		       holder && *holder ? holder : "-");
	fflush(stdout);
}

static long num(const char *flag, const char *v)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v ? v : "", &end, 10);
	if (!v || errno || *end || n < 0) {
		fprintf(stderr, "lease_tool: %s needs a number\n", flag);
		exit(2);
	}
	return n;
}

int main(int argc, char **argv)
{
	rc_lease_opts o;
	rc_lease *l;
	sigset_t set;
	char *holder, *made = NULL;
	bool was;
	int i, sig, rc;

	rc_lease_opts_init(&o);
	o.on_change = on_change;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--kubeconfig"))
			o.kubeconfig = v;
		else if (!strcmp(a, "--context"))
			o.context = v;
		else if (!strcmp(a, "--lease"))
			o.lease = v;
		else if (!strcmp(a, "--shard"))
			o.shard = (int)num(a, v);
		else if (!strcmp(a, "--identity"))
			o.identity = v;
		else if (!strcmp(a, "--duration"))
			o.lease_duration_s = (int)num(a, v);
		else if (!strcmp(a, "--renew-deadline-ms"))
			o.renew_deadline_ms = num(a, v);
		else if (!strcmp(a, "--retry-ms"))
			o.retry_period_ms = num(a, v);
		else {
			fprintf(stderr, "lease_tool: unknown option '%s'\n",
				a);
			return 2;
		}
		i++;
	}
	/* the signals wait for sigwait(), not in the election's thread */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if (!o.identity)
		o.identity = made = rc_lease_identity();
	self = o.identity;
	rc = rc_lease_start(&l, &o);
	if (rc < 0) {
		printf("error: %s\n", rc_error_last()->message);
		return 1;
	}
	holder = rc_lease_holder(l);
	printf("%lld started %s lease=%s leader=%d holder=%s\n", wall_ms(),
	       self, rc_lease_name(l), rc_lease_is_leader(l),
	       holder ? holder : "-");
	fflush(stdout);
	free(holder);

	sigwait(&set, &sig);
	was = rc_lease_is_leader(l);
	rc = rc_lease_stop(l);
	printf("%lld stopped %s released=%d\n", wall_ms(), self,
	       was && rc == 0);
	fflush(stdout);
	free(made);
	return 0;
}
