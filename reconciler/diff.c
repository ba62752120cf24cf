#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/diff.h"

static void add_change(rc_changes *out, rc_change_op op, const char *path,
		       const json_t *old, const json_t *new_)
{
	rc_change *c;

	RC_GROW(out->items, out->cap, out->n + 1);
	c = &out->items[out->n++];
	c->op = op;
	c->path = rc_strdup(path);
	c->old = old ? json_deep_copy(old) : NULL;
	c->new_ = new_ ? json_deep_copy(new_) : NULL;
}

static void push_segment(rc_buf *path, const char *key)
{
	rc_buf_putc(path, '/');
	for (const char *k = key; *k; k++) {
		if (*k == '~')
			rc_buf_puts(path, "~0");
		else if (*k == '/')
			rc_buf_puts(path, "~1");
		else
			rc_buf_putc(path, *k);
	}
}

static bool ignored(const char *path, const char *const *ignore, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (rc_pointer_match(ignore[i], path))
			return true;
	return false;
}

/* A map compared key by key (a secret reference is atomic). */
static bool is_map(const json_t *v)
{
	return json_is_object(v) && !json_object_get(v, "$secret");
}

static void walk(rc_changes *out, const json_t *d, const json_t *l,
		 const json_t *a, rc_buf *path, const char *const *ignore,
		 size_t nignore)
{
	const char *k;
	json_t *v;
	size_t mark = path->len;

	if (path->len && ignored(path->ptr, ignore, nignore))
		return;
	if (!is_map(d) || !is_map(a)) {
		if (!a)
			add_change(out, RC_CHANGE_ADD, path->ptr, NULL, d);
		else if (!rc_json_equal(d, a))
			add_change(out, RC_CHANGE_MODIFY, path->ptr, a, d);
		return;
	}
	json_object_foreach((json_t *)(uintptr_t)d, k, v) {
		push_segment(path, k);
		walk(out, v, is_map(l) ? json_object_get(l, k) : NULL,
		     json_object_get(a, k), path, ignore, nignore);
		rc_buf_truncate(path, mark);
	}
	if (!is_map(l))
		return;
	json_object_foreach((json_t *)(uintptr_t)l, k, v) {
		json_t *av = json_object_get(a, k);

		if (json_object_get(d, k) || !av)
			continue;
		push_segment(path, k);
		if (!ignored(path->ptr, ignore, nignore))
			add_change(out, RC_CHANGE_REMOVE, path->ptr, av, NULL);
		rc_buf_truncate(path, mark);
	}
}

void rc_diff(rc_changes *out, const json_t *desired, const json_t *last,
	     const json_t *actual, const char *const *ignore, size_t nignore)
{
	rc_buf path = RC_BUF_INIT_MAX(1 << 16);

	walk(out, desired, last, actual, &path, ignore, nignore);
	rc_buf_release(&path);
}

/* Decodes one pointer segment starting at p (after '/') into seg. */
static const char *next_segment(const char *p, rc_buf *seg)
{
	rc_buf_clear(seg);
	while (*p && *p != '/') {
		if (p[0] == '~' && p[1] == '0') {
			rc_buf_putc(seg, '~');
			p += 2;
		} else if (p[0] == '~' && p[1] == '1') {
			rc_buf_putc(seg, '/');
			p += 2;
		} else {
			rc_buf_putc(seg, *p++);
		}
	}
	return p;
}

void rc_pointer_dotted(rc_buf *out, const char *pointer)
{
	rc_buf seg = RC_BUF_INIT_MAX(1 << 16);
	const char *p = pointer;
	bool first = true;

	if (!*p)
		rc_buf_puts(out, "(all)");
	while (*p == '/') {
		p = next_segment(p + 1, &seg);
		if (!first)
			rc_buf_putc(out, '.');
		first = false;
		rc_buf_puts(out, seg.ptr);
	}
	rc_buf_release(&seg);
}

json_t *rc_changes_apply(const json_t *actual, const rc_changes *c)
{
	json_t *root = actual ? json_deep_copy(actual) : json_object();
	rc_buf seg = RC_BUF_INIT_MAX(1 << 16);

	for (size_t i = 0; i < c->n; i++) {
		const char *p = c->items[i].path;
		json_t *parent = NULL, *cur = root;

		if (!*p) { /* the whole value */
			json_decref(root);
			root = c->items[i].new_ ? json_deep_copy(c->items[i].new_)
						: json_null();
			continue;
		}
		while (*p == '/') {
			p = next_segment(p + 1, &seg);
			parent = cur;
			if (!*p)
				break;
			cur = json_object_get(parent, seg.ptr);
			if (!json_is_object(cur)) {
				cur = json_object();
				json_object_set_new(parent, seg.ptr, cur);
			}
		}
		if (!json_is_object(parent))
			continue;
		if (c->items[i].op == RC_CHANGE_REMOVE)
			json_object_del(parent, seg.ptr);
		else
			json_object_set_new(parent, seg.ptr,
					    json_deep_copy(c->items[i].new_));
	}
	rc_buf_release(&seg);
	return root;
}
