/*
 * The HTTP side: libmicrohttpd with a thread per connection (watches and
 * slow bodies block only their own connection), TLS with client
 * certificates, authentication and the per-user denials, the injected
 * faults and request counts, discovery documents, the routing of API
 * paths to ops.c, and the /fake/ control API.
 */
#include "tests/fake/kube/kube.h"

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <netinet/in.h>

#define MAX_BODY ((size_t)3 << 20) /* the API server's 3 MiB */

static struct MHD_Daemon *daemon_;
static struct kf_server *srv_;

struct conn {
	rc_buf body;
	bool too_big;
};

struct route {
	const struct kf_kind *kind;
	char *ns, *name, *sub;
	bool bad; /* a known prefix, an unknown resource or shape */
};

static const char *get_arg(void *cls, const char *key)
{
	return MHD_lookup_connection_value(cls, MHD_GET_ARGUMENT_KIND, key);
}

static const char *header(struct MHD_Connection *c, const char *name)
{
	return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* ---- responses ---- */

struct slow {
	char *data;
	size_t len, off, chunk;
	size_t stop; /* a truncated body: closed after this many bytes */
	long pause_ms;
};

/* The API request being answered on this thread (one thread per
 * connection): for the request log and the random faults. */
static __thread struct {
	bool api;
	long long t_ms;
	const char *method, *url;
	int kind; /* enum kf_fault_kind, -1: none */
} rq_;

static const char *const kind_names[KF_F_NKINDS] = {
    "429", "500", "503", "reset", "timeout", "truncated", "malformed",
    "shape", "gone"};

/* One line of the request log: METHOD PATH STATUS t=MS [fault=KIND]
 * [retry_after=N]; status 0 for a connection closed without an answer. */
static void log_request(int status, int retry_after)
{
	if (!rq_.api || !srv_->log)
		return;
	pthread_mutex_lock(&srv_->flock);
	fprintf(srv_->log, "%s %s %d t=%lld", rq_.method, rq_.url, status,
		rq_.t_ms);
	if (rq_.kind >= 0)
		fprintf(srv_->log, " fault=%s", kind_names[rq_.kind]);
	if (retry_after > 0)
		fprintf(srv_->log, " retry_after=%d", retry_after);
	fputc('\n', srv_->log);
	fflush(srv_->log);
	pthread_mutex_unlock(&srv_->flock);
}

static ssize_t slow_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct slow *s = cls;
	size_t n = s->len - s->off;

	(void)pos;
	if (s->stop && s->off >= s->stop)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (!n)
		return MHD_CONTENT_READER_END_OF_STREAM;
	kf_sleep_ms(srv_, s->pause_ms);
	if (srv_->stopping)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (s->stop && n > s->stop - s->off)
		n = s->stop - s->off;
	if (n > s->chunk)
		n = s->chunk;
	if (n > max)
		n = max;
	memcpy(buf, s->data + s->off, n);
	s->off += n;
	return (ssize_t)n;
}

static void slow_free(void *cls)
{
	struct slow *s = cls;

	free(s->data);
	free(s);
}

static ssize_t watch_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	size_t n = kf_watch_read(cls, buf, max);

	(void)pos;
	return n ? (ssize_t)n : MHD_CONTENT_READER_END_OF_STREAM;
}

static void watch_free(void *cls)
{
	kf_watch_free(cls);
}

/* Queues body (malloc'd, taken) as the response. */
static enum MHD_Result send_body(struct MHD_Connection *c, int code,
				 const char *ctype, char *body, size_t len,
				 int retry_after, long slow_ms)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	bool truncate = rq_.api && rq_.kind == KF_F_TRUNCATED && len > 1;

	if (rq_.api && rq_.kind == KF_F_MALFORMED) {
		len = len > 1 ? len / 2 : len; /* half a JSON text */
	} else if (rq_.api && rq_.kind == KF_F_SHAPE) {
		free(body);
		body = rc_strdup("[42]");
		len = 4;
	}
	if ((slow_ms > 0 || truncate) && len) {
		struct slow *s = rc_calloc(1, sizeof(*s));

		s->data = body;
		s->len = len;
		s->chunk = len / 20 ? len / 20 : 1;
		s->pause_ms = slow_ms / (long)((len + s->chunk - 1) / s->chunk);
		s->stop = truncate ? len / 2 : 0;
		resp = MHD_create_response_from_callback(len, 4096, slow_read,
							 s, slow_free);
	} else {
		resp = MHD_create_response_from_buffer(len, body,
						       MHD_RESPMEM_MUST_FREE);
	}
	MHD_add_response_header(resp, "Content-Type", ctype);
	MHD_add_response_header(resp, "Cache-Control", "no-cache, private");
	if (retry_after > 0) {
		char num[16];

		snprintf(num, sizeof(num), "%d", retry_after);
		MHD_add_response_header(resp, "Retry-After", num);
	}
	ret = MHD_queue_response(c, (unsigned)code, resp);
	MHD_destroy_response(resp);
	log_request(code, retry_after);
	return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, int code,
				 json_t *body, int retry_after, long slow_ms)
{
	char *s = json_dumps(body, JSON_COMPACT);
	size_t len = strlen(s);

	json_decref(body);
	s = rc_realloc(s, len + 2);
	s[len++] = '\n';
	s[len] = '\0';
	return send_body(c, code, "application/json", s, len, retry_after,
			 slow_ms);
}

static enum MHD_Result send_status(struct MHD_Connection *c, json_t *status)
{
	int code = (int)json_integer_value(json_object_get(status, "code"));

	return send_json(c, code, status, 0, 0);
}

static enum MHD_Result send_text(struct MHD_Connection *c, int code,
				 const char *text)
{
	return send_body(c, code, "text/plain; charset=utf-8", rc_strdup(text),
			 strlen(text), 0, 0);
}

/* ---- authentication and denials ---- */

static const struct kf_token *token_user(const char *authz)
{
	if (!authz || strncmp(authz, "Bearer ", 7))
		return NULL;
	for (size_t i = 0; i < srv_->ntokens; i++)
		if (!strcmp(srv_->tokens[i].token, authz + 7))
			return &srv_->tokens[i];
	return NULL;
}

/* The CN of a verified client certificate, or false. */
static bool cert_user(struct MHD_Connection *c, char *cn, size_t cnlen)
{
	const union MHD_ConnectionInfo *info;
	gnutls_session_t session;
	const gnutls_datum_t *certs;
	unsigned n = 0, status = 0;
	gnutls_x509_crt_t crt;
	size_t len = cnlen;
	bool ok = false;

	if (!srv_->tls)
		return false;
	info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (!info || !info->tls_session)
		return false;
	session = (gnutls_session_t)info->tls_session;
	if (gnutls_certificate_verify_peers2(session, &status) < 0 || status)
		return false;
	certs = gnutls_certificate_get_peers(session, &n);
	if (!certs || !n || gnutls_x509_crt_init(&crt) < 0)
		return false;
	if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) >= 0 &&
	    gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0,
					  0, cn, &len) >= 0)
		ok = true;
	gnutls_x509_crt_deinit(crt);
	return ok;
}

static bool glob_eq(const char *pattern, const char *s, size_t n)
{
	return (n == 1 && pattern[0] == '*') ||
	       (strlen(s) == n && !strncmp(pattern, s, n));
}

/* A rule VERB/RESOURCE, or VERB/RESOURCE@cluster for a request across
 * every namespace only (a namespaced kind listed or watched without
 * one): what a Role in each namespace, without a ClusterRole, allows. */
static bool denied(const struct kf_token *t, const char *verb,
		   const char *resource, bool every_namespace)
{
	for (size_t i = 0; t && i < t->ndeny; i++) {
		const char *rule = t->deny[i], *res;
		size_t vl = strcspn(rule, "/"), rl;

		if (!rule[vl])
			continue;
		res = rule + vl + 1;
		rl = strlen(res);
		if (rl > 8 && !strcmp(res + rl - 8, "@cluster")) {
			if (!every_namespace)
				continue;
			rl -= 8;
		}
		if (glob_eq(rule, verb, vl) && glob_eq(res, resource, rl))
			return true;
	}
	return false;
}

static json_t *forbidden(const char *user, const char *verb,
			 const struct route *rt)
{
	rc_buf msg = RC_BUF_INIT, qr = RC_BUF_INIT, q = RC_BUF_INIT,
	       res = RC_BUF_INIT;
	json_t *s;

	kf_qualified_resource(&qr, rt->kind);
	rc_buf_puts(&res, rt->kind->resource);
	if (rt->sub)
		rc_buf_printf(&res, "/%s", rt->sub);
	if (rt->name) {
		kf_go_quote(&q, rt->name);
		rc_buf_printf(&msg, "%s %s is forbidden: ", qr.ptr, q.ptr);
	} else {
		rc_buf_printf(&msg, "%s is forbidden: ", qr.ptr);
	}
	rc_buf_clear(&q);
	kf_go_quote(&q, user);
	rc_buf_printf(&msg,
		      "User %s cannot %s resource \"%s\" in API group \"%s\"",
		      q.ptr, verb, res.ptr, rt->kind->group);
	if (rt->ns)
		rc_buf_printf(&msg, " in the namespace \"%s\"", rt->ns);
	else
		rc_buf_puts(&msg, " at the cluster scope");
	s = kf_status(
	    403, "Forbidden", msg.ptr,
	    kf_details(rt->name, rt->kind->group, rt->kind->resource));
	rc_buf_release(&msg);
	rc_buf_release(&qr);
	rc_buf_release(&q);
	rc_buf_release(&res);
	return s;
}

static json_t *unauthorized(void)
{
	return kf_status(401, "Unauthorized", "Unauthorized", NULL);
}

/* ---- faults and counts ---- */

struct hit {
	bool any;
	int kind; /* a mix's: enum kf_fault_kind, -1: none */
	int status;
	int retry_after;
	bool reset;
	long slow_body_ms, hang_ms;
	char *message;
};

/* xorshift64*: a number in [0, 1) from a mix rule's generator */
static double mix_uniform(struct kf_fault *f)
{
	f->rng ^= f->rng >> 12;
	f->rng ^= f->rng << 25;
	f->rng ^= f->rng >> 27;
	return (double)((f->rng * 0x2545F4914F6CDD1DULL) >> 11) * 0x1.0p-53;
}

/* The kinds that apply to a request: a watch gets no spoiled bodies (its
 * events are a stream) and only a watch gets 410 Gone. */
static unsigned mix_kinds(const struct kf_fault *f, bool watch)
{
	unsigned body = 1u << KF_F_TRUNCATED | 1u << KF_F_MALFORMED |
			1u << KF_F_SHAPE;

	return f->kinds & (watch ? ~body : ~(1u << KF_F_GONE));
}

/* A mix rule's draw: the kind to inject, or -1. Under flock. */
static int mix_draw(struct kf_fault *f, bool watch)
{
	unsigned kinds = mix_kinds(f, watch), n = 0, pick;

	if (mix_uniform(f) >= f->rate)
		return -1;
	for (int k = 0; k < KF_F_NKINDS; k++)
		n += (kinds >> k) & 1u;
	if (!n)
		return -1;
	pick = (unsigned)(mix_uniform(f) * n);
	for (int k = 0; k < KF_F_NKINDS; k++)
		if (((kinds >> k) & 1u) && !pick--)
			return k;
	return -1;
}

static void mix_hit(struct kf_fault *f, int kind, struct hit *h)
{
	h->kind = kind;
	switch (kind) {
	case KF_F_429:
		h->status = 429;
		h->retry_after = f->retry_after > 0
				     ? f->retry_after
				     : 1 + (mix_uniform(f) >= 0.5);
		break;
	case KF_F_500:
		h->status = 500;
		break;
	case KF_F_503:
		h->status = 503;
		break;
	case KF_F_TIMEOUT:
		h->hang_ms = f->hang_ms > 0 ? f->hang_ms : 5000;
		/* fall through */
	case KF_F_RESET:
		h->reset = true;
		break;
	default: /* gone and the spoiled bodies: when the answer is sent */
		break;
	}
	srv_->injected[kind]++;
}

static void take_fault(const char *method, const char *url, bool watch,
		       struct hit *h, long *latency)
{
	memset(h, 0, sizeof(*h));
	h->kind = -1;
	pthread_mutex_lock(&srv_->flock);
	*latency = srv_->latency_ms;
	for (size_t i = 0; i < srv_->nfaults; i++) {
		struct kf_fault *f = &srv_->faults[i];
		int kind = -1;

		if (!f->count)
			continue;
		if (strcmp(f->method, "*") && strcasecmp(f->method, method))
			continue;
		if (strncmp(url, f->prefix, strlen(f->prefix)))
			continue;
		if (f->rate > 0 && (kind = mix_draw(f, watch)) < 0)
			continue;
		if (f->count > 0)
			f->count--;
		h->any = true;
		if (kind >= 0) {
			mix_hit(f, kind, h);
			break;
		}
		h->status = f->status;
		h->retry_after = f->retry_after;
		h->reset = f->reset;
		h->slow_body_ms = f->slow_body_ms;
		h->hang_ms = f->hang_ms;
		h->message = f->message ? rc_strdup(f->message) : NULL;
		break;
	}
	pthread_mutex_unlock(&srv_->flock);
}

static json_t *fault_status(const struct hit *h)
{
	const char *msg = h->message;
	json_t *d;

	switch (h->status) {
	case 429:
		d = json_pack("{s:i}", "retryAfterSeconds",
			      h->retry_after > 0 ? h->retry_after : 1);
		return kf_status(
		    429, "TooManyRequests",
		    msg ? msg : "Too many requests, please try again later.",
		    d);
	case 500:
		return kf_err_internal(msg ? msg : "injected fault");
	case 503:
		return kf_status(503, "ServiceUnavailable",
				 msg ? msg
				     : "the server is currently unable to "
				       "handle the request",
				 NULL);
	case 504:
		d = json_pack("{s:i}", "retryAfterSeconds",
			      h->retry_after > 0 ? h->retry_after : 1);
		return kf_status(504, "Timeout",
				 msg ? msg
				     : "Timeout: request did not complete "
				       "within the allotted timeout",
				 d);
	case 409:
		return kf_status(409, "Conflict",
				 msg ? msg : "injected conflict", NULL);
	case 404:
		return kf_status(404, "NotFound",
				 msg ? msg : "injected not found", NULL);
	case 403:
		return kf_status(403, "Forbidden", msg ? msg : "forbidden",
				 NULL);
	case 401:
		return unauthorized();
	default:
		return kf_status(h->status, "", msg ? msg : "injected fault",
				 NULL);
	}
}

static void count(const char *verb, const char *resource)
{
	json_t *v;

	pthread_mutex_lock(&srv_->flock);
	srv_->requests++;
	v = json_object_get(srv_->by_verb, verb);
	json_object_set_new(srv_->by_verb, verb,
			    json_integer(json_integer_value(v) + 1));
	if (resource) {
		v = json_object_get(srv_->by_resource, resource);
		json_object_set_new(srv_->by_resource, resource,
				    json_integer(json_integer_value(v) + 1));
	}
	pthread_mutex_unlock(&srv_->flock);
}

/* ---- routing ---- */

static void route_release(struct route *rt)
{
	free(rt->ns);
	free(rt->name);
	free(rt->sub);
}

static size_t split(const char *path, char **segs, size_t max)
{
	size_t n = 0;

	while (*path) {
		size_t len;

		while (*path == '/')
			path++;
		if (!*path)
			break;
		len = strcspn(path, "/");
		if (n == max) {
			for (size_t i = 0; i < n; i++)
				free(segs[i]);
			return max + 1;
		}
		segs[n++] = rc_strndup(path, len);
		path += len;
	}
	return n;
}

/* Fills rt for an API path under /api/v1 or /apis/G/V; false when the path
 * is not one (discovery or unknown). */
static bool parse_route(const char *url, struct route *rt)
{
	char *segs[8], group[128] = "", version[32] = "";
	size_t n, at = 0;
	bool ok = false;

	memset(rt, 0, sizeof(*rt));
	n = split(url, segs, RC_ARRAY_SIZE(segs));
	if (n > RC_ARRAY_SIZE(segs))
		return false;
	if (n >= 3 && !strcmp(segs[0], "api")) {
		snprintf(version, sizeof(version), "%s", segs[1]);
		at = 2;
	} else if (n >= 4 && !strcmp(segs[0], "apis")) {
		snprintf(group, sizeof(group), "%s", segs[1]);
		snprintf(version, sizeof(version), "%s", segs[2]);
		at = 3;
	} else {
		goto out;
	}
	ok = true;
	if (n - at >= 3 && !strcmp(segs[at], "namespaces") &&
	    (rt->kind = kf_kind_find(group, version, segs[at + 2])) &&
	    rt->kind->namespaced) {
		if (n - at > 5) {
			rt->bad = true;
			goto out;
		}
		rt->ns = rc_strdup(segs[at + 1]);
		if (n - at > 3)
			rt->name = rc_strdup(segs[at + 3]);
		if (n - at > 4)
			rt->sub = rc_strdup(segs[at + 4]);
		goto out;
	}
	rt->kind = kf_kind_find(group, version, segs[at]);
	if (!rt->kind || n - at > 3) {
		rt->bad = true;
		goto out;
	}
	if (n - at > 1)
		rt->name = rc_strdup(segs[at + 1]);
	if (n - at > 2)
		rt->sub = rc_strdup(segs[at + 2]);
	/* a namespaced kind without a namespace is only a list or watch */
	if (rt->kind->namespaced && rt->name)
		rt->bad = true;
out:
	for (size_t i = 0; i < n; i++)
		free(segs[i]);
	return ok;
}

static const char *rbac_verb(const char *method, const struct route *rt,
			     struct MHD_Connection *c)
{
	const char *w = get_arg(c, "watch");
	bool watch = w && (!strcmp(w, "true") || !strcmp(w, "1"));

	if (!strcmp(method, "GET"))
		return rt->name ? "get" : watch ? "watch" : "list";
	if (!strcmp(method, "POST"))
		return "create";
	if (!strcmp(method, "PUT"))
		return "update";
	if (!strcmp(method, "PATCH"))
		return "patch";
	if (!strcmp(method, "DELETE"))
		return rt->name ? "delete" : "deletecollection";
	return "unknown";
}

static const char *stats_verb(const char *rverb, const char *method)
{
	if (!strcmp(rverb, "list"))
		return "LIST";
	if (!strcmp(rverb, "watch"))
		return "WATCH";
	return method;
}

/* ---- discovery ---- */

static const struct kf_datafile *datafile(const char *name)
{
	for (size_t i = 0; i < kf_ndatafiles; i++)
		if (!strcmp(kf_datafiles[i].name, name))
			return &kf_datafiles[i];
	return NULL;
}

static json_t *load_data(const char *name)
{
	const struct kf_datafile *f = datafile(name);

	return f ? json_loadb((const char *)f->data, f->len, 0, NULL) : NULL;
}

/* The discovery document at url (new), or NULL. */
static json_t *discovery(const char *url)
{
	char *segs[4];
	size_t n = split(url, segs, RC_ARRAY_SIZE(segs));
	json_t *doc = NULL;
	rc_buf name = RC_BUF_INIT;

	if (n > RC_ARRAY_SIZE(segs))
		return NULL;
	if (n == 1 && !strcmp(segs[0], "version")) {
		doc = load_data("version.json");
	} else if (n == 1 && !strcmp(segs[0], "api")) {
		doc = load_data("api.json");
		json_object_set_new(
		    json_array_get(kf_jget(doc, "serverAddressByClientCIDRs"),
				   0),
		    "serverAddress", json_string(srv_->api_doc_port));
	} else if (n == 2 && !strcmp(segs[0], "api")) {
		rc_buf_printf(&name, "api_%s.json", segs[1]);
		doc = load_data(name.ptr);
	} else if (n == 1 && !strcmp(segs[0], "apis")) {
		doc = load_data("apis.json");
	} else if (n == 2 && !strcmp(segs[0], "apis")) {
		json_t *all = load_data("apis.json"), *g;
		size_t i;

		json_array_foreach(json_object_get(all, "groups"), i,
				   g) if (kf_jstr(g, "name") &&
					  !strcmp(kf_jstr(g, "name"), segs[1]))
		{
			doc = json_pack("{s:s,s:s}", "kind", "APIGroup",
					"apiVersion", "v1");
			json_object_update(doc, g);
		}
		json_decref(all);
	} else if (n == 3 && !strcmp(segs[0], "apis")) {
		rc_buf_printf(&name, "apis_%s_%s.json", segs[1], segs[2]);
		doc = load_data(name.ptr);
	}
	for (size_t i = 0; i < n; i++)
		free(segs[i]);
	rc_buf_release(&name);
	return doc;
}

/* ---- the control API ---- */

static json_t *faults_json(void)
{
	json_t *rules = json_array();

	for (size_t i = 0; i < srv_->nfaults; i++) {
		struct kf_fault *f = &srv_->faults[i];
		rc_buf m = RC_BUF_INIT;
		json_t *r;

		rc_buf_printf(&m, "%s %s", f->method, f->prefix);
		r = json_pack("{s:s}", "match", m.ptr);
		if (f->status)
			json_object_set_new(r, "status",
					    json_integer(f->status));
		if (f->retry_after)
			json_object_set_new(r, "retry_after",
					    json_integer(f->retry_after));
		if (f->count >= 0)
			json_object_set_new(r, "count", json_integer(f->count));
		if (f->reset)
			json_object_set_new(r, "reset", json_true());
		if (f->slow_body_ms)
			json_object_set_new(r, "slow_body_ms",
					    json_integer(f->slow_body_ms));
		if (f->hang_ms)
			json_object_set_new(r, "hang_ms",
					    json_integer(f->hang_ms));
		if (f->message)
			json_object_set_new(r, "message",
					    json_string(f->message));
		if (f->rate > 0) {
			json_t *k = json_array();

			for (int j = 0; j < KF_F_NKINDS; j++)
				if (f->kinds & (1u << j))
					json_array_append_new(
					    k, json_string(kind_names[j]));
			json_object_set_new(r, "rate", json_real(f->rate));
			json_object_set_new(r, "kinds", k);
			json_object_set_new(r, "seed",
					    json_integer((json_int_t)f->seed));
		}
		json_array_append_new(rules, r);
		rc_buf_release(&m);
	}
	return json_pack("{s:I,s:o}", "latency_ms",
			 (json_int_t)srv_->latency_ms, "rules", rules);
}

static void clear_faults(void)
{
	for (size_t i = 0; i < srv_->nfaults; i++) {
		free(srv_->faults[i].method);
		free(srv_->faults[i].prefix);
		free(srv_->faults[i].message);
	}
	srv_->nfaults = 0;
	srv_->latency_ms = 0;
}

/* A rule's "rate", "kinds" and "seed" read into f (when not NULL):
 * 0, or -1 when they are wrong. */
static int mix_kinds_of(json_t *r, struct kf_fault *f)
{
	json_t *rate = json_object_get(r, "rate"), *kinds, *k;
	unsigned bits = 0;
	size_t i;

	if (!rate)
		return 0;
	if (!json_is_number(rate) || json_number_value(rate) < 0 ||
	    json_number_value(rate) > 1)
		return -1;
	kinds = json_object_get(r, "kinds");
	if (kinds && (!json_is_array(kinds) || !json_array_size(kinds)))
		return -1;
	json_array_foreach(kinds, i, k) {
		int j = 0;

		while (j < KF_F_NKINDS &&
		       (!json_is_string(k) ||
			strcmp(json_string_value(k), kind_names[j])))
			j++;
		if (j == KF_F_NKINDS)
			return -1;
		bits |= 1u << j;
	}
	if (f) {
		f->rate = json_number_value(rate);
		f->kinds = kinds ? bits : (1u << KF_F_NKINDS) - 1;
		f->seed = json_is_integer(json_object_get(r, "seed"))
			      ? (uint64_t)json_integer_value(
				    json_object_get(r, "seed"))
			      : 1;
		f->rng = f->seed * 0x9E3779B97F4A7C15ULL | 1;
	}
	return 0;
}

static json_t *set_faults(json_t *cfg)
{
	json_t *rules = json_object_get(cfg, "rules"), *r;
	size_t i;

	if (!json_is_object(cfg) || (rules && !json_is_array(rules)))
		return kf_err_bad_request("faults: want {\"latency_ms\": N, "
					  "\"rules\": [...]}");
	json_array_foreach(rules, i, r) {
		const char *match = kf_jstr(r, "match");

		if (!match || !strchr(match, ' '))
			return kf_err_bad_request(
			    "faults: rule %zu: \"match\" "
			    "must be \"METHOD /path-prefix\"",
			    i);
		if (mix_kinds_of(r, NULL) < 0)
			return kf_err_bad_request(
			    "faults: rule %zu: \"rate\" must be a number "
			    "from 0 to 1 and \"kinds\" a list of 429, 500, "
			    "503, reset, timeout, truncated, malformed, "
			    "shape, gone",
			    i);
	}
	pthread_mutex_lock(&srv_->flock);
	clear_faults();
	srv_->latency_ms =
	    (long)json_integer_value(json_object_get(cfg, "latency_ms"));
	json_array_foreach(rules, i, r) {
		const char *match = kf_jstr(r, "match");
		size_t sp = strcspn(match, " ");
		struct kf_fault *f;
		json_t *count = json_object_get(r, "count");

		RC_GROW(srv_->faults, srv_->capfaults, srv_->nfaults + 1);
		f = &srv_->faults[srv_->nfaults++];
		memset(f, 0, sizeof(*f));
		f->method = rc_strndup(match, sp);
		f->prefix = rc_strdup(match + sp + strspn(match + sp, " "));
		f->status =
		    (int)json_integer_value(json_object_get(r, "status"));
		f->retry_after =
		    (int)json_integer_value(json_object_get(r, "retry_after"));
		f->count = json_is_integer(count)
			       ? (long)json_integer_value(count)
			       : -1;
		f->reset = json_is_true(json_object_get(r, "reset"));
		f->slow_body_ms = (long)json_integer_value(
		    json_object_get(r, "slow_body_ms"));
		f->hang_ms =
		    (long)json_integer_value(json_object_get(r, "hang_ms"));
		if (kf_jstr(r, "message"))
			f->message = rc_strdup(kf_jstr(r, "message"));
		mix_kinds_of(r, f);
	}
	r = faults_json();
	pthread_mutex_unlock(&srv_->flock);
	return r;
}

static json_t *all_objects(void)
{
	json_t *items = json_array();

	pthread_mutex_lock(&srv_->lock);
	for (size_t k = 0; k < kf_nkinds; k++) {
		struct kf_index *ix =
		    kf_store_index(&srv_->store, &kf_kinds[k]);

		for (size_t i = 0; i < ix->n; i++)
			json_array_append(items, ix->v[i]->json);
	}
	pthread_mutex_unlock(&srv_->lock);
	return json_pack("{s:o}", "items", items);
}

static enum MHD_Result control(struct MHD_Connection *c, const char *method,
			       const char *url, struct conn *cn)
{
	json_t *body = NULL, *res = NULL;

	if (cn->body.len) {
		body = json_loadb(cn->body.ptr, cn->body.len, 0, NULL);
		if (!body)
			return send_status(
			    c,
			    kf_err_bad_request("the request body is not JSON"));
	}
	if (!strcmp(url, "/fake/stats") && !strcmp(method, "GET")) {
		json_t *inj = json_object();

		pthread_mutex_lock(&srv_->flock);
		for (int k = 0; k < KF_F_NKINDS; k++)
			if (srv_->injected[k])
				json_object_set_new(
				    inj, kind_names[k],
				    json_integer(
					(json_int_t)srv_->injected[k]));
		res = json_pack("{s:I,s:o,s:o,s:o}", "requests",
				(json_int_t)srv_->requests, "by_verb",
				json_deep_copy(srv_->by_verb), "by_resource",
				json_deep_copy(srv_->by_resource), "faults",
				inj);
		pthread_mutex_unlock(&srv_->flock);
	} else if (!strcmp(url, "/fake/stats/reset") &&
		   !strcmp(method, "POST")) {
		pthread_mutex_lock(&srv_->flock);
		srv_->requests = 0;
		memset(srv_->injected, 0, sizeof(srv_->injected));
		json_object_clear(srv_->by_verb);
		json_object_clear(srv_->by_resource);
		pthread_mutex_unlock(&srv_->flock);
		res = json_pack("{s:i}", "requests", 0);
	} else if (!strcmp(url, "/fake/faults") && !strcmp(method, "POST")) {
		res = set_faults(body);
		if (json_is_string(json_object_get(res, "kind"))) {
			json_decref(body);
			return send_status(c, res);
		}
	} else if (!strcmp(url, "/fake/faults") && !strcmp(method, "DELETE")) {
		pthread_mutex_lock(&srv_->flock);
		clear_faults();
		res = faults_json();
		pthread_mutex_unlock(&srv_->flock);
	} else if (!strcmp(url, "/fake/faults") && !strcmp(method, "GET")) {
		pthread_mutex_lock(&srv_->flock);
		res = faults_json();
		pthread_mutex_unlock(&srv_->flock);
	} else if (!strcmp(url, "/fake/rollout") && !strcmp(method, "POST")) {
		const char *ns = kf_jstr(body, "namespace");
		const char *name = kf_jstr(body, "name");

		if (!ns || !name) {
			json_decref(body);
			return send_status(
			    c,
			    kf_err_bad_request("rollout: want {\"namespace\", "
					       "\"name\", \"fail\"}"));
		}
		pthread_mutex_lock(&srv_->lock);
		kf_ctl_rollout(srv_, ns, name,
			       json_is_true(json_object_get(body, "fail")),
			       json_is_true(json_object_get(body, "stall")));
		pthread_mutex_unlock(&srv_->lock);
		res = json_deep_copy(body);
	} else if (!strcmp(url, "/fake/gc") && !strcmp(method, "POST")) {
		json_t *ms = json_object_get(body, "delay_ms");

		if (!json_is_integer(ms) || json_integer_value(ms) < 0 ||
		    json_integer_value(ms) > 3600000) {
			json_decref(body);
			return send_status(
			    c, kf_err_bad_request("gc: want {\"delay_ms\": N}, "
						  "0 <= N <= 3600000"));
		}
		pthread_mutex_lock(&srv_->lock);
		srv_->gc_delay_ms = (long)json_integer_value(ms);
		pthread_mutex_unlock(&srv_->lock);
		res = json_pack("{s:I}", "delay_ms", json_integer_value(ms));
	} else if (!strcmp(url, "/fake/gc") && !strcmp(method, "GET")) {
		pthread_mutex_lock(&srv_->lock);
		res = json_pack("{s:I}", "delay_ms",
				(json_int_t)srv_->gc_delay_ms);
		pthread_mutex_unlock(&srv_->lock);
	} else if (!strcmp(url, "/fake/compact") && !strcmp(method, "POST")) {
		char num[32];

		pthread_mutex_lock(&srv_->lock);
		kf_store_compact(&srv_->store);
		snprintf(num, sizeof(num), "%llu",
			 (unsigned long long)srv_->store.rv);
		pthread_cond_broadcast(&srv_->changed);
		pthread_mutex_unlock(&srv_->lock);
		res = json_pack("{s:s}", "resourceVersion", num);
	} else if (!strcmp(url, "/fake/objects") && !strcmp(method, "GET")) {
		res = all_objects();
	} else {
		json_decref(body);
		return send_text(c, 404, "404 page not found\n");
	}
	json_decref(body);
	return send_json(c, 200, res, 0, 0);
}

/* ---- the request handler ---- */

static bool is_health(const char *url)
{
	return !strcmp(url, "/healthz") || !strcmp(url, "/livez") ||
	       !strcmp(url, "/readyz");
}

static enum MHD_Result serve_api(struct MHD_Connection *c, const char *method,
				 struct route *rt, const char *user,
				 struct conn *cn, long slow_ms)
{
	struct kf_req r = {0};
	struct kf_reply out;

	r.method = method;
	r.kind = rt->kind;
	r.ns = rt->ns;
	r.name = rt->name;
	r.sub = rt->sub;
	r.user = user;
	r.user_agent = header(c, "User-Agent");
	r.content_type = header(c, "Content-Type");
	r.body = cn->body.ptr;
	r.body_len = cn->body.len;
	r.arg = get_arg;
	r.arg_cls = c;
	kf_serve(srv_, &r, &out);
	if (out.watch) {
		struct MHD_Response *resp = MHD_create_response_from_callback(
		    MHD_SIZE_UNKNOWN, 16384, watch_read, out.watch, watch_free);
		enum MHD_Result ret;

		MHD_add_response_header(resp, "Content-Type",
					"application/json");
		MHD_add_response_header(resp, "Cache-Control",
					"no-cache, private");
		ret = MHD_queue_response(c, 200, resp);
		MHD_destroy_response(resp);
		log_request(200, 0);
		return ret;
	}
	if (out.text)
		return send_body(c, out.code, out.ctype, out.text,
				 strlen(out.text), 0, slow_ms);
	return send_json(c, out.code, out.json, 0, slow_ms);
}

static enum MHD_Result handle(struct MHD_Connection *c, const char *url,
			      const char *method, struct conn *cn)
{
	const struct kf_token *tok;
	char cn_buf[256];
	const char *user = NULL;
	struct route rt;
	bool api, is_admin;
	struct hit h;
	long latency;
	enum MHD_Result ret;
	const char *rverb = "get";

	rq_.api = false;
	rq_.kind = -1;
	if (is_health(url))
		return send_text(c, 200, "ok");
	if (strncmp(url, "/fake/", 6)) {
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		rq_.api = true;
		rq_.t_ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
		rq_.method = method;
		rq_.url = url;
	}
	api = parse_route(url, &rt);
	if (strncmp(url, "/fake/", 6)) {
		if (api && !rt.bad)
			rverb = rbac_verb(method, &rt, c);
		count(stats_verb(rverb, method),
		      api && rt.kind ? rt.kind->resource : NULL);
	}
	tok = token_user(header(c, "Authorization"));
	if (tok)
		user = tok->user;
	else if (cert_user(c, cn_buf, sizeof(cn_buf)))
		user = cn_buf;
	if (!user) {
		route_release(&rt);
		return send_status(c, unauthorized());
	}
	/* the admin token, or the client certificate (CN=admin) */
	is_admin = !strcmp(user, "admin");
	if (!strncmp(url, "/fake/", 6)) {
		route_release(&rt);
		if (!is_admin)
			return send_status(
			    c, kf_status(403, "Forbidden",
					 "forbidden: the control API needs "
					 "the admin token",
					 json_object()));
		return control(c, method, url, cn);
	}
	if (cn->too_big) {
		route_release(&rt);
		return send_status(c,
				   kf_status(413, "RequestEntityTooLarge",
					     "Request entity too large: limit "
					     "is 3145728",
					     NULL));
	}
	take_fault(method, url, !strcmp(rverb, "watch"), &h, &latency);
	rq_.kind = h.kind;
	kf_sleep_ms(srv_, latency);
	if (h.hang_ms)
		kf_sleep_ms(srv_, h.hang_ms);
	if (h.reset) {
		route_release(&rt);
		free(h.message);
		log_request(0, 0);
		return MHD_NO;
	}
	if (h.kind == KF_F_GONE) {
		/* as a watch from a compacted resourceVersion: 200, one
		 * ERROR event with the 410 Expired Status, the end */
		route_release(&rt);
		return send_json(
		    c, 200,
		    json_pack("{s:s,s:o}", "type", "ERROR", "object",
			      kf_status(410, "Expired",
					"too old resource version: 1 (2)",
					NULL)),
		    0, 0);
	}
	if (h.status) {
		json_t *s = fault_status(&h);
		int ra = h.status == 429 || h.status == 504
			     ? (h.retry_after > 0 ? h.retry_after : 1)
			     : h.retry_after;

		route_release(&rt);
		free(h.message);
		return send_json(c, h.status, s, ra, h.slow_body_ms);
	}
	free(h.message);
	if (!api) {
		json_t *doc = discovery(url);

		route_release(&rt);
		if (!doc)
			return send_text(c, 404, "404 page not found\n");
		return send_json(c, 200, doc, 0, h.slow_body_ms);
	}
	if (rt.bad) {
		route_release(&rt);
		return send_status(c, kf_err_no_resource());
	}
	/* RBAC names a subresource pods/log: rules on pods do not cover it */
	if (tok) {
		rc_buf res = RC_BUF_INIT;
		bool deny;

		rc_buf_puts(&res, rt.kind->resource);
		if (rt.sub)
			rc_buf_printf(&res, "/%s", rt.sub);
		deny = denied(tok, rverb, res.ptr,
			      rt.kind->namespaced && !rt.ns);
		rc_buf_release(&res);
		if (deny) {
			json_t *s = forbidden(user, rverb, &rt);

			route_release(&rt);
			return send_status(c, s);
		}
	}
	ret = serve_api(c, method, &rt, user, cn, h.slow_body_ms);
	route_release(&rt);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct conn *cn = *con_cls;

	(void)cls;
	(void)version;
	if (!cn) {
		cn = rc_calloc(1, sizeof(*cn));
		rc_buf_init(&cn->body, MAX_BODY);
		*con_cls = cn;
		return MHD_YES;
	}
	if (*upload_size) {
		if (rc_buf_put(&cn->body, upload, *upload_size) < 0)
			cn->too_big = true;
		*upload_size = 0;
		return MHD_YES;
	}
	return handle(c, url, method, cn);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct conn *cn = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (!cn)
		return;
	rc_buf_release(&cn->body);
	free(cn);
	*con_cls = NULL;
}

int kf_http_start(struct kf_server *srv, const char *cert, const char *key,
		  const char *trust)
{
	struct sockaddr_in sa;
	struct MHD_OptionItem tls[] = {
	    {MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)key},
	    {MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)cert},
	    {MHD_OPTION_HTTPS_MEM_TRUST, 0, (void *)trust},
	    {MHD_OPTION_END, 0, NULL},
	};
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD |
			 MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
	const union MHD_DaemonInfo *info;

	srv_ = srv;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)srv->port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (srv->tls)
		flags |= MHD_USE_TLS;
	daemon_ = MHD_start_daemon(
	    flags, (uint16_t)srv->port, NULL, NULL, on_request, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000, MHD_OPTION_ARRAY,
	    srv->tls ? tls : &tls[3], MHD_OPTION_END);
	if (!daemon_) {
		fprintf(stderr, "rc_fake_kube: cannot listen on 127.0.0.1:%d\n",
			srv->port);
		return -1;
	}
	info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
	if (info)
		srv->port = info->port;
	return 0;
}

void kf_http_release(void)
{
	pthread_mutex_lock(&srv_->flock);
	clear_faults();
	pthread_mutex_unlock(&srv_->flock);
}

void kf_http_stop(void)
{
	if (daemon_)
		MHD_stop_daemon(daemon_);
	daemon_ = NULL;
}
