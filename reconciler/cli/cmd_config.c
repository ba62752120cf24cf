/* reconcile validate, reconcile show */
#include "reconciler/base/common.h"
#include "reconciler/cli/cli.h"
#include "reconciler/base/log.h"
#include "schema/emit.h"
#include "schema/load.h"

#include <getopt.h>

bool rc_use_color(FILE *f)
{
	const char *term = getenv("TERM");

	if (getenv("NO_COLOR") && *getenv("NO_COLOR"))
		return false;
	if (term && !strcmp(term, "dumb"))
		return false;
	return isatty(fileno(f));
}

static void print_summary(const rc_diags *d, FILE *f)
{
	if (d->nerrors)
		fprintf(f, "%zu error%s", d->nerrors,
			d->nerrors == 1 ? "" : "s");
	if (d->nwarnings)
		fprintf(f, "%s%zu warning%s", d->nerrors ? ", " : "",
			d->nwarnings, d->nwarnings == 1 ? "" : "s");
	if (d->nerrors || d->nwarnings)
		fputc('\n', f);
}

static json_t *diags_json(const rc_diags *d)
{
	static const char *sev[] = {"error", "warning", "note"};
	json_t *arr = json_array();

	for (size_t i = 0; i < d->n; i++) {
		const rc_diag *dg = &d->items[i];
		json_t *o = json_object();
		rc_buf msg = RC_BUF_INIT;

		if (dg->loc.file)
			json_object_set_new(o, "file", json_string(dg->loc.file));
		if (dg->loc.line) {
			json_object_set_new(o, "line", json_integer(dg->loc.line));
			json_object_set_new(o, "column",
					    json_integer(dg->loc.col));
		}
		json_object_set_new(o, "severity",
				    json_string(sev[dg->severity]));
		rc_buf_puts(&msg, dg->message);
		rc_redact(&msg);
		json_object_set_new(o, "message", json_string(msg.ptr));
		rc_buf_release(&msg);
		json_array_append_new(arr, o);
	}
	return arr;
}

static int print_json(json_t *v, FILE *f)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	if (!s)
		return -1;
	fputs(s, f);
	fputc('\n', f);
	free(s);
	return 0;
}

/* The optional positional <dir> after the options; -1 (after a message)
 * when more arguments follow. */
static int take_dir(int argc, char **argv, const char **dir)
{
	if (optind < argc)
		*dir = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "error: unexpected argument '%s'\n",
			argv[optind]);
		return -1;
	}
	return 0;
}

int rc_cmd_validate(int argc, char **argv)
{
	static const struct option opts[] = {
		{"output", required_argument, NULL, 'o'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	const char *dir = ".", *output = "text";
	bool quiet = false;
	rc_load_opts lo = {.offline = true};
	rc_config *cfg = NULL;
	rc_diags d;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			output = optarg;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			rc_command_usage(rc_command_find("validate"), stdout);
			return RC_EXIT_OK;
		default:
			rc_command_usage(rc_command_find("validate"), stderr);
			return RC_EXIT_USAGE;
		}
	}
	if (strcmp(output, "text") && strcmp(output, "json")) {
		fprintf(stderr, "error: unknown output format '%s' (text or "
				"json)\n",
			output);
		return RC_EXIT_USAGE;
	}
	if (take_dir(argc, argv, &dir) < 0)
		return RC_EXIT_USAGE;
	rc_diags_init(&d);
	rc = rc_config_load(&cfg, dir, &lo, &d);
	if (!strcmp(output, "json")) {
		json_t *o = json_object();

		json_object_set_new(o, "valid", json_boolean(rc == 0));
		json_object_set_new(o, "errors", json_integer((json_int_t)d.nerrors));
		json_object_set_new(o, "warnings",
				    json_integer((json_int_t)d.nwarnings));
		json_object_set_new(o, "diagnostics", diags_json(&d));
		print_json(o, stdout);
		json_decref(o);
	} else {
		rc_diags_print(&d, stderr, rc_use_color(stderr));
		print_summary(&d, stderr);
		if (rc == 0 && !quiet)
			printf("%s: valid: %zu environment%s\n", dir, cfg->nenvs,
			       cfg->nenvs == 1 ? "" : "s");
	}
	rc_config_free(cfg);
	rc_diags_release(&d);
	return rc == 0 ? RC_EXIT_OK : RC_EXIT_FAIL;
}

int rc_cmd_show(int argc, char **argv)
{
	static const struct option opts[] = {
		{"env", required_argument, NULL, 'e'},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	const char *dir = ".", *output = "yaml";
	const char **only = NULL;
	size_t nonly = 0;
	rc_load_opts lo = {.offline = false};
	rc_config *cfg = NULL;
	rc_diags d;
	int c, rc, exit_code = RC_EXIT_OK;
	json_t *j;

	optind = 1;
	while ((c = getopt_long(argc, argv, "e:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'e':
			only = rc_realloc(only, (nonly + 1) * sizeof(*only));
			only[nonly++] = optarg;
			break;
		case 'o':
			output = optarg;
			break;
		case 'h':
			rc_command_usage(rc_command_find("show"), stdout);
			free(only);
			return RC_EXIT_OK;
		default:
			rc_command_usage(rc_command_find("show"), stderr);
			free(only);
			return RC_EXIT_USAGE;
		}
	}
	if (strcmp(output, "yaml") && strcmp(output, "json")) {
		fprintf(stderr, "error: unknown output format '%s' (yaml or "
				"json)\n",
			output);
		free(only);
		return RC_EXIT_USAGE;
	}
	if (take_dir(argc, argv, &dir) < 0) {
		free(only);
		return RC_EXIT_USAGE;
	}
	lo.only = only;
	lo.nonly = nonly;
	rc_diags_init(&d);
	rc = rc_config_load(&cfg, dir, &lo, &d);
	rc_diags_print(&d, stderr, rc_use_color(stderr));
	if (rc < 0) {
		print_summary(&d, stderr);
		exit_code = RC_EXIT_FAIL;
		goto done;
	}
	for (size_t i = 0; i < nonly; i++) {
		bool found = false;

		for (size_t k = 0; k < cfg->nenvs && !found; k++)
			found = !strcmp(cfg->envs[k].name, only[i]) ||
				(cfg->envs[k].generator &&
				 !strcmp(cfg->envs[k].generator, only[i]));
		if (!found) {
			fprintf(stderr, "error: no environment '%s' in '%s'\n",
				only[i], dir);
			exit_code = RC_EXIT_FAIL;
			goto done;
		}
	}
	j = rc_config_to_json(cfg, only, nonly);
	if (!strcmp(output, "json")) {
		print_json(j, stdout);
	} else {
		rc_buf out = RC_BUF_INIT;

		if (rc_json_to_yaml(j, &out) < 0) {
			fprintf(stderr, "error: cannot write YAML\n");
			exit_code = RC_EXIT_FAIL;
		}
		fwrite(out.ptr, 1, out.len, stdout);
		rc_buf_release(&out);
	}
	json_decref(j);
done:
	free(only);
	rc_config_free(cfg);
	rc_diags_release(&d);
	return exit_code;
}
