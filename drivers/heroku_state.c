/*
 * The Heroku driver's records under <state>/heroku/: which apps and
 * pipelines reconcile owns, the config keys it set, the images it
 * released, and a cache of config vars. See drivers/heroku_api.h.
 *
 * One file per app (apps/<name>.json) and one for the pipelines, so that
 * an update writes what it changed: a first apply of 500 apps makes some
 * 3,000 updates, each on disk before the call it protects, and rewriting
 * every record each time made that quadratic.
 */
#include "drivers/heroku_api.h"
#include "drivers/proc.h" /* files */
#include "reconciler/base/log.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>

static char *state_path(const char *state_dir, const char *file)
{
	rc_buf b = RC_BUF_INIT_MAX(PATH_MAX * 2);

	rc_buf_printf(&b, "%s/heroku%s%s", state_dir, file ? "/" : "",
		      file ? file : "");
	return rc_buf_detach(&b);
}

/* <state>/heroku/apps/<app>.json; NULL for a name that is not an app's
 * (a file name must never leave the directory). */
static char *app_path(const char *state_dir, const char *app)
{
	rc_buf b = RC_BUF_INIT_MAX(PATH_MAX * 2);

	if (!*app || strlen(app) > 100 ||
	    strspn(app, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(app))
		return NULL;
	rc_buf_printf(&b, "%s/heroku/apps/%s.json", state_dir, app);
	return rc_buf_detach(&b);
}

static json_t *empty_doc(void)
{
	return json_pack("{s:i, s:{}, s:{}}", "version",
			 RC_HEROKU_STATE_VERSION, "apps", "pipelines");
}

/* What tells whether another process changed the records: the apps
 * directory (a file renamed into it or removed changes its mtime) and
 * the pipelines' file. */
typedef struct {
	struct stat dir, pipes;
	bool dir_there, pipes_there;
} identity;

static void identify(const char *state_dir, identity *id)
{
	char *dir = state_path(state_dir, "apps");
	char *pipes = state_path(state_dir, "pipelines.json");

	memset(id, 0, sizeof(*id));
	id->dir_there = stat(dir, &id->dir) == 0;
	id->pipes_there = stat(pipes, &id->pipes) == 0;
	free(dir);
	free(pipes);
}

static bool same_stat(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	       a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static bool same_identity(const identity *a, const identity *b)
{
	return a->dir_there == b->dir_there &&
	       a->pipes_there == b->pipes_there &&
	       (!a->dir_there || same_stat(&a->dir, &b->dir)) &&
	       (!a->pipes_there || same_stat(&a->pipes, &b->pipes));
}

/* Keeps doc (stolen) as the records of state_dir, as identified now. */
static void keep(rc_heroku_api *a, const char *state_dir, json_t *doc)
{
	identity id;

	identify(state_dir, &id);
	json_decref(a->state_doc);
	a->state_doc = doc;
	if (!a->state_file || strcmp(a->state_file, state_dir)) {
		free(a->state_file);
		a->state_file = rc_strdup(state_dir);
	}
	a->state_dir_st = id.dir;
	a->state_st = id.pipes;
	a->state_dir_there = id.dir_there;
	a->state_pipes_there = id.pipes_there;
}

/* Moves a record file that cannot be used aside: its cache would
 * mislead. */
static void set_aside(const char *path, const char *why)
{
	rc_buf aside = RC_BUF_INIT_MAX(PATH_MAX * 2);

	rc_buf_printf(&aside, "%s.unreadable", path);
	RC_WARN("heroku: %s cannot be used (%s); moved to %s: what it "
		"recorded counts as not reconcile's until adopted",
		path, why, aside.ptr);
	if (rename(path, aside.ptr) < 0)
		RC_WARN("heroku: cannot move %s aside: %s", path,
			strerror(errno));
	rc_buf_release(&aside);
}

/* The "field" of the versioned file at path (new ref), NULL when there is
 * none or it cannot be used (then set aside). */
static json_t *read_versioned(const char *path, const char *field)
{
	json_t *doc = NULL, *v;
	int rc = rc_local_read_json(&doc, path);

	if (rc == RC_ENOTFOUND) {
		rc_error_clear();
		return NULL;
	}
	if (rc < 0 ||
	    json_integer_value(json_object_get(doc, "version")) !=
		    RC_HEROKU_STATE_VERSION ||
	    !json_is_object(v = json_object_get(doc, field))) {
		set_aside(path, rc < 0 ? rc_error_last()->message
				       : "another version");
		rc_error_clear();
		json_decref(doc);
		return NULL;
	}
	json_incref(v);
	json_decref(doc);
	return v;
}

/* Every record on disk, as one document. */
static json_t *read_all(const char *state_dir)
{
	json_t *doc = empty_doc(), *apps = json_object_get(doc, "apps");
	char *dir = state_path(state_dir, "apps");
	char *pipes = state_path(state_dir, "pipelines.json");
	json_t *p = read_versioned(pipes, "pipelines");
	DIR *d = opendir(dir);
	struct dirent *de;

	if (p)
		json_object_set_new(doc, "pipelines", p);
	while (d && (de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		char *name, *path;
		json_t *rec;

		if (n <= 5 || strcmp(de->d_name + n - 5, ".json"))
			continue;
		name = rc_strndup(de->d_name, n - 5);
		if ((path = app_path(state_dir, name)) != NULL &&
		    (rec = read_versioned(path, "record")) != NULL)
			json_object_set_new(apps, name, rec);
		free(path);
		free(name);
	}
	if (d)
		closedir(d);
	free(dir);
	free(pipes);
	return doc;
}

/* The records as they are on disk (borrowed from a->state_doc; under
 * state_mu): the document kept in memory while nothing changed them
 * since this process last read or wrote them, else read again. */
static json_t *load(rc_heroku_api *a, const char *state_dir)
{
	identity now;

	identify(state_dir, &now);
	if (a->state_doc && a->state_file && !strcmp(a->state_file, state_dir)) {
		identity kept = {a->state_dir_st, a->state_st,
				 a->state_dir_there, a->state_pipes_there};

		if (same_identity(&kept, &now))
			return a->state_doc;
	}
	keep(a, state_dir, read_all(state_dir));
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

/* The copy an update changes: its own root and maps of apps and
 * pipelines, the records in them shared (rc_heroku_state_app copies the
 * one it changes). */
static json_t *shallow_copy(const json_t *src)
{
	json_t *doc = json_copy((json_t *)(uintptr_t)src);

	json_object_set_new(doc, "apps",
			    json_copy(json_object_get(src, "apps")));
	json_object_set_new(doc, "pipelines",
			    json_copy(json_object_get(src, "pipelines")));
	return doc;
}

json_t *rc_heroku_state_app(json_t *doc, const char *app)
{
	json_t *apps = json_object_get(doc, "apps");
	json_t *rec = json_object_get(apps, app);

	if (!json_is_object(rec))
		return NULL;
	rec = json_deep_copy(rec);
	json_object_set_new(apps, app, rec);
	return rec;
}

/* Writes {"version", field: value} to path atomically. */
static int write_versioned(const char *path, const char *field,
			   const json_t *value)
{
	json_t *doc = json_pack("{s:i, s:O}", "version",
				RC_HEROKU_STATE_VERSION, field,
				(json_t *)(uintptr_t)value);
	int rc = rc_local_write_json(path, doc);

	json_decref(doc);
	return rc;
}

/* Writes what doc changed from was: the records of the apps whose record
 * is another object now (an update copies the one it changes), the
 * removal of those gone, the pipelines when they differ. */
static int write_changes(const char *state_dir, const json_t *was,
			 const json_t *doc)
{
	const json_t *old_apps = json_object_get(was, "apps");
	const json_t *new_apps = json_object_get(doc, "apps");
	const char *name;
	json_t *rec;
	char *path = NULL;
	int rc = 0;

	json_object_foreach((json_t *)(uintptr_t)new_apps, name, rec) {
		if (json_object_get(old_apps, name) == rec)
			continue;
		if (!(path = app_path(state_dir, name)))
			return rc_error_set(RC_EINVALID, RC_ECLASS_STATE,
					    "'%s' is not an app's name", name);
		rc = write_versioned(path, "record", rec);
		free(path);
		if (rc < 0)
			return rc;
	}
	json_object_foreach((json_t *)(uintptr_t)old_apps, name, rec) {
		if (json_object_get(new_apps, name))
			continue;
		if ((path = app_path(state_dir, name)) != NULL &&
		    unlink(path) < 0 && errno != ENOENT)
			rc = rc_error_set_os("cannot remove '%s'", path);
		free(path);
		if (rc < 0)
			return rc;
	}
	if (!json_equal(json_object_get(was, "pipelines"),
			json_object_get(doc, "pipelines"))) {
		path = state_path(state_dir, "pipelines.json");
		rc = write_versioned(path, "pipelines",
				     json_object_get(doc, "pipelines"));
		free(path);
	}
	return rc;
}

int rc_heroku_state_update(rc_heroku_api *a, const char *state_dir,
			   rc_heroku_state_fn fn, void *ctx)
{
	char *dir = state_path(state_dir, "apps");
	char *lock = state_path(state_dir, "apps.lock");
	json_t *was, *doc = NULL;
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
	was = load(a, state_dir);
	doc = shallow_copy(was);
	rc = fn(doc, ctx);
	if (rc > 0) {
		rc = write_changes(state_dir, was, doc);
		if (rc == 0) {
			/* still under the flock: what is on disk now is doc */
			keep(a, state_dir, doc);
			doc = NULL;
		} else {
			/* partly written: read it all next time */
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
	if (rc < 0)
		rc_error_prefix("heroku: records under %s/heroku", state_dir);
	return rc < 0 ? rc : 0;
}
