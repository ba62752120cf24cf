/* The last-applied snapshot (see snapshot.h). */
#include "state/snapshot.h"
#include "state/internal.h"
#include "reconciler/base/error.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/stat.h>

#define SNAPSHOT_FORMAT 1
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

json_t *rc_snapshot_load(const char *state_dir, const json_t *journals)
{
	char *path = snap_path(state_dir);
	rc_buf b = RC_BUF_INIT;
	json_t *j = NULL, *last = NULL;
	int fd;

	if (!journals || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		goto done;
	if (rc_state_read_fd(&b, fd, path, SNAPSHOT_MAX) < 0) {
		close(fd);
		rc_error_clear();
		goto done;
	}
	close(fd);
	j = json_loadb(b.ptr, b.len, 0, NULL);
	if (j && json_integer_value(json_object_get(j, "format_version")) ==
			 SNAPSHOT_FORMAT &&
	    json_equal(json_object_get(j, "journals"), journals) &&
	    json_is_object(json_object_get(j, "last")))
		last = json_incref(json_object_get(j, "last"));
done:
	json_decref(j);
	rc_buf_release(&b);
	free(path);
	return last;
}

int rc_snapshot_save(const char *state_dir, const json_t *journals,
		     const json_t *last)
{
	static atomic_ulong seq;
	char *path = snap_path(state_dir);
	rc_buf tmp = RC_BUF_INIT_MAX(PATH_MAX * 2);
	json_t *j;
	char *text;
	int fd, rc = 0;

	/* borrowed into the object: json_pack's O takes a reference */
	j = json_pack("{s:i, s:O, s:O}", "format_version", SNAPSHOT_FORMAT,
		      "journals", journals, "last", last);
	text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(j);
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
