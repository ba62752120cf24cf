/*
 * The HTTP client of every platform driver, and reconcile's only user of
 * libcurl. Drivers turn resources into requests; this file sends them:
 * TLS (CA and client certificates as files or PEM data), authentication
 * (a fixed Authorization value or a callback run before every attempt),
 * retries with backoff and Retry-After, a rate budget, capped bodies,
 * connection reuse, and a line-by-line stream for Kubernetes watches.
 * docs/drivers/http.md gives the retry table and the timeouts.
 *
 * Threads: one rc_http serves any number of threads at once (the engine
 * applies actions from up to 8 workers through one client). Idle curl
 * handles wait in a pool, so a thread reuses a connection another thread
 * opened; DNS answers and TLS sessions are shared.
 *
 * Ownership: rc_http_open() copies every string and blob of the options;
 * only sign_ctx is borrowed and must outlive the client. Requests are
 * borrowed for the duration of the call. A response is the caller's:
 * initialise it with rc_http_resp_init(), release it with
 * rc_http_resp_release(); rc_http_do() empties it before it fills it.
 *
 * Secrets: the Authorization value and whatever the sign callback adds are
 * never logged; the fixed value is registered with the redactor
 * (rc_secret_register) at open, and a sign callback registers what it
 * adds. Debug logging shows one line per attempt: method, path, status,
 * duration; never a header or a body.
 */
#ifndef RC_DRIVERS_HTTP_H
#define RC_DRIVERS_HTTP_H

#include <curl/curl.h>

#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"

typedef struct rc_http rc_http;

/* Defaults that rc_http_opts_init() fills in. */
#define RC_HTTP_CONNECT_TIMEOUT_MS 10000L
#define RC_HTTP_TIMEOUT_MS 60000L
#define RC_HTTP_MAX_RETRIES 3
#define RC_HTTP_BACKOFF_BASE_MS 200L
#define RC_HTTP_BACKOFF_CAP_MS 10000L
#define RC_HTTP_RETRY_AFTER_CAP_MS 60000L
#define RC_HTTP_MAX_BODY RC_BUF_DEFAULT_MAX

typedef struct {
	const char *method;       /* "GET" (also when NULL), "POST", ... */
	const char *path;         /* after the base URL, with its query:
				     "/api/v1/pods?limit=500" */
	const char *content_type; /* of body; "application/json" when NULL
				     and there is a body */
	const void *body;         /* sent as is, again on every attempt */
	size_t body_len;
	const char *const *headers; /* more "Name: value" lines for this
				       request, NULL-terminated, or NULL */
	bool idempotent;   /* safe to send twice although the method is not
			      (a server-side apply PATCH, a POST with a
			      client-chosen name that fails when repeated) */
	long timeout_ms;   /* of each attempt; 0: the client's */
	size_t max_body;   /* cap on the reply's body; 0: the client's */

	/* An absolute URL ("https://auth.example/token?x=y") used instead of
	 * base_url + path: a URL a server handed out (a token realm, an
	 * upload Location). The client's TLS settings apply; its fixed
	 * authorization is sent only when the URL's scheme, host and port
	 * are base_url's (the sign callback sees the URL and decides). */
	const char *url;

	/* A streamed request body instead of body: body_size bytes, read by
	 * body_read, or, without body_read, from body_fd with pread() from
	 * offset 0 (body_fd is read only when body_size > 0). Every attempt
	 * reads again from offset 0: a source that cannot go back returns
	 * RC_EUNSUPPORTED from body_read when asked for an offset it has
	 * passed, and the request fails with that instead of being retried.
	 * Sent with Content-Length, without "Expect: 100-continue". */
	int (*body_read)(void *ctx, uint64_t offset, void *buf, size_t n,
			 size_t *got); /* 0 (*got 0 at the end) or < 0 */
	void *body_read_ctx;
	int body_fd;
	uint64_t body_size;

	/* The body of a 2xx reply goes to sink instead of resp->body, with
	 * no cap (a blob download). sink returns 0 to go on, < 0 to stop the
	 * transfer with that error. A reply other than 2xx lands in
	 * resp->body as usual. Retries happen only before the first byte
	 * went to sink. */
	int (*sink)(void *ctx, const void *data, size_t n);
	void *sink_ctx;
	/* GET and HEAD: follow up to 10 redirects (301, 302, 303, 307, 308)
	 * to any http or https URL. Authorization headers (the fixed one, the
	 * sign callback's, req->headers') are sent only to the first host;
	 * curl drops them when the host or port changes. */
	bool follow_redirects;
	/* When set, the request stops within about a second of *cancel
	 * becoming nonzero (also while a stream waits for its next line)
	 * and the call returns 0 as if the server had ended the reply;
	 * it is not retried. */
	const volatile int *cancel;
} rc_http_req;

/*
 * Called before every attempt of every request (so after a retry it runs
 * again: a rotated token or a new SigV4 date is picked up). Appends the
 * lines it needs to *headers with curl_slist_append(), usually
 * "Authorization: ...". url is the full URL of the attempt. Called from
 * any thread at once: the callback locks what it shares. Returns 0, or a
 * negative RC_E* code with rc_error_set(): the request fails with it.
 */
typedef int (*rc_http_sign_fn)(void *ctx, const rc_http_req *req,
			       const char *url, struct curl_slist **headers);
/*
 * Called after a 401 reply when a sign callback is set. Returns 1 when
 * fresh credentials may now be had (a token file re-read, a credential
 * plugin to run again): the request is then sent once more, whatever its
 * method, as a 401 means nothing was done. Returns 0 to keep the 401.
 */
typedef int (*rc_http_refresh_fn)(void *ctx);

typedef struct {
	const char *base_url; /* "https://127.0.0.1:6443"; required */

	/* TLS: the server's CA as a file or PEM data (neither: the system's
	 * store); the client certificate and key as files or PEM data. */
	const char *ca_file, *ca_pem;
	const char *cert_file, *cert_pem;
	const char *key_file, *key_pem;
	/* Skips verification of the server's certificate. Only from the
	 * user's own setting for this target; a warning is logged at open. */
	bool insecure;
	/* The name the certificate is checked against (and sent as SNI)
	 * when it differs from the URL's host. */
	const char *tls_server_name;
	/* A proxy URL; NULL: curl's environment variables (https_proxy,
	 * no_proxy) apply. */
	const char *proxy;

	/* Authentication: a fixed Authorization value (a secret), or a
	 * callback per attempt, or neither (client certificates). */
	const char *authorization;
	rc_http_sign_fn sign;
	rc_http_refresh_fn refresh;
	void *sign_ctx;

	const char *accept;     /* "application/json" */
	const char *user_agent; /* "reconcile/<version>" */
	const char *driver;     /* who asks, for rc_http_requests_each()
				   ("kubernetes"); NULL: "other" */
	const char *service;    /* what the endpoint is, for the user:
				   "the Kubernetes API server"; NULL:
				   "the server" (rc_http_endpoint) */
	const char *const *headers; /* more "Name: value" lines for every
				       request, NULL-terminated, or NULL */

	/* Limits; 0 stands for the default above, except for max_retries. */
	long connect_timeout_ms; /* per attempt */
	long timeout_ms;         /* per attempt, the whole exchange */
	int max_retries;         /* attempts after the first; 0: none */
	long backoff_base_ms;    /* first wait; doubles per retry, jittered */
	long backoff_cap_ms;     /* longest wait between attempts */
	long retry_after_cap_ms; /* longest wait a Retry-After may ask */
	size_t max_body;         /* cap on a reply's body */

	/* Rate budget over every attempt of every thread: a token bucket of
	 * burst tokens refilled at qps per second. qps 0: no budget. */
	double qps;
	int burst;

	/* Rate budget fed by the server (Heroku: "RateLimit-Remaining",
	 * 4500 tokens refilled at 75 per minute). After every reply the
	 * client records rate_header's value (the server's remaining tokens)
	 * and when it came. Before every attempt it estimates the remaining
	 * tokens (the last value, plus rate_refill_per_sec times the seconds
	 * since, minus the attempts sent since) and, when that is not a
	 * whole token above rate_reserve, waits until it would be: one
	 * token per 1/rate_refill_per_sec seconds. A 429 without Retry-After is retried
	 * after that same wait. Waits are counted in rc_http_counters.
	 * rate_header NULL: none; rate_refill_per_sec must then be > 0. */
	const char *rate_header;
	double rate_reserve;
	double rate_refill_per_sec;
} rc_http_opts;

typedef struct {
	char *name, *value;
} rc_http_header;

typedef struct {
	long status;    /* the final reply's, 0 when none came */
	rc_buf body;    /* its body, capped */
	rc_http_header *headers; /* its headers, in order */
	size_t nheaders, capheaders;
	int attempts;   /* how many times the request was sent */
} rc_http_resp;

typedef struct {
	uint64_t requests;    /* attempts sent */
	uint64_t retries;     /* attempts after a first one */
	uint64_t connections; /* new connections made (not reused) */
	uint64_t bytes_sent;  /* as curl counts them: headers and bodies */
	uint64_t bytes_received;
	uint64_t waits;   /* attempts that waited for a rate budget (qps or
			     rate_header) */
	uint64_t wait_ms; /* the time they waited, in total */
} rc_http_counters;

/* Fills o with the defaults above (no TLS material, no authentication,
 * no rate budget). */
void rc_http_opts_init(rc_http_opts *o);

/* A new client for o->base_url; close it with rc_http_close(). Fails
 * with RC_EINVALID on a bad URL or option. */
int rc_http_open(rc_http **out, const rc_http_opts *o);
/* Frees the client (NULL is fine); no request may still be running. */
void rc_http_close(rc_http *h);

void rc_http_resp_init(rc_http_resp *r);
void rc_http_resp_release(rc_http_resp *r);
/* The value of the reply's header name (case-insensitive; the last one
 * when repeated), or NULL. Borrowed from r. */
const char *rc_http_resp_header(const rc_http_resp *r, const char *name);
/* Reads one header line of a reply as libcurl hands it over (len bytes,
 * CRLF included or not, not NUL-terminated) into r: a status line
 * ("HTTP/...") starts a new reply (after a 100 Continue or a proxy's
 * CONNECT: only the last one's headers count) and sets *status (its
 * three digits, 0 when there are none); "Name:
 * value" is added with the value's surrounding blanks trimmed; anything
 * else is ignored. */
void rc_http_parse_header(rc_http_resp *r, long *status, const char *p,
			  size_t len);
/* The budget left that a reply's header name reports (a number, as
 * strtod reads it) into *remaining: true when the reply says, or when it
 * is a 429 that does not say (none left); false otherwise. */
bool rc_http_rate_remaining(const rc_http_resp *r, const char *name,
			    double *remaining);

/*
 * Sends req, retrying as docs/drivers/http.md says, and fills resp with
 * the last reply. Returns 0 whenever a reply came, whatever its status
 * (the driver reads the platform's error from the body); a negative
 * RC_E* code when none did: RC_ETIMEOUT for a timeout, RC_EAUTH when the
 * server's certificate is not trusted or the TLS handshake failed,
 * RC_EINVALID when a CA or client certificate cannot be used,
 * RC_ETOOBIG when the body passed its cap, RC_ENOTFOUND when the host
 * does not resolve, RC_ERROR for a broken or refused connection, or the
 * sign callback's error. The message names the method and URL, the cause
 * and the attempts.
 */
int rc_http_do(rc_http *h, const rc_http_req *req, rc_http_resp *resp);

/*
 * A long reply read line by line (a Kubernetes watch: one JSON event per
 * line). on_line gets each line without its "\n" (and "\r"), NUL-
 * terminated, borrowed for the call; it returns 0 to go on, > 0 to stop
 * (rc_http_stream then returns 0), < 0 to stop with that error. A reply
 * other than 2xx is not streamed: its body lands in resp->body and 0 is
 * returned, as rc_http_do() does. Retries happen only before the first
 * line was delivered. Returns 0 when the server ended the reply or
 * on_line stopped it, RC_ETIMEOUT when req->timeout_ms (or the client's)
 * passed, RC_ETOOBIG for a line longer than the body cap, or another
 * negative code as rc_http_do().
 */
typedef int (*rc_http_line_fn)(void *ctx, const char *line, size_t n);
int rc_http_stream(rc_http *h, const rc_http_req *req, rc_http_resp *resp,
		   rc_http_line_fn on_line, void *ctx);

/* The attempts of every client since the process started, by driver
 * (rc_http_opts.driver) and HTTP status (0: no reply came): fn is called
 * once per pair, under the table's lock (the controller's metrics). */
void rc_http_requests_each(void (*fn)(void *arg, const char *driver,
				      long status, uint64_t n),
			   void *arg);
/* The rate budget each client saw last, by driver, origin
 * ("https://host:port") and source: "client" for its own token bucket
 * (qps, burst: the tokens left), "server" for what the platform reports
 * in rate_header (the estimate after the last attempt). Kept after a
 * client closes; fn is called under the table's lock. */
void rc_http_budgets_each(void (*fn)(void *arg, const char *driver,
				     const char *origin, const char *source,
				     double remaining),
			  void *arg);

/*
 * Endpoints (docs/drivers/http.md, "Unreachable endpoints"). Every
 * client of the process counts, per endpoint ("scheme://host:port",
 * lowercase), the attempts in a row that got no reply for a transport
 * reason: connection refused, reset or closed before any reply, a host
 * that does not resolve, a connect or transfer timeout. An HTTP status,
 * whatever it is, is a reply. After RC_HTTP_UNREACHABLE_AFTER of them,
 * over RC_HTTP_UNREACHABLE_MIN_MS at least (so that a few resets in a
 * burst of requests are only retried), the endpoint is unreachable,
 * since the first of the streak; any reply, or rc_http_endpoint_probe()
 * reaching it, clears that.
 *
 * While an endpoint is unreachable, a request to it (or the next retry
 * of one under way) fails at once with RC_EUNREACHABLE and the message "<service> at
 * <endpoint> is unreachable since HH:MM:SS", sending nothing; except one
 * attempt every RC_HTTP_UNREACHABLE_TRIAL_MS, which goes out as a trial
 * (so that a process without a prober finds the endpoint back).
 */
#define RC_HTTP_UNREACHABLE_AFTER 3
#define RC_HTTP_UNREACHABLE_MIN_MS 1000L
#define RC_HTTP_UNREACHABLE_TRIAL_MS 5000L

typedef struct {
	int failures;     /* attempts in a row without a reply */
	bool unreachable;
	time_t since;     /* wall clock: the first failure of the streak */
	char service[64]; /* as its clients' rc_http_opts.service said */
} rc_http_endpoint;

/* The state of endpoint origin ("https://127.0.0.1:6443", any case, the
 * port written): 1 and *out when a request was ever sent to it, else 0. */
int rc_http_endpoint_state(const char *origin, rc_http_endpoint *out);
/* Appends "<service> at <origin> is unreachable since HH:MM:SS" (local
 * time) for an unreachable endpoint; returns false (nothing appended)
 * when it is not unreachable. */
bool rc_http_endpoint_describe(rc_buf *out, const char *origin);
/* Whether origin answers again: a TCP connection to its host and port
 * within timeout_ms. When it does, its failures are forgotten and it is
 * reachable again; returns true. Cheap: no TLS, no request. */
bool rc_http_endpoint_probe(const char *origin, long timeout_ms);
/* Every endpoint known, under the table's lock (the controller's
 * metrics). */
void rc_http_endpoints_each(void (*fn)(void *arg, const char *origin,
				       const rc_http_endpoint *ep),
			    void *arg);
/* Forgets every endpoint (tests). */
void rc_http_endpoints_reset(void);

/*
 * What the requests of the calling thread met since its last
 * rc_http_thread_reset() (the executor calls it before each action):
 * rc_http_thread_unreachable() the endpoint (origin) a request found
 * unreachable, or NULL (borrowed until the next reset, thread-local);
 * rc_http_thread_unanswered() whether a request that may change
 * something (any method but GET and HEAD) was sent and its reply lost
 * (reset, closed or timed out after it was sent), so that what it did is
 * not known; rc_http_thread_wrote() whether such a request had a 2xx
 * reply (something took effect); rc_http_thread_origin() the endpoint of
 * the last request sent, or NULL.
 */
void rc_http_thread_reset(void);
bool rc_http_thread_wrote(void);
const char *rc_http_thread_unreachable(void);
bool rc_http_thread_unanswered(void);
const char *rc_http_thread_origin(void);

/* A snapshot of the client's counters, from its open. */
void rc_http_stats(rc_http *h, rc_http_counters *out);

/* Appends "key=value" to a path's query, with '?' or '&' before it, both
 * percent-encoded (RFC 3986 unreserved characters stay as they are). */
int rc_http_query_add(rc_buf *path, const char *key, const char *value);
/* Appends s percent-encoded. */
int rc_http_url_encode(rc_buf *out, const char *s);

/* The wait a Retry-After value asks for, in milliseconds from now:
 * delta-seconds or an HTTP date; -1 when it is neither. */
long rc_http_retry_after_ms(const char *value, time_t now);

#endif
