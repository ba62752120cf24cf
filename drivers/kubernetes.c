/*
 * The Kubernetes driver: the environment's objects in its namespace,
 * observed with one labelled LIST per kind, applied with server-side
 * apply, waited on by their rollout status, pruned by label; hooks run as
 * Jobs. The mapping (objects, normal form, normalize, immutable fields)
 * is drivers/kube_map.c; the connection (kubeconfig, in-cluster) is
 * drivers/kube_config.c; HTTP is drivers/http.c. docs/drivers/kubernetes.md
 * is the user's view.
 */
#include "drivers/driver.h"
#include "drivers/http.h"
#include "drivers/kube_config.h"
#include "drivers/kube_map.h"
#include "drivers/proc.h" /* files, clocks, local hooks */
#include "reconciler/base/json.h"
#include "reconciler/base/log.h"
#include "schema/secrets.h"
#include "state/envreg.h"

#include <pthread.h>
#include <time.h>

#define KUBE_FIELD_MANAGER "reconcile"
#define KUBE_PAGE 500
#define KUBE_QPS 50
#define KUBE_BURST 100

struct kube_client {
	char *key;
	rc_kube_conn conn; /* stays in place: the client's callbacks use it */
	rc_http *http;
	int refs;
	struct kube_client *next;
};

/* A kind as the API serves it (discovery). */
typedef struct {
	char *group_version; /* "v1", "apps/v1" */
	char *resource;      /* "deployments" */
	char *group;         /* "" for the core group */
	bool namespaced;
} kube_kind;

struct rc_driver {
	const rc_env *env;
	char *project, *config_dir, *state_dir, *run_id;
	char *ns;        /* target.namespace */
	char *selector;  /* the environment's label selector */
	char *user;      /* who we are, for RBAC messages */
	struct kube_client *client; /* shared with every environment that
				       reaches the cluster the same way */
	rc_http *http;              /* client->http */
	pthread_mutex_t mu; /* guards what follows */
	json_t *live;    /* key -> uid of the object observed or applied */
	json_t *gone;    /* key -> true: a delete found it gone already */
	json_t *kinds;   /* kind key -> apiVersion, every kind this driver
			    applied in the environment (kinds.json) */
	rc_strmap locs;  /* key -> rc_loc * of what declares it */
	rc_loc *locbuf;
	size_t nlocs;
};

/* ------------------------------------------------------------ requests */

/* Where in the user's YAML a field the server names lives: for a raw
 * manifest, the node at that path ("spec.rules[0].host"); otherwise (or
 * when the path leads nowhere) the resource's own location. */
static rc_loc field_loc(const rc_env *env, const char *name,
			const char *field, rc_loc fallback)
{
	const rc_node *n = NULL;

	for (size_t i = 0; name && i < env->nresources && !n; i++)
		if (env->resources[i].name &&
		    !strcmp(env->resources[i].name, name))
			n = env->resources[i].manifest;
	if (!n || !field)
		return fallback;
	for (const char *p = field; *p && n;) {
		const char *end = p + strcspn(p, ".[");

		if (end > p) {
			char *key = rc_strndup(p, (size_t)(end - p));
			const rc_node *next = n->kind == RC_NODE_MAP
						      ? rc_node_get(n, key)
						      : NULL;

			free(key);
			if (!next)
				break;
			n = next;
		}
		p = end;
		if (*p == '[') {
			char *close;
			unsigned long idx = strtoul(p + 1, &close, 10);

			if (*close != ']' || n->kind != RC_NODE_SEQ ||
			    idx >= n->n)
				break;
			n = n->vals[idx];
			p = close + 1;
		}
		if (*p == '.')
			p++;
	}
	return n ? n->loc : fallback;
}

/* A Status's causes, one per line: "  [file:line:col: ]field: message",
 * located in the user's YAML when loc (the object's) is given. */
static void put_causes(rc_buf *b, const json_t *causes, const rc_driver *d,
		       const char *name, const char *no_field,
		       const char *no_message, rc_loc loc)
{
	const json_t *c;
	size_t i;

	json_array_foreach(causes, i, c) {
		const char *cm = json_string_value(json_object_get(c, "message"));
		const char *cf = json_string_value(json_object_get(c, "field"));
		rc_loc fl = loc.file ? field_loc(d->env, name, cf, loc) : loc;

		rc_buf_puts(b, "\n  ");
		if (fl.file && fl.line)
			rc_buf_printf(b, "%s:%d:%d: ", fl.file, fl.line, fl.col);
		rc_buf_printf(b, "%s: %s", cf ? cf : no_field,
			      cm ? cm : no_message);
	}
}

/* The error a Status reply carries, with what the user can do about it.
 * what names the request ("patch deployments.apps web in shop"). */
static int status_error(rc_driver *d, const rc_http_resp *r, const char *verb,
			const kube_kind *k, const char *name, rc_loc loc)
{
	json_t *st = json_loadb(r->body.ptr, r->body.len, 0, NULL);
	const char *msg = json_string_value(json_object_get(st, "message"));
	const char *reason = json_string_value(json_object_get(st, "reason"));
	const json_t *causes =
		json_object_get(json_object_get(st, "details"), "causes");
	rc_buf b = RC_BUF_INIT_MAX(1 << 16);
	const char *res = k ? k->resource : "?";
	const char *grp = k && k->group && *k->group ? k->group : "";
	int code = RC_ERROR, rc;

	if (!st && r->body.len) {
		/* masked before it is cut: a secret across the cut would
		 * otherwise leave its start */
		rc_buf raw = RC_BUF_INIT_MAX(RC_HTTP_MAX_BODY);

		rc_buf_put(&raw, r->body.ptr, r->body.len);
		rc_redact(&raw);
		rc_buf_printf(&b, "the API server answered %ld with a body "
				  "that is not a Status: %.200s",
			      r->status, raw.ptr);
		rc_buf_release(&raw);
	}
	switch (r->status) {
	case 401:
		code = RC_EAUTH;
		rc_buf_printf(&b, "%s %s%s%s: the API server did not accept "
				  "the credentials (401 Unauthorized); check "
				  "the kubeconfig's user for this context, or "
				  "the service account token",
			      verb, res, *grp ? "." : "", grp);
		break;
	case 403:
		code = RC_EAUTH;
		rc_buf_printf(&b, "%s (403 Forbidden). A Role in namespace "
				  "'%s' that allows it: rules: [{apiGroups: "
				  "[\"%s\"], resources: [\"%s\"], verbs: "
				  "[\"%s\"]}] bound to %s (see "
				  "docs/drivers/kubernetes.md, RBAC)",
			      msg ? msg : "forbidden", d->ns, grp, res, verb,
			      d->user ? d->user : "reconcile's user");
		break;
	case 404:
		code = RC_ENOTFOUND;
		rc_buf_printf(&b, "%s", msg ? msg : "not found");
		break;
	case 409:
		code = RC_ECONFLICT;
		if (reason && !strcmp(reason, "Conflict") &&
		    json_array_size(causes)) {
			rc_buf_printf(&b, "%s %s: fields owned by another "
					  "manager:",
				      k && k->resource ? res : "object",
				      name ? name : "");
			put_causes(&b, causes, d, name, "?", "conflict",
				   (rc_loc){0});
			rc_buf_puts(&b, "\nThey were changed outside reconcile. "
					"Set policy.force_conflicts: true to "
					"take them over, or stop declaring "
					"them");
		} else {
			rc_buf_printf(&b, "%s", msg ? msg : "conflict");
		}
		break;
	case 410:
		rc_buf_printf(&b, "%s (410 Gone)", msg ? msg : "expired");
		break;
	case 422:
		code = RC_EINVALID;
		rc_buf_printf(&b, "the API server rejected %s %s:",
			      k ? res : "the object", name ? name : "");
		put_causes(&b, causes, d, name, "(object)", "invalid", loc);
		if (!json_array_size(causes))
			rc_buf_printf(&b, " %s", msg ? msg : "invalid");
		break;
	default:
		if (r->status == 429 || r->status >= 500)
			code = RC_ETIMEOUT;
		rc_buf_printf(&b, "the API server answered %ld%s%s%s%s",
			      r->status, reason ? " " : "",
			      reason ? reason : "", msg ? ": " : "",
			      msg ? msg : "");
		if (r->attempts > 1)
			rc_buf_printf(&b, " (after %d attempts)", r->attempts);
		break;
	}
	json_decref(st);
	/* the API server's message may quote the object sent (a Secret's
	 * data refused by an admission webhook) */
	rc_redact(&b);
	rc = loc.file && loc.line && code == RC_EINVALID
		     ? rc_error_set_at(code, loc, "%s", b.ptr)
		     : rc_error_set(code, RC_ECLASS_PLATFORM, "%s", b.ptr);
	rc_buf_release(&b);
	return rc;
}

int rc_kube_status_error(long status, const char *body, size_t len)
{
	static char ns[] = "fuzz", res[] = "deployments", grp[] = "apps",
		    gv[] = "apps/v1";
	const kube_kind k = {.group_version = gv, .resource = res,
			     .group = grp, .namespaced = true};
	rc_driver d;
	rc_http_resp r;
	int rc;

	memset(&d, 0, sizeof(d));
	d.ns = ns;
	rc_http_resp_init(&r);
	r.status = status;
	r.attempts = 2;
	if (len && rc_buf_put(&r.body, body, len) < 0) {
		rc_http_resp_release(&r);
		return -1;
	}
	rc = status_error(&d, &r, "patch", status & 1 ? &k : NULL, "web",
			  (rc_loc){0});
	rc_http_resp_release(&r);
	return rc;
}

/* Sends one request; 0 with the reply in r whatever its status, or the
 * transport's error. */
static int send_req(rc_driver *d, const char *method, const char *path,
		    const char *ctype, const char *body, bool idempotent,
		    rc_http_resp *r)
{
	rc_http_req q = {0};

	q.method = method;
	q.path = path;
	q.content_type = ctype;
	q.body = body;
	q.body_len = body ? strlen(body) : 0;
	q.idempotent = idempotent;
	return rc_http_do(d->http, &q, r);
}

/* The reply's body as JSON (new ref), or NULL with an error naming the
 * request. */
static json_t *reply_json(const rc_http_resp *r, const char *method,
			  const char *path)
{
	json_error_t e;
	json_t *j = json_loadb(r->body.ptr, r->body.len, 0, &e);

	if (!j || !json_is_object(j)) {
		json_decref(j);
		rc_error_set(RC_EINVALID, RC_ECLASS_PLATFORM,
			     "the API server's reply to %s %s is not a JSON "
			     "object (%s)",
			     method, path, j ? "another JSON value" : e.text);
		return NULL;
	}
	return j;
}

/* ----------------------------------------------------------- discovery */

static void kind_release(kube_kind *k)
{
	free(k->group_version);
	free(k->resource);
	free(k->group);
	memset(k, 0, sizeof(*k));
}

/* Discovery answers, for the whole run: "<server> <group version>" ->
 * APIResourceList. Many environments on one cluster ask once. */
static pthread_mutex_t disc_mu = PTHREAD_MUTEX_INITIALIZER;
static json_t *disc_cache;

static void disc_key(rc_buf *b, const rc_driver *d, const char *gv)
{
	rc_buf_printf(b, "%s %s", d->client->conn.server, gv);
}

/* The APIResourceList of a group version (borrowed from the cache). */
static int disc_list(rc_driver *d, const char *gv, const json_t **out)
{
	rc_buf path = RC_BUF_INIT_MAX(1024), key = RC_BUF_INIT_MAX(2048);
	rc_http_resp r;
	json_t *j;
	int rc;

	disc_key(&key, d, gv);
	pthread_mutex_lock(&disc_mu);
	*out = json_object_get(disc_cache, key.ptr);
	pthread_mutex_unlock(&disc_mu);
	if (*out) {
		rc_buf_release(&key);
		return 0;
	}
	rc_buf_printf(&path, "%s%s", strchr(gv, '/') ? "/apis/" : "/api/", gv);
	rc_http_resp_init(&r);
	rc = send_req(d, "GET", path.ptr, NULL, NULL, true, &r);
	if (rc < 0)
		goto done;
	if (r.status == 404) {
		rc = rc_error_set(RC_ENOTFOUND, RC_ECLASS_PLATFORM,
				  "the API server does not serve %s (is its "
				  "CustomResourceDefinition installed?)",
				  gv);
		goto done;
	}
	if (r.status != 200) {
		rc = status_error(d, &r, "get", NULL, path.ptr, (rc_loc){0});
		goto done;
	}
	if (!(j = reply_json(&r, "GET", path.ptr))) {
		rc = RC_EINVALID;
		goto done;
	}
	pthread_mutex_lock(&disc_mu);
	if (!disc_cache)
		disc_cache = json_object();
	/* entries are never replaced nor removed: callers borrow them */
	if (json_object_get(disc_cache, key.ptr))
		json_decref(j);
	else
		json_object_set_new(disc_cache, key.ptr, j);
	*out = json_object_get(disc_cache, key.ptr);
	pthread_mutex_unlock(&disc_mu);
done:
	rc_http_resp_release(&r);
	rc_buf_release(&path);
	rc_buf_release(&key);
	return rc;
}

/* What the API calls kind in group version gv. */
static int disc_kind(rc_driver *d, const char *gv, const char *kind,
		     kube_kind *out)
{
	const json_t *list, *res;
	const char *slash = strchr(gv, '/');
	size_t i;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = disc_list(d, gv, &list)) < 0)
		return rc;
	json_array_foreach(json_object_get(list, "resources"), i, res) {
		const char *name = json_string_value(json_object_get(res, "name"));
		const char *k = json_string_value(json_object_get(res, "kind"));

		if (!name || !k || strchr(name, '/') || strcmp(k, kind))
			continue;
		out->group_version = rc_strdup(gv);
		out->resource = rc_strdup(name);
		out->group = slash ? rc_strndup(gv, (size_t)(slash - gv))
				   : rc_strdup("");
		out->namespaced =
			json_is_true(json_object_get(res, "namespaced"));
		return 0;
	}
	return rc_error_set(RC_ENOTFOUND, RC_ECLASS_PLATFORM,
			    "the API server has no kind %s in %s", kind, gv);
}

static int body_kind(rc_driver *d, const json_t *body, kube_kind *out)
{
	const char *av = json_string_value(json_object_get(body, "apiVersion"));
	const char *k = json_string_value(json_object_get(body, "kind"));

	if (!av || !k)
		return rc_error_set(RC_EINVALID, RC_ECLASS_INTERNAL,
				    "an object without apiVersion or kind");
	return disc_kind(d, av, k, out);
}

/* /api/v1/namespaces/NS/configmaps[/NAME] */
static void obj_path(rc_buf *b, const rc_driver *d, const kube_kind *k,
		     const char *name)
{
	rc_buf_printf(b, "%s%s", *k->group ? "/apis/" : "/api/",
		      k->group_version);
	if (k->namespaced)
		rc_buf_printf(b, "/namespaces/%s", d->ns);
	rc_buf_printf(b, "/%s", k->resource);
	if (name) {
		rc_buf_putc(b, '/');
		rc_http_url_encode(b, name);
	}
}

/* ---------------------------------------------------------- open, close */

/*
 * One connection and HTTP client per way of reaching a cluster (the
 * kubeconfig, the context, the rate budget), shared by every environment
 * that uses it: a hundred environments on one cluster make one client,
 * one pool of connections and one TLS setup, not a hundred.
 */
static pthread_mutex_t clients_mu = PTHREAD_MUTEX_INITIALIZER;
static struct kube_client *clients;

static void client_put(struct kube_client *c)
{
	struct kube_client **p;

	if (!c)
		return;
	pthread_mutex_lock(&clients_mu);
	if (--c->refs > 0) {
		pthread_mutex_unlock(&clients_mu);
		return;
	}
	for (p = &clients; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	pthread_mutex_unlock(&clients_mu);
	rc_http_close(c->http);
	rc_kube_conn_release(&c->conn);
	free(c->key);
	free(c);
}

static int client_get(struct kube_client **out, const char *kubeconfig,
		      const char *context, int qps, int burst)
{
	rc_buf key = RC_BUF_INIT_MAX(PATH_MAX * 3);
	struct kube_client *c;
	rc_http_opts ho;
	int rc;

	*out = NULL;
	rc_buf_printf(&key, "%s\n%s\n%s\n%d\n%d",
		      kubeconfig ? kubeconfig : "",
		      kubeconfig ? "" : (getenv("KUBECONFIG") ? getenv("KUBECONFIG") : ""),
		      context ? context : "", qps, burst);
	pthread_mutex_lock(&clients_mu);
	for (c = clients; c; c = c->next)
		if (!strcmp(c->key, key.ptr)) {
			c->refs++;
			*out = c;
			break;
		}
	pthread_mutex_unlock(&clients_mu);
	if (*out) {
		rc_buf_release(&key);
		return 0;
	}
	c = rc_calloc(1, sizeof(*c));
	c->key = rc_buf_detach(&key);
	c->refs = 1;
	rc = rc_kube_conn_load_from(&c->conn, kubeconfig, context);
	if (rc == 0) {
		rc_http_opts_init(&ho);
		rc = rc_kube_conn_http_opts(&c->conn, &ho);
	}
	if (rc == 0) {
		ho.qps = qps > 0 ? qps : KUBE_QPS;
		ho.burst = burst > 0 ? burst : KUBE_BURST;
		ho.accept = "application/json";
		ho.driver = "kubernetes";
		rc = rc_http_open(&c->http, &ho);
	}
	if (rc < 0) {
		rc_http_close(c->http);
		rc_kube_conn_release(&c->conn);
		free(c->key);
		free(c);
		return rc;
	}
	/* another environment may have opened the same client meanwhile
	   (watchers start together): share that one, or each would have
	   its own streams and its own idea of the server's Retry-After */
	pthread_mutex_lock(&clients_mu);
	for (*out = clients; *out; *out = (*out)->next)
		if (!strcmp((*out)->key, c->key))
			break;
	if (*out) {
		(*out)->refs++;
		pthread_mutex_unlock(&clients_mu);
		rc_http_close(c->http);
		rc_kube_conn_release(&c->conn);
		free(c->key);
		free(c);
		return 0;
	}
	c->next = clients;
	clients = c;
	pthread_mutex_unlock(&clients_mu);
	*out = c;
	return 0;
}

static char *kinds_path(const rc_driver *d)
{
	rc_buf b = RC_BUF_INIT_MAX(PATH_MAX * 2);

	rc_buf_printf(&b, "%s/kubernetes/%s/kinds.json", d->state_dir,
		      d->env->name);
	return rc_buf_detach(&b);
}

static void load_kinds(rc_driver *d)
{
	char *path = kinds_path(d);
	json_t *j = json_load_file(path, 0, NULL);

	d->kinds = json_is_object(j) ? j : json_object();
	if (j && !json_is_object(j))
		json_decref(j);
	free(path);
}

/* Remembers that kind (apiVersion av) was applied in the environment, so
 * that its objects are observed (and pruned) once the configuration stops
 * declaring them. */
static void note_kind(rc_driver *d, const char *kind_key, const char *av)
{
	char *path, *dir;
	bool known;

	pthread_mutex_lock(&d->mu);
	known = json_object_get(d->kinds, kind_key) != NULL;
	if (!known)
		json_object_set_new(d->kinds, kind_key, json_string(av));
	pthread_mutex_unlock(&d->mu);
	if (known)
		return;
	path = kinds_path(d);
	dir = rc_strdup(path);
	*strrchr(dir, '/') = '\0';
	pthread_mutex_lock(&d->mu);
	if (rc_local_mkdirs(dir, 0755) < 0 ||
	    rc_local_write_json(path, d->kinds) < 0) {
		RC_WARN("kubernetes: %s", rc_error_last()->message);
		rc_error_clear();
	}
	pthread_mutex_unlock(&d->mu);
	free(dir);
	free(path);
}

static void kube_close(rc_driver *d)
{
	if (!d)
		return;
	client_put(d->client);
	json_decref(d->live);
	json_decref(d->gone);
	json_decref(d->kinds);
	rc_strmap_release(&d->locs);
	free(d->locbuf);
	pthread_mutex_destroy(&d->mu);
	free(d->project);
	free(d->config_dir);
	free(d->state_dir);
	free(d->run_id);
	free(d->ns);
	free(d->selector);
	free(d->user);
	free(d);
}

static int kube_open(rc_driver **out, const rc_env *env,
		     const rc_driver_ctx *ctx)
{
	rc_driver *d = rc_calloc(1, sizeof(*d));
	const rc_target *t = &env->target;
	rc_buf kc = RC_BUF_INIT_MAX(PATH_MAX * 2);
	int rc;

	*out = NULL;
	pthread_mutex_init(&d->mu, NULL);
	d->env = env;
	d->project = rc_strdup(ctx->project ? ctx->project : "reconcile");
	d->config_dir = rc_strdup(ctx->config_dir ? ctx->config_dir : ".");
	d->state_dir = rc_strdup(ctx->state_dir ? ctx->state_dir : ".reconcile");
	d->run_id = ctx->run_id ? rc_strdup(ctx->run_id) : NULL;
	d->ns = rc_strdup(t->namespace ? t->namespace : "default");
	d->selector = rc_kube_selector(d->project, env->name);
	d->live = json_object();
	d->gone = json_object();
	load_kinds(d);
	if (t->kubeconfig) {
		if (t->kubeconfig[0] == '/')
			rc_buf_puts(&kc, t->kubeconfig);
		else
			rc_buf_printf(&kc, "%s/%s", d->config_dir,
				      t->kubeconfig);
	}
	rc = client_get(&d->client, t->kubeconfig ? kc.ptr : NULL, t->context,
			t->qps, t->burst);
	if (rc < 0)
		goto fail;
	d->http = d->client->http;
	if (d->client->conn.user_name) {
		rc_buf u = RC_BUF_INIT_MAX(1024);

		rc_buf_printf(&u, "the kubeconfig user \"%s\"",
			      d->client->conn.user_name);
		d->user = rc_buf_detach(&u);
	} else {
		d->user = rc_strdup("the pod's service account");
	}
	rc_buf_release(&kc);
	*out = d;
	return 0;
fail:
	rc_error_prefix("kubernetes (context %s)",
			t->context ? t->context : "current");
	rc_buf_release(&kc);
	kube_close(d);
	return rc;
}

/* -------------------------------------------------------------- expand */

static int kube_expand(rc_driver *d, const rc_env *env, rc_resource_set *out)
{
	size_t n0 = out->n;
	int rc = rc_kube_expand(env, d->project, d->config_dir, out);

	if (rc < 0)
		return rc;
	free(d->locbuf);
	rc_strmap_release(&d->locs);
	memset(&d->locs, 0, sizeof(d->locs));
	d->nlocs = out->n - n0;
	d->locbuf = rc_calloc(d->nlocs + 1, sizeof(rc_loc));
	for (size_t i = n0; i < out->n; i++) {
		rc_resource *r = &out->items[i];
		kube_kind k;

		d->locbuf[i - n0] = r->loc;
		rc_strmap_put(&d->locs, r->key, &d->locbuf[i - n0]);
		/* a cluster-scoped kind has no namespace */
		if (body_kind(d, r->body, &k) < 0) {
			rc_error_prefix("%s (%s:%d:%d)", r->key,
					r->loc.file ? r->loc.file : "?",
					r->loc.line, r->loc.col);
			return RC_ERROR;
		}
		if (!k.namespaced)
			json_object_del(json_object_get(r->body, "metadata"),
					"namespace");
		if (!strcmp(r->kind, "Namespace"))
			r->precious = true; /* deleting it deletes all in it */
		kind_release(&k);
	}
	return 0;
}

/* ------------------------------------------------------------- observe */

/* Remembers the uid of an object seen at key (see live_uid()). */
static void set_uid(rc_driver *d, const char *key, const json_t *obj)
{
	const char *uid = json_string_value(
		json_object_get(json_object_get(obj, "metadata"), "uid"));

	pthread_mutex_lock(&d->mu);
	if (uid)
		json_object_set_new(d->live, key, json_string(uid));
	pthread_mutex_unlock(&d->mu);
}

/* The body of a listed or watched object of the environment (new ref),
 * its key in *key; NULL for one without a name or being deleted (as good
 * as gone), or (with an error) one that cannot be read. */
static json_t *item_body(rc_driver *d, json_t *item, const char *av,
			 const char *kind, const char *kk,
			 const rc_resource_set *desired, rc_buf *key)
{
	const json_t *md = json_object_get(item, "metadata");
	const char *name = json_string_value(json_object_get(md, "name"));
	const rc_resource *want;

	rc_buf_clear(key);
	if (!name || json_object_get(md, "deletionTimestamp"))
		return NULL;
	/* a list's items carry no kind */
	json_object_set_new(item, "apiVersion", json_string(av));
	json_object_set_new(item, "kind", json_string(kind));
	rc_buf_printf(key, "%s/%s/%s", d->env->name, kk, name);
	want = rc_resource_set_find(desired, key->ptr);
	return rc_kube_to_body(item, want ? want->body : NULL);
}

/* Lists every object of kind k in the environment (one LIST per page);
 * with rv, the list's resourceVersion goes to *rv (new string). */
static int list_kind(rc_driver *d, const kube_kind *k, const char *av,
		     const char *kind, const rc_resource_set *desired,
		     rc_resource_set *out, char **rv)
{
	size_t n0 = out->n;
	char *cont = NULL;
	int rc = 0, restarts = 0;
	char *kk = rc_kube_kind_key(av, kind);

	for (;;) {
		rc_buf path = RC_BUF_INIT_MAX(8192);
		rc_http_resp r;
		json_t *j = NULL, *item;
		size_t i;

		obj_path(&path, d, k, NULL);
		rc_http_query_add(&path, "labelSelector", d->selector);
		rc_buf_printf(&path, "&limit=%d", KUBE_PAGE);
		if (cont)
			rc_http_query_add(&path, "continue", cont);
		free(cont);
		cont = NULL;
		rc_http_resp_init(&r);
		rc = send_req(d, "GET", path.ptr, NULL, NULL, true, &r);
		if (rc == 0 && r.status == 410 && restarts++ < 3) {
			/* the continue token expired: list again */
			RC_INFO("kubernetes: the list of %s expired; listing "
				"again",
				k->resource);
			rc_resource_set_truncate(out, n0);
			rc_http_resp_release(&r);
			rc_buf_release(&path);
			continue;
		}
		if (rc == 0 && r.status != 200)
			rc = status_error(d, &r, "list", k, NULL, (rc_loc){0});
		if (rc == 0 && !(j = reply_json(&r, "GET", path.ptr)))
			rc = RC_EINVALID;
		if (rc == 0 && rv && !*rv) {
			const char *v = json_string_value(json_object_get(
				json_object_get(j, "metadata"),
				"resourceVersion"));

			if (v)
				*rv = rc_strdup(v);
		}
		json_array_foreach(json_object_get(j, "items"), i, item) {
			rc_buf key = RC_BUF_INIT_MAX(1024);
			json_t *body = item_body(d, item, av, kind, kk, desired,
						 &key);

			if (!key.len) {
				rc_buf_release(&key);
				continue; /* going away: as good as gone */
			}
			if (body) {
				rc_resource *res = rc_resource_set_add(
					out, d->env->name, RC_KUBE_DRIVER, kk,
					strrchr(key.ptr, '/') + 1, body);
				bool sick;
				char *health = rc_kube_health(item, &sick);

				if (health)
					rc_resource_set_health(res, sick, "%s",
							       health);
				free(health);
				if (k->namespaced) {
					/* deleted before its namespace */
					rc_buf nk = RC_BUF_INIT_MAX(1024);

					rc_buf_printf(&nk, "%s/Namespace/%s",
						      d->env->name, d->ns);
					rc_resource_add_dep(res, nk.ptr);
					rc_buf_release(&nk);
				}
				set_uid(d, key.ptr, item);
			} else {
				RC_WARN("kubernetes: ignoring %s: %s", key.ptr,
					rc_error_last()->message);
				rc_error_clear();
			}
			rc_buf_release(&key);
		}
		if (rc == 0) {
			const char *c = json_string_value(json_object_get(
				json_object_get(j, "metadata"), "continue"));

			if (c && *c)
				cont = rc_strdup(c);
		}
		json_decref(j);
		rc_http_resp_release(&r);
		rc_buf_release(&path);
		if (rc < 0 || !cont)
			break;
	}
	free(cont);
	free(kk);
	return rc;
}

/* The namespace itself: one GET (it is cluster-scoped, and the only one). */
static int observe_namespace(rc_driver *d, rc_resource_set *out)
{
	rc_buf path = RC_BUF_INIT_MAX(1024);
	rc_http_resp r;
	json_t *j = NULL, *labels;
	const char *mb;
	int rc;

	rc_buf_puts(&path, "/api/v1/namespaces/");
	rc_http_url_encode(&path, d->ns);
	rc_http_resp_init(&r);
	rc = send_req(d, "GET", path.ptr, NULL, NULL, true, &r);
	if (rc == 0 && r.status == 404)
		goto done;
	if (rc == 0 && r.status != 200) {
		kube_kind k = {0};

		k.group_version = rc_strdup("v1");
		k.resource = rc_strdup("namespaces");
		k.group = rc_strdup("");
		rc = status_error(d, &r, "get", &k, d->ns, (rc_loc){0});
		kind_release(&k);
	}
	if (rc == 0 && !(j = reply_json(&r, "GET", path.ptr)))
		rc = RC_EINVALID;
	if (rc < 0)
		goto done;
	labels = json_object_get(json_object_get(j, "metadata"), "labels");
	mb = json_string_value(json_object_get(labels, RC_KUBE_LABEL_MANAGED_BY));
	if (mb && !strcmp(mb, RC_KUBE_MANAGED_BY) &&
	    !json_object_get(json_object_get(j, "metadata"),
			     "deletionTimestamp")) {
		char *env_label = rc_kube_label_value(d->env->name);
		const char *el = json_string_value(
			json_object_get(labels, RC_KUBE_LABEL_ENV));

		if (el && !strcmp(el, env_label)) {
			rc_buf key = RC_BUF_INIT_MAX(1024);
			json_t *body;

			json_object_set_new(j, "apiVersion", json_string("v1"));
			json_object_set_new(j, "kind", json_string("Namespace"));
			rc_buf_printf(&key, "%s/Namespace/%s", d->env->name,
				      d->ns);
			body = rc_kube_to_body(j, NULL);
			if (body) {
				rc_resource *res = rc_resource_set_add(
					out, d->env->name, RC_KUBE_DRIVER,
					"Namespace", d->ns, body);

				res->precious = true;
				set_uid(d, key.ptr, j);
			}
			rc_buf_release(&key);
		}
		free(env_label);
	}
done:
	json_decref(j);
	rc_http_resp_release(&r);
	rc_buf_release(&path);
	return rc;
}

static void want_kind(json_t *kinds, const char *av, const char *kind)
{
	rc_buf k = RC_BUF_INIT_MAX(512);

	rc_buf_printf(&k, "%s\n%s", av, kind);
	json_object_set_new(kinds, k.ptr, json_true());
	rc_buf_release(&k);
}

/* Whether reconcile ever applied that kind in the environment. */
static bool applied_here(rc_driver *d, const char *av, const char *kind)
{
	char *kk = rc_kube_kind_key(av, kind);
	bool yes;

	pthread_mutex_lock(&d->mu);
	yes = json_object_get(d->kinds, kk) != NULL;
	pthread_mutex_unlock(&d->mu);
	free(kk);
	return yes;
}

/* The kinds to observe (and watch): "apiVersion\nKind" -> true for what
 * the mapping makes, what is declared, what was applied (new ref). */
static json_t *observed_kinds(rc_driver *d, const rc_resource_set *desired)
{
	json_t *kinds = json_object(), *v;
	const char *kk;

	want_kind(kinds, "v1", "ConfigMap");
	want_kind(kinds, "v1", "Secret");
	want_kind(kinds, "v1", "Service");
	want_kind(kinds, "apps/v1", "Deployment");
	for (size_t i = 0; i < desired->n; i++) {
		const json_t *b = desired->items[i].body;

		if (strcmp(desired->items[i].env, d->env->name))
			continue;
		want_kind(kinds,
			  json_string_value(json_object_get(b, "apiVersion")),
			  json_string_value(json_object_get(b, "kind")));
	}
	json_object_foreach(d->kinds, kk, v) {
		const char *dot = strchr(kk, '.');
		rc_buf kind = RC_BUF_INIT_MAX(512);

		rc_buf_put(&kind, kk, dot ? (size_t)(dot - kk) : strlen(kk));
		want_kind(kinds, json_string_value(v), kind.ptr);
		rc_buf_release(&kind);
	}
	return kinds;
}

static int kube_observe(rc_driver *d, const rc_resource_set *desired,
			rc_resource_set *out)
{
	json_t *kinds = observed_kinds(d, desired), *v;
	const char *kk;
	int rc = 0;

	json_object_foreach(kinds, kk, v) {
		char *av = rc_strdup(kk), *kind = strchr(av, '\n');
		kube_kind k;

		*kind++ = '\0';
		if (!strcmp(kind, "Namespace")) {
			rc = observe_namespace(d, out);
		} else if ((rc = disc_kind(d, av, kind, &k)) == 0) {
			rc = list_kind(d, &k, av, kind, desired, out, NULL);
			kind_release(&k);
		} else if (rc == RC_ENOTFOUND && !applied_here(d, av, kind)) {
			/* not served and never applied here: nothing to
			 * observe (the apply will say what is missing) */
			rc_error_clear();
			rc = 0;
		}
		free(av);
		if (rc < 0)
			break;
	}
	json_decref(kinds);
	return rc;
}

/* --------------------------------------------------------------- apply */

static int resolve_secret(void *ctx, const json_t *secret_obj, char **value)
{
	rc_driver *d = ctx;

	return rc_secret_resolve(value, secret_obj, d->env, d->config_dir);
}

static rc_loc action_loc(rc_driver *d, const rc_action *a)
{
	rc_loc *l = rc_strmap_get(&d->locs, a->key);

	return l ? *l : (rc_loc){0};
}

/* Server-side apply of body; *result the object the server returns (new
 * ref). dry_run asks the server what it would make. */
static int ssa(rc_driver *d, const rc_action *a, const json_t *body,
	       bool dry_run, json_t **result)
{
	rc_buf path = RC_BUF_INIT_MAX(8192);
	json_t *obj = NULL;
	char *text = NULL;
	kube_kind k = {0};
	rc_http_resp r;
	int rc;

	*result = NULL;
	rc_http_resp_init(&r);
	if ((rc = body_kind(d, body, &k)) < 0)
		goto done;
	obj = rc_kube_to_object(body, resolve_secret, d);
	if (!obj) {
		rc = RC_ERROR;
		goto done;
	}
	text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	obj_path(&path, d, &k, a->name);
	rc_buf_puts(&path, "?fieldManager=" KUBE_FIELD_MANAGER);
	if (d->env->policy.force_conflicts)
		rc_buf_puts(&path, "&force=true");
	if (dry_run)
		rc_buf_puts(&path, "&dryRun=All");
	rc = send_req(d, "PATCH", path.ptr, "application/apply-patch+yaml",
		      text, true, &r);
	if (rc < 0)
		goto done;
	if (r.status != 200 && r.status != 201) {
		rc = status_error(d, &r, "patch", &k, a->name, action_loc(d, a));
		goto done;
	}
	*result = reply_json(&r, "PATCH", path.ptr);
	if (!*result)
		rc = RC_EINVALID;
done:
	if (text) {
		explicit_bzero(text, strlen(text));
		free(text);
	}
	json_decref(obj);
	kind_release(&k);
	rc_http_resp_release(&r);
	rc_buf_release(&path);
	return rc;
}

/* DELETE, foreground. 1 when the object is gone already, 0 when it is
 * going (the server answered it with its deletionTimestamp). uid: only
 * that object. */
static int delete_obj(rc_driver *d, const json_t *body, const char *name,
		      const char *uid)
{
	rc_buf path = RC_BUF_INIT_MAX(8192);
	kube_kind k = {0};
	json_t *opts, *st;
	char *text;
	rc_http_resp r;
	int rc;

	rc_http_resp_init(&r);
	if ((rc = body_kind(d, body, &k)) < 0)
		goto done;
	obj_path(&path, d, &k, name);
	opts = json_pack("{s:s, s:s, s:s}", "kind", "DeleteOptions",
			 "apiVersion", "v1", "propagationPolicy", "Foreground");
	if (uid)
		json_object_set_new(opts, "preconditions",
				    json_pack("{s:s}", "uid", uid));
	text = json_dumps(opts, JSON_COMPACT);
	json_decref(opts);
	rc = send_req(d, "DELETE", path.ptr, "application/json", text, true,
		      &r);
	free(text);
	if (rc < 0)
		goto done;
	if (r.status == 404) {
		rc = 1;
	} else if (r.status == 200 || r.status == 202) {
		/* a Status (kind Status) when it went at once, else the
		 * object, terminating */
		st = json_loadb(r.body.ptr, r.body.len, 0, NULL);
		rc = !strcmp(json_string_value(json_object_get(st, "kind"))
				     ? json_string_value(
					       json_object_get(st, "kind"))
				     : "",
			     "Status");
		json_decref(st);
	} else {
		/* 409 with a uid precondition: it was replaced meanwhile,
		 * and what is there now is not what the plan saw */
		rc = status_error(d, &r, "delete", &k, name, (rc_loc){0});
	}
done:
	kind_release(&k);
	rc_http_resp_release(&r);
	rc_buf_release(&path);
	return rc;
}

/* "deployments.apps", "pods" */
static void qualified_resource(rc_buf *b, const kube_kind *k)
{
	rc_buf_printf(b, "%s%s%s", k->resource, *k->group ? "." : "",
		      k->group);
}

/* The dependents of obj (kind) still there, as [[resource, object], ...]
 * (new): the objects of the kind it owns, listed once in its namespace
 * with its selector (one page), whose ownerReferences name its uid. NULL
 * when that kind is not known or cannot be listed. */
static json_t *dependents_of(rc_driver *d, const char *kind, const json_t *obj)
{
	const char *av, *dk, *k_, *uid = json_string_value(json_object_get(
				     json_object_get(obj, "metadata"), "uid"));
	rc_buf path = RC_BUF_INIT_MAX(8192), sel = RC_BUF_INIT_MAX(4096),
	       res = RC_BUF_INIT_MAX(256);
	json_t *list = NULL, *deps = NULL, *item, *v;
	kube_kind k = {0};
	rc_http_resp r;
	size_t i;

	rc_http_resp_init(&r);
	if (!uid || !rc_kube_dependent_kind(kind, &av, &dk) ||
	    disc_kind(d, av, dk, &k) < 0)
		goto done;
	obj_path(&path, d, &k, NULL);
	json_object_foreach(json_object_get(json_object_get(json_object_get(
							obj, "spec"),
						"selector"),
			    "matchLabels"),
			    k_, v)
		rc_buf_printf(&sel, "%s%s=%s", sel.len ? "," : "", k_,
			      json_string_value(v) ? json_string_value(v) : "");
	rc_buf_printf(&path, "?limit=%d", KUBE_PAGE);
	if (sel.len)
		rc_http_query_add(&path, "labelSelector", sel.ptr);
	if (send_req(d, "GET", path.ptr, NULL, NULL, true, &r) < 0 ||
	    r.status != 200 || !(list = reply_json(&r, "GET", path.ptr)))
		goto done;
	qualified_resource(&res, &k);
	deps = json_array();
	json_array_foreach(json_object_get(list, "items"), i, item) {
		const json_t *ref;
		size_t j;

		json_array_foreach(json_object_get(json_object_get(item,
								   "metadata"),
						   "ownerReferences"),
				   j, ref) {
			const char *ou = json_string_value(
				json_object_get(ref, "uid"));

			if (ou && !strcmp(ou, uid)) {
				json_array_append_new(
					deps, json_pack("[sO]", res.ptr, item));
				break;
			}
		}
	}
done:
	rc_error_clear(); /* the message says what it knows */
	json_decref(list);
	kind_release(&k);
	rc_http_resp_release(&r);
	rc_buf_release(&path);
	rc_buf_release(&sel);
	rc_buf_release(&res);
	return deps;
}

/* The RC_ETIMEOUT of a deletion that did not end: what holds obj (the
 * object as last seen), with its dependents when a foreground deletion
 * waits for them. */
static int stuck_error(rc_driver *d, const kube_kind *k, const json_t *body,
		       const json_t *obj, long waited)
{
	rc_buf msg = RC_BUF_INIT_MAX(1 << 16), res = RC_BUF_INIT_MAX(256);
	json_t *deps = NULL;
	int rc;

	if (json_array_size(json_object_get(json_object_get(obj, "metadata"),
					    "finalizers")))
		deps = dependents_of(d,
				     json_string_value(
					     json_object_get(body, "kind")),
				     obj);
	qualified_resource(&res, k);
	rc_kube_deletion_stuck(&msg, res.ptr, obj, waited, deps);
	rc = rc_error_set(RC_ETIMEOUT, RC_ECLASS_PLATFORM, "%s", msg.ptr);
	json_decref(deps);
	rc_buf_release(&msg);
	rc_buf_release(&res);
	return rc;
}

/*
 * Waits until the deleted object at name is gone: a GET answers 404, or
 * an object with another uid (one made since) when uid is given. Polls
 * with backoff, 100 ms doubling to 2 s, so an object that takes t seconds
 * costs about log2(10 t) + t / 2 GETs. Past timeout seconds, RC_ETIMEOUT
 * saying what still holds it (rc_kube_deletion_stuck()).
 */
static int wait_gone(rc_driver *d, const json_t *body, const char *name,
		     const char *uid, long timeout)
{
	rc_buf path = RC_BUF_INIT_MAX(8192);
	long long deadline = rc_local_now_ms() + timeout * 1000;
	kube_kind k = {0};
	json_t *obj = NULL;
	long step = 100;
	int rc;

	if ((rc = body_kind(d, body, &k)) < 0)
		return rc;
	obj_path(&path, d, &k, name);
	for (;;) {
		long long left = deadline - rc_local_now_ms();
		const char *u;
		rc_http_resp r;

		if (left <= 0) {
			rc = stuck_error(d, &k, body, obj, timeout);
			break;
		}
		rc_local_sleep_ms(step < left ? step : (long)left);
		step = step * 2 < 2000 ? step * 2 : 2000;
		rc_http_resp_init(&r);
		rc = send_req(d, "GET", path.ptr, NULL, NULL, true, &r);
		if (rc == 0 && r.status == 404) {
			rc_http_resp_release(&r);
			break;
		}
		if (rc == 0 && r.status != 200)
			rc = status_error(d, &r, "get", &k, name, (rc_loc){0});
		json_decref(obj);
		obj = NULL;
		if (rc == 0 && !(obj = reply_json(&r, "GET", path.ptr)))
			rc = RC_EINVALID;
		rc_http_resp_release(&r);
		if (rc < 0)
			break;
		u = json_string_value(
			json_object_get(json_object_get(obj, "metadata"), "uid"));
		if (uid && u && strcmp(uid, u))
			break; /* made anew since: ours is gone */
	}
	json_decref(obj);
	kind_release(&k);
	rc_buf_release(&path);
	return rc;
}

/* How long a deletion or a rollout is waited for, in seconds. */
static long wait_timeout(const rc_driver *d)
{
	return d->env->target.wait_timeout > 0 ? d->env->target.wait_timeout
					       : 300;
}

/* The uid of the object observed or applied at key, for a delete that must
 * remove that object and no other (borrowed; NULL when unknown). */
static const char *live_uid(rc_driver *d, const char *key)
{
	const char *uid;

	pthread_mutex_lock(&d->mu);
	uid = json_string_value(json_object_get(d->live, key));
	pthread_mutex_unlock(&d->mu);
	return uid;
}

/* Remembers that the object at key was gone when deleted (the DELETE
 * answered 404 or Success), so that kube_wait() asks nothing. */
static void note_gone(rc_driver *d, const char *key)
{
	pthread_mutex_lock(&d->mu);
	json_object_set_new(d->gone, key, json_true());
	pthread_mutex_unlock(&d->mu);
}

/* Whether a delete found key gone (and forgets it). */
static bool was_gone(rc_driver *d, const char *key)
{
	bool gone;

	pthread_mutex_lock(&d->mu);
	gone = json_object_get(d->gone, key) != NULL;
	json_object_del(d->gone, key);
	pthread_mutex_unlock(&d->mu);
	return gone;
}

static int kube_apply(rc_driver *d, const rc_action *a, json_t **result)
{
	json_t *obj = NULL;
	int rc;

	*result = NULL;
	switch (a->op) {
	case RC_OP_DELETE:
		/* kube_wait() waits until it is gone */
		rc = delete_obj(d, a->actual, a->name, live_uid(d, a->key));
		if (rc == 1)
			note_gone(d, a->key);
		return rc < 0 ? rc : 0;
	case RC_OP_REPLACE:
		/* delete, wait until it is gone, create */
		rc = delete_obj(d, a->actual, a->name, live_uid(d, a->key));
		if (rc == 0)
			rc = wait_gone(d, a->actual, a->name,
				       live_uid(d, a->key), wait_timeout(d));
		if (rc < 0)
			return rc;
		/* then create it anew */
		/* fall through */
	case RC_OP_CREATE:
	case RC_OP_UPDATE:
		rc = ssa(d, a, a->desired, false, &obj);
		if (rc < 0)
			return rc;
		note_kind(d, a->kind,
			  json_string_value(json_object_get(a->desired,
							    "apiVersion")));
		set_uid(d, a->key, obj);
		*result = rc_kube_to_body(obj, a->desired);
		rc_kube_normalize(a->kind, *result);
		json_decref(obj);
		return 0;
	case RC_OP_RUN:
		break;
	}
	return rc_error_set(RC_EUNSUPPORTED, RC_ECLASS_INTERNAL,
			    "kubernetes: cannot apply '%s'", rc_op_name(a->op));
}

static int kube_dry_run(rc_driver *d, const rc_action *a, json_t **result)
{
	json_t *obj = NULL;
	int rc;

	*result = NULL;
	if (a->op != RC_OP_CREATE && a->op != RC_OP_UPDATE)
		return 0;
	rc = ssa(d, a, a->desired, true, &obj);
	if (rc < 0)
		return rc;
	*result = rc_kube_to_body(obj, a->desired);
	rc_kube_normalize(a->kind, *result);
	json_decref(obj);
	return 0;
}

/* ---------------------------------------------------------------- wait */

static bool status_true(const json_t *c)
{
	const char *s = json_string_value(json_object_get(c, "status"));

	return s && !strcmp(s, "True");
}

static const json_t *condition(const json_t *obj, const char *type)
{
	const json_t *c;
	size_t i;

	json_array_foreach(json_object_get(json_object_get(obj, "status"),
					   "conditions"),
			   i, c) {
		const char *t = json_string_value(json_object_get(c, "type"));

		if (t && !strcmp(t, type))
			return c;
	}
	return NULL;
}

static json_int_t int_at(const json_t *o, const char *a, const char *b)
{
	return json_integer_value(json_object_get(json_object_get(o, a), b));
}

/* GET of what the action touched (new ref). */
static int get_obj(rc_driver *d, const json_t *body, const char *name,
		   json_t **out)
{
	rc_buf path = RC_BUF_INIT_MAX(8192);
	kube_kind k = {0};
	rc_http_resp r;
	int rc;

	*out = NULL;
	rc_http_resp_init(&r);
	if ((rc = body_kind(d, body, &k)) < 0)
		goto done;
	obj_path(&path, d, &k, name);
	rc = send_req(d, "GET", path.ptr, NULL, NULL, true, &r);
	if (rc == 0 && r.status != 200)
		rc = status_error(d, &r, "get", &k, name, (rc_loc){0});
	if (rc == 0 && !(*out = reply_json(&r, "GET", path.ptr)))
		rc = RC_EINVALID;
done:
	kind_release(&k);
	rc_http_resp_release(&r);
	rc_buf_release(&path);
	return rc;
}

/* 1 when the rollout is complete, 0 when it goes on, < 0 when it failed. */
static int rollout_state(const json_t *obj, const char *name, rc_buf *why)
{
	json_int_t gen = int_at(obj, "metadata", "generation");
	json_int_t og = int_at(obj, "status", "observedGeneration");
	const json_t *spec_r = json_object_get(json_object_get(obj, "spec"),
					       "replicas");
	json_int_t want = spec_r ? json_integer_value(spec_r) : 1;
	json_int_t upd = int_at(obj, "status", "updatedReplicas");
	json_int_t avail = int_at(obj, "status", "availableReplicas");
	json_int_t total = int_at(obj, "status", "replicas");
	const json_t *prog = condition(obj, "Progressing");
	const char *reason = json_string_value(json_object_get(prog, "reason"));

	rc_buf_clear(why);
	if (reason && !strcmp(reason, "ProgressDeadlineExceeded")) {
		const char *m = json_string_value(json_object_get(prog, "message"));

		rc_buf_printf(why, "deployment '%s' failed to roll out: %s", name,
			      m ? m : reason);
		return -1;
	}
	if (og < gen) {
		rc_buf_printf(why, "the deployment controller has not seen "
				   "generation %lld yet",
			      (long long)gen);
		return 0;
	}
	if (upd < want || avail < want || total > want) {
		rc_buf_printf(why, "%lld of %lld replicas updated, %lld "
				   "available, %lld in all",
			      (long long)upd, (long long)want,
			      (long long)avail, (long long)total);
		return 0;
	}
	return 1;
}

static int kube_wait(rc_driver *d, const rc_action *a, long timeout)
{
	const char *kind = a->kind;
	rc_buf why = RC_BUF_INIT_MAX(4096);
	long long deadline = rc_local_now_ms() + timeout * 1000;
	long step = 200;
	int rc = 0;

	if (a->op == RC_OP_DELETE)
		return was_gone(d, a->key)
			       ? 0
			       : wait_gone(d, a->actual, a->name,
					   live_uid(d, a->key), timeout);
	if (a->op == RC_OP_RUN ||
	    (strcmp(kind, "Deployment") && strcmp(kind, "StatefulSet") &&
	     strcmp(kind, "DaemonSet")))
		return 0;
	for (;;) {
		json_t *obj = NULL;
		int st;

		if ((rc = get_obj(d, a->desired, a->name, &obj)) < 0)
			break;
		if (!strcmp(kind, "Deployment")) {
			st = rollout_state(obj, a->name, &why);
		} else {
			/* StatefulSet and DaemonSet: observedGeneration and
			 * ready counts */
			json_int_t gen = int_at(obj, "metadata", "generation");
			json_int_t og = int_at(obj, "status",
					       "observedGeneration");
			json_int_t want = !strcmp(kind, "DaemonSet")
						  ? int_at(obj, "status",
							   "desiredNumberScheduled")
						  : int_at(obj, "spec", "replicas");
			json_int_t ready = int_at(obj, "status",
						  !strcmp(kind, "DaemonSet")
							  ? "numberReady"
							  : "readyReplicas");

			rc_buf_clear(&why);
			rc_buf_printf(&why, "%lld of %lld ready",
				      (long long)ready, (long long)want);
			st = og >= gen && ready >= want ? 1 : 0;
		}
		json_decref(obj);
		if (st < 0) {
			rc = rc_error_set(RC_ERROR, RC_ECLASS_PLATFORM, "%s",
					  why.ptr);
			break;
		}
		if (st > 0)
			break;
		if (rc_local_now_ms() >= deadline) {
			rc = rc_error_set(RC_ETIMEOUT, RC_ECLASS_PLATFORM,
					  "%s '%s' is not healthy within %lds: "
					  "%s (target.wait_timeout sets the "
					  "limit)",
					  kind, a->name, timeout, why.ptr);
			break;
		}
		rc_local_sleep_ms(step);
		step = step < 2000 ? step * 2 : 2000;
	}
	rc_buf_release(&why);
	return rc;
}

/* ----------------------------------------------------------------- run */

/* The last lines of the hook's pod log, and its exit status. */
static void job_log(rc_driver *d, const char *job, rc_run_result *res)
{
	rc_buf path = RC_BUF_INIT_MAX(8192), sel = RC_BUF_INIT_MAX(512);
	rc_http_resp r;
	json_t *pods = NULL, *pod;
	const char *pname = NULL;

	rc_http_resp_init(&r);
	rc_buf_printf(&path, "/api/v1/namespaces/%s/pods", d->ns);
	rc_buf_printf(&sel, "job-name=%s", job);
	rc_http_query_add(&path, "labelSelector", sel.ptr);
	if (send_req(d, "GET", path.ptr, NULL, NULL, true, &r) < 0 ||
	    r.status != 200 || !(pods = reply_json(&r, "GET", path.ptr))) {
		rc_error_clear();
		goto done;
	}
	pod = json_array_get(json_object_get(pods, "items"),
			     json_array_size(json_object_get(pods, "items")) - 1);
	pname = json_string_value(
		json_object_get(json_object_get(pod, "metadata"), "name"));
	{
		const json_t *cs = json_array_get(
			json_object_get(json_object_get(pod, "status"),
					"containerStatuses"),
			0);
		const json_t *term = json_object_get(
			json_object_get(cs, "state"), "terminated");

		if (term)
			res->exit_code = (int)json_integer_value(
				json_object_get(term, "exitCode"));
	}
	if (!pname)
		goto done;
	rc_buf_clear(&path);
	rc_buf_printf(&path, "/api/v1/namespaces/%s/pods/", d->ns);
	rc_http_url_encode(&path, pname);
	rc_buf_puts(&path, "/log?tailLines=20");
	rc_http_resp_release(&r);
	rc_http_resp_init(&r);
	if (send_req(d, "GET", path.ptr, NULL, NULL, true, &r) == 0 &&
	    r.status == 200) {
		rc_buf out = RC_BUF_INIT_MAX(1 << 16);

		rc_buf_put(&out, r.body.ptr, r.body.len);
		rc_redact(&out);
		res->output_tail = rc_buf_detach(&out);
	}
	rc_error_clear();
done:
	json_decref(pods);
	rc_http_resp_release(&r);
	rc_buf_release(&path);
	rc_buf_release(&sel);
}

/* Follows Job job_name (job: a body with its apiVersion and kind) until
 * it completes or fails, or until deadline (rc_local_now_ms()): *state
 * RC_HOOK_SUCCEEDED or RC_HOOK_FAILED (a Job past its
 * activeDeadlineSeconds also sets res->timed_out), else RC_HOOK_RUNNING;
 * res gets its pod's exit status and log tail either way. RC_ENOTFOUND
 * when there is no such Job. */
static int job_follow(rc_driver *d, const json_t *job, const char *job_name,
		      long long deadline, rc_hook_state *state,
		      rc_run_result *res)
{
	json_t *obj = NULL;
	long step = 200;
	int rc, code;

	*state = RC_HOOK_RUNNING;
	for (;;) {
		const json_t *c;

		if ((rc = get_obj(d, job, job_name, &obj)) < 0)
			return rc;
		if ((c = condition(obj, "Complete")) && status_true(c)) {
			*state = RC_HOOK_SUCCEEDED;
			res->exit_code = 0;
			break;
		}
		if ((c = condition(obj, "Failed")) && status_true(c)) {
			const char *reason =
				json_string_value(json_object_get(c, "reason"));

			*state = RC_HOOK_FAILED;
			res->exit_code = 1;
			res->timed_out = reason &&
					 !strcmp(reason, "DeadlineExceeded");
			break;
		}
		json_decref(obj);
		obj = NULL;
		if (rc_local_now_ms() >= deadline)
			break;
		rc_local_sleep_ms(step);
		step = step < 2000 ? step * 2 : 2000;
	}
	json_decref(obj);
	code = res->exit_code;
	job_log(d, job_name, res);
	if (code == 0)
		res->exit_code = 0; /* Complete wins over a pod's view */
	else if (res->exit_code == 0)
		res->exit_code = code;
	return 0;
}

static char *hook_job_name(rc_driver *d, const json_t *spec)
{
	const char *hook = json_string_value(json_object_get(spec, "name"));
	const char *run_id = json_string_value(json_object_get(spec, "run_id"));

	return rc_kube_hook_job_name(hook ? hook : "hook",
				     run_id ? run_id
				     : d->run_id ? d->run_id
						 : "none");
}

static int kube_run(rc_driver *d, const json_t *spec, rc_run_result *res)
{
	const char *where = json_string_value(json_object_get(spec, "where"));
	const char *hook = json_string_value(json_object_get(spec, "name"));
	long timeout = (long)json_integer_value(json_object_get(spec, "timeout"));
	char *job_name;
	json_t *job, *obj = NULL;
	rc_action a = {0};
	rc_hook_state st;
	int rc;

	memset(res, 0, sizeof(*res));
	res->exit_code = -1;
	if (where && !strcmp(where, "local"))
		return rc_local_run_hook(d->env, d->config_dir, d->state_dir,
					 spec, res);
	if (timeout <= 0)
		timeout = 600;
	job_name = hook_job_name(d, spec);
	job = rc_kube_hook_job(d->env, d->project, spec, job_name);
	if (!job) {
		free(job_name);
		return RC_ERROR;
	}
	/* by server-side apply: a hook retried after a crash finds its Job */
	a.op = RC_OP_CREATE;
	a.name = job_name;
	a.kind = (char *)(uintptr_t)"Job";
	a.key = job_name;
	rc = ssa(d, &a, job, false, &obj);
	json_decref(obj);
	if (rc < 0)
		goto done;
	RC_INFO("kubernetes: hook '%s' runs as Job %s/%s", hook ? hook : "",
		d->ns, job_name);
	rc = job_follow(d, job, job_name,
			rc_local_now_ms() + (long long)timeout * 1000 + 30000,
			&st, res);
	if (rc == 0 && st == RC_HOOK_RUNNING)
		res->timed_out = true;
done:
	json_decref(job);
	free(job_name);
	return rc;
}

/* The Job named after the hook and the earlier run: no Job is a hook
 * that never started (a finished Job is kept RC_KUBE_HOOK_TTL seconds). */
static int kube_hook_status(rc_driver *d, const json_t *spec, long wait,
			    rc_hook_state *state, rc_run_result *res)
{
	json_t *job;
	char *job_name;
	int rc;

	if (rc_hook_status_begin(spec, state, res))
		return rc_local_hook_status(d->env, d->config_dir, d->state_dir,
					    spec, wait, state, res);
	job_name = hook_job_name(d, spec);
	job = json_pack("{s:s, s:s}", "apiVersion", "batch/v1", "kind", "Job");
	rc = job_follow(d, job, job_name,
			rc_local_now_ms() + (long long)(wait > 0 ? wait : 0) * 1000,
			state, res);
	if (rc == RC_ENOTFOUND) {
		rc_error_clear();
		rc = 0;
		*state = RC_HOOK_NOT_STARTED;
	}
	if (rc == 0 && *state == RC_HOOK_RUNNING) {
		/* what it printed so far is not its outcome */
		rc_run_result_release(res);
		res->exit_code = -1;
	}
	json_decref(job);
	free(job_name);
	return rc;
}

/* --------------------------------------------------------------- watch */

#define KUBE_WATCH_DEBOUNCE_MS 200
#define KUBE_WATCH_TIMEOUT_S 300
#define KUBE_WATCH_BACKOFF_MAX_MS 30000L

static long watch_timeout_s(void)
{
	const char *e = getenv("RECONCILE_KUBE_WATCH_TIMEOUT");
	char *end;
	long v;

	if (!e || !*e)
		return KUBE_WATCH_TIMEOUT_S;
	v = strtol(e, &end, 10);
	return *end || v < 1 || v > 3600 ? KUBE_WATCH_TIMEOUT_S : v;
}

struct kwatch;
struct khub;

/* One kind's LIST and WATCH, in its own thread. Its events come from the
 * cluster's shared WATCH of the kind (struct khub) when the credentials
 * may watch every namespace, else from a WATCH of its own namespace. */
struct kwatch_kind {
	struct kwatch *w;
	kube_kind k;
	char *av, *kind, *kk;
	json_t *seen;     /* name -> fingerprint of its body */
	bool listed;      /* seen is a baseline */
	char *rv;         /* where the next WATCH starts; NULL: LIST first */
	bool expired;     /* the stream said 410 */
	char *failure;    /* an ERROR event other than 410 */
	pthread_t th;
	bool started;
	/* under hubs_mu: */
	struct khub *hub;          /* the shared WATCH it follows, or NULL */
	struct kwatch_kind *hub_next;
	bool need_list;  /* LIST its namespace again (joined, or events lost) */
	bool ready;      /* listed since: the hub's events apply at once */
	json_t *held;    /* events that came while it listed, in order */
	long backoff;          /* a failed LIST of a shared kind: */
	long long next_try_ms; /* tried again then */
};

/* One environment's watch. */
struct kwatch {
	rc_driver *d;
	rc_resource_set secrets; /* the desired Secrets (copies): how their
				    observed values are told apart */
	char *env_label;   /* the environment's label value */
	void (*changed)(void *arg, const char *env, const char *key);
	void *arg;
	long timeout_s;    /* the WATCH's timeoutSeconds */
	volatile int quit; /* the kinds' threads stop */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	json_t *pending;   /* key -> true, not reported yet */
	long long first_ms; /* when the first pending change came */
	int rc;            /* the first error no retry rides out */
	char *err;
};

static void kwatch_fail(struct kwatch *w, int rc)
{
	pthread_mutex_lock(&w->mu);
	if (!w->rc) {
		w->rc = rc;
		w->err = rc_strdup(rc_error_last()->message);
	}
	w->quit = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void kwatch_mark(struct kwatch_kind *kk, const char *name)
{
	struct kwatch *w = kk->w;
	rc_buf key = RC_BUF_INIT_MAX(1024);

	rc_buf_printf(&key, "%s/%s/%s", w->d->env->name, kk->kk, name);
	RC_DEBUG("kubernetes: %s changed", key.ptr);
	pthread_mutex_lock(&w->mu);
	if (!json_object_size(w->pending))
		w->first_ms = rc_local_now_ms();
	json_object_set_new(w->pending, key.ptr, json_true());
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	rc_buf_release(&key);
}

/* Records name's fingerprint (NULL: gone); marks it when it changed. */
static void kwatch_see(struct kwatch_kind *kk, const char *name,
		       const char *fp)
{
	const char *was =
		json_string_value(json_object_get(kk->seen, name));

	if (fp && was && !strcmp(fp, was))
		return;
	if (!fp && !was)
		return;
	if (fp)
		json_object_set_new(kk->seen, name, json_string(fp));
	else
		json_object_del(kk->seen, name);
	if (kk->listed)
		kwatch_mark(kk, name);
}

/* The fingerprint of a body in normal form (new string). */
static char *body_fingerprint(const char *kind, json_t *body)
{
	rc_kube_normalize(kind, body);
	return rc_json_fingerprint(body);
}

/* LISTs the kind: the new baseline, and after a first one, what differs
 * from the last one seen is reported (what changed while no WATCH ran). */
static int kwatch_list(struct kwatch_kind *kk)
{
	struct kwatch *w = kk->w;
	rc_resource_set got = {0};
	json_t *now = json_object(), *v;
	const char *name;
	void *tmp;
	int rc;

	free(kk->rv);
	kk->rv = NULL;
	rc = list_kind(w->d, &kk->k, kk->av, kk->kind, &w->secrets, &got,
		       &kk->rv);
	if (rc == 0 && !kk->rv)
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_PLATFORM,
				  "the list of %s has no resourceVersion",
				  kk->k.resource);
	for (size_t i = 0; rc == 0 && i < got.n; i++) {
		char *fp = body_fingerprint(kk->kind, got.items[i].body);

		json_object_set_new(now, got.items[i].name, json_string(fp));
		free(fp);
	}
	if (rc == 0) {
		json_object_foreach_safe(kk->seen, tmp, name, v)
			if (!json_object_get(now, name))
				kwatch_see(kk, name, NULL);
		json_object_foreach(now, name, v)
			kwatch_see(kk, name, json_string_value(v));
		kk->listed = true;
		RC_INFO("kubernetes: %s: watching %s from resourceVersion %s "
			"(%zu listed)",
			w->d->env->name, kk->k.resource, kk->rv,
			json_object_size(now));
	}
	json_decref(now);
	rc_resource_set_release(&got);
	return rc;
}

/* An ADDED, MODIFIED or DELETED event of one of kk's objects. */
static void kwatch_object(struct kwatch_kind *kk, const char *type,
			  json_t *obj)
{
	const char *name = json_string_value(
		json_object_get(json_object_get(obj, "metadata"), "name"));
	rc_buf key = RC_BUF_INIT_MAX(1024);
	json_t *body = NULL;
	char *fp = NULL;

	if (!name)
		return;
	if (strcmp(type, "DELETED"))
		body = item_body(kk->w->d, obj, kk->av, kk->kind, kk->kk,
				 &kk->w->secrets, &key);
	if (body)
		fp = body_fingerprint(kk->kind, body);
	else if (key.len)
		rc_error_clear(); /* unreadable: as if gone */
	kwatch_see(kk, name, fp);
	free(fp);
	json_decref(body);
	rc_buf_release(&key);
}

static bool object_event(const char *type)
{
	return type && (!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED") ||
			!strcmp(type, "DELETED"));
}

static int kwatch_line(void *ctx, const char *line, size_t n)
{
	struct kwatch_kind *kk = ctx;
	json_t *ev = json_loadb(line, n, 0, NULL), *obj;
	const char *type, *rv;
	int stop = 0;

	if (!ev)
		return 0; /* not an event: ignore it */
	type = json_string_value(json_object_get(ev, "type"));
	obj = json_object_get(ev, "object");
	rv = json_string_value(json_object_get(
		json_object_get(obj, "metadata"), "resourceVersion"));
	if (!type) {
		/* nothing */
	} else if (!strcmp(type, "ERROR")) {
		if (json_integer_value(json_object_get(obj, "code")) == 410) {
			kk->expired = true;
		} else {
			const char *m = json_string_value(
				json_object_get(obj, "message"));

			free(kk->failure);
			kk->failure = rc_strdup(m ? m : "an ERROR event");
		}
		stop = 1;
	} else if (object_event(type)) {
		kwatch_object(kk, type, obj);
	}
	if (rv && !stop && kk->rv && strcmp(rv, kk->rv)) {
		free(kk->rv);
		kk->rv = rc_strdup(rv);
	}
	json_decref(ev);
	return stop;
}

/* One WATCH from kk->rv until the server ends it (timeoutSeconds), it
 * says 410, or the watch stops. A reply that is not a stream is an
 * error; a 410 reply or event makes the next round LIST again. */
static int kwatch_stream(struct kwatch_kind *kk)
{
	struct kwatch *w = kk->w;
	rc_buf path = RC_BUF_INIT_MAX(8192);
	rc_http_req q = {0};
	rc_http_resp r;
	int rc;

	obj_path(&path, w->d, &kk->k, NULL);
	rc_http_query_add(&path, "labelSelector", w->d->selector);
	rc_http_query_add(&path, "watch", "1");
	rc_http_query_add(&path, "resourceVersion", kk->rv);
	rc_http_query_add(&path, "allowWatchBookmarks", "true");
	rc_buf_printf(&path, "&timeoutSeconds=%ld", w->timeout_s);
	q.method = "GET";
	q.path = path.ptr;
	q.timeout_ms = (w->timeout_s + 30) * 1000;
	q.cancel = &w->quit;
	rc_http_resp_init(&r);
	kk->expired = false;
	rc = rc_http_stream(w->d->http, &q, &r, kwatch_line, kk);
	if (rc == 0 && r.status == 410)
		kk->expired = true;
	else if (rc == 0 && r.status && r.status != 200)
		rc = status_error(w->d, &r, "watch", &kk->k, NULL,
				  (rc_loc){0});
	else if (rc == 0 && kk->failure)
		rc = rc_error_set(RC_ERROR, RC_ECLASS_PLATFORM,
				  "watching %s: %s", kk->k.resource,
				  kk->failure);
	if (kk->expired) {
		RC_INFO("kubernetes: %s: resourceVersion %s of %s expired; "
			"listing again",
			w->d->env->name, kk->rv, kk->k.resource);
		free(kk->rv);
		kk->rv = NULL;
	}
	free(kk->failure);
	kk->failure = NULL;
	rc_http_resp_release(&r);
	rc_buf_release(&path);
	return rc;
}

/* Whether an error is the user's to fix (RBAC, a kind not served) rather
 * than one a retry rides out. */
static bool kwatch_fatal(int rc)
{
	return rc == RC_EAUTH || rc == RC_ENOTFOUND || rc == RC_EINVALID;
}

/*
 * One WATCH per cluster connection, kind and project, shared by every
 * environment's watch of that kind: a controller following a hundred
 * environments on one cluster holds a stream per kind, not a hundred.
 * The stream covers every namespace (the project's selector); each event
 * goes to the environment whose namespace and label it carries.
 *
 * No event falls between the two: an environment lists its namespace
 * only once the shared stream has a resourceVersion to start from (its
 * LIST is then as new as the stream's start or newer), and the events
 * that come while it lists are held and applied after the LIST (an
 * older one may report a change that is not one: a re-plan finds
 * nothing). When the stream's resourceVersion expires (410), every
 * environment lists again, as a watch of its own would. Credentials that
 * may not list every namespace (403) make each environment watch its own
 * namespace instead.
 */
struct khub {
	struct kube_client *client; /* a reference of its own */
	char *key;       /* client, kind, project */
	char *path;      /* the kind's collection over every namespace */
	char *selector;  /* the project's objects, hooks left out */
	char *resource;  /* for messages */
	int refs;        /* its environments */
	pthread_t th;
	volatile int quit;
	char *rv;        /* where the stream (re)starts; NULL: not yet */
	bool denied;     /* every-namespace access refused: watch alone */
	struct kwatch_kind *subs;
	struct khub *next;
};

static pthread_mutex_t hubs_mu = PTHREAD_MUTEX_INITIALIZER;
static struct khub *hubs;

/* Every environment of the hub lists again (under hubs_mu). */
static void hub_relist(struct khub *h)
{
	for (struct kwatch_kind *kk = h->subs; kk; kk = kk->hub_next) {
		kk->need_list = true;
		kk->ready = false;
		json_array_clear(kk->held);
		pthread_cond_signal(&kk->w->cv); /* its loop lists */
	}
}

/* The environment an object belongs to among the hub's (under hubs_mu). */
static struct kwatch_kind *hub_sub_of(struct khub *h, json_t *obj)
{
	const json_t *md = json_object_get(obj, "metadata");
	const char *ns = json_string_value(json_object_get(md, "namespace"));
	const char *env = json_string_value(json_object_get(
		json_object_get(md, "labels"), RC_KUBE_LABEL_ENV));

	if (!env)
		return NULL;
	for (struct kwatch_kind *kk = h->subs; kk; kk = kk->hub_next)
		if (!strcmp(kk->w->env_label, env) &&
		    (!kk->k.namespaced ||
		     (ns && !strcmp(kk->w->d->ns, ns))))
			return kk;
	return NULL;
}

static int hub_line(void *ctx, const char *line, size_t n)
{
	struct khub *h = ctx;
	json_t *ev = json_loadb(line, n, 0, NULL), *obj;
	const char *type, *rv;
	struct kwatch_kind *kk;
	int stop = 0;

	if (!ev)
		return 0;
	type = json_string_value(json_object_get(ev, "type"));
	obj = json_object_get(ev, "object");
	rv = json_string_value(json_object_get(
		json_object_get(obj, "metadata"), "resourceVersion"));
	pthread_mutex_lock(&hubs_mu);
	if (type && !strcmp(type, "ERROR")) {
		if (json_integer_value(json_object_get(obj, "code")) == 410) {
			RC_INFO("kubernetes: resourceVersion %s of %s expired; "
				"listing again",
				h->rv, h->resource);
			free(h->rv);
			h->rv = NULL; /* expired: start again, list again */
		} else {
			RC_WARN("kubernetes: watching %s: %s", h->resource,
				json_string_value(json_object_get(obj,
								  "message")));
		}
		stop = 1;
	} else if (object_event(type) && (kk = hub_sub_of(h, obj)) != NULL) {
		if (kk->ready)
			kwatch_object(kk, type, obj);
		else
			json_array_append(kk->held, ev);
	}
	if (rv && !stop && h->rv && strcmp(rv, h->rv)) {
		free(h->rv);
		h->rv = rc_strdup(rv);
	}
	pthread_mutex_unlock(&hubs_mu);
	json_decref(ev);
	return stop;
}

/* Where a shared stream starts: the collection's resourceVersion, from a
 * LIST of one item. 1 when every-namespace access is refused. */
static int hub_start(struct khub *h)
{
	rc_buf path = RC_BUF_INIT_MAX(8192);
	rc_http_req q = {0};
	rc_http_resp r;
	json_t *j = NULL;
	const char *rv;
	int rc;

	rc_buf_puts(&path, h->path);
	rc_http_query_add(&path, "labelSelector", h->selector);
	rc_buf_puts(&path, "&limit=1");
	q.method = "GET";
	q.path = path.ptr;
	rc_http_resp_init(&r);
	rc = rc_http_do(h->client->http, &q, &r);
	if (rc == 0 && (r.status == 401 || r.status == 403)) {
		rc = 1;
	} else if (rc == 0 && r.status != 200) {
		rc = rc_error_set(RC_ERROR, RC_ECLASS_PLATFORM,
				  "listing %s in every namespace: HTTP %ld",
				  h->resource, r.status);
	} else if (rc == 0) {
		j = json_loadb(r.body.ptr, r.body.len, 0, NULL);
		rv = json_string_value(json_object_get(
			json_object_get(j, "metadata"), "resourceVersion"));
		if (!rv)
			rc = rc_error_set(RC_EINVALID, RC_ECLASS_PLATFORM,
					  "the list of %s has no "
					  "resourceVersion",
					  h->resource);
		else {
			pthread_mutex_lock(&hubs_mu);
			free(h->rv);
			h->rv = rc_strdup(rv);
			hub_relist(h);
			pthread_mutex_unlock(&hubs_mu);
			RC_INFO("kubernetes: watching %s in every namespace "
				"from resourceVersion %s (shared by the "
				"environments on this cluster)",
				h->resource, rv);
		}
	}
	json_decref(j);
	rc_http_resp_release(&r);
	rc_buf_release(&path);
	return rc;
}

static int hub_stream(struct khub *h)
{
	rc_buf path = RC_BUF_INIT_MAX(8192);
	rc_http_req q = {0};
	rc_http_resp r;
	long timeout_s = watch_timeout_s();
	int rc;

	rc_buf_puts(&path, h->path);
	rc_http_query_add(&path, "labelSelector", h->selector);
	rc_http_query_add(&path, "watch", "1");
	pthread_mutex_lock(&hubs_mu);
	rc_http_query_add(&path, "resourceVersion", h->rv);
	pthread_mutex_unlock(&hubs_mu);
	rc_http_query_add(&path, "allowWatchBookmarks", "true");
	rc_buf_printf(&path, "&timeoutSeconds=%ld", timeout_s);
	q.method = "GET";
	q.path = path.ptr;
	q.timeout_ms = (timeout_s + 30) * 1000;
	q.cancel = &h->quit;
	rc_http_resp_init(&r);
	rc = rc_http_stream(h->client->http, &q, &r, hub_line, h);
	if (rc == 0 && r.status == 410) {
		pthread_mutex_lock(&hubs_mu);
		RC_INFO("kubernetes: resourceVersion %s of %s expired; "
			"listing again",
			h->rv ? h->rv : "?", h->resource);
		free(h->rv);
		h->rv = NULL;
		pthread_mutex_unlock(&hubs_mu);
	} else if (rc == 0 && r.status && r.status != 200) {
		rc = rc_error_set(RC_ERROR, RC_ECLASS_PLATFORM,
				  "watching %s in every namespace: HTTP %ld",
				  h->resource, r.status);
	}
	rc_http_resp_release(&r);
	rc_buf_release(&path);
	return rc;
}

static void *hub_run(void *arg)
{
	struct khub *h = arg;
	long backoff = 0;

	while (!h->quit) {
		bool started;
		int rc;

		pthread_mutex_lock(&hubs_mu);
		started = h->rv != NULL;
		pthread_mutex_unlock(&hubs_mu);
		rc = started ? hub_stream(h) : hub_start(h);
		if (rc == 1) {
			pthread_mutex_lock(&hubs_mu);
			h->denied = true;
			for (struct kwatch_kind *kk = h->subs; kk;
			     kk = kk->hub_next)
				pthread_cond_signal(&kk->w->cv);
			pthread_mutex_unlock(&hubs_mu);
			RC_INFO("kubernetes: %s cannot be listed in every "
				"namespace with these credentials: each "
				"environment watches its own namespace",
				h->resource);
			break;
		}
		if (rc < 0) {
			backoff = backoff ? backoff * 2 : 1000;
			if (backoff > KUBE_WATCH_BACKOFF_MAX_MS)
				backoff = KUBE_WATCH_BACKOFF_MAX_MS;
			RC_WARN("kubernetes: watching %s: %s (again in %ld ms)",
				h->resource, rc_error_last()->message,
				backoff);
			rc_error_clear();
			/* the stream starts again from where it was: if that
			   is too old now, the 410 makes everyone list again */
			for (long t = 0; t < backoff && !h->quit; t += 100)
				rc_local_sleep_ms(100);
		} else {
			backoff = 0;
		}
	}
	return NULL;
}

/* Joins kk to the shared stream of its kind (starting it); 0, or -1 when
 * there is none to share (kk then watches alone). */
static int hub_join(struct kwatch_kind *kk)
{
	rc_driver *d = kk->w->d;
	rc_buf key = RC_BUF_INIT_MAX(8192), path = RC_BUF_INIT_MAX(1024);
	struct khub *h;
	char *p;

	if (!kk->k.namespaced || getenv("RECONCILE_KUBE_WATCH_PER_NAMESPACE"))
		return -1;
	rc_buf_printf(&key, "%p\n%s\n%s\n%s", (void *)d->client,
		      kk->k.group_version, kk->k.resource, d->project);
	pthread_mutex_lock(&hubs_mu);
	for (h = hubs; h; h = h->next)
		if (!strcmp(h->key, key.ptr))
			break;
	if (h && h->denied) {
		pthread_mutex_unlock(&hubs_mu);
		rc_buf_release(&key);
		return -1;
	}
	if (!h) {
		h = rc_calloc(1, sizeof(*h));
		h->key = rc_buf_detach(&key);
		h->client = d->client;
		pthread_mutex_lock(&clients_mu);
		d->client->refs++;
		pthread_mutex_unlock(&clients_mu);
		rc_buf_printf(&path, "%s%s/%s", *kk->k.group ? "/apis/" : "/api/",
			      kk->k.group_version, kk->k.resource);
		h->path = rc_buf_detach(&path);
		h->resource = rc_strdup(kk->k.resource);
		p = rc_kube_label_value(d->project);
		rc_buf_printf(&path, "%s=%s,%s=%s,!%s",
			      RC_KUBE_LABEL_MANAGED_BY, RC_KUBE_MANAGED_BY,
			      RC_KUBE_LABEL_PROJECT, p, RC_KUBE_LABEL_HOOK);
		free(p);
		h->selector = rc_buf_detach(&path);
		if (pthread_create(&h->th, NULL, hub_run, h)) {
			pthread_mutex_unlock(&hubs_mu);
			client_put(h->client);
			free(h->key);
			free(h->path);
			free(h->resource);
			free(h->selector);
			free(h);
			return -1;
		}
		h->next = hubs;
		hubs = h;
	}
	h->refs++;
	kk->hub = h;
	kk->hub_next = h->subs;
	h->subs = kk;
	kk->need_list = true;
	kk->ready = false;
	kk->held = json_array();
	pthread_mutex_unlock(&hubs_mu);
	rc_buf_release(&key);
	rc_buf_release(&path);
	return 0;
}

/* Leaves the shared stream; the last one out asks it to stop and gets it
 * back, for hub_end (NULL: others still follow it). */
static struct khub *hub_leave(struct kwatch_kind *kk)
{
	struct khub *h = kk->hub, **p;
	bool last;

	if (!h)
		return NULL;
	pthread_mutex_lock(&hubs_mu);
	for (struct kwatch_kind **q = &h->subs; *q; q = &(*q)->hub_next)
		if (*q == kk) {
			*q = kk->hub_next;
			break;
		}
	last = --h->refs == 0;
	if (last)
		for (p = &hubs; *p; p = &(*p)->next)
			if (*p == h) {
				*p = h->next;
				break;
			}
	kk->hub = NULL;
	json_decref(kk->held);
	kk->held = NULL;
	pthread_mutex_unlock(&hubs_mu);
	if (!last)
		return NULL;
	h->quit = 1;
	return h;
}

/* Waits for a stream hub_leave stopped, and frees it (NULL is fine). */
static void hub_end(struct khub *h)
{
	if (!h)
		return;
	pthread_join(h->th, NULL);
	client_put(h->client);
	free(h->key);
	free(h->path);
	free(h->resource);
	free(h->selector);
	free(h->rv);
	free(h);
}

/* kk's part of a shared stream, one step, in the watch's own thread (no
 * thread per environment and kind): when the stream has a
 * resourceVersion and asks for it, its namespace is listed and the events
 * held meanwhile applied. 1 when every-namespace access was refused (kk
 * must watch alone), else 0. */
static int hub_step(struct kwatch_kind *kk)
{
	struct kwatch *w = kk->w;
	long long now = rc_local_now_ms();
	bool list, denied;

	pthread_mutex_lock(&hubs_mu);
	denied = kk->hub->denied;
	list = !denied && kk->need_list && kk->hub->rv &&
	       now >= kk->next_try_ms;
	if (list)
		kk->need_list = false;
	pthread_mutex_unlock(&hubs_mu);
	if (denied)
		return 1;
	if (!list)
		return 0;
	if (kwatch_list(kk) < 0) {
		int rc = rc_error_last()->code;

		if (kwatch_fatal(rc)) {
			kwatch_fail(w, rc);
			return 0;
		}
		kk->backoff = kk->backoff ? kk->backoff * 2 : 1000;
		if (kk->backoff > KUBE_WATCH_BACKOFF_MAX_MS)
			kk->backoff = KUBE_WATCH_BACKOFF_MAX_MS;
		RC_WARN("kubernetes: %s: listing %s: %s (again in %ld ms)",
			w->d->env->name, kk->k.resource,
			rc_error_last()->message, kk->backoff);
		rc_error_clear();
		kk->next_try_ms = now + kk->backoff;
		pthread_mutex_lock(&hubs_mu);
		kk->need_list = true;
		pthread_mutex_unlock(&hubs_mu);
		return 0;
	}
	kk->backoff = 0;
	pthread_mutex_lock(&hubs_mu);
	if (!kk->need_list) {
		/* the events that came while it listed */
		size_t i;
		json_t *ev;

		json_array_foreach(kk->held, i, ev)
			kwatch_object(kk,
				      json_string_value(
					      json_object_get(ev, "type")),
				      json_object_get(ev, "object"));
		json_array_clear(kk->held);
		kk->ready = true;
	}
	pthread_mutex_unlock(&hubs_mu);
	return 0;
}

static void *kwatch_kind_run(void *arg)
{
	struct kwatch_kind *kk = arg;
	struct kwatch *w = kk->w;
	long backoff = 0;

	while (!w->quit) {
		int rc = kk->rv ? kwatch_stream(kk) : kwatch_list(kk);

		if (rc < 0 && kwatch_fatal(rc)) {
			kwatch_fail(w, rc);
			break;
		}
		if (rc < 0) {
			backoff = backoff ? backoff * 2 : 1000;
			if (backoff > KUBE_WATCH_BACKOFF_MAX_MS)
				backoff = KUBE_WATCH_BACKOFF_MAX_MS;
			RC_WARN("kubernetes: %s: watching %s: %s (again in "
				"%ld ms)",
				w->d->env->name, kk->k.resource,
				rc_error_last()->message, backoff);
			rc_error_clear();
			for (long t = 0; t < backoff && !w->quit; t += 100)
				rc_local_sleep_ms(100);
		} else {
			backoff = 0;
		}
	}
	return NULL;
}

static void kwatch_kind_free(struct kwatch_kind *kk)
{
	kind_release(&kk->k);
	free(kk->av);
	free(kk->kk);
	free(kk->rv);
	free(kk->failure);
	json_decref(kk->seen);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reports what is pending once the debounce time has passed since its
 * first change; returns with the lock held, as it was taken. */
static void kwatch_flush(struct kwatch *w)
{
	size_t n = json_object_size(w->pending), i = 0;
	const char **keys;
	json_t *p = w->pending, *v;
	const char *key;

	w->pending = json_object();
	pthread_mutex_unlock(&w->mu);
	keys = rc_calloc(n + 1, sizeof(*keys));
	json_object_foreach(p, key, v)
		keys[i++] = key;
	qsort(keys, n, sizeof(*keys), cmp_str);
	for (i = 0; i < n; i++)
		w->changed(w->arg, w->d->env->name, keys[i]);
	free(keys);
	json_decref(p);
	pthread_mutex_lock(&w->mu);
}


static int kube_watch(rc_driver *d, const rc_resource_set *desired,
		      void (*changed)(void *arg, const char *env,
				      const char *key),
		      void *arg, volatile int *stop)
{
	struct kwatch w;
	struct kwatch_kind *kinds = NULL;
	size_t n = 0, cap = 0;
	json_t *want = observed_kinds(d, desired), *v;
	const char *key;
	int rc = 0;

	memset(&w, 0, sizeof(w));
	w.d = d;
	w.env_label = rc_kube_label_value(d->env->name);
	/* what it needs of desired: the kinds (below) and the Secrets */
	for (size_t i = 0; i < desired->n; i++) {
		const rc_resource *r = &desired->items[i];
		const char *k = json_string_value(json_object_get(r->body,
								  "kind"));

		if (!strcmp(r->env, d->env->name) && k && !strcmp(k, "Secret"))
			rc_resource_set_add(&w.secrets, r->env, r->driver,
					    r->kind, r->name,
					    json_deep_copy(r->body));
	}
	w.changed = changed;
	w.arg = arg;
	w.timeout_s = watch_timeout_s();
	w.pending = json_object();
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	json_object_foreach(want, key, v) {
		char *av = rc_strdup(key), *kind = strchr(av, '\n');
		struct kwatch_kind *kk;
		kube_kind k;

		*kind++ = '\0';
		/* the namespace is not watched: it is reconcile's alone,
		 * and a change to it shows in its objects */
		if (!strcmp(kind, "Namespace") ||
		    (rc = disc_kind(d, av, kind, &k)) < 0) {
			if (rc == RC_ENOTFOUND && !applied_here(d, av, kind)) {
				rc_error_clear();
				rc = 0;
			}
			free(av);
			if (rc < 0)
				break;
			continue;
		}
		RC_GROW(kinds, cap, n + 1);
		kk = &kinds[n++];
		memset(kk, 0, sizeof(*kk));
		kk->w = &w;
		kk->k = k;
		kk->av = av;
		kk->kind = kind;
		kk->kk = rc_kube_kind_key(av, kind);
		kk->seen = json_object();
	}
	json_decref(want);
	/* desired is not read again: the caller may release it */
	if (rc == 0)
		changed(arg, NULL, NULL);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (hub_join(&kinds[i]) == 0)
			continue; /* followed from this thread */
		if (pthread_create(&kinds[i].th, NULL, kwatch_kind_run,
				   &kinds[i])) {
			rc = rc_error_set(RC_ERROR, RC_ECLASS_INTERNAL,
					  "kubernetes: cannot start a watch "
					  "thread");
			break;
		}
		kinds[i].started = true;
	}
	pthread_mutex_lock(&w.mu);
	while (rc == 0 && !*stop && !w.rc) {
		/* woken by a change to report, a shared stream that asks
		   for a LIST, or twice a second to see *stop and retry a
		   failed LIST */
		long long now = rc_local_now_ms(), wait = 500;
		struct timespec ts;

		/* the kinds the cluster's shared streams follow */
		pthread_mutex_unlock(&w.mu);
		for (size_t i = 0; i < n; i++) {
			if (!kinds[i].hub || hub_step(&kinds[i]) == 0)
				continue;
			/* denied every namespace: this kind watches alone */
			hub_end(hub_leave(&kinds[i]));
			if (pthread_create(&kinds[i].th, NULL, kwatch_kind_run,
					   &kinds[i]) == 0)
				kinds[i].started = true;
			else
				kwatch_fail(&w, rc_error_set(
						       RC_ERROR,
						       RC_ECLASS_INTERNAL,
						       "kubernetes: cannot "
						       "start a watch thread"));
		}
		pthread_mutex_lock(&w.mu);
		if (w.rc)
			break;

		if (json_object_size(w.pending)) {
			long long due = w.first_ms + KUBE_WATCH_DEBOUNCE_MS;

			if (now >= due) {
				kwatch_flush(&w);
				continue;
			}
			if (due - now < wait)
				wait = due - now;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += wait * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&w.cv, &w.mu, &ts);
	}
	w.quit = 1;
	pthread_mutex_unlock(&w.mu);
	{
		/* every stream asked to stop first, then waited for */
		struct khub **ending = rc_calloc(n + 1, sizeof(*ending));

		for (size_t i = 0; i < n; i++)
			ending[i] = hub_leave(&kinds[i]);
		for (size_t i = 0; i < n; i++) {
			if (kinds[i].started)
				pthread_join(kinds[i].th, NULL);
			hub_end(ending[i]);
			kwatch_kind_free(&kinds[i]);
		}
		free(ending);
	}
	free(kinds);
	if (rc == 0 && w.rc) {
		rc = rc_error_set(w.rc, RC_ECLASS_PLATFORM, "%s", w.err);
		rc_error_prefix("kubernetes: watching %s", d->env->name);
	}
	free(w.err);
	free(w.env_label);
	rc_resource_set_release(&w.secrets);
	json_decref(w.pending);
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mu);
	return rc;
}

/* ------------------------------------------------------------ registry */

static bool kube_immutable(const char *kind, const char *path)
{
	return rc_kube_immutable(kind, path);
}

const rc_driver_ops rc_driver_kubernetes = {
	.name = RC_KUBE_DRIVER,
	.max_concurrency = 8,
	.open = kube_open,
	.close = kube_close,
	.expand = kube_expand,
	.observe = kube_observe,
	.normalize = rc_kube_normalize,
	.immutable = kube_immutable,
	.apply = kube_apply,
	.wait = kube_wait,
	.run = kube_run,
	.hook_status = kube_hook_status,
	.dry_run = kube_dry_run,
	.watch = kube_watch,
};
