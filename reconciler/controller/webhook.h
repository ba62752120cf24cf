/*
 * Push webhooks and bearer tokens: who may wake the controller.
 *
 *   github   X-Hub-Signature-256: sha256=<hex HMAC-SHA-256 of the body
 *            under the secret>; X-GitHub-Event: ping is a ping
 *   gitlab   X-Gitlab-Token: the secret itself
 *   generic  Authorization: Bearer <the secret>
 *
 * Every comparison takes a time that depends only on the lengths
 * (rc_codec_equal). Messages never contain the body or a secret.
 */
#ifndef RC_CTL_WEBHOOK_H
#define RC_CTL_WEBHOOK_H

#include "reconciler/base/common.h"

typedef enum {
	RC_HOOK_GITHUB,
	RC_HOOK_GITLAB,
	RC_HOOK_GENERIC
} rc_webhook_kind;

/* The kind for a path "/hooks/<kind>"; -1 when it is none. */
int rc_webhook_kind_of(const char *path);

/* Looks a request header up by name (case-insensitive); NULL if absent. */
typedef const char *(*rc_header_fn)(void *arg, const char *name);

/*
 * Verifies a webhook request of kind against secret. 0 when it is
 * genuine (*ping set for a GitHub ping), RC_EAUTH with the reason
 * otherwise (no secret configured, the header missing, malformed or
 * wrong).
 */
int rc_webhook_verify(rc_webhook_kind kind, rc_header_fn header, void *arg,
		      const void *body, size_t len, const char *secret,
		      bool *ping);

/* Whether an Authorization header value is "Bearer <token>" (constant
 * time in the token's length). A NULL or empty token never matches. */
bool rc_bearer_ok(const char *authorization, const char *token);

#endif
