#include "reconciler/base/common.h"
#include "reconciler/base/log.h"

#include <pthread.h>

rc_log_level rc_log_threshold = RC_LOG_WARN;
static FILE *log_stream;

static pthread_mutex_t secrets_lock = PTHREAD_MUTEX_INITIALIZER;
static char **secrets;
static size_t nsecrets, capsecrets;

static const char *level_names[] = {"error", "warning", "info", "debug",
				    "trace"};

void rc_log_set_stream(FILE *f)
{
	log_stream = f;
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
	size_t i;

	if (!value || !*value)
		return;
	pthread_mutex_lock(&secrets_lock);
	for (i = 0; i < nsecrets; i++)
		if (!strcmp(secrets[i], value))
			goto out;
	RC_GROW(secrets, capsecrets, nsecrets + 1);
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
	secrets = NULL;
	nsecrets = capsecrets = 0;
	pthread_mutex_unlock(&secrets_lock);
}

void rc_redact(rc_buf *b)
{
	static const char mask[] = "(sensitive)";
	size_t i;

	pthread_mutex_lock(&secrets_lock);
	for (i = 0; i < nsecrets; i++) {
		size_t slen = strlen(secrets[i]);
		char *hit;
		rc_buf out = RC_BUF_INIT_MAX(b->max + 64 * sizeof(mask));
		const char *p = b->ptr;

		if (!strstr(b->ptr, secrets[i]))
			continue;
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

	if ((size_t)level < RC_ARRAY_SIZE(level_names))
		rc_buf_printf(&b, "%s: ", level_names[level]);
	va_start(ap, fmt);
	rc_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (rc_log_threshold >= RC_LOG_DEBUG)
		rc_buf_printf(&b, " (%s:%d)", file, line);
	rc_redact(&b);
	rc_buf_putc(&b, '\n');
	fwrite(b.ptr, 1, b.len, out);
	fflush(out);
	rc_buf_release(&b);
}
