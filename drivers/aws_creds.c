/*
 * AWS credentials, region and endpoints (see drivers/aws_creds.h and
 * docs/drivers/aws-credentials.md).
 *
 * Each source of the chain is a function that returns 0 with credentials,
 * NOT_APPLIED after appending to `tried` why it did not apply, or a
 * negative code when it applied and failed. The provider remembers which
 * source answered and asks that one again to refresh.
 */
#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "drivers/proc.h"
#include "reconciler/base/rctime.h"
#include "drivers/http.h"
#include "drivers/aws_creds.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include <jansson.h>


#define NOT_APPLIED 1
#define FILE_MAX ((size_t)1 << 20)
#define PROCESS_OUT_MAX ((size_t)1 << 20)
#define PROCESS_ERR_KEEP 2048
#define IMDS_TOKEN_PATH "/latest/api/token"
#define IMDS_ROLES_PATH "/latest/meta-data/iam/security-credentials/"
#define IMDS_TOKEN_HEADER "X-aws-ec2-metadata-token"

/* ----------------------------------------------------------------- small */

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void free_secret(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

static const char *env_nonempty(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* A copy of s registered with the redactor (NULL stays NULL). */
static char *dup_secret(const char *s)
{
	if (!s)
		return NULL;
	rc_secret_register(s);
	return rc_strdup(s);
}

void rc_aws_creds_release(rc_aws_creds *c)
{
	if (!c)
		return;
	free_secret(c->access_key_id);
	free_secret(c->secret_access_key);
	free_secret(c->session_token);
	free(c->source);
	memset(c, 0, sizeof(*c));
}

static void creds_copy(rc_aws_creds *dst, const rc_aws_creds *src)
{
	dst->access_key_id = rc_strdup(src->access_key_id);
	dst->secret_access_key = rc_strdup(src->secret_access_key);
	dst->session_token =
		src->session_token ? rc_strdup(src->session_token) : NULL;
	dst->expiration = src->expiration;
	dst->source = rc_strdup(src->source);
}

void rc_aws_strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* ------------------------------------------------------------------ URLs */

struct url_host {
	bool https;
	char host[256]; /* without brackets */
};

static bool url_parse(const char *url, struct url_host *out)
{
	const char *p, *end, *at, *h;
	size_t n;

	memset(out, 0, sizeof(*out));
	if (!strncasecmp(url, "https://", 8)) {
		out->https = true;
		p = url + 8;
	} else if (!strncasecmp(url, "http://", 7)) {
		p = url + 7;
	} else {
		return false;
	}
	end = p + strcspn(p, "/?#");
	at = memchr(p, '@', (size_t)(end - p));
	h = at ? at + 1 : p;
	if (*h == '[') {
		const char *close = memchr(h, ']', (size_t)(end - h));

		if (!close)
			return false;
		h++;
		n = (size_t)(close - h);
	} else {
		const char *colon = memchr(h, ':', (size_t)(end - h));

		n = (size_t)((colon ? colon : end) - h);
	}
	if (!n || n >= sizeof(out->host))
		return false;
	memcpy(out->host, h, n);
	out->host[n] = '\0';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)out->host[i];

		if (isspace(c) || c < 0x20)
			return false;
	}
	return true;
}

static bool host_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (!strcasecmp(host, "localhost"))
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

/* host is one of the addresses given (IPv6 compared as addresses). */
static bool host_is_one_of(const char *host, const char *const *list)
{
	struct in6_addr a, b;
	bool v6 = inet_pton(AF_INET6, host, &a) == 1;

	for (size_t i = 0; list[i]; i++) {
		if (!strcmp(host, list[i]))
			return true;
		if (v6 && inet_pton(AF_INET6, list[i], &b) == 1 &&
		    !memcmp(&a, &b, sizeof(a)))
			return true;
	}
	return false;
}

bool rc_aws_url_allowed(const char *url)
{
	struct url_host u;

	if (!url || !url_parse(url, &u))
		return false;
	return u.https || host_is_loopback(u.host);
}

/* The hosts the SDKs let a container endpoint use over plain http. */
static const char *const container_hosts[] = {
	"169.254.170.2", "169.254.170.23", "fd00:ec2::23", NULL};
static const char *const imds_hosts[] = {"169.254.169.254", "fd00:ec2::254",
					 NULL};

/* --------------------------------------------------------- shared files */

struct ini_kv {
	char *key, *value;
};

struct ini_sec {
	char *name; /* the profile's name; NULL: a section that is no profile */
	struct ini_kv *kv;
	size_t n, cap;
};

struct ini {
	char *path, *shown; /* shown: "~/.aws/config" */
	bool found;
	struct ini_sec *secs;
	size_t n, cap;
};

static void ini_release(struct ini *f)
{
	for (size_t i = 0; i < f->n; i++) {
		for (size_t j = 0; j < f->secs[i].n; j++) {
			free(f->secs[i].kv[j].key);
			free_secret(f->secs[i].kv[j].value);
		}
		free(f->secs[i].kv);
		free(f->secs[i].name);
	}
	free(f->secs);
	free(f->path);
	free(f->shown);
	memset(f, 0, sizeof(*f));
}

static char *trimmed_dup(const char *s, size_t n)
{
	while (n && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	return rc_strndup(s, n);
}

/*
 * An INI file as the SDKs read them: "[section]" lines, "key = value"
 * lines, whole-line comments starting with '#' or ';', blank lines.
 * Indented lines after a key are its sub-settings (s3 =, then "  max_... =
 * ...") and are skipped. In the config file a profile's section is
 * "[profile NAME]" or "[default]"; other sections (sso-session, services)
 * are not profiles. In the credentials file a section is the profile's
 * name as is.
 */
static int ini_parse(struct ini *f, const char *text, bool config)
{
	const char *p = text;
	int line = 0;
	struct ini_sec *cur = NULL;
	bool in_sec = false, had_key = false;

	while (*p) {
		size_t n = strcspn(p, "\n");
		const char *l = p, *eq;
		size_t ln = n;
		bool indented = n && (p[0] == ' ' || p[0] == '\t');

		line++;
		p += n + (p[n] == '\n');
		while (ln && isspace((unsigned char)*l)) {
			l++;
			ln--;
		}
		while (ln && isspace((unsigned char)l[ln - 1]))
			ln--;
		if (!ln || *l == '#' || *l == ';')
			continue;
		if (*l == '[') {
			char *name;

			if (l[ln - 1] != ']')
				return rc_error_set(
					RC_EINVALID, RC_ECLASS_CONFIG,
					"%s:%d: a section header must end "
					"with ']'",
					f->shown, line);
			name = trimmed_dup(l + 1, ln - 2);
			RC_GROW(f->secs, f->cap, f->n + 1);
			cur = &f->secs[f->n++];
			memset(cur, 0, sizeof(*cur));
			if (!config) {
				cur->name = name;
			} else if (!strcmp(name, "default")) {
				cur->name = name;
			} else if (!strncmp(name, "profile", 7) &&
				   (name[7] == ' ' || name[7] == '\t')) {
				cur->name = trimmed_dup(name + 8,
							strlen(name + 8));
				free(name);
			} else {
				free(name); /* not a profile */
			}
			in_sec = true;
			had_key = false;
			continue;
		}
		if (indented && had_key)
			continue; /* a sub-setting */
		eq = memchr(l, '=', ln);
		if (!eq)
			return rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
					    "%s:%d: expected 'key = value' or "
					    "'[section]'",
					    f->shown, line);
		if (!in_sec)
			return rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
					    "%s:%d: a setting before the first "
					    "[section]",
					    f->shown, line);
		had_key = true;
		RC_GROW(cur->kv, cur->cap, cur->n + 1);
		cur->kv[cur->n].key = trimmed_dup(l, (size_t)(eq - l));
		cur->kv[cur->n].value =
			trimmed_dup(eq + 1, ln - (size_t)(eq + 1 - l));
		for (char *k = cur->kv[cur->n].key; *k; k++)
			*k = (char)tolower((unsigned char)*k);
		cur->n++;
	}
	return 0;
}

static int ini_load(struct ini *f, const char *env, const char *rel,
		    bool config)
{
	const char *path = env_nonempty(env);
	rc_buf b = RC_BUF_INIT;
	int rc;

	memset(f, 0, sizeof(*f));
	if (path) {
		f->path = rc_strdup(path);
	} else {
		const char *home = getenv("HOME");

		rc_buf_printf(&b, "%s/%s", home && *home ? home : ".", rel);
		f->path = rc_buf_detach(&b);
	}
	f->shown = rc_local_display_path(f->path);
	rc = rc_local_read_file(f->path, FILE_MAX, &b);
	if (rc == RC_ENOTFOUND) {
		rc_error_clear(); /* no file: no profiles from it */
		rc = 0;
	} else if (rc == 0) {
		f->found = true;
		rc = ini_parse(f, b.ptr, config);
	}
	explicit_bzero(b.ptr, b.len);
	rc_buf_release(&b);
	return rc;
}

static bool ini_has(const struct ini *f, const char *profile)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->secs[i].name && !strcmp(f->secs[i].name, profile))
			return true;
	return false;
}

/* The value of key in profile (the last one wins), or NULL; borrowed. */
static const char *ini_get(const struct ini *f, const char *profile,
			   const char *key)
{
	const char *v = NULL;

	for (size_t i = 0; i < f->n; i++) {
		if (!f->secs[i].name || strcmp(f->secs[i].name, profile))
			continue;
		for (size_t j = 0; j < f->secs[i].n; j++)
			if (!strcmp(f->secs[i].kv[j].key, key))
				v = f->secs[i].kv[j].value;
	}
	return v && *v ? v : NULL;
}

/* Whether the ", "-separated list has name. */
static bool list_has(const rc_buf *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list->ptr; *p;) {
		size_t len = strcspn(p, ",");

		if (len == n && !strncmp(p, name, n))
			return true;
		p += len;
		while (*p == ',' || *p == ' ')
			p++;
	}
	return false;
}

/* Appends the profiles of f not yet in out. */
static void ini_list(const struct ini *f, rc_buf *out)
{
	for (size_t i = 0; i < f->n; i++) {
		if (f->secs[i].name && !list_has(out, f->secs[i].name))
			rc_buf_printf(out, "%s%s", out->len ? ", " : "",
				      f->secs[i].name);
	}
}

static const char *profile_name(const char *hint, bool *explicit_)
{
	const char *p = hint && *hint ? hint : env_nonempty("AWS_PROFILE");

	*explicit_ = p != NULL;
	return p ? p : "default";
}

/* ---------------------------------------------------------------- region */

int rc_aws_region_resolve(char **out, const char *hint, const char *profile)
{
	const char *v;
	struct ini conf;
	bool explicit_;
	int rc;

	*out = NULL;
	if (hint && *hint)
		v = hint;
	else if (!(v = env_nonempty("AWS_REGION")))
		v = env_nonempty("AWS_DEFAULT_REGION");
	if (v) {
		*out = rc_strdup(v);
		return 0;
	}
	profile = profile_name(profile, &explicit_);
	rc = ini_load(&conf, "AWS_CONFIG_FILE", ".aws/config", true);
	if (rc == 0 && (v = ini_get(&conf, profile, "region")))
		*out = rc_strdup(v);
	ini_release(&conf);
	return rc;
}

/* ------------------------------------------------------------- endpoints */

int rc_aws_endpoint_resolve(char **out, const char *service_id,
			    const char *endpoint_prefix, const char *region)
{
	rc_buf name = RC_BUF_INIT_MAX(256), url = RC_BUF_INIT_MAX(4096);
	const char *v, *from;
	int rc = 0;

	*out = NULL;
	rc_buf_puts(&name, "AWS_ENDPOINT_URL_");
	for (const char *s = service_id; *s; s++)
		rc_buf_putc(&name, (*s == ' ' || *s == '-')
					   ? '_'
					   : (char)toupper((unsigned char)*s));
	from = name.ptr;
	if (!(v = env_nonempty(name.ptr))) {
		from = "AWS_ENDPOINT_URL";
		v = env_nonempty(from);
	}
	if (v) {
		struct url_host u;

		if (!url_parse(v, &u)) {
			rc = rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
					  "%s '%s' is not an http or https "
					  "URL",
					  from, v);
			goto done;
		}
		if (!u.https && !host_is_loopback(u.host)) {
			rc = rc_error_set(
				RC_EINVALID, RC_ECLASS_CONFIG,
				"%s '%s' is refused: http:// is allowed only "
				"to a loopback host (127.0.0.1, ::1, "
				"localhost); use https://",
				from, v);
			goto done;
		}
		rc_buf_puts(&url, v);
		while (url.len > 8 && url.ptr[url.len - 1] == '/')
			rc_buf_truncate(&url, url.len - 1);
		*out = rc_buf_detach(&url);
		goto done;
	}
	if (!region || !*region) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				  "no AWS region for %s: set target.region, "
				  "AWS_REGION or the profile's region in "
				  "~/.aws/config (or %s)",
				  service_id, name.ptr);
		goto done;
	}
	for (const char *s = region; *s; s++) {
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) &&
		    *s != '-') {
			rc = rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
					  "'%s' is not an AWS region name "
					  "(like eu-west-1)",
					  region);
			goto done;
		}
	}
	rc_buf_printf(&url, "https://%s.%s.amazonaws.com%s", endpoint_prefix,
		      region, strncmp(region, "cn-", 3) ? "" : ".cn");
	*out = rc_buf_detach(&url);
done:
	rc_buf_release(&name);
	rc_buf_release(&url);
	return rc;
}

int rc_aws_ca_bundle(const char **out)
{
	const char *v = env_nonempty("AWS_CA_BUNDLE");

	*out = NULL;
	if (!v)
		return 0;
	if (access(v, R_OK) < 0)
		return rc_error_set_os("AWS_CA_BUNDLE '%s' cannot be read", v);
	*out = v;
	return 0;
}

/* --------------------------------------------------------------- provider */

typedef enum {
	SRC_NONE = 0,
	SRC_ENV,
	SRC_SHARED,
	SRC_PROCESS,
	SRC_CONTAINER,
	SRC_IMDS
} src_kind;

struct rc_aws_provider {
	char *profile;
	bool profile_explicit;
	char *region;
	long ahead_s, md_timeout_ms, proc_timeout_ms;

	pthread_mutex_t lock;
	src_kind kind;
	char *process; /* credential_process of the profile */
	rc_aws_creds cur;
	bool have;
	int fetches;
	char *imds_token;
	long long imds_token_until; /* monotonic ms */
};

/* Parses credentials JSON (the container endpoint's, IMDS's, a
 * credential_process's). token_key: "Token" or "SessionToken". */
static int creds_from_json(rc_aws_creds *out, const char *text,
			   const char *from, const char *token_key,
			   bool process)
{
	json_error_t jerr;
	json_t *root = json_loads(text, 0, &jerr);
	const char *id = NULL, *secret = NULL, *token = NULL, *exp = NULL,
		   *code = NULL;
	json_int_t version = 0;
	int rc = 0;

	if (!root)
		return rc_error_set(RC_EINVALID, RC_ECLASS_JSON,
				    "%s: the reply is not JSON (line %d, "
				    "column %d)",
				    from, jerr.line, jerr.column);
	if (process &&
	    (json_unpack_ex(root, &jerr, 0, "{s:I}", "Version", &version) ||
	     version != 1)) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_JSON,
				  "%s: the output has no \"Version\": 1",
				  from);
		goto done;
	}
	if (json_unpack_ex(root, &jerr, 0, "{s:s, s:s, s?s, s?s, s?s}",
			   "AccessKeyId", &id, "SecretAccessKey", &secret,
			   token_key, &token, "Expiration", &exp, "Code",
			   &code)) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_JSON,
				  "%s: not credentials: %s (expected "
				  "AccessKeyId, SecretAccessKey, %s, "
				  "Expiration)",
				  from, jerr.text, token_key);
		goto done;
	}
	/* registered before anything else can print them */
	rc_secret_register(id);
	rc_secret_register(secret);
	if (token)
		rc_secret_register(token);
	if (code && strcmp(code, "Success")) {
		rc = rc_error_set(RC_EAUTH, RC_ECLASS_PLATFORM,
				  "%s: the credentials' Code is '%s', not "
				  "'Success'",
				  from, code);
		goto done;
	}
	if (!*id || !*secret) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_JSON,
				  "%s: AccessKeyId or SecretAccessKey is "
				  "empty",
				  from);
		goto done;
	}
	memset(out, 0, sizeof(*out));
	if (exp) {
		struct timespec ts;

		if (!rc_time_parse(exp, &ts)) {
			rc = rc_error_set(RC_EINVALID, RC_ECLASS_JSON,
					  "%s: Expiration '%s' is not an RFC "
					  "3339 time",
					  from, exp);
			goto done;
		}
		out->expiration = ts.tv_sec ? ts.tv_sec : 1;
	}
	out->access_key_id = rc_strdup(id);
	out->secret_access_key = rc_strdup(secret);
	out->session_token = token && *token ? rc_strdup(token) : NULL;
done:
	json_decref(root);
	return rc;
}

/* 1. the environment */
static int from_env(rc_aws_creds *out, rc_buf *tried)
{
	const char *id = env_nonempty("AWS_ACCESS_KEY_ID");
	const char *secret = env_nonempty("AWS_SECRET_ACCESS_KEY");

	if (!id && !secret) {
		rc_buf_puts(tried, "environment: AWS_ACCESS_KEY_ID and "
				   "AWS_SECRET_ACCESS_KEY are not set");
		return NOT_APPLIED;
	}
	if (!id || !secret)
		return rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				    "%s is set but %s is not: set both, or "
				    "neither to use another source",
				    id ? "AWS_ACCESS_KEY_ID"
				       : "AWS_SECRET_ACCESS_KEY",
				    id ? "AWS_SECRET_ACCESS_KEY"
				       : "AWS_ACCESS_KEY_ID");
	out->access_key_id = dup_secret(id);
	out->secret_access_key = dup_secret(secret);
	out->session_token = dup_secret(env_nonempty("AWS_SESSION_TOKEN"));
	out->source = rc_strdup("environment");
	return 0;
}

/* ------------------------------------------------------ credential_process */

int rc_aws_split_command(char ***out, const char *command)
{
	char **v = NULL;
	size_t n = 0, cap = 0;
	rc_buf w = RC_BUF_INIT_MAX(1 << 16);
	const char *p = command;
	bool in_word = false;

	*out = NULL;
	for (;;) {
		char c = *p;

		if (!c || c == ' ' || c == '\t' || c == '\n') {
			if (in_word) {
				RC_GROW(v, cap, n + 2);
				v[n++] = rc_buf_detach(&w);
				in_word = false;
			}
			if (!c)
				break;
			p++;
			continue;
		}
		in_word = true;
		if (c == '\\') {
			if (p[1] == '\n') {
				p += 2;
			} else if (p[1]) {
				rc_buf_putc(&w, p[1]);
				p += 2;
			} else {
				p++;
			}
		} else if (c == '\'') {
			const char *e = strchr(p + 1, '\'');

			if (!e)
				goto unclosed;
			rc_buf_put(&w, p + 1, (size_t)(e - p - 1));
			p = e + 1;
		} else if (c == '"') {
			p++;
			while (*p && *p != '"') {
				if (*p == '\\' && p[1] &&
				    strchr("\"\\$`\n", p[1])) {
					if (p[1] != '\n')
						rc_buf_putc(&w, p[1]);
					p += 2;
				} else {
					rc_buf_putc(&w, *p++);
				}
			}
			if (!*p)
				goto unclosed;
			p++;
		} else {
			rc_buf_putc(&w, c);
			p++;
		}
	}
	rc_buf_release(&w);
	if (!n) {
		free(v);
		return rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				    "credential_process is empty");
	}
	v[n] = NULL;
	*out = v;
	return 0;
unclosed:
	rc_buf_release(&w);
	if (v)
		v[n] = NULL;
	rc_aws_strv_free(v);
	return rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
			    "credential_process has an unclosed quote");
}

static char *find_program(const char *prog)
{
	const char *path = getenv("PATH");
	rc_buf b = RC_BUF_INIT_MAX(PATH_MAX * 2);

	if (strchr(prog, '/'))
		return rc_strdup(prog);
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");

		rc_buf_clear(&b);
		rc_buf_printf(&b, "%.*s/%s", (int)n, n ? path : ".", prog);
		if (access(b.ptr, X_OK) == 0)
			return rc_buf_detach(&b);
		path += n + (path[n] == ':');
	}
	rc_buf_release(&b);
	return NULL;
}

static int fetch_process(rc_aws_provider *p, rc_aws_creds *out)
{
	char **argv = NULL, *prog = NULL;
	rc_buf o = RC_BUF_INIT_MAX(PROCESS_OUT_MAX), e = RC_BUF_INIT_MAX(1 << 16);
	rc_buf from = RC_BUF_INIT_MAX(4096);
	int rc, st = 0;
	bool timed_out = false;

	rc_buf_printf(&from, "credential_process of profile \"%s\"",
		      p->profile);
	if ((rc = rc_aws_split_command(&argv, p->process)) < 0) {
		rc_error_prefix("profile \"%s\"", p->profile);
		goto done;
	}
	if (!(prog = find_program(argv[0]))) {
		rc = rc_error_set(RC_ENOTFOUND, RC_ECLASS_CONFIG,
				  "%s: '%s' not found in PATH", from.ptr,
				  argv[0]);
		goto done;
	}
	if ((rc = rc_local_run_output(prog, argv, NULL, p->proc_timeout_ms,
				      PROCESS_ERR_KEEP, &o, &e, &st,
				      &timed_out)) < 0)
		goto done;
	rc_redact(&e);
	rc_local_trim(&e);
	if (timed_out) {
		rc = rc_error_set(RC_ETIMEOUT, RC_ECLASS_CONFIG,
				  "%s: '%s' did not finish within %ld ms",
				  from.ptr, argv[0], p->proc_timeout_ms);
		goto done;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		rc = rc_error_set(RC_EAUTH, RC_ECLASS_CONFIG,
				  "%s: '%s' exited with status %d%s%s",
				  from.ptr, argv[0],
				  WIFEXITED(st) ? WEXITSTATUS(st) : -1,
				  e.len ? ": " : "", e.ptr);
		goto done;
	}
	if ((rc = creds_from_json(out, o.ptr, from.ptr, "SessionToken",
				  true)) < 0)
		goto done;
	out->source = rc_buf_detach(&from);
done:
	explicit_bzero(o.ptr, o.len);
	rc_buf_release(&o);
	rc_buf_release(&e);
	rc_buf_release(&from);
	free(prog);
	rc_aws_strv_free(argv);
	return rc;
}

/* 2. the shared files */
static int from_shared(rc_aws_provider *p, rc_aws_creds *out, rc_buf *tried)
{
	struct ini cred, conf;
	const char *prof = p->profile, *v, *id, *secret;
	const struct ini *where;
	int rc;

	memset(&conf, 0, sizeof(conf));
	if ((rc = ini_load(&cred, "AWS_SHARED_CREDENTIALS_FILE",
			   ".aws/credentials", false)) < 0 ||
	    (rc = ini_load(&conf, "AWS_CONFIG_FILE", ".aws/config", true)) < 0)
		goto done;
	if (!ini_has(&cred, prof) && !ini_has(&conf, prof)) {
		rc_buf lists = RC_BUF_INIT_MAX(4096);

		ini_list(&cred, &lists);
		ini_list(&conf, &lists);
		if (p->profile_explicit) {
			rc = rc_error_set(
				RC_ENOTFOUND, RC_ECLASS_CONFIG,
				"AWS profile \"%s\" not found in %s%s or %s%s "
				"(profiles: %s)",
				prof, cred.shown,
				cred.found ? "" : " (missing)", conf.shown,
				conf.found ? "" : " (missing)",
				lists.len ? lists.ptr : "none");
		} else {
			rc_buf_printf(tried,
				      "shared files: no profile \"%s\" in "
				      "%s%s or %s%s",
				      prof, cred.shown,
				      cred.found ? "" : " (missing)",
				      conf.shown,
				      conf.found ? "" : " (missing)");
			rc = NOT_APPLIED;
		}
		rc_buf_release(&lists);
		goto done;
	}
	/* what reconcile does not do yet, in the SDKs' order */
	{
		static const char *const unsupported[][2] = {
			{"role_arn", "role_arn (AssumeRole)"},
			{"web_identity_token_file", "web_identity_token_file"},
			{"sso_session", "SSO (sso_session)"},
			{"sso_start_url", "SSO (sso_start_url)"},
		};

		for (size_t i = 0; i < RC_ARRAY_SIZE(unsupported); i++) {
			where = ini_get(&cred, prof, unsupported[i][0]) ? &cred
				: ini_get(&conf, prof, unsupported[i][0])
					? &conf
					: NULL;
			if (where) {
				rc = rc_error_set(
					RC_EUNSUPPORTED, RC_ECLASS_CONFIG,
					"AWS profile \"%s\" in %s uses %s, "
					"which reconcile does not support yet: "
					"give the profile static keys or a "
					"credential_process, or set "
					"AWS_ACCESS_KEY_ID/"
					"AWS_SECRET_ACCESS_KEY",
					prof, where->shown, unsupported[i][1]);
				goto done;
			}
		}
	}
	/* static keys in the credentials file, then credential_process,
	 * then static keys in the config file (botocore's order) */
	for (int pass = 0; pass < 3; pass++) {
		if (pass == 1) {
			if (!(v = ini_get(&cred, prof, "credential_process")) &&
			    !(v = ini_get(&conf, prof, "credential_process")))
				continue;
			p->process = rc_strdup(v);
			p->kind = SRC_PROCESS;
			rc = fetch_process(p, out);
			goto done;
		}
		where = pass == 0 ? &cred : &conf;
		id = ini_get(where, prof, "aws_access_key_id");
		secret = ini_get(where, prof, "aws_secret_access_key");
		if (!id && !secret)
			continue;
		if (!id || !secret) {
			rc = rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
					  "AWS profile \"%s\" in %s has %s "
					  "but no %s",
					  prof, where->shown,
					  id ? "aws_access_key_id"
					     : "aws_secret_access_key",
					  id ? "aws_secret_access_key"
					     : "aws_access_key_id");
			goto done;
		}
		out->access_key_id = dup_secret(id);
		out->secret_access_key = dup_secret(secret);
		out->session_token = dup_secret(
			ini_get(where, prof, "aws_session_token"));
		{
			rc_buf s = RC_BUF_INIT_MAX(4096);

			rc_buf_printf(&s, "shared %s file %s, profile \"%s\"",
				      pass == 0 ? "credentials" : "config",
				      where->shown, prof);
			out->source = rc_buf_detach(&s);
		}
		p->kind = SRC_SHARED;
		rc = 0;
		goto done;
	}
	rc_buf_printf(tried,
		      "shared files: profile \"%s\" has neither "
		      "aws_access_key_id nor credential_process in %s or %s",
		      prof, cred.shown, conf.shown);
	rc = NOT_APPLIED;
done:
	ini_release(&cred);
	ini_release(&conf);
	return rc;
}

/* ------------------------------------------------------ metadata services */

/* One request to a metadata endpoint: 0 with *status and body filled
 * when a reply came. */
static int md_request(rc_aws_provider *p, const char *url, const char *method,
		      const char *const *headers, int retries, long *status,
		      rc_buf *body)
{
	rc_http_opts o;
	rc_http_req req;
	rc_http_resp resp;
	rc_http *h = NULL;
	const char *ca = NULL;
	int rc;

	if ((rc = rc_aws_ca_bundle(&ca)) < 0)
		return rc;
	rc_http_opts_init(&o);
	o.base_url = url;
	o.ca_file = ca;
	o.proxy = ""; /* never through a proxy: the endpoint is local */
	o.accept = NULL;
	o.connect_timeout_ms = RC_AWS_METADATA_CONNECT_TIMEOUT_MS;
	if (o.connect_timeout_ms > p->md_timeout_ms)
		o.connect_timeout_ms = p->md_timeout_ms;
	o.timeout_ms = p->md_timeout_ms;
	o.max_retries = retries;
	o.backoff_base_ms = 100;
	o.max_body = 1 << 20;
	if ((rc = rc_http_open(&h, &o)) < 0)
		return rc;
	memset(&req, 0, sizeof(req));
	req.method = method;
	req.url = url;
	req.path = "";
	req.headers = headers;
	req.idempotent = true;
	rc_http_resp_init(&resp);
	rc = rc_http_do(h, &req, &resp);
	if (rc == 0) {
		*status = resp.status;
		rc_buf_clear(body);
		rc_buf_put(body, resp.body.ptr, resp.body.len);
	}
	explicit_bzero(resp.body.ptr, resp.body.len);
	rc_http_resp_release(&resp);
	rc_http_close(h);
	return rc;
}

/* The container endpoint's URL (new) and authorization (new or NULL), or
 * NOT_APPLIED. */
static int container_target(char **url, char **auth, rc_buf *tried)
{
	const char *rel = env_nonempty("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = env_nonempty("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *tfile =
		env_nonempty("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *tok = env_nonempty("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	rc_buf b = RC_BUF_INIT_MAX(8192);
	int rc;

	*url = *auth = NULL;
	if (!rel && !full) {
		if (tried)
			rc_buf_puts(tried,
				    "container credentials endpoint: neither "
				    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI "
				    "nor AWS_CONTAINER_CREDENTIALS_FULL_URI is "
				    "set");
		return NOT_APPLIED;
	}
	if (rel) {
		rc_buf_printf(&b, "%s%s%s", RC_AWS_CONTAINER_HOST,
			      rel[0] == '/' ? "" : "/", rel);
	} else {
		struct url_host u;

		if (!url_parse(full, &u))
			return rc_error_set(
				RC_EINVALID, RC_ECLASS_CONFIG,
				"AWS_CONTAINER_CREDENTIALS_FULL_URI '%s' is "
				"not an http or https URL",
				full);
		if (!u.https && !host_is_loopback(u.host) &&
		    !host_is_one_of(u.host, container_hosts))
			return rc_error_set(
				RC_EINVALID, RC_ECLASS_CONFIG,
				"AWS_CONTAINER_CREDENTIALS_FULL_URI '%s' is "
				"refused: http:// is allowed only to a "
				"loopback address or the ECS and EKS "
				"container hosts (169.254.170.2, "
				"169.254.170.23, fd00:ec2::23); use https://",
				full);
		rc_buf_puts(&b, full);
	}
	*url = rc_buf_detach(&b);
	if (tfile) {
		/* read on every fetch: the agent rotates it */
		rc = rc_local_read_file(tfile, 16384, &b);
		if (rc == RC_ENOTFOUND)
			rc = rc_error_set(RC_ENOTFOUND, RC_ECLASS_CONFIG,
					  "AWS_CONTAINER_AUTHORIZATION_TOKEN_"
					  "FILE '%s' does not exist",
					  tfile);
		if (rc < 0)
			goto fail;
		rc_local_trim(&b);
		*auth = rc_buf_detach(&b);
	} else if (tok) {
		*auth = rc_strdup(tok);
	}
	if (*auth) {
		rc_secret_register(*auth);
		if (strpbrk(*auth, "\r\n")) {
			rc = rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
					  "the container authorization token "
					  "has a line break");
			goto fail;
		}
	}
	return 0;
fail:
	free(*url);
	free_secret(*auth);
	*url = *auth = NULL;
	explicit_bzero(b.ptr, b.len);
	rc_buf_release(&b);
	return rc;
}

static int fetch_container(rc_aws_provider *p, rc_aws_creds *out,
			   rc_buf *tried)
{
	char *url = NULL, *auth = NULL;
	rc_buf hdr = RC_BUF_INIT_MAX(20000), body = RC_BUF_INIT_MAX(1 << 20);
	rc_buf from = RC_BUF_INIT_MAX(8192);
	const char *headers[2] = {NULL, NULL};
	long status = 0;
	int rc;

	if ((rc = container_target(&url, &auth, tried)) != 0 || !url)
		return rc;
	rc_buf_printf(&from, "container credentials endpoint %s", url);
	if (auth) {
		rc_buf_printf(&hdr, "Authorization: %s", auth);
		headers[0] = hdr.ptr;
	}
	if ((rc = md_request(p, url, "GET", headers, 2, &status, &body)) < 0) {
		rc_error_prefix("%s", from.ptr);
		goto done;
	}
	if (status != 200) {
		rc = rc_error_set(status == 401 || status == 403 ? RC_EAUTH
								 : RC_ERROR,
				  RC_ECLASS_PLATFORM,
				  "%s answered %ld%s", from.ptr, status,
				  status == 401 || status == 403
					  ? " (the authorization token was "
					    "refused: check "
					    "AWS_CONTAINER_AUTHORIZATION_TOKEN"
					    "[_FILE])"
					  : "");
		goto done;
	}
	if ((rc = creds_from_json(out, body.ptr, from.ptr, "Token", false)) <
	    0)
		goto done;
	out->source = rc_buf_detach(&from);
	p->kind = SRC_CONTAINER;
done:
	explicit_bzero(hdr.ptr, hdr.len);
	explicit_bzero(body.ptr, body.len);
	rc_buf_release(&hdr);
	rc_buf_release(&body);
	rc_buf_release(&from);
	free(url);
	free_secret(auth);
	return rc;
}

/* The IMDS endpoint (new), or NOT_APPLIED. */
static int imds_endpoint(rc_aws_provider *p, char **out, rc_buf *tried)
{
	const char *off = getenv("AWS_EC2_METADATA_DISABLED");
	const char *ep = env_nonempty("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	struct ini conf;
	struct url_host u;
	rc_buf b = RC_BUF_INIT_MAX(4096);
	int rc = 0;

	*out = NULL;
	if (off && !strcasecmp(off, "true")) {
		if (tried)
			rc_buf_puts(tried, "instance metadata (IMDSv2): "
					   "AWS_EC2_METADATA_DISABLED is true");
		return NOT_APPLIED;
	}
	memset(&conf, 0, sizeof(conf));
	if (!ep) {
		if (ini_load(&conf, "AWS_CONFIG_FILE", ".aws/config", true) <
		    0)
			rc_error_clear(); /* reported by the shared files */
		ep = ini_get(&conf, p->profile,
			     "ec2_metadata_service_endpoint");
	}
	if (!ep)
		ep = RC_AWS_IMDS_ENDPOINT;
	if (!url_parse(ep, &u) ||
	    (!u.https && !host_is_loopback(u.host) &&
	     !host_is_one_of(u.host, imds_hosts))) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				  "the instance metadata endpoint '%s' is "
				  "refused: use https://, or http:// to "
				  "169.254.169.254, fd00:ec2::254 or a "
				  "loopback address",
				  ep);
		goto done;
	}
	rc_buf_puts(&b, ep);
	while (b.len > 8 && b.ptr[b.len - 1] == '/')
		rc_buf_truncate(&b, b.len - 1);
	*out = rc_buf_detach(&b);
done:
	ini_release(&conf);
	return rc;
}

/* An IMDSv2 session token into p (kept until shortly before its TTL). */
static int imds_token(rc_aws_provider *p, const char *ep, bool renew)
{
	rc_buf url = RC_BUF_INIT_MAX(8192), body = RC_BUF_INIT_MAX(1 << 16);
	char ttl[96];
	const char *headers[2] = {ttl, NULL};
	long status = 0;
	int rc;

	if (!renew && p->imds_token && mono_ms() < p->imds_token_until)
		return 0;
	free_secret(p->imds_token);
	p->imds_token = NULL;
	snprintf(ttl, sizeof(ttl), "X-aws-ec2-metadata-token-ttl-seconds: %d",
		 RC_AWS_IMDS_TOKEN_TTL_S);
	rc_buf_printf(&url, "%s%s", ep, IMDS_TOKEN_PATH);
	rc = md_request(p, url.ptr, "PUT", headers, 0, &status, &body);
	if (rc < 0) {
		rc_error_prefix("no instance metadata service at %s", ep);
		goto done;
	}
	rc_local_trim(&body);
	if (status != 200 || !body.len || strpbrk(body.ptr, "\r\n")) {
		rc = rc_error_set(RC_EAUTH, RC_ECLASS_PLATFORM,
				  "PUT %s answered %ld%s (IMDSv2 session "
				  "token refused; IMDSv1 is not used)",
				  url.ptr, status,
				  status == 200 ? " without a token" : "");
		goto done;
	}
	rc_secret_register(body.ptr);
	p->imds_token = rc_buf_detach(&body);
	p->imds_token_until =
		mono_ms() + (RC_AWS_IMDS_TOKEN_TTL_S - 60) * 1000LL;
done:
	explicit_bzero(body.ptr, body.len);
	rc_buf_release(&body);
	rc_buf_release(&url);
	return rc;
}

/* GET ep+path with the session token, renewing it once after a 401. */
static int imds_get(rc_aws_provider *p, const char *ep, const char *path,
		    rc_buf *body)
{
	rc_buf url = RC_BUF_INIT_MAX(8192), hdr = RC_BUF_INIT_MAX(20000);
	const char *headers[2] = {NULL, NULL};
	long status = 0;
	int rc = 0;

	rc_buf_printf(&url, "%s%s", ep, path);
	for (int attempt = 0; attempt < 2; attempt++) {
		if ((rc = imds_token(p, ep, attempt > 0)) < 0)
			goto done;
		rc_buf_clear(&hdr);
		rc_buf_printf(&hdr, "%s: %s", IMDS_TOKEN_HEADER,
			      p->imds_token);
		headers[0] = hdr.ptr;
		if ((rc = md_request(p, url.ptr, "GET", headers, 1, &status,
				     body)) < 0) {
			rc_error_prefix("instance metadata");
			goto done;
		}
		if (status != 401)
			break;
	}
	if (status == 401)
		rc = rc_error_set(RC_EAUTH, RC_ECLASS_PLATFORM,
				  "GET %s answered 401: the instance metadata "
				  "service refused its own session token "
				  "(a new one was asked for once)",
				  url.ptr);
	else if (status == 404 && !strcmp(path, IMDS_ROLES_PATH))
		rc = rc_error_set(RC_ENOTFOUND, RC_ECLASS_PLATFORM,
				  "GET %s answered 404: no IAM role is "
				  "attached to this instance",
				  url.ptr);
	else if (status != 200)
		rc = rc_error_set(RC_ERROR, RC_ECLASS_PLATFORM,
				  "GET %s answered %ld", url.ptr, status);
done:
	explicit_bzero(hdr.ptr, hdr.len);
	rc_buf_release(&hdr);
	rc_buf_release(&url);
	return rc;
}

static int fetch_imds(rc_aws_provider *p, rc_aws_creds *out, rc_buf *tried)
{
	char *ep = NULL, *role = NULL;
	rc_buf body = RC_BUF_INIT_MAX(1 << 20), path = RC_BUF_INIT_MAX(4096);
	rc_buf from = RC_BUF_INIT_MAX(4096);
	int rc;

	if ((rc = imds_endpoint(p, &ep, tried)) != 0)
		return rc;
	if ((rc = imds_get(p, ep, IMDS_ROLES_PATH, &body)) < 0)
		goto done;
	rc_local_trim(&body);
	role = rc_strndup(body.ptr, strcspn(body.ptr, "\r\n"));
	if (!*role || strpbrk(role, "/?# ")) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_PLATFORM,
				  "instance metadata at %s: no usable role "
				  "name in the list of roles",
				  ep);
		goto done;
	}
	rc_buf_printf(&path, "%s%s", IMDS_ROLES_PATH, role);
	if ((rc = imds_get(p, ep, path.ptr, &body)) < 0)
		goto done;
	rc_buf_printf(&from, "instance metadata (IMDSv2) %s, role \"%s\"", ep,
		      role);
	if ((rc = creds_from_json(out, body.ptr, from.ptr, "Token", false)) <
	    0)
		goto done;
	out->source = rc_buf_detach(&from);
	p->kind = SRC_IMDS;
done:
	explicit_bzero(body.ptr, body.len);
	rc_buf_release(&body);
	rc_buf_release(&path);
	rc_buf_release(&from);
	free(role);
	free(ep);
	return rc;
}

/* ------------------------------------------------------------- the chain */

static void tried_add(rc_buf *list, rc_buf *one, int *n)
{
	rc_buf_printf(list, "\n  %d. %s", ++*n, one->ptr);
	rc_buf_clear(one);
}

static int chain(rc_aws_provider *p, rc_aws_creds *out)
{
	rc_buf tried = RC_BUF_INIT_MAX(1 << 16), one = RC_BUF_INIT_MAX(1 << 14);
	int rc, n = 0;

	memset(out, 0, sizeof(*out));
	if ((rc = from_env(out, &one)) != NOT_APPLIED) {
		if (rc == 0)
			p->kind = SRC_ENV;
		goto done;
	}
	tried_add(&tried, &one, &n);
	if ((rc = from_shared(p, out, &one)) != NOT_APPLIED)
		goto done;
	tried_add(&tried, &one, &n);
	if ((rc = fetch_container(p, out, &one)) != NOT_APPLIED)
		goto done;
	tried_add(&tried, &one, &n);
	rc = fetch_imds(p, out, &one);
	if (rc == 0)
		goto done;
	if (rc < 0) {
		const rc_error *e = rc_error_last();

		rc_buf_printf(&one, "instance metadata (IMDSv2): %s",
			      e && e->message ? e->message : "failed");
	}
	tried_add(&tried, &one, &n);
	rc = rc_error_set(RC_ENOTFOUND, RC_ECLASS_CONFIG,
			  "no AWS credentials found (profile \"%s\"); tried, "
			  "in order:%s",
			  p->profile, tried.ptr);
done:
	if (rc < 0)
		rc_aws_creds_release(out);
	rc_buf_release(&tried);
	rc_buf_release(&one);
	return rc;
}

/* Asks the source that answered first again. */
static int refetch(rc_aws_provider *p, rc_aws_creds *out)
{
	memset(out, 0, sizeof(*out));
	switch (p->kind) {
	case SRC_PROCESS:
		return fetch_process(p, out);
	case SRC_CONTAINER: {
		int rc = fetch_container(p, out, NULL);

		return rc == NOT_APPLIED
			       ? rc_error_set(RC_ENOTFOUND, RC_ECLASS_CONFIG,
					      "the container credentials "
					      "endpoint is no longer set")
			       : rc;
	}
	case SRC_IMDS: {
		int rc = fetch_imds(p, out, NULL);

		return rc == NOT_APPLIED
			       ? rc_error_set(RC_ENOTFOUND, RC_ECLASS_CONFIG,
					      "instance metadata is now "
					      "disabled")
			       : rc;
	}
	default:
		return chain(p, out);
	}
}

int rc_aws_provider_open(rc_aws_provider **out, const rc_aws_provider_opts *o)
{
	rc_aws_provider_opts none;
	rc_aws_provider *p;
	int rc;

	*out = NULL;
	if (!o) {
		memset(&none, 0, sizeof(none));
		o = &none;
	}
	p = rc_calloc(1, sizeof(*p));
	p->profile = rc_strdup(profile_name(o->profile, &p->profile_explicit));
	p->ahead_s = o->refresh_ahead_s > 0 ? o->refresh_ahead_s
					     : RC_AWS_REFRESH_AHEAD_S;
	p->md_timeout_ms = o->metadata_timeout_ms > 0
				   ? o->metadata_timeout_ms
				   : RC_AWS_METADATA_TIMEOUT_MS;
	p->proc_timeout_ms = o->process_timeout_ms > 0
				     ? o->process_timeout_ms
				     : RC_AWS_PROCESS_TIMEOUT_MS;
	pthread_mutex_init(&p->lock, NULL);
	if ((rc = rc_aws_region_resolve(&p->region, o->region, p->profile)) <
	    0)
		goto fail;
	if ((rc = chain(p, &p->cur)) < 0)
		goto fail;
	p->have = true;
	p->fetches = 1;
	RC_DEBUG("AWS credentials from %s", p->cur.source);
	*out = p;
	return 0;
fail:
	rc_aws_provider_close(p);
	return rc;
}

void rc_aws_provider_close(rc_aws_provider *p)
{
	if (!p)
		return;
	rc_aws_creds_release(&p->cur);
	free_secret(p->imds_token);
	free(p->process);
	free(p->profile);
	free(p->region);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

int rc_aws_provider_get(rc_aws_provider *p, rc_aws_creds *out)
{
	time_t now = time(NULL);
	int rc = 0;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&p->lock);
	if (!p->have ||
	    (p->cur.expiration && p->cur.expiration - now <= p->ahead_s)) {
		rc_aws_creds fresh;

		rc = refetch(p, &fresh);
		if (rc == 0) {
			p->fetches++;
			rc_aws_creds_release(&p->cur);
			p->cur = fresh;
			p->have = true;
			RC_DEBUG("AWS credentials refreshed from %s",
				 p->cur.source);
		} else if (p->have && p->cur.expiration > now) {
			const rc_error *e = rc_error_last();

			RC_WARN("cannot refresh the AWS credentials from %s; "
				"the current ones stay in use until they "
				"expire: %s",
				p->cur.source,
				e && e->message ? e->message : "failed");
			rc_error_clear();
			rc = 0;
		} else {
			rc_error_prefix("the AWS credentials from %s expired "
					"and cannot be refreshed",
					p->have ? p->cur.source : "(none)");
		}
	}
	if (rc == 0)
		creds_copy(out, &p->cur);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

const char *rc_aws_provider_region(const rc_aws_provider *p)
{
	return p->region;
}

const char *rc_aws_provider_profile(const rc_aws_provider *p)
{
	return p->profile;
}

int rc_aws_provider_fetches(rc_aws_provider *p)
{
	int n;

	pthread_mutex_lock(&p->lock);
	n = p->fetches;
	pthread_mutex_unlock(&p->lock);
	return n;
}
