/* Kubernetes connections: kubeconfig merging and paths, located errors,
 * in-cluster service accounts with token rotation, exec plugins; each
 * proven against the scripted HTTPS server where it matters. */
#include "tests/unit/helpers.h"
#include "tests/support/testca.h"
#include "tests/support/testsrv.h"
#include "drivers/http.h"
#include "drivers/kube_config.h"
#include "reconciler/base/codec.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"

#include <jansson.h>

static rc_testca ca;
static rc_testsrv *srv;
static char *saved_env[6];
static const char *const env_names[] = {
	"KUBECONFIG",		   "HOME",
	"KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT",
	RC_KUBE_SERVICEACCOUNT_ENV, "PATH",
};

static int setup(void **state)
{
	RC_UNUSED(state);
	for (size_t i = 0; i < RC_ARRAY_SIZE(env_names); i++) {
		const char *v = getenv(env_names[i]);

		saved_env[i] = v ? rc_strdup(v) : NULL;
	}
	unsetenv("https_proxy");
	unsetenv("HTTPS_PROXY");
	unsetenv("all_proxy");
	unsetenv("ALL_PROXY");
	if (rc_testca_make(&ca, "alice", "system:masters") < 0)
		return -1;
	srv = rc_testsrv_start(&ca, true, false);
	return srv ? 0 : -1;
}

static int teardown(void **state)
{
	RC_UNUSED(state);
	for (size_t i = 0; i < RC_ARRAY_SIZE(env_names); i++) {
		if (saved_env[i])
			setenv(env_names[i], saved_env[i], 1);
		else
			unsetenv(env_names[i]);
		free(saved_env[i]);
	}
	rc_testsrv_stop(srv);
	rc_testca_release(&ca);
	rc_secret_clear();
	return 0;
}

/* A fresh directory as $HOME, nothing else set. */
static char *fresh_env(void)
{
	char *dir = tmpdir_new();

	rc_secret_clear();
	unsetenv("KUBECONFIG");
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	unsetenv(RC_KUBE_SERVICEACCOUNT_ENV);
	setenv("HOME", dir, 1);
	return dir;
}

static char *b64(const char *s)
{
	rc_buf b = RC_BUF_INIT;

	assert_int_equal(rc_codec_base64_encode(&b, s, strlen(s), 0), 0);
	return rc_buf_detach(&b);
}

static char *path_in(const char *dir, const char *rel)
{
	rc_buf b = RC_BUF_INIT;

	rc_buf_printf(&b, "%s/%s", dir, rel);
	return rc_buf_detach(&b);
}

/* "LINE:COL" of the first occurrence of needle in text. */
static char *loc_of(const char *text, const char *needle)
{
	const char *hit = strstr(text, needle), *p;
	int line = 1, col = 1;
	rc_buf b = RC_BUF_INIT;

	assert_non_null(hit);
	for (p = text; p < hit; p++) {
		if (*p == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	rc_buf_printf(&b, "%d:%d", line, col);
	return rc_buf_detach(&b);
}

/* Sends one GET through a client made from the connection. */
static int get_via(rc_kube_conn *c, rc_http_resp *r, rc_http_counters *st)
{
	rc_http_opts o;
	rc_http *h;
	rc_http_req req = {.path = "/api/v1/namespaces"};
	int rc;

	if ((rc = rc_kube_conn_http_opts(c, &o)) < 0)
		return rc;
	o.backoff_base_ms = 1;
	o.backoff_cap_ms = 2;
	if ((rc = rc_http_open(&h, &o)) < 0)
		return rc;
	rc = rc_http_do(h, &req, r);
	if (st)
		rc_http_stats(h, st);
	rc_http_close(h);
	return rc;
}

static void script_ok(void)
{
	rc_testsrv_step ok = {.status = 200, .body = "{\"kind\":\"List\"}"};

	rc_testsrv_script(srv, &ok, 1);
	rc_testsrv_require_auth(srv, NULL);
}

/* ------------------------------------------------------------- merging */

static const char file_a[] =
	"apiVersion: v1\n"
	"kind: Config\n"
	"current-context: ctx-a\n"
	"clusters:\n"
	"- name: cl-a\n"
	"  cluster:\n"
	"    server: https://a.example:6443\n"
	"    insecure-skip-tls-verify: true\n"
	"users:\n"
	"- name: u-a\n"
	"  user:\n"
	"    token: token-from-a\n"
	"contexts:\n"
	"- name: ctx-a\n"
	"  context: {cluster: cl-a, user: u-a}\n"
	"- name: shared\n"
	"  context: {cluster: cl-a, user: u-a, namespace: from-a}\n";

static const char file_b[] =
	"apiVersion: v1\n"
	"kind: Config\n"
	"current-context: ctx-b\n"
	"clusters:\n"
	"- name: cl-a\n"
	"  cluster: {server: 'https://loser.example'}\n"
	"- name: cl-b\n"
	"  cluster: {server: 'https://b.example:443'}\n"
	"users:\n"
	"- name: u-a\n"
	"  user: {token: tok-loser-0042}\n"
	"- name: u-b\n"
	"  user: {username: admin, password: pa55-w0rd}\n"
	"contexts:\n"
	"- name: shared\n"
	"  context: {cluster: cl-b, user: u-b, namespace: from-b}\n"
	"- name: ctx-b\n"
	"  context: {cluster: cl-b, user: u-b, namespace: team-b}\n";

static void kubeconfig_merge(void **state)
{
	char *dir = fresh_env();
	char *a = path_in(dir, "a.yaml"), *b = path_in(dir, "b.yaml");
	char *none = path_in(dir, "none.yaml"), *auth;
	rc_buf list = RC_BUF_INIT;
	rc_kube_conn c;

	RC_UNUSED(state);
	write_file(dir, "a.yaml", file_a);
	write_file(dir, "b.yaml", file_b);
	write_file(dir, "none.yaml", "kind: Config\nclusters: []\n");
	/* a missing file and an empty entry are skipped */
	rc_buf_printf(&list, "%s/missing.yaml::%s:%s", dir, a, b);
	setenv("KUBECONFIG", list.ptr, 1);

	assert_int_equal(rc_kube_conn_load(&c, NULL), 0);
	assert_string_equal(c.context, "ctx-a"); /* the first file's */
	assert_string_equal(c.server, "https://a.example:6443");
	assert_true(c.insecure);
	assert_string_equal(c.token, "token-from-a");
	assert_string_equal(c.namespace, "default");
	assert_false(c.in_cluster);
	assert_true(c.qps == RC_KUBE_DEFAULT_QPS);
	assert_int_equal(c.burst, RC_KUBE_DEFAULT_BURST);
	assert_int_equal(rc_kube_conn_auth_header(&c, &auth), 0);
	assert_string_equal(auth, "Bearer token-from-a");
	free(auth);
	rc_kube_conn_release(&c);
	rc_kube_conn_release(&c); /* harmless twice */

	/* a name in both files: the first file's entry, whole */
	assert_int_equal(rc_kube_conn_load(&c, "shared"), 0);
	assert_string_equal(c.cluster_name, "cl-a");
	assert_string_equal(c.namespace, "from-a");
	rc_kube_conn_release(&c);

	/* a name only the second file has; its cl-a would have lost */
	assert_int_equal(rc_kube_conn_load(&c, "ctx-b"), 0);
	assert_string_equal(c.server, "https://b.example:443");
	assert_false(c.insecure);
	assert_string_equal(c.namespace, "team-b");
	assert_string_equal(c.username, "admin");
	assert_int_equal(rc_kube_conn_auth_header(&c, &auth), 0);
	assert_string_equal(auth, "Basic YWRtaW46cGE1NS13MHJk");
	free(auth);
	rc_kube_conn_release(&c);

	/* current-context from the first file that sets one */
	rc_buf_clear(&list);
	rc_buf_printf(&list, "%s:%s:%s", none, b, a);
	setenv("KUBECONFIG", list.ptr, 1);
	assert_int_equal(rc_kube_conn_load(&c, NULL), 0);
	assert_string_equal(c.context, "ctx-b");
	/* now b comes first: its cl-a and u-a win */
	rc_kube_conn_release(&c);
	assert_int_equal(rc_kube_conn_load(&c, "ctx-a"), 0);
	assert_string_equal(c.server, "https://loser.example");
	assert_string_equal(c.token, "tok-loser-0042");
	rc_kube_conn_release(&c);

	free(a);
	free(b);
	free(none);
	rc_buf_release(&list);
	tmpdir_remove(dir);
}

/* -------------------------------------------------------------- errors */

static void expect_error(int rc, int code, const char *want)
{
	assert_int_equal(rc, code);
	assert_non_null(rc_error_last());
	assert_string_equal(rc_error_last()->message, want);
}

static void kubeconfig_errors(void **state)
{
	static const char cfg[] =
		"apiVersion: v1\n"
		"clusters:\n"
		"- name: c1\n"
		"  cluster:\n"
		"    server: https://c1.example\n"
		"users:\n"
		"- name: u1\n"
		"  user: {token: tok-u1-0042}\n"
		"contexts:\n"
		"- name: a\n"
		"  context: {cluster: c1, user: u1}\n"
		"- name: b\n"
		"  context:\n"
		"    cluster: gone\n"
		"- name: c\n"
		"  context: {cluster: c1, user: nobody}\n"
		"current-context: prod\n";
	char *dir = fresh_env(), *want, *loc;
	rc_kube_conn c;
	rc_buf m = RC_BUF_INIT;

	RC_UNUSED(state);
	/* nothing at all */
	expect_error(rc_kube_conn_load(&c, NULL), RC_ENOTFOUND,
		     "no Kubernetes connection: ~/.kube/config does not "
		     "exist, and this is not a pod (KUBERNETES_SERVICE_HOST "
		     "is not set)");

	write_file(dir, ".kube/config", cfg);
	loc = loc_of(cfg, "prod");
	rc_buf_printf(&m,
		      "kubeconfig ~/.kube/config:%s: context \"prod\" not "
		      "found (contexts: a, b, c)",
		      loc);
	expect_error(rc_kube_conn_load(&c, NULL), RC_ENOTFOUND, m.ptr);
	free(loc);
	expect_error(rc_kube_conn_load(&c, "staging"), RC_ENOTFOUND,
		     "kubeconfig ~/.kube/config: context \"staging\" not "
		     "found (contexts: a, b, c)");

	loc = loc_of(cfg, "gone");
	rc_buf_clear(&m);
	rc_buf_printf(&m,
		      "kubeconfig ~/.kube/config:%s: context \"b\": cluster "
		      "\"gone\" not found (clusters: c1)",
		      loc);
	expect_error(rc_kube_conn_load(&c, "b"), RC_ENOTFOUND, m.ptr);
	free(loc);
	loc = loc_of(cfg, "nobody");
	rc_buf_clear(&m);
	rc_buf_printf(&m,
		      "kubeconfig ~/.kube/config:%s: context \"c\": user "
		      "\"nobody\" not found (users: u1)",
		      loc);
	expect_error(rc_kube_conn_load(&c, "c"), RC_ENOTFOUND, m.ptr);
	free(loc);
	assert_int_equal(rc_kube_conn_load(&c, "a"), 0);
	rc_kube_conn_release(&c);

	/* YAML that does not parse: the place, not the line's text */
	write_file(dir, ".kube/config",
		   "clusters:\n- name: x\n  cluster: {server: [}\n");
	assert_int_equal(rc_kube_conn_load(&c, NULL), RC_EINVALID);
	assert_int_equal(strncmp(rc_error_last()->message,
				 "kubeconfig ~/.kube/config:3:", 28),
			 0);

	/* bad values point at themselves */
	{
		static const char bad[] =
			"clusters:\n"
			"- name: c1\n"
			"  cluster:\n"
			"    server: https://x\n"
			"    certificate-authority-data: '%%%%not base64'\n"
			"contexts:\n"
			"- {name: a, context: {cluster: c1}}\n";

		write_file(dir, ".kube/config", bad);
		loc = loc_of(bad, "'%%");
		rc_buf_clear(&m);
		rc_buf_printf(&m,
			      "kubeconfig ~/.kube/config:%s: cluster \"c1\": "
			      "certificate-authority-data is not valid base64",
			      loc);
		expect_error(rc_kube_conn_load(&c, "a"), RC_EINVALID, m.ptr);
		free(loc);
	}
	{
		static const char bad[] =
			"clusters:\n"
			"- name: c1\n"
			"  cluster:\n"
			"    server: https://x\n"
			"    certificate-authority: ca/missing.pem\n"
			"    insecure-skip-tls-verify: 'yes'\n"
			"contexts:\n"
			"- {name: a, context: {cluster: c1}}\n";

		write_file(dir, ".kube/config", bad);
		loc = loc_of(bad, "ca/missing.pem");
		rc_buf_clear(&m);
		rc_buf_printf(&m,
			      "kubeconfig ~/.kube/config:%s: cluster \"c1\": "
			      "cannot read certificate-authority "
			      "'%s/.kube/ca/missing.pem': No such file or "
			      "directory",
			      loc, dir);
		expect_error(rc_kube_conn_load(&c, "a"), RC_ENOTFOUND, m.ptr);
		free(loc);
	}
	{
		static const char bad[] =
			"clusters:\n"
			"- name: c1\n"
			"  cluster: {server: 'https://x'}\n"
			"users:\n"
			"- name: u\n"
			"  user:\n"
			"    token: tok-abc-0042\n"
			"    username: bob\n"
			"contexts:\n"
			"- {name: a, context: {cluster: c1, user: u}}\n";

		write_file(dir, ".kube/config", bad);
		assert_int_equal(rc_kube_conn_load(&c, "a"), RC_EINVALID);
		assert_non_null(strstr(rc_error_last()->message,
				       "user \"u\": a token and a "
				       "username/password are both set"));
	}
	{
		static const char bad[] = "clusters: {c1: {server: x}}\n";

		write_file(dir, ".kube/config", bad);
		expect_error(rc_kube_conn_load(&c, "a"), RC_EINVALID,
			     "kubeconfig ~/.kube/config:1:11: clusters must "
			     "be a list");
	}

	/* several files, none there */
	want = path_in(dir, "x.yaml");
	rc_buf_clear(&m);
	rc_buf_printf(&m, "%s:%s/y.yaml", want, dir);
	setenv("KUBECONFIG", m.ptr, 1);
	rc_buf_clear(&m);
	rc_buf_printf(&m,
		      "no Kubernetes connection: none of ~/x.yaml:~/y.yaml "
		      "exists, and this is not a pod "
		      "(KUBERNETES_SERVICE_HOST is not set)");
	expect_error(rc_kube_conn_load(&c, NULL), RC_ENOTFOUND, m.ptr);
	free(want);
	rc_buf_release(&m);
	tmpdir_remove(dir);
}

/* ------------------------------------------------------ files and data */

static void kubeconfig_paths_and_data(void **state)
{
	char *dir = fresh_env(), *cfgpath, *want;
	char *ca64 = b64(ca.ca_cert), *cert64 = b64(ca.client_cert);
	char *key64 = b64(ca.client_key);
	rc_buf y = RC_BUF_INIT;
	rc_kube_conn c;
	rc_http_resp r;
	rc_testsrv_req seen;

	RC_UNUSED(state);
	script_ok();
	rc_http_resp_init(&r);
	write_file(dir, "sub/ca.pem", ca.ca_cert);
	write_file(dir, "sub/certs/client.pem", ca.client_cert);
	write_file(dir, "sub/certs/client-key.pem", ca.client_key);
	/* files, relative to the kubeconfig's directory */
	rc_buf_printf(&y,
		      "apiVersion: v1\n"
		      "current-context: files\n"
		      "clusters:\n"
		      "- name: local\n"
		      "  cluster:\n"
		      "    server: %s\n"
		      "    certificate-authority: ca.pem\n"
		      "users:\n"
		      "- name: alice\n"
		      "  user:\n"
		      "    client-certificate: certs/client.pem\n"
		      "    client-key: ./certs/client-key.pem\n"
		      "- name: alice-data\n"
		      "  user:\n"
		      "    client-certificate-data: %s\n"
		      "    client-key-data: %s\n"
		      "contexts:\n"
		      "- name: files\n"
		      "  context: {cluster: local, user: alice, namespace: "
		      "shop}\n"
		      "- name: data\n"
		      "  context: {cluster: inline, user: alice-data}\n"
		      "- name: mixed\n"
		      "  context: {cluster: both, user: alice}\n",
		      rc_testsrv_url(srv), cert64, key64);
	/* the other clusters come from a second file */
	write_file(dir, "sub/config", y.ptr);
	rc_buf_clear(&y);
	rc_buf_printf(&y,
		      "clusters:\n"
		      "- name: inline\n"
		      "  cluster:\n"
		      "    server: %s\n"
		      "    certificate-authority-data: %s\n"
		      "- name: both\n"
		      "  cluster:\n"
		      "    server: %s\n"
		      "    certificate-authority: ca.pem\n"
		      "    certificate-authority-data: %s\n",
		      rc_testsrv_url(srv), ca64, rc_testsrv_url(srv), ca64);
	write_file(dir, "sub/more", y.ptr);
	cfgpath = path_in(dir, "sub/config");
	rc_buf_clear(&y);
	rc_buf_printf(&y, "%s:%s/sub/more", cfgpath, dir);
	setenv("KUBECONFIG", y.ptr, 1);

	assert_int_equal(rc_kube_conn_load(&c, NULL), 0);
	want = path_in(dir, "sub/ca.pem");
	assert_string_equal(c.ca_file, want);
	free(want);
	want = path_in(dir, "sub/./certs/client-key.pem");
	assert_string_equal(c.key_file, want);
	free(want);
	assert_string_equal(c.namespace, "shop");
	assert_int_equal(get_via(&c, &r, NULL), 0);
	assert_int_equal(r.status, 200);
	assert_true(rc_testsrv_request(srv, 0, &seen));
	assert_string_equal(seen.client_cn, "alice");
	assert_null(seen.authorization);
	rc_testsrv_req_release(&seen);
	rc_kube_conn_release(&c);

	assert_int_equal(rc_kube_conn_load(&c, "data"), 0);
	assert_null(c.ca_file);
	assert_string_equal(c.ca_pem, ca.ca_cert);
	assert_string_equal(c.cert_pem, ca.client_cert);
	assert_string_equal(c.key_pem, ca.client_key);
	script_ok();
	assert_int_equal(get_via(&c, &r, NULL), 0);
	assert_int_equal(r.status, 200);
	assert_true(rc_testsrv_request(srv, 0, &seen));
	assert_string_equal(seen.client_cn, "alice");
	rc_testsrv_req_release(&seen);
	rc_kube_conn_release(&c);

	assert_int_equal(rc_kube_conn_load(&c, "mixed"), RC_EINVALID);
	assert_non_null(strstr(rc_error_last()->message,
			       "kubeconfig ~/sub/more:10:"));
	assert_non_null(strstr(rc_error_last()->message,
			       "cluster \"both\": both certificate-authority "
			       "and certificate-authority-data are set"));

	free(cfgpath);
	free(ca64);
	free(cert64);
	free(key64);
	rc_buf_release(&y);
	rc_http_resp_release(&r);
	tmpdir_remove(dir);
}

static void kubeconfig_insecure_per_cluster(void **state)
{
	char *dir = fresh_env();
	rc_buf y = RC_BUF_INIT;
	rc_kube_conn c;
	rc_http_resp r;

	RC_UNUSED(state);
	script_ok();
	rc_http_resp_init(&r);
	rc_buf_printf(&y,
		      "clusters:\n"
		      "- name: loose\n"
		      "  cluster: {server: '%s', insecure-skip-tls-verify: "
		      "true}\n"
		      "- name: strict\n"
		      "  cluster: {server: '%s'}\n"
		      "contexts:\n"
		      "- {name: loose, context: {cluster: loose}}\n"
		      "- {name: strict, context: {cluster: strict}}\n",
		      rc_testsrv_url(srv), rc_testsrv_url(srv));
	write_file(dir, ".kube/config", y.ptr);

	assert_int_equal(rc_kube_conn_load(&c, "loose"), 0);
	assert_true(c.insecure);
	assert_int_equal(get_via(&c, &r, NULL), 0);
	assert_int_equal(r.status, 200);
	rc_kube_conn_release(&c);

	/* the other cluster of the same file is verified */
	assert_int_equal(rc_kube_conn_load(&c, "strict"), 0);
	assert_false(c.insecure);
	assert_int_equal(get_via(&c, &r, NULL), RC_EAUTH);
	assert_non_null(strstr(rc_error_last()->message,
			       "the server's certificate is not trusted"));
	rc_kube_conn_release(&c);

	/* insecure and a CA at once is refused, as by kubectl */
	write_file(dir, "ca.pem", ca.ca_cert);
	write_file(dir, ".kube/config",
		   "clusters:\n"
		   "- name: x\n"
		   "  cluster:\n"
		   "    server: https://x\n"
		   "    certificate-authority: ../ca.pem\n"
		   "    insecure-skip-tls-verify: true\n"
		   "contexts:\n"
		   "- {name: x, context: {cluster: x}}\n");
	expect_error(rc_kube_conn_load(&c, "x"), RC_EINVALID,
		     "kubeconfig ~/.kube/config:6:31: cluster \"x\": "
		     "insecure-skip-tls-verify with a certificate authority: "
		     "choose one");
	rc_buf_release(&y);
	rc_http_resp_release(&r);
	tmpdir_remove(dir);
}

/* ------------------------------------------------------------ in-cluster */

static void kubeconfig_in_cluster(void **state)
{
	char *dir = fresh_env(), *sa = path_in(dir, "sa"), *auth, port[16];
	rc_kube_conn c;
	rc_http_resp r;
	rc_http_counters st;
	rc_buf red = RC_BUF_INIT;
	char *log;
	size_t loglen;
	FILE *logfile;

	RC_UNUSED(state);
	script_ok();
	rc_http_resp_init(&r);
	write_file(dir, "sa/token", "tok-A\n");
	write_file(dir, "sa/ca.crt", ca.ca_cert);
	write_file(dir, "sa/namespace", "shop");
	snprintf(port, sizeof(port), "%d", rc_testsrv_port(srv));
	setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", port, 1);
	setenv(RC_KUBE_SERVICEACCOUNT_ENV, sa, 1);

	assert_int_equal(rc_kube_conn_load(&c, NULL), 0);
	assert_true(c.in_cluster);
	assert_string_equal(c.server, rc_testsrv_url(srv));
	assert_string_equal(c.namespace, "shop");
	assert_non_null(strstr(c.source, "in-cluster service account in "));
	assert_int_equal(rc_kube_conn_auth_header(&c, &auth), 0);
	assert_string_equal(auth, "Bearer tok-A");
	free(auth);
	/* the token is known to the redactor */
	rc_buf_puts(&red, "x tok-A y");
	rc_redact(&red);
	assert_string_equal(red.ptr, "x (sensitive) y");

	rc_testsrv_require_auth(srv, "Bearer tok-A");
	assert_int_equal(get_via(&c, &r, NULL), 0);
	assert_int_equal(r.status, 200);

	/* rotated: the copy is fresh, so the server's 401 brings it in */
	write_file(dir, "sa/token", "tok-B");
	rc_testsrv_require_auth(srv, "Bearer tok-B");
	assert_int_equal(get_via(&c, &r, &st), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.attempts, 2);

	/* rotated again, and the copy is old: read before sending */
	c.token_reread_ms = 0;
	write_file(dir, "sa/token", "tok-C");
	rc_testsrv_require_auth(srv, "Bearer tok-C");
	assert_int_equal(get_via(&c, &r, NULL), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.attempts, 1);

	/* invalidated by hand */
	c.token_reread_ms = 60000;
	write_file(dir, "sa/token", "tok-D");
	assert_int_equal(rc_kube_conn_auth_header(&c, &auth), 0);
	assert_string_equal(auth, "Bearer tok-C");
	free(auth);
	assert_true(rc_kube_conn_invalidate(&c));
	assert_int_equal(rc_kube_conn_auth_header(&c, &auth), 0);
	assert_string_equal(auth, "Bearer tok-D");
	free(auth);
	/* a file that cannot be read again: the last token, a warning */
	write_file(dir, "sa/token", "\n");
	assert_true(rc_kube_conn_invalidate(&c));
	log = NULL;
	logfile = open_memstream(&log, &loglen);
	rc_log_set_stream(logfile);
	assert_int_equal(rc_kube_conn_auth_header(&c, &auth), 0);
	rc_log_set_stream(NULL);
	fclose(logfile);
	assert_string_equal(auth, "Bearer tok-D");
	free(auth);
	assert_non_null(strstr(log, "is empty; the token read before is used"));
	free(log);
	rc_kube_conn_release(&c);
	rc_testsrv_require_auth(srv, NULL);

	/* an IPv6 service address goes in brackets */
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	assert_int_equal(rc_kube_conn_load(&c, NULL), 0);
	assert_string_equal(c.server, "https://[fd00::1]:443");
	rc_kube_conn_release(&c);

	/* no token: a clear error */
	{
		char *tok = path_in(dir, "sa/token");

		unlink(tok);
		free(tok);
	}
	assert_int_equal(rc_kube_conn_load(&c, NULL), RC_ENOTFOUND);
	assert_non_null(strstr(rc_error_last()->message,
			       "cannot read the token"));
	/* a kubeconfig wins over the pod's account */
	write_file(dir, ".kube/config",
		   "clusters: [{name: k, cluster: {server: 'https://k'}}]\n"
		   "contexts: [{name: k, context: {cluster: k}}]\n"
		   "current-context: k\n");
	assert_int_equal(rc_kube_conn_load(&c, NULL), 0);
	assert_false(c.in_cluster);
	assert_string_equal(c.server, "https://k");
	rc_kube_conn_release(&c);

	free(sa);
	rc_buf_release(&red);
	rc_http_resp_release(&r);
	tmpdir_remove(dir);
}

/* --------------------------------------------------------- exec plugins */

static const char plugin_sh[] =
	"#!/bin/sh\n"
	"d=$(dirname \"$0\")\n"
	"echo \"$*\" >> \"$d/runs\"\n"
	"printf '%s' \"$KUBERNETES_EXEC_INFO\" > \"$d/info.json\"\n"
	"printf '%s' \"$PLUGIN_MODE\" > \"$d/mode.txt\"\n"
	"if [ -f \"$d/fail\" ]; then cat \"$d/fail\" >&2; exit 3; fi\n"
	"cat \"$d/answer.json\"\n";

static int count_runs(const char *dir)
{
	char *p = path_in(dir, "plugin/runs");
	FILE *f = fopen(p, "r");
	int n = 0, ch;

	free(p);
	if (!f)
		return 0;
	while ((ch = fgetc(f)) != EOF)
		n += ch == '\n';
	fclose(f);
	return n;
}

static void answer(const char *dir, const char *api, const char *token,
		   long expires_in, bool cert)
{
	json_t *st = json_object(), *doc;
	char *s, when[64];

	if (token)
		json_object_set_new(st, "token", json_string(token));
	if (cert) {
		json_object_set_new(st, "clientCertificateData",
				    json_string(ca.client_cert));
		json_object_set_new(st, "clientKeyData",
				    json_string(ca.client_key));
	}
	if (expires_in) {
		time_t t = time(NULL) + expires_in;
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		json_object_set_new(st, "expirationTimestamp",
				    json_string(when));
	}
	doc = json_pack("{s:s, s:s, s:o}", "apiVersion", api, "kind",
			"ExecCredential", "status", st);
	s = json_dumps(doc, 0);
	write_file(dir, "plugin/answer.json", s);
	free(s);
	json_decref(doc);
}

static void write_plugin_config(const char *dir, const char *api,
				const char *command, const char *extra)
{
	rc_buf y = RC_BUF_INIT;

	rc_buf_printf(&y,
		      "clusters:\n"
		      "- name: k\n"
		      "  cluster: {server: '%s', certificate-authority: "
		      "../ca.pem}\n"
		      "users:\n"
		      "- name: sso\n"
		      "  user:\n"
		      "    exec:\n"
		      "      apiVersion: %s\n"
		      "      command: %s\n"
		      "      args: [--cluster, k]\n"
		      "      env:\n"
		      "      - {name: PLUGIN_MODE, value: test}\n"
		      "      provideClusterInfo: true\n"
		      "%s"
		      "contexts:\n"
		      "- {name: k, context: {cluster: k, user: sso}}\n"
		      "current-context: k\n",
		      rc_testsrv_url(srv), api, command, extra ? extra : "");
	write_file(dir, "plugin/config", y.ptr);
	rc_buf_release(&y);
}

static char *setup_plugin(const char *dir)
{
	char *script = path_in(dir, "plugin/plugin.sh");
	char *cfg = path_in(dir, "plugin/config");

	write_file(dir, "ca.pem", ca.ca_cert);
	write_file(dir, "plugin/plugin.sh", plugin_sh);
	chmod(script, 0755);
	free(script);
	setenv("KUBECONFIG", cfg, 1);
	return cfg;
}

static void kubeconfig_exec_plugin(void **state)
{
	char *dir = fresh_env(), *cfg = setup_plugin(dir), *auth;
	rc_kube_conn c;
	rc_http_resp r;
	rc_testsrv_req seen;
	json_t *info;
	rc_buf p = RC_BUF_INIT;

	RC_UNUSED(state);
	script_ok();
	rc_http_resp_init(&r);
	write_plugin_config(dir, "client.authentication.k8s.io/v1",
			    "./plugin.sh", "      interactiveMode: Never\n");
	answer(dir, "client.authentication.k8s.io/v1", "tok-exec", 3600,
	       false);
	assert_int_equal(rc_kube_conn_load(&c, NULL), 0);
	assert_non_null(c.exec);
	assert_int_equal(count_runs(dir), 0); /* not before it is needed */
	assert_int_equal(rc_kube_conn_auth_header(&c, &auth), 0);
	assert_string_equal(auth, "Bearer tok-exec");
	free(auth);
	assert_int_equal(count_runs(dir), 1);
	/* cached until it expires */
	assert_int_equal(rc_kube_conn_auth_header(&c, &auth), 0);
	free(auth);
	assert_int_equal(count_runs(dir), 1);

	/* what the plugin was given: argv, env, KUBERNETES_EXEC_INFO */
	rc_buf_printf(&p, "%s/plugin/runs", dir);
	{
		FILE *f = fopen(p.ptr, "r");
		char line[128];

		assert_non_null(f);
		assert_non_null(fgets(line, sizeof(line), f));
		assert_string_equal(line, "--cluster k\n");
		fclose(f);
	}
	rc_buf_clear(&p);
	rc_buf_printf(&p, "%s/plugin/info.json", dir);
	info = json_load_file(p.ptr, 0, NULL);
	assert_non_null(info);
	assert_string_equal(json_string_value(json_object_get(info, "kind")),
			    "ExecCredential");
	assert_true(json_is_false(json_object_get(
		json_object_get(info, "spec"), "interactive")));
	assert_string_equal(
		json_string_value(json_object_get(
			json_object_get(json_object_get(info, "spec"),
					"cluster"),
			"server")),
		rc_testsrv_url(srv));
	assert_non_null(json_object_get(
		json_object_get(json_object_get(info, "spec"), "cluster"),
		"certificate-authority-data"));
	json_decref(info);
	rc_buf_clear(&p);
	rc_buf_printf(&p, "%s/plugin/mode.txt", dir);
	{
		FILE *f = fopen(p.ptr, "r");
		char buf[64] = "";

		assert_non_null(f);
		assert_non_null(fgets(buf, sizeof(buf), f));
		fclose(f);
		assert_string_equal(buf, "test");
	}

	/* a 401 runs it again */
	answer(dir, "client.authentication.k8s.io/v1", "tok-exec-2", 3600,
	       false);
	rc_testsrv_require_auth(srv, "Bearer tok-exec-2");
	assert_int_equal(get_via(&c, &r, NULL), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.attempts, 2);
	assert_int_equal(count_runs(dir), 2);
	rc_testsrv_require_auth(srv, NULL);
	rc_kube_conn_release(&c);

	/* an expired answer is not kept */
	answer(dir, "client.authentication.k8s.io/v1", "tok-old", -60, false);
	assert_int_equal(rc_kube_conn_load(&c, NULL), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(rc_kube_conn_auth_header(&c, &auth), 0);
		free(auth);
	}
	assert_int_equal(count_runs(dir), 5);
	rc_kube_conn_release(&c);

	/* v1beta1, answering with a client certificate */
	write_plugin_config(dir, "client.authentication.k8s.io/v1beta1",
			    "./plugin.sh", NULL);
	answer(dir, "client.authentication.k8s.io/v1beta1", NULL, 0, true);
	script_ok();
	assert_int_equal(rc_kube_conn_load(&c, NULL), 0);
	assert_int_equal(get_via(&c, &r, NULL), 0);
	assert_int_equal(r.status, 200);
	assert_true(rc_testsrv_request(srv, 0, &seen));
	assert_string_equal(seen.client_cn, "alice");
	assert_null(seen.authorization);
	rc_testsrv_req_release(&seen);
	rc_kube_conn_release(&c);

	/* the command found in PATH */
	{
		char *bin = path_in(dir, "plugin");
		rc_buf path = RC_BUF_INIT;

		rc_buf_printf(&path, "%s:/usr/bin:/bin", bin);
		setenv("PATH", path.ptr, 1);
		write_plugin_config(dir,
				    "client.authentication.k8s.io/v1beta1",
				    "plugin.sh", NULL);
		answer(dir, "client.authentication.k8s.io/v1beta1", "tok-p",
		       0, false);
		assert_int_equal(rc_kube_conn_load(&c, NULL), 0);
		assert_int_equal(rc_kube_conn_auth_header(&c, &auth), 0);
		assert_string_equal(auth, "Bearer tok-p");
		free(auth);
		rc_kube_conn_release(&c);
		free(bin);
		rc_buf_release(&path);
	}
	free(cfg);
	rc_buf_release(&p);
	rc_http_resp_release(&r);
	tmpdir_remove(dir);
}

static void kubeconfig_exec_failure(void **state)
{
	char *dir = fresh_env(), *cfg = setup_plugin(dir), *auth = NULL;
	const char *msg;
	rc_kube_conn c;
	rc_http_opts o;

	RC_UNUSED(state);
	rc_secret_register("hunter2-secret");
	write_plugin_config(dir, "client.authentication.k8s.io/v1",
			    "./plugin.sh",
			    "      interactiveMode: IfAvailable\n");
	write_file(dir, "plugin/fail",
		   "refreshing credentials\n"
		   "error: the login for hunter2-secret has expired\n");
	assert_int_equal(rc_kube_conn_load(&c, NULL), 0);
	assert_int_equal(rc_kube_conn_auth_header(&c, &auth), RC_ERROR);
	assert_null(auth);
	msg = rc_error_last()->message;
	assert_non_null(strstr(msg, "kubeconfig ~/plugin/config: user \"sso\": "
				    "exec plugin '"));
	assert_non_null(strstr(msg, "plugin.sh' exited with status 3; its "
				    "last output:\n"
				    "    refreshing credentials\n"
				    "    error: the login for (sensitive) has "
				    "expired"));
	assert_null(strstr(msg, "hunter2"));
	/* the same from the HTTP options */
	assert_int_equal(rc_kube_conn_http_opts(&c, &o), RC_ERROR);
	rc_kube_conn_release(&c);

	/* not JSON */
	{
		char *f = path_in(dir, "plugin/fail");

		unlink(f);
		free(f);
	}
	write_file(dir, "plugin/answer.json", "Please log in\n");
	assert_int_equal(rc_kube_conn_load(&c, NULL), 0);
	assert_int_equal(rc_kube_conn_auth_header(&c, &auth), RC_EINVALID);
	assert_non_null(strstr(rc_error_last()->message,
			       "answered something that is not an "
			       "ExecCredential"));
	rc_kube_conn_release(&c);

	/* another apiVersion than asked */
	answer(dir, "client.authentication.k8s.io/v1beta1", "tok-other-api", 0,
	       false);
	assert_int_equal(rc_kube_conn_load(&c, NULL), 0);
	assert_int_equal(rc_kube_conn_auth_header(&c, &auth), RC_EINVALID);
	assert_non_null(strstr(rc_error_last()->message,
			       "not an client.authentication.k8s.io/v1 "
			       "ExecCredential"));
	rc_kube_conn_release(&c);

	/* not installed: the hint */
	write_plugin_config(dir, "client.authentication.k8s.io/v1",
			    "rc-no-such-plugin",
			    "      interactiveMode: Never\n"
			    "      installHint: 'install it with: apt install "
			    "rc-plugin'\n");
	assert_int_equal(rc_kube_conn_load(&c, NULL), 0);
	assert_int_equal(rc_kube_conn_auth_header(&c, &auth), RC_ENOTFOUND);
	assert_string_equal(rc_error_last()->message,
			    "kubeconfig ~/plugin/config: user \"sso\": exec "
			    "plugin 'rc-no-such-plugin' not found in PATH\n"
			    "install it with: apt install rc-plugin");
	rc_kube_conn_release(&c);

	/* an apiVersion that is gone, and v1 without interactiveMode */
	write_plugin_config(dir, "client.authentication.k8s.io/v1alpha1",
			    "./plugin.sh", NULL);
	assert_int_equal(rc_kube_conn_load(&c, NULL), RC_EUNSUPPORTED);
	assert_non_null(strstr(rc_error_last()->message,
			       "kubeconfig ~/plugin/config:8:19: user \"sso\": "
			       "exec apiVersion "
			       "'client.authentication.k8s.io/v1alpha1' is "
			       "not supported"));
	write_plugin_config(dir, "client.authentication.k8s.io/v1",
			    "./plugin.sh", NULL);
	assert_int_equal(rc_kube_conn_load(&c, NULL), RC_EINVALID);
	assert_non_null(strstr(rc_error_last()->message,
			       "exec interactiveMode must be set"));
	free(cfg);
	tmpdir_remove(dir);
}

int test_group_kubeconfig(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(kubeconfig_merge),
		cmocka_unit_test(kubeconfig_errors),
		cmocka_unit_test(kubeconfig_paths_and_data),
		cmocka_unit_test(kubeconfig_insecure_per_cluster),
		cmocka_unit_test(kubeconfig_in_cluster),
		cmocka_unit_test(kubeconfig_exec_plugin),
		cmocka_unit_test(kubeconfig_exec_failure),
	};
	return cmocka_run_group_tests_name("kubeconfig", tests, setup,
					   teardown);
}
