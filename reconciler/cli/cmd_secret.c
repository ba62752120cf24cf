/*
 * reconcile secret encrypt | decrypt | edit | rekey | keygen: age
 * encrypted values in the configuration (docs/secrets.md, docs/cli.md).
 *
 * The configuration is loaded only for its environments, their files and
 * their recipients: an invalid configuration elsewhere does not stop
 * these commands, a wrong recipient does. Encrypted values are found in
 * the files' text (secret_yaml.h), so that rewriting one changes only its
 * own lines.
 *
 * Plaintexts are registered with the redactor as soon as they are read or
 * decrypted, and wiped (OPENSSL_cleanse) before their memory is freed;
 * nothing but `decrypt` ever prints one.
 */
#include "reconciler/base/common.h"
#include "reconciler/cli/cli.h"
#include "reconciler/cli/secret_yaml.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "reconciler/base/rctime.h"
#include "schema/age.h"
#include "schema/load.h"
#include "state/internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>

#define SECRET_MAX ((size_t)4 << 20)

static void usage(FILE *f)
{
	rc_command_usage(rc_command_find("secret"), f);
}

static int fail(void)
{
	const rc_error *e = rc_error_last();

	fprintf(stderr, "error: %s\n", e && e->message ? e->message : "failed");
	rc_error_clear();
	return RC_EXIT_FAIL;
}

/* --------------------------------------------------------- plaintexts */

static void wipe(rc_buf *b)
{
	if (b->cap)
		OPENSSL_cleanse(b->ptr, b->cap);
	rc_buf_release(b);
}

/* Reads fd to its end into *b (max bytes at most), moving the bytes
 * itself so that no copy is left in freed memory. */
static int read_secret_fd(rc_buf *b, int fd, const char *what)
{
	size_t cap = 4096;

	rc_buf_release(b);
	rc_buf_init(b, SECRET_MAX);
	rc_buf_grow(b, cap);
	for (;;) {
		ssize_t r;

		if (b->len + 1 >= b->cap) {
			rc_buf nb = RC_BUF_INIT_MAX(SECRET_MAX);

			if (b->cap * 2 > SECRET_MAX + 1)
				return rc_error_set(RC_ETOOBIG, RC_ECLASS_OS,
						    "%s is larger than %zu bytes",
						    what, SECRET_MAX);
			rc_buf_grow(&nb, b->cap * 2);
			rc_buf_put(&nb, b->ptr, b->len);
			wipe(b);
			*b = nb;
		}
		r = read(fd, b->ptr + b->len, b->cap - b->len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return rc_error_set_os("cannot read %s", what);
		if (r == 0)
			break;
		b->len += (size_t)r;
		b->ptr[b->len] = '\0';
	}
	return 0;
}

static int read_path(rc_buf *b, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0)
		return rc_error_set_os("cannot read '%s'", path);
	rc = read_secret_fd(b, fd, path);
	close(fd);
	return rc;
}

/* Replaces path with data through a temporary file beside it and
 * rename(), keeping path's mode. */
static int write_atomic(const char *path, const void *data, size_t len)
{
	rc_buf tmp = RC_BUF_INIT, dir = RC_BUF_INIT;
	struct stat st;
	mode_t mode = 0644;
	int fd, rc = 0;
	const char *slash = strrchr(path, '/');

	if (stat(path, &st) == 0)
		mode = st.st_mode & 07777;
	rc_buf_printf(&tmp, "%s.reconcile-XXXXXX", path);
	fd = mkstemp(tmp.ptr);
	if (fd < 0) {
		rc = rc_error_set_os("cannot write '%s'", path);
		goto done;
	}
	if (fchmod(fd, mode) < 0 || rc_state_write_all(fd, data, len) < 0 ||
	    fsync(fd) < 0) {
		rc = rc_error_set_os("cannot write '%s'", tmp.ptr);
		close(fd);
		unlink(tmp.ptr);
		goto done;
	}
	close(fd);
	if (rename(tmp.ptr, path) < 0) {
		rc = rc_error_set_os("cannot replace '%s'", path);
		unlink(tmp.ptr);
		goto done;
	}
	rc_buf_put(&dir, path, slash ? (size_t)(slash - path) + 1 : 0);
	rc_buf_puts(&dir, ".");
	if (rc_state_fsync_dir(dir.ptr) < 0)
		rc_error_clear(); /* the file is in place */
done:
	rc_buf_release(&tmp);
	rc_buf_release(&dir);
	return rc;
}

/* --------------------------------------------------- the configuration */

/* Loads dir for its environments and recipients: errors in recipients
 * are printed and fail; any other problem is validate's to report. */
static int config_open(rc_config **cfg, const char *dir)
{
	rc_load_opts lo = {.offline = true};
	rc_buf root = RC_BUF_INIT;
	rc_diags d;
	int rc = 0;

	*cfg = NULL;
	rc_buf_printf(&root, "%s/reconcile.yaml", dir);
	if (access(root.ptr, F_OK) < 0) {
		fprintf(stderr, "error: no reconcile.yaml in '%s'\n", dir);
		rc_buf_release(&root);
		return -1;
	}
	rc_buf_release(&root);
	rc_diags_init(&d);
	rc_config_load(cfg, dir, &lo, &d);
	for (size_t i = 0; i < d.n; i++) {
		const rc_diag *g = &d.items[i];

		if (g->severity != RC_DIAG_ERROR ||
		    strncmp(g->message, "recipients", 10))
			continue;
		fprintf(stderr, "%s:%d:%d: error: %s\n",
			g->loc.file ? g->loc.file : dir, g->loc.line,
			g->loc.col, g->message);
		rc = -1;
	}
	rc_diags_release(&d);
	if (!*cfg)
		rc = -1;
	return rc;
}

static bool argv_equal(const rc_argv *a, const rc_argv *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]))
			return false;
	return true;
}

/* Whether env is the environment (or generator entry) name. */
static bool env_is(const rc_env *env, const char *name)
{
	return !strcmp(env->name, name) ||
	       (env->generator && !strcmp(env->generator, name));
}

/* The recipients of the environments that match (by name, or by file
 * when name is NULL); their `who` for messages. All of them must agree. */
static int env_recipients(const rc_config *cfg, const char *name,
			  const char *file, const rc_argv **out,
			  const char **who)
{
	const rc_env *first = NULL;

	for (size_t i = 0; i < cfg->nenvs; i++) {
		const rc_env *e = &cfg->envs[i];

		if (name ? !env_is(e, name) : (!e->file || strcmp(e->file, file)))
			continue;
		if (!first) {
			first = e;
		} else if (!argv_equal(&first->recipients, &e->recipients)) {
			return rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
					    "environments '%s' and '%s' share "
					    "%s%s but not their recipients",
					    first->name, e->name,
					    name ? "the entry " : "the file ",
					    name ? name : file);
		}
	}
	if (!first)
		return rc_error_set(RC_ENOTFOUND, RC_ECLASS_CONFIG,
				    name ? "no environment '%s' in the "
					   "configuration"
					 : "no environment uses '%s'",
				    name ? name : file);
	*out = &first->recipients;
	*who = first->name;
	return 0;
}

/* The recipients for the value b of file (repository-relative). */
static int block_recipients(const rc_config *cfg, const char *file,
			    const rc_yaml_block *b, const rc_argv **out,
			    const char **who)
{
	if (strcmp(file, "reconcile.yaml"))
		return env_recipients(cfg, NULL, file, out, who);
	if (b->npath >= 2 && !strcmp(b->path[0], "environments"))
		return env_recipients(cfg, b->path[1], NULL, out, who);
	*out = &cfg->recipients;
	*who = NULL;
	return 0;
}

static int recipients_parse(rc_age_recipient_list *rs, const rc_argv *a,
			    const char *who)
{
	if (!a->n)
		return rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				    "no recipients for %s%s%s: add "
				    "'recipients:' (age1... or ssh public keys) "
				    "to reconcile.yaml%s",
				    who ? "environment '" : "the top level",
				    who ? who : "", who ? "'" : "",
				    who ? " or to the environment" : "");
	for (size_t i = 0; i < a->n; i++) {
		rc_age_recipient *r;

		if (rc_age_recipient_parse(&r, a->v[i]) < 0)
			return -1;
		rc_age_recipient_list_add(rs, r);
	}
	return 0;
}

/* The files that hold values: reconcile.yaml, then each environment
 * file once (new array of borrowed strings). */
static const char **config_files(const rc_config *cfg, size_t *n)
{
	const char **v = rc_calloc(cfg->nenvs + 1, sizeof(char *));

	v[0] = "reconcile.yaml";
	*n = 1;
	for (size_t i = 0; i < cfg->nenvs; i++) {
		bool seen = false;

		if (!cfg->envs[i].file)
			continue;
		for (size_t k = 0; k < *n && !seen; k++)
			seen = !strcmp(v[k], cfg->envs[i].file);
		if (!seen)
			v[(*n)++] = cfg->envs[i].file;
	}
	return v;
}

/* An age file's text, decrypted with the process's identities into out
 * (registered with the redactor). what names it in errors. */
static int decrypt_text(rc_buf *out, const char *data, size_t len,
			const char *what)
{
	rc_age_identity_list ids = {0};
	int rc;

	if (rc_age_identities_load(&ids) < 0) {
		rc_error_prefix("%s", what);
		return -1;
	}
	rc_buf_init(out, SECRET_MAX);
	rc = rc_age_decrypt(out, data, len, &ids, 0, NULL);
	rc_age_identity_list_release(&ids);
	if (rc < 0) {
		rc_error_prefix("%s", what);
		return rc;
	}
	rc_secret_register(out->ptr);
	return 0;
}

/* ------------------------------------------------------------ encrypt */

static bool is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool secret_name_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.-", *s))
			return false;
	return true;
}

/* The terminal's settings while a value is read without echo, put back
 * when a signal ends the command. */
static struct termios tty_saved;

static void tty_signal(int sig)
{
	tcsetattr(STDIN_FILENO, TCSANOW, &tty_saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* The value from standard input: a terminal is read without echo up to
 * the end of the line; anything else to its end, less one final
 * newline. */
static int read_value(rc_buf *v, const char *name)
{
	struct termios old, quiet;
	struct sigaction sa, old_int, old_term;
	int rc;

	if (!isatty(STDIN_FILENO)) {
		rc = read_secret_fd(v, STDIN_FILENO, "standard input");
		if (rc == 0 && v->len && v->ptr[v->len - 1] == '\n')
			rc_buf_truncate(v, v->len - 1);
		return rc;
	}
	if (tcgetattr(STDIN_FILENO, &old) < 0)
		return rc_error_set_os("cannot read the terminal");
	tty_saved = old;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = tty_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	quiet.c_lflag |= ECHONL;
	fprintf(stderr, "Value of %s (not shown): ", name);
	fflush(stderr);
	tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
	rc_buf_init(v, SECRET_MAX);
	rc_buf_grow(v, 4096);
	rc = 0;
	for (;;) {
		char c;
		ssize_t r = read(STDIN_FILENO, &c, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || c == '\n')
			break;
		if (v->len + 1 >= v->cap) {
			rc = rc_error_set(RC_ETOOBIG, RC_ECLASS_OS,
					  "the value is too long for a terminal; "
					  "pipe it in");
			break;
		}
		v->ptr[v->len++] = c;
		v->ptr[v->len] = '\0';
		c = 0;
	}
	tcsetattr(STDIN_FILENO, TCSANOW, &old);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	return rc;
}

/* Puts the entry under the secrets of environment env in its file (its
 * own, else reconcile.yaml under environments: ENTRY:). */
static int write_entry(const rc_config *cfg, const char *dir, const char *env,
		       const char *name, const char *armored)
{
	const rc_env *e = NULL;
	const char *path[2] = {"environments", NULL};
	rc_buf file = RC_BUF_INIT, text = RC_BUF_INIT, out = RC_BUF_INIT;
	int rc;

	for (size_t i = 0; i < cfg->nenvs && !e; i++)
		if (env_is(&cfg->envs[i], env))
			e = &cfg->envs[i];
	if (!e)
		return rc_error_set(RC_ENOTFOUND, RC_ECLASS_CONFIG,
				    "no environment '%s' in the configuration",
				    env);
	path[1] = e->generator ? e->generator : e->name;
	rc_buf_printf(&file, "%s/%s", dir, e->file ? e->file : "reconcile.yaml");
	rc = read_path(&text, file.ptr);
	if (rc == 0) {
		rc = rc_yaml_secret_put(&out, text.ptr, text.len, path,
					e->file ? 0 : 2, name, armored);
		if (rc < 0)
			rc_error_prefix("%s", e->file ? e->file
						       : "reconcile.yaml");
	}
	if (rc == 0)
		rc = write_atomic(file.ptr, out.ptr, out.len);
	if (rc == 0)
		fprintf(stderr, "wrote %s to %s (environment '%s')\n", name,
			e->file ? e->file : "reconcile.yaml", path[1]);
	rc_buf_release(&file);
	rc_buf_release(&text);
	rc_buf_release(&out);
	return rc;
}

static int secret_encrypt(int argc, char **argv)
{
	static const struct option opts[] = {
		{"env", required_argument, NULL, 'e'},
		{"write", no_argument, NULL, 'w'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	const char *env = NULL, *name, *dir = ".", *who = NULL;
	bool write = false;
	const rc_argv *ra;
	rc_age_recipient_list rs = {0};
	rc_config *cfg = NULL;
	rc_buf value = RC_BUF_INIT, armored = RC_BUF_INIT;
	int c, code = RC_EXIT_FAIL;

	optind = 1;
	while ((c = getopt_long(argc, argv, "e:wh", opts, NULL)) != -1) {
		switch (c) {
		case 'e':
			env = optarg;
			break;
		case 'w':
			write = true;
			break;
		case 'h':
			usage(stdout);
			return RC_EXIT_OK;
		default:
			usage(stderr);
			return RC_EXIT_USAGE;
		}
	}
	if (optind >= argc || argc - optind > 2) {
		fprintf(stderr, "usage: reconcile secret encrypt [-e <env> "
				"[--write]] <name> [<dir>] < value\n");
		return RC_EXIT_USAGE;
	}
	if (write && !env) {
		fprintf(stderr, "error: --write needs the environment (-e): "
				"the entry goes under its secrets:\n");
		return RC_EXIT_USAGE;
	}
	name = argv[optind];
	if (optind + 1 < argc)
		dir = argv[optind + 1];
	if (!secret_name_ok(name)) {
		fprintf(stderr, "error: '%s' is not a secret name (letters, "
				"digits, '_', '.' and '-'); the value is read "
				"from standard input, never from the command "
				"line\n",
			name);
		return RC_EXIT_USAGE;
	}
	if (!is_dir(dir)) {
		/* not echoed: it may be a value typed in the wrong place */
		fprintf(stderr, "error: the argument after the name must be "
				"the configuration's directory; the value is "
				"read from standard input, never from the "
				"command line\n");
		return RC_EXIT_USAGE;
	}
	if (config_open(&cfg, dir) < 0)
		goto done;
	if (env) {
		if (env_recipients(cfg, env, NULL, &ra, &who) < 0)
			goto fail;
	} else {
		ra = &cfg->recipients;
	}
	if (recipients_parse(&rs, ra, who) < 0)
		goto fail;
	if (read_value(&value, name) < 0)
		goto fail;
	if (!value.len) {
		fprintf(stderr, "error: the value of %s is empty (nothing on "
				"standard input)\n",
			name);
		goto done;
	}
	rc_secret_register(value.ptr);
	if (rc_age_encrypt(&armored, value.ptr, value.len, &rs,
			   RC_AGE_ARMOR) < 0)
		goto fail;
	if (write) {
		if (write_entry(cfg, dir, env, name, armored.ptr) < 0)
			goto fail;
	} else {
		rc_buf lines = RC_BUF_INIT;

		printf("%s:\n  encrypted: |\n", name);
		rc_yaml_indent_lines(&lines, armored.ptr, 4, true);
		fputs(lines.ptr, stdout);
		rc_buf_release(&lines);
	}
	code = RC_EXIT_OK;
	goto done;
fail:
	fail();
done:
	wipe(&value);
	rc_buf_release(&armored);
	rc_age_recipient_list_release(&rs);
	rc_config_free(cfg);
	return code;
}

/* ------------------------------------------------------------ decrypt */

typedef struct {
	char *where; /* "file:line (path)" */
	char *text;  /* the age file's text, armored or binary */
	size_t len;
} found_value;

static void found_add(found_value **v, size_t *n, size_t *cap, char *where,
		      rc_buf *text)
{
	RC_GROW(*v, *cap, *n + 1);
	(*v)[*n].where = where;
	(*v)[*n].len = text->len;
	(*v)[(*n)++].text = rc_buf_detach(text);
}

/* Whether the value b of file belongs to environment env. */
static bool block_in_env(const rc_config *cfg, const char *file,
			 const rc_yaml_block *b, const char *env)
{
	if (!strcmp(file, "reconcile.yaml"))
		return b->npath >= 2 && !strcmp(b->path[0], "environments") &&
		       !strcmp(b->path[1], env);
	for (size_t e = 0; e < cfg->nenvs; e++)
		if (env_is(&cfg->envs[e], env) && cfg->envs[e].file &&
		    !strcmp(cfg->envs[e].file, file))
			return true;
	return false;
}

/* Every value NAME of the configuration (of environment env when not
 * NULL): `secrets: NAME: encrypted:` blocks and `{file:}` age files. */
static int find_values(const rc_config *cfg, const char *dir, const char *env,
		       const char *name, found_value **v, size_t *n)
{
	size_t nfiles, cap = 0;
	const char **files = config_files(cfg, &nfiles);

	*v = NULL;
	*n = 0;
	for (size_t f = 0; f < nfiles; f++) {
		rc_buf path = RC_BUF_INIT, text = RC_BUF_INIT;
		rc_yaml_block *b;
		size_t nb;

		rc_buf_printf(&path, "%s/%s", dir, files[f]);
		if (read_path(&text, path.ptr) < 0) {
			rc_error_clear();
			rc_buf_release(&path);
			continue;
		}
		rc_yaml_blocks_find(text.ptr, text.len, &b, &nb);
		for (size_t i = 0; i < nb; i++) {
			const rc_yaml_block *k = &b[i];
			rc_buf where = RC_BUF_INIT, val = RC_BUF_INIT;

			if (k->npath < 2 || strcmp(k->path[k->npath - 1], name) ||
			    strcmp(k->path[k->npath - 2], "secrets") ||
			    (env && !block_in_env(cfg, files[f], k, env)))
				continue;
			rc_buf_printf(&where, "%s:%d (", files[f], k->line);
			rc_yaml_block_describe(&where, k);
			rc_buf_puts(&where, ")");
			rc_buf_puts(&val, k->value);
			found_add(v, n, &cap, rc_buf_detach(&where), &val);
		}
		rc_yaml_blocks_free(b, nb);
		rc_buf_release(&text);
		rc_buf_release(&path);
	}
	free(files);
	/* {file: PATH} secrets that are age files */
	for (size_t e = 0; e < cfg->nenvs; e++) {
		const rc_env *en = &cfg->envs[e];

		if (env && !env_is(en, env))
			continue;
		for (size_t s = 0; s < en->nsecrets; s++) {
			const rc_secret *sec = &en->secrets[s];
			rc_buf path = RC_BUF_INIT, text = RC_BUF_INIT;
			rc_age_info info;
			bool dup = false;

			if (sec->kind != RC_SECRET_FILE || strcmp(sec->name, name))
				continue;
			rc_buf_printf(&path, "%s/%s", dir, sec->ref);
			for (size_t k = 0; k < *n && !dup; k++)
				dup = !strcmp((*v)[k].where, path.ptr);
			if (!dup && read_path(&text, path.ptr) == 0 &&
			    rc_age_inspect(&info, text.ptr, text.len) == 0) {
				rc_age_info_release(&info);
				found_add(v, n, &cap, rc_buf_detach(&path), &text);
			}
			rc_error_clear();
			wipe(&text);
			rc_buf_release(&path);
		}
	}
	return 0;
}

static int secret_decrypt(int argc, char **argv)
{
	static const struct option opts[] = {
		{"env", required_argument, NULL, 'e'},
		{"force", no_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	const char *env = NULL, *arg, *dir = ".";
	bool force = false, tty = isatty(STDOUT_FILENO);
	rc_config *cfg = NULL;
	found_value *v = NULL;
	size_t n = 0;
	rc_buf text = RC_BUF_INIT, plain = RC_BUF_INIT;
	struct stat st;
	int c, code = RC_EXIT_FAIL;

	optind = 1;
	while ((c = getopt_long(argc, argv, "e:fh", opts, NULL)) != -1) {
		switch (c) {
		case 'e':
			env = optarg;
			break;
		case 'f':
			force = true;
			break;
		case 'h':
			usage(stdout);
			return RC_EXIT_OK;
		default:
			usage(stderr);
			return RC_EXIT_USAGE;
		}
	}
	if (optind >= argc || argc - optind > 2) {
		fprintf(stderr, "usage: reconcile secret decrypt [-e <env>] "
				"[--force] <name> [<dir>] | <file>\n");
		return RC_EXIT_USAGE;
	}
	arg = argv[optind];
	if (optind + 1 < argc)
		dir = argv[optind + 1];
	if (!tty && !force) {
		fprintf(stderr, "error: standard output is not a terminal: "
				"reconcile prints a secret value only to a "
				"terminal, so that it does not end up in a "
				"file, a pipe or a CI log; pass --force to "
				"print it anyway\n");
		return RC_EXIT_FAIL;
	}
	if (!env && optind + 1 == argc && stat(arg, &st) == 0 &&
	    S_ISREG(st.st_mode)) {
		if (read_path(&text, arg) < 0 ||
		    decrypt_text(&plain, text.ptr, text.len, arg) < 0)
			goto fail;
	} else {
		if (config_open(&cfg, dir) < 0)
			goto done;
		find_values(cfg, dir, env, arg, &v, &n);
		if (n == 0) {
			fprintf(stderr, "error: no encrypted value '%s'%s%s%s "
					"in '%s'\n",
				arg, env ? " in environment '" : "",
				env ? env : "", env ? "'" : "", dir);
			goto done;
		}
		if (n > 1) {
			fprintf(stderr, "error: there are %zu values '%s':\n",
				n, arg);
			for (size_t i = 0; i < n; i++)
				fprintf(stderr, "  %s\n", v[i].where);
			fprintf(stderr, "name the environment with -e\n");
			goto done;
		}
		if (decrypt_text(&plain, v[0].text, v[0].len, v[0].where) < 0)
			goto fail;
	}
	fwrite(plain.ptr, 1, plain.len, stdout);
	if (tty && plain.len && plain.ptr[plain.len - 1] != '\n')
		fputc('\n', stdout);
	fflush(stdout);
	code = RC_EXIT_OK;
	goto done;
fail:
	fail();
done:
	for (size_t i = 0; i < n; i++) {
		free(v[i].where);
		free(v[i].text);
	}
	free(v);
	wipe(&plain);
	rc_buf_release(&text);
	rc_config_free(cfg);
	return code;
}

/* --------------------------------------------------------------- edit */

/* The private directory and file of an edit, for the signal handler. */
static char edit_dir[4096];
static char edit_file[4096];

/* Overwrites path with zeros and unlinks it (async-signal-safe). */
static void zero_unlink(const char *path)
{
	static const char zeros[4096];
	struct stat st;
	int fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd >= 0) {
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
			off_t left = st.st_size;

			while (left > 0) {
				size_t k = left > (off_t)sizeof(zeros)
						   ? sizeof(zeros)
						   : (size_t)left;
				ssize_t w = write(fd, zeros, k);

				if (w <= 0)
					break;
				left -= w;
			}
			fsync(fd);
		}
		close(fd);
	}
	unlink(path);
}

static void edit_signal(int sig)
{
	if (edit_file[0])
		zero_unlink(edit_file);
	if (edit_dir[0])
		rmdir(edit_dir);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Wipes every file the editor left in the private directory (swap and
 * backup files too), then removes it. */
static void edit_cleanup(void)
{
	DIR *d;
	struct dirent *de;

	if (!edit_dir[0])
		return;
	d = opendir(edit_dir);
	while (d && (de = readdir(d)) != NULL) {
		rc_buf p = RC_BUF_INIT;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		rc_buf_printf(&p, "%s/%s", edit_dir, de->d_name);
		zero_unlink(p.ptr);
		rc_buf_release(&p);
	}
	if (d)
		closedir(d);
	rmdir(edit_dir);
	edit_dir[0] = edit_file[0] = '\0';
}

/* Runs $EDITOR (else vi), split on spaces, with path; 0 when it exited
 * with status 0. */
static int run_editor(const char *path)
{
	const char *ed = getenv("EDITOR");
	char *copy, **args = NULL, *p;
	size_t n = 0, cap = 0;
	pid_t pid;
	int status, rc = 0;

	if (!ed || !*ed)
		ed = "vi";
	copy = rc_strdup(ed);
	for (p = copy; *p;) {
		while (*p == ' ')
			*p++ = '\0';
		if (!*p)
			break;
		RC_GROW(args, cap, n + 2);
		args[n++] = p;
		while (*p && *p != ' ')
			p++;
	}
	RC_GROW(args, cap, n + 2);
	args[n++] = (char *)(uintptr_t)path;
	args[n] = NULL;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		rc = rc_error_set_os("cannot start the editor");
	} else if (pid == 0) {
		execvp(args[0], args);
		fprintf(stderr, "error: cannot run the editor '%s': %s\n",
			args[0], strerror(errno));
		_exit(127);
	} else {
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			rc = rc_error_set(RC_ERROR, RC_ECLASS_OS,
					  "the editor '%s' failed (%s %d)",
					  args[0],
					  WIFEXITED(status) ? "exit status"
							    : "signal",
					  WIFEXITED(status)
						  ? WEXITSTATUS(status)
						  : WTERMSIG(status));
	}
	free(args);
	free(copy);
	return rc;
}

/* The recipients of an age file of the configuration in the current
 * directory: those of the environment whose {file:} secret it is, else
 * the top level's. */
static int file_recipients(rc_age_recipient_list *rs, const char *file)
{
	rc_config *cfg = NULL;
	const rc_argv *ra = NULL;
	const char *who = NULL;
	char *want = realpath(file, NULL);
	int rc = -1;

	if (config_open(&cfg, ".") < 0) {
		fprintf(stderr, "hint: run in the configuration's directory, "
				"or name the recipients with -r\n");
		free(want);
		rc_config_free(cfg);
		return -2;
	}
	for (size_t e = 0; e < cfg->nenvs && !ra; e++) {
		for (size_t s = 0; s < cfg->envs[e].nsecrets && !ra; s++) {
			const rc_secret *sec = &cfg->envs[e].secrets[s];
			char *got;

			if (sec->kind != RC_SECRET_FILE)
				continue;
			got = realpath(sec->ref, NULL);
			if (got && want && !strcmp(got, want)) {
				ra = &cfg->envs[e].recipients;
				who = cfg->envs[e].name;
			}
			free(got);
		}
	}
	if (!ra)
		ra = &cfg->recipients;
	rc = recipients_parse(rs, ra, who);
	free(want);
	rc_config_free(cfg);
	return rc;
}

static int secret_edit(int argc, char **argv)
{
	static const struct option opts[] = {
		{"recipient", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	const char *file, *base;
	rc_age_recipient_list rs = {0};
	rc_age_info info;
	rc_buf text = RC_BUF_INIT, plain = RC_BUF_INIT, edited = RC_BUF_INIT,
	       out = RC_BUF_INIT, tmpl = RC_BUF_INIT;
	struct sigaction sa, old_int, old_term, old_hup;
	bool armored;
	int c, fd, code = RC_EXIT_FAIL;

	optind = 1;
	while ((c = getopt_long(argc, argv, "r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': {
			rc_age_recipient *r;

			if (rc_age_recipient_parse(&r, optarg) < 0) {
				rc_age_recipient_list_release(&rs);
				return fail();
			}
			rc_age_recipient_list_add(&rs, r);
			break;
		}
		case 'h':
			usage(stdout);
			return RC_EXIT_OK;
		default:
			usage(stderr);
			rc_age_recipient_list_release(&rs);
			return RC_EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, "usage: reconcile secret edit [-r <recipient>]... "
				"<file>\n");
		rc_age_recipient_list_release(&rs);
		return RC_EXIT_USAGE;
	}
	file = argv[optind];
	if (read_path(&text, file) < 0)
		goto fail;
	if (rc_age_inspect(&info, text.ptr, text.len) < 0) {
		rc_error_prefix("'%s'", file);
		goto fail;
	}
	armored = info.armored;
	rc_age_info_release(&info);
	if (!rs.count) {
		int r = file_recipients(&rs, file);

		if (r == -2)
			goto done;
		if (r < 0)
			goto fail;
	}
	if (decrypt_text(&plain, text.ptr, text.len, file) < 0)
		goto fail;

	/* a private directory, then the file, never readable by others */
	base = getenv("XDG_RUNTIME_DIR");
	if (!base || !*base || access(base, W_OK) < 0)
		base = "/tmp";
	rc_buf_printf(&tmpl, "%s/reconcile-edit-XXXXXX", base);
	if (tmpl.len >= sizeof(edit_dir) - 64 || !mkdtemp(tmpl.ptr)) {
		rc_error_set_os("cannot make a private directory in '%s'", base);
		goto fail;
	}
	memcpy(edit_dir, tmpl.ptr, tmpl.len + 1);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = edit_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGHUP, &sa, &old_hup);
	rc_buf_puts(&tmpl, "/secret-XXXXXX");
	fd = mkstemp(tmpl.ptr);
	if (fd < 0) {
		rc_error_set_os("cannot make a private file in '%s'", edit_dir);
		goto restore;
	}
	memcpy(edit_file, tmpl.ptr, tmpl.len + 1);
	if (fchmod(fd, 0600) < 0 || rc_state_write_all(fd, plain.ptr, plain.len) < 0) {
		rc_error_set_os("cannot write '%s'", edit_file);
		close(fd);
		goto restore;
	}
	close(fd);
	if (run_editor(edit_file) < 0) {
		rc_error_prefix("'%s' left unchanged", file);
		goto restore;
	}
	if (read_path(&edited, edit_file) < 0)
		goto restore;
	rc_secret_register(edited.ptr);
	if (edited.len == plain.len &&
	    !CRYPTO_memcmp(edited.ptr, plain.ptr, plain.len)) {
		fprintf(stderr, "%s: unchanged\n", file);
		code = RC_EXIT_OK;
		goto restore;
	}
	if (rc_age_encrypt(&out, edited.ptr, edited.len, &rs,
			   armored ? RC_AGE_ARMOR : 0) < 0 ||
	    write_atomic(file, out.ptr, out.len) < 0)
		goto restore;
	fprintf(stderr, "%s: re-encrypted to %zu recipient%s\n", file,
		rs.count, rs.count == 1 ? "" : "s");
	code = RC_EXIT_OK;
restore:
	edit_cleanup();
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGHUP, &old_hup, NULL);
	if (code == RC_EXIT_OK)
		goto done;
fail:
	fail();
done:
	wipe(&plain);
	wipe(&edited);
	rc_buf_release(&text);
	rc_buf_release(&out);
	rc_buf_release(&tmpl);
	rc_age_recipient_list_release(&rs);
	return code;
}

/* -------------------------------------------------------------- rekey */

typedef struct {
	const char *rel;   /* repository-relative (borrowed) */
	rc_buf text;       /* the file as read */
	rc_yaml_block *b;  /* its encrypted blocks */
	size_t nb;
	char **values;     /* the new armored text of each */
	rc_buf out;        /* the new file */
} rekey_file;

/* Re-encrypts one age text to ra; the result appended to out. */
static int rekey_one(rc_buf *out, const char *data, size_t len,
		     const rc_argv *ra, const char *who, unsigned flags,
		     const char *what)
{
	rc_age_recipient_list rs = {0};
	rc_buf plain = RC_BUF_INIT;
	int rc;

	rc = recipients_parse(&rs, ra, who);
	if (rc == 0)
		rc = decrypt_text(&plain, data, len, what);
	if (rc == 0)
		rc = rc_age_encrypt(out, plain.ptr, plain.len, &rs, flags);
	wipe(&plain);
	rc_age_recipient_list_release(&rs);
	return rc;
}

static int secret_rekey(int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	const char *dir = ".";
	rc_config *cfg = NULL;
	const char **names = NULL;
	rekey_file *files = NULL;
	size_t nfiles = 0, nvalues = 0, nchanged = 0, failures = 0;
	struct {
		char *path;
		rc_buf out;
	} *agefiles = NULL;
	size_t nage = 0, capage = 0;
	int c, code = RC_EXIT_FAIL;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return RC_EXIT_OK;
		}
		usage(stderr);
		return RC_EXIT_USAGE;
	}
	if (argc - optind > 1) {
		fprintf(stderr, "usage: reconcile secret rekey [<dir>]\n");
		return RC_EXIT_USAGE;
	}
	if (optind < argc)
		dir = argv[optind];
	if (config_open(&cfg, dir) < 0)
		goto done;
	names = config_files(cfg, &nfiles);
	files = rc_calloc(nfiles, sizeof(*files));
	/* everything is decrypted and re-encrypted in memory first: one
	 * value that cannot be leaves every file as it was */
	for (size_t f = 0; f < nfiles; f++) {
		rekey_file *rf = &files[f];
		rc_buf path = RC_BUF_INIT;

		rf->rel = names[f];
		rc_buf_init(&rf->text, RC_BUF_DEFAULT_MAX);
		rc_buf_init(&rf->out, RC_BUF_DEFAULT_MAX);
		rc_buf_printf(&path, "%s/%s", dir, rf->rel);
		if (read_path(&rf->text, path.ptr) < 0) {
			fail();
			failures++;
			rc_buf_release(&path);
			continue;
		}
		rc_buf_release(&path);
		rc_yaml_blocks_find(rf->text.ptr, rf->text.len, &rf->b, &rf->nb);
		rf->values = rc_calloc(rf->nb + 1, sizeof(char *));
		for (size_t i = 0; i < rf->nb; i++) {
			const rc_argv *ra;
			const char *who = NULL;
			rc_buf what = RC_BUF_INIT, armored = RC_BUF_INIT;

			rc_buf_printf(&what, "%s:%d: ", rf->rel, rf->b[i].line);
			rc_yaml_block_describe(&what, &rf->b[i]);
			if (block_recipients(cfg, rf->rel, &rf->b[i], &ra,
					     &who) < 0 ||
			    rekey_one(&armored, rf->b[i].value,
				      strlen(rf->b[i].value), ra, who,
				      RC_AGE_ARMOR, what.ptr) < 0) {
				if (!strstr(rc_error_last()->message, what.ptr))
					rc_error_prefix("%s", what.ptr);
				fail();
				failures++;
			} else {
				rf->values[i] = rc_buf_detach(&armored);
				nvalues++;
			}
			rc_buf_release(&armored);
			rc_buf_release(&what);
		}
	}
	/* {file: PATH} secrets that are age files, each once */
	for (size_t e = 0; e < cfg->nenvs; e++) {
		const rc_env *en = &cfg->envs[e];

		for (size_t s = 0; s < en->nsecrets; s++) {
			const rc_secret *sec = &en->secrets[s];
			rc_buf path = RC_BUF_INIT, text = RC_BUF_INIT;
			rc_age_info info;
			bool dup = false;

			if (sec->kind != RC_SECRET_FILE)
				continue;
			rc_buf_printf(&path, "%s/%s", dir, sec->ref);
			for (size_t k = 0; k < nage && !dup; k++)
				dup = !strcmp(agefiles[k].path, path.ptr);
			if (dup || read_path(&text, path.ptr) < 0 ||
			    rc_age_inspect(&info, text.ptr, text.len) < 0) {
				/* not an age file: not ours to rekey */
				rc_error_clear();
				wipe(&text);
				rc_buf_release(&path);
				continue;
			}
			RC_GROW(agefiles, capage, nage + 1);
			agefiles[nage].path = rc_strdup(path.ptr);
			rc_buf_init(&agefiles[nage].out, SECRET_MAX);
			if (rekey_one(&agefiles[nage].out, text.ptr, text.len,
				      &en->recipients, en->name,
				      info.armored ? RC_AGE_ARMOR : 0,
				      sec->ref) < 0) {
				fail();
				failures++;
			} else {
				nvalues++;
			}
			nage++;
			rc_age_info_release(&info);
			wipe(&text);
			rc_buf_release(&path);
		}
	}
	if (failures) {
		fprintf(stderr, "error: %zu value%s could not be rekeyed; no "
				"file was changed\n",
			failures, failures == 1 ? "" : "s");
		goto done;
	}
	for (size_t f = 0; f < nfiles; f++) {
		rekey_file *rf = &files[f];
		rc_buf path = RC_BUF_INIT;

		if (!rf->nb)
			continue;
		rc_yaml_blocks_replace(&rf->out, rf->text.ptr, rf->text.len,
				       rf->b, rf->nb,
				       (const char *const *)rf->values);
		rc_buf_printf(&path, "%s/%s", dir, rf->rel);
		if (write_atomic(path.ptr, rf->out.ptr, rf->out.len) < 0) {
			rc_buf_release(&path);
			fail();
			goto done;
		}
		rc_buf_release(&path);
		nchanged++;
	}
	for (size_t k = 0; k < nage; k++) {
		if (write_atomic(agefiles[k].path, agefiles[k].out.ptr,
				 agefiles[k].out.len) < 0) {
			fail();
			goto done;
		}
		nchanged++;
	}
	printf("rekeyed %zu value%s in %zu file%s\n", nvalues,
	       nvalues == 1 ? "" : "s", nchanged, nchanged == 1 ? "" : "s");
	code = RC_EXIT_OK;
done:
	for (size_t f = 0; f < nfiles; f++) {
		for (size_t i = 0; i < files[f].nb; i++)
			free(files[f].values[i]);
		free(files[f].values);
		rc_yaml_blocks_free(files[f].b, files[f].nb);
		rc_buf_release(&files[f].text);
		rc_buf_release(&files[f].out);
	}
	for (size_t k = 0; k < nage; k++) {
		free(agefiles[k].path);
		rc_buf_release(&agefiles[k].out);
	}
	free(agefiles);
	free(files);
	free(names);
	rc_config_free(cfg);
	return code;
}

/* ------------------------------------------------------------- keygen */

/* Creates the missing parents of path, mode 0700. */
static int mkparents(const char *path)
{
	char *p = rc_strdup(path), *s;
	int rc = 0;

	for (s = p + 1; (s = strchr(s, '/')) != NULL; s++) {
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST) {
			rc = rc_error_set_os("cannot create '%s'", p);
			break;
		}
		*s = '/';
	}
	free(p);
	return rc;
}

static int secret_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	rc_buf path = RC_BUF_INIT, body = RC_BUF_INIT;
	char *identity = NULL, *recipient = NULL, now[RC_TIME_SIZE];
	const char *cfgdir = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	int c, fd = -1, code = RC_EXIT_FAIL;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			rc_buf_clear(&path);
			rc_buf_puts(&path, optarg);
			break;
		case 'h':
			usage(stdout);
			rc_buf_release(&path);
			return RC_EXIT_OK;
		default:
			usage(stderr);
			rc_buf_release(&path);
			return RC_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "usage: reconcile secret keygen [-o <file>]\n");
		rc_buf_release(&path);
		return RC_EXIT_USAGE;
	}
	if (!path.len) {
		if (cfgdir && *cfgdir)
			rc_buf_printf(&path, "%s/reconcile/age/keys.txt", cfgdir);
		else if (home && *home)
			rc_buf_printf(&path, "%s/.config/reconcile/age/keys.txt",
				      home);
		else {
			fprintf(stderr, "error: neither HOME nor "
					"XDG_CONFIG_HOME is set: name the "
					"file with -o\n");
			goto done;
		}
	}
	if (mkparents(path.ptr) < 0)
		goto fail;
	fd = open(path.ptr, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0 && errno == EEXIST) {
		fprintf(stderr, "error: '%s' already exists: reconcile does "
				"not overwrite a key file; remove it, or name "
				"another with -o\n",
			path.ptr);
		goto done;
	}
	if (fd < 0) {
		rc_error_set_os("cannot create '%s'", path.ptr);
		goto fail;
	}
	if (rc_age_keygen(&identity, &recipient) < 0)
		goto fail;
	rc_time_now(now);
	rc_buf_printf(&body, "# created: %s\n# public key: %s\n%s\n", now,
		      recipient, identity);
	if (fchmod(fd, 0600) < 0 || rc_state_write_all(fd, body.ptr, body.len) < 0 ||
	    fsync(fd) < 0) {
		rc_error_set_os("cannot write '%s'", path.ptr);
		unlink(path.ptr);
		goto fail;
	}
	printf("%s\n", recipient);
	fprintf(stderr, "wrote the identity to %s\n", path.ptr);
	code = RC_EXIT_OK;
	goto done;
fail:
	fail();
done:
	if (fd >= 0)
		close(fd);
	if (identity)
		OPENSSL_cleanse(identity, strlen(identity));
	free(identity);
	free(recipient);
	wipe(&body);
	rc_buf_release(&path);
	return code;
}

int rc_cmd_secret(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(int, char **);
	} subs[] = {
		{"encrypt", secret_encrypt}, {"decrypt", secret_decrypt},
		{"edit", secret_edit},       {"rekey", secret_rekey},
		{"keygen", secret_keygen},
	};

	if (argc < 2) {
		usage(stderr);
		return RC_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return RC_EXIT_OK;
	}
	for (size_t i = 0; i < RC_ARRAY_SIZE(subs); i++)
		if (!strcmp(argv[1], subs[i].name))
			return subs[i].run(argc - 1, argv + 1);
	fprintf(stderr, "error: unknown command 'secret %s'\n", argv[1]);
	usage(stderr);
	return RC_EXIT_USAGE;
}
