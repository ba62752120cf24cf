/*
 * For fuzz targets whose parser reads a file: the input written to NAME
 * in a directory of this process's own (made at the first call, kept for
 * every later input). Returns the file's path (static); aborts on an I/O
 * error, which is the machine's, not the input's.
 *
 * The directory is in /dev/shm when there is one (memory: no block I/O
 * for a file rewritten at every input), else in $TMPDIR or /tmp. The file
 * is opened once and rewritten in place (ftruncate, pwrite): an input
 * costs two system calls here, not a create and a close. Both go at a
 * normal exit (not when libFuzzer is interrupted or finds a crash).
 */
#ifndef RC_FUZZ_FILE_H
#define RC_FUZZ_FILE_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char rc_fuzz_path[256];

static inline void rc_fuzz_file_remove(void)
{
	char *slash = strrchr(rc_fuzz_path, '/');

	unlink(rc_fuzz_path);
	if (slash) {
		*slash = '\0';
		rmdir(rc_fuzz_path);
	}
}

static inline const char *rc_fuzz_file(const char *name, const uint8_t *data,
				       size_t size)
{
	static int fd = -1;

	if (fd < 0) {
		const char *base = getenv("TMPDIR");
		struct stat st;
		char tmpl[200];

		if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
		    access("/dev/shm", W_OK) == 0)
			base = "/dev/shm";
		else if (!base || !*base)
			base = "/tmp";
		snprintf(tmpl, sizeof(tmpl), "%s/rc-fuzz-XXXXXX", base);
		if (!mkdtemp(tmpl))
			abort();
		snprintf(rc_fuzz_path, sizeof(rc_fuzz_path), "%s/%s", tmpl,
			 name);
		fd = open(rc_fuzz_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0)
			abort();
		atexit(rc_fuzz_file_remove);
	}
	if (ftruncate(fd, 0) < 0)
		abort();
	if (size && pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	return rc_fuzz_path;
}

#endif
