/* The Heroku driver's mapping (drivers/heroku_map.c): expand of the
 * django-heroku example, API objects as bodies (shaped as the Platform
 * API schema and the fake answer them), the config-var filter that keeps
 * add-on and hand-set keys out, normalize, immutable paths, the hook
 * command and its exit marker, netrc and URL checks. */
#include "tests/unit/helpers.h"
#include "drivers/heroku_map.h"
#include "reconciler/base/log.h"
#include "reconciler/diff.h"

static json_t *J(const char *text)
{
	json_error_t e;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &e);

	if (!v)
		fail_msg("bad JSON in a test: %s: %s", e.text, text);
	return v;
}

static void assert_json(const json_t *got, const char *want)
{
	json_t *w = J(want);
	char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);

	if (!json_equal((json_t *)(uintptr_t)got, w))
		fail_msg("got %s\nwant %s", g, want);
	free(g);
	json_decref(w);
}

static void sizes_tiers_services(void **state)
{
	char *s;

	(void)state;
	s = rc_heroku_size_fold("Standard-1X");
	assert_string_equal(s, "standard-1x");
	free(s);
	s = rc_heroku_plan_tier("essential-0");
	assert_string_equal(s, "essential");
	free(s);
	s = rc_heroku_plan_tier("standard-10");
	assert_string_equal(s, "standard");
	free(s);
	s = rc_heroku_plan_tier("mini");
	assert_string_equal(s, "mini");
	free(s);
	s = rc_heroku_plan_tier("premium-x");
	assert_string_equal(s, "premium-x");
	free(s);
	assert_true(rc_heroku_data_service("heroku-postgresql"));
	assert_true(rc_heroku_data_service("heroku-redis"));
	assert_false(rc_heroku_data_service("papertrail"));
	assert_false(rc_heroku_data_service(NULL));
}

static void immutable_and_normalize(void **state)
{
	json_t *f = J("{\"web\": {\"quantity\": \"2\", \"size\": \"Standard-2X\"}}");
	json_t *a = J("{\"service\": \"heroku-postgresql\", \"plan\": \"standard-0\"}");

	(void)state;
	assert_true(rc_heroku_immutable("app", "/region"));
	assert_true(rc_heroku_immutable("app", "/team"));
	assert_false(rc_heroku_immutable("app", "/stack"));
	assert_false(rc_heroku_immutable("app", "/maintenance"));
	assert_false(rc_heroku_immutable("app", "/regionx"));
	assert_true(rc_heroku_immutable("addon", "/tier"));
	assert_true(rc_heroku_immutable("addon", "/service"));
	assert_false(rc_heroku_immutable("addon", "/plan"));
	assert_false(rc_heroku_immutable("config", "/vars/A"));
	assert_false(rc_heroku_immutable("formation", "/web/image"));
	rc_heroku_normalize("formation", f);
	assert_json(f, "{\"web\": {\"quantity\": 2, \"size\": \"standard-2x\"}}");
	rc_heroku_normalize("addon", a);
	assert_json(a, "{\"service\": \"heroku-postgresql\", \"plan\": "
		       "\"standard-0\", \"tier\": \"standard\"}");
	json_decref(f);
	json_decref(a);
}

static void api_objects_as_bodies(void **state)
{
	json_t *app = J("{\"id\": \"1\", \"name\": \"joplin-staging\", "
			"\"region\": {\"id\": \"r\", \"name\": \"us\"}, "
			"\"stack\": {\"id\": \"s\", \"name\": \"heroku-24\"}, "
			"\"build_stack\": {\"id\": \"s\", \"name\": \"container\"}, "
			"\"team\": null, \"maintenance\": false, "
			"\"released_at\": \"2026-12-05T17:00:00Z\"}");
	json_t *addon = J("{\"id\": \"a\", \"name\": \"postgresql-x-1\", "
			  "\"addon_service\": {\"id\": \"s\", \"name\": "
			  "\"heroku-postgresql\"}, \"plan\": {\"id\": \"p\", "
			  "\"name\": \"heroku-postgresql:essential-0\"}, "
			  "\"config_vars\": [\"DATABASE_URL\"], \"state\": "
			  "\"provisioned\"}");
	json_t *form = J("[{\"type\": \"web\", \"quantity\": 2, \"size\": "
			 "\"Standard-1X\", \"dyno_size\": {\"id\": \"d\", "
			 "\"name\": \"Standard-1X\"}}, {\"type\": \"worker\", "
			 "\"quantity\": 0, \"size\": \"Basic\", "
			 "\"docker_image\": \"sha256:aaa\"}]");
	json_t *images = J("{\"worker\": {\"id\": \"sha256:aaa\", \"ref\": "
			   "\"docker.io/x/y:1\"}}");
	json_t *b;

	(void)state;
	b = rc_heroku_app_body(app, false);
	assert_json(b, "{\"name\": \"joplin-staging\", \"region\": \"us\", "
		       "\"stack\": \"container\"}");
	json_decref(b);
	b = rc_heroku_app_body(app, true);
	assert_true(json_is_false(json_object_get(b, "maintenance")));
	json_decref(b);
	b = rc_heroku_addon_body(addon);
	assert_json(b, "{\"service\": \"heroku-postgresql\", \"plan\": "
		       "\"essential-0\", \"tier\": \"essential\", \"as\": "
		       "\"DATABASE\"}");
	json_decref(b);
	b = rc_heroku_formation_body(form, images);
	assert_json(b, "{\"web\": {\"quantity\": 2, \"size\": \"standard-1x\"}, "
		       "\"worker\": {\"quantity\": 0, \"size\": \"basic\", "
		       "\"image\": \"docker.io/x/y:1\"}}");
	json_decref(b);
	/* an image reconcile did not release shows as its id */
	json_object_set_new(json_object_get(images, "worker"), "id",
			    json_string("sha256:bbb"));
	b = rc_heroku_formation_body(form, images);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(b, "worker"), "image")),
			    "sha256:aaa");
	json_decref(b);
	b = J("{}");
	assert_null(rc_heroku_app_body(b, false));
	json_decref(b);
	json_decref(app);
	json_decref(addon);
	json_decref(form);
	json_decref(images);
}

/* Only wanted keys, never DATABASE_URL or a key set by hand; secrets as
 * hashes; and the three-way diff leaves the rest alone. */
static void config_vars_filtered(void **state)
{
	json_t *vars = J("{\"DATABASE_URL\": \"postgres://u:pw-in-url@h/d\", "
			 "\"HAND\": \"x\", \"MODE\": \"HAND\", \"SECRET_KEY\": "
			 "\"s3cret-never-in-a-body\", \"OLD\": \"o\"}");
	json_t *want = J("{\"MODE\": true, \"SECRET_KEY\": true, \"OLD\": true, "
			 "\"GONE\": true}");
	json_t *dvars = J("{\"MODE\": \"STAGING\", \"SECRET_KEY\": "
			  "{\"$secret\": \"hmac-sha256:00\", \"ref\": \"env:SK\"}}");
	json_t *desired, *last, *b;
	rc_changes ch = {0};
	char *text;

	(void)state;
	b = rc_heroku_config_body(vars, want, dvars, NULL);
	text = json_dumps(b, JSON_COMPACT);
	assert_null(strstr(text, "DATABASE_URL"));
	assert_null(strstr(text, "pw-in-url"));
	assert_null(strstr(text, "HAND\":"));
	assert_null(strstr(text, "s3cret-never-in-a-body"));
	assert_non_null(strstr(text, "env:SK"));
	assert_null(json_object_get(json_object_get(b, "vars"), "GONE"));
	free(text);
	/* desired MODE and SECRET_KEY; last applied also had OLD */
	desired = json_pack("{s:O}", "vars", dvars);
	last = J("{\"vars\": {\"MODE\": \"STAGING\", \"OLD\": \"o\"}}");
	rc_diff(&ch, desired, last, b, NULL, 0);
	/* MODE drifted, SECRET_KEY's hash differs, OLD is removed: never
	 * DATABASE_URL nor HAND */
	assert_int_equal(ch.n, 3);
	for (size_t i = 0; i < ch.n; i++) {
		assert_null(strstr(ch.items[i].path, "DATABASE_URL"));
		assert_null(strstr(ch.items[i].path, "HAND"));
	}
	rc_changes_release(&ch);
	json_decref(desired);
	json_decref(last);
	json_decref(b);
	json_decref(vars);
	json_decref(want);
	json_decref(dvars);
}

static void hook_command_and_marker(void **state)
{
	json_t *argv = J("[\"python\", \"it's $HOME\", \"a;b\", \"\"]");
	rc_buf b = RC_BUF_INIT;
	char *t1 = rc_heroku_hook_token("run-1", "migrate");
	char *t2 = rc_heroku_hook_token("run-1", "migrate");
	char *t3 = rc_heroku_hook_token("run-2", "migrate");

	(void)state;
	assert_string_equal(t1, t2);
	assert_string_not_equal(t1, t3);
	assert_int_equal(strlen(t1), 16);
	rc_heroku_hook_command(&b, argv, "T1");
	assert_string_equal(b.ptr, "'python' 'it'\\''s $HOME' 'a;b' ''; "
				   "echo \"reconcile-exit:T1:$?\"");
	assert_int_equal(rc_heroku_exit_marker("2026 app[run.1]: "
					       "reconcile-exit:T1:3",
					       "T1"),
			 3);
	assert_int_equal(rc_heroku_exit_marker("reconcile-exit:T1:0", "T1"), 0);
	/* the echo of the command itself, another run's token, junk */
	assert_int_equal(rc_heroku_exit_marker(
				 "Starting process with command `... echo "
				 "\"reconcile-exit:T1:$?\"`",
				 "T1"),
			 -1);
	assert_int_equal(rc_heroku_exit_marker("reconcile-exit:T2:0", "T1"), -1);
	assert_int_equal(rc_heroku_exit_marker("reconcile-exit:T1:7x", "T1"),
			 -1);
	free(t1);
	free(t2);
	free(t3);
	rc_buf_release(&b);
	json_decref(argv);
}

static void netrc_and_urls(void **state)
{
	char *p;

	(void)state;
	p = rc_heroku_netrc_password("machine git.heroku.com login a password "
				     "g1\nmachine api.heroku.com\n  login "
				     "me@x.org\n  password k3y\n",
				     "api.heroku.com");
	assert_string_equal(p, "k3y");
	free(p);
	p = rc_heroku_netrc_password("# comment\ndefault login x password "
				     "\"d ef\"\n",
				     "api.heroku.com");
	assert_string_equal(p, "d ef");
	free(p);
	p = rc_heroku_netrc_password("default password d\nmachine "
				     "api.heroku.com password m\n",
				     "api.heroku.com");
	assert_string_equal(p, "m");
	free(p);
	assert_null(rc_heroku_netrc_password("machine other password o",
					     "api.heroku.com"));
	assert_null(rc_heroku_netrc_password("", "api.heroku.com"));
	assert_int_equal(rc_heroku_url_check("https://api.heroku.com", "X"), 0);
	assert_int_equal(rc_heroku_url_check("http://127.0.0.1:5000", "X"), 0);
	assert_int_equal(rc_heroku_url_check("http://localhost/x", "X"), 0);
	assert_int_equal(rc_heroku_url_check("http://[::1]:80", "X"), 0);
	assert_int_equal(rc_heroku_url_check("http://api.example.com", "X"),
			 RC_EINVALID);
	assert_non_null(strstr(rc_error_last()->message, "loopback"));
	assert_int_equal(rc_heroku_url_check("http://127.0.0.1.evil.com", "X"),
			 RC_EINVALID);
	assert_int_equal(rc_heroku_url_check("ftp://x", "X"), RC_EINVALID);
	rc_error_clear();
}

static bool has_dep(const rc_resource *r, const char *key)
{
	for (size_t i = 0; i < r->ndeps; i++)
		if (!strcmp(r->deps[i], key))
			return true;
	return false;
}

static void expand_django_example(void **state)
{
	rc_config *cfg = NULL;
	rc_resource_set set = {0};
	const rc_env *env;
	rc_resource *r;
	char *diag, *text;
	int rc;

	const char *tail = strstr(__FILE__, "/tests/unit/");
	rc_buf dir = RC_BUF_INIT;

	(void)state;
	assert_non_null(tail);
	rc_buf_printf(&dir, "%.*s/examples/django-heroku",
		      (int)(tail - __FILE__), __FILE__);
	diag = load_dir(dir.ptr, true, &cfg, &rc);
	rc_buf_release(&dir);
	if (rc != 0)
		fail_msg("%s", diag);
	free(diag);
	env = rc_config_env(cfg, "staging");
	assert_non_null(env);
	setenv("JOPLIN_SECRET_KEY", "sk-never-in-a-body", 1);
	setenv("JOPLIN_S3_KEYID", "id-never-in-a-body", 1);
	setenv("JOPLIN_S3_ACCESSKEY", "ak-never-in-a-body", 1);
	assert_int_equal(rc_heroku_expand(env, cfg->dir, &set), 0);
	assert_int_equal(set.n, 5);
	r = rc_resource_set_find(&set, "staging/app/joplin-staging");
	assert_non_null(r);
	assert_true(r->precious); /* it holds the database */
	assert_json(r->body, "{\"name\": \"joplin-staging\", \"region\": "
			     "\"us\", \"stack\": \"container\"}");
	r = rc_resource_set_find(&set, "staging/addon/db");
	assert_non_null(r);
	assert_true(r->precious);
	assert_json(r->body, "{\"service\": \"heroku-postgresql\", \"plan\": "
			     "\"standard-0\", \"tier\": \"standard\", \"as\": "
			     "\"DATABASE\"}");
	r = rc_resource_set_find(&set, "staging/formation/joplin-staging");
	assert_non_null(r);
	assert_json(r->body, "{\"web\": {\"quantity\": 1, \"size\": "
			     "\"standard-1x\", \"image\": "
			     "\"docker.io/cityofaustin/joplin-app:9c1e4b2\"}}");
	assert_true(has_dep(r, "staging/app/joplin-staging"));
	assert_true(has_dep(r, "staging/config/joplin-staging"));
	assert_true(has_dep(r, "staging/addon/db"));
	r = rc_resource_set_find(&set, "staging/pipeline-coupling/joplin-staging");
	assert_non_null(r);
	assert_json(r->body, "{\"pipeline\": \"joplin\", \"stage\": \"staging\"}");
	r = rc_resource_set_find(&set, "staging/config/joplin-staging");
	assert_non_null(r);
	text = json_dumps(r->body, JSON_COMPACT);
	assert_null(strstr(text, "never-in-a-body"));
	assert_non_null(strstr(text, "\"APPLICATION_NAME\":\"joplin-staging\""));
	assert_non_null(strstr(text, "env:JOPLIN_SECRET_KEY"));
	free(text);
	rc_resource_set_release(&set);
	/* a missing secret: an error naming it, nothing added (load_dir
	 * freed the file names locations point at) */
	for (size_t i = 0; i < cfg->nenvs; i++)
		for (size_t j = 0; j < cfg->envs[i].nsecrets; j++)
			cfg->envs[i].secrets[j].loc.file = NULL;
	unsetenv("JOPLIN_SECRET_KEY");
	assert_true(rc_heroku_expand(env, cfg->dir, &set) < 0);
	assert_int_equal(set.n, 0);
	assert_non_null(strstr(rc_error_last()->message, "SECRET_KEY"));
	rc_error_clear();
	rc_resource_set_release(&set);
	rc_config_free(cfg);
	rc_secret_clear();
}

int test_group_heroku_map(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sizes_tiers_services),
		cmocka_unit_test(immutable_and_normalize),
		cmocka_unit_test(api_objects_as_bodies),
		cmocka_unit_test(config_vars_filtered),
		cmocka_unit_test(hook_command_and_marker),
		cmocka_unit_test(netrc_and_urls),
		cmocka_unit_test(expand_django_example),
	};

	return cmocka_run_group_tests_name("heroku_map", tests, NULL, NULL);
}
