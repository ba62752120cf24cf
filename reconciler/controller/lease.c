/*
 * Leader election on a coordination.k8s.io/v1 Lease: lease.h says the
 * algorithm. One thread per rc_lease; the HTTP client and the connection
 * are the Kubernetes driver's (drivers/http.h, drivers/kube_config.h).
 */
#include <pthread.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "reconciler/controller/lease.h"
#include "reconciler/controller/shard.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "drivers/http.h"
#include "drivers/kube_config.h"
#include "drivers/proc.h"

#define LEASE_API "/apis/coordination.k8s.io/v1/namespaces/"
#define LEASE_MAX_BODY (256 * 1024)

struct rc_lease {
	char *ns, *name, *full; /* full: "ns/name" */
	char *path, *coll;      /* the Lease's and its collection's paths */
	char *self;
	int duration_s;
	long renew_deadline_ms, retry_ms;
	rc_lease_fn cb;
	void *ctx;

	rc_kube_conn conn;
	rc_http *http;

	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC; signalled by stop */
	bool stopping;
	bool leader;  /* under mu */
	char *holder; /* under mu: the Lease's holderIdentity last read */

	/* What the election thread saw last (that thread only, and
	 * rc_lease_start() before the thread exists). */
	char *obs_spec;      /* the spec, canonical JSON */
	long long obs_ms;    /* monotonic: when obs_spec last changed */
	char *rv;            /* its resourceVersion */
	char *acquire_time;  /* its acquireTime */
	long long transitions;
	char *last_err; /* the last error logged, not to repeat it */
	bool refused;   /* the last error was a 4xx reply (not 408, 429) */
	long long deadline; /* monotonic ms: a renewal must end by then;
			       0: none */
};

/* ------------------------------------------------------------- helpers */

/* now in RFC 3339 with microseconds (metav1.MicroTime). */
static void micro_now(char out[40])
{
	struct timespec ts;
	struct tm tm;
	char day[24];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 40, "%s.%06dZ", day, (int)(ts.tv_nsec / 1000));
}

static bool dns_name_ok(const char *s, size_t max, bool dots)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > max)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			continue;
		if ((c == '-' || (dots && c == '.')) && i > 0 && i < n - 1)
			continue;
		return false;
	}
	return true;
}

int rc_lease_parse_name(const char *spec, int shard, char **ns, char **name)
{
	const char *slash = spec ? strchr(spec, '/') : NULL;
	char *n, *s = NULL;

	*ns = *name = NULL;
	if (spec && !*spec)
		return rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				    "--lease: empty; give NAMESPACE/NAME or "
				    "NAME");
	if (slash) {
		s = rc_strdup(spec);
		s[slash - spec] = '\0';
		n = rc_strdup(slash + 1);
		if (!dns_name_ok(s, 63, false)) {
			rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				     "--lease '%s': '%s' is not a namespace "
				     "name (lower-case letters, digits and "
				     "'-', at most 63)",
				     spec, s);
			goto bad;
		}
	} else {
		n = rc_strdup(spec ? spec : RC_LEASE_DEFAULT_NAME);
	}
	if (shard >= 0) {
		char *t = rc_shard_lease_name(n, shard);

		free(n);
		n = t;
	}
	if (!dns_name_ok(n, 253, true)) {
		rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
			     "--lease '%s': '%s' is not a Lease name "
			     "(lower-case letters, digits, '-' and '.', at "
			     "most 253)",
			     spec ? spec : "", n);
		goto bad;
	}
	*ns = s;
	*name = n;
	return 0;
bad:
	free(s);
	free(n);
	return RC_EINVALID;
}

char *rc_lease_identity(void)
{
	const char *pod = getenv("POD_NAME");
	char host[256] = "";
	unsigned char r[4] = {0};
	rc_buf b = RC_BUF_INIT;

	if (!pod || !*pod) {
		if (gethostname(host, sizeof(host)) < 0)
			snprintf(host, sizeof(host), "reconcile");
		host[sizeof(host) - 1] = '\0';
		pod = host;
	}
	if (RAND_bytes(r, sizeof(r)) != 1) {
		long long t = rc_local_now_ms();

		memcpy(r, &t, sizeof(r));
	}
	rc_buf_printf(&b, "%s_%ld_%02x%02x%02x%02x", pod, (long)getpid(), r[0],
		      r[1], r[2], r[3]);
	return rc_buf_detach(&b);
}

/* The pod's namespace (the service account's namespace file), or NULL. */
static char *pod_namespace(void)
{
	const char *dir = getenv(RC_KUBE_SERVICEACCOUNT_ENV);
	rc_buf path = RC_BUF_INIT, ns = RC_BUF_INIT;
	char *out = NULL;

	rc_buf_printf(&path, "%s/namespace",
		      dir && *dir ? dir : RC_KUBE_SERVICEACCOUNT_DIR);
	if (access(path.ptr, R_OK) == 0 &&
	    rc_local_read_file(path.ptr, 4096, &ns) == 0) {
		while (ns.len && isspace((unsigned char)ns.ptr[ns.len - 1]))
			rc_buf_truncate(&ns, ns.len - 1);
		if (ns.len)
			out = rc_buf_detach(&ns);
	}
	rc_error_clear();
	rc_buf_release(&ns);
	rc_buf_release(&path);
	return out;
}

static void set_str(char **dst, const char *s)
{
	free(*dst);
	*dst = s ? rc_strdup(s) : NULL;
}

/* The error of a reply that is not the one hoped for. */
static int reply_error(rc_lease *l, const char *verb, const rc_http_resp *r)
{
	json_t *st = json_loadb(r->body.ptr, r->body.len, 0, NULL);
	const char *msg = json_string_value(json_object_get(st, "message"));
	int rc;

	l->refused = r->status >= 400 && r->status < 500 &&
		     r->status != 408 && r->status != 429;
	switch (r->status) {
	case 401:
		rc = rc_error_set(RC_EAUTH, RC_ECLASS_PLATFORM,
				  "lease %s: %s: the API server did not "
				  "accept the credentials (401 Unauthorized); "
				  "check the kubeconfig's user for this "
				  "context, or the service account token",
				  l->full, verb);
		break;
	case 403:
		rc = rc_error_set(RC_EAUTH, RC_ECLASS_PLATFORM,
				  "lease %s: %s (403 Forbidden). Leader "
				  "election needs the verbs get, create and "
				  "update on leases in API group "
				  "coordination.k8s.io in namespace '%s': a "
				  "Role with rules: [{apiGroups: "
				  "[\"coordination.k8s.io\"], resources: "
				  "[\"leases\"], verbs: [\"get\", \"create\", "
				  "\"update\"]}] bound to the controller's "
				  "service account (docs/controller.md, HA "
				  "and sharding)",
				  l->full, msg ? msg : "forbidden", l->ns);
		break;
	default:
		if (msg)
			rc = rc_error_set(RC_ERROR, RC_ECLASS_PLATFORM,
					  "lease %s: %s answered %ld: %s",
					  l->full, verb, r->status, msg);
		else
			rc = rc_error_set(RC_EINVALID, RC_ECLASS_PLATFORM,
					  "lease %s: %s answered %ld with a "
					  "body that is not a Status: %.200s",
					  l->full, verb, r->status,
					  r->body.ptr);
		break;
	}
	json_decref(st);
	return rc;
}

static int lease_send(rc_lease *l, const char *method, const char *path,
		json_t *body, rc_http_resp *resp)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	rc_http_req req = {
		.method = method,
		.path = path,
		.body = text,
		.body_len = text ? strlen(text) : 0,
		/* a lost reply is harmless: a repeated create is a 409, a
		 * repeated update a stale resourceVersion */
		.idempotent = true,
	};
	long long left = l->deadline ? l->deadline - rc_local_now_ms() : 0;
	int rc;

	/* a renewal ends by the renew deadline, not a request timeout
	 * later: the leader must step down before a standby may take over */
	if (l->deadline && left <= 0) {
		free(text);
		return rc_error_set(RC_ETIMEOUT, RC_ECLASS_HTTP,
				    "lease %s: the renew deadline (%ld ms) "
				    "passed",
				    l->full, l->renew_deadline_ms);
	}
	if (l->deadline && left < l->renew_deadline_ms / 2)
		req.timeout_ms = (long)left;
	rc = rc_http_do(l->http, &req, resp);
	free(text);
	if (rc < 0)
		rc_error_prefix("lease %s", l->full);
	return rc;
}

/*
 * Takes in a Lease the server returned: its resourceVersion, and its
 * spec as the observed record (the time it changed is now when it
 * differs from the one seen before). Returns the spec (borrowed from
 * obj) or NULL with RC_EINVALID set.
 */
static json_t *observe(rc_lease *l, json_t *obj, const char *verb)
{
	json_t *spec = json_object_get(obj, "spec");
	const char *rv = json_string_value(json_object_get(
		json_object_get(obj, "metadata"), "resourceVersion"));
	json_t *holder = json_object_get(spec, "holderIdentity");
	json_t *dur = json_object_get(spec, "leaseDurationSeconds");
	json_t *tr = json_object_get(spec, "leaseTransitions");
	char *canon;

	if (!json_is_object(obj) || !rv ||
	    (spec && !json_is_object(spec)) ||
	    (holder && !json_is_string(holder) && !json_is_null(holder)) ||
	    (dur && !json_is_integer(dur) && !json_is_null(dur)) ||
	    (tr && !json_is_integer(tr) && !json_is_null(tr))) {
		rc_error_set(RC_EINVALID, RC_ECLASS_PLATFORM,
			     "lease %s: %s: the reply is not a Lease "
			     "(metadata.resourceVersion, spec."
			     "holderIdentity, spec.leaseDurationSeconds)",
			     l->full, verb);
		return NULL;
	}
	if (!spec) {
		spec = json_object();
		json_object_set_new(obj, "spec", spec);
	}
	canon = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
	if (!l->obs_spec || strcmp(canon, l->obs_spec)) {
		free(l->obs_spec);
		l->obs_spec = canon;
		l->obs_ms = rc_local_now_ms();
	} else {
		free(canon);
	}
	set_str(&l->rv, rv);
	set_str(&l->acquire_time,
		json_string_value(json_object_get(spec, "acquireTime")));
	l->transitions = json_integer_value(tr);
	pthread_mutex_lock(&l->mu);
	set_str(&l->holder, json_string_value(holder));
	pthread_mutex_unlock(&l->mu);
	return spec;
}

static json_t *lease_object(rc_lease *l, bool with_rv, const char *holder,
			    int duration, const char *acquire,
			    const char *renew, long long transitions)
{
	json_t *meta = json_pack("{s:s, s:s}", "name", l->name, "namespace",
				 l->ns);

	if (with_rv)
		json_object_set_new(meta, "resourceVersion",
				    json_string(l->rv));
	return json_pack("{s:s, s:s, s:o, s:{s:s, s:i, s:s, s:s, s:I}}",
			 "apiVersion", "coordination.k8s.io/v1", "kind",
			 "Lease", "metadata", meta, "spec", "holderIdentity",
			 holder, "leaseDurationSeconds", duration,
			 "acquireTime", acquire, "renewTime", renew,
			 "leaseTransitions", (json_int_t)transitions);
}

/* Sends a create or an update and takes in the Lease returned. Returns
 * 1 when it was written, 0 on 409 (another candidate wrote first), or an
 * error. */
static int write_lease(rc_lease *l, bool create, json_t *obj)
{
	const char *verb = create ? "create" : "update";
	rc_http_resp r;
	json_t *got;
	int rc;

	rc_http_resp_init(&r);
	rc = lease_send(l, create ? "POST" : "PUT",
			create ? l->coll : l->path, obj, &r);
	if (rc == 0 && r.status == 409) {
		rc = 0;
	} else if (rc == 0 && r.status >= 200 && r.status < 300) {
		got = json_loadb(r.body.ptr, r.body.len, 0, NULL);
		rc = observe(l, got, verb) ? 1 : RC_EINVALID;
		json_decref(got);
	} else if (rc == 0) {
		rc = reply_error(l, verb, &r);
	}
	rc_http_resp_release(&r);
	return rc;
}

/*
 * client-go's tryAcquireOrRenew: 1 when this candidate holds the Lease
 * after the call, 0 when another one does (or won a race), < 0 on error.
 */
static int try_acquire(rc_lease *l)
{
	rc_http_resp r;
	json_t *obj = NULL, *spec, *nobj;
	const char *holder;
	char now[40];
	bool mine;
	long long dur;
	int rc;

	l->refused = false;
	rc_http_resp_init(&r);
	rc = lease_send(l, "GET", l->path, NULL, &r);
	if (rc < 0)
		goto out;
	micro_now(now);
	if (r.status == 404) {
		nobj = lease_object(l, false, l->self, l->duration_s, now, now,
				    0);
		rc = write_lease(l, true, nobj);
		json_decref(nobj);
		goto out;
	}
	if (r.status != 200) {
		rc = reply_error(l, "get", &r);
		goto out;
	}
	obj = json_loadb(r.body.ptr, r.body.len, 0, NULL);
	spec = observe(l, obj, "get");
	if (!spec) {
		rc = RC_EINVALID;
		goto out;
	}
	holder = json_string_value(json_object_get(spec, "holderIdentity"));
	mine = holder && !strcmp(holder, l->self);
	dur = json_integer_value(json_object_get(spec,
						 "leaseDurationSeconds"));
	if (holder && *holder && !mine &&
	    l->obs_ms + dur * 1000 > rc_local_now_ms()) {
		rc = 0; /* held, and not expired */
		goto out;
	}
	nobj = lease_object(l, true, l->self, l->duration_s,
			    mine && l->acquire_time ? l->acquire_time : now,
			    now, mine ? l->transitions : l->transitions + 1);
	rc = write_lease(l, false, nobj);
	json_decref(nobj);
out:
	json_decref(obj);
	rc_http_resp_release(&r);
	return rc;
}

/* Gives the Lease up: holder empty, duration 1 s (client-go's release). */
static int release(rc_lease *l)
{
	char now[40];
	json_t *obj;
	int rc;

	micro_now(now);
	obj = lease_object(l, true, "", 1, now, now, l->transitions);
	rc = write_lease(l, false, obj);
	json_decref(obj);
	if (rc == 0)
		rc = rc_error_set(RC_ECONFLICT, RC_ECLASS_PLATFORM,
				  "lease %s: not released: another holder "
				  "wrote it first",
				  l->full);
	return rc < 0 ? rc : 0;
}

/* Logs an error once, until another one or a success comes. */
static void note_error(rc_lease *l, int rc)
{
	const rc_error *e = rc_error_last();
	const char *m = e && e->message ? e->message : "failed";

	if (rc >= 0) {
		if (l->last_err)
			RC_INFO("lease %s: the API server answers again",
				l->full);
		set_str(&l->last_err, NULL);
		return;
	}
	if (!l->last_err || strcmp(l->last_err, m))
		RC_WARN("%s", m);
	set_str(&l->last_err, m);
}

/* Waits ms or until stop; returns true when stopping. */
static bool wait_ms(rc_lease *l, long ms)
{
	struct timespec ts;
	bool stop;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&l->mu);
	while (!l->stopping &&
	       pthread_cond_timedwait(&l->cv, &l->mu, &ts) != ETIMEDOUT)
		;
	stop = l->stopping;
	pthread_mutex_unlock(&l->mu);
	return stop;
}

/* The retry period with up to 20% added at random, so that candidates
 * started together do not ask together. */
static long jittered(long ms)
{
	unsigned char r = 0;

	if (RAND_bytes(&r, 1) != 1)
		r = 128;
	return ms + ms * r / 255 / 5;
}

static void set_leader(rc_lease *l, bool leader)
{
	char *holder;

	pthread_mutex_lock(&l->mu);
	l->leader = leader;
	holder = l->holder ? rc_strdup(l->holder) : NULL;
	pthread_mutex_unlock(&l->mu);
	if (leader)
		RC_INFO("lease %s: %s is the leader", l->full, l->self);
	else
		RC_INFO("lease %s: %s is no longer the leader (holder: %s)",
			l->full, l->self, holder && *holder ? holder : "none");
	if (l->cb)
		l->cb(l->ctx, leader, holder);
	free(holder);
}

/* Renews until the Lease is lost or stop is asked; true when asked. */
static bool lead(rc_lease *l)
{
	long long last_ok = rc_local_now_ms();
	int rc;

	while (!wait_ms(l, l->retry_ms)) {
		l->deadline = last_ok + l->renew_deadline_ms;
		rc = try_acquire(l);
		l->deadline = 0;
		note_error(l, rc);
		if (rc == 1) {
			last_ok = rc_local_now_ms();
			continue;
		}
		if (rc == 0) {
			RC_WARN("lease %s: taken over by another holder",
				l->full);
			return false;
		}
		if (rc_local_now_ms() - last_ok >= l->renew_deadline_ms) {
			RC_WARN("lease %s: not renewed within the renew "
				"deadline (%ld ms): stepping down",
				l->full, l->renew_deadline_ms);
			return false;
		}
	}
	return true;
}

static void *run(void *arg)
{
	rc_lease *l = arg;
	bool leader;
	int rc;

	pthread_mutex_lock(&l->mu);
	leader = l->leader;
	pthread_mutex_unlock(&l->mu);
	if (leader)
		set_leader(l, true);
	for (;;) {
		if (leader) {
			if (lead(l))
				break;
			set_leader(l, false);
			leader = false;
		}
		if (wait_ms(l, jittered(l->retry_ms)))
			break;
		rc = try_acquire(l);
		note_error(l, rc);
		if (rc == 1) {
			leader = true;
			set_leader(l, true);
		}
	}
	return NULL;
}

/* ----------------------------------------------------------------- API */

void rc_lease_opts_init(rc_lease_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->shard = -1;
}

static void lease_free(rc_lease *l)
{
	if (!l)
		return;
	rc_http_close(l->http);
	rc_kube_conn_release(&l->conn);
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	free(l->ns);
	free(l->name);
	free(l->full);
	free(l->path);
	free(l->coll);
	free(l->self);
	free(l->holder);
	free(l->obs_spec);
	free(l->rv);
	free(l->acquire_time);
	free(l->last_err);
	free(l);
}

static int lease_connect(rc_lease *l, const rc_lease_opts *o)
{
	rc_http_opts ho;
	int rc;

	rc = rc_kube_conn_load_from(&l->conn, o->kubeconfig, o->context);
	if (rc < 0)
		return rc;
	rc_http_opts_init(&ho);
	rc = rc_kube_conn_http_opts(&l->conn, &ho);
	if (rc < 0)
		return rc;
	ho.accept = "application/json";
	/* the election retries on its own schedule; a request must end
	 * well within the renew deadline */
	ho.max_retries = 0;
	ho.timeout_ms = l->renew_deadline_ms / 2;
	ho.connect_timeout_ms = ho.timeout_ms < 5000 ? ho.timeout_ms : 5000;
	ho.qps = 0;
	return rc_http_open(&l->http, &ho);
}

int rc_lease_start(rc_lease **out, const rc_lease_opts *o)
{
	rc_lease *l = rc_calloc(1, sizeof(*l));
	pthread_condattr_t ca;
	rc_buf b = RC_BUF_INIT;
	char *ns = NULL;
	int rc;

	*out = NULL;
	pthread_mutex_init(&l->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cv, &ca);
	pthread_condattr_destroy(&ca);
	l->duration_s = o->lease_duration_s > 0 ? o->lease_duration_s
						 : RC_LEASE_DURATION_S;
	l->renew_deadline_ms = o->renew_deadline_ms > 0
				       ? o->renew_deadline_ms
				       : RC_LEASE_RENEW_DEADLINE_MS;
	l->retry_ms = o->retry_period_ms > 0 ? o->retry_period_ms
					     : RC_LEASE_RETRY_PERIOD_MS;
	l->cb = o->on_change;
	l->ctx = o->ctx;
	if (l->renew_deadline_ms >= l->duration_s * 1000L ||
	    l->retry_ms >= l->renew_deadline_ms) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				  "leader election: the retry period (%ld ms) "
				  "must be shorter than the renew deadline "
				  "(%ld ms), and that shorter than the lease "
				  "duration (%d s)",
				  l->retry_ms, l->renew_deadline_ms,
				  l->duration_s);
		goto fail;
	}
	rc = rc_lease_parse_name(o->lease, o->shard, &ns, &l->name);
	if (rc < 0)
		goto fail;
	l->self = o->identity ? rc_strdup(o->identity) : rc_lease_identity();
	rc = lease_connect(l, o);
	if (rc < 0) {
		rc_error_prefix("leader election");
		goto fail;
	}
	if (!ns)
		ns = pod_namespace();
	l->ns = ns ? ns : rc_strdup(l->conn.namespace ? l->conn.namespace
						      : "default");
	ns = NULL;
	rc_buf_printf(&b, "%s/%s", l->ns, l->name);
	l->full = rc_buf_detach(&b);
	rc_buf_printf(&b, LEASE_API "%s/leases", l->ns);
	l->coll = rc_buf_detach(&b);
	rc_buf_printf(&b, "%s/%s", l->coll, l->name);
	l->path = rc_buf_detach(&b);

	rc = try_acquire(l);
	if (rc < 0 && (l->refused || rc == RC_EINVALID))
		goto fail;
	note_error(l, rc);
	l->leader = rc == 1;
	if (pthread_create(&l->thread, NULL, run, l) != 0) {
		errno = EAGAIN;
		rc = rc_error_set_os("leader election: cannot start a thread");
		goto fail;
	}
	l->started = true;
	*out = l;
	return 0;
fail:
	free(ns);
	lease_free(l);
	return rc;
}

bool rc_lease_is_leader(rc_lease *l)
{
	bool v;

	if (!l)
		return false;
	pthread_mutex_lock(&l->mu);
	v = l->leader;
	pthread_mutex_unlock(&l->mu);
	return v;
}

char *rc_lease_holder(rc_lease *l)
{
	char *h;

	pthread_mutex_lock(&l->mu);
	h = l->holder && *l->holder ? rc_strdup(l->holder) : NULL;
	pthread_mutex_unlock(&l->mu);
	return h;
}

const char *rc_lease_name(const rc_lease *l)
{
	return l->full;
}

const char *rc_lease_self(const rc_lease *l)
{
	return l->self;
}

int rc_lease_stop(rc_lease *l)
{
	int rc = 0;

	if (!l)
		return 0;
	pthread_mutex_lock(&l->mu);
	l->stopping = true;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	if (l->started)
		pthread_join(l->thread, NULL);
	if (rc_lease_is_leader(l)) {
		rc = release(l);
		if (rc < 0)
			RC_WARN("%s", rc_error_last()->message);
		else
			RC_INFO("lease %s: released by %s", l->full, l->self);
		set_leader(l, false);
	}
	lease_free(l);
	return rc;
}
