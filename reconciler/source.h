/*
 * The source: where the configuration comes from, pinned to one commit.
 *
 * SOURCE is a directory (a plain one, or inside a git working tree) or a
 * git URL: file://, git://, http(s)://, ssh:// or scp-style user@host:path.
 * URLs are cloned (bare) into a cache directory the first time and fetched
 * incrementally afterwards; the tree of the wanted commit is then written
 * out under the cache (trees/<commit>/) and loaded from there.
 *
 * The cache: repos/<sha256 of the URL without credentials>/ (bare clone,
 * all branches as refs/remotes/origin/<b>, all tags, pruned at each
 * fetch), repos/<hash>.lock (flock()ed around clone and fetch, so that
 * two reconcile processes can open the same URL at once), and
 * trees/<commit>/. Directories are created 0700. A clone or a tree only
 * appears under its final name once complete (written to a temporary
 * directory, then renamed), and a tree that is there is reused as it is.
 *
 * Refs: a branch (for a URL the remote-tracking refs/remotes/origin/<b>,
 * then refs/heads/<b>; for a directory refs/heads/<b>, then
 * refs/remotes/origin/<b>), then a tag, then anything git rev-parse takes
 * (a full or abbreviated commit). An annotated tag is peeled to its
 * commit.
 *
 * Errors are RC_ECLASS_GIT with the redacted URL or the directory in the
 * message: RC_ENOTFOUND for an unknown ref ("unknown ref 'x' in '<url>'")
 * and for a URL not in the cache while offline, RC_EAUTH when the
 * credentials were missing or refused, RC_ERROR with libgit2's message
 * otherwise ("cannot fetch '<url>': <why>"). A missing directory is an
 * RC_ECLASS_OS error.
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

#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/error.h"

typedef struct {
	const char *cache_dir; /* NULL: $XDG_CACHE_HOME/reconcile or
				  ~/.cache/reconcile */
	bool offline;          /* do not fetch: use what the cache has */
} rc_source_opts;

typedef struct rc_source rc_source;

/*
 * Opens SOURCE at ref (a branch, tag or full/abbreviated commit; NULL: the
 * working tree for a directory, the remote's default branch for a URL).
 *
 * A directory with a ref: the ref is read from the directory's repository
 * and its tree written out under the cache; the work tree and the index
 * are not touched. If the directory is a subdirectory of the work tree,
 * rc_source_dir() is the same subdirectory inside the written tree. A
 * bare repository given as a directory is read at ref or HEAD the same
 * way. opts may be NULL.
 */
int rc_source_open(rc_source **out, const char *spec, const char *ref,
		   const rc_source_opts *opts);
void rc_source_free(rc_source *s);

/* The directory to load the configuration from (borrowed). */
const char *rc_source_dir(const rc_source *s);
/* The commit (40 hex), or NULL for a plain directory outside git. */
const char *rc_source_commit(const rc_source *s);
/* For a directory in a git working tree opened without a ref: changes to
 * tracked files (staged or not) or untracked files that are not ignored,
 * under that directory. */
bool rc_source_dirty(const rc_source *s);
/* The URL without credentials, or NULL for a directory (borrowed). */
const char *rc_source_url(const rc_source *s);
/* For a directory in a git work tree opened without a ref: the branch
 * checked out there, or NULL (detached HEAD, a ref given, a URL). */
const char *rc_source_work_branch(const rc_source *s);

/*
 * The tree of another ref of the same source (an environment's
 * policy.branch): *dir_out and *commit_out are new strings. For a
 * directory source the ref is read from its git repository and written
 * out under the cache as for URLs; a URL is not fetched again (the open
 * did). ref NULL: the default branch (URL) or HEAD (directory). A plain
 * directory outside git has no refs: RC_ENOTFOUND.
 */
int rc_source_tree(char **dir_out, char **commit_out, rc_source *s,
		   const char *ref);

/* The branches of the source's repository with their tips (for
 * generators over `self`), sorted by name: for a URL, the remote's
 * branches as of the open's fetch; for a directory, its local branches
 * and the origin/<b> remote-tracking ones that no local branch of the
 * same name shadows (named <b>). *out is new (rc_source_branches_free). */
typedef struct {
	char *name;
	char sha[41];
} rc_source_branch;
int rc_source_branches(rc_source_branch **out, size_t *n, rc_source *s);
void rc_source_branches_free(rc_source_branch *b, size_t n);

/* The signature of a commit (40 hex) of the source's repository, for
 * policy.verify: the gpgsig header's value into *sig, the commit object
 * without it (what was signed) into *data, the committer's time (Unix
 * seconds) into *when. RC_ENOTFOUND, with no error set, when the commit
 * is unsigned; RC_ENOTFOUND with one for a plain directory or an unknown
 * commit. */
int rc_source_commit_signature(rc_source *s, const char *commit, rc_buf *sig,
			       rc_buf *data, long long *when);

/* url with any "user:password@" removed, and for http(s) a lone "user@"
 * too (it is often a token); ssh://user@ and scp-style user@host:path keep
 * the user, which is not a secret (new string). */
char *rc_url_redact(const char *url);

#endif
