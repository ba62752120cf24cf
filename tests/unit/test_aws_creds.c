/* AWS credentials as the SDKs find them: the environment, the shared files
 * and their profiles, credential_process, the container endpoint and
 * IMDSv2 against the scripted HTTPS server on loopback, refresh ahead of
 * expiry, the error listing every source tried; region and endpoints. No
 * secret in any error message. */
#include "tests/unit/helpers.h"
#include "tests/support/testca.h"
#include "tests/support/testsrv.h"
#include "drivers/aws_creds.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "reconciler/base/rctime.h"

#include <pthread.h>

static rc_testca ca;
static rc_testsrv *srv;
static const char *const env_names[] = {
	"HOME",
	"PATH",
	"AWS_ACCESS_KEY_ID",
	"AWS_SECRET_ACCESS_KEY",
	"AWS_SESSION_TOKEN",
	"AWS_PROFILE",
	"AWS_SHARED_CREDENTIALS_FILE",
	"AWS_CONFIG_FILE",
	"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	"AWS_CONTAINER_CREDENTIALS_FULL_URI",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
	"AWS_EC2_METADATA_DISABLED",
	"AWS_EC2_METADATA_SERVICE_ENDPOINT",
	"AWS_REGION",
	"AWS_DEFAULT_REGION",
	"AWS_ENDPOINT_URL",
	"AWS_ENDPOINT_URL_ECS",
	"AWS_ENDPOINT_URL_SECRETS_MANAGER",
	"AWS_CA_BUNDLE",
};
static char *saved_env[RC_ARRAY_SIZE(env_names)];

static int setup(void **state)
{
	RC_UNUSED(state);
	for (size_t i = 0; i < RC_ARRAY_SIZE(env_names); i++) {
		const char *v = getenv(env_names[i]);

		saved_env[i] = v ? rc_strdup(v) : NULL;
	}
	unsetenv("https_proxy");
	unsetenv("HTTPS_PROXY");
	unsetenv("http_proxy");
	unsetenv("all_proxy");
	unsetenv("ALL_PROXY");
	if (rc_testca_make(&ca, "aws", "test") < 0)
		return -1;
	srv = rc_testsrv_start(&ca, false, false);
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

/* A fresh $HOME, no AWS variable but AWS_EC2_METADATA_DISABLED=true and
 * AWS_CA_BUNDLE (the test CA, for the scripted server). */
static char *fresh_env(void)
{
	char *dir = tmpdir_new();
	rc_buf p = RC_BUF_INIT;

	rc_secret_clear();
	rc_error_clear();
	for (size_t i = 2; i < RC_ARRAY_SIZE(env_names); i++)
		unsetenv(env_names[i]);
	setenv("HOME", dir, 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	rc_buf_printf(&p, "%s/ca.pem", dir);
	assert_int_equal(rc_testca_write(p.ptr, ca.ca_cert), 0);
	setenv("AWS_CA_BUNDLE", p.ptr, 1);
	rc_buf_release(&p);
	rc_testsrv_script(srv, NULL, 0);
	rc_testsrv_require_auth(srv, NULL);
	rc_testsrv_require_header(srv, NULL, NULL, NULL);
	return dir;
}

static const char *last_msg(void)
{
	const rc_error *e = rc_error_last();

	assert_non_null(e);
	assert_non_null(e->message);
	return e->message;
}

/* The last error mentions want and none of the secrets given. */
static void assert_error(const char *want, const char *const *secrets)
{
	const char *m = last_msg();

	if (!strstr(m, want))
		fail_msg("error '%s' lacks '%s'", m, want);
	for (size_t i = 0; secrets && secrets[i]; i++)
		if (strstr(m, secrets[i]))
			fail_msg("error '%s' shows secret '%s'", m,
				 secrets[i]);
}

static void get_ok(rc_aws_provider *p, rc_aws_creds *c)
{
	if (rc_aws_provider_get(p, c) < 0)
		fail_msg("get: %s", last_msg());
}

static rc_aws_provider *open_ok(const char *profile, const char *region)
{
	rc_aws_provider_opts o = {.profile = profile, .region = region};
	rc_aws_provider *p = NULL;

	if (rc_aws_provider_open(&p, &o) < 0)
		fail_msg("open: %s", last_msg());
	return p;
}

/* "{AccessKeyId..., Expiration: now + secs}" (new). */
static char *creds_json(const char *id, const char *secret, const char *tok,
			long secs)
{
	rc_buf b = RC_BUF_INIT;
	time_t t = time(NULL) + secs;
	struct tm tm;
	char when[64];

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	rc_buf_printf(&b,
		      "{\"Code\":\"Success\",\"Type\":\"AWS-HMAC\","
		      "\"AccessKeyId\":\"%s\",\"SecretAccessKey\":\"%s\","
		      "\"Token\":\"%s\",\"Expiration\":\"%s\"}",
		      id, secret, tok, when);
	return rc_buf_detach(&b);
}

static void aws_env(void **state)
{
	char *dir = fresh_env();
	rc_aws_provider *p;
	rc_aws_creds c;
	const char *const secrets[] = {"SECRETenv", NULL};
	rc_buf logged = RC_BUF_INIT;

	RC_UNUSED(state);
	setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "SECRETenv", 1);
	setenv("AWS_SESSION_TOKEN", "TOKENenv", 1);
	p = open_ok(NULL, NULL);
	get_ok(p, &c);
	assert_string_equal(c.access_key_id, "AKIAENV");
	assert_string_equal(c.secret_access_key, "SECRETenv");
	assert_string_equal(c.session_token, "TOKENenv");
	assert_string_equal(c.source, "environment");
	assert_int_equal(c.expiration, 0);
	/* registered with the redactor */
	rc_buf_puts(&logged, "key AKIAENV secret SECRETenv token TOKENenv");
	rc_redact(&logged);
	assert_null(strstr(logged.ptr, "SECRETenv"));
	assert_null(strstr(logged.ptr, "TOKENenv"));
	assert_null(strstr(logged.ptr, "AKIAENV"));
	rc_buf_release(&logged);
	rc_aws_creds_release(&c);
	rc_aws_provider_close(p);

	/* half a pair is an error, not a fall-through */
	unsetenv("AWS_ACCESS_KEY_ID");
	assert_int_equal(rc_aws_provider_open(&p, NULL), RC_EINVALID);
	assert_error("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID",
		     secrets);
	tmpdir_remove(dir);
}

static const char credentials_file[] =
	"# the team's keys\n"
	"[default]\n"
	"aws_access_key_id = AKIADEFAULT\n"
	"aws_secret_access_key=SECRETdefault\n"
	"\n"
	"  ; an indented comment\n"
	"[dev]\n"
	"  aws_access_key_id   =   AKIADEV  \n"
	"aws_secret_access_key = SECRETdev\n"
	"aws_session_token = TOKENdev\r\n"
	"[assumer]\n"
	"aws_access_key_id = AKIAASSUMER\n"
	"aws_secret_access_key = SECRETassumer\n"
	"[half]\n"
	"aws_access_key_id = AKIAHALF\n";

static const char config_file[] =
	"[default]\n"
	"region = eu-west-1\n"
	"[profile dev]\n"
	"region = us-east-2\n"
	"s3 =\n"
	"  max_concurrent_requests = 10\n"
	"[cfgonly]\n" /* no "profile ": not a profile in the config file */
	"aws_access_key_id = AKIAWRONG\n"
	"aws_secret_access_key = SECRETwrong\n"
	"[profile cfgonly]\n"
	"aws_access_key_id = AKIACFG\n"
	"aws_secret_access_key = SECRETcfg\n"
	"[profile assumer]\n"
	"role_arn = arn:aws:iam::123456789012:role/deploy\n"
	"source_profile = default\n"
	"[profile empty]\n"
	"region = eu-north-1\n"
	"[sso-session corp]\n"
	"sso_region = eu-west-1\n";

static void aws_shared_files(void **state)
{
	char *dir = fresh_env();
	rc_aws_provider *p;
	rc_aws_creds c;
	const char *const secrets[] = {"SECRETdefault", "SECRETdev",
				       "SECRETassumer", "SECRETcfg", NULL};
	rc_buf path = RC_BUF_INIT;

	RC_UNUSED(state);
	write_file(dir, ".aws/credentials", credentials_file);
	write_file(dir, ".aws/config", config_file);

	p = open_ok(NULL, NULL);
	get_ok(p, &c);
	assert_string_equal(c.access_key_id, "AKIADEFAULT");
	assert_string_equal(c.secret_access_key, "SECRETdefault");
	assert_null(c.session_token);
	assert_string_equal(c.source, "shared credentials file "
				      "~/.aws/credentials, profile \"default\"");
	assert_string_equal(rc_aws_provider_region(p), "eu-west-1");
	rc_aws_creds_release(&c);
	rc_aws_provider_close(p);

	/* AWS_PROFILE; whitespace and CRLF trimmed */
	setenv("AWS_PROFILE", "dev", 1);
	p = open_ok(NULL, NULL);
	get_ok(p, &c);
	assert_string_equal(c.access_key_id, "AKIADEV");
	assert_string_equal(c.session_token, "TOKENdev");
	assert_string_equal(rc_aws_provider_region(p), "us-east-2");
	rc_aws_creds_release(&c);
	rc_aws_provider_close(p);

	/* the explicit profile wins over AWS_PROFILE; [profile X] in the
	 * config file, never [X] */
	p = open_ok("cfgonly", NULL);
	get_ok(p, &c);
	assert_string_equal(c.access_key_id, "AKIACFG");
	assert_string_equal(c.source,
			    "shared config file ~/.aws/config, profile "
			    "\"cfgonly\"");
	rc_aws_creds_release(&c);
	rc_aws_provider_close(p);

	/* a named profile that does not exist */
	{
		rc_aws_provider_opts o = {.profile = "prod"};

		assert_int_equal(rc_aws_provider_open(&p, &o), RC_ENOTFOUND);
		assert_error("AWS profile \"prod\" not found in "
			     "~/.aws/credentials or ~/.aws/config "
			     "(profiles: default, dev, assumer, half",
			     secrets);
		/* AssumeRole: not supported yet, naming the profile */
		o.profile = "assumer";
		assert_int_equal(rc_aws_provider_open(&p, &o),
				 RC_EUNSUPPORTED);
		assert_error("AWS profile \"assumer\" in ~/.aws/config uses "
			     "role_arn (AssumeRole), which reconcile does "
			     "not support yet",
			     secrets);
		o.profile = "half";
		assert_int_equal(rc_aws_provider_open(&p, &o), RC_EINVALID);
		assert_error("AWS profile \"half\" in ~/.aws/credentials has "
			     "aws_access_key_id but no aws_secret_access_key",
			     secrets);
		/* a profile without credentials falls through the chain */
		o.profile = "empty";
		assert_int_equal(rc_aws_provider_open(&p, &o), RC_ENOTFOUND);
		assert_error("profile \"empty\" has neither aws_access_key_id "
			     "nor credential_process",
			     secrets);
	}

	/* AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE elsewhere */
	unsetenv("AWS_PROFILE");
	write_file(dir, "elsewhere/creds",
		   "[default]\naws_access_key_id=AKIAELSE\n"
		   "aws_secret_access_key=SECRETelse\n");
	write_file(dir, "elsewhere/conf", "[default]\nregion=ap-south-1\n");
	rc_buf_printf(&path, "%s/elsewhere/creds", dir);
	setenv("AWS_SHARED_CREDENTIALS_FILE", path.ptr, 1);
	rc_buf_clear(&path);
	rc_buf_printf(&path, "%s/elsewhere/conf", dir);
	setenv("AWS_CONFIG_FILE", path.ptr, 1);
	p = open_ok(NULL, NULL);
	get_ok(p, &c);
	assert_string_equal(c.access_key_id, "AKIAELSE");
	assert_string_equal(rc_aws_provider_region(p), "ap-south-1");
	rc_aws_creds_release(&c);
	rc_aws_provider_close(p);

	/* a broken file: its line, no value quoted */
	write_file(dir, "elsewhere/creds",
		   "[default]\naws_access_key_id=AKIAELSE\nSECRETbroken\n");
	assert_int_equal(rc_aws_provider_open(&p, NULL), RC_EINVALID);
	assert_error("~/elsewhere/creds:3: expected 'key = value'", NULL);
	assert_null(strstr(last_msg(), "SECRETbroken"));

	rc_buf_release(&path);
	tmpdir_remove(dir);
}

static void aws_precedence(void **state)
{
	char *dir = fresh_env();
	rc_aws_provider *p;
	rc_aws_creds c;
	rc_buf url = RC_BUF_INIT;
	char *body = creds_json("AKIACONT", "SECRETcont", "TOKENcont", 3600);
	rc_testsrv_step step = {.status = 200, .body = body};

	RC_UNUSED(state);
	rc_testsrv_script(srv, &step, 1);
	rc_buf_printf(&url, "%s/creds", rc_testsrv_url(srv));
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url.ptr, 1);
	write_file(dir, ".aws/credentials",
		   "[default]\naws_access_key_id=AKIAFILE\n"
		   "aws_secret_access_key=SECRETfile\n");
	setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "SECRETenv", 1);

	/* environment over the files over the container endpoint */
	p = open_ok(NULL, NULL);
	get_ok(p, &c);
	assert_string_equal(c.access_key_id, "AKIAENV");
	rc_aws_creds_release(&c);
	rc_aws_provider_close(p);

	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	p = open_ok(NULL, NULL);
	get_ok(p, &c);
	assert_string_equal(c.access_key_id, "AKIAFILE");
	rc_aws_creds_release(&c);
	rc_aws_provider_close(p);
	assert_int_equal(rc_testsrv_requests(srv), 0);

	write_file(dir, ".aws/credentials", "");
	p = open_ok(NULL, NULL);
	get_ok(p, &c);
	assert_string_equal(c.access_key_id, "AKIACONT");
	assert_int_equal(rc_testsrv_requests(srv), 1);
	rc_aws_creds_release(&c);
	rc_aws_provider_close(p);

	free(body);
	rc_buf_release(&url);
	tmpdir_remove(dir);
}

static void aws_container(void **state)
{
	char *dir = fresh_env();
	rc_aws_provider *p;
	rc_aws_creds c;
	rc_buf url = RC_BUF_INIT, tfile = RC_BUF_INIT;
	char *soon = creds_json("AKIAC1", "SECRETc1", "TOKENc1", 60);
	char *later = creds_json("AKIAC2", "SECRETc2", "TOKENc2", 3600);
	rc_testsrv_step steps[] = {{.status = 200, .body = soon},
				   {.status = 200, .body = later}};
	const char *const secrets[] = {"tok-A", "tok-B", "SECRETc1", NULL};
	rc_testsrv_req seen;

	RC_UNUSED(state);
	rc_testsrv_script(srv, steps, 2);
	rc_testsrv_require_auth(srv, "tok-A");
	rc_buf_printf(&url, "%s/v1/credentials?id=1", rc_testsrv_url(srv));
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url.ptr, 1);
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "tok-A", 1);

	p = open_ok(NULL, NULL);
	assert_int_equal(rc_aws_provider_fetches(p), 1);
	/* expires in a minute, within the refresh margin: fetched again */
	get_ok(p, &c);
	assert_string_equal(c.access_key_id, "AKIAC2");
	assert_string_equal(c.session_token, "TOKENc2");
	assert_true(c.expiration > time(NULL) + 3000);
	assert_non_null(strstr(c.source, "container credentials endpoint"));
	rc_aws_creds_release(&c);
	assert_int_equal(rc_aws_provider_fetches(p), 2);
	/* now good for an hour: no request */
	get_ok(p, &c);
	rc_aws_creds_release(&c);
	assert_int_equal(rc_aws_provider_fetches(p), 2);
	assert_int_equal(rc_testsrv_requests(srv), 2);
	assert_true(rc_testsrv_request(srv, 0, &seen));
	assert_string_equal(seen.method, "GET");
	assert_string_equal(seen.path, "/v1/credentials");
	assert_string_equal(seen.authorization, "tok-A");
	rc_testsrv_req_release(&seen);
	rc_aws_provider_close(p);

	/* the token file wins over the token and is read on every fetch */
	rc_buf_printf(&tfile, "%s/token", dir);
	write_file(dir, "token", "tok-B\n");
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tfile.ptr, 1);
	rc_testsrv_script(srv, steps, 2);
	rc_testsrv_require_auth(srv, "tok-B");
	p = open_ok(NULL, NULL);
	rc_aws_provider_close(p);

	/* a refused token: a clear error, the token not in it */
	rc_testsrv_require_auth(srv, "tok-C");
	assert_int_equal(rc_aws_provider_open(&p, NULL), RC_EAUTH);
	assert_error("answered 401 (the authorization token was refused",
		     secrets);
	assert_error(url.ptr, secrets);

	/* http:// to a host that is not loopback nor ECS/EKS: refused */
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI",
	       "http://example.com/creds", 1);
	assert_int_equal(rc_aws_provider_open(&p, NULL), RC_EINVALID);
	assert_error("'http://example.com/creds' is refused: http:// is "
		     "allowed only to a loopback address",
		     secrets);

	free(soon);
	free(later);
	rc_buf_release(&url);
	rc_buf_release(&tfile);
	tmpdir_remove(dir);
}

static void aws_imds(void **state)
{
	char *dir = fresh_env();
	rc_aws_provider *p;
	rc_aws_creds c;
	char *soon = creds_json("AKIAI1", "SECRETi1", "TOKENi1", 120);
	char *later = creds_json("AKIAI2", "SECRETi2", "TOKENi2", 21600);
	rc_testsrv_step steps[] = {
		{.status = 200, .body = "tok-imds-1"},
		{.status = 200, .body = "web-role\n"},
		{.status = 200, .body = soon},
		{.status = 200, .body = "web-role\n"},
		{.status = 200, .body = later},
	};
	rc_testsrv_req seen;

	RC_UNUSED(state);
	unsetenv("AWS_EC2_METADATA_DISABLED");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", rc_testsrv_url(srv), 1);
	rc_testsrv_script(srv, steps, RC_ARRAY_SIZE(steps));
	rc_testsrv_require_header(srv, "X-aws-ec2-metadata-token",
				  "tok-imds-1", "/latest/meta-data/");

	p = open_ok(NULL, NULL);
	assert_int_equal(rc_testsrv_requests(srv), 3);
	assert_true(rc_testsrv_request(srv, 0, &seen));
	assert_string_equal(seen.method, "PUT");
	assert_string_equal(seen.path, "/latest/api/token");
	rc_testsrv_req_release(&seen);
	assert_true(rc_testsrv_request(srv, 2, &seen));
	assert_string_equal(seen.method, "GET");
	assert_string_equal(seen.path,
			    "/latest/meta-data/iam/security-credentials/"
			    "web-role");
	rc_testsrv_req_release(&seen);

	/* two minutes left: refreshed, with the cached session token */
	get_ok(p, &c);
	assert_string_equal(c.access_key_id, "AKIAI2");
	assert_string_equal(c.secret_access_key, "SECRETi2");
	assert_non_null(strstr(c.source, "role \"web-role\""));
	rc_aws_creds_release(&c);
	assert_int_equal(rc_testsrv_requests(srv), 5);
	get_ok(p, &c);
	rc_aws_creds_release(&c);
	assert_int_equal(rc_testsrv_requests(srv), 5);
	assert_int_equal(rc_aws_provider_fetches(p), 2);
	rc_aws_provider_close(p);

	free(soon);
	free(later);
	tmpdir_remove(dir);
}

static void aws_imds_wrong_token(void **state)
{
	char *dir = fresh_env();
	rc_aws_provider *p;
	rc_testsrv_step step = {.status = 200, .body = "tok-stale"};
	const char *const secrets[] = {"tok-stale", "tok-right", NULL};

	RC_UNUSED(state);
	unsetenv("AWS_EC2_METADATA_DISABLED");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", rc_testsrv_url(srv), 1);
	rc_testsrv_script(srv, &step, 1);
	rc_testsrv_require_header(srv, "X-aws-ec2-metadata-token",
				  "tok-right", "/latest/meta-data/");
	assert_int_equal(rc_aws_provider_open(&p, NULL), RC_ENOTFOUND);
	assert_error("4. instance metadata (IMDSv2): GET ", secrets);
	assert_error("answered 401: the instance metadata service refused "
		     "its own session token (a new one was asked for once)",
		     secrets);
	/* PUT, GET 401, PUT again, GET 401 */
	assert_int_equal(rc_testsrv_requests(srv), 4);
	tmpdir_remove(dir);
}

static void aws_nothing_found(void **state)
{
	char *dir = fresh_env();
	rc_aws_provider *p;
	const char *m;

	RC_UNUSED(state);
	/* nothing listens on port 1 of loopback */
	unsetenv("AWS_EC2_METADATA_DISABLED");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1", 1);
	assert_int_equal(rc_aws_provider_open(&p, NULL), RC_ENOTFOUND);
	m = last_msg();
	assert_non_null(strstr(
		m, "no AWS credentials found (profile \"default\"); tried, "
		   "in order:\n"
		   "  1. environment: AWS_ACCESS_KEY_ID and "
		   "AWS_SECRET_ACCESS_KEY are not set\n"
		   "  2. shared files: no profile \"default\" in "
		   "~/.aws/credentials (missing) or ~/.aws/config (missing)\n"
		   "  3. container credentials endpoint: neither "
		   "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor "
		   "AWS_CONTAINER_CREDENTIALS_FULL_URI is set\n"
		   "  4. instance metadata (IMDSv2): no instance metadata "
		   "service at http://127.0.0.1:1"));

	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	assert_int_equal(rc_aws_provider_open(&p, NULL), RC_ENOTFOUND);
	assert_error("  4. instance metadata (IMDSv2): "
		     "AWS_EC2_METADATA_DISABLED is true",
		     NULL);

	/* IMDS at a plain-http address that is neither loopback nor the
	 * metadata service */
	unsetenv("AWS_EC2_METADATA_DISABLED");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://10.1.2.3", 1);
	assert_int_equal(rc_aws_provider_open(&p, NULL), RC_ENOTFOUND);
	assert_error("the instance metadata endpoint 'http://10.1.2.3' is "
		     "refused",
		     NULL);
	tmpdir_remove(dir);
}

static void aws_credential_process(void **state)
{
	char *dir = fresh_env();
	rc_aws_provider *p;
	rc_aws_creds c;
	rc_buf conf = RC_BUF_INIT, script = RC_BUF_INIT;
	char **argv = NULL;
	const char *const secrets[] = {"SECRETproc", NULL};

	RC_UNUSED(state);
	/* the SDKs' word splitting */
	assert_int_equal(rc_aws_split_command(
				 &argv, "a 'b c'  \"d \\\"e\\\" $x\" f\\ g"),
			 0);
	assert_string_equal(argv[0], "a");
	assert_string_equal(argv[1], "b c");
	assert_string_equal(argv[2], "d \"e\" $x");
	assert_string_equal(argv[3], "f g");
	assert_null(argv[4]);
	rc_aws_strv_free(argv);
	assert_int_equal(rc_aws_split_command(&argv, "a 'b"), RC_EINVALID);

	write_file(dir, "bin/creds.sh",
		   "#!/bin/sh\n"
		   "if [ \"$1\" = fail ]; then echo 'no session' >&2; "
		   "exit 3; fi\n"
		   "printf '{\"Version\": 1, \"AccessKeyId\": \"AK-%s\", "
		   "\"SecretAccessKey\": \"SECRETproc\", \"SessionToken\": "
		   "\"TOKENproc\"}' \"$1\"\n");
	rc_buf_printf(&script, "%s/bin/creds.sh", dir);
	chmod(script.ptr, 0755);
	rc_buf_printf(&conf,
		      "[profile tool]\ncredential_process = %s 'one arg'\n"
		      "[profile broken]\ncredential_process = %s fail\n",
		      script.ptr, script.ptr);
	write_file(dir, ".aws/config", conf.ptr);

	p = open_ok("tool", NULL);
	get_ok(p, &c);
	assert_string_equal(c.access_key_id, "AK-one arg");
	assert_string_equal(c.secret_access_key, "SECRETproc");
	assert_string_equal(c.session_token, "TOKENproc");
	assert_string_equal(c.source,
			    "credential_process of profile \"tool\"");
	assert_int_equal(c.expiration, 0);
	rc_aws_creds_release(&c);
	rc_aws_provider_close(p);

	{
		rc_aws_provider_opts o = {.profile = "broken"};

		assert_int_equal(rc_aws_provider_open(&p, &o), RC_EAUTH);
		assert_error("credential_process of profile \"broken\": ",
			     secrets);
		assert_error("exited with status 3: no session", secrets);
	}
	rc_buf_release(&conf);
	rc_buf_release(&script);
	tmpdir_remove(dir);
}

static void aws_region(void **state)
{
	char *dir = fresh_env();
	char *r = NULL;

	RC_UNUSED(state);
	write_file(dir, ".aws/config",
		   "[default]\nregion = eu-west-3\n"
		   "[profile other]\nregion = sa-east-1\n");
	assert_int_equal(rc_aws_region_resolve(&r, NULL, NULL), 0);
	assert_string_equal(r, "eu-west-3");
	free(r);
	assert_int_equal(rc_aws_region_resolve(&r, NULL, "other"), 0);
	assert_string_equal(r, "sa-east-1");
	free(r);
	setenv("AWS_DEFAULT_REGION", "us-west-1", 1);
	assert_int_equal(rc_aws_region_resolve(&r, NULL, NULL), 0);
	assert_string_equal(r, "us-west-1");
	free(r);
	setenv("AWS_REGION", "us-west-2", 1);
	assert_int_equal(rc_aws_region_resolve(&r, NULL, NULL), 0);
	assert_string_equal(r, "us-west-2");
	free(r);
	assert_int_equal(rc_aws_region_resolve(&r, "eu-central-1", NULL), 0);
	assert_string_equal(r, "eu-central-1");
	free(r);
	unsetenv("AWS_REGION");
	unsetenv("AWS_DEFAULT_REGION");
	write_file(dir, ".aws/config", "");
	assert_int_equal(rc_aws_region_resolve(&r, NULL, NULL), 0);
	assert_null(r);
	tmpdir_remove(dir);
}

static void aws_endpoints(void **state)
{
	char *dir = fresh_env();
	char *u = NULL;

	RC_UNUSED(state);
	assert_int_equal(rc_aws_endpoint_resolve(&u, "ECS", "ecs",
						 "eu-west-1"),
			 0);
	assert_string_equal(u, "https://ecs.eu-west-1.amazonaws.com");
	free(u);
	assert_int_equal(rc_aws_endpoint_resolve(&u, "Secrets Manager",
						 "secretsmanager",
						 "cn-north-1"),
			 0);
	assert_string_equal(u,
			    "https://secretsmanager.cn-north-1.amazonaws.com.cn");
	free(u);
	assert_int_equal(rc_aws_endpoint_resolve(&u, "ECS", "ecs", NULL),
			 RC_EINVALID);
	assert_error("no AWS region for ECS", NULL);
	assert_int_equal(rc_aws_endpoint_resolve(&u, "ECS", "ecs",
						 "eu-west-1.evil.com/"),
			 RC_EINVALID);

	setenv("AWS_ENDPOINT_URL", "https://aws.internal:8443/", 1);
	assert_int_equal(rc_aws_endpoint_resolve(&u, "ECS", "ecs", NULL), 0);
	assert_string_equal(u, "https://aws.internal:8443");
	free(u);
	setenv("AWS_ENDPOINT_URL_ECS", "http://127.0.0.1:4566", 1);
	setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://[::1]:4567/", 1);
	assert_int_equal(rc_aws_endpoint_resolve(&u, "ECS", "ecs", "x-1"), 0);
	assert_string_equal(u, "http://127.0.0.1:4566");
	free(u);
	assert_int_equal(rc_aws_endpoint_resolve(&u, "Secrets Manager",
						 "secretsmanager", NULL),
			 0);
	assert_string_equal(u, "http://[::1]:4567");
	free(u);

	/* plain http only to loopback */
	setenv("AWS_ENDPOINT_URL_ECS", "http://ecs.example.com", 1);
	assert_int_equal(rc_aws_endpoint_resolve(&u, "ECS", "ecs", NULL),
			 RC_EINVALID);
	assert_error("AWS_ENDPOINT_URL_ECS 'http://ecs.example.com' is "
		     "refused: http:// is allowed only to a loopback host",
		     NULL);
	setenv("AWS_ENDPOINT_URL_ECS", "ftp://127.0.0.1", 1);
	assert_int_equal(rc_aws_endpoint_resolve(&u, "ECS", "ecs", NULL),
			 RC_EINVALID);
	assert_false(rc_aws_url_allowed("http://127.0.0.1.example.com/"));
	assert_false(rc_aws_url_allowed("http://user@10.0.0.1/"));
	assert_true(rc_aws_url_allowed("http://localhost:9000/"));
	assert_true(rc_aws_url_allowed("https://ecs.example.com/"));

	/* AWS_CA_BUNDLE */
	{
		const char *ca_path = NULL;

		assert_int_equal(rc_aws_ca_bundle(&ca_path), 0);
		assert_non_null(ca_path);
		setenv("AWS_CA_BUNDLE", "/nonexistent/ca.pem", 1);
		assert_true(rc_aws_ca_bundle(&ca_path) < 0);
		assert_error("AWS_CA_BUNDLE '/nonexistent/ca.pem' cannot be "
			     "read",
			     NULL);
	}
	tmpdir_remove(dir);
}

struct getter {
	rc_aws_provider *p;
	int failures;
};

static void *getter_run(void *arg)
{
	struct getter *g = arg;

	for (int i = 0; i < 5; i++) {
		rc_aws_creds c;

		if (rc_aws_provider_get(g->p, &c) < 0 ||
		    strcmp(c.secret_access_key, "SECRETt"))
			g->failures++;
		rc_aws_creds_release(&c);
	}
	return NULL;
}

/* Threads share a provider whose credentials always need a refresh. */
static void aws_threads(void **state)
{
	char *dir = fresh_env();
	char *soon = creds_json("AKIAT", "SECRETt", "TOKENt", 30);
	rc_testsrv_step step = {.status = 200, .body = soon};
	rc_buf url = RC_BUF_INIT;
	pthread_t t[4];
	struct getter g[4];
	rc_aws_provider *p;

	RC_UNUSED(state);
	rc_testsrv_script(srv, &step, 1);
	rc_buf_printf(&url, "%s/creds", rc_testsrv_url(srv));
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url.ptr, 1);
	p = open_ok(NULL, NULL);
	for (int i = 0; i < 4; i++) {
		g[i].p = p;
		g[i].failures = 0;
		assert_int_equal(pthread_create(&t[i], NULL, getter_run, &g[i]),
				 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(g[i].failures, 0);
	}
	assert_int_equal(rc_aws_provider_fetches(p), 21);
	assert_int_equal(rc_testsrv_requests(srv), 21);
	rc_aws_provider_close(p);
	free(soon);
	rc_buf_release(&url);
	tmpdir_remove(dir);
}

int test_group_aws_creds(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(aws_env),
		cmocka_unit_test(aws_shared_files),
		cmocka_unit_test(aws_precedence),
		cmocka_unit_test(aws_container),
		cmocka_unit_test(aws_imds),
		cmocka_unit_test(aws_imds_wrong_token),
		cmocka_unit_test(aws_nothing_found),
		cmocka_unit_test(aws_credential_process),
		cmocka_unit_test(aws_region),
		cmocka_unit_test(aws_endpoints),
		cmocka_unit_test(aws_threads),
	};
	return cmocka_run_group_tests_name("aws_creds", tests, setup,
					   teardown);
}
