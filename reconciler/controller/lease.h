/*
 * Leader election on a Kubernetes Lease (coordination.k8s.io/v1), with
 * client-go's algorithm (k8s.io/client-go/tools/leaderelection), so that
 * of several controller replicas exactly one acts (docs/controller.md,
 * "HA and sharding").
 *
 *   - A candidate reads the Lease every retry period. It takes it when
 *     the Lease is absent (create), released (holderIdentity empty) or
 *     expired: its record has not changed for leaseDurationSeconds as
 *     measured on the candidate's own monotonic clock since it first saw
 *     that record (clock skew between nodes does not matter). A takeover
 *     is an update carrying the resourceVersion read; 409 means another
 *     candidate won, and the Lease is read again.
 *   - The leader renews (renewTime) every retry period. When no renewal
 *     succeeded for the renew deadline, or the Lease names another
 *     holder, it steps down and becomes a candidate again. The renew
 *     deadline is shorter than the lease duration, so a leader that
 *     cannot renew stops acting before anyone may take over.
 *   - On stop the leader releases the Lease (holderIdentity empty,
 *     leaseDurationSeconds 1): a standby takes it at its next retry.
 *
 * Times are written in RFC 3339 with microseconds (MicroTime);
 * leaseTransitions grows by one on every change of holder.
 *
 * Threads: rc_lease_start() makes one thread that runs the election; the
 * callback runs on that thread. rc_lease_is_leader() may be called from
 * any thread.
 *
 * Ownership: the options' strings are copied by rc_lease_start(). An
 * rc_lease is freed by rc_lease_stop().
 *
 * Use, in the controller (--leader-elect, --lease, --shards, --shard):
 *
 *	rc_lease_opts o;
 *
 *	rc_lease_opts_init(&o);
 *	o.lease = lease_flag;                    (NULL: "reconcile")
 *	o.shard = shard.count > 1 ? shard.index : -1;   (shard.h)
 *	o.on_change = on_leadership;             (wake the loop)
 *	o.ctx = ctl;
 *	if (rc_lease_start(&lease, &o) < 0)
 *		fail with rc_error_last()->message;
 *	... plan and apply only while rc_lease_is_leader(lease) ...
 *	rc_lease_stop(lease);   (on SIGTERM, once the running action ended)
 */
#ifndef RC_CONTROLLER_LEASE_H
#define RC_CONTROLLER_LEASE_H

#include "reconciler/base/common.h"

/* client-go's defaults (and kube-controller-manager's). */
#define RC_LEASE_DEFAULT_NAME "reconcile"
#define RC_LEASE_DURATION_S 15
#define RC_LEASE_RENEW_DEADLINE_MS 10000L
#define RC_LEASE_RETRY_PERIOD_MS 2000L

typedef struct rc_lease rc_lease;

/*
 * Called on the election's thread when this process becomes the leader
 * (leader true) or stops being it (leader false: it lost the Lease), and
 * on the thread of rc_lease_stop() when that releases it. holder is the
 * identity the Lease names now (NULL when unknown), borrowed for the call.
 */
typedef void (*rc_lease_fn)(void *ctx, bool leader, const char *holder);

typedef struct {
	/* The connection, as the Kubernetes driver finds it
	 * (drivers/kube_config.h): kubeconfig NULL reads $KUBECONFIG, then
	 * ~/.kube/config, then the in-cluster service account; context
	 * NULL is the current one. */
	const char *kubeconfig;
	const char *context;
	/* "NAMESPACE/NAME" or "NAME" (--lease), or NULL: the name
	 * RC_LEASE_DEFAULT_NAME. The namespace, when not given, is the
	 * pod's (the service account's namespace file), else the
	 * kubeconfig context's, else "default". */
	const char *lease;
	/* >= 0: the Lease of shard K, "<name>-shard-K" (shard.h); -1: none */
	int shard;
	/* This candidate's holderIdentity; NULL: rc_lease_identity(). */
	const char *identity;

	int lease_duration_s;   /* RC_LEASE_DURATION_S when 0 */
	long renew_deadline_ms; /* RC_LEASE_RENEW_DEADLINE_MS when 0 */
	long retry_period_ms;   /* RC_LEASE_RETRY_PERIOD_MS when 0 */

	rc_lease_fn on_change;
	void *ctx;
} rc_lease_opts;

/* Fills o with the defaults (shard -1). */
void rc_lease_opts_init(rc_lease_opts *o);

/*
 * Connects, makes one attempt to acquire the Lease (so that a
 * configuration the cluster refuses fails here, with the RBAC rule it
 * needs) and starts the election's thread. Returns 0, or:
 * RC_EINVALID for a bad option or a reply that is not a Lease,
 * RC_EAUTH for 401 and 403 (the message names the verbs needed on
 * leases in coordination.k8s.io and the namespace), another error for
 * another 4xx reply (a namespace that does not exist), or the
 * connection's error (drivers/kube_config.h). A timeout, a 5xx or an
 * unreachable server at start is not an error: it is logged and the
 * election retries.
 */
int rc_lease_start(rc_lease **out, const rc_lease_opts *o);

/* Whether this process holds the Lease now. */
bool rc_lease_is_leader(rc_lease *l);

/* The identity the Lease named when last read (new string), or NULL. */
char *rc_lease_holder(rc_lease *l);

/* "NAMESPACE/NAME" of the Lease (borrowed from l). */
const char *rc_lease_name(const rc_lease *l);
/* This candidate's identity (borrowed from l). */
const char *rc_lease_self(const rc_lease *l);

/*
 * Stops the election: wakes its thread, releases the Lease when this
 * process holds it (calling on_change with leader false), joins the
 * thread and frees l (NULL is fine). Returns 0, or the error of the
 * release (the Lease then expires on its own). When the API server does
 * not answer this takes up to the renew deadline: half for the request
 * in flight, half for the release.
 */
int rc_lease_stop(rc_lease *l);

/* A new identity: "<POD_NAME or hostname>_<pid>_<8 random hex digits>". */
char *rc_lease_identity(void);

/*
 * Splits spec ("NAMESPACE/NAME", "NAME" or NULL) into a namespace (NULL
 * when spec names none) and a name (RC_LEASE_DEFAULT_NAME when NULL),
 * adding "-shard-K" when shard >= 0. New strings. RC_EINVALID with a
 * message when a part is not a DNS-1123 subdomain.
 */
int rc_lease_parse_name(const char *spec, int shard, char **ns, char **name);

#endif
