/* reconcile: the command-line entry point. */
#include "reconciler/common.h"
#include "reconciler/cli.h"
#include "reconciler/log.h"

static const char main_usage[] =
	"usage: reconcile [--version] [--help] [-C <dir>] [--log-level <level>]\n"
	"                 <command> [<args>]\n"
	"\n"
	"reconcile reads environments described in a git repository, compares\n"
	"them with what runs on Kubernetes, Heroku, AWS ECS or this machine,\n"
	"and plans and applies the difference.\n"
	"\n"
	"Configuration commands:\n"
	"   validate   Check a configuration repository and report every problem\n"
	"   show       Print the resolved environments (overlays and generators\n"
	"              applied, secrets as references)\n"
	"\n"
	"Global options:\n"
	"   -C <dir>             Run as if started in <dir>\n"
	"   --log-level <level>  error, warn (default), info, debug or trace\n"
	"   --version            Print the version and exit\n"
	"   --help               Print this help; 'reconcile help <command>' or\n"
	"                        'reconcile <command> --help' for a command\n"
	"\n"
	"Exit status: 0 success, 1 failure (an invalid configuration included),\n"
	"129 wrong usage.\n";

static const rc_command commands[] = {
	{"validate", "Check a configuration repository",
	 "usage: reconcile validate [<dir>] [--output text|json] [--quiet]\n"
	 "\n"
	 "Loads the configuration repository <dir> (default: the current\n"
	 "directory) - reconcile.yaml and every file it names - and reports\n"
	 "every problem as 'path:line:col: error: message' with the source\n"
	 "line and a caret. Generators over remote repositories are checked\n"
	 "with a sample branch: validate never contacts the network.\n"
	 "\n"
	 "Options:\n"
	 "   -o, --output text|json  Diagnostics as text on stderr (default)\n"
	 "                           or as a JSON document on stdout\n"
	 "   -q, --quiet             Print nothing when the configuration is\n"
	 "                           valid\n"
	 "\n"
	 "Exit status: 0 valid, 1 invalid, 129 wrong usage.\n",
	 rc_cmd_validate},
	{"show", "Print the resolved environments",
	 "usage: reconcile show [<dir>] [-e <env>]... [--output yaml|json]\n"
	 "\n"
	 "Prints the environments of the configuration repository <dir>\n"
	 "(default: the current directory) as reconcile understands them:\n"
	 "overlays merged, generators expanded (their branches listed),\n"
	 "placeholders substituted, defaults filled in. Secrets are shown as\n"
	 "references ({env: NAME} or {file: PATH}), never as values.\n"
	 "\n"
	 "Options:\n"
	 "   -e, --env <env>          Only this environment (or every\n"
	 "                            environment a generator entry makes);\n"
	 "                            may be repeated\n"
	 "   -o, --output yaml|json   Output format (default yaml); the JSON\n"
	 "                            has \"format_version\": 1\n"
	 "\n"
	 "Exit status: 0 success, 1 invalid configuration or unknown\n"
	 "environment, 129 wrong usage.\n",
	 rc_cmd_show},
};

const rc_command *rc_command_find(const char *name)
{
	for (size_t i = 0; i < RC_ARRAY_SIZE(commands); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

void rc_command_usage(const rc_command *cmd, FILE *f)
{
	fputs(cmd ? cmd->usage : main_usage, f);
}

static int unknown_command(const char *name)
{
	const char *best = NULL;
	size_t i;

	fprintf(stderr, "reconcile: '%s' is not a reconcile command. See "
			"'reconcile --help'.\n",
		name);
	for (i = 0; i < RC_ARRAY_SIZE(commands); i++)
		if (!strncmp(commands[i].name, name, 3))
			best = commands[i].name;
	if (best)
		fprintf(stderr, "\nThe most similar command is\n\t%s\n", best);
	return RC_EXIT_USAGE;
}

int main(int argc, char **argv)
{
	int i = 1;
	const rc_command *cmd;

	while (i < argc && argv[i][0] == '-') {
		const char *a = argv[i];

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(main_usage, stdout);
			return RC_EXIT_OK;
		} else if (!strcmp(a, "--version")) {
			printf("reconcile version %s\n", RC_VERSION);
			return RC_EXIT_OK;
		} else if (!strcmp(a, "-C") && i + 1 < argc) {
			if (chdir(argv[i + 1]) < 0) {
				fprintf(stderr,
					"error: cannot change to '%s': %s\n",
					argv[i + 1], strerror(errno));
				return RC_EXIT_FAIL;
			}
			i += 2;
		} else if (!strcmp(a, "--log-level") && i + 1 < argc) {
			int lvl = rc_log_level_parse(argv[i + 1]);

			if (lvl < 0) {
				fprintf(stderr, "error: unknown log level "
						"'%s'\n",
					argv[i + 1]);
				return RC_EXIT_USAGE;
			}
			rc_log_threshold = (rc_log_level)lvl;
			i += 2;
		} else {
			fprintf(stderr, "error: unknown option '%s'\n", a);
			fputs(main_usage, stderr);
			return RC_EXIT_USAGE;
		}
	}
	if (i >= argc) {
		fputs(main_usage, stderr);
		return RC_EXIT_USAGE;
	}
	if (!strcmp(argv[i], "help")) {
		if (i + 1 < argc) {
			cmd = rc_command_find(argv[i + 1]);
			if (!cmd)
				return unknown_command(argv[i + 1]);
			rc_command_usage(cmd, stdout);
		} else {
			fputs(main_usage, stdout);
		}
		return RC_EXIT_OK;
	}
	if (!strcmp(argv[i], "version")) {
		printf("reconcile version %s\n", RC_VERSION);
		return RC_EXIT_OK;
	}
	cmd = rc_command_find(argv[i]);
	if (!cmd)
		return unknown_command(argv[i]);
	return cmd->run(argc - i, argv + i);
}
