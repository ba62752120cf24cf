/*
 * For fuzz targets whose parser reads a file: the input written to NAME
 * in a directory of this process's own (made at the first call, kept for
 * every later input). Returns the file's path (static); aborts on an I/O
 * error, which is the machine's, not the input's.
 */
#ifndef RC_FUZZ_FILE_H
#define RC_FUZZ_FILE_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline const char *rc_fuzz_file(const char *name, const uint8_t *data,
				       size_t size)
{
	static char path[128];
	int fd;

	if (!path[0]) {
		char tmpl[] = "/tmp/rc-fuzz-XXXXXX";

		if (!mkdtemp(tmpl))
			abort();
		snprintf(path, sizeof(path), "%s/%s", tmpl, name);
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		abort();
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	return path;
}

#endif
