/*
 * The journal: what every apply did, durable across kill -9 and power loss.
 *
 * One file per run: <state>/runs/<run-id>.journal, append-only. Each record
 * is one line:
 *
 *   <checksum> <length> <json>\n
 *
 * where <json> is a JSON object on one line (length bytes), and <checksum>
 * is the first 16 hex digits of SHA-256 over "<length> <json>". Every
 * append is written with one write() and fsync()ed (and the directory is
 * fsynced when the file is created) before rc_journal_append() returns.
 *
 * Reading: a last record that is incomplete or fails its checksum is a torn
 * write (the process died while appending) and is tolerated: it is dropped
 * and reported in `torn`. Any other bad record is corruption, reported with
 * its byte offset.
 *
 * The journal never holds a secret value: every record passes through
 * rc_redact() before it is written (registered secret values become
 * "(sensitive)"), and callers store secret references, not values. Each
 * string, key and number is redacted (rc_redact()), then the encoded
 * text (rc_redact_json()); a record in
 * which a secret spans JSON syntax (so that redacting it would leave
 * something that is not JSON) is refused with RC_EINVALID.
 *
 * Record kinds (the "type" field) written by the engine:
 *   run-start  {run, time, commit, source, environments[], host, pid,
 *               command, plan, approved_by (an approval through the
 *               controller: the approver's token name), hooks (the
 *               plan's hook actions: [{action, env, key, desired,
 *               irreversible}])}
 *   rejected   {plan, by} (the controller's run of a rejection: run-start
 *               with rejected_by, this record, run-end "rejected")
 *   intent     {seq, action, env, key, op, snapshot (what it overwrites),
 *               desired, irreversible, resolves (a hook an interrupted
 *               run left unfinished: {run, action} of that attempt)}
 *   outcome    {seq, action, status: "ok"|"failed"|"skipped"|"unknown",
 *               error, result, settled (for a resolves intent: how it
 *               was settled), unsettled (true: it was not, the hook stays
 *               unfinished); on a skipped hook, unfinished: true when
 *               the steps before it may have taken effect (an outage),
 *               so the hook stays owed} ("skipped": not attempted, no intent
 *               before it when a dependency failed or the endpoint was
 *               found unreachable first; "unknown": sent, its reply lost
 *               in an outage, so not known whether it took effect: like
 *               a pending intent, the next plan observes it)
 *   run-end    {status: "succeeded"|"failed"|"rejected", counts{ok,
 *               failed, skipped, unknown (only when not 0)}}
 * rc_journal_append() adds "type"-independent fields: "seq" (1, 2, ...)
 * and "time" (RFC 3339 UTC, with milliseconds) when the record has none,
 * and writes "seq", "time" and "type" first. An intent and its outcome
 * share the same "action" (the action's id): history counts an intent
 * without an outcome for its action as pending.
 *
 * Why a torn record can only be the last line: one append is one write()
 * of one line, JSON text has no raw newline, and the next append starts
 * only after the previous one was fsynced. So bytes after the last '\n'
 * are the cut-off start of a record, and a last line that fails its
 * checksum is one whose '\n' reached the disk before the rest (power
 * loss). A bad line with more lines after it, or a line longer than its
 * length field says, is corruption.
 */
#ifndef RC_JOURNAL_H
#define RC_JOURNAL_H

#include <jansson.h>

#include "reconciler/base/common.h"
#include "reconciler/base/error.h"

typedef struct rc_journal rc_journal;

/* Limits: one record's JSON text, and a journal file as read. */
#define RC_JOURNAL_MAX_RECORD ((size_t)16 << 20)
#define RC_JOURNAL_MAX_FILE ((size_t)1 << 30)

/* Creates <state_dir>/runs/ if needed and a new, empty journal file for a
 * new run (RC_EEXISTS if that run's journal exists). run_id NULL: a new
 * UUID (libuuid, lower-case); otherwise [A-Za-z0-9._-], not starting with
 * '.'. */
int rc_journal_create(rc_journal **out, const char *state_dir,
		      const char *run_id);
const char *rc_journal_run_id(const rc_journal *j);
const char *rc_journal_path(const rc_journal *j);
/*
 * Appends one record (a JSON object, borrowed and not modified), durable
 * on return. A record bigger than RC_JOURNAL_MAX_RECORD is RC_ETOOBIG.
 * If the write fails the partial record is truncated away; if that or the
 * fsync fails, the journal refuses every later append (the end of the
 * file is in doubt).
 */
int rc_journal_append(rc_journal *j, json_t *record);
/* The "seq" of the last record appended (0 before the first). */
long long rc_journal_seq(const rc_journal *j);
/* Turns the fsync after each append off (a record is then safe from the
 * process dying but not from power loss; the next synced append's fsync
 * takes it to disk). The engine does it only around the outcomes of
 * actions it did not attempt (an unreachable endpoint): losing one
 * loses nothing that happened; benchmarks for whole runs. */
void rc_journal_set_sync(rc_journal *j, bool sync);
/* Closes the file; NULL-safe. Does not write a run-end record. */
void rc_journal_close(rc_journal *j);

typedef struct {
	json_t **records; /* new refs, in order */
	size_t n;
	bool torn;             /* a torn last record was dropped */
	long long torn_offset; /* its byte offset when torn, else -1 */
} rc_journal_contents;

/*
 * Reads a journal file. Returns 0 (torn tail tolerated), RC_ENOTFOUND, or
 * RC_EINVALID for corruption with rc_error_last() saying
 * "<path>: corrupt record at byte offset N: <why>" (records before it are
 * in *out all the same), or another error (RC_ETOOBIG past
 * RC_JOURNAL_MAX_FILE). *out is always initialised: release it whatever
 * the result.
 */
int rc_journal_read(rc_journal_contents *out, const char *path);

/* The same, record by record without keeping them: fn gets each record
 * (borrowed for the call) and returns 0 to go on, > 0 to stop there (the
 * scan returns 0), or a negative code to stop with it. torn and torn_offset (may be NULL) say whether a torn
 * last record was dropped, and where. */
typedef int (*rc_journal_fn)(void *ctx, json_t *rec);
int rc_journal_scan(const char *path, rc_journal_fn fn, void *ctx,
		    bool *torn, long long *torn_offset);
void rc_journal_contents_release(rc_journal_contents *c);

#endif
