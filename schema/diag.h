/*
 * Diagnostics about the user's configuration: collected (never only the
 * first), de-duplicated, sorted, and printed as
 *
 *   path:line:col: error: message
 *      12 |     replica: 2
 *         |     ^~~~~~~
 *
 * A diagnostic marked sensitive never shows the value part of its source
 * line: it sits where a secret might be written.
 */
#ifndef RC_DIAG_H
#define RC_DIAG_H

#include "reconciler/base/common.h"
#include "reconciler/base/error.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/strmap.h"

typedef enum { RC_DIAG_ERROR, RC_DIAG_WARNING, RC_DIAG_NOTE } rc_diag_severity;

typedef struct {
	rc_diag_severity severity;
	rc_loc loc;
	int span; /* columns to underline, >= 1 */
	bool sensitive;
	char *message;
} rc_diag;

/* A file whose lines can be shown under a diagnostic. */
typedef struct {
	char *name; /* the display path, also used as rc_loc.file */
	char *data;
	size_t len;
} rc_diag_file;

typedef struct {
	rc_diag *items;
	size_t n, cap;
	size_t nerrors, nwarnings;
	size_t limit; /* past this many, further diagnostics are dropped */
	size_t dropped;
	rc_diag_file **sources;
	size_t nsources, capsources;
	rc_strmap source_index; /* name -> rc_diag_file */
} rc_diags;

void rc_diags_init(rc_diags *d);
void rc_diags_release(rc_diags *d);
void rc_diags_add(rc_diags *d, rc_diag_severity sev, rc_loc loc, int span,
		  bool sensitive, const char *fmt, ...) RC_PRINTF(6, 7);
#define rc_diag_error(d, loc, span, ...) \
	rc_diags_add((d), RC_DIAG_ERROR, (loc), (span), false, __VA_ARGS__)
#define rc_diag_warning(d, loc, span, ...) \
	rc_diags_add((d), RC_DIAG_WARNING, (loc), (span), false, __VA_ARGS__)
/* Registers a file's text (takes ownership of data); returns the interned
 * display name to use in rc_loc.file. */
const char *rc_diags_add_source(rc_diags *d, const char *name, char *data,
				size_t len);
/* The registered text of a file, or NULL. */
const rc_diag_file *rc_diags_source(const rc_diags *d, const char *name);
/* Interns a name without text (a file that could not be read). */
const char *rc_diags_intern(rc_diags *d, const char *name);
/* Sorts by file, line and column, keeping insertion order for ties. */
void rc_diags_sort(rc_diags *d);
void rc_diags_format(const rc_diags *d, rc_buf *out, bool color);
void rc_diags_print(const rc_diags *d, FILE *f, bool color);

/* Levenshtein distance, capped: returns cap+1 when larger. */
size_t rc_edit_distance(const char *a, const char *b, size_t cap);
/* The candidate closest to word, or NULL when none is close enough. */
const char *rc_did_you_mean(const char *word, const char *const *candidates,
			    size_t n);

#endif
