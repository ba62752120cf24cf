/*
 * The Heroku Platform API client: credentials, the rate budget, errors
 * with advice, paged lists, the account-wide lists of a run. See
 * drivers/heroku_api.h.
 */
#include "drivers/heroku_api.h"
#include "drivers/heroku_map.h"
#include "drivers/proc.h" /* clocks */
#include "reconciler/base/log.h"

#define LIST_PAGE "id ..; max=1000"

/* The key from HEROKU_API_KEY or a netrc file. */
static int find_key(rc_heroku_api *a)
{
	const char *env = getenv("HEROKU_API_KEY");
	const char *netrc = getenv("NETRC");
	const char *home = getenv("HOME");
	rc_buf path = RC_BUF_INIT_MAX(PATH_MAX * 2);
	rc_buf text = RC_BUF_INIT_MAX(1 << 20);
	FILE *f;

	if (env && *env) {
		a->key = rc_strdup(env);
		a->key_from = rc_strdup("HEROKU_API_KEY");
		return 0;
	}
	if (netrc && *netrc)
		rc_buf_puts(&path, netrc);
	else if (home)
		rc_buf_printf(&path, "%s/.netrc", home);
	if (path.len && (f = fopen(path.ptr, "r")) != NULL) {
		char chunk[4096];
		size_t n;

		while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
			if (rc_buf_put(&text, chunk, n) < 0)
				break;
		fclose(f);
		a->key = rc_heroku_netrc_password(text.ptr, "api.heroku.com");
		explicit_bzero(text.ptr, text.len);
	}
	rc_buf_release(&text);
	if (a->key && *a->key) {
		a->key_from = rc_buf_detach(&path);
		return 0;
	}
	free(a->key);
	a->key = NULL;
	rc_error_set(RC_EAUTH, RC_ECLASS_CONFIG,
		     "no Heroku API key: set HEROKU_API_KEY, or log in with "
		     "`heroku login` (the password of 'machine api.heroku.com' "
		     "in %s)",
		     path.len ? path.ptr : "~/.netrc");
	rc_buf_release(&path);
	return RC_EAUTH;
}

void rc_heroku_api_free(rc_heroku_api *a)
{
	if (!a)
		return;
	if (a->http)
		rc_heroku_note_wait(a, NULL);
	rc_heroku_oci_free(a->oci);
	rc_http_close(a->http);
	if (a->key)
		explicit_bzero(a->key, strlen(a->key));
	free(a->key);
	free(a->key_from);
	free(a->base_url);
	free(a->registry_url);
	json_decref(a->apps);
	json_decref(a->addons);
	json_decref(a->couplings);
	json_decref(a->pipelines);
	pthread_mutex_destroy(&a->mu);
	pthread_mutex_destroy(&a->lists_mu);
	pthread_mutex_destroy(&a->state_mu);
	json_decref(a->state_doc);
	free(a->state_file);
	pthread_mutex_destroy(&a->img_mu);
	pthread_cond_destroy(&a->img_cv);
	json_decref(a->held);
	json_decref(a->copying);
	json_decref(a->released);
	free(a->released_state_dir);
	free(a);
}

int rc_heroku_api_open(rc_heroku_api **out, rc_heroku_note_fn note,
		       void *note_arg)
{
	const char *url = getenv("HEROKU_API_URL");
	const char *reg = getenv("HEROKU_REGISTRY_URL");
	rc_heroku_api *a;
	int rc;

	*out = NULL;
	a = rc_calloc(1, sizeof(*a));
	pthread_mutex_init(&a->mu, NULL);
	pthread_mutex_init(&a->lists_mu, NULL);
	pthread_mutex_init(&a->state_mu, NULL);
	pthread_mutex_init(&a->img_mu, NULL);
	pthread_cond_init(&a->img_cv, NULL);
	a->held = json_object();
	a->copying = json_object();
	a->released = json_object();
	a->note = note;
	a->note_arg = note_arg;
	a->reserve = RC_HEROKU_RESERVE;
	a->base_url = rc_strdup(url && *url ? url : RC_HEROKU_API_URL);
	/* no trailing slash: paths start with one */
	while (strlen(a->base_url) > 8 &&
	       a->base_url[strlen(a->base_url) - 1] == '/')
		a->base_url[strlen(a->base_url) - 1] = '\0';
	if ((rc = rc_heroku_url_check(a->base_url, "HEROKU_API_URL")) < 0)
		goto fail;
	if (reg && *reg) {
		if ((rc = rc_heroku_url_check(reg, "HEROKU_REGISTRY_URL")) < 0)
			goto fail;
		a->registry_url = rc_strdup(reg);
	}
	if ((rc = find_key(a)) < 0)
		goto fail;
	rc_secret_register(a->key);
	*out = a;
	return 0;
fail:
	rc_heroku_api_free(a);
	rc_error_prefix("heroku");
	return rc;
}

void rc_heroku_api_reserve(rc_heroku_api *a, int reserve)
{
	pthread_mutex_lock(&a->mu);
	if (reserve >= 0 && (!a->reserve_set || reserve > a->reserve)) {
		if (a->http)
			RC_WARN("heroku: target.rate_reserve %d comes after the "
				"first request; the reserve stays %d",
				reserve, a->reserve);
		else
			a->reserve = reserve;
		a->reserve_set = true;
	}
	pthread_mutex_unlock(&a->mu);
}

/* The HTTP client, made at the first request with the run's reserve. */
static int api_http(rc_heroku_api *a, rc_http **out)
{
	rc_buf auth = RC_BUF_INIT_MAX(4096), ua = RC_BUF_INIT_MAX(256);
	rc_http_opts o;
	int rc = 0;

	pthread_mutex_lock(&a->mu);
	if (!a->http) {
		rc_buf_printf(&auth, "Bearer %s", a->key);
		rc_buf_printf(&ua, "reconcile/%s", RC_VERSION);
		rc_http_opts_init(&o);
		o.base_url = a->base_url;
		o.authorization = auth.ptr;
		o.accept = RC_HEROKU_ACCEPT;
		o.user_agent = ua.ptr;
		o.driver = "heroku";
		o.service = "the Heroku API";
		/* the account's budget, shared with people and other jobs:
		 * spend it down to the reserve, then wait for the refill */
		o.rate_header = "RateLimit-Remaining";
		o.rate_reserve = a->reserve;
		o.rate_refill_per_sec = RC_HEROKU_REFILL_PER_MIN / 60.0;
		rc = rc_http_open(&a->http, &o);
		explicit_bzero(auth.ptr, auth.len);
	}
	*out = a->http;
	pthread_mutex_unlock(&a->mu);
	rc_buf_release(&auth);
	rc_buf_release(&ua);
	return rc;
}

int rc_heroku_http(rc_heroku_api *a, rc_http **out)
{
	return api_http(a, out);
}

void rc_heroku_reply_release(rc_heroku_reply *r)
{
	json_decref(r->json);
	free(r->request_id);
	free(r->range_next);
	free(r->retry_after);
	free(r->date);
	memset(r, 0, sizeof(*r));
}

void rc_heroku_note_wait(rc_heroku_api *a, const char *env)
{
	rc_http_counters c;
	long long ms;
	rc_buf b = RC_BUF_INIT_MAX(512);

	if (!a->http)
		return;
	rc_http_stats(a->http, &c);
	pthread_mutex_lock(&a->mu);
	ms = (long long)c.wait_ms - a->noted_ms;
	a->noted_ms = (long long)c.wait_ms;
	pthread_mutex_unlock(&a->mu);
	if (ms <= 0)
		return;
	rc_buf_printf(&b, "heroku: observation waited %lld s for API tokens "
			  "(target.rate_reserve keeps %d of %d)",
		      (ms + 999) / 1000, a->reserve, RC_HEROKU_TOKENS);
	if (a->note)
		a->note(a->note_arg, env, b.ptr);
	else
		RC_WARN("%s", b.ptr);
	rc_buf_release(&b);
}

int rc_heroku_call(rc_heroku_api *a, const char *method, const char *path,
		   const json_t *body, const char *range, bool idempotent,
		   rc_heroku_reply *out)
{
	rc_buf rh = RC_BUF_INIT_MAX(512);
	const char *headers[3] = {NULL, NULL, NULL};
	rc_http_req q = {0};
	rc_http_resp r;
	rc_http *cl = NULL;
	char *text = NULL;
	const char *h;
	int rc;

	memset(out, 0, sizeof(*out));
	if (body)
		text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	if (range) {
		rc_buf_printf(&rh, "Range: %s", range);
		headers[0] = rh.ptr;
	}
	q.method = method;
	q.path = path;
	q.body = text;
	q.body_len = text ? strlen(text) : 0;
	q.headers = headers;
	q.idempotent = idempotent;
	rc_http_resp_init(&r);
	rc = api_http(a, &cl);
	if (rc == 0)
		rc = rc_http_do(cl, &q, &r);
	if (text) {
		explicit_bzero(text, strlen(text));
		free(text);
	}
	rc_buf_release(&rh);
	if (rc < 0) {
		rc_error_prefix("heroku: %s %s", method, path);
		rc_http_resp_release(&r);
		return rc;
	}
	out->status = r.status;
	out->attempts = r.attempts;
	if ((h = rc_http_resp_header(&r, "Request-Id")) != NULL)
		out->request_id = rc_strdup(h);
	if ((h = rc_http_resp_header(&r, "Next-Range")) != NULL)
		out->range_next = rc_strdup(h);
	if ((h = rc_http_resp_header(&r, "Retry-After")) != NULL)
		out->retry_after = rc_strdup(h);
	if ((h = rc_http_resp_header(&r, "Date")) != NULL)
		out->date = rc_strdup(h);
	if (r.body.len)
		out->json = json_loadb(r.body.ptr, r.body.len, 0, NULL);
	explicit_bzero(r.body.ptr, r.body.len);
	rc_http_resp_release(&r);
	return 0;
}

int rc_heroku_fail(rc_heroku_api *a, const rc_heroku_reply *r,
		   const char *what, const char *team, rc_loc loc)
{
	const char *msg = json_string_value(json_object_get(r->json, "message"));
	const char *id = json_string_value(json_object_get(r->json, "id"));
	rc_buf b = RC_BUF_INIT_MAX(1 << 14);
	int code = RC_ERROR, rc;

	rc_buf_printf(&b, "heroku: %s: ", what);
	if (!r->json && r->status >= 400)
		rc_buf_printf(&b, "the API answered %ld with a body that is "
				  "not JSON; ",
			      r->status);
	switch (r->status) {
	case 401:
		code = RC_EAUTH;
		rc_buf_printf(&b, "the API key was refused (401%s%s): it is "
				  "wrong or expired; set a valid one in %s "
				  "(HEROKU_API_KEY, or the password of "
				  "'machine api.heroku.com' in ~/.netrc; "
				  "`heroku auth:token` prints one)",
			      msg ? ": " : "", msg ? msg : "", a->key_from);
		break;
	case 403:
		code = RC_EAUTH;
		rc_buf_printf(&b, "forbidden (403): %s; ", msg ? msg : "");
		if (team)
			rc_buf_printf(&b, "the account's role in team '%s' "
					  "does not allow it (a team admin "
					  "can grant the permission)",
				      team);
		else
			rc_buf_puts(&b, "the account is not allowed to do "
					"this (is it a collaborator on the "
					"app?)");
		break;
	case 404:
		code = RC_ENOTFOUND;
		rc_buf_printf(&b, "not found (404): %s", msg ? msg : "");
		break;
	case 422:
		code = RC_EINVALID;
		rc_buf_printf(&b, "refused (422%s%s): %s", id ? " " : "",
			      id ? id : "", msg ? msg : "invalid");
		break;
	case 429:
		code = RC_ETIMEOUT;
		rc_buf_printf(&b, "the account's API rate limit is spent "
				  "(429 after %d attempts): tokens return at "
				  "about 75 a minute",
			      r->attempts);
		if (r->retry_after)
			rc_buf_printf(&b, ", the next in %s s",
				      r->retry_after);
		rc_buf_puts(&b, "; other jobs using the same account spend "
				"them too (target.rate_reserve)");
		break;
	default:
		if (r->status >= 500)
			code = RC_ETIMEOUT;
		else if (r->status < 300)
			code = RC_EINVALID;
		rc_buf_printf(&b, "the API answered %ld%s%s", r->status,
			      msg ? ": " : "", msg ? msg : "");
		if (r->status >= 200 && r->status < 300)
			rc_buf_puts(&b, " with a body that cannot be read");
		if (r->attempts > 1)
			rc_buf_printf(&b, " (after %d attempts)", r->attempts);
		break;
	}
	if (r->request_id)
		rc_buf_printf(&b, " (Request-Id %s)", r->request_id);
	rc_redact(&b);
	rc = loc.file && loc.line && (code == RC_EINVALID)
		     ? rc_error_set_at(code, loc, "%s", b.ptr)
		     : rc_error_set(code, RC_ECLASS_PLATFORM, "%s", b.ptr);
	rc_buf_release(&b);
	return rc;
}

int rc_heroku_expect(rc_heroku_api *a, const rc_heroku_reply *r,
		     const char *what, rc_loc loc, json_t **out)
{
	*out = NULL;
	if (r->status < 200 || r->status >= 300 || !r->json)
		return rc_heroku_fail(a, r, what, NULL, loc);
	*out = r->json;
	return 0;
}

int rc_heroku_list(rc_heroku_api *a, const char *path, const char *what,
		   json_t **out)
{
	return rc_heroku_list_dated(a, path, what, out, NULL);
}

int rc_heroku_list_dated(rc_heroku_api *a, const char *path,
			 const char *what, json_t **out, time_t *date)
{
	json_t *all = json_array();
	char *range = rc_strdup(LIST_PAGE);
	int rc = 0;

	*out = NULL;
	if (date)
		*date = 0;
	for (int page = 0; range && page < 10000; page++) {
		rc_heroku_reply r;

		rc = rc_heroku_call(a, "GET", path, NULL, range, true, &r);
		free(range);
		range = NULL;
		if (rc < 0)
			break;
		if ((r.status != 200 && r.status != 206) ||
		    !json_is_array(r.json)) {
			rc = rc_heroku_fail(a, &r, what, NULL, (rc_loc){0});
			rc_heroku_reply_release(&r);
			break;
		}
		json_array_extend(all, r.json);
		if (date && !*date && r.date) {
			struct tm tm = {0};
			const char *end = strptime(r.date, "%a, %d %b %Y %H:%M:%S",
						   &tm);

			if (end)
				*date = timegm(&tm);
		}
		if (r.status == 206 && r.range_next)
			range = rc_strdup(r.range_next);
		rc_heroku_reply_release(&r);
	}
	free(range);
	if (rc < 0) {
		json_decref(all);
		return rc;
	}
	*out = all;
	return 0;
}

int rc_heroku_lists(rc_heroku_api *a, bool pipelines)
{
	int rc = 0;

	pthread_mutex_lock(&a->lists_mu);
	if (a->stale) {
		json_decref(a->apps);
		json_decref(a->addons);
		json_decref(a->couplings);
		json_decref(a->pipelines);
		a->apps = a->addons = a->couplings = a->pipelines = NULL;
		a->stale = false;
	}
	if (!a->apps)
		rc = rc_heroku_list(a, "/apps", "list apps", &a->apps);
	if (rc == 0 && !a->addons)
		rc = rc_heroku_list(a, "/addons", "list add-ons", &a->addons);
	if (rc == 0 && !a->couplings)
		rc = rc_heroku_list(a, "/pipeline-couplings",
				    "list pipeline couplings", &a->couplings);
	if (rc == 0 && pipelines && !a->pipelines)
		rc = rc_heroku_list(a, "/pipelines", "list pipelines",
				    &a->pipelines);
	pthread_mutex_unlock(&a->lists_mu);
	return rc;
}
