/*
 * The source: where the configuration comes from, pinned to one commit.
 *
 * SOURCE is a directory (a plain one, or inside a git working tree) or a
 * git URL: file://, git://, http(s)://, ssh:// or scp-style user@host:path.
 * URLs are cloned (bare) into a cache directory the first time and fetched
 * incrementally afterwards; the tree of the wanted commit is then written
 * out under the cache (trees/<commit>/) and loaded from there.
 *
 * Credentials: for ssh, the ssh-agent, or the key file named by
 * RECONCILE_SSH_KEY (with RECONCILE_SSH_KEY_PASSPHRASE); for https, the
 * token in RECONCILE_GIT_TOKEN (sent as the password, user
 * RECONCILE_GIT_USER or "x-access-token"). They are never printed: URLs
 * in messages have any user:password removed, and the token is registered
 * with the log redactor.
 */
#ifndef RC_SOURCE_H
#define RC_SOURCE_H

#include "reconciler/common.h"
#include "reconciler/error.h"

typedef struct {
	const char *cache_dir; /* NULL: $XDG_CACHE_HOME/reconcile or
				  ~/.cache/reconcile */
	bool offline;          /* do not fetch: use what the cache has */
} rc_source_opts;

typedef struct rc_source rc_source;

/*
 * Opens SOURCE at ref (a branch, tag or full/abbreviated commit; NULL: the
 * working tree for a directory, the remote's default branch for a URL).
 */
int rc_source_open(rc_source **out, const char *spec, const char *ref,
		   const rc_source_opts *opts);
void rc_source_free(rc_source *s);

/* The directory to load the configuration from (borrowed). */
const char *rc_source_dir(const rc_source *s);
/* The commit (40 hex), or NULL for a plain directory outside git. */
const char *rc_source_commit(const rc_source *s);
/* For a directory in a git working tree: uncommitted changes present. */
bool rc_source_dirty(const rc_source *s);
/* The URL without credentials, or NULL for a directory (borrowed). */
const char *rc_source_url(const rc_source *s);

/*
 * The tree of another ref of the same source (an environment's
 * policy.branch): *dir_out and *commit_out are new strings. For a
 * directory source the ref is read from its git repository and written
 * out under the cache as for URLs.
 */
int rc_source_tree(char **dir_out, char **commit_out, rc_source *s,
		   const char *ref);

/* The branches of the source's repository with their tips (for
 * generators over `self`), sorted by name. */
typedef struct {
	char *name;
	char sha[41];
} rc_source_branch;
int rc_source_branches(rc_source_branch **out, size_t *n, rc_source *s);
void rc_source_branches_free(rc_source_branch *b, size_t n);

/* url with any "user:password@" removed (new string). */
char *rc_url_redact(const char *url);

#endif
