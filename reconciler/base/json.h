/*
 * JSON helpers every layer shares (jansson values; nothing here takes a
 * reference it does not say it takes).
 */
#ifndef RC_JSON_H
#define RC_JSON_H

#include <jansson.h>

#include "reconciler/base/common.h"

/* Equality of two JSON values with numbers compared by value (1 == 1.0). */
bool rc_json_equal(const json_t *a, const json_t *b);
/* The canonical JSON (sorted keys, compact) of a value (new string). */
char *rc_json_canonical(const json_t *v);
/* "sha256:<hex>" of the canonical JSON (new string). */
char *rc_json_fingerprint(const json_t *v);
/* Whether a JSON pointer matches a pattern ("*" = any one segment, a
 * pattern also matches everything below it). */
bool rc_pointer_match(const char *pattern, const char *pointer);

#endif
