/* policy.verify: the keys that may sign the configuration's commits, at
 * the top level (policy: {verify: ...}) and per environment. */
#include "reconciler/base/common.h"
#include "schema/loader.h"

void rc_verify_release(rc_verify *v)
{
	free(v->allowed_signers);
	free(v->keyring);
	memset(v, 0, sizeof(*v));
}

void rc_verify_copy(rc_verify *dst, const rc_verify *src)
{
	rc_verify_release(dst);
	*dst = *src;
	dst->allowed_signers =
		src->allowed_signers ? rc_strdup(src->allowed_signers) : NULL;
	dst->keyring = src->keyring ? rc_strdup(src->keyring) : NULL;
}

/* A repository-relative path to a file that must exist, at map[key]. */
static char *key_file(rc_ctx *c, const rc_node *map, const char *key)
{
	const rc_node *n = rc_node_get(map, key);
	char *s = rc_get_str(c, map, key, true, map->loc, 1), *rel;

	if (!s || !n)
		return s;
	rel = rc_loader_resolve_path(c->L, NULL, s, n->loc, n->span, true);
	free(s);
	return rel;
}

void rc_type_verify(rc_loader *L, rc_verify *v, const rc_node *n)
{
	static const char *const keys[] = {"ssh", "openpgp", "require"};
	static const char *const ssh_keys[] = {"allowed_signers"};
	static const char *const pgp_keys[] = {"keyring"};
	static const char *const requires[] = {"signed", "any"};
	rc_ctx c = {L, "policy.verify", false};
	const rc_node *m;

	rc_verify_release(v);
	if (!rc_expect_map(&c, n, "verify"))
		return;
	v->loc = n->loc;
	rc_check_keys(&c, n, keys, RC_ARRAY_SIZE(keys));
	v->require = rc_get_enum(&c, n, "require", requires, 2, 0) == 1
			     ? RC_VERIFY_ANY
			     : RC_VERIFY_SIGNED;
	if ((m = rc_node_get(n, "ssh")) != NULL) {
		rc_ctx s = {L, "policy.verify.ssh", false};

		if (rc_expect_map(&s, m, "ssh") &&
		    rc_check_keys(&s, m, ssh_keys, RC_ARRAY_SIZE(ssh_keys)))
			v->allowed_signers = key_file(&s, m, "allowed_signers");
	}
	if ((m = rc_node_get(n, "openpgp")) != NULL) {
		rc_ctx s = {L, "policy.verify.openpgp", false};

		if (rc_expect_map(&s, m, "openpgp") &&
		    rc_check_keys(&s, m, pgp_keys, RC_ARRAY_SIZE(pgp_keys)))
			v->keyring = key_file(&s, m, "keyring");
	}
	if (!rc_node_get(n, "ssh") && !rc_node_get(n, "openpgp") &&
	    !getenv("RECONCILE_ALLOWED_SIGNERS") &&
	    !getenv("RECONCILE_OPENPGP_KEYRING"))
		rc_diag_error(L->diags, n->loc, n->span,
			      "policy.verify names no keys: give "
			      "ssh.allowed_signers or openpgp.keyring (or set "
			      "RECONCILE_ALLOWED_SIGNERS or "
			      "RECONCILE_OPENPGP_KEYRING)");
}

void rc_type_root_policy(rc_loader *L, const rc_node *n)
{
	static const char *const keys[] = {"verify"};
	rc_ctx c = {L, "the top-level policy", false};
	const rc_node *v;

	if (!rc_expect_map(&c, n, "policy"))
		return;
	rc_check_keys(&c, n, keys, RC_ARRAY_SIZE(keys));
	if ((v = rc_node_get(n, "verify")) != NULL)
		rc_type_verify(L, &L->cfg->verify, v);
}
