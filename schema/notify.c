/* The top-level `notify:` list of reconcile.yaml: where the team is told
 * what an apply did. The URLs are secret references, never literals. */
#include "reconciler/base/common.h"
#include "schema/loader.h"

#include <fnmatch.h>

static const char *const event_names[] = {"applied", "failed", "drift",
					  "waiting", "rolled_back"};

const char *rc_notify_event_name(rc_notify_event_kind k)
{
	return (size_t)k < RC_ARRAY_SIZE(event_names) ? event_names[k]
						      : "unknown";
}

static bool is_pattern(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

bool rc_notify_target_wants(const rc_notify_target *t, const char *env,
			    const char *entry)
{
	if (!t->nenvironments)
		return true;
	for (size_t i = 0; i < t->nenvironments; i++) {
		const char *w = t->environments[i];

		if (!strcmp(w, env) || (entry && !strcmp(w, entry)) ||
		    (is_pattern(w) && fnmatch(w, env, 0) == 0))
			return true;
	}
	return false;
}

/* slack: {url: REF} or webhook: {url: REF} into t. */
static bool type_endpoint(rc_loader *L, rc_notify_target *t, const char *key,
			  const rc_node *v)
{
	static const char *const keys[] = {"url"};
	rc_buf what = RC_BUF_INIT_MAX(512);
	rc_ctx c = {L, NULL, false};
	const rc_node *u;
	bool ok = false;

	rc_buf_printf(&what, "%s of notify '%s'", key, t->name);
	c.what = what.ptr;
	if (!rc_expect_map(&c, v, key))
		goto out;
	rc_check_keys(&c, v, keys, 1);
	if (!(u = rc_node_get(v, "url"))) {
		rc_diag_error(L->diags, v->loc, 1,
			      "%s is missing the required key 'url' (a "
			      "secret reference: {env: NAME} or {file: PATH})",
			      what.ptr);
		goto out;
	}
	rc_buf_clear(&what);
	rc_buf_printf(&what, "the url of notify '%s'", t->name);
	t->url.name = rc_strdup("url");
	if (rc_type_secret_ref(L, NULL, what.ptr, u, &t->url)) {
		t->url.loc = u->loc;
		ok = true;
	}
out:
	rc_buf_release(&what);
	return ok;
}

static void type_entry(rc_loader *L, const rc_node *m, rc_notify_target *t)
{
	static const char *const keys[] = {"name", "slack", "webhook",
					   "events", "environments"};
	rc_ctx c = {L, "notify", false};
	rc_buf what = RC_BUF_INIT_MAX(512);
	const rc_node *slack, *hook, *n;
	rc_argv a;

	if (!rc_expect_map(&c, m, "notify entry"))
		return;
	t->loc = m->loc;
	t->name = rc_get_str(&c, m, "name", true, m->loc, 1);
	if (t->name && !rc_is_dns_label(t->name)) {
		n = rc_node_get(m, "name");
		rc_diag_error(L->diags, n->loc, n->span,
			      "notify name '%s' is not valid: use lower-case "
			      "letters, digits and '-'",
			      t->name);
	}
	if (!t->name)
		t->name = rc_strdup("?");
	rc_buf_printf(&what, "notify '%s'", t->name);
	c.what = what.ptr;
	rc_check_keys(&c, m, keys, RC_ARRAY_SIZE(keys));
	slack = rc_node_get(m, "slack");
	hook = rc_node_get(m, "webhook");
	if (!!slack == !!hook)
		rc_diag_error(L->diags, m->loc, 1,
			      "notify '%s' must have exactly one of 'slack' "
			      "or 'webhook'",
			      t->name);
	else if (slack)
		t->kind = RC_NOTIFY_SLACK, type_endpoint(L, t, "slack", slack);
	else
		t->kind = RC_NOTIFY_WEBHOOK, type_endpoint(L, t, "webhook", hook);

	t->events = RC_NOTIFY_ALL_EVENTS;
	if ((n = rc_node_get(m, "events")) &&
	    rc_get_argv(&c, m, "events", &a, true, "event names")) {
		t->events = 0;
		for (size_t i = 0; i < a.n; i++) {
			size_t k;

			for (k = 0; k < RC_ARRAY_SIZE(event_names); k++)
				if (!strcmp(a.v[i], event_names[k]))
					break;
			if (k < RC_ARRAY_SIZE(event_names)) {
				t->events |= 1u << k;
				continue;
			}
			const char *hint = rc_did_you_mean(
				a.v[i], event_names, RC_ARRAY_SIZE(event_names));

			rc_diag_error(L->diags, n->vals[i]->loc,
				      n->vals[i]->span,
				      "unknown event '%s' in notify '%s'%s%s%s "
				      "(events: applied, failed, drift, "
				      "waiting, rolled_back)",
				      a.v[i], t->name,
				      hint ? "; did you mean '" : "",
				      hint ? hint : "", hint ? "'?" : "");
		}
		rc_argv_free(&a);
	}
	if (rc_node_get(m, "environments") &&
	    rc_get_argv(&c, m, "environments", &a, true, "environment names")) {
		t->environments = a.v;
		t->nenvironments = a.n;
	}
	rc_buf_release(&what);
}

void rc_type_notify(rc_loader *L, const rc_node *list)
{
	rc_config *cfg = L->cfg;

	if (list->kind != RC_NODE_SEQ) {
		rc_diag_error(L->diags, list->loc, 1,
			      "'notify' must be a list of notification "
			      "targets, not %s",
			      rc_node_kind_name(list));
		return;
	}
	cfg->notify = rc_calloc(list->n + 1, sizeof(rc_notify_target));
	for (size_t i = 0; i < list->n; i++) {
		rc_notify_target *t = &cfg->notify[cfg->nnotify++];

		type_entry(L, list->vals[i], t);
		for (size_t j = 0; j + 1 < cfg->nnotify; j++)
			if (t->name && !strcmp(cfg->notify[j].name, t->name) &&
			    strcmp(t->name, "?"))
				rc_diag_error(L->diags, list->vals[i]->loc, 1,
					      "notify '%s' is defined twice",
					      t->name);
	}
}

void rc_check_notify(rc_loader *L)
{
	const rc_config *cfg = L->cfg;
	const rc_node *list = rc_node_get(L->root, "notify");

	for (size_t i = 0; list && i < cfg->nnotify; i++) {
		const rc_notify_target *t = &cfg->notify[i];
		const rc_node *envs = rc_node_get(list->vals[i], "environments");

		for (size_t j = 0; envs && j < t->nenvironments; j++) {
			const char *w = t->environments[j];
			bool found = is_pattern(w);

			for (size_t k = 0; k < cfg->nenvs && !found; k++)
				found = !strcmp(cfg->envs[k].name, w) ||
					(cfg->envs[k].generator &&
					 !strcmp(cfg->envs[k].generator, w));
			if (!found)
				rc_diag_error(L->diags, envs->vals[j]->loc,
					      envs->vals[j]->span,
					      "notify '%s' names environment "
					      "'%s', which is not defined",
					      t->name, w);
		}
	}
}

void rc_notify_targets_free(rc_notify_target *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(t[i].name);
		free(t[i].url.name);
		free(t[i].url.ref);
		free(t[i].url.ciphertext);
		for (size_t j = 0; j < t[i].nenvironments; j++)
			free(t[i].environments[j]);
		free(t[i].environments);
	}
	free(t);
}
