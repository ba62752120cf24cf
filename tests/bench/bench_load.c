/*
 * Benchmark: load and resolve a generated configuration of 1,000
 * environments x 10 services. Prints wall time and peak RSS; it is a
 * program that reports figures, not a test that fails when slow.
 *
 *   bench_load [ENVIRONMENTS] [SERVICES] [ROUNDS]
 *
 * Two shapes are measured: one file per environment extending a shared
 * base (overlays), and one list generator making every environment.
 */
#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "schema/load.h"

#include <ftw.h>
#include <sys/resource.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long peak_rss_kb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static void put(const char *dir, const char *rel, const rc_buf *b)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(1);
	}
	fwrite(b->ptr, 1, b->len, f);
	fclose(f);
}

static void services(rc_buf *b, int nsvc, const char *indent)
{
	for (int s = 0; s < nsvc; s++)
		rc_buf_printf(b,
			      "%s  svc-%d:\n%s    image: \"registry.example.com/"
			      "svc-%d:1.%d\"\n%s    replicas: %d\n%s    port: "
			      "%d\n%s    cpu: 250m\n%s    memory: 512Mi\n%s    "
			      "env: { LOG_LEVEL: info, SERVICE: svc-%d }\n%s    "
			      "health: { http: /healthz, interval: 15s }\n",
			      indent, s, indent, s, s, indent, 1 + s % 3, indent,
			      8000 + s, indent, indent, indent, s, indent);
}

static void gen_files(const char *dir, int nenv, int nsvc)
{
	rc_buf b = RC_BUF_INIT;
	char rel[64];

	snprintf(rel, sizeof(rel), "%s/envs", dir);
	mkdir(rel, 0755);
	rc_buf_puts(&b, "target: { driver: kubernetes, namespace: placeholder }\n"
			"services:\n");
	services(&b, nsvc, "");
	rc_buf_puts(&b, "config: { REGION: eu, FEATURE_X: \"on\" }\n"
			"secrets: { DB_PASSWORD: { env: DB_PASSWORD } }\n"
			"policy: { prune: true }\n");
	put(dir, "envs/base.yaml", &b);
	rc_buf_clear(&b);
	rc_buf_puts(&b, "version: 1\nproject: bench\nenvironments:\n");
	for (int e = 0; e < nenv; e++)
		rc_buf_printf(&b, "  env-%d: { file: envs/env-%d.yaml }\n", e, e);
	put(dir, "reconcile.yaml", &b);
	for (int e = 0; e < nenv; e++) {
		rc_buf_clear(&b);
		rc_buf_printf(&b,
			      "extends: base.yaml\n"
			      "target: { namespace: \"{{ environment.name }}\" }\n"
			      "services:\n  svc-0: { replicas: %d }\n"
			      "config: { ENV_INDEX: \"%d\" }\n",
			      1 + e % 5, e);
		snprintf(rel, sizeof(rel), "envs/env-%d.yaml", e);
		put(dir, rel, &b);
	}
	rc_buf_release(&b);
}

static void gen_generator(const char *dir, int nenv, int nsvc)
{
	rc_buf b = RC_BUF_INIT;

	rc_buf_puts(&b, "target: { driver: kubernetes, namespace: \"{{ "
			"item.name }}\" }\nservices:\n");
	services(&b, nsvc, "");
	rc_buf_puts(&b, "config: { TENANT: \"{{ item.tenant }}\" }\n");
	put(dir, "tenant.yaml", &b);
	rc_buf_clear(&b);
	rc_buf_puts(&b, "version: 1\nproject: bench\nenvironments:\n"
			"  tenant:\n    file: tenant.yaml\n"
			"    name: \"t-{{ item.name }}\"\n"
			"    for_each:\n      list:\n");
	for (int e = 0; e < nenv; e++)
		rc_buf_printf(&b, "        - { name: n%d, tenant: customer-%d }\n",
			      e, e);
	put(dir, "reconcile.yaml", &b);
	rc_buf_release(&b);
}

static int rm_one(const char *p, const struct stat *st, int f, struct FTW *w)
{
	RC_UNUSED(st);
	RC_UNUSED(f);
	RC_UNUSED(w);
	return remove(p);
}

static void measure(const char *label, const char *dir, int rounds,
		    size_t want)
{
	double best = 1e9, total = 0;

	for (int r = 0; r < rounds; r++) {
		rc_diags d;
		rc_config *cfg = NULL;
		rc_load_opts o = {.offline = true};
		double t0 = now(), dt;
		size_t nsvc = 0;

		rc_diags_init(&d);
		if (rc_config_load(&cfg, dir, &o, &d) < 0) {
			rc_diags_print(&d, stderr, false);
			exit(1);
		}
		dt = now() - t0;
		for (size_t i = 0; i < cfg->nenvs; i++)
			nsvc += cfg->envs[i].nservices;
		if (cfg->nenvs != want) {
			fprintf(stderr, "expected %zu environments, got %zu\n",
				want, cfg->nenvs);
			exit(1);
		}
		if (r == 0)
			printf("%-22s %zu environments, %zu services\n", label,
			       cfg->nenvs, nsvc);
		rc_config_free(cfg);
		rc_diags_release(&d);
		total += dt;
		if (dt < best)
			best = dt;
	}
	printf("%-22s wall: best %.1f ms, mean %.1f ms over %d rounds\n", label,
	       best * 1e3, total / rounds * 1e3, rounds);
}

int main(int argc, char **argv)
{
	int nenv = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 1000;
	int nsvc = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 10;
	int rounds = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 5;
	char t1[] = "/tmp/rc-bench-XXXXXX", t2[] = "/tmp/rc-bench-XXXXXX";
	long rss0;

	if (!mkdtemp(t1) || !mkdtemp(t2))
		return 1;
	gen_files(t1, nenv, nsvc);
	gen_generator(t2, nenv, nsvc);
	rss0 = peak_rss_kb();
	printf("bench_load: %d environments x %d services\n", nenv, nsvc);
	measure("overlays (files)", t1, rounds, (size_t)nenv);
	printf("%-22s peak RSS %ld KiB (process start: %ld KiB)\n",
	       "overlays (files)", peak_rss_kb(), rss0);
	measure("generator (list)", t2, rounds, (size_t)nenv);
	printf("%-22s peak RSS %ld KiB\n", "after both", peak_rss_kb());
	nftw(t1, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	nftw(t2, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
