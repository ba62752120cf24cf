/*
 * Where an AWS connection comes from, resolved as the AWS SDKs resolve it
 * (docs/drivers/aws-credentials.md): the credentials, the region and each
 * service's endpoint.
 *
 * Credentials, the first source that applies wins:
 *
 *   1. the environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
 *      AWS_SESSION_TOKEN;
 *   2. the shared files (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials,
 *      AWS_CONFIG_FILE or ~/.aws/config), profile opts.profile, else
 *      AWS_PROFILE, else "default": static keys, or credential_process;
 *      role_arn, SSO and web identity profiles are refused as not
 *      supported yet;
 *   3. the container credentials endpoint
 *      (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI against
 *      http://169.254.170.2, or AWS_CONTAINER_CREDENTIALS_FULL_URI with
 *      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE or _TOKEN);
 *   4. the instance metadata service, IMDSv2 only
 *      (AWS_EC2_METADATA_DISABLED, AWS_EC2_METADATA_SERVICE_ENDPOINT).
 *
 * When none applies the error lists every source and why it did not.
 * A source that applies but fails (a profile without its secret, a
 * container endpoint that answers 401) stops the chain with its own error,
 * as the SDKs do.
 *
 * Temporary credentials (with an expiration) are fetched again from the
 * same source when less than refresh_ahead_s seconds are left; get() does
 * that under the provider's mutex, so any number of threads may call it.
 * If the refresh fails while the old credentials are still valid, they are
 * kept (with a warning) and the refresh is tried again on the next call.
 *
 * Secrets: every access key id, secret and session token is registered
 * with the redactor (rc_secret_register) as soon as it is read, and none
 * ever appears in an error message.
 *
 * Ownership: rc_aws_creds and every string handed out through `out` are
 * the caller's (rc_aws_creds_release, free); options are borrowed for the
 * call.
 */
#ifndef RC_DRIVERS_AWS_CREDS_H
#define RC_DRIVERS_AWS_CREDS_H

#include "reconciler/base/common.h"

/* Temporary credentials are refreshed when fewer seconds are left. */
#define RC_AWS_REFRESH_AHEAD_S 300L
/* Each attempt at a metadata endpoint (container, IMDS). */
#define RC_AWS_METADATA_TIMEOUT_MS 5000L
#define RC_AWS_METADATA_CONNECT_TIMEOUT_MS 1000L
/* The lifetime asked for an IMDSv2 session token. */
#define RC_AWS_IMDS_TOKEN_TTL_S 21600
/* A credential_process that has not answered by then is killed. */
#define RC_AWS_PROCESS_TIMEOUT_MS 60000L

#define RC_AWS_CONTAINER_HOST "http://169.254.170.2"
#define RC_AWS_IMDS_ENDPOINT "http://169.254.169.254"

typedef struct {
	char *access_key_id;
	char *secret_access_key;
	char *session_token; /* NULL for long-term keys */
	time_t expiration;   /* 0: does not expire */
	/* Where they came from, for messages: "environment",
	 * "shared credentials file ~/.aws/credentials, profile \"dev\"",
	 * "credential_process of profile \"dev\"", "container credentials
	 * endpoint http://169.254.170.2/v2/...", "instance metadata
	 * (IMDSv2), role \"web\"". Never a secret. */
	char *source;
} rc_aws_creds;

/* Wipes the secrets and frees every string (NULL is fine). */
void rc_aws_creds_release(rc_aws_creds *c);

typedef struct {
	const char *profile; /* NULL: $AWS_PROFILE, else "default" */
	const char *region;  /* target.region, or NULL: see
				rc_aws_region_resolve() */
	long refresh_ahead_s; /* 0: RC_AWS_REFRESH_AHEAD_S */
	long metadata_timeout_ms; /* 0: RC_AWS_METADATA_TIMEOUT_MS */
	long process_timeout_ms;  /* 0: RC_AWS_PROCESS_TIMEOUT_MS */
} rc_aws_provider_opts;

typedef struct rc_aws_provider rc_aws_provider;

/*
 * Resolves the region and the credentials (the first fetch happens here,
 * so a missing credential is reported at open). o may be NULL.
 */
int rc_aws_provider_open(rc_aws_provider **out,
			 const rc_aws_provider_opts *o);
void rc_aws_provider_close(rc_aws_provider *p);

/* A copy of the current credentials, refreshed first when they expire
 * within refresh_ahead_s. Thread-safe. */
int rc_aws_provider_get(rc_aws_provider *p, rc_aws_creds *out);

/* The region resolved at open (borrowed), or NULL when none is set. */
const char *rc_aws_provider_region(const rc_aws_provider *p);
/* The profile in use (borrowed): "default" when none is named. */
const char *rc_aws_provider_profile(const rc_aws_provider *p);
/* How many times credentials were fetched from their source (tests). */
int rc_aws_provider_fetches(rc_aws_provider *p);

/*
 * The region: hint (target.region), else AWS_REGION, else
 * AWS_DEFAULT_REGION, else the profile's `region` in the config file
 * (profile NULL: $AWS_PROFILE, else "default"). *out is new, or NULL
 * when none is set anywhere (not an error: the caller says what needs
 * one).
 */
int rc_aws_region_resolve(char **out, const char *hint, const char *profile);

/*
 * The endpoint of a service: AWS_ENDPOINT_URL_<SERVICE> where SERVICE is
 * service_id in upper case with spaces as underscores ("ECS",
 * "Secrets Manager" -> AWS_ENDPOINT_URL_SECRETS_MANAGER), else
 * AWS_ENDPOINT_URL, else https://<endpoint_prefix>.<region>.amazonaws.com
 * (.amazonaws.com.cn for cn- regions). An override must be an http(s)
 * URL; http:// only to a loopback host (127.0.0.0/8, ::1, localhost).
 * *out is new, without a trailing '/'. RC_EINVALID without a region when
 * no override applies, or for a refused URL.
 */
int rc_aws_endpoint_resolve(char **out, const char *service_id,
			    const char *endpoint_prefix, const char *region);

/* AWS_CA_BUNDLE when set (borrowed from the environment), checked to be a
 * readable file; NULL when unset. RC_ENOTFOUND when set but unreadable. */
int rc_aws_ca_bundle(const char **out);

/* Whether url is http(s) and, for http, its host is loopback. */
bool rc_aws_url_allowed(const char *url);

/* Splits a credential_process command as the SDKs do (POSIX shell words:
 * blanks separate, '...' and "..." quote, backslash escapes; no
 * expansion, no shell). *out is a new NULL-terminated vector. */
int rc_aws_split_command(char ***out, const char *command);
void rc_aws_strv_free(char **v);

#endif
