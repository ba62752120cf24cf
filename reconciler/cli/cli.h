/* The command-line interface: one function per command. */
#ifndef RC_CLI_H
#define RC_CLI_H

#include "reconciler/base/common.h"

/* Exit codes (documented in docs/cli.md). */
#define RC_EXIT_OK 0
#define RC_EXIT_FAIL 1
#define RC_EXIT_CHANGES 2
#define RC_EXIT_USAGE 129

typedef struct {
	const char *name;
	const char *summary;
	const char *usage; /* the full --help text */
	int (*run)(int argc, char **argv);
} rc_command;

int rc_cmd_validate(int argc, char **argv);
int rc_cmd_show(int argc, char **argv);
int rc_cmd_plan(int argc, char **argv);
int rc_cmd_apply(int argc, char **argv);
int rc_cmd_destroy(int argc, char **argv);
int rc_cmd_history(int argc, char **argv);
int rc_cmd_rollback(int argc, char **argv);
int rc_cmd_controller(int argc, char **argv);
int rc_cmd_approve(int argc, char **argv);
int rc_cmd_reject(int argc, char **argv);
int rc_cmd_pending(int argc, char **argv);
int rc_cmd_secret(int argc, char **argv);

/* Whether to colour output written to f (a terminal, NO_COLOR unset). */
bool rc_use_color(FILE *f);
const rc_command *rc_command_find(const char *name);
void rc_command_usage(const rc_command *cmd, FILE *f);

#endif
