/* The reply-header reader of drivers/http.c (rc_http_parse_header) and
 * the rate header's (rc_http_rate_remaining), on lines as libcurl hands
 * them over: not NUL-terminated. */
#include "tests/unit/helpers.h"
#include "drivers/http.h"

/* Feeds text's lines to r, each from a buffer of its own exact size (no
 * terminator after it, so that ASan sees any read past it). */
static void feed(rc_http_resp *r, long *status, const char *text)
{
	while (*text) {
		const char *nl = strchr(text, '\n');
		size_t n = nl ? (size_t)(nl - text + 1) : strlen(text);
		char *line = rc_malloc(n);

		memcpy(line, text, n);
		rc_http_parse_header(r, status, line, n);
		free(line);
		text += n;
	}
}

static void headers_read(void **state)
{
	rc_http_resp r;
	long status = -1;
	double left = -1;

	RC_UNUSED(state);
	rc_http_resp_init(&r);
	feed(&r, &status, "HTTP/1.1 100 Continue\r\nX-Early: 1\r\n"
			  "HTTP/2 206 \r\nNext-Range: ]id ..; max=1000 \r\n"
			  "RateLimit-Remaining:\t4499\r\nno colon\r\n"
			  ": no name\r\n");
	assert_int_equal(status, 206);
	assert_null(rc_http_resp_header(&r, "X-Early"));
	assert_string_equal(rc_http_resp_header(&r, "next-range"),
			    "]id ..; max=1000");
	assert_int_equal(r.nheaders, 2);
	assert_true(rc_http_rate_remaining(&r, "RateLimit-Remaining", &left));
	assert_true(left == 4499);
	rc_http_resp_release(&r);
}

/* A status line that ends in the middle of its code (a fuzz finding:
 * tests/fuzz/regressions-http/status-line-cut-short): read within it. */
static void status_line_cut_short(void **state)
{
	rc_http_resp r;
	long status = -1;
	double left = -1;

	RC_UNUSED(state);
	rc_http_resp_init(&r);
	feed(&r, &status, "HTTP/1.1 4");
	assert_int_equal(status, 4);
	feed(&r, &status, "HTTP/1.1 ");
	assert_int_equal(status, 0);
	feed(&r, &status, "HTTP/1.1 4290");
	assert_int_equal(status, 429);
	/* a 429 that does not say: none left; another status: unknown */
	r.status = 429;
	assert_true(rc_http_rate_remaining(&r, "RateLimit-Remaining", &left));
	assert_true(left == 0);
	r.status = 200;
	assert_false(rc_http_rate_remaining(&r, "RateLimit-Remaining", &left));
	feed(&r, &status, "RateLimit-Remaining: lots\r\n");
	assert_false(rc_http_rate_remaining(&r, "RateLimit-Remaining", &left));
	rc_http_resp_release(&r);
}

int test_group_http_header(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(headers_read),
		cmocka_unit_test(status_line_cut_short),
	};

	return cmocka_run_group_tests_name("http_header", tests, NULL, NULL);
}
