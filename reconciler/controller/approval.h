/*
 * Approvals through the controller (docs/controller.md, "Approvals").
 *
 * A `policy.apply: manual` environment's plan waits as
 * <state>/controller/pending/<env>.json. GET /api/v1/approvals lists the
 * waiting plans; POST /api/v1/approvals/<env> ({"plan": "<id>"}, optional)
 * applies exactly that saved plan, through the engine, unless it is stale
 * by the saved-plan rules (rc_engine_check_saved): then a fresh plan is
 * saved as pending and the answer is 409 asking for a new approval.
 * DELETE /api/v1/approvals/<env> rejects it: a journaled run of its own
 * (status "rejected"), and the same plan is not proposed again until the
 * commit or the actual state changes (a different plan id).
 *
 * Who approved is the name of the bearer token the request carried:
 * RECONCILE_CONTROLLER_TOKEN is a bare token (named "admin") or a list
 * "name1:token1,name2:token2".
 */
#ifndef RC_CTL_APPROVAL_H
#define RC_CTL_APPROVAL_H

#include <jansson.h>

#include "reconciler/base/common.h"
#include "reconciler/controller/controller.h"
#include "reconciler/plan.h"

/* The approver's name of a bare token. */
#define RC_CTL_TOKEN_ADMIN "admin"
/* The approver's name when the API has no token (loopback only). */
#define RC_CTL_TOKEN_NONE "anonymous"

typedef struct {
	char *name, *token;
} rc_ctl_token;

typedef struct {
	rc_ctl_token *v;
	size_t n;
} rc_ctl_tokens;

/* Parses RECONCILE_CONTROLLER_TOKEN: empty or NULL (no token), a bare
 * token (one token named "admin"), or, when it holds a ':', a list
 * "name:token" separated by ',' (spaces around entries ignored). Names
 * are [A-Za-z0-9._@-]+; names and tokens are unique, tokens not empty.
 * RC_EINVALID naming the entry (never a token) when one is wrong; *out is
 * then empty. */
int rc_ctl_tokens_parse(rc_ctl_tokens *out, const char *value);
void rc_ctl_tokens_release(rc_ctl_tokens *t);
/* The name of the token "Authorization: Bearer <token>" carries, or NULL;
 * every token is compared, each in constant time. */
const char *rc_ctl_tokens_match(const rc_ctl_tokens *t,
				const char *authorization);

/* The pending plan file of env (new string). */
char *rc_pending_path(const char *state_dir, const char *env);
/* Saves p as env's pending plan, atomically. */
int rc_pending_save(const char *state_dir, const char *env, const rc_plan *p);
/* Reads env's pending plan; *mtime (may be NULL) when it was saved.
 * RC_ENOTFOUND when there is none. Release *p whatever the result. */
int rc_pending_load(const char *state_dir, const char *env, rc_plan *p,
		    time_t *mtime);
/* Removes env's pending plan (none is fine). */
void rc_pending_drop(const char *state_dir, const char *env);
/* Records plan id as env's rejected plan (<state>/controller/pending/
 * <env>.rejected), so that a restarted controller does not propose it
 * again either. */
int rc_pending_reject_save(const char *state_dir, const char *env,
			   const char *id);
/* env's rejected plan id (new string), or NULL. */
char *rc_pending_reject_load(const char *state_dir, const char *env);
/* What a plan changes, without a body or a value (new ref):
 * {"counts": {"create": n, ...}, "changes": ["<op> <key>", ...]}. */
json_t *rc_pending_summary(const rc_plan *p);

/* GET /api/v1/approvals (new ref): {"approvals": [{environment, plan,
 * commit, created, counts, changes}]}. */
json_t *rc_approvals_list(rc_ctl *c);
/* POST /api/v1/approvals/<env>: applies env's pending plan (plan NULL:
 * whichever it is; else an id or a prefix of 8 or more of its hex) as
 * approved by `by`. Returns the HTTP status; *body the answer (new ref):
 * 200 {environment, plan, run, result, approved_by, counts, error},
 * 404 / 409 / 503 {error, pending}. */
unsigned rc_approval_approve(rc_ctl *c, const char *env, const char *plan,
			     const char *by, json_t **body);
/* DELETE /api/v1/approvals/<env>: rejects the pending plan, the same
 * way; 200 {environment, plan, run, rejected_by}. */
unsigned rc_approval_reject(rc_ctl *c, const char *env, const char *plan,
			    const char *by, json_t **body);

#endif
