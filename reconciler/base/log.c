#include "reconciler/base/common.h"
#include "reconciler/base/log.h"

#include <jansson.h>
#include <pthread.h>

#include "reconciler/base/rctime.h"

rc_log_level rc_log_threshold = RC_LOG_WARN;
static FILE *log_stream;
static rc_log_format log_format = RC_LOG_TEXT;
static _Thread_local char ctx_env[128], ctx_run[64];

static pthread_mutex_t secrets_lock = PTHREAD_MUTEX_INITIALIZER;
static char **secrets;
static size_t *secret_lens; /* strlen of each: a run registers hundreds of
			       tokens, and the journal redacts every string */
static size_t nsecrets, capsecrets;

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

void rc_secret_register(const char *value)
{
	size_t i, len;

	if (!value || !*value)
		return;
	len = strlen(value);
	pthread_mutex_lock(&secrets_lock);
	for (i = 0; i < nsecrets; i++)
		if (secret_lens[i] == len && !memcmp(secrets[i], value, len))
			goto out;
	if (nsecrets == capsecrets) {
		capsecrets = capsecrets ? 2 * capsecrets : 16;
		secrets = rc_realloc(secrets, capsecrets * sizeof(*secrets));
		secret_lens = rc_realloc(secret_lens,
					 capsecrets * sizeof(*secret_lens));
	}
	secret_lens[nsecrets] = len;
	secrets[nsecrets++] = rc_strdup(value);
out:
	pthread_mutex_unlock(&secrets_lock);
}

void rc_secret_clear(void)
{
	size_t i;

	pthread_mutex_lock(&secrets_lock);
	for (i = 0; i < nsecrets; i++)
		free(secrets[i]);
	free(secrets);
	free(secret_lens);
	secrets = NULL;
	secret_lens = NULL;
	nsecrets = capsecrets = 0;
	pthread_mutex_unlock(&secrets_lock);
}

void rc_redact(rc_buf *b)
{
	static const char mask[] = "(sensitive)";
	size_t i;

	pthread_mutex_lock(&secrets_lock);
	for (i = 0; i < nsecrets; i++) {
		size_t slen = secret_lens[i];
		char *hit;
		rc_buf out;
		const char *p = b->ptr;

		/* most texts are shorter than most secrets (tokens) */
		if (slen > b->len || !strstr(b->ptr, secrets[i]))
			continue;
		out = (rc_buf)RC_BUF_INIT_MAX(b->max + 64 * sizeof(mask));
		while ((hit = strstr(p, secrets[i])) != NULL) {
			rc_buf_put(&out, p, (size_t)(hit - p));
			rc_buf_puts(&out, mask);
			p = hit + slen;
		}
		rc_buf_puts(&out, p);
		rc_buf_release(b);
		*b = out;
	}
	pthread_mutex_unlock(&secrets_lock);
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
