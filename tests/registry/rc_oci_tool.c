/*
 * A command line over drivers/oci.h, built only for tests
 * (tests/registry/run.sh drives it against real registries):
 *
 *   rc_oci_tool [options] resolve REF
 *   rc_oci_tool [options] copy SRC DST
 *
 * options: --endpoint REGISTRY=URL (repeatable), --user USER (the password
 * from $RC_OCI_PASSWORD) for --cred-registry REGISTRY, --auth-file FILE,
 * --platform OS/ARCH[/VARIANT], --all (copy every platform of an index),
 * --progress (progress events on stderr).
 *
 * Prints key=value lines: for resolve digest, media_type, config, layers,
 * index, platform; for copy the stats, then maxrss_before_kb and
 * maxrss_after_kb (the process's peak resident size before and after the
 * copy). Errors go to stderr, exit status 1.
 */
#include "reconciler/base/common.h"
#include "reconciler/base/error.h"
#include "drivers/oci.h"

#include <sys/resource.h>

static long maxrss_kb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static void on_progress(void *ctx, const rc_oci_progress *p)
{
	static const char *names[] = {"start",  "skipped", "mounted",
				      "bytes",  "done",    "manifest"};

	RC_UNUSED(ctx);
	fprintf(stderr, "progress %s %zu/%zu %s %llu/%llu\n", names[p->event],
		p->index, p->count, p->digest, (unsigned long long)p->done,
		(unsigned long long)p->total);
}

static int fail(const char *what)
{
	fprintf(stderr, "rc_oci_tool: %s: %s\n", what, rc_error_last()->message);
	return 1;
}

int main(int argc, char **argv)
{
	rc_oci_opts o;
	rc_oci *c;
	rc_oci_platform plat = {0};
	rc_oci_copy_opts co = {0};
	const char *user = NULL, *cred_registry = NULL;
	char *platbuf = NULL;
	bool have_plat = false;
	int i, rc = 0;

	rc_oci_opts_init(&o);
	o.ca_file = getenv("RC_OCI_CA_FILE");
	for (i = 1; i < argc && !strncmp(argv[i], "--", 2); i++) {
		if (!strcmp(argv[i], "--auth-file") && i + 1 < argc)
			o.auth_file = argv[++i];
		else if (!strcmp(argv[i], "--all"))
			co.all_platforms = true;
		else if (!strcmp(argv[i], "--progress"))
			co.progress = on_progress;
		else if (!strcmp(argv[i], "--user") && i + 1 < argc)
			user = argv[++i];
		else if (!strcmp(argv[i], "--cred-registry") && i + 1 < argc)
			cred_registry = argv[++i];
		else if (!strcmp(argv[i], "--platform") && i + 1 < argc) {
			char *s = platbuf = rc_strdup(argv[++i]), *sl;

			plat.os = s;
			if ((sl = strchr(s, '/'))) {
				*sl = '\0';
				plat.architecture = sl + 1;
				if ((sl = strchr(sl + 1, '/'))) {
					*sl = '\0';
					plat.variant = sl + 1;
				}
			}
			have_plat = true;
		} else if (!strcmp(argv[i], "--endpoint") && i + 1 < argc) {
			i++;
		} else {
			fprintf(stderr, "rc_oci_tool: unknown option %s\n",
				argv[i]);
			return 2;
		}
	}
	if (i >= argc)
		return 2;
	rc_oci_open(&c, &o);
	for (int j = 1; j < i; j++) {
		if (!strcmp(argv[j], "--endpoint")) {
			char *eq, *reg = rc_strdup(argv[j + 1]);

			if ((eq = strchr(reg, '=')))
				*eq = '\0';
			if (!eq || rc_oci_set_endpoint(c, reg, eq + 1) < 0) {
				free(reg);
				rc = fail("--endpoint");
				goto done;
			}
			free(reg);
			j++;
		}
	}
	if (user && cred_registry)
		rc_oci_set_credentials(c, cred_registry, user,
				       getenv("RC_OCI_PASSWORD"));
	if (have_plat)
		co.platform = &plat;

	if (!strcmp(argv[i], "resolve") && i + 1 < argc) {
		rc_oci_image img;

		if (rc_oci_resolve(c, &img, argv[i + 1],
				   have_plat ? &plat : NULL) < 0) {
			rc_oci_image_release(&img);
			rc = fail(argv[i + 1]);
			goto done;
		}
		printf("digest=%s\nmedia_type=%s\nconfig=%s\nlayers=%zu\n",
		       img.digest, img.media_type, img.config.digest,
		       img.nlayers);
		for (size_t k = 0; k < img.nlayers; k++)
			printf("layer=%s %llu\n", img.layers[k].digest,
			       (unsigned long long)img.layers[k].size);
		if (img.index_digest)
			printf("index=%s\nindex_manifests=%zu\nplatform=%s\n",
			       img.index_digest, img.index_manifests,
			       img.platform);
		rc_oci_image_release(&img);
	} else if (!strcmp(argv[i], "copy") && i + 2 < argc) {
		rc_oci_copy_stats st;
		rc_oci_image img;
		long before = maxrss_kb();

		if (rc_oci_copy(c, argv[i + 1], argv[i + 2], &co, &img, &st) <
		    0) {
			printf("copied=%u\nskipped=%u\nmounted=%u\n",
			       st.blobs_copied, st.blobs_skipped,
			       st.blobs_mounted);
			rc = fail("copy");
			goto done;
		}
		printf("copied=%u\nskipped=%u\nmounted=%u\nbytes=%llu\n"
		       "manifests_put=%u\nmanifests_skipped=%u\n"
		       "elapsed_ms=%ld\ndigest=%s\nconfig=%s\n"
		       "maxrss_before_kb=%ld\nmaxrss_after_kb=%ld\n",
		       st.blobs_copied, st.blobs_skipped, st.blobs_mounted,
		       (unsigned long long)st.bytes_copied, st.manifests_put,
		       st.manifests_skipped, st.elapsed_ms, img.digest,
		       img.config.digest, before, maxrss_kb());
		rc_oci_image_release(&img);
	} else {
		rc = 2;
	}
done:
	rc_oci_close(c);
	free(platbuf);
	return rc;
}
