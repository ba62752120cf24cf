#include "reconciler/base/common.h"
#include "reconciler/base/log.h"

#include <jansson.h>
#include <pthread.h>

#include <openssl/crypto.h>

#include "reconciler/base/codec.h"
#include "reconciler/base/rctime.h"

rc_log_level rc_log_threshold = RC_LOG_WARN;
static FILE *log_stream;
static rc_log_format log_format = RC_LOG_TEXT;
static _Thread_local char ctx_env[128], ctx_run[64];

/* Every registered value and what it becomes encoded (base64, percent):
 * a run registers hundreds of tokens, and the journal redacts every
 * string, so each form keeps its length. */
typedef struct {
	char *s;
	size_t len;
	bool whole_field; /* shorter than RC_REDACT_MIN_LEN: log.h */
} secret_form;
static pthread_mutex_t secrets_lock = PTHREAD_MUTEX_INITIALIZER;
static secret_form *forms;
static size_t nforms, capforms;

static const char *level_names[] = {"error", "warning", "info", "debug",
				    "trace"};

void rc_log_set_stream(FILE *f)
{
	log_stream = f;
}

void rc_log_set_format(rc_log_format f)
{
	log_format = f;
}

static void ctx_set(char *dst, size_t n, const char *v)
{
	size_t len = v ? strlen(v) : 0;

	if (len >= n)
		len = n - 1;
	memcpy(dst, v ? v : "", len);
	dst[len] = '\0';
}

void rc_log_context(const char *env, const char *run)
{
	ctx_set(ctx_env, sizeof(ctx_env), env);
	ctx_set(ctx_run, sizeof(ctx_run), run);
}

/* b (the redacted message) as one JSON line, in place. */
static void to_json_line(rc_buf *b, rc_log_level level)
{
	json_t *o = json_object();
	char now[RC_TIME_SIZE];
	char *s;

	rc_time_now(now);
	json_object_set_new(o, "time", json_string(now));
	json_object_set_new(o, "level",
			    json_string((size_t)level < RC_ARRAY_SIZE(level_names)
						? level_names[level]
						: "log"));
	json_object_set_new(o, "message", json_stringn(b->ptr, b->len));
	if (ctx_env[0])
		json_object_set_new(o, "environment", json_string(ctx_env));
	if (ctx_run[0])
		json_object_set_new(o, "run", json_string(ctx_run));
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER |
				  JSON_ENSURE_ASCII);
	rc_buf_clear(b);
	rc_buf_puts(b, s ? s : "{}");
	free(s);
	json_decref(o);
}

int rc_log_level_parse(const char *s)
{
	static const char *names[] = {"error", "warn", "info", "debug",
				      "trace"};
	size_t i;

	for (i = 0; i < RC_ARRAY_SIZE(names); i++)
		if (!strcmp(s, names[i]))
			return (int)i;
	return -1;
}

/* Adds one form of a secret unless it is there already (locked). */
static void form_add_locked(const char *s, size_t len, bool whole_field)
{
	size_t i;

	for (i = 0; i < nforms; i++)
		if (forms[i].len == len && !memcmp(forms[i].s, s, len)) {
			forms[i].whole_field &= whole_field;
			return;
		}
	if (nforms == capforms) {
		capforms = capforms ? 2 * capforms : 16;
		forms = rc_realloc(forms, capforms * sizeof(*forms));
	}
	forms[nforms].s = rc_malloc(len + 1);
	memcpy(forms[nforms].s, s, len);
	forms[nforms].s[len] = '\0';
	forms[nforms].len = len;
	forms[nforms].whole_field = whole_field;
	nforms++;
}

void rc_secret_register(const char *value)
{
	static const unsigned b64_flags[] = {
		0, RC_BASE64_NOPAD, RC_BASE64_URL,
		RC_BASE64_URL | RC_BASE64_NOPAD};
	rc_buf enc = RC_BUF_INIT;
	size_t i, len;

	if (!value || !*value)
		return;
	len = strlen(value);
	pthread_mutex_lock(&secrets_lock);
	form_add_locked(value, len, len < RC_REDACT_MIN_LEN);
	/* what a value becomes in an Authorization header, a Secret's
	 * data, a URL: masked everywhere once long enough to be told from
	 * ordinary text */
	for (i = 0; i <= RC_ARRAY_SIZE(b64_flags); i++) {
		rc_buf_clear(&enc);
		if (i < RC_ARRAY_SIZE(b64_flags))
			rc_codec_base64_encode(&enc, value, len, b64_flags[i]);
		else
			rc_codec_percent_encode(&enc, value, len);
		if (enc.len >= RC_REDACT_MIN_LEN &&
		    (enc.len != len || memcmp(enc.ptr, value, len)))
			form_add_locked(enc.ptr, enc.len, false);
	}
	pthread_mutex_unlock(&secrets_lock);
	OPENSSL_cleanse(enc.ptr, enc.len);
	rc_buf_release(&enc);
}

void rc_secret_clear(void)
{
	size_t i;

	pthread_mutex_lock(&secrets_lock);
	for (i = 0; i < nforms; i++) {
		OPENSSL_cleanse(forms[i].s, forms[i].len);
		free(forms[i].s);
	}
	free(forms);
	forms = NULL;
	nforms = capforms = 0;
	pthread_mutex_unlock(&secrets_lock);
}

/* The characters that bound a whole field (log.h). */
static bool field_delim(char c)
{
	return c && strchr(" \t\n\r\v\f\"'`=:,;&/?@#|[]{}()<>", c);
}

/* Whether a short value's hit [at, end) in b stands as a whole field. In
 * a JSON text, an escape of a delimiter (\" \/ \n \t \r \f) bounds it too. */
static bool whole_field(const rc_buf *b, size_t at, size_t end, bool json)
{
	const char *p = b->ptr;
	bool before = !at || field_delim(p[at - 1]),
	     after = end == b->len || field_delim(p[end]);

	if (json && !before && at >= 2 && strchr("ntrf", p[at - 1])) {
		size_t bs = 0;

		while (bs < at - 1 && p[at - 2 - bs] == '\\')
			bs++;
		before = bs % 2 == 1;
	}
	if (json && !after && p[end] == '\\' && p[end + 1] &&
	    strchr("\"/ntrf", p[end + 1]))
		after = true;
	return before && after;
}

/* Whether position i of a JSON text is inside a string (computed once per
 * text, on the first short match that needs it). */
static const bool *json_in_string(const rc_buf *b, bool **cache)
{
	bool in = false;

	if (*cache)
		return *cache;
	*cache = rc_calloc(b->len + 1, sizeof(**cache));
	for (size_t i = 0; i < b->len; i++) {
		if (b->ptr[i] == '"') {
			size_t bs = 0;

			while (bs < i && b->ptr[i - 1 - bs] == '\\')
				bs++;
			if (bs % 2 == 0) {
				in = !in;
				continue; /* a quote is outside */
			}
		}
		(*cache)[i] = in;
	}
	return *cache;
}

/* Whether a value reads as one JSON number or literal by itself. */
static bool json_scalar_like(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("+-.", s[i]))
			return false;
	return true;
}

typedef struct {
	size_t start, end;
} span;

static int span_cmp(const void *a, const void *b)
{
	const span *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* The first occurrence of f at or after from in b, or SIZE_MAX. b is a C
 * string: text after a NUL byte is not searched (as printf would not
 * print it). */
static size_t find_from(const rc_buf *b, size_t from, const secret_form *f)
{
	const char *p = strstr(b->ptr + from, f->s);

	return p ? (size_t)(p - b->ptr) : SIZE_MAX;
}

static void redact(rc_buf *b, bool json)
{
	static const char mask[] = "(sensitive)";
	span *spans = NULL;
	size_t nspans = 0, capspans = 0, i, at, done = 0;
	bool *in_string = NULL;
	rc_buf out;

	pthread_mutex_lock(&secrets_lock);
	for (i = 0; i < nforms; i++) {
		const secret_form *f = &forms[i];

		for (at = 0; f->len <= b->len &&
			     (at = find_from(b, at, f)) != SIZE_MAX;
		     at++) {
			size_t end = at + f->len;

			if (f->whole_field && !whole_field(b, at, end, json))
				continue;
			if (f->whole_field && json &&
			    !json_in_string(b, &in_string)[at] &&
			    json_scalar_like(f->s, f->len))
				continue;
			if (nspans == capspans) {
				capspans = capspans ? 2 * capspans : 8;
				spans = rc_realloc(spans,
						   capspans * sizeof(*spans));
			}
			spans[nspans++] = (span){at, end};
		}
	}
	pthread_mutex_unlock(&secrets_lock);
	free(in_string);
	if (!nspans)
		return;
	/* overlapping and adjacent hits become one mask: no part of either
	 * value is left between two masks */
	qsort(spans, nspans, sizeof(*spans), span_cmp);
	out = (rc_buf)RC_BUF_INIT_MAX(b->max + nspans * sizeof(mask));
	for (i = 0; i < nspans; i++) {
		size_t start = spans[i].start, end = spans[i].end;

		while (i + 1 < nspans && spans[i + 1].start <= end)
			if (spans[++i].end > end)
				end = spans[i].end;
		rc_buf_put(&out, b->ptr + done, start - done);
		rc_buf_puts(&out, mask);
		done = end;
	}
	rc_buf_put(&out, b->ptr + done, b->len - done);
	OPENSSL_cleanse(b->ptr, b->len);
	rc_buf_release(b);
	*b = out;
	free(spans);
}

void rc_log_write(rc_log_level level, const char *file, int line,
		  const char *fmt, ...)
{
	va_list ap;
	rc_buf b = RC_BUF_INIT_MAX(1 << 20);
	FILE *out = log_stream ? log_stream : stderr;

	if (log_format == RC_LOG_TEXT &&
	    (size_t)level < RC_ARRAY_SIZE(level_names))
		rc_buf_printf(&b, "%s: ", level_names[level]);
	if (log_format == RC_LOG_TEXT && ctx_env[0])
		rc_buf_printf(&b, "[%s%s%s] ", ctx_env, ctx_run[0] ? " " : "",
			      ctx_run);
	va_start(ap, fmt);
	rc_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (rc_log_threshold >= RC_LOG_DEBUG)
		rc_buf_printf(&b, " (%s:%d)", file, line);
	rc_redact(&b);
	if (log_format == RC_LOG_JSON)
		to_json_line(&b, level);
	rc_buf_putc(&b, '\n');
	fwrite(b.ptr, 1, b.len, out);
	fflush(out);
	rc_buf_release(&b);
}

void rc_redact(rc_buf *b)
{
	redact(b, false);
}

void rc_redact_json(rc_buf *b)
{
	redact(b, true);
}
