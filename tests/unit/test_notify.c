#include "tests/unit/helpers.h"
#include "reconciler/base/log.h"
#include "reconciler/notify.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

static const char *const changes[] = {"create staging/service/web",
				      "update staging/addon/db"};

static rc_notify_event applied(void)
{
	rc_notify_event ev = {
		.kind = RC_NOTIFY_APPLIED,
		.project = "shop",
		.environment = "staging",
		.commit = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
		.run_id = "run-1",
		.summary = "2 changes (1 create, 1 update)",
		.changes = changes,
		.nchanges = 2,
	};
	return ev;
}

static void text_is_one_readable_line(void **state)
{
	rc_notify_event ev = applied();
	char *t;

	RC_UNUSED(state);
	t = rc_notify_text(&ev);
	assert_string_equal(t, "[shop] staging: applied at a1b2c3d (run run-1): "
			       "2 changes (1 create, 1 update)");
	free(t);
	ev.kind = RC_NOTIFY_FAILED;
	ev.summary = NULL;
	ev.error = "update staging/service/web: health check failed\n"
		   "second line";
	t = rc_notify_text(&ev);
	assert_string_equal(t, "[shop] staging: apply failed at a1b2c3d (run "
			       "run-1): update staging/service/web: health "
			       "check failed");
	free(t);
}

static void slack_payload_has_text_and_blocks(void **state)
{
	rc_notify_event ev = applied();
	json_t *p;
	const char *list;

	RC_UNUSED(state);
	p = rc_notify_payload(RC_NOTIFY_SLACK, &ev);
	assert_true(json_is_string(json_object_get(p, "text")));
	assert_null(json_object_get(p, "event"));
	list = json_string_value(json_object_get(
		json_object_get(json_array_get(json_object_get(p, "blocks"), 1),
				"text"),
		"text"));
	assert_string_equal(list, "• `create staging/service/web`\n"
				  "• `update staging/addon/db`");
	json_decref(p);
	ev.nchanges = 0;
	p = rc_notify_payload(RC_NOTIFY_SLACK, &ev);
	assert_null(json_object_get(p, "blocks"));
	json_decref(p);
}

static void webhook_payload_fields(void **state)
{
	rc_notify_event ev = applied();
	json_t *p;

	RC_UNUSED(state);
	p = rc_notify_payload(RC_NOTIFY_WEBHOOK, &ev);
	assert_string_equal(json_string_value(json_object_get(p, "event")),
			    "applied");
	assert_string_equal(json_string_value(json_object_get(p, "project")),
			    "shop");
	assert_string_equal(
		json_string_value(json_object_get(p, "environment")), "staging");
	assert_string_equal(json_string_value(json_object_get(p, "commit")),
			    ev.commit);
	assert_string_equal(json_string_value(json_object_get(p, "run_id")),
			    "run-1");
	assert_int_equal(json_array_size(json_object_get(p, "changes")), 2);
	assert_true(json_is_null(json_object_get(p, "error")));
	assert_true(json_is_null(json_object_get(p, "plan_id")));
	assert_int_equal(json_integer_value(json_object_get(p,
							    "changes_omitted")),
			 0);
	json_decref(p);
}

static void long_change_lists_are_cut(void **state)
{
	const char *many[RC_NOTIFY_MAX_CHANGES + 5];
	rc_notify_event ev = applied();
	json_t *p;

	RC_UNUSED(state);
	for (size_t i = 0; i < RC_ARRAY_SIZE(many); i++)
		many[i] = "update staging/service/web";
	ev.changes = many;
	ev.nchanges = RC_ARRAY_SIZE(many);
	p = rc_notify_payload(RC_NOTIFY_WEBHOOK, &ev);
	assert_int_equal(json_array_size(json_object_get(p, "changes")),
			 RC_NOTIFY_MAX_CHANGES);
	assert_int_equal(json_integer_value(json_object_get(p,
							    "changes_omitted")),
			 5);
	json_decref(p);
}

static void secrets_never_in_payloads(void **state)
{
	rc_notify_event ev = applied();
	json_t *p;
	char *s;

	RC_UNUSED(state);
	rc_secret_register("hunter2-token");
	ev.kind = RC_NOTIFY_FAILED;
	ev.error = "POST https://x/?token=hunter2-token: 401";
	for (int k = RC_NOTIFY_SLACK; k <= RC_NOTIFY_WEBHOOK; k++) {
		p = rc_notify_payload((rc_notify_kind)k, &ev);
		s = json_dumps(p, 0);
		assert_null(strstr(s, "hunter2"));
		assert_non_null(strstr(s, "(sensitive)"));
		free(s);
		json_decref(p);
	}
	rc_secret_clear();
}

static void what_is_retried(void **state)
{
	RC_UNUSED(state);
	assert_true(rc_notify_retryable(RC_ETIMEOUT, 0));
	assert_true(rc_notify_retryable(RC_ERROR, 0));
	assert_true(rc_notify_retryable(0, 500));
	assert_true(rc_notify_retryable(0, 503));
	assert_true(rc_notify_retryable(0, 429));
	assert_false(rc_notify_retryable(0, 200));
	assert_false(rc_notify_retryable(0, 400));
	assert_false(rc_notify_retryable(0, 404));
	assert_false(rc_notify_retryable(RC_EINVALID, 0));
}

static void backoff_grows_with_jitter_and_a_cap(void **state)
{
	RC_UNUSED(state);
	for (uint32_t r = 0; r < 1000; r += 7) {
		long a1 = rc_notify_backoff_ms(1, NULL, r);
		long a3 = rc_notify_backoff_ms(3, NULL, r);
		long a20 = rc_notify_backoff_ms(20, NULL, r);

		assert_in_range(a1, RC_NOTIFY_BACKOFF_BASE_MS / 2,
				RC_NOTIFY_BACKOFF_BASE_MS);
		assert_in_range(a3, RC_NOTIFY_BACKOFF_BASE_MS * 2,
				RC_NOTIFY_BACKOFF_BASE_MS * 4);
		assert_in_range(a20, RC_NOTIFY_BACKOFF_CAP_MS / 2,
				RC_NOTIFY_BACKOFF_CAP_MS);
	}
	/* jitter: not every draw the same */
	assert_int_not_equal(rc_notify_backoff_ms(2, NULL, 1),
			     rc_notify_backoff_ms(2, NULL, 400));
}

static void retry_after_is_respected(void **state)
{
	RC_UNUSED(state);
	assert_int_equal(rc_notify_backoff_ms(1, "7", 3), 7000);
	assert_int_equal(rc_notify_backoff_ms(4, "0", 3), 0);
	assert_int_equal(rc_notify_backoff_ms(1, "86400", 3),
			 RC_NOTIFY_RETRY_AFTER_CAP_MS);
	/* unreadable: the backoff instead */
	assert_in_range(rc_notify_backoff_ms(1, "soon", 3),
			RC_NOTIFY_BACKOFF_BASE_MS / 2,
			RC_NOTIFY_BACKOFF_BASE_MS);
}

static void filters_by_environment(void **state)
{
	char s1[] = "staging", s2[] = "pr-*", s3[] = "previews";
	char *envs[] = {s1, s2, s3};
	rc_notify_target t = {.environments = envs, .nenvironments = 3};
	rc_notify_target all = {0};

	RC_UNUSED(state);
	assert_true(rc_notify_target_wants(&t, "staging", NULL));
	assert_true(rc_notify_target_wants(&t, "pr-42", NULL));
	assert_true(rc_notify_target_wants(&t, "feature-x", "previews"));
	assert_false(rc_notify_target_wants(&t, "prod", NULL));
	assert_false(rc_notify_target_wants(&t, "prod", "prod"));
	assert_true(rc_notify_target_wants(&all, "prod", NULL));
}

static void without_targets_nothing_runs(void **state)
{
	rc_config cfg = {0};
	rc_notifier *n = (rc_notifier *)1;
	rc_notify_event ev = applied();

	RC_UNUSED(state);
	assert_int_equal(rc_notifier_new(&n, &cfg, "."), 0);
	assert_null(n);
	rc_notifier_send(n, &ev);
	assert_int_equal(rc_notifier_flush(n, 10), 0);
	rc_notifier_free(n);
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* An endpoint that takes connections and never answers: the first
 * notification hangs, the queue fills, the caller is never held up. */
static void a_dead_endpoint_never_blocks(void **state)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char url[64], name[] = "chat", var[] = "RC_UNIT_NOTIFY_URL", un[] = "url";
	rc_notify_target t = {.name = name, .kind = RC_NOTIFY_WEBHOOK,
			      .events = RC_NOTIFY_ALL_EVENTS};
	rc_config cfg = {0};
	rc_notifier *n;
	rc_notify_stats st;
	rc_notify_event ev = applied();
	double t0;

	RC_UNUSED(state);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 64), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook",
		 ntohs(a.sin_port));
	setenv(var, url, 1);
	t.url.name = un;
	t.url.kind = RC_SECRET_ENV;
	t.url.ref = var;
	cfg.notify = &t;
	cfg.nnotify = 1;
	assert_int_equal(rc_notifier_new(&n, &cfg, "."), 0);
	assert_non_null(n);
	t0 = now_s();
	for (int i = 0; i < RC_NOTIFY_QUEUE + 50; i++)
		rc_notifier_send(n, &ev);
	assert_true(now_s() - t0 < 1.0);
	assert_int_equal(rc_notifier_flush(n, 200), RC_ETIMEOUT);
	rc_error_clear();
	rc_notifier_stats(n, &st);
	assert_int_equal(st.sent, 0);
	/* one in flight, a full queue, the rest dropped */
	assert_in_range(st.dropped, 49, 50);
	rc_notifier_free(n);
	assert_true(now_s() - t0 < 2.0);
	unsetenv(var);
	close(fd);
	rc_secret_clear();
}

int test_group_notify(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(text_is_one_readable_line),
		cmocka_unit_test(slack_payload_has_text_and_blocks),
		cmocka_unit_test(webhook_payload_fields),
		cmocka_unit_test(long_change_lists_are_cut),
		cmocka_unit_test(secrets_never_in_payloads),
		cmocka_unit_test(what_is_retried),
		cmocka_unit_test(backoff_grows_with_jitter_and_a_cap),
		cmocka_unit_test(retry_after_is_respected),
		cmocka_unit_test(filters_by_environment),
		cmocka_unit_test(without_targets_nothing_runs),
		cmocka_unit_test(a_dead_endpoint_never_blocks),
	};
	return cmocka_run_group_tests_name("notify", tests, NULL, NULL);
}
