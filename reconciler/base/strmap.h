/*
 * rc_strmap: a hash map from strings to pointers (open addressing, FNV-1a).
 * Keys are borrowed: they must outlive their entries. Values are not
 * owned either.
 */
#ifndef RC_STRMAP_H
#define RC_STRMAP_H

#include "reconciler/base/common.h"

typedef struct {
	const char **keys;
	void **vals;
	size_t n, cap; /* cap is 0 or a power of two */
} rc_strmap;

#define RC_STRMAP_INIT {NULL, NULL, 0, 0}

/* The value under key, or NULL. */
void *rc_strmap_get(const rc_strmap *m, const char *key);
/* Inserts or replaces. */
void rc_strmap_put(rc_strmap *m, const char *key, void *val);
void rc_strmap_release(rc_strmap *m);

#endif
