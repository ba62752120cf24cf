/*
 * Trusted commits (policy.verify, docs/trust.md): before the engine plans
 * an environment from a commit, the commit's signature must be valid by
 * a trusted key.
 *
 * SSH signatures (git's gpg.format=ssh) are checked with sshsig.h against
 * an allowed-signers file, namespace "git", at the committer's time;
 * OpenPGP signatures through GPGME in a private temporary GNUPGHOME into
 * which only the configured keyring is imported (never the user's).
 *
 * The trust anchors: RECONCILE_ALLOWED_SIGNERS and
 * RECONCILE_OPENPGP_KEYRING, when set, name files outside the repository
 * that take precedence over the paths in policy.verify, and make every
 * environment require a signed commit (require: signed) even when the
 * configuration has no policy.verify, so that a commit cannot vouch for
 * itself by changing the policy or the keys it is checked against.
 */
#ifndef RC_VERIFY_H
#define RC_VERIFY_H

#include "reconciler/engine.h"

/* Checks commit (40 hex, or NULL for a plain directory) of src, whose
 * tree is at dir (policy.verify's relative paths are read from it),
 * against v (RC_VERIFY_NONE: only the environment's variables). dirty:
 * the configuration was read from a work tree with uncommitted changes.
 * 0 when the commit may be planned, *who (new, may be NULL) saying who
 * signed it ("ssh key SHA256:... (alice@example.com)", "openpgp key
 * <fpr> (Alice <alice@example.com>)", "unsigned") or NULL when nothing
 * asks for verification; RC_EAUTH otherwise, at v's location, with the
 * reason: "commit 1a2b3c4: unsigned (policy.verify requires signed
 * commits)", "... signed by an unknown key SHA256:...", "... bad
 * signature", "... key expired on ...", "... key revoked", "... signer
 * alice@example.com is not allowed for namespace git". */
int rc_verify_commit(rc_source *src, const char *commit, bool dirty,
		     const rc_verify *v, const char *dir, char **who);

/* rc_verify_commit() for each environment in scope (its own commit when
 * read from policy.branch, else the source's), once per commit and
 * policy. Called by rc_engine_open before anything is planned. */
int rc_verify_engine(rc_engine *e);

#endif
