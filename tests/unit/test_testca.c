/* The test certificate authority: real TLS over loopback, verified. */
#include "tests/unit/helpers.h"
#include "tests/support/testca.h"

#include <curl/curl.h>
#include <microhttpd.h>

static enum MHD_Result answer(void *cls, struct MHD_Connection *c,
			      const char *url, const char *method,
			      const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	static const char body[] = "{\"ok\":true}";
	struct MHD_Response *r;
	enum MHD_Result ret;

	RC_UNUSED(cls);
	RC_UNUSED(url);
	RC_UNUSED(method);
	RC_UNUSED(version);
	RC_UNUSED(upload);
	RC_UNUSED(upload_size);
	RC_UNUSED(con_cls);
	r = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body,
					    MHD_RESPMEM_PERSISTENT);
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static size_t sink(char *p, size_t size, size_t n, void *ud)
{
	RC_UNUSED(p);
	RC_UNUSED(ud);
	return size * n;
}

static CURLcode fetch(int port, const char *cafile, bool verify)
{
	char url[64];
	CURL *h = curl_easy_init();
	CURLcode rc;

	snprintf(url, sizeof(url), "https://127.0.0.1:%d/", port);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
	if (cafile)
		curl_easy_setopt(h, CURLOPT_CAINFO, cafile);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
	rc = curl_easy_perform(h);
	curl_easy_cleanup(h);
	return rc;
}

static void testca_serves_verified_tls(void **state)
{
	rc_testca ca;
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	char dir[] = "/tmp/rc-testca-XXXXXX", path[128];
	int port;

	RC_UNUSED(state);
	assert_int_equal(rc_testca_make(&ca, "alice", "system:masters"), 0);
	assert_non_null(strstr(ca.ca_cert, "BEGIN CERTIFICATE"));
	assert_non_null(strstr(ca.client_key, "PRIVATE KEY"));
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TLS, 0,
			     NULL, NULL, answer, NULL, MHD_OPTION_HTTPS_MEM_KEY,
			     ca.server_key, MHD_OPTION_HTTPS_MEM_CERT,
			     ca.server_cert, MHD_OPTION_END);
	assert_non_null(d);
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	port = info->port;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	assert_int_equal(rc_testca_write(path, ca.ca_cert), 0);

	/* verified against the test CA: accepted */
	assert_int_equal(fetch(port, path, true), CURLE_OK);
	/* against the system store: the server is not trusted */
	assert_int_equal(fetch(port, NULL, true), CURLE_PEER_FAILED_VERIFICATION);

	MHD_stop_daemon(d);
	unlink(path);
	rmdir(dir);
	rc_testca_release(&ca);
}

int test_group_testca(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(testca_serves_verified_tls),
	};
	return cmocka_run_group_tests_name("testca", tests, NULL, NULL);
}
