/*
 * The ECS driver's mapping: see drivers/ecs_map.h and docs/drivers/ecs.md.
 */
#include "drivers/ecs_map.h"
#include "drivers/ecs_secrets.h"

#include "reconciler/base/buf.h"
#include "schema/emit.h"

static const char *sget(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

char *rc_ecs_family(const char *project, const char *env, const char *svc)
{
	rc_buf b = RC_BUF_INIT_MAX(1024);

	rc_buf_printf(&b, "%s-%s-%s", project, env, svc);
	return rc_buf_detach(&b);
}

char *rc_ecs_cluster_name(const char *project, const rc_env *env)
{
	rc_buf b = RC_BUF_INIT_MAX(1024);

	if (env->target.cluster)
		return rc_strdup(env->target.cluster);
	rc_buf_printf(&b, "%s-%s", project, env->name);
	return rc_buf_detach(&b);
}

const char *rc_ecs_arn_name(const char *arn)
{
	const char *s;

	if (!arn)
		return "";
	s = strrchr(arn, '/');
	return s ? s + 1 : arn;
}

char *rc_ecs_td_family(const char *ref)
{
	const char *s = rc_ecs_arn_name(ref);
	const char *c = strrchr(s, ':');
	rc_buf b = RC_BUF_INIT_MAX(1024);

	rc_buf_put(&b, s, c ? (size_t)(c - s) : strlen(s));
	return rc_buf_detach(&b);
}

static json_t *strv(const rc_argv *v)
{
	json_t *a = json_array();

	for (size_t i = 0; i < v->n; i++)
		json_array_append_new(a, json_string(v->v[i]));
	return a;
}

/* Merges src's members into dst, objects recursively. */
static void merge_into(json_t *dst, const json_t *src)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)(uintptr_t)src, k, v) {
		json_t *cur = json_object_get(dst, k);

		if (json_is_object(cur) && json_is_object(v))
			merge_into(cur, v);
		else
			json_object_set_new(dst, k, json_deep_copy(v));
	}
}

static json_t *health_json(const rc_service *s)
{
	const rc_health *h = &s->health;
	json_t *hc, *cmd;

	if (h->kind == RC_HEALTH_COMMAND) {
		cmd = json_array();
		json_array_append_new(cmd, json_string("CMD"));
		for (size_t i = 0; i < h->command.n; i++)
			json_array_append_new(cmd, json_string(h->command.v[i]));
	} else if (h->kind == RC_HEALTH_HTTP && s->port) {
		rc_buf b = RC_BUF_INIT_MAX(4096);

		rc_buf_printf(&b, "curl -fsS http://localhost:%d%s || exit 1",
			      s->port, h->http_path ? h->http_path : "/");
		cmd = json_pack("[s, s]", "CMD-SHELL", b.ptr);
		rc_buf_release(&b);
	} else if (h->kind == RC_HEALTH_TCP && s->port) {
		rc_buf b = RC_BUF_INIT_MAX(4096);

		/* ECS has no TCP check of its own: a shell probe */
		rc_buf_printf(&b, "nc -z localhost %d || exit 1", s->port);
		cmd = json_pack("[s, s]", "CMD-SHELL", b.ptr);
		rc_buf_release(&b);
	} else {
		return NULL;
	}
	hc = json_pack("{s:o}", "command", cmd);
	if (h->interval > 0)
		json_object_set_new(hc, "interval", json_integer(h->interval));
	if (h->timeout > 0)
		json_object_set_new(hc, "timeout", json_integer(h->timeout));
	if (h->retries > 0)
		json_object_set_new(hc, "retries", json_integer(h->retries));
	if (h->grace > 0)
		json_object_set_new(hc, "startPeriod", json_integer(h->grace));
	return hc;
}

static json_t *taskdef_body(const rc_env *env, const rc_service *s,
			    const char *family, const json_t *native)
{
	json_t *td = json_object(), *c = json_object(), *envm = json_object();
	const rc_target *t = &env->target;
	json_t *hc;
	size_t i;

	json_object_set_new(td, "family", json_string(family));
	json_object_set_new(td, "networkMode", json_string("awsvpc"));
	json_object_set_new(td, "requiresCompatibilities",
			    json_pack("[s]", t->launch_type ? t->launch_type
							    : "FARGATE"));
	if (s->cpu_millis > 0) {
		rc_buf b = RC_BUF_INIT_MAX(64);

		rc_buf_printf(&b, "%ld", (s->cpu_millis * 1024 + 500) / 1000);
		json_object_set_new(td, "cpu", json_string(b.ptr));
		rc_buf_release(&b);
	}
	if (s->memory > 0) {
		rc_buf b = RC_BUF_INIT_MAX(64);

		rc_buf_printf(&b, "%lld", s->memory / (1024 * 1024));
		json_object_set_new(td, "memory", json_string(b.ptr));
		rc_buf_release(&b);
	}
	if (t->execution_role_arn)
		json_object_set_new(td, "executionRoleArn",
				    json_string(t->execution_role_arn));
	json_object_set_new(c, "image", json_string(s->image ? s->image : ""));
	if (s->command.n)
		json_object_set_new(c, "entryPoint", strv(&s->command));
	if (s->args.n)
		json_object_set_new(c, "command", strv(&s->args));
	if (s->port) {
		rc_buf b = RC_BUF_INIT_MAX(64);

		rc_buf_printf(&b, "%d", s->port);
		json_object_set_new(c, "portMappings",
				    json_pack("{s:{s:i}}", b.ptr,
					      "containerPort", s->port));
		rc_buf_release(&b);
	}
	for (i = 0; i < env->config.n; i++)
		json_object_set_new(envm, env->config.items[i].key,
				    json_string(env->config.items[i].value));
	for (i = 0; i < s->env.n; i++)
		json_object_set_new(envm, s->env.items[i].key,
				    json_string(s->env.items[i].value));
	json_object_set_new(c, "environment", envm);
	if ((hc = health_json(s)))
		json_object_set_new(c, "healthCheck", hc);
	if (json_is_object(json_object_get(native, "container")))
		merge_into(c, json_object_get(native, "container"));
	json_object_set_new(td, "containers", json_pack("{s:o}", s->name, c));
	if (json_is_object(json_object_get(native, "task_definition")))
		merge_into(td, json_object_get(native, "task_definition"));
	rc_ecs_normalize(RC_ECS_TASKDEF, td);
	return td;
}

static json_t *service_body(const rc_env *env, const rc_service *s,
			    const char *cluster, const char *family,
			    const json_t *native)
{
	const rc_target *t = &env->target;
	json_t *b = json_object();

	json_object_set_new(b, "cluster", json_string(cluster));
	json_object_set_new(b, "taskDefinition", json_string(family));
	json_object_set_new(b, "desiredCount", json_integer(s->replicas));
	json_object_set_new(b, "launchType",
			    json_string(t->launch_type ? t->launch_type
						       : "FARGATE"));
	json_object_set_new(
		b, "networkConfiguration",
		json_pack("{s:{s:o, s:o, s:s}}", "awsvpcConfiguration",
			  "subnets", strv(&t->subnets), "securityGroups",
			  strv(&t->security_groups), "assignPublicIp",
			  t->assign_public_ip == 1 ? "ENABLED" : "DISABLED"));
	json_object_set_new(b, "deploymentConfiguration",
			    json_pack("{s:{s:b, s:b}}",
				      "deploymentCircuitBreaker", "enable", 1,
				      "rollback", 1));
	if (json_is_string(json_object_get(native, "target_group")) &&
	    s->port) {
		/* validated by the loader: an ARN, and the service has a port */
		json_object_set_new(
			b, "loadBalancers",
			json_pack("[{s:O, s:s, s:i}]", "targetGroupArn",
				  json_object_get(native, "target_group"),
				  "containerName", s->name, "containerPort",
				  s->port));
		if (s->health.grace > 0)
			json_object_set_new(b, "healthCheckGracePeriodSeconds",
					    json_integer(s->health.grace));
	}
	if (json_is_object(json_object_get(native, "service")))
		merge_into(b, json_object_get(native, "service"));
	rc_ecs_normalize(RC_ECS_SERVICE, b);
	return b;
}

int rc_ecs_expand(const rc_env *env, const char *project,
		  rc_resource_set *out)
{
	char *cluster = rc_ecs_cluster_name(project, env);
	rc_buf ckey = RC_BUF_INIT_MAX(1024), k = RC_BUF_INIT_MAX(1024);
	rc_resource *r;
	int rc = 0;

	r = rc_resource_set_add(out, env->name, RC_ECS_DRIVER, RC_ECS_CLUSTER,
				cluster,
				json_pack("{s:s}", "clusterName", cluster));
	r->loc = env->target.loc;
	rc_buf_printf(&ckey, "%s/%s/%s", env->name, RC_ECS_CLUSTER, cluster);
	for (size_t i = 0; i < env->nservices; i++) {
		const rc_service *s = &env->services[i];
		char *fam = rc_ecs_family(project, env->name, s->name);
		json_t *native = s->native ? rc_node_to_json(s->native) : NULL;

		r = rc_resource_set_add(out, env->name, RC_ECS_DRIVER,
					RC_ECS_TASKDEF, s->name,
					taskdef_body(env, s, fam, native));
		r->loc = s->loc;
		rc_buf_clear(&k);
		rc_buf_printf(&k, "%s/%s/%s", env->name, RC_ECS_TASKDEF,
			      s->name);
		r = rc_resource_set_add(
			out, env->name, RC_ECS_DRIVER, RC_ECS_SERVICE, s->name,
			service_body(env, s, cluster, fam, native));
		r->loc = s->loc;
		rc_resource_add_dep(r, ckey.ptr);
		rc_resource_add_dep(r, k.ptr);
		json_decref(native);
		free(fam);
	}
	rc_buf_release(&ckey);
	rc_buf_release(&k);
	free(cluster);
	return rc;
}

/* ----------------------------------------------------------- normal form */

static void drop(json_t *o, const char *k, json_t *dflt)
{
	json_t *v = json_object_get(o, k);

	if (v && json_equal(v, dflt))
		json_object_del(o, k);
	json_decref(dflt);
}

/* Removes empty arrays, empty objects and nulls, recursively. */
static void prune_empty(json_t *v)
{
	const char *k;
	json_t *c;
	void *tmp;
	size_t i;

	if (json_is_object(v)) {
		json_object_foreach_safe(v, tmp, k, c) {
			prune_empty(c);
			if (json_is_null(c) ||
			    (json_is_object(c) && !json_object_size(c)) ||
			    (json_is_array(c) && !json_array_size(c)))
				json_object_del(v, k);
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, c)
			prune_empty(c);
	}
}

static void stringify(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	if (json_is_integer(v)) {
		rc_buf b = RC_BUF_INIT_MAX(64);

		rc_buf_printf(&b, "%lld", (long long)json_integer_value(v));
		json_object_set_new(o, k, json_string(b.ptr));
		rc_buf_release(&b);
	}
}

static int cmp_str(const void *a, const void *b)
{
	const char *x = json_string_value(*(json_t *const *)a);
	const char *y = json_string_value(*(json_t *const *)b);

	return strcmp(x ? x : "", y ? y : "");
}

/* Sorts a JSON array in place by cmp. */
static void sort_with(json_t *a, int (*cmp)(const void *, const void *))
{
	size_t n = json_array_size(a), i;
	json_t **v;

	if (n < 2)
		return;
	v = rc_calloc(n, sizeof(*v));
	for (i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(a, i));
	qsort(v, n, sizeof(*v), cmp);
	json_array_clear(a);
	for (i = 0; i < n; i++)
		json_array_append_new(a, v[i]);
	free(v);
}

static void sort_strings(json_t *a)
{
	sort_with(a, cmp_str);
}

static int cmp_text(const void *a, const void *b)
{
	char *x = json_dumps(*(json_t *const *)a, JSON_SORT_KEYS | JSON_COMPACT);
	char *y = json_dumps(*(json_t *const *)b, JSON_SORT_KEYS | JSON_COMPACT);
	int r = strcmp(x ? x : "", y ? y : "");

	free(x);
	free(y);
	return r;
}

/* Sorts a list of objects (load balancers) by their canonical text: the
 * order ECS answers in is not the order given. */
static void sort_by_text(json_t *a)
{
	sort_with(a, cmp_text);
}

static void normalize_container(json_t *c)
{
	json_t *pms = json_object_get(c, "portMappings"), *pm, *hc;
	const char *k;

	drop(c, "cpu", json_integer(0));
	drop(c, "essential", json_true());
	rc_ecs_secrets_normalize(c); /* drivers/ecs_secrets.c */
	json_object_foreach(pms, k, pm) {
		json_t *cp = json_object_get(pm, "containerPort");

		if (cp && json_equal(json_object_get(pm, "hostPort"), cp))
			json_object_del(pm, "hostPort");
		drop(pm, "protocol", json_string("tcp"));
	}
	if ((hc = json_object_get(c, "healthCheck"))) {
		drop(hc, "interval", json_integer(30));
		drop(hc, "timeout", json_integer(5));
		drop(hc, "retries", json_integer(3));
		drop(hc, "startPeriod", json_integer(0));
	}
}

void rc_ecs_normalize(const char *kind, json_t *body)
{
	static const char *const td_server[] = {
		"taskDefinitionArn", "revision", "status", "requiresAttributes",
		"compatibilities", "registeredAt", "registeredBy",
		"deregisteredAt"};
	json_t *v;
	const char *k;

	if (!json_is_object(body))
		return;
	if (!strcmp(kind, RC_ECS_TASKDEF)) {
		for (size_t i = 0; i < RC_ARRAY_SIZE(td_server); i++)
			json_object_del(body, td_server[i]);
		stringify(body, "cpu");
		stringify(body, "memory");
		json_object_foreach(json_object_get(body, "containers"), k, v)
			normalize_container(v);
	} else if (!strcmp(kind, RC_ECS_SERVICE)) {
		json_t *dc = json_object_get(body, "deploymentConfiguration");
		json_t *vpc = json_object_get(
			json_object_get(body, "networkConfiguration"),
			"awsvpcConfiguration");

		if (dc) {
			drop(dc, "maximumPercent", json_integer(200));
			drop(dc, "minimumHealthyPercent", json_integer(100));
			drop(dc, "deploymentCircuitBreaker",
			     json_pack("{s:b, s:b}", "enable", 0, "rollback", 0));
		}
		sort_by_text(json_object_get(body, "loadBalancers"));
		drop(body, "healthCheckGracePeriodSeconds", json_integer(0));
		if (vpc) {
			sort_strings(json_object_get(vpc, "subnets"));
			sort_strings(json_object_get(vpc, "securityGroups"));
			drop(vpc, "assignPublicIp", json_string("DISABLED"));
		}
	}
	prune_empty(body);
}

/* [{name, value}] -> {name: value} */
static json_t *kv_map(const json_t *list)
{
	json_t *m = json_object(), *e;
	size_t i;

	json_array_foreach(list, i, e)
		if (sget(e, "name"))
			json_object_set(m, sget(e, "name"),
					json_object_get(e, "value"));
	return m;
}

json_t *rc_ecs_taskdef_from_api(const json_t *td)
{
	json_t *b = json_deep_copy(td), *cs = json_object(), *c;
	size_t i;

	json_array_foreach(json_object_get(td, "containerDefinitions"), i, c) {
		json_t *n = json_deep_copy(c), *pms = json_object(), *pm;
		size_t j;

		json_array_foreach(json_object_get(c, "portMappings"), j, pm) {
			rc_buf kb = RC_BUF_INIT_MAX(64);

			rc_buf_printf(&kb, "%lld",
				      (long long)json_integer_value(
					      json_object_get(pm, "containerPort")));
			json_object_set_new(pms, kb.ptr, json_deep_copy(pm));
			rc_buf_release(&kb);
		}
		json_object_set_new(n, "portMappings", pms);
		json_object_set_new(n, "environment",
				    kv_map(json_object_get(c, "environment")));
		json_object_del(n, "name");
		json_object_set_new(cs, sget(c, "name") ? sget(c, "name") : "",
				    n);
	}
	json_object_del(b, "containerDefinitions");
	json_object_set_new(b, "containers", cs);
	rc_ecs_normalize(RC_ECS_TASKDEF, b);
	return b;
}

json_t *rc_ecs_taskdef_request(const json_t *body)
{
	json_t *r = json_deep_copy(body), *list = json_array(), *c;
	const char *k;

	json_object_foreach(json_object_get(body, "containers"), k, c) {
		json_t *n = json_deep_copy(c), *pms = json_array(),
		       *envl = json_array(), *v;
		const char *k2;

		json_object_set_new(n, "name", json_string(k));
		json_object_foreach(json_object_get(c, "portMappings"), k2, v)
			json_array_append_new(pms, json_deep_copy(v));
		json_object_foreach(json_object_get(c, "environment"), k2, v)
			json_array_append_new(envl,
					      json_pack("{s:s, s:O}", "name",
							k2, "value", v));
		json_object_set_new(n, "portMappings", pms);
		json_object_set_new(n, "environment", envl);
		json_array_append_new(list, n);
	}
	json_object_del(r, "containers");
	json_object_set_new(r, "containerDefinitions", list);
	return r;
}

json_t *rc_ecs_service_from_api(const json_t *svc, const json_t *desired)
{
	static const char *const std[] = {"cluster", "taskDefinition",
					  "desiredCount", "launchType",
					  "networkConfiguration",
					  "deploymentConfiguration"};
	json_t *b = json_object(), *v;
	const char *k;
	char *fam = rc_ecs_td_family(sget(svc, "taskDefinition"));

	if (desired) {
		json_object_foreach((json_t *)(uintptr_t)desired, k, v)
			if (json_object_get(svc, k))
				json_object_set_new(
					b, k,
					json_deep_copy(json_object_get(svc, k)));
	} else {
		for (size_t i = 0; i < RC_ARRAY_SIZE(std); i++)
			if (json_object_get(svc, std[i]))
				json_object_set_new(
					b, std[i],
					json_deep_copy(json_object_get(svc, std[i])));
	}
	json_object_set_new(b, "cluster",
			    json_string(rc_ecs_arn_name(sget(svc, "clusterArn"))));
	json_object_set_new(b, "taskDefinition", json_string(fam));
	free(fam);
	rc_ecs_normalize(RC_ECS_SERVICE, b);
	return b;
}

/* ------------------------------------------------ immutable, health */

bool rc_ecs_immutable(const char *kind, const char *path)
{
	/* CreateService's members that UpdateService does not take
	 * (ecs-service-2.json): a change of these is a new service */
	static const char *const svc_fixed[] = {
		"/launchType", "/schedulingStrategy", "/deploymentController",
		"/role", "/serviceName"};

	if (!kind || !path)
		return false;
	if (!strcmp(kind, RC_ECS_SERVICE)) {
		for (size_t i = 0; i < RC_ARRAY_SIZE(svc_fixed); i++) {
			size_t n = strlen(svc_fixed[i]);

			if (!strncmp(path, svc_fixed[i], n) &&
			    (path[n] == 0 || path[n] == '/'))
				return true;
		}
	} else if (!strcmp(kind, RC_ECS_CLUSTER)) {
		return !strcmp(path, "/clusterName");
	}
	return false; /* a task definition changes by a new revision */
}

char *rc_ecs_service_health(const json_t *svc, bool *unhealthy)
{
	rc_buf b = RC_BUF_INIT_MAX(256);
	const json_t *dep;
	bool deploying = false, failed = false;
	json_int_t running = json_integer_value(
			   json_object_get(svc, "runningCount")),
		   desired = json_integer_value(
			   json_object_get(svc, "desiredCount"));
	size_t i;

	json_array_foreach(json_object_get(svc, "deployments"), i, dep) {
		const char *rs = sget(dep, "rolloutState");

		if (rs && !strcmp(rs, "IN_PROGRESS"))
			deploying = true;
		if (rs && !strcmp(rs, "FAILED") && sget(dep, "status") &&
		    !strcmp(sget(dep, "status"), "PRIMARY"))
			failed = true;
	}
	rc_buf_printf(&b, "running %lld/%lld", (long long)running,
		      (long long)desired);
	if (deploying)
		rc_buf_puts(&b, ", deploying");
	if (failed)
		rc_buf_puts(&b, ", rollout failed");
	*unhealthy = failed || (running < desired && !deploying);
	return rc_buf_detach(&b);
}
