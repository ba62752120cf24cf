/*
 * Stand-ins for the controllers a test cluster runs, on one thread: the
 * deployment controller (status, conditions, the revision annotation),
 * the Job controller (one Pod per Job, completed or failed), the
 * namespace controller's deletion and the garbage collector's foreground
 * deletion. Each looks at an object once the controller delay has passed
 * after the object changed; a deletion held by something (dependents, a
 * namespace's content, the slowed garbage collector) looks again later.
 */
#include "tests/fake/kube/kube.h"

void kf_deadline(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static bool passed(const struct timespec *ts)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return now.tv_sec > ts->tv_sec ||
	       (now.tv_sec == ts->tv_sec && now.tv_nsec >= ts->tv_nsec);
}

bool kf_wait_until(struct kf_server *srv, pthread_cond_t *cond,
		   const struct timespec *deadline)
{
	if (!srv->stopping)
		pthread_cond_timedwait(cond, &srv->lock, deadline);
	return srv->stopping;
}

void kf_sleep_ms(struct kf_server *srv, long ms)
{
	struct timespec until;

	if (ms <= 0)
		return;
	kf_deadline(&until, ms);
	pthread_mutex_lock(&srv->lock);
	while (!srv->stopping && !passed(&until))
		kf_wait_until(srv, &srv->changed, &until);
	pthread_mutex_unlock(&srv->lock);
}

static bool watched_kind(const struct kf_kind *k)
{
	return !strcmp(k->kind, "Deployment") || !strcmp(k->kind, "Job") ||
	       !strcmp(k->kind, "Namespace");
}

static bool quiet; /* the controllers' own writes do not requeue */

static bool before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec ||
	       (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* Queues o to be looked at once due has passed, in due order. */
static void enqueue(struct kf_server *srv, struct kf_obj *o,
		    const struct timespec *due)
{
	struct kf_work w;
	size_t at;

	if (o->queued)
		return;
	o->queued = true;
	if (srv->headwork && srv->nwork == srv->capwork) {
		memmove(srv->work, srv->work + srv->headwork,
			(srv->nwork - srv->headwork) * sizeof(*srv->work));
		srv->nwork -= srv->headwork;
		srv->headwork = 0;
	}
	RC_GROW(srv->work, srv->capwork, srv->nwork + 1);
	w.kind = o->kind;
	w.ns = rc_strdup(o->ns);
	w.name = rc_strdup(o->name);
	w.due = *due;
	for (at = srv->nwork; at > srv->headwork &&
			      before(due, &srv->work[at - 1].due);
	     at--)
		;
	memmove(&srv->work[at + 1], &srv->work[at],
		(srv->nwork - at) * sizeof(*srv->work));
	srv->work[at] = w;
	srv->nwork++;
	pthread_cond_signal(&srv->ctl_wake);
}

static void enqueue_in(struct kf_server *srv, struct kf_obj *o, long ms)
{
	struct timespec due;

	kf_deadline(&due, ms);
	enqueue(srv, o, &due);
}

void kf_ctl_notify(struct kf_server *srv, const struct kf_kind *k,
		   const char *ns, const char *name)
{
	struct kf_obj *o;

	if (quiet)
		return;
	o = kf_store_get(&srv->store, k, ns, name);
	if (!o)
		return;
	if (!watched_kind(k) && !kf_jget(o->json, "metadata.deletionTimestamp"))
		return;
	enqueue_in(srv, o, srv->controller_delay_ms);
}

static struct kf_rollout *rollout(struct kf_server *srv, const char *key)
{
	for (size_t i = 0; i < srv->nrollouts; i++)
		if (!strcmp(srv->rollouts[i].key, key))
			return &srv->rollouts[i];
	return NULL;
}

void kf_ctl_rollout(struct kf_server *srv, const char *ns, const char *name,
		    bool fail, bool stall)
{
	rc_buf key = RC_BUF_INIT;
	struct kf_rollout *r;

	rc_buf_printf(&key, "%s/%s", ns, name);
	r = rollout(srv, key.ptr);
	if (!r) {
		RC_GROW(srv->rollouts, srv->caprollouts, srv->nrollouts + 1);
		r = &srv->rollouts[srv->nrollouts++];
		r->key = rc_buf_detach(&key);
	}
	r->fail = fail;
	r->stall = stall;
	rc_buf_release(&key);
	kf_ctl_notify(srv, kf_kind_named("deployments"), ns, name);
}

/* ---- deployments ---- */

/* The pod-template-hash: FNV-32a of the template, printed in decimal and
 * mapped onto the name alphabet, as the deployment controller does. */
static void template_hash(rc_buf *out, json_t *tpl)
{
	static const char alpha[] = "bcdfghjklmnpqrstvwxz2456789";
	char *s = json_dumps(tpl, JSON_COMPACT | JSON_SORT_KEYS);
	uint32_t h = 2166136261u;
	char num[16];

	for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
		h ^= *p;
		h *= 16777619u;
	}
	free(s);
	snprintf(num, sizeof(num), "%u", h);
	for (const char *p = num; *p; p++)
		rc_buf_putc(out,
			    alpha[(unsigned char)*p % (sizeof(alpha) - 1)]);
}

static json_t *find_condition(json_t *conds, const char *type)
{
	json_t *c;
	size_t i;

	json_array_foreach(conds, i,
			   c) if (kf_jstr(c, "type") &&
				  !strcmp(kf_jstr(c, "type"), type)) return c;
	return NULL;
}

static bool str_eq(const char *a, const char *b)
{
	return a && b && !strcmp(a, b);
}

static json_t *condition(json_t *old_conds, const char *type,
			 const char *status, const char *reason,
			 const char *message, const char *now)
{
	json_t *old = find_condition(old_conds, type);
	bool same_status = old && str_eq(kf_jstr(old, "status"), status);
	bool same = same_status && str_eq(kf_jstr(old, "reason"), reason) &&
		    str_eq(kf_jstr(old, "message"), message);

	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "type", type, "status",
			 status, "lastUpdateTime",
			 same ? kf_jstr(old, "lastUpdateTime") : now,
			 "lastTransitionTime",
			 same_status ? kf_jstr(old, "lastTransitionTime") : now,
			 "reason", reason, "message", message);
}

static void set_count(json_t *st, const char *key, json_int_t n)
{
	if (n)
		json_object_set_new(st, key, json_integer(n));
}

static void sync_deployment(struct kf_server *srv, struct kf_obj *o)
{
	json_t *n = json_deep_copy(o->json), *st, *conds, *err = NULL;
	json_t *old_conds = kf_jget(o->json, "status.conditions");
	json_t *ann;
	json_int_t replicas = 1, gen;
	rc_buf hash = RC_BUF_INIT, rs = RC_BUF_INIT, msg = RC_BUF_INIT,
	       key = RC_BUF_INIT;
	const char *rev;
	const char *prog =
	    kf_jstr(find_condition(old_conds, "Progressing"), "message");
	struct kf_rollout *ro;
	char now[32], num[24];
	long revision = 0;

	json_object_del(kf_jmkobj(n, "metadata"), "managedFields");
	if (json_is_integer(kf_jget(n, "spec.replicas")))
		replicas = json_integer_value(kf_jget(n, "spec.replicas"));
	gen = json_integer_value(kf_jget(n, "metadata.generation"));
	template_hash(&hash, kf_jget(n, "spec.template"));
	rc_buf_printf(&rs, "%s-%s", o->name, hash.ptr);
	rc_buf_printf(&key, "%s/%s", o->ns, o->name);
	ro = rollout(srv, key.ptr);
	kf_time_now(now);

	/* the revision annotation: one more for every new template */
	ann = json_object_get(kf_jmkobj(n, "metadata"), "annotations");
	rev = json_string_value(
	    json_object_get(ann, "deployment.kubernetes.io/revision"));
	if (rev)
		revision = strtol(rev, NULL, 10);
	rc_buf_clear(&msg);
	rc_buf_printf(&msg, "\"%s\"", rs.ptr);
	if (!revision || !prog || !strstr(prog, msg.ptr))
		revision++;
	snprintf(num, sizeof(num), "%ld", revision);
	json_object_set_new(kf_jmkobj(n, "metadata.annotations"),
			    "deployment.kubernetes.io/revision",
			    json_string(num));

	st = json_object();
	json_object_set_new(st, "observedGeneration", json_integer(gen));
	set_count(st, "replicas", replicas);
	set_count(st, "updatedReplicas", replicas);
	conds = json_array();
	if (ro && (ro->fail || ro->stall)) {
		set_count(st, "unavailableReplicas", replicas);
		json_array_append_new(
		    conds, condition(old_conds, "Available", "False",
				     "MinimumReplicasUnavailable",
				     "Deployment does not have minimum "
				     "availability.",
				     now));
		rc_buf_clear(&msg);
		rc_buf_printf(&msg, "ReplicaSet \"%s\" %s.", rs.ptr,
			      ro->fail ? "has timed out progressing"
				       : "is progressing");
		json_array_append_new(
		    conds, condition(old_conds, "Progressing",
				     ro->fail ? "False" : "True",
				     ro->fail ? "ProgressDeadlineExceeded"
					      : "ReplicaSetUpdated",
				     msg.ptr, now));
	} else {
		set_count(st, "readyReplicas", replicas);
		set_count(st, "availableReplicas", replicas);
		json_array_append_new(
		    conds,
		    condition(old_conds, "Available", "True",
			      "MinimumReplicasAvailable",
			      "Deployment has minimum availability.", now));
		rc_buf_clear(&msg);
		rc_buf_printf(&msg,
			      "ReplicaSet \"%s\" has successfully "
			      "progressed.",
			      rs.ptr);
		json_array_append_new(
		    conds, condition(old_conds, "Progressing", "True",
				     "NewReplicaSetAvailable", msg.ptr, now));
	}
	json_object_set_new(st, "conditions", conds);
	json_object_set_new(n, "status", st);
	kf_write_update(srv, o->kind, o, n, "kube-controller-manager", &err);
	json_decref(err);
	rc_buf_release(&hash);
	rc_buf_release(&rs);
	rc_buf_release(&msg);
	rc_buf_release(&key);
}

/* ---- jobs ---- */

static void argv_line(rc_buf *out, json_t *container)
{
	json_t *v;
	size_t i;
	bool any = false;

	json_array_foreach(json_object_get(container, "command"), i, v) {
		rc_buf_printf(out, "%s%s", any ? " " : "",
			      json_string_value(v) ? json_string_value(v) : "");
		any = true;
	}
	json_array_foreach(json_object_get(container, "args"), i, v) {
		rc_buf_printf(out, "%s%s", any ? " " : "",
			      json_string_value(v) ? json_string_value(v) : "");
		any = true;
	}
	if (!any)
		rc_buf_puts(out, kf_jstr(container, "image")
				     ? kf_jstr(container, "image")
				     : "");
}

char *kf_pod_log(json_t *pod, long tail_lines)
{
	rc_buf all = RC_BUF_INIT;
	json_t *c = json_array_get(kf_jget(pod, "spec.containers"), 0);
	json_t *cs =
	    json_array_get(kf_jget(pod, "status.containerStatuses"), 0);
	json_t *term = kf_jget(cs, "state.terminated");
	size_t lines = 0, skip;
	const char *p;
	char *s;

	argv_line(&all, c);
	rc_buf_putc(&all, '\n');
	if (term)
		rc_buf_printf(
		    &all, "exit status %" JSON_INTEGER_FORMAT "\n",
		    json_integer_value(json_object_get(term, "exitCode")));
	if (tail_lines < 0)
		return rc_buf_detach(&all);
	for (p = all.ptr; *p; p++)
		if (*p == '\n')
			lines++;
	skip = lines > (size_t)tail_lines ? lines - (size_t)tail_lines : 0;
	for (p = all.ptr; skip && *p; p++)
		if (*p == '\n')
			skip--;
	s = rc_strdup(p);
	rc_buf_release(&all);
	return s;
}

static bool job_finished(json_t *job)
{
	json_t *conds = kf_jget(job, "status.conditions"), *c;
	size_t i;

	json_array_foreach(conds, i, c) {
		const char *t = kf_jstr(c, "type");

		if (t && (!strcmp(t, "Complete") || !strcmp(t, "Failed")))
			return true;
	}
	return false;
}

/* A Job whose command says "sleep N" (N seconds) is active that long
 * first: status.active 1 and startTime, looked at again when its time is
 * up. True while it sleeps. */
static bool job_sleeps(struct kf_server *srv, struct kf_obj *o,
		       const char *argv)
{
	const char *p = strstr(argv, "sleep ");
	const char *started = kf_jstr(o->json, "status.startTime");
	long secs = p ? strtol(p + 6, NULL, 10) : 0;
	struct tm tm = {0};
	long left;
	json_t *n, *err = NULL;
	char now[32];

	if (secs <= 0)
		return false;
	if (started) {
		if (!strptime(started, "%Y-%m-%dT%H:%M:%S", &tm))
			return false;
		left = (long)(timegm(&tm) + secs - time(NULL));
		if (left <= 0)
			return false;
		enqueue_in(srv, o, left * 1000);
		return true;
	}
	kf_time_now(now);
	n = json_deep_copy(o->json);
	json_object_del(kf_jmkobj(n, "metadata"), "managedFields");
	json_object_set_new(n, "status",
			    json_pack("{s:s, s:i}", "startTime", now, "active", 1));
	kf_write_update(srv, o->kind, o, n, "kube-controller-manager", &err);
	json_decref(err);
	o = kf_store_get(&srv->store, o->kind, o->ns, o->name);
	if (o)
		enqueue_in(srv, o, secs * 1000);
	return true;
}

static void run_job(struct kf_server *srv, struct kf_obj *o)
{
	const struct kf_kind *pods = kf_kind_named("pods");
	json_t *job = o->json, *pod, *n, *err = NULL, *c, *st, *labels, *spec;
	rc_buf argv = RC_BUF_INIT, name = RC_BUF_INIT, gen = RC_BUF_INIT;
	char now[32], suffix[6], cid[37];
	bool fail;
	int code;

	if (job_finished(job))
		return;
	c = json_array_get(kf_jget(job, "spec.template.spec.containers"), 0);
	argv_line(&argv, c);
	if (job_sleeps(srv, o, argv.ptr)) {
		rc_buf_release(&argv);
		return;
	}
	fail = strstr(argv.ptr, "fail") != NULL;
	code = fail ? 1 : 0;
	kf_time_now(now);
	kf_random_suffix(srv, suffix, 5);
	kf_uuid(cid);
	rc_buf_printf(&gen, "%s-", o->name);
	rc_buf_printf(&name, "%s%s", gen.ptr, suffix);

	labels = kf_jget(job, "spec.template.metadata.labels");
	labels = labels ? json_deep_copy(labels) : json_object();
	spec = kf_jget(job, "spec.template.spec");
	spec = spec ? json_deep_copy(spec) : json_object();
	pod = json_pack(
	    "{s:s,s:s,s:{s:s,s:s,s:s,s:o,s:[{s:s,s:s,s:s,s:s,s:b,s:b}]},"
	    "s:o}",
	    "apiVersion", "v1", "kind", "Pod", "metadata", "name", name.ptr,
	    "generateName", gen.ptr, "namespace", o->ns, "labels", labels,
	    "ownerReferences", "apiVersion", "batch/v1", "kind", "Job", "name",
	    o->name, "uid", kf_jstr(job, "metadata.uid"), "controller", 1,
	    "blockOwnerDeletion", 1, "spec", spec);
	json_object_set_new(json_object_get(pod, "spec"), "nodeName",
			    json_string("fake-node"));
	st = json_pack(
	    "{s:s,s:s,s:s,s:s,s:[{s:s,s:{s:{s:i,s:s,s:s,s:s,s:s}},s:{},"
	    "s:b,s:i,s:s,s:s,s:s,s:b}],s:s}",
	    "phase", fail ? "Failed" : "Succeeded", "hostIP", "10.0.0.2",
	    "podIP", "10.244.0.10", "startTime", now, "containerStatuses",
	    "name", kf_jstr(c, "name") ? kf_jstr(c, "name") : "job", "state",
	    "terminated", "exitCode", code, "reason",
	    fail ? "Error" : "Completed", "startedAt", now, "finishedAt", now,
	    "containerID", cid, "lastState", "ready", 0, "restartCount", 0,
	    "image", kf_jstr(c, "image") ? kf_jstr(c, "image") : "", "imageID",
	    "", "containerID", cid, "started", 0, "qosClass", "BestEffort");
	json_object_set_new(pod, "status", st);
	if (kf_write_create(srv, pods, pod, "kube-controller-manager", &err) <
	    0)
		json_decref(err);
	err = NULL;

	n = json_deep_copy(job);
	json_object_del(kf_jmkobj(n, "metadata"), "managedFields");
	if (fail)
		st = json_pack("{s:[{s:s,s:s,s:s,s:s,s:s,s:s}],s:s,s:i}",
			       "conditions", "type", "Failed", "status", "True",
			       "lastProbeTime", now, "lastTransitionTime", now,
			       "reason", "BackoffLimitExceeded", "message",
			       "Job has reached the specified backoff limit",
			       "startTime", now, "failed", 1);
	else
		st = json_pack("{s:[{s:s,s:s,s:s,s:s}],s:s,s:s,s:i}",
			       "conditions", "type", "Complete", "status",
			       "True", "lastProbeTime", now,
			       "lastTransitionTime", now, "startTime", now,
			       "completionTime", now, "succeeded", 1);
	json_object_set_new(n, "status", st);
	kf_write_update(srv, o->kind, o, n, "kube-controller-manager", &err);
	json_decref(err);
	rc_buf_release(&argv);
	rc_buf_release(&name);
	rc_buf_release(&gen);
}

/* ---- deletion ---- */

static bool has_string(json_t *arr, const char *s)
{
	json_t *v;
	size_t i;

	json_array_foreach(arr, i, v) if (str_eq(json_string_value(v), s))
	    return true;
	return false;
}

/* A copy of arr without s (new). */
static json_t *without(json_t *arr, const char *s)
{
	json_t *kept = json_array(), *v;
	size_t i;

	json_array_foreach(arr, i, v) if (!str_eq(json_string_value(v), s))
	    json_array_append(kept, v);
	return kept;
}

static bool owned_by(json_t *obj, const char *uid)
{
	json_t *ref;
	size_t i;

	json_array_foreach(kf_jget(obj, "metadata.ownerReferences"), i, ref)
	    if (str_eq(kf_jstr(ref, "uid"), uid)) return true;
	return false;
}

/* The objects of namespace ns, or those of them that owner_uid owns:
 * [[kind index, name], ...] (new). */
static json_t *objects_in(struct kf_server *srv, const char *ns,
			  const char *owner_uid)
{
	json_t *list = json_array();

	for (size_t k = 0; k < kf_nkinds; k++) {
		struct kf_index *ix;
		size_t lo, hi;

		if (!kf_kinds[k].namespaced)
			continue;
		ix = kf_store_index(&srv->store, &kf_kinds[k]);
		kf_ns_range(ix, ns, &lo, &hi);
		for (size_t i = lo; i < hi; i++)
			if (!owner_uid || owned_by(ix->v[i]->json, owner_uid))
				json_array_append_new(
				    list, json_pack("[i,s]", (int)k,
						    ix->v[i]->name));
	}
	return list;
}

static struct kf_obj *listed(struct kf_server *srv, const char *ns,
			     json_t *entry)
{
	return kf_store_get(
	    &srv->store,
	    &kf_kinds[json_integer_value(json_array_get(entry, 0))], ns,
	    json_string_value(json_array_get(entry, 1)));
}

/* Deletes what list names as the garbage collector and the namespace
 * controller do (in the background); what finalizers hold stays,
 * terminating. Returns what is left (new). */
static json_t *delete_listed(struct kf_server *srv, const char *ns,
			     json_t *list, const char *owner_uid)
{
	json_t *e;
	size_t i;

	json_array_foreach(list, i, e) {
		struct kf_obj *o = listed(srv, ns, e);

		if (!o || kf_jget(o->json, "metadata.deletionTimestamp"))
			continue;
		if (json_array_size(kf_jget(o->json, "metadata.finalizers")))
			kf_mark_deleting(srv, o, NULL, false);
		else
			kf_delete_now(srv, o, "Background");
	}
	return objects_in(srv, ns, owner_uid);
}

/* Whether the garbage collector may finish o now: at once, or, when it is
 * slowed, gc_delay_ms after what held o was first seen gone (o is looked
 * at again then). */
static bool gc_ready(struct kf_server *srv, struct kf_obj *o)
{
	if (srv->gc_delay_ms <= 0)
		return true;
	if (!o->gc_armed) {
		o->gc_armed = true;
		kf_deadline(&o->gc_due, srv->gc_delay_ms);
	}
	if (passed(&o->gc_due))
		return true;
	enqueue(srv, o, &o->gc_due);
	return false;
}

/* Something still holds o: look again after the controller delay. */
static void held(struct kf_server *srv, struct kf_obj *o)
{
	o->gc_armed = false;
	enqueue_in(srv, o, srv->controller_delay_ms);
}

static json_t *ns_condition(json_t *old_conds, const char *type, bool is_true,
			    const char *reason, const char *message,
			    const char *now)
{
	json_t *old = find_condition(old_conds, type);
	const char *status = is_true ? "True" : "False";
	bool same = old && str_eq(kf_jstr(old, "status"), status);

	return json_pack("{s:s,s:s,s:s,s:s,s:s}", "type", type, "status",
			 status, "lastTransitionTime",
			 same ? kf_jstr(old, "lastTransitionTime") : now,
			 "reason", reason, "message", message);
}

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* counts {"what": n} as "what<sep>n<unit>, ..." in key order. */
static void put_counts(rc_buf *out, json_t *counts, const char *sep,
		       const char *unit)
{
	const char **keys = rc_calloc(json_object_size(counts) + 1,
				      sizeof(char *));
	const char *k;
	json_t *v;
	size_t n = 0;

	json_object_foreach(counts, k, v) keys[n++] = k;
	qsort(keys, n, sizeof(*keys), cmp_cstr);
	for (size_t i = 0; i < n; i++)
		rc_buf_printf(out, "%s%s%s%" JSON_INTEGER_FORMAT "%s",
			      i ? ", " : "", keys[i], sep,
			      json_integer_value(json_object_get(counts,
								 keys[i])),
			      unit);
	free(keys);
}

static void count(json_t *counts, const char *key)
{
	json_object_set_new(
	    counts, key,
	    json_integer(json_integer_value(json_object_get(counts, key)) + 1));
}

/* The namespace controller's conditions, in its order: the message when
 * all is well, and (bad: 1 for what is left, 2 for its finalizers) the
 * reason when it is not. */
static const struct {
	const char *type, *ok_reason, *ok_message;
	int bad;
	const char *bad_reason;
} ns_conds[] = {
	{"NamespaceDeletionDiscoveryFailure", "ResourcesDiscovered",
	 "All resources successfully discovered", 0, NULL},
	{"NamespaceDeletionGroupVersionParsingFailure", "ParsedGroupVersions",
	 "All legacy kube types successfully parsed", 0, NULL},
	{"NamespaceDeletionContentFailure", "ContentDeleted",
	 "All content successfully deleted, may be waiting on finalization", 0,
	 NULL},
	{"NamespaceContentRemaining", "ContentRemoved",
	 "All content successfully removed", 1, "SomeResourcesRemain"},
	{"NamespaceFinalizersRemaining", "ContentHasNoFinalizers",
	 "All content-preserving finalizers finished", 2,
	 "SomeFinalizersRemain"},
};

/* The namespace controller's conditions on a terminating namespace, as
 * v1.19 words them, for the content left. */
static void ns_conditions(struct kf_server *srv, struct kf_obj *nso,
			  json_t *left)
{
	json_t *n = json_deep_copy(nso->json), *conds = json_array();
	json_t *old = kf_jget(nso->json, "status.conditions");
	json_t *by_res = json_object(), *by_fin = json_object(), *e, *f;
	json_t *err = NULL;
	rc_buf res = RC_BUF_INIT, fin = RC_BUF_INIT, key = RC_BUF_INIT;
	char now[32];
	size_t i, j;

	kf_time_now(now);
	json_array_foreach(left, i, e) {
		struct kf_obj *o = listed(srv, nso->name, e);

		if (!o)
			continue;
		rc_buf_clear(&key);
		rc_buf_printf(&key, "%s.%s", o->kind->resource,
			      o->kind->group);
		count(by_res, key.ptr);
		json_array_foreach(kf_jget(o->json, "metadata.finalizers"), j,
				   f) if (json_string_value(f))
		    count(by_fin, json_string_value(f));
	}
	rc_buf_puts(&res, "Some resources are remaining: ");
	put_counts(&res, by_res, " has ", " resource instances");
	rc_buf_puts(&fin, "Some content in the namespace has finalizers "
			  "remaining: ");
	put_counts(&fin, by_fin, " in ", " resource instances");
	for (i = 0; i < RC_ARRAY_SIZE(ns_conds); i++) {
		bool on = (ns_conds[i].bad == 1 && json_object_size(by_res)) ||
			  (ns_conds[i].bad == 2 && json_object_size(by_fin));

		json_array_append_new(
		    conds,
		    ns_condition(old, ns_conds[i].type, on,
				 on ? ns_conds[i].bad_reason
				    : ns_conds[i].ok_reason,
				 on ? (ns_conds[i].bad == 1 ? res.ptr : fin.ptr)
				    : ns_conds[i].ok_message,
				 now));
	}
	json_object_set_new(kf_jmkobj(n, "status"), "conditions", conds);
	json_object_del(kf_jmkobj(n, "metadata"), "managedFields");
	kf_write_update(srv, nso->kind, nso, n, "kube-controller-manager",
			&err);
	json_decref(err);
	json_decref(by_res);
	json_decref(by_fin);
	rc_buf_release(&res);
	rc_buf_release(&fin);
	rc_buf_release(&key);
}

/* The namespace controller: deletes what the namespace holds, reports
 * what is left, and once nothing is, removes its spec finalizer. True
 * when that is done. */
static bool finish_namespace(struct kf_server *srv, struct kf_obj *nso)
{
	json_t *all, *left, *n, *err = NULL;

	if (!has_string(kf_jget(nso->json, "spec.finalizers"), "kubernetes"))
		return true;
	all = objects_in(srv, nso->name, NULL);
	left = delete_listed(srv, nso->name, all, NULL);
	ns_conditions(srv, nso, left);
	json_decref(all);
	if (json_array_size(left)) {
		json_decref(left);
		held(srv, nso);
		return false;
	}
	json_decref(left);
	if (!gc_ready(srv, nso))
		return false;
	n = json_deep_copy(nso->json);
	json_object_set_new(
	    kf_jmkobj(n, "spec"), "finalizers",
	    without(kf_jget(nso->json, "spec.finalizers"), "kubernetes"));
	if (!json_array_size(kf_jget(n, "spec.finalizers")))
		json_object_del(kf_jmkobj(n, "spec"), "finalizers");
	json_object_del(kf_jmkobj(n, "metadata"), "managedFields");
	kf_write_update(srv, nso->kind, nso, n, "kube-controller-manager",
			&err);
	json_decref(err);
	return true;
}

/* Removes the foregroundDeletion finalizer; with no finalizer left, the
 * write removes o. */
static void drop_foreground(struct kf_server *srv, struct kf_obj *o)
{
	json_t *n = json_deep_copy(o->json), *err = NULL;

	json_object_set_new(
	    kf_jmkobj(n, "metadata"), "finalizers",
	    without(kf_jget(o->json, "metadata.finalizers"),
		    "foregroundDeletion"));
	json_object_del(kf_jmkobj(n, "metadata"), "managedFields");
	kf_write_update(srv, o->kind, o, n, "kube-controller-manager", &err);
	json_decref(err);
}

/* The garbage collector's foreground deletion: the dependents first (in
 * o's namespace, by owner reference), then o. */
static void finish_foreground(struct kf_server *srv, struct kf_obj *o)
{
	json_t *deps, *left;
	char *uid = rc_strdup(kf_jstr(o->json, "metadata.uid")
				  ? kf_jstr(o->json, "metadata.uid")
				  : "");

	if (*o->ns) {
		deps = objects_in(srv, o->ns, uid);
		left = delete_listed(srv, o->ns, deps, uid);
		json_decref(deps);
		if (json_array_size(left)) {
			json_decref(left);
			free(uid);
			held(srv, o);
			return;
		}
		json_decref(left);
	}
	free(uid);
	if (gc_ready(srv, o))
		drop_foreground(srv, o);
}

static void process(struct kf_server *srv, struct kf_work *w)
{
	struct kf_obj *o = kf_store_get(&srv->store, w->kind, w->ns, w->name);

	if (!o)
		return;
	if (kf_jget(o->json, "metadata.deletionTimestamp")) {
		if (!strcmp(o->kind->kind, "Namespace")) {
			/* a namespace owns nothing: the garbage collector
			 * drops its foreground finalizer at once, and the
			 * namespace controller does the rest */
			if (has_string(kf_jget(o->json, "metadata.finalizers"),
				       "foregroundDeletion"))
				drop_foreground(srv, o);
			/* it may be gone with its last finalizer */
			o = kf_store_get(&srv->store, w->kind, w->ns, w->name);
			if (!o || !finish_namespace(srv, o))
				return;
			o = kf_store_get(&srv->store, w->kind, w->ns, w->name);
			if (!o)
				return;
		}
		if (has_string(kf_jget(o->json, "metadata.finalizers"),
			       "foregroundDeletion"))
			finish_foreground(srv, o);
		else if (!json_array_size(kf_jget(o->json, "metadata.finalizers")) &&
			 !json_array_size(kf_jget(o->json, "spec.finalizers")))
			kf_delete_now(srv, o, "Background");
		return;
	}
	if (!strcmp(o->kind->kind, "Deployment"))
		sync_deployment(srv, o);
	else if (!strcmp(o->kind->kind, "Job"))
		run_job(srv, o);
}

static void *ctl_main(void *arg)
{
	struct kf_server *srv = arg;

	pthread_mutex_lock(&srv->lock);
	while (!srv->stopping) {
		struct kf_work w;
		struct kf_obj *o;

		if (srv->headwork == srv->nwork) {
			srv->headwork = srv->nwork = 0;
			pthread_cond_wait(&srv->ctl_wake, &srv->lock);
			continue;
		}
		if (!passed(&srv->work[srv->headwork].due)) {
			kf_wait_until(srv, &srv->ctl_wake,
				      &srv->work[srv->headwork].due);
			continue;
		}
		w = srv->work[srv->headwork++];
		o = kf_store_get(&srv->store, w.kind, w.ns, w.name);
		if (o)
			o->queued = false;
		quiet = true;
		process(srv, &w);
		quiet = false;
		free(w.ns);
		free(w.name);
		pthread_cond_broadcast(&srv->changed);
	}
	pthread_mutex_unlock(&srv->lock);
	return NULL;
}

void kf_ctl_start(struct kf_server *srv)
{
	if (pthread_create(&srv->ctl_thread, NULL, ctl_main, srv)) {
		fprintf(stderr, "rc_fake_kube: cannot start the controllers\n");
		exit(1);
	}
}

void kf_ctl_stop(struct kf_server *srv)
{
	pthread_mutex_lock(&srv->lock);
	pthread_cond_broadcast(&srv->ctl_wake);
	pthread_mutex_unlock(&srv->lock);
	pthread_join(srv->ctl_thread, NULL);
}

void kf_ctl_release(struct kf_server *srv)
{
	for (size_t i = srv->headwork; i < srv->nwork; i++) {
		free(srv->work[i].ns);
		free(srv->work[i].name);
	}
	free(srv->work);
	for (size_t i = 0; i < srv->nrollouts; i++)
		free(srv->rollouts[i].key);
	free(srv->rollouts);
}
