/*
 * Included first by every source file of reconcile: the system headers the
 * project uses, then the list of banned calls.
 */
#ifndef RC_COMMON_H
#define RC_COMMON_H

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define RC_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define RC_UNUSED(x) ((void)(x))

#if defined(__GNUC__)
#define RC_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define RC_PRINTF(f, a)
#endif

/* Allocation that never returns NULL: out of memory aborts the process. */
void *rc_malloc(size_t n);
void *rc_calloc(size_t n, size_t size);
void *rc_realloc(void *p, size_t n);
char *rc_strdup(const char *s);
char *rc_strndup(const char *s, size_t n);
/* Grows *items (of *cap elements of size elem) to hold at least need. */
void rc_grow(void **items, size_t *cap, size_t need, size_t elem);
#define RC_GROW(arr, cap, need) \
	rc_grow((void **)&(arr), &(cap), (need), sizeof(*(arr)))

#include "reconciler/base/banned.h"

#endif
