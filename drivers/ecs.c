/*
 * The ECS driver: an environment is one cluster, and per service one task
 * definition family and one service, through the ECS JSON 1.1 API signed
 * with SigV4 (drivers/aws_sigv4.h, credentials from drivers/aws_creds.h).
 * Ownership is ECS tags (reconcile:project, reconcile:environment).
 * Hooks with `where: target` are RunTask of the service's task definition.
 * The mapping is drivers/ecs_map.c; docs/drivers/ecs.md is the user's view.
 */
#include <pthread.h>

#include "drivers/aws_creds.h"
#include "drivers/aws_error.h"
#include "drivers/aws_sigv4.h"
#include "drivers/driver.h"
#include "drivers/ecs_cache.h"
#include "drivers/ecs_map.h"
#include "drivers/ecs_secrets.h"
#include "drivers/http.h"
#include "drivers/proc.h"
#include "reconciler/base/log.h"

#define ECS_TARGET_PREFIX "AmazonEC2ContainerServiceV20141113."
#define ECS_MAX_THROTTLE_RETRIES 6
#define ECS_MAX_CLIENTS 8

/* AWS holds RegisterTaskDefinition to about one call a second per
 * account and region: the client spaces its calls a little more (ms
 * apart), so that a call held up on its way does not arrive early. */
#define ECS_REGISTER_INTERVAL_MS 1200

/* An AWS API the driver calls: ECS, and Secrets Manager for the secrets.
 * A client is per region and API, with the same credentials. */
typedef struct {
	const char *endpoint_id;     /* AWS_ENDPOINT_URL_<id> */
	const char *endpoint_prefix; /* <prefix>.<region>.amazonaws.com */
	const char *signing;         /* SigV4's service */
	const char *target;          /* X-Amz-Target's prefix */
	const char *iam;             /* the IAM actions' prefix */
} ecs_api;

static const ecs_api api_ecs = {"ECS", "ecs", "ecs", ECS_TARGET_PREFIX,
				"ecs"};
static const ecs_api api_sm = {"SECRETS_MANAGER", "secretsmanager",
			       "secretsmanager", "secretsmanager.",
			       "secretsmanager"};

typedef struct {
	char *region, *endpoint;
	const ecs_api *api;
	rc_aws_provider *prov; /* the shared one */
	rc_aws_signer *signer;
	rc_http *http;
	pthread_mutex_t reg_mu;
	long long reg_next_ms; /* when the next RegisterTaskDefinition may go */
} ecs_client;

/* Waits for RegisterTaskDefinition's turn: calls from every environment
 * of the run (one client per region) are spaced 1.2 s apart, so a
 * deploy of six services is not throttled by AWS into retries. */
static void register_turn(ecs_client *c)
{
	long long now, wait;

	pthread_mutex_lock(&c->reg_mu);
	now = rc_local_now_ms();
	wait = c->reg_next_ms > now ? c->reg_next_ms - now : 0;
	c->reg_next_ms = now + wait + ECS_REGISTER_INTERVAL_MS;
	pthread_mutex_unlock(&c->reg_mu);
	if (wait > 0) {
		RC_DEBUG("ecs: RegisterTaskDefinition waits %lld ms for its "
			 "turn (about one a second)",
			 wait);
		rc_local_sleep_ms(wait);
	}
}

typedef struct {
	pthread_mutex_t mu;
	rc_aws_provider *prov;
	char *prov_err;
	ecs_client *clients[ECS_MAX_CLIENTS];
	size_t nclients;
} ecs_shared;

struct rc_driver {
	const rc_env *env;
	char *project, *config_dir, *run_id, *cluster;
	char *state_dir; /* <state>, for the revision cache; may be NULL */
	ecs_shared *shared;
	bool own_shared;
	ecs_client *c;
	ecs_client *smc; /* Secrets Manager, made on first use (under mu) */
	rc_ecs_sm *sm;
	rc_driver_ctx ctx;
	pthread_mutex_t mu;
	json_t *waits; /* action key -> task definition ARN to wait for */
	json_t *td_arns; /* service -> the revision its task definition's
			    apply chose (registered or reused) */
};

static const char *sget(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* ------------------------------------------------------------- client */

/* The sign callback: fresh credentials (refreshed by the provider), then
 * SigV4. */
static int ecs_sign(void *ctx, const rc_http_req *req, const char *url,
		    struct curl_slist **headers)
{
	ecs_client *c = ctx;
	rc_aws_creds cr = {0};
	int rc = rc_aws_provider_get(c->prov, &cr);

	if (rc == 0) {
		rc_aws_credentials k = {cr.access_key_id, cr.secret_access_key,
					cr.session_token};

		rc = rc_aws_signer_set_credentials(c->signer, &k);
	}
	rc_aws_creds_release(&cr);
	if (rc < 0)
		return rc;
	return rc_aws_signer_http_sign(c->signer, req, url, headers);
}

static void client_free(ecs_client *c)
{
	if (!c)
		return;
	rc_http_close(c->http);
	rc_aws_signer_free(c->signer);
	pthread_mutex_destroy(&c->reg_mu);
	free(c->region);
	free(c->endpoint);
	free(c);
}

static int client_new(ecs_client **out, rc_aws_provider *prov,
		      const char *region, const ecs_api *api)
{
	ecs_client *c = rc_calloc(1, sizeof(*c));
	rc_aws_signer_opts so = {0};
	rc_aws_creds cr = {0};
	rc_http_opts ho;
	const char *ca = NULL;
	int rc;

	*out = NULL;
	pthread_mutex_init(&c->reg_mu, NULL);
	c->region = rc_strdup(region);
	c->api = api;
	c->prov = prov;
	if ((rc = rc_aws_endpoint_resolve(&c->endpoint, api->endpoint_id,
					  api->endpoint_prefix, region)) < 0)
		goto fail;
	if ((rc = rc_aws_ca_bundle(&ca)) < 0)
		goto fail;
	if ((rc = rc_aws_provider_get(prov, &cr)) < 0)
		goto fail;
	so.region = region;
	so.service = api->signing;
	so.creds.access_key_id = cr.access_key_id;
	so.creds.secret_access_key = cr.secret_access_key;
	so.creds.session_token = cr.session_token;
	rc = rc_aws_signer_new(&c->signer, &so);
	rc_aws_creds_release(&cr);
	if (rc < 0)
		goto fail;
	rc_http_opts_init(&ho);
	ho.base_url = c->endpoint;
	ho.ca_file = ca;
	ho.sign = ecs_sign;
	ho.sign_ctx = c;
	ho.accept = "application/json";
	ho.user_agent = "reconcile";
	ho.driver = "ecs";
	ho.service = api == &api_sm ? "Secrets Manager" : "ECS";
	ho.max_retries = RC_HTTP_MAX_RETRIES;
	ho.qps = 20;
	ho.burst = 40;
	if ((rc = rc_http_open(&c->http, &ho)) < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	client_free(c);
	return rc;
}

static int shared_new(ecs_shared **out)
{
	ecs_shared *s = rc_calloc(1, sizeof(*s));
	int rc;

	pthread_mutex_init(&s->mu, NULL);
	rc = rc_aws_provider_open(&s->prov, NULL);
	if (rc < 0) {
		/* reported at open, by the environment that needs it */
		s->prov_err = rc_strdup(rc_error_last()->message
						? rc_error_last()->message
						: "no AWS credentials");
		rc_error_clear();
	}
	*out = s;
	return 0;
}

static void shared_free(ecs_shared *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nclients; i++)
		client_free(s->clients[i]);
	rc_aws_provider_close(s->prov);
	free(s->prov_err);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* The run's client for a region and API, made on first use. */
static int shared_client(ecs_shared *s, const char *region,
			 const ecs_api *api, ecs_client **out)
{
	int rc = 0;

	pthread_mutex_lock(&s->mu);
	*out = NULL;
	for (size_t i = 0; i < s->nclients; i++)
		if (!strcmp(s->clients[i]->region, region) &&
		    s->clients[i]->api == api)
			*out = s->clients[i];
	if (!*out) {
		if (!s->prov)
			rc = rc_error_set(RC_EAUTH, RC_ECLASS_PLATFORM,
					  "ecs: %s", s->prov_err);
		else if (s->nclients == ECS_MAX_CLIENTS)
			rc = rc_error_set(RC_EUNSUPPORTED, RC_ECLASS_INTERNAL,
					  "ecs: more than %d regions in one run",
					  ECS_MAX_CLIENTS);
		else if ((rc = client_new(out, s->prov, region, api)) == 0)
			s->clients[s->nclients++] = *out;
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* --------------------------------------------------------------- calls */

/* Wipes a secret value (Secrets Manager's SecretString) before the
 * request that carried it is freed. */
static void wipe_value(json_t *body)
{
	json_t *v = json_object_get(body, "SecretString");

	if (json_is_string(v))
		explicit_bzero((char *)(uintptr_t)json_string_value(v),
			       json_string_length(v));
}

/* One call of c's API: body (stolen) to *out (new ref, may be NULL). loc
 * is where the configuration says what the call is about, for refusals.
 * RC_ENOTFOUND for ResourceNotFoundException. */
static int aws_call(ecs_client *c, const char *op, json_t *body, rc_loc loc,
		    json_t **out)
{
	char *payload = json_dumps(body, JSON_COMPACT);
	rc_buf target = RC_BUF_INIT_MAX(256);
	const char *hdrs[2];
	rc_http_req req = {0};
	int rc = 0;

	wipe_value(body);
	json_decref(body);
	if (out)
		*out = NULL;
	rc_buf_printf(&target, "X-Amz-Target: %s%s", c->api->target, op);
	hdrs[0] = target.ptr;
	hdrs[1] = NULL;
	req.method = "POST";
	req.path = "/";
	req.content_type = "application/x-amz-json-1.1";
	req.body = payload;
	req.body_len = strlen(payload);
	req.headers = hdrs;
	/* reads and idempotent writes may be sent again */
	req.idempotent = strncmp(op, "Create", 6) && strcmp(op, "RunTask") &&
			 strncmp(op, "Register", 8);
	for (int attempt = 0;; attempt++) {
		rc_http_resp resp;
		json_t *j;

		rc_http_resp_init(&resp);
		rc = rc_http_do(c->http, &req, &resp);
		if (rc < 0) {
			rc_http_resp_release(&resp);
			break;
		}
		j = json_loadb(resp.body.ptr ? resp.body.ptr : "",
			       resp.body.len, 0, NULL);
		if (resp.status >= 200 && resp.status < 300 && j) {
			if (out)
				*out = j;
			else
				json_decref(j);
			rc_http_resp_release(&resp);
			rc = 0;
			break;
		}
		if (rc_aws_error_retryable(resp.status, j) &&
		    attempt < ECS_MAX_THROTTLE_RETRIES) {
			long ms = 200L << attempt;
			const char *type = rc_aws_error_type(j);

			if (ms > 5000)
				ms = 5000;
			ms = ms / 2 + rc_local_now_ms() % (ms / 2 + 1);
			RC_DEBUG("ecs: %s: %s, again in %ld ms", op,
				 type[0] ? type : "error", ms);
			json_decref(j);
			rc_http_resp_release(&resp);
			rc_local_sleep_ms(ms);
			continue;
		}
		rc = rc_aws_reply_error(
			op, c->api->iam, resp.status, j, resp.body.len,
			rc_http_resp_header(&resp, "Content-Type"),
			rc_http_resp_header(&resp, "x-amzn-RequestId"), loc);
		json_decref(j);
		rc_http_resp_release(&resp);
		break;
	}
	explicit_bzero(payload, strlen(payload));
	free(payload);
	rc_buf_release(&target);
	return rc;
}

static int ecs_call(rc_driver *d, const char *op, json_t *body, rc_loc loc,
		    json_t **out)
{
	return aws_call(d->c, op, body, loc, out);
}

/* Secrets Manager's calls (drivers/ecs_secrets.c): the client of the
 * environment's region, made on first use. */
static int sm_call(void *ctx, const char *op, json_t *body, rc_loc loc,
		   json_t **out)
{
	rc_driver *d = ctx;
	ecs_client *c;
	int rc = 0;

	pthread_mutex_lock(&d->mu);
	if (!d->smc)
		rc = shared_client(d->shared, d->c->region, &api_sm, &d->smc);
	c = d->smc;
	pthread_mutex_unlock(&d->mu);
	if (rc < 0) {
		json_decref(body);
		return rc;
	}
	return aws_call(c, op, body, loc, out);
}

static json_t *tags_json(const rc_driver *d)
{
	return json_pack("[{s:s, s:s}, {s:s, s:s}]", "key", RC_ECS_TAG_PROJECT,
			 "value", d->project, "key", RC_ECS_TAG_ENV, "value",
			 d->env->name);
}

static bool tagged_ours(const rc_driver *d, const json_t *tags)
{
	const json_t *t;
	size_t i;
	int n = 0;

	json_array_foreach(tags, i, t) {
		const char *k = sget(t, "key"), *v = sget(t, "value");

		if (k && v && !strcmp(k, RC_ECS_TAG_PROJECT) &&
		    !strcmp(v, d->project))
			n++;
		if (k && v && !strcmp(k, RC_ECS_TAG_ENV) &&
		    !strcmp(v, d->env->name))
			n++;
	}
	return n == 2;
}

static rc_loc service_loc(const rc_driver *d, const char *name)
{
	for (size_t i = 0; i < d->env->nservices; i++)
		if (!strcmp(d->env->services[i].name, name))
			return d->env->services[i].loc;
	return d->env->target.loc;
}

/* --------------------------------------------------------- open, close */

static void ecs_close(rc_driver *d)
{
	if (!d)
		return;
	rc_ecs_sm_free(d->sm);
	if (d->own_shared)
		shared_free(d->shared);
	json_decref(d->waits);
	json_decref(d->td_arns);
	free(d->state_dir);
	pthread_mutex_destroy(&d->mu);
	free(d->project);
	free(d->config_dir);
	free(d->run_id);
	free(d->cluster);
	free(d);
}

static int ecs_open(rc_driver **out, const rc_env *env,
		    const rc_driver_ctx *ctx)
{
	rc_driver *d = rc_calloc(1, sizeof(*d));
	char *region = NULL;
	int rc;

	*out = NULL;
	pthread_mutex_init(&d->mu, NULL);
	d->env = env;
	d->project = rc_strdup(ctx->project ? ctx->project : "reconcile");
	d->config_dir = rc_strdup(ctx->config_dir ? ctx->config_dir : ".");
	d->run_id = ctx->run_id ? rc_strdup(ctx->run_id) : NULL;
	d->cluster = rc_ecs_cluster_name(d->project, env);
	d->waits = json_object();
	d->td_arns = json_object();
	d->state_dir = ctx->state_dir ? rc_strdup(ctx->state_dir) : NULL;
	d->ctx = *ctx;
	d->sm = rc_ecs_sm_new(sm_call, d, &d->ctx, d->project, env,
			      d->config_dir);
	if (ctx->shared) {
		d->shared = ctx->shared;
	} else {
		shared_new(&d->shared);
		d->own_shared = true;
	}
	if ((rc = rc_aws_region_resolve(&region, env->target.region, NULL)) < 0)
		goto fail;
	if (!region) {
		rc = rc_error_set_at(RC_EINVALID, env->target.loc,
				     "ecs: no AWS region for environment '%s': "
				     "set target.region, AWS_REGION or the "
				     "profile's region",
				     env->name);
		goto fail;
	}
	rc = shared_client(d->shared, region, &api_ecs, &d->c);
	free(region);
	if (rc < 0)
		goto fail;
	*out = d;
	return 0;
fail:
	ecs_close(d);
	return rc;
}

static int ecs_shared_open(void **out, const rc_driver_ctx *ctx)
{
	ecs_shared *s = NULL;
	int rc = shared_new(&s);

	(void)ctx;
	*out = s;
	return rc;
}

static void ecs_shared_close(void *shared)
{
	shared_free(shared);
}

static int ecs_expand(rc_driver *d, const rc_env *env, rc_resource_set *out)
{
	int rc = rc_ecs_expand(env, d->project, out);

	return rc < 0 ? rc
		      : rc_ecs_secrets_expand(env, d->project, d->config_dir,
					      out);
}

/* ------------------------------------------------------------- observe */

static const json_t *desired_body(const rc_driver *d,
				  const rc_resource_set *desired,
				  const char *kind, const char *name)
{
	rc_buf k = RC_BUF_INIT_MAX(1024);
	rc_resource *r;

	rc_buf_printf(&k, "%s/%s/%s", d->env->name, kind, name);
	r = desired ? rc_resource_set_find(desired, k.ptr) : NULL;
	rc_buf_release(&k);
	return r ? r->body : NULL;
}

/* The DescribeTaskDefinition answer ({taskDefinition, tags}) of a
 * revision (*out new): from the cache when it holds it, else asked and
 * kept there (revisions never change). */
static int describe_td(rc_driver *d, const char *arn, json_t **out)
{
	const char *got;
	int rc;

	if ((*out = rc_ecs_cache_get(d->state_dir, arn)))
		return 0;
	rc = ecs_call(d, "DescribeTaskDefinition",
		      json_pack("{s:s, s:[s]}", "taskDefinition", arn,
				"include", "TAGS"),
		      (rc_loc){0}, out);
	got = sget(json_object_get(*out, "taskDefinition"),
		   "taskDefinitionArn");
	if (rc == 0 && got && !strcmp(got, arn))
		rc_ecs_cache_put(d->state_dir, arn, *out);
	return rc;
}

static int observe_service(rc_driver *d, const rc_resource_set *desired,
			   const json_t *svc, rc_resource_set *out)
{
	const char *name = sget(svc, "serviceName");
	const json_t *want;
	json_t *tdr = NULL;
	bool adopt = false;
	char *health;
	bool sick;
	int rc;

	if (!name ||
	    strcmp(sget(svc, "status") ? sget(svc, "status") : "", "ACTIVE"))
		return 0;
	want = desired_body(d, desired, RC_ECS_SERVICE, name);
	if (!tagged_ours(d, json_object_get(svc, "tags"))) {
		/* someone else's; taken over only when the configuration
		   names it and policy.adopt says so */
		if (!want)
			return 0;
		if (!d->env->policy.adopt) {
			rc_driver_note(&d->ctx, d->env->name,
				       "ecs: service %s exists in cluster %s "
				       "without reconcile's tags: set "
				       "policy.adopt: true to take it over",
				       name, d->cluster);
			return 0;
		}
		adopt = true;
	}
	rc_buf k = RC_BUF_INIT_MAX(1024);
	rc_resource *res;

	res = rc_resource_set_add(
		out, d->env->name, RC_ECS_DRIVER, RC_ECS_SERVICE, name,
		rc_ecs_service_from_api(svc, want));
	res->adopt = adopt;
	rc_ecs_secrets_service_observed(res->body, json_object_get(svc, "tags"));
	health = rc_ecs_service_health(svc, &sick);
	rc_resource_set_health(res, sick, "%s", health);
	free(health);
	/* deleted before its cluster and its task definition */
	rc_buf_printf(&k, "%s/%s/%s", d->env->name, RC_ECS_CLUSTER,
		      d->cluster);
	rc_resource_add_dep(res, k.ptr);
	rc_buf_clear(&k);
	rc_buf_printf(&k, "%s/%s/%s", d->env->name, RC_ECS_TASKDEF, name);
	rc_resource_add_dep(res, k.ptr);
	rc_buf_release(&k);
	if (adopt)
		return 0; /* its task definition is not ours: a new family */
	if ((rc = describe_td(d, sget(svc, "taskDefinition"), &tdr)) < 0)
		return rc;
	if (tagged_ours(d, json_object_get(tdr, "tags")))
		rc_resource_set_add(out, d->env->name, RC_ECS_DRIVER,
				    RC_ECS_TASKDEF, name,
				    rc_ecs_taskdef_from_api(json_object_get(
					    tdr, "taskDefinition")));
	json_decref(tdr);
	return 0;
}

/* A List call paged through its nextToken: body (stolen) is the first
 * page's request; the items of key are appended to into, until max of
 * them (0: all). */
static int ecs_list(rc_driver *d, const char *op, json_t *body,
		    const char *key, size_t max, json_t *into)
{
	json_t *r = NULL;
	int rc;

	for (;;) {
		json_t *req = json_deep_copy(body);

		if (r && sget(r, "nextToken"))
			json_object_set_new(req, "nextToken",
					    json_string(sget(r, "nextToken")));
		json_decref(r);
		if ((rc = ecs_call(d, op, req, (rc_loc){0}, &r)) < 0)
			break;
		json_array_extend(into, json_object_get(r, key));
		if (!sget(r, "nextToken") ||
		    (max && json_array_size(into) >= max))
			break;
	}
	json_decref(r);
	json_decref(body);
	return rc;
}

static int ecs_observe(rc_driver *d, const rc_resource_set *desired,
		       rc_resource_set *out)
{
	json_t *r = NULL, *c, *arns = json_array();
	bool adopt;
	int rc;

	/* the secrets first: they outlive a missing cluster */
	if ((rc = rc_ecs_secrets_observe(d->sm, desired, out)) < 0)
		goto done;
	rc = ecs_call(d, "DescribeClusters",
		      json_pack("{s:[s], s:[s]}", "clusters", d->cluster,
				"include", "TAGS"),
		      d->env->target.loc, &r);
	if (rc < 0)
		goto done;
	c = json_array_get(json_object_get(r, "clusters"), 0);
	if (!c || strcmp(sget(c, "status") ? sget(c, "status") : "",
			 "ACTIVE"))
		goto done;
	adopt = !tagged_ours(d, json_object_get(c, "tags"));
	if (adopt && !d->env->policy.adopt)
		rc_driver_note(&d->ctx, d->env->name,
			       "ecs: cluster %s exists without reconcile's "
			       "tags: used as it is, never deleted",
			       d->cluster);
	rc_resource_set_add(out, d->env->name, RC_ECS_DRIVER, RC_ECS_CLUSTER,
			    d->cluster,
			    json_pack("{s:s}", "clusterName", d->cluster))
		->adopt = adopt && d->env->policy.adopt;
	if ((rc = ecs_list(d, "ListServices",
			   json_pack("{s:s, s:i}", "cluster", d->cluster,
				     "maxResults", 100),
			   "serviceArns", 0, arns)) < 0)
		goto done;
	for (size_t i = 0; i < json_array_size(arns); i += 10) {
		json_t *batch = json_array(), *s;
		size_t j;

		for (j = i; j < i + 10 && j < json_array_size(arns); j++)
			json_array_append(batch, json_array_get(arns, j));
		json_decref(r);
		r = NULL;
		rc = ecs_call(d, "DescribeServices",
			      json_pack("{s:s, s:o, s:[s]}", "cluster",
					d->cluster, "services", batch,
					"include", "TAGS"),
			      (rc_loc){0}, &r);
		if (rc < 0)
			goto done;
		json_array_foreach(json_object_get(r, "services"), j, s)
			if ((rc = observe_service(d, desired, s, out)) < 0)
				goto done;
	}
done:
	json_decref(r);
	json_decref(arns);
	return rc;
}

/* --------------------------------------------------------------- apply */

static void set_wait(rc_driver *d, const char *key, const char *td)
{
	pthread_mutex_lock(&d->mu);
	json_object_set_new(d->waits, key, json_string(td ? td : ""));
	pthread_mutex_unlock(&d->mu);
}

/* The ACTIVE service of that name (with draining: also a DRAINING one),
 * or NULL (*out new). */
static int describe_service_st(rc_driver *d, const char *name,
			       bool draining, json_t **out)
{
	json_t *r = NULL, *s;
	int rc = ecs_call(d, "DescribeServices",
			  json_pack("{s:s, s:[s], s:[s]}", "cluster",
				    d->cluster, "services", name, "include",
				    "TAGS"),
			  (rc_loc){0}, &r);

	*out = NULL;
	if (rc == 0) {
		s = json_array_get(json_object_get(r, "services"), 0);
		if (s && sget(s, "status") &&
		    (!strcmp(sget(s, "status"), "ACTIVE") ||
		     (draining && !strcmp(sget(s, "status"), "DRAINING"))))
			*out = json_incref(s);
	}
	json_decref(r);
	return rc;
}

static int describe_service(rc_driver *d, const char *name, json_t **out)
{
	return describe_service_st(d, name, false, out);
}

static int cluster_apply(rc_driver *d, const rc_action *a)
{
	json_t *r = NULL, *c;
	int rc;

	if (a->op == RC_OP_UPDATE && !a->adopt)
		return 0;
	if (a->op == RC_OP_UPDATE) {
		/* policy.adopt: the cluster is tagged ours from now on */
		rc = ecs_call(d, "DescribeClusters",
			      json_pack("{s:[s]}", "clusters", a->name),
			      d->env->target.loc, &r);
		c = json_array_get(json_object_get(r, "clusters"), 0);
		if (rc == 0 && sget(c, "clusterArn"))
			rc = ecs_call(d, "TagResource",
				      json_pack("{s:s, s:o}", "resourceArn",
						sget(c, "clusterArn"), "tags",
						tags_json(d)),
				      d->env->target.loc, NULL);
		json_decref(r);
		return rc;
	}
	if (a->op != RC_OP_DELETE)
		return ecs_call(d, "CreateCluster",
				json_pack("{s:s, s:o}", "clusterName", a->name,
					  "tags", tags_json(d)),
				d->env->target.loc, NULL);
	rc = ecs_call(d, "DescribeClusters",
		      json_pack("{s:[s], s:[s]}", "clusters", a->name,
				"include", "TAGS"),
		      (rc_loc){0}, &r);
	c = json_array_get(json_object_get(r, "clusters"), 0);
	if (rc == 0 && c && tagged_ours(d, json_object_get(c, "tags")) &&
	    !strcmp(sget(c, "status") ? sget(c, "status") : "", "ACTIVE"))
		rc = ecs_call(d, "DeleteCluster",
			      json_pack("{s:s}", "cluster", a->name),
			      (rc_loc){0}, NULL);
	else if (rc == 0 && c)
		rc_driver_note(&d->ctx, d->env->name,
			       "ecs: cluster %s was not made by reconcile: "
			       "left in place",
			       a->name);
	json_decref(r);
	return rc;
}

/* The family's ACTIVE revisions, newest first, at most max (0: all), as
 * ARNs (*out new): ListTaskDefinitions, paged. */
static int list_family(rc_driver *d, const char *family, size_t max,
		       json_t **out)
{
	json_t *all = json_array(), *v;
	size_t i;
	int rc;

	*out = json_array();
	rc = ecs_list(d, "ListTaskDefinitions",
		      json_pack("{s:s, s:s, s:s}", "familyPrefix", family,
				"status", "ACTIVE", "sort", "DESC"),
		      "taskDefinitionArns", max, all);
	json_array_foreach(all, i, v) {
		char *fam = rc_ecs_td_family(json_string_value(v));

		/* the whole family, not one that starts with it */
		if (!strcmp(fam, family) &&
		    (!max || json_array_size(*out) < max))
			json_array_append(*out, v);
		free(fam);
	}
	json_decref(all);
	return rc;
}

/* How many of a family's newest revisions are looked at for one equal
 * to the one wanted before registering another. */
#define ECS_REUSE_REVISIONS 10

/* A recent ACTIVE revision of the family, registered by reconcile for
 * this environment, whose normal form is body (*arn new, NULL when none):
 * a rollback goes back to the revision the service ran, not a copy. */
static int equal_revision(rc_driver *d, const char *family,
			  const json_t *body, char **arn)
{
	json_t *arns = NULL, *v;
	size_t i;
	int rc;

	*arn = NULL;
	if ((rc = list_family(d, family, ECS_REUSE_REVISIONS, &arns)) < 0)
		goto done;
	json_array_foreach(arns, i, v) {
		json_t *tdr = NULL, *nf;
		bool same;

		if ((rc = describe_td(d, json_string_value(v), &tdr)) < 0)
			break;
		nf = rc_ecs_taskdef_from_api(json_object_get(tdr,
							     "taskDefinition"));
		same = tagged_ours(d, json_object_get(tdr, "tags")) &&
		       json_equal(nf, (json_t *)(uintptr_t)body);
		json_decref(nf);
		json_decref(tdr);
		if (same) {
			*arn = rc_strdup(json_string_value(v));
			break;
		}
	}
done:
	json_decref(arns);
	return rc;
}

/* Deleting a task definition: every ACTIVE revision of its family that
 * carries reconcile's tags is deregistered (others are left alone). */
static int taskdef_delete(rc_driver *d, const rc_action *a)
{
	char *fam = rc_ecs_family(d->project, d->env->name, a->name);
	json_t *arns = NULL, *v;
	size_t i, n = 0;
	int rc;

	if ((rc = list_family(d, fam, 0, &arns)) < 0)
		goto done;
	json_array_foreach(arns, i, v) {
		json_t *tdr = NULL;
		bool ours;

		if ((rc = describe_td(d, json_string_value(v), &tdr)) < 0)
			break;
		ours = tagged_ours(d, json_object_get(tdr, "tags"));
		json_decref(tdr);
		if (!ours)
			continue;
		/* DeregisterTaskDefinition takes family:revision */
		rc = ecs_call(d, "DeregisterTaskDefinition",
			      json_pack("{s:s}", "taskDefinition",
					rc_ecs_arn_name(json_string_value(v))),
			      (rc_loc){0}, NULL);
		if (rc < 0)
			break;
		n++;
	}
	RC_INFO("ecs: deregistered %zu revision(s) of %s", n, fam);
done:
	json_decref(arns);
	free(fam);
	return rc;
}

static int taskdef_apply(rc_driver *d, const rc_action *a)
{
	json_t *req, *r = NULL, *svc = NULL;
	char *fam, *found = NULL;
	const char *arn;
	int rc;

	if (a->op == RC_OP_DELETE)
		return taskdef_delete(d, a);
	fam = rc_ecs_family(d->project, d->env->name, a->name);
	rc = equal_revision(d, fam, a->desired, &found);
	free(fam);
	if (rc < 0)
		return rc;
	if (found) {
		r = json_pack("{s:{s:s}}", "taskDefinition",
			      "taskDefinitionArn", found);
		RC_INFO("ecs: %s is what %s needs: no new revision", found,
			a->name);
		free(found);
	} else {
		req = rc_ecs_taskdef_request(a->desired);
		if ((rc = rc_ecs_secrets_request(d->sm, req,
						 service_loc(d, a->name))) < 0) {
			json_decref(req);
			return rc;
		}
		json_object_set_new(req, "tags", tags_json(d));
		register_turn(d->c);
		rc = ecs_call(d, "RegisterTaskDefinition", req,
			      service_loc(d, a->name), &r);
		if (rc < 0)
			return rc;
		arn = sget(json_object_get(r, "taskDefinition"),
			   "taskDefinitionArn");
		RC_INFO("ecs: registered %s", arn ? arn : "?");
		/* the answer is the revision's description: cached, so the
		   next plan need not ask for it */
		if (arn && json_is_array(json_object_get(r, "tags")))
			rc_ecs_cache_put(d->state_dir, arn, r);
	}
	arn = sget(json_object_get(r, "taskDefinition"), "taskDefinitionArn");
	pthread_mutex_lock(&d->mu);
	json_object_set_new(d->td_arns, a->name, json_string(arn ? arn : ""));
	pthread_mutex_unlock(&d->mu);
	/* a running service moves to the new revision now */
	if ((rc = describe_service(d, a->name, &svc)) == 0 && svc &&
	    tagged_ours(d, json_object_get(svc, "tags"))) {
		rc = ecs_call(d, "UpdateService",
			      json_pack("{s:s, s:s, s:s}", "cluster",
					d->cluster, "service", a->name,
					"taskDefinition", arn ? arn : ""),
			      service_loc(d, a->name), NULL);
		if (rc == 0)
			set_wait(d, a->key, arn);
	}
	json_decref(svc);
	json_decref(r);
	return rc;
}

static bool td_changed(const rc_action *a)
{
	for (size_t i = 0; i < a->changes.n; i++)
		if (!strncmp(a->changes.items[i].path, "/taskDefinition", 15))
			return true;
	return false;
}

static int wait_service(rc_driver *d, const rc_action *a, const char *name,
			bool gone, long timeout);

static int service_apply(rc_driver *d, const rc_action *a)
{
	json_t *svc = NULL, *req, *stag;
	rc_loc loc = service_loc(d, a->name);
	int rc;

	if ((rc = describe_service(d, a->name, &svc)) < 0)
		return rc;
	if (a->op == RC_OP_DELETE) {
		if (svc && tagged_ours(d, json_object_get(svc, "tags")))
			rc = ecs_call(d, "DeleteService",
				      json_pack("{s:s, s:s, s:b}", "cluster",
						d->cluster, "service", a->name,
						"force", 1),
				      (rc_loc){0}, NULL);
		json_decref(svc);
		set_wait(d, a->key, NULL);
		return rc;
	}
	if (svc && !a->adopt && !tagged_ours(d, json_object_get(svc, "tags"))) {
		json_decref(svc);
		return rc_error_set_at(
			RC_ECONFLICT, loc,
			"ecs: a service named %s exists in cluster %s without "
			"reconcile's tags (%s, %s): reconcile does not take it "
			"over unless the environment sets policy.adopt: true; "
			"set it, rename the service or delete the other one",
			a->name, d->cluster, RC_ECS_TAG_PROJECT, RC_ECS_TAG_ENV);
	}
	if (svc && a->op == RC_OP_REPLACE) {
		/* a field UpdateService does not take: the old service goes
		   first (the plan said why), then a new one is made */
		rc = ecs_call(d, "DeleteService",
			      json_pack("{s:s, s:s, s:b}", "cluster",
					d->cluster, "service", a->name,
					"force", 1),
			      loc, NULL);
		json_decref(svc);
		svc = NULL;
		if (rc < 0 ||
		    (rc = wait_service(d, a, a->name, true,
				       d->env->target.wait_timeout > 0
					       ? d->env->target.wait_timeout
					       : 300)) < 0)
			return rc;
	}
	req = json_deep_copy(a->desired);
	pthread_mutex_lock(&d->mu);
	if (sget(d->td_arns, a->name) && *sget(d->td_arns, a->name))
		/* the revision this run's task definition chose (a reused
		   one is not the family's latest) */
		json_object_set_new(req, "taskDefinition",
				    json_string(sget(d->td_arns, a->name)));
	pthread_mutex_unlock(&d->mu);
	json_object_del(req, "secrets"); /* a tag, below */
	stag = rc_ecs_secrets_service_tag(a->desired);
	if (!svc) {
		/* absent (also after a crash of an earlier attempt) */
		json_object_set_new(req, "serviceName", json_string(a->name));
		json_object_set_new(req, "tags", tags_json(d));
		if (stag)
			json_array_append(json_object_get(req, "tags"), stag);
		json_object_set_new(req, "clientToken",
				    json_string(a->id + (strlen(a->id) > 36
							   ? strlen(a->id) - 36
							   : 0)));
		rc = ecs_call(d, "CreateService", req, loc, NULL);
	} else {
		/* what only CreateService takes (rc_ecs_immutable) */
		static const char *const create_only[] = {
			"launchType", "schedulingStrategy",
			"deploymentController", "role", "serviceName"};

		for (size_t i = 0; i < RC_ARRAY_SIZE(create_only); i++)
			json_object_del(req, create_only[i]);
		if (!td_changed(a) && a->op == RC_OP_UPDATE)
			json_object_del(req, "taskDefinition");
		json_object_set_new(req, "service", json_string(a->name));
		/* ECS reads secrets when a task starts: new tasks */
		if (rc_ecs_secrets_changed(a))
			json_object_set_new(req, "forceNewDeployment",
					    json_true());
		rc = ecs_call(d, "UpdateService", req, loc, NULL);
		if (rc == 0 && rc_ecs_secrets_changed(a))
			rc = stag ? ecs_call(d, "TagResource",
					     json_pack("{s:s, s:[O]}",
						       "resourceArn",
						       sget(svc, "serviceArn"),
						       "tags", stag),
					     loc, NULL)
				  : ecs_call(d, "UntagResource",
					     json_pack("{s:s, s:[s]}",
						       "resourceArn",
						       sget(svc, "serviceArn"),
						       "tagKeys",
						       RC_ECS_TAG_SECRETS_HASH),
					     loc, NULL);
		if (rc == 0 && a->adopt)
			rc = ecs_call(d, "TagResource",
				      json_pack("{s:s, s:o}", "resourceArn",
						sget(svc, "serviceArn"), "tags",
						tags_json(d)),
				      loc, NULL);
	}
	if (rc == 0)
		set_wait(d, a->key, NULL);
	json_decref(stag);
	json_decref(svc);
	return rc;
}

static int ecs_apply(rc_driver *d, const rc_action *a, json_t **result)
{
	int rc;

	*result = NULL;
	if (!strcmp(a->kind, RC_ECS_CLUSTER))
		rc = cluster_apply(d, a);
	else if (!strcmp(a->kind, RC_ECS_TASKDEF))
		rc = taskdef_apply(d, a);
	else if (!strcmp(a->kind, RC_ECS_SERVICE))
		rc = service_apply(d, a);
	else if (!strcmp(a->kind, RC_ECS_SECRET))
		rc = rc_ecs_secret_apply(d->sm, a);
	else
		return rc_error_set(RC_EUNSUPPORTED, RC_ECLASS_INTERNAL,
				    "ecs: unknown kind '%s'", a->kind);
	if (rc == 0 && a->desired && a->op != RC_OP_DELETE)
		*result = json_incref(a->desired);
	return rc;
}

/* ---------------------------------------------------------------- wait */

static void last_events(rc_buf *b, const json_t *svc, size_t n)
{
	const json_t *e;
	size_t i;

	json_array_foreach(json_object_get(svc, "events"), i, e) {
		if (i >= n)
			break;
		rc_buf_printf(b, "\n  %s", sget(e, "message") ? sget(e, "message")
							     : "");
	}
}

/* The error of a deployment that failed (dep) or was rolled back and is
 * gone (dep NULL), at the service's line, with its latest events. */
static int deployment_failed(rc_driver *d, const char *name,
			     const json_t *svc, const json_t *dep)
{
	rc_buf b = RC_BUF_INIT_MAX(1 << 14);
	const char *why = dep ? sget(dep, "rolloutStateReason") : NULL;
	int rc;

	if (dep)
		rc_buf_printf(&b, "ecs: the deployment of service %s failed: "
				  "%s; latest events:",
			      name, why ? why : "no reason given");
	else
		rc_buf_printf(&b, "ecs: the deployment of service %s was "
				  "rolled back; latest events:",
			      name);
	last_events(&b, svc, 6);
	rc = rc_error_set_at(RC_ERROR, service_loc(d, name), "%s", b.ptr);
	rc_buf_release(&b);
	return rc;
}

static int wait_service(rc_driver *d, const rc_action *a, const char *name,
			bool gone, long timeout)
{
	long long deadline = rc_local_now_ms() + timeout * 1000LL;
	long pause = 100;
	json_t *svc = NULL;
	char *watch = NULL; /* the id of the deployment waited on */
	int rc;

	for (;;) {
		json_t *dep;
		size_t i;
		bool done = false;

		json_decref(svc);
		if ((rc = describe_service_st(d, name, gone, &svc)) < 0) {
			free(watch); /* a describe that fails mid-wait */
			return rc;
		}
		if (gone) {
			done = !svc;
		} else if (svc) {
			/* the deployment the apply made (the primary one when
			   the wait starts): an older one that failed before,
			   still listed, is not this apply's failure */
			const json_t *mine = NULL;

			json_array_foreach(json_object_get(svc, "deployments"),
					   i, dep) {
				const char *id = sget(dep, "id");

				if (!watch && id && sget(dep, "status") &&
				    !strcmp(sget(dep, "status"), "PRIMARY"))
					watch = rc_strdup(id);
				if (watch && id && !strcmp(id, watch))
					mine = dep;
			}
			if (!watch)
				mine = json_array_get(
					json_object_get(svc, "deployments"), 0);
			if ((watch && !mine) ||
			    (mine && sget(mine, "rolloutState") &&
			     !strcmp(sget(mine, "rolloutState"), "FAILED"))) {
				/* failed, or gone: the circuit breaker rolled
				   it back */
				rc = deployment_failed(d, name, svc, mine);
				json_decref(svc);
				free(watch);
				return rc;
			}
			dep = (json_t *)(uintptr_t)mine;
			done = dep && sget(dep, "rolloutState") &&
			       !strcmp(sget(dep, "rolloutState"), "COMPLETED") &&
			       json_integer_value(json_object_get(svc, "runningCount")) ==
				       json_integer_value(json_object_get(svc, "desiredCount"));
			rc_driver_progress(
				&d->ctx, a->id, "%s: %lld of %lld running", name,
				(long long)json_integer_value(json_object_get(svc, "runningCount")),
				(long long)json_integer_value(json_object_get(svc, "desiredCount")));
		}
		if (done)
			break;
		if (rc_local_now_ms() >= deadline) {
			rc_buf b = RC_BUF_INIT_MAX(1 << 14);

			rc_buf_printf(&b,
				      "ecs: service %s did not %s within %ld s",
				      name,
				      gone ? "go away" : "reach a completed deployment",
				      timeout);
			if (svc)
				last_events(&b, svc, 4);
			rc = rc_error_set(RC_ETIMEOUT, RC_ECLASS_PLATFORM, "%s",
					  b.ptr);
			rc_buf_release(&b);
			break;
		}
		rc_local_sleep_ms(pause);
		pause = pause * 2 > 2000 ? 2000 : pause * 2;
	}
	json_decref(svc);
	free(watch);
	return rc;
}

static int ecs_wait(rc_driver *d, const rc_action *a, long timeout)
{
	bool pending;

	pthread_mutex_lock(&d->mu);
	pending = json_object_get(d->waits, a->key) != NULL;
	json_object_del(d->waits, a->key);
	pthread_mutex_unlock(&d->mu);
	if (!pending)
		return 0;
	if (timeout <= 0)
		timeout = d->env->target.wait_timeout > 0
				  ? d->env->target.wait_timeout
				  : 300;
	return wait_service(d, a, a->name, a->op == RC_OP_DELETE, timeout);
}

/* ----------------------------------------------------------------- run */

/* "rc-" and 32 hex digits of two FNV-1a hashes of (run id, hook name):
 * the same for every attempt of one hook in one run. */
static char *hook_token(const char *run_id, const char *hook)
{
	uint64_t h1 = 0xcbf29ce484222325ULL, h2 = 0x84222325cbf29ce4ULL;
	rc_buf b = RC_BUF_INIT_MAX(64);
	const char *parts[3] = {run_id, "\n", hook};

	for (int p = 0; p < 3; p++)
		for (const unsigned char *s = (const unsigned char *)parts[p]; *s;
		     s++) {
			h1 = (h1 ^ *s) * 0x100000001b3ULL;
			h2 = (h2 ^ *s) * 0x100000001b3ULL + 7;
		}
	rc_buf_printf(&b, "rc-%016llx%016llx", (unsigned long long)h1,
		      (unsigned long long)h2);
	return rc_buf_detach(&b);
}

/* The token of spec's hook in spec's run (else this one). */
static char *spec_token(const rc_driver *d, const json_t *spec)
{
	const char *run_id = sget(spec, "run_id"), *hook = sget(spec, "name");

	return hook_token(run_id ? run_id : d->run_id ? d->run_id : "none",
			  hook ? hook : "hook");
}

static int find_task(rc_driver *d, const char *token, json_t **arn)
{
	static const char *const st[] = {"RUNNING", "STOPPED"};
	int rc = 0;

	*arn = NULL;
	for (size_t i = 0; i < 2 && !*arn && rc == 0; i++) {
		json_t *r = NULL;

		rc = ecs_call(d, "ListTasks",
			      json_pack("{s:s, s:s, s:s}", "cluster", d->cluster,
					"startedBy", token, "desiredStatus",
					st[i]),
			      (rc_loc){0}, &r);
		if (rc == 0 && json_array_size(json_object_get(r, "taskArns")))
			*arn = json_incref(json_array_get(
				json_object_get(r, "taskArns"), 0));
		json_decref(r);
	}
	return rc;
}

/* Follows task arn until it stops, or until deadline (rc_local_now_ms()):
 * *state RC_HOOK_SUCCEEDED or RC_HOOK_FAILED by the exit code of its
 * container named service (none: stopped before it ran, FAILED), with
 * "task ID stopped: REASON" in tail; else RC_HOOK_RUNNING. */
static int follow_task(rc_driver *d, const json_t *arn, const char *service,
		       long long deadline, rc_hook_state *state,
		       rc_run_result *res, rc_buf *tail)
{
	json_t *r = NULL;
	int rc;

	*state = RC_HOOK_RUNNING;
	for (long pause = 200;; pause = pause * 2 > 2000 ? 2000 : pause * 2) {
		const json_t *task, *c;
		size_t i;

		json_decref(r);
		r = NULL;
		rc = ecs_call(d, "DescribeTasks",
			      json_pack("{s:s, s:[O]}", "cluster", d->cluster,
					"tasks", arn),
			      (rc_loc){0}, &r);
		if (rc < 0)
			break;
		task = json_array_get(json_object_get(r, "tasks"), 0);
		if (task && sget(task, "lastStatus") &&
		    !strcmp(sget(task, "lastStatus"), "STOPPED")) {
			json_array_foreach(json_object_get(task, "containers"), i, c)
				if (sget(c, "name") && !strcmp(sget(c, "name"), service) &&
				    json_is_integer(json_object_get(c, "exitCode")))
					res->exit_code = (int)json_integer_value(
						json_object_get(c, "exitCode"));
			*state = res->exit_code == 0 ? RC_HOOK_SUCCEEDED
						     : RC_HOOK_FAILED;
			rc_buf_printf(tail, "task %s stopped: %s",
				      rc_ecs_arn_name(json_string_value(arn)),
				      sget(task, "stoppedReason")
					      ? sget(task, "stoppedReason")
					      : "exited");
			break;
		}
		if (rc_local_now_ms() >= deadline)
			break;
		rc_local_sleep_ms(pause);
	}
	json_decref(r);
	return rc;
}

static int ecs_run(rc_driver *d, const json_t *spec, rc_run_result *res)
{
	const char *where = sget(spec, "where"), *hook = sget(spec, "name");
	const char *service = sget(spec, "service");
	long timeout = (long)json_integer_value(json_object_get(spec, "timeout"));
	json_t *arn = NULL, *task = NULL, *r = NULL, *envl, *v;
	rc_buf tail = RC_BUF_INIT_MAX(1 << 14);
	rc_hook_state st;
	const char *k;
	char *token, *fam;
	int rc;

	memset(res, 0, sizeof(*res));
	res->exit_code = -1;
	if (where && !strcmp(where, "local"))
		return rc_local_run_hook(d->env, d->config_dir, d->state_dir,
					 spec, res);
	if (!service && d->env->nservices)
		service = d->env->services[0].name;
	if (!service)
		return rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				    "ecs: hook '%s' needs a service whose "
				    "task definition it runs",
				    hook ? hook : "");
	if (timeout <= 0)
		timeout = 600;
	token = spec_token(d, spec);
	fam = rc_ecs_family(d->project, d->env->name, service);
	if ((rc = find_task(d, token, &arn)) < 0)
		goto done;
	if (arn) {
		RC_INFO("ecs: hook '%s' already started task %s; following it",
			hook ? hook : "", json_string_value(arn));
	} else {
		const rc_target *t = &d->env->target;
		json_t *subnets = json_array(), *sgs = json_array();

		for (size_t i = 0; i < t->subnets.n; i++)
			json_array_append_new(subnets, json_string(t->subnets.v[i]));
		for (size_t i = 0; i < t->security_groups.n; i++)
			json_array_append_new(sgs, json_string(t->security_groups.v[i]));
		envl = json_array();
		json_object_foreach(json_object_get(spec, "env"), k, v)
			if (json_is_string(v))
				json_array_append_new(envl,
						      json_pack("{s:s, s:O}", "name",
								k, "value", v));
		rc = ecs_call(
			d, "RunTask",
			json_pack("{s:s, s:s, s:s, s:i, s:s, s:{s:{s:o, s:o, s:s}}, "
				  "s:{s:[{s:s, s:O, s:o}]}, s:o}",
				  "cluster", d->cluster, "taskDefinition", fam,
				  "launchType",
				  t->launch_type ? t->launch_type : "FARGATE",
				  "count", 1, "startedBy", token,
				  "networkConfiguration", "awsvpcConfiguration",
				  "subnets", subnets, "securityGroups", sgs,
				  "assignPublicIp",
				  t->assign_public_ip == 1 ? "ENABLED" : "DISABLED",
				  "overrides", "containerOverrides", "name",
				  service, "command", json_object_get(spec, "run"),
				  "environment", envl, "tags", tags_json(d)),
			service_loc(d, service), &r);
		if (rc < 0)
			goto done;
		task = json_array_get(json_object_get(r, "tasks"), 0);
		if (!task) {
			rc = rc_error_set(RC_ERROR, RC_ECLASS_PLATFORM,
					  "ecs: RunTask for hook '%s' started no "
					  "task: %s",
					  hook ? hook : "",
					  sget(json_array_get(json_object_get(r, "failures"), 0),
					       "reason")
						  ? sget(json_array_get(json_object_get(r, "failures"), 0),
							 "reason")
						  : "no reason given");
			goto done;
		}
		arn = json_incref(json_object_get(task, "taskArn"));
		RC_INFO("ecs: hook '%s' runs as task %s", hook ? hook : "",
			json_string_value(arn));
	}
	rc = follow_task(d, arn, service,
			 rc_local_now_ms() + (long long)timeout * 1000, &st,
			 res, &tail);
	if (rc == 0 && st == RC_HOOK_RUNNING) {
		res->timed_out = true;
		if (ecs_call(d, "StopTask",
			     json_pack("{s:s, s:O, s:s}", "cluster", d->cluster,
				       "task", arn, "reason",
				       "reconcile: hook timed out"),
			     (rc_loc){0}, NULL) < 0) {
			RC_WARN("%s", rc_error_last()->message);
			rc_error_clear();
		}
		rc_buf_printf(&tail, "task %s stopped: the hook timed out "
				     "after %ld s",
			      rc_ecs_arn_name(json_string_value(arn)), timeout);
	}
done:
	rc_redact(&tail);
	if (tail.len)
		res->output_tail = rc_buf_detach(&tail);
	rc_buf_release(&tail);
	json_decref(arn);
	json_decref(r);
	free(token);
	free(fam);
	return rc;
}

/* The task that hook_token() marked as its startedBy, RUNNING or STOPPED
 * (ECS lists a stopped task for an hour or so): none is a hook that never
 * started. Its output is not read (run() reads none either): the tail
 * says why the task stopped. */
static int ecs_hook_status(rc_driver *d, const json_t *spec, long wait,
			   rc_hook_state *state, rc_run_result *res)
{
	const char *service = sget(spec, "service");
	rc_buf tail = RC_BUF_INIT_MAX(1 << 14);
	json_t *arn = NULL;
	char *token;
	int rc;

	if (rc_hook_status_begin(spec, state, res))
		return rc_local_hook_status(d->env, d->config_dir,
					    d->state_dir ? d->state_dir
							 : ".reconcile",
					    spec, wait, state, res);
	if (!service && d->env->nservices)
		service = d->env->services[0].name;
	token = spec_token(d, spec);
	if ((rc = find_task(d, token, &arn)) == 0 && !arn)
		*state = RC_HOOK_NOT_STARTED;
	else if (rc == 0)
		rc = follow_task(d, arn, service ? service : "",
				 rc_local_now_ms() +
					 (long long)(wait > 0 ? wait : 0) * 1000,
				 state, res, &tail);
	if (rc == 0 && *state == RC_HOOK_RUNNING)
		res->exit_code = -1;
	rc_redact(&tail);
	if (tail.len && rc == 0 && *state != RC_HOOK_RUNNING)
		res->output_tail = rc_buf_detach(&tail);
	rc_buf_release(&tail);
	json_decref(arn);
	free(token);
	return rc;
}

/* ------------------------------------------------------------ registry */

const rc_driver_ops rc_driver_ecs = {
	.name = RC_ECS_DRIVER,
	.max_concurrency = 4,
	.shared_open = ecs_shared_open,
	.shared_close = ecs_shared_close,
	.open = ecs_open,
	.close = ecs_close,
	.expand = ecs_expand,
	.observe = ecs_observe,
	.normalize = rc_ecs_normalize,
	.immutable = rc_ecs_immutable,
	.apply = ecs_apply,
	.wait = ecs_wait,
	.run = ecs_run,
	.hook_status = ecs_hook_status,
};
