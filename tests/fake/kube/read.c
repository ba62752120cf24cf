/*
 * The reading verbs: get, list (selectors, pages, continue tokens),
 * watch (the event history, selectors, expiry) and pods/log, with the
 * small request helpers the writing verbs (ops.c) share.
 */
#include "tests/fake/kube/kube.h"

struct kf_watch {
	struct kf_server *srv;
	const struct kf_kind *kind;
	char *ns; /* NULL: every namespace */
	struct kf_selector *labels, *fields;
	uint64_t cursor;
	rc_buf out;
	size_t off;
	bool end;
	bool has_deadline;
	struct timespec deadline;
	bool bookmarks;       /* allowWatchBookmarks */
	bool last_bookmark;   /* the one before the deadline was sent */
	struct timespec next_bookmark;
};

/* How often a watch that allows bookmarks gets one (a real server: about
 * a minute). */
#define KF_BOOKMARK_MS 1000

const char *kf_arg(struct kf_req *r, const char *key)
{
	return r->arg ? r->arg(r->arg_cls, key) : NULL;
}

void kf_reply_json(struct kf_reply *out, int code, json_t *body)
{
	out->code = code;
	out->json = body;
}

void kf_reply_error(struct kf_reply *out, json_t *status)
{
	out->code = (int)json_integer_value(json_object_get(status, "code"));
	out->json = status;
}

/* ---- get, list ---- */

json_t *kf_list_item(json_t *obj)
{
	json_t *item = json_object(), *v;
	const char *key;

	json_object_foreach(obj, key, v) {
		if (strcmp(key, "kind") && strcmp(key, "apiVersion"))
			json_object_set(item, key, v);
	}
	return item;
}

json_t *kf_list_doc(const struct kf_kind *k, const char *ns, uint64_t rv,
		    json_t *items)
{
	rc_buf kind = RC_BUF_INIT, link = RC_BUF_INIT;
	char num[32];
	json_t *doc;

	rc_buf_printf(&kind, "%sList", k->kind);
	kf_self_link(&link, k, ns, NULL);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)rv);
	doc = json_pack("{s:s,s:s,s:{s:s,s:s},s:o}", "kind", kind.ptr,
			"apiVersion", k->api_version, "metadata", "selfLink",
			link.ptr, "resourceVersion", num, "items", items);
	rc_buf_release(&kind);
	rc_buf_release(&link);
	return doc;
}

/* The index range [lo, hi) of a namespace, or of every object. */
void kf_ns_range(const struct kf_index *ix, const char *ns, size_t *lo,
		 size_t *hi)
{
	rc_buf k = RC_BUF_INIT;

	if (!ns) {
		*lo = 0;
		*hi = ix->n;
		return;
	}
	rc_buf_printf(&k, "%s/", ns);
	*lo = kf_index_lower(ix, k.ptr, k.len);
	k.ptr[k.len - 1] = '0'; /* the character after '/' */
	*hi = kf_index_lower(ix, k.ptr, k.len);
	rc_buf_release(&k);
}

static json_t *expired_continue(void)
{
	return kf_status(
	    410, "Expired",
	    "The provided continue parameter is too old to display a "
	    "consistent list result. You can start a new list without the "
	    "continue parameter, or use the continue token in this "
	    "response to retrieve the remainder of the results. "
	    "Continuing with the provided token results in an inconsistent "
	    "list - objects that were created, modified, or deleted "
	    "between the time the first chunk was returned and now may "
	    "show up in the list.",
	    NULL);
}

/* Decodes a continue token: the list's resourceVersion and the key to
 * start from (relative to the list's prefix). */
static int decode_continue(const char *tok, uint64_t *rv, rc_buf *start)
{
	rc_buf raw = RC_BUF_INIT;
	json_t *v;
	json_error_t jerr;
	int ret = -1;

	/* Kubernetes writes them in base64url without padding */
	if (rc_codec_base64_decode(&raw, tok, strlen(tok),
				   RC_BASE64_URL | RC_BASE64_NOPAD) < 0) {
		rc_error_clear(); /* it would outlive this server thread */
		goto out;
	}
	v = json_loadb(raw.ptr, raw.len, JSON_ALLOW_NUL, &jerr);
	if (json_is_object(v) && json_is_integer(json_object_get(v, "rv")) &&
	    json_is_string(json_object_get(v, "start")) &&
	    !strcmp(kf_jstr(v, "v") ? kf_jstr(v, "v") : "", "meta.k8s.io/v1")) {
		json_t *s = json_object_get(v, "start");

		*rv = (uint64_t)json_integer_value(json_object_get(v, "rv"));
		rc_buf_put(start, json_string_value(s), json_string_length(s));
		ret = 0;
	}
	json_decref(v);
out:
	rc_buf_release(&raw);
	return ret;
}

static void encode_continue(rc_buf *out, uint64_t rv, const char *key,
			    size_t keylen)
{
	rc_buf start = RC_BUF_INIT;
	json_t *v;
	char *s;

	rc_buf_put(&start, key, keylen);
	rc_buf_putc(&start, '\0');
	v = json_pack("{s:s,s:I,s:s%}", "v", "meta.k8s.io/v1", "rv",
		      (json_int_t)rv, "start", start.ptr, start.len);
	s = json_dumps(v, JSON_COMPACT);
	rc_codec_base64_encode(out, s, strlen(s),
			       RC_BASE64_URL | RC_BASE64_NOPAD);
	free(s);
	json_decref(v);
	rc_buf_release(&start);
}

/* A selector from the query; '+' is a space there, as Go reads queries
 * (labels and field values never hold a '+'). */
static int selector_arg(struct kf_req *r, const char *key, bool fields,
			struct kf_selector **out, rc_buf *msg)
{
	const char *v = kf_arg(r, key);
	char *s;
	int ret;

	if (!v)
		return kf_selector_parse(out, NULL, fields, msg);
	s = rc_strdup(v);
	for (char *p = s; *p; p++)
		if (*p == '+')
			*p = ' ';
	ret = kf_selector_parse(out, s, fields, msg);
	free(s);
	return ret;
}

int kf_parse_selectors(struct kf_req *r, struct kf_selector **labels,
		       struct kf_selector **fields, json_t **err)
{
	rc_buf msg = RC_BUF_INIT;

	*labels = *fields = NULL;
	if (selector_arg(r, "labelSelector", false, labels, &msg) < 0 ||
	    selector_arg(r, "fieldSelector", true, fields, &msg) < 0) {
		kf_selector_free(*labels);
		*labels = NULL;
		*err = kf_err_bad_request("%s", msg.ptr);
		rc_buf_release(&msg);
		return -1;
	}
	rc_buf_release(&msg);
	return 0;
}

void kf_do_list(struct kf_server *srv, struct kf_req *r, struct kf_reply *out)
{
	struct kf_selector *labels, *fields;
	struct kf_index *ix = kf_store_index(&srv->store, r->kind);
	const char *lim = kf_arg(r, "limit"), *cont = kf_arg(r, "continue");
	long long limit = lim ? strtoll(lim, NULL, 10) : 0;
	uint64_t rv = srv->store.rv;
	rc_buf start = RC_BUF_INIT, prefix = RC_BUF_INIT, tok = RC_BUF_INIT;
	size_t lo, hi, i, count = 0;
	json_t *items = json_array(), *err, *doc;
	const char *last = NULL;

	if (kf_parse_selectors(r, &labels, &fields, &err) < 0) {
		json_decref(items);
		kf_reply_error(out, err);
		return;
	}
	/* resourceVersion=0 is served from the watch cache, which does not
	 * page: the limit is ignored */
	if (kf_arg(r, "resourceVersion") &&
	    !strcmp(kf_arg(r, "resourceVersion"), "0") && !(cont && *cont))
		limit = 0;
	if (r->ns)
		rc_buf_printf(&prefix, "%s/", r->ns);
	kf_ns_range(ix, r->ns, &lo, &hi);
	if (cont && *cont) {
		if (decode_continue(cont, &rv, &start) < 0) {
			kf_reply_error(out, kf_err_bad_request(
						"continue key is not valid: "
						"illegal base64 data"));
			goto out;
		}
		if (rv < srv->store.horizon) {
			kf_reply_error(out, expired_continue());
			goto out;
		}
		{
			rc_buf abs = RC_BUF_INIT;
			size_t at;

			rc_buf_put(&abs, prefix.ptr, prefix.len);
			rc_buf_put(&abs, start.ptr, start.len);
			at = kf_index_lower(ix, abs.ptr, abs.len);
			if (at > lo)
				lo = at;
			rc_buf_release(&abs);
		}
	}
	for (i = lo; i < hi; i++) {
		struct kf_obj *o = ix->v[i];

		if (limit > 0 && count == (size_t)limit)
			break;
		if (!kf_selector_match(labels, o->json) ||
		    !kf_selector_match(fields, o->json))
			continue;
		json_array_append_new(items, kf_list_item(o->json));
		count++;
		last = o->key;
	}
	doc = kf_list_doc(r->kind, r->ns, rv, items);
	items = NULL;
	if (limit > 0 && i < hi && last) {
		json_t *meta = json_object_get(doc, "metadata");

		encode_continue(&tok, rv, last + prefix.len,
				strlen(last) - prefix.len);
		json_object_set_new(meta, "continue", json_string(tok.ptr));
		if (!labels && !fields)
			json_object_set_new(meta, "remainingItemCount",
					    json_integer((json_int_t)(hi - i)));
	}
	kf_reply_json(out, 200, doc);
out:
	json_decref(items);
	kf_selector_free(labels);
	kf_selector_free(fields);
	rc_buf_release(&start);
	rc_buf_release(&prefix);
	rc_buf_release(&tok);
}

void kf_do_get(struct kf_server *srv, struct kf_req *r, struct kf_reply *out)
{
	struct kf_obj *o = kf_store_get(&srv->store, r->kind, r->ns, r->name);

	if (!o)
		kf_reply_error(out, kf_err_not_found(r->kind, r->name));
	else
		kf_reply_json(out, 200, json_incref(o->json));
}

/* ---- watch ---- */

static void watch_error(struct kf_watch *w, json_t *status)
{
	json_t *ev = json_pack("{s:s,s:o}", "type", "ERROR", "object", status);
	char *s = json_dumps(ev, JSON_COMPACT);

	rc_buf_puts(&w->out, s);
	rc_buf_putc(&w->out, '\n');
	free(s);
	json_decref(ev);
	w->end = true;
}

static json_t *too_old(uint64_t rv, uint64_t horizon)
{
	rc_buf msg = RC_BUF_INIT;
	json_t *s;

	rc_buf_printf(&msg, "too old resource version: %llu (%llu)",
		      (unsigned long long)rv, (unsigned long long)horizon);
	s = kf_status(410, "Expired", msg.ptr, NULL);
	rc_buf_release(&msg);
	return s;
}

/* A BOOKMARK: the kind and the resourceVersion the watch has reached. */
static void watch_bookmark(struct kf_watch *w)
{
	char rv[32];
	json_t *ev;
	char *s;

	snprintf(rv, sizeof(rv), "%llu", (unsigned long long)w->cursor);
	ev = json_pack("{s:s,s:{s:s,s:s,s:{s:s,s:n}}}", "type", "BOOKMARK",
		       "object", "kind", w->kind->kind, "apiVersion",
		       w->kind->api_version, "metadata", "resourceVersion",
		       rv, "creationTimestamp");
	s = json_dumps(ev, JSON_COMPACT);
	rc_buf_puts(&w->out, s);
	rc_buf_putc(&w->out, '\n');
	free(s);
	json_decref(ev);
}

static bool passed(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return now.tv_sec > t->tv_sec ||
	       (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

static bool watch_wants(struct kf_watch *w, json_t *obj)
{
	return obj && kf_selector_match(w->labels, obj) &&
	       kf_selector_match(w->fields, obj);
}

static void watch_event(struct kf_watch *w, const char *type, json_t *obj)
{
	json_t *ev = json_pack("{s:s,s:O}", "type", type, "object", obj);
	char *s = json_dumps(ev, JSON_COMPACT);

	rc_buf_puts(&w->out, s);
	rc_buf_putc(&w->out, '\n');
	free(s);
	json_decref(ev);
}

/* Appends the events after the cursor (lock held). */
static void watch_collect(struct kf_watch *w)
{
	struct kf_store *s = &w->srv->store;

	if (w->cursor < s->horizon) {
		watch_error(w, too_old(w->cursor, s->horizon));
		return;
	}
	/* events are in resourceVersion order: start after the cursor */
	size_t lo = 0, hi = s->ring_n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->ring[(s->ring_start + mid) % s->ring_cap].rv <=
		    w->cursor)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < s->ring_n; i++) {
		struct kf_event *e =
		    &s->ring[(s->ring_start + i) % s->ring_cap];
		bool now, before;

		w->cursor = e->rv;
		if (e->kind != w->kind || (w->ns && strcmp(w->ns, e->ns)))
			continue;
		if (!w->labels && !w->fields) {
			rc_buf_put(&w->out, e->line, e->len);
			continue;
		}
		/* with selectors an object may enter or leave the view */
		now = watch_wants(w, e->obj);
		before = e->type == KF_MODIFIED && watch_wants(w, e->prev);
		if (e->type == KF_MODIFIED && now && before)
			rc_buf_put(&w->out, e->line, e->len);
		else if (e->type == KF_MODIFIED && now)
			watch_event(w, "ADDED", e->obj);
		else if (e->type == KF_MODIFIED && before)
			watch_event(w, "DELETED", e->obj);
		else if (e->type != KF_MODIFIED && now)
			rc_buf_put(&w->out, e->line, e->len);
	}
	w->cursor = s->rv > w->cursor ? s->rv : w->cursor;
}

void kf_do_watch(struct kf_server *srv, struct kf_req *r, struct kf_reply *out)
{
	struct kf_watch *w;
	const char *rvs = kf_arg(r, "resourceVersion");
	const char *timeout = kf_arg(r, "timeoutSeconds");
	const char *bm;
	json_t *err;

	w = rc_calloc(1, sizeof(*w));
	w->srv = srv;
	w->kind = r->kind;
	w->ns = r->ns ? rc_strdup(r->ns) : NULL;
	rc_buf_init(&w->out, RC_BUF_DEFAULT_MAX);
	if (kf_parse_selectors(r, &w->labels, &w->fields, &err) < 0) {
		kf_watch_free(w);
		kf_reply_error(out, err);
		return;
	}
	bm = kf_arg(r, "allowWatchBookmarks");
	if (bm && (!strcmp(bm, "true") || !strcmp(bm, "1"))) {
		w->bookmarks = true;
		kf_deadline(&w->next_bookmark, KF_BOOKMARK_MS);
	}
	if (timeout && strtol(timeout, NULL, 10) > 0) {
		w->has_deadline = true;
		kf_deadline(&w->deadline, strtol(timeout, NULL, 10) * 1000);
	}
	if (!rvs || !*rvs || !strcmp(rvs, "0")) {
		/* the current state first, as ADDED events */
		struct kf_index *ix = kf_store_index(&srv->store, r->kind);
		size_t lo, hi;

		kf_ns_range(ix, r->ns, &lo, &hi);
		for (size_t i = lo; i < hi; i++)
			if (watch_wants(w, ix->v[i]->json))
				watch_event(w, "ADDED", ix->v[i]->json);
		w->cursor = srv->store.rv;
	} else {
		char *end;
		unsigned long long n = strtoull(rvs, &end, 10);

		if (*end) {
			kf_watch_free(w);
			kf_reply_error(
			    out, kf_err_bad_request(
				     "invalid resource version: %s", rvs));
			return;
		}
		w->cursor = n;
		watch_collect(w);
	}
	out->code = 200;
	out->watch = w;
}

size_t kf_watch_read(struct kf_watch *w, char *buf, size_t max)
{
	struct kf_server *srv = w->srv;
	size_t n = 0;

	pthread_mutex_lock(&srv->lock);
	for (;;) {
		if (w->off < w->out.len) {
			n = w->out.len - w->off;
			if (n > max)
				n = max;
			memcpy(buf, w->out.ptr + w->off, n);
			w->off += n;
			if (w->off == w->out.len) {
				rc_buf_clear(&w->out);
				w->off = 0;
			}
			break;
		}
		if (w->end || srv->stopping)
			break;
		watch_collect(w);
		if (w->out.len)
			continue;
		if (w->has_deadline && passed(&w->deadline)) {
			/* the position reached, before the stream ends */
			if (!w->bookmarks || w->last_bookmark)
				break;
			w->last_bookmark = true;
			watch_bookmark(w);
			continue;
		}
		if (w->bookmarks && passed(&w->next_bookmark)) {
			watch_bookmark(w);
			kf_deadline(&w->next_bookmark, KF_BOOKMARK_MS);
			continue;
		}
		if (w->bookmarks && (!w->has_deadline ||
				     w->next_bookmark.tv_sec <
					     w->deadline.tv_sec ||
				     (w->next_bookmark.tv_sec ==
					      w->deadline.tv_sec &&
				      w->next_bookmark.tv_nsec <
					      w->deadline.tv_nsec)))
			pthread_cond_timedwait(&srv->changed, &srv->lock,
					       &w->next_bookmark);
		else if (w->has_deadline)
			pthread_cond_timedwait(&srv->changed, &srv->lock,
					       &w->deadline);
		else
			pthread_cond_wait(&srv->changed, &srv->lock);
	}
	pthread_mutex_unlock(&srv->lock);
	return n;
}

void kf_watch_free(struct kf_watch *w)
{
	if (!w)
		return;
	free(w->ns);
	kf_selector_free(w->labels);
	kf_selector_free(w->fields);
	rc_buf_release(&w->out);
	free(w);
}

/* ---- pods/log ---- */

void kf_do_log(struct kf_server *srv, struct kf_req *r, struct kf_reply *out)
{
	struct kf_obj *o = kf_store_get(&srv->store, r->kind, r->ns, r->name);
	const char *tail = kf_arg(r, "tailLines");
	const char *container = kf_arg(r, "container");

	if (!o) {
		kf_reply_error(out, kf_err_not_found(r->kind, r->name));
		return;
	}
	if (container && *container) {
		json_t *c;
		size_t i;
		bool found = false;

		json_array_foreach(
		    kf_jget(o->json, "spec.containers"), i,
		    c) if (kf_jstr(c, "name") &&
			   !strcmp(kf_jstr(c, "name"), container)) found = true;
		if (!found) {
			rc_buf msg = RC_BUF_INIT;

			rc_buf_printf(&msg,
				      "container %s is not valid for pod %s",
				      container, r->name);
			kf_reply_error(out, kf_err_bad_request("%s", msg.ptr));
			rc_buf_release(&msg);
			return;
		}
	}
	out->code = 200;
	out->text = kf_pod_log(o->json, tail ? strtol(tail, NULL, 10) : -1);
	out->ctype = "text/plain";
}
