/*
 * Data-driven plan cases: tests/cases/plan/NNN-name/case.json holds the
 * desired resources, the actual ones, what was last applied, the
 * environments' policies and hooks; expected.txt is the plan as the user
 * reads it (or "error: ..." when the plan is refused) and expected.json its
 * JSON form. The JSON form must also read back to the same plan.
 *
 *   rc_plan_cases DIR          check every case
 *   rc_plan_cases DIR --write  write the expected files (to review!)
 */
#include "reconciler/base/common.h"
#include "reconciler/base/error.h"
#include "reconciler/plan.h"

#include <dirent.h>

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "rb");
	rc_buf b = RC_BUF_INIT;
	char chunk[4096];
	size_t n;

	if (!f)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		rc_buf_put(&b, chunk, n);
	fclose(f);
	return rc_buf_detach(&b);
}

static void write_all(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");

	if (!f) {
		perror(path);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
}

static void load_set(rc_resource_set *s, const json_t *arr)
{
	size_t i, j;
	json_t *x;

	json_array_foreach((json_t *)(uintptr_t)arr, i, x) {
		rc_resource *r = rc_resource_set_add(
			s, json_string_value(json_object_get(x, "env")),
			json_string_value(json_object_get(x, "driver"))
				? json_string_value(json_object_get(x, "driver"))
				: "local",
			json_string_value(json_object_get(x, "kind")),
			json_string_value(json_object_get(x, "name")),
			json_incref(json_object_get(x, "body")));
		json_t *deps = json_object_get(x, "deps");

		r->precious = json_is_true(json_object_get(x, "precious"));
		r->adopt = json_is_true(json_object_get(x, "adopt"));
		if (json_string_value(json_object_get(x, "health")))
			rc_resource_set_health(
				r,
				json_is_true(json_object_get(x, "unhealthy")),
				"%s",
				json_string_value(json_object_get(x, "health")));
		for (j = 0; j < json_array_size(deps); j++)
			rc_resource_add_dep(r, json_string_value(
						       json_array_get(deps, j)));
	}
}

static const char **strings(const json_t *arr, size_t *n)
{
	const char **out = rc_calloc(json_array_size(arr) + 1, sizeof(char *));

	*n = json_array_size(arr);
	for (size_t i = 0; i < *n; i++)
		out[i] = json_string_value(json_array_get(arr, i));
	return out;
}

static bool immutable(const char *driver, const char *kind, const char *path,
		      void *arg)
{
	const json_t *paths = json_object_get((const json_t *)arg, kind);
	size_t i;

	RC_UNUSED(driver);
	for (i = 0; i < json_array_size(paths); i++)
		if (rc_pointer_match(json_string_value(json_array_get(paths, i)),
				     path))
			return true;
	return false;
}

/* Runs one case; returns the text and the JSON (new strings). */
static int run_case(const char *dir, char **text, char **jtext)
{
	char path[PATH_MAX + 32];
	json_error_t err;
	json_t *c, *envs, *hooks;
	rc_resource_set desired = {0}, actual = {0};
	rc_plan_env *pe;
	rc_plan_hook *ph;
	rc_plan_input in = {0};
	rc_plan plan, back;
	rc_buf out = RC_BUF_INIT;
	size_t i;
	int rc;

	snprintf(path, sizeof(path), "%s/case.json", dir);
	c = json_load_file(path, 0, &err);
	if (!c) {
		fprintf(stderr, "%s:%d: %s\n", path, err.line, err.text);
		return -1;
	}
	load_set(&desired, json_object_get(c, "desired"));
	load_set(&actual, json_object_get(c, "actual"));
	envs = json_object_get(c, "envs");
	hooks = json_object_get(c, "hooks");
	pe = rc_calloc(json_array_size(envs) + 1, sizeof(*pe));
	ph = rc_calloc(json_array_size(hooks) + 1, sizeof(*ph));
	for (i = 0; i < json_array_size(envs); i++) {
		json_t *e = json_array_get(envs, i);

		pe[i].env = json_string_value(json_object_get(e, "env"));
		pe[i].prune = json_is_true(json_object_get(e, "prune"));
		pe[i].label = json_string_value(json_object_get(e, "label"));
		pe[i].branch = json_string_value(json_object_get(e, "branch"));
		pe[i].commit = json_string_value(json_object_get(e, "commit"));
		pe[i].retire = json_string_value(json_object_get(e, "retire"));
		pe[i].allow_replace =
			json_is_true(json_object_get(e, "allow_replace"));
		pe[i].manual = json_is_string(json_object_get(e, "apply")) &&
			       !strcmp(json_string_value(json_object_get(e, "apply")),
				       "manual");
		pe[i].ignore = strings(json_object_get(e, "ignore"), &pe[i].nignore);
		if (json_object_get(e, "ignore_for")) {
			size_t nf;

			pe[i].ignore_for = strings(json_object_get(e, "ignore_for"),
						   &nf);
		}
		pe[i].depends_on = strings(json_object_get(e, "depends_on"),
					   &pe[i].ndepends_on);
	}
	for (i = 0; i < json_array_size(hooks); i++) {
		json_t *h = json_array_get(hooks, i);

		ph[i].env = json_string_value(json_object_get(h, "env"));
		ph[i].name = json_string_value(json_object_get(h, "name"));
		ph[i].post = json_is_true(json_object_get(h, "post"));
		ph[i].spec = json_object_get(h, "spec");
		ph[i].irreversible = json_is_true(json_object_get(h, "irreversible"));
	}
	in.desired = &desired;
	in.actual = &actual;
	in.last = json_object_get(c, "last");
	in.envs = pe;
	in.nenvs = json_array_size(envs);
	in.hooks = ph;
	in.nhooks = json_array_size(hooks);
	if (json_object_get(c, "immutable")) {
		in.immutable = immutable;
		in.immutable_arg = json_object_get(c, "immutable");
	}
	in.destroy = json_is_true(json_object_get(c, "destroy"));
	in.force = json_is_true(json_object_get(c, "force"));

	rc = rc_plan_build(&plan, &in);
	if (rc < 0) {
		rc_buf_printf(&out, "error: %s\n", rc_error_last()->message);
		*jtext = rc_strdup("");
	} else {
		json_t *j = rc_plan_to_json(&plan), *j2;

		rc_plan_render_text(&plan, &out, false);
		*jtext = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		/* a saved plan reads back to the same plan */
		if (rc_plan_from_json(&back, j) < 0) {
			fprintf(stderr, "%s: cannot read the plan back: %s\n",
				dir, rc_error_last()->message);
			rc = -1;
		} else {
			j2 = rc_plan_to_json(&back);
			if (!json_equal(j, j2)) {
				fprintf(stderr, "%s: the plan read back differs\n",
					dir);
				rc = -1;
			}
			json_decref(j2);
		}
		rc_plan_release(&back);
		json_decref(j);
	}
	rc_plan_release(&plan);
	*text = rc_buf_detach(&out);
	for (i = 0; i < json_array_size(envs); i++) {
		free((void *)(uintptr_t)pe[i].ignore);
		free((void *)(uintptr_t)pe[i].ignore_for);
		free((void *)(uintptr_t)pe[i].depends_on);
	}
	free(pe);
	free(ph);
	rc_resource_set_release(&desired);
	rc_resource_set_release(&actual);
	json_decref(c);
	return rc == -1 && !*jtext ? -1 : 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
	bool write = argc > 2 && !strcmp(argv[2], "--write");
	size_t passed = 0, failed = 0, n = 0, i;
	char **names = NULL;
	struct dirent *e;
	DIR *d;

	if (argc < 2) {
		fprintf(stderr, "usage: rc_plan_cases DIR [--write]\n");
		return 2;
	}
	d = opendir(argv[1]);
	if (!d) {
		perror(argv[1]);
		return 2;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		names = rc_realloc(names, (n + 1) * sizeof(char *));
		names[n++] = rc_strdup(e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(char *), cmp_str);
	for (i = 0; i < n; i++) {
		char dir[PATH_MAX], p1[PATH_MAX + 32], p2[PATH_MAX + 32];
		char *text = NULL, *jtext = NULL, *want_t, *want_j;
		bool ok;

		snprintf(dir, sizeof(dir), "%s/%s", argv[1], names[i]);
		snprintf(p1, sizeof(p1), "%s/expected.txt", dir);
		snprintf(p2, sizeof(p2), "%s/expected.json", dir);
		if (run_case(dir, &text, &jtext) < 0) {
			printf("FAIL %s (cannot run)\n", names[i]);
			failed++;
			free(text);
			free(jtext);
			continue;
		}
		if (write) {
			write_all(p1, text);
			if (*jtext)
				write_all(p2, jtext);
		}
		want_t = read_all(p1);
		want_j = read_all(p2);
		ok = want_t && !strcmp(want_t, text) &&
		     (!*jtext || (want_j && !strcmp(want_j, jtext)));
		if (ok) {
			passed++;
			printf("ok %s\n", names[i]);
		} else {
			failed++;
			printf("FAIL %s\n--- expected.txt\n%s--- got\n%s", names[i],
			       want_t ? want_t : "(missing)\n", text);
			if (*jtext && (!want_j || strcmp(want_j, jtext)))
				printf("(expected.json differs)\n");
		}
		free(want_t);
		free(want_j);
		free(text);
		free(jtext);
		free(names[i]);
	}
	free(names);
	printf("%zu passed, %zu failed\n", passed, failed);
	return failed ? 1 : 0;
}
