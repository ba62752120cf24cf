/*
 * Stand-ins for the controllers a test cluster runs, on one thread: the
 * deployment controller (status, conditions, the revision annotation),
 * the Job controller (one Pod per Job, completed or failed), namespace
 * deletion and foreground deletion. Each looks at an object once the
 * controller delay has passed after the object changed.
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

void kf_ctl_notify(struct kf_server *srv, const struct kf_kind *k,
		   const char *ns, const char *name)
{
	struct kf_obj *o;
	struct kf_work *w;

	if (quiet)
		return;
	o = kf_store_get(&srv->store, k, ns, name);
	if (!o || o->queued)
		return;
	if (!watched_kind(k) && !kf_jget(o->json, "metadata.deletionTimestamp"))
		return;
	o->queued = true;
	if (srv->headwork && srv->nwork == srv->capwork) {
		memmove(srv->work, srv->work + srv->headwork,
			(srv->nwork - srv->headwork) * sizeof(*srv->work));
		srv->nwork -= srv->headwork;
		srv->headwork = 0;
	}
	RC_GROW(srv->work, srv->capwork, srv->nwork + 1);
	w = &srv->work[srv->nwork++];
	w->kind = k;
	w->ns = rc_strdup(ns ? ns : "");
	w->name = rc_strdup(name);
	kf_deadline(&w->due, srv->controller_delay_ms);
	pthread_cond_signal(&srv->ctl_wake);
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

static void finish_namespace(struct kf_server *srv, struct kf_obj *nso)
{
	char *ns = rc_strdup(nso->name);

	for (size_t k = 0; k < kf_nkinds; k++) {
		const struct kf_kind *kind = &kf_kinds[k];
		struct kf_index *ix = kf_store_index(&srv->store, kind);
		rc_buf lo = RC_BUF_INIT;

		if (!kind->namespaced)
			continue;
		rc_buf_printf(&lo, "%s/", ns);
		for (;;) {
			size_t at = kf_index_lower(ix, lo.ptr, lo.len);

			if (at >= ix->n ||
			    strncmp(ix->v[at]->key, lo.ptr, lo.len))
				break;
			kf_delete_now(srv, ix->v[at], "Background");
		}
		rc_buf_release(&lo);
	}
	nso = kf_store_get(&srv->store, kf_kind_named("namespaces"), NULL, ns);
	if (nso)
		kf_store_remove(&srv->store, nso);
	free(ns);
}

static void finish_foreground(struct kf_server *srv, struct kf_obj *o)
{
	json_t *n = json_deep_copy(o->json), *fin, *f, *kept, *err = NULL;
	size_t i;

	fin = kf_jget(n, "metadata.finalizers");
	kept = json_array();
	json_array_foreach(
	    fin, i, f) if (!str_eq(json_string_value(f), "foregroundDeletion"))
	    json_array_append(kept, f);
	if (!json_array_size(kept)) {
		json_decref(kept);
		json_decref(n);
		kf_delete_now(srv, o, "Foreground");
		return;
	}
	json_object_set_new(kf_jmkobj(n, "metadata"), "finalizers", kept);
	json_object_del(kf_jmkobj(n, "metadata"), "managedFields");
	kf_write_update(srv, o->kind, o, n, "kube-controller-manager", &err);
	json_decref(err);
}

static void process(struct kf_server *srv, struct kf_work *w)
{
	struct kf_obj *o = kf_store_get(&srv->store, w->kind, w->ns, w->name);
	json_t *fin;
	size_t i;
	json_t *f;
	bool foreground = false;

	if (!o)
		return;
	if (kf_jget(o->json, "metadata.deletionTimestamp")) {
		if (!strcmp(o->kind->kind, "Namespace")) {
			finish_namespace(srv, o);
			return;
		}
		fin = kf_jget(o->json, "metadata.finalizers");
		json_array_foreach(fin, i, f) if (str_eq(json_string_value(f),
							 "foregroundDeletion"))
		    foreground = true;
		if (foreground)
			finish_foreground(srv, o);
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
