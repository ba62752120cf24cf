/*
 * Kubernetes connections from kubeconfig files or from inside a cluster
 * (see drivers/kube_config.h and docs/drivers/kubernetes-auth.md).
 *
 * Files are parsed with schema/node.h, whose nodes keep their line and
 * column, so an error points at the value at fault. A merged view of
 * several files is never built: a name is looked up in file order and the
 * first file that has it wins, which is kubectl's merge for the three
 * maps a connection needs.
 */
#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/codec.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "reconciler/base/rctime.h"
#include "schema/diag.h"
#include "schema/node.h"
#include "drivers/kube_config.h"
#include "drivers/proc.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include <jansson.h>

extern char **environ;

#define TOKEN_FILE_MAX ((size_t)1 << 20)
#define PEM_FILE_MAX ((size_t)1 << 20)
#define EXEC_OUT_MAX ((size_t)1 << 20)
#define EXEC_ERR_KEEP 2048
/* A plugin's credential is used until this long before its expiry. */
#define EXEC_EXPIRY_MARGIN_S 10

static const char v1[] = "client.authentication.k8s.io/v1";
static const char v1beta1[] = "client.authentication.k8s.io/v1beta1";

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

static void free_strv(char **v, bool secret)
{
	for (size_t i = 0; v && v[i]; i++) {
		if (secret)
			free_secret(v[i]);
		else
			free(v[i]);
	}
	free(v);
}

/* ----------------------------------------------------------------- files */

struct kfile {
	char *path;    /* as listed */
	char *display; /* for messages; also the name in node locations */
	char *dir;     /* absolute: relative paths inside start here */
	rc_node *root; /* a map, or NULL for an empty file */
};

struct loader {
	struct kfile *files;
	size_t n, cap;
	rc_diags diags;
	char *source; /* "kubeconfig a:b" */
};

static void loader_release(struct loader *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->files[i].path);
		free(l->files[i].display);
		free(l->files[i].dir);
		rc_node_free(l->files[i].root);
	}
	free(l->files);
	free(l->source);
	rc_diags_release(&l->diags);
}

/* The error for node n of file f: "kubeconfig FILE:LINE:COL: ...". */
static int err_at(const struct kfile *f, const rc_node *n, int code,
		  const char *fmt, ...) RC_PRINTF(4, 5);
static int err_at(const struct kfile *f, const rc_node *n, int code,
		  const char *fmt, ...)
{
	rc_buf m = RC_BUF_INIT_MAX(8192);
	va_list ap;

	rc_buf_printf(&m, "kubeconfig %s", f->display);
	if (n && n->loc.line)
		rc_buf_printf(&m, ":%d:%d", n->loc.line, n->loc.col);
	rc_buf_puts(&m, ": ");
	va_start(ap, fmt);
	rc_buf_vprintf(&m, fmt, ap);
	va_end(ap);
	rc_redact(&m);
	rc_error_set(code, RC_ECLASS_CONFIG, "%s", m.ptr);
	rc_buf_release(&m);
	return code;
}

static char *abs_dir(const char *path)
{
	rc_buf b = RC_BUF_INIT_MAX(PATH_MAX * 2);
	const char *slash = strrchr(path, '/');
	char cwd[PATH_MAX];

	if (path[0] != '/') {
		if (!getcwd(cwd, sizeof(cwd)))
			rc_buf_putc(&b, '.');
		else
			rc_buf_puts(&b, cwd);
		if (slash)
			rc_buf_putc(&b, '/');
	}
	if (slash)
		rc_buf_put(&b, path,
			   slash == path ? 1 : (size_t)(slash - path));
	return rc_buf_detach(&b);
}

/* A path from file f: absolute as is, else from f's directory. */
static char *resolve(const struct kfile *f, const char *p)
{
	rc_buf b = RC_BUF_INIT_MAX(PATH_MAX * 2);

	if (p[0] == '/')
		return rc_strdup(p);
	rc_buf_printf(&b, "%s/%s", strcmp(f->dir, "/") ? f->dir : "", p);
	return rc_buf_detach(&b);
}

/* Checks one list (clusters, users, contexts) of a file: a sequence of
 * maps with a name. */
static int check_list(const struct kfile *f, const char *list)
{
	const rc_node *seq = rc_node_get(f->root, list);

	if (!seq || rc_node_is_null(seq))
		return 0;
	if (seq->kind != RC_NODE_SEQ)
		return err_at(f, seq, RC_EINVALID, "%s must be a list", list);
	for (size_t i = 0; i < seq->n; i++) {
		const rc_node *e = seq->vals[i], *name;

		if (e->kind != RC_NODE_MAP)
			return err_at(f, e, RC_EINVALID,
				      "%s[%zu] must be a map with a name", list,
				      i);
		name = rc_node_get(e, "name");
		if (!name || name->kind != RC_NODE_SCALAR ||
		    rc_node_is_null(name) || !name->len)
			return err_at(f, name ? name : e, RC_EINVALID,
				      "%s[%zu] has no name", list, i);
	}
	return 0;
}

/* Adds path to the loader; a missing file is skipped (*found false). */
static int load_file(struct loader *l, const char *path, bool *found)
{
	rc_buf text = RC_BUF_INIT;
	rc_node **docs = NULL;
	size_t ndocs = 0, i;
	struct kfile *f;
	const char *name;
	int rc;

	*found = false;
	for (i = 0; i < l->n; i++)
		if (!strcmp(l->files[i].path, path))
			return 0; /* listed twice: the first counts */
	if (access(path, F_OK) < 0 && errno == ENOENT)
		return 0;
	*found = true;
	rc = rc_local_read_file(path, RC_YAML_MAX_FILE_SIZE, &text);
	if (rc < 0) {
		char *disp = rc_local_display_path(path);

		rc_buf_release(&text);
		rc_error_prefix("kubeconfig %s", disp);
		free(disp);
		return rc;
	}
	RC_GROW(l->files, l->cap, l->n + 1);
	f = &l->files[l->n++];
	memset(f, 0, sizeof(*f));
	f->path = rc_strdup(path);
	f->display = rc_local_display_path(path);
	f->dir = abs_dir(path);
	name = rc_diags_add_source(&l->diags, f->display,
				   rc_strndup(text.ptr, text.len), text.len);
	rc = rc_yaml_parse(&docs, &ndocs, name, text.ptr, text.len, &l->diags);
	rc_buf_release(&text);
	if (rc < 0 || l->diags.nerrors) {
		/* the first problem, without the source line: a kubeconfig
		 * holds keys and tokens */
		const rc_diag *d = NULL;

		for (i = 0; i < l->diags.n && !d; i++)
			if (l->diags.items[i].severity == RC_DIAG_ERROR)
				d = &l->diags.items[i];
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_YAML,
				  "kubeconfig %s:%d:%d: %s", f->display,
				  d ? d->loc.line : 0, d ? d->loc.col : 0,
				  d ? d->message : "not valid YAML");
		goto done;
	}
	if (ndocs > 1) {
		rc = err_at(f, docs[1], RC_EINVALID,
			    "more than one YAML document");
		goto done;
	}
	if (ndocs == 1 && docs[0]) {
		if (docs[0]->kind != RC_NODE_MAP) {
			rc = err_at(f, docs[0], RC_EINVALID,
				    "a kubeconfig must be a map");
			goto done;
		}
		f->root = docs[0];
		docs[0] = NULL;
	}
	if (f->root && ((rc = check_list(f, "clusters")) < 0 ||
			(rc = check_list(f, "users")) < 0 ||
			(rc = check_list(f, "contexts")) < 0))
		goto done;
	rc = 0;
done:
	for (i = 0; i < ndocs; i++)
		rc_node_free(docs[i]);
	free(docs);
	return rc;
}

/* The entry of list named name, first file first; its file in *file. */
static const rc_node *find_entry(const struct loader *l, const char *list,
				 const char *name, const struct kfile **file)
{
	for (size_t i = 0; i < l->n; i++) {
		const rc_node *seq = rc_node_get(l->files[i].root, list);

		if (!l->files[i].root || !seq || seq->kind != RC_NODE_SEQ)
			continue;
		for (size_t j = 0; j < seq->n; j++) {
			const rc_node *nm = rc_node_get(seq->vals[j], "name");

			if (!strcmp(nm->str, name)) {
				*file = &l->files[i];
				return seq->vals[j];
			}
		}
	}
	return NULL;
}

/* "a, b, c": the names of a list over every file, each once. */
static void list_names(const struct loader *l, const char *list, rc_buf *out)
{
	bool any = false;

	for (size_t i = 0; i < l->n; i++) {
		const rc_node *seq = rc_node_get(l->files[i].root, list);

		if (!l->files[i].root || !seq || seq->kind != RC_NODE_SEQ)
			continue;
		for (size_t j = 0; j < seq->n; j++) {
			const char *nm = rc_node_get(seq->vals[j], "name")->str;
			const rc_node *first;
			const struct kfile *ff;

			first = find_entry(l, list, nm, &ff);
			if (first != seq->vals[j])
				continue;
			rc_buf_printf(out, "%s%s", any ? ", " : "", nm);
			any = true;
		}
	}
	if (!any)
		rc_buf_puts(out, "none");
}

/* A string field of map m: *out new, or NULL when absent or null. */
static int get_str(const struct kfile *f, const rc_node *m, const char *key,
		   const char *what, char **out)
{
	const rc_node *v = m ? rc_node_get(m, key) : NULL;

	*out = NULL;
	if (!v || rc_node_is_null(v))
		return 0;
	if (v->kind != RC_NODE_SCALAR)
		return err_at(f, v, RC_EINVALID, "%s: %s must be a string",
			      what, key);
	*out = rc_strndup(v->str, v->len);
	return 0;
}

static int get_bool(const struct kfile *f, const rc_node *m, const char *key,
		    const char *what, bool *out)
{
	const rc_node *v = m ? rc_node_get(m, key) : NULL;

	*out = false;
	if (!v || rc_node_is_null(v))
		return 0;
	if (v->kind != RC_NODE_SCALAR ||
	    rc_node_scalar_type(v) != RC_SCALAR_BOOL)
		return err_at(f, v, RC_EINVALID, "%s: %s must be true or false",
			      what, key);
	*out = !strcasecmp(v->str, "true");
	return 0;
}

/* A *-data field: base64 of PEM, decoded into *out. */
static int get_data(const struct kfile *f, const rc_node *m, const char *key,
		    const char *what, bool secret, char **out)
{
	const rc_node *v = m ? rc_node_get(m, key) : NULL;
	rc_buf dec = RC_BUF_INIT_MAX(PEM_FILE_MAX);
	int rc;

	*out = NULL;
	if (!v || rc_node_is_null(v))
		return 0;
	if (v->kind != RC_NODE_SCALAR)
		return err_at(f, v, RC_EINVALID, "%s: %s must be a string",
			      what, key);
	if (secret)
		rc_secret_register(v->str);
	/* kubectl reads these as Go's base64; people paste them wrapped */
	if (rc_codec_base64_decode(&dec, v->str, strlen(v->str),
				   RC_BASE64_LAX) < 0 ||
	    !dec.len) {
		rc_buf_release(&dec);
		return err_at(f, v, RC_EINVALID, "%s: %s is not valid base64",
			      what, key);
	}
	if (!strstr(dec.ptr, "-----BEGIN ")) {
		rc = err_at(f, v, RC_EINVALID,
			    "%s: %s does not hold PEM data (-----BEGIN ...)",
			    what, key);
		if (secret)
			explicit_bzero(dec.ptr, dec.len);
		rc_buf_release(&dec);
		return rc;
	}
	if (secret)
		rc_secret_register(dec.ptr);
	*out = rc_buf_detach(&dec);
	return 0;
}

/* A file field: resolved from the kubeconfig's directory and readable. */
static int get_path(const struct kfile *f, const rc_node *m, const char *key,
		    const char *what, char **out)
{
	const rc_node *v;
	char *raw;
	int rc;

	if ((rc = get_str(f, m, key, what, &raw)) < 0 || !raw)
		return rc;
	free(raw);
	v = rc_node_get(m, key);
	*out = resolve(f, v->str);
	if (access(*out, R_OK) < 0) {
		int e = errno;

		rc = err_at(f, v, e == ENOENT ? RC_ENOTFOUND : RC_ERROR,
			    "%s: cannot read %s '%s': %s", what, key, *out,
			    strerror(e));
		free(*out);
		*out = NULL;
		return rc;
	}
	return 0;
}

/* ---------------------------------------------------------------- pieces */

static int load_cluster(rc_kube_conn *c, const struct kfile *f,
			const rc_node *entry)
{
	const rc_node *m = rc_node_get(entry, "cluster");
	rc_buf what = RC_BUF_INIT_MAX(1024);
	int rc;

	rc_buf_printf(&what, "cluster \"%s\"", c->cluster_name);
	if (m && m->kind != RC_NODE_MAP) {
		rc = err_at(f, m, RC_EINVALID, "%s: cluster must be a map",
			    what.ptr);
		goto done;
	}
	if ((rc = get_str(f, m, "server", what.ptr, &c->server)) < 0 ||
	    (rc = get_path(f, m, "certificate-authority", what.ptr,
			   &c->ca_file)) < 0 ||
	    (rc = get_data(f, m, "certificate-authority-data", what.ptr, false,
			   &c->ca_pem)) < 0 ||
	    (rc = get_bool(f, m, "insecure-skip-tls-verify", what.ptr,
			   &c->insecure)) < 0 ||
	    (rc = get_str(f, m, "tls-server-name", what.ptr,
			  &c->tls_server_name)) < 0 ||
	    (rc = get_str(f, m, "proxy-url", what.ptr, &c->proxy_url)) < 0)
		goto done;
	if (!c->server || !*c->server) {
		rc = err_at(f, m ? m : entry, RC_EINVALID, "%s has no server",
			    what.ptr);
		goto done;
	}
	if (c->ca_file && c->ca_pem) {
		rc = err_at(f, rc_node_get(m, "certificate-authority-data"),
			    RC_EINVALID,
			    "%s: both certificate-authority and "
			    "certificate-authority-data are set",
			    what.ptr);
		goto done;
	}
	if (c->insecure && (c->ca_file || c->ca_pem)) {
		rc = err_at(f, rc_node_get(m, "insecure-skip-tls-verify"),
			    RC_EINVALID,
			    "%s: insecure-skip-tls-verify with a certificate "
			    "authority: choose one",
			    what.ptr);
		goto done;
	}
done:
	rc_buf_release(&what);
	return rc;
}

static int load_exec(rc_kube_conn *c, const struct kfile *f,
		     const rc_node *m, const char *what)
{
	rc_kube_exec *x;
	const rc_node *args = rc_node_get(m, "args");
	const rc_node *env = rc_node_get(m, "env");
	const rc_node *api = rc_node_get(m, "apiVersion");
	char *command = NULL;
	size_t n = 0;
	int rc;

	if (m->kind != RC_NODE_MAP)
		return err_at(f, m, RC_EINVALID, "%s: exec must be a map",
			      what);
	x = rc_calloc(1, sizeof(*x));
	c->exec = x;
	if ((rc = get_str(f, m, "apiVersion", what, &x->api_version)) < 0 ||
	    (rc = get_str(f, m, "command", what, &command)) < 0 ||
	    (rc = get_str(f, m, "interactiveMode", what,
			  &x->interactive_mode)) < 0 ||
	    (rc = get_str(f, m, "installHint", what, &x->install_hint)) < 0 ||
	    (rc = get_bool(f, m, "provideClusterInfo", what,
			   &x->provide_cluster_info)) < 0)
		goto done;
	if (!x->api_version) {
		rc = err_at(f, m, RC_EINVALID, "%s: exec has no apiVersion",
			    what);
		goto done;
	}
	if (strcmp(x->api_version, v1) && strcmp(x->api_version, v1beta1)) {
		rc = err_at(f, api, RC_EUNSUPPORTED,
			    "%s: exec apiVersion '%s' is not supported (use "
			    "%s or %s)",
			    what, x->api_version, v1, v1beta1);
		goto done;
	}
	if (!command || !*command) {
		rc = err_at(f, m, RC_EINVALID, "%s: exec has no command", what);
		goto done;
	}
	if (x->interactive_mode && strcmp(x->interactive_mode, "Never") &&
	    strcmp(x->interactive_mode, "IfAvailable") &&
	    strcmp(x->interactive_mode, "Always")) {
		rc = err_at(f, rc_node_get(m, "interactiveMode"), RC_EINVALID,
			    "%s: exec interactiveMode must be Never, "
			    "IfAvailable or Always",
			    what);
		goto done;
	}
	if (!strcmp(x->api_version, v1) && !x->interactive_mode) {
		rc = err_at(f, m, RC_EINVALID,
			    "%s: exec interactiveMode must be set for %s",
			    what, v1);
		goto done;
	}
	if (args && !rc_node_is_null(args) && args->kind != RC_NODE_SEQ) {
		rc = err_at(f, args, RC_EINVALID,
			    "%s: exec args must be a list", what);
		goto done;
	}
	x->argv = rc_calloc((args && args->kind == RC_NODE_SEQ ? args->n : 0) +
				    2,
			    sizeof(char *));
	/* a command with a slash is a path, relative to the kubeconfig */
	x->argv[n++] = strchr(command, '/') ? resolve(f, command)
					    : rc_strdup(command);
	for (size_t i = 0; args && args->kind == RC_NODE_SEQ && i < args->n;
	     i++) {
		if (args->vals[i]->kind != RC_NODE_SCALAR) {
			rc = err_at(f, args->vals[i], RC_EINVALID,
				    "%s: exec args must be strings", what);
			goto done;
		}
		x->argv[n++] = rc_strdup(args->vals[i]->str);
	}
	if (env && !rc_node_is_null(env) && env->kind != RC_NODE_SEQ) {
		rc = err_at(f, env, RC_EINVALID,
			    "%s: exec env must be a list of name and value",
			    what);
		goto done;
	}
	n = 0;
	x->env = rc_calloc((env && env->kind == RC_NODE_SEQ ? env->n : 0) + 1,
			   sizeof(char *));
	for (size_t i = 0; env && env->kind == RC_NODE_SEQ && i < env->n; i++) {
		char *name = NULL, *value = NULL;
		rc_buf b = RC_BUF_INIT_MAX(1 << 20);

		if (env->vals[i]->kind != RC_NODE_MAP) {
			rc = err_at(f, env->vals[i], RC_EINVALID,
				    "%s: exec env entries need a name and a "
				    "value",
				    what);
			goto done;
		}
		if ((rc = get_str(f, env->vals[i], "name", what, &name)) < 0 ||
		    (rc = get_str(f, env->vals[i], "value", what, &value)) <
			    0 ||
		    !name || !*name || strchr(name, '=')) {
			if (rc == 0)
				rc = err_at(f, env->vals[i], RC_EINVALID,
					    "%s: exec env entries need a "
					    "name (without '=')",
					    what);
			free(name);
			free(value);
			goto done;
		}
		rc_buf_printf(&b, "%s=%s", name, value ? value : "");
		x->env[n++] = rc_buf_detach(&b);
		free(name);
		free_secret(value);
	}
	rc = 0;
done:
	free(command);
	return rc;
}

static int load_user(rc_kube_conn *c, const struct kfile *f,
		     const rc_node *entry)
{
	const rc_node *m = rc_node_get(entry, "user");
	const rc_node *exec;
	rc_buf what = RC_BUF_INIT_MAX(1024);
	int rc;

	rc_buf_printf(&what, "user \"%s\"", c->user_name);
	if (m && rc_node_is_null(m))
		m = NULL;
	if (m && m->kind != RC_NODE_MAP) {
		rc = err_at(f, m, RC_EINVALID, "%s: user must be a map",
			    what.ptr);
		goto done;
	}
	if ((rc = get_path(f, m, "client-certificate", what.ptr,
			   &c->cert_file)) < 0 ||
	    (rc = get_data(f, m, "client-certificate-data", what.ptr, false,
			   &c->cert_pem)) < 0 ||
	    (rc = get_path(f, m, "client-key", what.ptr, &c->key_file)) < 0 ||
	    (rc = get_data(f, m, "client-key-data", what.ptr, true,
			   &c->key_pem)) < 0 ||
	    (rc = get_str(f, m, "token", what.ptr, &c->token)) < 0 ||
	    (rc = get_path(f, m, "tokenFile", what.ptr, &c->token_file)) < 0 ||
	    (rc = get_str(f, m, "username", what.ptr, &c->username)) < 0 ||
	    (rc = get_str(f, m, "password", what.ptr, &c->password)) < 0)
		goto done;
	rc_secret_register(c->token);
	rc_secret_register(c->password);
	if (c->cert_file && c->cert_pem) {
		rc = err_at(f, rc_node_get(m, "client-certificate-data"),
			    RC_EINVALID,
			    "%s: both client-certificate and "
			    "client-certificate-data are set",
			    what.ptr);
		goto done;
	}
	if (c->key_file && c->key_pem) {
		rc = err_at(f, rc_node_get(m, "client-key-data"), RC_EINVALID,
			    "%s: both client-key and client-key-data are set",
			    what.ptr);
		goto done;
	}
	if ((c->cert_file || c->cert_pem) != (c->key_file || c->key_pem)) {
		rc = err_at(f, m, RC_EINVALID,
			    "%s: a client certificate needs its key, and a "
			    "key its certificate",
			    what.ptr);
		goto done;
	}
	if ((c->token || c->token_file) && (c->username || c->password)) {
		const rc_node *at = rc_node_get(m, "username");

		rc = err_at(f, at ? at : m, RC_EINVALID,
			    "%s: a token and a username/password are both "
			    "set: only one is allowed",
			    what.ptr);
		goto done;
	}
	if (rc_node_get(m, "auth-provider") &&
	    !rc_node_is_null(rc_node_get(m, "auth-provider"))) {
		rc = err_at(f, rc_node_get(m, "auth-provider"),
			    RC_EUNSUPPORTED,
			    "%s: auth-provider plugins were removed from "
			    "Kubernetes clients; use an exec plugin",
			    what.ptr);
		goto done;
	}
	exec = rc_node_get(m, "exec");
	/* a token, basic auth or a certificate given outright wins over a
	 * plugin, as in client-go */
	if (exec && !rc_node_is_null(exec) && !c->token && !c->token_file &&
	    !c->username && !c->cert_file && !c->cert_pem)
		rc = load_exec(c, f, exec, what.ptr);
done:
	rc_buf_release(&what);
	return rc;
}

static int load_context(rc_kube_conn *c, struct loader *l,
			const char *context)
{
	const struct kfile *cf = NULL, *ctxf, *clf, *uf;
	const rc_node *cur = NULL, *entry, *m, *v;
	const char *name = context;
	rc_buf names = RC_BUF_INIT_MAX(1 << 16);
	int rc = 0;

	if (!name) {
		/* current-context: from the first file that sets it */
		for (size_t i = 0; i < l->n && !cur; i++) {
			v = rc_node_get(l->files[i].root, "current-context");
			if (v && v->kind == RC_NODE_SCALAR &&
			    !rc_node_is_null(v) && v->len) {
				cur = v;
				cf = &l->files[i];
			}
		}
		if (!cur) {
			list_names(l, "contexts", &names);
			rc = rc_error_set(RC_ENOTFOUND, RC_ECLASS_CONFIG,
					  "%s: no current-context is set and "
					  "no context was named (contexts: %s)",
					  l->source, names.ptr);
			goto done;
		}
		name = cur->str;
	}
	entry = find_entry(l, "contexts", name, &ctxf);
	if (!entry) {
		list_names(l, "contexts", &names);
		if (cur)
			rc = err_at(cf, cur, RC_ENOTFOUND,
				    "context \"%s\" not found (contexts: %s)",
				    name, names.ptr);
		else
			rc = rc_error_set(RC_ENOTFOUND, RC_ECLASS_CONFIG,
					  "%s: context \"%s\" not found "
					  "(contexts: %s)",
					  l->source, name, names.ptr);
		goto done;
	}
	c->context = rc_strdup(name);
	m = rc_node_get(entry, "context");
	if (!m || m->kind != RC_NODE_MAP) {
		rc = err_at(ctxf, m ? m : entry, RC_EINVALID,
			    "context \"%s\" has no cluster", name);
		goto done;
	}
	if ((rc = get_str(ctxf, m, "cluster", "context", &c->cluster_name)) <
		    0 ||
	    (rc = get_str(ctxf, m, "user", "context", &c->user_name)) < 0 ||
	    (rc = get_str(ctxf, m, "namespace", "context", &c->namespace)) <
		    0)
		goto done;
	if (!c->cluster_name || !*c->cluster_name) {
		rc = err_at(ctxf, m, RC_EINVALID,
			    "context \"%s\" has no cluster", name);
		goto done;
	}
	entry = find_entry(l, "clusters", c->cluster_name, &clf);
	if (!entry) {
		list_names(l, "clusters", &names);
		rc = err_at(ctxf, rc_node_get(m, "cluster"), RC_ENOTFOUND,
			    "context \"%s\": cluster \"%s\" not found "
			    "(clusters: %s)",
			    name, c->cluster_name, names.ptr);
		goto done;
	}
	if ((rc = load_cluster(c, clf, entry)) < 0)
		goto done;
	if (c->user_name && *c->user_name) {
		entry = find_entry(l, "users", c->user_name, &uf);
		if (!entry) {
			list_names(l, "users", &names);
			rc = err_at(ctxf, rc_node_get(m, "user"), RC_ENOTFOUND,
				    "context \"%s\": user \"%s\" not found "
				    "(users: %s)",
				    name, c->user_name, names.ptr);
			goto done;
		}
		if ((rc = load_user(c, uf, entry)) < 0)
			goto done;
	}
done:
	rc_buf_release(&names);
	return rc;
}

/* ------------------------------------------------------------ in-cluster */

static bool in_cluster_env(void)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");

	return host && *host && port && *port;
}

static int load_in_cluster(rc_kube_conn *c)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	const char *dir = getenv(RC_KUBE_SERVICEACCOUNT_ENV);
	rc_buf b = RC_BUF_INIT_MAX(PATH_MAX * 2);
	int rc = 0;

	if (!dir || !*dir)
		dir = RC_KUBE_SERVICEACCOUNT_DIR;
	c->in_cluster = true;
	rc_buf_printf(&b, "in-cluster service account in %s", dir);
	c->source = rc_buf_detach(&b);
	/* an IPv6 address goes in brackets */
	rc_buf_printf(&b, "https://%s%s%s:%s", strchr(host, ':') ? "[" : "",
		      host, strchr(host, ':') ? "]" : "", port);
	c->server = rc_buf_detach(&b);

	rc_buf_printf(&b, "%s/token", dir);
	c->token_file = rc_buf_detach(&b);
	if (access(c->token_file, R_OK) < 0) {
		rc = rc_error_set_os("%s: cannot read the token '%s'",
				     c->source, c->token_file);
		goto done;
	}
	rc_buf_printf(&b, "%s/ca.crt", dir);
	if (access(b.ptr, R_OK) == 0)
		c->ca_file = rc_buf_detach(&b);
	else
		RC_WARN("%s: no ca.crt: the API server's certificate is "
			"checked against the system's store",
			c->source);
	rc_buf_clear(&b);
	rc_buf_printf(&b, "%s/namespace", dir);
	{
		rc_buf ns = RC_BUF_INIT;

		if (access(b.ptr, R_OK) == 0 &&
		    rc_local_read_file(b.ptr, 4096, &ns) == 0) {
			rc_local_trim(&ns);
			if (ns.len)
				c->namespace = rc_buf_detach(&ns);
		}
		rc_buf_release(&ns);
		rc_error_clear();
	}
done:
	rc_buf_release(&b);
	return rc;
}

/* ----------------------------------------------------------------- load */

static void conn_init(rc_kube_conn *c)
{
	memset(c, 0, sizeof(*c));
	c->qps = RC_KUBE_DEFAULT_QPS;
	c->burst = RC_KUBE_DEFAULT_BURST;
	c->token_reread_ms = RC_KUBE_TOKEN_REREAD_MS;
	c->exec_timeout_ms = RC_KUBE_EXEC_TIMEOUT_MS;
	pthread_mutex_init(&c->lock, NULL);
	c->loaded = true;
}

static void source_of(struct loader *l, const char *const *listed, size_t n)
{
	rc_buf b = RC_BUF_INIT_MAX(1 << 16);

	rc_buf_puts(&b, "kubeconfig ");
	for (size_t i = 0; i < n; i++) {
		char *d = rc_local_display_path(listed[i]);

		rc_buf_printf(&b, "%s%s", i ? ":" : "", d);
		free(d);
	}
	free(l->source);
	l->source = rc_buf_detach(&b);
}

int rc_kube_conn_load(rc_kube_conn *out, const char *context)
{
	return rc_kube_conn_load_from(out, NULL, context);
}

int rc_kube_conn_load_from(rc_kube_conn *out, const char *file,
			   const char *context)
{
	const char *kc = file ? file : getenv("KUBECONFIG");
	const char *home = getenv("HOME");
	struct loader l;
	char **listed = NULL;
	size_t nlisted = 0, cap = 0, found = 0;
	rc_buf b = RC_BUF_INIT_MAX(PATH_MAX * 2);
	bool ok;
	int rc = 0;

	conn_init(out);
	memset(&l, 0, sizeof(l));
	rc_diags_init(&l.diags);
	if (kc && *kc) {
		const char *p = kc, *colon;

		do {
			colon = strchr(p, ':');
			if (colon ? colon > p : *p != '\0') {
				size_t n = colon ? (size_t)(colon - p)
						 : strlen(p);

				RC_GROW(listed, cap, nlisted + 1);
				listed[nlisted++] = rc_strndup(p, n);
			}
			p = colon ? colon + 1 : NULL;
		} while (p);
	} else if (!file && home && *home) {
		rc_buf_printf(&b, "%s/.kube/config", home);
		RC_GROW(listed, cap, 1);
		listed[nlisted++] = rc_buf_detach(&b);
	}
	source_of(&l, (const char *const *)listed, nlisted);
	for (size_t i = 0; i < nlisted; i++) {
		if ((rc = load_file(&l, listed[i], &ok)) < 0)
			goto done;
		found += ok;
	}
	if (!found) {
		/* "~/.kube/config does not exist", "none of a, b exists" */
		rc_buf_clear(&b);
		if (nlisted == 0)
			rc_buf_puts(&b, "$HOME is not set");
		else if (nlisted == 1)
			rc_buf_printf(&b, "%s does not exist",
				      l.source + strlen("kubeconfig "));
		else
			rc_buf_printf(&b, "none of %s exists",
				      l.source + strlen("kubeconfig "));
		if (file)
			rc = rc_error_set(RC_ENOTFOUND, RC_ECLASS_CONFIG,
					  "kubeconfig %s does not exist",
					  file);
		else if (context)
			rc = rc_error_set(RC_ENOTFOUND, RC_ECLASS_CONFIG,
					  "context \"%s\" not found: %s",
					  context, b.ptr);
		else if (in_cluster_env())
			rc = load_in_cluster(out);
		else
			rc = rc_error_set(RC_ENOTFOUND, RC_ECLASS_CONFIG,
					  "no Kubernetes connection: %s, and "
					  "this is not a pod "
					  "(KUBERNETES_SERVICE_HOST is not "
					  "set)",
					  b.ptr);
		goto done;
	}
	out->source = rc_strdup(l.source);
	rc = load_context(out, &l, context);
done:
	if (rc == 0 && !out->namespace)
		out->namespace = rc_strdup("default");
	if (rc < 0)
		rc_kube_conn_release(out);
	for (size_t i = 0; i < nlisted; i++)
		free(listed[i]);
	free(listed);
	loader_release(&l);
	rc_buf_release(&b);
	return rc;
}

void rc_kube_conn_release(rc_kube_conn *c)
{
	if (!c->loaded)
		return; /* never loaded, or released already */
	free(c->source);
	free(c->context);
	free(c->cluster_name);
	free(c->user_name);
	free(c->namespace);
	free(c->server);
	free(c->ca_file);
	free(c->ca_pem);
	free(c->tls_server_name);
	free(c->proxy_url);
	free(c->cert_file);
	free(c->cert_pem);
	free(c->key_file);
	free_secret(c->key_pem);
	free_secret(c->token);
	free(c->token_file);
	free(c->username);
	free_secret(c->password);
	if (c->exec) {
		free(c->exec->api_version);
		free_strv(c->exec->argv, false);
		free_strv(c->exec->env, true);
		free(c->exec->interactive_mode);
		free(c->exec->install_hint);
		free(c->exec);
	}
	free_secret(c->cur_token);
	free(c->exec_cert_pem);
	free_secret(c->exec_key_pem);
	pthread_mutex_destroy(&c->lock);
	memset(c, 0, sizeof(*c));
}

/* ----------------------------------------------------------- exec plugin */

/* The program to run: a path as is, else found in our PATH. */
static char *find_program(const char *prog)
{
	if (strchr(prog, '/'))
		return access(prog, X_OK) == 0 ? rc_strdup(prog) : NULL;
	return rc_local_find_program(prog, getenv("PATH"), NULL);
}

/* KUBERNETES_EXEC_INFO: what the plugin may know of the request. */
static char *exec_info(const rc_kube_conn *c)
{
	json_t *spec = json_pack("{s:b}", "interactive", 0);
	json_t *doc;
	char *s;

	if (c->exec->provide_cluster_info) {
		json_t *cl = json_pack("{s:s}", "server", c->server);
		rc_buf pem = RC_BUF_INIT_MAX(PEM_FILE_MAX);
		rc_buf b64 = RC_BUF_INIT_MAX(PEM_FILE_MAX * 2);

		if (c->ca_pem)
			rc_buf_puts(&pem, c->ca_pem);
		else if (c->ca_file &&
			 rc_local_read_file(c->ca_file, PEM_FILE_MAX, &pem) < 0)
			rc_error_clear();
		if (pem.len) {
			rc_codec_base64_encode(&b64, pem.ptr, pem.len, 0);
			json_object_set_new(cl, "certificate-authority-data",
					    json_string(b64.ptr));
		}
		if (c->tls_server_name)
			json_object_set_new(cl, "tls-server-name",
					    json_string(c->tls_server_name));
		if (c->proxy_url)
			json_object_set_new(cl, "proxy-url",
					    json_string(c->proxy_url));
		if (c->insecure)
			json_object_set_new(cl, "insecure-skip-tls-verify",
					    json_true());
		json_object_set_new(spec, "cluster", cl);
		rc_buf_release(&pem);
		rc_buf_release(&b64);
	}
	doc = json_pack("{s:s, s:s, s:o}", "apiVersion", c->exec->api_version,
			"kind", "ExecCredential", "spec", spec);
	s = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	return s;
}

/* Our environment, then the plugin's variables, then the exec info. */
static char **exec_envp(const rc_kube_conn *c)
{
	size_t n = 0, cap = 0, i, j;
	char **v = NULL;
	char *info = exec_info(c);
	rc_buf b = RC_BUF_INIT_MAX(1 << 20);

	for (i = 0; environ && environ[i]; i++) {
		RC_GROW(v, cap, n + 2);
		v[n++] = rc_strdup(environ[i]);
	}
	for (i = 0; c->exec->env[i]; i++) {
		size_t klen = strcspn(c->exec->env[i], "=") + 1;

		for (j = 0; j < n; j++)
			if (!strncmp(v[j], c->exec->env[i], klen))
				break;
		RC_GROW(v, cap, n + 2);
		if (j < n)
			free_secret(v[j]);
		else
			j = n++;
		v[j] = rc_strdup(c->exec->env[i]);
	}
	rc_buf_printf(&b, "KUBERNETES_EXEC_INFO=%s", info);
	for (j = 0; j < n; j++)
		if (!strncmp(v[j], "KUBERNETES_EXEC_INFO=", 21))
			break;
	RC_GROW(v, cap, n + 2);
	if (j < n)
		free(v[j]);
	else
		j = n++;
	v[j] = rc_buf_detach(&b);
	v[n] = NULL;
	free(info);
	return v;
}

/* Runs the plugin: stdout into out, the tail of stderr into err. */
static int exec_spawn(const rc_kube_conn *c, const char *prog, rc_buf *out,
		      rc_buf *err, int *status, bool *timed_out)
{
	char **envp = exec_envp(c);
	int rc = rc_local_run_output(prog, c->exec->argv, envp,
				     c->exec_timeout_ms, EXEC_ERR_KEEP, out,
				     err, status, timed_out);

	free_strv(envp, true);
	return rc;
}

/* Appends the plugin's stderr as indented lines (already redacted). */
static void put_tail(rc_buf *m, const rc_buf *err)
{
	const char *p = err->ptr;
	size_t lines = 0;

	/* the last ten lines at most */
	for (const char *q = err->ptr + err->len; q > err->ptr; q--) {
		if (q[-1] == '\n' && q != err->ptr + err->len &&
		    ++lines == 10) {
			p = q;
			break;
		}
	}
	while (*p) {
		size_t n = strcspn(p, "\n");

		if (n)
			rc_buf_printf(m, "\n    %.*s", (int)n, p);
		p += n + (p[n] == '\n');
	}
}

/* Runs the plugin and keeps what it answers; c->lock is held. */
static int exec_refresh(rc_kube_conn *c)
{
	const rc_kube_exec *x = c->exec;
	rc_buf out = RC_BUF_INIT_MAX(EXEC_OUT_MAX);
	rc_buf err = RC_BUF_INIT_MAX(16 * EXEC_ERR_KEEP);
	rc_buf m = RC_BUF_INIT_MAX(1 << 16);
	json_t *doc = NULL;
	json_error_t jerr;
	const char *api = NULL, *kind = NULL, *token = NULL, *cert = NULL,
		   *key = NULL, *expiry = NULL;
	char *prog;
	time_t exp = 0;
	struct timespec exp_ts = {0, 0};
	int status = 0, rc;
	bool timed_out;

	rc_buf_printf(&m, "%s: user \"%s\": exec plugin '%s'", c->source,
		      c->user_name ? c->user_name : "", x->argv[0]);
	if (x->interactive_mode && !strcmp(x->interactive_mode, "Always")) {
		rc = rc_error_set(RC_EUNSUPPORTED, RC_ECLASS_CONFIG,
				  "%s needs a terminal (interactiveMode: "
				  "Always), which reconcile never gives it",
				  m.ptr);
		goto done;
	}
	prog = find_program(x->argv[0]);
	if (!prog) {
		rc_buf_puts(&m, strchr(x->argv[0], '/')
					? " is not an executable file"
					: " not found in PATH");
		if (x->install_hint)
			rc_buf_printf(&m, "\n%s", x->install_hint);
		rc = rc_error_set(RC_ENOTFOUND, RC_ECLASS_CONFIG, "%s", m.ptr);
		goto done;
	}
	c->exec_runs++;
	rc = exec_spawn(c, prog, &out, &err, &status, &timed_out);
	free(prog);
	if (rc < 0) {
		rc_error_prefix("%s", m.ptr);
		goto done;
	}
	rc_redact(&err);
	if (timed_out || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (timed_out) {
			rc_buf_printf(&m, " did not answer within %lds",
				      c->exec_timeout_ms / 1000);
		} else if (WIFEXITED(status)) {
			rc_buf_printf(&m, " exited with status %d",
				      WEXITSTATUS(status));
		} else {
			rc_buf_printf(&m, " was killed by signal %d",
				      WTERMSIG(status));
		}
		if (err.len) {
			rc_buf_puts(&m, "; its last output:");
			put_tail(&m, &err);
		}
		rc_redact(&m);
		rc = rc_error_set(timed_out ? RC_ETIMEOUT : RC_ERROR,
				  RC_ECLASS_CONFIG, "%s", m.ptr);
		goto done;
	}
	doc = json_loadb(out.ptr, out.len, 0, &jerr);
	if (!doc || json_unpack_ex(doc, &jerr, 0,
				   "{s:s, s:s, s:{s?s, s?s, s?s, s?s}}",
				   "apiVersion", &api, "kind", &kind, "status",
				   "token", &token, "clientCertificateData",
				   &cert, "clientKeyData", &key,
				   "expirationTimestamp", &expiry) < 0) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				  "%s answered something that is not an "
				  "ExecCredential: %s",
				  m.ptr, jerr.text);
		goto done;
	}
	if (token)
		rc_secret_register(token);
	if (key)
		rc_secret_register(key);
	if (strcmp(kind, "ExecCredential") || strcmp(api, x->api_version)) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				  "%s answered a %s %s, not an %s "
				  "ExecCredential",
				  m.ptr, api, kind, x->api_version);
		goto done;
	}
	if ((!token || !*token) && (!cert || !key)) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				  "%s answered neither a token nor a client "
				  "certificate and key",
				  m.ptr);
		goto done;
	}
	if ((cert != NULL) != (key != NULL)) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				  "%s answered a client certificate without "
				  "its key, or a key without its certificate",
				  m.ptr);
		goto done;
	}
	if (expiry && !rc_time_parse(expiry, &exp_ts)) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				  "%s answered an expirationTimestamp that is "
				  "not RFC 3339: '%s'",
				  m.ptr, expiry);
		goto done;
	}
	if (expiry)
		exp = exp_ts.tv_sec;
	free_secret(c->cur_token);
	c->cur_token = token && *token ? rc_strdup(token) : NULL;
	free(c->exec_cert_pem);
	free_secret(c->exec_key_pem);
	c->exec_cert_pem = cert ? rc_strdup(cert) : NULL;
	c->exec_key_pem = key ? rc_strdup(key) : NULL;
	c->cur_expiry = exp;
	c->cur_valid = true;
	RC_DEBUG("kubernetes: exec plugin '%s' gave a %s%s", x->argv[0],
		 token ? "token" : "client certificate",
		 exp ? " with an expiry" : "");
	rc = 0;
done:
	json_decref(doc);
	explicit_bzero(out.ptr, out.len);
	rc_buf_release(&out);
	rc_buf_release(&err);
	rc_buf_release(&m);
	return rc;
}

/* ---------------------------------------------------------- credentials */

static int token_file_refresh(rc_kube_conn *c)
{
	rc_buf b = RC_BUF_INIT;
	int rc;

	rc = rc_local_read_file(c->token_file, TOKEN_FILE_MAX, &b);
	if (rc == 0) {
		rc_local_trim(&b);
		if (!b.len)
			rc = rc_error_set(RC_EAUTH, RC_ECLASS_CONFIG,
					  "the token file '%s' is empty",
					  c->token_file);
	}
	if (rc < 0) {
		rc_error_prefix("%s", c->source);
		explicit_bzero(b.ptr, b.len);
		rc_buf_release(&b);
		return rc;
	}
	rc_secret_register(b.ptr);
	free_secret(c->cur_token);
	c->cur_token = rc_buf_detach(&b);
	c->cur_read_ms = mono_ms();
	c->cur_valid = true;
	return 0;
}

int rc_kube_conn_auth_header(rc_kube_conn *c, char **out)
{
	rc_buf b = RC_BUF_INIT_MAX(TOKEN_FILE_MAX + 64);
	int rc = 0;

	*out = NULL;
	pthread_mutex_lock(&c->lock);
	if (c->token_file) {
		if (!c->cur_valid ||
		    mono_ms() - c->cur_read_ms >= c->token_reread_ms)
			rc = token_file_refresh(c);
		if (rc < 0 && c->cur_token) {
			/* as client-go: a token that cannot be read again
			 * is not the end, the one read before may still do */
			RC_WARN("%s; the token read before is used",
				rc_error_last()->message);
			rc_error_clear();
			c->cur_read_ms = mono_ms();
			c->cur_valid = true;
			rc = 0;
		}
		if (rc == 0)
			rc_buf_printf(&b, "Bearer %s", c->cur_token);
	} else if (c->token) {
		rc_buf_printf(&b, "Bearer %s", c->token);
	} else if (c->username) {
		rc_buf up = RC_BUF_INIT_MAX(1 << 16);

		rc_buf_printf(&up, "%s:%s", c->username,
			      c->password ? c->password : "");
		rc_buf_puts(&b, "Basic ");
		rc_codec_base64_encode(&b, up.ptr, up.len, 0);
		explicit_bzero(up.ptr, up.len);
		rc_buf_release(&up);
		rc_secret_register(b.ptr);
		rc_secret_register(b.ptr + 6);
	} else if (c->exec) {
		if (!c->cur_valid ||
		    (c->cur_expiry &&
		     time(NULL) >= c->cur_expiry - EXEC_EXPIRY_MARGIN_S))
			rc = exec_refresh(c);
		if (rc == 0 && c->cur_token)
			rc_buf_printf(&b, "Bearer %s", c->cur_token);
	}
	pthread_mutex_unlock(&c->lock);
	if (rc == 0 && b.len)
		*out = rc_buf_detach(&b);
	explicit_bzero(b.ptr, b.len);
	rc_buf_release(&b);
	return rc;
}

bool rc_kube_conn_invalidate(rc_kube_conn *c)
{
	bool again;

	pthread_mutex_lock(&c->lock);
	c->cur_valid = false;
	again = c->token_file || c->exec;
	pthread_mutex_unlock(&c->lock);
	return again;
}

static int kube_sign(void *ctx, const rc_http_req *req, const char *url,
		     struct curl_slist **headers)
{
	rc_kube_conn *c = ctx;
	rc_buf line = RC_BUF_INIT_MAX(TOKEN_FILE_MAX + 64);
	char *value;
	int rc;

	RC_UNUSED(req);
	RC_UNUSED(url);
	if ((rc = rc_kube_conn_auth_header(c, &value)) < 0)
		return rc;
	if (value) {
		rc_buf_printf(&line, "Authorization: %s", value);
		*headers = curl_slist_append(*headers, line.ptr);
		explicit_bzero(line.ptr, line.len);
		explicit_bzero(value, strlen(value));
		free(value);
	}
	rc_buf_release(&line);
	return 0;
}

static int kube_refresh(void *ctx)
{
	return rc_kube_conn_invalidate(ctx) ? 1 : 0;
}

int rc_kube_conn_http_opts(rc_kube_conn *c, rc_http_opts *o)
{
	int rc = 0;

	rc_http_opts_init(o);
	o->base_url = c->server;
	o->service = "the Kubernetes API server";
	o->ca_file = c->ca_file;
	o->ca_pem = c->ca_pem;
	o->insecure = c->insecure;
	o->tls_server_name = c->tls_server_name;
	o->proxy = c->proxy_url;
	o->cert_file = c->cert_file;
	o->cert_pem = c->cert_pem;
	o->key_file = c->key_file;
	o->key_pem = c->key_pem;
	o->qps = c->qps;
	o->burst = c->burst;
	if (c->exec) {
		/* the plugin may answer with a certificate, which the TLS
		 * setup needs now */
		pthread_mutex_lock(&c->lock);
		if (!c->cur_valid)
			rc = exec_refresh(c);
		pthread_mutex_unlock(&c->lock);
		if (rc < 0)
			return rc;
		if (c->exec_cert_pem) {
			o->cert_pem = c->exec_cert_pem;
			o->key_pem = c->exec_key_pem;
		}
	}
	if (c->token_file || c->token || c->username || c->exec) {
		o->sign = kube_sign;
		o->refresh = kube_refresh;
		o->sign_ctx = c;
	}
	return 0;
}
