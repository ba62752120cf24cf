/* The controller's HTTP server over libmicrohttpd. */
#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "reconciler/controller/approval.h"
#include "reconciler/controller/http_api.h"
#include "reconciler/controller/metrics.h"
#include "reconciler/controller/webhook.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>

#define BODY_MAX ((size_t)1 << 20)
#define CONN_MEMORY ((size_t)64 << 10)
#define CONN_TIMEOUT 10
#define CONN_LIMIT 64

struct rc_http_api {
	struct MHD_Daemon *d;
	rc_ctl *ctl;
	rc_ctl_tokens tokens; /* none: no token (loopback only) */
	char *hook_secret;
};

/* A request's body, read in pieces. */
typedef struct {
	rc_buf body;
	bool too_big;
} request;

int rc_http_listen_addr(const char *listen, struct sockaddr_storage *ss,
			bool *loopback)
{
	char host[256];
	const char *colon = strrchr(listen, ':');
	size_t hl;
	char *end;
	long port;

	memset(ss, 0, sizeof(*ss));
	if (!colon || colon == listen)
		goto bad;
	hl = (size_t)(colon - listen);
	if (listen[0] == '[' && hl >= 2 && listen[hl - 1] == ']') {
		listen++;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		goto bad;
	memcpy(host, listen, hl);
	host[hl] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port < 0 || port > 65535)
		goto bad;
	{
		struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
			a4->sin_family = AF_INET;
			a4->sin_port = htons((uint16_t)port);
			*loopback = (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
			return 0;
		}
		if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
			a6->sin6_family = AF_INET6;
			a6->sin6_port = htons((uint16_t)port);
			*loopback = IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
			return 0;
		}
	}
bad:
	return rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
			    "--listen wants ADDR:PORT with a numeric address "
			    "(127.0.0.1:8080, 0.0.0.0:8080, [::1]:8080), not "
			    "'%s'",
			    listen);
}

static enum MHD_Result send_text(struct MHD_Connection *conn, unsigned status,
				 const char *type, const char *body, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
		len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result send_msg(struct MHD_Connection *conn, unsigned status,
				const char *msg)
{
	rc_buf b = RC_BUF_INIT_MAX(4096);
	enum MHD_Result ret;

	rc_buf_printf(&b, "%s\n", msg);
	ret = send_text(conn, status, "text/plain; charset=utf-8", b.ptr, b.len);
	rc_buf_release(&b);
	return ret;
}

static const char *header_of(void *arg, const char *name)
{
	return MHD_lookup_connection_value(arg, MHD_HEADER_KIND, name);
}

static enum MHD_Result hook(rc_http_api *api, struct MHD_Connection *conn,
			    int kind, const char *url, request *req)
{
	bool ping = false;
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
		conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	char peer[INET6_ADDRSTRLEN] = "?";

	if (ci && ci->client_addr) {
		const struct sockaddr *sa = ci->client_addr;

		if (sa->sa_family == AF_INET)
			inet_ntop(AF_INET,
				  &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
				  peer, sizeof(peer));
		else if (sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6,
				  &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
				  peer, sizeof(peer));
	}
	if (rc_webhook_verify((rc_webhook_kind)kind, header_of, conn,
			      req->body.ptr, req->body.len, api->hook_secret,
			      &ping) < 0) {
		/* never the body: it is the sender's */
		RC_WARN("webhook %s from %s refused: %s", url, peer,
			rc_error_last()->message);
		rc_error_clear();
		return send_msg(conn, MHD_HTTP_UNAUTHORIZED, "unauthorized");
	}
	if (ping) {
		RC_INFO("webhook %s: ping from %s", url, peer);
		return send_msg(conn, MHD_HTTP_OK, "pong");
	}
	RC_INFO("webhook %s from %s: %zu bytes", url, peer, req->body.len);
	rc_ctl_wake(api->ctl, url + 1);
	return send_msg(conn, MHD_HTTP_ACCEPTED, "accepted");
}

static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned status,
				 json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	rc_buf b = RC_BUF_INIT_MAX(16 << 20);
	enum MHD_Result ret;

	rc_buf_printf(&b, "%s\n", s ? s : "{}");
	rc_redact_json(&b);
	ret = send_text(conn, status, "application/json", b.ptr, b.len);
	rc_buf_release(&b);
	free(s);
	json_decref(j);
	return ret;
}

/* /api/v1/approvals/<env>: POST approves, DELETE rejects; the body's
 * optional {"plan": "<id>"} names the plan. */
static enum MHD_Result approval(rc_http_api *api, struct MHD_Connection *conn,
				const char *env, const char *method,
				const char *by, request *req)
{
	bool post = !strcmp(method, "POST"), del = !strcmp(method, "DELETE");
	const char *plan = NULL;
	json_t *in = NULL, *out = NULL;
	unsigned status;

	if (!post && !del)
		return send_msg(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
				"POST (approve) or DELETE (reject)");
	if (!*env || strchr(env, '/'))
		return send_msg(conn, MHD_HTTP_NOT_FOUND, "not found");
	if (req->body.len) {
		json_error_t jerr;

		in = json_loadb(req->body.ptr, req->body.len, 0, &jerr);
		plan = json_string_value(json_object_get(in, "plan"));
		if (!json_is_object(in) ||
		    (json_object_get(in, "plan") && !plan)) {
			json_decref(in);
			return send_json(conn, MHD_HTTP_BAD_REQUEST,
					 json_pack("{s:s}", "error",
						   "the body is not "
						   "{\"plan\": \"<id>\"}"));
		}
	}
	status = post ? rc_approval_approve(api->ctl, env, plan, by, &out)
		      : rc_approval_reject(api->ctl, env, plan, by, &out);
	json_decref(in);
	return send_json(conn, status, out);
}

static enum MHD_Result route(rc_http_api *api, struct MHD_Connection *conn,
			     const char *url, const char *method, request *req)
{
	static const char approvals[] = "/api/v1/approvals";
	int kind = rc_webhook_kind_of(url);
	bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
	const char *by;

	if (!strcmp(url, "/healthz") && get)
		return rc_ctl_alive(api->ctl)
			       ? send_msg(conn, MHD_HTTP_OK, "ok")
			       : send_msg(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
					  "the loop is stuck");
	if (!strcmp(url, "/readyz") && get)
		return rc_ctl_ready(api->ctl)
			       ? send_msg(conn, MHD_HTTP_OK, "ready")
			       : send_msg(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
					  "the source was not read yet");
	if (kind >= 0) {
		if (strcmp(method, "POST"))
			return send_msg(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
					"POST only");
		return hook(api, conn, kind, url, req);
	}
	by = api->tokens.n ? rc_ctl_tokens_match(&api->tokens,
						 header_of(conn, "Authorization"))
			   : RC_CTL_TOKEN_NONE;
	if (!by)
		return send_msg(conn, MHD_HTTP_UNAUTHORIZED, "unauthorized");
	if (!strcmp(url, "/metrics") && get) {
		rc_buf b = RC_BUF_INIT_MAX(16 << 20);
		enum MHD_Result ret;

		rc_metrics_render(rc_ctl_metrics(api->ctl), &b);
		ret = send_text(conn, MHD_HTTP_OK,
				"text/plain; version=0.0.4; charset=utf-8",
				b.ptr, b.len);
		rc_buf_release(&b);
		return ret;
	}
	if (!strcmp(url, "/api/v1/status") && get)
		return send_json(conn, MHD_HTTP_OK, rc_ctl_status(api->ctl));
	if (!strcmp(url, approvals) && get)
		return send_json(conn, MHD_HTTP_OK, rc_approvals_list(api->ctl));
	if (!strncmp(url, approvals, sizeof(approvals) - 1) &&
	    url[sizeof(approvals) - 1] == '/')
		return approval(api, conn, url + sizeof(approvals), method, by,
				req);
	return send_msg(conn, MHD_HTTP_NOT_FOUND, "not found");
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn,
			      const char *url, const char *method,
			      const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	rc_http_api *api = cls;
	request *req = *con_cls;

	RC_UNUSED(version);
	if (!req) {
		req = rc_calloc(1, sizeof(*req));
		rc_buf_init(&req->body, BODY_MAX);
		*con_cls = req;
		return MHD_YES;
	}
	if (*upload_size) {
		if (!req->too_big &&
		    rc_buf_put(&req->body, upload, *upload_size) < 0) {
			req->too_big = true;
			rc_error_clear();
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (req->too_big)
		return send_msg(conn, MHD_HTTP_CONTENT_TOO_LARGE,
				"the body is larger than 1 MiB");
	return route(api, conn, url, method, req);
}

static void done(void *cls, struct MHD_Connection *conn, void **con_cls,
		 enum MHD_RequestTerminationCode toe)
{
	request *req = *con_cls;

	RC_UNUSED(cls);
	RC_UNUSED(conn);
	RC_UNUSED(toe);
	if (req) {
		rc_buf_release(&req->body);
		free(req);
		*con_cls = NULL;
	}
}

int rc_http_api_start(rc_http_api **out, rc_ctl *ctl, const char *listen,
		      const char *token, const char *hook_secret)
{
	struct sockaddr_storage ss;
	bool loopback;
	rc_http_api *api;
	/* a thread per connection: an approval applies a plan before it
	   answers, and the health checks go on meanwhile; poll(), not
	   select(): a controller watching many environments holds more
	   than FD_SETSIZE descriptors, and select() refuses the rest */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
			 MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;

	*out = NULL;
	if (rc_http_listen_addr(listen, &ss, &loopback) < 0)
		return RC_EINVALID;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	api = rc_calloc(1, sizeof(*api));
	api->ctl = ctl;
	if (rc_ctl_tokens_parse(&api->tokens, token) < 0) {
		free(api);
		return RC_EINVALID;
	}
	for (size_t i = 0; i < api->tokens.n; i++)
		rc_secret_register(api->tokens.v[i].token);
	api->hook_secret = hook_secret && *hook_secret ? rc_strdup(hook_secret)
						       : NULL;
	api->d = MHD_start_daemon(
		flags, 0, NULL, NULL, answer, api, MHD_OPTION_SOCK_ADDR,
		(struct sockaddr *)&ss, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned)CONN_TIMEOUT, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		CONN_MEMORY, MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONN_LIMIT,
		MHD_OPTION_NOTIFY_COMPLETED, done, NULL, MHD_OPTION_END);
	if (!api->d) {
		rc_ctl_tokens_release(&api->tokens);
		free(api->hook_secret);
		free(api);
		return rc_error_set(RC_ERROR, RC_ECLASS_OS,
				    "cannot listen on %s (in use, or not an "
				    "address of this machine)",
				    listen);
	}
	*out = api;
	return 0;
}

void rc_http_api_stop(rc_http_api *api)
{
	if (!api)
		return;
	MHD_stop_daemon(api->d);
	rc_ctl_tokens_release(&api->tokens);
	free(api->hook_secret);
	free(api);
}
