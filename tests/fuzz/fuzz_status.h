/*
 * For fuzz targets that read a platform's reply: an optional first line
 * "NNN" of the input is the reply's HTTP status. When it is there, it
 * goes into *status and *data, *size are moved past it; otherwise they are
 * left alone.
 */
#ifndef RC_FUZZ_STATUS_H
#define RC_FUZZ_STATUS_H

#include <ctype.h>
#include <stddef.h>
#include <stdint.h>

static inline void rc_fuzz_status(const uint8_t **data, size_t *size,
				  long *status)
{
	const uint8_t *d = *data;

	if (*size >= 4 && d[3] == '\n' && isdigit(d[0]) && isdigit(d[1]) &&
	    isdigit(d[2])) {
		*status = (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
		*data += 4;
		*size -= 4;
	}
}

#endif
