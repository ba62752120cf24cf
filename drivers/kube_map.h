/*
 * The Kubernetes driver's mapping: the pure half, with no network. The
 * driver (drivers/kubernetes.c) calls these to turn an environment into
 * API objects, API objects into bodies and bodies back into objects.
 * docs/drivers/kubernetes.md ("Mapping") describes the result for users.
 *
 * Resources. driver "kubernetes", kind = a kind key (rc_kube_kind_key()),
 * name = metadata.name; one namespace per environment.
 *
 * Normal form (the body of a resource). The API object restricted to what
 * reconcile manages: apiVersion, kind, metadata.{name, namespace, labels,
 * annotations} and every other top-level field but status. Keyed lists
 * become JSON objects keyed by their merge key, recursively, each element
 * keeping its key field(s):
 *
 *   pod spec    containers, initContainers, ephemeralContainers  by name
 *               volumes, imagePullSecrets                        by name
 *   container   env                                              by name
 *               ports                  by "<containerPort>/<protocol>"
 *               volumeMounts                                by mountPath
 *               volumeDevices                              by devicePath
 *   Service     spec.ports                      by "<port>/<protocol>"
 *
 * (protocol "TCP" when absent). Pod specs are found by kind: Pod /spec;
 * Deployment, ReplicaSet, StatefulSet, DaemonSet, Job,
 * ReplicationController /spec/template/spec; CronJob
 * /spec/jobTemplate/spec/template/spec; PodTemplate /template/spec. A list
 * with an element that has no key, or two elements with one key, stays a
 * list (atomic), and so do all other lists (envFrom, tolerations, ...).
 * A Secret's data holds secret objects ({"$secret": "hmac-sha256:<hex>",
 * "ref": ...}), never a value; stringData is folded into data.
 *
 * Ownership: functions returning char * or json_t * hand over a new
 * string or reference (NULL with rc_error_set() on failure where said);
 * their inputs are borrowed and not modified unless said.
 */
#ifndef RC_DRIVERS_KUBE_MAP_H
#define RC_DRIVERS_KUBE_MAP_H

#include <jansson.h>

#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/error.h"
#include "drivers/resource.h"
#include "schema/model.h"

#define RC_KUBE_DRIVER "kubernetes"

/* Ownership labels, on every object and every pod template. */
#define RC_KUBE_LABEL_MANAGED_BY "app.kubernetes.io/managed-by"
#define RC_KUBE_MANAGED_BY "reconcile"
#define RC_KUBE_LABEL_PROJECT "reconcile.dev/project"
#define RC_KUBE_LABEL_ENV "reconcile.dev/environment"
/* The service a Deployment, its pods and its Service belong to. */
#define RC_KUBE_LABEL_NAME "app.kubernetes.io/name"
/* The hook a Job runs. */
#define RC_KUBE_LABEL_HOOK "reconcile.dev/hook"
/* Annotations: the full project and environment names (only when their
 * label values had to be shortened), the pod template's config hash. */
#define RC_KUBE_ANN_PROJECT "reconcile.dev/project"
#define RC_KUBE_ANN_ENV "reconcile.dev/environment"
#define RC_KUBE_ANN_CONFIG_HASH "reconcile.dev/config-hash"

/* The objects holding an environment's config and secrets. */
#define RC_KUBE_CONFIGMAP "reconcile-config"
#define RC_KUBE_SECRET "reconcile-secrets"

/* Seconds a finished hook Job is kept. */
#define RC_KUBE_HOOK_TTL 3600

/*
 * The kind key of an apiVersion and kind: the kind alone for the core
 * group and for apps, batch, networking.k8s.io, policy,
 * rbac.authorization.k8s.io, autoscaling and coordination.k8s.io
 * ("Deployment", "Ingress"); "Kind.group" for any other group
 * ("Certificate.cert-manager.io"). New string.
 */
char *rc_kube_kind_key(const char *api_version, const char *kind);

/*
 * s as a label value (new string): s itself when valid (at most 63
 * characters of [A-Za-z0-9._-], alphanumeric at both ends, or empty);
 * otherwise, deterministically, s with every other character turned into
 * '-', cut to 54 characters, trimmed to alphanumerics at both ends, then
 * "-" and the first 8 hex digits of its SHA-256.
 */
char *rc_kube_label_value(const char *s);

/* The label selector listing an environment's objects (new string):
 * "app.kubernetes.io/managed-by=reconcile,reconcile.dev/project=<p>,
 * reconcile.dev/environment=<e>,!reconcile.dev/hook", values as
 * rc_kube_label_value(). A hook's Job is not one of them: it is found by
 * its name, and were it observed, prune would delete it and a rollback
 * would create it again, running the hook again. */
char *rc_kube_selector(const char *project, const char *env);

/*
 * Adds the ownership labels (and, when a label value was shortened, the
 * full names as annotations) to obj's metadata and to its pod template
 * when its kind has one. obj is an API object or a body; modified in
 * place.
 */
void rc_kube_set_ownership(json_t *obj, const char *project, const char *env);

/*
 * The normal form of an API object (new ref; NULL with an error when
 * api_obj is not an object with apiVersion, kind and metadata.name).
 * Strips status and every other field of metadata (uid, resourceVersion,
 * generation, creationTimestamp, selfLink, managedFields, ownerReferences,
 * ...). For a Secret, each data value is base64-decoded and stored as
 * rc_secret_json_observed(ref, value), ref being the "ref" of the secret
 * object at the same key of desired_body's data ("unknown" when there is
 * none); desired_body may be NULL.
 */
json_t *rc_kube_to_body(const json_t *api_obj, const json_t *desired_body);
/* The plan's health text of a workload from its status ("ready 2/3,
 * rolling out"; new string), or NULL for a kind without replicas.
 * *unhealthy: fewer ready than desired with no rollout under way. */
char *rc_kube_health(const json_t *api_obj, bool *unhealthy);

/* Gives the value behind a body's secret object (*value: a new string the
 * caller wipes and frees); 0 or a negative RC_E* code with the error set. */
typedef int (*rc_kube_secret_fn)(void *ctx, const json_t *secret_obj,
				 char **value);

/*
 * The object to send by server-side apply for a body (new ref; NULL with
 * the error set when a secret cannot be resolved). Keyed maps become lists
 * again in the key order of the body, each element given back its key
 * field(s) when it lacks them (a port's protocol too). Secret objects in a
 * Secret's data are resolved through resolve(ctx, ...) and base64-encoded;
 * resolve may be NULL when the body holds no secret. The result may hold
 * secret values: never log it.
 */
json_t *rc_kube_to_object(const json_t *body, rc_kube_secret_fn resolve,
			  void *ctx);

/*
 * Appends the desired resources of env (target.namespace N) to out:
 *
 *   Namespace N                  cluster-scoped
 *   ConfigMap reconcile-config   env->config, when there is any
 *   Secret reconcile-secrets     env->secrets (type Opaque), when any
 *   Deployment <service>         per service
 *   Service <service>            per service with a port
 *   <raw manifests>              env->resources, N as their namespace
 *                                when they have none
 *
 * each with the ownership labels, loc set to where it is declared, and
 * deps: every namespaced object on the Namespace, a Deployment on the
 * ConfigMap and the Secret; raw PersistentVolumeClaims and
 * PersistentVolumes are precious. Service native blocks (kubernetes:
 * {deployment, service}) are merged over the generated objects. Secret
 * values are read with rc_secret_value() (config_dir for file secrets)
 * and kept only as their hashes. Errors (out unchanged): an add-on (not
 * supported), a secret whose value is unavailable, a raw Secret carrying
 * values (use secrets:), two objects with one kind key and name.
 */
int rc_kube_expand(const rc_env *env, const char *project,
		   const char *config_dir, rc_resource_set *out);

/*
 * The batch/v1 Job (API form, ready to apply) running a hook whose spec
 * is {run: [argv], where: "target", service: NAME, env: {K: V}, timeout:
 * seconds[, name: HOOK]}: one container "hook" with the named service's
 * image, env, envFrom and resource requests, command = run, the hook's
 * env over the service's; restartPolicy Never, backoffLimit 0,
 * activeDeadlineSeconds = timeout (when > 0), ttlSecondsAfterFinished
 * RC_KUBE_HOOK_TTL; in env's namespace, with the
 * ownership labels and reconcile.dev/hook = the label value of spec.name
 * (of job_name when the spec has no name) on the Job and its pod (which
 * has no app.kubernetes.io/name, so no Service selects it). NULL with the
 * error set when where is not "target", the service is missing or not in
 * env, or run is empty.
 */
json_t *rc_kube_hook_job(const rc_env *env, const char *project,
			 const json_t *spec, const char *job_name);

/*
 * The name of the Job of one run of a hook (new string): a DNS-1123
 * label of at most 63 characters, "<hook name, lower-cased, other
 * characters as '-'>-<10 hex digits of SHA-256(hook \n run)>" ("hook-..."
 * when nothing of the name is left). The same for the same hook and run,
 * so that a retried hook finds its own Job.
 */
char *rc_kube_hook_job_name(const char *hook_name, const char *run_id);

/*
 * Folds equivalent spellings in place, idempotently, on desired and
 * observed bodies alike (kind is the kind key):
 *   - containers' resources.requests/limits: cpu as millicores "500m", or
 *     whole cores "1" (0.5, "0.5", "500m" -> "500m"; "1000m", 1 -> "1");
 *     other quantities (memory, ephemeral-storage, ...) as the largest
 *     exact binary unit Ki..Ei, else plain units ("1024Mi", "1073741824",
 *     "1Gi" -> "1Gi"; "1G" -> "1000000000"); empty maps dropped; the
 *     same for the storage of PersistentVolumeClaims and of StatefulSets'
 *     volumeClaimTemplates;
 *   - ports: containerPort, hostPort, Service port and nodePort as
 *     integers; targetPort and probe ports as integers when they are
 *     integer strings (names stay); protocol "TCP" when absent;
 *   - integers given as strings (replicas, minReadySeconds,
 *     revisionHistoryLimit, progressDeadlineSeconds, backoffLimit,
 *     completions, parallelism, activeDeadlineSeconds,
 *     ttlSecondsAfterFinished, terminationGracePeriodSeconds, probe
 *     timings, ...) and booleans given as "true"/"false" (paused, suspend,
 *     immutable, hostNetwork, automountServiceAccountToken, ...);
 *   - label, annotation, ConfigMap data and env values given as numbers or
 *     booleans as strings; empty labels, annotations and data dropped;
 *   - an element of a keyed map without its key field(s) gets them back
 *     from its key (a port's protocol too), as rc_kube_to_object() does.
 * Secret objects are never touched.
 */
void rc_kube_normalize(const char *kind, json_t *body);

/*
 * Whether a change at path (a JSON pointer into a body of kind) can only
 * be made by replacing the object. Every path below one of these:
 *   every kind       /apiVersion, /kind, /metadata/name,
 *                    /metadata/namespace
 *   Deployment, ReplicaSet, DaemonSet
 *                    /spec/selector
 *   StatefulSet      /spec/selector, /spec/volumeClaimTemplates,
 *                    /spec/serviceName, /spec/podManagementPolicy
 *   Job              /spec/selector, /spec/template, /spec/completions,
 *                    /spec/completionMode
 *   Service          /spec/clusterIP, /spec/clusterIPs, /spec/ipFamilies
 *   PersistentVolumeClaim
 *                    /spec/storageClassName, /spec/accessModes,
 *                    /spec/volumeName, /spec/selector
 *   ConfigMap        /immutable
 *   Secret           /immutable, /type
 *   Pod              /spec, but for containers' and initContainers'
 *                    image, activeDeadlineSeconds and tolerations
 */
bool rc_kube_immutable(const char *kind, const char *path);

/*
 * Deletion. A deleted object stays, terminating (metadata.deletionTimestamp
 * set), until its finalizers are done.
 *
 * rc_kube_dependent_kind: the apiVersion and kind of the objects kind owns
 * (its dependents, which a foreground deletion removes first): Deployment
 * -> apps/v1 ReplicaSet; ReplicaSet, StatefulSet, DaemonSet, Job -> v1
 * Pod; CronJob -> batch/v1 Job. False for other kinds.
 *
 * rc_kube_deletion_stuck: appends to out what holds obj (resource is its
 * qualified resource, "deployments.apps"), still there waited seconds
 * after its deletion:
 *   <resource> '<name>' [in namespace '<ns>'] is still terminating <waited>s
 *   after its deletion at <deletionTimestamp> (target.wait_timeout sets how
 *   long reconcile waits); it waits for:
 * then a line ("\n    ...") per reason: each of metadata.finalizers and (a
 * namespace's) spec.finalizers with what must happen for it to go (another
 * controller's finalizer must be removed by that controller), for
 * foregroundDeletion the dependents still there when deps is given
 * ([[resource, object], ...], the first five named), and for a Namespace
 * its status conditions that are True (NamespaceContentRemaining,
 * NamespaceFinalizersRemaining, NamespaceDeletionContentFailure, ...) with
 * their messages.
 */
bool rc_kube_dependent_kind(const char *kind, const char **api_version,
			    const char **dep_kind);
void rc_kube_deletion_stuck(rc_buf *out, const char *resource,
			    const json_t *obj, long waited, const json_t *deps);

/*
 * The error of a Kubernetes API reply that is not a success (a Status, or
 * any body): the message the driver's requests give, set as the current
 * error, for a patch of deployments.apps 'web' (the kind left out when
 * status is even) in namespace "fuzz", without a location. Returns the
 * code. Defined in drivers/kubernetes.c, where the requests' Status
 * replies are read; exported only for the fuzz target of Status replies
 * (tests/fuzz/fuzz_kube_map.c).
 */
int rc_kube_status_error(long status, const char *body, size_t len);

#endif
