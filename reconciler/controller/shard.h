/*
 * Sharding a fleet of environments between controllers
 * (docs/controller.md, "HA and sharding"). With N shards, shard K owns
 * the environments whose name hashes to K:
 *
 *     owner(name) = (the first 8 bytes of SHA-256(name as UTF-8 bytes),
 *                    read as a big-endian unsigned 64-bit number) mod N
 *
 * The formula is fixed here on purpose: every replica, every version and
 * any script (docs/controller.md gives a shell line) computes the same
 * owner, so the split never depends on the order or the number of
 * environments; only N moves them. SHA-256 rather than a faster hash
 * such as FNV-1a: FNV modulo a power of two depends only on the low bits
 * of each byte ("app-a" and "app-i" always fall together with 8 shards),
 * and hashing a few names per cycle costs nothing.
 * Each shard elects its leader on its own Lease, "<name>-shard-K".
 */
#ifndef RC_CONTROLLER_SHARD_H
#define RC_CONTROLLER_SHARD_H

#include "reconciler/base/common.h"

/* More shards than this are refused (a typo, not a fleet). */
#define RC_SHARD_MAX 1024

typedef struct {
	int count; /* N >= 1; 1: one shard owns everything */
	int index; /* K, 0 <= K < N */
} rc_shard;

/* The first 8 bytes of SHA-256 of s's bytes, big-endian. */
uint64_t rc_shard_hash(const char *s);

/* The shard (0..count-1) that owns the environment name; 0 when
 * count <= 1. */
int rc_shard_of(const char *name, int count);

/* Whether s owns the environment name (always, when s is NULL or has
 * one shard). */
bool rc_shard_owns(const rc_shard *s, const char *name);

/*
 * The StatefulSet ordinal of a hostname: the digits after its last '-'
 * ("reconcile-3" -> 3). RC_EINVALID with a message when there is no such
 * suffix, or it has a leading zero or more than 6 digits.
 */
int rc_shard_ordinal(const char *hostname, int *out);

/*
 * The shard of this process from --shards N and --shard K: K as given
 * (index >= 0), or, when index < 0, the ordinal of hostname (NULL: the
 * machine's, gethostname()); with N = 1, 0 whatever the hostname.
 * RC_EINVALID with a message naming the flag when N is not 1..RC_SHARD_MAX
 * or K is not below N.
 */
int rc_shard_resolve(rc_shard *out, int count, int index,
		     const char *hostname);

/* The Lease name of shard index for base ("reconcile" -> "reconcile-
 * shard-2"); new string. */
char *rc_shard_lease_name(const char *base, int index);

#endif
