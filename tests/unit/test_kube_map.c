/* The Kubernetes driver's mapping (drivers/kube_map.c): kind keys, labels,
 * the normal form against real API server responses (tests/unit/data/kube,
 * copied from the platform contracts), expand, hook Jobs, normalize and
 * immutable fields. */
#include "tests/unit/helpers.h"
#include "drivers/kube_map.h"
#include "reconciler/diff.h"
#include "reconciler/base/log.h"
#include "schema/secrets.h"

static json_t *J(const char *text)
{
	json_error_t e;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &e);

	if (!v)
		fail_msg("bad JSON in a test: %s: %s", e.text, text);
	return v;
}

/* The directory of this file (new string). */
static char *here(void)
{
	const char *me = __FILE__, *slash = strrchr(me, '/');

	assert_non_null(slash);
	return rc_strndup(me, (size_t)(slash - me));
}

/* tests/unit/data/kube/<name> (new ref). */
static json_t *data(const char *name)
{
	char *dir = here();
	rc_buf p = RC_BUF_INIT;
	json_error_t e;
	json_t *v;

	rc_buf_printf(&p, "%s/data/kube/%s", dir, name);
	v = json_load_file(p.ptr, 0, &e);
	if (!v)
		fail_msg("cannot load %s: %s", p.ptr, e.text);
	rc_buf_release(&p);
	free(dir);
	return v;
}

/* The value at a JSON pointer ("~1" for '/'), borrowed, or NULL. */
static json_t *at(const json_t *v, const char *pointer)
{
	rc_buf seg = RC_BUF_INIT;
	const char *p = pointer;
	json_t *cur = (json_t *)(uintptr_t)v;

	while (cur && *p == '/') {
		rc_buf_clear(&seg);
		for (p++; *p && *p != '/'; p++) {
			if (p[0] == '~' && p[1] == '1') {
				rc_buf_putc(&seg, '/');
				p++;
			} else if (p[0] == '~' && p[1] == '0') {
				rc_buf_putc(&seg, '~');
				p++;
			} else {
				rc_buf_putc(&seg, *p);
			}
		}
		if (json_is_array(cur))
			cur = json_array_get(cur, strtoul(seg.ptr, NULL, 10));
		else
			cur = json_object_get(cur, seg.ptr);
	}
	rc_buf_release(&seg);
	return cur;
}

static const char *at_str(const json_t *v, const char *pointer)
{
	const char *s = json_string_value(at(v, pointer));

	if (!s)
		fail_msg("no string at %s", pointer);
	return s;
}

static long long at_int(const json_t *v, const char *pointer)
{
	json_t *n = at(v, pointer);

	if (!json_is_integer(n))
		fail_msg("no integer at %s", pointer);
	return (long long)json_integer_value(n);
}

static void assert_json(const json_t *got, const char *want_text)
{
	json_t *want = J(want_text);

	if (!rc_json_equal(got, want)) {
		char *g = json_dumps(got, JSON_SORT_KEYS | JSON_ENCODE_ANY);

		fail_msg("got %s\nwant %s", g, want_text);
	}
	json_decref(want);
}

/* The changes that take actual to desired, printed. */
static size_t changes(const json_t *desired, const json_t *last,
		      const json_t *actual, rc_changes *keep)
{
	rc_changes c = {0};
	size_t n;

	rc_diff(&c, desired, last, actual, NULL, 0);
	for (size_t i = 0; i < c.n; i++) {
		char *o = c.items[i].old ? json_dumps(c.items[i].old,
						      JSON_ENCODE_ANY)
					 : NULL;
		char *w = c.items[i].new_ ? json_dumps(c.items[i].new_,
						       JSON_ENCODE_ANY)
					  : NULL;

		print_message("change %d %s: %s -> %s\n", c.items[i].op,
			      c.items[i].path, o ? o : "-", w ? w : "-");
		free(o);
		free(w);
	}
	n = c.n;
	if (keep)
		*keep = c;
	else
		rc_changes_release(&c);
	return n;
}

/* The normalised normal form of an API object (new ref). */
static json_t *body_of(const json_t *obj, const json_t *desired)
{
	json_t *b = rc_kube_to_body(obj, desired);
	char *kind;

	assert_non_null(b);
	kind = rc_kube_kind_key(json_string_value(json_object_get(obj,
								  "apiVersion")),
				json_string_value(json_object_get(obj, "kind")));
	rc_kube_normalize(kind, b);
	free(kind);
	return b;
}

static bool contains(const json_t *v, const char *needle)
{
	char *s = json_dumps(v, JSON_ENCODE_ANY);
	bool found = strstr(s, needle) != NULL;

	free(s);
	return found;
}

/* ------------------------------------------------------------- kind keys */

static void kind_keys(void **state)
{
	static const char *const table[][3] = {
		{"v1", "ConfigMap", "ConfigMap"},
		{"v1", "Namespace", "Namespace"},
		{"apps/v1", "Deployment", "Deployment"},
		{"batch/v1", "Job", "Job"},
		{"networking.k8s.io/v1", "Ingress", "Ingress"},
		{"policy/v1", "PodDisruptionBudget", "PodDisruptionBudget"},
		{"rbac.authorization.k8s.io/v1", "Role", "Role"},
		{"autoscaling/v2", "HorizontalPodAutoscaler",
		 "HorizontalPodAutoscaler"},
		{"coordination.k8s.io/v1", "Lease", "Lease"},
		{"cert-manager.io/v1", "Certificate",
		 "Certificate.cert-manager.io"},
		{"extensions/v1beta1", "Ingress", "Ingress.extensions"},
		{"app/v1", "Thing", "Thing.app"},
		{"appsx/v1", "Thing", "Thing.appsx"},
	};

	RC_UNUSED(state);
	for (size_t i = 0; i < RC_ARRAY_SIZE(table); i++) {
		char *k = rc_kube_kind_key(table[i][0], table[i][1]);

		assert_string_equal(k, table[i][2]);
		free(k);
	}
}

/* ---------------------------------------------------------------- labels */

static bool valid_label_value(const char *s)
{
	size_t n = strlen(s);

	if (!n)
		return true;
	if (n > 63 || !isalnum((unsigned char)s[0]) ||
	    !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("-_.", s[i]))
			return false;
	return true;
}

static void label_values(void **state)
{
	static const char *const valid[] = {"brand-sites", "acme-staging",
					    "a.b_c", "A1", ""};
	static const char *const invalid[] = {
		"Has Space", "-x-", "!!!", "caf\xc3\xa9", "a/b",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"review-feature/very-long-branch-name-that-goes-on-and-on-and-on"};
	char *v, *again, *sel;

	RC_UNUSED(state);
	for (size_t i = 0; i < RC_ARRAY_SIZE(valid); i++) {
		v = rc_kube_label_value(valid[i]);
		assert_string_equal(v, valid[i]);
		free(v);
	}
	for (size_t i = 0; i < RC_ARRAY_SIZE(invalid); i++) {
		v = rc_kube_label_value(invalid[i]);
		again = rc_kube_label_value(invalid[i]);
		assert_true(valid_label_value(v));
		assert_string_not_equal(v, invalid[i]);
		assert_string_equal(v, again); /* deterministic */
		/* a hash suffix of 8 hex digits */
		assert_true(strlen(v) >= 8);
		for (size_t j = strlen(v) - 8; v[j]; j++)
			assert_non_null(strchr("0123456789abcdef", v[j]));
		free(v);
		free(again);
	}
	v = rc_kube_label_value("Has Space");
	assert_memory_equal(v, "Has-Space-", 10);
	assert_int_equal(strlen(v), 18);
	free(v);
	v = rc_kube_label_value("!!!");
	assert_int_equal(strlen(v), 8);
	free(v);
	/* two names that sanitise alike still differ */
	v = rc_kube_label_value("a b");
	again = rc_kube_label_value("a/b");
	assert_string_not_equal(v, again);
	free(v);
	free(again);

	sel = rc_kube_selector("brand-sites", "acme-staging");
	assert_string_equal(sel, "app.kubernetes.io/managed-by=reconcile,"
				 "reconcile.dev/project=brand-sites,"
				 "reconcile.dev/environment=acme-staging,"
				 "!reconcile.dev/hook");
	free(sel);
}

static void ownership_marks(void **state)
{
	json_t *d = J("{\"apiVersion\": \"apps/v1\", \"kind\": \"Deployment\","
		      " \"metadata\": {\"name\": \"w\"}, \"spec\": "
		      "{\"template\": {\"spec\": {}}}}");
	json_t *cm = J("{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\","
		       " \"metadata\": {\"name\": \"c\", \"labels\": "
		       "{\"mine\": \"x\"}}}");
	char *p;

	RC_UNUSED(state);
	rc_kube_set_ownership(d, "shop", "Feature Branch");
	p = rc_kube_label_value("Feature Branch");
	assert_string_equal(at_str(d, "/metadata/labels/app.kubernetes.io~1"
				      "managed-by"),
			    "reconcile");
	assert_string_equal(at_str(d, "/metadata/labels/reconcile.dev~1"
				      "project"),
			    "shop");
	assert_string_equal(at_str(d, "/metadata/labels/reconcile.dev~1"
				      "environment"),
			    p);
	/* the full name where the label had to be shortened, only there */
	assert_string_equal(at_str(d, "/metadata/annotations/reconcile.dev~1"
				      "environment"),
			    "Feature Branch");
	assert_null(at(d, "/metadata/annotations/reconcile.dev~1project"));
	assert_string_equal(at_str(d, "/spec/template/metadata/labels/"
				      "reconcile.dev~1environment"),
			    p);
	rc_kube_set_ownership(cm, "shop", "staging");
	assert_string_equal(at_str(cm, "/metadata/labels/mine"), "x");
	assert_string_equal(at_str(cm, "/metadata/labels/reconcile.dev~1"
				       "environment"),
			    "staging");
	assert_null(at(cm, "/metadata/annotations"));
	free(p);
	json_decref(d);
	json_decref(cm);
}

/* ----------------------------------------------------------- normal form */

/* The key property: what the server filled in is not drift. */
static void contract_deployment_is_not_drift(void **state)
{
	json_t *applied = data("deployment-applied.json");
	json_t *created = data("deployment-apply-create-response.json");
	json_t *got = data("deployment-get-after-controller.json");
	json_t *d = body_of(applied, NULL), *a = body_of(got, NULL);
	json_t *a0 = body_of(created, NULL);
	rc_changes c = {0};

	RC_UNUSED(state);
	/* the observed body: managed fields only, keyed lists as maps */
	assert_null(at(a, "/status"));
	assert_null(at(a, "/metadata/managedFields"));
	assert_null(at(a, "/metadata/uid"));
	assert_null(at(a, "/metadata/resourceVersion"));
	assert_null(at(a, "/metadata/generation"));
	assert_null(at(a, "/metadata/creationTimestamp"));
	assert_null(at(a, "/metadata/selfLink"));
	assert_null(at(a, "/spec/template/metadata/creationTimestamp"));
	assert_string_equal(at_str(a, "/metadata/name"), "web");
	assert_string_equal(at_str(a, "/metadata/namespace"), "shop-staging");
	assert_string_equal(at_str(a, "/spec/template/spec/containers/web/"
				      "image"),
			    "registry.example.com/shop/web:1.4.2");
	assert_string_equal(at_str(a, "/spec/template/spec/containers/web/"
				      "env/DEPLOYMENT_MODE/value"),
			    "STAGING");
	assert_int_equal(at_int(a, "/spec/template/spec/containers/web/ports/"
				   "8080~1TCP/containerPort"),
			 8080);
	/* the server's defaults are there, but they are not ours */
	assert_string_equal(at_str(a, "/spec/strategy/type"), "RollingUpdate");

	assert_int_equal(changes(d, NULL, a, NULL), 0);
	assert_int_equal(changes(d, d, a, NULL), 0);
	assert_int_equal(changes(d, d, a0, NULL), 0);

	/* a real change is one change, at the path a reader expects */
	json_object_set_new(at(d, "/spec/template/spec/containers/web"),
			    "image", json_string("registry.example.com/shop/"
						 "web:1.4.3"));
	assert_int_equal(changes(d, NULL, a, &c), 1);
	assert_int_equal(c.items[0].op, RC_CHANGE_MODIFY);
	assert_string_equal(c.items[0].path,
			    "/spec/template/spec/containers/web/image");
	rc_changes_release(&c);
	/* and a variable removed since the last apply is removed */
	{
		json_t *l = json_deep_copy(d);

		json_object_del(at(d, "/spec/template/spec/containers/web/env"),
				"DEPLOYMENT_MODE");
		json_object_set_new(at(d, "/spec/template/spec/containers/web"),
				    "image",
				    json_string("registry.example.com/shop/"
						"web:1.4.2"));
		assert_int_equal(changes(d, l, a, &c), 1);
		assert_int_equal(c.items[0].op, RC_CHANGE_REMOVE);
		assert_string_equal(c.items[0].path,
				    "/spec/template/spec/containers/web/env/"
				    "DEPLOYMENT_MODE");
		rc_changes_release(&c);
		json_decref(l);
	}
	json_decref(d);
	json_decref(a);
	json_decref(a0);
	json_decref(applied);
	json_decref(created);
	json_decref(got);
}

/* Other spellings of the same Deployment compare equal once normalised. */
static void equivalent_spellings_are_not_drift(void **state)
{
	json_t *desired = J(
		"{\"apiVersion\": \"apps/v1\", \"kind\": \"Deployment\","
		" \"metadata\": {\"name\": \"web\", \"namespace\": "
		"\"shop-staging\", \"labels\": {\"app.kubernetes.io/name\": "
		"\"web\"}, \"annotations\": {}},"
		" \"spec\": {\"replicas\": \"2\", \"selector\": {\"matchLabels\":"
		" {\"app.kubernetes.io/name\": \"web\"}}, \"template\": "
		"{\"metadata\": {\"labels\": {\"app.kubernetes.io/name\": "
		"\"web\"}}, \"spec\": {\"containers\": [{\"name\": \"web\", "
		"\"image\": \"registry.example.com/shop/web:1.4.2\", \"ports\": "
		"[{\"containerPort\": \"8080\"}], \"env\": [{\"name\": "
		"\"DEPLOYMENT_MODE\", \"value\": \"STAGING\"}], \"resources\": "
		"{\"requests\": {\"cpu\": 0.5, \"memory\": \"268435456\"}, "
		"\"limits\": {}}}]}}}}");
	json_t *got = data("deployment-get-after-controller.json");
	json_t *d = body_of(desired, NULL), *a = body_of(got, NULL);

	RC_UNUSED(state);
	assert_int_equal(changes(d, NULL, a, NULL), 0);
	assert_int_equal(at_int(d, "/spec/replicas"), 2);
	assert_string_equal(at_str(d, "/spec/template/spec/containers/web/"
				      "resources/requests/memory"),
			    "256Mi");
	assert_null(at(d, "/metadata/annotations"));
	json_decref(d);
	json_decref(a);
	json_decref(desired);
	json_decref(got);
}

static void contract_service_configmap_namespace(void **state)
{
	json_t *svc = J("{\"apiVersion\": \"v1\", \"kind\": \"Service\", "
			"\"metadata\": {\"name\": \"web\", \"namespace\": "
			"\"shop-staging\", \"labels\": "
			"{\"app.kubernetes.io/managed-by\": \"reconcile\"}}, "
			"\"spec\": {\"selector\": {\"app.kubernetes.io/name\":"
			" \"web\"}, \"ports\": [{\"port\": 80, \"targetPort\":"
			" \"8080\"}]}}");
	json_t *cm = J("{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", "
		       "\"metadata\": {\"name\": \"web-config\", \"namespace\":"
		       " \"shop-staging\", \"labels\": "
		       "{\"app.kubernetes.io/managed-by\": \"reconcile\"}}, "
		       "\"data\": {\"AWS_S3_BUCKET\": \"shop-assets\", "
		       "\"DEPLOYMENT_MODE\": \"STAGING\"}}");
	json_t *ns = J("{\"apiVersion\": \"v1\", \"kind\": \"Namespace\", "
		       "\"metadata\": {\"name\": \"shop-staging\"}}");
	json_t *svc_got = data("service-apply-create-response.json");
	json_t *cm_got = data("configmap-apply-create-response.json");
	json_t *ns_got = data("namespace-create-response.json");
	json_t *d, *a;

	RC_UNUSED(state);
	d = body_of(svc, NULL);
	a = body_of(svc_got, NULL);
	/* the port's key has the protocol the server defaults to */
	assert_int_equal(at_int(d, "/spec/ports/80~1TCP/targetPort"), 8080);
	assert_string_equal(at_str(d, "/spec/ports/80~1TCP/protocol"), "TCP");
	assert_string_equal(at_str(a, "/spec/clusterIP"), "10.0.0.203");
	assert_null(at(a, "/status"));
	assert_int_equal(changes(d, NULL, a, NULL), 0);
	json_decref(d);
	json_decref(a);

	d = body_of(cm, NULL);
	a = body_of(cm_got, NULL);
	assert_int_equal(changes(d, NULL, a, NULL), 0);
	json_decref(d);
	json_decref(a);

	d = body_of(ns, NULL);
	a = body_of(ns_got, NULL);
	assert_int_equal(changes(d, NULL, a, NULL), 0);
	assert_null(at(a, "/status"));
	json_decref(d);
	json_decref(a);

	json_decref(svc);
	json_decref(cm);
	json_decref(ns);
	json_decref(svc_got);
	json_decref(cm_got);
	json_decref(ns_got);
}

static void secret_bodies_hold_no_values(void **state)
{
	json_t *got = data("secret-apply-create-response.json");
	json_t *want = rc_secret_json_observed("env:SHOP_S3_KEY",
					       "example-not-a-secret");
	json_t *desired = json_pack("{s:s,s:s,s:{s:s,s:s},s:s,s:{s:O}}",
				    "apiVersion", "v1", "kind", "Secret",
				    "metadata", "name", "web-secrets",
				    "namespace", "shop-staging", "type",
				    "Opaque", "data", "AWS_S3_ACCESSKEY", want);
	json_t *a, *sd;

	RC_UNUSED(state);
	a = rc_kube_to_body(got, desired);
	assert_non_null(a);
	assert_true(rc_json_equal(at(a, "/data/AWS_S3_ACCESSKEY"), want));
	assert_false(contains(a, "example-not-a-secret"));
	assert_false(contains(a, "ZXhhbXBsZS1ub3QtYS1zZWNyZXQ="));
	assert_string_equal(at_str(a, "/type"), "Opaque");
	rc_kube_normalize("Secret", a);
	assert_true(rc_json_equal(at(a, "/data/AWS_S3_ACCESSKEY"), want));
	assert_int_equal(changes(desired, NULL, a, NULL), 0);
	json_decref(a);

	/* without a desired body the reference is unknown, the hash is kept */
	a = rc_kube_to_body(got, NULL);
	assert_string_equal(at_str(a, "/data/AWS_S3_ACCESSKEY/ref"), "unknown");
	assert_string_equal(at_str(a, "/data/AWS_S3_ACCESSKEY/$secret"),
			    json_string_value(json_object_get(want,
							      "$secret")));
	json_decref(a);

	/* stringData is folded into data */
	sd = J("{\"apiVersion\": \"v1\", \"kind\": \"Secret\", \"metadata\": "
	       "{\"name\": \"s\"}, \"stringData\": {\"AWS_S3_ACCESSKEY\": "
	       "\"example-not-a-secret\"}, \"data\": {\"B\": \"Yg==\"}}");
	a = rc_kube_to_body(sd, desired);
	assert_null(at(a, "/stringData"));
	assert_true(rc_json_equal(at(a, "/data/AWS_S3_ACCESSKEY"), want));
	assert_non_null(at(a, "/data/B/$secret"));
	assert_false(contains(a, "example-not-a-secret"));
	json_decref(a);
	json_decref(sd);

	/* a value that is not base64 is refused, without quoting it */
	sd = J("{\"apiVersion\": \"v1\", \"kind\": \"Secret\", \"metadata\": "
	       "{\"name\": \"s\"}, \"data\": {\"K\": \"not base64!\"}}");
	assert_null(rc_kube_to_body(sd, NULL));
	assert_non_null(strstr(rc_error_last()->message, "'K'"));
	assert_null(strstr(rc_error_last()->message, "not base64!"));
	json_decref(sd);

	/* not an object at all */
	sd = J("{\"kind\": \"Secret\"}");
	assert_null(rc_kube_to_body(sd, NULL));
	json_decref(sd);

	json_decref(got);
	json_decref(want);
	json_decref(desired);
}

static int resolve_fixed(void *ctx, const json_t *secret_obj, char **value)
{
	const char *ref = json_string_value(json_object_get(secret_obj, "ref"));

	RC_UNUSED(ctx);
	if (!ref || strcmp(ref, "env:SHOP_S3_KEY"))
		return rc_error_set(RC_ENOTFOUND, RC_ECLASS_CONFIG,
				    "no secret '%s'", ref ? ref : "?");
	*value = rc_strdup("example-not-a-secret");
	return 0;
}

static void round_trips(void **state)
{
	json_t *got = data("deployment-get-after-controller.json");
	json_t *b = rc_kube_to_body(got, NULL), *o, *b2, *t;
	json_t *sec, *so;

	RC_UNUSED(state);
	/* object -> body -> object: the lists come back as they were */
	o = rc_kube_to_object(b, NULL, NULL);
	assert_non_null(o);
	/* but for the server's creationTimestamp: null in the template */
	assert_true(json_is_null(at(got, "/spec/template/metadata/"
					 "creationTimestamp")));
	json_object_del(at(got, "/spec/template/metadata"),
			"creationTimestamp");
	assert_true(rc_json_equal(at(o, "/spec"), at(got, "/spec")));
	assert_true(rc_json_equal(at(o, "/metadata/labels"),
				  at(got, "/metadata/labels")));
	assert_null(at(o, "/status"));
	/* body -> object -> body */
	b2 = rc_kube_to_body(o, NULL);
	assert_true(rc_json_equal(b, b2));
	json_decref(o);
	json_decref(b2);
	json_decref(b);

	/* the key order of the body, the merge keys given back */
	t = J("{\"apiVersion\": \"apps/v1\", \"kind\": \"Deployment\", "
	      "\"metadata\": {\"name\": \"w\"}, \"spec\": {\"template\": "
	      "{\"spec\": {\"containers\": {\"side\": {\"image\": \"s\"}, "
	      "\"main\": {\"image\": \"m\", \"ports\": {\"8080/TCP\": {}, "
	      "\"53/UDP\": {}}, \"env\": {\"B\": {\"value\": \"2\"}, \"A\": "
	      "{\"value\": \"1\"}}, \"volumeMounts\": {\"/data\": {\"name\": "
	      "\"d\"}}}}, \"volumes\": {\"d\": {\"emptyDir\": {}}}}}}}");
	o = rc_kube_to_object(t, NULL, NULL);
	assert_json(at(o, "/spec/template/spec/containers"),
		    "[{\"name\": \"side\", \"image\": \"s\"}, {\"name\": "
		    "\"main\", \"image\": \"m\", \"ports\": [{\"containerPort\":"
		    " 8080, \"protocol\": \"TCP\"}, {\"containerPort\": 53, "
		    "\"protocol\": \"UDP\"}], \"env\": [{\"name\": \"B\", "
		    "\"value\": \"2\"}, {\"name\": \"A\", \"value\": \"1\"}], "
		    "\"volumeMounts\": [{\"name\": \"d\", \"mountPath\": "
		    "\"/data\"}]}]");
	assert_string_equal(at_str(o, "/spec/template/spec/containers/0/name"),
			    "side");
	assert_string_equal(at_str(o, "/spec/template/spec/containers/1/env/0/"
				      "name"),
			    "B");
	assert_json(at(o, "/spec/template/spec/volumes"),
		    "[{\"name\": \"d\", \"emptyDir\": {}}]");
	b2 = rc_kube_to_body(o, NULL);
	rc_kube_normalize("Deployment", b2);
	rc_kube_normalize("Deployment", t);
	assert_int_equal(changes(t, NULL, b2, NULL), 0);
	assert_int_equal(changes(b2, NULL, t, NULL), 0);
	json_decref(o);
	json_decref(b2);
	json_decref(t);

	/* a list that cannot be keyed stays a list, both ways */
	t = J("{\"apiVersion\": \"apps/v1\", \"kind\": \"Deployment\", "
	      "\"metadata\": {\"name\": \"w\"}, \"spec\": {\"template\": "
	      "{\"spec\": {\"containers\": [{\"image\": \"a\"}, {\"name\": "
	      "\"b\", \"env\": [{\"name\": \"X\"}]}], \"volumes\": [{\"name\":"
	      " \"v\"}, {\"name\": \"v\"}], \"tolerations\": [{\"key\": "
	      "\"k\"}]}}}}");
	b = rc_kube_to_body(t, NULL);
	assert_true(json_is_array(at(b, "/spec/template/spec/containers")));
	assert_true(json_is_array(at(b, "/spec/template/spec/containers/1/"
					"env")));
	assert_true(json_is_array(at(b, "/spec/template/spec/volumes")));
	assert_true(json_is_array(at(b, "/spec/template/spec/tolerations")));
	o = rc_kube_to_object(b, NULL, NULL);
	assert_true(rc_json_equal(o, t));
	json_decref(o);
	json_decref(b);
	json_decref(t);

	/* the Service's ports */
	t = J("{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": "
	      "{\"name\": \"web\"}, \"spec\": {\"ports\": {\"80/TCP\": "
	      "{\"targetPort\": 8080}, \"443/TCP\": {\"name\": \"https\"}}}}");
	o = rc_kube_to_object(t, NULL, NULL);
	assert_json(at(o, "/spec/ports"),
		    "[{\"port\": 80, \"protocol\": \"TCP\", \"targetPort\": "
		    "8080}, {\"name\": \"https\", \"port\": 443, \"protocol\": "
		    "\"TCP\"}]");
	json_decref(o);
	json_decref(t);

	/* a Secret's values are resolved and encoded only for sending */
	sec = data("secret-apply-create-response.json");
	b = rc_kube_to_body(sec, NULL);
	json_object_set_new(at(b, "/data/AWS_S3_ACCESSKEY"), "ref",
			    json_string("env:SHOP_S3_KEY"));
	so = rc_kube_to_object(b, resolve_fixed, NULL);
	assert_non_null(so);
	assert_string_equal(at_str(so, "/data/AWS_S3_ACCESSKEY"),
			    "ZXhhbXBsZS1ub3QtYS1zZWNyZXQ=");
	assert_string_equal(at_str(so, "/type"), "Opaque");
	b2 = rc_kube_to_body(so, b);
	assert_true(rc_json_equal(b, b2));
	json_decref(b2);
	json_decref(so);
	/* no resolver, or one that fails: no object */
	assert_null(rc_kube_to_object(b, NULL, NULL));
	json_object_set_new(at(b, "/data/AWS_S3_ACCESSKEY"), "ref",
			    json_string("env:OTHER"));
	assert_null(rc_kube_to_object(b, resolve_fixed, NULL));
	assert_string_equal(rc_error_last()->message, "no secret 'env:OTHER'");
	json_decref(b);
	json_decref(sec);
	json_decref(got);
}

/* Shapes no server returns: nothing breaks, nothing is lost. */
static void odd_shapes(void **state)
{
	static const char *const objs[] = {
		"{\"apiVersion\": \"apps/v1\", \"kind\": \"Deployment\", "
		"\"metadata\": {\"name\": \"w\", \"labels\": [1]}, \"spec\": "
		"\"x\"}",
		"{\"apiVersion\": \"apps/v1\", \"kind\": \"Deployment\", "
		"\"metadata\": {\"name\": \"w\"}, \"spec\": {\"template\": "
		"{\"spec\": {\"containers\": [1, \"a\", null], \"volumes\": "
		"[]}}}}",
		"{\"apiVersion\": \"apps/v1\", \"kind\": \"Deployment\", "
		"\"metadata\": {\"name\": \"w\"}, \"spec\": {\"replicas\": "
		"\"99999999999999999999\", \"template\": {\"metadata\": 3, "
		"\"spec\": {\"containers\": [{\"name\": \"c\", \"ports\": "
		"[{\"containerPort\": \"http\"}], \"env\": [{\"name\": "
		"\"\"}], \"resources\": {\"requests\": {\"cpu\": \"-1\", "
		"\"memory\": \"99999999999Ei\"}}}]}}}}",
		"{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": "
		"{\"name\": \"s\"}, \"spec\": {\"ports\": [{\"port\": 80, "
		"\"protocol\": 6}]}}",
		"{\"apiVersion\": \"v1\", \"kind\": \"Secret\", \"metadata\": "
		"{\"name\": \"s\"}, \"data\": {}, \"stringData\": 5}",
		"{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", "
		"\"metadata\": {\"name\": \"c\"}, \"data\": [\"x\"]}",
	};

	RC_UNUSED(state);
	for (size_t i = 0; i < RC_ARRAY_SIZE(objs); i++) {
		json_t *o = J(objs[i]), *b, *back, *once;
		char *kind = rc_kube_kind_key(
			json_string_value(json_object_get(o, "apiVersion")),
			json_string_value(json_object_get(o, "kind")));

		b = rc_kube_to_body(o, NULL);
		assert_non_null(b);
		back = rc_kube_to_object(b, NULL, NULL);
		assert_non_null(back);
		json_object_del(o, "stringData");
		json_object_del(back, "stringData");
		if (!rc_json_equal(back, o))
			fail_msg("case %zu does not come back", i);
		rc_kube_normalize(kind, b);
		once = json_deep_copy(b);
		rc_kube_normalize(kind, b);
		assert_true(json_equal(b, once));
		rc_kube_set_ownership(b, "p", "e");
		json_decref(once);
		json_decref(back);
		json_decref(b);
		json_decref(o);
		free(kind);
	}
	rc_kube_normalize("Deployment", NULL);
	rc_kube_set_ownership(NULL, "p", "e");
	assert_null(rc_kube_to_object(NULL, NULL, NULL));
}

/* ------------------------------------------------------------ normalize */

static void quantity_table(void **state)
{
	static const struct {
		const char *field, *in, *out;
	} table[] = {
		{"cpu", "\"0.5\"", "500m"},
		{"cpu", "0.5", "500m"},
		{"cpu", "\"500m\"", "500m"},
		{"cpu", "\"1\"", "1"},
		{"cpu", "1", "1"},
		{"cpu", "\"1000m\"", "1"},
		{"cpu", "\"2000m\"", "2"},
		{"cpu", "\"1.5\"", "1500m"},
		{"cpu", "\"0.1\"", "100m"},
		{"cpu", "\"100m\"", "100m"},
		{"cpu", "\"0.0001\"", "1m"},
		{"cpu", "\"lots\"", "lots"},
		{"memory", "\"1Gi\"", "1Gi"},
		{"memory", "\"1024Mi\"", "1Gi"},
		{"memory", "\"1073741824\"", "1Gi"},
		{"memory", "1073741824", "1Gi"},
		{"memory", "\"1048576Ki\"", "1Gi"},
		{"memory", "\"0.5Gi\"", "512Mi"},
		{"memory", "\"1.5Gi\"", "1536Mi"},
		{"memory", "\"256Mi\"", "256Mi"},
		{"memory", "\"268435456\"", "256Mi"},
		{"memory", "\"1G\"", "1000000000"},
		{"memory", "\"1000M\"", "1000000000"},
		{"memory", "\"1e9\"", "1000000000"},
		{"memory", "\"129M\"", "129000000"},
		{"memory", "\"1k\"", "1000"},
		{"memory", "\"2048\"", "2Ki"},
		{"memory", "\"500\"", "500"},
		{"memory", "\"0\"", "0"},
		{"memory", "\"1.5\"", "1.5"},
		{"memory", "\"12 Mi\"", "12 Mi"},
		{"ephemeral-storage", "\"2Gi\"", "2Gi"},
		{"ephemeral-storage", "\"2048Mi\"", "2Gi"},
		{"nvidia.com/gpu", "1", "1"},
	};

	RC_UNUSED(state);
	for (size_t i = 0; i < RC_ARRAY_SIZE(table); i++) {
		for (int where = 0; where < 2; where++) {
			rc_buf text = RC_BUF_INIT;
			json_t *b, *once;

			rc_buf_printf(&text,
				      "{\"spec\": {\"template\": {\"spec\": "
				      "{\"containers\": {\"web\": {\"name\": "
				      "\"web\", \"resources\": {\"%s\": "
				      "{\"%s\": %s}}}}}}}}",
				      where ? "limits" : "requests",
				      table[i].field, table[i].in);
			b = J(text.ptr);
			rc_kube_normalize("Deployment", b);
			rc_buf_clear(&text);
			rc_buf_printf(&text,
				      "/spec/template/spec/containers/web/"
				      "resources/%s",
				      where ? "limits" : "requests");
			/* the field itself may hold a '/' */
			{
				json_t *v = json_object_get(at(b, text.ptr),
							    table[i].field);

				if (!json_is_string(v) ||
				    strcmp(json_string_value(v), table[i].out))
					fail_msg("%s %s: want %s",
						 table[i].field, table[i].in,
						 table[i].out);
			}
			once = json_deep_copy(b);
			rc_kube_normalize("Deployment", b);
			assert_true(json_equal(b, once));
			json_decref(once);
			json_decref(b);
			rc_buf_release(&text);
		}
	}
}

static void normalize_folds_spellings(void **state)
{
	json_t *d = J(
		"{\"apiVersion\": \"apps/v1\", \"kind\": \"Deployment\", "
		"\"metadata\": {\"name\": \"w\", \"labels\": {\"version\": 2, "
		"\"canary\": true}, \"annotations\": {}}, \"spec\": "
		"{\"replicas\": \"3\", \"revisionHistoryLimit\": \"5\", "
		"\"paused\": \"false\", \"template\": {\"metadata\": "
		"{\"labels\": {}}, \"spec\": {\"terminationGracePeriodSeconds\":"
		" \"45\", \"hostNetwork\": \"true\", \"containers\": {\"web\": "
		"{\"name\": \"web\", \"env\": {\"PORT\": {\"name\": \"PORT\", "
		"\"value\": 3306}, \"DEBUG\": {\"name\": \"DEBUG\", \"value\": "
		"false}}, \"ports\": {\"8080/TCP\": {\"containerPort\": "
		"\"8080\"}}, \"resources\": {\"requests\": {}}, "
		"\"readinessProbe\": {\"httpGet\": {\"path\": \"/\", \"port\": "
		"\"8080\"}, \"periodSeconds\": \"5\"}, \"livenessProbe\": "
		"{\"tcpSocket\": {\"port\": \"http\"}}}}}}}}");
	json_t *svc = J(
		"{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": "
		"{\"name\": \"s\"}, \"spec\": {\"ports\": {\"80/TCP\": "
		"{\"port\": \"80\", \"targetPort\": \"8080\"}, \"443/TCP\": "
		"{\"port\": 443, \"targetPort\": \"https\", \"nodePort\": "
		"\"30443\"}}}}");
	json_t *cm = J("{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", "
		       "\"metadata\": {\"name\": \"c\"}, \"immutable\": "
		       "\"true\", \"data\": {\"PORT\": 3306, \"ON\": true, "
		       "\"RATIO\": 0.5, \"S\": \"x\"}}");
	json_t *sec = J("{\"apiVersion\": \"v1\", \"kind\": \"Secret\", "
			"\"metadata\": {\"name\": \"s\"}, \"data\": {\"K\": "
			"{\"$secret\": \"hmac-sha256:00\", \"ref\": \"env:K\"}}}");
	json_t *sec0 = json_deep_copy(sec), *once;

	RC_UNUSED(state);
	rc_kube_normalize("Deployment", d);
	assert_json(d,
		    "{\"apiVersion\": \"apps/v1\", \"kind\": \"Deployment\", "
		    "\"metadata\": {\"name\": \"w\", \"labels\": {\"version\":"
		    " \"2\", \"canary\": \"true\"}}, \"spec\": {\"replicas\": "
		    "3, \"revisionHistoryLimit\": 5, \"paused\": false, "
		    "\"template\": {\"metadata\": {}, \"spec\": "
		    "{\"terminationGracePeriodSeconds\": 45, \"hostNetwork\": "
		    "true, \"containers\": {\"web\": {\"name\": \"web\", "
		    "\"env\": {\"PORT\": {\"name\": \"PORT\", \"value\": "
		    "\"3306\"}, \"DEBUG\": {\"name\": \"DEBUG\", \"value\": "
		    "\"false\"}}, \"ports\": {\"8080/TCP\": {\"containerPort\":"
		    " 8080, \"protocol\": \"TCP\"}}, \"readinessProbe\": "
		    "{\"httpGet\": {\"path\": \"/\", \"port\": 8080}, "
		    "\"periodSeconds\": 5}, \"livenessProbe\": {\"tcpSocket\": "
		    "{\"port\": \"http\"}}}}}}}}");
	rc_kube_normalize("Service", svc);
	assert_json(at(svc, "/spec/ports"),
		    "{\"80/TCP\": {\"port\": 80, \"targetPort\": 8080, "
		    "\"protocol\": \"TCP\"}, \"443/TCP\": {\"port\": 443, "
		    "\"targetPort\": \"https\", \"nodePort\": 30443, "
		    "\"protocol\": \"TCP\"}}");
	rc_kube_normalize("ConfigMap", cm);
	assert_json(cm, "{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", "
			"\"metadata\": {\"name\": \"c\"}, \"immutable\": true, "
			"\"data\": {\"PORT\": \"3306\", \"ON\": \"true\", "
			"\"RATIO\": \"0.5\", \"S\": \"x\"}}");
	rc_kube_normalize("Secret", sec);
	assert_true(json_equal(sec, sec0));

	/* idempotent */
	once = json_deep_copy(d);
	rc_kube_normalize("Deployment", d);
	assert_true(json_equal(d, once));
	json_decref(once);
	once = json_deep_copy(svc);
	rc_kube_normalize("Service", svc);
	assert_true(json_equal(svc, once));
	json_decref(once);
	once = json_deep_copy(cm);
	rc_kube_normalize("ConfigMap", cm);
	assert_true(json_equal(cm, once));
	json_decref(once);

	/* a kind it does not know keeps its fields */
	once = J("{\"spec\": {\"replicas\": \"2\"}}");
	rc_kube_normalize("Widget.example.com", once);
	assert_json(once, "{\"spec\": {\"replicas\": \"2\"}}");
	json_decref(once);

	json_decref(d);
	json_decref(svc);
	json_decref(cm);
	json_decref(sec);
	json_decref(sec0);
}

/* ------------------------------------------------------------ immutable */

static void immutable_paths(void **state)
{
	static const struct {
		const char *kind, *path;
		bool want;
	} table[] = {
		{"Deployment", "/spec/selector", true},
		{"Deployment", "/spec/selector/matchLabels/app", true},
		{"Deployment", "/spec/replicas", false},
		{"Deployment", "/spec/template/spec/containers/web/image",
		 false},
		{"Deployment", "/metadata/labels/x", false},
		{"Deployment", "/metadata/name", true},
		{"Deployment", "/metadata/namespace", true},
		{"Deployment", "/apiVersion", true},
		{"Deployment", "/kind", true},
		{"Deployment", "", false},
		{"ReplicaSet", "/spec/selector/matchLabels", true},
		{"DaemonSet", "/spec/selector", true},
		{"StatefulSet", "/spec/selector", true},
		{"StatefulSet", "/spec/volumeClaimTemplates", true},
		{"StatefulSet", "/spec/serviceName", true},
		{"StatefulSet", "/spec/podManagementPolicy", true},
		{"StatefulSet", "/spec/replicas", false},
		{"Service", "/spec/clusterIP", true},
		{"Service", "/spec/clusterIPs", true},
		{"Service", "/spec/ipFamilies", true},
		{"Service", "/spec/ports/80~1TCP/targetPort", false},
		{"Service", "/spec/selector", false},
		{"Job", "/spec/template/spec/containers/x/image", true},
		{"Job", "/spec/selector", true},
		{"Job", "/spec/completions", true},
		{"Job", "/spec/parallelism", false},
		{"PersistentVolumeClaim", "/spec/storageClassName", true},
		{"PersistentVolumeClaim", "/spec/accessModes", true},
		{"PersistentVolumeClaim", "/spec/volumeName", true},
		{"PersistentVolumeClaim", "/spec/selector", true},
		{"PersistentVolumeClaim", "/spec/resources/requests/storage",
		 false},
		{"ConfigMap", "/immutable", true},
		{"ConfigMap", "/data/X", false},
		{"Secret", "/immutable", true},
		{"Secret", "/type", true},
		{"Secret", "/data/X", false},
		{"Pod", "/spec/containers/web/image", false},
		{"Pod", "/spec/containers/web/env", true},
		{"Pod", "/spec/nodeName", true},
		{"Ingress", "/spec/rules", false},
		{"Certificate.cert-manager.io", "/spec/selector", false},
		{"Certificate.cert-manager.io", "/metadata/name", true},
	};

	RC_UNUSED(state);
	for (size_t i = 0; i < RC_ARRAY_SIZE(table); i++)
		if (rc_kube_immutable(table[i].kind, table[i].path) !=
		    table[i].want)
			fail_msg("%s %s: want %s", table[i].kind, table[i].path,
				 table[i].want ? "immutable" : "mutable");
}

/* --------------------------------------------------------------- expand */

/* The repository's root, from this file's path. */
static char *source_root(void)
{
	const char *me = __FILE__, *tail = strstr(me, "/tests/unit/");

	if (!tail || me[0] != '/')
		return NULL;
	return rc_strndup(me, (size_t)(tail - me));
}

typedef struct {
	rc_config *cfg;
	rc_diags diags; /* owns the file names of every rc_loc */
	rc_resource_set set;
} loaded;

/* Loads dir offline into l, keeping its diagnostics (and so the file
 * names of locations) until unload(). */
static void load_keep(loaded *l, const char *dir)
{
	rc_load_opts o = {.offline = true};
	rc_buf out = RC_BUF_INIT;
	int rc;

	memset(l, 0, sizeof(*l));
	rc_diags_init(&l->diags);
	rc = rc_config_load(&l->cfg, dir, &o, &l->diags);
	rc_diags_format(&l->diags, &out, false);
	if (rc != 0 || out.len)
		fail_msg("load %s: %s", dir, out.ptr);
	rc_buf_release(&out);
}

static void load_laravel(loaded *l)
{
	char *root = source_root();
	rc_buf dir = RC_BUF_INIT;

	assert_non_null(root);
	rc_buf_printf(&dir, "%s/examples/laravel-kubernetes", root);
	load_keep(l, dir.ptr);
	free(root);
	rc_buf_release(&dir);
	setenv("ACME_STAGING_APP_KEY", "base64:k3y-never-in-a-body", 1);
	setenv("ACME_STAGING_DB_PASSWORD", "pa55-never-in-a-body", 1);
}

static void unload(loaded *l)
{
	rc_resource_set_release(&l->set);
	rc_config_free(l->cfg);
	rc_diags_release(&l->diags);
}

static rc_resource *find(const rc_resource_set *s, const char *key)
{
	rc_resource *r = rc_resource_set_find(s, key);

	if (!r)
		fail_msg("no resource %s", key);
	return r;
}

static bool has_dep(const rc_resource *r, const char *key)
{
	for (size_t i = 0; i < r->ndeps; i++)
		if (!strcmp(r->deps[i], key))
			return true;
	return false;
}

static void expand_laravel_example(void **state)
{
	loaded l;
	const rc_env *env;
	rc_resource *ns, *cm, *sec, *web, *websvc, *queue, *ing;
	const char *nskey = "acme-staging/Namespace/acme-staging";
	json_t *b, *o;

	RC_UNUSED(state);
	load_laravel(&l);
	env = rc_config_env(l.cfg, "acme-staging");
	assert_non_null(env);
	assert_int_equal(rc_kube_expand(env, l.cfg->project, l.cfg->dir,
					&l.set),
			 0);
	assert_int_equal(l.set.n, 7);
	for (size_t i = 0; i < l.set.n; i++) {
		assert_string_equal(l.set.items[i].driver, "kubernetes");
		assert_string_equal(l.set.items[i].env, "acme-staging");
		assert_false(contains(l.set.items[i].body,
				      "k3y-never-in-a-body"));
		assert_false(contains(l.set.items[i].body,
				      "pa55-never-in-a-body"));
		assert_non_null(l.set.items[i].loc.file);
		assert_true(l.set.items[i].loc.line > 0);
		assert_string_equal(
			at_str(l.set.items[i].body,
			       "/metadata/labels/app.kubernetes.io~1managed-by"),
			"reconcile");
		assert_string_equal(
			at_str(l.set.items[i].body,
			       "/metadata/labels/reconcile.dev~1project"),
			"brand-sites");
		assert_string_equal(
			at_str(l.set.items[i].body,
			       "/metadata/labels/reconcile.dev~1environment"),
			"acme-staging");
		if (strcmp(l.set.items[i].key, nskey)) {
			assert_string_equal(at_str(l.set.items[i].body,
						   "/metadata/namespace"),
					    "acme-staging");
			assert_true(has_dep(&l.set.items[i], nskey));
		}
	}

	ns = find(&l.set, nskey);
	assert_string_equal(ns->kind, "Namespace");
	assert_string_equal(ns->name, "acme-staging");
	assert_int_equal(ns->ndeps, 0);
	assert_false(ns->precious);
	assert_json(ns->body,
		    "{\"apiVersion\": \"v1\", \"kind\": \"Namespace\", "
		    "\"metadata\": {\"name\": \"acme-staging\", \"labels\": "
		    "{\"app.kubernetes.io/managed-by\": \"reconcile\", "
		    "\"reconcile.dev/project\": \"brand-sites\", "
		    "\"reconcile.dev/environment\": \"acme-staging\"}}}");

	cm = find(&l.set, "acme-staging/ConfigMap/reconcile-config");
	assert_string_equal(at_str(cm->body, "/apiVersion"), "v1");
	assert_json(at(cm->body, "/data"),
		    "{\"APP_NAME\": \"acme\", \"APP_URL\": "
		    "\"https://staging.acme-coffee.example\", \"LOG_CHANNEL\": "
		    "\"stderr\", \"DB_CONNECTION\": \"mysql\", \"DB_PORT\": "
		    "\"3306\", \"QUEUE_CONNECTION\": \"database\", "
		    "\"SESSION_DRIVER\": \"database\", \"APP_ENV\": "
		    "\"staging\", \"APP_DEBUG\": \"true\", \"DB_HOST\": "
		    "\"mysql.staging-db.svc.cluster.local\", \"DB_DATABASE\": "
		    "\"acme_staging\", \"DB_USERNAME\": \"acme\"}");
	assert_non_null(strstr(cm->loc.file, "base.yaml"));

	sec = find(&l.set, "acme-staging/Secret/reconcile-secrets");
	assert_string_equal(at_str(sec->body, "/type"), "Opaque");
	{
		json_t *k = rc_secret_json_observed("env:ACME_STAGING_APP_KEY",
						    "base64:k3y-never-in-a-body");

		assert_true(rc_json_equal(at(sec->body, "/data/APP_KEY"), k));
		json_decref(k);
	}
	assert_string_equal(at_str(sec->body, "/data/DB_PASSWORD/ref"),
			    "env:ACME_STAGING_DB_PASSWORD");
	assert_int_equal(json_object_size(at(sec->body, "/data")), 2);

	web = find(&l.set, "acme-staging/Deployment/web");
	assert_string_equal(web->kind, "Deployment");
	assert_string_equal(web->name, "web");
	assert_string_equal(at_str(web->body, "/apiVersion"), "apps/v1");
	assert_true(has_dep(web, cm->key));
	assert_true(has_dep(web, sec->key));
	assert_int_equal(web->ndeps, 3);
	b = web->body;
	assert_string_equal(at_str(b, "/metadata/labels/app.kubernetes.io~1"
				      "name"),
			    "web");
	assert_int_equal(at_int(b, "/spec/replicas"), 1);
	assert_json(at(b, "/spec/selector"),
		    "{\"matchLabels\": {\"app.kubernetes.io/name\": \"web\", "
		    "\"reconcile.dev/environment\": \"acme-staging\"}}");
	assert_json(at(b, "/spec/template/metadata/labels"),
		    "{\"app.kubernetes.io/name\": \"web\", "
		    "\"reconcile.dev/environment\": \"acme-staging\", "
		    "\"app.kubernetes.io/managed-by\": \"reconcile\", "
		    "\"reconcile.dev/project\": \"brand-sites\"}");
	assert_int_equal(strlen(at_str(b, "/spec/template/metadata/"
					  "annotations/reconcile.dev~1"
					  "config-hash")),
			 16);
	assert_json(at(b, "/spec/template/spec/containers"),
		    "{\"web\": {\"name\": \"web\", \"image\": "
		    "\"registry.example.com/brand-sites/web:2.15.0-rc.2\", "
		    "\"envFrom\": [{\"configMapRef\": {\"name\": "
		    "\"reconcile-config\"}}, {\"secretRef\": {\"name\": "
		    "\"reconcile-secrets\"}}], \"ports\": {\"80/TCP\": "
		    "{\"containerPort\": 80, \"protocol\": \"TCP\"}}, "
		    "\"resources\": {\"requests\": {\"cpu\": \"250m\", "
		    "\"memory\": \"256Mi\"}}, \"readinessProbe\": {\"httpGet\": "
		    "{\"path\": \"/up\", \"port\": 80}, \"initialDelaySeconds\":"
		    " 10, \"periodSeconds\": 10, \"timeoutSeconds\": 2, "
		    "\"failureThreshold\": 3}}}");

	websvc = find(&l.set, "acme-staging/Service/web");
	assert_int_equal(websvc->ndeps, 1);
	assert_json(at(websvc->body, "/spec"),
		    "{\"type\": \"ClusterIP\", \"selector\": "
		    "{\"app.kubernetes.io/name\": \"web\", "
		    "\"reconcile.dev/environment\": \"acme-staging\"}, "
		    "\"ports\": {\"80/TCP\": {\"name\": \"http\", \"port\": 80,"
		    " \"targetPort\": 80, \"protocol\": \"TCP\"}}}");
	assert_true(web->loc.line == websvc->loc.line &&
		    !strcmp(web->loc.file, websvc->loc.file));

	queue = find(&l.set, "acme-staging/Deployment/queue");
	assert_null(rc_resource_set_find(&l.set, "acme-staging/Service/queue"));
	b = queue->body;
	assert_json(at(b, "/spec/template/spec/containers/queue/command"),
		    "[\"php\", \"artisan\", \"queue:work\", \"--sleep=3\", "
		    "\"--tries=3\", \"--max-time=3600\"]");
	assert_null(at(b, "/spec/template/spec/containers/queue/ports"));
	assert_null(at(b, "/spec/template/spec/containers/queue/"
			  "readinessProbe"));
	assert_string_equal(at_str(b, "/spec/template/spec/containers/queue/"
				      "resources/requests/cpu"),
			    "100m");
	/* one config, one hash */
	assert_string_equal(at_str(b, "/spec/template/metadata/annotations/"
				      "reconcile.dev~1config-hash"),
			    at_str(web->body, "/spec/template/metadata/"
					      "annotations/reconcile.dev~1"
					      "config-hash"));

	ing = find(&l.set, "acme-staging/Ingress/web");
	assert_non_null(strstr(ing->loc.file, "/k8s/ingress.yaml"));
	assert_int_equal(ing->ndeps, 1);
	b = ing->body;
	assert_string_equal(at_str(b, "/apiVersion"), "networking.k8s.io/v1");
	assert_string_equal(at_str(b, "/spec/rules/0/host"),
			    "staging.acme-coffee.example");
	assert_string_equal(at_str(b, "/metadata/annotations/cert-manager.io~1"
				      "cluster-issuer"),
			    "letsencrypt");

	/* what is sent for the Deployment: lists again, protocol included */
	o = rc_kube_to_object(web->body, NULL, NULL);
	assert_json(at(o, "/spec/template/spec/containers/0/ports"),
		    "[{\"containerPort\": 80, \"protocol\": \"TCP\"}]");
	assert_string_equal(at_str(o, "/spec/template/spec/containers/0/name"),
			    "web");
	json_decref(o);

	/* desired bodies are already normal */
	for (size_t i = 0; i < l.set.n; i++) {
		json_t *n = json_deep_copy(l.set.items[i].body);

		rc_kube_normalize(l.set.items[i].kind, n);
		assert_true(json_equal(n, l.set.items[i].body));
		json_decref(n);
	}
	unload(&l);
}

/* What the driver would observe after applying: the expanded body sent,
 * returned with the server's additions, compares equal. */
static int resolve_from_env(void *ctx, const json_t *secret_obj,
			    char **value)
{
	return rc_secret_resolve(value, secret_obj, ctx, NULL);
}

/* Fills in what the v1.19 server added to the contract objects. */
static void server_defaults(json_t *o)
{
	const char *kind = json_string_value(json_object_get(o, "kind"));
	json_t *md = json_object_get(o, "metadata"), *c, *p;
	size_t i;

	json_object_set_new(md, "uid", json_string("3c64850c"));
	json_object_set_new(md, "resourceVersion", json_string("253"));
	json_object_set_new(md, "creationTimestamp",
			    json_string("2026-11-22T01:51:17Z"));
	json_object_set_new(md, "managedFields", json_array());
	json_object_set_new(o, "status", json_pack("{s:i}", "replicas", 1));
	if (!strcmp(kind, "Deployment")) {
		json_t *spec = json_object_get(o, "spec");
		json_t *tpl = json_object_get(spec, "template");

		json_object_set_new(json_object_get(tpl, "metadata"),
				    "creationTimestamp", json_null());
		json_object_set_new(spec, "revisionHistoryLimit",
				    json_integer(10));
		json_object_set_new(spec, "strategy",
				    json_pack("{s:s}", "type", "RollingUpdate"));
		json_object_set_new(json_object_get(tpl, "spec"),
				    "dnsPolicy", json_string("ClusterFirst"));
		json_array_foreach(at(tpl, "/spec/containers"), i, c) {
			json_object_set_new(c, "imagePullPolicy",
					    json_string("IfNotPresent"));
			json_object_set_new(c, "terminationMessagePath",
					    json_string("/dev/termination-log"));
			if ((p = json_object_get(c, "readinessProbe")) != NULL) {
				json_object_set_new(p, "successThreshold",
						    json_integer(1));
				json_object_set_new(json_object_get(p,
								    "httpGet"),
						    "scheme", json_string("HTTP"));
			}
		}
		if (!json_object_get(md, "annotations"))
			json_object_set_new(md, "annotations", json_object());
		json_object_set_new(json_object_get(md, "annotations"),
				    "deployment.kubernetes.io/revision",
				    json_string("1"));
	} else if (!strcmp(kind, "Service")) {
		json_object_set_new(json_object_get(o, "spec"), "clusterIP",
				    json_string("10.0.0.203"));
		json_object_set_new(json_object_get(o, "spec"),
				    "sessionAffinity", json_string("None"));
	} else if (!strcmp(kind, "Namespace")) {
		json_object_set_new(o, "spec",
				    json_pack("{s:[s]}", "finalizers",
					      "kubernetes"));
	}
}

static void expanded_objects_round_trip(void **state)
{
	loaded l;
	const rc_env *env;

	RC_UNUSED(state);
	load_laravel(&l);
	env = rc_config_env(l.cfg, "acme-staging");
	assert_int_equal(rc_kube_expand(env, l.cfg->project, l.cfg->dir,
					&l.set),
			 0);
	for (size_t i = 0; i < l.set.n; i++) {
		rc_resource *r = &l.set.items[i];
		json_t *o = rc_kube_to_object(r->body, resolve_from_env,
					      (void *)(uintptr_t)env);
		json_t *back;

		assert_non_null(o);
		/* what is sent comes back as it was */
		back = rc_kube_to_body(o, r->body);
		assert_non_null(back);
		rc_kube_normalize(r->kind, back);
		assert_true(rc_json_equal(back, r->body));
		json_decref(back);
		/* and with what the server adds, it is not drift either */
		server_defaults(o);
		back = rc_kube_to_body(o, r->body);
		assert_non_null(back);
		rc_kube_normalize(r->kind, back);
		if (!strcmp(r->kind, "Deployment") ||
		    !strcmp(r->kind, "Service"))
			assert_false(rc_json_equal(back, r->body));
		assert_int_equal(changes(r->body, r->body, back, NULL), 0);
		if (!strcmp(r->kind, "Secret")) {
			assert_true(contains(o, "cGE1NS1uZXZlci1pbi1hLWJvZHk="));
			assert_false(contains(back, "pa55"));
		}
		json_decref(back);
		json_decref(o);
	}
	unload(&l);
}

static const char *hash_of(const rc_resource_set *s, const char *key)
{
	return at_str(find(s, key)->body, "/spec/template/metadata/"
					  "annotations/reconcile.dev~1"
					  "config-hash");
}

static void config_hash_follows_config_and_secrets(void **state)
{
	loaded l;
	rc_env *env;
	rc_resource_set s2 = {0}, s3 = {0}, s4 = {0};
	rc_kv *kv = NULL;
	char *saved;

	RC_UNUSED(state);
	load_laravel(&l);
	env = (rc_env *)(uintptr_t)rc_config_env(l.cfg, "acme-staging");
	assert_int_equal(rc_kube_expand(env, "brand-sites", l.cfg->dir, &l.set),
			 0);
	/* a config value changes */
	for (size_t i = 0; i < env->config.n; i++)
		if (!strcmp(env->config.items[i].key, "APP_DEBUG"))
			kv = &env->config.items[i];
	assert_non_null(kv);
	saved = kv->value;
	kv->value = rc_strdup("false");
	assert_int_equal(rc_kube_expand(env, "brand-sites", l.cfg->dir, &s2), 0);
	assert_string_not_equal(hash_of(&l.set, "acme-staging/Deployment/web"),
				hash_of(&s2, "acme-staging/Deployment/web"));
	free(kv->value);
	kv->value = saved;
	/* back as it was: the same hash again */
	assert_int_equal(rc_kube_expand(env, "brand-sites", l.cfg->dir, &s3), 0);
	assert_string_equal(hash_of(&l.set, "acme-staging/Deployment/web"),
			    hash_of(&s3, "acme-staging/Deployment/web"));
	/* a secret value changes */
	setenv("ACME_STAGING_DB_PASSWORD", "an0ther-never-in-a-body", 1);
	assert_int_equal(rc_kube_expand(env, "brand-sites", l.cfg->dir, &s4), 0);
	assert_string_not_equal(hash_of(&l.set, "acme-staging/Deployment/web"),
				hash_of(&s4, "acme-staging/Deployment/web"));
	assert_string_not_equal(hash_of(&l.set, "acme-staging/Deployment/queue"),
				hash_of(&s4, "acme-staging/Deployment/queue"));
	rc_resource_set_release(&s2);
	rc_resource_set_release(&s3);
	rc_resource_set_release(&s4);
	unload(&l);
}

static const char root_k8s[] = "version: 1\nproject: shop\nenvironments:\n"
			       "  staging: { file: envs/staging.yaml }\n";

/* Loads a one-environment configuration written into a new directory
 * (*dir, removed by the caller). */
static const rc_env *load_one(const char *env_yaml, char **dir, loaded *l)
{
	*dir = tmpdir_new();
	write_file(*dir, "reconcile.yaml", root_k8s);
	write_file(*dir, "envs/staging.yaml", env_yaml);
	write_file(*dir, "secrets/tls.key", "tls-file-never-in-a-body\n");
	load_keep(l, *dir);
	return rc_config_env(l->cfg, "staging");
}

static void expand_native_extras_and_probes(void **state)
{
	char *dir;
	loaded l;
	const rc_env *env = load_one(
		"target: { driver: kubernetes, namespace: shop-staging }\n"
		"services:\n"
		"  web:\n"
		"    image: shop/web:1\n"
		"    args: [--workers, '2']\n"
		"    port: 8080\n"
		"    replicas: 2\n"
		"    cpu: 1\n"
		"    memory: 1Gi\n"
		"    env: { MODE: fast }\n"
		"    health: { tcp: true, interval: 5s, retries: 5 }\n"
		"    kubernetes:\n"
		"      deployment:\n"
		"        metadata: { name: renamed, annotations: { team: shop } }\n"
		"        spec:\n"
		"          strategy: { type: Recreate }\n"
		"          template:\n"
		"            spec:\n"
		"              nodeSelector: { pool: web }\n"
		"              containers:\n"
		"                - name: web\n"
		"                  resources: { limits: { memory: 2Gi } }\n"
		"                  env: [ { name: EXTRA, value: 'yes' } ]\n"
		"                - name: sidecar\n"
		"                  image: envoy:1\n"
		"      service:\n"
		"        spec:\n"
		"          type: LoadBalancer\n"
		"          ports: [ { port: 8080, nodePort: 30080 } ]\n"
		"  worker:\n"
		"    image: shop/web:1\n"
		"    command: [worker]\n"
		"    health: { command: [check, --quick], timeout: 3s }\n"
		"secrets:\n"
		"  TLS_KEY: { file: secrets/tls.key }\n",
		&dir, &l);
	rc_resource_set set = {0};
	json_t *b;

	RC_UNUSED(state);
	assert_int_equal(rc_kube_expand(env, l.cfg->project, dir, &set), 0);
	/* no config: no ConfigMap, envFrom the Secret only */
	assert_null(rc_resource_set_find(&set,
					 "staging/ConfigMap/reconcile-config"));
	assert_non_null(find(&set, "staging/Secret/reconcile-secrets"));
	assert_false(contains(find(&set, "staging/Secret/reconcile-secrets")
				      ->body,
			      "tls-file-never-in-a-body"));
	assert_string_equal(at_str(find(&set, "staging/Secret/"
					      "reconcile-secrets")
					   ->body,
				   "/data/TLS_KEY/ref"),
			    "file:secrets/tls.key");
	b = find(&set, "staging/Deployment/web")->body;
	assert_string_equal(at_str(b, "/metadata/name"), "web");
	assert_string_equal(at_str(b, "/metadata/annotations/team"), "shop");
	assert_string_equal(at_str(b, "/spec/strategy/type"), "Recreate");
	assert_int_equal(at_int(b, "/spec/replicas"), 2);
	assert_string_equal(at_str(b, "/spec/template/spec/nodeSelector/pool"),
			    "web");
	assert_json(at(b, "/spec/template/spec/containers/web"),
		    "{\"name\": \"web\", \"image\": \"shop/web:1\", \"args\": "
		    "[\"--workers\", \"2\"], \"env\": {\"MODE\": {\"name\": "
		    "\"MODE\", \"value\": \"fast\"}, \"EXTRA\": {\"name\": "
		    "\"EXTRA\", \"value\": \"yes\"}}, \"envFrom\": "
		    "[{\"secretRef\": {\"name\": \"reconcile-secrets\"}}], "
		    "\"ports\": {\"8080/TCP\": {\"containerPort\": 8080, "
		    "\"protocol\": \"TCP\"}}, \"resources\": {\"requests\": "
		    "{\"cpu\": \"1\", \"memory\": \"1Gi\"}, \"limits\": "
		    "{\"memory\": \"2Gi\"}}, \"readinessProbe\": "
		    "{\"tcpSocket\": {\"port\": 8080}, \"periodSeconds\": 5, "
		    "\"timeoutSeconds\": 2, \"failureThreshold\": 5}}");
	assert_string_equal(at_str(b, "/spec/template/spec/containers/sidecar/"
				      "image"),
			    "envoy:1");
	assert_string_equal(at_str(b, "/spec/template/metadata/labels/"
				      "reconcile.dev~1project"),
			    "shop");
	b = find(&set, "staging/Service/web")->body;
	assert_string_equal(at_str(b, "/spec/type"), "LoadBalancer");
	assert_json(at(b, "/spec/ports"),
		    "{\"8080/TCP\": {\"name\": \"http\", \"port\": 8080, "
		    "\"targetPort\": 8080, \"protocol\": \"TCP\", \"nodePort\":"
		    " 30080}}");
	b = find(&set, "staging/Deployment/worker")->body;
	assert_json(at(b, "/spec/template/spec/containers/worker/"
			  "readinessProbe"),
		    "{\"exec\": {\"command\": [\"check\", \"--quick\"]}, "
		    "\"periodSeconds\": 10, \"timeoutSeconds\": 3, "
		    "\"failureThreshold\": 3}");
	assert_null(rc_resource_set_find(&set, "staging/Service/worker"));
	rc_resource_set_release(&set);
	unload(&l);
	tmpdir_remove(dir);
}

/* An expansion that fails leaves out as it was. */
static void expect_error(const char *env_yaml, int code, const char *msg,
			 const char *file, const char *never)
{
	char *dir;
	loaded l;
	const rc_env *env = load_one(env_yaml, &dir, &l);
	rc_resource_set set = {0};
	const rc_error *e;

	rc_resource_set_add(&set, "other", "kubernetes", "Namespace", "other",
			    json_object());
	assert_int_equal(rc_kube_expand(env, l.cfg->project, dir, &set), code);
	assert_int_equal(set.n, 1);
	e = rc_error_last();
	assert_non_null(e);
	if (!strstr(e->message, msg))
		fail_msg("'%s' is not in '%s'", msg, e->message);
	if (never)
		assert_null(strstr(e->message, never));
	if (file) {
		assert_non_null(e->loc.file);
		assert_non_null(strstr(e->loc.file, file));
		assert_true(e->loc.line > 0);
	}
	rc_resource_set_release(&set);
	unload(&l);
	tmpdir_remove(dir);
}

static void expand_errors(void **state)
{
	RC_UNUSED(state);
	unsetenv("RC_KMAP_UNSET");
	expect_error("target: { driver: kubernetes, namespace: shop }\n"
		     "services: { web: { image: x } }\n"
		     "addons: { db: { kind: postgresql } }\n",
		     RC_EUNSUPPORTED, "add-on 'db'", "staging.yaml", NULL);
	expect_error("target: { driver: kubernetes, namespace: shop }\n"
		     "services: { web: { image: x } }\n"
		     "secrets: { K: { env: RC_KMAP_UNSET } }\n",
		     RC_ENOTFOUND, "RC_KMAP_UNSET", NULL, NULL);
	expect_error("target: { driver: kubernetes, namespace: shop }\n"
		     "resources:\n"
		     "  - manifest: { apiVersion: v1, kind: Secret, metadata: "
		     "{ name: s }, stringData: { pw: hunter2-literal } }\n",
		     RC_EINVALID, "declare them under 'secrets'",
		     "staging.yaml", "hunter2-literal");
	expect_error("target: { driver: kubernetes, namespace: shop }\n"
		     "services: { web: { image: x } }\n"
		     "resources:\n"
		     "  - manifest: { apiVersion: apps/v1, kind: Deployment, "
		     "metadata: { name: web }, spec: {} }\n",
		     RC_EEXISTS, "Deployment 'web' is declared twice",
		     "staging.yaml", NULL);
	expect_error("target: { driver: kubernetes, namespace: shop }\n"
		     "services:\n  web:\n    image: x\n"
		     "    kubernetes: { service: { spec: { type: NodePort } } }\n",
		     RC_EINVALID, "no port", "staging.yaml", NULL);
}

static void raw_manifests(void **state)
{
	char *dir;
	loaded l;
	const rc_env *env = load_one(
		"target: { driver: kubernetes, namespace: shop }\n"
		"resources:\n"
		"  - manifest: { apiVersion: v1, kind: Namespace, metadata: "
		"{ name: shop, labels: { istio-injection: enabled } } }\n"
		"  - manifest: { apiVersion: rbac.authorization.k8s.io/v1, kind: "
		"ClusterRole, metadata: { name: reader }, rules: [] }\n"
		"  - manifest: { apiVersion: cert-manager.io/v1, kind: "
		"Certificate, metadata: { name: web, namespace: other }, "
		"spec: { secretName: web-tls }, status: { ready: true } }\n"
		"  - manifest: { apiVersion: v1, kind: Secret, metadata: "
		"{ name: sa-token, annotations: { kubernetes.io/"
		"service-account.name: ci } }, type: kubernetes.io/"
		"service-account-token }\n"
		"  - manifest: { apiVersion: v1, kind: PersistentVolumeClaim, "
		"metadata: { name: data }, spec: { accessModes: "
		"[ReadWriteOnce], resources: { requests: { storage: "
		"10240Mi } } } }\n",
		&dir, &l);
	rc_resource_set set = {0};
	rc_resource *r;

	RC_UNUSED(state);
	assert_int_equal(rc_kube_expand(env, l.cfg->project, dir, &set), 0);
	assert_int_equal(set.n, 5);
	/* the environment's Namespace takes the manifest's labels */
	r = find(&set, "staging/Namespace/shop");
	assert_string_equal(at_str(r->body, "/metadata/labels/istio-injection"),
			    "enabled");
	assert_string_equal(at_str(r->body, "/metadata/labels/reconcile.dev~1"
					    "project"),
			    "shop");
	/* cluster-scoped: no namespace, no dependency */
	r = find(&set, "staging/ClusterRole/reader");
	assert_null(at(r->body, "/metadata/namespace"));
	assert_int_equal(r->ndeps, 0);
	assert_string_equal(at_str(r->body, "/metadata/labels/"
					    "app.kubernetes.io~1managed-by"),
			    "reconcile");
	/* another group: Kind.group; a namespace given is kept; no status */
	r = find(&set, "staging/Certificate.cert-manager.io/web");
	assert_string_equal(r->kind, "Certificate.cert-manager.io");
	assert_string_equal(at_str(r->body, "/metadata/namespace"), "other");
	assert_null(at(r->body, "/status"));
	assert_true(has_dep(r, "staging/Namespace/shop"));
	r = find(&set, "staging/Secret/sa-token");
	assert_string_equal(at_str(r->body, "/metadata/namespace"), "shop");
	assert_false(r->precious);
	/* a volume claim: deleting it loses data */
	r = find(&set, "staging/PersistentVolumeClaim/data");
	assert_true(r->precious);
	rc_kube_normalize(r->kind, r->body);
	assert_string_equal(at_str(r->body, "/spec/resources/requests/storage"),
			    "10Gi");
	rc_resource_set_release(&set);
	unload(&l);
	tmpdir_remove(dir);
}

/* ----------------------------------------------------------------- hooks */

static void hook_jobs(void **state)
{
	loaded l;
	const rc_env *env;
	json_t *spec = J("{\"run\": [\"php\", \"artisan\", \"migrate\", "
			 "\"--force\"], \"where\": \"target\", \"service\": "
			 "\"web\", \"env\": {\"APP_ENV\": \"migrating\"}, "
			 "\"timeout\": 900, \"irreversible\": true, \"name\": "
			 "\"migrate\"}");
	char *name = rc_kube_hook_job_name("migrate",
					   "1b4e28ba-2fa1-11d2-883f-0016d3cca427");
	json_t *job, *bad;

	RC_UNUSED(state);
	load_laravel(&l);
	env = rc_config_env(l.cfg, "acme-staging");
	job = rc_kube_hook_job(env, "brand-sites", spec, name);
	assert_non_null(job);
	assert_string_equal(at_str(job, "/apiVersion"), "batch/v1");
	assert_string_equal(at_str(job, "/kind"), "Job");
	assert_string_equal(at_str(job, "/metadata/name"), name);
	assert_string_equal(at_str(job, "/metadata/namespace"), "acme-staging");
	assert_json(at(job, "/metadata/labels"),
		    "{\"reconcile.dev/hook\": \"migrate\", "
		    "\"app.kubernetes.io/managed-by\": \"reconcile\", "
		    "\"reconcile.dev/project\": \"brand-sites\", "
		    "\"reconcile.dev/environment\": \"acme-staging\"}");
	assert_int_equal(at_int(job, "/spec/backoffLimit"), 0);
	assert_int_equal(at_int(job, "/spec/activeDeadlineSeconds"), 900);
	assert_int_equal(at_int(job, "/spec/ttlSecondsAfterFinished"), 3600);
	/* the pod is marked as ours, but no Service selects it */
	assert_json(at(job, "/spec/template/metadata/labels"),
		    "{\"reconcile.dev/hook\": \"migrate\", "
		    "\"app.kubernetes.io/managed-by\": \"reconcile\", "
		    "\"reconcile.dev/project\": \"brand-sites\", "
		    "\"reconcile.dev/environment\": \"acme-staging\"}");
	assert_string_equal(at_str(job, "/spec/template/spec/restartPolicy"),
			    "Never");
	assert_int_equal(json_array_size(at(job, "/spec/template/spec/"
						 "containers")),
			 1);
	assert_json(at(job, "/spec/template/spec/containers/0"),
		    "{\"name\": \"hook\", \"image\": "
		    "\"registry.example.com/brand-sites/web:2.15.0-rc.2\", "
		    "\"command\": [\"php\", \"artisan\", \"migrate\", "
		    "\"--force\"], \"env\": [{\"name\": \"APP_ENV\", \"value\": "
		    "\"migrating\"}], \"envFrom\": [{\"configMapRef\": "
		    "{\"name\": \"reconcile-config\"}}, {\"secretRef\": "
		    "{\"name\": \"reconcile-secrets\"}}], \"resources\": "
		    "{\"requests\": {\"cpu\": \"250m\", \"memory\": "
		    "\"256Mi\"}}}");
	json_decref(job);

	/* without a name in the spec, the Job's name is the label */
	json_object_del(spec, "name");
	json_object_set_new(spec, "timeout", json_integer(0));
	job = rc_kube_hook_job(env, "brand-sites", spec, name);
	assert_string_equal(at_str(job, "/metadata/labels/reconcile.dev~1hook"),
			    name);
	assert_null(at(job, "/spec/activeDeadlineSeconds"));
	json_decref(job);

	bad = json_deep_copy(spec);
	json_object_set_new(bad, "service", json_string("nope"));
	assert_null(rc_kube_hook_job(env, "brand-sites", bad, name));
	assert_non_null(strstr(rc_error_last()->message, "no such service"));
	json_object_set_new(bad, "service", json_string("web"));
	json_object_set_new(bad, "where", json_string("local"));
	assert_null(rc_kube_hook_job(env, "brand-sites", bad, name));
	json_object_set_new(bad, "where", json_string("target"));
	json_object_set_new(bad, "run", json_array());
	assert_null(rc_kube_hook_job(env, "brand-sites", bad, name));
	json_decref(bad);
	json_decref(spec);
	free(name);
	unload(&l);
}

static void hook_job_names(void **state)
{
	const char *run = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
	const char *names[] = {
		"migrate", "pre_apply[0]", "", "Back Up The DB!",
		("a-very-long-hook-name-that-goes-on-and-on-and-on-and-on-and-"
		 "on-and-on-and-on"),
		"---"};
	char *a, *b, *c;

	RC_UNUSED(state);
	for (size_t i = 0; i < RC_ARRAY_SIZE(names); i++) {
		a = rc_kube_hook_job_name(names[i], run);
		b = rc_kube_hook_job_name(names[i], run);
		c = rc_kube_hook_job_name(names[i], "another-run");
		assert_true(rc_is_dns_label(a));
		assert_true(strlen(a) <= 63);
		assert_string_equal(a, b);
		assert_string_not_equal(a, c);
		free(a);
		free(b);
		free(c);
	}
	a = rc_kube_hook_job_name("migrate", run);
	assert_memory_equal(a, "migrate-", 8);
	assert_int_equal(strlen(a), 18);
	free(a);
	a = rc_kube_hook_job_name("pre_apply[0]", run);
	assert_memory_equal(a, "pre-apply-0-", 12);
	free(a);
	a = rc_kube_hook_job_name("", run);
	assert_memory_equal(a, "hook-", 5);
	free(a);
	/* two hooks of one run differ */
	a = rc_kube_hook_job_name("migrate", run);
	b = rc_kube_hook_job_name("seed", run);
	assert_string_not_equal(a + strlen(a) - 10, b + strlen(b) - 10);
	free(a);
	free(b);
}

/* What a deletion that does not end says, exactly. */
static void stuck(const char *resource, const char *obj_text, long waited,
		  const char *deps_text, const char *want)
{
	json_t *obj = json_loads(obj_text, 0, NULL);
	json_t *deps = deps_text ? json_loads(deps_text, 0, NULL) : NULL;
	rc_buf b = RC_BUF_INIT;

	assert_non_null(obj);
	rc_kube_deletion_stuck(&b, resource, obj, waited, deps);
	assert_string_equal(b.ptr, want);
	rc_buf_release(&b);
	json_decref(obj);
	json_decref(deps);
}

#define STUCK_WAITS " (target.wait_timeout sets how long reconcile " \
			  "waits); it waits for:\n    "

static void deletion_stuck_messages(void **state)
{
	const char *av, *kind;

	(void)state;
	/* another controller's finalizer (a Deployment's own conditions say
	 * nothing about its deletion) */
	stuck("deployments.apps",
	      "{\"kind\": \"Deployment\", \"metadata\": {\"name\": \"web\","
	      " \"namespace\": \"shop\","
	      " \"deletionTimestamp\": \"2026-11-22T01:51:17Z\","
	      " \"finalizers\": [\"example.com/protect\"]},"
	      " \"status\": {\"conditions\": [{\"type\": \"Available\","
	      " \"status\": \"True\", \"message\": \"ok\"}]}}",
	      3, NULL,
	      "deployments.apps 'web' in namespace 'shop' is still "
	      "terminating 3s after its deletion at 2026-11-22T01:51:17Z"
	      STUCK_WAITS "finalizer 'example.com/protect': another controller must "
	      "remove it (is the controller that set it running? removing it "
	      "by hand skips its cleanup)");
	/* foreground deletion: the dependents still there */
	stuck("jobs.batch",
	      "{\"metadata\": {\"name\": \"seed\", \"namespace\": \"shop\","
	      " \"deletionTimestamp\": \"2026-11-22T01:51:17Z\","
	      " \"finalizers\": [\"foregroundDeletion\"]}}",
	      300,
	      "[[\"pods\", {\"metadata\": {\"name\": \"seed-x7k2p\","
	      " \"deletionTimestamp\": \"2026-11-22T01:51:17Z\","
	      " \"finalizers\": [\"example.com/protect\"]}}],"
	      " [\"pods\", {\"metadata\": {\"name\": \"seed-q9w4z\"}}]]",
	      "jobs.batch 'seed' in namespace 'shop' is still terminating 300s "
	      "after its deletion at 2026-11-22T01:51:17Z" STUCK_WAITS
	      "finalizer 'foregroundDeletion': the garbage collector deletes "
	      "its dependents first; still there: pods 'seed-x7k2p' "
	      "(terminating, finalizer 'example.com/protect'), pods "
	      "'seed-q9w4z'");
	/* ... none left; and unknown (no list) */
	stuck("deployments.apps",
	      "{\"metadata\": {\"name\": \"web\", \"namespace\": \"shop\","
	      " \"finalizers\": [\"foregroundDeletion\", \"orphan\"]}}",
	      5, "[]",
	      "deployments.apps 'web' in namespace 'shop' is still terminating "
	      "5s after its deletion" STUCK_WAITS "finalizer 'foregroundDeletion': the garbage collector deletes "
	      "its dependents first; none is left, the garbage collector has "
	      "yet to remove it\n"
	      "    finalizer 'orphan': the garbage collector orphans its "
	      "dependents first");
	stuck("widgets.example.com",
	      "{\"metadata\": {\"name\": \"w\", \"namespace\": \"shop\","
	      " \"finalizers\": [\"foregroundDeletion\"]}}",
	      5, NULL,
	      "widgets.example.com 'w' in namespace 'shop' is still terminating "
	      "5s after its deletion" STUCK_WAITS "finalizer 'foregroundDeletion': the garbage collector deletes "
	      "its dependents first");
	/* many dependents: five named */
	stuck("replicasets.apps",
	      "{\"metadata\": {\"name\": \"rs\", \"namespace\": \"shop\","
	      " \"finalizers\": [\"foregroundDeletion\"]}}",
	      5,
	      "[[\"pods\", {\"metadata\": {\"name\": \"a\"}}],"
	      " [\"pods\", {\"metadata\": {\"name\": \"b\"}}],"
	      " [\"pods\", {\"metadata\": {\"name\": \"c\"}}],"
	      " [\"pods\", {\"metadata\": {\"name\": \"d\"}}],"
	      " [\"pods\", {\"metadata\": {\"name\": \"e\"}}],"
	      " [\"pods\", {\"metadata\": {\"name\": \"f\"}}],"
	      " [\"pods\", {\"metadata\": {\"name\": \"g\"}}]]",
	      "replicasets.apps 'rs' in namespace 'shop' is still terminating "
	      "5s after its deletion" STUCK_WAITS "finalizer 'foregroundDeletion': the garbage collector deletes "
	      "its dependents first; still there: pods 'a', pods 'b', pods "
	      "'c', pods 'd', pods 'e' and 2 more");
	/* a namespace: its spec finalizer and the namespace controller's
	 * conditions that are True */
	stuck("namespaces",
	      "{\"kind\": \"Namespace\", \"metadata\": {\"name\": \"shop\","
	      " \"deletionTimestamp\": \"2026-11-22T01:51:17Z\"},"
	      " \"spec\": {\"finalizers\": [\"kubernetes\"]},"
	      " \"status\": {\"phase\": \"Terminating\", \"conditions\": ["
	      "{\"type\": \"NamespaceDeletionContentFailure\","
	      " \"status\": \"False\", \"reason\": \"ContentDeleted\","
	      " \"message\": \"All content successfully deleted, may be "
	      "waiting on finalization\"},"
	      "{\"type\": \"NamespaceContentRemaining\", \"status\": \"True\","
	      " \"reason\": \"SomeResourcesRemain\", \"message\": \"Some "
	      "resources are remaining: configmaps. has 1 resource "
	      "instances\"},"
	      "{\"type\": \"NamespaceFinalizersRemaining\", \"status\": "
	      "\"True\", \"reason\": \"SomeFinalizersRemain\", \"message\": "
	      "\"Some content in the namespace has finalizers remaining: "
	      "example.com/protect in 1 resource instances\"}]}}",
	      3, NULL,
	      "namespaces 'shop' is still terminating 3s after its deletion at "
	      "2026-11-22T01:51:17Z" STUCK_WAITS "spec.finalizers 'kubernetes': the namespace controller deletes "
	      "everything in the namespace first\n"
	      "    NamespaceContentRemaining: Some resources are remaining: "
	      "configmaps. has 1 resource instances\n"
	      "    NamespaceFinalizersRemaining: Some content in the namespace "
	      "has finalizers remaining: example.com/protect in 1 resource "
	      "instances");
	/* nothing holds it any more */
	stuck("configmaps",
	      "{\"metadata\": {\"name\": \"c\", \"namespace\": \"shop\","
	      " \"finalizers\": []}}",
	      3, NULL,
	      "configmaps 'c' in namespace 'shop' is still terminating 3s after "
	      "its deletion" STUCK_WAITS "no finalizer is left: the API server has yet to remove "
	      "it");

	assert_true(rc_kube_dependent_kind("Deployment", &av, &kind));
	assert_string_equal(av, "apps/v1");
	assert_string_equal(kind, "ReplicaSet");
	assert_true(rc_kube_dependent_kind("Job", &av, &kind));
	assert_string_equal(av, "v1");
	assert_string_equal(kind, "Pod");
	assert_true(rc_kube_dependent_kind("CronJob", &av, &kind));
	assert_string_equal(kind, "Job");
	assert_false(rc_kube_dependent_kind("ConfigMap", &av, &kind));
}


static void health_of(const char *obj_json, const char *want, bool sick)
{
	json_t *o = json_loads(obj_json, 0, NULL);
	bool unhealthy = !sick;
	char *h;

	assert_non_null(o);
	h = rc_kube_health(o, &unhealthy);
	if (!want) {
		assert_null(h);
	} else {
		assert_non_null(h);
		assert_string_equal(h, want);
		assert_int_equal(unhealthy, sick);
	}
	free(h);
	json_decref(o);
}

/* The plan's health column: ready/desired, a rollout under way is not
 * unhealthy, fewer ready with nothing rolling out is. */
static void workload_health(void **state)
{
	(void)state;
	health_of("{\"kind\": \"Deployment\", \"metadata\": {\"generation\": 2},"
		  " \"spec\": {\"replicas\": 3}, \"status\": {\"observedGeneration\": 2,"
		  " \"replicas\": 3, \"updatedReplicas\": 3, \"readyReplicas\": 3}}",
		  "ready 3/3", false);
	health_of("{\"kind\": \"Deployment\", \"metadata\": {\"generation\": 2},"
		  " \"spec\": {\"replicas\": 3}, \"status\": {\"observedGeneration\": 2,"
		  " \"replicas\": 3, \"updatedReplicas\": 3, \"readyReplicas\": 1}}",
		  "ready 1/3", true);
	health_of("{\"kind\": \"Deployment\", \"metadata\": {\"generation\": 3},"
		  " \"spec\": {\"replicas\": 2}, \"status\": {\"observedGeneration\": 2,"
		  " \"replicas\": 2, \"readyReplicas\": 1}}",
		  "ready 1/2, rolling out", false);
	health_of("{\"kind\": \"StatefulSet\", \"spec\": {}, \"status\": {}}",
		  "ready 0/1", true);
	health_of("{\"kind\": \"DaemonSet\", \"status\": {\"desiredNumberScheduled\": 4,"
		  " \"numberReady\": 4, \"updatedNumberScheduled\": 4}}",
		  "ready 4/4", false);
	health_of("{\"kind\": \"ConfigMap\"}", NULL, false);
}

int test_group_kube_map(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(kind_keys),
		cmocka_unit_test(label_values),
		cmocka_unit_test(ownership_marks),
		cmocka_unit_test(contract_deployment_is_not_drift),
		cmocka_unit_test(equivalent_spellings_are_not_drift),
		cmocka_unit_test(contract_service_configmap_namespace),
		cmocka_unit_test(secret_bodies_hold_no_values),
		cmocka_unit_test(round_trips),
		cmocka_unit_test(odd_shapes),
		cmocka_unit_test(quantity_table),
		cmocka_unit_test(normalize_folds_spellings),
		cmocka_unit_test(immutable_paths),
		cmocka_unit_test(expand_laravel_example),
		cmocka_unit_test(expanded_objects_round_trip),
		cmocka_unit_test(config_hash_follows_config_and_secrets),
		cmocka_unit_test(expand_native_extras_and_probes),
		cmocka_unit_test(expand_errors),
		cmocka_unit_test(raw_manifests),
		cmocka_unit_test(hook_jobs),
		cmocka_unit_test(hook_job_names),
		cmocka_unit_test(deletion_stuck_messages),
		cmocka_unit_test(workload_health),
	};
	return cmocka_run_group_tests_name("kube_map", tests, NULL, NULL);
}
