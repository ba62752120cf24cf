/*
 * The last-applied snapshot: what the journals' replay gave (key -> body),
 * saved as <state>/last-applied.json beside the sizes of the journals it
 * was replayed from. It is a cache, never the source of truth: it is
 * trusted only while the journals are exactly those it names, at the same
 * sizes (journals are append-only, so a record added, a run started or a
 * journal removed all show); otherwise the journals are replayed again.
 *
 * The file is JSON lines: {"format_version": 3, "journals": {...}}, then
 * one line per environment, {"env": NAME, "last": {key: body}}, so that
 * a reader that wants one environment (the controller's cycle) parses its
 * line and skips the others by their first bytes. Format 3 also holds,
 * among an environment's keys, its hooks left unfinished (keys
 * "<env>/#unfinished-hook/<name>", reconciler/engine.h); a snapshot of
 * another format is not read, so the first plan after an upgrade replays
 * every journal once and saves format 3.
 */
#ifndef RC_STATE_SNAPSHOT_H
#define RC_STATE_SNAPSHOT_H
#include "reconciler/base/common.h"

#include <jansson.h>

/* Every journal under <state>/runs as {run id: size in bytes} (new ref),
 * or NULL when the directory cannot be read (no error is left set). */
json_t *rc_snapshot_journals(const char *state_dir);
/* The snapshot's key -> body when it was made from exactly journals
 * (new ref), every environment's; NULL when there is none, it is
 * unreadable or stale. */
json_t *rc_snapshot_load(const char *state_dir, const json_t *journals);
/* The snapshot's key -> body whatever journals it was made from (new
 * ref), only the environments in envs when nenvs > 0; *from (new ref) the
 * journals it names. NULL (and *from NULL) when there is none or it is
 * unreadable. */
json_t *rc_snapshot_read(const char *state_dir, const char *const *envs,
			 size_t nenvs, json_t **from);
/* Saves last as replayed from journals, atomically (a temporary file
 * renamed over the old one). Returns 0 or an error. */
int rc_snapshot_save(const char *state_dir, const json_t *journals,
		     const json_t *last);
#endif
