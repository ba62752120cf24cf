#include "tests/unit/helpers.h"
#include "schema/emit.h"

static const char root_one[] = "version: 1\nproject: shop\nenvironments:\n"
			       "  staging: { file: envs/staging.yaml }\n";

static void extends_chain_merges_in_order(void **state)
{
	char *dir = tmpdir_new(), *msg;
	rc_config *cfg;
	const rc_env *e;
	int rc;

	RC_UNUSED(state);
	write_file(dir, "reconcile.yaml",
		   "version: 1\nproject: shop\nenvironments:\n"
		   "  staging:\n    file: envs/staging.yaml\n"
		   "    config: { INLINE: yes }\n");
	write_file(dir, "envs/base.yaml",
		   "target: { driver: local }\n"
		   "services:\n  web:\n    command: [python3, app.py]\n"
		   "    args: [--a, --b]\n    port: 8000\n    env: { A: 1, B: 2 }\n"
		   "config: { LEVEL: base, DROP: me }\n");
	write_file(dir, "envs/mid.yaml",
		   "extends: base.yaml\nservices:\n  web:\n    args: [--c]\n"
		   "    env: { B: 3 }\nconfig: { LEVEL: mid }\n");
	write_file(dir, "envs/staging.yaml",
		   "extends: mid.yaml\nservices:\n  web:\n    replicas: 2\n"
		   "config: { DROP: null }\n");
	msg = load_dir(dir, true, &cfg, &rc);
	assert_string_equal(msg, "");
	assert_int_equal(rc, 0);
	assert_int_equal(cfg->nenvs, 1);
	e = &cfg->envs[0];
	assert_int_equal(e->services[0].replicas, 2);
	assert_int_equal(e->services[0].args.n, 1);
	assert_string_equal(e->services[0].args.v[0], "--c");
	assert_string_equal(rc_kvlist_get(&e->services[0].env, "A"), "1");
	assert_string_equal(rc_kvlist_get(&e->services[0].env, "B"), "3");
	assert_string_equal(rc_kvlist_get(&e->config, "LEVEL"), "mid");
	assert_null(rc_kvlist_get(&e->config, "DROP"));
	assert_string_equal(rc_kvlist_get(&e->config, "INLINE"), "yes");
	assert_string_equal(e->file, "envs/staging.yaml");
	free(msg);
	rc_config_free(cfg);
	tmpdir_remove(dir);
}

static void defaults_are_filled_in(void **state)
{
	char *dir = tmpdir_new(), *msg;
	rc_config *cfg;
	const rc_service *s;
	int rc;

	RC_UNUSED(state);
	write_file(dir, "reconcile.yaml", root_one);
	write_file(dir, "envs/staging.yaml",
		   "target: { driver: kubernetes, namespace: shop }\n"
		   "services:\n  web:\n    image: nginx\n    port: 80\n"
		   "    cpu: 0.25\n    memory: 1Gi\n"
		   "    health: { http: /healthz }\n"
		   "hooks:\n  post_apply:\n    - { run: [migrate], service: web }\n");
	msg = load_dir(dir, true, &cfg, &rc);
	assert_string_equal(msg, "");
	s = &cfg->envs[0].services[0];
	assert_int_equal(s->replicas, 1);
	assert_int_equal(s->cpu_millis, 250);
	assert_int_equal(s->memory, 1LL << 30);
	assert_int_equal(s->health.interval, 10);
	assert_int_equal(s->health.timeout, 2);
	assert_int_equal(s->health.retries, 3);
	assert_int_equal(cfg->envs[0].policy.apply, RC_APPLY_AUTO);
	assert_int_equal(cfg->envs[0].policy.drift, RC_DRIFT_REPORT);
	assert_false(cfg->envs[0].policy.prune);
	assert_int_equal(cfg->envs[0].post_apply[0].timeout, 600);
	assert_false(cfg->envs[0].post_apply[0].local);
	assert_string_equal(cfg->envs[0].post_apply[0].name, "post_apply[0]");
	free(msg);
	rc_config_free(cfg);
	tmpdir_remove(dir);
}

static void extends_cycle_is_reported(void **state)
{
	char *dir = tmpdir_new(), *msg;
	int rc;

	RC_UNUSED(state);
	write_file(dir, "reconcile.yaml", root_one);
	write_file(dir, "envs/staging.yaml", "extends: a.yaml\n");
	write_file(dir, "envs/a.yaml", "extends: b.yaml\n");
	write_file(dir, "envs/b.yaml", "extends: a.yaml\n");
	msg = load_dir(dir, true, NULL, &rc);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(msg, "envs/b.yaml:1:10: error: 'extends' makes "
				    "a cycle: 'envs/a.yaml' extends itself "
				    "through this file"));
	free(msg);
	tmpdir_remove(dir);
}

static void paths_stay_inside_the_repository(void **state)
{
	char *dir = tmpdir_new(), *msg;
	rc_buf link = RC_BUF_INIT;
	int rc;

	RC_UNUSED(state);
	write_file(dir, "reconcile.yaml",
		   "version: 1\nproject: p\nenvironments:\n"
		   "  a: { file: ../../etc/passwd }\n"
		   "  b: { file: /etc/passwd }\n"
		   "  c: { file: out.yaml }\n");
	rc_buf_printf(&link, "%s/out.yaml", dir);
	assert_int_equal(symlink("/etc/hostname", link.ptr), 0);
	msg = load_dir(dir, true, NULL, &rc);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(msg, "path '../../etc/passwd' leaves the "
				    "configuration repository"));
	assert_non_null(strstr(msg, "path '/etc/passwd' is absolute"));
	assert_non_null(strstr(msg, "path 'out.yaml' leads outside the "
				    "configuration repository (through a "
				    "symbolic link)"));
	assert_null(strstr(msg, "root:"));
	free(msg);
	rc_buf_release(&link);
	tmpdir_remove(dir);
}

static void literal_secrets_are_never_printed(void **state)
{
	char *dir = tmpdir_new(), *msg;
	rc_config *cfg;
	int rc;

	RC_UNUSED(state);
	write_file(dir, "reconcile.yaml", root_one);
	write_file(dir, "envs/staging.yaml",
		   "target: { driver: local }\n"
		   "secrets:\n  PW: hunter2-literal\n"
		   "  TOKEN: { env: API_TOKEN }\n"
		   "  KEY: { file: keys/app.key }\n"
		   "  ENC: { encrypted: hunter2-blob }\n"
		   "  BAD: { env: X, value: hunter2-extra }\n"
		   "  PATHY: { file: /hunter2-as-path }\n"
		   "  NESTED: { env: { value: hunter2-nested } }\n"
		   "  WEIRD: { env: \"hunter2 with spaces\" }\n");
	msg = load_dir(dir, true, &cfg, &rc);
	assert_int_equal(rc, -1);
	assert_null(strstr(msg, "hunter2"));
	assert_non_null(strstr(msg, "secret 'PW' has a literal value"));
	assert_non_null(strstr(msg, "secret 'ENC' is not a well-formed age "
				    "file: not an age file"));
	assert_non_null(strstr(msg, "unknown key 'value' in secret 'BAD'"));
	assert_non_null(strstr(msg, "path '(the secret's file)' is absolute"));
	assert_non_null(strstr(msg, "'env' in secret 'NESTED' must be a string"));
	assert_non_null(strstr(msg, "secret 'WEIRD': 'env' must name a process "
				    "variable"));
	assert_int_equal(cfg->envs[0].nsecrets, 3);
	assert_string_equal(cfg->envs[0].secrets[0].ref, "API_TOKEN");
	assert_string_equal(cfg->envs[0].secrets[1].ref, "keys/app.key");
	free(msg);
	rc_config_free(cfg);
	tmpdir_remove(dir);
}

static void every_diagnostic_is_collected(void **state)
{
	char *dir = tmpdir_new(), *msg;
	rc_config *cfg;
	rc_diags d;
	rc_load_opts o = {.offline = true};
	int rc;

	RC_UNUSED(state);
	write_file(dir, "reconcile.yaml",
		   "version: 1\nproject: p\nenvironments:\n"
		   "  a: { file: a.yaml }\n  b: { file: b.yaml }\n");
	write_file(dir, "a.yaml", "target: { driver: local }\n"
				  "services:\n  w: { command: [x], replica: 2 }\n");
	write_file(dir, "b.yaml", "target: { driver: heroku }\n"
				  "polcy: {}\n");
	rc_diags_init(&d);
	rc = rc_config_load(&cfg, dir, &o, &d);
	assert_int_equal(rc, -1);
	assert_int_equal(d.nerrors, 3);
	/* sorted by file */
	assert_string_equal(d.items[0].loc.file + strlen(dir) + 1, "a.yaml");
	assert_string_equal(d.items[1].loc.file + strlen(dir) + 1, "b.yaml");
	assert_string_equal(d.items[1].message,
			    "target is missing the required key 'app'");
	assert_string_equal(d.items[2].message,
			    "unknown key 'polcy' in environment 'b'; did you "
			    "mean 'policy'?");
	rc_diags_release(&d);
	rc_config_free(cfg);
	msg = NULL;
	free(msg);
	tmpdir_remove(dir);
}

static void substitution_names_and_places(void **state)
{
	char *dir = tmpdir_new(), *msg;
	rc_config *cfg;
	const rc_env *e;
	int rc;

	RC_UNUSED(state);
	setenv("RC_TEST_CONTEXT", "kind-dev", 1);
	write_file(dir, "reconcile.yaml",
		   "version: 1\nproject: shop\nallow_env: [RC_TEST_CONTEXT, "
		   "DB_URL]\nenvironments:\n"
		   "  staging:\n    policy: { branch: master }\n"
		   "    target: { driver: kubernetes, namespace: "
		   "\"{{ project }}-{{ environment.name }}\", context: "
		   "\"{{ env.RC_TEST_CONTEXT }}\" }\n"
		   "    services: { web: { image: \"shop:{{ environment.branch "
		   "}}\" } }\n"
		   "    hooks:\n      pre_apply:\n"
		   "        - run: [backup, \"{{ target.namespace }}-{{ "
		   "run.date }}-{{ run.short_commit }}\"]\n"
		   "          where: local\n"
		   "          env: { URL: \"{{ env.DB_URL }}\" }\n");
	msg = load_dir(dir, true, &cfg, &rc);
	assert_string_equal(msg, "");
	e = &cfg->envs[0];
	assert_string_equal(e->target.namespace, "shop-staging");
	assert_string_equal(e->target.context, "kind-dev");
	assert_string_equal(e->services[0].image, "shop:master");
	assert_string_equal(e->pre_apply[0].run.v[1],
			    "shop-staging-{{ run.date }}-{{ run.short_commit }}");
	assert_string_equal(rc_kvlist_get(&e->pre_apply[0].env, "URL"),
			    "{{ env.DB_URL }}");
	free(msg);
	rc_config_free(cfg);
	tmpdir_remove(dir);
}

static void substitution_errors(void **state)
{
	char *dir = tmpdir_new(), *msg;
	int rc;

	RC_UNUSED(state);
	write_file(dir, "reconcile.yaml",
		   "version: 1\nproject: shop\nenvironments:\n"
		   "  a:\n    target: { driver: local }\n"
		   "    config:\n"
		   "      A: \"{{ env.HOME }}\"\n"
		   "      B: \"{{ run.date }}\"\n"
		   "      C: \"{{ projekt }}\"\n"
		   "      D: \"x {{ a + b }}\"\n"
		   "      E: \"{{ item.name\"\n");
	msg = load_dir(dir, true, NULL, &rc);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(msg, "reconcile.yaml:7:11: error: '{{ env.HOME "
				    "}}' is not allowed here"));
	assert_non_null(strstr(msg, "'{{ run.date }}' is only known in hooks"));
	assert_non_null(strstr(msg, "unknown placeholder '{{ projekt }}'; did "
				    "you mean '{{ project }}'?"));
	assert_non_null(strstr(msg, "reconcile.yaml:10:13: error: '{{ a + b }}' "
				    "is not a placeholder"));
	assert_non_null(strstr(msg, "unterminated '{{'"));
	free(msg);
	tmpdir_remove(dir);
}

static void show_output_is_stable_json(void **state)
{
	char *dir = tmpdir_new(), *msg, *s;
	rc_config *cfg;
	json_t *j;
	int rc;

	RC_UNUSED(state);
	write_file(dir, "reconcile.yaml",
		   "version: 1\nproject: shop\nenvironments:\n"
		   "  dev:\n    target: { driver: local }\n"
		   "    services: { api: { command: [python3, api.py], port: "
		   "5000, memory: 512M } }\n"
		   "    secrets: { PW: { env: DEV_PW } }\n");
	msg = load_dir(dir, true, &cfg, &rc);
	assert_string_equal(msg, "");
	j = rc_config_to_json(cfg, NULL, 0);
	s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	assert_string_equal(
		s, "{\"format_version\":1,\"project\":\"shop\",\"environments\":"
		   "[{\"name\":\"dev\",\"target\":{\"driver\":\"local\"},"
		   "\"policy\":{\"apply\":\"auto\",\"prune\":false,\"drift\":"
		   "\"report\"},\"depends_on\":[],\"services\":{\"api\":{"
		   "\"command\":[\"python3\",\"api.py\"],\"replicas\":1,"
		   "\"memory\":\"512M\",\"port\":5000}},\"config\":{},"
		   "\"secrets\":{\"PW\":{\"env\":\"DEV_PW\"}},\"addons\":{},"
		   "\"hooks\":{\"pre_apply\":[],\"post_apply\":[],\"on_rollback\":[]},"
		   "\"resources\":[]}]}");
	free(s);
	json_decref(j);
	free(msg);
	rc_config_free(cfg);
	tmpdir_remove(dir);
}

static void ignore_rules(void **state)
{
	char *dir = tmpdir_new(), *msg;
	rc_config *cfg;
	int rc;

	RC_UNUSED(state);
	write_file(dir, "reconcile.yaml",
		   "version: 1\nproject: p\nenvironments:\n"
		   "  a:\n    target: { driver: local }\n"
		   "    ignore:\n"
		   "      - { resource: service/web, paths: [/replicas] }\n"
		   "      - { paths: [\"/env/NEW_RELIC_KEY\"] }\n"
		   "  b:\n    target: { driver: local }\n"
		   "    ignore:\n"
		   "      - { resource: web, paths: [replicas] }\n");
	msg = load_dir(dir, true, &cfg, &rc);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(msg, "'resource' in the ignore rule must be "
				    "kind/name (such as service/web) or *"));
	assert_non_null(strstr(msg, "'replicas' is not a JSON pointer"));
	assert_int_equal(cfg->envs[0].nignore, 2);
	assert_string_equal(cfg->envs[0].ignore[0].resource, "service/web");
	assert_string_equal(cfg->envs[0].ignore[0].paths.v[0], "/replicas");
	assert_string_equal(cfg->envs[0].ignore[1].resource, "*");
	free(msg);
	rc_config_free(cfg);
	tmpdir_remove(dir);
}

int test_group_load(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(extends_chain_merges_in_order),
		cmocka_unit_test(defaults_are_filled_in),
		cmocka_unit_test(extends_cycle_is_reported),
		cmocka_unit_test(paths_stay_inside_the_repository),
		cmocka_unit_test(literal_secrets_are_never_printed),
		cmocka_unit_test(every_diagnostic_is_collected),
		cmocka_unit_test(substitution_names_and_places),
		cmocka_unit_test(substitution_errors),
		cmocka_unit_test(show_output_is_stable_json),
		cmocka_unit_test(ignore_rules),
	};
	return cmocka_run_group_tests_name("load", tests, NULL, NULL);
}
