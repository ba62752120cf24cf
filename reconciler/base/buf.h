/*
 * rc_buf: a growable byte buffer with a mandatory size cap (after git's
 * strbuf and curl's dynbuf).
 *
 * `ptr` is never NULL and always NUL-terminated, so it can be printed at
 * any time. Every buffer has a maximum size: an append that would pass it
 * fails with RC_ETOOBIG, sets `toobig`, and leaves the contents as they
 * were; later appends fail too until rc_buf_clear(). rc_buf_detach() hands
 * the string over to the caller (free() it) and resets the buffer.
 */
#ifndef RC_BUF_H
#define RC_BUF_H

#include "reconciler/base/common.h"

typedef struct {
	char *ptr;
	size_t len;
	size_t cap; /* allocated bytes; 0 while ptr is the shared empty string */
	size_t max; /* the cap on len */
	bool toobig;
} rc_buf;

extern char rc_buf__empty[];

#define RC_BUF_DEFAULT_MAX ((size_t)64 << 20)
#define RC_BUF_INIT_MAX(m) {rc_buf__empty, 0, 0, (m), false}
#define RC_BUF_INIT RC_BUF_INIT_MAX(RC_BUF_DEFAULT_MAX)

void rc_buf_init(rc_buf *b, size_t max);
/* Ensures room for `extra` more bytes; 0 or RC_ETOOBIG. */
int rc_buf_grow(rc_buf *b, size_t extra);
int rc_buf_put(rc_buf *b, const void *data, size_t n);
int rc_buf_puts(rc_buf *b, const char *s);
int rc_buf_putc(rc_buf *b, char c);
/* Appends c n times. */
int rc_buf_putn(rc_buf *b, char c, size_t n);
int rc_buf_printf(rc_buf *b, const char *fmt, ...) RC_PRINTF(2, 3);
int rc_buf_vprintf(rc_buf *b, const char *fmt, va_list ap);
void rc_buf_truncate(rc_buf *b, size_t len);
/* Empties the buffer, keeps the allocation, clears toobig. */
void rc_buf_clear(rc_buf *b);
/* Frees the allocation; the buffer is empty and usable again. */
void rc_buf_release(rc_buf *b);
/* Returns the contents (caller frees) and resets the buffer. */
char *rc_buf_detach(rc_buf *b);

#endif
