/*
 * Fuzz target for the controller's webhooks (reconciler/controller/
 * webhook.c): the input's first line is the request's path
 * ("/hooks/github", "/hooks/gitlab", "/hooks/generic" or anything), then
 * its headers ("Name: value" lines, looked up case-insensitively as
 * libmicrohttpd does) up to an empty line, then the body (the payload).
 * The request is verified against the webhook secret (the canary of
 * tests/fuzz/fuzz_canary.h, registered as every secret is): a refusal's
 * error never holds it, and a request accepted carries it (GitLab's
 * token, the generic bearer token) or a signature of the body's shape
 * (GitHub's "sha256=" and 64 hex digits). Each header's value is also
 * checked as a bearer token (rc_bearer_ok()).
 */
#include "reconciler/base/common.h"
#include "reconciler/base/error.h"
#include "reconciler/controller/webhook.h"

#include "tests/fuzz/fuzz_canary.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_HEADERS 32

typedef struct {
	char *name[MAX_HEADERS], *value[MAX_HEADERS];
	size_t n;
} headers;

static const char *lookup(void *arg, const char *name)
{
	headers *h = arg;

	for (size_t i = 0; i < h->n; i++)
		if (!strcasecmp(h->name[i], name))
			return h->value[i];
	return NULL;
}

/* The line at *p (without its "\r\n"), and *p past it. */
static char *line(const char **p, const char *end)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p)), *e;
	char *s;

	e = nl ? nl : end;
	s = rc_strndup(*p, (size_t)(e - *p - (e > *p && e[-1] == '\r')));
	*p = nl ? nl + 1 : end;
	return s;
}

static void accepted(int kind, headers *h)
{
	const char *v;

	switch (kind) {
	case RC_HOOK_GITHUB:
		v = lookup(h, "X-Hub-Signature-256");
		if (!v || strncmp(v, "sha256=", 7) || strlen(v) != 71 ||
		    strspn(v + 7, "0123456789abcdef") != 64)
			abort();
		break;
	case RC_HOOK_GITLAB:
		v = lookup(h, "X-Gitlab-Token");
		if (!v || strcmp(v, RC_FUZZ_CANARY))
			abort();
		break;
	case RC_HOOK_GENERIC:
		v = lookup(h, "Authorization");
		if (!v || strncasecmp(v, "Bearer ", 7) ||
		    strcmp(v + 7, RC_FUZZ_CANARY))
			abort();
		break;
	default:
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	char *path = line(&p, end);
	headers h = {0};
	bool ping = false;
	int kind = rc_webhook_kind_of(path);

	rc_fuzz_canary_register();
	while (p < end && h.n < MAX_HEADERS) {
		char *l = line(&p, end), *colon = strchr(l, ':'), *v;

		if (!*l) {
			free(l);
			break;
		}
		if (!colon) {
			free(l);
			continue;
		}
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		h.value[h.n] = rc_strdup(v);
		*colon = '\0';
		h.name[h.n++] = l;
	}
	if (kind < 0)
		kind = (int)(size % 3);
	if (rc_webhook_verify((rc_webhook_kind)kind, lookup, &h, p,
			      (size_t)(end - p), RC_FUZZ_CANARY, &ping) == 0)
		accepted(kind, &h);
	else
		rc_fuzz_canary_check("a webhook's verification");
	if (rc_webhook_verify((rc_webhook_kind)kind, lookup, &h, p,
			      (size_t)(end - p), NULL, &ping) == 0)
		abort();
	for (size_t i = 0; i < h.n; i++) {
		if (rc_bearer_ok(h.value[i], RC_FUZZ_CANARY) &&
		    strcmp(h.value[i] + 7, RC_FUZZ_CANARY))
			abort();
		free(h.name[i]);
		free(h.value[i]);
	}
	free(path);
	rc_error_clear();
	rc_secret_clear();
	return 0;
}
