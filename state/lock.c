#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "state/internal.h"
#include "state/lock.h"

#include <fcntl.h>
#include <sys/file.h>

/* How long a refused flock() is retried before the lock counts as held:
 * long enough to outlast a momentary shared probe (rc_lock_is_held()). */
#define LOCK_RETRY_MS 50
/* The holder's identity is small; a bigger lock file is not ours. */
#define HOLDER_MAX 65536

struct rc_lock {
	int fd;
	char *path;
};

static int lock_path(rc_buf *out, const char *state_dir, const char *env)
{
	if (!env || !rc_state_name_ok(env))
		return rc_error_set(RC_EINVALID, RC_ECLASS_STATE,
				    "invalid environment name '%s'",
				    env ? env : "(null)");
	return rc_buf_printf(out, "%s/locks/%s.lock", state_dir, env);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* flock(op | LOCK_NB), retried on EINTR: 0, or -1 with errno set. */
static int try_flock(int fd, int op)
{
	int r;

	do {
		r = flock(fd, op | LOCK_NB);
	} while (r < 0 && errno == EINTR);
	return r;
}

/* The holder's identity from the lock file (new ref), or NULL when the
 * file holds none (yet). */
static json_t *read_holder(int fd, const char *path)
{
	rc_buf b = RC_BUF_INIT_MAX(HOLDER_MAX + 1);
	json_t *v = NULL;

	if (lseek(fd, 0, SEEK_SET) == 0 &&
	    rc_state_read_fd(&b, fd, path, HOLDER_MAX) == 0)
		v = json_loadb(b.ptr, b.len, 0, NULL);
	rc_buf_release(&b);
	if (v && !json_is_object(v)) {
		json_decref(v);
		v = NULL;
	}
	return v;
}

/* This process's command line, arguments joined by spaces, redacted; NULL
 * when unknown. */
static char *command_line(void)
{
	rc_buf b = RC_BUF_INIT_MAX(4096);
	char *s = NULL;
	size_t i;
	int fd;

	fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	/* a long command line is cut, not refused */
	rc_state_read_fd(&b, fd, "/proc/self/cmdline", 1024);
	close(fd);
	while (b.len > 0 && b.ptr[b.len - 1] == '\0')
		b.len--;
	for (i = 0; i < b.len; i++)
		if (b.ptr[i] == '\0')
			b.ptr[i] = ' ';
	if (b.len > 0) {
		b.ptr[b.len] = '\0';
		rc_redact(&b);
		s = rc_buf_detach(&b);
	}
	rc_buf_release(&b);
	return s;
}

/* Records who holds the lock: truncate, write, fsync. */
static int write_holder(int fd, const char *path, const char *run_id)
{
	char host[256] = "", started[RC_TIME_SIZE];
	char *cmd = command_line(), *text = NULL;
	json_t *info;
	int error = 0, r;

	if (gethostname(host, sizeof(host) - 1) < 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	rc_time_now(started);
	info = json_pack("{s:I, s:s, s:s, s:s?, s:s?}", "pid",
			 (json_int_t)getpid(), "host",
			 host[0] ? host : "unknown", "started", started, "run",
			 run_id, "command", cmd);
	free(cmd);
	text = info ? json_dumps(info, JSON_COMPACT | JSON_PRESERVE_ORDER)
		    : NULL;
	json_decref(info);
	if (!text)
		return rc_error_set(RC_ERROR, RC_ECLASS_INTERNAL,
				    "cannot encode the lock holder of '%s'",
				    path);
	if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0 ||
	    rc_state_write_all(fd, text, strlen(text)) < 0 ||
	    rc_state_write_all(fd, "\n", 1) < 0) {
		error = rc_error_set_os("cannot write lock file '%s'", path);
		goto cleanup;
	}
	do {
		r = fsync(fd);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		error = rc_error_set_os("cannot fsync lock file '%s'", path);

cleanup:
	free(text);
	return error;
}

static int locked_error(int fd, const char *path, const char *env)
{
	json_t *h = read_holder(fd, path);
	const char *host = NULL, *started = NULL;
	json_t *run = NULL;
	json_int_t pid = 0;
	rc_buf run_part = RC_BUF_INIT_MAX(512);
	int error;

	if (!h || json_unpack(h, "{s:I, s:s, s:s, s?o}", "pid", &pid, "host",
			      &host, "started", &started, "run", &run) < 0) {
		error = rc_error_set(RC_ELOCKED, RC_ECLASS_STATE,
				     "environment '%s' is locked by another "
				     "process, which has not recorded itself "
				     "in '%s'",
				     env, path);
		goto cleanup;
	}
	if (json_is_string(run))
		rc_buf_printf(&run_part, " (run %s)", json_string_value(run));
	error = rc_error_set(RC_ELOCKED, RC_ECLASS_STATE,
			     "environment '%s' is locked by pid %lld on host "
			     "%s since %s%s",
			     env, (long long)pid, host, started, run_part.ptr);

cleanup:
	json_decref(h);
	rc_buf_release(&run_part);
	return error;
}

int rc_lock_acquire(rc_lock **out, const char *state_dir, const char *env,
		    const char *run_id)
{
	rc_buf dir = RC_BUF_INIT_MAX(PATH_MAX);
	rc_buf path = RC_BUF_INIT_MAX(PATH_MAX);
	rc_lock *l;
	int fd = -1, error, waited = 0;

	*out = NULL;
	if ((error = lock_path(&path, state_dir, env)) < 0 ||
	    (error = rc_buf_printf(&dir, "%s/locks", state_dir)) < 0 ||
	    (error = rc_state_mkdirs(dir.ptr)) < 0)
		goto cleanup;
	fd = open(path.ptr, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		error = rc_error_set_os("cannot open lock file '%s'", path.ptr);
		goto cleanup;
	}
	while (try_flock(fd, LOCK_EX) < 0) {
		if (errno != EWOULDBLOCK) {
			error = rc_error_set_os("cannot lock '%s'", path.ptr);
			goto cleanup;
		}
		if (waited >= LOCK_RETRY_MS) {
			error = locked_error(fd, path.ptr, env);
			goto cleanup;
		}
		sleep_ms(1);
		waited++;
	}
	if ((error = write_holder(fd, path.ptr, run_id)) < 0)
		goto cleanup; /* closing fd below releases the lock */
	l = rc_calloc(1, sizeof(*l));
	l->fd = fd;
	l->path = rc_buf_detach(&path);
	fd = -1;
	*out = l;

cleanup:
	if (fd >= 0)
		close(fd);
	rc_buf_release(&dir);
	rc_buf_release(&path);
	return error;
}

void rc_lock_release(rc_lock *l)
{
	if (!l)
		return;
	/* forget the holder before letting go, so that nobody reads it as
	 * the identity of a later holder */
	if (ftruncate(l->fd, 0) < 0)
		RC_DEBUG("cannot truncate lock file '%s': %s", l->path,
			 strerror(errno));
	close(l->fd);
	free(l->path);
	free(l);
}

json_t *rc_lock_holder(const char *state_dir, const char *env)
{
	rc_buf path = RC_BUF_INIT_MAX(PATH_MAX);
	json_t *h = NULL;
	int fd;

	if (lock_path(&path, state_dir, env) < 0) {
		rc_error_clear();
		goto cleanup;
	}
	fd = open(path.ptr, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto cleanup;
	if (try_flock(fd, LOCK_SH) < 0) {
		if (errno == EWOULDBLOCK) {
			h = read_holder(fd, path.ptr);
			if (!h)
				h = json_object();
		}
	}
	close(fd); /* releases the shared lock if it was taken */

cleanup:
	rc_buf_release(&path);
	return h;
}

bool rc_lock_is_held(const char *state_dir, const char *env)
{
	json_t *h = rc_lock_holder(state_dir, env);
	bool held = h != NULL;

	json_decref(h);
	return held;
}
