/*
 * Replays inputs through the fuzz target when libFuzzer is not available:
 * every regular file under the given directories (recursively), then
 * mutations of each (truncations and byte flips), deterministic.
 */
#include "reconciler/base/common.h"

#include <dirent.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t runs;

static void run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;
	size_t i;

	if (!f)
		return;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	if (n < 0 || n > (4 << 20)) {
		fclose(f);
		return;
	}
	buf = rc_malloc((size_t)n + 1);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		free(buf);
		return;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	runs++;
	/* a few deterministic mutations of each input */
	for (i = 1; i <= 8 && n > 0; i++) {
		size_t cut = (size_t)n * i / 9;
		uint8_t saved = buf[cut];

		LLVMFuzzerTestOneInput(buf, cut);
		buf[cut] ^= (uint8_t)(0x55 + i);
		LLVMFuzzerTestOneInput(buf, (size_t)n);
		buf[cut] = saved;
		runs += 2;
	}
	free(buf);
}

static void walk(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *e;

	if (lstat(path, &st) < 0)
		return;
	if (S_ISREG(st.st_mode)) {
		run_file(path);
		return;
	}
	if (!S_ISDIR(st.st_mode) || !(d = opendir(path)))
		return;
	while ((e = readdir(d)) != NULL) {
		char sub[PATH_MAX];

		if (e->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		walk(sub);
	}
	closedir(d);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		walk(argv[i]);
	printf("replayed %zu inputs\n", runs);
	return runs ? 0 : 1;
}
