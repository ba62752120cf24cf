/* reconcile plan, apply, destroy, history, rollback */
#include "reconciler/base/common.h"
#include "reconciler/cli/cli.h"
#include "reconciler/engine.h"
#include "reconciler/base/log.h"
#include "state/history.h"

#include <getopt.h>

typedef struct {
	rc_engine_opts eo;
	const char **envs;
	size_t nenvs;
	const char *output; /* text or json */
	const char *save;   /* plan -o FILE */
	bool auto_approve;
	bool force_rollback;
	const char *to;     /* rollback --to COMMIT */
	const char *hook_outcomes[64]; /* apply --hook-outcome NAME=STATE */
	const char *positional;
	const char *cmd;    /* "apply", "destroy", "rollback" */
	int argc;           /* the command's own arguments, as typed */
	char **argv;
} cli_opts;

enum { OPT_REF = 256, OPT_STATE, OPT_AUTO, OPT_FORCE, OPT_TO, OPT_SOURCE,
       OPT_DESTROY, OPT_DRY_RUN, OPT_HOOK_OUTCOME };

/* Parses the options every engine command shares; 0, or an exit code. */
static int parse(cli_opts *o, int argc, char **argv, const char *cmd)
{
	static const struct option opts[] = {
		{"env", required_argument, NULL, 'e'},
		{"output", required_argument, NULL, 'o'},
		{"out", required_argument, NULL, 'O'},
		{"ref", required_argument, NULL, OPT_REF},
		{"state-dir", required_argument, NULL, OPT_STATE},
		{"auto-approve", no_argument, NULL, OPT_AUTO},
		{"force", no_argument, NULL, OPT_FORCE},
		{"to", required_argument, NULL, OPT_TO},
		{"source", required_argument, NULL, OPT_SOURCE},
		{"destroy", no_argument, NULL, OPT_DESTROY},
		{"server-dry-run", no_argument, NULL, OPT_DRY_RUN},
		{"concurrency", required_argument, NULL, 'j'},
		{"hook-outcome", required_argument, NULL, OPT_HOOK_OUTCOME},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	int c;

	memset(o, 0, sizeof(*o));
	o->output = "text";
	o->cmd = cmd;
	o->argc = argc;
	o->argv = argv;
	optind = 1;
	while ((c = getopt_long(argc, argv, "e:o:j:h", opts, NULL)) != -1) {
		switch (c) {
		case 'e':
			o->envs = rc_realloc(o->envs, (o->nenvs + 1) * sizeof(char *));
			o->envs[o->nenvs++] = optarg;
			break;
		case 'o':
			/* plan -o FILE saves; --output FORMAT chooses text/json */
			if (!strcmp(optarg, "text") || !strcmp(optarg, "json"))
				o->output = optarg;
			else
				o->save = optarg;
			break;
		case 'O':
			o->save = optarg;
			break;
		case OPT_REF:
			o->eo.ref = optarg;
			break;
		case OPT_STATE:
			o->eo.state_dir = optarg;
			break;
		case OPT_AUTO:
			o->auto_approve = true;
			break;
		case OPT_FORCE:
			o->eo.force = true;
			o->force_rollback = true;
			break;
		case OPT_TO:
			o->to = optarg;
			break;
		case OPT_SOURCE:
			o->eo.source = optarg;
			break;
		case OPT_DESTROY:
			o->eo.destroy = true;
			break;
		case OPT_DRY_RUN:
			o->eo.server_dry_run = true;
			break;
		case 'j':
			o->eo.concurrency = (int)strtol(optarg, NULL, 10);
			break;
		case OPT_HOOK_OUTCOME: {
			const char *eq = strrchr(optarg, '=');

			if (strcmp(cmd, "apply") || !eq || eq == optarg ||
			    (strcmp(eq + 1, "succeeded") &&
			     strcmp(eq + 1, "failed")) ||
			    o->eo.nhook_outcomes ==
				    RC_ARRAY_SIZE(o->hook_outcomes)) {
				fprintf(stderr,
					"error: --hook-outcome takes "
					"NAME=succeeded or NAME=failed (apply "
					"only), not '%s'\n",
					optarg);
				return RC_EXIT_USAGE;
			}
			o->hook_outcomes[o->eo.nhook_outcomes++] = optarg;
			break;
		}
		case 'h':
			rc_command_usage(rc_command_find(cmd), stdout);
			return RC_EXIT_OK + 1000;
		default:
			rc_command_usage(rc_command_find(cmd), stderr);
			return RC_EXIT_USAGE;
		}
	}
	if (optind < argc)
		o->positional = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "error: unexpected argument '%s'\n", argv[optind]);
		return RC_EXIT_USAGE;
	}
	o->eo.envs = o->envs;
	o->eo.nenvs = o->nenvs;
	o->eo.hook_outcomes = o->hook_outcomes;
	o->eo.out = stdout;
	return 0;
}

static int fail(rc_engine *e)
{
	const rc_error *err = rc_error_last();
	rc_buf b = RC_BUF_INIT;

	if (e && e->diags.n) {
		rc_diags_print(&e->diags, stderr, rc_use_color(stderr));
		fprintf(stderr, "%zu error%s\n", e->diags.nerrors,
			e->diags.nerrors == 1 ? "" : "s");
	} else {
		/* where the configuration says what failed, as diagnostics
		   point: "file:line:col: error: ..." */
		if (err && err->loc.file && err->loc.line > 0)
			rc_buf_printf(&b, "%s:%d:%d: ", err->loc.file,
				      err->loc.line, err->loc.col);
		rc_buf_printf(&b, "error: %s\n",
			      err ? err->message : "unknown error");
		rc_redact(&b);
		fputs(b.ptr, stderr);
	}
	rc_buf_release(&b);
	return RC_EXIT_FAIL;
}

/* Reports runs interrupted by a crash that no later run has covered. */
static void report_interrupted(const rc_engine *e)
{
	rc_run_summary *runs = NULL;
	size_t n = 0;

	if (rc_history_load(&runs, &n, e->state_dir, NULL) < 0) {
		rc_error_clear();
		return;
	}
	/* only the newest run can be the one left unfinished */
	if (n && runs[0].status == RC_RUN_INTERRUPTED)
		fprintf(stderr,
			"warning: run %s (%s) was interrupted with %zu action%s "
			"unfinished; this plan starts from what actually runs\n",
			runs[0].id, runs[0].time ? runs[0].time : "?",
			runs[0].pending, runs[0].pending == 1 ? "" : "s");
	rc_history_free(runs, n);
}

static void print_plan(const rc_plan *p, const char *output)
{
	if (!strcmp(output, "json")) {
		json_t *j = rc_plan_to_json(p);
		char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

		puts(s);
		free(s);
		json_decref(j);
	} else {
		rc_buf b = RC_BUF_INIT;

		rc_plan_render_text(p, &b, rc_use_color(stdout));
		rc_redact(&b);
		fputs(b.ptr, stdout);
		rc_buf_release(&b);
	}
}

static int save_plan(const rc_plan *p, const char *path)
{
	json_t *j = rc_plan_to_json(p);
	rc_buf tmp = RC_BUF_INIT_MAX(PATH_MAX * 2);
	int rc = 0;

	rc_buf_printf(&tmp, "%s.tmp", path);
	if (json_dump_file(j, tmp.ptr, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0 ||
	    rename(tmp.ptr, path) < 0)
		rc = rc_error_set_os("cannot write the plan to '%s'", path);
	json_decref(j);
	rc_buf_release(&tmp);
	return rc;
}

/* Saves p to path and, unless quiet, says how to apply it; the exit code
 * of a plan (0 no changes, 2 changes, 1 the file could not be written). */
static int save_and_say(const rc_plan *p, const char *path, bool quiet)
{
	if (save_plan(p, path) < 0)
		return fail(NULL);
	if (!quiet)
		printf("Saved the plan to %s: review it, then apply exactly it "
		       "with 'reconcile apply %s'.\n",
		       path, path);
	return p->n ? RC_EXIT_CHANGES : RC_EXIT_OK;
}

int rc_cmd_plan(int argc, char **argv)
{
	cli_opts o;
	rc_engine *e = NULL;
	rc_plan p;
	int rc = parse(&o, argc, argv, "plan"), code;

	if (rc)
		return rc == 1000 ? RC_EXIT_OK : rc;
	if (o.positional)
		o.eo.source = o.positional;
	if (rc_engine_open(&e, &o.eo) < 0) {
		code = fail(e);
		goto out;
	}
	report_interrupted(e);
	if (rc_engine_plan(e, &p) < 0) {
		rc_plan_release(&p);
		code = fail(e);
		goto out;
	}
	print_plan(&p, o.output);
	code = o.save ? save_and_say(&p, o.save, !strcmp(o.output, "json"))
		      : p.n ? RC_EXIT_CHANGES
			    : RC_EXIT_OK;
	rc_plan_release(&p);
out:
	rc_engine_free(e);
	free(o.envs);
	return code;
}

/* Reads one line from the terminal into line (without its newline);
 * false at the end of input. */
static bool read_answer(char *line, size_t n)
{
	fflush(stdout);
	if (!fgets(line, (int)n, stdin))
		return false;
	line[strcspn(line, "\n")] = '\0';
	return true;
}

/* Asks on a terminal; refuses without one. */
static bool approved(const cli_opts *o, const char *what)
{
	char line[64];

	if (o->auto_approve)
		return true;
	if (!isatty(fileno(stdin))) {
		fprintf(stderr, "error: refusing to %s without confirmation: "
				"stdin is not a terminal (use --auto-approve, "
				"or apply a saved plan)\n",
			what);
		return false;
	}
	printf("\nDo you want to %s? Only 'yes' will be accepted: ", what);
	if (!read_answer(line, sizeof(line)) || strcmp(line, "yes")) {
		fprintf(stderr, "%s cancelled.\n", what);
		return false;
	}
	return true;
}

/* Appends a word as a shell reads it back: quoted when it has to be. */
static void put_word(rc_buf *b, const char *w)
{
	if (*w && strspn(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "0123456789_./:=@%+,-") == strlen(w)) {
		rc_buf_printf(b, " %s", w);
		return;
	}
	rc_buf_puts(b, " '");
	for (; *w; w++)
		if (*w == '\'')
			rc_buf_puts(b, "'\\''");
		else
			rc_buf_putc(b, *w);
	rc_buf_putc(b, '\'');
}

/* The command as it was typed, for env alone: without --auto-approve, -e
 * and -o, with -e env; as `name` (apply becomes plan to save a plan). */
static void command_for(rc_buf *b, const cli_opts *o, const char *name,
			const char *env)
{
	rc_buf_printf(b, "reconcile %s", name);
	for (int i = 1; i < o->argc; i++) {
		const char *a = o->argv[i];

		if (!strcmp(a, "--auto-approve"))
			continue;
		if (!strcmp(a, "-e") || !strcmp(a, "--env") ||
		    !strcmp(a, "-o") || !strcmp(a, "--out")) {
			i++;
			continue;
		}
		if (!strncmp(a, "--env=", 6) || !strncmp(a, "--out=", 6) ||
		    (a[0] == '-' && (a[1] == 'e' || a[1] == 'o') && a[2]))
			continue;
		put_word(b, a);
	}
	rc_buf_puts(b, " -e");
	put_word(b, env);
}

/* What a person does to apply a manual environment: save its plan,
 * review it, apply exactly it; or type its name on a terminal. */
static void how_to_approve(rc_buf *b, const cli_opts *o, const char *env)
{
	rc_buf file = RC_BUF_INIT_MAX(4096);
	bool apply = !strcmp(o->cmd, "apply");

	rc_buf_printf(&file, "%s-%s.json", env, apply ? "plan" : o->cmd);
	rc_buf_puts(b, "    ");
	command_for(b, o, apply ? "plan" : o->cmd, env);
	rc_buf_puts(b, " -o");
	put_word(b, file.ptr);
	rc_buf_puts(b, "\n    reconcile apply");
	put_word(b, file.ptr);
	rc_buf_puts(b, "\n  or run '");
	command_for(b, o, o->cmd, env);
	rc_buf_printf(b, "' on a terminal and type '%s' when asked.\n", env);
	rc_buf_release(&file);
}

static bool env_has_actions(const rc_plan *p, const char *env)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->actions[i].env, env))
			return true;
	return false;
}

/*
 * The approval of a plan that is not a saved one. An environment whose
 * policy.apply is manual is applied only when approved: from a saved plan
 * (approved by its review), or here on a terminal, where a person types
 * its name; --auto-approve never approves it. The manual environments not
 * approved are left out of p, with whatever depends on them, and listed
 * with how to apply them; the rest needs --auto-approve or 'yes' on a
 * terminal. 0 to go on with what is left of p, or an exit code.
 */
static int approve(const cli_opts *o, rc_plan *p, const char *what,
		   char **left_out)
{
	rc_buf names = RC_BUF_INIT_MAX(1 << 16);
	bool tty = isatty(fileno(stdin)) != 0;
	bool *leave, *manual_left, any_auto = false;
	rc_buf msg = RC_BUF_INIT_MAX(1 << 20);
	size_t e, nleft = 0;
	int code = 0;

	if (!o->auto_approve && !tty)
		return approved(o, what) ? 0 : RC_EXIT_FAIL;
	leave = rc_calloc(p->nenvs + 1, sizeof(bool));
	manual_left = rc_calloc(p->nenvs + 1, sizeof(bool));
	for (e = 0; e < p->nenvs; e++) {
		char line[256];

		if (!p->env_manual[e] || !env_has_actions(p, p->envs[e]))
			continue;
		if (!o->auto_approve) {
			printf("\nEnvironment '%s' is applied only when approved "
			       "(policy.apply: manual).\nType its name to "
			       "approve its changes above, anything else to "
			       "leave them: ",
			       p->envs[e]);
			if (read_answer(line, sizeof(line)) &&
			    !strcmp(line, p->envs[e]))
				continue;
		}
		leave[e] = manual_left[e] = true;
	}
	if (rc_plan_leave_envs(p, leave))
		for (e = 0; e < p->nenvs; e++) {
			if (!leave[e])
				continue;
			nleft++;
			rc_buf_printf(&names, "%s%s", names.len ? ", " : "",
				      p->envs[e]);
			if (manual_left[e]) {
				rc_buf_printf(&msg,
					      "Left for approval: environment '%s' "
					      "is applied only when approved "
					      "(policy.apply: manual)%s. To apply "
					      "it, save its plan, review it, "
					      "and apply exactly that plan:\n",
					      p->envs[e],
					      o->auto_approve
						      ? "; --auto-approve does not "
							"approve it"
						      : "");
				how_to_approve(&msg, o, p->envs[e]);
			} else {
				rc_buf_printf(&msg,
					      "Left too: environment '%s', whose "
					      "changes wait for an environment "
					      "left for approval.\n",
					      p->envs[e]);
			}
		}
	for (size_t i = 0; i < p->n; i++) {
		e = rc_plan_env_index(p, p->actions[i].env);
		any_auto |= e == SIZE_MAX || !p->env_manual[e];
	}
	if (nleft && p->n == 0) {
		fflush(stdout);
		fprintf(stderr, "\nerror: nothing was applied.\n%s", msg.ptr);
		code = RC_EXIT_FAIL;
	} else {
		if (nleft)
			printf("\n%s", msg.ptr);
		/* typing a manual environment's name approved it; the rest
		 * needs its own approval */
		if (any_auto && !approved(o, what))
			code = RC_EXIT_FAIL;
	}
	free(leave);
	free(manual_left);
	rc_buf_release(&msg);
	*left_out = names.len ? rc_buf_detach(&names) : NULL;
	rc_buf_release(&names);
	return code;
}

/* The end of an apply: what it did, and what it left for approval. */
static int report_apply(rc_engine *e, rc_plan *p, const char *done,
			const char *left)
{
	rc_apply_report rep = {0};
	int code = RC_EXIT_OK;

	printf("\n");
	if (rc_engine_apply(e, p, &rep) < 0) {
		code = fail(NULL);
		if (rep.run_id)
			fprintf(stderr, "run %s: %zu ok, %zu failed, %zu "
					"skipped, %zu unknown; see 'reconcile "
					"history'\n",
				rep.run_id, rep.ok, rep.failed, rep.skipped,
				rep.unknown);
	} else {
		printf("\n%s: %zu action%s in run %s.\n", done, rep.ok,
		       rep.ok == 1 ? "" : "s", rep.run_id);
	}
	if (left)
		printf("Not applied, left for approval: %s (see above).\n",
		       left);
	rc_apply_report_release(&rep);
	return code;
}

static bool is_plan_file(const char *path)
{
	struct stat st;
	size_t len = strlen(path);

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	       len > 5 && !strcmp(path + len - 5, ".json");
}

static int run_apply(cli_opts *o, const char *what)
{
	rc_engine *e = NULL;
	rc_plan p, saved;
	bool have_saved = false;
	char *left = NULL;
	int code = RC_EXIT_OK;

	memset(&saved, 0, sizeof(saved));
	if (o->positional && is_plan_file(o->positional)) {
		json_error_t jerr;
		json_t *j = json_load_file(o->positional, 0, &jerr);

		if (!j) {
			fprintf(stderr, "error: cannot read the plan '%s': %s\n",
				o->positional, jerr.text);
			return RC_EXIT_FAIL;
		}
		if (rc_plan_from_json(&saved, j) < 0) {
			json_decref(j);
			rc_plan_release(&saved);
			return fail(NULL);
		}
		json_decref(j);
		have_saved = true;
		/* the plan's own source, at the ref it was made for */
		o->eo.source = saved.source;
		o->eo.ref = saved.ref;
		/* the plan's own environments */
		o->envs = rc_realloc(o->envs, (saved.nenvs + 1) * sizeof(char *));
		for (size_t i = 0; i < saved.nenvs; i++)
			o->envs[i] = saved.envs[i];
		o->nenvs = saved.nenvs;
		o->eo.envs = o->envs;
		o->eo.nenvs = o->nenvs;
	} else if (o->positional) {
		o->eo.source = o->positional;
	}
	o->eo.progress = isatty(fileno(stdout)) && !getenv("NO_COLOR");
	if (rc_engine_open(&e, &o->eo) < 0) {
		code = fail(e);
		goto out;
	}
	report_interrupted(e);
	if (rc_engine_plan(e, &p) < 0) {
		rc_plan_release(&p);
		code = fail(e);
		goto out;
	}
	if (have_saved) {
		char *id = rc_plan_id(&saved);
		char *run = rc_engine_find_plan_run(e, id);

		free(id);
		if (run || saved.n == 0) {
			if (run)
				printf("Nothing to do: this plan was already "
				       "applied in run %s.\n", run);
			else
				printf("Nothing to do: the plan has no "
				       "changes.\n");
			free(run);
			rc_plan_release(&p);
			goto out;
		}
		if (rc_engine_check_saved(e, &saved, &p) < 0) {
			rc_plan_release(&p);
			code = fail(NULL);
			goto out;
		}
		rc_plan_release(&p);
		p = saved;
		memset(&saved, 0, sizeof(saved));
		print_plan(&p, "text");
	} else {
		print_plan(&p, "text");
		if (o->save) {
			/* destroy -o FILE, rollback --to C -o FILE */
			code = save_and_say(&p, o->save, false);
			rc_plan_release(&p);
			goto out;
		}
		if (p.n == 0) {
			rc_plan_release(&p);
			goto out;
		}
		if ((code = approve(o, &p, what, &left)) != 0) {
			rc_plan_release(&p);
			goto out;
		}
	}
	code = report_apply(e, &p, !strcmp(o->cmd, "rollback") ? "Rolled back"
							       : "Applied",
			    left);
	rc_plan_release(&p);
out:
	rc_plan_release(&saved);
	rc_engine_free(e);
	free(left);
	return code;
}

int rc_cmd_apply(int argc, char **argv)
{
	cli_opts o;
	int rc = parse(&o, argc, argv, "apply"), code;

	if (rc)
		return rc == 1000 ? RC_EXIT_OK : rc;
	if (o.save) {
		fprintf(stderr, "error: apply does not save plans: 'reconcile "
				"plan -o %s' saves one, 'reconcile apply %s' "
				"applies it\n",
			o.save, o.save);
		free(o.envs);
		return RC_EXIT_USAGE;
	}
	code = run_apply(&o, "apply these changes");
	free(o.envs);
	return code;
}

int rc_cmd_destroy(int argc, char **argv)
{
	cli_opts o;
	int rc = parse(&o, argc, argv, "destroy"), code;

	if (rc)
		return rc == 1000 ? RC_EXIT_OK : rc;
	o.eo.destroy = true;
	code = run_apply(&o, "destroy these resources");
	free(o.envs);
	return code;
}

int rc_cmd_history(int argc, char **argv)
{
	cli_opts o;
	rc_run_summary *runs = NULL;
	size_t n = 0;
	char *state;
	int rc = parse(&o, argc, argv, "history");

	if (rc)
		return rc == 1000 ? RC_EXIT_OK : rc;
	state = o.eo.state_dir ? rc_strdup(o.eo.state_dir)
			       : rc_state_dir_for(o.positional ? o.positional
							       : ".");
	if (rc_history_load(&runs, &n, state, o.nenvs ? o.envs[0] : NULL) < 0) {
		free(state);
		free(o.envs);
		return fail(NULL);
	}
	if (!strcmp(o.output, "json")) {
		json_t *arr = json_array();
		char *s;

		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, rc_run_summary_json(&runs[i]));
		s = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		puts(s);
		free(s);
		json_decref(arr);
	} else if (n == 0) {
		printf("No runs yet in %s.\n", state);
	} else {
		printf("%-36s  %-20s  %-12s  %-11s  %s\n", "RUN", "STARTED",
		       "COMMIT", "OUTCOME", "ACTIONS  ENVIRONMENTS");
		for (size_t i = 0; i < n; i++) {
			rc_buf envs = RC_BUF_INIT_MAX(4096);

			for (size_t j = 0; j < runs[i].nenvs; j++)
				rc_buf_printf(&envs, "%s%s", j ? "," : "",
					      runs[i].envs[j]);
			char unknown[48] = "";

			if (runs[i].unknown)
				snprintf(unknown, sizeof(unknown),
					 ", %zu unknown", runs[i].unknown);
			printf("%-36s  %-20s  %-12.12s  %-11s  %zu ok, %zu "
			       "failed, %zu skipped%s%s  %s\n",
			       runs[i].id, runs[i].time ? runs[i].time : "?",
			       runs[i].commit ? runs[i].commit : "-",
			       rc_run_status_name(runs[i].status), runs[i].ok,
			       runs[i].failed, runs[i].skipped, unknown,
			       runs[i].pending ? ", unfinished" : "", envs.ptr);
			if (runs[i].approved_by)
				printf("    approved by %s\n", runs[i].approved_by);
			if (runs[i].rejected_by)
				printf("    rejected by %s\n", runs[i].rejected_by);
			if (runs[i].error)
				printf("    %s\n", runs[i].error);
			for (size_t k = 0; k < runs[i].nsettled_later; k++)
				printf("    unfinished %s\n",
				       runs[i].settled_later[k]);
			for (size_t k = 0; k < runs[i].nsettles; k++)
				printf("    settles run %s's unfinished %s\n",
				       runs[i].settles_of[k], runs[i].settles[k]);
			rc_buf_release(&envs);
		}
	}
	rc_history_free(runs, n);
	free(state);
	free(o.envs);
	return RC_EXIT_OK;
}

int rc_cmd_rollback(int argc, char **argv)
{
	cli_opts o;
	rc_engine *e = NULL;
	rc_plan p;
	char *left = NULL;
	int rc = parse(&o, argc, argv, "rollback"), code = RC_EXIT_OK;

	if (rc)
		return rc == 1000 ? RC_EXIT_OK : rc;
	if (o.to) {
		/* the desired state of an older commit, planned as usual */
		o.eo.ref = o.to;
		o.eo.keep_gone = true;
		code = run_apply(&o, "roll back to this commit");
		free(o.envs);
		return code;
	}
	if (rc_engine_open(&e, &o.eo) < 0) {
		code = fail(e);
		goto out;
	}
	if (rc_engine_rollback_plan(e, o.positional, o.force_rollback, &p) < 0) {
		rc_plan_release(&p);
		code = fail(NULL);
		goto out;
	}
	print_plan(&p, "text");
	if (o.save)
		code = save_and_say(&p, o.save, false);
	else if (p.n && (code = approve(&o, &p, "roll back", &left)) == 0)
		code = report_apply(e, &p, "Rolled back", left);
	rc_plan_release(&p);
out:
	rc_engine_free(e);
	free(o.envs);
	free(left);
	return code;
}
