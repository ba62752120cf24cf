/*
 * The source against real git: plain directories, work trees, file://
 * URLs and a `git daemon` on a loopback port (started by the group setup,
 * stopped by its teardown).
 */
#include "tests/unit/helpers.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "reconciler/source.h"
#include "schema/loader.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <microhttpd.h>

static struct {
	char *base; /* removed by the teardown */
	char *git;  /* base/git: served by the daemon */
	int port;
	int closed_port; /* nothing listens there */
	pid_t daemon;
} fx;

/* --- helpers ----------------------------------------------------------- */

/* Runs git in dir with a fixed identity; the arguments end with NULL. */
static void git(const char *dir, ...)
{
	const char *argv[32] = {"git",
				"-c", "user.name=t",
				"-c", "user.email=t@example.com",
				"-c", "init.defaultBranch=main",
				"-c", "commit.gpgsign=false",
				"-c", "tag.gpgsign=false"};
	size_t n = 11;
	const char *a;
	va_list ap;

	va_start(ap, dir);
	while ((a = va_arg(ap, const char *)) != NULL && n < 31)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	assert_int_equal(run_argv(argv, dir), 0);
}

/* `git rev-parse rev` in dir (new string). */
static char *rev(const char *dir, const char *r)
{
	int fds[2];
	pid_t pid;
	char out[128];
	ssize_t got;
	size_t len = 0;
	int status;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		if (chdir(dir) < 0)
			_exit(127);
		execlp("git", "git", "rev-parse", "--verify", "-q", r,
		       (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	while (len < sizeof(out) - 1 &&
	       (got = read(fds[0], out + len, sizeof(out) - 1 - len)) > 0)
		len += (size_t)got;
	close(fds[0]);
	assert_true(waitpid(pid, &status, 0) == pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	out[len] = '\0';
	while (len && (out[len - 1] == '\n' || out[len - 1] == '\r'))
		out[--len] = '\0';
	assert_int_equal(len, 40);
	return rc_strdup(out);
}

static char *path_of(const char *dir, const char *rel)
{
	rc_buf b = RC_BUF_INIT;

	rc_buf_printf(&b, "%s/%s", dir, rel);
	return rc_buf_detach(&b);
}

/* The contents of dir/rel (new string, *len bytes), or NULL. */
static char *read_bytes(const char *dir, const char *rel, size_t *len)
{
	char *p = path_of(dir, rel);
	rc_buf b = RC_BUF_INIT;
	char chunk[4096];
	size_t n;
	FILE *f = fopen(p, "rb");

	free(p);
	if (!f)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		rc_buf_put(&b, chunk, n);
	fclose(f);
	*len = b.len;
	return rc_buf_detach(&b);
}

static char *read_text(const char *dir, const char *rel)
{
	size_t len;

	return read_bytes(dir, rel, &len);
}

static void assert_file(const char *dir, const char *rel, const char *want)
{
	char *got = read_text(dir, rel);

	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

/* Names in dir, except "." and "..", sorted, joined by ' ' (new). */
static char *list_dir(const char *dir)
{
	struct dirent **names;
	rc_buf b = RC_BUF_INIT;
	int n, i;

	n = scandir(dir, &names, NULL, alphasort);
	assert_true(n >= 0);
	for (i = 0; i < n; i++) {
		if (strcmp(names[i]->d_name, ".") &&
		    strcmp(names[i]->d_name, "..")) {
			if (b.len)
				rc_buf_putc(&b, ' ');
			rc_buf_puts(&b, names[i]->d_name);
		}
		free(names[i]);
	}
	free(names);
	return rc_buf_detach(&b);
}

static char *git_url(const char *name)
{
	rc_buf b = RC_BUF_INIT;

	rc_buf_printf(&b, "git://127.0.0.1:%d/%s", fx.port, name);
	return rc_buf_detach(&b);
}

static char *file_url(const char *name)
{
	rc_buf b = RC_BUF_INIT;

	rc_buf_printf(&b, "file://%s/%s", fx.git, name);
	return rc_buf_detach(&b);
}


static void chmod_x(const char *dir, const char *rel)
{
	char *p = path_of(dir, rel);

	assert_int_equal(chmod(p, 0755), 0);
	free(p);
}

/*
 * An origin repository git/<name> (a work tree, served by the daemon):
 * main has reconcile.yaml "main 1", sub/deep.yaml and an executable
 * run.sh, tagged v1 (annotated); staging has one more commit; feature/x
 * is main's commit too. Returns its path (new).
 */
static char *make_origin(const char *name)
{
	char *dir = path_of(fx.git, name);

	assert_int_equal(mkdir(dir, 0755), 0);
	write_file(dir, "reconcile.yaml", "main 1\n");
	write_file(dir, "sub/deep.yaml", "deep\n");
	write_file(dir, "run.sh", "#!/bin/sh\n");
	chmod_x(dir, "run.sh");
	git(dir, "init", "-q", NULL);
	git(dir, "add", "-A", NULL);
	git(dir, "commit", "-qm", "main 1", NULL);
	git(dir, "tag", "-a", "v1", "-m", "v1", NULL);
	git(dir, "branch", "feature/x", NULL);
	git(dir, "checkout", "-qb", "staging", NULL);
	write_file(dir, "reconcile.yaml", "staging 1\n");
	git(dir, "commit", "-qam", "staging 1", NULL);
	git(dir, "checkout", "-q", "main", NULL);
	return dir;
}

static rc_source *open_ok(const char *spec, const char *ref,
			  const char *cache, bool offline)
{
	rc_source_opts o = {.cache_dir = cache, .offline = offline};
	rc_source *s = NULL;
	int rc = rc_source_open(&s, spec, ref, &o);

	if (rc < 0)
		fail_msg("rc_source_open('%s', %s): %d %s", spec,
			 ref ? ref : "NULL", rc, rc_error_last()->message);
	return s;
}

/* Opens and expects a failure; returns the error (borrowed). */
static const rc_error *open_fails(const char *spec, const char *ref,
				  const char *cache, bool offline)
{
	rc_source_opts o = {.cache_dir = cache, .offline = offline};
	rc_source *s = NULL;
	int rc;

	rc_error_clear();
	rc = rc_source_open(&s, spec, ref, &o);
	assert_true(rc < 0);
	assert_null(s);
	assert_non_null(rc_error_last());
	assert_int_equal(rc_error_last()->code, rc);
	return rc_error_last();
}

static bool starts_with(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

/* A TCP port on 127.0.0.1 that was free a moment ago. */
static int free_port(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_true(fd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static bool port_answers(int port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	if (fd < 0)
		return false;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

/* --- group setup: the git daemon --------------------------------------- */

static int start_daemon(void **state)
{
	char port_arg[32], base_arg[PATH_MAX + 32];
	struct timespec nap = {0, 10 * 1000 * 1000};
	int i, status;
	pid_t parent;

	RC_UNUSED(state);
	fx.base = tmpdir_new();
	fx.git = path_of(fx.base, "git");
	if (mkdir(fx.git, 0755) < 0)
		return -1;
	fx.closed_port = free_port();
	fx.port = free_port();
	snprintf(port_arg, sizeof(port_arg), "--port=%d", fx.port);
	snprintf(base_arg, sizeof(base_arg), "--base-path=%s", fx.git);
	parent = getpid();
	fx.daemon = fork();
	if (fx.daemon < 0)
		return -1;
	if (fx.daemon == 0) {
		int devnull = open("/dev/null", O_RDWR);

		setpgid(0, 0); /* the teardown stops its children too */
		/* and if the tests die before the teardown, it goes too */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(0);
		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 1);
			dup2(devnull, 2);
		}
		execlp("git", "git", "daemon", "--reuseaddr", base_arg,
		       "--export-all", "--listen=127.0.0.1", port_arg, fx.git,
		       (char *)NULL);
		_exit(127);
	}
	setpgid(fx.daemon, fx.daemon);
	for (i = 0; i < 500; i++) {
		if (port_answers(fx.port))
			return 0;
		if (waitpid(fx.daemon, &status, WNOHANG) == fx.daemon) {
			fx.daemon = 0;
			fprintf(stderr, "git daemon exited at start\n");
			return -1;
		}
		nanosleep(&nap, NULL);
	}
	fprintf(stderr, "git daemon does not answer on port %d\n", fx.port);
	return -1;
}

static int stop_daemon(void **state)
{
	RC_UNUSED(state);
	if (fx.daemon > 0) {
		kill(-fx.daemon, SIGTERM);
		waitpid(fx.daemon, NULL, 0);
		fx.daemon = 0;
	}
	free(fx.git);
	fx.git = NULL;
	if (fx.base)
		tmpdir_remove(fx.base);
	fx.base = NULL;
	rc_secret_clear();
	return 0;
}

/* --- tests ------------------------------------------------------------- */

static void url_redact_removes_credentials(void **state)
{
	static const char *const cases[][2] = {
		{"https://user:s3cret@host/r.git", "https://host/r.git"},
		{"https://ghp_token@host/r.git", "https://host/r.git"},
		{"HTTP://u:p@h:8080/x", "HTTP://h:8080/x"},
		{"https://u:p@ss@host/x", "https://host/x"},
		{"https://host/r.git", "https://host/r.git"},
		{"https://host/path@v1", "https://host/path@v1"},
		{"https://u:p@host", "https://host"},
		{"ssh://git@host/r.git", "ssh://git@host/r.git"},
		{"ssh://git:pw@host/r.git", "ssh://git@host/r.git"},
		{"git://u:p@host/r", "git://u@host/r"},
		{"git@github.com:org/r.git", "git@github.com:org/r.git"},
		{"file:///tmp/x", "file:///tmp/x"},
		{"/some/dir", "/some/dir"},
	};
	size_t i;

	RC_UNUSED(state);
	for (i = 0; i < RC_ARRAY_SIZE(cases); i++) {
		char *got = rc_url_redact(cases[i][0]);

		assert_string_equal(got, cases[i][1]);
		free(got);
	}
}

static void plain_directory_has_no_commit(void **state)
{
	char *dir = tmpdir_new(), *tdir, *tcommit;
	rc_source_branch *b;
	size_t n;
	rc_source *s;
	const rc_error *e;

	RC_UNUSED(state);
	write_file(dir, "reconcile.yaml", "x\n");
	s = open_ok(dir, NULL, NULL, false);
	assert_string_equal(rc_source_dir(s), dir);
	assert_null(rc_source_commit(s));
	assert_null(rc_source_url(s));
	assert_false(rc_source_dirty(s));
	assert_true(rc_source_tree(&tdir, &tcommit, s, "main") < 0);
	assert_null(tdir);
	assert_true(rc_source_branches(&b, &n, s) < 0);
	rc_source_free(s);

	e = open_fails(dir, "main", NULL, false);
	assert_non_null(strstr(e->message, "is not in a git repository"));
	write_file(dir, "file", "x");
	{
		char *missing = path_of(dir, "missing"),
		     *file = path_of(dir, "file");

		e = open_fails(missing, NULL, NULL, false);
		assert_int_equal(e->code, RC_ENOTFOUND);
		e = open_fails(file, NULL, NULL, false);
		assert_non_null(strstr(e->message, "is not a directory"));
		free(missing);
		free(file);
	}
	tmpdir_remove(dir);
}

static void work_tree_gives_head_and_dirty(void **state)
{
	char *dir = tmpdir_new(), *head, *sub = path_of(dir, "sub");
	rc_source *s;

	RC_UNUSED(state);
	write_file(dir, "reconcile.yaml", "v1\n");
	write_file(dir, ".gitignore", "*.log\n");
	write_file(dir, "sub/reconcile.yaml", "sub\n");
	write_file(dir, "other/x", "x\n");
	git(dir, "init", "-q", NULL);
	git(dir, "add", "-A", NULL);
	git(dir, "commit", "-qm", "one", NULL);
	head = rev(dir, "HEAD");

	s = open_ok(dir, NULL, NULL, false);
	assert_string_equal(rc_source_commit(s), head);
	assert_string_equal(rc_source_dir(s), dir);
	assert_null(rc_source_url(s));
	assert_false(rc_source_dirty(s));
	rc_source_free(s);

	/* an ignored file is not a change */
	write_file(dir, "debug.log", "noise\n");
	s = open_ok(dir, NULL, NULL, false);
	assert_false(rc_source_dirty(s));
	rc_source_free(s);

	/* a change outside the directory does not make it dirty, even in a
	 * directory whose name starts with the same letters */
	write_file(dir, "other/x", "changed\n");
	write_file(dir, "sub2/new", "new\n");
	s = open_ok(sub, NULL, NULL, false);
	assert_string_equal(rc_source_commit(s), head);
	assert_false(rc_source_dirty(s));
	rc_source_free(s);
	s = open_ok(dir, NULL, NULL, false);
	assert_true(rc_source_dirty(s));
	rc_source_free(s);
	git(dir, "checkout", "--", "other/x", NULL);
	{
		char *p = path_of(dir, "sub2/new");

		assert_int_equal(unlink(p), 0);
		free(p);
	}

	/* an edited tracked file */
	write_file(dir, "sub/reconcile.yaml", "edited\n");
	s = open_ok(sub, NULL, NULL, false);
	assert_true(rc_source_dirty(s));
	rc_source_free(s);
	git(dir, "checkout", "--", "sub/reconcile.yaml", NULL);

	/* an untracked file that is not ignored */
	write_file(dir, "sub/new.yaml", "new\n");
	s = open_ok(sub, NULL, NULL, false);
	assert_true(rc_source_dirty(s));
	rc_source_free(s);
	s = open_ok(dir, NULL, NULL, false);
	assert_true(rc_source_dirty(s));
	rc_source_free(s);

	free(head);
	free(sub);
	tmpdir_remove(dir);
}

static void directory_ref_is_written_to_the_cache(void **state)
{
	char *dir = tmpdir_new(), *cache = tmpdir_new(), *staging, *want,
	     *index_before, *index_after, *sub = path_of(dir, "sub"),
	     *index_path = path_of(dir, ".git/index");
	struct stat index_st, st;
	size_t index_len, len;
	rc_source *s;
	const rc_error *e;

	RC_UNUSED(state);
	write_file(dir, "reconcile.yaml", "main\n");
	write_file(dir, "sub/a.yaml", "a main\n");
	git(dir, "init", "-q", NULL);
	git(dir, "add", "-A", NULL);
	git(dir, "commit", "-qm", "main", NULL);
	git(dir, "checkout", "-qb", "staging", NULL);
	write_file(dir, "reconcile.yaml", "staging\n");
	write_file(dir, "sub/a.yaml", "a staging\n");
	git(dir, "commit", "-qam", "staging", NULL);
	git(dir, "checkout", "-q", "main", NULL);
	staging = rev(dir, "staging");
	index_before = read_bytes(dir, ".git/index", &index_len);
	assert_non_null(index_before);
	assert_int_equal(stat(index_path, &index_st), 0);

	s = open_ok(dir, "staging", cache, false);
	assert_string_equal(rc_source_commit(s), staging);
	assert_false(rc_source_dirty(s));
	want = path_of(cache, "trees/");
	assert_true(starts_with(rc_source_dir(s), want));
	free(want);
	assert_file(rc_source_dir(s), "reconcile.yaml", "staging\n");
	rc_source_free(s);

	/* a subdirectory maps to the same place in the tree */
	s = open_ok(sub, "staging", cache, false);
	assert_string_equal(rc_source_commit(s), staging);
	assert_non_null(strstr(rc_source_dir(s), staging));
	assert_file(rc_source_dir(s), "a.yaml", "a staging\n");
	assert_null(strstr(rc_source_dir(s) + strlen(cache), "//"));
	rc_source_free(s);

	/* neither the work tree nor the index were touched */
	assert_file(dir, "reconcile.yaml", "main\n");
	assert_file(dir, "sub/a.yaml", "a main\n");
	index_after = read_bytes(dir, ".git/index", &len);
	assert_non_null(index_after);
	assert_int_equal(len, index_len);
	assert_memory_equal(index_after, index_before, len);
	assert_int_equal(stat(index_path, &st), 0);
	assert_true(st.st_mtim.tv_sec == index_st.st_mtim.tv_sec &&
		    st.st_mtim.tv_nsec == index_st.st_mtim.tv_nsec);

	e = open_fails(dir, "nope", cache, false);
	assert_int_equal(e->klass, RC_ECLASS_GIT);
	{
		rc_buf m = RC_BUF_INIT;

		rc_buf_printf(&m, "unknown ref 'nope' in '%s'", dir);
		assert_string_equal(e->message, m.ptr);
		rc_buf_release(&m);
	}
	free(index_before);
	free(index_after);
	free(index_path);
	free(staging);
	free(sub);
	tmpdir_remove(cache);
	tmpdir_remove(dir);
}

/* clone over git://, then an incremental fetch into the same clone */
static void git_url_clone_then_fetch(void **state)
{
	char *origin = make_origin("app1"), *url = git_url("app1"),
	     *cache = tmpdir_new(), *tip, *tip2, *repos, *names, *hashdir;
	struct stat st1, st2;
	rc_source *s;

	RC_UNUSED(state);
	tip = rev(origin, "main");
	s = open_ok(url, NULL, cache, false);
	assert_string_equal(rc_source_commit(s), tip);
	assert_string_equal(rc_source_url(s), url);
	assert_false(rc_source_dirty(s));
	assert_file(rc_source_dir(s), "reconcile.yaml", "main 1\n");
	assert_file(rc_source_dir(s), "sub/deep.yaml", "deep\n");
	rc_source_free(s);

	repos = path_of(cache, "repos");
	names = list_dir(repos);
	/* one clone and its lock */
	assert_int_equal(strlen(names), 64 + 1 + 64 + 5);
	assert_int_equal(names[64], ' ');
	assert_memory_equal(names, names + 65, 64);
	assert_string_equal(names + 129, ".lock");
	hashdir = rc_strndup(names, 64);
	free(names);
	{
		char *p = path_of(repos, hashdir);

		assert_int_equal(stat(p, &st1), 0);
		free(p);
	}

	/* a new commit at the origin */
	write_file(origin, "reconcile.yaml", "main 2\n");
	git(origin, "commit", "-qam", "main 2", NULL);
	tip2 = rev(origin, "main");
	s = open_ok(url, NULL, cache, false);
	assert_string_equal(rc_source_commit(s), tip2);
	assert_file(rc_source_dir(s), "reconcile.yaml", "main 2\n");
	rc_source_free(s);
	names = list_dir(repos);
	assert_int_equal(strlen(names), 64 + 1 + 64 + 5);
	assert_true(starts_with(names, hashdir));
	free(names);
	{
		char *p = path_of(repos, hashdir);

		assert_int_equal(stat(p, &st2), 0);
		assert_true(st1.st_ino == st2.st_ino);
		free(p);
	}

	free(hashdir);
	free(repos);
	free(tip);
	free(tip2);
	free(url);
	free(origin);
	tmpdir_remove(cache);
}

static void file_url_clone(void **state)
{
	char *origin = make_origin("app2"), *url = file_url("app2"),
	     *cache = tmpdir_new(), *tip = rev(origin, "main");
	rc_source *s;

	RC_UNUSED(state);
	s = open_ok(url, NULL, cache, false);
	assert_string_equal(rc_source_commit(s), tip);
	assert_string_equal(rc_source_url(s), url);
	assert_file(rc_source_dir(s), "reconcile.yaml", "main 1\n");
	rc_source_free(s);

	/* no ref: the remote's default branch, as it is now */
	git(origin, "checkout", "-q", "staging", NULL);
	free(tip);
	tip = rev(origin, "staging");
	s = open_ok(url, NULL, cache, false);
	assert_string_equal(rc_source_commit(s), tip);
	rc_source_free(s);
	git(origin, "checkout", "-q", "main", NULL);

	free(tip);
	free(url);
	free(origin);
	tmpdir_remove(cache);
}

static void refs_by_branch_tag_and_sha(void **state)
{
	char *origin = make_origin("app3"), *url = git_url("app3"),
	     *cache = tmpdir_new(), *main_sha = rev(origin, "main"),
	     *staging = rev(origin, "staging"), *abbrev;
	rc_source *s;

	RC_UNUSED(state);
	s = open_ok(url, "staging", cache, false);
	assert_string_equal(rc_source_commit(s), staging);
	assert_file(rc_source_dir(s), "reconcile.yaml", "staging 1\n");
	rc_source_free(s);

	/* an annotated tag is peeled to its commit */
	s = open_ok(url, "v1", cache, false);
	assert_string_equal(rc_source_commit(s), main_sha);
	rc_source_free(s);

	s = open_ok(url, "feature/x", cache, false);
	assert_string_equal(rc_source_commit(s), main_sha);
	rc_source_free(s);

	s = open_ok(url, staging, cache, false);
	assert_string_equal(rc_source_commit(s), staging);
	assert_file(rc_source_dir(s), "reconcile.yaml", "staging 1\n");
	rc_source_free(s);

	abbrev = rc_strndup(staging, 10);
	s = open_ok(url, abbrev, cache, false);
	assert_string_equal(rc_source_commit(s), staging);
	rc_source_free(s);

	free(abbrev);
	free(main_sha);
	free(staging);
	free(url);
	free(origin);
	tmpdir_remove(cache);
}

static void unknown_ref_is_named(void **state)
{
	char *origin = make_origin("app4"), *url = git_url("app4"),
	     *cache = tmpdir_new();
	const rc_error *e;
	rc_buf want = RC_BUF_INIT;

	RC_UNUSED(state);
	e = open_fails(url, "nope", cache, false);
	rc_buf_printf(&want, "unknown ref 'nope' in '%s'", url);
	assert_string_equal(e->message, want.ptr);
	assert_int_equal(e->code, RC_ENOTFOUND);
	assert_int_equal(e->klass, RC_ECLASS_GIT);
	rc_buf_release(&want);
	free(url);
	free(origin);
	tmpdir_remove(cache);
}

static void unreachable_url_is_a_git_error(void **state)
{
	char *cache = tmpdir_new(), *repos;
	const rc_error *e;
	rc_buf url = RC_BUF_INIT, want = RC_BUF_INIT;

	RC_UNUSED(state);
	rc_buf_printf(&url, "git://127.0.0.1:%d/app", fx.closed_port);
	e = open_fails(url.ptr, NULL, cache, false);
	assert_int_equal(e->klass, RC_ECLASS_GIT);
	rc_buf_printf(&want, "cannot fetch '%s': ", url.ptr);
	assert_true(starts_with(e->message, want.ptr));
	assert_true(strlen(e->message) > want.len);
	/* no half clone is left behind */
	repos = path_of(cache, "repos");
	{
		char *names = list_dir(repos);

		assert_int_equal(strlen(names), 64 + 5);
		assert_non_null(strstr(names, ".lock"));
		free(names);
	}
	free(repos);
	rc_buf_release(&url);
	rc_buf_release(&want);
	tmpdir_remove(cache);
}

static void credentials_never_reach_the_message(void **state)
{
	char *cache = tmpdir_new();
	const rc_error *e;
	rc_buf url = RC_BUF_INIT, want = RC_BUF_INIT;

	RC_UNUSED(state);
	rc_buf_printf(&url, "http://user:s3cret@127.0.0.1:%d/x.git",
		      fx.closed_port);
	e = open_fails(url.ptr, NULL, cache, false);
	assert_int_equal(e->klass, RC_ECLASS_GIT);
	assert_null(strstr(e->message, "s3cret"));
	assert_null(strstr(e->message, "user:"));
	rc_buf_printf(&want, "cannot fetch 'http://127.0.0.1:%d/x.git': ",
		      fx.closed_port);
	assert_true(starts_with(e->message, want.ptr));
	/* nor a log line */
	{
		rc_buf line = RC_BUF_INIT;

		rc_buf_puts(&line, "password s3cret");
		rc_redact(&line);
		assert_null(strstr(line.ptr, "s3cret"));
		rc_buf_release(&line);
	}
	rc_buf_release(&url);
	rc_buf_release(&want);
	tmpdir_remove(cache);
}

/* An HTTP server that refuses every request with 401 (Basic). */
static atomic_int http_requests;
static atomic_int http_with_token;

static enum MHD_Result refuse_all(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *data,
				  size_t *size, void **ctx)
{
	static const char body[] = "no\n";
	struct MHD_Response *r;
	const char *auth;
	enum MHD_Result ret;

	RC_UNUSED(cls);
	RC_UNUSED(url);
	RC_UNUSED(method);
	RC_UNUSED(version);
	RC_UNUSED(data);
	RC_UNUSED(size);
	RC_UNUSED(ctx);
	http_requests++;
	auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
					   MHD_HTTP_HEADER_AUTHORIZATION);
	/* "x-access-token:tok-9f8e7d" in base64 */
	if (auth && strstr(auth, "eC1hY2Nlc3MtdG9rZW46dG9rLTlmOGU3ZA=="))
		http_with_token++;
	r = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body,
					    MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
				"Basic realm=\"git\"");
	MHD_add_response_header(r, "Content-Type", "text/plain");
	ret = MHD_queue_response(c, MHD_HTTP_UNAUTHORIZED, r);
	MHD_destroy_response(r);
	return ret;
}

static void refused_credentials_give_up(void **state)
{
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	char *cache = tmpdir_new();
	const rc_error *e;
	rc_buf url = RC_BUF_INIT;
	char *saved = getenv("RECONCILE_GIT_TOKEN");

	RC_UNUSED(state);
	saved = saved ? rc_strdup(saved) : NULL;
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
			     refuse_all, NULL, MHD_OPTION_SOCK_ADDR, NULL,
			     MHD_OPTION_END);
	assert_non_null(d);
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	assert_non_null(info);
	rc_buf_printf(&url, "http://127.0.0.1:%u/app.git",
		      (unsigned)info->port);

	/* no token: the callback says what to set */
	unsetenv("RECONCILE_GIT_TOKEN");
	e = open_fails(url.ptr, NULL, cache, false);
	assert_int_equal(e->code, RC_EAUTH);
	assert_int_equal(e->klass, RC_ECLASS_GIT);
	assert_non_null(strstr(e->message, "set RECONCILE_GIT_TOKEN"));

	/* a refused token is sent once, not for ever */
	http_requests = 0;
	setenv("RECONCILE_GIT_TOKEN", "tok-9f8e7d", 1);
	e = open_fails(url.ptr, NULL, cache, false);
	assert_int_equal(e->code, RC_EAUTH);
	assert_non_null(strstr(e->message, "RECONCILE_GIT_TOKEN was refused"));
	assert_null(strstr(e->message, "tok-9f8e7d"));
	assert_int_equal(http_with_token, 1);
	assert_true(http_requests <= 4);

	/* the controller's cheap check (ls-remote) offers the same token */
	{
		rc_branch *br = NULL;
		size_t n = 0;

		http_with_token = 0;
		assert_int_equal(rc_git_list_branches(&br, &n, url.ptr),
				 RC_EAUTH);
		assert_non_null(strstr(rc_error_last()->message,
				       "RECONCILE_GIT_TOKEN was refused"));
		assert_int_equal(http_with_token, 1);
		rc_error_clear();
	}

	if (saved)
		setenv("RECONCILE_GIT_TOKEN", saved, 1);
	else
		unsetenv("RECONCILE_GIT_TOKEN");
	free(saved);
	MHD_stop_daemon(d);
	rc_buf_release(&url);
	tmpdir_remove(cache);
}

static void offline_uses_only_the_cache(void **state)
{
	char *origin = make_origin("app5"), *url = file_url("app5"),
	     *cache = tmpdir_new(), *tip = rev(origin, "main"), *moved;
	const rc_error *e;
	rc_source *s;

	RC_UNUSED(state);
	e = open_fails(url, NULL, cache, true);
	assert_int_equal(e->code, RC_ENOTFOUND);
	assert_non_null(strstr(e->message, "is not in the cache"));
	assert_non_null(strstr(e->message, url));

	s = open_ok(url, NULL, cache, false);
	rc_source_free(s);
	/* the origin goes away: offline still works, online does not */
	moved = path_of(fx.git, "app5-moved");
	assert_int_equal(rename(origin, moved), 0);
	s = open_ok(url, NULL, cache, true);
	assert_string_equal(rc_source_commit(s), tip);
	assert_file(rc_source_dir(s), "reconcile.yaml", "main 1\n");
	rc_source_free(s);
	s = open_ok(url, "staging", cache, true);
	assert_file(rc_source_dir(s), "reconcile.yaml", "staging 1\n");
	rc_source_free(s);
	e = open_fails(url, NULL, cache, false);
	assert_true(starts_with(e->message, "cannot fetch '"));

	free(moved);
	free(tip);
	free(url);
	free(origin);
	tmpdir_remove(cache);
}

static void tree_and_branches_of_a_url(void **state)
{
	char *origin = make_origin("app6"), *url = git_url("app6"),
	     *cache = tmpdir_new(), *main_sha = rev(origin, "main"),
	     *staging = rev(origin, "staging"), *tdir, *tcommit;
	rc_source_branch *b;
	size_t n;
	rc_source *s;

	RC_UNUSED(state);
	s = open_ok(url, NULL, cache, false);
	assert_string_equal(rc_source_commit(s), main_sha);
	assert_int_equal(rc_source_tree(&tdir, &tcommit, s, "staging"), 0);
	assert_string_equal(tcommit, staging);
	assert_file(tdir, "reconcile.yaml", "staging 1\n");
	assert_file(tdir, "sub/deep.yaml", "deep\n");
	free(tdir);
	free(tcommit);
	assert_true(rc_source_tree(&tdir, &tcommit, s, "nope") < 0);
	assert_non_null(strstr(rc_error_last()->message, "unknown ref 'nope'"));

	assert_int_equal(rc_source_branches(&b, &n, s), 0);
	assert_int_equal(n, 3);
	assert_string_equal(b[0].name, "feature/x");
	assert_string_equal(b[0].sha, main_sha);
	assert_string_equal(b[1].name, "main");
	assert_string_equal(b[1].sha, main_sha);
	assert_string_equal(b[2].name, "staging");
	assert_string_equal(b[2].sha, staging);
	rc_source_branches_free(b, n);
	rc_source_free(s);

	/* a branch deleted at the origin goes at the next fetch */
	git(origin, "branch", "-qD", "feature/x", NULL);
	s = open_ok(url, NULL, cache, false);
	assert_int_equal(rc_source_branches(&b, &n, s), 0);
	assert_int_equal(n, 2);
	assert_string_equal(b[0].name, "main");
	rc_source_branches_free(b, n);
	rc_source_free(s);

	free(main_sha);
	free(staging);
	free(url);
	free(origin);
	tmpdir_remove(cache);
}

static void branches_of_a_directory(void **state)
{
	char *origin = make_origin("app7"), *url = file_url("app7"),
	     *work = tmpdir_new(), *cache = tmpdir_new(), *clone,
	     *main_sha = rev(origin, "main"), *local_staging, *tdir,
	     *tcommit;
	rc_source_branch *b;
	size_t n;
	rc_source *s;

	RC_UNUSED(state);
	git(work, "clone", "-q", url, "c", NULL);
	clone = path_of(work, "c");
	/* a local staging that differs from origin/staging shadows it */
	git(clone, "checkout", "-qb", "staging", "main", NULL);
	write_file(clone, "reconcile.yaml", "local staging\n");
	git(clone, "commit", "-qam", "local", NULL);
	local_staging = rev(clone, "staging");
	git(clone, "checkout", "-q", "main", NULL);

	s = open_ok(clone, NULL, cache, false);
	assert_string_equal(rc_source_commit(s), main_sha);
	assert_int_equal(rc_source_branches(&b, &n, s), 0);
	assert_int_equal(n, 3);
	assert_string_equal(b[0].name, "feature/x");
	assert_string_equal(b[0].sha, main_sha);
	assert_string_equal(b[1].name, "main");
	assert_string_equal(b[2].name, "staging");
	assert_string_equal(b[2].sha, local_staging);
	rc_source_branches_free(b, n);

	/* local first, then origin's */
	assert_int_equal(rc_source_tree(&tdir, &tcommit, s, "staging"), 0);
	assert_string_equal(tcommit, local_staging);
	assert_file(tdir, "reconcile.yaml", "local staging\n");
	free(tdir);
	free(tcommit);
	assert_int_equal(rc_source_tree(&tdir, &tcommit, s, "feature/x"), 0);
	assert_string_equal(tcommit, main_sha);
	free(tdir);
	free(tcommit);
	rc_source_free(s);

	free(local_staging);
	free(main_sha);
	free(clone);
	free(url);
	free(origin);
	tmpdir_remove(cache);
	tmpdir_remove(work);
}

static void trees_are_complete_and_reused(void **state)
{
	char *origin = make_origin("app8"), *url = git_url("app8"),
	     *cache = tmpdir_new(), *tip = rev(origin, "main"), *trees,
	     *names, *yaml;
	struct stat d1, f1, d2, f2, x;
	rc_source *s;
	rc_buf want = RC_BUF_INIT;

	RC_UNUSED(state);
	s = open_ok(url, NULL, cache, false);
	trees = path_of(cache, "trees");
	rc_buf_printf(&want, "%s/%s", trees, tip);
	assert_string_equal(rc_source_dir(s), want.ptr);
	/* nothing but the finished tree */
	names = list_dir(trees);
	assert_string_equal(names, tip);
	free(names);
	names = list_dir(rc_source_dir(s));
	assert_string_equal(names, "reconcile.yaml run.sh sub");
	free(names);
	assert_file(rc_source_dir(s), "sub/deep.yaml", "deep\n");
	yaml = path_of(rc_source_dir(s), "run.sh");
	assert_int_equal(stat(yaml, &x), 0);
	assert_true(x.st_mode & S_IXUSR);
	free(yaml);
	yaml = path_of(rc_source_dir(s), "reconcile.yaml");
	assert_int_equal(stat(rc_source_dir(s), &d1), 0);
	assert_int_equal(stat(yaml, &f1), 0);
	rc_source_free(s);

	s = open_ok(url, NULL, cache, false);
	assert_string_equal(rc_source_dir(s), want.ptr);
	assert_int_equal(stat(rc_source_dir(s), &d2), 0);
	assert_int_equal(stat(yaml, &f2), 0);
	assert_true(d1.st_ino == d2.st_ino);
	assert_true(f1.st_ino == f2.st_ino);
	assert_true(f1.st_mtim.tv_sec == f2.st_mtim.tv_sec &&
		    f1.st_mtim.tv_nsec == f2.st_mtim.tv_nsec);
	rc_source_free(s);

	/* the cache is private */
	assert_int_equal(stat(trees, &x), 0);
	assert_int_equal(x.st_mode & 0777, 0700);

	free(yaml);
	free(trees);
	rc_buf_release(&want);
	free(tip);
	free(url);
	free(origin);
	tmpdir_remove(cache);
}

static void default_cache_follows_xdg(void **state)
{
	char *origin = make_origin("app9"), *url = file_url("app9"),
	     *xdg = tmpdir_new(), *root, *saved = getenv("XDG_CACHE_HOME");
	struct stat st;
	rc_source *s = NULL;

	RC_UNUSED(state);
	saved = saved ? rc_strdup(saved) : NULL;
	setenv("XDG_CACHE_HOME", xdg, 1);
	assert_int_equal(rc_source_open(&s, url, NULL, NULL), 0);
	root = path_of(xdg, "reconcile/trees/");
	assert_true(starts_with(rc_source_dir(s), root));
	free(root);
	rc_source_free(s);
	root = path_of(xdg, "reconcile");
	assert_int_equal(stat(root, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	free(root);
	if (saved)
		setenv("XDG_CACHE_HOME", saved, 1);
	else
		unsetenv("XDG_CACHE_HOME");
	free(saved);
	free(url);
	free(origin);
	tmpdir_remove(xdg);
}

/* Two processes open the same new URL at once: both succeed, one clone. */
static void concurrent_opens_share_the_clone(void **state)
{
	char *origin = make_origin("app10"), *url = git_url("app10"),
	     *cache = tmpdir_new(), *tip = rev(origin, "main"), *repos,
	     *names;
	pid_t kids[3];
	int i, status;

	RC_UNUSED(state);
	for (i = 0; i < 3; i++) {
		kids[i] = fork();
		assert_true(kids[i] >= 0);
		if (kids[i] == 0) {
			rc_source_opts o = {.cache_dir = cache};
			rc_source *s = NULL;
			int ok = rc_source_open(&s, url, NULL, &o) == 0 &&
				 !strcmp(rc_source_commit(s), tip);

			rc_source_free(s);
			_exit(ok ? 0 : 1);
		}
	}
	for (i = 0; i < 3; i++) {
		assert_true(waitpid(kids[i], &status, 0) == kids[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	repos = path_of(cache, "repos");
	names = list_dir(repos);
	assert_int_equal(strlen(names), 64 + 1 + 64 + 5);
	free(names);
	free(repos);
	free(tip);
	free(url);
	free(origin);
	tmpdir_remove(cache);
}

int test_group_source(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(url_redact_removes_credentials),
		cmocka_unit_test(plain_directory_has_no_commit),
		cmocka_unit_test(work_tree_gives_head_and_dirty),
		cmocka_unit_test(directory_ref_is_written_to_the_cache),
		cmocka_unit_test(git_url_clone_then_fetch),
		cmocka_unit_test(file_url_clone),
		cmocka_unit_test(refs_by_branch_tag_and_sha),
		cmocka_unit_test(unknown_ref_is_named),
		cmocka_unit_test(unreachable_url_is_a_git_error),
		cmocka_unit_test(credentials_never_reach_the_message),
		cmocka_unit_test(refused_credentials_give_up),
		cmocka_unit_test(offline_uses_only_the_cache),
		cmocka_unit_test(tree_and_branches_of_a_url),
		cmocka_unit_test(branches_of_a_directory),
		cmocka_unit_test(trees_are_complete_and_reused),
		cmocka_unit_test(default_cache_follows_xdg),
		cmocka_unit_test(concurrent_opens_share_the_clone),
	};
	return cmocka_run_group_tests_name("source", tests, start_daemon,
					   stop_daemon);
}
