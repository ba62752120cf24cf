/*
 * The YAML node tree. Every node keeps the file, line and column it came
 * from, so that every later check can point at the user's text.
 *
 * Ownership: a tree is owned by its root; rc_node_free() frees the whole
 * tree. Functions that return a new tree say so; the inputs of
 * rc_node_merge() and rc_node_copy() are borrowed.
 */
#ifndef RC_NODE_H
#define RC_NODE_H

#include "reconciler/base/common.h"
#include "reconciler/base/error.h"
#include "schema/diag.h"

typedef enum { RC_NODE_SCALAR, RC_NODE_MAP, RC_NODE_SEQ } rc_node_kind;

/* What a scalar means under the YAML 1.2 core schema. */
typedef enum {
	RC_SCALAR_NULL,
	RC_SCALAR_BOOL,
	RC_SCALAR_INT,
	RC_SCALAR_FLOAT,
	RC_SCALAR_STR
} rc_scalar_type;

typedef struct rc_node rc_node;
struct rc_node {
	rc_node_kind kind;
	rc_loc loc;
	int span;    /* columns the token covers on its first line */
	bool quoted; /* a quoted or block scalar, or tagged !!str */
	char *str;   /* scalar text (NUL-terminated), NULL otherwise */
	size_t len;
	rc_node **keys; /* map keys (scalars); NULL for sequences */
	rc_node **vals; /* map values or sequence items */
	size_t n, cap;
	size_t weight; /* nodes in this subtree, this one included */
};

/* Limits on hostile input. */
#define RC_YAML_MAX_FILE_SIZE ((size_t)4 << 20)
#define RC_YAML_MAX_DEPTH 64
#define RC_YAML_MAX_NODES ((size_t)250000)

/*
 * Parses YAML text into documents. Every problem is added to diags with
 * the file's location; returns 0, or -1 when the text could not be parsed
 * (some documents may still have been returned). *docs is a new array of
 * new trees; an empty document is returned as NULL.
 */
int rc_yaml_parse(rc_node ***docs, size_t *ndocs, const char *file,
		  const char *text, size_t len, rc_diags *diags);

/* Checks that text is UTF-8; on failure sets *line and *col to the bad byte. */
bool rc_utf8_valid(const char *text, size_t len, int *line, int *col);

rc_node *rc_node_new_scalar(const char *s, size_t len, bool quoted,
			    rc_loc loc);
rc_node *rc_node_new_map(rc_loc loc);
rc_node *rc_node_new_seq(rc_loc loc);
void rc_node_free(rc_node *n);
/* Appends (takes ownership of key and val). */
void rc_node_map_append(rc_node *map, rc_node *key, rc_node *val);
void rc_node_seq_append(rc_node *seq, rc_node *val);
/* The value under key in a map, or NULL; borrowed. */
rc_node *rc_node_get(const rc_node *map, const char *key);
/* The key node of key in a map, or NULL; borrowed. */
rc_node *rc_node_get_key(const rc_node *map, const char *key);
/* Removes key from map, freeing key and value; true if it was there. */
bool rc_node_remove(rc_node *map, const char *key);
/* A deep copy (new). */
rc_node *rc_node_copy(const rc_node *n);
/*
 * Overlay merge (new tree): maps merge key by key, recursively; anything
 * else in overlay replaces base; a null scalar in overlay deletes the key.
 * Nulls are removed from every map of the result.
 */
rc_node *rc_node_merge(const rc_node *base, const rc_node *overlay);
/* Removes null values from every map of the tree, in place. */
void rc_node_drop_nulls(rc_node *n);

rc_scalar_type rc_node_scalar_type(const rc_node *n);
bool rc_node_is_null(const rc_node *n);
const char *rc_node_kind_name(const rc_node *n);

#endif
