/* Crash points for the crash sweep: compiled only with the test option. */
#include "reconciler/base/common.h"
#include "reconciler/base/crashpoint.h"

#ifdef RECONCILE_CRASH_POINTS

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>

#define KIND_MAX 32
#define KINDS 8

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char at_kind[KIND_MAX];
static long at_n = -1;
static int log_fd = -1;
static long total;
static struct {
	char name[KIND_MAX];
	long n;
} kinds[KINDS];

static void setup(void)
{
	const char *at = getenv("RECONCILE_CRASH_AT");
	const char *path = getenv("RECONCILE_CRASH_LOG");
	const char *colon;
	char *end;
	long n;

	if (at && (colon = strchr(at, ':')) && colon > at &&
	    (size_t)(colon - at) < sizeof(at_kind)) {
		errno = 0;
		n = strtol(colon + 1, &end, 10);
		if (!errno && *end == '\0' && end != colon + 1 && n > 0) {
			memcpy(at_kind, at, (size_t)(colon - at));
			at_kind[colon - at] = '\0';
			at_n = n;
		}
	}
	if (path && *path)
		log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
			      0600);
}

/* The count of points of kind where so far, this one included. */
static long count(const char *where)
{
	int i;

	for (i = 0; i < KINDS; i++) {
		if (!kinds[i].name[0])
			snprintf(kinds[i].name, sizeof(kinds[i].name), "%s",
				 where);
		if (!strcmp(kinds[i].name, where))
			return ++kinds[i].n;
	}
	return 0;
}

void rc_crashpoint(const char *where)
{
	char line[96];
	long k;
	bool die;
	int len;

	pthread_once(&once, setup);
	if (at_n < 0 && log_fd < 0)
		return;
	pthread_mutex_lock(&lock);
	total++;
	k = count(where);
	die = at_n > 0 && (!strcmp(at_kind, "any") ? total == at_n
			   : !strcmp(at_kind, where) && k == at_n);
	if (log_fd >= 0) {
		len = snprintf(line, sizeof(line), "%ld %s %ld%s\n", total,
			       where, k, die ? " kill" : "");
		if (len > 0 && write(log_fd, line, (size_t)len) < 0)
			log_fd = -1;
	}
	if (die)
		raise(SIGKILL);
	pthread_mutex_unlock(&lock);
}

#else
/* ISO C wants a translation unit to declare something */
typedef int rc_crashpoint_off;
#endif
