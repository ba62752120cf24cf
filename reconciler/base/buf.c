#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/error.h"

char rc_buf__empty[1];

void rc_buf_init(rc_buf *b, size_t max)
{
	b->ptr = rc_buf__empty;
	b->len = 0;
	b->cap = 0;
	b->max = max;
	b->toobig = false;
}

int rc_buf_grow(rc_buf *b, size_t extra)
{
	size_t need, ncap;

	if (b->toobig)
		return RC_ETOOBIG;
	if (extra > b->max || b->len > b->max - extra) {
		b->toobig = true;
		return rc_error_set(RC_ETOOBIG, RC_ECLASS_INTERNAL,
				    "buffer limit of %zu bytes exceeded",
				    b->max);
	}
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 64;
	while (ncap < need)
		ncap = ncap < SIZE_MAX / 2 ? ncap * 2 : need;
	if (b->cap == 0) {
		b->ptr = rc_malloc(ncap);
		b->ptr[0] = '\0';
	} else {
		b->ptr = rc_realloc(b->ptr, ncap);
	}
	b->cap = ncap;
	return 0;
}

int rc_buf_put(rc_buf *b, const void *data, size_t n)
{
	if (rc_buf_grow(b, n) < 0)
		return RC_ETOOBIG;
	if (n)
		memcpy(b->ptr + b->len, data, n);
	b->len += n;
	if (b->cap)
		b->ptr[b->len] = '\0';
	return 0;
}

int rc_buf_puts(rc_buf *b, const char *s)
{
	return rc_buf_put(b, s, strlen(s));
}

int rc_buf_putc(rc_buf *b, char c)
{
	return rc_buf_put(b, &c, 1);
}

int rc_buf_putn(rc_buf *b, char c, size_t n)
{
	if (rc_buf_grow(b, n) < 0)
		return RC_ETOOBIG;
	memset(b->ptr + b->len, c, n);
	b->len += n;
	if (b->cap)
		b->ptr[b->len] = '\0';
	return 0;
}

int rc_buf_vprintf(rc_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return rc_error_set(RC_ERROR, RC_ECLASS_INTERNAL,
				    "bad format string");
	if (rc_buf_grow(b, (size_t)n) < 0)
		return RC_ETOOBIG;
	if (n == 0)
		return 0;
	vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int rc_buf_printf(rc_buf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = rc_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return r;
}

void rc_buf_truncate(rc_buf *b, size_t len)
{
	if (len >= b->len)
		return;
	b->len = len;
	if (b->cap)
		b->ptr[len] = '\0';
}

void rc_buf_clear(rc_buf *b)
{
	rc_buf_truncate(b, 0);
	b->toobig = false;
}

void rc_buf_release(rc_buf *b)
{
	if (b->cap)
		free(b->ptr);
	rc_buf_init(b, b->max);
}

char *rc_buf_detach(rc_buf *b)
{
	char *s = b->cap ? b->ptr : rc_strdup("");

	rc_buf_init(b, b->max);
	return s;
}
