/* Times as reconcile writes and reads them: RFC 3339, UTC. */
#include "reconciler/base/common.h"
#include "reconciler/base/rctime.h"

#include <ctype.h>
#include <time.h>

void rc_time_utc(char out[RC_TIME_SIZE], long long secs)
{
	time_t t = (time_t)secs;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, RC_TIME_SIZE, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

void rc_time_now(char out[RC_TIME_SIZE])
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(out, RC_TIME_SIZE, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, RC_TIME_SIZE - n, ".%03ldZ",
		 ts.tv_nsec / 1000000L);
}

/* Reads exactly n digits at *p. */
static bool digits(const char **p, int n, int *out)
{
	int v = 0;

	while (n-- > 0) {
		if (!isdigit((unsigned char)**p))
			return false;
		v = v * 10 + (**p - '0');
		(*p)++;
	}
	*out = v;
	return true;
}

bool rc_time_parse(const char *s, struct timespec *out)
{
	const char *p = s;
	int year, mon, day, hour, min, sec, oh = 0, om = 0;
	long nsec = 0, scale = 100000000L;
	struct tm tm = {0};
	time_t t;

	if (!s)
		return false;
	if (!digits(&p, 4, &year) || *p++ != '-' || !digits(&p, 2, &mon) ||
	    *p++ != '-' || !digits(&p, 2, &day))
		return false;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return false;
	p++;
	if (!digits(&p, 2, &hour) || *p++ != ':' || !digits(&p, 2, &min) ||
	    *p++ != ':' || !digits(&p, 2, &sec))
		return false;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return false;
		for (; isdigit((unsigned char)*p); p++) {
			nsec += (*p - '0') * scale;
			scale /= 10;
		}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1;

		if (!digits(&p, 2, &oh) || *p++ != ':' || !digits(&p, 2, &om))
			return false;
		oh *= sign;
		om *= sign;
	} else {
		return false;
	}
	if (*p || mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 ||
	    min > 59 || sec > 60 || oh > 23 || oh < -23 || om > 59 || om < -59)
		return false;
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	t = timegm(&tm);
	out->tv_sec = t - (time_t)oh * 3600 - (time_t)om * 60;
	out->tv_nsec = nsec;
	return true;
}
