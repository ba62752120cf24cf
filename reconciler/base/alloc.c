#include "reconciler/base/common.h"

static void oom(size_t n)
{
	fprintf(stderr, "fatal: out of memory (allocating %zu bytes)\n", n);
	abort();
}

void *rc_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom(n);
	return p;
}

void *rc_calloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		oom(n * size);
	return p;
}

void *rc_realloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		oom(n);
	return q;
}

char *rc_strdup(const char *s)
{
	return rc_strndup(s, strlen(s));
}

char *rc_strndup(const char *s, size_t n)
{
	char *p = rc_malloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void rc_grow(void **items, size_t *cap, size_t need, size_t elem)
{
	size_t ncap;

	if (need <= *cap)
		return;
	ncap = *cap ? *cap : 4;
	while (ncap < need)
		ncap *= 2;
	if (ncap > SIZE_MAX / elem)
		oom(SIZE_MAX);
	*items = rc_realloc(*items, ncap * elem);
	memset((char *)*items + *cap * elem, 0, (ncap - *cap) * elem);
	*cap = ncap;
}
