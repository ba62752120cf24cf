/*
 * Credentials for git remotes, offered the same way wherever reconcile
 * talks to one (fetching the source, the controller's cheap check,
 * listing a generator's branches): RECONCILE_SSH_KEY (and
 * RECONCILE_SSH_KEY_PASSPHRASE) or the ssh-agent for ssh URLs,
 * RECONCILE_GIT_TOKEN (user RECONCILE_GIT_USER, else "x-access-token")
 * for HTTPS. Every secret offered is registered with the redactor.
 */
#ifndef RC_SCHEMA_GIT_H
#define RC_SCHEMA_GIT_H

#include <git2.h>

/* One exchange's state (zeroed before it): each kind of credential is
 * offered once, since libgit2 asks again when the server refused it. */
typedef struct {
	int attempts;
	unsigned int tried; /* GIT_CREDENTIAL_* types already offered */
	const char *gave_up; /* why the callback refused, or NULL */
} rc_git_cred_state;

/* A git_credential_acquire_cb; payload is an rc_git_cred_state. */
int rc_git_credentials_cb(git_credential **out, const char *url,
			  const char *username_from_url, unsigned int allowed,
			  void *payload);

#endif
