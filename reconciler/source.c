/*
 * The source: a directory or a git URL, pinned to one commit (source.h).
 *
 * The cache (<cache> is opts->cache_dir, $XDG_CACHE_HOME/reconcile or
 * ~/.cache/reconcile; directories are created 0700):
 *
 *   repos/<hash>/               bare clone of one URL; <hash> is the
 *                               SHA-256 (hex) of the URL without
 *                               credentials
 *   repos/<hash>.lock           flock()ed around clone and fetch
 *   repos/<hash>.tmp-XXXXXX     a first clone in progress
 *   trees/<commit>/             the files of one commit, written once
 *   trees/.tmp-<commit>-XXXXXX  a tree being written
 *
 * A directory named repos/<hash> or trees/<commit> is complete: it only
 * ever appears by rename() of a finished temporary directory, so a crash
 * leaves at worst a temporary one behind (removed by the next clone of the
 * same URL, or harmless).
 *
 * The URL as given (which may carry user:password@) is kept only to be
 * handed to libgit2; the bare clone's configuration and every message
 * carry the redacted URL.
 */
#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/codec.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "reconciler/source.h"
#include "schema/git.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/file.h>

#include <git2.h>

#define RC_PATH_MAX_BUF ((size_t)PATH_MAX * 4)

struct rc_source {
	char *dir;      /* what to load from */
	char *commit;   /* 40 hex, or NULL */
	bool dirty;
	char *work_branch; /* the work tree's checked-out branch, or NULL */
	char *url;      /* without credentials; NULL for a directory */
	char *raw_url;  /* as given: only ever handed to libgit2 */
	char *where;    /* the source in messages: url, or the directory */
	char *prefix;   /* directory in a work tree: its path inside it,
			   "" or ending in '/' */
	char *cache;    /* the cache root, once created */
	char *cache_opt;
	bool offline;
	git_repository *repo; /* bare clone, the directory's repository,
				 or NULL for a plain directory */
};

/* --- errors ------------------------------------------------------------ */

static const char *git_msg(void)
{
	const git_error *e = git_error_last();

	return e && e->message && *e->message ? e->message
					      : "unknown git error";
}

/* Replaces every occurrence of from (non-empty) in b by to. */
static void buf_replace_all(rc_buf *b, const char *from, const char *to)
{
	rc_buf out = RC_BUF_INIT_MAX(b->max);
	size_t flen = strlen(from);
	const char *p = b->ptr, *hit;

	if (!flen || !strstr(b->ptr, from))
		return;
	while ((hit = strstr(p, from)) != NULL) {
		rc_buf_put(&out, p, (size_t)(hit - p));
		rc_buf_puts(&out, to);
		p = hit + flen;
	}
	rc_buf_puts(&out, p);
	rc_buf_release(b);
	*b = out;
}

/*
 * Sets an RC_ECLASS_GIT error: the formatted text, followed by ": " and
 * libgit2's last message when with_git. Whatever libgit2 wrote, the URL
 * as given is replaced by the redacted one and registered secrets are
 * masked before the message is stored.
 */
static int RC_PRINTF(4, 5) source_error(const rc_source *s, int code,
					bool with_git, const char *fmt, ...)
{
	rc_buf b = RC_BUF_INIT_MAX(16384);
	va_list ap;

	va_start(ap, fmt);
	rc_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (with_git)
		rc_buf_printf(&b, ": %s", git_msg());
	if (s && s->raw_url && s->url && strcmp(s->raw_url, s->url))
		buf_replace_all(&b, s->raw_url, s->url);
	rc_redact(&b);
	rc_error_set(code, RC_ECLASS_GIT, "%s", b.ptr);
	rc_buf_release(&b);
	return code;
}

/* --- URLs -------------------------------------------------------------- */

static bool spec_is_url(const char *spec)
{
	const char *colon, *slash;

	if (strstr(spec, "://"))
		return true;
	/* scp-style [user@]host:path: a ':' before any '/' */
	colon = strchr(spec, ':');
	slash = strchr(spec, '/');
	return colon && colon != spec && (!slash || colon < slash);
}

/* The userinfo of a scheme:// URL: [*start, *at) with *at the '@'; false
 * when there is none. */
static bool url_userinfo(const char *url, const char **start,
			 const char **at)
{
	const char *sep = strstr(url, "://"), *auth, *p;
	size_t alen;

	if (!sep)
		return false;
	auth = sep + 3;
	alen = strcspn(auth, "/?#");
	*at = NULL;
	for (p = auth; p < auth + alen; p++)
		if (*p == '@')
			*at = p; /* the last one: a password may hold '@' */
	*start = auth;
	return *at != NULL;
}

/*
 * Any "user:password@" goes; for http(s) a lone "user@" goes too (it is
 * often a token). ssh:// keeps a lone user, and scp-style user@host:path
 * is left as it is: an ssh user name is not a secret.
 */
char *rc_url_redact(const char *url)
{
	const char *start, *at, *colon;
	rc_buf b = RC_BUF_INIT;
	bool http;

	if (!url_userinfo(url, &start, &at))
		return rc_strdup(url);
	http = !strncasecmp(url, "http://", 7) ||
	       !strncasecmp(url, "https://", 8);
	colon = memchr(start, ':', (size_t)(at - start));
	if (!colon && !http)
		return rc_strdup(url);
	rc_buf_put(&b, url, (size_t)(start - url));
	if (!http && colon > start) {
		rc_buf_put(&b, start, (size_t)(colon - start));
		rc_buf_putc(&b, '@');
	}
	rc_buf_puts(&b, at + 1);
	return rc_buf_detach(&b);
}

/* Registers the password of a URL (if any) with the log redactor. */
static void register_url_password(const char *url)
{
	const char *start, *at, *colon;
	char *pw;

	if (!url_userinfo(url, &start, &at))
		return;
	colon = memchr(start, ':', (size_t)(at - start));
	if (!colon || colon + 1 == at)
		return;
	pw = rc_strndup(colon + 1, (size_t)(at - colon - 1));
	rc_secret_register(pw);
	free(pw);
}

/* --- files and the cache ----------------------------------------------- */

static bool is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* mkdir -p with mode for every directory it creates. */
static int mkdir_p(const char *path, mode_t mode)
{
	char *p = rc_strdup(path), *s;
	int rc = 0;

	if (!*p) {
		free(p);
		return rc_error_set(RC_EINVALID, RC_ECLASS_OS,
				    "empty directory name");
	}
	for (s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		if (s[-1] != '/') {
			char c = *s;

			*s = '\0';
			if (mkdir(p, mode) < 0 && errno != EEXIST) {
				rc = rc_error_set_os("cannot create '%s'", p);
				break;
			}
			*s = c;
		}
		if (!*s)
			break;
	}
	free(p);
	if (!rc && !is_dir(path))
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_OS,
				  "'%s' is not a directory", path);
	return rc;
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	RC_UNUSED(st);
	RC_UNUSED(ftw);
	if (flag == FTW_DP)
		return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
	return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

/* rm -rf; best effort (used on temporary directories). */
static void rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The cache root (created 0700), kept in s->cache. */
static int cache_root(rc_source *s, const char **out)
{
	rc_buf b = RC_BUF_INIT_MAX(RC_PATH_MAX_BUF);
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	int rc;

	if (s->cache) {
		*out = s->cache;
		return 0;
	}
	if (s->cache_opt && *s->cache_opt)
		rc_buf_puts(&b, s->cache_opt);
	else if (xdg && *xdg == '/')
		rc_buf_printf(&b, "%s/reconcile", xdg);
	else if (home && *home)
		rc_buf_printf(&b, "%s/.cache/reconcile", home);
	else
		return rc_error_set(RC_ENOTFOUND, RC_ECLASS_OS,
				    "no cache directory: set XDG_CACHE_HOME "
				    "or HOME");
	if (b.toobig)
		rc = rc_error_set(RC_ETOOBIG, RC_ECLASS_OS,
				  "the cache directory's path is too long");
	else
		rc = mkdir_p(b.ptr, 0700);
	if (rc < 0) {
		rc_buf_release(&b);
		return rc;
	}
	s->cache = rc_buf_detach(&b);
	*out = s->cache;
	return 0;
}

/* Takes the exclusive lock of path (created if needed); returns the fd. */
static int lock_take(const rc_source *s, const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0)
		return rc_error_set_os("cannot open the lock '%s'", path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		RC_INFO("waiting for another reconcile fetching '%s'",
			s->url);
		while (flock(fd, LOCK_EX) < 0) {
			int rc;

			if (errno == EINTR)
				continue;
			rc = rc_error_set_os("cannot lock '%s'", path);
			close(fd);
			return rc;
		}
	}
	return fd;
}

/* Removes <repos>/<hash>.tmp-* left by a clone that did not finish (the
 * caller holds the lock of <hash>). */
static void remove_stale_clones(const char *repos, const char *hash)
{
	DIR *d = opendir(repos);
	struct dirent *e;
	rc_buf prefix = RC_BUF_INIT, p = RC_BUF_INIT;

	if (!d)
		return;
	rc_buf_printf(&prefix, "%s.tmp-", hash);
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, prefix.ptr, prefix.len))
			continue;
		rc_buf_clear(&p);
		rc_buf_printf(&p, "%s/%s", repos, e->d_name);
		rm_rf(p.ptr);
	}
	closedir(d);
	rc_buf_release(&prefix);
	rc_buf_release(&p);
}

/* --- fetching ---------------------------------------------------------- */

/* Points refs/remotes/origin/HEAD at the remote's default branch. */
static void set_origin_head(git_repository *repo, const char *head)
{
	rc_buf target = RC_BUF_INIT;
	git_reference *ref = NULL;

	rc_buf_printf(&target, "refs/remotes/origin/%s", head + 11);
	if (git_reference_symbolic_create(&ref, repo, "refs/remotes/origin/HEAD",
					  target.ptr, 1, "default branch") < 0)
		RC_WARN("cannot record the default branch of the cache: %s",
			git_msg());
	git_reference_free(ref);
	rc_buf_release(&target);
}

/*
 * Fetches every branch and tag of the source's URL into repo (the cache's
 * bare clone), pruning what the remote deleted.
 *
 * The remote is an in-memory one with explicit refspecs rather than the
 * clone's configured "origin": it carries the URL as given (credentials
 * included) without writing it anywhere, and it keeps away from
 * libgit2 1.5's configuration regex matching, which leaks on every
 * lookup of a named remote.
 */
static int fetch(rc_source *s, git_repository *repo)
{
	static char heads[] = "+refs/heads/*:refs/remotes/origin/*";
	static char tags[] = "+refs/tags/*:refs/tags/*";
	char *specs[] = {heads, tags};
	const git_strarray refspecs = {specs, RC_ARRAY_SIZE(specs)};
	git_remote *remote = NULL;
	git_remote_create_options ro;
	git_remote_callbacks cbs;
	git_fetch_options fo;
	git_proxy_options po;
	git_buf head = {0};
	rc_git_cred_state cs = {0};
	bool have_head = false;
	int err, rc = 0;

	/* the _init() calls: the INIT macros leave fields to the compiler */
	git_remote_create_options_init(&ro, GIT_REMOTE_CREATE_OPTIONS_VERSION);
	git_remote_init_callbacks(&cbs, GIT_REMOTE_CALLBACKS_VERSION);
	git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
	git_proxy_options_init(&po, GIT_PROXY_OPTIONS_VERSION);
	ro.repository = repo;
	ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF |
		   GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
	cbs.credentials = rc_git_credentials_cb;
	cbs.payload = &cs;
	po.type = GIT_PROXY_AUTO;
	if (git_remote_create_with_opts(&remote, s->raw_url, &ro) < 0) {
		rc = source_error(s, RC_EINVALID, true, "cannot fetch '%s'",
				  s->url);
		goto cleanup;
	}
	RC_DEBUG("fetching '%s'", s->url);
	err = git_remote_connect(remote, GIT_DIRECTION_FETCH, &cbs, &po, NULL);
	if (!err) {
		have_head = git_remote_default_branch(&head, remote) == 0 &&
			    !strncmp(head.ptr, "refs/heads/", 11);
		fo.callbacks = cbs;
		fo.proxy_opts = po;
		fo.prune = GIT_FETCH_PRUNE;
		fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
		fo.update_fetchhead = 0;
		err = git_remote_fetch(remote, &refspecs, &fo,
				       "reconcile: fetch");
	}
	if (err) {
		if (cs.gave_up)
			rc = source_error(s, RC_EAUTH, false,
					  "cannot fetch '%s': %s", s->url,
					  cs.gave_up);
		else
			rc = source_error(s, RC_ERROR, true,
					  "cannot fetch '%s'", s->url);
		goto cleanup;
	}
	if (have_head)
		set_origin_head(repo, head.ptr);
cleanup:
	git_buf_dispose(&head);
	git_remote_free(remote);
	return rc;
}

/*
 * A new bare repository at path. Its configuration names the redacted URL
 * as origin, so that git itself can be pointed at the cache; reconcile
 * does not read it back.
 */
static int init_clone(rc_source *s, git_repository **out, const char *path)
{
	git_repository_init_options io;
	git_config *cfg = NULL;
	int rc = 0;

	git_repository_init_options_init(&io,
					 GIT_REPOSITORY_INIT_OPTIONS_VERSION);
	io.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH;
	if (git_repository_init_ext(out, path, &io) < 0 ||
	    git_repository_config(&cfg, *out) < 0 ||
	    git_config_set_string(cfg, "remote.origin.url", s->url) < 0 ||
	    git_config_set_string(cfg, "remote.origin.fetch",
				  "+refs/heads/*:refs/remotes/origin/*") < 0 ||
	    git_config_set_string(cfg, "remote.origin.tagOpt", "--tags") < 0)
		rc = source_error(s, RC_ERROR, true,
				  "cannot create a clone of '%s' in '%s'",
				  s->url, path);
	git_config_free(cfg);
	return rc;
}

/*
 * Opens s->repo: the cache's bare clone of s->url, cloned the first time
 * and fetched afterwards (unless offline), under the URL's lock.
 */
static int open_cached_clone(rc_source *s)
{
	rc_buf repos = RC_BUF_INIT_MAX(RC_PATH_MAX_BUF);
	rc_buf path = RC_BUF_INIT_MAX(RC_PATH_MAX_BUF);
	rc_buf tmp = RC_BUF_INIT_MAX(RC_PATH_MAX_BUF);
	const char *root;
	char hash[RC_SHA256_HEX_LEN + 1];
	git_repository *repo = NULL;
	int rc, lock = -1;

	if ((rc = cache_root(s, &root)) < 0)
		return rc;
	rc_codec_sha256_hex(hash, s->url, strlen(s->url));
	rc_buf_printf(&repos, "%s/repos", root);
	if ((rc = mkdir_p(repos.ptr, 0700)) < 0)
		goto cleanup;
	rc_buf_printf(&path, "%s/%s.lock", repos.ptr, hash);
	if ((lock = rc = lock_take(s, path.ptr)) < 0)
		goto cleanup;
	rc_buf_clear(&path);
	rc_buf_printf(&path, "%s/%s", repos.ptr, hash);

	if (is_dir(path.ptr)) {
		if (git_repository_open_bare(&repo, path.ptr) < 0) {
			rc = source_error(s, RC_ERROR, true,
					  "cannot open the cached clone of "
					  "'%s' ('%s')",
					  s->url, path.ptr);
			goto cleanup;
		}
		if (!s->offline && (rc = fetch(s, repo)) < 0)
			goto cleanup;
	} else if (s->offline) {
		rc = source_error(s, RC_ENOTFOUND, false,
				  "'%s' is not in the cache '%s' and offline "
				  "mode does not fetch: run once without "
				  "offline",
				  s->url, root);
		goto cleanup;
	} else {
		remove_stale_clones(repos.ptr, hash);
		rc_buf_printf(&tmp, "%s/%s.tmp-XXXXXX", repos.ptr, hash);
		if (tmp.toobig || !mkdtemp(tmp.ptr)) {
			rc = rc_error_set_os("cannot create a directory in "
					     "'%s'",
					     repos.ptr);
			goto cleanup;
		}
		if ((rc = init_clone(s, &repo, tmp.ptr)) < 0 ||
		    (rc = fetch(s, repo)) < 0)
			goto cleanup;
		git_repository_free(repo);
		repo = NULL;
		if (rename(tmp.ptr, path.ptr) < 0) {
			rc = rc_error_set_os("cannot rename '%s' to '%s'",
					     tmp.ptr, path.ptr);
			goto cleanup;
		}
		rc_buf_clear(&tmp);
		if (git_repository_open_bare(&repo, path.ptr) < 0) {
			rc = source_error(s, RC_ERROR, true,
					  "cannot open the cached clone of "
					  "'%s' ('%s')",
					  s->url, path.ptr);
			goto cleanup;
		}
	}
	s->repo = repo;
	repo = NULL;
	rc = 0;
cleanup:
	git_repository_free(repo);
	if (tmp.len)
		rm_rf(tmp.ptr);
	if (lock >= 0)
		close(lock); /* releases the flock */
	rc_buf_release(&repos);
	rc_buf_release(&path);
	rc_buf_release(&tmp);
	return rc;
}

/* --- refs and trees ---------------------------------------------------- */

/* The commit a reference (by full name) points at, peeled; 0, or
 * GIT_ENOTFOUND when there is no such reference. */
static int ref_commit(git_oid *out, git_repository *repo, const char *name)
{
	git_reference *ref = NULL;
	git_object *obj = NULL;
	int err;

	if ((err = git_reference_lookup(&ref, repo, name)) < 0)
		return err == GIT_ENOTFOUND || err == GIT_EINVALIDSPEC
			       ? GIT_ENOTFOUND
			       : err;
	err = git_reference_peel(&obj, ref, GIT_OBJECT_COMMIT);
	if (!err)
		git_oid_cpy(out, git_object_id(obj));
	git_object_free(obj);
	git_reference_free(ref);
	return err;
}

/*
 * Resolves ref in s->repo: a branch (for a URL, the remote-tracking one
 * first; for a directory, the local one first), a tag, then anything
 * git_revparse_single() takes (full or abbreviated commit). NULL: the
 * remote's default branch for a URL, HEAD for a repository.
 */
static int resolve(rc_source *s, git_oid *out, const char *ref)
{
	static const char *const url_order[] = {
		"refs/remotes/origin/%s", "refs/tags/%s", "refs/heads/%s"};
	static const char *const dir_order[] = {
		"refs/heads/%s", "refs/remotes/origin/%s", "refs/tags/%s"};
	const char *const *order = s->url ? url_order : dir_order;
	git_object *obj = NULL, *peeled = NULL;
	rc_buf name = RC_BUF_INIT;
	size_t i;
	int err;

	if (!ref) {
		err = s->url ? ref_commit(out, s->repo,
					  "refs/remotes/origin/HEAD")
			     : git_reference_name_to_id(out, s->repo, "HEAD");
		if (err == GIT_ENOTFOUND || err == GIT_EUNBORNBRANCH)
			return source_error(s, RC_ENOTFOUND, false,
					    "'%s' has no default branch "
					    "(no commit yet?): give a ref",
					    s->where);
		if (err < 0)
			return source_error(s, RC_ERROR, true,
					    "cannot read the default branch "
					    "of '%s'",
					    s->where);
		return 0;
	}
	if (!*ref)
		return source_error(s, RC_EINVALID, false,
				    "empty ref for '%s'", s->where);
	for (i = 0; i < 3; i++) {
		rc_buf_clear(&name);
		rc_buf_printf(&name, order[i], ref);
		err = ref_commit(out, s->repo, name.ptr);
		if (err != GIT_ENOTFOUND)
			break;
	}
	rc_buf_release(&name);
	if (err == 0)
		return 0;
	if (err != GIT_ENOTFOUND)
		return source_error(s, RC_EINVALID, true,
				    "ref '%s' in '%s' is not a commit", ref,
				    s->where);
	err = git_revparse_single(&obj, s->repo, ref);
	if (err == GIT_EAMBIGUOUS)
		return source_error(s, RC_EINVALID, false,
				    "ref '%s' in '%s' is ambiguous: give more "
				    "digits",
				    ref, s->where);
	if (err < 0)
		return source_error(s, RC_ENOTFOUND, false,
				    "unknown ref '%s' in '%s'", ref, s->where);
	err = git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT);
	git_object_free(obj);
	if (err < 0)
		return source_error(s, RC_EINVALID, false,
				    "ref '%s' in '%s' is not a commit", ref,
				    s->where);
	git_oid_cpy(out, git_object_id(peeled));
	git_object_free(peeled);
	return 0;
}

/*
 * Writes the files of commit id out to <cache>/trees/<commit>/ unless it
 * is there already; *out is that directory (new string). The tree is
 * checked out into a temporary directory first and renamed into place,
 * so the final name never shows a partial tree. The repository's index
 * and work tree (if any) are not touched.
 */
static int write_tree(rc_source *s, char **out, const git_oid *id)
{
	git_checkout_options co;
	rc_buf trees = RC_BUF_INIT_MAX(RC_PATH_MAX_BUF);
	rc_buf final = RC_BUF_INIT_MAX(RC_PATH_MAX_BUF);
	rc_buf tmp = RC_BUF_INIT_MAX(RC_PATH_MAX_BUF);
	git_commit *commit = NULL;
	git_tree *tree = NULL;
	git_index *empty = NULL;
	char hex[GIT_OID_HEXSZ + 1];
	const char *root;
	int rc;

	*out = NULL;
	git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
	git_oid_tostr(hex, sizeof(hex), id);
	if ((rc = cache_root(s, &root)) < 0)
		return rc;
	rc_buf_printf(&trees, "%s/trees", root);
	rc_buf_printf(&final, "%s/%s", trees.ptr, hex);
	if (is_dir(final.ptr))
		goto done;
	if ((rc = mkdir_p(trees.ptr, 0700)) < 0)
		goto cleanup;
	rc_buf_printf(&tmp, "%s/.tmp-%s-XXXXXX", trees.ptr, hex);
	if (tmp.toobig || !mkdtemp(tmp.ptr)) {
		rc = rc_error_set_os("cannot create a directory in '%s'",
				     trees.ptr);
		rc_buf_clear(&tmp);
		goto cleanup;
	}
	/* an empty baseline: every file of the tree is new to the target */
	if (git_commit_lookup(&commit, s->repo, id) < 0 ||
	    git_commit_tree(&tree, commit) < 0 || git_index_new(&empty) < 0) {
		rc = source_error(s, RC_ERROR, true,
				  "cannot read commit %s of '%s'", hex,
				  s->where);
		goto cleanup;
	}
	co.checkout_strategy = GIT_CHECKOUT_FORCE |
			       GIT_CHECKOUT_RECREATE_MISSING |
			       GIT_CHECKOUT_DONT_UPDATE_INDEX |
			       GIT_CHECKOUT_DONT_WRITE_INDEX;
	co.target_directory = tmp.ptr;
	co.baseline_index = empty;
	if (git_checkout_tree(s->repo, (const git_object *)tree, &co) < 0) {
		rc = source_error(s, RC_ERROR, true,
				  "cannot write commit %s of '%s' to '%s'",
				  hex, s->where, tmp.ptr);
		goto cleanup;
	}
	if (rename(tmp.ptr, final.ptr) < 0) {
		if (errno != EEXIST && errno != ENOTEMPTY) {
			rc = rc_error_set_os("cannot rename '%s' to '%s'",
					     tmp.ptr, final.ptr);
			goto cleanup;
		}
		/* another process wrote the same commit first: use that one */
	} else {
		rc_buf_clear(&tmp);
	}
done:
	*out = rc_buf_detach(&final);
	rc = 0;
cleanup:
	if (tmp.len)
		rm_rf(tmp.ptr);
	git_index_free(empty);
	git_tree_free(tree);
	git_commit_free(commit);
	rc_buf_release(&trees);
	rc_buf_release(&final);
	rc_buf_release(&tmp);
	return rc;
}

/* The directory of commit id to load from (the source's prefix inside the
 * tree, for a directory source) and the commit (new strings). */
static int tree_at(rc_source *s, char **dir_out, char **commit_out,
		   const git_oid *id)
{
	char hex[GIT_OID_HEXSZ + 1];
	char *tree;
	int rc;

	if ((rc = write_tree(s, &tree, id)) < 0)
		return rc;
	git_oid_tostr(hex, sizeof(hex), id);
	if (s->prefix && *s->prefix) {
		rc_buf b = RC_BUF_INIT_MAX(RC_PATH_MAX_BUF);

		rc_buf_printf(&b, "%s/%.*s", tree, (int)strlen(s->prefix) - 1,
			      s->prefix);
		free(tree);
		if (!is_dir(b.ptr)) {
			rc = source_error(s, RC_ENOTFOUND, false,
					  "'%.*s' does not exist in commit "
					  "%s of '%s'",
					  (int)strlen(s->prefix) - 1,
					  s->prefix, hex, s->where);
			rc_buf_release(&b);
			return rc;
		}
		tree = rc_buf_detach(&b);
	}
	*dir_out = tree;
	*commit_out = rc_strdup(hex);
	return 0;
}

/* --- directories ------------------------------------------------------- */

/* Uncommitted changes to tracked files, or untracked files that are not
 * ignored, under s->prefix of the work tree. */
static int work_tree_dirty(rc_source *s, bool *dirty)
{
	git_status_options so;
	git_status_list *list = NULL;
	char *path = NULL;
	char *paths[1];
	size_t i, n;

	git_status_options_init(&so, GIT_STATUS_OPTIONS_VERSION);
	so.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
	so.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED |
		   GIT_STATUS_OPT_EXCLUDE_SUBMODULES |
		   GIT_STATUS_OPT_DISABLE_PATHSPEC_MATCH;
	if (*s->prefix) {
		path = rc_strndup(s->prefix, strlen(s->prefix) - 1);
		paths[0] = path;
		so.pathspec.strings = paths;
		so.pathspec.count = 1;
	}
	if (git_status_list_new(&list, s->repo, &so) < 0) {
		free(path);
		return source_error(s, RC_ERROR, true,
				    "cannot read the status of '%s'",
				    s->where);
	}
	*dirty = false;
	n = git_status_list_entrycount(list);
	for (i = 0; i < n && !*dirty; i++) {
		const git_status_entry *e = git_status_byindex(list, i);

		if (e->status != GIT_STATUS_CURRENT &&
		    !(e->status & GIT_STATUS_IGNORED))
			*dirty = true;
	}
	git_status_list_free(list);
	free(path);
	return 0;
}

/* s->prefix: where dir lies inside the work tree workdir. */
static int work_tree_prefix(rc_source *s, const char *dir,
			    const char *workdir)
{
	char *rd = realpath(dir, NULL), *rw = realpath(workdir, NULL);
	size_t wl;
	int rc = 0;

	if (!rd || !rw) {
		rc = rc_error_set_os("cannot resolve '%s'", rd ? workdir : dir);
		goto cleanup;
	}
	wl = strlen(rw);
	while (wl > 1 && rw[wl - 1] == '/')
		rw[--wl] = '\0';
	if (!strcmp(rd, rw)) {
		s->prefix = rc_strdup("");
	} else if (!strncmp(rd, rw, wl) && (rd[wl] == '/' || wl == 1)) {
		rc_buf b = RC_BUF_INIT_MAX(RC_PATH_MAX_BUF);

		rc_buf_printf(&b, "%s/", rd + (wl == 1 ? 1 : wl + 1));
		s->prefix = rc_buf_detach(&b);
	} else {
		/* inside .git, say: read it as the top of the tree */
		s->prefix = rc_strdup("");
	}
cleanup:
	free(rd);
	free(rw);
	return rc;
}

static int open_directory(rc_source *s, const char *spec, const char *ref)
{
	struct stat st;
	git_oid id;
	int err, rc;

	if (stat(spec, &st) < 0)
		return rc_error_set_os("cannot open '%s'", spec);
	if (!S_ISDIR(st.st_mode))
		return rc_error_set(RC_EINVALID, RC_ECLASS_OS,
				    "'%s' is not a directory", spec);
	s->where = rc_strdup(spec);
	err = git_repository_open_ext(&s->repo, spec, 0, NULL);
	if (err == GIT_ENOTFOUND) {
		s->repo = NULL;
		if (ref)
			return source_error(s, RC_ENOTFOUND, false,
					    "cannot read ref '%s': '%s' is "
					    "not in a git repository",
					    ref, spec);
		s->dir = rc_strdup(spec);
		return 0;
	}
	if (err < 0)
		return source_error(s, RC_ERROR, true,
				    "cannot open the git repository of '%s'",
				    spec);
	if (git_repository_is_bare(s->repo)) {
		/* no work tree: read its HEAD (or ref) like a URL's tree */
		s->prefix = rc_strdup("");
		if ((rc = resolve(s, &id, ref)) < 0)
			return rc;
		return tree_at(s, &s->dir, &s->commit, &id);
	}
	if ((rc = work_tree_prefix(s, spec, git_repository_workdir(s->repo))) <
	    0)
		return rc;
	if (ref) {
		if ((rc = resolve(s, &id, ref)) < 0)
			return rc;
		return tree_at(s, &s->dir, &s->commit, &id);
	}
	s->dir = rc_strdup(spec);
	{
		git_reference *head = NULL;

		if (git_repository_head(&head, s->repo) == 0 &&
		    git_reference_is_branch(head))
			s->work_branch =
				rc_strdup(git_reference_shorthand(head));
		git_reference_free(head);
		git_error_clear();
	}
	err = git_reference_name_to_id(&id, s->repo, "HEAD");
	if (err == 0) {
		char hex[GIT_OID_HEXSZ + 1];
		git_commit *c = NULL;

		if (git_commit_lookup(&c, s->repo, &id) < 0)
			return source_error(s, RC_ERROR, true,
					    "cannot read HEAD of '%s'", spec);
		git_commit_free(c);
		git_oid_tostr(hex, sizeof(hex), &id);
		s->commit = rc_strdup(hex);
	} else if (err != GIT_ENOTFOUND && err != GIT_EUNBORNBRANCH) {
		return source_error(s, RC_ERROR, true,
				    "cannot read HEAD of '%s'", spec);
	}
	return work_tree_dirty(s, &s->dirty);
}

/* --- the API ----------------------------------------------------------- */

static int open_url(rc_source *s, const char *spec, const char *ref)
{
	git_oid id;
	int rc;

	s->raw_url = rc_strdup(spec);
	s->url = rc_url_redact(spec);
	s->where = rc_strdup(s->url);
	register_url_password(spec);
	if ((rc = open_cached_clone(s)) < 0 || (rc = resolve(s, &id, ref)) < 0)
		return rc;
	return tree_at(s, &s->dir, &s->commit, &id);
}

int rc_source_open(rc_source **out, const char *spec, const char *ref,
		   const rc_source_opts *opts)
{
	rc_source *s;
	int rc;

	*out = NULL;
	if (!spec || !*spec)
		return rc_error_set(RC_EINVALID, RC_ECLASS_GIT,
				    "no source given");
	git_libgit2_init();
	s = rc_calloc(1, sizeof(*s));
	if (opts) {
		s->cache_opt = opts->cache_dir ? rc_strdup(opts->cache_dir)
					       : NULL;
		s->offline = opts->offline;
	}
	rc_secret_register(getenv("RECONCILE_GIT_TOKEN"));
	rc_secret_register(getenv("RECONCILE_SSH_KEY_PASSPHRASE"));
	rc = spec_is_url(spec) ? open_url(s, spec, ref)
			       : open_directory(s, spec, ref);
	if (rc < 0) {
		rc_source_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void rc_source_free(rc_source *s)
{
	if (!s)
		return;
	git_repository_free(s->repo);
	free(s->dir);
	free(s->commit);
	free(s->work_branch);
	free(s->url);
	free(s->raw_url);
	free(s->where);
	free(s->prefix);
	free(s->cache);
	free(s->cache_opt);
	free(s);
	git_libgit2_shutdown();
}

const char *rc_source_dir(const rc_source *s)
{
	return s->dir;
}

const char *rc_source_commit(const rc_source *s)
{
	return s->commit;
}

bool rc_source_dirty(const rc_source *s)
{
	return s->dirty;
}

const char *rc_source_url(const rc_source *s)
{
	return s->url;
}

const char *rc_source_work_branch(const rc_source *s)
{
	return s->work_branch;
}

int rc_source_commit_signature(rc_source *s, const char *commit, rc_buf *sig,
			       rc_buf *data, long long *when)
{
	git_buf gs = GIT_BUF_INIT, gd = GIT_BUF_INIT;
	git_commit *c = NULL;
	git_oid id;
	int err;

	if (!s->repo || git_oid_fromstr(&id, commit) < 0 ||
	    git_commit_lookup(&c, s->repo, &id) < 0) {
		git_error_clear();
		return rc_error_set(RC_ENOTFOUND, RC_ECLASS_GIT,
				    "no commit %.7s in '%s'", commit, s->where);
	}
	*when = (long long)git_commit_committer(c)->when.time;
	git_commit_free(c);
	err = git_commit_extract_signature(&gs, &gd, s->repo, &id, "gpgsig");
	if (err == GIT_ENOTFOUND) {
		git_error_clear();
		return RC_ENOTFOUND;
	}
	if (err < 0)
		return source_error(s, RC_ERROR, true,
				    "cannot read the signature of commit %.7s",
				    commit);
	err = rc_buf_put(sig, gs.ptr, gs.size) < 0 ||
	      rc_buf_put(data, gd.ptr, gd.size) < 0;
	git_buf_dispose(&gs);
	git_buf_dispose(&gd);
	return err ? RC_ETOOBIG : 0;
}

int rc_source_tree(char **dir_out, char **commit_out, rc_source *s,
		   const char *ref)
{
	git_oid id;
	int rc;

	*dir_out = NULL;
	*commit_out = NULL;
	if (!s->repo)
		return source_error(s, RC_ENOTFOUND, false,
				    "cannot read ref '%s': '%s' is not in a "
				    "git repository",
				    ref ? ref : "HEAD", s->where);
	if ((rc = resolve(s, &id, ref)) < 0)
		return rc;
	return tree_at(s, dir_out, commit_out, &id);
}

static int cmp_branch(const void *a, const void *b)
{
	return strcmp(((const rc_source_branch *)a)->name,
		      ((const rc_source_branch *)b)->name);
}

void rc_source_branches_free(rc_source_branch *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(b[i].name);
	free(b);
}

/* Appends the branches under prefix (a refs/ namespace ending in '/'),
 * skipping HEAD and, when shadow_n, names among the first shadow_n
 * entries (sorted). */
static int collect_branches(rc_source *s, rc_source_branch **list,
			    size_t *n, size_t *cap, const char *prefix,
			    size_t shadow_n)
{
	git_reference_iterator *it = NULL;
	git_reference *ref;
	size_t plen = strlen(prefix);
	int err;

	if (git_reference_iterator_new(&it, s->repo) < 0)
		return source_error(s, RC_ERROR, true,
				    "cannot list the branches of '%s'",
				    s->where);
	while ((err = git_reference_next(&ref, it)) == 0) {
		const char *name = git_reference_name(ref);
		git_object *obj = NULL;
		rc_source_branch key;

		key.name = (char *)(uintptr_t)(name + plen);
		if (strncmp(name, prefix, plen) ||
		    git_reference_type(ref) == GIT_REFERENCE_SYMBOLIC ||
		    !strcmp(name + plen, "HEAD") ||
		    (shadow_n && bsearch(&key, *list, shadow_n, sizeof(key),
					 cmp_branch)) ||
		    git_reference_peel(&obj, ref, GIT_OBJECT_COMMIT) < 0) {
			git_reference_free(ref);
			continue;
		}
		RC_GROW(*list, *cap, *n + 1);
		(*list)[*n].name = rc_strdup(name + plen);
		git_oid_tostr((*list)[*n].sha, sizeof((*list)[*n].sha),
			      git_object_id(obj));
		(*n)++;
		git_object_free(obj);
		git_reference_free(ref);
	}
	git_reference_iterator_free(it);
	if (err != GIT_ITEROVER)
		return source_error(s, RC_ERROR, true,
				    "cannot list the branches of '%s'",
				    s->where);
	return 0;
}

int rc_source_branches(rc_source_branch **out, size_t *nout, rc_source *s)
{
	rc_source_branch *list = NULL;
	size_t n = 0, cap = 0, nlocal;
	int rc;

	*out = NULL;
	*nout = 0;
	if (!s->repo)
		return source_error(s, RC_ENOTFOUND, false,
				    "cannot list branches: '%s' is not in a "
				    "git repository",
				    s->where);
	if (s->url) {
		rc = collect_branches(s, &list, &n, &cap,
				      "refs/remotes/origin/", 0);
	} else {
		rc = collect_branches(s, &list, &n, &cap, "refs/heads/", 0);
		nlocal = n;
		if (!rc && nlocal)
			qsort(list, nlocal, sizeof(*list), cmp_branch);
		if (!rc)
			rc = collect_branches(s, &list, &n, &cap,
					      "refs/remotes/origin/", nlocal);
	}
	if (rc < 0) {
		rc_source_branches_free(list, n);
		return rc;
	}
	if (n)
		qsort(list, n, sizeof(*list), cmp_branch);
	*out = list;
	*nout = n;
	return 0;
}
