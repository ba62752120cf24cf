/*
 * The local driver: services are processes on this machine, add-ons are
 * private PostgreSQL clusters (drivers/local_pg.c). See
 * docs/drivers/local.md for what it runs and how.
 *
 * State, under <state>/local/<env>/:
 *   services/<name>.json  {body: the applied body (secrets as their
 *                          {"$secret"} objects), replicas: [{replica, pid,
 *                          starttime, port}]}
 *   logs/<service>.<replica>.log, logs/addon-<name>.log
 *   addons/<name>/        the add-on's record and (usually) its cluster
 *
 * Every process started for a service carries
 * RECONCILE_OWNER=<project>/<env>/<service>/<replica> and
 * RECONCILE_STATE=<the state directory, absolute> in its environment: that
 * mark, checked in /proc/PID/environ together with the start time of the
 * pid, is what makes a process ours. Two state directories (two copies of
 * a repository, two test runs) never see each other's processes. A run
 * killed between fork and record write leaves a marked process without a
 * record; observe() finds it by scanning /proc and adopts it, so it is
 * never started twice.
 */
#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/json.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "schema/secrets.h"
#include "drivers/local.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>

#define ADDON_PORT_BASE 20000
#define ADDON_PORT_SPAN 10000

char *rc_local_path(const rc_driver *d, const char *fmt, ...)
{
	rc_buf b = RC_BUF_INIT_MAX(PATH_MAX * 2);
	va_list ap;

	rc_buf_printf(&b, "%s/", d->root);
	va_start(ap, fmt);
	rc_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	return rc_buf_detach(&b);
}

/* ------------------------------------------------------------ open/close */

static void local_close(rc_driver *d)
{
	if (!d)
		return;
	free(d->project);
	free(d->env_name);
	free(d->config_dir);
	free(d->state);
	free(d->root);
	free(d->run_id);
	free(d->owner_prefix);
	free(d);
}

static int local_open(rc_driver **out, const rc_env *env,
		      const rc_driver_ctx *ctx)
{
	char real[PATH_MAX];
	rc_buf b = RC_BUF_INIT_MAX(PATH_MAX * 2);
	rc_driver *d;

	*out = NULL;
	if (!ctx->config_dir || !ctx->state_dir)
		return rc_error_set(RC_EINVALID, RC_ECLASS_INTERNAL,
				    "the local driver needs a configuration "
				    "and a state directory");
	if (!realpath(ctx->config_dir, real))
		return rc_error_set_os("cannot resolve the configuration "
				       "directory '%s'",
				       ctx->config_dir);
	d = rc_calloc(1, sizeof(*d));
	/* absolute, so that a process's directory, a record or the mark
	 * never depends on where reconcile was started, nor on whether the
	 * state directory exists yet */
	d->state = rc_local_abspath(ctx->state_dir);
	if (!d->state) {
		free(d);
		rc_error_prefix("the state directory");
		return RC_ERROR;
	}
	d->env = env;
	d->project = rc_strdup(ctx->project);
	d->env_name = rc_strdup(env->name);
	d->config_dir = rc_strdup(real);
	d->run_id = ctx->run_id ? rc_strdup(ctx->run_id) : NULL;
	rc_buf_printf(&b, "%s/local/%s", d->state, env->name);
	if (b.toobig) {
		local_close(d);
		rc_buf_release(&b);
		return rc_error_set(RC_ETOOBIG, RC_ECLASS_OS,
				    "the state directory's path is too long");
	}
	d->root = rc_buf_detach(&b);
	rc_buf_printf(&b, "%s/%s/", ctx->project, env->name);
	d->owner_prefix = rc_buf_detach(&b);
	*out = d;
	return 0;
}

/* ---------------------------------------------------------------- expand */

/* FNV-1a of "<state>/<project>/<env>/<addon>": stable without any record,
 * and another state directory (another copy of the repository) gets
 * another port. */
static int addon_port(const rc_driver *d, const char *addon)
{
	rc_buf key = RC_BUF_INIT_MAX(PATH_MAX * 2 + 4096);
	uint32_t h = 2166136261u;

	rc_buf_printf(&key, "%s/%s/%s/%s", d->state, d->project, d->env_name,
		      addon);
	for (size_t i = 0; i < key.len; i++) {
		h ^= (unsigned char)key.ptr[i];
		h *= 16777619u;
	}
	rc_buf_release(&key);
	return ADDON_PORT_BASE + (int)(h % ADDON_PORT_SPAN);
}

/* The variable an add-on is attached as: "<AS>_URL", DATABASE_URL by
 * default (new string). */
static char *addon_var(const rc_addon *a)
{
	rc_buf b = RC_BUF_INIT_MAX(512);

	rc_buf_printf(&b, "%s_URL", a->as ? a->as : "DATABASE");
	return rc_buf_detach(&b);
}

/* Adds the add-ons' connection variables of env to obj; checks kinds. */
static int addon_vars(const rc_driver *d, const rc_env *env, json_t *obj)
{
	json_t *seen = json_object();
	int rc = 0;

	for (size_t i = 0; i < env->naddons && !rc; i++) {
		const rc_addon *a = &env->addons[i];
		char *var;
		rc_buf url = RC_BUF_INIT_MAX(512);
		const char *other;

		if (strcmp(a->kind, "postgresql")) {
			rc = rc_error_set_at(RC_EUNSUPPORTED, a->loc,
					     "add-on '%s': the local driver "
					     "cannot run kind '%s' (it runs "
					     "'postgresql' only)",
					     a->name, a->kind);
			break;
		}
		var = addon_var(a);
		other = json_string_value(json_object_get(seen, var));
		if (other) {
			rc = rc_error_set_at(RC_EINVALID, a->loc,
					     "add-ons '%s' and '%s' are both "
					     "attached as %s: give one an 'as'",
					     other, a->name, var);
		} else {
			json_object_set_new(seen, var, json_string(a->name));
			rc_buf_printf(&url,
				      "postgresql://postgres@127.0.0.1:%d/"
				      "postgres",
				      addon_port(d, a->name));
			json_object_set_new(obj, var, json_string(url.ptr));
		}
		rc_buf_release(&url);
		free(var);
	}
	json_decref(seen);
	return rc;
}

static json_t *argv_json(const rc_argv *a, json_t *into)
{
	for (size_t i = 0; i < a->n; i++)
		json_array_append_new(into, json_string(a->v[i]));
	return into;
}

static json_t *health_json(const rc_health *h)
{
	json_t *o;

	if (h->kind == RC_HEALTH_NONE)
		return NULL;
	o = json_object();
	if (h->kind == RC_HEALTH_HTTP)
		json_object_set_new(o, "http", json_string(h->http_path));
	else if (h->kind == RC_HEALTH_TCP)
		json_object_set_new(o, "tcp", json_true());
	else
		json_object_set_new(o, "command",
				    argv_json(&h->command, json_array()));
	json_object_set_new(o, "interval", json_integer(h->interval));
	json_object_set_new(o, "timeout", json_integer(h->timeout));
	json_object_set_new(o, "retries", json_integer(h->retries));
	json_object_set_new(o, "grace", json_integer(h->grace));
	return o;
}

/* The environment's shared variables: config, add-ons, secrets (as their
 * {"$secret"} objects). */
static int shared_env(const rc_driver *d, const rc_env *env, json_t **out)
{
	json_t *e = json_object();
	int rc;

	*out = NULL;
	for (size_t i = 0; i < env->config.n; i++)
		json_object_set_new(e, env->config.items[i].key,
				    json_string(env->config.items[i].value));
	rc = addon_vars(d, env, e);
	for (size_t i = 0; i < env->nsecrets && !rc; i++) {
		const rc_secret *s = &env->secrets[i];
		char *v = NULL;

		rc = rc_secret_value(&v, s, d->config_dir);
		if (rc < 0)
			break;
		json_object_set_new(e, s->name, rc_secret_json(s, v));
		explicit_bzero(v, strlen(v));
		free(v);
	}
	if (rc < 0) {
		json_decref(e);
		return rc;
	}
	*out = e;
	return 0;
}

/* The variables of the ownership mark. */
static const char *const mark_vars[] = {RC_LOCAL_OWNER_VAR,
					RC_LOCAL_STATE_VAR};

static int service_body(const rc_driver *d, const rc_service *s,
			const json_t *shared, json_t **out)
{
	json_t *b = json_object(), *env = json_deep_copy(shared), *h;
	rc_buf wd = RC_BUF_INIT_MAX(PATH_MAX * 2);
	const char *port_var;

	*out = NULL;
	if (!s->command.n) {
		json_decref(b);
		json_decref(env);
		return rc_error_set_at(RC_EINVALID, s->loc,
				       "service '%s' has no command: the "
				       "local driver runs 'command' (and "
				       "'args') as a process",
				       s->name);
	}
	for (size_t i = 0; i < s->env.n; i++)
		json_object_set_new(env, s->env.items[i].key,
				    json_string(s->env.items[i].value));
	for (size_t i = 0; i < RC_ARRAY_SIZE(mark_vars); i++) {
		if (!json_object_get(env, mark_vars[i]))
			continue;
		json_decref(b);
		json_decref(env);
		return rc_error_set_at(RC_EINVALID, s->loc,
				       "service '%s': %s is set by the local "
				       "driver and cannot be configured",
				       s->name, mark_vars[i]);
	}
	/* with a port, the driver sets PORT for each replica itself */
	port_var = rc_kvlist_get(&s->env, "PORT");
	if (s->port) {
		char want[16];

		snprintf(want, sizeof(want), "%d", s->port);
		if (port_var && strcmp(port_var, want)) {
			json_decref(b);
			json_decref(env);
			return rc_error_set_at(
				RC_EINVALID, s->loc,
				"service '%s': env PORT is '%s' but port is "
				"%d; the local driver gives each replica "
				"PORT=%d, %d, ...",
				s->name, port_var, s->port, s->port,
				s->port + 1);
		}
		json_object_del(env, "PORT");
	}
	json_object_set_new(
		b, "command",
		argv_json(&s->args, argv_json(&s->command, json_array())));
	rc_buf_puts(&wd, d->config_dir);
	if (s->workdir && *s->workdir && strcmp(s->workdir, "."))
		rc_buf_printf(&wd, "/%s", s->workdir);
	json_object_set_new(b, "workdir", json_string(wd.ptr));
	rc_buf_release(&wd);
	json_object_set_new(b, "env", env);
	if (s->port)
		json_object_set_new(b, "port", json_integer(s->port));
	json_object_set_new(b, "replicas", json_integer(s->replicas));
	if ((h = health_json(&s->health)) != NULL)
		json_object_set_new(b, "health", h);
	*out = b;
	return 0;
}

static int local_expand(rc_driver *d, const rc_env *env, rc_resource_set *out)
{
	json_t *shared = NULL;
	rc_buf key = RC_BUF_INIT_MAX(4096);
	int rc;

	rc = shared_env(d, env, &shared);
	if (rc < 0)
		goto done;
	for (size_t i = 0; i < env->naddons; i++) {
		const rc_addon *a = &env->addons[i];
		json_t *b = json_object();
		rc_resource *r;

		json_object_set_new(b, "kind", json_string(a->kind));
		if (a->plan)
			json_object_set_new(b, "plan", json_string(a->plan));
		json_object_set_new(b, "port",
				    json_integer(addon_port(d, a->name)));
		r = rc_resource_set_add(out, env->name, "local", "addon",
					a->name, b);
		r->loc = a->loc;
		r->precious = true;
	}
	for (size_t i = 0; i < env->nservices; i++) {
		const rc_service *s = &env->services[i];
		json_t *b;
		rc_resource *r;

		rc = service_body(d, s, shared, &b);
		if (rc < 0)
			goto done;
		r = rc_resource_set_add(out, env->name, "local", "service",
					s->name, b);
		r->loc = s->loc;
		for (size_t j = 0; j < env->naddons; j++) {
			rc_buf_clear(&key);
			rc_buf_printf(&key, "%s/addon/%s", env->name,
				      env->addons[j].name);
			rc_resource_add_dep(r, key.ptr);
		}
	}
done:
	json_decref(shared);
	rc_buf_release(&key);
	return rc;
}

/* --------------------------------------------------------------- records */

static json_t *read_record(const rc_driver *d, const char *name)
{
	char *path = rc_local_path(d, "services/%s.json", name);
	json_t *rec = NULL;

	if (rc_local_read_json(&rec, path) < 0) {
		const rc_error *e = rc_error_last();

		if (e && e->code != RC_ENOTFOUND)
			RC_WARN("local: ignoring the record of service '%s': "
				"%s",
				name, e->message);
		rec = NULL;
	}
	free(path);
	return rec;
}

static int write_record(const rc_driver *d, const char *name,
			const json_t *body, const rc_local_procs *live)
{
	char *dir = rc_local_path(d, "services");
	char *path = rc_local_path(d, "services/%s.json", name);
	json_t *rec = json_object(), *reps = json_array();
	json_int_t port = json_integer_value(json_object_get(body, "port"));
	int rc;

	for (size_t i = 0; i < live->n; i++) {
		const rc_local_proc *p = &live->items[i];
		json_t *o = json_object();

		json_object_set_new(o, "replica", json_integer(p->replica));
		json_object_set_new(o, "pid", json_integer(p->pid));
		json_object_set_new(o, "starttime",
				    json_integer((json_int_t)p->starttime));
		if (port)
			json_object_set_new(o, "port",
					    json_integer(port + p->replica));
		json_array_append_new(reps, o);
	}
	json_object_set(rec, "body", (json_t *)(uintptr_t)body);
	json_object_set_new(rec, "replicas", reps);
	rc = rc_local_mkdirs(dir, 0755);
	if (!rc)
		rc = rc_local_write_json(path, rec);
	json_decref(rec);
	free(dir);
	free(path);
	return rc;
}

static char *owner_of(const rc_driver *d, const char *service, int replica)
{
	rc_buf b = RC_BUF_INIT_MAX(4096);

	rc_buf_printf(&b, "%s%s/%d", d->owner_prefix, service, replica);
	return rc_buf_detach(&b);
}

static int proc_cmp(const void *a, const void *b)
{
	const rc_local_proc *x = a, *y = b;

	if (x->replica != y->replica)
		return x->replica < y->replica ? -1 : 1;
	if (x->recorded != y->recorded)
		return x->recorded ? -1 : 1;
	return x->pid < y->pid ? -1 : x->pid > y->pid;
}

/* The live processes of a service: the record's, checked (alive, same
 * start time, our mark), and the marked ones the record misses (adopted).
 * Sorted by replica, recorded ones first. */
static void collect_live(const rc_driver *d, const char *name,
			 const json_t *record, const rc_local_procs *scan,
			 rc_local_procs *live)
{
	json_t *reps = json_object_get(record, "replicas"), *o;
	size_t i, j;

	json_array_foreach(reps, i, o) {
		rc_local_proc p = {0};
		char *owner;

		p.pid = (pid_t)json_integer_value(json_object_get(o, "pid"));
		p.starttime = (unsigned long long)json_integer_value(
			json_object_get(o, "starttime"));
		p.replica =
			(int)json_integer_value(json_object_get(o, "replica"));
		p.service = (char *)(uintptr_t)name;
		p.recorded = true;
		owner = owner_of(d, name, p.replica);
		if (p.pid > 0 &&
		    rc_local_proc_verify(p.pid, p.starttime, d->state, owner))
			rc_local_procs_add(live, &p);
		free(owner);
	}
	for (i = 0; i < scan->n; i++) {
		const rc_local_proc *s = &scan->items[i];

		if (strcmp(s->service, name))
			continue;
		for (j = 0; j < live->n; j++)
			if (live->items[j].pid == s->pid)
				break;
		if (j < live->n)
			continue;
		rc_local_proc p = *s;

		p.recorded = false;
		RC_INFO("local: adopting process %ld, replica %d of service "
			"'%s' (not in the record)",
			(long)p.pid, p.replica, name);
		rc_local_procs_add(live, &p);
	}
	if (live->n > 1)
		qsort(live->items, live->n, sizeof(*live->items), proc_cmp);
}

/* ----------------------------------------------------------------- observe */

static const json_t *env_spec(const json_t *desired, const json_t *recbody,
			      const char *name)
{
	const json_t *v =
		json_object_get(json_object_get(desired, "env"), name);

	return v ? v : json_object_get(json_object_get(recbody, "env"), name);
}

static void observe_var(json_t *env, const rc_buf *environ_, const char *name,
			const json_t *spec)
{
	const char *v = rc_local_environ_get(environ_, name);

	if (!v || json_object_get(env, name))
		return;
	if (json_is_object(spec)) {
		const char *ref =
			json_string_value(json_object_get(spec, "ref"));

		json_object_set_new(env, name,
				    rc_secret_json_observed(ref ? ref : "", v));
	} else {
		json_object_set_new(env, name, json_string(v));
	}
}

static const char *base_name(const char *s)
{
	const char *slash = strrchr(s, '/');

	return slash ? slash + 1 : s;
}

/* Whether a process's argv (/proc/PID/cmdline) is the command: the same,
 * but for the directory of the program, which the search in PATH or a
 * wrapper that re-executes it (a version manager's shim) may have added. */
static bool argv_is(const json_t *argv, const json_t *cmd)
{
	size_t n = json_array_size(cmd);

	if (!argv || !n || json_array_size(argv) != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		const char *a = json_string_value(json_array_get(argv, i));
		const char *c = json_string_value(json_array_get(cmd, i));

		if (!a || !c)
			return false;
		if (i == 0 ? strcmp(base_name(a), base_name(c)) : strcmp(a, c))
			return false;
	}
	return true;
}

/* What one replica is: {command, workdir, env, port}. */
static json_t *replica_body(const rc_local_proc *p, const json_t *desired,
			    const json_t *recbody)
{
	rc_buf environ_ = RC_BUF_INIT_MAX(8 << 20);
	json_t *b = json_object(), *env = json_object(), *cmd;
	const json_t *rcmd = json_object_get(recbody, "command"), *dcmd;
	const char *rwd =
		json_string_value(json_object_get(recbody, "workdir"));
	const char *key, *port_s;
	json_t *v;
	char *cwd;
	json_int_t port;

	cmd = rc_local_proc_cmdline(p->pid);
	dcmd = json_object_get(desired, "command");
	if (argv_is(cmd, dcmd)) {
		json_decref(cmd);
		cmd = json_deep_copy(dcmd);
	} else if (rcmd && (argv_is(cmd, rcmd) || p->recorded)) {
		/* a verified recorded process runs what we started; a
		 * program that renames itself (setproctitle) does not
		 * change that */
		json_decref(cmd);
		cmd = json_deep_copy(rcmd);
	}
	json_object_set_new(b, "command", cmd ? cmd : json_array());
	cwd = rc_local_proc_cwd(p->pid);
	/* nor does one that changes its directory */
	if (p->recorded && rwd && (!cwd || strcmp(cwd, rwd))) {
		free(cwd);
		cwd = rc_strdup(rwd);
	}
	json_object_set_new(b, "workdir", json_string(cwd ? cwd : ""));
	free(cwd);

	/* only the variables the configuration names are ours */
	rc_local_proc_read(p->pid, "environ", &environ_);
	json_object_foreach(json_object_get(desired, "env"), key, v)
		observe_var(env, &environ_, key, v);
	json_object_foreach(json_object_get(recbody, "env"), key, v)
		observe_var(env, &environ_, key,
			    env_spec(desired, recbody, key));
	json_object_set_new(b, "env", env);

	if (json_object_get(desired, "port") ||
	    json_object_get(recbody, "port")) {
		char *end;
		long n;

		port = json_integer_value(json_object_get(recbody, "port"));
		if (!port)
			port = json_integer_value(
				json_object_get(desired, "port"));
		port_s = rc_local_environ_get(&environ_, "PORT");
		if (port_s) {
			n = strtol(port_s, &end, 10);
			if (!*end && end != port_s)
				port = n - p->replica;
		}
		json_object_set_new(b, "port", json_integer(port));
	}
	if (environ_.cap)
		explicit_bzero(environ_.ptr, environ_.cap);
	rc_buf_release(&environ_);
	return b;
}

static bool same_field(const json_t *a, const json_t *b, const char *k)
{
	const json_t *x = json_object_get(a, k), *y = json_object_get(b, k);

	if (!strcmp(k, "env")) {
		/* an empty map and none are the same */
		if (x && !json_object_size(x))
			x = NULL;
		if (y && !json_object_size(y))
			y = NULL;
	}
	if (!x || !y)
		return !x && !y;
	return rc_json_equal(x, y);
}

/* Whether a replica runs what desired says (command, workdir, env, port). */
static bool replica_matches(const json_t *desired, const json_t *rb)
{
	static const char *const keys[] = {"command", "workdir", "env", "port"};

	for (size_t i = 0; i < RC_ARRAY_SIZE(keys); i++)
		if (!same_field(desired, rb, keys[i]))
			return false;
	return true;
}

/* The observed body of a service, or NULL when it has neither processes
 * nor a record. */
static json_t *service_actual(const json_t *desired, const json_t *record,
			      const rc_local_procs *live)
{
	const json_t *recbody = json_object_get(record, "body");
	const json_t *health;
	json_t *body = NULL;

	if (!live->n) {
		if (!recbody)
			return NULL;
		body = json_deep_copy(recbody);
		json_object_set_new(body, "replicas", json_integer(0));
		return body;
	}
	/* show a replica that differs from desired, if one does: an update
	 * interrupted half way must show */
	for (size_t i = 0; i < live->n; i++) {
		json_t *rb = replica_body(&live->items[i], desired, recbody);

		if (!body) {
			body = rb;
			if (!desired)
				break;
			continue;
		}
		if (replica_matches(desired, body) &&
		    !replica_matches(desired, rb)) {
			json_decref(body);
			body = rb;
			break;
		}
		json_decref(rb);
	}
	json_object_set_new(body, "replicas",
			    json_integer((json_int_t)live->n));
	health = json_object_get(recbody ? recbody : desired, "health");
	if (health)
		json_object_set_new(body, "health", json_deep_copy(health));
	return body;
}

static void add_name(rc_argv *names, const char *name)
{
	for (size_t i = 0; i < names->n; i++)
		if (!strcmp(names->v[i], name))
			return;
	names->v = rc_realloc(names->v, (names->n + 1) * sizeof(char *));
	names->v[names->n++] = rc_strdup(name);
}

static void free_names(rc_argv *names)
{
	for (size_t i = 0; i < names->n; i++)
		free(names->v[i]);
	free(names->v);
	memset(names, 0, sizeof(*names));
}

/* Entries of dir: files ending in suffix (without it), or directories
 * when suffix is NULL. */
static void list_dir(const char *dir, const char *suffix, rc_argv *names)
{
	DIR *dh = opendir(dir);
	struct dirent *de;

	if (!dh)
		return;
	while ((de = readdir(dh)) != NULL) {
		size_t l = strlen(de->d_name);

		if (de->d_name[0] == '.')
			continue;
		if (suffix) {
			size_t sl = strlen(suffix);
			char *n;

			if (l <= sl || strcmp(de->d_name + l - sl, suffix))
				continue;
			n = rc_strndup(de->d_name, l - sl);
			add_name(names, n);
			free(n);
		} else {
			struct stat st;
			rc_buf p = RC_BUF_INIT_MAX(PATH_MAX * 2);

			rc_buf_printf(&p, "%s/%s", dir, de->d_name);
			if (stat(p.ptr, &st) == 0 && S_ISDIR(st.st_mode))
				add_name(names, de->d_name);
			rc_buf_release(&p);
		}
	}
	closedir(dh);
}

static const json_t *desired_body(const rc_driver *d,
				  const rc_resource_set *desired,
				  const char *kind, const char *name)
{
	rc_buf key = RC_BUF_INIT_MAX(4096);
	const rc_resource *r;

	if (!desired)
		return NULL;
	rc_buf_printf(&key, "%s/%s/%s", d->env_name, kind, name);
	r = rc_resource_set_find(desired, key.ptr);
	rc_buf_release(&key);
	return r && !strcmp(r->driver, "local") ? r->body : NULL;
}

/* One service as it is now (scan: NULL to scan here). */
static json_t *observe_service(const rc_driver *d, const char *name,
			       const json_t *desired,
			       const rc_local_procs *scan)
{
	rc_local_procs own = {0}, live = {0};
	json_t *record = read_record(d, name), *body;

	if (!scan) {
		rc_local_scan(d->state, d->owner_prefix, &own, NULL);
		scan = &own;
	}
	collect_live(d, name, record, scan, &live);
	body = service_actual(desired, record, &live);
	rc_local_procs_release(&live);
	rc_local_procs_release(&own);
	json_decref(record);
	return body;
}

static void add_actual(const rc_driver *d, rc_resource_set *out,
		       const char *kind, const char *name, json_t *body,
		       bool precious)
{
	rc_resource *r = rc_resource_set_add(out, d->env_name, "local", kind,
					     name, body);

	r->precious = precious;
	r->fingerprint = rc_json_fingerprint(body);
}

static int local_observe(rc_driver *d, const rc_resource_set *desired,
			 rc_resource_set *out)
{
	rc_local_procs scan = {0}, earlier = {0};
	rc_argv names = {0}, addons = {0};
	char *dir;
	size_t i;

	rc_local_scan(d->state, d->owner_prefix, &scan, &earlier);
	/* not ours any more, and not to be left running unnoticed */
	for (i = 0; i < earlier.n; i++)
		RC_WARN("local: process %ld, replica %d of service '%s', was "
			"started by an earlier reconcile (its mark has no %s): "
			"it is not managed any more; stop it (kill %ld)",
			(long)earlier.items[i].pid, earlier.items[i].replica,
			earlier.items[i].service, RC_LOCAL_STATE_VAR,
			(long)earlier.items[i].pid);
	dir = rc_local_path(d, "services");
	list_dir(dir, ".json", &names);
	free(dir);
	for (i = 0; i < scan.n; i++)
		add_name(&names, scan.items[i].service);
	for (i = 0; i < names.n; i++) {
		const json_t *want =
			desired_body(d, desired, "service", names.v[i]);
		json_t *body = observe_service(d, names.v[i], want, &scan);
		json_int_t live, declared;

		if (!body)
			continue;
		live = json_integer_value(json_object_get(body, "replicas"));
		declared = json_integer_value(json_object_get(want, "replicas"));
		add_actual(d, out, "service", names.v[i], body, false);
		if (want)
			rc_resource_set_health(&out->items[out->n - 1],
					       live < declared,
					       "running %lld/%lld",
					       (long long)live,
					       (long long)declared);
	}
	dir = rc_local_path(d, "addons");
	list_dir(dir, NULL, &addons);
	free(dir);
	for (i = 0; i < addons.n; i++) {
		json_t *body = rc_local_pg_observe(d, addons.v[i]);

		if (body)
			add_actual(d, out, "addon", addons.v[i], body, true);
	}
	free_names(&names);
	free_names(&addons);
	rc_local_procs_release(&scan);
	rc_local_procs_release(&earlier);
	return 0;
}

/* ------------------------------------------------- normalize, immutable */

static void local_normalize(const char *kind, json_t *body)
{
	json_t *env;

	if (strcmp(kind, "service") || !json_is_object(body))
		return;
	env = json_object_get(body, "env");
	if (env && json_is_object(env) && !json_object_size(env))
		json_object_del(body, "env");
}

static bool local_immutable(const char *kind, const char *path)
{
	/* a service's command or env changes restart its replicas: an
	 * update; an add-on's data belongs to its kind and version */
	return !strcmp(kind, "addon") &&
	       (!strcmp(path, "/plan") || !strcmp(path, "/kind"));
}

/* ------------------------------------------------------------------ apply */

/* Fills env with what a replica of body gets, secrets resolved. */
static int replica_env(const rc_driver *d, const char *name, const json_t *body,
		       int replica, bool owner, rc_local_env *env)
{
	const char *k;
	json_t *v;
	json_int_t port = json_integer_value(json_object_get(body, "port"));

	rc_local_env_base(env);
	json_object_foreach(json_object_get(body, "env"), k, v) {
		if (json_is_object(v)) {
			char *val = NULL;
			int rc = rc_secret_resolve(&val, v, d->env,
						   d->config_dir);

			if (rc < 0) {
				rc_error_prefix("service '%s', variable %s",
						name, k);
				return rc;
			}
			rc_local_env_set(env, k, val);
			explicit_bzero(val, strlen(val));
			free(val);
		} else if (json_is_string(v)) {
			rc_local_env_set(env, k, json_string_value(v));
		}
	}
	if (port) {
		char p[24];

		snprintf(p, sizeof(p), "%lld", (long long)(port + replica));
		rc_local_env_set(env, "PORT", p);
	}
	if (owner) {
		char *o = owner_of(d, name, replica);

		rc_local_env_set(env, RC_LOCAL_OWNER_VAR, o);
		rc_local_env_set(env, RC_LOCAL_STATE_VAR, d->state);
		free(o);
	}
	return 0;
}

static const char **body_argv(const json_t *arr)
{
	size_t n = json_array_size(arr), i;
	const char **argv = rc_calloc(n + 1, sizeof(char *));

	for (i = 0; i < n; i++) {
		argv[i] = json_string_value(json_array_get(arr, i));
		if (!argv[i])
			argv[i] = "";
	}
	return argv;
}

static char *log_path(const rc_driver *d, const char *name, int replica)
{
	return rc_local_path(d, "logs/%s.%d.log", name, replica);
}

int rc_local_open_log(const rc_driver *d, const char *file, int *fd)
{
	char *dir = rc_local_path(d, "logs");
	char *path = rc_local_path(d, "logs/%s", file);
	int rc = rc_local_mkdirs(dir, 0755);

	*fd = -1;
	if (!rc) {
		*fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			   0600);
		if (*fd < 0)
			rc = rc_error_set_os("cannot open the log '%s'", path);
	}
	free(dir);
	free(path);
	return rc;
}

static void log_header(int fd, const rc_driver *d, const char *fmt, ...)
	RC_PRINTF(3, 4);
static void log_header(int fd, const rc_driver *d, const char *fmt, ...)
{
	rc_buf b = RC_BUF_INIT_MAX(8192);
	char when[64];
	time_t now = time(NULL);
	struct tm tm;
	va_list ap;

	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	rc_buf_printf(&b, "==> reconcile %s: ", when);
	va_start(ap, fmt);
	rc_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (d->run_id)
		rc_buf_printf(&b, " (run %s)", d->run_id);
	rc_buf_putc(&b, '\n');
	rc_redact(&b);
	if (write(fd, b.ptr, b.len) < 0)
		RC_DEBUG("local: cannot write to a log: %s", strerror(errno));
	rc_buf_release(&b);
}

static int start_replica(const rc_driver *d, const char *name,
			 const json_t *body, int replica, rc_local_proc *out)
{
	rc_local_env env = {0};
	rc_local_spawn_opts o = {0};
	const char **argv = body_argv(json_object_get(body, "command"));
	char *file = NULL;
	rc_buf lf = RC_BUF_INIT_MAX(4096);
	char state;
	int fd = -1, rc;

	memset(out, 0, sizeof(*out));
	if (!argv[0]) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_INTERNAL,
				  "service '%s' has no command", name);
		goto done;
	}
	rc = replica_env(d, name, body, replica, true, &env);
	if (rc < 0)
		goto done;
	rc_buf_printf(&lf, "%s.%d.log", name, replica);
	rc = rc_local_open_log(d, lf.ptr, &fd);
	if (rc < 0)
		goto done;
	log_header(fd, d, "starting replica %d of service '%s'", replica, name);
	o.argv = argv;
	o.env = &env;
	o.dir = json_string_value(json_object_get(body, "workdir"));
	o.out_fd = fd;
	o.new_session = true;
	rc = rc_local_spawn(&out->pid, &o);
	if (rc < 0) {
		log_header(fd, d, "%s", rc_error_last()->message);
		rc_error_prefix("replica %d of service '%s'", replica, name);
		goto done;
	}
	if (rc_local_proc_stat(out->pid, &state, &out->starttime, NULL) < 0)
		out->starttime = 0;
	out->replica = replica;
	out->recorded = true;
	out->service = (char *)(uintptr_t)name;
	RC_INFO("local: started replica %d of service '%s' (pid %ld)", replica,
		name, (long)out->pid);
done:
	if (fd >= 0)
		close(fd);
	free(file);
	rc_buf_release(&lf);
	rc_local_env_release(&env);
	free(argv);
	return rc;
}

int rc_local_port_check(const rc_driver *d, const char *kind,
			const char *name, int port)
{
	long long until = rc_local_now_ms() + RC_LOCAL_STOP_GRACE_MS;
	rc_buf env = RC_BUF_INIT_MAX(8 << 20), msg = RC_BUF_INIT_MAX(4096);
	const char *owner, *state;
	rc_local_listener l;
	int rc;

	for (;;) {
		/* free, or /proc/net unreadable: starting will tell */
		if (rc_local_listener_find(port, &l) <= 0) {
			rc_buf_release(&env);
			return 0;
		}
		rc_buf_clear(&env);
		owner = state = NULL;
		if (l.pid > 0 &&
		    rc_local_proc_read(l.pid, "environ", &env) == 0) {
			owner = rc_local_environ_get(&env, RC_LOCAL_OWNER_VAR);
			state = rc_local_environ_get(&env, RC_LOCAL_STATE_VAR);
		}
		/* one of this environment's own processes that is stopping
		 * (an update's old replica, what it started) lets go soon */
		if (!owner || !state || strcmp(state, d->state) ||
		    strncmp(owner, d->owner_prefix, strlen(d->owner_prefix)) ||
		    rc_local_now_ms() >= until)
			break;
		rc_local_listener_release(&l);
		rc_local_sleep_ms(100);
	}
	rc_buf_printf(&msg, "%s '%s': port %d is in use by ", kind, name, port);
	if (l.pid > 0)
		rc_buf_printf(&msg, "%s (pid %ld: %s)",
			      l.comm ? l.comm : "a process", (long)l.pid,
			      l.cmdline ? l.cmdline : "?");
	else
		rc_buf_printf(&msg,
			      "a process of uid %lu that reconcile cannot see",
			      (unsigned long)l.uid);
	if (owner && state && !strcmp(state, d->state))
		rc_buf_printf(&msg, ", which this environment runs as %s",
			      owner);
	else if (owner && state)
		rc_buf_printf(&msg,
			      ", started by reconcile as %s for the state "
			      "directory '%s'",
			      owner, state);
	else if (owner)
		rc_buf_printf(&msg,
			      ", started as %s by an earlier reconcile, "
			      "which marked it without its state directory",
			      owner);
	rc_buf_puts(&msg, "; stop it or choose another port");
	rc = rc_error_set(RC_ECONFLICT, RC_ECLASS_OS, "%s", msg.ptr);
	rc_local_listener_release(&l);
	/* environ blocks may hold secret values: do not leave them around */
	if (env.cap)
		explicit_bzero(env.ptr, env.cap);
	rc_buf_release(&env);
	rc_buf_release(&msg);
	return rc;
}

static int stop_procs(rc_local_procs *l, const bool *which)
{
	pid_t *pids = rc_calloc(l->n + 1, sizeof(pid_t));
	unsigned long long *starts = rc_calloc(l->n + 1, sizeof(*starts));
	size_t n = 0;
	int rc;

	for (size_t i = 0; i < l->n; i++) {
		if (which && !which[i])
			continue;
		pids[n] = l->items[i].pid;
		starts[n] = l->items[i].starttime;
		RC_INFO("local: stopping replica %d of service '%s' (pid %ld)",
			l->items[i].replica, l->items[i].service,
			(long)pids[n]);
		n++;
	}
	rc = rc_local_stop_many(pids, starts, n, SIGTERM,
				RC_LOCAL_STOP_GRACE_MS);
	free(pids);
	free(starts);
	return rc;
}

/* The body recorded while an apply runs: desired, plus the variables the
 * old record named (so that observe still reads them from processes not
 * yet restarted). */
static json_t *transition_body(const json_t *desired, const json_t *record)
{
	json_t *b = json_deep_copy(desired), *env = json_object_get(b, "env");
	const char *k;
	json_t *v;

	if (!env) {
		env = json_object();
		json_object_set_new(b, "env", env);
	}
	json_object_foreach(
		json_object_get(json_object_get(record, "body"), "env"), k, v) {
		if (!json_object_get(env, k))
			json_object_set_new(env, k, json_deep_copy(v));
	}
	return b;
}

static int apply_service(rc_driver *d, const rc_action *a, json_t **result)
{
	rc_local_procs scan = {0}, live = {0}, kept = {0};
	json_t *record = read_record(d, a->name), *tbody = NULL, *rb;
	const json_t *desired = a->desired;
	char *path = NULL;
	bool *stop = NULL, *have = NULL;
	int n, port, rc = 0;
	size_t i;

	rc_local_scan(d->state, d->owner_prefix, &scan, NULL);
	collect_live(d, a->name, record, &scan, &live);
	if (a->op == RC_OP_DELETE) {
		rc = stop_procs(&live, NULL);
		if (rc < 0)
			goto done;
		path = rc_local_path(d, "services/%s.json", a->name);
		if (unlink(path) < 0 && errno != ENOENT)
			rc = rc_error_set_os("cannot remove '%s'", path);
		goto done;
	}
	if (!json_is_object(desired) ||
	    !json_is_array(json_object_get(desired, "command"))) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_INTERNAL,
				  "service '%s': a body without a command",
				  a->name);
		goto done;
	}
	n = (int)json_integer_value(json_object_get(desired, "replicas"));
	if (n < 0)
		n = 0;
	tbody = transition_body(desired, record);
	rc = write_record(d, a->name, tbody, &live);
	if (rc < 0)
		goto done;

	/* keep the replicas that run what desired says, once per index */
	stop = rc_calloc(live.n + 1, sizeof(bool));
	have = rc_calloc((size_t)n + 1, sizeof(bool));
	for (i = 0; i < live.n; i++) {
		const rc_local_proc *p = &live.items[i];
		bool keep = false;

		if (p->replica < n && !have[p->replica] &&
		    a->op != RC_OP_REPLACE) {
			rb = replica_body(p, desired, tbody);
			keep = replica_matches(desired, rb);
			json_decref(rb);
		}
		if (keep)
			have[p->replica] = true;
		stop[i] = !keep;
	}
	rc = stop_procs(&live, stop);
	for (i = 0; i < live.n; i++)
		if (!stop[i] || rc_local_proc_alive(live.items[i].pid,
						    live.items[i].starttime))
			rc_local_procs_add(&kept, &live.items[i]);
	/* a port someone else holds: say who, rather than start a replica
	 * that cannot listen and wait for its health checks to give up */
	port = (int)json_integer_value(json_object_get(desired, "port"));
	for (int r = 0; port && r < n && rc == 0; r++)
		if (!have[r])
			rc = rc_local_port_check(d, "service", a->name,
						 port + r);
	if (rc < 0) {
		write_record(d, a->name, tbody, &kept);
		goto done;
	}
	for (int r = 0; r < n; r++) {
		rc_local_proc p;

		if (have[r])
			continue;
		rc = start_replica(d, a->name, desired, r, &p);
		if (rc < 0)
			break;
		rc_local_procs_add(&kept, &p);
		write_record(d, a->name, tbody, &kept);
	}
	if (rc < 0) {
		write_record(d, a->name, tbody, &kept);
		goto done;
	}
	rc = write_record(d, a->name, desired, &kept);
done:
	if (rc == 0 && result)
		*result = a->op == RC_OP_DELETE
				  ? NULL
				  : observe_service(d, a->name, desired, NULL);
	free(stop);
	free(have);
	free(path);
	json_decref(tbody);
	json_decref(record);
	rc_local_procs_release(&scan);
	rc_local_procs_release(&live);
	rc_local_procs_release(&kept);
	return rc;
}

static int local_apply(rc_driver *d, const rc_action *a, json_t **result)
{
	if (result)
		*result = NULL;
	if (!strcmp(a->kind, "service"))
		return apply_service(d, a, result);
	if (!strcmp(a->kind, "addon"))
		return rc_local_pg_apply(d, a, result);
	return rc_error_set(RC_EUNSUPPORTED, RC_ECLASS_INTERNAL,
			    "the local driver has no kind '%s'", a->kind);
}

/* ------------------------------------------------------------------- wait */

typedef struct {
	pid_t pid;
	unsigned long long starttime;
	int port;
	bool done;
	rc_buf err;
	int checks;
} replica_wait;

static int health_check(const rc_driver *d, const char *name,
			const json_t *body, int replica, replica_wait *w,
			const json_t *h, long timeout_ms)
{
	const json_t *cmd = json_object_get(h, "command");

	rc_buf_clear(&w->err);
	w->checks++;
	if (json_object_get(h, "http"))
		return rc_local_check_http(
			w->port, json_string_value(json_object_get(h, "http")),
			timeout_ms, &w->err);
	if (json_object_get(h, "tcp"))
		return rc_local_check_tcp(w->port, timeout_ms, &w->err);
	if (json_is_array(cmd)) {
		rc_local_env env = {0};
		rc_local_spawn_opts o = {0};
		rc_run_result res;
		const char **argv = body_argv(cmd);
		int rc;

		/* as the replica sees it, without the mark: a check is not a
		 * replica */
		rc = replica_env(d, name, body, replica, false, &env);
		if (rc == 0) {
			o.argv = argv;
			o.env = &env;
			o.dir = json_string_value(
				json_object_get(body, "workdir"));
			rc = rc_local_run_capture(&o, timeout_ms, &res);
			if (rc == 0 && res.timed_out)
				rc_buf_printf(&w->err,
					      "%s did not finish "
					      "within %ldms",
					      argv[0], timeout_ms);
			else if (rc == 0 && res.exit_code != 0)
				rc_buf_printf(&w->err,
					      "%s exited with status %d",
					      argv[0], res.exit_code);
			else if (rc < 0)
				rc_buf_puts(&w->err, rc_error_last()->message);
			if (rc == 0 && res.exit_code != 0)
				rc = -1;
			rc_run_result_release(&res);
		} else {
			rc_buf_puts(&w->err, rc_error_last()->message);
		}
		rc_local_env_release(&env);
		free(argv);
		return rc < 0 ? -1 : 0;
	}
	return 0;
}

static void exit_reason(rc_buf *b, pid_t pid)
{
	int st;

	if (!rc_local_reap(pid, &st))
		rc_buf_puts(b, "is no longer running");
	else if (WIFEXITED(st))
		rc_buf_printf(b, "exited with status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		rc_buf_printf(b, "was killed by signal %d", WTERMSIG(st));
	else
		rc_buf_puts(b, "is no longer running");
}

static int wait_service(rc_driver *d, const rc_action *a, long timeout)
{
	const json_t *body = a->desired;
	const json_t *h = json_object_get(body, "health");
	json_t *record = read_record(d, a->name);
	int n = (int)json_integer_value(json_object_get(body, "replicas"));
	int port = (int)json_integer_value(json_object_get(body, "port"));
	long interval = 10, check_to = 2, grace = 0, retries = 3;
	long long start = rc_local_now_ms(), deadline, grace_end, fail_at;
	replica_wait *w;
	rc_buf msg = RC_BUF_INIT_MAX(4000);
	int rc = 0, left;
	json_t *o;
	size_t i;

	if (n <= 0) {
		json_decref(record);
		return 0;
	}
	if (h) {
		interval = (long)json_integer_value(
			json_object_get(h, "interval"));
		check_to =
			(long)json_integer_value(json_object_get(h, "timeout"));
		grace = (long)json_integer_value(json_object_get(h, "grace"));
		retries =
			(long)json_integer_value(json_object_get(h, "retries"));
		if (interval <= 0)
			interval = 1;
		if (check_to <= 0)
			check_to = 1;
		if (retries <= 0)
			retries = 1;
	}
	w = rc_calloc((size_t)n, sizeof(*w));
	for (int r = 0; r < n; r++) {
		rc_buf_init(&w[r].err, 2048);
		w[r].port = port + r;
		w[r].pid = -1;
	}
	json_array_foreach(json_object_get(record, "replicas"), i, o) {
		int r = (int)json_integer_value(json_object_get(o, "replica"));

		if (r >= 0 && r < n && w[r].pid < 0) {
			w[r].pid = (pid_t)json_integer_value(
				json_object_get(o, "pid"));
			w[r].starttime = (unsigned long long)json_integer_value(
				json_object_get(o, "starttime"));
		}
	}
	deadline = start + timeout * 1000;
	grace_end = start + grace * 1000;
	/* the platform would call it unhealthy after retries failed checks
	 * interval apart; checks run every second meanwhile so that a healthy
	 * replica is seen quickly */
	fail_at = grace_end + (h ? retries * interval * 1000 : 1000);
	for (left = n;;) {
		long long now = rc_local_now_ms();

		for (int r = 0; r < n && !rc; r++) {
			char *lp;

			if (w[r].done)
				continue;
			if (w[r].pid < 0 ||
			    !rc_local_proc_alive(w[r].pid, w[r].starttime)) {
				lp = log_path(d, a->name, r);
				rc_buf_printf(&msg,
					      "replica %d of service '%s' ", r,
					      a->name);
				if (w[r].pid < 0)
					rc_buf_puts(&msg, "was not started");
				else
					exit_reason(&msg, w[r].pid);
				rc_buf_printf(&msg, "; the end of %s:", lp);
				rc_local_tail(&msg, lp);
				free(lp);
				rc = rc_error_set(RC_ERROR, RC_ECLASS_PLATFORM,
						  "%s", msg.ptr);
				break;
			}
			if (!h) {
				/* no check: it must stay up for a second */
				if (now >= fail_at) {
					w[r].done = true;
					left--;
				}
				continue;
			}
			if (health_check(d, a->name, body, r, &w[r], h,
					 check_to * 1000) == 0) {
				RC_DEBUG("local: replica %d of service '%s' "
					 "is healthy",
					 r, a->name);
				w[r].done = true;
				left--;
				continue;
			}
			now = rc_local_now_ms();
			if (now >= fail_at || now >= deadline) {
				lp = log_path(d, a->name, r);
				rc_buf_printf(
					&msg,
					"replica %d of service '%s' is not "
					"healthy after %lds (%d checks): %s; "
					"the end of %s:",
					r, a->name,
					(long)((now - start) / 1000),
					w[r].checks, w[r].err.ptr, lp);
				rc_local_tail(&msg, lp);
				free(lp);
				rc = rc_error_set(RC_ETIMEOUT,
						  RC_ECLASS_PLATFORM, "%s",
						  msg.ptr);
				break;
			}
		}
		if (rc || !left)
			break;
		if (rc_local_now_ms() >= deadline) {
			rc = rc_error_set(RC_ETIMEOUT, RC_ECLASS_PLATFORM,
					  "service '%s' is not healthy within "
					  "%lds",
					  a->name, timeout);
			break;
		}
		/* http and tcp checks are cheap: look often */
		rc_local_sleep_ms(!h				  ? 100
				  : json_object_get(h, "command") ? 1000
								  : 250);
	}
	for (int r = 0; r < n; r++)
		rc_buf_release(&w[r].err);
	free(w);
	rc_buf_release(&msg);
	json_decref(record);
	return rc;
}

/* Every live process that carries the mark of service name: its replicas
 * and what they started. */
static void service_procs(const rc_driver *d, const char *name,
			  rc_local_procs *out)
{
	rc_local_procs all = {0};

	rc_local_scan_all(d->state, d->owner_prefix, &all);
	for (size_t i = 0; i < all.n; i++)
		if (!strcmp(all.items[i].service, name))
			rc_local_procs_add(out, &all.items[i]);
	rc_local_procs_release(&all);
}

/* "1234 (sleep 300)" for each, comma-separated. */
static void put_procs(rc_buf *b, const rc_local_procs *l)
{
	for (size_t i = 0; i < l->n; i++) {
		json_t *argv = rc_local_proc_cmdline(l->items[i].pid);
		const json_t *v;
		size_t j;

		rc_buf_printf(b, "%s%ld (", i ? ", " : "",
			      (long)l->items[i].pid);
		json_array_foreach(argv, j, v)
			rc_buf_printf(b, "%s%.60s", j ? " " : "",
				      json_string_value(v));
		rc_buf_putc(b, ')');
		json_decref(argv);
	}
}

/*
 * A deleted service is gone when no process carries its mark. apply
 * stopped its replicas (their process groups got SIGTERM, then SIGKILL);
 * what they started may outlive them: a child that ignores SIGTERM while
 * its replica exits, one that left the process group. Those get SIGTERM,
 * and SIGKILL after the grace period (at most half the timeout); past the
 * timeout, RC_ETIMEOUT naming what still runs.
 */
static int wait_service_gone(rc_driver *d, const rc_action *a, long timeout)
{
	long long deadline = rc_local_now_ms() + timeout * 1000;
	long grace = RC_LOCAL_STOP_GRACE_MS < timeout * 500
			     ? RC_LOCAL_STOP_GRACE_MS
			     : timeout * 500;
	int round = 0, rc = 0;

	for (;; round++) {
		rc_local_procs left = {0};
		rc_buf msg = RC_BUF_INIT_MAX(4096);

		service_procs(d, a->name, &left);
		if (!left.n) {
			rc_local_procs_release(&left);
			break;
		}
		put_procs(&msg, &left);
		if (round && rc_local_now_ms() >= deadline) {
			rc = rc_error_set(RC_ETIMEOUT, RC_ECLASS_OS,
					  "service '%s' is not gone %lds after "
					  "its deletion: process%s %s still "
					  "run%s after SIGTERM and, %lds later, "
					  "SIGKILL",
					  a->name, timeout,
					  left.n == 1 ? "" : "es", msg.ptr,
					  left.n == 1 ? "s" : "", grace / 1000);
			rc_buf_release(&msg);
			rc_local_procs_release(&left);
			break;
		}
		if (!round) {
			/* SIGTERM, the grace period, SIGKILL */
			RC_WARN("local: service '%s' is deleted but process%s "
				"%s outlived its replicas: SIGTERM, then SIGKILL "
				"after %lds",
				a->name, left.n == 1 ? "" : "es", msg.ptr,
				grace / 1000);
			pid_t *pids = rc_calloc(left.n + 1, sizeof(pid_t));
			unsigned long long *starts =
				rc_calloc(left.n + 1, sizeof(*starts));

			for (size_t i = 0; i < left.n; i++) {
				pids[i] = left.items[i].pid;
				starts[i] = left.items[i].starttime;
			}
			if (rc_local_stop_many(pids, starts, left.n, SIGTERM,
					       grace) < 0)
				rc_error_clear();
			free(pids);
			free(starts);
		} else {
			/* what is left, or started since: SIGKILL */
			for (size_t i = 0; i < left.n; i++)
				kill(left.items[i].pid, SIGKILL);
			rc_local_sleep_ms(100);
		}
		rc_buf_release(&msg);
		rc_local_procs_release(&left);
	}
	return rc;
}

static int local_wait(rc_driver *d, const rc_action *a, long timeout)
{
	if (a->op == RC_OP_RUN)
		return 0;
	if (!strcmp(a->kind, "service"))
		return a->op == RC_OP_DELETE ? wait_service_gone(d, a, timeout)
					     : wait_service(d, a, timeout);
	if (!strcmp(a->kind, "addon"))
		return rc_local_pg_wait(d, a, timeout);
	return 0;
}

/* -------------------------------------------------------------------- run */

static int local_run(rc_driver *d, const json_t *spec, rc_run_result *res)
{
	const json_t *run = json_object_get(spec, "run");
	json_t *shared = NULL, *v;
	rc_local_env env = {0};
	rc_local_spawn_opts o = {0};
	const char **argv = NULL;
	long timeout = 600;
	const char *k;
	int rc;

	memset(res, 0, sizeof(*res));
	res->exit_code = -1;
	if (!json_is_array(run) || !json_array_size(run))
		return rc_error_set(RC_EINVALID, RC_ECLASS_INTERNAL,
				    "a hook without a command");
	if (json_integer_value(json_object_get(spec, "timeout")) > 0)
		timeout = (long)json_integer_value(
			json_object_get(spec, "timeout"));
	/* a local command: this process's environment, then what a service
	 * of the environment sees, then the hook's own variables */
	rc_local_env_inherit(&env);
	rc = shared_env(d, d->env, &shared);
	if (rc < 0)
		goto done;
	json_object_foreach(shared, k, v) {
		if (json_is_object(v)) {
			char *val = NULL;

			rc = rc_secret_resolve(&val, v, d->env, d->config_dir);
			if (rc < 0)
				goto done;
			rc_local_env_set(&env, k, val);
			explicit_bzero(val, strlen(val));
			free(val);
		} else {
			rc_local_env_set(&env, k, json_string_value(v));
		}
	}
	json_object_foreach(json_object_get(spec, "env"), k, v)
		if (json_is_string(v))
			rc_local_env_set(&env, k, json_string_value(v));
	/* a hook is not a replica, whatever it inherited */
	for (size_t i = 0; i < RC_ARRAY_SIZE(mark_vars); i++)
		rc_local_env_unset(&env, mark_vars[i]);
	argv = body_argv(run);
	o.argv = argv;
	o.env = &env;
	o.dir = d->config_dir;
	RC_INFO("local: running hook '%s' (timeout %lds)", argv[0], timeout);
	rc = rc_local_run_tracked(&o, d->state, d->env->name, spec,
				  timeout * 1000, res);
done:
	free(argv);
	json_decref(shared);
	rc_local_env_release(&env);
	return rc;
}

/* What became of a hook an interrupted run started (driver.h): its
 * waiter's status file, or its marked process waited for (proc.h). */
static int local_hook_status(rc_driver *d, const json_t *spec, long wait,
			     rc_hook_state *state, rc_run_result *res)
{
	return rc_local_hook_status(d->env, d->config_dir, d->state, spec,
				    wait, state, res);
}

const rc_driver_ops rc_driver_local = {
	.name = "local",
	.max_concurrency = 4,
	.open = local_open,
	.close = local_close,
	.expand = local_expand,
	.observe = local_observe,
	.normalize = local_normalize,
	.immutable = local_immutable,
	.apply = local_apply,
	.wait = local_wait,
	.run = local_run,
	.hook_status = local_hook_status,
};
