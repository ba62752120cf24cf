/* The controller's pieces without a network: webhook verification, the
 * bearer check, the metrics text, options, JSON log lines. */
#include "tests/unit/helpers.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "reconciler/controller/controller.h"
#include "reconciler/controller/http_api.h"
#include "reconciler/controller/metrics.h"
#include "reconciler/controller/webhook.h"

#include <jansson.h>

/* Request headers as "Name: value" strings. */
static const char *header(void *arg, const char *name)
{
	const char *const *h = arg;
	size_t n = strlen(name);

	for (; *h; h++)
		if (!strncasecmp(*h, name, n) && (*h)[n] == ':')
			return *h + n + 2;
	return NULL;
}

/* GitHub's documented example: secret "It's a Secret to Everybody",
 * body "Hello, World!". */
#define GH_SECRET "It's a Secret to Everybody"
#define GH_BODY "Hello, World!"
#define GH_SIG "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

static int verify(rc_webhook_kind k, const char *const *h, const char *body,
		  const char *secret, bool *ping)
{
	return rc_webhook_verify(k, header, (void *)(uintptr_t)h, body,
				 strlen(body), secret, ping);
}

static void github_signature(void **state)
{
	const char *good[] = {"X-Hub-Signature-256: " GH_SIG,
			      "X-GitHub-Event: push", NULL};
	const char *ping[] = {"X-Hub-Signature-256: " GH_SIG,
			      "X-GitHub-Event: ping", NULL};
	const char *upper[] = {"X-Hub-Signature-256: sha256="
			       "757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17",
			       NULL};
	const char *none[] = {"X-GitHub-Event: push", NULL};
	bool p;

	RC_UNUSED(state);
	assert_int_equal(verify(RC_HOOK_GITHUB, good, GH_BODY, GH_SECRET, &p), 0);
	assert_false(p);
	assert_int_equal(verify(RC_HOOK_GITHUB, ping, GH_BODY, GH_SECRET, &p), 0);
	assert_true(p);
	/* one byte of the body changed */
	assert_int_equal(verify(RC_HOOK_GITHUB, good, "Hello, World?",
				GH_SECRET, &p),
			 RC_EAUTH);
	assert_non_null(strstr(rc_error_last()->message, "does not match"));
	assert_null(strstr(rc_error_last()->message, "Hello"));
	assert_int_equal(verify(RC_HOOK_GITHUB, good, GH_BODY, "other", &p),
			 RC_EAUTH);
	assert_int_equal(verify(RC_HOOK_GITHUB, upper, GH_BODY, GH_SECRET, &p),
			 RC_EAUTH);
	assert_int_equal(verify(RC_HOOK_GITHUB, none, GH_BODY, GH_SECRET, &p),
			 RC_EAUTH);
	assert_non_null(strstr(rc_error_last()->message, "X-Hub-Signature-256"));
	/* no secret configured: nothing is genuine */
	assert_int_equal(verify(RC_HOOK_GITHUB, good, GH_BODY, NULL, &p),
			 RC_EAUTH);
	assert_int_equal(verify(RC_HOOK_GITHUB, good, GH_BODY, "", &p),
			 RC_EAUTH);
	rc_error_clear();
}

static void gitlab_and_generic(void **state)
{
	const char *gl[] = {"X-Gitlab-Token: s3cret", NULL};
	const char *gl_bad[] = {"X-Gitlab-Token: s3cre", NULL};
	const char *gen[] = {"Authorization: Bearer s3cret", NULL};
	const char *gen_bad[] = {"Authorization: Basic s3cret", NULL};
	bool p;

	RC_UNUSED(state);
	assert_int_equal(verify(RC_HOOK_GITLAB, gl, "{}", "s3cret", &p), 0);
	assert_int_equal(verify(RC_HOOK_GITLAB, gl_bad, "{}", "s3cret", &p),
			 RC_EAUTH);
	assert_int_equal(verify(RC_HOOK_GITLAB, gen, "{}", "s3cret", &p),
			 RC_EAUTH);
	assert_int_equal(verify(RC_HOOK_GENERIC, gen, "{}", "s3cret", &p), 0);
	assert_int_equal(verify(RC_HOOK_GENERIC, gen_bad, "{}", "s3cret", &p),
			 RC_EAUTH);
	assert_int_equal(rc_webhook_kind_of("/hooks/github"), RC_HOOK_GITHUB);
	assert_int_equal(rc_webhook_kind_of("/hooks/gitlab"), RC_HOOK_GITLAB);
	assert_int_equal(rc_webhook_kind_of("/hooks/generic"), RC_HOOK_GENERIC);
	assert_int_equal(rc_webhook_kind_of("/hooks/githubx"), -1);
	assert_int_equal(rc_webhook_kind_of("/metrics"), -1);
	rc_error_clear();
}

static void bearer(void **state)
{
	RC_UNUSED(state);
	assert_true(rc_bearer_ok("Bearer tok", "tok"));
	assert_true(rc_bearer_ok("bearer tok", "tok"));
	assert_false(rc_bearer_ok("Bearer tok2", "tok"));
	assert_false(rc_bearer_ok("Bearer to", "tok"));
	assert_false(rc_bearer_ok("tok", "tok"));
	assert_false(rc_bearer_ok(NULL, "tok"));
	assert_false(rc_bearer_ok("Bearer ", ""));
	assert_false(rc_bearer_ok("Bearer x", NULL));
}

static void metrics_text(void **state)
{
	rc_metrics *m = rc_metrics_new();
	rc_buf b = RC_BUF_INIT_MAX(1 << 20);

	RC_UNUSED(state);
	rc_metrics_run(m, "dev", "succeeded");
	rc_metrics_run(m, "dev", "succeeded");
	rc_metrics_run(m, "dev", "failed");
	rc_metrics_run(m, "we\"ird\\env", "unchanged");
	rc_metrics_drift(m, "dev", 3);
	rc_metrics_success(m, "dev", 1764950000.5);
	rc_metrics_apply_duration(m, 0.3);
	rc_metrics_apply_duration(m, 7);
	rc_metrics_apply_duration(m, 1000);
	rc_metrics_pending(m, 2);
	rc_metrics_render(m, &b);
	assert_non_null(strstr(b.ptr, "# TYPE reconcile_runs_total counter\n"));
	assert_non_null(strstr(b.ptr, "reconcile_runs_total{environment=\"dev\","
				      "result=\"succeeded\"} 2\n"));
	assert_non_null(strstr(b.ptr, "reconcile_runs_total{environment=\"dev\","
				      "result=\"failed\"} 1\n"));
	assert_non_null(strstr(b.ptr, "{environment=\"we\\\"ird\\\\env\","
				      "result=\"unchanged\"} 1\n"));
	assert_non_null(strstr(b.ptr, "reconcile_drift{environment=\"dev\"} 3\n"));
	assert_null(strstr(b.ptr, "reconcile_drift{environment=\"we"));
	assert_non_null(strstr(b.ptr, "reconcile_last_success_timestamp_seconds"
				      "{environment=\"dev\"} 1764950000.500\n"));
	/* cumulative buckets */
	assert_non_null(strstr(b.ptr, "reconcile_apply_duration_seconds_bucket"
				      "{le=\"0.25\"} 0\n"));
	assert_non_null(strstr(b.ptr, "reconcile_apply_duration_seconds_bucket"
				      "{le=\"0.5\"} 1\n"));
	assert_non_null(strstr(b.ptr, "reconcile_apply_duration_seconds_bucket"
				      "{le=\"10\"} 2\n"));
	assert_non_null(strstr(b.ptr, "reconcile_apply_duration_seconds_bucket"
				      "{le=\"300\"} 2\n"));
	assert_non_null(strstr(b.ptr, "reconcile_apply_duration_seconds_bucket"
				      "{le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(b.ptr, "reconcile_apply_duration_seconds_count 3\n"));
	assert_non_null(strstr(b.ptr, "reconcile_apply_duration_seconds_sum 1007.3"));
	assert_non_null(strstr(b.ptr, "reconcile_plans_pending 2\n"));
	assert_non_null(strstr(b.ptr, "process_resident_memory_bytes "));
	assert_null(strstr(b.ptr, "process_resident_memory_bytes 0\n"));
	assert_non_null(strstr(b.ptr, "process_cpu_seconds_total "));
	rc_metrics_forget(m, "dev");
	rc_buf_clear(&b);
	rc_metrics_render(m, &b);
	assert_null(strstr(b.ptr, "environment=\"dev\""));
	rc_buf_release(&b);
	rc_metrics_free(m);
}

static void options(void **state)
{
	rc_ctl_opts o;
	struct sockaddr_storage ss;
	bool lo;

	RC_UNUSED(state);
	assert_true(rc_ctl_duration("90s") == 90);
	assert_true(rc_ctl_duration("5m") == 300);
	assert_true(rc_ctl_duration("1h") == 3600);
	assert_true(rc_ctl_duration("250ms") == 0.25);
	assert_true(rc_ctl_duration("2") == 2);
	assert_true(rc_ctl_duration("5x") < 0);
	assert_true(rc_ctl_duration("-1s") < 0);
	assert_true(rc_ctl_duration("") < 0);
	assert_int_equal(rc_http_listen_addr("127.0.0.1:8080", &ss, &lo), 0);
	assert_true(lo);
	assert_int_equal(rc_http_listen_addr("0.0.0.0:8080", &ss, &lo), 0);
	assert_false(lo);
	assert_int_equal(rc_http_listen_addr("[::1]:8080", &ss, &lo), 0);
	assert_true(lo);
	assert_int_equal(rc_http_listen_addr("localhost:8080", &ss, &lo),
			 RC_EINVALID);
	assert_int_equal(rc_http_listen_addr("127.0.0.1:99999", &ss, &lo),
			 RC_EINVALID);
	assert_int_equal(rc_http_listen_addr("127.0.0.1", &ss, &lo),
			 RC_EINVALID);

	rc_ctl_opts_init(&o);
	assert_string_equal(o.listen, "127.0.0.1:8080");
	assert_true(o.poll == 60 && o.resync == 600);
	assert_int_equal(rc_ctl_opts_check(&o), 0);
	o.listen = "0.0.0.0:8080";
	assert_int_equal(rc_ctl_opts_check(&o), RC_EINVALID);
	o.token = "t";
	assert_int_equal(rc_ctl_opts_check(&o), 0);
	o.lease = "ns/name";
	assert_int_equal(rc_ctl_opts_check(&o), RC_EINVALID); /* no --leader-elect */
	o.leader_elect = true;
	o.lease = "Not_A/Name";
	assert_int_equal(rc_ctl_opts_check(&o), RC_EINVALID);
	assert_non_null(strstr(rc_error_last()->message, "--lease"));
	o.lease = "ns/name";
	assert_int_equal(rc_ctl_opts_check(&o), 0);
	o.lease = "name"; /* the namespace: the pod's, else the context's */
	assert_int_equal(rc_ctl_opts_check(&o), 0);
	o.leader_elect = false;
	o.lease = NULL;
	o.shards = 2; /* --shard: the StatefulSet ordinal of the hostname */
	assert_int_equal(rc_ctl_opts_check(&o), 0);
	o.shard = 2;
	assert_int_equal(rc_ctl_opts_check(&o), RC_EINVALID);
	o.shard = 1;
	assert_int_equal(rc_ctl_opts_check(&o), 0);
	o.shards = 0;
	assert_int_equal(rc_ctl_opts_check(&o), RC_EINVALID); /* K without N */
	rc_error_clear();
}

static void flags_file(void **state)
{
	char *dir = tmpdir_new();
	char path[512];
	rc_ctl_opts o;
	rc_log_level was = rc_log_threshold;

	RC_UNUSED(state);
	snprintf(path, sizeof(path), "%s/flags", dir);
	rc_ctl_opts_init(&o);
	write_file(dir, "flags", "# comment\npoll 5s  \n--resync 2m # inline\n"
				 "\nlog-level debug\n");
	assert_int_equal(rc_ctl_read_config(&o, path), 0);
	assert_true(o.poll == 5 && o.resync == 120);
	assert_int_equal(rc_log_threshold, RC_LOG_DEBUG);
	write_file(dir, "flags", "poll 1s\nresync often\n");
	assert_int_equal(rc_ctl_read_config(&o, path), RC_EINVALID);
	assert_non_null(strstr(rc_error_last()->message, "flags:2: 'often'"));
	assert_true(o.poll == 5); /* nothing applied from a bad file */
	write_file(dir, "flags", "state-dir /x\n");
	assert_int_equal(rc_ctl_read_config(&o, path), RC_EINVALID);
	assert_non_null(strstr(rc_error_last()->message, "cannot be set"));
	rc_log_threshold = was;
	rc_error_clear();
	tmpdir_remove(dir);
}

static void json_log_lines(void **state)
{
	FILE *f = tmpfile();
	char line[1024];
	json_t *j;
	rc_log_level was = rc_log_threshold;

	RC_UNUSED(state);
	rc_log_set_stream(f);
	rc_log_threshold = RC_LOG_INFO;
	rc_log_set_format(RC_LOG_JSON);
	rc_secret_register("tok-123");
	rc_log_context("dev", "run-1");
	RC_INFO("applied \"x\" with tok-123");
	rc_log_context(NULL, NULL);
	RC_WARN("plain");
	rc_log_set_format(RC_LOG_TEXT);
	rc_log_threshold = was;
	rc_log_set_stream(NULL);
	rewind(f);
	assert_non_null(fgets(line, sizeof(line), f));
	j = json_loads(line, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "level")), "info");
	assert_string_equal(json_string_value(json_object_get(j, "message")),
			    "applied \"x\" with (sensitive)");
	assert_string_equal(json_string_value(json_object_get(j, "environment")),
			    "dev");
	assert_string_equal(json_string_value(json_object_get(j, "run")), "run-1");
	assert_non_null(json_object_get(j, "time"));
	json_decref(j);
	assert_non_null(fgets(line, sizeof(line), f));
	j = json_loads(line, 0, NULL);
	assert_non_null(j);
	assert_null(json_object_get(j, "environment"));
	assert_null(json_object_get(j, "run"));
	json_decref(j);
	rc_secret_clear();
	fclose(f);
}

int test_group_controller(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(github_signature),
		cmocka_unit_test(gitlab_and_generic),
		cmocka_unit_test(bearer),
		cmocka_unit_test(metrics_text),
		cmocka_unit_test(options),
		cmocka_unit_test(flags_file),
		cmocka_unit_test(json_log_lines),
	};
	return cmocka_run_group_tests_name("controller", tests, NULL, NULL);
}
