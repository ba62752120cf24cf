/*
 * The kinds the fake serves, with what the API server does to each:
 * defaults filled in on decode, work done on create (uids, cluster IPs,
 * Job selectors), validation with the server's messages (v1.19 texts),
 * and the key order of the Go types for printing.
 */
#include "tests/fake/kube/kube.h"

/* ---- validation messages ---- */

#define DNS1123_LABEL_FMT "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
#define DNS1123_LABEL_MSG                                                      \
	"a DNS-1123 label must consist of lower case alphanumeric "            \
	"characters or '-', and must start and end with an alphanumeric "      \
	"character (e.g. 'my-name',  or '123-abc', regex used for "            \
	"validation is '" DNS1123_LABEL_FMT "')"
#define DNS1123_SUBDOMAIN_MSG                                                  \
	"a DNS-1123 subdomain must consist of lower case alphanumeric "        \
	"characters, '-' or '.', and must start and end with an "              \
	"alphanumeric character (e.g. 'example.com', regex used for "          \
	"validation is '" DNS1123_LABEL_FMT "(\\." DNS1123_LABEL_FMT ")*')"
#define DNS1035_LABEL_MSG                                                      \
	"a DNS-1035 label must consist of lower case alphanumeric "            \
	"characters or '-', start with an alphabetic character, and end "      \
	"with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "      \
	"regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
#define QUALIFIED_NAME_MSG                                                     \
	"name part must consist of alphanumeric characters, '-', '_' or "      \
	"'.', and must start and end with an alphanumeric character (e.g. "    \
	"'MyName',  or 'my.name',  or '123-abc', regex used for validation "   \
	"is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
#define LABEL_VALUE_MSG                                                        \
	"a valid label must be an empty string or consist of alphanumeric "    \
	"characters, '-', '_' or '.', and must start and end with an "         \
	"alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "         \
	"'12345', regex used for validation is "                               \
	"'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
#define CONFIG_KEY_MSG                                                         \
	"a valid config key must consist of alphanumeric characters, '-', "    \
	"'_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex "  \
	"used for validation is '[-._a-zA-Z0-9]+')"
#define PORT_RANGE_MSG "must be between 1 and 65535, inclusive"

/* clang-format off */
static const char *const type_names[] = {
	[KF_REQUIRED] = "Required value",
	[KF_INVALID] = "Invalid value",
	[KF_UNSUPPORTED] = "Unsupported value",
	[KF_DUPLICATE] = "Duplicate value",
	[KF_FORBIDDEN] = "Forbidden",
};

static const char *const cause_reasons[] = {
	[KF_REQUIRED] = "FieldValueRequired",
	[KF_INVALID] = "FieldValueInvalid",
	[KF_UNSUPPORTED] = "FieldValueNotSupported",
	[KF_DUPLICATE] = "FieldValueDuplicate",
	[KF_FORBIDDEN] = "FieldValueForbidden",
};
/* clang-format on */

void kf_verr(struct kf_verrs *e, enum kf_ferr_type t, const char *field,
	     const char *value, const char *detail)
{
	rc_buf body = RC_BUF_INIT;
	struct kf_ferr *f;

	rc_buf_puts(&body, type_names[t]);
	if (value && t != KF_REQUIRED && t != KF_FORBIDDEN)
		rc_buf_printf(&body, ": %s", value);
	if (detail && *detail)
		rc_buf_printf(&body, ": %s", detail);
	RC_GROW(e->v, e->cap, e->n + 1);
	f = &e->v[e->n++];
	f->type = t;
	f->field = rc_strdup(field);
	f->body = rc_buf_detach(&body);
}

void kf_verr_str(struct kf_verrs *e, enum kf_ferr_type t, const char *field,
		 const char *value, const char *detail)
{
	rc_buf q = RC_BUF_INIT;

	kf_go_quote(&q, value ? value : "");
	kf_verr(e, t, field, q.ptr, detail);
	rc_buf_release(&q);
}

void kf_verr_int(struct kf_verrs *e, const char *field, long long value,
		 const char *detail)
{
	char num[32];

	snprintf(num, sizeof(num), "%lld", value);
	kf_verr(e, KF_INVALID, field, num, detail);
}

void kf_verr_release(struct kf_verrs *e)
{
	for (size_t i = 0; i < e->n; i++) {
		free(e->v[i].field);
		free(e->v[i].body);
	}
	free(e->v);
	memset(e, 0, sizeof(*e));
}

json_t *kf_verr_status(const struct kf_verrs *e, const char *group,
		       const char *kind, const char *name)
{
	rc_buf msg = RC_BUF_INIT, q = RC_BUF_INIT;
	json_t *causes = json_array(), *details, *s;

	kf_go_quote(&q, name ? name : "");
	rc_buf_printf(&msg, "%s%s%s %s is invalid: ", kind,
		      group && *group ? "." : "", group ? group : "", q.ptr);
	if (e->n > 1)
		rc_buf_putc(&msg, '[');
	for (size_t i = 0; i < e->n; i++) {
		rc_buf_printf(&msg, "%s%s: %s", i ? ", " : "", e->v[i].field,
			      e->v[i].body);
		json_array_append_new(
		    causes, json_pack("{s:s,s:s,s:s}", "reason",
				      cause_reasons[e->v[i].type], "message",
				      e->v[i].body, "field", e->v[i].field));
	}
	if (e->n > 1)
		rc_buf_putc(&msg, ']');
	details = kf_details(name, group, kind);
	json_object_set_new(details, "causes", causes);
	s = kf_status(422, "Invalid", msg.ptr, details);
	rc_buf_release(&msg);
	rc_buf_release(&q);
	return s;
}

/* ---- name checks ---- */

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
	return isalnum((unsigned char)c) != 0;
}

static bool dns_label_n(const char *s, size_t n)
{
	if (!n || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_lower_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

static bool dns_subdomain(const char *s)
{
	for (;;) {
		size_t n = strcspn(s, ".");

		if (!dns_label_n(s, n))
			return false;
		if (!s[n])
			return true;
		s += n + 1;
	}
}

static bool dns1035(const char *s)
{
	return dns_label_n(s, strlen(s)) && s[0] >= 'a' && s[0] <= 'z';
}

/* ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9] */
static bool name_part(const char *s, size_t n)
{
	if (!n || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(s[i]) && !strchr("-_.", s[i]))
			return false;
	return true;
}

static void check_dns(struct kf_verrs *e, const char *field, const char *v,
		      enum kf_name_rule rule)
{
	size_t max = rule == KF_NAME_SUBDOMAIN ? 253 : 63;
	char msg[64];

	if (strlen(v) > max) {
		snprintf(msg, sizeof(msg),
			 "must be no more than %zu characters", max);
		kf_verr_str(e, KF_INVALID, field, v, msg);
	}
	switch (rule) {
	case KF_NAME_SUBDOMAIN:
		if (!dns_subdomain(v))
			kf_verr_str(e, KF_INVALID, field, v,
				    DNS1123_SUBDOMAIN_MSG);
		break;
	case KF_NAME_LABEL:
		if (!dns_label_n(v, strlen(v)))
			kf_verr_str(e, KF_INVALID, field, v, DNS1123_LABEL_MSG);
		break;
	case KF_NAME_1035:
		if (!dns1035(v))
			kf_verr_str(e, KF_INVALID, field, v, DNS1035_LABEL_MSG);
		break;
	}
}

static void check_qualified(struct kf_verrs *e, const char *field,
			    const char *key)
{
	const char *slash = strrchr(key, '/');
	const char *name = slash ? slash + 1 : key;

	if (slash) {
		char *prefix = rc_strndup(key, (size_t)(slash - key));

		if (!*prefix || !dns_subdomain(prefix))
			kf_verr_str(e, KF_INVALID, field, key,
				    "prefix part " DNS1123_SUBDOMAIN_MSG);
		free(prefix);
	}
	if (!*name)
		kf_verr_str(e, KF_INVALID, field, key,
			    "name part must be non-empty");
	else if (strlen(name) > 63)
		kf_verr_str(e, KF_INVALID, field, key,
			    "name part must be no more than 63 characters");
	else if (!name_part(name, strlen(name)))
		kf_verr_str(e, KF_INVALID, field, key, QUALIFIED_NAME_MSG);
}

void kf_validate_meta(struct kf_verrs *e, const struct kf_kind *k, json_t *obj)
{
	const char *name = kf_jstr(obj, "metadata.name");
	json_t *labels = kf_jget(obj, "metadata.labels"), *v;
	json_t *ann = kf_jget(obj, "metadata.annotations");
	const char *key;

	if (!name || !*name)
		kf_verr(e, KF_REQUIRED, "metadata.name", NULL,
			"name or generateName is required");
	else
		check_dns(e, "metadata.name", name, k->name_rule);
	json_object_foreach(labels, key, v) {
		const char *val = json_string_value(v);

		check_qualified(e, "metadata.labels", key);
		if (!val)
			continue;
		if (strlen(val) > 63)
			kf_verr_str(e, KF_INVALID, "metadata.labels", val,
				    "must be no more than 63 characters");
		if (*val && !name_part(val, strlen(val)))
			kf_verr_str(e, KF_INVALID, "metadata.labels", val,
				    LABEL_VALUE_MSG);
	}
	json_object_foreach(ann, key, v)
	    check_qualified(e, "metadata.annotations", key);
}

/* Go's %#v of a map[string]string held in o. */
static void go_string_map(rc_buf *out, json_t *o)
{
	const char **keys;
	size_t n = 0;
	const char *key;
	json_t *v;

	if (!json_is_object(o)) {
		rc_buf_puts(out, "map[string]string(nil)");
		return;
	}
	keys = rc_calloc(json_object_size(o) + 1, sizeof(*keys));
	json_object_foreach(o, key, v) keys[n++] = key;
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0;
		     j--) {
			const char *t = keys[j];

			keys[j] = keys[j - 1];
			keys[j - 1] = t;
		}
	rc_buf_puts(out, "map[string]string{");
	for (size_t i = 0; i < n; i++) {
		if (i)
			rc_buf_puts(out, ", ");
		kf_go_quote(out, keys[i]);
		rc_buf_putc(out, ':');
		kf_go_quote(out,
			    json_string_value(json_object_get(o, keys[i]))
				? json_string_value(json_object_get(o, keys[i]))
				: "");
	}
	rc_buf_putc(out, '}');
	free(keys);
}

static void path(rc_buf *b, const char *prefix, const char *fmt, ...)
    RC_PRINTF(3, 4);

static void path(rc_buf *b, const char *prefix, const char *fmt, ...)
{
	va_list ap;

	rc_buf_clear(b);
	rc_buf_puts(b, prefix);
	va_start(ap, fmt);
	rc_buf_vprintf(b, fmt, ap);
	va_end(ap);
}

static bool int_field(json_t *o, const char *key, long long *out)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v))
		return false;
	*out = json_integer_value(v);
	return true;
}

static void check_unsupported(struct kf_verrs *e, const char *field,
			      const char *value, const char *const *allowed)
{
	rc_buf d = RC_BUF_INIT;

	for (size_t i = 0; allowed[i]; i++)
		if (!strcmp(value, allowed[i]))
			return;
	rc_buf_puts(&d, "supported values: ");
	for (size_t i = 0; allowed[i]; i++) {
		if (i)
			rc_buf_puts(&d, ", ");
		kf_go_quote(&d, allowed[i]);
	}
	kf_verr_str(e, KF_UNSUPPORTED, field, value, d.ptr);
	rc_buf_release(&d);
}

static void nonnegative(struct kf_verrs *e, json_t *o, const char *key,
			const char *prefix)
{
	long long v;
	rc_buf f = RC_BUF_INIT;

	if (int_field(o, key, &v) && v < 0) {
		path(&f, prefix, ".%s", key);
		kf_verr_int(e, f.ptr, v, "must be greater than or equal to 0");
	}
	rc_buf_release(&f);
}

static void validate_containers(struct kf_verrs *e, json_t *list,
				const char *prefix, const char *what,
				json_t *seen)
{
	static const char *const protocols[] = {"SCTP", "TCP", "UDP", NULL};
	rc_buf f = RC_BUF_INIT;
	size_t i, j;
	json_t *c, *p;

	json_array_foreach(list, i, c) {
		const char *name = kf_jstr(c, "name");
		const char *image = kf_jstr(c, "image");

		path(&f, prefix, ".%s[%zu].name", what, i);
		if (!name || !*name) {
			kf_verr(e, KF_REQUIRED, f.ptr, NULL, NULL);
		} else {
			check_dns(e, f.ptr, name, KF_NAME_LABEL);
			if (json_object_get(seen, name))
				kf_verr_str(e, KF_DUPLICATE, f.ptr, name, NULL);
			json_object_set_new(seen, name, json_true());
		}
		path(&f, prefix, ".%s[%zu].image", what, i);
		if (!image || !*image)
			kf_verr(e, KF_REQUIRED, f.ptr, NULL, NULL);
		json_array_foreach(json_object_get(c, "ports"), j, p) {
			long long port = 0;
			const char *proto = kf_jstr(p, "protocol");

			path(&f, prefix, ".%s[%zu].ports[%zu].containerPort",
			     what, i, j);
			if (!int_field(p, "containerPort", &port) || port == 0)
				kf_verr(e, KF_REQUIRED, f.ptr, NULL, NULL);
			else if (port < 1 || port > 65535)
				kf_verr_int(e, f.ptr, port, PORT_RANGE_MSG);
			path(&f, prefix, ".%s[%zu].ports[%zu].protocol", what,
			     i, j);
			if (!proto)
				kf_verr(e, KF_REQUIRED, f.ptr, NULL, NULL);
			else
				check_unsupported(e, f.ptr, proto, protocols);
		}
		json_array_foreach(json_object_get(c, "env"), j, p) {
			const char *ename = kf_jstr(p, "name");

			path(&f, prefix, ".%s[%zu].env[%zu].name", what, i, j);
			if (!ename || !*ename)
				kf_verr(e, KF_REQUIRED, f.ptr, NULL, NULL);
		}
	}
	rc_buf_release(&f);
}

static void validate_pod_spec(struct kf_verrs *e, json_t *spec,
			      const char *prefix)
{
	static const char *const policies[] = {"Always", "OnFailure", "Never",
					       NULL};
	rc_buf f = RC_BUF_INIT;
	json_t *seen = json_object();
	json_t *containers = json_object_get(spec, "containers");
	const char *rp = kf_jstr(spec, "restartPolicy");

	validate_containers(e, json_object_get(spec, "initContainers"), prefix,
			    "initContainers", seen);
	path(&f, prefix, ".containers");
	if (json_array_size(containers) == 0)
		kf_verr(e, KF_REQUIRED, f.ptr, NULL, NULL);
	else
		validate_containers(e, containers, prefix, "containers", seen);
	if (rp) {
		path(&f, prefix, ".restartPolicy");
		check_unsupported(e, f.ptr, rp, policies);
	}
	json_decref(seen);
	rc_buf_release(&f);
}

static void validate_template_labels(struct kf_verrs *e, json_t *tpl,
				     const char *prefix)
{
	json_t *labels = kf_jget(tpl, "metadata.labels"), *v;
	const char *key;
	rc_buf f = RC_BUF_INIT;

	path(&f, prefix, ".metadata.labels");
	json_object_foreach(labels, key, v) {
		const char *val = json_string_value(v);

		check_qualified(e, f.ptr, key);
		if (val && *val && !name_part(val, strlen(val)))
			kf_verr_str(e, KF_INVALID, f.ptr, val, LABEL_VALUE_MSG);
	}
	rc_buf_release(&f);
}

static bool selector_matches(json_t *selector, json_t *labels)
{
	json_t *ml = json_object_get(selector, "matchLabels"), *v, *req;
	const char *key;
	size_t i;

	json_object_foreach(ml, key, v) {
		const char *have =
		    json_string_value(json_object_get(labels, key));

		if (!have || !json_string_value(v) ||
		    strcmp(have, json_string_value(v)))
			return false;
	}
	json_array_foreach(json_object_get(selector, "matchExpressions"), i,
			   req)
	{
		const char *op = kf_jstr(req, "operator");
		const char *have = json_string_value(json_object_get(
		    labels, kf_jstr(req, "key") ? kf_jstr(req, "key") : ""));
		json_t *vals = json_object_get(req, "values"), *x;
		bool in = false;
		size_t j;

		json_array_foreach(vals, j,
				   x) if (have && json_string_value(x) &&
					  !strcmp(have, json_string_value(x)))
		    in = true;
		if (!op || (!strcmp(op, "In") && !in) ||
		    (!strcmp(op, "NotIn") && in) ||
		    (!strcmp(op, "Exists") && !have) ||
		    (!strcmp(op, "DoesNotExist") && have))
			return false;
	}
	return true;
}

static void go_label_selector(rc_buf *out, json_t *sel)
{
	rc_buf_puts(out, "v1.LabelSelector{MatchLabels:");
	go_string_map(out, json_object_get(sel, "matchLabels"));
	rc_buf_puts(out, ", MatchExpressions:");
	if (json_array_size(json_object_get(sel, "matchExpressions")))
		rc_buf_puts(out, "[]v1.LabelSelectorRequirement{...}");
	else
		rc_buf_puts(out, "[]v1.LabelSelectorRequirement(nil)");
	rc_buf_putc(out, '}');
}

static void immutable(struct kf_verrs *e, json_t *obj, json_t *old,
		      const char *p, const char *repr)
{
	json_t *a = kf_jget(obj, p), *b = kf_jget(old, p);

	if (old && !(a == b || (a && b && json_equal(a, b))))
		kf_verr(e, KF_INVALID, p, repr, "field is immutable");
}

static void validate_deployment(struct kf_verrs *e, json_t *obj, json_t *old)
{
	static const char *const strategies[] = {"Recreate", "RollingUpdate",
						 NULL};
	static const char *const always[] = {"Always", NULL};
	json_t *spec = json_object_get(obj, "spec");
	json_t *sel = json_object_get(spec, "selector");
	json_t *tpl = json_object_get(spec, "template");
	const char *strategy = kf_jstr(spec, "strategy.type");
	const char *rp = kf_jstr(tpl, "spec.restartPolicy");
	rc_buf v = RC_BUF_INIT;
	long long pds, mrs = 0;

	nonnegative(e, spec, "replicas", "spec");
	if (!json_is_object(sel)) {
		kf_verr(e, KF_REQUIRED, "spec.selector", NULL, NULL);
	} else if (!json_object_size(json_object_get(sel, "matchLabels")) &&
		   !json_array_size(json_object_get(sel, "matchExpressions"))) {
		go_label_selector(&v, sel);
		kf_verr(e, KF_INVALID, "spec.selector", v.ptr,
			"empty selector is invalid for deployment");
	}
	if (!json_is_object(sel) ||
	    !selector_matches(sel, kf_jget(tpl, "metadata.labels"))) {
		rc_buf_clear(&v);
		go_string_map(&v, kf_jget(tpl, "metadata.labels"));
		kf_verr(e, KF_INVALID, "spec.template.metadata.labels", v.ptr,
			"`selector` does not match template `labels`");
	}
	validate_template_labels(e, tpl, "spec.template");
	validate_pod_spec(e, json_object_get(tpl, "spec"),
			  "spec.template.spec");
	if (rp && strcmp(rp, "Always"))
		check_unsupported(e, "spec.template.spec.restartPolicy", rp,
				  always);
	if (strategy)
		check_unsupported(e, "spec.strategy.type", strategy,
				  strategies);
	nonnegative(e, spec, "minReadySeconds", "spec");
	nonnegative(e, spec, "revisionHistoryLimit", "spec");
	int_field(spec, "minReadySeconds", &mrs);
	if (int_field(spec, "progressDeadlineSeconds", &pds)) {
		nonnegative(e, spec, "progressDeadlineSeconds", "spec");
		if (pds <= mrs)
			kf_verr_int(e, "spec.progressDeadlineSeconds", pds,
				    "must be greater than minReadySeconds");
	}
	if (old) {
		rc_buf_clear(&v);
		go_label_selector(&v, sel);
		immutable(e, obj, old, "spec.selector", v.ptr);
	}
	rc_buf_release(&v);
}

static void validate_job(struct kf_verrs *e, json_t *obj, json_t *old)
{
	static const char *const policies[] = {"OnFailure", "Never", NULL};
	json_t *spec = json_object_get(obj, "spec");
	json_t *tpl = json_object_get(spec, "template");
	const char *rp = kf_jstr(tpl, "spec.restartPolicy");

	nonnegative(e, spec, "parallelism", "spec");
	nonnegative(e, spec, "completions", "spec");
	nonnegative(e, spec, "activeDeadlineSeconds", "spec");
	nonnegative(e, spec, "backoffLimit", "spec");
	if (!json_is_object(json_object_get(spec, "selector")))
		kf_verr(e, KF_REQUIRED, "spec.selector", NULL, NULL);
	validate_template_labels(e, tpl, "spec.template");
	validate_pod_spec(e, json_object_get(tpl, "spec"),
			  "spec.template.spec");
	if (rp && strcmp(rp, "OnFailure") && strcmp(rp, "Never"))
		check_unsupported(e, "spec.template.spec.restartPolicy", rp,
				  policies);
	if (old) {
		immutable(e, obj, old, "spec.completions", NULL);
		immutable(e, obj, old, "spec.selector", NULL);
		immutable(e, obj, old, "spec.template",
			  "core.PodTemplateSpec{...}");
	}
}

static void validate_service(struct kf_verrs *e, json_t *obj, json_t *old)
{
	static const char *const types[] = {"ClusterIP", "ExternalName",
					    "LoadBalancer", "NodePort", NULL};
	static const char *const affinities[] = {"ClientIP", "None", NULL};
	static const char *const protocols[] = {"SCTP", "TCP", "UDP", NULL};
	json_t *spec = json_object_get(obj, "spec");
	json_t *ports = json_object_get(spec, "ports"), *p;
	const char *type = kf_jstr(spec, "type");
	const char *aff = kf_jstr(spec, "sessionAffinity");
	rc_buf f = RC_BUF_INIT;
	size_t i;

	if (json_array_size(ports) == 0 &&
	    !(type && !strcmp(type, "ExternalName")))
		kf_verr(e, KF_REQUIRED, "spec.ports", NULL, NULL);
	json_array_foreach(ports, i, p) {
		const char *proto = kf_jstr(p, "protocol");
		json_t *tp = json_object_get(p, "targetPort");
		long long port = 0;

		path(&f, "spec", ".ports[%zu].name", i);
		if (json_array_size(ports) > 1 && !kf_jstr(p, "name"))
			kf_verr(e, KF_REQUIRED, f.ptr, NULL, NULL);
		path(&f, "spec", ".ports[%zu].port", i);
		int_field(p, "port", &port);
		if (port < 1 || port > 65535)
			kf_verr_int(e, f.ptr, port, PORT_RANGE_MSG);
		path(&f, "spec", ".ports[%zu].protocol", i);
		if (proto)
			check_unsupported(e, f.ptr, proto, protocols);
		path(&f, "spec", ".ports[%zu].targetPort", i);
		if (json_is_integer(tp) && (json_integer_value(tp) < 1 ||
					    json_integer_value(tp) > 65535))
			kf_verr_int(e, f.ptr, json_integer_value(tp),
				    PORT_RANGE_MSG);
	}
	if (type)
		check_unsupported(e, "spec.type", type, types);
	if (aff)
		check_unsupported(e, "spec.sessionAffinity", aff, affinities);
	if (old) {
		const char *ip = kf_jstr(spec, "clusterIP");
		rc_buf q = RC_BUF_INIT;

		kf_go_quote(&q, ip ? ip : "");
		immutable(e, obj, old, "spec.clusterIP", q.ptr);
		rc_buf_release(&q);
	}
	rc_buf_release(&f);
}

static void validate_data_keys(struct kf_verrs *e, json_t *obj,
			       const char *field)
{
	json_t *data = json_object_get(obj, field), *v;
	const char *key;
	rc_buf f = RC_BUF_INIT;

	json_object_foreach(data, key, v) {
		if (*key &&
		    strspn(key, "-._abcdefghijklmnopqrstuvwxyz"
				"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") ==
			strlen(key))
			continue;
		path(&f, field, "[%s]", key);
		kf_verr_str(e, KF_INVALID, f.ptr, key, CONFIG_KEY_MSG);
	}
	rc_buf_release(&f);
}

static void validate_configmap(struct kf_verrs *e, json_t *obj, json_t *old)
{
	(void)old;
	validate_data_keys(e, obj, "data");
	validate_data_keys(e, obj, "binaryData");
}

static void validate_secret(struct kf_verrs *e, json_t *obj, json_t *old)
{
	(void)old;
	validate_data_keys(e, obj, "data");
}

static void validate_lease(struct kf_verrs *e, json_t *obj, json_t *old)
{
	json_t *spec = json_object_get(obj, "spec");
	long long v;

	(void)old;
	if (int_field(spec, "leaseDurationSeconds", &v) && v <= 0)
		kf_verr_int(e, "spec.leaseDurationSeconds", v,
			    "must be greater than 0");
	nonnegative(e, spec, "leaseTransitions", "spec");
}

static void validate_ingress(struct kf_verrs *e, json_t *obj, json_t *old)
{
	static const char *const types[] = {"Exact", "ImplementationSpecific",
					    "Prefix", NULL};
	json_t *rule, *p;
	size_t i, j;
	rc_buf f = RC_BUF_INIT;

	(void)old;
	json_array_foreach(kf_jget(obj, "spec.rules"), i, rule) {
		json_array_foreach(kf_jget(rule, "http.paths"), j, p) {
			const char *pt = kf_jstr(p, "pathType");

			path(&f, "spec", ".rules[%zu].http.paths[%zu].pathType",
			     i, j);
			if (!pt)
				kf_verr(e, KF_REQUIRED, f.ptr, NULL,
					"pathType must be specified");
			else
				check_unsupported(e, f.ptr, pt, types);
		}
	}
	rc_buf_release(&f);
}

static void validate_pod(struct kf_verrs *e, json_t *obj, json_t *old)
{
	(void)old;
	validate_pod_spec(e, json_object_get(obj, "spec"), "spec");
}

/* ---- defaults ---- */

static void set_default(json_t *o, const char *key, json_t *v)
{
	if (!json_object_get(o, key))
		json_object_set(o, key, v);
	json_decref(v);
}

static void probe_defaults(json_t *p)
{
	if (!json_is_object(p))
		return;
	set_default(p, "timeoutSeconds", json_integer(1));
	set_default(p, "periodSeconds", json_integer(10));
	set_default(p, "successThreshold", json_integer(1));
	set_default(p, "failureThreshold", json_integer(3));
	if (json_is_object(json_object_get(p, "httpGet")))
		set_default(json_object_get(p, "httpGet"), "scheme",
			    json_string("HTTP"));
}

static const char *pull_policy(const char *image)
{
	const char *slash, *colon;

	if (!image)
		return "IfNotPresent";
	if (strchr(image, '@'))
		return "IfNotPresent";
	slash = strrchr(image, '/');
	colon = strrchr(image, ':');
	if (!colon || (slash && colon < slash) || !strcmp(colon, ":latest"))
		return "Always";
	return "IfNotPresent";
}

static void container_defaults(json_t *c)
{
	json_t *p;
	size_t i;

	json_array_foreach(json_object_get(c, "ports"), i, p)
	    set_default(p, "protocol", json_string("TCP"));
	json_array_foreach(json_object_get(c, "env"), i, p) {
		json_t *fr = kf_jget(p, "valueFrom.fieldRef");

		if (json_is_object(fr))
			set_default(fr, "apiVersion", json_string("v1"));
	}
	probe_defaults(json_object_get(c, "livenessProbe"));
	probe_defaults(json_object_get(c, "readinessProbe"));
	probe_defaults(json_object_get(c, "startupProbe"));
	set_default(c, "terminationMessagePath",
		    json_string("/dev/termination-log"));
	set_default(c, "terminationMessagePolicy", json_string("File"));
	set_default(c, "imagePullPolicy",
		    json_string(pull_policy(kf_jstr(c, "image"))));
}

static void pod_spec_defaults(json_t *spec)
{
	json_t *c;
	size_t i;

	if (!json_is_object(spec))
		return;
	json_array_foreach(json_object_get(spec, "initContainers"), i, c)
	    container_defaults(c);
	json_array_foreach(json_object_get(spec, "containers"), i, c)
	    container_defaults(c);
	json_array_foreach(json_object_get(spec, "volumes"), i, c) {
		json_t *src = json_object_get(c, "configMap");

		if (!json_is_object(src))
			src = json_object_get(c, "secret");
		if (json_is_object(src))
			set_default(src, "defaultMode", json_integer(420));
	}
	set_default(spec, "restartPolicy", json_string("Always"));
	set_default(spec, "terminationGracePeriodSeconds", json_integer(30));
	set_default(spec, "dnsPolicy", json_string("ClusterFirst"));
	set_default(spec, "securityContext", json_object());
	set_default(spec, "schedulerName", json_string("default-scheduler"));
}

static void template_defaults(json_t *tpl)
{
	json_t *meta;

	if (!json_is_object(tpl))
		return;
	meta = kf_jmkobj(tpl, "metadata");
	set_default(meta, "creationTimestamp", json_null());
	pod_spec_defaults(kf_jmkobj(tpl, "spec"));
}

static void deployment_defaults(json_t *obj)
{
	json_t *spec = kf_jmkobj(obj, "spec"), *st;
	const char *type;

	set_default(spec, "replicas", json_integer(1));
	template_defaults(kf_jmkobj(spec, "template"));
	st = kf_jmkobj(spec, "strategy");
	set_default(st, "type", json_string("RollingUpdate"));
	type = kf_jstr(st, "type");
	if (type && !strcmp(type, "RollingUpdate")) {
		json_t *ru = kf_jmkobj(st, "rollingUpdate");

		set_default(ru, "maxUnavailable", json_string("25%"));
		set_default(ru, "maxSurge", json_string("25%"));
	}
	set_default(spec, "revisionHistoryLimit", json_integer(10));
	set_default(spec, "progressDeadlineSeconds", json_integer(600));
}

static void job_defaults(json_t *obj)
{
	json_t *spec = kf_jmkobj(obj, "spec");
	json_t *labels;

	if (!json_object_get(spec, "completions") &&
	    !json_object_get(spec, "parallelism")) {
		json_object_set_new(spec, "completions", json_integer(1));
		json_object_set_new(spec, "parallelism", json_integer(1));
	}
	set_default(spec, "parallelism", json_integer(1));
	set_default(spec, "backoffLimit", json_integer(6));
	template_defaults(kf_jmkobj(spec, "template"));
	labels = kf_jget(spec, "template.metadata.labels");
	if (json_object_size(labels) &&
	    !json_object_size(kf_jget(obj, "metadata.labels")))
		json_object_set_new(kf_jmkobj(obj, "metadata"), "labels",
				    json_deep_copy(labels));
}

static void service_defaults(json_t *obj)
{
	json_t *spec = kf_jmkobj(obj, "spec"), *p;
	const char *type;
	size_t i;

	set_default(spec, "type", json_string("ClusterIP"));
	set_default(spec, "sessionAffinity", json_string("None"));
	json_array_foreach(json_object_get(spec, "ports"), i, p) {
		set_default(p, "protocol", json_string("TCP"));
		if (!json_object_get(p, "targetPort") &&
		    json_object_get(p, "port"))
			json_object_set(p, "targetPort",
					json_object_get(p, "port"));
	}
	type = kf_jstr(spec, "type");
	if (type &&
	    (!strcmp(type, "NodePort") || !strcmp(type, "LoadBalancer")))
		set_default(spec, "externalTrafficPolicy",
			    json_string("Cluster"));
	if (kf_jstr(spec, "sessionAffinity") &&
	    !strcmp(kf_jstr(spec, "sessionAffinity"), "ClientIP"))
		set_default(kf_jmkobj(spec, "sessionAffinityConfig.clientIP"),
			    "timeoutSeconds", json_integer(10800));
}

static void secret_defaults(json_t *obj)
{
	set_default(obj, "type", json_string("Opaque"));
}

static void namespace_defaults(json_t *obj)
{
	set_default(kf_jmkobj(obj, "status"), "phase", json_string("Active"));
}

static void pvc_defaults(json_t *obj)
{
	set_default(kf_jmkobj(obj, "spec"), "volumeMode",
		    json_string("Filesystem"));
	set_default(kf_jmkobj(obj, "status"), "phase", json_string("Pending"));
}

static void pod_defaults(json_t *obj)
{
	json_t *spec = kf_jmkobj(obj, "spec");

	pod_spec_defaults(spec);
	set_default(spec, "enableServiceLinks", json_true());
	set_default(spec, "priority", json_integer(0));
	set_default(spec, "preemptionPolicy",
		    json_string("PreemptLowerPriority"));
}

/* ---- the table ---- */

#define POD_TEMPLATE                                                           \
	"\"template\":{\"metadata\":{\"creationTimestamp\":null},"             \
	"\"spec\":{\"containers\":null}}"

/* clang-format off */
const struct kf_kind kf_kinds[] = {
	{"", "v1", "v1", "namespaces", "Namespace", false, true, false, true,
	 false, true, false, KF_NAME_LABEL, "Background",
	 "{\"spec\":{},\"status\":{}}", namespace_defaults, NULL},
	{"", "v1", "v1", "configmaps", "ConfigMap", true, false, false, true,
	 false, true, true, KF_NAME_SUBDOMAIN, "Background", "{}", NULL,
	 validate_configmap},
	{"", "v1", "v1", "secrets", "Secret", true, false, false, true, false,
	 true, true, KF_NAME_SUBDOMAIN, "Background", "{}", secret_defaults,
	 validate_secret},
	{"", "v1", "v1", "services", "Service", true, true, false, true, true,
	 true, false, KF_NAME_1035, "Background",
	 "{\"spec\":{},\"status\":{\"loadBalancer\":{}}}", service_defaults,
	 validate_service},
	{"", "v1", "v1", "pods", "Pod", true, true, false, true, false, true,
	 true, KF_NAME_SUBDOMAIN, "Background",
	 "{\"spec\":{\"containers\":null},\"status\":{}}", pod_defaults,
	 validate_pod},
	{"", "v1", "v1", "serviceaccounts", "ServiceAccount", true, false, false,
	 false, false, true, true, KF_NAME_SUBDOMAIN, "Background", "{}", NULL,
	 NULL},
	{"", "v1", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", true,
	 true, false, false, false, true, true, KF_NAME_SUBDOMAIN, "Background",
	 "{\"spec\":{},\"status\":{}}", pvc_defaults, NULL},
	{"apps", "v1", "apps/v1", "deployments", "Deployment", true, true, true,
	 true, false, true, true, KF_NAME_SUBDOMAIN, "Background",
	 "{\"spec\":{\"selector\":null," POD_TEMPLATE
	 ",\"strategy\":{}},\"status\":{}}",
	 deployment_defaults, validate_deployment},
	{"batch", "v1", "batch/v1", "jobs", "Job", true, true, true, true, false,
	 true, true, KF_NAME_SUBDOMAIN, "Orphan",
	 "{\"spec\":{" POD_TEMPLATE "},\"status\":{}}", job_defaults,
	 validate_job},
	{"coordination.k8s.io", "v1", "coordination.k8s.io/v1", "leases",
	 "Lease", true, false, false, true, true, false, true,
	 KF_NAME_SUBDOMAIN, "Background", "{\"spec\":{}}", NULL,
	 validate_lease},
	{"networking.k8s.io", "v1", "networking.k8s.io/v1", "ingresses",
	 "Ingress", true, true, true, true, false, true, true,
	 KF_NAME_SUBDOMAIN, "Background",
	 "{\"spec\":{},\"status\":{\"loadBalancer\":{}}}", NULL,
	 validate_ingress},
	{"rbac.authorization.k8s.io", "v1", "rbac.authorization.k8s.io/v1",
	 "clusterroles", "ClusterRole", false, false, false, false, true, true,
	 true, KF_NAME_SUBDOMAIN, "Background", "{}", NULL, NULL},
	{"rbac.authorization.k8s.io", "v1", "rbac.authorization.k8s.io/v1",
	 "clusterrolebindings", "ClusterRoleBinding", false, false, false, false,
	 true, true, true, KF_NAME_SUBDOMAIN, "Background", "{}", NULL, NULL},
	{"rbac.authorization.k8s.io", "v1", "rbac.authorization.k8s.io/v1",
	 "roles", "Role", true, false, false, false, true, true, true,
	 KF_NAME_SUBDOMAIN, "Background", "{}", NULL, NULL},
	{"rbac.authorization.k8s.io", "v1", "rbac.authorization.k8s.io/v1",
	 "rolebindings", "RoleBinding", true, false, false, false, true, true,
	 true, KF_NAME_SUBDOMAIN, "Background", "{}", NULL, NULL},
	{"example.com", "v1", "example.com/v1", "widgets", "Widget", true, true,
	 true, false, false, true, true, KF_NAME_SUBDOMAIN, "Background", "{}",
	 NULL, NULL},
};

/* clang-format on */

const size_t kf_nkinds = RC_ARRAY_SIZE(kf_kinds);

const struct kf_kind *kf_kind_find(const char *group, const char *version,
				   const char *resource)
{
	for (size_t i = 0; i < kf_nkinds; i++)
		if (!strcmp(kf_kinds[i].group, group) &&
		    !strcmp(kf_kinds[i].version, version) &&
		    !strcmp(kf_kinds[i].resource, resource))
			return &kf_kinds[i];
	return NULL;
}

const struct kf_kind *kf_kind_named(const char *resource)
{
	for (size_t i = 0; i < kf_nkinds; i++)
		if (!strcmp(kf_kinds[i].resource, resource))
			return &kf_kinds[i];
	return NULL;
}

void kf_qualified_resource(rc_buf *out, const struct kf_kind *k)
{
	rc_buf_puts(out, k->resource);
	if (*k->group)
		rc_buf_printf(out, ".%s", k->group);
}

void kf_kind_prefix(rc_buf *out, const struct kf_kind *k)
{
	if (*k->group)
		rc_buf_printf(out, "/apis/%s/%s", k->group, k->version);
	else
		rc_buf_printf(out, "/api/%s", k->version);
}

void kf_self_link(rc_buf *out, const struct kf_kind *k, const char *ns,
		  const char *name)
{
	kf_kind_prefix(out, k);
	if (k->namespaced && ns)
		rc_buf_printf(out, "/namespaces/%s", ns);
	rc_buf_printf(out, "/%s", k->resource);
	if (name)
		rc_buf_printf(out, "/%s", name);
}

/* ---- the order of the Go types ---- */

/* clang-format off */
static const char *const meta_order[] = {
	"name", "generateName", "namespace", "selfLink", "uid",
	"resourceVersion", "generation", "creationTimestamp",
	"deletionTimestamp", "deletionGracePeriodSeconds", "labels",
	"annotations", "ownerReferences", "finalizers", "clusterName",
	"managedFields", NULL};

static const char *const pod_spec_order[] = {
	"volumes", "initContainers", "containers", "ephemeralContainers",
	"restartPolicy", "terminationGracePeriodSeconds",
	"activeDeadlineSeconds", "dnsPolicy", "nodeSelector",
	"serviceAccountName", "serviceAccount", "automountServiceAccountToken",
	"nodeName", "hostNetwork", "hostPID", "hostIPC",
	"shareProcessNamespace", "securityContext", "imagePullSecrets",
	"hostname", "subdomain", "affinity", "schedulerName", "tolerations",
	"hostAliases", "priorityClassName", "priority", "dnsConfig",
	"readinessGates", "runtimeClassName", "enableServiceLinks",
	"preemptionPolicy", "overhead", "topologySpreadConstraints", NULL};

static const char *const container_order[] = {
	"name", "image", "command", "args", "workingDir", "ports", "envFrom",
	"env", "resources", "volumeMounts", "volumeDevices", "livenessProbe",
	"readinessProbe", "startupProbe", "lifecycle",
	"terminationMessagePath", "terminationMessagePolicy",
	"imagePullPolicy", "securityContext", "stdin", "stdinOnce", "tty",
	NULL};

static const char *const probe_order[] = {
	"exec", "httpGet", "tcpSocket", "initialDelaySeconds",
	"timeoutSeconds", "periodSeconds", "successThreshold",
	"failureThreshold", NULL};

static const char *const deploy_spec_order[] = {
	"replicas", "selector", "template", "strategy", "minReadySeconds",
	"revisionHistoryLimit", "paused", "progressDeadlineSeconds", NULL};

static const char *const deploy_status_order[] = {
	"observedGeneration", "replicas", "updatedReplicas", "readyReplicas",
	"availableReplicas", "unavailableReplicas", "conditions",
	"collisionCount", NULL};

static const char *const deploy_cond_order[] = {
	"type", "status", "lastUpdateTime", "lastTransitionTime", "reason",
	"message", NULL};

static const char *const job_spec_order[] = {
	"parallelism", "completions", "activeDeadlineSeconds", "backoffLimit",
	"selector", "manualSelector", "template", "ttlSecondsAfterFinished",
	NULL};

static const char *const job_status_order[] = {
	"conditions", "startTime", "completionTime", "active", "succeeded",
	"failed", NULL};

static const char *const job_cond_order[] = {
	"type", "status", "lastProbeTime", "lastTransitionTime", "reason",
	"message", NULL};

static const char *const svc_spec_order[] = {
	"ports", "selector", "clusterIP", "type", "externalIPs",
	"sessionAffinity", "loadBalancerIP", "loadBalancerSourceRanges",
	"externalName", "externalTrafficPolicy", "healthCheckNodePort",
	"publishNotReadyAddresses", "sessionAffinityConfig", "ipFamily",
	"topologyKeys", NULL};

static const char *const svc_port_order[] = {
	"name", "protocol", "appProtocol", "port", "targetPort", "nodePort",
	NULL};

static const char *const cport_order[] = {
	"name", "hostPort", "containerPort", "protocol", "hostIP", NULL};

static const char *const lease_spec_order[] = {
	"holderIdentity", "leaseDurationSeconds", "acquireTime", "renewTime",
	"leaseTransitions", NULL};

static const char *const secret_order[] = {
	"kind", "apiVersion", "metadata", "immutable", "data", "stringData",
	"type", NULL};

static const char *const top_order[] = {
	"kind", "apiVersion", "metadata", "spec", "data", "binaryData",
	"status", NULL};

static const char *const pod_status_order[] = {
	"phase", "conditions", "message", "reason", "hostIP", "podIP",
	"podIPs", "startTime", "initContainerStatuses", "containerStatuses",
	"qosClass", NULL};
/* clang-format on */

static void reorder(json_t *o, const char *const *order)
{
	json_t *copy, *v;
	const char *key;

	if (!json_is_object(o))
		return;
	copy = json_object();
	for (size_t i = 0; order[i]; i++) {
		v = json_object_get(o, order[i]);
		if (v)
			json_object_set(copy, order[i], v);
	}
	json_object_foreach(o, key, v) {
		if (!json_object_get(copy, key))
			json_object_set(copy, key, v);
	}
	json_object_clear(o);
	json_object_update(o, copy);
	json_decref(copy);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void sort_map(json_t *o)
{
	const char **keys;
	json_t *copy, *v;
	const char *key;
	size_t n = 0;

	if (!json_is_object(o) || json_object_size(o) < 2)
		return;
	keys = rc_calloc(json_object_size(o), sizeof(*keys));
	json_object_foreach(o, key, v) keys[n++] = key;
	qsort(keys, n, sizeof(*keys), str_cmp);
	copy = json_object();
	for (size_t i = 0; i < n; i++)
		json_object_set(copy, keys[i], json_object_get(o, keys[i]));
	free(keys);
	json_object_clear(o);
	json_object_update(o, copy);
	json_decref(copy);
}

void kf_order_meta(json_t *meta)
{
	reorder(meta, meta_order);
}

static void canon_meta(json_t *meta)
{
	reorder(meta, meta_order);
	sort_map(json_object_get(meta, "labels"));
	sort_map(json_object_get(meta, "annotations"));
}

static void canon_selector(json_t *sel)
{
	reorder(sel,
		(const char *const[]){"matchLabels", "matchExpressions", NULL});
	sort_map(json_object_get(sel, "matchLabels"));
}

static void canon_containers(json_t *list)
{
	json_t *c, *p;
	size_t i, j;

	json_array_foreach(list, i, c) {
		reorder(c, container_order);
		json_array_foreach(json_object_get(c, "ports"), j, p)
		    reorder(p, cport_order);
		json_array_foreach(json_object_get(c, "env"), j, p)
		    reorder(p, (const char *const[]){"name", "value",
						     "valueFrom", NULL});
		sort_map(kf_jget(c, "resources.limits"));
		sort_map(kf_jget(c, "resources.requests"));
		reorder(json_object_get(c, "resources"),
			(const char *const[]){"limits", "requests", NULL});
		reorder(json_object_get(c, "livenessProbe"), probe_order);
		reorder(json_object_get(c, "readinessProbe"), probe_order);
		reorder(json_object_get(c, "startupProbe"), probe_order);
	}
}

static void canon_pod_spec(json_t *spec)
{
	reorder(spec, pod_spec_order);
	sort_map(json_object_get(spec, "nodeSelector"));
	canon_containers(json_object_get(spec, "initContainers"));
	canon_containers(json_object_get(spec, "containers"));
}

static void canon_template(json_t *tpl)
{
	reorder(tpl, (const char *const[]){"metadata", "spec", NULL});
	canon_meta(json_object_get(tpl, "metadata"));
	canon_pod_spec(json_object_get(tpl, "spec"));
}

static void canon_conditions(json_t *list, const char *const *order)
{
	json_t *c;
	size_t i;

	json_array_foreach(list, i, c) reorder(c, order);
}

void kf_canonical_order(const struct kf_kind *k, json_t *obj)
{
	json_t *spec = json_object_get(obj, "spec");
	json_t *status = json_object_get(obj, "status");

	reorder(obj, !strcmp(k->kind, "Secret") ? secret_order : top_order);
	canon_meta(json_object_get(obj, "metadata"));
	sort_map(json_object_get(obj, "data"));
	sort_map(json_object_get(obj, "binaryData"));
	if (!strcmp(k->kind, "Deployment")) {
		json_t *st = json_object_get(spec, "strategy");

		reorder(spec, deploy_spec_order);
		canon_selector(json_object_get(spec, "selector"));
		canon_template(json_object_get(spec, "template"));
		reorder(st,
			(const char *const[]){"type", "rollingUpdate", NULL});
		reorder(
		    json_object_get(st, "rollingUpdate"),
		    (const char *const[]){"maxUnavailable", "maxSurge", NULL});
		reorder(status, deploy_status_order);
		canon_conditions(json_object_get(status, "conditions"),
				 deploy_cond_order);
	} else if (!strcmp(k->kind, "Job")) {
		reorder(spec, job_spec_order);
		canon_selector(json_object_get(spec, "selector"));
		canon_template(json_object_get(spec, "template"));
		reorder(status, job_status_order);
		canon_conditions(json_object_get(status, "conditions"),
				 job_cond_order);
	} else if (!strcmp(k->kind, "Service")) {
		json_t *p;
		size_t i;

		reorder(spec, svc_spec_order);
		sort_map(json_object_get(spec, "selector"));
		json_array_foreach(json_object_get(spec, "ports"), i, p)
		    reorder(p, svc_port_order);
	} else if (!strcmp(k->kind, "Lease")) {
		reorder(spec, lease_spec_order);
	} else if (!strcmp(k->kind, "Pod")) {
		canon_pod_spec(spec);
		reorder(status, pod_status_order);
	}
}

/* ---- decode and create ---- */

void kf_decode_fixups(const struct kf_kind *k, json_t *obj)
{
	json_t *sd = json_object_get(obj, "stringData"), *v;
	const char *key;

	kf_strip_nulls(obj);
	if (strcmp(k->kind, "Secret") || !json_is_object(sd))
		return;
	json_object_foreach(sd, key, v) {
		rc_buf b = RC_BUF_INIT;
		const char *s = json_string_value(v);

		if (!s)
			continue;
		rc_codec_base64_encode(&b, s, strlen(s), 0);
		json_object_set_new(kf_jmkobj(obj, "data"), key,
				    json_string(b.ptr));
		rc_buf_release(&b);
	}
	json_object_del(obj, "stringData");
}

static void allocate_service(struct kf_server *srv, json_t *obj)
{
	json_t *spec = kf_jmkobj(obj, "spec"), *p;
	const char *type = kf_jstr(spec, "type");
	const char *ip = kf_jstr(spec, "clusterIP");
	size_t i;

	if (type && !strcmp(type, "ExternalName"))
		return;
	if (!ip || !*ip) {
		/* 10.96.0.0/12, after 10.96.0.1 (the kubernetes service) */
		uint32_t n = srv->next_ip++;
		char buf[32];

		snprintf(buf, sizeof(buf), "10.%u.%u.%u", 96 + (n >> 16 & 15),
			 n >> 8 & 255, n & 255);
		json_object_set_new(spec, "clusterIP", json_string(buf));
	}
	if (type &&
	    (!strcmp(type, "NodePort") || !strcmp(type, "LoadBalancer")))
		json_array_foreach(json_object_get(spec, "ports"), i,
				   p) if (!json_object_get(p, "nodePort"))
		    json_object_set_new(
			p, "nodePort",
			json_integer(30000 + srv->next_node_port++ % 2768));
}

static void job_selector(json_t *obj, const char *uid)
{
	json_t *spec = kf_jmkobj(obj, "spec");
	json_t *labels;

	if (json_is_true(json_object_get(spec, "manualSelector")))
		return;
	json_object_set_new(
	    spec, "selector",
	    json_pack("{s:{s:s}}", "matchLabels", "controller-uid", uid));
	labels = kf_jmkobj(spec, "template.metadata.labels");
	json_object_set_new(labels, "controller-uid", json_string(uid));
	json_object_set_new(labels, "job-name",
			    json_string(kf_jstr(obj, "metadata.name")));
}

void kf_prepare_create(struct kf_server *srv, const struct kf_kind *k,
		       json_t *obj)
{
	json_t *meta = kf_jmkobj(obj, "metadata");
	char uid[37], now[32];
	rc_buf link = RC_BUF_INIT;

	kf_uuid(uid);
	kf_time_now(now);
	kf_self_link(&link, k, kf_jstr(obj, "metadata.namespace"),
		     kf_jstr(obj, "metadata.name"));
	json_object_set_new(meta, "selfLink", json_string(link.ptr));
	json_object_set_new(meta, "uid", json_string(uid));
	json_object_set_new(meta, "creationTimestamp", json_string(now));
	json_object_del(meta, "deletionTimestamp");
	json_object_del(meta, "deletionGracePeriodSeconds");
	json_object_del(meta, "generation");
	if (k->generation)
		json_object_set_new(meta, "generation", json_integer(1));
	rc_buf_release(&link);

	if (!strcmp(k->kind, "Deployment") || !strcmp(k->kind, "Job")) {
		json_object_set_new(obj, "status", json_object());
	} else if (!strcmp(k->kind, "Service") || !strcmp(k->kind, "Ingress")) {
		json_object_set_new(obj, "status",
				    json_pack("{s:{}}", "loadBalancer"));
	} else if (!strcmp(k->kind, "Namespace")) {
		json_t *fin =
		    json_object_get(kf_jmkobj(obj, "spec"), "finalizers");
		bool has = false;
		json_t *f;
		size_t i;

		json_object_set_new(obj, "status",
				    json_pack("{s:s}", "phase", "Active"));
		json_array_foreach(
		    fin, i, f) if (json_string_value(f) &&
				   !strcmp(json_string_value(f), "kubernetes"))
		    has = true;
		if (!json_is_array(fin)) {
			fin = json_array();
			json_object_set_new(json_object_get(obj, "spec"),
					    "finalizers", fin);
		}
		if (!has)
			json_array_append_new(fin, json_string("kubernetes"));
	} else if (!strcmp(k->kind, "Widget")) {
		json_object_del(obj, "status");
	}
	if (!strcmp(k->kind, "Service"))
		allocate_service(srv, obj);
	if (!strcmp(k->kind, "Job"))
		job_selector(obj, uid);
}
