/*
 * A client of container image registries (the Docker Registry HTTP API v2,
 * the OCI distribution specification): image references parsed as Docker
 * parses them, authentication (bearer tokens from a realm, HTTP Basic,
 * Docker's credential files), resolving a reference to its manifest and
 * image id, and copying an image from one reference to another, possibly
 * between registries, without holding a layer in memory.
 * docs/drivers/oci.md tells the whole story; the Heroku driver releases
 * `stack: container` apps with it.
 *
 * Layer 2 (drivers): it uses reconciler/base and drivers/http only; every
 * request goes through rc_http (one client per registry endpoint).
 *
 * Ownership: functions copy the strings they are given; the option
 * structs are borrowed for the call. What a function fills in (rc_oci_ref,
 * rc_oci_image, rc_oci_cred, rc_oci_challenge) is the caller's: release it
 * with its _release function (NULL-safe, and safe on a zeroed struct).
 *
 * Errors: 0 or a negative RC_E* code with rc_error_set(), class
 * RC_ECLASS_PLATFORM for what a registry answered and RC_ECLASS_HTTP for
 * transport failures. Messages name the registry, the repository, the
 * reference or digest and the status; for a refused credential they say
 * which credentials were used ("anonymous", "user '_' (given)", "from
 * /home/u/.docker/config.json"), never a secret:
 *
 *   RC_ENOTFOUND  unknown manifest or tag (404, MANIFEST_UNKNOWN,
 *                 NAME_UNKNOWN), unknown blob (404 on a blob: the digest
 *                 is named), no manifest for the wanted platform
 *   RC_EAUTH      denied (401, 403, UNAUTHORIZED, DENIED), or the token
 *                 realm refused the credentials
 *   RC_ERROR      TOOMANYREQUESTS (429, after the retries) and other
 *                 registry errors, with the registry's code and message
 *   RC_EINVALID   a bad reference; a digest that does not match the
 *                 bytes; a manifest that cannot be read
 *   RC_EUNSUPPORTED  a manifest media type other than the four below,
 *                 a digest algorithm other than sha256
 *
 * Secrets: passwords, identity tokens, bearer tokens and the
 * Authorization values made from them are registered with the log
 * redactor (rc_secret_register) as soon as they are read, and never
 * logged nor put in a message.
 *
 * Threads: one rc_oci may be used from several threads at once (the token
 * cache and the per-registry clients are locked); rc_oci_set_endpoint()
 * and rc_oci_set_credentials() are meant to be called before the first
 * request but are safe at any time.
 */
#ifndef RC_DRIVERS_OCI_H
#define RC_DRIVERS_OCI_H

#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"

/* Manifest media types the client reads and writes. */
#define RC_OCI_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define RC_OCI_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define RC_OCI_MT_DOCKER_LIST \
	"application/vnd.docker.distribution.manifest.list.v2+json"
#define RC_OCI_MT_DOCKER_MANIFEST \
	"application/vnd.docker.distribution.manifest.v2+json"

/* docker.io, as references name it, and the host its API is served on. */
#define RC_OCI_DOCKER_HUB "docker.io"
#define RC_OCI_DOCKER_HUB_API "registry-1.docker.io"
/* The key of docker.io in a Docker config file's "auths". */
#define RC_OCI_DOCKER_HUB_AUTH_KEY "https://index.docker.io/v1/"

/* ------------------------------------------------------------ references */

/*
 * An image reference, normalised as Docker does:
 *
 *   "cityofaustin/joplin-app"  -> docker.io, cityofaustin/joplin-app, latest
 *   "nginx"                    -> docker.io, library/nginx, latest
 *   "registry.heroku.com/app/web:v1"
 *   "127.0.0.1:5000/x/y@sha256:<hex>"  -> tag NULL, digest set
 *   "host:5000/repo:tag@sha256:<hex>"  -> both (the digest decides)
 *
 * The first component is a registry when it has a '.' or a ':' or is
 * "localhost"; otherwise the registry is docker.io. "index.docker.io" is
 * normalised to "docker.io". A tag is added ("latest") only when there is
 * neither a tag nor a digest. Repository names are checked against the
 * distribution grammar (lowercase components separated by '/', each
 * [a-z0-9]+ with '.', '_', '__' or '-'+ between); tags are
 * [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}; digests "sha256:" and 64 lowercase
 * hex digits.
 */
typedef struct {
	char *registry;   /* "docker.io", "registry.heroku.com",
			     "127.0.0.1:5000" (host and optional port) */
	char *repository; /* "library/nginx", "app/web" */
	char *tag;        /* "latest", or NULL when only a digest is given */
	char *digest;     /* "sha256:<hex>", or NULL */
} rc_oci_ref;

/* Parses s into *out (which the caller releases, also after a failure).
 * RC_EINVALID says what is wrong, quoting s. */
int rc_oci_ref_parse(rc_oci_ref *out, const char *s);
void rc_oci_ref_release(rc_oci_ref *r);
/* Appends the full form: "docker.io/library/nginx:latest",
 * "127.0.0.1:5000/x/y@sha256:...", "host/repo:tag@sha256:...". */
int rc_oci_ref_format(rc_buf *out, const rc_oci_ref *r);

/* Whether a registry ("host" or "host:port") is on a loopback address
 * (localhost, 127.0.0.0/8, ::1, "[::1]:5000"): such a registry is reached
 * over plain HTTP, as Docker does; every other one over HTTPS. */
bool rc_oci_registry_is_loopback(const char *registry);

/* ---------------------------------------------------------- credentials */

/*
 * Credentials for one registry, from the caller or from a Docker config
 * file. Exactly one of password and identity_token is set when user is.
 * source says where they came from, for messages: "given", or the config
 * file's path.
 */
typedef struct {
	char *user;
	char *password;       /* a secret */
	char *identity_token; /* a secret: an OAuth2 refresh token, sent to the
				 token realm (grant_type=refresh_token) */
	char *source;
} rc_oci_cred;

void rc_oci_cred_release(rc_oci_cred *c);

/*
 * The Docker config file the conventions name: $REGISTRY_AUTH_FILE, else
 * $DOCKER_CONFIG/config.json, else $HOME/.docker/config.json. Appends the
 * path to out whether or not the file exists; RC_ENOTFOUND when none can
 * be named (no HOME).
 */
int rc_oci_config_path(rc_buf *out);

/*
 * Looks registry up in the Docker config file at path (NULL: the one
 * rc_oci_config_path() names): "auths".<registry>, with docker.io under
 * "https://index.docker.io/v1/" (also found as "index.docker.io",
 * "registry-1.docker.io" or "docker.io"), and for other registries also a
 * key with a scheme ("https://host:5000") or a path. An entry gives
 * "auth" (base64 of user:password), or "username" and "password", and
 * possibly "identitytoken". credsStore and credHelpers (external helper
 * programs) are not run: an entry known only to a helper is not found.
 * Returns 0 with *out filled, RC_ENOTFOUND when there is no file or no
 * entry, RC_EINVALID when the file or the entry cannot be read (the
 * message names the file and the key, never the value). The secrets are
 * registered with the redactor.
 */
int rc_oci_config_lookup(rc_oci_cred *out, const char *registry,
			 const char *path);

/* ------------------------------------------------------------ challenges */

/*
 * A WWW-Authenticate challenge: 'Bearer realm="https://auth.docker.io/
 * token",service="registry.docker.io",scope="repository:x/y:pull"' or
 * 'Basic realm="Registry"'. Parameter values may be quoted (with
 * backslash escapes) or bare tokens; names are case-insensitive. Only the
 * first challenge of the header is read.
 */
typedef struct {
	char *scheme;  /* "Bearer", "Basic" (as sent) */
	char *realm;   /* or NULL */
	char *service; /* or NULL */
	char *scope;   /* or NULL */
	char *error;   /* 'error="insufficient_scope"', or NULL */
} rc_oci_challenge;

/* RC_EINVALID when value is not a challenge (out is then left empty). */
int rc_oci_challenge_parse(rc_oci_challenge *out, const char *value);
void rc_oci_challenge_release(rc_oci_challenge *c);

/* ---------------------------------------------------------------- client */

typedef struct rc_oci rc_oci;

typedef struct {
	/* A CA bundle (PEM file) that HTTPS registries and token realms are
	 * verified against instead of the system's store (tests). TLS is
	 * always verified. */
	const char *ca_file;
	/* The Docker config file for registries without given credentials;
	 * NULL: rc_oci_config_path(). "" reads none (anonymous). */
	const char *auth_file;
	/* Where a layer being copied is spooled: NULL is $TMPDIR, else
	 * /tmp. The file is unlinked as soon as it is open. */
	const char *tmp_dir;
	const char *user_agent; /* NULL: "reconcile/<version>" */
	long timeout_ms;  /* of each request that is not a blob; 0: 60 s */
	long blob_timeout_ms; /* of a blob download or upload; 0: 1 hour */
	int max_retries;  /* as rc_http_opts (3 from rc_oci_opts_init) */
} rc_oci_opts;

void rc_oci_opts_init(rc_oci_opts *o);
int rc_oci_open(rc_oci **out, const rc_oci_opts *o);
/* NULL is fine; no request may still be running. */
void rc_oci_close(rc_oci *c);

/*
 * Registry host X is reached at URL U: "registry.heroku.com" ->
 * "http://127.0.0.1:5001" (the Heroku driver's HEROKU_REGISTRY_URL).
 * registry is as a reference names it ("docker.io", "host:port"); url is
 * "http://..." or "https://..." without a path. Without an endpoint a
 * registry is reached at https://<registry> (docker.io at
 * https://registry-1.docker.io), or http://<registry> on loopback.
 * Plain http is refused (RC_EINVALID) for a URL whose host is not on
 * loopback. A later call for the same registry replaces the earlier.
 */
int rc_oci_set_endpoint(rc_oci *c, const char *registry, const char *url);

/*
 * Credentials for registry, used instead of the Docker config file:
 * for Heroku, user "_" and the API key as password. password is a secret
 * (registered with the redactor). NULL user and password: anonymous,
 * even if the config file has an entry.
 */
int rc_oci_set_credentials(rc_oci *c, const char *registry, const char *user,
			   const char *password);

/* --------------------------------------------------------------- resolve */

/* A platform, as an index names it; NULL fields match anything. The
 * default (a NULL platform pointer) is linux/amd64. */
typedef struct {
	const char *os;           /* "linux" */
	const char *architecture; /* "amd64", "arm64" */
	const char *variant;      /* "v8", or NULL */
} rc_oci_platform;

typedef struct {
	char *digest;     /* "sha256:<hex>" */
	char *media_type;
	uint64_t size;
} rc_oci_blob;

typedef struct {
	/* The image manifest (for an index: the chosen platform's). */
	char *digest;       /* sha256 of its exact bytes */
	char *media_type;   /* RC_OCI_MT_DOCKER_MANIFEST or _OCI_MANIFEST */
	uint64_t size;
	/* When the reference named an index or manifest list: its digest and
	 * media type (and how many manifests it lists); else NULL and 0. */
	char *index_digest;
	char *index_media_type;
	size_t index_manifests;
	/* The chosen platform, "linux/amd64" or "linux/arm64/v8", from the
	 * index; NULL when there was no index. */
	char *platform;
	/* The image config: its digest is the image id Docker and Heroku
	 * show ("sha256:..."). */
	rc_oci_blob config;
	rc_oci_blob *layers; /* in order, base first */
	size_t nlayers;
	char *manifest; /* the manifest's bytes, NUL-terminated */
	size_t manifest_len;
} rc_oci_image;

void rc_oci_image_release(rc_oci_image *img);

/*
 * Resolves ref (a reference string as rc_oci_ref_parse() reads it) to its
 * image: GETs the manifest with an Accept of the four media types above;
 * for an index or manifest list, picks the manifest for platform (NULL:
 * linux/amd64; RC_ENOTFOUND listing the platforms there are when none
 * matches) and GETs it. Each manifest's digest is the sha256 of its exact
 * bytes, checked against the Docker-Content-Digest header when there is
 * one and against the reference's digest when it has one (RC_EINVALID on
 * a mismatch). *out is the caller's to release, also after a failure.
 */
int rc_oci_resolve(rc_oci *c, rc_oci_image *out, const char *ref,
		   const rc_oci_platform *platform);

/* ------------------------------------------------------------------ copy */

typedef enum {
	RC_OCI_BLOB_START,   /* a blob is about to be checked */
	RC_OCI_BLOB_SKIPPED, /* the destination has it */
	RC_OCI_BLOB_MOUNTED, /* mounted from another repository */
	RC_OCI_BLOB_BYTES,   /* more bytes of a blob were uploaded */
	RC_OCI_BLOB_DONE,    /* a blob was copied */
	RC_OCI_MANIFEST_DONE /* a manifest was put (or found in place) */
} rc_oci_event;

typedef struct {
	rc_oci_event event;
	const char *digest; /* the blob's or manifest's; borrowed */
	uint64_t done;      /* bytes of this blob so far (BYTES, DONE) */
	uint64_t total;     /* its size */
	size_t index;       /* 1-based number of this blob ... */
	size_t count;       /* ... of this many (config and layers) */
} rc_oci_progress;

/* Called from the copying thread; BYTES at most about every 256 KiB.
 * Whether to show anything (a terminal) is the caller's choice. */
typedef void (*rc_oci_progress_fn)(void *ctx, const rc_oci_progress *p);

typedef struct {
	const rc_oci_platform *platform; /* NULL: linux/amd64 */
	/* For an index: false copies only the chosen platform's manifest
	 * (and its blobs) and puts it under the destination's tag, so the
	 * destination holds a single-platform image (what Heroku runs);
	 * true copies every listed manifest, each by digest, then the index
	 * itself under the tag, unchanged (the same digest). */
	bool all_platforms;
	rc_oci_progress_fn progress;
	void *progress_ctx;
} rc_oci_copy_opts;

typedef struct {
	unsigned blobs_copied;  /* streamed from the source */
	unsigned blobs_skipped; /* already at the destination */
	unsigned blobs_mounted; /* mounted from the source repository */
	unsigned manifests_put;
	unsigned manifests_skipped; /* the destination had it, same digest */
	uint64_t bytes_copied;  /* blob bytes uploaded */
	long elapsed_ms;
} rc_oci_copy_stats;

/*
 * Copies the image src names to dst (both reference strings; dst names a
 * tag, or a digest that must be the copied manifest's). For each blob
 * (config, then layers): a HEAD on the destination, skipped when there;
 * else, when both are in the same registry, a cross-repository mount;
 * else a download from the source (following redirects; the
 * Authorization is not sent to another host) into an unlinked temporary
 * file while its sha256 is checked, then one upload (POST then PUT
 * ?digest=) from that file: a layer is never held in memory. Then the
 * manifest is put, unless the destination's tag already has that digest.
 * Copying again copies nothing. The image as put (its digests) goes to
 * *image when image is not NULL (release it); stats may be NULL too. On a
 * failure the stats say what was done until then.
 */
int rc_oci_copy(rc_oci *c, const char *src, const char *dst,
		const rc_oci_copy_opts *o, rc_oci_image *image,
		rc_oci_copy_stats *stats);

#endif
