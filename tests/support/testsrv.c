#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "tests/support/testsrv.h"

#include <pthread.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>

struct rc_testsrv {
	struct MHD_Daemon *d;
	int port;
	char url[64];
	bool require_client;
	pthread_mutex_t lock;
	rc_testsrv_step *steps;
	size_t nsteps, next;
	char *require_auth;
	char *hdr_name, *hdr_value, *hdr_prefix; /* rc_testsrv_require_header */
	rc_testsrv_req *reqs;
	size_t nreqs, capreqs;
	size_t connections;
};

/* One request in progress. */
struct pending {
	rc_buf body;
};

static char *dup0(const char *s)
{
	return s ? rc_strdup(s) : NULL;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void step_copy(rc_testsrv_step *dst, const rc_testsrv_step *src)
{
	size_t n = 0;
	char **chunks;

	*dst = *src;
	dst->body = dup0(src->body);
	dst->headers = dup0(src->headers);
	if (!src->chunks)
		return;
	while (src->chunks[n])
		n++;
	chunks = rc_calloc(n + 1, sizeof(*chunks));
	for (size_t i = 0; i < n; i++)
		chunks[i] = rc_strdup(src->chunks[i]);
	dst->chunks = (const char *const *)chunks;
}

static void step_free(rc_testsrv_step *s)
{
	free((char *)(uintptr_t)s->body);
	free((char *)(uintptr_t)s->headers);
	if (s->chunks) {
		for (size_t i = 0; s->chunks[i]; i++)
			free((char *)(uintptr_t)s->chunks[i]);
		free((void *)(uintptr_t)s->chunks);
	}
}

void rc_testsrv_req_release(rc_testsrv_req *r)
{
	free(r->method);
	free(r->path);
	free(r->query);
	free(r->authorization);
	free(r->user_agent);
	free(r->accept);
	free(r->content_type);
	free(r->client_cn);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

static void forget(rc_testsrv *s)
{
	for (size_t i = 0; i < s->nreqs; i++)
		rc_testsrv_req_release(&s->reqs[i]);
	s->nreqs = 0;
	s->connections = 0;
}

/* ------------------------------------------------------- client identity */

/* The CN of the client's certificate when it verified against the CA. */
static char *client_cn(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	gnutls_session_t session;
	const gnutls_datum_t *peers;
	unsigned int status = 0, npeers = 0;
	gnutls_x509_crt_t crt;
	char cn[256];
	size_t cnlen = sizeof(cn);
	char *out = NULL;

	if (!ci || !ci->tls_session)
		return NULL;
	session = (gnutls_session_t)ci->tls_session;
	if (gnutls_certificate_verify_peers2(session, &status) != 0 || status)
		return NULL;
	peers = gnutls_certificate_get_peers(session, &npeers);
	if (!peers || !npeers)
		return NULL;
	if (gnutls_x509_crt_init(&crt) != 0)
		return NULL;
	if (gnutls_x509_crt_import(crt, &peers[0], GNUTLS_X509_FMT_DER) == 0 &&
	    gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0,
					  0, cn, &cnlen) == 0)
		out = rc_strndup(cn, cnlen);
	gnutls_x509_crt_deinit(crt);
	return out;
}

/* ---------------------------------------------------------------- replies */

struct stream {
	char **pieces; /* body first, then the chunks */
	size_t n, i, off;
	long delay_ms;
	bool cut;      /* end with an error instead of the end of stream */
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *st = cls;
	size_t left, n;

	RC_UNUSED(pos);
	while (st->i < st->n && st->off == strlen(st->pieces[st->i])) {
		st->i++;
		st->off = 0;
		if (st->i < st->n && st->delay_ms)
			sleep_ms(st->delay_ms);
	}
	if (st->i == st->n)
		return st->cut ? MHD_CONTENT_READER_END_WITH_ERROR
			       : MHD_CONTENT_READER_END_OF_STREAM;
	left = strlen(st->pieces[st->i]) - st->off;
	n = left < max ? left : max;
	memcpy(buf, st->pieces[st->i] + st->off, n);
	st->off += n;
	return (ssize_t)n;
}

static void stream_free(void *cls)
{
	struct stream *st = cls;

	for (size_t i = 0; i < st->n; i++)
		free(st->pieces[i]);
	free(st->pieces);
	free(st);
}

static void add_headers(struct MHD_Response *r, const char *lines)
{
	const char *p = lines;

	while (p && *p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char *line = rc_strndup(p, len), *colon = strchr(line, ':');

		if (colon) {
			char *v = colon + 1;

			*colon = '\0';
			while (*v == ' ')
				v++;
			MHD_add_response_header(r, line, v);
		}
		free(line);
		p = nl ? nl + 1 : NULL;
	}
}

static enum MHD_Result reply(struct MHD_Connection *c,
			     const rc_testsrv_step *st)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	const char *body = st->body ? st->body : "";

	if (st->delay_ms)
		sleep_ms(st->delay_ms);
	if (st->action == RC_TESTSRV_DROP)
		return MHD_NO;
	if (st->action == RC_TESTSRV_CUT || st->chunks) {
		struct stream *s = rc_calloc(1, sizeof(*s));
		size_t n = 0;

		while (st->chunks && st->chunks[n])
			n++;
		s->pieces = rc_calloc(n + 1, sizeof(char *));
		s->pieces[s->n++] = rc_strdup(body);
		for (size_t i = 0; i < n; i++)
			s->pieces[s->n++] = rc_strdup(st->chunks[i]);
		s->delay_ms = st->chunk_delay_ms;
		s->cut = st->action == RC_TESTSRV_CUT;
		r = MHD_create_response_from_callback(
			s->cut ? strlen(body) + 1000 : MHD_SIZE_UNKNOWN, 4096,
			stream_read, s, stream_free);
	} else {
		r = MHD_create_response_from_buffer(strlen(body), (void *)body,
						    MHD_RESPMEM_MUST_COPY);
	}
	add_headers(r, st->headers);
	ret = MHD_queue_response(c, st->status ? (unsigned)st->status : 200,
				 r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind,
			       const char *key, const char *value)
{
	rc_buf *q = cls;

	RC_UNUSED(kind);
	rc_buf_printf(q, "%s%s=%s", q->len ? "&" : "", key,
		      value ? value : "");
	return MHD_YES;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c,
			      const char *url, const char *method,
			      const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	rc_testsrv *s = cls;
	struct pending *p = *con_cls;
	rc_testsrv_req req;
	rc_testsrv_step step;
	rc_buf q = RC_BUF_INIT;
	bool denied;
	enum MHD_Result ret;

	RC_UNUSED(version);
	if (!p) {
		p = rc_calloc(1, sizeof(*p));
		rc_buf_init(&p->body, RC_BUF_DEFAULT_MAX);
		*con_cls = p;
		return MHD_YES;
	}
	if (*upload_size) {
		rc_buf_put(&p->body, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}

	memset(&req, 0, sizeof(req));
	req.method = rc_strdup(method);
	req.path = rc_strdup(url);
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_arg, &q);
	req.query = rc_buf_detach(&q);
	req.authorization = dup0(MHD_lookup_connection_value(
		c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION));
	req.user_agent = dup0(MHD_lookup_connection_value(
		c, MHD_HEADER_KIND, MHD_HTTP_HEADER_USER_AGENT));
	req.accept = dup0(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						      MHD_HTTP_HEADER_ACCEPT));
	req.content_type = dup0(MHD_lookup_connection_value(
		c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE));
	req.client_cn = client_cn(c);
	req.body = rc_buf_detach(&p->body);
	free(p);
	*con_cls = NULL;
	denied = s->require_client && !req.client_cn;

	pthread_mutex_lock(&s->lock);
	if (s->require_auth && (!req.authorization ||
				strcmp(req.authorization, s->require_auth)))
		denied = true;
	if (s->hdr_name && !strncmp(url, s->hdr_prefix, strlen(s->hdr_prefix))) {
		const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							    s->hdr_name);

		if (!v || strcmp(v, s->hdr_value))
			denied = true;
	}
	memset(&step, 0, sizeof(step));
	if (!denied && s->nsteps) {
		step_copy(&step, &s->steps[s->next]);
		if (s->next + 1 < s->nsteps)
			s->next++;
	}
	RC_GROW(s->reqs, s->capreqs, s->nreqs + 1);
	s->reqs[s->nreqs++] = req;
	pthread_mutex_unlock(&s->lock);

	if (denied) {
		step.status = 401;
		step.body = rc_strdup("{\"kind\":\"Status\",\"code\":401}");
	}
	ret = reply(c, &step);
	step_free(&step);
	return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct pending *p = *con_cls;

	RC_UNUSED(cls);
	RC_UNUSED(c);
	RC_UNUSED(toe);
	if (p) {
		rc_buf_release(&p->body);
		free(p);
		*con_cls = NULL;
	}
}

static void notify(void *cls, struct MHD_Connection *c, void **socket_ctx,
		   enum MHD_ConnectionNotificationCode toe)
{
	rc_testsrv *s = cls;

	RC_UNUSED(c);
	RC_UNUSED(socket_ctx);
	if (toe != MHD_CONNECTION_NOTIFY_STARTED)
		return;
	pthread_mutex_lock(&s->lock);
	s->connections++;
	pthread_mutex_unlock(&s->lock);
}

rc_testsrv *rc_testsrv_start(const rc_testca *ca, bool trust_clients,
			     bool require_client)
{
	rc_testsrv *s = rc_calloc(1, sizeof(*s));
	const union MHD_DaemonInfo *info;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD |
			     MHD_USE_THREAD_PER_CONNECTION | MHD_USE_TLS;

	pthread_mutex_init(&s->lock, NULL);
	s->require_client = require_client;
	if (trust_clients)
		s->d = MHD_start_daemon(
			flags, 0, NULL, NULL, answer, s,
			MHD_OPTION_HTTPS_MEM_KEY, ca->server_key,
			MHD_OPTION_HTTPS_MEM_CERT, ca->server_cert,
			MHD_OPTION_HTTPS_MEM_TRUST, ca->ca_cert,
			MHD_OPTION_NOTIFY_COMPLETED, completed, s,
			MHD_OPTION_NOTIFY_CONNECTION, notify, s,
			MHD_OPTION_END);
	else
		s->d = MHD_start_daemon(
			flags, 0, NULL, NULL, answer, s,
			MHD_OPTION_HTTPS_MEM_KEY, ca->server_key,
			MHD_OPTION_HTTPS_MEM_CERT, ca->server_cert,
			MHD_OPTION_NOTIFY_COMPLETED, completed, s,
			MHD_OPTION_NOTIFY_CONNECTION, notify, s,
			MHD_OPTION_END);
	if (!s->d) {
		fprintf(stderr, "testsrv: cannot start the HTTPS server\n");
		pthread_mutex_destroy(&s->lock);
		free(s);
		return NULL;
	}
	info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info->port;
	snprintf(s->url, sizeof(s->url), "https://127.0.0.1:%d", s->port);
	return s;
}

void rc_testsrv_stop(rc_testsrv *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->d);
	forget(s);
	free(s->reqs);
	for (size_t i = 0; i < s->nsteps; i++)
		step_free(&s->steps[i]);
	free(s->steps);
	free(s->require_auth);
	free(s->hdr_name);
	free(s->hdr_value);
	free(s->hdr_prefix);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int rc_testsrv_port(const rc_testsrv *s)
{
	return s->port;
}

const char *rc_testsrv_url(const rc_testsrv *s)
{
	return s->url;
}

void rc_testsrv_script(rc_testsrv *s, const rc_testsrv_step *steps, size_t n)
{
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nsteps; i++)
		step_free(&s->steps[i]);
	free(s->steps);
	s->steps = rc_calloc(n + 1, sizeof(*s->steps));
	for (size_t i = 0; i < n; i++)
		step_copy(&s->steps[i], &steps[i]);
	s->nsteps = n;
	s->next = 0;
	forget(s);
	pthread_mutex_unlock(&s->lock);
}

void rc_testsrv_require_auth(rc_testsrv *s, const char *value)
{
	pthread_mutex_lock(&s->lock);
	free(s->require_auth);
	s->require_auth = dup0(value);
	pthread_mutex_unlock(&s->lock);
}

size_t rc_testsrv_requests(rc_testsrv *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->nreqs;
	pthread_mutex_unlock(&s->lock);
	return n;
}

size_t rc_testsrv_connections(rc_testsrv *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->connections;
	pthread_mutex_unlock(&s->lock);
	return n;
}

bool rc_testsrv_request(rc_testsrv *s, size_t i, rc_testsrv_req *out)
{
	bool ok = false;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&s->lock);
	if (i < s->nreqs) {
		const rc_testsrv_req *r = &s->reqs[i];

		out->method = dup0(r->method);
		out->path = dup0(r->path);
		out->query = dup0(r->query);
		out->authorization = dup0(r->authorization);
		out->user_agent = dup0(r->user_agent);
		out->accept = dup0(r->accept);
		out->content_type = dup0(r->content_type);
		out->client_cn = dup0(r->client_cn);
		out->body = dup0(r->body);
		ok = true;
	}
	pthread_mutex_unlock(&s->lock);
	return ok;
}

void rc_testsrv_require_header(rc_testsrv *s, const char *name,
			       const char *value, const char *path_prefix)
{
	pthread_mutex_lock(&s->lock);
	free(s->hdr_name);
	free(s->hdr_value);
	free(s->hdr_prefix);
	s->hdr_name = dup0(name);
	s->hdr_value = rc_strdup(value ? value : "");
	s->hdr_prefix = rc_strdup(path_prefix ? path_prefix : "");
	pthread_mutex_unlock(&s->lock);
}
