/* The last-applied snapshot (see snapshot.h). */
#include "state/snapshot.h"
#include "state/internal.h"
#include "reconciler/base/error.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/stat.h>

#define SNAPSHOT_FORMAT 3
#define SNAPSHOT_MAX (1u << 30)
#define JOURNAL_EXT ".journal"

static char *snap_path(const char *state_dir)
{
	rc_buf b = RC_BUF_INIT_MAX(PATH_MAX * 2);

	rc_buf_printf(&b, "%s/last-applied.json", state_dir);
	return rc_buf_detach(&b);
}

json_t *rc_snapshot_journals(const char *state_dir)
{
	rc_buf dir = RC_BUF_INIT_MAX(PATH_MAX * 2);
	json_t *out = NULL;
	struct dirent *de;
	DIR *d;

	rc_buf_printf(&dir, "%s/runs", state_dir);
	if (!(d = opendir(dir.ptr))) {
		if (errno == ENOENT)
			out = json_object();
		goto done;
	}
	out = json_object();
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name), ext = strlen(JOURNAL_EXT);
		struct stat st;
		char *id;

		if (n <= ext || strcmp(de->d_name + n - ext, JOURNAL_EXT) ||
		    fstatat(dirfd(d), de->d_name, &st, 0) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		id = rc_strndup(de->d_name, n - ext);
		json_object_set_new(out, id, json_integer((json_int_t)st.st_size));
		free(id);
	}
	closedir(d);
done:
	rc_buf_release(&dir);
	return out;
}

/* The environment a key belongs to: what precedes its first '/'. */
static size_t key_env_len(const char *key)
{
	const char *slash = strchr(key, '/');

	return slash ? (size_t)(slash - key) : strlen(key);
}

static bool env_wanted(const char *name, size_t len,
		       const char *const *envs, size_t nenvs)
{
	for (size_t i = 0; i < nenvs; i++)
		if (strlen(envs[i]) == len && !memcmp(envs[i], name, len))
			return true;
	return false;
}

/* The line's environment, when the line starts as rc_snapshot_save
 * writes it ({"env":"NAME","last":...); else NULL. */
static const char *line_env(const char *line, size_t n, size_t *len)
{
	static const char head[] = "{\"env\":\"";
	const char *p, *end = line + n;

	if (n < sizeof(head) - 1 || memcmp(line, head, sizeof(head) - 1))
		return NULL;
	p = line + sizeof(head) - 1;
	for (const char *q = p; q < end; q++) {
		if (*q == '\\')
			return NULL; /* escaped: parsed instead */
		if (*q == '"') {
			*len = (size_t)(q - p);
			return p;
		}
	}
	return NULL;
}

json_t *rc_snapshot_read(const char *state_dir, const char *const *envs,
			 size_t nenvs, json_t **from)
{
	char *path = snap_path(state_dir);
	rc_buf b = RC_BUF_INIT;
	json_t *head = NULL, *last = NULL;
	const char *p, *end;
	int fd;

	*from = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		goto done;
	if (rc_state_read_fd(&b, fd, path, SNAPSHOT_MAX) < 0) {
		close(fd);
		rc_error_clear();
		goto done;
	}
	close(fd);
	/* the first line: the format and the journals */
	p = b.ptr;
	end = b.ptr + b.len;
	{
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (!nl)
			goto done;
		head = json_loadb(p, (size_t)(nl - p), 0, NULL);
		p = nl + 1;
	}
	if (!head || json_integer_value(json_object_get(
			     head, "format_version")) != SNAPSHOT_FORMAT ||
	    !json_is_object(json_object_get(head, "journals")))
		goto done;
	last = json_object();
	/* then a line per environment: only the wanted ones are parsed */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p), len = 0;
		const char *name = line_env(p, n, &len);
		json_t *line, *l, *v;
		const char *k;

		if (nenvs && name && !env_wanted(name, len, envs, nenvs)) {
			p += n + 1;
			continue;
		}
		line = json_loadb(p, n, 0, NULL);
		l = json_object_get(line, "last");
		if (!line || !json_is_object(l)) {
			json_decref(line);
			json_decref(last);
			last = NULL;
			goto done;
		}
		json_object_foreach(l, k, v)
			if (!nenvs || env_wanted(k, key_env_len(k), envs,
						 nenvs))
				json_object_set(last, k, v);
		json_decref(line);
		p += n + 1;
	}
	*from = json_incref(json_object_get(head, "journals"));
done:
	json_decref(head);
	rc_buf_release(&b);
	free(path);
	return last;
}

json_t *rc_snapshot_load(const char *state_dir, const json_t *journals)
{
	json_t *from = NULL, *last;

	if (!journals)
		return NULL;
	last = rc_snapshot_read(state_dir, NULL, 0, &from);
	if (last && !json_equal(from, journals)) {
		json_decref(last);
		last = NULL;
	}
	json_decref(from);
	return last;
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The file's text: the format and journals, then one line per
 * environment, in order of name (new string), or NULL. */
static char *snapshot_text(const json_t *journals, const json_t *last)
{
	rc_buf out = RC_BUF_INIT_MAX(SNAPSHOT_MAX);
	size_t n = json_object_size(last), i = 0;
	const char **keys = rc_calloc(n + 1, sizeof(*keys));
	json_t *head, *v;
	const char *k;
	char *s;

	head = json_pack("{s:i, s:O}", "format_version", SNAPSHOT_FORMAT,
			 "journals", journals);
	s = head ? json_dumps(head, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(head);
	if (!s)
		goto fail;
	rc_buf_puts(&out, s);
		rc_buf_putc(&out, '\n');
	free(s);
	json_object_foreach((json_t *)last, k, v)
		keys[i++] = k;
	qsort(keys, n, sizeof(*keys), cmp_key);
	for (i = 0; i < n;) {
		size_t len = key_env_len(keys[i]), j = i;
		json_t *group = json_object(), *line;
		char *name = rc_strndup(keys[i], len);

		while (j < n && key_env_len(keys[j]) == len &&
		       !memcmp(keys[j], keys[i], len)) {
			json_object_set(group, keys[j],
					json_object_get(last, keys[j]));
			j++;
		}
		/* "env" first: a reader skips the line by its start */
		line = json_object();
		json_object_set_new(line, "env", json_string(name));
		json_object_set_new(line, "last", group);
		s = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(line);
		free(name);
		if (!s)
			goto fail;
		rc_buf_puts(&out, s);
		rc_buf_putc(&out, '\n');
		free(s);
		i = j;
	}
	free(keys);
	return rc_buf_detach(&out);
fail:
	free(keys);
	rc_buf_release(&out);
	return NULL;
}

int rc_snapshot_save(const char *state_dir, const json_t *journals,
		     const json_t *last)
{
	static atomic_ulong seq;
	char *path = snap_path(state_dir);
	rc_buf tmp = RC_BUF_INIT_MAX(PATH_MAX * 2);
	char *text;
	int fd, rc = 0;

	text = snapshot_text(journals, last);
	if (!text) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_INTERNAL,
				  "cannot encode the last-applied snapshot");
		goto done;
	}
	/* one name per process and call: workers save at once */
	rc_buf_printf(&tmp, "%s.%ld.%lu.tmp", path, (long)getpid(),
		      (unsigned long)atomic_fetch_add(&seq, 1));
	fd = open(tmp.ptr, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || rc_state_write_all(fd, text, strlen(text)) < 0 ||
	    fsync(fd) < 0) {
		rc = rc_error_set_os("cannot write '%s'", tmp.ptr);
		if (fd >= 0)
			close(fd);
		unlink(tmp.ptr);
		goto done;
	}
	if (close(fd) < 0 || rename(tmp.ptr, path) < 0) {
		rc = rc_error_set_os("cannot replace '%s'", path);
		unlink(tmp.ptr);
	}
done:
	free(text);
	free(path);
	rc_buf_release(&tmp);
	return rc;
}
