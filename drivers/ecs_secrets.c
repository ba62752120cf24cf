/*
 * The ECS driver's secrets in AWS Secrets Manager: see
 * drivers/ecs_secrets.h and docs/drivers/ecs.md.
 */
#include <pthread.h>

#include "drivers/ecs_secrets.h"

#include "drivers/driver.h"
#include "drivers/ecs_map.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/codec.h"
#include "reconciler/base/log.h"
#include "schema/secrets.h"

#define SECRET_PREFIX "reconcile/"

static const char *sget(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

char *rc_ecs_secret_name(const char *project, const char *env,
			 const char *name)
{
	rc_buf b = RC_BUF_INIT_MAX(2048);

	rc_buf_printf(&b, SECRET_PREFIX "%s/%s/%s", project, env, name);
	return rc_buf_detach(&b);
}

static void add_key_dep(rc_resource *r, const char *env, const char *kind,
			const char *name)
{
	rc_buf k = RC_BUF_INIT_MAX(2048);

	rc_buf_printf(&k, "%s/%s/%s", env, kind, name);
	rc_resource_add_dep(r, k.ptr);
	rc_buf_release(&k);
}

static rc_resource *find(const rc_resource_set *set, const char *env,
			 const char *kind, const char *name)
{
	rc_buf k = RC_BUF_INIT_MAX(2048);
	rc_resource *r;

	rc_buf_printf(&k, "%s/%s/%s", env, kind, name);
	r = rc_resource_set_find(set, k.ptr);
	rc_buf_release(&k);
	return r;
}

int rc_ecs_secrets_expand(const rc_env *env, const char *project,
			  const char *config_dir, rc_resource_set *out)
{
	json_t *refs = json_object(); /* NAME -> valueFrom */
	rc_buf all = RC_BUF_INIT_MAX(1 << 20);
	size_t nmanaged = 0, i;
	int rc = 0;

	for (i = 0; i < env->nsecrets; i++) {
		const rc_secret *s = &env->secrets[i];
		json_t *value;
		char *v = NULL, *sm_name;
		rc_resource *r;

		if (s->kind == RC_SECRET_AWS) {
			json_object_set_new(refs, s->name, json_string(s->ref));
			continue;
		}
		if ((rc = rc_secret_value(&v, s, config_dir)) < 0) {
			rc_error_prefix("ecs: secret '%s' (%s:%d:%d)", s->name,
					s->loc.file ? s->loc.file : "?",
					s->loc.line, s->loc.col);
			goto done;
		}
		value = rc_secret_json(s, v);
		explicit_bzero(v, strlen(v));
		free(v);
		sm_name = rc_ecs_secret_name(project, env->name, s->name);
		/* the service's digest is over the digests, never values */
		rc_buf_printf(&all, "%s=%s\n", s->name, sget(value, "$secret"));
		nmanaged++;
		json_object_set_new(refs, s->name, json_string(sm_name));
		r = rc_resource_set_add(out, env->name, RC_ECS_DRIVER,
					RC_ECS_SECRET, s->name,
					json_pack("{s:s, s:o}", "name", sm_name,
						  "value", value));
		r->loc = s->loc;
		free(sm_name);
	}
	for (i = 0; i < env->nservices; i++) {
		const char *svc = env->services[i].name;
		rc_resource *td = find(out, env->name, RC_ECS_TASKDEF, svc);
		rc_resource *sr = find(out, env->name, RC_ECS_SERVICE, svc);
		json_t *c = td ? json_object_get(json_object_get(td->body,
								 "containers"),
						 svc)
			       : NULL;

		if (c && json_object_size(refs))
			json_object_set(c, "secrets", refs);
		for (size_t j = 0; j < env->nsecrets; j++) {
			if (env->secrets[j].kind == RC_SECRET_AWS)
				continue;
			if (td)
				add_key_dep(td, env->name, RC_ECS_SECRET,
					    env->secrets[j].name);
			if (sr)
				add_key_dep(sr, env->name, RC_ECS_SECRET,
					    env->secrets[j].name);
		}
		if (sr && nmanaged) {
			char digest[RC_SHA256_DIGEST_LEN + 1];

			rc_codec_sha256_digest(digest, all.ptr, all.len);
			json_object_set_new(sr->body, "secrets",
					    json_pack("{s:s, s:s}", "$secret",
						      digest, "ref", "secrets"));
		}
	}
done:
	json_decref(refs);
	rc_buf_release(&all);
	return rc;
}

/* "arn:<p>:secretsmanager:<r>:<a>:secret:reconcile/...-XXXXXX" -> the
 * name (new), or NULL for any other value. */
static char *fold_arn(const char *v)
{
	const char *s = v ? strstr(v, ":secret:" SECRET_PREFIX) : NULL;
	size_t n;

	if (!s || strncmp(v, "arn:", 4))
		return NULL;
	s += 8;
	n = strlen(s);
	if (n < 7 + strlen(SECRET_PREFIX) || s[n - 7] != '-' ||
	    strchr(s, ':'))
		return NULL;
	for (size_t i = n - 6; i < n; i++)
		if (!isalnum((unsigned char)s[i]))
			return NULL;
	return rc_strndup(s, n - 7);
}

void rc_ecs_secrets_normalize(json_t *container)
{
	json_t *sec = json_object_get(container, "secrets"), *e, *m;
	const char *k;
	size_t i;

	if (json_is_array(sec)) {
		m = json_object();
		json_array_foreach(sec, i, e)
			if (sget(e, "name") && sget(e, "valueFrom"))
				json_object_set(m, sget(e, "name"),
						json_object_get(e, "valueFrom"));
		json_object_set_new(container, "secrets", m);
		sec = m;
	}
	json_object_foreach(sec, k, e) {
		char *name = fold_arn(json_string_value(e));

		if (name)
			json_object_set_new(sec, k, json_string(name));
		free(name);
	}
}

void rc_ecs_secrets_service_observed(json_t *body, const json_t *tags)
{
	const json_t *t;
	size_t i;

	json_array_foreach(tags, i, t)
		if (sget(t, "key") && sget(t, "value") &&
		    !strcmp(sget(t, "key"), RC_ECS_TAG_SECRETS_HASH))
			json_object_set_new(body, "secrets",
					    json_pack("{s:s, s:s}", "$secret",
						      sget(t, "value"), "ref",
						      "secrets"));
}

bool rc_ecs_secrets_changed(const rc_action *a)
{
	for (size_t i = 0; i < a->changes.n; i++)
		if (!strncmp(a->changes.items[i].path, "/secrets", 8))
			return true;
	return false;
}

json_t *rc_ecs_secrets_service_tag(const json_t *body)
{
	const char *d = sget(json_object_get(body, "secrets"), "$secret");

	return d ? json_pack("{s:s, s:s}", "key", RC_ECS_TAG_SECRETS_HASH,
			     "value", d)
		 : NULL;
}

/* ------------------------------------------------------------- calls */

struct rc_ecs_sm {
	rc_ecs_sm_call_fn call;
	void *ctx;
	char *project, *config_dir, *prefix;
	const rc_env *env;
	const rc_driver_ctx *dctx; /* for notes; may be NULL */
	pthread_mutex_t mu;
	json_t *arns; /* secret name -> ARN */
};

rc_ecs_sm *rc_ecs_sm_new(rc_ecs_sm_call_fn call, void *ctx,
			 const rc_driver_ctx *dctx, const char *project,
			 const rc_env *env, const char *config_dir)
{
	rc_ecs_sm *sm = rc_calloc(1, sizeof(*sm));

	sm->dctx = dctx;
	sm->call = call;
	sm->ctx = ctx;
	sm->project = rc_strdup(project);
	sm->config_dir = rc_strdup(config_dir);
	sm->prefix = rc_ecs_secret_name(project, env->name, "");
	sm->env = env;
	sm->arns = json_object();
	pthread_mutex_init(&sm->mu, NULL);
	return sm;
}

void rc_ecs_sm_free(rc_ecs_sm *sm)
{
	if (!sm)
		return;
	json_decref(sm->arns);
	pthread_mutex_destroy(&sm->mu);
	free(sm->project);
	free(sm->config_dir);
	free(sm->prefix);
	free(sm);
}

static void remember_arn(rc_ecs_sm *sm, const char *name, const char *arn)
{
	if (!name || !arn)
		return;
	pthread_mutex_lock(&sm->mu);
	json_object_set_new(sm->arns, name, json_string(arn));
	pthread_mutex_unlock(&sm->mu);
}

static char *known_arn(rc_ecs_sm *sm, const char *name)
{
	char *arn;

	pthread_mutex_lock(&sm->mu);
	arn = sget(sm->arns, name) ? rc_strdup(sget(sm->arns, name)) : NULL;
	pthread_mutex_unlock(&sm->mu);
	return arn;
}

static const char *tag(const json_t *tags, const char *key)
{
	const json_t *t;
	size_t i;

	json_array_foreach(tags, i, t)
		if (sget(t, "Key") && !strcmp(sget(t, "Key"), key))
			return sget(t, "Value");
	return NULL;
}

static bool ours(const rc_ecs_sm *sm, const json_t *tags)
{
	const char *p = tag(tags, RC_ECS_TAG_PROJECT);
	const char *e = tag(tags, RC_ECS_TAG_ENV);

	return p && e && !strcmp(p, sm->project) && !strcmp(e, sm->env->name);
}

static json_t *tags_json(const rc_ecs_sm *sm, const char *hash)
{
	return json_pack("[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}]", "Key",
			 RC_ECS_TAG_PROJECT, "Value", sm->project, "Key",
			 RC_ECS_TAG_ENV, "Value", sm->env->name, "Key",
			 RC_ECS_TAG_VALUE_HASH, "Value", hash);
}

int rc_ecs_secrets_observe(rc_ecs_sm *sm, const rc_resource_set *desired,
			   rc_resource_set *out)
{
	char *next = NULL;
	json_t *r = NULL, *s;
	size_t i;
	int rc = 0;

	do {
		json_t *body = json_pack(
			"{s:i, s:[{s:s, s:[s]}, {s:s, s:[s]}]}", "MaxResults",
			100, "Filters", "Key", "name", "Values", sm->prefix,
			"Key", "tag-key", "Values", RC_ECS_TAG_PROJECT);

		if (next)
			json_object_set_new(body, "NextToken", json_string(next));
		free(next);
		next = NULL;
		json_decref(r);
		r = NULL;
		if ((rc = sm->call(sm->ctx, "ListSecrets", body, (rc_loc){0},
				   &r)) < 0)
			break;
		json_array_foreach(json_object_get(r, "SecretList"), i, s) {
			const char *name = sget(s, "Name");
			const char *hash = tag(json_object_get(s, "Tags"),
					       RC_ECS_TAG_VALUE_HASH);
			const rc_resource *want;
			const char *ref;

			if (!name || strncmp(name, sm->prefix, strlen(sm->prefix)) ||
			    sget(s, "DeletedDate") ||
			    json_is_number(json_object_get(s, "DeletedDate")) ||
			    !ours(sm, json_object_get(s, "Tags")))
				continue;
			remember_arn(sm, name, sget(s, "ARN"));
			name += strlen(sm->prefix);
			want = desired ? find(desired, sm->env->name,
					      RC_ECS_SECRET, name)
				       : NULL;
			ref = want ? sget(json_object_get(want->body, "value"),
					  "ref")
				   : NULL;
			if (!want && sm->dctx)
				rc_driver_note(sm->dctx, sm->env->name,
					       "ecs: secret %s is no longer "
					       "declared; when it is deleted, "
					       "Secrets Manager keeps it for a "
					       "%d-day recovery window (AWS's "
					       "default), and an apply within "
					       "it restores it",
					       sget(s, "Name"),
					       RC_ECS_SECRET_RECOVERY_DAYS);
			rc_resource_set_add(
				out, sm->env->name, RC_ECS_DRIVER, RC_ECS_SECRET,
				name,
				json_pack("{s:s, s:{s:s, s:s}}", "name",
					  sget(s, "Name"), "value", "$secret",
					  hash ? hash : "", "ref",
					  ref ? ref : "unknown"));
		}
		if (sget(r, "NextToken"))
			next = rc_strdup(sget(r, "NextToken"));
	} while (next);
	free(next);
	json_decref(r);
	return rc;
}

/* The ClientRequestToken of an action's value: 64 hex digits of its id
 * and the value's digest, the same for every attempt of it. */
static void request_token(char out[RC_SHA256_HEX_LEN + 1], const rc_action *a,
			  const char *hash)
{
	rc_buf b = RC_BUF_INIT_MAX(4096);

	rc_buf_printf(&b, "%s\n%s", a->id, hash);
	rc_codec_sha256_hex(out, b.ptr, b.len);
	rc_buf_release(&b);
}

static rc_loc secret_loc(const rc_ecs_sm *sm, const char *name)
{
	for (size_t i = 0; i < sm->env->nsecrets; i++)
		if (!strcmp(sm->env->secrets[i].name, name))
			return sm->env->secrets[i].loc;
	return sm->env->target.loc;
}

/* The value goes in as SecretString; the call wipes it when it is done. */
static void put_value(json_t *body, const char *value)
{
	json_object_set_new(body, "SecretString", json_string(value));
}

static int store(rc_ecs_sm *sm, const rc_action *a)
{
	const char *name = sget(a->desired, "name");
	const char *hash = sget(json_object_get(a->desired, "value"), "$secret");
	rc_loc loc = secret_loc(sm, a->name);
	char token[RC_SHA256_HEX_LEN + 1], *value = NULL;
	json_t *d = NULL, *r = NULL, *req;
	int rc;

	if (!name || !hash)
		return rc_error_set(RC_EINVALID, RC_ECLASS_INTERNAL,
				    "ecs: secret %s has no name or digest",
				    a->name);
	rc = sm->call(sm->ctx, "DescribeSecret",
		      json_pack("{s:s}", "SecretId", name), loc, &d);
	if (rc == RC_ENOTFOUND) {
		rc_error_clear();
		rc = 0;
	}
	if (rc < 0)
		return rc;
	if (d && !ours(sm, json_object_get(d, "Tags"))) {
		rc = rc_error_set_at(
			RC_ECONFLICT, loc,
			"ecs: the secret %s exists in Secrets Manager without "
			"reconcile's tags (%s, %s): it was made outside "
			"reconcile, which does not take it over; delete it, or "
			"give it as {aws_secret: ARN}",
			name, RC_ECS_TAG_PROJECT, RC_ECS_TAG_ENV);
		goto done;
	}
	if ((rc = rc_secret_resolve(&value, json_object_get(a->desired, "value"),
				    sm->env, sm->config_dir)) < 0)
		goto done;
	/* the value stored must be the one the tag's digest says (a saved
	   plan, a rollback to an older value): else plan again */
	r = rc_secret_json_observed("", value);
	if (strcmp(sget(r, "$secret") ? sget(r, "$secret") : "", hash)) {
		rc = rc_error_set_at(RC_ECONFLICT, loc,
				     "ecs: the value of secret %s is not the one "
				     "this plan was made with: plan again",
				     a->name);
		goto done;
	}
	json_decref(r);
	r = NULL;
	request_token(token, a, hash);
	if (!d) {
		req = json_pack("{s:s, s:s, s:o}", "Name", name,
				"ClientRequestToken", token, "Tags",
				tags_json(sm, hash));
		put_value(req, value);
		rc = sm->call(sm->ctx, "CreateSecret", req, loc, &r);
		if (rc == 0)
			remember_arn(sm, name, sget(r, "ARN"));
		goto done;
	}
	remember_arn(sm, name, sget(d, "ARN"));
	if (json_object_get(d, "DeletedDate")) {
		/* scheduled for deletion by an earlier destroy: back */
		RC_INFO("ecs: secret %s was scheduled for deletion: restored",
			name);
		if ((rc = sm->call(sm->ctx, "RestoreSecret",
				   json_pack("{s:s}", "SecretId", name), loc,
				   NULL)) < 0)
			goto done;
	}
	req = json_pack("{s:s, s:s}", "SecretId", name, "ClientRequestToken",
			token);
	put_value(req, value);
	if ((rc = sm->call(sm->ctx, "PutSecretValue", req, loc, NULL)) < 0)
		goto done;
	rc = sm->call(sm->ctx, "TagResource",
		      json_pack("{s:s, s:o}", "SecretId", name, "Tags",
				tags_json(sm, hash)),
		      loc, NULL);
done:
	if (value) {
		explicit_bzero(value, strlen(value));
		free(value);
	}
	json_decref(d);
	json_decref(r);
	return rc;
}

int rc_ecs_secret_apply(rc_ecs_sm *sm, const rc_action *a)
{
	const char *name;
	char *owned = NULL;
	int rc;

	if (a->op != RC_OP_DELETE)
		return store(sm, a);
	name = sget(a->actual, "name");
	if (!name)
		name = owned = rc_ecs_secret_name(sm->project, sm->env->name,
						  a->name);
	rc = sm->call(sm->ctx, "DeleteSecret",
		      json_pack("{s:s, s:i}", "SecretId", name,
				"RecoveryWindowInDays",
				RC_ECS_SECRET_RECOVERY_DAYS),
		      (rc_loc){0}, NULL);
	if (rc == RC_ENOTFOUND) {
		rc_error_clear();
		rc = 0;
	} else if (rc == 0) {
		RC_INFO("ecs: secret %s is scheduled for deletion in %d days "
			"(the recovery window): an apply before then restores "
			"it",
			name, RC_ECS_SECRET_RECOVERY_DAYS);
	}
	free(owned);
	return rc;
}

static int arn_of(rc_ecs_sm *sm, const char *name, rc_loc loc, char **out)
{
	json_t *d = NULL;
	int rc;

	if ((*out = known_arn(sm, name)))
		return 0;
	rc = sm->call(sm->ctx, "DescribeSecret",
		      json_pack("{s:s}", "SecretId", name), loc, &d);
	if (rc == 0 && sget(d, "ARN")) {
		*out = rc_strdup(sget(d, "ARN"));
		remember_arn(sm, name, *out);
	} else if (rc == 0 || rc == RC_ENOTFOUND) {
		rc_error_clear();
		rc = rc_error_set_at(RC_ENOTFOUND, loc,
				     "ecs: the secret %s is not in Secrets "
				     "Manager",
				     name);
	}
	json_decref(d);
	return rc;
}

int rc_ecs_secrets_request(rc_ecs_sm *sm, json_t *req, rc_loc loc)
{
	json_t *c, *v;
	const char *k;
	size_t i;

	json_array_foreach(json_object_get(req, "containerDefinitions"), i, c) {
		json_t *list = json_array();

		json_object_foreach(json_object_get(c, "secrets"), k, v) {
			const char *from = json_string_value(v);
			char *arn = NULL;

			if (from && strncmp(from, "arn:", 4)) {
				int rc = sm ? arn_of(sm, from, loc, &arn)
					    : rc_error_set_at(
						      RC_EINVALID, loc,
						      "ecs: secret %s: no "
						      "Secrets Manager client",
						      k);

				if (rc < 0) {
					json_decref(list);
					return rc;
				}
			}
			json_array_append_new(list,
					      json_pack("{s:s, s:s}", "name", k,
							"valueFrom",
							arn ? arn : from ? from : ""));
			free(arn);
		}
		if (json_array_size(list))
			json_object_set_new(c, "secrets", list);
		else
			json_decref(list);
	}
	return 0;
}
