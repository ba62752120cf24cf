/* Leader election (reconciler/controller/lease.h) against the scripted
 * HTTPS server: what is sent to create and release a Lease, a race lost
 * on create, and the errors of a reply that is not a Lease and of a 401.
 * Takeovers and timings run against the fake API server in lease.e2e. */
#include "tests/unit/helpers.h"
#include "tests/support/testca.h"
#include "tests/support/testsrv.h"
#include "drivers/kube_config.h"
#include "reconciler/controller/lease.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"

#include <jansson.h>

static rc_testca ca;
static rc_testsrv *srv;
static char *dir, *kubeconfig;

#define LEASE_PATH "/apis/coordination.k8s.io/v1/namespaces/ops/leases/ctl"
#define HELD_BY(who, rv)                                                     \
	"{\"kind\":\"Lease\",\"apiVersion\":\"coordination.k8s.io/v1\","     \
	"\"metadata\":{\"name\":\"ctl\",\"namespace\":\"ops\","              \
	"\"resourceVersion\":\"" rv "\"},\"spec\":{\"holderIdentity\":\""    \
	who "\",\"leaseDurationSeconds\":15,\"acquireTime\":"                \
	"\"2026-11-22T01:52:00.000000Z\",\"renewTime\":"                     \
	"\"2026-11-22T01:52:00.000000Z\",\"leaseTransitions\":3}}"

static int setup(void **state)
{
	rc_buf b = RC_BUF_INIT;

	RC_UNUSED(state);
	if (rc_testca_make(&ca, "alice", "system:masters") < 0)
		return -1;
	srv = rc_testsrv_start(&ca, false, false);
	if (!srv)
		return -1;
	dir = tmpdir_new();
	rc_buf_printf(&b, "%s/ca.pem", dir);
	rc_testca_write(b.ptr, ca.ca_cert);
	rc_buf_clear(&b);
	rc_buf_printf(&b,
		      "apiVersion: v1\nkind: Config\n"
		      "clusters:\n- name: c\n  cluster:\n    server: %s\n"
		      "    certificate-authority: %s/ca.pem\n"
		      "users:\n- name: u\n  user:\n    token: lease-token\n"
		      "contexts:\n- name: x\n  context:\n    cluster: c\n"
		      "    user: u\n    namespace: ops\ncurrent-context: x\n",
		      rc_testsrv_url(srv), dir);
	write_file(dir, "kubeconfig", b.ptr);
	rc_buf_clear(&b);
	rc_buf_printf(&b, "%s/kubeconfig", dir);
	kubeconfig = rc_buf_detach(&b);
	/* no pod namespace on the test machine */
	setenv(RC_KUBE_SERVICEACCOUNT_ENV, dir, 1);
	return 0;
}

static int teardown(void **state)
{
	RC_UNUSED(state);
	unsetenv(RC_KUBE_SERVICEACCOUNT_ENV);
	rc_testsrv_stop(srv);
	rc_testca_release(&ca);
	tmpdir_remove(dir);
	free(kubeconfig);
	rc_secret_clear();
	return 0;
}

static int changes, last_leader = -1;

static void on_change(void *ctx, bool leader, const char *holder)
{
	RC_UNUSED(ctx);
	RC_UNUSED(holder);
	changes++;
	last_leader = leader;
}

static void opts(rc_lease_opts *o)
{
	rc_lease_opts_init(o);
	o->kubeconfig = kubeconfig;
	o->lease = "ctl";
	o->identity = "me";
	o->on_change = on_change;
	changes = 0;
	last_leader = -1;
}

static json_t *body_of(size_t i, const char *method, const char *path)
{
	rc_testsrv_req r;
	json_t *j;

	assert_true(rc_testsrv_request(srv, i, &r));
	assert_string_equal(r.method, method);
	assert_string_equal(r.path, path);
	assert_string_equal(r.authorization, "Bearer lease-token");
	j = json_loads(r.body ? r.body : "", 0, NULL);
	rc_testsrv_req_release(&r);
	return j;
}

static bool is_micro_time(const char *s)
{
	int n = 0;

	return s && strlen(s) == 27 &&
	       sscanf(s, "%*4d-%*2d-%*2dT%*2d:%*2d:%*2d.%*6dZ%n", &n) == 0 &&
	       n == 27;
}

/* Absent: created with this identity; stop releases it. */
static void lease_create_and_release(void **state)
{
	const rc_testsrv_step steps[] = {
		{.status = 404, .body = "{\"kind\":\"Status\",\"code\":404}"},
		{.status = 201, .body = HELD_BY("me", "7")},
		/* the renewals and the release */
		{.status = 200, .body = HELD_BY("me", "8")},
	};
	rc_lease_opts o;
	rc_lease *l;
	json_t *j, *spec;
	size_t n;

	RC_UNUSED(state);
	rc_testsrv_script(srv, steps, RC_ARRAY_SIZE(steps));
	opts(&o);
	assert_int_equal(rc_lease_start(&l, &o), 0);
	assert_true(rc_lease_is_leader(l));
	assert_string_equal(rc_lease_name(l), "ops/ctl");
	j = body_of(1, "POST",
		    "/apis/coordination.k8s.io/v1/namespaces/ops/leases");
	spec = json_object_get(j, "spec");
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(j, "metadata"), "name")),
			    "ctl");
	assert_string_equal(
		json_string_value(json_object_get(spec, "holderIdentity")),
		"me");
	assert_int_equal(json_integer_value(json_object_get(
				 spec, "leaseDurationSeconds")),
			 15);
	assert_int_equal(
		json_integer_value(json_object_get(spec, "leaseTransitions")),
		0);
	assert_true(is_micro_time(
		json_string_value(json_object_get(spec, "renewTime"))));
	assert_true(is_micro_time(
		json_string_value(json_object_get(spec, "acquireTime"))));
	json_decref(j);

	assert_int_equal(rc_lease_stop(l), 0);
	assert_int_equal(last_leader, 0);
	n = rc_testsrv_requests(srv);
	j = body_of(n - 1, "PUT", LEASE_PATH);
	spec = json_object_get(j, "spec");
	assert_string_equal(
		json_string_value(json_object_get(spec, "holderIdentity")),
		"");
	assert_int_equal(json_integer_value(json_object_get(
				 spec, "leaseDurationSeconds")),
			 1);
	/* the release carries the resourceVersion last seen */
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(j, "metadata"),
				    "resourceVersion")),
			    "7");
	json_decref(j);
}

/* Another candidate created it first: 409, then it is read again and
 * this one waits as a standby, naming the holder. */
static void lease_create_race_lost(void **state)
{
	const rc_testsrv_step steps[] = {
		{.status = 404, .body = "{\"kind\":\"Status\",\"code\":404}"},
		{.status = 409,
		 .body = "{\"kind\":\"Status\",\"reason\":\"AlreadyExists\","
			 "\"code\":409}"},
		{.status = 200, .body = HELD_BY("other", "9")},
	};
	rc_lease_opts o;
	rc_lease *l;
	char *h;

	RC_UNUSED(state);
	rc_testsrv_script(srv, steps, RC_ARRAY_SIZE(steps));
	opts(&o);
	o.retry_period_ms = 50;
	assert_int_equal(rc_lease_start(&l, &o), 0);
	assert_false(rc_lease_is_leader(l));
	for (int i = 0; i < 100 && rc_testsrv_requests(srv) < 4; i++)
		usleep(10000);
	h = rc_lease_holder(l);
	assert_string_equal(h, "other");
	free(h);
	assert_int_equal(rc_lease_stop(l), 0);
	/* a standby writes nothing: no update, no release */
	for (size_t i = 2; i < rc_testsrv_requests(srv); i++) {
		rc_testsrv_req r;

		assert_true(rc_testsrv_request(srv, i, &r));
		assert_string_equal(r.method, "GET");
		rc_testsrv_req_release(&r);
	}
	assert_int_equal(changes, 0);
}

/* A reply that is not a Lease, and a 401, fail the start with what is
 * wrong. */
static void lease_start_errors(void **state)
{
	const rc_testsrv_step garbage[] = {
		{.status = 200, .body = "{\"kind\":\"Lease\",\"spec\":[]}"},
	};
	const rc_testsrv_step unauthorized[] = {
		{.status = 401,
		 .body = "{\"kind\":\"Status\",\"message\":\"Unauthorized\","
			 "\"code\":401}"},
	};
	rc_lease_opts o;
	rc_lease *l;

	RC_UNUSED(state);
	rc_testsrv_script(srv, garbage, 1);
	opts(&o);
	assert_int_equal(rc_lease_start(&l, &o), RC_EINVALID);
	assert_null(l);
	assert_non_null(strstr(rc_error_last()->message,
			       "lease ops/ctl: get: the reply is not a Lease"));

	rc_testsrv_script(srv, unauthorized, 1);
	assert_int_equal(rc_lease_start(&l, &o), RC_EAUTH);
	assert_non_null(strstr(rc_error_last()->message,
			       "401 Unauthorized"));
	assert_null(strstr(rc_error_last()->message, "lease-token"));

	/* the timings must nest: retry < renew deadline < duration */
	o.renew_deadline_ms = 20000;
	assert_int_equal(rc_lease_start(&l, &o), RC_EINVALID);
	assert_non_null(strstr(rc_error_last()->message,
			       "shorter than the lease duration (15 s)"));
}

int test_group_lease(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lease_create_and_release),
		cmocka_unit_test(lease_create_race_lost),
		cmocka_unit_test(lease_start_errors),
	};

	return cmocka_run_group_tests_name("lease", tests, setup, teardown);
}
