/* Shared by the unit test groups. */
#ifndef RC_TEST_HELPERS_H
#define RC_TEST_HELPERS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "schema/diag.h"
#include "schema/load.h"
#include "schema/node.h"

/* A fresh temporary directory (new string); removed by tmpdir_remove. */
char *tmpdir_new(void);
void tmpdir_remove(char *dir);
/* Writes text to dir/rel, creating parent directories. */
void write_file(const char *dir, const char *rel, const char *text);
/* Loads dir; returns the formatted diagnostics (new string, no colour). */
char *load_dir(const char *dir, bool offline, rc_config **cfg, int *rc);
/* Parses YAML text into one document (NULL on error). d is initialised
 * here and released by the caller after the tree (locations borrow its
 * file names); the formatted diagnostics go to *diag_text (new). */
rc_node *parse_one(rc_diags *d, const char *text, char **diag_text);
/* Runs a command (argv) and waits; returns its exit status or -1. */
int run_argv(const char *const *argv, const char *cwd);


/* Every group's entry point: test_NAME.c defines test_group_NAME(). */
#define RC_GROUP(name) int test_group_##name(void);
#include "unit_groups.h"
#undef RC_GROUP

#endif
