/* One test binary with named groups (after libgit2's clar): ctest runs
 * `rc_unit GROUP` for each group. */
#include "tests/unit/helpers.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/wait.h>

static const struct {
	const char *name;
	int (*run)(void);
} groups[] = {
	{"buf", test_group_buf},       {"diag", test_group_diag},
	{"node", test_group_node},     {"merge", test_group_merge},
	{"load", test_group_load},     {"generators", test_group_generators},
	{"log", test_group_log},
};

char *tmpdir_new(void)
{
	char tmpl[] = "/tmp/rc-unit-XXXXXX";
	char *d = mkdtemp(tmpl);

	assert_non_null(d);
	return rc_strdup(d);
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	RC_UNUSED(st);
	RC_UNUSED(flag);
	RC_UNUSED(ftw);
	return remove(path);
}

void tmpdir_remove(char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

void write_file(const char *dir, const char *rel, const char *text)
{
	rc_buf p = RC_BUF_INIT;
	char *slash;
	FILE *f;

	rc_buf_printf(&p, "%s/%s", dir, rel);
	for (slash = strchr(p.ptr + strlen(dir) + 1, '/'); slash;
	     slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdir(p.ptr, 0755);
		*slash = '/';
	}
	f = fopen(p.ptr, "wb");
	assert_non_null(f);
	fwrite(text, 1, strlen(text), f);
	fclose(f);
	rc_buf_release(&p);
}

char *load_dir(const char *dir, bool offline, rc_config **cfg, int *rc)
{
	rc_diags d;
	rc_load_opts o = {.offline = offline};
	rc_buf out = RC_BUF_INIT;
	rc_config *c = NULL;

	rc_diags_init(&d);
	*rc = rc_config_load(&c, dir, &o, &d);
	rc_diags_format(&d, &out, false);
	rc_diags_release(&d);
	if (cfg)
		*cfg = c;
	else
		rc_config_free(c);
	return rc_buf_detach(&out);
}

rc_node *parse_one(rc_diags *d, const char *text, char **diag_text)
{
	rc_node **docs = NULL, *root = NULL;
	size_t n = 0, i;
	rc_buf out = RC_BUF_INIT;
	const char *name;

	rc_diags_init(d);
	name = rc_diags_add_source(d, "t.yaml", rc_strdup(text), strlen(text));
	if (rc_yaml_parse(&docs, &n, name, text, strlen(text), d) == 0 &&
	    n == 1) {
		root = docs[0];
		docs[0] = NULL;
	}
	for (i = 0; i < n; i++)
		rc_node_free(docs[i]);
	free(docs);
	rc_diags_format(d, &out, false);
	if (diag_text)
		*diag_text = rc_buf_detach(&out);
	rc_buf_release(&out);
	return root;
}

int run_argv(const char *const *argv, const char *cwd)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		if (devnull >= 0) {
			dup2(devnull, 1);
			dup2(devnull, 2);
		}
		if (cwd && chdir(cwd) < 0)
			_exit(127);
		execvp(argv[0], (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int main(int argc, char **argv)
{
	int failed = 0;
	size_t i;
	bool ran = false;

	for (i = 0; i < RC_ARRAY_SIZE(groups); i++) {
		if (argc > 1 && strcmp(argv[1], groups[i].name))
			continue;
		ran = true;
		failed += groups[i].run();
	}
	if (!ran) {
		fprintf(stderr, "unknown test group '%s'\n", argv[1]);
		return 2;
	}
	return failed ? 1 : 0;
}
