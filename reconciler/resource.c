#include "reconciler/common.h"
#include "reconciler/buf.h"
#include "reconciler/resource.h"

#include <openssl/evp.h>

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

char *rc_json_canonical(const json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS |
					JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));

	return s ? s : rc_strdup("null");
}

char *rc_json_fingerprint(const json_t *v)
{
	char *canon = rc_json_canonical(v);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	rc_buf out = RC_BUF_INIT_MAX(128);

	EVP_Digest(canon, strlen(canon), md, &mdlen, EVP_sha256(), NULL);
	rc_buf_puts(&out, "sha256:");
	for (unsigned int i = 0; i < mdlen; i++)
		rc_buf_printf(&out, "%02x", md[i]);
	free(canon);
	return rc_buf_detach(&out);
}
