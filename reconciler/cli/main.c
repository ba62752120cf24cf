/* reconcile: the command-line entry point. */
#include "reconciler/base/common.h"
#include "reconciler/cli/cli.h"
#include "reconciler/base/log.h"

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
	"Reconciling:\n"
	"   plan       Show what would change (also: reconcile --plan [SOURCE])\n"
	"   apply      Apply the changes, or exactly a saved plan\n"
	"   destroy    Remove everything reconcile owns in the environments\n"
	"   history    List the runs recorded in the journal\n"
	"   rollback   Undo a run, or go back to an older commit\n"
	"\n"
	"Following a repository:\n"
	"   controller  Follow a git source and keep its environments applied\n"
	"   pending     List the plans a controller holds for approval\n"
	"   approve     Apply a pending plan through the controller\n"
	"   reject      Drop a pending plan\n"
	"\n"
	"Secrets:\n"
	"   secret      Encrypt, decrypt, edit and rekey age-encrypted values;\n"
	"              make an identity\n"
	"\n"
	"Global options:\n"
	"   -C <dir>             Run as if started in <dir>\n"
	"   --log-level <level>  error, warn (default), info, debug or trace\n"
	"   --version            Print the version and exit\n"
	"   --help               Print this help; 'reconcile help <command>' or\n"
	"                        'reconcile <command> --help' for a command\n"
	"\n"
	"Exit status: 0 success, 1 failure (an invalid configuration included),\n"
	"2 (plan only) changes are pending, 129 wrong usage.\n";

#define ENGINE_OPTIONS                                                          \
	"   -e, --env <env>         Only this environment (or a generator's\n"    \
	"                           environments); may be repeated\n"              \
	"   --ref <ref>             A branch, tag or commit of the source\n"       \
	"   --state-dir <dir>       Where the journal and locks live (default:\n" \
	"                           $RECONCILE_STATE_DIR, else <source>/.reconcile)\n"

#define CONTROLLER_CLIENT                                                       \
	"   --controller URL        The controller's API (default:\n"           \
	"                           $RECONCILE_CONTROLLER_URL)\n"               \
	"\n"                                                                   \
	"Environment: RECONCILE_CONTROLLER_URL, RECONCILE_CONTROLLER_TOKEN (the\n" \
	"bearer token: yours, or a one-entry 'name:token'),\n"                 \
	"RECONCILE_CONTROLLER_CA (a CA file for an https URL; default: the\n"  \
	"system's). See docs/controller.md, \"Approvals\".\n"

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
	{"plan", "Show what would change",
	 "usage: reconcile plan [<source>] [-e <env>]... [-o <file>] [--output text|json]\n"
	 "                      [--destroy] [--force] [--server-dry-run]\n"
	 "\n"
	 "Reads the configuration from <source> (a directory, default '.', or a\n"
	 "git URL), observes what runs, and prints the changes that 'apply' would\n"
	 "make: + create, ~ update (old -> new per field), - delete, ! replace,\n"
	 "> hook. Secrets show as (sensitive).\n"
	 "\n"
	 "Options:\n" ENGINE_OPTIONS
	 "   -o, --out <file>        Save the plan: 'reconcile apply <file>' applies\n"
	 "                           exactly it, and refuses when anything moved\n"
	 "   --output text|json      The plan's format (docs/plan-format.md)\n"
	 "   --destroy               Plan the removal of everything reconcile owns\n"
	 "   --force                 Allow a plan that empties an environment\n"
	 "   --server-dry-run        Ask the platform what each create and update\n"
	 "                           would make (Kubernetes: dryRun=All) and show\n"
	 "                           its answer; what it would refuse fails the plan\n"
	 "\n"
	 "Exit status: 0 no changes, 2 changes, 1 error.\n",
	 rc_cmd_plan},
	{"apply", "Apply the changes",
	 "usage: reconcile apply [<source> | <plan.json>] [-e <env>]... [--auto-approve]\n"
	 "                       [-j <n>] [--force]\n"
	 "\n"
	 "Plans, shows the plan, asks for confirmation on a terminal, and applies\n"
	 "it: every action journaled (intent before, outcome after), at most <n>\n"
	 "at once (default 8), a failed action stopping only what depends on it.\n"
	 "With a saved plan, applies exactly that plan, and refuses - naming what\n"
	 "moved - when the commit or any observed resource changed since.\n"
	 "\n"
	 "An environment with policy.apply: manual is applied only from a saved\n"
	 "plan, or on a terminal once its name is typed; --auto-approve leaves it\n"
	 "out (with what depends on it), applies the rest and says how to apply\n"
	 "it. With nothing else to apply, that is an error.\n"
	 "\n"
	 "Options:\n" ENGINE_OPTIONS
	 "   --auto-approve          Do not ask (required without a terminal);\n"
	 "                           never approves a manual environment\n"
	 "   -j, --concurrency <n>   Actions applied at once (default 8; deletions\n"
	 "                           being waited on do not count)\n"
	 "   --force                 Allow a plan that empties an environment\n"
	 "   --hook-outcome <name>=succeeded|failed\n"
	 "                           What became of a hook an interrupted run left\n"
	 "                           unfinished, when reconcile cannot tell (an\n"
	 "                           irreversible hook is not run twice): succeeded\n"
	 "                           records it as done, failed runs it again;\n"
	 "                           <name> may be <env>/<name>; repeatable\n"
	 "\n"
	 "Exit status: 0 success, 1 failure.\n",
	 rc_cmd_apply},
	{"destroy", "Remove everything reconcile owns",
	 "usage: reconcile destroy [<source>] [-e <env>]... [--auto-approve] [-o <file>]\n"
	 "\n"
	 "Plans and applies the removal of every resource reconcile owns in the\n"
	 "environments (all of them without -e), and returns once it is gone:\n"
	 "each deletion is waited for, within target.wait_timeout. A manual\n"
	 "environment (policy.apply: manual) is approved as for apply.\n"
	 "\n"
	 "Options:\n" ENGINE_OPTIONS
	 "   --auto-approve          Do not ask (required without a terminal);\n"
	 "                           never approves a manual environment\n"
	 "   -o, --out <file>        Save the plan instead ('reconcile apply\n"
	 "                           <file>' applies it)\n"
	 "\n"
	 "Exit status: 0 success, 1 failure.\n",
	 rc_cmd_destroy},
	{"history", "List the runs in the journal",
	 "usage: reconcile history [<source>] [-e <env>] [--output text|json]\n"
	 "\n"
	 "Lists the runs, newest first: id, start time, commit, outcome\n"
	 "(succeeded, failed, interrupted, running), action counts and\n"
	 "environments.\n"
	 "\n"
	 "Options:\n" ENGINE_OPTIONS
	 "   --output text|json      Format\n",
	 rc_cmd_history},
	{"rollback", "Undo a run",
	 "usage: reconcile rollback [<run-id>] [--source <source>] [-e <env>]...\n"
	 "                          [--force] [--auto-approve] [-o <file>]\n"
	 "       reconcile rollback --to <commit> [--source <source>] [-e <env>]...\n"
	 "\n"
	 "Plans the restoration of what run <run-id> changed, from the snapshots\n"
	 "in its journal, in reverse order, and applies it like 'apply'. Without\n"
	 "<run-id>: the newest run that changed the configuration (a new commit or\n"
	 "an edited environment); runs that only healed drift are passed over and\n"
	 "listed. A run that ran an irreversible step (a hook marked irreversible,\n"
	 "a deleted add-on) is refused unless --force, which runs the\n"
	 "environment's hooks.on_rollback first (restoring a backup, say) and\n"
	 "rolls back the rest. --to <commit> plans the desired state of an older\n"
	 "commit instead. A manual environment is approved as for apply.\n"
	 "\n"
	 "Options:\n" ENGINE_OPTIONS
	 "   --source <source>       The configuration (default '.')\n"
	 "   --to <commit>           Go back to the configuration at <commit>\n"
	 "   --force                 Roll back past irreversible steps\n"
	 "   --auto-approve          Do not ask; never approves a manual\n"
	 "                           environment\n"
	 "   -o, --out <file>        Save the rollback plan instead ('reconcile\n"
	 "                           apply <file>' applies it)\n",
	 rc_cmd_rollback},
	{"controller", "Follow a source and keep it applied",
	 "usage: reconcile controller [<source>] [--listen ADDR:PORT] [--poll DURATION]\n"
	 "                            [--resync DURATION] [--state-dir <dir>]\n"
	 "                            [--log-format text|json]\n"
	 "                            [--leader-elect [--lease NAMESPACE/NAME]]\n"
	 "                            [--shards N --shard K] [--config FILE]\n"
	 "\n"
	 "Follows <source> (a git URL or a directory, default '.'): checks it\n"
	 "every --poll without fetching (the remote's refs), fetches when a ref\n"
	 "moved or a push webhook arrives, and plans every environment whose\n"
	 "commit moved or whose --resync timer fired, each on its own: applied\n"
	 "with policy.apply: auto, saved as a pending plan with manual. A\n"
	 "failure is retried after 5 s, doubling to 5 min. Every apply is an\n"
	 "ordinary run ('reconcile history'). It serves /healthz, /readyz,\n"
	 "/metrics, /api/v1/status and /hooks/{github,gitlab,generic}; SIGTERM\n"
	 "or SIGINT lets a running apply finish (30 s) and exits 0. See\n"
	 "docs/controller.md.\n"
	 "\n"
	 "Options:\n"
	 "   --listen ADDR:PORT      Where the HTTP API listens (default\n"
	 "                           127.0.0.1:8080; a non-loopback address\n"
	 "                           needs RECONCILE_CONTROLLER_TOKEN)\n"
	 "   --poll DURATION         Cheap source check interval (default 60s)\n"
	 "   --resync DURATION       Re-plan an unchanged environment this often\n"
	 "                           (default 10m, +-10% jitter)\n"
	 "   --state-dir <dir>       Where the journal, locks and pending plans\n"
	 "                           live (default: as for apply)\n"
	 "   --log-format text|json  JSON: one object per line with time, level,\n"
	 "                           message, environment and run\n"
	 "   --leader-elect          Act only while holding a Lease (not\n"
	 "                           available in this build yet)\n"
	 "   --lease NAMESPACE/NAME  The Lease (with --leader-elect)\n"
	 "   --shards N --shard K    Own only the environments hashing to K (not\n"
	 "                           available in this build yet)\n"
	 "   --config FILE           A flags file (poll, resync, log-format,\n"
	 "                           log-level: one 'name value' a line), read\n"
	 "                           at start and at each SIGHUP; it wins over\n"
	 "                           the command line\n"
	 "\n"
	 "Environment: RECONCILE_CONTROLLER_TOKEN (the API's bearer token),\n"
	 "RECONCILE_WEBHOOK_SECRET (the webhooks' secret).\n"
	 "\n"
	 "Exit status: 0 stopped by a signal, 1 failure, 129 wrong usage.\n",
	 rc_cmd_controller},
	{"pending", "List the plans waiting for approval",
	 "usage: reconcile pending [--controller URL]\n"
	 "\n"
	 "Lists the plans of policy.apply: manual environments that a running\n"
	 "controller holds for approval: environment, plan id (short), commit,\n"
	 "age and the changes per operation.\n"
	 "\n"
	 "Options:\n" CONTROLLER_CLIENT
	 "\n"
	 "Exit status: 0 listed, 1 failure, 129 wrong usage.\n",
	 rc_cmd_pending},
	{"approve", "Apply a pending plan through the controller",
	 "usage: reconcile approve <env> [--plan ID] [--controller URL]\n"
	 "\n"
	 "Asks the controller to apply exactly the pending plan of <env> (with\n"
	 "--plan, only if ID - the plan id or 8 or more of its hex digits - is\n"
	 "still the pending one) and waits for the apply to end. A plan made\n"
	 "stale by a new commit or by resources that moved is refused; the\n"
	 "controller then makes a new pending plan to approve. The run\n"
	 "records you (your token's name) as the approver.\n"
	 "\n"
	 "Options:\n"
	 "   --plan ID               Approve only this plan\n"
	 CONTROLLER_CLIENT
	 "\n"
	 "Exit status: 0 applied, 1 refused or failed, 129 wrong usage.\n",
	 rc_cmd_approve},
	{"reject", "Drop a pending plan",
	 "usage: reconcile reject <env> [--controller URL]\n"
	 "\n"
	 "Rejects the pending plan of <env>: the rejection is journaled (a run\n"
	 "with outcome 'rejected' in 'reconcile history', naming you) and the\n"
	 "same plan is not proposed again until the commit or the actual\n"
	 "state changes.\n"
	 "\n"
	 "Options:\n" CONTROLLER_CLIENT
	 "\n"
	 "Exit status: 0 rejected, 1 refused or failed, 129 wrong usage.\n",
	 rc_cmd_reject},
	{"secret", "Encrypted values: encrypt, decrypt, edit, rekey, keygen",
	 "usage: reconcile secret encrypt [-e <env> [--write]] <name> [<dir>] < value\n"
	 "       reconcile secret decrypt [-e <env>] [--force] <name> [<dir>]\n"
	 "       reconcile secret decrypt [--force] <file>\n"
	 "       reconcile secret edit [-r <recipient>]... <file>\n"
	 "       reconcile secret rekey [<dir>]\n"
	 "       reconcile secret keygen [-o <file>]\n"
	 "\n"
	 "Age-encrypted values of the configuration <dir> (default '.'); see\n"
	 "docs/secrets.md.\n"
	 "\n"
	 "   encrypt  Reads the value from standard input (never from the\n"
	 "            command line: a terminal is read without echo up to the\n"
	 "            end of the line; a pipe or file to its end, less one\n"
	 "            final newline), encrypts it to the recipients of <env>\n"
	 "            (without -e: the top-level recipients) and prints the\n"
	 "            entry to paste under the environment's secrets:, or\n"
	 "            with --write puts it there (in the environment's file,\n"
	 "            else in reconcile.yaml), replacing one of that name\n"
	 "   decrypt  Prints the value <name> (of <env>: its encrypted: value\n"
	 "            or its {file:} age file), or the age <file>, only to a\n"
	 "            terminal unless --force\n"
	 "   edit     Decrypts the age <file> (armored or binary) into a private\n"
	 "            temporary file, runs $EDITOR (else vi; split on spaces,\n"
	 "            no shell), and re-encrypts it, in the same form, to the\n"
	 "            recipients of the environment whose {file:} secret it is\n"
	 "            (else the top level's; -r: these instead); the temporary\n"
	 "            file is overwritten with zeros and removed. Unchanged:\n"
	 "            the file is left as it was\n"
	 "   rekey    Re-encrypts every encrypted: value of reconcile.yaml and\n"
	 "            the environment files, and every {file:} age file, to the\n"
	 "            current recipients; only the values' lines change. One\n"
	 "            value that cannot be decrypted: nothing is written\n"
	 "   keygen   Creates an X25519 identity in age-keygen's format (mode\n"
	 "            0600; default ~/.config/reconcile/age/keys.txt, never\n"
	 "            overwritten) and prints its recipient\n"
	 "\n"
	 "Options:\n"
	 "   -e, --env <env>          The environment (or generator entry)\n"
	 "   -w, --write              encrypt: write the entry into the file\n"
	 "   -f, --force              decrypt: print to a file or pipe too\n"
	 "   -r, --recipient <key>    edit: an age1..., ssh-ed25519 or ssh-rsa\n"
	 "                            public key; may be repeated\n"
	 "   -o, --output <file>      keygen: where the identity goes\n"
	 "\n"
	 "Identities (decrypt, edit, rekey): RECONCILE_AGE_KEY,\n"
	 "RECONCILE_AGE_KEY_FILE, ~/.config/reconcile/age/keys.txt,\n"
	 "RECONCILE_AGE_SSH_KEY.\n"
	 "\n"
	 "Exit status: 0 success, 1 failure (decrypt: also a refused output),\n"
	 "129 wrong usage.\n",
	 rc_cmd_secret},
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
		} else if (!strcmp(a, "--plan")) {
			/* reconcile --plan [SOURCE]: the same as reconcile plan */
			argv[i] = (char *)(uintptr_t)"plan";
			return rc_cmd_plan(argc - i, argv + i);
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
