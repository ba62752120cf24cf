/*
 * The object store: a hash map from (resource, namespace, name) to the
 * object, a key-sorted index per resource for lists and pages, one
 * resourceVersion counter, and the recent events that watches replay.
 */
#include "tests/fake/kube/kube.h"

static size_t kind_no(const struct kf_kind *k)
{
	return (size_t)(k - kf_kinds);
}

static uint64_t hash_key(const struct kf_kind *k, const char *key)
{
	uint64_t h = 1469598103934665603ULL ^ kind_no(k);

	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	return h;
}

static void make_key(rc_buf *b, const char *ns, const char *name)
{
	if (ns && *ns)
		rc_buf_printf(b, "%s/%s", ns, name);
	else
		rc_buf_puts(b, name);
}

void kf_store_init(struct kf_store *s, size_t history)
{
	memset(s, 0, sizeof(*s));
	s->nbuckets = 1024;
	s->buckets = rc_calloc(s->nbuckets, sizeof(*s->buckets));
	s->idx = rc_calloc(kf_nkinds, sizeof(*s->idx));
	s->ring_cap = history ? history : 1;
	s->ring = rc_calloc(s->ring_cap, sizeof(*s->ring));
}

static void event_release(struct kf_event *e)
{
	free(e->ns);
	free(e->line);
	json_decref(e->obj);
	json_decref(e->prev);
	memset(e, 0, sizeof(*e));
}

static void obj_free(struct kf_obj *o)
{
	free(o->key);
	free(o->ns);
	free(o->name);
	json_decref(o->json);
	free(o);
}

void kf_store_release(struct kf_store *s)
{
	for (size_t i = 0; i < s->nbuckets; i++) {
		struct kf_obj *o = s->buckets[i], *next;

		for (; o; o = next) {
			next = o->next;
			obj_free(o);
		}
	}
	free(s->buckets);
	for (size_t i = 0; i < kf_nkinds; i++)
		free(s->idx[i].v);
	free(s->idx);
	for (size_t i = 0; i < s->ring_n; i++)
		event_release(&s->ring[(s->ring_start + i) % s->ring_cap]);
	free(s->ring);
	memset(s, 0, sizeof(*s));
}

struct kf_obj *kf_store_get(struct kf_store *s, const struct kf_kind *k,
			    const char *ns, const char *name)
{
	rc_buf key = RC_BUF_INIT;
	uint64_t h;
	struct kf_obj *o;

	make_key(&key, k->namespaced ? ns : NULL, name);
	h = hash_key(k, key.ptr);
	for (o = s->buckets[h & (s->nbuckets - 1)]; o; o = o->next)
		if (o->hash == h && o->kind == k && !strcmp(o->key, key.ptr))
			break;
	rc_buf_release(&key);
	return o;
}

static void grow_buckets(struct kf_store *s)
{
	size_t n = s->nbuckets * 2;
	struct kf_obj **b = rc_calloc(n, sizeof(*b));

	for (size_t i = 0; i < s->nbuckets; i++) {
		struct kf_obj *o = s->buckets[i], *next;

		for (; o; o = next) {
			next = o->next;
			o->next = b[o->hash & (n - 1)];
			b[o->hash & (n - 1)] = o;
		}
	}
	free(s->buckets);
	s->buckets = b;
	s->nbuckets = n;
}

static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

size_t kf_index_lower(const struct kf_index *ix, const char *key, size_t len)
{
	size_t lo = 0, hi = ix->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *k = ix->v[mid]->key;

		if (key_cmp(k, strlen(k), key, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct kf_index *kf_store_index(struct kf_store *s, const struct kf_kind *k)
{
	return &s->idx[kind_no(k)];
}

static void record(struct kf_store *s, enum kf_event_type type,
		   struct kf_obj *o, json_t *prev)
{
	static const char *const names[] = {"ADDED", "MODIFIED", "DELETED"};
	struct kf_event *e;
	json_t *ev;

	if (s->ring_n == s->ring_cap) {
		e = &s->ring[s->ring_start];
		s->horizon = e->rv;
		event_release(e);
		s->ring_start = (s->ring_start + 1) % s->ring_cap;
		s->ring_n--;
	}
	e = &s->ring[(s->ring_start + s->ring_n++) % s->ring_cap];
	e->rv = s->rv;
	e->type = type;
	e->kind = o->kind;
	e->ns = rc_strdup(o->ns);
	e->obj = json_incref(o->json);
	e->prev = prev;
	ev = json_pack("{s:s,s:O}", "type", names[type], "object", o->json);
	e->line = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	e->len = strlen(e->line);
	e->line = rc_realloc(e->line, e->len + 2);
	e->line[e->len++] = '\n';
	e->line[e->len] = '\0';
}

static void set_rv(json_t *obj, uint64_t rv)
{
	char num[32];
	json_t *meta = kf_jmkobj(obj, "metadata");
	bool had = json_object_get(meta, "resourceVersion") != NULL;

	snprintf(num, sizeof(num), "%llu", (unsigned long long)rv);
	json_object_set_new(meta, "resourceVersion", json_string(num));
	if (!had)
		kf_order_meta(meta);
}

struct kf_obj *kf_store_put(struct kf_store *s, const struct kf_kind *k,
			    const char *ns, const char *name, json_t *obj)
{
	struct kf_obj *o = kf_store_get(s, k, ns, name);
	enum kf_event_type type = KF_MODIFIED;
	json_t *prev = NULL;

	s->rv++;
	set_rv(obj, s->rv);
	if (!o) {
		rc_buf key = RC_BUF_INIT;
		struct kf_index *ix = kf_store_index(s, k);
		size_t at;

		type = KF_ADDED;
		o = rc_calloc(1, sizeof(*o));
		o->kind = k;
		make_key(&key, k->namespaced ? ns : NULL, name);
		o->key = rc_buf_detach(&key);
		o->ns = rc_strdup(k->namespaced && ns ? ns : "");
		o->name = rc_strdup(name);
		o->hash = hash_key(k, o->key);
		if (s->count + 1 > s->nbuckets)
			grow_buckets(s);
		o->next = s->buckets[o->hash & (s->nbuckets - 1)];
		s->buckets[o->hash & (s->nbuckets - 1)] = o;
		s->count++;
		at = kf_index_lower(ix, o->key, strlen(o->key));
		RC_GROW(ix->v, ix->cap, ix->n + 1);
		memmove(&ix->v[at + 1], &ix->v[at],
			(ix->n - at) * sizeof(*ix->v));
		ix->v[at] = o;
		ix->n++;
	} else {
		prev = o->json;
	}
	o->json = obj;
	o->rv = s->rv;
	record(s, type, o, prev);
	return o;
}

void kf_store_remove(struct kf_store *s, struct kf_obj *o)
{
	struct kf_index *ix = kf_store_index(s, o->kind);
	struct kf_obj **pp = &s->buckets[o->hash & (s->nbuckets - 1)];
	size_t at = kf_index_lower(ix, o->key, strlen(o->key));
	json_t *last = json_deep_copy(o->json);

	s->rv++;
	set_rv(last, s->rv);
	json_decref(o->json);
	o->json = last;
	record(s, KF_DELETED, o, NULL);
	while (*pp != o)
		pp = &(*pp)->next;
	*pp = o->next;
	s->count--;
	assert(at < ix->n && ix->v[at] == o);
	memmove(&ix->v[at], &ix->v[at + 1], (ix->n - at - 1) * sizeof(*ix->v));
	ix->n--;
	obj_free(o);
}

void kf_store_compact(struct kf_store *s)
{
	for (size_t i = 0; i < s->ring_n; i++)
		event_release(&s->ring[(s->ring_start + i) % s->ring_cap]);
	s->ring_start = s->ring_n = 0;
	s->horizon = s->rv;
}

uint64_t kf_store_oldest(const struct kf_store *s)
{
	return s->horizon;
}
