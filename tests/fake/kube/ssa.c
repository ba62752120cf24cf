/*
 * Field ownership as the API server keeps it (structured-merge-diff):
 * field sets in the fieldsV1 encoding, the managedFields entries, the
 * Update bookkeeping, server-side apply (merge, conflicts, pruning of
 * fields a manager stopped applying) and the three patch formats.
 *
 * Inside this file a field set is held in an "internal" form: every node
 * is a JSON object whose "." key, when present, makes the node's own path
 * a member, and whose other keys are child path elements ("f:name",
 * "k:{...}", "v:..."). The wire form differs only in leaves: a member
 * without children is written as {} (fs_wire, fs_unwire).
 */
#include "tests/fake/kube/kube.h"

enum list_type { LT_ATOMIC, LT_MAP, LT_SET };

struct ltype {
	enum list_type type;
	const char *keys[3];
};

#define MAX_DEPTH 64

struct ctx {
	const struct kf_kind *k;
	const char *names[MAX_DEPTH];
	size_t depth;
};

static bool push(struct ctx *c, const char *name)
{
	if (c->depth >= MAX_DEPTH)
		return false;
	c->names[c->depth++] = name;
	return true;
}

static void pop(struct ctx *c)
{
	c->depth--;
}

static bool is_container_list(const char *name)
{
	return name && (!strcmp(name, "containers") ||
			!strcmp(name, "initContainers") ||
			!strcmp(name, "ephemeralContainers"));
}

/* The list type of the field at the top of c's path: the list-map keys
 * Kubernetes declares (x-kubernetes-list-map-keys) for the kinds served. */
static struct ltype list_type(const struct ctx *c)
{
	struct ltype t = {LT_ATOMIC, {NULL, NULL, NULL}};
	const char *last = c->depth ? c->names[c->depth - 1] : "";
	const char *prev = c->depth > 1 ? c->names[c->depth - 2] : NULL;
	const char *first = c->depth ? c->names[0] : "";

	if (!strcmp(first, "metadata") && c->depth == 2) {
		if (!strcmp(last, "finalizers"))
			t.type = LT_SET;
		else if (!strcmp(last, "ownerReferences"))
			t = (struct ltype){LT_MAP, {"uid"}};
		return t;
	}
	if (!c->k->typed)
		return t;
	if (is_container_list(last) || !strcmp(last, "volumes") ||
	    !strcmp(last, "imagePullSecrets") ||
	    (!strcmp(last, "env") && is_container_list(prev)))
		t = (struct ltype){LT_MAP, {"name"}};
	else if (!strcmp(last, "ports") && is_container_list(prev))
		t = (struct ltype){LT_MAP, {"containerPort", "protocol"}};
	else if (!strcmp(last, "ports") && c->depth == 2 &&
		 !strcmp(first, "spec") && !strcmp(c->k->kind, "Service"))
		t = (struct ltype){LT_MAP, {"port", "protocol"}};
	else if (!strcmp(last, "volumeMounts"))
		t = (struct ltype){LT_MAP, {"mountPath"}};
	else if (!strcmp(last, "volumeDevices"))
		t = (struct ltype){LT_MAP, {"devicePath"}};
	else if (!strcmp(last, "hostAliases"))
		t = (struct ltype){LT_MAP, {"ip"}};
	else if (!strcmp(last, "topologySpreadConstraints"))
		t = (struct ltype){LT_MAP,
				   {"topologyKey", "whenUnsatisfiable"}};
	else if (!strcmp(last, "conditions") && !strcmp(first, "status"))
		t = (struct ltype){LT_MAP, {"type"}};
	return t;
}

/* The path element of a list item: k:{...} of its keys (sorted by name,
 * protocol defaulting to TCP as the server defaults it) or v:value. */
static void item_pe(rc_buf *out, const struct ltype *t, json_t *item)
{
	char *s;

	if (t->type == LT_SET) {
		s = json_dumps(item, JSON_COMPACT | JSON_ENCODE_ANY);
		rc_buf_printf(out, "v:%s", s);
		free(s);
		return;
	}
	/* keys are declared in sorted order above */
	json_t *key = json_object();

	for (size_t i = 0; i < RC_ARRAY_SIZE(t->keys) && t->keys[i]; i++) {
		json_t *v = json_object_get(item, t->keys[i]);

		if (!v && !strcmp(t->keys[i], "protocol"))
			v = json_string("TCP");
		else
			json_incref(v);
		if (v)
			json_object_set_new(key, t->keys[i], v);
	}
	s = json_dumps(key, JSON_COMPACT);
	rc_buf_printf(out, "k:%s", s);
	free(s);
	json_decref(key);
}

/* The index of the item of list whose path element is pe, or -1. */
static long find_item(const struct ltype *t, json_t *list, const char *pe)
{
	rc_buf b = RC_BUF_INIT;
	size_t i;
	json_t *item;
	long found = -1;

	json_array_foreach(list, i, item) {
		rc_buf_clear(&b);
		item_pe(&b, t, item);
		if (!strcmp(b.ptr, pe)) {
			found = (long)i;
			break;
		}
	}
	rc_buf_release(&b);
	return found;
}

/* ---- set nodes ---- */

static bool member(json_t *n)
{
	return json_object_get(n, ".") != NULL;
}

static void set_member(json_t *n)
{
	if (!member(n))
		json_object_set_new(n, ".", json_object());
}

static json_t *child(json_t *n, const char *pe)
{
	json_t *c = json_object_get(n, pe);

	if (!c) {
		c = json_object();
		json_object_set_new(n, pe, c);
	}
	return c;
}

static bool fs_empty(json_t *n)
{
	const char *k;
	json_t *c;

	if (!n)
		return true;
	json_object_foreach(n, k, c) {
		if (!strcmp(k, ".") || !fs_empty(c))
			return false;
	}
	return true;
}

static json_t *fs_unwire(json_t *w)
{
	json_t *n = json_object(), *c;
	const char *k;

	if (!json_is_object(w) || json_object_size(w) == 0) {
		set_member(n);
		return n;
	}
	json_object_foreach(w, k, c) {
		if (!strcmp(k, "."))
			set_member(n);
		else
			json_object_set_new(n, k, fs_unwire(c));
	}
	return n;
}

static int type_rank(json_t *v)
{
	if (json_is_number(v))
		return 0;
	if (json_is_string(v))
		return 1;
	if (json_is_boolean(v))
		return 2;
	return 3;
}

static int value_cmp(json_t *a, json_t *b)
{
	int ra = type_rank(a), rb = type_rank(b);

	if (ra != rb)
		return ra - rb;
	if (ra == 0) {
		double x = json_number_value(a), y = json_number_value(b);

		return x < y ? -1 : x > y;
	}
	if (ra == 1)
		return strcmp(json_string_value(a), json_string_value(b));
	if (ra == 2)
		return json_is_true(a) - json_is_true(b);
	return 0;
}

static int pe_rank(const char *pe)
{
	switch (pe[0]) {
	case '.':
		return 0;
	case 'f':
		return 1;
	case 'k':
		return 2;
	case 'v':
		return 3;
	default:
		return 4;
	}
}

static int pe_cmp(const void *pa, const void *pb)
{
	const char *a = *(const char *const *)pa, *b = *(const char *const *)pb;
	int ra = pe_rank(a), rb = pe_rank(b), c = 0;
	json_t *ja, *jb;

	if (ra != rb)
		return ra - rb;
	if (ra != 2 && ra != 3)
		return strcmp(a, b);
	ja = json_loads(a + 2, JSON_DECODE_ANY, NULL);
	jb = json_loads(b + 2, JSON_DECODE_ANY, NULL);
	if (ra == 3 || !json_is_object(ja) || !json_is_object(jb)) {
		c = value_cmp(ja, jb);
	} else {
		/* key fields in name order; the shorter list first */
		void *ia = json_object_iter(ja), *ib = json_object_iter(jb);

		while (!c && (ia || ib)) {
			if (!ia || !ib) {
				c = ia ? 1 : -1;
				break;
			}
			c = strcmp(json_object_iter_key(ia),
				   json_object_iter_key(ib));
			if (!c)
				c = value_cmp(json_object_iter_value(ia),
					      json_object_iter_value(ib));
			ia = json_object_iter_next(ja, ia);
			ib = json_object_iter_next(jb, ib);
		}
	}
	json_decref(ja);
	json_decref(jb);
	return c ? c : strcmp(a, b);
}

/* Sorted child keys of n, without ".". Caller frees the array. */
static const char **sorted_children(json_t *n, size_t *count)
{
	const char **keys = rc_calloc(json_object_size(n) + 1, sizeof(char *));
	const char *k;
	json_t *c;
	size_t i = 0;

	json_object_foreach(n, k, c) {
		if (strcmp(k, "."))
			keys[i++] = k;
	}
	qsort(keys, i, sizeof(*keys), pe_cmp);
	*count = i;
	return keys;
}

/* The wire form of n (new), or NULL when n holds nothing. */
static json_t *fs_wire(json_t *n)
{
	size_t count;
	const char **keys = sorted_children(n, &count);
	json_t *w = json_object();

	if (member(n))
		json_object_set_new(w, ".", json_object());
	for (size_t i = 0; i < count; i++) {
		json_t *c = fs_wire(json_object_get(n, keys[i]));

		if (c)
			json_object_set_new(w, keys[i], c);
	}
	free(keys);
	if (json_object_size(w) == 1 && member(n)) {
		json_object_clear(w);
		return w;
	}
	if (json_object_size(w) == 0) {
		json_decref(w);
		return NULL;
	}
	return w;
}

/* a ∪ b, new */
static json_t *fs_union(json_t *a, json_t *b)
{
	json_t *n = a ? json_deep_copy(a) : json_object(), *c;
	const char *k;

	json_object_foreach(b, k, c) {
		json_t *mine = json_object_get(n, k);

		if (!strcmp(k, "."))
			set_member(n);
		else if (mine)
			json_object_set_new(n, k, fs_union(mine, c));
		else
			json_object_set_new(n, k, json_deep_copy(c));
	}
	return n;
}

/* a − b, new (NULL when empty) */
static json_t *fs_diff(json_t *a, json_t *b)
{
	json_t *n = json_object(), *c;
	const char *k;

	json_object_foreach(a, k, c) {
		json_t *other = b ? json_object_get(b, k) : NULL, *d;

		if (!strcmp(k, ".")) {
			if (!other)
				set_member(n);
			continue;
		}
		d = other ? fs_diff(c, other) : json_deep_copy(c);
		if (d && !fs_empty(d))
			json_object_set_new(n, k, d);
		else
			json_decref(d);
	}
	if (fs_empty(n)) {
		json_decref(n);
		return NULL;
	}
	return n;
}

/* a ∩ b, new (NULL when empty) */
static json_t *fs_intersect(json_t *a, json_t *b)
{
	json_t *n = json_object(), *c;
	const char *k;

	json_object_foreach(a, k, c) {
		json_t *other = json_object_get(b, k), *d;

		if (!other)
			continue;
		if (!strcmp(k, ".")) {
			set_member(n);
			continue;
		}
		d = fs_intersect(c, other);
		if (d)
			json_object_set_new(n, k, d);
	}
	if (fs_empty(n)) {
		json_decref(n);
		return NULL;
	}
	return n;
}

/* Replaces *a by *a − b. */
static void fs_subtract(json_t **a, json_t *b)
{
	json_t *d;

	if (!*a || !b)
		return;
	d = fs_diff(*a, b);
	json_decref(*a);
	*a = d ? d : json_object();
}

/* The API server keeps no ownership of these (stripMeta). */
static void fs_strip(json_t *set)
{
	static const char *const meta[] = {"f:name",
					   "f:namespace",
					   "f:creationTimestamp",
					   "f:selfLink",
					   "f:uid",
					   "f:clusterName",
					   "f:generation",
					   "f:managedFields",
					   "f:resourceVersion",
					   "f:deletionTimestamp",
					   "f:deletionGracePeriodSeconds"};
	json_t *m = json_object_get(set, "f:metadata");

	json_object_del(set, ".");
	json_object_del(set, "f:apiVersion");
	json_object_del(set, "f:kind");
	if (m) {
		json_object_del(m, ".");
		for (size_t i = 0; i < RC_ARRAY_SIZE(meta); i++)
			json_object_del(m, meta[i]);
		if (fs_empty(m))
			json_object_del(set, "f:metadata");
	}
}

/* Path strings for messages: .spec.containers[name="web"].image */
static void pe_string(rc_buf *out, const char *pe)
{
	json_t *v;

	if (pe[0] == 'f') {
		rc_buf_printf(out, ".%s", pe + 2);
		return;
	}
	v = json_loads(pe + 2, JSON_DECODE_ANY, NULL);
	if (pe[0] == 'k' && json_is_object(v)) {
		const char *k;
		json_t *c;
		bool first = true;

		rc_buf_putc(out, '[');
		json_object_foreach(v, k, c) {
			char *s = json_dumps(c, JSON_ENCODE_ANY | JSON_COMPACT);

			rc_buf_printf(out, "%s%s=%s", first ? "" : ",", k, s);
			free(s);
			first = false;
		}
		rc_buf_putc(out, ']');
	} else {
		rc_buf_printf(out, "[=%s]", pe + 2);
	}
	json_decref(v);
}

static void fs_paths(json_t *n, rc_buf *prefix, json_t *out)
{
	size_t count, len = prefix->len;
	const char **keys;

	if (member(n) && prefix->len)
		json_array_append_new(out, json_string(prefix->ptr));
	keys = sorted_children(n, &count);
	for (size_t i = 0; i < count; i++) {
		pe_string(prefix, keys[i]);
		fs_paths(json_object_get(n, keys[i]), prefix, out);
		rc_buf_truncate(prefix, len);
	}
	free(keys);
}

/* ---- the field set of a configuration (ToFieldSet) ---- */

static void tfs(struct ctx *c, json_t *v, json_t *node);

static void tfs_list(struct ctx *c, json_t *list, json_t *node)
{
	struct ltype t = list_type(c);
	rc_buf pe = RC_BUF_INIT;
	size_t i;
	json_t *item;

	if (t.type == LT_ATOMIC) {
		set_member(node);
		return;
	}
	json_array_foreach(list, i, item) {
		json_t *n;

		rc_buf_clear(&pe);
		item_pe(&pe, &t, item);
		n = child(node, pe.ptr);
		set_member(n);
		if (json_is_object(item))
			tfs(c, item, n);
	}
	rc_buf_release(&pe);
}

static void tfs(struct ctx *c, json_t *v, json_t *node)
{
	const char *key;
	json_t *val;
	rc_buf pe = RC_BUF_INIT;

	json_object_foreach(v, key, val) {
		json_t *n;

		rc_buf_clear(&pe);
		rc_buf_printf(&pe, "f:%s", key);
		n = child(node, pe.ptr);
		if (!push(c, key))
			continue;
		if (json_is_object(val) && json_object_size(val))
			tfs(c, val, n);
		else if (json_is_array(val))
			tfs_list(c, val, n);
		else
			set_member(n);
		pop(c);
		if (fs_empty(n))
			json_object_del(node, pe.ptr);
	}
	rc_buf_release(&pe);
}

json_t *kf_fs_of(const struct kf_kind *k, json_t *config)
{
	struct ctx c = {.k = k};
	json_t *set = json_object();

	tfs(&c, config, set);
	fs_strip(set);
	return set;
}

/* ---- comparing two objects (added or modified, removed) ---- */

static void add_all(struct ctx *c, json_t *v, json_t *node)
{
	const char *key;
	json_t *val;
	size_t i;
	rc_buf pe = RC_BUF_INIT;

	set_member(node);
	if (json_is_object(v)) {
		json_object_foreach(v, key, val) {
			rc_buf_clear(&pe);
			rc_buf_printf(&pe, "f:%s", key);
			if (!push(c, key))
				continue;
			add_all(c, val, child(node, pe.ptr));
			pop(c);
		}
	} else if (json_is_array(v)) {
		struct ltype t = list_type(c);

		if (t.type != LT_ATOMIC)
			json_array_foreach(v, i, val) {
				rc_buf_clear(&pe);
				item_pe(&pe, &t, val);
				add_all(c, val, child(node, pe.ptr));
			}
	}
	rc_buf_release(&pe);
}

static void cmp_value(struct ctx *c, json_t *l, json_t *r, json_t *chg,
		      json_t *rem, const char *pe);

static void cmp_object(struct ctx *c, json_t *l, json_t *r, json_t *chg,
		       json_t *rem)
{
	const char *key;
	json_t *val;
	rc_buf pe = RC_BUF_INIT;

	json_object_foreach(r, key, val) {
		json_t *lv = json_object_get(l, key);

		rc_buf_clear(&pe);
		rc_buf_printf(&pe, "f:%s", key);
		if (!push(c, key))
			continue;
		if (!lv)
			add_all(c, val, child(chg, pe.ptr));
		else
			cmp_value(c, lv, val, chg, rem, pe.ptr);
		pop(c);
	}
	json_object_foreach(l, key, val) {
		if (json_object_get(r, key))
			continue;
		rc_buf_clear(&pe);
		rc_buf_printf(&pe, "f:%s", key);
		if (!push(c, key))
			continue;
		add_all(c, val, child(rem, pe.ptr));
		pop(c);
	}
	rc_buf_release(&pe);
}

static void cmp_list(struct ctx *c, json_t *l, json_t *r, json_t *chg,
		     json_t *rem, const char *lpe)
{
	struct ltype t = list_type(c);
	rc_buf pe = RC_BUF_INIT;
	size_t i;
	json_t *item;

	if (t.type == LT_ATOMIC ||
	    (json_array_size(l) == 0 && json_array_size(r) == 0)) {
		if (!json_equal(l, r))
			set_member(child(chg, lpe));
		return;
	}
	json_array_foreach(r, i, item) {
		long at;

		rc_buf_clear(&pe);
		item_pe(&pe, &t, item);
		at = find_item(&t, l, pe.ptr);
		if (at < 0) {
			add_all(c, item, child(child(chg, lpe), pe.ptr));
		} else {
			json_t *litem = json_array_get(l, (size_t)at);

			/* the item's own path is compared as a leaf when it
			 * is a scalar (sets), by its fields otherwise */
			if (json_is_object(litem) && json_is_object(item)) {
				json_t *cc = child(chg, lpe),
				       *rc = child(rem, lpe);

				cmp_value(c, litem, item, cc, rc, pe.ptr);
			} else if (!json_equal(litem, item)) {
				set_member(child(child(chg, lpe), pe.ptr));
			}
		}
	}
	json_array_foreach(l, i, item) {
		rc_buf_clear(&pe);
		item_pe(&pe, &t, item);
		if (find_item(&t, r, pe.ptr) < 0)
			add_all(c, item, child(child(rem, lpe), pe.ptr));
	}
	rc_buf_release(&pe);
}

static void cmp_value(struct ctx *c, json_t *l, json_t *r, json_t *chg,
		      json_t *rem, const char *pe)
{
	if (json_is_object(l) && json_is_object(r)) {
		cmp_object(c, l, r, child(chg, pe), child(rem, pe));
	} else if (json_is_array(l) && json_is_array(r)) {
		cmp_list(c, l, r, chg, rem, pe);
	} else if (!json_equal(l, r)) {
		if (json_is_object(r) || json_is_array(r))
			add_all(c, r, child(chg, pe));
		else
			set_member(child(chg, pe));
	}
}

/* chg: added or modified fields; rem: removed (both new, stripped). */
static void compare(const struct kf_kind *k, json_t *l, json_t *r, json_t **chg,
		    json_t **rem)
{
	struct ctx c = {.k = k};

	*chg = json_object();
	*rem = json_object();
	cmp_object(&c, l, r, *chg, *rem);
	fs_strip(*chg);
	fs_strip(*rem);
}

/* ---- managers ---- */

void kf_managers_release(struct kf_managers *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->v[i].manager);
		free(m->v[i].operation);
		free(m->v[i].api_version);
		json_decref(m->v[i].set);
	}
	free(m->v);
	memset(m, 0, sizeof(*m));
}

static const char *str_or(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : "";
}

void kf_managers_load(struct kf_managers *m, json_t *obj)
{
	json_t *e, *list = kf_jget(obj, "metadata.managedFields");
	size_t i;

	memset(m, 0, sizeof(*m));
	json_array_foreach(list, i, e) {
		struct kf_manager *mg;
		const char *t = json_string_value(json_object_get(e, "time"));

		RC_GROW(m->v, m->cap, m->n + 1);
		mg = &m->v[m->n++];
		mg->manager = rc_strdup(str_or(e, "manager"));
		mg->operation = rc_strdup(str_or(e, "operation"));
		mg->api_version = rc_strdup(str_or(e, "apiVersion"));
		snprintf(mg->time, sizeof(mg->time), "%s", t ? t : "");
		mg->set = fs_unwire(json_object_get(e, "fieldsV1"));
	}
}

static int mgr_cmp(const void *pa, const void *pb)
{
	const struct kf_manager *a = pa, *b = pb;
	int c = strcmp(a->operation, b->operation);

	if (!c)
		c = strcmp(a->time, b->time);
	if (!c)
		c = strcmp(a->manager, b->manager);
	if (!c)
		c = strcmp(a->api_version, b->api_version);
	return c;
}

json_t *kf_managers_json(const struct kf_managers *m)
{
	json_t *list = json_array();
	struct kf_manager *v = rc_calloc(m->n + 1, sizeof(*v));

	memcpy(v, m->v, m->n * sizeof(*v));
	qsort(v, m->n, sizeof(*v), mgr_cmp);
	for (size_t i = 0; i < m->n; i++) {
		json_t *w = fs_wire(v[i].set);

		if (!w)
			continue;
		json_array_append_new(
		    list,
		    json_pack("{s:s,s:s,s:s,s:s,s:s,s:o}", "manager",
			      v[i].manager, "operation", v[i].operation,
			      "apiVersion", v[i].api_version, "time", v[i].time,
			      "fieldsType", "FieldsV1", "fieldsV1", w));
	}
	free(v);
	return list;
}

static struct kf_manager *find_mgr(struct kf_managers *m, const char *manager,
				   const char *op, const char *api_version)
{
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->v[i].manager, manager) &&
		    !strcmp(m->v[i].operation, op) &&
		    (!strcmp(op, "Apply") ||
		     !strcmp(m->v[i].api_version, api_version)))
			return &m->v[i];
	return NULL;
}

static struct kf_manager *get_mgr(struct kf_managers *m, const char *manager,
				  const char *op, const char *api_version)
{
	struct kf_manager *mg = find_mgr(m, manager, op, api_version);

	if (mg)
		return mg;
	RC_GROW(m->v, m->cap, m->n + 1);
	mg = &m->v[m->n++];
	memset(mg, 0, sizeof(*mg));
	mg->manager = rc_strdup(manager);
	mg->operation = rc_strdup(op);
	mg->api_version = rc_strdup(api_version);
	mg->set = json_object();
	return mg;
}

static void drop_empty(struct kf_managers *m)
{
	size_t j = 0;

	for (size_t i = 0; i < m->n; i++) {
		if (fs_empty(m->v[i].set)) {
			free(m->v[i].manager);
			free(m->v[i].operation);
			free(m->v[i].api_version);
			json_decref(m->v[i].set);
			continue;
		}
		m->v[j++] = m->v[i];
	}
	m->n = j;
}

/* The object without what is not compared: managedFields, and the
 * status of kinds whose status has its own endpoint. New. */
static json_t *comparable(json_t *obj)
{
	json_t *c = json_deep_copy(obj);
	json_t *meta = json_object_get(c, "metadata");

	if (meta)
		json_object_del(meta, "managedFields");
	return c;
}

static json_t *skeleton(const struct kf_kind *k)
{
	json_t *s = json_loads(k->skeleton ? k->skeleton : "{}", 0, NULL);

	if (!s)
		abort();
	return s;
}

void kf_ssa_update(const struct kf_kind *k, struct kf_managers *m,
		   const char *manager, json_t *live, json_t *obj)
{
	json_t *l = live ? comparable(live) : skeleton(k);
	json_t *r = comparable(obj);
	json_t *chg, *rem;
	struct kf_manager *me;
	size_t self;

	compare(k, l, r, &chg, &rem);
	me = get_mgr(m, manager, "Update", k->api_version);
	self = (size_t)(me - m->v);
	for (size_t i = 0; i < m->n; i++) {
		if (i == self)
			continue;
		fs_subtract(&m->v[i].set, chg);
		fs_subtract(&m->v[i].set, rem);
	}
	me = &m->v[self];
	{
		json_t *u = fs_union(me->set, chg);

		json_decref(me->set);
		me->set = u;
		fs_subtract(&me->set, rem);
	}
	if (!fs_empty(chg) || !fs_empty(rem) || !me->time[0])
		kf_time_now(me->time);
	drop_empty(m);
	json_decref(chg);
	json_decref(rem);
	json_decref(l);
	json_decref(r);
}

/* ---- merging an applied configuration ---- */

static json_t *merge(struct ctx *c, json_t *l, json_t *r);

static json_t *merge_list(struct ctx *c, json_t *l, json_t *r)
{
	struct ltype t = list_type(c);
	rc_buf pe = RC_BUF_INIT;
	json_t *out, *item;
	size_t i;

	if (t.type == LT_ATOMIC)
		return json_deep_copy(r);
	out = json_array();
	json_array_foreach(r, i, item) {
		long at;

		rc_buf_clear(&pe);
		item_pe(&pe, &t, item);
		at = find_item(&t, l, pe.ptr);
		if (at >= 0)
			json_array_append_new(
			    out, merge(c, json_array_get(l, (size_t)at), item));
		else
			json_array_append_new(out, json_deep_copy(item));
	}
	json_array_foreach(l, i, item) {
		rc_buf_clear(&pe);
		item_pe(&pe, &t, item);
		if (find_item(&t, r, pe.ptr) < 0)
			json_array_append_new(out, json_deep_copy(item));
	}
	rc_buf_release(&pe);
	return out;
}

static json_t *merge(struct ctx *c, json_t *l, json_t *r)
{
	const char *key;
	json_t *val, *out;

	if (json_is_array(l) && json_is_array(r))
		return merge_list(c, l, r);
	if (!json_is_object(l) || !json_is_object(r))
		return json_deep_copy(r);
	out = json_deep_copy(l);
	json_object_foreach(r, key, val) {
		json_t *lv = json_object_get(l, key);

		if (!push(c, key))
			continue;
		json_object_set_new(
		    out, key, lv ? merge(c, lv, val) : json_deep_copy(val));
		pop(c);
	}
	return out;
}

/* Removes from v what last holds and nobody owns any more (owned). */
static void prune(struct ctx *c, json_t *v, json_t *last, json_t *owned)
{
	const char *key;
	json_t *lc;
	void *tmp;

	json_object_foreach_safe(last, tmp, key, lc) {
		json_t *oc = owned ? json_object_get(owned, key) : NULL;

		if (!strcmp(key, "."))
			continue;
		if (key[0] == 'f' && json_is_object(v)) {
			const char *name = key + 2;
			json_t *val = json_object_get(v, name);

			if (!val)
				continue;
			if (!oc) {
				json_object_del(v, name);
				continue;
			}
			if (!push(c, name))
				continue;
			if (json_is_object(val))
				prune(c, val, lc, oc);
			else if (json_is_array(val))
				prune(c, val, lc, oc);
			pop(c);
		} else if (json_is_array(v)) {
			struct ltype t = list_type(c);
			long at = find_item(&t, v, key);

			if (at < 0)
				continue;
			if (member(lc) && (!oc || !member(oc))) {
				json_array_remove(v, (size_t)at);
				continue;
			}
			if (json_is_object(json_array_get(v, (size_t)at)))
				prune(c, json_array_get(v, (size_t)at), lc, oc);
		}
	}
}

static void print_manager(rc_buf *out, const struct kf_manager *mg)
{
	kf_go_quote(out, mg->manager);
	if (!strcmp(mg->operation, "Update"))
		rc_buf_printf(out, " using %s", mg->api_version);
}

static json_t *conflict_error(struct kf_managers *m, json_t **conflicts)
{
	rc_buf msg = RC_BUF_INIT, who = RC_BUF_INIT, prefix = RC_BUF_INIT;
	json_t *causes = json_array(), *details, *s;
	size_t total = 0;

	for (size_t i = 0; i < m->n; i++) {
		json_t *paths, *p;
		size_t j;

		if (!conflicts[i])
			continue;
		paths = json_array();
		rc_buf_clear(&prefix);
		fs_paths(conflicts[i], &prefix, paths);
		rc_buf_clear(&who);
		print_manager(&who, &m->v[i]);
		json_array_foreach(paths, j, p) {
			rc_buf cm = RC_BUF_INIT;

			rc_buf_printf(&cm, "conflict with %s", who.ptr);
			json_array_append_new(
			    causes, json_pack("{s:s,s:s,s:O}", "reason",
					      "FieldManagerConflict", "message",
					      cm.ptr, "field", p));
			rc_buf_release(&cm);
			total++;
		}
		json_decref(paths);
	}
	rc_buf_printf(&msg, "Apply failed with %zu conflict%s: ", total,
		      total == 1 ? "" : "s");
	if (total == 1) {
		json_t *c0 = json_array_get(causes, 0);

		rc_buf_printf(&msg, "%s: %s",
			      json_string_value(json_object_get(c0, "message")),
			      json_string_value(json_object_get(c0, "field")));
	} else {
		/* grouped by manager, managers in order */
		bool first = true;

		for (size_t i = 0; i < m->n; i++) {
			json_t *paths, *p;
			size_t j;

			if (!conflicts[i])
				continue;
			paths = json_array();
			rc_buf_clear(&prefix);
			fs_paths(conflicts[i], &prefix, paths);
			rc_buf_clear(&who);
			print_manager(&who, &m->v[i]);
			rc_buf_printf(&msg,
				      "%sconflicts with %s:", first ? "" : "\n",
				      who.ptr);
			json_array_foreach(paths, j, p)
			    rc_buf_printf(&msg, "\n- %s", json_string_value(p));
			json_decref(paths);
			first = false;
		}
	}
	details = json_pack("{s:o}", "causes", causes);
	s = kf_status(409, "Conflict", msg.ptr, details);
	rc_buf_release(&msg);
	rc_buf_release(&who);
	rc_buf_release(&prefix);
	return s;
}

/* Whether live and merged store the same object once decoded and
 * defaulted (stringData becomes data, a pruned default returns). */
static bool same_stored(const struct kf_kind *k, json_t *live, json_t *merged)
{
	json_t *a = json_deep_copy(live), *b = json_deep_copy(merged);
	bool same;

	kf_decode_fixups(k, a);
	kf_decode_fixups(k, b);
	if (k->defaults) {
		k->defaults(a);
		k->defaults(b);
	}
	same = json_equal(a, b);
	json_decref(a);
	json_decref(b);
	return same;
}

json_t *kf_ssa_apply(const struct kf_kind *k, struct kf_managers *m,
		     const char *manager, json_t *live, json_t *config,
		     bool force, json_t **err)
{
	struct ctx c = {.k = k};
	json_t *base = live ? comparable(live) : skeleton(k);
	json_t *newset = kf_fs_of(k, config);
	json_t *clean = json_deep_copy(config);
	json_t *merged, *chg, *rem, *owned, *last;
	json_t **conflicts;
	struct kf_manager *me;
	bool any = false, changed;
	size_t self, nconf = m->n;

	*err = NULL;
	kf_strip_nulls(clean);
	merged = merge(&c, base, clean);
	json_decref(clean);
	compare(k, base, merged, &chg, &rem);

	conflicts = rc_calloc(nconf + 1, sizeof(*conflicts));
	for (size_t i = 0; i < nconf; i++) {
		if (!strcmp(m->v[i].operation, "Apply") &&
		    !strcmp(m->v[i].manager, manager))
			continue;
		conflicts[i] = fs_intersect(m->v[i].set, chg);
		if (conflicts[i])
			any = true;
	}
	if (any && !force) {
		*err = conflict_error(m, conflicts);
		goto out;
	}
	for (size_t i = 0; i < nconf; i++)
		fs_subtract(&m->v[i].set, conflicts[i]);

	me = get_mgr(m, manager, "Apply", k->api_version);
	self = (size_t)(me - m->v);
	last = me->set;
	owned = json_deep_copy(newset);
	for (size_t i = 0; i < m->n; i++) {
		json_t *u;

		if (i == self)
			continue;
		u = fs_union(owned, m->v[i].set);
		json_decref(owned);
		owned = u;
	}
	prune(&c, merged, last, owned);
	json_decref(owned);

	json_decref(chg);
	json_decref(rem);
	compare(k, base, merged, &chg, &rem);
	for (size_t i = 0; i < m->n; i++)
		if (i != self)
			fs_subtract(&m->v[i].set, rem);
	me = &m->v[self];
	changed = !same_stored(k, base, merged);
	json_decref(me->set);
	me->set = newset;
	newset = NULL;
	free(me->api_version);
	me->api_version = rc_strdup(k->api_version);
	if (changed || !me->time[0])
		kf_time_now(me->time);
	drop_empty(m);
out:
	for (size_t i = 0; i < nconf; i++)
		json_decref(conflicts[i]);
	free(conflicts);
	json_decref(chg);
	json_decref(rem);
	json_decref(base);
	json_decref(newset);
	if (*err) {
		json_decref(merged);
		return NULL;
	}
	return merged;
}

/* ---- patches ---- */

json_t *kf_merge_patch(json_t *target, json_t *patch)
{
	const char *key;
	json_t *val, *out;

	if (!json_is_object(patch))
		return json_deep_copy(patch);
	out = json_is_object(target) ? json_deep_copy(target) : json_object();
	json_object_foreach(patch, key, val) {
		if (json_is_null(val)) {
			json_object_del(out, key);
		} else {
			json_t *m =
			    kf_merge_patch(json_object_get(out, key), val);
			json_object_set_new(out, key, m);
		}
	}
	return out;
}

static json_t *smp(struct ctx *c, json_t *target, json_t *patch);

static json_t *smp_list(struct ctx *c, json_t *target, json_t *patch,
			json_t *deletions)
{
	struct ltype t = list_type(c);
	json_t *out, *item;
	rc_buf pe = RC_BUF_INIT;
	size_t i;

	if (t.type == LT_ATOMIC || !json_is_array(target)) {
		out = json_array();
		json_array_foreach(patch, i, item) {
			if (!json_is_object(item) ||
			    !json_object_get(item, "$patch"))
				json_array_append(out, item);
		}
		return out;
	}
	out = json_deep_copy(target);
	json_array_foreach(patch, i, item) {
		const char *directive =
		    json_string_value(json_object_get(item, "$patch"));
		long at;

		if (directive && !strcmp(directive, "replace")) {
			json_decref(out);
			out = json_array();
			continue;
		}
		rc_buf_clear(&pe);
		item_pe(&pe, &t, item);
		at = find_item(&t, out, pe.ptr);
		if (directive && !strcmp(directive, "delete")) {
			if (at >= 0)
				json_array_remove(out, (size_t)at);
			continue;
		}
		if (at >= 0)
			json_array_set_new(
			    out, (size_t)at,
			    smp(c, json_array_get(out, (size_t)at), item));
		else
			json_array_append(out, item);
	}
	json_array_foreach(deletions, i, item) {
		long at;

		rc_buf_clear(&pe);
		item_pe(&pe, &t, item);
		at = find_item(&t, out, pe.ptr);
		if (at >= 0)
			json_array_remove(out, (size_t)at);
	}
	rc_buf_release(&pe);
	return out;
}

static json_t *smp(struct ctx *c, json_t *target, json_t *patch)
{
	const char *key;
	json_t *val, *out;
	rc_buf dk = RC_BUF_INIT;

	if (!json_is_object(patch))
		return json_deep_copy(patch);
	out = json_is_object(target) ? json_deep_copy(target) : json_object();
	json_object_foreach(patch, key, val) {
		if (key[0] == '$')
			continue;
		if (json_is_null(val)) {
			json_object_del(out, key);
			continue;
		}
		if (!push(c, key))
			continue;
		if (json_is_array(val)) {
			rc_buf_clear(&dk);
			rc_buf_printf(&dk, "$deleteFromPrimitiveList/%s", key);
			json_object_set_new(
			    out, key,
			    smp_list(c, json_object_get(out, key), val,
				     json_object_get(patch, dk.ptr)));
		} else {
			json_object_set_new(
			    out, key, smp(c, json_object_get(out, key), val));
		}
		pop(c);
	}
	rc_buf_release(&dk);
	return out;
}

json_t *kf_strategic_patch(const struct kf_kind *k, json_t *target,
			   json_t *patch)
{
	struct ctx c = {.k = k};

	return smp(&c, target, patch);
}

/* JSON pointer: the parent container of the addressed value and the last
 * token (borrowed from tok, which is overwritten). */
static json_t *pointer(json_t *root, const char *path, rc_buf *tok)
{
	json_t *cur = root;
	const char *p = path;

	if (*p != '/')
		return NULL;
	for (;;) {
		const char *next = strchr(p + 1, '/');
		size_t n = next ? (size_t)(next - p - 1) : strlen(p + 1);

		rc_buf_clear(tok);
		for (size_t i = 0; i < n; i++) {
			char ch = p[1 + i];

			if (ch == '~' && i + 1 < n) {
				ch = p[2 + i] == '1' ? '/' : '~';
				i++;
			}
			rc_buf_putc(tok, ch);
		}
		if (!next)
			return cur;
		if (json_is_object(cur))
			cur = json_object_get(cur, tok->ptr);
		else if (json_is_array(cur))
			cur = json_array_get(cur, strtoul(tok->ptr, NULL, 10));
		else
			return NULL;
		if (!cur)
			return NULL;
		p = next;
	}
}

static json_t *ptr_get(json_t *parent, const char *tok)
{
	if (json_is_object(parent))
		return json_object_get(parent, tok);
	if (json_is_array(parent) && *tok &&
	    strspn(tok, "0123456789") == strlen(tok))
		return json_array_get(parent, strtoul(tok, NULL, 10));
	return NULL;
}

static int ptr_remove(json_t *parent, const char *tok)
{
	if (json_is_object(parent))
		return json_object_del(parent, tok);
	if (json_is_array(parent) && ptr_get(parent, tok))
		return json_array_remove(parent, strtoul(tok, NULL, 10));
	return -1;
}

static int ptr_add(json_t *parent, const char *tok, json_t *v)
{
	if (json_is_object(parent))
		return json_object_set(parent, tok, v);
	if (!json_is_array(parent))
		return -1;
	if (!strcmp(tok, "-"))
		return json_array_append(parent, v);
	if (!*tok || strspn(tok, "0123456789") != strlen(tok) ||
	    strtoul(tok, NULL, 10) > json_array_size(parent))
		return -1;
	return json_array_insert(parent, strtoul(tok, NULL, 10), v);
}

json_t *kf_json_patch(json_t *target, json_t *ops, rc_buf *err)
{
	json_t *doc = json_deep_copy(target), *op;
	rc_buf tok = RC_BUF_INIT, tok2 = RC_BUF_INIT;
	size_t i;

	if (!json_is_array(ops)) {
		rc_buf_puts(err, "json: cannot unmarshal object into Go value "
				 "of type jsonpatch.Patch");
		goto fail;
	}
	json_array_foreach(ops, i, op) {
		const char *name = kf_jstr(op, "op"),
			   *path = kf_jstr(op, "path");
		const char *from = kf_jstr(op, "from");
		json_t *value = json_object_get(op, "value"), *parent, *cur;

		if (!name || !path) {
			rc_buf_printf(err, "invalid JSON patch operation %zu",
				      i);
			goto fail;
		}
		parent = pointer(doc, path, &tok);
		if (!parent) {
			rc_buf_printf(err, "doc is missing path: \"%s\"", path);
			goto fail;
		}
		cur = ptr_get(parent, tok.ptr);
		if (!strcmp(name, "add") || !strcmp(name, "replace")) {
			if (!value || (!strcmp(name, "replace") && !cur) ||
			    (!strcmp(name, "replace") &&
			     ptr_remove(parent, tok.ptr) < 0) ||
			    ptr_add(parent, tok.ptr, value) < 0) {
				rc_buf_printf(err,
					      "%s operation does not apply: "
					      "doc is missing path: \"%s\"",
					      name, path);
				goto fail;
			}
		} else if (!strcmp(name, "remove")) {
			if (ptr_remove(parent, tok.ptr) < 0) {
				rc_buf_printf(
				    err,
				    "remove operation does not apply: doc is "
				    "missing path: \"%s\"",
				    path);
				goto fail;
			}
		} else if (!strcmp(name, "test")) {
			if (!cur || !value || !json_equal(cur, value)) {
				rc_buf_printf(
				    err, "testing value %s failed: test failed",
				    path);
				goto fail;
			}
		} else if ((!strcmp(name, "move") || !strcmp(name, "copy")) &&
			   from) {
			json_t *fp = pointer(doc, from, &tok2), *v;

			v = fp ? ptr_get(fp, tok2.ptr) : NULL;
			if (!v) {
				rc_buf_printf(
				    err, "doc is missing from path: \"%s\"",
				    from);
				goto fail;
			}
			v = json_deep_copy(v);
			if (!strcmp(name, "move"))
				ptr_remove(fp, tok2.ptr);
			parent = pointer(doc, path, &tok);
			if (!parent || ptr_add(parent, tok.ptr, v) < 0) {
				json_decref(v);
				rc_buf_printf(
				    err, "doc is missing path: \"%s\"", path);
				goto fail;
			}
			json_decref(v);
		} else {
			rc_buf_printf(err, "Unexpected kind: %s", name);
			goto fail;
		}
	}
	rc_buf_release(&tok);
	rc_buf_release(&tok2);
	return doc;
fail:
	rc_buf_release(&tok);
	rc_buf_release(&tok2);
	json_decref(doc);
	return NULL;
}
