/*
 * The typed configuration model: what `reconcile.yaml` and the environment
 * files mean once overlays are merged and generators expanded.
 *
 * Every struct keeps the location of the YAML node it came from, so that
 * the engine and the drivers can point errors back at the user's text.
 * Strings are owned by the struct that holds them; rc_config_free() frees
 * everything a load returned.
 */
#ifndef RC_MODEL_H
#define RC_MODEL_H

#include "reconciler/base/common.h"
#include "reconciler/base/error.h"
#include "schema/node.h"

typedef enum {
	RC_DRIVER_LOCAL,
	RC_DRIVER_KUBERNETES,
	RC_DRIVER_HEROKU,
	RC_DRIVER_ECS
} rc_driver_kind;

const char *rc_driver_name(rc_driver_kind d);

/* A name -> string pair (config, env, addon config, generator items). */
typedef struct {
	char *key;
	char *value;
	rc_loc loc;
} rc_kv;

typedef struct {
	rc_kv *items;
	size_t n, cap;
} rc_kvlist;

const char *rc_kvlist_get(const rc_kvlist *l, const char *key);

typedef struct {
	char **v;
	size_t n;
} rc_argv;

/* A Heroku account's API tokens (refilled at about 75 a minute), and the
 * share reconcile leaves to others unless target.rate_reserve says. */
#define RC_HEROKU_TOKENS 4500
#define RC_HEROKU_RESERVE (RC_HEROKU_TOKENS / 5)

typedef struct {
	rc_driver_kind driver;
	rc_loc loc;
	/* every driver: seconds between the controller's re-plans that look
	 * for drift when the driver cannot watch; 0 = the controller's
	 * default */
	long drift_interval;
	/* kubernetes */
	char *context, *namespace;
	char *kubeconfig;   /* a kubeconfig file (relative to the repository) */
	long wait_timeout;  /* seconds; 0 = the driver's default */
	int qps, burst;     /* 0 = the driver's default */
	/* heroku */
	char *app, *region, *stack, *team, *pipeline, *stage;
	rc_loc app_loc, region_loc, stack_loc, team_loc; /* their values';
							   else loc */
	int maintenance;  /* -1 unset, 0, 1 */
	int rate_reserve; /* API tokens left to others; -1: the driver's
			     default (RC_HEROKU_RESERVE) */
	/* ecs (region shared with heroku) */
	char *cluster, *launch_type;
	rc_argv subnets, security_groups;
	int assign_public_ip; /* -1 unset, 0, 1 */
	char *execution_role_arn;
} rc_target;

typedef enum {
	RC_HEALTH_NONE,
	RC_HEALTH_HTTP,
	RC_HEALTH_TCP,
	RC_HEALTH_COMMAND
} rc_health_kind;

typedef struct {
	rc_health_kind kind;
	char *http_path;
	rc_argv command;
	long interval, timeout, grace; /* seconds */
	int retries;
	rc_loc loc;
} rc_health;

typedef struct {
	char *name;
	rc_loc loc;
	char *image;
	rc_argv command, args;
	int replicas;
	char *size;
	rc_loc size_loc;  /* of the size's value; else loc */
	long cpu_millis;  /* 0 = unset */
	long long memory; /* bytes, 0 = unset */
	int port;         /* 0 = none */
	rc_kvlist env;
	rc_health health;
	rc_node *native;   /* the driver's block (copy), or NULL */
	char *workdir;     /* local.workdir */
	char *process_type; /* heroku.process_type */
} rc_service;

/* RC_SECRET_AWS: a secret already in AWS Secrets Manager, ref its ARN;
 * reconcile passes it on as a reference and never reads it (ecs only).
 * RC_SECRET_AGE: an age file written in the configuration
 * ({encrypted: <armored text>}), ref the secret's name ("url" for a
 * notify URL); decrypted only where the value is needed. */
typedef enum {
	RC_SECRET_ENV,
	RC_SECRET_FILE,
	RC_SECRET_AWS,
	RC_SECRET_AGE
} rc_secret_kind;

typedef struct {
	char *name;
	rc_secret_kind kind;
	char *ref; /* the variable name, the file path or the ARN; never a value */
	rc_loc loc;
	char *ciphertext; /* RC_SECRET_AGE: the armored age file */
	bool encrypted;   /* RC_SECRET_FILE: an age file when it was loaded */
} rc_secret;

typedef struct {
	char *name;
	char *kind;
	char *plan;
	char *as;
	rc_kvlist config;
	rc_loc loc;
	rc_loc plan_loc;  /* of the plan's value; else loc */
} rc_addon;

typedef struct {
	char *name;
	rc_argv run;
	bool local; /* where: local */
	char *service;
	long timeout;
	bool irreversible;
	rc_kvlist env;
	rc_loc loc;
} rc_hook;

typedef struct {
	char *source; /* the file it came from, or NULL when inline */
	rc_node *manifest; /* owned */
	char *api_version, *kind, *name;
	rc_loc loc;
} rc_manifest;

/* Fields of a resource reconcile neither compares nor changes. */
typedef struct {
	char *resource; /* "kind/name", or "*" for every resource */
	rc_argv paths;  /* JSON pointers into the resource's body */
	rc_loc loc;
} rc_ignore_rule;

typedef enum { RC_APPLY_AUTO, RC_APPLY_MANUAL } rc_apply_mode;
typedef enum { RC_DRIFT_REPORT, RC_DRIFT_HEAL } rc_drift_mode;

/* policy.verify: which commits may be planned (docs/trust.md). */
typedef enum {
	RC_VERIFY_NONE,   /* no policy.verify */
	RC_VERIFY_SIGNED, /* a valid signature by a trusted key */
	RC_VERIFY_ANY     /* unsigned accepted; a bad signature is not */
} rc_verify_require;

typedef struct {
	rc_verify_require require;
	char *allowed_signers; /* ssh.allowed_signers, repository-relative */
	char *keyring;         /* openpgp.keyring, repository-relative */
	rc_loc loc;            /* of the verify key */
} rc_verify;

typedef struct {
	char *branch;
	rc_apply_mode apply;
	bool prune;
	rc_drift_mode drift;
	bool force_conflicts; /* take over fields another manager owns */
	bool allow_replace;   /* apply a planned replace */
	bool adopt;           /* take over objects made outside reconcile
				 that the configuration names */
	rc_verify verify;     /* its own, else the top-level policy's */
} rc_policy;

typedef struct {
	char *name;
	rc_loc loc;
	char *generator; /* the entry key that generated it, or NULL */
	rc_kvlist item;  /* the generator item's fields */
	long ttl;        /* seconds, 0 = none */
	char *file;      /* the environment file, or NULL when inline */
	rc_target target;
	rc_service *services;
	size_t nservices;
	rc_kvlist config;
	rc_secret *secrets;
	size_t nsecrets;
	rc_addon *addons;
	size_t naddons;
	rc_hook *pre_apply, *post_apply;
	size_t npre_apply, npost_apply;
	rc_hook *on_rollback; /* run by rollback --force going back past an
				 irreversible step, before the rest */
	size_t non_rollback;
	rc_manifest *resources;
	size_t nresources;
	rc_policy policy;
	char **depends_on;
	rc_loc *depends_on_loc;
	size_t ndepends_on;
	rc_ignore_rule *ignore;
	size_t nignore;
	/* who can decrypt its encrypted secrets: its own `recipients:`, else
	   the top level's (copied); each an age1..., ssh-ed25519 or ssh-rsa
	   public key, checked when loaded */
	rc_argv recipients;
	rc_loc *recipients_loc; /* of each, where it is written */
	bool recipients_own;    /* written in the environment */
} rc_env;

typedef struct {
	char *name;
	char *url;
	rc_loc loc;
} rc_repository;

/* What a notification tells: an apply that succeeded or failed, drift
 * seen, a plan waiting for approval, a rollback run. */
typedef enum {
	RC_NOTIFY_APPLIED,
	RC_NOTIFY_FAILED,
	RC_NOTIFY_DRIFT,
	RC_NOTIFY_WAITING,
	RC_NOTIFY_ROLLED_BACK,
	RC_NOTIFY_NEVENTS
} rc_notify_event_kind;

#define RC_NOTIFY_ALL_EVENTS ((1u << RC_NOTIFY_NEVENTS) - 1)

/* "applied", "failed", "drift", "waiting", "rolled_back". */
const char *rc_notify_event_name(rc_notify_event_kind k);

typedef enum { RC_NOTIFY_SLACK, RC_NOTIFY_WEBHOOK } rc_notify_kind;

/* One entry of the top-level `notify:` list. */
typedef struct {
	char *name;
	rc_loc loc;
	rc_notify_kind kind;
	rc_secret url;       /* a reference (name "url"), never a value */
	unsigned events;     /* bit (1 << rc_notify_event_kind) per event */
	char **environments; /* names, generator entry keys or fnmatch
				patterns; none: every environment */
	size_t nenvironments;
} rc_notify_target;

/* Whether target t wants events of environment env (made by generator
 * entry `entry`, or NULL). */
bool rc_notify_target_wants(const rc_notify_target *t, const char *env,
			    const char *entry);
/* Frees n targets and the array. */
void rc_notify_targets_free(rc_notify_target *t, size_t n);

typedef struct {
	char *dir; /* the configuration repository, as given */
	int version;
	char *project;
	rc_repository *repositories;
	size_t nrepositories;
	char **allow_env;
	size_t nallow_env;
	rc_notify_target *notify; /* the top-level notify: list */
	rc_verify verify;         /* the top-level policy.verify */
	size_t nnotify;
	rc_env *envs;
	size_t nenvs, capenvs;
	/* the generator entries expanded by this load (their items listed,
	   whether or not they made any environment) */
	char **generators;
	size_t ngenerators;
	/* environments those generators made that this load did not build:
	   the caller named others (rc_load_opts.only); they exist */
	char **unbuilt;
	size_t nunbuilt;
	/* the top-level `recipients:` (see rc_env.recipients) */
	rc_argv recipients;
	rc_loc *recipients_loc;
} rc_config;

void rc_config_free(rc_config *cfg);
/* Frees what one environment holds (not env itself). */
void rc_env_release(rc_env *env);
const rc_env *rc_config_env(const rc_config *cfg, const char *name);

/* Copies src into dst (new strings); frees what v holds. */
void rc_verify_copy(rc_verify *dst, const rc_verify *src);
void rc_verify_release(rc_verify *v);

/* Parses "90s", "5m", "72h", "7d" into seconds; -1 if malformed. */
long rc_duration_parse(const char *s);
/* Formats seconds back into the largest exact unit ("72h"). */
void rc_duration_format(long secs, char *out, size_t n);
/* "500m", "0.5", "2" -> millicores; -1 if malformed, -2 if over 1000 cores. */
long rc_cpu_parse(const char *s);
/* "512Mi", "1G" -> bytes; -1 if malformed, -2 if it has no unit. */
long long rc_memory_parse(const char *s);
void rc_memory_format(long long bytes, char *out, size_t n);
bool rc_is_dns_label(const char *s);
bool rc_is_var_name(const char *s);

#endif
