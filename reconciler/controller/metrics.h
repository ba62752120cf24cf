/*
 * The controller's metrics, rendered in the Prometheus text format 0.0.4
 * (what /metrics serves). Every call takes the metrics' lock, so the
 * loop's workers and the HTTP threads share one rc_metrics.
 *
 *   reconcile_runs_total{environment,result}         counter
 *   reconcile_drift{environment}                     gauge
 *   reconcile_last_success_timestamp_seconds{environment}  gauge
 *   reconcile_apply_duration_seconds                 histogram
 *   reconcile_plans_pending                          gauge
 *   reconcile_api_requests_total{driver,status}      counter (drivers/http.c)
 *   process_resident_memory_bytes, process_cpu_seconds_total
 */
#ifndef RC_CTL_METRICS_H
#define RC_CTL_METRICS_H

#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"

typedef struct rc_metrics rc_metrics;

rc_metrics *rc_metrics_new(void);
void rc_metrics_free(rc_metrics *m);

/* One cycle of env ended with result ("succeeded", "failed",
 * "unchanged", "pending", "drift"). */
void rc_metrics_run(rc_metrics *m, const char *env, const char *result);
/* An apply took seconds (the histogram). */
void rc_metrics_apply_duration(rc_metrics *m, double seconds);
/* How many resources differed in env's last plan. */
void rc_metrics_drift(rc_metrics *m, const char *env, long n);
/* env's last successful apply ended at unix time t. */
void rc_metrics_success(rc_metrics *m, const char *env, double t);
/* env's backoff after failures, in seconds (0: none). */
void rc_metrics_backoff(rc_metrics *m, const char *env, double seconds);
/* How many plans wait for approval. */
void rc_metrics_pending(rc_metrics *m, long n);
/* Forgets an environment gone from the configuration. */
void rc_metrics_forget(rc_metrics *m, const char *env);

/* Appends every metric (and the process's) to out. */
void rc_metrics_render(rc_metrics *m, rc_buf *out);

#endif
