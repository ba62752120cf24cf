/*
 * The writing verbs on stored objects: create, update, the four patch
 * types (server-side apply included), delete with propagation, status
 * subresources, and the dispatch of every API request (reads: read.c).
 */
#include "tests/fake/kube/kube.h"

static bool arg_true(struct kf_req *r, const char *key)
{
	const char *v = kf_arg(r, key);

	return v && (!strcmp(v, "true") || !strcmp(v, "1"));
}

/* The manager of a non-apply write: ?fieldManager=, else the user
 * agent's first word (curl/7.88 -> curl), else "unknown". */
static void manager_of(struct kf_req *r, rc_buf *out)
{
	const char *fm = kf_arg(r, "fieldManager");
	const char *ua = r->user_agent;

	if (fm && *fm)
		rc_buf_puts(out, fm);
	else if (ua && *ua)
		rc_buf_put(out, ua, strcspn(ua, "/ "));
	else
		rc_buf_puts(out, "unknown");
}

/* Checks ?dryRun=; 1 for All, 0 for none, -1 with *err (422). */
static int dry_run(struct kf_req *r, const char *options, json_t **err)
{
	const char *v = kf_arg(r, "dryRun");
	struct kf_verrs e = {0};

	if (!v || !*v)
		return 0;
	if (!strcmp(v, "All"))
		return 1;
	kf_verr_str(&e, KF_UNSUPPORTED, "dryRun", v,
		    "supported values: \"All\"");
	*err = kf_verr_status(&e, "meta.k8s.io", options, "");
	kf_verr_release(&e);
	return -1;
}

/* The body as JSON; YAML for apply patches and application/yaml. */
static json_t *parse_body(struct kf_req *r, bool yaml)
{
	json_error_t jerr;
	json_t *v;

	if (r->content_type &&
	    !strncmp(r->content_type, "application/yaml", 16))
		yaml = true;
	if (yaml) {
		rc_buf err = RC_BUF_INIT;

		v = kf_yaml_load(r->body, r->body_len, &err);
		rc_buf_release(&err);
		return v;
	}
	v = json_loadb(r->body ? r->body : "", r->body_len, 0, &jerr);
	return v;
}

/* The decoded object of a create or update body, or NULL with *err. */
static json_t *decode_object(struct kf_req *r, json_t **err)
{
	json_t *obj = parse_body(r, false);
	const char *av, *kind;

	if (!json_is_object(obj)) {
		json_decref(obj);
		*err = kf_err_bad_request(
		    "the object provided is unrecognized or malformed");
		return NULL;
	}
	av = kf_jstr(obj, "apiVersion");
	kind = kf_jstr(obj, "kind");
	if (av && strcmp(av, r->kind->api_version)) {
		*err = kf_err_bad_request(
		    "the API version in the data (%s) does "
		    "not match the expected API version (%s)",
		    av, r->kind->api_version);
		json_decref(obj);
		return NULL;
	}
	if (kind && strcmp(kind, r->kind->kind)) {
		*err = kf_err_bad_request("the kind in the data (%s) does not "
					  "match the expected kind (%s)",
					  kind, r->kind->kind);
		json_decref(obj);
		return NULL;
	}
	if (json_object_get(obj, "metadata") &&
	    !json_is_object(json_object_get(obj, "metadata"))) {
		*err = kf_err_bad_request(
		    "%s in version \"%s\" cannot be handled "
		    "as a %s: metadata must be an object",
		    r->kind->kind, r->kind->version, r->kind->kind);
		json_decref(obj);
		return NULL;
	}
	json_object_set_new(obj, "apiVersion",
			    json_string(r->kind->api_version));
	json_object_set_new(obj, "kind", json_string(r->kind->kind));
	kf_jmkobj(obj, "metadata");
	return obj;
}

/* Secret data must be base64; NULL or a 400. */
static json_t *check_types(const struct kf_kind *k, json_t *obj)
{
	json_t *v, *labels = kf_jget(obj, "metadata.labels");
	const char *key;

	json_object_foreach(labels, key, v) {
		if (!json_is_string(v))
			return kf_err_bad_request(
			    "%s in version \"%s\" cannot be handled as a %s: "
			    "v1.ObjectMeta.Labels: ReadString: expects \" or n",
			    k->kind, k->version, k->kind);
	}
	if (!strcmp(k->kind, "Secret"))
		json_object_foreach(json_object_get(obj, "data"), key, v) {
			const char *s = json_string_value(v);
			rc_buf b = RC_BUF_INIT;
			int bad = !s || rc_codec_base64_decode(
						 &b, s, strlen(s), 0) < 0;

			rc_buf_release(&b);
			/* the reply says it in Go's words; the error would
			 * outlive this server thread */
			rc_error_clear();
			if (bad)
				return kf_err_bad_request(
				    "Secret in version \"v1\" cannot be "
				    "handled "
				    "as a Secret: v1.Secret.Data: decode "
				    "base64: "
				    "illegal base64 data at input byte 0");
		}
	if (json_object_get(kf_jget(obj, "spec"), "replicas") &&
	    !json_is_integer(kf_jget(obj, "spec.replicas")))
		return kf_err_bad_request(
		    "%s in version \"%s\" cannot be handled as a %s: "
		    "v1.%s.Spec: v1.%sSpec.Replicas: readUint32: unexpected "
		    "character",
		    k->kind, k->version, k->kind, k->kind, k->kind);
	return NULL;
}

/* Drops what clients do not set; keeps resourceVersion for preconditions
 * (returned through rv, new). */
static void strip_server_meta(json_t *obj, char **rv)
{
	static const char *const fields[] = {"uid",
					     "generation",
					     "creationTimestamp",
					     "selfLink",
					     "managedFields",
					     "deletionTimestamp",
					     "deletionGracePeriodSeconds",
					     "resourceVersion"};
	json_t *meta = json_object_get(obj, "metadata");
	const char *v = kf_jstr(obj, "metadata.resourceVersion");

	if (rv)
		*rv = v && *v ? rc_strdup(v) : NULL;
	for (size_t i = 0; i < RC_ARRAY_SIZE(fields); i++)
		json_object_del(meta, fields[i]);
}

static void carry_server_meta(json_t *obj, json_t *old)
{
	static const char *const fields[] = {"uid",
					     "generation",
					     "creationTimestamp",
					     "selfLink",
					     "deletionTimestamp",
					     "deletionGracePeriodSeconds",
					     "resourceVersion"};
	json_t *meta = kf_jmkobj(obj, "metadata");
	json_t *om = json_object_get(old, "metadata");

	for (size_t i = 0; i < RC_ARRAY_SIZE(fields); i++) {
		json_t *v = json_object_get(om, fields[i]);

		if (v)
			json_object_set(meta, fields[i], v);
		else
			json_object_del(meta, fields[i]);
	}
	json_object_set(meta, "name", json_object_get(om, "name"));
	if (json_object_get(om, "namespace"))
		json_object_set(meta, "namespace",
				json_object_get(om, "namespace"));
	else
		json_object_del(meta, "namespace");
}

/* metadata.namespace is the request's, and cluster objects have none. */
static void set_namespace(json_t *obj, struct kf_req *r)
{
	json_t *meta = kf_jmkobj(obj, "metadata");

	if (r->kind->namespaced)
		json_object_set_new(meta, "namespace", json_string(r->ns));
	else
		json_object_del(meta, "namespace");
}

static bool same_object(json_t *old, json_t *obj)
{
	json_t *a = json_deep_copy(old), *b = json_deep_copy(obj);
	bool same;

	json_object_del(kf_jmkobj(a, "metadata"), "resourceVersion");
	json_object_del(kf_jmkobj(b, "metadata"), "resourceVersion");
	same = json_equal(a, b);
	json_decref(a);
	json_decref(b);
	return same;
}

/* Everything but metadata and status, for metadata.generation. */
static bool spec_changed(json_t *old, json_t *obj)
{
	json_t *a = json_deep_copy(old), *b = json_deep_copy(obj);
	bool changed;

	json_object_del(a, "metadata");
	json_object_del(b, "metadata");
	json_object_del(a, "status");
	json_object_del(b, "status");
	changed = !json_equal(a, b);
	json_decref(a);
	json_decref(b);
	return changed;
}

static json_t *validate(const struct kf_kind *k, json_t *obj, json_t *old)
{
	struct kf_verrs e = {0};
	json_t *s = NULL;

	kf_validate_meta(&e, k, obj);
	if (k->validate)
		k->validate(&e, obj, old);
	if (e.n)
		s = kf_verr_status(&e, k->group, k->kind,
				   kf_jstr(obj, "metadata.name"));
	kf_verr_release(&e);
	return s;
}

static void set_managed(json_t *obj, struct kf_managers *m)
{
	json_t *list = kf_managers_json(m);
	json_t *meta = kf_jmkobj(obj, "metadata");

	if (json_array_size(list))
		json_object_set_new(meta, "managedFields", list);
	else {
		json_object_del(meta, "managedFields");
		json_decref(list);
	}
}

/* An object with no finalizers left after its deletion started goes (a
 * namespace once its spec.finalizers are done too). */
static bool finalized(json_t *obj)
{
	return kf_jget(obj, "metadata.deletionTimestamp") &&
	       json_array_size(kf_jget(obj, "metadata.finalizers")) == 0 &&
	       json_array_size(kf_jget(obj, "spec.finalizers")) == 0;
}

/* The tail of every update. old is stored; obj (stolen) is the whole new
 * object, defaulted; m holds the managers after the write (already
 * recorded for apply, NULL to record an Update by manager). Returns the
 * stored object (borrowed) or the dry-run result; NULL with *err. */
static json_t *finish_update(struct kf_server *srv, const struct kf_kind *k,
			     struct kf_obj *old, json_t *obj,
			     struct kf_managers *m, const char *manager,
			     bool dry, json_t **err, json_t **dry_out)
{
	struct kf_managers own;
	json_t *meta, *copy;
	struct kf_obj *stored;

	/* obj may share parts with stored objects, which never change */
	copy = json_deep_copy(obj);
	json_decref(obj);
	obj = copy;
	meta = kf_jmkobj(obj, "metadata");
	*err = NULL;
	carry_server_meta(obj, old->json);
	if (k->generation && spec_changed(old->json, obj)) {
		json_int_t g = json_integer_value(
		    kf_jget(old->json, "metadata.generation"));

		json_object_set_new(meta, "generation", json_integer(g + 1));
	}
	if (!m) {
		kf_managers_load(&own, old->json);
		kf_ssa_update(k, &own, manager, old->json, obj);
		m = &own;
	}
	set_managed(obj, m);
	if (m == &own)
		kf_managers_release(&own);
	*err = validate(k, obj, old->json);
	if (*err) {
		json_decref(obj);
		return NULL;
	}
	kf_canonical_order(k, obj);
	if (same_object(old->json, obj)) {
		json_decref(obj);
		return old->json;
	}
	if (dry) {
		*dry_out = obj;
		return obj;
	}
	if (finalized(obj)) {
		json_t *ret = json_incref(obj);

		stored = kf_store_put(&srv->store, k, old->ns, old->name, obj);
		kf_delete_now(srv, stored, "Background");
		*dry_out = ret;
		return ret;
	}
	stored = kf_store_put(&srv->store, k, old->ns, old->name, obj);
	kf_ctl_notify(srv, k, stored->ns, stored->name);
	return stored->json;
}

int kf_write_update(struct kf_server *srv, const struct kf_kind *k,
		    struct kf_obj *old, json_t *obj, const char *manager,
		    json_t **err)
{
	json_t *dry_out = NULL;
	json_t *res = finish_update(srv, k, old, obj, NULL, manager, false, err,
				    &dry_out);

	json_decref(dry_out);
	return res ? 0 : -1;
}

/* Namespace checks for a new namespaced object; NULL or an error. */
static json_t *check_namespace(struct kf_server *srv, const struct kf_kind *k,
			       const char *ns, const char *name)
{
	const struct kf_kind *nsk = kf_kind_named("namespaces");
	struct kf_obj *o;

	if (!k->namespaced)
		return NULL;
	o = kf_store_get(&srv->store, nsk, NULL, ns);
	if (!o)
		return kf_err_not_found(nsk, ns);
	if (kf_jget(o->json, "metadata.deletionTimestamp")) {
		rc_buf msg = RC_BUF_INIT, qr = RC_BUF_INIT, q = RC_BUF_INIT;
		json_t *d, *s;

		kf_qualified_resource(&qr, k);
		if (name && *name) {
			kf_go_quote(&q, name);
			rc_buf_printf(&msg, "%s %s is forbidden: ", qr.ptr,
				      q.ptr);
		} else {
			rc_buf_printf(&msg, "%s is forbidden: ", qr.ptr);
		}
		rc_buf_printf(&msg,
			      "unable to create new content in namespace "
			      "%s because it is being terminated",
			      ns);
		d = kf_details(name, k->group, k->resource);
		rc_buf_clear(&q);
		rc_buf_printf(&q, "namespace %s is being terminated", ns);
		json_object_set_new(d, "causes",
				    json_pack("[{s:s,s:s,s:s}]", "reason",
					      "NamespaceTerminating", "message",
					      q.ptr, "field",
					      "metadata.namespace"));
		s = kf_status(403, "Forbidden", msg.ptr, d);
		rc_buf_release(&msg);
		rc_buf_release(&qr);
		rc_buf_release(&q);
		return s;
	}
	return NULL;
}

/* Creates obj (stolen; name and namespace set, defaulted). */
static json_t *create_object(struct kf_server *srv, const struct kf_kind *k,
			     json_t *obj, struct kf_managers *m,
			     const char *manager, bool dry, json_t **err)
{
	struct kf_managers own = {0};
	struct kf_obj *stored;
	json_t *copy = json_deep_copy(obj);
	const char *ns, *name;

	json_decref(obj);
	obj = copy;
	ns = kf_jstr(obj, "metadata.namespace");
	name = kf_jstr(obj, "metadata.name");
	*err = NULL;
	if (!m) {
		kf_ssa_update(k, &own, manager, NULL, obj);
		m = &own;
	}
	kf_prepare_create(srv, k, obj);
	/* the server defaults again what it reads back from storage: a Job
	 * gets its template's labels, selector labels included */
	if (k->defaults)
		k->defaults(obj);
	set_managed(obj, m);
	kf_managers_release(&own);
	*err = validate(k, obj, NULL);
	if (*err) {
		json_decref(obj);
		return NULL;
	}
	kf_canonical_order(k, obj);
	if (dry)
		return obj;
	stored = kf_store_put(&srv->store, k, ns, name, obj);
	kf_ctl_notify(srv, k, stored->ns, stored->name);
	return json_incref(stored->json);
}

int kf_write_create(struct kf_server *srv, const struct kf_kind *k, json_t *obj,
		    const char *manager, json_t **err)
{
	json_t *res;

	kf_decode_fixups(k, obj);
	if (k->defaults)
		k->defaults(obj);
	res = create_object(srv, k, obj, NULL, manager, false, err);
	json_decref(res);
	return res ? 0 : -1;
}

/* ---- create, update ---- */

static void do_create(struct kf_server *srv, struct kf_req *r,
		      struct kf_reply *out)
{
	struct kf_obj *o;
	json_t *obj, *err = NULL, *res;
	const char *name, *gen, *bns;
	char *rv = NULL;
	rc_buf mgr = RC_BUF_INIT, nm = RC_BUF_INIT;
	int dry = dry_run(r, "CreateOptions", &err);

	if (dry < 0) {
		kf_reply_error(out, err);
		return;
	}
	obj = decode_object(r, &err);
	if (!obj) {
		kf_reply_error(out, err);
		return;
	}
	bns = kf_jstr(obj, "metadata.namespace");
	if (r->kind->namespaced && bns && *bns && strcmp(bns, r->ns)) {
		kf_reply_error(out, kf_err_bad_request(
					"the namespace of the provided object "
					"does not match the namespace sent on "
					"the request"));
		goto out;
	}
	strip_server_meta(obj, &rv);
	if (rv) {
		kf_reply_error(out,
			       kf_err_bad_request("resourceVersion should not "
						  "be set on objects to be "
						  "created"));
		goto out;
	}
	err = check_types(r->kind, obj);
	if (err) {
		kf_reply_error(out, err);
		goto out;
	}
	name = kf_jstr(obj, "metadata.name");
	gen = kf_jstr(obj, "metadata.generateName");
	if ((!name || !*name) && gen && *gen) {
		char suffix[6];

		kf_random_suffix(srv, suffix, 5);
		rc_buf_printf(&nm, "%s%s", gen, suffix);
		json_object_set_new(kf_jmkobj(obj, "metadata"), "name",
				    json_string(nm.ptr));
		name = nm.ptr;
	}
	set_namespace(obj, r);
	err = check_namespace(srv, r->kind, r->ns, name);
	if (err) {
		kf_reply_error(out, err);
		goto out;
	}
	if (name && *name &&
	    (o = kf_store_get(&srv->store, r->kind, r->ns, name))) {
		json_t *e = kf_err_exists(r->kind, name);

		if (kf_jget(o->json, "metadata.deletionTimestamp")) {
			rc_buf msg = RC_BUF_INIT;

			rc_buf_printf(&msg, "object is being deleted: %s",
				      kf_jstr(e, "message"));
			json_object_set_new(e, "message", json_string(msg.ptr));
			rc_buf_release(&msg);
		}
		kf_reply_error(out, e);
		goto out;
	}
	kf_decode_fixups(r->kind, obj);
	if (r->kind->defaults)
		r->kind->defaults(obj);
	manager_of(r, &mgr);
	res = create_object(srv, r->kind, obj, NULL, mgr.ptr, dry, &err);
	obj = NULL;
	if (!res)
		kf_reply_error(out, err);
	else
		kf_reply_json(out, 201, res);
out:
	json_decref(obj);
	free(rv);
	rc_buf_release(&mgr);
	rc_buf_release(&nm);
}

static json_t *name_mismatch(json_t *obj, struct kf_req *r)
{
	const char *name = kf_jstr(obj, "metadata.name");
	const char *ns = kf_jstr(obj, "metadata.namespace");

	if (name && *name && strcmp(name, r->name))
		return kf_err_bad_request(
		    "the name of the object (%s) does not "
		    "match the name on the URL (%s)",
		    name, r->name);
	if (r->kind->namespaced && ns && *ns && strcmp(ns, r->ns))
		return kf_err_bad_request(
		    "the namespace of the provided object "
		    "does not match the namespace sent on "
		    "the request");
	return NULL;
}

static json_t *stale(const struct kf_kind *k, const char *name)
{
	return kf_err_conflict(k, name,
			       "the object has been modified; please apply "
			       "your changes to the latest version and try "
			       "again");
}

/* Answers a finished write. */
static void reply_write(struct kf_reply *out, int code, json_t *res,
			json_t *dry_out, json_t *err)
{
	if (!res) {
		kf_reply_error(out, err);
		return;
	}
	kf_reply_json(out, code, dry_out ? dry_out : json_incref(res));
}

static void do_update(struct kf_server *srv, struct kf_req *r,
		      struct kf_reply *out, bool status)
{
	json_t *obj, *err = NULL, *res, *dry_out = NULL;
	struct kf_obj *old;
	char *rv = NULL;
	rc_buf mgr = RC_BUF_INIT;
	int dry = dry_run(r, "UpdateOptions", &err);

	if (dry < 0) {
		kf_reply_error(out, err);
		return;
	}
	obj = decode_object(r, &err);
	if (!obj) {
		kf_reply_error(out, err);
		return;
	}
	err = name_mismatch(obj, r);
	if (!err)
		err = check_types(r->kind, obj);
	if (err) {
		kf_reply_error(out, err);
		goto out;
	}
	strip_server_meta(obj, &rv);
	manager_of(r, &mgr);
	old = kf_store_get(&srv->store, r->kind, r->ns, r->name);
	if (!old && r->kind->create_on_update && !status) {
		json_object_set_new(kf_jmkobj(obj, "metadata"), "name",
				    json_string(r->name));
		set_namespace(obj, r);
		err = check_namespace(srv, r->kind, r->ns, r->name);
		if (err) {
			kf_reply_error(out, err);
			goto out;
		}
		kf_decode_fixups(r->kind, obj);
		if (r->kind->defaults)
			r->kind->defaults(obj);
		res =
		    create_object(srv, r->kind, obj, NULL, mgr.ptr, dry, &err);
		obj = NULL;
		if (!res)
			kf_reply_error(out, err);
		else
			kf_reply_json(out, 201, res);
		goto out;
	}
	if (!old) {
		kf_reply_error(out, kf_err_not_found(r->kind, r->name));
		goto out;
	}
	if (rv && strcmp(rv, kf_jstr(old->json, "metadata.resourceVersion"))) {
		kf_reply_error(out, stale(r->kind, r->name));
		goto out;
	}
	if (!rv && !r->kind->unconditional_update) {
		struct kf_verrs e = {0};

		kf_verr(&e, KF_INVALID, "metadata.resourceVersion", "0x0",
			"must be specified for an update");
		kf_reply_error(out, kf_verr_status(&e, r->kind->group,
						   r->kind->kind, r->name));
		kf_verr_release(&e);
		goto out;
	}
	if (status) {
		/* only the status changes through /status */
		json_t *st = json_object_get(obj, "status");
		json_t *n = json_deep_copy(old->json);

		if (st)
			json_object_set(n, "status", st);
		else
			json_object_del(n, "status");
		json_object_del(kf_jmkobj(n, "metadata"), "managedFields");
		json_decref(obj);
		obj = n;
	} else {
		kf_decode_fixups(r->kind, obj);
		if (r->kind->defaults)
			r->kind->defaults(obj);
		if (r->kind->status_sub) {
			json_t *st = json_object_get(old->json, "status");

			if (st)
				json_object_set(obj, "status", st);
			else
				json_object_del(obj, "status");
		}
	}
	res = finish_update(srv, r->kind, old, obj, NULL, mgr.ptr, dry, &err,
			    &dry_out);
	obj = NULL;
	reply_write(out, 200, res, dry_out, err);
out:
	json_decref(obj);
	free(rv);
	rc_buf_release(&mgr);
}

/* ---- patch ---- */

static json_t *field_manager_required(void)
{
	json_t *d = kf_details(NULL, "meta.k8s.io", "PatchOptions");

	json_object_set_new(
	    d, "causes",
	    json_pack("[{s:s,s:s,s:s}]", "reason", "FieldValueRequired",
		      "message", "Required value: is required for apply patch",
		      "field", "fieldManager"));
	return kf_status(
	    422, "Invalid",
	    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: "
	    "Required value: is required for apply patch",
	    d);
}

static json_t *unsupported_patch(const struct kf_kind *k)
{
	rc_buf msg = RC_BUF_INIT;
	json_t *s;

	rc_buf_printf(&msg,
		      "the body of the request was in an unknown format - "
		      "accepted media types include: "
		      "application/json-patch+json, "
		      "application/merge-patch+json, %s"
		      "application/apply-patch+yaml",
		      k->typed ? "application/strategic-merge-patch+json, "
			       : "");
	s = kf_status(415, "UnsupportedMediaType", msg.ptr, json_object());
	rc_buf_release(&msg);
	return s;
}

static void do_apply(struct kf_server *srv, struct kf_req *r,
		     struct kf_reply *out, bool status, int dry)
{
	const char *manager = kf_arg(r, "fieldManager");
	json_t *cfg, *err = NULL, *merged, *res, *dry_out = NULL, *base;
	struct kf_obj *old;
	struct kf_managers m = {0};
	const char *av, *kind, *rv;
	bool force = arg_true(r, "force");

	if (!manager || !*manager) {
		kf_reply_error(out, field_manager_required());
		return;
	}
	cfg = parse_body(r, true);
	if (!json_is_object(cfg)) {
		json_decref(cfg);
		kf_reply_error(
		    out,
		    kf_err_bad_request("error decoding YAML: error converting "
				       "YAML to JSON: yaml: invalid document"));
		return;
	}
	av = kf_jstr(cfg, "apiVersion");
	kind = kf_jstr(cfg, "kind");
	if (!av || !kind || strcmp(av, r->kind->api_version) ||
	    strcmp(kind, r->kind->kind)) {
		kf_reply_error(
		    out, kf_err_bad_request("invalid object type: %s, Kind=%s",
					    av ? av : "/", kind ? kind : ""));
		goto out;
	}
	err = name_mismatch(cfg, r);
	if (!err)
		err = check_types(r->kind, cfg);
	if (err) {
		kf_reply_error(out, err);
		goto out;
	}
	old = kf_store_get(&srv->store, r->kind, r->ns, r->name);
	rv = kf_jstr(cfg, "metadata.resourceVersion");
	if (rv && *rv &&
	    (!old ||
	     strcmp(rv, kf_jstr(old->json, "metadata.resourceVersion")))) {
		kf_reply_error(out, old ? stale(r->kind, r->name)
					: kf_err_not_found(r->kind, r->name));
		goto out;
	}
	strip_server_meta(cfg, NULL);
	json_object_set_new(kf_jmkobj(cfg, "metadata"), "name",
			    json_string(r->name));
	set_namespace(cfg, r);
	if (status) {
		json_t *st = json_object_get(cfg, "status");

		if (!old) {
			kf_reply_error(out, kf_err_not_found(r->kind, r->name));
			goto out;
		}
		json_incref(st);
		json_object_clear(cfg);
		json_object_set_new(cfg, "apiVersion",
				    json_string(r->kind->api_version));
		json_object_set_new(cfg, "kind", json_string(r->kind->kind));
		json_object_set_new(cfg, "metadata", json_object());
		if (st)
			json_object_set_new(cfg, "status", st);
	} else if (r->kind->status_sub) {
		json_object_del(cfg, "status");
	}
	if (!old) {
		err = check_namespace(srv, r->kind, r->ns, r->name);
		if (err) {
			kf_reply_error(out, err);
			goto out;
		}
	}
	if (old)
		kf_managers_load(&m, old->json);
	base = old ? old->json : NULL;
	merged = kf_ssa_apply(r->kind, &m, manager, base, cfg, force, &err);
	if (!merged) {
		kf_reply_error(out, err);
		goto out;
	}
	kf_decode_fixups(r->kind, merged);
	if (r->kind->defaults)
		r->kind->defaults(merged);
	if (!old) {
		json_object_set_new(kf_jmkobj(merged, "metadata"), "name",
				    json_string(r->name));
		set_namespace(merged, r);
		res =
		    create_object(srv, r->kind, merged, &m, manager, dry, &err);
		if (!res)
			kf_reply_error(out, err);
		else
			kf_reply_json(out, 201, res);
		goto out;
	}
	if (status || r->kind->status_sub) {
		json_t *st = status ? json_object_get(merged, "status")
				    : json_object_get(old->json, "status");
		json_t *n;

		if (status) {
			n = json_deep_copy(old->json);
			if (st)
				json_object_set(n, "status", st);
			else
				json_object_del(n, "status");
			json_decref(merged);
			merged = n;
		} else if (st) {
			json_object_set(merged, "status", st);
		} else {
			json_object_del(merged, "status");
		}
	}
	res = finish_update(srv, r->kind, old, merged, &m, manager, dry, &err,
			    &dry_out);
	reply_write(out, 200, res, dry_out, err);
out:
	kf_managers_release(&m);
	json_decref(cfg);
}

static void do_patch(struct kf_server *srv, struct kf_req *r,
		     struct kf_reply *out, bool status)
{
	const char *ct = r->content_type ? r->content_type : "";
	json_t *patch, *err = NULL, *base, *obj, *res, *dry_out = NULL;
	struct kf_obj *old;
	const char *rv;
	rc_buf mgr = RC_BUF_INIT, perr = RC_BUF_INIT;
	int dry = dry_run(r, "PatchOptions", &err);
	enum { MERGE, STRATEGIC, JSONPATCH } type;

	if (dry < 0) {
		kf_reply_error(out, err);
		return;
	}
	if (!strncmp(ct, "application/apply-patch+yaml", 28)) {
		do_apply(srv, r, out, status, dry);
		return;
	}
	if (!strncmp(ct, "application/merge-patch+json", 28))
		type = MERGE;
	else if (!strncmp(ct, "application/strategic-merge-patch+json", 38) &&
		 r->kind->typed)
		type = STRATEGIC;
	else if (!strncmp(ct, "application/json-patch+json", 27))
		type = JSONPATCH;
	else {
		kf_reply_error(out, unsupported_patch(r->kind));
		return;
	}
	patch = parse_body(r, false);
	if (!patch || (type != JSONPATCH && !json_is_object(patch))) {
		json_decref(patch);
		kf_reply_error(out, kf_err_bad_request(
					"error decoding patch: invalid JSON"));
		return;
	}
	old = kf_store_get(&srv->store, r->kind, r->ns, r->name);
	if (!old) {
		kf_reply_error(out, kf_err_not_found(r->kind, r->name));
		goto out;
	}
	rv = type == JSONPATCH ? NULL
			       : kf_jstr(patch, "metadata.resourceVersion");
	if (rv && strcmp(rv, kf_jstr(old->json, "metadata.resourceVersion"))) {
		kf_reply_error(out, stale(r->kind, r->name));
		goto out;
	}
	base = json_deep_copy(old->json);
	json_object_del(kf_jmkobj(base, "metadata"), "managedFields");
	if (type == MERGE)
		obj = kf_merge_patch(base, patch);
	else if (type == STRATEGIC)
		obj = kf_strategic_patch(r->kind, base, patch);
	else
		obj = kf_json_patch(base, patch, &perr);
	json_decref(base);
	if (!obj) {
		kf_reply_error(
		    out, kf_status(422, "Invalid", perr.ptr, json_object()));
		goto out;
	}
	err = name_mismatch(obj, r);
	if (!err)
		err = check_types(r->kind, obj);
	if (err) {
		json_decref(obj);
		kf_reply_error(out, err);
		goto out;
	}
	json_object_set_new(obj, "apiVersion",
			    json_string(r->kind->api_version));
	json_object_set_new(obj, "kind", json_string(r->kind->kind));
	if (status || r->kind->status_sub) {
		/* the main resource keeps the status; /status keeps the rest */
		json_t *keep = status ? json_deep_copy(old->json) : obj;
		json_t *st =
		    json_object_get(status ? obj : old->json, "status");

		if (st)
			json_object_set(keep, "status", st);
		else
			json_object_del(keep, "status");
		if (status) {
			json_object_del(kf_jmkobj(keep, "metadata"),
					"managedFields");
			json_decref(obj);
			obj = keep;
		}
	}
	kf_decode_fixups(r->kind, obj);
	if (r->kind->defaults)
		r->kind->defaults(obj);
	manager_of(r, &mgr);
	res = finish_update(srv, r->kind, old, obj, NULL, mgr.ptr, dry, &err,
			    &dry_out);
	reply_write(out, 200, res, dry_out, err);
out:
	json_decref(patch);
	rc_buf_release(&mgr);
	rc_buf_release(&perr);
}

/* ---- delete ---- */

static json_t *success_status(struct kf_obj *o)
{
	json_t *d = kf_details(o->name, o->kind->group, o->kind->resource);

	json_object_set_new(d, "uid",
			    json_string(kf_jstr(o->json, "metadata.uid")
					    ? kf_jstr(o->json, "metadata.uid")
					    : ""));
	return json_pack("{s:s,s:s,s:{},s:s,s:o}", "kind", "Status",
			 "apiVersion", "v1", "metadata", "status", "Success",
			 "details", d);
}

static void orphan_or_delete_dependents(struct kf_server *srv, const char *uid,
					const char *ns, const char *propagation)
{
	const struct kf_kind *pods = kf_kind_named("pods");
	struct kf_index *ix = kf_store_index(&srv->store, pods);
	size_t lo, hi;
	json_t *pending = json_array(), *name;
	size_t i;

	kf_ns_range(ix, ns, &lo, &hi);
	for (i = lo; i < hi; i++) {
		json_t *ref = json_array_get(
		    kf_jget(ix->v[i]->json, "metadata.ownerReferences"), 0);
		const char *owner = kf_jstr(ref, "uid");

		if (owner && !strcmp(owner, uid))
			json_array_append_new(pending,
					      json_string(ix->v[i]->name));
	}
	json_array_foreach(pending, i, name) {
		struct kf_obj *p = kf_store_get(&srv->store, pods, ns,
						json_string_value(name));
		json_t *n, *err = NULL;

		if (!p)
			continue;
		if (strcmp(propagation, "Orphan")) {
			kf_delete_now(srv, p, "Background");
			continue;
		}
		n = json_deep_copy(p->json);
		json_object_del(kf_jmkobj(n, "metadata"), "ownerReferences");
		json_object_del(kf_jmkobj(n, "metadata"), "managedFields");
		kf_write_update(srv, pods, p, n, "kube-controller-manager",
				&err);
		json_decref(err);
	}
	json_decref(pending);
}

void kf_delete_now(struct kf_server *srv, struct kf_obj *o,
		   const char *propagation)
{
	const char *uid = kf_jstr(o->json, "metadata.uid");

	if (!strcmp(o->kind->kind, "Job") && uid) {
		char *u = rc_strdup(uid), *ns = rc_strdup(o->ns);
		const struct kf_kind *k = o->kind;
		char *name = rc_strdup(o->name);

		orphan_or_delete_dependents(srv, u, ns, propagation);
		o = kf_store_get(&srv->store, k, ns, name);
		free(u);
		free(ns);
		free(name);
		if (!o)
			return;
	}
	kf_store_remove(&srv->store, o);
}

struct delete_opts {
	char *propagation;
	char *pre_uid, *pre_rv;
	bool dry;
};

static json_t *delete_options(struct kf_req *r, struct delete_opts *d)
{
	const char *q = kf_arg(r, "propagationPolicy");
	json_t *body = NULL, *err = NULL;

	memset(d, 0, sizeof(*d));
	if (r->body_len) {
		body = json_loadb(r->body, r->body_len, 0, NULL);
		if (!json_is_object(body)) {
			json_decref(body);
			return kf_err_bad_request("the object provided is "
						  "unrecognized or malformed");
		}
		if (kf_jstr(body, "propagationPolicy"))
			q = q ? q : kf_jstr(body, "propagationPolicy");
		if (json_is_boolean(
			json_object_get(body, "orphanDependents")) &&
		    !q)
			q = json_is_true(
				json_object_get(body, "orphanDependents"))
				? "Orphan"
				: "Background";
		if (kf_jstr(body, "preconditions.uid"))
			d->pre_uid =
			    rc_strdup(kf_jstr(body, "preconditions.uid"));
		if (kf_jstr(body, "preconditions.resourceVersion"))
			d->pre_rv = rc_strdup(
			    kf_jstr(body, "preconditions.resourceVersion"));
		if (json_array_size(json_object_get(body, "dryRun")))
			d->dry = true;
	}
	if (q && strcmp(q, "Orphan") && strcmp(q, "Background") &&
	    strcmp(q, "Foreground")) {
		struct kf_verrs e = {0};

		kf_verr_str(&e, KF_UNSUPPORTED, "propagationPolicy", q,
			    "supported values: \"Foreground\", \"Background\", "
			    "\"Orphan\", nil");
		err = kf_verr_status(&e, "meta.k8s.io", "DeleteOptions", "");
		kf_verr_release(&e);
	}
	d->propagation = q ? rc_strdup(q) : NULL;
	json_decref(body);
	return err;
}

static void delete_opts_release(struct delete_opts *d)
{
	free(d->propagation);
	free(d->pre_uid);
	free(d->pre_rv);
}

json_t *kf_mark_deleting(struct kf_server *srv, struct kf_obj *o,
			 const char *finalizer, bool terminating)
{
	json_t *n = json_deep_copy(o->json), *meta = kf_jmkobj(n, "metadata");
	char now[32];
	struct kf_obj *stored;

	kf_time_now(now);
	if (!json_object_get(meta, "deletionTimestamp")) {
		json_object_set_new(meta, "deletionTimestamp",
				    json_string(now));
		json_object_set_new(meta, "deletionGracePeriodSeconds",
				    json_integer(0));
	}
	if (finalizer) {
		json_t *fin = json_object_get(meta, "finalizers"), *f;
		size_t i;
		bool has = false;

		if (!json_is_array(fin)) {
			fin = json_array();
			json_object_set_new(meta, "finalizers", fin);
		}
		json_array_foreach(fin, i,
				   f) if (!strcmp(json_string_value(f)
						      ? json_string_value(f)
						      : "",
						  finalizer)) has = true;
		if (!has)
			json_array_append_new(fin, json_string(finalizer));
	}
	if (terminating)
		json_object_set_new(kf_jmkobj(n, "status"), "phase",
				    json_string("Terminating"));
	kf_canonical_order(o->kind, n);
	stored = kf_store_put(&srv->store, o->kind, o->ns, o->name, n);
	kf_ctl_notify(srv, stored->kind, stored->ns, stored->name);
	return stored->json;
}

static void do_delete(struct kf_server *srv, struct kf_req *r,
		      struct kf_reply *out)
{
	struct delete_opts d;
	json_t *err = NULL;
	struct kf_obj *o;
	const char *prop;
	int dry = dry_run(r, "DeleteOptions", &err);

	if (dry < 0) {
		kf_reply_error(out, err);
		return;
	}
	err = delete_options(r, &d);
	if (err) {
		kf_reply_error(out, err);
		goto out;
	}
	o = kf_store_get(&srv->store, r->kind, r->ns, r->name);
	if (!o) {
		kf_reply_error(out, kf_err_not_found(r->kind, r->name));
		goto out;
	}
	if (d.pre_uid && strcmp(d.pre_uid, kf_jstr(o->json, "metadata.uid"))) {
		rc_buf why = RC_BUF_INIT;

		rc_buf_printf(&why,
			      "Precondition failed: UID in precondition: "
			      "%s, UID in object meta: %s",
			      d.pre_uid, kf_jstr(o->json, "metadata.uid"));
		kf_reply_error(out, kf_err_conflict(r->kind, r->name, why.ptr));
		rc_buf_release(&why);
		goto out;
	}
	if (d.pre_rv &&
	    strcmp(d.pre_rv, kf_jstr(o->json, "metadata.resourceVersion"))) {
		rc_buf why = RC_BUF_INIT;

		rc_buf_printf(&why,
			      "Precondition failed: ResourceVersion in "
			      "precondition: %s, ResourceVersion in meta: %s",
			      d.pre_rv,
			      kf_jstr(o->json, "metadata.resourceVersion"));
		kf_reply_error(out, kf_err_conflict(r->kind, r->name, why.ptr));
		rc_buf_release(&why);
		goto out;
	}
	prop = d.propagation ? d.propagation : r->kind->propagation;
	if (!strcmp(r->kind->kind, "Namespace")) {
		if (kf_jget(o->json, "metadata.deletionTimestamp")) {
			kf_reply_error(
			    out, kf_err_conflict(
				     r->kind, r->name,
				     "The system is ensuring all content is "
				     "removed from this namespace.  Upon "
				     "completion, this namespace will "
				     "automatically be purged by the system."));
			goto out;
		}
		/* as the namespace storage does: Foreground adds the
		 * garbage collector's finalizer */
		if (dry || d.dry)
			kf_reply_json(out, 200, json_incref(o->json));
		else
			kf_reply_json(
			    out, 200,
			    json_incref(kf_mark_deleting(
				srv, o,
				!strcmp(prop, "Foreground")
				    ? "foregroundDeletion"
				    : NULL,
				true)));
		goto out;
	}
	if (dry || d.dry) {
		kf_reply_json(out, 200, success_status(o));
		goto out;
	}
	if (!strcmp(prop, "Foreground") ||
	    json_array_size(kf_jget(o->json, "metadata.finalizers"))) {
		const char *fin =
		    !strcmp(prop, "Foreground") ? "foregroundDeletion" : NULL;

		kf_reply_json(out, 200,
			      json_incref(kf_mark_deleting(srv, o, fin, false)));
		goto out;
	}
	if (!strcmp(r->kind->kind, "Pod")) {
		kf_reply_json(out, 200, json_incref(o->json));
		kf_delete_now(srv, o, prop);
		goto out;
	}
	kf_reply_json(out, 200, success_status(o));
	kf_delete_now(srv, o, prop);
out:
	delete_opts_release(&d);
}

static void do_delete_collection(struct kf_server *srv, struct kf_req *r,
				 struct kf_reply *out)
{
	struct kf_selector *labels, *fields;
	struct kf_index *ix = kf_store_index(&srv->store, r->kind);
	json_t *err, *names = json_array(), *items = json_array(), *name;
	size_t lo, hi, i;

	if (!r->kind->deletecollection) {
		json_decref(names);
		json_decref(items);
		kf_reply_error(out, kf_err_method());
		return;
	}
	if (kf_parse_selectors(r, &labels, &fields, &err) < 0) {
		json_decref(names);
		json_decref(items);
		kf_reply_error(out, err);
		return;
	}
	kf_ns_range(ix, r->ns, &lo, &hi);
	for (i = lo; i < hi; i++)
		if (kf_selector_match(labels, ix->v[i]->json) &&
		    kf_selector_match(fields, ix->v[i]->json))
			json_array_append_new(
			    names,
			    json_pack("[ss]", ix->v[i]->ns, ix->v[i]->name));
	json_array_foreach(names, i, name) {
		struct kf_obj *o =
		    kf_store_get(&srv->store, r->kind,
				 json_string_value(json_array_get(name, 0)),
				 json_string_value(json_array_get(name, 1)));

		if (!o)
			continue;
		json_array_append_new(items, kf_list_item(o->json));
		kf_delete_now(srv, o, r->kind->propagation);
	}
	kf_reply_json(out, 200,
		      kf_list_doc(r->kind, r->ns, srv->store.rv, items));
	json_decref(names);
	kf_selector_free(labels);
	kf_selector_free(fields);
}

/* ---- dispatch ---- */

void kf_serve(struct kf_server *srv, struct kf_req *r, struct kf_reply *out)
{
	const char *m = r->method;
	bool status = r->sub && !strcmp(r->sub, "status");

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&srv->lock);
	if (r->sub && !status &&
	    !(!strcmp(r->sub, "log") && !strcmp(r->kind->kind, "Pod"))) {
		kf_reply_error(out, kf_err_no_resource());
	} else if (status && !r->kind->status_sub) {
		kf_reply_error(out, kf_err_no_resource());
	} else if (r->sub && !strcmp(r->sub, "log")) {
		if (strcmp(m, "GET"))
			kf_reply_error(out, kf_err_method());
		else
			kf_do_log(srv, r, out);
	} else if (!strcmp(m, "GET")) {
		if (r->name)
			kf_do_get(srv, r, out);
		else if (arg_true(r, "watch"))
			kf_do_watch(srv, r, out);
		else
			kf_do_list(srv, r, out);
	} else if (!strcmp(m, "POST") && !r->name) {
		do_create(srv, r, out);
	} else if (!strcmp(m, "PUT") && r->name) {
		do_update(srv, r, out, status);
	} else if (!strcmp(m, "PATCH") && r->name) {
		do_patch(srv, r, out, status);
	} else if (!strcmp(m, "DELETE") && r->name && !status) {
		do_delete(srv, r, out);
	} else if (!strcmp(m, "DELETE") && !r->name) {
		do_delete_collection(srv, r, out);
	} else {
		kf_reply_error(out, kf_err_method());
	}
	pthread_cond_broadcast(&srv->changed);
	pthread_mutex_unlock(&srv->lock);
}
