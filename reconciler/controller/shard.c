#include "reconciler/controller/shard.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/codec.h"
#include "reconciler/base/error.h"

uint64_t rc_shard_hash(const char *s)
{
	unsigned char d[RC_SHA256_LEN];
	uint64_t h = 0;
	int i;

	rc_codec_sha256(d, s ? s : "", s ? strlen(s) : 0);
	for (i = 0; i < 8; i++)
		h = h << 8 | d[i];
	return h;
}

int rc_shard_of(const char *name, int count)
{
	if (count <= 1)
		return 0;
	return (int)(rc_shard_hash(name) % (uint64_t)count);
}

bool rc_shard_owns(const rc_shard *s, const char *name)
{
	if (!s || s->count <= 1)
		return true;
	return rc_shard_of(name, s->count) == s->index;
}

int rc_shard_ordinal(const char *hostname, int *out)
{
	const char *dash = hostname ? strrchr(hostname, '-') : NULL;
	const char *p;
	long v = 0;

	if (!dash || !dash[1])
		goto bad;
	for (p = dash + 1; *p; p++)
		if (*p < '0' || *p > '9')
			goto bad;
	if ((dash[1] == '0' && dash[2]) || strlen(dash + 1) > 6)
		goto bad;
	for (p = dash + 1; *p; p++)
		v = v * 10 + (*p - '0');
	*out = (int)v;
	return 0;
bad:
	return rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
			    "cannot tell the shard from the hostname '%s': "
			    "it does not end in a StatefulSet ordinal "
			    "('-<n>'); give --shard K",
			    hostname ? hostname : "");
}

int rc_shard_resolve(rc_shard *out, int count, int index,
		     const char *hostname)
{
	char host[256];
	int rc;

	if (count < 1 || count > RC_SHARD_MAX)
		return rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				    "--shards %d: must be from 1 to %d", count,
				    RC_SHARD_MAX);
	if (index < 0 && count == 1) {
		index = 0;
	} else if (index < 0) {
		if (!hostname) {
			if (gethostname(host, sizeof(host)) < 0)
				return rc_error_set_os("gethostname");
			host[sizeof(host) - 1] = '\0';
			hostname = host;
		}
		rc = rc_shard_ordinal(hostname, &index);
		if (rc < 0)
			return rc;
		if (index >= count)
			return rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
					    "the StatefulSet ordinal %d of '%s' "
					    "is not below --shards %d: scale "
					    "the StatefulSet to %d replicas or "
					    "raise --shards",
					    index, hostname, count, count);
	} else if (index >= count) {
		return rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				    "--shard %d: must be below --shards %d "
				    "(shards are numbered from 0)",
				    index, count);
	}
	out->count = count;
	out->index = index;
	return 0;
}

char *rc_shard_lease_name(const char *base, int index)
{
	rc_buf b = RC_BUF_INIT;

	rc_buf_printf(&b, "%s-shard-%d", base, index);
	return rc_buf_detach(&b);
}
