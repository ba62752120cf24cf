/*
 * Files, processes, /proc and health checks of the local machine
 * (drivers/local_proc.c): the local driver's tools, which other drivers
 * use too (a hook with `where: local` runs on this machine whatever the
 * environment's driver). Nothing here knows a driver's state.
 *
 * Ownership: functions returning char * or json_t * hand over a new
 * string or reference unless "borrowed" is said.
 */
#ifndef RC_DRIVERS_PROC_H
#define RC_DRIVERS_PROC_H

#include <jansson.h>
#include <sys/types.h>

#include "drivers/driver.h"
#include "reconciler/base/buf.h"

/* --- files (local_proc.c) --------------------------------------------- */

/* mkdir -p with mode for the directories it creates. */
int rc_local_mkdirs(const char *path, mode_t mode);
/* Writes data to path atomically: a temporary file beside it, fsync,
 * rename, fsync of the directory. */
int rc_local_write_atomic(const char *path, const char *data, size_t len);
/* The JSON document in path (new ref); RC_ENOTFOUND when it is missing. */
int rc_local_read_json(json_t **out, const char *path);
/* The whole file at path into out (at most max bytes: RC_ETOOBIG past
 * them; RC_ENOTFOUND when it does not exist), with the error set. */
int rc_local_read_file(const char *path, size_t max, rc_buf *out);
/* path with a leading $HOME shown as "~", for messages (new string). */
char *rc_local_display_path(const char *path);
/* Strips leading and trailing white space from b in place. */
void rc_local_trim(rc_buf *b);
/* Writes a JSON document atomically (pretty, sorted keys). */
int rc_local_write_json(const char *path, const json_t *doc);
/* path as an absolute path (new string): relative to the working
 * directory, the links of the part that exists resolved, "." and ".."
 * taken away; the same string before and after the missing part is
 * created. NULL with an error when the working directory is gone. */
char *rc_local_abspath(const char *path);
/* rm -rf; 0 when path is gone afterwards (or was never there). */
int rc_local_rmtree(const char *path);
/* The last lines of a file, redacted, as "\n    line" lines appended to
 * out (nothing when the file is missing or empty). */
void rc_local_tail(rc_buf *out, const char *path);

/* --- /proc (local_proc.c) --------------------------------------------- */

/* A process that carries our ownership mark. */
typedef struct {
	pid_t pid;
	unsigned long long starttime; /* field 22 of /proc/PID/stat */
	char *service;
	int replica;
	bool recorded; /* listed in the service's record */
} rc_local_proc;

typedef struct {
	rc_local_proc *items;
	size_t n, cap;
} rc_local_procs;

void rc_local_procs_release(rc_local_procs *l);
/* Adds a copy of p (its service string is copied). */
void rc_local_procs_add(rc_local_procs *l, const rc_local_proc *p);

/* State (a letter, 'Z' for a zombie), start time and session (may be
 * NULL) of pid; -1 when there is no such process. */
int rc_local_proc_stat(pid_t pid, char *state, unsigned long long *starttime,
		       pid_t *session);
/* Whether pid runs and is the process that started at starttime (0: any).
 * A zombie is dead; one that is our child is reaped on the way. */
bool rc_local_proc_alive(pid_t pid, unsigned long long starttime);
/* Reads /proc/PID/<file> whole into out; -1 when unreadable. */
int rc_local_proc_read(pid_t pid, const char *file, rc_buf *out);
/* The value of name in a NUL-separated environ block, or NULL (borrowed). */
const char *rc_local_environ_get(const rc_buf *environ, const char *name);
/* /proc/PID/cmdline as a JSON array of strings, or NULL. */
json_t *rc_local_proc_cmdline(pid_t pid);
/* readlink /proc/PID/cwd, or NULL. */
char *rc_local_proc_cwd(pid_t pid);
/* The ownership mark in a NUL-separated environ block: the value of
 * RECONCILE_OWNER when RECONCILE_STATE is state, else NULL (borrowed). A
 * process started for another state directory, or by a reconcile that did
 * not scope its mark yet, is not ours. */
const char *rc_local_mark(const rc_buf *environ, const char *state);
/* Every live process marked for state_dir whose RECONCILE_OWNER starts with
 * prefix and goes on with "<service>/<replica>", and that leads its
 * session (as every replica started by the driver does). Appends to out;
 * and to unscoped, when it is given, those with such a RECONCILE_OWNER but
 * no RECONCILE_STATE at all (started by an earlier reconcile). */
void rc_local_scan(const char *state_dir, const char *prefix,
		   rc_local_procs *out, rc_local_procs *unscoped);
/* The same, and what those processes started (which inherits the mark):
 * every live process with the mark for state_dir, session leader or not. */
void rc_local_scan_all(const char *state_dir, const char *prefix,
		       rc_local_procs *out);
/* Whether pid is alive, started at starttime and carries the mark owner
 * for state. */
bool rc_local_proc_verify(pid_t pid, unsigned long long starttime,
			  const char *state, const char *owner);
/* Reaps pid if it is our child and has exited: 1 with *status set, else
 * 0. */
int rc_local_reap(pid_t pid, int *status);

/* --- listening ports (local_proc.c) ------------------------------------ */

/* What listens on a TCP port of this machine. */
typedef struct {
	int port;
	uid_t uid;     /* the socket's owner */
	pid_t pid;     /* a process holding the socket; -1 when none can be
			  seen (another user's, without privileges) */
	char *comm;    /* its name (/proc/PID/comm), or NULL */
	char *cmdline; /* its arguments joined by spaces, cut at 200 bytes,
			  or NULL */
} rc_local_listener;

/* Whether a socket listens on port, on any address, IPv4 or IPv6
 * (/proc/net/tcp and tcp6: the socket's inode, then the process whose
 * /proc/PID/fd holds "socket:[inode]"): 1 with *out filled in (release
 * it), 0 when none does, -1 when /proc/net cannot be read. */
int rc_local_listener_find(int port, rc_local_listener *out);
void rc_local_listener_release(rc_local_listener *l);

/* --- starting and stopping (local_proc.c) ------------------------------ */

/* A child's environment: "NAME=value" strings, one per name. Values may be
 * secrets: rc_local_env_release() wipes them. */
typedef struct {
	char **v; /* NULL-terminated once built */
	size_t n, cap;
} rc_local_env;

/* PATH, HOME, LANG and TZ from this process (PATH has a default). */
void rc_local_env_base(rc_local_env *e);
/* Every variable of this process. */
void rc_local_env_inherit(rc_local_env *e);
void rc_local_env_set(rc_local_env *e, const char *name, const char *value);
const char *rc_local_env_get(const rc_local_env *e, const char *name);
void rc_local_env_unset(rc_local_env *e, const char *name);
void rc_local_env_release(rc_local_env *e);

typedef struct {
	const char *const *argv; /* argv[0] is looked up in the child's PATH */
	rc_local_env *env;
	const char *dir;  /* the working directory */
	int out_fd;	  /* stdout and stderr; -1: /dev/null */
	bool new_session; /* setsid (a service), else its own group */
	/* non-NULL: the program runs under a waiter, a process of its own
	   group that waits for it and writes its end to this file
	   atomically ("exit N" or "signal N"), even when the caller died
	   meanwhile; the pid returned is the waiter's, which ends as the
	   program did (a hook, rc_local_run_hook) */
	const char *status_path;
	/* with status_path: the read end of out_fd's pipe (> 2), kept by
	   the waiter, which drains and drops the program's output once
	   the caller died, so that the program never blocks or dies
	   writing it and none of it is kept; 0: none */
	int drain_fd;
	bool drop;	  /* run as uid/gid (root only) */
	uid_t uid;
	gid_t gid;
} rc_local_spawn_opts;

/* The file a program name stands for: prog itself when it holds a '/',
 * else the first executable regular file prog in path's directories
 * (a colon list; NULL or empty: /usr/local/bin:/usr/bin:/bin), relative
 * ones taken below dir when it is given; NULL when there is none. */
char *rc_local_find_program(const char *prog, const char *path,
			    const char *dir);
/* Forks and executes; returns once the program runs (or the exec failed:
 * then an error saying why, e.g. "'x' not found in PATH"). */
int rc_local_spawn(pid_t *pid, const rc_local_spawn_opts *o);
/* Sends sig to the process group of pid (pid is its leader) after checking
 * it still is the process that started at starttime, waits up to grace_ms
 * for it to exit, then SIGKILLs the group. 0 when it is gone. */
int rc_local_stop(pid_t pid, unsigned long long starttime, int sig,
		  long grace_ms);
/* Several at once: signals them all, then waits. */
int rc_local_stop_many(const pid_t *pids, const unsigned long long *starts,
		       size_t n, int sig, long grace_ms);

/* Runs o->argv to completion in its own process group (o->out_fd and
 * o->new_session are not used), its output captured (the last ~4 KiB,
 * redacted) into res; on timeout SIGTERM, then SIGKILL 5s later, to the
 * group, and res->timed_out. 0 when it ran, whatever its exit code or a
 * timeout (res says); an error when it could not start. */
int rc_local_run_capture(const rc_local_spawn_opts *o, long timeout_ms,
			 rc_run_result *res);

/* Runs prog (a path, not looked up) with argv and envp (NULL: this
 * process's environment) to completion, stdin /dev/null, never through a
 * shell: its stdout into out (up to out's cap, the rest dropped), the last
 * err_keep bytes of its stderr into err, *status as waitpid() gives it.
 * Past timeout_ms it is killed (SIGKILL) and *timed_out set. An error only
 * when it could not be started. For credential plugins (a kubeconfig's
 * exec, AWS's credential_process) that answer on stdout. */
int rc_local_run_output(const char *prog, char *const *argv,
			char *const *envp, long timeout_ms, size_t err_keep,
			rc_buf *out, rc_buf *err, int *status, bool *timed_out);

/* Runs a hook with `where: local` for an environment of any driver: spec
 * as rc_driver_ops.run has it; the command runs in config_dir with this
 * process's environment, env's config and secrets, then the hook's env
 * (timeout: spec's, 600 s when none). With state_dir (the driver's
 * ctx->state_dir) it is made findable after reconcile dies: it carries
 * RECONCILE_HOOK=<run_id>/<env>/<name> in its environment, runs under a
 * waiter (rc_local_spawn_opts.status_path) that records its end in
 * <state_dir>/local/hooks/<run_id>.<env>.<name>.status, and its output
 * goes to the .out file beside it (the tail is res's); NULL: captured
 * through a pipe as rc_local_run_capture() does, and not findable. */
int rc_local_run_hook(const rc_env *env, const char *config_dir,
		      const char *state_dir, const json_t *spec,
		      rc_run_result *res);

/* The variable that marks a hook's process (rc_local_run_hook). */
#define RC_LOCAL_HOOK_VAR "RECONCILE_HOOK"
/* Runs the program o describes as a hook findable after a crash (see
 * rc_local_run_hook): sets RECONCILE_HOOK in o->env, o->out_fd and
 * o->status_path; env is the environment's name, spec the hook's
 * (run_id, name). Without a run_id in spec: rc_local_run_capture(). */
int rc_local_run_tracked(rc_local_spawn_opts *o, const char *state_dir,
			 const char *env, const json_t *spec,
			 long timeout_ms, rc_run_result *res);

/* rc_driver_ops.hook_status for a hook with `where: local`, of any
 * driver: spec as rc_local_run_hook() was given it (run_id, name), with
 * the same state_dir. SUCCEEDED or FAILED from its .status file (res:
 * the exit code and the .out file's tail); a process still carrying its
 * RECONCILE_HOOK mark (found through /proc/PID/environ, followed by its
 * start time) is waited for, polling, up to wait seconds (RUNNING
 * after); no .out file: NOT_STARTED; an .out file but neither a status
 * nor a process: UNKNOWN (the waiter died with it). */
int rc_local_hook_status(const rc_env *env, const char *config_dir,
			 const char *state_dir, const json_t *spec, long wait,
			 rc_hook_state *state, rc_run_result *res);

/* --- health checks (local_proc.c) -------------------------------------- */

/* 0 when 127.0.0.1:port accepts a connection (and, for http, answers GET
 * path with 2xx or 3xx) within timeout_ms; else -1 with why in err. */
int rc_local_check_tcp(int port, long timeout_ms, rc_buf *err);
int rc_local_check_http(int port, const char *path, long timeout_ms,
			rc_buf *err);

/* Milliseconds of a monotonic clock. */
long long rc_local_now_ms(void);
void rc_local_sleep_ms(long ms);

#endif
