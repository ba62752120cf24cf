/*
 * A certificate authority made at test time: a CA, a server certificate
 * for 127.0.0.1 and localhost, and a client certificate, all signed by the
 * CA, as PEM strings. Fake platform servers serve real TLS with them and
 * tests point reconcile at the CA, so verification is exercised as users
 * have it. Nothing is kept on disk unless a test writes it.
 */
#ifndef RC_TESTCA_H
#define RC_TESTCA_H

#include <stddef.h>

typedef struct {
	char *ca_cert, *ca_key;         /* the authority */
	char *server_cert, *server_key; /* CN=localhost, SAN 127.0.0.1, localhost */
	char *client_cert, *client_key; /* CN=<client_cn>, O=<client_org> */
} rc_testca;

/* Makes a fresh authority and its two certificates (EC P-256, valid for a
 * day). client_cn and client_org name the client (a Kubernetes user and
 * group). Returns 0, or -1 with a message on stderr. */
int rc_testca_make(rc_testca *ca, const char *client_cn, const char *client_org);
void rc_testca_release(rc_testca *ca);
/* Writes pem to path (mode 0600); 0 or -1. */
int rc_testca_write(const char *path, const char *pem);

#endif
