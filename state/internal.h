/*
 * Helpers shared by the journal, the locks and history; not for use
 * outside state/.
 */
#ifndef RC_STATE_INTERNAL_H
#define RC_STATE_INTERNAL_H

#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/rctime.h"


/* Whether s can be one component of a path under the state directory: 1
 * to 200 bytes of [A-Za-z0-9._-], not starting with '.' (so neither "."
 * nor ".." nor a hidden file), no '/'. */
bool rc_state_name_ok(const char *s);

/* Like `mkdir -p`: creates path and its missing parents (mode 0755). The
 * parent of each directory it creates is fsynced, so the new entries
 * survive a power loss. Returns 0 or an RC_ECLASS_OS error. */
int rc_state_mkdirs(const char *path);
/* fsyncs the directory dir (after creating an entry in it). */
int rc_state_fsync_dir(const char *dir);

/* Writes all n bytes, retrying on EINTR and short writes. Returns 0, or -1
 * with errno set. */
int rc_state_write_all(int fd, const void *p, size_t n);
/* Reads fd to its end into b (appending); at most max bytes in all, else
 * RC_ETOOBIG. Errors name path. */
int rc_state_read_fd(rc_buf *b, int fd, const char *path, size_t max);

#endif
