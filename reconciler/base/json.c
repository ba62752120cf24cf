/* JSON helpers every layer shares: equality by value, the canonical
 * form, fingerprints, JSON pointer patterns. */
#include "reconciler/base/common.h"
#include "reconciler/base/codec.h"
#include "reconciler/base/json.h"

bool rc_json_equal(const json_t *a, const json_t *b)
{
	const char *k;
	json_t *v;
	size_t i;

	if (a == b)
		return true;
	if (!a || !b)
		return false;
	if (json_is_number(a) && json_is_number(b))
		return json_number_value(a) == json_number_value(b);
	if (json_typeof(a) != json_typeof(b))
		return false;
	switch (json_typeof(a)) {
	case JSON_OBJECT:
		if (json_object_size(a) != json_object_size(b))
			return false;
		json_object_foreach((json_t *)(uintptr_t)a, k, v) {
			if (!rc_json_equal(v, json_object_get(b, k)))
				return false;
		}
		return true;
	case JSON_ARRAY:
		if (json_array_size(a) != json_array_size(b))
			return false;
		for (i = 0; i < json_array_size(a); i++)
			if (!rc_json_equal(json_array_get(a, i),
					   json_array_get(b, i)))
				return false;
		return true;
	case JSON_STRING:
		return json_string_length(a) == json_string_length(b) &&
		       !memcmp(json_string_value(a), json_string_value(b),
			       json_string_length(a));
	default:
		return json_equal((json_t *)(uintptr_t)a, (json_t *)(uintptr_t)b);
	}
}

char *rc_json_canonical(const json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS |
					JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));

	return s ? s : rc_strdup("null");
}

char *rc_json_fingerprint(const json_t *v)
{
	char *canon = rc_json_canonical(v);
	char digest[RC_SHA256_DIGEST_LEN + 1];

	rc_codec_sha256_digest(digest, canon, strlen(canon));
	free(canon);
	return rc_strdup(digest);
}

bool rc_pointer_match(const char *pattern, const char *pointer)
{
	const char *p = pattern, *q = pointer;

	for (;;) {
		if (!*p)
			return !*q || *q == '/'; /* a prefix matches below it */
		if (*p != '/' || *q != '/')
			return false;
		p++;
		q++;
		if (p[0] == '*' && (p[1] == '/' || !p[1])) {
			p++;
			while (*q && *q != '/')
				q++;
			continue;
		}
		while (*p && *p != '/') {
			if (*p != *q)
				return false;
			p++;
			q++;
		}
		if (*q && *q != '/')
			return false;
	}
}
