/*
 * The local driver's PostgreSQL add-on: a private cluster per add-on,
 * listening on 127.0.0.1 at the add-on's port, with trust authentication
 * for the user postgres (it is reachable from this machine only).
 *
 * Files: <state>/local/<env>/addons/<name>/addon.json records the applied
 * body and where the cluster lives; the cluster (data/ and the socket) is
 * that same directory, except as root when the user the cluster runs as
 * cannot reach it (a state directory under /root or a private /tmp
 * directory): then it is /var/lib/reconcile/local/<hash of the add-on
 * directory>. The server's log is <state>/local/<env>/logs/addon-<name>.log.
 *
 * PostgreSQL refuses to run as root: as root, initdb and postgres run as
 * the system user 'postgres' (Debian's package creates it), else 'nobody'.
 */
#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/codec.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "drivers/local.h"

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/un.h>
#include <sys/wait.h>

#define PG_ROOT "/usr/lib/postgresql"
#define PG_FALLBACK_ROOT "/var/lib/reconcile/local"
#define PG_INITDB_MS 300000L
#define PG_START_MS 60000L
#define PG_STOP_MS 30000L

typedef struct {
	bool drop; /* run as uid/gid: we are root */
	uid_t uid;
	gid_t gid;
	char user[64];
} run_as;

typedef struct {
	pid_t pid;
	unsigned long long starttime;
	int port;
	bool ready; /* postmaster.pid says it accepts connections */
} pg_state;

/* -------------------------------------------------------------- binaries */

static bool is_version(const char *s)
{
	if (!isdigit((unsigned char)*s))
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s) && *s != '.')
			return false;
	return true;
}

static bool has_server(const char *version)
{
	rc_buf p = RC_BUF_INIT_MAX(PATH_MAX);
	bool ok;

	rc_buf_printf(&p, "%s/%s/bin/postgres", PG_ROOT, version);
	ok = access(p.ptr, X_OK) == 0;
	rc_buf_clear(&p);
	rc_buf_printf(&p, "%s/%s/bin/initdb", PG_ROOT, version);
	ok = ok && access(p.ptr, X_OK) == 0;
	rc_buf_release(&p);
	return ok;
}

static bool version_newer(const char *a, const char *b)
{
	char *end;
	long am = strtol(a, &end, 10),
	     an = *end == '.' ? strtol(end + 1, NULL, 10) : 0;
	long bm = strtol(b, &end, 10),
	     bn = *end == '.' ? strtol(end + 1, NULL, 10) : 0;

	return am != bm ? am > bm : an > bn;
}

/* The bin directory of PostgreSQL want (a major version), or of the newest
 * one installed when want is NULL (new string). */
static int find_bindir(const char *want, char **out)
{
	DIR *dh = opendir(PG_ROOT);
	struct dirent *de;
	rc_buf found = RC_BUF_INIT_MAX(1024), p = RC_BUF_INIT_MAX(PATH_MAX);
	char *best = NULL;
	int rc = 0;

	*out = NULL;
	while (dh && (de = readdir(dh)) != NULL) {
		if (!is_version(de->d_name) || !has_server(de->d_name))
			continue;
		rc_buf_printf(&found, "%s%s", found.len ? ", " : "",
			      de->d_name);
		if (want ? !strcmp(de->d_name, want)
			 : !best || version_newer(de->d_name, best)) {
			free(best);
			best = rc_strdup(de->d_name);
		}
	}
	if (dh)
		closedir(dh);
	if (!best && !found.len)
		rc = rc_error_set(
			RC_ENOTFOUND, RC_ECLASS_PLATFORM,
			"PostgreSQL is not installed (no server under "
			"%s): install the Debian package 'postgresql'",
			PG_ROOT);
	else if (!best)
		rc = rc_error_set(RC_ENOTFOUND, RC_ECLASS_PLATFORM,
				  "PostgreSQL %s is not installed (found: %s): "
				  "install the Debian package 'postgresql-%s'",
				  want, found.ptr, want);
	else {
		rc_buf_printf(&p, "%s/%s/bin", PG_ROOT, best);
		*out = rc_buf_detach(&p);
	}
	free(best);
	rc_buf_release(&found);
	rc_buf_release(&p);
	return rc;
}

/* ------------------------------------------------------------------ user */

static int pick_user(run_as *u)
{
	static const char *const names[] = {"postgres", "nobody"};
	struct passwd pw, *res;
	char buf[4096];

	memset(u, 0, sizeof(*u));
	if (geteuid() != 0)
		return 0;
	for (size_t i = 0; i < RC_ARRAY_SIZE(names); i++) {
		if (getpwnam_r(names[i], &pw, buf, sizeof(buf), &res) == 0 &&
		    res && pw.pw_uid != 0) {
			u->drop = true;
			u->uid = pw.pw_uid;
			u->gid = pw.pw_gid;
			snprintf(u->user, sizeof(u->user), "%s", names[i]);
			return 0;
		}
	}
	return rc_error_set(RC_ENOTFOUND, RC_ECLASS_PLATFORM,
			    "PostgreSQL refuses to run as root, and there is "
			    "neither a 'postgres' nor a 'nobody' user to run "
			    "it as");
}

/* Whether u can search every directory from / down to path (it keeps its
 * primary group only: see rc_local_spawn). */
static bool reachable(const char *path, const run_as *u)
{
	rc_buf p = RC_BUF_INIT_MAX(PATH_MAX * 2);
	const char *s = path;
	bool ok = true;

	if (!u->drop)
		return true;
	do {
		struct stat st;
		mode_t bit;

		s = strchr(s + 1, '/');
		rc_buf_clear(&p);
		rc_buf_put(&p, path, s ? (size_t)(s - path) : strlen(path));
		if (!p.len)
			rc_buf_putc(&p, '/');
		if (stat(p.ptr, &st) < 0) {
			ok = false;
			break;
		}
		bit = st.st_uid == u->uid   ? S_IXUSR
		      : st.st_gid == u->gid ? S_IXGRP
					    : S_IXOTH;
		if (!(st.st_mode & bit)) {
			RC_DEBUG("local: user '%s' cannot search '%s'", u->user,
				 p.ptr);
			ok = false;
			break;
		}
	} while (s);
	rc_buf_release(&p);
	return ok;
}

/* ----------------------------------------------------------------- state */

static char *addon_dir(const rc_driver *d, const char *name)
{
	return rc_local_path(d, "addons/%s", name);
}

static json_t *read_addon_record(const rc_driver *d, const char *name)
{
	char *path = rc_local_path(d, "addons/%s/addon.json", name);
	json_t *rec = NULL;

	if (rc_local_read_json(&rec, path) < 0)
		rec = NULL;
	free(path);
	return rec;
}

static int write_addon_record(const rc_driver *d, const char *name,
			      const json_t *body, const char *cluster)
{
	char *path = rc_local_path(d, "addons/%s/addon.json", name);
	json_t *rec = json_object();
	int rc;

	json_object_set(rec, "body", (json_t *)(uintptr_t)body);
	json_object_set_new(rec, "cluster", json_string(cluster));
	rc = rc_local_write_json(path, rec);
	json_decref(rec);
	free(path);
	return rc;
}

static char *file_in(const char *dir, const char *rel)
{
	rc_buf b = RC_BUF_INIT_MAX(PATH_MAX * 2);

	rc_buf_printf(&b, "%s/%s", dir, rel);
	return rc_buf_detach(&b);
}

/* The first line of a small file (new string), or NULL. */
static char *read_line(const char *path, int lineno)
{
	FILE *f = fopen(path, "re");
	char line[1024];
	char *res = NULL;

	if (!f)
		return NULL;
	for (int i = 1; fgets(line, sizeof(line), f); i++) {
		if (i == lineno) {
			line[strcspn(line, "\r\n")] = '\0';
			res = rc_strdup(line);
			break;
		}
	}
	fclose(f);
	return res;
}

static bool is_postgres(pid_t pid)
{
	rc_buf comm = RC_BUF_INIT_MAX(256);
	bool ok;

	ok = rc_local_proc_read(pid, "comm", &comm) == 0 &&
	     !strncmp(comm.ptr, "postgres", 8);
	rc_buf_release(&comm);
	return ok;
}

/* Whether the cluster's postmaster runs; st says which and where. */
static bool pg_running(const char *cluster, pg_state *st)
{
	char *pidfile = file_in(cluster, "data/postmaster.pid");
	char *l1 = read_line(pidfile, 1), *l4 = read_line(pidfile, 4),
	     *l8 = read_line(pidfile, 8);
	char state;
	bool ok = false;

	memset(st, 0, sizeof(*st));
	if (l1 && l4) {
		st->pid = (pid_t)strtol(l1, NULL, 10);
		st->port = (int)strtol(l4, NULL, 10);
		st->ready = l8 && !strncmp(l8, "ready", 5);
		ok = st->pid > 0 &&
		     rc_local_proc_stat(st->pid, &state, &st->starttime,
					NULL) == 0 &&
		     rc_local_proc_alive(st->pid, st->starttime) &&
		     is_postgres(st->pid);
	}
	free(pidfile);
	free(l1);
	free(l4);
	free(l8);
	return ok;
}

static char *cluster_of(const rc_driver *d, const char *name, const json_t *rec)
{
	const char *c = json_string_value(json_object_get(rec, "cluster"));

	return c ? rc_strdup(c) : addon_dir(d, name);
}

json_t *rc_local_pg_observe(rc_driver *d, const char *name)
{
	json_t *rec = read_addon_record(d, name), *body = NULL;
	char *cluster, *vfile, *version;
	const char *kind;
	pg_state st;

	if (!rec)
		return NULL;
	cluster = cluster_of(d, name, rec);
	if (pg_running(cluster, &st)) {
		kind = json_string_value(
			json_object_get(json_object_get(rec, "body"), "kind"));
		vfile = file_in(cluster, "data/PG_VERSION");
		version = read_line(vfile, 1);
		body = json_object();
		json_object_set_new(body, "kind",
				    json_string(kind ? kind : "postgresql"));
		if (version)
			json_object_set_new(body, "plan", json_string(version));
		json_object_set_new(body, "port", json_integer(st.port));
		free(vfile);
		free(version);
	}
	free(cluster);
	json_decref(rec);
	return body;
}

/* ----------------------------------------------------------------- apply */

/* Where the cluster of a new add-on lives (see the top of this file). */
static int choose_cluster(const rc_driver *d, const char *name, const run_as *u,
			  char **out)
{
	char *dir = addon_dir(d, name), *parent;
	char hash[RC_SHA256_HEX_LEN + 1];
	rc_buf fb = RC_BUF_INIT_MAX(PATH_MAX);
	int rc;

	*out = NULL;
	rc = rc_local_mkdirs(dir, 0755);
	if (rc < 0)
		goto done;
	parent = rc_strndup(dir, (size_t)(strrchr(dir, '/') - dir));
	if (reachable(parent, u)) {
		free(parent);
		*out = dir;
		dir = NULL;
		goto done;
	}
	free(parent);
	rc_codec_sha256_hex(hash, dir, strlen(dir));
	rc_buf_printf(&fb, "%s/%.16s", PG_FALLBACK_ROOT, hash);
	rc = rc_local_mkdirs(PG_FALLBACK_ROOT, 0755);
	if (rc < 0)
		goto done;
	if (mkdir(fb.ptr, 0700) < 0 && errno != EEXIST) {
		rc = rc_error_set_os("cannot create '%s'", fb.ptr);
		goto done;
	}
	if (!reachable(PG_FALLBACK_ROOT, u)) {
		rc = rc_error_set(RC_ERROR, RC_ECLASS_OS,
				  "add-on '%s': the user '%s' cannot reach "
				  "'%s' nor '%s'",
				  name, u->user, dir, PG_FALLBACK_ROOT);
		goto done;
	}
	RC_INFO("local: user '%s' cannot reach '%s': the cluster of add-on "
		"'%s' goes to '%s'",
		u->user, dir, name, fb.ptr);
	*out = rc_buf_detach(&fb);
done:
	free(dir);
	rc_buf_release(&fb);
	return rc;
}

static int own_dir(const char *path, const run_as *u)
{
	if (!u->drop)
		return 0;
	if (chown(path, u->uid, u->gid) < 0 || chmod(path, 0700) < 0)
		return rc_error_set_os("cannot give '%s' to the user '%s'",
				       path, u->user);
	return 0;
}

static void pg_env(const rc_driver *d, const char *name, rc_local_env *env)
{
	rc_buf owner = RC_BUF_INIT_MAX(4096);

	rc_local_env_base(env);
	rc_local_env_set(env, "LC_ALL", "C");
	rc_local_env_set(env, "LANG", "C");
	/* "addon:<name>" has no replica: never taken for a service */
	rc_buf_printf(&owner, "%saddon:%s", d->owner_prefix, name);
	rc_local_env_set(env, RC_LOCAL_OWNER_VAR, owner.ptr);
	rc_local_env_set(env, RC_LOCAL_STATE_VAR, d->state);
	rc_buf_release(&owner);
}

static int pg_initdb(const rc_driver *d, const char *name, const char *bindir,
		     const char *cluster, const run_as *u, int logfd)
{
	char *initdb = file_in(bindir, "initdb");
	char *data = file_in(cluster, "data");
	const char *argv[] = {initdb,	  "-D",	  data,		"-U",
			      "postgres", "-A",	  "trust",	"--no-sync",
			      "-E",	  "UTF8", "--locale=C", NULL};
	rc_local_env env = {0};
	rc_local_spawn_opts o = {0};
	rc_run_result res = {0};
	rc_buf tail = RC_BUF_INIT_MAX(8192);
	int rc;

	rc = rc_local_rmtree(data);
	if (rc < 0)
		goto done;
	pg_env(d, name, &env);
	rc_local_env_unset(&env, RC_LOCAL_OWNER_VAR);
	rc_local_env_unset(&env, RC_LOCAL_STATE_VAR);
	o.argv = argv;
	o.env = &env;
	o.dir = cluster;
	o.drop = u->drop;
	o.uid = u->uid;
	o.gid = u->gid;
	RC_INFO("local: add-on '%s': initdb %s", name, data);
	rc = rc_local_run_capture(&o, PG_INITDB_MS, &res);
	if (res.output_tail && logfd >= 0 &&
	    write(logfd, res.output_tail, strlen(res.output_tail)) < 0)
		RC_DEBUG("local: cannot write to a log: %s", strerror(errno));
	if (rc == 0 && res.exit_code != 0) {
		const char *t = res.output_tail ? res.output_tail : "";
		size_t l = strlen(t);

		if (l > RC_LOCAL_TAIL_BYTES)
			t += l - RC_LOCAL_TAIL_BYTES;
		if (res.timed_out)
			rc = rc_error_set(RC_ETIMEOUT, RC_ECLASS_PLATFORM,
					  "add-on '%s': initdb did not finish "
					  "within %lds:\n%s",
					  name, PG_INITDB_MS / 1000, t);
		else
			rc = rc_error_set(RC_ERROR, RC_ECLASS_PLATFORM,
					  "add-on '%s': initdb exited with "
					  "status %d:\n%s",
					  name, res.exit_code, t);
	} else if (rc < 0) {
		rc_error_prefix("add-on '%s': initdb", name);
	}
done:
	rc_run_result_release(&res);
	rc_local_env_release(&env);
	rc_buf_release(&tail);
	free(initdb);
	free(data);
	return rc;
}

static int pg_start(const rc_driver *d, const char *name, const char *bindir,
		    const char *cluster, int port, const run_as *u, int logfd)
{
	char *postgres = file_in(bindir, "postgres");
	char *data = file_in(cluster, "data");
	char *logp = rc_local_path(d, "logs/addon-%s.log", name);
	char portstr[16];
	const char *sockdir = cluster;
	const char *argv[] = {postgres, "-D",	     data, "-p", portstr,
			      "-h",	"127.0.0.1", "-k", NULL, NULL};
	rc_local_env env = {0};
	rc_local_spawn_opts o = {0};
	rc_buf msg = RC_BUF_INIT_MAX(4000);
	long long deadline = rc_local_now_ms() + PG_START_MS;
	pg_state st;
	pid_t pid;
	int rc;

	snprintf(portstr, sizeof(portstr), "%d", port);
	/* a Unix socket path has a small limit: TCP only beyond it */
	if (strlen(cluster) + sizeof("/.s.PGSQL.65535") >
	    sizeof(((struct sockaddr_un *)0)->sun_path))
		sockdir = "";
	argv[8] = sockdir;
	pg_env(d, name, &env);
	o.argv = argv;
	o.env = &env;
	o.dir = cluster;
	o.out_fd = logfd;
	o.new_session = true;
	o.drop = u->drop;
	o.uid = u->uid;
	o.gid = u->gid;
	rc = rc_local_spawn(&pid, &o);
	if (rc < 0) {
		rc_error_prefix("add-on '%s'", name);
		goto done;
	}
	RC_INFO("local: add-on '%s': postgres started (pid %ld, port %d)", name,
		(long)pid, port);
	/* it writes postmaster.pid early: from then on it is observable */
	for (;;) {
		if (pg_running(cluster, &st) && st.pid == pid)
			break;
		if (!rc_local_proc_alive(pid, 0)) {
			int status = 0;

			rc_local_reap(pid, &status);
			rc_buf_printf(&msg,
				      "add-on '%s': postgres exited with "
				      "status %d; the end of %s:",
				      name,
				      WIFEXITED(status) ? WEXITSTATUS(status)
							: -1,
				      logp);
			rc_local_tail(&msg, logp);
			rc = rc_error_set(RC_ERROR, RC_ECLASS_PLATFORM, "%s",
					  msg.ptr);
			break;
		}
		if (rc_local_now_ms() >= deadline) {
			rc_buf_printf(&msg,
				      "add-on '%s': postgres did not start "
				      "within %lds; the end of %s:",
				      name, PG_START_MS / 1000, logp);
			rc_local_tail(&msg, logp);
			rc = rc_error_set(RC_ETIMEOUT, RC_ECLASS_PLATFORM, "%s",
					  msg.ptr);
			break;
		}
		rc_local_sleep_ms(50);
	}
done:
	rc_local_env_release(&env);
	rc_buf_release(&msg);
	free(postgres);
	free(data);
	free(logp);
	return rc;
}

/* Fast shutdown (SIGINT: clients are disconnected; SIGTERM would wait for
 * them), then immediate (SIGQUIT), then SIGKILL. */
static int pg_stop(const char *name, const pg_state *st)
{
	static const struct {
		int sig;
		long ms;
	} steps[] = {{SIGINT, PG_STOP_MS}, {SIGQUIT, 5000}, {SIGKILL, 5000}};

	for (size_t i = 0; i < RC_ARRAY_SIZE(steps); i++) {
		long long until = rc_local_now_ms() + steps[i].ms;

		if (!rc_local_proc_alive(st->pid, st->starttime))
			return 0;
		RC_INFO("local: add-on '%s': signal %d to postgres (pid %ld)",
			name, steps[i].sig, (long)st->pid);
		if (steps[i].sig == SIGKILL)
			kill(-st->pid, SIGKILL);
		kill(st->pid, steps[i].sig);
		while (rc_local_now_ms() < until &&
		       rc_local_proc_alive(st->pid, st->starttime))
			rc_local_sleep_ms(50);
	}
	if (rc_local_proc_alive(st->pid, st->starttime))
		return rc_error_set(RC_ETIMEOUT, RC_ECLASS_PLATFORM,
				    "add-on '%s': postgres (pid %ld) does not "
				    "stop",
				    name, (long)st->pid);
	return 0;
}

/* SIGKILLs the postgres processes of process group pgid (a postmaster's
 * children stay in its group); how many there were. Only postgres ones: the
 * number may have been reused. */
static int kill_group_postgres(pid_t pgid)
{
	DIR *dh = opendir("/proc");
	struct dirent *de;
	int n = 0;

	while (dh && (de = readdir(dh)) != NULL) {
		pid_t pid = (pid_t)strtol(de->d_name, NULL, 10);
		char state;
		unsigned long long st;

		if (pid <= 0 || getpgid(pid) != pgid || !is_postgres(pid) ||
		    rc_local_proc_stat(pid, &state, &st, NULL) < 0 ||
		    state == 'Z')
			continue;
		kill(pid, SIGKILL);
		n++;
	}
	if (dh)
		closedir(dh);
	return n;
}

/* After a postmaster died without shutting down (kill -9, a crash), its
 * children may still hold the shared memory for a moment, and its pid may
 * still exist as a zombie: postgres would refuse to start ("another
 * postmaster"). Kills what is left of its process group and removes the
 * stale lock file; called only when pg_running() said no. */
static void pg_clear_stale(const char *name, const char *cluster)
{
	char *pidfile = file_in(cluster, "data/postmaster.pid");
	char *l1 = read_line(pidfile, 1);
	long long until = rc_local_now_ms() + 10000;
	pid_t old = l1 ? (pid_t)strtol(l1, NULL, 10) : 0;
	struct dirent *de;
	DIR *dh;

	if (old > 0) {
		RC_INFO("local: add-on '%s': postgres (pid %ld) is gone; "
			"clearing what it left",
			name, (long)old);
		while (kill_group_postgres(old) && rc_local_now_ms() < until)
			rc_local_sleep_ms(50);
		rc_local_reap(old, NULL);
	}
	if (l1 && unlink(pidfile) < 0 && errno != ENOENT)
		RC_WARN("local: add-on '%s': cannot remove '%s': %s", name,
			pidfile, strerror(errno));
	/* the socket and its lock name the dead postmaster too */
	if ((dh = opendir(cluster)) != NULL) {
		while ((de = readdir(dh)) != NULL) {
			char *p;

			if (strncmp(de->d_name, ".s.PGSQL.", 9))
				continue;
			p = file_in(cluster, de->d_name);
			unlink(p);
			free(p);
		}
		closedir(dh);
	}
	free(l1);
	free(pidfile);
}

static int pg_delete(rc_driver *d, const char *name)
{
	json_t *rec = read_addon_record(d, name);
	char *cluster = cluster_of(d, name, rec), *dir = addon_dir(d, name);
	pg_state st;
	int rc = 0;

	if (pg_running(cluster, &st))
		rc = pg_stop(name, &st);
	else
		pg_clear_stale(name, cluster); /* what a killed one left */
	if (!rc)
		rc = rc_local_rmtree(cluster);
	if (!rc)
		rc = rc_local_rmtree(dir);
	free(cluster);
	free(dir);
	json_decref(rec);
	return rc;
}

static int pg_ensure(rc_driver *d, const char *name, const json_t *desired)
{
	json_t *rec = read_addon_record(d, name);
	const char *plan = json_string_value(json_object_get(desired, "plan"));
	int port = (int)json_integer_value(json_object_get(desired, "port"));
	char *cluster = NULL, *bindir = NULL, *vfile = NULL, *version = NULL;
	rc_buf lf = RC_BUF_INIT_MAX(4096);
	run_as u;
	pg_state st;
	int rc, logfd = -1;

	rc = pick_user(&u);
	if (rc < 0)
		goto done;
	if (rec) {
		cluster = cluster_of(d, name, rec);
	} else {
		rc = choose_cluster(d, name, &u, &cluster);
		if (rc < 0)
			goto done;
		/* recorded first: a run killed during initdb finds it again */
		rc = write_addon_record(d, name, desired, cluster);
		if (rc < 0)
			goto done;
	}
	if (pg_running(cluster, &st)) {
		if (st.port == port) {
			rc = write_addon_record(d, name, desired, cluster);
			goto done;
		}
		rc = pg_stop(name, &st);
		if (rc < 0)
			goto done;
	}
	rc = rc_local_mkdirs(cluster, 0700);
	if (!rc)
		rc = own_dir(cluster, &u);
	if (rc < 0)
		goto done;
	/* existing data runs with its own version: a different plan is a
	 * replace, which the plan shows as such */
	vfile = file_in(cluster, "data/PG_VERSION");
	version = read_line(vfile, 1);
	rc = find_bindir(version ? version : plan, &bindir);
	if (rc < 0) {
		rc_error_prefix("add-on '%s'", name);
		goto done;
	}
	rc_buf_printf(&lf, "addon-%s.log", name);
	rc = rc_local_open_log(d, lf.ptr, &logfd);
	if (rc < 0)
		goto done;
	if (version) {
		pg_clear_stale(name, cluster);
	} else {
		rc = pg_initdb(d, name, bindir, cluster, &u, logfd);
		if (rc < 0)
			goto done;
	}
	rc = rc_local_port_check(d, "add-on", name, port);
	if (rc == 0)
		rc = pg_start(d, name, bindir, cluster, port, &u, logfd);
	if (rc < 0)
		goto done;
	rc = write_addon_record(d, name, desired, cluster);
done:
	if (logfd >= 0)
		close(logfd);
	rc_buf_release(&lf);
	free(cluster);
	free(bindir);
	free(vfile);
	free(version);
	json_decref(rec);
	return rc;
}

int rc_local_pg_apply(rc_driver *d, const rc_action *a, json_t **result)
{
	const char *kind =
		json_string_value(json_object_get(a->desired, "kind"));
	int rc = 0;

	if (a->op != RC_OP_DELETE && kind && strcmp(kind, "postgresql"))
		return rc_error_set(RC_EUNSUPPORTED, RC_ECLASS_PLATFORM,
				    "add-on '%s': the local driver cannot run "
				    "kind '%s'",
				    a->name, kind);
	if (a->op == RC_OP_DELETE || a->op == RC_OP_REPLACE)
		rc = pg_delete(d, a->name);
	if (!rc && a->op != RC_OP_DELETE)
		rc = pg_ensure(d, a->name, a->desired);
	if (!rc && result && a->op != RC_OP_DELETE)
		*result = rc_local_pg_observe(d, a->name);
	return rc;
}

/* A deleted add-on is gone when its directory is (apply removes it once
 * postgres has stopped) and nothing answers on its port any more. */
static int pg_wait_gone(rc_driver *d, const rc_action *a, long timeout)
{
	char *dir = addon_dir(d, a->name);
	int port = (int)json_integer_value(json_object_get(a->actual, "port"));
	long long deadline = rc_local_now_ms() + timeout * 1000;
	rc_buf why = RC_BUF_INIT_MAX(4096), err = RC_BUF_INIT_MAX(1024);
	struct stat sb;
	int rc = 0;

	for (;;) {
		rc_buf_clear(&why);
		rc_buf_clear(&err);
		if (stat(dir, &sb) == 0)
			rc_buf_printf(&why, "its directory '%s' is still there",
				      dir);
		else if (port > 0 && rc_local_check_tcp(port, 500, &err) == 0)
			rc_buf_printf(&why, "127.0.0.1:%d still accepts "
					    "connections",
				      port);
		if (!why.len)
			break;
		if (rc_local_now_ms() >= deadline) {
			rc = rc_error_set(RC_ETIMEOUT, RC_ECLASS_PLATFORM,
					  "add-on '%s' is not gone %lds after "
					  "its deletion: %s",
					  a->name, timeout, why.ptr);
			break;
		}
		rc_local_sleep_ms(100);
	}
	free(dir);
	rc_buf_release(&why);
	rc_buf_release(&err);
	return rc;
}

int rc_local_pg_wait(rc_driver *d, const rc_action *a, long timeout)
{
	json_t *rec = read_addon_record(d, a->name);
	char *cluster = cluster_of(d, a->name, rec);
	char *logp = rc_local_path(d, "logs/addon-%s.log", a->name);
	long long deadline = rc_local_now_ms() + timeout * 1000;
	rc_buf err = RC_BUF_INIT_MAX(1024), msg = RC_BUF_INIT_MAX(4000);
	pg_state st;
	int rc = 0;

	if (a->op == RC_OP_DELETE) {
		rc = pg_wait_gone(d, a, timeout);
		goto done;
	}
	for (;;) {
		rc_buf_clear(&err);
		if (!pg_running(cluster, &st)) {
			rc_buf_printf(&msg,
				      "add-on '%s': PostgreSQL is not running; "
				      "the end of %s:",
				      a->name, logp);
			rc_local_tail(&msg, logp);
			rc = rc_error_set(RC_ERROR, RC_ECLASS_PLATFORM, "%s",
					  msg.ptr);
			break;
		}
		if (!st.ready)
			rc_buf_puts(&err, "it is still starting");
		else if (rc_local_check_tcp(st.port, 1000, &err) == 0)
			break;
		if (rc_local_now_ms() >= deadline) {
			rc_buf_printf(&msg,
				      "add-on '%s': PostgreSQL does not accept "
				      "connections on 127.0.0.1:%d within "
				      "%lds (%s); the end of %s:",
				      a->name, st.port, timeout, err.ptr, logp);
			rc_local_tail(&msg, logp);
			rc = rc_error_set(RC_ETIMEOUT, RC_ECLASS_PLATFORM, "%s",
					  msg.ptr);
			break;
		}
		rc_local_sleep_ms(100);
	}
done:
	rc_buf_release(&err);
	rc_buf_release(&msg);
	free(cluster);
	free(logp);
	json_decref(rec);
	return rc;
}
