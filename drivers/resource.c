#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "drivers/resource.h"


rc_resource *rc_resource_set_add(rc_resource_set *s, const char *env,
				 const char *driver, const char *kind,
				 const char *name, json_t *body)
{
	rc_buf key = RC_BUF_INIT_MAX(4096);
	rc_resource *r;

	RC_GROW(s->items, s->cap, s->n + 1);
	r = &s->items[s->n++];
	memset(r, 0, sizeof(*r));
	rc_buf_printf(&key, "%s/%s/%s", env, kind, name);
	r->key = rc_buf_detach(&key);
	r->env = rc_strdup(env);
	r->driver = rc_strdup(driver);
	r->kind = rc_strdup(kind);
	r->name = rc_strdup(name);
	r->body = body;
	return r;
}

rc_resource *rc_resource_set_find(const rc_resource_set *s, const char *key)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->items[i].key, key))
			return &s->items[i];
	return NULL;
}

void rc_resource_add_dep(rc_resource *r, const char *key)
{
	for (size_t i = 0; i < r->ndeps; i++)
		if (!strcmp(r->deps[i], key))
			return;
	r->deps = rc_realloc(r->deps, (r->ndeps + 1) * sizeof(char *));
	r->deps[r->ndeps++] = rc_strdup(key);
}

void rc_resource_set_health(rc_resource *r, bool unhealthy, const char *fmt,
			    ...)
{
	rc_buf b = RC_BUF_INIT_MAX(256);
	va_list ap;

	va_start(ap, fmt);
	rc_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	free(r->health);
	r->health = rc_buf_detach(&b);
	r->unhealthy = unhealthy;
}

void rc_resource_set_truncate(rc_resource_set *s, size_t n)
{
	for (size_t i = n; i < s->n; i++) {
		rc_resource *r = &s->items[i];

		free(r->key);
		free(r->env);
		free(r->driver);
		free(r->kind);
		free(r->name);
		json_decref(r->body);
		for (size_t j = 0; j < r->ndeps; j++)
			free(r->deps[j]);
		free(r->deps);
		free(r->fingerprint);
		free(r->health);
	}
	if (n < s->n)
		s->n = n;
}

void rc_resource_set_release(rc_resource_set *s)
{
	rc_resource_set_truncate(s, 0);
	free(s->items);
	memset(s, 0, sizeof(*s));
}

static const char *const op_names[] = {"create", "update", "delete",
				       "replace", "run"};

const char *rc_op_name(rc_op op)
{
	return op_names[op];
}

void rc_changes_release(rc_changes *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->items[i].path);
		json_decref(c->items[i].old);
		json_decref(c->items[i].new_);
	}
	free(c->items);
	memset(c, 0, sizeof(*c));
}

void rc_action_release(rc_action *a)
{
	free(a->id);
	free(a->key);
	free(a->env);
	free(a->driver);
	free(a->kind);
	free(a->name);
	json_decref(a->desired);
	json_decref(a->actual);
	free(a->fingerprint);
	rc_changes_release(&a->changes);
	for (size_t j = 0; j < a->ndeps; j++)
		free(a->deps[j]);
	free(a->deps);
	free(a->reason);
	free(a->health);
}
