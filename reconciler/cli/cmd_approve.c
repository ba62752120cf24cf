/* reconcile approve, reject, pending: the controller's approvals API. */
#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/error.h"
#include "reconciler/base/rctime.h"
#include "reconciler/cli/cli.h"
#include "drivers/http.h"

#include <getopt.h>
#include <jansson.h>

enum { OPT_CONTROLLER = 256, OPT_PLAN };

/* An apply through the controller may take long; the connection not. */
#define APPROVE_TIMEOUT_MS (60L * 60 * 1000)

typedef struct {
	const char *cmd;
	const char *url;
	const char *plan;
	const char *env;
} approve_opts;

static int parse(approve_opts *o, int argc, char **argv, const char *cmd)
{
	static const struct option opts[] = {
		{"controller", required_argument, NULL, OPT_CONTROLLER},
		{"plan", required_argument, NULL, OPT_PLAN},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	int c;

	memset(o, 0, sizeof(*o));
	o->cmd = cmd;
	o->url = getenv("RECONCILE_CONTROLLER_URL");
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_CONTROLLER:
			o->url = optarg;
			break;
		case OPT_PLAN:
			if (strcmp(cmd, "approve"))
				goto usage;
			o->plan = optarg;
			break;
		case 'h':
			rc_command_usage(rc_command_find(cmd), stdout);
			return 1000;
		default:
			goto usage;
		}
	}
	if (strcmp(cmd, "pending") && optind < argc)
		o->env = argv[optind++];
	if (optind < argc || (strcmp(cmd, "pending") && !o->env)) {
		if (optind < argc)
			fprintf(stderr, "error: unexpected argument '%s'\n",
				argv[optind]);
		goto usage;
	}
	if (!o->url || !*o->url) {
		fprintf(stderr, "error: where is the controller? Set "
				"RECONCILE_CONTROLLER_URL or pass --controller "
				"URL (e.g. http://127.0.0.1:8080)\n");
		return RC_EXIT_USAGE;
	}
	return 0;
usage:
	rc_command_usage(rc_command_find(cmd), stderr);
	return RC_EXIT_USAGE;
}

/* The token to send: RECONCILE_CONTROLLER_TOKEN, or the token of a
 * one-entry "name:token" list (the controller's own setting). NULL with
 * a message when it is a list of several. */
static const char *own_token(bool *bad)
{
	const char *t = getenv("RECONCILE_CONTROLLER_TOKEN");

	*bad = false;
	if (!t || !*t)
		return NULL;
	if (strchr(t, ',')) {
		fprintf(stderr, "error: RECONCILE_CONTROLLER_TOKEN holds a "
				"list of tokens; set it to your own token\n");
		*bad = true;
		return NULL;
	}
	return strchr(t, ':') ? strchr(t, ':') + 1 : t;
}

/* Sends one request; 0 and *status, *reply (the JSON body, new ref, may
 * be NULL), or RC_EXIT_* after saying what went wrong. */
static int call(const approve_opts *o, const char *method, const char *path,
		const char *body, long *status, json_t **reply)
{
	rc_http_opts ho;
	rc_http *h = NULL;
	rc_http_req req = {0};
	rc_http_resp resp;
	rc_buf auth = RC_BUF_INIT_MAX(4096);
	const char *token;
	bool bad;
	int rc;

	*reply = NULL;
	token = own_token(&bad);
	if (bad)
		return RC_EXIT_USAGE;
	rc_http_opts_init(&ho);
	ho.base_url = o->url;
	ho.ca_file = getenv("RECONCILE_CONTROLLER_CA");
	ho.accept = "application/json";
	ho.user_agent = "reconcile/" RC_VERSION;
	ho.max_retries = 0; /* an approval is not sent twice */
	ho.timeout_ms = APPROVE_TIMEOUT_MS;
	if (token) {
		rc_buf_printf(&auth, "Bearer %s", token);
		ho.authorization = auth.ptr;
	}
	req.method = method;
	req.path = path;
	if (body) {
		req.body = body;
		req.body_len = strlen(body);
	}
	rc_http_resp_init(&resp);
	if ((rc = rc_http_open(&h, &ho)) == 0)
		rc = rc_http_do(h, &req, &resp);
	rc_buf_release(&auth);
	if (rc < 0) {
		fprintf(stderr, "error: cannot reach the controller at %s: %s\n",
			o->url, rc_error_last()->message);
		rc_http_resp_release(&resp);
		rc_http_close(h);
		return RC_EXIT_FAIL;
	}
	*status = resp.status;
	if (resp.body.len)
		*reply = json_loadb(resp.body.ptr, resp.body.len, 0, NULL);
	if (resp.status == 401)
		fprintf(stderr, "error: the controller at %s refused the token "
				"(401): %s\n",
			o->url, token ? "check RECONCILE_CONTROLLER_TOKEN"
				      : "set RECONCILE_CONTROLLER_TOKEN");
	else if (resp.status >= 300 && !json_is_object(*reply))
		fprintf(stderr, "error: the controller at %s answered %ld: "
				"%.*s\n",
			o->url, resp.status,
			(int)strcspn(resp.body.ptr, "\n"), resp.body.ptr);
	else if (resp.status >= 300)
		fprintf(stderr, "error: %s\n",
			json_string_value(json_object_get(*reply, "error"))
				? json_string_value(
					  json_object_get(*reply, "error"))
				: "refused");
	rc_http_resp_release(&resp);
	rc_http_close(h);
	return *status >= 200 && *status < 300 ? 0 : RC_EXIT_FAIL;
}

/* The path /api/v1/approvals/<env>, the environment URL-encoded. */
static void env_path(rc_buf *b, const char *env)
{
	rc_buf_puts(b, "/api/v1/approvals/");
	rc_http_url_encode(b, env);
}

static const char *short_id(const char *id)
{
	const char *c = id ? strchr(id, ':') : NULL;

	return c ? c + 1 : id ? id : "-";
}

int rc_cmd_approve(int argc, char **argv)
{
	approve_opts o;
	rc_buf path = RC_BUF_INIT_MAX(4096);
	json_t *body = NULL, *reply = NULL;
	char *b = NULL;
	long status = 0;
	int rc = parse(&o, argc, argv, "approve");

	if (rc)
		return rc == 1000 ? RC_EXIT_OK : rc;
	env_path(&path, o.env);
	if (o.plan) {
		body = json_pack("{s:s}", "plan", o.plan);
		b = json_dumps(body, JSON_COMPACT);
	}
	rc = call(&o, "POST", path.ptr, b, &status, &reply);
	if (rc == 0) {
		json_t *n = json_object_get(reply, "counts");
		const char *result =
			json_string_value(json_object_get(reply, "result"));
		const char *run = json_string_value(json_object_get(reply, "run"));
		const char *err = json_string_value(json_object_get(reply, "error"));

		if (result && !strcmp(result, "unchanged"))
			printf("Nothing to do: plan %.12s of %s was already "
			       "applied in run %s.\n",
			       short_id(json_string_value(
				       json_object_get(reply, "plan"))),
			       o.env, run ? run : "-");
		else
			printf("Approved plan %.12s of %s: run %s %s (%lld ok, "
			       "%lld failed, %lld skipped).\n",
			       short_id(json_string_value(
				       json_object_get(reply, "plan"))),
			       o.env, run ? run : "-", result ? result : "?",
			       (long long)json_integer_value(json_object_get(n, "ok")),
			       (long long)json_integer_value(json_object_get(n, "failed")),
			       (long long)json_integer_value(json_object_get(n, "skipped")));
		if (err)
			fprintf(stderr, "error: %s\n", err);
		rc = result && !strcmp(result, "failed") ? RC_EXIT_FAIL
							  : RC_EXIT_OK;
	}
	json_decref(reply);
	json_decref(body);
	free(b);
	rc_buf_release(&path);
	return rc;
}

int rc_cmd_reject(int argc, char **argv)
{
	approve_opts o;
	rc_buf path = RC_BUF_INIT_MAX(4096);
	json_t *reply = NULL;
	long status = 0;
	int rc = parse(&o, argc, argv, "reject");

	if (rc)
		return rc == 1000 ? RC_EXIT_OK : rc;
	env_path(&path, o.env);
	rc = call(&o, "DELETE", path.ptr, NULL, &status, &reply);
	if (rc == 0)
		printf("Rejected plan %.12s of %s (run %s); it is not proposed "
		       "again until the commit or the actual state changes.\n",
		       short_id(json_string_value(json_object_get(reply, "plan"))),
		       o.env,
		       json_string_value(json_object_get(reply, "run"))
			       ? json_string_value(json_object_get(reply, "run"))
			       : "-");
	json_decref(reply);
	rc_buf_release(&path);
	return rc;
}

/* "3m", "2h", "4d" since an RFC 3339 time. */
static void age(char *out, size_t n, const char *created)
{
	struct timespec t;
	long s;

	if (!created || !rc_time_parse(created, &t)) {
		snprintf(out, n, "?");
		return;
	}
	s = (long)(time(NULL) - t.tv_sec);
	if (s < 0)
		s = 0;
	if (s < 120)
		snprintf(out, n, "%lds", s);
	else if (s < 7200)
		snprintf(out, n, "%ldm", s / 60);
	else if (s < 2 * 86400)
		snprintf(out, n, "%ldh", s / 3600);
	else
		snprintf(out, n, "%ldd", s / 86400);
}

int rc_cmd_pending(int argc, char **argv)
{
	approve_opts o;
	json_t *reply = NULL, *list, *v;
	long status = 0;
	size_t i;
	int rc = parse(&o, argc, argv, "pending");

	if (rc)
		return rc == 1000 ? RC_EXIT_OK : rc;
	if ((rc = call(&o, "GET", "/api/v1/approvals", NULL, &status,
		       &reply)) != 0)
		goto out;
	list = json_object_get(reply, "approvals");
	if (!json_array_size(list)) {
		printf("No plan waits for approval.\n");
		goto out;
	}
	printf("%-20s  %-12s  %-12s  %-5s  %s\n", "ENVIRONMENT", "PLAN",
	       "COMMIT", "AGE", "CHANGES");
	json_array_foreach(list, i, v) {
		rc_buf ch = RC_BUF_INIT_MAX(4096);
		json_t *counts = json_object_get(v, "counts"), *n;
		const char *op, *commit;
		char ag[32];

		json_object_foreach(counts, op, n)
			rc_buf_printf(&ch, "%s%lld %s", ch.len ? ", " : "",
				      (long long)json_integer_value(n), op);
		commit = json_string_value(json_object_get(v, "commit"));
		age(ag, sizeof(ag),
		    json_string_value(json_object_get(v, "created")));
		printf("%-20s  %-12.12s  %-12.12s  %-5s  %s\n",
		       json_string_value(json_object_get(v, "environment")),
		       short_id(json_string_value(json_object_get(v, "plan"))),
		       commit ? commit : "-", ag, ch.len ? ch.ptr : "-");
		rc_buf_release(&ch);
	}
out:
	json_decref(reply);
	return rc;
}
