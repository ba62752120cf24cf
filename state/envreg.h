/*
 * The registry of generated environments: <state>/environments.json.
 *
 * A generated environment (one made by for_each) disappears from the
 * configuration when its item does (a deleted branch). To remove what it
 * owns after its ttl, reconcile must remember, once the definition is
 * gone, where the environment lived and since when it is gone. Every
 * plan records each generated environment it loads:
 *
 *   {"format_version": 1,
 *    "environments": {
 *      "<name>": {"project": "joplin", "generator": "review",
 *                 "driver": "heroku",
 *                 "target": {...}, "prune": true, "ttl": 259200,
 *                 "label": "heroku: joplin-pr-12",
 *                 "last_seen": "<RFC 3339>", "gone_since": null}}}
 *
 * A state directory may serve several projects (RECONCILE_STATE_DIR set
 * once for all): an entry of another project is neither gone nor
 * retired by this one's plans (an entry without "project", from before
 * it was recorded, counts as this project's).
 *
 * The file is replaced atomically (written to a temporary file, fsynced,
 * renamed), so a crash leaves the old or the new registry.
 */
#ifndef RC_STATE_ENVREG_H
#define RC_STATE_ENVREG_H

#include <jansson.h>

#include "reconciler/base/common.h"
#include "reconciler/base/error.h"

/* The registry (new ref): an empty one when the file does not exist.
 * RC_ECLASS_STATE error naming the file when it is not a registry. */
int rc_envreg_load(json_t **out, const char *state_dir);
/* Writes it, creating the state directory when missing. */
int rc_envreg_save(const json_t *reg, const char *state_dir);

#endif
