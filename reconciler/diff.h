/*
 * The one place that compares resources. Three-way, over managed fields:
 *
 *   D = desired (declared, normalised), L = last applied by reconcile (from
 *   the journal), A = actual (observed, normalised)
 *
 *   - a path in D whose value differs in A     -> change (or add) it;
 *   - a path in L that is no longer in D        -> remove it from A;
 *   - a path in A that is in neither D nor L    -> not ours: never drift.
 *
 * Ignore rules (JSON pointers, "*" matching one segment) remove paths from
 * all three first. Maps are compared key by key; lists and scalars are
 * atomic; numbers compare by value (1 == 1.0).
 */
#ifndef RC_DIFF_H
#define RC_DIFF_H

#include <jansson.h>

#include "reconciler/base/buf.h"
#include "reconciler/base/common.h"
#include "reconciler/base/json.h"
#include "drivers/resource.h"

/*
 * Appends to out the changes that take actual to desired. last may be
 * NULL (never applied). ignore: n JSON-pointer patterns. None of the
 * inputs are modified.
 */
void rc_diff(rc_changes *out, const json_t *desired, const json_t *last,
	     const json_t *actual, const char *const *ignore, size_t nignore);
/* Appends a JSON pointer as a reader writes it: "/env/LOG_LEVEL" ->
 * "env.LOG_LEVEL" ("(all)" for the empty pointer). */
void rc_pointer_dotted(rc_buf *out, const char *pointer);
/* Applies changes to a copy of actual (new ref): what actual becomes. */
json_t *rc_changes_apply(const json_t *actual, const rc_changes *c);

#endif
