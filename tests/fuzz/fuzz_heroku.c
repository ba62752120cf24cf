/*
 * Fuzz target for the decoding of Heroku replies (drivers/heroku_map.c,
 * drivers/heroku_api.c). An optional first line "NNN" is the reply's
 * status, the rest its body. The body is parsed as JSON and put in
 * normal form as an app, an add-on, a formation list and config vars
 * (with the vars as what is wanted), each folded by rc_heroku_normalize();
 * the reply goes through rc_heroku_fail() (the error text of a refusal,
 * with a Next-Range, a Request-Id and a Retry-After), and the whole
 * input is read as a netrc file by rc_heroku_netrc_password(). A canary
 * secret is registered before each input (tests/fuzz/fuzz_canary.h): a
 * refusal's error holding it aborts.
 */
#include "reconciler/base/common.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "drivers/heroku_api.h"
#include "drivers/heroku_map.h"

#include "tests/fuzz/fuzz_canary.h"
#include "tests/fuzz/fuzz_status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void normal(json_t *body, const char *kind)
{
	if (!body)
		return;
	rc_heroku_normalize(kind, body);
	json_decref(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static rc_heroku_api *api;
	rc_heroku_reply r;
	char *text, *pw;
	const uint8_t *all = data;
	size_t all_size = size;

	if (!api) {
		setenv("HEROKU_API_KEY", "fuzz-key-0123456789", 1);
		if (rc_heroku_api_open(&api, NULL, NULL) < 0)
			abort();
	}
	rc_fuzz_canary_register();
	memset(&r, 0, sizeof(r));
	r.status = 200;
	rc_fuzz_status(&data, &size, &r.status);
	r.json = json_loadb((const char *)data, size, 0, NULL);
	if (r.json) {
		normal(rc_heroku_app_body(r.json, true), RC_HEROKU_APP);
		normal(rc_heroku_app_body(r.json, false), RC_HEROKU_APP);
		normal(rc_heroku_addon_body(r.json), RC_HEROKU_ADDON);
		normal(rc_heroku_formation_body(r.json, NULL),
		       RC_HEROKU_FORMATION);
		normal(rc_heroku_formation_body(r.json, r.json),
		       RC_HEROKU_FORMATION);
		normal(rc_heroku_config_body(r.json, r.json, r.json, NULL),
		       RC_HEROKU_CONFIG);
	}
	r.request_id = rc_strdup("01234567-89ab-cdef-0123-456789abcdef");
	r.range_next = rc_strdup("]id ..; max=1000");
	r.retry_after = rc_strdup("5");
	r.attempts = 3;
	rc_heroku_fail(api, &r, "create app 'fuzz'", size & 1 ? "team" : NULL,
		       (rc_loc){0});
	rc_fuzz_canary_check("a Heroku refusal");
	rc_heroku_reply_release(&r);
	rc_error_clear();

	text = rc_strndup((const char *)all, all_size);
	pw = rc_heroku_netrc_password(text, "api.heroku.com");
	if (pw) {
		explicit_bzero(pw, strlen(pw));
		free(pw);
	}
	free(text);
	rc_secret_clear();
	return 0;
}
