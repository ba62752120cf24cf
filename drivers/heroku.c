/*
 * The Heroku driver: an environment is one app with its config vars,
 * formation (and container image), add-ons and pipeline coupling, through
 * the Platform API. Ownership is a record under <state>/heroku/ (apps
 * have no labels). Observation reads three account-wide lists once per
 * run, then the formation of each owned app, and config vars only for
 * apps that released since they were last seen. Hooks run as one-off
 * dynos read through log sessions. The mapping is drivers/heroku_map.c,
 * the client and records drivers/heroku_api.c and heroku_state.c;
 * docs/drivers/heroku.md is the user's view.
 */
#include "drivers/driver.h"
#include "drivers/heroku_api.h"
#include "drivers/heroku_map.h"
#include "drivers/http.h"
#include "drivers/oci.h"
#include "drivers/proc.h" /* clocks, local hooks */
#include "reconciler/base/log.h"
#include "reconciler/base/rctime.h"
#include "schema/secrets.h"

#define MUT(v) ((json_t *)(uintptr_t)(v))

struct rc_driver {
	const rc_env *env;
	char *project, *config_dir, *state_dir, *run_id;
	rc_heroku_api *api;
	bool own_api; /* opened without the run's shared state */
	pthread_mutex_t mu;
	json_t *releases; /* action key -> release id to wait for */
	json_t *addon_ids; /* action key -> add-on id to wait for */
	rc_driver_ctx ctx; /* the engine's callbacks (progress) */
};

/* ------------------------------------------------------------ helpers */

static const char *sget(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static void path_app(rc_buf *b, const char *app, const char *rest)
{
	rc_buf_puts(b, "/apps/");
	rc_http_url_encode(b, app);
	if (rest)
		rc_buf_puts(b, rest);
}

/* Where the configuration declares what an action concerns. */
static rc_loc action_loc(const rc_driver *d, const char *kind,
			 const char *name)
{
	const rc_env *e = d->env;

	if (!strcmp(kind, RC_HEROKU_ADDON)) {
		for (size_t i = 0; i < e->naddons; i++)
			if (!strcmp(e->addons[i].name, name))
				return e->addons[i].plan_loc;
	} else if (!strcmp(kind, RC_HEROKU_FORMATION) && e->nservices) {
		return e->services[0].size_loc;
	} else if (!strcmp(kind, RC_HEROKU_CONFIG) && e->config.n) {
		return e->config.items[0].loc;
	}
	return e->target.loc;
}

/* Whether needle is in hay, ignoring case. */
static bool contains_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay; hay++)
		if (!strncasecmp(hay, needle, n))
			return true;
	return false;
}

/* Where the configuration says what a refusal's message names: a size, a
 * plan, the region, the stack, the team or the app's name; def
 * otherwise. */
static rc_loc error_loc(const rc_driver *d, const rc_heroku_reply *r,
			rc_loc def)
{
	const rc_env *e = d->env;
	const char *m = r && r->json ? sget(r->json, "message") : NULL;
	size_t i;

	if (!m)
		return def;
	for (i = 0; i < e->nservices; i++)
		if (e->services[i].size && contains_ci(m, e->services[i].size))
			return e->services[i].size_loc;
	for (i = 0; i < e->naddons; i++)
		if (e->addons[i].plan && strstr(m, e->addons[i].plan))
			return e->addons[i].plan_loc;
	if (contains_ci(m, "region"))
		return e->target.region_loc;
	if (contains_ci(m, "stack"))
		return e->target.stack_loc;
	if (contains_ci(m, "team"))
		return e->target.team_loc;
	if ((e->target.app && strstr(m, e->target.app)) ||
	    contains_ci(m, "name"))
		return e->target.app_loc;
	return def;
}

/* One call that must answer 2xx with JSON: *out a new ref. body (may be
 * NULL) is stolen. */
static int call_json(rc_driver *d, const char *method, const char *path,
		     json_t *body, const char *what, rc_loc loc,
		     json_t **out)
{
	rc_heroku_reply r;
	json_t *j;
	int rc;

	*out = NULL;
	rc = rc_heroku_call(d->api, method, path, body, NULL,
			    !strcmp(method, "GET"), &r);
	json_decref(body);
	if (rc < 0)
		return rc;
	if (r.status == 403 || r.status == 422)
		rc = rc_heroku_fail(d->api, &r, what, d->env->target.team,
				    error_loc(d, &r, loc));
	else
		rc = rc_heroku_expect(d->api, &r, what, loc, &j);
	if (rc == 0)
		*out = json_incref(j);
	rc_heroku_reply_release(&r);
	return rc;
}

/* ------------------------------------------------------------- records */

/* parent[key], made an empty object when it is not one (borrowed). */
static json_t *child(json_t *parent, const char *key)
{
	json_t *o = json_object_get(parent, key);

	if (!json_is_object(o)) {
		o = json_object();
		json_object_set_new(parent, key, o);
	}
	return o;
}

typedef struct {
	const char *app;
	const char *k1, *k2; /* rec[app][k1][k2] (k2 may be NULL) */
	json_t *value;       /* stolen; NULL deletes */
	bool whole_app;      /* value replaces / NULL deletes rec[app] */
} rec_edit;

static int rec_apply(json_t *doc, void *ctx)
{
	rec_edit *e = ctx;
	json_t *apps = json_object_get(doc, "apps");
	json_t *rec, *o;

	if (e->whole_app) {
		if (e->value)
			json_object_set(apps, e->app, e->value);
		else
			json_object_del(apps, e->app);
		return 1;
	}
	rec = rc_heroku_state_app(doc, e->app);
	if (!rec) {
		if (!e->value)
			return 0;
		rec = json_object();
		json_object_set_new(apps, e->app, rec);
	}
	if (!e->k2) {
		if (e->value)
			json_object_set(rec, e->k1, e->value);
		else
			json_object_del(rec, e->k1);
		return 1;
	}
	o = json_object_get(rec, e->k1);
	if (!json_is_object(o)) {
		o = json_object();
		json_object_set_new(rec, e->k1, o);
	}
	if (e->value)
		json_object_set(o, e->k2, e->value);
	else
		json_object_del(o, e->k2);
	return 1;
}

static int rec_set(rc_driver *d, const char *app, const char *k1,
		   const char *k2, json_t *value)
{
	rec_edit e = {app, k1, k2, value, k1 == NULL};
	int rc = rc_heroku_state_update(d->api, d->state_dir, rec_apply, &e);

	json_decref(value);
	return rc;
}

/* The record of app (new ref), or NULL. */
static json_t *rec_get(rc_driver *d, const char *app)
{
	json_t *doc = rc_heroku_state_load(d->api, d->state_dir);
	json_t *rec = json_incref(json_object_get(json_object_get(doc, "apps"),
						  app));

	json_decref(doc);
	return rec;
}

static bool rec_ours(const rc_driver *d, const json_t *rec)
{
	const char *p = sget(rec, "project"), *e = sget(rec, "env");

	return p && e && !strcmp(p, d->project) && !strcmp(e, d->env->name);
}

/* Notes that app released in this run (a config change, an image, an
 * add-on attached or removed): when the run ends its cached released_at
 * is refreshed (refresh_released), so that the next plan does not read
 * again what this run wrote. */
static void mark_released(rc_driver *d, const char *app)
{
	rc_heroku_api *a = d->api;

	pthread_mutex_lock(&a->mu);
	json_object_set_new(a->released, app, json_true());
	if (!a->released_state_dir)
		a->released_state_dir = rc_strdup(d->state_dir);
	pthread_mutex_unlock(&a->mu);
}

/* The time of a released_at ("2026-12-05T17:57:30Z"), or 0. */
static time_t iso_time(const char *s)
{
	struct tm tm = {0};
	const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;

	return end ? timegm(&tm) : 0;
}

static int rec_released(json_t *doc, void *ctx)
{
	const json_t *released = ((void **)ctx)[0];
	const json_t *list = ((void **)ctx)[1];
	time_t *latest = ((void **)ctx)[2];
	const char *name;
	const json_t *v, *app;
	size_t i;
	int n = 0;

	json_object_foreach(MUT(released), name, v) {
		json_t *rec = rc_heroku_state_app(doc, name);
		json_t *cache = json_object_get(rec, "cache");
		const char *at = NULL, *up = NULL;

		if (!json_is_object(json_object_get(cache, "body")))
			continue;
		json_array_foreach(list, i, app)
			if (sget(app, "name") && !strcmp(sget(app, "name"), name)) {
				at = sget(app, "released_at");
				up = sget(app, "updated_at");
			}
		if (at && up) {
			json_object_set_new(cache, "released_at",
					    json_string(at));
			json_object_set_new(cache, "updated_at",
					    json_string(up));
			if (iso_time(at) > *latest)
				*latest = iso_time(at);
			if (iso_time(up) > *latest)
				*latest = iso_time(up);
		} else {
			json_object_del(cache, "released_at");
		}
		n++;
	}
	return n > 0;
}

/*
 * When a run ends: the apps it released moved their released_at, and the
 * records already hold what those releases made (config_apply,
 * heroku_wait). One GET /apps gives the new released_at of each, which
 * the cache then takes, so that the next plan reads only their formation.
 * A change made by someone else later moves released_at again and is
 * read as usual. released_at counts whole seconds: when one of them is
 * the second the server answered in, the run waits for that second to
 * pass, so that a later change cannot carry the same released_at. On a
 * failure the cache keeps no released_at (the next plan reads those apps
 * again).
 */
static void refresh_released(rc_heroku_api *a)
{
	json_t *list = NULL;
	time_t date = 0, latest = 0;
	int rc;

	if (!a->released || !json_object_size(a->released) ||
	    !a->released_state_dir)
		return;
	rc = rc_heroku_list_dated(a, "/apps", "list apps", &list, &date);
	if (!date)
		date = time(NULL);
	if (rc == 0)
		rc = rc_heroku_state_update(a, a->released_state_dir,
					    rec_released,
					    (void *[]){a->released, list,
						       &latest});
	if (rc < 0) {
		RC_WARN("heroku: the cache of the apps this run released is "
			"not refreshed (%s): the next plan reads their config "
			"vars again",
			rc_error_last()->message);
		rc_error_clear();
	} else if (latest >= date) {
		rc_local_sleep_ms(latest > date ? 2000 : 1000);
	}
	json_decref(list);
	json_object_clear(a->released);
}

/* ---------------------------------------------------------- open, close */

static void heroku_close(rc_driver *d)
{
	if (!d)
		return;
	if (d->own_api) {
		refresh_released(d->api);
		rc_heroku_api_free(d->api);
	}
	json_decref(d->releases);
	json_decref(d->addon_ids);
	pthread_mutex_destroy(&d->mu);
	free(d->project);
	free(d->config_dir);
	free(d->state_dir);
	free(d->run_id);
	free(d);
}

static int heroku_open(rc_driver **out, const rc_env *env,
		       const rc_driver_ctx *ctx)
{
	rc_driver *d = rc_calloc(1, sizeof(*d));
	int rc;

	*out = NULL;
	pthread_mutex_init(&d->mu, NULL);
	d->env = env;
	d->project = rc_strdup(ctx->project ? ctx->project : "reconcile");
	d->config_dir = rc_strdup(ctx->config_dir ? ctx->config_dir : ".");
	d->state_dir = rc_strdup(ctx->state_dir ? ctx->state_dir : ".reconcile");
	d->run_id = ctx->run_id ? rc_strdup(ctx->run_id) : NULL;
	d->releases = json_object();
	d->addon_ids = json_object();
	d->ctx.progress = ctx->progress;
	d->ctx.note_arg = ctx->note_arg;
	if (ctx->shared) {
		d->api = ctx->shared;
	} else {
		rc = rc_heroku_api_open(&d->api, NULL, NULL);
		if (rc < 0) {
			heroku_close(d);
			return rc;
		}
		d->own_api = true;
	}
	rc_heroku_api_reserve(d->api, env->target.rate_reserve);
	*out = d;
	return 0;
}

/* One client, rate budget and set of account-wide lists per run. */
static int heroku_shared_open(void **out, const rc_driver_ctx *ctx)
{
	rc_heroku_api *a = NULL;
	int rc = rc_heroku_api_open(&a, ctx->note, ctx->note_arg);

	*out = a;
	return rc;
}

static void heroku_shared_close(void *shared)
{
	if (shared)
		refresh_released(shared);
	rc_heroku_api_free(shared);
}

static int heroku_expand(rc_driver *d, const rc_env *env, rc_resource_set *out)
{
	return rc_heroku_expand(env, d->config_dir, out);
}

/* ------------------------------------------------------------- observe */

static const json_t *find_by(const json_t *list, const char *field,
			     const char *value)
{
	const json_t *v;
	size_t i;

	json_array_foreach(list, i, v)
		if (sget(v, field) && !strcmp(sget(v, field), value))
			return v;
	return NULL;
}

static rc_resource *add_actual(rc_driver *d, rc_resource_set *out,
			       const char *kind, const char *name,
			       json_t *body, const char *app)
{
	rc_resource *r = rc_resource_set_add(out, d->env->name,
					     RC_HEROKU_DRIVER, kind, name, body);

	if (strcmp(kind, RC_HEROKU_APP)) {
		rc_buf k = RC_BUF_INIT_MAX(1024);

		rc_buf_printf(&k, "%s/%s/%s", d->env->name, RC_HEROKU_APP, app);
		rc_resource_add_dep(r, k.ptr);
		rc_buf_release(&k);
	}
	return r;
}

/* "Deployed web (0123456789ab), worker (...)" -> {web: "0123456789ab"} */
static json_t *deployed_images(const char *desc)
{
	json_t *m = json_object();
	const char *p;

	if (!desc || strncmp(desc, "Deployed ", 9))
		return m;
	for (p = desc + 9; *p;) {
		const char *open = strstr(p, " ("), *close;

		if (!open || !(close = strchr(open, ')')))
			break;
		{
			char *type = rc_strndup(p, (size_t)(open - p));

			json_object_set_new(m, type,
					    json_stringn(open + 2,
							 (size_t)(close - open - 2)));
			free(type);
		}
		p = close + 1;
		while (*p == ',' || *p == ' ')
			p++;
	}
	return m;
}

/* The newest release of app (new ref). */
static int newest_release(rc_driver *d, const char *app, json_t **out)
{
	rc_buf path = RC_BUF_INIT_MAX(1024);
	rc_heroku_reply r;
	int rc;

	*out = NULL;
	path_app(&path, app, "/releases");
	rc = rc_heroku_call(d->api, "GET", path.ptr, NULL,
			    "version ..; order=desc, max=10", true, &r);
	if (rc == 0 && ((r.status != 200 && r.status != 206) ||
			!json_is_array(r.json)))
		rc = rc_heroku_fail(d->api, &r, "list releases", NULL,
				    (rc_loc){0});
	if (rc == 0)
		*out = json_incref(r.json);
	rc_heroku_reply_release(&r);
	rc_buf_release(&path);
	return rc;
}

/*
 * The config body of an owned app, from the cache when the app has not
 * released since it was seen and the cache covers every wanted key; else
 * GET config-vars (and the newest releases, for the images deployed).
 */
static int observe_config(rc_driver *d, const json_t *app, const json_t *rec,
			  const json_t *desired_vars, json_t **body,
			  json_t **deployed)
{
	const char *name = sget(app, "name");
	const char *released = sget(app, "released_at");
	const char *updated = sget(app, "updated_at");
	const json_t *cache = json_object_get(rec, "cache");
	json_t *want = json_object(), *secrets = json_object(), *vars = NULL;
	json_t *rels = NULL, *keys, *c;
	const char *k;
	const json_t *v;
	bool hit;
	rc_buf path = RC_BUF_INIT_MAX(1024);
	size_t i;
	int rc = 0;

	*body = NULL;
	*deployed = NULL;
	json_object_foreach(MUT(desired_vars), k, v)
		json_object_set_new(want, k, json_true());
	json_object_foreach(json_object_get(rec, "config"), k, v) {
		json_object_set_new(want, k, json_true());
		if (json_is_true(json_object_get(v, "secret")))
			json_object_set_new(secrets, k, json_true());
	}
	/* updated_at moves as soon as a release is made, released_at once
	 * it succeeded: either says the cache may be behind */
	hit = released && sget(cache, "released_at") &&
	      !strcmp(released, sget(cache, "released_at")) && updated &&
	      sget(cache, "updated_at") &&
	      !strcmp(updated, sget(cache, "updated_at"));
	json_object_foreach(want, k, v) {
		bool in = false;

		json_array_foreach(json_object_get(cache, "keys"), i, c)
			in = in || !strcmp(json_string_value(c), k);
		hit = hit && in;
	}
	if (hit) {
		json_t *b = json_deep_copy(json_object_get(cache, "body"));
		json_t *bv = json_object_get(b, "vars");

		/* what is cached for keys no longer wanted is left out; a
		 * secret's ref is the desired one */
		void *tmp;
		json_t *x;

		json_object_foreach_safe(bv, tmp, k, x) {
			const json_t *dv = json_object_get(desired_vars, k);

			if (!json_object_get(want, k))
				json_object_del(bv, k);
			else if (json_is_object(x) && json_is_object(dv))
				json_object_set(x, "ref",
						json_object_get(dv, "ref"));
		}
		*body = b;
		*deployed = json_incref(json_object_get(cache, "deployed"));
		goto done;
	}
	path_app(&path, name, "/config-vars");
	if ((rc = call_json(d, "GET", path.ptr, NULL, "get config vars",
			    (rc_loc){0}, &vars)) < 0)
		goto done;
	*body = rc_heroku_config_body(vars, want, desired_vars, secrets);
	if ((rc = newest_release(d, name, &rels)) < 0)
		goto done;
	json_array_foreach(rels, i, c) {
		const char *desc = sget(c, "description");
		const char *st = sget(c, "status");

		if (desc && !strncmp(desc, "Deployed ", 9) && st &&
		    !strcmp(st, "succeeded")) {
			*deployed = deployed_images(desc);
			break;
		}
	}
	if (!*deployed)
		*deployed = json_incref(json_object_get(cache, "deployed"));
	keys = json_array();
	json_object_foreach(want, k, v)
		json_array_append_new(keys, json_string(k));
	rec_set(d, name, "cache", NULL,
		json_pack("{s:s?, s:s?, s:o, s:O, s:O?}", "released_at",
			  released, "updated_at", updated, "keys", keys, "body",
			  *body, "deployed", *deployed));
done:
	if (rc < 0) {
		json_decref(*body);
		json_decref(*deployed);
		*body = *deployed = NULL;
	}
	json_decref(rels);
	json_decref(vars);
	json_decref(want);
	json_decref(secrets);
	rc_buf_release(&path);
	return rc;
}

/* The images of the formation body: the recorded ref while the deploy
 * seen last is reconcile's, else the short id it deployed (drift). */
static void observe_images(json_t *form, const json_t *rec,
			   const json_t *deployed)
{
	const char *type;
	json_t *p;

	json_object_foreach(form, type, p) {
		const json_t *im = json_object_get(json_object_get(rec, "images"),
						   type);
		const char *id = sget(im, "id"), *ref = sget(im, "ref");
		const char *short_id = sget(deployed, type);

		if (short_id && (!id || strncmp(id + (strncmp(id, "sha256:", 7)
							      ? 0
							      : 7),
						short_id, strlen(short_id)))) {
			rc_buf raw = RC_BUF_INIT_MAX(256);

			rc_buf_printf(&raw, "sha256:%s...", short_id);
			json_object_set_new(p, "image", json_string(raw.ptr));
			rc_buf_release(&raw);
		} else if (ref) {
			json_object_set_new(p, "image", json_string(ref));
		}
	}
}

/* The desired add-on an add-on made outside reconcile stands for when
 * the app is adopted: the same service and attachment (borrowed). */
static const char *adopted_addon(const rc_driver *d, const json_t *body)
{
	for (size_t i = 0; i < d->env->naddons; i++) {
		const rc_addon *a = &d->env->addons[i];

		if (a->kind && sget(body, "service") &&
		    !strcmp(a->kind, sget(body, "service")) && a->as &&
		    sget(body, "as") && !strcmp(a->as, sget(body, "as")))
			return a->name;
	}
	return NULL;
}

static int observe_app(rc_driver *d, const json_t *app, const json_t *rec,
		       bool adopt, const rc_resource_set *desired,
		       rc_resource_set *out)
{
	size_t n0 = out->n;
	const char *name = sget(app, "name"), *id = sget(app, "id");
	rc_buf key = RC_BUF_INIT_MAX(1024), path = RC_BUF_INIT_MAX(1024);
	const rc_resource *want;
	json_t *form = NULL, *fbody, *cbody = NULL, *deployed = NULL, *b;
	const json_t *dvars = NULL, *v;
	rc_resource *r;
	size_t i;
	int rc;

	rc_buf_printf(&key, "%s/%s/%s", d->env->name, RC_HEROKU_CONFIG, name);
	want = rc_resource_set_find(desired, key.ptr);
	if (want)
		dvars = json_object_get(want->body, "vars");
	rc_buf_clear(&key);
	rc_buf_printf(&key, "%s/%s/%s", d->env->name, RC_HEROKU_APP, name);
	want = rc_resource_set_find(desired, key.ptr);

	b = rc_heroku_app_body(app, json_object_get(want ? want->body : NULL,
						    "maintenance") != NULL);
	if (!b) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_PLATFORM,
				  "heroku: an app without a name in GET /apps");
		goto done;
	}
	r = add_actual(d, out, RC_HEROKU_APP, name, b, name);
	r->precious = want ? want->precious : true;

	if ((rc = observe_config(d, app, rec, dvars, &cbody, &deployed)) < 0)
		goto done;
	if (json_object_size(json_object_get(cbody, "vars")))
		add_actual(d, out, RC_HEROKU_CONFIG, name, json_incref(cbody),
			   name);

	path_app(&path, name, "/formation");
	if ((rc = call_json(d, "GET", path.ptr, NULL, "get formation",
			    (rc_loc){0}, &form)) < 0)
		goto done;
	fbody = rc_heroku_formation_body(form, NULL);
	observe_images(fbody, rec, deployed);
	if (json_object_size(fbody))
		add_actual(d, out, RC_HEROKU_FORMATION, name, fbody, name);
	else
		json_decref(fbody);

	json_array_foreach(d->api->addons, i, v) {
		const json_t *owner = json_object_get(v, "app");
		const char *aid = sget(v, "id"), *cname = NULL, *k;
		const json_t *x;

		if (!sget(owner, "id") || strcmp(sget(owner, "id"), id))
			continue;
		json_object_foreach(json_object_get(rec, "addons"), k, x)
			if (sget(x, "id") && aid && !strcmp(sget(x, "id"), aid))
				cname = k;
		b = rc_heroku_addon_body(v);
		if (!cname && adopt && b)
			cname = adopted_addon(d, b);
		if (!cname) {
			json_decref(b);
			continue; /* made by hand: not ours */
		}
		if (b) {
			r = add_actual(d, out, RC_HEROKU_ADDON, cname, b, name);
			r->precious = rc_heroku_data_service(sget(b, "service"));
		}
	}

	json_array_foreach(d->api->couplings, i, v) {
		const char *pid = sget(json_object_get(v, "pipeline"), "id");
		const char *pname = NULL, *k;
		const json_t *p, *x;
		json_t *doc;

		if (!sget(json_object_get(v, "app"), "id") ||
		    strcmp(sget(json_object_get(v, "app"), "id"), id) || !pid)
			continue;
		doc = rc_heroku_state_load(d->api, d->state_dir);
		json_object_foreach(json_object_get(doc, "pipelines"), k, x)
			if (sget(x, "id") && !strcmp(sget(x, "id"), pid))
				pname = k;
		if (!pname) {
			if ((rc = rc_heroku_lists(d->api, true)) < 0) {
				json_decref(doc);
				goto done;
			}
			p = find_by(d->api->pipelines, "id", pid);
			pname = sget(p, "name");
		}
		if (pname)
			add_actual(d, out, RC_HEROKU_COUPLING, name,
				   json_pack("{s:s, s:s}", "pipeline", pname,
					     "stage",
					     sget(v, "stage") ? sget(v, "stage")
							      : ""),
				   name);
		json_decref(doc);
	}
done:
	for (size_t j = n0; adopt && j < out->n; j++)
		out->items[j].adopt = true;
	json_decref(form);
	json_decref(cbody);
	json_decref(deployed);
	rc_buf_release(&key);
	rc_buf_release(&path);
	return rc;
}

static int heroku_observe(rc_driver *d, const rc_resource_set *desired,
			  rc_resource_set *out)
{
	const char *target = d->env->target.app;
	json_t *doc = NULL, *names = json_object(), *rec;
	const char *name;
	const json_t *app, *v;
	int rc;

	if ((rc = rc_heroku_lists(d->api, false)) < 0)
		goto done;
	doc = rc_heroku_state_load(d->api, d->state_dir);
	json_object_foreach(json_object_get(doc, "apps"), name, rec)
		if (rec_ours(d, rec))
			json_object_set_new(names, name, json_true());
	if (target)
		json_object_set_new(names, target, json_true());
	json_object_foreach(names, name, v) {
		app = find_by(d->api->apps, "name", name);
		rec = json_object_get(json_object_get(doc, "apps"), name);
		if (!app)
			continue; /* gone (or another account's) */
		if (!rec_ours(d, rec) ||
		    (sget(rec, "id") && sget(app, "id") &&
		     strcmp(sget(rec, "id"), sget(app, "id")) &&
		     !json_is_true(json_object_get(rec, "pending")))) {
			bool other = sget(rec, "project") && !rec_ours(d, rec);

			if (!strcmp(name, target) && d->env->policy.adopt &&
			    !other) {
				rc = observe_app(d, app, NULL, true, desired,
						 out);
				if (rc < 0)
					goto done;
				continue;
			}
			if (!strcmp(name, target)) {
				const char *p = sget(rec, "project");
				const char *e = sget(rec, "env");

				rc = rc_error_set_at(
					RC_ECONFLICT, d->env->target.app_loc,
					"heroku: app '%s' (target.app) exists "
					"outside reconcile%s%s%s%s%s: set "
					"policy.adopt: true to take it over, "
					"or choose another name",
					name, p ? " (recorded for " : "",
					p ? p : "", p ? "/" : "", e ? e : "",
					p ? ")" : "");
				goto done;
			}
			continue;
		}
		if ((rc = observe_app(d, app, rec, false, desired, out)) < 0)
			goto done;
	}
done:
	rc_heroku_note_wait(d->api, d->env->name);
	json_decref(doc);
	json_decref(names);
	return rc;
}

/* --------------------------------------------------------------- apply */

static void stale(rc_driver *d)
{
	pthread_mutex_lock(&d->api->lists_mu);
	d->api->stale = true;
	pthread_mutex_unlock(&d->api->lists_mu);
}

static int app_create(rc_driver *d, const rc_action *a, json_t **result)
{
	const json_t *b = a->desired;
	const char *team = sget(b, "team");
	rc_loc loc = d->env->target.app_loc;
	rc_buf path = RC_BUF_INIT_MAX(1024);
	json_t *req, *app = NULL, *rec;
	rc_heroku_reply r;
	int rc;

	/* the intent first: a create retried after a crash finds its app */
	rec = rec_get(d, a->name);
	if (!rec || !rec_ours(d, rec)) {
		if (rec && sget(rec, "id"))
			RC_WARN("heroku: app '%s' was recorded for %s/%s",
				a->name, sget(rec, "project"), sget(rec, "env"));
		rc = rec_set(d, a->name, NULL, NULL,
			     json_pack("{s:s, s:s, s:b}", "project", d->project,
				       "env", d->env->name, "pending", 1));
		if (rc < 0) {
			json_decref(rec);
			return rc;
		}
	}
	json_decref(rec);
	req = json_pack("{s:s}", "name", a->name);
	if (sget(b, "region"))
		json_object_set(req, "region", json_object_get(b, "region"));
	if (sget(b, "stack"))
		json_object_set(req, "stack", json_object_get(b, "stack"));
	if (team)
		json_object_set(req, "team", json_object_get(b, "team"));
	rc = rc_heroku_call(d->api, "POST", team ? "/teams/apps" : "/apps",
			    req, NULL, false, &r);
	json_decref(req);
	if (rc < 0)
		goto done;
	if (r.status == 422 &&
	    strstr(sget(r.json, "message") ? sget(r.json, "message") : "",
		   "already taken")) {
		/* ours from an earlier attempt, or someone else's */
		rc_heroku_reply_release(&r);
		path_app(&path, a->name, NULL);
		rc = rc_heroku_call(d->api, "GET", path.ptr, NULL, NULL, true,
				    &r);
		if (rc == 0 && r.status != 200) {
			rc = rc_error_set_at(
				RC_EINVALID, loc,
				"heroku: the app name '%s' (target.app) is "
				"taken by another Heroku account: choose "
				"another name%s%s%s",
				a->name, r.request_id ? " (Request-Id " : "",
				r.request_id ? r.request_id : "",
				r.request_id ? ")" : "");
			goto done;
		}
	} else if (r.status != 201 && r.status != 200) {
		rc = rc_heroku_fail(d->api, &r, "create app", team,
				    error_loc(d, &r, loc));
		goto done;
	}
	if (rc == 0 && !json_is_object(r.json))
		rc = rc_heroku_fail(d->api, &r, "create app", team, loc);
	if (rc < 0)
		goto done;
	app = json_incref(r.json);
	rc = rec_set(d, a->name, NULL, NULL,
		     json_pack("{s:s, s:s, s:s?, s:s?}", "project", d->project,
			       "env", d->env->name, "id", sget(app, "id"),
			       "created_at", sget(app, "created_at")));
	if (rc == 0 && json_is_true(json_object_get(b, "maintenance"))) {
		json_t *m = NULL;

		rc_buf_clear(&path);
		path_app(&path, a->name, NULL);
		rc = call_json(d, "PATCH", path.ptr,
			       json_pack("{s:b}", "maintenance", 1),
			       "set maintenance", loc, &m);
		if (m) {
			json_decref(app);
			app = m;
		}
	}
	if (rc == 0)
		*result = rc_heroku_app_body(
			app, json_object_get(b, "maintenance") != NULL);
done:
	json_decref(app);
	rc_heroku_reply_release(&r);
	rc_buf_release(&path);
	return rc;
}

static int app_update(rc_driver *d, const rc_action *a, json_t **result)
{
	const json_t *b = a->desired;
	rc_buf path = RC_BUF_INIT_MAX(1024);
	json_t *req = json_object(), *app = NULL, *rec;
	int rc = 0;

	for (size_t i = 0; i < a->changes.n; i++) {
		const char *p = a->changes.items[i].path;

		if (!strcmp(p, "/stack") && sget(b, "stack"))
			json_object_set(req, "build_stack",
					json_object_get(b, "stack"));
		if (!strcmp(p, "/maintenance"))
			json_object_set_new(
				req, "maintenance",
				json_boolean(json_is_true(
					json_object_get(b, "maintenance"))));
	}
	/* adoption: the app is recorded as ours */
	rec = rec_get(d, a->name);
	if (!rec_ours(d, rec)) {
		json_t *obs = NULL;

		path_app(&path, a->name, NULL);
		rc = call_json(d, "GET", path.ptr, NULL, "get app",
			       d->env->target.loc, &obs);
		if (rc == 0)
			rc = rec_set(d, a->name, NULL, NULL,
				     json_pack("{s:s, s:s, s:s?, s:b}",
					       "project", d->project, "env",
					       d->env->name, "id",
					       sget(obs, "id"), "adopted", 1));
		json_decref(obs);
		rc_buf_clear(&path);
	}
	json_decref(rec);
	path_app(&path, a->name, NULL);
	if (rc == 0)
		rc = call_json(d, json_object_size(req) ? "PATCH" : "GET",
			       path.ptr,
			       json_object_size(req) ? json_incref(req) : NULL,
			       "update app", d->env->target.loc, &app);
	if (rc == 0 && json_object_size(req))
		mark_released(d, a->name); /* updated_at moved */
	if (rc == 0)
		*result = rc_heroku_app_body(
			app, json_object_get(b, "maintenance") != NULL);
	json_decref(req);
	json_decref(app);
	rc_buf_release(&path);
	return rc;
}

static int app_delete(rc_driver *d, const char *name)
{
	rc_buf path = RC_BUF_INIT_MAX(1024);
	rc_heroku_reply r;
	int rc;

	path_app(&path, name, NULL);
	rc = rc_heroku_call(d->api, "DELETE", path.ptr, NULL, NULL, true, &r);
	if (rc == 0 && r.status != 200 && r.status != 404)
		rc = rc_heroku_fail(d->api, &r, "delete app", d->env->target.team,
				    (rc_loc){0});
	rc_heroku_reply_release(&r);
	rc_buf_release(&path);
	if (rc == 0)
		rc = rec_set(d, name, NULL, NULL, NULL);
	return rc;
}

/* Waits until app is gone (404), up to timeout seconds. */
static int app_wait_gone(rc_driver *d, const char *name, long timeout)
{
	rc_buf path = RC_BUF_INIT_MAX(1024);
	long long deadline = rc_local_now_ms() + timeout * 1000;
	long step = 200;
	int rc = 0;

	path_app(&path, name, NULL);
	for (;;) {
		rc_heroku_reply r;

		rc = rc_heroku_call(d->api, "GET", path.ptr, NULL, NULL, true,
				    &r);
		if (rc == 0 && (r.status == 404 || r.status == 403)) {
			rc_heroku_reply_release(&r);
			break;
		}
		rc_heroku_reply_release(&r);
		if (rc < 0)
			break;
		if (rc_local_now_ms() >= deadline) {
			rc = rc_error_set(RC_ETIMEOUT, RC_ECLASS_PLATFORM,
					  "heroku: app '%s' is still there %lds "
					  "after its deletion",
					  name, timeout);
			break;
		}
		rc_local_sleep_ms(step);
		step = step < 2000 ? step * 2 : 2000;
	}
	rc_buf_release(&path);
	return rc;
}

/* The config PATCH of an action: every key set or removed. */
static int config_patch(rc_driver *d, const rc_action *a, json_t **patch)
{
	const json_t *dv = json_object_get(a->desired, "vars");
	const json_t *av = json_object_get(a->actual, "vars");
	json_t *keys = json_object();
	const char *k;
	const json_t *v;
	int rc = 0;

	*patch = json_object();
	if (a->op == RC_OP_DELETE) {
		json_object_foreach(MUT(av), k, v)
			json_object_set_new(*patch, k, json_null());
		json_decref(keys);
		return 0;
	}
	if (a->op == RC_OP_CREATE || a->op == RC_OP_REPLACE) {
		json_object_foreach(MUT(dv), k, v)
			json_object_set_new(keys, k, json_true());
	}
	for (size_t i = 0; i < a->changes.n; i++) {
		const rc_change *c = &a->changes.items[i];
		rc_buf key = RC_BUF_INIT_MAX(1024);
		const char *p = c->path;

		if (!strcmp(p, "/vars") || !strcmp(p, "")) {
			json_object_foreach(MUT(dv), k, v)
				json_object_set_new(keys, k, json_true());
			json_object_foreach(MUT(av), k, v)
				json_object_set_new(keys, k, json_true());
			continue;
		}
		if (strncmp(p, "/vars/", 6))
			continue;
		/* a JSON pointer segment: ~1 is '/', ~0 is '~' */
		for (p += 6; *p && *p != '/'; p++) {
			if (p[0] == '~' && p[1] == '1')
				rc_buf_putc(&key, '/'), p++;
			else if (p[0] == '~' && p[1] == '0')
				rc_buf_putc(&key, '~'), p++;
			else
				rc_buf_putc(&key, *p);
		}
		json_object_set_new(keys, key.ptr, json_true());
		rc_buf_release(&key);
	}
	json_object_foreach(keys, k, v) {
		const json_t *want = json_object_get(dv, k);
		char *val = NULL;

		if (!want) {
			json_object_set_new(*patch, k, json_null());
		} else if (json_is_object(want)) {
			rc = rc_secret_resolve(&val, want, d->env, d->config_dir);
			if (rc < 0)
				break;
			json_object_set_new(*patch, k, json_string(val));
			explicit_bzero(val, strlen(val));
			free(val);
		} else {
			json_object_set(*patch, k, MUT(want));
		}
	}
	json_decref(keys);
	return rc;
}

/* Records the keys a config PATCH set and removed and, from its reply
 * (every var the app has after it), the cache the next observation reads:
 * the body of the keys observe_config wants (the desired ones and those
 * reconcile set), without released_at until the run ends
 * (refresh_released). */
static int rec_config(json_t *doc, void *ctx)
{
	const rc_action *a = ((void **)ctx)[0];
	const json_t *patch = ((void **)ctx)[1];
	const json_t *vars = ((void **)ctx)[2];
	const json_t *dvars = json_object_get(a->desired, "vars");
	json_t *rec = rc_heroku_state_app(doc, a->name);
	json_t *cfg, *old, *want, *secrets, *keys, *body;
	const char *k;
	const json_t *v;

	if (!json_is_object(rec))
		return 0;
	cfg = child(rec, "config");
	json_object_foreach(MUT(patch), k, v) {
		if (json_is_null(v))
			json_object_del(cfg, k);
		else
			json_object_set_new(
				cfg, k,
				json_pack("{s:b}", "secret",
					  json_is_object(json_object_get(
						  dvars, k))));
	}
	old = json_incref(json_object_get(rec, "cache"));
	json_object_del(rec, "cache");
	if (json_is_object(vars)) {
		want = json_object();
		secrets = json_object();
		keys = json_array();
		json_object_foreach(MUT(dvars), k, v)
			json_object_set_new(want, k, json_true());
		json_object_foreach(cfg, k, v) {
			json_object_set_new(want, k, json_true());
			if (json_is_true(json_object_get(v, "secret")))
				json_object_set_new(secrets, k, json_true());
		}
		json_object_foreach(want, k, v)
			json_array_append_new(keys, json_string(k));
		body = rc_heroku_config_body(vars, want, dvars, secrets);
		json_object_set_new(
			rec, "cache",
			json_pack("{s:o, s:o, s:O?}", "keys", keys, "body",
				  body ? body : json_object(), "deployed",
				  json_object_get(old, "deployed")));
		json_decref(want);
		json_decref(secrets);
	}
	json_decref(old);
	return 1;
}

static int config_apply(rc_driver *d, const rc_action *a, json_t **result)
{
	rc_buf path = RC_BUF_INIT_MAX(1024);
	json_t *patch = NULL, *vars = NULL, *want = json_object();
	const char *k;
	const json_t *v;
	int rc;

	if ((rc = config_patch(d, a, &patch)) < 0)
		goto done;
	if (json_object_size(patch)) {
		path_app(&path, a->name, "/config-vars");
		rc = call_json(d, "PATCH", path.ptr, json_incref(patch),
			       "set config vars", action_loc(d, a->kind, a->name),
			       &vars);
		if (rc < 0)
			goto done;
		rc = rc_heroku_state_update(d->api, d->state_dir, rec_config,
					    (void *[]){(void *)a, patch, vars});
		if (rc < 0)
			goto done;
		mark_released(d, a->name);
	}
	if (a->op != RC_OP_DELETE) {
		json_object_foreach(json_object_get(a->desired, "vars"), k, v)
			json_object_set_new(want, k, json_true());
		*result = vars ? rc_heroku_config_body(
					 vars, want,
					 json_object_get(a->desired, "vars"),
					 NULL)
			       : json_deep_copy(a->desired);
	}
done:
	if (patch) {
		/* it held resolved secrets */
		json_object_foreach(patch, k, v)
			if (json_is_string(v))
				explicit_bzero((char *)(uintptr_t)json_string_value(v),
					       strlen(json_string_value(v)));
	}
	json_decref(patch);
	json_decref(vars);
	json_decref(want);
	rc_buf_release(&path);
	return rc;
}

/* ---------------------------------------------------------------- images */

void rc_heroku_oci_free(void *oci)
{
	rc_oci_close(oci);
}

static int registry(rc_driver *d, rc_oci **out)
{
	rc_heroku_api *a = d->api;
	int rc = 0;

	pthread_mutex_lock(&a->mu);
	if (!a->oci) {
		rc_oci_opts o;
		rc_oci *c = NULL;

		rc_oci_opts_init(&o);
		rc = rc_oci_open(&c, &o);
		if (rc == 0 && a->registry_url)
			rc = rc_oci_set_endpoint(c, RC_HEROKU_REGISTRY,
						 a->registry_url);
		if (rc == 0)
			rc = rc_oci_set_credentials(c, RC_HEROKU_REGISTRY, "_",
						    a->key);
		if (rc == 0)
			a->oci = c;
		else
			rc_oci_close(c);
	}
	*out = a->oci;
	pthread_mutex_unlock(&a->mu);
	return rc;
}

/* A repository of the Heroku registry that already holds the image
 * manifest digest: one that received it in this run, else one the records
 * say an app was released from (any app of the state directory: all are
 * in the same account's registry). Its name (new string), or NULL. Under
 * img_mu. */
static char *held_image(rc_driver *d, const char *digest)
{
	const char *repo = sget(d->api->held, digest), *app, *type;
	char *found = repo ? rc_strdup(repo) : NULL;
	json_t *doc;
	const json_t *rec, *im;

	if (found)
		return found;
	doc = rc_heroku_state_load(d->api, d->state_dir);
	json_object_foreach(json_object_get(doc, "apps"), app, rec) {
		if (json_is_true(json_object_get(rec, "pending")))
			continue;
		json_object_foreach(json_object_get(rec, "images"), type, im) {
			if (!found && sget(im, "digest") && sget(im, "repo") &&
			    !strcmp(sget(im, "digest"), digest))
				found = rc_strdup(sget(im, "repo"));
		}
	}
	json_decref(doc);
	return found;
}

/* An image copy's progress, for the apply's live display: "web: image
 * blob 2/3, 12.0 of 64.0 MiB". */
typedef struct {
	rc_driver *d;
	const char *action_id, *type;
} copy_progress;

static void on_copy_progress(void *ctx, const rc_oci_progress *p)
{
	const copy_progress *cp = ctx;

	if (p->event == RC_OCI_BLOB_BYTES) {
		bool mib = p->total >= 1048576;
		double unit = mib ? 1048576.0 : 1024.0;

		rc_driver_progress(&cp->d->ctx, cp->action_id,
				   "%s: image blob %zu/%zu, %.1f of %.1f %s",
				   cp->type, p->index, p->count,
				   (double)p->done / unit,
				   (double)p->total / unit, mib ? "MiB" : "KiB");
	}
	else if (p->event == RC_OCI_BLOB_MOUNTED ||
		 p->event == RC_OCI_BLOB_SKIPPED)
		rc_driver_progress(&cp->d->ctx, cp->action_id,
				   "%s: image blob %zu/%zu %s", cp->type,
				   p->index, p->count,
				   p->event == RC_OCI_BLOB_MOUNTED
					   ? "mounted"
					   : "already there");
}

/*
 * Puts ref in the Heroku registry as registry.heroku.com/<app>/<type>:
 * out->config.digest is then the image id to release and out->digest the
 * manifest's digest. A reference already there is resolved. Any other is
 * resolved at its registry (the manifest only) and copied, once per
 * image: when a repository of the Heroku registry already holds that
 * manifest digest (held_image), from there by digest (the same registry:
 * its blobs are mounted, nothing is downloaded; the copy checks that the
 * manifest has that digest, so the image put is the one ref names now),
 * else from ref's registry (blobs already there skipped). Apps released
 * together copy a new image once: the first copies it, the others wait
 * for that copy (img_cv), then mount it; different images are copied at
 * the same time.
 */
static int release_image(rc_driver *d, const rc_action *a, const char *type,
			 const char *ref, rc_oci_image *out)
{
	const char *app = a->name;
	copy_progress cp = {d, a->id, type};
	rc_oci_copy_opts co = {0};
	rc_buf dst = RC_BUF_INIT_MAX(2048), want = RC_BUF_INIT_MAX(1024),
	       from = RC_BUF_INIT_MAX(2048);
	rc_oci_ref r = {0};
	rc_oci_image src = {0};
	rc_oci_copy_stats st = {0};
	char *held = NULL;
	bool copying = false;
	rc_oci *c;
	int rc;

	co.progress = on_copy_progress;
	co.progress_ctx = &cp;
	if ((rc = registry(d, &c)) < 0 || (rc = rc_oci_ref_parse(&r, ref)) < 0)
		goto done;
	rc_buf_printf(&want, "%s/%s", app, type);
	if (!strcmp(r.registry, RC_HEROKU_REGISTRY) &&
	    !strcmp(r.repository, want.ptr)) {
		rc = rc_oci_resolve(c, out, ref, NULL);
		goto done;
	}
	rc_buf_printf(&dst, "%s/%s/%s:", RC_HEROKU_REGISTRY, app, type);
	if (r.tag)
		rc_buf_puts(&dst, r.tag);
	else
		rc_buf_printf(&dst, "reconcile-%.12s", r.digest + 7);
	/* the manifest ref names now (the tag may have moved) */
	if ((rc = rc_oci_resolve(c, &src, ref, NULL)) < 0)
		goto done;
	/* the first app to release a new image copies it from its registry;
	   apps releasing the same image meanwhile wait for that copy, then
	   mount it from there (other images are copied alongside) */
	pthread_mutex_lock(&d->api->img_mu);
	while (!(held = held_image(d, src.digest)) &&
	       json_object_get(d->api->copying, src.digest))
		pthread_cond_wait(&d->api->img_cv, &d->api->img_mu);
	if (!held) {
		json_object_set_new(d->api->copying, src.digest, json_true());
		copying = true;
	}
	pthread_mutex_unlock(&d->api->img_mu);
	if (held) {
		rc_buf_printf(&from, "%s@%s", held, src.digest);
		RC_INFO("heroku: copying %s to %s from %s", ref, dst.ptr,
			from.ptr);
		rc = rc_oci_copy(c, from.ptr, dst.ptr, &co, out, &st);
		if (rc < 0) {
			/* the app holding it may be gone: from the source */
			RC_INFO("heroku: cannot copy from %s (%s): copying "
				"%s from its registry",
				from.ptr, rc_error_last()->message, ref);
			rc_error_clear();
			rc_oci_image_release(out);
			memset(out, 0, sizeof(*out));
			memset(&st, 0, sizeof(st));
			rc_buf_clear(&from);
		}
	}
	if (!from.len) {
		RC_INFO("heroku: copying %s to %s", ref, dst.ptr);
		rc = rc_oci_copy(c, ref, dst.ptr, &co, out, &st);
		if (rc == 0 && strcmp(out->digest, src.digest))
			RC_INFO("heroku: %s changed while it was copied (%s, "
				"then %s)",
				ref, src.digest, out->digest);
	}
	if (rc == 0) {
		RC_INFO("heroku: %s: %u blobs copied (%llu bytes), %u "
			"already there, %u mounted",
			dst.ptr, st.blobs_copied,
			(unsigned long long)st.bytes_copied, st.blobs_skipped,
			st.blobs_mounted);
		rc_buf_truncate(&dst, strlen(RC_HEROKU_REGISTRY) + 1 + want.len);
	}
	pthread_mutex_lock(&d->api->img_mu);
	if (rc == 0)
		json_object_set_new(d->api->held, out->digest,
				    json_string(dst.ptr));
	if (copying) {
		json_object_del(d->api->copying, src.digest);
		pthread_cond_broadcast(&d->api->img_cv);
	}
	pthread_mutex_unlock(&d->api->img_mu);
done:
	if (rc < 0)
		rc_error_prefix("heroku: image '%s' of process type '%s'", ref,
				type);
	free(held);
	rc_oci_image_release(&src);
	rc_oci_ref_release(&r);
	rc_buf_release(&dst);
	rc_buf_release(&want);
	rc_buf_release(&from);
	return rc;
}

/* Records the images of a formation PATCH (ctx: app, images {type: {ref,
 * id, digest, repo}}, NULL) or, once their release succeeded (ctx: app,
 * NULL, images), what the cache says it deployed: the short ids the
 * release's description names. */
static int rec_images(json_t *doc, void *ctx)
{
	const char *app = ((void **)ctx)[0];
	const json_t *images = ((void **)ctx)[1];
	const json_t *deployed = ((void **)ctx)[2];
	json_t *rec = rc_heroku_state_app(doc, app);
	json_t *o, *cache;
	const char *type;
	const json_t *v;

	if (!json_is_object(rec))
		return 0;
	if (images) {
		o = child(rec, "images");
		json_object_foreach(MUT(images), type, v)
			json_object_set(o, type, MUT(v));
		return 1;
	}
	cache = json_object_get(rec, "cache");
	if (!json_is_object(cache))
		return 0;
	o = child(cache, "deployed");
	json_object_foreach(MUT(deployed), type, v) {
		const char *id = sget(v, "id");

		if (!id)
			continue;
		if (!strncmp(id, "sha256:", 7))
			id += 7;
		json_object_set_new(o, type, json_stringn(id, strnlen(id, 12)));
	}
	return 1;
}

static bool changed_below(const rc_action *a, const char *type,
			  const char *field)
{
	rc_buf p = RC_BUF_INIT_MAX(1024);
	bool yes = a->op != RC_OP_UPDATE;

	rc_buf_printf(&p, "/%s/%s", type, field);
	for (size_t i = 0; !yes && i < a->changes.n; i++) {
		const char *c = a->changes.items[i].path;

		yes = !strcmp(c, "") || !strcmp(c, p.ptr) ||
		      (!strncmp(c, p.ptr, strlen(c)) &&
		       (p.ptr[strlen(c)] == '/'));
	}
	rc_buf_release(&p);
	return yes;
}

static int formation_apply(rc_driver *d, const rc_action *a, json_t **result)
{
	rc_buf path = RC_BUF_INIT_MAX(1024);
	json_t *updates = json_array(), *images = json_object(), *reply = NULL;
	const json_t *body = a->op == RC_OP_DELETE ? a->actual : a->desired;
	const char *type;
	json_t *p;
	int rc = 0;

	json_object_foreach(MUT(body), type, p) {
		json_t *u = json_pack("{s:s}", "type", type);
		const char *image = sget(p, "image");

		if (a->op == RC_OP_DELETE) {
			json_object_set_new(u, "quantity", json_integer(0));
		} else {
			if (json_object_get(p, "quantity"))
				json_object_set(u, "quantity",
						json_object_get(p, "quantity"));
			if (sget(p, "size"))
				json_object_set(u, "size",
						json_object_get(p, "size"));
		}
		if (a->op != RC_OP_DELETE && image &&
		    changed_below(a, type, "image")) {
			rc_oci_image img = {0};
			rc_buf repo = RC_BUF_INIT_MAX(1024);

			rc = release_image(d, a, type, image, &img);
			if (rc < 0) {
				rc_oci_image_release(&img);
				json_decref(u);
				goto done;
			}
			rc_buf_printf(&repo, "%s/%s/%s", RC_HEROKU_REGISTRY,
				      a->name, type);
			json_object_set_new(u, "docker_image",
					    json_string(img.config.digest));
			json_object_set_new(
				images, type,
				json_pack("{s:s, s:s, s:s, s:s}", "ref", image,
					  "id", img.config.digest, "digest",
					  img.digest, "repo", repo.ptr));
			rc_buf_release(&repo);
			rc_oci_image_release(&img);
		}
		json_array_append_new(updates, u);
	}
	path_app(&path, a->name, "/formation");
	rc = call_json(d, "PATCH", path.ptr,
		       json_pack("{s:O}", "updates", updates),
		       "update formation", action_loc(d, a->kind, a->name),
		       &reply);
	if (rc < 0)
		goto done;
	if (json_object_size(images) &&
	    (rc = rc_heroku_state_update(d->api, d->state_dir, rec_images,
					 (void *[]){(void *)a->name, images,
						    NULL})) < 0)
		goto done;
	if (json_object_size(images)) {
		json_t *rels = NULL;

		/* the release the images made: waited on by wait(), which
		 * then records what it deployed */
		if ((rc = newest_release(d, a->name, &rels)) < 0)
			goto done;
		pthread_mutex_lock(&d->mu);
		json_object_set_new(
			d->releases, a->key,
			json_pack("{s:O?, s:O}", "id",
				  json_object_get(json_array_get(rels, 0), "id"),
				  "images", images));
		pthread_mutex_unlock(&d->mu);
		json_decref(rels);
	}
	if (a->op != RC_OP_DELETE) {
		json_t *imap = json_object();

		/* what the formation is now, with the images named as
		 * configured */
		*result = rc_heroku_formation_body(reply, NULL);
		json_object_foreach(MUT(a->desired), type, p) {
			json_t *q = json_object_get(*result, type);

			if (q && sget(p, "image"))
				json_object_set(q, "image",
						json_object_get(p, "image"));
		}
		json_decref(imap);
	}
done:
	json_decref(reply);
	json_decref(updates);
	json_decref(images);
	rc_buf_release(&path);
	return rc;
}

/* The last lines of a release's output stream, as "\n    line" lines. */
static void release_output(rc_driver *d, const char *url, rc_buf *out);

static int release_wait(rc_driver *d, const char *app, const char *id,
			long timeout)
{
	rc_buf path = RC_BUF_INIT_MAX(1024);
	long long deadline = rc_local_now_ms() + timeout * 1000;
	long step = 200;
	int rc;

	path_app(&path, app, "/releases/");
	rc_http_url_encode(&path, id);
	for (;;) {
		json_t *rel = NULL;
		const char *st;

		if ((rc = call_json(d, "GET", path.ptr, NULL, "get release",
				    (rc_loc){0}, &rel)) < 0)
			break;
		st = sget(rel, "status");
		if (st && !strcmp(st, "succeeded")) {
			json_decref(rel);
			break;
		}
		if (st && (!strcmp(st, "failed") || !strcmp(st, "expired"))) {
			rc_buf why = RC_BUF_INIT_MAX(1 << 16);

			if (sget(rel, "output_stream_url"))
				release_output(d, sget(rel, "output_stream_url"),
					       &why);
			rc = rc_error_set(RC_ERROR, RC_ECLASS_PLATFORM,
					  "heroku: release v%lld of app '%s' "
					  "%s%s%s",
					  (long long)json_integer_value(
						  json_object_get(rel, "version")),
					  app, st,
					  why.len ? "; the end of its release "
						    "phase:"
						  : "",
					  why.ptr);
			rc_buf_release(&why);
			json_decref(rel);
			break;
		}
		json_decref(rel);
		if (rc_local_now_ms() >= deadline) {
			rc = rc_error_set(RC_ETIMEOUT, RC_ECLASS_PLATFORM,
					  "heroku: release %s of app '%s' is "
					  "still %s after %lds "
					  "(target.wait_timeout)",
					  id, app, st ? st : "pending", timeout);
			break;
		}
		rc_local_sleep_ms(step);
		step = step < 2000 ? step * 2 : 2000;
	}
	rc_buf_release(&path);
	return rc;
}

/* ---------------------------------------------------------------- add-ons */

/* The app an add-on belongs to: the recorded one, else the target's. */
static char *addon_app(rc_driver *d, const char *name, char **id)
{
	json_t *doc = rc_heroku_state_load(d->api, d->state_dir), *rec;
	const char *app;
	char *found = NULL;

	*id = NULL;
	json_object_foreach(json_object_get(doc, "apps"), app, rec) {
		const json_t *x = json_object_get(json_object_get(rec, "addons"),
						  name);

		if (x && rec_ours(d, rec) &&
		    (!found || !strcmp(app, d->env->target.app))) {
			free(found);
			free(*id);
			found = rc_strdup(app);
			*id = sget(x, "id") ? rc_strdup(sget(x, "id")) : NULL;
		}
	}
	json_decref(doc);
	return found ? found : rc_strdup(d->env->target.app);
}

/* Whether the app's add-on ob is the one an earlier attempt of the
 * create of b made: the same service and attachment; when b names no
 * attachment (Heroku picked one), the same service, so long as no other
 * add-on of the configuration could claim it (none of that service names
 * ob's attachment, and b is the only one of that service naming none). */
static bool addon_made_before(const rc_driver *d, const json_t *b,
			      const json_t *ob)
{
	const char *svc = sget(b, "service"), *as = sget(b, "as");
	const char *oas = ob ? sget(ob, "as") : NULL;
	size_t i, unnamed = 0;

	if (!ob || !svc || !sget(ob, "service") ||
	    strcmp(sget(ob, "service"), svc))
		return false;
	if (as)
		return oas && !strcmp(oas, as);
	for (i = 0; i < d->env->naddons; i++) {
		const rc_addon *x = &d->env->addons[i];

		if (!x->kind || strcmp(x->kind, svc))
			continue;
		if (x->as && oas && !strcmp(x->as, oas))
			return false;
		if (!x->as)
			unnamed++;
	}
	return unnamed == 1;
}

static int addon_create(rc_driver *d, const rc_action *a, const char *app,
			json_t **out)
{
	const json_t *b = a->desired;
	const char *as = sget(b, "as");
	rc_buf path = RC_BUF_INIT_MAX(1024), plan = RC_BUF_INIT_MAX(512);
	json_t *list = NULL, *req, *addon = NULL, *v;
	size_t i;
	int rc;

	/* made by an earlier attempt? the same service and attachment */
	path_app(&path, app, "/addons");
	if ((rc = call_json(d, "GET", path.ptr, NULL, "list add-ons",
			    (rc_loc){0}, &list)) < 0)
		goto done;
	json_array_foreach(list, i, v) {
		json_t *ob = rc_heroku_addon_body(v);
		bool same = addon_made_before(d, b, ob);

		json_decref(ob);
		if (same) {
			addon = json_incref(v);
			break;
		}
	}
	if (!addon) {
		rc_buf_printf(&plan, "%s:%s", sget(b, "service"),
			      sget(b, "plan") ? sget(b, "plan") : "");
		if (!sget(b, "plan"))
			rc_buf_truncate(&plan, plan.len - 1);
		req = json_pack("{s:s}", "plan", plan.ptr);
		if (as)
			json_object_set_new(req, "attachment",
					    json_pack("{s:s}", "name", as));
		rc = call_json(d, "POST", path.ptr, req, "create add-on",
			       action_loc(d, a->kind, a->name), &addon);
		if (rc < 0)
			goto done;
	}
	/* without its id the add-on cannot be recorded nor waited on: a
	 * reply of another shape is a failure, not a success */
	if (!sget(addon, "id")) {
		rc = rc_error_set(RC_ERROR, RC_ECLASS_PLATFORM,
				  "heroku: create add-on %s: the reply holds "
				  "no add-on (no \"id\"); the next run finds "
				  "it if it was made",
				  a->name);
		goto done;
	}
	rc = rec_set(d, app, "addons", a->name,
		     json_pack("{s:s?, s:s?}", "id", sget(addon, "id"), "name",
			       sget(addon, "name")));
	*out = addon;
	addon = NULL;
done:
	json_decref(addon);
	json_decref(list);
	rc_buf_release(&path);
	rc_buf_release(&plan);
	return rc;
}

static int addon_delete(rc_driver *d, const char *app, const char *name,
			const char *id)
{
	rc_buf path = RC_BUF_INIT_MAX(1024);
	rc_heroku_reply r;
	int rc;

	if (!id)
		return rc_error_set(RC_ENOTFOUND, RC_ECLASS_STATE,
				    "heroku: add-on '%s' of app '%s' is not in "
				    "reconcile's records",
				    name, app);
	path_app(&path, app, "/addons/");
	rc_http_url_encode(&path, id);
	rc = rc_heroku_call(d->api, "DELETE", path.ptr, NULL, NULL, true, &r);
	if (rc == 0 && r.status != 200 && r.status != 404)
		rc = rc_heroku_fail(d->api, &r, "delete add-on",
				    d->env->target.team, (rc_loc){0});
	rc_heroku_reply_release(&r);
	rc_buf_release(&path);
	if (rc == 0) {
		mark_released(d, app); /* its var removed: a release */
		rc = rec_set(d, app, "addons", name, NULL);
	}
	return rc;
}

/* Polls an add-on until provisioned (gone: until 404 or deprovisioned). */
static int addon_wait(rc_driver *d, const char *id, bool gone, long timeout)
{
	rc_buf path = RC_BUF_INIT_MAX(1024);
	long long deadline = rc_local_now_ms() + timeout * 1000;
	long step = 200;
	int rc;

	rc_buf_puts(&path, "/addons/");
	rc_http_url_encode(&path, id);
	for (;;) {
		rc_heroku_reply r;
		const char *st;

		if ((rc = rc_heroku_call(d->api, "GET", path.ptr, NULL, NULL,
					 true, &r)) < 0)
			break;
		st = sget(r.json, "state");
		if (r.status == 404 && gone) {
			rc_heroku_reply_release(&r);
			break;
		}
		if (r.status != 200) {
			rc = rc_heroku_fail(d->api, &r, "get add-on", NULL,
					    (rc_loc){0});
			rc_heroku_reply_release(&r);
			break;
		}
		if (st && !strcmp(st, gone ? "deprovisioned" : "provisioned")) {
			rc_heroku_reply_release(&r);
			break;
		}
		rc_heroku_reply_release(&r);
		if (rc_local_now_ms() >= deadline) {
			rc = rc_error_set(RC_ETIMEOUT, RC_ECLASS_PLATFORM,
					  "heroku: add-on %s is still %s after "
					  "%lds (target.wait_timeout)",
					  id, st ? st : "?", timeout);
			break;
		}
		rc_local_sleep_ms(step);
		step = step < 2000 ? step * 2 : 2000;
	}
	rc_buf_release(&path);
	return rc;
}

static long wait_timeout(const rc_driver *d)
{
	return d->env->target.wait_timeout > 0 ? d->env->target.wait_timeout
					       : 300;
}

static int addon_apply(rc_driver *d, const rc_action *a, json_t **result)
{
	char *id = NULL, *app = addon_app(d, a->name, &id);
	json_t *addon = NULL;
	int rc = 0;

	if (a->op == RC_OP_DELETE || a->op == RC_OP_REPLACE) {
		rc = addon_delete(d, app, a->name, id);
		if (rc == 0 && a->op == RC_OP_REPLACE)
			rc = addon_wait(d, id, true, wait_timeout(d));
		if (rc < 0 || a->op == RC_OP_DELETE)
			goto done;
	}
	/* create, or find (an earlier attempt's, an adopted one) */
	if (a->op != RC_OP_UPDATE || !id) {
		if ((rc = addon_create(d, a, app, &addon)) < 0)
			goto done;
		free(id);
		id = sget(addon, "id") ? rc_strdup(sget(addon, "id")) : NULL;
	}
	if (a->op == RC_OP_UPDATE && id) {
		rc_buf path = RC_BUF_INIT_MAX(1024), plan = RC_BUF_INIT_MAX(512);
		json_t *ob = addon ? rc_heroku_addon_body(addon) : NULL;

		if (!ob || !sget(ob, "plan") || !sget(a->desired, "plan") ||
		    strcmp(sget(ob, "plan"), sget(a->desired, "plan"))) {
			json_decref(addon);
			addon = NULL;
			path_app(&path, app, "/addons/");
			rc_http_url_encode(&path, id);
			rc_buf_printf(&plan, "%s:%s", sget(a->desired, "service"),
				      sget(a->desired, "plan"));
			rc = call_json(d, "PATCH", path.ptr,
				       json_pack("{s:s}", "plan", plan.ptr),
				       "change the add-on's plan",
				       action_loc(d, a->kind, a->name), &addon);
		}
		json_decref(ob);
		rc_buf_release(&path);
		rc_buf_release(&plan);
	}
	if (rc < 0)
		goto done;
	pthread_mutex_lock(&d->mu);
	json_object_set(d->addon_ids, a->key, json_object_get(addon, "id"));
	pthread_mutex_unlock(&d->mu);
	*result = rc_heroku_addon_body(addon);
	/* the attachment name is the one asked for (config_vars may be empty
	 * until provisioned) */
	if (*result && sget(a->desired, "as"))
		json_object_set(*result, "as", json_object_get(a->desired, "as"));
done:
	json_decref(addon);
	free(app);
	free(id);
	return rc;
}

/* ------------------------------------------------------ pipeline coupling */

static int pipeline_id(rc_driver *d, const char *name, bool create,
		       char **id)
{
	rc_buf path = RC_BUF_INIT_MAX(1024);
	rc_heroku_reply r;
	json_t *p = NULL;
	int rc;

	*id = NULL;
	rc_buf_puts(&path, "/pipelines/");
	rc_http_url_encode(&path, name);
	rc = rc_heroku_call(d->api, "GET", path.ptr, NULL, NULL, true, &r);
	if (rc == 0 && r.status == 200)
		*id = rc_strdup(sget(r.json, "id") ? sget(r.json, "id") : "");
	else if (rc == 0 && r.status != 404)
		rc = rc_heroku_fail(d->api, &r, "get pipeline", NULL,
				    (rc_loc){0});
	rc_heroku_reply_release(&r);
	rc_buf_release(&path);
	if (rc < 0 || *id || !create)
		return rc;
	rc = call_json(d, "POST", "/pipelines", json_pack("{s:s}", "name", name),
		       "create pipeline", d->env->target.loc, &p);
	if (rc == 0)
		*id = rc_strdup(sget(p, "id") ? sget(p, "id") : "");
	json_decref(p);
	return rc;
}

static int rec_pipeline(json_t *doc, void *ctx)
{
	const char **kv = ctx; /* name, id (NULL: forget), project */
	json_t *ps = json_object_get(doc, "pipelines");

	if (kv[1])
		json_object_set_new(ps, kv[0],
				    json_pack("{s:s, s:s}", "id", kv[1],
					      "project", kv[2]));
	else
		json_object_del(ps, kv[0]);
	return 1;
}

/* The app's coupling (new ref) or NULL when it has none. */
static int coupling_get(rc_driver *d, const char *app, json_t **out)
{
	rc_buf path = RC_BUF_INIT_MAX(1024);
	rc_heroku_reply r;
	int rc;

	*out = NULL;
	path_app(&path, app, "/pipeline-couplings");
	rc = rc_heroku_call(d->api, "GET", path.ptr, NULL, NULL, true, &r);
	if (rc == 0 && r.status == 200)
		*out = json_incref(r.json);
	else if (rc == 0 && r.status != 404)
		rc = rc_heroku_fail(d->api, &r, "get the app's pipeline coupling",
				    NULL, (rc_loc){0});
	rc_heroku_reply_release(&r);
	rc_buf_release(&path);
	return rc;
}

static int coupling_delete(rc_driver *d, const char *app)
{
	rc_buf path = RC_BUF_INIT_MAX(1024);
	json_t *c = NULL, *doc, *left = NULL;
	const char *pname = NULL, *k;
	const json_t *x;
	int rc;

	if ((rc = coupling_get(d, app, &c)) < 0 || !c)
		return rc;
	rc_buf_puts(&path, "/pipeline-couplings/");
	rc_http_url_encode(&path, sget(c, "id"));
	{
		rc_heroku_reply r;

		rc = rc_heroku_call(d->api, "DELETE", path.ptr, NULL, NULL,
				    true, &r);
		if (rc == 0 && r.status != 200 && r.status != 404)
			rc = rc_heroku_fail(d->api, &r, "delete the coupling",
					    NULL, (rc_loc){0});
		rc_heroku_reply_release(&r);
	}
	/* the pipeline too, when reconcile made it and nothing is left */
	doc = rc_heroku_state_load(d->api, d->state_dir);
	json_object_foreach(json_object_get(doc, "pipelines"), k, x)
		if (sget(x, "id") &&
		    !strcmp(sget(x, "id"),
			    sget(json_object_get(c, "pipeline"), "id")) &&
		    sget(x, "project") && !strcmp(sget(x, "project"), d->project))
			pname = k;
	if (rc == 0 && pname) {
		rc_buf_clear(&path);
		rc_buf_puts(&path, "/pipelines/");
		rc_http_url_encode(&path, sget(x = json_object_get(
						       json_object_get(doc,
								       "pipelines"),
						       pname),
					       "id"));
		rc_buf_puts(&path, "/pipeline-couplings");
		rc = rc_heroku_list(d->api, path.ptr, "list the pipeline's "
						      "couplings",
				    &left);
		if (rc == 0 && json_array_size(left) == 0) {
			rc_heroku_reply r;

			rc_buf_truncate(&path, path.len -
						       strlen("/pipeline-couplings"));
			rc = rc_heroku_call(d->api, "DELETE", path.ptr, NULL,
					    NULL, true, &r);
			if (rc == 0 && r.status != 200 && r.status != 404)
				rc = rc_heroku_fail(d->api, &r,
						    "delete the pipeline", NULL,
						    (rc_loc){0});
			rc_heroku_reply_release(&r);
			if (rc == 0)
				rc = rc_heroku_state_update(
					d->api, d->state_dir, rec_pipeline,
					(const char *[]){pname, NULL, NULL});
		}
	}
	json_decref(left);
	json_decref(doc);
	json_decref(c);
	rc_buf_release(&path);
	return rc;
}

static int coupling_apply(rc_driver *d, const rc_action *a, json_t **result)
{
	const char *pipeline = sget(a->desired, "pipeline");
	const char *stage = sget(a->desired, "stage");
	json_t *c = NULL, *made = NULL;
	char *pid = NULL;
	int rc;

	if (a->op == RC_OP_DELETE)
		return coupling_delete(d, a->name);
	if ((rc = pipeline_id(d, pipeline, false, &pid)) < 0)
		return rc;
	if (!pid) {
		if ((rc = pipeline_id(d, pipeline, true, &pid)) < 0)
			return rc;
		rc = rc_heroku_state_update(
			d->api, d->state_dir, rec_pipeline,
			(const char *[]){pipeline, pid, d->project});
		if (rc < 0)
			goto done;
	}
	if ((rc = coupling_get(d, a->name, &c)) < 0)
		goto done;
	if (c && strcmp(sget(json_object_get(c, "pipeline"), "id")
				? sget(json_object_get(c, "pipeline"), "id")
				: "",
			pid)) {
		/* coupled to another pipeline: move it */
		if ((rc = coupling_delete(d, a->name)) < 0)
			goto done;
		json_decref(c);
		c = NULL;
	}
	if (c) {
		rc_buf path = RC_BUF_INIT_MAX(1024);

		rc_buf_puts(&path, "/pipeline-couplings/");
		rc_http_url_encode(&path, sget(c, "id"));
		rc = call_json(d, "PATCH", path.ptr,
			       json_pack("{s:s}", "stage", stage),
			       "change the app's pipeline stage",
			       d->env->target.loc, &made);
		rc_buf_release(&path);
	} else {
		rc = call_json(d, "POST", "/pipeline-couplings",
			       json_pack("{s:s, s:s, s:s}", "app", a->name,
					 "pipeline", pid, "stage", stage),
			       "couple the app to its pipeline",
			       d->env->target.loc, &made);
	}
	if (rc == 0)
		*result = json_pack("{s:s, s:s}", "pipeline", pipeline, "stage",
				    sget(made, "stage") ? sget(made, "stage")
							: stage);
done:
	json_decref(c);
	json_decref(made);
	free(pid);
	return rc;
}

static int heroku_apply(rc_driver *d, const rc_action *a, json_t **result)
{
	const char *kind = a->kind;
	int rc = 0;

	*result = NULL;
	if (a->op == RC_OP_RUN)
		return rc_error_set(RC_EUNSUPPORTED, RC_ECLASS_INTERNAL,
				    "heroku: a hook is run, not applied");
	stale(d);
	if (!strcmp(kind, RC_HEROKU_APP)) {
		switch (a->op) {
		case RC_OP_CREATE:
			return app_create(d, a, result);
		case RC_OP_UPDATE:
			return app_update(d, a, result);
		case RC_OP_REPLACE:
			rc = app_delete(d, a->name);
			if (rc == 0)
				rc = app_wait_gone(d, a->name, wait_timeout(d));
			return rc < 0 ? rc : app_create(d, a, result);
		default:
			return app_delete(d, a->name);
		}
	}
	if (!strcmp(kind, RC_HEROKU_CONFIG))
		return config_apply(d, a, result);
	if (!strcmp(kind, RC_HEROKU_FORMATION))
		return formation_apply(d, a, result);
	if (!strcmp(kind, RC_HEROKU_ADDON))
		return addon_apply(d, a, result);
	if (!strcmp(kind, RC_HEROKU_COUPLING))
		return coupling_apply(d, a, result);
	return rc_error_set(RC_EUNSUPPORTED, RC_ECLASS_INTERNAL,
			    "heroku: unknown kind '%s'", kind);
}

/* ---------------------------------------------------------------- wait */

static char *take(rc_driver *d, json_t *map, const char *key)
{
	char *v;

	pthread_mutex_lock(&d->mu);
	v = json_string_value(json_object_get(map, key))
		    ? rc_strdup(json_string_value(json_object_get(map, key)))
		    : NULL;
	json_object_del(map, key);
	pthread_mutex_unlock(&d->mu);
	return v;
}

static int heroku_wait(rc_driver *d, const rc_action *a, long timeout)
{
	char *id;
	int rc = 0;

	if (!strcmp(a->kind, RC_HEROKU_APP) && a->op == RC_OP_DELETE)
		return app_wait_gone(d, a->name, timeout);
	if (!strcmp(a->kind, RC_HEROKU_FORMATION)) {
		json_t *rel;

		pthread_mutex_lock(&d->mu);
		rel = json_incref(json_object_get(d->releases, a->key));
		json_object_del(d->releases, a->key);
		pthread_mutex_unlock(&d->mu);
		if (sget(rel, "id"))
			rc = release_wait(d, a->name, sget(rel, "id"), timeout);
		if (rel && rc == 0) {
			/* the cache: what it deployed, and that it released */
			rc = rc_heroku_state_update(
				d->api, d->state_dir, rec_images,
				(void *[]){(void *)a->name, NULL,
					   json_object_get(rel, "images")});
			mark_released(d, a->name);
		}
		json_decref(rel);
		return rc;
	}
	if (!strcmp(a->kind, RC_HEROKU_ADDON)) {
		if (a->op == RC_OP_DELETE) {
			/* addon_apply forgot it: nothing to look up by
			 * name; the DELETE answered it deprovisioned */
			return 0;
		}
		if ((id = take(d, d->addon_ids, a->key)) != NULL)
			rc = addon_wait(d, id, false, timeout);
		/* provisioned, it set its var: a release */
		if (id && rc == 0)
			mark_released(d, d->env->target.app);
		free(id);
	}
	return rc;
}

/* ----------------------------------------------------------------- run */

typedef struct {
	const char *token;
	rc_buf tail;
	int exit_code;
} log_ctx;

static void keep_tail(rc_buf *tail, const char *line)
{
	rc_buf_puts(tail, line);
	rc_buf_putc(tail, '\n');
	if (tail->len > 4096) {
		const char *cut = strchr(tail->ptr + tail->len - 4096, '\n');
		size_t skip = cut ? (size_t)(cut + 1 - tail->ptr) : 0;

		memmove(tail->ptr, tail->ptr + skip, tail->len - skip + 1);
		tail->len -= skip;
	}
}

static int on_log_line(void *ctx, const char *line, size_t n)
{
	log_ctx *l = ctx;
	int code = rc_heroku_exit_marker(line, l->token);

	(void)n;
	if (code >= 0) {
		l->exit_code = code;
		return 1;
	}
	if (!strstr(line, "reconcile-exit:"))
		keep_tail(&l->tail, line);
	return 0;
}

/* Reads a stream at an absolute URL line by line, through the API's
 * client: its key is not sent to another host (drivers/http.h, url). */
static int read_stream(rc_driver *d, const char *url, long timeout_ms,
		       rc_http_line_fn fn, void *ctx)
{
	rc_http_req q = {0};
	rc_http_resp r;
	rc_http *h = NULL;
	int rc;

	rc_secret_register(url); /* a log session's URL is a credential */
	if ((rc = rc_heroku_url_check(url, "a stream URL")) < 0)
		return rc;
	q.url = url;
	q.timeout_ms = timeout_ms;
	rc_http_resp_init(&r);
	rc = rc_heroku_http(d->api, &h);
	if (rc == 0)
		rc = rc_http_stream(h, &q, &r, fn, ctx);
	if (rc == 0 && r.status >= 300)
		rc = rc_error_set(RC_ERROR, RC_ECLASS_PLATFORM,
				  "heroku: the stream answered %ld", r.status);
	rc_http_resp_release(&r);
	return rc;
}

static int on_output_line(void *ctx, const char *line, size_t n)
{
	(void)n;
	keep_tail(ctx, line);
	return 0;
}

static void release_output(rc_driver *d, const char *url, rc_buf *out)
{
	rc_buf tail = RC_BUF_INIT_MAX(1 << 14);
	const char *p;

	if (read_stream(d, url, 30000, on_output_line, &tail) < 0)
		rc_error_clear();
	rc_redact(&tail);
	/* the last 20 lines */
	p = tail.ptr + tail.len;
	for (int n = 0; p > tail.ptr && n <= 20; p--)
		if (p[-1] == '\n' && ++n > 20)
			break;
	for (const char *s = p; *s;) {
		const char *e = strchr(s, '\n');
		size_t len = e ? (size_t)(e - s) : strlen(s);

		if (len)
			rc_buf_printf(out, "\n    %.*s", (int)len, s);
		s += len + (e ? 1 : 0);
	}
	rc_buf_release(&tail);
}

/* The process type of a hook's service. */
static const char *hook_type(const rc_driver *d, const char *service)
{
	for (size_t i = 0; i < d->env->nservices; i++)
		if (!service || !strcmp(d->env->services[i].name, service))
			return rc_heroku_process_type(&d->env->services[i]);
	return "web";
}

/* A dyno of this hook's run still going, found by the token in its
 * command (new ref), or NULL. */
static int find_dyno(rc_driver *d, const char *app, const char *token,
		     json_t **out)
{
	rc_buf path = RC_BUF_INIT_MAX(1024);
	json_t *list = NULL;
	const json_t *v;
	size_t i;
	int rc;

	*out = NULL;
	path_app(&path, app, "/dynos");
	rc = rc_heroku_list(d->api, path.ptr, "list dynos", &list);
	json_array_foreach(list, i, v) {
		const char *cmd = sget(v, "command"), *st = sget(v, "state");

		if (cmd && strstr(cmd, token) && st &&
		    (!strcmp(st, "starting") || !strcmp(st, "up"))) {
			*out = json_incref(MUT(v));
			break;
		}
	}
	json_decref(list);
	rc_buf_release(&path);
	return rc;
}

/* The token of spec's hook in spec's run (else this one). */
static char *spec_token(const rc_driver *d, const json_t *spec)
{
	const char *run_id = sget(spec, "run_id"), *hook = sget(spec, "name");

	return rc_heroku_hook_token(run_id ? run_id
				    : d->run_id ? d->run_id
						: "none",
				    hook ? hook : "hook");
}

/* Follows dyno (started with token) through log sessions of its own
 * until its exit marker or deadline (rc_local_now_ms()): l->exit_code
 * when it said, res->timed_out when time ran out first; neither when the
 * dyno is gone without saying. */
static int follow_dyno(rc_driver *d, const char *app, const json_t *dyno,
		       const char *token, long long deadline, log_ctx *l,
		       rc_run_result *res)
{
	rc_buf path = RC_BUF_INIT_MAX(1024);
	json_t *sess = NULL;
	int rc = 0;

	while (l->exit_code < 0) {
		long long left = deadline - rc_local_now_ms();

		json_decref(sess);
		sess = NULL;
		if (left <= 0) {
			res->timed_out = true;
			break;
		}
		rc_buf_clear(&path);
		path_app(&path, app, "/log-sessions");
		rc = call_json(d, "POST", path.ptr,
			       json_pack("{s:s, s:b, s:i}", "dyno_name",
					 sget(dyno, "name"), "tail", 1, "lines",
					 1500),
			       "open a log session", (rc_loc){0}, &sess);
		if (rc < 0)
			break;
		rc_buf_clear(&l->tail);
		rc = read_stream(d, sget(sess, "logplex_url")
					 ? sget(sess, "logplex_url")
					 : "",
				 (long)left, on_log_line, l);
		if (rc == RC_ETIMEOUT) {
			rc_error_clear();
			rc = 0;
			res->timed_out = true;
			break;
		}
		if (rc < 0)
			break;
		if (l->exit_code < 0) {
			/* the stream ended: is the dyno still there? */
			json_t *again = NULL;

			if ((rc = find_dyno(d, app, token, &again)) < 0 ||
			    !again)
				break;
			json_decref(again);
			rc_local_sleep_ms(500);
		}
	}
	json_decref(sess);
	rc_buf_release(&path);
	return rc;
}

/* Hook runs are recorded for a week: <state>/heroku/apps/<app>.json
 * "hooks": {token: {hook, started_at}}. */
#define HOOK_RECORD_DAYS 7

typedef struct {
	const char *app, *token, *hook;
} hook_rec;

static int rec_hook_apply(json_t *doc, void *ctx)
{
	hook_rec *h = ctx;
	json_t *rec = rc_heroku_state_app(doc, h->app), *hooks, *v;
	long long old = (long long)time(NULL) - HOOK_RECORD_DAYS * 86400LL;
	char now[RC_TIME_SIZE];
	const char *k;
	void *tmp;

	if (!rec) {
		rec = json_object();
		json_object_set_new(json_object_get(doc, "apps"), h->app, rec);
	}
	hooks = child(rec, "hooks");
	rc_time_now(now);
	json_object_foreach_safe(hooks, tmp, k, v) {
		struct timespec at;

		if (!rc_time_parse(sget(v, "started_at"), &at) ||
		    (long long)at.tv_sec < old)
			json_object_del(hooks, k);
	}
	json_object_set_new(hooks, h->token,
			    json_pack("{s:s, s:s}", "hook", h->hook,
				      "started_at", now));
	return 1;
}

static int rec_hook(rc_driver *d, const char *app, const char *token,
		    const char *hook)
{
	hook_rec h = {app, token, hook};

	return rc_heroku_state_update(d->api, d->state_dir, rec_hook_apply,
				      &h);
}

static int heroku_run(rc_driver *d, const json_t *spec, rc_run_result *res)
{
	const char *where = sget(spec, "where"), *hook = sget(spec, "name");
	const char *app = d->env->target.app;
	long timeout = (long)json_integer_value(json_object_get(spec, "timeout"));
	rc_buf cmd = RC_BUF_INIT_MAX(1 << 16), path = RC_BUF_INIT_MAX(1024);
	log_ctx l = {NULL, RC_BUF_INIT_MAX(1 << 14), -1};
	json_t *dyno = NULL, *env;
	char *token;
	int rc;

	memset(res, 0, sizeof(*res));
	res->exit_code = -1;
	if (where && !strcmp(where, "local"))
		return rc_local_run_hook(d->env, d->config_dir, d->state_dir,
					 spec, res);
	if (timeout <= 0)
		timeout = 600;
	token = spec_token(d, spec);
	l.token = token;
	rc_heroku_hook_command(&cmd, json_object_get(spec, "run"), token);
	if ((rc = find_dyno(d, app, token, &dyno)) < 0)
		goto done;
	if (dyno) {
		RC_INFO("heroku: hook '%s' is already running as dyno %s; "
			"following it",
			hook ? hook : "", sget(dyno, "name"));
	} else {
		/* on disk before the dyno is asked for: hook_status tells a
		 * hook that never started from one whose traces are gone */
		if ((rc = rec_hook(d, app, token, hook ? hook : "")) < 0)
			goto done;
		env = json_object();
		{
			const char *k;
			const json_t *v;

			json_object_foreach(json_object_get(spec, "env"), k, v)
				if (json_is_string(v))
					json_object_set(env, k, MUT(v));
		}
		path_app(&path, app, "/dynos");
		rc = call_json(d, "POST", path.ptr,
			       json_pack("{s:s, s:s, s:b, s:o, s:I}", "command",
					 cmd.ptr, "type",
					 hook_type(d, sget(spec, "service")),
					 "attach", 0, "env", env,
					 "time_to_live", (json_int_t)timeout),
			       "start a one-off dyno", (rc_loc){0}, &dyno);
		if (rc < 0)
			goto done;
		RC_INFO("heroku: hook '%s' runs as dyno %s of app %s",
			hook ? hook : "", sget(dyno, "name"), app);
	}
	rc = follow_dyno(d, app, dyno, token,
			 rc_local_now_ms() + (long long)timeout * 1000, &l,
			 res);
	if (rc == 0 && !res->timed_out && l.exit_code < 0) {
		rc = rc_error_set(RC_ERROR, RC_ECLASS_PLATFORM,
				  "heroku: dyno %s of hook '%s' ended without "
				  "reporting its exit status",
				  sget(dyno, "name"), hook ? hook : "");
		goto done;
	}
	if (rc < 0)
		goto done;
	if (res->timed_out) {
		json_t *st = NULL;

		rc_buf_clear(&path);
		path_app(&path, app, "/dynos/");
		rc_http_url_encode(&path, sget(dyno, "id") ? sget(dyno, "id")
							   : sget(dyno, "name"));
		rc_buf_puts(&path, "/actions/stop");
		if (call_json(d, "POST", path.ptr, json_object(), "stop the dyno",
			      (rc_loc){0}, &st) < 0) {
			RC_WARN("%s", rc_error_last()->message);
			rc_error_clear();
		}
		json_decref(st);
	}
	res->exit_code = l.exit_code;
done:
	rc_redact(&l.tail);
	if (l.tail.len)
		res->output_tail = rc_buf_detach(&l.tail);
	rc_buf_release(&l.tail);
	json_decref(dyno);
	free(token);
	rc_buf_release(&cmd);
	rc_buf_release(&path);
	return rc;
}

/* What the app's log history (Logplex keeps its last 1,500 lines) says of
 * the dyno whose command carried token. */
typedef struct {
	rc_buf lines;  /* every line, for a second pass */
} history_ctx;

static int on_history_line(void *ctx, const char *line, size_t n)
{
	history_ctx *h = ctx;

	/* the newest lines when they are more than the buffer holds */
	if (h->lines.len + n + 1 > h->lines.max) {
		const char *cut = strchr(h->lines.ptr + h->lines.len / 2, '\n');
		size_t skip = cut ? (size_t)(cut + 1 - h->lines.ptr)
				  : h->lines.len;

		memmove(h->lines.ptr, h->lines.ptr + skip,
			h->lines.len - skip + 1);
		h->lines.len -= skip;
	}
	rc_buf_put(&h->lines, line, n);
	rc_buf_putc(&h->lines, '\n');
	return 0;
}

/* The "app[run.N]:" source prefix of a log line ("TIME SOURCE: TEXT"),
 * its length in *len, or NULL. */
static const char *line_source(const char *line, size_t *len)
{
	const char *sp = strchr(line, ' '), *colon;

	if (!sp || !(colon = strstr(sp + 1, ": ")))
		return NULL;
	*len = (size_t)(colon - (sp + 1));
	return sp + 1;
}

static bool is_source(const char *line, const char *kind, const char *dyno)
{
	size_t len, k = strlen(kind), n = strlen(dyno);
	const char *src = line_source(line, &len);

	return src && len == k + n + 2 && !strncmp(src, kind, k) &&
	       src[k] == '[' && !strncmp(src + k + 1, dyno, n) &&
	       src[k + 1 + n] == ']';
}

/* Reads the history: *state SUCCEEDED or FAILED by the exit marker (res
 * gets the dyno's last lines), FAILED by "Process exited with status N"
 * (N > 0) of a dyno killed before the marker, UNKNOWN when the dyno's
 * start is there and neither, NOT_STARTED when the token is nowhere
 * (the caller decides what that means). */
static int hook_history(rc_driver *d, const char *app, const char *token,
			rc_hook_state *state, rc_run_result *res)
{
	history_ctx h = {RC_BUF_INIT_MAX(1 << 20)};
	rc_buf path = RC_BUF_INIT_MAX(1024), tail = RC_BUF_INIT_MAX(1 << 14);
	char dyno[64] = "";
	json_t *sess = NULL;
	const char *line;
	int rc, killed = -1;

	*state = RC_HOOK_NOT_STARTED;
	path_app(&path, app, "/log-sessions");
	rc = call_json(d, "POST", path.ptr,
		       json_pack("{s:b, s:i}", "tail", 0, "lines", 1500),
		       "open a log session", (rc_loc){0}, &sess);
	if (rc == 0)
		rc = read_stream(d, sget(sess, "logplex_url")
					 ? sget(sess, "logplex_url")
					 : "",
				 30000, on_history_line, &h);
	/* the dyno: the last whose start names the token, or whose marker */
	for (line = h.lines.ptr; rc == 0 && *line;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line), slen;
		char *one = rc_strndup(line, len);
		const char *src = line_source(one, &slen);
		int code = rc_heroku_exit_marker(one, token);

		bool start = src && strstr(one, token) &&
			     strstr(one, "Starting process");

		/* a later attempt of the same hook and run wins */
		if (start || (src && !*dyno && code >= 0)) {
			const char *lb = memchr(src, '[', slen);

			if (lb && (size_t)(src + slen - lb - 2) < sizeof(dyno))
				snprintf(dyno, sizeof(dyno), "%.*s",
					 (int)(src + slen - lb - 2), lb + 1);
			rc_buf_clear(&tail);
			killed = -1;
			*state = RC_HOOK_NOT_STARTED;
			res->exit_code = -1;
		}
		if (*dyno && code >= 0) {
			*state = code ? RC_HOOK_FAILED : RC_HOOK_SUCCEEDED;
			res->exit_code = code;
		} else if (*dyno && is_source(one, "app", dyno) &&
			   !strstr(one, "reconcile-exit:")) {
			keep_tail(&tail, one);
		} else if (*dyno && is_source(one, "heroku", dyno) &&
			   strstr(one, "Process exited with status ")) {
			killed = (int)strtol(strstr(one, "with status ") + 12,
					     NULL, 10);
		}
		free(one);
		line += len + (end ? 1 : 0);
	}
	if (rc == 0 && *dyno && *state == RC_HOOK_NOT_STARTED) {
		*state = killed > 0 ? RC_HOOK_FAILED : RC_HOOK_UNKNOWN;
		res->exit_code = killed > 0 ? killed : -1;
	}
	if (rc == 0 && *dyno && *state != RC_HOOK_UNKNOWN) {
		rc_redact(&tail);
		if (tail.len)
			res->output_tail = rc_buf_detach(&tail);
	}
	json_decref(sess);
	rc_buf_release(&h.lines);
	rc_buf_release(&tail);
	rc_buf_release(&path);
	return rc;
}

/* The dyno whose command carries the hook's token, followed while it runs;
 * once it is gone, the app's log history; with no trace in either, the
 * hook's record under <state>/heroku/ (written before run() asks for a
 * dyno): none means it never started, one means its traces are gone
 * (RC_HOOK_UNKNOWN). */
static int heroku_hook_status(rc_driver *d, const json_t *spec, long wait,
			      rc_hook_state *state, rc_run_result *res)
{
	const char *app = d->env->target.app;
	log_ctx l = {NULL, RC_BUF_INIT_MAX(1 << 14), -1};
	json_t *dyno = NULL, *rec;
	char *token;
	int rc;

	if (rc_hook_status_begin(spec, state, res))
		return rc_local_hook_status(d->env, d->config_dir, d->state_dir,
					    spec, wait, state, res);
	token = spec_token(d, spec);
	l.token = token;
	if ((rc = find_dyno(d, app, token, &dyno)) < 0)
		goto done;
	if (dyno) {
		rc = follow_dyno(d, app, dyno, token,
				 rc_local_now_ms() +
					 (long long)(wait > 0 ? wait : 0) * 1000,
				 &l, res);
		if (rc < 0)
			goto done;
		if (l.exit_code >= 0) {
			*state = l.exit_code ? RC_HOOK_FAILED
					     : RC_HOOK_SUCCEEDED;
			res->exit_code = l.exit_code;
			rc_redact(&l.tail);
			if (l.tail.len)
				res->output_tail = rc_buf_detach(&l.tail);
			goto done;
		}
		if (res->timed_out) {
			res->timed_out = false;
			*state = RC_HOOK_RUNNING;
			goto done;
		}
		/* gone while followed: its history says the rest */
	}
	if ((rc = hook_history(d, app, token, state, res)) < 0 ||
	    *state != RC_HOOK_NOT_STARTED)
		goto done;
	rec = rec_get(d, app);
	if (json_object_get(json_object_get(rec, "hooks"), token))
		*state = RC_HOOK_UNKNOWN;
	json_decref(rec);
done:
	rc_buf_release(&l.tail);
	json_decref(dyno);
	free(token);
	return rc;
}

/* ------------------------------------------------------------ registry */

const rc_driver_ops rc_driver_heroku = {
	.name = RC_HEROKU_DRIVER,
	.max_concurrency = 4,
	.shared_open = heroku_shared_open,
	.shared_close = heroku_shared_close,
	.open = heroku_open,
	.close = heroku_close,
	.expand = heroku_expand,
	.observe = heroku_observe,
	.normalize = rc_heroku_normalize,
	.immutable = rc_heroku_immutable,
	.apply = heroku_apply,
	.wait = heroku_wait,
	.run = heroku_run,
	.hook_status = heroku_hook_status,
};
