#include "reconciler/base/common.h"
#include "reconciler/base/strmap.h"

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ULL;
	}
	return h;
}

static size_t slot(const rc_strmap *m, const char *key)
{
	size_t i = (size_t)hash(key) & (m->cap - 1);

	while (m->keys[i] && strcmp(m->keys[i], key))
		i = (i + 1) & (m->cap - 1);
	return i;
}

void *rc_strmap_get(const rc_strmap *m, const char *key)
{
	size_t i;

	if (!m->cap)
		return NULL;
	i = slot(m, key);
	return m->keys[i] ? m->vals[i] : NULL;
}

static void resize(rc_strmap *m, size_t cap)
{
	rc_strmap n = {rc_calloc(cap, sizeof(char *)),
		       rc_calloc(cap, sizeof(void *)), 0, cap};

	for (size_t i = 0; i < m->cap; i++)
		if (m->keys[i])
			rc_strmap_put(&n, m->keys[i], m->vals[i]);
	free(m->keys);
	free(m->vals);
	*m = n;
}

void rc_strmap_put(rc_strmap *m, const char *key, void *val)
{
	size_t i;

	if ((m->n + 1) * 4 > m->cap * 3)
		resize(m, m->cap ? m->cap * 2 : 16);
	i = slot(m, key);
	if (!m->keys[i]) {
		m->keys[i] = key;
		m->n++;
	}
	m->vals[i] = val;
}

void rc_strmap_release(rc_strmap *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}
