/* Typing a merged environment body into rc_env, with every check the
 * language makes on its own (cross-environment checks are in load.c). */
#include "reconciler/base/common.h"
#include "schema/secrets.h"
#include "schema/age.h"
#include "schema/age_keys.h"
#include "schema/loader.h"

/* ---- helpers ---- */

void rc_argv_free(rc_argv *a)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	a->v = NULL;
	a->n = 0;
}

void rc_kvlist_free(rc_kvlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->items[i].key);
		free(l->items[i].value);
	}
	free(l->items);
	memset(l, 0, sizeof(*l));
}

void rc_kvlist_add(rc_kvlist *l, const char *key, const char *value,
		   rc_loc loc)
{
	RC_GROW(l->items, l->cap, l->n + 1);
	l->items[l->n].key = rc_strdup(key);
	l->items[l->n].value = rc_strdup(value);
	l->items[l->n].loc = loc;
	l->n++;
}

const char *rc_kvlist_get(const rc_kvlist *l, const char *key)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (!strcmp(l->items[i].key, key))
			return l->items[i].value;
	return NULL;
}

bool rc_check_keys(rc_ctx *c, const rc_node *map, const char *const *keys,
		   size_t nkeys)
{
	size_t i, j;
	bool ok = true;

	for (i = 0; i < map->n; i++) {
		const rc_node *k = map->keys[i];
		const char *hint;

		for (j = 0; j < nkeys; j++)
			if (!strcmp(k->str, keys[j]))
				break;
		if (j < nkeys)
			continue;
		ok = false;
		hint = rc_did_you_mean(k->str, keys, nkeys);
		if (hint)
			RC_CTX_ERROR(c, k->loc, k->span,
				      "unknown key '%s' in %s; did you mean "
				      "'%s'?",
				      k->str, c->what, hint);
		else
			RC_CTX_ERROR(c, k->loc, k->span,
				      "unknown key '%s' in %s", k->str,
				      c->what);
	}
	return ok;
}

bool rc_expect_map(rc_ctx *c, const rc_node *n, const char *field)
{
	if (n && n->kind == RC_NODE_MAP)
		return true;
	RC_CTX_ERROR(c, n->loc, n->span,
		      "'%s' in %s must be a map, not %s", field, c->what,
		      rc_node_kind_name(n));
	return false;
}

char *rc_scalar_text(rc_ctx *c, const rc_node *n, const char *field)
{
	if (n->kind != RC_NODE_SCALAR || rc_node_is_null(n)) {
		RC_CTX_ERROR(c, n->loc, n->span,
			      "'%s' in %s must be a string, not %s", field,
			      c->what, rc_node_kind_name(n));
		return NULL;
	}
	return rc_strdup(n->str);
}

char *rc_get_str(rc_ctx *c, const rc_node *map, const char *key, bool required,
		 rc_loc at, int span)
{
	const rc_node *n = rc_node_get(map, key);

	if (!n) {
		if (required)
			RC_CTX_ERROR(c, at, span,
				      "%s is missing the required key '%s'",
				      c->what, key);
		return NULL;
	}
	return rc_scalar_text(c, n, key);
}

int rc_get_int(rc_ctx *c, const rc_node *map, const char *key, int def,
	       long min, long max)
{
	const rc_node *n = rc_node_get(map, key);
	long v;
	char *end;

	if (!n)
		return def;
	if (n->kind != RC_NODE_SCALAR ||
	    rc_node_scalar_type(n) != RC_SCALAR_INT) {
		RC_CTX_ERROR(c, n->loc, n->span,
			      "'%s' in %s must be an integer, not %s", key,
			      c->what, rc_node_kind_name(n));
		return def;
	}
	errno = 0;
	v = strtol(n->str, &end, 0);
	if (errno || *end || v < min || v > max) {
		RC_CTX_ERROR(c, n->loc, n->span,
			      "'%s' in %s must be between %ld and %ld, not %s",
			      key, c->what, min, max, n->str);
		return def;
	}
	return (int)v;
}

int rc_get_bool(rc_ctx *c, const rc_node *map, const char *key, int def)
{
	const rc_node *n = rc_node_get(map, key);

	if (!n)
		return def;
	if (n->kind != RC_NODE_SCALAR ||
	    rc_node_scalar_type(n) != RC_SCALAR_BOOL) {
		RC_CTX_ERROR(c, n->loc, n->span,
			      "'%s' in %s must be true or false, not %s", key,
			      c->what, rc_node_kind_name(n));
		return def;
	}
	return tolower((unsigned char)n->str[0]) == 't';
}

bool rc_get_argv(rc_ctx *c, const rc_node *map, const char *key, rc_argv *out,
		 bool nonempty, const char *items)
{
	const rc_node *n = rc_node_get(map, key);
	size_t i;
	bool ok = true;

	memset(out, 0, sizeof(*out));
	if (!n)
		return true;
	if (n->kind == RC_NODE_SCALAR && items) {
		RC_CTX_ERROR(c, n->loc, n->span,
			     "'%s' in %s must be a list of %s, not %s", key,
			     c->what, items, rc_node_kind_name(n));
		return false;
	}
	if (n->kind == RC_NODE_SCALAR) {
		RC_CTX_ERROR(c, n->loc, n->span,
			      "'%s' in %s must be a list of arguments (argv), "
			      "not a string: reconcile never runs a shell; "
			      "write it as [\"prog\", \"arg\", ...]",
			      key, c->what);
		return false;
	}
	if (n->kind != RC_NODE_SEQ) {
		RC_CTX_ERROR(c, n->loc, n->span, "'%s' in %s must be a list of %s, not %s",
			     key, c->what, items ? items : "arguments",
			     rc_node_kind_name(n));
		return false;
	}
	if (nonempty && n->n == 0) {
		RC_CTX_ERROR(c, n->loc, n->span,
			      "'%s' in %s must not be empty", key, c->what);
		return false;
	}
	out->v = rc_calloc(n->n + 1, sizeof(char *));
	for (i = 0; i < n->n; i++) {
		const rc_node *a = n->vals[i];

		if (a->kind != RC_NODE_SCALAR || rc_node_is_null(a)) {
			RC_CTX_ERROR(c, a->loc, a->span,
				     "%s of '%s' in %s must be strings, not %s",
				     items ? "items" : "arguments", key, c->what,
				     rc_node_kind_name(a));
			ok = false;
			continue;
		}
		out->v[out->n++] = rc_strdup(a->str);
	}
	if (!ok)
		rc_argv_free(out); /* all or nothing: callers keep no part */
	return ok;
}

void rc_get_kvlist(rc_ctx *c, const rc_node *map, const char *key,
		   rc_kvlist *out, bool var_names)
{
	const rc_node *n = rc_node_get(map, key);
	size_t i;

	memset(out, 0, sizeof(*out));
	if (!n)
		return;
	if (!rc_expect_map(c, n, key))
		return;
	for (i = 0; i < n->n; i++) {
		const rc_node *k = n->keys[i], *v = n->vals[i];

		if (var_names && !rc_is_var_name(k->str)) {
			RC_CTX_ERROR(c, k->loc, k->span,
				      "'%s' is not a valid variable name "
				      "(letters, digits and '_', not "
				      "starting with a digit)",
				      k->str);
			continue;
		}
		if (v->kind != RC_NODE_SCALAR) {
			RC_CTX_ERROR(c, v->loc, v->span,
				      "the value of '%s' in %s must be a "
				      "scalar, not %s",
				      k->str, c->what, rc_node_kind_name(v));
			continue;
		}
		rc_kvlist_add(out, k->str, v->str, k->loc);
	}
}

long rc_get_duration(rc_ctx *c, const rc_node *map, const char *key, long def)
{
	const rc_node *n = rc_node_get(map, key);
	long v;

	if (!n)
		return def;
	if (n->kind != RC_NODE_SCALAR || rc_node_is_null(n)) {
		RC_CTX_ERROR(c, n->loc, n->span,
			      "'%s' in %s must be a duration such as '30s', "
			      "'5m' or '72h', not %s",
			      key, c->what, rc_node_kind_name(n));
		return def;
	}
	v = rc_duration_parse(n->str);
	if (v < 0) {
		if (rc_node_scalar_type(n) == RC_SCALAR_INT)
			RC_CTX_ERROR(c, n->loc, n->span,
				      "'%s' in %s needs a unit: write '%ss' "
				      "or use m, h, d",
				      key, c->what, n->str);
		else
			RC_CTX_ERROR(c, n->loc, n->span,
				      "'%s' in %s is not a duration: '%s' "
				      "(write a whole number and a unit s, "
				      "m, h or d, such as '90s' or '72h')",
				      key, c->what, n->str);
		return def;
	}
	return v;
}

int rc_get_enum(rc_ctx *c, const rc_node *map, const char *key,
		const char *const *values, size_t n, int def)
{
	const rc_node *node = rc_node_get(map, key);
	rc_buf list = RC_BUF_INIT_MAX(4096);
	const char *hint;
	size_t i;

	if (!node)
		return def;
	if (node->kind == RC_NODE_SCALAR)
		for (i = 0; i < n; i++)
			if (!strcmp(node->str, values[i]))
				return (int)i;
	for (i = 0; i < n; i++)
		rc_buf_printf(&list, "%s%s", i ? ", " : "", values[i]);
	hint = node->kind == RC_NODE_SCALAR
		       ? rc_did_you_mean(node->str, values, n)
		       : NULL;
	if (node->kind != RC_NODE_SCALAR)
		RC_CTX_ERROR(c, node->loc, node->span,
			      "'%s' in %s must be one of %s, not %s", key,
			      c->what, list.ptr, rc_node_kind_name(node));
	else if (hint)
		RC_CTX_ERROR(c, node->loc, node->span,
			      "'%s' in %s must be one of %s, not '%s'; did "
			      "you mean '%s'?",
			      key, c->what, list.ptr, node->str, hint);
	else
		RC_CTX_ERROR(c, node->loc, node->span,
			      "'%s' in %s must be one of %s, not '%s'", key,
			      c->what, list.ptr, node->str);
	rc_buf_release(&list);
	return def;
}

/* ---- value parsers ---- */

long rc_duration_parse(const char *s)
{
	char *end;
	long v, mul;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end[0] == '\0' || end[1] != '\0')
		return -1;
	switch (*end) {
	case 's':
		mul = 1;
		break;
	case 'm':
		mul = 60;
		break;
	case 'h':
		mul = 3600;
		break;
	case 'd':
		mul = 86400;
		break;
	default:
		return -1;
	}
	if (v > LONG_MAX / mul || v * mul > 366L * 86400 * 10)
		return -1;
	return v * mul;
}

void rc_duration_format(long secs, char *out, size_t n)
{
	if (secs && secs % 86400 == 0)
		snprintf(out, n, "%ldd", secs / 86400);
	else if (secs && secs % 3600 == 0)
		snprintf(out, n, "%ldh", secs / 3600);
	else if (secs && secs % 60 == 0)
		snprintf(out, n, "%ldm", secs / 60);
	else
		snprintf(out, n, "%lds", secs);
}

long rc_cpu_parse(const char *s)
{
	char *end;
	double d;
	size_t len = strlen(s);

	if (!len || !(isdigit((unsigned char)s[0]) || s[0] == '.'))
		return -1;
	if (s[len - 1] == 'm') {
		long v;

		errno = 0;
		v = strtol(s, &end, 10);
		if (errno || end != s + len - 1 || v <= 0)
			return -1;
		return v > 1000000 ? -2 : v;
	}
	errno = 0;
	d = strtod(s, &end);
	if (errno || *end || d <= 0)
		return -1;
	if (d > 1000)
		return -2;
	if ((long)(d * 1000 + 0.5) == 0)
		return -1;
	return (long)(d * 1000 + 0.5);
}

long long rc_memory_parse(const char *s)
{
	static const struct {
		const char *suffix;
		long long mul;
	} units[] = {{"Ki", 1LL << 10}, {"Mi", 1LL << 20}, {"Gi", 1LL << 30},
		     {"Ti", 1LL << 40}, {"K", 1000LL},     {"M", 1000000LL},
		     {"G", 1000000000LL}, {"T", 1000000000000LL}};
	char *end;
	long long v;
	size_t i;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || v <= 0)
		return -1;
	if (!*end)
		return -2;
	for (i = 0; i < RC_ARRAY_SIZE(units); i++) {
		if (!strcmp(end, units[i].suffix)) {
			if (v > (1LL << 50) / units[i].mul)
				return -1;
			return v * units[i].mul;
		}
	}
	return -1;
}

void rc_memory_format(long long b, char *out, size_t n)
{
	if (b % (1LL << 30) == 0)
		snprintf(out, n, "%lldGi", b >> 30);
	else if (b % (1LL << 20) == 0)
		snprintf(out, n, "%lldMi", b >> 20);
	else if (b % (1LL << 10) == 0 && b % 1000 != 0)
		snprintf(out, n, "%lldKi", b >> 10);
	else if (b % 1000000000LL == 0)
		snprintf(out, n, "%lldG", b / 1000000000LL);
	else if (b % 1000000LL == 0)
		snprintf(out, n, "%lldM", b / 1000000LL);
	else if (b % 1000LL == 0)
		snprintf(out, n, "%lldK", b / 1000LL);
	else
		snprintf(out, n, "%lld", b);
}

bool rc_is_dns_label(const char *s)
{
	size_t len = strlen(s), i;

	if (len == 0 || len > 63)
		return false;
	for (i = 0; i < len; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		      ch == '-'))
			return false;
	}
	return s[0] != '-' && s[len - 1] != '-';
}

bool rc_is_var_name(const char *s)
{
	size_t i;

	if (!*s || isdigit((unsigned char)s[0]))
		return false;
	for (i = 0; s[i]; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return false;
	return true;
}

const char *rc_driver_name(rc_driver_kind d)
{
	static const char *names[] = {"local", "kubernetes", "heroku", "ecs"};

	return names[d];
}

/* ---- the environment ---- */

static const char *const body_keys[] = {
	"extends", "target", "services", "config", "secrets", "addons",
	"hooks",   "resources", "policy", "depends_on", "ignore", "recipients"};

static const char *const driver_names[] = {"local", "kubernetes", "heroku",
					   "ecs"};

static const char *const sizes[] = {
	"eco",           "basic",         "standard-1x",    "standard-2x",
	"performance-m", "performance-l", "performance-l-ram",
	"performance-xl", "performance-2xl"};

/* "a kubernetes", "an ecs": the driver's name with its article. */
static const char *a_driver(rc_driver_kind d)
{
	static const char *const names[] = {"a local", "a kubernetes",
					    "a heroku", "an ecs"};

	return names[d];
}

/* A value that still holds a placeholder failed substitution, which has
 * already been reported: checks of its form would only repeat that. */
static bool unresolved(const char *s)
{
	return s && strstr(s, "{{") != NULL;
}

static void key_name_check(rc_ctx *c, const rc_node *k, const char *kind)
{
	if (!rc_is_dns_label(k->str))
		RC_CTX_ERROR(c, k->loc, k->span,
			      "%s name '%s' is not valid: use lower-case "
			      "letters, digits and '-' (at most 63, not "
			      "starting or ending with '-')",
			      kind, k->str);
}

/* Where the value of map's key is written; def when it is not. */
static rc_loc value_loc(const rc_node *map, const char *key, rc_loc def)
{
	const rc_node *n = rc_node_get(map, key);

	return n ? n->loc : def;
}

/* target.rate_reserve: API tokens of the account (4,500 an hour on
 * Heroku) reconcile leaves to others, as a count or a percentage
 * ("20%"); -1 when unset. */
static int type_rate_reserve(rc_ctx *c, const rc_node *t)
{
	const rc_node *n = rc_node_get(t, "rate_reserve");
	size_t len;
	char *end;
	long v;

	if (!n || n->kind != RC_NODE_SCALAR || !n->str)
		return rc_get_int(c, t, "rate_reserve", -1, 0, RC_HEROKU_TOKENS);
	len = strlen(n->str);
	if (!len || n->str[len - 1] != '%')
		return rc_get_int(c, t, "rate_reserve", -1, 0, RC_HEROKU_TOKENS);
	errno = 0;
	v = strtol(n->str, &end, 10);
	if (errno || end != n->str + len - 1 || end == n->str || v < 0 ||
	    v > 100) {
		RC_CTX_ERROR(c, n->loc, n->span,
			      "'rate_reserve' in target must be a number of "
			      "tokens (0 to %d) or a percentage (0%% to "
			      "100%%), not %s",
			      RC_HEROKU_TOKENS, n->str);
		return -1;
	}
	return (int)(v * RC_HEROKU_TOKENS / 100);
}

static void type_target(rc_loader *L, rc_env *env, const rc_node *t,
			rc_loc at, int at_span)
{
	static const char *const all_keys[] = {
		"driver",  "context",  "namespace",   "app",
		"region",  "stack",    "team",        "pipeline",
		"stage",   "cluster",  "launch_type", "subnets",
		"security_groups", "assign_public_ip", "execution_role_arn",
		"kubeconfig", "wait_timeout", "qps", "burst",
		"rate_reserve", "maintenance", "drift_interval"};
	/* bit per driver: local, kubernetes, heroku, ecs */
	static const unsigned valid_for[] = {15, 2, 2, 4, 12, 4, 4, 4, 4,
					     8,  8, 8, 8, 8, 8, 2, 10, 2, 2,
					     4,  4, 15};
	static const char *const regions_heroku[] = {
		"us", "eu", "virginia", "oregon", "frankfurt", "tokyo",
		"sydney", "dublin", "montreal", "mumbai", "singapore"};
	static const char *const stacks[] = {"heroku-20", "heroku-22",
					     "heroku-24", "container"};
	static const char *const stages[] = {"review", "development",
					     "staging", "production"};
	static const char *const launch_types[] = {"FARGATE", "EC2"};
	rc_ctx c = {L, "target", false};
	rc_target *tg = &env->target;
	const rc_node *drv;
	size_t i, j;
	int d;

	tg->assign_public_ip = -1;
	tg->rate_reserve = -1;
	tg->maintenance = -1;
	if (!t) {
		rc_diag_error(L->diags, at, at_span,
			      "environment '%s' has no target (set "
			      "target.driver)",
			      env->name);
		return;
	}
	if (!rc_expect_map(&c, t, "target"))
		return;
	tg->loc = t->loc;
	rc_check_keys(&c, t, all_keys, RC_ARRAY_SIZE(all_keys));
	drv = rc_node_get(t, "driver");
	if (!drv) {
		rc_diag_error(L->diags, t->loc, t->span,
			      "target is missing the required key 'driver' "
			      "(local, kubernetes, heroku or ecs)");
		return;
	}
	d = rc_get_enum(&c, t, "driver", driver_names,
			RC_ARRAY_SIZE(driver_names), -1);
	if (d < 0)
		return;
	tg->driver = (rc_driver_kind)d;
	tg->drift_interval = rc_get_duration(&c, t, "drift_interval", 0);
	if (tg->drift_interval == 0 && rc_node_get(t, "drift_interval")) {
		const rc_node *n = rc_node_get(t, "drift_interval");

		if (n->kind == RC_NODE_SCALAR && !rc_node_is_null(n) &&
		    rc_duration_parse(n->str) == 0)
			rc_diag_error(L->diags, n->loc, n->span,
				      "'drift_interval' in target must be at "
				      "least 1s");
	}
	for (i = 0; i < t->n; i++) {
		for (j = 0; j < RC_ARRAY_SIZE(all_keys); j++) {
			if (strcmp(t->keys[i]->str, all_keys[j]))
				continue;
			if (!(valid_for[j] & (1u << d)))
				rc_diag_error(L->diags, t->keys[i]->loc,
					      t->keys[i]->span,
					      "key '%s' is not valid for driver "
					      "'%s'",
					      all_keys[j], driver_names[d]);
		}
	}
	switch (tg->driver) {
	case RC_DRIVER_KUBERNETES:
		tg->context = rc_get_str(&c, t, "context", false, t->loc, 1);
		tg->kubeconfig = rc_get_str(&c, t, "kubeconfig", false, t->loc,
					    1);
		tg->wait_timeout = rc_get_duration(&c, t, "wait_timeout", 0);
		tg->qps = rc_get_int(&c, t, "qps", 0, 1, 10000);
		tg->burst = rc_get_int(&c, t, "burst", 0, 1, 10000);
		tg->namespace = rc_get_str(&c, t, "namespace", true, t->loc,
					   t->span);
		if (tg->namespace && !unresolved(tg->namespace) &&
		    !rc_is_dns_label(tg->namespace)) {
			const rc_node *n = rc_node_get(t, "namespace");

			rc_diag_error(L->diags, n->loc, n->span,
				      "namespace '%s' is not a valid "
				      "Kubernetes name (a DNS label: "
				      "lower-case letters, digits, '-')",
				      tg->namespace);
		}
		break;
	case RC_DRIVER_HEROKU: {
		const rc_node *app = rc_node_get(t, "app");
		int r;

		tg->app = rc_get_str(&c, t, "app", true, t->loc, t->span);
		if (tg->app && !unresolved(tg->app)) {
			size_t len = strlen(tg->app);
			bool ok = len >= 3 && len <= 30 &&
				  tg->app[0] >= 'a' && tg->app[0] <= 'z' &&
				  rc_is_dns_label(tg->app);

			if (!ok)
				rc_diag_error(L->diags, app->loc, app->span,
					      "Heroku app name '%s' is not "
					      "valid: 3 to 30 characters, "
					      "lower-case letters, digits and "
					      "'-', starting with a letter",
					      tg->app);
		}
		r = rc_get_enum(&c, t, "region", regions_heroku,
				RC_ARRAY_SIZE(regions_heroku), -1);
		if (r >= 0)
			tg->region = rc_strdup(regions_heroku[r]);
		r = rc_get_enum(&c, t, "stack", stacks, RC_ARRAY_SIZE(stacks),
				-1);
		if (r >= 0)
			tg->stack = rc_strdup(stacks[r]);
		tg->team = rc_get_str(&c, t, "team", false, t->loc, 1);
		tg->pipeline = rc_get_str(&c, t, "pipeline", false, t->loc, 1);
		r = rc_get_enum(&c, t, "stage", stages, RC_ARRAY_SIZE(stages),
				-1);
		if (r >= 0)
			tg->stage = rc_strdup(stages[r]);
		if (tg->stage && !tg->pipeline) {
			const rc_node *n = rc_node_get(t, "stage");

			rc_diag_error(L->diags, n->loc, n->span,
				      "'stage' in target needs 'pipeline'");
		}
		tg->maintenance = rc_get_bool(&c, t, "maintenance", -1);
		tg->app_loc = value_loc(t, "app", t->loc);
		tg->region_loc = value_loc(t, "region", t->loc);
		tg->stack_loc = value_loc(t, "stack", t->loc);
		tg->team_loc = value_loc(t, "team", t->loc);
		tg->rate_reserve = type_rate_reserve(&c, t);
		break;
	}
	case RC_DRIVER_ECS: {
		const rc_node *n;
		int r;

		tg->region = rc_get_str(&c, t, "region", true, t->loc, t->span);
		n = rc_node_get(t, "region");
		if (tg->region && !unresolved(tg->region)) {
			const char *s = tg->region;
			size_t k = 0;
			int dashes = 0;
			bool ok = strlen(s) >= 9;

			for (k = 0; s[k]; k++) {
				if (s[k] == '-')
					dashes++;
				else if (!islower((unsigned char)s[k]) &&
					 !isdigit((unsigned char)s[k]))
					ok = false;
			}
			if (!ok || dashes < 2 ||
			    !isdigit((unsigned char)s[k - 1]))
				rc_diag_error(L->diags, n->loc, n->span,
					      "'%s' is not an AWS region "
					      "(such as 'us-east-1')",
					      s);
		}
		tg->cluster = rc_get_str(&c, t, "cluster", true, t->loc,
					 t->span);
		r = rc_get_enum(&c, t, "launch_type", launch_types,
				RC_ARRAY_SIZE(launch_types), 0);
		tg->launch_type = rc_strdup(launch_types[r]);
		rc_get_argv(&c, t, "subnets", &tg->subnets, false, "strings");
		rc_get_argv(&c, t, "security_groups", &tg->security_groups,
			    false, "strings");
		tg->assign_public_ip = rc_get_bool(&c, t, "assign_public_ip",
						   -1);
		tg->execution_role_arn = rc_get_str(&c, t, "execution_role_arn",
						    false, t->loc, 1);
		tg->wait_timeout = rc_get_duration(&c, t, "wait_timeout", 0);
		break;
	}
	case RC_DRIVER_LOCAL:
		break;
	}
}

static void type_health(rc_loader *L, rc_service *s, const rc_node *h,
			const char *what)
{
	static const char *const keys[] = {"http",    "tcp",   "command",
					   "interval", "timeout", "retries",
					   "grace"};
	rc_ctx c = {L, what, false};
	int kinds = 0;
	const rc_node *n;

	if (!rc_expect_map(&c, h, "health"))
		return;
	s->health.loc = h->loc;
	rc_check_keys(&c, h, keys, RC_ARRAY_SIZE(keys));
	if ((n = rc_node_get(h, "http")) != NULL) {
		kinds++;
		s->health.kind = RC_HEALTH_HTTP;
		s->health.http_path = rc_scalar_text(&c, n, "http");
		if (s->health.http_path && s->health.http_path[0] != '/')
			rc_diag_error(L->diags, n->loc, n->span,
				      "'http' in %s must be a path starting "
				      "with '/'",
				      what);
	}
	if ((n = rc_node_get(h, "tcp")) != NULL) {
		kinds++;
		if (rc_get_bool(&c, h, "tcp", 0) == 1)
			s->health.kind = RC_HEALTH_TCP;
		else if (rc_node_scalar_type(n) == RC_SCALAR_BOOL)
			rc_diag_error(L->diags, n->loc, n->span,
				      "'tcp' in %s can only be true", what);
	}
	if (rc_node_get(h, "command")) {
		kinds++;
		s->health.kind = RC_HEALTH_COMMAND;
		rc_get_argv(&c, h, "command", &s->health.command, true, NULL);
	}
	if (kinds != 1) {
		rc_diag_error(L->diags, h->loc, h->span,
			      "%s must have exactly one of 'http', 'tcp' or "
			      "'command'",
			      what);
		s->health.kind = RC_HEALTH_NONE;
	}
	if ((s->health.kind == RC_HEALTH_HTTP ||
	     s->health.kind == RC_HEALTH_TCP) &&
	    !s->port)
		rc_diag_error(L->diags, h->loc, h->span,
			      "%s checks the service's port, but service "
			      "'%s' has no 'port'",
			      what, s->name);
	s->health.interval = rc_get_duration(&c, h, "interval", 10);
	s->health.timeout = rc_get_duration(&c, h, "timeout", 2);
	s->health.grace = rc_get_duration(&c, h, "grace", 0);
	s->health.retries = rc_get_int(&c, h, "retries", 3, 1, 100);
}

/* "arn:<partition>:elasticloadbalancing:<region>:<12 digits>:targetgroup/
 * <name: 1-32 letters, digits, hyphens>/<16 hex digits>" */
static bool target_group_arn(const char *a)
{
	const char *p = a, *e;
	size_t n;

	if (strncmp(p, "arn:aws", 7))
		return false;
	p = strchr(p + 4, ':');
	if (!p || strncmp(p, ":elasticloadbalancing:", 22))
		return false;
	p += 22;
	for (n = 0; *p && *p != ':'; p++, n++)
		if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) &&
		    *p != '-')
			return false;
	if (!n || *p++ != ':')
		return false;
	for (n = 0; isdigit((unsigned char)*p); p++)
		n++;
	if (n != 12 || strncmp(p, ":targetgroup/", 13))
		return false;
	p += 13;
	if (!(e = strchr(p, '/')) || e == p || e - p > 32)
		return false;
	for (; p < e; p++)
		if (!isalnum((unsigned char)*p) && *p != '-')
			return false;
	for (n = 0, p = e + 1; isxdigit((unsigned char)*p); p++)
		n++;
	return n == 16 && !*p;
}

/* ecs.target_group: a target group's ARN, for a service with a port (the
 * load balancer sends to that port of the service's container). */
static void check_target_group(rc_loader *L, const rc_service *s,
			       const rc_node *n, const char *what)
{
	if (n->kind != RC_NODE_SCALAR || rc_node_is_null(n)) {
		rc_diag_error(L->diags, n->loc, n->span,
			      "'target_group' in %s must be a string, not %s",
			      what, rc_node_kind_name(n));
		return;
	}
	if (!target_group_arn(n->str))
		rc_diag_error(L->diags, n->loc, n->span,
			      "'target_group' in %s is not a target group's "
			      "ARN (arn:aws:elasticloadbalancing:REGION:"
			      "ACCOUNT:targetgroup/NAME/ID)",
			      what);
	else if (!s->port)
		rc_diag_error(L->diags, n->loc, n->span,
			      "'target_group' in %s sends traffic to the "
			      "service's port, but service '%s' has no 'port'",
			      what, s->name);
}

static void type_native(rc_loader *L, rc_env *env, rc_service *s,
			const rc_node *k, const rc_node *v, const char *what)
{
	static const char *const k8s_keys[] = {"deployment", "service"};
	static const char *const ecs_keys[] = {"task_definition", "container",
					       "service", "target_group"};
	static const char *const heroku_keys[] = {"process_type"};
	static const char *const local_keys[] = {"workdir"};
	rc_buf w = RC_BUF_INIT_MAX(512);
	rc_ctx c = {L, NULL, false};
	size_t i;
	int d;

	for (d = 0; d < 4; d++)
		if (!strcmp(k->str, driver_names[d]))
			break;
	rc_buf_printf(&w, "'%s' settings of %s", k->str, what);
	c.what = w.ptr;
	if (d != (int)env->target.driver) {
		rc_diag_error(L->diags, k->loc, k->span,
			      "'%s' settings are not valid for a service of "
			      "a '%s' target",
			      k->str, rc_driver_name(env->target.driver));
		goto done;
	}
	if (!rc_expect_map(&c, v, k->str))
		goto done;
	switch (d) {
	case RC_DRIVER_KUBERNETES:
	case RC_DRIVER_ECS:
		if (d == RC_DRIVER_KUBERNETES)
			rc_check_keys(&c, v, k8s_keys, RC_ARRAY_SIZE(k8s_keys));
		else
			rc_check_keys(&c, v, ecs_keys, RC_ARRAY_SIZE(ecs_keys));
		for (i = 0; i < v->n; i++)
			if (!strcmp(v->keys[i]->str, "target_group"))
				check_target_group(L, s, v->vals[i], w.ptr);
			else if (v->vals[i]->kind != RC_NODE_MAP)
				rc_diag_error(L->diags, v->vals[i]->loc,
					      v->vals[i]->span,
					      "'%s' in %s must be a map, not "
					      "%s",
					      v->keys[i]->str, w.ptr,
					      rc_node_kind_name(v->vals[i]));
		s->native = rc_node_copy(v);
		break;
	case RC_DRIVER_HEROKU:
		rc_check_keys(&c, v, heroku_keys, RC_ARRAY_SIZE(heroku_keys));
		s->process_type = rc_get_str(&c, v, "process_type", false,
					     v->loc, 1);
		break;
	case RC_DRIVER_LOCAL: {
		const rc_node *wd;

		rc_check_keys(&c, v, local_keys, RC_ARRAY_SIZE(local_keys));
		wd = rc_node_get(v, "workdir");
		if (wd) {
			char *p = rc_scalar_text(&c, wd, "workdir");

			if (p)
				s->workdir = rc_loader_resolve_path(
					L, NULL, p, wd->loc, wd->span, true);
			free(p);
		}
		break;
	}
	}
done:
	rc_buf_release(&w);
}

/* Fargate's task sizes: CPU units (1024 = 1 vCPU) and, for each, the
 * memory in MiB from min to max in steps. */
static const struct {
	long units, min, max, step;
} fargate_sizes[] = {
	{256, 512, 2048, 0}, /* 512, 1024, 2048 */
	{512, 1024, 4096, 1024},
	{1024, 2048, 8192, 1024},
	{2048, 4096, 16384, 1024},
	{4096, 8192, 30720, 1024},
	{8192, 16384, 61440, 4096},
	{16384, 32768, 122880, 8192},
};

static bool fargate_fits(size_t i, long long mib)
{
	if (fargate_sizes[i].step == 0)
		return mib == 512 || mib == 1024 || mib == 2048;
	return mib >= fargate_sizes[i].min && mib <= fargate_sizes[i].max &&
	       (mib - fargate_sizes[i].min) % fargate_sizes[i].step == 0;
}

static void fargate_memories(rc_buf *b, size_t i)
{
	if (fargate_sizes[i].step == 0)
		rc_buf_puts(b, "512, 1024 or 2048 MiB");
	else
		rc_buf_printf(b, "%ld to %ld MiB in steps of %ld",
			      fargate_sizes[i].min, fargate_sizes[i].max,
			      fargate_sizes[i].step);
}

/* On Fargate a task's cpu and memory must be one of AWS's pairs: checked
 * here so that `validate` says so, with the values that would do. */
static void check_fargate(rc_loader *L, const rc_service *s, const rc_node *v)
{
	const rc_node *cn = rc_node_get(v, "cpu"), *mn = rc_node_get(v, "memory");
	long units = s->cpu_millis ? s->cpu_millis * 1024 / 1000 : 0;
	long long mib = s->memory ? s->memory / (1024 * 1024) : 0;
	rc_buf b = RC_BUF_INIT_MAX(2048);
	size_t i, n = RC_ARRAY_SIZE(fargate_sizes);

	if (units) {
		for (i = 0; i < n && fargate_sizes[i].units != units; i++)
			;
		if (i == n || s->cpu_millis * 1024 % 1000) {
			rc_buf_printf(&b, "cpu %s is not a Fargate size: use "
					  "0.25, 0.5, 1, 2, 4, 8 or 16 (256 to "
					  "16384 CPU units)",
				      cn->str);
			rc_diag_error(L->diags, cn->loc, cn->span, "%s", b.ptr);
		} else if (mib && (s->memory % (1024 * 1024) ||
				   !fargate_fits(i, mib))) {
			rc_buf_printf(&b, "memory %s does not go with cpu %s on "
					  "Fargate: with %ld CPU units, memory "
					  "is ",
				      mn->str, cn->str, units);
			fargate_memories(&b, i);
			rc_diag_error(L->diags, mn->loc, mn->span, "%s", b.ptr);
		}
	} else if (mib) {
		for (i = 0; i < n && !fargate_fits(i, mib); i++)
			;
		if (i == n || s->memory % (1024 * 1024)) {
			rc_buf_puts(&b, "memory ");
			rc_buf_puts(&b, mn->str);
			rc_buf_puts(&b, " is not a Fargate size: from 512 MiB "
					"(0.25 vCPU) to 120 GiB (16 vCPU); the "
					"values for each cpu are: ");
			for (i = 0; i < n; i++) {
				rc_buf_printf(&b, "%s%g vCPU: ", i ? "; " : "",
					      (double)fargate_sizes[i].units / 1024);
				fargate_memories(&b, i);
			}
			rc_diag_error(L->diags, mn->loc, mn->span, "%s", b.ptr);
		}
	}
	rc_buf_release(&b);
}

static void type_service(rc_loader *L, rc_env *env, rc_service *s,
			 const rc_node *k, const rc_node *v)
{
	static const char *const keys[] = {
		"image", "command", "args", "replicas",   "size",
		"cpu",   "memory",  "port", "env",        "health",
		"kubernetes", "ecs", "heroku", "local"};
	rc_buf what = RC_BUF_INIT_MAX(512);
	rc_ctx c = {L, NULL, false};
	const rc_node *n;
	size_t i;
	int r;

	s->name = rc_strdup(k->str);
	s->loc = k->loc;
	s->replicas = 1;
	rc_buf_printf(&what, "service '%s'", k->str);
	c.what = what.ptr;
	key_name_check(&c, k, "service");
	if (!rc_expect_map(&c, v, k->str))
		goto done;
	rc_check_keys(&c, v, keys, RC_ARRAY_SIZE(keys));
	s->image = rc_get_str(&c, v, "image", false, k->loc, k->span);
	rc_get_argv(&c, v, "command", &s->command, true, NULL);
	rc_get_argv(&c, v, "args", &s->args, false, NULL);
	s->replicas = rc_get_int(&c, v, "replicas", 1, 0, 10000);
	s->port = rc_get_int(&c, v, "port", 0, 1, 65535);
	rc_get_kvlist(&c, v, "env", &s->env, true);
	r = rc_get_enum(&c, v, "size", sizes, RC_ARRAY_SIZE(sizes), -1);
	if (r >= 0)
		s->size = rc_strdup(sizes[r]);
	s->size_loc = value_loc(v, "size", s->loc);
	if ((n = rc_node_get(v, "cpu")) != NULL) {
		if (n->kind == RC_NODE_SCALAR && !rc_node_is_null(n) &&
		    rc_cpu_parse(n->str) == -2) {
			rc_diag_error(L->diags, n->loc, n->span,
				      "'cpu' in %s must be at most 1000 cores, "
				      "not '%s'",
				      c.what, n->str);
		} else if (n->kind != RC_NODE_SCALAR || rc_node_is_null(n) ||
			   (s->cpu_millis = rc_cpu_parse(n->str)) < 0) {
			rc_diag_error(L->diags, n->loc, n->span,
				      "'cpu' in %s must be a number of cores "
				      "('0.5', 2) or millicores ('500m')",
				      c.what);
			s->cpu_millis = 0;
		}
	}
	if ((n = rc_node_get(v, "memory")) != NULL) {
		long long m = -1;

		if (n->kind == RC_NODE_SCALAR && !rc_node_is_null(n))
			m = rc_memory_parse(n->str);
		if (m == -2)
			rc_diag_error(L->diags, n->loc, n->span,
				      "'memory' in %s needs a unit: write "
				      "'%sMi' or use Ki, Gi, Ti, K, M, G, T",
				      c.what, n->str);
		else if (m < 0)
			rc_diag_error(L->diags, n->loc, n->span,
				      "'memory' in %s must be a size such as "
				      "'512Mi' or '1Gi'",
				      c.what);
		else
			s->memory = m;
	}
	if (rc_node_get(v, "size") &&
	    (rc_node_get(v, "cpu") || rc_node_get(v, "memory"))) {
		n = rc_node_get_key(v, "size");
		rc_diag_error(L->diags, n->loc, n->span,
			      "%s sets both 'size' and 'cpu'/'memory': use "
			      "one or the other",
			      c.what);
	}
	if (env->target.driver == RC_DRIVER_ECS && env->target.launch_type &&
	    !strcmp(env->target.launch_type, "FARGATE"))
		check_fargate(L, s, v);
	if ((n = rc_node_get(v, "health")) != NULL) {
		rc_buf hw = RC_BUF_INIT_MAX(512);

		rc_buf_printf(&hw, "the health check of service '%s'", k->str);
		type_health(L, s, n, hw.ptr);
		rc_buf_release(&hw);
	}
	for (i = 0; i < v->n; i++) {
		const char *key = v->keys[i]->str;

		if (!strcmp(key, "kubernetes") || !strcmp(key, "ecs") ||
		    !strcmp(key, "heroku") || !strcmp(key, "local"))
			type_native(L, env, s, v->keys[i], v->vals[i], c.what);
	}
	if (env->target.driver == RC_DRIVER_LOCAL && !s->command.n &&
	    !rc_node_get(v, "command"))
		rc_diag_error(L->diags, k->loc, k->span,
			      "%s has no 'command': the local driver runs "
			      "services as local processes",
			      c.what);
	if (env->target.driver != RC_DRIVER_LOCAL && !s->image &&
	    !rc_node_get(v, "image"))
		rc_diag_error(L->diags, k->loc, k->span,
			      "%s has no 'image': %s target runs images",
			      c.what, a_driver(env->target.driver));
done:
	rc_buf_release(&what);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whether an age file's stanzas and the recipients have the same count
 * and the same types, in any order. */
static bool age_matches(const rc_age_info *file, const rc_age_info *want)
{
	bool same = file->count == want->count;
	char **a, **b;

	if (!same)
		return false;
	a = rc_calloc(file->count + 1, sizeof(char *));
	b = rc_calloc(want->count + 1, sizeof(char *));
	memcpy(a, file->types, file->count * sizeof(char *));
	memcpy(b, want->types, want->count * sizeof(char *));
	qsort(a, file->count, sizeof(char *), cmp_str);
	qsort(b, want->count, sizeof(char *), cmp_str);
	for (size_t i = 0; i < file->count && same; i++)
		same = !strcmp(a[i], b[i]);
	free(a);
	free(b);
	return same;
}

/*
 * An encrypted value (data, len) of `what`, written at v: an error
 * when it is not a well-formed age file (armored when `armored`), a
 * warning when its stanzas do not match the recipients of env (NULL:
 * the top level's) by count and types. No key is needed for either.
 */
static bool check_age(rc_loader *L, const rc_env *env, const char *what,
		      const rc_node *v, const char *data, size_t len,
		      bool armored)
{
	const rc_argv *rs = env ? &env->recipients : &L->cfg->recipients;
	rc_age_info info = {0}, want = {0};
	rc_buf where = RC_BUF_INIT_MAX(512), have = RC_BUF_INIT_MAX(1024),
	       need = RC_BUF_INIT_MAX(1024);

	if (rc_age_inspect(&info, data, len) < 0) {
		rc_diags_add(L->diags, RC_DIAG_ERROR, v->loc, v->span, true,
			     "%s is not a well-formed age file: %s", what,
			     rc_error_last()->message);
		rc_error_clear();
		rc_age_info_release(&info);
		return false;
	}
	if (armored && !info.armored) {
		rc_diags_add(L->diags, RC_DIAG_ERROR, v->loc, v->span, true,
			     "%s: an 'encrypted' value must be ASCII-armored "
			     "(-----BEGIN AGE ENCRYPTED FILE-----, as `age -a` "
			     "writes it); a binary age file can be a {file: "
			     "PATH}",
			     what);
		rc_age_info_release(&info);
		return false;
	}
	if (env)
		rc_buf_printf(&where, "environment '%s'", env->name);
	else
		rc_buf_puts(&where, "reconcile.yaml");
	if (!rs->n) {
		rc_diags_add(L->diags, RC_DIAG_WARNING, v->loc, v->span, true,
			     "%s is encrypted, but %s has no recipients: list "
			     "the public keys that may decrypt under "
			     "'recipients:', then run `reconcile secret rekey`",
			     what, where.ptr);
		goto done;
	}
	want.types = rc_calloc(rs->n + 1, sizeof(char *));
	for (size_t i = 0; i < rs->n; i++) {
		rc_age_recipient *r = NULL;

		if (rc_age_recipient_parse(&r, rs->v[i]) < 0) {
			rc_error_clear();
			continue;
		}
		want.types[want.count++] = rc_strdup(
			rc_age_key_type_name(rc_age_recipient_type(r)));
		rc_age_recipient_free(r);
	}
	if (!age_matches(&info, &want)) {
		rc_age_info_describe(&have, &info);
		rc_age_info_describe(&need, &want);
		rc_diags_add(L->diags, RC_DIAG_WARNING, v->loc, v->span, true,
			     "%s is encrypted to %s, but %s has %s: run "
			     "`reconcile secret rekey` to encrypt it to them",
			     what, have.ptr, where.ptr, need.ptr);
	}
done:
	rc_age_info_release(&info);
	rc_age_info_release(&want);
	rc_buf_release(&where);
	rc_buf_release(&have);
	rc_buf_release(&need);
	return true;
}

bool rc_type_secret_ref(rc_loader *L, const rc_env *env, const char *what,
			const rc_node *v, rc_secret *s)
{
	static const char *const ref_keys[] = {"env", "file", "aws_secret",
					       "encrypted"};
	rc_ctx sc = {L, what, true};
	const rc_node *ref;
	size_t nref = 0;

	if (v->kind != RC_NODE_MAP) {
		rc_diags_add(L->diags, RC_DIAG_ERROR, v->loc, 1, true,
			     "%s has a literal value; secrets must be "
			     "references: {env: NAME}%s {file: PATH}%s (the "
			     "value is not shown)",
			     what, env ? "," : " or",
			     env ? " or {aws_secret: ARN}" : "");
		return false;
	}
	for (size_t j = 0; j < v->n; j++) {
		bool known = false;

		for (size_t r = 0; r < RC_ARRAY_SIZE(ref_keys); r++)
			known |= !strcmp(v->keys[j]->str, ref_keys[r]);
		if (!known) {
			const char *hint =
				rc_did_you_mean(v->keys[j]->str, ref_keys, 3);

			rc_diags_add(L->diags, RC_DIAG_ERROR, v->keys[j]->loc,
				     v->keys[j]->span, true,
				     "unknown key '%s' in %s%s%s%s",
				     v->keys[j]->str, what,
				     hint ? "; did you mean '" : "",
				     hint ? hint : "", hint ? "'?" : "");
		} else {
			nref++;
		}
	}
	if (nref != 1) {
		rc_diags_add(L->diags, RC_DIAG_ERROR, v->loc, 1, true,
			     "%s must have exactly one of 'env', 'file'%s or "
			     "'encrypted'",
			     what, env ? ", 'aws_secret'" : "");
	} else if ((ref = rc_node_get(v, "encrypted")) != NULL) {
		char *text = rc_scalar_text(&sc, ref, "encrypted");

		if (text && check_age(L, env, what, ref, text, strlen(text),
				      true)) {
			s->kind = RC_SECRET_AGE;
			s->ciphertext = text;
			s->ref = rc_strdup(s->name ? s->name : "value");
			return true;
		}
		free(text);
	} else if ((ref = rc_node_get(v, "env")) != NULL) {
		char *name = rc_scalar_text(&sc, ref, "env");

		if (name && !rc_is_var_name(name)) {
			rc_diags_add(L->diags, RC_DIAG_ERROR, ref->loc,
				     ref->span, true,
				     "%s: 'env' must name a process variable "
				     "(letters, digits and '_'; the value is "
				     "not shown)",
				     what);
			free(name);
			return false;
		}
		if (name) {
			s->kind = RC_SECRET_ENV;
			s->ref = name;
			return true;
		}
	} else if ((ref = rc_node_get(v, "aws_secret")) != NULL) {
		char *arn = rc_scalar_text(&sc, ref, "aws_secret");

		if (arn && (!env || env->target.driver != RC_DRIVER_ECS)) {
			rc_diags_add(L->diags, RC_DIAG_ERROR, ref->loc,
				     ref->span, true,
				     "%s: {aws_secret: ARN} is read by ECS "
				     "only, and %s%s; use {env: NAME} or "
				     "{file: PATH}",
				     what,
				     env ? "this environment's driver is "
					 : "reconcile itself needs the value",
				     env ? rc_driver_name(env->target.driver)
					 : "");
			free(arn);
			return false;
		}
		if (arn && !unresolved(arn) && !rc_aws_secret_arn_valid(arn)) {
			rc_diags_add(L->diags, RC_DIAG_ERROR, ref->loc,
				     ref->span, true,
				     "%s: 'aws_secret' must be a Secrets Manager "
				     "ARN: arn:<partition>:secretsmanager:"
				     "<region>:<account, 12 digits>:secret:"
				     "<name>, optionally followed by "
				     ":<json-key>:<version-stage>:<version-id>",
				     what);
			free(arn);
			return false;
		}
		if (arn) {
			s->kind = RC_SECRET_AWS;
			s->ref = arn;
			return true;
		}
	} else if ((ref = rc_node_get(v, "file")) != NULL) {
		char *p = rc_scalar_text(&sc, ref, "file"), *rel;

		L->sensitive_paths = true;
		rel = p ? rc_loader_resolve_path(L, NULL, p, ref->loc,
						 ref->span, false)
			: NULL;
		L->sensitive_paths = false;
		free(p);
		if (rel) {
			rc_buf path = RC_BUF_INIT_MAX(PATH_MAX * 2);
			rc_buf data = RC_BUF_INIT_MAX(1 << 20);
			bool ok = true;

			/* an age file is checked now; a plain one is not read */
			rc_buf_printf(&path, "%s/%s", L->dir, rel);
			if (rc_secret_file_age(&data, path.ptr) == 1) {
				s->encrypted = true;
				ok = check_age(L, env, what, ref, data.ptr,
					       data.len, false);
			}
			rc_buf_release(&path);
			rc_buf_release(&data);
			if (!ok) {
				free(rel);
				return false;
			}
			s->kind = RC_SECRET_FILE;
			s->ref = rel;
			return true;
		}
	}
	return false;
}

static void type_secrets(rc_loader *L, rc_env *env, const rc_node *m)
{
	rc_ctx c = {L, "secrets", true};
	size_t i;

	if (!rc_expect_map(&c, m, "secrets"))
		return;
	env->secrets = rc_calloc(m->n, sizeof(rc_secret));
	for (i = 0; i < m->n; i++) {
		const rc_node *k = m->keys[i], *v = m->vals[i];
		rc_secret *s = &env->secrets[env->nsecrets];
		rc_buf what = RC_BUF_INIT_MAX(512);

		if (!rc_is_var_name(k->str)) {
			rc_diags_add(L->diags, RC_DIAG_ERROR, k->loc, k->span,
				     true,
				     "'%s' is not a valid variable name "
				     "(letters, digits and '_', not starting "
				     "with a digit)",
				     k->str);
			continue;
		}
		rc_buf_printf(&what, "secret '%s'", k->str);
		s->name = rc_strdup(k->str);
		if (rc_type_secret_ref(L, env, what.ptr, v, s)) {
			s->loc = k->loc;
			env->nsecrets++;
		} else {
			free(s->name);
			memset(s, 0, sizeof(*s));
		}
		rc_buf_release(&what);
	}
}

static void type_addons(rc_loader *L, rc_env *env, const rc_node *m)
{
	static const char *const keys[] = {"kind", "plan", "as", "config"};
	rc_ctx c = {L, "addons", false};
	size_t i;

	if (!rc_expect_map(&c, m, "addons"))
		return;
	env->addons = rc_calloc(m->n, sizeof(rc_addon));
	for (i = 0; i < m->n; i++) {
		const rc_node *k = m->keys[i], *v = m->vals[i];
		rc_addon *a = &env->addons[env->naddons++];
		rc_buf what = RC_BUF_INIT_MAX(512);
		rc_ctx ac = {L, NULL, false};

		a->name = rc_strdup(k->str);
		a->loc = k->loc;
		rc_buf_printf(&what, "addon '%s'", k->str);
		ac.what = what.ptr;
		key_name_check(&ac, k, "addon");
		if (rc_expect_map(&ac, v, k->str)) {
			rc_check_keys(&ac, v, keys, RC_ARRAY_SIZE(keys));
			a->kind = rc_get_str(&ac, v, "kind", true, k->loc,
					     k->span);
			if (a->kind && !rc_is_dns_label(a->kind)) {
				const rc_node *n = rc_node_get(v, "kind");

				rc_diag_error(L->diags, n->loc, n->span,
					      "addon kind '%s' is not valid "
					      "(lower-case letters, digits, "
					      "'-')",
					      a->kind);
			}
			a->plan = rc_get_str(&ac, v, "plan", false, k->loc, 1);
			a->plan_loc = value_loc(v, "plan", a->loc);
			a->as = rc_get_str(&ac, v, "as", false, k->loc, 1);
			if (a->as && !rc_is_var_name(a->as)) {
				const rc_node *n = rc_node_get(v, "as");

				rc_diag_error(L->diags, n->loc, n->span,
					      "'as' in %s must be a variable "
					      "name, not '%s'",
					      what.ptr, a->as);
			}
			rc_get_kvlist(&ac, v, "config", &a->config, false);
		}
		rc_buf_release(&what);
	}
}

/* The hook lists of an environment, by phase (the order of `hooks`). */
enum { PHASE_PRE, PHASE_POST, PHASE_ROLLBACK, NPHASES };

static void hook_lists(rc_env *env, rc_hook ***lists, size_t **counts)
{
	lists[PHASE_PRE] = &env->pre_apply;
	lists[PHASE_POST] = &env->post_apply;
	lists[PHASE_ROLLBACK] = &env->on_rollback;
	counts[PHASE_PRE] = &env->npre_apply;
	counts[PHASE_POST] = &env->npost_apply;
	counts[PHASE_ROLLBACK] = &env->non_rollback;
}

static void type_hooks(rc_loader *L, rc_env *env, const rc_node *m)
{
	static const char *const phases[] = {"pre_apply", "post_apply",
					     "on_rollback"};
	static const char *const keys[] = {"name",    "run",          "where",
					   "service", "timeout", "irreversible",
					   "env"};
	static const char *const wheres[] = {"target", "local"};
	rc_ctx c = {L, "hooks", false};
	rc_hook **lists[NPHASES];
	size_t *counts[NPHASES];
	size_t p, q, i, j;

	if (!rc_expect_map(&c, m, "hooks"))
		return;
	hook_lists(env, lists, counts);
	rc_check_keys(&c, m, phases, RC_ARRAY_SIZE(phases));
	for (p = 0; p < NPHASES; p++) {
		const rc_node *list = rc_node_get(m, phases[p]);
		rc_hook **out = lists[p];
		size_t *nout = counts[p];

		if (!list)
			continue;
		if (list->kind != RC_NODE_SEQ) {
			rc_diag_error(L->diags, list->loc, list->span,
				      "'%s' in hooks must be a list of hooks, "
				      "not %s",
				      phases[p], rc_node_kind_name(list));
			continue;
		}
		*out = rc_calloc(list->n, sizeof(rc_hook));
		for (i = 0; i < list->n; i++) {
			const rc_node *h = list->vals[i];
			rc_hook *hk = &(*out)[*nout];
			rc_buf what = RC_BUF_INIT_MAX(512);
			rc_ctx hc = {L, NULL, false};
			int w;

			rc_buf_printf(&what, "hook %s[%zu]", phases[p], i);
			hc.what = what.ptr;
			if (!rc_expect_map(&hc, h, what.ptr)) {
				rc_buf_release(&what);
				continue;
			}
			(*nout)++;
			hk->loc = h->loc;
			rc_check_keys(&hc, h, keys, RC_ARRAY_SIZE(keys));
			hk->name = rc_get_str(&hc, h, "name", false, h->loc, 1);
			if (!hk->name) {
				hk->name = rc_strdup(what.ptr + 5);
			}
			if (!rc_node_get(h, "run"))
				rc_diag_error(L->diags, h->loc, h->span,
					      "%s is missing the required key "
					      "'run'",
					      what.ptr);
			rc_get_argv(&hc, h, "run", &hk->run, true, NULL);
			w = rc_get_enum(&hc, h, "where", wheres, 2, 0);
			hk->local = w == 1 ||
				    env->target.driver == RC_DRIVER_LOCAL;
			hk->service = rc_get_str(&hc, h, "service", false,
						 h->loc, 1);
			hk->timeout = rc_get_duration(&hc, h, "timeout", 600);
			hk->irreversible =
				rc_get_bool(&hc, h, "irreversible", 0) == 1;
			rc_get_kvlist(&hc, h, "env", &hk->env, true);
			if (hk->service) {
				for (j = 0; j < env->nservices; j++)
					if (!strcmp(env->services[j].name,
						    hk->service))
						break;
				if (j == env->nservices) {
					const rc_node *sn =
						rc_node_get(h, "service");

					rc_diag_error(L->diags, sn->loc,
						      sn->span,
						      "%s names service '%s', "
						      "which the environment "
						      "does not have",
						      what.ptr, hk->service);
				}
			} else if (!hk->local &&
				   (env->target.driver == RC_DRIVER_KUBERNETES ||
				    env->target.driver == RC_DRIVER_ECS)) {
				rc_diag_error(L->diags, h->loc, h->span,
					      "%s runs on %s target and needs "
					      "'service' (whose image runs it) "
					      "or 'where: local'",
					      what.ptr,
					      a_driver(env->target.driver));
			}
			rc_buf_release(&what);
		}
	}
	/* hook names are unique across phases: they name the journal's
	 * records */
	for (p = 0; p < NPHASES; p++) {
		for (i = 0; i < *counts[p]; i++) {
			rc_hook *h = &(*lists[p])[i];
			bool dup = false;

			for (q = 0; q <= p && !dup; q++) {
				size_t n = q == p ? i : *counts[q];

				for (j = 0; j < n && !dup; j++) {
					rc_hook *o = &(*lists[q])[j];

					if (!o->name || !h->name ||
					    strcmp(o->name, h->name))
						continue;
					rc_diag_error(L->diags, h->loc, 1,
						      "a hook named '%s' is "
						      "already defined (line "
						      "%d)",
						      h->name, o->loc.line);
					dup = true;
				}
			}
		}
	}
}

static void add_manifest(rc_loader *L, rc_env *env, const rc_node *doc,
			 const char *source, const rc_subst_vars *vars)
{
	rc_ctx c = {L, "the manifest", false};
	rc_manifest *r;
	const rc_node *md;
	rc_node *copy;

	if (doc->kind != RC_NODE_MAP) {
		rc_diag_error(L->diags, doc->loc, doc->span,
			      "a manifest must be a map, not %s",
			      rc_node_kind_name(doc));
		return;
	}
	copy = rc_node_copy(doc);
	rc_node_drop_nulls(copy);
	if (vars)
		rc_subst_tree(L, copy, vars);
	env->resources = rc_realloc(env->resources, (env->nresources + 1) *
							    sizeof(rc_manifest));
	r = &env->resources[env->nresources++];
	memset(r, 0, sizeof(*r));
	r->manifest = copy;
	r->loc = doc->loc;
	r->source = source ? rc_strdup(source) : NULL;
	r->api_version = rc_get_str(&c, copy, "apiVersion", true, doc->loc, 1);
	r->kind = rc_get_str(&c, copy, "kind", true, doc->loc, 1);
	md = rc_node_get(copy, "metadata");
	if (!md) {
		rc_diag_error(L->diags, doc->loc, 1,
			      "the manifest is missing the required key "
			      "'metadata'");
	} else if (rc_expect_map(&c, md, "metadata")) {
		c.what = "the manifest's metadata";
		r->name = rc_get_str(&c, md, "name", true, md->loc, 1);
	}
}

static void type_resources(rc_loader *L, rc_env *env, const rc_node *m,
			   const rc_subst_vars *vars)
{
	static const char *const keys[] = {"file", "manifest"};
	rc_ctx c = {L, "resources", false};
	size_t i, d;

	if (m->kind != RC_NODE_SEQ) {
		rc_diag_error(L->diags, m->loc, m->span,
			      "'resources' must be a list, not %s",
			      rc_node_kind_name(m));
		return;
	}
	if (env->target.driver != RC_DRIVER_KUBERNETES && m->n) {
		rc_diag_error(L->diags, m->loc, m->span,
			      "raw resources are supported for kubernetes "
			      "targets only, not '%s'",
			      rc_driver_name(env->target.driver));
		return;
	}
	for (i = 0; i < m->n; i++) {
		const rc_node *it = m->vals[i], *n;

		if (!rc_expect_map(&c, it, "resources[]"))
			continue;
		rc_check_keys(&c, it, keys, 2);
		if ((rc_node_get(it, "file") != NULL) ==
		    (rc_node_get(it, "manifest") != NULL)) {
			rc_diag_error(L->diags, it->loc, it->span,
				      "a resource needs exactly one of "
				      "'file' or 'manifest'");
			continue;
		}
		if ((n = rc_node_get(it, "manifest")) != NULL) {
			add_manifest(L, env, n, NULL, NULL);
		} else {
			const rc_node *fn = rc_node_get(it, "file");
			char *p = rc_scalar_text(&c, fn, "file"), *rel;
			rc_file_entry *f;

			if (!p)
				continue;
			rel = rc_loader_resolve_path(L, NULL, p, fn->loc,
						     fn->span, true);
			free(p);
			if (!rel)
				continue;
			f = rc_loader_file(L, rel, fn->loc, fn->span);
			if (f)
				for (d = 0; d < f->ndocs; d++)
					if (f->docs[d] &&
					    !rc_node_is_null(f->docs[d]))
						add_manifest(L, env, f->docs[d],
							     rel, vars);
			free(rel);
		}
	}
}

static void type_ignore(rc_loader *L, rc_env *env, const rc_node *m)
{
	static const char *const keys[] = {"resource", "paths"};
	size_t i, j;

	if (m->kind != RC_NODE_SEQ) {
		rc_diag_error(L->diags, m->loc, m->span,
			      "'ignore' must be a list of rules, not %s",
			      rc_node_kind_name(m));
		return;
	}
	env->ignore = rc_calloc(m->n + 1, sizeof(rc_ignore_rule));
	for (i = 0; i < m->n; i++) {
		const rc_node *r = m->vals[i];
		rc_ctx c = {L, "the ignore rule", false};
		rc_ignore_rule *rule;

		if (!rc_expect_map(&c, r, "ignore[]"))
			continue;
		rc_check_keys(&c, r, keys, 2);
		rule = &env->ignore[env->nignore];
		rule->loc = r->loc;
		rule->resource = rc_get_str(&c, r, "resource", false, r->loc, 1);
		if (!rule->resource)
			rule->resource = rc_strdup("*");
		else if (strcmp(rule->resource, "*") &&
			 (!strchr(rule->resource, '/') ||
			  strchr(strchr(rule->resource, '/') + 1, '/'))) {
			const rc_node *rn = rc_node_get(r, "resource");

			rc_diag_error(L->diags, rn->loc, rn->span,
				      "'resource' in the ignore rule must be "
				      "kind/name (such as service/web) or *");
		}
		if (!rc_node_get(r, "paths"))
			rc_diag_error(L->diags, r->loc, r->span,
				      "the ignore rule is missing the required "
				      "key 'paths'");
		rc_get_argv(&c, r, "paths", &rule->paths, true, "JSON pointers");
		for (j = 0; j < rule->paths.n; j++)
			if (rule->paths.v[j][0] != '/') {
				const rc_node *pn = rc_node_get(r, "paths")->vals[j];

				rc_diag_error(L->diags, pn->loc, pn->span,
					      "'%s' is not a JSON pointer: write "
					      "it from the body's root, such as "
					      "'/replicas' or '/env/NAME'",
					      rule->paths.v[j]);
			}
		env->nignore++;
	}
}

static void type_policy(rc_loader *L, rc_env *env, const rc_node *m)
{
	static const char *const keys[] = {"branch", "apply", "prune",
					   "drift", "force_conflicts",
					   "allow_replace", "adopt", "verify"};
	static const char *const applies[] = {"auto", "manual"};
	static const char *const drifts[] = {"report", "heal"};
	rc_ctx c = {L, "policy", false};

	if (!rc_expect_map(&c, m, "policy"))
		return;
	rc_check_keys(&c, m, keys, RC_ARRAY_SIZE(keys));
	env->policy.branch = rc_get_str(&c, m, "branch", false, m->loc, 1);
	env->policy.apply = (rc_apply_mode)rc_get_enum(&c, m, "apply", applies,
						       2, 0);
	env->policy.prune = rc_get_bool(&c, m, "prune", 0) == 1;
	env->policy.drift = (rc_drift_mode)rc_get_enum(&c, m, "drift", drifts,
						       2, 0);
	/* drift: heal means the configuration wins: fields another client
	   took are taken back unless force_conflicts says otherwise */
	env->policy.force_conflicts =
		rc_get_bool(&c, m, "force_conflicts",
			    env->policy.drift == RC_DRIFT_HEAL) == 1;
	env->policy.allow_replace = rc_get_bool(&c, m, "allow_replace", 0) == 1;
	env->policy.adopt = rc_get_bool(&c, m, "adopt", 0) == 1;
	if ((m = rc_node_get(m, "verify")) != NULL)
		rc_type_verify(L, &env->policy.verify, m);
}

void rc_type_env(rc_loader *L, rc_env *env, const rc_node *body, rc_loc at,
		 int at_span)
{
	rc_buf what = RC_BUF_INIT_MAX(512);
	rc_ctx c = {L, NULL, false};
	const rc_node *n;
	size_t i;

	rc_buf_printf(&what, "environment '%s'", env->name);
	c.what = what.ptr;
	rc_check_keys(&c, body, body_keys, RC_ARRAY_SIZE(body_keys));
	type_target(L, env, rc_node_get(body, "target"), at, at_span);
	if ((n = rc_node_get(body, "services")) != NULL &&
	    rc_expect_map(&c, n, "services")) {
		env->services = rc_calloc(n->n, sizeof(rc_service));
		for (i = 0; i < n->n; i++)
			type_service(L, env, &env->services[env->nservices++],
				     n->keys[i], n->vals[i]);
	}
	rc_get_kvlist(&c, body, "config", &env->config, true);
	/* before the secrets: an encrypted one is checked against them */
	if ((n = rc_node_get(body, "recipients")) != NULL) {
		rc_buf w = RC_BUF_INIT_MAX(512);

		rc_buf_printf(&w, "recipients in %s", what.ptr);
		rc_type_recipients(L, n, w.ptr, &env->recipients,
				   &env->recipients_loc);
		env->recipients_own = true;
		rc_buf_release(&w);
	} else if (L->cfg->recipients.n) {
		const rc_argv *top = &L->cfg->recipients;

		env->recipients.v = rc_calloc(top->n + 1, sizeof(char *));
		env->recipients_loc = rc_calloc(top->n + 1, sizeof(rc_loc));
		for (i = 0; i < top->n; i++) {
			env->recipients.v[i] = rc_strdup(top->v[i]);
			env->recipients_loc[i] = L->cfg->recipients_loc[i];
		}
		env->recipients.n = top->n;
	}
	if ((n = rc_node_get(body, "secrets")) != NULL)
		type_secrets(L, env, n);
	for (i = 0; i < env->nsecrets; i++) {
		if (rc_kvlist_get(&env->config, env->secrets[i].name))
			rc_diag_error(L->diags, env->secrets[i].loc,
				      (int)strlen(env->secrets[i].name),
				      "'%s' is both in config and in secrets",
				      env->secrets[i].name);
	}
	if ((n = rc_node_get(body, "addons")) != NULL)
		type_addons(L, env, n);
	if ((n = rc_node_get(body, "hooks")) != NULL)
		type_hooks(L, env, n);
	if ((n = rc_node_get(body, "policy")) != NULL)
		type_policy(L, env, n);
	if (!env->policy.verify.require && L->cfg->verify.require)
		rc_verify_copy(&env->policy.verify, &L->cfg->verify);
	if ((n = rc_node_get(body, "resources")) != NULL) {
		rc_subst_vars vars = {0};

		vars.item = env->generator ? &env->item : NULL;
		vars.project = L->cfg->project;
		vars.env_name = env->name;
		vars.allow_env = L->cfg->allow_env;
		vars.nallow_env = L->cfg->nallow_env;
		vars.env_branch = rc_kvlist_get(&env->item, "branch")
					  ? rc_kvlist_get(&env->item, "branch")
					  : env->policy.branch;
		vars.target = rc_node_get(body, "target");
		type_resources(L, env, n, &vars);
	}
	if ((n = rc_node_get(body, "ignore")) != NULL)
		type_ignore(L, env, n);
	if ((n = rc_node_get(body, "depends_on")) != NULL) {
		if (n->kind != RC_NODE_SEQ) {
			rc_diag_error(L->diags, n->loc, n->span,
				      "'depends_on' in %s must be a list of "
				      "environment names, not %s",
				      what.ptr, rc_node_kind_name(n));
		} else {
			env->depends_on = rc_calloc(n->n + 1, sizeof(char *));
			env->depends_on_loc = rc_calloc(n->n + 1, sizeof(rc_loc));
			for (i = 0; i < n->n; i++) {
				char *s = rc_scalar_text(&c, n->vals[i],
							 "depends_on");

				if (!s)
					continue;
				env->depends_on_loc[env->ndepends_on] =
					n->vals[i]->loc;
				env->depends_on[env->ndepends_on++] = s;
			}
		}
	}
	rc_buf_release(&what);
}

void rc_type_recipients(rc_loader *L, const rc_node *n, const char *what,
			rc_argv *out, rc_loc **locs)
{
	rc_ctx c = {L, what, false};

	memset(out, 0, sizeof(*out));
	*locs = NULL;
	if (n->kind != RC_NODE_SEQ) {
		rc_diag_error(L->diags, n->loc, n->span,
			      "%s must be a list of public keys (age1..., "
			      "ssh-ed25519 ..., ssh-rsa ...), not %s",
			      what, rc_node_kind_name(n));
		return;
	}
	out->v = rc_calloc(n->n + 1, sizeof(char *));
	*locs = rc_calloc(n->n + 1, sizeof(rc_loc));
	for (size_t i = 0; i < n->n; i++) {
		char *s = rc_scalar_text(&c, n->vals[i], "recipient");
		rc_age_recipient *r = NULL;

		if (!s)
			continue;
		if (rc_age_recipient_parse(&r, s) < 0) {
			rc_diag_error(L->diags, n->vals[i]->loc,
				      n->vals[i]->span, "%s: %s", what,
				      rc_error_last()->message);
			rc_error_clear();
			free(s);
			continue;
		}
		rc_age_recipient_free(r);
		(*locs)[out->n] = n->vals[i]->loc;
		out->v[out->n++] = s;
	}
}

static void service_release(rc_service *s)
{
	free(s->name);
	free(s->image);
	rc_argv_free(&s->command);
	rc_argv_free(&s->args);
	free(s->size);
	rc_kvlist_free(&s->env);
	free(s->health.http_path);
	rc_argv_free(&s->health.command);
	rc_node_free(s->native);
	free(s->workdir);
	free(s->process_type);
}

void rc_env_release(rc_env *env)
{
	size_t i;
	rc_target *t = &env->target;

	free(env->name);
	free(env->generator);
	rc_argv_free(&env->recipients);
	free(env->recipients_loc);
	rc_kvlist_free(&env->item);
	free(env->file);
	free(t->context);
	free(t->namespace);
	free(t->kubeconfig);
	free(t->app);
	free(t->region);
	free(t->stack);
	free(t->team);
	free(t->pipeline);
	free(t->stage);
	free(t->cluster);
	free(t->launch_type);
	rc_argv_free(&t->subnets);
	rc_argv_free(&t->security_groups);
	free(t->execution_role_arn);
	for (i = 0; i < env->nservices; i++)
		service_release(&env->services[i]);
	free(env->services);
	rc_kvlist_free(&env->config);
	for (i = 0; i < env->nsecrets; i++) {
		free(env->secrets[i].name);
		free(env->secrets[i].ref);
		free(env->secrets[i].ciphertext);
	}
	free(env->secrets);
	for (i = 0; i < env->naddons; i++) {
		free(env->addons[i].name);
		free(env->addons[i].kind);
		free(env->addons[i].plan);
		free(env->addons[i].as);
		rc_kvlist_free(&env->addons[i].config);
	}
	free(env->addons);
	{
		rc_hook **lists[NPHASES];
		size_t *counts[NPHASES];

		hook_lists(env, lists, counts);
		for (size_t p = 0; p < NPHASES; p++) {
			for (i = 0; i < *counts[p]; i++) {
				rc_hook *h = &(*lists[p])[i];

				free(h->name);
				rc_argv_free(&h->run);
				free(h->service);
				rc_kvlist_free(&h->env);
			}
			free(*lists[p]);
		}
	}
	for (i = 0; i < env->nresources; i++) {
		rc_manifest *r = &env->resources[i];

		free(r->source);
		rc_node_free(r->manifest);
		free(r->api_version);
		free(r->kind);
		free(r->name);
	}
	free(env->resources);
	free(env->policy.branch);
	rc_verify_release(&env->policy.verify);
	for (i = 0; i < env->ndepends_on; i++)
		free(env->depends_on[i]);
	free(env->depends_on);
	free(env->depends_on_loc);
	for (i = 0; i < env->nignore; i++) {
		free(env->ignore[i].resource);
		rc_argv_free(&env->ignore[i].paths);
	}
	free(env->ignore);
	memset(env, 0, sizeof(*env));
}
