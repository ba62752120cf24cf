#include "reconciler/common.h"
#include "reconciler/buf.h"
#include "reconciler/error.h"
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

void rc_state_now(char out[RC_STATE_TIME_SIZE])
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(out, RC_STATE_TIME_SIZE, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, RC_STATE_TIME_SIZE - n, ".%03ldZ",
		 ts.tv_nsec / 1000000L);
}

/* Reads exactly n digits at *p. */
static bool digits(const char **p, int n, int *out)
{
	int v = 0;

	while (n-- > 0) {
		if (!isdigit((unsigned char)**p))
			return false;
		v = v * 10 + (**p - '0');
		(*p)++;
	}
	*out = v;
	return true;
}

bool rc_state_time_parse(const char *s, struct timespec *out)
{
	const char *p = s;
	int year, mon, day, hour, min, sec, oh = 0, om = 0;
	long nsec = 0, scale = 100000000L;
	struct tm tm = {0};
	time_t t;

	if (!s)
		return false;
	if (!digits(&p, 4, &year) || *p++ != '-' || !digits(&p, 2, &mon) ||
	    *p++ != '-' || !digits(&p, 2, &day))
		return false;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return false;
	p++;
	if (!digits(&p, 2, &hour) || *p++ != ':' || !digits(&p, 2, &min) ||
	    *p++ != ':' || !digits(&p, 2, &sec))
		return false;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return false;
		for (; isdigit((unsigned char)*p); p++) {
			nsec += (*p - '0') * scale;
			scale /= 10;
		}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1;

		if (!digits(&p, 2, &oh) || *p++ != ':' || !digits(&p, 2, &om))
			return false;
		oh *= sign;
		om *= sign;
	} else {
		return false;
	}
	if (*p || mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 ||
	    min > 59 || sec > 60 || oh > 23 || oh < -23 || om > 59 || om < -59)
		return false;
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	t = timegm(&tm);
	out->tv_sec = t - (time_t)oh * 3600 - (time_t)om * 60;
	out->tv_nsec = nsec;
	return true;
}
