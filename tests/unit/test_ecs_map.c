/* The ECS driver's mapping (drivers/ecs_map.c): expand of tests/ecs's
 * configuration, Fargate units, the normal form (the fake ECS's
 * DescribeTaskDefinition and DescribeServices answers for what the driver
 * registered and created normalise equal to the desired bodies), request
 * bodies, names; the secrets (drivers/ecs_secrets.c): resources, the
 * containers' references, the services' digests, their normal form. */
#include "tests/unit/helpers.h"
#include "drivers/ecs_map.h"
#include "drivers/ecs_secrets.h"
#include "schema/secrets.h"

static json_t *J(const char *text)
{
	json_error_t e;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &e);

	if (!v)
		fail_msg("bad JSON in a test: %s: %s", e.text, text);
	return v;
}

static void assert_json_eq(const json_t *got, const json_t *want)
{
	char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
	char *w = json_dumps(want, JSON_SORT_KEYS | JSON_COMPACT);

	if (!json_equal((json_t *)(uintptr_t)got, (json_t *)(uintptr_t)want))
		fail_msg("got  %s\nwant %s", g, w);
	free(g);
	free(w);
}

/* got equals the JSON text want. */
static void assert_json_is(const json_t *got, const char *want)
{
	json_t *w = J(want);

	assert_json_eq(got, w);
	json_decref(w);
}

static rc_config *load_e2e(void)
{
	const char *tail = strstr(__FILE__, "/tests/unit/");
	rc_buf dir = RC_BUF_INIT;
	rc_config *cfg = NULL;
	char *diag;
	int rc;

	assert_non_null(tail);
	rc_buf_printf(&dir, "%.*s/tests/ecs", (int)(tail - __FILE__), __FILE__);
	diag = load_dir(dir.ptr, true, &cfg, &rc);
	rc_buf_release(&dir);
	if (rc != 0)
		fail_msg("%s", diag);
	free(diag);
	return cfg;
}

static void names(void **state)
{
	char *s;

	(void)state;
	s = rc_ecs_family("shop", "dev", "api");
	assert_string_equal(s, "shop-dev-api");
	free(s);
	s = rc_ecs_td_family(
		"arn:aws:ecs:us-east-1:123456789012:task-definition/shop-dev-api:7");
	assert_string_equal(s, "shop-dev-api");
	free(s);
	s = rc_ecs_td_family("shop-dev-api");
	assert_string_equal(s, "shop-dev-api");
	free(s);
	assert_string_equal(
		rc_ecs_arn_name("arn:aws:ecs:us-east-1:1:cluster/shop-dev"),
		"shop-dev");
}

static void expand_and_units(void **state)
{
	rc_config *cfg = load_e2e();
	rc_resource_set set = {0};
	rc_resource *r;
	json_t *want;

	(void)state;
	assert_int_equal(rc_ecs_expand(rc_config_env(cfg, "dev"), cfg->project,
				       &set),
			 0);
	assert_int_equal(set.n, 5);
	assert_non_null(rc_resource_set_find(&set, "dev/cluster/shop-dev"));
	r = rc_resource_set_find(&set, "dev/task-definition/api");
	assert_non_null(r);
	want = J("{\"family\": \"shop-dev-api\", \"networkMode\": \"awsvpc\","
		 " \"requiresCompatibilities\": [\"FARGATE\"], \"cpu\": \"512\","
		 " \"memory\": \"1024\", \"executionRoleArn\":"
		 " \"arn:aws:iam::123456789012:role/shop-exec\","
		 " \"containers\": {\"api\": {\"image\":"
		 " \"123456789012.dkr.ecr.us-east-1.amazonaws.com/api:1.0.0\","
		 " \"portMappings\": {\"8080\": {\"containerPort\": 8080}},"
		 " \"environment\": {\"LOG_LEVEL\": \"info\", \"ROLE\": \"api\"},"
		 " \"healthCheck\": {\"command\": [\"CMD\", \"/bin/check\","
		 " \"--quick\"], \"interval\": 15, \"timeout\": 2},"
		 " \"logConfiguration\": {\"logDriver\": \"awslogs\", \"options\":"
		 " {\"awslogs-group\": \"/ecs/shop-dev\", \"awslogs-region\":"
		 " \"us-east-1\", \"awslogs-stream-prefix\": \"ecs\"}}}}}");
	assert_json_eq(r->body, want);
	json_decref(want);
	r = rc_resource_set_find(&set, "dev/task-definition/worker");
	assert_string_equal(json_string_value(json_object_get(r->body, "cpu")),
			    "256"); /* 0.25 vCPU */
	assert_string_equal(
		json_string_value(json_object_get(r->body, "memory")), "512");
	r = rc_resource_set_find(&set, "dev/service/api");
	assert_non_null(r);
	assert_int_equal(r->ndeps, 2); /* its cluster and task definition */
	assert_int_equal(json_integer_value(json_object_get(r->body,
							    "desiredCount")),
			 2);
	rc_resource_set_release(&set);
	rc_config_free(cfg);
}

/* What the fake ECS (tests/fake/ecs/state.py) answers for the worker's
 * registration, and for the api service it created. */
static const char *const FAKE_TD =
	"{\"taskDefinitionArn\": \"arn:aws:ecs:us-east-1:123456789012:"
	"task-definition/shop-dev-worker:1\", \"containerDefinitions\": [{"
	"\"name\": \"worker\", \"image\": "
	"\"123456789012.dkr.ecr.us-east-1.amazonaws.com/worker:1.0.0\", "
	"\"command\": [\"run-worker\"], \"cpu\": 0, \"portMappings\": [], "
	"\"essential\": true, \"environment\": [{\"name\": \"LOG_LEVEL\", "
	"\"value\": \"info\"}], \"mountPoints\": [], \"volumesFrom\": [], "
	"\"systemControls\": []}], \"family\": \"shop-dev-worker\", "
	"\"executionRoleArn\": \"arn:aws:iam::123456789012:role/shop-exec\", "
	"\"networkMode\": \"awsvpc\", \"revision\": 1, \"volumes\": [], "
	"\"status\": \"ACTIVE\", \"requiresAttributes\": [{\"name\": "
	"\"ecs.capability.task-eni\"}], \"placementConstraints\": [], "
	"\"compatibilities\": [\"EC2\", \"FARGATE\"], "
	"\"requiresCompatibilities\": [\"FARGATE\"], \"cpu\": \"256\", "
	"\"memory\": \"512\", \"registeredAt\": \"2026-01-01T00:00:00Z\", "
	"\"registeredBy\": \"arn:aws:iam::123456789012:user/ci\"}";

static void normal_form_folds_server_defaults(void **state)
{
	rc_config *cfg = load_e2e();
	rc_resource_set set = {0};
	rc_resource *r;
	json_t *api, *got, *req, *c, *hc;

	(void)state;
	assert_int_equal(rc_ecs_expand(rc_config_env(cfg, "dev"), cfg->project,
				       &set),
			 0);
	/* the worker: the fake's literal answer */
	api = J(FAKE_TD);
	got = rc_ecs_taskdef_from_api(api);
	r = rc_resource_set_find(&set, "dev/task-definition/worker");
	assert_json_eq(got, r->body);
	json_decref(got);
	json_decref(api);

	/* the api: its request with the defaults the fake fills in */
	r = rc_resource_set_find(&set, "dev/task-definition/api");
	req = rc_ecs_taskdef_request(r->body);
	c = json_array_get(json_object_get(req, "containerDefinitions"), 0);
	assert_string_equal(json_string_value(json_object_get(c, "name")), "api");
	assert_int_equal(json_array_size(json_object_get(c, "environment")), 2);
	json_object_set_new(c, "cpu", json_integer(0));
	json_object_set_new(c, "essential", json_true());
	json_object_set_new(c, "mountPoints", json_array());
	json_object_set_new(json_array_get(json_object_get(c, "portMappings"), 0),
			    "hostPort", json_integer(8080));
	json_object_set_new(json_array_get(json_object_get(c, "portMappings"), 0),
			    "protocol", json_string("tcp"));
	hc = json_object_get(c, "healthCheck");
	json_object_set_new(hc, "retries", json_integer(3));
	json_object_set_new(req, "revision", json_integer(4));
	json_object_set_new(req, "status", json_string("ACTIVE"));
	json_object_set_new(req, "cpu", json_integer(512)); /* as a number */
	json_object_set_new(req, "volumes", json_array());
	got = rc_ecs_taskdef_from_api(req);
	assert_json_eq(got, r->body);
	/* a changed image is a difference */
	json_object_set_new(c, "image", json_string("x/api:2"));
	json_decref(got);
	got = rc_ecs_taskdef_from_api(req);
	assert_false(json_equal(got, r->body));
	json_decref(got);
	json_decref(req);

	/* the service as DescribeServices shows it */
	api = J("{\"serviceArn\": \"arn:aws:ecs:us-east-1:123456789012:"
		"service/shop-dev/api\", \"serviceName\": \"api\", "
		"\"clusterArn\": \"arn:aws:ecs:us-east-1:123456789012:cluster/"
		"shop-dev\", \"status\": \"ACTIVE\", \"desiredCount\": 2, "
		"\"runningCount\": 2, \"launchType\": \"FARGATE\", "
		"\"taskDefinition\": \"arn:aws:ecs:us-east-1:123456789012:"
		"task-definition/shop-dev-api:4\", \"deploymentConfiguration\": "
		"{\"deploymentCircuitBreaker\": {\"enable\": true, \"rollback\": "
		"true}, \"maximumPercent\": 200, \"minimumHealthyPercent\": 100}, "
		"\"networkConfiguration\": {\"awsvpcConfiguration\": {"
		"\"subnets\": [\"subnet-0a1b2c3d4e5f60001\"], \"securityGroups\": "
		"[\"sg-0d1e2f3a4b5c60001\"], \"assignPublicIp\": \"DISABLED\"}}, "
		"\"loadBalancers\": [], \"events\": []}");
	r = rc_resource_set_find(&set, "dev/service/api");
	got = rc_ecs_service_from_api(api, r->body);
	assert_json_eq(got, r->body);
	json_decref(got);
	/* without a desired body (a service to prune): the standard keys */
	got = rc_ecs_service_from_api(api, NULL);
	assert_json_eq(got, r->body);
	json_decref(got);
	json_decref(api);
	rc_resource_set_release(&set);
	rc_config_free(cfg);
}

/* dev of tests/ecs with DB_PASSWORD {env: SHOP_DB_PASSWORD} and API_KEY
 * {aws_secret: ARN}; the caller frees sec's array (env keeps pointers). */
#define API_KEY_ARN                                                         \
	"arn:aws:secretsmanager:us-east-1:123456789012:secret:shop/api-AbCdEf"

static void with_secrets(rc_env *env, rc_secret sec[2])
{
	memset(sec, 0, 2 * sizeof(*sec));
	sec[0].name = (char *)(uintptr_t)"DB_PASSWORD";
	sec[0].kind = RC_SECRET_ENV;
	sec[0].ref = (char *)(uintptr_t)"SHOP_DB_PASSWORD";
	sec[0].loc.file = "reconcile.yaml";
	sec[0].loc.line = 40;
	sec[0].loc.col = 7;
	sec[1].name = (char *)(uintptr_t)"API_KEY";
	sec[1].kind = RC_SECRET_AWS;
	sec[1].ref = (char *)(uintptr_t)API_KEY_ARN;
	env->secrets = sec;
	env->nsecrets = 2;
}

static json_t *expand_secrets(const rc_config *cfg, const rc_env *env,
			      rc_resource_set *set)
{
	assert_int_equal(rc_ecs_expand(env, cfg->project, set), 0);
	assert_int_equal(rc_ecs_secrets_expand(env, cfg->project, ".", set), 0);
	return rc_resource_set_find(set, "dev/service/api")->body;
}

static void secrets_expand(void **state)
{
	rc_config *cfg = load_e2e();
	rc_env *env = (rc_env *)(uintptr_t)rc_config_env(cfg, "dev");
	rc_resource_set set = {0}, set2 = {0};
	rc_secret sec[2];
	rc_resource *r, *td;
	json_t *svc1, *svc2;
	bool dep = false;

	(void)state;
	with_secrets(env, sec);
	setenv("SHOP_DB_PASSWORD", "pw-unit-0001", 1);
	svc1 = expand_secrets(cfg, env, &set);
	/* one secret resource: the {env:} one; the ARN is not stored */
	assert_int_equal(set.n, 6);
	r = rc_resource_set_find(&set, "dev/secret/DB_PASSWORD");
	assert_non_null(r);
	assert_int_equal(r->loc.line, 40);
	assert_string_equal(json_string_value(json_object_get(r->body, "name")),
			     "reconcile/shop/dev/DB_PASSWORD");
	{
		json_t *want = rc_secret_json(&sec[0], "pw-unit-0001");

		assert_json_eq(json_object_get(r->body, "value"), want);
		json_decref(want);
	}
	assert_null(rc_resource_set_find(&set, "dev/secret/API_KEY"));
	/* the containers reference both, by a name that does not depend on
	   AWS's ARN suffix, and by the ARN as given */
	td = rc_resource_set_find(&set, "dev/task-definition/api");
	assert_json_is(json_object_get(json_object_get(json_object_get(
				   td->body, "containers"), "api"), "secrets"),
		       "{\"DB_PASSWORD\": \"reconcile/shop/dev/DB_PASSWORD\", "
		       "\"API_KEY\": \"" API_KEY_ARN "\"}");
	assert_null(json_object_get(json_object_get(json_object_get(json_object_get(
		td->body, "containers"), "api"), "environment"), "DB_PASSWORD"));
	for (size_t i = 0; i < td->ndeps; i++)
		dep |= !strcmp(td->deps[i], "dev/secret/DB_PASSWORD");
	assert_true(dep);
	/* the service carries a digest over its secrets */
	assert_non_null(json_object_get(json_object_get(svc1, "secrets"), "$secret"));
	for (size_t i = 0; i < set.n; i++) {
		char *text = json_dumps(set.items[i].body, 0);

		assert_null(strstr(text, "pw-unit-0001"));
		free(text);
	}
	/* a new value: the secret and the service change, the task
	   definition does not */
	setenv("SHOP_DB_PASSWORD", "pw-unit-0002", 1);
	svc2 = expand_secrets(cfg, env, &set2);
	assert_false(json_equal(json_object_get(svc1, "secrets"),
				json_object_get(svc2, "secrets")));
	assert_json_eq(rc_resource_set_find(&set2, "dev/task-definition/api")->body,
		       td->body);
	unsetenv("SHOP_DB_PASSWORD");
	rc_resource_set_release(&set);
	rc_resource_set_release(&set2);
	env->secrets = NULL;
	env->nsecrets = 0;
	rc_config_free(cfg);
}

static void secrets_unset_variable_refused(void **state)
{
	rc_config *cfg = load_e2e();
	rc_env *env = (rc_env *)(uintptr_t)rc_config_env(cfg, "dev");
	rc_resource_set set = {0};
	rc_secret sec[2];

	(void)state;
	with_secrets(env, sec);
	unsetenv("SHOP_DB_PASSWORD");
	assert_int_equal(rc_ecs_expand(env, cfg->project, &set), 0);
	assert_int_equal(rc_ecs_secrets_expand(env, cfg->project, ".", &set),
			 RC_ENOTFOUND);
	assert_non_null(strstr(rc_error_last()->message,
			       "the variable 'SHOP_DB_PASSWORD' is not set"));
	assert_non_null(strstr(rc_error_last()->message, "reconcile.yaml:40:7"));
	rc_error_clear();
	rc_resource_set_release(&set);
	env->secrets = NULL;
	env->nsecrets = 0;
	rc_config_free(cfg);
}

static const char *const LB_YAML =
	"version: 1\n"
	"project: shop\n"
	"environments:\n"
	"  dev:\n"
	"    target: { driver: ecs, region: us-east-1, cluster: shop-dev,"
	" subnets: [subnet-1] }\n"
	"    services:\n"
	"      web:\n"
	"        image: shop/web:1\n"
	"        port: 8080\n"
	"        health: { tcp: true, grace: 45s }\n"
	"        ecs:\n"
	"          target_group: \"arn:aws:elasticloadbalancing:us-east-1:"
	"123456789012:targetgroup/shop-web/0123456789abcdef\"\n";

/* ecs.target_group -> loadBalancers and the grace period; health.tcp ->
 * a CMD-SHELL probe of the port; both compare equal to what ECS answers. */
static void load_balancer_and_tcp_health(void **state)
{
	char *dir = tmpdir_new(), *diag;
	rc_config *cfg = NULL;
	rc_resource_set set = {0};
	rc_resource *r;
	json_t *want, *api, *got;
	int rc;

	(void)state;
	write_file(dir, "reconcile.yaml", LB_YAML);
	diag = load_dir(dir, true, &cfg, &rc);
	if (rc != 0)
		fail_msg("%s", diag);
	free(diag);
	assert_int_equal(rc_ecs_expand(rc_config_env(cfg, "dev"), cfg->project,
				       &set),
			 0);
	r = rc_resource_set_find(&set, "dev/service/web");
	want = J("[{\"targetGroupArn\": \"arn:aws:elasticloadbalancing:"
		 "us-east-1:123456789012:targetgroup/shop-web/0123456789abcdef\","
		 " \"containerName\": \"web\", \"containerPort\": 8080}]");
	assert_json_eq(json_object_get(r->body, "loadBalancers"), want);
	json_decref(want);
	assert_int_equal(json_integer_value(json_object_get(
				 r->body, "healthCheckGracePeriodSeconds")),
			 45);
	/* DescribeServices answers the same, keys in another order */
	api = J("{\"serviceName\": \"web\", \"clusterArn\": \"arn:aws:ecs:"
		"us-east-1:123456789012:cluster/shop-dev\", \"taskDefinition\":"
		" \"arn:aws:ecs:us-east-1:123456789012:task-definition/"
		"shop-dev-web:2\", \"desiredCount\": 1, \"launchType\": "
		"\"FARGATE\", \"healthCheckGracePeriodSeconds\": 45, "
		"\"loadBalancers\": [{\"containerPort\": 8080, "
		"\"containerName\": \"web\", \"targetGroupArn\": \"arn:aws:"
		"elasticloadbalancing:us-east-1:123456789012:targetgroup/"
		"shop-web/0123456789abcdef\"}], \"deploymentConfiguration\": "
		"{\"deploymentCircuitBreaker\": {\"enable\": true, "
		"\"rollback\": true}}, \"networkConfiguration\": "
		"{\"awsvpcConfiguration\": {\"subnets\": [\"subnet-1\"], "
		"\"securityGroups\": [], \"assignPublicIp\": \"DISABLED\"}}}");
	got = rc_ecs_service_from_api(api, r->body);
	assert_json_eq(got, r->body);
	json_decref(got);
	json_decref(api);
	r = rc_resource_set_find(&set, "dev/task-definition/web");
	want = J("{\"command\": [\"CMD-SHELL\", \"nc -z localhost 8080 || "
		 "exit 1\"], \"interval\": 10, \"timeout\": 2, "
		 "\"startPeriod\": 45}");
	assert_json_eq(json_object_get(json_object_get(json_object_get(
				r->body, "containers"), "web"), "healthCheck"),
		       want);
	json_decref(want);
	rc_resource_set_release(&set);
	rc_config_free(cfg);
	tmpdir_remove(dir);
}

static void immutable_paths(void **state)
{
	(void)state;
	assert_true(rc_ecs_immutable(RC_ECS_SERVICE, "/launchType"));
	assert_true(rc_ecs_immutable(RC_ECS_SERVICE, "/schedulingStrategy"));
	assert_true(rc_ecs_immutable(RC_ECS_SERVICE,
				     "/deploymentController/type"));
	assert_false(rc_ecs_immutable(RC_ECS_SERVICE, "/launchTypeX"));
	assert_false(rc_ecs_immutable(RC_ECS_SERVICE, "/desiredCount"));
	assert_false(rc_ecs_immutable(RC_ECS_SERVICE, "/loadBalancers"));
	assert_false(rc_ecs_immutable(RC_ECS_SERVICE, "/networkConfiguration"));
	assert_false(rc_ecs_immutable(RC_ECS_TASKDEF, "/containers/api/image"));
	assert_false(rc_ecs_immutable(RC_ECS_TASKDEF, "/networkMode"));
}

static void service_health_text(void **state)
{
	json_t *svc;
	bool sick = true;
	char *s;

	(void)state;
	svc = J("{\"runningCount\": 1, \"desiredCount\": 3, \"deployments\":"
		" [{\"status\": \"PRIMARY\", \"rolloutState\": "
		"\"IN_PROGRESS\"}, {\"status\": \"ACTIVE\", "
		"\"rolloutState\": \"COMPLETED\"}]}");
	s = rc_ecs_service_health(svc, &sick);
	assert_string_equal(s, "running 1/3, deploying");
	assert_false(sick);
	free(s);
	json_decref(svc);
	svc = J("{\"runningCount\": 2, \"desiredCount\": 2, \"deployments\":"
		" [{\"status\": \"PRIMARY\", \"rolloutState\": "
		"\"COMPLETED\"}]}");
	s = rc_ecs_service_health(svc, &sick);
	assert_string_equal(s, "running 2/2");
	assert_false(sick);
	free(s);
	json_decref(svc);
	/* tasks that died with nothing deploying, and a failed rollout */
	svc = J("{\"runningCount\": 1, \"desiredCount\": 2, \"deployments\":"
		" [{\"status\": \"PRIMARY\", \"rolloutState\": "
		"\"COMPLETED\"}]}");
	s = rc_ecs_service_health(svc, &sick);
	assert_string_equal(s, "running 1/2");
	assert_true(sick);
	free(s);
	json_decref(svc);
	svc = J("{\"runningCount\": 0, \"desiredCount\": 2, \"deployments\":"
		" [{\"status\": \"PRIMARY\", \"rolloutState\": "
		"\"FAILED\"}]}");
	s = rc_ecs_service_health(svc, &sick);
	assert_string_equal(s, "running 0/2, rollout failed");
	assert_true(sick);
	free(s);
	json_decref(svc);
	/* the tags are the ones the issue names */
	assert_string_equal(RC_ECS_TAG_PROJECT, "reconcile:project");
	assert_string_equal(RC_ECS_TAG_ENV, "reconcile:environment");
}

static void secrets_normal_form(void **state)
{
	json_t *api = J(
		"{\"family\": \"shop-dev-api\", \"containerDefinitions\": [{"
		"\"name\": \"api\", \"image\": \"x\", \"secrets\": ["
		"{\"name\": \"DB_PASSWORD\", \"valueFrom\": \"arn:aws:"
		"secretsmanager:us-east-1:123456789012:secret:reconcile/shop/dev/"
		"DB_PASSWORD-x1Y2z3\"},"
		"{\"name\": \"API_KEY\", \"valueFrom\": \"" API_KEY_ARN "\"},"
		"{\"name\": \"KEYED\", \"valueFrom\": \"arn:aws:"
		"secretsmanager:us-east-1:123456789012:secret:reconcile/shop/dev/"
		"DB_PASSWORD-x1Y2z3:user::\"}]}]}");
	json_t *got = rc_ecs_taskdef_from_api(api), *req, *svc, *tags;

	(void)state;
	assert_json_is(
		json_object_get(json_object_get(json_object_get(got, "containers"),
						"api"),
				"secrets"),
		       "{\"DB_PASSWORD\": \"reconcile/shop/dev/DB_PASSWORD\", "
		  "\"API_KEY\": \"" API_KEY_ARN "\", \"KEYED\": \"arn:aws:"
		  "secretsmanager:us-east-1:123456789012:secret:reconcile/shop/dev/"
		  "DB_PASSWORD-x1Y2z3:user::\"}");
	/* ARNs go out as ECS's list unchanged, with no client needed */
	json_object_del(json_object_get(json_object_get(json_object_get(got,
			"containers"), "api"), "secrets"), "DB_PASSWORD");
	req = rc_ecs_taskdef_request(got);
	assert_int_equal(rc_ecs_secrets_request(NULL, req, (rc_loc){0}), 0);
	assert_json_is(json_object_get(json_array_get(json_object_get(req,
				       "containerDefinitions"), 0), "secrets"),
		       "[{\"name\": \"API_KEY\", \"valueFrom\": \"" API_KEY_ARN
			 "\"}, {\"name\": \"KEYED\", \"valueFrom\": \"arn:aws:"
			 "secretsmanager:us-east-1:123456789012:secret:reconcile/"
			 "shop/dev/DB_PASSWORD-x1Y2z3:user::\"}]");
	/* a service's secrets digest is its tag */
	svc = json_object();
	tags = J("[{\"key\": \"reconcile:secrets-hash\", "
		 "\"value\": \"sha256:00ff\"}]");
	rc_ecs_secrets_service_observed(svc, tags);
	json_decref(tags);
	assert_json_is(svc,
		       "{\"secrets\": {\"$secret\": \"sha256:00ff\", "
			      "\"ref\": \"secrets\"}}");
	json_decref(svc);
	json_decref(req);
	json_decref(got);
	json_decref(api);
}

static void aws_secret_arns(void **state)
{
	(void)state;
	assert_true(rc_aws_secret_arn_valid(API_KEY_ARN));
	assert_true(rc_aws_secret_arn_valid(
		"arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:a/b"));
	assert_true(rc_aws_secret_arn_valid(API_KEY_ARN ":password:AWSCURRENT:"));
	assert_true(rc_aws_secret_arn_valid(API_KEY_ARN ":::"));
	assert_false(rc_aws_secret_arn_valid(API_KEY_ARN ":password"));
	assert_false(rc_aws_secret_arn_valid(
		"arn:aws:secretsmanager:us-east-1:1234:secret:a"));
	assert_false(rc_aws_secret_arn_valid(
		"arn:aws:ssm:us-east-1:123456789012:parameter/a"));
	assert_false(rc_aws_secret_arn_valid(
		"arn:aws:secretsmanager:us-east-1:123456789012:secret:"));
	assert_false(rc_aws_secret_arn_valid("reconcile/shop/dev/A"));
	/* reconcile never reads one */
	{
		rc_secret sec = {(char *)(uintptr_t)"K", RC_SECRET_AWS,
				 (char *)(uintptr_t)API_KEY_ARN, {0}, NULL,
				 false};
		char *v = NULL;

		assert_int_equal(rc_secret_value(&v, &sec, "."), RC_EUNSUPPORTED);
		assert_null(v);
		rc_error_clear();
	}
}

int test_group_ecs_map(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names),
		cmocka_unit_test(expand_and_units),
		cmocka_unit_test(normal_form_folds_server_defaults),
		cmocka_unit_test(load_balancer_and_tcp_health),
		cmocka_unit_test(immutable_paths),
		cmocka_unit_test(service_health_text),
		cmocka_unit_test(secrets_expand),
		cmocka_unit_test(secrets_unset_variable_refused),
		cmocka_unit_test(secrets_normal_form),
		cmocka_unit_test(aws_secret_arns),
	};

	return cmocka_run_group_tests_name("ecs_map", tests, NULL, NULL);
}
