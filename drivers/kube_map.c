/*
 * The Kubernetes driver's mapping, with no network: kind keys, ownership
 * labels, the normal form of objects and its way back, the expansion of
 * an environment into objects, hook Jobs, normalisation and the list of
 * immutable fields. See drivers/kube_map.h.
 */
#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/codec.h"
#include "reconciler/base/json.h"
#include "reconciler/base/error.h"
#include "schema/secrets.h"
#include "schema/emit.h"
#include "drivers/kube_map.h"

/* jansson's getters take non-const values; none of these modify them */
#define MUT(v) ((json_t *)(uintptr_t)(v))

static json_t *get(const json_t *o, const char *key)
{
	return json_is_object(o) ? json_object_get(o, key) : NULL;
}

static const char *get_str(const json_t *o, const char *key)
{
	return json_string_value(get(o, key));
}

/* The object under key in o, created when missing or not an object
 * (borrowed); NULL when o is not an object. */
static json_t *child(json_t *o, const char *key)
{
	json_t *c = json_object_get(o, key);

	if (!json_is_object(o))
		return NULL;
	if (!json_is_object(c)) {
		c = json_object();
		json_object_set_new(o, key, c);
	}
	return c;
}

static bool is_secret(const json_t *v)
{
	return json_is_object(v) && json_object_get(v, "$secret");
}

/* ------------------------------------------------------------- kind keys */

/* The groups whose kinds are keyed by the kind alone. */
static const char *const short_groups[] = {
	"apps",
	"batch",
	"networking.k8s.io",
	"policy",
	"rbac.authorization.k8s.io",
	"autoscaling",
	"coordination.k8s.io",
};

char *rc_kube_kind_key(const char *api_version, const char *kind)
{
	const char *slash = api_version ? strchr(api_version, '/') : NULL;
	rc_buf b = RC_BUF_INIT_MAX(1024);
	size_t glen;

	if (!kind)
		kind = "";
	if (!slash)
		return rc_strdup(kind);
	glen = (size_t)(slash - api_version);
	for (size_t i = 0; i < RC_ARRAY_SIZE(short_groups); i++)
		if (strlen(short_groups[i]) == glen &&
		    !strncmp(short_groups[i], api_version, glen))
			return rc_strdup(kind);
	rc_buf_printf(&b, "%s.%.*s", kind, (int)glen, api_version);
	return rc_buf_detach(&b);
}

static char *kind_key_of(const json_t *obj)
{
	return rc_kube_kind_key(get_str(obj, "apiVersion"),
				get_str(obj, "kind"));
}

/* Where a kind keeps its pod spec: the path of the pod template (the
 * object holding "metadata" and "spec"); an empty path is the object
 * itself (a Pod). */
static const struct {
	const char *kind;
	const char *path[4];
} pod_templates[] = {
	{"Pod", {NULL}},
	{"Deployment", {"spec", "template", NULL}},
	{"ReplicaSet", {"spec", "template", NULL}},
	{"StatefulSet", {"spec", "template", NULL}},
	{"DaemonSet", {"spec", "template", NULL}},
	{"Job", {"spec", "template", NULL}},
	{"ReplicationController", {"spec", "template", NULL}},
	{"CronJob", {"spec", "jobTemplate", "spec", "template"}},
	{"PodTemplate", {"template", NULL}},
};

/* The pod template of obj (borrowed), or NULL; obj itself for a Pod. */
static json_t *pod_template(const char *kind, const json_t *obj)
{
	for (size_t i = 0; i < RC_ARRAY_SIZE(pod_templates); i++) {
		json_t *cur = MUT(obj);

		if (strcmp(pod_templates[i].kind, kind))
			continue;
		for (size_t j = 0; j < 4 && pod_templates[i].path[j]; j++)
			cur = get(cur, pod_templates[i].path[j]);
		return json_is_object(cur) ? cur : NULL;
	}
	return NULL;
}

static bool has_pod_template(const char *kind)
{
	for (size_t i = 0; i < RC_ARRAY_SIZE(pod_templates); i++)
		if (!strcmp(pod_templates[i].kind, kind))
			return strcmp(kind, "Pod") != 0;
	return false;
}

/* Kinds known to be cluster-scoped: they get no namespace. */
static const char *const cluster_kinds[] = {
	"Namespace",
	"Node",
	"PersistentVolume",
	"ClusterRole",
	"ClusterRoleBinding",
	"IngressClass",
	"CustomResourceDefinition.apiextensions.k8s.io",
	"StorageClass.storage.k8s.io",
	"CSIDriver.storage.k8s.io",
	"PriorityClass.scheduling.k8s.io",
	"RuntimeClass.node.k8s.io",
	"APIService.apiregistration.k8s.io",
	"ValidatingWebhookConfiguration.admissionregistration.k8s.io",
	"MutatingWebhookConfiguration.admissionregistration.k8s.io",
	"ClusterIssuer.cert-manager.io",
};

static bool cluster_scoped(const char *kind)
{
	for (size_t i = 0; i < RC_ARRAY_SIZE(cluster_kinds); i++)
		if (!strcmp(cluster_kinds[i], kind))
			return true;
	return false;
}

/* ------------------------------------------------------------- ownership */

/* ASCII only, whatever the locale. */
static bool alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

static bool label_char(char c)
{
	return alnum(c) || c == '-' || c == '_' || c == '.';
}

static bool label_value_ok(const char *s)
{
	size_t len = strlen(s);

	if (!len)
		return true;
	if (len > 63 || !alnum(s[0]) || !alnum(s[len - 1]))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!label_char(s[i]))
			return false;
	return true;
}

char *rc_kube_label_value(const char *s)
{
	rc_buf b = RC_BUF_INIT_MAX(128);
	char hash[RC_SHA256_HEX_LEN + 1];
	size_t start = 0, end;

	if (label_value_ok(s))
		return rc_strdup(s);
	for (size_t i = 0; s[i] && b.len < 54; i++)
		rc_buf_putc(&b, label_char(s[i]) ? s[i] : '-');
	while (start < b.len && !alnum(b.ptr[start]))
		start++;
	end = b.len;
	while (end > start && !alnum(b.ptr[end - 1]))
		end--;
	/* what is left, then the hash of the whole name */
	memmove(b.ptr, b.ptr + start, end - start);
	rc_buf_truncate(&b, end - start);
	rc_codec_sha256_hex(hash, s, strlen(s));
	rc_buf_printf(&b, "%s%.8s", b.len ? "-" : "", hash);
	return rc_buf_detach(&b);
}

char *rc_kube_selector(const char *project, const char *env)
{
	char *p = rc_kube_label_value(project), *e = rc_kube_label_value(env);
	rc_buf b = RC_BUF_INIT_MAX(1024);

	rc_buf_printf(&b, "%s=%s,%s=%s,%s=%s,!%s", RC_KUBE_LABEL_MANAGED_BY,
		      RC_KUBE_MANAGED_BY, RC_KUBE_LABEL_PROJECT, p,
		      RC_KUBE_LABEL_ENV, e, RC_KUBE_LABEL_HOOK);
	free(p);
	free(e);
	return rc_buf_detach(&b);
}

static void owner_labels(json_t *labels, const char *plabel,
			 const char *elabel)
{
	json_object_set_new(labels, RC_KUBE_LABEL_MANAGED_BY,
			    json_string(RC_KUBE_MANAGED_BY));
	json_object_set_new(labels, RC_KUBE_LABEL_PROJECT, json_string(plabel));
	json_object_set_new(labels, RC_KUBE_LABEL_ENV, json_string(elabel));
}

void rc_kube_set_ownership(json_t *obj, const char *project, const char *env)
{
	char *p, *e, *kind;
	json_t *md, *tpl;

	if (!json_is_object(obj))
		return;
	p = rc_kube_label_value(project);
	e = rc_kube_label_value(env);
	kind = kind_key_of(obj);
	md = child(obj, "metadata");

	owner_labels(child(md, "labels"), p, e);
	if (strcmp(p, project))
		json_object_set_new(child(md, "annotations"),
				    RC_KUBE_ANN_PROJECT, json_string(project));
	if (strcmp(e, env))
		json_object_set_new(child(md, "annotations"), RC_KUBE_ANN_ENV,
				    json_string(env));
	if (has_pod_template(kind) && (tpl = pod_template(kind, obj)) != NULL)
		owner_labels(child(child(tpl, "metadata"), "labels"), p, e);
	free(kind);
	free(p);
	free(e);
}

/* ----------------------------------------------------------- keyed lists */

typedef enum {
	KEY_NAME,	/* "name" */
	KEY_MOUNT,	/* "mountPath" */
	KEY_DEVICE,	/* "devicePath" */
	KEY_CPORT,	/* "<containerPort>/<protocol>" */
	KEY_SPORT	/* "<port>/<protocol>" */
} key_kind;

enum { TO_BODY, TO_OBJECT };

static const char *const key_field[] = {"name", "mountPath", "devicePath",
					"containerPort", "port"};

/* A port number as text: an integer or an integer string. */
static bool port_text(const json_t *v, char *out, size_t n)
{
	const char *s = json_string_value(v);

	if (json_is_integer(v)) {
		snprintf(out, n, "%lld", (long long)json_integer_value(v));
		return true;
	}
	if (!s || !*s || strlen(s) >= n)
		return false;
	for (const char *p = s; *p; p++)
		if (!isdigit((unsigned char)*p))
			return false;
	snprintf(out, n, "%lld", strtoll(s, NULL, 10));
	return true;
}

/* The key of one element of a keyed list (new string), or NULL. */
static char *elem_key(const json_t *el, key_kind k)
{
	char num[32];
	const char *proto;
	rc_buf b = RC_BUF_INIT_MAX(256);

	if (!json_is_object(el))
		return NULL;
	if (k == KEY_NAME || k == KEY_MOUNT || k == KEY_DEVICE) {
		const char *s = get_str(el, key_field[k]);

		return s && *s ? rc_strdup(s) : NULL;
	}
	if (!port_text(get(el, key_field[k]), num, sizeof(num)))
		return NULL;
	proto = get(el, "protocol") ? get_str(el, "protocol") : "TCP";
	if (!proto)
		return NULL;
	rc_buf_printf(&b, "%s/%s", num, proto);
	return rc_buf_detach(&b);
}

/* Gives an element back the key field(s) its map key holds. */
static void restore_key(json_t *el, const char *key, key_kind k)
{
	const char *slash;

	if (k == KEY_NAME || k == KEY_MOUNT || k == KEY_DEVICE) {
		if (!get(el, key_field[k]))
			json_object_set_new(el, key_field[k], json_string(key));
		return;
	}
	slash = strchr(key, '/');
	if (!get(el, key_field[k]) && slash && slash > key) {
		char num[32];
		size_t len = (size_t)(slash - key);
		bool digits = len < sizeof(num);

		for (size_t i = 0; digits && i < len; i++)
			digits = isdigit((unsigned char)key[i]);
		if (digits) {
			snprintf(num, sizeof(num), "%.*s", (int)len, key);
			json_object_set_new(el, key_field[k],
					    json_integer(strtoll(num, NULL,
								 10)));
		}
	}
	if (!get(el, "protocol") && slash && slash[1])
		json_object_set_new(el, "protocol", json_string(slash + 1));
}

typedef void (*elem_fn)(json_t *el, int dir);

/*
 * parent[field]: a list turned into a map keyed by k (TO_BODY), or back
 * (TO_OBJECT), inner applied to each element. A list that cannot be keyed
 * (an element without a key, a key twice) stays a list, and so does
 * everything inside it; a map whose values are not all objects stays.
 */
static void convert_list(json_t *parent, const char *field, key_kind k,
			 int dir, elem_fn inner)
{
	json_t *v = get(parent, field), *el;
	const char *key;
	size_t i;

	if (dir == TO_BODY) {
		json_t *m;

		if (!json_is_array(v))
			return;
		m = json_object();
		json_array_foreach(v, i, el) {
			char *ek = elem_key(el, k);

			if (!ek || json_object_get(m, ek)) {
				free(ek);
				json_decref(m);
				return;
			}
			json_object_set(m, ek, el);
			free(ek);
		}
		json_object_set_new(parent, field, m);
		json_object_foreach(m, key, el) {
			if (inner)
				inner(el, dir);
		}
	} else {
		json_t *a;

		if (!json_is_object(v) || is_secret(v))
			return;
		json_object_foreach(v, key, el) {
			if (!json_is_object(el) || is_secret(el))
				return;
		}
		a = json_array();
		json_object_foreach(v, key, el) {
			if (inner)
				inner(el, dir);
			restore_key(el, key, k);
			json_array_append(a, el);
		}
		json_object_set_new(parent, field, a);
	}
}

static void container_lists(json_t *c, int dir)
{
	convert_list(c, "env", KEY_NAME, dir, NULL);
	convert_list(c, "ports", KEY_CPORT, dir, NULL);
	convert_list(c, "volumeMounts", KEY_MOUNT, dir, NULL);
	convert_list(c, "volumeDevices", KEY_DEVICE, dir, NULL);
}

static const char *const container_fields[] = {"containers", "initContainers",
					       "ephemeralContainers"};

static void pod_spec_lists(json_t *spec, int dir)
{
	for (size_t i = 0; i < RC_ARRAY_SIZE(container_fields); i++)
		convert_list(spec, container_fields[i], KEY_NAME, dir,
			     container_lists);
	convert_list(spec, "volumes", KEY_NAME, dir, NULL);
	convert_list(spec, "imagePullSecrets", KEY_NAME, dir, NULL);
}

/* Every keyed list of obj, a body or an object of kind, converted. */
static void keyed(json_t *obj, const char *kind, int dir)
{
	json_t *tpl = pod_template(kind, obj);

	if (tpl && json_is_object(get(tpl, "spec")))
		pod_spec_lists(get(tpl, "spec"), dir);
	if (!strcmp(kind, "Service") && json_is_object(get(obj, "spec")))
		convert_list(get(obj, "spec"), "ports", KEY_SPORT, dir, NULL);
}

/* ---------------------------------------------------------------- secrets */

static void wipe_buf(rc_buf *b)
{
	explicit_bzero(b->ptr, b->len);
	rc_buf_release(b);
}

static void wipe_free(char *s, size_t len)
{
	if (!s)
		return;
	explicit_bzero(s, len);
	free(s);
}

/* ----------------------------------------------------------- normal form */

static const char *const managed_metadata[] = {"name", "namespace", "labels",
					       "annotations"};

/* The body's own top level and metadata restricted to what reconcile
 * manages, in place. */
static void restrict_body(json_t *body, const char *kind)
{
	json_t *md = get(body, "metadata"), *tpl, *v;
	const char *k;
	void *tmp;

	json_object_del(body, "status");
	json_object_foreach_safe(md, tmp, k, v) {
		size_t i;

		for (i = 0; i < RC_ARRAY_SIZE(managed_metadata); i++)
			if (!strcmp(k, managed_metadata[i]))
				break;
		if (i == RC_ARRAY_SIZE(managed_metadata))
			json_object_del(md, k);
	}
	/* a pod template's metadata: the server adds creationTimestamp: null */
	if (has_pod_template(kind) && (tpl = pod_template(kind, body)) != NULL)
		json_object_del(get(tpl, "metadata"), "creationTimestamp");
}

static const char *desired_ref(const json_t *desired, const char *key)
{
	const char *ref = get_str(get(get(desired, "data"), key), "ref");

	return ref ? ref : "unknown";
}

/* A Secret's data and stringData as secret objects, in place. */
static int secret_to_body(json_t *body, const json_t *desired)
{
	json_t *data = get(body, "data"), *sd = get(body, "stringData"), *v;
	const char *k;
	const char *name = get_str(get(body, "metadata"), "name");

	if (data && !json_is_object(data))
		return rc_error_set(RC_EINVALID, RC_ECLASS_PLATFORM,
				    "Secret '%s': data is not a map", name);
	json_object_foreach(data, k, v) {
		rc_buf plain = RC_BUF_INIT;
		int rc;

		if (is_secret(v))
			continue;
		if (!json_is_string(v))
			return rc_error_set(RC_EINVALID, RC_ECLASS_PLATFORM,
					    "Secret '%s': the value of '%s' "
					    "is not base64",
					    name, k);
		if ((rc = rc_codec_base64_decode(&plain, json_string_value(v),
						 json_string_length(v), 0)) < 0) {
			rc_error_prefix("Secret '%s': the value of '%s'", name,
					k);
			return rc;
		}
		json_object_set_new(data, k,
				    rc_secret_json_observed(desired_ref(desired,
									k),
							    plain.ptr));
		wipe_buf(&plain);
	}
	if (json_is_object(sd)) {
		json_object_foreach(sd, k, v) {
			if (!json_is_string(v))
				continue;
			json_object_set_new(
				child(body, "data"), k,
				rc_secret_json_observed(desired_ref(desired, k),
							json_string_value(v)));
		}
	}
	json_object_del(body, "stringData");
	return 0;
}

json_t *rc_kube_to_body(const json_t *api_obj, const json_t *desired_body)
{
	json_t *body;
	char *kind;

	if (!json_is_object(api_obj) || !get_str(api_obj, "apiVersion") ||
	    !get_str(api_obj, "kind") ||
	    !get_str(get(api_obj, "metadata"), "name")) {
		rc_error_set(RC_EINVALID, RC_ECLASS_PLATFORM,
			     "not a Kubernetes object: it needs apiVersion, "
			     "kind and metadata.name");
		return NULL;
	}
	body = json_deep_copy(api_obj);
	kind = kind_key_of(body);
	restrict_body(body, kind);
	keyed(body, kind, TO_BODY);
	if (!strcmp(kind, "Secret") && secret_to_body(body, desired_body) < 0) {
		json_decref(body);
		body = NULL;
	}
	free(kind);
	return body;
}

json_t *rc_kube_to_object(const json_t *body, rc_kube_secret_fn resolve,
			  void *ctx)
{
	json_t *obj, *data, *v;
	const char *k;
	char *kind;
	int rc = 0;

	if (!json_is_object(body)) {
		rc_error_set(RC_EINVALID, RC_ECLASS_INTERNAL,
			     "a Kubernetes body must be an object");
		return NULL;
	}
	obj = json_deep_copy(body);
	kind = kind_key_of(obj);
	keyed(obj, kind, TO_OBJECT);
	data = strcmp(kind, "Secret") ? NULL : get(obj, "data");
	json_object_foreach(data, k, v) {
		char *value = NULL;
		rc_buf enc = RC_BUF_INIT;

		if (!is_secret(v))
			continue;
		if (!resolve) {
			rc = rc_error_set(RC_EINVALID, RC_ECLASS_INTERNAL,
					  "Secret '%s': no way to read the "
					  "value of '%s'",
					  get_str(get(obj, "metadata"), "name"),
					  k);
			break;
		}
		if ((rc = resolve(ctx, v, &value)) < 0)
			break;
		rc = rc_codec_base64_encode(&enc, value, strlen(value), 0);
		wipe_free(value, strlen(value));
		if (rc < 0)
			break;
		json_object_set_new(data, k, json_string(enc.ptr));
		wipe_buf(&enc);
	}
	free(kind);
	if (rc < 0) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

/* --------------------------------------------------------------- merging */

/* Merges src over dst, in place: maps key by key, recursively (a secret
 * object is a value), null deletes, anything else replaces. */
static void merge(json_t *dst, const json_t *src)
{
	const char *k;
	json_t *v;

	json_object_foreach(MUT(src), k, v) {
		json_t *d = json_object_get(dst, k);

		if (json_is_null(v))
			json_object_del(dst, k);
		else if (json_is_object(v) && !is_secret(v) &&
			 json_is_object(d) && !is_secret(d))
			merge(d, v);
		else
			json_object_set_new(dst, k, json_deep_copy(v));
	}
}

/* ---------------------------------------------------------- quantities */


/* x (>= 0) rounded up to an integer, rounding noise ignored. */
static long long ceil_ll(double x)
{
	long long r = (long long)x;

	if (x - (double)r > 1e-9 * (x > 1 ? x : 1))
		r++;
	return r;
}

/* CPU as millicores, rounded up as the API server does; -1 when v is
 * not a CPU quantity. */
static long long cpu_millis(const json_t *v)
{
	const char *s = json_string_value(v);
	char *end;
	double d;

	if (json_is_number(v)) {
		d = json_number_value(v);
		return d >= 0 && d <= 1e9 ? ceil_ll(d * 1000) : -1;
	}
	if (!s || !(isdigit((unsigned char)*s) || *s == '.'))
		return -1;
	errno = 0;
	d = strtod(s, &end);
	if (errno || end == s || d < 0 || d > 1e12)
		return -1;
	if (!strcmp(end, "m"))
		return ceil_ll(d);
	if (*end || d > 1e9)
		return -1;
	return ceil_ll(d * 1000);
}

static json_t *cpu_json(long long m)
{
	char b[32];

	if (m % 1000 == 0)
		snprintf(b, sizeof(b), "%lld", m / 1000);
	else
		snprintf(b, sizeof(b), "%lldm", m);
	return json_string(b);
}

static const struct {
	const char *suffix;
	long long mul, div;
} quantity_suffixes[] = {
	{"", 1, 1},
	{"Ki", 1LL << 10, 1},
	{"Mi", 1LL << 20, 1},
	{"Gi", 1LL << 30, 1},
	{"Ti", 1LL << 40, 1},
	{"Pi", 1LL << 50, 1},
	{"Ei", 1LL << 60, 1},
	{"m", 1, 1000},
	{"k", 1000LL, 1},
	{"M", 1000000LL, 1},
	{"G", 1000000000LL, 1},
	{"T", 1000000000000LL, 1},
	{"P", 1000000000000000LL, 1},
	{"E", 1000000000000000000LL, 1},
};

/* A quantity (memory, storage, a count) as a whole number of units;
 * false when v is not one (malformed, fractional, too large). */
static bool quantity_units(const json_t *v, long long *out)
{
	const char *s = json_string_value(v), *p;
	long long num = 0, den = 1, mul = 1, div = 1;
	size_t i;

	if (json_is_integer(v)) {
		*out = (long long)json_integer_value(v);
		return *out >= 0;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);

		if (d < 0 || d > 9e18 || d != (double)(long long)d)
			return false;
		*out = (long long)d;
		return true;
	}
	if (!s || !(isdigit((unsigned char)*s) || *s == '.'))
		return false;
	for (p = s; isdigit((unsigned char)*p); p++)
		if (__builtin_mul_overflow(num, 10, &num) ||
		    __builtin_add_overflow(num, *p - '0', &num))
			return false;
	if (*p == '.') {
		for (p++; isdigit((unsigned char)*p); p++)
			if (__builtin_mul_overflow(num, 10, &num) ||
			    __builtin_add_overflow(num, *p - '0', &num) ||
			    __builtin_mul_overflow(den, 10, &den))
				return false;
	}
	if (p == s || (p == s + 1 && *s == '.'))
		return false;
	if ((*p == 'e' || *p == 'E') && isdigit((unsigned char)p[1])) {
		char *end;
		long e = strtol(p + 1, &end, 10);

		if (*end || e > 18)
			return false;
		while (e-- > 0)
			if (__builtin_mul_overflow(mul, 10, &mul))
				return false;
	} else {
		for (i = 0; i < RC_ARRAY_SIZE(quantity_suffixes); i++)
			if (!strcmp(p, quantity_suffixes[i].suffix))
				break;
		if (i == RC_ARRAY_SIZE(quantity_suffixes))
			return false;
		mul = quantity_suffixes[i].mul;
		div = quantity_suffixes[i].div;
	}
	if (__builtin_mul_overflow(num, mul, &num) ||
	    __builtin_mul_overflow(den, div, &den) || num % den)
		return false;
	*out = num / den;
	return true;
}

/* The largest exact binary unit, else plain units. */
static json_t *units_json(long long n)
{
	static const char *const unit[] = {"Ei", "Pi", "Ti", "Gi", "Mi", "Ki"};
	char b[32];

	for (int i = 0; n && i < 6; i++) {
		long long u = 1LL << (60 - 10 * i);

		if (n % u == 0) {
			snprintf(b, sizeof(b), "%lld%s", n / u, unit[i]);
			return json_string(b);
		}
	}
	snprintf(b, sizeof(b), "%lld", n);
	return json_string(b);
}

/* ----------------------------------------------------------- normalize */

static void each(json_t *coll, void (*fn)(json_t *el));

/* Calls fn on every element of a keyed map (given back its key fields
 * first, so that a body written without them normalises as the list it
 * stands for) or of a list. */
static void each_keyed(json_t *coll, key_kind k, void (*fn)(json_t *el))
{
	const char *key;
	json_t *v;

	if (json_is_object(coll) && !is_secret(coll)) {
		json_object_foreach(coll, key, v) {
			if (json_is_object(v) && !is_secret(v))
				restore_key(v, key, k);
		}
	}
	each(coll, fn);
}

/* Calls fn on every element of a keyed map or a list. */
static void each(json_t *coll, void (*fn)(json_t *el))
{
	const char *k;
	json_t *v;
	size_t i;

	if (json_is_array(coll)) {
		json_array_foreach(coll, i, v) {
			if (json_is_object(v))
				fn(v);
		}
	} else if (json_is_object(coll) && !is_secret(coll)) {
		json_object_foreach(coll, k, v) {
			if (json_is_object(v) && !is_secret(v))
				fn(v);
		}
	}
}

static bool int_text(const char *s)
{
	if (*s == '-')
		s++;
	if (!*s || strlen(s) > 18)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

/* o[k] as an integer when it is an integer string. */
static void fix_int(json_t *o, const char *k)
{
	const char *s = get_str(o, k);

	if (s && int_text(s))
		json_object_set_new(o, k, json_integer(strtoll(s, NULL, 10)));
}

static void fix_ints(json_t *o, const char *const *keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fix_int(o, keys[i]);
}

static void fix_bools(json_t *o, const char *const *keys, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *s = get_str(o, keys[i]);

		if (s && (!strcmp(s, "true") || !strcmp(s, "false")))
			json_object_set_new(o, keys[i],
					    json_boolean(!strcmp(s, "true")));
	}
}

/* o[k] as a string when it is a number or a boolean. */
static void fix_string(json_t *o, const char *k)
{
	json_t *v = get(o, k);
	char b[64];

	if (json_is_integer(v))
		snprintf(b, sizeof(b), "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(b, sizeof(b), "%.15g", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(b, sizeof(b), "%s", json_is_true(v) ? "true" : "false");
	else
		return;
	json_object_set_new(o, k, json_string(b));
}

static void strings_of(json_t *m)
{
	const char *k;
	json_t *v;

	if (!json_is_object(m) || is_secret(m))
		return;
	json_object_foreach(m, k, v) {
		fix_string(m, k);
	}
}

static void drop_empty(json_t *o, const char *k)
{
	json_t *v = get(o, k);

	if (json_is_object(v) && !json_object_size(v))
		json_object_del(o, k);
}

static void norm_meta(json_t *md)
{
	if (!json_is_object(md))
		return;
	strings_of(get(md, "labels"));
	strings_of(get(md, "annotations"));
	drop_empty(md, "labels");
	drop_empty(md, "annotations");
}

static void norm_quantities(json_t *m)
{
	const char *k;
	json_t *v;

	if (!json_is_object(m))
		return;
	json_object_foreach(m, k, v) {
		long long n;

		if (!strcmp(k, "cpu")) {
			if ((n = cpu_millis(v)) >= 0)
				json_object_set_new(m, k, cpu_json(n));
		} else if (quantity_units(v, &n)) {
			json_object_set_new(m, k, units_json(n));
		}
	}
}

static void norm_resources(json_t *o)
{
	json_t *r = get(o, "resources");

	if (!json_is_object(r))
		return;
	norm_quantities(get(r, "requests"));
	norm_quantities(get(r, "limits"));
	drop_empty(r, "requests");
	drop_empty(r, "limits");
	drop_empty(o, "resources");
}

/* An int-or-string port: an integer string becomes the integer. */
static void fix_port(json_t *o, const char *k)
{
	const char *s = get_str(o, k);

	if (s && int_text(s) && *s != '-')
		fix_int(o, k);
}

static void norm_probe(json_t *p)
{
	static const char *const ints[] = {
		"initialDelaySeconds", "periodSeconds", "timeoutSeconds",
		"successThreshold", "failureThreshold",
		"terminationGracePeriodSeconds"};
	static const char *const handlers[] = {"httpGet", "tcpSocket", "grpc"};

	if (!json_is_object(p))
		return;
	fix_ints(p, ints, RC_ARRAY_SIZE(ints));
	for (size_t i = 0; i < RC_ARRAY_SIZE(handlers); i++)
		if (json_is_object(get(p, handlers[i])))
			fix_port(get(p, handlers[i]), "port");
}

static void default_protocol(json_t *port)
{
	if (!get(port, "protocol"))
		json_object_set_new(port, "protocol", json_string("TCP"));
}

static void norm_container_port(json_t *port)
{
	static const char *const ints[] = {"containerPort", "hostPort"};

	fix_ints(port, ints, RC_ARRAY_SIZE(ints));
	default_protocol(port);
}

static void norm_env(json_t *e)
{
	fix_string(e, "value");
}

static void norm_nothing(json_t *el)
{
	RC_UNUSED(el);
}

static void norm_container(json_t *c)
{
	static const char *const probes[] = {"livenessProbe", "readinessProbe",
					     "startupProbe"};
	static const char *const bools[] = {"stdin", "stdinOnce", "tty"};

	each_keyed(get(c, "env"), KEY_NAME, norm_env);
	each_keyed(get(c, "ports"), KEY_CPORT, norm_container_port);
	each_keyed(get(c, "volumeMounts"), KEY_MOUNT, norm_nothing);
	each_keyed(get(c, "volumeDevices"), KEY_DEVICE, norm_nothing);
	norm_resources(c);
	for (size_t i = 0; i < RC_ARRAY_SIZE(probes); i++)
		norm_probe(get(c, probes[i]));
	fix_bools(c, bools, RC_ARRAY_SIZE(bools));
}

static void norm_pod_spec(json_t *spec)
{
	static const char *const ints[] = {"terminationGracePeriodSeconds",
					   "activeDeadlineSeconds", "priority"};
	static const char *const bools[] = {
		"hostNetwork", "hostPID", "hostIPC",
		"automountServiceAccountToken", "shareProcessNamespace",
		"enableServiceLinks", "setHostnameAsFQDN"};

	if (!json_is_object(spec))
		return;
	for (size_t i = 0; i < RC_ARRAY_SIZE(container_fields); i++)
		each_keyed(get(spec, container_fields[i]), KEY_NAME,
			   norm_container);
	each_keyed(get(spec, "volumes"), KEY_NAME, norm_nothing);
	each_keyed(get(spec, "imagePullSecrets"), KEY_NAME, norm_nothing);
	fix_ints(spec, ints, RC_ARRAY_SIZE(ints));
	fix_bools(spec, bools, RC_ARRAY_SIZE(bools));
}

static void norm_claim(json_t *pvc)
{
	norm_resources(get(pvc, "spec"));
	norm_meta(get(pvc, "metadata"));
}

/* Integer and boolean fields of workload specs (Deployment, StatefulSet,
 * Job, CronJob, HorizontalPodAutoscaler, ...). */
static void norm_workload_spec(json_t *spec)
{
	static const char *const ints[] = {
		"replicas", "minReadySeconds", "revisionHistoryLimit",
		"progressDeadlineSeconds", "backoffLimit", "completions",
		"parallelism", "activeDeadlineSeconds",
		"ttlSecondsAfterFinished", "startingDeadlineSeconds",
		"successfulJobsHistoryLimit", "failedJobsHistoryLimit",
		"minReplicas", "maxReplicas",
		"targetCPUUtilizationPercentage"};
	static const char *const bools[] = {"paused", "suspend"};

	if (!json_is_object(spec))
		return;
	fix_ints(spec, ints, RC_ARRAY_SIZE(ints));
	fix_bools(spec, bools, RC_ARRAY_SIZE(bools));
}

static void norm_service_port(json_t *port)
{
	static const char *const ints[] = {"port", "nodePort"};

	fix_ints(port, ints, RC_ARRAY_SIZE(ints));
	fix_port(port, "targetPort");
	default_protocol(port);
}

void rc_kube_normalize(const char *kind, json_t *body)
{
	static const char *const workloads[] = {
		"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job",
		"CronJob", "ReplicationController", "HorizontalPodAutoscaler"};
	static const char *const immutable[] = {"immutable"};
	json_t *spec = get(body, "spec"), *tpl;

	if (!json_is_object(body) || !kind)
		return;
	norm_meta(get(body, "metadata"));
	for (size_t i = 0; i < RC_ARRAY_SIZE(workloads); i++)
		if (!strcmp(kind, workloads[i]))
			norm_workload_spec(spec);
	if (!strcmp(kind, "CronJob"))
		norm_workload_spec(get(get(spec, "jobTemplate"), "spec"));
	if ((tpl = pod_template(kind, body)) != NULL) {
		if (tpl != body)
			norm_meta(get(tpl, "metadata"));
		norm_pod_spec(get(tpl, "spec"));
	}
	if (!strcmp(kind, "StatefulSet"))
		each(get(spec, "volumeClaimTemplates"), norm_claim);
	if (!strcmp(kind, "PersistentVolumeClaim"))
		norm_resources(spec);
	if (!strcmp(kind, "Service"))
		each_keyed(get(spec, "ports"), KEY_SPORT, norm_service_port);
	if (!strcmp(kind, "ConfigMap")) {
		strings_of(get(body, "data"));
		drop_empty(body, "data");
		drop_empty(body, "binaryData");
	}
	if (!strcmp(kind, "ConfigMap") || !strcmp(kind, "Secret"))
		fix_bools(body, immutable, 1);
	if (!strcmp(kind, "Secret"))
		drop_empty(body, "data");
}

/* ------------------------------------------------------------- immutable */

static const struct {
	const char *kind; /* NULL: every kind */
	const char *path;
} immutable_paths[] = {
	{NULL, "/apiVersion"},
	{NULL, "/kind"},
	{NULL, "/metadata/name"},
	{NULL, "/metadata/namespace"},
	{"Deployment", "/spec/selector"},
	{"ReplicaSet", "/spec/selector"},
	{"DaemonSet", "/spec/selector"},
	{"StatefulSet", "/spec/selector"},
	{"StatefulSet", "/spec/volumeClaimTemplates"},
	{"StatefulSet", "/spec/serviceName"},
	{"StatefulSet", "/spec/podManagementPolicy"},
	{"Job", "/spec/selector"},
	{"Job", "/spec/template"},
	{"Job", "/spec/completions"},
	{"Job", "/spec/completionMode"},
	{"Service", "/spec/clusterIP"},
	{"Service", "/spec/clusterIPs"},
	{"Service", "/spec/ipFamilies"},
	{"PersistentVolumeClaim", "/spec/storageClassName"},
	{"PersistentVolumeClaim", "/spec/accessModes"},
	{"PersistentVolumeClaim", "/spec/volumeName"},
	{"PersistentVolumeClaim", "/spec/selector"},
	{"ConfigMap", "/immutable"},
	{"Secret", "/immutable"},
	{"Secret", "/type"},
	{"Pod", "/spec"},
};

/* What a Pod's spec can change in place. */
static const char *const pod_mutable[] = {
	"/spec/containers/*/image",
	"/spec/initContainers/*/image",
	"/spec/activeDeadlineSeconds",
	"/spec/tolerations",
};

bool rc_kube_immutable(const char *kind, const char *path)
{
	if (!path || !*path)
		return false;
	for (size_t i = 0; i < RC_ARRAY_SIZE(immutable_paths); i++) {
		if (immutable_paths[i].kind &&
		    (!kind || strcmp(immutable_paths[i].kind, kind)))
			continue;
		if (!rc_pointer_match(immutable_paths[i].path, path))
			continue;
		if (immutable_paths[i].kind &&
		    !strcmp(immutable_paths[i].kind, "Pod"))
			for (size_t j = 0; j < RC_ARRAY_SIZE(pod_mutable); j++)
				if (rc_pointer_match(pod_mutable[j], path))
					return false;
		return true;
	}
	return false;
}

/* ---------------------------------------------------------------- expand */

typedef struct {
	const rc_env *env;
	const char *project;
	const char *config_dir;
	const char *ns;
	char *elabel;	     /* the environment's label value */
	rc_resource_set set; /* what this expansion made, moved to out at
				the end */
	char *ns_key, *cm_key, *secret_key;
	char *config_hash;   /* or NULL when there is no config or secret */
} expansion;

static json_t *new_object(const char *api_version, const char *kind,
			  const char *name, const char *ns)
{
	json_t *o = json_object(), *md = json_object();

	json_object_set_new(o, "apiVersion", json_string(api_version));
	json_object_set_new(o, "kind", json_string(kind));
	json_object_set_new(md, "name", json_string(name));
	if (ns)
		json_object_set_new(md, "namespace", json_string(ns));
	json_object_set_new(o, "metadata", md);
	return o;
}

/* Adds body (stolen) to the expansion, with a dependency on the Namespace
 * when it is namespaced; RC_EEXISTS when its kind and name are taken. */
static int add_body(expansion *x, json_t *body, rc_loc loc,
		    rc_resource **out)
{
	char *kind = kind_key_of(body);
	const char *name = get_str(get(body, "metadata"), "name");
	rc_buf key = RC_BUF_INIT_MAX(4096);
	rc_resource *r;
	int rc = 0;

	rc_buf_printf(&key, "%s/%s/%s", x->env->name, kind, name);
	if ((r = rc_resource_set_find(&x->set, key.ptr)) != NULL) {
		rc_buf msg = RC_BUF_INIT_MAX(4096);

		rc_buf_printf(&msg, "%s '%s' is declared twice in environment "
			      "'%s'", kind, name, x->env->name);
		if (r->loc.file)
			rc_buf_printf(&msg, " (first in %s:%d)", r->loc.file,
				      r->loc.line);
		rc = rc_error_set_at(RC_EEXISTS, loc, "%s", msg.ptr);
		rc_buf_release(&msg);
		json_decref(body);
	} else {
		r = rc_resource_set_add(&x->set, x->env->name, RC_KUBE_DRIVER,
					kind, name, body);
		r->loc = loc;
		if (x->ns_key && get_str(get(body, "metadata"), "namespace"))
			rc_resource_add_dep(r, x->ns_key);
		if (out)
			*out = r;
	}
	rc_buf_release(&key);
	free(kind);
	return rc;
}

static json_t *argv_json(const rc_argv *a)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < a->n; i++)
		json_array_append_new(arr, json_string(a->v[i]));
	return arr;
}

/* {app.kubernetes.io/name: service, reconcile.dev/environment: env}. */
static json_t *selector_labels(const expansion *x, const rc_service *s)
{
	json_t *l = json_object();

	json_object_set_new(l, RC_KUBE_LABEL_NAME, json_string(s->name));
	json_object_set_new(l, RC_KUBE_LABEL_ENV, json_string(x->elabel));
	return l;
}

/* envFrom for the environment's ConfigMap and Secret, or NULL. */
static json_t *env_from(const rc_env *env)
{
	json_t *a = json_array(), *ref;

	if (env->config.n) {
		ref = json_object();
		json_object_set_new(ref, "name", json_string(RC_KUBE_CONFIGMAP));
		json_array_append_new(a, json_pack("{s:o}", "configMapRef", ref));
	}
	if (env->nsecrets) {
		ref = json_object();
		json_object_set_new(ref, "name", json_string(RC_KUBE_SECRET));
		json_array_append_new(a, json_pack("{s:o}", "secretRef", ref));
	}
	if (!json_array_size(a)) {
		json_decref(a);
		return NULL;
	}
	return a;
}

static json_t *env_entry(const char *name, const char *value)
{
	json_t *e = json_object();

	json_object_set_new(e, "name", json_string(name));
	json_object_set_new(e, "value", json_string(value));
	return e;
}

static json_t *readiness_probe(const rc_service *s)
{
	const rc_health *h = &s->health;
	json_t *p = json_object(), *act = json_object();

	switch (h->kind) {
	case RC_HEALTH_HTTP:
		json_object_set_new(act, "path", json_string(h->http_path));
		json_object_set_new(act, "port", json_integer(s->port));
		json_object_set_new(p, "httpGet", act);
		break;
	case RC_HEALTH_TCP:
		json_object_set_new(act, "port", json_integer(s->port));
		json_object_set_new(p, "tcpSocket", act);
		break;
	case RC_HEALTH_COMMAND:
		json_object_set_new(act, "command", argv_json(&h->command));
		json_object_set_new(p, "exec", act);
		break;
	default:
		json_decref(act);
		json_decref(p);
		return NULL;
	}
	if (h->grace > 0)
		json_object_set_new(p, "initialDelaySeconds",
				    json_integer(h->grace));
	if (h->interval > 0)
		json_object_set_new(p, "periodSeconds",
				    json_integer(h->interval));
	if (h->timeout > 0)
		json_object_set_new(p, "timeoutSeconds",
				    json_integer(h->timeout));
	if (h->retries > 0)
		json_object_set_new(p, "failureThreshold",
				    json_integer(h->retries));
	return p;
}

/* resources.requests from the service's cpu and memory, or NULL. */
static json_t *requests(const rc_service *s)
{
	json_t *req;

	if (s->cpu_millis <= 0 && s->memory <= 0)
		return NULL;
	req = json_object();
	if (s->cpu_millis > 0)
		json_object_set_new(req, "cpu", cpu_json(s->cpu_millis));
	if (s->memory > 0)
		json_object_set_new(req, "memory", units_json(s->memory));
	return json_pack("{s:o}", "requests", req);
}

/* The one container of a service's pods (API form). */
static json_t *service_container(const rc_env *env, const rc_service *s)
{
	json_t *c = json_object(), *v;

	json_object_set_new(c, "name", json_string(s->name));
	json_object_set_new(c, "image", json_string(s->image));
	if (s->command.n)
		json_object_set_new(c, "command", argv_json(&s->command));
	if (s->args.n)
		json_object_set_new(c, "args", argv_json(&s->args));
	if (s->env.n) {
		v = json_array();
		for (size_t i = 0; i < s->env.n; i++)
			json_array_append_new(v,
					      env_entry(s->env.items[i].key,
							s->env.items[i].value));
		json_object_set_new(c, "env", v);
	}
	if ((v = env_from(env)) != NULL)
		json_object_set_new(c, "envFrom", v);
	if (s->port) {
		json_t *p = json_object();

		json_object_set_new(p, "containerPort", json_integer(s->port));
		json_object_set_new(p, "protocol", json_string("TCP"));
		json_object_set_new(c, "ports", json_pack("[o]", p));
	}
	if ((v = requests(s)) != NULL)
		json_object_set_new(c, "resources", v);
	if ((v = readiness_probe(s)) != NULL)
		json_object_set_new(c, "readinessProbe", v);
	return c;
}

/* The first 16 hex digits of the SHA-256 of the canonical JSON of
 * {"config": <ConfigMap data>, "secrets": <Secret data>} (new string). */
static char *config_hash(const json_t *cm_data, const json_t *secret_data)
{
	json_t *o = json_object();
	char *canon, hex[RC_SHA256_HEX_LEN + 1];

	json_object_set_new(o, "config", cm_data ? json_deep_copy(cm_data)
						 : json_object());
	json_object_set_new(o, "secrets", secret_data
						  ? json_deep_copy(secret_data)
						  : json_object());
	canon = rc_json_canonical(o);
	rc_codec_sha256_hex(hex, canon, strlen(canon));
	free(canon);
	json_decref(o);
	return rc_strndup(hex, 16);
}

/*
 * body, made by reconcile, with the native block nat (API form, may be
 * NULL) merged over it in normal form; the identity of the object (its
 * apiVersion, kind, name and namespace) and its ownership labels are put
 * back afterwards. body is modified in place.
 */
static void merge_native(expansion *x, json_t *body, const char *kind,
			 const char *name, const json_t *nat)
{
	json_t *keep = json_pack("{s:O,s:O}", "apiVersion",
				 get(body, "apiVersion"), "kind",
				 get(body, "kind"));

	if (json_is_object(nat)) {
		json_t *n = json_deep_copy(nat);

		keyed(n, kind, TO_BODY);
		merge(body, n);
		json_decref(n);
		restrict_body(body, kind);
	}
	merge(body, keep);
	json_decref(keep);
	json_object_set_new(child(body, "metadata"), "name",
			    json_string(name));
	json_object_set_new(child(body, "metadata"), "namespace",
			    json_string(x->ns));
	rc_kube_set_ownership(body, x->project, x->env->name);
}

static int add_deployment(expansion *x, const rc_service *s,
			  const json_t *native)
{
	json_t *obj, *md, *spec, *tpl, *tmd, *body;
	rc_resource *r = NULL;
	int rc;

	if (!s->image || !*s->image)
		return rc_error_set_at(RC_EINVALID, s->loc,
				       "service '%s' has no image: the "
				       "kubernetes driver runs images",
				       s->name);
	obj = new_object("apps/v1", "Deployment", s->name, x->ns);
	md = get(obj, "metadata");
	json_object_set_new(child(md, "labels"), RC_KUBE_LABEL_NAME,
			    json_string(s->name));
	spec = child(obj, "spec");
	json_object_set_new(spec, "replicas", json_integer(s->replicas));
	json_object_set_new(child(spec, "selector"), "matchLabels",
			    selector_labels(x, s));
	tpl = child(spec, "template");
	tmd = child(tpl, "metadata");
	json_object_set_new(tmd, "labels", selector_labels(x, s));
	if (x->config_hash)
		json_object_set_new(child(tmd, "annotations"),
				    RC_KUBE_ANN_CONFIG_HASH,
				    json_string(x->config_hash));
	json_object_set_new(child(tpl, "spec"), "containers",
			    json_pack("[o]", service_container(x->env, s)));
	body = rc_kube_to_body(obj, NULL);
	json_decref(obj);
	merge_native(x, body, "Deployment", s->name,
		     get(native, "deployment"));
	if ((rc = add_body(x, body, s->loc, &r)) < 0)
		return rc;
	if (x->cm_key)
		rc_resource_add_dep(r, x->cm_key);
	if (x->secret_key)
		rc_resource_add_dep(r, x->secret_key);
	return 0;
}

static int add_service(expansion *x, const rc_service *s,
		       const json_t *native)
{
	const json_t *nat = get(native, "service");
	json_t *obj, *spec, *port, *body;

	if (!s->port) {
		if (!nat)
			return 0;
		return rc_error_set_at(
			RC_EINVALID, rc_node_get(s->native, "service")->loc,
			"service '%s' has kubernetes.service settings but no "
			"port: a Service is made only for a service with a "
			"port",
			s->name);
	}
	obj = new_object("v1", "Service", s->name, x->ns);
	json_object_set_new(child(get(obj, "metadata"), "labels"),
			    RC_KUBE_LABEL_NAME, json_string(s->name));
	spec = child(obj, "spec");
	json_object_set_new(spec, "type", json_string("ClusterIP"));
	json_object_set_new(spec, "selector", selector_labels(x, s));
	port = json_object();
	json_object_set_new(port, "name", json_string("http"));
	json_object_set_new(port, "port", json_integer(s->port));
	json_object_set_new(port, "targetPort", json_integer(s->port));
	json_object_set_new(port, "protocol", json_string("TCP"));
	json_object_set_new(spec, "ports", json_pack("[o]", port));
	body = rc_kube_to_body(obj, NULL);
	json_decref(obj);
	merge_native(x, body, "Service", s->name, nat);
	return add_body(x, body, s->loc, NULL);
}

static bool nonempty_map(const json_t *v)
{
	return json_is_object(v) && json_object_size(v);
}

static int add_manifest(expansion *x, const rc_manifest *m)
{
	json_t *obj = rc_node_to_json(m->manifest), *md, *body;
	char *kind = kind_key_of(obj);
	rc_resource *r = NULL;
	const char *name;
	int rc = 0;

	md = child(obj, "metadata");
	name = get_str(md, "name");
	if (!name || !get_str(obj, "apiVersion") || !get_str(obj, "kind")) {
		rc = rc_error_set_at(RC_EINVALID, m->loc,
				     "a manifest needs apiVersion, kind and "
				     "metadata.name");
		goto done;
	}
	if (!strcmp(kind, "Secret") && (nonempty_map(get(obj, "data")) ||
					nonempty_map(get(obj, "stringData")))) {
		rc = rc_error_set_at(RC_EINVALID, m->loc,
				     "the Secret '%s' holds its values in the "
				     "manifest: declare them under 'secrets' "
				     "(by reference) and they go to the "
				     "Secret '%s'",
				     name, RC_KUBE_SECRET);
		goto done;
	}
	if (!cluster_scoped(kind) && !get(md, "namespace"))
		json_object_set_new(md, "namespace", json_string(x->ns));
	if (!strcmp(kind, "Namespace") && !strcmp(name, x->ns)) {
		/* more for the environment's own Namespace: merged into it */
		rc_resource *ns = rc_resource_set_find(&x->set, x->ns_key);

		body = rc_kube_to_body(obj, NULL);
		merge(ns->body, body);
		json_decref(body);
		rc_kube_set_ownership(ns->body, x->project, x->env->name);
		goto done;
	}
	rc_kube_set_ownership(obj, x->project, x->env->name);
	if (!(body = rc_kube_to_body(obj, NULL))) {
		rc = rc_error_set_at(RC_EINVALID, m->loc, "%s",
				     rc_error_last()->message);
		goto done;
	}
	rc = add_body(x, body, m->loc, &r);
	/* deleting a volume loses its data */
	if (!rc && (!strcmp(kind, "PersistentVolumeClaim") ||
		    !strcmp(kind, "PersistentVolume")))
		r->precious = true;
done:
	free(kind);
	json_decref(obj);
	return rc;
}

static int add_config(expansion *x)
{
	const rc_env *env = x->env;
	json_t *obj, *data;
	rc_resource *r;
	int rc;

	if (env->config.n) {
		obj = new_object("v1", "ConfigMap", RC_KUBE_CONFIGMAP, x->ns);
		data = child(obj, "data");
		for (size_t i = 0; i < env->config.n; i++) {
			const rc_kv *kv = &env->config.items[i];

			json_object_set_new(data, kv->key,
					    json_string(kv->value));
		}
		rc_kube_set_ownership(obj, x->project, env->name);
		if ((rc = add_body(x, obj, env->config.items[0].loc, &r)) < 0)
			return rc;
		x->cm_key = rc_strdup(r->key);
	}
	if (env->nsecrets) {
		obj = new_object("v1", "Secret", RC_KUBE_SECRET, x->ns);
		json_object_set_new(obj, "type", json_string("Opaque"));
		data = child(obj, "data");
		for (size_t i = 0; i < env->nsecrets; i++) {
			const rc_secret *s = &env->secrets[i];
			char *v = NULL;

			if ((rc = rc_secret_value(&v, s, x->config_dir)) < 0) {
				json_decref(obj);
				return rc;
			}
			json_object_set_new(data, s->name, rc_secret_json(s, v));
			wipe_free(v, strlen(v));
		}
		rc_kube_set_ownership(obj, x->project, env->name);
		if ((rc = add_body(x, obj, env->secrets[0].loc, &r)) < 0)
			return rc;
		x->secret_key = rc_strdup(r->key);
	}
	if (x->cm_key || x->secret_key) {
		rc_resource *cm = x->cm_key ? rc_resource_set_find(&x->set,
								    x->cm_key)
					    : NULL;
		rc_resource *sec = x->secret_key
					   ? rc_resource_set_find(&x->set,
								  x->secret_key)
					   : NULL;

		x->config_hash = config_hash(cm ? get(cm->body, "data") : NULL,
					     sec ? get(sec->body, "data")
						 : NULL);
	}
	return 0;
}

static int expand(expansion *x)
{
	const rc_env *env = x->env;
	rc_resource *r;
	json_t *obj;
	int rc;

	if (env->naddons)
		return rc_error_set_at(RC_EUNSUPPORTED, env->addons[0].loc,
				       "add-on '%s' (kind '%s'): the "
				       "kubernetes driver does not make "
				       "add-ons; declare the database as "
				       "raw manifests under 'resources', or "
				       "use a managed one and give its URL "
				       "under 'secrets'",
				       env->addons[0].name,
				       env->addons[0].kind);
	if (!x->ns || !*x->ns)
		return rc_error_set_at(RC_EINVALID, env->target.loc,
				       "environment '%s' has no namespace",
				       env->name);
	obj = new_object("v1", "Namespace", x->ns, NULL);
	rc_kube_set_ownership(obj, x->project, env->name);
	if ((rc = add_body(x, obj, env->target.loc, &r)) < 0)
		return rc;
	x->ns_key = rc_strdup(r->key);
	if ((rc = add_config(x)) < 0)
		return rc;
	for (size_t i = 0; i < env->nservices; i++) {
		const rc_service *s = &env->services[i];
		json_t *native = s->native ? rc_node_to_json(s->native) : NULL;

		rc = add_deployment(x, s, native);
		if (!rc)
			rc = add_service(x, s, native);
		json_decref(native);
		if (rc < 0)
			return rc;
	}
	for (size_t i = 0; i < env->nresources; i++)
		if ((rc = add_manifest(x, &env->resources[i])) < 0)
			return rc;
	return 0;
}

int rc_kube_expand(const rc_env *env, const char *project,
		   const char *config_dir, rc_resource_set *out)
{
	expansion x = {0};
	int rc;

	x.env = env;
	x.project = project;
	x.config_dir = config_dir;
	x.ns = env->target.namespace;
	x.elabel = rc_kube_label_value(env->name);
	rc = expand(&x);
	if (rc < 0) {
		rc_resource_set_release(&x.set);
	} else {
		RC_GROW(out->items, out->cap, out->n + x.set.n);
		if (x.set.n)
			memcpy(out->items + out->n, x.set.items,
			       x.set.n * sizeof(*x.set.items));
		out->n += x.set.n;
		free(x.set.items);
	}
	free(x.elabel);
	free(x.ns_key);
	free(x.cm_key);
	free(x.secret_key);
	free(x.config_hash);
	return rc;
}

/* ----------------------------------------------------------------- hooks */

json_t *rc_kube_hook_job(const rc_env *env, const char *project,
			 const json_t *spec, const char *job_name)
{
	const json_t *run = get(spec, "run");
	const char *svc = get_str(spec, "service");
	const char *where = get_str(spec, "where");
	const char *hook = get_str(spec, "name");
	const rc_service *s = NULL;
	json_t *obj, *jspec, *tpl, *c, *vars, *list, *v, *req;
	json_int_t timeout = json_integer_value(get(spec, "timeout"));
	const char *k;
	char *hlabel;
	size_t i;

	if (!hook)
		hook = job_name;
	if (where && strcmp(where, "target")) {
		rc_error_set(RC_EINVALID, RC_ECLASS_INTERNAL,
			     "hook '%s' runs '%s', not on the target", hook,
			     where);
		return NULL;
	}
	if (!job_name || !*job_name || !json_is_array(run) ||
	    !json_array_size(run)) {
		rc_error_set(RC_EINVALID, RC_ECLASS_INTERNAL,
			     "hook '%s' has no command or no Job name",
			     hook ? hook : "?");
		return NULL;
	}
	json_array_foreach(run, i, v) {
		if (!json_is_string(v)) {
			rc_error_set(RC_EINVALID, RC_ECLASS_INTERNAL,
				     "hook '%s': its command must be strings",
				     hook);
			return NULL;
		}
	}
	for (i = 0; svc && i < env->nservices; i++)
		if (!strcmp(env->services[i].name, svc))
			s = &env->services[i];
	if (!s || !s->image) {
		rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
			     "hook '%s' runs on the kubernetes target in the "
			     "image of a service: %s",
			     hook,
			     !svc ? "it names none ('service')"
				  : !s ? "no such service in the environment"
				       : "the service has no image");
		return NULL;
	}
	obj = new_object("batch/v1", "Job", job_name, env->target.namespace);
	hlabel = rc_kube_label_value(hook);
	json_object_set_new(child(get(obj, "metadata"), "labels"),
			    RC_KUBE_LABEL_HOOK, json_string(hlabel));
	jspec = child(obj, "spec");
	json_object_set_new(jspec, "backoffLimit", json_integer(0));
	if (timeout > 0)
		json_object_set_new(jspec, "activeDeadlineSeconds",
				    json_integer(timeout));
	json_object_set_new(jspec, "ttlSecondsAfterFinished",
			    json_integer(RC_KUBE_HOOK_TTL));
	tpl = child(jspec, "template");
	json_object_set_new(child(child(tpl, "metadata"), "labels"),
			    RC_KUBE_LABEL_HOOK, json_string(hlabel));
	free(hlabel);
	c = json_object();
	json_object_set_new(c, "name", json_string("hook"));
	json_object_set_new(c, "image", json_string(s->image));
	json_object_set_new(c, "command", json_deep_copy(run));
	/* the service's variables, then the hook's over them */
	vars = json_object();
	for (i = 0; i < s->env.n; i++)
		json_object_set_new(vars, s->env.items[i].key,
				    json_string(s->env.items[i].value));
	json_object_foreach(get(spec, "env"), k, v) {
		json_object_set(vars, k, v);
	}
	if (json_object_size(vars)) {
		list = json_array();
		json_object_foreach(vars, k, v) {
			json_t *e = json_object();

			json_object_set_new(e, "name", json_string(k));
			json_object_set(e, "value", v);
			norm_env(e);
			json_array_append_new(list, e);
		}
		json_object_set_new(c, "env", list);
	}
	json_decref(vars);
	if ((v = env_from(env)) != NULL)
		json_object_set_new(c, "envFrom", v);
	if ((req = requests(s)) != NULL)
		json_object_set_new(c, "resources", req);
	json_object_set_new(child(tpl, "spec"), "restartPolicy",
			    json_string("Never"));
	json_object_set_new(get(tpl, "spec"), "containers",
			    json_pack("[o]", c));
	rc_kube_set_ownership(obj, project, env->name);
	return obj;
}

char *rc_kube_hook_job_name(const char *hook_name, const char *run_id)
{
	rc_buf in = RC_BUF_INIT_MAX(8192), name = RC_BUF_INIT_MAX(128);
	char hash[RC_SHA256_HEX_LEN + 1];

	rc_buf_printf(&in, "%s\n%s", hook_name ? hook_name : "",
		      run_id ? run_id : "");
	rc_codec_sha256_hex(hash, in.ptr, in.len);
	rc_buf_release(&in);
	for (const char *p = hook_name ? hook_name : ""; *p; p++) {
		char c = (char)tolower((unsigned char)*p);

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			c = '-';
		if (c == '-' && (!name.len || name.ptr[name.len - 1] == '-'))
			continue;
		if (name.len >= 63 - 11)
			break;
		rc_buf_putc(&name, c);
	}
	while (name.len && name.ptr[name.len - 1] == '-')
		rc_buf_truncate(&name, name.len - 1);
	if (!name.len)
		rc_buf_puts(&name, "hook");
	rc_buf_printf(&name, "-%.10s", hash);
	return rc_buf_detach(&name);
}

/* ------------------------------------------------------------ deletion */

bool rc_kube_dependent_kind(const char *kind, const char **api_version,
			    const char **dep_kind)
{
	static const struct {
		const char *owner, *api_version, *kind;
	} owns[] = {
		{"Deployment", "apps/v1", "ReplicaSet"},
		{"ReplicaSet", "v1", "Pod"},
		{"StatefulSet", "v1", "Pod"},
		{"DaemonSet", "v1", "Pod"},
		{"Job", "v1", "Pod"},
		{"CronJob", "batch/v1", "Job"},
	};

	for (size_t i = 0; kind && i < RC_ARRAY_SIZE(owns); i++)
		if (!strcmp(owns[i].owner, kind)) {
			*api_version = owns[i].api_version;
			*dep_kind = owns[i].kind;
			return true;
		}
	return false;
}

/* 'a', 'b' */
static void put_names(rc_buf *out, const json_t *names)
{
	const json_t *v;
	size_t i;

	json_array_foreach(names, i, v)
		rc_buf_printf(out, "%s'%s'", i ? ", " : "",
			      json_string_value(v) ? json_string_value(v)
						   : "?");
}

/* What must happen for a finalizer to go, for the ones Kubernetes sets
 * itself; NULL for another controller's. */
static const char *finalizer_why(const char *f)
{
	static const struct {
		const char *name, *why;
	} known[] = {
		{"foregroundDeletion",
		 "the garbage collector deletes its dependents first"},
		{"orphan", "the garbage collector orphans its dependents first"},
		{"kubernetes.io/pvc-protection", "a pod still uses the claim"},
		{"kubernetes.io/pv-protection",
		 "a claim is still bound to the volume"},
		{"kubernetes", "the namespace controller deletes everything in "
			       "the namespace first"},
	};

	for (size_t i = 0; f && i < RC_ARRAY_SIZE(known); i++)
		if (!strcmp(known[i].name, f))
			return known[i].why;
	return NULL;
}

/* "; still there: pods 'x' (terminating, finalizers 'f'), ..." */
static void put_dependents(rc_buf *out, const json_t *deps)
{
	size_t i, n = json_array_size(deps);
	const json_t *e;

	if (!n) {
		rc_buf_puts(out, "; none is left, the garbage collector has "
				 "yet to remove it");
		return;
	}
	rc_buf_puts(out, "; still there:");
	json_array_foreach(deps, i, e) {
		const json_t *md = json_object_get(json_array_get(e, 1),
						   "metadata");
		const json_t *fin = json_object_get(md, "finalizers");
		const char *name = json_string_value(json_object_get(md, "name"));

		if (i == 5) {
			rc_buf_printf(out, " and %zu more", n - i);
			break;
		}
		rc_buf_printf(out, "%s %s '%s'", i ? "," : "",
			      json_string_value(json_array_get(e, 0)),
			      name ? name : "?");
		if (!json_object_get(md, "deletionTimestamp"))
			continue;
		rc_buf_puts(out, " (terminating");
		if (json_array_size(fin)) {
			rc_buf_printf(out, ", finalizer%s ",
				      json_array_size(fin) == 1 ? "" : "s");
			put_names(out, fin);
		}
		rc_buf_putc(out, ')');
	}
}

static void put_finalizers(rc_buf *out, const json_t *fins,
			   const char *field, const json_t *deps)
{
	const json_t *f;
	size_t i;

	json_array_foreach(fins, i, f) {
		const char *name = json_string_value(f);
		const char *why = finalizer_why(name);

		rc_buf_printf(out, "\n    %s '%s': ", field, name ? name : "?");
		if (!why) {
			rc_buf_puts(out, "another controller must remove it (is "
					 "the controller that set it running? "
					 "removing it by hand skips its "
					 "cleanup)");
			continue;
		}
		rc_buf_puts(out, why);
		if (name && !strcmp(name, "foregroundDeletion") && deps)
			put_dependents(out, deps);
	}
}

void rc_kube_deletion_stuck(rc_buf *out, const char *resource,
			    const json_t *obj, long waited, const json_t *deps)
{
	const json_t *md = json_object_get(obj, "metadata");
	const json_t *fins = json_object_get(md, "finalizers");
	const json_t *spec_fins =
		json_object_get(json_object_get(obj, "spec"), "finalizers");
	const char *name = json_string_value(json_object_get(md, "name"));
	const char *ns = json_string_value(json_object_get(md, "namespace"));
	const char *since =
		json_string_value(json_object_get(md, "deletionTimestamp"));
	const char *kind = json_string_value(json_object_get(obj, "kind"));
	const json_t *c;
	size_t i, len;

	rc_buf_printf(out, "%s '%s'", resource, name ? name : "?");
	if (ns)
		rc_buf_printf(out, " in namespace '%s'", ns);
	rc_buf_printf(out, " is still terminating %lds after its deletion",
		      waited);
	if (since)
		rc_buf_printf(out, " at %s", since);
	rc_buf_puts(out, " (target.wait_timeout sets how long reconcile "
			 "waits); it waits for:");
	len = out->len;
	put_finalizers(out, fins, "finalizer", deps);
	put_finalizers(out, spec_fins, "spec.finalizers", NULL);
	/* the namespace controller says what is left in a namespace */
	json_array_foreach(json_object_get(json_object_get(obj, "status"),
					   "conditions"),
			   i, c) {
		const char *type = json_string_value(json_object_get(c, "type"));
		const char *st = json_string_value(json_object_get(c, "status"));
		const char *msg =
			json_string_value(json_object_get(c, "message"));

		if (kind && !strcmp(kind, "Namespace") && type && st &&
		    !strcmp(st, "True"))
			rc_buf_printf(out, "\n    %s: %s", type,
				      msg ? msg : "(no message)");
	}
	if (out->len == len)
		rc_buf_puts(out, "\n    no finalizer is left: the API server "
				 "has yet to remove it");
}

static long long int_at(const json_t *o, const char *k, long long dflt)
{
	const json_t *v = json_object_get(o, k);

	return json_is_integer(v) ? json_integer_value(v) : dflt;
}

char *rc_kube_health(const json_t *obj, bool *unhealthy)
{
	const char *kind = json_string_value(json_object_get(obj, "kind"));
	const json_t *spec = json_object_get(obj, "spec"),
		     *st = json_object_get(obj, "status"),
		     *md = json_object_get(obj, "metadata");
	long long want, ready, updated, total;
	bool rolling;
	rc_buf b = RC_BUF_INIT_MAX(128);

	*unhealthy = false;
	if (!kind)
		return NULL;
	if (!strcmp(kind, "DaemonSet")) {
		want = int_at(st, "desiredNumberScheduled", 0);
		ready = int_at(st, "numberReady", 0);
		updated = int_at(st, "updatedNumberScheduled", want);
		total = want;
	} else if (!strcmp(kind, "Deployment") ||
		   !strcmp(kind, "StatefulSet") ||
		   !strcmp(kind, "ReplicaSet")) {
		want = int_at(spec, "replicas", 1);
		ready = int_at(st, "readyReplicas", 0);
		updated = int_at(st, "updatedReplicas", want);
		total = int_at(st, "replicas", want);
	} else {
		return NULL;
	}
	rolling = int_at(st, "observedGeneration", 0) <
			  int_at(md, "generation", 0) ||
		  updated < want || total > want;
	*unhealthy = ready < want && !rolling;
	rc_buf_printf(&b, "ready %lld/%lld%s", ready, want,
		      rolling ? ", rolling out" : "");
	return rc_buf_detach(&b);
}
