/*
 * Where a Kubernetes connection comes from, resolved as kubectl resolves
 * it (docs/drivers/kubernetes-auth.md):
 *
 *   1. $KUBECONFIG, a colon-separated list of files merged as kubectl
 *      merges them: for clusters, users and contexts the first file that
 *      defines a name wins; current-context comes from the first file that
 *      sets it; missing files and empty entries are skipped;
 *   2. else ~/.kube/config;
 *   3. else in-cluster: KUBERNETES_SERVICE_HOST and _PORT and the pod's
 *      service account (RC_KUBE_SERVICEACCOUNT_DIR, or the directory in
 *      $RECONCILE_SERVICEACCOUNT_DIR, which exists for tests).
 *
 * Relative paths inside a kubeconfig are relative to that file's
 * directory. Errors name the file, and the line and column when a value of
 * the file is at fault: `kubeconfig ~/.kube/config:7:18: context "prod"
 * not found (contexts: dev, staging)`.
 *
 * Credentials: client certificates, a bearer token (fixed, or a file that
 * is read again when it is older than token_reread_ms or after a 401: a
 * rotated service-account token is picked up), basic auth, and exec
 * credential plugins (client.authentication.k8s.io/v1 and v1beta1), run
 * with fork and exec (never a shell) and cached until the expiry they
 * report. Every token, password and key is registered with the redactor.
 *
 * Ownership: every string of rc_kube_conn is owned by it and freed by
 * rc_kube_conn_release(). An rc_kube_conn holds a mutex and is the
 * context of the HTTP client's callbacks: it stays where it was loaded,
 * and outlives the rc_http made from it.
 */
#ifndef RC_DRIVERS_KUBE_CONFIG_H
#define RC_DRIVERS_KUBE_CONFIG_H

#include <pthread.h>

#include "reconciler/base/common.h"
#include "drivers/http.h"

/* reconcile's rate budget for one API server. client-go's default, long
 * kubectl's, is 5 per second with bursts of 10; reconcile lists and
 * applies whole environments from several workers, so it allows ten times
 * that. A driver may change qps and burst after load (qps 0: none). */
#define RC_KUBE_DEFAULT_QPS 50.0
#define RC_KUBE_DEFAULT_BURST 100
/* A token file is read again when its copy is older than this. */
#define RC_KUBE_TOKEN_REREAD_MS 60000L
/* An exec plugin that has not answered by then is killed. */
#define RC_KUBE_EXEC_TIMEOUT_MS 60000L
#define RC_KUBE_SERVICEACCOUNT_DIR \
	"/var/run/secrets/kubernetes.io/serviceaccount"
/* Overrides RC_KUBE_SERVICEACCOUNT_DIR (tests). */
#define RC_KUBE_SERVICEACCOUNT_ENV "RECONCILE_SERVICEACCOUNT_DIR"

/* An exec credential plugin, as the kubeconfig user names it. */
typedef struct {
	char *api_version; /* client.authentication.k8s.io/v1 or v1beta1 */
	char **argv;       /* command (resolved) and args, NULL-terminated */
	char **env;        /* "NAME=value" added to ours, NULL-terminated */
	char *interactive_mode; /* Never, IfAvailable, Always, or NULL */
	bool provide_cluster_info;
	char *install_hint;
} rc_kube_exec;

typedef struct {
	/* Where it came from, for messages: "kubeconfig ~/.kube/config",
	 * "kubeconfig a.yaml:b.yaml", "in-cluster service account in DIR". */
	char *source;
	bool in_cluster;
	char *context, *cluster_name, *user_name; /* NULL in-cluster */
	char *namespace; /* the context's, or "default" */

	/* the cluster */
	char *server;
	char *ca_file, *ca_pem; /* absolute path, or decoded PEM */
	bool insecure;          /* insecure-skip-tls-verify of this cluster */
	char *tls_server_name;
	char *proxy_url;

	/* the user */
	char *cert_file, *cert_pem;
	char *key_file, *key_pem;
	char *token;      /* a fixed bearer token */
	char *token_file; /* read again as said above; wins over token */
	char *username, *password;
	rc_kube_exec *exec; /* NULL, or when no token, basic or certificate
			       is given (as client-go does) */

	double qps; /* RC_KUBE_DEFAULT_QPS */
	int burst;  /* RC_KUBE_DEFAULT_BURST */
	long token_reread_ms; /* RC_KUBE_TOKEN_REREAD_MS */
	long exec_timeout_ms; /* RC_KUBE_EXEC_TIMEOUT_MS */

	/* The credential in use, behind lock. */
	bool loaded; /* lock is initialised; cleared by release */
	pthread_mutex_t lock;
	char *cur_token;
	long long cur_read_ms; /* monotonic: when the token file was read */
	time_t cur_expiry;     /* from the plugin; 0: none */
	bool cur_valid;
	char *exec_cert_pem, *exec_key_pem; /* from the plugin */
	int exec_runs; /* how many times the plugin ran */
} rc_kube_conn;

/* Resolves the connection for context (NULL: the current context). On
 * error *out is left released (rc_kube_conn_release is harmless). */
int rc_kube_conn_load(rc_kube_conn *out, const char *context);
/* The same from one kubeconfig file (target.kubeconfig), whatever
 * $KUBECONFIG says; file NULL: as rc_kube_conn_load(). */
int rc_kube_conn_load_from(rc_kube_conn *out, const char *file,
			   const char *context);
void rc_kube_conn_release(rc_kube_conn *c);

/*
 * Fills o for an rc_http client of this connection: rc_http_opts_init(),
 * then the server, TLS material, proxy, rate budget and the callbacks
 * that put the credential on every request (c is their context). The
 * strings are c's, borrowed until rc_http_open() copies them. An exec
 * plugin runs here once, since it may answer with a client certificate
 * that the TLS setup needs. The caller may change o afterwards.
 */
int rc_kube_conn_http_opts(rc_kube_conn *c, rc_http_opts *o);

/*
 * The Authorization value to send now ("Bearer ...", "Basic ..."), new in
 * *out, or *out = NULL when the connection authenticates otherwise (a
 * client certificate). Reads the token file again or runs the plugin when
 * the copy is old, expired or invalidated. Thread-safe. The value is a
 * secret: wipe it (explicit_bzero) before free().
 */
int rc_kube_conn_auth_header(rc_kube_conn *c, char **out);

/* Forgets the credential in use (after a 401): the next
 * rc_kube_conn_auth_header() reads the file or runs the plugin again.
 * Returns true when there is such a source to ask again. */
bool rc_kube_conn_invalidate(rc_kube_conn *c);

#endif
