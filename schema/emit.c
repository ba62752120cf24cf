#include "reconciler/base/common.h"
#include "schema/emit.h"
#include "schema/secrets.h"

#include <yaml.h>

json_t *rc_node_to_json(const rc_node *n)
{
	json_t *o;
	size_t i;

	if (!n)
		return json_null();
	switch (n->kind) {
	case RC_NODE_MAP:
		o = json_object();
		for (i = 0; i < n->n; i++)
			json_object_set_new(o, n->keys[i]->str,
					    rc_node_to_json(n->vals[i]));
		return o;
	case RC_NODE_SEQ:
		o = json_array();
		for (i = 0; i < n->n; i++)
			json_array_append_new(o, rc_node_to_json(n->vals[i]));
		return o;
	default:
		break;
	}
	switch (rc_node_scalar_type(n)) {
	case RC_SCALAR_NULL:
		return json_null();
	case RC_SCALAR_BOOL:
		return json_boolean(tolower((unsigned char)n->str[0]) == 't');
	case RC_SCALAR_INT: {
		long long v = strtoll(n->str, NULL, 0);

		return json_integer(v);
	}
	case RC_SCALAR_FLOAT: {
		double d = strtod(n->str, NULL);

		if (d != d || d > 1e308 || d < -1e308)
			return json_string(n->str);
		return json_real(d);
	}
	default:
		return json_stringn(n->str, n->len);
	}
}

static json_t *argv_json(const rc_argv *a)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < a->n; i++)
		json_array_append_new(arr, json_string(a->v[i]));
	return arr;
}

/* A secret's reference as written: the name, the path, the ARN, or an
 * encrypted value's armored text (never a value). */
static json_t *secret_ref_json(const rc_secret *s)
{
	return json_string(s->kind == RC_SECRET_AGE ? s->ciphertext : s->ref);
}

static json_t *kv_json(const rc_kvlist *l)
{
	json_t *o = json_object();

	for (size_t i = 0; i < l->n; i++)
		json_object_set_new(o, l->items[i].key,
				    json_string(l->items[i].value));
	return o;
}

static void set_str(json_t *o, const char *k, const char *v)
{
	if (v)
		json_object_set_new(o, k, json_string(v));
}

static json_t *duration_json(long secs)
{
	char b[32];

	rc_duration_format(secs, b, sizeof(b));
	return json_string(b);
}

json_t *rc_target_to_json(const rc_target *t)
{
	json_t *o = json_object();

	json_object_set_new(o, "driver", json_string(rc_driver_name(t->driver)));
	set_str(o, "context", t->context);
	set_str(o, "namespace", t->namespace);
	set_str(o, "app", t->app);
	set_str(o, "region", t->region);
	set_str(o, "stack", t->stack);
	set_str(o, "team", t->team);
	set_str(o, "pipeline", t->pipeline);
	set_str(o, "stage", t->stage);
	set_str(o, "cluster", t->cluster);
	set_str(o, "launch_type", t->launch_type);
	if (t->subnets.n)
		json_object_set_new(o, "subnets", argv_json(&t->subnets));
	if (t->security_groups.n)
		json_object_set_new(o, "security_groups",
				    argv_json(&t->security_groups));
	if (t->assign_public_ip >= 0)
		json_object_set_new(o, "assign_public_ip",
				    json_boolean(t->assign_public_ip));
	set_str(o, "execution_role_arn", t->execution_role_arn);
	if (t->maintenance >= 0)
		json_object_set_new(o, "maintenance",
				    json_boolean(t->maintenance));
	if (t->rate_reserve >= 0)
		json_object_set_new(o, "rate_reserve",
				    json_integer(t->rate_reserve));
	set_str(o, "kubeconfig", t->kubeconfig);
	if (t->wait_timeout > 0) {
		char d[32];

		rc_duration_format(t->wait_timeout, d, sizeof(d));
		json_object_set_new(o, "wait_timeout", json_string(d));
	}
	if (t->drift_interval > 0) {
		char d[32];

		rc_duration_format(t->drift_interval, d, sizeof(d));
		json_object_set_new(o, "drift_interval", json_string(d));
	}
	if (t->qps > 0)
		json_object_set_new(o, "qps", json_integer(t->qps));
	if (t->burst > 0)
		json_object_set_new(o, "burst", json_integer(t->burst));
	return o;
}

static json_t *service_json(const rc_service *s)
{
	json_t *o = json_object();
	char b[32];

	set_str(o, "image", s->image);
	if (s->command.n)
		json_object_set_new(o, "command", argv_json(&s->command));
	if (s->args.n)
		json_object_set_new(o, "args", argv_json(&s->args));
	json_object_set_new(o, "replicas", json_integer(s->replicas));
	set_str(o, "size", s->size);
	if (s->cpu_millis) {
		snprintf(b, sizeof(b), "%ldm", s->cpu_millis);
		json_object_set_new(o, "cpu", json_string(b));
	}
	if (s->memory) {
		rc_memory_format(s->memory, b, sizeof(b));
		json_object_set_new(o, "memory", json_string(b));
	}
	if (s->port)
		json_object_set_new(o, "port", json_integer(s->port));
	if (s->env.n)
		json_object_set_new(o, "env", kv_json(&s->env));
	if (s->health.kind != RC_HEALTH_NONE) {
		json_t *h = json_object();

		if (s->health.kind == RC_HEALTH_HTTP)
			set_str(h, "http", s->health.http_path);
		else if (s->health.kind == RC_HEALTH_TCP)
			json_object_set_new(h, "tcp", json_true());
		else
			json_object_set_new(h, "command",
					    argv_json(&s->health.command));
		json_object_set_new(h, "interval",
				    duration_json(s->health.interval));
		json_object_set_new(h, "timeout",
				    duration_json(s->health.timeout));
		json_object_set_new(h, "retries",
				    json_integer(s->health.retries));
		json_object_set_new(h, "grace", duration_json(s->health.grace));
		json_object_set_new(o, "health", h);
	}
	if (s->native)
		json_object_set_new(o, "native", rc_node_to_json(s->native));
	set_str(o, "workdir", s->workdir);
	set_str(o, "process_type", s->process_type);
	return o;
}

static json_t *hooks_json(const rc_hook *h, size_t n)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < n; i++) {
		json_t *o = json_object();

		set_str(o, "name", h[i].name);
		json_object_set_new(o, "run", argv_json(&h[i].run));
		json_object_set_new(o, "where",
				    json_string(h[i].local ? "local" : "target"));
		set_str(o, "service", h[i].service);
		json_object_set_new(o, "timeout", duration_json(h[i].timeout));
		json_object_set_new(o, "irreversible",
				    json_boolean(h[i].irreversible));
		if (h[i].env.n)
			json_object_set_new(o, "env", kv_json(&h[i].env));
		json_array_append_new(arr, o);
	}
	return arr;
}

/* policy.verify, its paths as written (repository-relative). */
static json_t *verify_json(const rc_verify *v)
{
	json_t *o = json_object();

	if (v->allowed_signers)
		json_object_set_new(o, "ssh",
				    json_pack("{ss}", "allowed_signers",
					      v->allowed_signers));
	if (v->keyring)
		json_object_set_new(o, "openpgp",
				    json_pack("{ss}", "keyring", v->keyring));
	json_object_set_new(o, "require",
			    json_string(v->require == RC_VERIFY_ANY ? "any"
								    : "signed"));
	return o;
}

json_t *rc_env_to_json(const rc_env *e)
{
	json_t *o = json_object(), *m;
	size_t i;

	json_object_set_new(o, "name", json_string(e->name));
	if (e->generator) {
		json_t *g = json_object();

		json_object_set_new(g, "entry", json_string(e->generator));
		json_object_set_new(g, "item", kv_json(&e->item));
		if (e->ttl)
			json_object_set_new(g, "ttl", duration_json(e->ttl));
		json_object_set_new(o, "generated_by", g);
	}
	set_str(o, "file", e->file);
	json_object_set_new(o, "target", rc_target_to_json(&e->target));
	m = json_object();
	set_str(m, "branch", e->policy.branch);
	json_object_set_new(m, "apply",
			    json_string(e->policy.apply == RC_APPLY_MANUAL
						? "manual"
						: "auto"));
	json_object_set_new(m, "prune", json_boolean(e->policy.prune));
	json_object_set_new(m, "drift",
			    json_string(e->policy.drift == RC_DRIFT_HEAL
						? "heal"
						: "report"));
	if (e->policy.force_conflicts)
		json_object_set_new(m, "force_conflicts", json_true());
	if (e->policy.allow_replace)
		json_object_set_new(m, "allow_replace", json_true());
	if (e->policy.adopt)
		json_object_set_new(m, "adopt", json_true());
	if (e->policy.verify.require)
		json_object_set_new(m, "verify", verify_json(&e->policy.verify));
	json_object_set_new(o, "policy", m);
	m = json_array();
	for (i = 0; i < e->ndepends_on; i++)
		json_array_append_new(m, json_string(e->depends_on[i]));
	json_object_set_new(o, "depends_on", m);
	m = json_object();
	for (i = 0; i < e->nservices; i++)
		json_object_set_new(m, e->services[i].name,
				    service_json(&e->services[i]));
	json_object_set_new(o, "services", m);
	json_object_set_new(o, "config", kv_json(&e->config));
	m = json_object();
	for (i = 0; i < e->nsecrets; i++) {
		json_t *r = json_object();

		json_object_set_new(r, rc_secret_kind_name(e->secrets[i].kind),
				    secret_ref_json(&e->secrets[i]));
		json_object_set_new(m, e->secrets[i].name, r);
	}
	json_object_set_new(o, "secrets", m);
	m = json_object();
	for (i = 0; i < e->naddons; i++) {
		json_t *a = json_object();

		set_str(a, "kind", e->addons[i].kind);
		set_str(a, "plan", e->addons[i].plan);
		set_str(a, "as", e->addons[i].as);
		if (e->addons[i].config.n)
			json_object_set_new(a, "config",
					    kv_json(&e->addons[i].config));
		json_object_set_new(m, e->addons[i].name, a);
	}
	json_object_set_new(o, "addons", m);
	m = json_object();
	json_object_set_new(m, "pre_apply",
			    hooks_json(e->pre_apply, e->npre_apply));
	json_object_set_new(m, "post_apply",
			    hooks_json(e->post_apply, e->npost_apply));
	json_object_set_new(m, "on_rollback",
			    hooks_json(e->on_rollback, e->non_rollback));
	json_object_set_new(o, "hooks", m);
	m = json_array();
	for (i = 0; i < e->nresources; i++) {
		json_t *r = json_object();

		set_str(r, "source", e->resources[i].source);
		json_object_set_new(r, "manifest",
				    rc_node_to_json(e->resources[i].manifest));
		json_array_append_new(m, r);
	}
	json_object_set_new(o, "resources", m);
	if (e->nignore) {
		m = json_array();
		for (i = 0; i < e->nignore; i++) {
			json_t *r = json_object();

			json_object_set_new(r, "resource",
					    json_string(e->ignore[i].resource));
			json_object_set_new(r, "paths",
					    argv_json(&e->ignore[i].paths));
			json_array_append_new(m, r);
		}
		json_object_set_new(o, "ignore", m);
	}
	return o;
}

/* The notify: list, URLs as their references. */
static json_t *notify_json(const rc_config *cfg)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < cfg->nnotify; i++) {
		const rc_notify_target *t = &cfg->notify[i];
		json_t *o = json_object(), *ev = json_array(), *url;
		rc_argv envs = {t->environments, t->nenvironments};

		set_str(o, "name", t->name);
		url = json_pack("{s:{s:o}}", "url",
				rc_secret_kind_name(t->url.kind),
				secret_ref_json(&t->url));
		json_object_set_new(o, t->kind == RC_NOTIFY_SLACK ? "slack"
								  : "webhook",
				    url);
		for (int k = 0; k < RC_NOTIFY_NEVENTS; k++)
			if (t->events & (1u << k))
				json_array_append_new(
					ev, json_string(rc_notify_event_name(
						    (rc_notify_event_kind)k)));
		json_object_set_new(o, "events", ev);
		if (t->nenvironments)
			json_object_set_new(o, "environments",
					    argv_json(&envs));
		json_array_append_new(arr, o);
	}
	return arr;
}

json_t *rc_config_to_json(const rc_config *cfg, const char *const *only,
			  size_t n)
{
	json_t *o = json_object(), *arr = json_array();
	size_t i, j;

	json_object_set_new(o, "format_version", json_integer(1));
	set_str(o, "project", cfg->project);
	for (i = 0; i < cfg->nenvs; i++) {
		const rc_env *e = &cfg->envs[i];
		bool keep = n == 0;

		for (j = 0; j < n && !keep; j++)
			keep = !strcmp(only[j], e->name) ||
			       (e->generator && !strcmp(only[j], e->generator));
		if (keep)
			json_array_append_new(arr, rc_env_to_json(e));
	}
	json_object_set_new(o, "environments", arr);
	if (cfg->nnotify)
		json_object_set_new(o, "notify", notify_json(cfg));
	return o;
}

/* ---- YAML ---- */

static int write_handler(void *data, unsigned char *buffer, size_t size)
{
	return rc_buf_put((rc_buf *)data, buffer, size) == 0;
}

/* Whether a string must be quoted to stay a string under YAML 1.1 and
 * 1.2 readers alike. */
static bool needs_quotes(const char *s)
{
	static const char *const words[] = {
		"y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
		"on", "On", "ON", "off", "Off", "OFF", "true", "True", "TRUE",
		"false", "False", "FALSE", "null", "Null", "NULL", "~"};
	rc_node tmp;

	if (!*s)
		return true;
	for (size_t i = 0; i < RC_ARRAY_SIZE(words); i++)
		if (!strcmp(s, words[i]))
			return true;
	memset(&tmp, 0, sizeof(tmp));
	tmp.kind = RC_NODE_SCALAR;
	tmp.str = (char *)(uintptr_t)s;
	return rc_node_scalar_type(&tmp) != RC_SCALAR_STR;
}

static int emit_value(yaml_emitter_t *em, const json_t *v)
{
	yaml_event_t ev;
	char num[64];
	const char *key;
	json_t *val;
	size_t i;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
						    YAML_BLOCK_MAPPING_STYLE);
		if (!yaml_emitter_emit(em, &ev))
			return -1;
		json_object_foreach((json_t *)(uintptr_t)v, key, val) {
			yaml_scalar_event_initialize(
				&ev, NULL, NULL, (yaml_char_t *)(uintptr_t)key,
				(int)strlen(key), 1, 1,
				needs_quotes(key) ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
						  : YAML_ANY_SCALAR_STYLE);
			if (!yaml_emitter_emit(em, &ev) || emit_value(em, val))
				return -1;
		}
		yaml_mapping_end_event_initialize(&ev);
		return yaml_emitter_emit(em, &ev) ? 0 : -1;
	case JSON_ARRAY:
		yaml_sequence_start_event_initialize(
			&ev, NULL, NULL, 1,
			json_array_size(v) ? YAML_BLOCK_SEQUENCE_STYLE
					   : YAML_FLOW_SEQUENCE_STYLE);
		if (!yaml_emitter_emit(em, &ev))
			return -1;
		for (i = 0; i < json_array_size(v); i++)
			if (emit_value(em, json_array_get(v, i)))
				return -1;
		yaml_sequence_end_event_initialize(&ev);
		return yaml_emitter_emit(em, &ev) ? 0 : -1;
	case JSON_STRING: {
		const char *s = json_string_value(v);

		yaml_scalar_event_initialize(
			&ev, NULL, NULL, (yaml_char_t *)(uintptr_t)s,
			(int)json_string_length(v), 1, 1,
			needs_quotes(s)	   ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
			: strchr(s, '\n') ? YAML_LITERAL_SCALAR_STYLE
					   : YAML_ANY_SCALAR_STYLE);
		return yaml_emitter_emit(em, &ev) ? 0 : -1;
	}
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
			 json_integer_value(v));
		break;
	case JSON_REAL:
		snprintf(num, sizeof(num), "%.17g", json_real_value(v));
		break;
	case JSON_TRUE:
		snprintf(num, sizeof(num), "true");
		break;
	case JSON_FALSE:
		snprintf(num, sizeof(num), "false");
		break;
	default:
		snprintf(num, sizeof(num), "null");
		break;
	}
	yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)num,
				     (int)strlen(num), 1, 1,
				     YAML_PLAIN_SCALAR_STYLE);
	return yaml_emitter_emit(em, &ev) ? 0 : -1;
}

int rc_json_to_yaml(const json_t *v, rc_buf *out)
{
	yaml_emitter_t em;
	yaml_event_t ev;
	int rc = -1;

	if (!yaml_emitter_initialize(&em))
		return -1;
	yaml_emitter_set_output(&em, write_handler, out);
	yaml_emitter_set_unicode(&em, 1);
	yaml_emitter_set_width(&em, 100);
	yaml_emitter_set_indent(&em, 2);
	yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
	if (!yaml_emitter_emit(&em, &ev))
		goto done;
	yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
	if (!yaml_emitter_emit(&em, &ev) || emit_value(&em, v))
		goto done;
	yaml_document_end_event_initialize(&ev, 1);
	if (!yaml_emitter_emit(&em, &ev))
		goto done;
	yaml_stream_end_event_initialize(&ev);
	if (!yaml_emitter_emit(&em, &ev))
		goto done;
	rc = 0;
done:
	yaml_emitter_delete(&em);
	return rc;
}
