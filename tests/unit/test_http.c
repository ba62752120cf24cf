/* The HTTP client against a scripted HTTPS server (tests/support/testsrv.h):
 * TLS, keep-alive, retries, timeouts, caps, streams, the rate budget,
 * threads, and secrets kept out of messages and logs. Timings are checked
 * as lower bounds only. */
#include "tests/unit/helpers.h"
#include "tests/support/testca.h"
#include "tests/support/testsrv.h"
#include "drivers/http.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"

#include <fcntl.h>
#include <pthread.h>

static rc_testca ca;
static rc_testsrv *srv;  /* asks for client certificates, does not need one */
static rc_testsrv *mtls; /* answers 401 without a client certificate */
static char *dir;
static char ca_path[512], cert_path[512], key_path[512];

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int setup(void **state)
{
	static const char *const proxies[] = {
		"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY",
		"all_proxy",  "ALL_PROXY",
	};

	RC_UNUSED(state);
	for (size_t i = 0; i < RC_ARRAY_SIZE(proxies); i++)
		unsetenv(proxies[i]);
	if (rc_testca_make(&ca, "alice", "system:masters") < 0)
		return -1;
	dir = tmpdir_new();
	snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", dir);
	snprintf(cert_path, sizeof(cert_path), "%s/client.pem", dir);
	snprintf(key_path, sizeof(key_path), "%s/client-key.pem", dir);
	if (rc_testca_write(ca_path, ca.ca_cert) < 0 ||
	    rc_testca_write(cert_path, ca.client_cert) < 0 ||
	    rc_testca_write(key_path, ca.client_key) < 0)
		return -1;
	srv = rc_testsrv_start(&ca, true, false);
	mtls = rc_testsrv_start(&ca, true, true);
	return srv && mtls ? 0 : -1;
}

static int teardown(void **state)
{
	RC_UNUSED(state);
	rc_testsrv_stop(srv);
	rc_testsrv_stop(mtls);
	rc_testca_release(&ca);
	tmpdir_remove(dir);
	rc_secret_clear();
	return 0;
}

/* Options for srv, trusting the test CA, with fast retries. */
static void opts_for(rc_http_opts *o, const rc_testsrv *s)
{
	rc_http_opts_init(o);
	o->base_url = rc_testsrv_url(s);
	o->ca_pem = ca.ca_cert;
	o->backoff_base_ms = 1;
	o->backoff_cap_ms = 5;
	o->max_retries = 3;
}

static rc_http *client_for(const rc_testsrv *s)
{
	rc_http_opts o;
	rc_http *h = NULL;

	opts_for(&o, s);
	assert_int_equal(rc_http_open(&h, &o), 0);
	return h;
}

static void script1(int status, const char *body, const char *headers)
{
	rc_testsrv_step st = {.status = status, .body = body,
			      .headers = headers};

	rc_testsrv_script(srv, &st, 1);
}

static int get(rc_http *h, const char *path, rc_http_resp *r)
{
	rc_http_req req = {.method = "GET", .path = path};

	return rc_http_do(h, &req, r);
}

/* ------------------------------------------------------- log capture */

static char *logbuf;
static size_t loglen;
static FILE *logfile;
static rc_log_level saved_level;

static void log_start(void)
{
	logbuf = NULL;
	loglen = 0;
	logfile = open_memstream(&logbuf, &loglen);
	assert_non_null(logfile);
	saved_level = rc_log_threshold;
	rc_log_threshold = RC_LOG_DEBUG;
	rc_log_set_stream(logfile);
}

/* The captured log (caller frees). */
static char *log_stop(void)
{
	rc_log_set_stream(NULL);
	rc_log_threshold = saved_level;
	fclose(logfile);
	return logbuf;
}

/* -------------------------------------------------------------- tests */

static void http_keepalive(void **state)
{
	rc_http *h = client_for(srv);
	rc_http_resp r;
	rc_http_counters st;
	rc_testsrv_req seen;

	RC_UNUSED(state);
	script1(200, "{\"ok\":true}",
		"X-Test: one\nContent-Type: application/json");
	rc_http_resp_init(&r);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(get(h, "/api/v1/namespaces", &r), 0);
		assert_int_equal(r.status, 200);
		assert_string_equal(r.body.ptr, "{\"ok\":true}");
		assert_int_equal(r.attempts, 1);
	}
	assert_string_equal(rc_http_resp_header(&r, "x-test"), "one");
	assert_string_equal(rc_http_resp_header(&r, "CONTENT-TYPE"),
			    "application/json");
	assert_null(rc_http_resp_header(&r, "Next-Range"));
	rc_http_stats(h, &st);
	assert_int_equal(st.requests, 20);
	assert_int_equal(st.retries, 0);
	assert_int_equal(st.connections, 1);
	assert_true(st.bytes_received > 20 * 11);
	assert_true(st.bytes_sent > 0);
	assert_int_equal(rc_testsrv_connections(srv), 1);
	assert_int_equal(rc_testsrv_requests(srv), 20);
	assert_true(rc_testsrv_request(srv, 0, &seen));
	assert_string_equal(seen.method, "GET");
	assert_string_equal(seen.path, "/api/v1/namespaces");
	assert_string_equal(seen.user_agent, "reconcile/" RC_VERSION);
	assert_string_equal(seen.accept, "application/json");
	assert_null(seen.authorization);
	rc_testsrv_req_release(&seen);
	rc_http_resp_release(&r);
	rc_http_close(h);
}

static void http_methods_and_bodies(void **state)
{
	rc_http *h = client_for(srv);
	rc_http_resp r;
	rc_testsrv_req seen;
	static const char apply[] = "{\"kind\":\"Deployment\"}";
	rc_http_req req = {.method = "PATCH",
			   .path = "/apis/apps/v1/deployments/web",
			   .content_type = "application/apply-patch+yaml",
			   .body = apply,
			   .body_len = sizeof(apply) - 1,
			   .idempotent = true};
	rc_http_req post = {.method = "POST", .path = "/apps", .body = "{}",
			    .body_len = 2};
	rc_http_req head = {.method = "HEAD", .path = "/h"};
	rc_http_req del = {.method = "DELETE", .path = "/d"};

	RC_UNUSED(state);
	script1(201, "{\"created\":true}", NULL);
	rc_http_resp_init(&r);
	assert_int_equal(rc_http_do(h, &req, &r), 0);
	assert_int_equal(r.status, 201);
	assert_int_equal(rc_http_do(h, &post, &r), 0);
	assert_int_equal(rc_http_do(h, &head, &r), 0);
	assert_int_equal(r.body.len, 0);
	assert_int_equal(rc_http_do(h, &del, &r), 0);
	assert_true(rc_testsrv_request(srv, 0, &seen));
	assert_string_equal(seen.method, "PATCH");
	assert_string_equal(seen.content_type, "application/apply-patch+yaml");
	assert_string_equal(seen.body, apply);
	rc_testsrv_req_release(&seen);
	assert_true(rc_testsrv_request(srv, 1, &seen));
	assert_string_equal(seen.method, "POST");
	assert_string_equal(seen.content_type, "application/json");
	assert_string_equal(seen.body, "{}");
	rc_testsrv_req_release(&seen);
	assert_true(rc_testsrv_request(srv, 2, &seen));
	assert_string_equal(seen.method, "HEAD");
	rc_testsrv_req_release(&seen);
	assert_true(rc_testsrv_request(srv, 3, &seen));
	assert_string_equal(seen.method, "DELETE");
	rc_testsrv_req_release(&seen);
	rc_http_resp_release(&r);
	rc_http_close(h);
}

static void http_ca_file_and_data(void **state)
{
	rc_http_opts o;
	rc_http *h;
	rc_http_resp r;

	RC_UNUSED(state);
	script1(200, "ok", NULL);
	rc_http_resp_init(&r);
	opts_for(&o, srv);
	o.ca_pem = NULL;
	o.ca_file = ca_path;
	assert_int_equal(rc_http_open(&h, &o), 0);
	assert_int_equal(get(h, "/", &r), 0);
	assert_int_equal(r.status, 200);
	rc_http_close(h);

	/* the name in the certificate, reached through 127.0.0.1 */
	opts_for(&o, srv);
	o.tls_server_name = "localhost";
	assert_int_equal(rc_http_open(&h, &o), 0);
	assert_int_equal(get(h, "/", &r), 0);
	assert_int_equal(r.status, 200);
	rc_http_close(h);
	rc_http_resp_release(&r);
}

static void http_untrusted_not_retried(void **state)
{
	rc_http_opts o;
	rc_http *h;
	rc_http_resp r;
	rc_http_counters st;
	char *log;

	RC_UNUSED(state);
	script1(200, "ok", NULL);
	rc_http_resp_init(&r);
	opts_for(&o, srv);
	o.ca_pem = NULL; /* the system's store does not know the test CA */
	assert_int_equal(rc_http_open(&h, &o), 0);
	assert_int_equal(get(h, "/api", &r), RC_EAUTH);
	assert_non_null(strstr(rc_error_last()->message,
			       "the server's certificate is not trusted ("));
	assert_non_null(strstr(rc_error_last()->message,
			       rc_testsrv_url(srv)));
	assert_null(strstr(rc_error_last()->message, "attempts"));
	rc_http_stats(h, &st);
	assert_int_equal(st.requests, 1);
	assert_int_equal(r.attempts, 1);
	assert_int_equal(rc_testsrv_requests(srv), 0);
	rc_http_close(h);

	/* another CA's server certificate is not trusted either */
	{
		rc_testca other;

		assert_int_equal(rc_testca_make(&other, "bob", "dev"), 0);
		opts_for(&o, srv);
		o.ca_pem = other.ca_cert;
		assert_int_equal(rc_http_open(&h, &o), 0);
		assert_int_equal(get(h, "/api", &r), RC_EAUTH);
		rc_http_close(h);
		rc_testca_release(&other);
	}

	/* insecure: accepted, with one warning at open */
	log_start();
	opts_for(&o, srv);
	o.ca_pem = NULL;
	o.insecure = true;
	assert_int_equal(rc_http_open(&h, &o), 0);
	assert_int_equal(get(h, "/api", &r), 0);
	assert_int_equal(get(h, "/api", &r), 0);
	assert_int_equal(r.status, 200);
	rc_http_close(h);
	log = log_stop();
	assert_non_null(strstr(log, "warning: TLS verification is off for"));
	assert_null(strstr(strstr(log, "is off") + 1, "is off"));
	free(log);
	rc_http_resp_release(&r);
}

static void http_client_certificate(void **state)
{
	rc_testsrv_step ok = {.status = 200, .body = "{}"};
	rc_testsrv_req seen;
	rc_http_opts o;
	rc_http *h;
	rc_http_resp r;

	RC_UNUSED(state);
	rc_testsrv_script(mtls, &ok, 1);
	rc_http_resp_init(&r);

	/* PEM data */
	opts_for(&o, mtls);
	o.cert_pem = ca.client_cert;
	o.key_pem = ca.client_key;
	assert_int_equal(rc_http_open(&h, &o), 0);
	assert_int_equal(get(h, "/api", &r), 0);
	assert_int_equal(r.status, 200);
	rc_http_close(h);
	assert_true(rc_testsrv_request(mtls, 0, &seen));
	assert_non_null(seen.client_cn);
	assert_string_equal(seen.client_cn, "alice");
	rc_testsrv_req_release(&seen);

	/* files */
	opts_for(&o, mtls);
	o.cert_file = cert_path;
	o.key_file = key_path;
	assert_int_equal(rc_http_open(&h, &o), 0);
	assert_int_equal(get(h, "/api", &r), 0);
	assert_int_equal(r.status, 200);
	rc_http_close(h);

	/* none: the server refuses */
	h = client_for(mtls);
	assert_int_equal(get(h, "/api", &r), 0);
	assert_int_equal(r.status, 401);
	assert_int_equal(r.attempts, 1);
	rc_http_close(h);

	/* a certificate without its key is refused at open */
	opts_for(&o, mtls);
	o.cert_pem = ca.client_cert;
	assert_int_equal(rc_http_open(&h, &o), RC_EINVALID);
	assert_null(h);
	rc_http_resp_release(&r);
}

static void http_retry_after(void **state)
{
	rc_testsrv_step steps[] = {
		{.status = 429,
		 .body = "slow down",
		 .headers = "Retry-After: 1"},
		{.status = 200, .body = "done"},
	};
	rc_http *h = client_for(srv);
	rc_http_resp r;
	rc_http_counters st;
	long long t0;

	RC_UNUSED(state);
	rc_testsrv_script(srv, steps, 2);
	rc_http_resp_init(&r);
	t0 = now_ms();
	/* 429: retried whatever the method */
	{
		rc_http_req req = {.method = "POST", .path = "/x", .body = "{}",
				   .body_len = 2};

		assert_int_equal(rc_http_do(h, &req, &r), 0);
	}
	assert_true(now_ms() - t0 >= 900);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body.ptr, "done");
	assert_int_equal(r.attempts, 2);
	rc_http_stats(h, &st);
	assert_int_equal(st.retries, 1);
	rc_http_close(h);
	rc_http_resp_release(&r);
}

static void http_retry_after_capped(void **state)
{
	rc_testsrv_step steps[] = {
		{.status = 503, .headers = "Retry-After: 3600"},
		{.status = 200, .body = "done"},
	};
	rc_http_opts o;
	rc_http *h;
	rc_http_resp r;
	char *log;

	RC_UNUSED(state);
	rc_testsrv_script(srv, steps, 2);
	rc_http_resp_init(&r);
	opts_for(&o, srv);
	o.retry_after_cap_ms = 100;
	assert_int_equal(rc_http_open(&h, &o), 0);
	log_start();
	assert_int_equal(get(h, "/capped", &r), 0);
	log = log_stop();
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(log, "http: GET /capped -> 503"));
	assert_non_null(strstr(log, "retrying in 100 ms (attempt 2 of 4)"));
	assert_non_null(strstr(log, "http: GET /capped -> 200"));
	free(log);
	rc_http_close(h);
	rc_http_resp_release(&r);
}

static void http_retry_after_parse(void **state)
{
	time_t now = 1700000000;
	char date[64];
	struct tm tm;
	time_t later = now + 30;

	RC_UNUSED(state);
	assert_int_equal(rc_http_retry_after_ms("120", now), 120000);
	assert_int_equal(rc_http_retry_after_ms(" 0 ", now), 0);
	assert_int_equal(rc_http_retry_after_ms("soon", now), -1);
	assert_int_equal(rc_http_retry_after_ms("12abc", now), -1);
	assert_int_equal(rc_http_retry_after_ms(NULL, now), -1);
	gmtime_r(&later, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	assert_int_equal(rc_http_retry_after_ms(date, now), 30000);
	/* a date in the past: no wait */
	assert_int_equal(rc_http_retry_after_ms(date, now + 60), 0);
}

static void http_5xx_retried(void **state)
{
	rc_testsrv_step steps[] = {
		{.status = 503, .body = "unavailable"},
		{.status = 500, .body = "oops"},
		{.status = 502},
		{.status = 200, .body = "fine"},
	};
	rc_http *h = client_for(srv);
	rc_http_resp r;

	RC_UNUSED(state);
	rc_testsrv_script(srv, steps, 4);
	rc_http_resp_init(&r);
	assert_int_equal(get(h, "/flaky", &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body.ptr, "fine");
	assert_int_equal(r.attempts, 4);

	/* out of attempts: the last reply is returned as it is */
	rc_testsrv_script(srv, steps, 2);
	{
		rc_http_opts o;
		rc_http *one;

		opts_for(&o, srv);
		o.max_retries = 1;
		assert_int_equal(rc_http_open(&one, &o), 0);
		assert_int_equal(get(one, "/flaky", &r), 0);
		assert_int_equal(r.status, 500);
		assert_string_equal(r.body.ptr, "oops");
		assert_int_equal(r.attempts, 2);
		rc_http_close(one);
	}
	/* a 4xx is the caller's business: never retried */
	script1(404, "{\"reason\":\"NotFound\"}", NULL);
	assert_int_equal(get(h, "/missing", &r), 0);
	assert_int_equal(r.status, 404);
	assert_int_equal(r.attempts, 1);
	rc_http_close(h);
	rc_http_resp_release(&r);
}

static void http_post_not_retried(void **state)
{
	rc_testsrv_step steps[] = {
		{.status = 500, .body = "half done?"},
		{.status = 200, .body = "fine"},
	};
	rc_http *h = client_for(srv);
	rc_http_resp r;
	rc_http_req post = {.method = "POST", .path = "/apps", .body = "{}",
			    .body_len = 2};
	rc_http_req patch = {.method = "PATCH", .path = "/apps/x",
			     .body = "{}", .body_len = 2};

	RC_UNUSED(state);
	rc_http_resp_init(&r);
	rc_testsrv_script(srv, steps, 2);
	assert_int_equal(rc_http_do(h, &post, &r), 0);
	assert_int_equal(r.status, 500);
	assert_string_equal(r.body.ptr, "half done?");
	assert_int_equal(r.attempts, 1);
	assert_int_equal(rc_testsrv_requests(srv), 1);

	rc_testsrv_script(srv, steps, 2);
	assert_int_equal(rc_http_do(h, &patch, &r), 0);
	assert_int_equal(r.status, 500);
	assert_int_equal(r.attempts, 1);

	/* flagged idempotent (a server-side apply): retried */
	rc_testsrv_script(srv, steps, 2);
	patch.idempotent = true;
	assert_int_equal(rc_http_do(h, &patch, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.attempts, 2);
	rc_http_close(h);
	rc_http_resp_release(&r);
}

static void http_broken_connection(void **state)
{
	rc_testsrv_step cut[] = {
		{.action = RC_TESTSRV_CUT, .body = "{\"items\":["},
		{.status = 200, .body = "{\"items\":[]}"},
	};
	rc_testsrv_step drop[] = {
		{.action = RC_TESTSRV_DROP},
		{.status = 200, .body = "back"},
	};
	rc_http *h = client_for(srv);
	rc_http_resp r;
	rc_http_req post = {.method = "POST", .path = "/apps", .body = "{}",
			    .body_len = 2};
	const char *msg;

	RC_UNUSED(state);
	rc_http_resp_init(&r);
	/* cut mid-reply: a GET is sent again */
	rc_testsrv_script(srv, cut, 2);
	assert_int_equal(get(h, "/api/v1/pods", &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body.ptr, "{\"items\":[]}");
	assert_int_equal(r.attempts, 2);

	/* closed without a reply: the same (on a new client: curl itself
	 * tries a fresh connection once when a reused one says nothing) */
	rc_http_close(h);
	h = client_for(srv);
	rc_testsrv_script(srv, drop, 2);
	assert_int_equal(get(h, "/api/v1/pods", &r), 0);
	assert_string_equal(r.body.ptr, "back");
	assert_int_equal(r.attempts, 2);

	/* a POST is not: the error names the request */
	rc_testsrv_script(srv, cut, 2);
	assert_true(rc_http_do(h, &post, &r) < 0);
	msg = rc_error_last()->message;
	assert_int_equal(strncmp(msg, "POST https://127.0.0.1:", 23), 0);
	assert_non_null(strstr(msg, "/apps: "));
	assert_null(strstr(msg, "attempts"));
	assert_int_equal(r.attempts, 1);
	assert_int_equal(rc_testsrv_requests(srv), 1);

	/* every attempt broken: the message says how many there were */
	rc_testsrv_script(srv, drop, 1);
	assert_true(get(h, "/api/v1/pods", &r) < 0);
	assert_non_null(strstr(rc_error_last()->message, "(after 4 attempts)"));
	assert_int_equal(rc_testsrv_requests(srv), 4);
	rc_http_close(h);
	rc_http_resp_release(&r);
	/* four failures in a row: the server is unreachable now, for the
	   tests after this one too (unit.outage tests that) */
	rc_http_endpoints_reset();
}

static void http_connect_refused(void **state)
{
	rc_http_opts o;
	rc_http *h;
	rc_http_resp r;
	const char *msg;

	RC_UNUSED(state);
	rc_http_resp_init(&r);
	opts_for(&o, srv);
	o.base_url = "https://127.0.0.1:1";
	o.max_retries = 2;
	assert_int_equal(rc_http_open(&h, &o), 0);
	assert_int_equal(get(h, "/api/v1/namespaces", &r), RC_ERROR);
	msg = rc_error_last()->message;
	assert_non_null(strstr(msg, "GET https://127.0.0.1:1/api/v1/"
				    "namespaces: cannot connect ("));
	assert_true(msg == strstr(msg, "GET "));
	assert_non_null(strstr(msg, "(after 3 attempts)"));
	assert_int_equal(r.status, 0);
	rc_http_close(h);
	rc_http_resp_release(&r);

	/* not a URL this client speaks */
	o.base_url = "ftp://127.0.0.1/";
	assert_int_equal(rc_http_open(&h, &o), RC_EINVALID);
}

static void http_timeout(void **state)
{
	rc_testsrv_step slow = {.status = 200, .body = "late",
				.delay_ms = 1500};
	rc_http_opts o;
	rc_http *h;
	rc_http_resp r;
	char want[256];
	rc_http_req post = {.method = "POST", .path = "/slow", .body = "{}",
			    .body_len = 2, .timeout_ms = 200};

	RC_UNUSED(state);
	rc_testsrv_script(srv, &slow, 1);
	rc_http_resp_init(&r);
	opts_for(&o, srv);
	o.timeout_ms = 300;
	o.max_retries = 1;
	assert_int_equal(rc_http_open(&h, &o), 0);
	assert_int_equal(get(h, "/slow", &r), RC_ETIMEOUT);
	snprintf(want, sizeof(want),
		 "GET %s/slow: no complete reply within 300ms (after 2 "
		 "attempts)",
		 rc_testsrv_url(srv));
	assert_string_equal(rc_error_last()->message, want);
	assert_int_equal(r.attempts, 2);

	/* not idempotent: one attempt; the request's own timeout */
	assert_int_equal(rc_http_do(h, &post, &r), RC_ETIMEOUT);
	snprintf(want, sizeof(want),
		 "POST %s/slow: no complete reply within 200ms",
		 rc_testsrv_url(srv));
	assert_string_equal(rc_error_last()->message, want);
	assert_int_equal(r.attempts, 1);
	rc_http_close(h);
	rc_http_resp_release(&r);	rc_http_endpoints_reset(); /* three timeouts: unreachable */
}

static void http_body_cap(void **state)
{
	char *big = rc_calloc(1, 4097);
	rc_http_opts o;
	rc_http *h;
	rc_http_resp r;
	rc_http_req req = {.path = "/big", .max_body = 8192};

	RC_UNUSED(state);
	memset(big, 'x', 4096);
	script1(200, big, NULL);
	rc_http_resp_init(&r);
	opts_for(&o, srv);
	o.max_body = 1024;
	assert_int_equal(rc_http_open(&h, &o), 0);
	assert_int_equal(get(h, "/big", &r), RC_ETOOBIG);
	assert_non_null(strstr(rc_error_last()->message,
			       "/big: the reply is larger than the limit of "
			       "1024 bytes"));
	assert_int_equal(r.attempts, 1);
	assert_true(r.body.len <= 1024);
	/* a request may raise it */
	assert_int_equal(rc_http_do(h, &req, &r), 0);
	assert_int_equal(r.body.len, 4096);
	rc_http_close(h);
	rc_http_resp_release(&r);
	free(big);
}

struct lines {
	char *got[16];
	size_t n;
	size_t stop_after; /* 0: never */
	int stop_rc;
};

static int on_line(void *ctx, const char *line, size_t n)
{
	struct lines *l = ctx;

	assert_int_equal(strlen(line), n);
	if (l->n < RC_ARRAY_SIZE(l->got))
		l->got[l->n++] = rc_strdup(line);
	if (l->stop_after && l->n == l->stop_after)
		return l->stop_rc;
	return 0;
}

static void lines_release(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->got[i]);
	memset(l, 0, sizeof(*l));
}

static void http_stream(void **state)
{
	static const char *const chunks[] = {
		"{\"type\":\"ADDED\",\"n\":1}\n{\"type\":\"MOD",
		"IFIED\",\"n\":2}\r\n\n",
		"{\"type\":\"DELETED\",\"n\":3}\n{\"type\":\"BOOKMARK\"}",
		NULL,
	};
	rc_testsrv_step st = {.status = 200, .chunks = chunks,
			      .chunk_delay_ms = 20};
	rc_testsrv_step gone = {.status = 410, .body = "{\"reason\":\"Gone\"}"};
	rc_http *h = client_for(srv);
	rc_http_resp r;
	rc_http_req req = {.path = "/api/v1/pods?watch=1"};
	struct lines l;

	RC_UNUSED(state);
	rc_http_resp_init(&r);
	memset(&l, 0, sizeof(l));
	rc_testsrv_script(srv, &st, 1);
	assert_int_equal(rc_http_stream(h, &req, &r, on_line, &l), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(l.n, 4);
	assert_string_equal(l.got[0], "{\"type\":\"ADDED\",\"n\":1}");
	assert_string_equal(l.got[1], "{\"type\":\"MODIFIED\",\"n\":2}");
	assert_string_equal(l.got[2], "{\"type\":\"DELETED\",\"n\":3}");
	assert_string_equal(l.got[3], "{\"type\":\"BOOKMARK\"}");
	assert_int_equal(r.body.len, 0);
	lines_release(&l);

	/* the callback stops it */
	l.stop_after = 2;
	l.stop_rc = 1;
	assert_int_equal(rc_http_stream(h, &req, &r, on_line, &l), 0);
	assert_int_equal(l.n, 2);
	lines_release(&l);
	l.stop_after = 1;
	l.stop_rc = RC_EINVALID;
	assert_int_equal(rc_http_stream(h, &req, &r, on_line, &l), RC_EINVALID);
	assert_int_equal(l.n, 1);
	lines_release(&l);

	/* not 2xx: not streamed, the body is kept */
	rc_testsrv_script(srv, &gone, 1);
	assert_int_equal(rc_http_stream(h, &req, &r, on_line, &l), 0);
	assert_int_equal(r.status, 410);
	assert_string_equal(r.body.ptr, "{\"reason\":\"Gone\"}");
	assert_int_equal(l.n, 0);

	/* a line longer than the cap */
	rc_testsrv_script(srv, &st, 1);
	req.max_body = 16;
	assert_int_equal(rc_http_stream(h, &req, &r, on_line, &l),
			 RC_ETOOBIG);
	assert_non_null(strstr(rc_error_last()->message,
			       "the line is larger than the limit of 16"));
	lines_release(&l);

	/* the stream outlives its timeout: lines so far, then RC_ETIMEOUT */
	st.body = "{\"type\":\"ADDED\",\"n\":0}\n";
	st.chunk_delay_ms = 400;
	rc_testsrv_script(srv, &st, 1);
	req.max_body = 0;
	req.timeout_ms = 300;
	assert_int_equal(rc_http_stream(h, &req, &r, on_line, &l),
			 RC_ETIMEOUT);
	assert_int_equal(l.n, 1);
	assert_int_equal(r.attempts, 1);
	lines_release(&l);
	rc_http_close(h);
	rc_http_resp_release(&r);
}

static void *cancel_later(void *arg)
{
	usleep(300 * 1000);
	*(volatile int *)arg = 1;
	return NULL;
}

/* A stream waiting for its next line stops within about a second of its
 * cancel flag, returns 0 with the lines so far, and is not retried. */
static void http_stream_cancel(void **state)
{
	static const char *const chunks[] = {
		"{\"type\":\"ADDED\",\"n\":2}\n",
		NULL,
	};
	rc_testsrv_step st = {.status = 200,
			      .body = "{\"type\":\"ADDED\",\"n\":1}\n",
			      .chunks = chunks, .chunk_delay_ms = 5000};
	rc_http *h = client_for(srv);
	rc_http_resp r;
	volatile int cancel = 0;
	rc_http_req req = {.path = "/api/v1/pods?watch=1", .cancel = &cancel};
	struct lines l;
	pthread_t th;
	long long t0, ms;

	RC_UNUSED(state);
	rc_http_resp_init(&r);
	memset(&l, 0, sizeof(l));
	rc_testsrv_script(srv, &st, 1);
	t0 = now_ms();
	assert_int_equal(pthread_create(&th, NULL, cancel_later,
					(void *)&cancel), 0);
	assert_int_equal(rc_http_stream(h, &req, &r, on_line, &l), 0);
	ms = now_ms() - t0;
	pthread_join(th, NULL);
	assert_int_equal(l.n, 1);
	assert_int_equal(r.attempts, 1);
	assert_true(ms >= 300);
	assert_true(ms < 2500);
	lines_release(&l);
	rc_http_close(h);
	rc_http_resp_release(&r);
}

struct worker {
	rc_http *h;
	int id, n, failures;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	rc_http_resp r;
	char path[64];

	rc_http_resp_init(&r);
	for (int i = 0; i < w->n; i++) {
		snprintf(path, sizeof(path), "/w/%d/%d", w->id, i);
		if (get(w->h, path, &r) < 0 || r.status != 200 ||
		    strcmp(r.body.ptr, "{\"ok\":true}"))
			w->failures++;
	}
	rc_http_resp_release(&r);
	return NULL;
}

static void run_workers(rc_http *h, int nthreads, int each)
{
	pthread_t t[8];
	struct worker w[8];

	for (int i = 0; i < nthreads; i++) {
		w[i] = (struct worker){.h = h, .id = i, .n = each};
		assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < nthreads; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].failures, 0);
	}
}

static void http_rate_limit(void **state)
{
	rc_http_opts o;
	rc_http *h;
	long long t0;

	RC_UNUSED(state);
	script1(200, "{\"ok\":true}", NULL);
	opts_for(&o, srv);
	o.qps = 20;
	o.burst = 1;
	assert_int_equal(rc_http_open(&h, &o), 0);
	t0 = now_ms();
	/* 10 requests from 2 threads: one token now, 9 at 50 ms each */
	run_workers(h, 2, 5);
	assert_true(now_ms() - t0 >= 400);
	assert_int_equal(rc_testsrv_requests(srv), 10);
	rc_http_close(h);
}

static void http_threads(void **state)
{
	rc_http *h = client_for(srv);
	rc_http_counters st;

	RC_UNUSED(state);
	script1(200, "{\"ok\":true}", NULL);
	run_workers(h, 8, 25);
	rc_http_stats(h, &st);
	assert_int_equal(st.requests, 200);
	assert_int_equal(rc_testsrv_requests(srv), 200);
	/* connections are reused: at most one per thread at a time */
	assert_true(st.connections >= 1 && st.connections <= 8);
	assert_int_equal(st.connections, rc_testsrv_connections(srv));
	rc_http_close(h);
}

struct signer {
	const char *token;
	const char *next; /* after a refresh */
	int signs, refreshes;
};

static int sign(void *ctx, const rc_http_req *req, const char *url,
		struct curl_slist **headers)
{
	struct signer *s = ctx;
	char line[256];

	RC_UNUSED(req);
	assert_non_null(strstr(url, "https://127.0.0.1:"));
	if (!s->token)
		return rc_error_set(RC_EAUTH, RC_ECLASS_CONFIG,
				    "no credentials for the test");
	s->signs++;
	snprintf(line, sizeof(line), "Authorization: Bearer %s", s->token);
	*headers = curl_slist_append(*headers, line);
	return 0;
}

static int refresh(void *ctx)
{
	struct signer *s = ctx;

	s->refreshes++;
	if (!s->next)
		return 0;
	s->token = s->next;
	return 1;
}

static void http_sign_and_refresh(void **state)
{
	rc_testsrv_step steps[] = {{.status = 503}, {.status = 200}};
	struct signer sg = {.token = "old-token", .next = "new-token"};
	rc_http_opts o;
	rc_http *h;
	rc_http_resp r;
	rc_http_req post = {.method = "POST", .path = "/x", .body = "{}",
			    .body_len = 2};

	RC_UNUSED(state);
	rc_http_resp_init(&r);
	opts_for(&o, srv);
	o.sign = sign;
	o.refresh = refresh;
	o.sign_ctx = &sg;
	assert_int_equal(rc_http_open(&h, &o), 0);

	/* signed on every attempt */
	rc_testsrv_script(srv, steps, 2);
	assert_int_equal(get(h, "/s", &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(sg.signs, 2);

	/* a 401: fresh credentials, sent once more (even a POST) */
	rc_testsrv_script(srv, &steps[1], 1);
	rc_testsrv_require_auth(srv, "Bearer new-token");
	assert_int_equal(rc_http_do(h, &post, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.attempts, 2);
	assert_int_equal(sg.refreshes, 1);

	/* nothing fresher to be had: the 401 stays */
	rc_testsrv_require_auth(srv, "Bearer other");
	sg.next = NULL;
	assert_int_equal(get(h, "/s", &r), 0);
	assert_int_equal(r.status, 401);
	assert_int_equal(sg.refreshes, 2);
	rc_testsrv_require_auth(srv, NULL);

	/* a callback that fails: nothing is sent, its error says which
	 * request it was */
	sg.token = NULL;
	rc_testsrv_script(srv, &steps[1], 1);
	assert_int_equal(get(h, "/s", &r), RC_EAUTH);
	assert_non_null(strstr(rc_error_last()->message,
			       "/s: no credentials for the test"));
	assert_int_equal(strncmp(rc_error_last()->message, "GET https://", 12),
			 0);
	assert_int_equal(rc_testsrv_requests(srv), 0);
	rc_http_close(h);
	rc_http_resp_release(&r);
}

static void http_secrets_stay_out(void **state)
{
	static const char token[] = "s3cr3t-t0ken-9f8e7d";
	rc_testsrv_step steps[] = {{.status = 500, .body = "oops"}};
	rc_testsrv_req seen;
	rc_http_opts o;
	rc_http *h;
	rc_http_resp r;
	rc_http_req post = {.method = "POST", .path = "/apps", .body = "{}",
			    .body_len = 2};
	char *log;

	RC_UNUSED(state);
	rc_http_resp_init(&r);
	rc_testsrv_script(srv, steps, 1);
	opts_for(&o, srv);
	o.authorization = "Bearer s3cr3t-t0ken-9f8e7d";
	log_start();
	assert_int_equal(rc_http_open(&h, &o), 0);
	assert_int_equal(rc_http_do(h, &post, &r), 0);
	assert_int_equal(r.status, 500);
	assert_true(rc_testsrv_request(srv, 0, &seen));
	assert_string_equal(seen.authorization, "Bearer s3cr3t-t0ken-9f8e7d");
	rc_testsrv_req_release(&seen);
	rc_http_close(h);

	/* a failing request whose URL happens to carry the token */
	o.base_url = "https://127.0.0.1:1";
	o.max_retries = 1;
	assert_int_equal(rc_http_open(&h, &o), 0);
	assert_true(get(h, "/x?token=s3cr3t-t0ken-9f8e7d", &r) < 0);
	assert_null(strstr(rc_error_last()->message, token));
	assert_non_null(strstr(rc_error_last()->message, "token=(sensitive)"));
	rc_http_close(h);
	log = log_stop();
	assert_non_null(strstr(log, "debug: http: POST /apps -> 500"));
	assert_null(strstr(log, token));
	assert_null(strstr(log, "Authorization"));
	assert_null(strstr(log, "oops"));
	free(log);
	rc_http_resp_release(&r);
}

static void http_query(void **state)
{
	rc_buf p = RC_BUF_INIT;
	rc_http *h = client_for(srv);
	rc_http_resp r;
	rc_testsrv_req seen;

	RC_UNUSED(state);
	rc_buf_puts(&p, "/api/v1/pods");
	assert_int_equal(rc_http_query_add(&p, "labelSelector",
					   "app=web,tier in (a,b)"),
			 0);
	assert_int_equal(rc_http_query_add(&p, "limit", "500"), 0);
	assert_int_equal(rc_http_query_add(&p, "continue", "a/b+c~d_e.f-"), 0);
	assert_string_equal(p.ptr, "/api/v1/pods?labelSelector=app%3Dweb%2C"
				   "tier%20in%20%28a%2Cb%29&limit=500&"
				   "continue=a%2Fb%2Bc~d_e.f-");
	script1(200, "{}", NULL);
	rc_http_resp_init(&r);
	assert_int_equal(get(h, p.ptr, &r), 0);
	assert_true(rc_testsrv_request(srv, 0, &seen));
	assert_string_equal(seen.path, "/api/v1/pods");
	assert_string_equal(seen.query, "labelSelector=app=web,tier in (a,b)&"
					"limit=500&continue=a/b+c~d_e.f-");
	rc_testsrv_req_release(&seen);
	rc_http_resp_release(&r);
	rc_http_close(h);
	rc_buf_release(&p);
}

/* ------------------------------------------- streamed bodies, redirects */

struct reader {
	const char *data;
	size_t len;
	int calls;
	bool once; /* cannot go back */
	uint64_t next;
};

static int read_body(void *ctx, uint64_t offset, void *buf, size_t n,
		     size_t *got)
{
	struct reader *rd = ctx;

	rd->calls++;
	if (rd->once && offset < rd->next)
		return rc_error_set(RC_EUNSUPPORTED, RC_ECLASS_NONE,
				    "the source cannot go back");
	if (offset > rd->len)
		return RC_EINVALID;
	if (n > rd->len - offset)
		n = rd->len - (size_t)offset;
	memcpy(buf, rd->data + offset, n);
	*got = n;
	rd->next = offset + n;
	return 0;
}

struct sink {
	rc_buf got;
	int calls;
};

static int sink_body(void *ctx, const void *data, size_t n)
{
	struct sink *sk = ctx;

	sk->calls++;
	return rc_buf_put(&sk->got, data, n);
}

static void http_streamed_bodies(void **state)
{
	rc_testsrv_step retry[] = {
		{.status = 503},
		{.status = 201, .body = "stored"},
	};
	rc_http *h = client_for(srv);
	rc_http_resp r;
	rc_testsrv_req seen;
	rc_buf big = RC_BUF_INIT;
	struct reader rd = {0};
	struct sink sk = {RC_BUF_INIT, 0};
	char path[600];
	int fd;

	RC_UNUSED(state);
	for (int i = 0; big.len < 300000; i++)
		rc_buf_printf(&big, "line %d of a body too large to copy\n", i);
	rd.data = big.ptr;
	rd.len = big.len;
	rc_http_resp_init(&r);

	/* from a reader, again from offset 0 on the retry */
	rc_testsrv_script(srv, retry, 2);
	{
		rc_http_req q = {.method = "PUT", .path = "/blob",
				 .content_type = "application/octet-stream",
				 .body_read = read_body, .body_read_ctx = &rd,
				 .body_size = big.len};

		assert_int_equal(rc_http_do(h, &q, &r), 0);
	}
	assert_int_equal(r.status, 201);
	assert_int_equal(r.attempts, 2);
	assert_true(rc_testsrv_request(srv, 1, &seen));
	assert_string_equal(seen.method, "PUT");
	assert_string_equal(seen.content_type, "application/octet-stream");
	assert_int_equal(strlen(seen.body), big.len);
	assert_string_equal(seen.body, big.ptr);
	rc_testsrv_req_release(&seen);

	/* a source that cannot go back: the retry is refused, not sent */
	rc_testsrv_script(srv, retry, 2);
	rd.once = true;
	rd.next = 0;
	{
		rc_http_req q = {.method = "POST", .path = "/once",
				 .body_read = read_body, .body_read_ctx = &rd,
				 .body_size = big.len};

		assert_int_equal(rc_http_do(h, &q, &r), RC_EUNSUPPORTED);
	}
	assert_non_null(strstr(rc_error_last()->message, "POST https://"));
	assert_non_null(strstr(rc_error_last()->message, "cannot go back"));
	assert_int_equal(rc_testsrv_requests(srv), 1);

	/* from a descriptor, with pread: every attempt from the start */
	snprintf(path, sizeof(path), "%s/body", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, big.ptr, big.len), (ssize_t)big.len);
	rc_testsrv_script(srv, retry, 2);
	{
		rc_http_req q = {.method = "PUT", .path = "/fd", .body_fd = fd,
				 .body_size = big.len};

		assert_int_equal(rc_http_do(h, &q, &r), 0);
	}
	close(fd);
	assert_int_equal(r.status, 201);
	assert_true(rc_testsrv_request(srv, 1, &seen));
	assert_string_equal(seen.body, big.ptr);
	rc_testsrv_req_release(&seen);

	/* a reply to a sink, uncapped; an error reply stays in the body */
	script1(200, big.ptr, NULL);
	{
		rc_http_req q = {.path = "/download", .sink = sink_body,
				 .sink_ctx = &sk, .max_body = 1024};

		assert_int_equal(rc_http_do(h, &q, &r), 0);
		assert_int_equal(r.status, 200);
		assert_int_equal(r.body.len, 0);
		assert_int_equal(sk.got.len, big.len);
		assert_true(sk.calls > 1);
		rc_buf_clear(&sk.got);
		script1(404, "{\"errors\":[]}", NULL);
		assert_int_equal(rc_http_do(h, &q, &r), 0);
		assert_int_equal(r.status, 404);
		assert_string_equal(r.body.ptr, "{\"errors\":[]}");
		assert_int_equal(sk.got.len, 0);
	}
	rc_buf_release(&sk.got);
	rc_buf_release(&big);
	rc_http_resp_release(&r);
	rc_http_close(h);
}

static void http_redirects_and_urls(void **state)
{
	char loc[300], other[300];
	rc_testsrv_step steps[] = {
		{.status = 307, .headers = loc},
		{.status = 200, .body = "the blob"},
	};
	const char *const auth[] = {"Authorization: Bearer registry-token",
				    NULL};
	rc_http_opts o;
	rc_http *h;
	rc_http_resp r;
	rc_testsrv_req seen;

	RC_UNUSED(state);
	/* localhost is another host than 127.0.0.1 for curl: the header
	 * stays with the first */
	snprintf(loc, sizeof(loc), "Location: https://localhost:%d/storage",
		 rc_testsrv_port(srv));
	rc_testsrv_script(srv, steps, 2);
	opts_for(&o, srv);
	o.authorization = "Bearer fixed-secret";
	assert_int_equal(rc_http_open(&h, &o), 0);
	rc_http_resp_init(&r);
	{
		rc_http_req q = {.path = "/v2/x/blobs/sha256:1",
				 .headers = auth, .follow_redirects = true};

		assert_int_equal(rc_http_do(h, &q, &r), 0);
	}
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body.ptr, "the blob");
	assert_int_equal(rc_testsrv_requests(srv), 2);
	assert_true(rc_testsrv_request(srv, 0, &seen));
	assert_non_null(seen.authorization);
	rc_testsrv_req_release(&seen);
	assert_true(rc_testsrv_request(srv, 1, &seen));
	assert_string_equal(seen.path, "/storage");
	assert_null(seen.authorization);
	rc_testsrv_req_release(&seen);

	/* without follow_redirects the 307 is the reply */
	rc_testsrv_script(srv, steps, 2);
	assert_int_equal(get(h, "/v2/x", &r), 0);
	assert_int_equal(r.status, 307);

	/* an absolute URL on another origin: no fixed Authorization; on the
	 * base URL's own: sent */
	script1(200, "{}", NULL);
	snprintf(other, sizeof(other), "https://localhost:%d/token?x=1",
		 rc_testsrv_port(srv));
	{
		rc_http_req q = {.url = other};

		assert_int_equal(rc_http_do(h, &q, &r), 0);
		assert_true(rc_testsrv_request(srv, 0, &seen));
		assert_string_equal(seen.path, "/token");
		assert_null(seen.authorization);
		rc_testsrv_req_release(&seen);
		snprintf(other, sizeof(other), "%s/upload?_state=1",
			 rc_testsrv_url(srv));
		assert_int_equal(rc_http_do(h, &q, &r), 0);
		assert_true(rc_testsrv_request(srv, 1, &seen));
		assert_string_equal(seen.authorization, "Bearer fixed-secret");
		rc_testsrv_req_release(&seen);
	}
	rc_http_resp_release(&r);
	rc_http_close(h);
}

/* ------------------------------------------ the server's rate budget */

static rc_http *rate_client(double reserve, double refill)
{
	rc_http_opts o;
	rc_http *h;

	opts_for(&o, srv);
	o.rate_header = "RateLimit-Remaining";
	o.rate_reserve = reserve;
	o.rate_refill_per_sec = refill;
	assert_int_equal(rc_http_open(&h, &o), 0);
	return h;
}

static void http_rate_header(void **state)
{
	rc_http *h;
	rc_http_resp r;
	rc_http_counters st;
	rc_http_opts o;
	long long t0, took;

	RC_UNUSED(state);
	rc_http_resp_init(&r);

	/* well above the reserve: no wait at all */
	h = rate_client(10, 10);
	script1(200, "{}", "RateLimit-Remaining: 4000");
	t0 = now_ms();
	for (int i = 0; i < 10; i++)
		assert_int_equal(get(h, "/apps", &r), 0);
	rc_http_stats(h, &st);
	assert_int_equal(st.waits, 0);
	assert_int_equal(st.wait_ms, 0);
	assert_true(now_ms() - t0 < 1000);
	rc_http_close(h);

	/* at the reserve: the next attempt waits one token (1/10 s), and the
	 * wait is counted */
	h = rate_client(10, 10);
	script1(200, "{}", "RateLimit-Remaining: 10");
	assert_int_equal(get(h, "/apps", &r), 0); /* nothing known yet */
	t0 = now_ms();
	assert_int_equal(get(h, "/apps", &r), 0);
	took = now_ms() - t0;
	rc_http_stats(h, &st);
	assert_true(took >= 90);
	assert_int_equal(st.waits, 1);
	assert_true(st.wait_ms >= 90 && st.wait_ms <= 150);
	/* below it: the tokens up to above the reserve (3 at 10/s) */
	script1(200, "{}", "RateLimit-Remaining: 8");
	assert_int_equal(get(h, "/apps", &r), 0);
	t0 = now_ms();
	assert_int_equal(get(h, "/apps", &r), 0);
	took = now_ms() - t0;
	rc_http_stats(h, &st);
	assert_true(took >= 280);
	assert_int_equal(st.waits, 3); /* the one before also waited */
	rc_http_close(h);

	/* a 429 without Retry-After: retried after the refill time */
	{
		rc_testsrv_step steps[] = {
			{.status = 429, .headers = "RateLimit-Remaining: 0"},
			{.status = 200, .body = "{}",
			 .headers = "RateLimit-Remaining: 99"},
		};

		h = rate_client(0, 10);
		rc_testsrv_script(srv, steps, 2);
		t0 = now_ms();
		assert_int_equal(get(h, "/apps", &r), 0);
		took = now_ms() - t0;
		assert_int_equal(r.status, 200);
		assert_int_equal(r.attempts, 2);
		rc_http_stats(h, &st);
		assert_int_equal(st.waits, 1);
		assert_true(took >= 90);
		rc_http_close(h);
	}

	/* threads: four waiters at the reserve are served one token apart */
	h = rate_client(5, 20);
	script1(200, "{\"ok\":true}", "RateLimit-Remaining: 5");
	assert_int_equal(get(h, "/apps", &r), 0);
	t0 = now_ms();
	run_workers(h, 4, 1);
	took = now_ms() - t0;
	rc_http_stats(h, &st);
	assert_int_equal(st.waits, 4);
	assert_true(took >= 190); /* 50, 100, 150, 200 ms */
	rc_http_close(h);

	/* a rate header needs a refill rate */
	opts_for(&o, srv);
	o.rate_header = "RateLimit-Remaining";
	assert_int_equal(rc_http_open(&h, &o), RC_EINVALID);
	rc_http_resp_release(&r);
}

static void count_one(void *arg, const char *driver, long status, uint64_t n)
{
	uint64_t *counts = arg;

	if (!strcmp(driver, "unit-counted") && (status == 404 || status == 200))
		counts[status == 200] = n;
}

/* Every attempt is counted by driver and status for the controller's
 * metrics (reconcile_api_requests_total). */
static void http_requests_counted_by_driver(void **state)
{
	rc_http_opts o;
	rc_http *h = NULL;
	rc_http_resp r = {0};
	uint64_t counts[2] = {0, 0};

	RC_UNUSED(state);
	opts_for(&o, srv);
	o.driver = "unit-counted";
	assert_int_equal(rc_http_open(&h, &o), 0);
	script1(404, "{}", NULL);
	assert_int_equal(get(h, "/a", &r), 0);
	rc_http_resp_release(&r);
	script1(200, "{}", NULL);
	assert_int_equal(get(h, "/b", &r), 0);
	rc_http_resp_release(&r);
	script1(200, "{}", NULL);
	assert_int_equal(get(h, "/c", &r), 0);
	rc_http_resp_release(&r);
	rc_http_requests_each(count_one, counts);
	assert_int_equal(counts[0], 1);
	assert_int_equal(counts[1], 2);
	rc_http_close(h);
}

int test_group_http(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(http_keepalive),
		cmocka_unit_test(http_requests_counted_by_driver),
		cmocka_unit_test(http_methods_and_bodies),
		cmocka_unit_test(http_ca_file_and_data),
		cmocka_unit_test(http_untrusted_not_retried),
		cmocka_unit_test(http_client_certificate),
		cmocka_unit_test(http_retry_after),
		cmocka_unit_test(http_retry_after_capped),
		cmocka_unit_test(http_retry_after_parse),
		cmocka_unit_test(http_5xx_retried),
		cmocka_unit_test(http_post_not_retried),
		cmocka_unit_test(http_broken_connection),
		cmocka_unit_test(http_connect_refused),
		cmocka_unit_test(http_timeout),
		cmocka_unit_test(http_body_cap),
		cmocka_unit_test(http_stream),
		cmocka_unit_test(http_stream_cancel),
		cmocka_unit_test(http_rate_limit),
		cmocka_unit_test(http_threads),
		cmocka_unit_test(http_sign_and_refresh),
		cmocka_unit_test(http_secrets_stay_out),
		cmocka_unit_test(http_query),
		cmocka_unit_test(http_streamed_bodies),
		cmocka_unit_test(http_redirects_and_urls),
		cmocka_unit_test(http_rate_header),
	};
	return cmocka_run_group_tests_name("http", tests, setup, teardown);
}
