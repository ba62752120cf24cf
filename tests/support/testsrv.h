/*
 * A scripted HTTPS server for tests: real TLS with the test CA
 * (tests/support/testca.h) on a loopback port, answering each request
 * with the next step of a script (the last step repeats), and recording
 * what it was sent. Platform fakes (Kubernetes, Heroku, ECS) build on it.
 *
 * Runs a thread per connection, so a step may wait (delay_ms) without
 * holding up other connections.
 */
#ifndef RC_TESTSRV_H
#define RC_TESTSRV_H

#include <stdbool.h>
#include <stddef.h>

#include "tests/support/testca.h"

typedef enum {
	RC_TESTSRV_REPLY = 0, /* status, headers, body */
	RC_TESTSRV_CUT,       /* announces more body than it sends, sends
				 the body, then breaks the connection */
	RC_TESTSRV_DROP       /* closes the connection without a reply */
} rc_testsrv_action;

typedef struct {
	int status;               /* 0: 200 */
	const char *body;         /* or NULL */
	const char *headers;      /* "Name: value" lines, '\n'-separated */
	long delay_ms;            /* before the reply */
	rc_testsrv_action action;
	/* A chunked reply in pieces with pauses between them, after body
	 * (a watch stream), NULL-terminated. */
	const char *const *chunks;
	long chunk_delay_ms;
} rc_testsrv_step;

/* What one request carried (strings owned by the server). */
typedef struct {
	char *method, *path, *query; /* query: "k=v&k2=v2", decoded */
	char *authorization, *user_agent, *accept, *content_type;
	char *client_cn; /* the verified client certificate's CN, or NULL */
	char *body;
} rc_testsrv_req;

typedef struct rc_testsrv rc_testsrv;

/* Starts a server with ca's server certificate. With trust_clients, it
 * asks for a client certificate signed by ca (and records its CN);
 * require_client additionally answers 401 to a request without one.
 * Returns NULL with a message on stderr. */
rc_testsrv *rc_testsrv_start(const rc_testca *ca, bool trust_clients,
			     bool require_client);
void rc_testsrv_stop(rc_testsrv *s);
int rc_testsrv_port(const rc_testsrv *s);
/* "https://127.0.0.1:<port>" (borrowed). */
const char *rc_testsrv_url(const rc_testsrv *s);

/* Replaces the script (steps are copied, strings too) and forgets the
 * recorded requests and counters. */
void rc_testsrv_script(rc_testsrv *s, const rc_testsrv_step *steps,
		       size_t n);
/* Answers 401 (without using a step) to requests whose Authorization is
 * not exactly value; NULL: any. */
void rc_testsrv_require_auth(rc_testsrv *s, const char *value);
/* Answers 401 (without using a step) to requests whose path starts with
 * path_prefix (NULL: every path) and that lack the header name with
 * exactly value (an AWS metadata token); name NULL: no such check. */
void rc_testsrv_require_header(rc_testsrv *s, const char *name,
			       const char *value, const char *path_prefix);

/* Requests received and TLS connections accepted since the script was
 * set. */
size_t rc_testsrv_requests(rc_testsrv *s);
size_t rc_testsrv_connections(rc_testsrv *s);
/* A copy of request i (release with rc_testsrv_req_release); false when
 * there is no such request. */
bool rc_testsrv_request(rc_testsrv *s, size_t i, rc_testsrv_req *out);
void rc_testsrv_req_release(rc_testsrv_req *r);

#endif
