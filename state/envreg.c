/* The registry of generated environments (see envreg.h). */
#include "state/envreg.h"
#include "state/internal.h"

#include <fcntl.h>

#define ENVREG_FORMAT 1
#define ENVREG_MAX (16u << 20)

static char *reg_path(const char *state_dir)
{
	rc_buf b = RC_BUF_INIT_MAX(PATH_MAX * 2);

	rc_buf_printf(&b, "%s/environments.json", state_dir);
	return rc_buf_detach(&b);
}

int rc_envreg_load(json_t **out, const char *state_dir)
{
	char *path = reg_path(state_dir);
	rc_buf b = RC_BUF_INIT;
	json_error_t jerr;
	json_t *j = NULL;
	int fd, rc = 0;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			j = json_pack("{s:i, s:{}}", "format_version",
				      ENVREG_FORMAT, "environments");
			goto done;
		}
		rc = rc_error_set_os("cannot open '%s'", path);
		goto done;
	}
	rc = rc_state_read_fd(&b, fd, path, ENVREG_MAX);
	close(fd);
	if (rc < 0)
		goto done;
	j = json_loadb(b.ptr, b.len, 0, &jerr);
	if (!j || !json_is_object(json_object_get(j, "environments")) ||
	    json_integer_value(json_object_get(j, "format_version")) !=
		    ENVREG_FORMAT) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_STATE,
				  "'%s' is not a registry of environments "
				  "(format_version %d)%s%s",
				  path, ENVREG_FORMAT, j ? "" : ": ",
				  j ? "" : jerr.text);
		json_decref(j);
		j = NULL;
	}
done:
	*out = j;
	rc_buf_release(&b);
	free(path);
	return rc;
}

int rc_envreg_save(const json_t *reg, const char *state_dir)
{
	char *path = reg_path(state_dir);
	rc_buf tmp = RC_BUF_INIT_MAX(PATH_MAX * 2);
	char *text = NULL;
	int fd = -1, rc;

	if ((rc = rc_state_mkdirs(state_dir)) < 0)
		goto done;
	text = json_dumps(reg, JSON_INDENT(2) | JSON_SORT_KEYS);
	rc_buf_printf(&tmp, "%s.%ld.tmp", path, (long)getpid());
	fd = open(tmp.ptr, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || rc_state_write_all(fd, text, strlen(text)) < 0 ||
	    rc_state_write_all(fd, "\n", 1) < 0 || fsync(fd) < 0) {
		rc = rc_error_set_os("cannot write '%s'", tmp.ptr);
		if (fd >= 0)
			close(fd);
		unlink(tmp.ptr);
		goto done;
	}
	if (close(fd) < 0) {
		rc = rc_error_set_os("cannot write '%s'", tmp.ptr);
		unlink(tmp.ptr);
		goto done;
	}
	if (rename(tmp.ptr, path) < 0) {
		rc = rc_error_set_os("cannot replace '%s'", path);
		unlink(tmp.ptr);
		goto done;
	}
	rc = rc_state_fsync_dir(state_dir);
done:
	free(text);
	free(path);
	rc_buf_release(&tmp);
	return rc;
}
