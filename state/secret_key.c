/* The key of the hashes that stand for secrets (secret_key.h). */
#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/codec.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "state/internal.h"
#include "state/secret_key.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

/* 64 hex digits (surrounding whitespace allowed) or 32 raw bytes. */
static bool parse_key(unsigned char key[RC_SECRET_KEY_LEN],
		      const unsigned char *p, size_t n)
{
	rc_buf dec = RC_BUF_INIT_MAX(RC_SECRET_KEY_LEN);
	size_t s = 0, e = n;
	bool ok;

	if (n == RC_SECRET_KEY_LEN) {
		memcpy(key, p, RC_SECRET_KEY_LEN);
		return true;
	}
	while (s < e && isspace(p[s]))
		s++;
	while (e > s && isspace(p[e - 1]))
		e--;
	ok = e - s == 2 * RC_SECRET_KEY_LEN &&
	     rc_codec_hex_decode(&dec, (const char *)p + s, e - s) == 0 &&
	     dec.len == RC_SECRET_KEY_LEN;
	if (ok)
		memcpy(key, dec.ptr, RC_SECRET_KEY_LEN);
	else
		rc_error_clear();
	OPENSSL_cleanse(dec.ptr, dec.len);
	rc_buf_release(&dec);
	return ok;
}

/* Reads the key file path; RC_ENOTFOUND when it does not exist. */
static int read_key(unsigned char key[RC_SECRET_KEY_LEN], const char *path)
{
	unsigned char raw[256];
	size_t n = 0;
	struct stat st;
	bool ok;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		if (errno == ENOENT)
			return rc_error_set(RC_ENOTFOUND, RC_ECLASS_STATE,
					    "the secret hash key file '%s' "
					    "does not exist",
					    path);
		return rc_error_set_os("cannot open the secret hash key file "
				       "'%s'",
				       path);
	}
	if (fstat(fd, &st) == 0 && (st.st_mode & 077))
		RC_WARN("the secret hash key file '%s' may be read by its "
			"group or by others (mode %04o); make it private "
			"(chmod 600, or defaultMode 0400 for a mounted "
			"Secret)",
			path, (unsigned)(st.st_mode & 07777));
	while (n < sizeof(raw)) {
		ssize_t r = read(fd, raw + n, sizeof(raw) - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			OPENSSL_cleanse(raw, sizeof(raw));
			close(fd);
			return rc_error_set_os("cannot read the secret hash "
					       "key file '%s'",
					       path);
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	ok = n < sizeof(raw) && parse_key(key, raw, n);
	OPENSSL_cleanse(raw, sizeof(raw));
	if (!ok)
		return rc_error_set(RC_EINVALID, RC_ECLASS_STATE,
				    "the secret hash key file '%s' holds no "
				    "key (64 hex digits or 32 bytes)",
				    path);
	return 0;
}

/* Makes path with a new random key, unless another process made it
 * first: the key is written to a private temporary file that is then
 * linked to path, which fails when path exists. */
static int create_key(const char *path, const char *dir)
{
	unsigned char key[RC_SECRET_KEY_LEN];
	rc_buf hex = RC_BUF_INIT_MAX(2 * RC_SECRET_KEY_LEN);
	rc_buf tmp = RC_BUF_INIT_MAX(PATH_MAX * 2);
	int fd, rc = 0;

	if ((rc = rc_state_mkdirs(dir)) < 0)
		return rc;
	if (RAND_bytes(key, sizeof(key)) != 1)
		return rc_error_set(RC_ERROR, RC_ECLASS_STATE,
				    "cannot draw random bytes for the secret "
				    "hash key");
	rc = rc_codec_hex_encode(&hex, key, sizeof(key));
	OPENSSL_cleanse(key, sizeof(key));
	if (rc < 0)
		goto done;
	rc_buf_printf(&tmp, "%s.%ld.tmp", path, (long)getpid());
	fd = open(tmp.ptr, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = rc_error_set_os("cannot create '%s'", tmp.ptr);
		goto done;
	}
	if (rc_state_write_all(fd, hex.ptr, hex.len) < 0 ||
	    rc_state_write_all(fd, "\n", 1) < 0 || fsync(fd) < 0) {
		rc = rc_error_set_os("cannot write '%s'", tmp.ptr);
		close(fd);
		goto out;
	}
	if (close(fd) < 0) {
		rc = rc_error_set_os("cannot write '%s'", tmp.ptr);
		goto out;
	}
	/* link() never replaces: the first process's key stays */
	if (link(tmp.ptr, path) < 0 && errno != EEXIST &&
	    rename(tmp.ptr, path) < 0)
		rc = rc_error_set_os("cannot create '%s'", path);
	else
		rc = rc_state_fsync_dir(dir);
out:
	unlink(tmp.ptr);
done:
	OPENSSL_cleanse(hex.ptr, hex.len);
	rc_buf_release(&hex);
	rc_buf_release(&tmp);
	return rc;
}

int rc_state_secret_key(unsigned char key[RC_SECRET_KEY_LEN],
			const char *state_dir, bool create, bool *found)
{
	const char *over = getenv(RC_SECRET_KEY_ENV);
	rc_buf path = RC_BUF_INIT_MAX(PATH_MAX * 2);
	int rc;

	*found = false;
	if (over && *over) {
		if ((rc = read_key(key, over)) < 0)
			rc_error_prefix("%s", RC_SECRET_KEY_ENV);
		*found = rc == 0;
		return rc;
	}
	rc_buf_printf(&path, "%s/%s", state_dir, RC_SECRET_KEY_FILE);
	rc = read_key(key, path.ptr);
	if (rc == RC_ENOTFOUND && create &&
	    (rc = create_key(path.ptr, state_dir)) == 0)
		rc = read_key(key, path.ptr);
	*found = rc == 0;
	if (rc == RC_ENOTFOUND && !create) {
		rc_error_clear();
		rc = 0;
	}
	rc_buf_release(&path);
	return rc;
}
