/* Trusted commits: SSH and OpenPGP signatures of the configuration's
 * commits, checked before planning (docs/trust.md). */
#include "reconciler/base/common.h"
#include "reconciler/verify.h"
#include "drivers/proc.h"
#include "reconciler/base/log.h"
#include "reconciler/base/rctime.h"
#include "reconciler/sshsig.h"

#include <ftw.h>
#include <gpgme.h>
#include <pthread.h>

#define SSH_BEGIN "-----BEGIN SSH SIGNATURE-----"
#define PGP_BEGIN "-----BEGIN PGP SIGNATURE-----"
#define MAX_KEY_FILE (4 << 20)

typedef struct {
	const char *commit;
	const rc_verify *v;
	rc_verify_require require;
	char *signers; /* the allowed-signers file to use, or NULL */
	char *keyring; /* the OpenPGP keyring file to use, or NULL */
	rc_buf sig, data;
	long long when;
} check;

/* The failure reason for c: "commit <7 hex>: <why>", at policy.verify. */
static int RC_PRINTF(2, 3) refuse(const check *c, const char *fmt, ...)
{
	rc_buf b = RC_BUF_INIT_MAX(4096);
	va_list ap;

	if (c->commit)
		rc_buf_printf(&b, "commit %.7s: ", c->commit);
	va_start(ap, fmt);
	rc_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (c->v && c->v->loc.file)
		rc_error_set_at(RC_EAUTH, c->v->loc, "%s", b.ptr);
	else
		rc_error_set(RC_EAUTH, RC_ECLASS_CONFIG, "%s", b.ptr);
	rc_buf_release(&b);
	return RC_EAUTH;
}

static bool getenv_set(const char *var)
{
	const char *e = getenv(var);

	return e && *e;
}

/* The file to use: the variable's (outside the repository), else rel in
 * dir, else NULL. */
static char *anchor(const char *var, const char *rel, const char *dir)
{
	rc_buf b = RC_BUF_INIT_MAX(PATH_MAX * 2);

	if (getenv_set(var))
		return rc_strdup(getenv(var));
	if (!rel)
		return NULL;
	rc_buf_printf(&b, "%s/%s", dir, rel);
	return rc_buf_detach(&b);
}

/* --- SSH ---------------------------------------------------------------- */

static int check_ssh(check *c, char **who)
{
	rc_sshsig s;
	rc_allowed_signers as = {0};
	rc_buf text = RC_BUF_INIT_MAX(MAX_KEY_FILE);
	const char *principals = NULL;
	int rc;

	if (!c->signers)
		return refuse(c, "signed with an SSH key, and policy.verify "
				 "has no ssh.allowed_signers");
	if (rc_sshsig_parse(&s, c->sig.ptr, c->sig.len) < 0)
		return refuse(c, "%s", rc_error_last()->message);
	if (strcmp(s.namespace, "git")) {
		rc = refuse(c, "the SSH signature is for namespace '%s', not "
			       "git",
			    s.namespace);
		goto out;
	}
	if (rc_sshsig_verify(&s, c->data.ptr, c->data.len) < 0) {
		rc = refuse(c, "%s (key %s)", rc_error_last()->message,
			    s.fingerprint);
		goto out;
	}
	if (rc_local_read_file(c->signers, MAX_KEY_FILE, &text) < 0 ||
	    rc_allowed_signers_parse(&as, text.ptr, c->signers) < 0) {
		rc = refuse(c, "cannot read the allowed signers: %s",
			    rc_error_last()->message);
		goto out;
	}
	rc = rc_allowed_signers_check(&as, s.key, s.keylen, "git", c->when,
				      &principals);
	if (rc == RC_ENOTFOUND)
		rc = refuse(c, "signed by an unknown key %s", s.fingerprint);
	else if (rc < 0)
		rc = refuse(c, "%s (key %s)", rc_error_last()->message,
			    s.fingerprint);
	else {
		rc_buf b = RC_BUF_INIT_MAX(4096);

		rc_buf_printf(&b, "ssh key %s (%s)", s.fingerprint, principals);
		*who = rc_buf_detach(&b);
	}
out:
	rc_allowed_signers_release(&as);
	rc_buf_release(&text);
	rc_sshsig_release(&s);
	return rc;
}

/* --- OpenPGP ------------------------------------------------------------ */

static pthread_once_t gpgme_once = PTHREAD_ONCE_INIT;

static void gpgme_start(void)
{
	gpgme_check_version(NULL);
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* What the verification of one signature says, as a reason or a signer. */
static int pgp_result(check *c, gpgme_ctx_t ctx, gpgme_signature_t g,
		      char **who)
{
	gpgme_key_t key = NULL;
	char d[RC_TIME_SIZE];
	int rc;

	gpgme_get_key(ctx, g->fpr, &key, 0);
	switch (gpgme_err_code(g->status)) {
	case GPG_ERR_NO_ERROR:
		if (g->summary & GPGME_SIGSUM_KEY_REVOKED)
			rc = refuse(c, "key revoked (%s)", g->fpr);
		else if (g->summary & (GPGME_SIGSUM_KEY_EXPIRED |
				       GPGME_SIGSUM_SIG_EXPIRED))
			goto expired;
		else {
			rc_buf b = RC_BUF_INIT_MAX(4096);

			rc_buf_printf(&b, "openpgp key %s", g->fpr);
			if (key && key->uids && key->uids->uid)
				rc_buf_printf(&b, " (%s)", key->uids->uid);
			*who = rc_buf_detach(&b);
			rc = 0;
		}
		break;
	case GPG_ERR_NO_PUBKEY:
		rc = refuse(c, "signed by an unknown key %s", g->fpr);
		break;
	case GPG_ERR_BAD_SIGNATURE:
		rc = refuse(c, "bad signature (key %s)", g->fpr);
		break;
	case GPG_ERR_CERT_REVOKED:
		rc = refuse(c, "key revoked (%s)", g->fpr);
		break;
	case GPG_ERR_KEY_EXPIRED:
	expired:
		if (key && key->subkeys && key->subkeys->expires) {
			rc_time_utc(d, (long long)key->subkeys->expires);
			rc = refuse(c, "key expired on %s (%s)", d, g->fpr);
		} else {
			rc = refuse(c, "key expired (%s)", g->fpr);
		}
		break;
	case GPG_ERR_SIG_EXPIRED:
		rc_time_utc(d, (long long)g->exp_timestamp);
		rc = refuse(c, "signature expired on %s (key %s)", d, g->fpr);
		break;
	default:
		rc = refuse(c, "the OpenPGP signature cannot be verified: %s",
			    gpgme_strerror(g->status));
	}
	gpgme_key_unref(key);
	return rc;
}

static int check_pgp(check *c, char **who)
{
	char home[] = "/tmp/rcgpg.XXXXXX";
	rc_buf ring = RC_BUF_INIT_MAX(MAX_KEY_FILE);
	gpgme_ctx_t ctx = NULL;
	gpgme_data_t kd = NULL, sd = NULL, dd = NULL;
	gpgme_verify_result_t r;
	gpgme_error_t err;
	int rc;

	if (!c->keyring)
		return refuse(c, "signed with an OpenPGP key, and policy.verify "
				 "has no openpgp.keyring");
	if (rc_local_read_file(c->keyring, MAX_KEY_FILE, &ring) < 0) {
		rc = refuse(c, "cannot read the OpenPGP keyring: %s",
			    rc_error_last()->message);
		rc_buf_release(&ring);
		return rc;
	}
	pthread_once(&gpgme_once, gpgme_start);
	if (!mkdtemp(home)) {
		rc_buf_release(&ring);
		return rc_error_set_os("cannot make a directory for gpg");
	}
	err = gpgme_new(&ctx);
	if (!err)
		err = gpgme_ctx_set_engine_info(ctx, GPGME_PROTOCOL_OpenPGP,
						NULL, home);
	if (!err) {
		gpgme_set_offline(ctx, 1);
		err = gpgme_data_new_from_mem(&kd, ring.ptr, ring.len, 0);
	}
	if (!err)
		err = gpgme_op_import(ctx, kd);
	if (!err)
		err = gpgme_data_new_from_mem(&sd, c->sig.ptr, c->sig.len, 0);
	if (!err)
		err = gpgme_data_new_from_mem(&dd, c->data.ptr, c->data.len, 0);
	if (!err)
		err = gpgme_op_verify(ctx, sd, dd, NULL);
	if (err) {
		rc = refuse(c, "the OpenPGP signature cannot be verified: %s",
			    gpgme_strerror(err));
	} else if (!(r = gpgme_op_verify_result(ctx)) || !r->signatures) {
		rc = refuse(c, "the OpenPGP signature holds no signature");
	} else {
		rc = pgp_result(c, ctx, r->signatures, who);
	}
	gpgme_data_release(kd);
	gpgme_data_release(sd);
	gpgme_data_release(dd);
	gpgme_release(ctx);
	nftw(home, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	rc_buf_release(&ring);
	return rc;
}

/* --- the policy ---------------------------------------------------------- */

int rc_verify_commit(rc_source *src, const char *commit, bool dirty,
		     const rc_verify *v, const char *dir, char **who)
{
	check c = {0};
	int rc;

	*who = NULL;
	c.commit = commit;
	c.v = v && v->require ? v : NULL;
	c.signers = anchor("RECONCILE_ALLOWED_SIGNERS",
			   c.v ? v->allowed_signers : NULL, dir);
	c.keyring = anchor("RECONCILE_OPENPGP_KEYRING",
			   c.v ? v->keyring : NULL, dir);
	/* an anchor from outside the repository: the commit cannot relax
	   the rule either */
	c.require = c.v && !getenv_set("RECONCILE_ALLOWED_SIGNERS") &&
				    !getenv_set("RECONCILE_OPENPGP_KEYRING")
			    ? v->require
			    : RC_VERIFY_SIGNED;
	if (!c.v && !c.signers && !c.keyring)
		return 0;
	rc_buf_init(&c.sig, 1 << 16);
	rc_buf_init(&c.data, 16 << 20);
	if (!commit || dirty) {
		const char *why = commit ? "the working tree has uncommitted "
					   "changes"
					 : "the configuration is not in a git "
					   "repository";

		if (c.require == RC_VERIFY_SIGNED)
			rc = refuse(&c, "%s; signatures can only vouch for "
					"commits",
				    why);
		else {
			RC_WARN("%s: nothing to verify (policy.verify require: "
				"any)",
				why);
			*who = rc_strdup("unverified");
			rc = 0;
		}
		goto out;
	}
	rc_error_clear();
	rc = rc_source_commit_signature(src, commit, &c.sig, &c.data, &c.when);
	if (rc == RC_ENOTFOUND && !rc_error_last()) {
		if (c.require == RC_VERIFY_SIGNED)
			rc = refuse(&c, "unsigned (policy.verify requires "
					"signed commits)");
		else {
			*who = rc_strdup("unsigned");
			rc = 0;
		}
	} else if (rc < 0) {
		rc = refuse(&c, "%s", rc_error_last()->message);
	} else if (strstr(c.sig.ptr, SSH_BEGIN) == c.sig.ptr) {
		rc = check_ssh(&c, who);
	} else if (strstr(c.sig.ptr, PGP_BEGIN) == c.sig.ptr) {
		rc = check_pgp(&c, who);
	} else {
		rc = refuse(&c, "signed in a format reconcile does not verify "
				"(only SSH and OpenPGP signatures)");
	}
out:
	rc_buf_release(&c.sig);
	rc_buf_release(&c.data);
	free(c.signers);
	free(c.keyring);
	return rc;
}

int rc_verify_engine(rc_engine *e)
{
	const char *done_commit = NULL;
	const rc_verify *done_v = NULL;

	for (size_t i = 0; i < e->nenvs; i++) {
		const rc_engine_env *ee = &e->envs[i];
		const rc_verify *v = &ee->env->policy.verify;
		const char *commit = ee->commit ? ee->commit
						: rc_source_commit(e->src);
		/* read from the work tree (its own branch included) */
		bool dirty = !ee->config_dir && rc_source_dirty(e->src);
		char *who = NULL;

		if (ee->owned)
			continue; /* gone: nothing of it is planned but
				     deletions, read from the registry */
		if (done_v && commit && done_commit &&
		    !strcmp(commit, done_commit) && v->require == done_v->require &&
		    !strcmp(v->allowed_signers ? v->allowed_signers : "",
			    done_v->allowed_signers ? done_v->allowed_signers
						    : "") &&
		    !strcmp(v->keyring ? v->keyring : "",
			    done_v->keyring ? done_v->keyring : ""))
			continue;
		rc_error_clear();
		if (rc_verify_commit(e->src, commit, dirty, v,
				     ee->config_dir ? ee->config_dir
						    : rc_source_dir(e->src),
				     &who) < 0) {
			rc_error_prefix("environment '%s'", ee->env->name);
			return RC_EAUTH;
		}
		if (who)
			RC_INFO("environment '%s': commit %.7s signed by %s",
				ee->env->name, commit ? commit : "", who);
		free(who);
		done_commit = commit;
		done_v = v;
	}
	return 0;
}
