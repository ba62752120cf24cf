/*
 * The local driver's system layer: state files, /proc, starting and
 * stopping processes, health checks. Nothing here knows about resources.
 *
 * Children are started with fork and execve only (never a shell). The
 * driver may be called from several threads at once, so a child runs only
 * async-signal-safe calls between fork and exec: everything it needs (the
 * program's path, argv, the environment, open files) is prepared before
 * the fork.
 */
#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "drivers/local.h"
#include "schema/secrets.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

extern char **environ;

#define PATH_CAP (PATH_MAX * 2)

/* ---------------------------------------------------------------- time */

long long rc_local_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rc_local_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* --------------------------------------------------------------- files */

int rc_local_mkdirs(const char *path, mode_t mode)
{
	rc_buf p = RC_BUF_INIT_MAX(PATH_CAP);
	char *s, c;
	int rc = 0;

	if (rc_buf_puts(&p, path) < 0)
		return rc_error_set(RC_ETOOBIG, RC_ECLASS_OS,
				    "path too long: '%.64s...'", path);
	for (s = p.ptr + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		c = *s;
		*s = '\0';
		if (mkdir(p.ptr, mode) < 0 && errno != EEXIST) {
			rc = rc_error_set_os("cannot create the directory '%s'",
					     p.ptr);
			break;
		}
		*s = c;
		if (!c)
			break;
	}
	rc_buf_release(&p);
	return rc;
}

static int fsync_dir_of(const char *path)
{
	rc_buf dir = RC_BUF_INIT_MAX(PATH_CAP);
	const char *slash = strrchr(path, '/');
	int fd;

	rc_buf_put(&dir, path, slash ? (size_t)(slash - path) : 0);
	if (!dir.len)
		rc_buf_putc(&dir, slash ? '/' : '.');
	fd = open(dir.ptr, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	rc_buf_release(&dir);
	if (fd < 0)
		return -1;
	fsync(fd);
	close(fd);
	return 0;
}

static int write_all(int fd, const char *data, size_t len)
{
	while (len) {
		ssize_t w = write(fd, data, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		data += w;
		len -= (size_t)w;
	}
	return 0;
}

int rc_local_write_atomic(const char *path, const char *data, size_t len)
{
	static unsigned long counter;
	rc_buf tmp = RC_BUF_INIT_MAX(PATH_CAP);
	int fd, rc = 0;

	rc_buf_printf(&tmp, "%s.tmp-%ld-%lu", path, (long)getpid(),
		      __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
	fd = open(tmp.ptr, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = rc_error_set_os("cannot write '%s'", tmp.ptr);
		goto done;
	}
	if (write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		rc = rc_error_set_os("cannot write '%s'", tmp.ptr);
		close(fd);
		unlink(tmp.ptr);
		goto done;
	}
	close(fd);
	if (rename(tmp.ptr, path) < 0) {
		rc = rc_error_set_os("cannot rename '%s' to '%s'", tmp.ptr,
				     path);
		unlink(tmp.ptr);
		goto done;
	}
	fsync_dir_of(path);
done:
	rc_buf_release(&tmp);
	return rc;
}

/* How much more room to ask for when reading fd with `have` bytes read:
 * the rest of the file as fstat(2) sees it, at least 64 KiB. */
static size_t st_size_hint(int fd, size_t have)
{
	struct stat st;

	if (fstat(fd, &st) == 0 && st.st_size > 0 &&
	    (size_t)st.st_size > have + 65536)
		return (size_t)st.st_size - have + 1;
	return 65536;
}

int rc_local_read_file(const char *path, size_t max, rc_buf *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return rc_error_set_os("cannot read '%s'", path);
	out->max = max;
	for (;;) {
		/* in one buffer grown to the file's size: few read(2)s */
		size_t want = st_size_hint(fd, out->len);
		char probe;
		ssize_t n;

		if (want > max - out->len)
			want = max - out->len;
		if (want == 0) {
			/* at the cap: one byte more is too much */
			while ((n = read(fd, &probe, 1)) < 0 && errno == EINTR)
				;
			if (n > 0)
				rc = rc_error_set(RC_ETOOBIG, RC_ECLASS_OS,
						  "'%s' is larger than %zu "
						  "bytes",
						  path, max);
			else if (n < 0)
				rc = rc_error_set_os("cannot read '%s'", path);
			break;
		}
		if ((rc = rc_buf_grow(out, want)) < 0)
			break;
		n = read(fd, out->ptr + out->len, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = rc_error_set_os("cannot read '%s'", path);
			break;
		}
		if (n == 0)
			break;
		out->len += (size_t)n;
		out->ptr[out->len] = '\0';
	}
	close(fd);
	return rc;
}

int rc_local_read_json(json_t **out, const char *path)
{
	/* the whole file in one buffer, then json_loadb: json_loadfd would
	 * read(2) one byte at a time */
	rc_buf text = RC_BUF_INIT;
	json_error_t err;
	int rc;

	*out = NULL;
	rc = rc_local_read_file(path, (size_t)1 << 30, &text);
	if (rc == 0) {
		*out = json_loadb(text.ptr, text.len, JSON_REJECT_DUPLICATES,
				  &err);
		if (!*out || !json_is_object(*out)) {
			json_decref(*out);
			*out = NULL;
			rc = rc_error_set(RC_EINVALID, RC_ECLASS_STATE,
					  "'%s' is not a state record: %s "
					  "(line %d)",
					  path, err.text, err.line);
		}
	}
	rc_buf_release(&text);
	return rc;
}

int rc_local_write_json(const char *path, const json_t *doc)
{
	char *s = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
	int rc;

	if (!s)
		return rc_error_set(RC_ERROR, RC_ECLASS_JSON,
				    "cannot encode the record '%s'", path);
	rc = rc_local_write_atomic(path, s, strlen(s));
	free(s);
	return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	RC_UNUSED(st);
	RC_UNUSED(ftw);
	if (flag == FTW_DP || flag == FTW_D)
		return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
	return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

int rc_local_rmtree(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0 && errno == ENOENT)
		return 0;
	if (nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS) < 0)
		return rc_error_set_os("cannot remove '%s'", path);
	return 0;
}

char *rc_local_abspath(const char *path)
{
	rc_buf full = RC_BUF_INIT_MAX(PATH_CAP);
	rc_buf abs = RC_BUF_INIT_MAX(PATH_CAP);
	char real[PATH_MAX], *cut, *res = NULL;
	const char *p, *seg;

	if (path[0] != '/') {
		if (!getcwd(real, sizeof(real))) {
			rc_error_set_os("cannot resolve '%s'", path);
			goto done;
		}
		rc_buf_printf(&full, "%s/", real);
	}
	rc_buf_puts(&full, path);
	if (full.toobig) {
		rc_error_set(RC_ETOOBIG, RC_ECLASS_OS,
			     "path too long: '%.64s...'", path);
		goto done;
	}
	/* the longest leading part that can be resolved, its links
	 * resolved; then the rest, without "." and with ".." taken away */
	for (cut = full.ptr + full.len;;) {
		char c = *cut;

		*cut = '\0';
		p = realpath(cut == full.ptr ? "/" : full.ptr, real);
		*cut = c;
		if (p || cut == full.ptr)
			break;
		while (cut > full.ptr && *--cut != '/')
			;
	}
	if (!p)
		snprintf(real, sizeof(real), "/");
	rc_buf_puts(&abs, strcmp(real, "/") ? real : "");
	for (p = cut; *p;) {
		size_t n;

		seg = *p == '/' ? p + 1 : p;
		n = strcspn(seg, "/");
		p = seg + n;
		if (!n || (n == 1 && seg[0] == '.'))
			continue;
		if (n == 2 && seg[0] == '.' && seg[1] == '.') {
			char *slash = strrchr(abs.ptr, '/');

			rc_buf_truncate(&abs,
					slash ? (size_t)(slash - abs.ptr) : 0);
			continue;
		}
		rc_buf_putc(&abs, '/');
		rc_buf_put(&abs, seg, n);
	}
	if (!abs.len)
		rc_buf_putc(&abs, '/');
	res = rc_buf_detach(&abs);
done:
	rc_buf_release(&full);
	rc_buf_release(&abs);
	return res;
}

void rc_local_tail(rc_buf *out, const char *path)
{
	rc_buf b = RC_BUF_INIT_MAX(1 << 16);
	char chunk[8192];
	ssize_t r;
	off_t size;
	size_t start, lines = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	if (size > (off_t)sizeof(chunk))
		lseek(fd, size - (off_t)sizeof(chunk), SEEK_SET);
	else
		lseek(fd, 0, SEEK_SET);
	while ((r = read(fd, chunk, sizeof(chunk))) > 0)
		rc_buf_put(&b, chunk, (size_t)r);
	close(fd);
	while (b.len && (b.ptr[b.len - 1] == '\n' || b.ptr[b.len - 1] == '\r'))
		rc_buf_truncate(&b, b.len - 1);
	/* walk back over the last lines, within the byte budget */
	start = b.len;
	while (start > 0 && lines < RC_LOCAL_TAIL_LINES &&
	       b.len - start < RC_LOCAL_TAIL_BYTES) {
		start--;
		if (b.ptr[start] == '\n') {
			lines++;
			if (lines == RC_LOCAL_TAIL_LINES) {
				start++;
				break;
			}
		}
	}
	if (start < b.len) {
		rc_buf t = RC_BUF_INIT_MAX(1 << 16);
		const char *p;

		rc_buf_put(&t, b.ptr + start, b.len - start);
		rc_redact(&t);
		for (p = t.ptr; *p;) {
			const char *nl = strchr(p, '\n');
			size_t n = nl ? (size_t)(nl - p) : strlen(p);

			rc_buf_puts(out, "\n    ");
			for (size_t i = 0; i < n; i++) {
				unsigned char c = (unsigned char)p[i];

				rc_buf_putc(out, c < 0x20 && c != '\t'
							 ? '?'
							 : (char)c);
			}
			p += n;
			if (*p)
				p++;
		}
		rc_buf_release(&t);
	}
	rc_buf_release(&b);
}

/* ---------------------------------------------------------------- /proc */

void rc_local_procs_add(rc_local_procs *l, const rc_local_proc *p)
{
	RC_GROW(l->items, l->cap, l->n + 1);
	l->items[l->n] = *p;
	l->items[l->n].service = rc_strdup(p->service);
	l->n++;
}

void rc_local_procs_release(rc_local_procs *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i].service);
	free(l->items);
	memset(l, 0, sizeof(*l));
}

static int proc_read_once(const char *path, rc_buf *out)
{
	char chunk[8192];
	ssize_t r;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while ((r = read(fd, chunk, sizeof(chunk))) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || rc_buf_put(out, chunk, (size_t)r) < 0) {
			close(fd);
			return -1;
		}
	}
	close(fd);
	return 0;
}

int rc_local_proc_read(pid_t pid, const char *file, rc_buf *out)
{
	char path[64];
	int rc, tries;

	snprintf(path, sizeof(path), "/proc/%ld/%s", (long)pid, file);
	/* A process in the middle of execve() shows an empty environ and
	 * cmdline for a moment: read again rather than take a live replica
	 * for a dead one (and start a duplicate). */
	for (tries = 0;; tries++) {
		size_t before = out->len;

		rc = proc_read_once(path, out);
		if (rc < 0 || out->len > before || tries == 10 ||
		    (strcmp(file, "environ") && strcmp(file, "cmdline")))
			return rc;
		usleep(5000);
	}
}

int rc_local_proc_stat(pid_t pid, char *state, unsigned long long *starttime,
		       pid_t *session)
{
	rc_buf b = RC_BUF_INIT_MAX(4096);
	const char *p;
	int field, rc = -1;

	if (pid <= 0 || rc_local_proc_read(pid, "stat", &b) < 0)
		goto done;
	/* "pid (comm) S ..." where comm may hold spaces and parentheses */
	p = strrchr(b.ptr, ')');
	if (!p || p[1] != ' ')
		goto done;
	p += 2;
	*state = *p;
	/* p is at field 3; the session is field 6, the start time 22 */
	for (field = 3; field < 22 && *p; field++) {
		if (field == 6 && session)
			*session = (pid_t)strtol(p, NULL, 10);
		p = strchr(p, ' ');
		if (!p)
			goto done;
		p++;
	}
	*starttime = strtoull(p, NULL, 10);
	rc = 0;
done:
	rc_buf_release(&b);
	return rc;
}

/* Exit statuses of children reaped while looking at them, for the
 * messages of wait(). */
static struct {
	pid_t pid;
	int status;
} reaped[64];
static unsigned reaped_next;
static pthread_mutex_t reaped_lock = PTHREAD_MUTEX_INITIALIZER;

int rc_local_reap(pid_t pid, int *status)
{
	int st = 0, found = 0;

	pthread_mutex_lock(&reaped_lock);
	if (waitpid(pid, &st, WNOHANG) == pid) {
		reaped[reaped_next % RC_ARRAY_SIZE(reaped)].pid = pid;
		reaped[reaped_next % RC_ARRAY_SIZE(reaped)].status = st;
		reaped_next++;
	}
	for (size_t i = 0; i < RC_ARRAY_SIZE(reaped); i++) {
		if (reaped[i].pid == pid) {
			st = reaped[i].status;
			found = 1;
		}
	}
	pthread_mutex_unlock(&reaped_lock);
	if (found && status)
		*status = st;
	return found;
}

bool rc_local_proc_alive(pid_t pid, unsigned long long starttime)
{
	char state = 0;
	unsigned long long st = 0;

	if (rc_local_proc_stat(pid, &state, &st, NULL) < 0)
		return false;
	if (state == 'Z' || state == 'X') {
		rc_local_reap(pid, NULL);
		return false;
	}
	return !starttime || st == starttime;
}

const char *rc_local_environ_get(const rc_buf *env, const char *name)
{
	size_t nlen = strlen(name);
	const char *p = env->ptr, *end = env->ptr + env->len;

	while (p < end) {
		size_t l = strnlen(p, (size_t)(end - p));

		if (l > nlen && !strncmp(p, name, nlen) && p[nlen] == '=')
			return p + nlen + 1;
		p += l + 1;
	}
	return NULL;
}

json_t *rc_local_proc_cmdline(pid_t pid)
{
	rc_buf b = RC_BUF_INIT_MAX(1 << 20);
	json_t *a = NULL;
	const char *p, *end;

	if (rc_local_proc_read(pid, "cmdline", &b) < 0 || !b.len)
		goto done;
	a = json_array();
	for (p = b.ptr, end = b.ptr + b.len; p < end;) {
		size_t l = strnlen(p, (size_t)(end - p));

		json_array_append_new(a, json_stringn(p, l));
		p += l + 1;
	}
done:
	rc_buf_release(&b);
	return a;
}

char *rc_local_proc_cwd(pid_t pid)
{
	char path[64], buf[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%ld/cwd", (long)pid);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return rc_strdup(buf);
}

static bool parse_owner_rest(const char *rest, char **service, int *replica)
{
	const char *slash = strrchr(rest, '/');
	char *end;
	long r;

	if (!slash || slash == rest || !slash[1] ||
	    !isdigit((unsigned char)slash[1]))
		return false;
	errno = 0;
	r = strtol(slash + 1, &end, 10);
	if (*end || errno || r < 0 || r > 100000)
		return false;
	if (memchr(rest, '/', (size_t)(slash - rest)))
		return false;
	*service = rc_strndup(rest, (size_t)(slash - rest));
	*replica = (int)r;
	return true;
}

const char *rc_local_mark(const rc_buf *env, const char *state)
{
	const char *s = rc_local_environ_get(env, RC_LOCAL_STATE_VAR);

	return s && !strcmp(s, state)
		       ? rc_local_environ_get(env, RC_LOCAL_OWNER_VAR)
		       : NULL;
}

static void scan(const char *state_dir, const char *prefix,
		 rc_local_procs *out, rc_local_procs *unscoped, bool leaders)
{
	DIR *dir = opendir("/proc");
	struct dirent *de;
	rc_buf env = RC_BUF_INIT_MAX(8 << 20);
	size_t plen = strlen(prefix);
	pid_t self = getpid();

	if (!dir)
		return;
	while ((de = readdir(dir)) != NULL) {
		rc_local_proc p = {0};
		rc_local_procs *into = out;
		const char *owner;
		char *end, state = 0;
		pid_t session = 0;
		long pid;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0 || pid == (long)self)
			continue;
		rc_buf_clear(&env);
		if (rc_local_proc_read((pid_t)pid, "environ", &env) < 0 ||
		    !env.len)
			continue;
		owner = rc_local_mark(&env, state_dir);
		if (!owner && unscoped &&
		    !rc_local_environ_get(&env, RC_LOCAL_STATE_VAR)) {
			owner = rc_local_environ_get(&env, RC_LOCAL_OWNER_VAR);
			into = unscoped;
		}
		if (!owner || strncmp(owner, prefix, plen))
			continue;
		if (!parse_owner_rest(owner + plen, &p.service, &p.replica))
			continue;
		p.pid = (pid_t)pid;
		/* a replica leads its session; what it starts (workers, the
		 * helpers of a wrapper script) inherits the mark but is not
		 * a replica */
		if (rc_local_proc_stat(p.pid, &state, &p.starttime, &session))
			state = 'X';
		if (state == 'Z' || state == 'X')
			rc_local_reap(p.pid, NULL);
		else if (session == p.pid || !leaders)
			rc_local_procs_add(into, &p);
		free(p.service);
	}
	closedir(dir);
	/* environ blocks may hold secret values: do not leave them around */
	if (env.cap)
		explicit_bzero(env.ptr, env.cap);
	rc_buf_release(&env);
}

void rc_local_scan(const char *state_dir, const char *prefix,
		   rc_local_procs *out, rc_local_procs *unscoped)
{
	scan(state_dir, prefix, out, unscoped, true);
}

void rc_local_scan_all(const char *state_dir, const char *prefix,
		       rc_local_procs *out)
{
	scan(state_dir, prefix, out, NULL, false);
}

bool rc_local_proc_verify(pid_t pid, unsigned long long starttime,
			  const char *state, const char *owner)
{
	rc_buf env = RC_BUF_INIT_MAX(8 << 20);
	const char *v;
	bool ok = false;

	if (!rc_local_proc_alive(pid, starttime))
		return false;
	if (rc_local_proc_read(pid, "environ", &env) == 0) {
		v = rc_local_mark(&env, state);
		ok = v && !strcmp(v, owner);
	}
	if (env.cap)
		explicit_bzero(env.ptr, env.cap);
	rc_buf_release(&env);
	/* it may have died while we read */
	return ok && rc_local_proc_alive(pid, starttime);
}

/* ------------------------------------------------------- listening ports */

void rc_local_listener_release(rc_local_listener *l)
{
	free(l->comm);
	free(l->cmdline);
	memset(l, 0, sizeof(*l));
}

/* Whether table (/proc/net/tcp or tcp6) has a socket listening on port:
 * 1 with its inode and owner, 0 when none, -1 when it cannot be read. */
static int listen_entry(const char *table, int port, unsigned long *inode,
			uid_t *uid)
{
	FILE *f = fopen(table, "re");
	char line[512];
	int found = 0;

	if (!f)
		return -1;
	/* "sl: local-address:port remote:port st tx:rx tr:when retrnsmt
	 * uid timeout inode ...", addresses and ports in hexadecimal; the
	 * first line is a header */
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned int lport, st;
		unsigned long u, ino;

		if (sscanf(line,
			   " %*u: %*[0-9A-Fa-f]:%X %*[0-9A-Fa-f]:%*X %X "
			   "%*X:%*X %*X:%*X %*X %lu %*d %lu",
			   &lport, &st, &u, &ino) != 4)
			continue;
		if (st != 0x0A || (int)lport != port) /* 0A: TCP_LISTEN */
			continue;
		*inode = ino;
		*uid = (uid_t)u;
		found = 1;
	}
	fclose(f);
	return found;
}

/* The first process with an open file descriptor on the socket inode, or
 * -1 when none can be seen (another user's processes, without
 * privileges). */
static pid_t socket_holder(unsigned long inode)
{
	DIR *proc = opendir("/proc"), *fds;
	struct dirent *de, *fe;
	char want[64], link[64], path[320];
	pid_t found = -1;

	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	while (proc && found < 0 && (de = readdir(proc)) != NULL) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
		if (!(fds = opendir(path)))
			continue;
		while (found < 0 && (fe = readdir(fds)) != NULL) {
			ssize_t n;

			if (fe->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/proc/%ld/fd/%s", pid,
				 fe->d_name);
			n = readlink(path, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = '\0';
			if (!strcmp(link, want))
				found = (pid_t)pid;
		}
		closedir(fds);
	}
	if (proc)
		closedir(proc);
	return found;
}

/* /proc/PID/<file> as one printable line: NULs (between arguments) and
 * control characters as spaces, cut at max bytes with "..." (new string),
 * or NULL. */
static char *proc_line(pid_t pid, const char *file, size_t max)
{
	rc_buf b = RC_BUF_INIT_MAX(1 << 16);
	char *res = NULL;

	if (rc_local_proc_read(pid, file, &b) == 0) {
		while (b.len && (b.ptr[b.len - 1] == '\0' ||
				 b.ptr[b.len - 1] == '\n'))
			rc_buf_truncate(&b, b.len - 1);
		for (size_t i = 0; i < b.len; i++)
			if ((unsigned char)b.ptr[i] < 0x20)
				b.ptr[i] = ' ';
		if (b.len > max) {
			rc_buf_truncate(&b, max);
			rc_buf_puts(&b, "...");
		}
		if (b.len)
			res = rc_buf_detach(&b);
	}
	rc_buf_release(&b);
	return res;
}

int rc_local_listener_find(int port, rc_local_listener *out)
{
	static const char *const tables[] = {"/proc/net/tcp",
					     "/proc/net/tcp6"};
	unsigned long inode = 0;
	uid_t uid = 0;
	int found = -1;

	memset(out, 0, sizeof(*out));
	out->pid = -1;
	for (size_t i = 0; i < RC_ARRAY_SIZE(tables) && found <= 0; i++) {
		int r = listen_entry(tables[i], port, &inode, &uid);

		/* without IPv6 there is no tcp6 table */
		if (r >= 0 || found < 0)
			found = r;
	}
	if (found <= 0)
		return found;
	out->port = port;
	out->uid = uid;
	out->pid = socket_holder(inode);
	if (out->pid > 0) {
		out->comm = proc_line(out->pid, "comm", 64);
		out->cmdline = proc_line(out->pid, "cmdline", 200);
	}
	return 1;
}

/* ---------------------------------------------------------- environment */

static size_t env_find(const rc_local_env *e, const char *name)
{
	size_t nlen = strlen(name);

	for (size_t i = 0; i < e->n; i++)
		if (!strncmp(e->v[i], name, nlen) && e->v[i][nlen] == '=')
			return i;
	return e->n;
}

void rc_local_env_set(rc_local_env *e, const char *name, const char *value)
{
	size_t nlen = strlen(name), vlen = strlen(value);
	size_t i = env_find(e, name);
	char *s = rc_malloc(nlen + vlen + 2);

	memcpy(s, name, nlen);
	s[nlen] = '=';
	memcpy(s + nlen + 1, value, vlen + 1);
	if (i < e->n) {
		explicit_bzero(e->v[i], strlen(e->v[i]));
		free(e->v[i]);
		e->v[i] = s;
		return;
	}
	RC_GROW(e->v, e->cap, e->n + 2);
	e->v[e->n++] = s;
	e->v[e->n] = NULL;
}

const char *rc_local_env_get(const rc_local_env *e, const char *name)
{
	size_t i = env_find(e, name);

	return i < e->n ? e->v[i] + strlen(name) + 1 : NULL;
}

void rc_local_env_unset(rc_local_env *e, const char *name)
{
	size_t i = env_find(e, name);

	if (i == e->n)
		return;
	explicit_bzero(e->v[i], strlen(e->v[i]));
	free(e->v[i]);
	memmove(&e->v[i], &e->v[i + 1], (e->n - i) * sizeof(char *));
	e->n--;
}

void rc_local_env_base(rc_local_env *e)
{
	static const char *const keep[] = {"HOME", "LANG", "TZ"};
	const char *path = getenv("PATH");

	rc_local_env_set(e, "PATH",
			 path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
	for (size_t i = 0; i < RC_ARRAY_SIZE(keep); i++) {
		const char *v = getenv(keep[i]);

		if (v)
			rc_local_env_set(e, keep[i], v);
	}
}

void rc_local_env_inherit(rc_local_env *e)
{
	for (char **p = environ; p && *p; p++) {
		const char *eq = strchr(*p, '=');
		char *name;

		if (!eq || eq == *p)
			continue;
		name = rc_strndup(*p, (size_t)(eq - *p));
		rc_local_env_set(e, name, eq + 1);
		free(name);
	}
}

void rc_local_env_release(rc_local_env *e)
{
	for (size_t i = 0; i < e->n; i++) {
		explicit_bzero(e->v[i], strlen(e->v[i]));
		free(e->v[i]);
	}
	free(e->v);
	memset(e, 0, sizeof(*e));
}

/* ------------------------------------------------------------- spawning */

/* What a child reports through its exec pipe when a step fails. */
enum { STEP_SESSION = 1, STEP_STDIO, STEP_USER, STEP_CHDIR, STEP_EXEC };

struct child_report {
	int step;
	int err;
};

/* A one-way channel whose ends are close-on-exec from the start (another
 * thread may fork at any time): a socket pair, since pipe2() is not
 * POSIX. pfd[0] reads, pfd[1] writes. */
static int cloexec_pipe(int pfd[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pfd) < 0)
		return -1;
	shutdown(pfd[0], SHUT_WR);
	shutdown(pfd[1], SHUT_RD);
	return 0;
}

char *rc_local_find_program(const char *prog, const char *path,
			     const char *dir)
{
	rc_buf cand = RC_BUF_INIT_MAX(PATH_CAP);
	const char *p, *colon;
	struct stat st;

	if (strchr(prog, '/'))
		return rc_strdup(prog);
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path;; p = colon + 1) {
		size_t n;

		colon = strchr(p, ':');
		n = colon ? (size_t)(colon - p) : strlen(p);
		rc_buf_clear(&cand);
		if (n && p[0] != '/' && dir)
			rc_buf_printf(&cand, "%s/", dir);
		if (n)
			rc_buf_put(&cand, p, n);
		else if (dir)
			rc_buf_puts(&cand, dir);
		else
			rc_buf_putc(&cand, '.');
		rc_buf_printf(&cand, "/%s", prog);
		if (!cand.toobig && stat(cand.ptr, &st) == 0 &&
		    S_ISREG(st.st_mode) && access(cand.ptr, X_OK) == 0)
			return rc_buf_detach(&cand);
		if (!colon)
			break;
	}
	rc_buf_release(&cand);
	return NULL;
}

static int fd_above_stdio(int fd)
{
	int n;

	if (fd > 2)
		return fd;
	n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	close(fd);
	return n;
}

static void close_from(int lo, int hi)
{
	if (lo > hi)
		return;
#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned)lo, (unsigned)hi, 0) == 0)
		return;
#endif
	for (int fd = lo; fd <= hi && fd < 65536; fd++)
		close(fd);
}

static _Noreturn void child_fail(int fd, int step)
{
	struct child_report r = {step, errno};

	if (write(fd, &r, sizeof(r)) < 0) {
		/* nothing left to tell it with */
	}
	_exit(127);
}

static const char *step_name(int step)
{
	switch (step) {
	case STEP_SESSION:
		return "cannot start a session";
	case STEP_STDIO:
		return "cannot set up its output";
	case STEP_USER:
		return "cannot switch user";
	case STEP_CHDIR:
		return "cannot enter its working directory";
	default:
		return "cannot execute it";
	}
}

/* Appends the decimal digits of v to p (async-signal-safe). */
static char *put_uint(char *p, unsigned v)
{
	char d[16];
	int n = 0;

	do
		d[n++] = (char)('0' + v % 10);
	while ((v /= 10) && n < 16);
	while (n)
		*p++ = d[--n];
	return p;
}

/* In the forked child, for rc_local_spawn_opts.status_path: forks again;
 * the grandchild returns to become the program, this process waits for
 * it, writes "exit N" or "signal N" to tmp, renames it to path, and ends
 * as the program did. Async-signal-safe calls only. */
static void waiter(int report_fd, int devnull, int drain, const char *path,
		   const char *tmp)
{
	char text[32], *p = text, buf[4096];
	pid_t parent = getppid(), h = fork(), r;
	int st = 0, fd;

	if (h < 0)
		child_fail(report_fd, STEP_SESSION);
	if (h == 0)
		return;
	/* the waiter holds nothing of its parent's: not its terminal, not
	 * the pipe a caller reads until every writer is gone; only the read
	 * end of the program's output, as fd 3 */
	if (drain > 2) {
		if (drain != 3 && dup2(drain, 3) < 0)
			_exit(127);
		drain = 3;
	}
	dup2(devnull, 0);
	dup2(devnull, 1);
	dup2(devnull, 2);
	close_from(drain > 2 ? 4 : 3, INT_MAX);
	while ((r = waitpid(h, &st, WNOHANG)) != h) {
		struct timespec ts = {0, 100 * 1000 * 1000};

		if (r < 0 && errno != EINTR)
			_exit(127);
		if (drain > 2 && getppid() != parent) {
			/* the caller died: nobody reads the output; drained
			 * and dropped, never kept (it may hold a secret) */
			struct pollfd pf = {drain, POLLIN, 0};

			if (poll(&pf, 1, 100) > 0 &&
			    read(drain, buf, sizeof(buf)) <= 0) {
				close(drain); /* the program closed it */
				drain = -1;
			}
			continue;
		}
		nanosleep(&ts, NULL);
	}
	if (WIFSIGNALED(st)) {
		memcpy(p, "signal ", 7);
		p = put_uint(p + 7, (unsigned)WTERMSIG(st));
	} else {
		memcpy(p, "exit ", 5);
		p = put_uint(p + 5, (unsigned)WEXITSTATUS(st));
	}
	*p++ = '\n';
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		if (write(fd, text, (size_t)(p - text)) == (ssize_t)(p - text) &&
		    fsync(fd) == 0 && close(fd) == 0)
			rename(tmp, path);
		else
			close(fd);
	}
	if (WIFSIGNALED(st))
		kill(getpid(), WTERMSIG(st));
	_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 127);
}

int rc_local_spawn(pid_t *out, const rc_local_spawn_opts *o)
{
	char *prog = rc_local_find_program(
		o->argv[0], o->env ? rc_local_env_get(o->env, "PATH") : NULL,
		o->dir);
	char *empty_env[] = {NULL};
	char *const *envp = o->env && o->env->v ? o->env->v : empty_env;
	int pfd[2] = {-1, -1}, devnull = -1, outfd = -1;
	struct child_report rep;
	char status_tmp[PATH_MAX + 8];
	sigset_t all;
	ssize_t r;
	pid_t pid;
	int rc = 0;

	*out = -1;
	if (!prog)
		return rc_error_set(RC_ENOTFOUND, RC_ECLASS_OS,
				    "cannot run '%s': not found in PATH (%s)",
				    o->argv[0],
				    o->env && rc_local_env_get(o->env, "PATH")
					    ? rc_local_env_get(o->env, "PATH")
					    : "/usr/local/bin:/usr/bin:/bin");
	if (cloexec_pipe(pfd) < 0) {
		rc = rc_error_set_os("cannot run '%s': pipe", o->argv[0]);
		goto done;
	}
	pfd[0] = fd_above_stdio(pfd[0]);
	pfd[1] = fd_above_stdio(pfd[1]);
	devnull = fd_above_stdio(open("/dev/null", O_RDWR | O_CLOEXEC));
	if (o->out_fd >= 0)
		outfd = fd_above_stdio(fcntl(o->out_fd, F_DUPFD_CLOEXEC, 3));
	else
		outfd = fd_above_stdio(fcntl(devnull, F_DUPFD_CLOEXEC, 3));
	if (pfd[0] < 0 || pfd[1] < 0 || devnull < 0 || outfd < 0) {
		rc = rc_error_set_os("cannot run '%s': file descriptors",
				     o->argv[0]);
		goto done;
	}
	if (o->status_path &&
	    (size_t)snprintf(status_tmp, sizeof(status_tmp), "%s.tmp",
			     o->status_path) >= sizeof(status_tmp)) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_OS,
				  "cannot run '%s': status path too long",
				  o->argv[0]);
		goto done;
	}
	pid = fork();
	if (pid < 0) {
		rc = rc_error_set_os("cannot run '%s': fork", o->argv[0]);
		goto done;
	}
	if (pid == 0) {
		struct sigaction dfl;
		int hi = pfd[1];

		/* the child: async-signal-safe calls only */
		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		for (int sig = 1; sig < NSIG; sig++)
			sigaction(sig, &dfl, NULL);
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		if ((o->new_session ? setsid() : setpgid(0, 0)) < 0)
			child_fail(pfd[1], STEP_SESSION);
		if (o->status_path)
			waiter(pfd[1], devnull, o->drain_fd, o->status_path,
			       status_tmp);
		if (dup2(devnull, 0) < 0 || dup2(outfd, 1) < 0 ||
		    dup2(outfd, 2) < 0)
			child_fail(pfd[1], STEP_STDIO);
		if (o->drop && (setgroups(1, &o->gid) < 0 ||
				setgid(o->gid) < 0 || setuid(o->uid) < 0))
			child_fail(pfd[1], STEP_USER);
		if (o->dir && chdir(o->dir) < 0)
			child_fail(pfd[1], STEP_CHDIR);
		/* nothing else of ours leaks into the program */
		close_from(3, hi - 1);
		close_from(hi + 1, INT_MAX);
		execve(prog, (char *const *)(uintptr_t)o->argv, envp);
		child_fail(pfd[1], STEP_EXEC);
	}
	close(pfd[1]);
	pfd[1] = -1;
	do
		r = read(pfd[0], &rep, sizeof(rep));
	while (r < 0 && errno == EINTR);
	if (r == (ssize_t)sizeof(rep)) {
		int st;

		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		rc = rc_error_set(rep.err == ENOENT ? RC_ENOTFOUND : RC_ERROR,
				  RC_ECLASS_OS, "cannot run '%s': %s%s%s: %s",
				  o->argv[0], step_name(rep.step),
				  rep.step == STEP_CHDIR ? " " : "",
				  rep.step == STEP_CHDIR ? o->dir : "",
				  strerror(rep.err));
		goto done;
	}
	*out = pid;
done:
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	if (devnull >= 0)
		close(devnull);
	if (outfd >= 0)
		close(outfd);
	free(prog);
	return rc;
}

static void signal_group(pid_t pid, int sig)
{
	/* a process we started leads its own group; one started by hand
	 * (adopted) may not */
	if (kill(-pid, sig) < 0)
		kill(pid, sig);
}

int rc_local_stop_many(const pid_t *pids, const unsigned long long *starts,
		       size_t n, int sig, long grace_ms)
{
	bool *left = rc_calloc(n + 1, sizeof(bool));
	long long deadline = rc_local_now_ms() + grace_ms;
	size_t alive = 0, i;
	bool killed = false;
	int rc = 0;

	for (i = 0; i < n; i++) {
		if (!rc_local_proc_alive(pids[i], starts[i]))
			continue;
		signal_group(pids[i], sig);
		left[i] = true;
		alive++;
	}
	while (alive) {
		rc_local_sleep_ms(20);
		for (i = 0; i < n; i++) {
			if (left[i] &&
			    !rc_local_proc_alive(pids[i], starts[i])) {
				left[i] = false;
				alive--;
			}
		}
		if (!alive)
			break;
		if (!killed && rc_local_now_ms() >= deadline) {
			for (i = 0; i < n; i++) {
				if (!left[i])
					continue;
				RC_WARN("process %ld did not stop within %lds: "
					"killing it",
					(long)pids[i], grace_ms / 1000);
				signal_group(pids[i], SIGKILL);
			}
			killed = true;
			deadline = rc_local_now_ms() + 10000;
		} else if (killed && rc_local_now_ms() >= deadline) {
			for (i = 0; i < n; i++)
				if (left[i])
					rc = rc_error_set(
						RC_ETIMEOUT, RC_ECLASS_OS,
						"process %ld does not "
						"exit, even killed",
						(long)pids[i]);
			break;
		}
	}
	free(left);
	return rc;
}

int rc_local_stop(pid_t pid, unsigned long long starttime, int sig,
		  long grace_ms)
{
	return rc_local_stop_many(&pid, &starttime, 1, sig, grace_ms);
}

/* --------------------------------------------------------- run to the end */

#define CAPTURE_KEEP 4096

static void keep_tail(rc_buf *b, size_t keep);

/* The last CAPTURE_KEEP bytes of out, from the start of a line when one
 * begins close enough, redacted (new string; out is consumed). */
static char *capture_tail(rc_buf *out)
{
	if (out->len > CAPTURE_KEEP) {
		size_t drop = out->len - CAPTURE_KEEP;
		const char *nl = memchr(out->ptr + drop, '\n', out->len - drop);

		if (nl && (size_t)(nl - out->ptr) < drop + 512)
			drop = (size_t)(nl - out->ptr) + 1;
		memmove(out->ptr, out->ptr + drop, out->len - drop);
		rc_buf_truncate(out, out->len - drop);
	}
	rc_redact(out);
	return rc_buf_detach(out);
}

int rc_local_run_capture(const rc_local_spawn_opts *opts, long timeout_ms,
			 rc_run_result *res)
{
	rc_local_spawn_opts o = *opts;
	const char *const *argv = opts->argv;
	rc_buf out = RC_BUF_INIT_MAX(4 * CAPTURE_KEEP);
	long long deadline = rc_local_now_ms() + timeout_ms, drain_until = 0;
	int pfd[2], st = 0, rc = 0;
	bool exited = false, eof = false, termed = false;
	long long kill_at = 0;
	pid_t pid;

	memset(res, 0, sizeof(*res));
	res->exit_code = -1;
	if (cloexec_pipe(pfd) < 0)
		return rc_error_set_os("cannot run '%s': pipe", argv[0]);
	o.out_fd = pfd[1];
	o.new_session = false;
	rc = rc_local_spawn(&pid, &o);
	close(pfd[1]);
	if (rc < 0) {
		close(pfd[0]);
		res->exit_code = 127;
		return rc;
	}
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	for (;;) {
		struct pollfd p = {pfd[0], POLLIN, 0};
		long long now = rc_local_now_ms();

		if (!exited) {
			pid_t w = waitpid(pid, &st, WNOHANG);

			if (w == pid) {
				exited = true;
				/* background children may keep the pipe
				 * open: read what is there, not until EOF */
				drain_until = now + 300;
			}
		}
		if (exited && (eof || now >= drain_until))
			break;
		if (!exited && !termed && now >= deadline) {
			res->timed_out = true;
			kill(-pid, SIGTERM);
			termed = true;
			kill_at = now + 5000;
		} else if (termed && !exited && kill_at && now >= kill_at) {
			kill(-pid, SIGKILL);
			kill_at = 0;
		}
		if (!eof && poll(&p, 1, 50) > 0) {
			char chunk[4096];
			ssize_t r = read(pfd[0], chunk, sizeof(chunk));

			if (r == 0) {
				eof = true;
			} else if (r > 0) {
				if (out.len + (size_t)r > 3 * CAPTURE_KEEP) {
					size_t drop = out.len - CAPTURE_KEEP;

					memmove(out.ptr, out.ptr + drop,
						out.len - drop);
					rc_buf_truncate(&out, out.len - drop);
				}
				rc_buf_put(&out, chunk, (size_t)r);
			}
		} else if (eof) {
			rc_local_sleep_ms(20);
		}
	}
	close(pfd[0]);
	if (termed)
		kill(-pid, SIGKILL); /* whatever is left of its group */
	res->output_tail = capture_tail(&out);
	if (!res->timed_out && WIFEXITED(st))
		res->exit_code = WEXITSTATUS(st);
	if (res->timed_out)
		RC_INFO("local: '%s' did not finish within %lds: stopped",
			argv[0], timeout_ms / 1000);
	return 0;
}

/* -------------------------------------------------------- health checks */

static int connect_local(int port, long timeout_ms, rc_buf *err)
{
	struct sockaddr_in sa;
	struct pollfd p;
	socklen_t sl = sizeof(int);
	int fd, soerr = 0, r;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		rc_buf_printf(err, "socket: %s", strerror(errno));
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		rc_buf_printf(err, "connect to 127.0.0.1:%d: %s", port,
			      strerror(errno));
		close(fd);
		return -1;
	}
	p.fd = fd;
	p.events = POLLOUT;
	do
		r = poll(&p, 1, (int)timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r == 0) {
		rc_buf_printf(err,
			      "connect to 127.0.0.1:%d: no answer within "
			      "%ldms",
			      port, timeout_ms);
		close(fd);
		return -1;
	}
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
	if (r < 0 || soerr) {
		rc_buf_printf(err, "connect to 127.0.0.1:%d: %s", port,
			      strerror(r < 0 ? errno : soerr));
		close(fd);
		return -1;
	}
	return fd;
}

int rc_local_check_tcp(int port, long timeout_ms, rc_buf *err)
{
	int fd = connect_local(port, timeout_ms, err);

	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

int rc_local_check_http(int port, const char *path, long timeout_ms,
			rc_buf *err)
{
	long long deadline = rc_local_now_ms() + timeout_ms;
	rc_buf req = RC_BUF_INIT_MAX(8192), rep = RC_BUF_INIT_MAX(8192);
	size_t sent = 0;
	int fd = connect_local(port, timeout_ms, err), rc = -1, status;

	if (fd < 0)
		return -1;
	rc_buf_printf(&req,
		      "GET %s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n"
		      "User-Agent: reconcile\r\nConnection: close\r\n\r\n",
		      path, port);
	while (!strchr(rep.ptr, '\n')) {
		struct pollfd p = {fd, sent < req.len ? POLLOUT : POLLIN, 0};
		long long left = deadline - rc_local_now_ms();
		ssize_t r;
		char chunk[1024];

		if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
			rc_buf_printf(err,
				      "GET %s on 127.0.0.1:%d: no answer "
				      "within %ldms",
				      path, port, timeout_ms);
			goto done;
		}
		if (sent < req.len) {
			r = send(fd, req.ptr + sent, req.len - sent,
				 MSG_NOSIGNAL);
			if (r < 0 && errno != EAGAIN && errno != EINTR) {
				rc_buf_printf(err, "GET %s on 127.0.0.1:%d: %s",
					      path, port, strerror(errno));
				goto done;
			}
			if (r > 0)
				sent += (size_t)r;
			continue;
		}
		r = recv(fd, chunk, sizeof(chunk), 0);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r <= 0) {
			rc_buf_printf(err, "GET %s on 127.0.0.1:%d: %s", path,
				      port,
				      r < 0 ? strerror(errno)
					    : "connection closed before a "
					      "reply");
			goto done;
		}
		if (rc_buf_put(&rep, chunk, (size_t)r) < 0)
			break;
	}
	if (strncmp(rep.ptr, "HTTP/", 5) || !strchr(rep.ptr, ' ')) {
		rc_buf_printf(err, "GET %s on 127.0.0.1:%d: not an HTTP reply",
			      path, port);
		goto done;
	}
	status = (int)strtol(strchr(rep.ptr, ' ') + 1, NULL, 10);
	if (status >= 200 && status < 400) {
		rc = 0;
		goto done;
	}
	rc_buf_printf(err, "GET %s on 127.0.0.1:%d answered %d", path, port,
		      status);
done:
	close(fd);
	rc_buf_release(&req);
	rc_buf_release(&rep);
	return rc;
}

/* ------------------------------------------ hooks findable after a crash */

/* <state>/local/hooks/<run>.<env>.<name> (new), each part's characters
 * outside [A-Za-z0-9._-] as '_'; NULL when spec has no run_id. */
static char *hook_base(const char *state_dir, const char *env,
		       const json_t *spec)
{
	const char *parts[3] = {
		json_string_value(json_object_get(spec, "run_id")), env,
		json_string_value(json_object_get(spec, "name"))};
	rc_buf b = RC_BUF_INIT_MAX(PATH_MAX);

	if (!parts[0] || !parts[2])
		return NULL;
	rc_buf_printf(&b, "%s/local/hooks/", state_dir);
	for (int i = 0; i < 3; i++) {
		for (const char *c = parts[i]; *c; c++)
			rc_buf_putc(&b, isalnum((unsigned char)*c) ||
						*c == '.' || *c == '_' ||
						*c == '-'
					    ? *c
					    : '_');
		if (i < 2)
			rc_buf_putc(&b, '.');
	}
	return rc_buf_detach(&b);
}

/* RECONCILE_HOOK's value for a hook (new). */
static char *hook_mark(const char *env, const json_t *spec)
{
	rc_buf b = RC_BUF_INIT_MAX(4096);

	rc_buf_printf(&b, "%s/%s/%s",
		      json_string_value(json_object_get(spec, "run_id")), env,
		      json_string_value(json_object_get(spec, "name")));
	return rc_buf_detach(&b);
}

/* The tail of a hook's .out file, redacted (new string, "" without). */
static char *file_tail(const char *path)
{
	rc_buf out = RC_BUF_INIT_MAX(4 * CAPTURE_KEEP);
	char chunk[4 * CAPTURE_KEEP];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t size;
	ssize_t r;

	if (fd >= 0) {
		size = lseek(fd, 0, SEEK_END);
		if (size > (off_t)sizeof(chunk))
			lseek(fd, size - (off_t)sizeof(chunk), SEEK_SET);
		else
			lseek(fd, 0, SEEK_SET);
		r = read(fd, chunk, sizeof(chunk));
		if (r > 0)
			rc_buf_put(&out, chunk, (size_t)r);
		close(fd);
	}
	return capture_tail(&out);
}

int rc_local_run_tracked(rc_local_spawn_opts *o, const char *state_dir,
			 const char *env, const json_t *spec,
			 long timeout_ms, rc_run_result *res)
{
	char *base = hook_base(state_dir, env, spec), *mark;
	rc_buf path = RC_BUF_INIT_MAX(PATH_MAX * 2);
	rc_buf status = RC_BUF_INIT_MAX(PATH_MAX * 2);
	rc_buf out = RC_BUF_INIT_MAX(8 * CAPTURE_KEEP);
	long long deadline = rc_local_now_ms() + timeout_ms, kill_at = 0;
	long long eof_by = 0;
	bool termed = false, ended = false;
	int fd, st = 0, rc, pp[2] = {-1, -1};
	pid_t pid;

	memset(res, 0, sizeof(*res));
	res->exit_code = -1;
	if (!base)
		return rc_local_run_capture(o, timeout_ms, res);
	rc_buf_printf(&path, "%s/local/hooks", state_dir);
	if (rc_local_mkdirs(path.ptr, 0700) < 0) {
		rc = RC_ERROR;
		goto done;
	}
	rc_buf_clear(&path);
	rc_buf_printf(&path, "%s.out", base);
	rc_buf_printf(&status, "%s.status", base);
	/* the .out file is the trace that an attempt started; it gets the
	 * output's redacted tail when the hook ends (the output itself goes
	 * through a pipe, never to a file: it may hold a secret) */
	fd = open(path.ptr, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || cloexec_pipe(pp) < 0) {
		rc = rc_error_set_os("cannot create '%s'", path.ptr);
		if (fd >= 0)
			close(fd);
		goto done;
	}
	close(fd);
	pp[0] = fd_above_stdio(pp[0]);
	mark = hook_mark(env, spec);
	rc_local_env_set(o->env, RC_LOCAL_HOOK_VAR, mark);
	free(mark);
	o->out_fd = pp[1];
	o->drain_fd = pp[0];
	o->new_session = false;
	o->status_path = status.ptr;
	rc = rc_local_spawn(&pid, o);
	close(pp[1]);
	if (rc < 0) {
		close(pp[0]);
		res->exit_code = 127;
		goto done;
	}
	/* until the waiter ended and the output reached its end (or a
	 * second more: a child of the hook may hold it open) */
	while (!ended || (pp[0] >= 0 && rc_local_now_ms() < eof_by)) {
		struct pollfd pf = {pp[0], POLLIN, 0};
		long long now = rc_local_now_ms();
		char chunk[4096];

		if (pp[0] >= 0 && poll(&pf, 1, 50) > 0) {
			ssize_t n = read(pp[0], chunk, sizeof(chunk));

			if (n > 0) {
				rc_buf_put(&out, chunk, (size_t)n);
				keep_tail(&out, 4 * CAPTURE_KEEP);
			} else if (n == 0 || errno != EINTR) {
				close(pp[0]);
				pp[0] = -1;
			}
		} else if (pp[0] < 0) {
			rc_local_sleep_ms(50);
		}
		if (!ended && waitpid(pid, &st, WNOHANG) == pid) {
			ended = true;
			eof_by = rc_local_now_ms() + 1000;
		}
		if (ended)
			continue;

		if (!termed && now >= deadline) {
			res->timed_out = true;
			kill(-pid, SIGTERM);
			termed = true;
			kill_at = now + 5000;
		} else if (termed && kill_at && now >= kill_at) {
			kill(-pid, SIGKILL);
			kill_at = 0;
		}
	}
	if (pp[0] >= 0)
		close(pp[0]);
	if (termed)
		kill(-pid, SIGKILL); /* whatever is left of its group */
	res->output_tail = capture_tail(&out);
	/* the redacted tail, for hook_status after a crash of the caller */
	fd = open(path.ptr, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd >= 0) {
		size_t n = strlen(res->output_tail);

		if (write(fd, res->output_tail, n) != (ssize_t)n)
			RC_DEBUG("local: cannot keep the output of hook '%s'",
				 json_string_value(json_object_get(spec,
								   "name")));
		close(fd);
	}
	if (!res->timed_out && WIFEXITED(st))
		res->exit_code = WEXITSTATUS(st);
	if (res->timed_out)
		RC_INFO("local: hook '%s' did not finish within %lds: stopped",
			json_string_value(json_object_get(spec, "name")),
			timeout_ms / 1000);
done:
	free(base);
	rc_buf_release(&out);
	rc_buf_release(&path);
	rc_buf_release(&status);
	return rc;
}

/* A live process whose environment carries RECONCILE_HOOK=mark: 1 with
 * *pid and *start, else 0. */
static int find_hook_proc(const char *mark, pid_t *pid,
			  unsigned long long *start)
{
	DIR *dir = opendir("/proc");
	rc_buf env = RC_BUF_INIT_MAX(8 << 20);
	struct dirent *de;
	int found = 0;

	if (!dir)
		return 0;
	while (!found && (de = readdir(dir)) != NULL) {
		const char *v;
		char *end, state = 0;
		long p;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		p = strtol(de->d_name, &end, 10);
		if (*end || p <= 0 || p == (long)getpid())
			continue;
		rc_buf_clear(&env);
		if (rc_local_proc_read((pid_t)p, "environ", &env) < 0 ||
		    !(v = rc_local_environ_get(&env, RC_LOCAL_HOOK_VAR)) ||
		    strcmp(v, mark) ||
		    rc_local_proc_stat((pid_t)p, &state, start, NULL) < 0 ||
		    state == 'Z')
			continue;
		*pid = (pid_t)p;
		found = 1;
	}
	closedir(dir);
	if (env.cap)
		explicit_bzero(env.ptr, env.cap);
	rc_buf_release(&env);
	return found;
}

/* The hook's .status file: 1 with *state and res->exit_code, 0 when
 * there is none. */
static int read_hook_status(const char *path, rc_hook_state *state,
			    rc_run_result *res)
{
	char text[64] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r;
	long v;

	if (fd < 0)
		return 0;
	r = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (r <= 0)
		return 0;
	text[r] = 0;
	if (!strncmp(text, "exit ", 5)) {
		v = strtol(text + 5, NULL, 10);
		res->exit_code = (int)v;
		*state = v == 0 ? RC_HOOK_SUCCEEDED : RC_HOOK_FAILED;
	} else {
		res->exit_code = -1; /* killed by a signal */
		*state = RC_HOOK_FAILED;
	}
	return 1;
}

/* A hook with where: local (proc.h). */
int rc_local_run_hook(const rc_env *renv, const char *config_dir,
		      const char *state_dir, const json_t *spec,
		      rc_run_result *res)
{
	const json_t *run = json_object_get(spec, "run"), *v;
	rc_local_env env = {0};
	rc_local_spawn_opts o = {0};
	const char **argv;
	const char *k;
	long timeout = (long)json_integer_value(json_object_get(spec, "timeout"));
	size_t i;
	int rc = 0;

	rc_local_env_inherit(&env);
	for (i = 0; i < renv->config.n; i++)
		rc_local_env_set(&env, renv->config.items[i].key,
				 renv->config.items[i].value);
	for (i = 0; i < renv->nsecrets && rc == 0; i++) {
		char *val = NULL;

		if (renv->secrets[i].kind == RC_SECRET_AWS)
			continue; /* a reference only ECS reads (ecs driver) */
		rc = rc_secret_value(&val, &renv->secrets[i], config_dir);
		if (rc == 0) {
			rc_local_env_set(&env, renv->secrets[i].name, val);
			explicit_bzero(val, strlen(val));
			free(val);
		}
	}
	json_object_foreach(json_object_get(spec, "env"), k, v)
		if (json_is_string(v))
			rc_local_env_set(&env, k, json_string_value(v));
	argv = rc_calloc(json_array_size(run) + 1, sizeof(char *));
	json_array_foreach(run, i, v)
		argv[i] = json_string_value(v);
	o.argv = argv;
	o.env = &env;
	o.dir = config_dir;
	if (rc == 0 && state_dir)
		rc = rc_local_run_tracked(&o, state_dir, renv->name, spec,
					  (timeout > 0 ? timeout : 600) * 1000,
					  res);
	else if (rc == 0)
		rc = rc_local_run_capture(&o, (timeout > 0 ? timeout : 600) * 1000,
					  res);
	free(argv);
	rc_local_env_release(&env);
	return rc;
}

/* A hook with where: local after a crash (proc.h). */
int rc_local_hook_status(const rc_env *renv, const char *config_dir,
			 const char *state_dir, const json_t *spec, long wait,
			 rc_hook_state *state, rc_run_result *res)
{
	char *base = hook_base(state_dir, renv->name, spec), *mark;
	rc_buf out = RC_BUF_INIT_MAX(PATH_MAX * 2);
	rc_buf status = RC_BUF_INIT_MAX(PATH_MAX * 2);
	long long deadline = rc_local_now_ms() + wait * 1000, grace = 0;
	unsigned long long start = 0;
	pid_t pid = 0;

	RC_UNUSED(config_dir);
	memset(res, 0, sizeof(*res));
	res->exit_code = -1;
	*state = RC_HOOK_UNKNOWN;
	if (!base)
		return 0;
	mark = hook_mark(renv->name, spec);
	rc_buf_printf(&out, "%s.out", base);
	rc_buf_printf(&status, "%s.status", base);
	for (;;) {
		if (read_hook_status(status.ptr, state, res)) {
			res->output_tail = file_tail(out.ptr);
			break;
		}
		/* the process as first found, while it is that one */
		if (!(pid && rc_local_proc_alive(pid, start)) &&
		    !find_hook_proc(mark, &pid, &start))
			pid = 0;
		if (!pid) {
			/* gone: its waiter writes the status right after */
			if (!grace)
				grace = rc_local_now_ms() + 2000;
			if (rc_local_now_ms() >= grace) {
				*state = access(out.ptr, F_OK) == 0
						 ? RC_HOOK_UNKNOWN
						 : RC_HOOK_NOT_STARTED;
				break;
			}
		} else if (rc_local_now_ms() >= deadline) {
			*state = RC_HOOK_RUNNING;
			break;
		}
		rc_local_sleep_ms(100);
	}
	RC_INFO("local: hook '%s' of run %s: %s",
		json_string_value(json_object_get(spec, "name")),
		json_string_value(json_object_get(spec, "run_id")),
		rc_hook_state_name(*state));
	free(mark);
	free(base);
	rc_buf_release(&out);
	rc_buf_release(&status);
	return 0;
}

/* Keeps the last `keep` bytes of b. */
static void keep_tail(rc_buf *b, size_t keep)
{
	if (b->len <= keep)
		return;
	memmove(b->ptr, b->ptr + b->len - keep, keep);
	rc_buf_truncate(b, keep);
}

int rc_local_run_output(const char *prog, char *const *argv,
			char *const *envp, long timeout_ms, size_t err_keep,
			rc_buf *out, rc_buf *err, int *status, bool *timed_out)
{
	int ofd[2] = {-1, -1}, efd[2] = {-1, -1}, devnull = -1;
	long maxfd = sysconf(_SC_OPEN_MAX);
	long long deadline = rc_local_now_ms() + timeout_ms;
	bool oeof = false, eeof = false;
	pid_t pid;
	int rc = 0, st = 0;

	*timed_out = false;
	if (maxfd < 0 || maxfd > 65536)
		maxfd = 65536;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ofd) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, efd) < 0 ||
	    (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		rc = rc_error_set_os("cannot run '%s'", prog);
		goto done;
	}
	pid = fork();
	if (pid < 0) {
		rc = rc_error_set_os("cannot run '%s': fork", prog);
		goto done;
	}
	if (pid == 0) {
		/* the child: async-signal-safe calls only */
		static const char msg[] = "cannot execute the program\n";
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (dup2(devnull, 0) < 0 || dup2(ofd[1], 1) < 0 ||
		    dup2(efd[1], 2) < 0)
			_exit(127);
		for (long fd = 3; fd < maxfd; fd++)
			close((int)fd);
		execve(prog, argv, envp ? envp : environ);
		if (write(2, msg, sizeof(msg) - 1) < 0) {
			/* nothing left to say it with */
		}
		_exit(127);
	}
	close(ofd[1]);
	close(efd[1]);
	ofd[1] = efd[1] = -1;
	while (!oeof || !eeof) {
		struct pollfd pf[2] = {{oeof ? -1 : ofd[0], POLLIN, 0},
				       {eeof ? -1 : efd[0], POLLIN, 0}};
		long long left = deadline - rc_local_now_ms();
		char chunk[4096];

		if (left <= 0) {
			*timed_out = true;
			kill(pid, SIGKILL);
			break;
		}
		if (poll(pf, 2, (int)(left > 1000 ? 1000 : left)) < 0 &&
		    errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			ssize_t r;

			if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = read(pf[i].fd, chunk, sizeof(chunk));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				*(i ? &eeof : &oeof) = true;
				continue;
			}
			if (i == 0) {
				if (rc_buf_put(out, chunk, (size_t)r) < 0)
					oeof = true; /* too much: the rest dropped */
			} else {
				rc_buf_put(err, chunk, (size_t)r);
				if (err->len > 4 * err_keep)
					keep_tail(err, err_keep);
			}
		}
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	*status = st;
	keep_tail(err, err_keep);
done:
	if (ofd[0] >= 0)
		close(ofd[0]);
	if (ofd[1] >= 0)
		close(ofd[1]);
	if (efd[0] >= 0)
		close(efd[0]);
	if (efd[1] >= 0)
		close(efd[1]);
	if (devnull >= 0)
		close(devnull);
	return rc;
}

char *rc_local_display_path(const char *path)
{
	const char *home = getenv("HOME");
	size_t n = home ? strlen(home) : 0;
	rc_buf b = RC_BUF_INIT_MAX(PATH_MAX * 2);

	while (n > 1 && home[n - 1] == '/')
		n--;
	if (n > 1 && !strncmp(path, home, n) && path[n] == '/')
		rc_buf_printf(&b, "~%s", path + n);
	else
		rc_buf_puts(&b, path);
	return rc_buf_detach(&b);
}

void rc_local_trim(rc_buf *b)
{
	size_t start = 0;

	while (b->len && isspace((unsigned char)b->ptr[b->len - 1]))
		rc_buf_truncate(b, b->len - 1);
	while (start < b->len && isspace((unsigned char)b->ptr[start]))
		start++;
	if (start) {
		memmove(b->ptr, b->ptr + start, b->len - start);
		rc_buf_truncate(b, b->len - start);
	}
}
