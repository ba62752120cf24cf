#include "reconciler/base/common.h"
#include "reconciler/base/error.h"
#include "reconciler/base/buf.h"

static _Thread_local rc_error last_error;
static _Thread_local bool has_error;

static int set_v(int code, rc_error_class klass, rc_loc loc, const char *fmt,
		 va_list ap)
{
	rc_buf b = RC_BUF_INIT_MAX(4096);

	rc_buf_vprintf(&b, fmt, ap);
	free(last_error.message);
	last_error.message = rc_buf_detach(&b);
	last_error.code = code;
	last_error.klass = klass;
	last_error.loc = loc;
	has_error = true;
	return code;
}

int rc_error_set(int code, rc_error_class klass, const char *fmt, ...)
{
	va_list ap;
	rc_loc none = {0};

	va_start(ap, fmt);
	set_v(code, klass, none, fmt, ap);
	va_end(ap);
	return code;
}

int rc_error_set_at(int code, rc_loc loc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_v(code, RC_ECLASS_CONFIG, loc, fmt, ap);
	va_end(ap);
	return code;
}

int rc_error_set_os(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;
	rc_loc none = {0};
	rc_buf b = RC_BUF_INIT_MAX(4096);

	va_start(ap, fmt);
	set_v(saved == ENOENT ? RC_ENOTFOUND : RC_ERROR, RC_ECLASS_OS, none,
	      fmt, ap);
	va_end(ap);
	rc_buf_printf(&b, "%s: %s", last_error.message, strerror(saved));
	free(last_error.message);
	last_error.message = rc_buf_detach(&b);
	errno = saved;
	return last_error.code;
}

void rc_error_prefix(const char *fmt, ...)
{
	va_list ap;
	rc_buf b = RC_BUF_INIT_MAX(8192);

	if (!has_error)
		return;
	va_start(ap, fmt);
	rc_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	rc_buf_printf(&b, ": %s", last_error.message);
	free(last_error.message);
	last_error.message = rc_buf_detach(&b);
}

const rc_error *rc_error_last(void)
{
	return has_error ? &last_error : NULL;
}

void rc_error_clear(void)
{
	free(last_error.message);
	memset(&last_error, 0, sizeof(last_error));
	has_error = false;
}

const char *rc_error_class_name(rc_error_class klass)
{
	static const char *names[] = {"none", "os",   "nomemory", "config",
				      "yaml", "json", "git",      "http",
				      "platform", "state", "internal"};
	if ((size_t)klass >= RC_ARRAY_SIZE(names))
		return "unknown";
	return names[klass];
}
