/* Unreachable endpoints (drivers/http.h): consecutive transport failures
 * counted per endpoint across clients and threads, the mark after
 * RC_HTTP_UNREACHABLE_AFTER over RC_HTTP_UNREACHABLE_MIN_MS, new requests refused at once with the
 * message that names the endpoint, any reply or a probe clearing it, the
 * trial attempt, and what a thread's requests met (a reply lost after a
 * request that may change something). Against the scripted HTTPS server
 * (tests/support/testsrv.h). */
#include "tests/unit/helpers.h"
#include "tests/support/testca.h"
#include "tests/support/testsrv.h"
#include "drivers/http.h"
#include "reconciler/base/error.h"

#include <pthread.h>
#include <regex.h>

static rc_testca ca;
static rc_testsrv *srv;
static char origin[64];

static int setup(void **state)
{
	RC_UNUSED(state);
	unsetenv("https_proxy");
	unsetenv("HTTPS_PROXY");
	unsetenv("all_proxy");
	unsetenv("ALL_PROXY");
	if (rc_testca_make(&ca, "alice", "system:masters") < 0)
		return -1;
	srv = rc_testsrv_start(&ca, false, false);
	if (!srv)
		return -1;
	snprintf(origin, sizeof(origin), "https://127.0.0.1:%d",
		 rc_testsrv_port(srv));
	return 0;
}

static int teardown(void **state)
{
	RC_UNUSED(state);
	rc_testsrv_stop(srv);
	rc_testca_release(&ca);
	rc_http_endpoints_reset();
	return 0;
}

static int each_test(void **state)
{
	RC_UNUSED(state);
	rc_http_endpoints_reset();
	rc_http_thread_reset();
	return 0;
}

static rc_http *client(int retries)
{
	rc_http_opts o;
	rc_http *h = NULL;

	rc_http_opts_init(&o);
	o.base_url = rc_testsrv_url(srv);
	o.ca_pem = ca.ca_cert;
	o.backoff_base_ms = 1;
	o.backoff_cap_ms = 5;
	o.max_retries = retries;
	o.service = "the test API";
	assert_int_equal(rc_http_open(&h, &o), 0);
	return h;
}

static void script(rc_testsrv_action action, int status)
{
	rc_testsrv_step st = {.action = action, .status = status,
			      .body = "{}"};

	rc_testsrv_script(srv, &st, 1);
}

static int send_one(rc_http *h, const char *method)
{
	rc_http_req req = {.method = method, .path = "/things",
			   .body = strcmp(method, "GET") ? "{}" : NULL,
			   .body_len = strcmp(method, "GET") ? 2 : 0};
	rc_http_resp r;
	int rc;

	rc_http_resp_init(&r);
	rc = rc_http_do(h, &req, &r);
	rc_http_resp_release(&r);
	return rc;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Failures in a row over RC_HTTP_UNREACHABLE_MIN_MS: unreachable. */
static void fail_until_marked(rc_http *h)
{
	for (int i = 0; i < RC_HTTP_UNREACHABLE_AFTER - 1; i++)
		assert_true(send_one(h, "GET") < 0);
	sleep_ms(RC_HTTP_UNREACHABLE_MIN_MS + 50);
	assert_true(send_one(h, "GET") < 0);
}

static rc_http_endpoint state_of(void)
{
	rc_http_endpoint ep;

	memset(&ep, 0, sizeof(ep));
	assert_int_equal(rc_http_endpoint_state(origin, &ep), 1);
	return ep;
}

/* Failures in a row mark it; a reply of any status clears the count. */
static void outage_counted_and_cleared(void **state)
{
	rc_http *h = client(0);
	rc_http_endpoint ep;
	time_t before = time(NULL);

	RC_UNUSED(state);
	script(RC_TESTSRV_DROP, 0);
	assert_true(send_one(h, "GET") < 0);
	assert_true(send_one(h, "GET") < 0);
	ep = state_of();
	assert_int_equal(ep.failures, 2);
	assert_false(ep.unreachable);
	/* a 500 is a reply: the server is there */
	script(RC_TESTSRV_REPLY, 500);
	assert_int_equal(send_one(h, "GET"), 0);
	ep = state_of();
	assert_int_equal(ep.failures, 0);

	/* a burst of failures shorter than RC_HTTP_UNREACHABLE_MIN_MS
	   (resets among many requests): counted, not a mark */
	script(RC_TESTSRV_DROP, 0);
	for (int i = 0; i < RC_HTTP_UNREACHABLE_AFTER + 1; i++)
		assert_true(send_one(h, "GET") < 0);
	ep = state_of();
	assert_int_equal(ep.failures, RC_HTTP_UNREACHABLE_AFTER + 1);
	assert_false(ep.unreachable);
	script(RC_TESTSRV_REPLY, 200);
	assert_int_equal(send_one(h, "GET"), 0);

	script(RC_TESTSRV_DROP, 0);
	fail_until_marked(h);
	ep = state_of();
	assert_true(ep.unreachable);
	assert_int_equal(ep.failures, RC_HTTP_UNREACHABLE_AFTER);
	assert_true(ep.since >= before && ep.since <= time(NULL));
	assert_string_equal(ep.service, "the test API");
	rc_http_close(h);
}

/* While unreachable: a new request fails at once, sends nothing, and
 * says which endpoint since when; a probe that connects clears it. */
static void outage_refused_at_once(void **state)
{
	rc_http *h = client(3);
	char pattern[256];
	regex_t re;
	rc_http_endpoint ep;

	RC_UNUSED(state);
	script(RC_TESTSRV_DROP, 0);
	/* one request, retried: each attempt counts */
	assert_true(send_one(h, "GET") < 0);
	assert_int_equal(state_of().failures, 4);
	fail_until_marked(h);
	assert_true(state_of().unreachable);
	/* the last request's retries met the mark */
	assert_string_equal(rc_http_thread_unreachable(), origin);
	rc_http_thread_reset();

	script(RC_TESTSRV_REPLY, 200);
	assert_int_equal(send_one(h, "GET"), RC_EUNREACHABLE);
	assert_int_equal(rc_testsrv_requests(srv), 0);
	snprintf(pattern, sizeof(pattern),
		 "^GET %s/things: the test API at %s is unreachable since "
		 "[0-2][0-9]:[0-5][0-9]:[0-6][0-9]$",
		 origin, origin);
	assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
	assert_int_equal(regexec(&re, rc_error_last()->message, 0, NULL, 0),
			 0);
	regfree(&re);
	assert_string_equal(rc_http_thread_unreachable(), origin);
	assert_false(rc_http_thread_unanswered()); /* nothing was sent */

	/* the probe: the server listens again */
	assert_true(rc_http_endpoint_probe(origin, 2000));
	ep = state_of();
	assert_false(ep.unreachable);
	assert_int_equal(ep.failures, 0);
	assert_int_equal(send_one(h, "GET"), 0);
	assert_int_equal(rc_testsrv_requests(srv), 1);
	rc_http_close(h);
}

/* A port nobody listens on: refused connections count, the probe fails
 * and leaves the mark. */
static void outage_probe_closed_port(void **state)
{
	rc_http_opts o;
	rc_http *h = NULL;
	rc_http_endpoint ep;

	RC_UNUSED(state);
	rc_http_opts_init(&o);
	o.base_url = "https://127.0.0.1:1";
	o.max_retries = 2;
	o.backoff_base_ms = 1;
	o.backoff_cap_ms = 2;
	assert_int_equal(rc_http_open(&h, &o), 0);
	assert_true(send_one(h, "POST") < 0);
	assert_false(rc_http_thread_unanswered()); /* refused: not sent */
	sleep_ms(RC_HTTP_UNREACHABLE_MIN_MS + 50);
	assert_true(send_one(h, "GET") < 0); /* three attempts */
	assert_int_equal(rc_http_endpoint_state("https://127.0.0.1:1", &ep),
			 1);
	assert_true(ep.unreachable);
	assert_string_equal(ep.service, "the server"); /* the default */
	assert_false(rc_http_endpoint_probe("https://127.0.0.1:1", 500));
	assert_int_equal(rc_http_endpoint_state("https://127.0.0.1:1", &ep),
			 1);
	assert_true(ep.unreachable);
	rc_http_close(h);
}

/* A request that may change something, sent, its reply lost: not known
 * whether it took effect. A GET whose reply is lost is not that. */
static void outage_reply_lost(void **state)
{
	rc_http *h = client(0);

	RC_UNUSED(state);
	script(RC_TESTSRV_DROP, 0);
	assert_true(send_one(h, "GET") < 0);
	assert_false(rc_http_thread_unanswered());
	assert_string_equal(rc_http_thread_origin(), origin);
	assert_true(send_one(h, "POST") < 0);
	assert_true(rc_http_thread_unanswered());
	rc_http_thread_reset();
	assert_false(rc_http_thread_unanswered());
	assert_null(rc_http_thread_origin());
	script(RC_TESTSRV_REPLY, 201);
	assert_int_equal(send_one(h, "POST"), 0);
	assert_false(rc_http_thread_unanswered());
	rc_http_close(h);
}

struct worker {
	rc_http *h;
	int fails;
};

static void *fail_some(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < 2; i++)
		w->fails += send_one(w->h, "GET") < 0;
	rc_error_clear();
	return NULL;
}

/* Counted across clients and threads: two clients, two threads, two
 * failures each; then one more later: unreachable. */
static void outage_across_clients(void **state)
{
	struct worker w[2] = {{client(0), 0}, {client(0), 0}};
	pthread_t t[2];

	RC_UNUSED(state);
	script(RC_TESTSRV_DROP, 0);
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, fail_some, &w[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(w[0].fails + w[1].fails, 4);
	assert_int_equal(state_of().failures, 4);
	sleep_ms(RC_HTTP_UNREACHABLE_MIN_MS + 50);
	assert_true(send_one(w[0].h, "GET") < 0);
	assert_true(state_of().unreachable);
	/* and a third client finds it so at once */
	{
		rc_http *h = client(0);

		assert_int_equal(send_one(h, "GET"), RC_EUNREACHABLE);
		rc_http_close(h);
	}
	rc_http_close(w[0].h);
	rc_http_close(w[1].h);
}

/* Without a probe: one attempt every RC_HTTP_UNREACHABLE_TRIAL_MS goes
 * out as a trial, and its reply clears the mark. */
static void outage_trial(void **state)
{
	rc_http *h = client(0);
	struct timespec ts = {RC_HTTP_UNREACHABLE_TRIAL_MS / 1000 + 1, 0};

	RC_UNUSED(state);
	script(RC_TESTSRV_DROP, 0);
	fail_until_marked(h);
	script(RC_TESTSRV_REPLY, 200);
	assert_int_equal(send_one(h, "GET"), RC_EUNREACHABLE);
	nanosleep(&ts, NULL);
	assert_int_equal(send_one(h, "GET"), 0);
	assert_false(state_of().unreachable);
	assert_int_equal(rc_testsrv_requests(srv), 1);
	rc_http_close(h);
}

int test_group_outage(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(outage_counted_and_cleared, each_test),
		cmocka_unit_test_setup(outage_refused_at_once, each_test),
		cmocka_unit_test_setup(outage_probe_closed_port, each_test),
		cmocka_unit_test_setup(outage_reply_lost, each_test),
		cmocka_unit_test_setup(outage_across_clients, each_test),
		cmocka_unit_test_setup(outage_trial, each_test),
	};
	return cmocka_run_group_tests_name("outage", tests, setup, teardown);
}
