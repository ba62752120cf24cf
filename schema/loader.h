/* Internal to schema/: the state of one load. */
#ifndef RC_LOADER_H
#define RC_LOADER_H

#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/strmap.h"
#include "schema/diag.h"
#include "schema/load.h"
#include "schema/model.h"
#include "schema/node.h"

typedef struct {
	char *rel;        /* path relative to the repository root */
	const char *name; /* display name (interned in diags) */
	rc_node **docs;
	size_t ndocs;
	bool failed;    /* could not be read or parsed */
	rc_node *body;  /* environment body with extends resolved, or NULL */
	size_t base_uses; /* times another file extended it */
	bool resolving; /* on the extends stack right now */
	bool resolved;
} rc_file_entry;

typedef struct {
	const char *dir;
	char *root_real;
	rc_diags *diags;
	rc_load_opts opts;
	rc_config *cfg;
	const rc_node *root; /* the document of reconcile.yaml */
	bool sensitive_paths; /* resolving a secret's file: do not quote it */
	rc_file_entry **files;
	size_t nfiles, capfiles;
	rc_strmap file_index; /* rel -> rc_file_entry */
	size_t total_bytes;
} rc_loader;

#define RC_MAX_FILES 20000
#define RC_MAX_TOTAL_BYTES ((size_t)256 << 20)

/* fs.c */
/* Resolves a configuration path: `path` as written at `at`, relative to
 * the directory of `from_rel` (NULL: the repository root). Returns the
 * normalised repository-relative path (new) or NULL after a diagnostic. */
char *rc_loader_resolve_path(rc_loader *L, const char *from_rel,
			     const char *path, rc_loc at, int span,
			     bool must_exist);
/* Reads and parses a repository file (cached). NULL after a diagnostic. */
rc_file_entry *rc_loader_file(rc_loader *L, const char *rel, rc_loc at,
			      int span);
char *rc_loader_display(const rc_loader *L, const char *rel);

/* git.c */
/* Lists the branches (refs/heads) of a git repository given as a URL or
 * a local path; 0, or a negative code with rc_error_last() set. */
int rc_git_list_branches(rc_branch **out, size_t *n, const char *url);
void rc_branches_free(rc_branch *b, size_t n);
/* Whether url names a remote (network) repository. */
bool rc_git_url_is_remote(const char *url);

/* subst.c */
typedef struct {
	const rc_kvlist *item; /* NULL outside generated environments */
	const char *project;
	const char *env_name;
	const char *env_branch; /* NULL when the environment follows none */
	const rc_node *target;  /* the substituted target map, or NULL */
	char *const *allow_env;
	size_t nallow_env;
} rc_subst_vars;
/* Substitutes placeholders in every string scalar of the environment body
 * (in place), following the rules of where each name may be used. */
void rc_subst_body(rc_loader *L, rc_node *body, rc_subst_vars *vars);
/* Substitutes one scalar (in place) where only base names are allowed;
 * `what` names the field in messages. */
void rc_subst_scalar(rc_loader *L, rc_node *scalar, const rc_subst_vars *vars,
		     const char *what);
void rc_subst_tree(rc_loader *L, rc_node *tree, const rc_subst_vars *vars);

/* typed.c */
/* Types a merged environment body into env; `at` locates the environment
 * (its key in reconcile.yaml). */
void rc_type_env(rc_loader *L, rc_env *env, const rc_node *body, rc_loc at,
		 int at_span);

/* Helpers shared by load.c and typed.c. */
typedef struct {
	rc_loader *L;
	const char *what; /* "service 'web'", "target", ... for messages */
	bool sensitive;   /* under secrets: never show the value's line */
} rc_ctx;
/* An error about something read through ctx c. */
#define RC_CTX_ERROR(c, loc, span, ...)                                  \
	rc_diags_add((c)->L->diags, RC_DIAG_ERROR, (loc), (span),         \
		     (c)->sensitive, __VA_ARGS__)
bool rc_check_keys(rc_ctx *c, const rc_node *map, const char *const *keys,
		   size_t nkeys);
bool rc_expect_map(rc_ctx *c, const rc_node *n, const char *field);
char *rc_get_str(rc_ctx *c, const rc_node *map, const char *key, bool required,
		 rc_loc at, int span);
int rc_get_int(rc_ctx *c, const rc_node *map, const char *key, int def,
	       long min, long max);
int rc_get_bool(rc_ctx *c, const rc_node *map, const char *key, int def);
/* A list of strings. `items` names them in messages ("strings",
 * "variable names"); NULL means an argv, whose string form gets the
 * "no shell" explanation. On false, *out is empty (nothing to free). */
bool rc_get_argv(rc_ctx *c, const rc_node *map, const char *key,
		 rc_argv *out, bool nonempty, const char *items);
void rc_get_kvlist(rc_ctx *c, const rc_node *map, const char *key,
		   rc_kvlist *out, bool var_names);
long rc_get_duration(rc_ctx *c, const rc_node *map, const char *key, long def);
int rc_get_enum(rc_ctx *c, const rc_node *map, const char *key,
		const char *const *values, size_t n, int def);
char *rc_scalar_text(rc_ctx *c, const rc_node *n, const char *field);
/* A secret reference ({env: NAME}, {file: PATH}, or for an ecs
 * environment {aws_secret: ARN}) at v into s's kind and ref; env is the
 * environment it belongs to (NULL: reconcile itself needs the value, so
 * aws_secret is refused); `what` names it in messages ("secret
 * 'API_KEY'"). A literal is an error whose source line is never shown.
 * false after diagnostics. */
bool rc_type_secret_ref(rc_loader *L, const rc_env *env, const char *what,
			const rc_node *v, rc_secret *s);
/* The top-level notify: list (notify.c). */
void rc_type_notify(rc_loader *L, const rc_node *list);
/* policy.verify at n into v (verify.c); the top-level policy: map. */
void rc_type_verify(rc_loader *L, rc_verify *v, const rc_node *n);
void rc_type_root_policy(rc_loader *L, const rc_node *n);
/* Checks notify's environments against the environments loaded. */
void rc_check_notify(rc_loader *L);
void rc_argv_free(rc_argv *a);
/* Types a `recipients:` list (top level or an environment's): each an
 * age public key the age format can encrypt to (schema/age_keys.h), an
 * error at the item otherwise. */
void rc_type_recipients(rc_loader *L, const rc_node *n, const char *what,
			rc_argv *out, rc_loc **locs);
void rc_kvlist_free(rc_kvlist *l);
void rc_kvlist_add(rc_kvlist *l, const char *key, const char *value,
		   rc_loc loc);

#endif
