/* The registry client without a registry: references parsed as Docker
 * parses them, WWW-Authenticate challenges, Docker config files, loopback
 * detection; then Basic and bearer authentication, token caching and
 * registry errors against the scripted HTTPS server. tests/registry/ runs
 * it against real registries (ctest oci.registry). */
#include "tests/unit/helpers.h"
#include "tests/support/testca.h"
#include "tests/support/testsrv.h"
#include "drivers/oci.h"
#include "reconciler/base/codec.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"

static rc_testca ca;
static rc_testsrv *srv;
static char *dir;
static char ca_path[512];

static int setup(void **state)
{
	RC_UNUSED(state);
	unsetenv("https_proxy");
	unsetenv("HTTPS_PROXY");
	unsetenv("all_proxy");
	if (rc_testca_make(&ca, "registry", "test") < 0)
		return -1;
	dir = tmpdir_new();
	snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", dir);
	if (rc_testca_write(ca_path, ca.ca_cert) < 0)
		return -1;
	srv = rc_testsrv_start(&ca, false, false);
	return srv ? 0 : -1;
}

static int teardown(void **state)
{
	RC_UNUSED(state);
	rc_testsrv_stop(srv);
	rc_testca_release(&ca);
	tmpdir_remove(dir);
	rc_secret_clear();
	return 0;
}

/* ------------------------------------------------------------ references */

static void check_ref(const char *s, const char *reg, const char *repo,
		      const char *tag, const char *digest, const char *full)
{
	rc_oci_ref r;
	rc_buf b = RC_BUF_INIT;

	if (rc_oci_ref_parse(&r, s) < 0)
		fail_msg("'%s': %s", s, rc_error_last()->message);
	assert_string_equal(r.registry, reg);
	assert_string_equal(r.repository, repo);
	if (tag)
		assert_string_equal(r.tag, tag);
	else
		assert_null(r.tag);
	if (digest)
		assert_string_equal(r.digest, digest);
	else
		assert_null(r.digest);
	rc_oci_ref_format(&b, &r);
	assert_string_equal(b.ptr, full);
	rc_buf_release(&b);
	rc_oci_ref_release(&r);
}

#define D "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void oci_refs(void **state)
{
	static const char *const bad[] = {
		"",
		"Upper/Case",               /* a registry "Upper", then ... */
		"docker.io/UPPER",
		"x/y:",
		"x/y:-tag",
		"x/y@sha256:abc",
		"x/y@sha512:" "0123456789abcdef0123456789abcdef",
		"x//y",
		"x/y_",
		"host:port/x",
		"bad host/x",
		":5000/x",
	};
	rc_oci_ref r;

	RC_UNUSED(state);
	check_ref("docker.io/cityofaustin/joplin-app:7d0a3f8", "docker.io",
		  "cityofaustin/joplin-app", "7d0a3f8", NULL,
		  "docker.io/cityofaustin/joplin-app:7d0a3f8");
	check_ref("cityofaustin/joplin-app", "docker.io",
		  "cityofaustin/joplin-app", "latest", NULL,
		  "docker.io/cityofaustin/joplin-app:latest");
	check_ref("nginx", "docker.io", "library/nginx", "latest", NULL,
		  "docker.io/library/nginx:latest");
	check_ref("index.docker.io/nginx:1.25", "docker.io", "library/nginx",
		  "1.25", NULL, "docker.io/library/nginx:1.25");
	check_ref("registry.heroku.com/my-app/web:v12", "registry.heroku.com",
		  "my-app/web", "v12", NULL,
		  "registry.heroku.com/my-app/web:v12");
	check_ref("127.0.0.1:5000/x/y@" D, "127.0.0.1:5000", "x/y", NULL, D,
		  "127.0.0.1:5000/x/y@" D);
	check_ref("host:5000/repo:tag@" D, "host:5000", "repo", "tag", D,
		  "host:5000/repo:tag@" D);
	check_ref("localhost/a/b/c", "localhost", "a/b/c", "latest", NULL,
		  "localhost/a/b/c:latest");
	check_ref("[::1]:5000/x:1", "[::1]:5000", "x", "1", NULL,
		  "[::1]:5000/x:1");
	check_ref("ghcr.io/o/a__b.c-d--e:v1.2_3", "ghcr.io", "o/a__b.c-d--e",
		  "v1.2_3", NULL, "ghcr.io/o/a__b.c-d--e:v1.2_3");
	/* a port-like tag after the last '/' is a tag */
	check_ref("x/y:5000", "docker.io", "x/y", "5000", NULL,
		  "docker.io/x/y:5000");
	for (size_t i = 0; i < RC_ARRAY_SIZE(bad); i++) {
		int rc = rc_oci_ref_parse(&r, bad[i]);

		if (rc != RC_EINVALID)
			fail_msg("'%s' was accepted (%d)", bad[i], rc);
		rc_oci_ref_release(&r);
	}
	assert_int_equal(rc_oci_ref_parse(&r, "x/y@sha512:00"), RC_EINVALID);
	assert_non_null(strstr(rc_error_last()->message, "only sha256"));
	rc_oci_ref_release(&r);
}

static void oci_loopback(void **state)
{
	RC_UNUSED(state);
	assert_true(rc_oci_registry_is_loopback("localhost"));
	assert_true(rc_oci_registry_is_loopback("localhost:5000"));
	assert_true(rc_oci_registry_is_loopback("127.0.0.1"));
	assert_true(rc_oci_registry_is_loopback("127.1.2.3:5000"));
	assert_true(rc_oci_registry_is_loopback("[::1]:5000"));
	assert_true(rc_oci_registry_is_loopback("::1"));
	assert_false(rc_oci_registry_is_loopback("128.0.0.1:5000"));
	assert_false(rc_oci_registry_is_loopback("registry.heroku.com"));
	assert_false(rc_oci_registry_is_loopback("localhost.example.com"));
	assert_false(rc_oci_registry_is_loopback("[::2]:5000"));
	assert_false(rc_oci_registry_is_loopback("10.0.0.1"));
}

/* ------------------------------------------------------------ challenges */

static void oci_challenges(void **state)
{
	rc_oci_challenge c;

	RC_UNUSED(state);
	assert_int_equal(
		rc_oci_challenge_parse(
			&c, "Bearer realm=\"https://auth.docker.io/token\","
			    "service=\"registry.docker.io\",scope=\"repository:"
			    "library/nginx:pull\""),
		0);
	assert_string_equal(c.scheme, "Bearer");
	assert_string_equal(c.realm, "https://auth.docker.io/token");
	assert_string_equal(c.service, "registry.docker.io");
	assert_string_equal(c.scope, "repository:library/nginx:pull");
	assert_null(c.error);
	rc_oci_challenge_release(&c);

	/* bare tokens, spaces, case, escapes, an error, a second challenge */
	assert_int_equal(rc_oci_challenge_parse(
				 &c, "bearer  REALM=https://r.example/t , "
				     "Service = \"a \\\"quoted\\\" svc\", "
				     "error=\"insufficient_scope\", Basic "
				     "realm=\"other\""),
			 0);
	assert_string_equal(c.scheme, "bearer");
	assert_string_equal(c.realm, "https://r.example/t");
	assert_string_equal(c.service, "a \"quoted\" svc");
	assert_string_equal(c.error, "insufficient_scope");
	assert_null(c.scope);
	rc_oci_challenge_release(&c);

	assert_int_equal(rc_oci_challenge_parse(&c, "Basic realm=\"Registry "
						    "Realm\""),
			 0);
	assert_string_equal(c.scheme, "Basic");
	assert_string_equal(c.realm, "Registry Realm");
	rc_oci_challenge_release(&c);

	assert_int_equal(rc_oci_challenge_parse(&c, "Bearer realm=\"open"),
			 RC_EINVALID);
	rc_oci_challenge_release(&c);
	assert_int_equal(rc_oci_challenge_parse(&c, ""), RC_EINVALID);
	rc_oci_challenge_release(&c);
	assert_int_equal(rc_oci_challenge_parse(&c, NULL), RC_EINVALID);
	rc_oci_challenge_release(&c);
}

/* ---------------------------------------------------------- config files */

static void oci_docker_config(void **state)
{
	char path[600], bad[600];
	rc_oci_cred cr;
	rc_buf b = RC_BUF_INIT;
	char *old_home = getenv("HOME") ? rc_strdup(getenv("HOME")) : NULL;

	RC_UNUSED(state);
	/* "hub:hubpass", "_:heroku-key" */
	write_file(dir, "docker/config.json",
		   "{\"auths\": {"
		   "\"https://index.docker.io/v1/\": {\"auth\": "
		   "\"aHViOmh1YnBhc3M=\"},"
		   "\"registry.heroku.com\": {\"auth\": "
		   "\"XzpoZXJva3Uta2V5\"},"
		   "\"https://ghcr.io\": {\"username\": \"gh\", "
		   "\"password\": \"ghpass\"},"
		   "\"quay.io\": {\"identitytoken\": \"refresh-me\"},"
		   "\"helper.example\": {}"
		   "}, \"credsStore\": \"desktop\"}");
	snprintf(path, sizeof(path), "%s/docker/config.json", dir);

	assert_int_equal(rc_oci_config_lookup(&cr, "docker.io", path), 0);
	assert_string_equal(cr.user, "hub");
	assert_string_equal(cr.password, "hubpass");
	assert_string_equal(cr.source, path);
	rc_oci_cred_release(&cr);
	assert_int_equal(rc_oci_config_lookup(&cr, "registry.heroku.com", path),
			 0);
	assert_string_equal(cr.user, "_");
	assert_string_equal(cr.password, "heroku-key");
	rc_oci_cred_release(&cr);
	assert_int_equal(rc_oci_config_lookup(&cr, "ghcr.io", path), 0);
	assert_string_equal(cr.user, "gh");
	assert_string_equal(cr.password, "ghpass");
	rc_oci_cred_release(&cr);
	assert_int_equal(rc_oci_config_lookup(&cr, "quay.io", path), 0);
	assert_string_equal(cr.identity_token, "refresh-me");
	assert_null(cr.password);
	rc_oci_cred_release(&cr);
	/* the secrets went to the redactor */
	rc_buf_puts(&b, "hubpass heroku-key ghpass refresh-me");
	rc_redact(&b);
	assert_null(strstr(b.ptr, "pass"));
	assert_null(strstr(b.ptr, "heroku-key"));
	assert_null(strstr(b.ptr, "refresh-me"));
	rc_buf_clear(&b);

	assert_int_equal(rc_oci_config_lookup(&cr, "other.example", path),
			 RC_ENOTFOUND);
	assert_int_equal(rc_oci_config_lookup(&cr, "helper.example", path),
			 RC_ENOTFOUND);
	assert_non_null(strstr(rc_error_last()->message, "helper"));

	/* a broken entry: the file and key named, not the value */
	write_file(dir, "bad.json",
		   "{\"auths\": {\"x.example\": {\"auth\": \"c2VjcmV0\"}}}");
	snprintf(bad, sizeof(bad), "%s/bad.json", dir);
	assert_int_equal(rc_oci_config_lookup(&cr, "x.example", bad),
			 RC_EINVALID);
	assert_non_null(strstr(rc_error_last()->message, "bad.json"));
	assert_non_null(strstr(rc_error_last()->message, "x.example"));
	assert_null(strstr(rc_error_last()->message, "c2VjcmV0"));
	write_file(dir, "broken.json", "{\"auths\": ");
	snprintf(bad, sizeof(bad), "%s/broken.json", dir);
	assert_int_equal(rc_oci_config_lookup(&cr, "x.example", bad),
			 RC_EINVALID);

	/* the conventions: REGISTRY_AUTH_FILE, DOCKER_CONFIG, HOME */
	setenv("REGISTRY_AUTH_FILE", "/nonexistent/auth.json", 1);
	assert_int_equal(rc_oci_config_path(&b), 0);
	assert_string_equal(b.ptr, "/nonexistent/auth.json");
	assert_int_equal(rc_oci_config_lookup(&cr, "docker.io", NULL),
			 RC_ENOTFOUND);
	unsetenv("REGISTRY_AUTH_FILE");
	snprintf(bad, sizeof(bad), "%s/docker", dir);
	setenv("DOCKER_CONFIG", bad, 1);
	assert_int_equal(rc_oci_config_lookup(&cr, "registry.heroku.com",
					      NULL),
			 0);
	assert_string_equal(cr.password, "heroku-key");
	rc_oci_cred_release(&cr);
	unsetenv("DOCKER_CONFIG");
	write_file(dir, "home/.docker/config.json",
		   "{\"auths\": {\"registry-1.docker.io\": {\"username\": "
		   "\"u\", \"password\": \"p-home\"}}}");
	snprintf(bad, sizeof(bad), "%s/home", dir);
	setenv("HOME", bad, 1);
	rc_buf_clear(&b);
	assert_int_equal(rc_oci_config_path(&b), 0);
	assert_non_null(strstr(b.ptr, "home/.docker/config.json"));
	/* docker.io found under another of its names */
	assert_int_equal(rc_oci_config_lookup(&cr, "docker.io", NULL), 0);
	assert_string_equal(cr.password, "p-home");
	rc_oci_cred_release(&cr);
	if (old_home)
		setenv("HOME", old_home, 1);
	free(old_home);
	rc_buf_release(&b);
}

/* ------------------------------------------------ against a script */

static const char manifest[] =
	"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker."
	"distribution.manifest.v2+json\",\"config\":{\"mediaType\":\"x\","
	"\"size\":7,\"digest\":\"" D "\"},\"layers\":[{\"mediaType\":\"y\","
	"\"size\":9,\"digest\":\"" D "\"}]}";

static rc_oci *client(const char *user, const char *password)
{
	rc_oci_opts o;
	rc_oci *c;

	rc_oci_opts_init(&o);
	o.ca_file = ca_path;
	o.auth_file = "";
	o.max_retries = 0;
	assert_int_equal(rc_oci_open(&c, &o), 0);
	assert_int_equal(rc_oci_set_endpoint(c, "registry.example.com",
					     rc_testsrv_url(srv)),
			 0);
	if (user)
		rc_oci_set_credentials(c, "registry.example.com", user,
				       password);
	return c;
}

static void oci_endpoints(void **state)
{
	rc_oci *c = client(NULL, NULL);

	RC_UNUSED(state);
	assert_int_equal(rc_oci_set_endpoint(c, "registry.heroku.com",
					     "http://127.0.0.1:5001"),
			 0);
	assert_int_equal(rc_oci_set_endpoint(c, "registry.heroku.com",
					     "http://[::1]:5001/"),
			 0);
	assert_int_equal(rc_oci_set_endpoint(c, "registry.heroku.com",
					     "http://10.0.0.8:5001"),
			 RC_EINVALID);
	assert_non_null(strstr(rc_error_last()->message, "use https"));
	assert_int_equal(rc_oci_set_endpoint(c, "x", "ftp://x"), RC_EINVALID);
	rc_oci_close(c);
}

static void oci_basic_auth(void **state)
{
	char digest[RC_SHA256_DIGEST_LEN + 1];
	rc_testsrv_step steps[] = {
		{.status = 401,
		 .headers = "WWW-Authenticate: Basic realm=\"Registry\""},
		{.status = 200, .body = manifest,
		 .headers = "Content-Type: application/vnd.docker.distribution"
			    ".manifest.v2+json"},
	};
	rc_oci *c = client("_", "heroku-api-key");
	rc_oci_image img;
	rc_testsrv_req seen;
	rc_buf want = RC_BUF_INIT;

	RC_UNUSED(state);
	rc_testsrv_script(srv, steps, 2);
	assert_int_equal(rc_oci_resolve(c, &img,
					"registry.example.com/app/web:v1",
					NULL),
			 0);
	rc_codec_sha256_digest(digest, manifest, strlen(manifest));
	assert_string_equal(img.digest, digest);
	assert_string_equal(img.config.digest, D);
	assert_int_equal(img.nlayers, 1);
	assert_int_equal(img.layers[0].size, 9);
	assert_null(img.index_digest);
	rc_oci_image_release(&img);
	assert_true(rc_testsrv_request(srv, 0, &seen));
	assert_string_equal(seen.path, "/v2/app/web/manifests/v1");
	assert_non_null(strstr(seen.accept, "application/vnd.oci.image.index"
					    ".v1+json"));
	assert_non_null(strstr(seen.accept, "manifest.list.v2+json"));
	assert_null(seen.authorization);
	rc_testsrv_req_release(&seen);
	assert_true(rc_testsrv_request(srv, 1, &seen));
	rc_buf_puts(&want, "Basic ");
	rc_codec_base64_encode(&want, "_:heroku-api-key", 16, 0);
	assert_string_equal(seen.authorization, want.ptr);
	rc_testsrv_req_release(&seen);

	/* known to ask for Basic: sent at once the next time */
	rc_testsrv_script(srv, steps + 1, 1);
	assert_int_equal(rc_oci_resolve(c, &img,
					"registry.example.com/app/web:v1",
					NULL),
			 0);
	rc_oci_image_release(&img);
	assert_int_equal(rc_testsrv_requests(srv), 1);

	/* refused: the registry, the repository, the user; not the key */
	rc_testsrv_script(srv, steps, 1);
	assert_int_equal(rc_oci_resolve(c, &img,
					"registry.example.com/app/web:v1",
					NULL),
			 RC_EAUTH);
	rc_oci_image_release(&img);
	assert_non_null(strstr(rc_error_last()->message,
			       "registry registry.example.com denied access "
			       "to manifest 'v1' of repository app/web "
			       "(HTTP 401) with user '_' (given)"));
	assert_null(strstr(rc_error_last()->message, "heroku-api-key"));
	rc_buf_release(&want);
	rc_oci_close(c);
}

static void oci_bearer_auth(void **state)
{
	char challenge[600];
	rc_testsrv_step steps[] = {
		{.status = 401, .headers = challenge},
		{.status = 200,
		 .body = "{\"access_token\":\"tok-1\",\"expires_in\":300}"},
		{.status = 200, .body = manifest},
	};
	rc_oci *c = client("_", "pw");
	rc_oci_image img;
	rc_testsrv_req seen;
	char *logtext = NULL;
	size_t loglen = 0;
	FILE *lf;

	RC_UNUSED(state);
	snprintf(challenge, sizeof(challenge),
		 "WWW-Authenticate: Bearer realm=\"%s/token\",service=\"reg\","
		 "scope=\"repository:app/web:pull\"",
		 rc_testsrv_url(srv));
	rc_testsrv_script(srv, steps, 3);
	assert_int_equal(rc_oci_resolve(c, &img,
					"registry.example.com/app/web:v1",
					NULL),
			 0);
	rc_oci_image_release(&img);
	assert_true(rc_testsrv_request(srv, 1, &seen));
	assert_string_equal(seen.path, "/token");
	assert_non_null(strstr(seen.query, "service=reg"));
	assert_non_null(strstr(seen.query, "scope=repository:app/web:pull"));
	assert_non_null(seen.authorization);
	assert_non_null(strstr(seen.authorization, "Basic "));
	rc_testsrv_req_release(&seen);
	assert_true(rc_testsrv_request(srv, 2, &seen));
	assert_string_equal(seen.authorization, "Bearer tok-1");
	rc_testsrv_req_release(&seen);

	/* the token is cached for its scope: one request the next time */
	rc_testsrv_script(srv, steps + 2, 1);
	assert_int_equal(rc_oci_resolve(c, &img,
					"registry.example.com/app/web:v1",
					NULL),
			 0);
	rc_oci_image_release(&img);
	assert_int_equal(rc_testsrv_requests(srv), 1);

	/* the token never reaches a log line */
	lf = open_memstream(&logtext, &loglen);
	rc_log_set_stream(lf);
	RC_ERR("token %s", "tok-1");
	rc_log_set_stream(NULL);
	fclose(lf);
	assert_null(strstr(logtext, "tok-1"));
	free(logtext);
	rc_oci_close(c);
}

static void oci_registry_errors(void **state)
{
	rc_testsrv_step many = {
		.status = 429,
		.body = "{\"errors\":[{\"code\":\"TOOMANYREQUESTS\",\"message\":"
			"\"pull rate limit\"}]}"};
	rc_testsrv_step unknown = {
		.status = 404,
		.body = "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":"
			"\"manifest unknown\"}]}"};
	rc_testsrv_step wrong = {
		.status = 200, .body = manifest,
		.headers = "Docker-Content-Digest: " D};
	rc_testsrv_step schema1 = {
		.status = 200, .body = "{\"schemaVersion\":1}",
		.headers = "Content-Type: application/vnd.docker.distribution"
			   ".manifest.v1+prettyjws"};
	rc_oci *c = client(NULL, NULL);
	rc_oci_image img;

	RC_UNUSED(state);
	rc_testsrv_script(srv, &many, 1);
	assert_int_equal(rc_oci_resolve(c, &img, "registry.example.com/a:1",
					NULL),
			 RC_ERROR);
	rc_oci_image_release(&img);
	assert_non_null(strstr(rc_error_last()->message,
			       "registry registry.example.com: too many "
			       "requests for manifest '1' of repository a "));
	assert_non_null(strstr(rc_error_last()->message,
			       "TOOMANYREQUESTS: pull rate limit"));

	rc_testsrv_script(srv, &unknown, 1);
	assert_int_equal(rc_oci_resolve(c, &img, "registry.example.com/a/b:2",
					NULL),
			 RC_ENOTFOUND);
	rc_oci_image_release(&img);
	assert_non_null(strstr(rc_error_last()->message,
			       "manifest '2' of repository a/b is unknown "
			       "(HTTP 404, MANIFEST_UNKNOWN"));

	rc_testsrv_script(srv, &wrong, 1);
	assert_int_equal(rc_oci_resolve(c, &img, "registry.example.com/a/b:3",
					NULL),
			 RC_EINVALID);
	rc_oci_image_release(&img);
	assert_non_null(strstr(rc_error_last()->message,
			       "not the Docker-Content-Digest sent"));

	rc_testsrv_script(srv, &schema1, 1);
	assert_int_equal(rc_oci_resolve(c, &img, "registry.example.com/a/b:4",
					NULL),
			 RC_EUNSUPPORTED);
	rc_oci_image_release(&img);
	rc_oci_close(c);
}

int test_group_oci(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(oci_refs),
		cmocka_unit_test(oci_loopback),
		cmocka_unit_test(oci_challenges),
		cmocka_unit_test(oci_docker_config),
		cmocka_unit_test(oci_endpoints),
		cmocka_unit_test(oci_basic_auth),
		cmocka_unit_test(oci_bearer_auth),
		cmocka_unit_test(oci_registry_errors),
	};
	return cmocka_run_group_tests_name("oci", tests, setup, teardown);
}
