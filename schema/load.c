/* Loading a configuration repository: the root file, environment entries,
 * overlays, generators, and the checks across environments. */
#include "reconciler/base/common.h"
#include "schema/loader.h"

#include <fnmatch.h>
#include <git2.h>

static const char *const root_keys[] = {"version", "project", "repositories",
					"allow_env", "notify", "policy",
					"recipients", "environments"};
static const char *const entry_only_keys[] = {"file", "for_each", "name",
					      "ttl"};
static const char *const entry_keys[] = {
	"file",    "for_each", "name",      "ttl",    "extends", "target",
	"services", "config",  "secrets",   "addons", "hooks",
	"resources", "policy", "depends_on", "ignore", "recipients"};

/* ---- overlays ---- */

/* The body of an environment file with its extends chain merged (borrowed
 * from the file cache), or NULL after diagnostics. */
static const rc_node *file_body(rc_loader *L, const char *rel, rc_loc at,
				int span);

static rc_node *extends_of(rc_loader *L, rc_file_entry *f, const rc_node *doc)
{
	const rc_node *ext = rc_node_get(doc, "extends");
	rc_node *acc = NULL;
	const rc_node *const *items;
	size_t n, i;

	if (!ext)
		return NULL;
	if (ext->kind == RC_NODE_SCALAR) {
		items = (const rc_node *const *)&ext;
		n = 1;
	} else if (ext->kind == RC_NODE_SEQ) {
		items = (const rc_node *const *)ext->vals;
		n = ext->n;
	} else {
		rc_diag_error(L->diags, ext->loc, ext->span,
			      "'extends' must be a file name or a list of "
			      "file names, not %s",
			      rc_node_kind_name(ext));
		return NULL;
	}
	for (i = 0; i < n; i++) {
		const rc_node *it = items[i];
		const rc_node *base;
		char *rel;

		if (it->kind != RC_NODE_SCALAR || rc_node_is_null(it)) {
			rc_diag_error(L->diags, it->loc, it->span,
				      "'extends' must name files, not %s",
				      rc_node_kind_name(it));
			continue;
		}
		rel = rc_loader_resolve_path(L, f->rel, it->str, it->loc,
					     it->span, true);
		if (!rel)
			continue;
		base = file_body(L, rel, it->loc, it->span);
		if (base) {
			rc_file_entry *bf = rc_loader_file(L, rel, it->loc,
							   it->span);

			if (bf)
				bf->base_uses++;
			rc_node *m = rc_node_merge(acc, base);

			rc_node_free(acc);
			acc = m;
		}
		free(rel);
	}
	return acc;
}

static const rc_node *file_body(rc_loader *L, const char *rel, rc_loc at,
				int span)
{
	rc_file_entry *f = rc_loader_file(L, rel, at, span);
	const rc_node *doc;
	rc_node *own, *base;

	if (!f)
		return NULL;
	if (f->resolved)
		return f->body;
	if (f->resolving) {
		rc_diag_error(L->diags, at, span,
			      "'extends' makes a cycle: '%s' extends itself "
			      "through this file",
			      f->rel);
		return NULL;
	}
	if (f->ndocs > 1) {
		rc_loc l = {f->name, 0, 0};

		rc_diag_error(L->diags, l, 1,
			      "an environment file must hold one YAML "
			      "document, not %zu",
			      f->ndocs);
	}
	doc = f->ndocs ? f->docs[0] : NULL;
	if (doc && doc->kind != RC_NODE_MAP && !rc_node_is_null(doc)) {
		rc_diag_error(L->diags, doc->loc, doc->span,
			      "an environment file must hold a map, not %s",
			      rc_node_kind_name(doc));
		f->resolved = true; /* and unusable: f->body stays NULL */
		return NULL;
	}
	if (doc && rc_node_is_null(doc))
		doc = NULL;
	f->resolving = true;
	own = doc ? rc_node_copy(doc) : NULL;
	if (own) {
		base = extends_of(L, f, own);
		rc_node_remove(own, "extends");
	} else {
		rc_loc l = {f->name, 1, 1};

		own = rc_node_new_map(l);
		base = NULL;
	}
	f->body = rc_node_merge(base, own);
	rc_node_free(base);
	rc_node_free(own);
	f->resolving = false;
	f->resolved = true;
	return f->body;
}

/* ---- environments ---- */

static rc_env *new_env(rc_config *cfg)
{
	RC_GROW(cfg->envs, cfg->capenvs, cfg->nenvs + 1);
	return &cfg->envs[cfg->nenvs++];
}

/* Builds one environment from a merged (unsubstituted) body. The body is
 * consumed. Returns false if the environment was dropped. */
static void build_env(rc_loader *L, rc_env *env, rc_node *body,
		      const rc_node *entry_key)
{
	rc_subst_vars vars = {0};

	vars.item = env->generator ? &env->item : NULL;
	vars.project = L->cfg->project;
	vars.env_name = env->name;
	vars.env_branch = rc_kvlist_get(&env->item, "branch");
	vars.allow_env = L->cfg->allow_env;
	vars.nallow_env = L->cfg->nallow_env;
	rc_subst_body(L, body, &vars);
	rc_type_env(L, env, body, entry_key->loc, entry_key->span);
	/* the typed model keeps what it needs, locations included */
	rc_node_free(body);
}

static rc_node *entry_body(rc_loader *L, const rc_node *key,
			   const rc_node *entry, char **file_out)
{
	const rc_node *fn = rc_node_get(entry, "file");
	const rc_node *base = NULL;
	rc_node *inline_part, *merged;
	size_t i;

	*file_out = NULL;
	if (fn) {
		rc_ctx c = {L, "the environment entry", false};
		char *p = rc_scalar_text(&c, fn, "file");

		if (p && strstr(p, "{{")) {
			rc_diag_error(L->diags, fn->loc, fn->span,
				      "'file' is not substituted: name one file "
				      "and use placeholders inside it");
		} else if (p) {
			*file_out = rc_loader_resolve_path(L, NULL, p, fn->loc,
							   fn->span, true);
			if (*file_out)
				base = file_body(L, *file_out, fn->loc,
						 fn->span);
		}
		free(p);
		if (!base) {
			/* already reported: the file could not be used */
			free(*file_out);
			*file_out = NULL;
			return NULL;
		}
	}
	inline_part = rc_node_new_map(key->loc);
	for (i = 0; i < entry->n; i++) {
		const char *k = entry->keys[i]->str;
		bool skip = false;

		bool known = false;

		for (size_t j = 0; j < RC_ARRAY_SIZE(entry_only_keys); j++)
			skip |= !strcmp(k, entry_only_keys[j]);
		for (size_t j = 0; j < RC_ARRAY_SIZE(entry_keys); j++)
			known |= !strcmp(k, entry_keys[j]);
		if (!known)
			skip = true; /* reported by the entry's key check */
		if (!strcmp(k, "extends")) {
			rc_diag_error(L->diags, entry->keys[i]->loc,
				      entry->keys[i]->span,
				      "'extends' is not allowed in "
				      "reconcile.yaml: use 'file' to name the "
				      "environment's file");
			skip = true;
		}
		if (!skip)
			rc_node_map_append(inline_part,
					   rc_node_copy(entry->keys[i]),
					   rc_node_copy(entry->vals[i]));
	}
	merged = rc_node_merge(base, inline_part);
	rc_node_free(inline_part);
	if (base && *file_out) {
		/* a file nobody extends is not needed again: drop its merged
		 * body (it is re-made from the parsed text if it is) */
		rc_file_entry *f = rc_loader_file(L, *file_out, fn->loc,
						  fn->span);

		if (f && f->base_uses == 0) {
			rc_node_free(f->body);
			f->body = NULL;
			f->resolved = false;
		}
	}
	return merged;
}

static void item_sanitise(const char *branch, rc_buf *out)
{
	const char *p;
	bool dash = false;

	for (p = branch; *p; p++) {
		char ch = (char)tolower((unsigned char)*p);

		if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')) {
			if (dash && out->len)
				rc_buf_putc(out, '-');
			dash = false;
			rc_buf_putc(out, ch);
		} else {
			dash = true;
		}
	}
}

typedef struct {
	rc_kvlist *items;
	size_t n;
	bool sample;
} item_set;

static void items_free(item_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		rc_kvlist_free(&s->items[i]);
	free(s->items);
	memset(s, 0, sizeof(*s));
}

static void add_branch_item(item_set *s, const char *branch, const char *sha,
			    rc_loc loc)
{
	rc_buf name = RC_BUF_INIT_MAX(1024);
	char short_sha[8];
	rc_kvlist *it;

	s->items = rc_realloc(s->items, (s->n + 1) * sizeof(rc_kvlist));
	it = &s->items[s->n++];
	memset(it, 0, sizeof(*it));
	item_sanitise(branch, &name);
	snprintf(short_sha, sizeof(short_sha), "%.7s", sha);
	rc_kvlist_add(it, "name", name.ptr, loc);
	rc_kvlist_add(it, "branch", branch, loc);
	rc_kvlist_add(it, "sha", sha, loc);
	rc_kvlist_add(it, "short_sha", short_sha, loc);
	rc_buf_release(&name);
}

static const rc_repository *find_repo(const rc_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nrepositories; i++)
		if (!strcmp(cfg->repositories[i].name, name))
			return &cfg->repositories[i];
	return NULL;
}

/* The URL or path libgit2 should open for a repository. New string. */
static char *repo_location(rc_loader *L, const rc_node *at,
			   const char *repo_name, const rc_repository *repo)
{
	if (!strcmp(repo_name, "self")) {
		git_buf gb = {0};
		char *res;

		git_libgit2_init();
		if (git_repository_discover(&gb, L->dir, 0, NULL) < 0) {
			rc_diag_error(L->diags, at->loc, at->span,
				      "repository 'self': the configuration "
				      "directory '%s' is not in a git "
				      "repository",
				      L->dir);
			git_libgit2_shutdown();
			return NULL;
		}
		res = rc_strdup(gb.ptr);
		git_buf_dispose(&gb);
		git_libgit2_shutdown();
		return res;
	}
	if (rc_git_url_is_remote(repo->url) || !strncmp(repo->url, "file://", 7))
		return rc_strdup(repo->url);
	{
		rc_buf b = RC_BUF_INIT_MAX(PATH_MAX * 2);

		rc_buf_printf(&b, "%s/%s", L->dir, repo->url);
		return rc_buf_detach(&b);
	}
}

static bool generator_items(rc_loader *L, const rc_node *fe, item_set *out)
{
	static const char *const fe_keys[] = {"branches", "list"};
	static const char *const br_keys[] = {"repository", "match"};
	rc_ctx c = {L, "for_each", false};
	const rc_node *br, *list;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (!rc_expect_map(&c, fe, "for_each"))
		return false;
	rc_check_keys(&c, fe, fe_keys, 2);
	br = rc_node_get(fe, "branches");
	list = rc_node_get(fe, "list");
	if ((br != NULL) == (list != NULL)) {
		rc_diag_error(L->diags, fe->loc, fe->span,
			      "for_each needs exactly one of 'branches' or "
			      "'list'");
		return false;
	}
	if (list) {
		if (list->kind != RC_NODE_SEQ) {
			rc_diag_error(L->diags, list->loc, list->span,
				      "'list' in for_each must be a list of "
				      "items, not %s",
				      rc_node_kind_name(list));
			return false;
		}
		for (i = 0; i < list->n; i++) {
			const rc_node *it = list->vals[i];
			rc_kvlist *kv;
			if (it->kind != RC_NODE_MAP) {
				rc_diag_error(L->diags, it->loc, it->span,
					      "a for_each item must be a map, "
					      "not %s",
					      rc_node_kind_name(it));
				continue;
			}
			out->items = rc_realloc(out->items,
						(out->n + 1) * sizeof(rc_kvlist));
			kv = &out->items[out->n++];
			memset(kv, 0, sizeof(*kv));
			for (size_t j = 0; j < it->n; j++) {
				const rc_node *k = it->keys[j], *v = it->vals[j];

				if (!rc_is_var_name(k->str)) {
					rc_diag_error(L->diags, k->loc, k->span,
						      "item field '%s' is not a "
						      "valid name (letters, "
						      "digits, '_')",
						      k->str);
					continue;
				}
				if (v->kind != RC_NODE_SCALAR ||
				    rc_node_is_null(v)) {
					rc_diag_error(L->diags, v->loc, v->span,
						      "item field '%s' must be "
						      "a scalar, not %s",
						      k->str,
						      rc_node_kind_name(v));
					continue;
				}
				rc_kvlist_add(kv, k->str, v->str, v->loc);
			}
			if (!rc_kvlist_get(kv, "name")) {
				rc_diag_error(L->diags, it->loc, it->span,
					      "a for_each item needs a 'name'");
				rc_kvlist_free(kv);
				out->n--;
				continue;
			}
			for (size_t j = 0; j + 1 < out->n; j++) {
				if (strcmp(rc_kvlist_get(&out->items[j], "name"),
					   rc_kvlist_get(kv, "name")))
					continue;
				rc_diag_error(L->diags, it->loc, it->span,
					      "duplicate for_each item name "
					      "'%s'",
					      rc_kvlist_get(kv, "name"));
				/* dropped: it would only make a duplicate */
				rc_kvlist_free(kv);
				out->n--;
				break;
			}
		}
		return true;
	}
	{
		rc_ctx bc = {L, "for_each.branches", false};
		char *repo_name, *match, *loc = NULL;
		const rc_repository *repo = NULL;
		const rc_node *rn;
		rc_branch *branches = NULL;
		size_t nb = 0;
		bool ok = false;

		if (!rc_expect_map(&bc, br, "branches"))
			return false;
		rc_check_keys(&bc, br, br_keys, 2);
		repo_name = rc_get_str(&bc, br, "repository", true, br->loc,
				       br->span);
		match = rc_get_str(&bc, br, "match", true, br->loc, br->span);
		rn = rc_node_get(br, "repository");
		if (!repo_name || !match)
			goto out;
		if (strcmp(repo_name, "self") &&
		    !(repo = find_repo(L->cfg, repo_name))) {
			const char *names[64];
			size_t nn = 0;

			for (i = 0; i < L->cfg->nrepositories && nn < 63; i++)
				names[nn++] = L->cfg->repositories[i].name;
			names[nn++] = "self";
			{
				const char *hint =
					rc_did_you_mean(repo_name, names, nn);

				rc_diag_error(L->diags, rn->loc, rn->span,
					      "unknown repository '%s' (name "
					      "one from 'repositories', or "
					      "'self')%s%s%s",
					      repo_name,
					      hint ? "; did you mean '" : "",
					      hint ? hint : "",
					      hint ? "'?" : "");
			}
			goto out;
		}
		ok = true;
		if (repo && L->opts.offline && rc_git_url_is_remote(repo->url)) {
			out->sample = true;
			goto out;
		}
		if (!repo && L->opts.self_branches) {
			loc = rc_strdup("self");
		} else {
			loc = repo_location(L, rn, repo_name, repo);
			if (!loc) {
				ok = false;
				goto out;
			}
		}
		if ((!repo && L->opts.self_branches
			     ? L->opts.self_branches(L->opts.self_ctx,
						     &branches, &nb)
			     : rc_git_list_branches(&branches, &nb, loc)) < 0) {
			const rc_error *e = rc_error_last();

			if (L->opts.offline) {
				rc_diag_warning(L->diags, rn->loc, rn->span,
						"cannot list the branches of "
						"repository '%s': %s; checked "
						"with a sample branch",
						repo_name,
						e ? e->message : "unknown error");
				out->sample = true;
			} else {
				rc_diag_error(L->diags, rn->loc, rn->span,
					      "cannot list the branches of "
					      "repository '%s': %s",
					      repo_name,
					      e ? e->message : "unknown error");
				ok = false;
			}
			goto out;
		}
		for (i = 0; i < nb; i++)
			if (fnmatch(match, branches[i].name, 0) == 0)
				add_branch_item(out, branches[i].name,
						branches[i].sha, rn->loc);
		if (out->n == 0 && L->opts.offline)
			out->sample = true;
	out:
		if (out->sample)
			add_branch_item(out, "sample",
					"0000000000000000000000000000000000000000",
					br->loc);
		rc_branches_free(branches, nb);
		free(loc);
		free(repo_name);
		free(match);
		return ok;
	}
}

/* Whether the caller wants the environment `name` made by generator
 * `key`: it named neither (rc_load_opts.only) or one of them. */
static bool only_wants(const rc_loader *L, const char *key, const char *name)
{
	if (!L->opts.nonly)
		return true;
	for (size_t i = 0; i < L->opts.nonly; i++)
		if (!strcmp(L->opts.only[i], key) ||
		    !strcmp(L->opts.only[i], name))
			return true;
	return false;
}

static void expand_generator(rc_loader *L, const rc_node *key,
			     const rc_node *entry, const rc_node *body,
			     const char *file)
{
	const rc_node *fe = rc_node_get(entry, "for_each");
	const rc_node *name_tpl = rc_node_get(entry, "name");
	const rc_node *ttl_node = rc_node_get(entry, "ttl");
	rc_ctx c = {L, NULL, false};
	rc_buf what = RC_BUF_INIT_MAX(512);
	item_set items;
	long ttl = 0;
	size_t i;

	rc_buf_printf(&what, "environment '%s'", key->str);
	c.what = what.ptr;
	if (!name_tpl) {
		rc_diag_error(L->diags, key->loc, key->span,
			      "environment '%s' has for_each but no 'name' "
			      "(the name template of the environments it "
			      "makes, such as \"%s-{{ item.name }}\")",
			      key->str, key->str);
		goto done;
	}
	if (ttl_node)
		ttl = rc_get_duration(&c, entry, "ttl", 0);
	if (!generator_items(L, fe, &items))
		goto done;
	if (!items.sample) {
		L->cfg->generators = rc_realloc(
			L->cfg->generators,
			(L->cfg->ngenerators + 1) * sizeof(char *));
		L->cfg->generators[L->cfg->ngenerators++] = rc_strdup(key->str);
	}
	for (i = 0; i < items.n; i++) {
		rc_subst_vars vars = {0};
		rc_node *nm = rc_node_copy(name_tpl);
		size_t before = L->diags->nerrors;
		rc_env *env;

		vars.item = &items.items[i];
		vars.project = L->cfg->project;
		if (nm->kind != RC_NODE_SCALAR || rc_node_is_null(nm)) {
			rc_diag_error(L->diags, nm->loc, nm->span,
				      "'name' in %s must be a string, not %s",
				      what.ptr, rc_node_kind_name(nm));
			rc_node_free(nm);
			break;
		}
		rc_subst_scalar(L, nm, &vars, "name");
		if (L->diags->nerrors != before) {
			rc_node_free(nm);
			break;
		}
		if (!rc_is_dns_label(nm->str)) {
			rc_diag_error(L->diags, name_tpl->loc, name_tpl->span,
				      "environment name '%s' made for item "
				      "'%s' is not valid: use lower-case "
				      "letters, digits and '-' (at most 63)",
				      nm->str,
				      rc_kvlist_get(&items.items[i], "name"));
			rc_node_free(nm);
			continue;
		}
		if (!only_wants(L, key->str, nm->str) && !items.sample) {
			/* named, not built: the caller wants others (a
			   controller's cycle of one environment) */
			L->cfg->unbuilt = rc_realloc(
				L->cfg->unbuilt,
				(L->cfg->nunbuilt + 1) * sizeof(char *));
			L->cfg->unbuilt[L->cfg->nunbuilt++] =
				rc_strdup(nm->str);
			rc_node_free(nm);
			continue;
		}
		env = new_env(L->cfg);
		env->name = rc_strdup(nm->str);
		env->loc = key->loc;
		env->generator = rc_strdup(key->str);
		env->ttl = ttl;
		env->file = file ? rc_strdup(file) : NULL;
		for (size_t j = 0; j < items.items[i].n; j++)
			rc_kvlist_add(&env->item, items.items[i].items[j].key,
				      items.items[i].items[j].value,
				      items.items[i].items[j].loc);
		build_env(L, env, rc_node_copy(body), key);
		if (items.sample) {
			/* checked, not kept: validate never lists remote
			 * branches */
			rc_env_release(env);
			L->cfg->nenvs--;
		}
		rc_node_free(nm);
	}
	items_free(&items);
done:
	rc_buf_release(&what);
}

/* Whether the generator under entry key `key` must be expanded: always,
 * unless the caller named only environments that are other entries. */
static bool generator_wanted(rc_loader *L, const char *key)
{
	const rc_node *envs = rc_node_get(L->root, "environments");

	for (size_t i = 0; i < L->opts.nonly; i++) {
		const char *want = L->opts.only[i];
		const rc_node *e;

		if (!strcmp(want, key))
			return true;
		e = rc_node_get(envs, want);
		if (!e || rc_node_get(e, "for_each"))
			return true; /* maybe a generated name */
	}
	return L->opts.nonly == 0;
}

static void load_entry(rc_loader *L, const rc_node *key, const rc_node *entry)
{
	rc_buf what = RC_BUF_INIT_MAX(512);
	rc_ctx c = {L, NULL, false};
	rc_node *body;
	char *file = NULL;

	rc_buf_printf(&what, "environment '%s'", key->str);
	c.what = what.ptr;
	if (!rc_is_dns_label(key->str))
		rc_diag_error(L->diags, key->loc, key->span,
			      "environment name '%s' is not valid: use "
			      "lower-case letters, digits and '-' (at most "
			      "63, not starting or ending with '-')",
			      key->str);
	if (rc_node_is_null(entry)) {
		rc_diag_warning(L->diags, key->loc, key->span,
				"environment '%s' is null and is left out (a "
				"null value deletes its key)",
				key->str);
		goto done;
	}
	if (entry->kind != RC_NODE_MAP) {
		rc_diag_error(L->diags, entry->loc, entry->span,
			      "environment '%s' must be a map, not %s",
			      key->str, rc_node_kind_name(entry));
		goto done;
	}
	rc_check_keys(&c, entry, entry_keys, RC_ARRAY_SIZE(entry_keys));
	if (!rc_node_get(entry, "for_each")) {
		static const char *const gen_only[] = {"name", "ttl"};

		for (size_t i = 0; i < 2; i++) {
			const rc_node *k = rc_node_get_key(entry, gen_only[i]);

			if (k)
				rc_diag_error(L->diags, k->loc, k->span,
					      "'%s' in %s is only allowed with "
					      "'for_each'",
					      gen_only[i], what.ptr);
		}
	}
	if (rc_node_get(entry, "for_each") && !generator_wanted(L, key->str))
		goto done;
	body = entry_body(L, key, entry, &file);
	if (!body)
		goto done;
	if (rc_node_get(entry, "for_each")) {
		expand_generator(L, key, entry, body, file);
		rc_node_free(body);
	} else {
		rc_env *env = new_env(L->cfg);

		env->name = rc_strdup(key->str);
		env->loc = key->loc;
		env->file = file;
		file = NULL;
		build_env(L, env, body, key);
	}
done:
	free(file);
	rc_buf_release(&what);
}

/* ---- root ---- */

static void load_root(rc_loader *L, const rc_node *root, rc_loc at)
{
	rc_ctx c = {L, "reconcile.yaml", false};
	const rc_node *n;
	size_t i;

	rc_check_keys(&c, root, root_keys, RC_ARRAY_SIZE(root_keys));
	n = rc_node_get(root, "version");
	if (!n) {
		rc_diag_error(L->diags, at, 1,
			      "reconcile.yaml is missing the required key "
			      "'version' (write 'version: 1')");
	} else {
		L->cfg->version = rc_get_int(&c, root, "version", 0, 0, INT_MAX);
		if (L->cfg->version != 1 && L->cfg->version != 0)
			rc_diag_error(L->diags, n->loc, n->span,
				      "unsupported version %d: this reconcile "
				      "reads version 1",
				      L->cfg->version);
	}
	L->cfg->project = rc_get_str(&c, root, "project", true, at, 1);
	if (L->cfg->project && !rc_is_dns_label(L->cfg->project)) {
		n = rc_node_get(root, "project");
		rc_diag_error(L->diags, n->loc, n->span,
			      "project name '%s' is not valid: use lower-case "
			      "letters, digits and '-'",
			      L->cfg->project);
	}
	if ((n = rc_node_get(root, "repositories")) != NULL &&
	    rc_expect_map(&c, n, "repositories")) {
		L->cfg->repositories = rc_calloc(n->n, sizeof(rc_repository));
		for (i = 0; i < n->n; i++) {
			const rc_node *k = n->keys[i], *v = n->vals[i];
			rc_buf w = RC_BUF_INIT_MAX(512);
			rc_ctx rcx = {L, NULL, false};
			static const char *const rkeys[] = {"url"};
			char *url;

			rc_buf_printf(&w, "repository '%s'", k->str);
			rcx.what = w.ptr;
			if (!strcmp(k->str, "self"))
				rc_diag_error(L->diags, k->loc, k->span,
					      "'self' is reserved: it names "
					      "the configuration repository");
			if (rc_expect_map(&rcx, v, k->str)) {
				rc_check_keys(&rcx, v, rkeys, 1);
				url = rc_get_str(&rcx, v, "url", true, k->loc,
						 k->span);
				if (url) {
					rc_repository *r =
						&L->cfg->repositories
							 [L->cfg->nrepositories++];

					r->name = rc_strdup(k->str);
					r->url = url;
					r->loc = k->loc;
					if (strstr(url, "://") &&
					    strncmp(url, "https://", 8) &&
					    strncmp(url, "http://", 7) &&
					    strncmp(url, "git://", 6) &&
					    strncmp(url, "ssh://", 6) &&
					    strncmp(url, "file://", 7)) {
						const rc_node *un =
							rc_node_get(v, "url");

						rc_diag_error(
							L->diags, un->loc,
							un->span,
							"unsupported repository "
							"URL '%s': use https://, "
							"http://, git://, ssh://, "
							"file://, user@host:path "
							"or a path in the "
							"repository",
							url);
					} else if (!rc_git_url_is_remote(url) &&
					    strncmp(url, "file://", 7)) {
						char *rel = rc_loader_resolve_path(
							L, NULL, url,
							rc_node_get(v, "url")->loc,
							rc_node_get(v, "url")->span,
							false);
						free(rel);
					}
				}
			}
			rc_buf_release(&w);
		}
	}
	if ((n = rc_node_get(root, "allow_env")) != NULL) {
		rc_argv a;

		if (rc_get_argv(&c, root, "allow_env", &a, false, "variable names")) {
			for (i = 0; i < a.n; i++)
				if (!rc_is_var_name(a.v[i]))
					rc_diag_error(L->diags, n->vals[i]->loc,
						      n->vals[i]->span,
						      "'%s' is not a valid "
						      "variable name",
						      a.v[i]);
			L->cfg->allow_env = a.v;
			L->cfg->nallow_env = a.n;
		}
	}
	if ((n = rc_node_get(root, "recipients")) != NULL)
		rc_type_recipients(L, n, "recipients in reconcile.yaml",
				   &L->cfg->recipients, &L->cfg->recipients_loc);
	if ((n = rc_node_get(root, "notify")) != NULL)
		rc_type_notify(L, n);
	if ((n = rc_node_get(root, "policy")) != NULL)
		rc_type_root_policy(L, n);
	n = rc_node_get(root, "environments");
	if (!n) {
		rc_diag_error(L->diags, at, 1,
			      "reconcile.yaml is missing the required key "
			      "'environments'");
		return;
	}
	if (!rc_expect_map(&c, n, "environments"))
		return;
	for (i = 0; i < n->n; i++)
		load_entry(L, n->keys[i], n->vals[i]);
}

/* ---- checks across environments ---- */

static void check_names(rc_loader *L)
{
	rc_config *cfg = L->cfg;
	rc_strmap seen = RC_STRMAP_INIT;
	size_t i;

	for (i = 0; i < cfg->nenvs; i++) {
		const rc_env *e = &cfg->envs[i];

		if (!rc_strmap_get(&seen, e->name)) {
			rc_strmap_put(&seen, e->name, (void *)(uintptr_t)e);
			continue;
		}
		rc_diag_error(L->diags, e->loc,
			      (int)strlen(e->generator ? e->generator : e->name),
			      "environment '%s' is defined twice%s%s%s", e->name,
			      e->generator ? " (made by for_each of '" : "",
			      e->generator ? e->generator : "",
			      e->generator ? "')" : "");
	}
	rc_strmap_release(&seen);
}

/* The environment graph for depends_on checks: names (static and
 * generated) and entry keys -> the first environment with that name or
 * made by that entry. */
typedef struct {
	rc_strmap by_name;  /* environment name -> rc_env */
	rc_strmap by_entry; /* entry key -> first rc_env of the entry */
} env_index;

static void index_envs(const rc_config *cfg, env_index *x)
{
	memset(x, 0, sizeof(*x));
	for (size_t i = 0; i < cfg->nenvs; i++) {
		rc_env *e = &cfg->envs[i];
		const char *key = e->generator ? e->generator : e->name;

		if (!rc_strmap_get(&x->by_name, e->name))
			rc_strmap_put(&x->by_name, e->name, e);
		if (!rc_strmap_get(&x->by_entry, key))
			rc_strmap_put(&x->by_entry, key, e);
	}
}

/* The entry key an environment name belongs to. */
static const char *entry_of(const env_index *x, const char *name)
{
	const rc_env *e = rc_strmap_get(&x->by_name, name);

	if (e)
		return e->generator ? e->generator : e->name;
	return name;
}

static bool dep_cycle(const env_index *x, const char *start, const char *cur,
		      int depth, rc_buf *path)
{
	const rc_env *e = rc_strmap_get(&x->by_entry, cur);

	if (!e || depth > 64)
		return false;
	for (size_t j = 0; j < e->ndepends_on; j++) {
		const char *dep = entry_of(x, e->depends_on[j]);
		size_t mark = path->len;

		rc_buf_printf(path, " -> %s", dep);
		if (!strcmp(dep, start))
			return true;
		if (dep_cycle(x, start, dep, depth + 1, path))
			return true;
		rc_buf_truncate(path, mark);
	}
	return false;
}

static void check_depends(rc_loader *L, const rc_node *envs)
{
	rc_config *cfg = L->cfg;
	env_index x;
	size_t i, j;
	bool any = false;

	for (i = 0; i < cfg->nenvs; i++)
		any |= cfg->envs[i].ndepends_on > 0;
	if (!any)
		return;
	index_envs(cfg, &x);
	for (i = 0; i < cfg->nenvs; i++) {
		const rc_env *e = &cfg->envs[i];

		for (j = 0; j < e->ndepends_on; j++) {
			rc_loc loc = e->depends_on_loc[j];
			int span = (int)strlen(e->depends_on[j]);

			if (!strcmp(e->depends_on[j], e->name) ||
			    (e->generator &&
			     !strcmp(e->depends_on[j], e->generator))) {
				rc_diag_error(L->diags, loc, span,
					      "environment '%s' depends on "
					      "itself",
					      e->name);
			} else if (!(envs && rc_node_get(envs, e->depends_on[j])) &&
				   !rc_strmap_get(&x.by_name,
						  e->depends_on[j])) {
				const char *names[256];
				size_t nn = 0;
				const char *hint;

				for (size_t k = 0; envs && k < envs->n && nn < 256;
				     k++)
					names[nn++] = envs->keys[k]->str;
				hint = rc_did_you_mean(e->depends_on[j], names,
						       nn);
				rc_diag_error(L->diags, loc, span,
					      "depends_on names unknown "
					      "environment '%s'%s%s%s",
					      e->depends_on[j],
					      hint ? "; did you mean '" : "",
					      hint ? hint : "",
					      hint ? "'?" : "");
			}
		}
	}
	/* cycles, over the entries of reconcile.yaml */
	for (i = 0; envs && i < envs->n; i++) {
		rc_buf path = RC_BUF_INIT_MAX(8192);
		const char *key = envs->keys[i]->str;

		rc_buf_puts(&path, key);
		if (dep_cycle(&x, key, key, 0, &path)) {
			rc_diag_error(L->diags, envs->keys[i]->loc,
				      envs->keys[i]->span,
				      "depends_on makes a cycle: %s", path.ptr);
			rc_buf_release(&path);
			break; /* one report is enough */
		}
		rc_buf_release(&path);
	}
	rc_strmap_release(&x.by_name);
	rc_strmap_release(&x.by_entry);
}

/* ---- entry point ---- */

int rc_config_load(rc_config **out, const char *dir, const rc_load_opts *opts,
		   rc_diags *diags)
{
	rc_loader L;
	rc_config *cfg = rc_calloc(1, sizeof(*cfg));
	rc_file_entry *root;
	rc_loc none = {0};
	char real[PATH_MAX];
	const rc_node *doc = NULL;
	size_t i;

	memset(&L, 0, sizeof(L));
	L.dir = dir;
	L.diags = diags;
	if (opts)
		L.opts = *opts;
	L.cfg = cfg;
	cfg->dir = rc_strdup(dir);
	*out = cfg;

	if (!realpath(dir, real)) {
		none.file = rc_diags_intern(diags, dir);
		rc_diag_error(diags, none, 1,
			      "cannot open the configuration directory: %s",
			      strerror(errno));
		return -1;
	}
	L.root_real = rc_strdup(real);
	{
		rc_buf p = RC_BUF_INIT_MAX(PATH_MAX * 2);
		struct stat st;

		rc_buf_printf(&p, "%s/reconcile.yaml", dir);
		if (stat(p.ptr, &st) < 0) {
			char *disp = rc_loader_display(&L, "reconcile.yaml");

			none.file = rc_diags_intern(diags, disp);
			free(disp);
			rc_diag_error(diags, none, 1,
				      "cannot find reconcile.yaml: is '%s' a "
				      "configuration repository?",
				      dir);
			rc_buf_release(&p);
			goto done;
		}
		rc_buf_release(&p);
	}
	root = rc_loader_file(&L, "reconcile.yaml", none, 1);
	if (root) {
		rc_loc at = {root->name, 1, 1};

		if (root->ndocs > 1) {
			rc_diag_error(diags, at, 1,
				      "reconcile.yaml must hold one YAML "
				      "document, not %zu",
				      root->ndocs);
		}
		doc = root->ndocs ? root->docs[0] : NULL;
		if (doc)
			at = doc->loc;
		if (!doc) {
			rc_diag_error(diags, at, 1, "reconcile.yaml is empty");
		} else if (doc->kind != RC_NODE_MAP) {
			rc_diag_error(diags, doc->loc, doc->span,
				      "reconcile.yaml must hold a map, not %s",
				      rc_node_kind_name(doc));
		} else {
			const rc_node *envs = rc_node_get(doc, "environments");

			if (envs && envs->kind != RC_NODE_MAP)
				envs = NULL;
			L.root = doc;
			load_root(&L, doc, at);
			check_names(&L);
			check_depends(&L, envs);
			rc_check_notify(&L);
		}
	}
done:
	for (i = 0; i < L.nfiles; i++) {
		rc_file_entry *f = L.files[i];

		for (size_t d = 0; d < f->ndocs; d++)
			rc_node_free(f->docs[d]);
		free(f->docs);
		rc_node_free(f->body);
		free(f->rel);
		free(f);
	}
	free(L.files);
	rc_strmap_release(&L.file_index);
	free(L.root_real);
	rc_diags_sort(diags);
	return diags->nerrors ? -1 : 0;
}

void rc_config_free(rc_config *cfg)
{
	size_t i;

	if (!cfg)
		return;
	for (i = 0; i < cfg->nenvs; i++)
		rc_env_release(&cfg->envs[i]);
	free(cfg->envs);
	for (i = 0; i < cfg->nrepositories; i++) {
		free(cfg->repositories[i].name);
		free(cfg->repositories[i].url);
	}
	free(cfg->repositories);
	for (i = 0; i < cfg->nallow_env; i++)
		free(cfg->allow_env[i]);
	free(cfg->allow_env);
	rc_verify_release(&cfg->verify);
	rc_notify_targets_free(cfg->notify, cfg->nnotify);
	for (i = 0; i < cfg->ngenerators; i++)
		free(cfg->generators[i]);
	free(cfg->generators);
	rc_argv_free(&cfg->recipients);
	free(cfg->recipients_loc);
	for (i = 0; i < cfg->nunbuilt; i++)
		free(cfg->unbuilt[i]);
	free(cfg->unbuilt);
	free(cfg->project);
	free(cfg->dir);
	free(cfg);
}

const rc_env *rc_config_env(const rc_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nenvs; i++)
		if (!strcmp(cfg->envs[i].name, name))
			return &cfg->envs[i];
	return NULL;
}
