/*
 * The Heroku driver's records under <state>/heroku/: which apps and
 * pipelines reconcile owns, the config keys it set, the images it
 * released, and a cache of config vars. See drivers/heroku_api.h.
 */
#include "drivers/heroku_api.h"
#include "drivers/proc.h" /* files */
#include "reconciler/base/log.h"

#include <fcntl.h>
#include <sys/file.h>

static char *state_path(const char *state_dir, const char *file)
{
	rc_buf b = RC_BUF_INIT_MAX(PATH_MAX * 2);

	rc_buf_printf(&b, "%s/heroku%s%s", state_dir, file ? "/" : "",
		      file ? file : "");
	return rc_buf_detach(&b);
}

static json_t *empty_doc(void)
{
	return json_pack("{s:i, s:{}, s:{}}", "version",
			 RC_HEROKU_STATE_VERSION, "apps", "pipelines");
}

/* Whether the file at path is the one a last read or wrote. */
static bool same_file(const rc_heroku_api *a, const char *path,
		      const struct stat *st)
{
	return a->state_doc && a->state_file && !strcmp(a->state_file, path) &&
	       st->st_dev == a->state_st.st_dev &&
	       st->st_ino == a->state_st.st_ino &&
	       st->st_size == a->state_st.st_size &&
	       st->st_mtim.tv_sec == a->state_st.st_mtim.tv_sec &&
	       st->st_mtim.tv_nsec == a->state_st.st_mtim.tv_nsec;
}

/* Keeps doc (stolen) as the records of path, whose identity is st (or
 * none, for a missing file). */
static void keep(rc_heroku_api *a, const char *path, json_t *doc,
		 const struct stat *st)
{
	json_decref(a->state_doc);
	a->state_doc = doc;
	if (!a->state_file || strcmp(a->state_file, path)) {
		free(a->state_file);
		a->state_file = rc_strdup(path);
	}
	if (st)
		a->state_st = *st;
	else
		memset(&a->state_st, 0, sizeof(a->state_st));
}

/* The records as they are on disk (borrowed from a->state_doc; under
 * state_mu): the document kept in memory while the file is the one last
 * read or written, else read again. A file that cannot be read or has
 * another version is set aside: its cache would mislead. */
static json_t *load(rc_heroku_api *a, const char *state_dir)
{
	char *path = state_path(state_dir, "apps.json");
	json_t *doc = NULL;
	struct stat st;
	bool there = stat(path, &st) == 0;
	int rc;

	if (there && same_file(a, path, &st))
		goto done;
	if (!there && a->state_doc && a->state_file &&
	    !strcmp(a->state_file, path) && a->state_st.st_ino == 0)
		goto done; /* still none */
	rc = there ? rc_local_read_json(&doc, path) : RC_ENOTFOUND;
	if (rc == RC_ENOTFOUND) {
		rc_error_clear();
		doc = empty_doc();
		there = false;
	} else if (rc < 0 ||
		   json_integer_value(json_object_get(doc, "version")) !=
			   RC_HEROKU_STATE_VERSION ||
		   !json_is_object(json_object_get(doc, "apps"))) {
		rc_buf aside = RC_BUF_INIT_MAX(PATH_MAX * 2);

		rc_buf_printf(&aside, "%s.unreadable", path);
		RC_WARN("heroku: %s cannot be used (%s); moved to %s: apps it "
			"listed count as not reconcile's until adopted",
			path, rc < 0 ? rc_error_last()->message
				     : "another version",
			aside.ptr);
		rc_error_clear();
		if (rename(path, aside.ptr) < 0)
			RC_WARN("heroku: cannot move %s aside: %s", path,
				strerror(errno));
		rc_buf_release(&aside);
		json_decref(doc);
		doc = empty_doc();
		there = false;
	}
	if (!json_is_object(json_object_get(doc, "pipelines")))
		json_object_set_new(doc, "pipelines", json_object());
	keep(a, path, doc, there ? &st : NULL);
done:
	free(path);
	return a->state_doc;
}

json_t *rc_heroku_state_load(rc_heroku_api *a, const char *state_dir)
{
	json_t *doc;

	pthread_mutex_lock(&a->state_mu);
	doc = json_incref(load(a, state_dir));
	pthread_mutex_unlock(&a->state_mu);
	return doc;
}

int rc_heroku_state_update(rc_heroku_api *a, const char *state_dir,
			   rc_heroku_state_fn fn, void *ctx)
{
	char *dir = state_path(state_dir, NULL);
	char *lock = state_path(state_dir, "apps.lock");
	char *path = state_path(state_dir, "apps.json");
	json_t *doc = NULL;
	struct stat st;
	int fd = -1, rc;

	pthread_mutex_lock(&a->state_mu);
	if ((rc = rc_local_mkdirs(dir, 0700)) < 0)
		goto done;
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = rc_error_set_os("cannot open '%s'", lock);
		goto done;
	}
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			rc = rc_error_set_os("cannot lock '%s'", lock);
			goto done;
		}
	}
	/* a copy: readers may hold the kept document */
	doc = json_deep_copy(load(a, state_dir));
	rc = fn(doc, ctx);
	if (rc > 0) {
		rc = rc_local_write_json(path, doc);
		if (rc == 0 && stat(path, &st) == 0) {
			keep(a, path, doc, &st);
			doc = NULL;
		} else if (rc == 0) {
			/* cannot tell the file's identity: read it next time */
			json_decref(a->state_doc);
			a->state_doc = NULL;
		}
	}
done:
	if (fd >= 0)
		close(fd); /* releases the flock */
	pthread_mutex_unlock(&a->state_mu);
	json_decref(doc);
	free(dir);
	free(lock);
	free(path);
	if (rc < 0)
		rc_error_prefix("heroku: records under %s/heroku", state_dir);
	return rc < 0 ? rc : 0;
}
