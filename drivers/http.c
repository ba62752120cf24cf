/*
 * The HTTP client (see drivers/http.h and docs/drivers/http.md).
 *
 * Connections: libcurl keeps a connection alive inside the easy handle that
 * made it, and a handle serves one thread at a time. Idle handles wait in a
 * pool guarded by a mutex: a request takes one (or makes one when the pool
 * is empty), resets its options, sends, and puts it back with its live
 * connection. DNS answers and TLS sessions sit in a curl share handle, so a
 * handle made later resumes a session instead of a full handshake. (A
 * shared connection cache is not supported across concurrent threads by
 * libcurl, hence the pool.)
 */
#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/codec.h"
#include "reconciler/base/crashpoint.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "drivers/http.h"

#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>

/* Idle handles kept beyond this many are closed. */
#define POOL_KEEP 16

#define RC_HTTP_HOLDS 16

struct rc_http {
	char *base_url; /* without a trailing '/' */
	char *origin;   /* "scheme://host:port" of base_url, lowercase */
	struct curl_slist *connect_to;
	char *ca_file, *cert_file, *key_file;
	char *ca_pem, *cert_pem, *key_pem;
	bool insecure;
	char *proxy;
	char *auth_header; /* "Authorization: ..." or NULL */
	rc_http_sign_fn sign;
	rc_http_refresh_fn refresh;
	void *sign_ctx;
	char *user_agent;
	char *driver;   /* the label of its attempts in the process's table */
	char *service;  /* what its endpoint is, for messages */
	struct curl_slist *headers; /* Accept, defaults, "Expect:" */
	long connect_timeout_ms, timeout_ms;
	int max_retries;
	long backoff_base_ms, backoff_cap_ms, retry_after_cap_ms;
	size_t max_body;

	pthread_mutex_t pool_lock;
	CURL **idle;
	size_t nidle, capidle;

	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

	pthread_mutex_t rate_lock;
	double qps, burst, tokens;
	long long rate_last_ns;
	/* the budget the server reports in rate_header */
	char *rate_header;
	double rate_reserve, rate_refill;
	bool rate_known;
	double rate_remaining; /* as of rate_at_ns, less attempts since */
	long long rate_at_ns;
	/* the endpoints (method and path, no query) a 429 or 503 told to
	   wait, and until when: every request of the client to one waits,
	   not only the one that was told (under rate_lock) */
	struct {
		char *key;
		long long until_ns;
	} holds[RC_HTTP_HOLDS];

	pthread_mutex_t stats_lock;
	rc_http_counters stats;
	long long wait_ns;
};

/* ----------------------------------------------------------------- time */

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ns(long long ns)
{
	struct timespec ts, rem;

	if (ns <= 0)
		return;
	ts.tv_sec = (time_t)(ns / 1000000000LL);
	ts.tv_nsec = (long)(ns % 1000000000LL);
	while (nanosleep(&ts, &rem) < 0 && errno == EINTR)
		ts = rem;
}

/* A duration for messages: "2s", "1.5s" or "300ms". */
static void put_duration(rc_buf *b, long ms)
{
	if (ms >= 1000 && ms % 1000 == 0)
		rc_buf_printf(b, "%lds", ms / 1000);
	else if (ms >= 1000)
		rc_buf_printf(b, "%.1fs", (double)ms / 1000.0);
	else
		rc_buf_printf(b, "%ldms", ms);
}

/* A per-thread xorshift for jitter: no lock, no shared state. */
static uint64_t jitter_next(void)
{
	static _Thread_local uint64_t s;

	if (!s)
		s = (uint64_t)now_ns() ^ ((uint64_t)(uintptr_t)&s << 16) ^
		    0x9e3779b97f4a7c15ULL;
	s ^= s << 13;
	s ^= s >> 7;
	s ^= s << 17;
	return s;
}

/* ------------------------------------------------------------- curl init */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *e, curl_lock_data data, curl_lock_access acc,
		       void *ud)
{
	rc_http *h = ud;

	RC_UNUSED(e);
	RC_UNUSED(acc);
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&h->share_locks[data]);
}

static void share_unlock(CURL *e, curl_lock_data data, void *ud)
{
	rc_http *h = ud;

	RC_UNUSED(e);
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&h->share_locks[data]);
}

/* --------------------------------------------------------------- options */

void rc_http_opts_init(rc_http_opts *o)
{
	const char *t = getenv("RECONCILE_HTTP_TIMEOUT_MS");
	char *end = NULL;
	long ms = t ? strtol(t, &end, 10) : 0;

	memset(o, 0, sizeof(*o));
	o->connect_timeout_ms = RC_HTTP_CONNECT_TIMEOUT_MS;
	/* RECONCILE_HTTP_TIMEOUT_MS: a shorter (or longer) attempt for every
	 * client, e.g. a test that makes a server hang */
	o->timeout_ms = ms >= 100 && end && !*end ? ms : RC_HTTP_TIMEOUT_MS;
	o->max_retries = RC_HTTP_MAX_RETRIES;
	o->backoff_base_ms = RC_HTTP_BACKOFF_BASE_MS;
	o->backoff_cap_ms = RC_HTTP_BACKOFF_CAP_MS;
	o->retry_after_cap_ms = RC_HTTP_RETRY_AFTER_CAP_MS;
	o->max_body = RC_HTTP_MAX_BODY;
}

static char *dup_or_null(const char *s)
{
	return s && *s ? rc_strdup(s) : NULL;
}

static void free_secret(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

/* Points the URL at tls_server_name and connects to the real host, so
 * that the certificate is checked against (and SNI names) that name. */
static int set_server_name(rc_http *h, const char *name)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL, *url = NULL;
	rc_buf line = RC_BUF_INIT_MAX(4096);
	int rc = 0;

	if (curl_url_set(u, CURLUPART_URL, h->base_url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) !=
		    CURLUE_OK ||
	    curl_url_set(u, CURLUPART_HOST, name, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_HTTP,
				  "cannot use TLS server name '%s' with '%s'",
				  name, h->base_url);
		goto done;
	}
	rc_buf_printf(&line, "%s:%s:%s:%s", name, port, host, port);
	h->connect_to = curl_slist_append(NULL, line.ptr);
	free(h->base_url);
	h->base_url = rc_strdup(url);
	while (h->base_url[0] && h->base_url[strlen(h->base_url) - 1] == '/')
		h->base_url[strlen(h->base_url) - 1] = '\0';
done:
	curl_free(host);
	curl_free(port);
	curl_free(url);
	curl_url_cleanup(u);
	rc_buf_release(&line);
	return rc;
}

/* "scheme://host:port" of url, lowercase, the port always written; NULL
 * when url is not a URL. The caller frees. */
static char *origin_of(const char *url)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *out = NULL;
	rc_buf b = RC_BUF_INIT_MAX(4096);

	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) ==
		    CURLUE_OK &&
	    rc_buf_printf(&b, "%s://%s:%s", scheme, host, port) == 0) {
		for (size_t i = 0; i < b.len; i++)
			b.ptr[i] = (char)tolower((unsigned char)b.ptr[i]);
		out = rc_buf_detach(&b);
	}
	rc_buf_release(&b);
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return out;
}

static int check_base_url(const char *url)
{
	CURLU *u;
	char *scheme = NULL;
	int rc = 0;

	if (!url || !*url)
		return rc_error_set(RC_EINVALID, RC_ECLASS_HTTP,
				    "no base URL for the HTTP client");
	u = curl_url();
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcasecmp(scheme, "https") && strcasecmp(scheme, "http")))
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_HTTP,
				  "'%s' is not an http or https URL", url);
	curl_free(scheme);
	curl_url_cleanup(u);
	return rc;
}

/* The process's attempts by driver and status: a small table, one lock
 * (a few drivers times a few statuses). */
static pthread_mutex_t requests_lock = PTHREAD_MUTEX_INITIALIZER;
static struct request_count {
	char *driver;
	long status;
	uint64_t n;
} *requests;
static size_t nrequests, caprequests;

static void count_request(const char *driver, long status)
{
	size_t i;

	pthread_mutex_lock(&requests_lock);
	for (i = 0; i < nrequests; i++)
		if (requests[i].status == status &&
		    !strcmp(requests[i].driver, driver))
			break;
	if (i == nrequests) {
		RC_GROW(requests, caprequests, nrequests + 1);
		requests[i].driver = rc_strdup(driver);
		requests[i].status = status;
		requests[i].n = 0;
		nrequests++;
	}
	requests[i].n++;
	pthread_mutex_unlock(&requests_lock);
}

/* The last rate budget each client saw, by driver, origin and source:
 * kept after the client closes (a controller's engines come and go). */
static struct budget {
	char *driver, *origin;
	const char *source; /* "client" (qps) or "server" (rate_header) */
	double remaining;
} *budgets;
static size_t nbudgets, capbudgets;

static void budget_set(const rc_http *h, const char *source, double v)
{
	size_t i;

	if (v < 0)
		v = 0;
	pthread_mutex_lock(&requests_lock);
	for (i = 0; i < nbudgets; i++)
		if (budgets[i].source == source &&
		    !strcmp(budgets[i].driver, h->driver) &&
		    !strcmp(budgets[i].origin, h->origin ? h->origin : ""))
			break;
	if (i == nbudgets) {
		RC_GROW(budgets, capbudgets, nbudgets + 1);
		budgets[i].driver = rc_strdup(h->driver);
		budgets[i].origin = rc_strdup(h->origin ? h->origin : "");
		budgets[i].source = source;
		nbudgets++;
	}
	budgets[i].remaining = v;
	pthread_mutex_unlock(&requests_lock);
}

void rc_http_budgets_each(void (*fn)(void *arg, const char *driver,
				     const char *origin, const char *source,
				     double remaining),
			  void *arg)
{
	pthread_mutex_lock(&requests_lock);
	for (size_t i = 0; i < nbudgets; i++)
		fn(arg, budgets[i].driver, budgets[i].origin,
		   budgets[i].source, budgets[i].remaining);
	pthread_mutex_unlock(&requests_lock);
}

void rc_http_requests_each(void (*fn)(void *arg, const char *driver,
				      long status, uint64_t n),
			   void *arg)
{
	pthread_mutex_lock(&requests_lock);
	for (size_t i = 0; i < nrequests; i++)
		fn(arg, requests[i].driver, requests[i].status, requests[i].n);
	pthread_mutex_unlock(&requests_lock);
}

int rc_http_open(rc_http **out, const rc_http_opts *o)
{
	rc_buf b = RC_BUF_INIT_MAX(1 << 20);
	rc_http *h;
	size_t n;
	int rc;

	*out = NULL;
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return rc_error_set(RC_ERROR, RC_ECLASS_HTTP,
				    "cannot initialise libcurl: %s",
				    curl_easy_strerror(global_rc));
	if ((rc = check_base_url(o->base_url)) < 0)
		return rc;
	if (o->ca_file && o->ca_pem)
		return rc_error_set(RC_EINVALID, RC_ECLASS_HTTP,
				    "both a CA file and CA data for %s",
				    o->base_url);
	if ((o->cert_file || o->cert_pem) != (o->key_file || o->key_pem))
		return rc_error_set(RC_EINVALID, RC_ECLASS_HTTP,
				    "a client certificate needs its key, and "
				    "a key its certificate, for %s",
				    o->base_url);
	if (o->rate_header && *o->rate_header && !(o->rate_refill_per_sec > 0))
		return rc_error_set(RC_EINVALID, RC_ECLASS_HTTP,
				    "a rate header without a refill rate for %s",
				    o->base_url);

	h = rc_calloc(1, sizeof(*h));
	h->base_url = rc_strdup(o->base_url);
	n = strlen(h->base_url);
	while (n && h->base_url[n - 1] == '/')
		h->base_url[--n] = '\0';
	h->ca_file = dup_or_null(o->ca_file);
	h->cert_file = dup_or_null(o->cert_file);
	h->key_file = dup_or_null(o->key_file);
	h->ca_pem = dup_or_null(o->ca_pem);
	h->cert_pem = dup_or_null(o->cert_pem);
	h->key_pem = dup_or_null(o->key_pem);
	if (h->key_pem)
		rc_secret_register(h->key_pem);
	h->insecure = o->insecure;
	h->proxy = dup_or_null(o->proxy);
	if (o->authorization && *o->authorization) {
		const char *sp = strchr(o->authorization, ' ');

		rc_secret_register(o->authorization);
		if (sp && sp[1])
			rc_secret_register(sp + 1);
		rc_buf_printf(&b, "Authorization: %s", o->authorization);
		h->auth_header = rc_buf_detach(&b);
	}
	h->sign = o->sign;
	h->refresh = o->refresh;
	h->sign_ctx = o->sign_ctx;
	rc_buf_clear(&b);
	if (o->user_agent && *o->user_agent)
		rc_buf_puts(&b, o->user_agent);
	else
		rc_buf_puts(&b, "reconcile/" RC_VERSION);
	h->user_agent = rc_buf_detach(&b);
	h->driver = rc_strdup(o->driver && *o->driver ? o->driver : "other");
	h->service = rc_strdup(o->service && *o->service ? o->service
							 : "the server");
	rc_buf_printf(&b, "Accept: %s",
		      o->accept && *o->accept ? o->accept : "application/json");
	h->headers = curl_slist_append(NULL, b.ptr);
	rc_buf_clear(&b);
	for (const char *const *p = o->headers; p && *p; p++)
		h->headers = curl_slist_append(h->headers, *p);
	/* no "100 Continue" round trip before a large body */
	h->headers = curl_slist_append(h->headers, "Expect:");

	h->connect_timeout_ms = o->connect_timeout_ms > 0
					? o->connect_timeout_ms
					: RC_HTTP_CONNECT_TIMEOUT_MS;
	h->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : RC_HTTP_TIMEOUT_MS;
	h->max_retries = o->max_retries > 0 ? o->max_retries : 0;
	h->backoff_base_ms = o->backoff_base_ms > 0 ? o->backoff_base_ms
						    : RC_HTTP_BACKOFF_BASE_MS;
	h->backoff_cap_ms = o->backoff_cap_ms > 0 ? o->backoff_cap_ms
						  : RC_HTTP_BACKOFF_CAP_MS;
	if (h->backoff_cap_ms < h->backoff_base_ms)
		h->backoff_cap_ms = h->backoff_base_ms;
	h->retry_after_cap_ms = o->retry_after_cap_ms > 0
					? o->retry_after_cap_ms
					: RC_HTTP_RETRY_AFTER_CAP_MS;
	h->max_body = o->max_body ? o->max_body : RC_HTTP_MAX_BODY;

	pthread_mutex_init(&h->pool_lock, NULL);
	pthread_mutex_init(&h->rate_lock, NULL);
	pthread_mutex_init(&h->stats_lock, NULL);
	for (n = 0; n < RC_ARRAY_SIZE(h->share_locks); n++)
		pthread_mutex_init(&h->share_locks[n], NULL);
	h->share = curl_share_init();
	curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(h->share, CURLSHOPT_USERDATA, h);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(h->share, CURLSHOPT_SHARE,
			  CURL_LOCK_DATA_SSL_SESSION);

	h->qps = o->qps > 0 ? o->qps : 0;
	h->burst = o->burst > 0 ? o->burst : 1;
	h->tokens = h->burst;
	h->rate_last_ns = now_ns();
	h->rate_header = dup_or_null(o->rate_header);
	h->rate_reserve = o->rate_reserve > 0 ? o->rate_reserve : 0;
	h->rate_refill = o->rate_refill_per_sec;

	if (o->tls_server_name && *o->tls_server_name &&
	    (rc = set_server_name(h, o->tls_server_name)) < 0) {
		rc_http_close(h);
		rc_buf_release(&b);
		return rc;
	}
	h->origin = origin_of(h->base_url);
	if (h->insecure)
		RC_WARN("TLS verification is off for %s: its certificate is "
			"not checked (insecure, as set for this target)",
			h->base_url);
	rc_buf_release(&b);
	*out = h;
	return 0;
}

void rc_http_close(rc_http *h)
{
	size_t i;

	if (!h)
		return;
	for (i = 0; i < h->nidle; i++)
		curl_easy_cleanup(h->idle[i]);
	free(h->idle);
	if (h->share)
		curl_share_cleanup(h->share);
	for (i = 0; i < RC_ARRAY_SIZE(h->share_locks); i++)
		pthread_mutex_destroy(&h->share_locks[i]);
	pthread_mutex_destroy(&h->pool_lock);
	pthread_mutex_destroy(&h->rate_lock);
	pthread_mutex_destroy(&h->stats_lock);
	for (i = 0; i < RC_HTTP_HOLDS; i++)
		free(h->holds[i].key);
	curl_slist_free_all(h->connect_to);
	curl_slist_free_all(h->headers);
	free(h->base_url);
	free(h->origin);
	free(h->rate_header);
	free(h->ca_file);
	free(h->cert_file);
	free(h->key_file);
	free(h->ca_pem);
	free(h->cert_pem);
	free_secret(h->key_pem);
	free(h->proxy);
	free_secret(h->auth_header);
	free(h->user_agent);
	free(h->driver);
	free(h->service);
	free(h);
}

void rc_http_stats(rc_http *h, rc_http_counters *out)
{
	pthread_mutex_lock(&h->stats_lock);
	*out = h->stats;
	out->wait_ms = (uint64_t)(h->wait_ns / 1000000LL);
	pthread_mutex_unlock(&h->stats_lock);
}

/* ------------------------------------------------------------------ pool */

static CURL *pool_take(rc_http *h)
{
	CURL *e = NULL;

	pthread_mutex_lock(&h->pool_lock);
	if (h->nidle)
		e = h->idle[--h->nidle];
	pthread_mutex_unlock(&h->pool_lock);
	if (!e) {
		e = curl_easy_init();
		if (!e)
			abort(); /* out of memory */
		curl_easy_setopt(e, CURLOPT_SHARE, h->share);
	}
	return e;
}

static void pool_give(rc_http *h, CURL *e)
{
	/* forget this request's options (headers, error buffer, callbacks);
	 * the live connection, the share and the caches stay */
	curl_easy_reset(e);
	pthread_mutex_lock(&h->pool_lock);
	if (h->nidle < POOL_KEEP) {
		RC_GROW(h->idle, h->capidle, h->nidle + 1);
		h->idle[h->nidle++] = e;
		e = NULL;
	}
	pthread_mutex_unlock(&h->pool_lock);
	if (e)
		curl_easy_cleanup(e);
}

/* ------------------------------------------------------------ rate limit */

/* Takes a token, waiting for it when the bucket is empty. A token can be
 * reserved ahead (the count goes negative): each waiter sleeps until its
 * own token comes, so waiters are served in order of arrival.
 *
 * The server's budget (rate_header) works the same way on an estimate:
 * the last value the server sent, plus the refill since, less the
 * attempts sent since. An attempt goes when the estimate holds a whole
 * token above the reserve; otherwise it waits for the tokens that take it there, and the
 * attempts after it wait behind it (rate_at_ns may lie ahead). */
/* "METHOD path" without the query: the endpoint a Retry-After holds. */
static char *hold_key(const char *method, const char *path)
{
	rc_buf b = RC_BUF_INIT_MAX(1 << 20);

	rc_buf_printf(&b, "%s %.*s", method, (int)strcspn(path, "?"), path);
	return rc_buf_detach(&b);
}

/* A Retry-After of ms for the endpoint: the client's other requests to it
 * wait too (threads that share the client, e.g. a controller's watches
 * and plans). */
static void hold_set(rc_http *h, const char *method, const char *path,
		     long ms)
{
	char *key = hold_key(method, path);
	long long now = now_ns(), until = now + ms * 1000000LL;
	size_t i, pick = 0;

	pthread_mutex_lock(&h->rate_lock);
	for (i = 0; i < RC_HTTP_HOLDS; i++) {
		if (h->holds[i].key && !strcmp(h->holds[i].key, key)) {
			pick = i;
			break;
		}
		if (h->holds[i].until_ns < h->holds[pick].until_ns)
			pick = i; /* a free or the oldest entry */
	}
	free(h->holds[pick].key);
	h->holds[pick].key = key;
	h->holds[pick].until_ns = until;
	pthread_mutex_unlock(&h->rate_lock);
}

/* Waits while the endpoint is held (or until *cancel). */
static void hold_wait(rc_http *h, const char *method, const char *path,
		      const volatile int *cancel)
{
	char *key = hold_key(method, path);
	long long wait = 0;

	pthread_mutex_lock(&h->rate_lock);
	for (size_t i = 0; i < RC_HTTP_HOLDS; i++)
		if (h->holds[i].key && !strcmp(h->holds[i].key, key))
			wait = h->holds[i].until_ns - now_ns();
	pthread_mutex_unlock(&h->rate_lock);
	free(key);
	if (wait > 0)
		RC_DEBUG("http: %s %s: waiting %lld ms for a Retry-After",
			 method, path, wait / 1000000LL);
	for (; wait > 0 && !(cancel && *cancel); wait -= 100000000LL)
		sleep_ns(wait < 100000000LL ? wait : 100000000LL);
}

static void rate_wait(rc_http *h)
{
	long long now, wait = 0;

	if (h->qps <= 0 && !h->rate_header)
		return;
	pthread_mutex_lock(&h->rate_lock);
	now = now_ns();
	if (h->qps > 0) {
		h->tokens += (double)(now - h->rate_last_ns) * h->qps / 1e9;
		if (h->tokens > h->burst)
			h->tokens = h->burst;
		h->rate_last_ns = now;
		h->tokens -= 1;
		if (h->tokens < 0)
			wait = (long long)(-h->tokens / h->qps * 1e9);
	}
	if (h->rate_header && h->rate_known) {
		long long at = now + wait;
		double est = h->rate_remaining +
			     (double)(at - h->rate_at_ns) * h->rate_refill / 1e9;

		/* a whole token above the reserve, or wait for one */
		if (est < h->rate_reserve + 1) {
			double need = h->rate_reserve + 1 - est;
			long long w = (long long)(need / h->rate_refill * 1e9) + 1;

			wait += w;
			at += w;
			est += need;
		}
		h->rate_remaining = est - 1;
		h->rate_at_ns = at;
	}
	if (h->qps > 0)
		budget_set(h, "client", h->tokens);
	if (h->rate_header && h->rate_known)
		budget_set(h, "server", h->rate_remaining);
	pthread_mutex_unlock(&h->rate_lock);
	if (wait > 0) {
		pthread_mutex_lock(&h->stats_lock);
		h->stats.waits++;
		h->wait_ns += wait;
		pthread_mutex_unlock(&h->stats_lock);
		sleep_ns(wait);
	}
}

/* Records the server's remaining budget from a reply (when it says); a
 * 429 that does not say counts as none left. */
static void rate_record(rc_http *h, const rc_http_resp *resp)
{
	double d;

	if (!h->rate_header ||
	    !rc_http_rate_remaining(resp, h->rate_header, &d))
		return;
	pthread_mutex_lock(&h->rate_lock);
	h->rate_known = true;
	h->rate_remaining = d;
	h->rate_at_ns = now_ns();
	budget_set(h, "server", d);
	pthread_mutex_unlock(&h->rate_lock);
}

/* ------------------------------------------------------------- responses */

void rc_http_resp_init(rc_http_resp *r)
{
	memset(r, 0, sizeof(*r));
	rc_buf_init(&r->body, RC_HTTP_MAX_BODY);
}

static void resp_clear_headers(rc_http_resp *r)
{
	for (size_t i = 0; i < r->nheaders; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	r->nheaders = 0;
}

void rc_http_resp_release(rc_http_resp *r)
{
	resp_clear_headers(r);
	free(r->headers);
	r->headers = NULL;
	r->capheaders = 0;
	rc_buf_release(&r->body);
	r->status = 0;
	r->attempts = 0;
}

const char *rc_http_resp_header(const rc_http_resp *r, const char *name)
{
	for (size_t i = r->nheaders; i > 0; i--)
		if (!strcasecmp(r->headers[i - 1].name, name))
			return r->headers[i - 1].value;
	return NULL;
}

bool rc_http_rate_remaining(const rc_http_resp *r, const char *name,
			    double *remaining)
{
	const char *v = rc_http_resp_header(r, name);
	char *end;

	if (!v) {
		*remaining = 0;
		return r->status == 429;
	}
	*remaining = strtod(v, &end);
	return end != v;
}

/* -------------------------------------------------------------- transfer */

struct xfer {
	rc_http_resp *resp;
	long status; /* from the status line, while the body arrives */
	bool toobig;
	/* streaming */
	rc_http_line_fn on_line;
	void *ctx;
	rc_buf line;
	bool delivered; /* a line went to on_line, or bytes to the sink: no
			   more retries */
	bool stopped;   /* on_line or the sink asked to stop */
	int cb_rc;
	/* a streamed request body; a reply's body to a sink */
	const rc_http_req *req;
	uint64_t offset; /* of the body's next byte to send */
	int read_rc;     /* the body source's error */
};

/* curl calls it often while data moves and about once a second when
 * none does: the request's cancel flag is seen that soon. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow,
		       curl_off_t ultotal, curl_off_t ulnow)
{
	struct xfer *x = ud;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return x->req->cancel && *x->req->cancel;
}

void rc_http_parse_header(rc_http_resp *r, long *status, const char *p,
			  size_t len)
{
	size_t nlen;
	const char *colon, *v, *end = p + len;
	rc_http_header *hd;

	if (len >= 5 && !memcmp(p, "HTTP/", 5)) {
		/* a new reply (after a 100 Continue or a proxy's CONNECT):
		 * only the last one's headers count */
		const char *sp = memchr(p, ' ', len);

		resp_clear_headers(r);
		*status = 0;
		/* the line is not NUL-terminated: the code's three digits
		 * are read within it */
		while (sp && sp < end && (*sp == ' ' || *sp == '\t'))
			sp++;
		for (int i = 0; sp && i < 3 && sp + i < end &&
				isdigit((unsigned char)sp[i]);
		     i++)
			*status = *status * 10 + (sp[i] - '0');
		return;
	}
	while (end > p && (end[-1] == '\n' || end[-1] == '\r'))
		end--;
	colon = memchr(p, ':', (size_t)(end - p));
	if (!colon || colon == p)
		return;
	nlen = (size_t)(colon - p);
	for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	RC_GROW(r->headers, r->capheaders, r->nheaders + 1);
	hd = &r->headers[r->nheaders++];
	hd->name = rc_strndup(p, nlen);
	hd->value = rc_strndup(v, (size_t)(end - v));
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;

	rc_http_parse_header(x->resp, &x->status, p, size * n);
	return size * n;
}

/* Hands every complete line in x->line to on_line (and, when last, what
 * is left without a newline); keeps the rest. Empty lines are skipped. */
static int deliver_lines(struct xfer *x, bool last)
{
	size_t start = 0;

	while (start < x->line.len) {
		char *p = x->line.ptr + start;
		char *nl = memchr(p, '\n', x->line.len - start);
		size_t n;
		int r;

		if (!nl && !last)
			break;
		/* without a newline, p ends at the buffer's own NUL */
		n = nl ? (size_t)(nl - p) : x->line.len - start;
		start += n + (nl ? 1 : 0);
		if (nl)
			*nl = '\0';
		if (n && p[n - 1] == '\r')
			p[--n] = '\0';
		if (!n)
			continue;
		x->delivered = true;
		r = x->on_line(x->ctx, p, n);
		if (r != 0) {
			x->stopped = true;
			x->cb_rc = r < 0 ? r : 0;
			return -1;
		}
	}
	if (start) {
		memmove(x->line.ptr, x->line.ptr + start, x->line.len - start);
		rc_buf_truncate(&x->line, x->line.len - start);
	}
	return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	size_t len = size * n;

	if (x->req->sink && x->status >= 200 && x->status < 300) {
		int r;

		x->delivered = true;
		r = x->req->sink(x->req->sink_ctx, p, len);
		if (r < 0) {
			x->stopped = true;
			x->cb_rc = r;
			return 0;
		}
		return len;
	}

	if (x->on_line && x->status >= 200 && x->status < 300) {
		if (rc_buf_put(&x->line, p, len) < 0) {
			x->toobig = true;
			return 0;
		}
		/* a long line arriving in pieces is not scanned again */
		if (memchr(p, '\n', len) && deliver_lines(x, false) < 0)
			return 0;
		return len;
	}
	if (rc_buf_put(&x->resp->body, p, len) < 0) {
		x->toobig = true;
		return 0;
	}
	return len;
}

/* A streamed request body, read at x->offset: from the request's reader or
 * its descriptor. */
static size_t on_read(char *buf, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	const rc_http_req *req = x->req;
	uint64_t left = req->body_size - x->offset;
	size_t want = size * n, got = 0;

	if ((uint64_t)want > left)
		want = (size_t)left;
	if (!want)
		return 0;
	if (req->body_read) {
		int r = req->body_read(req->body_read_ctx, x->offset, buf, want,
				       &got);

		if (r < 0) {
			x->read_rc = r;
			return CURL_READFUNC_ABORT;
		}
	} else {
		ssize_t k;

		do
			k = pread(req->body_fd, buf, want, (off_t)x->offset);
		while (k < 0 && errno == EINTR);
		if (k < 0) {
			x->read_rc = rc_error_set_os("cannot read the body to "
						     "send");
			return CURL_READFUNC_ABORT;
		}
		got = (size_t)k;
	}
	if (!got || got > want) {
		x->read_rc = rc_error_set(RC_ERROR, RC_ECLASS_HTTP,
					  "the body to send ended after %llu "
					  "of %llu bytes",
					  (unsigned long long)x->offset,
					  (unsigned long long)req->body_size);
		return CURL_READFUNC_ABORT;
	}
	x->offset += got;
	return got;
}

/* curl rewinds a body it must send again (a redirect, a reused connection
 * that was closed); the reader is then asked for that offset. */
static int on_seek(void *ud, curl_off_t off, int origin)
{
	struct xfer *x = ud;

	if (origin != SEEK_SET || off < 0 ||
	    (uint64_t)off > x->req->body_size)
		return CURL_SEEKFUNC_CANTSEEK;
	x->offset = (uint64_t)off;
	return CURL_SEEKFUNC_OK;
}

static bool streamed_body(const rc_http_req *req)
{
	return req->body_size > 0 && (req->body_read || req->body_fd >= 0);
}

/* ---------------------------------------------------------------- policy */

static bool method_idempotent(const char *m)
{
	return !strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "PUT") ||
	       !strcmp(m, "DELETE") || !strcmp(m, "OPTIONS");
}

/* A connection that broke or never came: the request may or may not have
 * been done, so it is repeated only when repeating is harmless. */
static bool transport_retryable(CURLcode cc)
{
	switch (cc) {
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
		return true;
	default:
		return false;
	}
}

/* 429 and 503: the server refused the request before doing it, so every
 * method is retried; 500, 502, 504: maybe half done, idempotent only. */
static bool status_retryable(long status, bool idempotent)
{
	if (status == 429 || status == 503)
		return true;
	if (status == 500 || status == 502 || status == 504)
		return idempotent;
	return false;
}

static long backoff_ms(const rc_http *h, int retry)
{
	long d = h->backoff_base_ms;

	for (int i = 1; i < retry && d < h->backoff_cap_ms; i++)
		d *= 2;
	if (d > h->backoff_cap_ms)
		d = h->backoff_cap_ms;
	if (d <= 1)
		return d;
	/* half fixed, half random: spread out, never shorter than half */
	return d / 2 + (long)(jitter_next() % (uint64_t)(d / 2 + 1));
}

long rc_http_retry_after_ms(const char *value, time_t now)
{
	const char *p = value;
	time_t when;

	if (!value)
		return -1;
	while (*p == ' ' || *p == '\t')
		p++;
	if (isdigit((unsigned char)*p)) {
		char *end;
		unsigned long long s = strtoull(p, &end, 10);

		while (*end == ' ' || *end == '\t')
			end++;
		if (*end)
			return -1;
		if (s > (unsigned long long)(LONG_MAX / 1000))
			return LONG_MAX;
		return (long)s * 1000;
	}
	when = curl_getdate(p, NULL);
	if (when == (time_t)-1)
		return -1;
	if (when <= now)
		return 0;
	if ((long long)(when - now) > LONG_MAX / 1000)
		return LONG_MAX;
	return (long)(when - now) * 1000;
}

/* ------------------------------------------------------------ endpoints */

/* The process's endpoints and their failures in a row: a few entries
 * (one per platform API), one lock, taken twice per attempt. */
static pthread_mutex_t endpoints_lock = PTHREAD_MUTEX_INITIALIZER;
static struct endpoint {
	char *origin;
	rc_http_endpoint st;
	long long trial_ns; /* the last attempt let through as a trial */
	long long first_ns; /* the first failure of the streak */
} *endpoints;
static size_t nendpoints, capendpoints;

/* What this thread's requests met since rc_http_thread_reset(). */
static _Thread_local struct {
	char unreachable[512];
	char origin[512];
	bool unanswered;
	bool wrote; /* a request that may change something had a 2xx */
} activity;

void rc_http_thread_reset(void)
{
	activity.unreachable[0] = '\0';
	activity.origin[0] = '\0';
	activity.unanswered = false;
	activity.wrote = false;
}

bool rc_http_thread_wrote(void)
{
	return activity.wrote;
}

const char *rc_http_thread_unreachable(void)
{
	return activity.unreachable[0] ? activity.unreachable : NULL;
}

bool rc_http_thread_unanswered(void)
{
	return activity.unanswered;
}

const char *rc_http_thread_origin(void)
{
	return activity.origin[0] ? activity.origin : NULL;
}

/* The entry of origin, made when new; endpoints_lock held. */
static struct endpoint *endpoint_get(const char *origin)
{
	size_t i;

	for (i = 0; i < nendpoints; i++)
		if (!strcasecmp(endpoints[i].origin, origin))
			return &endpoints[i];
	RC_GROW(endpoints, capendpoints, nendpoints + 1);
	memset(&endpoints[i], 0, sizeof(endpoints[i]));
	endpoints[i].origin = rc_strdup(origin);
	for (char *p = endpoints[i].origin; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	snprintf(endpoints[i].st.service, sizeof(endpoints[i].st.service),
		 "the server");
	nendpoints++;
	return &endpoints[i];
}

int rc_http_endpoint_state(const char *origin, rc_http_endpoint *out)
{
	int found = 0;

	pthread_mutex_lock(&endpoints_lock);
	for (size_t i = 0; i < nendpoints && !found; i++)
		if (!strcasecmp(endpoints[i].origin, origin)) {
			*out = endpoints[i].st;
			found = 1;
		}
	pthread_mutex_unlock(&endpoints_lock);
	return found;
}

bool rc_http_endpoint_describe(rc_buf *out, const char *origin)
{
	rc_http_endpoint ep;
	struct tm tm;
	char when[16] = "?";

	if (!rc_http_endpoint_state(origin, &ep) || !ep.unreachable)
		return false;
	if (localtime_r(&ep.since, &tm))
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
	rc_buf_printf(out, "%s at %s is unreachable since %s", ep.service,
		      origin, when);
	return true;
}

void rc_http_endpoints_each(void (*fn)(void *arg, const char *origin,
				       const rc_http_endpoint *ep),
			    void *arg)
{
	pthread_mutex_lock(&endpoints_lock);
	for (size_t i = 0; i < nendpoints; i++)
		fn(arg, endpoints[i].origin, &endpoints[i].st);
	pthread_mutex_unlock(&endpoints_lock);
}

void rc_http_endpoints_reset(void)
{
	pthread_mutex_lock(&endpoints_lock);
	for (size_t i = 0; i < nendpoints; i++)
		free(endpoints[i].origin);
	free(endpoints);
	endpoints = NULL;
	nendpoints = capendpoints = 0;
	pthread_mutex_unlock(&endpoints_lock);
}

/* An endpoint answered (a reply, or a probe's connection): reachable. */
static void endpoint_answered(const char *origin)
{
	struct endpoint *ep;

	pthread_mutex_lock(&endpoints_lock);
	ep = endpoint_get(origin);
	if (ep->st.unreachable)
		RC_DEBUG("http: %s answers again", origin);
	ep->st.failures = 0;
	ep->st.unreachable = false;
	ep->st.since = 0;
	pthread_mutex_unlock(&endpoints_lock);
}

/* An attempt to origin got no reply for a transport reason. */
static void endpoint_failed(const rc_http *h, const char *origin)
{
	struct endpoint *ep;

	pthread_mutex_lock(&endpoints_lock);
	ep = endpoint_get(origin);
	snprintf(ep->st.service, sizeof(ep->st.service), "%s", h->service);
	if (!ep->st.failures++) {
		ep->st.since = time(NULL);
		ep->first_ns = now_ns();
	}
	if (ep->st.failures >= RC_HTTP_UNREACHABLE_AFTER &&
	    now_ns() - ep->first_ns >= RC_HTTP_UNREACHABLE_MIN_MS * 1000000LL &&
	    !ep->st.unreachable) {
		ep->st.unreachable = true;
		ep->trial_ns = now_ns();
		RC_DEBUG("http: %s is unreachable after %d failures in a row",
			 origin, ep->st.failures);
	}
	pthread_mutex_unlock(&endpoints_lock);
}

/* Before an attempt to origin: 0 to send it, or RC_EUNREACHABLE (the
 * error set) when the endpoint is unreachable and no trial is due. */
static int endpoint_admit(const char *origin, const char *method,
			  const char *url)
{
	struct endpoint *ep;
	bool refuse = false;
	rc_buf m = RC_BUF_INIT_MAX(8192);
	long long now = now_ns();

	pthread_mutex_lock(&endpoints_lock);
	ep = endpoint_get(origin);
	if (ep->st.unreachable) {
		if (now - ep->trial_ns >=
		    RC_HTTP_UNREACHABLE_TRIAL_MS * 1000000LL)
			ep->trial_ns = now; /* this one goes: a trial */
		else
			refuse = true;
	}
	pthread_mutex_unlock(&endpoints_lock);
	if (!refuse)
		return 0;
	snprintf(activity.unreachable, sizeof(activity.unreachable), "%s",
		 origin);
	rc_buf_printf(&m, "%s %s: ", method, url);
	if (!rc_http_endpoint_describe(&m, origin)) {
		rc_buf_release(&m); /* it answered meanwhile */
		activity.unreachable[0] = '\0';
		return 0;
	}
	rc_redact(&m);
	rc_error_set(RC_EUNREACHABLE, RC_ECLASS_HTTP, "%s", m.ptr);
	rc_buf_release(&m);
	return RC_EUNREACHABLE;
}

/* Whether a failed attempt says the endpoint did not answer: refused,
 * reset or closed before any reply, no such host, a timeout. A TLS
 * handshake cut by a reset counts; one refused for a certificate does
 * not. */
static bool transport_lost(CURLcode cc, const char *errbuf)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		return true;
	case CURLE_SSL_CONNECT_ERROR:
		return strstr(errbuf, "reset by peer") ||
		       strstr(errbuf, "SSL_ERROR_SYSCALL") ||
		       strstr(errbuf, "unexpected eof");
	default:
		return false;
	}
}

/* Whether a failed attempt may have reached the server: the request was
 * sent (or partly) and the reply lost. A refused connection, a host that
 * does not resolve and a connect timeout sent nothing. */
static bool maybe_delivered(CURLcode cc, const char *errbuf)
{
	switch (cc) {
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
		return true;
	case CURLE_OPERATION_TIMEDOUT:
		return !strstr(errbuf, "onnection timed out") &&
		       !strstr(errbuf, "onnection timeout");
	default:
		return false;
	}
}

bool rc_http_endpoint_probe(const char *origin, long timeout_ms)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL;
	struct addrinfo hints, *res = NULL;
	bool up = false;

	pthread_once(&global_once, global_init);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (curl_url_set(u, CURLUPART_URL, origin, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) !=
		    CURLUE_OK)
		goto out;
	if (host[0] == '[') { /* an IPv6 literal */
		memmove(host, host + 1, strlen(host));
		host[strcspn(host, "]")] = '\0';
	}
	if (getaddrinfo(host, port, &hints, &res) != 0)
		goto out;
	for (struct addrinfo *a = res; a && !up; a = a->ai_next) {
		int fd = socket(a->ai_family,
				a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				a->ai_protocol);
		struct pollfd pfd;
		int err = 0;
		socklen_t len = sizeof(err);

		if (fd < 0)
			continue;
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
			up = true;
		} else if (errno == EINPROGRESS) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			if (poll(&pfd, 1, (int)timeout_ms) == 1 &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) ==
				    0 &&
			    err == 0)
				up = true;
		}
		close(fd);
	}
out:
	if (res)
		freeaddrinfo(res);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	if (up) {
		char *o = origin_of(origin);

		endpoint_answered(o ? o : origin);
		free(o);
	}
	return up;
}

/* ---------------------------------------------------------------- errors */

/* Sets the error for a request that got no usable reply. */
static int fail(const rc_http *h, const char *method, const char *url,
		CURLcode cc, const char *errbuf, long timeout_ms, int attempts)
{
	rc_buf m = RC_BUF_INIT_MAX(8192);
	int code = RC_ERROR;
	const char *detail =
		errbuf && *errbuf ? errbuf : curl_easy_strerror(cc);

	rc_buf_printf(&m, "%s %s: ", method, url);
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
		code = RC_ETIMEOUT;
		/* curl says which of its two clocks ran out */
		if (strstr(detail, "onnection timed out") ||
		    strstr(detail, "onnection timeout")) {
			rc_buf_puts(&m, "cannot connect within ");
			put_duration(&m, h->connect_timeout_ms);
		} else {
			rc_buf_puts(&m, "no complete reply within ");
			put_duration(&m, timeout_ms);
		}
		break;
	case CURLE_COULDNT_CONNECT:
		rc_buf_printf(&m, "cannot connect (%s)", detail);
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		code = RC_ENOTFOUND;
		rc_buf_printf(&m, "cannot resolve the host (%s)", detail);
		break;
	case CURLE_GOT_NOTHING:
		rc_buf_puts(&m, "the server closed the connection without "
				"replying");
		break;
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		if (strstr(detail, "reset by peer"))
			rc_buf_puts(&m, "connection reset by peer");
		else
			rc_buf_printf(&m, "the connection broke (%s)", detail);
		break;
	case CURLE_PARTIAL_FILE:
		rc_buf_printf(&m, "the reply was cut short (%s)", detail);
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
		code = RC_EAUTH;
		rc_buf_printf(&m,
			      "the server's certificate is not trusted (%s)",
			      detail);
		break;
	case CURLE_SSL_CONNECT_ERROR:
		code = RC_EAUTH;
		rc_buf_printf(&m, "the TLS handshake failed (%s)", detail);
		break;
	case CURLE_SSL_CACERT_BADFILE:
		code = RC_EINVALID;
		rc_buf_printf(&m, "cannot use the CA certificate (%s)", detail);
		break;
	case CURLE_SSL_CERTPROBLEM:
		code = RC_EINVALID;
		rc_buf_printf(&m, "cannot use the client certificate (%s)",
			      detail);
		break;
	default:
		if (strcmp(detail, curl_easy_strerror(cc)))
			rc_buf_printf(&m, "%s (%s)", curl_easy_strerror(cc),
				      detail);
		else
			rc_buf_puts(&m, detail);
		break;
	}
	if (attempts > 1)
		rc_buf_printf(&m, " (after %d attempts)", attempts);
	rc_redact(&m);
	rc_error_set(code, RC_ECLASS_HTTP, "%s", m.ptr);
	rc_buf_release(&m);
	return code;
}

/* -------------------------------------------------------------- requests */

struct attempt {
	CURLcode cc;
	long status;
	char errbuf[CURL_ERROR_SIZE];
};

static int set_tls(rc_http *h, CURL *e)
{
	struct curl_blob blob;

	if (h->ca_file) {
		curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_file);
		curl_easy_setopt(e, CURLOPT_CAPATH, (char *)NULL);
	} else if (h->ca_pem) {
		/* only this CA: not the system's store besides */
		blob.data = h->ca_pem;
		blob.len = strlen(h->ca_pem);
		blob.flags = CURL_BLOB_COPY;
		curl_easy_setopt(e, CURLOPT_CAINFO, (char *)NULL);
		curl_easy_setopt(e, CURLOPT_CAPATH, (char *)NULL);
		curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
	}
	if (h->cert_file) {
		curl_easy_setopt(e, CURLOPT_SSLCERT, h->cert_file);
	} else if (h->cert_pem) {
		blob.data = h->cert_pem;
		blob.len = strlen(h->cert_pem);
		blob.flags = CURL_BLOB_COPY;
		curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &blob);
		curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
	}
	if (h->key_file) {
		curl_easy_setopt(e, CURLOPT_SSLKEY, h->key_file);
	} else if (h->key_pem) {
		blob.data = h->key_pem;
		blob.len = strlen(h->key_pem);
		blob.flags = CURL_BLOB_COPY;
		curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &blob);
		curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
	}
	if (h->insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	return 0;
}

/* One attempt: a handle from the pool, its options, the exchange. */
static int attempt_once(rc_http *h, const rc_http_req *req,
			const char *method, const char *url, long timeout_ms,
			struct xfer *x, struct attempt *a)
{
	struct curl_slist *hdrs = NULL;
	CURL *e;
	long conns = 0;
	curl_off_t up = 0, down = 0;
	long reqsize = 0, hdrsize = 0;
	int rc;

	for (struct curl_slist *s = h->headers; s; s = s->next)
		hdrs = curl_slist_append(hdrs, s->data);
	for (const char *const *p = req->headers; p && *p; p++)
		hdrs = curl_slist_append(hdrs, *p);
	if (req->body || streamed_body(req)) {
		rc_buf ct = RC_BUF_INIT_MAX(4096);

		rc_buf_printf(&ct, "Content-Type: %s",
			      req->content_type ? req->content_type
						: "application/json");
		hdrs = curl_slist_append(hdrs, ct.ptr);
		rc_buf_release(&ct);
	}
	if (h->auth_header && !req->url)
		hdrs = curl_slist_append(hdrs, h->auth_header);
	else if (h->auth_header && h->origin) {
		char *o = origin_of(url);

		if (o && !strcmp(o, h->origin))
			hdrs = curl_slist_append(hdrs, h->auth_header);
		free(o);
	}
	if (h->sign && (rc = h->sign(h->sign_ctx, req, url, &hdrs)) < 0) {
		rc_buf m = RC_BUF_INIT_MAX(8192);

		/* say which request could not be signed */
		rc_buf_printf(&m, "%s %s", method, url);
		rc_redact(&m);
		rc_error_prefix("%s", m.ptr);
		rc_buf_release(&m);
		curl_slist_free_all(hdrs);
		return rc;
	}

	e = pool_take(h);
	a->errbuf[0] = '\0';
	curl_easy_setopt(e, CURLOPT_URL, url);
	/* request bodies are handed whole (POSTFIELDS): libcurl's upload
	   buffer only copies the headers over TLS, so its smallest size
	   (64 KiB by default, per handle); a stream (a watch held open for
	   minutes, hundreds at once in a controller) reads small events */
	curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 16384L);
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, x->on_line ? 4096L : 16384L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, a->errbuf);
	curl_easy_setopt(e, CURLOPT_USERAGENT, h->user_agent);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, h->connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	if (req->cancel) {
		curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(e, CURLOPT_XFERINFODATA, x);
		curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	}
	if (h->connect_to)
		curl_easy_setopt(e, CURLOPT_CONNECT_TO, h->connect_to);
	if (h->proxy)
		curl_easy_setopt(e, CURLOPT_PROXY, h->proxy);
	set_tls(h, e);

	if (req->follow_redirects &&
	    (!strcmp(method, "GET") || !strcmp(method, "HEAD"))) {
		/* curl sends Authorization headers to the first host only
		 * (CURLOPT_UNRESTRICTED_AUTH stays off) */
		curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
		curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	}
	if (!strcmp(method, "HEAD")) {
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	} else if (streamed_body(req)) {
		x->offset = 0;
		curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)req->body_size);
		curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(e, CURLOPT_READDATA, x);
		curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(e, CURLOPT_SEEKDATA, x);
		if (strcmp(method, "PUT"))
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	} else if (strcmp(method, "GET") || req->body) {
		if (strcmp(method, "POST"))
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
		if (req->body || !strcmp(method, "POST") ||
		    !strcmp(method, "PUT") || !strcmp(method, "PATCH")) {
			curl_easy_setopt(e, CURLOPT_POSTFIELDS,
					 req->body ? req->body : "");
			curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
					 (curl_off_t)(req->body ? req->body_len
								: 0));
		}
	}

	a->cc = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &a->status);
	if (!a->status)
		a->status = x->status;
	curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &conns);
	curl_easy_getinfo(e, CURLINFO_SIZE_UPLOAD_T, &up);
	curl_easy_getinfo(e, CURLINFO_SIZE_DOWNLOAD_T, &down);
	curl_easy_getinfo(e, CURLINFO_REQUEST_SIZE, &reqsize);
	curl_easy_getinfo(e, CURLINFO_HEADER_SIZE, &hdrsize);
	pool_give(h, e);
	curl_slist_free_all(hdrs);

	pthread_mutex_lock(&h->stats_lock);
	h->stats.requests++;
	h->stats.connections += (uint64_t)(conns > 0 ? conns : 0);
	h->stats.bytes_sent += (uint64_t)(reqsize > 0 ? reqsize : 0) +
			       (uint64_t)(up > 0 ? up : 0);
	h->stats.bytes_received += (uint64_t)(hdrsize > 0 ? hdrsize : 0) +
				   (uint64_t)(down > 0 ? down : 0);
	pthread_mutex_unlock(&h->stats_lock);
	count_request(h->driver, a->cc == CURLE_OK ? a->status : 0);
	return 0;
}

static const char *path_of(const rc_http_req *req)
{
	return req->path && *req->path ? req->path : "/";
}

static int run(rc_http *h, const rc_http_req *req, rc_http_resp *resp,
	       rc_http_line_fn on_line, void *ctx)
{
	const char *method = req->method && *req->method ? req->method : "GET";
	const char *path = path_of(req);
	bool idempotent = req->idempotent || method_idempotent(method);
	long timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : h->timeout_ms;
	int limit = 1 + h->max_retries, attempt, rc = 0;
	bool refreshed = false, unanswered = false;
	bool writes = strcmp(method, "GET") && strcmp(method, "HEAD");
	char *req_origin = req->url ? origin_of(req->url) : NULL;
	const char *origin = req->url ? req_origin : h->origin;
	rc_buf url = RC_BUF_INIT_MAX(1 << 20);
	struct xfer x;
	struct attempt a;

	memset(&x, 0, sizeof(x));
	x.resp = resp;
	x.on_line = on_line;
	x.ctx = ctx;
	x.req = req;
	rc_buf_init(&x.line, req->max_body ? req->max_body : h->max_body);
	if ((req->url ? rc_buf_puts(&url, req->url)
		      : rc_buf_printf(&url, "%s%s%s", h->base_url,
				      path[0] == '/' ? "" : "/", path)) < 0) {
		rc_buf_release(&x.line);
		return rc_error_set(RC_ETOOBIG, RC_ECLASS_HTTP,
				    "%s: the URL is too long", method);
	}
	if (req->url)
		path = req->url;

	for (attempt = 1;; attempt++) {
		long long t0;
		long wait_ms = -1, ms;

		/* a request to an unreachable endpoint fails at once, and
		   so does the retry of one that met the outage */
		if (origin && (rc = endpoint_admit(origin, method, url.ptr)) < 0)
			goto done;
		hold_wait(h, method, path, req->cancel);
		rate_wait(h);
		resp_clear_headers(resp);
		rc_buf_release(&resp->body);
		rc_buf_init(&resp->body,
			    req->max_body ? req->max_body : h->max_body);
		resp->status = 0;
		resp->attempts = attempt;
		rc_buf_clear(&x.line);
		x.status = 0;
		x.toobig = false;
		x.read_rc = 0;
		if (attempt > 1) {
			pthread_mutex_lock(&h->stats_lock);
			h->stats.retries++;
			pthread_mutex_unlock(&h->stats_lock);
		}

		t0 = now_ns();
		rc = attempt_once(h, req, method, url.ptr, timeout_ms, &x, &a);
		if (rc < 0)
			goto done;
		ms = (long)((now_ns() - t0) / 1000000);
		if (origin) {
			snprintf(activity.origin, sizeof(activity.origin),
				 "%s", origin);
			if (a.cc == CURLE_OK || a.status > 0)
				endpoint_answered(origin);
			else if (!(req->cancel && *req->cancel) &&
				 transport_lost(a.cc, a.errbuf))
				endpoint_failed(h, origin);
		}
		if (a.cc == CURLE_OK)
			unanswered = false; /* this reply says what happened */
		if (a.cc == CURLE_OK && writes && a.status >= 200 &&
		    a.status < 300)
			activity.wrote = true;
		else if (writes && !x.delivered &&
			 maybe_delivered(a.cc, a.errbuf))
			unanswered = true;
		resp->status = a.cc == CURLE_OK || x.stopped || x.toobig
				       ? a.status
				       : 0;

		if (x.read_rc < 0) {
			rc_buf m = RC_BUF_INIT_MAX(8192);

			RC_DEBUG("http: %s %s: the body could not be read "
				 "(%ld ms)", method, path, ms);
			rc_buf_printf(&m, "%s %s", method, url.ptr);
			rc_redact(&m);
			rc_error_prefix("%s", m.ptr);
			rc_buf_release(&m);
			rc = x.read_rc;
			goto done;
		}
		if (req->cancel && *req->cancel &&
		    a.cc == CURLE_ABORTED_BY_CALLBACK) {
			RC_DEBUG("http: %s %s: cancelled (%ld ms)", method,
				 path, ms);
			rc = 0;
			goto done;
		}
		if (x.stopped) {
			RC_DEBUG("http: %s %s -> %ld, stream stopped (%ld ms)",
				 method, path, a.status, ms);
			rc = x.cb_rc;
			goto done;
		}
		if (x.toobig) {
			rc_buf m = RC_BUF_INIT_MAX(8192);

			RC_DEBUG("http: %s %s -> %ld, too large (%ld ms)",
				 method, path, a.status, ms);
			rc_buf_printf(&m, "%s %s: the %s is larger than the "
					  "limit of %zu bytes",
				      method, url.ptr,
				      on_line && a.status >= 200 &&
						      a.status < 300
					      ? "line"
					      : "reply",
				      x.line.max);
			rc_redact(&m);
			rc = rc_error_set(RC_ETOOBIG, RC_ECLASS_HTTP, "%s",
					  m.ptr);
			rc_buf_release(&m);
			goto done;
		}
		if (a.cc == CURLE_OK) {
			rc_crashpoint("http");
			RC_DEBUG("http: %s %s -> %ld (%ld ms%s)", method, path,
				 a.status, ms, attempt > 1 ? ", retried" : "");
			rate_record(h, resp);
			if (a.status == 429 || a.status == 503) {
				long ra = rc_http_retry_after_ms(
					rc_http_resp_header(resp,
							    "Retry-After"),
					time(NULL));

				if (ra > 0)
					hold_set(h, method, path,
						 ra < h->retry_after_cap_ms
							 ? ra
							 : h->retry_after_cap_ms);
			}
			if (on_line && a.status >= 200 && a.status < 300 &&
			    x.line.len && deliver_lines(&x, true) < 0) {
				rc = x.cb_rc;
				goto done;
			}
			if (a.status == 401 && h->refresh && !refreshed &&
			    !x.delivered && h->refresh(h->sign_ctx) > 0) {
				refreshed = true;
				limit++;
				continue;
			}
			if (attempt >= limit || x.delivered ||
			    !status_retryable(a.status, idempotent)) {
				rc = 0;
				goto done;
			}
			if (a.status == 429 || a.status == 503) {
				wait_ms = rc_http_retry_after_ms(
					rc_http_resp_header(resp,
							    "Retry-After"),
					time(NULL));
				if (wait_ms > h->retry_after_cap_ms)
					wait_ms = h->retry_after_cap_ms;
				/* the server's budget says how long: the
				 * next attempt waits for it (rate_wait) */
				if (wait_ms < 0 && a.status == 429 &&
				    h->rate_header)
					wait_ms = 0;
			}
		} else {
			RC_DEBUG("http: %s %s -> %s (%ld ms)", method, path,
				 curl_easy_strerror(a.cc), ms);
			if (attempt >= limit || x.delivered || !idempotent ||
			    !transport_retryable(a.cc)) {
				rc = fail(h, method, url.ptr, a.cc, a.errbuf,
					  timeout_ms, attempt);
				goto done;
			}
		}
		if (wait_ms < 0)
			wait_ms = backoff_ms(h, attempt);
		RC_DEBUG("http: %s %s: retrying in %ld ms (attempt %d of %d)",
			 method, path, wait_ms, attempt + 1, limit);
		sleep_ns((long long)wait_ms * 1000000LL);
	}
done:
	if (rc < 0 && unanswered)
		activity.unanswered = true;
	free(req_origin);
	rc_buf_release(&x.line);
	rc_buf_release(&url);
	return rc;
}

int rc_http_do(rc_http *h, const rc_http_req *req, rc_http_resp *resp)
{
	return run(h, req, resp, NULL, NULL);
}

int rc_http_stream(rc_http *h, const rc_http_req *req, rc_http_resp *resp,
		   rc_http_line_fn on_line, void *ctx)
{
	return run(h, req, resp, on_line, ctx);
}

/* ----------------------------------------------------------------- query */

int rc_http_url_encode(rc_buf *out, const char *s)
{
	return rc_codec_percent_encode(out, s, strlen(s));
}

int rc_http_query_add(rc_buf *path, const char *key, const char *value)
{
	int r;

	r = rc_buf_putc(path, memchr(path->ptr, '?', path->len) ? '&' : '?');
	if (r == 0)
		r = rc_http_url_encode(path, key);
	if (r == 0)
		r = rc_buf_putc(path, '=');
	if (r == 0)
		r = rc_http_url_encode(path, value ? value : "");
	return r;
}
