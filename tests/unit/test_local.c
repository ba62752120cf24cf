/* The local driver, with real processes: a small Python HTTP server as the
 * service, PostgreSQL when it is installed. Every test cleans up its
 * processes in its teardown, also when it fails. */
#include "tests/unit/helpers.h"
#include "drivers/driver.h"
#include "drivers/local.h"
#include "reconciler/diff.h"
#include "reconciler/base/log.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

extern char **environ;

/* Reads PORT, answers /health with $HEALTH_STATUS (200), says so in its
 * log. */
static const char server_py[] =
	"import os, http.server\n"
	"port = int(os.environ['PORT'])\n"
	"status = int(os.environ.get('HEALTH_STATUS', '200'))\n"
	"class H(http.server.BaseHTTPRequestHandler):\n"
	"    def do_GET(self):\n"
	"        self.send_response(status if self.path == '/health' else "
	"404)\n"
	"        self.end_headers()\n"
	"        self.wfile.write(b'ok\\n')\n"
	"    def log_message(self, *a):\n"
	"        pass\n"
	"print('listening on', port, flush=True)\n"
	"http.server.HTTPServer(('127.0.0.1', port), H).serve_forever()\n";

typedef struct {
	char *dir;   /* the configuration repository */
	char *state; /* the state directory */
	char *project;
	int port;
	rc_config *cfg;
	const rc_env *env;
	rc_driver *drv;
	const rc_driver_ops *ops;
	bool pg; /* the test started an add-on */
} fixture;

static bool port_free(int port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok, one = 1;

	/* as the servers do: a connection in TIME_WAIT does not count */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static int free_port_pair(void)
{
	unsigned seed = (unsigned)getpid() * 7919u + (unsigned)time(NULL);

	for (int i = 0; i < 500; i++) {
		int p = 31000 + (int)(rand_r(&seed) % 18000);

		if (port_free(p) && port_free(p + 1))
			return p;
	}
	fail_msg("no free port pair");
	return 0;
}

static int setup(void **state)
{
	static int n;
	fixture *f = rc_calloc(1, sizeof(*f));
	rc_buf b = RC_BUF_INIT;

	f->dir = tmpdir_new();
	rc_buf_printf(&b, "%s/.state", f->dir);
	f->state = rc_buf_detach(&b);
	rc_buf_printf(&b, "lt%ldn%d", (long)getpid(), n++);
	f->project = rc_buf_detach(&b);
	f->port = free_port_pair();
	f->ops = rc_driver_find("local");
	write_file(f->dir, "server.py", server_py);
	setenv("RC_LOCAL_TEST_TOKEN", "tok-8f3a9c2e-never-printed", 1);
	*state = f;
	return 0;
}

/* Kills every process that carries this test's mark, leaders of their
 * session or not, until none is left. */
static void kill_marked(const char *project)
{
	rc_buf env = RC_BUF_INIT, prefix = RC_BUF_INIT;

	rc_buf_printf(&prefix, "%s/", project);
	for (int pass = 0; pass < 50; pass++) {
		DIR *dir = opendir("/proc");
		struct dirent *de;
		int found = 0;

		while (dir && (de = readdir(dir)) != NULL) {
			long pid = strtol(de->d_name, NULL, 10);
			const char *owner;

			if (pid <= 0 || pid == (long)getpid())
				continue;
			rc_buf_clear(&env);
			if (rc_local_proc_read((pid_t)pid, "environ", &env) < 0)
				continue;
			owner = rc_local_environ_get(&env, "RECONCILE_OWNER");
			if (!owner || strncmp(owner, prefix.ptr, prefix.len))
				continue;
			kill(-(pid_t)pid, SIGKILL);
			kill((pid_t)pid, SIGKILL);
			waitpid((pid_t)pid, NULL, 0);
			found++;
		}
		if (dir)
			closedir(dir);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (!found)
			break;
		rc_local_sleep_ms(50);
	}
	rc_buf_release(&env);
	rc_buf_release(&prefix);
}

/* Stops what the test started (also when it failed) and removes what it
 * made. */
static int teardown(void **state)
{
	fixture *f = *state;

	if (f->drv && f->pg) {
		rc_action a;

		memset(&a, 0, sizeof(a));
		a.op = RC_OP_DELETE;
		a.kind = (char *)(uintptr_t) "addon";
		a.name = (char *)(uintptr_t) "db";
		f->ops->apply(f->drv, &a, NULL);
	}
	kill_marked(f->project);
	if (f->drv)
		f->ops->close(f->drv);
	rc_config_free(f->cfg);
	tmpdir_remove(f->dir);
	free(f->state);
	free(f->project);
	free(f);
	return 0;
}

/* Loads the configuration written in f->dir and opens the driver on its
 * environment dev. */
static void open_dir(fixture *f)
{
	rc_driver_ctx ctx = {0};
	char *msg;
	int rc;

	if (f->drv)
		f->ops->close(f->drv);
	f->drv = NULL;
	rc_config_free(f->cfg);
	f->cfg = NULL;
	msg = load_dir(f->dir, true, &f->cfg, &rc);
	if (rc != 0)
		fail_msg("configuration: %s", msg);
	free(msg);
	f->env = rc_config_env(f->cfg, "dev");
	assert_non_null(f->env);
	ctx.project = f->project;
	ctx.config_dir = f->dir;
	ctx.state_dir = f->state;
	ctx.run_id = "test-run";
	assert_int_equal(f->ops->open(&f->drv, f->env, &ctx), 0);
}

/* Writes reconcile.yaml with the environment dev's body (indented by 4)
 * and opens the driver on it. */
static void load(fixture *f, const char *body_fmt, ...)
{
	rc_buf y = RC_BUF_INIT;
	va_list ap;

	rc_buf_printf(&y,
		      "version: 1\nproject: %s\nenvironments:\n  dev:\n"
		      "    target: { driver: local }\n",
		      f->project);
	va_start(ap, body_fmt);
	rc_buf_vprintf(&y, body_fmt, ap);
	va_end(ap);
	write_file(f->dir, "reconcile.yaml", y.ptr);
	rc_buf_release(&y);
	open_dir(f);
}

static void web(fixture *f, const char *extra)
{
	load(f,
	     "    services:\n"
	     "      web:\n"
	     "        command: [python3, server.py]\n"
	     "        port: %d\n"
	     "        replicas: 2\n"
	     "        env: { GREETING: hello }\n"
	     "        health: { http: /health, interval: 1s, timeout: 1s, "
	     "retries: 3 }\n"
	     "    config: { LEVEL: info }\n"
	     "    secrets: { API_TOKEN: { env: RC_LOCAL_TEST_TOKEN } }\n%s",
	     f->port, extra ? extra : "");
}

static json_t *expand_body(fixture *f, const char *kind, const char *name)
{
	rc_resource_set set = {0};
	rc_buf key = RC_BUF_INIT;
	rc_resource *r;
	json_t *b;

	assert_int_equal(f->ops->expand(f->drv, f->env, &set), 0);
	rc_buf_printf(&key, "dev/%s/%s", kind, name);
	r = rc_resource_set_find(&set, key.ptr);
	assert_non_null(r);
	b = json_incref(r->body);
	rc_resource_set_release(&set);
	rc_buf_release(&key);
	return b;
}

/* The observed body of a resource (new ref), or NULL when absent. */
static json_t *observe_body(fixture *f, const char *kind, const char *name)
{
	rc_resource_set desired = {0}, actual = {0};
	rc_buf key = RC_BUF_INIT;
	rc_resource *r;
	json_t *b = NULL;

	assert_int_equal(f->ops->expand(f->drv, f->env, &desired), 0);
	assert_int_equal(f->ops->observe(f->drv, &desired, &actual), 0);
	rc_buf_printf(&key, "dev/%s/%s", kind, name);
	r = rc_resource_set_find(&actual, key.ptr);
	if (r)
		b = json_incref(r->body);
	rc_resource_set_release(&desired);
	rc_resource_set_release(&actual);
	rc_buf_release(&key);
	return b;
}

static void action(rc_action *a, rc_op op, const char *kind, const char *name,
		   json_t *desired)
{
	rc_buf b = RC_BUF_INIT;

	memset(a, 0, sizeof(*a));
	a->op = op;
	rc_buf_printf(&b, "dev/%s/%s", kind, name);
	a->key = rc_buf_detach(&b);
	rc_buf_printf(&b, "%s:%s", rc_op_name(op), a->key);
	a->id = rc_buf_detach(&b);
	a->env = rc_strdup("dev");
	a->driver = rc_strdup("local");
	a->kind = rc_strdup(kind);
	a->name = rc_strdup(name);
	a->desired = desired ? json_incref(desired) : NULL;
}

/* Applies op on a service or add-on; returns the driver's code, and the
 * result body when want_result. */
static int apply(fixture *f, rc_op op, const char *kind, const char *name,
		 json_t *desired, json_t **result)
{
	rc_action a;
	json_t *res = NULL;
	int rc;

	action(&a, op, kind, name, desired);
	rc = f->ops->apply(f->drv, &a, &res);
	if (result)
		*result = res;
	else
		json_decref(res);
	rc_action_release(&a);
	return rc;
}

static int wait_for(fixture *f, rc_op op, const char *kind, const char *name,
		    json_t *desired, long timeout)
{
	rc_action a;
	int rc;

	action(&a, op, kind, name, desired);
	rc = f->ops->wait(f->drv, &a, timeout);
	rc_action_release(&a);
	return rc;
}

static const char *last_error(void)
{
	const rc_error *e = rc_error_last();

	return e && e->message ? e->message : "(no error)";
}

/* The changes from actual to desired (normalized both), as their count. */
static size_t drift(fixture *f, const json_t *desired, const json_t *actual)
{
	json_t *d = json_deep_copy(desired), *a = json_deep_copy(actual);
	rc_changes ch = {0};
	size_t n;

	f->ops->normalize("service", d);
	f->ops->normalize("service", a);
	rc_diff(&ch, d, NULL, a, NULL, 0);
	n = ch.n;
	for (size_t i = 0; i < ch.n; i++)
		print_message("  drift at %s\n", ch.items[i].path);
	rc_changes_release(&ch);
	json_decref(d);
	json_decref(a);
	return n;
}

/* The pids the record lists per replica (-1 when none). */
static void record_pids(fixture *f, const char *name, pid_t *pids, int n)
{
	rc_buf p = RC_BUF_INIT;
	json_t *rec, *o;
	size_t i;

	for (int r = 0; r < n; r++)
		pids[r] = -1;
	rc_buf_printf(&p, "%s/local/dev/services/%s.json", f->state, name);
	rec = json_load_file(p.ptr, 0, NULL);
	assert_non_null(rec);
	json_array_foreach(json_object_get(rec, "replicas"), i, o) {
		int r = (int)json_integer_value(json_object_get(o, "replica"));

		if (r >= 0 && r < n)
			pids[r] = (pid_t)json_integer_value(
				json_object_get(o, "pid"));
	}
	json_decref(rec);
	rc_buf_release(&p);
}

/* The processes with the fixture's mark in dev, for state, as scan finds
 * them: every marked one, or only the replicas (session leaders). */
static void marked_list(fixture *f, const char *state, bool all,
			rc_local_procs *l)
{
	rc_buf prefix = RC_BUF_INIT;
	char *abs = rc_local_abspath(state);

	assert_non_null(abs);
	rc_buf_printf(&prefix, "%s/dev/", f->project);
	if (all)
		rc_local_scan_all(abs, prefix.ptr, l);
	else
		rc_local_scan(abs, prefix.ptr, l, NULL);
	rc_buf_release(&prefix);
	free(abs);
}

static size_t count_marked(fixture *f, const char *state, bool all)
{
	rc_local_procs l = {0};
	size_t n;

	marked_list(f, state, all, &l);
	n = l.n;
	rc_local_procs_release(&l);
	return n;
}

/* The processes the driver sees as its own with this state directory. */
static size_t owned_processes_in(fixture *f, const char *state)
{
	return count_marked(f, state, false);
}

/* The replicas (session leaders) with the mark. */
static size_t owned_processes(fixture *f)
{
	return count_marked(f, f->state, false);
}

/* Every process with the mark, replicas or not. */
static size_t marked_processes(fixture *f)
{
	return count_marked(f, f->state, true);
}

static char *proc_env_var(pid_t pid, const char *name)
{
	rc_buf e = RC_BUF_INIT;
	const char *v;
	char *res = NULL;

	if (rc_local_proc_read(pid, "environ", &e) == 0 &&
	    (v = rc_local_environ_get(&e, name)) != NULL)
		res = rc_strdup(v);
	rc_buf_release(&e);
	return res;
}

/* Whether a text file contains needle. */
static bool file_contains(const char *path, const char *needle)
{
	FILE *fp = fopen(path, "rb");
	rc_buf b = RC_BUF_INIT;
	char chunk[4096];
	size_t r;
	bool hit;

	if (!fp)
		return false;
	while ((r = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		rc_buf_put(&b, chunk, r);
	fclose(fp);
	hit = strstr(b.ptr, needle) != NULL;
	rc_buf_release(&b);
	return hit;
}

static bool tree_contains(const char *dir, const char *needle)
{
	const char *argv[] = {"grep", "-rqF", "--", needle, dir, NULL};

	/* grep exits 0 when it finds the needle */
	return run_argv(argv, NULL) == 0;
}

/* ------------------------------------------------------------------ tests */

static void expand_maps_the_environment(void **state)
{
	fixture *f = *state;
	json_t *b, *env, *tok;
	rc_resource_set set = {0};
	char real[PATH_MAX], *dump;
	rc_buf wd = RC_BUF_INIT;
	rc_resource *svc, *db;
	json_int_t dbport;

	write_file(f->dir, "sub/keep", "");
	load(f,
	     "    services:\n"
	     "      web:\n"
	     "        command: [python3, server.py]\n"
	     "        args: [--flag]\n"
	     "        port: %d\n"
	     "        replicas: 2\n"
	     "        env: { GREETING: hello, LEVEL: debug, PORT: \"%d\" }\n"
	     "        health: { tcp: true }\n"
	     "      worker:\n"
	     "        command: [python3, -c, 'pass']\n"
	     "        local: { workdir: sub }\n"
	     "    config: { LEVEL: info, MODE: dev }\n"
	     "    secrets: { API_TOKEN: { env: RC_LOCAL_TEST_TOKEN } }\n"
	     "    addons:\n"
	     "      db: { kind: postgresql, plan: \"15\", as: MAIN }\n",
	     f->port, f->port);
	assert_int_equal(f->ops->expand(f->drv, f->env, &set), 0);
	assert_int_equal(set.n, 3);
	svc = rc_resource_set_find(&set, "dev/service/web");
	db = rc_resource_set_find(&set, "dev/addon/db");
	assert_non_null(svc);
	assert_non_null(db);
	assert_string_equal(svc->driver, "local");
	b = svc->body;

	/* command + args, the repository as the working directory */
	dump = json_dumps(json_object_get(b, "command"), JSON_COMPACT);
	assert_string_equal(dump, "[\"python3\",\"server.py\",\"--flag\"]");
	free(dump);
	assert_non_null(realpath(f->dir, real));
	assert_string_equal(json_string_value(json_object_get(b, "workdir")),
			    real);
	assert_int_equal(json_integer_value(json_object_get(b, "port")),
			 f->port);
	assert_int_equal(json_integer_value(json_object_get(b, "replicas")), 2);
	assert_true(json_is_true(
		json_object_get(json_object_get(b, "health"), "tcp")));

	/* config, then the service's own env over it; PORT is the driver's */
	env = json_object_get(b, "env");
	assert_string_equal(json_string_value(json_object_get(env, "LEVEL")),
			    "debug");
	assert_string_equal(json_string_value(json_object_get(env, "MODE")),
			    "dev");
	assert_string_equal(json_string_value(json_object_get(env, "GREETING")),
			    "hello");
	assert_null(json_object_get(env, "PORT"));

	/* the add-on's URL */
	dbport = json_integer_value(json_object_get(db->body, "port"));
	assert_true(dbport >= 20000 && dbport < 30000);
	rc_buf_printf(&wd, "postgresql://postgres@127.0.0.1:%d/postgres",
		      (int)dbport);
	assert_string_equal(json_string_value(json_object_get(env, "MAIN_URL")),
			    wd.ptr);
	assert_true(db->precious);
	assert_string_equal(
		json_string_value(json_object_get(db->body, "plan")), "15");

	/* a secret is a hash and its reference, never the value */
	tok = json_object_get(env, "API_TOKEN");
	assert_true(json_is_object(tok));
	assert_string_equal(json_string_value(json_object_get(tok, "ref")),
			    "env:RC_LOCAL_TEST_TOKEN");
	assert_true(!strncmp(json_string_value(json_object_get(tok, "$secret")),
			     "hmac-sha256:", 12));
	dump = json_dumps(b, JSON_COMPACT);
	assert_null(strstr(dump, "tok-8f3a9c2e"));
	free(dump);

	/* services depend on the add-ons */
	assert_int_equal(svc->ndeps, 1);
	assert_string_equal(svc->deps[0], "dev/addon/db");

	/* local.workdir */
	rc_buf_clear(&wd);
	rc_buf_printf(&wd, "%s/sub", real);
	assert_string_equal(
		json_string_value(json_object_get(
			rc_resource_set_find(&set, "dev/service/worker")->body,
			"workdir")),
		wd.ptr);
	assert_null(json_object_get(
		rc_resource_set_find(&set, "dev/service/worker")->body,
		"port"));
	rc_resource_set_release(&set);
	rc_buf_release(&wd);

	/* plans are stable: the same port every time */
	b = expand_body(f, "addon", "db");
	assert_int_equal(json_integer_value(json_object_get(b, "port")),
			 dbport);
	json_decref(b);

	assert_true(f->ops->immutable("addon", "/plan"));
	assert_true(f->ops->immutable("addon", "/kind"));
	assert_false(f->ops->immutable("addon", "/port"));
	assert_false(f->ops->immutable("service", "/command"));
	assert_false(f->ops->immutable("service", "/env/GREETING"));
}

static void expand_errors_name_the_problem(void **state)
{
	fixture *f = *state;
	rc_resource_set set = {0};

	load(f, "    services:\n      web: { command: [x] }\n"
		"    addons:\n      cache: { kind: redis }\n");
	assert_true(f->ops->expand(f->drv, f->env, &set) < 0);
	assert_non_null(strstr(last_error(), "'redis'"));
	assert_non_null(strstr(last_error(), "cache"));
	rc_resource_set_release(&set);

	load(f, "    services:\n      web: { command: [x] }\n"
		"    secrets: { KEY: { env: RC_LOCAL_TEST_UNSET_VAR } }\n");
	unsetenv("RC_LOCAL_TEST_UNSET_VAR");
	assert_true(f->ops->expand(f->drv, f->env, &set) < 0);
	assert_non_null(strstr(last_error(), "RC_LOCAL_TEST_UNSET_VAR"));
	rc_resource_set_release(&set);

	load(f, "    services:\n      web: { command: [x], port: 5000, "
		"env: { PORT: \"6000\" } }\n");
	assert_true(f->ops->expand(f->drv, f->env, &set) < 0);
	assert_non_null(strstr(last_error(), "PORT"));
	rc_resource_set_release(&set);
}

static void lifecycle_create_heal_update_delete(void **state)
{
	fixture *f = *state;
	json_t *want, *got, *res = NULL;
	pid_t pids[2], again[2], healed[2], updated[2];
	rc_buf err = RC_BUF_INIT, p = RC_BUF_INIT;
	char *v;

	web(f, NULL);
	want = expand_body(f, "service", "web");
	assert_null(observe_body(f, "service", "web"));

	/* create: two replicas on PORT and PORT+1 */
	if (apply(f, RC_OP_CREATE, "service", "web", want, &res) != 0)
		fail_msg("apply: %s", last_error());
	assert_non_null(res);
	assert_int_equal(json_integer_value(json_object_get(res, "replicas")),
			 2);
	json_decref(res);
	if (wait_for(f, RC_OP_CREATE, "service", "web", want, 60) != 0)
		fail_msg("wait: %s", last_error());
	assert_int_equal(rc_local_check_http(f->port, "/health", 2000, &err),
			 0);
	assert_int_equal(
		rc_local_check_http(f->port + 1, "/health", 2000, &err), 0);
	record_pids(f, "web", pids, 2);
	assert_true(pids[0] > 0 && pids[1] > 0 && pids[0] != pids[1]);
	assert_int_equal(owned_processes(f), 2);

	/* what runs is what was asked */
	got = observe_body(f, "service", "web");
	assert_non_null(got);
	assert_int_equal(drift(f, want, got), 0);
	json_decref(got);

	/* applying it again changes nothing */
	assert_int_equal(apply(f, RC_OP_UPDATE, "service", "web", want, NULL),
			 0);
	record_pids(f, "web", again, 2);
	assert_int_equal(again[0], pids[0]);
	assert_int_equal(again[1], pids[1]);

	/* a killed replica shows, and an update heals it */
	kill(pids[1], SIGKILL);
	waitpid(pids[1], NULL, 0);
	got = observe_body(f, "service", "web");
	assert_int_equal(json_integer_value(json_object_get(got, "replicas")),
			 1);
	assert_int_equal(drift(f, want, got), 1);
	json_decref(got);
	assert_int_equal(apply(f, RC_OP_UPDATE, "service", "web", want, NULL),
			 0);
	if (wait_for(f, RC_OP_UPDATE, "service", "web", want, 60) != 0)
		fail_msg("wait: %s", last_error());
	record_pids(f, "web", healed, 2);
	assert_int_equal(healed[0], pids[0]);
	assert_true(healed[1] > 0 && healed[1] != pids[1]);
	got = observe_body(f, "service", "web");
	assert_int_equal(drift(f, want, got), 0);
	json_decref(got);

	/* a changed variable restarts both, with the new value */
	json_decref(want);
	load(f,
	     "    services:\n"
	     "      web:\n"
	     "        command: [python3, server.py]\n"
	     "        port: %d\n"
	     "        replicas: 2\n"
	     "        env: { GREETING: bye }\n"
	     "        health: { http: /health, interval: 1s, timeout: 1s, "
	     "retries: 3 }\n"
	     "    config: { LEVEL: info }\n"
	     "    secrets: { API_TOKEN: { env: RC_LOCAL_TEST_TOKEN } }\n",
	     f->port);
	want = expand_body(f, "service", "web");
	got = observe_body(f, "service", "web");
	assert_int_equal(drift(f, want, got), 1);
	json_decref(got);
	assert_int_equal(apply(f, RC_OP_UPDATE, "service", "web", want, NULL),
			 0);
	if (wait_for(f, RC_OP_UPDATE, "service", "web", want, 60) != 0)
		fail_msg("wait: %s", last_error());
	record_pids(f, "web", updated, 2);
	for (int r = 0; r < 2; r++) {
		char port[16];

		assert_true(updated[r] != healed[r]);
		v = proc_env_var(updated[r], "GREETING");
		assert_string_equal(v, "bye");
		free(v);
		v = proc_env_var(updated[r], "PORT");
		snprintf(port, sizeof(port), "%d", f->port + r);
		assert_string_equal(v, port);
		free(v);
		v = proc_env_var(updated[r], "RECONCILE_OWNER");
		rc_buf_clear(&p);
		rc_buf_printf(&p, "%s/dev/web/%d", f->project, r);
		assert_string_equal(v, p.ptr);
		free(v);
		/* the secret reaches the process */
		v = proc_env_var(updated[r], "API_TOKEN");
		assert_string_equal(v, "tok-8f3a9c2e-never-printed");
		free(v);
		/* only the few base variables come from this process */
		assert_null(proc_env_var(updated[r], "RC_LOCAL_TEST_TOKEN"));
	}
	got = observe_body(f, "service", "web");
	assert_int_equal(drift(f, want, got), 0);
	json_decref(got);

	/* ...but never the state files or the logs */
	assert_false(tree_contains(f->state, "tok-8f3a9c2e"));
	rc_buf_clear(&p);
	rc_buf_printf(&p, "%s/local/dev/logs/web.0.log", f->state);
	assert_true(file_contains(p.ptr, "listening on"));

	/* delete stops everything */
	assert_int_equal(apply(f, RC_OP_DELETE, "service", "web", NULL, NULL),
			 0);
	assert_int_equal(owned_processes(f), 0);
	assert_null(observe_body(f, "service", "web"));
	assert_int_equal(rc_local_check_tcp(f->port, 500, &err), -1);
	/* and again: nothing to do */
	assert_int_equal(apply(f, RC_OP_DELETE, "service", "web", NULL, NULL),
			 0);

	json_decref(want);
	rc_buf_release(&err);
	rc_buf_release(&p);
}

/* Whether a process with the fixture's mark runs argv[0] argv[1] (after
 * its exec: whatever it set up before is in place). */
static bool marked_runs(fixture *f, const char *prog, const char *arg)
{
	rc_local_procs l = {0};
	bool found = false;

	marked_list(f, f->state, true, &l);
	for (size_t i = 0; i < l.n && !found; i++) {
		json_t *argv = rc_local_proc_cmdline(l.items[i].pid);

		found = json_array_size(argv) == 2 &&
			!strcmp(json_string_value(json_array_get(argv, 0)), prog) &&
			!strcmp(json_string_value(json_array_get(argv, 1)), arg);
		json_decref(argv);
	}
	rc_local_procs_release(&l);
	return found;
}

/* A replica's child that ignores SIGTERM outlives the replica's stop; the
 * delete's wait gets it: SIGTERM, then SIGKILL after the grace period
 * (half the timeout here). */
static void delete_waits_until_every_process_is_gone(void **state)
{
	fixture *f = *state;
	json_t *want;
	long long t0;
	long took;

	load(f, "    services:\n"
		"      stubborn:\n"
		"        command: [sh, -c, \"(trap '' TERM; exec sleep 300) & "
		"exec sleep 301\"]\n");
	want = expand_body(f, "service", "stubborn");
	if (apply(f, RC_OP_CREATE, "service", "stubborn", want, NULL) != 0)
		fail_msg("apply: %s", last_error());
	/* the child ignores SIGTERM once it runs sleep 300 (the trap comes
	 * before the exec), and the replica once it runs sleep 301 */
	for (int i = 0; i < 250 && !(marked_runs(f, "sleep", "300") &&
				     marked_runs(f, "sleep", "301"));
	     i++)
		rc_local_sleep_ms(20);
	assert_int_equal(marked_processes(f), 2);
	assert_int_equal(apply(f, RC_OP_DELETE, "service", "stubborn", NULL,
			       NULL),
			 0);
	/* the replica is stopped; its child is not */
	assert_int_equal(owned_processes(f), 0);
	assert_int_equal(marked_processes(f), 1);
	t0 = rc_local_now_ms();
	if (wait_for(f, RC_OP_DELETE, "service", "stubborn", NULL, 4) != 0)
		fail_msg("wait: %s", last_error());
	took = (long)(rc_local_now_ms() - t0);
	assert_int_equal(marked_processes(f), 0);
	/* SIGKILL came after the grace period, not at once */
	assert_true(took >= 1900);
	assert_true(took < 4000);
	/* nothing left: the wait returns at once */
	assert_int_equal(wait_for(f, RC_OP_DELETE, "service", "stubborn",
				  NULL, 4),
			 0);
	json_decref(want);
}

static void scaling_starts_and_stops_only_the_difference(void **state)
{
	fixture *f = *state;
	json_t *want;
	pid_t before[2], after[3];

	web(f, NULL);
	want = expand_body(f, "service", "web");
	assert_int_equal(apply(f, RC_OP_CREATE, "service", "web", want, NULL),
			 0);
	record_pids(f, "web", before, 2);
	json_object_set_new(want, "replicas", json_integer(3));
	assert_int_equal(apply(f, RC_OP_UPDATE, "service", "web", want, NULL),
			 0);
	record_pids(f, "web", after, 3);
	assert_int_equal(after[0], before[0]);
	assert_int_equal(after[1], before[1]);
	assert_true(after[2] > 0);
	assert_int_equal(owned_processes(f), 3);
	json_object_set_new(want, "replicas", json_integer(1));
	assert_int_equal(apply(f, RC_OP_UPDATE, "service", "web", want, NULL),
			 0);
	record_pids(f, "web", after, 3);
	assert_int_equal(after[0], before[0]);
	assert_int_equal(after[1], -1);
	assert_int_equal(owned_processes(f), 1);
	/* replicas: 0 keeps it declared and stopped, with no drift */
	json_object_set_new(want, "replicas", json_integer(0));
	assert_int_equal(apply(f, RC_OP_UPDATE, "service", "web", want, NULL),
			 0);
	assert_int_equal(owned_processes(f), 0);
	{
		json_t *got = observe_body(f, "service", "web");

		assert_non_null(got);
		assert_int_equal(drift(f, want, got), 0);
		json_decref(got);
	}
	json_decref(want);
}

static void exec_failure_is_an_apply_error(void **state)
{
	fixture *f = *state;
	json_t *want;

	load(f, "    services:\n"
		"      web: { command: [rc-no-such-program-4711, --x] }\n");
	want = expand_body(f, "service", "web");
	assert_true(apply(f, RC_OP_CREATE, "service", "web", want, NULL) < 0);
	assert_non_null(strstr(last_error(), "rc-no-such-program-4711"));
	assert_non_null(strstr(last_error(), "not found"));
	json_decref(want);

	/* found but not executable: the child reports the exec failure */
	write_file(f->dir, "bin/tool", "#!/bin/sh\nexit 0\n");
	load(f, "    services:\n      web: { command: [./bin/tool] }\n");
	want = expand_body(f, "service", "web");
	assert_true(apply(f, RC_OP_CREATE, "service", "web", want, NULL) < 0);
	assert_non_null(strstr(last_error(), "./bin/tool"));
	assert_non_null(strstr(last_error(), "Permission denied"));
	assert_int_equal(owned_processes(f), 0);
	json_decref(want);
}

static void health_failures_say_why(void **state)
{
	fixture *f = *state;
	json_t *want;
	long long t0;

	load(f,
	     "    services:\n"
	     "      web:\n"
	     "        command: [python3, server.py]\n"
	     "        port: %d\n"
	     "        env: { HEALTH_STATUS: \"503\" }\n"
	     "        health: { http: /health, interval: 1s, timeout: 1s, "
	     "retries: 2 }\n",
	     f->port);
	want = expand_body(f, "service", "web");
	assert_int_equal(apply(f, RC_OP_CREATE, "service", "web", want, NULL),
			 0);
	t0 = rc_local_now_ms();
	assert_int_equal(wait_for(f, RC_OP_CREATE, "service", "web", want, 30),
			 RC_ETIMEOUT);
	assert_true(rc_local_now_ms() - t0 < 10000);
	assert_non_null(strstr(last_error(), "replica 0 of service 'web'"));
	assert_non_null(strstr(last_error(), "answered 503"));
	assert_non_null(strstr(last_error(), "listening on"));
	json_decref(want);

	/* a process that exits: fail fast, with its status and its output */
	load(f,
	     "    services:\n"
	     "      web:\n"
	     "        command: [python3, -c, \"import sys; print('boom', "
	     "flush=True); sys.exit(3)\"]\n"
	     "        port: %d\n"
	     "        health: { tcp: true, interval: 10s, retries: 3 }\n",
	     f->port);
	want = expand_body(f, "service", "web");
	assert_int_equal(apply(f, RC_OP_UPDATE, "service", "web", want, NULL),
			 0);
	t0 = rc_local_now_ms();
	assert_true(wait_for(f, RC_OP_UPDATE, "service", "web", want, 60) < 0);
	assert_true(rc_local_now_ms() - t0 < 10000);
	assert_non_null(strstr(last_error(), "exited with status 3"));
	assert_non_null(strstr(last_error(), "boom"));
	json_decref(want);
}

static void hooks_run_locally_with_a_timeout(void **state)
{
	fixture *f = *state;
	rc_run_result res;
	json_t *spec;
	long long t0;
	int rc;

	web(f, NULL);
	spec = json_pack(
		"{s:[s,s,s], s:s, s:{s:s}, s:i}", "run", "python3", "-c",
		"import os, sys\n"
		"print('hello from the hook')\n"
		"print(os.environ['LEVEL'], os.environ['EXTRA'])\n"
		"print(os.environ['API_TOKEN'])\n"
		"print(os.getcwd())\n"
		"sys.exit(4)\n",
		"where", "local", "env", "EXTRA", "given", "timeout", 30);
	assert_int_equal(f->ops->run(f->drv, spec, &res), 0);
	assert_int_equal(res.exit_code, 4);
	assert_false(res.timed_out);
	assert_non_null(strstr(res.output_tail, "hello from the hook"));
	assert_non_null(strstr(res.output_tail, "info given"));
	/* the secret is given, and redacted from the captured output */
	assert_null(strstr(res.output_tail, "tok-8f3a9c2e"));
	assert_non_null(strstr(res.output_tail, "(sensitive)"));
	rc_run_result_release(&res);
	json_decref(spec);

	/* a long output keeps its end */
	spec = json_pack("{s:[s,s,s], s:i}", "run", "python3", "-c",
			 "for i in range(5000): print('line', i)", "timeout",
			 30);
	assert_int_equal(f->ops->run(f->drv, spec, &res), 0);
	assert_int_equal(res.exit_code, 0);
	assert_true(strlen(res.output_tail) <= 4096);
	assert_non_null(strstr(res.output_tail, "line 4999"));
	assert_null(strstr(res.output_tail, "line 10\n"));
	rc_run_result_release(&res);
	json_decref(spec);

	/* a timeout stops it (and what it started) */
	spec = json_pack("{s:[s,s,s], s:i}", "run", "sh", "-c",
			 "echo started; sleep 30 & sleep 30", "timeout", 1);
	t0 = rc_local_now_ms();
	rc = f->ops->run(f->drv, spec, &res);
	assert_int_equal(rc, 0);
	assert_true(res.timed_out);
	assert_int_equal(res.exit_code, -1);
	assert_non_null(strstr(res.output_tail, "started"));
	assert_true(rc_local_now_ms() - t0 < 8000);
	rc_run_result_release(&res);
	json_decref(spec);

	/* a command that cannot run */
	spec = json_pack("{s:[s], s:i}", "run", "rc-no-such-hook-4711",
			 "timeout", 5);
	assert_true(f->ops->run(f->drv, spec, &res) < 0);
	assert_non_null(strstr(last_error(), "rc-no-such-hook-4711"));
	rc_run_result_release(&res);
	json_decref(spec);
}

/* Starts server.py by hand, as a run killed right after its fork would
 * have left it: marked, but in no record. Unscoped, its mark has no
 * state directory, as an earlier reconcile's had not. */
static pid_t start_by_hand(fixture *f, int replica, int port_number,
			   bool unscoped)
{
	char port[32], owner[256], pathv[4096], statev[PATH_MAX + 32];
	char *envp[6], *abs = rc_local_abspath(f->state);
	const char *path = getenv("PATH");
	pid_t pid;

	snprintf(port, sizeof(port), "PORT=%d", port_number);
	snprintf(owner, sizeof(owner), "RECONCILE_OWNER=%s/dev/web/%d",
		 f->project, replica);
	snprintf(statev, sizeof(statev), "RECONCILE_STATE=%s", abs);
	free(abs);
	snprintf(pathv, sizeof(pathv), "PATH=%s",
		 path ? path : "/usr/bin:/bin");
	envp[0] = port;
	envp[1] = owner;
	envp[2] = pathv;
	envp[3] = (char *)(uintptr_t) "GREETING=hello";
	envp[4] = unscoped ? NULL : statev;
	envp[5] = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* env finds python3 in PATH and becomes it */
		char *argv[] = {(char *)(uintptr_t) "env",
				(char *)(uintptr_t) "python3",
				(char *)(uintptr_t) "server.py", NULL};
		int null = open("/dev/null", O_RDWR);

		dup2(null, 1);
		dup2(null, 2);
		setsid();
		if (chdir(f->dir) == 0)
			execve("/usr/bin/env", argv, envp);
		_exit(127);
	}
	return pid;
}

/* start_by_hand on the service's port, once it answers there. */
static pid_t start_by_hand_listening(fixture *f, bool unscoped)
{
	rc_buf err = RC_BUF_INIT;
	pid_t pid = start_by_hand(f, 0, f->port, unscoped);

	for (int i = 0; i < 100 && rc_local_check_tcp(f->port, 200, &err); i++)
		rc_local_sleep_ms(50);
	rc_buf_release(&err);
	return pid;
}

/* One replica of server.py on f->port. */
static void web_one(fixture *f)
{
	load(f,
	     "    services:\n"
	     "      web:\n"
	     "        command: [python3, server.py]\n"
	     "        port: %d\n"
	     "        env: { GREETING: hello }\n"
	     "        health: { http: /health, interval: 1s, retries: 5 }\n",
	     f->port);
}

static void adoption_never_starts_a_replica_twice(void **state)
{
	fixture *f = *state;
	json_t *want, *got;
	pid_t pid, recorded[1];

	web_one(f);
	want = expand_body(f, "service", "web");
	pid = start_by_hand_listening(f, false);

	/* observe adopts it: the service exists, with its replica */
	got = observe_body(f, "service", "web");
	assert_non_null(got);
	assert_int_equal(json_integer_value(json_object_get(got, "replicas")),
			 1);
	assert_int_equal(drift(f, want, got), 0);
	json_decref(got);

	/* the interrupted create, retried, starts no second process */
	assert_int_equal(apply(f, RC_OP_CREATE, "service", "web", want, NULL),
			 0);
	assert_int_equal(owned_processes(f), 1);
	record_pids(f, "web", recorded, 1);
	assert_int_equal(recorded[0], pid);
	if (wait_for(f, RC_OP_CREATE, "service", "web", want, 30) != 0)
		fail_msg("wait: %s", last_error());

	/* a second marked process for the same replica is a duplicate:
	 * observe counts it, apply stops it (it listens elsewhere, so that
	 * it stays up) */
	start_by_hand(f, 0, free_port_pair(), false);
	rc_local_sleep_ms(200);
	got = observe_body(f, "service", "web");
	assert_int_equal(json_integer_value(json_object_get(got, "replicas")),
			 2);
	json_decref(got);
	assert_int_equal(apply(f, RC_OP_UPDATE, "service", "web", want, NULL),
			 0);
	assert_int_equal(owned_processes(f), 1);
	record_pids(f, "web", recorded, 1);
	assert_int_equal(recorded[0], pid);

	/* killed: the service is there (its record), with no replica */
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	got = observe_body(f, "service", "web");
	assert_int_equal(json_integer_value(json_object_get(got, "replicas")),
			 0);
	json_decref(got);
	json_decref(want);
}

/* A socket listening on 127.0.0.1:port (family AF_INET) or [::1]:port
 * (AF_INET6), or -1 when the family cannot. */
static int listen_on(int family, int port)
{
	struct sockaddr_in sa;
	struct sockaddr_in6 sa6;
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, rc;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET) {
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_port = htons((uint16_t)port);
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	} else {
		memset(&sa6, 0, sizeof(sa6));
		sa6.sin6_family = AF_INET6;
		sa6.sin6_port = htons((uint16_t)port);
		sa6.sin6_addr = in6addr_loopback;
		rc = bind(fd, (struct sockaddr *)&sa6, sizeof(sa6));
	}
	if (rc < 0 || listen(fd, 4) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void listeners_are_found_in_proc(void **state)
{
	fixture *f = *state;
	rc_local_listener l;
	rc_buf comm = RC_BUF_INIT;
	int fd, fd6, p6 = f->port + 1;
	pid_t child;

	RC_UNUSED(f);
	assert_int_equal(rc_local_listener_find(f->port, &l), 0);

	/* ours, on IPv4: this process, its name and command line */
	fd = listen_on(AF_INET, f->port);
	assert_true(fd >= 0);
	assert_int_equal(rc_local_listener_find(f->port, &l), 1);
	assert_int_equal(l.port, f->port);
	assert_int_equal(l.pid, getpid());
	assert_int_equal(l.uid, geteuid());
	assert_int_equal(rc_local_proc_read(getpid(), "comm", &comm), 0);
	comm.ptr[strcspn(comm.ptr, "\n")] = '\0';
	assert_string_equal(l.comm, comm.ptr);
	assert_non_null(strstr(l.cmdline, "rc_unit local"));
	rc_local_listener_release(&l);
	/* a connection to it is no listener on its own port */
	{
		rc_buf err = RC_BUF_INIT;

		assert_int_equal(rc_local_check_tcp(f->port, 1000, &err), 0);
		rc_buf_release(&err);
	}
	close(fd);
	assert_int_equal(rc_local_listener_find(f->port, &l), 0);

	/* on IPv6, held by a child only: the child is named */
	fd6 = listen_on(AF_INET6, p6);
	if (fd6 < 0) {
		print_message("no IPv6 loopback: its case is skipped\n");
		rc_buf_release(&comm);
		return;
	}
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		pause();
		_exit(0);
	}
	close(fd6);
	assert_int_equal(rc_local_listener_find(p6, &l), 1);
	assert_int_equal(l.pid, child);
	rc_local_listener_release(&l);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	assert_int_equal(rc_local_listener_find(p6, &l), 0);
	rc_buf_release(&comm);
}

/* A port something else listens on fails the start at once, naming the
 * port and the program; nothing is started. */
static void a_port_in_use_is_named(void **state)
{
	fixture *f = *state;
	json_t *want;
	rc_buf msg = RC_BUF_INIT;
	long long t0;
	int fd;

	web(f, NULL);
	want = expand_body(f, "service", "web");
	fd = listen_on(AF_INET, f->port + 1);
	assert_true(fd >= 0);
	t0 = rc_local_now_ms();
	assert_int_equal(apply(f, RC_OP_CREATE, "service", "web", want, NULL),
			 RC_ECONFLICT);
	assert_true(rc_local_now_ms() - t0 < 2000);
	rc_buf_printf(&msg,
		      "service 'web': port %d is in use by rc_unit (pid %ld: ",
		      f->port + 1, (long)getpid());
	if (!strstr(last_error(), msg.ptr))
		fail_msg("expected '%s' in: %s", msg.ptr, last_error());
	assert_non_null(strstr(last_error(), "; stop it or choose another port"));
	assert_int_equal(owned_processes(f), 0);
	close(fd);

	/* freed, the same action goes through */
	if (apply(f, RC_OP_CREATE, "service", "web", want, NULL) != 0)
		fail_msg("apply: %s", last_error());
	if (wait_for(f, RC_OP_CREATE, "service", "web", want, 60) != 0)
		fail_msg("wait: %s", last_error());
	assert_int_equal(owned_processes(f), 2);
	json_decref(want);
	rc_buf_release(&msg);
}

/* The same configuration with another state directory: none of the first
 * one's processes are seen, adopted or stopped. */
static void another_state_directory_sees_nothing(void **state)
{
	fixture *f = *state;
	rc_buf other = RC_BUF_INIT;
	char *first = f->state;
	json_t *want, *got;

	load(f, "    services:\n      sleeper: { command: [sleep, '60'] }\n");
	want = expand_body(f, "service", "sleeper");
	if (apply(f, RC_OP_CREATE, "service", "sleeper", want, NULL) != 0)
		fail_msg("apply: %s", last_error());
	assert_int_equal(owned_processes(f), 1);

	rc_buf_printf(&other, "%s/other-state", f->dir);
	f->state = other.ptr;
	open_dir(f);
	assert_null(observe_body(f, "service", "sleeper"));
	assert_int_equal(owned_processes(f), 0);
	if (apply(f, RC_OP_CREATE, "service", "sleeper", want, NULL) != 0)
		fail_msg("apply: %s", last_error());
	assert_int_equal(owned_processes(f), 1);
	assert_int_equal(owned_processes_in(f, first), 1);
	assert_int_equal(apply(f, RC_OP_DELETE, "service", "sleeper", NULL,
			       NULL),
			 0);
	assert_int_equal(owned_processes(f), 0);
	assert_int_equal(owned_processes_in(f, first), 1);

	f->state = first;
	open_dir(f);
	got = observe_body(f, "service", "sleeper");
	assert_non_null(got);
	assert_int_equal(drift(f, want, got), 0);
	json_decref(got);
	json_decref(want);
	rc_buf_release(&other);
}

static void paths_are_made_absolute(void **state)
{
	fixture *f = *state;
	char real[PATH_MAX], cwd[PATH_MAX], *p;
	rc_buf want = RC_BUF_INIT, link = RC_BUF_INIT;

	assert_non_null(realpath(f->dir, real));
	/* a missing part is kept, "." and ".." are taken away */
	p = rc_local_abspath(f->dir);
	assert_string_equal(p, real);
	free(p);
	rc_buf_printf(&link, "%s/./a/../b/c/", f->dir);
	p = rc_local_abspath(link.ptr);
	rc_buf_printf(&want, "%s/b/c", real);
	assert_string_equal(p, want.ptr);
	free(p);
	/* the links of the existing part are resolved */
	write_file(f->dir, "target/keep", "");
	rc_buf_clear(&link);
	rc_buf_printf(&link, "%s/link", f->dir);
	rc_buf_clear(&want);
	rc_buf_printf(&want, "%s/target", real);
	assert_int_equal(symlink(want.ptr, link.ptr), 0);
	rc_buf_puts(&link, "/state");
	p = rc_local_abspath(link.ptr);
	rc_buf_puts(&want, "/state");
	assert_string_equal(p, want.ptr);
	free(p);
	/* relative: below the working directory */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(f->dir), 0);
	p = rc_local_abspath("target/new");
	assert_int_equal(chdir(cwd), 0);
	rc_buf_clear(&want);
	rc_buf_printf(&want, "%s/target/new", real);
	assert_string_equal(p, want.ptr);
	free(p);
	rc_buf_release(&want);
	rc_buf_release(&link);
}

/* A replica an earlier reconcile started (its mark without a state
 * directory) is not taken as ours, but observe says so, and its port is
 * named when a new replica wants it. */
static void an_earlier_mark_is_reported(void **state)
{
	fixture *f = *state;
	rc_buf want_msg = RC_BUF_INIT;
	char *logged = NULL;
	size_t loglen = 0;
	FILE *log = open_memstream(&logged, &loglen);
	json_t *want;
	pid_t pid;

	web_one(f);
	want = expand_body(f, "service", "web");
	pid = start_by_hand_listening(f, true);
	rc_log_set_stream(log);
	assert_null(observe_body(f, "service", "web"));
	rc_log_set_stream(NULL);
	fclose(log);
	rc_buf_printf(&want_msg,
		      "process %ld, replica 0 of service 'web', was started "
		      "by an earlier reconcile",
		      (long)pid);
	if (!strstr(logged, want_msg.ptr))
		fail_msg("expected '%s' in the log: %s", want_msg.ptr, logged);
	assert_int_equal(apply(f, RC_OP_CREATE, "service", "web", want, NULL),
			 RC_ECONFLICT);
	assert_non_null(strstr(last_error(), "by an earlier reconcile"));
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	free(logged);
	json_decref(want);
	rc_buf_release(&want_msg);
}

static void postgresql_addon_runs_and_is_removed(void **state)
{
	fixture *f = *state;
	json_t *want, *got;
	struct stat st;
	rc_buf err = RC_BUF_INIT, addon = RC_BUF_INIT;
	int port;

	if (stat("/usr/lib/postgresql", &st) < 0) {
		print_message("skipped: PostgreSQL is not installed "
			      "(/usr/lib/postgresql is missing; Debian "
			      "package 'postgresql')\n");
		skip();
	}
	load(f, "    addons:\n      db: { kind: postgresql, as: DATABASE }\n");
	f->pg = true;
	want = expand_body(f, "addon", "db");
	port = (int)json_integer_value(json_object_get(want, "port"));
	assert_null(observe_body(f, "addon", "db"));
	if (apply(f, RC_OP_CREATE, "addon", "db", want, NULL) != 0)
		fail_msg("apply: %s", last_error());
	if (wait_for(f, RC_OP_CREATE, "addon", "db", want, 120) != 0)
		fail_msg("wait: %s", last_error());
	assert_int_equal(rc_local_check_tcp(port, 2000, &err), 0);

	/* a real connection with the URL the services get */
	{
		rc_buf url = RC_BUF_INIT;
		const char *probe[] = {"python3", "-c",
				       "import sys\n"
				       "try:\n    import psycopg2\n"
				       "except ImportError:\n    sys.exit(0)\n"
				       "c = psycopg2.connect(sys.argv[1])\n"
				       "c.cursor().execute('select 1')\n",
				       NULL, NULL};

		rc_buf_printf(&url,
			      "postgresql://postgres@127.0.0.1:%d/postgres",
			      port);
		probe[3] = url.ptr;
		assert_int_equal(run_argv(probe, NULL), 0);
		rc_buf_release(&url);
	}

	got = observe_body(f, "addon", "db");
	assert_non_null(got);
	assert_int_equal(json_integer_value(json_object_get(got, "port")),
			 port);
	assert_non_null(json_object_get(got, "plan"));
	assert_int_equal(drift(f, want, got), 0);
	json_decref(got);

	/* create again: it runs already */
	assert_int_equal(apply(f, RC_OP_CREATE, "addon", "db", want, NULL), 0);

	assert_int_equal(apply(f, RC_OP_DELETE, "addon", "db", NULL, NULL), 0);
	if (wait_for(f, RC_OP_DELETE, "addon", "db", NULL, 30) != 0)
		fail_msg("wait for the deletion: %s", last_error());
	assert_int_equal(rc_local_check_tcp(port, 500, &err), -1);
	assert_null(observe_body(f, "addon", "db"));
	rc_buf_printf(&addon, "%s/local/dev/addons/db", f->state);
	assert_true(stat(addon.ptr, &st) < 0);
	f->pg = false;
	json_decref(want);
	rc_buf_release(&err);
	rc_buf_release(&addon);
}

/* The repository's root, from this file's path. */
static char *source_root(void)
{
	const char *me = __FILE__, *tail = strstr(me, "/tests/unit/");

	if (!tail || me[0] != '/')
		return NULL;
	return rc_strndup(me, (size_t)(tail - me));
}

static bool python_has(const char *python, const char *modules)
{
	rc_buf code = RC_BUF_INIT;
	const char *argv[] = {python, "-c", NULL, NULL};
	bool ok;

	rc_buf_printf(&code, "import %s", modules);
	argv[2] = code.ptr;
	ok = run_argv(argv, NULL) == 0;
	rc_buf_release(&code);
	return ok;
}

/* examples/local-quickstart as the issue asks: Flask, a static page and
 * PostgreSQL, through the driver alone (the project renamed so that a
 * real quickstart on this machine is never touched). */
static void quickstart_example_runs(void **state)
{
	fixture *f = *state;
	char *root = source_root();
	rc_buf src = RC_BUF_INIT, yaml = RC_BUF_INIT;
	const char *names[] = {"db", "api", "frontend"};
	const char *kinds[] = {"addon", "service", "service"};
	json_t *bodies[3] = {NULL, NULL, NULL};
	struct stat st;
	FILE *fp;
	char line[512];

	if (!root || stat("/usr/lib/postgresql", &st) < 0 ||
	    !python_has("/usr/bin/python3", "flask, psycopg2")) {
		print_message("skipped: needs the repository, PostgreSQL and "
			      "/usr/bin/python3 with flask and psycopg2 "
			      "(Debian: postgresql python3-flask "
			      "python3-psycopg2)\n");
		free(root);
		skip();
	}
	if (!port_free(5000) || !port_free(8080)) {
		print_message("skipped: port 5000 or 8080 is in use\n");
		free(root);
		skip();
	}
	rc_buf_printf(&src, "%s/examples/local-quickstart/.", root);
	{
		const char *cp[] = {"cp", "-R", src.ptr, f->dir, NULL};

		assert_int_equal(run_argv(cp, NULL), 0);
	}
	rc_buf_clear(&src);
	rc_buf_printf(&src, "%s/reconcile.yaml", f->dir);
	fp = fopen(src.ptr, "r");
	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp)) {
		if (!strcmp(line, "project: quickstart\n"))
			rc_buf_printf(&yaml, "project: %s\n", f->project);
		else
			rc_buf_puts(&yaml, line);
	}
	fclose(fp);
	write_file(f->dir, "reconcile.yaml", yaml.ptr);
	/* with this PATH as it is: the example names its interpreter */
	open_dir(f);
	f->pg = true;
	for (int i = 0; i < 3; i++) {
		bodies[i] = expand_body(f, kinds[i], names[i]);
		if (apply(f, RC_OP_CREATE, kinds[i], names[i], bodies[i],
			  NULL) != 0)
			fail_msg("apply %s: %s", names[i], last_error());
		if (wait_for(f, RC_OP_CREATE, kinds[i], names[i], bodies[i],
			     120) != 0)
			fail_msg("wait %s: %s", names[i], last_error());
	}
	{
		/* the API reads the items from PostgreSQL */
		const char *get[] = {
			"/usr/bin/python3", "-c",
			"import urllib.request, sys\n"
			"d = urllib.request.urlopen("
			"'http://127.0.0.1:5000/api/items', "
			"timeout=10).read()\n"
			"sys.exit(0 if b'Write reconcile.yaml' in d else 1)\n",
			NULL};
		rc_buf err = RC_BUF_INIT;

		assert_int_equal(run_argv(get, NULL), 0);
		assert_int_equal(rc_local_check_http(8080, "/", 2000, &err), 0);
		rc_buf_release(&err);
	}
	for (int i = 2; i >= 0; i--)
		assert_int_equal(
			apply(f, RC_OP_DELETE, kinds[i], names[i], NULL, NULL),
			0);
	f->pg = false;
	assert_int_equal(owned_processes(f), 0);
	for (int i = 0; i < 3; i++)
		json_decref(bodies[i]);
	free(root);
	rc_buf_release(&src);
	rc_buf_release(&yaml);
}

int test_group_local(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(expand_maps_the_environment,
						setup, teardown),
		cmocka_unit_test_setup_teardown(expand_errors_name_the_problem,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			lifecycle_create_heal_update_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(
			delete_waits_until_every_process_is_gone, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			scaling_starts_and_stops_only_the_difference, setup,
			teardown),
		cmocka_unit_test_setup_teardown(exec_failure_is_an_apply_error,
						setup, teardown),
		cmocka_unit_test_setup_teardown(health_failures_say_why, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			hooks_run_locally_with_a_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(
			adoption_never_starts_a_replica_twice, setup, teardown),
		cmocka_unit_test_setup_teardown(listeners_are_found_in_proc,
						setup, teardown),
		cmocka_unit_test_setup_teardown(a_port_in_use_is_named, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			another_state_directory_sees_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(paths_are_made_absolute, setup,
						teardown),
		cmocka_unit_test_setup_teardown(an_earlier_mark_is_reported,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			postgresql_addon_runs_and_is_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(quickstart_example_runs, setup,
						teardown),
	};
	return cmocka_run_group_tests_name("local", tests, NULL, NULL);
}
