/*
 * Loading a configuration repository: reconcile.yaml and the environment
 * files it names -> overlays merged -> generators expanded -> substitution
 * -> the typed model (schema/model.h).
 *
 * Every problem found is added to the diagnostics; loading goes on after
 * an error so that the user sees all of them at once.
 */
#ifndef RC_LOAD_H
#define RC_LOAD_H

#include "schema/diag.h"
#include "schema/model.h"

/* A branch and its tip (for_each.branches). */
typedef struct {
	char *name;
	char sha[41];
} rc_branch;

typedef struct {
	/* Do not contact remote git repositories: generators over them are
	 * checked with a sample item instead (reconcile validate). */
	bool offline;
	/* When set, the environments the caller wants (names or entry
	 * keys): generators are only expanded when one of these may be
	 * theirs, so that showing a static environment lists no branches. */
	const char *const *only;
	size_t nonly;
	/* The branches of `self`, when the caller knows the repository
	 * better than the directory does (a source opened from a URL or at
	 * a ref is loaded from a tree outside any repository): *out is an
	 * array of n branches, each name and the array malloc()ed. NULL:
	 * the repository that holds dir is listed. */
	int (*self_branches)(void *ctx, rc_branch **out, size_t *n);
	void *self_ctx;
} rc_load_opts;

/*
 * Loads the configuration repository at dir. *out is a new config (free
 * with rc_config_free), set even when there were errors (it then holds
 * what could be typed). Returns 0 when diags holds no error, -1 otherwise.
 */
int rc_config_load(rc_config **out, const char *dir, const rc_load_opts *opts,
		   rc_diags *diags);

#endif
