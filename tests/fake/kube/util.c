/* Small helpers of the fake API server: Status bodies, times, names,
 * YAML and JSON paths. */
#include "tests/fake/kube/kube.h"

#include <uuid/uuid.h>
#include <yaml.h>

void kf_go_quote(rc_buf *out, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	rc_buf_putc(out, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			rc_buf_puts(out, "\\\"");
			break;
		case '\\':
			rc_buf_puts(out, "\\\\");
			break;
		case '\n':
			rc_buf_puts(out, "\\n");
			break;
		case '\t':
			rc_buf_puts(out, "\\t");
			break;
		case '\r':
			rc_buf_puts(out, "\\r");
			break;
		default:
			if (*p < 0x20 || *p == 0x7f) {
				rc_buf_puts(out, "\\x");
				rc_buf_putc(out, hex[*p >> 4]);
				rc_buf_putc(out, hex[*p & 15]);
			} else {
				rc_buf_putc(out, (char)*p);
			}
		}
	}
	rc_buf_putc(out, '"');
}

void kf_time_now(char out[32])
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void kf_uuid(char out[37])
{
	uuid_t u;

	uuid_generate_random(u);
	uuid_unparse_lower(u, out);
}

uint64_t kf_random(struct kf_server *srv)
{
	/* xorshift64*, seeded in main */
	uint64_t x = srv->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	srv->rng = x;
	return x * 2685821657736338717ULL;
}

void kf_random_suffix(struct kf_server *srv, char *out, size_t n)
{
	/* the alphabet of k8s.io/apimachinery/pkg/util/rand: no vowels */
	static const char alpha[] = "bcdfghjklmnpqrstvwxz2456789";

	for (size_t i = 0; i < n; i++)
		out[i] = alpha[kf_random(srv) % (sizeof(alpha) - 1)];
	out[n] = '\0';
}

/* ---- YAML: the subset Kubernetes clients send (YAML 1.1 scalars) ---- */

static bool match_any(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(s, *list))
			return true;
	return false;
}

static json_t *yaml_scalar(const yaml_node_t *n)
{
	static const char *const nulls[] = {"",     "~",    "null",
					    "Null", "NULL", NULL};
	static const char *const trues[] = {"y",   "Y",    "yes",  "Yes",
					    "YES", "true", "True", "TRUE",
					    "on",  "On",   "ON",   NULL};
	static const char *const falses[] = {"n",   "N",     "no",    "No",
					     "NO",  "false", "False", "FALSE",
					     "off", "Off",   "OFF",   NULL};
	const char *s = (const char *)n->data.scalar.value;
	size_t len = n->data.scalar.length;
	const char *tag = (const char *)n->tag;
	char *end;

	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
	    (tag && !strcmp(tag, YAML_STR_TAG)) || strlen(s) != len)
		return json_stringn(s, len);
	if (match_any(s, nulls))
		return json_null();
	if (match_any(s, trues))
		return json_true();
	if (match_any(s, falses))
		return json_false();
	if (*s) {
		long long v;

		errno = 0;
		v = strtoll(s, &end, 0);
		if (!*end && !errno &&
		    (isdigit((unsigned char)s[0]) ||
		     ((s[0] == '-' || s[0] == '+') &&
		      isdigit((unsigned char)s[1]))))
			return json_integer(v);
		if (strspn(s, "0123456789.eE+-") == len &&
		    strchr(s, '.') != NULL) {
			double d = strtod(s, &end);

			if (!*end)
				return json_real(d);
		}
	}
	return json_stringn(s, len);
}

static json_t *yaml_node_json(yaml_document_t *doc, yaml_node_t *n, int depth)
{
	json_t *v;

	if (!n || depth > 100)
		return NULL;
	switch (n->type) {
	case YAML_SCALAR_NODE:
		return yaml_scalar(n);
	case YAML_SEQUENCE_NODE:
		v = json_array();
		for (yaml_node_item_t *i = n->data.sequence.items.start;
		     i < n->data.sequence.items.top; i++) {
			json_t *c = yaml_node_json(
			    doc, yaml_document_get_node(doc, *i), depth + 1);
			if (!c) {
				json_decref(v);
				return NULL;
			}
			json_array_append_new(v, c);
		}
		return v;
	case YAML_MAPPING_NODE:
		v = json_object();
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
		     p < n->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(doc, p->key);
			json_t *c;

			if (!k || k->type != YAML_SCALAR_NODE) {
				json_decref(v);
				return NULL;
			}
			c = yaml_node_json(
			    doc, yaml_document_get_node(doc, p->value),
			    depth + 1);
			if (!c) {
				json_decref(v);
				return NULL;
			}
			json_object_setn_new(v,
					     (const char *)k->data.scalar.value,
					     k->data.scalar.length, c);
		}
		return v;
	default:
		return NULL;
	}
}

json_t *kf_yaml_load(const char *text, size_t len, rc_buf *err)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	json_t *v = NULL;
	json_error_t jerr;

	v = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (v)
		return v;
	if (!yaml_parser_initialize(&parser)) {
		rc_buf_puts(err, "cannot start the YAML parser");
		return NULL;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		rc_buf_printf(
		    err, "error converting YAML to JSON: yaml: line %zu: %s",
		    parser.problem_mark.line + 1,
		    parser.problem ? parser.problem : "invalid");
		yaml_parser_delete(&parser);
		return NULL;
	}
	v = yaml_node_json(&doc, yaml_document_get_root_node(&doc), 0);
	if (!v)
		rc_buf_puts(
		    err, "error converting YAML to JSON: unsupported document");
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return v;
}

/* ---- Status bodies ---- */

json_t *kf_status(int code, const char *reason, const char *message,
		  json_t *details)
{
	json_t *s = json_object();

	json_object_set_new(s, "kind", json_string("Status"));
	json_object_set_new(s, "apiVersion", json_string("v1"));
	json_object_set_new(s, "metadata", json_object());
	json_object_set_new(s, "status", json_string("Failure"));
	json_object_set_new(s, "message", json_string(message));
	if (reason && *reason)
		json_object_set_new(s, "reason", json_string(reason));
	if (details)
		json_object_set_new(s, "details", details);
	json_object_set_new(s, "code", json_integer(code));
	return s;
}

json_t *kf_details(const char *name, const char *group, const char *kind)
{
	json_t *d = json_object();

	if (name && *name)
		json_object_set_new(d, "name", json_string(name));
	if (group && *group)
		json_object_set_new(d, "group", json_string(group));
	if (kind && *kind)
		json_object_set_new(d, "kind", json_string(kind));
	return d;
}

static json_t *resource_error(int code, const char *reason,
			      const struct kf_kind *k, const char *name,
			      const char *fmt)
{
	rc_buf qr = RC_BUF_INIT, msg = RC_BUF_INIT;
	json_t *s;

	kf_qualified_resource(&qr, k);
	/* fmt has two %s: the qualified resource and the quoted name */
	{
		rc_buf q = RC_BUF_INIT;

		kf_go_quote(&q, name);
		rc_buf_printf(&msg, fmt, qr.ptr, q.ptr);
		rc_buf_release(&q);
	}
	s = kf_status(code, reason, msg.ptr,
		      kf_details(name, k->group, k->resource));
	rc_buf_release(&qr);
	rc_buf_release(&msg);
	return s;
}

json_t *kf_err_not_found(const struct kf_kind *k, const char *name)
{
	return resource_error(404, "NotFound", k, name, "%s %s not found");
}

json_t *kf_err_exists(const struct kf_kind *k, const char *name)
{
	return resource_error(409, "AlreadyExists", k, name,
			      "%s %s already exists");
}

json_t *kf_err_conflict(const struct kf_kind *k, const char *name,
			const char *why)
{
	rc_buf fmt = RC_BUF_INIT;
	json_t *s;

	rc_buf_puts(&fmt, "Operation cannot be fulfilled on %s %s: ");
	/* why is literal text: double any % in it */
	for (const char *p = why; *p; p++) {
		if (*p == '%')
			rc_buf_putc(&fmt, '%');
		rc_buf_putc(&fmt, *p);
	}
	s = resource_error(409, "Conflict", k, name, fmt.ptr);
	rc_buf_release(&fmt);
	return s;
}

json_t *kf_err_bad_request(const char *fmt, ...)
{
	rc_buf msg = RC_BUF_INIT;
	va_list ap;
	json_t *s;

	va_start(ap, fmt);
	rc_buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	s = kf_status(400, "BadRequest", msg.ptr, NULL);
	rc_buf_release(&msg);
	return s;
}

json_t *kf_err_internal(const char *cause)
{
	rc_buf msg = RC_BUF_INIT;
	json_t *d = json_object(), *c = json_object(), *s;

	json_object_set_new(c, "message", json_string(cause));
	json_object_set_new(d, "causes", json_pack("[o]", c));
	rc_buf_printf(&msg, "Internal error occurred: %s", cause);
	s = kf_status(500, "InternalError", msg.ptr, d);
	rc_buf_release(&msg);
	return s;
}

json_t *kf_err_method(void)
{
	return kf_status(405, "MethodNotAllowed",
			 "the server does not allow this method on the "
			 "requested resource",
			 json_object());
}

json_t *kf_err_no_resource(void)
{
	return kf_status(404, "NotFound",
			 "the server could not find the requested resource",
			 json_object());
}

/* ---- JSON paths ---- */

json_t *kf_jget(json_t *obj, const char *path)
{
	char part[128];

	while (obj && *path) {
		size_t n = strcspn(path, ".");

		if (n >= sizeof(part) || !json_is_object(obj))
			return NULL;
		memcpy(part, path, n);
		part[n] = '\0';
		obj = json_object_get(obj, part);
		path += n;
		if (*path == '.')
			path++;
	}
	return obj;
}

const char *kf_jstr(json_t *obj, const char *path)
{
	return json_string_value(kf_jget(obj, path));
}

json_t *kf_jmkobj(json_t *obj, const char *path)
{
	char part[128];

	while (*path) {
		size_t n = strcspn(path, ".");
		json_t *c;

		if (n >= sizeof(part))
			abort();
		memcpy(part, path, n);
		part[n] = '\0';
		c = json_object_get(obj, part);
		if (!json_is_object(c)) {
			c = json_object();
			json_object_set_new(obj, part, c);
		}
		obj = c;
		path += n;
		if (*path == '.')
			path++;
	}
	return obj;
}

void kf_strip_nulls(json_t *v)
{
	const char *key;
	json_t *c;
	void *tmp;
	size_t i;

	if (json_is_object(v)) {
		json_object_foreach_safe(v, tmp, key, c) {
			if (json_is_null(c))
				json_object_del(v, key);
			else
				kf_strip_nulls(c);
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, c) kf_strip_nulls(c);
	}
}
