/*
 * Logging. RC_LOG checks the level before its arguments are evaluated.
 *
 * Every line passes through the secret redactor before it is written:
 * values registered with rc_secret_register() are replaced by
 * "(sensitive)" in the formatted line (in the JSON format, in the message
 * before it is encoded), by the rules below.
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

/*
 * The redactor.
 *
 * A registered value of RC_REDACT_MIN_LEN bytes or more is masked
 * wherever it appears, inside words too. A shorter one (a PIN, a one-
 * character password) would garble every line if it were: it is masked
 * only where it stands as a whole field, that is where each side of it is
 * the start or the end of the text or one of these characters (outside
 * the value):
 *
 *     whitespace  " ' `  = : , ; & / ? @ # |  [ ] { } ( ) < >
 *
 * so "x" is masked in "x", "token=x&a=1", "user:x@host", '"x"' and
 * "(x)", and left in "xylophone", "x-ray", "a_x" and "1.x". Letters,
 * digits and - _ . + % * ! ~ \ $ bind a value to its neighbours.
 *
 * With a value, its encodings are registered as well, when they differ
 * from it and are RC_REDACT_MIN_LEN bytes or more: base64 and base64url,
 * each with and without padding (a Basic or Bearer credential, a
 * Kubernetes Secret's data), and percent-encoding (RFC 3986, uppercase
 * hex: a password in a URL). They are masked everywhere.
 *
 * Hits of several values that overlap or touch become one mask, so no
 * part of either is left between two masks.
 */
#define RC_REDACT_MIN_LEN 8

/* Registers a secret value (copied) and its encoded forms so that they
 * never reach a log line, an error message or any output passed through
 * rc_redact(). */
void rc_secret_register(const char *value);
/* Replaces every registered value (and encoded form) in the text b by
 * "(sensitive)", by the rules above. */
void rc_redact(rc_buf *b);
/* The same for a JSON text (an API answer, a journal record): a short
 * value is also masked as a whole field inside a string ("x", "a x b"),
 * but not where it would be a whole number or literal outside strings
 * (1 in {"seq":1}); a number equal to a secret is the writer's to mask
 * before encoding (the journal does). A short value that spans JSON
 * syntax ("1,2" in [1,2]) is masked, which may leave text that is not
 * JSON: the caller checks when it matters. */
void rc_redact_json(rc_buf *b);
/* Forgets every registered secret (tests). */
void rc_secret_clear(void);

#endif
