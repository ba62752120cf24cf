/* The ECS driver's mapping (drivers/ecs_map.c): expand of tests/ecs's
 * configuration, Fargate units, the normal form (the fake ECS's
 * DescribeTaskDefinition and DescribeServices answers for what the driver
 * registered and created normalise equal to the desired bodies), request
 * bodies, secrets refused at their location, names. */
#include "tests/unit/helpers.h"
#include "drivers/ecs_map.h"

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

static void secrets_refused(void **state)
{
	rc_config *cfg = load_e2e();
	rc_env *env = (rc_env *)(uintptr_t)rc_config_env(cfg, "dev");
	rc_resource_set set = {0};
	rc_secret sec = {0};

	(void)state;
	sec.name = (char *)(uintptr_t)"DB_PASSWORD";
	sec.kind = RC_SECRET_ENV;
	sec.ref = (char *)(uintptr_t)"SHOP_DB_PASSWORD";
	sec.loc.file = "reconcile.yaml";
	sec.loc.line = 40;
	sec.loc.col = 7;
	env->secrets = &sec;
	env->nsecrets = 1;
	assert_int_equal(rc_ecs_expand(env, cfg->project, &set),
			 RC_EUNSUPPORTED);
	assert_non_null(strstr(rc_error_last()->message,
			       "secrets are not supported"));
	assert_int_equal(rc_error_last()->loc.line, 40);
	assert_int_equal(set.n, 0);
	rc_error_clear();
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

int test_group_ecs_map(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names),
		cmocka_unit_test(expand_and_units),
		cmocka_unit_test(normal_form_folds_server_defaults),
		cmocka_unit_test(secrets_refused),
		cmocka_unit_test(load_balancer_and_tcp_health),
		cmocka_unit_test(immutable_paths),
		cmocka_unit_test(service_health_text),
	};

	return cmocka_run_group_tests_name("ecs_map", tests, NULL, NULL);
}
