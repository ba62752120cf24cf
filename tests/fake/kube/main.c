/*
 * rc_fake_kube --dir DIR [--port N] [--token NAME=TOKEN[:RULES]]...
 *              [--controller-delay-ms N] [--no-tls] [--log FILE]
 *
 * Starts the fake API server on 127.0.0.1, writes ca.pem, client.crt,
 * client.key, port and kubeconfig into DIR, then `ready`, and serves
 * until SIGTERM or SIGINT. See README.md.
 */
#include "tests/fake/kube/kube.h"
#include "tests/support/testca.h"

#include <fcntl.h>
#include <signal.h>

#define ADMIN_TOKEN "fake-admin-token"

static void usage(void)
{
	fprintf(stderr,
		"usage: rc_fake_kube --dir DIR [--port N] "
		"[--token NAME=TOKEN[:RULES]]... [--controller-delay-ms N] "
		"[--no-tls] [--log FILE]\n");
	exit(2);
}

static long number(const char *opt, const char *s, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 0 || v > max) {
		fprintf(stderr, "rc_fake_kube: %s: not a number: '%s'\n", opt,
			s);
		exit(2);
	}
	return v;
}

/* NAME=TOKEN[:RULES], RULES a comma list of deny=VERB/RESOURCE. */
static void add_token(struct kf_server *srv, const char *spec)
{
	const char *eq = strchr(spec, '='), *colon;
	struct kf_token *t = NULL;
	char *name;

	if (!eq || eq == spec || !eq[1]) {
		fprintf(stderr,
			"rc_fake_kube: --token: want NAME=TOKEN[:RULES], "
			"got '%s'\n",
			spec);
		exit(2);
	}
	name = rc_strndup(spec, (size_t)(eq - spec));
	for (size_t i = 0; i < srv->ntokens; i++)
		if (!strcmp(srv->tokens[i].user, name))
			t = &srv->tokens[i];
	if (!t) {
		srv->tokens =
		    rc_realloc(srv->tokens, (srv->ntokens + 1) * sizeof(*t));
		t = &srv->tokens[srv->ntokens++];
		memset(t, 0, sizeof(*t));
		t->user = name;
	} else {
		free(name);
		free(t->token);
		for (size_t i = 0; i < t->ndeny; i++)
			free(t->deny[i]);
		free(t->deny);
		t->deny = NULL;
		t->ndeny = 0;
	}
	colon = strchr(eq + 1, ':');
	t->token = colon ? rc_strndup(eq + 1, (size_t)(colon - eq - 1))
			 : rc_strdup(eq + 1);
	for (const char *p = colon ? colon + 1 : ""; *p;) {
		size_t n = strcspn(p, ",");

		if (n > 5 && !strncmp(p, "deny=", 5) &&
		    memchr(p + 5, '/', n - 5)) {
			t->deny = rc_realloc(t->deny,
					     (t->ndeny + 1) * sizeof(char *));
			t->deny[t->ndeny++] = rc_strndup(p + 5, n - 5);
		} else if (n) {
			fprintf(stderr,
				"rc_fake_kube: --token %s: unknown rule "
				"'%.*s' (want deny=VERB/RESOURCE)\n",
				t->user, (int)n, p);
			exit(2);
		}
		p += n;
		if (*p == ',')
			p++;
	}
}

static int write_file(const char *dir, const char *name, const char *text)
{
	rc_buf path = RC_BUF_INIT, tmp = RC_BUF_INIT;
	int fd, ret = -1;
	size_t len = strlen(text);

	rc_buf_printf(&path, "%s/%s", dir, name);
	rc_buf_printf(&tmp, "%s/.%s.tmp", dir, name);
	fd = open(tmp.ptr, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0 && write(fd, text, len) == (ssize_t)len && !close(fd) &&
	    !rename(tmp.ptr, path.ptr))
		ret = 0;
	if (ret)
		fprintf(stderr, "rc_fake_kube: cannot write '%s': %s\n",
			path.ptr, strerror(errno));
	rc_buf_release(&path);
	rc_buf_release(&tmp);
	return ret;
}

static int write_kubeconfig(struct kf_server *srv, const char *dir)
{
	rc_buf k = RC_BUF_INIT;
	int ret;
	const char *admin = ADMIN_TOKEN;

	for (size_t i = 0; i < srv->ntokens; i++)
		if (!strcmp(srv->tokens[i].user, "admin"))
			admin = srv->tokens[i].token;
	rc_buf_printf(&k,
		      "apiVersion: v1\n"
		      "kind: Config\n"
		      "clusters:\n"
		      "- name: fake\n"
		      "  cluster:\n"
		      "    server: %s://127.0.0.1:%d\n",
		      srv->tls ? "https" : "http", srv->port);
	if (srv->tls)
		rc_buf_printf(&k, "    certificate-authority: %s/ca.pem\n",
			      dir);
	rc_buf_printf(&k,
		      "users:\n"
		      "- name: admin\n"
		      "  user:\n"
		      "    token: %s\n"
		      "- name: cert\n"
		      "  user:\n"
		      "    client-certificate: %s/client.crt\n"
		      "    client-key: %s/client.key\n"
		      "contexts:\n"
		      "- name: fake\n"
		      "  context:\n"
		      "    cluster: fake\n"
		      "    user: admin\n"
		      "- name: fake-cert\n"
		      "  context:\n"
		      "    cluster: fake\n"
		      "    user: cert\n"
		      "current-context: fake\n",
		      admin, dir, dir);
	ret = write_file(dir, "kubeconfig", k.ptr);
	rc_buf_release(&k);
	return ret;
}

/* The namespaces every cluster starts with; their history is forgotten,
 * as a real server's is compacted. */
static void boot(struct kf_server *srv)
{
	static const char *const names[] = {"default", "kube-system",
					    "kube-public", "kube-node-lease"};
	const struct kf_kind *nsk = kf_kind_named("namespaces");

	srv->store.rv = 100;
	for (size_t i = 0; i < RC_ARRAY_SIZE(names); i++) {
		json_t *err = NULL;
		json_t *ns =
		    json_pack("{s:s,s:s,s:{s:s}}", "apiVersion", "v1", "kind",
			      "Namespace", "metadata", "name", names[i]);

		if (kf_write_create(srv, nsk, ns, "kube-apiserver", &err) < 0) {
			char *s = json_dumps(err, 0);

			fprintf(stderr, "rc_fake_kube: boot: %s\n", s);
			free(s);
			json_decref(err);
		}
	}
	kf_store_compact(&srv->store);
}

static void release(struct kf_server *srv)
{
	kf_store_release(&srv->store);
	kf_ctl_release(srv);
	kf_http_release();
	free(srv->faults);
	json_decref(srv->by_verb);
	json_decref(srv->by_resource);
	for (size_t i = 0; i < srv->ntokens; i++) {
		free(srv->tokens[i].user);
		free(srv->tokens[i].token);
		for (size_t j = 0; j < srv->tokens[i].ndeny; j++)
			free(srv->tokens[i].deny[j]);
		free(srv->tokens[i].deny);
	}
	free(srv->tokens);
	free(srv->api_doc_port);
	pthread_mutex_destroy(&srv->lock);
	pthread_mutex_destroy(&srv->flock);
	if (srv->log)
		fclose(srv->log);
	pthread_cond_destroy(&srv->changed);
	pthread_cond_destroy(&srv->ctl_wake);
}

int main(int argc, char **argv)
{
	static struct kf_server srv;
	const char *dir_arg = NULL;
	char *dir;
	rc_testca ca;
	sigset_t sigs;
	int sig, ret = 1;
	char port[16], uid[37];
	rc_buf addr = RC_BUF_INIT;

	srv.tls = true;
	srv.controller_delay_ms = 50;
	add_token(&srv, "admin=" ADMIN_TOKEN);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--no-tls")) {
			srv.tls = false;
			continue;
		}
		if (i + 1 >= argc)
			usage();
		if (!strcmp(a, "--dir"))
			dir_arg = argv[++i];
		else if (!strcmp(a, "--port"))
			srv.port = (int)number(a, argv[++i], 65535);
		else if (!strcmp(a, "--token"))
			add_token(&srv, argv[++i]);
		else if (!strcmp(a, "--controller-delay-ms"))
			srv.controller_delay_ms = number(a, argv[++i], 3600000);
		else if (!strcmp(a, "--log") && !srv.log) {
			srv.log = fopen(argv[++i], "a");
			if (!srv.log) {
				fprintf(stderr, "rc_fake_kube: --log '%s': %s\n",
					argv[i], strerror(errno));
				return 2;
			}
		} else
			usage();
	}
	if (!dir_arg)
		usage();
	dir = realpath(dir_arg, NULL);
	if (!dir) {
		fprintf(stderr, "rc_fake_kube: --dir '%s': %s\n", dir_arg,
			strerror(errno));
		return 2;
	}

	/* every thread inherits the mask; main waits for the signals */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	pthread_mutex_init(&srv.lock, NULL);
	pthread_mutex_init(&srv.flock, NULL);
	pthread_cond_init(&srv.changed, NULL);
	pthread_cond_init(&srv.ctl_wake, NULL);
	json_object_seed(0);
	kf_uuid(uid);
	for (const char *p = uid; *p; p++)
		srv.rng = srv.rng * 131 + (unsigned char)*p;
	srv.rng |= 1;
	srv.next_ip = 10;
	srv.by_verb = json_object();
	srv.by_resource = json_object();
	kf_store_init(&srv.store, 1000);

	if (rc_testca_make(&ca, "admin", "system:masters") < 0)
		goto out;
	pthread_mutex_lock(&srv.lock);
	boot(&srv);
	pthread_mutex_unlock(&srv.lock);
	kf_ctl_start(&srv);
	if (kf_http_start(&srv, ca.server_cert, ca.server_key, ca.ca_cert) < 0)
		goto stop;
	rc_buf_printf(&addr, "127.0.0.1:%d", srv.port);
	srv.api_doc_port = rc_buf_detach(&addr);
	snprintf(port, sizeof(port), "%d\n", srv.port);
	if (write_file(dir, "ca.pem", ca.ca_cert) ||
	    write_file(dir, "client.crt", ca.client_cert) ||
	    write_file(dir, "client.key", ca.client_key) ||
	    write_file(dir, "port", port) || write_kubeconfig(&srv, dir) ||
	    write_file(dir, "ready", "ready\n"))
		goto stop;
	ret = 0;
	sigwait(&sigs, &sig);

stop:
	pthread_mutex_lock(&srv.lock);
	srv.stopping = true;
	pthread_cond_broadcast(&srv.changed);
	pthread_cond_broadcast(&srv.ctl_wake);
	pthread_mutex_unlock(&srv.lock);
	kf_http_stop();
	kf_ctl_stop(&srv);
	rc_testca_release(&ca);
out:
	release(&srv);
	free(dir);
	return ret;
}
