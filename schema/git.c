/* Listing the branches of a git repository (for branch generators). */
#include "reconciler/base/common.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "schema/git.h"
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

/* Calls of the credentials callback before it gives up. */
#define RC_CRED_ATTEMPTS 3

static const char *env_nonempty(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/*
 * Each kind of credential is offered once: libgit2 asks again when the
 * server refused it, and asking the agent or sending the same token
 * again would loop for ever.
 */
int rc_git_credentials_cb(git_credential **out, const char *url,
			  const char *username_from_url,
			  unsigned int allowed, void *payload)
{
	rc_git_cred_state *c = payload;
	const char *user = username_from_url && *username_from_url
				   ? username_from_url
				   : "git";

	RC_UNUSED(url);
	if (++c->attempts > RC_CRED_ATTEMPTS) {
		c->gave_up = "the server refused every credential offered";
		return GIT_EUSER;
	}
	if (allowed & GIT_CREDENTIAL_SSH_KEY) {
		const char *key = env_nonempty("RECONCILE_SSH_KEY");
		const char *pass = env_nonempty("RECONCILE_SSH_KEY_PASSPHRASE");

		if (c->tried & GIT_CREDENTIAL_SSH_KEY) {
			c->gave_up = key ? "the ssh key in RECONCILE_SSH_KEY "
					   "was refused"
					 : "no key of the ssh-agent was "
					   "accepted (or set "
					   "RECONCILE_SSH_KEY)";
			return GIT_EUSER;
		}
		c->tried |= GIT_CREDENTIAL_SSH_KEY;
		if (key) {
			rc_secret_register(pass);
			return git_credential_ssh_key_new(out, user, NULL, key,
							  pass);
		}
		return git_credential_ssh_key_from_agent(out, user);
	}
	if (allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) {
		const char *token = env_nonempty("RECONCILE_GIT_TOKEN");
		const char *name = env_nonempty("RECONCILE_GIT_USER");

		if (!token) {
			c->gave_up = "authentication required: set "
				     "RECONCILE_GIT_TOKEN";
			return GIT_EUSER;
		}
		if (c->tried & GIT_CREDENTIAL_USERPASS_PLAINTEXT) {
			c->gave_up = "the token in RECONCILE_GIT_TOKEN was "
				     "refused";
			return GIT_EUSER;
		}
		c->tried |= GIT_CREDENTIAL_USERPASS_PLAINTEXT;
		rc_secret_register(token);
		return git_credential_userpass_plaintext_new(
			out, name ? name : "x-access-token", token);
	}
	if ((allowed & GIT_CREDENTIAL_USERNAME) &&
	    !(c->tried & GIT_CREDENTIAL_USERNAME)) {
		c->tried |= GIT_CREDENTIAL_USERNAME;
		return git_credential_username_new(out, user);
	}
	c->gave_up = "the server asks for a kind of authentication that "
		     "reconcile does not offer";
	return GIT_EUSER;
}

int rc_git_list_branches(rc_branch **out, size_t *nout, const char *url)
{
	git_remote *remote = NULL;
	const git_remote_head **heads;
	size_t nheads, i, n = 0, cap = 0;
	rc_branch *list = NULL;
	git_remote_callbacks cbs;
	git_proxy_options po;
	rc_git_cred_state cs = {0};
	int rc;

	*out = NULL;
	*nout = 0;
	git_init_once();
	git_remote_init_callbacks(&cbs, GIT_REMOTE_CALLBACKS_VERSION);
	git_proxy_options_init(&po, GIT_PROXY_OPTIONS_VERSION);
	cbs.credentials = rc_git_credentials_cb;
	cbs.payload = &cs;
	po.type = GIT_PROXY_AUTO;
	if ((rc = git_remote_create_detached(&remote, url)) < 0 ||
	    (rc = git_remote_connect(remote, GIT_DIRECTION_FETCH, &cbs, &po,
				     NULL)) < 0 ||
	    (rc = git_remote_ls(&heads, &nheads, remote)) < 0) {
		const git_error *e = git_error_last();

		if (cs.gave_up)
			rc_error_set(RC_EAUTH, RC_ECLASS_GIT, "%s",
				     cs.gave_up);
		else
			rc_error_set(RC_ERROR, RC_ECLASS_GIT, "%s",
				     e && e->message ? e->message
						     : "git error");
		git_remote_free(remote);
		return cs.gave_up ? RC_EAUTH : RC_ERROR;
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
