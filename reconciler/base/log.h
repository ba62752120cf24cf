/*
 * Logging. RC_LOG checks the level before its arguments are evaluated.
 *
 * Every line passes through the secret redactor before it is written:
 * values registered with rc_secret_register() are replaced by
 * "(sensitive)", wherever they appear in the formatted line.
 */
#ifndef RC_LOG_H
#define RC_LOG_H

#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"

typedef enum {
	RC_LOG_ERROR = 0,
	RC_LOG_WARN,
	RC_LOG_INFO,
	RC_LOG_DEBUG,
	RC_LOG_TRACE
} rc_log_level;

extern rc_log_level rc_log_threshold;

#define RC_LOG(level, ...)                                                   \
	do {                                                                 \
		if ((level) <= rc_log_threshold)                             \
			rc_log_write((level), __FILE__, __LINE__,            \
				     __VA_ARGS__);                           \
	} while (0)
#define RC_ERR(...) RC_LOG(RC_LOG_ERROR, __VA_ARGS__)
#define RC_WARN(...) RC_LOG(RC_LOG_WARN, __VA_ARGS__)
#define RC_INFO(...) RC_LOG(RC_LOG_INFO, __VA_ARGS__)
#define RC_DEBUG(...) RC_LOG(RC_LOG_DEBUG, __VA_ARGS__)

void rc_log_write(rc_log_level level, const char *file, int line,
		  const char *fmt, ...) RC_PRINTF(4, 5);
/* Where log lines go (default stderr); NULL restores stderr. */
void rc_log_set_stream(FILE *f);
/* How lines are written: "warning: message" (text, the default), or one
 * JSON object per line {"time", "level", "message", "environment",
 * "run"} (the last two when the thread's context has them). */
typedef enum { RC_LOG_TEXT, RC_LOG_JSON } rc_log_format;
void rc_log_set_format(rc_log_format f);
/* The calling thread's context, added to its lines: the environment and
 * the run it works on (copied; NULL forgets one). */
void rc_log_context(const char *env, const char *run);
/* Parses "error", "warn", "info", "debug", "trace"; -1 if unknown. */
int rc_log_level_parse(const char *s);

/* Registers a secret value (copied) so that it never reaches a log line,
 * an error message or any output passed through rc_redact(). */
void rc_secret_register(const char *value);
/* Replaces every registered secret value in b by "(sensitive)". */
void rc_redact(rc_buf *b);
/* Forgets every registered secret (tests). */
void rc_secret_clear(void);

#endif
