/* reconcile controller */
#include "reconciler/base/common.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "reconciler/cli/cli.h"
#include "reconciler/controller/controller.h"

#include <getopt.h>

enum { OPT_LISTEN = 256, OPT_POLL, OPT_RESYNC, OPT_STATE, OPT_LOG_FORMAT,
       OPT_LEADER, OPT_LEASE, OPT_SHARDS, OPT_SHARD, OPT_CONFIG };

static int usage_error(const char *fmt, const char *arg)
{
	fputs("error: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs("\n", stderr);
	return RC_EXIT_USAGE;
}

/* A non-negative integer option; -1 when it is none. */
static int count_arg(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < 0 || v > 100000)
		return -1;
	return (int)v;
}

int rc_cmd_controller(int argc, char **argv)
{
	static const struct option opts[] = {
		{"listen", required_argument, NULL, OPT_LISTEN},
		{"poll", required_argument, NULL, OPT_POLL},
		{"resync", required_argument, NULL, OPT_RESYNC},
		{"state-dir", required_argument, NULL, OPT_STATE},
		{"log-format", required_argument, NULL, OPT_LOG_FORMAT},
		{"leader-elect", no_argument, NULL, OPT_LEADER},
		{"lease", required_argument, NULL, OPT_LEASE},
		{"shards", required_argument, NULL, OPT_SHARDS},
		{"shard", required_argument, NULL, OPT_SHARD},
		{"config", required_argument, NULL, OPT_CONFIG},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	rc_ctl_opts o;
	int c;

	rc_ctl_opts_init(&o);
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_LISTEN:
			o.listen = optarg;
			break;
		case OPT_POLL:
		case OPT_RESYNC: {
			double d = rc_ctl_duration(optarg);

			if (d <= 0)
				return usage_error("not a duration: '%s' "
						   "(e.g. 30s, 5m, 1h)",
						   optarg);
			*(c == OPT_POLL ? &o.poll : &o.resync) = d;
			break;
		}
		case OPT_STATE:
			o.state_dir = optarg;
			break;
		case OPT_LOG_FORMAT:
			if (strcmp(optarg, "text") && strcmp(optarg, "json"))
				return usage_error("--log-format is text or "
						   "json, not '%s'",
						   optarg);
			o.log_json = !strcmp(optarg, "json");
			break;
		case OPT_LEADER:
			o.leader_elect = true;
			break;
		case OPT_LEASE:
			o.lease = optarg;
			break;
		case OPT_SHARDS:
			if ((o.shards = count_arg(optarg)) < 1)
				return usage_error("--shards wants a count "
						   "of 1 or more, not '%s'",
						   optarg);
			break;
		case OPT_SHARD:
			if ((o.shard = count_arg(optarg)) < 0)
				return usage_error("--shard wants a number "
						   "from 0, not '%s'",
						   optarg);
			break;
		case OPT_CONFIG:
			o.config = optarg;
			break;
		case 'h':
			rc_command_usage(rc_command_find("controller"), stdout);
			return RC_EXIT_OK;
		default:
			rc_command_usage(rc_command_find("controller"), stderr);
			return RC_EXIT_USAGE;
		}
	}
	if (optind < argc)
		o.source = argv[optind++];
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	o.token = getenv("RECONCILE_CONTROLLER_TOKEN");
	o.hook_secret = getenv("RECONCILE_WEBHOOK_SECRET");
	if (rc_ctl_opts_check(&o) < 0) {
		fprintf(stderr, "error: %s\n", rc_error_last()->message);
		return rc_error_last()->code == RC_EUNSUPPORTED ? RC_EXIT_FAIL
								: RC_EXIT_USAGE;
	}
	/* a controller says what it does unless asked for less */
	if (rc_log_threshold == RC_LOG_WARN)
		rc_log_threshold = RC_LOG_INFO;
	if (o.log_json)
		rc_log_set_format(RC_LOG_JSON);
	/* the flags file wins over the command line, now and at SIGHUP */
	if (o.config && rc_ctl_read_config(&o, o.config) < 0) {
		fprintf(stderr, "error: %s\n", rc_error_last()->message);
		return RC_EXIT_FAIL;
	}
	if (rc_controller_run(&o) < 0) {
		RC_ERR("%s", rc_error_last()->message);
		return RC_EXIT_FAIL;
	}
	return RC_EXIT_OK;
}
