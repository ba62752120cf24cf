/*
 * The resolved configuration as JSON (jansson) and YAML (libyaml's
 * emitter). Secrets appear as their references, never as values.
 */
#ifndef RC_EMIT_H
#define RC_EMIT_H

#include <jansson.h>

#include "reconciler/base/buf.h"
#include "schema/model.h"
#include "schema/node.h"

/* A node tree as JSON, typed by the YAML 1.2 core schema (new ref). */
json_t *rc_node_to_json(const rc_node *n);
/* A target as `show` prints it (new ref). */
json_t *rc_target_to_json(const rc_target *t);
/* One environment (new ref). */
json_t *rc_env_to_json(const rc_env *env);
/* {"format_version": 1, "project": ..., "environments": [...]}; only the
 * environments named in only (n of them) when n > 0 (new ref). */
json_t *rc_config_to_json(const rc_config *cfg, const char *const *only,
			  size_t n);
/* Writes any JSON value as block-style YAML; 0 or -1. */
int rc_json_to_yaml(const json_t *v, rc_buf *out);

#endif
