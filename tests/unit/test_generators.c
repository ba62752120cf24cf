#include "tests/unit/helpers.h"

static void git(const char *dir, const char *a1, const char *a2,
		const char *a3, const char *a4)
{
	const char *argv[] = {"git", "-c", "user.name=t", "-c",
			      "user.email=t@example.com", "-c",
			      "init.defaultBranch=main", a1, a2, a3, a4, NULL};

	assert_int_equal(run_argv(argv, dir), 0);
}

/* A git repository at dir/sub with branches main, pr-1, pr-22 and
 * Feature/Big_Thing. */
static void make_repo(const char *dir, const char *sub)
{
	rc_buf p = RC_BUF_INIT;

	rc_buf_printf(&p, "%s/%s", dir, sub);
	mkdir(p.ptr, 0755);
	write_file(p.ptr, "README", "app\n");
	git(p.ptr, "init", "-q", NULL, NULL);
	git(p.ptr, "add", "README", NULL, NULL);
	git(p.ptr, "commit", "-qm", "init", NULL);
	git(p.ptr, "branch", "pr-1", NULL, NULL);
	git(p.ptr, "branch", "pr-22", NULL, NULL);
	git(p.ptr, "branch", "Feature/Big_Thing", NULL, NULL);
	rc_buf_release(&p);
}

static void list_generator_makes_one_env_per_item(void **state)
{
	char *dir = tmpdir_new(), *msg;
	rc_config *cfg;
	int rc;

	RC_UNUSED(state);
	write_file(dir, "reconcile.yaml",
		   "version: 1\nproject: brands\nenvironments:\n"
		   "  site:\n    file: site.yaml\n"
		   "    for_each:\n      list:\n"
		   "        - { name: acme, host: acme.example.com }\n"
		   "        - { name: globex, host: globex.example.com }\n"
		   "    name: \"site-{{ item.name }}\"\n");
	write_file(dir, "site.yaml",
		   "target: { driver: kubernetes, namespace: \"{{ item.name "
		   "}}-web\" }\n"
		   "services: { web: { image: php, port: 80 } }\n"
		   "config: { HOST: \"{{ item.host }}\", ENV: \"{{ "
		   "environment.name }}\" }\n");
	msg = load_dir(dir, true, &cfg, &rc);
	assert_string_equal(msg, "");
	assert_int_equal(cfg->nenvs, 2);
	assert_string_equal(cfg->envs[0].name, "site-acme");
	assert_string_equal(cfg->envs[1].name, "site-globex");
	assert_string_equal(cfg->envs[1].generator, "site");
	assert_string_equal(cfg->envs[1].target.namespace, "globex-web");
	assert_string_equal(rc_kvlist_get(&cfg->envs[1].config, "HOST"),
			    "globex.example.com");
	assert_string_equal(rc_kvlist_get(&cfg->envs[0].config, "ENV"),
			    "site-acme");
	free(msg);
	rc_config_free(cfg);
	tmpdir_remove(dir);
}

static void branch_generator_over_a_local_repository(void **state)
{
	char *dir = tmpdir_new(), *msg;
	rc_config *cfg;
	int rc;

	RC_UNUSED(state);
	make_repo(dir, "app");
	write_file(dir, "reconcile.yaml",
		   "version: 1\nproject: shop\n"
		   "repositories: { app: { url: app } }\n"
		   "environments:\n"
		   "  review:\n"
		   "    for_each: { branches: { repository: app, match: "
		   "\"pr-*\" } }\n"
		   "    name: \"review-{{ item.name }}\"\n"
		   "    ttl: 72h\n"
		   "    target: { driver: local }\n"
		   "    config: { SHA: \"{{ item.short_sha }}\", BRANCH: \"{{ "
		   "environment.branch }}\" }\n");
	msg = load_dir(dir, false, &cfg, &rc);
	assert_string_equal(msg, "");
	assert_int_equal(cfg->nenvs, 2);
	assert_string_equal(cfg->envs[0].name, "review-pr-1");
	assert_string_equal(cfg->envs[1].name, "review-pr-22");
	assert_int_equal(cfg->envs[0].ttl, 72 * 3600);
	assert_int_equal(strlen(rc_kvlist_get(&cfg->envs[0].item, "sha")), 40);
	assert_int_equal(strlen(rc_kvlist_get(&cfg->envs[0].config, "SHA")), 7);
	assert_string_equal(rc_kvlist_get(&cfg->envs[1].config, "BRANCH"),
			    "pr-22");
	free(msg);
	rc_config_free(cfg);
	tmpdir_remove(dir);
}

static void branch_names_are_sanitised(void **state)
{
	char *dir = tmpdir_new(), *msg;
	rc_buf url = RC_BUF_INIT;
	rc_config *cfg;
	int rc;

	RC_UNUSED(state);
	make_repo(dir, "app");
	rc_buf_printf(&url, "version: 1\nproject: shop\n"
			    "repositories: { app: { url: \"file://%s/app\" } }\n"
			    "environments:\n"
			    "  feat:\n"
			    "    for_each: { branches: { repository: app, match: "
			    "\"Feature/*\" } }\n"
			    "    name: \"f-{{ item.name }}\"\n"
			    "    target: { driver: local }\n",
		      dir);
	write_file(dir, "reconcile.yaml", url.ptr);
	msg = load_dir(dir, false, &cfg, &rc);
	assert_string_equal(msg, "");
	assert_int_equal(cfg->nenvs, 1);
	assert_string_equal(cfg->envs[0].name, "f-feature-big-thing");
	assert_string_equal(rc_kvlist_get(&cfg->envs[0].item, "branch"),
			    "Feature/Big_Thing");
	free(msg);
	rc_buf_release(&url);
	rc_config_free(cfg);
	tmpdir_remove(dir);
}

static void self_lists_the_config_repository(void **state)
{
	char *dir = tmpdir_new(), *msg;
	rc_config *cfg;
	int rc;

	RC_UNUSED(state);
	write_file(dir, "reconcile.yaml",
		   "version: 1\nproject: shop\nenvironments:\n"
		   "  pr:\n"
		   "    for_each: { branches: { repository: self, match: "
		   "\"pr-*\" } }\n"
		   "    name: \"{{ item.name }}\"\n"
		   "    target: { driver: local }\n");
	git(dir, "init", "-q", NULL, NULL);
	git(dir, "add", "reconcile.yaml", NULL, NULL);
	git(dir, "commit", "-qm", "config", NULL);
	git(dir, "branch", "pr-7", NULL, NULL);
	msg = load_dir(dir, false, &cfg, &rc);
	assert_string_equal(msg, "");
	assert_int_equal(cfg->nenvs, 1);
	assert_string_equal(cfg->envs[0].name, "pr-7");
	free(msg);
	rc_config_free(cfg);
	tmpdir_remove(dir);
}

static void offline_checks_remote_generators_with_a_sample(void **state)
{
	char *dir = tmpdir_new(), *msg;
	rc_config *cfg;
	int rc;

	RC_UNUSED(state);
	write_file(dir, "reconcile.yaml",
		   "version: 1\nproject: shop\n"
		   "repositories: { app: { url: \"git://127.0.0.1:1/app.git\" } }\n"
		   "environments:\n"
		   "  review:\n"
		   "    for_each: { branches: { repository: app, match: \"*\" } }\n"
		   "    name: \"r-{{ item.name }}\"\n"
		   "    target: { driver: local }\n"
		   "    services: { web: { command: [x], replicas: \"{{ "
		   "item.sha }}\" } }\n");
	msg = load_dir(dir, true, &cfg, &rc);
	/* the template is still checked, though no environment is kept */
	assert_int_equal(rc, -1);
	assert_non_null(strstr(msg, "'replicas' in service 'web' must be an "
				    "integer, not a string"));
	assert_int_equal(cfg->nenvs, 0);
	free(msg);
	rc_config_free(cfg);
	/* without offline, an unreachable repository is an error */
	write_file(dir, "reconcile.yaml",
		   "version: 1\nproject: shop\n"
		   "repositories: { app: { url: \"git://127.0.0.1:1/app.git\" } }\n"
		   "environments:\n"
		   "  review:\n"
		   "    for_each: { branches: { repository: app, match: \"*\" } }\n"
		   "    name: \"r-{{ item.name }}\"\n"
		   "    target: { driver: local }\n");
	msg = load_dir(dir, false, NULL, &rc);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(msg, "cannot list the branches of repository "
				    "'app'"));
	free(msg);
	tmpdir_remove(dir);
}

static void generated_names_must_be_valid_and_unique(void **state)
{
	char *dir = tmpdir_new(), *msg;
	int rc;

	RC_UNUSED(state);
	write_file(dir, "reconcile.yaml",
		   "version: 1\nproject: shop\nenvironments:\n"
		   "  site-a: { target: { driver: local } }\n"
		   "  site:\n"
		   "    for_each: { list: [ { name: a }, { name: B_x } ] }\n"
		   "    name: \"site-{{ item.name }}\"\n"
		   "    target: { driver: local }\n");
	msg = load_dir(dir, true, NULL, &rc);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(msg, "environment name 'site-B_x' made for "
				    "item 'B_x' is not valid"));
	assert_non_null(strstr(msg, "environment 'site-a' is defined twice "
				    "(made by for_each of 'site')"));
	free(msg);
	tmpdir_remove(dir);
}

int test_group_generators(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(list_generator_makes_one_env_per_item),
		cmocka_unit_test(branch_generator_over_a_local_repository),
		cmocka_unit_test(branch_names_are_sanitised),
		cmocka_unit_test(self_lists_the_config_repository),
		cmocka_unit_test(offline_checks_remote_generators_with_a_sample),
		cmocka_unit_test(generated_names_must_be_valid_and_unique),
	};
	return cmocka_run_group_tests_name("generators", tests, NULL, NULL);
}
