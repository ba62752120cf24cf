/*
 * The key of the hashes that stand for secrets in bodies, plans, the
 * journal and platform tags: 32 random bytes per installation, so that a
 * hash cannot be reversed by guessing a short value without the key.
 *
 * The key lives in <state>/secret-hash.key (mode 0600, 64 hex digits),
 * made on first need; RECONCILE_SECRET_HASH_KEY_FILE names another file
 * instead (a key mounted from a Kubernetes Secret), which holds 64 hex
 * digits or 32 raw bytes. The key is never logged; callers wipe it with
 * OPENSSL_cleanse() after use.
 */
#ifndef RC_STATE_SECRET_KEY_H
#define RC_STATE_SECRET_KEY_H

#include "reconciler/base/common.h"

#define RC_SECRET_KEY_LEN 32
#define RC_SECRET_KEY_FILE "secret-hash.key"
#define RC_SECRET_KEY_ENV "RECONCILE_SECRET_HASH_KEY_FILE"

/*
 * Reads the key into key: from the file that $RECONCILE_SECRET_HASH_KEY_FILE
 * names when it is set (that file must exist), else from
 * <state_dir>/secret-hash.key. When that file is missing and create is
 * true, it is made (the directory too): a private temporary file (O_EXCL)
 * linked into place, so that two processes starting at once end with the
 * same key; when create is false, 0 is returned with *found false.
 * A key file that its group or others may read gets a warning.
 * Returns 0 (*found true when key holds a key) or an RC_ECLASS_STATE
 * error naming the file (never its content).
 */
int rc_state_secret_key(unsigned char key[RC_SECRET_KEY_LEN],
			const char *state_dir, bool create, bool *found);

#endif
