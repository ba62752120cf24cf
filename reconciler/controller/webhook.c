#include "reconciler/base/common.h"
#include "reconciler/base/codec.h"
#include "reconciler/base/error.h"
#include "reconciler/controller/webhook.h"

int rc_webhook_kind_of(const char *path)
{
	static const char *const names[] = {"github", "gitlab", "generic"};

	if (strncmp(path, "/hooks/", 7))
		return -1;
	for (size_t i = 0; i < RC_ARRAY_SIZE(names); i++)
		if (!strcmp(path + 7, names[i]))
			return (int)i;
	return -1;
}

bool rc_bearer_ok(const char *authorization, const char *token)
{
	static const char prefix[] = "Bearer ";
	const char *given;

	if (!authorization || !token || !*token ||
	    strncasecmp(authorization, prefix, sizeof(prefix) - 1))
		return false;
	given = authorization + sizeof(prefix) - 1;
	return rc_codec_equal(given, strlen(given), token, strlen(token));
}

static int github(rc_header_fn header, void *arg, const void *body,
		  size_t len, const char *secret, bool *ping)
{
	const char *sig = header(arg, "X-Hub-Signature-256");
	const char *event = header(arg, "X-GitHub-Event");
	unsigned char mac[RC_SHA256_LEN];
	rc_buf want = RC_BUF_INIT_MAX(128);
	bool same;

	if (!sig)
		return rc_error_set(RC_EAUTH, RC_ECLASS_HTTP,
				    "no X-Hub-Signature-256 header");
	rc_codec_hmac_sha256(mac, secret, strlen(secret), body, len);
	rc_buf_puts(&want, "sha256=");
	rc_codec_hex_encode(&want, mac, sizeof(mac)); /* lowercase, as GitHub */
	same = rc_codec_equal(sig, strlen(sig), want.ptr, want.len);
	rc_buf_release(&want);
	if (!same)
		return rc_error_set(RC_EAUTH, RC_ECLASS_HTTP,
				    "the X-Hub-Signature-256 signature does "
				    "not match the body");
	*ping = event && !strcmp(event, "ping");
	return 0;
}

int rc_webhook_verify(rc_webhook_kind kind, rc_header_fn header, void *arg,
		      const void *body, size_t len, const char *secret,
		      bool *ping)
{
	const char *v;

	*ping = false;
	if (!secret || !*secret)
		return rc_error_set(RC_EAUTH, RC_ECLASS_HTTP,
				    "no webhook secret is configured "
				    "(RECONCILE_WEBHOOK_SECRET)");
	switch (kind) {
	case RC_HOOK_GITHUB:
		return github(header, arg, body, len, secret, ping);
	case RC_HOOK_GITLAB:
		v = header(arg, "X-Gitlab-Token");
		if (!v)
			return rc_error_set(RC_EAUTH, RC_ECLASS_HTTP,
					    "no X-Gitlab-Token header");
		if (!rc_codec_equal(v, strlen(v), secret, strlen(secret)))
			return rc_error_set(RC_EAUTH, RC_ECLASS_HTTP,
					    "the X-Gitlab-Token is wrong");
		return 0;
	case RC_HOOK_GENERIC:
		if (!rc_bearer_ok(header(arg, "Authorization"), secret))
			return rc_error_set(RC_EAUTH, RC_ECLASS_HTTP,
					    "the bearer token is missing or "
					    "wrong");
		return 0;
	}
	return rc_error_set(RC_EAUTH, RC_ECLASS_HTTP, "unknown webhook");
}
