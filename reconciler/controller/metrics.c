#include "reconciler/base/common.h"
#include "reconciler/controller/metrics.h"
#include "drivers/http.h"
#include "reconciler/notify.h"

#include <pthread.h>
#include <sys/resource.h>

static const double buckets[] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
				 300};

typedef struct {
	char *result;
	unsigned long long n;
} run_count;

typedef struct {
	char *name;
	run_count *runs;
	size_t nruns, capruns;
	long drift;
	bool has_drift;
	double last_success; /* 0: never */
	double backoff;      /* seconds; 0: none */
} env_metrics;

struct rc_metrics {
	pthread_mutex_t lock;
	env_metrics *envs;
	size_t nenvs, capenvs;
	unsigned long long hist[RC_ARRAY_SIZE(buckets) + 1]; /* last: +Inf */
	unsigned long long hist_count;
	double hist_sum;
	long pending;
};

rc_metrics *rc_metrics_new(void)
{
	rc_metrics *m = rc_calloc(1, sizeof(*m));

	pthread_mutex_init(&m->lock, NULL);
	return m;
}

static void env_release(env_metrics *e)
{
	for (size_t i = 0; i < e->nruns; i++)
		free(e->runs[i].result);
	free(e->runs);
	free(e->name);
}

void rc_metrics_free(rc_metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nenvs; i++)
		env_release(&m->envs[i]);
	free(m->envs);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

/* env's entry, made when missing; under the lock. */
static env_metrics *env_of(rc_metrics *m, const char *env)
{
	env_metrics *e;

	for (size_t i = 0; i < m->nenvs; i++)
		if (!strcmp(m->envs[i].name, env))
			return &m->envs[i];
	RC_GROW(m->envs, m->capenvs, m->nenvs + 1);
	e = &m->envs[m->nenvs++];
	memset(e, 0, sizeof(*e));
	e->name = rc_strdup(env);
	return e;
}

void rc_metrics_run(rc_metrics *m, const char *env, const char *result)
{
	env_metrics *e;
	size_t i;

	pthread_mutex_lock(&m->lock);
	e = env_of(m, env);
	for (i = 0; i < e->nruns; i++)
		if (!strcmp(e->runs[i].result, result))
			break;
	if (i == e->nruns) {
		RC_GROW(e->runs, e->capruns, e->nruns + 1);
		e->runs[e->nruns].result = rc_strdup(result);
		e->runs[e->nruns++].n = 0;
	}
	e->runs[i].n++;
	pthread_mutex_unlock(&m->lock);
}

void rc_metrics_apply_duration(rc_metrics *m, double seconds)
{
	size_t i;

	pthread_mutex_lock(&m->lock);
	for (i = 0; i < RC_ARRAY_SIZE(buckets) && seconds > buckets[i]; i++)
		;
	m->hist[i]++;
	m->hist_count++;
	m->hist_sum += seconds;
	pthread_mutex_unlock(&m->lock);
}

void rc_metrics_drift(rc_metrics *m, const char *env, long n)
{
	env_metrics *e;

	pthread_mutex_lock(&m->lock);
	e = env_of(m, env);
	e->drift = n;
	e->has_drift = true;
	pthread_mutex_unlock(&m->lock);
}

void rc_metrics_success(rc_metrics *m, const char *env, double t)
{
	pthread_mutex_lock(&m->lock);
	env_of(m, env)->last_success = t;
	pthread_mutex_unlock(&m->lock);
}

void rc_metrics_backoff(rc_metrics *m, const char *env, double seconds)
{
	pthread_mutex_lock(&m->lock);
	env_of(m, env)->backoff = seconds;
	pthread_mutex_unlock(&m->lock);
}

void rc_metrics_pending(rc_metrics *m, long n)
{
	pthread_mutex_lock(&m->lock);
	m->pending = n;
	pthread_mutex_unlock(&m->lock);
}

void rc_metrics_forget(rc_metrics *m, const char *env)
{
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->nenvs; i++)
		if (!strcmp(m->envs[i].name, env)) {
			env_release(&m->envs[i]);
			m->envs[i] = m->envs[--m->nenvs];
			break;
		}
	pthread_mutex_unlock(&m->lock);
}

/* A label value escaped as the text format wants: \\, \" and \n. */
static void put_label(rc_buf *out, const char *v)
{
	for (; *v; v++)
		if (*v == '\\' || *v == '"')
			rc_buf_printf(out, "\\%c", *v);
		else if (*v == '\n')
			rc_buf_puts(out, "\\n");
		else
			rc_buf_putc(out, *v);
}

static void header(rc_buf *out, const char *name, const char *type,
		   const char *help)
{
	rc_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
		      type);
}

static void env_sample(rc_buf *out, const char *name, const char *env)
{
	rc_buf_printf(out, "%s{environment=\"", name);
	put_label(out, env);
	rc_buf_puts(out, "\"}");
}

static void api_sample(void *arg, const char *driver, long status,
		       uint64_t n)
{
	rc_buf *out = arg;

	rc_buf_puts(out, "reconcile_api_requests_total{driver=\"");
	put_label(out, driver);
	rc_buf_printf(out, "\",status=\"%ld\"} %llu\n", status,
		      (unsigned long long)n);
}

static void endpoint_sample(void *arg, const char *origin,
			    const rc_http_endpoint *ep)
{
	rc_buf *out = arg;

	rc_buf_puts(out, "reconcile_endpoint_unreachable{endpoint=\"");
	put_label(out, origin);
	rc_buf_printf(out, "\"} %d\n", ep->unreachable ? 1 : 0);
}

static void budget_sample(void *arg, const char *driver, const char *origin,
			  const char *source, double remaining)
{
	rc_buf *out = arg;

	rc_buf_puts(out, "reconcile_api_rate_budget_remaining{driver=\"");
	put_label(out, driver);
	rc_buf_puts(out, "\",endpoint=\"");
	put_label(out, origin);
	rc_buf_printf(out, "\",source=\"%s\"} %.3f\n", source, remaining);
}

/* The process's resident set (bytes) and CPU time (seconds). */
static void process_metrics(rc_buf *out)
{
	struct rusage ru;
	unsigned long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%lu %lu", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	header(out, "process_resident_memory_bytes", "gauge",
	       "Resident memory size in bytes.");
	rc_buf_printf(out, "process_resident_memory_bytes %lu\n",
		      rss * (unsigned long)sysconf(_SC_PAGESIZE));
	getrusage(RUSAGE_SELF, &ru);
	header(out, "process_cpu_seconds_total", "counter",
	       "Total user and system CPU time spent in seconds.");
	rc_buf_printf(out, "process_cpu_seconds_total %.6f\n",
		      (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
			      (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
}

void rc_metrics_render(rc_metrics *m, rc_buf *out)
{
	unsigned long long cum = 0;
	size_t i, k;

	pthread_mutex_lock(&m->lock);
	header(out, "reconcile_runs_total", "counter",
	       "Cycles of an environment by result (succeeded, failed, "
	       "unchanged, pending).");
	for (i = 0; i < m->nenvs; i++)
		for (k = 0; k < m->envs[i].nruns; k++) {
			rc_buf_puts(out, "reconcile_runs_total{environment=\"");
			put_label(out, m->envs[i].name);
			rc_buf_puts(out, "\",result=\"");
			put_label(out, m->envs[i].runs[k].result);
			rc_buf_printf(out, "\"} %llu\n", m->envs[i].runs[k].n);
		}
	header(out, "reconcile_drift", "gauge",
	       "Resources that differed in the environment's last plan.");
	for (i = 0; i < m->nenvs; i++)
		if (m->envs[i].has_drift) {
			env_sample(out, "reconcile_drift", m->envs[i].name);
			rc_buf_printf(out, " %ld\n", m->envs[i].drift);
		}
	header(out, "reconcile_last_success_timestamp_seconds", "gauge",
	       "When the environment's last successful apply ended.");
	for (i = 0; i < m->nenvs; i++)
		if (m->envs[i].last_success > 0) {
			env_sample(out,
				   "reconcile_last_success_timestamp_seconds",
				   m->envs[i].name);
			rc_buf_printf(out, " %.3f\n", m->envs[i].last_success);
		}
	header(out, "reconcile_apply_duration_seconds", "histogram",
	       "How long applies took.");
	for (i = 0; i < RC_ARRAY_SIZE(buckets); i++) {
		cum += m->hist[i];
		rc_buf_printf(out,
			      "reconcile_apply_duration_seconds_bucket{le=\"%g\"} "
			      "%llu\n",
			      buckets[i], cum);
	}
	rc_buf_printf(out,
		      "reconcile_apply_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
		      "reconcile_apply_duration_seconds_sum %.6f\n"
		      "reconcile_apply_duration_seconds_count %llu\n",
		      m->hist_count, m->hist_sum, m->hist_count);
	header(out, "reconcile_backoff_seconds", "gauge",
	       "How long the environment waits before its next cycle after "
	       "failures (0: none); doubling, capped.");
	for (i = 0; i < m->nenvs; i++) {
		env_sample(out, "reconcile_backoff_seconds", m->envs[i].name);
		rc_buf_printf(out, " %g\n", m->envs[i].backoff);
	}
	header(out, "reconcile_plans_pending", "gauge",
	       "Plans waiting for approval.");
	rc_buf_printf(out, "reconcile_plans_pending %ld\n", m->pending);
	pthread_mutex_unlock(&m->lock);
	header(out, "reconcile_api_requests_total", "counter",
	       "Platform API attempts by driver and HTTP status (0: no reply).");
	rc_http_requests_each(api_sample, out);
	header(out, "reconcile_api_rate_budget_remaining", "gauge",
	       "Requests a platform's rate budget had left at the last "
	       "attempt: source client is reconcile's own limit (target.qps), "
	       "server the platform's count (Heroku's RateLimit-Remaining).");
	rc_http_budgets_each(budget_sample, out);
	header(out, "reconcile_endpoint_unreachable", "gauge",
	       "1 while a platform endpoint is unreachable (connection "
	       "failures in a row), else 0.");
	rc_http_endpoints_each(endpoint_sample, out);
	{
		rc_notify_stats ns;

		rc_notify_totals(&ns);
		header(out, "reconcile_notifications_total", "counter",
		       "Notifications by result: sent (a 2xx reply), failed "
		       "(given up after retries), dropped (the queue was "
		       "full).");
		rc_buf_printf(out,
			      "reconcile_notifications_total{result=\"sent\"} %llu\n"
			      "reconcile_notifications_total{result=\"failed\"} %llu\n"
			      "reconcile_notifications_total{result=\"dropped\"} %llu\n",
			      (unsigned long long)ns.sent,
			      (unsigned long long)ns.failed,
			      (unsigned long long)ns.dropped);
		header(out, "reconcile_notification_retries_total", "counter",
		       "Notification attempts after a first one.");
		rc_buf_printf(out, "reconcile_notification_retries_total %llu\n",
			      (unsigned long long)ns.retries);
	}
	process_metrics(out);
}
