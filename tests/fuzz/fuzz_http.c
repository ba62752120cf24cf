/*
 * Fuzz target for the reply headers drivers/http.c reads: the input is a
 * reply's head, one header line per line as libcurl hands them over
 * (rc_http_parse_header(): status lines, "Name: value", anything), up to
 * an empty line; what follows is the body. The headers the drivers read
 * are then looked up and parsed: Retry-After (rc_http_retry_after_ms()),
 * the rate budget of RateLimit-Remaining (rc_http_rate_remaining()),
 * WWW-Authenticate (rc_oci_challenge_parse()), and a Heroku reply made of
 * the reply as drivers/heroku_api.c makes it (Request-Id, Next-Range,
 * Retry-After, Date and the body) through rc_heroku_fail(), and an AWS
 * one (Content-Type, x-amzn-RequestId) through rc_aws_reply_error(). A
 * canary secret is registered before each input
 * (tests/fuzz/fuzz_canary.h): an error holding it aborts.
 */
#include "reconciler/base/common.h"
#include "reconciler/base/error.h"
#include "drivers/aws_error.h"
#include "drivers/heroku_api.h"
#include "drivers/http.h"
#include "drivers/oci.h"

#include "tests/fuzz/fuzz_canary.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *dup_header(const rc_http_resp *r, const char *name)
{
	const char *v = rc_http_resp_header(r, name);

	return v ? rc_strdup(v) : NULL;
}

static void heroku(const rc_http_resp *r, long status, bool team)
{
	static rc_heroku_api *api;
	rc_heroku_reply h;

	if (!api) {
		setenv("HEROKU_API_KEY", "fuzz-key-0123456789", 1);
		if (rc_heroku_api_open(&api, NULL, NULL) < 0)
			abort();
	}
	memset(&h, 0, sizeof(h));
	h.status = status;
	h.attempts = 1;
	h.request_id = dup_header(r, "Request-Id");
	h.range_next = dup_header(r, "Next-Range");
	h.retry_after = dup_header(r, "Retry-After");
	h.date = dup_header(r, "Date");
	if (r->body.len)
		h.json = json_loadb(r->body.ptr, r->body.len, 0, NULL);
	if (rc_heroku_fail(api, &h, "list apps", team ? "team" : NULL,
			   (rc_loc){0}) >= 0)
		abort();
	rc_fuzz_canary_check("a Heroku call");
	rc_heroku_reply_release(&h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *nl;
	rc_http_resp r;
	rc_oci_challenge ch = {0};
	long status = 0;
	double left;
	json_t *j;

	rc_fuzz_canary_register();
	rc_http_resp_init(&r);
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		nl = nl ? nl + 1 : end;
		if (nl - p <= 2 && (*p == '\n' || *p == '\r')) {
			p = nl;
			break;
		}
		rc_http_parse_header(&r, &status, p, (size_t)(nl - p));
		p = nl;
	}
	rc_buf_put(&r.body, p, (size_t)(end - p));
	r.status = status;
	/* a name is never empty nor holds the colon; a value is trimmed
	 * (unless a NUL byte cut them short) */
	for (size_t i = 0; i < r.nheaders && !memchr(data, 0, size); i++) {
		const char *n = r.headers[i].name, *v = r.headers[i].value;
		size_t vl = strlen(v);

		if (!*n || strchr(n, ':') ||
		    (vl && (strchr(" \t", v[0]) || strchr(" \t", v[vl - 1]))))
			abort();
	}
	(void)rc_http_retry_after_ms(rc_http_resp_header(&r, "Retry-After"),
				     1700000000);
	(void)rc_http_rate_remaining(&r, "RateLimit-Remaining", &left);
	if (rc_oci_challenge_parse(&ch, rc_http_resp_header(
					       &r, "WWW-Authenticate")) == 0)
		rc_oci_challenge_release(&ch);
	rc_error_clear();
	heroku(&r, status, size & 1);
	j = json_loadb(r.body.ptr, r.body.len, 0, NULL);
	if (rc_aws_reply_error("DescribeServices", "ecs", status, j, r.body.len,
			       rc_http_resp_header(&r, "Content-Type"),
			       rc_http_resp_header(&r, "x-amzn-RequestId"),
			       (rc_loc){0}) >= 0)
		abort();
	rc_fuzz_canary_check("an ECS call");
	json_decref(j);
	rc_http_resp_release(&r);
	rc_error_clear();
	rc_secret_clear();
	return 0;
}
