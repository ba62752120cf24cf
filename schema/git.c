/* Listing the branches of a git repository (for branch generators). */
#include "reconciler/base/common.h"
#include "reconciler/base/error.h"
#include "schema/loader.h"

#include <git2.h>

static void git_init_once(void)
{
	static bool done;

	if (!done) {
		git_libgit2_init();
		done = true;
	}
}

bool rc_git_url_is_remote(const char *url)
{
	if (!strncmp(url, "file://", 7))
		return false;
	if (strstr(url, "://"))
		return true;
	/* scp-style user@host:path (a ':' before any '/') */
	{
		const char *colon = strchr(url, ':');
		const char *slash = strchr(url, '/');

		if (colon && (!slash || colon < slash) && colon != url)
			return true;
	}
	return false;
}

void rc_branches_free(rc_branch *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(b[i].name);
	free(b);
}

static int cmp_branch(const void *a, const void *b)
{
	return strcmp(((const rc_branch *)a)->name,
		      ((const rc_branch *)b)->name);
}

int rc_git_list_branches(rc_branch **out, size_t *nout, const char *url)
{
	git_remote *remote = NULL;
	const git_remote_head **heads;
	size_t nheads, i, n = 0, cap = 0;
	rc_branch *list = NULL;
	int rc;

	*out = NULL;
	*nout = 0;
	git_init_once();
	if ((rc = git_remote_create_detached(&remote, url)) < 0 ||
	    (rc = git_remote_connect(remote, GIT_DIRECTION_FETCH, NULL, NULL,
				     NULL)) < 0 ||
	    (rc = git_remote_ls(&heads, &nheads, remote)) < 0) {
		const git_error *e = git_error_last();

		rc_error_set(RC_ERROR, RC_ECLASS_GIT, "%s",
			     e && e->message ? e->message : "git error");
		git_remote_free(remote);
		return RC_ERROR;
	}
	for (i = 0; i < nheads; i++) {
		const char *ref = heads[i]->name;

		if (strncmp(ref, "refs/heads/", 11) != 0)
			continue;
		RC_GROW(list, cap, n + 1);
		list[n].name = rc_strdup(ref + 11);
		git_oid_tostr(list[n].sha, sizeof(list[n].sha),
			      &heads[i]->oid);
		n++;
	}
	git_remote_disconnect(remote);
	git_remote_free(remote);
	if (n)
		qsort(list, n, sizeof(*list), cmp_branch);
	*out = list;
	*nout = n;
	return 0;
}
