/*
 * Benchmark: append small intent and outcome records to a journal, with
 * the fsync after every append (what the engine does) and without it (for
 * comparison), then read the journal back. Prints records per second,
 * total time and per-append latency; it is a program that reports
 * figures, not a test that fails when slow.
 *
 *   bench_journal [RECORDS] [DIR]
 *
 * RECORDS (default 1000) alternate intent and outcome. DIR (default /tmp)
 * is where the state directory is made: the figures with fsync are those
 * of the file system under it.
 */
#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/error.h"
#include "state/journal.h"

#include <ftw.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	RC_UNUSED(st);
	RC_UNUSED(flag);
	RC_UNUSED(ftw);
	return remove(path);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static json_t *record(long i)
{
	rc_buf action = RC_BUF_INIT;
	json_t *r;

	rc_buf_printf(&action, "act-%ld", i / 2);
	if (i % 2 == 0)
		r = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:i}, s:{s:i}, "
			      "s:b}",
			      "type", "intent", "action", action.ptr, "env",
			      "staging", "key", "kubernetes/Deployment/web",
			      "op", "update", "snapshot", "replicas", 2,
			      "desired", "replicas", 3, "irreversible", 0);
	else
		r = json_pack("{s:s, s:s, s:s, s:n, s:{s:s}}", "type",
			      "outcome", "action", action.ptr, "status", "ok",
			      "error", "result", "generation", "17");
	rc_buf_release(&action);
	return r;
}

/* Appends n records to a new journal under dir; prints the figures. */
static int run(const char *dir, long n, bool sync)
{
	double *lat = rc_calloc((size_t)n, sizeof(double));
	rc_journal *j;
	rc_journal_contents c;
	double t0, t1, r0, r1, sum = 0;
	struct stat st;
	long i;

	if (rc_journal_create(&j, dir, sync ? "bench-fsync" : "bench-nosync") <
	    0)
		goto fail;
	rc_journal_set_sync(j, sync);
	t0 = now();
	for (i = 0; i < n; i++) {
		json_t *r = record(i);
		double a = now();

		if (rc_journal_append(j, r) < 0) {
			json_decref(r);
			rc_journal_close(j);
			goto fail;
		}
		lat[i] = now() - a;
		sum += lat[i];
		json_decref(r);
	}
	t1 = now();
	stat(rc_journal_path(j), &st);
	r0 = now();
	if (rc_journal_read(&c, rc_journal_path(j)) < 0) {
		rc_journal_contents_release(&c);
		rc_journal_close(j);
		goto fail;
	}
	r1 = now();
	rc_journal_contents_release(&c);
	rc_journal_close(j);

	qsort(lat, (size_t)n, sizeof(*lat), cmp_double);
	printf("%-12s %6ld records  %8.3f s  %10.0f records/s  "
	       "append mean %7.1f us  p50 %7.1f us  p99 %7.1f us\n",
	       sync ? "with fsync" : "no fsync", n, t1 - t0,
	       (double)n / (t1 - t0), sum / (double)n * 1e6,
	       lat[n / 2] * 1e6, lat[(size_t)((double)n * 0.99)] * 1e6);
	printf("%-12s %6ld records  %8.3f s  %10.0f records/s  "
	       "(read back, %lld bytes)\n",
	       "", n, r1 - r0, (double)n / (r1 - r0), (long long)st.st_size);
	free(lat);
	return 0;

fail:
	fprintf(stderr, "bench_journal: %s\n",
		rc_error_last() ? rc_error_last()->message : "failed");
	free(lat);
	return 1;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1000;
	const char *base = argc > 2 ? argv[2] : "/tmp";
	rc_buf dir = RC_BUF_INIT;
	int failed = 0;

	if (n < 1) {
		fprintf(stderr, "usage: bench_journal [RECORDS] [DIR]\n");
		return 2;
	}
	rc_buf_printf(&dir, "%s/rc-bench-XXXXXX", base);
	if (!mkdtemp(dir.ptr)) {
		perror(dir.ptr);
		return 1;
	}
	printf("journal appends, intent and outcome records alternating, "
	       "in %s\n",
	       dir.ptr);
	failed |= run(dir.ptr, n, true);
	failed |= run(dir.ptr, n, false);
	nftw(dir.ptr, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	rc_buf_release(&dir);
	return failed;
}
