/*
 * AWS Signature Version 4: the canonical request, the string to sign, the
 * signature and the Authorization header (or the presigned query) of an
 * HTTP request, as AWS documents them and as the two test suites in
 * ../shared/contracts/aws/sigv4/ define them byte for byte
 * (docs/drivers/aws-sigv4.md). Every digest goes through codec.
 *
 * Two levels:
 *   rc_aws_sigv4_sign()  a request as data (method, raw path with its
 *                        query, headers, body or its hash) -> the
 *                        intermediate texts and what to add to the
 *                        request; no clock, no locks, no logging
 *   rc_aws_signer        what a driver plugs into drivers/http.h as its
 *                        sign callback (rc_aws_signer_http_sign): the
 *                        clock, credentials that may be replaced while
 *                        requests run, a cached signing key
 *
 * Secrets: the secret access key and the session token are registered with
 * the redactor (rc_secret_register) by rc_aws_signer_new() and
 * rc_aws_signer_set_credentials(); nothing here logs, and no error message
 * carries a key, a token or a signature.
 *
 * Ownership: inputs are borrowed for the call. A result is the caller's:
 * rc_aws_sigv4_result_init() it, rc_aws_sigv4_result_release() it; its
 * added headers point into the result itself and into the credentials the
 * call was given (the session token), which must outlive their use.
 */
#ifndef RC_DRIVERS_AWS_SIGV4_H
#define RC_DRIVERS_AWS_SIGV4_H

#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/codec.h"
#include "drivers/http.h"

#define RC_AWS_SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define RC_AWS_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
/* "20150830T123600Z" and its NUL */
#define RC_AWS_AMZ_DATE_SIZE 17

typedef struct {
	const char *access_key_id;
	const char *secret_access_key;
	const char *session_token; /* NULL or "": none */
} rc_aws_credentials;

/* One header line of a request. A value may span lines (obsolete line
 * folding, "a\n  b"): folds count as whitespace. Names are matched
 * without regard to case; the same name may come more than once. */
typedef struct {
	const char *name;
	const char *value;
} rc_aws_header;

typedef struct {
	const char *method; /* "GET", "POST", ... */
	const char *path;   /* as sent, with its query: "/a/b?x=1&y" */
	const rc_aws_header *headers; /* must hold Host */
	size_t nheaders;
	const void *body; /* hashed unless payload_hash is set */
	size_t body_len;
	/* The payload's SHA-256 in lowercase hex, or "UNSIGNED-PAYLOAD";
	 * NULL: computed from body. */
	const char *payload_hash;
} rc_aws_sigv4_req;

typedef struct {
	const char *region;  /* "us-east-1" */
	const char *service; /* "ecs", "s3", "service" */
	time_t time;         /* the signing time (UTC); ignored when the
				request already has an X-Amz-Date header,
				whose value is then used */
	const rc_aws_credentials *creds;

	/* Canonical URI: remove dot segments and collapse repeated slashes
	 * (every service but S3); percent-encode the path once more, as it
	 * is sent (every service but S3, whose path is used as sent). */
	bool normalize_path;
	bool double_encode;
	/* Add and sign X-Amz-Content-Sha256 (S3 wants it; ECS does not). */
	bool content_sha256_header;
	/* The session token is added after signing, unsigned (a few
	 * services want it so); otherwise it is a signed header, or a
	 * signed query parameter when presigning. */
	bool token_after_signing;

	/* Presigned URL instead of headers: the X-Amz-* parameters go into
	 * the query, with X-Amz-Expires = expires (seconds, 1..604800). */
	bool presign;
	long expires;

	/* kSigning for this date, region and service, from
	 * rc_aws_sigv4_signing_key() (a cache); NULL: derived here. */
	const unsigned char *signing_key;
} rc_aws_sigv4_opts;

/* What signing made. */
typedef struct {
	rc_buf canonical_request;
	rc_buf string_to_sign;
	char signature[RC_SHA256_HEX_LEN + 1];
	char amz_date[RC_AWS_AMZ_DATE_SIZE];
	char payload_hash[RC_SHA256_HEX_LEN + 1]; /* or UNSIGNED-PAYLOAD */
	rc_buf signed_headers;  /* "host;x-amz-date" */
	rc_buf authorization;   /* the header's value; empty when presigning */
	/* Headers to add to the request, in this order: X-Amz-Security-Token,
	 * X-Amz-Date, x-amz-content-sha256, Authorization (each only when it
	 * applies; X-Amz-Date not when the request had one). When
	 * presigning: none (the token, signed or not, is in the query). */
	rc_aws_header added[4];
	size_t nadded;
	/* Presigning: the request's path and query with the X-Amz-*
	 * parameters appended (X-Amz-Signature last). Empty otherwise. */
	rc_buf presigned_path;
} rc_aws_sigv4_result;

/* Sets the defaults of every service but S3: normalize_path and
 * double_encode on, no X-Amz-Content-Sha256, token signed, headers (not
 * presigned), expires 3600. */
void rc_aws_sigv4_opts_init(rc_aws_sigv4_opts *o);

void rc_aws_sigv4_result_init(rc_aws_sigv4_result *r);
void rc_aws_sigv4_result_release(rc_aws_sigv4_result *r);

/* kSigning = HMAC chain of "AWS4" + secret over date ("20150830"), region,
 * service and "aws4_request". Valid for every request of that day,
 * region and service: keep it and pass it as opts->signing_key. */
void rc_aws_sigv4_signing_key(unsigned char out[RC_SHA256_LEN],
			      const char *secret, const char *date,
			      const char *region, const char *service);

/*
 * Signs req: fills r (emptied first). Returns 0; RC_EINVALID (with
 * rc_error_set) when the request cannot be signed: no Host header, a
 * method, region or service missing or holding a character that cannot
 * be in a credential scope, no credentials, a malformed X-Amz-Date, a
 * payload hash that is neither 64 hex digits nor UNSIGNED-PAYLOAD, an
 * expiry out of range; RC_ETOOBIG when a text passes its cap.
 */
int rc_aws_sigv4_sign(rc_aws_sigv4_result *r, const rc_aws_sigv4_req *req,
		      const rc_aws_sigv4_opts *opts);

/*
 * The canonical URI and query alone (exposed for tests and for a server
 * that verifies signatures): the path part of raw (up to '?') and its
 * query, as the canonical request holds them. 0 or RC_ETOOBIG.
 */
int rc_aws_sigv4_canonical_uri(rc_buf *out, const char *raw, size_t len,
			       bool normalize, bool double_encode);
int rc_aws_sigv4_canonical_query(rc_buf *out, const char *query,
				 size_t len);

/* ---- the signer behind drivers/http.h ---- */

typedef struct rc_aws_signer rc_aws_signer;

typedef struct {
	const char *region;  /* required */
	const char *service; /* required: "ecs", "secretsmanager" */
	rc_aws_credentials creds; /* copied; all but the token required */
	bool content_sha256_header; /* S3: sign X-Amz-Content-Sha256 */
	bool token_after_signing;
	bool no_normalize_path; /* S3 */
	bool no_double_encode;  /* S3 */
	/* The clock (seconds since the epoch); NULL: time(). Tests. */
	time_t (*now)(void);
} rc_aws_signer_opts;

/* A signer for one region and service. Copies o, registers the secret and
 * the token with the redactor. RC_EINVALID when something required is
 * missing. */
int rc_aws_signer_new(rc_aws_signer **out, const rc_aws_signer_opts *o);
void rc_aws_signer_free(rc_aws_signer *s);
/* Replaces the credentials (a refresh) for the requests signed from now
 * on; safe while other threads sign. Registers the new secret and token. */
int rc_aws_signer_set_credentials(rc_aws_signer *s,
				  const rc_aws_credentials *creds);

/*
 * An rc_http_sign_fn: ctx is an rc_aws_signer. Signs the attempt's
 * method, URL (its host and port become the Host header, its path and
 * query the canonical URI and query), the Content-Type http.c will send
 * with a body, req->headers, and the body (a streamed body is signed as
 * UNSIGNED-PAYLOAD), then appends X-Amz-Security-Token (when there is a
 * token), X-Amz-Date, X-Amz-Content-Sha256 (when asked) and
 * Authorization to *headers.
 */
int rc_aws_signer_http_sign(void *ctx, const rc_http_req *req,
			    const char *url, struct curl_slist **headers);

#endif
