/*
 * The Heroku driver's mapping, with no network: the expansion of an
 * environment into resources, API objects into bodies, normalisation,
 * immutable fields, hook commands, netrc and URL checks. See
 * drivers/heroku_map.h.
 */
#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/codec.h"
#include "reconciler/base/error.h"
#include "schema/secrets.h"
#include "drivers/heroku_map.h"

static const char *get_str(const json_t *o, const char *key)
{
	return json_is_object(o) ? json_string_value(json_object_get(o, key))
				 : NULL;
}

/* o[key].name, or o[key] itself when it is a string. */
static const char *name_of(const json_t *o, const char *key)
{
	const json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;

	return json_is_string(v) ? json_string_value(v) : get_str(v, "name");
}

const char *rc_heroku_process_type(const rc_service *s)
{
	return s->process_type && *s->process_type ? s->process_type
						   : s->name;
}

bool rc_heroku_data_service(const char *service)
{
	static const char *const data[] = {
		"heroku-postgresql", "heroku-redis", "heroku-kafka",
		"heroku-key-value-store", "heroku-inference"};

	for (size_t i = 0; service && i < RC_ARRAY_SIZE(data); i++)
		if (!strcmp(service, data[i]))
			return true;
	return false;
}

char *rc_heroku_plan_tier(const char *plan)
{
	const char *dash = plan ? strrchr(plan, '-') : NULL;
	const char *p;

	if (!plan)
		return NULL;
	if (!dash || dash == plan || !dash[1])
		return rc_strdup(plan);
	for (p = dash + 1; *p; p++)
		if (!isdigit((unsigned char)*p))
			return rc_strdup(plan);
	return rc_strndup(plan, (size_t)(dash - plan));
}

char *rc_heroku_size_fold(const char *size)
{
	char *s = rc_strdup(size ? size : "");

	for (char *p = s; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return s;
}

/* ---------------------------------------------------------------- expand */

static rc_resource *add(rc_resource_set *out, const rc_env *env,
			const char *kind, const char *name, json_t *body,
			rc_loc loc)
{
	rc_resource *r = rc_resource_set_add(out, env->name, RC_HEROKU_DRIVER,
					     kind, name, body);

	r->loc = loc;
	return r;
}

static void dep(rc_resource *r, const rc_env *env, const char *kind,
		const char *name)
{
	rc_buf k = RC_BUF_INIT_MAX(1024);

	rc_buf_printf(&k, "%s/%s/%s", env->name, kind, name);
	rc_resource_add_dep(r, k.ptr);
	rc_buf_release(&k);
}

static int expand_config(const rc_env *env, const char *config_dir,
			 json_t **out)
{
	json_t *vars = json_object();
	size_t i;

	*out = NULL;
	for (i = 0; i < env->config.n; i++)
		json_object_set_new(vars, env->config.items[i].key,
				    json_string(env->config.items[i].value));
	for (i = 0; i < env->nsecrets; i++) {
		const rc_secret *s = &env->secrets[i];
		char *v = NULL;
		int rc = rc_secret_value(&v, s, config_dir);

		if (rc < 0) {
			json_decref(vars);
			rc_error_prefix("secret '%s' (%s:%d:%d)", s->name,
					s->loc.file ? s->loc.file : "?",
					s->loc.line, s->loc.col);
			return rc;
		}
		json_object_set_new(vars, s->name, rc_secret_json(s, v));
		explicit_bzero(v, strlen(v));
		free(v);
	}
	*out = json_pack("{s:o}", "vars", vars);
	return 0;
}

int rc_heroku_expand(const rc_env *env, const char *config_dir,
		     rc_resource_set *out)
{
	const rc_target *t = &env->target;
	size_t n0 = out->n, i, j;
	json_t *body, *form;
	rc_resource *app, *r;
	bool data = false;
	int rc;

	if (!t->app || !*t->app)
		return rc_error_set_at(RC_EINVALID, t->loc,
				       "environment '%s' has no target.app",
				       env->name);
	for (i = 0; i < env->naddons; i++)
		data = data || rc_heroku_data_service(env->addons[i].kind);

	body = json_pack("{s:s}", "name", t->app);
	if (t->region)
		json_object_set_new(body, "region", json_string(t->region));
	if (t->stack)
		json_object_set_new(body, "stack", json_string(t->stack));
	if (t->team)
		json_object_set_new(body, "team", json_string(t->team));
	if (t->maintenance >= 0)
		json_object_set_new(body, "maintenance",
				    json_boolean(t->maintenance > 0));
	app = add(out, env, RC_HEROKU_APP, t->app, body, t->loc);
	app->precious = data; /* deleting the app deletes its databases */

	if ((rc = expand_config(env, config_dir, &body)) < 0)
		goto fail;
	r = add(out, env, RC_HEROKU_CONFIG, t->app, body,
		env->config.n ? env->config.items[0].loc : env->loc);
	dep(r, env, RC_HEROKU_APP, t->app);

	for (i = 0; i < env->naddons; i++) {
		const rc_addon *a = &env->addons[i];
		char *tier = rc_heroku_plan_tier(a->plan);

		body = json_pack("{s:s}", "service", a->kind ? a->kind : "");
		if (a->plan) {
			json_object_set_new(body, "plan", json_string(a->plan));
			json_object_set_new(body, "tier", json_string(tier));
		}
		if (a->as)
			json_object_set_new(body, "as", json_string(a->as));
		free(tier);
		r = add(out, env, RC_HEROKU_ADDON, a->name, body, a->loc);
		r->precious = rc_heroku_data_service(a->kind);
		dep(r, env, RC_HEROKU_APP, t->app);
	}

	form = json_object();
	for (i = 0; i < env->nservices; i++) {
		const rc_service *s = &env->services[i];
		const char *pt = rc_heroku_process_type(s);
		json_t *p;

		if (json_object_get(form, pt)) {
			json_decref(form);
			rc = rc_error_set_at(RC_EINVALID, s->loc,
					     "service '%s' has the process type "
					     "'%s' of another service (set "
					     "heroku.process_type)",
					     s->name, pt);
			goto fail;
		}
		p = json_pack("{s:i}", "quantity", s->replicas);
		if (s->size) {
			char *z = rc_heroku_size_fold(s->size);

			json_object_set_new(p, "size", json_string(z));
			free(z);
		}
		if (s->image)
			json_object_set_new(p, "image", json_string(s->image));
		json_object_set_new(form, pt, p);
	}
	if (json_object_size(form)) {
		r = add(out, env, RC_HEROKU_FORMATION, t->app, form,
			env->services[0].loc);
		dep(r, env, RC_HEROKU_APP, t->app);
		dep(r, env, RC_HEROKU_CONFIG, t->app);
		for (j = 0; j < env->naddons; j++)
			dep(r, env, RC_HEROKU_ADDON, env->addons[j].name);
	} else {
		json_decref(form);
	}

	if (t->pipeline) {
		body = json_pack("{s:s, s:s}", "pipeline", t->pipeline, "stage",
				 t->stage ? t->stage : "development");
		r = add(out, env, RC_HEROKU_COUPLING, t->app, body, t->loc);
		dep(r, env, RC_HEROKU_APP, t->app);
	}
	return 0;
fail:
	rc_resource_set_truncate(out, n0);
	return rc;
}

/* ------------------------------------------------------------ API bodies */

json_t *rc_heroku_app_body(const json_t *app, bool with_maintenance)
{
	const char *name = get_str(app, "name");
	const char *region = name_of(app, "region");
	const char *stack = name_of(app, "build_stack");
	const char *team = name_of(app, "team");
	json_t *b;

	if (!name)
		return NULL;
	if (!stack)
		stack = name_of(app, "stack");
	b = json_pack("{s:s}", "name", name);
	if (region)
		json_object_set_new(b, "region", json_string(region));
	if (stack)
		json_object_set_new(b, "stack", json_string(stack));
	if (team)
		json_object_set_new(b, "team", json_string(team));
	if (with_maintenance)
		json_object_set_new(
			b, "maintenance",
			json_boolean(json_is_true(
				json_object_get(app, "maintenance"))));
	return b;
}

json_t *rc_heroku_addon_body(const json_t *addon)
{
	const char *service = name_of(addon, "addon_service");
	const char *plan = name_of(addon, "plan");
	const json_t *cv = json_object_get(addon, "config_vars");
	const char *colon, *var = json_string_value(json_array_get(cv, 0));
	char *tier;
	json_t *b;

	if (!service || !plan)
		return NULL;
	/* plan names are "<service>:<plan>" */
	colon = strchr(plan, ':');
	if (colon)
		plan = colon + 1;
	tier = rc_heroku_plan_tier(plan);
	b = json_pack("{s:s, s:s, s:s}", "service", service, "plan", plan,
		      "tier", tier);
	free(tier);
	/* the attachment name: DATABASE for DATABASE_URL */
	if (var) {
		size_t n = strlen(var);

		if (n > 4 && !strcmp(var + n - 4, "_URL"))
			n -= 4;
		json_object_set_new(b, "as", json_stringn(var, n));
	}
	return b;
}

json_t *rc_heroku_formation_body(const json_t *list, const json_t *images)
{
	json_t *b = json_object();
	const json_t *f;
	size_t i;

	json_array_foreach(list, i, f) {
		const char *type = get_str(f, "type");
		const char *size = name_of(f, "dyno_size");
		const json_t *di = json_object_get(f, "docker_image");
		const char *id = json_is_string(di) ? json_string_value(di)
						    : get_str(di, "id");
		json_t *p;

		if (!type)
			continue;
		if (!size)
			size = get_str(f, "size");
		p = json_pack("{s:I}", "quantity",
			      json_integer_value(json_object_get(f, "quantity")));
		if (size) {
			char *z = rc_heroku_size_fold(size);

			json_object_set_new(p, "size", json_string(z));
			free(z);
		}
		if (id && *id) {
			const json_t *im = json_object_get(images, type);
			const char *rid = get_str(im, "id");
			const char *ref = get_str(im, "ref");

			json_object_set_new(p, "image",
					    json_string(rid && ref &&
								!strcmp(rid, id)
							? ref
							: id));
		}
		json_object_set_new(b, type, p);
	}
	return b;
}

json_t *rc_heroku_config_body(const json_t *vars, const json_t *want,
			      const json_t *desired_vars,
			      const json_t *secrets)
{
	json_t *out = json_object();
	const char *k;
	const json_t *w;

	json_object_foreach((json_t *)(uintptr_t)want, k, w) {
		const json_t *v = json_object_get(vars, k);
		const json_t *d = json_object_get(desired_vars, k);

		(void)w;
		if (!json_is_string(v))
			continue;
		if (json_is_object(d) || json_is_true(json_object_get(secrets, k))) {
			const char *ref = get_str(d, "ref");

			json_object_set_new(
				out, k,
				rc_secret_json_observed(ref ? ref : "unknown",
							json_string_value(v)));
		} else {
			json_object_set(out, k, (json_t *)(uintptr_t)v);
		}
	}
	return json_pack("{s:o}", "vars", out);
}

/* ------------------------------------------------------ normalize, immutable */

void rc_heroku_normalize(const char *kind, json_t *body)
{
	const char *k;
	json_t *p;

	if (!json_is_object(body))
		return;
	if (!strcmp(kind, RC_HEROKU_FORMATION)) {
		json_object_foreach(body, k, p) {
			json_t *q = json_object_get(p, "quantity");
			const char *size = get_str(p, "size");

			if (json_is_string(q))
				json_object_set_new(
					p, "quantity",
					json_integer(strtol(json_string_value(q),
							    NULL, 10)));
			if (size) {
				char *z = rc_heroku_size_fold(size);

				json_object_set_new(p, "size", json_string(z));
				free(z);
			}
		}
	} else if (!strcmp(kind, RC_HEROKU_ADDON)) {
		const char *plan = get_str(body, "plan");

		if (plan && !json_object_get(body, "tier")) {
			char *tier = rc_heroku_plan_tier(plan);

			json_object_set_new(body, "tier", json_string(tier));
			free(tier);
		}
	}
}

static bool below(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	return !strncmp(path, prefix, n) && (path[n] == '\0' || path[n] == '/');
}

bool rc_heroku_immutable(const char *kind, const char *path)
{
	if (!strcmp(kind, RC_HEROKU_APP))
		return below(path, "/region") || below(path, "/team") ||
		       below(path, "/name");
	if (!strcmp(kind, RC_HEROKU_ADDON))
		return below(path, "/service") || below(path, "/tier") ||
		       below(path, "/as");
	return false;
}

/* ------------------------------------------------------------------ hooks */

void rc_heroku_hook_command(rc_buf *out, const json_t *argv,
			    const char *token)
{
	const json_t *a;
	size_t i;

	json_array_foreach(argv, i, a) {
		const char *s = json_string_value(a);

		if (i)
			rc_buf_putc(out, ' ');
		rc_buf_putc(out, '\'');
		for (; s && *s; s++) {
			if (*s == '\'')
				rc_buf_puts(out, "'\\''");
			else
				rc_buf_putc(out, *s);
		}
		rc_buf_putc(out, '\'');
	}
	rc_buf_printf(out, "; echo \"reconcile-exit:%s:$?\"", token);
}

char *rc_heroku_hook_token(const char *run_id, const char *hook)
{
	rc_buf in = RC_BUF_INIT_MAX(4096);
	char hex[RC_SHA256_HEX_LEN + 1];

	rc_buf_printf(&in, "%s\n%s", run_id ? run_id : "", hook ? hook : "");
	rc_codec_sha256_hex(hex, in.ptr, in.len);
	rc_buf_release(&in);
	return rc_strndup(hex, 16);
}

int rc_heroku_exit_marker(const char *line, const char *token)
{
	rc_buf m = RC_BUF_INIT_MAX(256);
	const char *p;
	char *end;
	long v = -1;

	rc_buf_printf(&m, "reconcile-exit:%s:", token);
	p = strstr(line, m.ptr);
	if (p) {
		p += m.len;
		if (isdigit((unsigned char)*p)) {
			v = strtol(p, &end, 10);
			if (v > 255 || (*end && !isspace((unsigned char)*end) &&
					*end != '"'))
				v = -1;
		}
	}
	rc_buf_release(&m);
	return (int)v;
}

/* ------------------------------------------------------------ netrc, URLs */

/* The next token of a netrc text (a word, or a "quoted string"), into
 * tok; false at the end. */
static bool netrc_token(const char **p, rc_buf *tok)
{
	const char *s = *p;

	rc_buf_clear(tok);
	for (;;) {
		while (*s && isspace((unsigned char)*s))
			s++;
		if (*s != '#')
			break;
		while (*s && *s != '\n')
			s++;
	}
	if (!*s) {
		*p = s;
		return false;
	}
	if (*s == '"') {
		for (s++; *s && *s != '"'; s++) {
			if (*s == '\\' && s[1])
				s++;
			rc_buf_putc(tok, *s);
		}
		if (*s)
			s++;
	} else {
		while (*s && !isspace((unsigned char)*s))
			rc_buf_putc(tok, *s++);
	}
	*p = s;
	return true;
}

char *rc_heroku_netrc_password(const char *text, const char *host)
{
	rc_buf tok = RC_BUF_INIT_MAX(4096);
	const char *p = text ? text : "";
	char *found = NULL, *dflt = NULL;
	int in = 0; /* 0: none, 1: the host's entry, 2: default, 3: other */

	while (netrc_token(&p, &tok)) {
		if (!strcmp(tok.ptr, "machine")) {
			if (!netrc_token(&p, &tok))
				break;
			in = !strcmp(tok.ptr, host) ? 1 : 3;
		} else if (!strcmp(tok.ptr, "default")) {
			in = 2;
		} else if (!strcmp(tok.ptr, "macdef")) {
			/* a macro runs to the next empty line */
			const char *e = strstr(p, "\n\n");

			p = e ? e + 2 : p + strlen(p);
			in = 0;
		} else if (!strcmp(tok.ptr, "password")) {
			if (!netrc_token(&p, &tok))
				break;
			if (in == 1 && !found)
				found = rc_strdup(tok.ptr);
			else if (in == 2 && !dflt)
				dflt = rc_strdup(tok.ptr);
		}
	}
	explicit_bzero(tok.ptr, tok.len);
	rc_buf_release(&tok);
	if (found) {
		if (dflt)
			explicit_bzero(dflt, strlen(dflt));
		free(dflt);
		return found;
	}
	return dflt;
}

static bool host_is_loopback(const char *h, size_t n)
{
	if (n == 9 && !strncasecmp(h, "localhost", 9))
		return true;
	if (n == 5 && !strncmp(h, "[::1]", 5))
		return true;
	if (n >= 4 && !strncmp(h, "127.", 4)) {
		for (size_t i = 4; i < n; i++)
			if (!isdigit((unsigned char)h[i]) && h[i] != '.')
				return false;
		return true;
	}
	return false;
}

int rc_heroku_url_check(const char *url, const char *what)
{
	const char *host, *end;

	if (!strncmp(url, "https://", 8) && url[8])
		return 0;
	if (strncmp(url, "http://", 7))
		return rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				    "%s '%s' is not an https:// URL", what,
				    url);
	host = url + 7;
	if (*host == '[')
		end = strchr(host, ']') ? strchr(host, ']') + 1 : host;
	else
		end = host + strcspn(host, ":/");
	if (!host_is_loopback(host, (size_t)(end - host)))
		return rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				    "%s '%s' uses plain http:// for a host "
				    "that is not on loopback: use https:// "
				    "(TLS is always verified)",
				    what, url);
	return 0;
}
