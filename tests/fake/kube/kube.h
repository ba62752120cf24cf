/*
 * rc_fake_kube: a fake Kubernetes API server for tests (README.md).
 *
 * One process, one in-memory store behind one mutex (struct kf_server:
 * `lock`). Stored objects are jansson trees that are never changed once
 * stored: a write builds a new tree and swaps it in, so a tree read under
 * the lock may be kept (with a reference) and read after it. Every
 * function below that takes a struct kf_server or a struct kf_store is
 * called with the lock held unless it says otherwise.
 *
 * jansson references: "new" means the caller owns the returned reference,
 * "borrowed" that it does not, "stolen" that the callee takes the one
 * passed in.
 */
#ifndef RC_FAKE_KUBE_H
#define RC_FAKE_KUBE_H

#include <jansson.h>
#include <pthread.h>

#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/codec.h"
#include "reconciler/base/error.h"

struct kf_server;

/* ---- kinds.c: what the server serves ---- */

enum kf_name_rule { KF_NAME_SUBDOMAIN, KF_NAME_LABEL, KF_NAME_1035 };

struct kf_verrs;

struct kf_kind {
	const char *group;       /* "" for the core group */
	const char *version;     /* "v1" */
	const char *api_version; /* "apps/v1", or "v1" for the core group */
	const char *resource;    /* "deployments" */
	const char *kind;        /* "Deployment" */
	bool namespaced;
	bool status_sub;       /* status is written through .../status only */
	bool generation;       /* metadata.generation counts spec changes */
	bool typed;            /* a built-in schema: keyed lists are known */
	bool create_on_update; /* PUT may create */
	bool unconditional_update; /* PUT without resourceVersion allowed */
	bool deletecollection;
	enum kf_name_rule name_rule;
	const char *propagation; /* the default propagationPolicy */
	/* The empty object of the type, as the API server's decoder makes
	 * it: a create's field ownership is what the object adds to it. */
	const char *skeleton;
	/* Defaults the decoder fills in (they are owned by the writer). */
	void (*defaults)(json_t *obj);
	/* Validation of a whole object; old is NULL on create. */
	void (*validate)(struct kf_verrs *e, json_t *obj, json_t *old);
};

extern const struct kf_kind kf_kinds[];
extern const size_t kf_nkinds;

const struct kf_kind *kf_kind_find(const char *group, const char *version,
				   const char *resource);
const struct kf_kind *kf_kind_named(const char *resource);
/* "deployments.apps", or "configmaps" for the core group. */
void kf_qualified_resource(rc_buf *out, const struct kf_kind *k);
/* "/apis/apps/v1" or "/api/v1". */
void kf_kind_prefix(rc_buf *out, const struct kf_kind *k);
void kf_self_link(rc_buf *out, const struct kf_kind *k, const char *ns,
		  const char *name);
/* Puts keys in the order the API server's Go types print them, and maps
 * in sorted order (obj is changed in place; call before storing). */
void kf_canonical_order(const struct kf_kind *k, json_t *obj);
void kf_order_meta(json_t *meta);
/* Server-side work on a new object: uid, creationTimestamp, generation,
 * status reset, allocations (cluster IPs, Job selectors, finalizers). */
void kf_prepare_create(struct kf_server *srv, const struct kf_kind *k,
		       json_t *obj);
/* Turns stringData into data (Secrets), drops nulls; on decode. */
void kf_decode_fixups(const struct kf_kind *k, json_t *obj);

/* ---- validation errors (field.ErrorList) ---- */

enum kf_ferr_type {
	KF_REQUIRED,
	KF_INVALID,
	KF_UNSUPPORTED,
	KF_DUPLICATE,
	KF_FORBIDDEN,
};

struct kf_ferr {
	enum kf_ferr_type type;
	char *field;
	char *body; /* "Invalid value: 70000: must be between ..." */
};

struct kf_verrs {
	struct kf_ferr *v;
	size_t n, cap;
};

/* value is the Go rendering of the bad value (NULL for none). */
void kf_verr(struct kf_verrs *e, enum kf_ferr_type t, const char *field,
	     const char *value, const char *detail);
void kf_verr_str(struct kf_verrs *e, enum kf_ferr_type t, const char *field,
		 const char *value, const char *detail);
void kf_verr_int(struct kf_verrs *e, const char *field, long long value,
		 const char *detail);
void kf_verr_release(struct kf_verrs *e);
/* The 422 Invalid Status (new): `Kind.group "name" is invalid: ...`. */
json_t *kf_verr_status(const struct kf_verrs *e, const char *group,
		       const char *kind, const char *name);
void kf_validate_meta(struct kf_verrs *e, const struct kf_kind *k, json_t *obj);

/* ---- util.c ---- */

/* Go's %q of s. */
void kf_go_quote(rc_buf *out, const char *s);
/* RFC 3339 UTC, seconds: 2026-11-22T01:51:17Z. */
void kf_time_now(char out[32]);
void kf_uuid(char out[37]);
/* 0 .. n-1 from the server's generator (lock held). */
uint64_t kf_random(struct kf_server *srv);
/* n characters of Kubernetes' name-suffix alphabet. */
void kf_random_suffix(struct kf_server *srv, char *out, size_t n);
/* YAML (or JSON) text to a new jansson value; NULL with err filled. */
json_t *kf_yaml_load(const char *text, size_t len, rc_buf *err);
/* A new Status object. details is stolen (may be NULL). */
json_t *kf_status(int code, const char *reason, const char *message,
		  json_t *details);
/* {name, group, kind}; empty strings are left out. New. */
json_t *kf_details(const char *name, const char *group, const char *kind);
json_t *kf_err_not_found(const struct kf_kind *k, const char *name);
json_t *kf_err_exists(const struct kf_kind *k, const char *name);
json_t *kf_err_conflict(const struct kf_kind *k, const char *name,
			const char *why);
json_t *kf_err_bad_request(const char *fmt, ...) RC_PRINTF(1, 2);
json_t *kf_err_internal(const char *cause);
json_t *kf_err_method(void);
json_t *kf_err_no_resource(void);
/* Deep-equal, like json_equal but treating 1 and 1.0 alike. */
bool kf_json_equal(json_t *a, json_t *b);
/* obj[k1][k2]... as a string, or NULL. Borrowed. */
const char *kf_jstr(json_t *obj, const char *path);
json_t *kf_jget(json_t *obj, const char *path);
/* Creates the objects along a dotted path; returns the last (borrowed). */
json_t *kf_jmkobj(json_t *obj, const char *path);
void kf_strip_nulls(json_t *v);

/* ---- select.c: label and field selectors ---- */

struct kf_selector;
/* NULL or "" selects everything (*out = NULL). -1 and a message on error. */
int kf_selector_parse(struct kf_selector **out, const char *s, bool fields,
		      rc_buf *err);
bool kf_selector_match(const struct kf_selector *sel, json_t *obj);
void kf_selector_free(struct kf_selector *sel);

/* ---- store.c ---- */

enum kf_event_type { KF_ADDED, KF_MODIFIED, KF_DELETED };

struct kf_obj {
	const struct kf_kind *kind;
	char *key; /* "ns/name", or "name" for a cluster object */
	char *ns;  /* "" for a cluster object */
	char *name;
	json_t *json; /* never changed once stored */
	uint64_t rv;
	uint64_t hash;
	bool queued; /* waits for the controllers */
	/* deleting, with a slowed garbage collector: what held it (its
	 * dependents, a namespace's content) is gone, and it goes at gc_due */
	bool gc_armed;
	struct timespec gc_due;
	struct kf_obj *next;
};

struct kf_index {
	struct kf_obj **v; /* sorted by key */
	size_t n, cap;
};

struct kf_event {
	uint64_t rv;
	enum kf_event_type type;
	const struct kf_kind *kind;
	char *ns;
	json_t *obj;  /* the object as of the event */
	json_t *prev; /* before a MODIFIED event, or NULL */
	char *line;   /* {"type":...,"object":...}\n */
	size_t len;
};

struct kf_store {
	uint64_t rv;
	struct kf_obj **buckets;
	size_t nbuckets, count;
	struct kf_index *idx; /* one per kind */
	struct kf_event *ring;
	size_t ring_cap, ring_start, ring_n;
	uint64_t horizon; /* watches from below this are expired */
};

void kf_store_init(struct kf_store *s, size_t history);
void kf_store_release(struct kf_store *s);
struct kf_obj *kf_store_get(struct kf_store *s, const struct kf_kind *k,
			    const char *ns, const char *name);
/* Stores obj (stolen) under a new resourceVersion, written into its
 * metadata first, and records the event. Returns the stored object. */
struct kf_obj *kf_store_put(struct kf_store *s, const struct kf_kind *k,
			    const char *ns, const char *name, json_t *obj);
/* Removes o with a DELETED event carrying a new resourceVersion. */
void kf_store_remove(struct kf_store *s, struct kf_obj *o);
struct kf_index *kf_store_index(struct kf_store *s, const struct kf_kind *k);
/* First index position whose key is >= key (len bytes, may hold NUL). */
size_t kf_index_lower(const struct kf_index *ix, const char *key, size_t len);
/* Forgets the watch history. */
void kf_store_compact(struct kf_store *s);
/* Oldest resourceVersion a watch may start from. */
uint64_t kf_store_oldest(const struct kf_store *s);

/* ---- ssa.c: field sets, managed fields, server-side apply ---- */

/* A field set is a fieldsV1 tree: keys "f:name", "k:{...}", "v:...";
 * an empty node or one holding "." is a member. */

struct kf_manager {
	char *manager;
	char *operation; /* "Apply" or "Update" */
	char *api_version;
	char time[32];
	json_t *set;
};

struct kf_managers {
	struct kf_manager *v;
	size_t n, cap;
};

void kf_managers_load(struct kf_managers *m, json_t *obj);
/* A new managedFields array, in the API server's order. */
json_t *kf_managers_json(const struct kf_managers *m);
void kf_managers_release(struct kf_managers *m);
/* The field set of an applied configuration (new). */
json_t *kf_fs_of(const struct kf_kind *k, json_t *config);
/* Records an Update by manager: live (NULL on create) became obj. */
void kf_ssa_update(const struct kf_kind *k, struct kf_managers *m,
		   const char *manager, json_t *live, json_t *obj);
/*
 * Server-side apply of config by manager onto live (the skeleton on
 * create). On success returns the merged object (new, not defaulted)
 * and updates m; on conflict returns NULL with *err the 409 Status.
 */
json_t *kf_ssa_apply(const struct kf_kind *k, struct kf_managers *m,
		     const char *manager, json_t *live, json_t *config,
		     bool force, json_t **err);
/* JSON merge patch (RFC 7386), and strategic merge keyed by known list
 * keys; return new values. */
json_t *kf_merge_patch(json_t *target, json_t *patch);
json_t *kf_strategic_patch(const struct kf_kind *k, json_t *target,
			   json_t *patch);
/* JSON patch (RFC 6902); NULL with a message on error. */
json_t *kf_json_patch(json_t *target, json_t *ops, rc_buf *err);

/* ---- server state (main.c, http.c) ---- */

struct kf_token {
	char *user;
	char *token;
	char **deny; /* "verb/resource" pairs, "*" matches any */
	size_t ndeny;
};

struct kf_fault {
	char *method; /* "*" for any */
	char *prefix;
	int status;
	int retry_after;
	long count; /* -1: forever */
	bool reset;
	long slow_body_ms;
	long hang_ms;
	char *message;
	/* a mix: with probability rate, one of the kinds (bits of
	 * enum kf_fault_kind) drawn from rng, seeded by the rule's seed */
	double rate;
	unsigned kinds;
	uint64_t seed, rng;
};

/* The kinds of random faults (README, "Random faults"). */
enum kf_fault_kind {
	KF_F_429,
	KF_F_500,
	KF_F_503,
	KF_F_RESET,
	KF_F_TIMEOUT,
	KF_F_TRUNCATED,
	KF_F_MALFORMED,
	KF_F_SHAPE,
	KF_F_GONE,
	KF_F_NKINDS
};

struct kf_work {
	const struct kf_kind *kind;
	char *ns, *name;
	struct timespec due;
};

struct kf_rollout {
	char *key; /* ns/name */
	bool fail, stall;
};

struct kf_server {
	pthread_mutex_t lock;
	pthread_cond_t changed; /* every event, every stop */
	bool stopping;
	struct kf_store store;
	uint64_t rng;
	uint32_t next_ip;
	uint32_t next_node_port;

	/* configuration */
	int port;
	bool tls;
	long controller_delay_ms;
	struct kf_token *tokens;
	size_t ntokens;
	char *api_doc_port; /* "127.0.0.1:PORT" for /api */

	/* controllers (controller.c) */
	pthread_t ctl_thread;
	pthread_cond_t ctl_wake;
	struct kf_work *work; /* a queue, in due order */
	size_t headwork, nwork, capwork;
	struct kf_rollout *rollouts;
	size_t nrollouts, caprollouts;
	/* the garbage collector and the namespace controller remove an
	 * object this long after what held it is gone (/fake/gc) */
	long gc_delay_ms;

	/* faults and stats (own mutex) */
	pthread_mutex_t flock;
	struct kf_fault *faults;
	size_t nfaults, capfaults;
	long latency_ms;
	unsigned long requests;
	json_t *by_verb;     /* {"GET": n, ...} */
	json_t *by_resource; /* {"deployments": n, ...} */
	unsigned long injected[KF_F_NKINDS];
	FILE *log; /* --log: one line per API request (under flock) */
};

/* Waits until the deadline or stop; true when stopping. Lock held. */
bool kf_wait_until(struct kf_server *srv, pthread_cond_t *cond,
		   const struct timespec *deadline);
void kf_deadline(struct timespec *ts, long ms);
/* Sleeps ms unless the server stops first (lock not held). */
void kf_sleep_ms(struct kf_server *srv, long ms);

/* ---- ops.c: the API verbs ---- */

struct kf_watch;

struct kf_reply {
	int code;
	json_t *json; /* the body, or */
	char *text;   /* a text body (malloc'd) */
	const char *ctype;
	struct kf_watch *watch; /* a stream to serve instead */
};

struct kf_req {
	const char *method;
	const struct kf_kind *kind;
	const char *ns;   /* NULL: cluster object, or every namespace */
	const char *name; /* NULL: the collection */
	const char *sub;  /* subresource or NULL */
	const char *user;
	const char *user_agent;
	const char *content_type;
	const char *body;
	size_t body_len;
	const char *(*arg)(void *cls, const char *key);
	void *arg_cls;
};

/* read.c: the reading verbs and the helpers ops.c shares (lock held). */
const char *kf_arg(struct kf_req *r, const char *key);
void kf_reply_json(struct kf_reply *out, int code, json_t *body);
void kf_reply_error(struct kf_reply *out, json_t *status);
/* A list item: obj without kind and apiVersion (new). */
json_t *kf_list_item(json_t *obj);
/* A KindList document holding items (stolen). */
json_t *kf_list_doc(const struct kf_kind *k, const char *ns, uint64_t rv,
		    json_t *items);
/* The index range [lo, hi) of a namespace, or of every object (ns NULL). */
void kf_ns_range(const struct kf_index *ix, const char *ns, size_t *lo,
		 size_t *hi);
/* labelSelector and fieldSelector; -1 with *err (400). */
int kf_parse_selectors(struct kf_req *r, struct kf_selector **labels,
		       struct kf_selector **fields, json_t **err);
void kf_do_get(struct kf_server *srv, struct kf_req *r, struct kf_reply *out);
void kf_do_list(struct kf_server *srv, struct kf_req *r, struct kf_reply *out);
void kf_do_watch(struct kf_server *srv, struct kf_req *r,
		 struct kf_reply *out);
void kf_do_log(struct kf_server *srv, struct kf_req *r, struct kf_reply *out);

/* Serves one API request (takes the lock itself). */
void kf_serve(struct kf_server *srv, struct kf_req *r, struct kf_reply *out);
/* Blocking read of a watch stream for the HTTP layer (no lock held):
 * bytes, 0 at the end of the stream. */
size_t kf_watch_read(struct kf_watch *w, char *buf, size_t max);
void kf_watch_free(struct kf_watch *w);
/* Starts a deletion that waits: deletionTimestamp (kept when set), the
 * finalizer when given, phase Terminating when terminating. Returns the
 * stored object (borrowed). */
json_t *kf_mark_deleting(struct kf_server *srv, struct kf_obj *o,
			 const char *finalizer, bool terminating);
/* Removes an object as a delete with propagation does (lock held). */
void kf_delete_now(struct kf_server *srv, struct kf_obj *o,
		   const char *propagation);
/* The shared write paths, for boot objects and controllers: an Update by
 * manager of old to obj (stolen, the whole new object), or a create of
 * obj (stolen, with name and namespace). 0, or -1 with *err (new). */
int kf_write_update(struct kf_server *srv, const struct kf_kind *k,
		    struct kf_obj *old, json_t *obj, const char *manager,
		    json_t **err);
int kf_write_create(struct kf_server *srv, const struct kf_kind *k, json_t *obj,
		    const char *manager, json_t **err);

/* ---- controller.c ---- */

void kf_ctl_start(struct kf_server *srv);
void kf_ctl_stop(struct kf_server *srv);
/* Something changed about kind/ns/name: look again after the delay. */
void kf_ctl_notify(struct kf_server *srv, const struct kf_kind *k,
		   const char *ns, const char *name);
/* Sets a rollout's fate (POST /fake/rollout). */
void kf_ctl_rollout(struct kf_server *srv, const char *ns, const char *name,
		    bool fail, bool stall);
void kf_ctl_release(struct kf_server *srv);
/* The text log of a Job's pod, or NULL. New. */
char *kf_pod_log(json_t *pod, long tail_lines);

/* ---- http.c ---- */

int kf_http_start(struct kf_server *srv, const char *cert, const char *key,
		  const char *trust);
void kf_http_stop(void);
/* Frees the fault rules (after stop). */
void kf_http_release(void);

/* ---- data.c (generated): the discovery documents ---- */

struct kf_datafile {
	const char *name;
	const unsigned char *data;
	size_t len;
};
extern const struct kf_datafile kf_datafiles[];
extern const size_t kf_ndatafiles;

#endif
