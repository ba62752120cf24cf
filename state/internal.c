#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/error.h"
#include "state/internal.h"

#include <fcntl.h>

bool rc_state_name_ok(const char *s)
{
	size_t i;

	if (!s || !*s || s[0] == '.')
		return false;
	for (i = 0; s[i]; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (i >= 200)
			return false;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
		      ch == '-'))
			return false;
	}
	return true;
}

int rc_state_fsync_dir(const char *dir)
{
	int fd, r;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return rc_error_set_os("cannot open directory '%s'", dir);
	do {
		r = fsync(fd);
	} while (r < 0 && errno == EINTR);
	if (r < 0) {
		rc_error_set_os("cannot fsync directory '%s'", dir);
		close(fd);
		return RC_ERROR;
	}
	close(fd);
	return 0;
}

/* The parent directory of the prefix p[0..len) (which has no trailing
 * '/'), into parent. */
static void parent_of(rc_buf *parent, const char *p, size_t len)
{
	size_t i = len;

	while (i > 0 && p[i - 1] != '/')
		i--;
	while (i > 1 && p[i - 1] == '/')
		i--;
	rc_buf_clear(parent);
	if (i == 0)
		rc_buf_puts(parent, ".");
	else
		rc_buf_put(parent, p, i);
}

int rc_state_mkdirs(const char *path)
{
	rc_buf p = RC_BUF_INIT_MAX(PATH_MAX);
	rc_buf parent = RC_BUF_INIT_MAX(PATH_MAX);
	struct stat st;
	size_t i;
	int error = 0;

	if (!*path)
		return rc_error_set(RC_EINVALID, RC_ECLASS_STATE,
				    "empty state directory path");
	if ((error = rc_buf_puts(&p, path)) < 0)
		goto cleanup;
	while (p.len > 1 && p.ptr[p.len - 1] == '/')
		rc_buf_truncate(&p, p.len - 1);
	/* each prefix ending before a '/', then the whole path */
	for (i = 1; i <= p.len; i++) {
		char saved;

		if (i < p.len && (p.ptr[i] != '/' || p.ptr[i - 1] == '/'))
			continue;
		saved = p.ptr[i];
		p.ptr[i] = '\0';
		if (mkdir(p.ptr, 0755) == 0) {
			parent_of(&parent, p.ptr, i);
			error = rc_state_fsync_dir(parent.ptr);
		} else if (errno != EEXIST) {
			error = rc_error_set_os("cannot create directory '%s'",
						p.ptr);
		} else if (stat(p.ptr, &st) < 0) {
			error = rc_error_set_os("cannot stat '%s'", p.ptr);
		} else if (!S_ISDIR(st.st_mode)) {
			error = rc_error_set(RC_EINVALID, RC_ECLASS_STATE,
					     "'%s' is not a directory", p.ptr);
		}
		p.ptr[i] = saved;
		if (error < 0)
			goto cleanup;
	}

cleanup:
	rc_buf_release(&p);
	rc_buf_release(&parent);
	return error;
}

int rc_state_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int rc_state_read_fd(rc_buf *b, int fd, const char *path, size_t max)
{
	size_t start = b->len;

	for (;;) {
		size_t room;
		ssize_t got;

		if (b->len - start >= max)
			break;
		room = max - (b->len - start);
		if (room > 65536)
			room = 65536;
		if (rc_buf_grow(b, room) < 0)
			return RC_ETOOBIG;
		got = read(fd, b->ptr + b->len, room);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return rc_error_set_os("cannot read '%s'", path);
		}
		if (got == 0)
			return 0;
		b->len += (size_t)got;
		b->ptr[b->len] = '\0';
	}
	/* max bytes read: anything more is too much */
	{
		char extra;
		ssize_t got;

		do {
			got = read(fd, &extra, 1);
		} while (got < 0 && errno == EINTR);
		if (got < 0)
			return rc_error_set_os("cannot read '%s'", path);
		if (got > 0)
			return rc_error_set(RC_ETOOBIG, RC_ECLASS_STATE,
					    "'%s' is larger than %zu bytes",
					    path, max);
	}
	return 0;
}

