/* Reading configuration files, confined to the configuration repository. */
#include "reconciler/base/common.h"
#include "schema/loader.h"

#include <fcntl.h>

char *rc_loader_display(const rc_loader *L, const char *rel)
{
	rc_buf b = RC_BUF_INIT_MAX(PATH_MAX * 2);
	const char *dir = L->dir;

	while (dir[0] == '.' && dir[1] == '/')
		dir += 2;
	if (!strcmp(dir, ".") || !*dir) {
		rc_buf_puts(&b, rel);
	} else {
		rc_buf_puts(&b, dir);
		while (b.len > 1 && b.ptr[b.len - 1] == '/')
			rc_buf_truncate(&b, b.len - 1);
		rc_buf_printf(&b, "/%s", rel);
	}
	return rc_buf_detach(&b);
}

/* Lexically normalises "a/./b/../c" into "a/c"; false if it climbs out. */
static bool normalise(const char *in, rc_buf *out)
{
	const char *p = in;

	while (*p) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);

		if (n == 0 || (n == 1 && p[0] == '.')) {
			/* skip */
		} else if (n == 2 && p[0] == '.' && p[1] == '.') {
			char *last;

			if (out->len == 0)
				return false;
			last = strrchr(out->ptr, '/');
			rc_buf_truncate(out, last ? (size_t)(last - out->ptr) : 0);
		} else {
			if (out->len)
				rc_buf_putc(out, '/');
			rc_buf_put(out, p, n);
		}
		p += n;
		if (*p == '/')
			p++;
	}
	return true;
}

char *rc_loader_resolve_path(rc_loader *L, const char *from_rel,
			     const char *path, rc_loc at, int span,
			     bool must_exist)
{
	rc_buf joined = RC_BUF_INIT_MAX(PATH_MAX * 2);
	rc_buf norm = RC_BUF_INIT_MAX(PATH_MAX * 2);
	rc_buf full = RC_BUF_INIT_MAX(PATH_MAX * 2);
	char real[PATH_MAX];
	char *res = NULL;
	size_t rootlen;
	const char *shown = path;

	/* under secrets, the path may be a mistyped secret: never quote it */
	if (L->sensitive_paths)
		shown = "(the secret's file)";
	if (!*path) {
		rc_diags_add(L->diags, RC_DIAG_ERROR, at, span, L->sensitive_paths, "empty path");
		goto done;
	}
	if (path[0] == '/' || path[0] == '~') {
		rc_diags_add(L->diags, RC_DIAG_ERROR, at, span, L->sensitive_paths,
			      "path '%s' is absolute; paths are relative to "
			      "the configuration repository",
			      shown);
		goto done;
	}
	if (from_rel && strchr(from_rel, '/')) {
		rc_buf_put(&joined, from_rel,
			   (size_t)(strrchr(from_rel, '/') - from_rel));
		rc_buf_putc(&joined, '/');
	}
	rc_buf_puts(&joined, path);
	if (!normalise(joined.ptr, &norm) || norm.len == 0) {
		rc_diags_add(L->diags, RC_DIAG_ERROR, at, span, L->sensitive_paths,
			      "path '%s' leaves the configuration repository",
			      shown);
		goto done;
	}
	rc_buf_printf(&full, "%s/%s", L->dir, norm.ptr);
	if (!realpath(full.ptr, real)) {
		if (errno == ENOENT && !must_exist) {
			res = rc_buf_detach(&norm);
			goto done;
		}
		if (errno == ENOENT)
			rc_diags_add(L->diags, RC_DIAG_ERROR, at, span, L->sensitive_paths,
				      "cannot find '%s'", shown);
		else
			rc_diags_add(L->diags, RC_DIAG_ERROR, at, span, L->sensitive_paths,
				      "cannot resolve '%s': %s", shown,
				      strerror(errno));
		goto done;
	}
	rootlen = strlen(L->root_real);
	if (strncmp(real, L->root_real, rootlen) != 0 ||
	    (real[rootlen] != '/' && real[rootlen] != '\0')) {
		rc_diags_add(L->diags, RC_DIAG_ERROR, at, span, L->sensitive_paths,
			      "path '%s' leads outside the configuration "
			      "repository (through a symbolic link)",
			      shown);
		goto done;
	}
	res = rc_buf_detach(&norm);
done:
	rc_buf_release(&joined);
	rc_buf_release(&norm);
	rc_buf_release(&full);
	return res;
}

static int read_file(rc_loader *L, const char *rel, char **data, size_t *len,
		     rc_loc at, int span)
{
	rc_buf path = RC_BUF_INIT_MAX(PATH_MAX * 2);
	rc_buf b = RC_BUF_INIT_MAX(RC_YAML_MAX_FILE_SIZE + 1);
	struct stat st;
	char chunk[65536];
	ssize_t r;
	int fd, rc = -1;

	rc_buf_printf(&path, "%s/%s", L->dir, rel);
	/* O_NONBLOCK: a FIFO must be refused, not waited on */
	fd = open(path.ptr, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT)
			rc_diag_error(L->diags, at, span, "cannot find '%s'",
				      rel);
		else
			rc_diag_error(L->diags, at, span,
				      "cannot read '%s': %s", rel,
				      strerror(errno));
		goto done;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc_diag_error(L->diags, at, span, "'%s' is not a regular file",
			      rel);
		goto done;
	}
	if ((size_t)st.st_size > RC_YAML_MAX_FILE_SIZE) {
		rc_diag_error(L->diags, at, span,
			      "'%s' is too large: %lld bytes (the limit is "
			      "%zu)",
			      rel, (long long)st.st_size,
			      RC_YAML_MAX_FILE_SIZE);
		goto done;
	}
	if (L->total_bytes + (size_t)st.st_size > RC_MAX_TOTAL_BYTES) {
		rc_diag_error(L->diags, at, span,
			      "the configuration is too large: more than %zu "
			      "bytes of YAML",
			      RC_MAX_TOTAL_BYTES);
		goto done;
	}
	while ((r = read(fd, chunk, sizeof(chunk))) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc_diag_error(L->diags, at, span,
				      "cannot read '%s': %s", rel,
				      strerror(errno));
			goto done;
		}
		if (rc_buf_put(&b, chunk, (size_t)r) < 0) {
			rc_diag_error(L->diags, at, span,
				      "'%s' is too large (the limit is %zu "
				      "bytes)",
				      rel, RC_YAML_MAX_FILE_SIZE);
			goto done;
		}
	}
	L->total_bytes += b.len;
	*len = b.len;
	*data = rc_buf_detach(&b);
	rc = 0;
done:
	if (fd >= 0)
		close(fd);
	rc_buf_release(&path);
	rc_buf_release(&b);
	return rc;
}

rc_file_entry *rc_loader_file(rc_loader *L, const char *rel, rc_loc at,
			      int span)
{
	rc_file_entry *f;
	char *data = NULL, *display;
	size_t len = 0;

	f = rc_strmap_get(&L->file_index, rel);
	if (f)
		return f->failed ? NULL : f;
	if (L->nfiles >= RC_MAX_FILES) {
		rc_diag_error(L->diags, at, span,
			      "too many configuration files (the limit is %d)",
			      RC_MAX_FILES);
		return NULL;
	}
	f = rc_calloc(1, sizeof(*f));
	f->rel = rc_strdup(rel);
	rc_strmap_put(&L->file_index, f->rel, f);
	RC_GROW(L->files, L->capfiles, L->nfiles + 1);
	L->files[L->nfiles++] = f;
	display = rc_loader_display(L, rel);
	if (read_file(L, rel, &data, &len, at, span) < 0) {
		f->name = rc_diags_intern(L->diags, display);
		f->failed = true;
		free(display);
		return NULL;
	}
	f->name = rc_diags_add_source(L->diags, display, data, len);
	free(display);
	if (rc_yaml_parse(&f->docs, &f->ndocs, f->name, data, len, L->diags) <
	    0)
		f->failed = true;
	return f->failed ? NULL : f;
}
