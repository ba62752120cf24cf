/*
 * The registry client (see drivers/oci.h and docs/drivers/oci.md).
 *
 * One rc_http per registry endpoint, opened on first use. Every request
 * names the scopes it needs ("repository:app/web:pull,push"); once a
 * registry has answered a challenge, later requests get their
 * Authorization before they are sent (a cached bearer token for those
 * scopes, or Basic), and a 401 makes one fresh attempt. Blobs go through
 * an unlinked temporary file: downloaded with their digest checked on the
 * way, then uploaded from the file.
 */
#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/codec.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "drivers/http.h"
#include "drivers/oci.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>

#define MANIFEST_MAX ((size_t)4 << 20)
#define TOKEN_REPLY_MAX ((size_t)1 << 20)
#define ERROR_BODY_MAX ((size_t)1 << 20)
#define PROGRESS_STEP ((uint64_t)256 << 10)
#define BLOB_TIMEOUT_MS (3600L * 1000L)
/* a token is dropped this long before it expires */
#define TOKEN_MARGIN_NS (10LL * 1000000000LL)

static const char accept_manifests[] =
	RC_OCI_MT_OCI_INDEX ", " RC_OCI_MT_DOCKER_LIST
	", " RC_OCI_MT_OCI_MANIFEST ", " RC_OCI_MT_DOCKER_MANIFEST;

/* jansson's getters take non-const values; nothing here modifies them */
static const char *jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static long long mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void free_secret(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

/* ------------------------------------------------------------ references */

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One path component: [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)* */
static bool component_ok(const char *s, size_t n)
{
	size_t i = 0;

	if (!n || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
		return false;
	while (i < n) {
		if (is_lower_alnum(s[i])) {
			i++;
			continue;
		}
		if (s[i] == '.') {
			i++;
		} else if (s[i] == '_') {
			i += i + 1 < n && s[i + 1] == '_' ? 2 : 1;
		} else if (s[i] == '-') {
			while (i < n && s[i] == '-')
				i++;
		} else {
			return false;
		}
		if (i >= n || !is_lower_alnum(s[i]))
			return false;
	}
	return true;
}

static bool repository_ok(const char *s)
{
	const char *p = s;

	if (!*s || strlen(s) > 255)
		return false;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);

		if (!component_ok(p, n))
			return false;
		if (!slash)
			return true;
		p = slash + 1;
	}
}

static bool tag_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 128 || !(isalnum((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
			return false;
	return true;
}

static bool digest_ok(const char *s)
{
	if (strncmp(s, "sha256:", 7) || strlen(s) != RC_SHA256_DIGEST_LEN)
		return false;
	for (const char *p = s + 7; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

/* host[:port], or [ipv6][:port] */
static bool registry_ok(const char *s)
{
	const char *p = s, *colon;

	if (!*s || strlen(s) > 255)
		return false;
	if (*p == '[') {
		const char *end = strchr(p, ']');

		if (!end || end == p + 1)
			return false;
		for (const char *q = p + 1; q < end; q++)
			if (!isxdigit((unsigned char)*q) && *q != ':' &&
			    *q != '.')
				return false;
		colon = *(end + 1) ? end + 1 : NULL;
		if (colon && *colon != ':')
			return false;
	} else {
		colon = strchr(p, ':');
		for (const char *q = p; *q && q != colon; q++)
			if (!isalnum((unsigned char)*q) && *q != '.' &&
			    *q != '-')
				return false;
		if (colon == p)
			return false;
	}
	if (colon) {
		if (!colon[1] || strlen(colon + 1) > 5)
			return false;
		for (const char *q = colon + 1; *q; q++)
			if (!isdigit((unsigned char)*q))
				return false;
	}
	return true;
}

void rc_oci_ref_release(rc_oci_ref *r)
{
	if (!r)
		return;
	free(r->registry);
	free(r->repository);
	free(r->tag);
	free(r->digest);
	memset(r, 0, sizeof(*r));
}

int rc_oci_ref_parse(rc_oci_ref *out, const char *s)
{
	const char *at, *name_end, *colon, *slash;
	char *name = NULL, *first = NULL;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (!s || !*s)
		return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
				    "an empty image reference");
	at = strchr(s, '@');
	name_end = at ? at : s + strlen(s);
	if (at) {
		if (strncmp(at + 1, "sha256:", 7) && strchr(at + 1, ':'))
			return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
					    "image reference '%s': only sha256 "
					    "digests are supported", s);
		if (!digest_ok(at + 1))
			return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
					    "image reference '%s': the digest "
					    "is not sha256: and 64 lowercase "
					    "hex digits", s);
		out->digest = rc_strdup(at + 1);
	}
	/* a tag is after the last ':' that follows the last '/' */
	name = rc_strndup(s, (size_t)(name_end - s));
	slash = strrchr(name, '/');
	colon = strrchr(name, ':');
	if (colon && (!slash || colon > slash)) {
		out->tag = rc_strdup(colon + 1);
		name[colon - name] = '\0';
		if (!tag_ok(out->tag)) {
			rc = rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
					  "image reference '%s': '%s' is not a "
					  "valid tag", s, out->tag);
			goto done;
		}
	}
	slash = strchr(name, '/');
	if (slash) {
		first = rc_strndup(name, (size_t)(slash - name));
		if (strpbrk(first, ".:") || !strcmp(first, "localhost") ||
		    strpbrk(first, "ABCDEFGHIJKLMNOPQRSTUVWXYZ")) {
			out->registry = first;
			first = NULL;
			out->repository = rc_strdup(slash + 1);
		}
	}
	if (!out->registry) {
		out->registry = rc_strdup(RC_OCI_DOCKER_HUB);
		out->repository = rc_strdup(name);
	}
	if (!strcmp(out->registry, "index.docker.io")) {
		free(out->registry);
		out->registry = rc_strdup(RC_OCI_DOCKER_HUB);
	}
	if (!strcmp(out->registry, RC_OCI_DOCKER_HUB) &&
	    !strchr(out->repository, '/')) {
		rc_buf b = RC_BUF_INIT;

		rc_buf_printf(&b, "library/%s", out->repository);
		free(out->repository);
		out->repository = rc_buf_detach(&b);
	}
	if (!registry_ok(out->registry)) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
				  "image reference '%s': '%s' is not a "
				  "registry host", s, out->registry);
		goto done;
	}
	if (!repository_ok(out->repository)) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
				  "image reference '%s': '%s' is not a valid "
				  "repository name (lowercase letters, digits "
				  "and separators)", s, out->repository);
		goto done;
	}
	if (!out->tag && !out->digest)
		out->tag = rc_strdup("latest");
done:
	free(name);
	free(first);
	return rc;
}

int rc_oci_ref_format(rc_buf *out, const rc_oci_ref *r)
{
	int rc = rc_buf_printf(out, "%s/%s", r->registry, r->repository);

	if (rc == 0 && r->tag)
		rc = rc_buf_printf(out, ":%s", r->tag);
	if (rc == 0 && r->digest)
		rc = rc_buf_printf(out, "@%s", r->digest);
	return rc;
}

bool rc_oci_registry_is_loopback(const char *registry)
{
	char host[256];
	const char *p = registry, *end;
	size_t n;
	unsigned char addr[16];

	if (!registry)
		return false;
	if (*p == '[') {
		p++;
		end = strchr(p, ']');
		if (!end)
			return false;
	} else {
		end = strchr(p, ':');
		/* more than one ':' without brackets: a bare IPv6 address */
		if (end && strchr(end + 1, ':'))
			end = NULL;
		if (!end)
			end = p + strlen(p);
	}
	n = (size_t)(end - p);
	if (!n || n >= sizeof(host))
		return false;
	memcpy(host, p, n);
	host[n] = '\0';
	if (!strcasecmp(host, "localhost"))
		return true;
	if (inet_pton(AF_INET, host, addr) == 1)
		return addr[0] == 127;
	if (inet_pton(AF_INET6, host, addr) == 1) {
		static const unsigned char one[16] = {[15] = 1};

		return !memcmp(addr, one, 16);
	}
	return false;
}

/* ---------------------------------------------------------- challenges */

void rc_oci_challenge_release(rc_oci_challenge *c)
{
	if (!c)
		return;
	free(c->scheme);
	free(c->realm);
	free(c->service);
	free(c->scope);
	free(c->error);
	memset(c, 0, sizeof(*c));
}

static bool token_char(char c)
{
	return c > ' ' && c < 127 && !strchr("\"(),/:;<=>?@[\\]{}", c);
}

int rc_oci_challenge_parse(rc_oci_challenge *out, const char *value)
{
	const char *p = value;
	rc_buf name = RC_BUF_INIT_MAX(256), val = RC_BUF_INIT_MAX(8192);
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (!p)
		return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
				    "no WWW-Authenticate challenge");
	while (*p == ' ' || *p == '\t')
		p++;
	for (const char *q = p; token_char(*q) || *q == '/'; q++)
		rc_buf_putc(&name, *q);
	if (!name.len) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
				  "a WWW-Authenticate challenge without a "
				  "scheme");
		goto done;
	}
	out->scheme = rc_strdup(name.ptr);
	p += name.len;
	for (;;) {
		const char *save;
		char **slot = NULL;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			break;
		save = p;
		rc_buf_clear(&name);
		rc_buf_clear(&val);
		while (token_char(*p))
			rc_buf_putc(&name, *p++);
		while (*p == ' ' || *p == '\t')
			p++;
		if (!name.len || *p != '=') {
			/* the next challenge ("..., Basic realm=x"): stop */
			if (name.len && p != save)
				break;
			rc = rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
					  "a WWW-Authenticate challenge that "
					  "cannot be read at offset %zu",
					  (size_t)(p - value));
			goto done;
		}
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && p[1])
					p++;
				rc_buf_putc(&val, *p);
			}
			if (*p != '"') {
				rc = rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
						  "a WWW-Authenticate challenge "
						  "with an unterminated quote");
				goto done;
			}
			p++;
		} else {
			while (*p && *p != ',' && *p != ' ' && *p != '\t')
				rc_buf_putc(&val, *p++);
		}
		if (!strcasecmp(name.ptr, "realm"))
			slot = &out->realm;
		else if (!strcasecmp(name.ptr, "service"))
			slot = &out->service;
		else if (!strcasecmp(name.ptr, "scope"))
			slot = &out->scope;
		else if (!strcasecmp(name.ptr, "error"))
			slot = &out->error;
		if (slot) {
			free(*slot);
			*slot = rc_strdup(val.ptr);
		}
	}
done:
	rc_buf_release(&name);
	rc_buf_release(&val);
	if (rc < 0)
		/* nothing half-read for the caller to release */
		rc_oci_challenge_release(out);
	return rc;
}

/* ---------------------------------------------------------- credentials */

void rc_oci_cred_release(rc_oci_cred *c)
{
	if (!c)
		return;
	free(c->user);
	free_secret(c->password);
	free_secret(c->identity_token);
	free(c->source);
	memset(c, 0, sizeof(*c));
}

int rc_oci_config_path(rc_buf *out)
{
	const char *v;

	if ((v = getenv("REGISTRY_AUTH_FILE")) && *v)
		return rc_buf_puts(out, v);
	if ((v = getenv("DOCKER_CONFIG")) && *v)
		return rc_buf_printf(out, "%s/config.json", v);
	if ((v = getenv("HOME")) && *v)
		return rc_buf_printf(out, "%s/.docker/config.json", v);
	return rc_error_set(RC_ENOTFOUND, RC_ECLASS_NONE,
			    "no Docker config file: none of "
			    "REGISTRY_AUTH_FILE, DOCKER_CONFIG, HOME is set");
}

/* The host (and port) a key of "auths" names: "https://host:5000/v1/" ->
 * "host:5000"; docker.io's names -> "docker.io". */
static char *auth_key_host(const char *key)
{
	const char *p = strstr(key, "://");
	size_t n;
	char *h;

	p = p ? p + 3 : key;
	n = strcspn(p, "/");
	h = rc_strndup(p, n);
	if (!strcmp(h, "index.docker.io") || !strcmp(h, "registry-1.docker.io")) {
		free(h);
		h = rc_strdup(RC_OCI_DOCKER_HUB);
	}
	return h;
}

static int cred_from_entry(rc_oci_cred *out, json_t *e, const char *path,
			   const char *key)
{
	const char *auth = jstr(e, "auth"), *user = jstr(e, "username"),
		   *pass = jstr(e, "password"), *tok = jstr(e, "identitytoken");
	rc_buf dec = RC_BUF_INIT_MAX(64 << 10);
	int rc = 0;

	if (!json_is_object(e))
		return rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				    "'%s': auths.\"%s\" is not an object", path,
				    key);
	if (auth && *auth) {
		char *colon;

		if (rc_codec_base64_decode(&dec, auth, strlen(auth),
					   RC_BASE64_LAX) < 0 ||
		    !(colon = memchr(dec.ptr, ':', dec.len))) {
			rc_buf_release(&dec);
			rc_error_clear();
			return rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
					    "'%s': auths.\"%s\".auth is not "
					    "base64 of user:password",
					    path, key);
		}
		out->user = rc_strndup(dec.ptr, (size_t)(colon - dec.ptr));
		out->password = rc_strdup(colon + 1);
		explicit_bzero(dec.ptr, dec.len);
	} else if (user && *user) {
		out->user = rc_strdup(user);
		if (pass)
			out->password = rc_strdup(pass);
	}
	rc_buf_release(&dec);
	if (tok && *tok) {
		out->identity_token = rc_strdup(tok);
		free_secret(out->password);
		out->password = NULL;
		if (!out->user)
			out->user = rc_strdup("<token>");
	}
	if (!out->user) {
		rc = rc_error_set(RC_ENOTFOUND, RC_ECLASS_NONE,
				  "'%s': auths.\"%s\" holds no credentials "
				  "(a credential helper's entry?)", path, key);
		return rc;
	}
	if (out->password && *out->password)
		rc_secret_register(out->password);
	if (out->identity_token)
		rc_secret_register(out->identity_token);
	if (auth && *auth)
		rc_secret_register(auth);
	out->source = rc_strdup(path);
	return 0;
}

int rc_oci_config_lookup(rc_oci_cred *out, const char *registry,
			 const char *path)
{
	rc_buf p = RC_BUF_INIT_MAX(4096);
	json_error_t jerr;
	json_t *root = NULL, *auths, *e;
	const char *key;
	char *want = NULL;
	bool hub;
	int rc;

	memset(out, 0, sizeof(*out));
	if (path)
		rc_buf_puts(&p, path);
	else if ((rc = rc_oci_config_path(&p)) < 0)
		goto done;
	if (access(p.ptr, F_OK) < 0) {
		rc = rc_error_set(RC_ENOTFOUND, RC_ECLASS_NONE,
				  "no Docker config file '%s'", p.ptr);
		goto done;
	}
	root = json_load_file(p.ptr, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				  "cannot read the Docker config file '%s' "
				  "(line %d: %s)", p.ptr, jerr.line, jerr.text);
		goto done;
	}
	auths = json_object_get(root, "auths");
	hub = !strcmp(registry, RC_OCI_DOCKER_HUB);
	/* the exact key first, then any key naming the same host */
	e = json_object_get(auths,
			    hub ? RC_OCI_DOCKER_HUB_AUTH_KEY : registry);
	if (e) {
		rc = cred_from_entry(out, e, p.ptr,
				     hub ? RC_OCI_DOCKER_HUB_AUTH_KEY
					 : registry);
		goto done;
	}
	want = auth_key_host(registry);
	json_object_foreach(auths, key, e) {
		char *h = auth_key_host(key);
		bool same = !strcmp(h, want);

		free(h);
		if (same) {
			rc = cred_from_entry(out, e, p.ptr, key);
			goto done;
		}
	}
	rc = rc_error_set(RC_ENOTFOUND, RC_ECLASS_NONE,
			  "'%s' has no credentials for %s", p.ptr, registry);
done:
	if (rc < 0)
		rc_oci_cred_release(out);
	free(want);
	json_decref(root);
	rc_buf_release(&p);
	return rc;
}

/* ---------------------------------------------------------------- client */

struct endpoint {
	char *registry;
	char *url;     /* "https://host:port", no trailing '/' */
	rc_http *http; /* opened on first use */
	/* credentials: given, or looked up once */
	bool given, looked_up;
	rc_oci_cred cred; /* user NULL: anonymous */
	/* what the registry asked for, once it has */
	char *scheme; /* "bearer", "basic" or NULL */
	char *realm, *service;
};

struct token {
	char *key; /* registry, '\n', the scopes */
	char *value;
	long long expires_ns;
};

struct rc_oci {
	char *ca_file, *auth_file, *tmp_dir, *user_agent;
	long timeout_ms, blob_timeout_ms;
	int max_retries;

	pthread_mutex_t lock;
	struct endpoint **eps;
	size_t neps, capeps;
	rc_http **retired; /* clients of replaced endpoints */
	size_t nretired, capretired;
	struct token *tokens;
	size_t ntokens, captokens;
};

void rc_oci_opts_init(rc_oci_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->max_retries = RC_HTTP_MAX_RETRIES;
}

static char *dup_opt(const char *s)
{
	return s ? rc_strdup(s) : NULL;
}

int rc_oci_open(rc_oci **out, const rc_oci_opts *o)
{
	rc_oci *c = rc_calloc(1, sizeof(*c));

	c->ca_file = o->ca_file && *o->ca_file ? rc_strdup(o->ca_file) : NULL;
	c->auth_file = dup_opt(o->auth_file);
	c->tmp_dir = o->tmp_dir && *o->tmp_dir ? rc_strdup(o->tmp_dir) : NULL;
	c->user_agent = dup_opt(o->user_agent);
	c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : RC_HTTP_TIMEOUT_MS;
	c->blob_timeout_ms =
		o->blob_timeout_ms > 0 ? o->blob_timeout_ms : BLOB_TIMEOUT_MS;
	c->max_retries = o->max_retries > 0 ? o->max_retries : 0;
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

static void endpoint_free(struct endpoint *ep)
{
	if (!ep)
		return;
	rc_http_close(ep->http);
	free(ep->registry);
	free(ep->url);
	rc_oci_cred_release(&ep->cred);
	free(ep->scheme);
	free(ep->realm);
	free(ep->service);
	free(ep);
}

void rc_oci_close(rc_oci *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->neps; i++)
		endpoint_free(c->eps[i]);
	free(c->eps);
	for (size_t i = 0; i < c->nretired; i++)
		rc_http_close(c->retired[i]);
	free(c->retired);
	for (size_t i = 0; i < c->ntokens; i++) {
		free(c->tokens[i].key);
		free_secret(c->tokens[i].value);
	}
	free(c->tokens);
	pthread_mutex_destroy(&c->lock);
	free(c->ca_file);
	free(c->auth_file);
	free(c->tmp_dir);
	free(c->user_agent);
	free(c);
}

/* The endpoint of registry, made with its default URL when new; called
 * with c->lock held. */
static struct endpoint *endpoint_locked(rc_oci *c, const char *registry)
{
	struct endpoint *ep;
	rc_buf u = RC_BUF_INIT_MAX(4096);

	for (size_t i = 0; i < c->neps; i++)
		if (!strcmp(c->eps[i]->registry, registry))
			return c->eps[i];
	ep = rc_calloc(1, sizeof(*ep));
	ep->registry = rc_strdup(registry);
	if (!strcmp(registry, RC_OCI_DOCKER_HUB))
		rc_buf_puts(&u, "https://" RC_OCI_DOCKER_HUB_API);
	else
		rc_buf_printf(&u, "%s://%s",
			      rc_oci_registry_is_loopback(registry) ? "http"
								    : "https",
			      registry);
	ep->url = rc_buf_detach(&u);
	RC_GROW(c->eps, c->capeps, c->neps + 1);
	c->eps[c->neps++] = ep;
	return ep;
}

int rc_oci_set_endpoint(rc_oci *c, const char *registry, const char *url)
{
	struct endpoint *ep;
	const char *host;
	char *u, *hostport;
	size_t n;

	if (!registry || !*registry || !url)
		return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
				    "a registry endpoint needs a registry and "
				    "a URL");
	if (!strncmp(url, "https://", 8))
		host = url + 8;
	else if (!strncmp(url, "http://", 7))
		host = url + 7;
	else
		return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
				    "the endpoint of registry %s, '%s', is "
				    "not an http or https URL", registry, url);
	hostport = rc_strndup(host, strcspn(host, "/?#"));
	if (!*hostport || (url[4] == ':' &&
			   !rc_oci_registry_is_loopback(hostport))) {
		int rc = rc_error_set(
			RC_EINVALID, RC_ECLASS_NONE,
			*hostport ? "the endpoint of registry %s, '%s', is "
				    "plain http on a host that is not "
				    "loopback: use https"
				  : "the endpoint of registry %s, '%s', has "
				    "no host",
			registry, url);

		free(hostport);
		return rc;
	}
	free(hostport);
	u = rc_strdup(url);
	n = strlen(u);
	while (n > 8 && u[n - 1] == '/')
		u[--n] = '\0';
	pthread_mutex_lock(&c->lock);
	ep = endpoint_locked(c, registry);
	free(ep->url);
	ep->url = u;
	if (ep->http) {
		RC_GROW(c->retired, c->capretired, c->nretired + 1);
		c->retired[c->nretired++] = ep->http;
		ep->http = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	return 0;
}

int rc_oci_set_credentials(rc_oci *c, const char *registry, const char *user,
			   const char *password)
{
	struct endpoint *ep;

	if (password && *password)
		rc_secret_register(password);
	pthread_mutex_lock(&c->lock);
	ep = endpoint_locked(c, registry);
	rc_oci_cred_release(&ep->cred);
	ep->given = true;
	ep->looked_up = true;
	if (user) {
		ep->cred.user = rc_strdup(user);
		ep->cred.password = rc_strdup(password ? password : "");
		ep->cred.source = rc_strdup("given");
	}
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* The endpoint's client, opened on first use; its credentials looked up
 * in the Docker config file on first use. */
static int endpoint_get(rc_oci *c, const char *registry,
			struct endpoint **out)
{
	struct endpoint *ep;
	int rc = 0;

	pthread_mutex_lock(&c->lock);
	ep = endpoint_locked(c, registry);
	if (!ep->looked_up) {
		ep->looked_up = true;
		if (!c->auth_file || *c->auth_file) {
			rc = rc_oci_config_lookup(&ep->cred, registry,
						  c->auth_file);
			if (rc == RC_ENOTFOUND) {
				rc_error_clear();
				rc = 0;
			} else if (rc < 0) {
				ep->looked_up = false;
			}
		}
	}
	if (rc == 0 && !ep->http) {
		rc_http_opts o;

		rc_http_opts_init(&o);
		o.base_url = ep->url;
		o.ca_file = c->ca_file;
		o.accept = accept_manifests;
		o.user_agent = c->user_agent;
		o.driver = "registry";
		o.timeout_ms = c->timeout_ms;
		o.max_retries = c->max_retries;
		o.max_body = MANIFEST_MAX;
		rc = rc_http_open(&ep->http, &o);
	}
	pthread_mutex_unlock(&c->lock);
	*out = ep;
	return rc;
}

/* "anonymous", "user '_' (given)", "user 'x' from '/path'": which
 * credentials were used, for messages. */
static void cred_desc(rc_oci *c, struct endpoint *ep, rc_buf *b)
{
	pthread_mutex_lock(&c->lock);
	if (!ep->cred.user)
		rc_buf_puts(b, "anonymous");
	else if (ep->given)
		rc_buf_printf(b, "user '%s' (given)", ep->cred.user);
	else if (ep->cred.identity_token)
		rc_buf_printf(b, "an identity token from '%s'",
			      ep->cred.source);
	else
		rc_buf_printf(b, "user '%s' from '%s'", ep->cred.user,
			      ep->cred.source);
	pthread_mutex_unlock(&c->lock);
}

/* ------------------------------------------------------------------ auth */

static char *token_key(const struct endpoint *ep, const char *scopes)
{
	rc_buf k = RC_BUF_INIT_MAX(8192);

	rc_buf_printf(&k, "%s\n%s", ep->registry, scopes);
	return rc_buf_detach(&k);
}

/* "Authorization: Bearer <token>" for scopes from the cache, or NULL. */
static char *token_cached(rc_oci *c, const struct endpoint *ep,
			  const char *scopes)
{
	char *key = token_key(ep, scopes), *out = NULL;
	long long now = mono_ns();

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->ntokens; i++) {
		if (strcmp(c->tokens[i].key, key))
			continue;
		if (c->tokens[i].expires_ns > now) {
			rc_buf h = RC_BUF_INIT_MAX(1 << 20);

			rc_buf_printf(&h, "Authorization: Bearer %s",
				      c->tokens[i].value);
			out = rc_buf_detach(&h);
		}
		break;
	}
	pthread_mutex_unlock(&c->lock);
	free(key);
	return out;
}

static void token_forget(rc_oci *c, const struct endpoint *ep,
			 const char *scopes)
{
	char *key = token_key(ep, scopes);

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->ntokens; i++)
		if (!strcmp(c->tokens[i].key, key))
			c->tokens[i].expires_ns = 0;
	pthread_mutex_unlock(&c->lock);
	free(key);
}

static void token_store(rc_oci *c, const struct endpoint *ep,
			const char *scopes, const char *value,
			long long expires_ns)
{
	char *key = token_key(ep, scopes);
	struct token *t = NULL;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->ntokens && !t; i++)
		if (!strcmp(c->tokens[i].key, key))
			t = &c->tokens[i];
	if (t) {
		free(key);
		free_secret(t->value);
	} else {
		RC_GROW(c->tokens, c->captokens, c->ntokens + 1);
		t = &c->tokens[c->ntokens++];
		t->key = key;
	}
	t->value = rc_strdup(value);
	t->expires_ns = expires_ns;
	pthread_mutex_unlock(&c->lock);
}

/* "Authorization: Basic <base64 user:password>" (registered). */
static char *basic_header(const rc_oci_cred *cr)
{
	rc_buf plain = RC_BUF_INIT_MAX(64 << 10), h = RC_BUF_INIT_MAX(128 << 10);
	size_t at;

	rc_buf_printf(&plain, "%s:%s", cr->user,
		      cr->password ? cr->password : "");
	rc_buf_puts(&h, "Authorization: Basic ");
	at = h.len;
	rc_codec_base64_encode(&h, plain.ptr, plain.len, 0);
	rc_secret_register(h.ptr + at);
	explicit_bzero(plain.ptr, plain.len);
	rc_buf_release(&plain);
	return rc_buf_detach(&h);
}

/* Asks the endpoint's realm for a token for scopes (space-separated);
 * returns the Authorization line in *out. */
static int token_fetch(rc_oci *c, struct endpoint *ep, const char *scopes,
		       char **out)
{
	rc_buf url = RC_BUF_INIT_MAX(16384), form = RC_BUF_INIT_MAX(1 << 20);
	rc_http_resp r;
	rc_http_req q = {0};
	const char *hdrs[3] = {NULL, NULL, NULL};
	char *basic = NULL, *realm, *service, *user = NULL, *pass = NULL,
	     *idtok = NULL;
	json_t *root = NULL;
	const char *tok;
	long long ttl;
	int rc = 0;

	*out = NULL;
	pthread_mutex_lock(&c->lock);
	realm = dup_opt(ep->realm);
	service = dup_opt(ep->service);
	if (ep->cred.user) {
		user = rc_strdup(ep->cred.user);
		pass = dup_opt(ep->cred.password);
		idtok = dup_opt(ep->cred.identity_token);
	}
	pthread_mutex_unlock(&c->lock);
	rc_http_resp_init(&r);
	if (!realm || (strncmp(realm, "https://", 8) &&
		       strncmp(realm, "http://", 7))) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_PLATFORM,
				  "registry %s: the token realm '%s' is not "
				  "an http or https URL",
				  ep->registry, realm ? realm : "");
		goto done;
	}
	rc_buf_puts(&url, realm);
	q.url = url.ptr;
	q.max_body = TOKEN_REPLY_MAX;
	if (idtok) {
		/* OAuth2: the identity token is a refresh token */
		q.method = "POST";
		q.content_type = "application/x-www-form-urlencoded";
		rc_buf_puts(&form, "grant_type=refresh_token&client_id="
				   "reconcile&refresh_token=");
		rc_http_url_encode(&form, idtok);
		if (service) {
			rc_buf_puts(&form, "&service=");
			rc_http_url_encode(&form, service);
		}
		for (const char *s = scopes; *s;) {
			size_t n = strcspn(s, " ");
			char *one = rc_strndup(s, n);

			rc_buf_puts(&form, "&scope=");
			rc_http_url_encode(&form, one);
			free(one);
			s += n;
			while (*s == ' ')
				s++;
		}
		q.body = form.ptr;
		q.body_len = form.len;
		q.idempotent = true;
	} else {
		if (service)
			rc_http_query_add(&url, "service", service);
		for (const char *s = scopes; *s;) {
			size_t n = strcspn(s, " ");
			char *one = rc_strndup(s, n);

			rc_http_query_add(&url, "scope", one);
			free(one);
			s += n;
			while (*s == ' ')
				s++;
		}
		q.url = url.ptr;
		if (user) {
			rc_oci_cred cr = {.user = user, .password = pass};

			basic = basic_header(&cr);
			hdrs[0] = basic;
		}
	}
	q.headers = hdrs;
	if ((rc = rc_http_do(ep->http, &q, &r)) < 0) {
		rc_error_prefix("the token service");
		goto done;
	}
	if (r.status == 401 || r.status == 403) {
		rc_buf d = RC_BUF_INIT_MAX(4096);

		cred_desc(c, ep, &d);
		rc = rc_error_set(RC_EAUTH, RC_ECLASS_PLATFORM,
				  "the token service %s refused %s for %s "
				  "(HTTP %ld)",
				  realm, d.ptr, scopes, r.status);
		rc_buf_release(&d);
		goto done;
	}
	if (r.status != 200 ||
	    !(root = json_loadb(r.body.ptr, r.body.len, 0, NULL)) ||
	    (!(tok = jstr(root, "token")) &&
	     !(tok = jstr(root, "access_token"))) ||
	    !*tok) {
		rc = rc_error_set(r.status == 429 ? RC_ERROR : RC_EINVALID,
				  RC_ECLASS_PLATFORM,
				  "the token service %s gave no token for %s "
				  "(HTTP %ld)",
				  realm, scopes, r.status);
		goto done;
	}
	rc_secret_register(tok);
	ttl = (long long)json_integer_value(json_object_get(root, "expires_in"));
	if (ttl <= 0)
		ttl = 60; /* the distribution spec's default */
	token_store(c, ep, scopes, tok,
		    mono_ns() + (ttl * 1000000000LL > 2 * TOKEN_MARGIN_NS
					 ? ttl * 1000000000LL - TOKEN_MARGIN_NS
					 : ttl * 1000000000LL / 2));
	*out = token_cached(c, ep, scopes);
done:
	json_decref(root);
	rc_http_resp_release(&r);
	rc_buf_release(&url);
	if (form.len)
		explicit_bzero(form.ptr, form.len);
	rc_buf_release(&form);
	free_secret(basic);
	free(realm);
	free(service);
	free(user);
	free_secret(pass);
	free_secret(idtok);
	return rc;
}

/* The Authorization line to send for scopes, from what the registry asked
 * for so far (NULL: none yet, or anonymous Basic). */
static int auth_line(rc_oci *c, struct endpoint *ep, const char *scopes,
		     bool fresh, char **out)
{
	char *scheme;
	int rc = 0;

	*out = NULL;
	pthread_mutex_lock(&c->lock);
	scheme = dup_opt(ep->scheme);
	if (scheme && !strcmp(scheme, "basic") && ep->cred.user &&
	    !ep->cred.identity_token)
		*out = basic_header(&ep->cred);
	pthread_mutex_unlock(&c->lock);
	if (scheme && !strcmp(scheme, "bearer")) {
		if (fresh)
			token_forget(c, ep, scopes);
		*out = token_cached(c, ep, scopes);
		if (!*out)
			rc = token_fetch(c, ep, scopes, out);
	}
	free(scheme);
	return rc;
}

/* Learns what a 401 asks for; false when it asks nothing usable. */
static bool learn_challenge(rc_oci *c, struct endpoint *ep,
			    const rc_http_resp *r)
{
	rc_oci_challenge ch;
	bool ok = false;

	if (rc_oci_challenge_parse(&ch, rc_http_resp_header(
						r, "WWW-Authenticate")) < 0) {
		rc_error_clear();
		return false;
	}
	pthread_mutex_lock(&c->lock);
	if (!strcasecmp(ch.scheme, "bearer") && ch.realm) {
		free(ep->scheme);
		free(ep->realm);
		free(ep->service);
		ep->scheme = rc_strdup("bearer");
		ep->realm = rc_strdup(ch.realm);
		ep->service = dup_opt(ch.service);
		ok = true;
	} else if (!strcasecmp(ch.scheme, "basic")) {
		free(ep->scheme);
		ep->scheme = rc_strdup("basic");
		ok = ep->cred.user != NULL;
	}
	pthread_mutex_unlock(&c->lock);
	rc_oci_challenge_release(&ch);
	return ok;
}

/*
 * Sends q (path relative to the endpoint, or q->url) with the
 * Authorization scopes need, and once more with fresh credentials after a
 * 401. Extra header lines in extra (NULL-terminated, up to 6). Returns
 * rc_http_do()'s result; a 401 that stays is returned as a reply.
 */
static int reg_do(rc_oci *c, struct endpoint *ep, const char *scopes,
		  rc_http_req *q, const char *const *extra, rc_http_resp *r)
{
	const char *hdrs[8];
	const char *const *saved = q->headers;
	char *auth = NULL;
	size_t ul = strlen(ep->url);
	int rc, n;
	/* an absolute URL gets the registry's credentials only when it is
	 * on the registry's own origin */
	bool same_host = !q->url || (!strncmp(q->url, ep->url, ul) &&
				     (!q->url[ul] || q->url[ul] == '/'));

	for (int attempt = 0; attempt < 2; attempt++) {
		n = 0;
		if (same_host &&
		    (rc = auth_line(c, ep, scopes, attempt > 0, &auth)) < 0)
			return rc;
		if (auth)
			hdrs[n++] = auth;
		for (int i = 0; extra && extra[i] && n < 7; i++)
			hdrs[n++] = extra[i];
		hdrs[n] = NULL;
		q->headers = hdrs;
		rc = rc_http_do(ep->http, q, r);
		q->headers = saved;
		free_secret(auth);
		auth = NULL;
		if (rc < 0 || r->status != 401 || attempt > 0 || !same_host ||
		    !learn_challenge(c, ep, r))
			return rc;
	}
	return 0;
}

/* ---------------------------------------------------------------- errors */

/*
 * Turns a registry's error reply into a message: what was asked (what:
 * "manifest 'v1'", "blob sha256:..."), the registry, the repository, the
 * status and the registry's own codes and messages.
 */
static int reg_error(rc_oci *c, struct endpoint *ep, const char *repo,
		     const char *what, const rc_http_resp *r)
{
	rc_buf m = RC_BUF_INIT_MAX(16384), codes = RC_BUF_INIT_MAX(8192);
	json_t *root = json_loadb(r->body.ptr, r->body.len, 0, NULL);
	json_t *errs = json_object_get(root, "errors"), *e;
	bool denied = r->status == 401 || r->status == 403,
	     unknown = r->status == 404, many = r->status == 429;
	size_t i;
	int code;

	json_array_foreach(errs, i, e) {
		const char *ec = jstr(e, "code"), *em = jstr(e, "message");

		if (i >= 4)
			break;
		if (ec && (!strcmp(ec, "DENIED") ||
			   !strcmp(ec, "UNAUTHORIZED")))
			denied = true;
		if (ec && (!strcmp(ec, "MANIFEST_UNKNOWN") ||
			   !strcmp(ec, "BLOB_UNKNOWN") ||
			   !strcmp(ec, "NAME_UNKNOWN")))
			unknown = true;
		if (ec && !strcmp(ec, "TOOMANYREQUESTS"))
			many = true;
		rc_buf_printf(&codes, "%s%s%s%s", codes.len ? "; " : "",
			      ec ? ec : "?", em && *em ? ": " : "",
			      em ? em : "");
	}
	if (denied) {
		rc_buf d = RC_BUF_INIT_MAX(4096);

		cred_desc(c, ep, &d);
		code = RC_EAUTH;
		rc_buf_printf(&m, "registry %s denied access to %s of "
				  "repository %s (HTTP %ld",
			      ep->registry, what, repo, r->status);
		if (codes.len)
			rc_buf_printf(&m, ", %s", codes.ptr);
		rc_buf_printf(&m, ") with %s", d.ptr);
		rc_buf_release(&d);
	} else if (unknown) {
		code = RC_ENOTFOUND;
		rc_buf_printf(&m, "registry %s: %s of repository %s is "
				  "unknown (HTTP %ld",
			      ep->registry, what, repo, r->status);
		if (codes.len)
			rc_buf_printf(&m, ", %s", codes.ptr);
		rc_buf_putc(&m, ')');
	} else if (many) {
		code = RC_ERROR;
		rc_buf_printf(&m, "registry %s: too many requests for %s of "
				  "repository %s (HTTP %ld%s%s); try again "
				  "later",
			      ep->registry, what, repo, r->status,
			      codes.len ? ", " : "", codes.ptr);
	} else {
		code = RC_ERROR;
		rc_buf_printf(&m, "registry %s: %s of repository %s: HTTP %ld",
			      ep->registry, what, repo, r->status);
		if (codes.len)
			rc_buf_printf(&m, " (%s)", codes.ptr);
	}
	rc_redact(&m);
	rc_error_set(code, RC_ECLASS_PLATFORM, "%s", m.ptr);
	rc_buf_release(&m);
	rc_buf_release(&codes);
	json_decref(root);
	return code;
}

/* ------------------------------------------------------------- manifests */

static void pull_scope(rc_buf *b, const char *repo)
{
	rc_buf_printf(b, "repository:%s:pull", repo);
}

/* The media type of a Content-Type value, without parameters. */
static char *media_type_of(const char *ct)
{
	size_t n;

	if (!ct)
		return NULL;
	n = strcspn(ct, ";");
	while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	return n ? rc_strndup(ct, n) : NULL;
}

static bool is_index(const char *mt)
{
	return mt && (!strcmp(mt, RC_OCI_MT_OCI_INDEX) ||
		      !strcmp(mt, RC_OCI_MT_DOCKER_LIST));
}

static bool is_image(const char *mt)
{
	return mt && (!strcmp(mt, RC_OCI_MT_OCI_MANIFEST) ||
		      !strcmp(mt, RC_OCI_MT_DOCKER_MANIFEST));
}

struct manifest {
	rc_buf body;
	char *media_type;
	char digest[RC_SHA256_DIGEST_LEN + 1];
};

static void manifest_release(struct manifest *m)
{
	rc_buf_release(&m->body);
	free(m->media_type);
	memset(m, 0, sizeof(*m));
}

/* GETs repo's manifest ref (a tag or a digest) and checks its digest. */
static int manifest_get(rc_oci *c, struct endpoint *ep, const char *repo,
			const char *ref, struct manifest *out)
{
	rc_buf path = RC_BUF_INIT_MAX(8192), scope = RC_BUF_INIT_MAX(8192),
	       what = RC_BUF_INIT_MAX(8192);
	rc_http_req q = {.method = "GET", .max_body = MANIFEST_MAX};
	rc_http_resp r;
	const char *hd;
	json_t *root = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	rc_buf_init(&out->body, MANIFEST_MAX);
	rc_http_resp_init(&r);
	rc_buf_printf(&path, "/v2/%s/manifests/%s", repo, ref);
	pull_scope(&scope, repo);
	rc_buf_printf(&what, "manifest '%s'", ref);
	q.path = path.ptr;
	if ((rc = reg_do(c, ep, scope.ptr, &q, NULL, &r)) < 0) {
		rc_error_prefix("registry %s: repository %s", ep->registry,
				repo);
		goto done;
	}
	if (r.status != 200) {
		rc = reg_error(c, ep, repo, what.ptr, &r);
		goto done;
	}
	rc_codec_sha256_digest(out->digest, r.body.ptr, r.body.len);
	hd = rc_http_resp_header(&r, "Docker-Content-Digest");
	if ((hd && !strncmp(hd, "sha256:", 7) && strcmp(hd, out->digest)) ||
	    (!strncmp(ref, "sha256:", 7) && strcmp(ref, out->digest))) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_PLATFORM,
				  "registry %s: %s of repository %s: the "
				  "bytes' digest %s is not the %s",
				  ep->registry, what.ptr, repo, out->digest,
				  !strncmp(ref, "sha256:", 7)
					  ? "digest asked for"
					  : "Docker-Content-Digest sent");
		goto done;
	}
	root = json_loadb(r.body.ptr, r.body.len, 0, NULL);
	if (!json_is_object(root)) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_PLATFORM,
				  "registry %s: %s of repository %s is not "
				  "JSON", ep->registry, what.ptr, repo);
		goto done;
	}
	/* the body says what it is when the header does not (or says
	 * application/json) */
	out->media_type = media_type_of(
		rc_http_resp_header(&r, "Content-Type"));
	if (!is_index(out->media_type) && !is_image(out->media_type)) {
		const char *mt = jstr(root, "mediaType");

		free(out->media_type);
		out->media_type = mt ? rc_strdup(mt) : NULL;
		if (!out->media_type && json_object_get(root, "manifests"))
			out->media_type = rc_strdup(RC_OCI_MT_OCI_INDEX);
		else if (!out->media_type && json_object_get(root, "config"))
			out->media_type = rc_strdup(RC_OCI_MT_OCI_MANIFEST);
	}
	if (!is_index(out->media_type) && !is_image(out->media_type)) {
		rc = rc_error_set(RC_EUNSUPPORTED, RC_ECLASS_PLATFORM,
				  "registry %s: %s of repository %s has the "
				  "media type '%s', not an image manifest or "
				  "index", ep->registry, what.ptr, repo,
				  out->media_type ? out->media_type : "?");
		goto done;
	}
	rc_buf_put(&out->body, r.body.ptr, r.body.len);
done:
	json_decref(root);
	if (rc < 0)
		manifest_release(out);
	rc_http_resp_release(&r);
	rc_buf_release(&path);
	rc_buf_release(&scope);
	rc_buf_release(&what);
	return rc;
}

static int blob_from_json(rc_oci_blob *b, json_t *d, const char *where)
{
	const char *dg = jstr(d, "digest"), *mt = jstr(d, "mediaType");
	json_t *sz = json_object_get(d, "size");

	if (!dg || !json_is_integer(sz) || json_integer_value(sz) < 0)
		return rc_error_set(RC_EINVALID, RC_ECLASS_PLATFORM,
				    "%s: a descriptor without a digest or "
				    "size", where);
	if (!digest_ok(dg))
		return rc_error_set(RC_EUNSUPPORTED, RC_ECLASS_PLATFORM,
				    "%s: the digest '%s' is not sha256",
				    where, dg);
	b->digest = rc_strdup(dg);
	b->media_type = mt ? rc_strdup(mt) : NULL;
	b->size = (uint64_t)json_integer_value(sz);
	return 0;
}

static void blob_release(rc_oci_blob *b)
{
	free(b->digest);
	free(b->media_type);
	memset(b, 0, sizeof(*b));
}

void rc_oci_image_release(rc_oci_image *img)
{
	if (!img)
		return;
	free(img->digest);
	free(img->media_type);
	free(img->index_digest);
	free(img->index_media_type);
	free(img->platform);
	blob_release(&img->config);
	for (size_t i = 0; i < img->nlayers; i++)
		blob_release(&img->layers[i]);
	free(img->layers);
	free(img->manifest);
	memset(img, 0, sizeof(*img));
}

/* Fills the image's manifest fields from an image manifest. */
static int image_from_manifest(rc_oci_image *img, const struct manifest *m,
			       const char *where)
{
	json_t *root = json_loadb(m->body.ptr, m->body.len, 0, NULL);
	json_t *layers = json_object_get(root, "layers"), *l;
	size_t i;
	int rc;

	img->digest = rc_strdup(m->digest);
	img->media_type = rc_strdup(m->media_type);
	img->size = m->body.len;
	img->manifest = rc_strndup(m->body.ptr, m->body.len);
	img->manifest_len = m->body.len;
	if ((rc = blob_from_json(&img->config,
				 json_object_get(root, "config"), where)) < 0)
		goto done;
	if (!json_is_array(layers)) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_PLATFORM,
				  "%s: an image manifest without layers",
				  where);
		goto done;
	}
	img->layers = rc_calloc(json_array_size(layers) + 1,
				sizeof(*img->layers));
	json_array_foreach(layers, i, l) {
		if ((rc = blob_from_json(&img->layers[i], l, where)) < 0)
			goto done;
		img->nlayers++;
	}
done:
	json_decref(root);
	return rc;
}

static void platform_string(rc_buf *b, json_t *p)
{
	const char *os = jstr(p, "os"), *arch = jstr(p, "architecture"),
		   *var = jstr(p, "variant");

	rc_buf_printf(b, "%s/%s", os ? os : "?", arch ? arch : "?");
	if (var && *var)
		rc_buf_printf(b, "/%s", var);
}

/* The descriptor of the index's manifest for want (the first that
 * matches), as a borrowed JSON object. */
static int index_pick(json_t *root, const rc_oci_platform *want,
		      const char *where, json_t **out)
{
	static const rc_oci_platform amd64 = {"linux", "amd64", NULL};
	json_t *ms = json_object_get(root, "manifests"), *d;
	rc_buf seen = RC_BUF_INIT_MAX(8192);
	size_t i;

	if (!want)
		want = &amd64;
	*out = NULL;
	json_array_foreach(ms, i, d) {
		json_t *p = json_object_get(d, "platform");
		const char *os = jstr(p, "os"), *arch = jstr(p, "architecture"),
			   *var = jstr(p, "variant");

		if ((!want->os || (os && !strcmp(os, want->os))) &&
		    (!want->architecture ||
		     (arch && !strcmp(arch, want->architecture))) &&
		    (!want->variant || (var && !strcmp(var, want->variant)))) {
			*out = d;
			rc_buf_release(&seen);
			return 0;
		}
		if (seen.len)
			rc_buf_puts(&seen, ", ");
		platform_string(&seen, p);
	}
	rc_error_set(RC_ENOTFOUND, RC_ECLASS_PLATFORM,
		     "%s: no manifest for %s/%s%s%s (there are: %s)", where,
		     want->os ? want->os : "*",
		     want->architecture ? want->architecture : "*",
		     want->variant ? "/" : "", want->variant ? want->variant : "",
		     seen.len ? seen.ptr : "none");
	rc_buf_release(&seen);
	return RC_ENOTFOUND;
}

/* Resolves a parsed reference: the top manifest in *top (an index or an
 * image manifest), the image (a platform's when top is an index). */
static int resolve_ref(rc_oci *c, struct endpoint *ep, const rc_oci_ref *ref,
		       const rc_oci_platform *platform, struct manifest *top,
		       rc_oci_image *img)
{
	struct manifest child = {0};
	rc_buf where = RC_BUF_INIT_MAX(8192);
	json_t *root = NULL, *d;
	int rc;

	rc_buf_printf(&where, "registry %s: repository %s", ep->registry,
		      ref->repository);
	if ((rc = manifest_get(c, ep, ref->repository,
			       ref->digest ? ref->digest : ref->tag, top)) < 0)
		goto done;
	if (is_image(top->media_type)) {
		rc = image_from_manifest(img, top, where.ptr);
		goto done;
	}
	root = json_loadb(top->body.ptr, top->body.len, 0, NULL);
	img->index_digest = rc_strdup(top->digest);
	img->index_media_type = rc_strdup(top->media_type);
	img->index_manifests = json_array_size(json_object_get(root, "manifests"));
	if ((rc = index_pick(root, platform, where.ptr, &d)) < 0)
		goto done;
	{
		rc_buf p = RC_BUF_INIT_MAX(256);

		platform_string(&p, json_object_get(d, "platform"));
		img->platform = rc_buf_detach(&p);
	}
	if (!jstr(d, "digest") || !digest_ok(jstr(d, "digest"))) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_PLATFORM,
				  "%s: the index's entry for %s has no sha256 "
				  "digest", where.ptr, img->platform);
		goto done;
	}
	if ((rc = manifest_get(c, ep, ref->repository, jstr(d, "digest"),
			       &child)) < 0)
		goto done;
	if (!is_image(child.media_type)) {
		rc = rc_error_set(RC_EUNSUPPORTED, RC_ECLASS_PLATFORM,
				  "%s: the manifest for %s is a nested index",
				  where.ptr, img->platform);
		goto done;
	}
	rc = image_from_manifest(img, &child, where.ptr);
done:
	manifest_release(&child);
	json_decref(root);
	rc_buf_release(&where);
	return rc;
}

int rc_oci_resolve(rc_oci *c, rc_oci_image *out, const char *ref,
		   const rc_oci_platform *platform)
{
	rc_oci_ref r;
	struct endpoint *ep;
	struct manifest top = {0};
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = rc_oci_ref_parse(&r, ref)) < 0)
		goto done;
	if ((rc = endpoint_get(c, r.registry, &ep)) < 0)
		goto done;
	rc = resolve_ref(c, ep, &r, platform, &top, out);
done:
	manifest_release(&top);
	rc_oci_ref_release(&r);
	return rc;
}

/* ------------------------------------------------------------------ copy */

struct copy {
	rc_oci *c;
	const rc_oci_copy_opts *o;
	rc_oci_copy_stats *st;
	struct endpoint *src, *dst;
	const rc_oci_ref *sref, *dref;
	char *push_scope; /* "repository:dst:pull,push" */
	size_t index, count;
};

static void progress(struct copy *cp, rc_oci_event ev, const char *digest,
		     uint64_t done, uint64_t total)
{
	rc_oci_progress p = {ev, digest, done, total, cp->index, cp->count};

	if (cp->o && cp->o->progress)
		cp->o->progress(cp->o->progress_ctx, &p);
}

/* A download into a file, its digest computed on the way. */
struct spool {
	int fd;
	uint64_t n;
	rc_codec_sha256_stream *sha;
};

static int spool_sink(void *ctx, const void *data, size_t n)
{
	struct spool *s = ctx;
	const char *p = data;
	size_t left = n;

	while (left) {
		ssize_t w = write(s->fd, p, left);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return rc_error_set_os("cannot write the blob to a "
					       "temporary file");
		p += w;
		left -= (size_t)w;
	}
	rc_codec_sha256_update(s->sha, data, n);
	s->n += n;
	return 0;
}

/* An upload from the spool file, with progress. */
struct upload {
	struct copy *cp;
	int fd;
	const char *digest;
	uint64_t size, reported;
};

static int upload_read(void *ctx, uint64_t offset, void *buf, size_t n,
		       size_t *got)
{
	struct upload *u = ctx;
	ssize_t k;

	do
		k = pread(u->fd, buf, n, (off_t)offset);
	while (k < 0 && errno == EINTR);
	if (k < 0)
		return rc_error_set_os("cannot read the spooled blob %s",
				       u->digest);
	*got = (size_t)k;
	if (offset + (uint64_t)k >= u->reported + PROGRESS_STEP ||
	    offset + (uint64_t)k == u->size) {
		u->reported = offset + (uint64_t)k;
		progress(u->cp, RC_OCI_BLOB_BYTES, u->digest, u->reported,
			 u->size);
	}
	return 0;
}

static int open_spool(rc_oci *c)
{
	const char *dir = c->tmp_dir ? c->tmp_dir : getenv("TMPDIR");
	rc_buf t = RC_BUF_INIT_MAX(4096);
	int fd;

	if (!dir || !*dir)
		dir = "/tmp";
	rc_buf_printf(&t, "%s/reconcile-blob-XXXXXX", dir);
	fd = mkstemp(t.ptr);
	if (fd < 0) {
		rc_error_set_os("cannot make a temporary file in '%s'", dir);
	} else {
		unlink(t.ptr);
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	rc_buf_release(&t);
	return fd;
}

/* The URL of an upload's Location (absolute, or a path on dst). */
static void location_url(const struct endpoint *ep, const char *loc,
			 rc_buf *out)
{
	if (!strncmp(loc, "http://", 7) || !strncmp(loc, "https://", 8))
		rc_buf_puts(out, loc);
	else
		rc_buf_printf(out, "%s%s%s", ep->url, loc[0] == '/' ? "" : "/",
			      loc);
}

/* Starts an upload on dst (a POST, with a mount query or not). Returns
 * 1 when the blob was mounted, 0 with the session's URL in *loc. */
static int upload_start(struct copy *cp, const rc_oci_blob *b, bool mount,
			rc_buf *loc)
{
	rc_buf path = RC_BUF_INIT_MAX(8192), scopes = RC_BUF_INIT_MAX(8192);
	rc_http_req q = {.method = "POST", .idempotent = true};
	rc_http_resp r;
	const char *l;
	int rc;

	rc_http_resp_init(&r);
	rc_buf_printf(&path, "/v2/%s/blobs/uploads/", cp->dref->repository);
	rc_buf_puts(&scopes, cp->push_scope);
	if (mount) {
		rc_http_query_add(&path, "mount", b->digest);
		rc_http_query_add(&path, "from", cp->sref->repository);
		rc_buf_putc(&scopes, ' ');
		pull_scope(&scopes, cp->sref->repository);
	}
	q.path = path.ptr;
	if ((rc = reg_do(cp->c, cp->dst, scopes.ptr, &q, NULL, &r)) < 0) {
		rc_error_prefix("registry %s: repository %s: blob %s",
				cp->dst->registry, cp->dref->repository,
				b->digest);
		goto done;
	}
	if (mount && r.status == 201) {
		rc = 1;
		goto done;
	}
	if (r.status != 202 || !(l = rc_http_resp_header(&r, "Location"))) {
		rc_buf w = RC_BUF_INIT_MAX(256);

		rc_buf_printf(&w, "an upload of blob %s", b->digest);
		rc = reg_error(cp->c, cp->dst, cp->dref->repository, w.ptr, &r);
		rc_buf_release(&w);
		goto done;
	}
	location_url(cp->dst, l, loc);
done:
	rc_http_resp_release(&r);
	rc_buf_release(&path);
	rc_buf_release(&scopes);
	return rc;
}

/* Downloads blob b from the source into fd; checks its size and digest. */
static int blob_download(struct copy *cp, const rc_oci_blob *b, int fd)
{
	rc_buf path = RC_BUF_INIT_MAX(8192), scope = RC_BUF_INIT_MAX(8192);
	struct spool s = {fd, 0, rc_codec_sha256_begin()};
	rc_http_req q = {.method = "GET",
			 .follow_redirects = true,
			 .sink = spool_sink,
			 .sink_ctx = &s,
			 .max_body = ERROR_BODY_MAX,
			 .timeout_ms = cp->c->blob_timeout_ms};
	rc_http_resp r;
	char got[RC_SHA256_DIGEST_LEN + 1];
	int rc;

	rc_http_resp_init(&r);
	rc_buf_printf(&path, "/v2/%s/blobs/%s", cp->sref->repository,
		      b->digest);
	pull_scope(&scope, cp->sref->repository);
	q.path = path.ptr;
	rc = reg_do(cp->c, cp->src, scope.ptr, &q, NULL, &r);
	if (rc < 0) {
		rc_error_prefix("registry %s: repository %s: blob %s",
				cp->src->registry, cp->sref->repository,
				b->digest);
		goto done;
	}
	if (r.status != 200) {
		rc_buf w = RC_BUF_INIT_MAX(256);

		rc_buf_printf(&w, "blob %s", b->digest);
		rc = reg_error(cp->c, cp->src, cp->sref->repository, w.ptr, &r);
		rc_buf_release(&w);
		goto done;
	}
	rc_codec_sha256_end(s.sha, got);
	s.sha = NULL;
	if (s.n != b->size || strcmp(got, b->digest)) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_PLATFORM,
				  "registry %s: repository %s: blob %s came "
				  "with %llu bytes of digest %s, not the %llu "
				  "bytes the manifest says",
				  cp->src->registry, cp->sref->repository,
				  b->digest, (unsigned long long)s.n, got,
				  (unsigned long long)b->size);
	}
done:
	rc_codec_sha256_abort(s.sha);
	rc_http_resp_release(&r);
	rc_buf_release(&path);
	rc_buf_release(&scope);
	return rc;
}

/* Whether dst has blob b: 1 yes, 0 no. */
static int blob_exists(struct copy *cp, const rc_oci_blob *b)
{
	rc_buf path = RC_BUF_INIT_MAX(8192);
	rc_http_req q = {.method = "HEAD", .follow_redirects = true};
	rc_http_resp r;
	int rc;

	rc_http_resp_init(&r);
	rc_buf_printf(&path, "/v2/%s/blobs/%s", cp->dref->repository,
		      b->digest);
	q.path = path.ptr;
	rc = reg_do(cp->c, cp->dst, cp->push_scope, &q, NULL, &r);
	if (rc < 0) {
		rc_error_prefix("registry %s: repository %s: blob %s",
				cp->dst->registry, cp->dref->repository,
				b->digest);
	} else if (r.status == 200) {
		rc = 1;
	} else if (r.status != 404) {
		rc_buf w = RC_BUF_INIT_MAX(256);

		rc_buf_printf(&w, "blob %s", b->digest);
		rc = reg_error(cp->c, cp->dst, cp->dref->repository, w.ptr, &r);
		rc_buf_release(&w);
	}
	rc_http_resp_release(&r);
	rc_buf_release(&path);
	return rc;
}

static int blob_copy(struct copy *cp, const rc_oci_blob *b)
{
	rc_buf loc = RC_BUF_INIT_MAX(1 << 16);
	rc_http_resp r;
	struct upload u = {cp, -1, b->digest, b->size, 0};
	rc_http_req q = {.method = "PUT",
			 .content_type = "application/octet-stream",
			 .timeout_ms = cp->c->blob_timeout_ms,
			 .body_read = upload_read,
			 .body_read_ctx = &u,
			 .body_fd = -1};
	bool same = !strcmp(cp->src->registry, cp->dst->registry) &&
		    strcmp(cp->sref->repository, cp->dref->repository);
	int rc;

	rc_http_resp_init(&r);
	cp->index++;
	progress(cp, RC_OCI_BLOB_START, b->digest, 0, b->size);
	if ((rc = blob_exists(cp, b)) < 0)
		goto done;
	if (rc == 1) {
		cp->st->blobs_skipped++;
		progress(cp, RC_OCI_BLOB_SKIPPED, b->digest, b->size, b->size);
		rc = 0;
		goto done;
	}
	if ((rc = upload_start(cp, b, same, &loc)) < 0)
		goto done;
	if (rc == 1) {
		cp->st->blobs_mounted++;
		progress(cp, RC_OCI_BLOB_MOUNTED, b->digest, b->size, b->size);
		rc = 0;
		goto done;
	}
	if ((u.fd = open_spool(cp->c)) < 0) {
		rc = RC_ERROR;
		goto done;
	}
	if ((rc = blob_download(cp, b, u.fd)) < 0)
		goto done;
	rc_http_query_add(&loc, "digest", b->digest);
	q.url = loc.ptr;
	q.body_size = b->size;
	if (!b->size) {
		q.body_read = NULL;
		q.body = "";
	}
	rc = reg_do(cp->c, cp->dst, cp->push_scope, &q, NULL, &r);
	if (rc < 0) {
		rc_error_prefix("registry %s: repository %s: upload of blob %s",
				cp->dst->registry, cp->dref->repository,
				b->digest);
		goto done;
	}
	if (r.status != 201) {
		rc_buf w = RC_BUF_INIT_MAX(256);

		rc_buf_printf(&w, "the upload of blob %s", b->digest);
		rc = reg_error(cp->c, cp->dst, cp->dref->repository, w.ptr, &r);
		rc_buf_release(&w);
		goto done;
	}
	cp->st->blobs_copied++;
	cp->st->bytes_copied += b->size;
	progress(cp, RC_OCI_BLOB_DONE, b->digest, b->size, b->size);
done:
	if (u.fd >= 0)
		close(u.fd);
	rc_http_resp_release(&r);
	rc_buf_release(&loc);
	return rc;
}

/* Puts manifest m under ref (a tag or digest) on dst, unless dst already
 * has it there. */
static int manifest_put(struct copy *cp, const struct manifest *m,
			const char *ref)
{
	rc_buf path = RC_BUF_INIT_MAX(8192), w = RC_BUF_INIT_MAX(8192);
	rc_http_req q = {.method = "HEAD"};
	rc_http_resp r;
	const char *hd;
	int rc;

	rc_http_resp_init(&r);
	rc_buf_printf(&path, "/v2/%s/manifests/%s", cp->dref->repository, ref);
	rc_buf_printf(&w, "manifest '%s'", ref);
	q.path = path.ptr;
	rc = reg_do(cp->c, cp->dst, cp->push_scope, &q, NULL, &r);
	if (rc < 0)
		goto fail;
	if (r.status == 200 &&
	    (hd = rc_http_resp_header(&r, "Docker-Content-Digest")) &&
	    !strcmp(hd, m->digest)) {
		cp->st->manifests_skipped++;
		progress(cp, RC_OCI_MANIFEST_DONE, m->digest, m->body.len,
			 m->body.len);
		goto done;
	}
	q.method = "PUT";
	q.content_type = m->media_type;
	q.body = m->body.ptr;
	q.body_len = m->body.len;
	rc = reg_do(cp->c, cp->dst, cp->push_scope, &q, NULL, &r);
	if (rc < 0)
		goto fail;
	if (r.status != 201 && r.status != 200) {
		rc = reg_error(cp->c, cp->dst, cp->dref->repository, w.ptr, &r);
		goto done;
	}
	hd = rc_http_resp_header(&r, "Docker-Content-Digest");
	if (hd && strcmp(hd, m->digest)) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_PLATFORM,
				  "registry %s: repository %s: %s was stored "
				  "as %s, not %s", cp->dst->registry,
				  cp->dref->repository, w.ptr, hd, m->digest);
		goto done;
	}
	cp->st->manifests_put++;
	progress(cp, RC_OCI_MANIFEST_DONE, m->digest, m->body.len, m->body.len);
	goto done;
fail:
	rc_error_prefix("registry %s: repository %s: %s", cp->dst->registry,
			cp->dref->repository, w.ptr);
done:
	rc_http_resp_release(&r);
	rc_buf_release(&path);
	rc_buf_release(&w);
	return rc;
}

/* Copies the blobs of an image manifest and puts it under ref. */
static int image_copy(struct copy *cp, const rc_oci_image *img,
		      const struct manifest *m, const char *ref)
{
	int rc;

	cp->count += 1 + img->nlayers;
	if ((rc = blob_copy(cp, &img->config)) < 0)
		return rc;
	for (size_t i = 0; i < img->nlayers; i++)
		if ((rc = blob_copy(cp, &img->layers[i])) < 0)
			return rc;
	return manifest_put(cp, m, ref);
}

/* every manifest an index lists, by digest, then the index under ref */
static int index_copy(struct copy *cp, const struct manifest *top,
		      const char *ref)
{
	json_t *root = json_loadb(top->body.ptr, top->body.len, 0, NULL);
	json_t *d;
	size_t i;
	int rc = 0;

	json_array_foreach(json_object_get(root, "manifests"), i, d) {
		struct manifest m = {0};
		rc_oci_image img = {0};
		const char *dg = jstr(d, "digest");
		rc_buf where = RC_BUF_INIT_MAX(8192);

		rc_buf_printf(&where, "registry %s: repository %s",
			      cp->src->registry, cp->sref->repository);
		if (!dg || !digest_ok(dg))
			rc = rc_error_set(RC_EINVALID, RC_ECLASS_PLATFORM,
					  "%s: an index entry without a "
					  "sha256 digest", where.ptr);
		if (rc == 0)
			rc = manifest_get(cp->c, cp->src, cp->sref->repository,
					  dg, &m);
		if (rc == 0 && !is_image(m.media_type))
			rc = rc_error_set(RC_EUNSUPPORTED, RC_ECLASS_PLATFORM,
					  "%s: manifest %s is a nested index",
					  where.ptr, dg);
		if (rc == 0)
			rc = image_from_manifest(&img, &m, where.ptr);
		if (rc == 0)
			rc = image_copy(cp, &img, &m, dg);
		rc_oci_image_release(&img);
		manifest_release(&m);
		rc_buf_release(&where);
		if (rc < 0)
			goto done;
	}
	rc = manifest_put(cp, top, ref);
done:
	json_decref(root);
	return rc;
}

int rc_oci_copy(rc_oci *c, const char *src, const char *dst,
		const rc_oci_copy_opts *o, rc_oci_image *image,
		rc_oci_copy_stats *stats)
{
	rc_oci_ref sref = {0}, dref = {0};
	rc_oci_copy_stats st0;
	rc_oci_image img = {0};
	struct manifest top = {0}, chosen = {0};
	struct copy cp = {0};
	rc_buf scope = RC_BUF_INIT_MAX(8192);
	const char *ref;
	long long t0 = mono_ns();
	int rc;

	if (image)
		memset(image, 0, sizeof(*image));
	if (!stats)
		stats = &st0;
	memset(stats, 0, sizeof(*stats));
	cp.c = c;
	cp.o = o;
	cp.st = stats;
	cp.sref = &sref;
	cp.dref = &dref;
	if ((rc = rc_oci_ref_parse(&sref, src)) < 0 ||
	    (rc = rc_oci_ref_parse(&dref, dst)) < 0)
		goto done;
	if ((rc = endpoint_get(c, sref.registry, &cp.src)) < 0 ||
	    (rc = endpoint_get(c, dref.registry, &cp.dst)) < 0)
		goto done;
	rc_buf_printf(&scope, "repository:%s:pull,push", dref.repository);
	cp.push_scope = scope.ptr;
	if ((rc = resolve_ref(c, cp.src, &sref, o ? o->platform : NULL, &top,
			      &img)) < 0)
		goto done;
	if (img.index_digest && o && o->all_platforms) {
		ref = dref.tag ? dref.tag : dref.digest;
		if (dref.digest && strcmp(dref.digest, top.digest)) {
			rc = rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
					  "cannot copy %s to %s: the index's "
					  "digest is %s", src, dst, top.digest);
			goto done;
		}
		rc = index_copy(&cp, &top, ref);
		goto done;
	}
	if (dref.digest && strcmp(dref.digest, img.digest)) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
				  "cannot copy %s to %s: the manifest's "
				  "digest is %s", src, dst, img.digest);
		goto done;
	}
	ref = dref.tag ? dref.tag : dref.digest;
	chosen.body.ptr = img.manifest;
	chosen.body.len = img.manifest_len;
	chosen.media_type = img.media_type;
	memcpy(chosen.digest, img.digest, sizeof(chosen.digest));
	rc = image_copy(&cp, &img, &chosen, ref);
done:
	stats->elapsed_ms = (long)((mono_ns() - t0) / 1000000LL);
	if (rc == 0 && image) {
		*image = img;
		memset(&img, 0, sizeof(img));
	}
	rc_oci_image_release(&img);
	manifest_release(&top);
	rc_buf_release(&scope);
	rc_oci_ref_release(&sref);
	rc_oci_ref_release(&dref);
	return rc;
}
