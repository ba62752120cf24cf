/*
 * Encrypted values in a YAML file's text, found and replaced without a
 * YAML round trip, so that `reconcile secret rekey` and `reconcile secret
 * encrypt --write` change only the lines of the values themselves:
 * comments, order, quoting and indentation stay byte for byte.
 *
 * What is found: every block scalar `encrypted: |` (any chomping or
 * indentation indicator after the `|`), with the keys above it. A value
 * written another way (`encrypted: "..."`, `encrypted: >`) is not found.
 * The scan follows indentation and skips the content of every other
 * block scalar, so a hook's script that happens to hold "encrypted: |"
 * is not taken for a value.
 */
#ifndef RC_CLI_SECRET_YAML_H
#define RC_CLI_SECRET_YAML_H

#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/error.h"

typedef struct {
	int line;       /* 1-based line of the `encrypted: |` key */
	size_t start;   /* byte offset of the first content line */
	size_t end;     /* just past the last non-blank content line (its
			   newline included when it has one) */
	int indent;     /* the content's indentation, in spaces */
	char *value;    /* the text: each line without its indentation */
	char **path;    /* the keys above `encrypted`, outermost first
			   ("-" for a sequence item) */
	size_t npath;
} rc_yaml_block;

/* Finds the `encrypted: |` block scalars of text (len bytes). *out is a
 * new array of *n blocks in the order of the text (free with
 * rc_yaml_blocks_free). */
void rc_yaml_blocks_find(const char *text, size_t len, rc_yaml_block **out,
			 size_t *n);
void rc_yaml_blocks_free(rc_yaml_block *b, size_t n);

/* "environments.prod.secrets.DB_PASSWORD" */
void rc_yaml_block_describe(rc_buf *out, const rc_yaml_block *b);

/* Appends value's lines to out, each indented by indent spaces; blank
 * lines stay empty. The last line gets a newline only when nl. */
void rc_yaml_indent_lines(rc_buf *out, const char *value, int indent, bool nl);

/* Appends text with the content of blocks[i] replaced by values[i]
 * (re-indented the same way) wherever values[i] is not NULL. */
void rc_yaml_blocks_replace(rc_buf *out, const char *text, size_t len,
			    const rc_yaml_block *blocks, size_t n,
			    const char *const *values);

/*
 * Appends text with the entry `name: {encrypted: |<armored>}` (block
 * style) under the `secrets:` of the mapping at path (npath keys; none:
 * the document's top level): in place of name's entry when there is
 * one, else after the last of the secrets, else in a new `secrets:` at
 * the end of the mapping. 0, or RC_EINVALID when the mapping is not
 * there or it or its secrets are written on one line (flow style).
 */
int rc_yaml_secret_put(rc_buf *out, const char *text, size_t len,
		       const char *const *path, size_t npath,
		       const char *name, const char *armored);

#endif
